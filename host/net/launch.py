"""Where each node's board is: a ``--port`` URL, an emulated board started by ``--start-boards`` (still
running), or an emulated board launched for this run — and what the harness may do to the ones it launched
(kill, restart).

Boards found here are opened and checked by :mod:`host.net.transport`. The pid and URL files of detached
boards (``<build>/harness/boards/<node>.pid/.url``) are written by :func:`start_boards` and read by
:meth:`BoardLauncher.locate`; new ways to find a board (e.g. boards flashed by ``pio run -t upload``) belong
in ``locate``.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from host.net.reference import Deployment


class BoardError(RuntimeError):
    """A board that cannot be used: silent port, wrong node id or model hash (the message names them)."""


def boards_dir_of(build: Path) -> Path:
    """Pid and URL files of the boards ``--start-boards`` keeps running for ``build``."""
    return Path(build) / "harness" / "boards"


class BoardLauncher:
    """The URL of every node's board, and the emulated boards this harness launched."""

    def __init__(self, dep: Deployment, ports: Mapping[str, str] | None = None,
                 boards_dir: Path | None = None) -> None:
        self.dep = dep
        self.urls: dict[str, str] = dict(ports or {})
        unknown = set(self.urls) - set(dep.nodes)
        if unknown:
            raise BoardError(f"--port for unknown node(s) {sorted(unknown)}; nodes are {list(dep.nodes)}")
        self.boards_dir = boards_dir if boards_dir is not None else boards_dir_of(dep.build)
        #: nodes whose emulated board has a mux chardev in front of its UART (writes escaped: codegen.emulator)
        self.mux: set[str] = set()
        self.emulated: dict[str, Any] = {}      # node -> EmulatedBoard we launched
        self.attached: dict[str, str] = {}      # node -> how it was found ("launched", "running", "port")

    def locate(self, name: str) -> str:
        """The URL of ``name``'s board: its ``--port``, else a detached board, else one launched now."""
        url = self.urls.get(name)
        how = "port"
        if url is None:
            url = self._detached_url(name)
            how = "running"
        if url is None:
            url = self._launch(name)
            how = "launched"
        self.urls[name] = url
        self.attached[name] = how
        return url

    def _detached_url(self, name: str) -> str | None:
        """URL of a board started with ``python -m host.harness --start-boards`` (still running); the
        URL file says ``rx-buffer`` after the URL if the board has a mux chardev (:mod:`codegen.emulator`)."""
        from codegen.emulator import pidfile_running

        pid, url = self.boards_dir / f"{name}.pid", self.boards_dir / f"{name}.url"
        if pid.exists() and url.exists() and pidfile_running(pid):
            words = url.read_text().split()
            if "rx-buffer" in words[1:]:
                self.mux.add(name)
            return words[0]
        return None

    def _launch(self, name: str) -> str:
        from boards import load_board
        from codegen.emulator import EmulatedBoard, LaunchError, qemu_available

        node = self.dep.nodes[name]
        board = load_board(node.board)
        if board.qemu is None:
            raise BoardError(f"node {name} runs on {node.board}, a real board: attach it with "
                             f"--port {name}=/dev/ttyACM0 (or any pyserial URL)")
        if not qemu_available():
            raise BoardError("qemu-system-arm is not installed (apt-get install --no-install-recommends "
                             "qemu-system-arm); or attach real boards with --port NODE=URL")
        if not node.elf.exists():
            raise BoardError(f"node {name}: no firmware image {node.elf} (run python -m host.build)")
        try:
            b = EmulatedBoard(board, node.elf, name=name, rx_buffer=True).start()
        except LaunchError as err:
            raise BoardError(f"node {name}: {err}") from err
        self.emulated[name] = b
        self.mux.add(name)
        return b.url

    def reopen_url(self, name: str) -> str | None:
        """Where to look for ``name``'s board again after it went silent (None: not running now)."""
        b = self.emulated.get(name)
        if b is None:
            return self.urls[name]
        return b.url if b.is_running() else None

    def kill(self, name: str) -> None:
        """Kill an emulated board's QEMU (SIGKILL: a crash, not a shutdown)."""
        import os
        import signal

        b = self.emulated.get(name)
        if b is None or b.pid is None:
            raise BoardError(f"node {name} is not an emulated board this harness launched")
        os.kill(b.pid, signal.SIGKILL)

    def restart(self, name: str) -> None:
        """Start a killed emulated board again (a fresh boot; the reviver reconnects it)."""
        b = self.emulated.get(name)
        if b is None:
            raise BoardError(f"node {name} is not an emulated board this harness launched")
        b.restart()

    def close(self) -> None:
        """Stop the emulated boards launched for this run (detached and real boards keep running)."""
        for b in self.emulated.values():
            b.close()
        self.emulated.clear()


# ----------------------------------------------------------------------------------------- detached boards
def start_boards(dep: Deployment, console: Any) -> int:
    """Start every node's emulated board in the background (``python -m codegen.emulator start``)."""
    from codegen.emulator import pidfile_running

    d = boards_dir_of(dep.build)
    d.mkdir(parents=True, exist_ok=True)
    for name, node in dep.nodes.items():
        pid = d / f"{name}.pid"
        if pidfile_running(pid):
            console.print(f"{name}: already running ({(d / f'{name}.url').read_text().strip()})")
            continue
        res = subprocess.run([sys.executable, "-m", "codegen.emulator", "start", "--board", node.board, "--elf",
                              str(node.elf), "--pidfile", str(pid), "--rx-buffer"], capture_output=True, text=True)
        if res.returncode != 0:
            console.print(f"[red]{name}: {res.stderr.strip()}")
            return 1
        url = res.stdout.split()[0]
        (d / f"{name}.url").write_text(url + " rx-buffer\n")  # the router doubles 0x00 (codegen.emulator)
        console.print(f"{name}: {url}")
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
