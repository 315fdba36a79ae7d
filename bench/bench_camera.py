"""Section ``camera``: the camera preset (issue 14, spec §3.5) on its emulated boards (one per node: 6 cameras,
4 edges, 4 fogs and the cloud), ResiliNet. Its own build (reused when one of the same size is there), the int8
split network on the host, then ``host.harness --sweep``: all 256 failure configurations of its 8 failable nodes,
each on a few samples, every node output compared with the int8 reference. The same columns as the resilience
table (bench/bench_resilience.py), plus the sweep's accounting and its single-node failures.

Sizes (``--quick`` / full): 2 / 12 training epochs (the spec's 50 take ~40 min on 2 cores), 100 / 300 int8 host
samples, 4 / 12 samples per configuration on the boards (256 x 12 = 3,072 samples through 15 boards)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench_builds import run_build
from bench_common import bench_build_dir, has_firmware, load_manifest, log, rel
from bench_harness import run_harness
from bench_resilience import boards_column, float_experiment, host_columns

CAMERA = "camera"
#: Only ResiliNet: each scheme is another 15-board build and sweep.
SCHEME = "resilinet"
EPOCHS = {"quick": 2, "full": 12}
#: int8 host evaluation samples (x 256 configurations x 15 node interpreters)
INT8_SAMPLES = {"quick": 100, "full": 300}
#: samples per failure configuration on the boards (256 x 200, as the other presets, would take hours)
SWEEP_SAMPLES = {"quick": 4, "full": 12}
BUILD_TIMEOUT_S = 5400.0
SWEEP_TIMEOUT_S = 7200.0


def camera_build_dir(args: argparse.Namespace, size: str) -> Path:
    """The full build sits beside the other bench builds (``build/bench-camera``); a ``--quick`` one in the scratch
    directory, so that a later full run never mistakes it for its own."""
    return bench_build_dir(CAMERA, SCHEME) if size == "full" else args.work / f"bench-{CAMERA}-quick"


def reusable(build: Path, epochs: int, int8_samples: int) -> bool:
    """Whether ``build`` is a complete camera build of this size (the same epochs and int8 samples)."""
    if not has_firmware(build):
        return False
    m = load_manifest(build)
    nodes = m.stages.nodes
    return (m.preset == CAMERA and (m.stages.train.config or {}).get("epochs") == epochs
            and nodes is not None and nodes.int8_eval_samples == int8_samples)


def sweep_summary(h: dict[str, Any]) -> dict[str, Any]:
    """What the sweep did, configuration by configuration (compact: the raw report stays in the harness JSON)."""
    configs = []
    for r in h.get("runs", []):
        s, be, acc = r["samples"], r.get("bit_exact") or {}, r.get("accuracy") or {}
        configs.append({"bits": r["config"]["bits"], "dead": r["config"]["dead"], "has_path": r["config"]["has_path"],
                        "sent": s["sent"], "answered": s["answered"], "mismatches": len(r.get("mismatches") or []),
                        "identical": be.get("identical", 0), "compared": be.get("compared", 0),
                        "boards": acc.get("boards"), "int8_host": acc.get("int8_host")})
    with_path = [c for c in configs if c["has_path"]]
    return {
        "configurations": len(configs), "with_path": len(with_path),
        "with_path_all_answered": sum(c["answered"] == c["sent"] for c in with_path),
        "without_path_answered": sum(c["answered"] for c in configs if not c["has_path"]),
        "samples_sent": sum(c["sent"] for c in configs), "samples_answered": sum(c["answered"] for c in configs),
        "identical": sum(c["identical"] for c in configs), "compared": sum(c["compared"] for c in configs),
        "mismatches": sum(c["mismatches"] for c in configs), "configs": configs}


def section_camera(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """The camera preset's resilience table: float, int8 host and boards, with the sweep's bit-exact counts."""
    size = "quick" if args.quick else "full"
    logs = args.work / "logs"
    d = camera_build_dir(args, size)
    res: dict[str, Any] = {"preset": CAMERA, "scheme": SCHEME, "size": size, "epochs": EPOCHS[size],
                           "int8_samples": INT8_SAMPLES[size], "sweep_samples": SWEEP_SAMPLES[size], "build": rel(d),
                           "float": {}, "int8_host": {}, "boards": {}, "notes": []}
    float_experiment(res, CAMERA)
    if reusable(d, EPOCHS[size], INT8_SAMPLES[size]):
        log(f"build {CAMERA}/{SCHEME}: reusing {rel(d)}")
        res["build_reused"] = True
    else:
        log(f"build {CAMERA}/{SCHEME} ({EPOCHS[size]} epochs, {INT8_SAMPLES[size]} int8 samples) -> {rel(d)}")
        r = run_build(CAMERA, SCHEME, d, logs, INT8_SAMPLES[size], f"{CAMERA}-{SCHEME}", timeout=BUILD_TIMEOUT_S,
                      epochs=EPOCHS[size])
        res["build_reused"], res["build_timings_s"] = False, r["timings_s"]
    man = load_manifest(d)
    res["boards_count"] = len(man.nodes)
    res["failable"] = list(man.failure_order)
    res["dataset"] = man.dataset.name
    ev = host_columns(res, SCHEME, d)
    res["path_probability"] = ev["path_probability"]
    if args.no_boards:
        res["notes"].append("boards: not run (--no-boards)")
        return res
    log(f"harness --sweep {CAMERA}/{SCHEME} ({SWEEP_SAMPLES[size]} samples per configuration, "
        f"{res['boards_count']} boards)")
    h = run_harness(d, args.work / "harness", logs, f"sweep-{CAMERA}-{SCHEME}", SWEEP_SAMPLES[size], True, None,
                    timeout=max(args.harness_timeout, SWEEP_TIMEOUT_S))
    if not h.get("sweep"):
        raise RuntimeError(f"host.harness --sweep of {rel(d)} wrote no sweep (exit {h['_bench']['exit']})")
    res["boards"][SCHEME] = boards_column(h, ev, d)
    res["sweep"] = sweep_summary(h)
    res["sweep"]["wall_s"] = h["_bench"]["wall_s"]
    return res
