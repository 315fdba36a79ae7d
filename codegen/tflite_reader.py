"""Read a .tflite flatbuffer into the graph IR (no TensorFlow import), validating it on the way.

This is the one reader of the format in the project. Every offset it follows is bounds-checked (see
``flatbuf.py``) and every index it resolves (tensor, buffer, operator code, subgraph) is range-checked,
so a missing, truncated, corrupt or foreign file raises :class:`ModelFormatError` naming the file, what
is wrong and what to do, never an ``IndexError`` / ``struct.error`` from deep inside a parser.

:func:`check_tflite` runs the same checks over every subgraph, for stages that hand the file to TFLM
(which trusts its input: a bad offset there is a hard fault on the board, not an exception).
"""
from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFormatError
from .flatbuf import DAMAGED_HINT, I8, I32, U8, U32, U64, FlatBuffer, Table
from .graph import Graph, Operator, Quantization, Tensor
from .tflite_schema import FILE_IDENTIFIER, OP_NAMES, SCHEMA_VERSION, TYPE_NAMES, table_layout, union_member

_NP_DTYPES = {
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "bool": np.bool_,
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_BOOL = struct.Struct("<?")

_CUT_HINT = "the file was cut short: copy it again or re-run the converter"
_CONVERT_HINT = "convert the model with the TFLite converter (tf.lite.TFLiteConverter / ai_edge_litert) first"
_RECONVERT_HINT = "re-convert the model with a current TFLite converter"

# Headers of files that are often mistaken for a .tflite model, with what to do about each.
_FOREIGN_FORMATS = (
    (b"version https://git-lfs", "a Git LFS pointer, not the model itself", "run `git lfs pull` to fetch it"),
    (b"PK\x03\x04", "a zip archive (a Keras .keras file or a zipped model?)", _CONVERT_HINT),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)", _CONVERT_HINT),
    (b"{", "a text/JSON file", _CONVERT_HINT),
)


# --------------------------------------------------------------------------------------------- the file


def load_flatbuffer(path: str | Path) -> FlatBuffer:
    """Read ``path`` and check the 8-byte header (root offset + ``TFL3`` identifier)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelFormatError("no such file", name, "check the path; a relative path starts at the "
                               "current directory") from None
    except IsADirectoryError:
        raise ModelFormatError("is a directory, not a .tflite file", name, "pass the model file itself") from None
    except OSError as exc:  # permissions, I/O errors: strerror says which
        raise ModelFormatError(f"cannot be read ({exc.strerror or exc})", name,
                               "check the file's permissions and the disk") from None
    except MemoryError:
        raise ModelFormatError("is too large to read into memory", name, "is this really a TinyML model?") from None
    fb = FlatBuffer(raw, name)
    if fb.size == 0:
        fb.fail("empty file (0 bytes)", "the converter's output or the copy did not complete: "
                                        "re-run the converter or copy the file again")
    for magic, what, hint in _FOREIGN_FORMATS:
        if raw.startswith(magic):
            fb.fail(f"not a TFLite model: this is {what}", hint)
    if fb.size < 8:
        fb.fail(f"truncated at byte {fb.size}: a TFLite flatbuffer starts with an 8-byte header", _CUT_HINT)
    if raw[4:8] != FILE_IDENTIFIER:
        fb.fail(f"not a TFLite model: bytes 4..7 are {raw[4:8]!r}, a TFLite flatbuffer has {FILE_IDENTIFIER!r} "
                f"there", f"if this is a model in another format, {_CONVERT_HINT}; if it is a .tflite file, "
                f"{DAMAGED_HINT}")
    return fb


class _Model:
    """The root table and the model-wide vectors every subgraph refers to, read and checked once."""

    def __init__(self, fb: FlatBuffer) -> None:
        self.fb = fb
        root = _checked(fb.table_at(fb.read(U32, 0, "the root offset"), "model"), "Model")
        version = root.scalar(0, U32, 0, "version")
        if version != SCHEMA_VERSION:
            fb.fail(f"schema version {version}, TFLite and TFLM read version {SCHEMA_VERSION} only",
                    _RECONVERT_HINT + (f" (or: {DAMAGED_HINT})" if version > SCHEMA_VERSION else ""))
        self.root = root
        root.string(3, "description")
        self.buffers = [_checked(b, "Buffer") for b in root.tables(4, "buffers", "buffer")]
        self.op_codes = [self._op_code(i, _checked(c, "OperatorCode"))
                         for i, c in enumerate(root.tables(1, "operator_codes", "operator code"))]
        self.subgraphs = root.tables(2, "subgraphs", "subgraph")
        if not self.subgraphs:
            fb.fail("the model has no subgraph (no operators or tensors at all)", _RECONVERT_HINT)
        for i, meta in enumerate(root.tables(6, "metadata", "metadata")):
            # TFLM looks metadata up by name (e.g. "OfflineMemoryAllocation") and reads its buffer.
            self.buffer_index(_checked(meta, "Metadata").scalar(1, U32, 0, "buffer"), f"metadata {i}")

    def _op_code(self, index: int, code: Table) -> tuple[str, int, str | None]:
        """(op type, version, custom code) of operator code ``index``."""
        # Models from before 2.4 only fill the int8 field; later ones put PLACEHOLDER_FOR_GREATER_OP_CODES
        # (127) there and the real code in builtin_code. The larger of the two is right in both cases.
        builtin = max(code.scalar(3, I32, 0, "builtin_code"), code.scalar(0, I8, 0, "deprecated_builtin_code"))
        op_type = OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        custom = _decode(code.string(1, "custom_code")) if op_type == "CUSTOM" else None
        version = code.scalar(2, I32, 1, "version") or 1
        return (op_type if custom is None else f"CUSTOM:{custom}"), version, custom

    def buffer_index(self, index: int, owner: str) -> int:
        # Buffer 0 is the empty sentinel every activation points to; a model may even omit the list.
        if index != 0 and index >= len(self.buffers):
            self.fb.fail(f"{owner} refers to buffer {index:,} but the model has {len(self.buffers):,} buffers")
        return index

    def buffer_bytes(self, index: int, owner: str) -> np.ndarray | None:
        """The payload of buffer ``index`` as uint8 (None if it has none)."""
        if index <= 0 or index >= len(self.buffers):
            return None
        buf = self.buffers[index]
        data = buf.array(0, "<u1", "data")
        if data is not None and data.size > 0:
            return data
        offset, size = buf.scalar(1, U64, 0, "offset"), buf.scalar(2, U64, 0, "size")
        if offset > 1 and size:
            # Models over 2 GB keep buffers after the flatbuffer, addressed by absolute file offset.
            self.fb.need(offset, size, f"{owner}: buffer {index} (stored after the flatbuffer)")
            return np.frombuffer(self.fb.raw, dtype=np.uint8, count=size, offset=offset)
        return None


# ------------------------------------------------------------------------------------------- tensors


def _decode(value: bytes | None) -> str:
    # Names are for people (messages, generated comments): a broken byte must not stop the build.
    return "" if value is None else value.decode("utf-8", "replace")


def _checked(table: Table, name: str) -> Table:
    """Bounds-check every field of ``table``, a ``name`` table of the schema, also those the code generator
    does not use: TFLM and TFLite's Python object API (host tools) read more of the file than this reader."""
    layout = table_layout(name)
    if layout is not None:
        table.check(layout, name)
    return table


def _union(owner: Table, type_field: int, union: str) -> tuple[Any, Table] | None:
    """(object-API class, checked table) of the union whose type is field ``type_field`` of ``owner`` and
    whose value is the next field; None when it is absent or of a type this schema does not know."""
    type_code = owner.scalar(type_field, U8, 0, f"{_snake(union)}_type")
    table = owner.table(type_field + 1, _snake(union))  # its header is checked even for an unknown type
    if table is None:
        return None
    found = union_member(union, type_code)
    if found is None:
        return None
    cls, layout = found
    if layout is not None:
        table.check(layout, cls.__name__[:-1])
    return cls, table


def _quantization(fb: FlatBuffer, q: Table | None, shape: tuple[int, ...], what: str) -> Quantization | None:
    if q is None:
        return None
    _union(_checked(q, "QuantizationParameters"), 4, "QuantizationDetails")
    scale = q.array(2, "<f4", "scale")
    if scale is None or scale.size == 0:
        return None
    zero_point = q.array(3, "<i8", "zero_point")
    axis = q.scalar(6, I32, 0, "quantized_dimension")
    if zero_point is not None and zero_point.size not in (0, scale.size):
        fb.fail(f"{what}: {scale.size} quantization scales but {zero_point.size} zero points (they go in pairs)")
    if scale.size > 1 and not (0 <= axis < len(shape) and shape[axis] == scale.size):
        dim = f"dimension {axis} of shape {list(shape)}" if 0 <= axis < len(shape) else \
            f"dimension {axis}, which a {len(shape)}-D tensor does not have"
        fb.fail(f"{what}: {scale.size} per-channel scales along {dim}")
    zps = zero_point if zero_point is not None and zero_point.size else np.zeros(scale.size, dtype=np.int64)
    return Quantization(scales=tuple(float(s) for s in scale), zero_points=tuple(int(z) for z in zps), axis=axis)


def _tensor_data(model: _Model, index: int, dtype: str, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    data = model.buffer_bytes(index, what)
    if data is None:
        return None
    np_dtype = _NP_DTYPES.get(dtype)
    if np_dtype is None:
        return data.copy()  # kept as raw bytes; the lowering rejects such tensors anyway
    values = data.view(np_dtype) if data.size % np.dtype(np_dtype).itemsize == 0 else data
    count = math.prod(shape)
    if values.size != count:
        model.fb.fail(f"{what}: buffer {index} holds {values.size:,} {dtype} values, shape {list(shape)} needs "
                      f"{count:,}")
    return values.reshape(shape).copy()


def _read_tensor(model: _Model, i: int, t: Table) -> Tensor:
    _checked(t, "Tensor")
    shape_arr = t.array(0, "<i4", "shape")
    shape = tuple(int(d) for d in shape_arr) if shape_arr is not None else ()
    if any(d < 0 for d in shape):  # unknown sizes are -1 in shape_signature, never in shape
        model.fb.fail(f"{t.what}: negative dimension in shape {list(shape)}")
    type_code = t.scalar(1, I8, 0, "type")
    dtype = TYPE_NAMES.get(type_code, f"type{type_code}")
    name = _decode(t.string(3, "name")) or f"tensor_{i}"
    what = f"{t.what} ({name!r})"  # repr: a damaged name may hold control characters
    buffer = model.buffer_index(t.scalar(2, U32, 0, "buffer"), what)
    return Tensor(
        index=i,
        name=name,
        shape=shape,
        dtype=dtype,
        quant=_quantization(model.fb, t.table(4, "quantization"), shape, what),
        data=_tensor_data(model, buffer, dtype, shape, what),
        is_variable=bool(t.scalar(5, _BOOL, False, "is_variable")),
    )


# ----------------------------------------------------------------------------------------- operators


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _options_dict(options: Any) -> dict[str, Any]:
    """Builtin options object (e.g. Conv2DOptionsT) -> {'stride_w': 1, ...}."""
    result: dict[str, Any] = {}
    for key, value in vars(options).items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        result[_snake(key)] = value
    return result


def _options(model: _Model, op: Table, type_field: int, union: str) -> dict[str, Any]:
    """Decode one builtin-options union of ``op`` (``{}`` when absent or of a type this schema lacks)."""
    found = _union(op, type_field, union)
    if found is None:
        return {}
    cls, table = found
    try:
        return _options_dict(cls.InitFromBuf(model.fb.raw, table.pos))
    except (struct.error, ValueError, IndexError, TypeError, OverflowError) as exc:
        # Only reachable for an options table whose layout could not be read off the generated code (a
        # struct or nested table field in some future schema): the generated decoder is unchecked.
        model.fb.fail(f"{op.what}: its {cls.__name__[:-1]} cannot be decoded ({type(exc).__name__}: {exc})")


def _tensor_list(fb: FlatBuffer, table: Table, field_id: int, name: str, count: int, optional: bool) -> tuple[int, ...]:
    """A vector of tensor indices, each checked against the subgraph's ``count`` tensors."""
    arr = table.array(field_id, "<i4", name)
    values = tuple(int(x) for x in arr) if arr is not None else ()
    lowest = -1 if optional else 0  # -1 marks an omitted optional operand
    for x in values:
        if not lowest <= x < count:
            fb.fail(f"{table.what}.{name} refers to tensor {x:,} but the subgraph has {count:,} tensors")
    return values


def _read_operator(model: _Model, i: int, op: Table, tensor_count: int, subgraph_count: int) -> Operator:
    code = _checked(op, "Operator").scalar(0, U32, 0, "opcode_index")
    if code >= len(model.op_codes):
        model.fb.fail(f"{op.what} has operator code {code:,} but the model lists {len(model.op_codes):,}")
    op_type, version, custom = model.op_codes[code]
    options = _options(model, op, 3, "BuiltinOptions")
    _union(op, 11, "BuiltinOptions2")  # not used here, but other readers decode it: check it all the same
    for key, value in options.items():
        if key.endswith("subgraph_index") and isinstance(value, int) and not 0 <= value < subgraph_count:
            model.fb.fail(f"{op.what} ({op_type}): {key} is {value} but the model has {subgraph_count} subgraphs")
    return Operator(
        index=i,
        op_type=op_type,
        inputs=_tensor_list(model.fb, op, 1, "inputs", tensor_count, optional=True),
        outputs=_tensor_list(model.fb, op, 2, "outputs", tensor_count, optional=True),
        options=options,
        version=version,
        custom_code=custom,
    )


# ------------------------------------------------------------------------------------------ subgraphs


def _signature(model: _Model, index: int, sg_inputs: list[int], sg_outputs: list[int]) -> tuple[Any, ...] | None:
    """(key, input names, inputs, output names, outputs) from the first SignatureDef of subgraph ``index``
    if it names exactly the subgraph's inputs and outputs, else None (the subgraph order is used)."""
    for sig in model.root.tables(7, "signature_defs", "signature def"):
        if _checked(sig, "SignatureDef").scalar(4, U32, 0, "subgraph_index") != index:
            continue
        sig_in = [(_decode(m.string(0, "name")), m.scalar(1, U32, 0, "tensor_index"))
                  for m in sig.tables(0, "inputs", "input") if _checked(m, "TensorMap")]
        sig_out = [(_decode(m.string(0, "name")), m.scalar(1, U32, 0, "tensor_index"))
                   for m in sig.tables(1, "outputs", "output") if _checked(m, "TensorMap")]
        if sorted(t for _, t in sig_in) == sorted(sg_inputs) and sorted(t for _, t in sig_out) == sorted(sg_outputs):
            key = _decode(sig.string(2, "signature_key")) or None
            return key, [n for n, _ in sig_in], [t for _, t in sig_in], [n for n, _ in sig_out], [t for _, t in sig_out]
        break
    return None


def _read_subgraph(model: _Model, index: int, name: str) -> Graph:
    sg = _checked(model.subgraphs[index], "SubGraph")
    sg.string(4, "name")
    tensors = [_read_tensor(model, i, t) for i, t in enumerate(sg.tables(0, "tensors", "tensor"))]
    operators = [_read_operator(model, i, op, len(tensors), len(model.subgraphs))
                 for i, op in enumerate(sg.tables(3, "operators", "operator"))]
    sg_inputs = list(_tensor_list(model.fb, sg, 1, "inputs", len(tensors), optional=False))
    sg_outputs = list(_tensor_list(model.fb, sg, 2, "outputs", len(tensors), optional=False))
    signature = _signature(model, index, sg_inputs, sg_outputs)
    if signature is not None:
        key, input_names, inputs, output_names, outputs = signature
    else:
        key, inputs, outputs = None, list(sg_inputs), list(sg_outputs)
        input_names = [tensors[t].name for t in inputs]
        output_names = [tensors[t].name for t in outputs]
    return Graph(
        name=name,
        tensors=tensors,
        operators=operators,
        inputs=inputs,
        outputs=outputs,
        input_names=input_names,
        output_names=output_names,
        input_positions=[sg_inputs.index(t) for t in inputs],
        output_positions=[sg_outputs.index(t) for t in outputs],
        signature_key=key,
    )


# -------------------------------------------------------------------------------------------- public


def read_tflite(path: str | Path, subgraph: int = 0) -> Graph:
    """Parse ``path`` into a :class:`Graph` of the given subgraph (TFLM runs subgraph 0).

    Raises :class:`ModelFormatError` (message: ``"<path>: <what is wrong> (<what to do>)"``) for a missing
    or unreadable file, an empty, truncated or corrupt one, or one that is not a schema-3 TFLite model.
    """
    model = _Model(load_flatbuffer(path))
    if not 0 <= subgraph < len(model.subgraphs):
        model.fb.fail(f"has no subgraph {subgraph} (it has {len(model.subgraphs)})", "pick an existing subgraph")
    return _read_subgraph(model, subgraph, Path(path).stem)


def check_tflite(path: str | Path) -> None:
    """Validate ``path`` as a TFLite model before it is handed to TFLM (or flashed, or parsed with TFLite's
    unchecked Python bindings): header, schema version, and every subgraph's tensors, operators, options,
    buffers and indices, as :func:`read_tflite` checks its subgraph.

    Returns nothing; raises :class:`ModelFormatError` naming the file, the problem and the fix.
    """
    model = _Model(load_flatbuffer(path))
    tensor_counts = [len(_read_subgraph(model, i, Path(path).stem).tensors) for i in range(len(model.subgraphs))]
    _check_signatures(model, tensor_counts)


def _check_signatures(model: _Model, tensor_counts: list[int]) -> None:
    """Every SignatureDef names an existing subgraph and tensors of it (TFLite's signature runners index
    with them unchecked); :func:`read_tflite` only looks at the one it uses."""
    for sig in model.root.tables(7, "signature_defs", "signature def"):
        index = _checked(sig, "SignatureDef").scalar(4, U32, 0, "subgraph_index")
        if index >= len(tensor_counts):
            model.fb.fail(f"{sig.what} is for subgraph {index:,} but the model has {len(tensor_counts)}")
        sig.string(2, "signature_key")
        for m in sig.tables(0, "inputs", "input") + sig.tables(1, "outputs", "output"):
            _checked(m, "TensorMap").string(0, "name")
            tensor = m.scalar(1, U32, 0, "tensor_index")
            if tensor >= tensor_counts[index]:
                model.fb.fail(f"{m.what} refers to tensor {tensor:,} but subgraph {index} has "
                              f"{tensor_counts[index]:,} tensors")
