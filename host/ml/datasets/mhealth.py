"""UCI MHEALTH: the body-sensor data behind ResiliNet's "Health" experiment.

Two preprocessings (``mode``):

* ``"paper"`` (default) replays ResiliNet's own pipeline so results compare with the paper. Its
  ``data_handler_health.py`` reads each subject log with a function that drops the first line as
  a header (the logs have none), concatenates subjects 1..10, writes ``np.savetxt(fmt="%d")`` —
  which truncates every value toward zero — deletes label-0 rows, and reads the result back with
  the same header-dropping function. Every 50 Hz time step is one sample of 23 features; the split
  is sklearn's ``train_test_split(random_state=42)`` twice (80 % / 10 % / 10 %), replayed here
  without sklearn. 13 classes: the paper's softmax covers 0..12, class 0 never occurs.
  ``header_quirk=False`` keeps the rows the paper's loader lost.
* ``"windowed"``: 128-step windows (2.56 s), 50 % overlap, each inside one subject and one
  activity; labels 1..12 -> 0..11; split by subject (test [9, 10], validation [8], train 1..7) so
  no person is in two splits; channels standardised with training statistics. Shape (N, 128, 23).

Columns (1-based in the UCI description): 1-3 chest acc, 4-5 ECG, 6-8 left-ankle acc, 9-11 ankle
gyro, 12-14 ankle magnetometer, 15-17 right-lower-arm acc, 18-20 arm gyro, 21-23 arm magnetometer,
24 label. Feature groups follow the three sensor positions.
"""
from __future__ import annotations

import hashlib
import io
import re
import urllib.request
import warnings
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from host.ml.datasets.core import (Dataset, apply_stats, channel_stats, data_roots, datasets_cache_dir, not_found,
                   paper_split)
from host.ml.datasets.windows import gather_windows, window_starts

URL = "https://archive.ics.uci.edu/static/public/319/mhealth+dataset.zip"
ZIP_NAME = "MHEALTHDATASET.zip"
DOWNLOAD_TIMEOUT_S = 15.0

N_FEATURES = 23
FEATURE_GROUPS = {"chest": list(range(0, 5)), "ankle": list(range(5, 14)), "arm": list(range(14, 23))}
ACTIVITY_NAMES = ["Standing still", "Sitting and relaxing", "Lying down", "Walking", "Climbing stairs",
                  "Waist bends forward", "Frontal elevation of arms", "Knees bending (crouching)",
                  "Cycling", "Jogging", "Running", "Jump front & back"]

#: SHA-256 of the original logs (shared/data/README.md), to tell users their copy differs.
SHA256 = {
    1: "da8d1bbf644a206886333f945a1dd7fe5081382b3bb3ee42821f08ad765732e4",
    2: "20e288750fe9f4f0495686fabf1500bfe655a549f0d2c3a9be5aa6456461b8f1",
    3: "90ead135c9fa9f1188e3b1f7afc0c95899a0614a15917cf3590f52923d6e03fd",
    4: "3b66f87a292f4cc457aea18cb7e15a10c18055c803df27f5284c6a1c5751a469",
    5: "380e526a85bde64baebd1d1a2478c4cfad947a4ab994c8b39b8dcda195f78a30",
    6: "4b8bc81186229e096937f37f9ae070017ee653005b21f88fcd0504e9195f8926",
    7: "5e372b2fad64a3ebaadd103ec09cde68d448ef5b707b010d02f438b8b9203b1f",
    8: "c6ddb8926be4c193890a28cc84cafe35c16a4bc14f23c3e696d504643652a61b",
    9: "fa68f90a9dfeda47abce41ebc1dec8ce55f66dc56d513ab90a6ae20ad045f2c9",
    10: "382d3d7b58e1fe24679fb241fd7e48ce1992757f6b1b237a56cd660e8f1fabda",
}

TEST_SUBJECTS = (9, 10)
VAL_SUBJECTS = (8,)
WINDOW, STEP = 128, 64

_LOG = re.compile(r"(?:^|/)mHealth_subject(\d+)\.log$")


class MhealthChecksumWarning(UserWarning):
    """A subject log differs from the published original (results may not match the paper)."""


# --------------------------------------------------------------------------------------------
# Finding and reading the logs
# --------------------------------------------------------------------------------------------

def _logs_in_dir(directory: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for sub in (directory, directory / "MHEALTHDATASET"):
        if sub.is_dir():
            for f in sub.glob("mHealth_subject*.log"):
                m = _LOG.search(f.name)
                if m:
                    found.setdefault(int(m.group(1)), f)
    return found


def _zip_members(zf: zipfile.ZipFile) -> dict[int, bytes]:
    """Subject logs inside a zip; UCI's download nests ``MHEALTHDATASET.zip`` in another zip."""
    logs = {int(m.group(1)): zf.read(name) for name in zf.namelist() if (m := _LOG.search(name))}
    if logs:
        return logs
    for name in zf.namelist():
        if name.lower().endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(zf.read(name))) as inner:
                logs = _zip_members(inner)
                if logs:
                    return logs
    return {}


def _zip_in_dir(directory: Path) -> Path | None:
    for name in (ZIP_NAME, "mhealth+dataset.zip"):
        if (directory / name).is_file():
            return directory / name
    return None


def _resolve(path: Path) -> Path | None:
    """A directory with logs, or a zip; None when ``path`` holds neither."""
    if path.is_file() and zipfile.is_zipfile(path):
        return path
    if path.is_dir():
        if _logs_in_dir(path):
            return path
        return _zip_in_dir(path)
    return None


def download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch ``url`` to ``dest`` (atomically); raises OSError offline (replaced in tests)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as fh:
            while block := response.read(1 << 20):
                fh.write(block)
        if not zipfile.is_zipfile(tmp):
            raise OSError(f"{url} did not return a zip file")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def find_source(path: str | Path | None, data_dir: str | Path | None, allow_download: bool) -> Path:
    """Where the logs are: ``path``, else the shared data dir, else the cache, else a download."""
    looked: list[Path | str] = []
    if path is not None:
        p = Path(path).expanduser()
        looked.append(p)
        src = _resolve(p)
        if src is not None:
            return src
    else:
        cache = datasets_cache_dir() / "mhealth"
        for candidate in [*data_roots(data_dir, "mhealth"), cache]:
            looked.append(candidate)
            src = _resolve(candidate)
            if src is not None:
                return src
        if allow_download:
            dest = cache / ZIP_NAME
            try:
                return download(URL, dest)
            except Exception as exc:  # offline, proxy, HTTP error: all end in the same advice
                looked.append(f"{URL} (download failed: {type(exc).__name__}: {exc})")
    raise not_found(
        "UCI MHEALTH dataset (mHealth_subject1..10.log)", looked,
        f"Get the UCI MHEALTH dataset ({ZIP_NAME}, about 70 MB) from the UCI Machine Learning "
        f"Repository ({URL}), then pass path= the zip or its unpacked directory, or put the "
        "mHealth_subject{1..10}.log files (or the zip) under $RESILINET_DATA/mhealth/.",
    )


def _parse(blob: bytes, name: str) -> np.ndarray:
    try:
        table = np.loadtxt(io.BytesIO(blob), dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{name}: not a MHEALTH log (24 whitespace-separated numbers per row): {exc}") from exc
    if table.shape[1] != N_FEATURES + 1:
        raise ValueError(f"{name}: {table.shape[1]} columns, MHEALTH logs have {N_FEATURES + 1}")
    return table


def _verify(subject: int, digest: str, name: str) -> None:
    expected = SHA256.get(subject)
    if expected is not None and digest != expected:
        warnings.warn(f"{name} differs from the published MHEALTH log (SHA-256 {digest[:12]}... != "
                      f"{expected[:12]}...); results may not match the paper.", MhealthChecksumWarning,
                      stacklevel=3)


def read_logs(source: Path, verify: bool = True) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(subject, table (rows, 24) float64)`` in subject order from a directory or zip."""
    if source.is_dir():
        for subject, f in sorted(_logs_in_dir(source).items()):
            blob = f.read_bytes()
            if verify:
                _verify(subject, hashlib.sha256(blob).hexdigest(), str(f))
            yield subject, _parse(blob, str(f))
    else:
        with zipfile.ZipFile(source) as zf:
            members = _zip_members(zf)
        if not members:
            raise not_found("mHealth_subject*.log inside the zip", [source],
                            f"Expected UCI's {ZIP_NAME} (or the download that wraps it).")
        for subject, blob in sorted(members.items()):
            name = f"{source}:mHealth_subject{subject}.log"
            if verify:
                _verify(subject, hashlib.sha256(blob).hexdigest(), name)
            yield subject, _parse(blob, name)


# --------------------------------------------------------------------------------------------
# The two preprocessings
# --------------------------------------------------------------------------------------------

def paper_rows(tables: list[tuple[int, np.ndarray]], header_quirk: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ResiliNet's ``mHealth_complete.log`` rows: (features float32 (N, 23), labels, subjects).

    Truncation toward zero is what ``"%d" % value`` does to a float in ``np.savetxt``.
    """
    parts, subjects = [], []
    for subject, table in tables:
        rows = table[1:] if header_quirk else table
        parts.append(np.trunc(rows))
        subjects.append(np.full(len(rows), subject, dtype=np.int64))
    data = np.concatenate(parts) if parts else np.zeros((0, N_FEATURES + 1))
    subject = np.concatenate(subjects) if subjects else np.zeros(0, np.int64)
    keep = data[:, N_FEATURES] != 0
    data, subject = data[keep], subject[keep]
    if header_quirk:
        data, subject = data[1:], subject[1:]
    return data[:, :N_FEATURES].astype(np.float32), data[:, N_FEATURES].astype(np.int64), subject


def load_mhealth(*, data_dir: str | Path | None = None, seed: int = 0, path: str | Path | None = None,
                 mode: str = "paper", split_seed: int = 42, header_quirk: bool = True,
                 test_subjects: tuple[int, ...] | list[int] = TEST_SUBJECTS,
                 val_subjects: tuple[int, ...] | list[int] = VAL_SUBJECTS,
                 window: int = WINDOW, step: int = STEP, normalize: bool = True,
                 download: bool = True, verify: bool = True) -> Dataset:
    """MHEALTH in the paper's per-time-step form (default) or as subject-split windows.

    ``split_seed`` (paper mode) is the paper's ``random_state=42``; ``seed`` is unused there and
    kept for the common signature. ``verify`` warns when a log's SHA-256 differs from UCI's.
    """
    if mode not in ("paper", "windowed"):
        raise ValueError(f"mode must be 'paper' or 'windowed', not {mode!r}")
    source = find_source(path, data_dir, allow_download=download)
    tables = list(read_logs(source, verify=verify))
    info: dict = {"source": str(source), "mode": mode, "subjects": [s for s, _ in tables]}

    if mode == "paper":
        x, labels, subject = paper_rows(tables, header_quirk=header_quirk)
        train, val, test = paper_split(len(labels), split_seed)
        info.update(split_seed=split_seed, header_quirk=header_quirk,
                    index={"train": train, "val": val, "test": test})
        return Dataset(
            name="mhealth",
            x_train=x[train], y_train=labels[train], x_val=x[val], y_val=labels[val],
            x_test=x[test], y_test=labels[test],
            num_classes=13, class_names=["null (unused)", *ACTIVITY_NAMES],
            feature_groups={k: list(v) for k, v in FEATURE_GROUPS.items()}, info=info,
        )

    signal = np.concatenate([t[:, :N_FEATURES] for _, t in tables]).astype(np.float32)
    label = np.concatenate([t[:, N_FEATURES] for _, t in tables]).astype(np.int64)
    subject = np.concatenate([np.full(len(t), s, dtype=np.int64) for s, t in tables])
    starts, win_labels = window_starts(label, window, step, groups=subject, keep=list(range(1, 13)))
    x = gather_windows(signal, starts, window)
    y = win_labels - 1
    win_subject = subject[starts]
    present = {s for s, _ in tables}
    test_set, val_set = sorted(present & set(test_subjects)), sorted(present & set(val_subjects))
    if set(test_set) & set(val_set):
        raise ValueError(f"validation subjects {val_set} overlap test subjects {test_set}")
    train_set = sorted(present - set(test_set) - set(val_set))
    masks = {"train": np.isin(win_subject, train_set), "val": np.isin(win_subject, val_set),
             "test": np.isin(win_subject, test_set)}
    if not masks["train"].any():
        raise ValueError(f"no training windows: subjects {info['subjects']} leave none outside "
                         f"test {test_set} and validation {val_set}")
    stats = channel_stats(x[masks["train"]]) if normalize else None
    xs = {k: (apply_stats(x[m], stats) if stats is not None else x[m]) for k, m in masks.items()}
    info.update(window=window, step=step, subjects_split={"train": train_set, "val": val_set, "test": test_set},
                window_subject={k: win_subject[m] for k, m in masks.items()},
                window_start={k: starts[m] for k, m in masks.items()})
    return Dataset(
        name="mhealth",
        x_train=xs["train"], y_train=y[masks["train"]], x_val=xs["val"], y_val=y[masks["val"]],
        x_test=xs["test"], y_test=y[masks["test"]],
        num_classes=12, class_names=list(ACTIVITY_NAMES),
        feature_groups={k: list(v) for k, v in FEATURE_GROUPS.items()},
        normalization=stats, info=info,
    )
