"""The boards as the host talks to them: the HELLO handshake, RESET, STATS, PING, and each board's state.

:class:`Boards` opens every node's board (found by :class:`host.net.launch.BoardLauncher`: a ``--port``
pyserial URL, a detached or a freshly launched emulated board; its port in :class:`host.net.ports.PortSet`),
checks each one with a HELLO handshake (node id and model hash), RESETs it (sequence filters and slots) and
reads its STATS baseline. Its :meth:`~Boards.pump` reads whatever the ports have, handles the control frames
itself (HELLO, STATS, ERROR) and hands the sample frames (DATA, LINK_DOWN, RESULT) to the run in progress
(a :class:`BoardListener`: :class:`host.net.router.Router`).

A board is probing (port open, HELLO not yet right), alive, silent, rejected (wrong node id or model hash)
or closed. A board whose port dies (QEMU killed, USB gone) or that the router's watchdog finds hung is marked
silent (the listener is told, to settle the samples it owed) and its port reopened by the reviver; once it
answers HELLO with the right node id and model hash it is alive again.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Iterable, Protocol

from boards import load_board
from host.net import protocol as P
from host.net.board_stats import STATS_POLL_S, StatsLedger
from host.net.launch import BoardError, BoardLauncher
from host.net.ports import Connection, PortFailed, PortRevived, PortSet, open_port
from host.net.reference import Deployment

DATA, LINK_DOWN, RESULT = int(P.FrameType.DATA), int(P.FrameType.LINK_DOWN), int(P.FrameType.RESULT)
HELLO, STATS, ERROR = int(P.FrameType.HELLO), int(P.FrameType.STATS), int(P.FrameType.ERROR)
#: Sample frames go to the router; the others are the boards' control frames.
SAMPLE_FRAMES = frozenset((DATA, LINK_DOWN, RESULT))
__all__ = ["BoardError", "Boards", "BoardListener", "RxTally"]


# ----------------------------------------------------------------------------------------- boards
class BoardListener(Protocol):
    """The run in progress, as the boards' side sees it (:class:`host.net.router.Router`)."""

    def on_sample_frame(self, c: Connection, f: P.Frame, body: bytes) -> None:
        """A DATA, LINK_DOWN or RESULT frame from ``c``'s board (whatever the board's state)."""
        ...

    def on_board_event(self, name: str, kind: str, detail: str) -> None:
        """A board went silent, came back, rebooted or was rejected (for the run's event list)."""
        ...

    def on_board_lost(self, name: str, why: str) -> None:
        """The board lost what it held (silent or rebooted): settle the samples it owed."""
        ...


class RxTally(Protocol):
    """Where the bytes read during a run are counted (:class:`host.net.records.RunRecord`)."""

    uart_rx: Counter
    host_drops: dict[str, Counter]
    errors: dict[str, list[str]]
    stats: StatsLedger


class Boards:
    """The boards of a deployment, their state, and the control frames; sample frames go to ``listener``."""

    def __init__(self, dep: Deployment, launcher: BoardLauncher, *, baud: int | None = None,
                 hello_timeout: float = 8.0, log: Callable[[str], None] | None = None,
                 coalesce_s: float = 0.001) -> None:
        self.dep = dep
        self.launcher = launcher
        self.urls = launcher.urls   # node -> URL (the launcher fills it; a revived port may update it)
        self.attached = launcher.attached
        #: node -> baud rate of its port: ``baud`` (--baud) for every node, else its board's (board.toml
        #: uart.baud, what its firmware was built with); host.net.ports.open_port applies it where a port has one
        self.bauds = {n: baud or load_board(d.board).uart.baud for n, d in dep.nodes.items()}
        self.hello_timeout = hello_timeout
        self.log = log or (lambda s: None)
        self.ports = PortSet(dep.nodes, coalesce_s)
        self.conn = self.ports.conn
        # Updated in place, never replaced: the router keeps a reference.
        self.state: dict[str, str] = {n: "closed" for n in dep.nodes}
        self.hello: dict[str, P.Hello] = {}
        self.stats: dict[str, P.Stats] = {}
        #: the newest sample number sent; a RESET carries it, so a board expands the one-byte sample numbers
        #: of the DATA frames that follow around it (docs/protocol.md §6). The router advances it.
        self.sample_seq = 0
        #: the run in progress (None between runs) and where it counts the bytes read
        self.listener: BoardListener | None = None
        self.tally: RxTally | None = None
        self._stats_wait: dict[str, int] = {}
        self.reset_wait: dict[str, int] = {}
        self._reset_echo: dict[str, tuple[int, float]] = {}   # node -> (seq of its last RESET, answers until)
        self._alive_since: dict[str, float] = {}
        self._probe_at: dict[str, float] = {}
        self._stats_poll_at = 0.0
        self._ctl_seq = 0x100
        #: "<node>: <what is wrong>" of every board whose HELLO was rejected
        self.rejections: list[str] = []

    # ------------------------------------------------------------------ open / close
    def open(self) -> None:
        """Attach or launch every board, check its HELLO, RESET it and read its STATS baseline."""
        try:
            self.launcher.prepare()   # where every board comes from, before any is launched
            for name in self.dep.nodes:
                self._attach(name)
            handshake(self)
        except BaseException:
            self.close()
            raise
        self.ports.start_reviver(lambda name: self.state.get(name) == "silent", self.launcher.reopen, self.bauds)

    def close(self) -> None:
        self.ports.close()
        self.launcher.close()

    def _attach(self, name: str) -> None:
        url = self.launcher.locate(name)
        try:
            port = open_port(url, self.bauds[name], mux=self.launcher.is_mux(name))
        except Exception as err:  # noqa: BLE001
            raise BoardError(f"node {self.dep.node_label(name)}: cannot open port {url}: {err}") from err
        self.ports.add(name, port, url)
        self.state[name] = "probing"

    @property
    def last_rx(self) -> dict[str, float]:
        return self.ports.last_rx

    def kill(self, name: str) -> None:
        """``--kill``: the board's STATS first (its counts before the crash), then SIGKILL; returns once the
        host has seen its port close (so the next sample already finds it silent)."""
        if self.state[name] == "alive":
            self.request_stats(timeout=1.0, names=[name])
        self.launcher.kill(name)
        pump_until(self, lambda: self.state[name] != "alive", 2.0)

    def restart(self, name: str) -> None:
        """``--kill ...:M``: boot the board again and wait (reading) until it is back: the reviver is woken at
        once, and sample M is sent only after the board answered HELLO (or ``hello_timeout``)."""
        t0 = time.monotonic()
        self.launcher.restart(name)
        self.ports.wake(name)
        self.wait_back(name, t0, self.hello_timeout)

    def wait_back(self, name: str, since: float, timeout: float) -> bool:
        """Read and handle the ports until ``name`` has answered HELLO after ``since`` (True) or ``timeout``
        seconds passed (False): a board that was restarted (by the harness, or uploaded again) is back."""
        return pump_until(self, lambda: self._alive_since.get(name, 0.0) > since, timeout)

    # ------------------------------------------------------------------ control frames
    def ctl(self, name: str, ftype: P.FrameType) -> int:
        """Send a control frame (HELLO/STATS request, PING, RESET) to a board; returns its seq.

        A RESET's seq is the newest sample number: the board expands the one-byte sample numbers
        of the DATA frames that follow around it (docs/protocol.md §6)."""
        self._ctl_seq = (self._ctl_seq + 1) & 0xFFFF or 0x100
        seq = self.sample_seq if ftype == P.FrameType.RESET else self._ctl_seq
        c = self.conn.get(name)
        if c is not None:
            c.send(P.Frame(ftype, P.NODE_HOST, P.NODE_BROADCAST, P.LINK_NONE, seq).encode())
        return seq

    def reset(self, name: str) -> None:
        """RESET a board that (re)joins: fresh filters and slots, and the current sample number. Its answer
        is a HELLO with the RESET's seq; one that comes within 2 s is never taken for a boot HELLO."""
        seq = self.reset_wait[name] = self.ctl(name, P.FrameType.RESET)
        self._reset_echo[name] = (seq, time.monotonic() + 2.0)

    def reset_all(self) -> dict[str, str]:
        """RESET every live board and wait for the answers (:func:`reset_boards`)."""
        return reset_boards(self)

    def request_stats(self, timeout: float = 2.0, names: Iterable[str] | None = None) -> dict[str, P.Stats]:
        """STATS from every live board (or those of ``names``): the latest counters, also kept in ``self.stats``."""
        names = self.dep.nodes if names is None else names
        self._stats_wait = {n: self.ctl(n, P.FrameType.STATS) for n in names if self.state[n] == "alive"}
        end = time.monotonic() + timeout
        while self._stats_wait and time.monotonic() < end:
            self.pump(0.05)
        return {n: self.stats[n] for n in self.dep.nodes if n in self.stats}

    def check_hello(self, name: str, f: P.Frame) -> str | None:
        """None if the HELLO is the expected node's (kept in ``hello``), else what is wrong."""
        hello, problem = hello_problem(self.dep, name, f)
        if hello is not None:
            self.hello[name] = hello
        return problem

    # ------------------------------------------------------------------ the read loop
    def pump(self, timeout: float) -> int:
        """Read whatever the ports have (waiting up to ``timeout``) and handle it; returns frames handled."""
        n = 0
        for c in self.ports.ready(timeout):
            if c.closed:
                continue
            try:
                items = self.ports.read(c)
            except Exception as err:  # noqa: BLE001 -- EOF / device gone
                self._port_failed(c, f"port closed ({err})")
                continue
            name = c.node.name
            tally = self.tally
            for frame, body, status in items:
                if tally is not None:
                    tally.uart_rx[name] += len(body) + 1
                if frame is None:
                    if tally is not None:
                        tally.host_drops[name][status.name] += 1
                    continue
                n += 1
                self._on_frame(c, frame, body)
        for msg in self.ports.messages():
            if isinstance(msg, PortFailed):
                self._port_failed(msg.conn, msg.why)
            elif isinstance(msg, PortRevived):
                self._revived(msg)
        return n

    def _revived(self, msg: PortRevived) -> None:
        name = msg.name
        if self.state.get(name) == "silent" and self.conn.get(name) is None and not self.ports.closing.is_set():
            self.ports.add(name, msg.port, msg.url)
            self.urls[name] = msg.url
            self.state[name] = "probing"
            self._probe_at[name] = 0.0
        else:
            try:
                msg.port.close()
            except Exception:  # noqa: BLE001
                pass

    def _on_frame(self, c: Connection, f: P.Frame, body: bytes) -> None:
        t = f.type
        name = c.node.name
        if t in SAMPLE_FRAMES:
            if self.listener is not None:
                self.listener.on_sample_frame(c, f, body)
        elif t == HELLO:
            self._on_hello(name, f)
        elif t == STATS:
            try:
                self.stats[name] = P.Stats.unpack(f.payload)
            except P.FrameError:
                return
            if self.tally is not None:
                self.tally.stats.seen(name, self.stats[name])
            if self._stats_wait.get(name) == f.seq:
                del self._stats_wait[name]
        elif t == ERROR:
            try:
                code, text = P.parse_error(f.payload)
            except P.FrameError:
                code, text = -1, f.payload.hex()
            msg = f"0x{code:04x} {text} (seq {f.seq})"
            if self.tally is not None:
                self.tally.errors[name].append(msg)
            self.log(f"{name}: ERROR {msg}")

    def _on_hello(self, name: str, f: P.Frame) -> None:
        st = self.state[name]
        in_run = self.listener is not None
        if self.reset_wait.get(name) == f.seq:
            del self.reset_wait[name]
            return
        echo = self._reset_echo.get(name)
        if st == "alive" and echo is not None and echo[0] == f.seq and time.monotonic() < echo[1]:
            return   # a second answer to a RESET sent again
        if st in ("probing", "silent"):
            problem = self.check_hello(name, f)
            if problem is None:
                self.state[name] = "alive"
                self._alive_since[name] = time.monotonic()
                if in_run:
                    booted = f.seq == 0   # a boot HELLO (the host's own HELLOs have seq >= 0x100)
                    self._note(name, "back", f"HELLO from {self.urls[name]}" + (" (rebooted)" if booted else ""))
                    if booted and self.tally is not None:
                        self.tally.stats.rebooted(name)
                    self.reset(name)
                    self.ctl(name, P.FrameType.STATS)   # its counters now: a reboot shows as counters reset
                return
            self.state[name] = "rejected"
            self.rejections.append(f"{name}: {problem}")
            if in_run:
                self._note(name, "rejected", problem)
            self.ports.drop(name)
        elif (st == "alive" and in_run and f.seq == 0
              and time.monotonic() - self._alive_since.get(name, 0.0) > 1.0):
            # An unsolicited HELLO: the board rebooted (reset, watchdog) and lost what it held.
            problem = self.check_hello(name, f)
            self._note(name, "reset", "boot HELLO during the run" + (f"; {problem}" if problem else ""))
            if self.tally is not None:
                self.tally.stats.rebooted(name)
            self._lost(name, "board reset")
            if problem:
                self.state[name] = "rejected"
                self.ports.drop(name)
            else:
                self.reset(name)

    # ------------------------------------------------------------------ silent boards
    def _note(self, name: str, kind: str, detail: str = "") -> None:
        if self.listener is not None:
            self.listener.on_board_event(name, kind, detail)
        self.log(f"{name}: {kind} {detail}".rstrip())

    def _lost(self, name: str, why: str) -> None:
        if self.listener is not None:
            self.listener.on_board_lost(name, why)

    def _port_failed(self, c: Connection, why: str) -> None:
        name = c.node.name
        if self.conn.get(name) is not c:
            return
        self.ports.drop(name)
        if self.state[name] in ("alive", "probing"):
            self.mark_silent(name, why)

    def mark_silent(self, name: str, why: str) -> None:
        """The board stopped answering (its port closed, or the watchdog's PING went unanswered): its
        in-flight samples are settled, a port still open is probed with HELLO, a closed one reopened."""
        was = self.state[name]
        self.state[name] = "silent"
        self._probe_at[name] = 0.0
        self.ports.wake(name)   # a closed port: the reviver looks for the board at once
        if was == "alive":
            self._note(name, "silent", why)
            self._lost(name, why)

    def poll_stats(self, now: float) -> None:
        """During a run: ask every live board for STATS every ``STATS_POLL_S`` (no wait; the answers go to the
        run's :class:`~host.net.board_stats.StatsLedger`, so a reboot loses at most that much of its counts)."""
        if now < self._stats_poll_at:
            return
        self._stats_poll_at = now + STATS_POLL_S
        for name in self.dep.nodes:
            if self.state[name] == "alive":
                self.ctl(name, P.FrameType.STATS)

    def probe_silent(self, now: float) -> None:
        """HELLO to silent boards whose port is still open (a hung board that may come back)."""
        for name in self.dep.nodes:
            if self.state[name] in ("silent", "probing") and self.conn.get(name) is not None:
                if now >= self._probe_at.get(name, 0.0):
                    self.ctl(name, P.FrameType.HELLO)
                    self._probe_at[name] = now + 0.5


def pump_until(boards: Boards, done: Callable[[], bool], timeout: float) -> bool:
    """Read and handle the boards' ports until ``done()`` (True) or ``timeout`` seconds passed (False)."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= end:
            return False
        boards.pump(0.02)
        boards.probe_silent(time.monotonic())
    return True


# ----------------------------------------------------------------------------------------- handshake
def hello_problem(dep: Deployment, name: str, f: P.Frame) -> tuple[P.Hello | None, str | None]:
    """(the HELLO, None) if ``f`` is the expected HELLO of node ``name``, else (None, what is wrong)."""
    node = dep.nodes[name]
    try:
        h = P.Hello.unpack(f.payload)
    except P.FrameError as err:
        return None, f"malformed HELLO ({err})"
    problems = []
    if f.src != node.id:
        other = dep.node_by_id.get(f.src, "?")
        problems.append(f"it is node id {f.src} ({other}), expected {node.id}")
    if h.model_hash != node.model_hash:
        problems.append(f"model hash {h.model_hash.hex()}, expected {node.model_hash.hex()} "
                        f"(sha256 of {node.name}.tflite)")
    return (None, ", ".join(problems)) if problems else (h, None)


def reset_boards(boards: Boards) -> dict[str, str]:
    """RESET every live board and wait for their HELLOs; returns those that did not answer, with what was
    seen. A board that has not answered after 1 s gets the RESET again (it is idempotent before a run's
    first sample); one still silent halfway through the wait gets its port closed and reopened once (a
    connection that stopped carrying bytes), then the RESET again."""
    boards.reset_wait.clear()
    for name in boards.dep.nodes:
        if boards.state[name] == "alive":
            boards.reset(name)
    start = time.monotonic()
    wait = max(3.0, boards.hello_timeout)  # a loaded machine can stall a QEMU for seconds
    again, reopened = start + 1.0, {}
    while boards.reset_wait and time.monotonic() < start + wait:
        boards.pump(0.05)
        now = time.monotonic()
        if boards.reset_wait and now >= again:
            for name in list(boards.reset_wait):
                if name not in reopened and now >= start + wait / 2:
                    reopened[name] = reconnect(boards, name)
                if boards.conn.get(name) is not None:
                    boards.reset(name)
            again = now + 1.0
    return {name: reopened.get(name, "no answer") for name in boards.reset_wait}


def reconnect(boards: Boards, name: str) -> str:
    """Close ``name``'s port and open it again where its board is now; returns what happened."""
    boards.ports.drop(name)
    where = boards.launcher.reopen(name)
    if where is None:
        return "its board no longer runs"
    try:
        port = open_port(where[0], boards.bauds[name], timeout=1.0, mux=where[1])
    except Exception as err:  # noqa: BLE001 -- any failure to open is the answer
        return f"reopening {where[0]} failed: {err}"
    boards.ports.add(name, port, where[0])
    boards.urls[name] = where[0]
    return "no answer, also after reopening its port"


def handshake(boards: Boards) -> None:
    """HELLO to every board until each answers (or the timeout), then RESET and STATS; raises BoardError
    naming every bad board and its port (one line)."""
    deadline = time.monotonic() + boards.hello_timeout
    want = set(boards.dep.nodes)
    wrong: dict[str, str] = {}
    next_probe = 0.0
    while want and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_probe:
            for name in want:
                boards.ctl(name, P.FrameType.HELLO)
            next_probe = now + 0.3
        boards.pump(0.05)
        for name in list(want):
            if boards.state[name] == "alive":
                want.discard(name)
            elif boards.state[name] == "rejected":
                want.discard(name)
                hits = [e for e in boards.rejections if e.startswith(name + ":")]
                wrong[name] = hits[-1].split(":", 1)[1].strip() if hits else "rejected"
            elif boards.conn[name] is None:
                want.discard(name)
                wrong[name] = "the port closed"
    urls, label = boards.urls, boards.dep.node_label
    problems = [f"node {n} on {urls[n]}: {why}" for n, why in wrong.items()]
    problems += [f"node {n} on {urls[n]}: no HELLO within {boards.hello_timeout:.0f} s (is the board powered and "
                 f"running this build's firmware for {label(n)}? right port and baud rate {boards.bauds[n]}?)"
                 for n in sorted(want)]
    if problems:
        raise BoardError("board check failed: " + "; ".join(problems))
    # RESET: fresh sequence filters and slots on every board (boards may have run before), then STATS.
    silent = boards.reset_all()
    if silent:
        raise BoardError("no HELLO after RESET from " + ", ".join(f"node {n} on {urls[n]} ({why})"
                                                                  for n, why in silent.items()))
    boards.request_stats()
