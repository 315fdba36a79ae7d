"""Precise BatchNorm statistics (host/ml/batchnorm_stats.py): exact, failout off, nothing else disturbed."""
from __future__ import annotations

import numpy as np

import keras
from keras import layers as L

from host.ml.batchnorm_stats import reestimate_batchnorm, statistics_batch
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


def test_moving_statistics_become_those_of_each_layer_input_in_inference():
    model = _model()
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 6)) * 3 + 5).astype(np.float32)
    feed = {"x": x, "alive": np.ones((200, 1), np.float32)}
    model(statistics_batch(feed), training=True)  # calibrates the link code's range once
    code = model.get_layer("code")
    calib = [np.asarray(v).copy() for v in code.non_trainable_weights]
    seed_state = np.asarray(model.get_layer("failout")._seed_gen.state).copy()
    for name in ("bn1", "bn2"):  # stale statistics, as after a short training
        model.get_layer(name).moving_mean.assign(np.full(model.get_layer(name).moving_mean.shape, 7.0))

    assert reestimate_batchnorm(model, feed)

    probe = keras.Model(model.inputs, [model.get_layer("bn1").input, model.get_layer("bn2").input])
    a1, a2 = probe(feed, training=False)  # inference: bn1's new statistics feed bn2's input
    for name, a in (("bn1", a1), ("bn2", a2)):
        layer = model.get_layer(name)
        np.testing.assert_allclose(layer.moving_mean, np.mean(a, 0), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.moving_variance, np.var(a, 0), rtol=1e-3, atol=1e-4)
        assert layer.momentum == 0.99
    assert model.get_layer("failout").survival == 0.5
    assert np.array_equal(np.asarray(model.get_layer("failout")._seed_gen.state), seed_state)  # no draw taken
    for var, before in zip(code.non_trainable_weights, calib):
        assert np.array_equal(np.asarray(var), before)


def test_without_batchnorm_nothing_is_done():
    x = keras.Input((3,), name="x")
    model = keras.Model({"x": x}, L.Dense(2)(x))
    assert not reestimate_batchnorm(model, {"x": np.ones((4, 3), np.float32)})


def test_statistics_batch_is_the_first_samples_and_bounded_for_large_inputs():
    small = statistics_batch({"x": np.zeros((2000, 4), np.float32)})
    assert small["x"].shape[0] == 512
    large = statistics_batch({"x": np.zeros((600, 160, 160, 3), np.float32)})
    assert 32 <= large["x"].shape[0] < 600
