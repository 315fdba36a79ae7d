"""The validating .tflite reader: every bad file ends in one ModelFormatError naming it, never a traceback.

Damaged copies of a real model (bit flips anywhere, truncation at any length) must each parse or raise
``ModelFormatError``; hand-made broken models cover the semantic checks (indices, version, quantization
arrays); the CLI turns any of these into one ``error:`` line and exit status 2.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegen import ModelFormatError, UnsupportedOpError, build_module, check_tflite, read_tflite
from codegen.tflite_schema import enum_names, union_member, schema

from codegen_models import TinyModel
from codegen_support import mlperf_model

REPO = Path(__file__).resolve().parent.parent
AUTOENCODER = "ad_autoencoder_int8"

_RAW_CACHE: dict[str, bytes] = {}


def _raw(name: str = AUTOENCODER) -> bytes:
    if name not in _RAW_CACHE:
        _RAW_CACHE[name] = mlperf_model(name).read_bytes()
    return _RAW_CACHE[name]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the property tests' files (Hypothesis reruns the body; tmp_path is per test)."""
    return tmp_path_factory.mktemp("reader")


def _parse_or_format_error(path: Path) -> None:
    """The reader's contract on any bytes: a model, or ModelFormatError naming the file (nothing else)."""
    for read in (read_tflite, check_tflite):
        try:
            read(path)
        except ModelFormatError as exc:
            assert exc.path == str(path) and str(exc).startswith(f"{path}: ")
            assert exc.hint, "every format error says what to do"
            return
    # What check_tflite accepts, TFLite's own unchecked Python bindings (used by host tools) read too.
    schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)


# ------------------------------------------------------------------------------------------ valid models


@pytest.mark.parametrize("name", ["ic_resnet8_int8", "kws_dscnn_int8", AUTOENCODER])
def test_real_models_read_as_the_generated_object_api_reads_them(name: str) -> None:
    """The checked reader returns what TFLite's own (unchecked) Python bindings return for a valid file."""
    path = mlperf_model(name)
    graph = read_tflite(path)
    check_tflite(path)
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    sg = model.subgraphs[0]
    assert len(graph.tensors) == len(sg.tensors) and len(graph.operators) == len(sg.operators)
    for t, ref in zip(graph.tensors, sg.tensors):
        assert t.name == ref.name.decode() and list(t.shape) == list(ref.shape)
        q = ref.quantization
        if q is None or q.scale is None:
            assert t.quant is None
        else:
            assert t.quant is not None and list(t.quant.scales) == [float(s) for s in q.scale]
            assert list(t.quant.zero_points) == list(q.zeroPoint) and t.quant.axis == q.quantizedDimension
        data = model.buffers[ref.buffer].data
        assert (t.data is None) == (data is None or len(data) == 0)
        if t.data is not None:
            assert t.data.tobytes() == bytes(data)
    for op, ref in zip(graph.operators, sg.operators):
        assert list(op.inputs) == list(ref.inputs) and list(op.outputs) == list(ref.outputs)
        expected = vars(ref.builtinOptions).values() if ref.builtinOptions is not None else []
        assert list(op.options.values()) == [v.tolist() if isinstance(v, np.ndarray) else v for v in expected]


def test_every_builtin_options_table_has_a_checked_layout() -> None:
    """Each options table is bounds-checked before the generated decoder runs on it; a schema update that
    adds a field the layout reader cannot size (a struct) would silently fall back to the unchecked path."""
    for union in ("BuiltinOptions", "BuiltinOptions2"):
        for code, name in enum_names(getattr(schema, union)).items():
            found = union_member(union, code)
            if name == "NONE":
                assert found is None
            else:
                assert found is not None and found[1] is not None, name


# --------------------------------------------------------------------------------------- damaged copies


def _structural_offsets(raw: bytes) -> list[int]:
    """Byte positions outside constant tensor payloads (flips there hit tables, vtables, offsets)."""
    payload = np.zeros(len(raw), dtype=bool)
    for t in read_tflite(mlperf_model(AUTOENCODER)).tensors:
        if t.data is not None and t.data.nbytes > 16:
            start = raw.find(t.data.tobytes())
            payload[start:start + t.data.nbytes] = start >= 0
    return [int(i) for i in np.flatnonzero(~payload)]


_STRUCTURAL: dict[str, list[int]] = {}  # computed on first use: the model may be absent (then: skip)


@st.composite
def _bit_flips(draw: Callable[..., Any]) -> list[tuple[int, int]]:
    raw = _raw()
    structural = _STRUCTURAL.setdefault("positions", _structural_offsets(raw))
    position = st.one_of(st.integers(0, len(raw) - 1), st.sampled_from(structural))
    return draw(st.lists(st.tuples(position, st.integers(0, 7)), min_size=1, max_size=4))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(flips=_bit_flips())
def test_bit_flipped_model_parses_or_raises_model_format_error(flips: list[tuple[int, int]], scratch: Path) -> None:
    data = bytearray(_raw())
    for position, bit in flips:
        data[position] ^= 1 << bit
    path = scratch / "flipped.tflite"
    path.write_bytes(bytes(data))
    _parse_or_format_error(path)


@settings(max_examples=200)
@given(length=st.integers(0, 300_000))
def test_truncated_model_raises_model_format_error(length: int, scratch: Path) -> None:
    raw = _raw()
    path = scratch / "truncated.tflite"
    path.write_bytes(raw[:length % len(raw)])
    with pytest.raises(ModelFormatError) as info:
        read_tflite(path)
    assert str(info.value).startswith(f"{path}: ")
    _parse_or_format_error(path)


# ------------------------------------------------------------------------------------ explicit bad files


def _error(path: Path) -> str:
    with pytest.raises(ModelFormatError) as info:
        read_tflite(path)
    with pytest.raises(ModelFormatError):
        check_tflite(path)
    assert info.value.path == str(path) and str(info.value).startswith(f"{path}: ")
    return str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _error(tmp_path / "missing.tflite")


def test_directory(tmp_path: Path) -> None:
    assert "is a directory" in _error(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    assert "empty file" in _error(path)


@pytest.mark.parametrize("length", [1, 4, 7])
def test_truncated_inside_the_header(tmp_path: Path, length: int) -> None:
    path = tmp_path / "header.tflite"
    path.write_bytes(_raw()[:length])
    message = _error(path)
    assert f"truncated at byte {length}" in message and "cut short" in message


def test_truncated_after_the_header_names_the_offsets(tmp_path: Path) -> None:
    path = tmp_path / "cut.tflite"
    path.write_bytes(_raw()[:5000])
    message = _error(path)
    assert "truncated or corrupt" in message and "5,000-byte file" in message and "copy it again" in message


def test_wrong_identifier(tmp_path: Path) -> None:
    path = tmp_path / "ident.tflite"
    path.write_bytes(_raw()[:4] + b"ABCD" + _raw()[8:])
    message = _error(path)
    assert "not a TFLite model" in message and "b'ABCD'" in message and "TFL3" in message


@pytest.mark.parametrize("content, expected", [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n", "git lfs pull"),
    (b"PK\x03\x04" + bytes(40), "zip archive"),
    (b"\x89HDF\r\n\x1a\n" + bytes(40), "HDF5"),
], ids=["git-lfs", "zip", "hdf5"])
def test_other_file_formats_are_named(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    assert expected in _error(path)


# ---------------------------------------------------------------------- well-formed but invalid models


def _tiny(path: Path) -> Path:
    """A one-op (QUANTIZE) model written with the schema bindings."""
    m = TinyModel()
    x = m.tensor("x", [1, 4], scale=0.5, zero_point=1)
    y = m.tensor("y", [1, 4], scale=0.25, zero_point=-3)
    m.op(schema.BuiltinOperator.QUANTIZE, [x], [y])
    return m.save(path, [x], [y])


def _mutated(tmp_path: Path, mutate: Callable[[Any], None]) -> Path:
    """The tiny model with ``mutate`` applied to its object-API form, written back as a flatbuffer."""
    import flatbuffers

    model = schema.ModelT.InitFromPackedBuf(_tiny(tmp_path / "tiny.tflite").read_bytes(), 0)
    mutate(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "bad.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path


def _set_version(m: Any) -> None:
    m.version = 2


def _no_subgraphs(m: Any) -> None:
    m.subgraphs = []


def _op_input_out_of_range(m: Any) -> None:
    m.subgraphs[0].operators[0].inputs = np.asarray([7], dtype=np.int32)


def _graph_output_out_of_range(m: Any) -> None:
    m.subgraphs[0].outputs = np.asarray([-1], dtype=np.int32)


def _buffer_out_of_range(m: Any) -> None:
    m.subgraphs[0].tensors[0].buffer = 99


def _opcode_out_of_range(m: Any) -> None:
    m.subgraphs[0].operators[0].opcodeIndex = 5


def _zero_points_mismatch(m: Any) -> None:
    m.subgraphs[0].tensors[0].quantization.zeroPoint = np.asarray([0, 0, 0], dtype=np.int64)


def _per_channel_scales_mismatch(m: Any) -> None:
    q = m.subgraphs[0].tensors[0].quantization
    q.scale = np.asarray([0.1, 0.2, 0.3], dtype=np.float32)
    q.zeroPoint = np.zeros(3, dtype=np.int64)
    q.quantizedDimension = 1


def _negative_dimension(m: Any) -> None:
    m.subgraphs[0].tensors[1].shape = np.asarray([1, -4], dtype=np.int32)


def _short_weights(m: Any) -> None:
    buf = schema.BufferT()
    buf.data = np.zeros(3, dtype=np.uint8)
    m.buffers.append(buf)
    m.subgraphs[0].tensors[0].buffer = len(m.buffers) - 1


@pytest.mark.parametrize("mutate, expected", [
    (_set_version, "schema version 2"),
    (_no_subgraphs, "no subgraph"),
    (_op_input_out_of_range, "refers to tensor 7 but the subgraph has 2 tensors"),
    (_graph_output_out_of_range, "refers to tensor -1"),
    (_buffer_out_of_range, "refers to buffer 99 but the model has 1 buffers"),
    (_opcode_out_of_range, "operator code 5 but the model lists 1"),
    (_zero_points_mismatch, "1 quantization scales but 3 zero points"),
    (_per_channel_scales_mismatch, "3 per-channel scales along dimension 1 of shape [1, 4]"),
    (_negative_dimension, "negative dimension"),
    (_short_weights, "holds 3 int8 values, shape [1, 4] needs 4"),
])
def test_invalid_model_is_rejected_with_the_reason(tmp_path: Path, mutate: Callable[[Any], None],
                                                  expected: str) -> None:
    assert read_tflite(_tiny(tmp_path / "ok.tflite")).operators[0].op_type == "QUANTIZE"
    assert expected in _error(_mutated(tmp_path, mutate))


def test_check_tflite_checks_every_subgraph(tmp_path: Path) -> None:
    """TFLM may run any subgraph (control flow): check_tflite validates them all, read_tflite only its own."""
    import copy

    def add_broken_subgraph(m: Any) -> None:
        extra = copy.deepcopy(m.subgraphs[0])
        extra.operators[0].outputs = np.asarray([42], dtype=np.int32)
        m.subgraphs.append(extra)

    path = _mutated(tmp_path, add_broken_subgraph)
    read_tflite(path)
    with pytest.raises(ModelFormatError, match="subgraph 1 operator 0.outputs refers to tensor 42"):
        check_tflite(path)


def test_check_tflite_checks_every_signature(tmp_path: Path) -> None:
    """A signature naming a tensor the subgraph lacks is ignored by read_tflite (it does not match the
    subgraph's inputs) but would index out of bounds in a signature runner: check_tflite rejects it."""
    def add_bad_signature(m: Any) -> None:
        tensor_map = schema.TensorMapT()
        tensor_map.name, tensor_map.tensorIndex = "x", 9
        sig = schema.SignatureDefT()
        sig.inputs, sig.outputs, sig.signatureKey, sig.subgraphIndex = [tensor_map], [], "serving_default", 0
        m.signatureDefs = [sig]

    path = _mutated(tmp_path, add_bad_signature)
    assert read_tflite(path).signature_key is None
    with pytest.raises(ModelFormatError, match="signature def 0 input 0 refers to tensor 9"):
        check_tflite(path)


def test_options_that_do_not_fit_the_op_name_the_op(tmp_path: Path) -> None:
    """A well-formed file can still be inconsistent (here: a concatenation axis the tensors lack); the
    lowering's IndexError becomes an error naming the op, with the original kept as its cause."""
    m = TinyModel()
    a = m.tensor("a", [1, 4], scale=0.5)
    b = m.tensor("b", [1, 4], scale=0.5)
    y = m.tensor("y", [1, 8], scale=0.5)
    options = schema.ConcatenationOptionsT()
    options.axis = 9
    m.op(schema.BuiltinOperator.CONCATENATION, [a, b], [y], schema.BuiltinOptions.ConcatenationOptions, options)
    with pytest.raises(UnsupportedOpError, match=r"CONCATENATION \(op #0.*cannot be lowered") as info:
        build_module(m.save(tmp_path / "concat.tflite", [a, b], [y]))
    assert isinstance(info.value.__cause__, IndexError)


# ------------------------------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codegen", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _assert_one_error_line(proc: subprocess.CompletedProcess[str], path: Path) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), proc.stderr
    return lines[0]


def test_cli_missing_and_damaged_models_exit_2_with_one_error_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tflite"
    assert "no such file" in _assert_one_error_line(_cli("generate", str(missing), "-o", str(tmp_path / "o")),
                                                    missing)
    flipped = tmp_path / "flipped.tflite"
    data = bytearray(_raw())
    data[5] ^= 0x10  # inside the 'TFL3' identifier
    flipped.write_bytes(bytes(data))
    assert "not a TFLite model" in _assert_one_error_line(
        _cli("generate", str(flipped), "-o", str(tmp_path / "o")), flipped)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(_raw()[:20_000])
    for command in (("report",), ("verify", "--samples", "1")):
        _assert_one_error_line(_cli(*command, str(truncated)), truncated)
    assert not (tmp_path / "o").exists()
