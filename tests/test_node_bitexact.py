"""Every node of every preset: generated C == tflite_micro, byte for byte, on real inputs under every
failure configuration of its inputs (the inputs each node really receives, zero points and mux choices
included)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

import codegen  # noqa: E402
from host.ml.experiments import load_for  # noqa: E402
from host.deploy.int8_nodes import int8_zero, quantized_sensor_inputs  # noqa: E402
from host.ml.schemes import BuildOptions, build_model, get_scheme  # noqa: E402
from host.ml.split import link_weights_of, node_models, plan_partition, run_split  # noqa: E402
from host.deploy.quantize import calibrate, quantize_nodes, tflm_runner  # noqa: E402
from host.ml.topology import load_topology  # noqa: E402

SAMPLES = 200
#: The paper's CIFAR partitions do not fit a microcontroller (megabytes of weights); they are checked on a
#: few real images each so the generator is known to handle them, not streamed through boards.
CIFAR_SAMPLES = 3


def _dataset(preset, health_npz, samples):
    topo = load_topology(preset)
    if preset == "health":
        topo.dataset = {"name": "npz", "path": health_npz}
    return topo, load_for(topo, max_train=600, max_test=samples)


@pytest.mark.parametrize("preset,scheme,samples", [
    ("fashion", "resilinet", SAMPLES), ("fashion", "dfg", SAMPLES), ("har", "resilinet", SAMPLES),
    ("har", "resilinet_plus", SAMPLES), ("har_lstm", "resilinet", 40), ("health", "resilinet", SAMPLES),
    ("health", "dfg", SAMPLES),
    ("cifar_mobilenet", "resilinet", CIFAR_SAMPLES), ("cifar_resnet", "resilinet_plus", CIFAR_SAMPLES),
    ("nonn", "distill", 40)])
def test_generated_nodes_match_tflite_micro_under_every_failure(preset, scheme, samples, health_npz, tmp_path):
    topo, ds = _dataset(preset, health_npz, samples)
    shape = tuple(ds.x_train.shape[1:])
    full = build_model(topo, get_scheme(scheme), BuildOptions(shape, ds.num_classes, ds.feature_groups, seed=1))
    # An untrained network's logits span almost nothing, and a softmax on them cannot be quantized (TFLM
    # aborts); widen the classifier as training would.
    head = [l for l in full.layers if l.name.startswith(f"{topo.cloud.name}_") and l.name.endswith("_dense")][-1]
    import keras
    logits = keras.Model(full.inputs, head.output)({"x": ds.x_train[:16], "alive": np.ones((16, len(topo.failure_order)))})
    spread = float(np.ptp(np.asarray(logits)))
    head.set_weights([w * (10.0 / max(spread, 1e-6)) for w in head.get_weights()])
    plans = plan_partition(topo, scheme, feature_groups=ds.feature_groups,
                           link_weights=link_weights_of(full, topo, scheme))
    fm = node_models(full, topo, scheme, plans, input_shape=shape, num_classes=ds.num_classes)
    b1 = node_models(full, topo, scheme, plans, input_shape=shape, num_classes=ds.num_classes, batch_size=1,
                     fused_lstm=True)
    quant, _ = quantize_nodes(plans, b1, calibrate(plans, fm, topo, ds.x_train[:max(8, min(300, 30 * samples))]))
    run, zero = tflm_runner(quant, plans), int8_zero(quant)
    x = ds.x_test[:samples]
    sensors = quantized_sensor_inputs(plans, quant, x)
    fed: dict[str, list[list[np.ndarray]]] = {n: [] for n in plans}
    for c in topo.configurations():
        r = run_split(plans, run, sensors, topo.alive_map(c), zero=lambda n, s: zero(n, s, len(x)))
        for node, ins in r.inputs.items():
            fed[node].append(ins)
    for node, plan in plans.items():
        assert fed[node], f"{node} never ran"
        arrays = {spec.name: np.concatenate([ins[i] for ins in fed[node]]) for i, spec in enumerate(plan.inputs)}
        assert len(next(iter(arrays.values()))) >= samples
        path = tmp_path / f"{node}.tflite"
        path.write_bytes(quant[node].tflite)
        np.savez(tmp_path / f"{node}_inputs.npz", **arrays)
        result = codegen.verify_model(path, inputs=tmp_path / f"{node}_inputs.npz", name=f"node_{node}")
        assert result.samples == len(next(iter(arrays.values())))
        assert result.ok, f"{preset}/{scheme} node {node}: {result.mismatched_bytes} bytes differ"
