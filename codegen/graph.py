"""Graph IR: what the code generator needs from a .tflite model, independent of the flatbuffer API."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bytes per element of the tensor types we may meet (others are rejected by the lowering).
DTYPE_BYTES: dict[str, int] = {
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "float16": 2,
    "float32": 4,
    "float64": 8,
    "bool": 1,
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per channel along ``axis``.

    Scales are float32 in the file; they are kept as the Python float with that exact value so that host
    arithmetic reproduces TFLM's ``static_cast<double>(float)`` conversions.
    """

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quantization | None = None
    #: Constant payload (weights, biases, shape/axis operands); None for activations.
    data: np.ndarray | None = None
    is_variable: bool = False

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.num_elements * DTYPE_BYTES.get(self.dtype, 1)


@dataclass
class Operator:
    index: int
    op_type: str
    inputs: tuple[int, ...]  # -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    custom_code: str | None = None


@dataclass
class Graph:
    """One subgraph, with its inputs and outputs in *signature* order.

    TFLite stores subgraph inputs/outputs in an order of its own; ``inputs``/``outputs`` follow the
    SignatureDef when the model has one (else the subgraph order), and ``input_positions`` /
    ``output_positions`` give each one's position in the subgraph lists, which is what interpreters
    (tflite_micro's ``set_input(array, i)``) index by.
    """

    name: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    input_names: list[str]
    output_names: list[str]
    input_positions: list[int]
    output_positions: list[int]
    signature_key: str | None = None

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def producers(self) -> dict[int, int]:
        """Tensor index -> index of the op writing it."""
        return {t: op.index for op in self.operators for t in op.outputs if t >= 0}

    def consumers(self) -> dict[int, list[int]]:
        """Tensor index -> indices of the ops reading it, in execution order."""
        result: dict[int, list[int]] = {}
        for op in self.operators:
            for t in op.inputs:
                if t >= 0:
                    result.setdefault(t, []).append(op.index)
        return result
