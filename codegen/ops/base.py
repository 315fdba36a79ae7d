"""The two record types of the op registry: a C kernel call (:class:`Kernel`) and a TFLite op (:class:`OpDef`).

They are separate because the mapping is not one to one: RESHAPE lowers to ``alias`` (no code) or, when
the planner cannot alias, to ``copy``; QUANTIZE, RELU and RELU6 all lower to ``requantize``. An op lists
the kernels its lowering may choose; each kernel knows how to render its call and how much scratch it needs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..step import Step
from .context import OpContext

#: Scratch bytes a kernel needs for one step, from that step's ``params`` and a backend ("c" or "dsp").
ScratchFn = Callable[[Mapping[str, Any], str], int]
#: A kernel's "may overlap" rule: from a step's ``params``, the least bytes its input must start after its output
#: so that no input byte is overwritten before its last read (None: no overlap for this geometry); ops/overlap.py.
OverlapFn = Callable[[Mapping[str, Any]], "int | None"]
#: Lowers one operator (wrapped in its :class:`OpContext`) to a :class:`Step`, or raises UnsupportedOpError.
LowerFn = Callable[[OpContext], Step]


@dataclass(frozen=True)
class Kernel:
    """One kernel call as the generated C makes it."""

    #: ``Step.kernel`` value, unique in the registry (also shown by ``python -m codegen report``).
    name: str
    #: Jinja fragment, relative to ``codegen/templates``, that renders the call of one step.
    template: str
    #: The file of ``firmware/cmsis_nn`` that implements it ("" when no code is emitted).
    source: str
    #: Scratch formula, mirroring the kernel's ``*_get_buffer_size``; None when it needs none.
    scratch: ScratchFn | None = None
    #: True for kernels declared in ``resilinet_nn_ext.h`` (not part of the CMSIS-NN API).
    extension: bool = False
    #: The output of a step may share bytes with its first input, starting this many bytes below it, when the
    #: input dies at the step (the planner's in-place overlap); None: never. Depends on the kernel's loop
    #: order, so whoever changes that order re-derives the rule (codegen/README.md, "In-place rules").
    overlap: OverlapFn | None = None


@dataclass(frozen=True)
class OpDef:
    """One supported TFLite builtin operator: how it is lowered and which kernels that may produce."""

    op_type: str
    lower: LowerFn
    kernels: tuple[Kernel, ...]
    #: True for ops whose variable (state) inputs the lowering handles (``Step.state``); other ops reject them.
    stateful: bool = False
    #: True when the lowering also takes int16 activations (16x8 quantization); error messages for a 16x8
    #: model list these ops as the ones that need no re-conversion.
    int16: bool = False
    #: Input positions TFLM's kernel never reads (TRANSPOSE_CONV's output_shape, RESHAPE's shape: shapes are
    #: static): ops that only compute such inputs are left out of the generated code (``lowering.shape_only_ops``).
    ignored_inputs: tuple[int, ...] = ()
