"""AVERAGE_POOL_2D / MAX_POOL_2D -> ``arm_avgpool_s8`` / ``arm_max_pool_s8`` (firmware/cmsis_nn/arm_pool_s8.c)."""
from __future__ import annotations

from typing import Any, Mapping

from ..graph import Tensor
from ..step import Step
from .base import Kernel
from .overlap import RasterOverlap
from .common import dims, spatial_padding
from .context import OpContext


def avgpool_s8_buffer_size(output_w: int, channels: int, backend: str) -> int:
    """``arm_avgpool_s8_get_buffer_size``: one int32 sum per channel on DSP builds."""
    del output_w
    return channels * 4 if backend == "dsp" else 0


def avgpool_scratch(params: Mapping[str, Any], backend: str) -> int:
    return avgpool_s8_buffer_size(params["output_dims"]["w"], params["input_dims"]["c"], backend)


# One template for both: they share the parameter block and differ only in the call.
# Both walk output pixels in raster order, one at a time, reading each channel's window while writing it.
AVGPOOL = Kernel("avgpool", "ops/pool.c.j2", "arm_pool_s8.c", scratch=avgpool_scratch,
                 overlap=RasterOverlap(pixels_in_flight=1))
MAXPOOL = Kernel("maxpool", "ops/pool.c.j2", "arm_pool_s8.c", overlap=RasterOverlap(pixels_in_flight=1))


def lower_pool(ctx: OpContext) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    if abs(x.quant.scale - y.quant.scale) > 1e-6 or x.quant.zero_point != y.quant.zero_point:
        raise ctx.fail("input and output quantization differ (TFLM requires them equal for int8 pooling)")
    if len(x.shape) != 4:
        raise ctx.fail("expects 4-D NHWC input")
    kernel = AVGPOOL if ctx.op.op_type == "AVERAGE_POOL_2D" else MAXPOOL
    return pool_step(ctx, x, y, kernel, ctx.act_range(y))


def pool_step(ctx: OpContext, x: Tensor, y: Tensor, kernel: Kernel, act_range: tuple[int, int],
              label: str = "") -> Step:
    """The pooling step of any element type once its lowering checked the tensors: the window from the
    op's options, SAME/VALID padding, the NHWC dimensions the ``pool`` templates read."""
    n, h, wd, c = x.shape
    _, oh, ow, _ = y.shape
    o = ctx.op.options
    stride = (int(o.get("stride_h", 1)), int(o.get("stride_w", 1)))
    k = (int(o.get("filter_height", 1)), int(o.get("filter_width", 1)))
    pad = spatial_padding(ctx, (h, wd), k, (oh, ow), stride, (1, 1))
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=kernel.name,
        output_name=y.name, inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, stride=stride, padding=pad, act_min=act_range[0],
                    act_max=act_range[1], input_dims=dims(n, h, wd, c), filter_dims=dims(1, k[0], k[1], 1),
                    output_dims=dims(n, oh, ow, c)),
        summary=f"{label}{k[0]}x{k[1]} s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )
