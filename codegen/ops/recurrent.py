"""Recurrent ops with state kept between invocations: UNIDIRECTIONAL_SEQUENCE_LSTM -> ``arm_lstm_unidirectional_s8``
(firmware/cmsis_nn/arm_lstm_unidirectional_s8.c) and SVDF -> ``arm_svdf_s8`` (firmware/cmsis_nn/arm_svdf_s8.c).

Their variable tensors (LSTM hidden and cell state, SVDF activation state) go in ``Step.state``: the planner
gives them arena bytes no other buffer ever uses, and the generated ``<name>_reset()`` sets them to TFLM's
initial values (an int8 tensor's zero point, else 0), as ``MicroInterpreter::Reset()`` does. Invocations in a
row carry the state, like TFLM's interpreter (streaming models).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from .. import quant
from ..graph import Tensor
from ..step import ConstArray, Step
from .base import Kernel
from .context import ACTIVATIONS, OpContext

#: TFLM's fixed scales inside the integer LSTM: gate inputs are Q3.12, gate outputs Q0.15.
GATE_INPUT_SCALE = 2.0 ** -12
GATE_OUTPUT_SCALE = 2.0 ** -15
#: (gate name in cmsis_nn_lstm_params, input-weights input, recurrent-weights input, bias input), TFLite order.
LSTM_GATES = (("input_gate", 1, 5, 12), ("forget_gate", 2, 6, 13), ("cell_gate", 3, 7, 14),
              ("output_gate", 4, 8, 15))
#: Optional LSTM inputs TFLM's integer kernel does not implement: peephole, projection, layer norm.
LSTM_UNSUPPORTED_INPUTS = {9: "peephole", 10: "peephole", 11: "peephole", 16: "projection", 17: "projection",
                           20: "layer norm", 21: "layer norm", 22: "layer norm", 23: "layer norm"}


def lstm_scratch(params: Mapping[str, Any], backend: str) -> int:
    """temp1 and temp2 of ``cmsis_nn_lstm_context``: batch * hidden int16 each (the same on every backend)."""
    del backend
    return 2 * params["batch"] * params["hidden"] * 2


LSTM = Kernel("lstm", "ops/lstm.c.j2", "arm_lstm_unidirectional_s8.c", scratch=lstm_scratch)
#: 16x8 (int16 activations): ``arm_lstm_unidirectional_s16``, same file and fragment.
LSTM_S16 = Kernel("lstm_s16", "ops/lstm.c.j2", "arm_lstm_unidirectional_s8.c", scratch=lstm_scratch)


def _activation(ctx: OpContext, t: Tensor, role: str, dtype: str) -> None:
    """An int8 activation, or (16x8) an int16 one quantized per tensor with zero point 0."""
    if dtype == "int8":
        ctx.int8_activation(t, role)
        return
    if t.dtype != "int16" or t.quant is None or t.quant.per_channel or t.quant.zero_point != 0:
        raise ctx.fail(f"{role} '{t.name}' must be int16 quantized per tensor with zero point 0 in a 16x8 LSTM")


def _int8_weights(ctx: OpContext, position: int, rows: int, cols: int) -> tuple[Tensor, np.ndarray]:
    w = ctx.t(position)
    data = ctx.const(w, f"weights (input {position})", "int8")
    if tuple(w.shape) != (rows, cols):
        raise ctx.fail(f"weights '{w.name}' have shape {list(w.shape)}, expected {[rows, cols]}")
    if w.quant is None or w.quant.per_channel or w.quant.zero_point != 0:
        raise ctx.fail(f"weights '{w.name}' must be int8 quantized per tensor with zero point 0",
                       "Convert with the default (per-tensor) LSTM quantization")
    return w, data.reshape(rows, cols).astype(np.int64)


def _cell_state_power(ctx: OpContext, cell: Tensor) -> int:
    """TFLM's ``CheckedLog2`` of the cell state scale (the integer LSTM needs a power of two)."""
    if cell.dtype != "int16" or cell.quant is None:
        raise ctx.fail(f"cell state '{cell.name}' is {cell.dtype}; the int8 LSTM needs an int16 quantized cell state",
                       "Convert with full-integer quantization (the converter then makes it int16)")
    log2 = math.log2(cell.quant.scale)
    if abs(log2 - round(log2)) > 1e-3:
        raise ctx.fail(f"cell state scale {cell.quant.scale:g} is not a power of two")
    return int(round(log2))


def _check_lstm_shape(ctx: OpContext) -> tuple[Tensor, Tensor, Tensor, Tensor, bool, int, int, int, int]:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    dtype = "int16" if x.dtype == "int16" else "int8"
    _activation(ctx, x, "input", dtype)
    hidden, cell = ctx.t(18), ctx.t(19)
    for t, role in ((hidden, "hidden state"), (cell, "cell state")):
        if not t.is_variable:
            raise ctx.fail(f"{role} '{t.name}' is not a variable tensor")
    _activation(ctx, hidden, "hidden state", dtype)
    for position, what in LSTM_UNSUPPORTED_INPUTS.items():
        if ctx.optional(position) is not None:
            raise ctx.fail(f"{what} LSTM (input {position}) is not supported",
                           "Use a plain Keras LSTM layer (no peephole, projection or layer normalization)")
    if ctx.optional(1) is None or ctx.optional(5) is None:
        raise ctx.fail("CIFG LSTM (no input gate) is not supported", "Use a plain Keras LSTM layer")
    if len(x.shape) != 3:
        raise ctx.fail(f"input must be 3-D, got {list(x.shape)}")
    time_major = bool(ctx.op.options.get("time_major", False))
    batch, steps = (x.shape[1], x.shape[0]) if time_major else (x.shape[0], x.shape[1])
    n_in = x.shape[2]
    n_h = ctx.t(2).shape[0] if ctx.t(2).shape else 0
    if hidden.num_elements != batch * n_h or cell.num_elements != batch * n_h:
        raise ctx.fail(f"state tensors hold {hidden.num_elements} / {cell.num_elements} values, expected {batch * n_h}")
    if tuple(y.shape) != (x.shape[0], x.shape[1], n_h) or y.dtype != dtype:
        raise ctx.fail(f"output must be {dtype} {[x.shape[0], x.shape[1], n_h]}, got {y.dtype} {list(y.shape)}")
    return x, y, hidden, cell, time_major, batch, steps, n_in, n_h


def lower_lstm(ctx: OpContext) -> Step:
    """TFLM's integer LSTM Prepare (``PrepareGateParametersInteger``, ``CreateLstmCellStateInfo``), int8 or 16x8."""
    x, y, hidden, cell, time_major, batch, steps, n_in, n_h = _check_lstm_shape(ctx)
    s16 = x.dtype == "int16"
    act = ACTIVATIONS.get(int(ctx.op.options.get("fused_activation_function", 0) or 0), "?")
    if act != "TANH":
        raise ctx.fail(f"cell gate activation {act} is not supported", "Use the default tanh activation")
    assert x.quant and hidden.quant and cell.quant
    power = _cell_state_power(ctx, cell)
    consts: list[ConstArray] = []
    gates: dict[str, dict[str, Any]] = {}
    for gate, wx_pos, wh_pos, b_pos in LSTM_GATES:
        wx, wx_data = _int8_weights(ctx, wx_pos, n_h, n_in)
        wh, wh_data = _int8_weights(ctx, wh_pos, n_h, n_h)
        b = ctx.t(b_pos)
        bias = ctx.const(b, f"{gate} bias", "int64" if s16 else "int32").reshape(-1).astype(np.int64)
        if bias.size != n_h:
            raise ctx.fail(f"{gate} bias has {bias.size} values for {n_h} cells")
        assert wx.quant and wh.quant
        # Zero points folded into the biases (CMSIS-NN's effective bias): the int32 sums stay TFLM's.
        eff_x = bias - x.quant.zero_point * wx_data.sum(axis=1)
        eff_h = -hidden.quant.zero_point * wh_data.sum(axis=1)
        mx, sx = quant.quantize_multiplier(x.quant.scale * wx.quant.scale / GATE_INPUT_SCALE)
        mh, sh = quant.quantize_multiplier(hidden.quant.scale * wh.quant.scale / GATE_INPUT_SCALE)
        gates[gate] = dict(input_multiplier=mx, input_shift=sx, hidden_multiplier=mh, hidden_shift=sh,
                           activation="ARM_TANH" if gate == "cell_gate" else "ARM_SIGMOID")
        consts += [ConstArray(ctx.key(f"{gate}_wx"), "int8_t", wx_data.reshape(-1), f"{gate} input weights {[n_h, n_in]}"),
                   ConstArray(ctx.key(f"{gate}_wh"), "int8_t", wh_data.reshape(-1), f"{gate} recurrent weights {[n_h, n_h]}")]
        if s16:  # 16x8: zero points are 0; the int64 bias goes in as it is (cmsis_nn_lstm_gate.bias)
            consts.append(ConstArray(ctx.key(f"{gate}_b"), "int64_t", bias, f"{gate} int64 bias [{n_h}]"))
        else:
            consts += [ConstArray(ctx.key(f"{gate}_bx"), "int32_t", _int32(eff_x), f"{gate} input effective bias", False),
                       ConstArray(ctx.key(f"{gate}_bh"), "int32_t", _int32(eff_h), f"{gate} hidden effective bias", False)]
    f2c = quant.quantize_multiplier(GATE_OUTPUT_SCALE * cell.quant.scale / cell.quant.scale)
    i2c = quant.quantize_multiplier(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / cell.quant.scale)
    out = quant.quantize_multiplier(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / hidden.quant.scale)
    clip = quant.f32(float(ctx.op.options.get("cell_clip", 0.0) or 0.0))
    if clip < 0:
        raise ctx.fail(f"cell_clip {clip} is negative")
    # TFLM: static_cast<int16_t>(clamp(clip / scale)), i.e. truncated; 0 means no clipping.
    cell_clip = int(min(max(clip / cell.quant.scale, -32768.0), 32767.0)) if clip > 0 else 0
    params: dict[str, Any] = dict(
        input=x.index, output=y.index, hidden_state=hidden.index, cell_state=cell.index,
        time_major=int(time_major), batch=batch, steps=steps, input_size=n_in, hidden=n_h,
        input_offset=-x.quant.zero_point, forget_to_cell=f2c, input_to_cell=i2c, cell_clip=cell_clip,
        cell_scale_power=power, output_mult=out, output_offset=hidden.quant.zero_point, gates=gates)
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=(LSTM_S16 if s16 else LSTM).name, output_name=y.name,
        inputs=[x.index], outputs=[y.index], params=params, consts=consts, state=[hidden.index, cell.index],
        macs=batch * steps * 4 * n_h * (n_in + n_h),
        summary=f"{steps} steps x {n_in} -> {n_h}, batch {batch}{' time-major' if time_major else ''}"
                + (" 16x8" if s16 else ""),
    )


def _int32(values: np.ndarray) -> np.ndarray:
    """int64 sums as the int32 the kernel adds (TFLM's accumulators are int32 too)."""
    return ((values.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int64)


def svdf_scratch(params: Mapping[str, Any], backend: str) -> int:
    """input_ctx (batch * filters int32) and output_ctx (batch * units int32) of ``arm_svdf_s8``, one block;
    ``arm_svdf_s8_get_buffer_size`` (ctx) is 0 on the C and DSP backends."""
    del backend
    return 4 * params["batch"] * (params["filters"] + params["units"])


SVDF = Kernel("svdf", "ops/svdf.c.j2", "arm_svdf_s8.c", scratch=svdf_scratch)


def lower_svdf(ctx: OpContext) -> Step:
    """TFLM's ``PrepareSvdf`` for int8 input, int8 time weights and an int8 activation state."""
    x, wf, wt, y = ctx.t(0), ctx.t(1), ctx.t(2), ctx.t(0, outputs=True)
    state = ctx.t(4)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if not state.is_variable:
        raise ctx.fail(f"activation state '{state.name}' is not a variable tensor")
    ctx.int8_activation(state, "activation state")
    assert x.quant and y.quant and state.quant
    if state.quant.zero_point != 0:
        raise ctx.fail(f"activation state '{state.name}' has zero point {state.quant.zero_point}",
                       "CMSIS-NN's arm_svdf_s8 takes a state with zero point 0 (symmetric): quantize it so")
    rank = int(ctx.op.options.get("rank", 0) or 0)
    if len(x.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2:
        raise ctx.fail("input, feature weights and time weights must be 2-D")
    batch, n_in = x.shape
    filters, memory = wt.shape
    if rank <= 0 or filters % rank or wf.shape[0] != filters or wf.shape[1] != n_in:
        raise ctx.fail(f"rank {rank}, feature weights {list(wf.shape)} and time weights {list(wt.shape)} "
                       f"do not fit an input of {n_in}")
    units = filters // rank
    if tuple(y.shape) != (batch, units) or state.num_elements != batch * memory * filters:
        raise ctx.fail(f"output {list(y.shape)} / state {list(state.shape)} do not match "
                       f"batch {batch}, {units} units, memory {memory}")
    wf_data = ctx.const(wf, "feature weights", "int8")
    wt_data = ctx.const(wt, "time weights", "int8")
    b = ctx.optional(3)
    if b is None:  # TFLM reads the bias scale unconditionally
        raise ctx.fail("SVDF without a bias is not supported (TFLM's int8 SVDF needs one)")
    bias = ctx.const(b, "bias", "int32").reshape(-1)
    if bias.size != units:
        raise ctx.fail(f"bias has {bias.size} values for {units} units")
    for w in (wf, wt):
        if w.quant is None or w.quant.per_channel or w.quant.zero_point != 0:
            raise ctx.fail(f"weights '{w.name}' must be int8 quantized per tensor with zero point 0")
    assert wf.quant and wt.quant
    # TFLM computes both effective scales in float (static_cast<double> of a float expression).
    scale_1 = quant.f32(quant.f32(x.quant.scale * wf.quant.scale) / state.quant.scale)
    scale_2 = quant.f32(quant.f32(state.quant.scale * wt.quant.scale) / y.quant.scale)
    params: dict[str, Any] = dict(
        input=x.index, output=y.index, state=state.index, rank=rank, batch=batch, input_size=n_in,
        filters=filters, memory=memory, units=units, input_zp=x.quant.zero_point, output_zp=y.quant.zero_point,
        input_quant=quant.quantize_multiplier(scale_1), output_quant=quant.quantize_multiplier(scale_2))
    consts = [ConstArray(ctx.key("wf"), "int8_t", wf_data.reshape(-1), f"feature weights {list(wf.shape)}"),
              ConstArray(ctx.key("wt"), "int8_t", wt_data.reshape(-1), f"time weights {list(wt.shape)}"),
              ConstArray(ctx.key("bias"), "int32_t", bias.astype(np.int64), f"bias [{units}]")]
    act = ACTIVATIONS.get(int(ctx.op.options.get("fused_activation_function", 0) or 0), "?")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=SVDF.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index], params=params, consts=consts, state=[state.index],
        macs=batch * filters * (n_in + memory),
        # TFLM's int8 SVDF applies no fused activation (only the int8 clamp); neither do we.
        summary=f"{n_in} -> {units} units, rank {rank}, memory {memory}, batch {batch}"
                + ("" if act == "NONE" else f" ({act} ignored, as TFLM's int8 kernel does)"),
    )
