"""Checks that let ``python -m host.build`` refuse bad input before the work starts, each with one message.

* :func:`check_names` — the dataset a topology names, and ``--dataset-opt`` (before any data is loaded);
* :func:`check_graph` — the Keras network of the topology and scheme, built once on the dataset's shapes and
  run on one sample before training: a shape the links or layers do not agree on is named (topology,
  partition, node, links), instead of surfacing at the first training step;
* :func:`check_node_tflite` — a node's ``.tflite`` through codegen's validating reader (a truncated or
  corrupt file is one :class:`codegen.errors.ModelFormatError` naming it).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from host.ml.datasets import Dataset, UnknownDatasetError, check_dataset_name
from host.ml.topology import Topology, TopologyError


class BuildInputError(ValueError):
    """Bad input to host.build, found before the work starts (the message names it and what to do)."""


def check_names(topo: Topology, dataset_opts: Sequence[str], dataset: str | None = None) -> None:
    """``--dataset-opt`` are KEY=VALUE and the dataset (``--dataset``, else the topology's) exists; nothing is
    loaded. Raises BuildInputError or host.ml.datasets.UnknownDatasetError."""
    for opt in dataset_opts:
        if "=" not in opt or not opt.partition("=")[0]:
            raise BuildInputError(f"--dataset-opt expects KEY=VALUE, got {opt!r}")
    name = dataset or topo.dataset.get("name")
    if not isinstance(name, str):
        raise BuildInputError(f"topology {topo.name}: its [dataset] has no name: add one, or pass --dataset NAME")
    try:
        check_dataset_name(name)
    except UnknownDatasetError as err:
        where = "--dataset" if dataset else f"topology {topo.name} ([dataset] name)"
        raise BuildInputError(f"{where}: {err}") from None


def _where(topo: Topology, scheme: str) -> str:
    return f"topology {topo.name} (partition {topo.partition}, scheme {scheme})"


def check_graph(topo: Topology, scheme: str, ds: Dataset, *, epochs: int | None = None, seed: int = 0) -> None:
    """Build the network once (no training) on ``ds``'s shapes and run one sample through it.

    Raises :class:`BuildInputError` naming the topology and the node (and its incoming links) whose inputs
    do not fit together, or the layer that fails. Distillation presets build their networks while
    distilling and are not checked here.
    """
    if topo.distillation:
        return
    import keras

    from host.ml.train import TrainConfig, build_for

    cfg = TrainConfig.from_topology(topo, scheme=scheme, epochs=epochs, seed=seed)
    check_imported_input(topo, ds)
    try:
        model = build_for(topo, ds, cfg)
    except TopologyError:
        raise  # a link that does not fit its receiver: named with both shapes and the fix (check_link_shapes)
    except Exception as err:  # noqa: BLE001 - any failure to build is reported as the topology's
        raise BuildInputError(f"{_where(topo, scheme)}: the network cannot be built: {_first_line(err)}"
                              f"{_layer_hint(err)}") from None
    try:
        x = np.zeros((1, *ds.x_train.shape[1:]), np.float32)
        model({"x": x, "alive": np.ones((1, len(topo.failure_order)), np.float32)})
        check_imported_nodes(model, topo, scheme, ds, cfg.skips)
        check_group_bits(model, topo.with_skips(cfg.skips), scheme, ds)
    except BuildInputError:
        raise
    except Exception as err:  # noqa: BLE001
        raise BuildInputError(f"{_where(topo, scheme)}: one sample does not go through the network: "
                              f"{_first_line(err)}{_layer_hint(err)}") from None
    finally:
        del model
        keras.backend.clear_session()  # the training that follows starts from a clean graph and name scope


def check_group_bits(model: Any, topo: Topology, scheme: str, ds: Dataset) -> None:
    """``topo`` with the skips the network was built with (Topology.with_skips). Links deployed with one int8 scale/zero point (mux partners, a concatenation's or an average's inputs,
    one tensor sent twice: host/deploy/quantize.link_groups) share one code space on the boards, the fewest bits
    of the group; trained with different bits, a link would run on the boards with codes it never saw."""
    from host.deploy.quantize import link_groups
    from host.ml.link_codes import trained_bits
    from host.ml.split import PartitionError, plan_partition

    try:
        plans = plan_partition(topo, scheme, feature_groups=ds.feature_groups)
    except PartitionError as err:  # e.g. a node left with nothing to compute: refused before training, not after
        raise BuildInputError(f"{_where(topo, scheme)}: {err}") from None
    names = [l for p in plans.values() for o in p.outputs for l in o.links]
    for group in link_groups(plans, names):
        bits = {l: trained_bits(model, *l.split("->")) for l in group}
        if len(set(bits.values())) > 1:
            which = ", ".join(f"{l} ({b} bits)" for l, b in sorted(bits.items()))
            raise BuildInputError(f"{_where(topo, scheme)}: links {which} share one int8 scale and zero point on "
                                  f"the boards (mux partners, inputs of one concatenation or average, or one "
                                  f"tensor sent twice), so one code space: give them the same bits (or max_bytes "
                                  f"that come to the same)")


def _shape(shape: tuple[Any, ...]) -> str:
    return "x".join(str(d) for d in shape)


def _first_line(err: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("Exception encountered")]
    message = next((l for l in lines if "shape" in l.lower()), lines[0] if lines else type(err).__name__)
    message = re.sub(r"\{\{[^}]*\}\}\s*", "", message)
    return message[:300]


def _layer_hint(err: BaseException) -> str:
    m = re.search(r"calling (\w+)\.call\(\)", str(err))
    return f" (in a {m.group(1)} layer)" if m else ""


def check_node_tflite(path: Path) -> None:
    """``path`` is a whole TFLite model (raises codegen's ModelFormatError naming the file otherwise)."""
    from codegen.tflite_reader import check_tflite

    check_tflite(path)


# ------------------------------------------------------------------------------ a split user model
#: Bytes of one tensor a DATA frame carries (2048-byte payload; a RESULT adds a 4-byte cycle count), and
#: of a sensor's input: the limits host.deploy.firmware's node configuration checks after training.
LINK_TENSOR_MAX = 2044
SENSOR_INPUT_MAX = 2048


def imported_specs(topo: Topology) -> dict[str, dict]:
    """Node -> its body imported from the user's Keras model (``keras_layers``); empty for presets."""
    return {n.name: n.layers[0] for n in topo.nodes if n.layers and n.layers[0].get("type") == "keras"}


def check_imported_input(topo: Topology, ds: Dataset) -> None:
    """The user's model reads what the dataset gives (else BuildInputError naming both shapes)."""
    for name, spec in imported_specs(topo).items():
        want = tuple(spec.get("input_shape") or ())
        if want and want != tuple(ds.x_train.shape[1:]):
            raise BuildInputError(
                f"topology {topo.name}: the Keras model {Path(spec['model']).name} takes input {_shape(want)} but "
                f"dataset {ds.name} gives {_shape(tuple(ds.x_train.shape[1:]))} per sample: use a dataset of that "
                f"shape ([dataset] in the topology, or --dataset npz --dataset-opt path=FILE.npz) or build the "
                f"model for it")


def check_imported_nodes(model: Any, topo: Topology, scheme: str, ds: Dataset, skips: Any) -> None:
    """Before training, each node of a split user model converted to int8 (untrained weights, random inputs)
    and lowered by codegen: a layer codegen cannot lower is named with its type and why, and a link tensor
    too large for a frame names the link; the same check the nodes stage would fail at, after training."""
    specs = imported_specs(topo)
    if not specs:
        return
    import tempfile

    from codegen.errors import UnsupportedOpsError
    from codegen.lowering import lower_graph
    from codegen.tflite_reader import read_tflite
    from host.deploy.quantize import convert_int8
    from host.ml.split import link_weights_of, node_models, plan_partition

    used = topo.with_skips(skips)
    plans = plan_partition(used, scheme, feature_groups=ds.feature_groups,
                           link_weights=link_weights_of(model, used, scheme))
    nodes = node_models(model, used, scheme, plans, input_shape=tuple(ds.x_train.shape[1:]),
                        num_classes=ds.num_classes, batch_size=1)
    _check_link_sizes(topo, plans)
    rng = np.random.default_rng(0)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="resilinet-lowering-") as tmp:
        for name, node_model in nodes.items():
            rep = {s.name: rng.uniform(0.0, 1.0, (4, *s.shape)).astype(np.float32) for s in plans[name].inputs}
            path = Path(tmp) / f"{name}.tflite"
            path.write_bytes(convert_int8(_outputs_named(node_model), rep, max_samples=4))
            try:
                lower_graph(read_tflite(path))
            except UnsupportedOpsError as err:
                # An op the int8 converter left in float comes wrapped in DEQUANTIZE/QUANTIZE: name the op.
                errors = [e for e in err.errors if e.op_type not in ("QUANTIZE", "DEQUANTIZE")] or err.errors
                problems += [_unsupported_layer(name, specs.get(name), e) for e in errors]
    if problems:
        raise BuildInputError(f"topology {topo.name}: codegen cannot lower "
                              + "; ".join(dict.fromkeys(problems)))


def _outputs_named(model: Any) -> Any:
    """``model`` with every output doubled by a concatenation, for the lowering check only: the converter
    names a model output after its signature, an intermediate tensor after the layer that computes it, and
    that name is how an unsupported op is traced back to the user's layer."""
    import keras

    outs = {k: keras.layers.Concatenate(name=f"{k}_named")([v, v]) for k, v in model.output.items()}
    return keras.Model(model.inputs, outs)


def _check_link_sizes(topo: Topology, plans: Any) -> None:
    for name, plan in plans.items():
        for spec in plan.inputs:
            n = int(np.prod(spec.shape))
            if plan.aggregation == "source" and n > SENSOR_INPUT_MAX:
                raise BuildInputError(f"topology {topo.name}: sensor {name} reads {_shape(spec.shape)} = {n} int8 "
                                      f"bytes per sample, more than a frame's {SENSOR_INPUT_MAX}: use a smaller "
                                      f"input (fewer pixels or channels)")
        for o in plan.outputs:
            n = int(np.prod(o.shape))
            if o.links and n > LINK_TENSOR_MAX:
                raise BuildInputError(f"topology {topo.name}: link(s) {', '.join(o.links)} would carry "
                                      f"{_shape(o.shape)} = {n} int8 bytes, more than a frame's {LINK_TENSOR_MAX}: "
                                      f"cut the model where its tensor is smaller (move layers into node {name})")


def _unsupported_layer(node: str, spec: dict | None, err: Any) -> str:
    """One unsupported op as the user's layer that produced it: name, Keras type, op and why."""
    from host.ml.keras_import import imported_layer, layer_type

    layer = imported_layer(spec, f"{node}_0", err.output_name) if spec else None
    if layer is None:
        return f"node {node}: {err.op_type} ({err.reason})"
    return (f"layer {layer!r} ({layer_type(spec, layer)}) of node {node}: it becomes the TFLite op {err.op_type}: "
            f"{err.reason} (codegen/README.md lists the ops it lowers): replace the layer")
