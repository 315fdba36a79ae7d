"""Full-integer int8 TFLite model per node, with one scale/zero-point per link shared by both ends.

Calibration uses the real activations that reach each node, under the failure configurations that occur
(the inputs a fog gets when its edge failed are part of its calibration data). Every link tensor gets one
int8 (scale, zero point) from its observed range; links that must be interchangeable share one: the two
links into a mux (so the board's mux is a pointer choice), the links into a concatenation, and the
replicas a distillation aggregator averages (so their mean is the mean of their codes). The
converter's choice for those tensors is then replaced at both ends by the link's parameters, and
propagated through ops that must keep the scale of their input (reshape, pooling, padding, concatenation).
TFLM and the generated C compute their requantization multipliers from the tensors' parameters, so the
replacement is exact, and :func:`check_links` proves that sender and receiver agree byte for byte.
"""
from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from host.ml.link_bits import clamp_codes
from host.ml.split import NodePlan, keras_runner, run_split, sensor_features
from host.ml.topology import Topology

#: TFLite builtin operators whose int8 output must use the scale and zero point of their input.
SAME_SCALE_OPS = {"RESHAPE", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "PADV2", "SQUEEZE", "CONCATENATION",
                  "EXPAND_DIMS", "STRIDED_SLICE", "SLICE", "TRANSPOSE"}
#: Operators whose int8 output IS one of their inputs (op input index): the LSTM writes its hidden state, a
#: variable tensor, as its output, so a new output scale must be the hidden state's too (TFLM derives the
#: LSTM's requantization from the state's parameters; patching only the output would misread every code).
STATE_OUTPUT_OPS = {"UNIDIRECTIONAL_SEQUENCE_LSTM": 18}


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        return np.clip(np.round(x / self.scale) + self.zero_point, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (q.astype(np.float32) - self.zero_point) * self.scale


def qparams_from_range(lo: float, hi: float, bits: int = 8) -> QParams:
    """Asymmetric int8 parameters covering [lo, hi] and exactly representing 0 (TFLite's nudging).

    ``bits`` < 8: a low-bit link (host/ml/link_codes.py): [lo, hi] spans the int8 codes -128 .. -128 +
    2^bits - 1 only, so the tensor's codes are ``-128 + c`` with a ``bits``-bit c (0 is still exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / float((1 << int(bits)) - 1)
    zp = int(round(-128 - lo / scale))
    return QParams(float(np.float32(scale)), int(min(127, max(-128, zp))))


# ------------------------------------------------------------------------------ calibration
@dataclass
class Calibration:
    """Per node: the inputs it was fed (one array per input spec). Per link: its value range."""

    node_inputs: dict[str, list[np.ndarray]]
    link_range: dict[str, tuple[float, float]]


def calibrate(plans: Mapping[str, NodePlan], models: Mapping[str, Any], topo: Topology, x: np.ndarray,
              *, failure_fraction: float = 0.25, seed: int = 0) -> Calibration:
    """Run the float split network on ``x`` with no failure, and on a share of ``x`` under every other
    configuration that keeps a path, collecting what reaches each node."""
    rng = np.random.default_rng(seed)
    runner = keras_runner(models)
    node_inputs: dict[str, list[list[np.ndarray]]] = {n: [[] for _ in p.inputs] for n, p in plans.items()}
    link_lo: dict[str, float] = {}
    link_hi: dict[str, float] = {}
    configs = [c for c in topo.configurations() if topo.has_path(c)]
    for c in configs:
        if all(c):
            xs = x
        else:
            k = max(1, int(len(x) * failure_fraction))
            xs = x[np.sort(rng.choice(len(x), size=k, replace=False))]
        feeds = sensor_features(plans, xs)
        run = run_split(plans, runner, feeds, topo.alive_map(c),
                        zero=lambda n, s, m=len(xs): np.zeros((m,) + s.shape, np.float32))
        for node, fed in run.inputs.items():
            for i, arr in enumerate(fed):
                node_inputs[node][i].append(np.asarray(arr, np.float32))
        for node, outs in run.outputs.items():
            for o in plans[node].outputs:
                v = outs[o.name]
                for link in o.links:
                    link_lo[link] = min(link_lo.get(link, math.inf), float(v.min()))
                    link_hi[link] = max(link_hi.get(link, -math.inf), float(v.max()))
    return Calibration({n: [np.concatenate(parts) if parts else np.zeros((0,)) for parts in ins]
                        for n, ins in node_inputs.items()},
                       {l: (link_lo[l], link_hi[l]) for l in link_lo})


def link_qparams(plans: Mapping[str, NodePlan], calib: Calibration,
                 bits: Mapping[str, int] | None = None) -> dict[str, QParams]:
    """One QParams per link; mux partners and concatenation inputs share theirs (union of ranges), and one
    code space: the fewest ``bits`` of the group (default 8; see :func:`code_bits`)."""
    out: dict[str, QParams] = {}
    for members in link_groups(plans, calib.link_range):
        lo = min(calib.link_range[m][0] for m in members)
        hi = max(calib.link_range[m][1] for m in members)
        q = qparams_from_range(lo, hi, min((bits or {}).get(m, 8) for m in members))
        out.update({m: q for m in members})
    return out


def code_bits(plans: Mapping[str, NodePlan], links: Iterable[str], bits: Mapping[str, int]) -> dict[str, int]:
    """Per link, the bits its group uses: links that share int8 parameters share one code space (a mux picks
    either partner's codes as they are), so the group takes its members' fewest bits."""
    out: dict[str, int] = {}
    for members in link_groups(plans, links):
        b = min(bits.get(m, 8) for m in members)
        out.update({m: b for m in members})
    return out


def link_groups(plans: Mapping[str, NodePlan], links: Iterable[str]) -> list[list[str]]:
    """The links that must share one int8 scale/zero point, as groups."""
    parent: dict[str, str] = {l: l for l in links}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(links: Iterable[str]) -> None:
        links = [l for l in links if l in parent]
        for other in links[1:]:
            parent[find(other)] = find(links[0])

    for p in plans.values():
        for o in p.outputs:
            union(o.links)  # one tensor sent on several links is one tensor
        if p.aggregation == "mux":
            union(p.inputs[0].links)
        if p.merge == "concat":  # the normal links of a concatenation (with or without skips added after it)
            union(p.normal_links)
        elif p.merge == "average":  # replicas are averaged as codes; parts are concatenated
            union([l for s in p.inputs if s.replicas for l in s.replicas])
    groups: dict[str, list[str]] = {}
    for l in parent:
        groups.setdefault(find(l), []).append(l)
    return list(groups.values())


# ------------------------------------------------------------------------------ conversion
def convert_int8(model: Any, representative: Mapping[str, np.ndarray], *, max_samples: int = 400) -> bytes:
    """Full-integer int8 conversion (int8 in and out), calibrated on ``representative`` (by input name)."""
    import tensorflow as tf

    total = len(next(iter(representative.values())))
    # Rows spread evenly over the whole set, not its first rows: the calibration set holds one block per
    # failure configuration (calibrate), and the first blocks alone can leave a tensor that only other
    # configurations fill at a constant value (e.g. the camera preset's f2, whose normal links are both lost
    # in the first configurations with f2 alive): a zero range, and an int8 ADD scale TFLM rejects.
    rows = np.unique(np.linspace(0, total - 1, min(total, max_samples)).round().astype(int)) if total else []

    def rep() -> Iterator[dict[str, np.ndarray]]:
        for i in rows:
            # dicts keyed by input name: a list would be fed in TFLite's (reordered) input order
            yield {k: v[i:i + 1].astype(np.float32) for k, v in representative.items()}

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    # The converter prints its SavedModel export and deprecation notices; keep our own output readable.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return conv.convert()


def _load_schema():
    """The TFLite flatbuffer schema (object API), as shipped with ai-edge-litert."""
    from ai_edge_litert import schema_py_generated as schema
    return schema


def signature_io(tflite: bytes) -> tuple[dict[str, int], dict[str, int]]:
    """Signature name -> tensor index, for inputs and outputs (TFLite reorders them; names do not lie)."""
    schema = _load_schema()
    m = schema.ModelT.InitFromPackedBuf(tflite, 0)
    sig = m.signatureDefs[0]
    ins = {t.name.decode(): t.tensorIndex for t in sig.inputs}
    outs = {t.name.decode(): t.tensorIndex for t in sig.outputs}
    return ins, outs


def io_positions(tflite: bytes) -> tuple[dict[str, int], dict[str, int]]:
    """Signature name -> position in the subgraph's input/output list (what interpreters index by)."""
    schema = _load_schema()
    m = schema.ModelT.InitFromPackedBuf(tflite, 0)
    sg = m.subgraphs[0]
    ins, outs = signature_io(tflite)
    return ({k: list(sg.inputs).index(v) for k, v in ins.items()},
            {k: list(sg.outputs).index(v) for k, v in outs.items()})


def tensor_qparams(tflite: bytes, names: Iterable[str], *, outputs: bool) -> dict[str, QParams]:
    schema = _load_schema()
    m = schema.ModelT.InitFromPackedBuf(tflite, 0)
    tensors = m.subgraphs[0].tensors
    ins, outs = signature_io(tflite)
    idx = outs if outputs else ins
    res = {}
    for n in names:
        q = tensors[idx[n]].quantization
        res[n] = QParams(float(q.scale[0]), int(q.zeroPoint[0]))
    return res


def patch_io_qparams(tflite: bytes, inputs: Mapping[str, QParams], outputs: Mapping[str, QParams]) -> bytes:
    """Set the quantization of named inputs/outputs, propagating through scale-preserving ops."""
    import flatbuffers

    schema = _load_schema()
    m = schema.ModelT.InitFromPackedBuf(tflite, 0)
    sg = m.subgraphs[0]
    ins, outs = signature_io(tflite)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    op_names = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode), "?") for c in m.operatorCodes]

    def set_q(t: int, q: QParams) -> None:
        quant = sg.tensors[t].quantization
        if quant is None or quant.scale is None or len(quant.scale) != 1:
            raise ValueError(f"tensor {sg.tensors[t].name!r} is not per-tensor int8 quantized")
        quant.scale = [q.scale]
        quant.zeroPoint = [q.zero_point]

    def propagate_down(t: int, q: QParams) -> None:
        for op in sg.operators:
            if t in list(op.inputs) and op_names[op.opcodeIndex] in SAME_SCALE_OPS:
                if op_names[op.opcodeIndex] == "CONCATENATION":
                    qs = {(sg.tensors[i].quantization.scale[0], sg.tensors[i].quantization.zeroPoint[0])
                          for i in op.inputs}
                    if len(qs) != 1:
                        continue  # partners not patched yet; the last one propagates
                for o in op.outputs:
                    set_q(o, q)
                    propagate_down(o, q)

    def propagate_up(t: int, q: QParams) -> None:
        for op in sg.operators:
            if t in list(op.outputs) and op_names[op.opcodeIndex] in SAME_SCALE_OPS - {"CONCATENATION"}:
                src = op.inputs[0]
                set_q(src, q)
                propagate_up(src, q)
            elif t in list(op.outputs) and op_names[op.opcodeIndex] in STATE_OUTPUT_OPS:
                set_q(op.inputs[STATE_OUTPUT_OPS[op_names[op.opcodeIndex]]], q)

    for name, q in inputs.items():
        set_q(ins[name], q)
        propagate_down(ins[name], q)
    for name, q in outputs.items():
        set_q(outs[name], q)
        propagate_up(outs[name], q)
    rescale_biases(m, sg, op_names)
    b = flatbuffers.Builder(len(tflite) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


#: Operators with an int32 bias (input 2) quantized with scale input_scale x weight_scale.
BIAS_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def rescale_biases(m: Any, sg: Any, op_names: list[str]) -> None:
    """Re-quantize the int32 biases of ops whose input scale was patched: the converter quantized each bias
    with the input scale IT calibrated, and kernels add the bias as it is. With an 8-bit link the patched scale
    is close to the converter's; a 2-bit link's is ~85x coarser, so the bias must follow (same real bias)."""
    for op in sg.operators:
        if op_names[op.opcodeIndex] not in BIAS_OPS or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        x, w, bias = (sg.tensors[i] for i in op.inputs[:3])
        bq = bias.quantization
        if bq is None or bq.scale is None or w.quantization is None or w.quantization.scale is None:
            continue
        want = float(x.quantization.scale[0]) * np.asarray(w.quantization.scale, np.float64)
        have = np.asarray(bq.scale, np.float64)
        if want.shape != have.shape or np.allclose(want, have, rtol=1e-5):
            continue
        buf = m.buffers[bias.buffer]
        if buf.data is None:
            continue
        vals = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), np.int32)
        new = np.clip(np.round(vals * (have / want)), -2**31, 2**31 - 1).astype(np.int32)
        buf.data = np.frombuffer(new.tobytes(), np.uint8).copy()
        bq.scale = [float(v) for v in want.astype(np.float32)]


# ------------------------------------------------------------------------------ whole network
@dataclass
class NodeQuant:
    tflite: bytes
    inputs: dict[str, QParams]
    outputs: dict[str, QParams]
    input_positions: dict[str, int]
    output_positions: dict[str, int]
    #: output name -> bits of its link codes when < 8 (the reference clamps as the sending board does)
    output_bits: dict[str, int] = field(default_factory=dict)


def quantize_nodes(plans: Mapping[str, NodePlan], batch1_models: Mapping[str, Any], calib: Calibration,
                   *, progress: Any = None, bits: Mapping[str, int] | None = None,
                   ) -> tuple[dict[str, NodeQuant], dict[str, QParams]]:
    """Convert every node to int8 and give each link one (scale, zero point) at both ends (``bits``: per
    link, from :func:`code_bits`)."""
    bits = bits or {}
    links = link_qparams(plans, calib, bits)
    result: dict[str, NodeQuant] = {}
    for name, plan in plans.items():
        rep = {spec.name: calib.node_inputs[name][i] for i, spec in enumerate(plan.inputs)}
        tfl = convert_int8(batch1_models[name], rep)
        in_q: dict[str, QParams] = {}
        for spec in plan.inputs:
            if plan.aggregation == "source":
                continue  # sensor data: the converter's calibrated input parameters stand
            in_q[spec.name] = links[spec.links[0]]
        out_q = {o.name: links[o.links[0]] for o in plan.outputs if o.links}
        tfl = patch_io_qparams(tfl, in_q, out_q)
        ins, outs = io_positions(tfl)
        in_all = tensor_qparams(tfl, [s.name for s in plan.inputs], outputs=False)
        out_all = tensor_qparams(tfl, [o.name for o in plan.outputs], outputs=True)
        coded = {o.name: bits[o.links[0]] for o in plan.outputs if o.links and bits.get(o.links[0], 8) < 8}
        result[name] = NodeQuant(tfl, in_all, out_all, ins, outs, coded)
        if progress is not None:
            progress(name)
    return result, links


def check_links(plans: Mapping[str, NodePlan], quant: Mapping[str, NodeQuant]) -> list[str]:
    """Every link: the sender's output and every receiver input it feeds have identical int8 parameters.

    Returns a list of disagreements (empty when all links agree).
    """
    problems = []
    for name, plan in plans.items():
        for o in plan.outputs:
            sent = quant[name].outputs[o.name]
            for link in o.links:
                dst = link.split("->")[1]
                for spec in plans[dst].inputs:
                    if link in spec.links and quant[dst].inputs[spec.name] != sent:
                        problems.append(f"{link}: sender {sent} != receiver input {spec.name} "
                                        f"{quant[dst].inputs[spec.name]}")
    return problems


def tflm_runner(quant: Mapping[str, NodeQuant],
                plans: Mapping[str, NodePlan]) -> Callable[[str, list[np.ndarray]], dict[str, np.ndarray]]:
    """Run the int8 per-node models with the tflite_micro reference interpreter (batch of 1 per call).

    Every sample is a sequence of its own: the interpreter is reset before each one, so a recurrent node
    (LSTM state kept between invocations, as in TFLM) starts every sample from its initial state -- what the
    boards' runtime does by calling the module's ``reset`` before each sample. No-op for stateless models.
    """
    from tflite_micro.python.tflite_micro import runtime as tflm

    # TFLM's default arena (10x the model) is too small for models with large activations; host memory.
    interps = {n: tflm.Interpreter.from_bytes(q.tflite, arena_size=max(10 * len(q.tflite), 8 << 20))
               for n, q in quant.items()}

    def run(node: str, feed: list[np.ndarray]) -> dict[str, np.ndarray]:
        it, q, plan = interps[node], quant[node], plans[node]
        outs: dict[str, list[np.ndarray]] = {o.name: [] for o in plan.outputs}
        for b in range(len(feed[0])):
            it.reset()
            for spec, arr in zip(plan.inputs, feed):
                it.set_input(arr[b:b + 1].astype(np.int8), q.input_positions[spec.name])
            it.invoke()
            for o in plan.outputs:
                v = np.array(it.get_output(q.output_positions[o.name]))[0]
                # a low-bit link carries the clamped codes: what the board sends (link_pack.c)
                outs[o.name].append(clamp_codes(v, q.output_bits[o.name]) if o.name in q.output_bits else v)
        return {k: np.stack(v) for k, v in outs.items()}
    return run
