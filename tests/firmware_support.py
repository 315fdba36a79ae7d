"""Helpers of tests/test_firmware.py: the test node configurations, the exact Python
model of tests/firmware_testmodel, and a small host-side client for one node's UART."""
from __future__ import annotations

import hashlib
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from host.net import protocol as p
from host.deploy.firmware import Input, LinkIn, LinkOut, NodeConfig, Output

REPO = Path(__file__).resolve().parents[1]
TESTMODEL_DIR = REPO / "tests" / "firmware_testmodel"
TESTMODEL_SOURCES = [TESTMODEL_DIR / "testmodel.c"]
EXAMPLE_CONFIG = REPO / "firmware" / "runtime" / "node_config_example.h"

# tests/firmware_testmodel/testmodel.h
BYTES = 16
ZP_IN0, ZP_IN1, ZP_OUT0 = -3, 5, 2
ZP_OUT1 = ZP_IN0
MODEL_HASH = hashlib.sha256(b"tests/firmware_testmodel").digest()[:8]
DEADLINE_MS = 500

HOST = p.NODE_HOST

#: Node 2: two plain inputs from the host (links 1, 2); out0 → node 3 on link 5, out1 → node 4 on link 6.
PLAIN = NodeConfig(
    name="plain", node_id=2, invoke="testmodel_invoke", model_header="testmodel.h",
    links_in=[LinkIn(1, HOST, BYTES, ZP_IN0), LinkIn(2, HOST, BYTES, ZP_IN1)],
    inputs=[Input([1]), Input([2])],
    outputs=[Output(BYTES, ZP_OUT0), Output(BYTES, ZP_OUT1)],
    links_out=[LinkOut(output=0, dst=3, link=5), LinkOut(output=1, dst=4, link=6)],
    deadline_ms=DEADLINE_MS, n_slots=3, arena_bytes=1234, model_hash=MODEL_HASH,
    comment="The example node config: the test node of tests/test_firmware.py (model: tests/firmware_testmodel).",
)

#: Node 5 (a final node): input 0 is a mux of link 1 from node 1 (the link from below,
#: primary) and the skip link 3 from node 4 (fallback); input 1 is link 2 from the host.
#: out0 → RESULT to the host, out1 → node 6 on link 7.
MUX = NodeConfig(
    name="mux", node_id=5, invoke="testmodel_invoke", model_header="testmodel.h",
    links_in=[LinkIn(1, 1, BYTES, ZP_IN0), LinkIn(3, 4, BYTES, ZP_IN0), LinkIn(2, HOST, BYTES, ZP_IN1)],
    inputs=[Input([1, 3], kind="mux"), Input([2])],
    outputs=[Output(BYTES, ZP_OUT0), Output(BYTES, ZP_OUT1)],
    links_out=[LinkOut(output=0, dst=HOST, type="result"), LinkOut(output=1, dst=6, link=7)],
    deadline_ms=DEADLINE_MS, n_slots=2, arena_bytes=0, model_hash=MODEL_HASH,
)

#: Node 7: several skips into one mux node (har's fog): input 0 muxes link 1 from node 1 (below) and
#: skip link 3 from node 4; input 1 is on STANDBY: skip link 2 from node 6, read only while link 1 (the
#: guard) did not arrive, else the real value 0. The model adds them: "below, else the sum of the skips".
STANDBY = NodeConfig(
    name="standby", node_id=7, invoke="testmodel_invoke", model_header="testmodel.h",
    links_in=[LinkIn(1, 1, BYTES, ZP_IN0), LinkIn(3, 4, BYTES, ZP_IN0), LinkIn(2, 6, BYTES, ZP_IN1)],
    inputs=[Input([1, 3], kind="mux"), Input([1, 2], kind="standby")],
    outputs=[Output(BYTES, ZP_OUT0), Output(BYTES, ZP_OUT1)],
    links_out=[LinkOut(output=0, dst=HOST, type="result"), LinkOut(output=1, dst=8, link=9)],
    deadline_ms=DEADLINE_MS, n_slots=2, arena_bytes=0, model_hash=MODEL_HASH,
)

#: Node 9 (a distillation aggregator): input 0 averages three replicas of one part -- link 1 from node 1,
#: link 3 from node 4, link 4 from node 6 -- (the mean of those that came, zero point if none);
#: input 1 is link 2 from the host.
AVERAGE = NodeConfig(
    name="average", node_id=9, invoke="testmodel_invoke", model_header="testmodel.h",
    links_in=[LinkIn(1, 1, BYTES, ZP_IN0), LinkIn(3, 4, BYTES, ZP_IN0), LinkIn(4, 6, BYTES, ZP_IN0),
              LinkIn(2, HOST, BYTES, ZP_IN1)],
    inputs=[Input([1, 3, 4], kind="average"), Input([2])],
    outputs=[Output(BYTES, ZP_OUT0), Output(BYTES, ZP_OUT1)],
    links_out=[LinkOut(output=0, dst=HOST, type="result"), LinkOut(output=1, dst=10, link=11)],
    deadline_ms=DEADLINE_MS, n_slots=2, arena_bytes=0, model_hash=MODEL_HASH,
)

CONFIGS = {"plain": PLAIN, "mux": MUX, "standby": STANDBY, "average": AVERAGE}


def model(in0: bytes | None, in1: bytes | None) -> tuple[bytes, bytes]:
    """Exact outputs of testmodel_invoke; a missing input is the zero-point fill."""
    a = np.frombuffer(in0, np.int8).astype(np.int32) if in0 is not None else np.full(BYTES, ZP_IN0)
    b = np.frombuffer(in1, np.int8).astype(np.int32) if in1 is not None else np.full(BYTES, ZP_IN1)
    out0 = np.clip((a - ZP_IN0) + (b - ZP_IN1) + ZP_OUT0, -128, 127).astype(np.int8)
    out1 = a[::-1].astype(np.int8)
    return out0.tobytes(), out1.tobytes()


def tensor(rng: np.random.Generator) -> bytes:
    return rng.integers(-128, 128, BYTES, dtype=np.int8).tobytes()


def data(src: int, dst: int, link: int, seq: int, t: bytes) -> p.Frame:
    """A DATA frame (src/dst are not sent: the link names both ends)."""
    return p.Frame(p.FrameType.DATA, src, dst, link, seq, t)


def link_down(src: int, dst: int, link: int, seq: int, reason=p.LinkDownReason.TIMEOUT) -> p.Frame:
    return p.Frame(p.FrameType.LINK_DOWN, src, dst, link, seq, p.build_link_down(reason))


class NodeClient:
    """The host side of one node's UART: send frames, wait for the ones that matter."""

    def __init__(self, port, node_id: int) -> None:
        self.port = port
        self.node_id = node_id
        self.decoder = p.FrameDecoder()
        self.pending: deque[p.Frame] = deque()
        self.bytes_in = 0

    def send(self, *frames: p.Frame) -> None:
        self.port.write(b"".join(f.encode() for f in frames))

    def send_raw(self, data: bytes) -> None:
        self.port.write(data)

    def _read(self) -> None:
        # read(n) waits for all n bytes (or the timeout): take one byte, then what is there
        chunk = self.port.read(1)
        if chunk and self.port.in_waiting:
            chunk += self.port.read(self.port.in_waiting)
        self.bytes_in += len(chunk)
        self.pending.extend(self.decoder.feed(chunk))

    def wait_for(self, pred: Callable[[p.Frame], bool], timeout: float = 5.0, what: str = "frame") -> p.Frame:
        """The first frame (already received or coming) that satisfies ``pred``; others stay pending."""
        deadline = time.monotonic() + timeout
        while True:
            for f in list(self.pending):
                if pred(f):
                    self.pending.remove(f)
                    return f
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s; pending: {list(self.pending)}")
            self._read()

    def take(self, n: int, timeout: float = 5.0, pred: Callable[[p.Frame], bool] | None = None) -> list[p.Frame]:
        return [self.wait_for(pred or (lambda f: True), timeout, f"frame {i + 1} of {n}") for i in range(n)]

    def collect(self, duration: float) -> list[p.Frame]:
        """Everything that arrives within ``duration`` seconds (plus what was pending)."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            self._read()
        out = list(self.pending)
        self.pending.clear()
        return out

    def request(self, type_: p.FrameType, seq: int, payload: bytes = b"", timeout: float = 5.0) -> p.Frame:
        reply = {p.FrameType.HELLO: p.FrameType.HELLO, p.FrameType.STATS: p.FrameType.STATS,
                 p.FrameType.PING: p.FrameType.PONG, p.FrameType.RESET: p.FrameType.HELLO}[type_]
        self.send(p.Frame(type_, HOST, self.node_id, seq=seq, payload=payload))
        return self.wait_for(lambda f: f.type == reply and f.seq == seq, timeout, f"{reply.name} seq {seq}")

    def stats(self, seq: int = 0xABC) -> p.Stats:
        return p.Stats.unpack(self.request(p.FrameType.STATS, seq).payload)

    def reset(self, seq: int = 0) -> p.Hello:
        """RESET; ``seq`` is the newest sample number, around which the node expands DATA frames' one-byte seq."""
        hello = p.Hello.unpack(self.request(p.FrameType.RESET, seq).payload)
        self.pending.clear()
        return hello

    def outputs(self, seq: int, n: int, timeout: float = 5.0) -> dict[tuple[int, int], p.Frame]:
        """The node's ``n`` sample frames (DATA/RESULT/LINK_DOWN) of sample ``seq``, by (type, link).

        DATA frames carry the low byte of the sample number only."""
        def ours(f: p.Frame) -> bool:
            return f.type in p.SEQUENCED_TYPES and f.seq == (seq & 0xFF if f.type == p.FrameType.DATA else seq)
        frames = self.take(n, timeout, ours)
        return {(int(f.type), f.link): f for f in frames}


def sample_frames(seq: int, dst: int, parts: Mapping[tuple[int, int], bytes | None]) -> list[p.Frame]:
    """DATA (tensor) or LINK_DOWN (None) per (src, link)."""
    return [data(src, dst, link, seq, t) if t is not None else link_down(src, dst, link, seq)
            for (src, link), t in parts.items()]


def expected_counts(stream: bytes, local_node: int) -> dict[p.LinkStatus, int]:
    """What the node's decoder must count for ``stream`` (the Python decoder gives the same verdicts)."""
    dec = p.FrameDecoder(local_node=local_node)
    dec.feed(stream)
    return dict(dec.counts)


def stats_drops(s: p.Stats) -> dict[str, int]:
    return {name: getattr(s, name) for name in ("rx_truncated", "rx_oversize", "rx_crc", "rx_version",
                                                 "rx_type", "rx_length", "rx_dest", "rx_duplicate",
                                                 "rx_stale")}


def stats_delta(after: p.Stats, before: p.Stats) -> dict[str, int]:
    return {k: getattr(after, k) - getattr(before, k) for k in after.__dataclass_fields__}


def chunks(data: bytes, n: int) -> Iterable[bytes]:
    for i in range(0, len(data), n):
        yield data[i:i + n]
