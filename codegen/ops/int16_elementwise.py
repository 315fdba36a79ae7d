"""The 16x8 family, elementwise and window ops with int16 activations: ADD / MUL (``arm_elementwise_add_s16`` /
``_mul_s16``), AVERAGE/MAX_POOL_2D (``arm_avgpool_s16`` / ``arm_max_pool_s16``), SOFTMAX (``arm_softmax_s16``
with the two LUTs TFLM's Prepare() fills), and two kernels CMSIS-NN does not have with TFLM's arithmetic
(``resilinet_nn_ext.h``): LOGISTIC / TANH (``resilinet_activation_s16``) and requantization
(``resilinet_requantize_s16`` and the int8 <-> int16 pair) for QUANTIZE, RELU and RELU6.

Every parameter is computed as TFLM's int16 Prepare() computes it; the matching TFLM kernels are its
reference ones (the tflite_micro interpreter runs no CMSIS-NN code).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import quant
from ..step import ConstArray, Step
from .base import Kernel
from .context import OpContext
from .elementwise import broadcast_plan
from .pooling import pool_step
from .int16 import INT16_MAX, INT16_MIN, activation_range_s16, int16_activation

ADD_S16 = Kernel("add_s16", "ops/elementwise_s16.c.j2", "arm_elementwise_s16.c")
MUL_S16 = Kernel("mul_s16", "ops/elementwise_s16.c.j2", "arm_elementwise_s16.c")
AVGPOOL_S16 = Kernel("avgpool_s16", "ops/pool_s16.c.j2", "arm_pool_s16.c")
MAXPOOL_S16 = Kernel("maxpool_s16", "ops/pool_s16.c.j2", "arm_pool_s16.c")
SOFTMAX_S16 = Kernel("softmax_s16", "ops/softmax_s16.c.j2", "arm_softmax_s16.c")
ACTIVATION_S16 = Kernel("activation_s16", "ops/activation_s16.c.j2", "resilinet_nn_ext.c", extension=True)
REQUANTIZE_S16 = Kernel("requantize_s16", "ops/requantize_s16.c.j2", "resilinet_nn_ext.c", extension=True)

#: TFLM's ADD keeps 15 bits of headroom for int16 (20 for int8).
ADD_LEFT_SHIFT_S16 = 15


def lower_binary_s16(ctx: OpContext) -> Step:
    """ADD / MUL with int16 activations, broadcasting like the int8 lowering."""
    a, b, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    for t, role in ((a, "input 1"), (b, "input 2"), (y, "output")):
        int16_activation(ctx, t, role)
    assert a.quant and b.quant and y.quant
    if ctx.op.op_type == "ADD" and ctx.op.options.get("pot_scale_int16"):
        raise ctx.fail("power-of-two int16 ADD (pot_scale_int16) is not supported",
                       "Re-convert with the current TensorFlow converter, which writes the general form")
    try:
        expected = tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise ctx.fail(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    if int(np.prod(expected)) != y.num_elements or len(expected) > 6:
        raise ctx.fail(f"output shape {list(y.shape)} is not the broadcast shape {list(expected)}")
    block, loops = broadcast_plan(a.shape, b.shape, expected)
    act_min, act_max = activation_range_s16(ctx, y)
    params: dict[str, Any] = dict(input1=a.index, input2=b.index, output=y.index, block=block, loops=loops,
                                  act_min=act_min, act_max=act_max)
    if ctx.op.op_type == "ADD":
        twice_max = 2.0 * max(a.quant.scale, b.quant.scale)
        try:
            m1, s1 = quant.quantize_multiplier_smaller_than_one_exp(a.quant.scale / twice_max)
            m2, s2 = quant.quantize_multiplier_smaller_than_one_exp(b.quant.scale / twice_max)
            mo, so = quant.quantize_multiplier_smaller_than_one_exp(
                twice_max / (float(1 << ADD_LEFT_SHIFT_S16) * y.quant.scale))
        except ValueError as exc:
            raise ctx.fail(f"scales out of the range TFLM's int16 ADD accepts ({exc})") from None
        params.update(input1_mult=m1, input1_shift=s1, input2_mult=m2, input2_shift=s2,
                      left_shift=ADD_LEFT_SHIFT_S16, out_mult=mo, out_shift=so)
        kernel = ADD_S16
    else:
        params["out_mult"], params["out_shift"] = quant.mul_params(a.quant.scale, b.quant.scale, y.quant.scale)
        kernel = MUL_S16
    inplace = [(y.index, t.index) for t in (a, b) if not t.is_const and tuple(t.shape) == tuple(y.shape)]
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=kernel.name, output_name=y.name,
        inputs=[t.index for t in (a, b) if not t.is_const], outputs=[y.index], params=params,
        const_inputs=[t.index for t in (a, b) if t.is_const], inplace=inplace,
        summary=f"16x8 {list(a.shape)} {'+' if kernel is ADD_S16 else '*'} {list(b.shape)} -> {list(y.shape)}",
    )


def lower_pool_s16(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    int16_activation(ctx, x, "input")
    int16_activation(ctx, y, "output")
    assert x.quant and y.quant
    if abs(x.quant.scale - y.quant.scale) > 1e-9:
        raise ctx.fail("input and output scales differ (TFLM requires them equal for int16 pooling)")
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise ctx.fail("expects 4-D NHWC input and output")
    kernel = AVGPOOL_S16 if ctx.op.op_type == "AVERAGE_POOL_2D" else MAXPOOL_S16
    return pool_step(ctx, x, y, kernel, activation_range_s16(ctx, y), label="16x8 ")


def softmax_lut(func: Callable[[np.float32], np.float32], lo: float, hi: float) -> np.ndarray:
    """TFLM ``gen_lut<float, int16_t, int16_t>`` on [lo, hi] with outputs in [-1, 1]: 512 interpolation
    points corrected for their midpoint error, plus one end value; every step in float32 like the C++."""
    f = np.float32
    steps = 512
    step = f(f(f(hi) - f(lo)) / f(steps))
    half = f(step / f(2))
    scale = f(f(65536) / f(2))

    def rnd(v: np.float32) -> np.float32:
        return f(quant.round_half_away(float(v)))

    lut = np.zeros(steps + 1, dtype=np.int64)
    for i in range(steps):
        x0 = f(f(lo) + f(f(i) * step))
        val, val_mid = func(x0), func(f(x0 + half))
        val_next = func(f(f(lo) + f(f(i + 1) * step)))
        sample = rnd(f(val * scale))
        interp = rnd(f(f(f(val_next * scale) + rnd(f(val * scale))) / f(2)))
        bias = rnd(f(f(interp - rnd(f(val_mid * scale))) / f(2)))
        lut[i] = int(min(max(float(f(sample - bias)), INT16_MIN), INT16_MAX))
    lut[steps] = int(min(max(float(rnd(f(func(f(hi)) * scale))), INT16_MIN), INT16_MAX))
    return lut


def _exp_f32(x: np.float32) -> np.float32:
    return np.float32(math.exp(float(x)))  # expf: the correctly rounded float32 of exp(x)


def _one_over_one_plus_x(x: np.float32) -> np.float32:
    return np.float32(np.float32(1.0) / np.float32(np.float32(1.0) + x))


def lower_softmax_s16(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    int16_activation(ctx, x, "input")
    int16_activation(ctx, y, "output")
    assert x.quant and y.quant
    if abs(y.quant.scale - 1.0 / 32768) > 0.001 / 32768:
        raise ctx.fail(f"output scale {y.quant.scale} is not the 1/32768 TFLM requires for int16 softmax")
    beta = float(ctx.op.options.get("beta", 1.0))
    # [-65535, 0] of the rescaled difference spans [-10, 0] of the exp LUT.
    mult, shift = quant.quantize_multiplier(x.quant.scale * beta / (10.0 / 65535.0))
    row = x.shape[-1] if x.shape else 1
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=SOFTMAX_S16.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, rows=x.num_elements // row, row_size=row, multiplier=mult,
                    shift=shift),
        consts=[ConstArray(ctx.key("exp_lut"), "int16_t", softmax_lut(_exp_f32, -10.0, 0.0), "exp LUT on [-10, 0]",
                           False),
                ConstArray(ctx.key("one_lut"), "int16_t", softmax_lut(_one_over_one_plus_x, 0.0, 1.0),
                           "1/(1+x) LUT on [0, 1]", False)],
        summary=f"16x8 {list(x.shape)} beta={beta:g}",
    )


def _checked_log2(x: float) -> tuple[int, bool]:
    """TFLite ``CheckedLog2`` (float32): the rounded log2 and whether x is a power of two within 1e-3."""
    f = np.float32
    log2 = f(f(math.log(float(f(x)))) * f(f(1.0) / f(math.log(2.0))))
    rounded = f(quant.round_half_away(float(log2)))
    return int(rounded), abs(float(f(log2 - rounded))) < float(f(1e-3))


def lower_activation_s16(ctx: OpContext) -> Step:
    """LOGISTIC / TANH with int16 activations: TFLM's int16 Prepare() (input rescaled to 1/(3 * 4096))."""
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    int16_activation(ctx, x, "input")
    int16_activation(ctx, y, "output")
    assert x.quant and y.quant
    out_log2, out_pot = _checked_log2(y.quant.scale)
    if not out_pot or out_log2 != -15:
        raise ctx.fail(f"output scale {y.quant.scale} is not the 2^-15 TFLM requires for int16 {ctx.op.op_type}")
    in_log2, pot = _checked_log2(x.quant.scale)
    left_shift = 12 + in_log2
    tanh = ctx.op.op_type == "TANH"
    if pot and (left_shift in (0, 1) if tanh else left_shift == 0):
        multiplier = 0  # power-of-two case: the kernel multiplies by 3 << left_shift
    else:
        real, left_shift = x.quant.scale * 4096.0 * 3.0, 0
        while real <= 32767.0 / 2.0 and left_shift <= 30:
            left_shift += 1
            real *= 2.0
        multiplier = int(real)
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=ACTIVATION_S16.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, size=y.num_elements, multiplier=multiplier,
                    left_shift=left_shift, type="RESILINET_TANH" if tanh else "RESILINET_SIGMOID"),
        inplace=[(y.index, x.index)], summary=f"16x8 {list(x.shape)} {ctx.op.op_type.lower()}",
    )


def _requantize_step(ctx: OpContext, mult: int, shift: int, in_offset: int, out_offset: int,
                     act: tuple[int, int], summary: str) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    if x.num_elements != y.num_elements:
        raise ctx.fail(f"input has {x.num_elements} elements, output {y.num_elements}")
    suffix = {("int16", "int16"): "s16", ("int8", "int16"): "s8_s16", ("int16", "int8"): "s16_s8"}[(x.dtype, y.dtype)]
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=REQUANTIZE_S16.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, size=y.num_elements, input_offset=in_offset, multiplier=mult,
                    shift=shift, output_offset=out_offset, act_min=act[0], act_max=act[1], suffix=suffix),
        inplace=[(y.index, x.index)] if x.dtype == y.dtype else [], summary=summary,
    )


def lower_quantize_s16(ctx: OpContext) -> Step:
    """QUANTIZE int16 -> int16 / int8 -> int16 / int16 -> int8 (TFLM's Requantize)."""
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    if {x.dtype, y.dtype} - {"int8", "int16"} or "int16" not in (x.dtype, y.dtype):
        raise ctx.fail(f"QUANTIZE {x.dtype} -> {y.dtype} is not an int8/int16 requantization")
    for t, role in ((x, "input"), (y, "output")):
        if t.quant is None or t.quant.per_channel:
            raise ctx.fail(f"{role} '{t.name}' must be quantized per tensor")
    assert x.quant and y.quant
    mult, shift = quant.quantize_multiplier(x.quant.scale / y.quant.scale)
    lo, hi = (INT16_MIN, INT16_MAX) if y.dtype == "int16" else (quant.INT8_MIN, quant.INT8_MAX)
    return _requantize_step(ctx, mult, shift, -x.quant.zero_point, y.quant.zero_point, (lo, hi),
                            f"{list(x.shape)} {x.dtype} -> {y.dtype}")


def lower_relu_s16(ctx: OpContext) -> Step:
    """RELU / RELU6 with int16 activations (TFLM's ReluQuantized / Relu6 arithmetic, as for int8)."""
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    int16_activation(ctx, x, "input")
    int16_activation(ctx, y, "output")
    assert x.quant and y.quant
    if ctx.op.op_type == "RELU6":
        six = int(quant.round_half_away(float(np.float32(6.0) / np.float32(x.quant.scale))))
        return _requantize_step(ctx, 1 << 30, 1, 0, 0, (0, min(INT16_MAX, six)), f"{list(x.shape)} clamp")
    mult, shift = quant.quantize_multiplier(x.quant.scale / y.quant.scale)
    return _requantize_step(ctx, mult, shift, 0, 0, (0, INT16_MAX), f"{list(x.shape)} relu")
