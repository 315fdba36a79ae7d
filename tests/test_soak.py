"""bench/soak.py and what it needs from the harness: ``--samples`` beyond the test set goes round it again,
and the soak script runs the harness with loss, bit errors and two kills, samples its memory and summarises
the run (every sample accounted, every tensor bit-exact, each board's counters, per-chunk figures)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness_support import quick_build
from host.net.plan import pick_samples

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_report.soak import md_soak  # noqa: E402
from soak import RssSeries, chunk_table, rss_summary  # noqa: E402


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    return quick_build(tmp_path_factory, "fashion", 1500, 300, 100)   # the build of tests/test_harness.py


def test_samples_beyond_the_test_set_go_round_it_again():
    """Up to the test set: a seeded subset without repeats (as before); beyond it: the test set in order,
    again and again, until the number asked for."""
    sub = pick_samples(10, 4, seed=3)
    assert len(sub) == 4 and len(set(sub)) == 4 and list(sub) == sorted(sub)
    assert list(pick_samples(10, None, 0)) == list(range(10)) == list(pick_samples(10, 10, 0))
    assert list(pick_samples(4, 10, 0)) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_summary_parts_from_a_made_up_run():
    """The chunk table counts outcomes per chunk in sending order; the RSS summary reads the streaming window
    off the boards' appearance and reports growth per 1000 samples while streaming."""
    fields = ["index", "label", "outcome", "reason", "latency_ms", "board_pred", "int8_host_pred"]
    rows = [[i % 7, 1, "answered" if i % 5 else "timed_out", None, 10.0 + i, 1 if i % 2 else 0,
             1 if i % 2 else 0] for i in range(25)]
    ch = chunk_table({"sample_fields": fields, "per_sample": rows}, chunk=10)
    assert [(c["first"], c["last"], c["sent"]) for c in ch] == [(0, 9, 10), (10, 19, 10), (20, 24, 5)]
    assert [c["timed_out"] for c in ch] == [2, 2, 1] and all(c["boards_eq_int8_host"] == c["sent"] for c in ch)
    series = RssSeries(t_s=[0, 2, 4, 6, 8, 10, 12, 14], harness_kb=[50, 100, 110, 120, 130, 140, 200, 210],
                       boards_kb=[0, 0, 900, 900, 900, 900, 900, 0])
    r = rss_summary(series, samples=1000, stream_s=8.0)   # streaming from 4 s (boards up) to 12 s
    assert r["stream_window_s"] == [4, 12.0]
    assert (r["at_10pct_kb"], r["at_100pct_kb"], r["at_end_kb"], r["max_kb"]) == (110, 200, 210, 210)
    assert r["growth_kb_per_1000_samples"] == pytest.approx(90 / 0.9, abs=0.1)
    assert r["boards_max_kb"] == 900


def test_soak_script_bad_build_is_one_error_line(tmp_path):
    res = subprocess.run([sys.executable, "bench/soak.py", "--build", str(tmp_path / "nothing"), "--samples", "20",
                          "--out", str(tmp_path / "out"), "--json", str(tmp_path / "s.json")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "host.build" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.json").exists()


def test_soak_beyond_the_test_set_with_two_kills(build, tmp_path):
    """A small soak on the test build (300 test samples): 320 samples, so the harness goes round the test set
    once more, with a little loss, bit flips and the edge killed and booted again twice. Every sample accounted, every
    tensor bit-exact, both kills seen, the CRC drops equal the frames corrupted, the memory sampled; the
    Markdown says so; no QEMU left behind."""
    out, js, md = tmp_path / "soak", tmp_path / "soak.json", tmp_path / "soak.md"
    # less loss than the real soak: the test build's boards wait 1000 ms for a lost input (bench/soak.py)
    res = subprocess.run([sys.executable, "bench/soak.py", "--build", str(build), "--samples", "320", "--loss",
                          "0.005", "--corrupt", "0.005", "--out", str(out), "--json", str(js), "--md", str(md)],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    S = json.loads(js.read_text())["soak"]
    assert all(S["verdicts"].values()), S["verdicts"]
    sm = S["outcomes"]
    assert sm["sent"] == 320 and sm["answered"] + sm["timed_out"] + sm["failed"] == 320
    assert S["passes_over_test_set"] > 1 and S["kills"] == [{"node": "edge", "at": 96, "back": 112},
                                                             {"node": "edge", "at": 224, "back": 240}]
    raw = json.loads((out / "harness.json").read_text())["runs"][0]
    idx = [r[0] for r in raw["per_sample"]]
    assert idx[:300] == list(range(300)) and idx[300:] == list(range(20))   # round the test set again
    assert S["boards"]["edge"]["reboots"] == 2 and S["boards"]["edge"]["stats_segments"] == 3
    assert sum(b["corrupted_frames_sent"] for b in S["boards"].values()) > 0
    assert S["rss"]["polls"] >= 2 and S["rss"]["max_kb"] > 0
    text = md.read_text()
    assert "**320 sent = " in text and "✘" not in text
    assert md_soak({"soak": {**S, "verdicts": {**S["verdicts"], "every_answer_bit_exact": False}}}).count("✘") == 1
    # the boards are the harness's children, started from the build's images: none may outlive the soak
    left = subprocess.run(["pgrep", "-f", f"qemu-system-arm .*-kernel {build}/"], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
