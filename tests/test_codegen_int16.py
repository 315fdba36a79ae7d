"""The 16x8 family's refusals and host-side arithmetic (issue 18). Bit-exactness of the 16x8 kernels on host,
host-dsp and qemu is tests/test_op_corpus.py's job (tests/op_corpus/int16.py); here: what the lowering refuses,
with which message, and that the CLI turns it into one ``error:`` line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codegen import UnsupportedOpError, build_module
from codegen.ops.int16_elementwise import softmax_lut

from codegen_models import TinyModel

REPO = Path(__file__).resolve().parent.parent


def _conv16(path: Path, bias_dtype: str, out_zero_point: int = 0) -> Path:
    """One 16x8 CONV_2D (3x3 SAME) with a bias of ``bias_dtype``."""
    m = TinyModel()
    s = m.schema
    rng = np.random.default_rng(0)
    x = m.tensor("x", [1, 5, 5, 4], dtype="int16", scale=0.001)
    w = m.tensor("w", [6, 3, 3, 4], dtype="int8", scale=0.01,
                 data=rng.integers(-127, 128, (6, 3, 3, 4)).astype(np.int8))
    b = m.tensor("b", [6], dtype=bias_dtype, scale=0.00001, data=np.arange(6, dtype=np.int32) * 100)
    y = m.tensor("y", [1, 5, 5, 6], dtype="int16", scale=0.0013, zero_point=out_zero_point)
    o = s.Conv2DOptionsT()
    o.padding, o.strideW, o.strideH, o.dilationWFactor, o.dilationHFactor = s.Padding.SAME, 1, 1, 1, 1
    m.op(s.BuiltinOperator.CONV_2D, [x, w, b], [y], s.BuiltinOptions.Conv2DOptions, o)
    return m.save(path, [x], [y])


def test_int32_bias_16x8_conv_is_refused_with_the_remedy(tmp_path: Path) -> None:
    # TFLM accumulates such a conv in 32 bits and rounds differently: refusing beats a silent mismatch.
    with pytest.raises(UnsupportedOpError) as info:
        build_module(_conv16(tmp_path / "bias32.tflite", "int32"))
    assert info.value.op_type == "CONV_2D"
    assert "int32" in str(info.value) and "int64" in str(info.value)
    assert "_experimental_full_integer_quantization_bias_type" in str(info.value)


def test_asymmetric_int16_activation_is_refused(tmp_path: Path) -> None:
    # (The bias is int32 as well, but the activations are checked first.)
    with pytest.raises(UnsupportedOpError) as info:
        build_module(_conv16(tmp_path / "zp.tflite", "int32", out_zero_point=5))
    assert "zero point 5" in str(info.value) and "symmetric" in str(info.value)


def test_cli_reports_one_error_line_and_status_2(tmp_path: Path) -> None:
    model = _conv16(tmp_path / "bias32.tflite", "int32")
    proc = subprocess.run([sys.executable, "-m", "codegen", "generate", str(model), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "CONV_2D" in lines[0]
    assert "Traceback" not in proc.stderr


def test_softmax_luts_have_tflm_shape() -> None:
    """The exp LUT spans exp(-10)..exp(0) on the int16 grid of [-1, 1] (its last entry 1.0 saturates to
    32767), the 1/(1+x) LUT goes from 1 down to 1/2; both are monotonic, 513 entries (TFLM's layout)."""
    exp_lut = softmax_lut(lambda v: np.float32(np.exp(np.float64(v))), -10.0, 0.0)
    inv_lut = softmax_lut(lambda v: np.float32(np.float32(1.0) / (np.float32(1.0) + v)), 0.0, 1.0)
    assert exp_lut.shape == inv_lut.shape == (513,)
    assert exp_lut[-1] == 32767 and 0 <= exp_lut[0] <= 2  # exp(-10) * 32768 = 1.49
    assert inv_lut[0] == 32767 and inv_lut[-1] == 16384
    assert np.all(np.diff(exp_lut) >= 0) and np.all(np.diff(inv_lut) <= 0)
