"""Randomized kernel stress test (issue 17): random shapes and quantization per op, every output byte of
every case identical to the TFLM interpreter on the plain C path (host), the DSP path emulated in C
(host-dsp) and the real Cortex-M4 DSP path (QEMU mps2-an386, one boot for every case).

The models come from tests/kernel_stress.py (seeded, no converter); bench/bench_stress.py runs >= 100 k
cases for BENCHMARKS.md. Here: one model of 60 cases x 40 random inputs = 2,400 cases per target.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from codegen import build_module

from kernel_stress import OP_KINDS, StressModel, build_stress_model, check_stress_model

SEED = 17
OPS = 60
SAMPLES = 40


@pytest.fixture(scope="module")
def stress_model(tmp_path_factory: pytest.TempPathFactory) -> StressModel:
    return build_stress_model(SEED, OPS, tmp_path_factory.mktemp("kernel_stress"))


def test_generator_covers_every_kind_and_is_seeded(stress_model: StressModel, tmp_path: Path) -> None:
    kinds = Counter(c.kind for c in stress_model.cases)
    assert set(kinds) == set(OP_KINDS), kinds
    multipliers = {c.description.split()[1] for c in stress_model.cases if c.kind == "depthwise"}
    assert len(multipliers) >= 3, multipliers  # several channel multipliers, not only 1
    again = build_stress_model(SEED, OPS, tmp_path)
    assert again.path.read_bytes() == stress_model.path.read_bytes()
    assert build_stress_model(SEED + 1, OPS, tmp_path).path.read_bytes() != stress_model.path.read_bytes()


def test_chained_cases_overlap_in_the_arena(stress_model: StressModel) -> None:
    # The chained window cases put the op's input and output in the arena: the plan lets outputs start below
    # their dying inputs, so the random shapes also check the overlap rules (codegen/ops/overlap.py).
    module = build_module(stress_model.path)
    windows = [o for o in module.plan.overlaps if module.steps[o.step].kernel in ("conv", "avgpool", "maxpool")]
    assert windows, "no convolution / pooling output overlaps its input"


@pytest.mark.parametrize("target", ["host", "host-dsp", "qemu"])
def test_random_kernel_cases_match_tflm(stress_model: StressModel, target: str, tmp_path: Path) -> None:
    result = check_stress_model(stress_model, target, SAMPLES, tmp_path)
    assert result.cases == OPS * SAMPLES
    assert not result.failures, "\n".join(result.failures)
