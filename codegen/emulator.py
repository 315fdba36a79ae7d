"""Start and stop emulated boards (QEMU), each with its node UART on a local TCP port.

::

    from codegen.emulator import launch
    with launch("qemu_f405", "build/node2/node.elf") as board:   # QEMU is running
        port = board.connect()        # a pyserial port on socket://127.0.0.1:PORT
        ...                           # the node's boot HELLO is the first frame
    # QEMU is stopped here (also if the test failed, and if this Python process dies)

The board's UART is QEMU ``-serial tcp:127.0.0.1:PORT,server=on,wait=on,nodelay=on`` at the
board's serial index (``boards/<board>/board.toml``: ``qemu.serial_index``), every other serial port
is ``null``.  ``wait=on`` holds the guest until the host connects, so nothing the node sends
at boot is lost; ``nodelay=on`` avoids a 40 ms stall per burst.  ``-icount shift=N`` (default
0) makes instruction count = virtual time, so SysTick-based cycle counts repeat exactly.

The STM32 USART model drops bytes that arrive before the firmware enabled the UART: wait
for the boot HELLO before sending.

``rx_buffer=True`` (the harness uses it) puts a QEMU *mux* chardev between the socket and the
UART: it holds up to 32 received bytes and hands the next one to the UART model inside the
guest's read of the data register, instead of one round trip through QEMU's main loop per byte
(two thread switches on the host).  Receiving then costs the emulator ≈ 9 µs of host CPU per byte
instead of ≈ 23 µs (``bench/uart_throughput.py``).  The mux has an escape character (set to
0x00 with ``-echr 0``); the port that :meth:`EmulatedBoard.connect` returns doubles every 0x00 it
writes, so the guest's UART receives exactly the bytes written.  A raw client of such a board
(``pio device monitor``) must double 0x00 itself: the default stays the plain socket.

``uart="pty"`` puts the UART on a pseudo-terminal instead (QEMU ``-chardev pty``): :attr:`EmulatedBoard.pty_path`
(also its ``url``) is the ``/dev/pts/N`` QEMU reports, a serial device like a real board's ``/dev/ttyACM0`` that
``ser2net`` can export over the network (:mod:`host.net.ser2net`).  The guest does not wait for the host then:
what it sends before the pty is opened (its boot HELLO) is lost, so the host asks for a HELLO itself.

Command line (e.g. for a PlatformIO ``upload_command``)::

    python -m codegen.emulator start --board qemu_f405 --elf node.elf [--port N] [--pidfile F] [--rx-buffer]
    python -m codegen.emulator start --board qemu_f405 --elf node.elf --uart pty [--pidfile F]   # prints /dev/pts/N
    python -m codegen.emulator stop --pidfile F
    python -m codegen.emulator status --pidfile F
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Sequence

from boards import Board, load_board

QEMU = "qemu-system-arm"
HOST = "127.0.0.1"


class LaunchError(RuntimeError):
    pass


def qemu_available() -> bool:
    return shutil.which(QEMU) is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (QEMU binds it a moment later; start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def instructions_per_count(cpu_hz: int, icount_shift: int = 0) -> float:
    """Instructions executed per SysTick count of a board run by :func:`qemu_command` with ``-icount
    shift=N``: virtual time then advances 2^N ns per instruction, and SysTick counts the core clock, so one
    count is 1e9 / cpu_hz ns of virtual time. The one conversion of emulated SysTick counts (verify's and
    the harness's); the result is instructions, not cycles."""
    return 1e9 / cpu_hz / (1 << icount_shift)


#: The escape character of the mux chardev of ``rx_buffer`` boards (``-echr``); the host doubles it.
MUX_ESCAPE = 0x00
#: Where the node's UART is: a TCP socket QEMU listens on, or a pseudo-terminal (``/dev/pts/N``).
UART_KINDS = ("tcp", "pty")
#: The chardev id of the node's UART; QEMU names it in "char device redirected to /dev/pts/N (label uart)"
#: ("uart-base" under a mux).
UART_ID = "uart"
_PTY_LINE = re.compile(rf"char device redirected to (/dev/\S+) \(label {UART_ID}(?:-base)?\)")


def qemu_command(board: Board, elf: Path, port: int, pidfile: Path | None = None, icount_shift: int | None = 0,
                 extra_args: Sequence[str] = (), rx_buffer: bool = False, uart: str = "tcp") -> list[str]:
    """The QEMU command line that runs ``elf`` on ``board`` with its node UART on ``port`` (``uart="tcp"``) or
    on a new pseudo-terminal (``uart="pty"``; ``port`` is unused).

    ``rx_buffer``: the UART's chardev is a mux over the socket or pty (32-byte receive buffer; escape
    character 0x00, which writers must double: :func:`escape_mux`)."""
    q = board.qemu
    if q is None:
        raise LaunchError(f"board {board.name!r} is not emulated (no [qemu] table in boards/{board.name}/board.toml)")
    if uart not in UART_KINDS:
        raise LaunchError(f"uart {uart!r}: expected one of {', '.join(UART_KINDS)}")
    index = q.serial_index
    serial = [a for i in range(index) for a in ("-serial", "null")]
    if uart == "pty" or rx_buffer:
        # a named chardev: QEMU reports the pty it made under this id
        backend = "pty" if uart == "pty" else f"socket,host={HOST},port={port},server=on,wait=on,nodelay=on"
        chardev = ["-chardev", f"{backend},id={UART_ID}" + (",mux=on" if rx_buffer else "")]
        chardev += ["-echr", str(MUX_ESCAPE)] if rx_buffer else []
        serial += ["-serial", f"chardev:{UART_ID}"]
    else:
        chardev = []
        serial += ["-serial", f"tcp:{HOST}:{port},server=on,wait=on,nodelay=on"]
    cmd = [QEMU, "-M", q.machine, "-nographic", "-monitor", "none", "-kernel", str(elf), *chardev, *serial]
    if icount_shift is not None:
        cmd += ["-icount", f"shift={icount_shift}"]
    if pidfile is not None:
        cmd += ["-pidfile", str(pidfile)]
    return cmd + list(extra_args)


def die_with_parent() -> None:
    """``preexec_fn`` of a helper process that must not outlive this one (runs between fork and exec)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: QEMU goes when its parent dies
    except (OSError, AttributeError):
        pass


_RUNNING: "weakref.WeakSet[EmulatedBoard]" = weakref.WeakSet()
_LOCK = threading.Lock()


@atexit.register
def stop_all() -> None:
    """Stop every board this process started and has not stopped yet."""
    for b in list(_RUNNING):
        b.stop()


class EmulatedBoard:
    """One QEMU process running one node image.  Start/stop as often as needed."""

    def __init__(self, board: str | Board, elf: str | Path, port: int | None = None, *, icount_shift: int | None = 0,
                 workdir: str | Path | None = None, extra_args: Sequence[str] = (), die_with_parent: bool = True,
                 name: str | None = None, rx_buffer: bool = False, uart: str = "tcp") -> None:
        self.board = board if isinstance(board, Board) else load_board(board)
        if self.board.qemu is None:
            raise LaunchError(f"board {self.board.name!r} cannot be emulated")
        if uart not in UART_KINDS:
            raise LaunchError(f"uart {uart!r}: expected one of {', '.join(UART_KINDS)}")
        self.uart = uart
        #: uart="pty": the pseudo-terminal of the node's UART while QEMU runs (None before start and after stop)
        self.pty_path: str | None = None
        self.elf = Path(elf).resolve()
        self.fixed_port = port
        self.port: int | None = port
        self.icount_shift = icount_shift
        self.extra_args = tuple(extra_args)
        self.rx_buffer = rx_buffer
        self.die_with_parent = die_with_parent
        self.name = name or self.elf.parent.name
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="resilinet-qemu-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pidfile = self.workdir / f"qemu-{self.name}.pid"
        self.logfile = self.workdir / f"qemu-{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self._serial: Any = None

    # -- state --
    @property
    def url(self) -> str:
        """pyserial URL of the node's UART (its pty's path with ``uart="pty"``)."""
        if self.uart == "pty":
            if self.pty_path is None:
                raise LaunchError("board not started")
            return self.pty_path
        if self.port is None:
            raise LaunchError("board not started")
        return f"socket://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return qemu_command(self.board, self.elf, self.port or 0, self.pidfile, self.icount_shift, self.extra_args,
                            self.rx_buffer, self.uart)

    # -- start/stop --
    def start(self, timeout: float = 10.0) -> "EmulatedBoard":
        """Start QEMU; returns once it listens on its port (the guest waits for connect()), or once its pty
        exists (``uart="pty"``: the guest runs already)."""
        if self.is_running():
            return self
        if not self.elf.exists():
            raise LaunchError(f"no image {self.elf}")
        attempts = 1 if self.fixed_port or self.uart == "pty" else 5
        last = ""
        for _ in range(attempts):
            self.port = self.fixed_port or (free_port() if self.uart == "tcp" else None)
            self.pidfile.unlink(missing_ok=True)
            log = open(self.logfile, "wb")
            try:
                self.proc = subprocess.Popen(
                    self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent if self.die_with_parent else None,
                    start_new_session=not self.die_with_parent)
            finally:
                log.close()
            with _LOCK:
                _RUNNING.add(self)
            if self._wait_listening(timeout):
                return self
            last = self.log_text()
            self.stop()
            if "in use" not in last:
                break
        raise LaunchError(f"QEMU for {self.board.name} did not start: {last.strip()[-800:]}")

    def _wait_listening(self, timeout: float) -> bool:
        """True once QEMU listens on the port (seen in /proc/net/tcp: probing with a connect
        would count as the host connecting and release the guest too early)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            if self.uart == "pty":
                # QEMU prints the pty it made before the guest runs: read it from QEMU's log
                found = _PTY_LINE.search(self.log_text())
                if found:
                    self.pty_path = found.group(1)
                    return True
            elif is_listening(self.port, self.proc.pid):
                return True
            time.sleep(0.01)
        return False

    def connect(self, timeout: float = 2.0, read_timeout: float = 0.05) -> Any:
        """Open (once) and return the pyserial port of the node's UART; this releases the guest.

        With ``rx_buffer`` the port's ``write`` doubles the mux escape character (:func:`escape_mux`)."""
        if self._serial is not None and self._serial.is_open:
            return self._serial
        self._serial = open_uart(self.url, timeout, read_timeout, alive=self.is_running, mux=self.rx_buffer)
        return self._serial

    def disconnect(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop QEMU (SIGTERM, then SIGKILL) and close the UART connection."""
        self.disconnect()
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        self.pidfile.unlink(missing_ok=True)
        with _LOCK:
            _RUNNING.discard(self)
        self.pty_path = None
        if not self.fixed_port:
            self.port = None

    def restart(self, timeout: float = 10.0) -> "EmulatedBoard":
        self.stop()
        return self.start(timeout)

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "EmulatedBoard":
        return self.start() if not self.is_running() else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc is not None:
                self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid} on {self.url}" if self.is_running() else "stopped"
        return f"<EmulatedBoard {self.name} {self.board.name} {state}>"

    def detach(self) -> None:
        """Let the running QEMU outlive this process: no longer stopped at exit, only through its pid file."""
        with _LOCK:
            _RUNNING.discard(self)
        self.proc = None


def escape_mux(data: bytes) -> bytes:
    """``data`` as written to an ``rx_buffer`` board's socket: every escape character doubled (the mux
    passes a doubled escape on as one byte and acts on nothing else)."""
    esc = bytes([MUX_ESCAPE])
    return bytes(data).replace(esc, esc + esc)


def _mux_writes(port: Any) -> Any:
    """Make ``port.write`` escape for a mux chardev; it still returns the number of bytes of ``data``."""
    raw_write = port.write

    def write(data: bytes) -> int:
        raw_write(escape_mux(data))
        return len(data)

    port.write = write
    port.mux_escaped = True
    return port


def open_uart(url: str, timeout: float = 2.0, read_timeout: float = 0.05, alive: Any = None,
              mux: bool = False, baudrate: int = 115200) -> Any:
    """Open a pyserial port on ``url`` (e.g. ``socket://127.0.0.1:PORT``) without losing bytes.

    pyserial's ``open()`` ends with ``reset_input_buffer()``, which for ``socket://`` reads and
    discards whatever already arrived.  QEMU starts the guest the moment the TCP connection
    is accepted, so the boot HELLO can arrive in between and be thrown away (seen as a
    missing boot HELLO on a loaded machine).  Here that reset is skipped, and the socket gets
    ``TCP_NODELAY`` (pyserial leaves Nagle's algorithm on: a second frame written before the first
    was acknowledged waited for QEMU's delayed ACK, ≈ 40 ms, at every node with two inputs).  Connection
    refused is retried until ``timeout`` (or until ``alive()`` returns False).  ``mux``: the board was
    started with ``rx_buffer`` (writes are escaped, :func:`escape_mux`).  ``baudrate``: of a serial device, or
    asked of the remote port at an ``rfc2217://`` open (the emulator's sockets and ptys ignore it).
    """
    import serial  # pyserial

    deadline = time.monotonic() + timeout
    while True:
        port = serial.serial_for_url(url, timeout=read_timeout, do_not_open=True, baudrate=baudrate)
        port.reset_input_buffer = lambda: None  # instance attribute: shadows the method during open()
        try:
            port.open()
            sock = getattr(port, "_socket", None)
            if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
                # pyserial leaves Nagle on: a frame written while the previous one is not yet ACKed then
                # waits for the board's delayed ACK (up to 40 ms; the board sends nothing meanwhile)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _mux_writes(port) if mux else port
        except serial.SerialException:
            if time.monotonic() > deadline or (alive is not None and not alive()):
                raise
            time.sleep(0.02)
        finally:
            del port.reset_input_buffer


def is_listening(port: int | None, pid: int | None = None) -> bool:
    """True if something on this machine listens on TCP ``port`` (QEMU's UART socket is up); with ``pid``, only
    if that process holds the listening socket.

    The port came from :func:`free_port`, so another process (another harness, a parallel test) may have taken
    it in between: its QEMU listens there while ours fails to bind it and is about to exit ("Address already
    in use"). Taking that listener for ours connected the host to another process's board."""
    if port is None:
        return False
    want = f"{port:04X}"
    owned = _socket_inodes(pid) if pid is not None else None
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                local, state, inode = parts[1], parts[3], parts[9]
                if state == "0A" and local.endswith(":" + want):  # 0A = LISTEN
                    if owned is None or inode in owned:
                        return True
    except OSError:
        # No /proc: fall back to trying to bind the port (fails while QEMU holds it).
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                return True
        return False
    return False


def _socket_inodes(pid: int) -> set[str] | None:
    """The inodes of the sockets process ``pid`` has open (None if its fds cannot be read: no /proc)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    out = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                out.add(link[len("socket:["):-1])
    return out


def launch(board: str | Board, elf: str | Path, port: int | None = None, **kwargs: Any) -> EmulatedBoard:
    """Start ``elf`` on emulated ``board``; use as a context manager or call ``.stop()``."""
    return EmulatedBoard(board, elf, port, **kwargs).start()


# ---- Detached boards (command line) -------------------------------------------------


def _pid_is_our_qemu(pid: int, pidfile: Path) -> bool:
    """True if ``pid`` is a QEMU started with this pid file (never signal a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and Path(cmdline[0].decode()).name == QEMU and str(pidfile).encode() in cmdline


def stop_pidfile(pidfile: str | Path, timeout: float = 5.0) -> bool:
    """Stop the detached QEMU of ``pidfile``; True if one was running."""
    pidfile = Path(pidfile).resolve()
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    if not _pid_is_our_qemu(pid, pidfile):
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_is_our_qemu(pid, pidfile):
        time.sleep(0.05)
    if _pid_is_our_qemu(pid, pidfile):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def pidfile_running(pidfile: str | Path) -> bool:
    pidfile = Path(pidfile).resolve()
    try:
        return _pid_is_our_qemu(int(pidfile.read_text().strip()), pidfile)
    except (OSError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m codegen.emulator", description="Start/stop an emulated board.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start QEMU in the background; prints the UART URL")
    st.add_argument("--board", required=True)
    st.add_argument("--elf", required=True, type=Path)
    st.add_argument("--port", type=int)
    st.add_argument("--pidfile", type=Path)
    st.add_argument("--icount-shift", type=int, default=0)
    st.add_argument("--rx-buffer", action="store_true",
                    help="mux chardev with a 32-byte receive buffer (faster; clients must double 0x00)")
    st.add_argument("--uart", choices=UART_KINDS, default="tcp",
                    help="the node's UART on a TCP port (default) or on a pseudo-terminal (prints /dev/pts/N)")
    for name in ("stop", "status"):
        p = sub.add_parser(name)
        p.add_argument("--pidfile", required=True, type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "start":
        workdir = (args.pidfile.parent if args.pidfile else Path.cwd()).resolve()
        b = EmulatedBoard(args.board, args.elf, args.port, icount_shift=args.icount_shift, workdir=workdir,
                          die_with_parent=False, name=args.pidfile.stem if args.pidfile else None,
                          rx_buffer=args.rx_buffer, uart=args.uart)
        if args.pidfile:
            b.pidfile = args.pidfile.resolve()
        try:
            b.start()
        except LaunchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        b.detach()
        print(f"{b.url} pid-file {b.pidfile}" + (" rx-buffer" if args.rx_buffer else ""))
        return 0
    if args.cmd == "stop":
        return 0 if stop_pidfile(args.pidfile) else 1
    running = pidfile_running(args.pidfile)
    print("running" if running else "stopped")
    return 0 if running else 1


if __name__ == "__main__":
    sys.exit(main())
