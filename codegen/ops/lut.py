"""LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU (int8) -> ``resilinet_lut_s8`` (firmware/cmsis_nn/resilinet_nn_ext_basic.c).

TFLM runs these with its reference kernels (CMSIS-NN has no int8 version). Each is a function of one int8
element, so the lowering evaluates TFLM's fixed-point arithmetic for all 256 inputs on the host
(:mod:`codegen.fixedpoint`) and the board looks the result up: 256 bytes of flash per op, one load per
element, and the same bytes as the reference kernel by construction.
"""
from __future__ import annotations

import numpy as np

from .. import fixedpoint
from ..graph import Tensor
from ..step import ConstArray, Step
from .base import Kernel
from .context import OpContext

LUT = Kernel("lut", "ops/lut.c.j2", "resilinet_nn_ext_basic.c", extension=True)


def _table(ctx: OpContext, x: Tensor, y: Tensor) -> np.ndarray:
    assert x.quant and y.quant
    op = ctx.op.op_type
    if op == "LOGISTIC":
        # TFLM requires this zero point and then assumes the 1/256 scale the converter always writes.
        if y.quant.zero_point != -128:
            raise ctx.fail(f"output zero point is {y.quant.zero_point}; TFLM's int8 LOGISTIC requires -128")
        return fixedpoint.logistic_table(x.quant.zero_point, x.quant.scale)
    if op == "TANH":
        return fixedpoint.tanh_table(x.quant.zero_point, x.quant.scale)
    if op == "HARD_SWISH":
        try:
            return fixedpoint.hard_swish_table(x.quant.scale, x.quant.zero_point, y.quant.scale,
                                               y.quant.zero_point)
        except ValueError as exc:
            raise ctx.fail(str(exc)) from None
    alpha = float(ctx.op.options.get("alpha", 0.0) or 0.0)
    return fixedpoint.leaky_relu_table(x.quant.scale, x.quant.zero_point, y.quant.scale, y.quant.zero_point, alpha)


def lower_lut(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if x.num_elements != y.num_elements:
        raise ctx.fail(f"input has {x.num_elements} elements, output {y.num_elements}")
    table = _table(ctx, x, y)
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=LUT.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, size=y.num_elements),
        consts=[ConstArray(ctx.key("lut"), "int8_t", table,
                           f"{ctx.op.op_type} of every int8 input (TFLM reference arithmetic)", is_weight=False)],
        # The kernel reads each element before writing it.
        inplace=[(y.index, x.index)], summary=f"{list(x.shape)} table lookup",
    )

