"""UCI HAPT (smartphone human activities) raw signals, windowed the way UCI HAR was.

Shapes with the shared ``hapt_raw.npz`` and default options (``classes="har6"``, seed 0):
x (N, 128, 6) float32 — 2.56 s at 50 Hz, channels [acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z],
standardised per channel with training-split statistics; 6 classes; split by user:

* train 6229 windows (18 users), val 1186 (users 17, 21, 26 for seed 0), test 2996 (the 9 official
  UCI HAR test users) — 10411 in all, close to UCI HAR's 10299;
* ``classes="all12"``: 6523 / 1244 / 3162 windows, 12 classes (transitions are short and rare).

``python -m host.ml.datasets hapt [classes=all12]`` prints the counts for other options.

Two sources yield the same raw arrays (``acc``, ``gyro``, ``label``, ``user``, ``session``,
``sequence``): the shared npz, and the UCI archive's ``RawData`` directory (``path=``). Windowing
and splitting then run on those arrays only, so both sources are treated identically.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from host.ml.datasets.core import Dataset, apply_stats, channel_stats, data_roots, first_existing, not_found
from host.ml.datasets.windows import gather_windows, window_starts

NPZ_NAME = "hapt_raw.npz"
WINDOW = 128  # 2.56 s at 50 Hz, as UCI HAR
STEP = 64     # 50 % overlap

#: UCI HAR's official test subjects; using them keeps results comparable with published HAR work.
TEST_USERS = (2, 4, 9, 10, 12, 13, 18, 20, 24)

ACTIVITY_NAMES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING",
                  "STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE", "LIE_TO_STAND"]

CLASS_SETS = {"har6": list(range(1, 7)), "all12": list(range(1, 13))}

CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
FEATURE_GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}

_RAW_FILE = re.compile(r"^acc_exp(\d+)_user(\d+)\.txt$")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in ("acc", "gyro", "label", "user", "session", "sequence")}


def read_uci_archive(path: str | Path) -> dict[str, np.ndarray]:
    """Read the UCI archive layout into the same arrays the shared npz holds.

    Accepts the archive root (containing ``RawData/``) or ``RawData`` itself, which holds
    ``acc_expXX_userYY.txt`` / ``gyro_expXX_userYY.txt`` (3 space-separated columns per line) and
    ``labels.txt`` (experiment, user, activity, start, end). Start/end are inclusive sample indices
    counted from 0 — the convention of the shared npz, whose first segment (exp 1, activity 5,
    250..1232) matches the archive's first labels.txt row — so both sources agree sample for sample.
    Unlabelled samples get label -1.
    """
    root = Path(path).expanduser()
    raw = root / "RawData" if (root / "RawData").is_dir() else root
    labels_file = raw / "labels.txt"
    acc_files = sorted((f for f in raw.glob("acc_exp*_user*.txt") if _RAW_FILE.match(f.name)),
                       key=lambda f: int(_RAW_FILE.match(f.name).group(1)))
    if not labels_file.is_file() or not acc_files:
        raise not_found("UCI HAPT archive (RawData/acc_expXX_userYY.txt, gyro_..., labels.txt)",
                        [labels_file, raw / "acc_exp01_user01.txt"],
                        "Download 'Smartphone-Based Recognition of Human Activities and Postural "
                        "Transitions' from the UCI repository and pass path= the unpacked directory.")
    table = np.loadtxt(labels_file, dtype=np.int64, ndmin=2)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("acc", "gyro", "label", "user", "session", "sequence")}
    for acc_file in acc_files:
        exp, user = (int(g) for g in _RAW_FILE.match(acc_file.name).groups())
        gyro_file = acc_file.with_name(acc_file.name.replace("acc_", "gyro_", 1))
        if not gyro_file.is_file():
            raise not_found(f"HAPT gyroscope file for experiment {exp}", [gyro_file],
                            "Every acc_expXX_userYY.txt needs its gyro_expXX_userYY.txt partner.")
        acc = np.loadtxt(acc_file, dtype=np.float64, ndmin=2)
        gyro = np.loadtxt(gyro_file, dtype=np.float64, ndmin=2)
        if acc.shape != gyro.shape or acc.shape[1] != 3:
            raise ValueError(f"{acc_file.name} {acc.shape} and {gyro_file.name} {gyro.shape} disagree")
        n = len(acc)
        label = np.full(n, -1, dtype=np.int8)
        for _, _, activity, start, end in table[table[:, 0] == exp]:
            if start < 0 or end >= n or end < start:
                raise ValueError(f"labels.txt: segment {start}..{end} outside experiment {exp} ({n} samples)")
            label[start:end + 1] = activity
        parts["acc"].append(acc)
        parts["gyro"].append(gyro)
        parts["label"].append(label)
        parts["user"].append(np.full(n, user, dtype=np.int8))
        parts["session"].append(np.full(n, exp, dtype=np.int8))
        parts["sequence"].append(np.arange(n, dtype=np.int32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def find_npz(data_dir: str | Path | None) -> tuple[Path | None, list[Path]]:
    candidates = [root / NPZ_NAME for root in data_roots(data_dir, "hapt")]
    return first_existing(candidates), candidates


def load_hapt(*, data_dir: str | Path | None = None, seed: int = 0, path: str | Path | None = None,
              classes: str = "har6", window: int = WINDOW, step: int = STEP,
              test_users: tuple[int, ...] | list[int] = TEST_USERS, val_users: tuple[int, ...] | list[int] | None = None,
              n_val_users: int = 3, normalize: bool = True) -> Dataset:
    """HAPT windows split by person, so no one is both trained and tested on (as UCI HAR).

    ``path``: a UCI archive directory instead of the shared npz. ``classes``: "har6" (labels 1-6,
    the HAR benchmark) or "all12" (with postural transitions), mapped to 0..5 / 0..11.
    Validation users are a seeded draw of ``n_val_users`` non-test users unless given.
    """
    if classes not in CLASS_SETS:
        raise ValueError(f"classes must be one of {sorted(CLASS_SETS)}, not {classes!r}")
    if path is not None:
        raw = read_uci_archive(path)
        source = str(Path(path).expanduser())
    else:
        found, looked = find_npz(data_dir)
        if found is None:
            raise not_found(
                f"HAPT raw signals ({NPZ_NAME})", looked,
                f"Put {NPZ_NAME} under $RESILINET_DATA/hapt/ (see shared/data/README.md), or pass "
                "path= an unpacked UCI HAPT archive (RawData/acc_expXX_userYY.txt ...).",
            )
        raw = read_npz(found)
        source = str(found)

    keep = CLASS_SETS[classes]
    starts, labels = window_starts(raw["label"], window, step, groups=raw["session"],
                                   sequence=raw["sequence"], keep=keep)
    signal = np.concatenate([raw["acc"], raw["gyro"]], axis=1).astype(np.float32)
    x = gather_windows(signal, starts, window)
    y = labels.astype(np.int64) - keep[0]
    users = raw["user"][starts].astype(np.int64)

    present = set(np.unique(raw["user"]).tolist())
    test_set = sorted(present & {int(u) for u in test_users})
    remaining = sorted(present - set(test_set))
    if val_users is None:
        rng = np.random.default_rng(seed)
        val_set = sorted(int(u) for u in rng.choice(remaining, size=min(n_val_users, len(remaining)), replace=False))
    else:
        val_set = sorted(present & {int(u) for u in val_users})
    if set(val_set) & set(test_set):
        raise ValueError(f"validation users {val_set} overlap test users {test_set}")
    train_set = sorted(set(remaining) - set(val_set))

    masks = {"train": np.isin(users, train_set), "val": np.isin(users, val_set), "test": np.isin(users, test_set)}
    stats = channel_stats(x[masks["train"]]) if normalize and masks["train"].any() else None
    xs = {k: (apply_stats(x[m], stats) if stats is not None else x[m]) for k, m in masks.items()}
    return Dataset(
        name="hapt",
        x_train=xs["train"], y_train=y[masks["train"]],
        x_val=xs["val"], y_val=y[masks["val"]],
        x_test=xs["test"], y_test=y[masks["test"]],
        num_classes=len(keep), class_names=[ACTIVITY_NAMES[c - 1] for c in keep],
        feature_groups={k: list(v) for k, v in FEATURE_GROUPS.items()},
        normalization=None if stats is None else {**stats, "channels": np.array(CHANNELS)},
        info={"source": source, "seed": seed, "classes": classes, "window": window, "step": step,
              "channels": list(CHANNELS), "users": {"train": train_set, "val": val_set, "test": test_set},
              "window_user": {k: users[m] for k, m in masks.items()},
              "window_start": {k: starts[m] for k, m in masks.items()}},
    )
