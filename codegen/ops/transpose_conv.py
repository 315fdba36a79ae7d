"""TRANSPOSE_CONV -> ``arm_transpose_conv_wrapper_s8`` (firmware/cmsis_nn/arm_transpose_conv_s8.c).

TFLite's inputs are (output_shape, filter [C_out, KH, KW, C_in], input, optional bias). TFLM ignores
the output_shape tensor (its shapes are static) and so do we. Its Prepare() computes the padding from
the *output* size, as if the op were the convolution it is the gradient of, and keeps no odd-padding
offset; the requantization is a convolution's (per-channel multipliers, fused activation clamp).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .. import quant
from ..scratch import Dims, align4
from ..step import ConstArray, Step
from .base import Kernel
from .common import const_bias, dims, out_size, pad_amount, requant_arrays, weight_scales, window_options
from .context import PADDING, OpContext
from .conv import convolve_s8_buffer_size

#: CMSIS-NN's REVERSE_TCOL_EFFICIENT_THRESHOLD: above it (stride <= 2) Arm's wrapper runs a reverse convolution.
REVERSE_CONV_MIN_IN_CH = 16


def _reverse_conv(stride_hw: tuple[int, int], input_dims: Dims) -> bool:
    return stride_hw[0] <= 2 and stride_hw[1] <= 2 and input_dims.c > REVERSE_CONV_MIN_IN_CH


def transpose_conv_s8_buffer_size(stride_hw: tuple[int, int], input_dims: Dims, filter_dims: Dims,
                                  output_dims: Dims, backend: str) -> int:
    """``arm_transpose_conv_s8_get_buffer_size``: Arm's rolling int32 row buffer, or when the wrapper would
    run a reverse convolution, the larger of that and the convolution's im2col buffer (same for C and DSP)."""
    del backend
    sh, sw = stride_hw
    rolling = ((input_dims.w - 1) * sw + max(filter_dims.w, sw)) * output_dims.c * max(filter_dims.h, sh) * 4
    if _reverse_conv(stride_hw, input_dims):
        upscaled = Dims(input_dims.n, input_dims.h * sh, input_dims.w * sw, input_dims.c)
        return max(rolling, convolve_s8_buffer_size(upscaled, filter_dims, "c"))
    return rolling


def transpose_conv_s8_reverse_buffer_size(stride_hw: tuple[int, int], input_dims: Dims, filter_dims: Dims) -> int:
    """``arm_transpose_conv_s8_get_reverse_conv_buffer_size``: room for the reversed filter, if used."""
    if _reverse_conv(stride_hw, input_dims):
        return input_dims.c * filter_dims.w * filter_dims.h * filter_dims.n
    return 0


def transpose_conv_scratch(params: Mapping[str, Any], backend: str) -> int:
    # One region: the ctx buffer, then (4-byte aligned) the reverse-convolution buffer (template splits it).
    return align4(params["ctx_bytes"]) + params["reverse_bytes"]


TRANSPOSE_CONV = Kernel("transpose_conv", "ops/transpose_conv.c.j2", "arm_transpose_conv_s8.c",
                        scratch=transpose_conv_scratch)


def _bias(ctx: OpContext, channels: int) -> np.ndarray | None:
    """The int32 bias (input 3), None when the op has none (the kernel takes NULL)."""
    b = ctx.optional(3)
    if b is not None and b.dtype == "int64":
        raise ctx.fail(f"bias '{b.name}' is int64 (16x8 quantization); only int8 transpose convolution is supported",
                       "Quantize the model to int8 activations (TFLITE_BUILTINS_INT8)")
    return const_bias(ctx, channels, 3)


def _tap_count(in_size: int, k: int, stride: int, pad: int, out: int) -> int:
    """How many (input, tap) pairs along one axis land inside the output (for the MAC count)."""
    return sum(1 for i in range(in_size) for t in range(k) if 0 <= i * stride - pad + t < out)


def _padding(ctx: OpContext, out_hw: tuple[int, int], k_hw: tuple[int, int],
             stride: tuple[int, int]) -> tuple[int, int]:
    # TFLM: ComputePaddingHeightWidth(stride, dilation 1, output size, filter) -- the output plays the
    # convolution's input; the offset for odd totals is dropped.
    padding = PADDING.get(int(ctx.op.options.get("padding", 0) or 0))
    if padding is None:
        raise ctx.fail(f"padding type {ctx.op.options.get('padding')} is not supported")
    if min(stride) < 1:
        raise ctx.fail(f"stride {stride} must be at least 1",
                       "The options are invalid: re-convert the model, or the file is damaged")
    pads = [pad_amount(stride[a], 1, out_hw[a], k_hw[a], out_size(padding, out_hw[a], k_hw[a], stride[a], 1))
            for a in range(2)]
    return pads[0], pads[1]


def lower_transpose_conv(ctx: OpContext) -> Step:
    w, x, y = ctx.t(1), ctx.t(2), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        raise ctx.fail("expects 4-D NHWC input and output and a [C_out, KH, KW, C_in] filter")
    n, h, wd, c = x.shape
    cout, kh, kw, cin = w.shape
    _, oh, ow, oc = y.shape
    if cin != c or oc != cout or y.shape[0] != n:
        raise ctx.fail(f"filter {list(w.shape)} does not fit input {list(x.shape)} and output {list(y.shape)}")
    wdata = ctx.const(w, "filter", "int8")
    scales = weight_scales(ctx, w, cout, 0)
    bias = _bias(ctx, cout)
    stride, _ = window_options(ctx)
    pad = _padding(ctx, (oh, ow), (kh, kw), stride)
    assert x.quant and y.quant
    mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
    act_min, act_max = ctx.act_range(y)
    in_dims, f_dims, o_dims = Dims(n, h, wd, c), Dims(cout, kh, kw, cin), Dims(n, oh, ow, oc)
    consts = [ConstArray(ctx.key("weights"), "int8_t", wdata.reshape(-1), f"filter {list(w.shape)}")]
    if bias is not None:
        consts.append(ConstArray(ctx.key("bias"), "int32_t", bias, f"bias [{cout}]"))
    taps = _tap_count(h, kh, stride[0], pad[0], oh) * _tap_count(wd, kw, stride[1], pad[1], ow)
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=TRANSPOSE_CONV.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(
            input=x.index, output=y.index, has_bias=bias is not None,
            input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point,
            stride=stride, padding=pad, act_min=act_min, act_max=act_max,
            input_dims=dims(n, h, wd, c), filter_dims=dims(cout, kh, kw, cin),
            bias_dims=dims(1, 1, 1, cout), output_dims=dims(n, oh, ow, oc),
            ctx_bytes=transpose_conv_s8_buffer_size(stride, in_dims, f_dims, o_dims, "c"),
            reverse_bytes=transpose_conv_s8_reverse_buffer_size(stride, in_dims, f_dims),
        ),
        consts=[*consts, *requant_arrays(ctx, mults, shifts)],
        macs=n * taps * cin * cout,
        summary=f"{kh}x{kw} transpose conv s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )
