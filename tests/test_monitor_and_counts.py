"""What a board's counts are (cycles on silicon, instructions under QEMU -icount), each node's baud, and the
``pio device monitor`` filter that shows a node's frames as lines.

* host/net/cycle_counts.py: the meaning of the counts from the HELLO's counter and the board's kind, and the
  milliseconds that honestly follow (silicon time from cycles; under emulation only a lower bound).
* host/net/frame_text.py + monitor/filter_resilinet.py: frames made by the one codec, fed in odd chunks, become
  the expected lines; end to end, ``pio run -t upload`` starts a node in QEMU and ``pio device monitor`` (in a
  pty: it insists on a terminal) shows its HELLO and STATS as lines, at the board's baud.
* The harness opens each node's port at its board's baud unless ``--baud`` says otherwise.
"""
from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from boards import load_board
from codegen.emulator import qemu_available
from host.deploy import pio_core, pio_ini
from host.deploy.firmware import toolchain_available, write_node_config
from host.deploy.pio_ini import IniNode
from host.deploy.pio_upload import stop_build
from host.deploy.uploads import read_uploads
from host.net import protocol as P
from host.net.cycle_counts import LABEL_DWT, LABEL_INSTRUCTIONS, LABEL_SYSTICK, compute_figures, count_meaning
from host.net.frame_text import FrameLines, request_bytes

from firmware_support import PLAIN, TESTMODEL_DIR

REPO = Path(__file__).resolve().parents[1]
PIO = Path(sys.executable).parent / "pio"
C = P.CycleCounter
HELLO = P.Hello(bytes.fromhex("0123456789abcdef"), (0, 1, 0), 51_234, 10_240, 168_000_000, C.SYSTICK)


# ---- what the counts are --------------------------------------------------------------------------------------
def test_emulated_systick_counts_are_instructions_and_their_ms_only_a_lower_bound() -> None:
    """The issue's case: the fashion iot node's 50,328 SysTick counts at 168 MHz under -icount shift=0 are
    50,328 × 1e9 / 168e6 = 299,571 instructions, not cycles; 0.30 ms was a 0.168× figure."""
    m = count_meaning(C.SYSTICK, emulated=True, cpu_hz=168_000_000)
    assert (m.unit, m.label, m.silicon_cycles) == ("instructions", LABEL_INSTRUCTIONS, False)
    f = compute_figures({"mean": 50_328, "max": 50_400, "source": "RESULT", "p50": 50_328, "p95": 50_400}, m,
                        168_000_000)
    assert round(f.mean) == 299_571 and round(f.max) == 300_000 and round(f.p50) == 299_571
    assert f.counts_mean == 50_328 and f.ms_mean is None and f.cycle_estimate is None
    assert f.ms_lower_bound == pytest.approx(299_571.4 / 168e6 * 1e3)   # 1.78 ms at CPI 1, not 0.30
    assert "lower bound" in f.ms_basis
    # once a cycle model gives an estimate, the milliseconds come from it (the instructions stay as counted)
    g = compute_figures({"mean": 50_328, "max": 50_400, "source": "STATS"}, m, 168_000_000, estimate=420_000)
    assert g.cycle_estimate == 420_000 and g.ms_mean == pytest.approx(2.5) and round(g.mean) == 299_571
    # mps2-an386 at 25 MHz: one count = 40 instructions
    assert count_meaning(C.SYSTICK, True, 25_000_000).per_count == 40


def test_silicon_counts_are_cycles_and_their_ms_real_time() -> None:
    for counter, label in ((C.DWT, LABEL_DWT), (C.SYSTICK, LABEL_SYSTICK)):
        m = count_meaning(counter, emulated=False, cpu_hz=180_000_000)
        assert (m.unit, m.label, m.per_count, m.silicon_cycles) == ("cycles", label, 1.0, True)
        f = compute_figures({"mean": 900_000, "max": 910_000, "samples": 40, "source": "STATS"}, m, 180_000_000)
        assert f.mean == 900_000 and f.ms_mean == pytest.approx(5.0) and f.ms_lower_bound is None
    # an older firmware's HELLO did not say: a real board's counts were core cycles all the same
    assert count_meaning(C.UNKNOWN, False, 80_000_000).unit == "cycles"
    assert count_meaning(C.UNKNOWN, True, 25_000_000).unit == "instructions"


# ---- frames as lines --------------------------------------------------------------------------------------------
def _frame(t: P.FrameType, payload: bytes = b"", src: int = 2, dst: int = P.NODE_HOST, link: int = P.LINK_NONE,
           seq: int = 0) -> bytes:
    return P.Frame(t, src, dst, link, seq, payload).encode()


def test_frame_lines_one_readable_line_per_frame() -> None:
    st = P.Stats(rx_frames=10, tx_frames=9, rx_crc=2, samples=4, cycles_lo=4 * 50_328, cycles_max=50_400)
    stream = (_frame(P.FrameType.RESULT, P.build_sample_payload(50_328, bytes([1, 255])), seq=6)  # before HELLO
              + _frame(P.FrameType.HELLO, HELLO.pack())
              + _frame(P.FrameType.STATS, st.pack(), seq=1)
              + _frame(P.FrameType.ERROR, P.build_error(3, "invoke failed: seq, code 5 -1"))
              + _frame(P.FrameType.RESULT, P.build_sample_payload(50_328, bytes([1, 255, 3])), seq=7)
              + _frame(P.FrameType.DATA, bytes(100), link=5, seq=7)
              + _frame(P.FrameType.LINK_DOWN, P.build_link_down(P.LinkDownReason.UPSTREAM), dst=3, link=5, seq=7)
              + b"\x05\x01\x02\x03\x00")                                            # a frame cut short
    lines = FrameLines(emulated=True)
    got = [line for k in range(0, len(stream), 7) for line in lines.feed(stream[k:k + 7])]
    assert got == [
        "node 2 RESULT seq 6: 50,328 counts (HELLO not seen: unit unknown), output [1, -1]",
        "node 2 HELLO: model 0123456789abcdef, firmware 0.1.0, flash 51,234 B, arena 10,240 B, clock 168 MHz, "
        "cycle counter SysTick (counts are instructions (QEMU -icount))",
        "node 2 STATS: rx 10 frames, tx 9, drops: crc 2, UART overruns 0, input timeouts 0, samples 4, per sample: "
        "mean 299,571 instructions (QEMU -icount), max 300,000 instructions (QEMU -icount)",
        "node 2 ERROR 3: invoke failed: seq, code 5 -1",
        "node 2 RESULT seq 7: 299,571 instructions (QEMU -icount), output [1, -1, 3]",
        "DATA link 5 seq 7 (low byte): 100 B tensor",
        "node 2 → node 3 LINK_DOWN link 5 seq 7: UPSTREAM",
        "(frame dropped: truncated)"]
    real = FrameLines(emulated=False)
    dwt = P.Hello(HELLO.model_hash, (0, 1, 0), 1, 2, 180_000_000, C.DWT)
    real.feed(_frame(P.FrameType.HELLO, dwt.pack()))
    assert real.feed(_frame(P.FrameType.RESULT, P.build_sample_payload(900_000, b"\x01"))) == [
        "node 2 RESULT seq 0: 900,000 cycles (DWT), output [1]"]


def test_monitor_requests_are_frames_of_the_one_codec_doubled_for_a_mux() -> None:
    plain = request_bytes("HELLO")
    assert P.decode_frame(plain) == P.Frame(P.FrameType.HELLO, P.NODE_HOST, P.NODE_BROADCAST)
    assert request_bytes("STATS", double_nul=True) == request_bytes("STATS").replace(b"\x00", b"\x00\x00")


def test_the_filter_class_decodes_what_the_port_hands_it(tmp_path: Path, monkeypatch) -> None:
    """PlatformIO loads monitor/filter_resilinet.py by path and hands rx() the port's bytes as latin-1 text."""
    pytest.importorskip("platformio")
    from platformio.device.monitor.filters.base import load_monitor_filter
    from serial.tools import miniterm

    (tmp_path / "platformio.ini").write_text("[env:n]\n" + "\n".join(pio_ini.monitor_lines(load_board("qemu_f405")))
                                             + "\ncustom_resilinet_board = qemu_f405\n")
    monkeypatch.chdir(tmp_path)
    load_monitor_filter(str(pio_ini.MONITOR_DIR / "filter_resilinet.py"), {"environment": "n"})
    f = miniterm.TRANSFORMATIONS[pio_ini.MONITOR_FILTER]
    wire = _frame(P.FrameType.HELLO, HELLO.pack()) + _frame(P.FrameType.STATS, P.Stats(samples=0).pack())
    text = "".join(f.rx(wire[k:k + 5].decode("latin-1")) for k in range(0, len(wire), 5))
    assert text.splitlines()[0].endswith("cycle counter SysTick (counts are instructions (QEMU -icount))")
    assert text.splitlines()[1].startswith("node 2 STATS: rx 0 frames") and len(text.splitlines()) == 2
    assert f.tx("hxs") == (request_bytes("HELLO") + request_bytes("STATS")).decode("latin-1")


def _node_files(build: Path, name: str, board: str = "qemu_f405") -> IniNode:
    """One node of a build as host.build leaves it (the test model, node id PLAIN's)."""
    d = build / "nodes" / name
    d.mkdir(parents=True)
    for f in ("testmodel.c", "testmodel.h"):
        shutil.copy(TESTMODEL_DIR / f, d / f)
    write_node_config(PLAIN, d / "fw" / "node_config.h")
    return IniNode(name, "test", board, PLAIN.node_id, f"nodes/{name}/fw/node_config.h",
                   f"nodes/{name}/fw/{board}/node.elf", f"nodes/{name}/testmodel.c")


# ---- baud -------------------------------------------------------------------------------------------------------
def test_pio_ini_monitors_every_node_at_its_board_baud_with_the_filter(tmp_path: Path) -> None:
    nodes = [_node_files(tmp_path, n, b) for n, b in [("iot", "qemu_f405"), ("cloud", "nucleo_f446re"),
                                                       ("fog", "nucleo_h743zi")]]
    ini = pio_ini.render_platformio_ini("demo", nodes, tmp_path).text
    sections = ini.split("\n[env:")[1:]
    assert len(sections) == 3
    for node, sec in zip(nodes, sections):
        lines = sec.splitlines()
        assert f"monitor_speed = {load_board(node.board).uart.baud}" in lines, sec
        assert "monitor_filters = resilinet" in lines and "monitor_encoding = latin-1" in lines
    assert f"monitor_dir = {pio_ini.MONITOR_DIR.as_posix()}" in ini.splitlines()
    assert (pio_ini.MONITOR_DIR / f"filter_{pio_ini.MONITOR_FILTER}.py").is_file()


def test_harness_opens_each_port_at_its_board_baud_unless_baud_is_given() -> None:
    from host.net.harness import build_parser
    from host.net.transport import Boards

    boards = ["qemu_f405", "nucleo_f446re", "nucleo_l476rg", "nucleo_h743zi"]
    dep = SimpleNamespace(nodes={f"n{i}": SimpleNamespace(board=b) for i, b in enumerate(boards)})
    launcher = SimpleNamespace(urls={}, attached={})
    assert Boards(dep, launcher).bauds == {f"n{i}": load_board(b).uart.baud for i, b in enumerate(boards)}
    assert set(Boards(dep, launcher, baud=460_800).bauds.values()) == {460_800}
    assert build_parser().parse_args([]).baud is None   # the CLI's default: each board's own


# ---- pio device monitor, end to end -------------------------------------------------------------------------------
def _read_until(fd: int, want: list[str], timeout: float) -> str:
    out, end = b"", time.monotonic() + timeout
    while time.monotonic() < end and not all(w in out.decode("utf-8", "replace") for w in want):
        if select.select([fd], [], [], 0.2)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:   # the monitor exited: its pty is gone
                break
    return out.decode("utf-8", "replace")


@pytest.mark.skipif(not (PIO.exists() and toolchain_available() and qemu_available()),
                    reason="needs PlatformIO, arm-none-eabi-gcc and QEMU (scripts/setup.sh)")
def test_pio_device_monitor_shows_an_uploaded_nodes_frames_as_lines(tmp_path: Path) -> None:
    """``pio run -t upload`` then ``pio device monitor`` as a user types them: the filter asks the node for HELLO and
    STATS (0x00 doubled for the uploaded board's mux) and prints them as lines; it asks again after the node's boot
    HELLO (the monitor's connection starts the emulated board, whose UART drops what comes before it is enabled:
    the first greeting can be lost); a key asks again."""
    build = tmp_path / "build"
    pio_ini.write_ini("demo", [_node_files(build, "iot")], build)
    env = pio_core.offline_env()
    try:
        res = subprocess.run([str(PIO), "run", "-d", str(build), "-t", "upload"], env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
        uploaded = read_uploads(build)["iot"]
        assert uploaded.rx_buffer
        port = uploaded.port
        master, slave = pty.openpty()
        mon = subprocess.Popen([str(PIO), "device", "monitor", "-d", str(build), "-e", "demo_iot", "--no-reconnect"],
                               stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        try:
            text = _read_until(master, ["STATS: rx", "HELLO: model"], 60)
            os.write(master, b"s")   # a key: STATS again
            text += _read_until(master, ["STATS: rx"], 20)
        finally:
            os.write(master, b"\x03")   # Ctrl-C: the monitor's exit key
            try:
                mon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                mon.kill()
                mon.wait()
            os.close(master)
    finally:
        stop_build(build)
    # monitor_port and monitor_speed of the env: the uploaded board's socket, the board's baud
    assert f"Terminal on socket://127.0.0.1:{port} | {load_board('qemu_f405').uart.baud} " in text, text
    hello = next(line for line in text.splitlines() if "HELLO: model" in line)
    assert hello.strip().startswith(f"node {PLAIN.node_id} HELLO: model {PLAIN.model_hash.hex()}"), hello
    assert "cycle counter SysTick (counts are instructions (QEMU -icount))" in hello, hello
    rx = [int(line.split("STATS: rx ")[1].split()[0]) for line in text.splitlines() if "STATS: rx " in line]
    assert len(rx) >= 2 and rx[-1] > rx[0] > 0, text   # the greeting's and the key's requests reached the node
