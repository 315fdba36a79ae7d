"""Section ``corpus``: the op corpus of tests/op_corpus/ (LSTM, SVDF, 16x8, transpose conv, float I/O, ...) on
QEMU mps2-an386: executed instructions per inference, arena (state included), weights and MACs per model.

The models are built with TensorFlow's converter exactly as the test suite builds them (same seeds), generated
with ``codegen`` and run with :class:`codegen.qemu_target.QemuTarget`; every output is compared with tflite_micro,
so a figure is only recorded for a model that is bit-exact.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench_common import REPO, log

TESTS = REPO / "tests"
SAMPLES = 4


def measure_corpus_model(name: str, path: Path, work: Path) -> dict[str, Any]:
    """One corpus model on the emulated M4: median instructions per inference, arena, weights, MACs."""
    from codegen import generate_module
    from codegen.qemu_target import QemuTarget
    from codegen.verify import compare, tflm_reference
    from codegen_support import mixed_samples  # tests/codegen_support.py: the suite's sample generator

    module = generate_module(path, work / "module")
    data = mixed_samples(module, SAMPLES, seed=18)
    target = QemuTarget("qemu_an386", verbose=False)
    got = target.build(module, work / "build").run(data)
    bad = [r.name for r in compare(module, got, tflm_reference(path, module, data)) if r.mismatched_bytes]
    if bad:
        raise RuntimeError(f"{name}: outputs differ from tflite_micro ({', '.join(bad)})")
    stats = target.stats
    ins = sorted(stats.instructions) if stats is not None else []
    ops = sorted({op.op_type for op in module.ops})
    return {"instructions": ins[len(ins) // 2] if ins else None, "arena_bytes": module.arena_bytes,
            "state_bytes": module.state_bytes, "scratch_bytes": module.scratch_bytes,
            "weight_bytes": module.weight_bytes, "macs": module.macs, "ops": ops,
            "io": [io.dtype for io in module.inputs] + [io.dtype for io in module.outputs]}


def section_corpus(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from op_corpus import build_model, corpus_builders

    work = args.work / "corpus"
    builders = corpus_builders()
    res: dict[str, Any] = {"models": {}, "errors": {}, "samples": SAMPLES}
    for name in sorted(builders):
        log(f"corpus {name}")
        try:
            path = build_model(name, work / "models", builders)
            res["models"][name] = measure_corpus_model(name, path, work / name)
        except Exception as e:  # noqa: BLE001  (one failed model must not lose the others' figures)
            res["errors"][name] = f"{type(e).__name__}: {e}"
            log(f"  FAILED: {e}")
    return res
