"""QUANTIZE float32 -> int8 at a model input, DEQUANTIZE int8 -> float32 at a model output
(``resilinet_quantize_f32_s8`` / ``resilinet_dequantize_s8_f32``, firmware/cmsis_nn/resilinet_nn_ext_basic.c).

This is what TensorFlow's converter writes when inference_input_type / inference_output_type stay float:
the module then takes and returns float32 buffers (IoSpec.dtype), and everything between stays int8. Float
tensors anywhere else (a float op inside the model) are rejected: the arena holds int8 only.
"""
from __future__ import annotations

from ..step import Step
from .base import Kernel
from .context import OpContext

QUANTIZE_F32 = Kernel("quantize_f32", "ops/float_io.c.j2", "resilinet_nn_ext_basic.c", extension=True)
DEQUANTIZE_F32 = Kernel("dequantize_f32", "ops/float_io.c.j2", "resilinet_nn_ext_basic.c", extension=True)

_AT_EDGE_HINT = ("The converter writes float QUANTIZE/DEQUANTIZE only at the model's inputs and outputs; convert "
                 "with full-integer quantization (TFLITE_BUILTINS_INT8) so no float op is left inside")


def lower_quantize_float(ctx: OpContext) -> Step:
    """QUANTIZE whose input is float32: must read a model input."""
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    if x.index not in ctx.graph.inputs:
        raise ctx.fail(f"float input '{x.name}' is not a model input", _AT_EDGE_HINT)
    ctx.int8_activation(y, "output")
    assert y.quant
    if x.num_elements != y.num_elements:
        raise ctx.fail(f"input has {x.num_elements} elements, output {y.num_elements}")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=QUANTIZE_F32.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, size=y.num_elements, scale=y.quant.scale,
                    zero_point=y.quant.zero_point),
        summary=f"{list(x.shape)} float32 -> int8",
    )


def lower_dequantize(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    assert x.quant
    if y.dtype != "float32":
        raise ctx.fail(f"output '{y.name}' is {y.dtype}; only int8 -> float32 DEQUANTIZE is supported")
    if y.index not in ctx.graph.outputs:
        raise ctx.fail(f"float output '{y.name}' is not a model output", _AT_EDGE_HINT)
    if x.num_elements != y.num_elements:
        raise ctx.fail(f"input has {x.num_elements} elements, output {y.num_elements}")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=DEQUANTIZE_F32.name, output_name=y.name,
        inputs=[] if x.is_const else [x.index], outputs=[y.index],
        const_inputs=[x.index] if x.is_const else [],
        params=dict(input=x.index, output=y.index, size=y.num_elements, scale=x.quant.scale,
                    zero_point=x.quant.zero_point),
        summary=f"{list(x.shape)} int8 -> float32",
    )
