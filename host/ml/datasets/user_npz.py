"""A user's own data in one .npz, so new sensor datasets need no new loader.

File format (``np.savez``):

* ``x`` (N, ...) numeric, ``y`` (N,) integer class ids 0..K-1 (or (N, K) one-hot, arg-maxed);
* optional ``x_test``/``y_test`` and/or ``x_val``/``y_val``: given splits are used as they are,
  missing ones are drawn from ``x``;
* optional ``feature_groups``: sensor name -> indices along the last axis of ``x``, stored as a
  JSON string, e.g. ``feature_groups=json.dumps({"acc": [0, 1, 2], "gyro": [3, 4, 5]})``
  (a 0-d string array). A pickled dict in a 0-d object array also works but only with
  ``allow_pickle=True``, since unpickling runs code from the file;
* optional ``class_names``: array of strings (``np.array(["walk", "run"])``) or a JSON list string.

Missing splits are drawn with one seeded permutation: 80/10/10 (``val_fraction``,
``test_fraction``) when neither is given, else the missing one's fraction of ``x``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from host.ml.datasets.core import Dataset, not_found, seeded_split


def _decode_json_or_object(value: np.ndarray, key: str) -> Any:
    if value.dtype.kind in "US":
        text = value.item() if value.ndim == 0 else None
        if text is None:  # an array of strings: that is the value itself (class names)
            return [str(v) for v in value.tolist()]
        return json.loads(text.decode() if isinstance(text, bytes) else text)
    if value.dtype == object:
        return value.item() if value.ndim == 0 else value.tolist()
    raise ValueError(f"{key}: expected a JSON string or an object array, got dtype {value.dtype}")


def load_npz(*, data_dir: str | Path | None = None, seed: int = 0, path: str | Path | None = None,
             name: str | None = None, val_fraction: float = 0.1, test_fraction: float = 0.1,
             num_classes: int | None = None, allow_pickle: bool = False) -> Dataset:
    """Load a user's .npz (format in the module docstring); ``name`` defaults to the file stem."""
    if path is None:
        raise ValueError("the npz dataset needs path= to an .npz file")
    p = Path(path).expanduser()
    if not p.is_file() and data_dir is not None and (Path(data_dir) / p).is_file():
        p = Path(data_dir) / p
    if not p.is_file():
        raise not_found("npz dataset", [p], "Pass path= an .npz holding arrays x and y (see host/ml/datasets/user_npz.py).")
    try:
        with np.load(p, allow_pickle=allow_pickle) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:  # object arrays without allow_pickle
        raise ValueError(f"{p}: holds pickled objects; store feature_groups/class_names as JSON strings "
                         "or pass allow_pickle=True if you trust the file") from exc
    for key in ("x", "y"):
        if key not in arrays:
            raise ValueError(f"{p}: missing array {key!r} (has {sorted(arrays)})")

    def labels(y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        return (y.argmax(axis=1) if y.ndim == 2 else y.reshape(-1)).astype(np.int64)

    x, y = arrays["x"], labels(arrays["y"])
    split_info: dict[str, Any] = {"seed": seed}
    has_val, has_test = "x_val" in arrays, "x_test" in arrays
    if has_val and has_test:
        parts = {"train": (x, y), "val": (arrays["x_val"], labels(arrays["y_val"])),
                 "test": (arrays["x_test"], labels(arrays["y_test"]))}
    elif has_test or has_val:
        # One split is given; draw the other from x.
        drawn, given = ("val", "test") if has_test else ("test", "val")
        fraction = val_fraction if has_test else test_fraction
        train, other = seeded_split(len(y), [1 - fraction, fraction], seed)
        parts = {"train": (x[train], y[train]), drawn: (x[other], y[other]),
                 given: (arrays[f"x_{given}"], labels(arrays[f"y_{given}"]))}
        split_info["index"] = {"train": train, drawn: other}
    else:
        train, val, test = seeded_split(len(y), [1 - val_fraction - test_fraction, val_fraction, test_fraction], seed)
        parts = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}
        split_info["index"] = {"train": train, "val": val, "test": test}

    groups = _decode_json_or_object(arrays["feature_groups"], "feature_groups") if "feature_groups" in arrays else None
    names = _decode_json_or_object(arrays["class_names"], "class_names") if "class_names" in arrays else None
    all_y = np.concatenate([parts[s][1] for s in ("train", "val", "test")])
    k = num_classes or (len(names) if names else (int(all_y.max()) + 1 if len(all_y) else 0))
    return Dataset(
        name=name or p.stem,
        x_train=parts["train"][0], y_train=parts["train"][1], x_val=parts["val"][0], y_val=parts["val"][1],
        x_test=parts["test"][0], y_test=parts["test"][1], num_classes=k,
        class_names=list(names) if names else [str(i) for i in range(k)],
        feature_groups=dict(groups) if groups is not None else None,
        info={"source": str(p), **split_info},
    )
