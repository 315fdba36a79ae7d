"""Host-side quantization arithmetic, reproducing TFLite/TFLM's Prepare() computations exactly.

Everything the C kernels need besides the tensors is computed here: multipliers/shifts, offsets,
activation clamps, softmax and elementwise-add parameters. The numeric type of every intermediate
(float32 vs double) follows TFLM's C++ so the integers come out identical.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INT8_MIN = -128
INT8_MAX = 127


def f32(x: float) -> float:
    """Round a Python float to the nearest float32 (as a C ``float`` would hold it)."""
    return float(np.float32(x))


def round_half_away(x: float) -> float:
    """``std::round`` / ``TfLiteRound``: halves round away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: real ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31).

    Positive shift means a left shift. Tiny values (shift < -31) flush to (0, 0) like TFLite.
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierSmallerThanOneExp`` (asserts the multiplier is below 1)."""
    if not 0.0 <= real < 1.0:
        raise ValueError(f"multiplier {real} must be in [0, 1)")
    mult, shift = quantize_multiplier(real)
    if shift > 0:
        raise ValueError(f"multiplier {real} gave left shift {shift}")
    return mult, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierGreaterThanOne``."""
    if real <= 1.0:
        raise ValueError(f"multiplier {real} must exceed 1")
    mult, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError(f"multiplier {real} gave right shift {shift}")
    return mult, shift


def per_channel_multipliers(input_scale: float, filter_scales: tuple[float, ...], output_scale: float,
                            channels: int) -> tuple[list[int], list[int]]:
    """Conv/depthwise/FC per-channel requantization: ``s_in * s_w[c] / s_out`` in double.

    A per-tensor filter scale is broadcast over all output channels, as TFLM does.
    """
    mults: list[int] = []
    shifts: list[int] = []
    for c in range(channels):
        s_w = filter_scales[c] if len(filter_scales) > 1 else filter_scales[0]
        m, s = quantize_multiplier(input_scale * s_w / output_scale)
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for int8 outputs.

    ``quantize(f) = zp + round(f / scale)`` with the division done in float32, as in TFLite.
    """

    def quantize(value: float) -> int:
        return zero_point + int(round_half_away(float(np.float32(value) / np.float32(scale))))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise ValueError(f"fused activation {activation} has no integer clamp")


@dataclass(frozen=True)
class SoftmaxParams:
    multiplier: int
    shift: int
    diff_min: int


def softmax_params(beta: float, input_scale: float, integer_bits: int = 5) -> SoftmaxParams:
    """TFLM int8 softmax Prepare: ``PreprocessSoftmaxScaling`` + ``CalculateInputRadius`` (double rounding)."""
    real = min(beta * input_scale * float(1 << (31 - integer_bits)), float((1 << 31) - 1))
    if real <= 1.0:
        # TFLM aborts on such a model too (TFLITE_CHECK_GT in QuantizeMultiplierGreaterThanOne).
        raise ValueError(f"softmax input scale {input_scale:.3g} is too small (its logits span less than "
                         f"{255 * input_scale:.3g}); TFLM cannot run this softmax either. Calibrate on real data "
                         f"or train the model first")
    mult, shift = quantize_multiplier_greater_than_one(real)
    max_input_rescaled = 1.0 * ((1 << integer_bits) - 1) * float(1 << (31 - integer_bits)) / float(1 << shift)
    radius = int(math.floor(max_input_rescaled))
    return SoftmaxParams(multiplier=mult, shift=shift, diff_min=-radius)


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    left_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int


def add_params(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int) -> AddParams:
    """TFLM int8 ADD Prepare: both inputs to a common scale 2*max(s1, s2) with 20 bits of headroom."""
    left_shift = 20
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(s1 / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(s2 / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one_exp(twice_max / (float(1 << left_shift) * s_out))
    return AddParams(-zp1, m1, sh1, -zp2, m2, sh2, left_shift, zp_out, mo, sho)


def mul_params(s1: float, s2: float, s_out: float) -> tuple[int, int]:
    """TFLM int8 MUL Prepare: ``s1 * s2 / s_out`` in double."""
    return quantize_multiplier(s1 * s2 / s_out)


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """TFLM's integer QuantizedMeanOrSum (mean): ``s_in / s_out`` with ``1 / count`` folded into the multiplier.

    The multiplier is shifted left by floor(log2(count)) (at most 32, and never so far that the final
    shift drops below -31) before the integer division by ``count``, keeping precision.
    """
    mult, shift = quantize_multiplier(input_scale / output_scale)
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << k) // count, shift - k


def float_to_quantized_int8(value: float, scale: float, zero_point: int) -> int:
    """TFLM ``FloatToQuantizedType<int8_t>``: round(value / scale) + zp (float32 division), clamped."""
    q = int(round_half_away(float(np.float32(value) / np.float32(scale)))) + zero_point
    return max(INT8_MIN, min(INT8_MAX, q))
