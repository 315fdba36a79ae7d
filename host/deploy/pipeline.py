"""The stages of ``python -m host.build``, one function each, each returning a typed record.

:func:`run_build` runs them in order and writes ``manifest.json`` (:mod:`host.deploy.manifest`):

1. :func:`load_data`, :func:`train_stage` — train, or reuse the model cached under a hash of its
   configuration (a distillation preset: teacher and students); :func:`evaluate_stage` — every failure
   configuration, ``evaluation.*``.
2. :func:`nodes_stage` — split into one sub-model per node, int8 per node (one scale per link, shared by
   both ends), C per node, and the int8 split network on the tflite_micro reference, ``nodes.*``.
3. :func:`firmware_stage` — number nodes and links, cross-compile one image per node; then
   :func:`platformio_stage` writes the PlatformIO environments.

Before any work, the input is checked (:mod:`host.deploy.checks`: names, then the network built once on the
dataset's shapes). Every stage writes into a staging directory beside ``--out``, renamed into place when the
build is complete (:mod:`host.deploy.staging`): a failed build leaves the previous one untouched. A build
inside the repository with PlatformIO environments becomes the one ``pio run`` builds there
(:func:`host.deploy.pio_root.point_current`).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from boards import Board
from host.deploy import staging
from host.deploy.build_reports import evaluation_report, fit_estimates, nodes_report, write_summary
from host.deploy.checks import check_graph
from host.deploy.firmware_stage import FirmwareBuild, build_firmware
from host.deploy.int8_nodes import build_int8_nodes, int8_accuracy
from host.deploy.manifest import (MANIFEST_VERSION, DatasetInfo, EvaluateStage, FirmwareStage, Link, Manifest, Node,
                                  NodesStage, Stage, Stages, Timings, TrainStage, write_manifest)
from host.deploy.pio_ini import write_platformio_ini
from host.deploy.pio_root import point_current
from host.ml.datasets import Dataset
from host.ml.evaluate import FailureEvaluation, evaluate_failures
from host.ml.problem import load_for
from host.ml.schemes import Scheme
from host.ml.topology import Topology
from host.ml.train import TrainConfig, train

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildRequest:
    """What to build (the command line, resolved)."""

    topology: Topology
    scheme: Scheme
    board: Board                   # every node's board
    out: Path
    seed: int = 0
    epochs: int | None = None
    max_train: int | None = None
    max_test: int | None = None
    use_cache: bool = True
    progress: bool = True
    stop_after: Stage = "firmware"
    deadline_ms: int = 1000        # how long a board waits for a sample's missing inputs
    int8_samples: int | None = None
    distribute: str = "none"       # host.ml.distribute: none, mirrored or multiworker
    weights: Path | None = None    # starting weights (--weights), else the seeded initialisation
    final: Path | None = None      # where ``out`` (a staging directory) is renamed to; None: ``out`` itself

    @property
    def final_out(self) -> Path:
        return self.final if self.final is not None else self.out


@dataclass
class DataResult:
    dataset: Dataset
    seconds: float


@dataclass
class TrainResult:
    topology: Topology             # a distillation preset's, with the part sizes found while training
    model: Any                     # the Keras split network
    section: TrainStage
    cached: bool                   # every model came from the cache
    seconds: float


@dataclass
class EvaluateResult:
    evaluation: FailureEvaluation
    section: EvaluateStage
    seconds: float


@dataclass
class NodesResult:
    nodes: dict[str, Node]
    links: dict[str, Link]
    section: NodesStage


@dataclass
class FirmwareResult:
    build: FirmwareBuild
    section: FirmwareStage


@dataclass
class BuildResult:
    manifest: Manifest
    path: Path                     # manifest.json
    evaluation: FailureEvaluation
    cached: bool
    n_test: int
    current: Path | None = None    # build/current, when ``pio run`` in the repository now builds this build


def load_data(req: BuildRequest) -> DataResult:
    """The preset's dataset (subsampled as asked); raises DatasetNotFoundError naming what is missing."""
    t0 = time.time()
    ds = load_for(req.topology, max_train=req.max_train, max_test=req.max_test, seed=req.seed)
    return DataResult(ds, time.time() - t0)


def train_stage(req: BuildRequest, ds: Dataset) -> TrainResult:
    """Train (or load from the cache) and save ``model.keras``."""
    t0 = time.time()
    topo = req.topology
    if topo.distillation:
        from host.ml.nonn.deploy import train_distilled  # only distillation presets need the NoNN code

        distilled = train_distilled(topo, ds, seed=req.seed, epochs=req.epochs, progress=req.progress,
                                    use_cache=req.use_cache)
        topo, model = distilled.topology, distilled.model
        section = TrainStage(model="model.keras", distillation=distilled.info,
                             cached=distilled.info["students"]["cached"])
        cached = distilled.info["students"]["cached"] and distilled.info["teacher"]["cached"]
    else:
        cfg = TrainConfig.from_topology(topo, scheme=req.scheme.name, epochs=req.epochs, seed=req.seed,
                                        distribute=req.distribute, init_weights=req.weights and str(req.weights))
        trained = train(topo, ds, cfg, progress=req.progress, use_cache=req.use_cache)
        model, cached = trained.model, trained.cached
        section = TrainStage(model="model.keras", cache_key=trained.key, cached=trained.cached, config=asdict(cfg),
                             best_epoch=trained.best_epoch, train_seconds=round(trained.seconds, 1),
                             history=trained.history)
    seconds = time.time() - t0
    model.save(req.out / "model.keras")
    return TrainResult(topo, model, section, cached, seconds)


def evaluate_stage(req: BuildRequest, trained: TrainResult, ds: Dataset) -> EvaluateResult:
    """Accuracy under every failure configuration; writes ``evaluation.md/.json/.png``."""
    t0 = time.time()
    topo = trained.topology
    # Only sensors can fail in a distillation preset: evaluate node by node, each student computed once.
    ev = evaluate_failures(trained.model, topo, req.scheme.name, ds, by_nodes=bool(topo.distillation))
    seconds = time.time() - t0
    files = evaluation_report(req.out, topo.name, ev, len(ds.y_test))
    section = EvaluateStage(report=files["md"].name, json=files["json"].name, plot=files["png"].name,
                            no_failure_accuracy=ev.measured[-1], average_accuracy=ev.average)
    return EvaluateResult(ev, section, seconds)


def start_manifest(req: BuildRequest, data: DataResult, trained: TrainResult, evaluated: EvaluateResult) -> Manifest:
    """The manifest after stage 1: settings, dataset, topology, nodes (role and board), train and evaluate."""
    topo, ds = trained.topology, data.dataset
    return Manifest(
        version=MANIFEST_VERSION, preset=topo.name, partition=topo.partition, scheme=req.scheme.name,
        board=req.board.name, seed=req.seed,
        dataset=DatasetInfo(name=ds.name, train=len(ds.y_train), val=len(ds.y_val), test=len(ds.y_test),
                            num_classes=ds.num_classes, input_shape=list(ds.x_train.shape[1:])),
        topology=topo.to_dict(),
        nodes={n.name: Node(n.role, n.failable, board=req.board.name) for n in topo.nodes},
        stages=Stages(train=trained.section, evaluate=evaluated.section),
        timings_s=Timings(data=round(data.seconds, 2), train=round(trained.seconds, 2),
                          evaluate=round(evaluated.seconds, 2)))


def nodes_stage(req: BuildRequest, trained: TrainResult, ds: Dataset, ev: FailureEvaluation,
                log: Log = print) -> NodesResult:
    """Per-node int8 models and C modules, the int8 split network's accuracy; writes ``nodes.*``."""
    t0 = time.time()
    log("stage 2: per-node int8 models and C modules")
    topo, model, scheme = trained.topology, trained.model, req.scheme.name
    built = build_int8_nodes(model, topo, scheme, ds, req.out, board=req.board.name, seed=req.seed, log=log)
    n = len(ds.y_test) if req.int8_samples is None else min(req.int8_samples, len(ds.y_test))
    acc8 = int8_accuracy(built.plans, built.quant, topo, ds.x_test[:n], ds.y_test[:n])
    # float on exactly the samples the int8 evaluation (and the harness) uses: the first n
    acc_f = ev.measured if n == len(ds.y_test) else \
        evaluate_failures(model, topo, scheme, replace(ds, x_test=ds.x_test[:n], y_test=ds.y_test[:n]),
                          by_nodes=bool(topo.distillation)).measured
    fit = fit_estimates(built.nodes, req.board)
    section = NodesStage(report="nodes.md", timings_s=built.timings_s, int8_eval_samples=n, int8_accuracy=acc8,
                         float_accuracy=acc_f, fit=fit, seconds=round(time.time() - t0, 1))
    nodes_report(req.out, topo.name, req.scheme.title, built.nodes, built.links, ev, acc_f, acc8, n, fit)
    return NodesResult(built.nodes, built.links, section)


def firmware_stage(req: BuildRequest, manifest: Manifest, log: Log = print) -> FirmwareResult:
    """One image per node (raises FirmwareFitError naming the node that does not fit its board)."""
    t0 = time.time()
    log("stage 3: firmware per node")
    fw = build_firmware(manifest, req.out, deadline_ms=req.deadline_ms, final=req.final_out, log=log)
    return FirmwareResult(fw, FirmwareStage(deadline_ms=fw.deadline_ms, seconds=round(time.time() - t0, 1)))


def record_firmware(manifest: Manifest, result: FirmwareResult) -> None:
    """Node ids, images, link ids and the sensors' feeds into the manifest."""
    fw = result.build
    for name, img in fw.images.items():
        manifest.nodes[name].node_id = img.node_id
        manifest.nodes[name].firmware = img
    links = manifest.require_links()
    for link, lid in fw.link_ids.items():
        if link in links:
            links[link].id = lid
    manifest.sensor_links = fw.sensor_links
    manifest.stages.firmware = result.section


def platformio_stage(req: BuildRequest, manifest: Manifest, log: Log = print) -> Path:
    """platformio.ini with one environment per node (recorded in the manifest)."""
    ini = write_platformio_ini(manifest, req.final_out, work_dir=req.out)
    envs = manifest.platformio.envs if manifest.platformio else []
    log(f"  pio  {ini}: envs {', '.join(envs)} (pio run [-e ENV] [-t upload])")
    return ini


def run_build(req: BuildRequest, log: Log = print) -> BuildResult:
    """Every stage up to ``req.stop_after`` into a staging directory, renamed to ``req.out`` when complete
    (a failure raises and leaves nothing). Raises BuildInputError (host.deploy.checks) for a network the
    topology cannot build before training, FirmwareFitError naming a node that does not fit its board."""
    with staging.staged(req.out) as st:
        work = replace(req, out=st.work, final=st.final)
        data = load_data(work)
        check_graph(req.topology, req.scheme.name, data.dataset, epochs=req.epochs, seed=req.seed)
        trained = train_stage(work, data.dataset)
        evaluated = evaluate_stage(work, trained, data.dataset)
        manifest = start_manifest(work, data, trained, evaluated)
        if req.stop_after != "train":
            nodes = nodes_stage(work, trained, data.dataset, evaluated.evaluation, log)
            manifest.nodes, manifest.links, manifest.stages.nodes = nodes.nodes, nodes.links, nodes.section
        if req.stop_after == "firmware":
            record_firmware(manifest, firmware_stage(work, manifest, log))
            platformio_stage(work, manifest, log)
        write_summary(st.work, manifest, req.scheme.title, len(data.dataset.y_test))
        write_manifest(manifest, st.work)
        st.commit(log)
    current = point_current(st.final) if manifest.platformio is not None else None
    return BuildResult(manifest, req.out / "manifest.json", evaluated.evaluation, trained.cached,
                       len(data.dataset.y_test), current)
