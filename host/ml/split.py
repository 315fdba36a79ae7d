"""Split a trained network into one sub-model per physical node, and run the split network.

A node's sub-model takes its incoming links as inputs and produces its outgoing link tensors as outputs
(skip projections are computed on the sending node, as in the spec). The aggregation of incoming links
is part of the receiving node, with the failure semantics made explicit (see :class:`InputSpec`):

- a *plain* input is fed by one link; when the link is missing the input is the real value 0 (in int8 its
  zero point), so a sum or a concatenation inside the node sees exactly what training saw;
- an *average* input (distilled students) is fed by the replicas of one part: the mean of those that
  arrived (in int8, all replicas share one scale, so the mean of the codes with round-half-away-from-zero,
  :func:`average_replicas`, the rule the boards' runtime implements), the real value 0 when none did;
- a *mux* input (ResiliNet) is fed by the link from below when it arrived, else by a skip link. Both links
  share one int8 scale, so on the board the mux is a pointer choice and needs no arithmetic. A mux node with
  several skips (e.g. two sensors into the fog in ``har``) gets one mux input per skip: input 0 chooses
  between the link from below and skip 0, input i > 0 is 0 while the link from below is present and skip i
  otherwise; the node adds its inputs, which gives the paper's rule (below, else the sum of the skips).
- a mux node with several normal links (the camera preset's f2) has one plain input per normal link (joined
  by the node's ``merge``) and one *standby* input per skip: 0 while any normal link arrived, else the skip.
  The node adds the skips to the merged normal part: "the normal links if any came, else the sum of the
  skips", with no shared scale needed (the int8 ADD rescales).

:func:`run_split` executes the split network with these semantics for any per-node runner (float Keras
sub-models, or the int8 reference interpreter), so the host reference and the boards follow one rule.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from host.ml.topology import Topology, topological_order

if TYPE_CHECKING:  # host.ml.schemes imports keras: the harness, which only runs plans, must not pay for it
    from host.ml.schemes import Scheme


def tensor_name(link_or_node: str) -> str:
    """A link name as a tensor name (``edge->fog`` -> ``edge_to_fog``)."""
    return link_or_node.replace("->", "_to_")


@dataclass
class InputSpec:
    name: str
    #: the link from below (plain inputs: the only link); None for mux inputs i > 0
    primary: str | None
    #: the skip link used when ``primary`` did not arrive (mux inputs only)
    fallback: str | None = None
    shape: tuple[int, ...] = ()
    #: average inputs only: the links that each carry a replica of this input (a part)
    replicas: list[str] = field(default_factory=list)

    @property
    def is_mux(self) -> bool:
        return self.fallback is not None

    @property
    def links(self) -> list[str]:
        return [l for l in (self.primary, self.fallback) if l] + list(self.replicas)


@dataclass
class OutputSpec:
    name: str
    #: outgoing links that carry this tensor (empty for the cloud's result)
    links: list[str]
    shape: tuple[int, ...] = ()
    result: bool = False


@dataclass
class NodePlan:
    node: str
    role: str
    failable: bool
    aggregation: str               # "source" | "single" | "concat" | "sum" | "mux" | "average"
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    #: sensor nodes: indices of the dataset features this node reads (None = all)
    features: list[int] | None = None
    #: fixed hyperconnection weight per incoming link, multiplied in before aggregation
    link_weights: dict[str, float] = field(default_factory=dict)
    #: how the normal links are joined before the skips are added: "concat" | "sum" | "average"
    merge: str = "concat"
    #: the normal (non-skip) links into the node (from the topology; empty in a plan read from a manifest)
    normal_links: list[str] = field(default_factory=list)

    @property
    def guards(self) -> list[str]:
        """The normal links into a mux node: while any of them arrived its standby skips are 0. (Read from
        the inputs, so that a plan rebuilt from a manifest has them: in a mux node every input with a
        ``primary`` or replicas is fed by normal links.)"""
        return [l for s in self.inputs if s.primary or s.replicas for l in ([s.primary] if s.primary else s.replicas)]

    def output_for_link(self, link: str) -> OutputSpec:
        return next(o for o in self.outputs if link in o.links)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PartitionError(ValueError):
    """A network that cannot be split onto boards as asked (the message says what and what to do)."""


def plan_partition(topo: Topology, scheme: Scheme | str, *, feature_groups: Mapping[str, list[int]] | None = None,
                   link_weights: Mapping[str, float] | None = None) -> dict[str, NodePlan]:
    """Inputs and outputs of every node's sub-model (shapes are filled in by :func:`node_models`)."""
    from host.ml.schemes import get_scheme, scheme_topology

    sch = get_scheme(scheme) if isinstance(scheme, str) else scheme
    used = scheme_topology(topo, sch)
    weights = dict(link_weights or {})
    plans: dict[str, NodePlan] = {}
    for name in topological_order(used):
        node = used.node(name)
        normal = used.incoming(name, skips=False)
        skips = [l for l in used.incoming(name) if l.skip]
        feats = None
        if node.role == "sensor":
            aggregation = "source"
            inputs = [InputSpec(f"{name}_features", None)]
            if node.features:
                if not feature_groups:
                    raise PartitionError(f"sensor {name!r} reads feature groups {node.features} but the dataset "
                                         f"has none")
                feats = [i for g in node.features for i in feature_groups[g]]
        else:
            aggregation, inputs = _aggregation(name, node.merge, normal, skips, sch.aggregation, weights)
        outputs: list[OutputSpec] = []
        plain = [l.name for l in used.outgoing(name) if not (l.projection or l.bottleneck)]
        if node.role == "cloud":
            outputs.append(OutputSpec("probs", [], result=True))
        elif plain:
            outputs.append(OutputSpec(f"{name}_out", plain))
        for l in used.outgoing(name):
            if l.projection or l.bottleneck:  # a tensor of its own (a bottleneck's is narrowed for it alone)
                outputs.append(OutputSpec(tensor_name(l.name), [l.name]))
        if not node.layers and (node.role != "sensor" or not any(l.projection for l in used.outgoing(name))):
            raise PartitionError(f"node {name!r} computes nothing under {sch.title} (no layers, no skip "
                                 f"projection): a board would only forward its input. Give it a layer in the "
                                 f"topology, or merge it into the node it feeds")
        plans[name] = NodePlan(name, node.role, node.failable, aggregation, inputs, outputs, feats,
                               {l.name: float(weights.get(l.name, 1.0)) for l in normal + skips},
                               merge=node.merge if len(normal) > 1 or node.merge == "average" else "concat",
                               normal_links=[l.name for l in normal])
    return plans


def _aggregation(name: str, merge: str, normal: list, skips: list, scheme_aggregation: str,
                 weights: Mapping[str, float]) -> tuple[str, list[InputSpec]]:
    """A receiving node's aggregation name and model inputs (see the module docstring)."""
    if merge == "average":
        parts = sorted({l.part for l in normal})
        inputs = [InputSpec(f"part{j}", None, replicas=[l.name for l in normal if l.part == j]) for j in parts]
        ws = {weights.get(l.name, 1.0) for l in normal}
        if ws != {1.0}:
            raise PartitionError(f"node {name!r} averages its inputs; hyperconnection weights {sorted(ws)} "
                                 f"are not supported there")
    else:
        inputs = [InputSpec(tensor_name(l.name), l.name) for l in normal]
    if not skips:
        return ("average" if merge == "average" else "single" if len(normal) == 1 else merge), inputs
    if scheme_aggregation == "sum":
        return "sum", inputs + [InputSpec(tensor_name(l.name), l.name) for l in skips]
    if len(inputs) > 1 or merge == "average":  # standby skips guarded by every normal link
        return "mux", inputs + [InputSpec(f"{tensor_name(s.name)}_when_{name}_inputs_lost", None, s.name)
                                for s in skips]
    below = normal[0].name
    inputs = [InputSpec(f"{tensor_name(below)}_or_{tensor_name(skips[0].name)}", below, skips[0].name)]
    inputs += [InputSpec(f"{tensor_name(s.name)}_when_{name}_input_lost", None, s.name) for s in skips[1:]]
    ws = {weights.get(l, 1.0) for l in [below] + [s.name for s in skips]}
    if len(ws) > 1:
        raise PartitionError(f"node {name!r}: the links into a mux have different hyperconnection weights "
                             f"{sorted(ws)}; a mux on the boards is a pointer choice, so deploy weight "
                             f"scheme 1 (or a sum scheme) for ResiliNet")
    return "mux", inputs


def link_weights_of(model, topo: Topology, scheme: Scheme | str) -> dict[str, float]:
    """The hyperconnection weights baked into a trained model's aggregation layers."""
    from host.ml.schemes import get_scheme, scheme_topology

    sch = get_scheme(scheme) if isinstance(scheme, str) else scheme
    used = scheme_topology(topo, sch)
    weights: dict[str, float] = {}
    for n in used.nodes:
        links = used.incoming(n.name, skips=False) + [l for l in used.incoming(n.name) if l.skip]
        if not links:
            continue
        layer = model.get_layer(f"{n.name}_aggregate")
        weights.update({l.name: w for l, w in zip(links, layer.link_weights)})
    return weights


# ------------------------------------------------------------------------------ sub-models
def node_models(full_model, topo: Topology, scheme: Scheme | str, plans: dict[str, NodePlan], *,
                input_shape: tuple[int, ...], num_classes: int, batch_size: int | None = None,
                fused_lstm: bool = False) -> dict[str, Any]:
    """One float Keras model per node, with the trained weights copied from the whole network by name.

    Also fills in the shapes of every plan's inputs and outputs. ``batch_size=1`` gives the fixed-batch
    models the int8 converter needs; with ``fused_lstm`` a node that has an ``lstm`` layer is built with
    tf_keras (Keras 2), whose LSTM TensorFlow's converter fuses into one UNIDIRECTIONAL_SEQUENCE_LSTM
    (Keras 3's LSTM becomes a WHILE loop, which codegen does not run). Same layers, names and weights.
    """
    from host.ml.link_codes import linear_map, narrow_name, widen_name
    from host.ml.schemes import apply_layer, get_scheme, scheme_topology

    sch = get_scheme(scheme) if isinstance(scheme, str) else scheme
    used = scheme_topology(topo, sch)
    shapes: dict[str, tuple[int, ...]] = {}
    models: dict[str, Any] = {}
    for name in topological_order(used):
        plan, node = plans[name], used.node(name)
        keras = _keras_for(used, name, fused_lstm)
        L = keras.layers  # noqa: N806
        ins = []
        for spec in plan.inputs:
            if node.role == "sensor":
                spec.shape = tuple(input_shape[:-1]) + (len(plan.features),) if plan.features else tuple(input_shape)
            else:
                spec.shape = shapes[spec.links[0]]
            ins.append(keras.Input(shape=spec.shape, batch_size=batch_size, name=spec.name))

        def weighted(t, link, k):
            w = plan.link_weights.get(link, 1.0)
            return t if w == 1.0 else L.Rescaling(w, name=f"{name}_weight_{k}")(t)

        if plan.aggregation == "source":
            h = ins[0]
        elif plan.inputs[0].is_mux:  # pointer mux: every link into it has the same weight (plan_partition)
            h = ins[0] if len(ins) == 1 else L.Add(name=f"{name}_mux_sum")(ins)
            h = weighted(h, plan.inputs[0].primary, 0)
        else:
            h = _joined(name, plan, ins, {l.name for l in used.incoming(name, skips=False)}, weighted, L)
        if any(l.bottleneck for l in used.incoming(name)):  # the widening of a bottleneck link (its one input)
            units = int(full_model.get_layer(widen_name(name)).get_weights()[0].shape[-1])
            h = linear_map(keras, units, len(h.shape), widen_name(name))(h)
        for i, spec in enumerate(node.layers):
            h = apply_layer(spec, h, f"{name}_{i}", num_classes, 0, keras)
        outs = {}
        for o in plan.outputs:
            if o.result or o.name == f"{name}_out":
                outs[o.name] = h if node.layers else L.Identity(name=f"{name}_identity")(h)
            else:
                link = used.link(o.links[0])
                p = h
                for i, spec in enumerate(link.projection):
                    p = apply_layer(spec, p, f"{link.src}_to_{link.dst}_{i}", num_classes, 0, keras)
                if link.bottleneck:
                    p = linear_map(keras, link.bottleneck, len(p.shape), narrow_name(link.src, link.dst))(p)
                outs[o.name] = p
        if keras.__name__ == "tf_keras":  # its converter names signature outputs by layer, not by dict key
            outs = {k: L.Identity(name=k)(v) for k, v in outs.items()}
        model = keras.Model(ins, outs, name=f"node_{name}")
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(full_model.get_layer(layer.name).get_weights())
        for o in plan.outputs:
            o.shape = tuple(int(d) for d in outs[o.name].shape[1:])
            for link in o.links:
                shapes[link] = o.shape
        models[name] = model
    return models


def _joined(name: str, plan: NodePlan, ins: list, normal_links: set[str], weighted: Callable, L: Any):  # noqa: N803
    """The node's aggregation in its model: the normal inputs joined by the merge, plus the skip inputs
    (a skip is a plain input under a sum scheme, a standby one -- 0 while a normal link came -- under mux)."""
    normal = [(k, t, s) for k, (t, s) in enumerate(zip(ins, plan.inputs)) if set(s.links) <= normal_links]
    skips = [weighted(t, s.links[0], k) for k, (t, s) in enumerate(zip(ins, plan.inputs))
             if not set(s.links) <= normal_links]
    if plan.merge == "average":  # the runtime averaged each part's replicas; the model joins parts
        parts = [t for _, t, _ in normal]
        h = parts[0] if len(parts) == 1 else L.Concatenate(name=f"{name}_parts")(parts)
    else:
        normal_t = [weighted(t, s.primary, k) for k, t, s in normal]
        if len(normal_t) == 1:
            h = normal_t[0]
        elif plan.merge == "concat":
            h = L.Concatenate(name=f"{name}_concat")(normal_t)
        else:  # sum: one ADD over the normal links and the skips alike
            return L.Add(name=f"{name}_sum")(normal_t + skips)
    return L.Add(name=f"{name}_sum")([h] + skips) if skips else h


def _keras_for(topo: Topology, node: str, fused_lstm: bool) -> Any:
    """The Keras that builds ``node``'s sub-model: tf_keras when asked for a fused LSTM and the node (or a skip
    projection it computes) has an ``lstm`` layer, else Keras 3."""
    specs = list(topo.node(node).layers) + [s for l in topo.outgoing(node) for s in l.projection]
    if fused_lstm and any(s["type"] == "lstm" for s in specs):
        import tf_keras
        return tf_keras
    import keras
    return keras


# ------------------------------------------------------------------------------ execution
Runner = Callable[[str, list[np.ndarray]], dict[str, np.ndarray]]


@dataclass
class SplitRun:
    """What happened in one execution of the split network for a batch of samples."""

    #: node -> True when it produced outputs
    produced: dict[str, bool]
    #: node -> the input arrays it was given (as fed, zero fill and mux choice applied)
    inputs: dict[str, list[np.ndarray]]
    #: node -> output name -> array
    outputs: dict[str, dict[str, np.ndarray]]
    #: link -> whether its tensor arrived
    delivered: dict[str, bool]
    #: node -> "primary" | "fallback" for mux nodes
    mux_choice: dict[str, str]

    @property
    def result(self) -> np.ndarray | None:
        for outs in self.outputs.values():
            if "probs" in outs:
                return outs["probs"]
        return None


def run_split(plans: dict[str, NodePlan], runner: Runner, sensor_inputs: Mapping[str, np.ndarray],
              alive: Mapping[str, bool], *, zero: Callable[[str, InputSpec], np.ndarray],
              cut_links: set[str] | frozenset[str] = frozenset()) -> SplitRun:
    """Run every node in order with the failure semantics of the boards.

    ``alive[node]`` False: the node is failed (gets nothing, sends nothing). ``cut_links``: links whose
    tensors are lost. ``zero(node, spec)`` gives the "real value 0" for an input (0.0, or the zero point).
    A node that gets no usable input produces no output.
    """
    produced: dict[str, bool] = {}
    inputs: dict[str, list[np.ndarray]] = {}
    outputs: dict[str, dict[str, np.ndarray]] = {}
    delivered: dict[str, bool] = {}
    mux_choice: dict[str, str] = {}
    tensors: dict[str, np.ndarray] = {}   # link -> tensor that arrived
    for name, plan in plans.items():
        if not alive.get(name, True):
            produced[name] = False
            _mark(plan, delivered, False)
            continue
        if plan.aggregation == "source":
            feed = [sensor_inputs[name]]
        else:
            arrived = {l for spec in plan.inputs for l in spec.links if l in tensors}
            if not arrived:
                produced[name] = False
                _mark(plan, delivered, False)
                continue
            use_primary = any(l in tensors for l in plan.guards)
            if plan.aggregation == "mux":
                mux_choice[name] = "primary" if use_primary else "fallback"
            feed = [_feed(spec, tensors, use_primary) for spec in plan.inputs]
            feed = [zero(name, spec) if f is None else f for f, spec in zip(feed, plan.inputs)]
        out = runner(name, feed)
        produced[name] = True
        inputs[name] = feed
        outputs[name] = out
        for o in plan.outputs:
            for link in o.links:
                ok = link not in cut_links
                delivered[link] = ok
                if ok:
                    tensors[link] = out[o.name]
    return SplitRun(produced, inputs, outputs, delivered, mux_choice)


def _feed(spec: InputSpec, tensors: Mapping[str, np.ndarray], normal_came: bool) -> np.ndarray | None:
    """What one input gets, as on the boards (None: nothing, the real value 0). ``normal_came``: a normal link
    into the node arrived (a mux then uses it; a standby skip is 0)."""
    if spec.replicas:
        got = [tensors[l] for l in spec.replicas if l in tensors]
        return average_replicas(got) if got else None
    if spec.fallback is None:
        return tensors.get(str(spec.primary))
    if normal_came:
        return tensors.get(spec.primary) if spec.primary else None
    return tensors.get(spec.fallback)


def average_replicas(arrays: list[np.ndarray]) -> np.ndarray:
    """The mean of the replicas of one part that arrived (all the same shape).

    Float: the mean. int8 (all replicas share one scale and zero point, so the mean of the codes is the code
    of the mean): the integer sum divided by the count, rounded half away from zero -- exactly what
    ``node_runtime.c`` computes on the boards.
    """
    if len(arrays) == 1:
        return arrays[0]
    if arrays[0].dtype == np.int8:
        total = np.sum([a.astype(np.int32) for a in arrays], axis=0)
        k = len(arrays)
        return (np.sign(total) * ((np.abs(total) + k // 2) // k)).astype(np.int8)
    return np.mean(np.stack(arrays), axis=0).astype(arrays[0].dtype)


def _mark(plan: NodePlan, delivered: dict[str, bool], value: bool) -> None:
    for o in plan.outputs:
        for link in o.links:
            delivered[link] = value


def sources_once(runner: Runner, plans: Mapping[str, NodePlan]) -> Runner:
    """``runner`` that computes each sensor node once: its feed is the same in every failure configuration
    (a failed sensor is not run at all), so only the nodes downstream differ between configurations."""
    memo: dict[str, dict[str, np.ndarray]] = {}

    def run(node: str, feed: list[np.ndarray]) -> dict[str, np.ndarray]:
        if plans[node].aggregation != "source":
            return runner(node, feed)
        if node not in memo:
            memo[node] = runner(node, feed)
        return memo[node]
    return run


def keras_runner(models: Mapping[str, Any]) -> Runner:
    """Run float Keras sub-models (any batch size)."""
    def run(node: str, feed: list[np.ndarray]) -> dict[str, np.ndarray]:
        out = models[node](list(feed), training=False)
        return {k: np.asarray(v) for k, v in out.items()}
    return run


def sensor_features(plans: Mapping[str, NodePlan], x: np.ndarray) -> dict[str, np.ndarray]:
    """What each sensor node reads from the dataset's samples."""
    return {n: (x[..., p.features] if p.features else x) for n, p in plans.items() if p.aggregation == "source"}
