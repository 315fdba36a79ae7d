"""Lower each TFLite operator to one CMSIS-NN (or resilinet extension) kernel call, through the op registry.

Every parameter a kernel needs is computed on the host by the op's lowering (:mod:`codegen.ops`), the way
TFLM's Prepare() computes it, so the generated C only holds constants and calls. An op (or option, or
tensor type) we cannot reproduce bit-exactly raises :class:`UnsupportedOpError` naming the op, at generate
time rather than on the board; every such op of the model is listed in one :class:`UnsupportedOpsError`.
"""
from __future__ import annotations

from . import scratch as scr
from .errors import NOT_SUPPORTED, UnsupportedOpError, UnsupportedOpsError, shorten
from .graph import Graph
from .ops import OPS, SUPPORTED_OPS, OpContext, OpDef
from .ops.context import LoweringOptions
from .step import Step


def lower_graph(graph: Graph, backends: tuple[str, ...] = scr.DEFAULT_BACKENDS,
                options: LoweringOptions = LoweringOptions()) -> list[Step]:
    """Lower every operator of ``graph``.

    Raises :class:`UnsupportedOpsError` listing every op that cannot be lowered (not only the first), and
    the model-level problems (I/O types), so one run tells the user everything to change.
    """
    steps, errors = [], []
    skipped = shape_only_ops(graph)
    for op in graph.operators:
        if op.index in skipped:
            continue
        ctx = OpContext(graph, op, options)
        op_def = OPS.get(op.op_type)
        try:
            if op_def is None:
                raise ctx.fail(
                    NOT_SUPPORTED,
                    f"Supported: {', '.join(SUPPORTED_OPS)}. Replace the unsupported ops in the model or keep "
                    "them on another partition")
            if not op_def.stateful and any(graph.tensors[t].is_variable for t in op.inputs if t >= 0):
                raise ctx.fail("stateful (variable) tensors are not supported")
            steps.append(_lower_op(op_def, ctx, backends))
        except UnsupportedOpError as exc:
            errors.append(exc)
    errors += _model_io_errors(graph)
    if errors:
        # --traceback shows where the first wrapped failure (a lowering that crashed) happened.
        raise UnsupportedOpsError(errors) from next((e.__cause__ for e in errors if e.__cause__), None)
    return steps


def shape_only_ops(graph: Graph) -> set[int]:
    """Indices of the ops whose every result is read only where a kernel ignores it (``OpDef.ignored_inputs``),
    directly or through other such ops: e.g. the SHAPE -> STRIDED_SLICE -> PACK with which a Keras
    Conv2DTranspose of dynamic batch size computes TRANSPOSE_CONV's output_shape, which TFLM never reads
    (shapes are static). They change no output, so they are not generated, nor reported as unsupported."""
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    skipped: set[int] = set()

    def ignored(t: int, k: int) -> bool:
        reader = graph.operators[k]
        op_def = OPS.get(reader.op_type)
        return k in skipped or (op_def is not None and all(
            pos in op_def.ignored_inputs for pos, u in enumerate(reader.inputs) if u == t))

    for op in reversed(graph.operators):  # execution order, so every reader is decided first
        results = [t for t in op.outputs if t >= 0]
        if results and all(t not in outputs and consumers.get(t) and all(ignored(t, k) for k in consumers[t])
                           for t in results):
            skipped.add(op.index)
    return skipped


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


def _model_io_errors(graph: Graph) -> list[UnsupportedOpError]:
    # Ops check their own tensors; this catches what no op touches (e.g. an input wired straight to an output)
    # and float I/O that is not the converter's QUANTIZE-at-the-input / DEQUANTIZE-at-the-output pattern.
    producers, consumers = graph.producers(), graph.consumers()
    errors = []
    for i in dict.fromkeys(graph.inputs + graph.outputs):
        t = graph.tensors[i]
        role = "input" if i in graph.inputs else "output"
        if t.dtype in ("int8", "int16") and t.quant is not None:
            continue
        if t.dtype == "float32" and role == "input" and consumers.get(i) and all(
                graph.operators[k].op_type == "QUANTIZE" for k in consumers[i]):
            continue
        if t.dtype == "float32" and role == "output" and i in producers and (
                graph.operators[producers[i]].op_type == "DEQUANTIZE"):
            continue
        errors.append(UnsupportedOpError(
            "MODEL", -1, t.name, f"model {role} '{shorten(t.name)}' is {t.dtype}"
            f"{'' if t.quant else ' without quantization'}; the module takes and returns quantized int8 or int16, "
            "or float32 that the model QUANTIZEs at its input / DEQUANTIZEs at its output",
            "Convert with inference_input_type=tf.int8 and inference_output_type=tf.int8"))
    return errors
