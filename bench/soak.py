#!/usr/bin/env python3
"""Section ``soak``: a long harness run on the emulated boards under faults, to show nothing leaks or drifts.

10,000 samples of the ``har`` build (its 2,996-sample test set, gone round again: ``host.harness --samples``
beyond the test set repeats it in order) with ``--loss 0.1 --corrupt 0.1`` and the edge board killed and
booted again twice (``--kill edge@3000:3500 --kill edge@7000:7500``). What is recorded:

* every sample accounted (sent = answered + timed out + failed = the samples asked for) and every tensor the
  boards sent bit-exact with the host int8 reference (the harness's own checks, from its JSON report);
* the harness process's resident memory (``VmRSS`` of ``/proc/<pid>/status``, every ``--rss-poll`` seconds;
  the QEMU boards it launched are sampled too, apart);
* each board's STATS counters at the end (summed over its boots), per 1000 samples, next to the faults the
  host injected (corrupted frames sent to a board vs the CRC drops it counted);
* the outcomes, accuracy and latency per chunk of 1000 samples (from the report's ``per_sample`` rows): a
  soak is steady when these stay flat outside the two windows with the edge down.

The harness reads STATS every 2 s but reports only the run's totals, so "counters steady" is judged from
the totals against the injected faults and from the per-chunk host-side figures, not from a counter timeline.

    .venv/bin/python bench/soak.py [--build build/soak-har] [--samples 10000] [--json BENCHMARKS.soak.json]

The build's board deadline matters: with 10 % of frames lost, most samples wait for it somewhere, so the
default 1000 ms makes 10,000 samples take about an hour here; the section builds ``har`` with
``--deadline-ms 250`` (``build/bench-soak-har``; model from the cache). In ``bench/run_benchmarks.py`` it is
``section_soak(args, R)``, rendered by ``bench_report/soak.py``'s ``md_soak(R)``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: bench_common, however this file is run

from bench_common import PY, REPO, has_firmware, load_manifest, log, rel, run_cmd  # noqa: E402

SAMPLES = 10_000
LOSS = 0.1
CORRUPT = 0.1
SEED = 0
#: The edge is failable in har (failure order fog, edge) and sits between the sensors and the fog: killing it
#: exercises the skips, the host's LINK_DOWN in its name, its reboot and the ledger of its STATS segments.
KILL_NODE = "edge"
#: (kill before sample K, boot again before sample M), as fractions of the run: twice, well apart.
KILL_AT = ((0.30, 0.35), (0.70, 0.75))
DEADLINE_MS = 250      # the soak build's board deadline (see the module's docstring)
RSS_POLL_S = 2.0
CHUNK = 1000           # samples per chunk of the steadiness table
TIMELINE_POINTS = 60   # RSS points kept in the summary (the full series goes to the raw file)
ERROR_COUNTERS = ("rx_truncated", "rx_length", "rx_overrun", "unknown_links", "bad_tensors", "invoke_errors",
                  "tx_errors")


class SoakError(Exception):
    """A soak that cannot run (no build, the harness failed to start): one line for the user."""


@dataclass(frozen=True)
class SoakPlan:
    """One soak run: which build, how many samples, which faults, where the files go."""

    build: Path
    samples: int = SAMPLES
    loss: float = LOSS
    corrupt: float = CORRUPT
    seed: int = SEED
    kills: tuple[tuple[str, int, int], ...] = ()
    out: Path = REPO / "build" / "bench" / "soak"
    rss_poll_s: float = RSS_POLL_S
    timeout_s: float = 4 * 3600.0

    @property
    def report_json(self) -> Path:
        return self.out / "harness.json"

    def command(self) -> list[str]:
        """The ``python -m host.harness`` command line of this soak."""
        cmd = [PY, "-m", "host.harness", "--build", str(self.build), "--samples", str(self.samples),
               "--loss", f"{self.loss:g}", "--corrupt", f"{self.corrupt:g}", "--seed", str(self.seed),
               "--quiet", "--out", str(self.out / "report"), "--json", str(self.report_json)]
        for node, at, back in self.kills:
            cmd += ["--kill", f"{node}@{at}:{back}"]
        return cmd


def default_kills(samples: int, node: str = KILL_NODE) -> tuple[tuple[str, int, int], ...]:
    """``node`` killed and booted again twice, at the fractions of ``KILL_AT`` of a run of ``samples``."""
    return tuple((node, int(a * samples), int(b * samples)) for a, b in KILL_AT)


# ---------------------------------------------------------------------------------------------------- RSS
@dataclass
class RssSeries:
    """Resident memory over the run: the harness process, and the emulated boards it launched (summed)."""

    t_s: list[float] = field(default_factory=list)
    harness_kb: list[int] = field(default_factory=list)
    boards_kb: list[int] = field(default_factory=list)


def vm_rss_kb(pid: int) -> int | None:
    """``VmRSS`` of a process in kB (None: it is gone, or a kernel thread without one)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's list: a child belongs to the thread that forked it)."""
    pids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    except (OSError, ValueError):
        pass
    return pids


def poll_rss(pid: int, series: RssSeries, done: threading.Event, period: float) -> None:
    """Sample ``pid``'s RSS (and its children's) every ``period`` s until ``done`` or the process is gone."""
    t0 = time.monotonic()
    while not done.is_set():
        rss = vm_rss_kb(pid)
        if rss is None:
            return
        series.t_s.append(round(time.monotonic() - t0, 2))
        series.harness_kb.append(rss)
        series.boards_kb.append(sum(vm_rss_kb(c) or 0 for c in child_pids(pid)))
        done.wait(period)


def run_harness(plan: SoakPlan) -> tuple[int, float, RssSeries]:
    """Run the soak's harness, sampling its RSS; returns (exit status, wall seconds, RSS series)."""
    plan.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    series, done = RssSeries(), threading.Event()
    t0 = time.perf_counter()
    with open(plan.out / "harness.log", "w") as logf:
        logf.write("$ " + " ".join(plan.command()) + "\n")
        logf.flush()
        proc = subprocess.Popen(plan.command(), cwd=REPO, stdout=logf, stderr=subprocess.STDOUT, env=env)
        poller = threading.Thread(target=poll_rss, args=(proc.pid, series, done, plan.rss_poll_s), daemon=True)
        poller.start()
        try:
            rc = proc.wait(timeout=plan.timeout_s)
        except subprocess.TimeoutExpired:
            proc.terminate()   # the harness's Ctrl-C path: it stops sending and still stops its boards
            rc = proc.wait()
        finally:
            done.set()
            poller.join()
    return rc, time.perf_counter() - t0, series


def poll_at(series: RssSeries, t: float) -> int:
    """Index of the last poll at or before ``t`` seconds into the run (the first poll if none)."""
    return max((i for i, ts in enumerate(series.t_s) if ts <= t), default=0)


def stream_window(series: RssSeries, stream_s: float) -> tuple[float, float]:
    """When the samples were streamed, in the series' seconds: from the first poll that saw the emulated boards
    running (they are launched right before the stream; their HELLO takes a second or so) for ``stream_s``
    (the report's streaming time). Before it: start-up; after it: the checks and the report."""
    start = next((t for t, b in zip(series.t_s, series.boards_kb) if b > 0), 0.0)
    return start, start + stream_s


def rss_summary(series: RssSeries, samples: int, stream_s: float) -> dict[str, Any]:
    """RSS at 10 %, 50 % and 100 % of the streaming (the pace is even outside the kills, so that is about as
    far into the samples), at the end (after the checks and the report), its peak, the growth per 1000 samples
    while streaming, the boards' RSS, and a thinned timeline."""
    if not series.t_s:
        return {"polls": 0}
    t0, t1 = stream_window(series, stream_s)
    i10, i50, i100 = (poll_at(series, t0 + f * stream_s) for f in (0.1, 0.5, 1.0))
    h, bk = series.harness_kb, series.boards_kb
    streaming = bk[poll_at(series, t0):i100 + 1]
    step = max(1, len(series.t_s) // TIMELINE_POINTS)
    idx = sorted(set(range(0, len(series.t_s), step)) | {len(series.t_s) - 1})
    return {
        "polls": len(series.t_s), "poll_s": RSS_POLL_S, "stream_window_s": [t0, round(t1, 2)],
        "at_10pct_kb": h[i10], "at_50pct_kb": h[i50], "at_100pct_kb": h[i100], "at_end_kb": h[-1],
        "max_kb": max(h), "growth_10_to_100pct_kb": h[i100] - h[i10],
        "growth_kb_per_1000_samples": round((h[i100] - h[i10]) / (0.9 * samples / 1000), 1),
        "boards_at_10pct_kb": bk[i10], "boards_at_100pct_kb": bk[i100], "boards_max_kb": max(bk),
        "boards_min_streaming_kb": min(streaming, default=None),
        "timeline": [[series.t_s[i], series.harness_kb[i], series.boards_kb[i]] for i in idx],
        "timeline_fields": ["t_s", "harness_kb", "boards_kb"],
    }


# ---------------------------------------------------------------------------------------------------- summary
def chunk_table(run: dict[str, Any], chunk: int = CHUNK) -> list[dict[str, Any]]:
    """Outcomes, answered-only accuracy and latency per ``chunk`` samples, in the order they were sent."""
    fields = run["sample_fields"]
    rows = [dict(zip(fields, r)) for r in run.get("per_sample", [])]
    table = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        answered = [r for r in part if r["outcome"] == "answered"]
        lat = sorted(r["latency_ms"] for r in answered if r["latency_ms"] is not None)
        table.append({
            "first": start, "last": start + len(part) - 1, "sent": len(part), "answered": len(answered),
            "timed_out": sum(r["outcome"] == "timed_out" for r in part),
            "failed": sum(r["outcome"] == "failed" for r in part),
            "accuracy_answered": (sum(r["board_pred"] == r["label"] for r in answered) / len(answered)
                                  if answered else None),
            "boards_eq_int8_host": sum(r["board_pred"] == r["int8_host_pred"] for r in part),
            "latency_p50_ms": round(statistics.median(lat), 1) if lat else None,
            "latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
        })
    return table


def board_counters(run: dict[str, Any], samples: int) -> dict[str, dict[str, Any]]:
    """Per board: its STATS totals over the run (all boots), reboots, and the fault counters per 1000 samples
    next to what the host injected (frames it corrupted on the way to the board)."""
    out: dict[str, dict[str, Any]] = {}
    for name, n in run["nodes"].items():
        d = n.get("stats_delta") or {}
        per_k = {f: round(1000 * d[f] / samples, 2) for f in ("rx_crc", "input_timeouts", "late_inputs",
                                                               "evictions", "rx_stale", "samples_down") if f in d}
        out[name] = {"stats": d, "per_1000_samples": per_k, "reboots": n.get("reboots", 0),
                     "stats_segments": n.get("stats_segments"), "corrupted_frames_sent": n["corrupted_frames_sent"],
                     "crc_drops": n.get("crc_drops"), "compared": n["compared"], "identical": n["identical"],
                     "errors": n.get("errors", [])[:5], "host_decode_drops": n.get("host_decode_drops", {}),
                     "error_counters": {f: d.get(f) for f in ERROR_COUNTERS if d.get(f)}}
    return out


def verdicts(run: dict[str, Any], boards: dict[str, dict[str, Any]], samples: int,
             kills: Sequence[tuple[str, int, int]]) -> dict[str, bool]:
    """What the soak must show, each as one yes/no the report prints."""
    sm, events = run["samples"], run.get("events", [])
    kinds = [(e["node"], e["kind"]) for e in events]
    return {
        "every_sample_accounted": sm["sent"] == samples and sm["answered"] + sm["timed_out"] + sm["failed"] == samples,
        "every_answer_bit_exact": run["bit_exact"]["compared"] > 0
                                   and run["bit_exact"]["identical"] == run["bit_exact"]["compared"],
        "boards_equal_int8_host": run["accuracy"]["boards"] == run["accuracy"]["int8_host"],
        "kills_seen": all(kinds.count((n, "silent")) >= sum(k[0] == n for k in kills)
                          and kinds.count((n, "back")) >= sum(k[0] == n for k in kills) for n, _, _ in kills),
        "crc_drops_equal_corrupted_frames": all(b["crc_drops"] == b["corrupted_frames_sent"] for b in boards.values()),
        "no_error_counters": not any(b["error_counters"] or b["errors"] for b in boards.values()),
    }


def summarize(plan: SoakPlan, report: dict[str, Any], rc: int, wall_s: float, series: RssSeries) -> dict[str, Any]:
    """The section's figures from the harness's JSON report, the exit status, wall time and RSS series."""
    run = report["runs"][0]
    boards = board_counters(run, plan.samples)
    man = load_manifest(plan.build)
    fw = man.stages.firmware
    return {
        "command": " ".join(["python", *plan.command()[1:]]).replace(str(REPO) + "/", ""),
        "build": rel(plan.build), "preset": report.get("preset"), "scheme": report.get("scheme"),
        "test_set": man.dataset.test, "passes_over_test_set": round(plan.samples / man.dataset.test, 2),
        "samples": plan.samples, "loss": plan.loss, "corrupt": plan.corrupt, "seed": plan.seed,
        "kills": [{"node": n, "at": a, "back": b} for n, a, b in plan.kills],
        "board_deadline_ms": fw.deadline_ms if fw is not None else None, "host_deadline_ms": report["deadline_ms"],
        "window": report["window"], "harness_exit_status": rc, "wall_s": round(wall_s, 1),
        "stream_s": run["throughput"]["wall_s"], "sent_per_s": round(run["throughput"]["sent_per_s"], 2),
        "outcomes": run["samples"], "bit_exact": run["bit_exact"], "mismatches": run.get("mismatches", [])[:10],
        "accuracy": run["accuracy"], "availability": run["availability"], "latency_ms": run["latency_ms"],
        "events": run.get("events", []), "corrupt_frames": run["corrupt"], "stray_frames": run["stray_frames"],
        "boards": boards, "chunks": chunk_table(run), "rss": rss_summary(series, plan.samples, run["throughput"]["wall_s"]),
        "verdicts": verdicts(run, boards, plan.samples, plan.kills),
        "raw": {"harness_json": rel(plan.report_json), "rss_json": rel(plan.out / "rss.json"),
                "log": rel(plan.out / "harness.log")},
    }


def soak(plan: SoakPlan) -> dict[str, Any]:
    """Run ``plan`` and summarise it; raises SoakError when there is nothing to summarise."""
    if not has_firmware(plan.build):
        raise SoakError(f"{plan.build}: no host.build with firmware there; build one with python -m host.build "
                        f"--preset har --board qemu --deadline-ms {DEADLINE_MS} --out {plan.build}")
    plan.report_json.unlink(missing_ok=True)   # a report left by an earlier soak must not pass for this one
    log(f"soak: {plan.samples} samples on {rel(plan.build)} (log: {rel(plan.out / 'harness.log')})")
    rc, wall, series = run_harness(plan)
    (plan.out / "rss.json").write_text(json.dumps({"exit_status": rc, "wall_s": wall, **asdict(series)}))
    return summarize_raw(plan)


def summarize_raw(plan: SoakPlan) -> dict[str, Any]:
    """The summary of the soak whose raw files are in ``plan.out`` (``--from-raw``: summarise again without
    running it, e.g. after changing what the summary says)."""
    try:
        raw = json.loads((plan.out / "rss.json").read_text())
        report = json.loads(plan.report_json.read_text())
    except (OSError, ValueError) as e:
        raise SoakError(f"{rel(plan.out)}: no complete soak there ({e}); run it first, or see "
                        f"{rel(plan.out / 'harness.log')}") from None
    series = RssSeries(raw["t_s"], raw["harness_kb"], raw["boards_kb"])
    return summarize(plan, report, raw["exit_status"], raw["wall_s"], series)


def ensure_build(build: Path, work: Path) -> None:
    """``host.build --preset har`` on emulated boards with the soak's board deadline, unless ``build`` has one
    with firmware already (the trained model comes from the cache the ``builds`` section filled)."""
    if has_firmware(build) and load_manifest(build).stages.firmware.deadline_ms == DEADLINE_MS:
        return
    cmd = [PY, "-m", "host.build", "--preset", "har", "--scheme", "resilinet", "--board", "qemu",
           "--deadline-ms", str(DEADLINE_MS), "--out", str(build), "--quiet"]
    rc, _ = run_cmd(cmd, work / "build.log", timeout=3600)
    if rc != 0:
        raise SoakError(f"host.build of the soak build failed (status {rc}); see {rel(work / 'build.log')}")


def section_soak(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """``bench/run_benchmarks.py --only soak``: the har soak build (built if needed), then the soak."""
    work = args.work / "soak"
    build = REPO / "build" / "bench-soak-har"
    ensure_build(build, work)
    samples = getattr(args, "soak_samples", None) or SAMPLES
    return soak(SoakPlan(build=build, samples=samples, kills=default_kills(samples), out=work))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, default=REPO / "build" / "soak-har",
                    help="a host.build of har on emulated boards (default build/soak-har)")
    ap.add_argument("--samples", type=int, default=SAMPLES, help=f"samples to send (default {SAMPLES})")
    ap.add_argument("--loss", type=float, default=LOSS, help=f"frame loss on every link (default {LOSS:g})")
    ap.add_argument("--corrupt", type=float, default=CORRUPT, help=f"bit flips per frame (default {CORRUPT:g})")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "soak", help="raw files (log, reports)")
    ap.add_argument("--json", type=Path, default=REPO / "BENCHMARKS.soak.json", help="the summary")
    ap.add_argument("--md", type=Path, default=None, help="also write the Markdown of the summary here")
    ap.add_argument("--from-raw", action="store_true", help="do not run: summarise the raw files in --out again")
    args = ap.parse_args(argv)
    if args.samples < 10:
        print(f"error: --samples {args.samples}: a soak needs at least 10 samples (the kills fall at 30-75 % "
              f"of the run)", file=sys.stderr)
        return 2
    if not (0 <= args.loss <= 1 and 0 <= args.corrupt <= 1 and args.loss + args.corrupt <= 1):
        print(f"error: --loss {args.loss:g} --corrupt {args.corrupt:g}: each must be a probability (0..1), and "
              f"together at most 1 (one draw per frame decides both)", file=sys.stderr)
        return 2
    try:
        plan = SoakPlan(build=args.build, samples=args.samples, loss=args.loss, corrupt=args.corrupt,
                        kills=default_kills(args.samples), out=args.out)
        res = summarize_raw(plan) if args.from_raw else soak(plan)
    except SoakError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.json.write_text(json.dumps({"soak": res}, indent=1))
    log(f"wrote {rel(args.json)}: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in res["verdicts"].items()))
    if args.md is not None:
        from bench_report.soak import md_soak

        args.md.write_text(md_soak({"soak": res}))
        log(f"wrote {rel(args.md)}")
    return 0 if all(res["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
