"""The DSP (SIMD) kernels on an emulated Cortex-M4: generated modules match TFLM byte for byte, every layer."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codegen_qemu_smoke import build_and_run
from codegen_support import MLPERF_MODELS, mlperf_model, session_test_models

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm")


def test_mlperf_on_cortex_m4(tmp_path: Path) -> None:
    output = build_and_run([mlperf_model(m) for m in MLPERF_MODELS], tmp_path, samples=3)
    print("\n" + output)


SMALL_MODELS = ("conv_stack", "two_inputs", "broadcast_pad", "concat_axes", "quantize_alias", "pad_mean", "reshape_io")


# TensorFlow's converter warns about its own deprecations while building the test models.
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
def test_small_models_on_cortex_m4(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    models = session_test_models(tmp_path_factory)
    build_and_run([models[m] for m in SMALL_MODELS], tmp_path, samples=4)
