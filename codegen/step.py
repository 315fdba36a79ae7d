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


#: Bytes per element of the C types const arrays are emitted as (int16 LUTs and int64 biases for 16x8).
CTYPE_BYTES: dict[str, int] = {"int8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8}


#: ConstArray.build values whose arrays are in our own build's flash (the figures codegen reports).
BUILDS_COUNTED = ("", "resilinet")


@dataclass
class ConstArray:
    """A const array emitted into flash."""

    key: str  # unique per module; becomes <module>_<key>
    ctype: str  # int8_t | int16_t | int32_t | int64_t (CTYPE_BYTES)
    values: np.ndarray
    comment: str = ""
    #: True for model weights/biases (reported as weight bytes), False for derived quantization data.
    is_weight: bool = True
    #: Which kernel library the array is for: "" both; "resilinet" only our kernels (a layout Arm's API lacks,
    #: emitted under ``#ifndef RESILINET_USE_CMSIS_NN``); "cmsis_nn" only Arm's (the CMSIS-NN layout it
    #: replaces). Flash figures count the arrays of our build (BUILDS_COUNTED).
    build: str = ""

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * CTYPE_BYTES[self.ctype]


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
    #: Variable tensors the kernel reads and updates (LSTM/SVDF state): they keep their bytes between
    #: invocations (the planner never lends them out) and ``<name>_reset()`` sets them to TFLM's initial values.
    state: list[int] = field(default_factory=list)
    summary: str = ""

    @property
    def scratch_bytes(self) -> int:
        return scr.worst_case(self.scratch)
