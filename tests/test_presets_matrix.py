"""Every preset x scheme x partition builds, trains one epoch and is bit-exact node by node (issue 14).

Presets are enumerated with ``preset_names()`` (a new preset is in the matrix without touching this file),
each at a quick width (:mod:`host.ml.widths`: the graph, strides and partition as written, channels
shrunk) on a few real samples. One combination runs the build's own stages -- the input check
(``check_graph``), one epoch of training, the per-node split, int8 conversion and C generation -- and then
the bit-exact node test: every node's generated C against tflite_micro, byte for byte, on the inputs that
node really receives under every failure configuration (zero points and mux choices included).
Distillation presets (``nonn``, ``nonn_s8``) have one scheme, ``distill`` (teacher + students, one epoch each).

Cost: TensorFlow's int8 converter alone takes ~4 s of CPU per node, so the whole matrix (~50 combinations,
~10 min) does not fit the suite's budget. ``make test`` runs one scheme per preset and partition (the schemes
taken in turn, so each is covered; presets of at most :data:`DEFAULT_MAX_NODES` nodes) plus both skip schemes
of the partition-2 ResNet (the bug this matrix was written for), less the combinations checked elsewhere
(:data:`COVERED_ELSEWHERE`); the rest is marked ``slow`` and runs with
``RESILINET_MATRIX=full pytest tests/test_presets_matrix.py``.
"""
from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

pytest.importorskip("tflite_micro")

import codegen  # noqa: E402
from boards import load_board  # noqa: E402
from host.deploy.checks import BuildInputError, check_graph  # noqa: E402
from host.deploy.int8_nodes import build_int8_nodes, int8_zero, quantized_sensor_inputs  # noqa: E402
from host.deploy.pipeline import BuildRequest, load_data, train_stage  # noqa: E402
from host.deploy.quantize import tflm_runner  # noqa: E402
from host.ml.schemes import SCHEMES, BuildOptions, build_model, get_scheme  # noqa: E402
from host.ml.split import PartitionError, run_split, sources_once  # noqa: E402
from host.ml.topology import TopologyError, load_topology, parse_topology, preset_names  # noqa: E402

#: Channels x 1/8: the paper's ResNet-18 / MobileNet on 32x32 in seconds; the small presets keep >= 1 channel.
WIDTH = 0.125
TRAIN, TEST = 48, 2
#: Data not shipped in the shared directory (genuinely external) -> the fixture with a stand-in [dataset].
STAND_INS = {"mhealth": "health_dataset", "imagenet": "imagenet_dataset"}
DEFAULT_MAX_NODES = 6
#: Always in the default run: the partition-2 ResNet's skips (deepFogGuard sums, ResiliNet muxes them).
ALWAYS = {("cifar_resnet", "2", "dfg"), ("cifar_resnet", "2", "resilinet")}
#: Left to the full matrix because make test already checks them at full width, node by node, in
#: tests/test_node_bitexact.py (same build stages, same bit-exact check): the suite's budget is 20 minutes.
#: cifar_mobilenet p1 under deepFogGuard: its nodes at full width in test_node_bitexact (ResiliNet) and the sum
#: aggregation there for fashion and health; cifar_resnet p2 vanilla: the same nodes as p2 under deepFogGuard
#: (ALWAYS), which adds the skips.
COVERED_ELSEWHERE = {("fashion", "1", "dfg"), ("har", "1", "resilinet"), ("cifar_resnet", "1", "resilinet_plus"),
                     ("nonn", "1", "distill"), ("cifar_mobilenet", "1", "dfg"), ("cifar_resnet", "2", "vanilla")}
FULL = os.environ.get("RESILINET_MATRIX") == "full"
_DATA: dict = {}


def _combinations() -> list:
    params, turn = [], 0
    for preset in preset_names():
        topo = load_topology(preset)
        schemes = ["distill"] if topo.distillation else list(SCHEMES)
        for partition in ["1", *topo.partitions]:
            default = schemes[turn % len(schemes)] if len(topo.nodes) <= DEFAULT_MAX_NODES else None
            turn += len(schemes) > 1
            for scheme in schemes:
                marks = []
                key = (preset, partition, scheme)
                if (scheme != default or key in COVERED_ELSEWHERE) and key not in ALWAYS:
                    marks = [pytest.mark.slow,
                             pytest.mark.skipif(not FULL, reason="full matrix: RESILINET_MATRIX=full")]
                params.append(pytest.param(preset, partition, scheme, marks=marks,
                                           id=f"{preset}-p{partition}-{scheme}"))
    return params


@pytest.fixture(scope="module")
def health_dataset(health_npz) -> dict:
    """MHEALTH is not reachable offline: the Health-shaped npz of conftest."""
    return {"name": "npz", "path": health_npz}


@pytest.fixture(scope="module")
def imagenet_dataset(tmp_path_factory) -> dict:
    """The user's ILSVRC-2012 is not here: a 3-class directory in its layout, read at 32 px. 36 training
    images: an odd batch crashes oneDNN's Conv2D filter gradient on this width's 1x1 stride-2 skip
    (6 -> 12 channels, 16x16; TensorFlow 2.x CPU, heap corruption), a TensorFlow bug, not ours."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("val", 2)):
        for c, wnid in enumerate(("n01440764", "n01443537", "n01484850")):
            (root / split / wnid).mkdir(parents=True)
            for k in range(n):
                pixels = rng.integers(0, 80, (40, 40, 3), dtype=np.uint8)
                pixels[..., c] += 150  # a class is its dominant colour: one epoch learns something
                Image.fromarray(pixels).save(root / split / wnid / f"{wnid}_{k}.JPEG", quality=90)
    return {"name": "imagenet", "path": str(root), "image_size": 32, "val_fraction": 0.25}


def _passthrough(topo, scheme: str) -> bool:
    """A node with no layers and no projection left to compute under ``scheme`` (Health's IoT in vanilla:
    the paper sends the raw features; a node model that computes nothing is refused by the partitioner)."""
    skips = get_scheme(scheme).skips
    return any(not n.layers and not any(l.projection for l in topo.outgoing(n.name, skips=skips))
               for n in topo.nodes)


@pytest.mark.parametrize("preset,partition,scheme", _combinations())
def test_preset_builds_trains_and_is_bit_exact(preset, partition, scheme, request, tmp_path):
    keras.backend.clear_session()  # one process trains ~50 networks: start each from a clean graph
    topo = load_topology(preset, partition=partition, width=WIDTH)
    if topo.dataset.get("name") in STAND_INS:
        topo.dataset = request.getfixturevalue(STAND_INS[topo.dataset["name"]])
    req = BuildRequest(topology=topo, scheme=get_scheme(scheme), board=load_board("qemu"), out=tmp_path,
                       epochs=1, max_train=TRAIN, max_test=TEST, use_cache=False, progress=False)
    key = json.dumps(topo.dataset, sort_keys=True)
    ds = _DATA[key] = _DATA.get(key) or load_data(req).dataset  # read once per data set, not per scheme
    if not topo.distillation and _passthrough(topo, scheme):  # refused before training, naming the node
        with pytest.raises(BuildInputError, match="node 'iot' computes nothing"):
            check_graph(topo, scheme, ds, epochs=1)
        return
    check_graph(topo, scheme, ds, epochs=1)  # the build's check before training: the links' shapes agree
    trained = train_stage(req, ds)
    section = trained.section
    if topo.distillation:  # teacher and students: one epoch each
        assert (section.distillation["teacher"]["epochs"], section.distillation["students"]["epochs"]) == (1, 1)
    else:
        assert [len(v) for v in section.history.values()] == [1] * len(section.history) and section.history
    if _passthrough(trained.topology, scheme):
        with pytest.raises(PartitionError, match="computes nothing"):
            build_int8_nodes(trained.model, trained.topology, scheme, ds, tmp_path, board="qemu", log=lambda _: None)
        return
    built = build_int8_nodes(trained.model, trained.topology, scheme, ds, tmp_path, board="qemu",
                             calib_samples=TRAIN, log=lambda _: None)
    _assert_nodes_bit_exact(built, trained.topology, ds.x_test[:TEST], tmp_path)


def _assert_nodes_bit_exact(built, topo, x: np.ndarray, tmp_path) -> None:
    """Each node's C == tflite_micro on the inputs it gets in every failure configuration of the split."""
    plans, quant = built.plans, built.quant
    run, zero = sources_once(tflm_runner(quant, plans), plans), int8_zero(quant)
    sensors = quantized_sensor_inputs(plans, quant, x)
    fed: dict[str, list[list[np.ndarray]]] = {n: [] for n in plans}
    for c in topo.configurations():
        r = run_split(plans, run, sensors, topo.alive_map(c), zero=lambda n, s: zero(n, s, len(x)))
        for node, ins in r.inputs.items():
            fed[node].append(ins)
    for node, plan in plans.items():
        assert fed[node], f"{node} never ran"
        arrays = {spec.name: np.concatenate([ins[i] for ins in fed[node]]) for i, spec in enumerate(plan.inputs)}
        np.savez(tmp_path / f"{node}_inputs.npz", **arrays)
        result = codegen.verify_model(tmp_path / "nodes" / node / f"{node}.tflite",
                                      inputs=tmp_path / f"{node}_inputs.npz", name=f"node_{node}")
        assert result.samples == len(next(iter(arrays.values()))) >= len(x)
        assert result.ok, f"{topo.name} p{topo.partition} node {node}: {result.mismatched_bytes} bytes differ"


# ----------------------------------------------------------------------------- partitions, shapes, widths
def _raw(preset: str) -> dict:
    import tomllib

    from host.ml.topology import PRESET_DIR

    return tomllib.loads((PRESET_DIR / f"{preset}.toml").read_text())


def test_a_partition_replaces_link_projections_by_name():
    p1, p2 = load_topology("cifar_resnet"), load_topology("cifar_resnet", partition="2")
    assert [(s["filters"], s["strides"]) for s in p1.link("iot->fog").projection] == [(64, 4)]
    assert [(s["filters"], s["strides"]) for s in p2.link("iot->fog").projection] == [(128, 8)]
    assert [(s["filters"], s["strides"]) for s in p2.link("edge->cloud").projection] == [(256, 2)]
    assert p2.link("edge->fog").projection == ()  # links the partition does not name keep their own
    model = build_model(p2, get_scheme("resilinet"), BuildOptions((32, 32, 3), 10))  # full width: the skips fit
    assert [tuple(t.shape[1:]) for t in model.get_layer("fog_aggregate").input[:2]] == [(2, 2, 128)] * 2
    assert [tuple(t.shape[1:]) for t in model.get_layer("cloud_aggregate").input[:2]] == [(1, 1, 256)] * 2
    raw = _raw("cifar_resnet")
    raw["partitions"]["2"]["projections"]["fog->iot"] = []
    with pytest.raises(TopologyError, match=r"unknown link\(s\) \['fog->iot'\]"):
        parse_topology(raw, partition="2")


def test_a_skip_that_does_not_fit_is_named_with_both_shapes_and_the_fix_before_training():
    raw = _raw("cifar_resnet")
    del raw["partitions"]["2"]["projections"]  # the bug: partition 2 with partition 1's skip projections
    topo = parse_topology(raw, partition="2")
    for scheme in ("dfg", "resilinet", "resilinet_plus"):
        with pytest.raises(TopologyError) as err:
            build_model(topo, get_scheme(scheme), BuildOptions((32, 32, 3), 10))
        assert str(err.value) == (
            "topology cifar_resnet (partition 2): skip link iot->fog delivers 4x4x64 to node fog, whose input from "
            "edge->fog is 2x2x128: they must be equal; give iot->fog a projection that outputs 2x2x128 "
            '([partitions.2.projections] "iot->fog" = [...])')
    build_model(topo, get_scheme("vanilla"), BuildOptions((32, 32, 3), 10))  # no skips: nothing to fit


def test_width_scales_channels_and_units_only():
    full, quick = load_topology("cifar_mobilenet", partition="2"), load_topology("cifar_mobilenet", partition="2",
                                                                                 width=0.125)
    for a, b in zip(full.nodes, quick.nodes):
        for s, t in zip(a.layers, b.layers):
            assert {k: v for k, v in s.items() if k != "filters"} == {k: v for k, v in t.items() if k != "filters"}
            assert t.get("filters") == (None if "filters" not in s else max(1, int(s["filters"] / 8 + 0.5)))
    assert quick.cloud.layers[-1]["units"] == "classes"
    assert [s["filters"] for s in quick.link("edge->cloud").projection] == [48]
    lstm = load_topology("har_lstm", width=0.5)
    assert [s.get("shape") for s in lstm.node("fog").layers if s["type"] == "reshape"] == [[16, -1]]
    nonn = load_topology("nonn_s8", width=0.125)  # filters a multiple of the parts, the teacher ends on them
    assert nonn.distillation["filters"] == 16 and nonn.distillation["teacher_widths"] == [2, 4, 16]
    with pytest.raises(TopologyError, match=r"width \(--width\) 0 must be a number in \(0, 8\]"):
        load_topology("fashion", width=0)


def test_build_refuses_a_bad_width_in_one_line(capsys):
    from host.deploy.cli import main

    assert main(["--preset", "fashion", "--width", "-1", "--out", "/tmp/never-written"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "width (--width) -1.0" in err[0]
