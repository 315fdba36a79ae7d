"""Section ``compute``, depthwise part: the VWW-style MobileNet v1 0.25 (our fourth benchmark model, built by
``bench/vww_model.py``) and the per-shape depthwise table (``bench/depthwise_shapes.py``), DSP and plain C."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench_common import log

#: TFLM + CMSIS-NN on the MLPerf Tiny VWW model (same architecture, MLPerf's weights), instructions per inference
#: on QEMU mps2-an386 (issue 17), and the best published Cortex-M4 figure (X-CUBE-AI 9.0, cycles @120 MHz).
VWW_TFLM_INSTRUCTIONS = 24_100_000
VWW_XCUBE_CYCLES = 10_670_000
VWW_TARGET_INSTRUCTIONS = 12_000_000
#: Issue 17's target for every depthwise shape, DSP path.
DEPTHWISE_TARGET_PER_MAC = 2.5


def measure_vww(work: Path, kernels: Path, measure_pair: Any) -> dict[str, Any]:
    """Build (cached) and measure the VWW model with ``bench_compute.measure_pair``; adds the reference figures."""
    import vww_model

    t0 = time.perf_counter()
    path = vww_model.build_vww_model()
    log(f"compute vww_mobilenet_025 (model {path}, {time.perf_counter() - t0:.1f} s)")
    r = measure_pair(path, work / "vww_mobilenet_025", "vww_mobilenet_025", kernels)
    r["tflm_cmsis_nn_instructions"] = VWW_TFLM_INSTRUCTIONS
    r["ours_over_tflm"] = r["instructions_dsp"] / VWW_TFLM_INSTRUCTIONS
    r["target_instructions"] = VWW_TARGET_INSTRUCTIONS
    r["published_best_cycles"] = VWW_XCUBE_CYCLES
    return r


def measure_depthwise_shapes(work: Path, kernels: Path) -> list[dict[str, Any]]:
    """Every shape of ``depthwise_shapes.SHAPES``: instructions per MAC on both paths, bit-exactness."""
    import depthwise_shapes

    rows = []
    for shape in depthwise_shapes.SHAPES:
        log(f"compute depthwise shape {shape.name}")
        rows.append(depthwise_shapes.measure_shape(shape, kernels, work / "depthwise-shapes"))
    return rows


def add_depthwise_figures(res: dict[str, Any], work: Path, kernels: Path, measure_pair: Any) -> None:
    """Fill ``res["vww"]`` and ``res["depthwise_shapes"]``; failures go to ``res["errors"]`` like the rest."""
    try:
        res["vww"] = measure_vww(work, kernels, measure_pair)
    except Exception as e:  # noqa: BLE001
        res["errors"]["vww_mobilenet_025"] = f"{type(e).__name__}: {e}"
        log(f"  FAILED: {e}")
    try:
        res["depthwise_shapes"] = measure_depthwise_shapes(work, kernels)
    except Exception as e:  # noqa: BLE001
        res["errors"]["depthwise shapes"] = f"{type(e).__name__}: {e}"
        log(f"  FAILED: {e}")
