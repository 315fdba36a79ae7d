"""python -m host.harness on emulated boards: the whole split network on four QEMU Cortex-M4s, the host as
the network, failures injected, every board output checked byte for byte against tflite_micro.

One small deployment is built per session (fashion, 1 epoch on 1500 images: the model is barely trained,
which does not matter here: every intermediate tensor still depends on the image). Each test boots its
four boards and stops them again (context managers; nothing is left running)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from harness_support import qemus, quick_build
from host.deploy.firmware import toolchain_available
from codegen.emulator import qemu_available

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (toolchain_available() and qemu_available()),
                                reason="arm-none-eabi-gcc or qemu-system-arm not installed (apt-get install "
                                       "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi "
                                       "qemu-system-arm)")


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    return quick_build(tmp_path_factory, "fashion", 1500, 300, 100)


@pytest.fixture(autouse=True)
def _no_leftover_boards():
    before = qemus()
    yield
    from codegen.emulator import stop_all
    stop_all()
    assert qemus() <= before, "a test left QEMU running"


def _run(build: Path, **kw):
    from host.net.harness import run_harness
    kw.setdefault("samples", 20)
    kw.setdefault("progress", False)
    kw.setdefault("write", False)
    return run_harness(build, **kw)


def _one(res) -> dict:
    (s,) = res.report["runs"]
    _accounts(s)
    return s


def _accounts(s: dict) -> None:
    """Every sample ends once; every answer is complete or lacks an input for one reason."""
    sm = s["samples"]
    assert sm["accounted"] and sm["answered"] + sm["timed_out"] + sm["failed"] == sm["sent"]
    assert sm["complete_answers"] + sum(sm["degraded_answers"].values()) == sm["answered"]


def _run_no_path(build: Path, dead: list[str], samples: int) -> dict:
    """A configuration without a path to the final node: the plan refuses it as a run of its own (it cannot
    answer a sample), --sweep runs it; here straight on the network, as a sweep does."""
    from host.net.checks import check_sample
    from host.net.harness import load_samples
    from host.net.plan import RunPlan
    from host.net.records import RunConfig
    from host.net.reference import Reference, load_deployment
    from host.net.router import Network
    from host.net.summary import RunTally, summarize_run

    with pytest.raises(ValueError, match="no path is left"):
        _run(build, dead=dead, samples=samples)
    dep = load_deployment(build)
    items, ref = load_samples(dep, samples, 0), Reference(dep)
    cfg = RunConfig(frozenset(dead), deadline_s=RunPlan(build).host_deadline_ms(dep) / 1000)
    with Network(dep) as net:
        run = net.run(items, cfg)
        tally = RunTally(dep)
        for r, it in zip(run.records, items):
            tally.add(r, check_sample(dep, ref, r, it.sensors))
        s = summarize_run(dep, net.boards.hello, run, tally)
    _accounts(s)
    return s


def _assert_bit_exact(s: dict) -> None:
    assert s["mismatches"] == []
    assert s["bit_exact"]["compared"] > 0 and s["bit_exact"]["identical"] == s["bit_exact"]["compared"]


# ------------------------------------------------------------------------------------------------- host side
def test_reference_reproduces_build_int8_accuracy(build):
    """The harness's test set and int8 reference are the build's (same samples, same accuracy)."""
    from host.net.reference import Reference, load_deployment

    dep = load_deployment(build)
    x, y = dep.load_test_set()
    st = dep.manifest["stages"]["nodes"]
    n = st["int8_eval_samples"]
    ref = Reference(dep)
    sensors = dep.sensor_inputs(x[:n])
    for c, want in zip(dep.configurations(), st["int8_accuracy"]):
        run = ref.run(sensors, dead=dep.failed_in(c))
        got = None if run.result is None else float(np.mean(np.argmax(run.result, 1) == y[:n]))
        assert got == want, c
        assert dep.has_path(dep.failed_in(c)) == (want is not None)


# ------------------------------------------------------------------------------------------------- boards
def test_no_failure_cli_bit_exact(build, tmp_path):
    """CLI end to end: every DATA tensor and RESULT identical to TFLM, board accuracy = int8 host accuracy."""
    from host.net.harness import main

    out = tmp_path / "report"
    rc = main(["--build", str(build), "--samples", "30", "--seed", "1", "--out", str(out), "--json",
               str(tmp_path / "copy.json"), "--quiet"])
    assert rc == 0
    report = json.loads((out / "harness.json").read_text())
    assert json.loads((tmp_path / "copy.json").read_text()) == report
    assert (out / "harness.md").exists() and (out / "harness.png").stat().st_size > 1000
    (s,) = report["runs"]
    assert s["samples"]["sent"] == s["samples"]["answered"] == 30
    _assert_bit_exact(s)
    for name, node in s["nodes"].items():
        assert node["identical"] == 30 and node["bit_exact"] == 1.0, name
        assert node["stats_delta"]["samples"] == 30 and node["stats_delta"]["rx_crc"] == 0
        c = node["compute"]
        assert c["mean"] > 0 and node["cpu_hz"] > 0
        # emulated boards: SysTick counts under -icount are instructions (1e9 / clock per count), no silicon ms
        assert (c["unit"], c["label"], c["counter"]) == ("instructions", "instructions (QEMU -icount)", "SysTick")
        assert c["mean"] == pytest.approx(c["counts_mean"] * 1e9 / node["cpu_hz"])
        assert c["ms_mean"] is None and c["ms_lower_bound"] == pytest.approx(c["mean"] / node["cpu_hz"] * 1e3)
        # the final node's counts come per sample in its RESULTs, the others' from STATS
        assert c["source"] == ("RESULT" if name == "cloud" else "STATS"), name
    assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"]
    assert s["accuracy"]["correct_boards"] == s["accuracy"]["correct_int8_host"]
    assert s["nodes"]["fog"]["mux"] == {"primary": 30} and s["nodes"]["cloud"]["mux"] == {"primary": 30}
    w = s["wire"]
    assert w["host->iot"]["frames"]["DATA"] == 30 and w["cloud->host"]["frames"]["RESULT"] == 30
    for link in ("iot->edge", "iot->fog", "edge->fog", "edge->cloud", "fog->cloud"):
        assert w[link]["frames"] == {"DATA": 30}
        assert w[link]["tensor_bytes"] == w[link]["payload_bytes"] < w[link]["wire_bytes"]  # DATA = the tensor
        assert 0 < w[link]["overhead_pct_of_tensor"] <= 1.0  # 1-1.5 KB tensors, 2-byte DATA header
    assert s["throughput"]["answered_per_s"] > 0 and s["latency_ms"]["p50"] > 0
    assert "| none failed | 30 | 30 |" in (out / "harness.md").read_text()


def test_drop_edge_uses_iot_skip(build, monkeypatch):
    """A failed edge: LINK_DOWN in its name, the fog takes the IoT skip, still bit-exact everywhere."""
    import copy

    import host.net.harness as harness
    from host.net.checks import check_sample

    whole = []   # the first samples as they were checked (the run keeps only what the report needs of them)

    def keep(dep, ref, rec, sensors):
        if len(whole) < 5:
            whole.append(copy.deepcopy(rec))
        return check_sample(dep, ref, rec, sensors)
    monkeypatch.setattr(harness, "check_sample", keep)
    res = _run(build, dead=["edge"])
    s = _one(res)
    assert s["samples"]["answered"] == 20 and s["samples"]["degraded_answers"] == {"link_cut": 20}
    _assert_bit_exact(s)
    assert s["nodes"]["edge"]["not_fed"] == 20 and s["nodes"]["edge"]["stats_delta"]["samples"] == 0
    assert s["nodes"]["fog"]["mux"] == {"fallback": 20} and s["nodes"]["fog"]["identical"] == 20
    assert s["nodes"]["fog"]["stats_delta"]["input_timeouts"] == 0  # told by LINK_DOWN, no deadline wait
    assert s["wire"]["edge->fog"]["frames"] == {"LINK_DOWN": 20} == s["wire"]["edge->cloud"]["frames"]
    assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"]

    # The check is not vacuous: a reference that differs in one byte of the fog's output flags the fog
    # (and only the fog: each node is checked on what its board really got).
    from host.net.reference import Reference, load_deployment

    dep = load_deployment(build)
    x, _ = dep.load_test_set()
    ref = Reference(dep)
    plain = ref.runner

    def off_by_one(node, feed):
        out = plain(node, feed)
        if node == "fog":
            out = {k: v.copy() for k, v in out.items()}
            v = out["fog_out"].reshape(-1)
            v[7] = v[7] + 1 if v[7] < 127 else v[7] - 1
        return out
    ref.runner = off_by_one
    assert [r.k for r in whole] == [0, 1, 2, 3, 4]
    for rec in whole:
        sensors = {k: v[0] for k, v in dep.sensor_inputs(x[rec.index:rec.index + 1]).items()}
        chk = check_sample(dep, ref, rec, sensors)
        assert chk.nodes == {"iot": "identical", "edge": "not_fed", "fog": "mismatch", "cloud": "identical"}
        assert chk.mismatches == [{"node": "fog", "link": "fog->cloud", "what": "1 of 1024 bytes differ"}]


def test_drop_link_and_no_path(build):
    s = _one(_run(build, cut_links=["edge->fog"], samples=12))
    _assert_bit_exact(s)
    assert s["samples"]["answered"] == 12
    assert s["nodes"]["fog"]["mux"] == {"fallback": 12}
    assert s["wire"]["edge->fog"]["frames"] == {"DATA": 12, "LINK_DOWN": 12}  # board's DATA, host's LINK_DOWN
    # Both middle nodes failed: no path; the cloud says LINK_DOWN at once, every sample fails fast.
    s = _run_no_path(build, ["fog", "edge"], samples=10)
    assert s["samples"]["failed"] == 10 and s["samples"]["reasons"]["failed"] == {"link_cut": 10}
    assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"] == s["accuracy"]["random_guess"]
    assert s["nodes"]["cloud"]["no_output_agreed"] == 10
    assert s["wire"]["cloud->host"]["frames"] == {"LINK_DOWN": 10}


def test_loss_counts_add_up(build):
    """Lost frames: no LINK_DOWN, the receivers' deadlines decide; what was computed is still bit-exact."""
    s = _one(_run(build, loss=0.2, seed=3, samples=16, deadline_ms=3500))
    _assert_bit_exact(s)
    sm = s["samples"]
    lost = sum(sm["reasons"]["timed_out"].values()) + sum(sm["reasons"]["failed"].values()) \
        + sum(sm["degraded_answers"].values())
    assert lost > 0 and set(sm["reasons"]["timed_out"]) <= {"frame_lost"}
    assert sum(n["stats_delta"]["input_timeouts"] for n in s["nodes"].values()) > 0
    assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"]


def test_corrupt_counted_as_crc_drops(build):
    s = _one(_run(build, corrupt=0.25, seed=5, samples=14, deadline_ms=3500))
    _assert_bit_exact(s)
    c = s["corrupt"]
    assert c["frames_corrupted"] > 0 and c["crc_drops_by_boards"] == c["frames_corrupted"]
    for name, node in s["nodes"].items():
        assert node["crc_drops"] == node["corrupted_frames_sent"], name


def test_board_killed_mid_run_and_back(build):
    """edge's QEMU is killed at sample 6 and booted again at sample 12: the run goes on through the skip.
    Sample 12 is sent once edge answered again (the reviver is woken when the harness restarts a board), so
    the board is back for the samples after it. Its STATS over the run are the two boots' counts summed."""
    res = _run(build, samples=24, kills=[("node2", 6, 12)])   # edge, by its id
    s = _one(res)
    _assert_bit_exact(s)
    kinds = [(e["node"], e["kind"]) for e in s["events"]]
    assert ("edge", "silent") in kinds and ("edge", "back") in kinds
    silent_at = next(e for e in s["events"] if e["kind"] == "silent")
    assert 5 <= silent_at["sample"] <= 8
    assert s["samples"]["answered"] == 24  # the fog used the IoT skip while edge was away
    assert s["samples"]["degraded_answers"].get("node_silent", 0) >= 6
    recs = res.runs[0].records
    assert all("edge" not in r.dead for r in recs[:5]) and all("edge" in r.dead for r in recs[8:12])
    assert all("edge" not in r.dead for r in recs[-4:])  # picked up again
    assert s["nodes"]["edge"]["identical"] >= 10
    # Back before sample 12 is sent: every later sample has edge (deterministic, not a reviver's poll away).
    assert all("edge" not in r.dead for r in recs[12:])
    back = next(e for e in s["events"] if e["kind"] == "back")
    assert back["sample"] == 11 and "rebooted" in back["detail"]
    # STATS: the counts before the reboot are in the run's totals (STATS read right before the kill).
    edge = s["nodes"]["edge"]
    computed = edge["compared"]   # the samples edge answered, each compared with the reference
    assert edge["reboots"] == 1 and edge["stats_segments"] == 2
    assert computed - 3 <= edge["stats_delta"]["samples"] <= computed and computed >= 16
    assert edge["stats_delta"]["samples"] > 24 - 12   # more than the boot after the reboot computed
    assert edge["stats_delta"]["rx_frames"] < 1000    # no wrap-around from counting across the reboot
    from host.net.harness_report import build_report
    from host.net.reference import load_deployment
    md = build_report(load_deployment(build), res.report)
    assert "edge (node2) rebooted 1x during the run: its STATS counts are the sum of 2 segments" in md
    assert "killed before sample 6 and booted again before sample 12" in md


def test_stop_early_still_accounts(build):
    stop = threading.Event()
    res = _run(build, samples=20, hooks={6: [lambda net: stop.set()]}, stop=stop)
    s = _one(res)
    assert s["samples"]["interrupted"] and s["samples"]["sent"] == 6 and s["samples"]["answered"] == 6


# ------------------------------------------------------------------------------------------------- handshake
def test_model_hash_mismatch_is_a_clear_error(build, tmp_path):
    from host.net.launch import BoardError

    other = tmp_path / "other"
    shutil.copytree(build, other, ignore=shutil.ignore_patterns("model.keras", "harness"))
    mf = json.loads((other / "manifest.json").read_text())
    mf["nodes"]["fog"]["firmware"]["model_hash"] = "00" * 8
    (other / "manifest.json").write_text(json.dumps(mf))
    with pytest.raises(BoardError) as err:
        _run(other, samples=2, hello_timeout=4)
    msg = str(err.value)
    assert "node fog on socket://127.0.0.1:" in msg and "model hash" in msg and "0000000000000000" in msg
    assert "edge" not in msg and "cloud" not in msg


def test_silent_port_is_a_clear_error(build):
    from host.net.launch import BoardError

    with socket.socket() as srv:  # accepts the connection, never says a word
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        url = f"socket://127.0.0.1:{srv.getsockname()[1]}"
        with pytest.raises(BoardError, match=rf"node cloud on {url}: no HELLO within 2 s"):
            _run(build, samples=2, ports={"cloud": url}, hello_timeout=2)


# ------------------------------------------------------------------------------------------------- distillation
@pytest.fixture(scope="session")
def nonn_build(tmp_path_factory) -> Path:
    """Preset nonn (4 students, 2 parts x 2 replicas, aggregator) trained for one epoch on 600 images."""
    return quick_build(tmp_path_factory, "nonn", 600, 100, 30)


def test_distilled_students_dropped_on_boards(nonn_build):
    """Students failed on the boards: the aggregator averages the replicas that came (part 0: student0 and
    student2), fills the part whose replicas all failed (part 1: student1, student3) with its zero point;
    every tensor bit-exact, board accuracy = int8 host accuracy; with every student failed, no path."""
    m = json.loads((nonn_build / "manifest.json").read_text())
    agg = m["nodes"]["aggregator"]
    assert agg["aggregation"] == "average"
    assert [i["replicas"] for i in agg["inputs"]] == [["student0->aggregator", "student2->aggregator"],
                                                      ["student1->aggregator", "student3->aggregator"]]
    s = _one(_run(nonn_build, samples=12))
    _assert_bit_exact(s)
    assert s["samples"]["answered"] == 12 and s["nodes"]["aggregator"]["identical"] == 12
    s = _one(_run(nonn_build, dead=["student1", "student3"], samples=12))
    _assert_bit_exact(s)
    assert s["samples"]["answered"] == 12 and s["accuracy"]["boards"] == s["accuracy"]["int8_host"]
    assert s["nodes"]["student1"]["not_fed"] == 12 and s["nodes"]["aggregator"]["identical"] == 12
    assert s["wire"]["student3->aggregator"]["frames"] == {"LINK_DOWN": 12}
    s = _run_no_path(nonn_build, [f"student{i}" for i in range(4)], samples=6)
    assert s["samples"]["failed"] == 6 and s["accuracy"]["boards"] == pytest.approx(s["accuracy"]["random_guess"])


def test_sweep_on_boards_matches_the_host(build):
    """--sweep: every failure configuration, one after the other on the same boards, then the averages per
    reliability setting, boards = int8 host everywhere. 130 samples each, so a node dropped for a whole
    configuration has heard of no sample for longer than a DATA frame's one-byte number spans (127) when it
    is used again (the runtime side of that is tested in test_firmware's RESET test)."""
    res = _run(build, sweep=True, samples=130)
    runs = res.report["runs"]
    assert len(runs) == 4  # edge and fog failable: 2^2 configurations
    for s in runs:
        sm = s["samples"]
        assert sm["accounted"] and sm["sent"] == 130 and sm["answered"] + sm["timed_out"] + sm["failed"] == 130
        assert sm["timed_out"] == 0, s["config"]
        if s["bit_exact"]["compared"]:
            _assert_bit_exact(s)
        assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"], s["config"]
    for setting, v in res.report["sweep"].items():
        assert v["boards"] == v["int8_host"], setting


def test_board_deadline_grows_with_depth(build):
    """Each level of nodes outwaits the one above it by half a deadline: a node whose first input comes at once (a skip, or the host's
    LINK_DOWN for a failed node) must outwait an upstream node that waits its own deadline for a lost frame
    (with one deadline everywhere the receiver gave up just before the sender's data came)."""
    import re

    from host.deploy.firmware_stage import node_depths
    from host.deploy.manifest import read_manifest
    from host.net.reference import load_deployment

    man = read_manifest(build)
    depths = node_depths(man.nodes, man.require_links())
    assert depths == {"iot": 0, "edge": 1, "fog": 2, "cloud": 3}
    base = man.stages.firmware.deadline_ms
    for name, depth in depths.items():
        header = (build / "nodes" / name / "fw" / "node_config.h").read_text()
        got = int(re.search(r"#define NODE_CFG_DEADLINE_MS (\d+)u", header).group(1))
        assert got == base * {0: 2, 1: 2, 2: 3, 3: 4}[depth] // 2, (name, got)
    assert load_deployment(build).max_depth == 3
