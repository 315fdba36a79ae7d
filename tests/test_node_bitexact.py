"""Every node of every preset: generated C == tflite_micro, byte for byte, on real inputs under every
failure configuration of its inputs (the inputs each node really receives, zero points and mux choices
included)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

import codegen  # noqa: E402
from host.experiments import load_for  # noqa: E402
from host.int8_nodes import int8_zero  # noqa: E402
from host.models import BuildOptions, build_model, get_scheme  # noqa: E402
from host.partition import link_weights_of, node_models, plan_partition, run_split  # noqa: E402
from host.quantize import calibrate, quantize_nodes, tflm_runner  # noqa: E402
from host.topology import load_topology  # noqa: E402

SAMPLES = 200


def _dataset(preset, health_npz):
    topo = load_topology(preset)
    if preset == "health":
        topo.dataset = {"name": "npz", "path": health_npz}
    return topo, load_for(topo, max_train=600, max_test=SAMPLES)


@pytest.mark.parametrize("preset,scheme", [("fashion", "resilinet"), ("fashion", "dfg"),
                                           ("har", "resilinet"), ("har", "resilinet_plus"),
                                           ("health", "resilinet"), ("health", "dfg")])
def test_generated_nodes_match_tflite_micro_under_every_failure(preset, scheme, health_npz, tmp_path):
    topo, ds = _dataset(preset, health_npz)
    shape = tuple(ds.x_train.shape[1:])
    full = build_model(topo, get_scheme(scheme), BuildOptions(shape, ds.num_classes, ds.feature_groups, seed=1))
    plans = plan_partition(topo, scheme, feature_groups=ds.feature_groups,
                           link_weights=link_weights_of(full, topo, scheme))
    fm = node_models(full, topo, scheme, plans, input_shape=shape, num_classes=ds.num_classes)
    b1 = node_models(full, topo, scheme, plans, input_shape=shape, num_classes=ds.num_classes, batch_size=1)
    quant, _ = quantize_nodes(plans, b1, calibrate(plans, fm, topo, ds.x_train[:300]))
    run, zero = tflm_runner(quant, plans), int8_zero(quant)
    x = ds.x_test[:SAMPLES]
    sensors = {n: quant[n].inputs[p.inputs[0].name].quantize(x[..., p.features] if p.features else x)
               for n, p in plans.items() if p.aggregation == "source"}
    fed: dict[str, list[list[np.ndarray]]] = {n: [] for n in plans}
    for c in topo.configurations():
        r = run_split(plans, run, sensors, topo.alive_map(c), zero=lambda n, s: zero(n, s, len(x)))
        for node, ins in r.inputs.items():
            fed[node].append(ins)
    for node, plan in plans.items():
        assert fed[node], f"{node} never ran"
        arrays = {spec.name: np.concatenate([ins[i] for ins in fed[node]]) for i, spec in enumerate(plan.inputs)}
        assert len(next(iter(arrays.values()))) >= SAMPLES
        path = tmp_path / f"{node}.tflite"
        path.write_bytes(quant[node].tflite)
        np.savez(tmp_path / f"{node}_inputs.npz", **arrays)
        result = codegen.verify_model(path, inputs=tmp_path / f"{node}_inputs.npz", name=f"node_{node}")
        assert result.samples == len(next(iter(arrays.values())))
        assert result.ok, f"{preset}/{scheme} node {node}: {result.mismatched_bytes} bytes differ"
