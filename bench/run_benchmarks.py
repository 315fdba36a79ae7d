#!/usr/bin/env python3
"""``make bench``: measure compute, memory, links, resilience and the host toolchain; write BENCHMARKS.md/.json.

    .venv/bin/python bench/run_benchmarks.py [--quick] [--only SECTION ...] [--skip SECTION ...]
                                              [--build-runs N] [--harness-samples N] [--all-schemes]
                                              [--render-only]

Sections (each one fails on its own: the report then says "not measured" and why):

* ``builds``     -- ``host.build --preset fashion --scheme resilinet`` N times (fresh directory each run, cached
                    model; the last run is ``build/bench-fashion`` with the int8 evaluation on the whole test set)
                    and once ``--preset har`` into ``build/bench-har``. Feeds every other section.
* ``compute``    -- executed instructions per inference on QEMU mps2-an386 (Cortex-M4 + DSP) with
                    ``bench/kernel_instructions.py`` (exact: -icount + CMSDK timer), for the three MLPerf Tiny
                    models and every node of the two builds; DSP kernels and the same kernels' plain-C path
                    (``-U__ARM_FEATURE_DSP``: ``resilinet_dsp.h`` then sets ``RESILINET_HAS_DSP 0``); cross-check with
                    ``python -m codegen verify --target qemu``.
* ``stress``     -- randomized kernel stress test: >= 100 k random single-op cases on host, host-dsp (and a
  share on qemu) vs tflite_micro (bench/bench_stress.py)
* ``corpus``     -- the op corpus of tests/op_corpus/ (LSTM, SVDF, 16x8, transpose conv, float I/O, shape ops) on
                    QEMU mps2-an386: instructions per inference, arena (with state), weights; bit-exact first.
* ``soak``       -- only with ``--only soak`` (~20 min): 10,000 samples of ``har`` with 10 % loss, 10 % corruption and
                    the edge killed and restarted twice (bench/soak.py): accounting, bit-exactness, host RSS, counters.
* ``memory``     -- per node: the ELF's sections and its link map (weights, code by origin, arena, buffers,
                    stack); per MLPerf model: the generated module's arena vs its lower bound and vs TFLM's.
* ``links``      -- bytes per inference per link, wire overhead (host.net.protocol framing), end-to-end latency on
                    the emulated boards (``host.harness``) and projected for real UARTs.
* ``resilience`` -- the paper's table: float (build/experiments), int8 host (build manifests), boards
                    (``host.harness --sweep``), next to the path-probability cap.
* ``camera``     -- the camera preset (issue 14) on its 15 emulated boards, ResiliNet (bench/bench_camera.py): its own
                    build (12 epochs, int8 host on 300 samples) and ``host.harness --sweep`` of all 256 failure
                    configurations at 12 samples each, bit-exact counts, next to the resilience columns (~35 min on
                    2 loaded cores; ``--quick``: 2 epochs, 100 int8 samples, 4 per configuration, ~16 min).
* ``toolchain``  -- wall time of each host.build stage (median over the runs), ``codegen generate`` on ResNet-8.
* ``user_model`` -- a user's own Keras model (Keras Applications' MobileNet, alpha 0.25) split over four emulated
                  boards with ``host.build --model`` (bench/bench_user_model.py): per node layers, MACs, flash,
                  RAM; ``host.harness`` with nothing failed and fog / edge dropped, bit-exact (~15 min).
* ``distribute`` -- fashion trained with ``--distribute none``, ``mirrored`` and ``multiworker`` (2 local workers,
                  ``host.ml.launch_workers``; bench/bench_distribute.py): wall time, equal worker weights, weight
                  difference and accuracy per failure configuration vs one device (~5 min).

Timings are medians of repeated runs; comparisons are ratios measured in the same run. Not part of make test.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: the modules below, however this file is run

from bench_builds import section_builds, section_toolchain  # noqa: E402
from bench_camera import section_camera  # noqa: E402
from bench_common import DEFAULT_SECTIONS, REPO, SECTIONS, log, machine_info, rel, section_provenance  # noqa: E402
from bench_compute import section_compute  # noqa: E402
from bench_corpus import section_corpus  # noqa: E402
from soak import section_soak  # noqa: E402
from bench_links import section_links  # noqa: E402
from bench_memory import section_memory  # noqa: E402
from bench_resilience import section_resilience  # noqa: E402
from bench_stress import section_stress  # noqa: E402
from bench_user_model import section_user_model  # noqa: E402
from bench_distribute import section_distribute  # noqa: E402

Section = Callable[[argparse.Namespace, dict[str, Any]], dict[str, Any]]
#: What each section name runs; a section gets the arguments and the results so far (it may read earlier ones).
SECTION_FUNCTIONS: dict[str, Section] = {
    "builds": section_builds, "compute": section_compute, "corpus": section_corpus, "stress": section_stress, "soak": section_soak, "memory": section_memory,
    "links": section_links, "resilience": section_resilience, "camera": section_camera,
    "toolchain": section_toolchain,
    "user_model": section_user_model, "distribute": section_distribute}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; ``--quick`` and the defaults are resolved by :func:`apply_defaults`."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="one build run, int8 evaluation on 1000 samples, 40 harness samples, 3 codegen runs")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=None,
                    help="run only these sections (others keep their values from the existing BENCHMARKS.json)")
    ap.add_argument("--skip", nargs="+", choices=SECTIONS, default=[])
    ap.add_argument("--build-runs", type=int, default=None, help="host.build runs for the stage medians (default 3)")
    ap.add_argument("--int8-samples", type=int, default=None,
                    help="int8 evaluation samples of the reported builds (default: whole test set)")
    ap.add_argument("--harness-samples", type=int, default=None, help="test samples per configuration (default 200)")
    ap.add_argument("--latency-samples", type=int, default=None, help="samples of the one-at-a-time run (default 20)")
    ap.add_argument("--generate-runs", type=int, default=None, help="codegen generate runs (default 5)")
    ap.add_argument("--all-schemes", action="store_true",
                    help="also build and sweep vanilla, dfg and resilinet_plus (int8 host and boards columns)")
    ap.add_argument("--no-boards", action="store_true", help="do not run the emulated boards (host.harness)")
    ap.add_argument("--harness-timeout", type=float, default=1200.0)
    ap.add_argument("--work", type=Path, default=REPO / "build" / "bench", help="scratch directory (logs, runs)")
    ap.add_argument("--json", type=Path, default=REPO / "BENCHMARKS.json")
    ap.add_argument("--md", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--render-only", action="store_true", help="only rewrite the Markdown from the JSON")
    return ap.parse_args(argv)


def apply_defaults(args: argparse.Namespace) -> None:
    """Fill the run sizes left unset: small with ``--quick``, the full figures otherwise."""
    q = args.quick
    args.build_runs = args.build_runs or (1 if q else 3)
    args.int8_samples = args.int8_samples if args.int8_samples is not None else (1000 if q else None)
    args.int8_samples_other = args.int8_samples if args.int8_samples is not None else 2000
    args.harness_samples = args.harness_samples or (40 if q else 200)
    args.latency_samples = args.latency_samples or (8 if q else 20)
    args.generate_runs = args.generate_runs or (3 if q else 5)
    args.resilience_sources = ("float", "int8") if args.no_boards else ("float", "int8", "boards")


def start_results(args: argparse.Namespace, sections: list[str], argv: list[str] | None) -> dict[str, Any]:
    """The results dict before any section runs: with ``--only``, the previous run's figures for the others."""
    R: dict[str, Any] = {}
    if args.only and args.json.exists():
        R = json.loads(args.json.read_text())  # sections not run keep their previous values
        if {"links", "resilience"} & set(sections):
            R.pop("harness", None)
        if {"compute", "memory"} & set(sections):
            R.pop("kernels", None)
    R["machine"] = machine_info()
    R["run"] = {"command": "bench/run_benchmarks.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "quick": args.quick, "sections": sections, "build_runs": args.build_runs,
                "harness_samples": args.harness_samples, "latency_samples": args.latency_samples,
                "generate_runs": args.generate_runs, "int8_samples": args.int8_samples or "whole test set",
                "all_schemes": args.all_schemes, "boards": not args.no_boards,
                "niceness": os.nice(0)}
    if args.no_boards and {"links", "resilience"} & set(sections):
        R["harness"] = {"sweeps": {}, "latency": {}, "errors": {"all": "not run (--no-boards)"}}
    return R


def run_sections(args: argparse.Namespace, R: dict[str, Any], sections: list[str]) -> None:
    """Each section in turn; the JSON is rewritten after each one, so an interrupted run keeps what it measured."""
    for s in sections:
        log(f"== {s}")
        t0 = time.perf_counter()
        try:
            R[s] = SECTION_FUNCTIONS[s](args, R)
        except Exception as e:  # noqa: BLE001 -- a failed section is reported as not measured
            R[s] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            log(f"section {s} FAILED: {e}")
        R[s]["section_wall_s"] = round(time.perf_counter() - t0, 1)
        R[s]["measured"] = section_provenance(R["run"]["command"])
        args.json.write_text(json.dumps(R, indent=1, default=str))


def drop_raw_harness_data(R: dict[str, Any]) -> None:
    """Harness raw reports are big: keep the summaries the report uses, point at the files for the rest."""
    if "harness" in R:
        for kind in ("sweeps", "latency"):
            for k, h in R["harness"].get(kind, {}).items():
                for r in h.get("runs", []):
                    r.pop("per_sample", None)
                    r.pop("mismatches", None)
                    r.pop("events", None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench_report import compute_targets, render_markdown

    if args.render_only:
        R = json.loads(args.json.read_text())
        R["targets"] = compute_targets(R)
        args.md.write_text(render_markdown(R))
        log(f"wrote {rel(args.md)}")
        return 0
    apply_defaults(args)
    args.work.mkdir(parents=True, exist_ok=True)
    sections = [s for s in (args.only or DEFAULT_SECTIONS) if s not in args.skip]
    R = start_results(args, sections, argv)
    t_start = time.perf_counter()
    run_sections(args, R, sections)
    R["run"]["wall_s"] = round(time.perf_counter() - t_start, 1)
    R["machine"]["load_average_end"] = list(os.getloadavg())
    drop_raw_harness_data(R)
    R["targets"] = compute_targets(R)
    args.json.write_text(json.dumps(R, indent=1, default=str))
    args.md.write_text(render_markdown(R))
    log(f"wrote {rel(args.json)} and {rel(args.md)} in {R['run']['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
