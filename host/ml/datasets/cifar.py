"""CIFAR-10 (and CIFAR-100) from the shared JPEG archive or the official python batches.

The shared archive (``cifar10/cifar10_jpeg.tar.gz``: ``train/<class>/NNNN.jpg``, ``test/<class>/...``)
needs 60k JPEG decodes, a few seconds of CPU, so the decoded uint8 arrays are cached as .npz under
``cache_dir()/datasets`` keyed by the archive's path, size and mtime. The official batches
(``path=``: ``data_batch_1..5``/``test_batch``, a directory or the ``cifar-10-python.tar.gz``) are
plain pickles and load directly.

Splits: ``"standard"`` keeps the official 10k test set and draws a seeded 5k validation set from
the 50k training images; ``"paper"`` is ResiliNet's: all 60k merged (train then test) and re-split
80/10/10 exactly as sklearn's ``train_test_split(random_state=42)`` twice. (From the JPEG archive the
images are ordered by class, not in the official batch order, so the paper split then draws the
same sizes but not the same images as the paper.)
"""
from __future__ import annotations

import io
import pickle
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from host.ml.datasets.core import (Dataset, cached_arrays, data_roots, first_existing, not_found, paper_split,
                   seeded_split, source_fingerprint)

JPEG_ARCHIVE = "cifar10_jpeg.tar.gz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
VAL_SIZE = 5000

_JPEG = re.compile(r"^(?:\./)?(train|test)/([^/]+)/([^/]+)\.jpe?g$", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Decoders, each returning uint8 x (N, 32, 32, 3) and int64 y for train and test
# --------------------------------------------------------------------------------------------

def read_jpeg_tar(path: str | Path, class_names: list[str] = CLASS_NAMES) -> dict[str, np.ndarray]:
    """Decode a ``train|test/<class>/<name>.jpg`` tar(.gz) while streaming it.

    Decoding as members arrive keeps only compressed bytes of one image in flight; a 32x32 JPEG
    decodes in ~0.1 ms, so the whole 60k archive takes seconds, not worth a thread pool on 2 cores.
    Samples are ordered by (split, class, file name) so the arrays never depend on archive order.
    """
    from PIL import Image  # deferred: pillow is only needed for this source

    index = {name: i for i, name in enumerate(class_names)}
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    with tarfile.open(path, "r:*") as tf:
        for member in tf:
            m = _JPEG.match(member.name)
            if not member.isfile() or m is None:
                continue
            split, cls, stem = m.groups()
            if cls not in index:
                raise ValueError(f"{path}: unknown class folder {cls!r} (expected {class_names})")
            with Image.open(io.BytesIO(tf.extractfile(member).read())) as im:
                pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
            found[split].append((index[cls], stem, pixels))
    out: dict[str, np.ndarray] = {}
    for split, items in found.items():
        if not items:
            raise ValueError(f"{path}: no {split}/<class>/*.jpg images")
        items.sort(key=lambda t: (t[0], t[1]))
        out[f"x_{split}"] = np.stack([t[2] for t in items])
        out[f"y_{split}"] = np.array([t[0] for t in items], dtype=np.int64)
    return out


def _unpickle(blob: bytes) -> dict[bytes, Any]:
    return pickle.loads(blob, encoding="bytes")


def _batch_images(batch: dict[bytes, Any]) -> np.ndarray:
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def _read_pickles(path: Path, names: list[str]) -> dict[str, dict[bytes, Any]] | None:
    """Named pickles from a directory (or its single subdirectory) or a tar(.gz); None if absent."""
    if path.is_dir():
        for d in [path, *sorted(p for p in path.iterdir() if p.is_dir())]:
            if all((d / n).is_file() for n in names if n != "meta"):
                return {n: _unpickle((d / n).read_bytes()) for n in names if (d / n).is_file()}
        return None
    if path.is_file() and tarfile.is_tarfile(path):
        got: dict[str, dict[bytes, Any]] = {}
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in names:
                    got[base] = _unpickle(tf.extractfile(member).read())
        return got if all(n in got for n in names if n != "meta") else None
    return None


def read_cifar10_batches(path: str | Path) -> dict[str, np.ndarray] | None:
    """The official CIFAR-10 python batches (``data_batch_1..5``, ``test_batch``); None if absent."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    got = _read_pickles(Path(path).expanduser(), names)
    if got is None:
        return None
    train = [got[f"data_batch_{i}"] for i in range(1, 6)]
    return {
        "x_train": np.concatenate([_batch_images(b) for b in train]),
        "y_train": np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in train]),
        "x_test": _batch_images(got["test_batch"]),
        "y_test": np.asarray(got["test_batch"][b"labels"], dtype=np.int64),
    }


def read_cifar100(path: str | Path, label_mode: str = "fine") -> tuple[dict[str, np.ndarray], list[str]] | None:
    """The official CIFAR-100 python files (``train``, ``test``, optional ``meta``); None if absent."""
    got = _read_pickles(Path(path).expanduser(), ["train", "test", "meta"])
    if got is None:
        return None
    key = f"{label_mode}_labels".encode()
    arrays = {f"x_{s}": _batch_images(got[s]) for s in ("train", "test")}
    arrays.update({f"y_{s}": np.asarray(got[s][key], dtype=np.int64) for s in ("train", "test")})
    meta = got.get("meta", {})
    names_key = f"{label_mode}_label_names".encode()
    n = 100 if label_mode == "fine" else 20
    names = [b.decode() if isinstance(b, bytes) else str(b) for b in meta.get(names_key, [])] or [str(i) for i in range(n)]
    return arrays, names


def keras_download() -> dict[str, np.ndarray]:
    """keras' CIFAR-10 downloader: works online, raises offline (replaced in tests)."""
    import keras  # deferred: importing TensorFlow costs seconds

    (xtr, ytr), (xte, yte) = keras.datasets.cifar10.load_data()
    return {"x_train": xtr, "y_train": ytr.reshape(-1).astype(np.int64),
            "x_test": xte, "y_test": yte.reshape(-1).astype(np.int64)}


# --------------------------------------------------------------------------------------------
# Loader
# --------------------------------------------------------------------------------------------

def _source_arrays(path: Path, use_cache: bool) -> dict[str, np.ndarray] | None:
    """Arrays from a user path: python batches (dir or tarball) or a JPEG tree tarball."""
    batches = read_cifar10_batches(path)
    if batches is not None:
        return batches
    if path.is_file() and tarfile.is_tarfile(path):
        return cached_arrays("cifar10_jpeg", source_fingerprint(path), lambda: read_jpeg_tar(path), use_cache)
    return None


def _to_float(images: np.ndarray) -> np.ndarray:
    return np.divide(images, np.float32(255.0), dtype=np.float32)


def load_cifar(*, data_dir: str | Path | None = None, seed: int = 0, path: str | Path | None = None,
               variant: str = "cifar10", split: str = "standard", split_seed: int = 42,
               val_size: int = VAL_SIZE, label_mode: str = "fine", use_cache: bool = True,
               download: bool = True) -> Dataset:
    """CIFAR-10/100 as x (N, 32, 32, 3) float32 in [0, 1]; standard split is 45k / 5k / 10k.

    ``variant="cifar100"`` needs ``path=`` to the CIFAR-100 python files (``label_mode`` "fine"
    or "coarse"). ``split_seed`` only drives ``split="paper"`` (the paper's random_state=42).
    """
    if split not in ("standard", "paper"):
        raise ValueError(f"split must be 'standard' or 'paper', not {split!r}")
    if variant == "cifar100":
        if label_mode not in ("fine", "coarse"):
            raise ValueError(f"label_mode must be 'fine' or 'coarse', not {label_mode!r}")
        got = read_cifar100(path, label_mode) if path is not None else None
        if got is None:
            raise not_found("CIFAR-100 python files (train, test, meta)", [Path(path)] if path else [],
                            f"Download {CIFAR100_URL}, unpack it, and pass variant='cifar100', "
                            "path='.../cifar-100-python'.")
        arrays, names = got
        source = str(path)
    elif variant == "cifar10":
        names = list(CLASS_NAMES)
        arrays, source, looked = None, "", []  # looked: paths and attempted downloads
        if path is not None:
            p = Path(path).expanduser()
            looked.append(p)
            arrays, source = _source_arrays(p, use_cache), str(p)
        else:
            candidates = [root / JPEG_ARCHIVE for root in data_roots(data_dir, "cifar10")]
            looked += candidates
            found = first_existing(candidates)
            if found is not None:
                arrays = cached_arrays("cifar10_jpeg", source_fingerprint(found),
                                       lambda: read_jpeg_tar(found), use_cache)
                source = str(found)
            elif download:
                try:
                    arrays, source = keras_download(), "keras.datasets.cifar10"
                except Exception as exc:
                    looked.append(f"keras.datasets.cifar10 download (failed: {type(exc).__name__}: {exc})")
        if arrays is None:
            raise not_found(
                "CIFAR-10", looked,
                f"Put {JPEG_ARCHIVE} under $RESILINET_DATA/cifar10/ (see shared/data/README.md), or "
                f"download {CIFAR10_URL} and pass path= the archive or its cifar-10-batches-py directory.",
            )
    else:
        raise ValueError(f"variant must be 'cifar10' or 'cifar100', not {variant!r}")

    info: dict[str, Any] = {"source": source, "variant": variant, "split": split}
    if split == "standard":
        n = len(arrays["y_train"])
        train, val = seeded_split(n, [1 - val_size / n, val_size / n], seed)
        info.update(seed=seed, index={"train": train, "val": val})
        x_train, y_train = _to_float(arrays["x_train"][train]), arrays["y_train"][train]
        x_val, y_val = _to_float(arrays["x_train"][val]), arrays["y_train"][val]
        x_test, y_test = _to_float(arrays["x_test"]), arrays["y_test"]
    else:
        x_all = np.concatenate([arrays["x_train"], arrays["x_test"]])
        y_all = np.concatenate([arrays["y_train"], arrays["y_test"]])
        train, val, test = paper_split(len(y_all), split_seed)
        info.update(split_seed=split_seed, index={"train": train, "val": val, "test": test})
        x_train, y_train = _to_float(x_all[train]), y_all[train]
        x_val, y_val = _to_float(x_all[val]), y_all[val]
        x_test, y_test = _to_float(x_all[test]), y_all[test]
    return Dataset(
        name=variant, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
        x_test=x_test, y_test=y_test, num_classes=len(names), class_names=names,
        feature_groups=None, info=info,
    )
