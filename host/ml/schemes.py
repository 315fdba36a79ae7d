"""Keras functional models of a split network, one builder for every scheme.

The whole distributed network is one Keras graph: every layer's name starts with the physical node it
runs on (``edge_3_dw``), every link is an :class:`~host.ml.layers.Aggregate` input at its receiver, and the
failure configuration under test is an explicit model input ``alive`` (one column per failable node, in
the topology's failure order). That keeps the topology visible in one place and lets the per-node split
(codegen) rebuild each node's sub-graph by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers as L

from host.ml.keras_import import apply_imported
from host.ml.link_codes import LinkCode, linear_map, narrow_name, range_groups, resolve_bits, widen_name
from host.ml.link_codes import layer_name as code_layer_name
from host.ml.layers import Aggregate, AliveColumn, AlwaysPresent, Failout, NodeGate, SelectFeatures
from host.ml.topology import LAYER_TYPES, Link, Topology, TopologyError, topological_order


@dataclass(frozen=True)
class Scheme:
    """How a scheme uses the topology: skip links on or off, aggregation, failout in training."""

    name: str
    title: str
    skips: bool
    aggregation: str  # "sum" | "mux" | "none"
    failout: bool


SCHEMES: dict[str, Scheme] = {
    "vanilla": Scheme("vanilla", "Vanilla", skips=False, aggregation="none", failout=False),
    "dfg": Scheme("dfg", "deepFogGuard", skips=True, aggregation="sum", failout=False),
    "resilinet": Scheme("resilinet", "ResiliNet", skips=True, aggregation="mux", failout=True),
    "resilinet_plus": Scheme("resilinet_plus", "ResiliNet+", skips=True, aggregation="sum", failout=True),
}


#: Distillation presets (``[distillation]`` in the topology: NoNN and its successor): students trained by
#: knowledge distillation (host.ml.nonn), no skip links, the aggregator averages the parts that arrived.
#: Not one of SCHEMES: it applies to distillation presets only, and they to it only.
DISTILL = Scheme("distill", "Distilled students", skips=False, aggregation="none", failout=False)


def get_scheme(name: str) -> Scheme:
    key = name.lower().replace("+", "_plus").replace("-", "_")
    aliases = {"deepfogguard": "dfg", "resilinetplus": "resilinet_plus"}
    key = aliases.get(key, key)
    if key == DISTILL.name:
        return DISTILL
    if key not in SCHEMES:
        raise ValueError(f"unknown scheme {name!r}; schemes: {', '.join(SCHEMES)}")
    return SCHEMES[key]


def scheme_topology(topo: Topology, scheme: Scheme) -> Topology:
    """The links the scheme actually uses (vanilla drops every skip hyperconnection)."""
    return topo if scheme.skips else topo.with_skips([])


# ----------------------------------------------------------------------------- layers
def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (list, tuple)) else (int(v), int(v))


def _act(name: str | None, prefix: str, L: Any = L):
    if name in (None, "linear"):
        return None
    if name == "relu6":
        return L.ReLU(max_value=6.0, name=f"{prefix}_relu6")
    return L.Activation(name, name=f"{prefix}_{name}")


def apply_layer(spec: dict, x, prefix: str, num_classes: int, seed: int, api: Any = keras):
    """Apply one layer spec of a topology file to ``x``; names start with ``prefix`` (node_index).

    ``api``: the Keras that builds the layers -- Keras 3, or tf_keras (Keras 2) for the model TensorFlow's
    converter turns into a node's int8 model (:func:`host.ml.split.node_models`): the same layers, names and
    weight order in both.
    """
    t = spec["type"]
    if t == "keras":  # a node body imported from the user's own model: its layers, cloned, its weights
        return apply_imported(spec, x, prefix)
    L = api.layers  # noqa: N806 -- the same name as the module-level Keras 3 layers it stands for
    init = api.initializers.GlorotUniform(seed=seed)
    if t == "dense":
        units = num_classes if spec["units"] == "classes" else int(spec["units"])
        act = spec.get("activation", "relu")
        if act == "softmax":
            x = L.Dense(units, use_bias=spec.get("use_bias", True), kernel_initializer=init, name=f"{prefix}_dense")(x)
            return L.Softmax(name=f"{prefix}_softmax")(x)
        x = L.Dense(units, use_bias=spec.get("use_bias", True), kernel_initializer=init, name=f"{prefix}_dense")(x)
        a = _act(act, prefix, L)
        return a(x) if a else x
    if t == "conv2d":
        bn = spec.get("bn", False)
        x = L.Conv2D(int(spec["filters"]), _pair(spec.get("kernel", 3)), strides=_pair(spec.get("strides", 1)),
                     padding=spec.get("padding", "same"), use_bias=spec.get("use_bias", not bn),
                     kernel_initializer=init, name=f"{prefix}_conv")(x)
        if bn:
            x = L.BatchNormalization(name=f"{prefix}_bn")(x)
        a = _act(spec.get("activation", "relu"), prefix, L)
        return a(x) if a else x
    if t == "dwsep":
        # MobileNet depthwise-separable block: dw 3x3 + BN + ReLU6, pw 1x1 + BN + ReLU6.
        strides = _pair(spec.get("strides", 1))
        padding = "same"
        if spec.get("pad_valid") and strides != (1, 1):
            x = L.ZeroPadding2D(((0, 1), (0, 1)), name=f"{prefix}_pad")(x)
            padding = "valid"
        x = L.DepthwiseConv2D(_pair(spec.get("kernel", 3)), strides=strides, padding=padding, use_bias=False,
                              depthwise_initializer=init, name=f"{prefix}_dw")(x)
        x = L.BatchNormalization(name=f"{prefix}_dw_bn")(x)
        x = L.ReLU(max_value=6.0, name=f"{prefix}_dw_relu6")(x)
        x = L.Conv2D(int(spec["filters"]), 1, use_bias=False, kernel_initializer=init, name=f"{prefix}_pw")(x)
        x = L.BatchNormalization(name=f"{prefix}_pw_bn")(x)
        return L.ReLU(max_value=6.0, name=f"{prefix}_pw_relu6")(x)
    if t == "depthwise":
        bn = spec.get("bn", False)
        x = L.DepthwiseConv2D(_pair(spec.get("kernel", 3)), strides=_pair(spec.get("strides", 1)),
                              depth_multiplier=int(spec.get("multiplier", 1)), padding=spec.get("padding", "same"),
                              use_bias=not bn, depthwise_initializer=init, name=f"{prefix}_dw")(x)
        if bn:
            x = L.BatchNormalization(name=f"{prefix}_bn")(x)
        a = _act(spec.get("activation", "relu6"), prefix, L)
        return a(x) if a else x
    if t == "resblock":
        return _resblock(x, spec, prefix, init, L)
    if t == "maxpool":
        return L.MaxPooling2D(_pair(spec.get("pool", 2)), strides=_pair(spec.get("strides", spec.get("pool", 2))),
                              padding=spec.get("padding", "valid"), name=f"{prefix}_maxpool")(x)
    if t == "avgpool":
        return L.AveragePooling2D(_pair(spec.get("pool", 2)), strides=_pair(spec.get("strides", spec.get("pool", 2))),
                                  padding=spec.get("padding", "valid"), name=f"{prefix}_avgpool")(x)
    if t == "gap":
        return L.GlobalAveragePooling2D(name=f"{prefix}_gap")(x)
    if t == "flatten":
        return L.Flatten(name=f"{prefix}_flatten")(x)
    if t == "reshape":
        return L.Reshape(tuple(int(s) for s in spec["shape"]), name=f"{prefix}_reshape")(x)
    if t == "zeropad":
        return L.ZeroPadding2D(tuple(tuple(p) for p in spec["padding"]), name=f"{prefix}_zeropad")(x)
    if t == "dropout":
        return L.Dropout(float(spec["rate"]), seed=seed, name=f"{prefix}_dropout")(x)
    if t == "batchnorm":
        return L.BatchNormalization(name=f"{prefix}_bn")(x)
    if t == "activation":
        return _act(spec["fn"], prefix, L)(x)
    if t == "lstm":  # over axis 1 (time) of a (time, features) input; the last hidden state unless asked
        return L.LSTM(int(spec["units"]), return_sequences=bool(spec.get("return_sequences", False)),
                      kernel_initializer=init, recurrent_initializer=api.initializers.Orthogonal(seed=seed),
                      name=f"{prefix}_lstm")(x)
    raise ValueError(f"layer {prefix}: unknown layer type {t!r} (known: {', '.join(LAYER_TYPES)})")


def _resblock(x, spec: dict, prefix: str, init, L: Any = L):
    """ResNet v2 (pre-activation) basic block; projection shortcut when shape changes."""
    filters, strides = int(spec["filters"]), _pair(spec.get("strides", 1))
    pre = L.BatchNormalization(name=f"{prefix}_bn0")(x)
    pre = L.Activation("relu", name=f"{prefix}_relu0")(pre)
    if strides != (1, 1) or x.shape[-1] != filters:
        shortcut = L.Conv2D(filters, 1, strides=strides, use_bias=False, kernel_initializer=init,
                            name=f"{prefix}_proj")(pre)
    else:
        shortcut = x
    y = L.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, kernel_initializer=init,
                 name=f"{prefix}_conv1")(pre)
    y = L.BatchNormalization(name=f"{prefix}_bn1")(y)
    y = L.Activation("relu", name=f"{prefix}_relu1")(y)
    y = L.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init, name=f"{prefix}_conv2")(y)
    return L.Add(name=f"{prefix}_add")([y, shortcut])


# ----------------------------------------------------------------------------- network
@dataclass
class BuildOptions:
    """Everything besides the topology and scheme that shapes the network."""

    input_shape: tuple[int, ...]
    num_classes: int
    feature_groups: dict[str, list[int]] | None = None
    #: survival per failable node (failout), ignored unless the scheme trains with failout
    survival: dict[str, float] | None = None
    #: hyperconnection weight per link name (defaults to 1)
    link_weights: dict[str, float] | None = None
    seed: int = 0


def build_model(topo: Topology, scheme: Scheme, opts: BuildOptions) -> keras.Model:
    """The whole split network as one Keras model.

    Inputs: ``x`` (the dataset's features) and ``alive`` (one 0/1 column per failable node).
    Outputs: ``probs`` (class probabilities) and ``present`` (1 when the cloud got any usable input).
    """
    used = scheme_topology(topo, scheme)
    x_in = keras.Input(shape=opts.input_shape, name="x")
    alive_in = keras.Input(shape=(len(topo.failure_order),), name="alive")
    weights = opts.link_weights or {}
    survival = opts.survival or {}

    outputs: dict[str, Any] = {}   # node -> (tensor, presence) after the node's layers and failout
    sent: dict[str, Any] = {}      # link name -> (tensor, presence) as it leaves the sender
    widths: dict[str, int] = {}    # bottleneck link -> channels before its narrowing (the widening's)
    shares = range_groups(used.links)  # coded links that train one range (deployed with one scale)
    one = None
    for k, name in enumerate(topological_order(used)):
        node = used.node(name)
        seed = opts.seed * 1000 + k * 50
        if node.role == "sensor":
            h = x_in
            if node.features:
                if not opts.feature_groups:
                    raise ValueError(f"sensor {name!r} reads features {node.features} but the dataset "
                                     f"defines no feature groups")
                idx = [i for g in node.features for i in opts.feature_groups[g]]
                h = SelectFeatures(idx, name=f"{name}_features")(h)
            if one is None:
                one = AlwaysPresent(name="always_present")(alive_in)
            present = one
        else:
            links = used.incoming(name, skips=False) + [l for l in used.incoming(name) if l.skip]
            n_normal = len(used.incoming(name, skips=False))
            # Two steps as data (Aggregate): the node's merge joins its normal links, the scheme's
            # aggregation (sum or mux) adds the skips; any mix of both is allowed.
            merge = node.merge if n_normal > 1 or node.merge == "average" else "concat"
            mode = scheme.aggregation if len(links) > n_normal else merge
            check_link_shapes(topo, name, merge, links[:n_normal], links[n_normal:],
                              [tuple(sent[l.name][0].shape[1:]) for l in links])
            agg = Aggregate(mode, n_normal, [weights.get(l.name, 1.0) for l in links],
                            parts=[l.part for l in links[:n_normal]] if merge == "average" else None,
                            merge=merge, name=f"{name}_aggregate")
            h, present = agg([sent[l.name][0] for l in links] + [sent[l.name][1] for l in links])
            h = _widen(name, links, h, widths)
        for i, spec in enumerate(node.layers):
            h = apply_layer(spec, h, f"{name}_{i}", opts.num_classes, seed + i)
        if node.failable:
            col = topo.failure_order.index(name)
            alive = AliveColumn(col, name=f"{name}_alive")(alive_in)
            present = NodeGate(name=f"{name}_gate")(alive, present)
            p = survival.get(name, 1.0) if scheme.failout else 1.0
            h, present = Failout(p, seed=opts.seed * 7919 + col, name=f"{name}_failout")(h, present)
        outputs[name] = (h, present)
        # Plain links first: a projection (or narrowing) reads the node's output tensor, which on the board is
        # the int8 tensor of the plain links -- on a coded link's grid -- so it is trained on the coded one.
        plain = [l for l in used.outgoing(name) if not (l.projection or l.bottleneck)]
        for l in plain:
            sent[l.name] = (_project(l, h, opts, seed + 40, widths, shares[l.name]), present)
        src = sent[plain[0].name][0] if plain else h
        for l in used.outgoing(name):
            if l not in plain:
                sent[l.name] = (_project(l, src, opts, seed + 40, widths, shares[l.name]), present)

    probs, present = outputs[used.cloud.name]
    probs = L.Identity(name="probs")(probs)
    present = L.Identity(name="present")(present)
    return keras.Model(inputs={"x": x_in, "alive": alive_in}, outputs={"probs": probs, "present": present},
                       name=f"{topo.name}_{scheme.name}")


def _widen(node: str, links: list[Link], h, widths: dict[str, int]):
    """A bottleneck's widening on the receiver, back to the sender's channels. Only on a node fed by that one
    link: its aggregation is then the link itself (0 when missing), and bias-free widening keeps 0 at 0."""
    narrow = [l for l in links if l.bottleneck]
    if not narrow:
        return h
    if len(links) > 1:
        raise ValueError(f"link {narrow[0].name}: a bottleneck needs a receiver fed by that one link, but "
                         f"{node} also gets {', '.join(l.name for l in links if l is not narrow[0])}: remove "
                         f"`bottleneck` or give the link the node alone")
    return linear_map(keras, widths[narrow[0].name], len(h.shape), widen_name(node))(h)


def _shape(shape: tuple) -> str:
    return "x".join(str(d) for d in shape)


def check_link_shapes(topo: Topology, node: str, merge: str, normal: list[Link], skips: list[Link],
                      shapes: list[tuple]) -> None:
    """The tensors into ``node`` fit its aggregation, else a TopologyError naming the link, both shapes and
    the fix -- at build time, before anything trains (a partition that moves layers between nodes changes
    what its links carry; the skip projections must follow).

    ``shapes``: per link (normal links first), the shape it delivers without the batch dimension. Normal
    links are merged (sum: equal; concat: all but the channels agree; average: the same, its parts
    concatenated in order, one channel count per part); every skip must then have exactly the merged
    shape, since the scheme sums or muxes them.
    """
    where = f"topology {topo.name} (partition {topo.partition})"
    if not normal:
        return
    first = shapes[0]
    for link, shape in zip(normal[1:], shapes[1:len(normal)]):
        fits = shape == first if merge == "sum" else shape[:-1] == first[:-1]
        if not fits:
            raise TopologyError(
                f"{where}: node {node} {merge}s its normal links {normal[0].name} ({_shape(first)}) and {link.name} "
                f"({_shape(shape)}), which must {'be equal' if merge == 'sum' else 'agree but for the channels'}: "
                f"change the layers of the nodes that send them")
    if merge == "sum":
        merged = first
    elif merge == "concat":
        merged = (*first[:-1], sum(s[-1] for s in shapes[:len(normal)]))
    else:  # average: one replica of each part gives the part's channels
        part_channels = {l.part: s[-1] for l, s in zip(normal, shapes)}
        merged = (*first[:-1], sum(part_channels.values()))
    names = " + ".join(l.name for l in normal)
    for link, shape in zip(skips, shapes[len(normal):]):
        if shape != merged:
            table = (f'[partitions.{topo.partition}.projections] "{link.name}" = [...]' if topo.partition != "1"
                     else f"its [[links]] entry's projection = [...]")
            raise TopologyError(
                f"{where}: skip link {link.name} delivers {_shape(shape)} to node {node}, whose input from {names} "
                f"is {_shape(merged)}: they must be equal; give {link.name} a projection that outputs "
                f"{_shape(merged)} ({table})")


def _project(link: Link, h, opts: BuildOptions, seed: int, widths: dict[str, int], share: str):
    """Skip projections run on the sending node, after its failout (a failed edge silences its skip); then a
    bottleneck's narrowing and the link code (host/ml/link_codes.py)."""
    for i, spec in enumerate(link.projection):
        h = apply_layer(spec, h, f"{link.src}_to_{link.dst}_{i}", opts.num_classes, seed + i)
    if link.bottleneck:
        widths[link.name] = int(h.shape[-1])
        h = linear_map(keras, link.bottleneck, len(h.shape), narrow_name(link.src, link.dst), seed + 30)(h)
    # Low-bit link codes (host/ml/link_codes.py): trained on the wire's grid, after failout and projection.
    bits = resolve_bits(link.name, link.bits, link.max_bytes, math.prod(int(d) for d in h.shape[1:]))
    if bits < 8:
        h = LinkCode(bits, clip="mse", share=share, name=code_layer_name(link.src, link.dst))(h)
    return h
