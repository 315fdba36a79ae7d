"""A build directory as the harness sees it: nodes, links, ids, test set, and the bit-exact int8 reference.

:func:`load_deployment` reads ``manifest.json`` (written by ``python -m host.build``) and rebuilds from it,
without TensorFlow, everything the host needs to drive the boards and to check them:

* the node and link tables with the ids the firmware was built with (``nodes[n].node_id``, ``links[l].id``,
  ``sensor_links``), each node's model hash, ELF and board;
* the partition plans (:class:`host.ml.split.NodePlan`) and the int8 models (:class:`host.deploy.quantize.NodeQuant`,
  from the per-node ``.tflite`` files), so that :class:`Reference` runs exactly what ``host.deploy.int8_nodes``
  runs: :func:`host.ml.split.run_split` with :func:`host.deploy.quantize.tflm_runner`, a missing input being its
  zero point;
* the test set the build evaluated on (same dataset options, seed and subset).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from host.deploy.firmware_stage import node_depths
from host.deploy.int8_nodes import int8_zero
from host.deploy.manifest import Manifest, ManifestError, manifest_path, read_manifest, to_json
from host.deploy.quantize import NodeQuant, QParams, tflm_runner
from host.ml.split import InputSpec, NodePlan, OutputSpec, SplitRun, run_split
from host.net.link_pack import unpack
from host.net.protocol import NODE_HOST


class DeploymentError(RuntimeError):
    """A build directory the harness cannot use (the message says what is missing and how to get it)."""


@dataclass
class LinkInfo:
    """One directed tensor link between two nodes (or the host's feed of a sensor node)."""

    name: str            # "edge->fog"; the host's feed of sensor s is "host->s"
    id: int              # link id on the wire
    src: str             # producer node ("host" for a feed)
    dst: str             # consumer node
    src_id: int
    dst_id: int
    bytes: int           # tensor bytes
    skip: bool = False
    scale: float = 1.0
    zero_point: int = 0
    bits: int = 8        # bits per element on the wire (host/net/link_pack.py); 8 = plain int8
    code_lo: int = -128  # the int8 value of code 0 (bits < 8)

    def unpack(self, payload: bytes) -> bytes:
        """A DATA payload as the int8 tensor the consumer computes with (a packed one unpacked)."""
        return payload if self.bits == 8 else unpack(payload, self.bytes, self.bits, self.code_lo).tobytes()

    @property
    def is_feed(self) -> bool:
        return self.src_id == NODE_HOST


@dataclass
class NodeInfo:
    name: str
    id: int
    role: str
    failable: bool
    aggregation: str
    board: str
    elf: Path
    model_hash: bytes                       # 8 bytes
    links_in: list[str] = field(default_factory=list)   # incoming link names (a sensor: its feed)
    links_out: list[str] = field(default_factory=list)  # outgoing DATA link names
    result: bool = False                    # sends the RESULT to the host
    feed: LinkInfo | None = None            # sensor nodes: the host's feed link
    input_q: QParams | None = None          # sensor nodes: int8 parameters of the features
    features: list[int] | None = None


@dataclass
class Deployment:
    build: Path
    info: Manifest                          # the build's manifest.json (host.deploy.manifest)
    nodes: dict[str, NodeInfo]              # data-flow order
    links: dict[str, LinkInfo]              # node-to-node links (no feeds)
    feeds: dict[str, LinkInfo]              # sensor node -> host feed
    plans: dict[str, NodePlan]
    quant: dict[str, NodeQuant]
    failure_order: list[str]
    reliability: dict[str, dict[str, float]]
    board_deadline_ms: int
    evaluation: dict[str, Any] | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest as JSON (for reports that print keys of it); typed values are in ``info``."""
        return to_json(self.info)

    # ------------------------------------------------------------------ lookups
    @property
    def node_by_id(self) -> dict[int, str]:
        return {n.id: name for name, n in self.nodes.items()}

    @property
    def link_by_id(self) -> dict[int, LinkInfo]:
        return {l.id: l for l in (*self.links.values(), *self.feeds.values())}

    @property
    def final_node(self) -> str:
        return next(n for n, d in self.nodes.items() if d.result)

    @property
    def max_depth(self) -> int:
        """The most links on a path from a sensor to a node (host.deploy.firmware_stage.node_depths); a node's
        board deadline grows with its depth (node_deadline_ms)."""
        return max(node_depths(self.info.nodes, self.info.require_links()).values(), default=0)

    @property
    def sensors(self) -> list[str]:
        return list(self.feeds)

    @property
    def random_guess(self) -> float:
        if self.evaluation and "random_guess" in self.evaluation:
            return float(self.evaluation["random_guess"])
        return 1.0 / max(1, self.info.dataset.num_classes)

    def label(self) -> str:
        return f"{self.info.preset} / {self.info.scheme} ({self.build})"

    def node_label(self, name: str) -> str:
        """``edge (node2)``: how reports and error messages name a node (its name and its id on the wire)."""
        node = self.nodes.get(name)
        return name if node is None else f"{name} (node{node.id})"

    def node_list(self) -> str:
        """Every node as :meth:`node_label` names it, in data-flow order (for error messages)."""
        return ", ".join(self.node_label(n) for n in self.nodes)

    # ------------------------------------------------------------------ failures
    def has_path(self, dead: Iterable[str] = (), cut_links: Iterable[str] = ()) -> bool:
        """Whether a tensor can still flow from a live sensor to the final node (the scheme's links)."""
        dead, cut = set(dead), set(cut_links)
        reached = {s for s in self.sensors if s not in dead}
        frontier = list(reached)
        while frontier:
            cur = frontier.pop()
            for name in self.nodes[cur].links_out:
                l = self.links[name]
                if name not in cut and l.dst not in dead and l.dst not in reached:
                    reached.add(l.dst)
                    frontier.append(l.dst)
        return self.final_node in reached

    def configurations(self) -> list[tuple[int, ...]]:
        """Every failure configuration of the failable nodes (1 = alive), as host.ml.topology orders them."""
        import itertools
        return list(itertools.product((0, 1), repeat=len(self.failure_order)))

    def failed_in(self, config: tuple[int, ...]) -> list[str]:
        return [n for n, b in zip(self.failure_order, config) if not b]

    def config_of(self, dead: Iterable[str]) -> tuple[int, ...] | None:
        """The configuration bits of a set of failed nodes (None if a non-failable node is among them)."""
        dead = set(dead)
        if not dead <= set(self.failure_order):
            return None
        return tuple(0 if n in dead else 1 for n in self.failure_order)

    def config_label(self, dead: Iterable[str]) -> str:
        dead = [n for n in self.failure_order if n in set(dead)] + sorted(set(dead) - set(self.failure_order))
        return "none failed" if not dead else "+".join(dead) + " failed"

    def config_probability(self, config: tuple[int, ...], setting: str) -> float:
        p = 1.0
        for name, bit in zip(self.failure_order, config):
            r = self.reliability[setting][name]
            p *= r if bit else 1.0 - r
        return p

    def float_accuracy(self, dead: Iterable[str]) -> float | None:
        """The float model's accuracy (whole test set, from the build's evaluation) for these failed nodes."""
        config = self.config_of(dead)
        ev = self.evaluation
        if config is None or not ev:
            return None
        try:
            i = [tuple(c) for c in ev["configs"]].index(config)
        except ValueError:
            return None
        return ev["accuracy"][i]

    # ------------------------------------------------------------------ data
    def load_test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The test split the build evaluated on: same dataset, options, seed and subset."""
        from host.ml.datasets import load_dataset

        m = self.info
        opts = dict(m.topology["dataset"])
        name = opts.pop("name")
        seed = m.seed
        ds = load_dataset(name, seed=seed, **opts)
        n_test = m.dataset.test
        if n_test < len(ds.y_test):
            ds = ds.subset(max_test=n_test, seed=seed)
        if len(ds.y_test) != n_test:
            raise DeploymentError(f"the test set has {len(ds.y_test)} samples, the build used {n_test}")
        return ds.x_test, ds.y_test

    def sensor_inputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """int8 features per sensor node for a batch ``x`` (the sensor input's scale and zero point)."""
        out = {}
        for s in self.sensors:
            n = self.nodes[s]
            feats = x[..., n.features] if n.features else x
            out[s] = n.input_q.quantize(feats)
        return out


def load_deployment(build: str | Path) -> Deployment:
    """Read ``build/manifest.json`` (a complete build, firmware stage included)."""
    build = Path(build)
    try:
        m = read_manifest(build, stage="firmware")
    except ManifestError as err:
        raise DeploymentError(str(err)) from err
    path = manifest_path(build)
    links_table = m.require_links()
    sensor_links = m.sensor_links or {}
    node_ids = {name: int(d.require_firmware().node_id) for name, d in m.nodes.items()}
    links: dict[str, LinkInfo] = {}
    for name, l in links_table.items():
        links[name] = LinkInfo(name, int(l.id if l.id is not None else -1), l.src, l.dst, node_ids[l.src],
                               node_ids[l.dst], l.bytes, l.skip, float(l.scale), l.zero_point, l.wire_bits,
                               l.code_lo if l.code_lo is not None else -128)
    feeds: dict[str, LinkInfo] = {}
    nodes: dict[str, NodeInfo] = {}
    plans: dict[str, NodePlan] = {}
    quant: dict[str, NodeQuant] = {}
    for name, d in m.nodes.items():
        fw, model = d.require_firmware(), d.require_model()
        info = NodeInfo(name, node_ids[name], d.role, d.failable, model.aggregation, fw.board,
                        (build / fw.elf).resolve(), bytes.fromhex(fw.model_hash), features=model.features)
        for o in model.outputs:
            info.links_out += list(o.links)
            info.result |= o.result
        info.links_in = [l for l, ld in links_table.items() if ld.dst == name]
        if model.aggregation == "source":
            spec = model.inputs[0]
            feed = LinkInfo(f"host->{name}", int(sensor_links[name]), "host", name, NODE_HOST, node_ids[name],
                            spec.bytes, False, float(spec.scale), spec.zero_point)
            feeds[name] = feed
            info.feed = feed
            info.links_in = [feed.name]
            info.input_q = QParams(float(spec.scale), spec.zero_point)
        nodes[name] = info
        plans[name] = NodePlan(
            name, d.role, d.failable, model.aggregation,
            [InputSpec(i.name, i.primary, i.fallback, tuple(i.shape), list(i.replicas)) for i in model.inputs],
            [OutputSpec(o.name, list(o.links), tuple(o.shape), o.result) for o in model.outputs],
            model.features)
        tfl = build / model.tflite
        if not tfl.exists():
            raise DeploymentError(f"node {name}: {tfl} is missing (rebuild with python -m host.build)")
        quant[name] = NodeQuant(
            tfl.read_bytes(),
            {i.name: QParams(float(i.scale), i.zero_point) for i in model.inputs},
            {o.name: QParams(float(o.scale), o.zero_point) for o in model.outputs},
            {i.name: i.position for i in model.inputs},
            {o.name: o.position for o in model.outputs},
            {o.name: links_table[o.links[0]].wire_bits for o in model.outputs
             if o.links and links_table[o.links[0]].wire_bits < 8})
    if sum(n.result for n in nodes.values()) != 1:
        raise DeploymentError(f"{path}: expected exactly one node that sends the RESULT")
    ev_path = build / m.stages.evaluate.json
    evaluation = json.loads(ev_path.read_text()) if ev_path.exists() else None
    deadline = m.stages.firmware.deadline_ms if m.stages.firmware else 1000
    return Deployment(build.resolve(), m, nodes, links, feeds, plans, quant, m.failure_order, m.reliability,
                      deadline, evaluation)


class Reference:
    """The int8 split network on the host: tflite_micro per node, the boards' failure semantics.

    ``run(sensors, dead, cut_links)`` is :func:`host.ml.split.run_split` with
    :func:`host.deploy.quantize.tflm_runner` and zero = the input's zero point, for a batch of samples.
    """

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.runner = tflm_runner(dep.quant, dep.plans)
        self._zero = int8_zero(dep.quant)

    def run(self, sensors: Mapping[str, np.ndarray], dead: Iterable[str] = (),
            cut_links: Iterable[str] = (), runner: Any = None) -> SplitRun:
        """run_split with tflm_runner (or ``runner``), ``dead`` nodes failed, ``cut_links`` not delivered."""
        n = len(next(iter(sensors.values())))
        dead = set(dead)
        alive = {name: name not in dead for name in self.dep.nodes}
        return run_split(self.dep.plans, runner or self.runner, sensors, alive,
                         zero=lambda node, spec: self._zero(node, spec, n), cut_links=frozenset(cut_links))
