"""Op corpus, 16x8 family: models quantized with int16 activations and int8 weights (the converter's
EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 scheme, int16 I/O): CONV_2D (SAME/VALID, stride,
dilation, 1x1, fused RELU/RELU6), DEPTHWISE_CONV_2D (multiplier 2, stride), FULLY_CONNECTED (per-channel),
ADD, MUL (also broadcast), AVERAGE/MAX_POOL_2D, SOFTMAX (one and several rows), LOGISTIC, TANH, standalone
RELU / RELU6, RESHAPE, and QUANTIZE int16 <-> int16 / int8."""
from __future__ import annotations

from . import Builder, convert_keras


def _cnn_16x8() -> bytes:
    """Two branches (conv + RELU, depthwise x2 + RELU6) added and multiplied, both pools, a 1x1 conv, then
    dense layers through TANH and LOGISTIC into a softmax."""
    import keras
    from keras import layers

    x = keras.Input((8, 8, 3), batch_size=1, name="image")
    a = layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    b = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6")(x)
    s = layers.Add()([a, b])
    m = layers.Multiply()([s, a])
    p = layers.MaxPool2D(2)(m)
    q = layers.AveragePooling2D(2, strides=1, padding="same")(p)
    c = layers.Conv2D(4, 1)(q)
    f = layers.Flatten()(c)
    d = layers.Activation("tanh")(layers.Dense(12)(f))
    g = layers.Activation("sigmoid")(layers.Dense(10)(d))
    y = layers.Softmax()(layers.Dense(5)(g))
    return convert_keras(keras.Model(x, y), io="int16", activations="int16")


def _strided_16x8() -> bytes:
    """Strided and dilated windows, VALID padding, a broadcast MUL, standalone RELU / RELU6 after a reshape,
    and a softmax over several rows; two outputs."""
    import keras
    from keras import layers

    x = keras.Input((11, 11, 4), batch_size=1, name="x")
    y = layers.Conv2D(8, 3, strides=2, padding="valid")(x)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(y)
    z = layers.Conv2D(8, 3, padding="same", dilation_rate=2)(x)
    z = layers.AveragePooling2D(3, strides=2, padding="valid")(z)
    w = layers.MaxPool2D(3, strides=2, padding="same")(z)
    gate = layers.Conv2D(8, 3, strides=3, padding="valid")(w)          # [1, 1, 1, 8]: broadcast over H, W
    v = layers.Multiply()([w, gate])
    r = layers.Reshape((3, 24))(v)
    relu = layers.ReLU()(r)
    relu6 = layers.ReLU(max_value=6.0)(r)
    head = layers.Softmax()(layers.Dense(6)(relu6))
    return convert_keras(keras.Model(x, [head, relu, y]), io="int16", activations="int16", scale=2.0)


def _requantize_16x8() -> bytes:
    """QUANTIZE int16 -> int16 (rescale), int16 -> int8 and int8 -> int16 (a hand-written flatbuffer: the
    converter only writes these around ops that keep int8), chained; every intermediate is an output."""
    import tempfile
    from pathlib import Path

    from codegen_models import TinyModel

    m = TinyModel()
    quantize = m.schema.BuiltinOperator.QUANTIZE
    x = m.tensor("x16", [1, 4, 6], dtype="int16", scale=0.0011, zero_point=0)
    y = m.tensor("rescaled16", [1, 4, 6], dtype="int16", scale=0.0007, zero_point=0)
    z = m.tensor("narrowed8", [1, 4, 6], dtype="int8", scale=0.09, zero_point=3)
    w = m.tensor("widened16", [1, 4, 6], dtype="int16", scale=0.0005, zero_point=0)
    m.op(quantize, [x], [y])
    m.op(quantize, [y], [z])
    m.op(quantize, [z], [w])
    with tempfile.TemporaryDirectory() as tmp:
        return m.save(Path(tmp) / "requantize_16x8.tflite", [x], [y, z, w]).read_bytes()


def _constants_16x8() -> bytes:
    """MUL by a constant int16 tensor (a flash array) broadcast over width and channels, and ADD of two
    activations broadcast along the channel axis (the converter folds the constant ADD into the conv bias
    and merges the two equal sums into one output)."""
    import keras
    import numpy as np
    from keras import layers

    x = keras.Input((5, 5, 6), batch_size=1, name="x")
    rng = np.random.default_rng(16)
    c = layers.Conv2D(6, 3, padding="same")(x)
    shifted = keras.ops.add(c, rng.normal(0.0, 0.5, size=(1, 1, 6)).astype(np.float32))
    scaled = keras.ops.multiply(shifted, rng.uniform(0.5, 1.5, size=(5, 1, 1)).astype(np.float32))
    column = layers.Conv2D(1, 1)(x)                                      # [1, 5, 5, 1]
    mixed = layers.Add()([scaled, keras.ops.broadcast_to(column, (1, 5, 5, 6))])
    both = keras.ops.add(scaled, column)
    return convert_keras(keras.Model(x, [mixed, both]), io="int16", activations="int16")


def _wide_16x8() -> bytes:
    """Long sums: a conv of 3x3x64 = 576 taps per output and a 17x17 depthwise window (289 taps), beyond the
    256 products the kernels add in 32 bits before widening to 64."""
    import keras
    from keras import layers

    x = keras.Input((17, 17, 2), batch_size=1, name="x")
    d = layers.DepthwiseConv2D(17, padding="same")(x)                 # windows of up to 289 taps
    c = layers.Conv2D(64, 1)(layers.AveragePooling2D(3)(x))           # [1, 5, 5, 64]
    y = layers.Conv2D(4, 3, padding="valid")(c)                       # 576 taps per output
    return convert_keras(keras.Model(x, [d, y]), io="int16", activations="int16", scale=3.0)


MODELS: dict[str, Builder] = {
    "cnn_16x8": _cnn_16x8,
    "strided_16x8": _strided_16x8,
    "requantize_16x8": _requantize_16x8,
    "constants_16x8": _constants_16x8,
    "wide_16x8": _wide_16x8,
}
