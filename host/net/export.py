"""``python -m host.net.export``: serve a build's boards over the network with RFC 2217 (ser2net), for a harness
on another machine.

::

    python -m host.net.export --build build/current --host 0.0.0.0              # every node's emulated board
    python -m host.net.export --build B --host 0.0.0.0 iot=/dev/ttyACM0 edge=/dev/ttyACM1 --port-base 4001

Nodes given as ``NODE=DEVICE`` are real boards on this machine (their serial device is exported); every other
node's board is emulated here, its UART on a pseudo-terminal (:class:`codegen.emulator.EmulatedBoard`,
``uart="pty"``). One ser2net (:mod:`host.net.ser2net`) serves them all, each on its own TCP port
(``--port-base``, node after node in the build's order; 0 = any free ports). It prints each node's URL and the
harness command that uses them (``--port NODE=rfc2217://HOST:PORT`` for every node), then runs until Ctrl-C
(or SIGTERM) and stops what it started.
"""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Sequence

from codegen.emulator import EmulatedBoard, LaunchError, free_port, qemu_available
from host.net.plan import default_build, port_spec, resolve_node
from host.net.reference import Deployment, DeploymentError, load_deployment
from host.net.ser2net import Export, Ser2net, Ser2netError


@dataclass(frozen=True)
class ExportPlan:
    """What to serve: the build, its nodes' devices (None: emulate the board here) and where to listen."""

    build: Path
    devices: dict[str, str | None]   # node -> serial device of a real board, None for an emulated one
    host: str
    port_base: int                   # first TCP port; 0: free ports
    baud: int


def plan_export(dep: Deployment, devices: Sequence[tuple[str, str]], host: str, port_base: int,
                baud: int) -> ExportPlan:
    """Check the options against the build; raises ValueError naming the first bad one."""
    given: dict[str, str] = {}
    for text, device in devices:
        name = resolve_node(dep, text, f"{text}={device}")
        if name in given:
            raise ValueError(f"{text}={device}: {name} already has {given[name]}")
        if not Path(device).exists():
            raise ValueError(f"{text}={device}: no such serial device (is the board plugged in?)")
        given[name] = device
    if port_base and not 0 < port_base <= 65536 - len(dep.nodes):
        raise ValueError(f"--port-base {port_base}: must leave room for {len(dep.nodes)} ports below 65536 "
                         f"(or 0 for free ports)")
    if baud <= 0:
        raise ValueError(f"--baud {baud}: must be a positive baud rate (e.g. 115200)")
    from boards import load_board

    emulated = [n for n in dep.nodes if n not in given]
    for name in emulated:
        node = dep.nodes[name]
        if load_board(node.board).qemu is None:
            raise ValueError(f"node {dep.node_label(name)} runs on {node.board}, a real board: give its serial "
                             f"device as {name}=/dev/ttyACM0")
        if not node.elf.exists():
            raise ValueError(f"node {dep.node_label(name)}: no firmware image {node.elf} (run python -m host.build)")
    if emulated and not qemu_available():
        raise ValueError("qemu-system-arm is not installed (apt-get install --no-install-recommends "
                         "qemu-system-arm); or give every node's real board as NODE=DEVICE")
    return ExportPlan(dep.build, {n: given.get(n) for n in dep.nodes}, host, port_base, baud)


class Exporter:
    """The emulated boards and the ser2net of one :class:`ExportPlan`; a context manager."""

    def __init__(self, dep: Deployment, plan: ExportPlan) -> None:
        self.dep = dep
        self.plan = plan
        self.boards: dict[str, EmulatedBoard] = {}
        self.ser2net: Ser2net | None = None

    def start(self) -> "Exporter":
        """Boot the emulated boards on ptys, then serve every node's device; raises LaunchError/Ser2netError."""
        try:
            devices = {}
            for name, device in self.plan.devices.items():
                if device is None:
                    node = self.dep.nodes[name]
                    self.boards[name] = EmulatedBoard(node.board, node.elf, name=name, uart="pty").start()
                    device = self.boards[name].url
                devices[name] = device
            exports = [Export(name, dev, self.plan.port_base + i if self.plan.port_base else free_port(),
                              self.plan.baud) for i, (name, dev) in enumerate(devices.items())]
            self.ser2net = Ser2net(exports, self.plan.host).start()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def urls(self) -> dict[str, str]:
        """node -> its ``rfc2217://`` URL."""
        return self.ser2net.urls if self.ser2net is not None else {}

    def problem(self) -> str | None:
        """What stopped working (a board's QEMU or ser2net exited), or None."""
        if self.ser2net is not None and not self.ser2net.is_running():
            return f"ser2net exited: {' '.join(self.ser2net.log_text().split())[-300:]}"
        for name, b in self.boards.items():
            if not b.is_running():
                return f"the emulated board of {name} exited: {' '.join(b.log_text().split())[-300:]}"
        return None

    def close(self) -> None:
        if self.ser2net is not None:
            self.ser2net.close()
            self.ser2net = None
        for b in self.boards.values():
            b.close()
        self.boards.clear()

    def __enter__(self) -> "Exporter":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def harness_command(plan: ExportPlan, urls: dict[str, str]) -> str:
    """The harness command line (for the other machine) that uses every exported board."""
    ports = " ".join(f"--port {shlex.quote(f'{name}={url}')}" for name, url in urls.items())   # '?' is a glob
    return f"python -m host.harness --build {shlex.quote(str(plan.build))} {ports}"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one ``error: ...`` line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} ({self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m host.net.export", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, default=None, help="build directory (default: build/current)")
    ap.add_argument("devices", nargs="*", type=port_spec, metavar="NODE=DEVICE",
                    help="a real board's serial device (e.g. iot=/dev/ttyACM0); other nodes are emulated here")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    ap.add_argument("--port-base", type=int, default=0, metavar="PORT",
                    help="TCP port of the first node, the next ones follow (default 0: free ports)")
    ap.add_argument("--baud", type=int, default=115200,
                    help="serial speed until the harness sets its own over RFC 2217 (default 115200)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()
    try:
        dep = load_deployment(args.build or default_build())
        plan = plan_export(dep, args.devices, args.host, args.port_base, args.baud)
        with Exporter(dep, plan) as exporter:
            for name, url in exporter.urls.items():
                print(f"{name}: {plan.devices[name] or exporter.boards[name].url} -> {url}")
            print(harness_command(plan, exporter.urls), flush=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda signum, frame: stop.set())
            problem = _serve(exporter, stop)
    except (DeploymentError, ValueError, LaunchError, Ser2netError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def _serve(exporter: Exporter, stop: threading.Event) -> str | None:
    """Wait for ``stop`` (Ctrl-C, SIGTERM); returns what failed meanwhile, if anything did."""
    while not stop.wait(0.5):
        problem = exporter.problem()
        if problem is not None:
            return problem
    return None


if __name__ == "__main__":
    sys.exit(main())
