"""Declarative topology of a distributed network: physical nodes, links, layers per node, reliabilities.

A topology is a TOML file (the built-in presets in ``host/ml/presets/`` use the same format). It describes
*where* each part of the network runs; which links are used and how incoming links are aggregated depends
on the scheme (vanilla, deepFogGuard, ResiliNet, ResiliNet+), see :mod:`host.schemes`.

Failure model (ResiliNet spec §2): failable nodes fail independently (fail-stop); a failure configuration
is a bit vector over the failable nodes in the topology's reliability order, 1 = alive, enumerated as the
binary expansion of 0..2^N-1 with the most significant bit first. Accuracy of a configuration without a
path from a sensor node to the cloud is the random-guess accuracy.
"""
from __future__ import annotations

import copy
import itertools
import random
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from host.ml.link_bits import link_budget
from host.ml.widths import scale_distillation, scale_widths

PRESET_DIR = Path(__file__).resolve().parent / "presets"

ROLES = ("sensor", "edge", "fog", "cloud")
#: The layer vocabulary of topology files (built by :func:`host.ml.schemes.apply_layer`).
LAYER_TYPES = ("dense", "conv2d", "dwsep", "depthwise", "resblock", "maxpool", "avgpool", "gap", "flatten", "reshape",
               "zeropad", "dropout", "batchnorm", "activation", "lstm", "keras")
#: ``keras``: a node body imported from the user's Keras model (``keras_layers``, :mod:`host.ml.keras_import`).
MERGES = ("concat", "sum", "average")
#: The key of a ``[partitions.K]`` table that holds link projections rather than a node's layers.
PROJECTIONS = "projections"
#: The paper's reliability settings, in the order tables print them.
SETTINGS = ("No failure", "Normal", "Poor", "Hazardous")


class TopologyError(ValueError):
    """A topology file that cannot describe a working network (the message names the offending entry)."""


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    failable: bool
    layers: tuple[dict, ...]
    #: Sensor nodes only: the dataset feature groups this node reads (None = all features).
    features: tuple[str, ...] | None = None
    #: How several *normal* incoming links are combined: "concat" (e.g. two sensors into one edge), "sum"
    #: (element-wise, e.g. two cameras into one edge), or "average" (distilled students: per part, the mean
    #: of the replicas that arrived; see ``Link.part``). Skips are added to the result by the scheme.
    merge: str = "concat"


@dataclass(frozen=True)
class Link:
    src: str
    dst: str
    skip: bool = False
    #: Layers computed on the *sending* node before the tensor leaves (skip projections).
    projection: tuple[dict, ...] = ()
    #: Into an "average" node only: the part of the receiver's input this link carries a replica of.
    part: int | None = None
    #: Bits per element on the wire (8, 4 or 2; host/ml/link_codes.py); None: from ``max_bytes``, else 8.
    bits: int | None = None
    #: Byte budget of the link's tensor on the wire; the build picks the bits (link_codes.resolve_bits).
    max_bytes: int | None = None
    #: Learned bottleneck: channels the link carries (a narrowing layer on the sender, a widening one on the
    #: receiver, both bias-free; host/ml/link_codes.py). None: the tensor as the sender computes it.
    bottleneck: int | None = None

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"


@dataclass(frozen=True)
class Partition:
    """One ``[partitions.K]`` table: which nodes' layers, and which links' projections, it replaces.

    A partition moves layers between nodes, so the tensors the links carry change shape: a skip link's
    projection must then produce the shape its receiver's other input has (``[partitions.K.projections]``).
    """

    layers: dict[str, list[dict]] = field(default_factory=dict)
    #: link name ("src->dst") -> projection layers replacing the link's own
    projections: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class Topology:
    name: str
    description: str
    dataset: dict[str, Any]
    nodes: list[Node]
    links: list[Link]
    #: Failable nodes in the order failure configurations and reliabilities are written.
    failure_order: list[str]
    #: setting name -> {node name: reliability}
    reliability: dict[str, dict[str, float]]
    training: dict[str, Any] = field(default_factory=dict)
    partitions: dict[str, Partition] = field(default_factory=dict)
    partition: str = "1"
    source: str = ""
    #: Distillation presets (NoNN and its successor): teacher, partition and student settings, see
    #: :func:`distillation_graph`. Empty for split networks.
    distillation: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- lookup
    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"topology {self.name!r} has no node {name!r} (nodes: {[n.name for n in self.nodes]})")

    @property
    def sensors(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "sensor"]

    @property
    def cloud(self) -> Node:
        return next(n for n in self.nodes if n.role == "cloud")

    def incoming(self, node: str, *, skips: bool = True) -> list[Link]:
        return [l for l in self.links if l.dst == node and (skips or not l.skip)]

    def outgoing(self, node: str, *, skips: bool = True) -> list[Link]:
        return [l for l in self.links if l.src == node and (skips or not l.skip)]

    @property
    def skip_links(self) -> list[Link]:
        return [l for l in self.links if l.skip]

    def link(self, name: str) -> Link:
        for l in self.links:
            if l.name == name:
                return l
        raise KeyError(f"topology {self.name!r} has no link {name!r} (links: {[l.name for l in self.links]})")

    # ----------------------------------------------------------- variations
    def with_skips(self, keep: Iterable[str] | None) -> "Topology":
        """A copy keeping only the named skip hyperconnections (None keeps all, [] removes all)."""
        if keep is None:
            return self
        keep = set(keep)
        unknown = keep - {l.name for l in self.skip_links}
        if unknown:
            raise TopologyError(f"{self.name}: no skip hyperconnection(s) {sorted(unknown)}; "
                                f"skips are {[l.name for l in self.skip_links]}")
        t = copy.copy(self)
        t.links = [l for l in self.links if not l.skip or l.name in keep]
        return t

    # -------------------------------------------------------------- failures
    def configurations(self) -> list[tuple[int, ...]]:
        """All failure configurations, binary expansion of 0..2^N-1, most significant bit first."""
        return list(itertools.product((0, 1), repeat=len(self.failure_order)))

    def alive_map(self, config: tuple[int, ...]) -> dict[str, bool]:
        alive = {n.name: True for n in self.nodes}
        alive.update({name: bool(b) for name, b in zip(self.failure_order, config)})
        return alive

    def has_path(self, config: tuple[int, ...], *, skips: bool = True) -> bool:
        """Whether information can flow from some sensor to the cloud with the failed nodes removed."""
        alive = self.alive_map(config)
        reached = {s.name for s in self.sensors if alive[s.name]}
        frontier = list(reached)
        while frontier:
            cur = frontier.pop()
            for l in self.outgoing(cur, skips=skips):
                if alive[l.dst] and l.dst not in reached:
                    reached.add(l.dst)
                    frontier.append(l.dst)
        return self.cloud.name in reached

    def reliabilities(self, setting: str) -> list[float]:
        try:
            table = self.reliability[setting]
        except KeyError:
            raise KeyError(f"{self.name}: no reliability setting {setting!r} "
                           f"(settings: {list(self.reliability)})") from None
        return [table[n] for n in self.failure_order]

    def config_probability(self, config: tuple[int, ...], setting: str) -> float:
        p = 1.0
        for bit, r in zip(config, self.reliabilities(setting)):
            p *= r if bit else 1.0 - r
        return p

    def path_probability(self, setting: str, *, skips: bool = True) -> float:
        """Probability that a path survives: the cap on any scheme's average accuracy (spec §2.2)."""
        return sum(self.config_probability(c, setting) for c in self.configurations()
                   if self.has_path(c, skips=skips))

    # ---------------------------------------------------- hyperconnection weights
    def hyperconnection_weights(self, scheme: int, setting: str | None = None,
                                seed: int = 0) -> dict[str, float]:
        """Fixed weight per incoming link (spec §6.2).

        1: all 1.  2: r_src / sum of r over the receiver's incoming links.  3: r_src.
        4: uniform [0, 1] per link, seeded.  Sensor nodes (and any non-failable node) count as r = 1.
        """
        if scheme == 1:
            return {l.name: 1.0 for l in self.links}
        if scheme == 4:
            rng = random.Random(seed)
            return {l.name: rng.uniform(0.0, 1.0) for l in self.links}
        if scheme not in (2, 3):
            raise ValueError(f"hyperconnection weight scheme must be 1-4, got {scheme}")
        if setting is None:
            raise ValueError(f"weight scheme {scheme} depends on the reliability setting; give one")
        r = dict(zip(self.failure_order, self.reliabilities(setting)))
        rel = {n.name: r.get(n.name, 1.0) for n in self.nodes}
        weights = {}
        for l in self.links:
            if scheme == 3:
                weights[l.name] = rel[l.src]
            else:
                total = sum(rel[i.src] for i in self.incoming(l.dst))
                weights[l.name] = rel[l.src] / total
        return weights

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able description (used for manifests and cache keys)."""
        return {
            "name": self.name, "partition": self.partition, "dataset": self.dataset,
            "nodes": [{"name": n.name, "role": n.role, "failable": n.failable, "layers": list(n.layers),
                       "features": list(n.features) if n.features else None, "merge": n.merge}
                      for n in self.nodes],
            "links": [{"src": l.src, "dst": l.dst, "skip": l.skip, "projection": list(l.projection),
                       **({"part": l.part} if l.part is not None else {}),
                       **({"bits": l.bits} if l.bits is not None else {}),
                       **({"max_bytes": l.max_bytes} if l.max_bytes is not None else {}),
                       **({"bottleneck": l.bottleneck} if l.bottleneck is not None else {})}
                      for l in self.links],
            "failure_order": self.failure_order, "reliability": self.reliability,
            "training": self.training,
            **({"distillation": self.distillation} if self.distillation else {}),
        }


# ------------------------------------------------------------------------- loading
def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_topology(name_or_path: str | Path, *, partition: str | None = None, width: float = 1.0,
                  model: str | Path | None = None) -> Topology:
    """Load a preset by name (``health``, ``fashion``, …) or a topology TOML file by path.

    ``width`` scales every layer's filters and units (see :func:`scale_widths`): quick builds and tests.
    ``model`` (or ``[model] path`` in the file): a saved Keras model whose layers the file's nodes list in
    ``keras_layers`` (:func:`host.ml.keras_import.imported_raw` derives the normal links from its graph).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise TopologyError(f"no preset {str(name_or_path)!r}; presets: {', '.join(preset_names())} "
                                f"(or give the path of a topology .toml file)")
    if not path.exists():
        raise TopologyError(f"topology file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise TopologyError(f"{path}: not a valid TOML file ({err})") from None
    nodes = raw.get("nodes") if isinstance(raw.get("nodes"), list) else []
    if model is not None or "model" in raw or any(isinstance(n, Mapping) and "keras_layers" in n for n in nodes):
        from host.ml.keras_import import imported_raw  # loads Keras: only for a split user model

        if width != 1.0:
            raise TopologyError(f"{path}: --width scales the layers of presets; a Keras model's layers keep their "
                                f"own widths: drop --width (or save a narrower model)")
        raw = imported_raw(raw, path.parent, model, str(path))
    return parse_topology(raw, source=str(path), partition=partition, width=width)


def parse_topology(raw: Mapping[str, Any], *, source: str = "<dict>",
                   partition: str | None = None, width: float = 1.0) -> Topology:
    """The topology a parsed TOML document describes; :class:`TopologyError` names the first wrong entry.

    Every structural and graph error is found here, before anything trains: wrong types, unknown roles,
    merges or layer types, duplicate or self links, unknown nodes, cycles, a cloud without a path.
    ``width`` != 1 scales filters and units (:func:`scale_widths`; a distillation preset's teacher and
    student widths).
    """
    where = f"{source}"
    _need(raw, Mapping, where, "the document")
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not 0 < width <= 8:
        raise TopologyError(f"{where}: width (--width) {width!r} must be a number in (0, 8] (1 = as written)")
    if "distillation" in raw:
        _need(raw["distillation"], Mapping, where, "[distillation]")
        dist = scale_distillation(raw["distillation"], width, DISTILLATION_DEFAULTS)
        raw = {**raw, "distillation": dist, **distillation_graph(dist, where=where)}
        width = 1.0  # the generated students already have the scaled widths
    for key in ("name", "nodes", "links"):
        if key not in raw:
            raise TopologyError(f"{where}: missing top-level key {key!r}")
    name = _need(raw["name"], str, where, "name")
    partitions = _partitions(raw.get("partitions", {}), where)
    partition = str(partition or raw.get("default_partition", "1"))
    if partition != "1" and partition not in partitions:
        raise TopologyError(f"{where}: no partition {partition!r} (partitions: 1, {', '.join(partitions)})")
    chosen = partitions.get(partition, Partition())
    nodes = _nodes(_need(raw["nodes"], list, where, "nodes"), chosen.layers, where)
    links = _links(_need(raw["links"], list, where, "links"), [n.name for n in nodes], where, chosen.projections)
    if width != 1:
        nodes = [replace(n, layers=tuple(scale_widths(n.layers, width))) for n in nodes]
        links = [replace(l, projection=tuple(scale_widths(l.projection, width))) for l in links]
    order, reliability = _reliability(raw.get("reliability", {}), [n.name for n in nodes if n.failable], where)
    topo = Topology(name=name, description=str(raw.get("description", "")),
                    dataset=dict(_need(raw.get("dataset", {}), Mapping, where, "[dataset]")),
                    nodes=nodes, links=links, failure_order=order, reliability=reliability,
                    training=dict(_need(raw.get("training", {}), Mapping, where, "[training]")),
                    partitions=partitions, partition=partition, source=source,
                    distillation=dict(raw.get("distillation", {})))
    _check_graph(topo, where)
    return topo


def _need(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    """``value`` if it is a ``kind``, else a TopologyError naming the entry (TOML gives each its own type)."""
    names = {str: "a string", list: "a list", Mapping: "a table", bool: "true or false", int: "an integer",
             float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        want = "a number" if float in kinds else " or ".join(names.get(k, k.__name__) for k in kinds)
        raise TopologyError(f"{where}: {what} must be {want}, not {value!r}")
    return value


def _layers(layers: Any, where: str, what: str) -> list[dict]:
    for i, spec in enumerate(_need(layers, list, where, what)):
        _need(spec, Mapping, where, f"{what}[{i}]")
        kind = spec.get("type")
        if kind not in LAYER_TYPES:
            raise TopologyError(f"{where}: {what}[{i}] has type {kind!r}; layer types are {', '.join(LAYER_TYPES)}")
        if "repeat" in spec and (_need(spec["repeat"], int, where, f"{what}[{i}].repeat") < 1):
            raise TopologyError(f"{where}: {what}[{i}].repeat must be at least 1")
        if kind == "lstm" and (_need(spec.get("units"), int, where, f"{what}[{i}].units") < 1 or
                               not isinstance(spec.get("return_sequences", False), bool)):
            raise TopologyError(f"{where}: {what}[{i}] (lstm) needs units >= 1 and return_sequences true or false")
        if kind == "keras" and not (isinstance(spec.get("model"), str) and isinstance(spec.get("layers"), list)):
            raise TopologyError(f"{where}: {what}[{i}]: type 'keras' is written by keras_layers = [...] (with "
                                f"--model or [model] path), not by hand")
    return _expand(layers)


def _partitions(raw: Any, where: str) -> dict[str, Partition]:
    """``[partitions.K]``: node name = layers, and the reserved table ``projections`` ("src->dst" = layers)."""
    out = {}
    for key, overrides in _need(raw, Mapping, where, "[partitions]").items():
        _need(overrides, Mapping, where, f"partitions.{key}")
        layers = {str(node): _need(spec, list, where, f"partitions.{key}.{node}")
                  for node, spec in overrides.items() if node != PROJECTIONS}
        projections = {str(link): _need(spec, list, where, f'partitions.{key}.{PROJECTIONS}."{link}"')
                       for link, spec in _need(overrides.get(PROJECTIONS, {}), Mapping, where,
                                               f"[partitions.{key}.{PROJECTIONS}]").items()}
        out[str(key)] = Partition(layers=layers, projections=projections)
    return out


def _nodes(raw_nodes: list, overrides: Mapping[str, list], where: str) -> list[Node]:
    nodes = []
    for i, rn in enumerate(raw_nodes):
        _need(rn, Mapping, where, f"nodes[{i}]")
        nname = _need(rn.get("name"), str, where, f"nodes[{i}].name")
        role = rn.get("role")
        if role not in ROLES:
            raise TopologyError(f"{where}: node {nname!r} has role {role!r}; roles are {ROLES}")
        layers = _layers(overrides.get(nname, rn.get("layers", [])), where, f"node {nname!r} layers")
        feats = rn.get("features")
        if feats is not None:
            for f in _need(feats, list, where, f"node {nname!r} features"):
                _need(f, str, where, f"node {nname!r} features entry")
        merge = rn.get("merge", "concat")
        if merge not in MERGES:
            raise TopologyError(f"{where}: node {nname!r} has merge {merge!r}; merges are {MERGES}")
        failable = _need(rn.get("failable", role in ("edge", "fog")), bool, where, f"node {nname!r} failable")
        nodes.append(Node(name=nname, role=role, failable=failable, layers=tuple(layers),
                          features=tuple(feats) if feats else None, merge=merge))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise TopologyError(f"{where}: duplicate node names in {names}")
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise TopologyError(f"{where}: the partition overrides layers of unknown node(s) {unknown}")
    if sum(n.role == "cloud" for n in nodes) != 1:
        raise TopologyError(f"{where}: exactly one node must have role 'cloud'")
    if not any(n.role == "sensor" for n in nodes):
        raise TopologyError(f"{where}: at least one node must have role 'sensor'")
    return nodes


def _links(raw_links: list, names: list[str], where: str,
           projections: Mapping[str, list] | None = None) -> list[Link]:
    """The links; ``projections`` (a partition's, by link name) replace the links' own projections."""
    projections = projections or {}
    known = {f"{rl.get('from')}->{rl.get('to')}" for rl in raw_links if isinstance(rl, Mapping)}
    unknown = sorted(set(projections) - known)
    if unknown:
        raise TopologyError(f"{where}: the partition overrides the projection of unknown link(s) {unknown}; "
                            f"links are {sorted(known)} (write them \"src->dst\")")
    links: list[Link] = []
    for i, rl in enumerate(raw_links):
        _need(rl, Mapping, where, f"links[{i}]")
        src, dst = rl.get("from"), rl.get("to")
        for end in (src, dst):
            if end not in names:
                raise TopologyError(f"{where}: link {src}->{dst} names unknown node {end!r}")
        if src == dst:
            raise TopologyError(f"{where}: link {src}->{dst} connects a node to itself")
        twin = next((j for j, l in enumerate(links) if (l.src, l.dst) == (src, dst)), None)
        if twin is not None:
            raise TopologyError(f"{where}: duplicate link {src}->{dst} (links[{twin}] and links[{i}]); "
                                "a node sends one tensor to each receiver: remove one of them")
        part = rl.get("part")
        if part is not None and _need(part, int, where, f"link {src}->{dst} part") < 0:
            raise TopologyError(f"{where}: link {src}->{dst} has part {part}; parts count from 0")
        links.append(Link(src=src, dst=dst, skip=_need(rl.get("skip", False), bool, where, f"link {src}->{dst} skip"),
                          projection=tuple(_layers(projections.get(f"{src}->{dst}", rl.get("projection", [])), where,
                                                   f"link {src}->{dst} projection")),
                          part=part, **_budget(rl, f"{where}: link {src}->{dst}")))
    return links


def _budget(raw: Mapping[str, Any], where: str) -> dict[str, int | None]:
    """A link's ``bits`` / ``max_bytes`` (host/ml/link_codes.py), a TopologyError naming the link if bad."""
    try:
        return link_budget(raw)
    except ValueError as err:
        raise TopologyError(f"{where}: {err}") from None


def _reliability(raw: Any, failable: list[str], where: str) -> tuple[list[str], dict[str, dict[str, float]]]:
    rel_raw = _need(raw, Mapping, where, "[reliability]")
    order = list(_need(rel_raw.get("order", failable), list, where, "reliability.order"))
    if sorted(map(str, order)) != sorted(failable) or len(set(order)) != len(order):
        raise TopologyError(f"{where}: reliability.order {order} must list exactly the failable nodes {failable}")
    reliability: dict[str, dict[str, float]] = {}
    for setting, values in rel_raw.items():
        if setting == "order":
            continue
        _need(values, list, where, f"reliability {setting!r}")
        if len(values) != len(order):
            raise TopologyError(f"{where}: reliability {setting!r} has {len(values)} values for {len(order)} nodes")
        for v in values:
            if not 0.0 <= _need(v, (int, float), where, f"reliability {setting!r} value") <= 1.0:
                raise TopologyError(f"{where}: reliability {setting!r} value {v} is not a probability")
        reliability[setting] = dict(zip(order, map(float, values)))
    if not reliability:
        reliability = {"No failure": {n: 1.0 for n in order}}
    return order, reliability


def _expand(layers: Iterable[dict]) -> list[dict]:
    """Unroll ``repeat = k`` so every layer appears once (its position then names it)."""
    out = []
    for spec in layers:
        spec = dict(spec)
        k = int(spec.pop("repeat", 1))
        out.extend(dict(spec) for _ in range(k))
    return out


def _check_graph(topo: Topology, where: str) -> None:
    for n in topo.nodes:
        if n.role == "sensor":
            if topo.incoming(n.name):
                raise TopologyError(f"{where}: sensor node {n.name!r} cannot have incoming links")
        elif not topo.incoming(n.name, skips=False):
            raise TopologyError(f"{where}: node {n.name!r} has no normal (non-skip) incoming link")
    for n in topo.nodes:
        parts = [l.part for l in topo.incoming(n.name, skips=False)]
        if any(l.part is not None for l in topo.skip_links if l.dst == n.name):
            raise TopologyError(f"{where}: a skip link into {n.name!r} has a `part`; only the normal links into "
                                f"an averaging node carry one (skips are added after the average)")
        if n.merge == "average":
            if any(p is None for p in parts):
                raise TopologyError(f"{where}: node {n.name!r} averages its inputs: every normal incoming link "
                                    f"needs a `part`")
            if sorted(set(parts)) != list(range(max(parts) + 1)):
                raise TopologyError(f"{where}: node {n.name!r}: the parts {sorted(set(parts))} of its links "
                                    f"must be 0..M-1, each with at least one link")
        elif any(p is not None for p in parts):
            raise TopologyError(f"{where}: links into {n.name!r} have a `part`, but the node does not average "
                                f"(merge = \"average\")")
    if topo.outgoing(topo.cloud.name):
        raise TopologyError(f"{where}: the cloud node cannot have outgoing links")
    # Acyclic, and every node reaches the cloud through normal links.
    order = topological_order(topo)
    if len(order) != len(topo.nodes):
        raise TopologyError(f"{where}: the links form a cycle")
    none_failed = tuple(1 for _ in topo.failure_order)
    if not topo.has_path(none_failed, skips=False):
        raise TopologyError(f"{where}: no path of normal links from a sensor to the cloud")


def topological_order(topo: Topology) -> list[str]:
    """Node names so that every link goes forward (the order the model is built in)."""
    indeg = {n.name: len(topo.incoming(n.name)) for n in topo.nodes}
    ready = [n.name for n in topo.nodes if indeg[n.name] == 0]
    order = []
    while ready:
        cur = ready.pop(0)
        order.append(cur)
        for l in topo.outgoing(cur):
            indeg[l.dst] -= 1
            if indeg[l.dst] == 0:
                ready.append(l.dst)
    return order


# -------------------------------------------------------------------- distillation presets
#: Defaults of a ``[distillation]`` section (see :func:`distillation_graph`).
DISTILLATION_DEFAULTS: dict[str, Any] = {
    "students": 4, "parts": 2, "partitioner": "eigen", "filters": 128, "student_width": 16,
    "student_layout": [[1, 1], [2, 2], [2, 1], [4, 2], [4, 1]],
}


def distillation_graph(spec: Mapping[str, Any], *, where: str = "<dict>",
                       part_sizes: list[int] | None = None) -> dict[str, Any]:
    """Nodes and links of a distillation preset (NoNN, and its successor with averaging redundancy).

    ``students`` sensor nodes ``student0..`` each read the whole input and run a plain CNN (3x3 conv +
    BN + ReLU per ``student_layout`` entry ``[channel multiplier of student_width, stride]``, then a 1x1
    "bridge" conv to its part's filter count + BN + ReLU, global average pooling); student i sends its
    vector to the ``aggregator`` (the cloud) as a replica of part ``i mod parts``. The aggregator averages
    the replicas of each part that arrived, concatenates the parts and classifies with one dense layer.
    Part sizes: ``part_sizes`` (known after partitioning the teacher's filters), else ``filters / parts``
    (the balanced eigenvector partition's sizes).
    """
    d = {**DISTILLATION_DEFAULTS, **dict(spec)}
    for key in ("students", "parts", "filters", "student_width"):
        _need(d[key], int, where, f"distillation.{key}")
    for i, entry in enumerate(_need(d["student_layout"], list, where, "distillation.student_layout")):
        if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(v, int) for v in entry):
            raise TopologyError(f"{where}: distillation.student_layout[{i}] must be [channel multiplier, stride]")
    s, m, f = int(d["students"]), int(d["parts"]), int(d["filters"])
    if m < 1 or s < m or s % m:
        raise TopologyError(f"{where}: distillation with {s} students and {m} parts: parts must divide students")
    if part_sizes is None:
        if f % m:
            raise TopologyError(f"{where}: {f} filters do not split into {m} equal parts")
        part_sizes = [f // m] * m
    if len(part_sizes) != m:
        raise TopologyError(f"{where}: {len(part_sizes)} part sizes for {m} parts")
    width = int(d["student_width"])
    nodes = []
    for i in range(s):
        layers = [{"type": "conv2d", "filters": int(mult) * width, "kernel": 3, "strides": int(stride), "bn": True,
                   "activation": "relu"} for mult, stride in d["student_layout"]]
        layers += [{"type": "conv2d", "filters": int(part_sizes[i % m]), "kernel": 1, "bn": True,
                    "activation": "relu"}, {"type": "gap"}]
        nodes.append({"name": f"student{i}", "role": "sensor", "failable": True, "layers": layers})
    nodes.append({"name": "aggregator", "role": "cloud", "failable": False, "merge": "average",
                  "layers": [{"type": "dense", "units": "classes", "activation": "softmax"}]})
    links = [{"from": f"student{i}", "to": "aggregator", "part": i % m} for i in range(s)]
    return {"nodes": nodes, "links": links}
