"""python -m host.harness: every option names nodes the same way, every bad input is one clear error before a
board is opened, boards started by ``pio run -t upload`` are used (and left running), and the report's
accounting (answers, STATS across a reboot, bad frames, event times) is exact.

The option tests run the CLI as a user does (a subprocess, ``PATH`` without QEMU: a run that got as far as
launching a board would fail differently); they need the session's small build (tests/harness_support.py,
shared with tests/test_harness.py) but no boards. The last tests boot boards."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness_support import REPO, copy_build, qemus, quick_build
from codegen.emulator import qemu_available
from host.deploy.firmware import toolchain_available

needs_build = pytest.mark.skipif(not toolchain_available(), reason="arm-none-eabi-gcc not installed")
needs_boards = pytest.mark.skipif(not (toolchain_available() and qemu_available()),
                                  reason="arm-none-eabi-gcc or qemu-system-arm not installed")
NODES = "iot (node1), edge (node2), fog (node3), cloud (node4)"


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    return quick_build(tmp_path_factory, "fashion", 1500, 300, 100)


@pytest.fixture(scope="module")
def dep(build):
    from host.net.reference import load_deployment
    return load_deployment(build)


def harness(build: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    """``python -m host.harness --build B ...`` with no QEMU on the PATH and its reports in ``tmp/out``."""
    empty = tmp / "empty-path"
    empty.mkdir(exist_ok=True)
    env = dict(os.environ, PATH=str(empty), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "host.harness", "--build", str(build), "--out", str(tmp / "out"),
                           "--quiet", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def one_error(res: subprocess.CompletedProcess, tmp: Path) -> str:
    """The run stopped with exit status 2 and one ``error:`` line, no traceback, before any report."""
    assert res.returncode == 2, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr + res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert not (tmp / "out").exists()   # no run, no report
    return lines[0]


# --------------------------------------------------------------------------------------- bad options: CLI
BAD = [
    (["--drop", "nosuch"], ["--drop nosuch: no node 'nosuch'", NODES]),
    (["--drop", "node9"], ["--drop node9: no node 'node9'", NODES]),
    (["--drop-link", "iot->nosuch"], ["--drop-link iot->nosuch: no node 'nosuch'", NODES]),
    (["--drop-link", "node1->node4"], ["--drop-link node1->node4: iot (node1) -> cloud (node4) is not a link",
                                       "links are iot->edge, iot->fog, edge->fog, edge->cloud, fog->cloud"]),
    (["--kill", "nosuch@15"], ["--kill nosuch@15: no node 'nosuch'", NODES]),
    (["--port", "nosuch=socket://127.0.0.1:9"], ["--port nosuch=socket://127.0.0.1:9: no node 'nosuch'", NODES]),
    (["--kill", "edge@500", "--samples", "20"], ["--kill edge@500: K = 500 is beyond the run's 20 samples"]),
    (["--kill", "edge@5:30", "--samples", "20"], ["--kill edge@5:30: M = 30 is beyond the run's 20 samples"]),
    (["--kill", "edge@5:3"], ["--kill edge@5:3: M (3) must come after K (5)"]),
    (["--kill", "edge@5:5"], ["--kill edge@5:5: M (5) must come after K (5)"]),
    (["--kill", "2@5", "--port", "node2=socket://127.0.0.1:9"],
     ["--kill edge@5: edge (node2) is attached with --port socket://127.0.0.1:9", "cannot restart"]),
    (["--kill", "edge@5", "--drop", "edge"], ["--kill edge@5: edge (node2) is dropped for the whole run"]),
    (["--drop", "cloud"], ["--drop cloud: cloud (node4) is the node that sends the RESULT",
                           "no sample can be answered"]),
    (["--drop", "4"], ["--drop cloud: cloud (node4) is the node that sends the RESULT"]),
    (["--drop", "edge", "--drop", "node3"], ["--drop edge --drop fog: no path is left from a sensor to cloud (node4)"]),
    (["--drop-link", "iot->edge", "--drop-link", "1->3"],
     ["--drop-link iot->edge --drop-link iot->fog: no path is left", "cloud (node4)"]),
    (["--deadline", "0"], ["--deadline 0: must be a positive number of milliseconds"]),
    (["--deadline", "-5"], ["--deadline -5: must be a positive number of milliseconds"]),
    (["--samples", "-3"], ["--samples -3: must be a positive number of test samples, or 0 for the whole test set"]),
    (["--window", "0"], ["--window 0: must be 1..32"]),
    (["--window", "33"], ["--window 33: must be 1..32"]),
    (["--loss", "1.5"], ["--loss 1.5: must be a probability"]),
    (["--kill", "edge"], ["argument --kill: expects NODE@K or NODE@K:M", "got 'edge'"]),
    (["--port", "edge"], ["argument --port: expects NODE=URL", "got 'edge'"]),
    (["--port", "edge=socket://a:1", "--port", "2=socket://b:2"], ["--port 2=socket://b:2: edge (node2) already has"]),
]


@needs_build
@pytest.mark.parametrize("args, wanted", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_is_one_error_line_before_any_board(build, tmp_path, args, wanted):
    line = one_error(harness(build, *args, tmp=tmp_path), tmp_path)
    for w in wanted:
        assert w in line, line


@needs_build
def test_kill_of_a_real_board_is_refused(build, tmp_path):
    """A node on a real board (no emulator) cannot be killed and restarted by the harness."""
    other = copy_build(build, tmp_path / "real")
    mf = json.loads((other / "manifest.json").read_text())
    mf["nodes"]["fog"]["firmware"]["board"] = "nucleo_f446re"
    (other / "manifest.json").write_text(json.dumps(mf))
    line = one_error(harness(other, "--kill", "node3@2", "--port", "fog=socket://127.0.0.1:9", tmp=tmp_path), tmp_path)
    assert "--kill fog@2: fog (node3) is attached with --port" in line
    line = one_error(harness(other, "--kill", "3@2", tmp=tmp_path), tmp_path)
    assert "--kill fog@2: fog (node3) runs on nucleo_f446re, a real board the harness cannot restart" in line
    # and without --kill: the real board needs a --port, said before any emulated board is launched
    line = one_error(harness(other, tmp=tmp_path), tmp_path)
    assert "fog (node3) runs on nucleo_f446re, a real board: attach it with --port fog=" in line


@needs_build
def test_corrupt_uploads_record_is_one_error_naming_the_file(build, tmp_path):
    other = copy_build(build, tmp_path / "b")
    (other / "pio" / "uploads.json").write_text("{not json")
    line = one_error(harness(other, "--samples", "2", tmp=tmp_path), tmp_path)
    assert str(other / "pio" / "uploads.json") in line and "is not JSON" in line


def test_window_zero_is_refused_by_run_harness_too(tmp_path):
    """run_harness(window=0) used to loop forever: the same check as the CLI's, before the build is read."""
    from host.net.harness import run_harness
    with pytest.raises(ValueError, match="--window 0: must be 1..32"):
        run_harness(tmp_path / "no-build", window=0)
    with pytest.raises(ValueError, match="--samples -1"):
        run_harness(tmp_path / "no-build", samples=-1)


# --------------------------------------------------------------------------------------- node names
@needs_build
def test_a_node_answers_to_its_name_node_id_and_id(dep, build):
    """One resolver for every option: name, node<id> and the bare id (the id in HELLO and node_config.h)."""
    from host.net.plan import RunPlan, resolve_link, resolve_node

    assert {resolve_node(dep, t, "--drop") for t in ("edge", "node2", "2", "Node2", " 2 ")} == {"edge"}
    assert resolve_link(dep, "node2->3") == resolve_link(dep, "edge->fog") == "edge->fog"
    plan = RunPlan(build, ports={"node4": "socket://x:1"}, dead=frozenset({"2"}), cut_links=frozenset({"2->4"}),
                   samples=20).check(dep)
    assert plan.dead == {"edge"} and plan.cut_links == {"edge->cloud"} and plan.ports == {"cloud": "socket://x:1"}
    from host.net.records import KillSpec
    plan = RunPlan(build, kills=(KillSpec("node3", 2, 5),), samples=20).check(dep)
    assert plan.kills == (KillSpec("fog", 2, 5),)
    assert dep.node_label("edge") == "edge (node2)"


@needs_boards
def test_drop_node2_as_typed_in_the_readme(build, tmp_path):
    """``python -m host.harness --drop node2``: edge dropped, the report names it with its id."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    res = subprocess.run([sys.executable, "-m", "host.harness", "--build", str(build), "--drop", "node2",
                          "--samples", "4", "--out", str(tmp_path), "--quiet"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((tmp_path / "harness.json").read_text())
    (s,) = report["runs"]
    assert s["config"]["dead"] == ["edge"] and s["samples"]["answered"] == 4
    md = (tmp_path / "harness.md").read_text()
    assert "Failures injected: dropped edge (node2)" in md and "| edge (node2) | 2 |" in md


# --------------------------------------------------------------------------------------- accounting (no boards)
def _reference_record(dep, late_skip: bool):
    """One sample as boards that computed exactly the host reference would have sent it, every frame routed;
    with ``late_skip`` the skip iot->fog reaches the fog only after the fog answered with edge's tensor."""
    from host.net.records import SampleRecord
    from host.net.reference import Reference

    x, y = dep.load_test_set()
    sensors = dep.sensor_inputs(x[:1])
    run = Reference(dep).run(sensors)
    rec = SampleRecord(0, 0, int(y[0]), 1, 0.0, outcome="answered")
    ev = iter(range(1, 100))
    rec.delivery["host->iot"] = ("data", next(ev))
    order = ["iot", "edge", "fog", "cloud"]
    for name in order:
        rec.answers[name] = next(ev)
        for o in dep.plans[name].outputs:
            tensor = np.ascontiguousarray(run.outputs[name][o.name][0], np.int8).tobytes()
            if o.result:
                rec.outputs[f"{name}->host"] = tensor
            for link in o.links:
                rec.outputs[link] = tensor
                if not (late_skip and link == "iot->fog"):
                    rec.delivery[link] = ("data", next(ev))
    if late_skip:
        rec.delivery["iot->fog"] = ("data", rec.answers["fog"] + 1)   # after the fog's answer
    return rec, {s: v[0] for s, v in sensors.items()}


@needs_build
def test_an_unused_skip_after_the_answer_is_not_a_missing_input(dep):
    """The fog computes as soon as edge's tensor is there (a mux does not wait for the skip); an iot->fog
    frame that comes after that answer was not missing: such answers used to be reported as "answered
    without some input (deadline)" although no board's deadline expired."""
    from host.net.checks import check_sample
    from host.net.records import RunConfig, RunRecord
    from host.net.reference import Reference
    from host.net.summary import RunTally, summarize_run

    ref = Reference(dep)
    recs, tally = [], RunTally(dep)
    for late in (False, True, True):
        rec, sensors = _reference_record(dep, late)
        chk = check_sample(dep, ref, rec, sensors)
        assert set(chk.nodes.values()) == {"identical"} and chk.missing_links == []
        assert chk.unused_links == (["iot->fog"] if late else [])
        recs.append(rec)
        tally.add(rec, chk)
    s = summarize_run(dep, {}, RunRecord(RunConfig(), records=recs), tally)
    sm = s["samples"]
    assert sm["degraded_answers"] == {} and sm["complete_answers"] == sm["answered"] == 3
    assert sm["unused_skip_late"] == 2
    from host.net.harness_report import build_report
    md = build_report(dep, {"build": "b", "samples": 3, "seed": 0, "window": 3, "deadline_ms": 1, "boards": {},
                            "runs": [s]})
    assert "Samples lost and why: none." in md
    assert "3 answered = 3 with every input they used + 0 without some input (2 of the complete ones" in md


def test_stats_ledger_sums_the_boots():
    """A reboot restarts a board's counters: the run's totals are the sum over its boots."""
    from host.net import protocol as P
    from host.net.board_stats import StatsLedger

    led = StatsLedger()
    led.begin({"edge": P.Stats(rx_frames=100, samples=50, cycles_lo=5000, cycles_max=90)})
    led.seen("edge", P.Stats(rx_frames=112, samples=56, cycles_lo=5600, cycles_max=95))
    led.rebooted("edge")                                          # boot HELLO
    led.seen("edge", P.Stats(rx_frames=3, samples=0))
    led.seen("edge", P.Stats(rx_frames=20, samples=8, cycles_lo=800, cycles_max=99))
    led.seen("edge", P.Stats(rx_frames=4, samples=1, cycles_lo=100, cycles_max=80))   # rebooted, HELLO unseen
    assert led.reboots["edge"] == 2 and len(led.segments("edge")) == 3
    d = led.delta("edge")
    assert d["rx_frames"] == 12 + 20 + 4 and d["samples"] == 6 + 8 + 1
    assert led.cycles("edge") == {"mean": (600 + 800 + 100) / 15, "max": 99, "samples": 15, "source": "STATS"}
    assert led.delta("fog") is None


class _FakeBoards:
    """What the router and Network.run use of :class:`host.net.transport.Boards`, without boards."""

    def __init__(self, dep) -> None:
        self.dep = dep
        self.state = {n: "alive" for n in dep.nodes}
        self.conn = {n: None for n in dep.nodes}
        self.sample_seq = 0
        self.listener = self.tally = None
        self.hello: dict = {}
        self.last_rx: dict = {}

    def reset_all(self):
        # a board reboots during the RESET at the start of the run (its event is timed from the run's start)
        self.listener.on_board_event("edge", "reset", "boot HELLO during the RESET")
        return []

    def request_stats(self, timeout: float = 2.0, names=None):
        return {}

    def pump(self, timeout: float) -> int:
        return 0

    def probe_silent(self, now: float) -> None: ...

    def poll_stats(self, now: float) -> None: ...

    def ctl(self, name, ftype) -> int:
        return 0


@needs_build
def test_event_during_the_reset_is_timed_from_the_run_start(dep):
    from host.net.records import RunConfig
    from host.net.router import Network

    net = Network(dep)
    net.boards = _FakeBoards(dep)
    run = net.run([], RunConfig())
    (e,) = run.events
    assert 0 <= e.t < 1.0 and e.sample is None and run.t_start <= run.t_stream


@needs_build
def test_short_result_is_a_bad_frame_not_a_crash(dep):
    """A RESULT whose payload is shorter than its 4-byte cycle count: counted as a bad frame of the board that
    sent it (LENGTH), the sample not answered; a RESULT from a node that is not the final one is stray."""
    from host.net import protocol as P
    from host.net.faults import Faults
    from host.net.records import RunConfig, RunRecord, SampleIn
    from host.net.router import Router

    boards = _FakeBoards(dep)
    run = RunRecord(RunConfig())
    router = Router(dep, boards, run, Faults([]))
    x, y = dep.load_test_set()
    router.inject(0, SampleIn(0, int(y[0]), {s: v[0] for s, v in dep.sensor_inputs(x[:1]).items()}))
    seq = run.records[0].seq

    class Conn:
        def __init__(self, name):
            self.node = dep.nodes[name]

    for payload in (b"", b"\x01\x02\x03"):
        f = P.Frame(P.FrameType.RESULT, dep.nodes["cloud"].id, P.NODE_HOST, P.LINK_NONE, seq, payload)
        router.on_sample_frame(Conn("cloud"), f, f.encode()[:-1])
    assert run.host_drops["cloud"] == {"LENGTH": 2} and run.records[0].outcome is None
    f = P.Frame(P.FrameType.RESULT, dep.nodes["fog"].id, P.NODE_HOST, P.LINK_NONE, seq, bytes(14))
    router.on_sample_frame(Conn("fog"), f, f.encode()[:-1])
    assert run.stray_frames == 1 and run.records[0].outcome is None
    good = P.Frame(P.FrameType.RESULT, dep.nodes["cloud"].id, P.NODE_HOST, P.LINK_NONE, seq,
                   P.build_sample_payload(1234, bytes(10)))
    router.on_sample_frame(Conn("cloud"), good, good.encode()[:-1])
    assert run.records[0].outcome == "answered" and run.records[0].cycles == {"cloud": 1234}


@needs_build
def test_a_finished_sample_is_checked_and_let_go_once_settled(dep):
    """A long run keeps no sample's tensors: a finished sample is checked (and folded into the run's tally) once
    SETTLE_AFTER newer ones were sent, and only its SettledSample stays; a frame of it after that is stray.
    The end of the run settles the rest, in order."""
    from host.net import protocol as P
    from host.net.faults import Faults
    from host.net.records import RunConfig, RunRecord, SampleIn, SampleRecord, SettledSample
    from host.net.router import SETTLE_AFTER, Router

    checked: list[SampleRecord] = []

    def settle(rec: SampleRecord) -> SettledSample:
        assert rec.outputs == {"cloud->host": bytes(10)} or rec.k > 0   # checked with its tensors
        checked.append(rec)
        return rec.settled(["edge->fog"])

    boards = _FakeBoards(dep)
    run = RunRecord(RunConfig())
    router = Router(dep, boards, run, Faults([]), settle)
    x, y = dep.load_test_set()
    item = SampleIn(0, int(y[0]), {s: v[0] for s, v in dep.sensor_inputs(x[:1]).items()})

    class Conn:
        node = dep.nodes["cloud"]

    def result(seq: int) -> P.Frame:
        return P.Frame(P.FrameType.RESULT, dep.nodes["cloud"].id, P.NODE_HOST, P.LINK_NONE, seq,
                       P.build_sample_payload(1234, bytes(10)))

    router.inject(0, item)
    first = run.records[0]
    router.on_sample_frame(Conn(), result(first.seq), result(first.seq).encode()[:-1])
    for k in range(1, SETTLE_AFTER):
        router.inject(k, item)
    router.settle_old()
    assert run.records[0] is first and not checked          # not yet: a frame of it could still come
    router.inject(SETTLE_AFTER, item)
    router.settle_old()
    assert checked == [first]
    kept = run.records[0]
    assert isinstance(kept, SettledSample) and not hasattr(kept, "outputs")
    assert (kept.outcome, kept.missing_links, len(kept.outputs_digest)) == ("answered", ("edge->fog",), 8)
    assert isinstance(run.records[1], SampleRecord)         # not finished: kept whole
    router.on_sample_frame(Conn(), result(first.seq), result(first.seq).encode()[:-1])
    assert run.stray_frames == 1
    router.settle_all()
    assert [r.k for r in checked] == list(range(SETTLE_AFTER + 1))
    assert all(isinstance(r, SettledSample) for r in run.records)


# --------------------------------------------------------------------------------------- uploaded boards
def _upload(build: Path, dep, name: str, port: int | None = None):
    """``pio run -e <env> -t upload`` for one emulated node, as PlatformIO's upload action does it."""
    from codegen.emulator import free_port
    from host.deploy.pio_upload import upload

    env = dep.info.nodes[name].platformio.env
    node = dep.nodes[name]
    return upload(node.board, node.elf, port or free_port(), build / "pio" / "qemu" / f"{env}.pid", node=name,
                  env=env, build_dir=build)


@needs_boards
def test_uploaded_boards_are_used_and_left_running(build, tmp_path):
    """Boards that ``pio run -t upload`` started are attached, not launched again, and still run afterwards;
    one uploaded again on a new port in the middle of a run is picked up there; one the harness kills and
    restarts (--kill) is restarted as an upload, and left running too."""
    from codegen.emulator import pidfile_running, stop_all
    from host.deploy.pio_upload import stop_build
    from host.deploy.uploads import read_uploads
    from host.net.harness import run_harness
    from host.net.reference import load_deployment

    other = copy_build(build, tmp_path / "uploaded")
    dep = load_deployment(other)
    try:
        for name in dep.nodes:
            _upload(other, dep, name)
        before, seen, picked = qemus(), [], []

        def reupload(net):
            seen.append(qemus())   # the harness launched no QEMU of its own
            t0 = __import__("time").monotonic()
            new = _upload(other, dep, "edge")   # again, on another port
            assert new.url != net.boards.urls["edge"]
            picked.append((new.url, net.boards.wait_back("edge", t0, 20.0)))

        res = run_harness(other, samples=16, hooks={5: [reupload]}, progress=False, write=False)
        (s,) = res.report["runs"]
        assert {b["attached"] for b in res.report["boards"].values()} == {"uploaded"}
        assert seen == [before]
        (url, back), = picked
        assert back, s["events"]
        assert any(e["kind"] == "back" and url in e["detail"] for e in s["events"]), s["events"]
        assert s["samples"]["answered"] == 16 and all("edge" not in r.dead for r in res.runs[0].records[6:])
        ups = read_uploads(other)
        assert all(pidfile_running(u.pidfile) for u in ups.values())   # left running
        # --kill on an uploaded board: restarted as pio run -t upload does, and left running
        res = run_harness(other, samples=10, kills=[("fog", 3, 6)], progress=False, write=False)
        (s,) = res.report["runs"]
        assert s["samples"]["answered"] == 10 and s["nodes"]["fog"]["reboots"] == 1
        assert all(pidfile_running(u.pidfile) for u in read_uploads(other).values())
    finally:
        stop_build(other)
        stop_all()


def test_default_build_is_the_one_pio_run_uploads(tmp_path):
    """Without --build the harness streams through build/current (the latest host.build, the one `pio run`
    builds and uploads), even when another build under build/ is newer."""
    from host.net.plan import default_build

    root = tmp_path / "build"
    for name in ("older", "newer"):
        (root / name).mkdir(parents=True)
        (root / name / "platformio.ini").write_text("; a build\n")
    (root / "current").symlink_to("older")
    assert default_build(root) == (root / "older").resolve()
    (root / "current").unlink()
    assert default_build(root) == root / "demo"  # no complete build (no manifest with firmware) and no current
