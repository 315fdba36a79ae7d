"""``python -m codegen verify --target qemu``: the MLPerf Tiny models on an emulated Cortex-M4 (QEMU
mps2-an386, DSP) match tflite_micro byte for byte, with a deterministic instruction count per inference.

Instruction counts are printed (``pytest -s``) and recorded as test properties (``--junitxml``).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codegen.qemu_target import QemuTarget
from codegen.verify import TARGETS, verify_model
from codegen_support import mlperf_model

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm")

REPO = Path(__file__).resolve().parents[1]
#: Samples per model (ResNet-8 is ~42M instructions per inference with our kernels: a few only).
SAMPLES = {"ic_resnet8_int8": 2, "kws_dscnn_int8": 3, "ad_autoencoder_int8": 4}


def test_targets_registered() -> None:
    assert {"qemu", "qemu-f405"} <= set(TARGETS)
    assert TARGETS["qemu"]().board == "qemu_an386" and TARGETS["qemu-f405"]().board == "qemu_f405"


@pytest.mark.parametrize("model", list(SAMPLES))
def test_mlperf_bit_exact_on_emulated_m4(model: str, tmp_path: Path, record_property) -> None:
    target = QemuTarget("qemu_an386", verbose=False)
    result = verify_model(mlperf_model(model), samples=SAMPLES[model], seed=3, target=target, work_dir=tmp_path)
    assert result.ok, [o for o in result.outputs if o.mismatched_bytes]
    stats = target.stats
    assert stats is not None and len(stats.instructions) == SAMPLES[model]
    assert abs(stats.calibration_error) < 1e-3
    median = int(np.median(stats.instructions))
    record_property(f"{model}_instructions_per_inference", median)
    record_property(f"{model}_instructions_per_mac", round(median / result.module.macs, 3))
    print(f"\n{model}: {stats.summary()}; {median / result.module.macs:.2f} instructions per MAC")
    # Within the plausible range for int8 kernels on an M4: above the SMLAD bound (2 MACs per instruction; ours
    # run ResNet-8 at ~0.93 per MAC), below 20 (TFLM + CMSIS-NN: 2.2-2.9 per MAC).
    assert 0.5 < median / result.module.macs < 20.0


def test_count_is_deterministic_and_board_independent(tmp_path: Path) -> None:
    """The same input gives the same count every time; netduinoplus2 (168 MHz) agrees with mps2-an386
    (25 MHz) to within one SysTick count of the coarser board."""
    model = mlperf_model("ad_autoencoder_int8")
    x = np.random.default_rng(7).integers(-128, 128, size=(1, 640), dtype=np.int8)
    np.save(tmp_path / "same.npy", np.concatenate([x, x, x]))
    counts = {}
    for board in ("qemu_an386", "qemu_f405"):
        target = QemuTarget(board, verbose=False)
        result = verify_model(model, inputs=tmp_path / "same.npy", target=target, work_dir=tmp_path / board)
        assert result.ok
        assert len(set(target.stats.counts)) == 1, target.stats.counts
        counts[board] = target.stats
    an386, f405 = counts["qemu_an386"], counts["qemu_f405"]
    assert abs(an386.instructions[0] - f405.instructions[0]) <= an386.resolution + f405.resolution


def test_cli(tmp_path: Path) -> None:
    model = mlperf_model("ad_autoencoder_int8")
    proc = subprocess.run([sys.executable, "-m", "codegen", "verify", str(model), "--target", "qemu", "--samples", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "instructions per inference" in proc.stdout and "bit-exact with tflite_micro" in proc.stdout, proc.stdout
