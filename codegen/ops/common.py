"""Shape, padding and quantization helpers several op lowerings share (convolutions, pooling, FC, PAD)."""
from __future__ import annotations

import numpy as np

from ..graph import Tensor
from ..step import ConstArray
from .context import PADDING, OpContext


def nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``shape`` (rank <= 4) padded with leading 1s to N, H, W, C."""
    if len(shape) > 4:
        raise ValueError(shape)
    s = (1,) * (4 - len(shape)) + tuple(shape)
    return s[0], s[1], s[2], s[3]


def dims(n: int, h: int, w: int, c: int) -> dict[str, int]:
    """A ``cmsis_nn_dims`` as the templates read it (``Step.params`` values stay plain data)."""
    return {"n": n, "h": h, "w": w, "c": c}


def out_size(padding: str, size: int, k: int, stride: int, dilation: int) -> int:
    """TFLite's output size of a window op along one axis."""
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size + stride - eff) // stride


def pad_amount(stride: int, dilation: int, size: int, k: int, out: int) -> int:
    # TFLite ComputePaddingWithOffset: leading pad; the odd extra pixel lands at the end.
    eff = (k - 1) * dilation + 1
    total = max(0, (out - 1) * stride + eff - size)
    return total // 2


def window_options(ctx: OpContext) -> tuple[tuple[int, int], tuple[int, int]]:
    """(stride, dilation), each (h, w), of a convolution's options."""
    o = ctx.op.options
    stride = (int(o.get("stride_h", 1)), int(o.get("stride_w", 1)))
    dil = (int(o.get("dilation_h_factor", 1) or 1), int(o.get("dilation_w_factor", 1) or 1))
    return stride, dil


def spatial_padding(ctx: OpContext, in_hw: tuple[int, int], k_hw: tuple[int, int], out_hw: tuple[int, int],
                    stride_hw: tuple[int, int], dil_hw: tuple[int, int]) -> tuple[int, int]:
    """Leading (h, w) padding of a window op; checks the output size matches the padding mode."""
    padding = PADDING.get(int(ctx.op.options.get("padding", 0) or 0))
    if padding is None:
        raise ctx.fail(f"padding type {ctx.op.options.get('padding')} is not supported")
    if min(stride_hw) < 1 or min(dil_hw) < 1:  # TFLM would divide by zero computing the output size
        raise ctx.fail(f"stride {stride_hw} and dilation {dil_hw} must be at least 1",
                       "The options are invalid: re-convert the model, or the file is damaged")
    pads = []
    for axis in range(2):
        expected = out_size(padding, in_hw[axis], k_hw[axis], stride_hw[axis], dil_hw[axis])
        if expected != out_hw[axis]:
            raise ctx.fail(f"output {'height' if axis == 0 else 'width'} {out_hw[axis]} does not match "
                           f"{padding} padding (expected {expected})")
        pads.append(pad_amount(stride_hw[axis], dil_hw[axis], in_hw[axis], k_hw[axis], out_hw[axis]))
    return pads[0], pads[1]


def const_bias(ctx: OpContext, channels: int, index: int = 2, dtype: str = "int32") -> np.ndarray | None:
    """The op's bias (input ``index``, one ``dtype`` value per output channel), None when it has none."""
    b = ctx.optional(index)
    if b is None:
        return None
    data = ctx.const(b, "bias", dtype)
    if data.size != channels:
        raise ctx.fail(f"bias has {data.size} values for {channels} output channels")
    return data.reshape(-1).astype(np.dtype(dtype))


def bias_values(ctx: OpContext, channels: int) -> np.ndarray:
    """The int32 bias (input 2), zeros when the op has none."""
    data = const_bias(ctx, channels)
    return np.zeros(channels, dtype=np.int32) if data is None else data


def weight_scales(ctx: OpContext, w: Tensor, channels: int, axis: int) -> tuple[float, ...]:
    """Scales of symmetric int8 weights, per tensor or per channel along ``axis``."""
    if w.dtype != "int8":
        raise ctx.fail(f"weights '{w.name}' are {w.dtype}; only int8 weights are supported",
                       "int4/int16/float weights need a different kernel set")
    if w.quant is None:
        raise ctx.fail(f"weights '{w.name}' are not quantized")
    if any(z != 0 for z in w.quant.zero_points):
        raise ctx.fail(f"weights '{w.name}' have a non-zero zero point", "int8 weights must be symmetric")
    if w.quant.per_channel and (len(w.quant.scales) != channels or w.quant.axis != axis):
        raise ctx.fail(f"weights '{w.name}' are quantized along axis {w.quant.axis} with "
                       f"{len(w.quant.scales)} scales; expected {channels} along axis {axis}")
    return w.quant.scales


def requant_arrays(ctx: OpContext, mults: list[int], shifts: list[int]) -> list[ConstArray]:
    """Per-channel multiplier and shift tables (``cmsis_nn_per_channel_quant_params``)."""
    return [
        ConstArray(ctx.key("mult"), "int32_t", np.asarray(mults, dtype=np.int64), "requantization multipliers", False),
        ConstArray(ctx.key("shift"), "int32_t", np.asarray(shifts, dtype=np.int64), "requantization shifts", False),
    ]


def weight_and_bias_arrays(ctx: OpContext, w: Tensor, wdata: np.ndarray, cout: int, what: str) -> list[ConstArray]:
    """The weights (flattened as stored) and bias of a convolution or FC, in emission order."""
    return [ConstArray(ctx.key("weights"), "int8_t", wdata.reshape(-1), f"{what} {list(w.shape)}"),
            ConstArray(ctx.key("bias"), "int32_t", bias_values(ctx, cout), f"bias [{cout}]")]
