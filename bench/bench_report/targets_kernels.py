"""The kernel targets of issue 17 against this run's figures: per model, instructions <= 0.5 x TFLM + CMSIS-NN and
estimated cycles below the best published Cortex-M4 figure; depthwise <= 2.5 instructions/MAC per shape; the
randomized stress test at >= 100 k cases per host target."""
from __future__ import annotations

from typing import Any

from bench_common import MLPERF
from bench_depthwise import DEPTHWISE_TARGET_PER_MAC as DEPTHWISE_TARGET
from bench_depthwise import VWW_TARGET_INSTRUCTIONS, VWW_XCUBE_CYCLES

from .formatting import MLPERF_TASK, MLPERF_TITLE, PUBLISHED_MS

Target = dict[str, Any]

#: Issue 17's whole-model instruction targets (each <= 0.5 x TFLM + CMSIS-NN, measured the same way).
INSTRUCTION_TARGETS = {"ic_resnet8_int8": 14_900_000, "kws_dscnn_int8": 3_850_000,
                       "vww": VWW_TARGET_INSTRUCTIONS, "ad_autoencoder_int8": 290_000}
STRESS_CASES = 100_000


def best_published_cycles(model: str) -> tuple[float, str]:
    """The fewest cycles any published MLPerf Tiny M4 stack needs for ``model`` (ms at 120 MHz), and which."""
    task = MLPERF_TASK[model]
    name, ms = min(((k, v[task]) for k, v in PUBLISHED_MS.items()), key=lambda kv: kv[1])
    return ms * 120e3, name


def _model_target(title: str, r: dict[str, Any] | None, instr_target: int, best: tuple[float, str]) -> Target:
    """One model: both halves must hold; the note states the gap of each half that does not."""
    tgt = (f"{title}: ≤ {instr_target / 1e6:.2f} M instructions and est. cycles (0 WS) < {best[1]}'s "
           f"{best[0] / 1e6:.2f} M")
    if not r:
        return {"target": tgt, "measured": None, "met": None, "note": "not measured"}
    ins = r["instructions_dsp"]
    cyc = (r.get("cycles") or {}).get("cycles_0ws")
    fig = f"{ins / 1e6:.2f} M instructions, est. {cyc / 1e6:.2f} M cycles" if cyc else f"{ins / 1e6:.2f} M"
    gaps = []
    if ins > instr_target:
        gaps.append(f"instructions {ins / instr_target:.2f}× the target")
    if cyc is None:
        gaps.append("cycles not estimated")
    elif cyc >= best[0]:
        gaps.append(f"est. cycles {cyc / best[0]:.2f}× {best[1]}")
    met = None if cyc is None else not gaps
    return {"target": tgt, "measured": fig, "met": met, "note": "; ".join(gaps)}


def model_targets(comp: dict[str, Any]) -> list[Target]:
    """The three MLPerf Tiny models and the VWW-style MobileNet."""
    ml = comp.get("mlperf", {})
    out = [_model_target(MLPERF_TITLE[m], ml.get(m), INSTRUCTION_TARGETS[m], best_published_cycles(m))
           for m in MLPERF]
    vww = comp.get("vww")
    out.insert(2, _model_target("VWW-style MobileNet", vww, INSTRUCTION_TARGETS["vww"],
                                (VWW_XCUBE_CYCLES, "X-CUBE-AI 9.0")))
    wide = (comp.get("mlperf_wide_fc") or {}).get("ad_autoencoder_int8")
    if wide and out[-1]["met"] is False:
        out[-1]["note"] += (f" (with `--wide-fc`, int16 FC weights: {wide['instructions_dsp'] / 1e6:.3f} M "
                            "instructions, twice the weight flash)")
    return out


def depthwise_target(comp: dict[str, Any]) -> Target:
    """Every measured depthwise shape <= 2.5 instructions/MAC on the DSP path."""
    shapes = comp.get("depthwise_shapes") or []
    tgt = f"Depthwise ≤ {DEPTHWISE_TARGET} instructions/MAC (DSP) for every shape"
    if not shapes:
        return {"target": tgt, "measured": None, "met": None, "note": "not measured"}
    over = [s for s in shapes if s["dsp_ins_per_mac"] > DEPTHWISE_TARGET]
    worst = max(shapes, key=lambda s: s["dsp_ins_per_mac"])
    return {"target": tgt, "measured": f"{len(shapes) - len(over)} of {len(shapes)} shapes; worst "
                                       f"{worst['dsp_ins_per_mac']:.2f} ({worst['name']})",
            "met": not over,
            "note": "over: " + ", ".join(f"{s['name']} {s['dsp_ins_per_mac']:.2f}" for s in over) if over else ""}


def stress_target(stress: dict[str, Any] | None) -> Target:
    """The randomized kernel stress test: >= 100 k cases per host target, none differing from tflite_micro."""
    tgt = f"Randomized kernel stress test: ≥ {STRESS_CASES:,} cases per host target, all equal to tflite_micro"
    if not stress or stress.get("error"):
        return {"target": tgt, "measured": None, "met": None,
                "note": "not measured" + (f": {stress['error']}" if stress else "")}
    t = stress.get("targets", {})
    fig = "; ".join(f"{k} {v['cases']:,} cases, {v['failed_cases']:,} differing" for k, v in t.items())
    hosts = [v for k, v in t.items() if k.startswith("host")]
    met = bool(hosts) and all(v["cases"] >= STRESS_CASES for v in hosts) and not any(
        v["failed_cases"] for v in t.values())
    return {"target": tgt, "measured": fig, "met": met, "note": ""}


def kernel_targets(R: dict[str, Any]) -> list[Target]:
    """Issue 17's rows of the Targets table."""
    comp = R.get("compute") or {}
    return [*model_targets(comp), depthwise_target(comp), stress_target(R.get("stress"))]
