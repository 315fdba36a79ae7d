"""Distributed students by knowledge distillation that survive lost devices (issue 6).

NoNN (Bhardwaj et al. 2019) splits a teacher's final-layer filters into disjoint parts and distils one
small student per part and device; every device sends one short vector per image and a shared classifier
at the aggregation point reads their concatenation. Jeong, Park and Yang (Electronics 2021) make it
survive failed devices with (1) *averaging*: M <= S/2 parts, student i learns part i mod M, the
aggregator averages the replicas that arrived; (2) a *balanced eigenvector partition* that keeps
co-activated filters together in M equal parts. The specification, with what is known exactly and
what is inferred, is ``/work/shared/docs/nonn.md``.

    python -m host.ml.nonn experiment --dataset cifar10 --students 8
    python -m host.ml.nonn experiment --dataset fashion --students 4 --epochs 2 --max-train 5000
    python -m host.ml.nonn partition --dataset cifar10 --students 8

Modules: :mod:`.partition` (filter graphs, NoNN's Louvain partition, the balanced eigenvector
partition), :mod:`.models` (teacher, students, the :class:`~.models.PartAverage` aggregator, the unified
Keras model with an ``alive`` input, per-device sub-models and their costs), :mod:`.training` (KD + AT
loss, seeded loops, cache), :mod:`.failures` (failure subsets, accuracy against k), :mod:`.experiment`
(the whole pipeline and its report).
"""
from __future__ import annotations

from host.ml.nonn.failures import KResult, alive_vector, evaluate_failures, failure_subsets, lost_parts, unrank_combination
from host.ml.nonn.networks import (PartAverage, StudentConfig, TeacherConfig, aggregator_cost, aggregator_model, build_teacher,
                     build_unified, device_cost, device_model, part_of_student)
from host.ml.nonn.partition import (Partition, activation_graph, balanced_eigen_partition, nonn_partition, normalize_activity,
                        partition_quality)
from host.ml.nonn.training import TrainSettings, distill, train_teacher
from host.ml.nonn.experiment import ExperimentConfig, run_experiment

__all__ = [
    "ExperimentConfig", "KResult", "PartAverage", "Partition", "StudentConfig", "TeacherConfig", "TrainSettings",
    "activation_graph", "aggregator_cost", "aggregator_model", "alive_vector", "balanced_eigen_partition",
    "build_teacher", "build_unified", "device_cost", "device_model", "distill", "evaluate_failures",
    "failure_subsets", "lost_parts", "nonn_partition", "normalize_activity", "part_of_student",
    "partition_quality", "run_experiment", "train_teacher", "unrank_combination",
]

