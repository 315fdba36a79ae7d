"""BatchNormalization statistics of the trained weights ("precise BN"), for validation and deployment.

Keras keeps a BatchNormalization layer's inference statistics as a moving average (momentum 0.99) of the batch
statistics seen while training. After a long training they match the final weights; after a short one (a few
hundred steps, e.g. ``host.experiments --epochs 2 --max-train N``) they average batches of much older weights,
and through a dozen BN layers in a chain the inference model drifts to one class: fashion at 2 epochs on 12k
samples scored 79 % on validation with batch statistics and 11 % with the moving ones. The int8 path converts
the moving statistics, and model selection reads the validation accuracy, so both must be those of the
weights at hand.

:func:`reestimate_batchnorm` sets them to the exact statistics of each BN layer's input over a fixed set of
training samples: one forward pass in training mode over those samples as one batch (each BN layer then
normalises by, and with momentum 0 stores, the statistics of its input over the whole set, its predecessors
having done the same), with failout switched off (every node alive, the deployed case) and the link codes'
range calibration put back afterwards. Deterministic, and it draws no random numbers, so training that
continues afterwards is unchanged. :class:`PreciseBatchNorm` runs it before every validation.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: At most this many training samples (the first ones: every run and worker takes the same) ...
SAMPLES = 512
#: ... and at most this many input elements in the one batch, so large inputs (ImageNet) fit in memory.
MAX_ELEMENTS = 1 << 24


def batchnorm_layers(model: Any) -> list[Any]:
    """The model's top-level BatchNormalization layers (the split network is flat)."""
    import keras

    return [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]


def statistics_batch(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The samples the statistics are taken over: the first ones, as many as SAMPLES and MAX_ELEMENTS allow."""
    per_sample = sum(int(np.prod(v.shape[1:])) for v in inputs.values())
    n = max(32, min(SAMPLES, MAX_ELEMENTS // max(1, per_sample)))
    return {k: v[:n] for k, v in inputs.items()}


def reestimate_batchnorm(model: Any, batch: dict[str, np.ndarray]) -> bool:
    """Set every BN layer's moving mean/variance to its input's statistics over ``batch`` (see the module).

    Returns False when the model has no BN layer (nothing done)."""
    from host.ml.layers import Failout
    from host.ml.link_codes import LinkCode

    bns = batchnorm_layers(model)
    if not bns:
        return False
    failouts = [l for l in model.layers if isinstance(l, Failout)]
    codes = [l for l in model.layers if isinstance(l, LinkCode)]
    momenta, survivals = [l.momentum for l in bns], [l.survival for l in failouts]
    calibration = [[np.asarray(v) for v in l.non_trainable_weights] for l in codes]
    try:
        for l in bns:
            l.momentum = 0.0          # the stored statistics become this batch's
        for l in failouts:
            l.survival = 1.0          # every node alive, as deployed (and no random draw)
        model(batch, training=True)   # eager: the attributes above are read now
    finally:
        for l, m in zip(bns, momenta):
            l.momentum = m
        for l, s in zip(failouts, survivals):
            l.survival = s
        for l, values in zip(codes, calibration):
            for var, v in zip(l.non_trainable_weights, values):
                var.assign(v)         # a training-mode call would move a still-calibrating link range
    return True


def PreciseBatchNorm(model: Any, inputs: dict[str, np.ndarray], shadow: Any = None) -> Any:
    """A Keras callback that re-estimates ``model``'s BN statistics before every validation.

    Under a distribution strategy ``model``'s variables are mirrored; the statistics are then computed on
    ``shadow`` (the same network outside the strategy, given ``model``'s weights) and assigned back, the same
    values on every replica and worker."""
    import keras

    batch = statistics_batch(inputs)

    class Impl(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            if shadow is None:
                reestimate_batchnorm(model, batch)
                return
            shadow.set_weights(model.get_weights())
            if reestimate_batchnorm(shadow, batch):
                for mine, theirs in zip(batchnorm_layers(model), batchnorm_layers(shadow)):
                    mine.moving_mean.assign(np.asarray(theirs.moving_mean))
                    mine.moving_variance.assign(np.asarray(theirs.moving_variance))
    return Impl()
