"""Section ``stress``: the randomized kernel stress test (issue 17) at scale.

Seeded random single-op cases (tests/kernel_stress.py: convolution, depthwise with every channel multiplier,
FC, add, mul, pools, softmax; random shapes and quantization; half of the window cases overlapping their input
in the arena) run on the plain C kernels (host), the DSP path emulated in C (host-dsp) and the real Cortex-M4
DSP path (QEMU mps2-an386, one boot per model), every output byte compared with the TFLM interpreter.
A case = one op instance on one random input. >= 100 k cases per host target; QEMU takes fewer (its UART
moves ~17 KB/s, so inputs, not kernels, bound it), the first models' cases.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench_common import REPO, log

TESTS = REPO / "tests"
OPS = 60            # cases per model
SAMPLES = 80        # random inputs per case (cheap: compiling a model's module is what costs on the host)
MODELS = 21         # 21 x 60 x 80 = 100,800 cases per host target (1,260 random op instances)
QEMU_MODELS = 4     # 19,200 cases on the emulated M4 (~2-4 min: the UART, not the kernels, bounds it)
FIRST_SEED = 1000


def section_stress(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from kernel_stress import build_stress_model, check_stress_model

    models = 3 if args.quick else MODELS
    qemu_models = 1 if args.quick else QEMU_MODELS
    work = args.work / "stress"
    res: dict[str, Any] = {"ops_per_model": OPS, "samples": SAMPLES, "models": models, "first_seed": FIRST_SEED,
                           "targets": {}, "kinds": {}, "failures": []}
    for k in range(models):
        seed = FIRST_SEED + k
        model = build_stress_model(seed, OPS, work / "models")
        for case in model.cases:
            res["kinds"][case.kind] = res["kinds"].get(case.kind, 0) + 1
        for target in ("host", "host-dsp", "qemu"):
            if target == "qemu" and k >= qemu_models:
                continue
            t0 = time.monotonic()
            tally = res["targets"].setdefault(target, {"cases": 0, "failed_cases": 0, "seconds": 0.0, "models": 0})
            try:
                r = check_stress_model(model, target, SAMPLES, work / f"{seed}-{target}")
            except Exception as e:  # noqa: BLE001  (a model that fails to build is a finding, not the end)
                res["failures"].append(f"{target}: seed {seed}: {type(e).__name__}: {e}"[:400])
                log(f"stress seed {seed} {target}: FAILED {e}")
                continue
            tally["cases"] += r.cases
            tally["failed_cases"] += r.failed_cases
            tally["seconds"] = round(tally["seconds"] + time.monotonic() - t0, 1)
            tally["models"] += 1
            res["failures"].extend(f"{target}: {f}" for f in r.failures)
        log(f"stress seed {seed}: " + ", ".join(f"{t} {v['cases']}" for t, v in res["targets"].items()))
    return res
