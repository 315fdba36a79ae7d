"""Exact failure evaluation: closed forms, caps, and that resilience is actually learned."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from host.ml.evaluate import config_predictor, evaluate_failures, summarize  # noqa: E402
from host.ml.experiments import load_for, train_and_evaluate  # noqa: E402
from host.ml.topology import load_topology  # noqa: E402
from host.ml.train import TrainConfig, build_for, train  # noqa: E402


@pytest.fixture(scope="module")
def health(health_npz):
    topo = load_topology("health")
    topo.dataset = {"name": "npz", "path": health_npz}
    return topo, load_for(topo)


@pytest.fixture(scope="module")
def health_evals(health):
    topo, ds = health
    return {s: train_and_evaluate(topo, ds, TrainConfig(scheme=s, epochs=4, batch_size=256), progress=False)
            for s in ("vanilla", "dfg", "resilinet", "resilinet_plus")}


def test_vanilla_average_is_exactly_the_closed_form(health, health_evals):
    topo, ds = health
    ev = health_evals["vanilla"]
    a0, g = ev.measured[-1], ev.random_guess
    assert g == pytest.approx(float(np.dot(ds.label_frequencies("train"), ds.label_frequencies("test"))))
    assert all(m is None for m in ev.measured[:-1])      # vanilla: any failure cuts the only path
    for st in topo.reliability:
        p_all = topo.config_probability((1, 1, 1), st)
        assert ev.average[st] == pytest.approx(p_all * a0 + (1 - p_all) * g, abs=1e-12)


def test_no_scheme_exceeds_the_path_probability_cap(health, health_evals):
    topo, _ = health
    for scheme, ev in health_evals.items():
        for st in topo.reliability:
            assert ev.average[st] <= ev.cap[st] + 1e-12, (scheme, st)
            assert ev.cap[st] <= ev.path_probability[st] * 1.0 + (1 - ev.path_probability[st]) * ev.random_guess + 1e-12


def test_resilient_schemes_survive_an_edge_failure(health, health_evals):
    """With the edge failed, ResiliNet routes IoT->fog2 through the skip; vanilla falls to guessing."""
    topo, _ = health
    edge_failed = topo.configurations().index((1, 1, 0))
    res, van = health_evals["resilinet"], health_evals["vanilla"]
    assert van.accuracy[edge_failed] == van.random_guess
    assert res.measured[edge_failed] > 0.8
    assert res.average["Hazardous"] > van.average["Hazardous"] + 0.2


def test_evaluation_and_training_are_deterministic(health):
    topo, ds = health
    cfg = TrainConfig(scheme="resilinet", epochs=1, batch_size=512, seed=5)
    a = train(topo, ds, cfg, progress=False, use_cache=False)
    b = train(topo, ds, cfg, progress=False, use_cache=False)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    ea = evaluate_failures(a.model, topo, "resilinet", ds)
    eb = evaluate_failures(b.model, topo, "resilinet", ds)
    assert ea.accuracy == eb.accuracy


def test_traced_predictor_equals_keras_predict_for_every_configuration(health):
    """The evaluation's one traced call per model gives exactly what Keras' predict gives, chunk by chunk (a
    batch size that leaves a partial last chunk)."""
    topo, ds = health
    model = train(topo, ds, TrainConfig(scheme="resilinet", epochs=1, batch_size=512, seed=5), progress=False).model
    x = ds.x_test[:300]
    predict = config_predictor(model, x, batch_size=128)
    for c in topo.configurations():
        probs, present = predict(c)
        ref = model.predict({"x": x, "alive": np.tile(np.asarray(c, np.float32), (len(x), 1))},
                            batch_size=128, verbose=0)
        np.testing.assert_array_equal(probs, ref["probs"])
        np.testing.assert_array_equal(present, ref["present"].reshape(-1))


def test_cache_returns_the_same_model(health):
    topo, ds = health
    cfg = TrainConfig(scheme="dfg", epochs=1, batch_size=512, seed=9)
    first = train(topo, ds, cfg, progress=False)
    again = train(topo, ds, cfg, progress=False)
    assert not first.cached and again.cached and again.key == first.key
    for wa, wb in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    other = TrainConfig(scheme="dfg", epochs=1, batch_size=512, seed=10)
    assert train(topo, ds, other, progress=False).key != first.key


def test_variable_failout_needs_a_setting(health):
    topo, ds = health
    with pytest.raises(ValueError, match="variable failout"):
        build_for(topo, ds, TrainConfig(failout_survival="variable"))


def test_summary_uses_sample_std(health_evals):
    ev = health_evals["resilinet"]
    import copy
    other = copy.deepcopy(ev)
    other.average = {k: v - 0.02 for k, v in ev.average.items()}
    s = summarize([ev, other])
    assert s.runs == 2
    assert s.std["Normal"] == pytest.approx(np.std([ev.average["Normal"], other.average["Normal"]], ddof=1))
