"""Keras models of the distillation scheme: the teacher, the students, and the unified student model.

The unified model is one functional graph, like :mod:`host.ml.schemes`: every layer of student i is named
``s{i}_...`` (it runs on device i), the aggregator's layers are ``aggregate`` and ``classifier`` (they
run where the vectors are collected), and the failure configuration is an explicit input ``alive``
(one 0/1 column per student). :func:`device_model` and :func:`aggregator_model` cut it into the
per-device and aggregator sub-models by those names.

Part assignment: with M parts and S students, student i learns part ``i mod M`` (Electronics 2021 §4.1,
Figure 6). NoNN is the case M = S. :class:`PartAverage` averages, per part, the vectors of the students
that arrived, and fills a part with zeros only when all of its students failed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import keras
import numpy as np
from keras import layers as L
from keras import ops

PACKAGE = "resilinet_nonn"


# ------------------------------------------------------------------------------------ teacher
@dataclass(frozen=True)
class TeacherConfig:
    """A pre-activation wide-ResNet: stem conv, one group per width (stride 2 from the second group),
    ``blocks`` basic blocks per group, final BN+ReLU (the partitioned layer, F = widths[-1] filters),
    global average pooling, a dense classifier."""

    widths: tuple[int, ...] = (16, 32, 128)
    blocks: int = 1
    stem: int = 16
    dropout: float = 0.0

    @property
    def num_filters(self) -> int:
        return int(self.widths[-1])


def _wrn_block(x, filters: int, strides: int, prefix: str, dropout: float, seed: int):
    pre = L.Activation("relu", name=f"{prefix}_relu0")(L.BatchNormalization(name=f"{prefix}_bn0")(x))
    if strides != 1 or x.shape[-1] != filters:
        shortcut = L.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{prefix}_proj",
                            kernel_initializer=keras.initializers.HeNormal(seed))(pre)
    else:
        shortcut = x
    y = L.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{prefix}_conv1",
                 kernel_initializer=keras.initializers.HeNormal(seed + 1))(pre)
    y = L.Activation("relu", name=f"{prefix}_relu1")(L.BatchNormalization(name=f"{prefix}_bn1")(y))
    if dropout:
        y = L.Dropout(dropout, seed=seed + 2, name=f"{prefix}_dropout")(y)
    y = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{prefix}_conv2",
                 kernel_initializer=keras.initializers.HeNormal(seed + 3))(y)
    return L.Add(name=f"{prefix}_add")([y, shortcut])


def build_teacher(input_shape: Sequence[int], num_classes: int, cfg: TeacherConfig = TeacherConfig(),
                  seed: int = 0) -> keras.Model:
    """Outputs ``logits`` and ``features`` (the spatial mean of each final filter, after BN+ReLU)."""
    x_in = keras.Input(tuple(input_shape), name="x")
    h = L.Conv2D(cfg.stem, 3, padding="same", use_bias=False, name="t_stem",
                 kernel_initializer=keras.initializers.HeNormal(seed))(x_in)
    for g, width in enumerate(cfg.widths):
        for b in range(cfg.blocks):
            h = _wrn_block(h, int(width), 2 if (g > 0 and b == 0) else 1, f"t_g{g}b{b}", cfg.dropout,
                           seed + 10 * (g * cfg.blocks + b + 1))
    h = L.BatchNormalization(name="t_final_bn")(h)
    h = L.Activation("relu", name="t_final_relu")(h)
    feats = L.GlobalAveragePooling2D(name="features")(h)
    logits = L.Dense(num_classes, name="logits", kernel_initializer=keras.initializers.GlorotUniform(seed + 7))(feats)
    return keras.Model(x_in, {"logits": logits, "features": feats}, name="teacher")


# ----------------------------------------------------------------------------------- students
@dataclass(frozen=True)
class StudentConfig:
    """A plain CNN per device: 3x3 conv+BN+ReLU layers (channels, stride), a 1x1 "bridge" to the part's
    filter count + BN + ReLU (NoNN §3.5), global average pooling. ``width`` scales the channels."""

    width: int = 16
    #: (channel multiplier of width, stride) per 3x3 conv layer
    layout: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (2, 1), (4, 2), (4, 1))

    def layers(self) -> list[tuple[int, int]]:
        return [(int(m * self.width), int(s)) for m, s in self.layout]


def part_of_student(num_students: int, num_parts: int) -> list[int]:
    """Student i learns part i mod M (M must divide S, so every part has S/M replicas)."""
    if num_parts < 1 or num_students < num_parts or num_students % num_parts:
        raise ValueError(f"{num_parts} parts for {num_students} students: M must divide S (and M <= S)")
    return [i % num_parts for i in range(num_students)]


def student_trunk(x, cfg: StudentConfig, out_channels: int, prefix: str, seed: int):
    """One student's layers on input ``x``; returns its (batch, out_channels) vector."""
    h = x
    for l, (ch, stride) in enumerate(cfg.layers()):
        h = L.Conv2D(ch, 3, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv{l}",
                     kernel_initializer=keras.initializers.HeNormal(seed + l))(h)
        h = L.BatchNormalization(name=f"{prefix}_bn{l}")(h)
        h = L.ReLU(name=f"{prefix}_relu{l}")(h)
    h = L.Conv2D(out_channels, 1, use_bias=False, name=f"{prefix}_bridge",
                 kernel_initializer=keras.initializers.HeNormal(seed + 99))(h)
    h = L.BatchNormalization(name=f"{prefix}_bridge_bn")(h)
    h = L.ReLU(name=f"{prefix}_bridge_relu")(h)
    return L.GlobalAveragePooling2D(name=f"{prefix}_out")(h)


@keras.saving.register_keras_serializable(PACKAGE)
class PartAverage(keras.layers.Layer):
    """The aggregator: ``[v_0 .. v_{S-1}, alive] -> concat_j mean{ v_i : i mod M = j, alive_i = 1 }``.

    ``assignment[i]`` is student i's part. A part's slice is the mean of the replicas that arrived and
    zeros only when none did; with one replica per part (NoNN) this is plain zero-filling. Presence comes
    from ``alive`` (batch, S), never from testing a vector for zero.
    """

    def __init__(self, assignment: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.assignment = [int(a) for a in assignment]
        self.num_parts = max(self.assignment) + 1
        if sorted(set(self.assignment)) != list(range(self.num_parts)):
            raise ValueError(f"assignment {self.assignment} leaves a part without students")

    def call(self, inputs):
        *vs, alive = inputs
        if len(vs) != len(self.assignment):
            raise ValueError(f"PartAverage got {len(vs)} vectors for {len(self.assignment)} students")
        out = []
        for j in range(self.num_parts):
            members = [i for i, a in enumerate(self.assignment) if a == j]
            num = 0.0
            den = 0.0
            for i in members:
                a = alive[:, i:i + 1]
                num = num + vs[i] * a
                den = den + a
            out.append(num / ops.maximum(den, 1.0))
        return out[0] if len(out) == 1 else ops.concatenate(out, axis=-1)

    def compute_output_shape(self, input_shapes):
        first = {}
        for i, a in enumerate(self.assignment):
            first.setdefault(a, input_shapes[i][-1])
        return (input_shapes[0][0], sum(first.values()))

    def get_config(self):
        return {**super().get_config(), "assignment": self.assignment}


def build_unified(input_shape: Sequence[int], num_classes: int, part_sizes: Sequence[int], num_students: int,
                  cfg: StudentConfig = StudentConfig(), seed: int = 0) -> keras.Model:
    """All students + the aggregator + the shared classifier as one model.

    Inputs ``x`` and ``alive`` (batch, S). Outputs ``logits`` (the shared dense layer on the averaged,
    concatenated part vectors) and ``students`` (all S student vectors concatenated in student order,
    what the activation-transfer loss compares with the teacher's filters).
    """
    assignment = part_of_student(num_students, len(part_sizes))
    x_in = keras.Input(tuple(input_shape), name="x")
    alive_in = keras.Input((num_students,), name="alive")
    vs = [student_trunk(x_in, cfg, int(part_sizes[a]), f"s{i}", seed * 1000 + 100 * i)
          for i, a in enumerate(assignment)]
    merged = PartAverage(assignment, name="aggregate")(vs + [alive_in])
    logits = L.Dense(num_classes, name="classifier",
                     kernel_initializer=keras.initializers.GlorotUniform(seed * 1000 + 7))(merged)
    students = vs[0] if len(vs) == 1 else L.Concatenate(name="students")(vs)
    return keras.Model({"x": x_in, "alive": alive_in}, {"logits": logits, "students": students}, name="nonn_unified")


def num_students_of(model: keras.Model) -> int:
    return len(model.get_layer("aggregate").assignment)


def device_model(model: keras.Model, i: int) -> keras.Model:
    """Student i's sub-model, image -> its part vector (what device i computes and sends)."""
    return keras.Model(model.get_layer("x").output, model.get_layer(f"s{i}_out").output, name=f"student{i}")


def aggregator_model(model: keras.Model) -> keras.Model:
    """The aggregator's sub-model: ``{"v0".."v{S-1}", "alive"} -> logits`` (shares weights with ``model``)."""
    agg = model.get_layer("aggregate")
    cls = model.get_layer("classifier")
    s = len(agg.assignment)
    vs = [keras.Input((int(model.get_layer(f"s{i}_out").output.shape[-1]),), name=f"v{i}") for i in range(s)]
    alive = keras.Input((s,), name="alive")
    logits = cls(agg(vs + [alive]))
    return keras.Model({**{f"v{i}": v for i, v in enumerate(vs)}, "alive": alive}, logits, name="aggregator")


# ----------------------------------------------------------------------------- size accounting
@dataclass
class DeviceCost:
    """What one device model needs on a board (int8 estimates; batch 1)."""

    params: int
    #: int8 weight bytes after folding BN into the convolutions: 1 byte per weight + int32 bias per channel
    int8_weight_bytes: int
    #: the largest (input + output) activation bytes of one layer in int8 (BN/ReLU folded into the conv)
    max_activation_pair_bytes: int
    macs: int
    output_values: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def device_cost(sub: keras.Model) -> DeviceCost:
    """Parameters, int8 bytes, largest activation pair and MACs of a plain conv device model."""
    params = int(sub.count_params())
    w_bytes = 0
    act_pair = 0
    macs = 0
    for layer in sub.layers:
        if isinstance(layer, L.Conv2D):
            k = layer.kernel
            w_bytes += int(np.prod(k.shape)) + 4 * int(k.shape[-1])
            out_shape = layer.output.shape
            macs += int(np.prod(k.shape)) * int(np.prod(out_shape[1:3]))
            in_shape = layer.input.shape
            act_pair = max(act_pair, int(np.prod(in_shape[1:])) + int(np.prod(out_shape[1:])))
        elif isinstance(layer, L.Dense):
            w_bytes += int(np.prod(layer.kernel.shape)) + 4 * int(layer.kernel.shape[-1])
            macs += int(np.prod(layer.kernel.shape))
        elif isinstance(layer, (L.GlobalAveragePooling2D, L.MaxPooling2D, L.AveragePooling2D)):
            act_pair = max(act_pair, int(np.prod(layer.input.shape[1:])) + int(np.prod(layer.output.shape[1:])))
    return DeviceCost(params, w_bytes, act_pair, macs, int(np.prod(sub.output.shape[1:])))


def aggregator_cost(model: keras.Model) -> dict[str, int]:
    cls = model.get_layer("classifier")
    n_in, n_out = (int(d) for d in cls.kernel.shape)
    return {"params": int(cls.count_params()), "inputs": n_in, "classes": n_out,
            "int8_weight_bytes": n_in * n_out + 4 * n_out, "macs": n_in * n_out}
