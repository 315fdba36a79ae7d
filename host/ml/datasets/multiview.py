"""Six-camera data for the ``camera`` preset (ResiliNet spec §3.5): the real per-camera arrays, or a stand-in.

The paper's multi-view person/car/bus set (6 cameras, 32x32 images, 3 classes) is not reachable here, so
``multiview_standin`` is a **clearly labelled stand-in**, not that data set: three CIFAR-10 classes
(automobile, truck, horse: two vehicle classes and one animate class, as car / bus / person), and for
every CIFAR image six "camera views" of the same scene made deterministically: each camera has a fixed
pose (a shift, a horizontal flip for the cameras "on the other side", a brightness and contrast of its
own) plus a per-sample jitter of up to 2 pixels drawn from ``seed``. Views are grayscale: the host feeds a
camera board its view in one DATA frame, which carries at most 2048 bytes (a 32x32 grayscale view is 1024;
one 32x32x3 view would be 3072).

``multiview_npz`` loads real per-camera arrays from one ``.npz`` (layout in docs/datasets.md):

* ``cam1`` .. ``cam6``: (N, 32, 32) or (N, 32, 32, 1) images, uint8 0..255 or float in [0, 1];
* ``labels`` (N,) integer class ids 0..K-1;
* optional ``split`` (N,) of 0 = train, 1 = validation, 2 = test (else a seeded 80/10/10 split);
* optional ``class_names``: array of strings.

Both give x (N, 32, 32, 6) float32 in [0, 1], channel i = camera i+1, and feature groups
``cam1``..``cam6`` -> [i], so each camera node of the preset reads its own view through the
topology's ``features`` (the same mechanism as the HAR sensors), and a user with the real data runs the
preset unchanged: ``[dataset] name = "multiview_npz", path = "..."``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from host.ml.datasets.cifar import CLASS_NAMES, load_cifar
from host.ml.datasets.core import Dataset, not_found, seeded_split

CAMERAS = 6
STANDIN_CLASSES = ("automobile", "truck", "horse")
#: Fixed pose per camera: (dy, dx) shift, horizontal flip, brightness offset, contrast factor.
POSES = ((0, 0, False, 0.00, 1.00), (2, -3, False, 0.08, 0.90), (-3, 2, True, -0.05, 1.10),
         (1, 4, True, 0.05, 0.85), (-2, -2, False, -0.08, 1.15), (3, 1, True, 0.00, 0.95))
JITTER = 2


def _gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, (N, H, W, 3) -> (N, H, W) float32."""
    return (rgb[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)


def make_views(images: np.ndarray, seed: int) -> np.ndarray:
    """Six deterministic camera views of each image: (N, 32, 32, 3) in [0, 1] -> (N, 32, 32, 6)."""
    rng = np.random.default_rng(seed)
    gray = _gray(images)
    n, h, w = gray.shape
    pad = 3 + 4 + JITTER
    padded = np.pad(gray, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    jitter = rng.integers(-JITTER, JITTER + 1, size=(n, CAMERAS, 2))
    views = np.empty((n, h, w, CAMERAS), np.float32)
    rows = np.arange(h)[None, :, None]
    cols = np.arange(w)[None, None, :]
    for c, (dy, dx, flip, bright, contrast) in enumerate(POSES):
        oy = (pad + dy + jitter[:, c, 0])[:, None, None]
        ox = (pad + dx + jitter[:, c, 1])[:, None, None]
        v = padded[np.arange(n)[:, None, None], rows + oy, cols + ox]
        if flip:
            v = v[:, :, ::-1]
        views[..., c] = np.clip((v - 0.5) * contrast + 0.5 + bright, 0.0, 1.0)
    return views


def _groups() -> dict[str, list[int]]:
    return {f"cam{i + 1}": [i] for i in range(CAMERAS)}


def load_multiview_standin(*, data_dir: str | Path | None = None, seed: int = 0,
                           max_per_class: int | None = None) -> Dataset:
    """The stand-in (module docstring) from CIFAR-10's automobile, truck and horse images.

    Train/validation from CIFAR's training images (the standard seeded split), test from its test images;
    ``max_per_class`` keeps the first N training images of each class (quick builds)."""
    base = load_cifar(data_dir=data_dir, seed=seed)
    keep = sorted(CLASS_NAMES.index(c) for c in STANDIN_CLASSES)  # automobile 1, horse 7, truck 9
    parts = {}
    for k, split in enumerate(("train", "val", "test")):
        x, y = base.split(split)
        idx = np.flatnonzero(np.isin(y, keep))
        if max_per_class is not None and split == "train":
            idx = np.concatenate([idx[y[idx] == c][:max_per_class] for c in keep])
            idx.sort()
        # CIFAR's archive is ordered by class: shuffle (seeded) so that any prefix of a split, e.g. the int8
        # evaluation's or a quick build's samples, holds all three classes
        idx = idx[np.random.default_rng(seed * 10 + k).permutation(len(idx))]
        labels = np.searchsorted(np.array(keep), y[idx])
        parts[split] = (make_views(x[idx], seed * 10 + k), labels)
    names = [CLASS_NAMES[c] for c in keep]
    return Dataset(name="multiview_standin", x_train=parts["train"][0], y_train=parts["train"][1],
                   x_val=parts["val"][0], y_val=parts["val"][1], x_test=parts["test"][0], y_test=parts["test"][1],
                   num_classes=len(keep), class_names=names, feature_groups=_groups(),
                   info={"source": f"STAND-IN made from CIFAR-10 ({', '.join(names)}): six synthetic views per "
                                   f"image, not the multi-view camera data set ({base.info.get('source', '')})",
                         "seed": seed})


def load_multiview_npz(*, data_dir: str | Path | None = None, seed: int = 0, path: str | Path | None = None,
                       name: str | None = None) -> Dataset:
    """Real per-camera arrays from one .npz (layout in the module docstring)."""
    if path is None:
        raise ValueError("the multiview_npz dataset needs path= to an .npz with arrays cam1..cam6 and labels")
    p = Path(path).expanduser()
    if not p.is_file() and data_dir is not None and (Path(data_dir) / p).is_file():
        p = Path(data_dir) / p
    if not p.is_file():
        raise not_found("multi-view npz", [p], "Pass path= an .npz holding cam1..cam6 and labels "
                                              "(see host/ml/datasets/multiview.py).")
    with np.load(p, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    missing = [k for k in [f"cam{i + 1}" for i in range(CAMERAS)] + ["labels"] if k not in arrays]
    if missing:
        raise ValueError(f"{p}: missing array(s) {missing} (has {sorted(arrays)})")
    cams = []
    for i in range(CAMERAS):
        a = arrays[f"cam{i + 1}"]
        a = a[..., 0] if a.ndim == 4 and a.shape[-1] == 1 else a
        if a.ndim != 3:
            raise ValueError(f"{p}: cam{i + 1} has shape {a.shape}; expected (N, H, W) or (N, H, W, 1) grayscale")
        cams.append(a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0))
    if len({c.shape for c in cams}) != 1:
        raise ValueError(f"{p}: the cameras' arrays differ in shape: {[c.shape for c in cams]}")
    x = np.stack(cams, axis=-1)
    y = np.asarray(arrays["labels"]).reshape(-1).astype(np.int64)
    if len(y) != len(x):
        raise ValueError(f"{p}: {len(y)} labels for {len(x)} samples")
    if "split" in arrays:
        split = np.asarray(arrays["split"]).reshape(-1)
        idx = [np.flatnonzero(split == k) for k in range(3)]
    else:
        idx = list(seeded_split(len(y), [0.8, 0.1, 0.1], seed))
    k = int(y.max()) + 1
    names = [str(c) for c in arrays["class_names"].tolist()] if "class_names" in arrays else [str(c) for c in range(k)]
    return Dataset(name=name or p.stem, x_train=x[idx[0]], y_train=y[idx[0]], x_val=x[idx[1]], y_val=y[idx[1]],
                   x_test=x[idx[2]], y_test=y[idx[2]], num_classes=len(names), class_names=names,
                   feature_groups=_groups(), info={"source": str(p), "seed": seed})
