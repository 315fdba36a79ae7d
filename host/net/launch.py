"""Where each node's board is, and what the harness may do to it (kill, restart).

A node's board is, in this order: its ``--port`` URL (a real or remote board), an emulated board that ``pio run
-t upload`` started and that still runs (``<build>/pio/uploads.json``, :mod:`host.deploy.uploads`), one that
``python -m host.harness --start-boards`` started (``<build>/harness/boards/<node>.pid/.url``), or an emulated
board launched for this run. :meth:`BoardLauncher.prepare` decides this for every node before any board is
launched, so a node without a board stops the run before anything was started.

The harness stops only the boards it launched; uploaded and ``--start-boards`` boards belong to the user and
keep running (``--kill`` may kill and restart them: they are restarted as they were started, on their port and
pid file, and stay running). When a board's port closes, :meth:`BoardLauncher.reopen` says where it is now:
an uploaded board is looked up in uploads.json again, so a board uploaded again mid-run (same or new port) is
picked up. Boards found here are opened and checked by :mod:`host.net.transport`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from host.net.reference import Deployment


class BoardError(RuntimeError):
    """A board that cannot be used: silent port, wrong node id or model hash (the message names them)."""


class PowerSwitch(Protocol):
    """The power switch of a board attached by URL (a labgrid place's: :mod:`host.net.labgrid_client`);
    ``--kill`` cuts its power and switches it on again instead of killing a QEMU."""

    def off(self) -> None: ...

    def on(self) -> None: ...

    def powered(self) -> bool:
        """False from the moment the board is switched off until switching it on again has completed."""
        ...


def boards_dir_of(build: Path) -> Path:
    """Pid and URL files of the boards ``--start-boards`` keeps running for ``build``."""
    return Path(build) / "harness" / "boards"


@dataclass
class BoardSource:
    """Where one node's board comes from."""

    how: str                      # port (--port) | labgrid (a place's port, power switched) | uploaded (pio run -t
                                  # upload) | running (--start-boards) | launched
    url: str | None = None        # None: not launched yet
    mux: bool = False             # a QEMU mux chardev in front of its UART: writes double 0x00 (codegen.emulator)
    pidfile: Path | None = None   # uploaded and --start-boards boards: their QEMU's pid file
    port: int | None = None       # ... and the TCP port it listens on
    env: str = ""                 # uploaded boards: the PlatformIO environment
    board: str = ""               # uploaded boards: the board name they were started as


class BoardLauncher:
    """The URL of every node's board, and the emulated boards this harness launched."""

    def __init__(self, dep: Deployment, ports: Mapping[str, str] | None = None,
                 boards_dir: Path | None = None, power: Mapping[str, PowerSwitch] | None = None) -> None:
        self.dep = dep
        self.ports = dict(ports or {})
        self.power = dict(power or {})   # node -> the power switch of its port's board (labgrid places)
        unknown = set(self.ports) - set(dep.nodes)
        if unknown:
            raise BoardError(f"--port for unknown node(s) {sorted(unknown)}; nodes are {dep.node_list()}")
        self.boards_dir = boards_dir if boards_dir is not None else boards_dir_of(dep.build)
        self.sources: dict[str, BoardSource] = {}
        self.urls: dict[str, str] = {}          # node -> URL of its board now
        self.emulated: dict[str, Any] = {}      # node -> EmulatedBoard we launched
        self.attached: dict[str, str] = {}      # node -> how it was found (BoardSource.how)

    # ------------------------------------------------------------------ finding the boards
    def prepare(self) -> None:
        """Decide where every node's board comes from, before any is launched; raises BoardError for a node
        that has none (a real board without ``--port``, no QEMU, no firmware image) and ValueError for a
        corrupt uploads.json (naming the file)."""
        uploads = self._uploads(strict=True)
        for name in self.dep.nodes:
            self.sources[name] = self._found(name, uploads) or BoardSource("launched")
            self.attached[name] = self.sources[name].how
        self._check_launchable([n for n, src in self.sources.items() if src.how == "launched"])

    def locate(self, name: str) -> str:
        """The URL of ``name``'s board (launching it now if no running board was found)."""
        if not self.sources:
            self.prepare()
        src = self.sources[name]
        if src.url is None:
            src.url, src.mux = self._launch(name), True
        self.urls[name] = src.url
        return src.url

    def is_mux(self, name: str) -> bool:
        src = self.sources.get(name)
        return src is not None and src.mux

    def _uploads(self, strict: bool) -> dict[str, Any]:
        """The build's uploaded boards (``{}``: none); a corrupt file raises if ``strict``, else counts as none."""
        from host.deploy.uploads import read_uploads

        try:
            return read_uploads(self.dep.build)
        except (OSError, ValueError):
            if strict:
                raise
            return {}

    def _found(self, name: str, uploads: Mapping[str, Any]) -> BoardSource | None:
        """A board of ``name`` that runs already: ``--port``, uploaded, or started by ``--start-boards``."""
        from codegen.emulator import pidfile_running

        if name in self.ports:
            return BoardSource("labgrid" if name in self.power else "port", self.ports[name])
        up = uploads.get(name)
        if up is not None and pidfile_running(up.pidfile):
            return BoardSource("uploaded", up.url, up.rx_buffer, Path(up.pidfile), up.port, up.env, up.board)
        pid, url = self.boards_dir / f"{name}.pid", self.boards_dir / f"{name}.url"
        if pid.exists() and url.exists() and pidfile_running(pid):
            # the URL file says ``rx-buffer`` after the URL if the board has a mux chardev (codegen.emulator)
            words = url.read_text().split()
            return BoardSource("running", words[0], "rx-buffer" in words[1:], pid, url_port(words[0]))
        return None

    def _check_launchable(self, names: list[str]) -> None:
        """The boards to launch can be: emulated boards (a real one needs ``--port``), QEMU, their images."""
        from boards import load_board
        from codegen.emulator import qemu_available

        for name in names:
            node = self.dep.nodes[name]
            if load_board(node.board).qemu is None:
                raise BoardError(f"node {self.dep.node_label(name)} runs on {node.board}, a real board: attach "
                                 f"it with --port {name}=/dev/ttyACM0 (or any pyserial URL)")
        if names and not qemu_available():
            raise BoardError("qemu-system-arm is not installed (apt-get install --no-install-recommends "
                             "qemu-system-arm); or attach real boards with --port NODE=URL")
        for name in names:
            if not self.dep.nodes[name].elf.exists():
                raise BoardError(f"node {self.dep.node_label(name)}: no firmware image {self.dep.nodes[name].elf} "
                                 f"(run python -m host.build)")

    def _launch(self, name: str) -> str:
        from boards import load_board
        from codegen.emulator import EmulatedBoard, LaunchError

        node = self.dep.nodes[name]
        try:
            b = EmulatedBoard(load_board(node.board), node.elf, name=name, rx_buffer=True).start()
        except LaunchError as err:
            raise BoardError(f"node {self.dep.node_label(name)}: {err}") from err
        self.emulated[name] = b
        return b.url

    def reopen(self, name: str) -> tuple[str, bool] | None:
        """Where to look for ``name``'s board again after its port closed: (URL, mux), or None while it does
        not run. An uploaded board is looked up in uploads.json again (uploaded again: maybe a new port)."""
        from codegen.emulator import pidfile_running

        src = self.sources[name]
        switch = self.power.get(name)
        if switch is not None and not switch.powered():
            return None   # switched off by --kill: nothing answers behind its port until it is on again
        if src.how == "launched":
            b = self.emulated.get(name)
            return (b.url, True) if b is not None and b.is_running() else None
        if src.how == "uploaded":
            up = self._uploads(strict=False).get(name)
            if up is None or not pidfile_running(up.pidfile):
                return None
            src.url, src.mux, src.pidfile, src.port = up.url, up.rx_buffer, Path(up.pidfile), up.port
        elif src.how == "running":
            found = self._found(name, {})
            if found is None:
                return None
            src.url, src.mux = found.url, found.mux
        assert src.url is not None
        return src.url, src.mux

    # ------------------------------------------------------------------ kill / restart
    def kill(self, name: str) -> None:
        """Kill an emulated board's QEMU (SIGKILL: a crash, not a shutdown)."""
        from codegen.emulator import pidfile_running

        src = self.sources.get(name)
        b = self.emulated.get(name)
        if name in self.power:
            self.power[name].off()   # a power cut: the board behind the URL loses everything, like a crash
        elif b is not None and b.pid is not None:
            os.kill(b.pid, signal.SIGKILL)
        elif src is not None and src.pidfile is not None and pidfile_running(src.pidfile):
            os.kill(int(src.pidfile.read_text().strip()), signal.SIGKILL)
        else:
            raise BoardError(f"node {self.dep.node_label(name)} is not an emulated board the harness can kill "
                             f"({src.how if src else 'not opened'})")

    def restart(self, name: str) -> None:
        """Boot a killed emulated board again, as it was started (the reviver reconnects it): one we launched
        on a new port; an uploaded one as ``pio run -t upload`` does (recorded again in uploads.json); a
        ``--start-boards`` one on its port. Uploaded and ``--start-boards`` boards stay running afterwards."""
        src = self.sources.get(name)
        if name in self.power:
            self.power[name].on()    # a cold boot; the reviver reopens the same URL until the board answers
        elif name in self.emulated:
            self.emulated[name].restart()
        elif src is not None and src.how == "uploaded" and src.pidfile is not None:
            from host.deploy.pio_upload import upload

            up = upload(src.board or self.dep.nodes[name].board, self.image(name), src.port, src.pidfile,
                        node=name, env=src.env or name, build_dir=self.dep.build)
            src.url, src.port, src.mux = up.url, up.port, up.rx_buffer
        elif src is not None and src.how == "running" and src.pidfile is not None:
            src.url = start_detached(self.dep, name, src.pidfile, src.port)
        else:
            raise BoardError(f"node {self.dep.node_label(name)} is not an emulated board the harness can restart "
                             f"({src.how if src else 'not opened'})")

    def image(self, name: str) -> Path:
        """The image an uploaded board is restarted with: PlatformIO's if it was built, else host.build's."""
        emu = self.dep.info.nodes[name].emulator
        if emu is not None and (self.dep.build / emu.elf).exists():
            return self.dep.build / emu.elf
        return self.dep.nodes[name].elf

    def close(self) -> None:
        """Stop the emulated boards launched for this run (uploaded, detached and real boards keep running)."""
        for b in self.emulated.values():
            b.close()
        self.emulated.clear()


def url_port(url: str) -> int | None:
    """The TCP port of a ``socket://host:port`` URL (None for other URLs)."""
    head, _, port = url.rpartition(":")
    return int(port) if head.startswith("socket://") and port.isdigit() else None


# ----------------------------------------------------------------------------------------- detached boards
def start_detached(dep: Deployment, name: str, pidfile: Path, port: int | None = None) -> str:
    """Start ``name``'s emulated board in the background (``python -m codegen.emulator start``, receive
    buffer on), writing its URL file beside ``pidfile``; returns its URL. Raises BoardError if QEMU fails."""
    node = dep.nodes[name]
    cmd = [sys.executable, "-m", "codegen.emulator", "start", "--board", node.board, "--elf", str(node.elf),
           "--pidfile", str(pidfile), "--rx-buffer"] + (["--port", str(port)] if port else [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise BoardError(f"node {dep.node_label(name)}: {' '.join(res.stderr.split())}")
    url = res.stdout.split()[0]
    pidfile.with_suffix(".url").write_text(url + " rx-buffer\n")  # the router doubles 0x00 (codegen.emulator)
    return url


def start_boards(dep: Deployment, console: Any) -> int:
    """Start every node's emulated board in the background (``python -m codegen.emulator start``)."""
    from codegen.emulator import pidfile_running

    d = boards_dir_of(dep.build)
    d.mkdir(parents=True, exist_ok=True)
    for name in dep.nodes:
        pid = d / f"{name}.pid"
        if pidfile_running(pid):
            console.print(f"{name}: already running ({(d / f'{name}.url').read_text().strip()})")
            continue
        console.print(f"{name}: {start_detached(dep, name, pid)}")
    return 0


def stop_boards(build: Path, console: Any) -> int:
    """Stop the boards :func:`start_boards` started for ``build``."""
    from codegen.emulator import stop_pidfile

    d = boards_dir_of(Path(build).resolve())
    for pid in sorted(d.glob("*.pid")):
        stopped = stop_pidfile(pid)
        (d / f"{pid.stem}.url").unlink(missing_ok=True)
        console.print(f"{pid.stem}: {'stopped' if stopped else 'was not running'}")
    return 0
