"""Render a lowered, memory-planned model into ``<name>.c`` / ``<name>.h`` with the Jinja templates."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import jinja2
import numpy as np

from . import ops
from . import scratch as scr
from .errors import CodegenError
from .graph import Graph, Quantization
from .lowering import lower_graph
from .ops.context import LoweringOptions
from .ops.data_movement import ALIAS
from .planner import MemoryPlan, plan_memory
from .step import BUILDS_COUNTED, ConstArray, Step
from .tflite_reader import read_tflite

TEMPLATES_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class IoSpec:
    """One model input or output as the generated module sees it."""

    name: str
    tensor: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    nbytes: int
    #: position in the TFLite subgraph's input/output list (what interpreters index by)
    subgraph_position: int
    #: element type the caller passes (int8, int16, or float32 for a model that quantizes its own input
    #: / dequantizes its output; ``scale``/``zero_point`` are then those of the int8 tensor beside it)
    dtype: str = "int8"

    @property
    def ctype(self) -> str:
        """C element type of the caller's buffer (in[]/out[] stay byte pointers; see model.h.j2)."""
        return {"int8": "int8_t", "int16": "int16_t", "float32": "float"}[self.dtype]

    @property
    def count(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class OpSummary:
    index: int
    op_type: str
    kernel: str
    output_name: str
    summary: str
    macs: int
    scratch_bytes: int


@dataclass
class Module:
    """Everything known about a generated module, before or after writing it."""

    name: str
    source: Path
    graph: Graph
    steps: list[Step]
    plan: MemoryPlan
    inputs: list[IoSpec]
    outputs: list[IoSpec]
    c_source: str = ""
    h_source: str = ""
    generate_seconds: float = 0.0

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)

    @property
    def weight_bytes(self) -> int:
        """Weights, biases and other constant tensors the ops read (flash), as stored in the model."""
        data = {t for s in self.steps for t in s.const_inputs}
        return (sum(a.nbytes for s in self.steps for a in s.consts if a.is_weight and a.build in BUILDS_COUNTED)
                + sum(self.graph.tensors[t].nbytes for t in data))

    @property
    def quant_param_bytes(self) -> int:
        """Per-channel multiplier/shift tables derived on the host (flash)."""
        return sum(a.nbytes for s in self.steps for a in s.consts if not a.is_weight and a.build in BUILDS_COUNTED)

    @property
    def io_bytes(self) -> int:
        return sum(io.nbytes for io in self.inputs + self.outputs)

    def op_summaries(self) -> list[OpSummary]:
        return [OpSummary(s.op_index, s.op_type, s.kernel, s.output_name, s.summary, s.macs, s.scratch_bytes)
                for s in self.steps]


@dataclass
class ModuleInfo:
    """What :func:`generate_module` wrote, with the numbers a user needs to budget memory."""

    name: str
    c_path: Path
    h_path: Path
    inputs: list[IoSpec]
    outputs: list[IoSpec]
    arena_bytes: int
    arena_lower_bound: int
    scratch_bytes: int
    weight_bytes: int
    quant_param_bytes: int
    macs: int
    ops: list[OpSummary] = field(default_factory=list)
    uses_ext_kernels: bool = False
    generate_seconds: float = 0.0
    #: arena bytes holding state kept between invocations (part of arena_bytes; 0 for a stateless model)
    state_bytes: int = 0


def sanitize_name(stem: str) -> str:
    """A C identifier prefix from a file stem: ``ic-resnet8.int8`` -> ``ic_resnet8_int8``."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", stem).strip("_") or "model"
    if name[0].isdigit():
        name = "m_" + name
    return name


def _c_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("*/", "* /").replace("\n", " ")


def _c_float(value: float) -> str:
    """C literal of a float32 value; 9 significant digits always round-trip a float32 exactly."""
    text = "%.9g" % float(np.float32(value))
    if not any(c in text for c in ".en"):
        text += ".0"
    return text + "f"


def _array_body(values: np.ndarray, per_line: int) -> str:
    flat = [str(int(v)) for v in values.reshape(-1)]
    lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n".join("    " + line for line in lines)


def _io_specs(graph: Graph, which: str) -> list[IoSpec]:
    tensors = graph.inputs if which == "inputs" else graph.outputs
    names = graph.input_names if which == "inputs" else graph.output_names
    positions = graph.input_positions if which == "inputs" else graph.output_positions
    specs = []
    for t, name, pos in zip(tensors, names, positions):
        tensor = graph.tensors[t]
        q = tensor.quant if tensor.quant is not None else _float_io_grid(graph, t)
        specs.append(IoSpec(name=name, tensor=t, shape=tuple(tensor.shape), scale=q.scale if q else 1.0,
                            zero_point=q.zero_point if q else 0, nbytes=tensor.nbytes, subgraph_position=pos,
                            dtype=tensor.dtype))
    return specs


def _float_io_grid(graph: Graph, t: int) -> Quantization | None:
    """The quantization of the int8 tensor a float model input is QUANTIZEd to (or a float output was
    DEQUANTIZEd from): the grid the float values land on, which callers and test inputs need."""
    for op in graph.operators:
        if op.op_type == "QUANTIZE" and op.inputs[:1] == (t,):
            return graph.tensors[op.outputs[0]].quant
        if op.op_type == "DEQUANTIZE" and op.outputs[:1] == (t,) and op.inputs[0] >= 0:
            return graph.tensors[op.inputs[0]].quant
    return None


def build_module(model_path: str | Path, name: str | None = None,
                 backends: tuple[str, ...] = scr.DEFAULT_BACKENDS, inplace: bool = True,
                 probe_tensors: Sequence[int] = (), options: LoweringOptions = LoweringOptions()) -> Module:
    """Read, lower, plan and render ``model_path`` in memory (nothing is written).

    ``probe_tensors`` (tensor indices) become extra outputs after the model's own, for layer-by-layer
    checks; their IoSpec has ``subgraph_position == -1``.
    """
    start = time.perf_counter()
    model_path = Path(model_path)
    graph = read_tflite(model_path)
    for t in probe_tensors:
        if t in graph.outputs:
            continue
        graph.outputs.append(t)
        graph.output_names.append(graph.tensors[t].name)
        graph.output_positions.append(-1)
    name = sanitize_name(name if name else model_path.stem)
    steps = lower_graph(graph, backends, options)
    if len(graph.inputs) == 0 or len(graph.outputs) == 0:
        raise CodegenError(f"{model_path}: model has no inputs or no outputs")
    if len(graph.inputs) > 1 and len(set(graph.input_names)) != len(graph.input_names):
        raise CodegenError(f"{model_path}: duplicate input names {graph.input_names}")
    plan = plan_memory(graph, steps, inplace=inplace)
    module = Module(name=name, source=model_path, graph=graph, steps=steps, plan=plan,
                    inputs=_io_specs(graph, "inputs"), outputs=_io_specs(graph, "outputs"))
    module.c_source, module.h_source = _render(module)
    module.generate_seconds = time.perf_counter() - start
    return module


def _render(module: Module) -> tuple[str, str]:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["cstr"] = _c_string
    env.filters["cfloat"] = _c_float  # a float32 parameter as an exact C literal (e.g. "0.0123456789f")
    context = _template_context(module)
    c_src = env.get_template("model.c.j2").render(**context)
    h_src = env.get_template("model.h.j2").render(**context)
    return c_src, h_src


def _template_context(module: Module) -> dict[str, object]:
    """What model.c.j2 / model.h.j2 and the op fragments they include see."""
    graph, plan, name = module.graph, module.plan, module.name
    names = CNames(module)
    return dict(
        name=name, NAME=name.upper(), source=_c_string(module.source.name), steps=module.steps,
        arrays=_const_arrays(module), arena_bytes=plan.arena_size, lower_bound=plan.lower_bound,
        scratch_bytes=plan.scratch_bytes, macs=module.macs, weight_bytes=module.weight_bytes,
        quant_bytes=module.quant_param_bytes, uses_ext=_uses_ext_kernels(module.steps),
        inputs=[_io_dict(io) for io in module.inputs], outputs=[_io_dict(io) for io in module.outputs],
        output_copies=plan.output_copies, state=_state_dicts(module),
        order_note=("SignatureDef '" + graph.signature_key + "' order") if graph.signature_key
        else "subgraph order; the model has no SignatureDef",
        ptr=names.ptr, wptr=names.wptr, const=names.const, scratch_ptr=names.scratch_ptr,
        scratch_size=names.scratch_size, offset=_loop_offset, tensor_bytes=lambda t: graph.tensors[t].nbytes,
        kernel_template=lambda step: ops.kernel(step.kernel).template,
    )


def _state_dicts(module: Module) -> list[dict[str, object]]:
    """The arena ranges ``<name>_reset()`` sets: each variable tensor to TFLM's initial value (what
    ``MicroGraph::ResetVariableTensors`` writes: an int8 tensor's zero point, every other type 0)."""
    result = []
    for t, (offset, size) in sorted(module.plan.state.items(), key=lambda item: item[1][0]):
        tensor = module.graph.tensors[t]
        fill = tensor.quant.zero_point if tensor.dtype == "int8" and tensor.quant is not None else 0
        result.append(dict(offset=offset, size=size, fill=fill, dtype=tensor.dtype,
                           name=_c_string(tensor.name)[:60]))
    return result


class CNames:
    """C expressions for a planned module's tensors, constants and scratch, as the templates write them."""

    def __init__(self, module: Module) -> None:
        self.name = module.name
        self.graph = module.graph
        self.plan = module.plan
        # Steps are looked up by identity: the plan's scratch table is keyed by position in the step list.
        self.position = {id(step): i for i, step in enumerate(module.steps)}

    def ptr(self, t: int) -> str:
        """Where tensor ``t`` is read from."""
        loc = self.plan.locations[t]
        if loc.kind == "arena":
            return f"({self.name}_arena + {loc.index})"
        if loc.kind == "input":
            return f"in[{loc.index}]"
        if loc.kind == "output":
            return f"out[{loc.index}]"
        return f"{self.name}_t{loc.index}"

    def wptr(self, t: int) -> str:
        """Where tensor ``t`` is written; only arena and output buffers are writable."""
        loc = self.plan.locations[t]
        if loc.kind not in ("arena", "output"):
            raise CodegenError(f"internal: tensor {t} ({self.graph.tensors[t].name}) would be written in "
                               f"{loc.kind} memory")
        return self.ptr(t)

    def const(self, step: Step, what: str) -> str:
        """The C name of one of ``step``'s const arrays (see ``OpContext.key``)."""
        return f"{self.name}_op{step.op_index}_{what}"

    def scratch_ptr(self, step: Step) -> str:
        pos = self.position[id(step)]
        return f"{self.name}_arena + {self.plan.scratch[pos][0]}" if pos in self.plan.scratch else "NULL"

    def scratch_size(self, step: Step) -> int:
        pos = self.position[id(step)]
        return self.plan.scratch[pos][1] if pos in self.plan.scratch else 0


def _loop_offset(loops: list[tuple[int, int, int, int]], which: int) -> str:
    """`` + i0 * s0 + ...``: the element offset of operand ``which`` inside the broadcast loops."""
    terms = [f"i{k} * {loop[which]}" for k, loop in enumerate(loops) if loop[which]]
    return (" + " + " + ".join(terms)) if terms else ""


def _io_dict(io: IoSpec) -> dict[str, object]:
    shape6 = list(io.shape) + [0] * (6 - len(io.shape))
    return dict(name=_c_string(io.name), shape=list(io.shape), shape6=shape6, scale=io.scale,
                scale_c=_c_float(io.scale), zero_point=io.zero_point, nbytes=io.nbytes, dtype=io.dtype,
                ctype=io.ctype, count=io.count)


def _const_arrays(module: Module) -> list[dict[str, object]]:
    """Every flash array: the ops' derived arrays in step order, then constant tensors read as data."""
    graph, plan, name = module.graph, module.plan, module.name
    arrays: list[dict[str, object]] = []
    data_consts: set[int] = set()
    for step in module.steps:
        for a in step.consts:
            arrays.append(_array_dict(name, a))
        data_consts.update(step.const_inputs)
    for t in sorted(data_consts | {t for _, t in plan.output_copies if graph.tensors[t].is_const}):
        tensor = graph.tensors[t]
        assert tensor.data is not None
        # Emitted in the tensor's own element type (int16 operands of 16x8 ops; int8 otherwise).
        ctype = "int16_t" if tensor.dtype == "int16" else "int8_t"
        arrays.append(_array_dict(name, ConstArray(f"t{t}", ctype, tensor.data.reshape(-1),
                                                   f"constant tensor '{_c_string(tensor.name)}' {list(tensor.shape)}")))
    return arrays


def _uses_ext_kernels(steps: list[Step]) -> bool:
    """True when a step calls a resilinet_nn_ext.h kernel (the module then includes that header)."""
    return any(ops.kernel(s.kernel).extension for s in steps)


#: The preprocessor line an array of each ConstArray.build is emitted under ("" = none).
_BUILD_GUARDS = {"": "", "resilinet": "#ifndef RESILINET_USE_CMSIS_NN", "cmsis_nn": "#ifdef RESILINET_USE_CMSIS_NN"}


def _array_dict(module_name: str, a: ConstArray) -> dict[str, object]:
    return dict(cname=f"{module_name}_{a.key}", ctype=a.ctype, size=max(int(a.values.size), 1),
                body=_array_body(a.values if a.values.size else np.zeros(1, dtype=np.int64),
                                 24 if a.ctype == "int8_t" else 8),
                comment=_c_string(a.comment), guard=_BUILD_GUARDS[a.build])


def write_module(module: Module, out_dir: str | Path) -> ModuleInfo:
    """Write ``<out_dir>/<name>.c`` and ``.h`` and describe them."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c_path = out_dir / f"{module.name}.c"
    h_path = out_dir / f"{module.name}.h"
    c_path.write_text(module.c_source)
    h_path.write_text(module.h_source)
    return ModuleInfo(
        name=module.name, c_path=c_path, h_path=h_path, inputs=module.inputs, outputs=module.outputs,
        arena_bytes=module.plan.arena_size, arena_lower_bound=module.plan.lower_bound,
        scratch_bytes=module.plan.scratch_bytes, weight_bytes=module.weight_bytes,
        quant_param_bytes=module.quant_param_bytes, macs=module.macs, ops=module.op_summaries(),
        uses_ext_kernels=_uses_ext_kernels(module.steps),
        generate_seconds=module.generate_seconds, state_bytes=module.plan.state_bytes,
    )


def generate_module(model_path: str | Path, out_dir: str | Path, name: str | None = None,
                    backends: tuple[str, ...] = scr.DEFAULT_BACKENDS,
                    probe_tensors: Sequence[int] = (), options: LoweringOptions = LoweringOptions()) -> ModuleInfo:
    """Generate ``<out_dir>/<name>.c`` and ``<name>.h`` for ``model_path`` (name defaults to the file stem)."""
    return write_module(build_module(model_path, name=name, backends=backends, probe_tensors=probe_tensors,
                                     options=options), out_dir)


def activation_tensors(model_path: str | Path) -> list[int]:
    """Tensors computed by a kernel (not aliases), in execution order: what a layer-by-layer check probes."""
    graph = read_tflite(model_path)
    steps = lower_graph(graph)
    return [t for s in steps if s.kernel != ALIAS.name for t in s.outputs if t not in graph.outputs]
