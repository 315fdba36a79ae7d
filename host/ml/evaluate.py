"""Exact failure evaluation (ResiliNet spec §2): every failure configuration, weighted by reliabilities.

Acc(s) is the test accuracy with the nodes of configuration s failed when a sensor->cloud path survives,
otherwise the random-guess accuracy g. We use the guesser's *expected* accuracy
g = sum_k pi_train[k] * pi_test[k] rather than the authors' unseeded sampling: same expectation, no noise,
and the closed forms below then hold exactly:
  vanilla:  AvgAcc(r) = p_all(r) * a0 + (1 - p_all(r)) * g
  any:      AvgAcc(r) <= P_path(r) * max_s Acc(s) + (1 - P_path(r)) * g
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from host.ml.datasets import Dataset
from host.ml.schemes import get_scheme, scheme_topology
from host.ml.topology import Topology


@dataclass
class FailureEvaluation:
    """Accuracy of one trained model under every failure configuration, and its averages per setting."""

    scheme: str
    failure_order: list[str]
    configs: list[list[int]]
    has_path: list[bool]
    #: measured accuracy per configuration (None where there is no path)
    measured: list[float | None]
    #: accuracy per configuration as the metric uses it (g where there is no path)
    accuracy: list[float]
    random_guess: float
    average: dict[str, float]
    path_probability: dict[str, float]
    cap: dict[str, float]
    config_probability: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_label(self, i: int) -> str:
        failed = [n for n, b in zip(self.failure_order, self.configs[i]) if not b]
        return "none failed" if not failed else "+".join(failed) + " failed"


def config_predictor(model, x: np.ndarray, batch_size: int = 1024):
    """``predict(config)``: class probabilities and cloud presence with the configuration's failed nodes
    (1 = alive). The test inputs become tensors once and one traced call of the model serves every
    configuration: ``model.predict`` per configuration built a fresh tf.data pipeline each time, which cost a
    15-board build most of its evaluation time. Same batches and the same inference graph as ``predict``."""
    import tensorflow as tf

    call = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    chunks = [tf.constant(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]

    def predict(config):
        row = tf.constant(np.asarray(config, np.float32)[None, :])
        outs = [call({"x": c, "alive": tf.tile(row, (int(c.shape[0]), 1))}) for c in chunks]
        probs = np.concatenate([np.asarray(o["probs"]) for o in outs])
        present = np.concatenate([np.asarray(o["present"]).reshape(-1) for o in outs])
        return probs, present
    return predict


def predict_config(model, x: np.ndarray, config: tuple[int, ...] | list[int], batch_size: int = 1024):
    """Class probabilities and cloud presence with the configuration's failed nodes (1 = alive)."""
    return config_predictor(model, x, batch_size)(config)


def split_predictor(model, topo: Topology, scheme: str, ds: Dataset, x: np.ndarray):
    """``predict(config)`` through the per-node float sub-models (:func:`host.ml.split.run_split`), each
    sensor node computed once for all configurations. Same results as the whole model; much faster when
    the failable nodes are sensors (distilled students: only the aggregator differs between configurations)."""
    from host.ml.split import (keras_runner, link_weights_of, node_models, plan_partition, run_split,
                            sensor_features, sources_once)

    plans = plan_partition(topo, scheme, feature_groups=ds.feature_groups,
                           link_weights=link_weights_of(model, topo, scheme))
    models = node_models(model, topo, scheme, plans, input_shape=tuple(ds.x_train.shape[1:]),
                         num_classes=ds.num_classes)
    runner = sources_once(keras_runner(models), plans)
    feeds = sensor_features(plans, x)

    def predict(config):
        r = run_split(plans, runner, feeds, topo.alive_map(tuple(config)),
                      zero=lambda n, s: np.zeros((len(x),) + tuple(s.shape), np.float32))
        if r.result is None:
            return np.zeros((len(x), ds.num_classes), np.float32), np.zeros(len(x), np.float32)
        return r.result, np.ones(len(x), np.float32)
    return predict


def evaluate_failures(model, topo: Topology, scheme: str, ds: Dataset, *,
                      skips: list[str] | None = None, split: str = "test", by_nodes: bool = False) -> FailureEvaluation:
    """Evaluate every failure configuration of ``topo.failure_order`` on the dataset's test split.

    ``by_nodes``: run the split network node by node (:func:`split_predictor`) instead of the whole model.
    """
    sch = get_scheme(scheme)
    used = scheme_topology(topo.with_skips(skips), sch)
    x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_val, ds.y_val)
    predict = split_predictor(model, used, sch.name, ds, x) if by_nodes else \
        config_predictor(model, x)
    g = ds.random_guess_accuracy()
    configs = topo.configurations()
    has_path, measured, acc = [], [], []
    for c in configs:
        path = used.has_path(c)
        has_path.append(path)
        if not path:
            measured.append(None)
            acc.append(g)
            continue
        probs, present = predict(c)
        if not np.all(present == 1.0):
            raise AssertionError(f"model and topology disagree: configuration {c} has a path but the cloud "
                                 f"got no input for {int((present != 1).sum())} samples")
        a = float(np.mean(np.argmax(probs, axis=1) == y))
        measured.append(a)
        acc.append(a)
    average, ppath, cap, cprob = {}, {}, {}, {}
    best = max(a for a in acc)
    for setting in topo.reliability:
        probs_s = [topo.config_probability(c, setting) for c in configs]
        total = sum(probs_s)
        average[setting] = sum(p * a for p, a in zip(probs_s, acc)) / total
        ppath[setting] = used.path_probability(setting)
        cap[setting] = ppath[setting] * best + (1 - ppath[setting]) * g
        cprob[setting] = probs_s
    return FailureEvaluation(scheme=sch.name, failure_order=list(topo.failure_order),
                             configs=[list(c) for c in configs], has_path=has_path, measured=measured,
                             accuracy=acc, random_guess=g, average=average, path_probability=ppath, cap=cap,
                             config_probability=cprob)


@dataclass
class Summary:
    """Mean and sample standard deviation (ddof = 1) of AvgAcc over independent training runs."""

    scheme: str
    runs: int
    mean: dict[str, float]
    std: dict[str, float]
    per_config_mean: list[float]


def summarize(evals: list[FailureEvaluation]) -> Summary:
    settings = list(evals[0].average)
    mean = {s: statistics.fmean(e.average[s] for e in evals) for s in settings}
    std = {s: (statistics.stdev(e.average[s] for e in evals) if len(evals) > 1 else 0.0) for s in settings}
    per_cfg = [statistics.fmean(e.accuracy[i] for e in evals) for i in range(len(evals[0].accuracy))]
    return Summary(evals[0].scheme, len(evals), mean, std, per_cfg)
