"""Split a user's own Keras model over the nodes of a topology file (``keras_layers``).

A topology file may assign the layers of a saved Keras model (``.keras``) to its nodes by name instead of
describing them with the preset vocabulary::

    [model]
    path = "my_model.keras"            # relative to the TOML's folder; --model on the command line wins

    [[nodes]]
    name = "iot"
    role = "sensor"
    keras_layers = ["conv1", "conv1_bn", "conv1_relu"]

The normal links follow from the model's graph: every edge from a layer of node A to a layer of node B is a
link A -> B. The file may still list skip links (``skip = true``, with projections), the reliability table
and the failure order, exactly as presets do; the scheme then adds aggregation, skips and failout.

:func:`imported_raw` turns such a document into a plain topology document whose node bodies are one layer
spec ``{type = "keras", model, sha256, layers, entry, exit}`` each, so everything downstream (the topology
checks, :func:`host.ml.schemes.build_model`, the per-node split) treats it like any other layer:
:func:`apply_imported` re-applies the named layers (cloned configuration, the user's weights) on the
node's input. Every error names the entry and what to do, before anything trains.
"""
from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from host.ml.topology import TopologyError

#: The layer spec type of a node body imported from a Keras model.
IMPORTED = "keras"
#: Stands for the model's input as the producer of an edge.
MODEL_INPUT = ""


class KerasImportError(TopologyError):
    """A model or an assignment of its layers to nodes that cannot be split (the message says what to do)."""


@dataclass(frozen=True)
class ModelGraph:
    """What the split needs to know of a Keras model: its layers in graph order and the edges between them."""

    path: Path
    sha256: str
    input_shape: tuple[int, ...]
    #: layer name -> class name, in graph (topological) order, the input layer left out
    layers: dict[str, str]
    #: (producer, consumer) layer names; producer MODEL_INPUT is the model's input
    edges: tuple[tuple[str, str], ...]
    #: the layer whose output is the model's output
    output: str


_MODELS: dict[tuple[str, str], Any] = {}  # (path, sha256) -> loaded model: every node re-reads the same file


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_model(path: str | Path, sha256: str | None = None) -> Any:
    """The Keras model saved at ``path`` (loaded once per content); KerasImportError when it is not one."""
    p = Path(path)
    if not p.is_file():
        raise KerasImportError(f"--model {p}: no such file (save the model with model.save('{p.name}'))")
    digest = sha256 or file_sha256(p)
    key = (str(p.resolve()), digest)
    if key not in _MODELS:
        import keras

        try:
            model = keras.saving.load_model(p, compile=False)
        except Exception as err:  # noqa: BLE001 - any unreadable file is one message naming it
            first = next((l.strip() for l in str(err).splitlines() if l.strip()), type(err).__name__)
            raise KerasImportError(f"--model {p}: not a Keras model ({first[:200]}); save it with "
                                   f"model.save('name.keras')") from None
        if isinstance(model, keras.Sequential) and getattr(model, "inputs", None):
            model = keras.Model(model.inputs, model.outputs)  # its graph, the same layer objects
        if not isinstance(model, keras.Model) or not getattr(model, "inputs", None) or \
                not hasattr(model, "operations"):
            raise KerasImportError(f"--model {p}: not a functional or Sequential Keras model (a subclassed model "
                                   f"has no graph to split: rebuild it with the functional API)")
        _MODELS[key] = model
    return _MODELS[key]


def model_graph(path: str | Path) -> ModelGraph:
    """The layers and edges of the model at ``path``; refuses graphs the split cannot re-apply."""
    p = Path(path)
    digest = file_sha256(p) if p.is_file() else ""
    model = read_model(p, digest or None)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise KerasImportError(f"--model {p}: has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                               f"a split network reads one dataset input and gives one class output")
    producer = {id(model.inputs[0]): MODEL_INPUT}
    layers: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for name, call in graph_calls(model, p).items():
        layers[name] = type(call.operation).__name__
        edges += [(producer[id(t)], name) for t in call.arguments.keras_tensors]
        producer.update({id(t): name for t in call.outputs})
    if id(model.outputs[0]) not in producer:
        raise KerasImportError(f"--model {p}: its output is not computed from its input by its layers")
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return ModelGraph(p, digest, shape, layers, tuple(dict.fromkeys(edges)), producer[id(model.outputs[0])])


_CALLS: dict[int, dict[str, Any]] = {}  # id(model) -> graph_calls (models stay alive in _MODELS)


def graph_calls(model: Any, path: Path | str = "") -> dict[str, Any]:
    """Layer name -> the call (Keras node: operation, arguments, outputs) of that layer in ``model``'s graph,
    in graph order. Keras keeps every call of a layer (a Sequential model is built more than once); the calls
    of this graph are those its output is computed through (each tensor's Keras history names its call).
    Refuses keras.ops calls (no name to assign) and shared layers (one layer called twice: its weights could
    not live on two nodes)."""
    import keras

    if id(model) in _CALLS:
        return _CALLS[id(model)]
    used: dict[int, Any] = {}
    stack = list(model.outputs)
    while stack:
        op, node_index, _ = stack.pop()._keras_history
        call = op._inbound_nodes[node_index]
        if isinstance(op, keras.layers.InputLayer) or id(call) in used:
            continue
        used[id(call)] = call
        stack.extend(call.arguments.keras_tensors)
    calls: dict[str, Any] = {}
    for op in model.operations:
        mine = [c for c in used.values() if c.operation is op]
        if not mine or isinstance(op, keras.layers.InputLayer):
            continue
        if not isinstance(op, keras.layers.Layer):
            raise KerasImportError(f"--model {path}: operation {op.name!r} is a keras.ops call, not a layer: write "
                                   f"it as a layer (e.g. keras.layers.Add) so it can be assigned to a node")
        if len(mine) != 1:
            raise KerasImportError(f"--model {path}: layer {op.name!r} is called {len(mine)} times in the model (a "
                                   f"shared layer): give every call its own layer")
        calls[op.name] = mine[0]
    _CALLS[id(model)] = calls
    return calls


# ------------------------------------------------------------------------------ topology document
def imported_raw(raw: Mapping[str, Any], folder: Path, model: str | Path | None, where: str) -> dict[str, Any]:
    """``raw`` (a parsed topology TOML that uses ``keras_layers``) as a plain topology document.

    ``model`` (``--model``) wins over ``[model] path`` (relative to ``folder``, the TOML's folder).
    """
    nodes_raw = [n for n in raw.get("nodes", []) if isinstance(n, Mapping)]
    users = [str(n.get("name")) for n in nodes_raw if "keras_layers" in n]
    path = _model_path(raw, folder, model, where)
    if not users:
        raise KerasImportError(f"{where}: a model is given ({path}) but no node lists keras_layers: assign the "
                               f"model's layers to nodes with keras_layers = [\"layer name\", ...]")
    graph = model_graph(path)
    owner = _assign(nodes_raw, graph, where)
    order = [str(n.get("name")) for n in nodes_raw]
    normal = _derived_links(nodes_raw, owner, graph, order, where)
    entries, exits = _entries_and_exits(nodes_raw, owner, graph, where)
    nodes = []
    for n in nodes_raw:
        name = str(n["name"])
        spec = {"type": IMPORTED, "model": str(graph.path.resolve()), "sha256": graph.sha256,
                "layers": [l for l in graph.layers if owner[l] == name], "entry": entries[name],
                "exit": exits[name]}
        if entries[name] == MODEL_INPUT:
            spec["input_shape"] = list(graph.input_shape)
        nodes.append({k: v for k, v in n.items() if k != "keras_layers"} | {"layers": [spec]})
    listed = [l for l in raw.get("links", []) if isinstance(l, Mapping)]
    for l in listed:
        if not l.get("skip", False):
            raise KerasImportError(f"{where}: link {l.get('from')}->{l.get('to')} is not a skip link; with "
                                   f"keras_layers the normal links come from the model's graph "
                                   f"({', '.join(f'{a}->{b}' for a, b in normal)}): list only skip links")
    links = [{"from": a, "to": b} for a, b in normal] + listed
    return {k: v for k, v in raw.items() if k != "model"} | {"nodes": nodes, "links": links}


def _model_path(raw: Mapping[str, Any], folder: Path, model: str | Path | None, where: str) -> Path:
    if model is not None:
        return Path(model)
    table = raw.get("model")
    if not isinstance(table, Mapping) or not isinstance(table.get("path"), str):
        raise KerasImportError(f"{where}: nodes list keras_layers but no model is given: pass --model FILE.keras "
                               f"or add [model] path = \"FILE.keras\" (relative to the topology file)")
    p = Path(table["path"]).expanduser()
    return p if p.is_absolute() else folder / p


def _assign(nodes_raw: list[Mapping[str, Any]], graph: ModelGraph, where: str) -> dict[str, str]:
    """layer -> node; every layer of the model exactly once, names known (close names suggested)."""
    owner: dict[str, str] = {}
    input_names = {"input_layer"}
    for n in nodes_raw:
        name = str(n.get("name"))
        if "layers" in n:
            raise KerasImportError(f"{where}: node {name!r} lists both layers and keras_layers: a split model's "
                                   f"nodes take keras_layers only")
        names = n.get("keras_layers", [])
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
            raise KerasImportError(f"{where}: node {name!r} keras_layers must be a list of layer names")
        if not [s for s in names if s not in input_names]:
            raise KerasImportError(f"{where}: node {name!r} has no layers: give it keras_layers = [\"layer name\", "
                                   f"...] (a board must compute something) or remove the node")
        for layer in names:
            if layer in input_names and layer not in graph.layers:
                continue  # the model's input layer holds no computation: listing it is harmless
            if layer not in graph.layers:
                close = difflib.get_close_matches(layer, list(graph.layers), n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else \
                    f"; the model's layers are {_names(list(graph.layers))}"
                raise KerasImportError(f"{where}: node {name!r} lists layer {layer!r}, which the model "
                                       f"{graph.path.name} does not have{hint}")
            if layer in owner:
                raise KerasImportError(f"{where}: layer {layer!r} is assigned twice (nodes {owner[layer]!r} and "
                                       f"{name!r}): keep it in one node")
            owner[layer] = name
    missing = [l for l in graph.layers if l not in owner]
    if missing:
        raise KerasImportError(f"{where}: layer(s) {_names(missing)} of {graph.path.name} are assigned to no node: "
                               f"add each to the keras_layers of one node")
    return owner


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _derived_links(nodes_raw: list[Mapping[str, Any]], owner: dict[str, str], graph: ModelGraph,
                   order: list[str], where: str) -> list[tuple[str, str]]:
    """One normal link per pair of nodes an edge crosses, checked against the node order of the file."""
    roles = {str(n.get("name")): n.get("role") for n in nodes_raw}
    links: list[tuple[str, str]] = []
    for src_layer, dst_layer in graph.edges:
        dst = owner[dst_layer]
        if src_layer == MODEL_INPUT:
            if roles[dst] != "sensor":
                raise KerasImportError(f"{where}: layer {dst_layer!r} reads the model's input but its node {dst!r} "
                                       f"is not a sensor: move it to a sensor node")
            continue
        src = owner[src_layer]
        if src == dst:
            continue
        if order.index(src) > order.index(dst):
            raise KerasImportError(f"{where}: layer {src_layer!r} (node {src!r}) feeds layer {dst_layer!r} (node "
                                   f"{dst!r}), but {dst!r} comes before {src!r}: an edge must run forward in the "
                                   f"node order; move one of the layers or reorder the nodes")
        if (src, dst) not in links:
            links.append((src, dst))
    return links


def _entries_and_exits(nodes_raw: list[Mapping[str, Any]], owner: dict[str, str], graph: ModelGraph,
                       where: str) -> tuple[dict[str, str], dict[str, str]]:
    """Per node: the one layer whose output it receives (MODEL_INPUT for a sensor) and the one it sends."""
    entries: dict[str, set[str]] = {str(n["name"]): set() for n in nodes_raw}
    exits: dict[str, set[str]] = {str(n["name"]): set() for n in nodes_raw}
    for src_layer, dst_layer in graph.edges:
        dst = owner[dst_layer]
        if src_layer == MODEL_INPUT or owner[src_layer] != dst:
            entries[dst].add(src_layer)
            if src_layer != MODEL_INPUT:
                exits[owner[src_layer]].add(src_layer)
    exits[owner[graph.output]].add(graph.output)
    for name in entries:
        if len(entries[name]) != 1:
            raise KerasImportError(f"{where}: node {name!r} reads {len(entries[name])} tensors from other nodes "
                                   f"(outputs of {_names(sorted(entries[name]) or ['nothing'])}); a node takes "
                                   f"one tensor from the nodes before it: move layers so that one tensor enters it")
        if len(exits[name]) != 1:
            what = _names(sorted(exits[name])) if exits[name] else "no layer"
            raise KerasImportError(f"{where}: node {name!r} sends the outputs of {what} to other nodes; a node sends "
                                   f"one tensor (the output of its last layer): move layers so that one tensor "
                                   f"leaves it")
    cloud = next((str(n["name"]) for n in nodes_raw if n.get("role") == "cloud"), None)
    if cloud is not None and owner[graph.output] != cloud:
        raise KerasImportError(f"{where}: the model's output layer {graph.output!r} is in node "
                               f"{owner[graph.output]!r}, not in the cloud node {cloud!r}: move it to the cloud")
    return ({n: next(iter(s)) for n, s in entries.items()}, {n: next(iter(s)) for n, s in exits.items()})


# ------------------------------------------------------------------------------ building
def apply_imported(spec: Mapping[str, Any], x: Any, prefix: str) -> Any:
    """Re-apply the node's layers of the user's model on ``x`` (the node's input, standing for the output of
    ``spec["entry"]``): each layer a clone named ``<prefix>_<layer>`` with the user's weights, called with
    the same arguments as in the user's graph. Returns the output of ``spec["exit"]``."""
    import keras

    model = read_model(spec["model"], spec["sha256"])
    entry = model.inputs[0] if spec["entry"] == MODEL_INPUT else \
        keras.tree.flatten(graph_calls(model, spec["model"])[spec["entry"]].outputs)[0]
    tensors = {id(entry): x}

    def swap(v: Any) -> Any:
        return tensors[id(v)] if isinstance(v, keras.KerasTensor) else v

    out = x
    calls = graph_calls(model, spec["model"])
    for name in spec["layers"]:
        layer = model.get_layer(name)
        call = calls[name]
        clone = type(layer).from_config({**layer.get_config(), "name": f"{prefix}_{name}"})
        args = keras.tree.map_structure(swap, call.arguments.args)
        kwargs = keras.tree.map_structure(swap, call.arguments.kwargs)
        result = clone(*args, **kwargs)
        clone.set_weights(layer.get_weights())  # the user's trained weights, not a fresh initialisation
        for orig, new in zip(keras.tree.flatten(call.outputs), keras.tree.flatten(result)):
            tensors[id(orig)] = new
        if name == spec["exit"]:
            out = tensors[id(keras.tree.flatten(call.outputs)[0])]
    return out


def imported_layer(spec: Mapping[str, Any], prefix: str, tensor_name: str) -> str | None:
    """The user's layer a converter tensor name comes from (``.../<prefix>_<layer>...``), if any."""
    hits = [l for l in spec["layers"] if f"{prefix}_{l}" in tensor_name]
    return max(hits, key=len) if hits else None


def layer_type(spec: Mapping[str, Any], name: str) -> str:
    """The Keras class of one of the user's layers (with its function, for an Activation layer)."""
    layer = read_model(spec["model"], spec["sha256"]).get_layer(name)
    fn = getattr(layer, "activation", None)
    fn_name = getattr(fn, "__name__", None) if type(layer).__name__ == "Activation" else None
    return type(layer).__name__ + (f" {fn_name}" if fn_name else "")
