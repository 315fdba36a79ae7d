"""The synthetic MHEALTH stand-in (host/ml/datasets/mhealth_standin.py): shaped like paper-mode ``mhealth``,
deterministic per seed, labelled as a stand-in, and a fair task (learnable, not separable by class means)."""
from __future__ import annotations

import numpy as np
import pytest

from host.ml.datasets import DatasetOptionError, load_dataset

SIZES = {"n_train": 4000, "n_val": 500, "n_test": 1000}


@pytest.fixture(scope="module")
def standin():
    return load_dataset("mhealth_standin", seed=3, **SIZES)


def _paper_mode(tmp_path):
    """Paper-mode ``mhealth`` on a tiny log in the UCI format (the real logs are not reachable here)."""
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(0, 5, size=(60, 23)), np.repeat(np.arange(1, 13), 5)])
    (tmp_path / "mHealth_subject1.log").write_text("".join("\t".join(f"{v:.5g}" for v in r) + "\n" for r in rows))
    return load_dataset("mhealth", path=tmp_path, verify=False, download=False)


def test_same_interface_as_mhealth_paper_mode(standin, tmp_path):
    paper = _paper_mode(tmp_path)
    assert standin.input_shape == paper.input_shape == (23,)
    assert standin.num_classes == paper.num_classes == 13
    assert standin.class_names == paper.class_names
    assert standin.feature_groups == paper.feature_groups
    assert [len(standin.split(s)[1]) for s in ("train", "val", "test")] == list(SIZES.values())
    labels = np.concatenate([standin.split(s)[1] for s in ("train", "val", "test")])
    assert set(np.unique(labels)) == set(range(1, 13))  # class 0 is the unused null class, as in paper mode
    assert standin.x_train.dtype == np.float32
    # raw values truncated toward zero like the paper's savetxt("%d"), not standardised
    assert np.all(standin.x_train == np.trunc(standin.x_train)) and standin.normalization is None
    chest_acc = standin.x_train[standin.y_train == 1][:, :3]  # standing: gravity on the chest sensor's x
    assert -12 < np.median(chest_acc[:, 0]) < -7
    assert "SYNTHETIC STAND-IN" in standin.info["source"] and "not MHEALTH" in standin.info["source"]


def test_deterministic_per_seed(standin):
    again = load_dataset("mhealth_standin", seed=3, **SIZES)
    other = load_dataset("mhealth_standin", seed=4, **SIZES)
    assert np.array_equal(again.x_train, standin.x_train) and np.array_equal(again.y_test, standin.y_test)
    assert not np.array_equal(other.x_train, standin.x_train)


def _standardise(ds):
    mu, sd = ds.x_train.mean(0), ds.x_train.std(0) + 1e-6
    return (ds.x_train - mu) / sd, (ds.x_test - mu) / sd


def _nearest_mean_accuracy(xtr, ytr, xte, yte) -> float:
    classes = np.unique(ytr)
    means = np.stack([xtr[ytr == c].mean(0) for c in classes])
    dist = ((xte[:, None, :] - means[None]) ** 2).sum(-1)
    return float((classes[dist.argmin(1)] == yte).mean())


def _knn_accuracy(xtr, ytr, xte, yte, k: int = 10) -> float:
    dist = ((xte[:, None, :] - xtr[None]) ** 2).sum(-1)
    votes = ytr[np.argsort(dist, axis=1)[:, :k]]
    pred = np.array([np.bincount(v).argmax() for v in votes])
    return float((pred == yte).mean())


def test_learnable_but_not_trivial(standin):
    xtr, xte = _standardise(standin)
    ytr, yte = standin.y_train, standin.y_test
    chance = standin.random_guess_accuracy()  # ~0.087
    ncm = _nearest_mean_accuracy(xtr, ytr, xte, yte)
    knn = _knn_accuracy(xtr, ytr, xte, yte)
    # class means separate some activities (postures) but not the gaits, which are rings around a posture
    assert 3 * chance < ncm < 0.7, ncm
    # a non-linear classifier does much better, and still not perfectly (activities overlap by design)
    assert ncm + 0.15 < knn < 0.95, (ncm, knn)
    # no one sensor position carries the task: one group alone does clearly worse than all 23 features
    chest = standin.feature_groups["chest"]
    assert _knn_accuracy(xtr[:, chest], ytr, xte[:, chest], yte) < knn - 0.2


def test_options_from_the_command_line_and_bad_options():
    ds = load_dataset("mhealth_standin", n_train="50", n_val="10", n_test="20", noise="0.5", truncate="false")
    assert len(ds.y_train) == 50 and not np.all(ds.x_train == np.trunc(ds.x_train))
    with pytest.raises(DatasetOptionError, match="n_train must be a whole number"):
        load_dataset("mhealth_standin", n_train="many")
    with pytest.raises(DatasetOptionError, match="no option 'n_samples'.*n_train"):
        load_dataset("mhealth_standin", n_samples=5)


def test_experiments_cli_reports_a_bad_dataset_option(capsys, tmp_path):
    from host.ml.experiments import main

    rc = main(["average", "--preset", "health", "--dataset", "mhealth_standin", "--dataset-opt", "noise=-1",
               "--runs", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: mhealth_standin: noise must be positive, got -1.0"]
