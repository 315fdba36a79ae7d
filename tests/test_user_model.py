"""A user's own Keras model split over boards (issue 14): ``host.build --model my_model.keras --preset my_split.toml``.

The example of the README (examples/user_model/make_example.py: a small CNN written with plain Keras, a TOML
assigning its layers to iot / edge / fog / cloud) is built once at quick sizes and run on emulated boards with
a node dropped, bit-exact; the split network computes exactly the user's model when nothing fails, and
``--epochs 0`` keeps the user's weights. Every bad assignment is one clear error before anything trains.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from harness_support import REPO, qemus
from host.deploy.checks import BuildInputError, check_graph, check_imported_input
from host.ml.topology import TopologyError, load_topology

EXAMPLE = REPO / "examples" / "user_model" / "make_example.py"


def _example_module():
    spec = importlib.util.spec_from_file_location("make_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The README's example files: my_model.keras and my_split.toml."""
    out = tmp_path_factory.mktemp("user_model")
    assert _example_module().main(["--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def build(example, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("user_build") / "b"
    env = dict(os.environ, RESILINET_CACHE=str(tmp_path_factory.mktemp("cache")), TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "host.build", "--model", str(example / "my_model.keras"), "--preset",
           str(example / "my_split.toml"), "--board", "qemu", "--epochs", "1", "--max-train", "300",
           "--max-test", "40", "--int8-samples", "12", "--out", str(out), "--quiet"]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


def _variant(example: Path, tmp_path: Path, old: str, new: str) -> Path:
    """The example's topology file with one edit, beside a copy of its model."""
    text = (example / "my_split.toml").read_text()
    assert old in text
    (tmp_path / "my_model.keras").write_bytes((example / "my_model.keras").read_bytes())
    path = tmp_path / "split.toml"
    path.write_text(text.replace(old, new))
    return path


# ---------------------------------------------------------------------------------------------- the example
def test_links_follow_from_the_graph_and_nodes_reapply_the_users_layers(example):
    """Normal links are the graph's edges that cross nodes; with no failure the split network (ResiliNet: the
    muxes pass the link from below) computes exactly the user's model, with its weights."""
    import keras

    from host.ml.schemes import BuildOptions, build_model, get_scheme

    topo = load_topology(example / "my_split.toml")
    assert [(l.name, l.skip) for l in topo.links] == [
        ("iot->edge", False), ("edge->fog", False), ("fog->cloud", False), ("iot->fog", True), ("edge->cloud", True)]
    assert topo.node("edge").layers[0]["layers"] == ["edge_conv", "edge_conv2", "edge_add"]
    net = build_model(topo, get_scheme("resilinet"), BuildOptions(input_shape=(28, 28, 1), num_classes=10))
    user = keras.saving.load_model(example / "my_model.keras")
    x = np.random.default_rng(0).uniform(0, 1, (4, 28, 28, 1)).astype(np.float32)
    got = np.asarray(net({"x": x, "alive": np.ones((4, 2), np.float32)})["probs"])
    np.testing.assert_allclose(got, np.asarray(user(x)), rtol=0, atol=1e-6)
    assert np.array_equal(net.get_layer("edge_0_edge_conv2").get_weights()[0],
                          user.get_layer("edge_conv2").get_weights()[0])


def test_epochs_0_deploys_the_users_weights(example):
    from host.ml.train import TrainConfig, train

    import keras

    topo = load_topology(example / "my_split.toml")
    ds = types.SimpleNamespace(name="fake", x_train=np.zeros((8, 28, 28, 1), np.float32), y_train=np.zeros(8, int),
                               x_val=np.zeros((4, 28, 28, 1), np.float32), y_val=np.zeros(4, int), num_classes=10,
                               feature_groups=None)
    trained = train(topo, ds, TrainConfig(epochs=0), progress=False, use_cache=False)
    user = keras.saving.load_model(example / "my_model.keras")
    for name in ("stem", "fog_conv", "classify"):
        node = {"stem": "iot", "fog_conv": "fog", "classify": "cloud"}[name]
        for a, b in zip(trained.model.get_layer(f"{node}_0_{name}").get_weights(), user.get_layer(name).get_weights()):
            assert np.array_equal(a, b)


def test_example_on_emulated_boards_bit_exact_with_a_node_dropped(build):
    """python -m host.harness --drop edge: the fog takes the iot's skip, every tensor bit-exact."""
    from codegen.emulator import stop_all
    from host.net.harness import run_harness

    before = qemus()
    try:
        res = run_harness(build, samples=8, progress=False, write=False, dead=["edge"])
    finally:
        stop_all()
    assert qemus() <= before, "the harness left QEMU running"
    (s,) = res.report["runs"]
    assert s["samples"]["answered"] == 8 and s["mismatches"] == []
    assert s["bit_exact"]["compared"] > 0 and s["bit_exact"]["identical"] == s["bit_exact"]["compared"]
    assert s["nodes"]["edge"]["not_fed"] == 8 and s["nodes"]["fog"]["mux"] == {"fallback": 8}
    assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"]


# ---------------------------------------------------------------------------------------------- errors
def test_layer_assigned_twice(example, tmp_path):
    path = _variant(example, tmp_path, 'keras_layers = ["fog_conv"]', 'keras_layers = ["fog_conv", "stem"]')
    with pytest.raises(TopologyError, match=r"layer 'stem' is assigned twice \(nodes 'iot' and 'fog'\)"):
        load_topology(path)


def test_layer_assigned_to_no_node(example, tmp_path):
    path = _variant(example, tmp_path, '"pool", "classify"', '"classify"')
    with pytest.raises(TopologyError, match=r"layer\(s\) 'pool' of my_model.keras are assigned to no node"):
        load_topology(path)


def test_node_without_layers(example, tmp_path):
    text = (example / "my_split.toml").read_text().replace(
        'name = "cloud"', 'name = "cloud2"\nrole = "fog"\nkeras_layers = []\n\n[[nodes]]\nname = "cloud"')
    (tmp_path / "my_model.keras").write_bytes((example / "my_model.keras").read_bytes())
    (tmp_path / "split.toml").write_text(text)
    with pytest.raises(TopologyError, match=r"node 'cloud2' has no layers"):
        load_topology(tmp_path / "split.toml")


def test_edge_against_the_node_order(example, tmp_path):
    path = _variant(example, tmp_path, '"edge_add"]', '"edge_add", "pool"]')
    path.write_text(path.read_text().replace('["pool", "classify"]', '["classify"]'))
    with pytest.raises(TopologyError, match=r"layer 'fog_conv' \(node 'fog'\) feeds layer 'pool' \(node 'edge'\), "
                                            r"but 'edge' comes before 'fog'"):
        load_topology(path)


def test_unknown_layer_name_suggests_close_names(example, tmp_path):
    path = _variant(example, tmp_path, '["fog_conv"]', '["fog_cnv"]')
    with pytest.raises(TopologyError, match=r"lists layer 'fog_cnv', which the model my_model.keras does not have; "
                                            r"did you mean 'fog_conv'"):
        load_topology(path)


def test_model_missing_or_not_a_keras_model(example, tmp_path):
    with pytest.raises(TopologyError, match=r"--model .*nothing.keras: no such file"):
        load_topology(example / "my_split.toml", model=tmp_path / "nothing.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(TopologyError, match=r"--model .*junk.keras: not a Keras model"):
        load_topology(example / "my_split.toml", model=tmp_path / "junk.keras")


def test_normal_links_are_not_listed(example, tmp_path):
    path = _variant(example, tmp_path, "[[links]]", '[[links]]\nfrom = "iot"\nto = "edge"\n\n[[links]]')
    with pytest.raises(TopologyError, match=r"link iot->edge is not a skip link; .* list only skip links"):
        load_topology(path)


def test_dataset_must_match_the_model_input(example):
    topo = load_topology(example / "my_split.toml")
    ds = types.SimpleNamespace(name="cifar10", x_train=np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(BuildInputError, match=r"takes input 28x28x1 but dataset cifar10 gives 32x32x3"):
        check_imported_input(topo, ds)


def test_layer_codegen_cannot_lower_is_named_before_training(example, tmp_path):
    """An ELU activation: the converter keeps it as an ELU op, which no kernel computes bit-exactly."""
    import keras
    from keras import layers

    mod = _example_module()
    x_in = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(x_in)
    a = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="edge_conv")(x)
    b = layers.Conv2D(16, 3, padding="same", activation="relu", name="edge_conv2")(a)
    x = layers.Activation("elu", name="edge_elu")(layers.Add(name="edge_add")([a, b]))
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="fog_conv")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    keras.Model(x_in, layers.Dense(10, activation="softmax", name="classify")(x)).save(tmp_path / "elu.keras")
    path = tmp_path / "split.toml"
    path.write_text(mod.SPLIT_TOML.replace('"edge_add"]', '"edge_add", "edge_elu"]'))
    topo = load_topology(path, model=tmp_path / "elu.keras")
    ds = types.SimpleNamespace(name="fake", x_train=np.zeros((2, 28, 28, 1), np.float32), num_classes=10,
                               feature_groups=None)
    with pytest.raises(BuildInputError, match=r"cannot lower layer 'edge_elu' \(Activation elu\) of node edge: it "
                                              r"becomes the TFLite op ELU"):
        check_graph(topo, "resilinet", ds)


def test_cli_error_is_one_line_exit_2(example, tmp_path):
    res = subprocess.run([sys.executable, "-m", "host.build", "--model", str(tmp_path / "gone.keras"), "--preset",
                          str(example / "my_split.toml"), "--out", str(tmp_path / "b")], cwd=REPO,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert res.returncode == 2
    lines = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "gone.keras: no such file" in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "b").exists()


def test_sequential_model_splits_too(tmp_path):
    """A Sequential model (Keras builds its graph more than once: the split takes the calls of its output)."""
    import keras
    from keras import layers

    from host.ml.schemes import BuildOptions, build_model, get_scheme

    keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, strides=2, padding="same", name="stem"),
                      layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="edge_conv"),
                      layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="fog_conv"),
                      layers.GlobalAveragePooling2D(name="pool"),
                      layers.Dense(10, activation="softmax", name="classify")]).save(tmp_path / "seq.keras")
    path = tmp_path / "split.toml"
    path.write_text(_example_module().SPLIT_TOML.replace('"edge_conv", "edge_conv2", "edge_add"', '"edge_conv"'))
    topo = load_topology(path, model=tmp_path / "seq.keras")
    assert [l.name for l in topo.links if not l.skip] == ["iot->edge", "edge->fog", "fog->cloud"]
    net = build_model(topo, get_scheme("resilinet"), BuildOptions(input_shape=(28, 28, 1), num_classes=10))
    x = np.random.default_rng(1).uniform(0, 1, (3, 28, 28, 1)).astype(np.float32)
    got = np.asarray(net({"x": x, "alive": np.ones((3, 2), np.float32)})["probs"])
    np.testing.assert_allclose(got, np.asarray(keras.saving.load_model(tmp_path / "seq.keras")(x)), atol=1e-6)


@pytest.mark.slow
def test_keras_applications_mobilenet_on_boards_bit_exact(tmp_path):
    """keras.applications.MobileNet (alpha 0.25, weights=None) split over four emulated boards, deployed as built
    (--epochs 0, after one epoch of its user's own training: an untrained MobileNet's logits are too flat for
    an int8 softmax, which host.build refuses) and bit-exact with the fog dropped (examples/user_model/mobilenet_cifar.py; figures: bench
    section user_model)."""
    from codegen.emulator import stop_all
    from host.net.harness import run_harness

    files, out = tmp_path / "files", tmp_path / "build"
    env = dict(os.environ, RESILINET_CACHE=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    res = subprocess.run([sys.executable, str(EXAMPLE.parent / "mobilenet_cifar.py"), "--out", str(files),
                          "--train", "1000", "--test", "60", "--train-epochs", "1"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    res = subprocess.run([sys.executable, "-m", "host.build", "--model", str(files / "mobilenet.keras"), "--preset",
                          str(files / "mobilenet_split.toml"), "--epochs", "0", "--int8-samples", "12", "--out",
                          str(out), "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    try:
        s = run_harness(out, samples=6, progress=False, write=False, dead=["fog"]).report["runs"][0]
    finally:
        stop_all()
    assert s["samples"]["answered"] == 6 and s["mismatches"] == []
    assert s["bit_exact"]["compared"] > 0 and s["bit_exact"]["identical"] == s["bit_exact"]["compared"]
    assert s["nodes"]["cloud"]["mux"] == {"fallback": 6}
