"""The harness's reports: Markdown, JSON and PNG files, and the console's tables and progress bar.

Everything here reads the report document that :func:`host.net.harness.run_harness` assembles (its runs
are :func:`host.net.summary.summarize_run` dicts), so the files and the console say the same.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from host.net.board_stats import RUNTIME_FIELDS
from host.net.records import RunRecord
from host.net.reference import Deployment


def _pct(a: float | None) -> str:
    return "—" if a is None else f"{100 * a:.2f}"


def _node_rows(s: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, v in s["nodes"].items():
        d = v["stats_delta"] or {}
        rows.append([name + (f" (rebooted {v['reboots']}x)" if v.get("reboots") else ""), v["node_id"],
                     f"{v['identical']}/{v['compared']}" + (f" ({_pct(v['bit_exact'])} %)" if v["compared"] else ""),
                     v["mismatch"], v["no_output_agreed"], v["silent"] + v["not_fed"],
                     ", ".join(f"{k} {n}" for k, n in (v["mux"] or {}).items()) or "—",
                     *_compute_cells(v["compute"]),
                     d.get("samples", "—"), d.get("rx_crc", "—"), v["corrupted_frames_sent"],
                     d.get("input_timeouts", "—"), d.get("rx_overrun", "—"), _runtime_cell(d)])
    return rows


def _runtime_cell(d: dict[str, int]) -> str:
    """The runtime's other STATS counters of a run (late inputs, evictions, errors, ...) that are not 0."""
    return ", ".join(f"{f.replace('_', ' ')} {d[f]}" for f in RUNTIME_FIELDS if d.get(f)) or ("none" if d else "—")


def _ms_cell(c: dict[str, Any]) -> str:
    """Silicon milliseconds, or under emulation only their lower bound, marked as such."""
    if c["ms_mean"] is not None:
        return f"{c['ms_mean']:.2f}"
    return f"≥ {c['ms_lower_bound']:.2f}" if c["ms_lower_bound"] is not None else "—"


def _compute_cells(c: dict[str, Any] | None, short: bool = False) -> list[str]:
    """compute/sample, what it counts (``short``: the unit alone, for the console), ms/sample
    (host.net.cycle_counts)."""
    if not c:
        return ["—", "—", "—"]
    return [f"{c['mean']:,.0f}", c["unit"] if short else c["label"], _ms_cell(c)]


#: What each kind of compute figure is (the note under a run's node table).
COMPUTE_NOTES = {
    "instructions": "{label}: the emulated board's SysTick counts virtual time, which QEMU -icount shift=0 advances "
                    "1 ns per executed instruction, so counts × 1e9 / clock = instructions executed (not cycles; "
                    "no cycle estimate yet). Its ms/sample is a lower bound (≥): the instructions at 1 cycle each "
                    "at the board's clock; QEMU's own time is virtual, not the silicon's.",
    "cycles": "{label}: core cycles counted on the board; ms/sample = cycles / its clock.",
}


def _compute_note(s: dict[str, Any], emphasis: str = "*") -> str:
    labels = {(v["compute"]["unit"], v["compute"]["label"]) for v in s["nodes"].values() if v["compute"]}
    return " ".join(COMPUTE_NOTES[u].format(label=f"{emphasis}{lab}{emphasis}") for u, lab in sorted(labels))


#: How the report says where a board came from (host.net.launch.BoardSource.how).
BOARD_ORIGIN = {"port": "--port", "labgrid": "labgrid place (--labgrid)", "uploaded": "uploaded (pio run -t upload; left running)",
                "running": "--start-boards (left running)", "launched": "launched for this run"}
NODE_HEADER = ["node", "id", "bit-exact answers", "mismatch", "both no output", "not fed / silent", "mux choice",
               "compute/sample", "counted as", "ms/sample", "STATS samples", "STATS CRC drops", "corrupted sent",
               "input timeouts", "overruns", "board counters"]
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


#: How the report words a reason (host.net.records.REASONS, DEGRADED_REASONS).
REASON_TEXT = {"node_silent": "node silent", "link_cut": "link cut", "frame_lost": "frame lost",
               "corrupted": "corrupted", "no_input": "no input", "interrupted": "interrupted",
               "deadline": "an input came after the board's deadline",
               "late": "an input came after the board had computed 32 newer samples",
               "upstream_down": "a producer board had no input and sent LINK_DOWN",
               "not_sent": "a producer board sent nothing on a link"}


def _reason_text(s: dict[str, Any]) -> str:
    parts = []
    sm = s["samples"]
    for outcome in ("timed_out", "failed"):
        for reason, n in sm["reasons"][outcome].items():
            parts.append(f"{n} {outcome.replace('_', ' ')} ({REASON_TEXT.get(reason, reason)})")
    for reason, n in sm["degraded_answers"].items():
        parts.append(f"{n} answered without some input ({REASON_TEXT.get(reason, reason)})")
    return "; ".join(parts) or "none"


def _answers_text(s: dict[str, Any]) -> str:
    """Answered = complete + degraded, and the complete answers whose unused skip input came late."""
    sm = s["samples"]
    text = f"{sm['answered']} answered = {sm['complete_answers']} with every input they used + " \
           f"{sum(sm['degraded_answers'].values())} without some input"
    if sm.get("unused_skip_late"):
        text += f" ({sm['unused_skip_late']} of the complete ones had a skip input they did not need arrive only " \
                f"after the answer: a mux computes as soon as its primary input is there)"
    return text


def _event_text(dep: Deployment, e: dict[str, Any], bold: str = "") -> str:
    when = "before the first sample" if e["sample"] is None else f"sample {e['sample']}"
    return f"{e['t_s']:.2f} s ({when}): {bold}{dep.node_label(e['node'])}{bold} {e['kind']} {e['detail']}".rstrip()


def _reboot_text(dep: Deployment, s: dict[str, Any]) -> list[str]:
    out = []
    for name, v in s["nodes"].items():
        if v.get("reboots"):
            out.append(f"{dep.node_label(name)} rebooted {v['reboots']}x during the run: its STATS counts are the "
                       f"sum of {v['stats_segments']} segments, one per boot (each up to the last STATS the host "
                       f"read before the reboot; the host asks every 2 s, and right before it kills a board).")
    return out


def build_report(dep: Deployment, report: dict[str, Any]) -> str:
    from host.report_files import md_table

    runs = report["runs"]
    m = dep.manifest
    lines = [f"# Harness: {m.get('preset')} / {m.get('scheme')} on the boards",
             "",
             f"Build `{report['build']}`; {report['samples']} test samples (seed {report['seed']}), up to "
             f"{report['window']} in flight, host deadline {report['deadline_ms']} ms, board deadline "
             f"{dep.board_deadline_ms} ms (1, 1.5, 2, … × by the node's depth, up to {dep.max_depth}). Accuracy: a sample without a result counts as the random guess "
             f"g = {_pct(dep.random_guess)} % (as in host/ml/evaluate.py); float = the float model on the whole "
             f"test set (the build's evaluation); int8 host = tflite_micro per node with the links that "
             f"actually reached each board; bit-exact = board answers (every DATA tensor and the RESULT of a "
             f"node for a sample) identical to the host reference.",
             "",
             "## Boards",
             "",
             md_table(["node", "id", "board", "port", "how", "firmware", "cycle counter", "flash B", "arena B",
                       "clock Hz"],
                      [[dep.node_label(n), b["node_id"], b["board"], f"`{b['url']}`", BOARD_ORIGIN[b["attached"]],
                        b.get("fw") or "—", b.get("cycle_counter") or "—",
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
                  f"Failures injected: dropped {', '.join(map(dep.node_label, s['config']['dead'])) or 'none'}, "
                  f"cut links {', '.join(s['config']['cut_links']) or 'none'}, loss {s['config']['loss']}, corrupt "
                  f"{s['config']['corrupt']}"
                  + "".join(f", {dep.node_label(k['node'])} killed before sample {k['at']}"
                            + (f" and booted again before sample {k['back']}" if k["back"] is not None else "")
                            for k in s["config"].get("kills", [])) + f". Samples lost and why: {_reason_text(s)}.",
                  f"All {s['samples']['sent']} samples accounted for: {s['samples']['accounted']}; "
                  f"{_answers_text(s)}." + (" Interrupted (Ctrl-C)." if s["samples"]["interrupted"] else ""), ""]
        lines += _reboot_text(dep, s) + ([""] if _reboot_text(dep, s) else [])
        if s["latency_ms"]:
            lat = s["latency_ms"]
            lines += [f"Latency per answered sample: mean {lat['mean']:.1f} ms, p50 {lat['p50']:.1f}, "
                      f"p95 {lat['p95']:.1f}, max {lat['max']:.1f} ms. Throughput {s['throughput']['answered_per_s']:.2f}"
                      f" samples/s over {s['throughput']['wall_s']:.1f} s.", ""]
        if s["corrupt"]["frames_corrupted"]:
            lines += [f"Corrupted frames sent: {s['corrupt']['frames_corrupted']}; CRC drops counted by the "
                      f"boards' STATS: {s['corrupt']['crc_drops_by_boards']}.", ""]
        lines += [md_table(NODE_HEADER, _node_rows(s)), ""] + ([_compute_note(s), ""] if _compute_note(s) else [])
        lines += [md_table(LINK_HEADER, _link_rows(s["wire"])), ""]
        if s["events"]:
            lines += ["Board events:", ""] + [f"* {_event_text(dep, e, '**')}" for e in s["events"]] + [""]
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

    def plot(ax: Any) -> None:
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
                          *_compute_cells(v["compute"], short=True),
                          f"{d.get('rx_crc', '—')}/{v['corrupted_frames_sent']}", d.get("input_timeouts", "—"),
                          v["late_inputs"]])
        console.print(table("nodes", ["node", "bit-exact", "mism", "mux", "per sample", "unit", "ms",
                                      "CRC/corr",
                                      "in.t/o", "late"], nrows))
        wrows = [[k, sum(w["frames"].values()), f"{w['wire_bytes']:,}", f"{w['tensor_bytes']:,}",
                  f"{w['overhead_pct_of_tensor']:.2f}" if w["overhead_pct_of_tensor"] is not None else "—",
                  w["wire_bytes_per_sample"]] for k, w in s["wire"].items()]
        console.print(table("wire per link", ["link", "frames", "wire B", "tensor B", "ovh %", "B/sample"], wrows))
        if _compute_note(s):
            console.print(_compute_note(s, emphasis=""), markup=False)
        console.print(f"samples lost and why: {_reason_text(s)}")
        console.print(_answers_text(s))
        for line in _reboot_text(dep, s):
            console.print(line)
        for e in s["events"]:
            console.print(f"  {_event_text(dep, e)}", markup=False)
    else:
        console.print(table("bit-exact per node (%)", ["configuration"] + list(dep.nodes),
                            [[r["label"]] + [_pct(r["nodes"][n]["bit_exact"]) for n in dep.nodes] for r in runs]))



def write_reports(dep: Deployment, report: dict[str, Any], *, sweep: bool, out: Path | None,
                  json_path: Path | None) -> dict[str, Path]:
    """``<out>/harness.md/.json/.png`` (``harness_sweep.*`` for a sweep; ``out`` defaults to
    ``<build>/harness``) and one more copy of the JSON at ``json_path``; returns what was written."""
    from host.report_files import write_report

    out = Path(out) if out is not None else dep.build / "harness"
    stem = "harness_sweep" if sweep else "harness"
    paths = write_report(out, stem, build_report(dep, report), report, plot_runs(dep, report["runs"]))
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(paths["json"].read_text())
        paths["json_copy"] = Path(json_path)
    return paths


class ProgressBar:
    """The console's progress bar of one run (outcomes so far, rate, boards silent now)."""

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
        wall = max(1e-9, time.monotonic() - (run.t_stream or run.t_start))
        silent = {e.node for e in run.events if e.kind == "silent"} - {e.node for e in run.events if e.kind == "back"}
        info = f"answered {ans}, timed out {sum(r.outcome == 'timed_out' for r in done)}, " \
               f"failed {sum(r.outcome == 'failed' for r in done)}, {ans / wall:.1f}/s" \
               + (f", silent: {', '.join(sorted(silent))}" if silent else "")
        self.p.update(self.task, completed=len(done), info=info)

    def close(self) -> None:
        self.p.stop()


def progress_bar(console: Any, enabled: bool, label: str, total: int) -> ProgressBar | None:
    if not enabled or console is None:
        return None
    return ProgressBar(console, label, total)
