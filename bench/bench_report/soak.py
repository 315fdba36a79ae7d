"""## Soak: 10,000 samples on the emulated har boards with frame loss, bit errors and a board killed twice —
every sample accounted, every tensor bit-exact, the host's memory and the boards' counters over the run."""
from __future__ import annotations

from typing import Any

from .formatting import err_of, f2, n0, pct, table

VERDICT_TEXT = {
    "every_sample_accounted": "every sample accounted (sent = answered + timed out + failed)",
    "every_answer_bit_exact": "every tensor the boards sent bit-exact with the host int8 reference",
    "boards_equal_int8_host": "board accuracy = int8 host accuracy",
    "kills_seen": "each kill seen (board silent) and each reboot picked up again (back)",
    "crc_drops_equal_corrupted_frames": "CRC drops counted by each board = frames the host corrupted to it",
    "no_error_counters": "no runtime error counter (bad tensors, invoke/tx errors, unknown links, overruns) above 0",
}
#: STATS counters shown per board (the rest are in BENCHMARKS.json).
BOARD_FIELDS = ("rx_frames", "tx_frames", "samples", "rx_crc", "input_timeouts", "rx_stale", "late_inputs",
                "evictions", "samples_down")


def _kb_mb(kb: Any) -> str:
    return "—" if kb is None else f"{kb / 1024:,.1f}"


def _head(S: dict[str, Any]) -> str:
    sm, kills = S["outcomes"], ", ".join(f"{k['node']}@{k['at']}:{k['back']}" for k in S["kills"])
    be = S["bit_exact"]
    return (
        f"`{S['command']}` — build `{S['build']}` ({S['preset']}/{S['scheme']}, board deadline "
        f"{S['board_deadline_ms']} ms, host deadline {S['host_deadline_ms']} ms, window {S['window']}); the "
        f"{n0(S['test_set'])}-sample test set gone round {S['passes_over_test_set']} times; kills {kills}. "
        f"Wall time {f2(S['wall_s'], 0)} s ({f2(S['stream_s'], 0)} s streaming, {f2(S['sent_per_s'], 1)} "
        f"samples/s; a loaded 2-core machine).\n\n"
        f"**{n0(sm['sent'])} sent = {n0(sm['answered'])} answered + {n0(sm['timed_out'])} timed out + "
        f"{n0(sm['failed'])} failed**; {n0(be['identical'])} of {n0(be['compared'])} tensors bit-exact; "
        f"accuracy on the boards {pct(S['accuracy']['boards'])} % (int8 host {pct(S['accuracy']['int8_host'])} %, "
        f"answered only {pct(S['accuracy']['boards_answered_only'])} %; a sample without an answer counts as the "
        f"random guess); latency p50 / p95 {f2(S['latency_ms']['p50'], 0)} / {f2(S['latency_ms']['p95'], 0)} ms. "
        f"Answered without some input: "
        + (", ".join(f"{k} {n0(v)}" for k, v in sorted(sm["degraded_answers"].items())) or "none")
        + "; not answered: " + (", ".join(f"{o} {k} {n0(v)}" for o in ("timed_out", "failed")
                                         for k, v in sorted(sm["reasons"][o].items())) or "none") + ".\n\n")


def _verdicts(S: dict[str, Any]) -> str:
    return "".join(f"- {'✔' if ok else '**✘**'} {VERDICT_TEXT.get(k, k)}\n" for k, ok in S["verdicts"].items()) + "\n"


def _rss(S: dict[str, Any]) -> str:
    r = S["rss"]
    if not r.get("polls"):
        return "Host memory: not sampled.\n\n"
    return (f"**Host memory** (VmRSS of the `host.harness` process, every {r['poll_s']:g} s, {r['polls']} polls; "
            f"% = share of the streaming time, which is about the share of the samples): "
            f"{_kb_mb(r['at_10pct_kb'])} MB at 10 %, {_kb_mb(r['at_50pct_kb'])} MB at 50 %, "
            f"{_kb_mb(r['at_100pct_kb'])} MB at 100 %, {_kb_mb(r['at_end_kb'])} MB after the checks and the report, "
            f"peak {_kb_mb(r['max_kb'])} MB; while streaming {f2(r['growth_kb_per_1000_samples'], 0)} kB per 1000 "
            f"samples (a sample is checked once 128 newer ones were sent and then kept as a record of about "
            f"350 bytes for the report; before that change the same soak grew 4.4 MB per 1000 samples). The emulated boards (the QEMU processes it launched, together): "
            f"{_kb_mb(r['boards_at_10pct_kb'])} MB at 10 %, {_kb_mb(r['boards_at_100pct_kb'])} MB at 100 %, "
            f"peak {_kb_mb(r['boards_max_kb'])} MB.\n\n")


def _boards(S: dict[str, Any]) -> str:
    rows = []
    for name, b in S["boards"].items():
        st = b["stats"]
        rows.append([f"`{name}`", *(n0(st.get(f)) for f in BOARD_FIELDS), n0(b["corrupted_frames_sent"]),
                     b["reboots"], b["stats_segments"], f"{n0(b['identical'])}/{n0(b['compared'])}",
                     ", ".join(f"{k} {v}" for k, v in b["error_counters"].items()) or "0"])
    head = ["board", *BOARD_FIELDS, "corrupted by host", "reboots", "STATS segments", "bit-exact", "errors"]
    return ("**Each board's STATS counters over the run** (summed over its boots; the host reads STATS every "
            "2 s and right before a kill, so a reboot loses none):\n\n"
            + table(head, rows) + "\n")


def _chunks(S: dict[str, Any]) -> str:
    kills = [(k["at"], k["back"]) for k in S["kills"]]
    rows = []
    for c in S["chunks"]:
        down = any(a <= c["last"] and b > c["first"] for a, b in kills)
        rows.append([f"{n0(c['first'])}–{n0(c['last'])}" + (" (edge down part of it)" if down else ""),
                     n0(c["answered"]), n0(c["timed_out"]), n0(c["failed"]), pct(c["accuracy_answered"], 1),
                     f"{n0(c['boards_eq_int8_host'])}/{n0(c['sent'])}", f2(c["latency_p50_ms"], 0),
                     f2(c["latency_p95_ms"], 0)])
    return ("**Per chunk of samples** (host side, from the report's per-sample rows):\n\n"
            + table(["samples", "answered", "timed out", "failed", "accuracy answered %",
                     "board = int8 host", "p50 ms", "p95 ms"], rows) + "\n")


def md_soak(R: dict[str, Any]) -> str:
    """The soak section of BENCHMARKS.md from ``R["soak"]`` (bench/soak.py)."""
    S = R.get("soak")
    out = "## Soak: 10,000 samples, frame loss, bit errors, a board killed twice\n\n"
    if err_of(S):
        return out + f"Not measured: {err_of(S)}\n\n"
    events = "; ".join(f"{e['node']} {e['kind']} at sample {e['sample']} ({e['t_s']:.0f} s)" for e in S["events"])
    mism = "".join(f"- mismatch: {m}\n" for m in S["mismatches"])
    return (out + _head(S) + _verdicts(S) + (mism + "\n" if mism else "") + f"Board events: {events or 'none'}.\n\n"
            + _rss(S) + _boards(S) + _chunks(S))
