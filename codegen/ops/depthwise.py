"""DEPTHWISE_CONV_2D -> ``arm_depthwise_conv_wrapper_s8`` (firmware/cmsis_nn/arm_depthwise_conv_s8.c, which runs the
row-buffer kernel of resilinet_nn_depthwise_rows_s8.c when given its scratch)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .. import quant
from ..scratch import Dims
from ..step import ConstArray, Step
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
ROWS_MAX_KH, ROWS_MAX_KW, BAND_BYTES, WK_EXTRA = 16, 64, 8192, 4


def rows_transposed(kh: int, kw: int, out_h: int, out_w: int) -> bool:
    """dw_transposed of resilinet_nn_depthwise_rows_s8.c: the row-buffer kernel runs a 3x3 layer whose output is
    taller than wide on the transposed tensors (columns as rows: DS-CNN's 25x5 rows of 5 outputs cost ~10
    instructions of row overhead each), so its packed weights are transposed too and its band is sized that way."""
    return kh == 3 and kw == 3 and out_h > out_w


def depthwise_rows_buffer_size(stride_hw: tuple[int, int], pad_hw: tuple[int, int], dilation_hw: tuple[int, int],
                               ch_mult: int, input_dims: Dims, filter_dims: Dims, output_dims: Dims,
                               prepacked: bool = False) -> int | None:
    """``resilinet_nn_depthwise_rows_s8_get_buffer_size`` (prepacked: ``resilinet_depthwise_conv_s8_packed_
    get_buffer_size``), or None where that kernel does not apply.

    A band of int16 input rows per widened channel (four channels at a time when C % 4 == 0, any channel
    multiplier; the whole padded input when it fits BAND_BYTES), 4 bytes to align the start and, unless the
    weights come prepacked, the packed weights and requantization words of one channel group."""
    kh, kw = filter_dims.h, filter_dims.w
    if dilation_hw != (1, 1) or not (1 <= kh <= ROWS_MAX_KH and 1 <= kw <= ROWS_MAX_KW):
        return None
    (sh, sw), pw, iw, (oh, ow) = stride_hw, pad_hw[1], input_dims.w, (output_dims.h, output_dims.w)
    if rows_transposed(kh, kw, oh, ow):
        kh, kw, sh, sw, pw, iw, oh, ow = kw, kh, sw, sh, pad_hw[0], input_dims.h, ow, oh
    kwp = (kw + 1) // 2
    # dw_geom_init's row length: the last column any path reads, plus one, rounded up to even.
    last_col = max(pw + iw - 1, 2 * ((ow + 1) // 2) * sw + 1, (ow - 1) * sw + 2 * kwp - 1)
    rw = (last_col + 2) & ~1
    group = 4 if input_dims.c % 4 == 0 else 1
    all_rows = (oh - 1) * sh + kh
    band_rows = max(kh, min(all_rows, BAND_BYTES // (group * rw * 2)))
    wk = 0 if prepacked else group * ch_mult * (kh * kwp + WK_EXTRA) * 4
    return 4 + group * band_rows * rw * 2 + wk


def depthwise_scratch(params: Mapping[str, Any], backend: str) -> int:
    """The row-buffer scratch of the kernel the module calls (prepacked weights: resilinet_depthwise_conv_s8_packed;
    else our wrapper), or Arm's number where it is larger (a module runs with either library)."""
    shapes = Dims.of(params["input_dims"]), Dims.of(params["filter_dims"]), Dims.of(params["output_dims"])
    arm = depthwise_conv_wrapper_s8_buffer_size(params["padding"], params["dilation"], *shapes, backend)
    rows = depthwise_rows_buffer_size(tuple(params["stride"]), tuple(params["padding"]), tuple(params["dilation"]),
                                      params["ch_mult"], *shapes, prepacked=bool(params.get("packed", False)))
    return arm if rows is None else max(arm, rows)


def fast_requant_exact(bias: np.ndarray, mults: list[int], shifts: list[int], input_offset: int, output_offset: int,
                       n_terms: int) -> bool:
    """resilinet_nn_requant_init's verdict (firmware/cmsis_nn/resilinet_nn_requant_init.c), taken at generate time
    for prepacked weights: the fast requantization is exact when every shift is a right shift of 1..31, the
    multipliers are non-negative and no accumulator (bias + n_terms products) can reach 2^30; and (the packed
    kernel's assembly adds it with SMMLAR, resilinet_nn_depthwise_rows.h) every rounding word
    ``rounding_word(output_offset, shift)`` is below 2^30 in magnitude."""
    x_max = max(abs(input_offset - 128), abs(input_offset + 127))
    limit = (1 << 30) - n_terms * x_max * 128
    if not (-128 <= output_offset <= 127 and limit > 1):
        return False
    if not all(-31 <= s <= -1 and m >= 0 for m, s in zip(mults, shifts)):
        return False
    if any(abs(rounding_word(output_offset, s)) >= 1 << 30 for s in shifts):
        return False
    # The C code bounds max |b| by OR-ing b ^ (b >> 31) over the channels; the same bound here.
    bound = 0
    for b in (int(v) for v in bias):
        bound |= b ^ (b >> 31)
    return bound + 1 < limit


def rounding_word(output_offset: int, shift: int) -> int:
    """K = (1 + 2 * output_offset) << e1 with e1 = ~shift (= -shift - 1), the fast requantization's rounding word:
    SMMLAR adds it before the shift, which is the + (1 + 2 * output_offset) after it (resilinet_nn_depthwise_rows.h)."""
    return (1 + 2 * output_offset) * (1 << (~shift))


def packed_depthwise_words(wdata: np.ndarray, bias: np.ndarray, mults: list[int], shifts: list[int],
                           fast: bool, output_offset: int, transposed: bool = False) -> np.ndarray:
    """The layout resilinet_depthwise_conv_s8_packed streams (arm_nnfunctions.h): [fast], then per output channel
    its int16 weight pairs (3x3: [w0 | w1] [w1 | w2] per kernel row, the 3x3 loops' operands; otherwise
    [w(2t) | w(2t+1)], an odd row ending in a zero) and bias, multiplier, shift, rounding word. On the fast path
    the weights and the bias are doubled (the accumulator then holds the 2 * acc SMMLAR wants), the shift is
    stored as ~shift and the rounding word is :func:`rounding_word` (else 0). ``transposed``
    (:func:`rows_transposed`): the kernel's columns as its rows.
    Returned as int32 values (the words' bit patterns)."""
    _, kh, kw, cout = wdata.shape
    scale = 2 if fast else 1
    w = wdata.reshape(kh, kw, cout).astype(np.int64) * scale
    if transposed:
        w = w.transpose(1, 0, 2)
        kh, kw = kw, kh
    if (kh, kw) == (3, 3):
        lo, hi = w[:, [0, 1], :], w[:, [1, 2], :]
    else:
        kw2 = 2 * ((kw + 1) // 2)
        padded = np.zeros((kh, kw2, cout), dtype=np.int64)
        padded[:, :kw, :] = w
        lo, hi = padded[:, 0::2, :], padded[:, 1::2, :]
    words = ((lo & 0xFFFF) | ((hi & 0xFFFF) << 16)).reshape(-1, cout).T  # [cout, kh * pairs]
    quant_words = np.stack([np.asarray(bias, dtype=np.int64) * scale, np.asarray(mults, dtype=np.int64),
                            np.asarray([~s if fast else s for s in shifts], dtype=np.int64),
                            np.asarray([rounding_word(output_offset, s) if fast else 0 for s in shifts],
                                       dtype=np.int64)], axis=1)
    body = np.concatenate([words.astype(np.uint32).view(np.int32).astype(np.int64), quant_words], axis=1)
    return np.concatenate([np.asarray([1 if fast else 0], dtype=np.int64), body.reshape(-1)])


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
    consts = [*weight_and_bias_arrays(ctx, w, wdata, cout, "filter"), *requant_arrays(ctx, mults, shifts)]
    # Our kernels take the weights prepacked (no per-channel packing at run time, less scratch) wherever the
    # row-buffer kernel applies; a build against Arm's CMSIS-NN the int8 filter and quantization arrays.
    packed = dil == (1, 1) and 1 <= kh <= ROWS_MAX_KH and 1 <= kw <= ROWS_MAX_KW
    if packed:
        fast = fast_requant_exact(consts[1].values, mults, shifts, -x.quant.zero_point, y.quant.zero_point, kh * kw)
        for a in consts:
            a.build = "cmsis_nn"
        consts.append(ConstArray(ctx.key("packed"), "int32_t",
                                 packed_depthwise_words(wdata, consts[1].values, mults, shifts, fast,
                                                        y.quant.zero_point, rows_transposed(kh, kw, oh, ow)),
                                 f"filter {list(w.shape)}, bias and requantization, packed "
                                 f"({'fast' if fast else 'exact'} requantization)", build="resilinet"))
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=DEPTHWISE_CONV.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(
            input=x.index, output=y.index, ch_mult=ch_mult, packed=packed,
            input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point,
            stride=stride, padding=pad, dilation=dil, act_min=act_min, act_max=act_max,
            input_dims=dims(n, h, wd, c), filter_dims=dims(1, kh, kw, cout),
            bias_dims=dims(1, 1, 1, cout), output_dims=dims(n, oh, ow, oc),
        ),
        consts=consts,
        macs=n * oh * ow * cout * kh * kw,
        summary=f"{kh}x{kw} depthwise x{ch_mult} s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )
