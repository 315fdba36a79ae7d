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
``2^bits`` levels with a straight-through estimator (none for the values the code clamps); the range follows,
as a moving average over the first ``calib_steps`` training steps, each batch's clipped range with the least
quantization error (a fraction of its [min, max]), and is then frozen; the build deploys that range.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import keras
import numpy as np
from keras import ops

PACKAGE = "resilinet"
# The Keras-free part, re-exported: one definition of the bits rule and the clamp.
from host.ml.link_bits import (BITS, CODE_LO, LINK_CODE_VERSION, clamp_codes, code_range,  # noqa: E402,F401
                               link_budget, packed_bytes, range_groups, resolve_bits)


#: How a LinkCode picks its range while calibrating: "minmax" (the batches' extremes; models saved before the
#: clipped range read back with it) or "mse" (the clipped range with the least quantization error, what
#: schemes builds: issue 19's 2-bit fashion lost 1.4 points with min/max).
CLIPS = ("minmax", "mse")
#: Candidate fractions of the batch's [min, max] the "mse" range is chosen from.
CLIP_FRACTIONS = tuple(k / 32 for k in range(2, 33))
#: About how many elements of a batch the "mse" search looks at (a strided sample).
MSE_SAMPLE = 32768
MSE_STRIDES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
               101, 127, 131, 157, 181, 211, 257, 307, 401, 503, 601, 701, 809, 1009, 2003, 4001, 8009, 10**9 + 7)


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


def trained_bits(model: Any, src: str, dst: str) -> int:
    """The bits a link's codes were trained with in ``model``: its :class:`LinkCode`'s, 8 when it has none."""
    try:
        return int(model.get_layer(layer_name(src, dst)).bits)
    except ValueError:
        return 8


@keras.saving.register_keras_serializable(PACKAGE)
class LinkCode(keras.layers.Layer):
    """Fake quantization of a link tensor to ``2^bits`` levels with 0 exact (straight-through gradient).

    Training: the first ``calib_steps`` calls move the range towards the batch's best range (``clip``: "mse",
    the fraction of its min/max with the least quantization error; "minmax", its min/max), the first one sets
    it; then it is frozen. Inference applies the same grid, so the float evaluation sees the codes.
    """

    def __init__(self, bits: int, calib_steps: int = 300, momentum: float = 0.9, clip: str = "minmax",
                 share: str = "", **kwargs):
        super().__init__(**kwargs)
        self.share = str(share)  # links with the same non-empty share train one range (SharedRanges)
        if clip not in CLIPS:
            raise ValueError(f"LinkCode clip = {clip!r}: use one of {', '.join(CLIPS)}")
        self.bits = int(bits)
        self.clip = clip
        self.calib_steps = int(calib_steps)
        self.momentum = float(momentum)

    def build(self, input_shape):
        zero = keras.initializers.Zeros()
        self.lo = self.add_weight(name="lo", shape=(), initializer=zero, trainable=False)
        self.hi = self.add_weight(name="hi", shape=(), initializer=zero, trainable=False)
        self.steps = self.add_weight(name="steps", shape=(), initializer=zero, trainable=False)

    def call(self, x, training=None):
        if training:
            # Range: a moving average of each batch's best range while calibrating, then frozen (steps stop).
            bmin = ops.minimum(ops.min(ops.stop_gradient(x)), 0.0)
            bmax = ops.maximum(ops.max(ops.stop_gradient(x)), 0.0)
            if self.clip == "mse":  # searched only while calibrating (the search costs more than the step)
                bmin, bmax = ops.cond(self.steps < self.calib_steps,
                                      lambda: self._mse_range(ops.stop_gradient(x), bmin, bmax),
                                      lambda: (bmin, bmax))
            # A batch where failout zeroed the tensor says nothing about its range: skipped.
            calibrating = ops.cast(self.steps < self.calib_steps, "float32") * ops.cast(bmax > bmin, "float32")
            m = (1.0 - ops.cast(self.steps < 0.5, "float32")) * self.momentum  # the first batch sets the range
            self.lo.assign(self.lo + calibrating * (1.0 - m) * (bmin - self.lo))
            self.hi.assign(self.hi + calibrating * (1.0 - m) * (bmax - self.hi))
            self.steps.assign(self.steps + calibrating)
        lo, hi = ops.minimum(self.lo, 0.0), ops.maximum(self.hi, 0.0)
        coded = ops.where(hi > lo, self._fake_quant(x, lo, hi), x)  # not calibrated yet: pass through
        if self.clip == "mse":
            # Clipped straight-through: no gradient for values the code clamps (raising them changes nothing
            # on the wire), the identity inside the range.
            inside = ops.where(hi > lo, ops.cast((x >= lo) & (x <= hi), x.dtype), 1.0)
            return ops.stop_gradient(coded) + inside * (x - ops.stop_gradient(x))
        return x + ops.stop_gradient(coded - x)

    def _fake_quant(self, x, lo, hi):
        """``x`` on the grid of ``2^bits`` levels over [lo, hi] (lo <= 0 <= hi; broadcasts over candidates)."""
        levels = float((1 << self.bits) - 1)
        scale = ops.maximum((hi - lo) / levels, 1e-8)
        zp = ops.round(-lo / scale)  # 0 is a grid point: a missing (zeroed) tensor stays exactly 0
        q = ops.clip(ops.round(x / scale) + zp, 0.0, levels)
        return (q - zp) * scale

    def _mse_range(self, x, bmin, bmax):
        """Of [a*bmin, a*bmax] for a in CLIP_FRACTIONS, the range whose codes are closest to ``x`` (mean squared
        error). With 4 or 16 levels the batch's extremes waste most of the grid on rare values: a clipped range
        codes the bulk of the tensor finer and loses much less (0 stays a grid point: both ends scale alike)."""
        flat = ops.reshape(x, (-1,))
        n = int(np.prod(x.shape[1:])) if None not in x.shape[1:] else 1
        # A strided sample (about MSE_SAMPLE of a batch of 64) bounds the cost; a prime stride so that it does
        # not keep landing on the same channel.
        stride = next(p for p in MSE_STRIDES if p >= (n * 64) // MSE_SAMPLE) if n * 64 > MSE_SAMPLE else 1
        flat = flat[::stride][None, :]
        a = ops.convert_to_tensor(CLIP_FRACTIONS, dtype=x.dtype)[:, None]
        err = ops.mean(ops.square(self._fake_quant(flat, a * bmin, a * bmax) - flat), axis=1)
        best = ops.take(a[:, 0], ops.argmin(err))
        return best * bmin, best * bmax

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "calib_steps": self.calib_steps,
                "momentum": self.momentum, "clip": self.clip, "share": self.share}


class SharedRanges(keras.callbacks.Callback):
    """Training callback: the LinkCode layers of one ``share`` group end calibration with one range.

    The build deploys one int8 scale/zero point per group of links (mux partners, ...): the union of their
    trained ranges. Left apart, a partner trained on a narrower range than the union would be coded on
    another grid on the board than in training (at 2 bits, a grid twice as coarse). So after every
    calibrating step each member takes the union of the group's ranges; once all have frozen, they agree."""

    def __init__(self, model: Any):
        super().__init__()
        groups: dict[str, list[LinkCode]] = {}
        for layer in _all_layers(model):
            if isinstance(layer, LinkCode) and layer.share:
                groups.setdefault(layer.share, []).append(layer)
        self.groups = [g for g in groups.values() if len(g) > 1]

    def on_train_batch_end(self, batch, logs=None):
        live = []
        for group in self.groups:
            lo = min(float(np.asarray(l.lo)) for l in group)
            hi = max(float(np.asarray(l.hi)) for l in group)
            for l in group:
                l.lo.assign(lo)
                l.hi.assign(hi)
            if any(float(np.asarray(l.steps)) < l.calib_steps for l in group):
                live.append(group)  # done with a group once all its members are frozen (and tied)
        self.groups = live


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_all_layers(layer))
    return out


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
