"""Scratch-buffer sizes of the CMSIS-NN kernels, computed on the host.

Python mirrors of CMSIS-NN's ``*_get_buffer_size_dsp`` / pure-C ``*_get_buffer_size`` functions (v6-v8
s8 API). The generated module reserves, for every op, the largest size over the selected backends so
the same C file works with our kernels and with Arm's on any Cortex-M with or without the DSP
extension. MVE (Helium) sizes are different and not covered: the generated code checks the linked
library's own ``*_get_buffer_size`` at run time and fails the op (never overruns) if it needs more.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Backends the reserved scratch must satisfy.
DEFAULT_BACKENDS: tuple[str, ...] = ("c", "dsp")


@dataclass(frozen=True)
class Dims:
    n: int
    h: int
    w: int
    c: int


def _align4(x: int) -> int:
    return (x + 3) & ~3


def convolve_s8(input_dims: Dims, filter_dims: Dims, backend: str) -> int:
    # Two int16 im2col columns (same for pure C and DSP builds).
    del backend
    return 2 * _align4(filter_dims.w * filter_dims.h * input_dims.c) * 2


def convolve_1x1_s8(input_dims: Dims, backend: str) -> int:
    # CMSIS-NN's 1x1 kernels need no buffer; resilinet's DSP ones take two int16 columns of the input
    # channels (firmware/cmsis_nn: rnn_conv_1x1_buffer_size_dsp).
    return 2 * _align4(input_dims.c) * 2 if backend == "dsp" else 0


def convolve_wrapper_s8(pad_hw: tuple[int, int], stride_hw: tuple[int, int], dilation_hw: tuple[int, int],
                        input_dims: Dims, filter_dims: Dims, output_dims: Dims, backend: str) -> int:
    del output_dims
    if pad_hw == (0, 0) and filter_dims.h == 1 and filter_dims.w == 1 and dilation_hw == (1, 1):
        return convolve_1x1_s8(input_dims, backend)  # 1x1 kernels (fast and strided)
    # The 1xN special case uses arm_convolve_s8's buffer size as well.
    return convolve_s8(input_dims, filter_dims, backend)


def depthwise_wrapper_s8(pad_hw: tuple[int, int], dilation_hw: tuple[int, int], input_dims: Dims,
                         filter_dims: Dims, output_dims: Dims, backend: str) -> int:
    if backend == "c":
        return 0
    if not (input_dims.c == output_dims.c and input_dims.n == 1 and dilation_hw == (1, 1)):
        return 0
    if filter_dims.h == 3 and filter_dims.w == 3 and pad_hw[0] <= 1 and pad_hw[1] <= 1:
        return 0  # arm_depthwise_conv_3x3_s8 works without a buffer
    return input_dims.c * filter_dims.w * filter_dims.h * 2


def fully_connected_s8(filter_dims: Dims, backend: str) -> int:
    del filter_dims, backend
    return 0


def avgpool_s8(output_w: int, channels: int, backend: str) -> int:
    del output_w
    return channels * 4 if backend == "dsp" else 0


def worst_case(sizes: dict[str, int]) -> int:
    return max(sizes.values()) if sizes else 0
