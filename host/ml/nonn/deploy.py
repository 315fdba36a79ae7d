"""Distillation presets on boards: train teacher and students, then hand ``host.build`` a split network.

A distillation preset (``[distillation]`` in a topology file, e.g. ``host/ml/presets/nonn.toml``) describes
S student nodes and one aggregator (:func:`host.ml.topology.distillation_graph`). :func:`train_distilled`
trains the teacher, partitions its final-layer filters, distils the students (all cached, as in the
experiment), and copies the trained weights into the same Keras graph the other schemes use
(:func:`host.ml.schemes.build_model` with the ``average`` aggregation), so the rest of the pipeline -- the
per-node split, int8 conversion, C per node, firmware, harness -- treats it like any split network.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from host.ml.datasets import Dataset
from host.ml.topology import DISTILLATION_DEFAULTS, Node, Topology, TopologyError
from host.ml.nonn.networks import StudentConfig, TeacherConfig
from host.ml.nonn.training import STUDENT_TRAIN, TEACHER_TRAIN


@dataclass
class Distilled:
    #: the split network in host.ml.schemes' form (inputs x, alive; outputs probs, present)
    model: Any
    #: the topology with the students' part sizes of the partition actually found
    topology: Topology
    info: dict[str, Any] = field(default_factory=dict)


def settings(topo: Topology) -> dict[str, Any]:
    """The preset's ``[distillation]`` section with defaults filled in."""
    if not topo.distillation:
        raise TopologyError(f"topology {topo.name!r} has no [distillation] section")
    return {**DISTILLATION_DEFAULTS, "teacher_widths": [16, 32, int(topo.distillation.get("filters", 128))],
            "teacher_blocks": 1, "teacher_epochs": TEACHER_TRAIN.epochs, "student_epochs": STUDENT_TRAIN.epochs,
            **topo.distillation}


def with_part_sizes(topo: Topology, sizes: list[int]) -> Topology:
    """``topo`` whose students' bridge layers output their part's filter count (NoNN's parts are unequal)."""
    parts = {l.src: l.part for l in topo.links if l.part is not None}
    t = copy.copy(topo)
    nodes = []
    for n in topo.nodes:
        if n.name in parts:
            layers = [dict(l) for l in n.layers]
            bridge = len(layers) - 2  # ..., bridge conv, gap
            layers[bridge]["filters"] = int(sizes[parts[n.name]])
            n = replace(n, layers=tuple(layers))
        nodes.append(n)
    t.nodes = nodes
    return t


def train_distilled(topo: Topology, ds: Dataset, *, seed: int = 0, epochs: int | None = None,
                    progress: bool = True, use_cache: bool = True, log=print) -> Distilled:
    """Teacher -> filter partition -> students (KD + activation transfer) -> the split network.

    ``epochs`` overrides both the teacher's and the students' epochs (quick builds).
    """
    from host.ml.schemes import DISTILL, BuildOptions, build_model
    from host.ml.nonn.experiment import ExperimentConfig, make_partition
    from host.ml.nonn.networks import part_of_student
    from host.ml.nonn.training import distill, teacher_outputs, train_teacher

    d = settings(topo)
    s, m = int(d["students"]), int(d["parts"])
    widths = tuple(int(w) for w in d["teacher_widths"])
    if widths[-1] != int(d["filters"]):
        raise TopologyError(f"{topo.name}: distillation.filters = {d['filters']} but the teacher's last width is "
                            f"{widths[-1]}; they must agree (the students learn the teacher's final filters)")
    tcfg = TeacherConfig(widths=widths, blocks=int(d["teacher_blocks"]))
    ttrain = replace(TEACHER_TRAIN, seed=seed, epochs=int(epochs or d["teacher_epochs"]))
    teacher = train_teacher(ds, tcfg, ttrain, progress=progress, use_cache=use_cache)
    t_logits, _ = teacher_outputs(teacher.model, ds.x_test)
    teacher_acc = float(np.mean(np.argmax(t_logits, 1) == ds.y_test))
    log(f"teacher: test accuracy {100 * teacher_acc:.2f} %{' (cached)' if teacher.cached else ''}")

    _, acts = teacher_outputs(teacher.model, ds.x_val)
    kind = str(d["partitioner"])
    if kind not in ("eigen", "nonn"):
        raise TopologyError(f"{topo.name}: distillation.partitioner {kind!r}; expected 'eigen' or 'nonn'")
    part = make_partition(kind, acts, m, ExperimentConfig(dataset=ds.name, students=s, parts=m, seed=seed))
    log(f"partition {kind}: {m} parts of {part.sizes} filters ({len(part.unused)} unused)")
    resolved = with_part_sizes(topo, part.sizes)

    scfg = StudentConfig(width=int(d["student_width"]),
                         layout=tuple((int(a), int(b)) for a, b in d["student_layout"]))
    strain = replace(STUDENT_TRAIN, seed=seed, epochs=int(epochs or d["student_epochs"]))
    students = distill(teacher.model, teacher.key, ds, part, s, scfg, strain, label=f"{topo.name} students",
                       progress=progress, use_cache=use_cache)

    model = build_model(resolved, DISTILL, BuildOptions(tuple(ds.x_train.shape[1:]), ds.num_classes, seed=seed))
    copy_weights(students.model, model, s, len(scfg.layout))
    check_same(students.model, model, ds.x_test[:64], s)
    assignment = part_of_student(s, m)
    info = {"teacher": {"config": {"widths": list(widths), "blocks": tcfg.blocks}, "epochs": ttrain.epochs,
                        "test_accuracy": teacher_acc, "cached": teacher.cached, "key": teacher.key,
                        "seconds": round(teacher.seconds, 1)},
            "partition": {"kind": kind, "parts": m, "sizes": part.sizes, "unused": len(part.unused),
                          "filters": [list(map(int, p)) for p in part.parts]},
            "students": {"count": s, "assignment": assignment, "width": scfg.width, "epochs": strain.epochs,
                         "cached": students.cached, "key": students.key, "seconds": round(students.seconds, 1),
                         "best_epoch": students.best_epoch}}
    return Distilled(model, resolved, info)


def copy_weights(unified, model, num_students: int, num_convs: int) -> None:
    """Unified student model (host.ml.nonn.models names) -> host.ml.schemes names of the same layers."""
    pairs = [("classifier", "aggregator_0_dense")]
    for i in range(num_students):
        for l in range(num_convs):
            pairs += [(f"s{i}_conv{l}", f"student{i}_{l}_conv"), (f"s{i}_bn{l}", f"student{i}_{l}_bn")]
        pairs += [(f"s{i}_bridge", f"student{i}_{num_convs}_conv"), (f"s{i}_bridge_bn", f"student{i}_{num_convs}_bn")]
    for src, dst in pairs:
        model.get_layer(dst).set_weights(unified.get_layer(src).get_weights())
    left = [l.name for l in model.layers if l.weights and all(l.name != d for _, d in pairs)]
    if left:
        raise AssertionError(f"layers of the split network without trained weights: {left}")


def check_same(unified, model, x: np.ndarray, num_students: int) -> None:
    """The split network computes the distilled model: same class scores with every student alive and
    with the first student failed."""
    import keras

    for alive in (np.ones(num_students, np.float32), np.r_[0.0, np.ones(num_students - 1)].astype(np.float32)):
        a = np.tile(alive, (len(x), 1))
        ref = keras.ops.convert_to_numpy(keras.ops.softmax(unified({"x": x, "alive": a}, training=False)["logits"]))
        got = keras.ops.convert_to_numpy(model({"x": x, "alive": a}, training=False)["probs"])
        if not np.allclose(ref, got, atol=1e-4):
            raise AssertionError(f"split network differs from the distilled model (alive {alive.tolist()}): "
                                 f"max |diff| {np.abs(ref - got).max():.2e}")
