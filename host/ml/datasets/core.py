"""The shared pieces every loader builds on: the Dataset record, the not-found error, splits, caching.

Loaders differ in where bytes come from; everything after that (how a split is drawn, how a cache
file is named, how a missing file is reported) lives here so that all datasets behave alike.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from host.paths import DATA_ENV, cache_dir, shared_data_dir

#: Bumped whenever a cached array's meaning changes, so stale caches are never read back.
CACHE_VERSION = 1

SPLITS = ("train", "val", "test")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where we looked.

    The message always names what was looked for and how to get it, because the person who sees
    it usually just cloned the repository and has no idea which package or download is meant.
    """


class DatasetOptionError(ValueError):
    """A dataset option its loader does not take, or a value it cannot use; the message names the option."""


@dataclass
class Dataset:
    """One dataset, already split, in the shapes the models consume.

    ``x`` is float32 with samples on the first axis; ``y`` holds int64 class ids in
    ``[0, num_classes)``. ``feature_groups`` maps a sensor name to indices along the *last* axis of
    ``x``: it tells the topology which features each sensor node may read (None = one source sees
    everything). ``normalization`` keeps per-channel statistics that were applied (fitted on the
    training split only) so the same transform can be reproduced on a board. ``info`` records
    provenance (source file, split members, seeds) for reports.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: list[str]
    feature_groups: dict[str, list[int]] | None = None
    normalization: dict[str, np.ndarray] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Coerce once here so no downstream code has to guess dtypes; fail early on inconsistent
        # splits because a mismatch discovered during training is much harder to trace.
        for split in SPLITS:
            x = np.asarray(getattr(self, f"x_{split}"), dtype=np.float32)
            y = np.asarray(getattr(self, f"y_{split}"), dtype=np.int64).reshape(-1)
            if len(x) != len(y):
                raise ValueError(f"{self.name}: x_{split} has {len(x)} samples but y_{split} has {len(y)}")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(f"{self.name}: y_{split} outside [0, {self.num_classes})")
            setattr(self, f"x_{split}", x)
            setattr(self, f"y_{split}", y)
        shapes = {getattr(self, f"x_{s}").shape[1:] for s in SPLITS if len(getattr(self, f"x_{s}"))}
        if len(shapes) > 1:
            raise ValueError(f"{self.name}: splits disagree on sample shape: {sorted(shapes)}")
        self.class_names = [str(c) for c in self.class_names]
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes")
        if self.feature_groups is not None:
            width = self.x_train.shape[-1] if self.x_train.ndim > 1 else 1
            groups = {str(k): [int(i) for i in v] for k, v in self.feature_groups.items()}
            for group, idx in groups.items():
                if not idx or min(idx) < 0 or max(idx) >= width:
                    raise ValueError(f"{self.name}: feature group {group!r} indexes outside the last axis ({width})")
            self.feature_groups = groups

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, what a model's Input layer needs."""
        return tuple(self.x_train.shape[1:])

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of a split by name, so callers can loop over SPLITS."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def label_frequencies(self, split: str = "train") -> np.ndarray:
        """Fraction of each class in a split (length num_classes, sums to 1).

        Class imbalance decides what 'chance' means, which is why accuracies are reported against it.
        """
        _, y = self.split(split)
        if len(y) == 0:
            raise ValueError(f"{self.name}: split {split!r} is empty")
        return np.bincount(y, minlength=self.num_classes).astype(np.float64) / len(y)

    def random_guess_accuracy(self) -> float:
        """Expected test accuracy of a guesser that draws labels from the training frequencies.

        ``sum_k pi_train[k] * pi_test[k]``: the floor a failed network (which outputs noise) falls to,
        so resilience results are read against this number, not against 1/num_classes.
        """
        return float(np.dot(self.label_frequencies("train"), self.label_frequencies("test")))

    def subset(self, max_train: int | None = None, max_val: int | None = None,
               max_test: int | None = None, seed: int = 0) -> "Dataset":
        """A smaller copy for quick tests: each split is a seeded sample without replacement.

        Each split draws from its own random stream, so shrinking one split never changes which
        samples another keeps. Original order is preserved inside each split.
        """
        limits = {"train": max_train, "val": max_val, "test": max_test}
        changes: dict[str, np.ndarray] = {}
        for i, split in enumerate(SPLITS):
            x, y = self.split(split)
            limit = limits[split]
            if limit is None or limit >= len(y):
                continue
            if limit < 0:
                raise ValueError(f"max_{split} must be >= 0")
            keep = np.sort(np.random.default_rng([seed, i]).choice(len(y), size=limit, replace=False))
            changes[f"x_{split}"] = x[keep]
            changes[f"y_{split}"] = y[keep]
        info = dict(self.info)
        if changes:
            info["subset"] = {"max_train": max_train, "max_val": max_val, "max_test": max_test, "seed": seed}
        return replace(self, **changes, info=info)


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------

def seeded_split(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split ``range(n)`` into consecutive chunks of one seeded permutation.

    Sizes are ``round(f * n)`` for all chunks but the first, which takes the remainder, so the
    training split never loses samples to rounding. Each chunk's indices are sorted so the data
    keeps its source order (useful when inspecting it).
    """
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    perm = np.random.default_rng(seed).permutation(n)
    sizes = [int(round(f * n)) for f in fractions[1:]]
    sizes.insert(0, n - sum(sizes))
    out, start = [], 0
    for size in sizes:
        out.append(np.sort(perm[start:start + size]))
        start += size
    return out


def sklearn_train_test_split(n: int, test_size: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices exactly as ``sklearn.model_selection.train_test_split(..., random_state, shuffle=True)``.

    ResiliNet draws its 80/10/10 splits with sklearn; replaying the same RandomState permutation
    reproduces the paper's split sample for sample without depending on scikit-learn.
    ``n_test = ceil(test_size * n)``; test takes the permutation's head, train the rest (unsorted,
    in the permutation's order, as sklearn returns them).
    """
    n_test = math.ceil(test_size * n)
    perm = np.random.RandomState(random_state).permutation(n)
    return perm[n_test:], perm[:n_test]


def paper_split(n: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ResiliNet's 80/10/10 split: hold out 20 %, then halve the held-out part into val and test.

    Returns (train, val, test) indices into the original ``n`` rows, in the order sklearn yields.
    """
    train, held = sklearn_train_test_split(n, 0.20, seed)
    val_in_held, test_in_held = sklearn_train_test_split(len(held), 0.50, seed)
    return train, held[val_in_held], held[test_in_held]


def channel_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel mean and std over every axis but the last (std floored to avoid dividing by 0)."""
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64)
    std = np.where(std < 1e-8, 1.0, std)
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}


def apply_stats(x: np.ndarray, stats: Mapping[str, np.ndarray]) -> np.ndarray:
    """Standardise with precomputed statistics (the training split's)."""
    return ((x - stats["mean"]) / stats["std"]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Where files are
# --------------------------------------------------------------------------------------------

def data_roots(data_dir: str | Path | None, subdir: str) -> list[Path]:
    """Directories to search for a dataset: ``data_dir`` (and its ``subdir``), else the shared one.

    An explicit ``data_dir`` replaces ``$RESILINET_DATA`` rather than adding to it, so a user who
    points somewhere never silently gets data from elsewhere.
    """
    roots: list[Path] = []
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        roots += [base, base / subdir]
    else:
        shared = shared_data_dir()
        if shared is not None:
            roots.append(shared / subdir)
    return roots


def first_existing(candidates: Iterable[Path]) -> Path | None:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return None


def not_found(what: str, looked: Iterable[Path | str], how: str) -> DatasetNotFoundError:
    """Build the error every loader raises: what, where we looked, and how to get it."""
    where = "\n".join(f"  - {p}" for p in looked) or "  (no candidate locations: shared data dir not set)"
    return DatasetNotFoundError(
        f"{what} not found. Looked for:\n{where}\n{how}\n"
        f"(Shared data directory comes from ${DATA_ENV}, default ../shared/data beside the repository.)"
    )


# --------------------------------------------------------------------------------------------
# Cache of decoded arrays
# --------------------------------------------------------------------------------------------

def datasets_cache_dir() -> Path:
    path = cache_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_fingerprint(path: Path) -> dict[str, Any]:
    """Identity of a source file for cache keys: a changed file means a new cache entry."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_path(tag: str, key: Mapping[str, Any]) -> Path:
    blob = json.dumps({"v": CACHE_VERSION, "tag": tag, **key}, sort_keys=True, default=str)
    return datasets_cache_dir() / f"{tag}-{hashlib.sha1(blob.encode()).hexdigest()[:16]}.npz"


def cached_arrays(tag: str, key: Mapping[str, Any], build: Callable[[], dict[str, np.ndarray]],
                  use_cache: bool = True) -> dict[str, np.ndarray]:
    """Return ``build()``'s arrays, reading/writing an .npz under ``cache_dir()/datasets``.

    Written atomically (temp file + rename) because several processes may load the same dataset
    at once; an unreadable cache file is rebuilt instead of failing.
    """
    if not use_cache:
        return build()
    target = cache_path(tag, key)
    if target.exists():
        try:
            with np.load(target, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except Exception:  # corrupt or truncated: rebuild below
            pass
    arrays = build()
    fd, tmp = tempfile.mkstemp(prefix=target.stem, suffix=".tmp.npz", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is meant to be shared
        os.replace(tmp, target)
    except OSError:
        # A read-only or full cache must not stop loading; we just pay the decode again next time.
        Path(tmp).unlink(missing_ok=True)
    return arrays
