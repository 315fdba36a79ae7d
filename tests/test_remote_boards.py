"""Boards on another machine: the demo over RFC 2217 through Debian's ser2net (installed by scripts/setup.sh).

``python -m host.net.export`` boots every node's emulated board with its UART on a pseudo-terminal and serves
the ptys with ser2net on 127.0.0.1; the harness then reaches every node only through ``--port
NODE=rfc2217://127.0.0.1:PORT``. Its answers must be those of the direct run (emulated boards on TCP sockets),
byte for byte, with and without a dropped node."""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codegen.emulator import qemu_available
from harness_support import qemus, quick_build
from host.deploy.firmware import toolchain_available

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (toolchain_available() and qemu_available()),
                                reason="arm-none-eabi-gcc or qemu-system-arm not installed (apt-get install "
                                       "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi "
                                       "qemu-system-arm)")


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    return quick_build(tmp_path_factory, "fashion", 1500, 300, 100)   # the build of tests/test_harness.py


def _read_until_harness_line(proc: subprocess.Popen, timeout: float) -> list[str]:
    """The export CLI's lines up to its harness command (it prints that once everything is served)."""
    lines: list[str] = []
    buf = b""
    end = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
        *done, buf = buf.split(b"\n")
        lines += [d.decode() for d in done]
        if any(line.startswith("python -m host.harness") for line in lines):
            return lines
    raise AssertionError(f"export did not come up: {lines} {buf!r} {proc.stderr.read().decode() if proc.poll() is not None else ''}")


@pytest.fixture(scope="module")
def exported(build, tmp_path_factory):
    """Every node's board served by ``python -m host.net.export`` (ser2net on 127.0.0.1): node -> URL. The IoT
    node's board is given to it as a serial device (as a real board would be): an emulated board on a pty that
    ``python -m codegen.emulator start --uart pty`` left running; the export emulates the others itself."""
    from codegen.emulator import stop_pidfile
    from host.net.reference import load_deployment

    iot = load_deployment(build).nodes["iot"]
    pidfile = tmp_path_factory.mktemp("remote") / "iot.pid"
    started = subprocess.run([sys.executable, "-m", "codegen.emulator", "start", "--board", iot.board, "--elf",
                              str(iot.elf), "--uart", "pty", "--pidfile", str(pidfile)], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    pty = started.stdout.split()[0]
    proc = None
    try:
        assert pty.startswith("/dev/pts/")
        proc = subprocess.Popen([sys.executable, "-m", "host.net.export", "--build", str(build), f"iot={pty}"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = _read_until_harness_line(proc, 60)
        # "<node>: <device> -> <url>" per node
        assert any(line.startswith(f"iot: {pty} -> rfc2217://127.0.0.1:") for line in lines), lines
        yield {line.split(": ", 1)[0]: line.split(" -> ", 1)[1] for line in lines if " -> " in line}
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(20)
        stop_pidfile(pidfile)
    assert rc == 0, proc.stderr.read().decode()


@pytest.fixture(autouse=True)
def _no_leftover_boards():
    before = qemus()
    yield
    from codegen.emulator import stop_all
    stop_all()
    assert qemus() <= before, "a test left QEMU running"


def _run(build: Path, **kw):
    from host.net.harness import run_harness

    kw.setdefault("samples", 16)
    return run_harness(build, progress=False, write=False, **kw)


def _same_answers(remote, direct) -> None:
    """Every sample answered alike: same outcome and every board's tensors byte for byte."""
    (r,), (d,) = remote.runs, direct.runs
    assert [s.index for s in r.records] == [s.index for s in d.records]
    for a, b in zip(r.records, d.records):
        assert (a.outcome, a.reason) == (b.outcome, b.reason), a.index
        assert a.outputs_digest == b.outputs_digest is not None, a.index   # a hash of every tensor sent
    (rs,), (ds,) = remote.report["runs"], direct.report["runs"]
    assert rs["samples"]["accounted"] and rs["mismatches"] == []
    assert rs["bit_exact"]["identical"] == rs["bit_exact"]["compared"] == ds["bit_exact"]["compared"] > 0
    assert rs["accuracy"]["boards"] == ds["accuracy"]["boards"] == rs["accuracy"]["int8_host"]


def test_demo_over_rfc2217_through_ser2net(build, exported):
    """The whole demo with every node on rfc2217://: all samples answered, the direct run's answers exactly."""
    assert set(exported) == {"iot", "edge", "fog", "cloud"}
    assert all(u.startswith("rfc2217://127.0.0.1:") for u in exported.values())
    remote = _run(build, ports=exported)
    boards = remote.report["boards"]
    assert {n: (b["attached"], b["url"]) for n, b in boards.items()} == \
           {n: ("port", u) for n, u in exported.items()}
    (s,) = remote.report["runs"]
    assert s["samples"]["sent"] == s["samples"]["answered"] == s["samples"]["complete_answers"] == 16
    _same_answers(remote, _run(build))


def test_dropped_node_over_rfc2217(build, exported):
    """--drop edge over RFC 2217: the fog falls back to the IoT skip, as in the direct run."""
    remote = _run(build, ports=exported, dead=["edge"], samples=10)
    (s,) = remote.report["runs"]
    assert s["samples"]["answered"] == 10 and s["samples"]["degraded_answers"] == {"link_cut": 10}
    assert s["nodes"]["fog"]["mux"] == {"fallback": 10}
    _same_answers(remote, _run(build, dead=["edge"], samples=10))


# ------------------------------------------------------------------------------------------------ errors
def test_ser2net_errors_are_one_line(tmp_path, monkeypatch):
    """A taken port, a missing device and a missing ser2net each give one Ser2netError saying what to do."""
    from host.net import ser2net as S

    dev = str(tmp_path / "ttyFAKE")
    Path(dev).touch()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with pytest.raises(S.Ser2netError, match=f"TCP port {taken} on 127.0.0.1 is taken"):
            S.Ser2net([S.Export("iot", dev, taken)], workdir=tmp_path).start()
    with pytest.raises(S.Ser2netError, match="no serial device /nonexistent/ttyACM9"):
        S.Ser2net([S.Export("iot", "/nonexistent/ttyACM9", 4001)], workdir=tmp_path).start()
    with monkeypatch.context() as m:   # no ser2net anywhere (restored before the fixtures' teardown runs pgrep)
        m.setenv("PATH", str(tmp_path))
        m.setattr(S, "SER2NET_DIRS", ())
        with pytest.raises(S.Ser2netError, match="install it: apt install ser2net"):
            S.Ser2net([S.Export("iot", dev, 4001)], workdir=tmp_path).start()


def test_export_cli_bad_input(build):
    """The export CLI: a node not in the build, a missing device -> one ``error:`` line, exit status 2."""
    for args, want in ((["nosuch=/dev/null"], "no node 'nosuch'"),
                       (["iot=/dev/does-not-exist"], "iot=/dev/does-not-exist: no such serial device")):
        res = subprocess.run([sys.executable, "-m", "host.net.export", "--build", str(build), *args], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and res.stdout == ""
        assert res.stderr.startswith("error: ") and want in res.stderr and res.stderr.count("\n") == 1


def _hello_frames(port, node_id: int, reads: int = 50) -> list:
    """Ask ``port`` for HELLO until a whole frame came back (a pty loses what was sent before it was opened)."""
    from host.net import protocol as P

    got = b""
    for _ in range(reads):
        port.write(P.Frame(P.FrameType.HELLO, P.NODE_HOST, P.NODE_BROADCAST, P.LINK_NONE, 0x101).encode())
        select.select([port], [], [], 0.2)
        got += port.read(256)
        if b"\x00" in got.lstrip(b"\x00"):
            break
    frames = []
    for body in got.split(b"\x00")[:-1]:   # whole frames only; the first may have lost its head
        if not body:
            continue   # idle fill between frames
        try:
            frames.append(P.decode_frame(body))
        except P.FrameError:
            continue
    return [f for f in frames if f.type == P.FrameType.HELLO and f.src == node_id]


def test_pty_board_through_ser2net_port(build, tmp_path):
    """One board on a pty answers HELLO there and through ser2net (a selectable rfc2217:// port); when ser2net
    goes, reading the port raises, as a closed socket does (the router marks the board silent)."""
    from codegen.emulator import EmulatedBoard
    from host.net.ports import open_port
    from host.net.pumped_port import PumpedPort
    from host.net.reference import load_deployment
    from host.net.ser2net import Export, Ser2net, config_yaml, export_url

    node = load_deployment(build).nodes["iot"]
    with EmulatedBoard(node.board, node.elf, uart="pty", workdir=tmp_path, name="iot") as b:
        assert b.pty_path is not None and b.url == b.pty_path and Path(b.pty_path).exists()
        assert _hello_frames(b.connect(read_timeout=0), node.id)
        b.disconnect()
        e = Export("iot", b.pty_path, 4001)
        assert f"connector: serialdev,{b.pty_path},115200n81,local" in config_yaml([e], "127.0.0.1")
        assert export_url(e, "127.0.0.1") == "rfc2217://127.0.0.1:4001?ign_set_control"
        s2n = Ser2net([Export("iot", b.pty_path, _free_port())], workdir=tmp_path / "s2n").start()
        try:
            port = open_port(s2n.urls["iot"], 115200)
            assert isinstance(port, PumpedPort)
            assert _hello_frames(port, node.id)
            s2n.stop()
            with pytest.raises(ConnectionError):
                for _ in range(50):
                    select.select([port], [], [], 0.2)
                    port.read(256)
            port.close()
        finally:
            s2n.close()
    assert export_url(Export("iot", "/dev/ttyACM0", 4001), "127.0.0.1") == "rfc2217://127.0.0.1:4001"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
