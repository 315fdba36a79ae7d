"""Human-readable budget of a model as the code generator would build it."""
from __future__ import annotations

from pathlib import Path

from . import scratch as scr
from .emit import Module, build_module


def report_model(model_path: str | Path, backends: tuple[str, ...] = scr.DEFAULT_BACKENDS) -> Module:
    """Lower and plan ``model_path`` without writing anything; the :class:`Module` carries all numbers."""
    return build_module(model_path, backends=backends)


def format_report(module: Module) -> str:
    rows = [("#", "op", "kernel", "output", "shapes", "MACs", "scratch")]
    for s in module.steps:
        rows.append((str(s.op_index), s.op_type, s.kernel, s.output_name[:40], s.summary, f"{s.macs:,}",
                     str(s.scratch_bytes) if s.scratch_bytes else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {5, 6}
    lines = []
    for n, r in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    plan = module.plan
    gap = (plan.arena_size / plan.lower_bound - 1) * 100 if plan.lower_bound else 0.0
    lines += [
        "",
        f"model            {module.source}",
        f"ops              {len(module.steps)}",
        f"total MACs       {module.macs:,}",
        f"weight bytes     {module.weight_bytes:,} (weights + biases, flash)",
        f"quant tables     {module.quant_param_bytes:,} bytes (derived on the host: per-channel multipliers/shifts, "
        "activation tables; flash)",
        f"arena bytes      {plan.arena_size:,} (activations + scratch, RAM; placement '{plan.strategy}')",
        f"arena lower bnd  {plan.lower_bound:,} (largest sum of blocks live at one op, an overlapping pair as one; arena is {gap:+.1f} %)",
        f"scratch bytes    {plan.scratch_bytes:,} (largest per-op scratch, planned inside the arena)",
        f"state bytes      {plan.state_bytes:,} (variable tensors kept between invocations, e.g. LSTM/SVDF state; "
        f"inside the arena, set by {module.name}_reset())",
        f"caller I/O bytes {module.io_bytes:,} (inputs + outputs, owned by the caller, not in the arena)",
    ]
    for role, ios in (("input ", module.inputs), ("output", module.outputs)):
        for io in ios:
            # A float32 input/output shows the int8 grid the model quantizes it to (or dequantizes it from).
            grid = ("" if io.dtype != "float32" else
                    "quantized by the model with " if role == "input " else "dequantized by the model from ")
            lines.append(f"{role}           '{io.name}' {io.dtype} {list(io.shape)} {grid}scale {io.scale:.9g} "
                         f"zero point {io.zero_point}")
    return "\n".join(lines)
