"""Section 1, depthwise part: the VWW-style MobileNet and instructions per MAC per depthwise shape."""
from __future__ import annotations

from typing import Any

from .formatting import f2, n0, table

_VWW_INTRO = (
    "\n### VWW-style MobileNet v1 0.25, 96×96×3 (`bench/vww_model.py`)\n\n"
    "The MLPerf Tiny visual-wake-words architecture built here with Keras (`keras.applications.MobileNet(alpha="
    "0.25, weights=None, input_shape=(96, 96, 3), classes=2)`), seeded weights and batch-norm statistics, full-int8 "
    "conversion on a seeded random representative set (our weights, not MLPerf's: the same shapes, so the kernels "
    "are measured on the same work). TFLM + CMSIS-NN and X-CUBE-AI: issue 17's figures for MLPerf's VWW model "
    "(same architecture). Targets: ≤ 12.0 M instructions, and estimated cycles (0 wait states, "
    "docs/cycle-estimate.md) below X-CUBE-AI's published cycles.\n\n")
_SHAPES_INTRO = (
    "\n### Depthwise convolution per shape (`bench/depthwise_shapes.py`)\n\n"
    "One-op int8 models (seeded Keras `DepthwiseConv2D` + bias + ReLU), instructions of the op (its buffer-size "
    "check and call included) per MAC on QEMU mps2-an386; DSP path and the plain-C path of the same kernels; "
    "outputs compared with `tflite_micro` on both. Target: ≤ 2.5 instructions/MAC on the DSP path.\n\n")


def _vww_table(r: dict[str, Any]) -> str:
    dw = r["categories"].get("depthwise", {})
    ok = "yes" if r["bit_exact_dsp"] and r["bit_exact_plain_c"] else "NO"
    cyc = (r.get("cycles") or {}).get("cycles_0ws")
    row = [n0(r["macs"]), n0(r["instructions_dsp"]), f2(r["ins_per_mac"]), n0(r["instructions_plain_c"]),
           f2(dw["instructions"] / dw["macs"]) if dw.get("macs") else "—",
           f2(dw["plain_c_ins_per_mac"]) if dw.get("plain_c_ins_per_mac") else "—",
           n0(r["tflm_cmsis_nn_instructions"]), f"{r['ours_over_tflm']:.2f}",
           "met" if r["instructions_dsp"] <= r["target_instructions"] else
           f"gap {(r['instructions_dsp'] - r['target_instructions']) / 1e6:.2f} M",
           n0(cyc), n0(r["published_best_cycles"]),
           "—" if cyc is None else f"{cyc / r['published_best_cycles']:.2f}", ok]
    return table(["MACs", "instructions (DSP)", "instr/MAC", "plain C", "depthwise instr/MAC (DSP)",
                  "depthwise instr/MAC (plain C)", "TFLM + CMSIS-NN (MLPerf VWW)", "ours / TFLM", "≤ 12.0 M",
                  "est. cycles (0 WS)", "X-CUBE-AI 9.0 cycles", "est. cycles / X-CUBE-AI", "bit-exact"], [row])


def _shapes_table(rows: list[dict[str, Any]], target: float) -> str:
    out = []
    for r in rows:
        s = r["shape"]
        out.append([r["name"], f"{s['h']}×{s['w']}×{s['c']}", f"{s['kh']}×{s['kw']}", s["mult"], s["stride"],
                    n0(r["macs"]), f2(r["dsp_ins_per_mac"]), f2(r["plain_c_ins_per_mac"]),
                    "yes" if r["dsp_ins_per_mac"] <= target else "no",
                    "yes" if r["dsp_bit_exact"] and r["plain_c_bit_exact"] else "NO"])
    return table(["shape", "input", "kernel", "mult", "stride", "MACs", "DSP instr/MAC", "plain C instr/MAC",
                  f"≤ {target}", "bit-exact"], out, right={3, 4, 5, 6, 7})


def md_depthwise(c: dict[str, Any], target: float = 2.5) -> str:
    """The VWW table and the per-shape table (each only when measured)."""
    out = []
    if c.get("vww"):
        out += [_VWW_INTRO, _vww_table(c["vww"]), "\n"]
    if c.get("depthwise_shapes"):
        out += [_SHAPES_INTRO, _shapes_table(c["depthwise_shapes"], target), "\n"]
    return "".join(out)
