"""Emulated boards as a labgrid exporter serves real ones: each UART on a pty, each board behind a power switch.

A real farm's exporter holds boards whose serial ports are devices (``/dev/ttyACM0``) and whose power goes
through a switch (a PDU, a relay, a USB hub port). :class:`EmulatedFarm` makes the emulated boards of a build
look the same to labgrid:

* every node's QEMU runs with its UART on a pseudo-terminal (``codegen.emulator``, ``uart="pty"``). The pty is
  new at every boot (``/dev/pts/N``), so the exporter is given a stable symlink to it instead; the symlinks
  live in ``/dev/shm`` because labgrid's exporter only serves serial devices under ``/dev/`` (and /dev/shm is
  writable without root). ser2net opens the device at every client connection, so it follows the link to
  the board's current pty; while a board is off the link is gone and ser2net refuses the connection.
* the power switches are one small HTTP server in the ``rest`` model of labgrid's ``NetworkPowerPort``
  (``GET /power/<node id>`` answers ``1`` or ``0``; ``PUT`` with ``1`` / ``0`` boots the board or stops its
  QEMU). Off is a power cut: the board loses everything; on is a cold boot from the node's image.

``python -m host.net.farm emulate`` runs one (:mod:`host.net.farm`).
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from boards import load_board
from codegen.emulator import EmulatedBoard
from host.net.reference import Deployment

#: where the exporter finds the boards' ptys (see the module docstring: labgrid wants /dev/...)
LINKS_ROOT = Path("/dev/shm")


def links_dir(farm_dir: Path) -> Path:
    """The directory of a farm's pty symlinks: one per farm directory (two farms never share links)."""
    tag = hashlib.sha1(str(Path(farm_dir).resolve()).encode()).hexdigest()[:10]
    return LINKS_ROOT / f"resilinet-farm-{tag}"


@dataclass
class PoweredBoard:
    """One node's emulated board and the stable path of its UART."""

    node: str
    node_id: int
    link: Path
    board: EmulatedBoard     # uart="pty"

    def is_on(self) -> bool:
        return self.board.is_running()

    def switch(self, on: bool) -> None:
        """Boot the board (cold, from its image) or cut its power; the link follows its pty."""
        if on and not self.is_on():
            self.board.start()
            tmp = self.link.with_name(self.link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.board.pty_path)
            os.replace(tmp, self.link)          # atomic: ser2net sees the old pty or the new one
        elif not on:
            self.link.unlink(missing_ok=True)
            self.board.stop()


class EmulatedFarm:
    """The emulated boards of ``dep`` on ptys, switched by an HTTP power server on ``host``:``port``."""

    def __init__(self, dep: Deployment, farm_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.dep = dep
        self.dir = Path(farm_dir).resolve()
        self.links = links_dir(self.dir)
        self.boards: dict[int, PoweredBoard] = {}
        for name, node in dep.nodes.items():
            b = EmulatedBoard(load_board(node.board), node.elf, name=name, uart="pty",
                              workdir=self.dir / "qemu")
            self.boards[node.id] = PoweredBoard(name, node.id, self.links / name, b)
        self.lock = threading.Lock()
        # One thread serves every request, and it lives as long as the farm: QEMU is started with
        # PR_SET_PDEATHSIG (codegen.emulator), which fires when the *thread* that started it ends, so a
        # thread per request (ThreadingHTTPServer) would kill every board it switched on when it returned.
        self.server = HTTPServer((host, port), _handler(self))
        self.thread: threading.Thread | None = None

    @property
    def power_url(self) -> str:
        """The ``host`` of the farm's NetworkPowerPorts (labgrid's ``rest`` model fills in ``{index}``)."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/power/{{index}}"

    def link_of(self, node: str) -> Path:
        return self.links / node

    def start(self) -> "EmulatedFarm":
        """Boot every board (power on) and serve the power switches in a thread."""
        if self.thread is not None:
            return self
        self.links.mkdir(parents=True, exist_ok=True)
        try:
            for b in self.boards.values():
                b.switch(True)
        except BaseException:
            self.close()   # the boards that did boot go off again
            raise
        self.thread = threading.Thread(target=self.server.serve_forever, name="farm-power", daemon=True)
        self.thread.start()
        return self

    def set_power(self, node_id: int, on: bool) -> None:
        with self.lock:
            self.boards[node_id].switch(on)

    def close(self) -> None:
        """Stop serving, power every board off, remove the links."""
        if self.thread is not None:
            self.server.shutdown()
            self.thread = None
        self.server.server_close()
        for b in self.boards.values():
            b.switch(False)
        for leftover in self.links.glob("*"):
            leftover.unlink(missing_ok=True)
        if self.links.exists():
            self.links.rmdir()

    def __enter__(self) -> "EmulatedFarm":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(farm: EmulatedFarm) -> type[BaseHTTPRequestHandler]:
    """The request handler of ``farm``'s power server (labgrid's ``rest`` power model)."""

    class PowerHandler(BaseHTTPRequestHandler):
        timeout = 10.0   # a client that stalls cannot hold the (single-threaded) server for long
        def _board(self) -> PoweredBoard | None:
            head, _, index = self.path.rstrip("/").rpartition("/")
            if head != "/power" or not index.isdigit() or int(index) not in farm.boards:
                self._answer(404, f"no power port {self.path}; ports are /power/<node id>: "
                                  f"{sorted(farm.boards)}\n")
                return None
            return farm.boards[int(index)]

        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            b = self._board()
            if b is not None:
                self._answer(200, "1" if b.is_on() else "0")

        def do_PUT(self) -> None:  # noqa: N802
            b = self._board()
            if b is None:
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).strip()
            if body not in (b"0", b"1"):
                self._answer(400, "expects 0 (off) or 1 (on)\n")
                return
            try:
                farm.set_power(b.node_id, body == b"1")
            except Exception as err:  # noqa: BLE001 -- QEMU failed to boot: the client gets the reason
                self._answer(500, f"{b.node}: {err}\n")
                return
            self._answer(200, body.decode())

        def _answer(self, code: int, text: str) -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- quiet: no line per request
            pass

    return PowerHandler
