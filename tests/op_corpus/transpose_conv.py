"""Op corpus, TRANSPOSE_CONV family (keras Conv2DTranspose): a decoder, and the edge cases of the op.

Untrained Keras layers have zero biases, which the converter drops; layers that must keep their bias input
get a random one. The converter fuses a following RELU / RELU6 into TRANSPOSE_CONV only when it has a bias.
"""
from __future__ import annotations

from . import Builder, convert_keras


def _decoder() -> bytes:
    """An autoencoder's decoder: Dense -> Reshape -> two stride-2 SAME Conv2DTranspose (fused RELU) -> Conv2D.
    Its batch size is left dynamic, as users write it: the converter then computes each TRANSPOSE_CONV's
    output_shape with SHAPE -> STRIDED_SLICE -> PACK, which TFLM ignores and codegen leaves out."""
    import keras
    from keras import layers

    z = keras.Input((12,), name="code")
    y = layers.Dense(4 * 4 * 8, activation="relu")(z)
    y = layers.Reshape((4, 4, 8))(y)
    y = layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu",
                               bias_initializer="random_normal")(y)
    y = layers.Conv2DTranspose(5, 3, strides=2, padding="same", activation="relu",
                               bias_initializer="random_normal")(y)
    y = layers.Conv2D(1, 3, padding="same", name="image")(y)
    return convert_keras(keras.Model(z, y))


def _edges() -> bytes:
    """Stride 1 with an even kernel, VALID with output_padding and no bias, anisotropic kernel and stride,
    a kernel smaller than its stride (outputs no tap reaches: bias only), fused RELU6, odd channel counts
    (DSP tails), more than 16 input channels (Arm's wrapper would take its reverse convolution: its second
    scratch buffer is planned), a 1x1 kernel, and 70 input channels (our kernel widens 64 at a time)."""
    import keras
    from keras import layers

    rnd = "random_normal"
    x = keras.Input((5, 6, 3), batch_size=1, name="x")
    s1 = layers.Conv2DTranspose(6, 2, strides=1, padding="same", bias_initializer=rnd)(x)
    valid = layers.Conv2DTranspose(5, 3, strides=2, padding="valid", output_padding=1, use_bias=False)(s1)
    aniso = layers.Conv2DTranspose(20, (3, 2), strides=(2, 1), padding="same", activation="relu6",
                                   bias_initializer=rnd)(x)
    gaps = layers.Conv2DTranspose(7, 2, strides=3, padding="valid", bias_initializer=rnd)(aniso)
    wide = layers.Conv2DTranspose(4, 3, strides=2, padding="same", bias_initializer=rnd)(aniso)
    deep = layers.Conv2DTranspose(70, 1, padding="valid", bias_initializer=rnd)(x)
    chunked = layers.Conv2DTranspose(3, 3, strides=2, padding="same", bias_initializer=rnd)(deep)
    return convert_keras(keras.Model(x, [valid, gaps, wide, chunked]), scale=2.0)


MODELS: dict[str, Builder] = {
    "tconv_decoder": _decoder,
    "tconv_edges": _edges,
}
