"""The ``camera`` preset (issue 14, ResiliNet spec §3.5) on 15 emulated boards, bit-exact with the int8 reference.

Six cameras, four edges, four fogs and the cloud are all boards (link protocol version 3: one-byte node ids, so
node 15 exists). Each camera board runs a small convolution on its own view; e1 and e3 sum two cameras' tensors
(merge = "sum"); f2 takes two normal links (f3 + f4, summed) and four skips (e1..e4): the generalised
aggregation. One quick build (1 epoch, ResiliNet) per session; each harness run boots its own boards and stops
them. The runs drop one fog and one edge (the issue's "one dropped fog and one dropped edge"), and f3 + f4 + e1
together (f2 has lost both normal links: the mux falls back to the sum of the edges' skips, with one of the
skips lost too). Every single-node failure under --sweep was checked by hand (the report of H11, issue 14)."""
from __future__ import annotations

import json

import pytest

from harness_support import qemus, quick_build
from host.ml.topology import load_topology


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    # 256 failure configurations: the int8 evaluation of every one dominates the build, so few samples
    return quick_build(tmp_path_factory, "camera", 400, 40, 10)


@pytest.fixture(autouse=True)
def _no_leftover_boards():
    before = qemus()
    yield
    from codegen.emulator import stop_all
    stop_all()
    assert qemus() <= before, "a test left QEMU running"


def test_camera_topology_is_the_papers():
    topo = load_topology("camera")
    cams = [f"cam{i}" for i in range(1, 7)]
    assert [n.name for n in topo.sensors] == cams and len(topo.nodes) == 15
    assert [topo.node(c).features for c in cams] == [(c,) for c in cams]
    assert not any(topo.node(c).failable for c in cams)
    assert all(topo.node(e).role == "edge" and topo.node(e).failable for e in ("e1", "e2", "e3", "e4"))
    assert [sorted(l.src for l in topo.incoming(e, skips=False)) for e in ("e1", "e2", "e3", "e4")] == [
        ["cam1", "cam2"], ["cam3"], ["cam4", "cam5"], ["cam6"]]
    assert topo.node("e1").merge == "sum" and topo.node("e3").merge == "sum"
    assert topo.failure_order == ["f1", "f2", "f3", "f4", "e1", "e2", "e3", "e4"]
    assert sorted(l.name for l in topo.skip_links) == sorted(
        ["e1->f2", "e2->f2", "e3->f2", "e4->f2", "f3->f1", "f4->f1", "f2->cloud"])
    assert topo.node("f2").merge == "sum" and topo.node("f4").merge == "sum"
    assert sorted(l.src for l in topo.incoming("f4", skips=False)) == ["e2", "e3", "e4"]
    assert topo.reliability["Hazardous"]["e4"] == 0.65 and topo.training["failout_survival"] == 0.8


def test_build_f2_muxes_two_normal_links_and_four_standby_skips(build):
    m = json.loads((build / "manifest.json").read_text())
    assert len(m["nodes"]) == 15 and m["nodes"]["cloud"]["node_id"] == 15  # beyond version 2's 4-bit ids
    assert m["nodes"]["e1"]["aggregation"] == "sum" and m["nodes"]["e3"]["aggregation"] == "sum"
    assert all(m["nodes"][f"cam{i}"]["aggregation"] == "source" for i in range(1, 7))
    f2 = m["nodes"]["f2"]
    assert f2["aggregation"] == "mux"
    config = (build / "nodes" / "f2" / "fw" / "node_config.h").read_text()
    assert config.count("NODE_INPUT_STANDBY, 3,") == 4 and config.count("NODE_INPUT_LINK, 1,") == 2
    ev = json.loads((build / "evaluation.json").read_text())
    assert set(ev["average"]) >= {"No failure", "Normal", "Poor", "Hazardous"}


def _run(build, dead) -> dict:
    from host.net.harness import run_harness
    res = run_harness(build, samples=6, progress=False, write=False, dead=dead)
    (s,) = res.report["runs"]
    assert s["samples"]["answered"] == 6 and s["mismatches"] == []
    assert s["bit_exact"]["compared"] > 0 and s["bit_exact"]["identical"] == s["bit_exact"]["compared"]
    assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"]
    for i in range(1, 7):  # the camera boards compute every sample, whatever failed downstream
        assert s["nodes"][f"cam{i}"]["identical"] == 6
    return s


@pytest.mark.parametrize("dead,choice", [(["f3"], "primary"), (["e2"], "primary"),
                                         (["f3", "f4", "e1"], "fallback")])
def test_dropped_nodes_on_boards_bit_exact(build, dead, choice):
    """f3 dropped: f2 has f4 only (still its normal part); e2 dropped: f4 sums e3 + e4; f3 + f4 + e1 dropped:
    f2 takes the skips of e2, e3, e4. f2's board answers identically to the int8 reference every time."""
    s = _run(build, dead)
    for d in dead:
        assert s["nodes"][d]["not_fed"] == 6
    assert s["nodes"]["f2"]["identical"] == 6 and s["nodes"]["f2"]["mux"] == {choice: 6}
    assert s["nodes"]["cloud"]["identical"] == 6
