"""Fashion-MNIST from the IDX files the Debian package ``dataset-fashion-mnist`` installs.

The demo runs offline, so the Debian package (or a directory holding the same four files) is the
primary source; keras' downloader is only a fallback for machines with internet.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from host.ml.datasets.core import Dataset, data_roots, not_found, seeded_split

#: Where ``apt-get install dataset-fashion-mnist`` puts the files (patched in tests).
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

VAL_SIZE = 6000


def read_idx(path: Path) -> np.ndarray:
    """Decode one (optionally gzipped) IDX file of unsigned bytes, trusting its header for the shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise ValueError(f"{path}: header says {dims} ({expected} bytes) but holds {len(raw) - offset}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def find_dir(data_dir: str | Path | None) -> tuple[Path | None, list[Path]]:
    """The first directory holding all four IDX files, and every directory looked at."""
    candidates = data_roots(data_dir, "fashion-mnist")
    if data_dir is None:
        candidates.append(SYSTEM_DIR)
    for candidate in candidates:
        if all((candidate / f).is_file() for f in FILES.values()):
            return candidate, candidates
    return None, candidates


def keras_download() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """keras' own downloader: works online, raises offline (replaced in tests)."""
    import keras  # deferred: importing TensorFlow costs seconds and is not needed otherwise

    return keras.datasets.fashion_mnist.load_data()


def load_fashion(*, data_dir: str | Path | None = None, seed: int = 0, val_size: int = VAL_SIZE,
                 download: bool = True) -> Dataset:
    """Fashion-MNIST: x (N, 28, 28, 1) float32 in [0, 1]; 54k train / 6k val / 10k official test.

    Validation is a seeded sample of the official 60k training images (the test set stays the
    official one so results compare with the literature).
    """
    directory, looked = find_dir(data_dir)
    if directory is not None:
        arrays = {key: read_idx(directory / name) for key, name in FILES.items()}
        source = str(directory)
    else:
        try:
            if not download:
                raise OSError("download disabled")
            (xtr, ytr), (xte, yte) = keras_download()
        except Exception as exc:
            raise not_found(
                "Fashion-MNIST", [d / f for d in looked for f in FILES.values()][:8],
                "Install it with `sudo apt-get install dataset-fashion-mnist` (files go to "
                f"{SYSTEM_DIR}), or pass data_dir= a directory holding {', '.join(FILES.values())}. "
                f"The keras download fallback failed too ({type(exc).__name__}: {exc}).",
            ) from exc
        arrays = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}
        source = "keras.datasets.fashion_mnist"
    if len(arrays["x_train"]) != len(arrays["y_train"]) or len(arrays["x_test"]) != len(arrays["y_test"]):
        raise ValueError(f"Fashion-MNIST at {source}: image and label counts differ")

    train_idx, val_idx = seeded_split(len(arrays["y_train"]),
                                      [1 - val_size / len(arrays["y_train"]), val_size / len(arrays["y_train"])],
                                      seed)

    def images(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / np.float32(255.0))[..., None]

    x_all, y_all = arrays["x_train"], arrays["y_train"].astype(np.int64)
    return Dataset(
        name="fashion",
        x_train=images(x_all[train_idx]), y_train=y_all[train_idx],
        x_val=images(x_all[val_idx]), y_val=y_all[val_idx],
        x_test=images(arrays["x_test"]), y_test=arrays["y_test"].astype(np.int64),
        num_classes=10, class_names=list(CLASS_NAMES), feature_groups=None,
        info={"source": source, "seed": seed, "train_index": train_idx, "val_index": val_idx},
    )
