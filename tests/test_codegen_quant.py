"""Host-side quantization arithmetic and small lowering helpers (fast unit tests)."""
from __future__ import annotations

import math

import pytest

from codegen import quant
from codegen.emit import sanitize_name
from codegen.ops.elementwise import broadcast_plan


@pytest.mark.parametrize("real, expected", [
    (1.0, (1 << 30, 1)),
    (0.5, (1 << 30, 0)),
    (0.75, (3 << 29, 0)),
    (0.0, (0, 0)),
    (2.0 ** -40, (0, 0)),  # below 2^-31: flushed to zero like TFLite
    (1.0 - 2.0 ** -40, (1 << 30, 1)),  # rounds up to 2^31, renormalized
])
def test_quantize_multiplier_edges(real: float, expected: tuple[int, int]) -> None:
    assert quant.quantize_multiplier(real) == expected


@pytest.mark.parametrize("real", [1e-6, 0.0123, 0.3333333, 0.999, 1.7, 123.456])
def test_quantize_multiplier_represents_the_value(real: float) -> None:
    mult, shift = quant.quantize_multiplier(real)
    assert (1 << 30) <= mult < (1 << 31)
    assert math.isclose(mult * 2.0 ** (shift - 31), real, rel_tol=2.0 ** -30)


def test_round_half_away_from_zero() -> None:
    assert [quant.round_half_away(v) for v in (0.5, 1.5, -0.5, -1.5, 2.4999)] == [1, 2, -1, -2, 2]


def test_activation_ranges() -> None:
    scale = 6.0 / 255
    assert quant.activation_range("NONE", scale, -128) == (-128, 127)
    assert quant.activation_range("RELU", scale, -128) == (-128, 127)
    assert quant.activation_range("RELU", 0.05, 10) == (10, 127)
    assert quant.activation_range("RELU6", 0.1, -20) == (-20, 40)
    assert quant.activation_range("RELU_N1_TO_1", 0.1, 0) == (-10, 10)
    with pytest.raises(ValueError):
        quant.activation_range("TANH", 0.1, 0)


def test_softmax_params() -> None:
    p = quant.softmax_params(1.0, 0.1)
    # beta * scale * 2^26 = 6710886.4 -> Q31 multiplier with left shift 23
    assert p.shift == 23 and (1 << 30) <= p.multiplier < (1 << 31)
    assert p.diff_min == -math.floor(31 * 2.0 ** 26 / 2.0 ** 23)


def test_add_params_use_20_bits_of_headroom() -> None:
    p = quant.add_params(0.02, 3, 0.05, -7, 0.06, 1)
    assert p.left_shift == 20
    assert p.input1_offset == -3 and p.input2_offset == 7 and p.output_offset == 1
    assert all(s <= 0 for s in (p.input1_shift, p.input2_shift, p.output_shift))
    # The larger input is scaled by exactly 1/2.
    assert (p.input2_multiplier, p.input2_shift) == (1 << 30, 0)


def test_mean_multiplier_folds_in_the_count() -> None:
    mult, shift = quant.mean_multiplier(0.5, 0.5, 64)
    assert mult * 2.0 ** (shift - 31) == 1 / 64
    mult, shift = quant.mean_multiplier(0.1, 0.07, 25)
    assert math.isclose(mult * 2.0 ** (shift - 31), 0.1 / 0.07 / 25, rel_tol=1e-8)


def test_broadcast_plan() -> None:
    assert broadcast_plan((1, 4, 4, 8), (1, 4, 4, 8), (1, 4, 4, 8)) == (128, [])
    # Per-channel constant against a feature map: 16 calls on 8-element blocks, constant not advancing.
    assert broadcast_plan((1, 4, 4, 8), (8,), (1, 4, 4, 8)) == (8, [(16, 8, 0, 8)])
    # Per-pixel scale over channels: the innermost axis is broadcast, so blocks of one element.
    block, loops = broadcast_plan((1, 2, 3, 1), (1, 2, 3, 5), (1, 2, 3, 5))
    assert block == 1 and loops == [(6, 1, 5, 5), (5, 0, 1, 1)]


def test_sanitize_name() -> None:
    assert sanitize_name("ic-resnet8.int8") == "ic_resnet8_int8"
    assert sanitize_name("8bit model") == "m_8bit_model"
    assert sanitize_name("---") == "model"
