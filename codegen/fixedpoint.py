"""gemmlowp / TFLM fixed-point arithmetic in Python integers, for host-side tables of int8 kernels.

An int8 elementwise op maps each of the 256 input values to one output value, so the code generator runs
TFLM's reference arithmetic for that op here, once per possible input, and the board only looks the result
up (``resilinet_lut_s8``). Every function mirrors the C++ it names bit for bit: int32 wrap-around where
the C++ wraps, truncating division where it divides, saturation where it saturates. The tables are checked
against the tflite_micro interpreter for all 256 inputs (tests/test_op_corpus.py).
"""
from __future__ import annotations

import math

import numpy as np

from . import quant

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def wrap32(x: int) -> int:
    """int32 two's-complement wrap-around (what the C++ does on overflow in practice)."""
    return ((x + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)


def wrap16(x: int) -> int:
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _div_trunc(a: int, b: int) -> int:
    """C integer division (rounds toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul for int32."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _div_trunc(ab + nudge, 1 << 31)


def srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul for int16."""
    if a == b == INT16_MIN:
        return INT16_MAX
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return wrap16(_div_trunc(ab + nudge, 1 << 15))


def sdhm16(a: int, b: int) -> int:
    """TFLite SaturatingDoublingHighMul for int16 (rounds toward zero, no nudge)."""
    if a == b == INT16_MIN:
        return INT16_MAX
    return wrap16(_div_trunc(a * b, 1 << 15))


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT: arithmetic shift right, halves away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def saturating_mul_by_pot(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT for int32, ``exponent`` >= 0 (left shift, saturating)."""
    if exponent == 0:
        return x
    limit = (1 << (31 - exponent)) - 1
    if x > limit:
        return INT32_MAX
    if x < -limit:
        return INT32_MIN
    return x << exponent


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier (double rounding, the default build)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rounding_divide_by_pot(srdhm(wrap32(x * (1 << left)), multiplier), right)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """Q0.31 in and out."""
    constant_term, one_third = 1895147668, 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), one_third) + x2), 1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


#: exp(-2^k) in Q0.31 for k = -2 .. 4 (gemmlowp's barrel shifter constants).
_EXP_OF_MINUS_POW2 = {-2: 1672461947, -1: 1302514674, 0: 790015084, 1: 290630308, 2: 39332535, 3: 720401, 4: 242}


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp exp_on_negative_values: ``a`` <= 0 with ``integer_bits`` integer bits, result Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_mul_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_OF_MINUS_POW2.items():
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    return INT32_MAX if a == 0 else result


def _newton_reciprocal_q2_29(half_denominator: int) -> int:
    """x ~ 1 / half_denominator in Q2.29 by three Newton-Raphson steps (gemmlowp's 48/17 - 32/17 d start)."""
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half_denominator, x))
        x = wrap32(x + saturating_mul_by_pot(srdhm(x, one_minus), 2))
    return x


def _rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    return _div_trunc(s + (1 if s >= 0 else -1), 2)


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    return saturating_mul_by_pot(_newton_reciprocal_q2_29(_rounding_half_sum(a, INT32_MAX)), 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_reciprocal_q2_29(_rounding_half_sum(a, INT32_MAX))
    return saturating_mul_by_pot(wrap32(x - (1 << 29)), 2)


def logistic(a: int, integer_bits: int) -> int:
    """gemmlowp logistic: Q(integer_bits) in, Q0.31 out."""
    if a == 0:
        return 1 << 30
    positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs(a)), integer_bits))
    return positive if a > 0 else wrap32(INT32_MAX - positive)


def tanh(a: int, integer_bits: int) -> int:
    """gemmlowp tanh: Q(integer_bits) in, Q0.31 out (exp of 2a read with one more integer bit)."""
    if a == 0:
        return 0
    n = a if a < 0 else wrap32(-a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return wrap32(-t) if a < 0 else t


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite CalculateInputRadius."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


INT8_VALUES = np.arange(-128, 128, dtype=np.int32)


def _saturating_table(input_zero_point: int, input_scale: float, fn: str) -> tuple[np.ndarray, dict[str, int]]:
    """TFLM's int8 LOGISTIC / TANH Prepare + Eval (reference_integer_ops) for every int8 input.

    Prepare: multiplier = scale * 2^27 (4 integer bits) split by frexp; inputs beyond the radius saturate.
    Eval: the gemmlowp function, then the Q0.31 result rounded to the int8 output grid (LOGISTIC: 1/256 with
    zero point -128; TANH: 1/128 with zero point 0), whatever the output tensor says, as TFLM does.
    """
    real = float(np.float64(input_scale)) * float(1 << 27)
    q, left_shift = math.frexp(real)
    multiplier = int(quant.round_half_away(q * (1 << 31)))
    radius = calculate_input_radius(4, left_shift)
    out = np.empty(256, dtype=np.int8)
    for k, v in enumerate(INT8_VALUES):
        x = int(v) - input_zero_point
        if x <= -radius:
            out[k] = -128
        elif x >= radius:
            out[k] = 127
        else:
            q4 = multiply_by_quantized_multiplier(x, multiplier, left_shift)
            if fn == "logistic":
                y = rounding_divide_by_pot(logistic(q4, 4), 23) - 128
            else:
                y = rounding_divide_by_pot(tanh(q4, 4), 24)
            out[k] = min(max(y, -128), 127)
    return out, dict(multiplier=multiplier, left_shift=left_shift, radius=radius)


def logistic_table(input_zero_point: int, input_scale: float) -> np.ndarray:
    return _saturating_table(input_zero_point, input_scale, "logistic")[0]


def tanh_table(input_zero_point: int, input_scale: float) -> np.ndarray:
    return _saturating_table(input_zero_point, input_scale, "tanh")[0]


def leaky_relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, alpha: float) -> np.ndarray:
    """TFLM's int8 LEAKY_RELU (CalculateOpDataLeakyRelu + QuantizeLeakyRelu) for every int8 input.

    The multipliers are computed in float32 (``scale * alpha / scale``), then QuantizeMultiplier; a negative
    alpha multiplies by its magnitude and negates, as the reference kernel does.
    """
    s_in, s_out = np.float32(in_scale), np.float32(out_scale)
    m_alpha, sh_alpha = quant.quantize_multiplier(float(s_in * np.float32(alpha) / s_out))
    m_id, sh_id = quant.quantize_multiplier(float(s_in / s_out))
    out = np.empty(256, dtype=np.int8)
    for k, v in enumerate(INT8_VALUES):
        x = int(v) - in_zp
        if x >= 0:
            y = out_zp + multiply_by_quantized_multiplier(x, m_id, sh_id)
        else:
            scaled = multiply_by_quantized_multiplier(x, abs(m_alpha), sh_alpha)
            y = out_zp + (-scaled if m_alpha < 0 else scaled)
        out[k] = min(max(y, -128), 127)
    return out


def _down_scale_int32_to_int16_multiplier(m: int) -> int:
    """TFLite DownScaleInt32ToInt16Multiplier."""
    if m >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m + (1 << 15)) >> 16


def _saturating_left_shift16(value: int, amount: int) -> int:
    return min(max(value * (1 << amount), INT16_MIN), INT16_MAX)


def hard_swish_params(in_scale: float, out_scale: float) -> tuple[int, int, int, int]:
    """TFLM HardSwishPrepare for int8: (output multiplier int16, its exponent, reluish multiplier int16, its
    exponent), from float32 scale arithmetic as the C++ does."""
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(in_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m32, out_exp = quant.quantize_multiplier(float(hires_input_scale / np.float32(out_scale)))
    relu_m32, relu_exp = quant.quantize_multiplier(float(hires_input_scale / reluish_scale))
    if out_exp > 0:
        raise ValueError(f"output multiplier exponent {out_exp} > 0 (TFLM's HARD_SWISH rejects this model)")
    return (_down_scale_int32_to_int16_multiplier(out_m32), out_exp,
            _down_scale_int32_to_int16_multiplier(relu_m32), relu_exp)


def hard_swish_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """TFLM's quantized reference HardSwish (int16 fixed point) for every int8 input."""
    out_m, out_exp, relu_m, relu_exp = hard_swish_params(in_scale, out_scale)
    out = np.empty(256, dtype=np.int8)
    for k, v in enumerate(INT8_VALUES):
        input_value = wrap16(int(v) - in_zp)
        hires = wrap16(input_value * (1 << 7))
        preshift_output_scale = srdhm16(hires, out_m)
        reluish = hires
        if relu_exp > 0:
            reluish = _saturating_left_shift16(reluish, relu_exp - 1)
        reluish = srdhm16(reluish, relu_m)
        if relu_exp > 0:
            reluish = _saturating_left_shift16(reluish, 1)
        if relu_exp < 0:
            reluish = rounding_divide_by_pot(reluish, -relu_exp)
        reluish = wrap16((reluish + (1 << 15)) >> 1)
        preshift_output = sdhm16(reluish, preshift_output_scale)
        y = wrap16(rounding_divide_by_pot(preshift_output, -out_exp) + out_zp)
        out[k] = min(max(y, -128), 127)
    return out
