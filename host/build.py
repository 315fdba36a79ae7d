"""``python -m host.build``: train a resilient split network and write its artefacts + manifest.

Stage 1 (this module today): train — or reuse the model cached under a hash of its configuration —,
evaluate every failure configuration, and write into the build directory:

    model.keras            the whole split network (inputs x, alive; outputs probs, present)
    evaluation.md/.json/.png  accuracy per failure configuration and per reliability setting
    manifest.json          what the next stage reads (preset, scheme, board, topology, files, numbers)

Later stages (per-node int8 models, C code, PlatformIO environments) add to the same manifest.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .boards import board_names, load_board
from .evaluate import FailureEvaluation, evaluate_failures
from .experiments import load_for
from .models import SCHEMES, get_scheme
from .report import grouped_bars, md_table, pct, write_report
from .topology import load_topology, preset_names
from .train import TrainConfig, train

MANIFEST_VERSION = 1


def evaluation_report(out: Path, topo_name: str, ev: FailureEvaluation, n_test: int) -> dict[str, Path]:
    title = SCHEMES[ev.scheme].title
    settings = list(ev.average)
    rows = [[ev.config_label(i), "".join(map(str, c)), "yes" if ev.has_path[i] else "no",
             pct(ev.measured[i]) if ev.measured[i] is not None else f"{pct(ev.random_guess)} (guess)"]
            for i, c in enumerate(ev.configs)]
    avg_rows = [[st, pct(ev.average[st]), f"{ev.path_probability[st]:.4f}", pct(ev.cap[st])] for st in settings]
    md = (f"# {topo_name} — {title}: accuracy under failures\n\n"
          f"Test set: {n_test} samples. Failure order {ev.failure_order} (1 = alive). Without a path from a "
          f"sensor to the cloud the accuracy is the random guess g = {pct(ev.random_guess)} %.\n\n"
          + md_table(["Failed", "bits", "path", "accuracy (%)"], rows)
          + "\n\n## Average accuracy per reliability setting\n\n"
          + md_table(["Setting", "average accuracy (%)", "P(path)", "cap (%)"], avg_rows) + "\n")

    def plot(ax):
        labels = [ev.config_label(i) for i in range(len(ev.configs))]
        grouped_bars(ax, labels, {title: ev.accuracy}, title=f"{topo_name}: accuracy per failure configuration")
        ax.axhline(100 * ev.random_guess, color="grey", linestyle=":", linewidth=1)
    return write_report(out, "evaluation", md, ev.to_dict(), plot)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m host.build", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog=f"presets: {', '.join(preset_names())}\nschemes: {', '.join(SCHEMES)}\n"
               f"boards: {', '.join(board_names())} (nucleo = nucleo_f446re, qemu = qemu_f405)")
    ap.add_argument("--preset", default="fashion", help="preset name or topology .toml file (default: fashion)")
    ap.add_argument("--partition", default=None, help="partition setting of the preset (default: 1)")
    ap.add_argument("--scheme", default="resilinet", help="vanilla, dfg, resilinet or resilinet_plus (default: resilinet)")
    ap.add_argument("--board", default="qemu", help="board for every node (default: qemu = emulated Nucleo-F4)")
    ap.add_argument("--out", default=None, help="build directory (default: build/<preset>-<scheme>)")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    ap.add_argument("--max-train", type=int, default=None, help="subsample the training set (quick builds)")
    ap.add_argument("--max-test", type=int, default=None, help="subsample the test set")
    ap.add_argument("--seed", type=int, default=0, help="seed of data order, initialisation and failout draws")
    ap.add_argument("--no-cache", action="store_true", help="retrain even when a cached model exists")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)

    try:
        topo = load_topology(args.preset, partition=args.partition)
        scheme = get_scheme(args.scheme)
        board = load_board(args.board)
    except (ValueError, KeyError) as e:
        ap.error(str(e))
    out = Path(args.out or f"build/{topo.name}-{scheme.name}")
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    ds = load_for(topo, max_train=args.max_train, max_test=args.max_test, seed=args.seed)
    t_data = time.time() - t0
    cfg = TrainConfig.from_topology(topo, scheme=scheme.name, epochs=args.epochs, seed=args.seed)
    t0 = time.time()
    trained = train(topo, ds, cfg, progress=not args.quiet, use_cache=not args.no_cache)
    t_train = time.time() - t0
    trained.model.save(out / "model.keras")
    t0 = time.time()
    ev = evaluate_failures(trained.model, topo, scheme.name, ds)
    t_eval = time.time() - t0
    files = evaluation_report(out, topo.name, ev, len(ds.y_test))

    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "preset": topo.name, "partition": topo.partition, "scheme": scheme.name, "board": board.name,
        "dataset": {"name": ds.name, "train": len(ds.y_train), "val": len(ds.y_val), "test": len(ds.y_test),
                    "num_classes": ds.num_classes, "input_shape": list(ds.x_train.shape[1:])},
        "topology": topo.to_dict(),
        "nodes": {n.name: {"role": n.role, "failable": n.failable, "board": board.name} for n in topo.nodes},
        "stages": {
            "train": {"model": "model.keras", "cache_key": trained.key, "cached": trained.cached,
                      "config": asdict(cfg), "best_epoch": trained.best_epoch,
                      "train_seconds": round(trained.seconds, 1), "history": trained.history},
            "evaluate": {"report": files["md"].name, "json": files["json"].name, "plot": files["png"].name,
                         "no_failure_accuracy": ev.measured[-1], "average_accuracy": ev.average},
        },
        "timings_s": {"data": round(t_data, 2), "train": round(t_train, 2), "evaluate": round(t_eval, 2)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))

    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"{topo.name} / {scheme.title}: accuracy under failures (test {len(ds.y_test)})")
    table.add_column("failure configuration")
    table.add_column("accuracy %", justify="right")
    for i in range(len(ev.configs)):
        a = ev.measured[i]
        table.add_row(ev.config_label(i), f"{100 * a:.2f}" if a is not None else f"{100 * ev.random_guess:.2f} (no path)")
    for st, v in ev.average.items():
        table.add_row(f"[bold]average, {st}", f"[bold]{100 * v:.2f}")
    Console().print(table)
    print(f"wrote {out}/manifest.json, model.keras, evaluation.md/.json/.png"
          f"{' (model from cache)' if trained.cached else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
