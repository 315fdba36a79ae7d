"""Failout, aggregation and presence semantics of the model builders (ResiliNet spec §5, §6)."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from host.ml.layers import Aggregate, Failout  # noqa: E402
from host.ml.schemes import SCHEMES, BuildOptions, build_model, get_scheme  # noqa: E402
from host.ml.topology import load_topology  # noqa: E402

SHAPES = {"fashion": ((28, 28, 1), 10, None), "health": ((23,), 13, None),
          "har": ((128, 6), 6, {"acc": [0, 1, 2], "gyro": [3, 4, 5]})}


def test_failout_is_identity_at_inference_and_whole_batch_in_training():
    layer = Failout(0.5, seed=1)
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32") + 10.0
    p = np.ones((32, 1), "float32")
    y, q = layer(x, p, training=False)
    np.testing.assert_array_equal(np.asarray(y), x)
    dropped = 0
    for _ in range(200):
        y, q = layer(x, p, training=True)
        y, q = np.asarray(y), np.asarray(q)
        # one draw per mini-batch: the whole batch is either kept exactly (no 1/p rescaling) or zero
        if q.min() == 0:
            assert q.max() == 0 and not y.any()
            dropped += 1
        else:
            np.testing.assert_array_equal(y, x)
    assert 70 < dropped < 130  # survival 0.5 over 200 batches


def test_mux_selects_by_presence_not_by_value():
    mux = Aggregate("mux", n_normal=1, weights=[1.0, 1.0])
    below = np.zeros((2, 3), "float32")          # a *present* tensor that happens to be all zero
    skip = np.full((2, 3), 7.0, "float32")
    out, present = mux([below, skip, np.ones((2, 1), "float32"), np.ones((2, 1), "float32")])
    np.testing.assert_array_equal(np.asarray(out), below)
    out, present = mux([np.full((2, 3), 5.0, "float32"), skip, np.array([[1.0], [0.0]], "float32"),
                        np.ones((2, 1), "float32")])
    np.testing.assert_array_equal(np.asarray(out), [[5, 5, 5], [7, 7, 7]])
    np.testing.assert_array_equal(np.asarray(present), [[1], [1]])


def test_sum_counts_missing_links_as_zero_and_applies_weights():
    agg = Aggregate("sum", n_normal=1, weights=[0.5, 2.0])
    a, b = np.full((1, 2), 4.0, "float32"), np.full((1, 2), 1.0, "float32")
    out, _ = agg([a, b, np.ones((1, 1), "float32"), np.ones((1, 1), "float32")])
    np.testing.assert_allclose(np.asarray(out), [[4.0, 4.0]])
    out, present = agg([a, b, np.zeros((1, 1), "float32"), np.ones((1, 1), "float32")])
    np.testing.assert_allclose(np.asarray(out), [[2.0, 2.0]])
    out, present = agg([a, b, np.zeros((1, 1), "float32"), np.zeros((1, 1), "float32")])
    assert not np.asarray(out).any() and np.asarray(present)[0, 0] == 0


@pytest.mark.parametrize("preset", sorted(SHAPES))
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_cloud_presence_agrees_with_the_path_test(preset, scheme):
    """The model's own presence propagation and the topology's graph path test give the same answer."""
    topo = load_topology(preset)
    shape, classes, groups = SHAPES[preset]
    sch = get_scheme(scheme)
    model = build_model(topo, sch, BuildOptions(shape, classes, groups))
    used = topo if sch.skips else topo.with_skips([])
    configs = topo.configurations()
    alive = np.array(configs, "float32")
    x = np.random.default_rng(0).normal(size=(len(configs),) + shape).astype("float32")
    out = model({"x": x, "alive": alive})
    present = np.asarray(out["present"]).ravel()
    for c, p in zip(configs, present):
        assert bool(p) == used.has_path(c), (c, p)


def test_vanilla_has_no_skip_parameters_and_other_schemes_share_a_graph():
    topo = load_topology("fashion")
    opts = BuildOptions((28, 28, 1), 10)
    models = {s: build_model(topo, SCHEMES[s], opts) for s in SCHEMES}
    counts = {s: m.count_params() for s, m in models.items()}
    projections = [l for l in models["dfg"].layers if l.name.startswith(("iot_to_fog_", "edge_to_cloud_"))]
    assert projections and not any(l.name.startswith(("iot_to_fog_", "edge_to_cloud_"))
                                   for l in models["vanilla"].layers)
    assert counts["dfg"] - counts["vanilla"] == sum(l.count_params() for l in projections)
    assert counts["dfg"] == counts["resilinet"] == counts["resilinet_plus"]


def test_failed_edge_silences_its_skip_and_mux_uses_the_iot_skip():
    """ResiliNet with the edge failed: the fog's input is the IoT skip, the cloud's skip from the edge is 0."""
    topo = load_topology("fashion")
    model = build_model(topo, SCHEMES["resilinet"], BuildOptions((28, 28, 1), 10))
    x = np.random.default_rng(1).random((4, 28, 28, 1)).astype("float32")
    probe = keras.Model(model.inputs, [model.get_layer("fog_aggregate").output[0],
                                       [l for l in model.layers if l.name.startswith("iot_to_fog_")][-1].output,
                                       model.get_layer("cloud_aggregate").output[0],
                                       model.get_layer("fog_failout").output[0]])
    fog_in, iot_skip, cloud_in, fog_out = probe({"x": x, "alive": np.array([[1, 0]] * 4, "float32")})
    np.testing.assert_allclose(np.asarray(fog_in), np.asarray(iot_skip), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(cloud_in), np.asarray(fog_out), rtol=1e-6)


def test_unknown_scheme_and_layer_are_named():
    with pytest.raises(ValueError, match="unknown scheme 'magic'"):
        get_scheme("magic")
    assert get_scheme("ResiliNet+").name == "resilinet_plus" and get_scheme("deepFogGuard").name == "dfg"
