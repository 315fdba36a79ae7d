"""## 1c. Randomized kernel stress test: random shapes and quantization per op, every target vs tflite_micro."""
from __future__ import annotations

from typing import Any

from .formatting import err_of, n0, table


def md_stress(R: dict[str, Any]) -> str:
    S = R.get("stress")
    out = ["## 1c. Randomized kernel stress test\n\n"]
    if not S:
        return ""
    if err_of(S):
        return out[0] + f"Not measured: {err_of(S)}\n\n"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(S.get("kinds", {}).items()))
    out.append(
        f"Seeded random single-op cases (`tests/kernel_stress.py`, seeds {S['first_seed']}.."
        f"{S['first_seed'] + S['models'] - 1}, {S['ops_per_model']} ops per model, {S['samples']} random inputs "
        f"each; op instances: {kinds}): random shapes, strides, padding, dilation, channel multipliers "
        "(1, 2, 3, 4, 8 and the 10x8 audio shape), per-tensor and per-channel quantization, fused activations; "
        "half of the convolution / depthwise / pool cases sit between identity requantizations so their input "
        "and output live in the arena, where convolution and pool outputs overlap their input (planner in-place "
        "rules, codegen/README.md). A case = one op instance on one input; "
        "each is compared byte for byte with the tflite_micro interpreter. `make test` runs 2,400 per target "
        "(tests/test_kernel_stress.py).\n\n")
    rows = [[t, n0(v["models"]), n0(v["cases"]), n0(v["failed_cases"]), f"{v['seconds']:.0f}"]
            for t, v in S.get("targets", {}).items()]
    out.append(table(["target", "models", "cases", "differing cases", "seconds"], rows, right={1, 2, 3, 4}))
    fails = S.get("failures", [])
    if fails:
        out.append(f"\n{len(fails)} finding(s):\n\n" + "".join(f"- {f}\n" for f in fails[:30]))
    else:
        out.append("\nNo case differs on any target.\n")
    out.append("\n")
    return "".join(out)
