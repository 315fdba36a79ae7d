"""FULLY_CONNECTED -> ``resilinet_fully_connected_s8_paired`` on int8 weights in pairs of rows (our kernels;
``_s8_s16w`` on int16 weights with ``--wide-fc``), ``arm_fully_connected_s8`` / ``_per_channel_s8`` on the model's
weights with Arm's CMSIS-NN (firmware/cmsis_nn/arm_fully_connected_s8.c, resilinet_nn_fully_connected_paired_s8.c)."""
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


def paired_fc_weights_s8(wdata: np.ndarray) -> np.ndarray:
    """The int8 weight layout of ``resilinet_fully_connected_s8_paired`` (firmware/cmsis_nn/
    resilinet_nn_fully_connected_paired_s8.c): rows zero-padded to a multiple of 4 and to k4 = align4(depth) entries;
    per block of four rows and group of four entries, the words (rows r0, r1) then (rows r2, r3), each
    [r0 e0 + 128, r1 e0, r0 e2 + 128, r1 e2] [r0 e1 + 128, r1 e1, r0 e3 + 128, r1 e3]: as int16 lanes
    256 * w(r1) + w(r0) + 128, so one SMLAD covers two rows (the kernel separates them). Same flash as int8
    weights apart from the padding."""
    rows = wdata.reshape(wdata.shape[0], -1).astype(np.int16)
    cout4, k4 = align4(rows.shape[0]), align4(rows.shape[1])
    padded = np.zeros((cout4, k4), dtype=np.int16)
    padded[:rows.shape[0], :rows.shape[1]] = rows
    # [block, pair, row in pair, group, entry] -> [block, group, pair, entry order (0, 1, 2, 3 -> words e0 e2 | e1 e3)]
    w = padded.reshape(cout4 // 4, 2, 2, k4 // 4, 4)
    lo = w[:, :, 0] + 128  # row r0 of each pair, biased to 0..255 (the low byte of the lane)
    hi = w[:, :, 1]
    lanes = np.stack([lo, hi], axis=-1)  # [block, pair, group, entry, (lo, hi)]
    lanes = lanes[:, :, :, [0, 2, 1, 3], :]  # words [e0|e2] then [e1|e3]
    ordered = lanes.transpose(0, 2, 1, 3, 4)  # [block, group, pair, entry, byte]
    return (ordered.reshape(-1).astype(np.int16) & 0xFF).astype(np.uint8).view(np.int8)


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
    # Our kernels read a layout of their own (int16 with --wide-fc, else int8 in pairs of rows); a build against
    # Arm's CMSIS-NN the plain int8 weights (only one of the arrays is compiled).
    consts[0].build = "cmsis_nn"
    if wide:
        consts.insert(1, ConstArray(ctx.key("weights16"), "int16_t", widened_fc_weights_s16w(wdata),
                                    f"weights {list(w.shape)}, int16 s16w layout", build="resilinet"))
    else:
        consts.insert(1, ConstArray(ctx.key("weights_paired"), "int8_t", paired_fc_weights_s8(wdata),
                                    f"weights {list(w.shape)}, int8 paired-rows layout", build="resilinet"))
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
