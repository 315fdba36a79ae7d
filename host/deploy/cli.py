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
    summary.md                what was built, the node id table (name, node<id>, id, board, role), accuracy
    platformio.ini, pio/      one PlatformIO environment per node (build/current names the latest build
                              inside the repository: pio run there builds it)

The build is written beside --out and renamed into place when complete. Bad input (an unknown preset,
scheme, board or dataset, a topology whose network cannot be built, a corrupt model, an image that does
not fit its board) is one line "error: ..." and exit status 2, and leaves no build directory behind.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import NoReturn

from typing import TYPE_CHECKING, NoReturn

# Only what checks the command line is imported here: TensorFlow (pipeline, schemes) is imported once the
# names, the dataset and --out are known to be good, so those errors come before its start-up messages.
from boards import BoardError, board_names, load_board
from codegen.errors import CodegenError
from host.deploy.checks import BuildInputError, check_names
from host.deploy.firmware import FirmwareBuildError, FirmwareFitError
from host.deploy.manifest import ManifestError
from host.deploy.pio_core import PlatformIOError
from host.deploy.staging import StagingError, check_out_dir
from host.ml.datasets import DatasetNotFoundError, DatasetOptionError, UnknownDatasetError
from host.ml.distribute import DISTRIBUTE_CHOICES, DistributeError, strategy_for, worker_role
from host.ml.train import WeightsError
from host.ml.topology import TopologyError, load_topology, preset_names

if TYPE_CHECKING:
    from host.deploy.pipeline import BuildRequest, BuildResult

#: What host.build reports as one line "error: ..." with exit status 2 (bad input, or what it leads to).
USER_ERRORS = (BuildInputError, TopologyError, BoardError, UnknownDatasetError, DatasetNotFoundError, CodegenError,
               DistributeError, WeightsError, DatasetOptionError,
               FirmwareBuildError, ManifestError, PlatformIOError, StagingError)


#: A path inside a staging directory of host.deploy.staging: <parent>/.<name>.tmp-<pid>-<hex>/...
STAGING_NAME = re.compile(r"/\.([^/\s]+)\.tmp-\d+-[0-9a-f]+(?=/|\s|$)")


class UsageError(Exception):
    """A command line argparse refuses (unknown option, missing value)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage + message; we want one line
        raise UsageError(f"{message} (python -m host.build --help lists the options)")

    def format_help(self) -> str:  # the schemes' names need host.ml.schemes (TensorFlow): only for --help
        from host.ml.schemes import SCHEMES

        self.epilog = (f"presets: {', '.join(preset_names())}\nschemes: {', '.join(SCHEMES)}\n"
                       f"boards: {', '.join(board_names())} (nucleo = nucleo_f446re, qemu = qemu_f405)")
        return super().format_help()


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m host.build", formatter_class=argparse.RawDescriptionHelpFormatter,
                 description=__doc__)
    ap.add_argument("--preset", default="fashion", help="preset name or topology .toml file (default: fashion)")
    ap.add_argument("--model", default=None,
                    help="your own Keras model (.keras) to split: --preset names a topology file whose nodes list "
                         "its layers (keras_layers); overrides the file's [model] path")
    ap.add_argument("--partition", default=None, help="partition setting of the preset (default: 1)")
    ap.add_argument("--width", type=float, default=1.0, metavar="F",
                    help="scale every layer's filters and units by F (quick builds: 0.125 makes the CIFAR networks "
                         "train in seconds; strides, kernels and partitions stay as written; default 1)")
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
    ap.add_argument("--distribute", choices=DISTRIBUTE_CHOICES, default="none",
                    help="train on one device (none, default), on the local GPUs (mirrored) or on the workers of "
                         "TF_CONFIG (multiworker; python -m host.ml.launch_workers starts local ones): docs/training.md")
    ap.add_argument("--weights", type=Path, default=None, metavar="PATH",
                    help="start training from these weights (.keras model or .weights.h5 of the same network)")
    ap.add_argument("--no-cache", action="store_true", help="retrain even when a cached model exists")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--stop-after", choices=["train", "nodes", "firmware"], default="firmware",
                    help="last stage to run (default: firmware)")
    ap.add_argument("--deadline-ms", type=int, default=1000,
                    help="how long a node waits for a sample's missing inputs before computing without them (default "
                         "1000); a node d >= 2 links below the sensors waits (d+1)/2 x this, since an upstream node "
                         "may itself wait its whole deadline before it sends")
    ap.add_argument("--int8-samples", type=int, default=None,
                    help="test samples for the int8 reference evaluation (default: the whole test set)")
    return ap


def request(args: argparse.Namespace) -> BuildRequest:
    """The build the arguments ask for; raises one of :data:`USER_ERRORS` for an unknown preset, board,
    dataset or scheme, or a bad --out, before anything is loaded or written."""
    topo = load_topology(args.preset, partition=args.partition, model=args.model, width=args.width)
    board = load_board(args.board)
    check_names(topo, args.dataset_opt, dataset=args.dataset)
    scheme_name = args.scheme or ("distill" if topo.distillation else "resilinet")
    out = Path(args.out or f"build/{topo.name}-{scheme_name}")
    check_out_dir(out)
    worker_role(args.distribute)  # a bad TF_CONFIG is reported before TensorFlow loads
    if topo.distillation and (args.distribute != "none" or args.weights):
        raise BuildInputError(f"preset {topo.name} is a distillation preset: --distribute and --weights apply to "
                              "the other presets")
    if args.weights is not None and not args.weights.is_file():
        raise BuildInputError(f"--weights {args.weights}: no such file (a .keras model or .weights.h5 file)")
    from host.deploy.pipeline import BuildRequest
    from host.ml.problem import override_dataset
    from host.ml.schemes import get_scheme

    try:
        scheme = get_scheme(scheme_name)
    except ValueError as err:
        raise BuildInputError(f"--scheme: {err}") from None
    if bool(topo.distillation) != (scheme.name == "distill"):
        raise BuildInputError(f"preset {topo.name} is a distillation preset: its scheme is distill"
                              if topo.distillation else
                              f"scheme distill needs a distillation preset (nonn, nonn_s8), not {topo.name}")
    override_dataset(topo, args.dataset, args.dataset_opt)
    return BuildRequest(
        topology=topo, scheme=scheme, board=board, out=out,
        seed=args.seed, epochs=args.epochs, max_train=args.max_train, max_test=args.max_test,
        use_cache=not args.no_cache, progress=not args.quiet, stop_after=args.stop_after,
        deadline_ms=args.deadline_ms, int8_samples=args.int8_samples,
        distribute=args.distribute, weights=args.weights)


def train_as_worker(req: BuildRequest) -> int:
    """A non-chief worker of a multi-worker build: trains in step with the chief, writes nothing of the build
    (the chief does; the worker's own model.keras goes to a temporary directory that is removed)."""
    import tempfile
    from dataclasses import replace

    from host.deploy.pipeline import load_data, train_stage

    role = worker_role(req.distribute)
    with tempfile.TemporaryDirectory(prefix="resilinet-worker-") as tmp:
        train_stage(replace(req, out=Path(tmp)), load_data(req).dataset)
    print(f"worker {role.index}/{role.num_workers}: trained with the chief; the chief (worker 0) writes {req.out}")
    return 0


def print_summary(req: BuildRequest, res: BuildResult) -> None:
    """Accuracy per failure configuration, fit warnings, the node id table, and what was written."""
    from rich.console import Console
    from rich.table import Table

    from host.deploy.build_reports import NODE_TABLE_HEADER, node_table

    ev, m = res.evaluation, res.manifest
    table = Table(title=f"{m.preset} / {req.scheme.title}: accuracy under failures (test {res.n_test})")
    table.add_column("failure configuration")
    table.add_column("accuracy %", justify="right")
    for i in range(len(ev.configs)):
        a = ev.measured[i]
        table.add_row(ev.config_label(i), f"{100 * a:.2f}" if a is not None else f"{100 * ev.random_guess:.2f} (no path)")
    for st, v in ev.average.items():
        table.add_row(f"[bold]average, {st}", f"[bold]{100 * v:.2f}")
    console = Console()
    console.print(table)
    st = m.stages.nodes
    if st is not None:
        for name, f in st.fit.items():
            if not f.fits:
                print(f"warning: node {name} needs ~{f.model_flash_bytes:,} B flash / {f.model_ram_bytes:,} B RAM "
                      f"for its model alone; board {f.board} has {f.board_flash_bytes:,} / {f.board_ram_bytes:,} B")
        print("int8 split (tflite_micro) accuracy per configuration: "
              + ", ".join(f"{ev.config_label(i)} {100 * a:.2f}" for i, a in enumerate(st.int8_accuracy) if a is not None))
    nodes = Table(title="nodes (python -m host.harness --drop accepts the name, node<id> or the id)")
    for col in NODE_TABLE_HEADER:
        nodes.add_column(col, justify="right" if col == "id" else "left")
    for row in node_table(m):
        nodes.add_row(*row)
    console.print(nodes)
    print(f"wrote {req.out}/manifest.json, summary.md, model.keras, evaluation.md/.json/.png"
          f"{', nodes/, nodes.md' if st is not None else ''}"
          f"{', firmware images, platformio.ini' if m.stages.firmware is not None else ''}"
          f"{' (model from cache)' if res.cached else ''}")
    if res.current is not None:
        print(f"pio run (in the repository) now builds {req.out}: {res.current} -> {res.current.resolve().name}")
    elif m.platformio is not None:
        print(f"pio run -d {req.out} builds it (outside the repository, the root platformio.ini does not)")


def error(message: object) -> int:
    """Print one line ``error: ...`` on stderr (a path in the build's staging directory named as it would
    have been in the build); returns the exit status 2."""
    text = STAGING_NAME.sub(r"/\1", " ".join(str(message).split()))
    print(f"error: {text}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    try:
        req = request(ap.parse_args(argv))
        strategy_for(req.distribute)  # multi-worker collectives must be set up before TensorFlow runs anything
        if not worker_role(req.distribute).is_chief:
            return train_as_worker(req)
        from host.deploy.pipeline import run_build

        res = run_build(req)
    except UsageError as e:
        return error(e)
    except FirmwareFitError as e:
        return error(f"{e}; --stop-after nodes writes the build up to the C modules")
    except USER_ERRORS as e:
        return error(e)
    print_summary(req, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
