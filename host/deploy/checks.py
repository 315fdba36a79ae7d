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
from host.ml.topology import Topology


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
    try:
        model = build_for(topo, ds, cfg)
    except Exception as err:  # noqa: BLE001 - any failure to build is reported as the topology's
        raise BuildInputError(f"{_where(topo, scheme)}: the network cannot be built: {_first_line(err)}"
                              f"{_layer_hint(err)}") from None
    try:
        _check_aggregations(model, topo, scheme, cfg.skips)
        x = np.zeros((1, *ds.x_train.shape[1:]), np.float32)
        model({"x": x, "alive": np.ones((1, len(topo.failure_order)), np.float32)})
    except BuildInputError:
        raise
    except Exception as err:  # noqa: BLE001
        raise BuildInputError(f"{_where(topo, scheme)}: one sample does not go through the network: "
                              f"{_first_line(err)}{_layer_hint(err)}") from None
    finally:
        del model
        keras.backend.clear_session()  # the training that follows starts from a clean graph and name scope


def _check_aggregations(model: Any, topo: Topology, scheme: str, skips: Any) -> None:
    """Every node's incoming tensors agree on their shapes as its aggregation needs (by the symbolic shapes)."""
    from host.ml.schemes import get_scheme, scheme_topology

    used = scheme_topology(topo.with_skips(skips), get_scheme(scheme))
    for layer in model.layers:
        if type(layer).__name__ != "Aggregate" or not layer.name.endswith("_aggregate"):
            continue
        node = layer.name[: -len("_aggregate")]
        links = used.incoming(node, skips=False) + [l for l in used.incoming(node) if l.skip]
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        shapes = [tuple(t.shape[1:]) for t in inputs[: len(links)]]
        mode = layer.mode
        same = (lambda s: s) if mode in ("sum", "mux") else (lambda s: s[:-1])  # concat/average: all but channels
        first = same(shapes[0])
        for link, shape in zip(links[1:], shapes[1:]):
            if same(shape) != first:
                raise BuildInputError(
                    f"{_where(topo, scheme)}: node {node} ({mode}) receives {links[0].name} with shape "
                    f"{_shape(shapes[0])} and {link.name} with shape {_shape(shape)}, which "
                    f"{'must be equal' if mode in ('sum', 'mux') else 'must agree but for the channels'}: change "
                    f"the layers of the nodes before it (partition {topo.partition}) or the link's projection")


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
