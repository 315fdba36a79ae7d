"""How a low-bit link code picks its range (issue 19): the clipped range with the least quantization error,
0 on the grid, no gradient for clamped values, one trained range per group of links deployed with one scale,
and a cache key that tells such models apart from those trained with the old min/max range."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from host.ml.link_bits import range_groups
from host.ml.topology import load_topology

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "link_codes"


def _relu6_batch(seed: int = 0) -> np.ndarray:
    """A ReLU6-like link tensor: many zeros, most values small, a few near the top."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.exponential(0.7, size=(64, 7, 7, 8)), 0.0, 6.0)
    x[rng.random(x.shape) < 0.3] = 0.0
    return x.astype(np.float32)


def _calibrated(clip: str, bits: int, x: np.ndarray, steps: int = 4):
    from host.ml.link_codes import LinkCode

    layer = LinkCode(bits, clip=clip)
    for _ in range(steps):
        layer(x, training=True)
    return layer


@pytest.mark.parametrize("bits", [2, 4])
def test_mse_range_codes_the_tensor_closer_than_min_max(bits: int) -> None:
    x = _relu6_batch()
    err = {}
    for clip in ("minmax", "mse"):
        layer = _calibrated(clip, bits, x)
        y = np.asarray(layer(x, training=False))
        err[clip] = float(np.mean((y - x) ** 2))
        lo, hi = float(np.asarray(layer.lo)), float(np.asarray(layer.hi))
        assert lo == 0.0 and 0.0 < hi <= float(x.max()) + 1e-6
        assert len(np.unique(y)) <= 1 << bits and 0.0 in np.unique(y)  # 2^bits levels, 0 exact (missing = 0)
        assert np.all(y[x == 0.0] == 0.0)
        if clip == "mse":
            assert hi < 0.8 * float(x.max())  # clipped: the rare top values are not worth the grid
    assert err["mse"] < 0.7 * err["minmax"], err


def test_clamped_values_get_no_gradient_and_the_rest_pass_straight_through() -> None:
    import tensorflow as tf

    x = tf.constant(_relu6_batch())
    layer = _calibrated("mse", 2, x)
    hi = float(np.asarray(layer.hi))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x, training=True) * 3.0)
    g = tape.gradient(loss, x).numpy()
    xs = x.numpy()
    assert np.all(g[xs > hi + 1e-6] == 0.0) and np.all(g[xs <= hi] == 3.0)


def test_the_range_survives_saving_with_its_method(tmp_path: Path) -> None:
    import keras

    from host.ml.link_codes import LinkCode

    inp = keras.Input((7, 7, 8))
    model = keras.Model(inp, LinkCode(2, clip="mse", share="a->b", name="a_to_b_code")(inp))
    model.get_layer("a_to_b_code")(_relu6_batch(), training=True)
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras").get_layer("a_to_b_code")
    assert (back.clip, back.share, back.bits) == ("mse", "a->b", 2)
    assert float(np.asarray(back.hi)) == float(np.asarray(model.get_layer("a_to_b_code").hi)) > 0.0


def test_links_deployed_with_one_scale_train_one_range_group() -> None:
    groups = range_groups(load_topology(EXAMPLES / "fashion_compressed.toml").links)
    # the mux partners at fog and at cloud (normal link + skip) share; the bottlenecked first hop is alone
    assert groups["iot->fog"] == groups["edge->fog"] and groups["edge->cloud"] == groups["fog->cloud"]
    assert len({groups["iot->edge"], groups["edge->fog"], groups["fog->cloud"]}) == 3
    har = range_groups(load_topology(EXAMPLES / "har_compressed.toml").links)
    assert har["acc->edge"] == har["gyro->edge"]  # a concatenation's inputs
    assert har["acc->fog"] == har["gyro->fog"] == har["edge->fog"]


def test_shared_ranges_end_calibration_with_the_union() -> None:
    import keras

    from host.ml.link_codes import LinkCode, SharedRanges

    a_in, b_in = keras.Input((7, 7, 8)), keras.Input((7, 7, 8))
    a = LinkCode(2, clip="mse", calib_steps=2, share="g", name="a_to_c_code")
    b = LinkCode(2, clip="mse", calib_steps=2, share="g", name="b_to_c_code")
    model = keras.Model([a_in, b_in], [a(a_in), b(b_in)])
    tie = SharedRanges(model)
    assert len(tie.groups) == 1
    x = _relu6_batch()
    for _ in range(2):
        a(x, training=True)
        b(0.25 * x, training=True)  # a partner with a 4x narrower tensor
        tie.on_train_batch_end(0)
    assert tie.groups == []  # both frozen: nothing left to tie
    for layer in (a, b):
        assert float(np.asarray(layer.lo)) == float(np.asarray(a.lo))
        assert float(np.asarray(layer.hi)) == float(np.asarray(a.hi)) > 0.0
    a(x, training=True)  # frozen: a further step changes nothing
    assert float(np.asarray(a.hi)) == float(np.asarray(b.hi))


def test_models_with_coded_links_have_their_own_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from host.ml import train as T
    from host.ml.datasets import Dataset

    rng = np.random.default_rng(0)
    ds = Dataset(name="t", x_train=rng.random((8, 28, 28, 1), np.float32), y_train=np.arange(8) % 10,
                 x_val=rng.random((4, 28, 28, 1), np.float32), y_val=np.arange(4), x_test=np.zeros((1, 28, 28, 1)),
                 y_test=np.zeros(1, int), num_classes=10, class_names=[str(i) for i in range(10)])
    plain = load_topology(REPO / "host" / "ml" / "presets" / "fashion.toml")
    coded = load_topology(EXAMPLES / "fashion_compressed.toml")
    cfg = T.TrainConfig.from_topology(plain, scheme="resilinet")
    keys = (T.cache_key(plain, ds, cfg), T.cache_key(coded, ds, cfg))
    monkeypatch.setattr(T, "LINK_CODE_VERSION", T.LINK_CODE_VERSION - 1)
    assert T.cache_key(coded, ds, cfg) != keys[1]  # a change of how codes train retrains the coded network
    assert T.cache_key(plain, ds, cfg) == keys[0]  # and leaves the keys of networks without codes alone
