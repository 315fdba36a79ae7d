"""``python -m host.harness``: stream the test set through the boards, with nodes and links cut.

The host is the network (:mod:`host.net.router`): it feeds the sensor nodes their int8 features, forwards every
DATA frame to the board at the other end of its link, and injects failures on the way — a failed node
(``--drop``), a cut link (``--drop-link``), random frame loss (``--loss``) and bit errors (``--corrupt``).
For every sample and node it recomputes the int8 reference on the host (:mod:`host.net.reference`:
``run_split`` + ``tflm_runner`` on the same per-node ``.tflite`` models, with exactly the links that reached
each board) and compares every DATA tensor and RESULT byte for byte.

::

    python -m host.harness                                   # newest build, emulated boards, 200 samples
    python -m host.harness --build build/fashion-resilinet --samples 500 --drop edge
    python -m host.harness --drop node2                      # a node: its name, node<id> or the id
    python -m host.harness --drop-link iot->fog --loss 0.05 --corrupt 0.02 --seed 3
    python -m host.harness --sweep --samples 100             # every failure configuration + averages
    python -m host.harness --port iot=/dev/ttyACM0 --port edge=socket://10.0.0.5:4000   # real/remote boards
    python -m host.harness --kill edge@40:80                 # crash edge's QEMU at sample 40, reboot at 80
    python -m host.harness --labgrid 127.0.0.1:20408 --kill edge@40:80   # a labgrid farm: power-cycle edge
    python -m host.harness --start-boards | --stop-boards    # keep emulated boards running between runs

Boards: a ``--port`` URL, else the emulated board ``pio run -t upload`` started (``<build>/pio/uploads.json``,
left running), else one started by ``--start-boards``, else one launched for the run (stopped at its end).
With ``--labgrid``, every node without ``--port`` is its labgrid place's board (``python -m host.net.farm``).
Every option is checked before a board is opened: a bad one is one ``error:`` line and exit status 2.

Writes ``<build>/harness/harness.md/.json/.png`` (``harness_sweep.*`` for ``--sweep``; ``--out`` moves them,
``--json PATH`` writes one more copy of the JSON). Ctrl-C stops sending, lets the samples in flight finish
and still writes the report (a second Ctrl-C gives them up).
"""
# The docstring above is the --help text. This module is the CLI: options -> RunPlan (host.net.plan), the
# runs on the boards (host.net.router), the per-sample checks (host.net.checks), the summaries
# (host.net.summary) and the reports (host.net.harness_report).
from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, NoReturn, Sequence

import numpy as np

from host.net.checks import check_sample
from host.net.cycle_counts import counter_name
from host.net.harness_report import print_console, progress_bar, write_reports
from host.net.labgrid_client import AcquiredPlaces
from host.net.launch import BoardError, start_boards, stop_boards
from host.net.plan import DEFAULT_SAMPLES, RunPlan, as_kill_spec, default_build, kill_spec, pick_samples, \
    port_spec
from host.net.records import KillSpec, RunConfig, RunRecord, SampleIn, SampleRecord, SettledSample
from host.net.reference import Deployment, DeploymentError, Reference, load_deployment
from host.net.router import Hook, Network, Settle
from host.net.summary import RunTally, summarize_run, sweep_averages
from host.net.transport import Boards


@dataclass
class HarnessResult:
    report: dict[str, Any]
    runs: list[RunRecord]
    paths: dict[str, Path]


class RunSamples(Sequence[SampleIn]):
    """A run's samples, each made when it is sent: the test samples it uses are quantized once, so a soak of
    any length holds one index per sample (a sample repeats the test set's, going round it)."""

    def __init__(self, dep: Deployment, samples: int | None, seed: int) -> None:
        x, y = dep.load_test_set()
        self.order = pick_samples(len(y), samples, seed)      # k -> test set index
        self.used = np.unique(self.order)                     # the test samples the run uses, sorted
        self.labels = y[self.used]
        self.sensors = dep.sensor_inputs(x[self.used])        # sensor node -> int8 features, one row per used

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int) -> SampleIn:   # type: ignore[override]  # one sample, no slices
        i = int(self.order[k])
        return SampleIn(i, int(self.labels[self._row(i)]), self.features(i))

    def features(self, index: int) -> dict[str, np.ndarray]:
        """The sensor nodes' int8 features of test sample ``index``."""
        row = self._row(index)
        return {s: v[row] for s, v in self.sensors.items()}

    def _row(self, index: int) -> int:
        return int(np.searchsorted(self.used, index))


def load_samples(dep: Deployment, samples: int | None, seed: int) -> RunSamples:
    """The seeded subset of the build's test set, as the sensor nodes' int8 features."""
    return RunSamples(dep, samples, seed)


def board_table(dep: Deployment, boards: Boards) -> dict[str, dict[str, Any]]:
    """The report's boards: where each one is, how it was found, and what its HELLO said."""
    table: dict[str, dict[str, Any]] = {
        n: {"node_id": d.id, "board": d.board, "url": boards.urls[n], "attached": boards.attached[n],
            "baud": boards.bauds[n], "model_hash": d.model_hash.hex()} for n, d in dep.nodes.items()}
    for n, h in boards.hello.items():
        table[n].update(fw=".".join(map(str, h.fw_version)), flash_bytes=h.flash_bytes,
                        arena_bytes=h.arena_bytes, cpu_hz=h.cpu_hz, cycle_counter=counter_name(h.cycle_counter))
    return table


def run_harness(build: str | Path, *, ports: dict[str, str] | None = None, dead: Iterable[str] = (),
                cut_links: Iterable[str] = (), loss: float = 0.0, corrupt: float = 0.0,
                deadline_ms: float | None = None, samples: int | None = DEFAULT_SAMPLES, seed: int = 0,
                sweep: bool = False, window: int = 3, baud: int | None = None, out: Path | None = None,
                json_path: Path | None = None, kills: Sequence[KillSpec | tuple[str, int, int | None]] = (),
                hooks: dict[int, list[Hook]] | None = None,
                stop: threading.Event | None = None, abandon: threading.Event | None = None,
                console: Any = None, progress: bool = True, write: bool = True,
                hello_timeout: float = 8.0, labgrid: str | None = None, places: dict[str, str] | None = None,
                place_prefix: str | None = None) -> HarnessResult:
    """Everything ``python -m host.harness`` does, as a function (the tests call it)."""
    plan = RunPlan(build=Path(build), ports=dict(ports or {}), dead=frozenset(dead), cut_links=frozenset(cut_links),
                   loss=loss, corrupt=corrupt, deadline_ms=deadline_ms, samples=samples, seed=seed, sweep=sweep,
                   window=window, baud=baud, out=out, json_path=json_path,
                   kills=tuple(as_kill_spec(k) for k in kills), hello_timeout=hello_timeout, labgrid=labgrid,
                   places=dict(places or {}), place_prefix=place_prefix)
    return run_plan(plan, hooks=hooks, stop=stop, abandon=abandon, console=console, progress=progress, write=write)


def run_plan(plan: RunPlan, *, hooks: dict[int, list[Hook]] | None = None, stop: threading.Event | None = None,
             abandon: threading.Event | None = None, console: Any = None, progress: bool = True,
             write: bool = True) -> HarnessResult:
    """Check ``plan``, open the boards, run its configurations, check every sample and write the reports.

    ``hooks[k]`` are called before sample k of the first run (after the plan's checks, so a hook never
    sees an invalid run); ``stop`` / ``abandon`` as in :meth:`host.net.router.Network.run`."""
    plan.check_options()
    dep = load_deployment(plan.build)
    plan = plan.check(dep)   # every node named as the deployment names it
    items = load_samples(dep, plan.samples, plan.seed)
    ref = Reference(dep)
    log = (lambda s: console.log(s)) if console is not None else None
    runs: list[RunRecord] = []
    summaries: list[dict[str, Any]] = []
    # --labgrid: the places are acquired before the boards are opened and released after they are closed
    with AcquiredPlaces(plan.labgrid, plan.places, {k.node for k in plan.kills}) as farm, \
            Network(dep, ports={**plan.ports, **farm.urls}, baud=plan.baud, log=log, hello_timeout=plan.hello_timeout,
                    power=farm.power) as net:
        boards = board_table(dep, net.boards)
        for i, cfg in enumerate(plan.run_configs(dep)):
            if stop is not None and stop.is_set():
                break
            tally = RunTally(dep)
            rec = _run_one(net, items, cfg, hooks if i == 0 else None, stop, abandon, console, progress,
                           _settler(dep, ref, items, tally))
            runs.append(rec)
            summaries.append(summarize_run(dep, net.boards.hello, rec, tally))
    report: dict[str, Any] = {
        "build": str(dep.build), "preset": dep.manifest.get("preset"), "scheme": dep.manifest.get("scheme"),
        "samples": len(items), "seed": plan.seed, "window": plan.window,
        "deadline_ms": round(plan.host_deadline_ms(dep)), "board_deadline_ms": dep.board_deadline_ms,
        "sweep": sweep_averages(dep, summaries) if plan.sweep else None, "boards": boards, "runs": summaries,
    }
    paths = write_reports(dep, report, sweep=plan.sweep, out=plan.out, json_path=plan.json_path) if write else {}
    return HarnessResult(report, runs, paths)


def _settler(dep: Deployment, ref: Reference, items: RunSamples, tally: RunTally) -> Settle:
    """The check of each sample as the run goes (host.net.router.SETTLE_AFTER): folded into ``tally``, and
    only its :class:`~host.net.records.SettledSample` kept, so the run's memory does not grow with its length."""
    def settle(rec: SampleRecord) -> SettledSample:
        chk = check_sample(dep, ref, rec, items.features(rec.index))
        tally.add(rec, chk)
        return rec.settled(chk.missing_links)
    return settle


def _run_one(net: Network, items: Sequence[SampleIn], cfg: RunConfig, hooks: dict[int, list[Hook]] | None,
             stop: threading.Event | None, abandon: threading.Event | None, console: Any,
             progress: bool, settle: Settle) -> RunRecord:
    bar = progress_bar(console, progress, cfg.label, len(items))
    try:
        return net.run(items, cfg, progress=bar.update if bar else None, hooks=hooks, stop=stop, abandon=abandon,
                       settle=settle)
    finally:
        if bar:
            bar.close()


# ----------------------------------------------------------------------------------------- CLI
class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one ``error: ...`` line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (python -m host.harness --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="python -m host.harness", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, default=None, help="build directory (default: build/current, the latest host.build, which pio run uploads)")
    ap.add_argument("--port", type=port_spec, action="append", default=[], metavar="NODE=URL",
                    help="attach a real or remote board (any pyserial URL); the others are the boards pio run -t "
                         "upload started, else emulated boards launched for the run. NODE (here and in every "
                         "option): its name, node<id> or the id (edge, node2, 2)")
    ap.add_argument("--baud", type=int, default=None, help="baud rate of real serial ports, for every node "
                    "(default: each node's board baud, uart.baud in boards/<board>/board.toml, which its "
                    "firmware uses)")
    ap.add_argument("--drop", action="append", default=[], metavar="NODE",
                    help="fail a node: it gets nothing, LINK_DOWN is sent in its name (repeatable)")
    ap.add_argument("--drop-link", action="append", default=[], metavar="A->B",
                    help="cut a link: its frames become LINK_DOWN (repeatable)")
    ap.add_argument("--loss", type=float, default=0.0, help="probability that a frame on a link is lost "
                    "(no LINK_DOWN: the receiver's deadline decides)")
    ap.add_argument("--corrupt", type=float, default=0.0, help="probability that a forwarded frame gets a bit "
                    "flipped (the board's CRC drops it)")
    ap.add_argument("--deadline", type=float, default=None, metavar="MS",
                    help="host-side wait for a sample before it counts as timed out "
                         "(default: board deadline x nodes + 2 s)")
    ap.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                    help=f"seeded subset of the test set (default {DEFAULT_SAMPLES}; 0 = all; more than the "
                         f"test set goes round it again, for soak runs)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the subset, the loss and the bit flips")
    ap.add_argument("--sweep", action="store_true", help="run every failure configuration of the failable "
                    "nodes, then the average accuracy per reliability setting")
    ap.add_argument("--window", type=int, default=3, help="samples in flight, 1..32 (default 3 = the nodes' slots)")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the JSON report here")
    ap.add_argument("--out", type=Path, default=None, help="report directory (default <build>/harness)")
    ap.add_argument("--kill", type=kill_spec, action="append", default=[], metavar="NODE@K[:M]",
                    help="emulated boards (or --labgrid places with a power switch): kill NODE's QEMU (cut its "
                         "power) before sample K, boot it again before sample M "
                         "(sample M is sent once it answered)")
    ap.add_argument("--labgrid", default=None, metavar="HOST:PORT",
                    help="a labgrid coordinator: acquire every node's place (<prefix>-<node>), use its serial port, "
                         "switch its power for --kill, release it at the end (python -m host.net.farm)")
    ap.add_argument("--place", type=port_spec, action="append", default=[], metavar="NODE=PLACE",
                    help="with --labgrid: the place of NODE (default <prefix>-<node>)")
    ap.add_argument("--place-prefix", default=None, metavar="PREFIX",
                    help="with --labgrid: places are PREFIX-<node> (default: the build directory's name)")
    ap.add_argument("--hello-timeout", type=float, default=8.0, help="seconds to wait for each board's HELLO")
    ap.add_argument("--quiet", action="store_true", help="no progress bar and tables")
    ap.add_argument("--start-boards", action="store_true", help="start the emulated boards in the background")
    ap.add_argument("--stop-boards", action="store_true", help="stop the boards --start-boards started")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)

    from rich.console import Console

    console = Console(stderr=False, quiet=args.quiet)
    build = args.build or default_build()
    try:
        if args.start_boards:
            return start_boards(load_deployment(build), console)
        if args.stop_boards:
            return stop_boards(build, console)
        plan = RunPlan.from_args(args, build)
        plan.check_options()
        return _main_run(plan, build, console, args.quiet)
    except (DeploymentError, BoardError, ValueError, OSError) as err:
        # One line, naming what is wrong and what to do; no traceback (the messages are written for users).
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


def _main_run(plan: RunPlan, build: Path, console: Any, quiet: bool) -> int:
    """The run of ``main``: Ctrl-C stops sending (twice: gives up the samples in flight)."""
    stop, abandon = threading.Event(), threading.Event()
    presses = [0]

    def on_sigint(signum: int, frame: Any) -> None:
        presses[0] += 1
        if presses[0] == 1:
            stop.set()
            console.print("[yellow]Ctrl-C: no more samples; waiting for those in flight (Ctrl-C again to give "
                          "them up)")
        elif presses[0] == 2:
            abandon.set()
        else:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        res = run_plan(plan, stop=stop, abandon=abandon, console=console, progress=not quiet)
    finally:
        signal.signal(signal.SIGINT, old)
    if not quiet:
        print_console(load_deployment(build), res.report, console)
    for k, p in res.paths.items():
        console.print(f"wrote {p}")
    ok = all(r["samples"]["accounted"] for r in res.report["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
