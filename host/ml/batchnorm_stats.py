"""BatchNormalization statistics of the trained weights ("precise BN"), for validation and deployment.

Keras keeps a BatchNormalization layer's inference statistics as a moving average (momentum 0.99) of the batch
statistics seen while training. After a long training they match the final weights; after a short one (a few
hundred steps, e.g. ``host.experiments --epochs 2 --max-train N``) they average batches of much older weights,
and through a dozen BN layers in a chain the inference model drifts to one class: fashion at 2 epochs on 12k
samples scored 79 % on validation with batch statistics and 11 % with the moving ones. The int8 path converts
the moving statistics, and model selection reads the validation accuracy, so both must be those of the
weights at hand.

:func:`reestimate_batchnorm` sets them to what the moving averages converge to for the weights at hand: Keras
averages per-batch means and per-batch variances, and failout makes a batch's statistics those of one failure
configuration (one draw per node per batch), so the target is, per BN layer, the mixture over failure
configurations c of the statistics of its input under c, weighted by c's probability under failout.
Each configuration is one forward pass in training mode over a fixed set of training samples as one batch
(momentum 0: the layer stores that batch's statistics), with failout forced to c. Statistics taken with every
node alive only would leave a skip path normalised by the normal path's statistics, which training never did
(fashion's edge-failed accuracy fell from 85.6 to 75.6 %). With many failable nodes the most probable
configurations are taken, up to MAX_CONFIGS passes, their weights renormalised. Link-code calibration and the
failout random streams are put back, so the training that continues is unchanged. Deterministic.
:class:`PreciseBatchNorm` runs it before every validation.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

#: At most this many training samples (the first ones: every run and worker takes the same) ...
SAMPLES = 512
#: ... and at most this many input elements in the one batch, so large inputs (ImageNet) fit in memory.
MAX_ELEMENTS = 1 << 24
#: Failure configurations (forward passes) in the mixture at most: all of them up to 4 failable nodes.
MAX_CONFIGS = 16


def batchnorm_layers(model: Any) -> list[Any]:
    """The model's top-level BatchNormalization layers (the split network is flat)."""
    import keras

    return [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]


def statistics_batch(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The samples the statistics are taken over: the first ones, as many as SAMPLES and MAX_ELEMENTS allow."""
    per_sample = sum(int(np.prod(v.shape[1:])) for v in inputs.values())
    n = max(32, min(SAMPLES, MAX_ELEMENTS // max(1, per_sample)))
    return {k: v[:n] for k, v in inputs.items()}


def failure_mixture(survivals: list[float]) -> list[tuple[tuple[bool, ...], float]]:
    """(alive per failout layer, probability) of the most probable failure configurations under failout, at
    most MAX_CONFIGS of them, probabilities renormalised; configurations of probability 0 are left out."""
    configs: list[tuple[tuple[bool, ...], float]] = []
    for alive in itertools.product((True, False), repeat=len(survivals)):
        w = math.prod(s if a else 1.0 - s for a, s in zip(alive, survivals))
        if w > 0.0:
            configs.append((alive, w))
    configs.sort(key=lambda cw: -cw[1])  # stable: ties keep the product's order (more nodes alive first)
    configs = configs[:MAX_CONFIGS]
    total = sum(w for _, w in configs)
    return [(a, w / total) for a, w in configs]


def reestimate_batchnorm(model: Any, batch: dict[str, np.ndarray]) -> bool:
    """Set every BN layer's moving mean/variance to the failout mixture of its input's statistics over
    ``batch`` (see the module). Returns False when the model has no BN layer (nothing done)."""
    from host.ml.layers import Failout
    from host.ml.link_codes import LinkCode

    bns = batchnorm_layers(model)
    if not bns:
        return False
    failouts = [l for l in model.layers if isinstance(l, Failout)]
    codes = [l for l in model.layers if isinstance(l, LinkCode)]
    momenta, survivals = [l.momentum for l in bns], [l.survival for l in failouts]
    saved = [[np.asarray(v) for v in l.non_trainable_weights] for l in codes]
    seeds = [np.asarray(l.seed_generator.state) for l in failouts]
    means = [np.zeros(l.moving_mean.shape, np.float64) for l in bns]
    variances = [np.zeros(l.moving_variance.shape, np.float64) for l in bns]
    try:
        for l in bns:
            l.momentum = 0.0                            # the stored statistics become this batch's
        for alive, weight in failure_mixture(survivals):
            for l, a in zip(failouts, alive):
                l.survival = 1.0 if a else 0.0          # forced: survival 0 drops the node (u <= 0 never holds)
            model(batch, training=True)                 # eager: the attributes above are read now
            for k, l in enumerate(bns):
                means[k] += weight * np.asarray(l.moving_mean, np.float64)
                variances[k] += weight * np.asarray(l.moving_variance, np.float64)
    finally:
        for l, m in zip(bns, momenta):
            l.momentum = m
        for l, s, seed in zip(failouts, survivals, seeds):
            l.survival = s
            l.seed_generator.state.assign(seed)              # the training's failout draws go on as before
        for l, values in zip(codes, saved):
            for var, v in zip(l.non_trainable_weights, values):
                var.assign(v)                           # a training-mode call moves a still-calibrating range
    for l, m, v in zip(bns, means, variances):
        l.moving_mean.assign(m.astype(np.float32))
        l.moving_variance.assign(v.astype(np.float32))
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
