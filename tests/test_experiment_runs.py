"""``host.experiments --runs N --jobs J``: independent runs in parallel processes, merged, resumable."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")

from host import experiments  # noqa: E402
from host.ml import run_pool, train as train_module  # noqa: E402
from test_build_and_experiments import TINY  # noqa: E402


@pytest.fixture(scope="module")
def tiny_topology(tmp_path_factory, health_npz):
    path = tmp_path_factory.mktemp("topo") / "tiny.toml"
    path.write_text(TINY.format(path=health_npz))
    return str(path)


def _average(out, topo, *extra):
    assert experiments.main(["average", "--preset", topo, "--out", str(out), "--schemes", "vanilla,resilinet",
                             "--runs", "2", "--epochs", "1", *extra]) == 0
    return json.loads((out / "average_accuracy_tiny.json").read_text())


def test_parallel_runs_equal_serial_runs_and_finished_runs_are_not_redone(tmp_path, tiny_topology, monkeypatch):
    serial = _average(tmp_path / "serial", tiny_topology, "--jobs", "1", "--no-cache")
    # Two worker processes, everything retrained: the same numbers as one process (seeds per run, not per job).
    parallel = _average(tmp_path / "parallel", tiny_topology, "--jobs", "2", "--no-cache")
    for s in ("vanilla", "resilinet"):
        assert [r["average"] for r in parallel["schemes"][s]["runs"]] == \
            [r["average"] for r in serial["schemes"][s]["runs"]]
        # the two runs are independent (different seeds): not the same model twice
        assert serial["schemes"][s]["runs"][0]["measured"] != serial["schemes"][s]["runs"][1]["measured"]
    stored = sorted(p.name for p in (tmp_path / "parallel" / "runs").glob("*.json"))
    assert len(stored) == 4  # 2 schemes x 2 runs
    # the report names the run files behind each cell, and they are the stored ones
    named = parallel["run_files"]
    assert set(named) == {"vanilla", "resilinet"} and all(len(v) == 2 for v in named.values())
    assert sorted(f.removeprefix("runs/") for v in named.values() for f in v) == stored

    # Resume: the stored runs are read back; nothing is trained (training would raise here).
    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr(train_module, "train", no_training)
    again = _average(tmp_path / "parallel", tiny_topology, "--jobs", "2")
    assert again["schemes"] == parallel["schemes"]

    # An interrupted experiment: one stored run removed, only that one is redone (in this process).
    victim = (tmp_path / "parallel" / "runs" / stored[0])
    victim.unlink()
    monkeypatch.undo()
    calls = []
    real = run_pool._run_one

    def counting(*a, **k):
        calls.append(a[1].scheme)
        return real(*a, **k)
    monkeypatch.setattr(run_pool, "_run_one", counting)
    resumed = _average(tmp_path / "parallel", tiny_topology, "--jobs", "1")
    assert len(calls) == 1 and victim.exists()
    assert resumed["schemes"] == parallel["schemes"]


def test_ablation_runs_report_mean_and_std(tmp_path, tiny_topology):
    out = tmp_path / "abl"
    assert experiments.main(["skips", "--preset", tiny_topology, "--out", str(out), "--runs", "2",
                             "--epochs", "1"]) == 0
    data = json.loads((out / "skip_sensitivity_tiny.json").read_text())
    assert data["runs"] == 2 and len(list((out / "runs").glob("*.json"))) == 4 * 2
    assert all((out / f).is_file() for files in data["run_files"].values() for f in files)
    assert len(data["run_files"]) == 4
    cell = data["table"]["no skips"]
    assert set(cell) == {"average", "std", "path_probability"} and all(v >= 0 for v in cell["std"].values())
    md = (out / "skip_sensitivity_tiny.md").read_text()
    assert "2 training run(s) per cell" in md and "±" in md


def test_bad_runs_and_jobs_are_one_line_errors(tiny_topology, capsys):
    for opt in ("--runs", "--jobs"):
        assert experiments.main(["average", "--preset", tiny_topology, opt, "0"]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {opt} must be at least 1, got 0\n"


def test_weights_of_another_network_is_one_line_error(tmp_path, tiny_topology, capsys):
    import keras

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    assert experiments.main(["average", "--preset", tiny_topology, "--schemes", "vanilla", "--epochs", "1",
                             "--weights", str(path), "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --weights {path}") and err.count("\n") == 1
