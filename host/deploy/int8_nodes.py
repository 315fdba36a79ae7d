"""Build stage 2: partition -> calibrate -> int8 per node -> C per node, plus the int8 host evaluation.

Writes ``nodes/<node>/<node>.tflite`` and the generated ``node_<node>.c/.h`` for every node, and returns
what the firmware stage reads (:class:`host.deploy.manifest.NodeModel`, :class:`~host.deploy.manifest.Link`):
per node its inputs (with the links and mux choice that feed them) and outputs (with the links they are
sent on), each with shape and int8 parameters; per link its ends, bytes and parameters.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from host.deploy.checks import check_node_tflite
from host.deploy.manifest import Link, Node, NodeInput, NodeModel, NodeOutput
from host.deploy.quantize import NodeQuant, calibrate, check_links, code_bits, quantize_nodes, tflm_runner
from host.ml.datasets import Dataset
from host.ml.link_bits import CODE_LO, packed_bytes, resolve_bits
from host.ml.split import InputSpec, NodePlan, link_weights_of, node_models, plan_partition, run_split, sources_once
from host.ml.topology import Topology


def int8_zero(quant: Mapping[str, NodeQuant]) -> Callable[[str, InputSpec, int], np.ndarray]:
    """The int8 'real value 0' for a missing input: its zero point."""
    def zero(node: str, spec: InputSpec, n: int) -> np.ndarray:
        return np.full((n,) + tuple(spec.shape), quant[node].inputs[spec.name].zero_point, np.int8)
    return zero


def quantized_sensor_inputs(plans: Mapping[str, NodePlan], quant: Mapping[str, NodeQuant],
                            x: np.ndarray) -> dict[str, np.ndarray]:
    """What each sensor node is fed: its features, quantized with its input's parameters."""
    return {n: quant[n].inputs[p.inputs[0].name].quantize(x[..., p.features] if p.features else x)
            for n, p in plans.items() if p.aggregation == "source"}


def int8_accuracy(plans: Mapping[str, NodePlan], quant: Mapping[str, NodeQuant], topo: Topology,
                  x: np.ndarray, y: np.ndarray, *, progress: Callable[[str], None] | None = None) -> list[float | None]:
    """Accuracy of the int8 split network (tflite_micro per node) in every failure configuration."""
    run = sources_once(tflm_runner(quant, plans), plans)
    zero = int8_zero(quant)
    sensors = quantized_sensor_inputs(plans, quant, x)
    accs: list[float | None] = []
    for c in topo.configurations():
        r = run_split(plans, run, sensors, topo.alive_map(c), zero=lambda n, s: zero(n, s, len(x)))
        accs.append(None if r.result is None else float(np.mean(np.argmax(r.result, axis=1) == y)))
        if progress:
            progress("".join(map(str, c)))
    return accs


@dataclass
class Int8Nodes:
    """What stage nodes makes: manifest nodes (with their int8 model) and links, plus the plans and int8
    models the host-side evaluation runs."""

    nodes: dict[str, Node]
    links: dict[str, Link]
    plans: dict[str, NodePlan]
    quant: dict[str, NodeQuant]
    timings_s: dict[str, float]


def build_int8_nodes(model: Any, topo: Topology, scheme: str, ds: Dataset, out: Path, *, board: str,
                     calib_samples: int = 400, seed: int = 0, log: Callable[[str], None] = print) -> Int8Nodes:
    """Partition the trained ``model``, quantize every node, generate its C module (every node on ``board``)."""
    import codegen

    timings: dict[str, float] = {}
    t0 = time.time()
    plans = plan_partition(topo, scheme, feature_groups=ds.feature_groups,
                           link_weights=link_weights_of(model, topo, scheme))
    shape, classes = tuple(ds.x_train.shape[1:]), ds.num_classes
    float_models = node_models(model, topo, scheme, plans, input_shape=shape, num_classes=classes)
    batch1 = node_models(model, topo, scheme, plans, input_shape=shape, num_classes=classes, batch_size=1,
                         fused_lstm=True)
    timings["partition"] = time.time() - t0

    t0 = time.time()
    rng = np.random.default_rng(seed)
    xc = ds.x_train[np.sort(rng.choice(len(ds.x_train), size=min(calib_samples, len(ds.x_train)), replace=False))]
    calib = calibrate(plans, float_models, topo, xc, seed=seed)
    bits = link_code_bits(model, topo, plans, calib)
    quant, links = quantize_nodes(plans, batch1, calib, progress=lambda n: log(f"  int8 {n}"), bits=bits)
    problems = check_links(plans, quant)
    if problems:
        raise AssertionError("links whose two ends disagree on int8 parameters:\n  " + "\n  ".join(problems))
    timings["quantize"] = time.time() - t0

    t0 = time.time()
    nodes: dict[str, Node] = {}
    for name, plan in plans.items():
        d = out / "nodes" / name
        d.mkdir(parents=True, exist_ok=True)
        tfl = d / f"{name}.tflite"
        tfl.write_bytes(quant[name].tflite)
        check_node_tflite(tfl)  # a truncated or corrupt model is one ModelFormatError naming the file
        info = codegen.generate_module(tfl, d, name=f"node_{name}")
        nodes[name] = Node(plan.role, plan.failable, node_model(plan, quant[name], info, tfl, out), board)
        log(f"  C    {name}: {info.macs:,} MACs, weights {info.weight_bytes:,} B, arena {info.arena_bytes:,} B")
    timings["generate"] = time.time() - t0

    link_table = {}
    for plan in plans.values():
        for o in plan.outputs:
            for link in o.links:
                src, dst = link.split("->")
                q = links[link]
                n, b = int(np.prod(o.shape)), bits.get(link, 8)
                link_table[link] = Link(src, dst, topo.link(link).skip, list(o.shape), n, o.name, q.scale,
                                        q.zero_point, *((b, CODE_LO, packed_bytes(n, b)) if b < 8 else ()))
    return Int8Nodes(nodes, link_table, plans, quant, {k: round(v, 2) for k, v in timings.items()})


def link_code_bits(model: Any, topo: Topology, plans: Mapping[str, NodePlan], calib: Any) -> dict[str, int]:
    """Per link, the bits on the wire (link_codes.resolve_bits, then one code space per group of links that
    share int8 parameters); a coded link's calibrated range becomes the range its LinkCode was trained
    with, so the int8 grid is the training grid."""
    want: dict[str, int] = {}
    for plan in plans.values():
        for o in plan.outputs:
            for name in o.links:
                link = topo.link(name)
                want[name] = resolve_bits(name, link.bits, link.max_bytes, int(np.prod(o.shape)))
    bits = code_bits(plans, calib.link_range, want)
    from host.ml import link_codes  # Keras: imported only when a build gets here (the router imports this module)

    for name, b in bits.items():
        trained = link_codes.trained_range(model, *name.split("->")) if b < 8 else None
        if trained is not None:
            calib.link_range[name] = trained
    return bits


def node_model(plan: NodePlan, q: NodeQuant, info: Any, tflite: Path, out: Path) -> NodeModel:
    """The manifest record of one node's int8 model and its generated C module ``info``."""
    c_in = {io.name: k for k, io in enumerate(info.inputs)}
    c_out = {io.name: k for k, io in enumerate(info.outputs)}
    inputs = [NodeInput(s.name, q.input_positions[s.name], c_in[s.name], s.primary, s.fallback, list(s.replicas),
                        list(s.shape), q.inputs[s.name].scale, q.inputs[s.name].zero_point, int(np.prod(s.shape)))
              for s in plan.inputs]
    outputs = [NodeOutput(o.name, q.output_positions[o.name], c_out[o.name], o.links, o.result, list(o.shape),
                          q.outputs[o.name].scale, q.outputs[o.name].zero_point, int(np.prod(o.shape)))
               for o in plan.outputs]
    return NodeModel(
        aggregation=plan.aggregation, features=plan.features, tflite=str(tflite.relative_to(out)),
        c=str(info.c_path.relative_to(out)), h=str(info.h_path.relative_to(out)), module=f"node_{plan.node}",
        inputs=inputs, outputs=outputs, model_sha256=hashlib.sha256(q.tflite).hexdigest(),
        arena_bytes=info.arena_bytes, arena_lower_bound=info.arena_lower_bound, scratch_bytes=info.scratch_bytes,
        weight_bytes=info.weight_bytes, quant_param_bytes=info.quant_param_bytes, macs=info.macs,
        state_bytes=info.state_bytes)
