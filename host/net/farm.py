"""``python -m host.net.farm``: a build's boards as a labgrid farm (exporter configuration, places, emulated boards).

labgrid's pieces: a *coordinator* (``labgrid-coordinator``, gRPC) knows every exporter's resources and the
*places* users acquire; an *exporter* (``labgrid-exporter CONFIG``) serves a host's boards — each local serial
port through ser2net as a ``NetworkSerialPort`` (RFC 2217), each power switch as a ``NetworkPowerPort``.
Here one exporter *group* and one place serve one node of a build, both named ``<prefix>-<node>`` (prefix:
the build directory's name unless ``--prefix``). ``python -m host.harness --labgrid ADDRESS`` acquires the
places, talks to the boards through their serial ports, switches their power for ``--kill``
(:mod:`host.net.labgrid_client`) and releases the places at the end.

::

    # emulated boards (one machine, loopback): boots the boards, serves their power, writes exporter.yaml
    python -m host.net.farm emulate --build build/current --dir farm          # runs until Ctrl-C
    labgrid-coordinator -l 127.0.0.1:20408 &
    labgrid-exporter -c 127.0.0.1:20408 -n farm --hostname 127.0.0.1 farm/exporter.yaml &
    python -m host.net.farm places --build build/current --coordinator 127.0.0.1:20408 --exporter farm
    python -m host.harness --labgrid 127.0.0.1:20408 --kill edge@40:80

    # real Nucleos on an exporter host (docs/boards.md: "A Nucleo farm on labgrid")
    python -m host.net.farm exporter --build build/current --out exporter.yaml \\
        --serial iot=/dev/serial/by-id/usb-STMicroelectronics_STM32_STLink_0671FF...-if02 ... \\
        --power iot=gude,pdu1.lab,1 ...

Every bad option is one ``error:`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, NoReturn, Sequence

import yaml

from boards import load_board

from host.net.labgrid_client import LabgridClient
from host.net.launch import BoardError
from host.net.plan import default_build, place_names, port_spec, resolve_node
from host.net.reference import Deployment, DeploymentError, load_deployment


@dataclass(frozen=True)
class PowerPort:
    """A labgrid ``NetworkPowerPort``: a switch of ``model`` (a labgrid power backend) at ``host``, port ``index``."""

    model: str
    host: str
    index: int


@dataclass(frozen=True)
class FarmBoard:
    """One node's board as its exporter group serves it."""

    node: str
    group: str                    # exporter group and place name: <prefix>-<node>
    device: str                   # the serial device on the exporter host (ser2net serves it)
    speed: int
    power: PowerPort | None
    location: str                 # free text the coordinator shows (labgrid-client -p PLACE show)


def match_patterns(group: str, power: bool, exporter: str = "*") -> list[str]:
    """A place's matches (exporter/group/class): its serial port, and its power switch if it has one."""
    patterns = [f"{exporter}/{group}/NetworkSerialPort"]
    if power:
        patterns.append(f"{exporter}/{group}/NetworkPowerPort")
    return patterns


def exporter_yaml(boards: Sequence[FarmBoard]) -> str:
    """The exporter configuration of ``boards``: one group per node, its serial port and power switch."""
    groups: dict[str, dict] = {}
    for b in boards:
        group: dict = {"location": b.location,
                       "serial": {"cls": "RawSerialPort", "port": b.device, "speed": b.speed}}
        if b.power is not None:
            group["power"] = {"cls": "NetworkPowerPort", "model": b.power.model, "host": b.power.host,
                              "index": b.power.index}
        groups[b.group] = group
    # labgrid renders the file with Jinja first, where a line starting with "#" is a statement: "##" comments
    head = "## labgrid exporter configuration written by python -m host.net.farm (one group per node)\n"
    return head + yaml.safe_dump(groups, sort_keys=False)


def board_location(dep: Deployment, node: str) -> str:
    n = dep.nodes[node]
    return f"resilinet {dep.build.name}: node {node} (node{n.id}) on {n.board}"


# ----------------------------------------------------------------------------------------- farms
def board_speed(dep: Deployment, node: str) -> int:
    """The baud rate ser2net sets on a node's port: its board's (``uart.baud`` in board.toml, which the
    firmware uses)."""
    return load_board(dep.nodes[node].board).uart.baud


def real_boards(dep: Deployment, places: Mapping[str, str], serial: Mapping[str, str],
                power: Mapping[str, PowerPort]) -> list[FarmBoard]:
    """The groups of real boards: every node needs ``--serial``; ``--power`` is optional per node (a board
    without a switch cannot be ``--kill``ed)."""
    missing = [n for n in places if n not in serial]
    if missing:
        raise ValueError(f"--serial: no serial device for {', '.join(dep.node_label(n) for n in missing)}; give "
                         f"--serial NODE=/dev/serial/by-id/... for every node")
    for n, dev in serial.items():
        if not dev.startswith("/dev/"):
            raise ValueError(f"--serial {n}={dev}: labgrid's exporter serves devices under /dev/ only (use the "
                             f"stable /dev/serial/by-id/... name of the board's ST-LINK port)")
    return [FarmBoard(n, places[n], serial[n], board_speed(dep, n), power.get(n), board_location(dep, n))
            for n in places]


def power_spec(text: str) -> tuple[str, PowerPort]:
    """``NODE=MODEL,HOST,INDEX`` (an argparse type)."""
    node, sep, rest = text.partition("=")
    parts = rest.split(",")
    if not sep or not node or len(parts) != 3 or not parts[2].strip().isdigit():
        raise argparse.ArgumentTypeError(f"expects NODE=MODEL,HOST,INDEX (a labgrid NetworkPowerPort, e.g. "
                                         f"edge=netio,pdu1.lab,3), got {text!r}")
    return node, PowerPort(parts[0].strip(), parts[1].strip(), int(parts[2]))


def emulated_boards(dep: Deployment, places: Mapping[str, str], links: Mapping[str, Path],
                    power_url: str) -> list[FarmBoard]:
    """The groups of an :class:`host.net.farm_power.EmulatedFarm`: pty links, power switch index = node id."""
    return [FarmBoard(n, places[n], str(links[n]), board_speed(dep, n),
                      PowerPort("rest", power_url, dep.nodes[n].id), board_location(dep, n)) for n in places]


def create_places(client: LabgridClient, places: Mapping[str, str], power: bool, exporter: str,
                  out: Callable[[str], None]) -> None:
    """Create (or complete) every node's place on the coordinator, matching its exporter group."""
    for node, place in places.items():
        patterns = match_patterns(place, power, exporter)
        created = client.create_place(place, patterns)
        out(f"{node}: place {place} {'created' if created else 'updated'} ({', '.join(patterns)})")


# ----------------------------------------------------------------------------------------- CLI
class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (python -m host.net.farm --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="python -m host.net.farm", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=OneLineParser)
    common = OneLineParser(add_help=False)
    common.add_argument("--build", type=Path, default=None, help="build directory (default: build/current)")
    common.add_argument("--prefix", default=None, help="places and groups are PREFIX-NODE (default: the build "
                        "directory's name)")
    common.add_argument("--place", type=port_spec, action="append", default=[], metavar="NODE=PLACE",
                        help="name one node's place and group yourself")
    em = sub.add_parser("emulate", parents=[common], help="boot the build's emulated boards on ptys, serve "
                        "their power switches and write DIR/exporter.yaml; runs until Ctrl-C / SIGTERM")
    em.add_argument("--dir", type=Path, required=True, help="farm directory (exporter.yaml, QEMU logs)")
    em.add_argument("--power-host", default="127.0.0.1", help="address of the power server (default 127.0.0.1)")
    em.add_argument("--power-port", type=int, default=0, help="its TCP port (default: a free one)")
    ex = sub.add_parser("exporter", parents=[common], help="write the exporter configuration of real boards")
    ex.add_argument("--out", type=Path, required=True, help="the exporter YAML to write")
    ex.add_argument("--serial", type=port_spec, action="append", default=[], metavar="NODE=DEVICE",
                    help="the board's serial device on the exporter host (every node)")
    ex.add_argument("--power", type=power_spec, action="append", default=[], metavar="NODE=MODEL,HOST,INDEX",
                    help="the board's power switch: a labgrid NetworkPowerPort model (netio, gude, rest, ...)")
    pl = sub.add_parser("places", parents=[common], help="create or update the places on a coordinator")
    pl.add_argument("--coordinator", required=True, metavar="HOST:PORT")
    pl.add_argument("--exporter", default="*", help="the exporter's name (labgrid-exporter -n; default: any)")
    pl.add_argument("--no-power", action="store_true", help="the boards have no power switches (no --kill)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        dep = load_deployment(args.build or default_build())
        places = place_names(dep, args.prefix, dict(args.place))
        if args.cmd == "emulate":
            return run_emulated(dep, places, args.dir, args.power_host, args.power_port)
        if args.cmd == "exporter":
            serial = {resolve_node(dep, n, f"--serial {n}"): d for n, d in args.serial}
            power = {resolve_node(dep, n, f"--power {n}"): p for n, p in args.power}
            args.out.write_text(exporter_yaml(real_boards(dep, places, serial, power)))
            print(f"wrote {args.out} ({len(places)} groups: {', '.join(places.values())})")
            return 0
        create_places(LabgridClient(args.coordinator), places, not args.no_power, args.exporter, print)
        return 0
    except (DeploymentError, BoardError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


def run_emulated(dep: Deployment, places: Mapping[str, str], farm_dir: Path, host: str, port: int) -> int:
    """``emulate``: the boards on, exporter.yaml written, then serve until SIGTERM / Ctrl-C."""
    from codegen.emulator import LaunchError
    from host.net.farm_power import EmulatedFarm

    for n in places:
        if load_board(dep.nodes[n].board).qemu is None:
            raise BoardError(f"node {dep.node_label(n)} runs on {dep.nodes[n].board}, a real board: serve it with "
                             f"python -m host.net.farm exporter --serial {n}=/dev/serial/by-id/...")
    farm_dir.mkdir(parents=True, exist_ok=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        farm = EmulatedFarm(dep, farm_dir, host, port).start()
    except LaunchError as err:
        raise BoardError(f"emulated farm: {err}") from err
    with farm:
        links = {n: farm.link_of(n) for n in places}
        config = farm_dir / "exporter.yaml"
        config.write_text(exporter_yaml(emulated_boards(dep, places, links, farm.power_url)))
        # one line a script (or the test's fixture) waits for: the boards run and the file is complete
        print(f"farm ready: {config} (power {farm.power_url})", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
