"""The imagenet preset and its loader, on a tiny generated ImageNet (3 classes) in each supported layout."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host.ml.datasets import DatasetNotFoundError, load_dataset

ROOT = Path(__file__).resolve().parents[1]
WNIDS = ["n01440764", "n01443537", "n01484850"]
COLOURS = [(220, 30, 30), (30, 220, 30), (30, 30, 220)]  # one colour per class: labels are checked by colour
N_TRAIN, N_VAL = 4, 2


def _jpeg(cls: int, k: int) -> bytes:
    from PIL import Image

    pixels = np.empty((24, 20, 3), np.uint8)
    pixels[:] = COLOURS[cls]
    pixels[0, 0] = (k * 40) % 256  # images of a class differ, so a mix-up of files would show
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _images():
    """(split, class, file name, bytes) of the fixture, in the order both layouts store them."""
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for c, wnid in enumerate(WNIDS):
            for k in range(n):
                name = f"{wnid}_{k}.JPEG" if split == "train" else f"ILSVRC2012_val_{c * n + k:08d}.JPEG"
                yield split, c, name, _jpeg(c, k)


def make_directory(root: Path, flat_val: bool) -> Path:
    labels = []
    for split, c, name, data in _images():
        folder = root / split / WNIDS[c] if split == "train" or not flat_val else root / "val"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        if split == "val":
            labels.append(f"{name} {WNIDS[c]}")
    if flat_val:
        (root / "val_labels.txt").write_text("\n".join(labels) + "\n")
    return root


def make_tfrecords(root: Path) -> Path:
    """TF-slim's conversion: labels 1..N, synset names; the training set in two shards."""
    import tensorflow as tf

    def example(c: int, data: bytes) -> bytes:
        f = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
             "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[c + 1])),
             "image/class/synset": tf.train.Feature(bytes_list=tf.train.BytesList(value=[WNIDS[c].encode()])),
             "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"JPEG"]))}
        return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()
    root.mkdir(parents=True, exist_ok=True)
    items = list(_images())
    train = [example(c, d) for s, c, _, d in items if s == "train"]
    val = [example(c, d) for s, c, _, d in items if s == "val"]
    half = len(train) // 2
    for path, records in ((root / "train-00000-of-00002", train[:half]), (root / "train-00001-of-00002", train[half:]),
                          (root / "validation-00000-of-00001", val)):
        with tf.io.TFRecordWriter(str(path)) as w:
            for r in records:
                w.write(r)
    return root


def _check(ds, image_size: int) -> None:
    assert ds.name == "imagenet" and ds.num_classes == 3
    assert ds.class_names == WNIDS
    assert len(ds.y_train) + len(ds.y_val) == 3 * N_TRAIN and len(ds.y_test) == 3 * N_VAL
    assert ds.x_test.shape[1:] == (image_size, image_size, 3)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert 0.0 <= x.min() and x.max() <= 1.0
        centre = x[:, image_size // 2, image_size // 2, :]        # away from the marked corner pixel
        assert (centre.argmax(axis=1) == y).all()                # the class colour's channel is the label


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    base = tmp_path_factory.mktemp("imagenet")
    return {"directory": make_directory(base / "dir", flat_val=False),
            "flat_val": make_directory(base / "flat", flat_val=True),
            "tfrecord": make_tfrecords(base / "tfr")}


def test_every_layout_gives_the_same_dataset(layouts):
    loaded = {k: load_dataset("imagenet", path=str(p), image_size=32, val_fraction=0.25, seed=1)
              for k, p in layouts.items()}
    for ds in loaded.values():
        _check(ds, 32)
    ref = loaded["directory"]
    for key in ("flat_val", "tfrecord"):  # the same JPEG bytes in the same order: the same arrays
        for split in ("train", "val", "test"):
            np.testing.assert_array_equal(loaded[key].split(split)[0], ref.split(split)[0])
            np.testing.assert_array_equal(loaded[key].split(split)[1], ref.split(split)[1])
    assert loaded["tfrecord"].info["layout"] == "tfrecord"


def test_preset_image_size_and_max_per_class(layouts, monkeypatch):
    monkeypatch.setenv("RESILINET_IMAGENET", str(layouts["tfrecord"]))  # the setting instead of path=
    ds = load_dataset("imagenet", image_size=160, max_per_class=2, val_fraction=0.0)
    assert ds.x_train.shape == (6, 160, 160, 3)
    assert np.bincount(ds.y_train).tolist() == [2, 2, 2]
    assert len(ds.y_test) == 3 * N_VAL  # the limit is on training images only


def test_missing_copy_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("RESILINET_IMAGENET", raising=False)
    with pytest.raises(DatasetNotFoundError, match="RESILINET_IMAGENET"):
        load_dataset("imagenet", path=str(tmp_path / "nowhere"))


def test_imagenet_preset_has_the_papers_tensor_shapes():
    from host.ml.datasets import Dataset
    from host.ml.topology import load_topology
    from host.ml.train import TrainConfig, build_for

    z = np.zeros((1, 160, 160, 3), np.float32)
    ds = Dataset("imagenet", z, [0], z, [0], z, [0], 1000, [str(i) for i in range(1000)])
    expected = {"iot_1_relu6": (80, 80, 24), "edge_2_pw_relu6": (40, 40, 96), "fog_4_pw_relu6": (10, 10, 384),
                "iot_to_fog_0_conv": (40, 40, 96), "edge_to_cloud_0_conv": (10, 10, 384), "probs": (1000,)}
    topo = load_topology("imagenet")
    model = build_for(topo, ds, TrainConfig.from_topology(topo))
    for layer, shape in expected.items():
        assert tuple(model.get_layer(layer).output.shape[1:]) == shape, layer
    assert topo.reliabilities("Hazardous") == [0.85, 0.80] and topo.failure_order == ["fog", "edge"]
    topo2 = load_topology("imagenet", partition="2")
    model2 = build_for(topo2, ds, TrainConfig.from_topology(topo2))
    assert tuple(model2.get_layer("iot_2_pw_relu6").output.shape[1:]) == (80, 80, 48)
    assert tuple(model2.get_layer("fog_3_pw_relu6").output.shape[1:]) == (10, 10, 384)


def test_build_trains_the_preset_on_a_copy_from_given_weights(layouts, tmp_path):
    """host.build --preset imagenet on the directory fixture (32 px for speed), starting from --weights."""
    from host.ml.datasets import Dataset
    from host.ml.topology import load_topology
    from host.ml.train import TrainConfig, build_for

    z = np.zeros((1, 32, 32, 3), np.float32)
    topo = load_topology("imagenet")
    start = build_for(topo, Dataset("imagenet", z, [0], z, [0], z, [0], 3, WNIDS), TrainConfig.from_topology(topo))
    start.save_weights(tmp_path / "start.weights.h5")
    env = dict(os.environ, RESILINET_CACHE=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-m", "host.build", "--preset", "imagenet", "--dataset-opt",
                          f"path={layouts['directory']}", "--dataset-opt", "image_size=32", "--dataset-opt",
                          "val_fraction=0.25", "--epochs", "1", "--stop-after", "train", "--quiet",
                          "--weights", str(tmp_path / "start.weights.h5"), "--out", str(tmp_path / "b")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["dataset"]["num_classes"] == 3 and manifest["dataset"]["input_shape"] == [32, 32, 3]
    assert manifest["stages"]["train"]["config"]["init_weights"] == str(tmp_path / "start.weights.h5")
    missing = subprocess.run([sys.executable, "-m", "host.build", "--preset", "imagenet", "--dataset-opt",
                              f"path={tmp_path / 'nowhere'}", "--out", str(tmp_path / "c")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    errors = [l for l in missing.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: ImageNet") and "RESILINET_IMAGENET" in errors[0]
    assert "Traceback" not in missing.stderr
