"""QUANTIZE (int8 -> int8), RELU, RELU6 -> ``resilinet_requantize_s8``
(firmware/cmsis_nn/resilinet_nn_ext.c; CMSIS-NN has no int8 requantize with TFLM's arithmetic)."""
from __future__ import annotations

from .. import quant
from ..graph import Tensor
from ..step import Step
from . import float_io
from .base import Kernel
from .context import OpContext

REQUANTIZE = Kernel("requantize", "ops/requantize.c.j2", "resilinet_nn_ext.c", extension=True)


def requantize_step(ctx: OpContext, x: Tensor, y: Tensor, mult: int, shift: int, in_offset: int, out_offset: int,
                    act: tuple[int, int], summary: str) -> Step:
    """out = clamp(requantize(x + in_offset, mult, shift) + out_offset, *act), element by element."""
    if x.num_elements != y.num_elements:
        raise ctx.fail(f"input has {x.num_elements} elements, output {y.num_elements}")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=REQUANTIZE.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, size=y.num_elements, input_offset=in_offset,
                    multiplier=mult, shift=shift, output_offset=out_offset, act_min=act[0], act_max=act[1]),
        # The kernel reads each element before writing it.
        inplace=[(y.index, x.index)], summary=summary,
    )


def lower_quantize(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    if x.dtype == "float32":  # the converter's float model input
        return float_io.lower_quantize_float(ctx)
    if x.dtype != "int8":
        raise ctx.fail(f"input '{x.name}' is {x.dtype}; only int8 -> int8 requantization is supported",
                       "Convert with inference_input_type=tf.int8 so the model takes int8 input")
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    mult, shift = quant.quantize_multiplier(x.quant.scale / y.quant.scale)
    return requantize_step(ctx, x, y, mult, shift, -x.quant.zero_point, y.quant.zero_point,
                           (quant.INT8_MIN, quant.INT8_MAX), f"{list(x.shape)} requantize")


def lower_relu(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    if ctx.op.op_type == "RELU6":
        # TFLM clamps the raw input to [zp_in, q(6)] without rescaling.
        six = quant.float_to_quantized_int8(6.0, x.quant.scale, x.quant.zero_point)
        return requantize_step(ctx, x, y, 1 << 30, 1, 0, 0, (x.quant.zero_point, six), f"{list(x.shape)} clamp")
    mult, shift = quant.quantize_multiplier(x.quant.scale / y.quant.scale)
    lo = max(quant.INT8_MIN, y.quant.zero_point)  # zp + round(0 / scale)
    return requantize_step(ctx, x, y, mult, shift, -x.quant.zero_point, y.quant.zero_point,
                           (lo, quant.INT8_MAX), f"{list(x.shape)} relu")
