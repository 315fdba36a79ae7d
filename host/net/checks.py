"""The per-sample check: every board output of a sample against the int8 reference recomputed on the host.

Each node is checked on what its board really got: the split network is replayed with
:func:`host.ml.split.run_split` (:class:`host.net.reference.Reference`), every node's reference computed by
tflite_micro from the tensors the upstream *boards* sent, on the links that reached it before it answered,
a missing input being its zero point.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from host.ml.split import SplitRun
from host.net.records import SampleRecord
from host.net.reference import Deployment, NodeInfo, Reference

#: node -> output name -> the reference's tensor (batch of one)
Refs = dict[str, dict[str, np.ndarray]]


@dataclass
class SampleCheck:
    """The host reference for one sample, and how each board's answer compares with it."""

    board_pred: int | None          # class from the boards' RESULT (None: no result)
    ref_pred: int | None            # class from the int8 host reference with what arrived
    #: node -> identical | mismatch | no_output (both agree it had nothing to compute) | silent (the board
    #: died before answering) | late (its input came after it had computed a newer sample: dropped) |
    #: not_fed (failed node)
    nodes: dict[str, str] = field(default_factory=dict)
    #: {"node", "link", "what"} per differing output (the report lists them as they are)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    mux: dict[str, str] = field(default_factory=dict)
    #: links that did not reach their consumer in time (cut, lost, corrupted, not produced, too late)
    missing_links: list[str] = field(default_factory=list)
    #: links the host delivered but the board computed without (arrived after its deadline), per node
    late_links: dict[str, list[str]] = field(default_factory=dict)
    #: skip links that came after their consumer had answered with its primary input: not needed, not missing
    #: (a mux computes as soon as its primary input is there; the skip may still be on its way)
    unused_links: list[str] = field(default_factory=list)


def arrived_links(dep: Deployment, rec: SampleRecord) -> set[str]:
    """Links whose DATA the host delivered to the consumer before the consumer answered for this sample
    (and not after it had computed a newer sample: the runtime drops such an input as late)."""
    out = set()
    for name, link in dep.links.items():
        what = rec.delivery.get(name)
        if what is None or what[0] != "data" or name in rec.late_links:
            continue
        answered = rec.answers.get(link.dst)
        if answered is None or what[1] < answered:
            out.add(name)
    return out


def board_outputs(dep: Deployment, rec: SampleRecord, node: str) -> dict[str, bytes | None]:
    """The bytes a board sent for each of its model outputs (None: not sent, or LINK_DOWN)."""
    out: dict[str, bytes | None] = {}
    for o in dep.plans[node].outputs:
        keys = [f"{node}->host"] if o.result else list(o.links)
        out[o.name] = next((rec.outputs[k] for k in keys if k in rec.outputs), None)
    return out


class Replay:
    """One sample's split network on the host, each node fed what the upstream boards sent."""

    def __init__(self, dep: Deployment, ref: Reference, rec: SampleRecord, feeds: dict[str, np.ndarray],
                 dead: set[str], cut: set[str]) -> None:
        self.dep, self.ref, self.rec = dep, ref, rec
        self.feeds, self.dead, self.cut = feeds, dead, cut
        self.board = {n: board_outputs(dep, rec, n) for n in dep.nodes}

    def run(self, extra_cut: set[str]) -> tuple[SplitRun, Refs]:
        """The replay with ``extra_cut`` links missing too, and every node's reference outputs."""
        refs: Refs = {}
        dep = self.dep

        def runner(node: str, feed: list[np.ndarray]) -> dict[str, np.ndarray]:
            out = self.ref.runner(node, feed)  # looked up per call: a test swaps the runner
            refs[node] = out
            sent = {}
            for o in dep.plans[node].outputs:  # downstream gets what the board sent, not the reference
                b = self.board[node][o.name]
                sent[o.name] = np.frombuffer(b, np.int8).reshape((1,) + tuple(o.shape)) \
                    if b is not None and len(b) == int(np.prod(o.shape)) else out[o.name]
            return sent
        return self.ref.run(self.feeds, dead=self.dead, cut_links=self.cut | extra_cut, runner=runner), refs

    def differences(self, node: str, run: SplitRun, refs: Refs) -> list[dict[str, Any]]:
        """Differences between the board's outputs of ``node`` and the reference's (empty: identical)."""
        problems = []
        produced = bool(run.produced.get(node))
        rec = self.rec
        for o in self.dep.plans[node].outputs:
            for key in ([f"{node}->host"] if o.result else o.links):
                got = rec.outputs.get(key)
                if not produced:
                    if got is not None:
                        problems.append({"node": node, "link": key, "what": "board sent DATA, the reference has "
                                                                            "no input"})
                    continue
                want = np.ascontiguousarray(refs[node][o.name][0], np.int8).tobytes()
                if got is None:
                    if key in rec.downs:
                        problems.append({"node": node, "link": key, "what": "board sent LINK_DOWN, the "
                                                                            "reference computes an output"})
                    continue  # never came (the board died mid-sample)
                if got != want:
                    diff = int(np.count_nonzero(np.frombuffer(got, np.int8) != np.frombuffer(want, np.int8))) \
                        if len(got) == len(want) else -1
                    problems.append({"node": node, "link": key,
                                     "what": f"{diff} of {len(want)} bytes differ" if diff >= 0
                                     else f"{len(got)} bytes, expected {len(want)}"})
        return problems

    def explain_late(self, name: str, node: NodeInfo) -> tuple[list[str], SplitRun] | None:
        """The inputs that reached the board last may have come after its deadline (the host cannot see
        that race): the fewest of them, latest first, that make the board's output match when missing."""
        rec = self.rec
        got_in = sorted((l for l in node.links_in if l in self.dep.links and l not in self.cut),
                        key=lambda l: -rec.delivery[l][1])
        for k in range(1, len(got_in) + 1):
            for subset in itertools.combinations(got_in, k):
                run, refs = self.run(set(subset))
                if not self.differences(name, run, refs):
                    return list(subset), run
        return None


def unused_skips(dep: Deployment, mux: dict[str, str]) -> set[str]:
    """The skip (fallback) links of the mux nodes that computed with their primary input: such a node does
    not wait for them, so one that comes after its answer was not missing from it."""
    return {spec.fallback for name, choice in mux.items() if choice == "primary"
            for spec in dep.plans[name].inputs if spec.fallback}


def check_sample(dep: Deployment, ref: Reference, rec: SampleRecord, sensors: dict[str, np.ndarray]) -> SampleCheck:
    """Recompute the sample on the host and compare every DATA tensor and the RESULT, byte for byte.

    If a board's output differs, the inputs that reached it last are tried as missing too
    (:meth:`Replay.explain_late`); a match then counts as bit-exact, with those links noted as late. The
    int8 host reference (accuracy) is the plain run_split with the links that arrived in time.
    """
    result = rec.outputs.get(f"{dep.final_node}->host")
    board_pred = int(np.argmax(np.frombuffer(result, np.int8))) if result is not None and rec.outcome == "answered" \
        else None
    if not rec.sent:
        return SampleCheck(board_pred, None, {n: "not_fed" for n in dep.nodes})
    feeds = {s: x[None] for s, x in sensors.items()}
    # A node that failed before doing its part counts as failed; one that died after answering does not.
    dead = set(rec.dead) | {n for n in rec.silent if n not in rec.answers}
    cut = set(dep.links) - arrived_links(dep, rec)
    replay = Replay(dep, ref, rec, feeds, dead, cut)
    run, refs = replay.run(set())
    chk = SampleCheck(board_pred, None, mux=dict(run.mux_choice))
    late_cut: set[str] = set()
    for name, node in dep.nodes.items():
        if name in rec.dead:
            chk.nodes[name] = "not_fed"
            continue
        if name not in rec.answers:
            chk.nodes[name] = "late" if name in rec.late else \
                "silent" if name in rec.silent or run.produced.get(name) else "no_output"
            continue
        problems = replay.differences(name, run, refs)
        if problems:
            late = replay.explain_late(name, node)
            if late is not None:
                problems = []
                late_cut |= set(late[0])
                chk.late_links[name] = late[0]
                if name in late[1].mux_choice:
                    chk.mux[name] = late[1].mux_choice[name]
        if problems:
            chk.nodes[name] = "mismatch"
            chk.mismatches += problems
        else:
            chk.nodes[name] = "identical" if run.produced.get(name) or name in chk.late_links else "no_output"
    missing = cut | late_cut
    unused = unused_skips(dep, chk.mux)
    chk.unused_links = sorted(l for l in missing if l in unused and dep.links[l].src not in dead)
    chk.missing_links = sorted(l for l in missing if dep.links[l].src not in dead and l not in unused)
    pure = ref.run(feeds, dead=dead, cut_links=missing)
    chk.ref_pred = None if pure.result is None else int(np.argmax(pure.result[0]))
    return chk
