"""The lowered form of one operator: which kernel runs, on which tensors, with which constants.

Lowering (:mod:`codegen.ops`) produces a :class:`Step` per TFLite operator; the planner gives its tensors
and scratch a place in memory and the emitter renders its call. Kept apart from :mod:`codegen.ops` so the
planner and the emitter depend on the record, not on how each op fills it in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import scratch as scr


@dataclass
class ConstArray:
    """A const array emitted into flash."""

    key: str  # unique per module; becomes <module>_<key>
    ctype: str  # int8_t | int32_t
    values: np.ndarray
    comment: str = ""
    #: True for model weights/biases (reported as weight bytes), False for derived quantization data.
    is_weight: bool = True

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * (1 if self.ctype == "int8_t" else 4)


@dataclass
class Step:
    """One op after lowering: which kernel, on which tensors, with which constants."""

    op_index: int
    op_type: str
    #: Name of a :class:`codegen.ops.Kernel` in the registry (selects the template fragment).
    kernel: str
    output_name: str
    inputs: list[int]  # non-constant tensors read
    outputs: list[int]
    params: dict[str, Any] = field(default_factory=dict)
    consts: list[ConstArray] = field(default_factory=list)
    #: Constant tensors read as data (ADD with a constant, CONCATENATION of a constant, ...).
    const_inputs: list[int] = field(default_factory=list)
    #: Scratch needed per backend (bytes); the plan reserves the worst case.
    scratch: dict[str, int] = field(default_factory=dict)
    macs: int = 0
    #: (output, input) pairs the kernel may compute in place.
    inplace: list[tuple[int, int]] = field(default_factory=list)
    #: For reshapes: the output is the input's bytes under another shape.
    alias_of: int | None = None
    summary: str = ""

    @property
    def scratch_bytes(self) -> int:
        return scr.worst_case(self.scratch)
