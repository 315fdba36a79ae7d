"""SOFTMAX -> ``arm_softmax_s8`` (firmware/cmsis_nn/arm_softmax_s8.c)."""
from __future__ import annotations

from .. import quant
from ..step import Step
from .base import Kernel
from .context import OpContext

SOFTMAX = Kernel("softmax", "ops/softmax.c.j2", "arm_softmax_s8.c")


def lower_softmax(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    if y.quant.zero_point != -128 or abs(y.quant.scale - 1.0 / 256) > 0.001 / 256:
        raise ctx.fail(f"output quantization (scale {y.quant.scale}, zero point {y.quant.zero_point}) is not "
                       "the 1/256, -128 TFLM requires for int8 softmax")
    beta = float(ctx.op.options.get("beta", 1.0))
    sp = quant.softmax_params(beta, x.quant.scale)
    row = x.shape[-1] if x.shape else 1
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=SOFTMAX.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, rows=x.num_elements // row, row_size=row,
                    multiplier=sp.multiplier, shift=sp.shift, diff_min=sp.diff_min),
        summary=f"{list(x.shape)} beta={beta:g}",
    )
