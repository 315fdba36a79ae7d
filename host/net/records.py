"""What a harness run is asked to do and what it saw: the records the router fills and the checks read.

Kept apart from the router so that the checks, summaries and reports (:mod:`host.net.checks`,
:mod:`host.net.summary`) depend on plain data, not on the code that drives the boards.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from host.net import protocol as P
from host.net.board_stats import StatsLedger

#: Outcomes of a sample; every sample sent ends in exactly one.
OUTCOMES = ("answered", "timed_out", "failed")
#: Why a sample did not get (or got a degraded) result.
REASONS = ("node_silent", "link_cut", "frame_lost", "corrupted", "deadline", "no_input", "interrupted")
#: Why an answered sample lacked an input (host.net.summary): the reasons above, or a late input (dropped by
#: the runtime), a producer that sent LINK_DOWN itself, or one that sent nothing on the link.
DEGRADED_REASONS = ("node_silent", "link_cut", "corrupted", "frame_lost", "late", "upstream_down", "not_sent",
                    "deadline")


#: the empty set of nodes every settled sample without a silent node shares
_NONE: frozenset[str] = frozenset()


@dataclass
class SampleIn:
    index: int                       # position in the test set
    label: int
    sensors: dict[str, np.ndarray]   # sensor node -> int8 features (one sample)


@dataclass
class SampleRecord:
    k: int                           # position in this run
    index: int
    label: int
    seq: int
    t_sent: float
    dead: frozenset[str] = frozenset()      # nodes treated as failed from injection (dropped or silent)
    silent: set[str] = field(default_factory=set)  # nodes that were silent for this sample (dead boards)
    sent: bool = True                       # False: failed at injection, nothing went to the boards
    t_done: float | None = None
    outcome: str | None = None
    reason: str | None = None
    #: node -> event number of its first frame for this sample (DATA, LINK_DOWN or RESULT)
    answers: dict[str, int] = field(default_factory=dict)
    #: link name (or "<node>->host") -> tensor bytes the board sent
    outputs: dict[str, bytes] = field(default_factory=dict)
    #: link name (or "<node>->host") -> LINK_DOWN reason the board sent
    downs: dict[str, int] = field(default_factory=dict)
    #: link name -> (what the host did, event number): data | down (forwarded) | cut | node_down | lost |
    #: corrupt | consumer_dead
    delivery: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: node -> cycles it reported for this sample
    cycles: dict[str, int] = field(default_factory=dict)
    #: node -> time the first input was delivered to it (watchdog)
    fed_at: dict[str, float] = field(default_factory=dict)
    #: nodes that got an input of this sample after computing a newer one (the runtime drops it as late)
    late: set[str] = field(default_factory=set)
    late_links: set[str] = field(default_factory=set)
    #: failed nodes for which the host has sent LINK_DOWN in their name
    stood_in: set[str] = field(default_factory=set)
    #: failed at injection: finished at this time (keeps the pace while a needed board is silent)
    hold_until: float | None = None

    @property
    def latency(self) -> float | None:
        return None if self.t_done is None else self.t_done - self.t_sent

    def settled(self, missing_links: Sequence[str]) -> "SettledSample":
        """What is kept of this sample once it is checked (its tensors and routing are let go)."""
        digest = None
        if self.outputs:
            h = hashlib.blake2b(digest_size=8)
            for key in sorted(self.outputs):
                h.update(key.encode() + b"\0" + len(self.outputs[key]).to_bytes(4, "little") + self.outputs[key])
            digest = h.digest()
        return SettledSample(self.k, self.index, self.label, self.seq, self.sent, self.outcome, self.reason,
                             self.latency, self.dead or _NONE, frozenset(self.silent) or _NONE,
                             tuple(missing_links), digest)


@dataclass(frozen=True, slots=True)
class SettledSample:
    """A sample after its check (:func:`host.net.harness.run_plan` folds the check into the run's tally at
    once): a few hundred bytes instead of every tensor and frame, so a long run's memory stays flat."""

    k: int
    index: int
    label: int
    seq: int
    sent: bool
    outcome: str | None
    reason: str | None
    latency: float | None
    dead: frozenset[str]
    silent: frozenset[str]
    #: links that did not reach their consumer in time (the check's ``missing_links``)
    missing_links: tuple[str, ...]
    #: 8-byte hash of every tensor the boards sent for the sample (None: none): compares runs byte for byte
    outputs_digest: bytes | None


def reason_of(rec: SampleRecord, default: str) -> str:
    """Why ``rec`` lacks (some of) its result, from what happened to its frames (first cause wins)."""
    states = {s for s, _ in rec.delivery.values()}
    if rec.silent:
        return "node_silent"
    if "corrupt" in states:
        return "corrupted"
    if "lost" in states:
        return "frame_lost"
    if rec.dead or "cut" in states:
        return "link_cut"
    return default


@dataclass
class WireStats:
    frames: Counter = field(default_factory=Counter)   # by frame type name
    wire_bytes: int = 0        # on the line: COBS body + delimiter
    payload_bytes: int = 0     # frame payloads (DATA: the tensor; RESULT: cycles + tensor)
    tensor_bytes: int = 0      # the tensors alone
    host_frames: int = 0       # frames the host made (feeds, LINK_DOWN in a producer's name)

    def add(self, ftype: int, wire: int, payload: int, tensor: int, host: bool = False) -> None:
        self.frames[P.FrameType(ftype).name] += 1
        self.wire_bytes += wire
        self.payload_bytes += payload
        self.tensor_bytes += tensor
        self.host_frames += host

    def to_dict(self) -> dict[str, Any]:
        over = self.wire_bytes - self.tensor_bytes
        return {"frames": dict(self.frames), "wire_bytes": self.wire_bytes, "payload_bytes": self.payload_bytes,
                "tensor_bytes": self.tensor_bytes, "host_frames": self.host_frames,
                "framing_overhead_bytes": self.wire_bytes - self.payload_bytes, "overhead_bytes": over,
                "overhead_pct_of_tensor": round(100 * over / self.tensor_bytes, 3) if self.tensor_bytes else None}


@dataclass
class BoardEvent:
    t: float          # seconds since the run started
    node: str
    kind: str         # silent | back | reset | rejected | error
    sample: int | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": round(self.t, 3), "node": self.node, "kind": self.kind, "sample": self.sample,
                "detail": self.detail}


@dataclass(frozen=True)
class KillSpec:
    """``--kill NODE@K[:M]``: SIGKILL the node's emulated board before sample K, boot it again before M."""

    node: str
    at: int
    back: int | None = None


@dataclass
class RunConfig:
    """The failures of one run; :func:`host.net.faults.build_faults` turns them into fault policies."""

    dead: frozenset[str] = frozenset()        # --drop
    cut_links: frozenset[str] = frozenset()   # --drop-link
    loss: float = 0.0
    corrupt: float = 0.0
    deadline_s: float = 6.0
    window: int = 3
    seed: int = 0
    label: str = ""
    kills: tuple[KillSpec, ...] = ()          # --kill (the first run of a sweep only)


@dataclass
class RunRecord:
    config: RunConfig
    #: one per sample sent, in order; a SettledSample once it is checked (host.net.router.Router.settle_old)
    records: list[SampleRecord | SettledSample] = field(default_factory=list)
    wire: dict[str, WireStats] = field(default_factory=lambda: defaultdict(WireStats))
    uart_rx: Counter = field(default_factory=Counter)   # bytes received from each board
    uart_tx: Counter = field(default_factory=Counter)   # bytes sent to each board
    corrupted_to: Counter = field(default_factory=Counter)   # altered (corrupted) frames sent to each board
    host_drops: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    events: list[BoardEvent] = field(default_factory=list)
    stats_before: dict[str, P.Stats] = field(default_factory=dict)
    stats_after: dict[str, P.Stats] = field(default_factory=dict)
    #: every STATS heard during the run, one segment per boot (the report's totals: host.net.board_stats)
    stats: StatsLedger = field(default_factory=StatsLedger)
    stray_frames: int = 0
    late_inputs: Counter = field(default_factory=Counter)   # inputs delivered after the node computed newer
    t_start: float = 0.0     # the run began (before the RESET): board events are timed from here
    t_stream: float = 0.0    # the first sample was sent (throughput: t_stream .. t_end)
    t_end: float = 0.0
    interrupted: bool = False
