"""The paper's experiments as commands; each writes Markdown + JSON + a PNG plot.

    python -m host.experiments average   --preset fashion --runs 3
    python -m host.experiments failout   --preset fashion
    python -m host.experiments weights   --preset fashion
    python -m host.experiments skips     --preset fashion

``--epochs`` and ``--max-train`` shrink the work for a quick look; the defaults are the preset's.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from host.ml.datasets import Dataset, DatasetNotFoundError, load_dataset
from host.ml.evaluate import FailureEvaluation, evaluate_failures, summarize
from host.ml.schemes import SCHEMES, get_scheme
from host.report_files import grouped_bars, md_table, pct, write_report
from host.ml.topology import Topology, load_topology
from host.ml.train import TrainConfig, train

FAILOUT_SURVIVALS = (0.95, 0.9, 0.7, 0.5)


def load_for(topo: Topology, *, max_train: int | None = None, max_test: int | None = None,
             seed: int = 0) -> Dataset:
    """The topology's dataset, optionally subsampled (deterministically) for quick runs."""
    opts = dict(topo.dataset)
    name = opts.pop("name")
    ds = load_dataset(name, seed=seed, **opts)
    if max_train or max_test:
        ds = ds.subset(max_train=max_train, max_val=max_train and max(200, max_train // 10),
                       max_test=max_test, seed=seed)
    return ds


def override_dataset(topo: Topology, name: str | None, options: list[str]) -> None:
    """Point a topology at another dataset (``--dataset``/``--dataset-opt`` of the CLIs)."""
    if name:
        topo.dataset = {"name": name}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep:
            raise SystemExit(f"--dataset-opt expects KEY=VALUE, got {opt!r}")
        topo.dataset[key] = value


def train_and_evaluate(topo: Topology, ds: Dataset, cfg: TrainConfig, *, progress: bool = True,
                       use_cache: bool = True) -> FailureEvaluation:
    trained = train(topo, ds, cfg, progress=progress, use_cache=use_cache)
    return evaluate_failures(trained.model, topo, cfg.scheme, ds, skips=cfg.skips)


def _settings(topo: Topology) -> list[str]:
    return list(topo.reliability)


# --------------------------------------------------------------------------- average accuracy
def average_accuracy(topo: Topology, ds: Dataset, base: TrainConfig, *, schemes: list[str], runs: int,
                     out: Path, progress: bool = True, use_cache: bool = True) -> dict[str, Any]:
    """The paper's main table: average accuracy per reliability setting, mean ± std over runs."""
    results: dict[str, list[FailureEvaluation]] = {}
    for s in schemes:
        results[s] = [train_and_evaluate(topo, ds, replace(base, scheme=s, seed=base.seed + r),
                                         progress=progress, use_cache=use_cache) for r in range(runs)]
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
    md = (f"# Average accuracy — {topo.name} ({ds.name})\n\n"
          f"{runs} training run(s) per scheme, {base.epochs} epochs; test set of {len(ds.y_test)} samples. "
          f"Random-guess accuracy g = {pct(first.random_guess)} %. Accuracy in %, mean ± std (ddof 1).\n\n"
          + md_table(["Scheme"] + settings, rows)
          + f"\n\n## Accuracy per failure configuration (order {first.failure_order}, 1 = alive)\n\n"
          + md_table(["Configuration", "bits"] + [SCHEMES[s].title for s in schemes]
                     + ["P: " + " / ".join(settings[1:])], cfg_rows) + "\n")
    data = {"experiment": "average_accuracy", "preset": topo.name, "dataset": ds.name, "runs": runs,
            "train": asdict(base), "settings": settings,
            "schemes": {s: {"mean": summaries[s].mean, "std": summaries[s].std,
                            "runs": [e.to_dict() for e in results[s]]} for s in schemes},
            "path_probability": {st: ppath(st) for st in settings},
            "path_probability_no_skips": {st: ppath(st, skips=False) for st in settings}}

    def plot(ax):
        grouped_bars(ax, settings, {SCHEMES[s].title: [summaries[s].mean[st] for st in settings] for s in schemes},
                     errors={SCHEMES[s].title: [summaries[s].std[st] for st in settings] for s in schemes},
                     caps=[cap_any[st] for st in settings], title=f"{topo.name}: average accuracy")
    write_report(out, f"average_accuracy_{topo.name}", md, data, plot)
    return data


# --------------------------------------------------------------------------- failout ablation
def failout_ablation(topo: Topology, ds: Dataset, base: TrainConfig, *, out: Path,
                     survivals=FAILOUT_SURVIVALS, progress: bool = True, use_cache: bool = True) -> dict[str, Any]:
    settings = _settings(topo)
    table: dict[str, dict[str, float | None]] = {}
    for p in survivals:
        ev = train_and_evaluate(topo, ds, replace(base, failout_survival=p), progress=progress, use_cache=use_cache)
        table[f"fixed {p:g}"] = dict(ev.average)
    variable: dict[str, float | None] = {}
    for st in settings:
        if all(r == 1.0 for r in topo.reliabilities(st)):
            variable[st] = None  # survival 1 everywhere is no failout at all (the paper records 0)
            continue
        ev = train_and_evaluate(topo, ds, replace(base, failout_survival="variable", reliability_setting=st),
                                progress=progress, use_cache=use_cache)
        variable[st] = ev.average[st]
    table["variable"] = variable
    rows = [[name] + [pct(v.get(st)) for st in settings] for name, v in table.items()]
    md = (f"# Failout-rate ablation — {topo.name}, {get_scheme(base.scheme).title}\n\n"
          f"Survival p per failable node (failout rate 1 − p); \"variable\" trains one model per setting with "
          f"p_i = that node's reliability and evaluates it in that setting only.\n\n"
          + md_table(["Failout survival"] + settings, rows) + "\n")
    data = {"experiment": "failout_ablation", "preset": topo.name, "scheme": base.scheme, "settings": settings,
            "train": asdict(base), "table": table}

    def plot(ax):
        grouped_bars(ax, settings, {k: [v.get(st) for st in settings] for k, v in table.items()},
                     title=f"{topo.name}: failout survival")
    write_report(out, f"failout_ablation_{topo.name}", md, data, plot)
    return data


# --------------------------------------------------------------------------- weight ablation
def weight_ablation(topo: Topology, ds: Dataset, base: TrainConfig, *, out: Path, progress: bool = True,
                    use_cache: bool = True) -> dict[str, Any]:
    settings = _settings(topo)
    names = {1: "1: weight 1", 2: "2: normalised reliability", 3: "3: reliability", 4: "4: uniform random"}
    table: dict[str, dict[str, float]] = {}
    for scheme in (1, 2, 3, 4):
        if scheme in (1, 4):
            ev = train_and_evaluate(topo, ds, replace(base, weight_scheme=scheme), progress=progress,
                                    use_cache=use_cache)
            table[names[scheme]] = dict(ev.average)
        else:
            table[names[scheme]] = {}
            for st in settings:
                ev = train_and_evaluate(topo, ds, replace(base, weight_scheme=scheme, reliability_setting=st),
                                        progress=progress, use_cache=use_cache)
                table[names[scheme]][st] = ev.average[st]
    rows = [[k] + [pct(v[st]) for st in settings] for k, v in table.items()]
    md = (f"# Hyperconnection-weight ablation — {topo.name}, {get_scheme(base.scheme).title}\n\n"
          "Schemes 2 and 3 depend on the reliabilities: one model per setting, evaluated in that setting. "
          "Schemes 1 and 4 are trained once.\n\n" + md_table(["Weight scheme"] + settings, rows) + "\n")
    data = {"experiment": "weight_ablation", "preset": topo.name, "scheme": base.scheme, "settings": settings,
            "train": asdict(base), "table": table}

    def plot(ax):
        grouped_bars(ax, settings, {k: [v[st] for st in settings] for k, v in table.items()},
                     title=f"{topo.name}: hyperconnection weights")
    write_report(out, f"weight_ablation_{topo.name}", md, data, plot)
    return data


# --------------------------------------------------------------------------- skip sensitivity
def skip_subsets(topo: Topology) -> list[list[str]]:
    """Every subset of the skip hyperconnections, by size (none first, all last)."""
    names = [l.name for l in topo.skip_links]
    return [list(c) for k in range(len(names) + 1) for c in itertools.combinations(names, k)]


def skip_sensitivity(topo: Topology, ds: Dataset, base: TrainConfig, *, out: Path, progress: bool = True,
                     use_cache: bool = True) -> dict[str, Any]:
    settings = _settings(topo)
    table: dict[str, dict[str, Any]] = {}
    for subset in skip_subsets(topo):
        ev = train_and_evaluate(topo, ds, replace(base, skips=subset), progress=progress, use_cache=use_cache)
        label = ", ".join(subset) if subset else "no skips"
        table[label] = {"average": dict(ev.average), "path_probability": dict(ev.path_probability)}
    rows = [[k] + [f"{pct(v['average'][st])} (cap P={v['path_probability'][st]:.4f})" for st in settings]
            for k, v in table.items()]
    md = (f"# Skip-hyperconnection sensitivity — {topo.name}, {get_scheme(base.scheme).title}\n\n"
          "One model per subset of skip hyperconnections; in brackets the probability that a path survives.\n\n"
          + md_table(["Skips kept"] + settings, rows) + "\n")
    data = {"experiment": "skip_sensitivity", "preset": topo.name, "scheme": base.scheme, "settings": settings,
            "train": asdict(base), "table": table}

    def plot(ax):
        grouped_bars(ax, list(table), {st: [v["average"][st] for v in table.values()] for st in settings},
                     title=f"{topo.name}: skip hyperconnections kept")
    write_report(out, f"skip_sensitivity_{topo.name}", md, data, plot)
    return data


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.experiments", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=["average", "failout", "weights", "skips"],
                    help="average: accuracy per reliability setting for each scheme; failout: failout-rate "
                         "ablation; weights: hyperconnection-weight ablation; skips: skip-hyperconnection sensitivity")
    ap.add_argument("--preset", default="fashion", help="preset name or topology .toml (default: fashion)")
    ap.add_argument("--partition", default=None, help="partition setting of the preset (default: 1)")
    ap.add_argument("--scheme", default="resilinet", help="scheme for the ablations (default: resilinet)")
    ap.add_argument("--schemes", default="vanilla,dfg,resilinet,resilinet_plus",
                    help="schemes compared by 'average' (comma-separated)")
    ap.add_argument("--runs", type=int, default=None, help="training runs per scheme (default: preset's, else 1)")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    ap.add_argument("--max-train", type=int, default=None, help="subsample the training set (quick runs)")
    ap.add_argument("--max-test", type=int, default=None, help="subsample the test set")
    ap.add_argument("--dataset", default=None,
                    help="use another dataset than the preset's (e.g. npz for your own arrays)")
    ap.add_argument("--dataset-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="dataset option, repeatable (e.g. path=my.npz, mode=windowed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cache", action="store_true", help="retrain even if a cached model exists")
    ap.add_argument("--out", default="build/experiments", help="output directory (default: build/experiments)")
    args = ap.parse_args(argv)

    topo = load_topology(args.preset, partition=args.partition)
    override_dataset(topo, args.dataset, args.dataset_opt)
    try:
        ds = load_for(topo, max_train=args.max_train, max_test=args.max_test, seed=args.seed)
    except DatasetNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    base = TrainConfig.from_topology(topo, scheme=args.scheme, epochs=args.epochs, seed=args.seed)
    out = Path(args.out)
    common = dict(out=out, use_cache=not args.no_cache)
    if args.experiment == "average":
        runs = args.runs or int(topo.training.get("runs", 1))
        data = average_accuracy(topo, ds, base, schemes=[get_scheme(s).name for s in args.schemes.split(",")],
                                runs=runs, **common)
    elif args.experiment == "failout":
        data = failout_ablation(topo, ds, base, **common)
    elif args.experiment == "weights":
        data = weight_ablation(topo, ds, base, **common)
    else:
        data = skip_sensitivity(topo, ds, base, **common)
    print(f"wrote {out}/{data['experiment']}_{topo.name}.md/.json/.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
