"""Measure the node firmware on the emulated boards (not a test; run it by hand):

    .venv/bin/python tests/firmware_bench.py [--json out.json]

Per board: image size, boot-to-HELLO time, UART throughput (PING/PONG echo of 2 KB
payloads, one at a time and 4 in flight), sample round trip, cycle counts (same sample
in two boots), idle CPU of the QEMU process.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_support import HOST, PLAIN, TESTMODEL_SOURCES, NodeClient, data, tensor  # noqa: E402
from host.net import protocol as p  # noqa: E402
from boards import load_board  # noqa: E402
from host.deploy.firmware import build_node, write_node_config  # noqa: E402
from codegen.emulator import EmulatedBoard  # noqa: E402


def cpu_seconds(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def bench(board: str, work: Path) -> dict:
    header = write_node_config(PLAIN, work / "cfg" / "node_config.h")
    image = build_node(board, header, TESTMODEL_SOURCES, work / board, node_name="plain")
    out: dict = {"board": board, "flash_bytes": image.flash_bytes, "ram_bytes": image.ram_bytes,
                 "sections": {k: v for k, v in image.sections.items() if not k.startswith((".debug", ".comment"))}}
    rng = np.random.default_rng(0)
    a, b = tensor(rng), tensor(rng)
    cycles = []
    with EmulatedBoard(board, image.elf) as qemu:
        for boot in range(2):
            if boot:
                qemu.restart()
            t0 = time.monotonic()
            c = NodeClient(qemu.connect(), PLAIN.node_id)
            c.wait_for(lambda f: f.type == p.FrameType.HELLO, 10)
            if not boot:
                out["boot_to_hello_s"] = round(time.monotonic() - t0, 4)
            before = c.stats()
            c.send(data(HOST, 2, 1, 1, a), data(HOST, 2, 2, 1, b))
            c.outputs(1, 2)
            cycles.append(c.stats(0x101).cycles - before.cycles)
        hz = load_board(board).clock_hz
        out["cycles_per_sample"] = cycles
        out["instructions_implied"] = round(cycles[0] * 1e9 / hz)

        # throughput: 2 KB PINGs echoed, one at a time, then 4 in flight
        payload = bytes(rng.integers(1, 256, p.MAX_PAYLOAD, dtype=np.uint8))
        wire = len(p.Frame(p.FrameType.PING, HOST, 2, seq=0, payload=payload).encode())
        n = 20
        t0 = time.monotonic()
        for i in range(n):
            c.request(p.FrameType.PING, i, payload)
        dt = time.monotonic() - t0
        out["ping_2k_serial_kBps_each_way"] = round(n * wire / dt / 1000, 1)
        t0 = time.monotonic()
        for i in range(0, n, 4):
            c.send(*(p.Frame(p.FrameType.PING, HOST, 2, seq=100 + i + k, payload=payload) for k in range(4)))
            for k in range(4):
                c.wait_for(lambda f, s=100 + i + k: f.type == p.FrameType.PONG and f.seq == s)
        dt = time.monotonic() - t0
        out["ping_2k_4inflight_kBps_each_way"] = round(n * wire / dt / 1000, 1)

        # sample round trip (2 x 16 B in, 2 x 16 B out, ~600k instructions of model)
        t0 = time.monotonic()
        for seq in range(10, 30):
            c.send(data(HOST, 2, 1, seq, a), data(HOST, 2, 2, seq, b))
            c.outputs(seq, 2)
        out["sample_round_trip_ms"] = round((time.monotonic() - t0) / 20 * 1000, 2)

        time.sleep(0.5)
        c0, t0 = cpu_seconds(qemu.pid), time.monotonic()
        time.sleep(5)
        out["idle_cpu_percent"] = round(100 * (cpu_seconds(qemu.pid) - c0) / (time.monotonic() - t0), 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    ap.add_argument("boards", nargs="*", default=["qemu_f405", "qemu_an386"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench(b, Path(tmp)) for b in args.boards]
    for r in results:
        print(json.dumps(r))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
