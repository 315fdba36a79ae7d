"""Ops that only move bytes (firmware/cmsis_nn/arm_data_movement_s8.c).

RESHAPE / SQUEEZE / EXPAND_DIMS -> no code (the output aliases the input) or ``arm_reshape_s8`` when the
planner cannot alias; CONCATENATION -> ``arm_concatenation_s8_{x,y,w}``; PAD / PADV2 -> ``arm_pad_s8``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import Tensor
from ..step import Step
from .base import Kernel
from .common import dims, nhwc
from .context import OpContext

ALIAS = Kernel("alias", "ops/alias.c.j2", "")
#: Also the planner's fallback for an alias it cannot make, and MEAN over no axis.
COPY = Kernel("copy", "ops/copy.c.j2", "arm_data_movement_s8.c")
CONCATENATION = Kernel("concat", "ops/concatenation.c.j2", "arm_data_movement_s8.c")
PAD = Kernel("pad", "ops/pad.c.j2", "arm_data_movement_s8.c")


def lower_alias(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    # A reshape moves no values: int16 (16x8) tensors alias (or copy byte for byte) like int8 ones.
    if x.dtype != y.dtype or x.dtype not in ("int8", "int16"):
        raise ctx.fail(f"only int8 and int16 tensors are supported (got {x.dtype} -> {y.dtype})")
    if x.nbytes != y.nbytes:
        raise ctx.fail(f"input has {x.nbytes} bytes but output {y.nbytes}")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=ALIAS.name, output_name=y.name,
        inputs=[] if x.is_const else [x.index], outputs=[y.index], alias_of=x.index,
        const_inputs=[x.index] if x.is_const else [],
        params=dict(input=x.index, output=y.index, size=y.nbytes),
        summary=f"{list(x.shape)} -> {list(y.shape)}",
    )


def copy_step(ctx: OpContext, x: Tensor, y: Tensor, why: str) -> Step:
    """A byte copy of ``x`` into ``y`` for an op that degenerates to one."""
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=COPY.name, output_name=y.name,
        inputs=[] if x.is_const else [x.index], outputs=[y.index],
        const_inputs=[x.index] if x.is_const else [],
        params=dict(input=x.index, output=y.index, size=y.nbytes), summary=why,
    )


def concat_call(outer: int, mid: int, inner: int, out_mid: int, offset: int) -> dict[str, Any]:
    """Pick the arm_concatenation_s8_* variant whose uint16 dimensions fit the [outer, mid, inner] view."""
    def fits(*v: int) -> bool:
        return all(0 < x <= 0xFFFF for x in v)

    if outer == 1 and fits(inner, mid):
        return dict(variant="w", x=inner, y=1, z=1, w=mid, offset=offset)
    if inner == 1 and fits(mid, outer, out_mid):
        return dict(variant="x", x=mid, y=outer, z=1, w=1, out=out_mid, offset=offset)
    if fits(inner, mid, outer, out_mid):
        return dict(variant="y", x=inner, y=mid, z=outer, w=1, out=out_mid, offset=offset)
    raise ValueError("dimensions exceed the 16-bit range of arm_concatenation_s8_*")


def lower_concatenation(ctx: OpContext) -> Step:
    y = ctx.t(0, outputs=True)
    ctx.int8_activation(y, "output")
    if ctx.activation() != "NONE":
        raise ctx.fail("a fused activation on CONCATENATION is not supported")
    assert y.quant
    rank = len(y.shape)
    axis = int(ctx.op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    inner = int(np.prod(y.shape[axis + 1:], dtype=np.int64))
    calls = []
    offset = 0
    inputs = [ctx.graph.tensors[i] for i in ctx.op.inputs if i >= 0]
    for t in inputs:
        ctx.int8_activation(t, "input")
        assert t.quant
        if t.quant.scale != y.quant.scale or t.quant.zero_point != y.quant.zero_point:
            raise ctx.fail(f"input '{t.name}' is quantized differently from the output "
                           "(TFLM's int8 concatenation does not rescale)")
        if len(t.shape) != rank:
            raise ctx.fail(f"input '{t.name}' has rank {len(t.shape)}, output {rank}")
        mid = t.shape[axis]
        try:
            call = concat_call(outer, mid, inner, y.shape[axis], offset)
        except ValueError as exc:
            raise ctx.fail(str(exc)) from None
        call["input"] = t.index
        calls.append(call)
        offset += mid
    if offset != y.shape[axis]:
        raise ctx.fail(f"inputs add up to {offset} along axis {axis}, output has {y.shape[axis]}")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=CONCATENATION.name, output_name=y.name,
        inputs=[t.index for t in inputs if not t.is_const], outputs=[y.index],
        const_inputs=[t.index for t in inputs if t.is_const],
        params=dict(output=y.index, calls=calls),
        summary=f"{len(inputs)} inputs along axis {axis} -> {list(y.shape)}",
    )


def lower_pad(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert y.quant
    pad_t = ctx.t(1)
    if pad_t.dtype not in ("int32", "int64"):
        raise ctx.fail("paddings must be int32 or int64")
    paddings = np.asarray(ctx.const(pad_t, "paddings", pad_t.dtype), dtype=np.int64).reshape(-1, 2)
    rank = len(x.shape)
    if rank > 4 or paddings.shape[0] != rank:
        raise ctx.fail("only up to 4-D tensors are supported")
    pad_value = y.quant.zero_point
    cv = ctx.optional(2)
    if cv is not None:  # PADV2's constant value
        value = ctx.const(cv, "constant value", "int8")
        pad_value = int(value.reshape(-1)[0])
    pre = [0] * (4 - rank) + [int(p) for p in paddings[:, 0]]
    post = [0] * (4 - rank) + [int(p) for p in paddings[:, 1]]
    if min(pre + post) < 0:
        raise ctx.fail("negative paddings are not supported")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=PAD.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, pad_value=pad_value, input_dims=dims(*nhwc(x.shape)),
                    pre=dims(*pre), post=dims(*post)),
        summary=f"{list(x.shape)} -> {list(y.shape)} value {pad_value}",
    )
