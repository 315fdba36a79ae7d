"""Read a .tflite flatbuffer into the graph IR (no TensorFlow import).

Uses the flatbuffer bindings generated from TFLite's schema, shipped with ``ai_edge_litert`` (and, as a
fallback, inside ``tflite_micro``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFormatError
from .graph import Graph, Operator, Quantization, Tensor

try:  # the maintained package first; tflite_micro bundles an older copy of the same module
    from ai_edge_litert import schema_py_generated as _schema
except ImportError:  # pragma: no cover - depends on the environment
    from tflite_micro.tensorflow.lite.python import schema_py_generated as _schema  # type: ignore[no-redef]


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


_OP_NAMES = _enum_names(_schema.BuiltinOperator)
_TYPE_NAMES = {k: v.lower() for k, v in _enum_names(_schema.TensorType).items()}
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


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _options_dict(options: Any) -> dict[str, Any]:
    """Builtin options object (e.g. Conv2DOptionsT) -> {'stride_w': 1, ...}."""
    if options is None:
        return {}
    result: dict[str, Any] = {}
    for key, value in vars(options).items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        result[_snake(key)] = value
    return result


def _decode(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _tensor_data(model: Any, tensor: Any, dtype: str, shape: tuple[int, ...], raw: bytes) -> np.ndarray | None:
    if tensor.buffer <= 0 or tensor.buffer >= len(model.buffers or []):
        return None
    buf = model.buffers[tensor.buffer]
    data: np.ndarray | None = None
    if buf.data is not None and len(buf.data) > 0:
        data = np.asarray(buf.data, dtype=np.uint8)
    elif buf.offset is not None and buf.offset > 1 and buf.size:
        # Large models keep buffers after the flatbuffer, addressed by absolute file offset.
        data = np.frombuffer(raw, dtype=np.uint8, count=buf.size, offset=buf.offset)
    if data is None:
        return None
    np_dtype = _NP_DTYPES.get(dtype)
    if np_dtype is None:
        return data.copy()  # kept as raw bytes; the lowering rejects such tensors anyway
    values = data.view(np_dtype) if data.size % np.dtype(np_dtype).itemsize == 0 else data
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if values.size != count:
        raise ModelFormatError(
            f"tensor '{_decode(tensor.name)}': buffer holds {values.size} {dtype} values, shape {list(shape)} "
            f"needs {count}"
        )
    return values.reshape(shape).copy()


def _quantization(q: Any) -> Quantization | None:
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scales = tuple(float(s) for s in np.asarray(q.scale, dtype=np.float32))
    zps = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0] * len(scales), dtype=np.int64)
    if zps.size == 0:
        zps = np.zeros(len(scales), dtype=np.int64)
    return Quantization(scales=scales, zero_points=tuple(int(z) for z in zps), axis=int(q.quantizedDimension or 0))


def read_tflite(path: str | Path, subgraph: int = 0) -> Graph:
    """Parse ``path`` into a :class:`Graph` of the given subgraph (TFLM runs subgraph 0)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        model = _schema.ModelT.InitFromPackedBuf(raw, 0)
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise ModelFormatError(f"{path}: not a TFLite flatbuffer ({exc})") from exc
    if not model.subgraphs or subgraph >= len(model.subgraphs):
        raise ModelFormatError(f"{path}: has no subgraph {subgraph}")
    sg = model.subgraphs[subgraph]

    tensors: list[Tensor] = []
    for i, t in enumerate(sg.tensors or []):
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        dtype = _TYPE_NAMES.get(int(t.type), f"type{t.type}")
        tensors.append(
            Tensor(
                index=i,
                name=_decode(t.name) or f"tensor_{i}",
                shape=shape,
                dtype=dtype,
                quant=_quantization(t.quantization),
                data=_tensor_data(model, t, dtype, shape, raw),
                is_variable=bool(t.isVariable),
            )
        )

    operators: list[Operator] = []
    codes = model.operatorCodes or []
    for i, op in enumerate(sg.operators or []):
        code = codes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        op_type = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        custom = _decode(code.customCode) if op_type == "CUSTOM" else None
        operators.append(
            Operator(
                index=i,
                op_type=op_type if custom is None else f"CUSTOM:{custom}",
                inputs=tuple(int(x) for x in (op.inputs if op.inputs is not None else [])),
                outputs=tuple(int(x) for x in (op.outputs if op.outputs is not None else [])),
                options=_options_dict(op.builtinOptions),
                version=int(code.version or 1),
                custom_code=custom,
            )
        )

    sg_inputs = [int(x) for x in (sg.inputs if sg.inputs is not None else [])]
    sg_outputs = [int(x) for x in (sg.outputs if sg.outputs is not None else [])]
    inputs, outputs = list(sg_inputs), list(sg_outputs)
    input_names = [tensors[t].name for t in inputs]
    output_names = [tensors[t].name for t in outputs]
    signature_key: str | None = None
    for sig in model.signatureDefs or []:
        if int(sig.subgraphIndex or 0) != subgraph:
            continue
        sig_in = [(_decode(m.name), int(m.tensorIndex)) for m in sig.inputs or []]
        sig_out = [(_decode(m.name), int(m.tensorIndex)) for m in sig.outputs or []]
        if sorted(t for _, t in sig_in) == sorted(sg_inputs) and sorted(t for _, t in sig_out) == sorted(sg_outputs):
            signature_key = _decode(sig.signatureKey) or None
            input_names = [n for n, _ in sig_in]
            inputs = [t for _, t in sig_in]
            output_names = [n for n, _ in sig_out]
            outputs = [t for _, t in sig_out]
        break

    return Graph(
        name=path.stem,
        tensors=tensors,
        operators=operators,
        inputs=inputs,
        outputs=outputs,
        input_names=input_names,
        output_names=output_names,
        input_positions=[sg_inputs.index(t) for t in inputs],
        output_positions=[sg_outputs.index(t) for t in outputs],
        signature_key=signature_key,
    )
