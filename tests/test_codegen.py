"""Code generator: generated C is byte-identical to the tflite_micro interpreter.

Each model is checked on two host builds: the portable C kernels, and the Cortex-M DSP (SIMD) kernels
compiled on the host with C models of the intrinsics (-DRESILINET_EMULATE_DSP), so both code paths are
verified here. test_codegen_qemu.py runs the real SIMD instructions on an emulated Cortex-M4.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codegen import UnsupportedOpError, build_module, generate_module, read_tflite
from codegen.emit import activation_tensors
from codegen.verify import HostTarget, verify_model

from codegen_support import MLPERF_MODELS, assert_bit_exact, mlperf_model, session_test_models

REPO = Path(__file__).resolve().parent.parent
_STRICT = ("-O2", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror")
TARGETS = {"host": HostTarget(cflags=_STRICT), "host-dsp": HostTarget(emulate_dsp=True, cflags=_STRICT)}

# TensorFlow's converter warns about its own deprecations while building the test models.
pytestmark = [pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning"),
              pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")]

# Sample counts: tflite_micro needs ~12 ms per ResNet-8 inference, ~4 ms for DS-CNN, 0.2 ms for the
# autoencoder on this machine; the C side is much faster.
MLPERF_SAMPLES = {"ic_resnet8_int8": 150, "kws_dscnn_int8": 400, "ad_autoencoder_int8": 2000}


@pytest.fixture(scope="module")
def test_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small Keras models converted to int8 and hand-written ones (built once per session)."""
    return session_test_models(tmp_path_factory)


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("model", MLPERF_MODELS)
def test_mlperf_bit_exact(model: str, target: str, tmp_path: Path) -> None:
    assert_bit_exact(mlperf_model(model), TARGETS[target], tmp_path, MLPERF_SAMPLES[model], seed=7)


@pytest.mark.parametrize("model", MLPERF_MODELS)
def test_mlperf_every_layer_bit_exact(model: str, tmp_path: Path) -> None:
    """Every intermediate activation too: a saturated softmax can hide an error in the layers below it."""
    path = mlperf_model(model)
    assert_bit_exact(path, TARGETS["host-dsp"], tmp_path, 8, seed=3, probe_tensors=tuple(activation_tensors(path)))


KERAS_AND_TINY = ("conv_stack", "two_inputs", "broadcast_pad", "concat_axes", "quantize_alias", "pad_mean",
                  "reshape_io")


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("model", KERAS_AND_TINY)
def test_small_models_bit_exact_layer_by_layer(model: str, target: str, test_models: dict[str, Path],
                                               tmp_path: Path) -> None:
    path = test_models[model]
    assert_bit_exact(path, TARGETS[target], tmp_path, 60, seed=11, probe_tensors=tuple(activation_tensors(path)))


def test_small_models_cover_every_supported_op(test_models: dict[str, Path],
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every registered op runs in a bit-exactness test: here, on the MLPerf models or in the op corpus
    (tests/test_op_corpus.py, the same session cache)."""
    from codegen import SUPPORTED_OPS
    from op_corpus import build_model, corpus_builders

    seen = {op.op_type for name in KERAS_AND_TINY for op in read_tflite(test_models[name]).operators}
    corpus, builders = tmp_path_factory.getbasetemp() / "op_corpus", corpus_builders()
    seen |= {op.op_type for name in builders for op in read_tflite(build_model(name, corpus, builders)).operators}
    seen |= {op.op_type for m in MLPERF_MODELS if (p := _mlperf_or_none(m)) for op in read_tflite(p).operators}
    assert set(SUPPORTED_OPS) <= seen, f"no test model uses {sorted(set(SUPPORTED_OPS) - seen)}"


def _mlperf_or_none(name: str) -> Path | None:
    try:
        return mlperf_model(name)
    except pytest.skip.Exception:
        return None


def test_kernel_variants_are_exercised(test_models: dict[str, Path]) -> None:
    """The small models reach the kernel variants the MLPerf models do not."""
    steps = [s for name in KERAS_AND_TINY for s in build_module(test_models[name]).steps]
    conv = [s.params for s in steps if s.kernel == "conv"]
    assert any(p["dilation"] != (1, 1) for p in conv)
    assert any(p["stride"] == (2, 2) and p["padding"] == (0, 0) for p in conv)
    assert any(p["padding"] != (0, 0) for p in conv)
    assert any(s.params["ch_mult"] > 1 for s in steps if s.kernel == "dwconv")
    assert any(s.params["per_channel"] for s in steps if s.kernel == "fc")
    assert any(s.params["loops"] for s in steps if s.kernel in ("add", "mul"))
    assert {c["variant"] for s in steps if s.kernel == "concat" for c in s.params["calls"]} == {"x", "y", "w"}
    assert any(s.kernel == "copy" for s in steps)


def test_signature_order_and_names(test_models: dict[str, Path]) -> None:
    """TFLite stores the inputs in another order; the module follows the SignatureDef, by name."""
    module = build_module(test_models["two_inputs"])
    assert [io.name for io in module.inputs] == ["alpha", "beta"]
    assert [io.name for io in module.outputs] == ["output_0", "output_1"]
    assert sorted(io.subgraph_position for io in module.inputs) == [0, 1]
    header = module.h_source
    assert header.index('"alpha"') < header.index('"beta"')


def test_unsupported_op_fails_at_generate_time(test_models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOpError) as info:
        generate_module(test_models["unsupported_op"], tmp_path)
    err = info.value
    assert err.op_type == "EXP"
    assert err.op_index == 2
    graph = read_tflite(test_models["unsupported_op"])
    assert err.output_name == graph.tensors[graph.operators[2].outputs[0]].name
    assert "EXP (op #2" in str(err) and "Supported:" in str(err)
    assert not any(tmp_path.iterdir()), "nothing may be written for a model that cannot be generated"


def test_float_model_is_rejected_naming_the_op(test_models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOpError) as info:
        generate_module(test_models["float_mlp"], tmp_path)
    assert info.value.op_type == "FULLY_CONNECTED"
    assert "float32" in str(info.value) and "inference_input_type=tf.int8" in str(info.value)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codegen", *args], capture_output=True, text=True, cwd=REPO)


def test_cli_generate_report_verify(test_models: dict[str, Path], tmp_path: Path) -> None:
    model = test_models["conv_stack"]
    gen = _cli("generate", str(model), "-o", str(tmp_path / "out"), "--name", "my-net")
    assert gen.returncode == 0, gen.stderr
    assert (tmp_path / "out" / "my_net.c").is_file() and (tmp_path / "out" / "my_net.h").is_file()
    assert "int32_t my_net_invoke(const int8_t *const in[], int8_t *const out[]);" in (
        tmp_path / "out" / "my_net.h").read_text()

    rep = _cli("report", str(model))
    assert rep.returncode == 0, rep.stderr
    for key in ("total MACs", "weight bytes", "arena bytes", "arena lower bnd", "scratch bytes", "CONV_2D"):
        assert key in rep.stdout

    ver = _cli("verify", str(model), "--samples", "5", "--seed", "2", "--target", "host-dsp")
    assert ver.returncode == 0, ver.stdout + ver.stderr
    assert "0 of" in ver.stdout and "bit-exact" in ver.stdout

    bad = _cli("generate", str(test_models["unsupported_op"]), "-o", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "EXP (op #2" in bad.stderr


def test_verify_with_input_files(test_models: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    npz = tmp_path / "inputs.npz"
    np.savez(npz, alpha=rng.integers(-128, 128, (4, 1, 8, 8, 4), dtype=np.int8),
             beta=rng.integers(-128, 128, (4, 1, 8, 8, 4), dtype=np.int8))
    result = verify_model(test_models["two_inputs"], inputs=npz)
    assert result.samples == 4 and result.ok

    npy = tmp_path / "inputs.npy"
    np.save(npy, rng.integers(-128, 128, (3, 1, 15, 15, 3), dtype=np.int8))
    result = verify_model(test_models["conv_stack"], inputs=npy, target="host-dsp")
    assert result.samples == 3 and result.ok


def test_invoke_rejects_null_pointers(test_models: dict[str, Path], tmp_path: Path) -> None:
    module = generate_module(test_models["two_inputs"], tmp_path, name="net")
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stddef.h>\n#include "net.h"\n'
        "static int8_t a[NET_INPUT_0_BYTES], o0[NET_OUTPUT_0_BYTES], o1[NET_OUTPUT_1_BYTES];\n"
        "int main(void) {\n"
        "  const int8_t *in_missing[] = { a, NULL };\n"
        "  int8_t *out[] = { o0, o1 };\n"
        "  if (net_invoke(NULL, out) != -1) return 1;\n"
        "  if (net_invoke(in_missing, out) != -1) return 2;\n"
        "  return 0;\n}\n")
    target = HostTarget()
    exe = tmp_path / "null_test"
    kernels = [str(o) for o in target.kernel_objects()]
    cmd = ["gcc", "-O2", "-std=c99", "-Wall", "-Werror", "-I", str(REPO / "firmware" / "cmsis_nn"), "-I", str(tmp_path),
           str(module.c_path), str(main), *kernels, "-o", str(exe)]
    subprocess.run(cmd, check=True)
    assert subprocess.run([str(exe)]).returncode == 0
