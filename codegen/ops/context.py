"""The view of one operator its lowering works with, and the checks every lowering shares.

Every check raises :class:`UnsupportedOpError` through :meth:`OpContext.fail`, so the message names the
op type, its index and its output tensor: the user sees which layer to change, at generate time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import quant
from ..errors import UnsupportedOpError, shorten
from ..graph import Graph, Operator, Tensor

#: TFLite ActivationFunctionType enum values.
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
#: TFLite Padding enum values.
PADDING = {0: "SAME", 1: "VALID"}


@dataclass(frozen=True)
class LoweringOptions:
    """Choices a user makes for the whole module (CLI flags of ``python -m codegen generate`` / ``verify``)."""

    #: FULLY_CONNECTED weights widened to int16 for our kernels (resilinet_fully_connected_s8_s16w) instead of the
    #: int8 paired-rows layout (resilinet_fully_connected_s8_paired): twice the flash of the FC weights and slower,
    #: so opt-in.
    wide_fc_weights: bool = False


class OpContext:
    """Helpers bound to one op, so checks can raise errors that name it."""

    def __init__(self, graph: Graph, op: Operator, options: LoweringOptions = LoweringOptions()) -> None:
        self.graph = graph
        self.op = op
        self.options = options
        first_out = op.outputs[0] if op.outputs else -1
        self.output_name = graph.tensors[first_out].name if first_out >= 0 else "?"

    def fail(self, reason: str, hint: str = "") -> UnsupportedOpError:
        return UnsupportedOpError(self.op.op_type, self.op.index, self.output_name, reason, hint)

    def t(self, position: int, *, outputs: bool = False) -> Tensor:
        """Input (or output) tensor at ``position``; a missing one is an error."""
        indices = self.op.outputs if outputs else self.op.inputs
        if position >= len(indices) or indices[position] < 0:
            raise self.fail(f"missing {'output' if outputs else 'input'} {position}")
        return self.graph.tensors[indices[position]]

    def optional(self, position: int) -> Tensor | None:
        if position >= len(self.op.inputs) or self.op.inputs[position] < 0:
            return None
        return self.graph.tensors[self.op.inputs[position]]

    def int8_activation(self, t: Tensor, role: str) -> None:
        if t.dtype == "int16":
            raise self.fail(f"{role} '{shorten(t.name)}' is int16 (16x8 quantization); {self.op.op_type} runs with "
                            "int8 activations only", int16_remedy())
        if t.dtype != "int8":
            hint = ("Convert with full-integer quantization "
                    "(inference_input_type=tf.int8, inference_output_type=tf.int8)")
            raise self.fail(f"{role} '{shorten(t.name)}' is {t.dtype}; only int8 activations are supported", hint)
        if t.quant is None:
            raise self.fail(f"{role} '{t.name}' has no quantization parameters")
        if t.quant.per_channel:
            raise self.fail(f"{role} '{t.name}' is quantized per channel; activations must be per tensor")

    def const(self, t: Tensor, role: str, dtype: str) -> np.ndarray:
        if t.data is None:
            raise self.fail(f"{role} '{t.name}' is not a constant", "Only constant weights/biases are supported")
        if t.dtype != dtype:
            raise self.fail(f"{role} '{t.name}' is {t.dtype}, expected {dtype}")
        return t.data

    def activation(self) -> str:
        act = ACTIVATIONS.get(int(self.op.options.get("fused_activation_function", 0) or 0), "?")
        if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
            raise self.fail(f"fused activation {act} is not supported",
                            "Use no activation, RELU, RELU6 or RELU_N1_TO_1")
        return act

    def act_range(self, out: Tensor) -> tuple[int, int]:
        """The int8 clamp of the fused activation on ``out``'s quantization."""
        assert out.quant is not None
        return quant.activation_range(self.activation(), out.quant.scale, out.quant.zero_point)

    def key(self, what: str) -> str:
        """Module-unique key of one of this op's const arrays."""
        return f"op{self.op.index}_{what}"


def int16_remedy() -> str:
    """What a user can do about an op that has no int16 (16x8) lowering: what does run in 16x8, and the
    two real fixes (int8 quantization, or another partition)."""
    from . import INT16_OPS  # the registry imports this module: read it at call time

    runs = (f"int16 activations (16x8) run on {', '.join(INT16_OPS)} only" if INT16_OPS
            else "no op runs with int16 activations (16x8) yet")
    return (f"{runs}. Re-convert with int8 activations: converter.target_spec.supported_ops = "
            "[tf.lite.OpsSet.TFLITE_BUILTINS_INT8] instead of EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_"
            "WEIGHTS_INT8, with inference_input_type = inference_output_type = tf.int8; or keep these ops on "
            "another partition")
