"""Op corpus, recurrent family: UNIDIRECTIONAL_SEQUENCE_LSTM (a plain LSTM, and a GRU-free keyword spotter with a
convolutional front end) and a streaming SVDF.

The LSTMs are tf_keras (Keras 2) layers: TensorFlow's converter fuses that LSTM into UNIDIRECTIONAL_SEQUENCE_LSTM
when the batch is fixed and unroll=False, while Keras 3's LSTM becomes a WHILE loop. The converter has no
Keras layer that becomes SVDF, so that model is written as a flatbuffer (tests/codegen_models.py's TinyModel).
Their hidden/cell (LSTM) and activation (SVDF) state persist between invocations, as in TFLM: the corpus test
runs its samples in a row on one interpreter and one module, so every sample after the first checks that the
state carried over bit-exactly.
"""
from __future__ import annotations

from . import Builder, convert_keras


def _tf_keras():
    import tf_keras

    # The corpus seeds Keras 3; tf_keras has its own seed functions, and its own layer-name counters (cleared
    # so that a model's tensor names, hence its bytes, do not depend on which models were built before it).
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(18)
    return tf_keras


def _lstm() -> bytes:
    """A sequence classifier: LSTM over 8 steps of 6 features (all hidden states kept) -> Dense."""
    keras = _tf_keras()
    x = keras.Input((8, 6), batch_size=1, name="sequence")
    h = keras.layers.LSTM(12, return_sequences=True, unroll=False)(x)
    y = keras.layers.Dense(4, name="scores")(keras.layers.Flatten()(h))
    return convert_keras(keras.Model(x, y), scale=1.0)


def _kws_lstm() -> bytes:
    """A GRU-free recurrent keyword spotter: 2-D conv over 20 MFCC frames x 10 coefficients (stride 2 in time),
    the frames flattened into a sequence, an LSTM whose last hidden state (the converter slices it out of the
    sequence: STRIDED_SLICE) feeds a softmax over 4 keywords."""
    keras = _tf_keras()
    x = keras.Input((20, 10, 1), batch_size=1, name="mfcc")
    c = keras.layers.Conv2D(6, (3, 3), strides=(2, 1), padding="same", activation="relu")(x)
    s = keras.layers.Reshape((10, 10 * 6))(c)
    h = keras.layers.LSTM(16, return_sequences=False, unroll=False)(s)
    y = keras.layers.Dense(4, activation="softmax", name="keyword")(h)
    return convert_keras(keras.Model(x, y), scale=1.5)


def _svdf_layer(m, rng, x: int, x_scale: float, n_in: int, units: int, rank: int, memory: int,
                out_scale: float, out_zp: int, name: str) -> int:
    """One int8 SVDF (TFLM's layout): weights drawn from a seeded rng, the bias on the scale TFLM checks
    (state scale * time-weights scale), an int8 variable state with zero point 0."""
    import numpy as np

    s = m.schema
    filters = units * rank
    f32 = np.float32
    wf_scale, wt_scale = float(f32(0.8 / 127)), float(f32(0.6 / 127))
    state_scale = float(f32(6.0 / 127))
    wf = m.tensor(f"{name}/weights_feature", [filters, n_in], scale=wf_scale,
                  data=rng.integers(-127, 128, size=(filters, n_in), dtype=np.int8))
    wt = m.tensor(f"{name}/weights_time", [filters, memory], scale=wt_scale,
                  data=rng.integers(-127, 128, size=(filters, memory), dtype=np.int8))
    bias = m.tensor(f"{name}/bias", [units], dtype="int32", scale=float(f32(state_scale) * f32(wt_scale)),
                    data=rng.integers(-3000, 3000, size=units, dtype=np.int32))
    state = m.tensor(f"{name}/activation_state", [1, memory * filters], scale=state_scale, zero_point=0)
    m.tensors[state].isVariable = True
    y = m.tensor(f"{name}/output", [1, units], scale=out_scale, zero_point=out_zp)
    opts = s.SVDFOptionsT()
    opts.rank = rank
    m.op(s.BuiltinOperator.SVDF, [x, wf, wt, bias, state], [y], s.BuiltinOptions.SVDFOptions, opts)
    del x_scale
    return y


def _svdf_stream() -> bytes:
    """A streaming keyword-spotting stack: one 20-coefficient frame per invocation through two SVDFs
    (rank 2, memory 8; rank 1, memory 4) and a FULLY_CONNECTED. Written as a flatbuffer: TensorFlow's
    converter has no Keras layer that becomes SVDF."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from codegen_models import TinyModel

    rng = np.random.default_rng(1818)
    m = TinyModel()
    s = m.schema
    frame = m.tensor("frame", [1, 20], scale=1 / 32, zero_point=-3)
    h1 = _svdf_layer(m, rng, frame, 1 / 32, 20, units=12, rank=2, memory=8, out_scale=0.05, out_zp=4, name="svdf1")
    h2 = _svdf_layer(m, rng, h1, 0.05, 12, units=8, rank=1, memory=4, out_scale=0.04, out_zp=-2, name="svdf2")
    w = m.tensor("scores/weights", [3, 8], scale=0.01,
                 data=rng.integers(-127, 128, size=(3, 8), dtype=np.int8))
    y = m.tensor("scores", [1, 3], scale=0.08, zero_point=1)
    opts = s.FullyConnectedOptionsT()
    m.op(s.BuiltinOperator.FULLY_CONNECTED, [h2, w, -1], [y], s.BuiltinOptions.FullyConnectedOptions, opts)
    with tempfile.TemporaryDirectory() as tmp:
        return m.save(Path(tmp) / "svdf.tflite", [frame], [y]).read_bytes()


def lstm_16x8(peephole: bool = False) -> bytes:
    """A 16x8 LSTM (int16 activations, int8 weights, int64 biases), time-major with 2 sequences in the batch and
    a cell clip. Written as a flatbuffer: TensorFlow's converter refuses 16x8 quantization of
    UNIDIRECTIONAL_SEQUENCE_LSTM ("not yet supported"); TFLM's reference kernel runs it. ``peephole`` adds
    cell-to-gate weights (a variant codegen rejects)."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from codegen_models import TinyModel

    rng = np.random.default_rng(1616)
    m = TinyModel()
    s = m.schema
    steps, batch, n_in, n_h = 5, 2, 5, 7
    x_scale, w_scale = 1 / 8192, float(np.float32(0.3 / 127))
    x = m.tensor("frames", [steps, batch, n_in], dtype="int16", scale=x_scale)
    inputs = [x]
    for name, cols in (("input_to", n_in), ("recurrent_to", n_h)):
        for gate in ("input", "forget", "cell", "output"):
            inputs.append(m.tensor(f"{name}_{gate}_weights", [n_h, cols], scale=w_scale,
                                   data=rng.integers(-127, 128, size=(n_h, cols), dtype=np.int8)))
    if peephole:
        inputs += [m.tensor(f"cell_to_{g}_weights", [n_h], dtype="int16", scale=0.001,
                            data=rng.integers(-100, 100, size=n_h, dtype=np.int16)) for g in ("input", "forget", "output")]
    else:
        inputs += [-1, -1, -1]
    for gate in ("input", "forget", "cell", "output"):
        bias = m.tensor(f"{gate}_gate_bias", [n_h], dtype="int32", scale=x_scale * w_scale,
                        data=rng.integers(-60000, 60000, size=n_h, dtype=np.int64))
        m.tensors[bias].type = s.TensorType.INT64  # TinyModel has no int64 type name; the data is int64
        inputs.append(bias)
    inputs += [-1, -1]  # no projection
    hidden = m.tensor("hidden_state", [batch, n_h], dtype="int16", scale=1 / 32768)
    cell = m.tensor("cell_state", [batch, n_h], dtype="int16", scale=2.0 ** -11)
    for t in (hidden, cell):
        m.tensors[t].isVariable = True
    inputs += [hidden, cell, -1, -1, -1, -1]  # no layer norm
    y = m.tensor("hidden_sequence", [steps, batch, n_h], dtype="int16", scale=1 / 32768)
    opts = s.UnidirectionalSequenceLSTMOptionsT()
    opts.fusedActivationFunction = s.ActivationFunctionType.TANH
    opts.cellClip = 3.0
    opts.timeMajor = True
    m.op(s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM, inputs, [y],
         s.BuiltinOptions.UnidirectionalSequenceLSTMOptions, opts)
    with tempfile.TemporaryDirectory() as tmp:
        return m.save(Path(tmp) / "lstm16.tflite", [x], [y]).read_bytes()


MODELS: dict[str, Builder] = {
    "lstm_16x8": lstm_16x8,
    "lstm_sequence": _lstm,
    "lstm_kws": _kws_lstm,
    "svdf_stream": _svdf_stream,
}
