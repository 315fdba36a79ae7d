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
from . import transpose_conv
from . import recurrent
from . import int16, int16_elementwise as e16
from . import float_io, lut, permute
from .base import Kernel, LowerFn, OpDef, ScratchFn
from .int16 import by_activation_type as s16
from .context import OpContext

OPS: dict[str, OpDef] = {op.op_type: op for op in (
    #     TFLite builtin        lowering                              kernels it may produce
    OpDef("CONV_2D",            s16(conv.lower_conv, int16.lower_conv_s16), (conv.CONV, int16.CONV_S16), int16=True),
    OpDef("DEPTHWISE_CONV_2D",  s16(depthwise.lower_depthwise_conv, int16.lower_depthwise_conv_s16),
          (depthwise.DEPTHWISE_CONV, int16.DEPTHWISE_CONV_S16), int16=True),
    OpDef("FULLY_CONNECTED",    s16(fully_connected.lower_fully_connected, int16.lower_fully_connected_s16),
          (fully_connected.FULLY_CONNECTED, int16.FULLY_CONNECTED_S16), int16=True),
    OpDef("AVERAGE_POOL_2D",    s16(pooling.lower_pool, e16.lower_pool_s16), (pooling.AVGPOOL, e16.AVGPOOL_S16), int16=True),
    OpDef("MAX_POOL_2D",        s16(pooling.lower_pool, e16.lower_pool_s16), (pooling.MAXPOOL, e16.MAXPOOL_S16), int16=True),
    OpDef("ADD",                s16(elementwise.lower_binary, e16.lower_binary_s16), (elementwise.ADD, e16.ADD_S16), int16=True),
    OpDef("MUL",                s16(elementwise.lower_binary, e16.lower_binary_s16), (elementwise.MUL, e16.MUL_S16), int16=True),
    OpDef("SOFTMAX",            s16(softmax.lower_softmax, e16.lower_softmax_s16), (softmax.SOFTMAX, e16.SOFTMAX_S16), int16=True),
    OpDef("RESHAPE",            data_movement.lower_alias,            (data_movement.ALIAS, data_movement.COPY),
          ignored_inputs=(1,)),
    OpDef("SQUEEZE",            data_movement.lower_alias,            (data_movement.ALIAS, data_movement.COPY)),
    OpDef("EXPAND_DIMS",        data_movement.lower_alias,            (data_movement.ALIAS, data_movement.COPY)),
    OpDef("CONCATENATION",      data_movement.lower_concatenation,    (data_movement.CONCATENATION,)),
    OpDef("PAD",                data_movement.lower_pad,              (data_movement.PAD,)),
    OpDef("PADV2",              data_movement.lower_pad,              (data_movement.PAD,)),
    OpDef("MEAN",               mean.lower_mean,                      (mean.MEAN, data_movement.COPY)),
    OpDef("QUANTIZE",           s16(requantize.lower_quantize, e16.lower_quantize_s16),
          (requantize.REQUANTIZE, e16.REQUANTIZE_S16, float_io.QUANTIZE_F32), int16=True),
    OpDef("DEQUANTIZE",         float_io.lower_dequantize,            (float_io.DEQUANTIZE_F32,)),
    OpDef("RELU",               s16(requantize.lower_relu, e16.lower_relu_s16), (requantize.REQUANTIZE, e16.REQUANTIZE_S16), int16=True),
    OpDef("RELU6",              s16(requantize.lower_relu, e16.lower_relu_s16), (requantize.REQUANTIZE, e16.REQUANTIZE_S16), int16=True),
    OpDef("LOGISTIC",           s16(lut.lower_lut, e16.lower_activation_s16), (lut.LUT, e16.ACTIVATION_S16), int16=True),
    OpDef("TANH",               s16(lut.lower_lut, e16.lower_activation_s16), (lut.LUT, e16.ACTIVATION_S16), int16=True),
    OpDef("HARD_SWISH",         lut.lower_lut,                        (lut.LUT,)),
    OpDef("LEAKY_RELU",         lut.lower_lut,                        (lut.LUT,)),
    OpDef("SUB",                elementwise.lower_binary,             (elementwise.SUB,)),
    OpDef("TRANSPOSE",          permute.lower_transpose,              (permute.TRANSPOSE,)),
    OpDef("STRIDED_SLICE",      permute.lower_strided_slice,          (permute.STRIDED_SLICE,)),
    OpDef("TRANSPOSE_CONV",     transpose_conv.lower_transpose_conv,  (transpose_conv.TRANSPOSE_CONV,),
          ignored_inputs=(0,)),
    OpDef("UNIDIRECTIONAL_SEQUENCE_LSTM", recurrent.lower_lstm,       (recurrent.LSTM, recurrent.LSTM_S16), stateful=True,
          int16=True),
    OpDef("SVDF",               recurrent.lower_svdf,                 (recurrent.SVDF,), stateful=True),
)}

#: Every kernel by ``Step.kernel`` name.
KERNELS: dict[str, Kernel] = {k.name: k for op in OPS.values() for k in op.kernels}

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(OPS))

#: Ops that also run with int16 activations (16x8 quantization).
INT16_OPS: tuple[str, ...] = tuple(sorted(op for op, d in OPS.items() if d.int16))


def kernel(name: str) -> Kernel:
    """The registered kernel a step names (KeyError for a name no op declares)."""
    return KERNELS[name]


__all__ = ["INT16_OPS", "KERNELS", "OPS", "SUPPORTED_OPS", "Kernel", "LowerFn", "OpContext", "OpDef", "ScratchFn", "kernel"]
