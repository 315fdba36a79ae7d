"""The host as the network: one serial port per board, every frame routed by the host.

:class:`Network` opens the boards of a deployment (emulated boards are launched with :mod:`codegen.emulator`
unless they already run; ``--port``-style URLs attach real or remote boards), checks each one with a
HELLO handshake (node id and model hash), RESETs them (sequence filters and slots), and then streams
samples through them with :meth:`Network.run`:

* the host feeds each sensor node its int8 features (DATA on the sensor link, ``src`` = 0);
* every DATA/LINK_DOWN a board sends on a link is forwarded, byte for byte, to the board at the other
  end — unless the producer or the link is cut (the host then sends LINK_DOWN in the producer's name, so
  the receiver does not wait for its deadline), the frame is lost (``loss``: nothing is sent, the
  receiver's deadline decides) or corrupted (``corrupt``: one bit of the frame flipped, COBS framing kept,
  so the receiver's CRC check drops it and its STATS count it);
* the final node's RESULT (or its LINK_DOWN to the host) ends a sample; so does the host deadline.

One thread does all reading and routing (a selector over the ports' file descriptors; pyserial ports on
``socket://`` and on real serial devices both have one). On a ``socket://`` port (emulated and remote
boards) it reads and writes the non-blocking socket itself; what the socket does not take at once, and
every write to a serial device (which blocks until sent), goes to the port's writer thread, so a slow
board never stalls the routing of the others. Frames of one link come from one board's port and leave
through one port in order: per-link order is preserved. At most ``window`` samples are in flight (the
nodes have 3 slots). Emulated boards that the router launches get a receive buffer in front of their UART
(``rx_buffer``, :mod:`codegen.emulator`; their port doubles 0x00 on the way in, the UART sees the frames
unchanged).

A board whose port dies (QEMU killed, USB gone) or that stops answering is marked silent: the samples it
owed get LINK_DOWN in its name (reason 3, node failed) or fail at once when no path is left, later samples
treat it as failed, and a reviver thread reconnects it; once it answers HELLO with the right node id and
model hash it is used again.
"""
from __future__ import annotations

import os
import queue
import random
import select
import selectors
import signal
import socket
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from host.net import protocol as P
from codegen.emulator import escape_mux
from host.net.reference import Deployment, LinkInfo, NodeInfo

_DATA, _DOWN, _RESULT = int(P.FrameType.DATA), int(P.FrameType.LINK_DOWN), int(P.FrameType.RESULT)
_HELLO, _STATS, _ERROR = int(P.FrameType.HELLO), int(P.FrameType.STATS), int(P.FrameType.ERROR)
_BODY_LIMIT = 2 * P.RAW_MAX + 16

#: Outcomes of a sample; every sample sent ends in exactly one.
OUTCOMES = ("answered", "timed_out", "failed")
#: Why a sample did not get (or got a degraded) result.
REASONS = ("node_silent", "link_cut", "frame_lost", "corrupted", "deadline", "no_input", "interrupted")


class BoardError(RuntimeError):
    """A board that cannot be used: silent port, wrong node id or model hash (the message names them)."""


# ----------------------------------------------------------------------------------------- records
@dataclass
class SampleIn:
    index: int                       # position in the test set
    label: int
    sensors: dict[str, np.ndarray]   # sensor node -> int8 features (one sample)


@dataclass
class SampleRecord:
    k: int                           # position in this run
    index: int
    label: int
    seq: int
    t_sent: float
    dead: frozenset[str] = frozenset()      # nodes treated as failed from injection (dropped or silent)
    silent: set[str] = field(default_factory=set)  # nodes that were silent for this sample (dead boards)
    sent: bool = True                       # False: failed at injection, nothing went to the boards
    t_done: float | None = None
    outcome: str | None = None
    reason: str | None = None
    #: node -> event number of its first frame for this sample (DATA, LINK_DOWN or RESULT)
    answers: dict[str, int] = field(default_factory=dict)
    #: link name (or "<node>->host") -> tensor bytes the board sent
    outputs: dict[str, bytes] = field(default_factory=dict)
    #: link name (or "<node>->host") -> LINK_DOWN reason the board sent
    downs: dict[str, int] = field(default_factory=dict)
    #: link name -> (what the host did, event number): data | down (forwarded) | cut | node_down | lost |
    #: corrupt | consumer_dead
    delivery: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: node -> cycles it reported for this sample
    cycles: dict[str, int] = field(default_factory=dict)
    #: node -> time the first input was delivered to it (watchdog)
    fed_at: dict[str, float] = field(default_factory=dict)
    #: nodes that got an input of this sample after computing a newer one (the runtime drops it as late)
    late: set[str] = field(default_factory=set)
    late_links: set[str] = field(default_factory=set)
    #: failed nodes for which the host has sent LINK_DOWN in their name
    stood_in: set[str] = field(default_factory=set)
    #: failed at injection: finished at this time (keeps the pace while a needed board is silent)
    hold_until: float | None = None

    @property
    def latency(self) -> float | None:
        return None if self.t_done is None else self.t_done - self.t_sent


@dataclass
class WireStats:
    frames: Counter = field(default_factory=Counter)   # by frame type name
    wire_bytes: int = 0        # on the line: COBS body + delimiter
    payload_bytes: int = 0     # frame payloads (DATA: the tensor; RESULT: cycles + tensor)
    tensor_bytes: int = 0      # the tensors alone
    host_frames: int = 0       # frames the host made (feeds, LINK_DOWN in a producer's name)

    def add(self, ftype: int, wire: int, payload: int, tensor: int, host: bool = False) -> None:
        self.frames[P.FrameType(ftype).name] += 1
        self.wire_bytes += wire
        self.payload_bytes += payload
        self.tensor_bytes += tensor
        self.host_frames += host

    def to_dict(self) -> dict[str, Any]:
        over = self.wire_bytes - self.tensor_bytes
        return {"frames": dict(self.frames), "wire_bytes": self.wire_bytes, "payload_bytes": self.payload_bytes,
                "tensor_bytes": self.tensor_bytes, "host_frames": self.host_frames,
                "framing_overhead_bytes": self.wire_bytes - self.payload_bytes, "overhead_bytes": over,
                "overhead_pct_of_tensor": round(100 * over / self.tensor_bytes, 3) if self.tensor_bytes else None}


@dataclass
class BoardEvent:
    t: float          # seconds since the run started
    node: str
    kind: str         # silent | back | reset | rejected | error
    sample: int | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": round(self.t, 3), "node": self.node, "kind": self.kind, "sample": self.sample,
                "detail": self.detail}


@dataclass
class RunConfig:
    dead: frozenset[str] = frozenset()        # --drop
    cut_links: frozenset[str] = frozenset()   # --drop-link
    loss: float = 0.0
    corrupt: float = 0.0
    deadline_s: float = 6.0
    window: int = 3
    seed: int = 0
    label: str = ""


@dataclass
class RunRecord:
    config: RunConfig
    records: list[SampleRecord] = field(default_factory=list)
    wire: dict[str, WireStats] = field(default_factory=lambda: defaultdict(WireStats))
    uart_rx: Counter = field(default_factory=Counter)   # bytes received from each board
    uart_tx: Counter = field(default_factory=Counter)   # bytes sent to each board
    corrupted_to: Counter = field(default_factory=Counter)   # corrupted frames sent to each board
    host_drops: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    events: list[BoardEvent] = field(default_factory=list)
    stats_before: dict[str, P.Stats] = field(default_factory=dict)
    stats_after: dict[str, P.Stats] = field(default_factory=dict)
    stray_frames: int = 0
    late_inputs: Counter = field(default_factory=Counter)   # inputs delivered after the node computed newer
    t_start: float = 0.0
    t_end: float = 0.0
    interrupted: bool = False


# ----------------------------------------------------------------------------------------- ports
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
                self._inbox.put(("port_error", self, f"write failed: {err}"))
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
                self._inbox.put(("port_error", self, f"write failed: {err}"))
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
            if len(buf) > _BODY_LIMIT:
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


def _open_port(url: str, baud: int, timeout: float = 2.0, mux: bool = False) -> Any:
    from codegen.emulator import open_uart

    port = open_uart(url, timeout=timeout, mux=mux)
    if not url.startswith(("socket://", "rfc2217://", "loop://")):
        port.baudrate = baud
    return port


# ----------------------------------------------------------------------------------------- network
class Network:
    """The boards of one deployment and the host that wires them together."""

    def __init__(self, dep: Deployment, *, ports: Mapping[str, str] | None = None, baud: int = 115200,
                 hello_timeout: float = 8.0, boards_dir: Path | None = None,
                 log: Callable[[str], None] | None = None, watchdog_s: float | None = None,
                 coalesce_s: float = 0.001) -> None:
        self.dep = dep
        self.urls: dict[str, str] = dict(ports or {})
        #: nodes whose emulated board has a mux chardev in front of its UART (writes escaped: codegen.emulator)
        self.mux: set[str] = set()
        unknown = set(self.urls) - set(dep.nodes)
        if unknown:
            raise BoardError(f"--port for unknown node(s) {sorted(unknown)}; nodes are {list(dep.nodes)}")
        self.baud = baud
        self.coalesce_s = coalesce_s
        self.hello_timeout = hello_timeout
        self.boards_dir = boards_dir if boards_dir is not None else dep.build / "harness" / "boards"
        self.log = log or (lambda s: None)
        self.watchdog_s = watchdog_s if watchdog_s is not None else max(4.0, 3 * dep.board_deadline_ms / 1000 + 1)
        self.emulated: dict[str, Any] = {}      # node -> EmulatedBoard we launched
        self.attached: dict[str, str] = {}      # node -> how it was found ("launched", "running", "port")
        self.conn: dict[str, Connection | None] = {n: None for n in dep.nodes}
        self.state: dict[str, str] = {n: "closed" for n in dep.nodes}   # alive | silent | probing | rejected
        self.hello: dict[str, P.Hello] = {}
        self.stats: dict[str, P.Stats] = {}
        self._stats_wait: dict[str, int] = {}
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._sel = selectors.DefaultSelector()
        self._ctl_seq = 0x100
        self._seq = 0
        self._event_no = 0
        self._run: RunRecord | None = None
        self._cfg: RunConfig | None = None
        self._by_seq: dict[int, SampleRecord] = {}
        self._inflight: dict[int, SampleRecord] = {}
        self._rng: dict[int, random.Random] = {}
        self._last_rx: dict[str, float] = {}
        self._probe_at: dict[str, float] = {}
        self._injected = 0
        self._newest_answer: dict[str, int] = {}
        self._ping_at: dict[str, float] = {}
        self._reviver: threading.Thread | None = None
        self._closing = threading.Event()
        self._pending_errors: list[str] = []
        self._partial = False  # the last read of some port ended inside a frame (see _pump)
        self._reset_wait: dict[str, int] = {}
        self._alive_since: dict[str, float] = {}
        self.node_by_id = dep.node_by_id
        self.link_by_id = dep.link_by_id

    # ------------------------------------------------------------------ open / close
    def __enter__(self) -> "Network":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> "Network":
        """Attach or launch every board, check its HELLO, RESET it and read its STATS baseline."""
        try:
            for name in self.dep.nodes:
                self._attach(name)
            self._handshake()
        except BaseException:
            self.close()
            raise
        self._reviver = threading.Thread(target=self._revive_loop, name="reviver", daemon=True)
        self._reviver.start()
        return self

    def close(self) -> None:
        self._closing.set()
        for name, c in self.conn.items():
            if c is not None:
                self._drop_conn(name)
        for b in self.emulated.values():
            b.close()
        self.emulated.clear()
        if self._reviver is not None:
            self._reviver.join(timeout=2)
            self._reviver = None
        while True:  # ports the reviver opened that nobody took
            try:
                msg = self._inbox.get_nowait()
            except queue.Empty:
                break
            if msg[0] == "revived":
                try:
                    msg[2].close()
                except Exception:  # noqa: BLE001
                    pass
        try:
            self._sel.close()
        except Exception:  # noqa: BLE001
            pass

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

    def _attach(self, name: str) -> None:
        node = self.dep.nodes[name]
        url = self.urls.get(name)
        how = "port"
        if url is None:
            url = self._detached_url(name)
            how = "running"
        if url is None:
            from boards import load_board
            from codegen.emulator import EmulatedBoard, LaunchError, qemu_available

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
            url = b.url
            how = "launched"
        self.urls[name] = url
        self.attached[name] = how
        try:
            port = _open_port(url, self.baud, mux=name in self.mux)
        except Exception as err:  # noqa: BLE001
            raise BoardError(f"node {name}: cannot open port {url}: {err}") from err
        self._add_conn(name, port, url)
        self.state[name] = "probing"

    def _add_conn(self, name: str, port: Any, url: str) -> Connection:
        c = Connection(self.dep.nodes[name], url, port, self._inbox)
        self.conn[name] = c
        self._sel.register(c.fileno(), selectors.EVENT_READ, c)
        self._last_rx[name] = time.monotonic()
        return c

    def _drop_conn(self, name: str) -> None:
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

    def _ctl(self, name: str, ftype: P.FrameType) -> int:
        """Send a control frame (HELLO/STATS request, RESET) to a board; returns its seq.

        A RESET's seq is the newest sample number: the board expands the one-byte sample numbers
        of the DATA frames that follow around it (docs/protocol.md §6)."""
        self._ctl_seq = (self._ctl_seq + 1) & 0xFFFF or 0x100
        seq = self._seq if ftype == P.FrameType.RESET else self._ctl_seq
        c = self.conn.get(name)
        if c is not None:
            c.send(P.Frame(ftype, P.NODE_HOST, P.NODE_BROADCAST, P.LINK_NONE, seq).encode())
        return seq

    def _reset(self, name: str) -> None:
        """RESET a board that (re)joins: fresh filters and slots, and the current sample number."""
        self._reset_wait[name] = self._ctl(name, P.FrameType.RESET)

    def _reset_all(self) -> None:
        """RESET every live board and wait for their HELLOs; those that did not answer stay in
        ``_reset_wait``."""
        self._reset_wait = {}
        for name in self.dep.nodes:
            if self.state[name] == "alive":
                self._reset(name)
        end = time.monotonic() + max(3.0, self.hello_timeout)  # a loaded machine can stall a QEMU for seconds
        while self._reset_wait and time.monotonic() < end:
            self._pump(0.05)

    def _check_hello(self, name: str, f: P.Frame) -> str | None:
        """None if the HELLO is the expected node's, else what is wrong."""
        node = self.dep.nodes[name]
        try:
            h = P.Hello.unpack(f.payload)
        except P.FrameError as err:
            return f"malformed HELLO ({err})"
        problems = []
        if f.src != node.id:
            other = self.node_by_id.get(f.src, "?")
            problems.append(f"it is node id {f.src} ({other}), expected {node.id}")
        if h.model_hash != node.model_hash:
            problems.append(f"model hash {h.model_hash.hex()}, expected {node.model_hash.hex()} "
                            f"(sha256 of {node.name}.tflite)")
        if problems:
            return "; ".join(problems)
        self.hello[name] = h
        return None

    def _handshake(self) -> None:
        deadline = time.monotonic() + self.hello_timeout
        want = set(self.dep.nodes)
        wrong: dict[str, str] = {}
        next_probe = 0.0
        while want and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_probe:
                for name in want:
                    self._ctl(name, P.FrameType.HELLO)
                next_probe = now + 0.3
            self._pump(0.05)
            for name in list(want):
                if self.state[name] == "alive":
                    want.discard(name)
                elif self.state[name] == "rejected":
                    want.discard(name)
                    wrong[name] = self._pending_errors_for(name)
                elif self.conn[name] is None:
                    want.discard(name)
                    wrong[name] = "the port closed"
        problems = [f"node {n} on {self.urls[n]}: {why}" for n, why in wrong.items()]
        problems += [f"node {n} on {self.urls[n]}: no HELLO within {self.hello_timeout:.0f} s (is the board "
                     f"powered and running this build's firmware for node {n}? right port and baud rate "
                     f"{self.baud}?)" for n in sorted(want)]
        if problems:
            raise BoardError("board check failed:\n  " + "\n  ".join(problems))
        # RESET: fresh sequence filters and slots on every board (boards may have run before), then STATS.
        self._reset_all()
        if self._reset_wait:
            raise BoardError("no HELLO after RESET from " + ", ".join(f"node {n} on {self.urls[n]}"
                                                                      for n in self._reset_wait))
        self.request_stats()

    def _pending_errors_for(self, name: str) -> str:
        hits = [e for e in self._pending_errors if e.startswith(name + ":")]
        return hits[-1].split(":", 1)[1].strip() if hits else "rejected"

    def request_stats(self, timeout: float = 2.0) -> dict[str, P.Stats]:
        """STATS from every live board (the latest counters, also kept in ``self.stats``)."""
        self._stats_wait = {n: self._ctl(n, P.FrameType.STATS) for n in self.dep.nodes if self.state[n] == "alive"}
        end = time.monotonic() + timeout
        while self._stats_wait and time.monotonic() < end:
            self._pump(0.05)
        return {n: self.stats[n] for n in self.dep.nodes if n in self.stats}

    # ------------------------------------------------------------------ emulated failures
    def kill(self, name: str) -> None:
        """Kill an emulated board's QEMU (SIGKILL: a crash, not a shutdown)."""
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

    def _revive_loop(self) -> None:
        """Reconnect the ports of silent boards (the router checks their HELLO)."""
        tried: dict[str, float] = {}
        while not self._closing.wait(0.2):
            for name in list(self.dep.nodes):
                if self.state.get(name) != "silent" or self.conn.get(name) is not None:
                    continue
                b = self.emulated.get(name)
                if b is not None:
                    if not b.is_running():
                        continue
                    url = b.url
                else:
                    url = self.urls[name]
                if time.monotonic() - tried.get(name, 0.0) < 0.5:
                    continue
                tried[name] = time.monotonic()
                try:
                    port = _open_port(url, self.baud, timeout=0.3, mux=name in self.mux)
                except Exception:  # noqa: BLE001 -- not back yet
                    continue
                self._inbox.put(("revived", name, port, url))

    # ------------------------------------------------------------------ the loop
    def _event(self) -> int:
        self._event_no += 1
        return self._event_no

    def _now_rel(self) -> float:
        return time.monotonic() - (self._run.t_start if self._run else 0.0)

    def _note(self, name: str, kind: str, detail: str = "") -> None:
        ev = BoardEvent(self._now_rel(), name, kind, self._injected if self._run else None, detail)
        if self._run is not None:
            self._run.events.append(ev)
        self.log(f"{name}: {kind} {detail}".rstrip())

    def _pump(self, timeout: float) -> int:
        """Read whatever the ports have (waiting up to ``timeout``) and handle it; returns frames handled."""
        n = 0
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
        for key, _ in events:
            c: Connection = key.data
            if c.closed:
                continue
            try:
                items = c.read_frames()
            except Exception as err:  # noqa: BLE001 -- EOF / device gone
                self._port_failed(c, f"port closed ({err})")
                continue
            name = c.node.name
            self._last_rx[name] = time.monotonic()
            if c.buf:
                self._partial = True
            for frame, body, status in items:
                if self._run is not None:
                    self._run.uart_rx[name] += len(body) + 1
                if frame is None:
                    if self._run is not None:
                        self._run.host_drops[name][status.name] += 1
                    continue
                n += 1
                self._on_frame(c, frame, body)
        while True:
            try:
                msg = self._inbox.get_nowait()
            except queue.Empty:
                break
            if msg[0] == "port_error":
                self._port_failed(msg[1], msg[2])
            elif msg[0] == "revived":
                _, name, port, url = msg
                if self.state.get(name) == "silent" and self.conn.get(name) is None and not self._closing.is_set():
                    self._add_conn(name, port, url)
                    self.urls[name] = url
                    self.state[name] = "probing"
                    self._probe_at[name] = 0.0
                else:
                    try:
                        port.close()
                    except Exception:  # noqa: BLE001
                        pass
        return n

    def _port_failed(self, c: Connection, why: str) -> None:
        name = c.node.name
        if self.conn.get(name) is not c:
            return
        self._drop_conn(name)
        if self.state[name] in ("alive", "probing"):
            self._went_silent(name, why)

    def _went_silent(self, name: str, why: str) -> None:
        was = self.state[name]
        self.state[name] = "silent"
        if was == "alive":
            self._note(name, "silent", why)
            self._abandon_inflight(name, why)

    def _abandon_inflight(self, name: str, why: str) -> None:
        """The board lost what it held: LINK_DOWN in its name for the samples it still owed."""
        node = self.dep.nodes[name]
        for rec in list(self._inflight.values()):
            if name in rec.dead or rec.hold_until is not None:
                continue
            rec.silent.add(name)
            owed = [l for l in node.links_out if l not in rec.delivery]
            if node.result and rec.outcome is None:
                owed.append(None)
            if not owed:
                continue
            if not self.dep.has_path(set(rec.dead) | {name}, self._cfg.cut_links if self._cfg else ()):
                self._finish(rec, "failed", "node_silent")
                continue
            for link in owed:
                if link is not None:
                    self._send_down(rec, self.dep.links[link], P.LinkDownReason.NODE_FAILED, "node_down")

    def _on_frame(self, c: Connection, f: P.Frame, body: bytes) -> None:
        t = f.type
        name = c.node.name
        if t in (_DATA, _DOWN, _RESULT):
            if self.state[name] != "alive" or self._run is None:
                if self._run is not None:
                    self._run.stray_frames += 1
                return
            self._on_sample_frame(c, f, body)
        elif t == _HELLO:
            self._on_hello(name, f)
        elif t == _STATS:
            try:
                self.stats[name] = P.Stats.unpack(f.payload)
            except P.FrameError:
                return
            if self._stats_wait.get(name) == f.seq:
                del self._stats_wait[name]
        elif t == _ERROR:
            try:
                code, text = P.parse_error(f.payload)
            except P.FrameError:
                code, text = -1, f.payload.hex()
            msg = f"0x{code:04x} {text} (seq {f.seq})"
            if self._run is not None:
                self._run.errors[name].append(msg)
            self.log(f"{name}: ERROR {msg}")

    def _on_hello(self, name: str, f: P.Frame) -> None:
        st = self.state[name]
        if self._reset_wait.get(name) == f.seq:
            del self._reset_wait[name]
            return
        if st in ("probing", "silent"):
            problem = self._check_hello(name, f)
            if problem is None:
                self.state[name] = "alive"
                self._alive_since[name] = time.monotonic()
                if self._run is not None:
                    self._note(name, "back", f"HELLO from {self.urls[name]}")
                    self._reset(name)
                return
            self.state[name] = "rejected"
            msg = f"{name}: {problem}"
            self._pending_errors.append(msg)
            if self._run is not None:
                self._note(name, "rejected", problem)
            self._drop_conn(name)
        elif (st == "alive" and self._run is not None and f.seq == 0
              and time.monotonic() - self._alive_since.get(name, 0.0) > 1.0):
            # An unsolicited HELLO: the board rebooted (reset, watchdog) and lost what it held.
            problem = self._check_hello(name, f)
            self._note(name, "reset", "boot HELLO during the run" + (f"; {problem}" if problem else ""))
            self._abandon_inflight(name, "board reset")
            if problem:
                self.state[name] = "rejected"
                self._drop_conn(name)
            else:
                self._reset(name)

    # ------------------------------------------------------------------ routing
    def _wire(self, key: str, ftype: int, wire: int, payload: int, tensor: int, host: bool = False) -> None:
        self._run.wire[key].add(ftype, wire, payload, tensor, host)

    def _send(self, dst: str, data: bytes) -> bool:
        c = self.conn.get(dst)
        if c is None or self.state[dst] != "alive":
            return False
        c.send(data)
        self._run.uart_tx[dst] += len(data)
        return True

    def _send_down(self, rec: SampleRecord, link: LinkInfo, reason: int, what: str) -> None:
        """LINK_DOWN on ``link`` in its producer's name (one sequence stream per (src, link))."""
        ev = self._event()
        if link.dst in rec.dead or self.state[link.dst] != "alive":
            rec.delivery[link.name] = ("consumer_dead", ev)
            self._stand_in(rec, link.dst)
            return
        data = P.Frame(P.FrameType.LINK_DOWN, link.src_id, link.dst_id, link.id, rec.seq, bytes([int(reason)])).encode()
        self._send(link.dst, data)
        self._wire(link.name, _DOWN, len(data), 1, 0, host=True)
        rec.delivery[link.name] = (what, ev)
        rec.fed_at.setdefault(link.dst, time.monotonic())

    def _stand_in(self, rec: SampleRecord, name: str) -> None:
        """A failed node's input for this sample has come: LINK_DOWN in its name on its links, now.

        Sent when the failed node would have had its input (not when the sample is sent), so a receiver's
        deadline does not start before the real data of its other inputs could have come."""
        if name not in rec.dead or name in rec.stood_in:
            return
        rec.stood_in.add(name)
        for l in self.dep.nodes[name].links_out:
            if l not in rec.delivery:
                self._send_down(rec, self.dep.links[l], P.LinkDownReason.NODE_FAILED, "node_down")

    def _on_sample_frame(self, c: Connection, f: P.Frame, body: bytes) -> None:
        name = c.node.name
        # A DATA frame carries the low byte of its sample number: the samples in flight are the newest
        # few, so the frame's is the number nearest the newest one sent (exact for frames < 128 samples late).
        seq = P.seq_expand(self._seq, f.seq) if f.type == _DATA else f.seq
        rec = self._by_seq.get(seq)
        run = self._run
        wire = len(body) + 1
        if f.link == P.LINK_NONE:  # the final node: RESULT or LINK_DOWN to the host
            key = f"{name}->host"
            tensor = b""
            if f.type == _RESULT and len(f.payload) >= P.CYCLES_LEN:
                cycles, tensor = P.parse_sample_payload(f.payload)
            self._wire(key, f.type, wire, len(f.payload), len(tensor))
            if rec is None:
                run.stray_frames += 1
                return
            self._answered(rec, name, self._event())
            if f.type == _RESULT:
                rec.outputs[key] = tensor
                rec.cycles.setdefault(name, cycles)
                if rec.outcome is None:
                    self._finish(rec, "answered")
            else:
                rec.downs[key] = f.payload[0] if f.payload else 0
                if rec.outcome is None:
                    self._finish(rec, "failed", self._why(rec, "no_input"))
            return
        link = self.link_by_id.get(f.link)
        if link is None or link.src != name or f.type == _RESULT:
            run.stray_frames += 1
            return
        tensor = f.payload if f.type == _DATA else b""
        self._wire(link.name, f.type, wire, len(f.payload), len(tensor))
        if rec is None:
            run.stray_frames += 1
            return
        ev = self._event()
        self._answered(rec, name, ev)
        if f.type == _DATA:
            rec.outputs[link.name] = tensor
        else:
            rec.downs[link.name] = f.payload[0] if f.payload else 0
        cfg = self._cfg
        if link.name in rec.delivery and rec.delivery[link.name][0] in ("node_down",):
            return  # the host already answered for this producer
        if link.dst in rec.dead or self.state[link.dst] != "alive":
            rec.delivery[link.name] = ("consumer_dead", ev)
            self._stand_in(rec, link.dst)
            return
        if link.name in cfg.cut_links:
            self._send_down(rec, link, P.LinkDownReason.UNSPECIFIED, "cut")
            return
        if cfg.loss or cfg.corrupt:
            rng = self._rng.get(link.id)
            if rng is None:
                rng = self._rng[link.id] = random.Random(cfg.seed * 1_000_003 + link.id)
            u = rng.random()
            if u < cfg.loss:
                rec.delivery[link.name] = ("lost", ev)
                return
            if u < cfg.loss + cfg.corrupt:
                raw = bytearray(P.cobs_decode(body))
                bit = rng.randrange(len(raw) * 8)
                raw[bit // 8] ^= 1 << (bit % 8)
                data = P.cobs_encode(bytes(raw)) + b"\x00"
                if self._send(link.dst, data):
                    run.corrupted_to[link.dst] += 1
                rec.delivery[link.name] = ("corrupt", ev)
                return
        self._send(link.dst, body + b"\x00")
        rec.delivery[link.name] = ("data" if f.type == _DATA else "down", ev)
        rec.fed_at.setdefault(link.dst, time.monotonic())
        newest = self._newest_answer.get(link.dst)
        if newest is not None and link.dst not in rec.answers and P.seq_diff(rec.seq, newest) <= -32:
            # The consumer computed 32 newer samples since: it no longer knows this one and drops the input
            # as late. (A sample overtaken by fewer is still open there and takes the input.)
            rec.late.add(link.dst)
            rec.late_links.add(link.name)
            run.late_inputs[link.dst] += 1

    def _answered(self, rec: SampleRecord, name: str, ev: int) -> None:
        if name not in rec.answers:
            rec.answers[name] = ev
            newest = self._newest_answer.get(name)
            if newest is None or P.seq_diff(rec.seq, newest) > 0:
                self._newest_answer[name] = rec.seq

    def _why(self, rec: SampleRecord, default: str) -> str:
        states = {s for s, _ in rec.delivery.values()}
        if rec.silent:
            return "node_silent"
        if "corrupt" in states:
            return "corrupted"
        if "lost" in states:
            return "frame_lost"
        if rec.dead or "cut" in states:
            return "link_cut"
        return default

    def _finish(self, rec: SampleRecord, outcome: str, reason: str | None = None) -> None:
        rec.outcome = outcome
        rec.reason = reason
        rec.t_done = time.monotonic()
        self._inflight.pop(rec.seq, None)
        if outcome == "answered":
            self._latencies.append(rec.t_done - rec.t_sent)

    def _inject(self, k: int, s: SampleIn) -> None:
        cfg = self._cfg
        self._seq = (self._seq + 1) & 0xFFFF
        silent = {n for n in self.dep.nodes if self.state[n] != "alive"}
        dead = frozenset(cfg.dead | silent)
        rec = SampleRecord(k, s.index, s.label, self._seq, time.monotonic(), dead, set(silent - cfg.dead))
        self._run.records.append(rec)
        self._by_seq[rec.seq] = rec
        self._injected = k
        self._inflight[rec.seq] = rec
        if rec.silent and not self.dep.has_path(dead, cfg.cut_links):
            # Nothing can answer: failed, without sending. It holds its window slot for about one
            # sample's latency, so the run keeps its pace and a board that comes back is used again.
            rec.sent = False
            lat = self._latencies[-20:]
            rec.hold_until = rec.t_sent + min(cfg.deadline_s, statistics.median(lat) if lat else 0.5)
            return
        for sensor, x in s.sensors.items():
            if sensor in dead:
                # A failed sensor: LINK_DOWN in its name now; a failed node further on gets its LINK_DOWNs
                # sent when its input comes (_stand_in), so nobody waits for it, nor starts waiting early.
                self._stand_in(rec, sensor)
                continue
            feed = self.dep.feeds[sensor]
            payload = np.ascontiguousarray(x, dtype=np.int8).tobytes()
            data = P.Frame(P.FrameType.DATA, P.NODE_HOST, feed.dst_id, feed.id, rec.seq, payload).encode()
            self._send(sensor, data)
            self._wire(feed.name, _DATA, len(data), len(payload), len(payload), host=True)
            rec.delivery[feed.name] = ("data", self._event())
            rec.fed_at.setdefault(sensor, time.monotonic())

    def _check_timers(self, now: float) -> None:
        cfg = self._cfg
        for rec in list(self._inflight.values()):
            if rec.hold_until is not None:
                if now >= rec.hold_until:
                    self._finish(rec, "failed", "node_silent")
            elif now - rec.t_sent > cfg.deadline_s:
                self._finish(rec, "timed_out", self._why(rec, "deadline"))
        # Watchdog: a live board that owes an answer and has sent nothing for a long time gets a PING;
        # if that goes unanswered too, the board is silent (its port may still be open: a hung board).
        for name in self.dep.nodes:
            if self.state[name] != "alive":
                self._ping_at.pop(name, None)
                continue
            last = self._last_rx.get(name, now)
            ping = self._ping_at.get(name)
            if ping is not None:
                if last >= ping:
                    del self._ping_at[name]          # it answered: alive
                elif now - ping > 1.5:
                    del self._ping_at[name]
                    self._went_silent(name, f"no frame for {now - last:.1f} s while it owed an answer, "
                                            f"and no PONG")
                    self._probe_at[name] = 0.0
                continue
            if now - last < self.watchdog_s:
                continue
            if any(name in r.fed_at and name not in r.answers and name not in r.late
                   and now - r.fed_at[name] > self.watchdog_s for r in self._inflight.values()):
                self._ping_at[name] = now
                self._ctl(name, P.FrameType.PING)
        # Probe silent boards whose port is still open (a hung board that may come back).
        for name in self.dep.nodes:
            if self.state[name] in ("silent", "probing") and self.conn.get(name) is not None:
                if now >= self._probe_at.get(name, 0.0):
                    self._ctl(name, P.FrameType.HELLO)
                    self._probe_at[name] = now + 0.5

    def run(self, samples: Sequence[SampleIn], cfg: RunConfig, *,
            progress: Callable[[RunRecord], None] | None = None,
            hooks: Mapping[int, Sequence[Callable[["Network"], None]]] | None = None,
            stop: threading.Event | None = None, abandon: threading.Event | None = None) -> RunRecord:
        """Stream ``samples`` through the boards under ``cfg``; every sample ends answered, timed out or failed.

        ``hooks[k]``: called before sample k is sent (e.g. to kill a board). ``stop``: stop sending (the
        samples in flight still finish); ``abandon``: also give up the samples in flight (interrupted).
        """
        unknown = (set(cfg.dead) - set(self.dep.nodes)) | (set(cfg.cut_links) - set(self.dep.links))
        if unknown:
            raise ValueError(f"unknown node(s)/link(s) {sorted(unknown)}")
        run = RunRecord(cfg)
        self._run, self._cfg = run, cfg
        self._rng = {}
        self._inflight = {}
        self._by_seq = {}
        self._injected = 0
        self._latencies: list[float] = []
        self._newest_answer = {}
        # RESET every board: a board that got nothing in the last run (dropped, or every input lost) still
        # expands DATA sample numbers around an old reference; a RESET names the newest one (protocol §6).
        self._reset_all()
        run.stats_before = dict(self.request_stats())
        run.t_start = time.monotonic()
        hooks = hooks or {}
        next_k = 0
        last_progress = 0.0
        try:
            while True:
                now = time.monotonic()
                stopping = stop is not None and stop.is_set()
                if abandon is not None and abandon.is_set():
                    for rec in list(self._inflight.values()):
                        self._finish(rec, "failed", "interrupted")
                    run.interrupted = True
                    break
                while not stopping and next_k < len(samples) and len(self._inflight) < cfg.window:
                    for hook in hooks.get(next_k, ()):
                        hook(self)
                        self._pump(0)
                    stopping = stop is not None and stop.is_set()
                    if stopping:
                        break
                    self._inject(next_k, samples[next_k])
                    next_k += 1
                if (next_k >= len(samples) or stopping) and not self._inflight:
                    run.interrupted = next_k < len(samples)
                    break
                self._pump(0.02)
                now = time.monotonic()
                self._check_timers(now)
                if progress is not None and now - last_progress > 0.1:
                    progress(run)
                    last_progress = now
            run.t_end = time.monotonic()
            # Late frames (outputs nobody waited for) still count for the checks and the wire tally.
            quiet_until = time.monotonic() + 0.3
            end = time.monotonic() + 1.5
            while time.monotonic() < min(quiet_until, end):
                if self._pump(0.05):
                    quiet_until = time.monotonic() + 0.3
            run.stats_after = dict(self.request_stats())
            if progress is not None:
                progress(run)
        finally:
            self._run = None
            self._inflight = {}
        return run
