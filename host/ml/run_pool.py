"""Independent training runs of an experiment, in parallel processes, resumable.

An experiment is a list of :class:`RunSpec` (a label and a :class:`TrainConfig`, whose ``seed`` makes each run
independent). :func:`evaluate_runs` trains and evaluates every run that has no result yet, ``jobs`` at a time
in separate processes, and stores each :class:`FailureEvaluation` as ``<out>/runs/<key>.json`` the moment it is
done. The key hashes everything that shapes the result (topology, data, training configuration, evaluation
version), so a finished run is never redone, an interrupted experiment resumes where it stopped, and changing
anything that matters gives a new key instead of a stale result.

Processes, not threads: TensorFlow keeps global state (seeds, determinism flags) per process. Each worker
loads the topology and data set itself from a :class:`DataSpec` (small and picklable), once per process.
A worker's TensorFlow uses its default thread pools, as a single run does, so ``--jobs 1`` and ``--jobs 4``
give the same numbers (a run's result never depends on how many ran beside it).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from host.ml.evaluate import FailureEvaluation
from host.ml.train import TrainConfig

#: Bump when evaluate_failures changes what a stored result means.
EVALUATION_VERSION = 1


@dataclass(frozen=True)
class DataSpec:
    """How a worker process re-creates the experiment's topology and data set (the CLI's own options)."""

    preset: str
    partition: str | None = None
    dataset: str | None = None
    dataset_opts: tuple[str, ...] = ()
    max_train: int | None = None
    max_test: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class RunSpec:
    """One training run: what the report calls it and how it is trained."""

    label: str
    cfg: TrainConfig = field(hash=False)


@dataclass
class RunProgress:
    """Counts for the caller's progress line."""

    total: int
    stored: int = 0
    done: int = 0


_LOADED: dict[DataSpec, tuple] = {}


def load_problem(spec: DataSpec):
    """(topology, dataset) for a DataSpec, loaded once per process."""
    if spec not in _LOADED:
        from host.ml.problem import load_for, override_dataset
        from host.ml.topology import load_topology

        topo = load_topology(spec.preset, partition=spec.partition)
        override_dataset(topo, spec.dataset, list(spec.dataset_opts))
        ds = load_for(topo, max_train=spec.max_train, max_test=spec.max_test, seed=spec.seed)
        _LOADED[spec] = (topo, ds)
    return _LOADED[spec]


def run_key(data: DataSpec, cfg: TrainConfig) -> str:
    """The stored result's name: the model cache key (topology, data, training) plus the evaluation version."""
    from host.ml.train import cache_key

    topo, ds = load_problem(data)
    blob = json.dumps({"model": cache_key(topo, ds, cfg), "evaluation": EVALUATION_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_file(data: DataSpec, cfg: TrainConfig) -> str:
    """The name of a run's stored result in ``<out>/runs/``."""
    return f"{run_key(data, cfg)}.json"


def _run_one(data: DataSpec, cfg: TrainConfig, path: str, use_cache: bool, progress: bool) -> str:
    """Worker: train (or load the cached model), evaluate every failure configuration, store the result."""
    from host.ml.evaluate import evaluate_failures
    from host.ml.train import train

    topo, ds = load_problem(data)
    trained = train(topo, ds, cfg, progress=progress, use_cache=use_cache)
    ev = evaluate_failures(trained.model, topo, cfg.scheme, ds, skips=cfg.skips)
    tmp = Path(path).with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"train": asdict(cfg), "evaluation": ev.to_dict()}, sort_keys=True, default=str))
    tmp.replace(path)  # atomic: a result file is complete or absent
    return path


def read_result(path: Path) -> FailureEvaluation:
    return FailureEvaluation(**json.loads(path.read_text())["evaluation"])


def evaluate_runs(data: DataSpec, specs: list[RunSpec], *, out: Path, jobs: int = 1, use_cache: bool = True,
                  progress: bool = True, on_progress: Callable[[RunProgress], None] | None = None
                  ) -> dict[str, FailureEvaluation]:
    """Every run's evaluation by label; runs with a stored result are read, the others trained ``jobs`` at a
    time. ``use_cache=False`` retrains and re-evaluates everything."""
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    paths = {s.label: runs_dir / run_file(data, s.cfg) for s in specs}
    todo = [s for s in specs if not (use_cache and paths[s.label].exists())]
    state = RunProgress(total=len(specs), stored=len(specs) - len(todo))
    if on_progress:
        on_progress(state)
    if jobs == 1 or len(todo) <= 1:
        for s in todo:
            _run_one(data, s.cfg, str(paths[s.label]), use_cache, progress)
            state.done += 1
            if on_progress:
                on_progress(state)
    else:
        _run_parallel(data, todo, paths, jobs, use_cache, state, on_progress)
    return {s.label: read_result(paths[s.label]) for s in specs}


def _run_parallel(data: DataSpec, todo: list[RunSpec], paths: dict[str, Path], jobs: int, use_cache: bool,
                  state: RunProgress, on_progress: Callable[[RunProgress], None] | None) -> None:
    # spawn: a forked child would inherit the parent's TensorFlow runtime (threads, locks) half-initialised.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as pool:
        pending: set[Future] = {pool.submit(_run_one, data, s.cfg, str(paths[s.label]), use_cache, False)
                                for s in todo}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()  # a failed run stops the experiment; finished runs stay stored
                    state.done += 1
                    if on_progress:
                        on_progress(state)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
