"""``python -m host.build``: train a resilient split network and write its artefacts + manifest.

Stage 1, train: train — or reuse the model cached under a hash of its configuration —, evaluate every
failure configuration. Stage 2, nodes: split the network into one sub-model per physical node, quantize
each to int8 (one scale per link, shared by both ends), generate its C module, and evaluate the int8 split
network with the tflite_micro reference under every failure configuration. Stage 3, firmware: number
nodes and links, write each node's node_config.h and cross-compile its image for its board (fails naming
the node, the board and the numbers when it does not fit), then write platformio.ini. Written into the
build dir:

    model.keras               the whole split network (inputs x, alive; outputs probs, present)
    evaluation.md/.json/.png  float accuracy per failure configuration and per reliability setting
    nodes/<node>/             <node>.tflite (int8), node_<node>.c/.h (CMSIS-NN calls)
    nodes.md/.json/.png       per node: MACs, weights, arena; per link: bytes, int8 parameters;
                              float vs int8 accuracy per failure configuration
    manifest.json             what the next stage reads (preset, scheme, boards, nodes, links, files, numbers)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from boards import board_names, load_board
from host.deploy.firmware import FirmwareFitError
from host.deploy.pipeline import BuildRequest, BuildResult, run_build
from host.ml.datasets import DatasetNotFoundError
from host.ml.experiments import override_dataset
from host.ml.schemes import SCHEMES, get_scheme
from host.ml.topology import load_topology, preset_names


def parser() -> argparse.ArgumentParser:
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
    return ap


def request(ap: argparse.ArgumentParser, args: argparse.Namespace) -> BuildRequest:
    """The build the arguments ask for (argparse's error, exit 2, for an unknown preset, scheme or board)."""
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
    return BuildRequest(
        topology=topo, scheme=scheme, board=board, out=Path(args.out or f"build/{topo.name}-{scheme.name}"),
        seed=args.seed, epochs=args.epochs, max_train=args.max_train, max_test=args.max_test,
        use_cache=not args.no_cache, progress=not args.quiet, stop_after=args.stop_after,
        deadline_ms=args.deadline_ms, int8_samples=args.int8_samples)


def print_summary(req: BuildRequest, res: BuildResult) -> None:
    """Accuracy per failure configuration, fit warnings, and what was written."""
    from rich.console import Console
    from rich.table import Table

    ev, m = res.evaluation, res.manifest
    table = Table(title=f"{m.preset} / {req.scheme.title}: accuracy under failures (test {res.n_test})")
    table.add_column("failure configuration")
    table.add_column("accuracy %", justify="right")
    for i in range(len(ev.configs)):
        a = ev.measured[i]
        table.add_row(ev.config_label(i), f"{100 * a:.2f}" if a is not None else f"{100 * ev.random_guess:.2f} (no path)")
    for st, v in ev.average.items():
        table.add_row(f"[bold]average, {st}", f"[bold]{100 * v:.2f}")
    Console().print(table)
    st = m.stages.nodes
    if st is not None:
        for name, f in st.fit.items():
            if not f.fits:
                print(f"warning: node {name} needs ~{f.model_flash_bytes:,} B flash / {f.model_ram_bytes:,} B RAM "
                      f"for its model alone; board {f.board} has {f.board_flash_bytes:,} / {f.board_ram_bytes:,} B")
        print("int8 split (tflite_micro) accuracy per configuration: "
              + ", ".join(f"{ev.config_label(i)} {100 * a:.2f}" for i, a in enumerate(st.int8_accuracy) if a is not None))
    print(f"wrote {req.out}/manifest.json, model.keras, evaluation.md/.json/.png"
          f"{', nodes/, nodes.md' if st is not None else ''}"
          f"{', firmware images' if m.stages.firmware is not None else ''}"
          f"{' (model from cache)' if res.cached else ''}")


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    req = request(ap, ap.parse_args(argv))
    try:
        res = run_build(req)
    except DatasetNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FirmwareFitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print_summary(req, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
