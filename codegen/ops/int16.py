"""The 16x8 family (int16 activations, int8 weights, int64 bias): CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
-> ``arm_convolve_wrapper_s16`` / ``arm_depthwise_conv_wrapper_s16`` / ``arm_fully_connected_wrapper_s16``
(firmware/cmsis_nn/arm_convolve_s16.c, arm_fully_connected_s16.c), plus what the other 16x8 lowerings share:
the int16 checks, the int16 activation clamp, and :func:`by_activation_type`, which lets one registry entry take
int8 and int16 models.

TFLM runs these with its reference kernels (64-bit accumulation, MultiplyByQuantizedMultiplier for int64);
zero points are 0 in this scheme, so the C kernels take no offsets. Only the convolution takes scratch
(its im2col column).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .. import quant
from ..graph import Tensor
from ..scratch import Dims
from ..step import ConstArray, Step
from .base import Kernel, LowerFn
from .common import const_bias, dims, requant_arrays, spatial_padding, weight_scales, window_options
from .context import OpContext

INT16_MIN = -32768
INT16_MAX = 32767


def convolve_s16_buffer_size(input_dims: Dims, filter_dims: Dims, backend: str) -> int:
    """``arm_convolve_wrapper_s16_get_buffer_size`` (non-MVE): two int16 im2col columns, on every backend.
    Our kernel uses one of them; the size is Arm's so the module also runs with Arm's kernels."""
    del backend
    return 2 * input_dims.c * filter_dims.w * filter_dims.h * 2


def conv_s16_scratch(params: Mapping[str, Any], backend: str) -> int:
    return convolve_s16_buffer_size(Dims.of(params["input_dims"]), Dims.of(params["filter_dims"]), backend)


CONV_S16 = Kernel("conv_s16", "ops/conv_s16.c.j2", "arm_convolve_s16.c", scratch=conv_s16_scratch)
DEPTHWISE_CONV_S16 = Kernel("dwconv_s16", "ops/depthwise_conv_s16.c.j2", "arm_convolve_s16.c")
FULLY_CONNECTED_S16 = Kernel("fc_s16", "ops/fully_connected_s16.c.j2", "arm_fully_connected_s16.c")


def by_activation_type(int8: LowerFn, int16: LowerFn) -> LowerFn:
    """One lowering for an op that runs in both schemes: the 16x8 one when its first input or output is int16
    (QUANTIZE int8 -> int16 has only its output in int16)."""

    def lower(ctx: OpContext) -> Step:
        return int16(ctx) if "int16" in (ctx.t(0).dtype, ctx.t(0, outputs=True).dtype) else int8(ctx)

    lower.__doc__ = f"{int8.__name__} for int8 activations, {int16.__name__} for int16."
    return lower


def int16_activation(ctx: OpContext, t: Tensor, role: str) -> None:
    """An int16 activation of the 16x8 scheme: per tensor, zero point 0 (TFLM requires it)."""
    if t.dtype != "int16":
        raise ctx.fail(f"{role} '{t.name}' is {t.dtype}; a 16x8 op needs int16 activations throughout",
                       "Quantize the whole model with the 16x8 scheme, or all of it to int8")
    if t.quant is None or t.quant.per_channel:
        raise ctx.fail(f"{role} '{t.name}' must be quantized per tensor")
    if t.quant.zero_point != 0:
        raise ctx.fail(f"{role} '{t.name}' has zero point {t.quant.zero_point}; int16 activations must be "
                       "symmetric (zero point 0)", "Re-convert with the 16x8 scheme, which makes them so")


def activation_range_s16(ctx: OpContext, out: Tensor) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for an int16 output (float32 division, as for int8)."""
    assert out.quant is not None
    act = ctx.activation()
    scale, zp = out.quant.scale, out.quant.zero_point

    def q(value: float) -> int:
        return zp + int(quant.round_half_away(float(np.float32(value) / np.float32(scale))))

    lo, hi = {"NONE": (INT16_MIN, INT16_MAX), "RELU": (q(0.0), INT16_MAX), "RELU6": (q(0.0), q(6.0)),
              "RELU_N1_TO_1": (q(-1.0), q(1.0))}[act]
    return max(INT16_MIN, lo), min(INT16_MAX, hi)


def bias_s64(ctx: OpContext, channels: int) -> np.ndarray:
    """The int64 bias (input 2) of a 16x8 conv / FC; zeros when the op has none (TFLM adds nothing then)."""
    b = ctx.optional(2)
    if b is not None and b.dtype != "int64":
        raise ctx.fail(f"bias '{b.name}' is {b.dtype}; 16x8 kernels take the converter's default int64 bias",
                       "Re-convert without _experimental_full_integer_quantization_bias_type")
    data = const_bias(ctx, channels, 2, "int64")
    return np.zeros(channels, dtype=np.int64) if data is None else data


def _weight_arrays(ctx: OpContext, w: Tensor, cout: int, what: str) -> list[ConstArray]:
    return [ConstArray(ctx.key("weights"), "int8_t", ctx.const(w, "filter", "int8").reshape(-1),
                       f"{what} {list(w.shape)}"),
            ConstArray(ctx.key("bias"), "int64_t", bias_s64(ctx, cout), f"int64 bias [{cout}]")]


def _window_step(ctx: OpContext, kernel: Kernel, depthwise: bool) -> Step:
    """CONV_2D / DEPTHWISE_CONV_2D with int16 activations: same shapes and options as the int8 lowerings."""
    x, w, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    int16_activation(ctx, x, "input")
    int16_activation(ctx, y, "output")
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        raise ctx.fail("expects 4-D NHWC input, filter and output")
    n, h, wd, c = x.shape
    _, oh, ow, oc = y.shape
    if depthwise:
        _, kh, kw, cout = w.shape
        if w.shape[0] != 1 or cout != oc or cout % c != 0:
            raise ctx.fail(f"filter {list(w.shape)} does not fit input depth {c} and output depth {oc}")
        filter_dims, axis, macs_per_out = dims(1, kh, kw, cout), 3, kh * kw
    else:
        cout, kh, kw, cin = w.shape
        if cin != c or cout != oc:
            raise ctx.fail(f"filter {list(w.shape)} does not fit input depth {c} and output depth {oc} "
                           "(grouped convolution is not supported)")
        filter_dims, axis, macs_per_out = dims(cout, kh, kw, cin), 0, kh * kw * cin
    scales = weight_scales(ctx, w, cout, axis)
    stride, dil = window_options(ctx)
    pad = spatial_padding(ctx, (h, wd), (kh, kw), (oh, ow), stride, dil)
    assert x.quant and y.quant
    mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
    act_min, act_max = activation_range_s16(ctx, y)
    params: dict[str, Any] = dict(
        input=x.index, output=y.index, stride=stride, padding=pad, dilation=dil, act_min=act_min, act_max=act_max,
        input_dims=dims(n, h, wd, c), filter_dims=filter_dims, bias_dims=dims(1, 1, 1, cout),
        output_dims=dims(n, oh, ow, oc), ch_mult=cout // c)
    what = "depthwise" if depthwise else "conv"
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=kernel.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index], params=params,
        consts=[*_weight_arrays(ctx, w, cout, "filter"), *requant_arrays(ctx, mults, shifts)],
        macs=n * oh * ow * cout * macs_per_out,
        summary=f"16x8 {kh}x{kw} {what} s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )


def lower_conv_s16(ctx: OpContext) -> Step:
    return _window_step(ctx, CONV_S16, depthwise=False)


def lower_depthwise_conv_s16(ctx: OpContext) -> Step:
    return _window_step(ctx, DEPTHWISE_CONV_S16, depthwise=True)


def lower_fully_connected_s16(ctx: OpContext) -> Step:
    """FULLY_CONNECTED with int16 activations: per-tensor or per-channel weights (TFLM follows the file)."""
    x, w, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    int16_activation(ctx, x, "input")
    int16_activation(ctx, y, "output")
    if int(ctx.op.options.get("weights_format", 0) or 0) != 0:
        raise ctx.fail("shuffled weights format is not supported", "Convert with the default weights format")
    if len(w.shape) != 2:
        raise ctx.fail(f"filter must be 2-D, got {list(w.shape)}")
    cout, depth = w.shape
    scales = weight_scales(ctx, w, cout, 0)
    if x.num_elements % depth != 0 or y.num_elements != (x.num_elements // depth) * cout:
        raise ctx.fail(f"input of {x.num_elements} and output of {y.num_elements} elements do not fit "
                       f"weights {list(w.shape)}")
    batches = x.num_elements // depth
    assert x.quant and y.quant
    mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
    per_channel = len(scales) > 1
    act_min, act_max = activation_range_s16(ctx, y)
    consts = _weight_arrays(ctx, w, cout, "weights")
    # The wrapper reads one (multiplier, shift) pair per tensor or one per channel, from the same arrays.
    consts += requant_arrays(ctx, mults if per_channel else mults[:1], shifts if per_channel else shifts[:1])
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=FULLY_CONNECTED_S16.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, per_channel=per_channel, act_min=act_min, act_max=act_max,
                    input_dims=dims(batches, 1, 1, depth), filter_dims=dims(depth, 1, 1, cout),
                    bias_dims=dims(1, 1, 1, cout), output_dims=dims(batches, 1, 1, cout)),
        consts=consts, macs=batches * cout * depth,
        summary=f"16x8 {depth} -> {cout}{' per-channel' if per_channel else ''} x{batches}",
    )
