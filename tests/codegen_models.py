"""Small int8 models for the code generator tests.

Keras models are built and converted with TensorFlow's TFLiteConverter (full-integer int8, fixed batch
1, representative data yielded as dicts keyed by input name). A few ops the converter rarely emits on
its own (int8->int8 QUANTIZE, PADV2, SQUEEZE, EXPAND_DIMS, MEAN variants) are written directly as
flatbuffers with the TFLite schema bindings.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# ------------------------------------------------------------------------------------------ Keras models


def _convert(model: Any, quantize: bool = True, samples: int = 48) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        names = [t.name for t in model.inputs]
        shapes = [tuple(t.shape[1:]) for t in model.inputs]

        def representative() -> Any:
            rng = np.random.default_rng(0)
            for _ in range(samples):
                # Dicts by input name: TFLite reorders inputs, a list would be fed in its order.
                yield {n: rng.normal(0.0, 1.0, size=(1, *s)).astype(np.float32) for n, s in zip(names, shapes)}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def _conv_stack() -> Any:
    """Convolutions of every flavour: SAME/VALID, stride 2, 1x1, dilation, depthwise x2, pools, FC, softmax."""
    import keras
    from keras import layers

    x = keras.Input((15, 15, 3), batch_size=1, name="image")
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(12, 3, strides=2, padding="valid", activation="relu6")(y)
    y = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu")(y)
    y = layers.DepthwiseConv2D(3, strides=2, padding="valid")(y)
    y = layers.Conv2D(16, 1, activation="relu")(y)
    y = layers.Conv2D(16, 3, padding="same", dilation_rate=2)(y)
    y = layers.MaxPool2D(2, padding="same")(y)
    y = layers.AveragePooling2D(2, strides=1, padding="same")(y)
    y = layers.Flatten()(y)
    y = layers.Dense(10)(y)
    y = layers.Softmax()(y)
    return keras.Model(x, y)


def _two_inputs() -> Any:
    """Two inputs and two outputs: ADD of the inputs, CONCATENATION with an input, standalone RELU6,
    global average pooling (MEAN without keep_dims) and MEAN with keep_dims (TFLM's integer path)."""
    import keras
    from keras import layers

    a = keras.Input((8, 8, 4), batch_size=1, name="alpha")
    b = keras.Input((8, 8, 4), batch_size=1, name="beta")
    s = layers.Add()([a, b])
    c = layers.Conv2D(6, 3, padding="same")(s)
    cat = layers.Concatenate()([a, c])
    r = layers.ReLU(max_value=6.0)(cat)
    g = layers.GlobalAveragePooling2D()(r)
    d = layers.Dense(5, name="logits")(g)
    g2 = layers.GlobalAveragePooling2D(keepdims=True)(c)
    return keras.Model([a, b], [d, g2])


def _broadcast_pad() -> Any:
    """Standalone RELU on an input, PAD, broadcast MUL of two inputs, MEAN over channels, BatchNorm
    after pooling (MUL + ADD with per-channel constants)."""
    import keras
    from keras import layers

    x = keras.Input((9, 9, 3), batch_size=1, name="img")
    gain = keras.Input((1, 1, 4), batch_size=1, name="gain")
    r = layers.ReLU()(x)
    p = layers.ZeroPadding2D(((1, 2), (2, 1)))(r)
    c = layers.Conv2D(4, 3, padding="valid")(p)
    m = keras.ops.multiply(c, gain)
    per_pixel = keras.ops.mean(m, axis=-1, keepdims=True)
    g = layers.GlobalAveragePooling2D()(m)
    bn = layers.BatchNormalization(beta_initializer="ones", gamma_initializer="random_uniform",
                                   moving_mean_initializer="random_normal")(g)
    return keras.Model([x, gain], [bn, per_pixel])


def _concat_axes() -> Any:
    """CONCATENATION along H, W and C, 1x1 convolutions, a ReLU-fused 1x1, a 5x5 depthwise on 6 channels."""
    import keras
    from keras import layers

    x = keras.Input((6, 6, 2), batch_size=1, name="x")
    c1 = layers.Conv2D(3, 1)(x)
    c2 = layers.Conv2D(3, 3, padding="same")(x)
    h = layers.Concatenate(axis=1)([c1, c2])
    w = layers.Concatenate(axis=2)([c1, layers.Conv2D(3, 1, activation="relu")(x)])
    y = layers.Conv2D(2, 1)(w)
    # Depthwise on 6 channels: one 4-channel SIMD block plus a 2-channel tail; 5x5 window, padding 2.
    z = layers.DepthwiseConv2D(5, padding="same", activation="relu")(layers.Concatenate()([c1, c2]))
    return keras.Model(x, [h, y, z])


def _tanh_head() -> Any:
    """Two Dense layers, the second with tanh (converted unquantized: the float-model test)."""
    import keras
    from keras import layers

    x = keras.Input((16,), batch_size=1, name="features")
    y = layers.Dense(8, activation="relu")(x)
    y = layers.Dense(4, activation="tanh")(y)
    return keras.Model(x, y)


KERAS_MODELS: dict[str, Callable[[], Any]] = {
    "conv_stack": _conv_stack,
    "two_inputs": _two_inputs,
    "broadcast_pad": _broadcast_pad,
    "concat_axes": _concat_axes,
}


def build_keras_models(out_dir: Path) -> dict[str, Path]:
    """Convert every Keras test model (plus a float one) into ``out_dir``; returns name -> path."""
    import keras

    keras.utils.set_random_seed(1234)
    paths = {}
    for name, build in KERAS_MODELS.items():
        path = out_dir / f"{name}.tflite"
        path.write_bytes(_convert(build()))
        paths[name] = path
    float_path = out_dir / "float_mlp.tflite"
    float_path.write_bytes(_convert(_tanh_head(), quantize=False))
    paths["float_mlp"] = float_path
    return paths


# ------------------------------------------------------------------------------- hand-written flatbuffers


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


class TinyModel:
    """Builds a one-subgraph .tflite from tensors and builtin ops (enough for single-op test models)."""

    def __init__(self) -> None:
        self.schema = _schema()
        self.tensors: list[Any] = []
        self.buffers: list[Any] = [self.schema.BufferT()]  # buffer 0 is the empty sentinel
        self.ops: list[Any] = []
        self.opcodes: list[int] = []

    def tensor(self, name: str, shape: list[int], dtype: str = "int8", scale: float | None = None,
               zero_point: int = 0, data: np.ndarray | None = None) -> int:
        s = self.schema
        t = s.TensorT()
        t.name = name
        t.shape = np.asarray(shape, dtype=np.int32)
        t.type = {"int8": s.TensorType.INT8, "int16": s.TensorType.INT16, "int32": s.TensorType.INT32,
                  "float32": s.TensorType.FLOAT32}[dtype]
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = np.asarray([scale], dtype=np.float32)
            q.zeroPoint = np.asarray([zero_point], dtype=np.int64)
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, builtin: int, inputs: list[int], outputs: list[int], options_type: int = 0,
           options: Any = None) -> None:
        s = self.schema
        if builtin not in self.opcodes:
            self.opcodes.append(builtin)
        o = s.OperatorT()
        o.opcodeIndex = self.opcodes.index(builtin)
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.ops.append(o)

    def save(self, path: Path, inputs: list[int], outputs: list[int]) -> Path:
        import flatbuffers

        s = self.schema
        sg = s.SubGraphT()
        sg.tensors = self.tensors
        sg.operators = self.ops
        sg.inputs = np.asarray(inputs, dtype=np.int32)
        sg.outputs = np.asarray(outputs, dtype=np.int32)
        sg.name = "main"
        model = s.ModelT()
        model.version = 3
        model.subgraphs = [sg]
        model.buffers = self.buffers
        codes = []
        for builtin in self.opcodes:
            c = s.OperatorCodeT()
            c.builtinCode = builtin
            c.deprecatedBuiltinCode = min(builtin, 127)
            c.version = 1
            codes.append(c)
        model.operatorCodes = codes
        model.description = "resilinet codegen test"
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        path.write_bytes(bytes(builder.Output()))
        return path


def build_tiny_models(out_dir: Path) -> dict[str, Path]:
    """Single-op models for ops and options the Keras converter does not produce here."""
    s = _schema()
    op = s.BuiltinOperator
    paths: dict[str, Path] = {}

    # int8 -> int8 QUANTIZE (requantize), then SQUEEZE and EXPAND_DIMS aliases on the way out.
    m = TinyModel()
    x = m.tensor("x", [1, 4, 5, 3], scale=0.05, zero_point=7)
    q = m.tensor("requantized", [1, 4, 5, 3], scale=0.021, zero_point=-20)
    sq = m.tensor("squeezed", [4, 5, 3], scale=0.021, zero_point=-20)
    ex = m.tensor("expanded", [4, 5, 1, 3], scale=0.021, zero_point=-20)
    axis = m.tensor("axis", [1], dtype="int32", data=np.asarray([2], dtype=np.int32))
    m.op(op.QUANTIZE, [x], [q])
    sq_opts = s.SqueezeOptionsT()
    sq_opts.squeezeDims = np.asarray([0], dtype=np.int32)
    m.op(op.SQUEEZE, [q], [sq], s.BuiltinOptions.SqueezeOptions, sq_opts)
    m.op(op.EXPAND_DIMS, [sq, axis], [ex], s.BuiltinOptions.ExpandDimsOptions, s.ExpandDimsOptionsT())
    paths["quantize_alias"] = m.save(out_dir / "quantize_alias.tflite", [x], [ex])

    # PADV2 with an explicit pad value, MEAN over H only (requantizing path), MEAN over W and C (negative axis)
    # with the same quantization in and out (truncating path), and a graph output that is also read later.
    m = TinyModel()
    x = m.tensor("x", [1, 5, 4, 6], scale=0.1, zero_point=3)
    pads = m.tensor("pads", [4, 2], dtype="int32", data=np.asarray([[0, 0], [2, 1], [0, 3], [1, 0]], dtype=np.int32))
    value = m.tensor("pad_value", [], scale=0.1, zero_point=3, data=np.asarray([-77], dtype=np.int8))
    padded = m.tensor("padded", [1, 8, 7, 7], scale=0.1, zero_point=3)
    ax_h = m.tensor("axis_h", [1], dtype="int32", data=np.asarray([1], dtype=np.int32))
    mean_h = m.tensor("mean_h", [1, 7, 7], scale=0.037, zero_point=-11)
    ax_wc = m.tensor("axis_wc", [2], dtype="int32", data=np.asarray([-1, 2], dtype=np.int32))
    mean_wc = m.tensor("mean_wc", [1, 8, 1, 1], scale=0.1, zero_point=3)
    m.op(op.PADV2, [x, pads, value], [padded], s.BuiltinOptions.PadV2Options, s.PadV2OptionsT())
    red = s.ReducerOptionsT()
    red.keepDims = False
    m.op(op.MEAN, [padded, ax_h], [mean_h], s.BuiltinOptions.ReducerOptions, red)
    red_keep = s.ReducerOptionsT()
    red_keep.keepDims = True
    m.op(op.MEAN, [padded, ax_wc], [mean_wc], s.BuiltinOptions.ReducerOptions, red_keep)
    paths["pad_mean"] = m.save(out_dir / "pad_mean.tflite", [x], [mean_h, padded, mean_wc])

    # A model input reshaped straight into an output (the reshape must become a copy) and the input itself
    # listed as a second output (copied at the end).
    m = TinyModel()
    x = m.tensor("x", [1, 2, 3, 4], scale=0.5, zero_point=-1)
    shape = m.tensor("shape", [2], dtype="int32", data=np.asarray([6, 4], dtype=np.int32))
    y = m.tensor("flat", [6, 4], scale=0.5, zero_point=-1)
    opts = s.ReshapeOptionsT()
    opts.newShape = np.asarray([6, 4], dtype=np.int32)
    m.op(op.RESHAPE, [x, shape], [y], s.BuiltinOptions.ReshapeOptions, opts)
    paths["reshape_io"] = m.save(out_dir / "reshape_io.tflite", [x], [y, x])

    # An op without a lowering (int8 EXP) at op #2, after two supported ones: the unsupported-op tests.
    m = TinyModel()
    x = m.tensor("features", [1, 16], scale=0.05, zero_point=-3)
    r1 = m.tensor("relu_1", [1, 16], scale=0.05, zero_point=-3)
    r2 = m.tensor("relu_2", [1, 16], scale=0.05, zero_point=-3)
    e = m.tensor("model/exp/Exp", [1, 16], scale=0.1, zero_point=-128)
    m.op(op.RELU, [x], [r1])
    m.op(op.RELU, [r1], [r2])
    m.op(op.EXP, [r2], [e])
    paths["unsupported_op"] = m.save(out_dir / "unsupported_op.tflite", [x], [e])
    return paths
