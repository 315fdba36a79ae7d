"""``python -m host.build``: train a resilient split network and write its artefacts + manifest.

Stage 3, firmware: number nodes and links, write each node's node_config.h and cross-compile its image
for its board (fails naming the node, the board and the numbers when it does not fit).

Stage 1, train: train — or reuse the model cached under a hash of its configuration —, evaluate every
failure configuration. Stage 2, nodes: split the network into one sub-model per physical node, quantize
each to int8 (one scale per link, shared by both ends), generate its C module, and evaluate the int8 split
network with the tflite_micro reference under every failure configuration. Written into the build dir:

    model.keras               the whole split network (inputs x, alive; outputs probs, present)
    evaluation.md/.json/.png  float accuracy per failure configuration and per reliability setting
    nodes/<node>/             <node>.tflite (int8), node_<node>.c/.h (CMSIS-NN calls)
    nodes.md/.json/.png       per node: MACs, weights, arena; per link: bytes, int8 parameters;
                              float vs int8 accuracy per failure configuration
    manifest.json             what the next stage reads (preset, scheme, boards, nodes, links, files, numbers)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from boards import board_names, load_board
from boards import Board
from host.ml.datasets import DatasetNotFoundError
from host.ml.evaluate import FailureEvaluation, evaluate_failures
from host.ml.experiments import load_for, override_dataset
from host.deploy.firmware import FirmwareFitError
from host.deploy.firmware_stage import build_firmware
from host.deploy.pio_project import write_platformio_ini
from host.deploy.int8_nodes import build_int8_nodes, int8_accuracy
from host.ml.schemes import SCHEMES, get_scheme
from host.report_files import grouped_bars, md_table, pct, write_report
from host.ml.topology import load_topology, preset_names
from host.ml.train import TrainConfig, train

MANIFEST_VERSION = 1


def evaluation_report(out: Path, topo_name: str, ev: FailureEvaluation, n_test: int) -> dict[str, Path]:
    title = get_scheme(ev.scheme).title
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


def fit_estimates(nodes: dict[str, Any], board: Board) -> dict[str, Any]:
    """Model bytes against the board before any firmware is linked (the firmware build checks exactly)."""
    est = {}
    for name, n in nodes.items():
        flash = n["weight_bytes"] + n["quant_param_bytes"]
        ram = n["arena_bytes"] + sum(i["bytes"] for i in n["inputs"]) + sum(o["bytes"] for o in n["outputs"])
        est[name] = {"model_flash_bytes": flash, "model_ram_bytes": ram, "board": board.name,
                     "board_flash_bytes": board.flash_bytes, "board_ram_bytes": board.ram_bytes,
                     "fits": flash <= board.flash_bytes and ram <= board.ram_bytes}
    return est


def nodes_report(out: Path, topo_name: str, title: str, section: dict[str, Any], ev: FailureEvaluation,
                 acc_f: list[float | None], acc8: list[float | None], n: int, fit: dict[str, Any]) -> None:
    nodes, links = section["nodes"], section["links"]
    node_rows = [[name, d["role"], d["aggregation"], f"{d['macs']:,}", f"{d['weight_bytes']:,}",
                  f"{d['arena_bytes']:,}", f"{fit[name]['model_ram_bytes']:,} / {fit[name]['board_ram_bytes']:,}",
                  ", ".join(f"{i['name']} {tuple(i['shape'])}" for i in d["inputs"]),
                  ", ".join(f"{o['name']} {tuple(o['shape'])}" for o in d["outputs"])]
                 for name, d in nodes.items()]
    link_rows = [[l, "skip" if d["skip"] else "normal", str(tuple(d["shape"])), f"{d['bytes']:,}",
                  f"{d['scale']:.6g}", d["zero_point"]] for l, d in links.items()]
    acc_rows = [[ev.config_label(i), "".join(map(str, c)),
                 pct(acc_f[i]) if acc_f[i] is not None else "no path", pct(acc8[i]) if acc8[i] is not None else "no path"]
                for i, c in enumerate(ev.configs)]
    md = (f"# {topo_name} — {title}: per-node int8 models\n\n"
          + md_table(["node", "role", "aggregation", "MACs", "weights B", "arena B", "RAM est. / board B",
                      "inputs", "outputs"], node_rows)
          + "\n\n## Links (one int8 scale/zero point, used by both ends)\n\n"
          + md_table(["link", "kind", "shape", "bytes", "scale", "zero point"], link_rows)
          + f"\n\n## Accuracy per failure configuration, float vs int8 (tflite_micro), {n} test samples\n\n"
          + md_table(["failed", "bits", "float (%)", "int8 (%)"], acc_rows) + "\n")
    data = {"nodes": nodes, "links": links, "float_accuracy": acc_f, "int8_accuracy": acc8, "samples": n,
            "configs": ev.configs, "fit": fit}

    def plot(ax):
        labels = [ev.config_label(i) for i in range(len(ev.configs))]
        grouped_bars(ax, labels, {"float": acc_f, "int8 (TFLM)": acc8}, title=f"{topo_name}: float vs int8 split")
    write_report(out, "nodes", md, data, plot)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m host.build", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog=f"presets: {', '.join(preset_names())}\nschemes: {', '.join(SCHEMES)}\n"
               f"boards: {', '.join(board_names())} (nucleo = nucleo_f446re, qemu = qemu_f405)")
    ap.add_argument("--preset", default="fashion", help="preset name or topology .toml file (default: fashion)")
    ap.add_argument("--partition", default=None, help="partition setting of the preset (default: 1)")
    ap.add_argument("--scheme", default=None,
                    help="vanilla, dfg, resilinet or resilinet_plus (default: resilinet); distillation presets "
                         "(nonn, nonn_s8) have their own scheme, distill")
    ap.add_argument("--board", default="qemu", help="board for every node (default: qemu = emulated Nucleo-F4)")
    ap.add_argument("--out", default=None, help="build directory (default: build/<preset>-<scheme>)")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    ap.add_argument("--max-train", type=int, default=None, help="subsample the training set (quick builds)")
    ap.add_argument("--max-test", type=int, default=None, help="subsample the test set")
    ap.add_argument("--dataset", default=None, help="use another dataset than the preset's (e.g. npz)")
    ap.add_argument("--dataset-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="dataset option, repeatable (e.g. path=my.npz)")
    ap.add_argument("--seed", type=int, default=0, help="seed of data order, initialisation and failout draws")
    ap.add_argument("--no-cache", action="store_true", help="retrain even when a cached model exists")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--stop-after", choices=["train", "nodes", "firmware"], default="firmware",
                    help="last stage to run (default: firmware)")
    ap.add_argument("--deadline-ms", type=int, default=1000,
                    help="how long a node waits for a sample's missing inputs before computing without them")
    ap.add_argument("--int8-samples", type=int, default=None,
                    help="test samples for the int8 reference evaluation (default: the whole test set)")
    args = ap.parse_args(argv)

    try:
        topo = load_topology(args.preset, partition=args.partition)
        scheme = get_scheme(args.scheme or ("distill" if topo.distillation else "resilinet"))
        board = load_board(args.board)
    except (ValueError, KeyError) as e:
        ap.error(str(e))
    if bool(topo.distillation) != (scheme.name == "distill"):
        ap.error(f"preset {topo.name} is a distillation preset: its scheme is distill" if topo.distillation else
                 f"scheme distill needs a distillation preset (nonn, nonn_s8), not {topo.name}")
    override_dataset(topo, args.dataset, args.dataset_opt)
    out = Path(args.out or f"build/{topo.name}-{scheme.name}")
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    try:
        ds = load_for(topo, max_train=args.max_train, max_test=args.max_test, seed=args.seed)
    except DatasetNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t_data = time.time() - t0
    t0 = time.time()
    if topo.distillation:
        from host.ml.nonn.deploy import train_distilled
        distilled = train_distilled(topo, ds, seed=args.seed, epochs=args.epochs, progress=not args.quiet,
                                    use_cache=not args.no_cache)
        topo, model = distilled.topology, distilled.model
        train_section: dict[str, Any] = {"model": "model.keras", "distillation": distilled.info,
                                         "cached": distilled.info["students"]["cached"]}
        cached = distilled.info["students"]["cached"] and distilled.info["teacher"]["cached"]
    else:
        cfg = TrainConfig.from_topology(topo, scheme=scheme.name, epochs=args.epochs, seed=args.seed)
        trained = train(topo, ds, cfg, progress=not args.quiet, use_cache=not args.no_cache)
        model, cached = trained.model, trained.cached
        train_section = {"model": "model.keras", "cache_key": trained.key, "cached": trained.cached,
                         "config": asdict(cfg), "best_epoch": trained.best_epoch,
                         "train_seconds": round(trained.seconds, 1), "history": trained.history}
    t_train = time.time() - t0
    model.save(out / "model.keras")
    t0 = time.time()
    # Only sensors can fail in a distillation preset: evaluate node by node, each student computed once.
    ev = evaluate_failures(model, topo, scheme.name, ds, by_nodes=bool(topo.distillation))
    t_eval = time.time() - t0
    files = evaluation_report(out, topo.name, ev, len(ds.y_test))

    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "preset": topo.name, "partition": topo.partition, "scheme": scheme.name, "board": board.name,
        "seed": args.seed,
        "dataset": {"name": ds.name, "train": len(ds.y_train), "val": len(ds.y_val), "test": len(ds.y_test),
                    "num_classes": ds.num_classes, "input_shape": list(ds.x_train.shape[1:])},
        "topology": topo.to_dict(),
        "nodes": {n.name: {"role": n.role, "failable": n.failable, "board": board.name} for n in topo.nodes},
        "stages": {
            "train": train_section,
            "evaluate": {"report": files["md"].name, "json": files["json"].name, "plot": files["png"].name,
                         "no_failure_accuracy": ev.measured[-1], "average_accuracy": ev.average},
        },
        "timings_s": {"data": round(t_data, 2), "train": round(t_train, 2), "evaluate": round(t_eval, 2)},
    }
    if args.stop_after != "train":
        t0 = time.time()
        print("stage 2: per-node int8 models and C modules")
        section = build_int8_nodes(model, topo, scheme.name, ds, out, seed=args.seed)
        n = len(ds.y_test) if args.int8_samples is None else min(args.int8_samples, len(ds.y_test))
        acc8 = int8_accuracy(section["plans"], section["quant"], topo, ds.x_test[:n], ds.y_test[:n])
        # float on exactly the samples the int8 evaluation (and the harness) uses: the first n
        acc_f = ev.measured if n == len(ds.y_test) else \
            evaluate_failures(model, topo, scheme.name, replace(ds, x_test=ds.x_test[:n], y_test=ds.y_test[:n]),
                              by_nodes=bool(topo.distillation)).measured
        for name, node in section["nodes"].items():
            node["board"] = board.name
        fit = fit_estimates(section["nodes"], board)
        manifest["nodes"] = section["nodes"]
        manifest["links"] = section["links"]
        manifest["stages"]["nodes"] = {"report": "nodes.md", "timings_s": section["timings_s"],
                                       "int8_eval_samples": n, "int8_accuracy": acc8, "float_accuracy": acc_f,
                                       "fit": fit, "seconds": round(time.time() - t0, 1)}
        nodes_report(out, topo.name, scheme.title, section, ev, acc_f, acc8, n, fit)
    if args.stop_after == "firmware":
        t0 = time.time()
        print("stage 3: firmware per node")
        try:
            fw = build_firmware(manifest, out, deadline_ms=args.deadline_ms)
        except FirmwareFitError as e:
            (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
            print(f"error: {e}", file=sys.stderr)
            return 3
        for name, img in fw["images"].items():
            manifest["nodes"][name]["node_id"] = img["node_id"]
            manifest["nodes"][name]["firmware"] = img
        for link, lid in fw["link_ids"].items():
            if link in manifest["links"]:
                manifest["links"][link]["id"] = lid
        manifest["sensor_links"] = {l.split("->")[1]: lid for l, lid in fw["link_ids"].items()
                                    if l.startswith("host->")}
        manifest["stages"]["firmware"] = {"deadline_ms": fw["deadline_ms"], "seconds": round(time.time() - t0, 1)}
        ini = write_platformio_ini(manifest, out)
        print(f"  pio  {ini}: envs {', '.join(manifest['platformio']['envs'])} (pio run [-e ENV] [-t upload])")
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
    if "nodes" in manifest["stages"]:
        st = manifest["stages"]["nodes"]
        for name, f in st["fit"].items():
            if not f["fits"]:
                print(f"warning: node {name} needs ~{f['model_flash_bytes']:,} B flash / {f['model_ram_bytes']:,} B RAM "
                      f"for its model alone; board {f['board']} has {f['board_flash_bytes']:,} / "
                      f"{f['board_ram_bytes']:,} B")
        print("int8 split (tflite_micro) accuracy per configuration: "
              + ", ".join(f"{ev.config_label(i)} {100 * a:.2f}" for i, a in enumerate(st["int8_accuracy"]) if a is not None))
    print(f"wrote {out}/manifest.json, model.keras, evaluation.md/.json/.png"
          f"{', nodes/, nodes.md' if 'nodes' in manifest['stages'] else ''}"
          f"{', firmware images' if 'firmware' in manifest['stages'] else ''}"
          f"{' (model from cache)' if cached else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
