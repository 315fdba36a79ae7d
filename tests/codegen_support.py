"""Shared helpers for the code generator tests: model locations and a bit-exactness check."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codegen import ModuleInfo, generate_module
from codegen.verify import Sample, Target, compare, sample_values, tflm_reference
from host.paths import shared_models_dir

MLPERF_MODELS = ("ic_resnet8_int8", "kws_dscnn_int8", "ad_autoencoder_int8")

#: TFLM's total arena for these models (the project's measured baseline), bytes.
TFLM_ARENA_BYTES = {"ic_resnet8_int8": 55_984, "kws_dscnn_int8": 24_272, "ad_autoencoder_int8": 3_984}


def session_test_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Keras and hand-written test models, converted once per test session (≈10 s with TF's import)
    and shared by every test module that asks (session fixtures are per module when imported)."""
    from codegen_models import build_keras_models, build_tiny_models

    pytest.importorskip("tensorflow")
    out = tmp_path_factory.getbasetemp() / "codegen_models"
    done = out / "models.txt"
    if not done.exists():
        out.mkdir(parents=True, exist_ok=True)
        paths = {**build_keras_models(out), **build_tiny_models(out)}
        done.write_text("\n".join(f"{k}={v}" for k, v in paths.items()))
    return {k: Path(v) for k, v in (line.split("=", 1) for line in done.read_text().splitlines())}


def mlperf_model(name: str) -> Path:
    """Path of a shared MLPerf Tiny model, or skip the test with the reason."""
    models = shared_models_dir()
    if models is None:
        pytest.skip("shared models directory not found (set RESILINET_DATA so that <data>/../models exists)")
    path = models / "mlperf_tiny" / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def mixed_samples(module: ModuleInfo, count: int, seed: int) -> list[Sample]:
    """Half uniform over each input's whole range (saturating), half narrow around its zero point.

    Uniform noise drives classifiers into saturated softmax outputs; the narrow half keeps
    intermediate values in the ranges the model was calibrated for.
    """
    rng = np.random.default_rng(seed)
    # int16 and float inputs too: codegen.verify.sample_values scales both halves to the input's type.
    return [[sample_values(spec, rng, narrow=i % 2 == 1) for spec in module.inputs] for i in range(count)]


def assert_bit_exact(model: Path, target: Target, work_dir: Path, samples: int, seed: int = 0,
                     probe_tensors: tuple[int, ...] = ()) -> ModuleInfo:
    """Generate, build on ``target``, run ``samples`` inputs and require zero differing bytes vs TFLM."""
    module = generate_module(model, work_dir / "module", probe_tensors=probe_tensors)
    data = mixed_samples(module, samples, seed)
    got = target.build(module, work_dir / "build").run(data)
    want = tflm_reference(model, module, data)
    results = compare(module, got, want)
    bad = [r for r in results if r.mismatched_bytes]
    assert not bad, "mismatching bytes vs tflite_micro: " + "; ".join(
        f"{r.name}: {r.mismatched_bytes}/{r.total_bytes} in {r.mismatched_samples} samples, max |diff| {r.max_abs_diff}"
        for r in bad)
    return module
