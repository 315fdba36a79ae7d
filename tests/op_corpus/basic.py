"""Op corpus, basic family: float I/O (QUANTIZE / DEQUANTIZE), TRANSPOSE, the int8 elementwise activations
(SUB, LEAKY_RELU, HARD_SWISH, LOGISTIC, TANH) and the shape ops (STRIDED_SLICE, PADV2, RESHAPE, SQUEEZE)."""
from __future__ import annotations

from . import Builder, convert_keras


def _float_io_cnn() -> bytes:
    """The converter's default I/O: float in (QUANTIZE to int8), float out (DEQUANTIZE from int8)."""
    import keras
    from keras import layers

    x = keras.Input((10, 10, 2), batch_size=1, name="image")
    y = layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    y = layers.MaxPool2D(2)(y)
    y = layers.Flatten()(y)
    y = layers.Dense(5)(y)
    return convert_keras(keras.Model(x, y), io="float", scale=2.0)


def _permute_nchw() -> bytes:
    """A PyTorch-style NCHW input: a leading TRANSPOSE to NHWC, a conv, Permute back (another TRANSPOSE), and
    a rank-3 permutation."""
    import keras
    from keras import layers

    x = keras.Input((3, 7, 6), batch_size=1, name="nchw")
    y = layers.Permute((2, 3, 1))(x)                       # NCHW -> NHWC
    y = layers.Conv2D(5, 3, padding="same", activation="relu")(y)
    z = layers.Permute((3, 1, 2))(y)                       # NHWC -> NCHW
    w = layers.Reshape((5, 42))(z)
    w = layers.Permute((2, 1))(w)
    return convert_keras(keras.Model(x, [z, w]))


def _activations() -> bytes:
    """SUB (with broadcasting), LEAKY_RELU, HARD_SWISH, LOGISTIC and TANH on int8."""
    import keras
    from keras import layers

    a = keras.Input((4, 4, 6), batch_size=1, name="a")
    b = keras.Input((1, 1, 6), batch_size=1, name="b")
    d = layers.Subtract()([a, keras.ops.broadcast_to(b, (1, 4, 4, 6))])
    d2 = keras.ops.subtract(a, b)
    leaky = layers.LeakyReLU(negative_slope=0.2)(d)
    hs = layers.Activation("hard_swish")(d2)
    sig = layers.Activation("sigmoid")(leaky)
    th = layers.Activation("tanh")(hs)
    return convert_keras(keras.Model([a, b], [sig, th, hs]), scale=2.0)


def _slices() -> bytes:
    """STRIDED_SLICE (begin/end/strides, shrink axis), PADV2 (non-zero pad value), RESHAPE and SQUEEZE."""
    import keras
    from keras import layers

    x = keras.Input((9, 8, 4), batch_size=1, name="x")
    s = x[:, 1:8:2, ::3, 1:]
    p = keras.ops.pad(s, ((0, 0), (1, 2), (0, 1), (0, 0)), constant_values=0.5)
    r = layers.Reshape((-1, 3))(p)
    c = x[:, 2, :, :]                                       # shrink axis 1
    q = keras.ops.squeeze(layers.Conv2D(1, 1)(x), axis=-1)
    return convert_keras(keras.Model(x, [r, c, q]))


MODELS: dict[str, Builder] = {
    "float_io_cnn": _float_io_cnn,
    "permute_nchw": _permute_nchw,
    "activations_s8": _activations,
    "slices_s8": _slices,
}
