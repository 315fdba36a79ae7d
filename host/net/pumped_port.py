"""A pyserial port the router can select on, for ports that have no such file descriptor (``rfc2217://``).

The router (:class:`host.net.ports.PortSet`) waits for all boards' ports at once with a selector, which needs
each port's file descriptor. pyserial's ``rfc2217://`` port has none to offer: its own thread reads the
socket (to answer the RFC 2217 / Telnet negotiation and undo the 0xFF escaping) and queues the bytes.
:class:`PumpedPort` gives it one: a thread moves what the port reads into one end of a socket pair, and the
router selects on and reads the other end. Writes go to the port itself (it escapes them).
"""
from __future__ import annotations

import io
import socket
import threading
from typing import Any

#: How long the pump thread's read waits before it looks whether the port was closed.
POLL_S = 0.2


def needs_pump(port: Any) -> bool:
    """True if ``port`` has no file descriptor to select on."""
    try:
        port.fileno()
    except (io.UnsupportedOperation, AttributeError, OSError):
        return True
    return False


class PumpedPort:
    """``port`` with a selectable ``fileno()``; ``read`` never blocks and raises ConnectionError once the port
    has closed (its connection dropped), like a closed socket."""

    def __init__(self, port: Any, name: str = "") -> None:
        self.port = port
        self.url = getattr(port, "portstr", "") or name
        self.mux_escaped = bool(getattr(port, "mux_escaped", False))
        self.timeout: float | None = 0   # kept for callers that set it; reads never block anyway
        self.is_open = True
        self._out, self._in = socket.socketpair()   # the pump writes _in, the router reads _out
        self._out.setblocking(False)
        self._closing = threading.Event()
        port.timeout = POLL_S
        self._thread = threading.Thread(target=self._pump, name=f"pump-{name or self.url}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while not self._closing.is_set():
                data = self.port.read(1)   # waits up to POLL_S; raises once the connection is gone
                if data:
                    data += self.port.read(self.port.in_waiting)   # what arrived with it (no wait)
                    self._in.sendall(data)
        except Exception:  # noqa: BLE001 -- the connection is gone: the router sees end of file
            pass
        finally:
            # closing _in is the end of file the router reads; closing the port (pyserial's close sleeps
            # 0.3 s "for quick reconnects") happens here, not in the router's thread
            self._in.close()
            try:
                self.port.close()
            except Exception:  # noqa: BLE001
                pass

    def fileno(self) -> int:
        return self._out.fileno()

    def read(self, size: int = 1) -> bytes:
        try:
            data = self._out.recv(size)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            raise ConnectionError(f"{self.url}: connection closed")
        return data

    def write(self, data: bytes) -> int:
        return self.port.write(data)

    def close(self) -> None:
        """Stop the pump (it closes the port within POLL_S) and close the router's end."""
        if not self.is_open:
            return
        self.is_open = False
        self._closing.set()
        self._out.close()
