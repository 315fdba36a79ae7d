"""Every dataset behind one call, ``load_dataset(name, **options)``, returning a split ``Dataset``.

Presets name a dataset and its options (``[dataset] name = "mhealth", mode = "paper"``), so every
loader takes keyword options only, is deterministic for a given ``seed``, and raises
``DatasetNotFoundError`` with instructions when its files are missing (these machines are offline).

=========  ===============================================  ==========================================
name       source                                           x per sample
=========  ===============================================  ==========================================
fashion    Debian ``dataset-fashion-mnist`` IDX files       (28, 28, 1) in [0, 1]
hapt       ``$RESILINET_DATA/hapt/hapt_raw.npz`` / UCI dir  (128, 6) windows, standardised
mhealth    UCI MHEALTH logs (``path=``, shared dir, UCI)    (23,) paper mode / (128, 23) windowed
cifar10    ``$RESILINET_DATA/cifar10/cifar10_jpeg.tar.gz``  (32, 32, 3) in [0, 1]
npz        a user's .npz (``path=``)                        as stored
digits     scikit-learn's ``load_digits`` (if installed)    (8, 8, 1) in [0, 1]
imagenet   your ILSVRC-2012 (``path=``, $RESILINET_IMAGENET) (160, 160, 3) in [0, 1] (``image_size=``)
=========  ===============================================  ==========================================

``mhealth_standin`` (a labelled SYNTHETIC stand-in for ``mhealth`` paper mode, made by a generator, no files):
(23,) raw and truncated as paper mode, 13 classes (0 unused), MHEALTH's sensor groups; sizes ``n_train=`` etc.

``multiview_standin`` (a labelled CIFAR-10 stand-in for the camera preset's multi-view set) and
``multiview_npz`` (a user's cam1..cam6 .npz, ``path=``): (32, 32, 6), one grayscale view per camera.

``python -m host.ml.datasets NAME [key=value ...]`` prints ``describe()`` of a dataset.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

import numpy as np

from host.ml.datasets.cifar import load_cifar
from host.ml.datasets.core import Dataset, DatasetNotFoundError, DatasetOptionError, SPLITS
from host.ml.datasets.digits import load_digits
from host.ml.datasets.fashion import load_fashion
from host.ml.datasets.hapt import load_hapt
from host.ml.datasets.imagenet import load_imagenet
from host.ml.datasets.mhealth import load_mhealth
from host.ml.datasets.mhealth_standin import load_mhealth_standin
from host.ml.datasets.multiview import load_multiview_npz, load_multiview_standin
from host.ml.datasets.user_npz import load_npz

__all__ = ["DATASETS", "Dataset", "DatasetNotFoundError", "DatasetOptionError", "UnknownDatasetError",
           "check_dataset_name", "describe", "load_dataset"]

#: Loader per dataset name; each takes ``data_dir=``, ``seed=`` and its own keyword options.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "fashion": load_fashion,
    "hapt": load_hapt,
    "mhealth": load_mhealth,
    "mhealth_standin": load_mhealth_standin,
    "cifar10": load_cifar,
    "npz": load_npz,
    "digits": load_digits,
    "multiview_standin": load_multiview_standin,
    "multiview_npz": load_multiview_npz,
    "imagenet": load_imagenet,
}


class UnknownDatasetError(ValueError):
    """A dataset name that is not in :data:`DATASETS` (the message lists the names)."""


def check_dataset_name(name: str) -> None:
    """Raise :class:`UnknownDatasetError` unless ``name`` is a dataset of :data:`DATASETS` (nothing is loaded)."""
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; datasets: {', '.join(sorted(DATASETS))}")


def load_dataset(name: str, *, data_dir: str | Path | None = None, seed: int = 0, **options: Any) -> Dataset:
    """Load dataset ``name`` with loader-specific ``options`` (see each loader's docstring).

    ``data_dir`` replaces the shared data directory (``$RESILINET_DATA``) for this call;
    ``seed`` drives every random split the loader draws.
    """
    check_dataset_name(name)
    # an option the loader does not take is the user's typo, not a bug: say which options exist
    params = inspect.signature(DATASETS[name]).parameters
    known = [p for p in params if p not in ("data_dir", "seed")]
    unknown = [k for k in options if k not in known]
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        raise DatasetOptionError(f"dataset {name} has no option {unknown[0]!r}; its options: {', '.join(known)}")
    return DATASETS[name](data_dir=data_dir, seed=seed, **options)


def describe(ds: Dataset) -> str:
    """A few human-readable lines (shapes, split sizes, classes, sensor groups) for CLI output."""
    sizes = {s: len(ds.split(s)[1]) for s in SPLITS}
    total = sum(sizes.values()) or 1
    lines = [
        f"dataset {ds.name}: sample shape {ds.input_shape}, x float32, y int64",
        "splits: " + ", ".join(f"{s} {n} ({100 * n / total:.1f} %)" for s, n in sizes.items()),
        f"classes ({ds.num_classes}): " + ", ".join(ds.class_names),
    ]
    if ds.feature_groups:
        lines.append("feature groups: " + "; ".join(f"{k} {v}" for k, v in ds.feature_groups.items()))
    else:
        lines.append("feature groups: none (one source reads every feature)")
    if ds.normalization is not None:
        lines.append("normalised per channel with training-split mean/std")
    if sizes["train"] and sizes["test"]:
        counts = np.bincount(ds.y_train, minlength=ds.num_classes)
        lines.append(f"train label counts: {counts.tolist()}")
        lines.append(f"random-guess accuracy (train freq. vs test freq.): {ds.random_guess_accuracy():.4f}")
    if "source" in ds.info:
        lines.append(f"source: {ds.info['source']}")
    return "\n".join(lines)
