"""What the report says about a run: outcomes and why, accuracy, bit-exactness, cycles, wire, STATS.

:class:`RunTally` folds each sample and its :class:`~host.net.checks.SampleCheck` in as soon as it is
checked (so a long run keeps no sample's tensors); :func:`summarize_run` turns a
:class:`~host.net.records.RunRecord` and its tally into the run's part of the JSON report (the Markdown, the
plot and the console tables of :mod:`host.net.harness_report` read the same document);
:func:`sweep_averages` weighs the runs of a ``--sweep`` by the reliability settings.
"""
from __future__ import annotations

import statistics
from array import array
from collections import Counter
from typing import Any, Mapping, Sequence

from boards import load_board
from host.net import protocol as P
from host.net.board_stats import StatsLedger
from host.net.cycle_counts import compute_figures, count_meaning
from host.net.checks import SampleCheck
from host.net.records import OUTCOMES, RunRecord, SampleRecord
from host.net.reference import Deployment

ACCURACY_RULE = "a sample without a result counts as the random guess g (host/ml/evaluate.py)"
#: the columns of the report's ``per_sample`` rows
SAMPLE_FIELDS = ("index", "label", "outcome", "reason", "latency_ms", "board_pred", "int8_host_pred")
#: mismatching outputs the report lists (the first ones, in the order the samples were sent)
MAX_MISMATCHES = 50


def node_cycles(per_sample: Sequence[int], ledger: StatsLedger, name: str) -> dict[str, Any] | None:
    """Raw counts of one node's counter per sample: per sample from its RESULTs (the final node), else the
    run's mean from STATS (a DATA frame carries no count, to keep its header at 2 bytes). What they are
    (cycles, or instructions under QEMU) is :mod:`host.net.cycle_counts`'s business."""
    if per_sample:
        return {**distribution(per_sample), "source": "RESULT"}
    return ledger.cycles(name)


def distribution(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    v = sorted(values)
    q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]  # noqa: E731
    return {"mean": statistics.fmean(v), "p50": q(0.5), "p95": q(0.95), "min": v[0], "max": v[-1]}


def _degraded_reason(r: SampleRecord, c: SampleCheck) -> str:
    """Why an answered sample lacked some input (the first cause that applies), from what the host did with
    the missing links' frames."""
    how = [r.delivery.get(l, ("",))[0] for l in c.missing_links]
    if r.silent:
        return "node_silent"
    if r.dead or any(h in ("cut", "node_down") for h in how):
        return "link_cut"
    if "corrupt" in how:
        return "corrupted"
    if "lost" in how:
        return "frame_lost"
    if any(l in r.late_links for l in c.missing_links):
        return "late"            # delivered after the consumer had computed 32 newer samples: dropped
    if "down" in how:
        return "upstream_down"   # the producer board itself sent LINK_DOWN (it had no usable input)
    if "" in how:
        return "not_sent"        # the producer board sent nothing on the link for this sample
    return "deadline"            # delivered, but after the consumer had given up waiting for it


class NodeTally:
    """One node's part of the per-sample checks, summed over a run."""

    def __init__(self) -> None:
        self.states: Counter = Counter()          # SampleCheck.nodes verdict -> samples
        self.late_inferred = 0                    # inputs the check found came after the board's deadline
        self.mux: dict[str, int] = {}             # the mux's choice -> samples it computed with it
        self.cycles = array("q")                  # counts per sample (RESULT: the final node)


class RunTally:
    """A run's samples folded one by one, right after each one's check (:meth:`add`), in the order they were
    sent: everything :func:`summarize_run` reports, without keeping the samples' tensors and frames."""

    def __init__(self, dep: Deployment) -> None:
        self.sent = 0
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.reasons: dict[str, dict[str, int]] = {o: {} for o in ("timed_out", "failed")}
        self.degraded: dict[str, int] = {}
        self.unused_late = 0
        self.fed = 0                              # samples that went to the boards (the wire's per sample)
        self.correct = self.ref_correct = self.ref_results = 0
        self.nodes = {name: NodeTally() for name in dep.nodes}
        self.latency_ms = array("d")              # answered samples
        self.mismatches: list[dict[str, Any]] = []   # the first MAX_MISMATCHES
        #: per sample: index, label, outcome, reason, latency ms, board class, int8 host class (SAMPLE_FIELDS)
        self.rows: list[tuple[Any, ...]] = []

    def add(self, r: SampleRecord, c: SampleCheck) -> None:
        """Fold sample ``r`` and its check ``c`` in (samples come in the order they were sent)."""
        self.sent += 1
        self.fed += r.sent
        if r.outcome in self.outcomes:
            self.outcomes[r.outcome] += 1
        if r.outcome in self.reasons:
            counts = self.reasons[r.outcome]
            counts[r.reason] = counts.get(r.reason, 0) + 1
        if r.outcome == "answered":
            if r.dead or c.missing_links:
                why = _degraded_reason(r, c)
                self.degraded[why] = self.degraded.get(why, 0) + 1
            elif c.unused_links:
                self.unused_late += 1
            if r.latency is not None:
                self.latency_ms.append(r.latency * 1e3)
        self.correct += c.board_pred is not None and c.board_pred == r.label
        self.ref_correct += c.ref_pred is not None and c.ref_pred == r.label
        self.ref_results += c.ref_pred is not None
        for name, t in self.nodes.items():
            st = c.nodes.get(name)
            t.states[st] += 1
            t.late_inferred += len(c.late_links.get(name, ()))
            if name in c.mux and st in ("identical", "mismatch"):
                t.mux[c.mux[name]] = t.mux.get(c.mux[name], 0) + 1
            if name in r.cycles:
                t.cycles.append(r.cycles[name])
        room = MAX_MISMATCHES - len(self.mismatches)
        self.mismatches += [dict(m, sample=r.index, seq=r.seq) for m in c.mismatches[:max(0, room)]]
        self.rows.append((r.index, r.label, r.outcome, r.reason,
                          None if r.latency is None else round(r.latency * 1e3, 2), c.board_pred, c.ref_pred))


def _samples(run: RunRecord, t: RunTally) -> dict[str, Any]:
    """Outcomes and reasons. Answered = complete + degraded (by reason); ``unused_skip_late`` counts complete
    answers whose unused skip input came only after the answer (not a missing input)."""
    complete = t.outcomes["answered"] - sum(t.degraded.values())
    return {"sent": t.sent, **t.outcomes, "reasons": t.reasons, "complete_answers": complete,
            "degraded_answers": t.degraded, "unused_skip_late": t.unused_late,
            "accounted": sum(t.outcomes.values()) == t.sent, "interrupted": run.interrupted}


def _accuracy(dep: Deployment, run: RunRecord, t: RunTally, answered: int) -> dict[str, Any]:
    cfg, g, n = run.config, dep.random_guess, t.sent
    correct, ref_correct = t.correct, t.ref_correct
    return {"boards": (correct + g * (n - answered)) / n if n else None,
            "boards_answered_only": correct / answered if answered else None,
            "int8_host": (ref_correct + g * (n - t.ref_results)) / n if n else None,
            "float_build": dep.float_accuracy(cfg.dead) if not cfg.cut_links else None,
            "random_guess": g, "correct_boards": correct, "correct_int8_host": ref_correct, "rule": ACCURACY_RULE}


def _node(dep: Deployment, name: str, run: RunRecord, t: RunTally, hello: P.Hello | None) -> dict[str, Any]:
    """Bit-exactness, cycles and STATS of one node."""
    nt = t.nodes[name]
    st = nt.states
    ident, mism = st["identical"], st["mismatch"]
    counts = node_cycles(nt.cycles, run.stats, name)
    hz = hello.cpu_hz if hello else None
    compute = None
    if hello is not None and hz:   # without the HELLO's clock and counter the counts mean nothing
        meaning = count_meaning(hello.cycle_counter, load_board(dep.nodes[name].board).emulated, hz)
        compute = compute_figures(counts, meaning, hz)
    delta = run.stats.delta(name)
    return {
        "node_id": dep.nodes[name].id, "compared": ident + mism, "identical": ident, "mismatch": mism,
        "no_output_agreed": st["no_output"], "silent": st["silent"], "not_fed": st["not_fed"],
        "late_dropped": st["late"],
        "late_inputs_inferred": nt.late_inferred,
        "bit_exact": (ident / (ident + mism)) if ident + mism else None,
        "mux": dict(nt.mux) or None,
        "compute": compute.to_json() if compute else None, "cpu_hz": hz,
        "stats_delta": delta, "reboots": run.stats.reboots.get(name, 0),
        "stats_segments": len(run.stats.segments(name)), "corrupted_frames_sent": run.corrupted_to.get(name, 0),
        "crc_drops": delta["rx_crc"] if delta else None,
        "late_inputs": run.late_inputs.get(name, 0),
        "errors": run.errors.get(name, [])[:20], "host_decode_drops": dict(run.host_drops.get(name, {})),
        "uart_rx_bytes": run.uart_rx.get(name, 0), "uart_tx_bytes": run.uart_tx.get(name, 0),
    }


def _wire(dep: Deployment, run: RunRecord, t: RunTally) -> dict[str, Any]:
    """Frames and bytes per link, feeds first, in the deployment's link order."""
    per_sample = max(1, t.fed)
    wire = {}
    for key, w in sorted(run.wire.items(), key=lambda kv: link_order(dep, kv[0])):
        d = w.to_dict()
        d["wire_bytes_per_sample"] = round(w.wire_bytes / per_sample, 1)
        wire[key] = d
    return wire


def link_order(dep: Deployment, key: str) -> tuple[int, str]:
    names = list(dep.feeds[s].name for s in dep.feeds) + list(dep.links)
    return (names.index(key) if key in names else len(names), key)


def summarize_run(dep: Deployment, hello: Mapping[str, P.Hello], run: RunRecord, tally: RunTally) -> dict[str, Any]:
    """Everything the report says about one run, JSON-ready (``hello``: the boards' HELLOs, for clocks;
    ``tally``: its samples and their checks)."""
    cfg, n = run.config, tally.sent
    samples = _samples(run, tally)
    answered = samples["answered"]
    nodes = {name: _node(dep, name, run, tally, hello.get(name)) for name in dep.nodes}
    compared = sum(v["compared"] for v in nodes.values())
    identical = sum(v["identical"] for v in nodes.values())
    wall = max(1e-9, run.t_end - (run.t_stream or run.t_start))
    return {
        "label": cfg.label or dep.config_label(cfg.dead),
        "config": {"dead": sorted(cfg.dead), "cut_links": sorted(cfg.cut_links), "loss": cfg.loss,
                   "corrupt": cfg.corrupt, "deadline_ms": round(cfg.deadline_s * 1e3), "window": cfg.window,
                   "seed": cfg.seed, "bits": "".join(map(str, dep.config_of(cfg.dead) or ())) or None,
                   "has_path": dep.has_path(cfg.dead, cfg.cut_links),
                   "kills": [{"node": k.node, "at": k.at, "back": k.back} for k in cfg.kills]},
        "samples": samples,
        "availability": answered / n if n else None,
        "accuracy": _accuracy(dep, run, tally, answered),
        "bit_exact": {"compared": compared, "identical": identical,
                      "fraction": identical / compared if compared else None},
        "nodes": nodes,
        "wire": _wire(dep, run, tally),
        "latency_ms": distribution(tally.latency_ms),
        "throughput": {"wall_s": round(wall, 3), "answered_per_s": answered / wall, "sent_per_s": n / wall},
        "corrupt": {"frames_corrupted": int(sum(run.corrupted_to.values())),
                    "crc_drops_by_boards": sum((v["crc_drops"] or 0) for v in nodes.values())},
        "events": [e.to_dict() for e in run.events],
        "stray_frames": run.stray_frames,
        "mismatches": list(tally.mismatches),
        "sample_fields": list(SAMPLE_FIELDS),
        "per_sample": [list(row) for row in tally.rows],
    }


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
