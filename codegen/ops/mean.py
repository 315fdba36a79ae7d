"""MEAN -> ``resilinet_mean_s8`` (firmware/cmsis_nn/resilinet_nn_ext.c; CMSIS-NN has no int8 MEAN)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import quant
from ..step import Step
from .base import Kernel
from .context import OpContext
from .data_movement import copy_step

MEAN = Kernel("mean", "ops/mean.c.j2", "resilinet_nn_ext.c", extension=True)


def lower_mean(ctx: OpContext) -> Step:
    """TFLM's int8 MEAN: its integer QuantizedMeanOrSum (requantize the zero-point-corrected sum with a
    multiplier that folds in 1/count). The installed TFLM takes this path even when input and output
    quantization are identical (older releases had a truncating integer division there and a
    special 4-D keep_dims path; neither is reproduced)."""
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    raw_axes = [int(a) for a in ctx.const(ctx.t(1), "axis", "int32").reshape(-1)]
    rank = len(x.shape)
    axes = sorted({a + rank if a < 0 else a for a in raw_axes})
    if any(a < 0 or a >= rank for a in axes):
        raise ctx.fail(f"axis {raw_axes} out of range for rank {rank}")
    if len(axes) > 2:
        raise ctx.fail(f"reducing {len(axes)} axes {raw_axes}: TFLM supports at most 2",
                       "Reshape so that the reduced dimensions form at most two axes")
    if not axes:
        return copy_step(ctx, x, y, "MEAN over no axis is a copy")
    outer, inner = _outer_inner(ctx, x.shape, axes, raw_axes)
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if outer * inner != y.num_elements:
        raise ctx.fail(f"output has {y.num_elements} elements, expected {outer * inner}")
    multiplier, shift = quant.mean_multiplier(x.quant.scale, y.quant.scale, count)
    params: dict[str, Any] = dict(input=x.index, output=y.index, outer=outer, reduce=count, inner=inner,
                                  input_zp=x.quant.zero_point, output_zp=y.quant.zero_point,
                                  multiplier=multiplier, shift=shift)
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=MEAN.name, output_name=y.name,
        inputs=[x.index], outputs=[y.index], params=params,
        summary=f"{list(x.shape)} axes {raw_axes} -> {list(y.shape)}",
    )


def _outer_inner(ctx: OpContext, shape: tuple[int, ...], axes: list[int], raw_axes: list[int]) -> tuple[int, int]:
    """The [outer, reduce, inner] view the kernel takes: element counts before and after the reduced run."""
    # Size-1 dimensions do not affect the memory order: the reduced axes must be one contiguous run
    # among the others, giving an [outer, reduce, inner] view of the input.
    real = [(shape[d], d in axes) for d in range(len(shape)) if shape[d] > 1]
    flags = [r for _, r in real]
    if True in flags:
        first = flags.index(True)
        last = len(flags) - 1 - flags[::-1].index(True)
        if not all(flags[first:last + 1]):
            raise ctx.fail(f"reducing non-adjacent axes {raw_axes} of {list(shape)} is not supported")
        inner = int(np.prod([s for s, _ in real[last + 1:]], dtype=np.int64))
    else:
        first, inner = len(flags), 1
    outer = int(np.prod([s for s, _ in real[:first]], dtype=np.int64))
    return outer, inner
