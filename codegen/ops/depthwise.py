"""DEPTHWISE_CONV_2D -> ``arm_depthwise_conv_wrapper_s8`` (firmware/cmsis_nn/arm_depthwise_conv_s8.c, which runs the
row-buffer kernel of resilinet_nn_depthwise_rows_s8.c when given its scratch)."""
from __future__ import annotations

from typing import Any, Mapping

from .. import quant
from ..scratch import Dims
from ..step import Step
from .base import Kernel
from .common import dims, requant_arrays, spatial_padding, weight_and_bias_arrays, weight_scales, window_options
from .context import OpContext


def depthwise_conv_wrapper_s8_buffer_size(pad_hw: tuple[int, int], dilation_hw: tuple[int, int],
                                          input_dims: Dims, filter_dims: Dims, output_dims: Dims,
                                          backend: str) -> int:
    """``arm_depthwise_conv_wrapper_s8_get_buffer_size``: only the DSP ``_s8_opt`` path takes a buffer."""
    if backend == "c":
        return 0
    if not (input_dims.c == output_dims.c and input_dims.n == 1 and dilation_hw == (1, 1)):
        return 0
    if filter_dims.h == 3 and filter_dims.w == 3 and pad_hw[0] <= 1 and pad_hw[1] <= 1:
        return 0  # arm_depthwise_conv_3x3_s8 works without a buffer
    return input_dims.c * filter_dims.w * filter_dims.h * 2


#: Limits of the row-buffer kernel (firmware/cmsis_nn/resilinet_nn_depthwise_rows_s8.c, DW_ROWS_MAX_*), its
#: band of int16 rows (DW_BAND_BYTES) and the words after each channel's weights (DW_WK_EXTRA).
ROWS_MAX_KH, ROWS_MAX_KW, BAND_BYTES, WK_EXTRA = 16, 64, 8192, 7


def depthwise_rows_buffer_size(stride_hw: tuple[int, int], pad_hw: tuple[int, int], dilation_hw: tuple[int, int],
                               ch_mult: int, input_dims: Dims, filter_dims: Dims, output_dims: Dims) -> int | None:
    """``resilinet_nn_depthwise_rows_s8_get_buffer_size``, or None where that kernel does not apply.

    A band of int16 input rows per widened channel (four channels at a time when the multiplier is 1 and
    C % 4 == 0; the whole padded input when it fits BAND_BYTES), the packed weights and requantization words of
    one channel group, 4 bytes to align the start."""
    kh, kw = filter_dims.h, filter_dims.w
    if dilation_hw != (1, 1) or not (1 <= kh <= ROWS_MAX_KH and 1 <= kw <= ROWS_MAX_KW):
        return None
    rw = (input_dims.w + 2 * pad_hw[1] + 2 * stride_hw[1] + 5) & ~1
    group = 4 if ch_mult == 1 and input_dims.c % 4 == 0 else 1
    all_rows = (output_dims.h - 1) * stride_hw[0] + kh
    band_rows = max(kh, min(all_rows, BAND_BYTES // (group * rw * 2)))
    kwp = (kw + 1) // 2
    return 4 + group * band_rows * rw * 2 + group * ch_mult * (kh * kwp + WK_EXTRA) * 4


def depthwise_scratch(params: Mapping[str, Any], backend: str) -> int:
    """Our wrapper's row-buffer scratch, or Arm's number where it is larger (a module runs with either library)."""
    shapes = Dims.of(params["input_dims"]), Dims.of(params["filter_dims"]), Dims.of(params["output_dims"])
    arm = depthwise_conv_wrapper_s8_buffer_size(params["padding"], params["dilation"], *shapes, backend)
    rows = depthwise_rows_buffer_size(tuple(params["stride"]), tuple(params["padding"]), tuple(params["dilation"]),
                                      params["ch_mult"], *shapes)
    return arm if rows is None else max(arm, rows)


DEPTHWISE_CONV = Kernel("dwconv", "ops/depthwise_conv.c.j2", "arm_depthwise_conv_s8.c", scratch=depthwise_scratch)


def lower_depthwise_conv(ctx: OpContext) -> Step:
    x, w, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
        raise ctx.fail("expects 4-D NHWC input and [1, KH, KW, C_out] filter")
    n, h, wd, c = x.shape
    _, kh, kw, cout = w.shape
    if cout % c != 0:
        raise ctx.fail(f"output depth {cout} is not a multiple of input depth {c}")
    ch_mult = cout // c
    wdata = ctx.const(w, "filter", "int8")
    scales = weight_scales(ctx, w, cout, 3)
    _, oh, ow, oc = y.shape
    stride, dil = window_options(ctx)
    pad = spatial_padding(ctx, (h, wd), (kh, kw), (oh, ow), stride, dil)
    assert x.quant and y.quant
    mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
    act_min, act_max = ctx.act_range(y)
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=DEPTHWISE_CONV.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(
            input=x.index, output=y.index, ch_mult=ch_mult,
            input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point,
            stride=stride, padding=pad, dilation=dil, act_min=act_min, act_max=act_max,
            input_dims=dims(n, h, wd, c), filter_dims=dims(1, kh, kw, cout),
            bias_dims=dims(1, 1, 1, cout), output_dims=dims(n, oh, ow, oc),
        ),
        consts=[*weight_and_bias_arrays(ctx, w, wdata, cout, "filter"), *requant_arrays(ctx, mults, shifts)],
        macs=n * oh * ow * cout * kh * kw,
        summary=f"{kh}x{kw} depthwise x{ch_mult} s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )
