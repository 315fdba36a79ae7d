"""Training a split network, deterministic and cached under a hash of everything that shapes it."""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host.ml.datasets import Dataset
from host.ml.distribute import all_workers_agree, distribute_options, fit_distributed, replicas, strategy_for, \
    synchronize_batchnorm, weights_digest, worker_role
from host.ml.batchnorm_stats import PreciseBatchNorm
from host.ml.link_bits import LINK_CODE_VERSION
from host.paths import cache_dir
from host.ml.topology import Topology

#: Bump when a change to the builders or the trainer changes what a given configuration produces.
#: 2: ties in best validation accuracy are broken by the lower validation loss (was: first epoch).
#: 3: BatchNorm statistics re-estimated before each validation (host/ml/batchnorm_stats.py), every node alive.
#: 4: ... as the failout mixture of the failure configurations' statistics.
TRAINER_VERSION = 4


@dataclass
class TrainConfig:
    """What to train. Defaults come from the topology's ``[training]`` table, then these."""

    scheme: str = "resilinet"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    #: "constant" (the paper's Adam default) or "cosine" (decay to 0 over all epochs)
    lr_schedule: str = "constant"
    #: failout survival rate: a number for every failable node, or "variable" (= each node's reliability
    #: in ``reliability_setting``: the paper's "Variable failout 1x")
    failout_survival: float | str = 0.9
    #: hyperconnection weight scheme 1-4 (spec §6.2); 2 and 3 need ``reliability_setting``
    weight_scheme: int = 1
    reliability_setting: str | None = None
    #: names of the skip hyperconnections to keep (None = all of the topology's)
    skips: list[str] | None = None
    seed: int = 0
    augment: bool = False
    #: "none" (one device), "mirrored" or "multiworker" (host.ml.distribute); batch_size is the global batch
    distribute: str = "none"
    #: a .keras / .weights.h5 file whose weights the model starts from (None: the seeded initialisation)
    init_weights: str | None = None

    @classmethod
    def from_topology(cls, topo: Topology, **overrides: Any) -> "TrainConfig":
        base = {k: v for k, v in topo.training.items() if k in cls.__dataclass_fields__}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


@dataclass
class TrainedModel:
    model: Any                    # keras.Model with inputs x, alive and outputs probs, present
    config: TrainConfig
    key: str
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    seconds: float = 0.0
    cached: bool = False


#: A training of at most this many optimizer steps runs eagerly (quick builds, tests): tracing the train and
#: validation steps of a large network costs more CPU than it saves (ResNet-18: ~30 s vs ~2 s for one step).
EAGER_MAX_STEPS = 4


def configure_determinism(seed: int) -> None:
    """Same seed, same weights: seeded RNGs and deterministic TF kernels."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def survival_map(topo: Topology, cfg: TrainConfig) -> dict[str, float]:
    if cfg.failout_survival == "variable":
        if not cfg.reliability_setting:
            raise ValueError("variable failout needs a reliability setting (its survival = each node's reliability)")
        return dict(zip(topo.failure_order, topo.reliabilities(cfg.reliability_setting)))
    return {n: float(cfg.failout_survival) for n in topo.failure_order}


def cache_key(topo: Topology, ds: Dataset, cfg: TrainConfig) -> str:
    """A hash of everything that shapes the trained model.

    A distributed training is keyed by its strategy and replica count: it does one device's arithmetic but
    sums gradients and BatchNorm statistics over replicas in another order, so its weights are close to, not
    bit-identical with, one device's (docs/training.md). The starting weights are keyed by the file's content. Defaults add nothing, so one-device models
    keep the keys they had before these options existed.
    """
    train = asdict(cfg)
    kind, init = train.pop("distribute"), train.pop("init_weights")
    spec: dict[str, Any] = {"topology": topo.to_dict(), "dataset": dataset_fingerprint(ds), "train": train,
                            "version": TRAINER_VERSION}
    if kind != "none":
        spec["distribute"] = {"kind": kind, "replicas": replicas(kind)}
    if any(l.bits not in (None, 8) or l.max_bytes is not None for l in topo.links):
        spec["link_code"] = LINK_CODE_VERSION  # only networks with coded links: the others keep their keys
    if init:
        spec["init_weights"] = hashlib.sha256(Path(init).read_bytes()).hexdigest()
    blob = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dataset_fingerprint(ds: Dataset) -> str:
    """A hash of the data a model is trained and selected on (labels fully, features sparsely)."""
    h = hashlib.sha256(ds.name.encode())
    for arr in (ds.x_train, ds.y_train, ds.x_val, ds.y_val):
        h.update(str(arr.shape).encode())
        flat = np.ascontiguousarray(arr).reshape(-1)
        h.update(flat[:: max(1, flat.size // 65536)].tobytes())
    return h.hexdigest()[:16]


def build_for(topo: Topology, ds: Dataset, cfg: TrainConfig):
    """The untrained Keras model for a training configuration."""
    from host.ml.schemes import BuildOptions, build_model, get_scheme

    scheme = get_scheme(cfg.scheme)
    t = topo.with_skips(cfg.skips)
    weights = t.hyperconnection_weights(cfg.weight_scheme, cfg.reliability_setting, seed=cfg.seed)
    opts = BuildOptions(input_shape=tuple(ds.x_train.shape[1:]), num_classes=ds.num_classes,
                        feature_groups=ds.feature_groups, survival=survival_map(topo, cfg),
                        link_weights=weights, seed=cfg.seed)
    return build_model(t, scheme, opts)


def train(topo: Topology, ds: Dataset, cfg: TrainConfig, *, progress: bool = True,
          use_cache: bool = True) -> TrainedModel:
    """Train (or load from the cache) one model; keeps the weights of the epoch with the best val accuracy.

    ``use_cache=False`` retrains even when a cached model exists (the new model replaces it).
    Distributed (``cfg.distribute``): every worker calls this in step; only the chief writes the cache, and
    every worker gets back an ordinary (one-device) copy of the trained model, so evaluating it needs no
    other worker.
    """
    import keras

    strategy = strategy_for(cfg.distribute)
    role = worker_role(cfg.distribute)
    key = cache_key(topo, ds, cfg)
    path = cache_dir() / "models" / f"{key}.keras"
    meta_path = path.with_suffix(".json")
    # workers on other machines have their own caches: train unless every one of them has the model
    if all_workers_agree(cfg.distribute, use_cache and path.exists() and meta_path.exists()):
        from host.ml import layers  # noqa: F401  (registers the custom layers)
        model = keras.saving.load_model(path, compile=False)
        meta = json.loads(meta_path.read_text())
        return TrainedModel(model, cfg, key, meta["history"], meta["best_epoch"], meta["seconds"], cached=True)

    configure_determinism(cfg.seed)
    with strategy.scope() if strategy is not None else nullcontext():  # variables mirrored on every replica
        model = build_for(topo, ds, cfg)
        if strategy is not None:
            synchronize_batchnorm(model)
        if cfg.init_weights:
            load_initial_weights(model, Path(cfg.init_weights))
        trainable = keras.Model(model.inputs, model.get_layer("probs").output)
        lr: Any = cfg.learning_rate
        if cfg.lr_schedule == "cosine":
            steps = cfg.epochs * -(-len(ds.x_train) // cfg.batch_size)
            lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps)
        elif cfg.lr_schedule != "constant":
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', not {cfg.lr_schedule!r}")
        steps = cfg.epochs * -(-len(ds.x_train) // cfg.batch_size)
        trainable.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"], run_eagerly=strategy is None and steps <= EAGER_MAX_STEPS)
    train_data = _pipeline(ds.x_train, ds.y_train, len(topo.failure_order), cfg, shuffle=True)
    val_data = _pipeline(ds.x_val, ds.y_val, len(topo.failure_order), cfg, shuffle=False)

    best = _BestWeights()
    from host.ml.link_codes import SharedRanges  # imports Keras: only once training starts

    # validation (so model selection) and the saved model use BN statistics of the weights at hand; distributed,
    # they are computed on a one-device copy of the network, which is also what this function returns
    shadow = build_for(topo, ds, cfg) if strategy is not None else None
    alive = np.ones((len(ds.x_train), len(topo.failure_order)), np.float32)
    callbacks: list[Any] = [PreciseBatchNorm(model, {"x": ds.x_train, "alive": alive}, shadow), best,
                            SharedRanges(trainable)]  # links deployed with one scale train one range
    if progress and role.is_chief:
        callbacks.append(_RichProgress(f"{topo.name}/{cfg.scheme}", cfg.epochs, len(ds.x_train), cfg.batch_size))
    t0 = time.time()
    if strategy is not None:
        history = fit_distributed(trainable, cfg.distribute, train_data, val_data, cfg.epochs, callbacks)
    else:
        hist = trainable.fit(train_data, validation_data=val_data, epochs=cfg.epochs, verbose=0,
                             callbacks=callbacks, shuffle=False)  # tf.data already shuffles, seeded
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    seconds = time.time() - t0
    best.restore(trainable)

    if shadow is not None:
        # the trained model outside any strategy: running a distributed model would wait for the other workers
        shadow.set_weights(model.get_weights())
        model = shadow
        print(f"worker {role.index}/{role.num_workers}: trained weights digest {weights_digest(model)}", flush=True)
    if role.is_chief:
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        meta_path.write_text(json.dumps({"history": history, "best_epoch": best.epoch, "seconds": seconds,
                                         "config": asdict(cfg)}, indent=1))
    return TrainedModel(model, cfg, key, history, best.epoch, seconds)


class WeightsError(ValueError):
    """A --weights file that cannot be read or does not fit the model (the message says which array)."""


def load_initial_weights(model: Any, path: Path) -> None:
    """Start ``model`` from the weights in ``path``: a whole saved model (.keras) or a .weights.h5 file."""
    import keras

    if not path.is_file():
        raise WeightsError(f"--weights {path}: no such file")
    if path.name.endswith(".weights.h5"):
        try:
            model.load_weights(path)
        except ValueError as err:
            raise WeightsError(f"--weights {path} does not fit model {model.name}: {' '.join(str(err).split())[:300]}") \
                from None
        return
    if path.suffix != ".keras":
        raise WeightsError(f"--weights {path}: expected a .keras model or a .weights.h5 file")
    from host.ml import layers  # noqa: F401  (registers the custom layers)
    try:
        source = keras.saving.load_model(path, compile=False).get_weights()
    except (ValueError, OSError) as err:
        raise WeightsError(f"--weights {path}: not a readable Keras model ({err})") from None
    target = model.weights
    if len(source) != len(target):
        raise WeightsError(f"--weights {path} holds {len(source)} arrays, model {model.name} has {len(target)}: "
                           "train it from the same preset, partition and scheme")
    for got, var in zip(source, target):
        if tuple(got.shape) != tuple(var.shape):
            raise WeightsError(f"--weights {path}: {var.path} is {tuple(var.shape)} in model {model.name}, "
                               f"{tuple(got.shape)} in the file")
    model.set_weights(source)


def _pipeline(x: np.ndarray, y: np.ndarray, n_failable: int, cfg: TrainConfig, *, shuffle: bool):
    import tensorflow as tf

    alive = np.ones((len(x), n_failable), np.float32)
    data = tf.data.Dataset.from_tensor_slices(({"x": x, "alive": alive}, y))
    if shuffle:
        data = data.shuffle(len(x), seed=cfg.seed, reshuffle_each_iteration=True)
    data = data.batch(cfg.batch_size)  # the global batch: a strategy splits it over its replicas
    if shuffle and cfg.augment and x.ndim == 4:
        # one call at a time: the augmentation's random layers draw from one seeded stream, in batch order
        data = data.map(_augment(cfg.seed), num_parallel_calls=1)
    return distribute_options(data.prefetch(tf.data.AUTOTUNE), cfg.distribute)


def _augment(seed: int):
    """Shifts and horizontal flips (the paper's CIFAR augmentation, minus rotation)."""
    import keras

    aug = keras.Sequential([keras.layers.RandomTranslation(0.2, 0.2, seed=seed),
                            keras.layers.RandomFlip("horizontal", seed=seed + 1)])

    def fn(inputs, y):
        return {"x": aug(inputs["x"], training=True), "alive": inputs["alive"]}, y
    return fn


class _BestWeights:
    """Keeps the weights of the epoch with the best validation accuracy (the paper's model selection).

    Epochs tied at the best validation accuracy are told apart by the lower validation loss. The authors'
    Keras ``ModelCheckpoint`` keeps the *first* of them, which never matters on data whose validation
    accuracy keeps moving, but on an easy validation set that saturates (100 % on the synthetic Health
    data from epoch 3-6 on) it freezes the model after a few epochs, long before the rarely exercised
    failure paths are trained -- ResiliNet's skips only learn in the ~10 % of batches where failout drops
    the node below, and the path through two skips in ~1 %.
    """

    def __new__(cls):
        import keras

        class Impl(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.best = -1.0
                self.best_loss = float("inf")
                self.weights = None
                self.epoch = 0

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                acc = logs.get("val_accuracy", 0.0)
                loss = logs.get("val_loss", float("inf"))
                if acc > self.best or (acc == self.best and loss < self.best_loss):
                    self.best, self.best_loss, self.epoch = acc, loss, epoch + 1
                    self.weights = self.model.get_weights()

            def restore(self, model):
                if self.weights is not None:
                    model.set_weights(self.weights)
        return Impl()


class _RichProgress:
    """A rich progress bar over all batches of all epochs, with loss and accuracy."""

    def __new__(cls, label: str, epochs: int, n: int, batch: int):
        import keras
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        steps = -(-n // batch)

        class Impl(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
                self.bar.start()
                self.task = self.bar.add_task(f"train {label}", total=epochs * steps, info="")

            def on_train_batch_end(self, b, logs=None):
                self.bar.advance(self.task)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                info = (f"epoch {epoch + 1}/{epochs} loss {logs.get('loss', 0):.3f} "
                        f"acc {logs.get('accuracy', 0):.3f} val {logs.get('val_accuracy', 0):.3f}")
                self.bar.update(self.task, info=info)
                print(f"{label}: {info}", flush=True)  # a line per epoch stays in logs and CI output

            def on_train_end(self, logs=None):
                self.bar.stop()
        return Impl()
