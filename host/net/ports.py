"""The boards' ports: one :class:`Connection` per board and the :class:`PortSet` that reads them all.

One thread does all reading (a selector over the ports' file descriptors; pyserial ports on ``socket://``
and on real serial devices both have one). On a ``socket://`` port (emulated and remote boards) it reads and
writes the non-blocking socket itself; what the socket does not take at once, and every write to a serial
device (which blocks until sent), goes to the port's writer thread, so a slow board never stalls the routing
of the others. Emulated boards that :mod:`host.net.launch` starts get a receive buffer in front of their
UART (``rx_buffer``, :mod:`codegen.emulator`; their port doubles 0x00 on the way in, the UART sees the frames
unchanged). A reviver thread reopens the ports of boards that went silent.

What the frames mean is :mod:`host.net.transport`'s business; this module only moves bytes.
"""
from __future__ import annotations

import queue
import select
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from host.net import protocol as P
from codegen.emulator import escape_mux
from host.net.pumped_port import PumpedPort, needs_pump
from host.net.reference import NodeInfo

#: Bytes without a delimiter after which a port's buffer is dropped as oversize.
BODY_LIMIT = 2 * P.RAW_MAX + 16

@dataclass(frozen=True)
class PortFailed:
    """Writer thread -> reader thread: a write failed (the board is gone)."""

    conn: "Connection"
    why: str


@dataclass(frozen=True)
class PortRevived:
    """Reviver thread -> reader thread: a silent board's port could be opened again."""

    name: str
    port: Any
    url: str


class Connection:
    """One board's port: the router reads it, a writer thread writes it."""

    def __init__(self, node: NodeInfo, url: str, port: Any, inbox: "queue.SimpleQueue") -> None:
        self.node = node
        self.url = url
        self.port = port
        self.buf = bytearray()
        self.closed = False
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._inbox = inbox
        port.timeout = 0  # reads never block: the selector says when there is something
        # A pyserial socket:// port (emulated and remote boards): the router thread reads and writes its
        # non-blocking socket itself (one syscall each, no hand-over to the writer thread and back, which
        # cost more than the write); the writer thread only takes what the socket did not accept at once.
        # A serial device (real board) is written by the writer thread: a write there blocks until sent.
        self._sock = getattr(port, "_socket", None)
        if type(port).__module__ != "serial.urlhandler.protocol_socket" or not isinstance(self._sock, socket.socket):
            self._sock = None  # e.g. rfc2217:// escapes what it writes: only its own write() will do
        self._escape = bool(getattr(port, "mux_escaped", False))  # codegen.emulator rx_buffer board: double 0x00
        self._queued = 0   # items put in the writer queue (router thread only)
        self._written = 0  # items the writer has finished (writer thread only)
        self._thread = threading.Thread(target=self._writer, name=f"write-{node.name}", daemon=True)
        self._thread.start()

    def fileno(self) -> int:
        return self.port.fileno()

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the board; per-port order is kept (the writer queue drains first)."""
        if self.closed:
            return
        if self._sock is None:
            self._queued += 1
            self._q.put(data)
            return
        raw = escape_mux(data) if self._escape else data
        if self._queued == self._written:  # nothing waiting: straight into the socket
            try:
                n = self._sock.send(raw)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as err:
                self._inbox.put(PortFailed(self, f"write failed: {err}"))
                return
            if n == len(raw):
                return
            raw = raw[n:]
        self._queued += 1
        self._q.put(raw)

    def _writer(self) -> None:
        while True:
            data = self._q.get()
            if data is None:
                return
            try:
                if self._sock is None:
                    self.port.write(data)
                else:
                    view = memoryview(data)
                    while view:
                        try:
                            view = view[self._sock.send(view):]
                        except (BlockingIOError, InterruptedError):
                            select.select([], [self._sock], [], 1.0)
            except Exception as err:  # noqa: BLE001 -- any port failure means the board is gone
                self._inbox.put(PortFailed(self, f"write failed: {err}"))
                return
            finally:
                self._written += 1

    def read_frames(self) -> list[tuple[P.Frame | None, bytes, P.LinkStatus]]:
        """Frames completed by what the port has now: (frame, body, status); raises on a dead port."""
        if self._sock is not None:
            try:
                data = self._sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return []
            if not data:
                raise ConnectionError("socket disconnected")
        else:
            data = self.port.read(1 << 16)
        if not data:
            return []
        out = []
        buf = self.buf
        buf += data
        if 0 not in data:
            if len(buf) > BODY_LIMIT:
                buf.clear()
                out.append((None, b"", P.LinkStatus.OVERSIZE))
            return out
        parts = bytes(buf).split(b"\x00")
        buf[:] = parts[-1]
        for body in parts[:-1]:
            if not body:
                continue  # idle fill
            try:
                out.append((P.decode_frame(body), body, P.LinkStatus.FRAME_READY))
            except P.FrameError as err:
                out.append((None, body, err.status))
        return out

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._q.put(None)
        try:
            if self._sock is not None:
                # pyserial's close() sleeps 0.3 s after closing a socket ("for quick reconnects")
                self._sock.close()
                self.port._socket = None
                self.port.is_open = False
            else:
                self.port.close()
        except Exception:  # noqa: BLE001
            pass


def open_port(url: str, baud: int, timeout: float = 2.0, mux: bool = False) -> Any:
    """Open a board's pyserial URL (``baud`` applies to serial devices, also remote ones behind ``rfc2217://``).

    A port without a file descriptor to select on (``rfc2217://``) is wrapped in a
    :class:`~host.net.pumped_port.PumpedPort`."""
    from codegen.emulator import open_uart

    port = open_uart(url, timeout=timeout, mux=mux, baudrate=baud)
    return PumpedPort(port, url) if needs_pump(port) else port



class PortSet:
    """The open ports of a deployment's boards, read by one thread, and the messages of their writer threads
    and of the reviver."""

    def __init__(self, nodes: Mapping[str, NodeInfo], coalesce_s: float = 0.001) -> None:
        self.nodes = nodes
        self.coalesce_s = coalesce_s
        # Updated in place, never replaced: the router keeps a reference.
        self.conn: dict[str, Connection | None] = {n: None for n in nodes}
        self.last_rx: dict[str, float] = {}       # node -> when its port last had bytes (watchdog)
        self.closing = threading.Event()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._sel = selectors.DefaultSelector()
        self._partial = False  # the last read of some port ended inside a frame (see ready)
        self._reviver: threading.Thread | None = None
        self._wake = threading.Event()
        self._wake_lock = threading.Lock()
        self._woken: set[str] = set()

    def add(self, name: str, port: Any, url: str) -> Connection:
        c = Connection(self.nodes[name], url, port, self._inbox)
        self.conn[name] = c
        self._sel.register(c.fileno(), selectors.EVENT_READ, c)
        self.last_rx[name] = time.monotonic()
        return c

    def drop(self, name: str) -> None:
        c = self.conn.get(name)
        if c is None:
            return
        try:
            self._sel.unregister(c.fileno())
        except Exception:  # noqa: BLE001 -- already gone with its fd
            for key in list(self._sel.get_map().values()):
                if key.data is c:
                    self._sel.unregister(key.fileobj)
        c.close()
        self.conn[name] = None

    def ready(self, timeout: float) -> list[Connection]:
        """The ports that have something to read (waiting up to ``timeout``); one may be closed by the time
        the caller gets to it (a frame of an earlier one made the caller drop it)."""
        if self._partial and self.coalesce_s:
            # The last read ended inside a frame: an emulated UART sends one byte per TCP segment, so let
            # the rest of the frame gather (a board sends ~250 B/ms) instead of waking up per few bytes.
            # A read that ends on a frame boundary is routed at once, without this wait.
            time.sleep(self.coalesce_s)
            timeout = 0
        self._partial = False
        try:
            events = self._sel.select(timeout)
        except (OSError, ValueError):
            events = []
        return [key.data for key, _ in events]

    def read(self, c: Connection) -> list[tuple[P.Frame | None, bytes, P.LinkStatus]]:
        """The frames ``c`` completed (:meth:`Connection.read_frames`; raises on a dead port)."""
        items = c.read_frames()
        self.last_rx[c.node.name] = time.monotonic()
        if c.buf:
            self._partial = True
        return items

    def messages(self) -> list[PortFailed | PortRevived]:
        """What the writer threads and the reviver reported since the last call."""
        out = []
        while True:
            try:
                out.append(self._inbox.get_nowait())
            except queue.Empty:
                return out

    def start_reviver(self, wanted: Callable[[str], bool], url_of: Callable[[str], tuple[str, bool] | None],
                      bauds: Mapping[str, int]) -> None:
        """Reopen the port of every board that is ``wanted`` back and has none (``url_of``: where to look now,
        (URL, mux), None while it does not run; ``bauds``: each node's baud rate); the reader thread gets a
        :class:`PortRevived` and checks its HELLO. It looks every 0.2 s, and at once when :meth:`wake` is called (a board the harness restarted
        itself, or one that just went silent)."""
        def loop() -> None:
            tried: dict[str, float] = {}
            while not self.closing.is_set():
                self._wake.wait(0.2)
                self._wake.clear()
                if self.closing.is_set():
                    return
                with self._wake_lock:
                    for name in self._woken:
                        tried.pop(name, None)   # woken for it: try now, not after the retry pause
                    self._woken.clear()
                for name in list(self.nodes):
                    if not wanted(name) or self.conn.get(name) is not None:
                        continue
                    where = url_of(name)
                    if where is None or time.monotonic() - tried.get(name, -1.0) < 0.5:
                        continue
                    tried[name] = time.monotonic()
                    url, mux = where
                    try:
                        port = open_port(url, bauds[name], timeout=0.3, mux=mux)
                    except Exception:  # noqa: BLE001 -- not back yet
                        continue
                    self._inbox.put(PortRevived(name, port, url))
        self._reviver = threading.Thread(target=loop, name="reviver", daemon=True)
        self._reviver.start()

    def wake(self, name: str | None = None) -> None:
        """Make the reviver look now (for ``name`` also without its pause between attempts)."""
        if name is not None:
            with self._wake_lock:
                self._woken.add(name)
        self._wake.set()

    def close(self) -> None:
        """Close every port, stop the reviver, and close the ports it opened that nobody took."""
        self.closing.set()
        self._wake.set()
        for name, c in self.conn.items():
            if c is not None:
                self.drop(name)
        if self._reviver is not None:
            self._reviver.join(timeout=2)
            self._reviver = None
        for msg in self.messages():
            if isinstance(msg, PortRevived):
                try:
                    msg.port.close()
                except Exception:  # noqa: BLE001
                    pass
        try:
            self._sel.close()
        except Exception:  # noqa: BLE001
            pass
