"""A model nobody wrote for this product: Keras Applications' MobileNet, split over four boards.

    python examples/user_model/mobilenet_cifar.py [--out DIR] [--train N] [--test N] [--train-epochs E]

writes ``DIR/mobilenet.keras`` -- ``keras.applications.MobileNet(alpha=0.25, weights=None, classes=10)`` on a
32x32x1 input, trained E epochs on CIFAR-10 as its user would (default 0: as built) --, ``DIR/cifar10_gray.npz``
(the first N training / test images of CIFAR-10 from ``$RESILINET_DATA``, in grey: a sensor's sample travels
in one frame of at most 2048 bytes, and 32x32x3 is 3072) and ``DIR/mobilenet_split.toml``: the stem and
blocks 1-4 on the IoT sensor (its 4x4x64 output is 1024 B on the link), blocks 5-6 on the edge (2x2x128),
blocks 7-11 on the fog, blocks 12-13 and the classifier in the cloud; skips iot->fog (a 3x3 stride-2
projection, ReLU6 like the tensor it stands in for) and edge->cloud. Then:

    python -m host.build --model DIR/mobilenet.keras --preset DIR/mobilenet_split.toml --epochs 2 --board qemu
    python -m host.harness --build build/mobilenet_split-resilinet --drop fog
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

#: The last layer of each node but the cloud (the cloud takes the rest).
CUTS = {"iot": "conv_pw_4_relu", "edge": "conv_pw_6_relu", "fog": "conv_pw_11_relu"}
ROLES = {"iot": "sensor", "edge": "edge", "fog": "fog", "cloud": "cloud"}

HEAD = '''\
# Keras Applications' MobileNet (alpha 0.25, 32x32x1, 10 classes) split over four boards (written by
# examples/user_model/mobilenet_cifar.py). Normal links come from the model's graph.
name = "mobilenet_split"
description = "keras.applications.MobileNet (alpha 0.25) on grey CIFAR-10, split over IoT, edge, fog and cloud"

[model]
path = "mobilenet.keras"

[dataset]
name = "npz"
path = {npz}

[training]
epochs = 2
learning_rate = 0.0005
failout_survival = 0.9

[reliability]
order = ["fog", "edge"]
"No failure" = [1.0, 1.0]
Normal = [0.98, 0.96]
Poor = [0.95, 0.90]
Hazardous = [0.85, 0.80]
'''

SKIPS = '''
[[links]]
from = "iot"
to = "fog"
skip = true
projection = [{ type = "conv2d", filters = 128, kernel = 3, strides = 2, bn = true, activation = "relu6" }]

[[links]]
from = "edge"
to = "cloud"
skip = true
'''


def split_toml(layer_names: list[str], npz: Path) -> str:
    nodes, cur, order = {n: [] for n in ROLES}, 0, list(ROLES)
    for name in layer_names:
        nodes[order[cur]].append(name)
        if cur < 3 and name == CUTS[order[cur]]:
            cur += 1
    text = HEAD.replace("{npz}", json.dumps(str(npz.resolve())))
    for n, role in ROLES.items():
        failable = "" if role in ("edge", "fog") else "failable = false\n"
        text += f'\n[[nodes]]\nname = "{n}"\nrole = "{role}"\n{failable}keras_layers = {json.dumps(nodes[n])}\n'
    return text + SKIPS


def grey_cifar(out: Path, n_train: int, n_test: int) -> Path:
    import numpy as np

    from host.ml.datasets import load_dataset

    ds = load_dataset("cifar10", seed=0)
    grey = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma

    def g(x):
        return (x @ grey)[..., None].astype(np.float32)
    # The archive is stored class by class: a seeded sample keeps all ten classes in both splits.
    rng = np.random.default_rng(0)
    tr = np.sort(rng.permutation(len(ds.y_train))[:n_train])
    te = np.sort(rng.permutation(len(ds.y_test))[:n_test])
    path = out / "cifar10_gray.npz"
    np.savez(path, x=g(ds.x_train[tr]), y=ds.y_train[tr], x_test=g(ds.x_test[te]), y_test=ds.y_test[te],
             class_names=np.array(ds.class_names))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="examples/user_model/mobilenet", help="output folder")
    ap.add_argument("--train", type=int, default=10000, help="training images kept in the npz")
    ap.add_argument("--test", type=int, default=1000, help="test images kept in the npz")
    ap.add_argument("--train-epochs", type=int, default=0, help="train the model first, as its user would")
    args = ap.parse_args(argv)
    import keras
    import numpy as np

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    npz = grey_cifar(out, args.train, args.test)
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNet(input_shape=(32, 32, 1), alpha=0.25, weights=None, classes=10)
    if args.train_epochs > 0:
        with np.load(npz) as d:
            model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(d["x"], d["y"], epochs=args.train_epochs, batch_size=128, verbose=2,
                      validation_data=(d["x_test"], d["y_test"]))
    model.save(out / "mobilenet.keras")
    names = [l.name for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    (out / "mobilenet_split.toml").write_text(split_toml(names, npz))
    print(f"wrote {out / 'mobilenet.keras'} ({model.count_params():,} parameters), {npz}, "
          f"{out / 'mobilenet_split.toml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
