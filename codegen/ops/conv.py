"""CONV_2D -> ``arm_convolve_wrapper_s8`` (firmware/cmsis_nn/arm_convolve_wrapper_s8.c; the kernels it picks:
arm_convolve_s8.c, arm_convolve_1x1_s8.c, resilinet_nn_convolve_s8_s16w.c)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .. import quant
from ..scratch import Dims, align4
from ..graph import Tensor
from ..step import ConstArray, Step
from .base import Kernel
from .overlap import RasterOverlap
from .common import dims, requant_arrays, spatial_padding, weight_and_bias_arrays, weight_scales, window_options
from .context import OpContext


#: int16 im2col columns the DSP build's convolutions get: four, so they take four output pixels at a time
#: (resilinet_nn_mat_mult_kernel_s16w_x4); the C library's own size (arm_convolve_s8_get_buffer_size) is two.
DSP_COLUMNS = 4


def convolve_s8_buffer_size(input_dims: Dims, filter_dims: Dims, backend: str) -> int:
    # Two int16 im2col columns for pure C (arm_convolve_s8_get_buffer_size), DSP_COLUMNS for DSP builds.
    columns = DSP_COLUMNS if backend == "dsp" else 2
    return columns * align4(filter_dims.w * filter_dims.h * input_dims.c) * 2


def convolve_1x1_s8_buffer_size(input_dims: Dims, backend: str) -> int:
    # CMSIS-NN's 1x1 kernels need no buffer; resilinet's DSP ones take int16 columns of the input channels: two
    # at least (firmware/cmsis_nn: resilinet_nn_conv_1x1_buffer_size_dsp in arm_nnsupportfunctions.h), DSP_COLUMNS
    # for four pixels at a time.
    return DSP_COLUMNS * align4(input_dims.c) * 2 if backend == "dsp" else 0


def convolve_wrapper_s8_buffer_size(pad_hw: tuple[int, int], stride_hw: tuple[int, int],
                                    dilation_hw: tuple[int, int], input_dims: Dims, filter_dims: Dims,
                                    output_dims: Dims, backend: str) -> int:
    """``arm_convolve_wrapper_s8_get_buffer_size``: the wrapper picks the 1x1 kernels when it can."""
    del stride_hw, output_dims
    if pad_hw == (0, 0) and filter_dims.h == 1 and filter_dims.w == 1 and dilation_hw == (1, 1):
        return convolve_1x1_s8_buffer_size(input_dims, backend)  # 1x1 kernels (fast and strided)
    # The 1xN special case uses arm_convolve_s8's buffer size as well.
    return convolve_s8_buffer_size(input_dims, filter_dims, backend)


def conv_scratch(params: Mapping[str, Any], backend: str) -> int:
    return convolve_wrapper_s8_buffer_size(params["padding"], params["stride"], params["dilation"],
                                           Dims.of(params["input_dims"]), Dims.of(params["filter_dims"]),
                                           Dims.of(params["output_dims"]), backend)


# Every path of the convolution kernels (arm_convolve_s8.c, arm_convolve_1x1_s8.c, resilinet_nn_convolve_s8_s16w.c)
# walks output pixels in raster order, two or four at a time (im2col of two or four columns, all read before any of
# their outputs is written, or the 1x1 plain-C path re-reading one pixel's channels while writing it): the rule of
# two pixels in flight holds for all of them.
CONV = Kernel("conv", "ops/conv.c.j2", "arm_convolve_wrapper_s8.c", scratch=conv_scratch,
              overlap=RasterOverlap(pixels_in_flight=2))


def widened_weights_s16w(wdata: np.ndarray) -> np.ndarray:
    """The int16 weight layout of ``resilinet_convolve_wrapper_s8_s16w`` (arm_nnsupportfunctions.h,
    resilinet_nn_mat_mult_kernel_s16w): rows zero-padded to a multiple of 4; per group of four entries the lanes
    in the im2col columns' order (e0, e2, e1, e3), so the DSP inner loop multiplies words as loaded; two output
    channels interleaved group by group (an odd last channel alone). Costs one extra byte of flash per weight,
    saves the SXTB16 widening of every weight word on every output pixel pair."""
    cout = wdata.shape[0]
    rows = wdata.reshape(cout, -1).astype(np.int16)
    k4 = align4(rows.shape[1])
    padded = np.zeros((cout, k4), dtype=np.int16)
    padded[:, :rows.shape[1]] = rows
    groups = padded.reshape(cout, k4 // 4, 4)[:, :, [0, 2, 1, 3]]
    pairs = cout // 2
    paired = groups[:2 * pairs].reshape(pairs, 2, k4 // 4, 4).transpose(0, 2, 1, 3).reshape(-1)
    return np.concatenate([paired, groups[2 * pairs:].reshape(-1)])


def lower_conv(ctx: OpContext) -> Step:
    x, w, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise ctx.fail("expects 4-D NHWC input and [C_out, KH, KW, C_in] filter")
    n, h, wd, c = x.shape
    cout, kh, kw, cin = w.shape
    if cin != c:
        raise ctx.fail(f"grouped convolution (filter depth {cin}, input depth {c}) is not supported")
    wdata = ctx.const(w, "filter", "int8")
    scales = weight_scales(ctx, w, cout, 0)
    _, oh, ow, oc = y.shape
    stride, dil = window_options(ctx)
    pad = spatial_padding(ctx, (h, wd), (kh, kw), (oh, ow), stride, dil)
    assert x.quant and y.quant
    mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
    act_min, act_max = ctx.act_range(y)
    kind = "1x1" if (kh, kw) == (1, 1) and pad == (0, 0) and dil == (1, 1) else f"{kh}x{kw}"
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=CONV.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(
            input=x.index, output=y.index,
            input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point,
            stride=stride, padding=pad, dilation=dil, act_min=act_min, act_max=act_max,
            input_dims=dims(n, h, wd, c), filter_dims=dims(cout, kh, kw, cin),
            bias_dims=dims(1, 1, 1, cout), output_dims=dims(n, oh, ow, oc),
        ),
        consts=[*_conv_weight_arrays(ctx, w, wdata, cout), *requant_arrays(ctx, mults, shifts)],
        macs=n * oh * ow * cout * kh * kw * cin,
        summary=f"{kind} conv s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )


def _conv_weight_arrays(ctx: OpContext, w: Tensor, wdata: np.ndarray, cout: int) -> list[ConstArray]:
    """Our kernels read the int16 layout (widened_weights_s16w); a build against Arm's CMSIS-NN the int8 filter."""
    weights, bias = weight_and_bias_arrays(ctx, w, wdata, cout, "filter")
    weights.build = "cmsis_nn"
    wide = ConstArray(ctx.key("weights16"), "int16_t", widened_weights_s16w(wdata),
                      f"filter {list(w.shape)}, int16 s16w layout", build="resilinet")
    return [weights, wide, bias]
