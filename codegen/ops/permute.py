"""Data movement that reorders or selects elements: TRANSPOSE -> ``arm_transpose_s8`` (CMSIS-NN v7 API,
firmware/cmsis_nn/arm_transpose_s8.c, as TFLM's cmsis_nn TRANSPOSE calls it) and STRIDED_SLICE ->
``resilinet_strided_slice_s8`` (resilinet_nn_ext_basic.c; TFLM runs its reference kernel).

Both only copy bytes, so every index is resolved on the host: the kernels get the strides and counts.
"""
from __future__ import annotations

import numpy as np

from ..step import Step
from .base import Kernel
from .common import dims
from .context import OpContext

TRANSPOSE = Kernel("transpose", "ops/transpose.c.j2", "arm_transpose_s8.c")
STRIDED_SLICE = Kernel("strided_slice", "ops/strided_slice.c.j2", "resilinet_nn_ext_basic.c", extension=True)

#: Largest rank each kernel takes (TFLM: arm_transpose_s8 4, its reference StridedSlice 5).
TRANSPOSE_MAX_RANK, SLICE_MAX_RANK = 4, 5


def _const_ints(ctx: OpContext, position: int, role: str) -> list[int]:
    t = ctx.t(position)
    if t.data is None:
        raise ctx.fail(f"{role} '{t.name}' is not a constant", "Only constant slice/permutation operands are supported")
    if t.dtype not in ("int32", "int64"):
        raise ctx.fail(f"{role} '{t.name}' is {t.dtype}, expected int32")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def _same_bytes(ctx: OpContext) -> None:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")


def lower_transpose(ctx: OpContext) -> Step:
    _same_bytes(ctx)
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    perm = _const_ints(ctx, 1, "permutation")
    rank = len(x.shape)
    if sorted(perm) != list(range(rank)):
        raise ctx.fail(f"permutation {perm} is not a permutation of the {rank} input axes")
    if rank > TRANSPOSE_MAX_RANK:
        raise ctx.fail(f"rank {rank}: arm_transpose_s8 (and TFLM's TRANSPOSE with it) takes at most "
                       f"{TRANSPOSE_MAX_RANK} dimensions")
    out_shape = tuple(x.shape[p] for p in perm)
    if out_shape != tuple(y.shape):
        raise ctx.fail(f"output shape {list(y.shape)} is not the permuted input shape {list(out_shape)}")

    def packed(shape: tuple[int, ...]) -> dict[str, int]:
        # CMSIS-NN's convention: the shape fills the dims from n on; unused fields are 1.
        s = list(shape) + [1] * (4 - len(shape))
        return dims(s[0], s[1], s[2], s[3])

    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=TRANSPOSE.name, output_name=y.name,
        inputs=[] if x.is_const else [x.index], outputs=[y.index],
        const_inputs=[x.index] if x.is_const else [],
        params=dict(input=x.index, output=y.index, rank=rank, perm=perm, input_dims=packed(tuple(x.shape)),
                    output_dims=packed(out_shape)),
        summary=f"{list(x.shape)} -> {list(y.shape)} (perm {perm})",
    )


def _axis_range(begin: int, end: int, stride: int, size: int, begin_masked: bool, end_masked: bool,
                shrink: bool) -> tuple[int, int]:
    """(start, count) along one axis, as TFLite's StartForAxis / StopForAxis and the reference loop."""
    lowest, highest = -(1 << 31), (1 << 31) - 1
    if size == 0:
        return 0, 0
    start = (lowest if stride > 0 else highest) if begin_masked else begin
    if start < 0:
        start += size
    start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
    if shrink:
        stop = start + 1
    else:
        stop = (highest if stride > 0 else lowest) if end_masked else end
        if stop < 0:
            stop += size
        stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
    span = stop - start if stride > 0 else start - stop
    return start, max(0, -(-span // abs(stride)))


def lower_strided_slice(ctx: OpContext) -> Step:
    _same_bytes(ctx)
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    opts = ctx.op.options
    for mask in ("ellipsis_mask", "new_axis_mask"):
        if int(opts.get(mask, 0) or 0):
            raise ctx.fail(f"{mask} is set; TFLM's STRIDED_SLICE does not implement it")
    if opts.get("offset"):
        raise ctx.fail("the 'offset' option (relative end indices) is not supported")
    begin, end, strides = (_const_ints(ctx, k, role) for k, role in ((1, "begin"), (2, "end"), (3, "strides")))
    rank = len(x.shape)
    if not len(begin) == len(end) == len(strides) == rank:
        raise ctx.fail(f"begin/end/strides have {len(begin)}/{len(end)}/{len(strides)} entries for rank {rank}")
    if rank > SLICE_MAX_RANK:
        raise ctx.fail(f"rank {rank}: TFLM's STRIDED_SLICE takes at most {SLICE_MAX_RANK} dimensions")
    if 0 in strides:
        raise ctx.fail("a stride is 0")
    begin_mask, end_mask = int(opts.get("begin_mask", 0) or 0), int(opts.get("end_mask", 0) or 0)
    shrink_mask = int(opts.get("shrink_axis_mask", 0) or 0)
    in_strides = [int(np.prod(x.shape[k + 1:], dtype=np.int64)) for k in range(rank)]
    base, counts, steps = 0, [], []
    for k in range(rank):
        start, count = _axis_range(begin[k], end[k], strides[k], x.shape[k], bool(begin_mask >> k & 1),
                                   bool(end_mask >> k & 1), bool(shrink_mask >> k & 1))
        base += start * in_strides[k] if count else 0
        counts.append(count)
        steps.append(strides[k] * in_strides[k])
    if int(np.prod(counts, dtype=np.int64)) != y.num_elements:
        raise ctx.fail(f"the slice selects {counts} elements, the output {list(y.shape)} holds {y.num_elements}")
    pad = SLICE_MAX_RANK - rank  # the kernel's five loops, outermost padded with single iterations
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=STRIDED_SLICE.name, output_name=y.name,
        inputs=[] if x.is_const else [x.index], outputs=[y.index],
        const_inputs=[x.index] if x.is_const else [],
        params=dict(input=x.index, output=y.index, base=base if y.num_elements else 0,
                    count=[1] * pad + counts, step=[0] * pad + steps),
        summary=f"{list(x.shape)} -> {list(y.shape)} (begin {begin}, end {end}, strides {strides})",
    )
