"""Dataset loaders: real shared data where present, small synthetic files in the exact formats elsewhere.

Nothing here touches the network: downloads are replaced by failing fakes (or a file:// URL).
"""
from __future__ import annotations

import gzip
import io
import json
import math
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from host.ml.datasets import DATASETS, Dataset, DatasetNotFoundError, describe, load_dataset
from host.ml.datasets import cifar, fashion, hapt, mhealth
from host.ml.datasets.core import paper_split, seeded_split, sklearn_train_test_split
from host.ml.datasets.windows import gather_windows, label_runs, window_starts
from host.paths import shared_data_dir

SHARED = shared_data_dir()
HAPT_NPZ = SHARED / "hapt" / "hapt_raw.npz" if SHARED else None
CIFAR_TAR = SHARED / "cifar10" / "cifar10_jpeg.tar.gz" if SHARED else None
HAS_FASHION = all((fashion.SYSTEM_DIR / f).is_file() for f in fashion.FILES.values())


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Synthetic loads cache into a temporary directory, never the repository's .cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RESILINET_CACHE", str(cache))
    return cache


def _toy(y_train, y_test, num_classes) -> Dataset:
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    return Dataset("toy", np.zeros((len(y_train), 2)), y_train, np.zeros((1, 2)), np.zeros(1),
                   np.zeros((len(y_test), 2)), y_test, num_classes, [str(i) for i in range(num_classes)])


# ---------------------------------------------------------------------------------------------
# Dataset record and split helpers
# ---------------------------------------------------------------------------------------------

def test_random_guess_accuracy_closed_form():
    ds = _toy([0, 0, 0, 1], [0, 1], 3)
    assert np.allclose(ds.label_frequencies("train"), [0.75, 0.25, 0.0])
    assert np.allclose(ds.label_frequencies("test"), [0.5, 0.5, 0.0])
    assert ds.random_guess_accuracy() == pytest.approx(0.75 * 0.5 + 0.25 * 0.5)
    ds2 = _toy([0] * 9 + [1], [1] * 4, 2)
    assert ds2.random_guess_accuracy() == pytest.approx(0.1)
    # Matches a simulated guesser drawing from the training frequencies.
    rng = np.random.default_rng(0)
    guesses = rng.choice(3, size=(4000, 2), p=ds.label_frequencies("train"))
    assert (guesses == ds.y_test).mean() == pytest.approx(ds.random_guess_accuracy(), abs=0.02)


def test_dataset_coerces_dtypes_and_rejects_bad_labels():
    ds = _toy([0, 1], [1], 2)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    with pytest.raises(ValueError):
        _toy([0, 2], [1], 2)
    with pytest.raises(ValueError):
        Dataset("bad", np.zeros((3, 4)), np.zeros(3), np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)),
                np.zeros(0), 1, ["a"], feature_groups={"s": [4]})


def test_subset_is_seeded_and_independent_per_split():
    x = np.arange(100, dtype=np.float32)[:, None]
    ds = Dataset("toy", x, np.arange(100) % 3, x[:50], np.arange(50) % 3, x[:20], np.arange(20) % 3, 3, ["a", "b", "c"])
    a = ds.subset(max_train=10, max_val=5, seed=1)
    b = ds.subset(max_train=10, max_val=5, seed=1)
    c = ds.subset(max_train=10, seed=1)
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (10, 5, 20)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train, ds.subset(max_train=10, seed=2).x_train)
    assert set(a.x_train[:, 0]) <= set(x[:, 0]) and np.all(np.diff(a.x_train[:, 0]) > 0)


def test_paper_split_replays_sklearn_train_test_split():
    # sklearn.model_selection.train_test_split(range(10), test_size=0.2, random_state=42)
    # returns train [5, 0, 7, 2, 9, 4, 3, 6] and test [8, 1].
    train, test = sklearn_train_test_split(10, 0.2, 42)
    assert train.tolist() == [5, 0, 7, 2, 9, 4, 3, 6] and test.tolist() == [8, 1]
    for n in (1000, 1001, 12345):
        tr, va, te = paper_split(n)
        held = math.ceil(0.2 * n)
        assert len(tr) == n - held and len(te) == math.ceil(0.5 * held) and len(va) == held - len(te)
        assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(n))


def test_seeded_split_sizes_and_determinism():
    a = seeded_split(1000, [0.8, 0.1, 0.1], 3)
    assert [len(p) for p in a] == [800, 100, 100]
    assert all(np.array_equal(p, q) for p, q in zip(a, seeded_split(1000, [0.8, 0.1, 0.1], 3)))
    assert not np.array_equal(a[1], seeded_split(1000, [0.8, 0.1, 0.1], 4)[1])
    assert np.array_equal(np.sort(np.concatenate(a)), np.arange(1000))


def test_registry_and_unknown_name():
    assert set(DATASETS) == {"fashion", "hapt", "mhealth", "cifar10", "npz", "digits", "imagenet",
                             "multiview_standin", "multiview_npz", "mhealth_standin"}
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("mnist")


# ---------------------------------------------------------------------------------------------
# Windowing
# ---------------------------------------------------------------------------------------------

def test_windows_never_cross_label_session_or_gap():
    labels = np.array([1] * 300 + [2] * 100 + [2] * 200 + [-1] * 150 + [3] * 127 + [1] * 256)
    session = np.array([1] * 300 + [1] * 100 + [2] * 200 + [2] * 150 + [2] * 127 + [2] * 256)
    sequence = np.arange(len(labels))
    sequence[-100:] += 5  # a gap inside the last label-1 run
    starts, win_labels = window_starts(labels, 128, 64, groups=session, sequence=sequence, keep=[1, 2, 3])
    # Runs: label 1 (300) -> 3 windows; label 2 in session 1 (100) -> 0; label 2 in session 2 (200) -> 2;
    # label -1 not kept; label 3 (127) too short; label 1 split by the gap into 156 + 100 -> 1 + 0.
    assert starts.tolist() == [0, 64, 128, 400, 464, 877]
    assert win_labels.tolist() == [1, 1, 1, 2, 2, 1]
    idx = starts[:, None] + np.arange(128)
    assert np.all(labels[idx] == win_labels[:, None])
    assert np.all(session[idx] == session[idx][:, :1])
    assert np.all(np.diff(sequence[idx], axis=1) == 1)
    signal = np.stack([np.arange(len(labels)), -np.arange(len(labels))], axis=1)
    w = gather_windows(signal, starts, 128)
    assert w.shape == (6, 128, 2) and w[3, 0, 0] == 400 and w[3, -1, 1] == -527


def test_label_runs_boundaries():
    s, e = label_runs(np.array([5, 5, 6, 6, 6, 5]), np.array([1, 1, 1, 2, 2, 2]))
    assert s.tolist() == [0, 2, 3, 5] and e.tolist() == [2, 3, 5, 6]


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST
# ---------------------------------------------------------------------------------------------

def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_fashion_reads_idx_files_from_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28))
    labels = np.arange(20) % 10
    _write_idx(tmp_path / fashion.FILES["x_train"], images)
    _write_idx(tmp_path / fashion.FILES["y_train"], labels)
    _write_idx(tmp_path / fashion.FILES["x_test"], images[:5])
    _write_idx(tmp_path / fashion.FILES["y_test"], labels[:5])
    ds = load_dataset("fashion", data_dir=tmp_path, val_size=4)
    assert ds.x_train.shape == (16, 28, 28, 1) and ds.x_val.shape == (4, 28, 28, 1) and len(ds.y_test) == 5
    tr, va = ds.info["train_index"], ds.info["val_index"]
    assert np.allclose(ds.x_val[..., 0], images[va] / 255.0) and np.array_equal(ds.y_train, labels[tr])
    assert np.allclose(ds.x_test[..., 0], images[:5] / 255.0)


def test_fashion_missing_says_apt_get(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("RESILINET_DATA", str(tmp_path))

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(fashion, "keras_download", offline)
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        load_dataset("fashion")
    assert "train-images-idx3-ubyte.gz" in str(err.value)


@pytest.mark.skipif(not HAS_FASHION, reason="dataset-fashion-mnist not installed")
def test_fashion_real():
    a = load_dataset("fashion", seed=0)
    assert a.x_train.shape == (54000, 28, 28, 1) and a.x_val.shape == (6000, 28, 28, 1)
    assert a.x_test.shape == (10000, 28, 28, 1)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    assert a.num_classes == 10 and a.class_names[0] == "T-shirt/top" and a.class_names[9] == "Ankle boot"
    assert np.array_equal(np.bincount(a.y_test), [1000] * 10)
    assert len(np.intersect1d(a.info["train_index"], a.info["val_index"])) == 0
    b = load_dataset("fashion", seed=0)
    assert np.array_equal(a.x_val, b.x_val) and np.array_equal(a.y_train, b.y_train)
    c = load_dataset("fashion", seed=1)
    assert not np.array_equal(a.info["val_index"], c.info["val_index"])
    assert "54000" in describe(a)


# ---------------------------------------------------------------------------------------------
# HAPT
# ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(HAPT_NPZ is None or not HAPT_NPZ.is_file(), reason="shared hapt_raw.npz absent")
def test_hapt_real_windows_and_user_split():
    ds = load_dataset("hapt")
    assert ds.num_classes == 6 and ds.x_train.shape[1:] == (128, 6)
    assert ds.feature_groups == {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
    users = ds.info["users"]
    assert users["test"] == sorted(hapt.TEST_USERS) and len(users["val"]) == 3 and len(users["train"]) == 18
    assert not (set(users["train"]) & set(users["val"]) or set(users["train"]) & set(users["test"])
                or set(users["val"]) & set(users["test"]))
    for split in ("train", "val", "test"):
        _, y = ds.split(split)
        assert set(np.unique(ds.info["window_user"][split])) <= set(users[split])
        assert set(np.unique(y)) == set(range(6))
    # Every window sits inside one labelled segment of one session in the raw data.
    raw = hapt.read_npz(HAPT_NPZ)
    starts = np.concatenate(list(ds.info["window_start"].values()))
    idx = starts[:, None] + np.arange(128)
    assert np.all(raw["label"][idx] == raw["label"][idx][:, :1])
    assert np.all(raw["session"][idx] == raw["session"][idx][:, :1])
    # Normalised with training statistics: train is ~zero-mean unit-variance, the raw window is recoverable.
    assert np.allclose(ds.x_train.mean(axis=(0, 1)), 0, atol=1e-3)
    assert np.allclose(ds.x_train.std(axis=(0, 1)), 1, atol=1e-3)
    first = ds.info["window_start"]["train"][0]
    stats = ds.normalization
    raw6 = np.concatenate([raw["acc"], raw["gyro"]], axis=1)[first:first + 128]
    assert np.allclose(ds.x_train[0] * stats["std"] + stats["mean"], raw6, atol=1e-4)
    again = load_dataset("hapt")
    assert np.array_equal(ds.x_val, again.x_val)
    assert load_dataset("hapt", seed=1).info["users"]["val"] != users["val"] or \
        load_dataset("hapt", seed=2).info["users"]["val"] != users["val"]
    all12 = load_dataset("hapt", classes="all12")
    assert all12.num_classes == 12 and all12.y_train.max() == 11


def _write_uci_hapt(root: Path) -> dict:
    """Three experiments (users 1, 2, 3) in the UCI archive layout, with known segments."""
    raw = root / "RawData"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(7)
    lengths = {1: 700, 2: 500, 3: 600}
    signals = {}
    for exp, n in lengths.items():
        acc, gyro = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
        np.savetxt(raw / f"acc_exp{exp:02d}_user{exp:02d}.txt", acc, fmt="%.8e", delimiter=" ")
        np.savetxt(raw / f"gyro_exp{exp:02d}_user{exp:02d}.txt", gyro, fmt="%.8e", delimiter=" ")
        signals[exp] = np.concatenate([np.loadtxt(raw / f"acc_exp{exp:02d}_user{exp:02d}.txt"),
                                       np.loadtxt(raw / f"gyro_exp{exp:02d}_user{exp:02d}.txt")], axis=1)
    segments = [(1, 1, 5, 10, 329), (1, 1, 7, 330, 400), (1, 1, 1, 401, 699),
                (2, 2, 4, 0, 255), (3, 3, 6, 100, 227), (3, 3, 2, 228, 400)]
    (raw / "labels.txt").write_text("".join(f"{e} {u} {a} {s} {t}\n" for e, u, a, s, t in segments))
    return {"signals": signals, "segments": segments}


def test_hapt_uci_archive_reader(tmp_path):
    made = _write_uci_hapt(tmp_path)
    arrays = hapt.read_uci_archive(tmp_path)
    assert len(arrays["label"]) == 1800 and arrays["acc"].shape == (1800, 3)
    assert arrays["label"][9] == -1 and arrays["label"][10] == 5 and arrays["label"][329] == 5
    assert arrays["label"][330] == 7 and arrays["label"][699] == 1 and arrays["label"][700] == 4
    assert arrays["session"][700] == 2 and arrays["user"][1200] == 3 and arrays["sequence"][1200] == 0
    ds = load_dataset("hapt", path=tmp_path / "RawData", test_users=[3], val_users=[2], normalize=False)
    # Windows per segment: exp1 act5 320 samples -> 4; act7 skipped; act1 299 -> 3;
    # exp2 act4 256 -> 3 (val); exp3 act6 128 -> 1, act2 173 -> 1 (test).
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (7, 3, 2)
    assert ds.y_train.tolist() == [4, 4, 4, 4, 0, 0, 0] and ds.y_test.tolist() == [5, 1]
    assert np.allclose(ds.x_train[0], made["signals"][1][10:138], atol=1e-6)
    assert np.allclose(ds.x_test[1], made["signals"][3][228:356], atol=1e-6)


def test_hapt_missing_npz_raises(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="hapt_raw.npz"):
        load_dataset("hapt", data_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# MHEALTH
# ---------------------------------------------------------------------------------------------

def _mhealth_rows(rng: np.random.Generator, subject: int, n: int) -> np.ndarray:
    """Rows shaped like the real logs: acc around +-10 m/s^2, ECG mV, gyro +-1, magnetometer tens."""
    scale = np.array([4, 4, 4, 0.5, 0.5, 4, 4, 4, 0.6, 0.6, 0.6, 30, 30, 30, 4, 4, 4, 0.6, 0.6, 0.6, 30, 30, 30.0])
    feats = rng.normal(size=(n, 23)) * scale
    feats[:, 0] -= 9.8184
    labels = np.zeros(n)
    # A null stretch, then activities in runs (one of them too short for a window), then null again.
    runs = [(0, 40), (subject % 12 + 1, 300), (0, 20), (4, 100), (11, 200)]
    pos = 0
    for lab, length in runs:
        labels[pos:pos + length] = lab
        pos += length
    labels[pos:] = 0
    return np.column_stack([feats, labels])


def _write_mhealth(directory: Path, subjects=(1, 8, 9), n=700) -> dict[int, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    tables = {}
    for s in subjects:
        rows = _mhealth_rows(rng, s, n)
        # The exact values the test checks truncation on, as the real files format them.
        rows[5, :4] = [-9.8184, 0.009971, 0.29563, 0.0041863]
        rows[6, :4] = [-0.5, 2.9999, -2.9999, 0.63077]
        rows[5:7, 23] = 4
        text = "".join("\t".join(f"{v:.5g}" for v in r[:23]) + f"\t{int(r[23])}\n" for r in rows)
        (directory / f"mHealth_subject{s}.log").write_text(text)
        tables[s] = np.loadtxt(directory / f"mHealth_subject{s}.log")
    return tables


def _expected_paper_rows(tables: dict[int, np.ndarray], quirk: bool = True) -> np.ndarray:
    rows = np.concatenate([tables[s][1:] if quirk else tables[s] for s in sorted(tables)])
    rows = np.trunc(rows)
    rows = rows[rows[:, 23] != 0]
    return rows[1:] if quirk else rows


def test_mhealth_paper_mode(tmp_path, tmp_cache):
    tables = _write_mhealth(tmp_path / "logs")
    with pytest.warns(mhealth.MhealthChecksumWarning):
        ds = load_dataset("mhealth", path=tmp_path / "logs")
    expected = _expected_paper_rows(tables)
    n = len(expected)
    n_held = math.ceil(0.2 * n)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (n - n_held, n_held - math.ceil(n_held / 2),
                                                                math.ceil(n_held / 2))
    assert ds.num_classes == 13 and len(ds.class_names) == 13 and ds.x_train.shape[1:] == (23,)
    assert ds.feature_groups == {"chest": [0, 1, 2, 3, 4], "ankle": list(range(5, 14)), "arm": list(range(14, 23))}
    got = np.concatenate([np.column_stack([ds.split(s)[0], ds.split(s)[1]]) for s in ("train", "val", "test")])
    assert 0 not in got[:, 23]
    assert np.array_equal(got[np.lexsort(got.T)], expected[np.lexsort(expected.T)].astype(np.float32))
    # Truncation toward zero, not rounding or flooring: -9.8184 -> -9, -0.5 -> 0, 2.9999 -> 2, -2.9999 -> -2.
    flat = {tuple(r[:4]) for r in got}
    assert (-9, 0, 0, 0) in flat and (0, 2, -2, 0) in flat
    assert np.all(got[:, :23] == np.trunc(got[:, :23]))
    # The split is ResiliNet's: sklearn train_test_split(random_state=42) twice.
    train_idx, held = sklearn_train_test_split(n, 0.2, 42)
    assert np.array_equal(ds.x_train, expected[train_idx, :23].astype(np.float32))
    # Without the header quirk, each subject's first row and the first labelled row come back.
    full = load_dataset("mhealth", path=tmp_path / "logs", header_quirk=False, verify=False)
    assert sum(len(full.split(s)[1]) for s in ("train", "val", "test")) == len(_expected_paper_rows(tables, False))


def test_mhealth_zip_source_matches_directory(tmp_path, tmp_cache):
    _write_mhealth(tmp_path / "logs")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for f in sorted((tmp_path / "logs").iterdir()):
            zf.write(f, f"MHEALTHDATASET/{f.name}")
    with zipfile.ZipFile(tmp_path / "mhealth+dataset.zip", "w") as outer:  # UCI's download wraps the zip
        outer.writestr(mhealth.ZIP_NAME, inner.getvalue())
    a = load_dataset("mhealth", path=tmp_path / "logs", verify=False)
    b = load_dataset("mhealth", path=tmp_path / "mhealth+dataset.zip", verify=False)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    # Found through $RESILINET_DATA/mhealth too.
    shared = tmp_path / "shared"
    (shared / "mhealth").mkdir(parents=True)
    (tmp_path / "mhealth+dataset.zip").rename(shared / "mhealth" / "mhealth+dataset.zip")
    c = load_dataset("mhealth", data_dir=shared, verify=False)
    assert np.array_equal(a.x_val, c.x_val)


def test_mhealth_windowed_mode(tmp_path, tmp_cache):
    tables = _write_mhealth(tmp_path / "logs")
    ds = load_dataset("mhealth", path=tmp_path / "logs", mode="windowed", verify=False)
    assert ds.x_train.shape[1:] == (128, 23) and ds.num_classes == 12
    assert ds.info["subjects_split"] == {"train": [1], "val": [8], "test": [9]}
    # Per subject: 300-sample run -> 3 windows, 100 -> 0, 200 -> 2: five windows each.
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (5, 5, 5)
    assert ds.y_train.tolist() == [1, 1, 1, 10, 10]  # subject 1: label 2 then 11, mapped to 1 and 10
    assert ds.y_val.tolist()[:3] == [8, 8, 8]       # subject 8: label 9
    for split, subject in (("train", 1), ("val", 8), ("test", 9)):
        for start, label in zip(ds.info["window_start"][split], ds.split(split)[1]):
            local = start - sum(len(tables[s]) for s in sorted(tables) if s < subject)
            assert np.all(tables[subject][local:local + 128, 23] == label + 1)
    assert np.allclose(ds.x_train.mean(axis=(0, 1)), 0, atol=1e-4)
    raw = tables[1][40:168, :23]
    assert np.allclose(ds.x_train[0] * ds.normalization["std"] + ds.normalization["mean"], raw, atol=1e-3)


def test_mhealth_missing_mentions_uci(tmp_path, monkeypatch):
    monkeypatch.setenv("RESILINET_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("RESILINET_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    calls = []

    def offline(url, dest, timeout=None):
        calls.append(url)
        raise OSError("network unreachable")

    monkeypatch.setattr(mhealth, "download", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mhealth")
    message = str(err.value)
    assert calls == [mhealth.URL]
    assert "UCI" in message and "MHEALTHDATASET.zip" in message and "path=" in message
    assert "network unreachable" in message
    with pytest.raises(DatasetNotFoundError, match="UCI"):
        load_dataset("mhealth", path=tmp_path / "no-such-dir")


def test_mhealth_download_helper_uses_urllib(tmp_path):
    # file:// exercises the real download code without a network.
    src = tmp_path / "src.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("x.txt", "hi")
    dest = mhealth.download(src.as_uri(), tmp_path / "out" / "MHEALTHDATASET.zip")
    assert zipfile.is_zipfile(dest)
    (tmp_path / "notzip").write_text("error page")
    with pytest.raises(OSError):
        mhealth.download((tmp_path / "notzip").as_uri(), tmp_path / "out" / "bad.zip")
    assert not (tmp_path / "out" / "bad.zip").exists()


# ---------------------------------------------------------------------------------------------
# CIFAR
# ---------------------------------------------------------------------------------------------

COLOURS = {"airplane": (250, 10, 10), "ship": (10, 250, 10), "truck": (10, 10, 250)}


def _write_jpeg_tar(path: Path, per_class: dict[str, int]) -> None:
    from PIL import Image

    with tarfile.open(path, "w:gz") as tf:
        for split, count in per_class.items():
            for cls, colour in COLOURS.items():
                for i in range(count):
                    buf = io.BytesIO()
                    Image.new("RGB", (32, 32), colour).save(buf, format="JPEG", quality=95)
                    info = tarfile.TarInfo(f"{split}/{cls}/{i:04d}.jpg")
                    info.size = len(buf.getvalue())
                    tf.addfile(info, io.BytesIO(buf.getvalue()))


def test_cifar_jpeg_archive_and_cache(tmp_path, tmp_cache, monkeypatch):
    root = tmp_path / "data"
    (root / "cifar10").mkdir(parents=True)
    _write_jpeg_tar(root / "cifar10" / cifar.JPEG_ARCHIVE, {"train": 4, "test": 2})
    ds = load_dataset("cifar10", data_dir=root, val_size=3)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (9, 3, 6)
    assert ds.x_train.shape[1:] == (32, 32, 3) and ds.x_train.dtype == np.float32 and ds.num_classes == 10
    assert ds.y_test.tolist() == [0, 0, 8, 8, 9, 9]  # airplane, ship, truck in class order
    assert np.allclose(ds.x_test[0].mean(axis=(0, 1)), np.array(COLOURS["airplane"]) / 255, atol=0.03)
    assert np.allclose(ds.x_test[-1].mean(axis=(0, 1)), np.array(COLOURS["truck"]) / 255, atol=0.03)
    assert len(list((tmp_cache / "datasets").glob("cifar10_jpeg-*.npz"))) == 1

    def must_not_decode(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(cifar, "read_jpeg_tar", must_not_decode)
    again = load_dataset("cifar10", data_dir=root, val_size=3)
    assert np.array_equal(again.x_val, ds.x_val)
    paper = load_dataset("cifar10", data_dir=root, split="paper")  # 18 images: 14 / 2 / 2
    assert (len(paper.y_train), len(paper.y_val), len(paper.y_test)) == (14, 2, 2)


def _cifar_batch(rng, n, labels_key=b"labels", classes=10):
    return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), labels_key: rng.integers(0, classes, n).tolist()}


def test_cifar_python_batches_dir_and_tarball(tmp_path, tmp_cache):
    rng = np.random.default_rng(5)
    batch_dir = tmp_path / "cifar-10-batches-py"
    batch_dir.mkdir()
    batches = {f"data_batch_{i}": _cifar_batch(rng, 4) for i in range(1, 6)}
    batches["test_batch"] = _cifar_batch(rng, 3)
    for name, batch in batches.items():
        (batch_dir / name).write_bytes(pickle.dumps(batch))
    ds = load_dataset("cifar10", path=batch_dir, val_size=4)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (16, 4, 3)
    # Row layout is 1024 red, 1024 green, 1024 blue values, each row-major 32x32.
    data = batches["test_batch"][b"data"][1]
    assert ds.x_test[1, 2, 5, 0] * 255 == pytest.approx(data[0 * 1024 + 2 * 32 + 5])
    assert ds.x_test[1, 31, 0, 2] * 255 == pytest.approx(data[2 * 1024 + 31 * 32 + 0])
    assert ds.y_test.tolist() == batches["test_batch"][b"labels"]
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(batch_dir, arcname="cifar-10-batches-py")
    same = load_dataset("cifar10", path=tarball, val_size=4)
    assert np.array_equal(same.x_train, ds.x_train) and np.array_equal(same.y_val, ds.y_val)


def test_cifar100_and_missing(tmp_path, monkeypatch):
    rng = np.random.default_rng(6)
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    (d / "train").write_bytes(pickle.dumps(_cifar_batch(rng, 12, b"fine_labels", 100)))
    (d / "test").write_bytes(pickle.dumps(_cifar_batch(rng, 4, b"fine_labels", 100)))
    (d / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}))
    ds = load_dataset("cifar10", variant="cifar100", path=d, val_size=2)
    assert ds.num_classes == 100 and ds.class_names[3] == "c3" and len(ds.y_test) == 4 and len(ds.y_val) == 2
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python"):
        load_dataset("cifar10", variant="cifar100")

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(cifar, "keras_download", offline)
    with pytest.raises(DatasetNotFoundError, match="cifar10_jpeg.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path / "empty")


@pytest.mark.skipif(CIFAR_TAR is None or not CIFAR_TAR.is_file(), reason="shared cifar10_jpeg.tar.gz absent")
def test_cifar10_real():
    ds = load_dataset("cifar10")  # first run decodes (~10 s) and caches under cache_dir()
    assert ds.x_train.shape == (45000, 32, 32, 3) and ds.x_val.shape == (5000, 32, 32, 3)
    assert ds.x_test.shape == (10000, 32, 32, 3) and ds.num_classes == 10
    assert np.array_equal(np.bincount(ds.y_test), [1000] * 10)
    assert np.array_equal(np.bincount(np.concatenate([ds.y_train, ds.y_val])), [5000] * 10)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # RGB order and scaling: the official CIFAR-10 training means (README: JPEG matches to 1e-4).
    mean = (ds.x_train.mean(axis=(0, 1, 2), dtype=np.float64) * 45000 + ds.x_val.mean(axis=(0, 1, 2), dtype=np.float64) * 5000) / 50000
    assert np.allclose(mean, [0.4914, 0.4822, 0.4465], atol=1e-3)


# ---------------------------------------------------------------------------------------------
# User npz and digits
# ---------------------------------------------------------------------------------------------

def test_npz_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4, 6)).astype(np.float32)
    y = np.arange(50) % 3
    groups = {"left": [0, 1, 2], "right": [3, 4, 5]}
    f = tmp_path / "mine.npz"
    np.savez(f, x=x, y=y, feature_groups=json.dumps(groups), class_names=np.array(["a", "b", "c"]))
    ds = load_dataset("npz", path=f, seed=2)
    assert ds.name == "mine" and ds.feature_groups == groups and ds.class_names == ["a", "b", "c"]
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (40, 5, 5)
    all_x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    idx = np.concatenate([ds.info["index"][s] for s in ("train", "val", "test")])
    assert np.array_equal(all_x, x[idx]) and np.array_equal(np.sort(idx), np.arange(50))
    assert np.array_equal(load_dataset("npz", path=f, seed=2).x_val, ds.x_val)

    g = tmp_path / "with_test.npz"
    np.savez(g, x=x, y=np.eye(3)[y], x_test=x[:7], y_test=y[:7])
    ds2 = load_dataset("npz", path=g, val_fraction=0.2)
    assert (len(ds2.y_train), len(ds2.y_val)) == (40, 10) and np.array_equal(ds2.x_test, x[:7])
    assert ds2.feature_groups is None and ds2.num_classes == 3

    h = tmp_path / "pickled.npz"
    np.savez(h, x=x, y=y, feature_groups=np.array(groups, dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_dataset("npz", path=h)
    assert load_dataset("npz", path=h, allow_pickle=True).feature_groups == groups


def test_digits_loads_or_fails_cleanly():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(DatasetNotFoundError, match="scikit-learn"):
            load_dataset("digits")
        return
    ds = load_dataset("digits")
    assert ds.x_train.shape[1:] == (8, 8, 1) and ds.num_classes == 10
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797
