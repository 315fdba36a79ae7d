"""Training on TensorFlow's own distribution engine: ``--distribute {none,mirrored,multiworker}``.

- ``none``: the default, one device, exactly the trainer as it always was (same models, same cache keys).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over the local GPUs (or the one CPU when there is none).
- ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy` across processes or machines described by
  ``TF_CONFIG`` (``python -m host.ml.launch_workers`` sets it for N local workers). Worker 0 is the chief.

The batch size of a preset is the *global* batch: every step consumes the same ``batch_size`` samples, split
over the replicas, and the replicas' gradients are averaged, so a step means what it means on one device.
Failout keeps its meaning: one draw per failable node per global batch, identical on every replica and
worker (see :class:`host.ml.layers.Failout` and docs/training.md).

TensorFlow configures collective ops once per process, before it runs anything: the CLIs call
:func:`strategy_for` right after parsing their arguments, and :func:`host.ml.train.train` reuses that strategy.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

DISTRIBUTE_CHOICES = ("none", "mirrored", "multiworker")

#: The strategy of this process per kind: TensorFlow allows one collective configuration per process.
_STRATEGIES: dict[str, Any] = {}


class DistributeError(ValueError):
    """A distribution that cannot be set up (unknown kind, TF_CONFIG missing or malformed, created too late)."""


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in a multi-worker cluster (one worker, the chief, without TF_CONFIG)."""

    index: int = 0
    num_workers: int = 1

    @property
    def is_chief(self) -> bool:
        """The chief writes the model cache, checkpoints and the build; the other workers only train."""
        return self.index == 0


def check_kind(kind: str) -> None:
    if kind not in DISTRIBUTE_CHOICES:
        raise DistributeError(f"--distribute {kind!r}: choose one of {', '.join(DISTRIBUTE_CHOICES)}")


def worker_role(kind: str) -> WorkerRole:
    """Which worker this process is; only ``multiworker`` reads TF_CONFIG (and needs it)."""
    check_kind(kind)
    if kind != "multiworker":
        return WorkerRole()
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise DistributeError("--distribute multiworker needs TF_CONFIG (the cluster and this worker's index); "
                              "start local workers with python -m host.ml.launch_workers --workers N -- <command>")
    try:
        conf = json.loads(raw)
        workers = conf["cluster"]["worker"]
        index = int(conf["task"]["index"])
        kind_of_task = conf["task"].get("type", "worker")
    except (ValueError, KeyError, TypeError) as err:
        raise DistributeError(f"TF_CONFIG is not a cluster description ({type(err).__name__}: {err}); expected "
                              '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}') \
            from None
    if kind_of_task != "worker" or not 0 <= index < len(workers):
        raise DistributeError(f"TF_CONFIG task {conf['task']} is not one of the {len(workers)} workers of its cluster")
    return WorkerRole(index, len(workers))


def strategy_for(kind: str) -> Any:
    """The process's strategy for ``kind`` (None for ``none``), created on the first call.

    Call it before TensorFlow runs anything when ``kind`` is ``multiworker``; raises :class:`DistributeError`
    for a bad TF_CONFIG or when TensorFlow was already initialised.
    """
    role = worker_role(kind)  # checks the kind and TF_CONFIG before TensorFlow is imported
    if kind == "none":
        return None
    if kind not in _STRATEGIES:
        import tensorflow as tf

        if kind == "mirrored":
            gpus = tf.config.list_logical_devices("GPU")
            # MirroredStrategy() alone would pick the GPUs too; naming the CPU makes the no-GPU case explicit
            _STRATEGIES[kind] = tf.distribute.MirroredStrategy(None if gpus else ["/cpu:0"])
        else:
            try:
                _STRATEGIES[kind] = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as err:
                raise DistributeError(f"the multi-worker strategy of worker {role.index} could not start: {err} "
                                      "(it must be created before TensorFlow runs anything)") from None
    return _STRATEGIES[kind]


def replicas(kind: str) -> int:
    """Replicas training in sync under ``kind`` (1 for ``none``)."""
    strategy = strategy_for(kind)
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def distribute_options(data: Any, kind: str) -> Any:
    """Deterministic tf.data options; data (not files) sharding across workers, since arrays have no files."""
    import tensorflow as tf

    opts = tf.data.Options()
    opts.deterministic = True
    if kind == "multiworker":
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(opts)


def synchronize_batchnorm(model: Any) -> None:
    """BatchNormalization over the global batch (statistics all-reduced over the replicas) while training.

    Without it every replica normalises by the statistics of its own share of the batch -- another
    model than the one-device one -- and every worker keeps its own moving averages, so the workers would end
    with different weights. Keras reads ``synchronized`` when the training step is traced; the one-device copy
    that :func:`host.ml.train.train` returns and saves is built without it (it changes nothing at inference).
    """
    from host.ml.batchnorm_stats import batchnorm_layers

    for layer in batchnorm_layers(model):
        layer.synchronized = True


def fit_distributed(model: Any, kind: str, train_data: Any, val_data: Any, epochs: int,
                    callbacks: list[Any]) -> dict[str, list[float]]:
    """``model.fit`` under a strategy: Keras' own steps in our loop; returns the history.

    Keras 3 (seen up to 3.15) cannot ``fit`` under MultiWorkerMirroredStrategy: it reduces the first batch
    with ``strategy.reduce`` to build the model (a nested batch like our dict fails), and every step's scalar
    logs with ``axis=0`` (fails on a scalar) -- keras-team/keras#20585, #20329. Under MirroredStrategy ``fit``
    runs, but that first-batch build starts one more iterator, which reshuffles: the epochs see other orders
    than on one device. So this runs the same thing by hand: the model is built from one local batch (only
    shapes matter), then each step is Keras' ``train_step`` / ``test_step`` under ``strategy.run`` (gradients
    all-reduced by the optimizer, as in ``fit``), and the logs are averaged over the replicas (each holds its
    running mean over equal shares of the global batches).
    """
    import keras
    import tensorflow as tf

    strategy = strategy_for(kind)
    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(val_data)))  # builds metrics and optimizer, cross-replica

    def mean_logs(per_replica: Any) -> Any:
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

    train_step = tf.function(lambda batch: mean_logs(strategy.run(model.train_step, args=(batch,))))
    test_step = tf.function(lambda batch: mean_logs(strategy.run(model.test_step, args=(batch,))))
    # distributed once and iterated once per epoch, as fit does: each new iteration reshuffles (seeded)
    train_dist = strategy.experimental_distribute_dataset(train_data)
    val_dist = strategy.experimental_distribute_dataset(val_data)
    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    history: dict[str, list[float]] = {}
    hooks.on_train_begin()
    for epoch in range(epochs):
        hooks.on_epoch_begin(epoch)
        model.reset_metrics()
        for step, batch in enumerate(train_dist):
            logs = train_step(batch)
            hooks.on_train_batch_end(step, logs)
        # Keras' fit starts one more (unused) iterator when an epoch's runs out, and every new iterator
        # reshuffles: one device sees shuffle k = 2e + 1 in epoch e. Doing the same keeps the orders equal.
        iter(train_dist)
        epoch_logs = {k: float(v) for k, v in logs.items()}
        model.reset_metrics()
        hooks.on_test_begin()  # as fit's validation does (host.ml.batchnorm_stats re-estimates BN here)
        for batch in val_dist:
            logs = test_step(batch)
        hooks.on_test_end()
        epoch_logs.update({f"val_{k}": float(v) for k, v in logs.items()})
        hooks.on_epoch_end(epoch, epoch_logs)
        for k, v in epoch_logs.items():
            history.setdefault(k, []).append(v)
    hooks.on_train_end()
    return history


def all_workers_agree(kind: str, flag: bool) -> bool:
    """True when ``flag`` is true on every worker (a collective: every worker must call it)."""
    strategy = strategy_for(kind)
    if kind != "multiworker":
        return flag
    import tensorflow as tf

    @tf.function  # collectives run eagerly cost more (TensorFlow warns)
    def total(v):
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(v)), axis=None)
    return float(total(tf.constant(1.0 if flag else 0.0))) == float(strategy.num_replicas_in_sync)


def weights_digest(model: Any) -> str:
    """A short hash of every weight (trainable or not): equal digests mean identical models on two workers."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]
