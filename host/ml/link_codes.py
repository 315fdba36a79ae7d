"""Low-bit link codes: fewer bytes on the wire per link tensor (issue 19, docs/protocol.md §"Packed tensors").

A link may carry its int8 tensor as 4- or 2-bit codes. The sender's output keeps ONE int8 scale and zero
point per link (host/deploy/quantize.py), chosen for ``2^bits`` levels, so the tensor's int8 values of the
calibrated range are ``q = LO + c`` with ``c`` in ``0 .. 2^bits - 1`` and ``LO = -128``; a value outside the
range is clamped, ``c = clamp(q - LO, 0, 2^bits - 1)``, by the firmware on send and by the host reference
alike (:func:`clamp_codes`), so the receiver sees the same int8 codes as the reference: bit-exact. The real
value 0 is one of the codes (the zero point is nudged onto the grid, as int8's), so "missing = 0" holds.

Topology: a ``[[links]]`` entry may say ``bits = 2 | 4 | 8`` and/or ``max_bytes = N``. The rule
(:func:`resolve_bits`): ``bits`` given -> those bits (and, with ``max_bytes`` too, the packed tensor must
fit it); only ``max_bytes`` -> the MOST bits of 8, 4, 2 whose packed tensor fits; neither -> 8. A budget
even 2 bits cannot meet is an error naming the link, its elements and the smallest budget that works.

Training (:class:`LinkCode`, on the sender after its failout and skip projection): fake quantization to
``2^bits`` levels with a straight-through estimator; the range follows the batches' min/max (moving
average) for the first ``calib_steps`` training steps and is then frozen; the build deploys that range.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import keras
import numpy as np
from keras import ops

PACKAGE = "resilinet"
# The Keras-free part, re-exported: one definition of the bits rule and the clamp.
from host.ml.link_bits import (BITS, CODE_LO, clamp_codes, code_range, link_budget, packed_bytes,  # noqa: E402,F401
                               resolve_bits)


def layer_name(src: str, dst: str) -> str:
    """Name of a link's :class:`LinkCode` layer (starts with the sender, where it runs)."""
    return f"{src}_to_{dst}_code"


def trained_range(model: Any, src: str, dst: str) -> tuple[float, float] | None:
    """The frozen range a link's :class:`LinkCode` learned in ``model`` (None: the link has none)."""
    try:
        layer = model.get_layer(layer_name(src, dst))
    except ValueError:
        return None
    lo, hi = float(np.asarray(layer.lo)), float(np.asarray(layer.hi))
    return (lo, hi) if hi > lo else None


@keras.saving.register_keras_serializable(PACKAGE)
class LinkCode(keras.layers.Layer):
    """Fake quantization of a link tensor to ``2^bits`` levels with 0 exact (straight-through gradient).

    Training: the first ``calib_steps`` calls move the range towards the batch's min/max (the first one sets
    it), then it is frozen. Inference applies the same grid, so the float evaluation sees the codes.
    """

    def __init__(self, bits: int, calib_steps: int = 300, momentum: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        self.bits = int(bits)
        self.calib_steps = int(calib_steps)
        self.momentum = float(momentum)

    def build(self, input_shape):
        zero = keras.initializers.Zeros()
        self.lo = self.add_weight(name="lo", shape=(), initializer=zero, trainable=False)
        self.hi = self.add_weight(name="hi", shape=(), initializer=zero, trainable=False)
        self.steps = self.add_weight(name="steps", shape=(), initializer=zero, trainable=False)

    def call(self, x, training=None):
        if training:
            # Range: a moving average of the batch min/max while calibrating, then frozen (steps stop).
            bmin = ops.minimum(ops.min(ops.stop_gradient(x)), 0.0)
            bmax = ops.maximum(ops.max(ops.stop_gradient(x)), 0.0)
            # A batch where failout zeroed the tensor says nothing about its range: skipped.
            calibrating = ops.cast(self.steps < self.calib_steps, "float32") * ops.cast(bmax > bmin, "float32")
            m = (1.0 - ops.cast(self.steps < 0.5, "float32")) * self.momentum  # the first batch sets the range
            self.lo.assign(self.lo + calibrating * (1.0 - m) * (bmin - self.lo))
            self.hi.assign(self.hi + calibrating * (1.0 - m) * (bmax - self.hi))
            self.steps.assign(self.steps + calibrating)
        return x + ops.stop_gradient(self._fake_quant(x) - x)

    def _fake_quant(self, x):
        lo, hi = ops.minimum(self.lo, 0.0), ops.maximum(self.hi, 0.0)
        levels = float((1 << self.bits) - 1)
        scale = ops.maximum((hi - lo) / levels, 1e-8)
        zp = ops.round(-lo / scale)  # 0 is a grid point: a missing (zeroed) tensor stays exactly 0
        q = ops.clip(ops.round(x / scale) + zp, 0.0, levels)
        coded = (q - zp) * scale
        return ops.where(hi > lo, coded, x)  # not calibrated yet: pass through

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "calib_steps": self.calib_steps,
                "momentum": self.momentum}


# ----------------------------------------------------------------------------- learned bottlenecks
def narrow_name(src: str, dst: str) -> str:
    """The sender's narrowing layer of a link with ``bottleneck = K`` (its name starts with the sender)."""
    return f"{src}_to_{dst}_narrow"


def widen_name(dst: str) -> str:
    """The receiver's widening layer (its name starts with the receiver, where it runs)."""
    return f"{dst}_widen"


def linear_map(api: Any, units: int, rank: int, name: str, seed: int = 0) -> Any:
    """A bias-free linear layer to ``units`` channels: 1x1 convolution on images, dense otherwise.

    No bias, no activation: the widening of a missing link (the real value 0) is 0 again, so a skip or a
    missing link stays interchangeable with the tensor it stands for (docs/methods.md)."""
    init = api.initializers.GlorotUniform(seed=seed)
    if rank == 4:
        return api.layers.Conv2D(int(units), 1, use_bias=False, kernel_initializer=init, name=name)
    return api.layers.Dense(int(units), use_bias=False, kernel_initializer=init, name=name)
