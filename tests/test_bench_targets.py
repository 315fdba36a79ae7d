"""The Targets table of BENCHMARKS.md (bench/bench_report/targets*.py) on made-up figures: issue 17's per-model
verdicts need both the instruction count and the estimated cycles; the depthwise row names every shape over
2.5 instructions/MAC; sections measured by different runs each say when and at which commit."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_report.overview import md_sections_measured  # noqa: E402
from bench_report.targets_kernels import best_published_cycles, kernel_targets  # noqa: E402


def _model(instructions: int, cycles: int | None) -> dict:
    return {"instructions_dsp": instructions, "cycles": {"cycles_0ws": cycles} if cycles else None}


def _shape(name: str, ipm: float) -> dict:
    return {"name": name, "dsp_ins_per_mac": ipm}


def test_a_model_meets_its_target_only_with_both_instructions_and_cycles():
    assert best_published_cycles("ad_autoencoder_int8") == (4.05 * 120e3, "Plumerai (v1.1)")
    comp = {"mlperf": {"ic_resnet8_int8": _model(11_000_000, 19_000_000),   # both under
                       "kws_dscnn_int8": _model(3_000_000, 6_000_000),      # cycles over X-CUBE-AI's 5.18 M
                       "ad_autoencoder_int8": _model(300_000, None)},       # no estimate: not a verdict
            "vww": {**_model(13_000_000, 9_000_000), "published_best_cycles": 10_670_000},
            "depthwise_shapes": [_shape("a", 2.4), _shape("b", 2.6), _shape("c", 3.1)]}
    rows = kernel_targets({"compute": comp, "stress": {"targets": {"host": {"cases": 100_800, "failed_cases": 0},
                                                                    "qemu": {"cases": 19_200, "failed_cases": 0}}}})
    resnet, kws, vww, ad, dw, stress = rows
    assert resnet["met"] is True and resnet["note"] == ""
    assert kws["met"] is False and "X-CUBE-AI" in kws["note"] and "instructions" not in kws["note"]
    assert vww["met"] is False and "instructions 1.08× the target" in vww["note"]
    assert ad["met"] is None and "cycles not estimated" in ad["note"]
    assert dw["met"] is False and dw["measured"].startswith("1 of 3 shapes") and "b 2.60" in dw["note"]
    assert stress["met"] is True
    failing = kernel_targets({"compute": {}, "stress": {"targets": {"host": {"cases": 99_999, "failed_cases": 0}}}})
    assert failing[-1]["met"] is False and failing[-2]["met"] is None


def test_each_section_names_the_run_that_measured_it():
    R = {"compute": {"section_wall_s": 220.0, "measured": {"date_utc": "2026-12-07 23:50 UTC", "git_commit": "abc1234",
                                                           "git_uncommitted_paths": 2, "command": "x --only compute"}},
         "links": {"section_wall_s": 1000.0}}
    md = md_sections_measured(R)
    assert "| compute | 2026-12-07 23:50 UTC | abc1234 + 2 uncommitted | `x --only compute` | 220 |" in md
    assert "| links | an earlier run (before sections recorded it) |" in md and "| camera |" not in md
