"""Precise BatchNorm statistics (host/ml/batchnorm_stats.py): exact, failout off, nothing else disturbed."""
from __future__ import annotations

import numpy as np

import keras
from keras import layers as L

from host.ml.batchnorm_stats import failure_mixture, reestimate_batchnorm, statistics_batch
from host.ml.layers import Failout
from host.ml.link_codes import LinkCode


def _model():
    x = keras.Input((6,), name="x")
    alive = keras.Input((1,), name="alive")
    h = L.BatchNormalization(name="bn1")(L.Dense(8, name="d1")(x))
    h, present = Failout(0.5, seed=3, name="failout")(L.Activation("relu")(h), alive)
    h = LinkCode(2, name="code")(h)
    h = L.BatchNormalization(name="bn2")(L.Dense(5, name="d2")(h))
    return keras.Model({"x": x, "alive": alive}, L.Dense(3, name="out")(h))


def test_moving_statistics_become_the_failout_mixture_of_each_layer_input():
    """bn1 sits before the failout layer: its statistics are those of its input. bn2 sits after it: half the
    batches in training drop the node (survival 0.5), its input is then d2's bias alone, so its statistics are
    the even mixture of the alive input's and that constant's (mean of means, mean of variances, as Keras'
    moving averages of per-batch statistics converge to)."""
    model = _model()
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 6)) * 3 + 5).astype(np.float32)
    feed = {"x": x, "alive": np.ones((200, 1), np.float32)}
    model(statistics_batch(feed), training=True)  # calibrates the link code's range once
    code = model.get_layer("code")
    calib = [np.asarray(v).copy() for v in code.non_trainable_weights]
    seed_state = np.asarray(model.get_layer("failout").seed_generator.state).copy()
    for name in ("bn1", "bn2"):  # stale statistics, as after a short training
        model.get_layer(name).moving_mean.assign(np.full(model.get_layer(name).moving_mean.shape, 7.0))

    assert reestimate_batchnorm(model, feed)

    probe = keras.Model(model.inputs, [model.get_layer("bn1").input, model.get_layer("bn2").input])
    a1, a2 = (np.asarray(a, np.float64) for a in probe(feed, training=False))  # every node alive
    bias = np.asarray(model.get_layer("d2").bias, np.float64)
    bn1, bn2 = model.get_layer("bn1"), model.get_layer("bn2")
    np.testing.assert_allclose(bn1.moving_mean, a1.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn1.moving_variance, a1.var(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(bn2.moving_mean, 0.5 * a2.mean(0) + 0.5 * bias, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn2.moving_variance, 0.5 * a2.var(0), rtol=1e-3, atol=1e-4)
    assert bn1.momentum == bn2.momentum == 0.99
    assert model.get_layer("failout").survival == 0.5
    assert np.array_equal(np.asarray(model.get_layer("failout").seed_generator.state), seed_state)  # stream kept
    for var, before in zip(code.non_trainable_weights, calib):
        assert np.array_equal(np.asarray(var), before)


def test_failure_mixture_weights_cap_and_no_failout():
    mix = failure_mixture([0.9, 0.8])
    assert [a for a, _ in mix] == [(True, True), (True, False), (False, True), (False, False)]  # by probability
    np.testing.assert_allclose([w for _, w in mix], [0.72, 0.18, 0.08, 0.02])
    assert failure_mixture([1.0, 1.0]) == [((True, True), 1.0)]  # no failout: every node alive only
    big = failure_mixture([0.8] * 8)  # the camera's 8 failable nodes: the 16 most probable, renormalised
    assert len(big) == 16 and big[0][0] == (True,) * 8 and abs(sum(w for _, w in big) - 1.0) < 1e-12


def test_without_batchnorm_nothing_is_done():
    x = keras.Input((3,), name="x")
    model = keras.Model({"x": x}, L.Dense(2)(x))
    assert not reestimate_batchnorm(model, {"x": np.ones((4, 3), np.float32)})


def test_statistics_batch_is_the_first_samples_and_bounded_for_large_inputs():
    small = statistics_batch({"x": np.zeros((2000, 4), np.float32)})
    assert small["x"].shape[0] == 512
    large = statistics_batch({"x": np.zeros((600, 160, 160, 3), np.float32)})
    assert 32 <= large["x"].shape[0] < 600
