"""Per-node split, int8 conversion with one scale per link, and the split network's failure semantics."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from host.ml.schemes import BuildOptions, build_model, get_scheme  # noqa: E402
from host.ml.split import (PartitionError, keras_runner, link_weights_of, node_models,  # noqa: E402
                            plan_partition, run_split, sensor_features)
from host.ml.evaluate import predict_config  # noqa: E402
from host.deploy.quantize import calibrate, check_links, quantize_nodes, tflm_runner  # noqa: E402
from host.ml.topology import load_topology  # noqa: E402

SHAPES = {"fashion": ((28, 28, 1), 10, None), "health": ((23,), 13, None),
          "har": ((128, 6), 6, {"acc": [0, 1, 2], "gyro": [3, 4, 5]}),
          "cifar_mobilenet": ((32, 32, 3), 10, None), "cifar_resnet": ((32, 32, 3), 10, None),
          "nonn": ((28, 28, 1), 10, None)}


def _setup(preset: str, scheme: str, seed: int = 0):
    topo = load_topology(preset)
    shape, classes, groups = SHAPES[preset]
    full = build_model(topo, get_scheme(scheme), BuildOptions(shape, classes, groups, seed=seed))
    plans = plan_partition(topo, scheme, feature_groups=groups, link_weights=link_weights_of(full, topo, scheme))
    models = node_models(full, topo, scheme, plans, input_shape=shape, num_classes=classes)
    x = np.random.default_rng(seed).random((12,) + shape).astype(np.float32)
    return topo, full, plans, models, x


@pytest.mark.parametrize("preset,scheme", [("fashion", "resilinet"), ("fashion", "dfg"), ("fashion", "vanilla"),
                                           ("har", "resilinet"), ("har", "resilinet_plus"),
                                           ("health", "resilinet"), ("health", "dfg"), ("nonn", "distill")])
def test_float_split_equals_the_whole_network_in_every_configuration(preset, scheme):
    topo, full, plans, models, x = _setup(preset, scheme)
    used = topo if get_scheme(scheme).skips else topo.with_skips([])
    for c in topo.configurations():
        run = run_split(plans, keras_runner(models), sensor_features(plans, x), topo.alive_map(c),
                        zero=lambda n, s: np.zeros((len(x),) + s.shape, np.float32))
        assert (run.result is not None) == used.has_path(c), c
        if run.result is not None:
            probs, _ = predict_config(full, x, c)
            np.testing.assert_allclose(run.result, probs, atol=1e-5)


def test_plans_name_links_and_put_projections_on_the_sender():
    topo = load_topology("fashion")
    plans = plan_partition(topo, "resilinet")
    assert [o.name for o in plans["iot"].outputs] == ["iot_out", "iot_to_fog"]
    assert plans["fog"].aggregation == "mux"
    assert (plans["fog"].inputs[0].primary, plans["fog"].inputs[0].fallback) == ("edge->fog", "iot->fog")
    sums = plan_partition(topo, "dfg")
    assert [s.primary for s in sums["fog"].inputs] == ["edge->fog", "iot->fog"]
    har = plan_partition(load_topology("har"), "resilinet", feature_groups=SHAPES["har"][2])
    assert [(s.primary, s.fallback) for s in har["fog"].inputs] == [("edge->fog", "acc->fog"), (None, "gyro->fog")]
    assert har["acc"].features == [0, 1, 2] and har["edge"].aggregation == "concat"


def test_mux_with_unequal_weights_and_passthrough_nodes_are_refused():
    topo = load_topology("fashion")
    with pytest.raises(PartitionError, match="pointer choice"):
        plan_partition(topo, "resilinet", link_weights={"edge->fog": 0.5, "iot->fog": 0.7})
    with pytest.raises(PartitionError, match="computes nothing"):
        plan_partition(load_topology("health"), "vanilla")


@pytest.mark.parametrize("preset,scheme", [(p, s) for p in ("fashion", "har", "health")
                                           for s in ("vanilla", "dfg", "resilinet", "resilinet_plus")
                                           if not (p == "health" and s == "vanilla")]
                         + [("cifar_mobilenet", "resilinet"), ("cifar_resnet", "resilinet"), ("nonn", "distill")])
def test_every_link_has_one_scale_and_zero_point_at_both_ends(preset, scheme):
    topo, full, plans, models, x = _setup(preset, scheme)
    shape, classes, _ = SHAPES[preset]
    batch1 = node_models(full, topo, scheme, plans, input_shape=shape, num_classes=classes, batch_size=1)
    quant, links = quantize_nodes(plans, batch1, calibrate(plans, models, topo, x[:6]))
    assert check_links(plans, quant) == []
    for plan in plans.values():
        if plan.aggregation == "mux":   # mux partners share parameters: the mux is a pointer choice
            assert links[plan.inputs[0].primary] == links[plan.inputs[0].fallback]
        for o in plan.outputs:
            assert len({links[l] for l in o.links}) <= 1


def test_int8_split_feeds_the_skip_bytes_unchanged_and_zero_points_for_missing_links():
    for scheme in ("resilinet", "dfg"):
        topo, full, plans, models, x = _setup("fashion", scheme, seed=3)
        batch1 = node_models(full, topo, scheme, plans, input_shape=(28, 28, 1), num_classes=10, batch_size=1)
        quant, links = quantize_nodes(plans, batch1, calibrate(plans, models, topo, x))
        run = tflm_runner(quant, plans)
        sensor = {"iot": quant["iot"].inputs["iot_features"].quantize(x[:3])}
        zero = lambda n, s: np.full((3,) + s.shape, quant[n].inputs[s.name].zero_point, np.int8)  # noqa: E731
        r = run_split(plans, run, sensor, topo.alive_map((1, 0)), zero=zero)    # edge failed
        fog_in = r.inputs["fog"]
        iot_to_fog = r.outputs["iot"]["iot_to_fog"]
        if scheme == "resilinet":
            assert r.mux_choice["fog"] == "fallback"
            np.testing.assert_array_equal(fog_in[0], iot_to_fog)
        else:
            np.testing.assert_array_equal(fog_in[0], np.full_like(fog_in[0], links["edge->fog"].zero_point))
            np.testing.assert_array_equal(fog_in[1], iot_to_fog)
        assert r.result is not None and r.result.dtype == np.int8


def test_distilled_aggregator_averages_the_replicas_that_arrived():
    """Preset nonn: part j = mean of the replicas of part j that arrived (float: mean; int8: the mean of the
    codes, rounded half away from zero, as the boards compute it), zero only when none arrived."""
    from host.ml.split import average_replicas

    topo, full, plans, models, x = _setup("nonn", "distill", seed=2)
    agg = plans["aggregator"]
    assert agg.aggregation == "average"
    assert [s.replicas for s in agg.inputs] == [["student0->aggregator", "student2->aggregator"],
                                                 ["student1->aggregator", "student3->aggregator"]]
    runner = keras_runner(models)
    zero = lambda n, s: np.zeros((len(x),) + s.shape, np.float32)  # noqa: E731
    alive = topo.alive_map((1, 1, 0, 0))  # part 0 has student0 only, part 1 student1 only
    r = run_split(plans, runner, sensor_features(plans, x), alive, zero=zero)
    np.testing.assert_array_equal(r.inputs["aggregator"][0], r.outputs["student0"]["student0_out"])
    r = run_split(plans, runner, sensor_features(plans, x), topo.alive_map((1, 0, 1, 0)), zero=zero)
    want = (r.outputs["student0"]["student0_out"] + r.outputs["student2"]["student2_out"]) / 2
    np.testing.assert_allclose(r.inputs["aggregator"][0], want, rtol=1e-6)
    np.testing.assert_array_equal(r.inputs["aggregator"][1], 0.0)   # both replicas of part 1 failed
    q = [np.array([[-3, -2, 3, 2, 127, -128]], np.int8), np.array([[0, 1, 0, -1, 126, -127]], np.int8)]
    np.testing.assert_array_equal(average_replicas(q), [[-2, -1, 2, 1, 127, -128]])
    q.append(np.array([[1, 1, 1, 1, 127, -128]], np.int8))
    np.testing.assert_array_equal(average_replicas(q), [[-1, 0, 1, 1, 127, -128]])
