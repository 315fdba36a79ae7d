"""The paper's experiments as commands; each writes Markdown + JSON + a PNG plot.

    python -m host.experiments average   --preset fashion --runs 10 --jobs 2
    python -m host.experiments failout   --preset fashion [--runs N]
    python -m host.experiments weights   --preset fashion [--runs N]
    python -m host.experiments skips     --preset fashion [--runs N]
    python -m host.experiments links     --preset fashion [--runs N]   (accuracy vs bytes per inference)

``--runs N`` trains every table cell N times (seeds seed..seed+N-1) and reports mean ± std; ``--jobs J`` runs J
of them at a time in separate processes. Each finished run is stored under ``<out>/runs/`` (named by a hash of
everything that shapes it), so an interrupted experiment resumes and a finished run is never redone; the
results are the same whatever J is. ``--epochs`` and ``--max-train`` shrink the work for a quick look; the
defaults are the preset's.
"""
from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from host.ml.datasets import Dataset, DatasetNotFoundError, DatasetOptionError, UnknownDatasetError
from host.ml.distribute import DISTRIBUTE_CHOICES, DistributeError, strategy_for, worker_role
from host.ml.evaluate import FailureEvaluation, evaluate_failures, summarize
from host.ml.problem import load_for, override_dataset  # noqa: F401  (load_for: also imported from here)
from host.ml.run_pool import DataSpec, RunProgress, RunSpec, evaluate_runs, load_problem, run_file
from host.ml.schemes import SCHEMES, get_scheme
from host.report_files import grouped_bars, md_table, pct, write_report
from host.ml.topology import Topology
from host.ml.train import TrainConfig, WeightsError, train

FAILOUT_SURVIVALS = (0.95, 0.9, 0.7, 0.5)


def train_and_evaluate(topo: Topology, ds: Dataset, cfg: TrainConfig, *, progress: bool = True,
                       use_cache: bool = True) -> FailureEvaluation:
    trained = train(topo, ds, cfg, progress=progress, use_cache=use_cache)
    return evaluate_failures(trained.model, topo, cfg.scheme, ds, skips=cfg.skips)


def _settings(topo: Topology) -> list[str]:
    return list(topo.reliability)


@dataclass
class Runner:
    """Where an experiment's runs come from: :func:`host.ml.run_pool.evaluate_runs` with the CLI's options.

    ``runs`` independent training runs per table cell (seeds ``seed``, ``seed + 1``, ...); ``jobs`` of them at
    a time in separate processes; results stored under ``out/runs`` so a finished run is not redone."""

    data: DataSpec
    out: Path
    runs: int = 1
    jobs: int = 1
    use_cache: bool = True
    progress: bool = True
    #: per cell label, the stored run files its figures come from (``runs/<key>.json``), for the reports
    files: dict[str, list[str]] = field(default_factory=dict)

    def cells(self, cells: dict[str, TrainConfig]) -> dict[str, list[FailureEvaluation]]:
        """Every cell's evaluations, one per run."""
        specs = [RunSpec(f"{label}#{r}", replace(cfg, seed=cfg.seed + r))
                 for label, cfg in cells.items() for r in range(self.runs)]
        for s in specs:
            self.files.setdefault(s.label.rsplit("#", 1)[0], []).append(f"runs/{run_file(self.data, s.cfg)}")
        results = evaluate_runs(self.data, specs, out=self.out, jobs=self.jobs, use_cache=self.use_cache,
                                progress=self.progress and self.jobs == 1, on_progress=_print_progress)
        return {label: [results[f"{label}#{r}"] for r in range(self.runs)] for label in cells}


def _print_progress(p: RunProgress) -> None:
    if p.total > 1:
        print(f"runs: {p.stored + p.done}/{p.total} done ({p.stored} stored earlier)", file=sys.stderr, flush=True)


def _mean_std(evals: list[FailureEvaluation], setting: str) -> tuple[float, float]:
    vals = [e.average[setting] for e in evals]
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _cell_tables(cells: dict[str, list[FailureEvaluation]], settings: list[str]):
    """Mean and std per cell and setting, for the JSON and the Markdown table."""
    mean = {k: {st: _mean_std(ev, st)[0] for st in settings} for k, ev in cells.items()}
    std = {k: {st: _mean_std(ev, st)[1] for st in settings} for k, ev in cells.items()}
    return mean, std


def _sample_counts(ds: Dataset) -> dict[str, int]:
    """Training and test samples a report's runs used (its JSON's ``samples``)."""
    return {"train": len(ds.y_train), "test": len(ds.y_test)}


def _budget(runs: int, base: TrainConfig, ds: Dataset) -> str:
    return (f"{runs} training run(s) per cell (seeds {base.seed}..{base.seed + runs - 1}), {base.epochs} epochs, "
            f"{len(ds.y_train)} training and {len(ds.y_test)} test samples. Accuracy in %"
            + (", mean ± std (ddof 1) over the runs." if runs > 1 else ".")
            + " Every run is stored in `runs/` beside this report; the JSON's `run_files` names each cell's runs.")


# --------------------------------------------------------------------------- average accuracy
def average_accuracy(topo: Topology, ds: Dataset, base: TrainConfig, *, schemes: list[str],
                     runner: Runner) -> dict[str, Any]:
    """The paper's main table: average accuracy per reliability setting, mean ± std over runs."""
    results = runner.cells({s: replace(base, scheme=s) for s in schemes})
    runs = runner.runs
    settings = _settings(topo)
    summaries = {s: summarize(ev) for s, ev in results.items()}
    first = next(iter(results.values()))[0]
    cap_any = {st: max(e.cap[st] for ev in results.values() for e in ev) for st in settings}

    rows = [[SCHEMES[s].title] + [pct(summaries[s].mean[st], summaries[s].std[st] if runs > 1 else None)
                                  for st in settings] for s in schemes]
    ppath = topo.path_probability
    rows.append(["P(path), all skips"] + [pct(ppath(st)) for st in settings])
    rows.append(["P(path), no skips"] + [pct(ppath(st, skips=False)) for st in settings])
    cfg_rows = []
    for i, c in enumerate(first.configs):
        cfg_rows.append([first.config_label(i), "".join(map(str, c))]
                        + [pct(summaries[s].per_config_mean[i]) for s in schemes]
                        + [" / ".join(f"{first.config_probability[st][i]:.4f}" for st in settings[1:])])
    md = (f"# Average accuracy — {topo.name} ({ds.name})\n\n" + _budget(runs, base, ds)
          + f" Random-guess accuracy g = {pct(first.random_guess)} %.\n\n"
          + md_table(["Scheme"] + settings, rows)
          + f"\n\n## Accuracy per failure configuration (order {first.failure_order}, 1 = alive)\n\n"
          + md_table(["Configuration", "bits"] + [SCHEMES[s].title for s in schemes]
                     + ["P: " + " / ".join(settings[1:])], cfg_rows) + "\n")
    data = {"experiment": "average_accuracy", "preset": topo.name, "dataset": ds.name, "runs": runs,
            "run_files": runner.files, "samples": _sample_counts(ds),
            "train": asdict(base), "settings": settings,
            "schemes": {s: {"mean": summaries[s].mean, "std": summaries[s].std,
                            "runs": [e.to_dict() for e in results[s]]} for s in schemes},
            "path_probability": {st: ppath(st) for st in settings},
            "path_probability_no_skips": {st: ppath(st, skips=False) for st in settings}}

    def plot(ax):
        grouped_bars(ax, settings, {SCHEMES[s].title: [summaries[s].mean[st] for st in settings] for s in schemes},
                     errors={SCHEMES[s].title: [summaries[s].std[st] for st in settings] for s in schemes},
                     caps=[cap_any[st] for st in settings], title=f"{topo.name}: average accuracy")
    write_report(runner.out, f"average_accuracy_{topo.name}", md, data, plot)
    return data


def _ablation_report(topo: Topology, ds: Dataset, base: TrainConfig, runner: Runner, *, experiment: str,
                     title: str, intro: str, first_column: str, mean: dict[str, dict[str, float | None]],
                     std: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    """Markdown + JSON + PNG of an ablation table (rows = variants, columns = reliability settings)."""
    settings = _settings(topo)
    show_std = runner.runs > 1
    rows = [[name] + [pct(v.get(st), std[name].get(st) if show_std else None) for st in settings]
            for name, v in mean.items()]
    md = (f"# {title} — {topo.name}, {get_scheme(base.scheme).title}\n\n{intro}\n\n"
          + _budget(runner.runs, base, ds) + "\n\n" + md_table([first_column] + settings, rows) + "\n")
    data = {"experiment": experiment, "preset": topo.name, "scheme": base.scheme, "settings": settings,
            "train": asdict(base), "runs": runner.runs, "table": mean, "std": std, "run_files": runner.files,
            "samples": _sample_counts(ds)}

    def plot(ax):
        grouped_bars(ax, settings, {k: [v.get(st) for st in settings] for k, v in mean.items()},
                     title=f"{topo.name}: {title.lower()}")
    write_report(runner.out, f"{experiment}_{topo.name}", md, data, plot)
    return data


# --------------------------------------------------------------------------- failout ablation
def failout_ablation(topo: Topology, ds: Dataset, base: TrainConfig, *, runner: Runner,
                     survivals=FAILOUT_SURVIVALS) -> dict[str, Any]:
    settings = _settings(topo)
    # survival 1 everywhere is no failout at all (the paper records 0): no "variable" model for such settings
    variable = [st for st in settings if not all(r == 1.0 for r in topo.reliabilities(st))]
    cells = {f"fixed {p:g}": replace(base, failout_survival=p) for p in survivals}
    cells.update({f"variable {st}": replace(base, failout_survival="variable", reliability_setting=st)
                  for st in variable})
    mean, std = _cell_tables(runner.cells(cells), settings)
    table = {k: v for k, v in mean.items() if not k.startswith("variable ")}
    table_std = {k: v for k, v in std.items() if not k.startswith("variable ")}
    table["variable"] = {st: (mean[f"variable {st}"][st] if st in variable else None) for st in settings}
    table_std["variable"] = {st: (std[f"variable {st}"][st] if st in variable else None) for st in settings}
    return _ablation_report(
        topo, ds, base, runner, experiment="failout_ablation", title="Failout-rate ablation",
        first_column="Failout survival", mean=table, std=table_std,
        intro="Survival p per failable node (failout rate 1 − p); \"variable\" trains one model per setting with "
              "p_i = that node's reliability and evaluates it in that setting only.")


# --------------------------------------------------------------------------- weight ablation
def weight_ablation(topo: Topology, ds: Dataset, base: TrainConfig, *, runner: Runner) -> dict[str, Any]:
    settings = _settings(topo)
    names = {1: "1: weight 1", 2: "2: normalised reliability", 3: "3: reliability", 4: "4: uniform random"}
    cells: dict[str, TrainConfig] = {}
    for scheme in (1, 2, 3, 4):
        if scheme in (1, 4):
            cells[names[scheme]] = replace(base, weight_scheme=scheme)
        else:
            cells.update({f"{names[scheme]} @ {st}": replace(base, weight_scheme=scheme, reliability_setting=st)
                          for st in settings})
    mean, std = _cell_tables(runner.cells(cells), settings)
    table: dict[str, dict[str, float | None]] = {}
    table_std: dict[str, dict[str, float | None]] = {}
    for scheme, name in names.items():
        if scheme in (1, 4):
            table[name], table_std[name] = mean[name], std[name]
        else:
            table[name] = {st: mean[f"{name} @ {st}"][st] for st in settings}
            table_std[name] = {st: std[f"{name} @ {st}"][st] for st in settings}
    return _ablation_report(
        topo, ds, base, runner, experiment="weight_ablation", title="Hyperconnection-weight ablation",
        first_column="Weight scheme", mean=table, std=table_std,
        intro="Schemes 2 and 3 depend on the reliabilities: one model per setting, evaluated in that setting. "
              "Schemes 1 and 4 are trained once.")


# --------------------------------------------------------------------------- skip sensitivity
def skip_subsets(topo: Topology) -> list[list[str]]:
    """Every subset of the skip hyperconnections, by size (none first, all last)."""
    names = [l.name for l in topo.skip_links]
    return [list(c) for k in range(len(names) + 1) for c in itertools.combinations(names, k)]


def skip_sensitivity(topo: Topology, ds: Dataset, base: TrainConfig, *, runner: Runner) -> dict[str, Any]:
    settings = _settings(topo)
    cells = {(", ".join(sub) if sub else "no skips"): replace(base, skips=sub) for sub in skip_subsets(topo)}
    results = runner.cells(cells)
    mean, std = _cell_tables(results, settings)
    table = {k: {"average": mean[k], "std": std[k], "path_probability": dict(ev[0].path_probability)}
             for k, ev in results.items()}
    show_std = runner.runs > 1
    rows = [[k] + [f"{pct(v['average'][st], v['std'][st] if show_std else None)} "
                   f"(cap P={v['path_probability'][st]:.4f})" for st in settings] for k, v in table.items()]
    md = (f"# Skip-hyperconnection sensitivity — {topo.name}, {get_scheme(base.scheme).title}\n\n"
          "One model per subset of skip hyperconnections; in brackets the probability that a path survives.\n\n"
          + _budget(runner.runs, base, ds) + "\n\n" + md_table(["Skips kept"] + settings, rows) + "\n")
    data = {"experiment": "skip_sensitivity", "preset": topo.name, "scheme": base.scheme, "settings": settings,
            "train": asdict(base), "runs": runner.runs, "table": table, "run_files": runner.files,
            "samples": _sample_counts(ds)}

    def plot(ax):
        grouped_bars(ax, list(table), {st: [v["average"][st] for v in table.values()] for st in settings},
                     title=f"{topo.name}: skip hyperconnections kept")
    write_report(runner.out, f"skip_sensitivity_{topo.name}", md, data, plot)
    return data


# --------------------------------------------------------------------------- CLI
def training_options_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with --weights / --distribute / --jobs (None: nothing); sets up the strategy, which must
    happen before TensorFlow runs anything."""
    if args.weights and not Path(args.weights).is_file():
        return f"--weights {args.weights}: no such file (a .keras model or .weights.h5 file)"
    if args.distribute != "none" and args.jobs > 1:
        return "--distribute trains one model at a time on all replicas: use --jobs 1"
    try:
        strategy_for(args.distribute)
    except DistributeError as e:
        return str(e)
    return None


def output_dir(args: argparse.Namespace) -> Path:
    """--out; for the other workers of a multi-worker run a temporary directory (worker 0 writes the reports)
    holding a copy of worker 0's stored runs, so every worker skips the same finished runs."""
    out = Path(args.out)
    if worker_role(args.distribute).is_chief:
        return out
    tmp = Path(tempfile.mkdtemp(prefix="resilinet-worker-"))
    if (out / "runs").is_dir():
        shutil.copytree(out / "runs", tmp / "runs")
    return tmp


def _experiment(name: str) -> Any:
    """The function of an experiment besides ``average``: f(topo, ds, base, runner=...)."""
    from host.ml.link_experiment import link_sweep
    return {"failout": failout_ablation, "weights": weight_ablation, "skips": skip_sensitivity,
            "links": link_sweep}[name]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.experiments", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=["average", "failout", "weights", "skips", "links"],
                    help="average: accuracy per reliability setting for each scheme; failout: failout-rate "
                         "ablation; weights: hyperconnection-weight ablation; skips: skip-hyperconnection sensitivity; "
                         "links: accuracy vs bytes per inference over link budgets (host/ml/link_experiment.py)")
    ap.add_argument("--preset", default="fashion", help="preset name or topology .toml (default: fashion)")
    ap.add_argument("--partition", default=None, help="partition setting of the preset (default: 1)")
    ap.add_argument("--scheme", default="resilinet", help="scheme for the ablations (default: resilinet)")
    ap.add_argument("--schemes", default="vanilla,dfg,resilinet,resilinet_plus",
                    help="schemes compared by 'average' (comma-separated)")
    ap.add_argument("--runs", type=int, default=None,
                    help="independent training runs per table cell (default: the preset's `runs` for 'average', "
                         "else 1)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs trained at the same time, each in its own process (default 1; results do not "
                         "depend on it)")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    ap.add_argument("--max-train", type=int, default=None, help="subsample the training set (quick runs)")
    ap.add_argument("--max-test", type=int, default=None, help="subsample the test set")
    ap.add_argument("--dataset", default=None,
                    help="use another dataset than the preset's (e.g. npz for your own arrays)")
    ap.add_argument("--dataset-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="dataset option, repeatable (e.g. path=my.npz, mode=windowed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--distribute", choices=DISTRIBUTE_CHOICES, default="none",
                    help="train each model on one device (none), the local GPUs (mirrored) or the workers of "
                         "TF_CONFIG (multiworker; only worker 0 writes the reports): docs/training.md")
    ap.add_argument("--weights", default=None, metavar="PATH",
                    help="start every training from these weights (.keras or .weights.h5 of the same network)")
    ap.add_argument("--no-cache", action="store_true", help="retrain even if a cached model exists")
    ap.add_argument("--out", default="build/experiments", help="output directory (default: build/experiments)")
    args = ap.parse_args(argv)
    for opt in ("runs", "jobs"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            print(f"error: --{opt} must be at least 1, got {getattr(args, opt)}", file=sys.stderr)
            return 2
    problem = training_options_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    data = DataSpec(preset=args.preset, partition=args.partition, dataset=args.dataset,
                    dataset_opts=tuple(args.dataset_opt), max_train=args.max_train, max_test=args.max_test,
                    seed=args.seed)
    try:
        topo, ds = load_problem(data)
    except (DatasetNotFoundError, DatasetOptionError, UnknownDatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    base = TrainConfig.from_topology(topo, scheme=args.scheme, epochs=args.epochs, seed=args.seed,
                                     distribute=args.distribute, init_weights=args.weights)
    out = output_dir(args)
    default_runs = int(topo.training.get("runs", 1)) if args.experiment == "average" else 1
    runner = Runner(data, out, runs=args.runs or default_runs, jobs=args.jobs, use_cache=not args.no_cache)
    try:
        if args.experiment == "average":
            data_out = average_accuracy(topo, ds, base, runner=runner,
                                        schemes=[get_scheme(s).name for s in args.schemes.split(",")])
        else:
            data_out = _experiment(args.experiment)(topo, ds, base, runner=runner)
    except WeightsError as e:  # found when the first model is built (a worker's error comes back pickled)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}/{data_out['experiment']}_{topo.name}.md/.json/.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
