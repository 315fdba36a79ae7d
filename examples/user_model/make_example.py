"""Write a small Keras model of "your own" and the topology file that splits it over four boards.

    python examples/user_model/make_example.py [--out DIR] [--train-epochs N]

writes ``DIR/my_model.keras`` (a CNN for Fashion-MNIST written with plain Keras, nothing of this product)
and ``DIR/my_split.toml`` (its layers assigned to iot / edge / fog / cloud, two skip hyperconnections, the
failure order and reliabilities). Then:

    python -m host.build --model DIR/my_model.keras --preset DIR/my_split.toml --board qemu
    pio run -t upload
    python -m host.harness --drop edge
"""
from __future__ import annotations

import argparse
from pathlib import Path

SPLIT_TOML = '''\
# Your model's layers, assigned to four boards. The normal links (iot->edge->fog->cloud) follow from the
# model's graph; the skip hyperconnections and their projections are added here, as in the presets.
name = "my_split"
description = "A user's own Keras CNN split over IoT, edge, fog and cloud"

[model]
path = "my_model.keras"            # relative to this file; --model on the command line overrides it

[dataset]
name = "fashion"

[training]
epochs = 2
learning_rate = 0.001
failout_survival = 0.9

[reliability]
order = ["fog", "edge"]
"No failure" = [1.0, 1.0]
Normal = [0.98, 0.96]
Poor = [0.95, 0.90]

[[nodes]]
name = "iot"
role = "sensor"
failable = false
keras_layers = ["stem"]                                # 28x28x1 -> 14x14x8 (1568 B on the link)

[[nodes]]
name = "edge"
role = "edge"
keras_layers = ["edge_conv", "edge_conv2", "edge_add"]   # -> 7x7x16, a residual inside the node

[[nodes]]
name = "fog"
role = "fog"
keras_layers = ["fog_conv"]                            # -> 4x4x32

[[nodes]]
name = "cloud"
role = "cloud"
failable = false
keras_layers = ["pool", "classify"]

[[links]]                                              # skips: same shape as the tensor they stand in for
from = "iot"
to = "fog"
skip = true
projection = [{ type = "conv2d", filters = 16, kernel = 3, strides = 2, activation = "relu" }]

[[links]]
from = "edge"
to = "cloud"
skip = true
projection = [{ type = "conv2d", filters = 32, kernel = 3, strides = 2, activation = "relu" }]
'''


def my_model():
    """The user's model: plain Keras, layers named so the topology file can assign them."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    x_in = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(x_in)
    a = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="edge_conv")(x)
    b = layers.Conv2D(16, 3, padding="same", activation="relu", name="edge_conv2")(a)
    x = layers.Add(name="edge_add")([a, b])
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="fog_conv")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    out = layers.Dense(10, activation="softmax", name="classify")(x)
    return keras.Model(x_in, out, name="my_model")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="examples/user_model/out", help="folder for my_model.keras, my_split.toml")
    ap.add_argument("--train-epochs", type=int, default=0,
                    help="train the model on Fashion-MNIST first, as a user would (default 0: untrained)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = my_model()
    if args.train_epochs > 0:
        from host.ml.datasets import load_dataset

        ds = load_dataset("fashion", seed=0)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(ds.x_train, ds.y_train, epochs=args.train_epochs, batch_size=128, verbose=2)
    model.save(out / "my_model.keras")
    (out / "my_split.toml").write_text(SPLIT_TOML)
    print(f"wrote {out / 'my_model.keras'} and {out / 'my_split.toml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
