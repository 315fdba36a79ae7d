"""ImageNet (ILSVRC-2012) from the user's copy, decoded through tf.data with parallel decode.

Point at it with ``[dataset] path = "..."`` (``--dataset-opt path=...``) or ``$RESILINET_IMAGENET``; the
shared data directory's ``imagenet/`` is tried last. Two layouts are recognised under that directory:

- **directory**: ``train/<wnid>/*.JPEG`` (one folder per class; classes = the sorted folder names), and the
  validation images either as ``val/<wnid>/*.JPEG`` or flat ``val/*.JPEG`` with labels from ``val_labels.txt``
  (lines ``<file name> <wnid>``, in ``val/`` or the root) or Kaggle's ``LOC_val_solution.csv``
  (``ImageId,PredictionString`` whose first word is the wnid).
- **tfrecord**: the TF-slim conversion (``build_imagenet_data.py``): ``train-*-of-*`` and ``validation-*-of-*``
  files of ``tf.train.Example`` with ``image/encoded`` (JPEG bytes) and ``image/class/label`` (1..1000:
  ``label_offset=1`` maps it to 0..999; 0 would be slim's background class), optionally
  ``image/class/synset`` (the wnid, used as the class name).

ImageNet's validation set is our test set (as in the paper); our validation split is ``val_fraction`` of the
training images, held out by a seeded draw. Images are resized to ``image_size`` squared (the preset: 160,
bilinear, no crop, as the paper's ``flow_from_directory``) and scaled to [0, 1]. The Dataset holds arrays, so
the whole selection must fit in memory: ``max_per_class`` takes the first N images of every class (sorted by
file name / record order) -- 1.28 M images at 160x160 would need ~390 GB.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host.ml.datasets.core import Dataset, data_roots, first_existing, not_found, seeded_split

ENV = "RESILINET_IMAGENET"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
#: random-guess accuracy the paper uses for ImageNet instead of sampling (spec §2)
PAPER_RANDOM_GUESS = 0.001


@dataclass
class Split:
    """One split's images: files + labels (directory layout) or TFRecord files (labels inside)."""

    files: list[str]
    labels: list[int] | None = None  # None: TFRecords


@dataclass
class ImageNetSource:
    root: Path
    layout: str                      # "directory" | "tfrecord"
    train: Split
    test: Split
    class_names: list[str] = field(default_factory=list)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _val_labels(root: Path, val: Path) -> dict[str, str]:
    """File stem -> wnid for a flat validation folder."""
    for txt in (val / "val_labels.txt", root / "val_labels.txt"):
        if txt.is_file():
            pairs = [line.split() for line in txt.read_text().splitlines() if line.strip()]
            return {Path(p[0]).stem: p[1] for p in pairs}
    for sol in (root / "LOC_val_solution.csv", val / "LOC_val_solution.csv"):
        if sol.is_file():
            with sol.open(newline="") as f:
                return {row["ImageId"]: row["PredictionString"].split()[0] for row in csv.DictReader(f)}
    raise ValueError(f"{val}: flat validation images need val_labels.txt (lines '<file> <wnid>') or "
                     "LOC_val_solution.csv beside them or in the root")


def scan_directory(root: Path) -> ImageNetSource:
    """The directory layout (see the module docstring)."""
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{root / 'train'}: no class folders (train/<wnid>/*.JPEG)")
    index = {c: i for i, c in enumerate(classes)}
    train = Split([], [])
    for c in classes:
        for p in _images(root / "train" / c):
            train.files.append(str(p))
            train.labels.append(index[c])
    val_dir = root / "val"
    test = Split([], [])
    sub = sorted(p for p in val_dir.iterdir() if p.is_dir()) if val_dir.is_dir() else []
    if sub:
        pairs = [(str(p), d.name) for d in sub for p in _images(d)]
    elif val_dir.is_dir():
        wnids = _val_labels(root, val_dir)
        pairs = [(str(p), wnids.get(p.stem, "")) for p in _images(val_dir)]
    else:
        raise ValueError(f"{root}: no val/ folder next to train/")
    for path, wnid in pairs:
        if wnid not in index:
            raise ValueError(f"{path}: validation class {wnid!r} is not a training class folder")
        test.files.append(path)
        test.labels.append(index[wnid])
    return ImageNetSource(root, "directory", train, test, classes)


def scan_tfrecords(root: Path) -> ImageNetSource:
    train = sorted(str(p) for p in root.glob("train-*-of-*"))
    test = sorted(str(p) for p in root.glob("validation-*-of-*"))
    if not train or not test:
        raise ValueError(f"{root}: TFRecords need both train-*-of-* and validation-*-of-* files")
    return ImageNetSource(root, "tfrecord", Split(train), Split(test))


def find_source(root: Path) -> ImageNetSource | None:
    """The layout under ``root``, or None when neither is there."""
    if (root / "train").is_dir():
        return scan_directory(root)
    if any(root.glob("train-*-of-*")):
        return scan_tfrecords(root)
    return None


def _decoder(image_size: int):
    import tensorflow as tf

    def decode(encoded):
        img = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        img = tf.image.resize(tf.cast(img, tf.float32), (image_size, image_size), method="bilinear")
        return tf.clip_by_value(img / 255.0, 0.0, 1.0)
    return decode


def _parse_example(record):
    import tensorflow as tf

    feats = tf.io.parse_single_example(record, {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        "image/class/synset": tf.io.FixedLenFeature([], tf.string, default_value=""),
    })
    return feats["image/encoded"], feats["image/class/label"], feats["image/class/synset"]


def _records(split: Split):
    """The split's serialized examples, read from its files in parallel in a fixed order (one helper: the
    label scan and the decode must see the records in the same order for a ``keep`` mask to mean the same)."""
    import tensorflow as tf

    opts = tf.data.Options()
    opts.deterministic = True
    return tf.data.TFRecordDataset(split.files, num_parallel_reads=tf.data.AUTOTUNE).with_options(opts)


def image_dataset(split: Split, image_size: int, *, label_offset: int = 1, keep: np.ndarray | None = None,
                  batch: int = 256):
    """A tf.data pipeline of (image (size, size, 3) in [0, 1], label) batches, decoded in parallel, in order.

    ``keep``: a boolean mask over the split's images (records) -- the others are skipped before decoding.
    """
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    decode = _decoder(image_size)
    if split.labels is not None:
        data = tf.data.Dataset.from_tensor_slices((split.files, np.asarray(split.labels, np.int64)))
        if keep is not None:
            data = data.enumerate().filter(lambda i, item: tf.gather(keep, i)).map(lambda i, item: item)
        data = data.map(lambda f, y: (decode(tf.io.read_file(f)), y), num_parallel_calls=auto, deterministic=True)
    else:
        data = _records(split).map(_parse_example, num_parallel_calls=auto)
        if keep is not None:
            data = data.enumerate().filter(lambda i, item: tf.gather(keep, i)).map(lambda i, item: item)
        data = data.map(lambda e, y, s: (decode(e), y - label_offset), num_parallel_calls=auto, deterministic=True)
    opts = tf.data.Options()
    opts.deterministic = True  # parallel decode, results in file order: the arrays never depend on timing
    return data.batch(batch).prefetch(auto).with_options(opts)


def record_labels(split: Split, label_offset: int) -> tuple[np.ndarray, dict[int, str]]:
    """Labels of every record (no image decoded) and the synset of each label that names one."""
    import tensorflow as tf

    data = _records(split).map(lambda r: _parse_example(r)[1:], num_parallel_calls=tf.data.AUTOTUNE,
                               deterministic=True)
    labels, names = [], {}
    for y, s in data.as_numpy_iterator():
        labels.append(int(y) - label_offset)
        if s:
            names[int(y) - label_offset] = s.decode()
    return np.asarray(labels, np.int64), names


def first_per_class(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Mask of the first ``limit`` images of each class, in order (all when ``limit`` is None)."""
    if limit is None:
        return np.ones(len(labels), bool)
    seen: dict[int, int] = {}
    keep = np.zeros(len(labels), bool)
    for i, y in enumerate(labels):
        seen[int(y)] = seen.get(int(y), 0) + 1
        keep[i] = seen[int(y)] <= limit
    return keep


def _materialize(split: Split, labels: np.ndarray, keep: np.ndarray, image_size: int,
                 label_offset: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for x, y in image_dataset(split, image_size, label_offset=label_offset, keep=keep).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        return np.zeros((0, image_size, image_size, 3), np.float32), np.zeros(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def load_imagenet(*, data_dir: str | Path | None = None, seed: int = 0, path: str | Path | None = None,
                  image_size: int | str = 160, max_per_class: int | str | None = None,
                  val_fraction: float | str = 0.04, label_offset: int | str = 1) -> Dataset:
    """ImageNet as x (N, image_size, image_size, 3) float32 in [0, 1] (see the module docstring)."""
    image_size, label_offset, val_fraction = int(image_size), int(label_offset), float(val_fraction)
    limit = None if max_per_class in (None, "", "none") else int(max_per_class)
    env = os.environ.get(ENV)
    looked = [Path(path).expanduser()] if path else ([Path(env).expanduser()] if env else [])
    looked += [] if path else data_roots(data_dir, "imagenet")
    root = first_existing(looked)
    source = find_source(root) if root is not None else None
    if source is None:
        raise not_found("ImageNet (train/<wnid>/*.JPEG + val/, or TF-slim train-*-of-* + validation-*-of-*)",
                        looked, f"Point at your copy of ILSVRC-2012: --dataset-opt path=DIR, [dataset] path in the "
                                f"preset, or ${ENV}=DIR (docs/training.md lists the layouts).")
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    names: dict[int, str] = {}
    for key, split in (("train", source.train), ("test", source.test)):
        if split.labels is not None:
            labels = np.asarray(split.labels, np.int64)
        else:
            labels, found = record_labels(split, label_offset)
            names.update(found)
        keep = first_per_class(labels, limit if key == "train" else None)
        splits[key] = _materialize(split, labels, keep, image_size, label_offset)
    num_classes = len(source.class_names) or int(max(splits["train"][1].max(), splits["test"][1].max())) + 1
    class_names = source.class_names or [names.get(i, str(i)) for i in range(num_classes)]
    x_all, y_all = splits["train"]
    train, val = seeded_split(len(y_all), [1.0 - val_fraction, val_fraction], seed)
    return Dataset(
        name="imagenet", x_train=x_all[train], y_train=y_all[train], x_val=x_all[val], y_val=y_all[val],
        x_test=splits["test"][0], y_test=splits["test"][1], num_classes=num_classes, class_names=class_names,
        info={"source": str(source.root), "layout": source.layout, "image_size": image_size,
              "max_per_class": limit, "seed": seed, "random_guess_paper": PAPER_RANDOM_GUESS},
    )
