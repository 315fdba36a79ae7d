"""ADD / MUL -> ``arm_elementwise_add_s8`` / ``arm_elementwise_mul_s8`` (firmware/cmsis_nn/arm_elementwise_s8.c);
SUB -> ``resilinet_elementwise_sub_s8`` (resilinet_nn_ext_basic.c: CMSIS-NN has no SUB, TFLM uses its reference
kernel, whose Prepare is ADD's, so the call takes arm_elementwise_add_s8's parameters).

The CMSIS-NN kernels take two equally long vectors; broadcasting is done by calling them on contiguous
blocks from generated loops (:func:`broadcast_plan`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import quant
from ..step import Step
from .base import Kernel
from .context import OpContext

# One template for both: they share the broadcast loop nest and differ only in the call.
ADD = Kernel("add", "ops/elementwise.c.j2", "arm_elementwise_s8.c")
MUL = Kernel("mul", "ops/elementwise.c.j2", "arm_elementwise_s8.c")
SUB = Kernel("sub", "ops/sub.c.j2", "resilinet_nn_ext_basic.c", extension=True)


def broadcast_plan(a_shape: tuple[int, ...], b_shape: tuple[int, ...],
                   out_shape: tuple[int, ...]) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Decompose a broadcast elementwise op into calls on contiguous blocks.

    Returns (block, loops): ``block`` elements per kernel call and, outermost first, loops of
    (count, a_stride, b_stride, out_stride) in elements. A broadcast operand has stride 0 on the axes
    it is repeated along.
    """
    rank = len(out_shape)
    a = (1,) * (rank - len(a_shape)) + tuple(a_shape)
    b = (1,) * (rank - len(b_shape)) + tuple(b_shape)
    dims: list[tuple[int, bool, bool]] = []  # (size, a_broadcast, b_broadcast)
    for da, db, do in zip(a, b, out_shape):
        if do == 1:
            continue
        dims.append((do, da == 1, db == 1))
    merged: list[list[Any]] = []
    for size, ba, bb in dims:
        if merged and merged[-1][1] == ba and merged[-1][2] == bb:
            merged[-1][0] *= size
        else:
            merged.append([size, ba, bb])
    block = 1
    if merged and not merged[-1][1] and not merged[-1][2]:
        block = merged.pop()[0]
    loops: list[tuple[int, int, int, int]] = []
    a_stride = b_stride = o_stride = block
    for size, ba, bb in reversed(merged):
        loops.append((size, 0 if ba else a_stride, 0 if bb else b_stride, o_stride))
        if not ba:
            a_stride *= size
        if not bb:
            b_stride *= size
        o_stride *= size
    loops.reverse()
    return block, loops


def lower_binary(ctx: OpContext) -> Step:
    a, b, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    for t, role in ((a, "input 1"), (b, "input 2"), (y, "output")):
        ctx.int8_activation(t, role)
    assert a.quant and b.quant and y.quant
    try:
        expected = tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise ctx.fail(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    if expected != tuple(y.shape) and int(np.prod(expected)) != y.num_elements:
        raise ctx.fail(f"output shape {list(y.shape)} is not the broadcast shape {list(expected)}")
    if len(expected) > 6:
        raise ctx.fail("more than 6 dimensions")
    act_min, act_max = ctx.act_range(y)
    block, loops = broadcast_plan(a.shape, b.shape, expected)
    params: dict[str, Any] = dict(input1=a.index, input2=b.index, output=y.index, block=block, loops=loops,
                                  act_min=act_min, act_max=act_max)
    if ctx.op.op_type in ("ADD", "SUB"):
        try:
            p = quant.add_params(a.quant.scale, a.quant.zero_point, b.quant.scale, b.quant.zero_point,
                                 y.quant.scale, y.quant.zero_point)
        except ValueError as exc:
            raise ctx.fail(f"scales out of the range TFLM's int8 ADD accepts ({exc})") from None
        params["add"] = p
        kernel = ADD if ctx.op.op_type == "ADD" else SUB
    else:
        mult, shift = quant.mul_params(a.quant.scale, b.quant.scale, y.quant.scale)
        params.update(input1_offset=-a.quant.zero_point, input2_offset=-b.quant.zero_point,
                      output_offset=y.quant.zero_point, multiplier=mult, shift=shift)
        kernel = MUL
    # Both kernels read each element before writing it, so the output may take over an input's bytes.
    inplace = [(y.index, t.index) for t in (a, b)
               if not t.is_const and tuple(t.shape) == tuple(y.shape) and t.dtype == y.dtype]
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=kernel.name, output_name=y.name,
        inputs=[t.index for t in (a, b) if not t.is_const], outputs=[y.index], params=params,
        const_inputs=[t.index for t in (a, b) if t.is_const], inplace=inplace,
        summary=f"{list(a.shape)} {'+' if kernel is ADD else '-' if kernel is SUB else '*'} {list(b.shape)} "
                f"-> {list(y.shape)}"
                + (f" ({len(loops)} broadcast loop(s), block {block})" if loops else ""),
    )
