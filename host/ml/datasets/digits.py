"""sklearn's 8x8 digits: a tiny image set for smoke tests, available only where sklearn is installed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from host.ml.datasets.core import Dataset, DatasetNotFoundError, seeded_split


def load_digits(*, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """1797 images as x (N, 8, 8, 1) float32 in [0, 1], seeded 80/10/10 split, 10 classes."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:
        raise DatasetNotFoundError(
            "digits: this dataset ships inside scikit-learn, which is not installed "
            "(`pip install scikit-learn`); it is not part of this project's requirements."
        ) from exc
    bunch = sk_load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0))[..., None]
    y = np.asarray(bunch.target, dtype=np.int64)
    train, val, test = seeded_split(len(y), [0.8, 0.1, 0.1], seed)
    return Dataset(name="digits", x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val],
                   x_test=x[test], y_test=y[test], num_classes=10, class_names=[str(i) for i in range(10)],
                   info={"source": "sklearn.datasets.load_digits", "seed": seed})
