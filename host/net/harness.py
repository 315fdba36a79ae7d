"""``python -m host.harness``: stream the test set through the boards, with nodes and links cut.

The host is the network (:mod:`host.net.router`): it feeds the sensor nodes their int8 features, forwards every
DATA frame to the board at the other end of its link, and injects failures on the way — a failed node
(``--drop``), a cut link (``--drop-link``), random frame loss (``--loss``) and bit errors (``--corrupt``).
For every sample and node it recomputes the int8 reference on the host (:mod:`host.net.reference`:
``run_split`` + ``tflm_runner`` on the same per-node ``.tflite`` models, with exactly the links that reached
each board) and compares every DATA tensor and RESULT byte for byte.

::

    python -m host.harness                                   # newest build, emulated boards, 200 samples
    python -m host.harness --build build/fashion-resilinet --samples 500 --drop edge
    python -m host.harness --drop-link iot->fog --loss 0.05 --corrupt 0.02 --seed 3
    python -m host.harness --sweep --samples 100             # every failure configuration + averages
    python -m host.harness --port iot=/dev/ttyACM0 --port edge=socket://10.0.0.5:4000   # real/remote boards
    python -m host.harness --kill edge@40:80                 # crash edge's QEMU at sample 40, reboot at 80
    python -m host.harness --start-boards | --stop-boards    # keep emulated boards running between runs

Writes ``<build>/harness/harness.md/.json/.png`` (``harness_sweep.*`` for ``--sweep``; ``--out`` moves them,
``--json PATH`` writes one more copy of the JSON). Ctrl-C stops sending, lets the samples in flight finish
and still writes the report (a second Ctrl-C gives them up).
"""
from __future__ import annotations

import argparse
import itertools
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from host.net import protocol as P
from host.net.reference import Deployment, DeploymentError, Reference, load_deployment
from host.net.router import OUTCOMES, BoardError, Network, RunConfig, RunRecord, SampleIn, SampleRecord

DEFAULT_SAMPLES = 200
STATS_FIELDS = ("rx_frames", "tx_frames", "rx_crc", "rx_truncated", "rx_length", "rx_duplicate", "rx_stale",
                "rx_overrun", "input_timeouts", "samples")


# ----------------------------------------------------------------------------------------- checks
@dataclass
class SampleCheck:
    """The host reference for one sample, and how each board's answer compares with it."""

    board_pred: int | None          # class from the boards' RESULT (None: no result)
    ref_pred: int | None            # class from the int8 host reference with what arrived
    #: node -> identical | mismatch | no_output (both agree it had nothing to compute) | silent (the board
    #: died before answering) | late (its input came after it had computed a newer sample: dropped) |
    #: not_fed (failed node)
    nodes: dict[str, str] = field(default_factory=dict)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    mux: dict[str, str] = field(default_factory=dict)
    #: links that did not reach their consumer in time (cut, lost, corrupted, not produced, too late)
    missing_links: list[str] = field(default_factory=list)
    #: links the host delivered but the board computed without (arrived after its deadline), per node
    late_links: dict[str, list[str]] = field(default_factory=dict)


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


def _board_outputs(dep: Deployment, rec: SampleRecord, node: str) -> dict[str, bytes | None]:
    """The bytes a board sent for each of its model outputs (None: not sent, or LINK_DOWN)."""
    out: dict[str, bytes | None] = {}
    for o in dep.plans[node].outputs:
        keys = [f"{node}->host"] if o.result else list(o.links)
        out[o.name] = next((rec.outputs[k] for k in keys if k in rec.outputs), None)
    return out


def check_sample(dep: Deployment, ref: Reference, rec: SampleRecord, sensors: dict[str, np.ndarray]) -> SampleCheck:
    """Recompute the sample on the host and compare every DATA tensor and the RESULT, byte for byte.

    Each node is checked on what its board really got: the split network is replayed with
    :func:`host.ml.split.run_split`, every node's reference computed by tflite_micro from the tensors the
    upstream *boards* sent (on the links that reached it before it answered), a missing input being its zero
    point. If a board's output differs, the inputs that reached it last are tried as missing too (they may
    have come after its deadline); a match then counts as bit-exact, with those links noted as late. The
    int8 host reference (accuracy) is the plain run_split with the links that arrived in time.
    """
    final = dep.final_node
    result = rec.outputs.get(f"{final}->host")
    board_pred = int(np.argmax(np.frombuffer(result, np.int8))) if result is not None and rec.outcome == "answered" \
        else None
    if not rec.sent:
        return SampleCheck(board_pred, None, {n: "not_fed" for n in dep.nodes})
    feeds = {s: x[None] for s, x in sensors.items()}
    # A node that failed before doing its part counts as failed; one that died after answering does not.
    dead = set(rec.dead) | {n for n in rec.silent if n not in rec.answers}
    cut = set(dep.links) - arrived_links(dep, rec)
    board = {n: _board_outputs(dep, rec, n) for n in dep.nodes}

    def replay(extra_cut: set[str]) -> tuple[Any, dict[str, dict[str, np.ndarray]]]:
        refs: dict[str, dict[str, np.ndarray]] = {}

        def runner(node: str, feed: list[np.ndarray]) -> dict[str, np.ndarray]:
            out = ref.runner(node, feed)
            refs[node] = out
            sent = {}
            for o in dep.plans[node].outputs:  # downstream gets what the board sent, not the reference
                b = board[node][o.name]
                sent[o.name] = np.frombuffer(b, np.int8).reshape((1,) + tuple(o.shape)) \
                    if b is not None and len(b) == int(np.prod(o.shape)) else out[o.name]
            return sent
        return ref.run(feeds, dead=dead, cut_links=cut | extra_cut, runner=runner), refs

    def agrees(node: str, run: Any, refs: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
        """Differences between the board's outputs of ``node`` and the reference's (empty: identical)."""
        problems = []
        produced = bool(run.produced.get(node))
        for o in dep.plans[node].outputs:
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

    run, refs = replay(set())
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
        problems = agrees(name, run, refs)
        if problems:
            # Inputs that reached the board last may have come after its deadline: try them as missing.
            got_in = sorted((l for l in node.links_in if l in dep.links and l not in cut),
                            key=lambda l: -rec.delivery[l][1])
            for k in range(1, len(got_in) + 1):
                for subset in itertools.combinations(got_in, k):
                    run2, refs2 = replay(set(subset))
                    if not agrees(name, run2, refs2):
                        problems = []
                        late_cut |= set(subset)
                        chk.late_links[name] = list(subset)
                        if name in run2.mux_choice:
                            chk.mux[name] = run2.mux_choice[name]
                        break
                if not problems:
                    break
        if problems:
            chk.nodes[name] = "mismatch"
            chk.mismatches += problems
        else:
            chk.nodes[name] = "identical" if run.produced.get(name) or name in chk.late_links else "no_output"
    missing = cut | late_cut
    chk.missing_links = sorted(l for l in missing if dep.links[l].src not in dead)
    pure = ref.run(feeds, dead=dead, cut_links=missing)
    chk.ref_pred = None if pure.result is None else int(np.argmax(pure.result[0]))
    return chk


# ----------------------------------------------------------------------------------------- summaries
def _pct(a: float | None) -> str:
    return "—" if a is None else f"{100 * a:.2f}"


def _stats_delta(before: P.Stats | None, after: P.Stats | None) -> dict[str, int] | None:
    if before is None or after is None:
        return None
    return {f: (getattr(after, f) - getattr(before, f)) % (1 << 32) for f in STATS_FIELDS}


def _node_cycles(per_sample: Sequence[int], before: P.Stats | None, after: P.Stats | None) -> dict[str, Any] | None:
    """Compute cycles of one node: per sample from its RESULTs (the final node), else the run's mean
    from STATS (a DATA frame carries no cycle count, to keep its header at 2 bytes)."""
    if per_sample:
        return {**_dist(per_sample), "source": "RESULT"}
    if before is None or after is None:
        return None
    samples = (after.samples - before.samples) % (1 << 32)
    if not samples:
        return None
    total = (after.cycles - before.cycles) % (1 << 64)
    return {"mean": total / samples, "max": after.cycles_max, "samples": samples, "source": "STATS"}


def _dist(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    v = sorted(values)
    q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]  # noqa: E731
    return {"mean": statistics.fmean(v), "p50": q(0.5), "p95": q(0.95), "min": v[0], "max": v[-1]}


def summarize_run(dep: Deployment, net: Network, run: RunRecord, checks: list[SampleCheck]) -> dict[str, Any]:
    """Everything the report says about one run, JSON-ready."""
    cfg = run.config
    g = dep.random_guess
    recs = run.records
    n = len(recs)
    outcomes = {o: sum(r.outcome == o for r in recs) for o in OUTCOMES}
    reasons = {o: {} for o in ("timed_out", "failed")}
    for r in recs:
        if r.outcome in reasons:
            reasons[r.outcome][r.reason] = reasons[r.outcome].get(r.reason, 0) + 1
    degraded: dict[str, int] = {}
    for r, c in zip(recs, checks):
        if r.outcome == "answered" and (r.dead or c.missing_links):
            why = "node_silent" if r.silent else "link_cut" if (r.dead or any(
                r.delivery.get(l, ("",))[0] in ("cut", "node_down") for l in c.missing_links)) else \
                "corrupted" if any(r.delivery.get(l, ("",))[0] == "corrupt" for l in c.missing_links) else \
                "frame_lost" if any(r.delivery.get(l, ("",))[0] == "lost" for l in c.missing_links) else "deadline"
            degraded[why] = degraded.get(why, 0) + 1
    correct = sum(c.board_pred is not None and c.board_pred == r.label for r, c in zip(recs, checks))
    ref_correct = sum(c.ref_pred is not None and c.ref_pred == r.label for r, c in zip(recs, checks))
    answered = outcomes["answered"]
    ref_results = sum(c.ref_pred is not None for c in checks)
    acc_boards = (correct + g * (n - answered)) / n if n else None
    acc_ref = (ref_correct + g * (n - ref_results)) / n if n else None
    has_path = dep.has_path(cfg.dead, cfg.cut_links)
    # Per node: bit-exactness, cycles, STATS.
    nodes: dict[str, Any] = {}
    for name in dep.nodes:
        st = [c.nodes.get(name) for c in checks]
        ident, mism = st.count("identical"), st.count("mismatch")
        cycles = _node_cycles([r.cycles[name] for r in recs if name in r.cycles],
                              run.stats_before.get(name), run.stats_after.get(name))
        hello = net.hello.get(name)
        hz = hello.cpu_hz if hello else None
        mux: dict[str, int] = {}
        for c in checks:
            if name in c.mux and c.nodes.get(name) in ("identical", "mismatch"):
                mux[c.mux[name]] = mux.get(c.mux[name], 0) + 1
        delta = _stats_delta(run.stats_before.get(name), run.stats_after.get(name))
        nodes[name] = {
            "node_id": dep.nodes[name].id, "compared": ident + mism, "identical": ident, "mismatch": mism,
            "no_output_agreed": st.count("no_output"), "silent": st.count("silent"), "not_fed": st.count("not_fed"),
            "late_dropped": st.count("late"),
            "late_inputs_inferred": sum(len(c.late_links.get(name, ())) for c in checks),
            "bit_exact": (ident / (ident + mism)) if ident + mism else None,
            "mux": mux or None,
            "cycles": cycles, "cpu_hz": hz,
            "ms_mean": (cycles["mean"] / hz * 1e3) if cycles and hz else None,
            "stats_delta": delta, "corrupted_frames_sent": run.corrupted_to.get(name, 0),
            "crc_drops": delta["rx_crc"] if delta else None,
            "late_inputs": run.late_inputs.get(name, 0),
            "errors": run.errors.get(name, [])[:20], "host_decode_drops": dict(run.host_drops.get(name, {})),
            "uart_rx_bytes": run.uart_rx.get(name, 0), "uart_tx_bytes": run.uart_tx.get(name, 0),
        }
    compared = sum(v["compared"] for v in nodes.values())
    identical = sum(v["identical"] for v in nodes.values())
    wall = max(1e-9, run.t_end - run.t_start)
    lat = [r.latency * 1e3 for r in recs if r.outcome == "answered" and r.latency is not None]
    per_sample = max(1, sum(r.sent for r in recs))
    wire = {}
    for key, w in sorted(run.wire.items(), key=lambda kv: _link_order(dep, kv[0])):
        d = w.to_dict()
        d["wire_bytes_per_sample"] = round(w.wire_bytes / per_sample, 1)
        wire[key] = d
    mismatches = [dict(m, sample=r.index, seq=r.seq) for r, c in zip(recs, checks) for m in c.mismatches]
    return {
        "label": cfg.label or dep.config_label(cfg.dead),
        "config": {"dead": sorted(cfg.dead), "cut_links": sorted(cfg.cut_links), "loss": cfg.loss,
                   "corrupt": cfg.corrupt, "deadline_ms": round(cfg.deadline_s * 1e3), "window": cfg.window,
                   "seed": cfg.seed, "bits": "".join(map(str, dep.config_of(cfg.dead) or ())) or None,
                   "has_path": has_path},
        "samples": {"sent": n, **outcomes, "reasons": reasons, "degraded_answers": degraded,
                    "accounted": sum(outcomes.values()) == n, "interrupted": run.interrupted},
        "availability": answered / n if n else None,
        "accuracy": {"boards": acc_boards, "boards_answered_only": correct / answered if answered else None,
                     "int8_host": acc_ref, "float_build": dep.float_accuracy(cfg.dead) if not cfg.cut_links else None,
                     "random_guess": g, "correct_boards": correct, "correct_int8_host": ref_correct,
                     "rule": "a sample without a result counts as the random guess g (host/ml/evaluate.py)"},
        "bit_exact": {"compared": compared, "identical": identical,
                      "fraction": identical / compared if compared else None},
        "nodes": nodes,
        "wire": wire,
        "latency_ms": _dist(lat),
        "throughput": {"wall_s": round(wall, 3), "answered_per_s": answered / wall, "sent_per_s": n / wall},
        "corrupt": {"frames_corrupted": int(sum(run.corrupted_to.values())),
                    "crc_drops_by_boards": sum((v["crc_drops"] or 0) for v in nodes.values())},
        "events": [e.to_dict() for e in run.events],
        "stray_frames": run.stray_frames,
        "mismatches": mismatches[:50],
        "sample_fields": ["index", "label", "outcome", "reason", "latency_ms", "board_pred", "int8_host_pred"],
        "per_sample": [[r.index, r.label, r.outcome, r.reason,
                        None if r.latency is None else round(r.latency * 1e3, 2), c.board_pred, c.ref_pred]
                       for r, c in zip(recs, checks)],
    }


def _link_order(dep: Deployment, key: str) -> tuple[int, str]:
    names = list(dep.feeds[s].name for s in dep.feeds) + list(dep.links)
    return (names.index(key) if key in names else len(names), key)


def sweep_averages(dep: Deployment, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Average accuracy per reliability setting (ResiliNet's table), from the runs of every configuration."""
    g = dep.random_guess
    by_bits = {r["config"]["bits"]: r for r in runs}
    out: dict[str, Any] = {}
    for setting in dep.reliability:
        acc = {"boards": 0.0, "int8_host": 0.0, "float_build": 0.0}
        total = 0.0
        complete = True
        for c in dep.configurations():
            bits = "".join(map(str, c))
            p = dep.config_probability(c, setting)
            total += p
            r = by_bits.get(bits)
            dead = dep.failed_in(c)
            if not dep.has_path(dead):
                for k in acc:
                    acc[k] += p * g
                continue
            if r is None or r["accuracy"]["boards"] is None:
                complete = False
                continue
            for k in ("boards", "int8_host"):
                acc[k] += p * r["accuracy"][k]
            fa = dep.float_accuracy(dead)
            acc["float_build"] += p * (fa if fa is not None else g)
        out[setting] = {k: v / total for k, v in acc.items()} | {"complete": complete}
    if dep.evaluation:
        for setting, v in dep.evaluation.get("average", {}).items():
            if setting in out:
                out[setting]["float_build"] = v
    return out


# ----------------------------------------------------------------------------------------- reports
def _node_rows(s: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, v in s["nodes"].items():
        d = v["stats_delta"] or {}
        cyc = v["cycles"]
        rows.append([name, v["node_id"],
                     f"{v['identical']}/{v['compared']}" + (f" ({_pct(v['bit_exact'])} %)" if v["compared"] else ""),
                     v["mismatch"], v["no_output_agreed"], v["silent"] + v["not_fed"],
                     ", ".join(f"{k} {n}" for k, n in (v["mux"] or {}).items()) or "—",
                     f"{cyc['mean']:,.0f}" if cyc else "—",
                     f"{v['ms_mean']:.2f}" if v["ms_mean"] is not None else "—",
                     d.get("samples", "—"), d.get("rx_crc", "—"), v["corrupted_frames_sent"],
                     d.get("input_timeouts", "—"), d.get("rx_overrun", "—")])
    return rows


NODE_HEADER = ["node", "id", "bit-exact answers", "mismatch", "both no output", "not fed / silent", "mux choice",
               "cycles/sample", "ms @ clock", "STATS samples", "STATS CRC drops", "corrupted sent",
               "input timeouts", "overruns"]
LINK_HEADER = ["link", "DATA", "LINK_DOWN", "RESULT", "wire B", "payload B", "tensor B", "overhead B",
               "overhead % of tensor", "wire B/sample"]


def _link_rows(wire: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for key, w in wire.items():
        f = w["frames"]
        rows.append([key, f.get("DATA", 0), f.get("LINK_DOWN", 0), f.get("RESULT", 0), f"{w['wire_bytes']:,}",
                     f"{w['payload_bytes']:,}", f"{w['tensor_bytes']:,}", f"{w['overhead_bytes']:,}",
                     f"{w['overhead_pct_of_tensor']:.2f}" if w["overhead_pct_of_tensor"] is not None else "—",
                     w["wire_bytes_per_sample"]])
    return rows


def _merge_wire(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in runs:
        for k, w in r["wire"].items():
            o = out.setdefault(k, {"frames": {}, "wire_bytes": 0, "payload_bytes": 0, "tensor_bytes": 0,
                                   "overhead_bytes": 0, "sent": 0})
            for t, c in w["frames"].items():
                o["frames"][t] = o["frames"].get(t, 0) + c
            for f in ("wire_bytes", "payload_bytes", "tensor_bytes", "overhead_bytes"):
                o[f] += w[f]
            o["sent"] += r["samples"]["sent"]
    for o in out.values():
        o["overhead_pct_of_tensor"] = round(100 * o["overhead_bytes"] / o["tensor_bytes"], 3) if o["tensor_bytes"] \
            else None
        o["wire_bytes_per_sample"] = round(o["wire_bytes"] / max(1, o.pop("sent")), 1)
    return out


RUN_HEADER = ["configuration", "sent", "answered", "timed out", "failed", "availability %", "float (build) %",
              "int8 host %", "boards %", "bit-exact", "samples/s", "latency p50 / p95 ms"]


def _run_row(s: dict[str, Any]) -> list[Any]:
    sm, acc, lat = s["samples"], s["accuracy"], s["latency_ms"]
    be = s["bit_exact"]
    return [s["label"], sm["sent"], sm["answered"], sm["timed_out"], sm["failed"], _pct(s["availability"]),
            _pct(acc["float_build"]), _pct(acc["int8_host"]), _pct(acc["boards"]),
            f"{be['identical']}/{be['compared']}", f"{s['throughput']['answered_per_s']:.2f}",
            f"{lat['p50']:.0f} / {lat['p95']:.0f}" if lat else "—"]


def _reason_text(s: dict[str, Any]) -> str:
    parts = []
    for outcome in ("timed_out", "failed"):
        for reason, n in s["samples"]["reasons"][outcome].items():
            parts.append(f"{n} {outcome.replace('_', ' ')} ({reason.replace('_', ' ')})")
    for reason, n in s["samples"]["degraded_answers"].items():
        parts.append(f"{n} answered without some input ({reason.replace('_', ' ')})")
    return "; ".join(parts) or "none"


def build_report(dep: Deployment, report: dict[str, Any]) -> str:
    from host.report_files import md_table

    runs = report["runs"]
    m = dep.manifest
    lines = [f"# Harness: {m.get('preset')} / {m.get('scheme')} on the boards",
             "",
             f"Build `{report['build']}`; {report['samples']} test samples (seed {report['seed']}), up to "
             f"{report['window']} in flight, host deadline {report['deadline_ms']} ms, board deadline "
             f"{dep.board_deadline_ms} ms. Accuracy: a sample without a result counts as the random guess "
             f"g = {_pct(dep.random_guess)} % (as in host/ml/evaluate.py); float = the float model on the whole "
             f"test set (the build's evaluation); int8 host = tflite_micro per node with the links that "
             f"actually reached each board; bit-exact = board answers (every DATA tensor and the RESULT of a "
             f"node for a sample) identical to the host reference.",
             "",
             "## Boards",
             "",
             md_table(["node", "id", "board", "port", "how", "firmware", "flash B", "arena B", "clock Hz"],
                      [[n, b["node_id"], b["board"], f"`{b['url']}`", b["attached"], b.get("fw") or "—",
                        b.get("flash_bytes") or "—", b.get("arena_bytes") or "—", b.get("cpu_hz") or "—"]
                       for n, b in report["boards"].items()]),
             "",
             "## Runs",
             "",
             md_table(RUN_HEADER, [_run_row(s) for s in runs]),
             ""]
    if report.get("sweep"):
        sw = report["sweep"]
        lines += ["## Average accuracy per reliability setting (ResiliNet's table, measured on the boards)", "",
                  md_table(["setting", "float (build) %", "int8 host %", "boards %"],
                           [[st, _pct(v["float_build"]), _pct(v["int8_host"]), _pct(v["boards"])
                             + ("" if v["complete"] else " (incomplete)")] for st, v in sw.items()]), ""]
    for s in runs:
        lines += [f"## {s['label']}", "",
                  f"Failures injected: dropped {s['config']['dead'] or 'none'}, cut links "
                  f"{s['config']['cut_links'] or 'none'}, loss {s['config']['loss']}, corrupt "
                  f"{s['config']['corrupt']}. Samples lost and why: {_reason_text(s)}.",
                  f"All {s['samples']['sent']} samples accounted for: {s['samples']['accounted']}."
                  + (" Interrupted (Ctrl-C)." if s["samples"]["interrupted"] else ""), ""]
        if s["latency_ms"]:
            lat = s["latency_ms"]
            lines += [f"Latency per answered sample: mean {lat['mean']:.1f} ms, p50 {lat['p50']:.1f}, "
                      f"p95 {lat['p95']:.1f}, max {lat['max']:.1f} ms. Throughput {s['throughput']['answered_per_s']:.2f}"
                      f" samples/s over {s['throughput']['wall_s']:.1f} s.", ""]
        if s["corrupt"]["frames_corrupted"]:
            lines += [f"Corrupted frames sent: {s['corrupt']['frames_corrupted']}; CRC drops counted by the "
                      f"boards' STATS: {s['corrupt']['crc_drops_by_boards']}.", ""]
        lines += [md_table(NODE_HEADER, _node_rows(s)), "", md_table(LINK_HEADER, _link_rows(s["wire"])), ""]
        if s["events"]:
            lines += ["Board events:", ""] + [f"* {e['t_s']:.2f} s (sample {e['sample']}): **{e['node']}** "
                                              f"{e['kind']} {e['detail']}" for e in s["events"]] + [""]
        if s["mismatches"]:
            lines += ["First mismatches:", ""] + [f"* sample {x['sample']} (seq {x['seq']}): {x['node']} "
                                                  f"{x['link']}: {x['what']}" for x in s["mismatches"][:10]] + [""]
    if len(runs) > 1:
        lines += ["## Wire, all runs", "", md_table(LINK_HEADER, _link_rows(_merge_wire(runs))), ""]
    lines += ["Overhead = bytes on the line (COBS, header, CRC, delimiter, the 4-byte cycle count, LINK_DOWN "
              "frames) beyond the tensors. In the star every link's bytes cross two UARTs (producer → host → "
              "consumer); the table counts them once.", ""]
    return "\n".join(lines)


def plot_runs(dep: Deployment, runs: list[dict[str, Any]]) -> Callable[[Any], None]:
    from host.report_files import grouped_bars

    def plot(ax) -> None:
        labels = [r["label"] for r in runs]
        grouped_bars(ax, labels, {"float (build, whole test set)": [r["accuracy"]["float_build"] for r in runs],
                                  "int8 host (TFLM)": [r["accuracy"]["int8_host"] for r in runs],
                                  "boards": [r["accuracy"]["boards"] for r in runs]},
                     title=f"{dep.manifest.get('preset')}: accuracy per failure configuration, measured on the boards")
        ax.axhline(100 * dep.random_guess, color="grey", linestyle=":", linewidth=1, label="random guess g")
        ax.set_ylim(0, 118)
        ax.legend(fontsize=8, loc="upper center", ncol=4)
    return plot


def print_console(dep: Deployment, report: dict[str, Any], console: Any) -> None:
    """Compact tables (the Markdown report has every column)."""
    from rich import box
    from rich.table import Table

    def table(title: str, header: list[str], rows: list[list[Any]]) -> Table:
        t = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD)
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*map(str, r))
        return t

    runs = report["runs"]
    rows = []
    for s in runs:
        sm, acc, be, lat = s["samples"], s["accuracy"], s["bit_exact"], s["latency_ms"]
        rows.append([s["label"], f"{sm['answered']}/{sm['sent']}", _pct(acc["float_build"]), _pct(acc["int8_host"]),
                     _pct(acc["boards"]), f"{be['identical']}/{be['compared']}",
                     f"{s['throughput']['answered_per_s']:.2f}"])
    console.print(table("runs (accuracy: float = build, whole test set; int8 = host TFLM)",
                        ["configuration", "answered", "float %", "int8 %", "boards %", "bit-exact", "samples/s"],
                        rows))
    if report.get("sweep"):
        console.print(table("average accuracy per reliability setting (%)", ["setting", "float", "int8", "boards"],
                            [[st, _pct(v["float_build"]), _pct(v["int8_host"]), _pct(v["boards"])]
                             for st, v in report["sweep"].items()]))
    if len(runs) == 1:
        s = runs[0]
        nrows = []
        for name, v in s["nodes"].items():
            d = v["stats_delta"] or {}
            nrows.append([name, f"{v['identical']}/{v['compared']}", v["mismatch"],
                          ", ".join(f"{k} {n}" for k, n in (v["mux"] or {}).items()) or "—",
                          f"{v['cycles']['mean']:,.0f}" if v["cycles"] else "—",
                          f"{v['ms_mean']:.2f}" if v["ms_mean"] is not None else "—",
                          f"{d.get('rx_crc', '—')}/{v['corrupted_frames_sent']}", d.get("input_timeouts", "—"),
                          v["late_inputs"]])
        console.print(table("nodes", ["node", "bit-exact", "mism", "mux", "cycles", "ms", "CRC/corr",
                                      "in.t/o", "late"], nrows))
        wrows = [[k, sum(w["frames"].values()), f"{w['wire_bytes']:,}", f"{w['tensor_bytes']:,}",
                  f"{w['overhead_pct_of_tensor']:.2f}" if w["overhead_pct_of_tensor"] is not None else "—",
                  w["wire_bytes_per_sample"]] for k, w in s["wire"].items()]
        console.print(table("wire per link", ["link", "frames", "wire B", "tensor B", "ovh %", "B/sample"], wrows))
        console.print(f"samples lost and why: {_reason_text(s)}")
        for e in s["events"]:
            console.print(f"  {e['t_s']:.2f} s (sample {e['sample']}): {e['node']} {e['kind']} {e['detail']}")
    else:
        console.print(table("bit-exact per node (%)", ["configuration"] + list(dep.nodes),
                            [[r["label"]] + [_pct(r["nodes"][n]["bit_exact"]) for n in dep.nodes] for r in runs]))


# ----------------------------------------------------------------------------------------- driver
@dataclass
class HarnessResult:
    report: dict[str, Any]
    runs: list[RunRecord]
    paths: dict[str, Path]


def pick_samples(n_test: int, samples: int | None, seed: int) -> np.ndarray:
    if samples is None or samples >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(seed).choice(n_test, size=samples, replace=False))


def default_build(root: Path = Path("build")) -> Path:
    """The newest complete build under ``build/`` (one with firmware), else ``build/demo``."""
    found = []
    for mf in root.glob("*/manifest.json"):
        try:
            if "sensor_links" in json.loads(mf.read_text()):
                found.append(mf)
        except (OSError, ValueError):
            continue
    if not found:
        return root / "demo"
    return max(found, key=lambda p: p.stat().st_mtime).parent


def run_harness(build: str | Path, *, ports: dict[str, str] | None = None, dead: Iterable[str] = (),
                cut_links: Iterable[str] = (), loss: float = 0.0, corrupt: float = 0.0,
                deadline_ms: float | None = None, samples: int | None = DEFAULT_SAMPLES, seed: int = 0,
                sweep: bool = False, window: int = 3, baud: int = 115200, out: Path | None = None,
                json_path: Path | None = None, kills: Sequence[tuple[str, int, int | None]] = (),
                hooks: dict[int, list[Callable[[Network], None]]] | None = None,
                stop: threading.Event | None = None, abandon: threading.Event | None = None,
                console: Any = None, progress: bool = True, write: bool = True,
                hello_timeout: float = 8.0) -> HarnessResult:
    """Everything ``python -m host.harness`` does, as a function (the tests call it)."""
    dep = load_deployment(build)
    dead, cut_links = frozenset(dead), frozenset(cut_links)
    bad = sorted(set(dead) - set(dep.nodes))
    if bad:
        raise ValueError(f"--drop {bad}: no such node; nodes are {list(dep.nodes)}")
    bad = sorted(set(cut_links) - set(dep.links))
    if bad:
        raise ValueError(f"--drop-link {bad}: no such link; links are {list(dep.links)}")
    for p, name in ((loss, "--loss"), (corrupt, "--corrupt")):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability, got {p}")
    if deadline_ms is None:
        deadline_ms = dep.board_deadline_ms * sum(n.role != "sensor" for n in dep.nodes.values()) + 2000
    x, y = dep.load_test_set()
    idx = pick_samples(len(y), samples, seed)
    sensors = dep.sensor_inputs(x[idx])
    items = [SampleIn(int(i), int(y[i]), {s: sensors[s][k] for s in sensors}) for k, i in enumerate(idx)]
    by_index = {it.index: it.sensors for it in items}
    ref = Reference(dep)
    log = (lambda s: console.log(s)) if console is not None else None
    hooks = {k: list(v) for k, v in (hooks or {}).items()}
    for node, at, back in kills:
        hooks.setdefault(at, []).append(lambda net, n=node: net.kill(n))
        if back is not None:
            hooks.setdefault(back, []).append(lambda net, n=node: net.restart(n))
    if sweep:
        configs = [(frozenset(dep.failed_in(c)), "".join(map(str, c))) for c in dep.configurations()]
    else:
        configs = [(dead, None)]
    runs: list[RunRecord] = []
    summaries: list[dict[str, Any]] = []
    with Network(dep, ports=ports, baud=baud, log=log, hello_timeout=hello_timeout) as net:
        boards = {n: {"node_id": d.id, "board": d.board, "url": net.urls[n], "attached": net.attached[n],
                      "model_hash": d.model_hash.hex()} for n, d in dep.nodes.items()}
        for n, h in net.hello.items():
            boards[n].update(fw=".".join(map(str, h.fw_version)), flash_bytes=h.flash_bytes,
                             arena_bytes=h.arena_bytes, cpu_hz=h.cpu_hz)
        for i, (cfg_dead, bits) in enumerate(configs):
            if stop is not None and stop.is_set():
                break
            label = dep.config_label(cfg_dead)
            if cut_links:
                label += " + cut " + ", ".join(sorted(cut_links))
            if loss:
                label += f" + loss {loss:g}"
            if corrupt:
                label += f" + corrupt {corrupt:g}"
            cfg = RunConfig(cfg_dead, cut_links, loss, corrupt, deadline_ms / 1000, window, seed, label)
            bar = _progress(console, progress, f"{label}", len(items))
            try:
                rec = net.run(items, cfg, progress=bar.update if bar else None, hooks=hooks if i == 0 else None,
                              stop=stop, abandon=abandon)
            finally:
                if bar:
                    bar.close()
            checks = [check_sample(dep, ref, r, by_index[r.index]) for r in rec.records]
            runs.append(rec)
            summaries.append(summarize_run(dep, net, rec, checks))
    report: dict[str, Any] = {
        "build": str(dep.build), "preset": dep.manifest.get("preset"), "scheme": dep.manifest.get("scheme"),
        "samples": len(items), "seed": seed, "window": window, "deadline_ms": round(deadline_ms),
        "board_deadline_ms": dep.board_deadline_ms, "sweep": sweep_averages(dep, summaries) if sweep else None,
        "boards": boards, "runs": summaries,
    }
    paths: dict[str, Path] = {}
    if write:
        from host.report_files import write_report

        out = Path(out) if out is not None else dep.build / "harness"
        stem = "harness_sweep" if sweep else "harness"
        paths = write_report(out, stem, build_report(dep, report), report, plot_runs(dep, summaries))
        if json_path is not None:
            Path(json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(json_path).write_text(paths["json"].read_text())
            paths["json_copy"] = Path(json_path)
    return HarnessResult(report, runs, paths)


class _Bar:
    def __init__(self, console: Any, label: str, total: int) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                          console=console, transient=False)
        self.task = self.p.add_task(label, total=total, info="")
        self.p.start()

    def update(self, run: RunRecord) -> None:
        done = [r for r in run.records if r.outcome is not None]
        ans = sum(r.outcome == "answered" for r in done)
        wall = max(1e-9, time.monotonic() - run.t_start)
        silent = {e.node for e in run.events if e.kind == "silent"} - {e.node for e in run.events if e.kind == "back"}
        info = f"answered {ans}, timed out {sum(r.outcome == 'timed_out' for r in done)}, " \
               f"failed {sum(r.outcome == 'failed' for r in done)}, {ans / wall:.1f}/s" \
               + (f", silent: {', '.join(sorted(silent))}" if silent else "")
        self.p.update(self.task, completed=len(done), info=info)

    def close(self) -> None:
        self.p.stop()


def _progress(console: Any, enabled: bool, label: str, total: int) -> _Bar | None:
    if not enabled or console is None:
        return None
    return _Bar(console, label, total)


# ----------------------------------------------------------------------------------------- detached boards
def start_boards(build: Path, console: Any) -> int:
    """Start every node's emulated board in the background (``python -m codegen.emulator start``)."""
    dep = load_deployment(build)
    d = dep.build / "harness" / "boards"
    d.mkdir(parents=True, exist_ok=True)
    from codegen.emulator import pidfile_running

    for name, node in dep.nodes.items():
        pid = d / f"{name}.pid"
        if pidfile_running(pid):
            console.print(f"{name}: already running ({(d / f'{name}.url').read_text().strip()})")
            continue
        res = subprocess.run([sys.executable, "-m", "codegen.emulator", "start", "--board", node.board, "--elf",
                              str(node.elf), "--pidfile", str(pid), "--rx-buffer"], capture_output=True, text=True)
        if res.returncode != 0:
            console.print(f"[red]{name}: {res.stderr.strip()}")
            return 1
        url = res.stdout.split()[0]
        (d / f"{name}.url").write_text(url + " rx-buffer\n")  # the router doubles 0x00 (codegen.emulator)
        console.print(f"{name}: {url}")
    return 0


def stop_boards(build: Path, console: Any) -> int:
    from codegen.emulator import stop_pidfile

    d = Path(build).resolve() / "harness" / "boards"
    for pid in sorted(d.glob("*.pid")):
        stopped = stop_pidfile(pid)
        (d / f"{pid.stem}.url").unlink(missing_ok=True)
        console.print(f"{pid.stem}: {'stopped' if stopped else 'was not running'}")
    return 0


# ----------------------------------------------------------------------------------------- CLI
def _kill_spec(text: str) -> tuple[str, int, int | None]:
    try:
        node, at = text.split("@")
        a, _, b = at.partition(":")
        return node, int(a), int(b) if b else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"--kill expects NODE@K or NODE@K:M, got {text!r}") from None


def _port_spec(text: str) -> tuple[str, str]:
    node, sep, url = text.partition("=")
    if not sep or not url:
        raise argparse.ArgumentTypeError(f"--port expects NODE=URL, got {text!r}")
    return node, url


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.harness", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, default=None, help="build directory (default: newest under build/)")
    ap.add_argument("--port", type=_port_spec, action="append", default=[], metavar="NODE=URL",
                    help="attach a real or remote board (any pyserial URL); others are emulated")
    ap.add_argument("--baud", type=int, default=115200, help="baud rate of real serial ports (default 115200)")
    ap.add_argument("--drop", action="append", default=[], metavar="NODE",
                    help="fail a node: it gets nothing, LINK_DOWN is sent in its name (repeatable)")
    ap.add_argument("--drop-link", action="append", default=[], metavar="A->B",
                    help="cut a link: its frames become LINK_DOWN (repeatable)")
    ap.add_argument("--loss", type=float, default=0.0, help="probability that a frame on a link is lost "
                    "(no LINK_DOWN: the receiver's deadline decides)")
    ap.add_argument("--corrupt", type=float, default=0.0, help="probability that a forwarded frame gets a bit "
                    "flipped (the board's CRC drops it)")
    ap.add_argument("--deadline", type=float, default=None, metavar="MS",
                    help="host-side wait for a sample before it counts as timed out "
                         "(default: board deadline x nodes + 2 s)")
    ap.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                    help=f"seeded subset of the test set (default {DEFAULT_SAMPLES}; 0 = all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the subset, the loss and the bit flips")
    ap.add_argument("--sweep", action="store_true", help="run every failure configuration of the failable "
                    "nodes, then the average accuracy per reliability setting")
    ap.add_argument("--window", type=int, default=3, help="samples in flight, 1..32 (default 3 = the nodes' slots)")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the JSON report here")
    ap.add_argument("--out", type=Path, default=None, help="report directory (default <build>/harness)")
    ap.add_argument("--kill", type=_kill_spec, action="append", default=[], metavar="NODE@K[:M]",
                    help="emulated boards: kill NODE's QEMU before sample K, boot it again before sample M")
    ap.add_argument("--hello-timeout", type=float, default=8.0, help="seconds to wait for each board's HELLO")
    ap.add_argument("--quiet", action="store_true", help="no progress bar and tables")
    ap.add_argument("--start-boards", action="store_true", help="start the emulated boards in the background")
    ap.add_argument("--stop-boards", action="store_true", help="stop the boards --start-boards started")
    args = ap.parse_args(argv)

    from rich.console import Console

    console = Console(stderr=False, quiet=args.quiet)
    build = args.build or default_build()
    if args.start_boards:
        return start_boards(build, console)
    if args.stop_boards:
        return stop_boards(build, console)
    if not 1 <= args.window <= 32:
        ap.error("--window must be 1..32 (DATA frames carry one byte of the sample number; nodes remember "
                 "their last 32 samples)")
    stop, abandon = threading.Event(), threading.Event()
    presses = [0]

    def on_sigint(signum: int, frame: Any) -> None:
        presses[0] += 1
        if presses[0] == 1:
            stop.set()
            console.print("[yellow]Ctrl-C: no more samples; waiting for those in flight (Ctrl-C again to give "
                          "them up)")
        elif presses[0] == 2:
            abandon.set()
        else:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        res = run_harness(build, ports=dict(args.port), dead=args.drop, cut_links=args.drop_link, loss=args.loss,
                          corrupt=args.corrupt, deadline_ms=args.deadline, samples=args.samples or None,
                          seed=args.seed, sweep=args.sweep, window=args.window, baud=args.baud, out=args.out,
                          json_path=args.json, kills=args.kill, stop=stop, abandon=abandon, console=console,
                          progress=not args.quiet, hello_timeout=args.hello_timeout)
    except (DeploymentError, BoardError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, old)
    if not args.quiet:
        print_console(load_deployment(build), res.report, console)
    for k, p in res.paths.items():
        console.print(f"wrote {p}")
    ok = all(r["samples"]["accounted"] for r in res.report["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
