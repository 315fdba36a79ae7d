"""Serial devices exported over the network with RFC 2217, by Debian's ``ser2net`` (4.x, YAML configuration).

A board's serial device — a real Nucleo's ``/dev/ttyACM0``, or the pseudo-terminal of an emulated board
started with ``uart="pty"`` (:class:`codegen.emulator.EmulatedBoard`) — becomes ``rfc2217://HOST:PORT``, which
the harness opens like any other port (``--port NODE=rfc2217://HOST:PORT``; pyserial speaks RFC 2217)::

    with Ser2net([Export("iot", "/dev/pts/3", 4001)]) as s2n:     # ser2net runs
        s2n.urls["iot"]                                          # 'rfc2217://127.0.0.1:4001?ign_set_control'
    # ser2net is stopped here

ser2net opens a device only while a client is connected, and closes it when the client goes.  On a
pseudo-terminal it never answers RFC 2217's DTR/RTS requests (a pty has no modem lines), which pyserial waits
3 s for and then fails the open: the URL of a pty therefore carries pyserial's ``ign_set_control`` option.
The command line is :mod:`host.net.export`.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from codegen.emulator import die_with_parent, is_listening

#: Debian installs ser2net in /usr/sbin, which is not on an ordinary user's PATH.
SER2NET_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
INSTALL_HINT = "install it: apt install ser2net"


class Ser2netError(RuntimeError):
    """ser2net is missing, a TCP port is taken, or ser2net did not start (the message says which)."""


@dataclass(frozen=True)
class Export:
    """One serial device served on one TCP port."""

    name: str           # the connection's name in ser2net's configuration (the node's name)
    device: str         # /dev/ttyACM0, /dev/pts/N, ...
    port: int           # TCP port of the RFC 2217 server
    baud: int = 115200  # the device's speed until a client sets another one over RFC 2217


def ser2net_binary() -> str:
    """The ser2net program; raises Ser2netError if it is not installed."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SER2NET_DIRS])
    found = shutil.which("ser2net", path=path)
    if found is None:
        raise Ser2netError(f"ser2net is not installed ({INSTALL_HINT})")
    return found


def is_pty(device: str) -> bool:
    """A pseudo-terminal (no modem lines: see the module's note on ``ign_set_control``)."""
    return device.startswith("/dev/pts/")


def export_url(export: Export, host: str) -> str:
    """The pyserial URL a client opens for ``export`` served on ``host``."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()   # served on every interface: name this machine
    return f"rfc2217://{host}:{export.port}" + ("?ign_set_control" if is_pty(export.device) else "")


def config_yaml(exports: Sequence[Export], host: str) -> str:
    """ser2net's YAML configuration serving every export on ``host`` with RFC 2217."""
    lines = ["%YAML 1.1", "---"]
    for e in exports:
        lines += [f"connection: &{e.name}",
                  f"  accepter: telnet(rfc2217),tcp,{host},{e.port}",
                  "  enable: on",
                  "  options:",
                  "    kickolduser: true",   # a client that reconnects (the harness's reviver) displaces its old self
                  "    mdns: false",
                  f"  connector: serialdev,{e.device},{e.baud}n81,local",   # local: no modem lines (ptys, ST-LINK)
                  ""]
    return "\n".join(lines)


def check_exports(exports: Sequence[Export], host: str) -> None:
    """Names, devices and ports that ser2net could serve; raises Ser2netError naming the first bad one."""
    seen_ports: dict[int, str] = {}
    for e in exports:
        if not e.name.replace("_", "").replace("-", "").isalnum():
            raise Ser2netError(f"export name {e.name!r}: use letters, digits, '-' and '_'")
        if not Path(e.device).exists():
            raise Ser2netError(f"{e.name}: no serial device {e.device} (is the board attached / running?)")
        if not 0 < e.port < 65536:
            raise Ser2netError(f"{e.name}: TCP port {e.port} out of range 1..65535")
        if e.port in seen_ports:
            raise Ser2netError(f"{e.name}: TCP port {e.port} is already used by {seen_ports[e.port]}")
        seen_ports[e.port] = e.name
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # only a listener conflicts, not TIME_WAIT
            try:
                s.bind((host or "0.0.0.0", e.port))
            except OSError as err:
                raise Ser2netError(f"{e.name}: TCP port {e.port} on {host} is taken ({err.strerror}); "
                                   f"choose another port") from err


class Ser2net:
    """One ser2net process serving ``exports`` on ``host``; start/stop it, or use it as a context manager."""

    def __init__(self, exports: Sequence[Export], host: str = "127.0.0.1", workdir: str | Path | None = None,
                 die_with_this_process: bool = True) -> None:
        self.exports = list(exports)
        self.host = host
        self._tmp = tempfile.TemporaryDirectory(prefix="resilinet-ser2net-") if workdir is None else None
        self.workdir = Path(self._tmp.name if self._tmp is not None else workdir)
        self.config = self.workdir / "ser2net.yaml"
        self.logfile = self.workdir / "ser2net.log"
        self.pidfile = self.workdir / "ser2net.pid"
        self.die_with_this_process = die_with_this_process
        self.proc: subprocess.Popen | None = None

    @property
    def urls(self) -> dict[str, str]:
        """name -> ``rfc2217://`` URL of every export."""
        return {e.name: export_url(e, self.host) for e in self.exports}

    def start(self, timeout: float = 5.0) -> "Ser2net":
        """Write the configuration and start ser2net; returns once every port listens."""
        binary = ser2net_binary()
        check_exports(self.exports, self.host)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config_yaml(self.exports, self.host))
        with open(self.logfile, "wb") as log:
            # -d: stay in the foreground and log to stdout (else errors go to syslog only); -u: no UUCP lock
            # files (/var/lock is root's)
            self.proc = subprocess.Popen(
                [binary, "-d", "-u", "-c", str(self.config), "-P", str(self.pidfile)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent if self.die_with_this_process else None,
                start_new_session=not self.die_with_this_process)
        deadline = time.monotonic() + timeout
        while not all(is_listening(e.port) for e in self.exports):
            problem = self._failure()
            if problem is not None or time.monotonic() > deadline:
                self.stop()
                raise Ser2netError(f"ser2net did not start: {problem or f'no port listening after {timeout:.0f} s'}"
                                   f" (configuration {self.config})")
            time.sleep(0.02)
        return self

    def _failure(self) -> str | None:
        """What ser2net reported as failed (a port it could not bind, a bad configuration), or None."""
        text = self.log_text()
        for line in text.splitlines():
            if "Unable to" in line and "mdns" not in line:   # mdns is optional and off
                return line.split(": ", 1)[-1].strip()
        if self.proc is not None and self.proc.poll() is not None:
            return f"exit status {self.proc.returncode}: {' '.join(text.split())[-300:]}"
        return None

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 2.0) -> None:
        """Stop ser2net (SIGTERM, then SIGKILL: one stuck on a port it could not bind ignores SIGTERM)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        with contextlib.suppress(OSError):
            self.pidfile.unlink()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "Ser2net":
        return self if self.is_running() else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
