"""The op registry: every TFLite builtin op the code generator supports, in one table (like TFLM's op resolver).

Each :class:`OpDef` names the op, its lowering (host-side Prepare(): checks and kernel parameters) and the
:class:`Kernel` records it may lower to; a kernel holds its template fragment (``templates/ops/``), its
kernel file (``firmware/cmsis_nn/``) and its scratch formula. The op modules of this package hold the
lowerings and kernel records, one module per op family.

Adding an op: write its lowering and :class:`Kernel` in an op module (``ops/<family>.py``), its call in
``templates/ops/<kernel>.c.j2``, its kernel in ``firmware/cmsis_nn/``, and add one :class:`OpDef` line below.
"""
from __future__ import annotations

from . import conv, data_movement, depthwise, elementwise, fully_connected, mean, pooling, requantize, softmax
from .base import Kernel, LowerFn, OpDef, ScratchFn
from .context import OpContext

OPS: dict[str, OpDef] = {op.op_type: op for op in (
    #     TFLite builtin        lowering                              kernels it may produce
    OpDef("CONV_2D",            conv.lower_conv,                      (conv.CONV,)),
    OpDef("DEPTHWISE_CONV_2D",  depthwise.lower_depthwise_conv,       (depthwise.DEPTHWISE_CONV,)),
    OpDef("FULLY_CONNECTED",    fully_connected.lower_fully_connected, (fully_connected.FULLY_CONNECTED,)),
    OpDef("AVERAGE_POOL_2D",    pooling.lower_pool,                   (pooling.AVGPOOL,)),
    OpDef("MAX_POOL_2D",        pooling.lower_pool,                   (pooling.MAXPOOL,)),
    OpDef("ADD",                elementwise.lower_binary,             (elementwise.ADD,)),
    OpDef("MUL",                elementwise.lower_binary,             (elementwise.MUL,)),
    OpDef("SOFTMAX",            softmax.lower_softmax,                (softmax.SOFTMAX,)),
    OpDef("RESHAPE",            data_movement.lower_alias,            (data_movement.ALIAS, data_movement.COPY)),
    OpDef("SQUEEZE",            data_movement.lower_alias,            (data_movement.ALIAS, data_movement.COPY)),
    OpDef("EXPAND_DIMS",        data_movement.lower_alias,            (data_movement.ALIAS, data_movement.COPY)),
    OpDef("CONCATENATION",      data_movement.lower_concatenation,    (data_movement.CONCATENATION,)),
    OpDef("PAD",                data_movement.lower_pad,              (data_movement.PAD,)),
    OpDef("PADV2",              data_movement.lower_pad,              (data_movement.PAD,)),
    OpDef("MEAN",               mean.lower_mean,                      (mean.MEAN, data_movement.COPY)),
    OpDef("QUANTIZE",           requantize.lower_quantize,            (requantize.REQUANTIZE,)),
    OpDef("RELU",               requantize.lower_relu,                (requantize.REQUANTIZE,)),
    OpDef("RELU6",              requantize.lower_relu,                (requantize.REQUANTIZE,)),
)}

#: Every kernel by ``Step.kernel`` name.
KERNELS: dict[str, Kernel] = {k.name: k for op in OPS.values() for k in op.kernels}

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(OPS))


def kernel(name: str) -> Kernel:
    """The registered kernel a step names (KeyError for a name no op declares)."""
    return KERNELS[name]


__all__ = ["KERNELS", "OPS", "SUPPORTED_OPS", "Kernel", "LowerFn", "OpContext", "OpDef", "ScratchFn", "kernel"]
