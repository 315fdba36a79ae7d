"""Lower each TFLite operator to one CMSIS-NN (or resilinet extension) kernel call, through the op registry.

Every parameter a kernel needs is computed on the host by the op's lowering (:mod:`codegen.ops`), the way
TFLM's Prepare() computes it, so the generated C only holds constants and calls. An op (or option, or
tensor type) we cannot reproduce bit-exactly raises :class:`UnsupportedOpError` naming the op, at generate
time rather than on the board.
"""
from __future__ import annotations

from . import scratch as scr
from .errors import UnsupportedOpError
from .graph import Graph
from .ops import OPS, SUPPORTED_OPS, OpContext, OpDef
from .step import Step


def lower_graph(graph: Graph, backends: tuple[str, ...] = scr.DEFAULT_BACKENDS) -> list[Step]:
    """Lower every operator of ``graph``; raises :class:`UnsupportedOpError` at the first one we cannot do."""
    steps = []
    for op in graph.operators:
        ctx = OpContext(graph, op)
        op_def = OPS.get(op.op_type)
        if op_def is None:
            raise ctx.fail(
                "operator is not supported by the CMSIS-NN code generator",
                f"Supported: {', '.join(SUPPORTED_OPS)}. Replace it in the model or keep it on another partition")
        if any(graph.tensors[t].is_variable for t in op.inputs if t >= 0):
            raise ctx.fail("stateful (variable) tensors are not supported")
        steps.append(_lower_op(op_def, ctx, backends))
    _check_model_io(graph)
    return steps


def _lower_op(op_def: OpDef, ctx: OpContext, backends: tuple[str, ...]) -> Step:
    try:
        step = op_def.lower(ctx)
    except (IndexError, ValueError, ZeroDivisionError, OverflowError) as exc:
        # Lowerings read shapes and options the way TFLite defines them for the op; a file that breaks that
        # (wrong rank, axis out of range) ends here. Name the op so it can be found; __cause__ keeps the trace.
        raise ctx.fail(f"cannot be lowered: {exc} ({type(exc).__name__})",
                       "Check that the file is intact and that the op's tensors and options are what TFLite "
                       "defines for it (the CLI's --traceback shows where it failed)") from exc
    kernel = next((k for k in op_def.kernels if k.name == step.kernel), None)
    if kernel is None:  # a registry mistake, not a model problem
        raise AssertionError(f"{op_def.op_type} lowered to kernel '{step.kernel}', which its OpDef does not list")
    if kernel.scratch is not None:
        step.scratch = {b: kernel.scratch(step.params, b) for b in backends}
    return step


def _check_model_io(graph: Graph) -> None:
    # Ops check their own tensors; this catches what no op touches (e.g. an input wired straight to an output).
    for i in graph.inputs + graph.outputs:
        t = graph.tensors[i]
        if t.dtype != "int8" or t.quant is None:
            role = "input" if i in graph.inputs else "output"
            raise UnsupportedOpError(
                "MODEL", -1, t.name, f"model {role} '{t.name}' is {t.dtype}"
                f"{'' if t.quant else ' without quantization'}; the module takes and returns quantized int8",
                "Convert with inference_input_type=tf.int8 and inference_output_type=tf.int8")
