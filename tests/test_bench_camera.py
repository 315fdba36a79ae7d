"""The ``camera`` bench section (bench/bench_camera.py, bench/bench_report/camera.py) on a made-up sweep: its
accounting of the harness report, its table in BENCHMARKS.md, and the resilience section no longer rendering
the camera (an older BENCHMARKS.json holds it there). The real section runs in ``make bench``, not here."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_camera import camera_build_dir, sweep_summary  # noqa: E402
from bench_common import SECTIONS, bench_build_dir  # noqa: E402
from bench_report import render_markdown  # noqa: E402
from bench_report.camera import md_camera  # noqa: E402
from bench_report.resilience import md_resilience  # noqa: E402


def _run(dead: list[str], has_path: bool, answered: int, identical: int, compared: int) -> dict:
    return {"config": {"bits": "x", "dead": dead, "has_path": has_path}, "samples": {"sent": 4, "answered": answered},
            "mismatches": [{"node": "f2"}] * (compared - identical),
            "bit_exact": {"compared": compared, "identical": identical},
            "accuracy": {"boards": answered / 8, "int8_host": answered / 8}}


HARNESS = {"runs": [_run([], True, 4, 56, 56), _run(["f1"], True, 4, 52, 52), _run(["f1", "f2"], True, 3, 40, 41),
                    _run(["f1", "f2", "f3", "f4"], False, 0, 24, 24)]}


def test_sweep_summary_counts_answers_and_identical_outputs():
    s = sweep_summary(HARNESS)
    assert (s["configurations"], s["with_path"], s["with_path_all_answered"]) == (4, 3, 2)
    assert s["without_path_answered"] == 0 and (s["samples_sent"], s["samples_answered"]) == (16, 11)
    assert (s["identical"], s["compared"], s["mismatches"]) == (172, 173, 1)
    assert [c["dead"] for c in s["configs"]][:2] == [[], ["f1"]]


def test_camera_table_is_its_own_section_and_not_in_resilience():
    camera = {"preset": "camera", "scheme": "resilinet", "size": "full", "epochs": 12, "int8_samples": 300,
              "sweep_samples": 4, "build": "build/bench-camera", "boards_count": 15, "failable": ["f1", "f2"],
              "dataset": "multiview_standin", "float": {}, "notes": [],
              "int8_host": {"resilinet": {"average": {"Hazardous": 0.5}, "cap": {"Hazardous": 0.6}, "samples": 300}},
              "boards": {"resilinet": {"average": {"Hazardous": 0.25}, "cap": {"Hazardous": 0.5}, "samples": 4,
                                       "bit_exact": {"identical": 172, "compared": 173}}},
              "path_probability": {"Hazardous": 0.9}, "sweep": {**sweep_summary(HARNESS), "wall_s": 12.0}}
    md = md_camera({"camera": camera})
    assert "15 boards" in md and "trained 12 epochs" in md
    assert 0 < md.index("| none | 4 / 4 | 56 / 56 |") < md.index("| f1 | 4 / 4 | 52 / 52 |")
    assert "f1, f2 |" not in md  # only nothing failed and the single failures are listed
    assert "**172 / 173** (1 mismatches)" in md and "| ResiliNet | boards |" in md
    assert "| ResiliNet | int8 host |" in md and "60.00 (0.833)" in md  # Hazardous cap (avg / cap)
    old = {"resilience": {"presets": {"camera": camera}}}
    assert "### camera" not in md_resilience(old) and "## 4a." in render_markdown({**old, "camera": camera})
    assert "Not measured: section not run" in md_camera({})


def test_section_is_listed_and_quick_builds_stay_out_of_the_full_builds_place(tmp_path):
    assert "camera" in SECTIONS
    args = argparse.Namespace(work=tmp_path)
    assert camera_build_dir(args, "full") == bench_build_dir("camera", "resilinet")
    assert camera_build_dir(args, "quick").parent == tmp_path
