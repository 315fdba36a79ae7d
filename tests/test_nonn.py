"""host.ml.nonn: filter partitioners, the averaging aggregator, failure subsets, losses, a tiny end-to-end run."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from host.ml.datasets import Dataset  # noqa: E402
from host.ml.nonn import (PartAverage, Partition, StudentConfig, TeacherConfig, activation_graph,  # noqa: E402
                       aggregator_model, alive_vector, balanced_eigen_partition, build_unified, device_model,
                       evaluate_failures, failure_subsets, lost_parts, nonn_partition, normalize_activity,
                       part_of_student, unrank_combination)
from host.ml.nonn.partition import assign_groups, louvain, nonn_groups, sparsify  # noqa: E402


# ------------------------------------------------------------------------------ synthetic activity
def planted_activity(groups: int = 4, size: int = 8, images: int = 400, noise: float = 0.0, seed: int = 0):
    """Images that each activate one planted filter group, with different strengths inside the group.

    Returns (acts (images, groups*size), planted groups as sorted lists). Filters are interleaved
    (filter f belongs to group f % groups) so a partitioner cannot succeed by slicing index ranges.
    """
    rng = np.random.default_rng(seed)
    f = groups * size
    members = [[i for i in range(f) if i % groups == g] for g in range(groups)]
    strength = rng.uniform(0.1, 1.0, size=f)
    acts = noise * rng.random((images, f))
    which = rng.integers(0, groups, size=images)
    for n, g in enumerate(which):
        acts[n, members[g]] = strength[members[g]] * rng.uniform(0.7, 1.3, size=size)
    return acts, members


# ------------------------------------------------------------------------------------- graphs
def test_activity_is_relu_then_per_image_max_normalised():
    a = normalize_activity(np.array([[2.0, -1.0, 1.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(a, [[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]])


def test_hub_and_coactivation_edge_weights_over_topk_filters():
    acts = np.array([[1.0, 0.5, 0.0, 0.25, 0.1]])
    hub = activation_graph(acts, rule="hub", top_k=3)
    co = activation_graph(acts, rule="coactivation", top_k=3)
    # top-3 = filters 0, 1, 3; filter 4 (0.1) is not among them and gets no edges
    assert hub[0, 1] == pytest.approx(1 * 0.5 * 0.5)
    assert hub[0, 3] == pytest.approx(1 * 0.25 * 0.75)
    assert hub[1, 3] == pytest.approx(0.5 * 0.25 * 0.25)
    assert co[0, 1] == pytest.approx(0.5) and co[1, 3] == pytest.approx(0.125)
    for w in (hub, co):
        np.testing.assert_allclose(w, w.T)
        assert np.all(np.diag(w) == 0) and np.all(w[4] == 0) and np.all(w[2] == 0)
    # equal activations: co-activated but no hub edge (the |a_i - a_j| penalty)
    same = np.array([[1.0, 1.0, 0.0]])
    assert activation_graph(same, rule="hub", top_k=2)[0, 1] == 0
    assert activation_graph(same, rule="coactivation", top_k=2)[0, 1] == 1


def test_sparsify_keeps_the_top_percent_of_nonzero_edges():
    rng = np.random.default_rng(0)
    w = np.triu(rng.random((60, 60)), 1)
    w = w + w.T
    ws, thr = sparsify(w, 99.0)
    kept = np.count_nonzero(np.triu(ws, 1))
    assert ws.max() == pytest.approx(1.0)
    assert kept == pytest.approx(0.01 * 60 * 59 / 2, abs=1)
    assert np.all(ws[ws > 0] >= thr)


# ------------------------------------------------------------------------------------- NoNN
def test_louvain_groups_strongly_coactivated_filters():
    acts, planted = planted_activity(groups=4, size=8, noise=0.0)
    # keep every edge (percentile 0) and no framework post-processing: the communities are the groups
    p = nonn_partition(acts, 4, top_k=8, percentile=0.0, merge_equal_sizes=False, drop_largest=False, seed=3)
    assert sorted(p.parts) == sorted(planted)
    comms = louvain(sparsify(activation_graph(acts, rule="hub", top_k=8), 0.0)[0], seed=1)
    assert sorted(comms) == sorted(planted)


def test_nonn_post_processing_merges_equal_sizes_drops_p0_and_assigns_greedily():
    comms = [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13], [14, 15], [16, 17], [18], [19]]
    groups = nonn_groups(comms)  # the framework's loop over unique sizes merges the two pairs and the singletons
    assert [len(g) for g in groups] == [6, 5, 4, 3, 2]
    assert sorted(groups[2]) == [14, 15, 16, 17] and sorted(groups[4]) == [18, 19]
    assert [len(g) for g in nonn_groups(comms, merge_equal_sizes=False)] == [6, 5, 3, 2, 2, 2]
    parts, notes = assign_groups([list(range(10)), list(range(10, 16)), list(range(16, 21)), [21, 22, 23],
                                  [24, 25], [26]], 2)
    # P0 (10 filters) dropped; seeds 6 and 5; then 3 -> part 1 (5 < 6), 2 -> part 0 (6 < 8), 1 -> part 0 (tie)
    assert [len(p) for p in parts] == [9, 8]
    assert sorted(parts[0]) == list(range(10, 16)) + [24, 25, 26]
    assert sorted(parts[1]) == list(range(16, 21)) + [21, 22, 23]
    assert any("P0" in n for n in notes)


def test_nonn_default_partition_is_unbalanced_and_drops_filters():
    acts, _ = planted_activity(groups=8, size=16, noise=0.05, seed=2)
    p = nonn_partition(acts, 4, seed=0)
    assert p.num_parts == 4 and p.info["percentile"] == 99.0 and p.info["resolution"] == 0.7
    assert len(p.unused) > 0                       # the largest group P0 is not learnt by any student
    assert max(p.sizes) > min(p.sizes)             # Louvain + greedy: uneven parts
    assert sorted(p.used + p.unused) == list(range(128))


def test_nonn_partition_is_deterministic_for_a_seed():
    acts, _ = planted_activity(groups=8, size=16, noise=0.05, seed=4)
    a = nonn_partition(acts, 4, seed=7)
    b = nonn_partition(acts, 4, seed=7)
    assert a.parts == b.parts and a.info == b.info


# ------------------------------------------------------------------------------- eigenvector
@pytest.mark.parametrize("parts", [2, 4, 8])
def test_balanced_eigen_parts_are_exactly_equal(parts):
    acts, _ = planted_activity(groups=4, size=16, noise=0.05, seed=1)
    p = balanced_eigen_partition(acts, parts)
    assert p.sizes == [64 // parts] * parts
    assert sorted(p.used) == list(range(64)) and not p.unused


def test_balanced_eigen_recovers_planted_groups_and_unions_of_them():
    acts, planted = planted_activity(groups=4, size=8, noise=0.02, seed=5)
    p4 = balanced_eigen_partition(acts, 4, top_k=8)
    assert sorted(p4.parts) == sorted(planted)
    p2 = balanced_eigen_partition(acts, 2, top_k=8)
    for part in p2.parts:                          # each half is a union of two whole planted groups
        assert sum(len(g) for g in planted if set(g) <= set(part)) == 16


def test_balanced_eigen_uneven_count_and_determinism():
    acts, _ = planted_activity(groups=3, size=10, noise=0.05, seed=6)
    p = balanced_eigen_partition(acts, 4)
    assert sorted(p.sizes) == [7, 7, 8, 8]
    assert balanced_eigen_partition(acts, 4).parts == p.parts


def test_partition_rejects_overlap_and_empty_parts():
    with pytest.raises(ValueError):
        Partition("x", 4, [[0, 1], [1, 2]])
    with pytest.raises(ValueError):
        Partition("x", 4, [[0, 1], []])


# ------------------------------------------------------------------------------- aggregator
def _agg(assignment, vs, alive):
    import tensorflow as tf

    layer = PartAverage(assignment)
    out = layer([tf.constant(v, tf.float32) for v in vs] + [tf.constant(alive, tf.float32)])
    return np.asarray(out)


def test_part_average_averages_arrived_replicas_and_zero_fills_only_lost_parts():
    assert part_of_student(4, 2) == [0, 1, 0, 1]
    v = [np.array([[1.0, 2.0]]), np.array([[10.0]]), np.array([[3.0, 6.0]]), np.array([[30.0]])]
    np.testing.assert_allclose(_agg([0, 1, 0, 1], v, [[1, 1, 1, 1]]), [[2.0, 4.0, 20.0]])
    np.testing.assert_allclose(_agg([0, 1, 0, 1], v, [[0, 1, 1, 1]]), [[3.0, 6.0, 20.0]])   # replica 2 alone
    np.testing.assert_allclose(_agg([0, 1, 0, 1], v, [[0, 1, 0, 1]]), [[0.0, 0.0, 20.0]])   # part 0 lost
    np.testing.assert_allclose(_agg([0, 1, 0, 1], v, [[0, 0, 0, 0]]), [[0.0, 0.0, 0.0]])
    # presence comes from alive, not from the values: a live all-zero replica still counts in the mean
    z = [np.zeros((1, 2)), v[1], v[2], v[3]]
    np.testing.assert_allclose(_agg([0, 1, 0, 1], z, [[1, 1, 1, 1]]), [[1.5, 3.0, 20.0]])
    # one replica per part (NoNN): a failed student's slice is zero, the others pass through
    np.testing.assert_allclose(_agg([0, 1, 2, 3], v, [[1, 0, 1, 1]]), [[1.0, 2.0, 0.0, 3.0, 6.0, 30.0]])
    assert lost_parts([0, 2], [0, 1, 0, 1]) == [0] and lost_parts([0, 1], [0, 1, 0, 1]) == []


def test_part_of_student_needs_m_dividing_s():
    with pytest.raises(ValueError):
        part_of_student(8, 3)
    assert part_of_student(8, 8) == list(range(8))


def test_unified_model_equals_devices_plus_aggregator():
    model = build_unified((12, 12, 3), 5, [3, 2], 4, StudentConfig(width=2), seed=0)
    x = np.random.default_rng(0).random((6, 12, 12, 3)).astype(np.float32)
    alive = np.array([[1, 1, 1, 1], [0, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1], [0, 1, 0, 1]], np.float32)
    full = np.asarray(model({"x": x, "alive": alive}, training=False)["logits"])
    vs = [np.asarray(device_model(model, i)(x, training=False)) for i in range(4)]
    assert [v.shape[1] for v in vs] == [3, 2, 3, 2]
    split = np.asarray(aggregator_model(model)({**{f"v{i}": v for i, v in enumerate(vs)}, "alive": alive}))
    np.testing.assert_allclose(full, split, rtol=1e-5, atol=1e-5)
    # row 2: both students of part 1 (1 and 3) failed, so its slice is zero and part 0 is the mean of 0 and 2
    w, b = (np.asarray(t) for t in model.get_layer("classifier").weights)
    np.testing.assert_allclose(full[2], (vs[0][2] + vs[2][2]) / 2 @ w[:3] + b, rtol=1e-5, atol=1e-5)
    # row 1: student 0 failed, part 0 is student 2's vector alone
    np.testing.assert_allclose(full[1], np.concatenate([vs[2][1], (vs[1][1] + vs[3][1]) / 2]) @ w + b,
                               rtol=1e-5, atol=1e-5)
    assert isinstance(model.get_layer("aggregate"), PartAverage)


# ---------------------------------------------------------------------------- failure subsets
def test_unrank_matches_itertools_order():
    for n in range(0, 8):
        for k in range(0, n + 1):
            assert [unrank_combination(r, n, k) for r in range(math.comb(n, k))] == \
                list(itertools.combinations(range(n), k))


def test_failure_subsets_enumerate_or_sample_uniformly_with_a_seed():
    subs, sampled = failure_subsets(8, 4, max_subsets=100)
    assert not sampled and len(subs) == 70 and len(set(subs)) == 70
    subs, sampled = failure_subsets(16, 8, max_subsets=50, seed=3)
    assert sampled and len(subs) == 50 and len(set(subs)) == 50
    assert all(len(s) == 8 and len(set(s)) == 8 and all(0 <= i < 16 for i in s) for s in subs)
    assert subs == sorted(subs)
    assert failure_subsets(16, 8, max_subsets=50, seed=3)[0] == subs
    assert failure_subsets(16, 8, max_subsets=50, seed=4)[0] != subs
    assert failure_subsets(16, 0, max_subsets=5) == ([()], False)
    # uniform over subsets: every device is failed in about k/S of the sampled subsets
    many, _ = failure_subsets(20, 5, max_subsets=4000, seed=0)
    freq = np.bincount([i for s in many for i in s], minlength=20) / len(many)
    np.testing.assert_allclose(freq, 5 / 20, atol=0.04)
    np.testing.assert_array_equal(alive_vector(4, (1, 3)), [1, 0, 1, 0])


def test_evaluate_failures_counts_subsets_and_lost_parts():
    model = build_unified((8, 8, 1), 3, [2, 2], 4, StudentConfig(width=2), seed=1)
    x = np.random.default_rng(1).random((20, 8, 8, 1)).astype(np.float32)
    y = np.random.default_rng(2).integers(0, 3, 20)
    curve = evaluate_failures(model, x, y, max_subsets=None)
    assert [len(r.subsets) for r in curve] == [1, 4, 6, 4, 1]
    assert curve[2].parts_lost == [1 if set(s) in ({0, 2}, {1, 3}) else 0 for s in curve[2].subsets]
    assert all(p >= 1 for p in curve[3].parts_lost) and curve[4].parts_lost == [2]
    # everything failed: the classifier sees zeros, so every image gets the class of the largest bias
    b = np.asarray(model.get_layer("classifier").weights[1])
    assert curve[4].accuracies[0] == pytest.approx(np.mean(y == np.argmax(b)))


# ------------------------------------------------------------------------------------- losses
def test_kd_and_at_losses_match_their_definitions():
    from host.ml.nonn.training import at_loss, kd_loss

    rng = np.random.default_rng(0)
    zs, zt = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    t = 4.0

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    pt, ps = softmax(zt / t), softmax(zs / t)
    kl = np.mean(pt * (np.log(pt) - np.log(ps)))
    ce = -np.mean(np.log(softmax(zs)[np.arange(4), y]))
    assert float(kd_loss(zs, zt, y, 0.9, t)) == pytest.approx(2 * 0.9 * t * t * kl + 0.1 * ce, rel=1e-4)
    v = np.abs(rng.normal(size=(4, 6))).astype(np.float32)
    assert float(at_loss(3.0 * v, v, 1e4)) == pytest.approx(0.0, abs=1e-6)   # scale does not matter
    w = np.abs(rng.normal(size=(4, 6))).astype(np.float32)
    sn = v / np.linalg.norm(v, axis=1, keepdims=True)
    tn = w / np.linalg.norm(w, axis=1, keepdims=True)
    assert float(at_loss(v, w, 10.0)) == pytest.approx(10.0 * np.mean((sn - tn) ** 2), rel=1e-4)


# --------------------------------------------------------------------------------- end to end
def tiny_dataset(n_train: int = 320, n_val: int = 96, n_test: int = 160, classes: int = 4, seed: int = 0) -> Dataset:
    """16x16x3 images: each class a coloured square in its own quadrant, plus noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, classes, n)
        x = 0.2 * rng.random((n, 16, 16, 3))
        for i, c in enumerate(y):
            r, q = divmod(int(c), 2)
            x[i, 8 * r:8 * r + 8, 8 * q:8 * q + 8, c % 3] += 0.8
        return x.astype(np.float32), y
    xs = [make(n) for n in (n_train, n_val, n_test)]
    return Dataset("tiny", *xs[0], *xs[1], *xs[2], num_classes=classes, class_names=[str(i) for i in range(classes)])


def test_end_to_end_tiny_run_writes_the_report(tmp_path):
    from dataclasses import replace

    from host.ml.nonn.experiment import ExperimentConfig, run_experiment
    from host.ml.nonn.training import STUDENT_TRAIN, TEACHER_TRAIN

    ds = tiny_dataset()
    cfg = ExperimentConfig(dataset="tiny", students=4, variants=("nonn", "both"), teacher=TeacherConfig(widths=(4, 8, 16), stem=4),
                           teacher_train=replace(TEACHER_TRAIN, epochs=2, batch_size=32, learning_rate=0.05),
                           student=StudentConfig(width=2),
                           student_train=replace(STUDENT_TRAIN, epochs=1, batch_size=64), top_k=6)
    data = run_experiment(cfg, out=tmp_path, ds=ds, progress=False, log=lambda *_: None)
    for ext in ("md", "json", "png"):
        assert (tmp_path / f"nonn_tiny_s4.{ext}").stat().st_size > 0
    saved = json.loads((tmp_path / "nonn_tiny_s4.json").read_text())
    assert set(saved["variants"]) == {"nonn", "both"}
    assert saved["teacher"]["test_accuracy"] > 0.5          # the quadrant task is easy for the teacher
    for v, r in saved["variants"].items():
        assert [len(c["subsets"]) for c in r["curve"]] == [1, 4, 6, 4, 1]
        assert r["parts"] == (2 if v in ("avg", "both") else 4)
        assert [d["payload_int8_bytes"] for d in r["devices"]] == [r["part_sizes"][i % r["parts"]] for i in range(4)]
        assert all(d["fits_m4"] for d in r["devices"])
        # with averaging no single failure loses a part; without, every single failure does
        assert r["curve"][1]["fraction_with_lost_part"] == (0.0 if r["averaging"] else 1.0)
    assert saved["variants"]["both"]["part_sizes"] == [8, 8]          # balanced eigenvector parts, M = S/2
    assert saved["partitions"]["nonn_M4"]["info"]["resolution"] == 0.7
    md = (tmp_path / "nonn_tiny_s4.md").read_text()
    assert "Accuracy (%) against the number of failed students" in md and "nonn_tiny_s4.png" in md
    # a second run reuses the cached teacher and students
    again = run_experiment(replace(cfg, variants=("both",)), out=tmp_path / "again", ds=ds, progress=False,
                           log=lambda *_: None)
    assert again["teacher"]["cached"] and again["variants"]["both"]["cached"]
    assert again["variants"]["both"]["mean_by_k"] == data["variants"]["both"]["mean_by_k"]


def test_training_is_deterministic_for_a_seed():
    from dataclasses import replace

    from host.ml.nonn.training import TEACHER_TRAIN, train_teacher

    ds = tiny_dataset(n_train=128, n_val=32, n_test=32)
    tc = TeacherConfig(widths=(4, 8), stem=4)
    tt = replace(TEACHER_TRAIN, epochs=1, batch_size=32)
    a = train_teacher(ds, tc, tt, progress=False, use_cache=False)
    b = train_teacher(ds, tc, tt, progress=False, use_cache=False)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_nonn_shortfall_of_groups_splits_the_largest_but_keeps_p0_dropped():
    groups = [list(range(20)), list(range(20, 30)), list(range(30, 34))]   # P0 + 2 communities for 4 parts
    parts, notes = assign_groups(groups, 4)
    assert sorted(len(p) for p in parts) == [2, 3, 4, 5]                  # 10 -> 5 + 5, then 5 -> 2 + 3
    assert not set(range(20)) & {i for p in parts for i in p}             # P0 stays unused
    parts, notes = assign_groups(groups, 4, shortfall="keep_p0")
    assert sorted(len(p) for p in parts) == [4, 10, 10, 10] and any("kept P0" in n for n in notes)
    parts, notes = assign_groups([list(range(20)), [20, 21]], 4)             # too few filters besides P0
    assert sorted(len(p) for p in parts) == [2, 5, 5, 10] and any("kept P0" in n for n in notes)
