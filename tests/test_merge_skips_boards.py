"""Merges of several normal links together with skips, bit-exact on emulated boards (issue 14).

tests/test_aggregation.py checks the Keras graph against the split network on the host, and the camera preset
(tests/test_camera_preset.py) runs ``merge = "sum"`` + skips on boards. This runs the other two merges with skips
on boards, in one small topology (tests/topologies/merge_skips.toml): f averages a and b (one part, two
replicas, averaged by the node runtime on the int8 codes) and takes skips from c and iot; the cloud concatenates
f and c and takes a skip from iot. Built (one epoch, few samples) for ResiliNet, whose skips are standby inputs
guarded by the normal links, and for deepFogGuard (slow-marked), whose skips are always added. One
``--sweep`` per build runs all 16 failure configurations of [f, a, b, c] on the boards: one averaged link missing,
both (the skips take over), the concatenation missing one part, both (iot's skip takes over), and everything
between."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness_support import qemus, quick_build

TOPOLOGY = Path(__file__).resolve().parent / "topologies" / "merge_skips.toml"
SAMPLES = 4
FAILABLE = ("f", "a", "b", "c")


# deepFogGuard is slow-marked (make test-all): its boards run the same runtime input kinds as ResiliNet's (the
# average input, plain links); only the int8 models' ADD of the skips differs. make test keeps one build.
@pytest.fixture(scope="module", params=["resilinet", pytest.param("dfg", marks=pytest.mark.slow)])
def swept(request, tmp_path_factory):
    """(scheme, build, runs by their set of dead nodes): one quick build and one sweep on the boards."""
    from codegen.emulator import stop_all
    from host.net.harness import run_harness

    build = quick_build(tmp_path_factory, str(TOPOLOGY), 300, 30, 8, scheme=request.param)
    before = qemus()
    try:
        res = run_harness(build, samples=SAMPLES, sweep=True, progress=False, write=False)
    finally:
        stop_all()
    assert qemus() <= before, "the sweep left QEMU running"
    runs = {frozenset(r["config"]["dead"]): r for r in res.report["runs"]}
    return request.param, build, runs


def test_nodes_are_configured_as_average_and_concat_with_skips(swept):
    scheme, build, _ = swept
    m = json.loads((build / "manifest.json").read_text())
    want = "mux" if scheme == "resilinet" else "sum"
    assert m["nodes"]["f"]["aggregation"] == want and m["nodes"]["cloud"]["aggregation"] == want
    f = (build / "nodes" / "f" / "fw" / "node_config.h").read_text()
    cloud = (build / "nodes" / "cloud" / "fw" / "node_config.h").read_text()
    assert f.count("NODE_INPUT_AVERAGE, 2,") == 1
    if scheme == "resilinet":   # each skip waits behind both normal links (2 guards + the skip)
        assert f.count("NODE_INPUT_STANDBY, 3,") == 2 and cloud.count("NODE_INPUT_STANDBY, 3,") == 1
        assert cloud.count("NODE_INPUT_LINK, 1,") == 2
    else:                       # the skips are plain inputs, added to the merged part
        assert "NODE_INPUT_STANDBY" not in f + cloud
        assert f.count("NODE_INPUT_LINK, 1,") == 2 and cloud.count("NODE_INPUT_LINK, 1,") == 3


def test_every_failure_configuration_answered_and_bit_exact(swept):
    _, _, runs = swept
    assert len(runs) == 2 ** len(FAILABLE)
    for dead, s in runs.items():
        assert s["samples"]["answered"] == SAMPLES and s["mismatches"] == [], sorted(dead)
        assert s["bit_exact"]["compared"] > 0 and s["bit_exact"]["identical"] == s["bit_exact"]["compared"]
        assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"]
        for node in FAILABLE:
            key = "not_fed" if node in dead else "identical"
            assert s["nodes"][node][key] == SAMPLES, (sorted(dead), node)
        assert s["nodes"]["cloud"]["identical"] == SAMPLES and s["nodes"]["iot"]["identical"] == SAMPLES


@pytest.mark.parametrize("dead,f_choice,cloud_choice", [
    ((), "primary", "primary"),
    (("a",), "primary", "primary"),          # f averages b alone
    (("a", "b"), "fallback", "primary"),     # f: both averaged links lost, the skips of c and iot take over
    (("a", "b", "c"), "fallback", "primary"),  # f: iot's skip alone; the cloud: f's part only
    (("c",), "primary", "primary"),          # the cloud concatenates f with c's part missing
    (("f", "c"), None, "fallback"),          # the cloud: both concatenated links lost, iot's skip takes over
])
def test_mux_choices_of_the_merging_nodes(swept, dead, f_choice, cloud_choice):
    scheme, _, runs = swept
    s = runs[frozenset(dead)]
    if scheme != "resilinet":   # a sum scheme has no choice to make
        assert s["nodes"]["f"]["mux"] is None and s["nodes"]["cloud"]["mux"] is None
        return
    assert s["nodes"]["f"]["mux"] == ({f_choice: SAMPLES} if f_choice else None)
    assert s["nodes"]["cloud"]["mux"] == {cloud_choice: SAMPLES}


def test_the_compared_tensors_carry_the_merges(swept):
    """Bit-exactness means something only if the merged tensors are not degenerate: f's averaged input is
    neither replica (a runtime forwarding one replica would be caught), and the skips that take over carry
    a signal, not the zero point."""
    from host.net.reference import Reference, load_deployment

    scheme, build, _ = swept
    dep = load_deployment(build)
    x, _ = dep.load_test_set()
    ref = Reference(dep)
    sensors = dep.sensor_inputs(x[:SAMPLES])
    run = ref.run(sensors)
    (k,) = [i for i, spec in enumerate(dep.plans["f"].inputs) if spec.replicas]
    averaged = run.inputs["f"][k]
    assert not np.array_equal(averaged, run.outputs["a"]["a_out"])
    assert not np.array_equal(averaged, run.outputs["b"]["b_out"])
    if scheme == "resilinet":   # the standby skips that take over, as fed to f and to the cloud
        for node, dead in (("f", ["a", "b"]), ("cloud", ["f", "c"])):
            lost = ref.run(sensors, dead=dead)
            assert lost.mux_choice[node] == "fallback"
            fed = [t for t, spec in zip(lost.inputs[node], dep.plans[node].inputs) if spec.fallback]
            assert fed and all(t.max() > t.min() for t in fed), (node, dead)
