"""FULLY_CONNECTED -> ``arm_fully_connected_s8`` / ``_per_channel_s8`` (firmware/cmsis_nn/arm_fully_connected_s8.c)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .. import quant
from ..scratch import Dims, align4
from ..step import ConstArray, Step
from .base import Kernel
from .common import dims, requant_arrays, weight_and_bias_arrays, weight_scales
from .context import OpContext


def fully_connected_s8_buffer_size(filter_dims: Dims, backend: str) -> int:
    """``arm_fully_connected_s8_get_buffer_size``: none for the s8 kernels (the call still checks it)."""
    del filter_dims, backend
    return 0


def fully_connected_scratch(params: Mapping[str, Any], backend: str) -> int:
    return fully_connected_s8_buffer_size(Dims.of(params["filter_dims"]), backend)


FULLY_CONNECTED = Kernel("fc", "ops/fully_connected.c.j2", "arm_fully_connected_s8.c", scratch=fully_connected_scratch)


def widened_fc_weights_s16w(wdata: np.ndarray) -> np.ndarray:
    """The int16 weight layout of ``resilinet_fully_connected_s8_s16w`` (arm_fully_connected_s8.c): rows zero-padded
    to a multiple of 4; rows in blocks of four, per group of four entries each row's lanes (e0, e2, e1, e3); the
    ``C_out % 4`` last rows one at a time. One byte of flash more per weight (``--wide-fc``)."""
    cout = wdata.shape[0]
    rows = wdata.reshape(cout, -1).astype(np.int16)
    k4 = align4(rows.shape[1])
    padded = np.zeros((cout, k4), dtype=np.int16)
    padded[:, :rows.shape[1]] = rows
    groups = padded.reshape(cout, k4 // 4, 4)[:, :, [0, 2, 1, 3]]
    blocks = cout // 4
    interleaved = groups[:4 * blocks].reshape(blocks, 4, k4 // 4, 4).transpose(0, 2, 1, 3).reshape(-1)
    return np.concatenate([interleaved, groups[4 * blocks:].reshape(-1)])


def lower_fully_connected(ctx: OpContext) -> Step:
    x, w, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if int(ctx.op.options.get("weights_format", 0) or 0) != 0:
        raise ctx.fail("shuffled weights format is not supported", "Convert with the default weights format")
    if len(w.shape) != 2:
        raise ctx.fail(f"filter must be 2-D, got {list(w.shape)}")
    cout, depth = w.shape
    wdata = ctx.const(w, "filter", "int8")
    scales = weight_scales(ctx, w, cout, 0)
    if x.num_elements % depth != 0:
        raise ctx.fail(f"input has {x.num_elements} elements, not a multiple of the depth {depth}")
    batches = x.num_elements // depth
    if y.num_elements != batches * cout:
        raise ctx.fail(f"output has {y.num_elements} elements, expected {batches * cout}")
    assert x.quant and y.quant
    act_min, act_max = ctx.act_range(y)
    per_channel = w.quant is not None and w.quant.per_channel
    consts = weight_and_bias_arrays(ctx, w, wdata, cout, "weights")
    wide = ctx.options.wide_fc_weights
    if wide:
        # Our kernels read int16 weights; a build against Arm's CMSIS-NN the int8 ones (only one is compiled).
        consts[0].build = "cmsis_nn"
        consts.insert(1, ConstArray(ctx.key("weights16"), "int16_t", widened_fc_weights_s16w(wdata),
                                    f"weights {list(w.shape)}, int16 s16w layout", build="resilinet"))
    params: dict[str, Any] = dict(
        input=x.index, output=y.index, per_channel=per_channel, wide=wide,
        input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point, act_min=act_min, act_max=act_max,
        input_dims=dims(batches, 1, 1, depth), filter_dims=dims(depth, 1, 1, cout),
        bias_dims=dims(1, 1, 1, cout), output_dims=dims(batches, 1, 1, cout),
    )
    if per_channel:
        mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
        consts += requant_arrays(ctx, mults, shifts)
    else:
        params["multiplier"], params["shift"] = quant.quantize_multiplier(x.quant.scale * scales[0] / y.quant.scale)
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=FULLY_CONNECTED.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index], params=params, consts=consts,
        macs=batches * cout * depth,
        summary=f"{depth} -> {cout}{' per-channel' if per_channel else ''} x{batches}",
    )
