"""UART throughput of one emulated board (QEMU netduinoplus2), and what it costs the host.

::

    python bench/uart_throughput.py --elf build/X/nodes/edge/fw/qemu_f405/node.elf [--payload 2048]
        [--inflight 2] [--seconds 5] [--rx-only] [--variant V]...

Default: PING frames out, PONG frames back (the node echoes the payload), ``--inflight`` at once, so
the board receives and sends at the same time, as a node in the middle of a chain does.  ``--rx-only``:
PONG frames, which the node ignores, then one PING: the receive path alone.  This measures the UART
path (QEMU's USART model, chardev, host socket), not inference.  Printed: KB/s each way, round trip,
host CPU of the QEMU process per byte (user + system, all threads) and its thread switches per byte.

Variants (any combination of the words): ``tcp`` (as ``codegen.emulator``: ``-serial tcp:...,nodelay=on``)
or ``unix`` (a Unix socket); ``mux`` (a mux chardev in front of the UART: ``codegen.emulator`` ``rx_buffer``;
the host doubles 0x00); ``noicount`` (no ``-icount shift=0``); ``pin`` (QEMU on one core).
Measured on 2 cores (docs/harness.md): receive ≈ 23 µs/byte and 4 switches/byte with ``tcp``,
≈ 9 µs/byte and 0.6 with ``tcp-mux``; sending ≈ 3 µs/byte once the driver stopped polling TXE.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host.net import protocol as P  # noqa: E402
from codegen.emulator import free_port, is_listening  # noqa: E402


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _switches(pid: int) -> int:
    """Context switches of all threads of a process so far."""
    n = 0
    for t in Path(f"/proc/{pid}/task").iterdir():
        for line in (t / "status").read_text().splitlines():
            if line.endswith("ctxt_switches:") or "ctxt_switches:" in line:
                n += int(line.split()[1])
    return n


def start(elf: Path, variant: str, workdir: Path) -> tuple[subprocess.Popen, socket.socket]:
    unix = variant.startswith("unix")
    mux = "mux" in variant
    icount = "noicount" not in variant
    if unix:
        path = workdir / "uart.sock"
        serial = f"unix:{path},server=on,wait=on"
    else:
        port = free_port()
        serial = f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"
    cmd = ["qemu-system-arm", "-M", "netduinoplus2", "-nographic", "-monitor", "none", "-kernel", str(elf)]
    if mux and unix:
        cmd += ["-chardev", f"socket,id=uart,path={path},server=on,wait=on,mux=on",
                "-echr", "0", "-serial", "null", "-serial", "chardev:uart"]
    elif mux:
        # a mux chardev buffers 32 received bytes and hands the next one to the UART model as soon as
        # the guest reads DR (no round trip through QEMU's main loop); 0x00 is its escape character,
        # so the host doubles every 0x00 it sends
        cmd += ["-chardev", f"socket,id=uart,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on,mux=on",
                "-echr", "0", "-serial", "null", "-serial", "chardev:uart"]
    else:
        cmd += ["-serial", "null", "-serial", serial]
    if icount:
        cmd += ["-icount", "shift=0"]
    if "pin" in variant:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if unix:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(path))
            else:
                if not is_listening(port):
                    raise OSError
                s = socket.create_connection(("127.0.0.1", port))
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return proc, s
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("QEMU did not start")


def _wait_hello(s: socket.socket, buf: bytearray) -> None:
    """Read (and drop) the board's boot HELLO frame, or give up after 5 s."""
    t0 = time.monotonic()
    while b"\x00" not in buf[1:] and time.monotonic() - t0 < 5:
        buf += s.recv(4096)
    buf.clear()


def _receive_only(proc: subprocess.Popen, s: socket.socket, esc: Callable[[bytes], bytes], buf: bytearray,
                  payload: bytes, seconds: float, variant: str) -> None:
    """PONG frames (which the node ignores), then one PING: time until its PONG is the receive path alone."""
    pong = P.Frame(P.FrameType.PONG, 0, 15, P.LINK_NONE, 0, payload).encode()
    n = max(1, int(seconds * 20000 / len(pong)))
    t_start = time.monotonic()
    cpu0, sw0 = _cpu_s(proc.pid), _switches(proc.pid)
    s.sendall(esc(pong * n + P.Frame(P.FrameType.PING, 0, 15, P.LINK_NONE, 1, b"x").encode()))
    while b"\x00" not in buf[1:]:
        buf += s.recv(4096)
    dt = time.monotonic() - t_start
    cpu = _cpu_s(proc.pid) - cpu0
    sw = _switches(proc.pid) - sw0
    print(f"{variant:>14}: receive only, {n} x {len(pong)} B: {n * len(pong) / dt / 1000:.1f} KB/s, "
          f"QEMU CPU {1e6 * cpu / (n * len(pong)):.1f} us/byte, {sw / (n * len(pong)):.1f} switches/byte ({100 * cpu / dt:.0f} %); "
          f"load {os.getloadavg()[0]:.2f}", flush=True)


def _ping_pong(proc: subprocess.Popen, s: socket.socket, esc: Callable[[bytes], bytes], buf: bytearray,
               payload: bytes, seconds: float, inflight: int, variant: str) -> None:
    """PING frames out, ``inflight`` at once, PONGs back: both directions of the UART at the same time."""
    frames = [P.Frame(P.FrameType.PING, 0, 15, P.LINK_NONE, i, payload).encode() for i in range(256)]
    sent = recv_frames = 0
    rx_bytes = tx_bytes = 0
    rtts: list[float] = []
    sent_at: dict[int, float] = {}
    t_start = time.monotonic()
    cpu0, sw0 = _cpu_s(proc.pid), _switches(proc.pid)
    end = t_start + seconds
    while True:
        now = time.monotonic()
        while sent - recv_frames < inflight and now < end:
            f = frames[sent & 0xFF]
            s.sendall(esc(f))
            sent_at[sent & 0xFF] = time.monotonic()
            tx_bytes += len(f)
            sent += 1
        if recv_frames >= sent:
            break
        data = s.recv(1 << 16)
        if not data:
            break
        rx_bytes += len(data)
        buf += data
        while True:
            i = buf.find(b"\x00")
            if i < 0:
                break
            body = bytes(buf[:i])
            del buf[: i + 1]
            if not body:
                continue
            fr = P.decode_frame(body)
            if fr.type == P.FrameType.PONG:
                rtts.append(time.monotonic() - sent_at[fr.seq])
                recv_frames += 1
    dt = time.monotonic() - t_start
    cpu = _cpu_s(proc.pid) - cpu0
    sw = _switches(proc.pid) - sw0
    rtts.sort()
    print(f"{variant:>14}: payload {len(payload)} B x {recv_frames} frames, {inflight} in flight: "
          f"host->board {tx_bytes / dt / 1000:.1f} KB/s, board->host {rx_bytes / dt / 1000:.1f} KB/s, "
          f"rtt p50 {1000 * rtts[len(rtts) // 2]:.1f} ms, QEMU CPU {1e6 * cpu / (tx_bytes + rx_bytes):.1f} us/byte, "
          f"{sw / (tx_bytes + rx_bytes):.1f} switches/byte "
          f"({100 * cpu / dt:.0f} %); load {os.getloadavg()[0]:.2f}", flush=True)


def _escape(variant: str) -> Callable[[bytes], bytes]:
    """What the host does to the bytes it sends: a mux chardev needs its escape character 0x00 doubled."""
    if "mux" in variant:
        return lambda b: b.replace(b"\x00", b"\x00\x00")
    return lambda b: b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--elf", required=True, type=Path)
    ap.add_argument("--payload", type=int, default=2048)
    ap.add_argument("--inflight", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--rx-only", action="store_true",
                    help="send PONG frames (the node ignores them) and one PING at the end: the receive path alone")
    args = ap.parse_args()
    payload = bytes((i * 7 + 1) & 0xFF or 1 for i in range(args.payload))
    for variant in args.variant or ["tcp"]:
        with tempfile.TemporaryDirectory() as tmp:
            proc, s = start(args.elf, variant, Path(tmp))
            try:
                buf = bytearray()
                _wait_hello(s, buf)
                if args.rx_only:
                    _receive_only(proc, s, _escape(variant), buf, payload, args.seconds, variant)
                else:
                    _ping_pong(proc, s, _escape(variant), buf, payload, args.seconds, args.inflight, variant)
            finally:
                s.close()
                proc.terminate()
                proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
