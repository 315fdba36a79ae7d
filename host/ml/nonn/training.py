"""Training the teacher and distilling the students: losses, augmentation, seeded loops, a model cache.

Both loops are plain ``tf.GradientTape`` loops (the student loss needs the teacher's logits and filter
activations of the same augmented batch), seeded end to end: batch order from ``numpy`` generators keyed
by (seed, epoch), augmentation and failure draws from stateless TF ops keyed by (seed, step), and
``host.ml.train.configure_determinism`` for the kernels. Each loop keeps the weights of the epoch with the
best validation accuracy (all students alive), like ``host.ml.train``.

Loss (``docs/nonn.md`` §3.6, [CODE]): ``L = L_KD + L_AT`` with
``L_KD = 2 alpha T^2 mean_{batch x classes}(p_T (log p_T - log softmax(z_S / T))) + (1 - alpha) CE(z_S, y)``
(PyTorch's default ``kl_div`` reduction, as in the framework) and
``L_AT = beta * mean_{batch x features}((v_S / |v_S| - v_T / |v_T|)^2)`` over the concatenation of all
student vectors against the teacher filters of their parts, in student order.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from host.ml.datasets import Dataset
from host.paths import cache_dir
from host.ml.train import configure_determinism, dataset_fingerprint
from host.ml.nonn.networks import StudentConfig, TeacherConfig, build_teacher, build_unified, part_of_student
from host.ml.nonn.partition import Partition

#: Bump when a change to the builders or loops changes what a given configuration produces.
NONN_TRAINER_VERSION = 1


@dataclass(frozen=True)
class TrainSettings:
    """One training run. ``optimizer`` "sgd" (Nesterov momentum 0.9) or "adam"; cosine decay to 0."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    augment: bool = True
    seed: int = 0
    #: distillation only: KD weight, temperature, activation-transfer weight ([CODE] defaults)
    alpha: float = 0.9
    temperature: float = 4.0
    beta: float = 1e4
    #: distillation only: probability that a student is dropped (per sample) in training. 0 = never,
    #: as far as the papers say ([NOT FOUND] whether the Electronics paper simulated failures).
    train_drop: float = 0.0


TEACHER_TRAIN = TrainSettings(epochs=15, optimizer="sgd", learning_rate=0.1, weight_decay=5e-4)
STUDENT_TRAIN = TrainSettings(epochs=10, optimizer="adam", learning_rate=2e-3)


@dataclass
class Trained:
    model: Any
    key: str
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    seconds: float = 0.0
    cached: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- losses
def kd_loss(student_logits, teacher_logits, labels, alpha: float = 0.9, temperature: float = 4.0):
    """NoNN's KD term: ``2 alpha T^2 * KL(mean over batch x classes) + (1 - alpha) * CE``."""
    import tensorflow as tf

    t = float(temperature)
    p_t = tf.nn.softmax(teacher_logits / t, axis=-1)
    log_p_s = tf.nn.log_softmax(student_logits / t, axis=-1)
    kl = tf.reduce_mean(tf.math.xlogy(p_t, p_t) - p_t * log_p_s)
    ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), student_logits))
    return 2.0 * alpha * t * t * kl + (1.0 - alpha) * ce


def at_loss(student_vec, teacher_vec, beta: float = 1e4):
    """NoNN's activation-transfer term: beta * mean squared difference of the per-sample L2-normalised vectors."""
    import tensorflow as tf

    s = tf.math.l2_normalize(student_vec, axis=-1, epsilon=1e-12)
    t = tf.math.l2_normalize(teacher_vec, axis=-1, epsilon=1e-12)
    return beta * tf.reduce_mean(tf.square(s - t))


def target_indices(partition: Partition, num_students: int) -> list[int]:
    """Teacher filter index of every entry of the concatenated student vectors (student i: part i mod M)."""
    return [f for a in part_of_student(num_students, partition.num_parts) for f in partition.parts[a]]


# ------------------------------------------------------------------------------- augmentation
def augment(x, seed):
    """Random crop after zero-padding by H/8 (4 px on 32x32) and a horizontal flip per image; ``seed`` is
    a stateless seed pair, so the same (seed, step) gives the same images."""
    import tensorflow as tf

    h, w = int(x.shape[1]), int(x.shape[2])
    pad = max(1, h // 8)
    xp = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    r = tf.random.stateless_uniform(tf.stack([tf.shape(x)[0], 3]), seed=seed)
    oy = tf.minimum(tf.cast(r[:, 0] * (2 * pad + 1), tf.int32), 2 * pad)
    ox = tf.minimum(tf.cast(r[:, 1] * (2 * pad + 1), tf.int32), 2 * pad)
    flip = r[:, 2] < 0.5
    rows = oy[:, None] + tf.range(h)[None, :]
    ar = tf.range(w)[None, :]
    cols = ox[:, None] + tf.where(flip[:, None], w - 1 - ar, ar)
    xp = tf.gather(xp, rows, axis=1, batch_dims=1)
    return tf.gather(xp, cols, axis=2, batch_dims=1)


# --------------------------------------------------------------------------------- plumbing
def _optimizer(cfg: TrainSettings, steps: int):
    import keras

    lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=max(1, steps))
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay or None)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=cfg.weight_decay or None)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', not {cfg.optimizer!r}")


def _batches(n: int, batch: int, seed: int, epoch: int):
    order = np.random.default_rng([seed, epoch]).permutation(n)
    for s in range(0, n, batch):
        yield order[s:s + batch]


class _Bar:
    """A rich progress bar over all steps of all epochs, and one printed line per epoch either way."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.enabled = label, enabled
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn())
            self.task = self.bar.add_task(label, total=total, info="")

    def __enter__(self):
        if self.enabled:
            self.bar.start()
        return self

    def advance(self) -> None:
        if self.enabled:
            self.bar.advance(self.task)

    def epoch(self, text: str) -> None:
        if self.enabled:
            self.bar.update(self.task, info=text)
            self.bar.console.print(f"{self.label}: {text}", highlight=False)
        else:
            print(f"{self.label}: {text}", flush=True)  # a line per epoch stays in logs

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_cached(path: Path, key: str) -> Trained | None:
    import keras

    from host.ml.nonn import networks as models  # noqa: F401  (registers PartAverage)

    meta_path = path.with_suffix(".json")
    if not (path.exists() and meta_path.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    model = keras.saving.load_model(path, compile=False)
    return Trained(model, key, meta["history"], meta["best_epoch"], meta["seconds"], True, meta)


def _save(path: Path, tr: Trained, extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tr.model.save(path)
    tr.meta = {"history": tr.history, "best_epoch": tr.best_epoch, "seconds": tr.seconds, **extra}
    path.with_suffix(".json").write_text(json.dumps(tr.meta, indent=1, default=str))


def predict(model, inputs, batch: int = 500) -> Any:
    """``model`` on numpy ``inputs`` (an array or a dict of arrays) in inference mode, batched; numpy out
    (a dict or list when the model has several outputs). One traced function per model, no tf.data."""
    import tensorflow as tf

    fn = getattr(model, "_nonn_predict", None)
    if fn is None:
        fn = tf.function(lambda b: model(b, training=False), reduce_retracing=True)
        object.__setattr__(model, "_nonn_predict", fn)  # untracked by Keras
    n = len(inputs["x"] if isinstance(inputs, dict) else inputs)
    outs = []
    for s in range(0, n, batch):
        b = {k: v[s:s + batch] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[s:s + batch]
        outs.append(fn(b))
    if isinstance(outs[0], dict):
        return {k: np.concatenate([np.asarray(o[k]) for o in outs]) for k in outs[0]}
    if isinstance(outs[0], (list, tuple)):
        return [np.concatenate([np.asarray(o[i]) for o in outs]) for i in range(len(outs[0]))]
    return np.concatenate([np.asarray(o) for o in outs])


def _signature(ds: Dataset):
    import tensorflow as tf

    return [tf.TensorSpec((None,) + tuple(ds.input_shape), tf.float32), tf.TensorSpec((None,), tf.int64),
            tf.TensorSpec((2,), tf.int64)]


# ------------------------------------------------------------------------------------ teacher
def teacher_key(ds: Dataset, tcfg: TeacherConfig, train: TrainSettings) -> str:
    return _hash({"kind": "teacher", "dataset": dataset_fingerprint(ds), "teacher": asdict(tcfg),
                  "train": asdict(train), "version": NONN_TRAINER_VERSION})


def train_teacher(ds: Dataset, tcfg: TeacherConfig = TeacherConfig(), train: TrainSettings = TEACHER_TRAIN, *,
                  progress: bool = True, use_cache: bool = True) -> Trained:
    """Train (or load from the cache) the teacher on ``ds``: cross-entropy, best validation epoch kept."""
    import tensorflow as tf

    key = teacher_key(ds, tcfg, train)
    path = cache_dir() / "nonn" / f"teacher-{key}.keras"
    if use_cache and (hit := _load_cached(path, key)) is not None:
        return hit
    configure_determinism(train.seed)
    model = build_teacher(ds.input_shape, ds.num_classes, tcfg, seed=train.seed)
    steps = -(-len(ds.x_train) // train.batch_size)
    opt = _optimizer(train, train.epochs * steps)
    opt.build(model.trainable_variables)

    @tf.function(input_signature=_signature(ds))
    def step(x, y, seed):
        if train.augment:
            x = augment(x, seed)
        with tf.GradientTape() as tape:
            logits = model(x, training=True)["logits"]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(y, tf.int32), logits))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss, tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int64), y), tf.float32))

    def val_acc() -> float:
        return float(np.mean(np.argmax(predict(model, ds.x_val)["logits"], 1) == ds.y_val))

    tr = _loop(model, step, val_acc, ds.x_train, ds.y_train, train, f"teacher {ds.name}", progress)
    tr.key = key
    test = float(np.mean(np.argmax(predict(model, ds.x_test)["logits"], 1) == ds.y_test)) if len(ds.y_test) else None
    _save(path, tr, {"kind": "teacher", "teacher": asdict(tcfg), "train": asdict(train), "test_accuracy": test,
                     "train_samples": len(ds.x_train)})
    return tr


def _loop(model, step, val_acc: Callable[[], float], x: np.ndarray, y: np.ndarray, train: TrainSettings,
          label: str, progress: bool) -> Trained:
    """The shared epoch loop: seeded batches, one line per epoch, best validation weights restored."""
    import tensorflow as tf

    n = len(x)
    steps = -(-n // train.batch_size)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_accuracy": [], "seconds": []}
    best, best_w, best_epoch = -1.0, None, 0
    t0 = time.time()
    k = 0
    with _Bar(f"train {label}", train.epochs * steps, progress) as bar:
        for epoch in range(train.epochs):
            te = time.time()
            losses, accs = [], []
            for idx in _batches(n, train.batch_size, train.seed, epoch):
                seed = tf.constant([train.seed, k], tf.int64)
                loss, acc = step(tf.constant(x[idx]), tf.constant(y[idx]), seed)
                losses.append(float(loss) * len(idx))
                accs.append(float(acc) * len(idx))
                k += 1
                bar.advance()
            va = val_acc()
            history["loss"].append(sum(losses) / n)
            history["accuracy"].append(sum(accs) / n)
            history["val_accuracy"].append(va)
            history["seconds"].append(time.time() - te)
            if va > best:
                best, best_w, best_epoch = va, model.get_weights(), epoch + 1
            bar.epoch(f"epoch {epoch + 1}/{train.epochs} loss {history['loss'][-1]:.3f} "
                      f"acc {history['accuracy'][-1]:.3f} val {va:.3f} ({history['seconds'][-1]:.0f} s)")
    if best_w is not None:
        model.set_weights(best_w)
    return Trained(model, "", history, best_epoch, time.time() - t0)


def teacher_outputs(teacher, x: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(logits, filter activity) of the teacher on ``x``; activity is the spatial mean after the final BN+ReLU."""
    out = predict(teacher, x, batch)
    return out["logits"], out["features"]


# ----------------------------------------------------------------------------------- students
def students_key(tkey: str, partition: Partition, num_students: int, scfg: StudentConfig,
                 train: TrainSettings, ds: Dataset) -> str:
    return _hash({"kind": "students", "teacher": tkey, "parts": partition.parts, "students": num_students,
                  "student": asdict(scfg), "train": asdict(train), "dataset": dataset_fingerprint(ds),
                  "version": NONN_TRAINER_VERSION})


def distill(teacher, tkey: str, ds: Dataset, partition: Partition, num_students: int,
            scfg: StudentConfig = StudentConfig(), train: TrainSettings = STUDENT_TRAIN, *,
            label: str = "students", progress: bool = True, use_cache: bool = True) -> Trained:
    """Train all students and the shared classifier jointly on ``L_KD + L_AT`` (module docstring).

    ``partition`` has M parts; student i learns part ``i mod M`` (M = S is NoNN, M < S averages replicas).
    """
    import tensorflow as tf

    key = students_key(tkey, partition, num_students, scfg, train, ds)
    path = cache_dir() / "nonn" / f"students-{key}.keras"
    if use_cache and (hit := _load_cached(path, key)) is not None:
        return hit
    configure_determinism(train.seed)
    model = build_unified(ds.input_shape, ds.num_classes, partition.sizes, num_students, scfg, seed=train.seed)
    idx_t = tf.constant(target_indices(partition, num_students), tf.int32)
    steps = -(-len(ds.x_train) // train.batch_size)
    opt = _optimizer(train, train.epochs * steps)
    opt.build(model.trainable_variables)
    s = num_students

    def alive_for(x, seed):
        b = tf.shape(x)[0]
        if train.train_drop <= 0:
            return tf.ones(tf.stack([b, s]), tf.float32)
        u = tf.random.stateless_uniform(tf.stack([b, s]), seed=seed + tf.constant([0, 1 << 40], tf.int64))
        return tf.cast(u >= train.train_drop, tf.float32)

    @tf.function(input_signature=_signature(ds))
    def step(x, y, seed):
        if train.augment:
            x = augment(x, seed)
        t = teacher(x, training=False)
        target = tf.gather(t["features"], idx_t, axis=1)
        alive = alive_for(x, seed)
        with tf.GradientTape() as tape:
            out = model({"x": x, "alive": alive}, training=True)
            loss = (kd_loss(out["logits"], t["logits"], y, train.alpha, train.temperature)
                    + at_loss(out["students"], target, train.beta))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(out["logits"], -1, output_type=tf.int64), y), tf.float32))
        return loss, acc

    ones_val = np.ones((len(ds.x_val), s), np.float32)

    def val_acc() -> float:
        logits = predict(model, {"x": ds.x_val, "alive": ones_val})["logits"]
        return float(np.mean(np.argmax(logits, 1) == ds.y_val))

    tr = _loop(model, step, val_acc, ds.x_train, ds.y_train, train, label, progress)
    tr.key = key
    _save(path, tr, {"kind": "students", "teacher_key": tkey, "partition": partition.to_dict(),
                     "students": num_students, "student": asdict(scfg), "train": asdict(train)})
    return tr
