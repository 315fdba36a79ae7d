"""Failure evaluation: accuracy against the number of failed students, over subsets of failed devices.

A failure configuration is the set of students whose vectors never reach the aggregator. For k failed
students of S, all C(S, k) subsets are evaluated when there are at most ``max_subsets`` of them, else
``max_subsets`` distinct subsets drawn uniformly without replacement (seeded by (seed, S, k)) by
unranking random ranks in the lexicographic order of ``itertools.combinations``.

Each device's vector is computed once per test image (:func:`student_vectors`); every configuration is
then a call of the aggregator sub-model with the matching ``alive`` input, exactly what the aggregation
point computes on the boards.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np


def unrank_combination(rank: int, n: int, k: int) -> tuple[int, ...]:
    """The ``rank``-th k-subset of range(n) in ``itertools.combinations`` (lexicographic) order."""
    total = math.comb(n, k)
    if not 0 <= rank < total:
        raise ValueError(f"rank {rank} outside [0, C({n},{k}) = {total})")
    out: list[int] = []
    x = 0
    for remaining in range(k, 0, -1):
        while True:
            c = math.comb(n - x - 1, remaining - 1)  # subsets that start with x
            if rank < c:
                out.append(x)
                x += 1
                break
            rank -= c
            x += 1
    return tuple(out)


def failure_subsets(num_students: int, k: int, max_subsets: int | None = None, seed: int = 0
                    ) -> tuple[list[tuple[int, ...]], bool]:
    """The failed-student subsets evaluated for k failures, and whether they are a sample.

    All C(S, k) subsets (lexicographic) when ``max_subsets`` is None or not smaller; otherwise
    ``max_subsets`` distinct subsets drawn uniformly, returned in lexicographic order.
    """
    if not 0 <= k <= num_students:
        raise ValueError(f"k = {k} failures of {num_students} students")
    total = math.comb(num_students, k)
    if max_subsets is None or total <= max_subsets:
        return list(itertools.combinations(range(num_students), k)), False
    if max_subsets < 1:
        raise ValueError("max_subsets must be >= 1")
    rng = np.random.default_rng([seed, num_students, k])
    if total < 2 ** 62:
        ranks = sorted(int(r) for r in rng.choice(total, size=max_subsets, replace=False))
        return [unrank_combination(r, num_students, k) for r in ranks], True
    seen: set[tuple[int, ...]] = set()  # astronomically many subsets: rejection sampling
    while len(seen) < max_subsets:
        seen.add(tuple(sorted(int(i) for i in rng.choice(num_students, size=k, replace=False))))
    return sorted(seen), True


def alive_vector(num_students: int, failed: Sequence[int]) -> np.ndarray:
    a = np.ones(num_students, np.float32)
    a[list(failed)] = 0.0
    return a


def lost_parts(failed: Sequence[int], assignment: Sequence[int]) -> list[int]:
    """Parts none of whose students arrived (their slice is zero-filled)."""
    alive = set(range(len(assignment))) - set(failed)
    return sorted(set(assignment) - {assignment[i] for i in alive})


@dataclass
class KResult:
    k: int
    total_subsets: int
    sampled: bool
    subsets: list[tuple[int, ...]]
    accuracies: list[float]
    #: per subset: number of parts zero-filled because all of their students failed
    parts_lost: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": self.mean, "std": self.std, "min": float(np.min(self.accuracies)),
                "max": float(np.max(self.accuracies)),
                "fraction_with_lost_part": float(np.mean([p > 0 for p in self.parts_lost]))}


def student_vectors(model, x: np.ndarray, batch: int = 500) -> list[np.ndarray]:
    """Every student's output vector on ``x`` (what each device sends), from the unified model."""
    import keras

    from host.ml.nonn.networks import num_students_of
    from host.ml.nonn.training import predict

    s = num_students_of(model)
    sub = keras.Model(model.get_layer("x").output, [model.get_layer(f"s{i}_out").output for i in range(s)])
    out = predict(sub, x, batch)
    return [np.asarray(o) for o in out] if isinstance(out, list) else [np.asarray(out)]


def evaluate_failures(model, x: np.ndarray, y: np.ndarray, *, max_subsets: int | None = 100, seed: int = 0,
                      ks: Sequence[int] | None = None, vectors: list[np.ndarray] | None = None) -> list[KResult]:
    """Accuracy of the unified ``model`` for k = 0..S failed students (or the given ``ks``)."""
    import tensorflow as tf

    from host.ml.nonn.networks import aggregator_model, num_students_of

    s = num_students_of(model)
    assignment = list(model.get_layer("aggregate").assignment)
    vs = vectors if vectors is not None else student_vectors(model, x)
    agg = aggregator_model(model)
    feed = {f"v{i}": tf.constant(v) for i, v in enumerate(vs)}
    run = tf.function(lambda alive: agg({**feed, "alive": alive}, training=False))
    results = []
    for k in (range(s + 1) if ks is None else ks):
        subsets, sampled = failure_subsets(s, k, max_subsets, seed)
        accs, lost = [], []
        for failed in subsets:
            alive = tf.constant(np.tile(alive_vector(s, failed), (len(x), 1)))
            logits = np.asarray(run(alive))
            accs.append(float(np.mean(np.argmax(logits, 1) == y)))
            lost.append(len(lost_parts(failed, assignment)))
        results.append(KResult(k, math.comb(s, k), sampled, subsets, accs, lost))
    return results
