"""The host as the network: samples scheduled into the boards, every frame routed by the host.

:class:`Network` opens the boards of a deployment (:mod:`host.net.transport`, which finds them with
:mod:`host.net.launch`) and streams samples through them with :meth:`Network.run`; a :class:`Router` does
the routing of one run:

* the host feeds each sensor node its int8 features (DATA on the sensor link, ``src`` = 0);
* every DATA/LINK_DOWN a board sends on a link is forwarded, byte for byte, to the board at the other
  end — unless a fault policy (:mod:`host.net.faults`) says otherwise: the producer is down (the host sends
  LINK_DOWN in its name, so the receiver does not wait for its deadline), or the frame is to be replaced by
  LINK_DOWN (a cut link), discarded (loss: the receiver's deadline decides) or altered (corruption: one bit
  flipped, COBS framing kept, so the receiver's CRC check drops it and its STATS count it);
* the final node's RESULT (or its LINK_DOWN to the host) ends a sample; so does the host deadline.

Frames of one link come from one board's port and leave through one port in order: per-link order is
preserved. At most ``window`` samples are in flight (the nodes have 3 slots).

A board that goes silent (:meth:`host.net.transport.Boards.mark_silent`: its port died, or the
:class:`Watchdog`'s PING went unanswered) gets LINK_DOWN in its name (reason 3, node failed) for the samples
it owed, or they fail at once when no path is left; later samples treat it as failed until it is back.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from host.net import protocol as P
from host.net.faults import FrameAction, Faults, build_faults
from host.net.launch import BoardLauncher, PowerSwitch
from host.net.link_pack import PackError
from host.net.ports import Connection
from host.net.records import BoardEvent, RunConfig, RunRecord, SampleIn, SampleRecord, SettledSample, reason_of
from host.net.reference import Deployment, LinkInfo
from host.net.transport import DATA, LINK_DOWN, RESULT, Boards

#: Called with the network before a given sample is sent (``Network.run``'s ``hooks``).
Hook = Callable[["Network"], None]
#: Checks a finished sample for good and returns what is kept of it (``Network.run``'s ``settle``).
Settle = Callable[[SampleRecord], SettledSample]
#: A finished sample is settled (checked, and its tensors let go) once this many newer ones were sent: no
#: frame of it comes any more. A board forgets a sample 32 newer ones after it (the runtime drops its inputs
#: as late), and a DATA frame carries one byte of its sample number, read as the sent sample nearest the
#: newest one: from 128 behind it could not be told from a newer sample's anyway.
SETTLE_AFTER = 128


class Router:
    """One run's routing: sends the samples in, forwards the boards' frames, ends every sample once.

    It is the boards' :class:`~host.net.transport.BoardListener` while the run lasts."""

    def __init__(self, dep: Deployment, boards: Boards, run: RunRecord, faults: Faults,
                 settle: Settle | None = None) -> None:
        self.dep = dep
        self.boards = boards
        self.run = run
        self.faults = faults
        self.deadline_s = run.config.deadline_s
        self.inflight: dict[int, SampleRecord] = {}      # seq -> samples not yet ended
        self._by_seq: dict[int, SampleRecord] = {}       # seq -> every sample of the run (late frames too)
        self._injected: int | None = None                # k of the newest sample sent (board events)
        self._settle = settle
        self._unsettled: deque[SampleRecord] = deque()   # samples sent and not settled, oldest first
        self._latencies: deque[float] = deque(maxlen=20)  # the newest answers' (a failed sample's pace)
        self._newest_answer: dict[str, int] = {}         # node -> newest seq it answered
        self._event_no = 0
        self._state = boards.state                       # the boards update these in place
        self._conn = boards.conn
        self._link_by_id = dep.link_by_id
        self._final = dep.final_node

    # ------------------------------------------------------------------ scheduling
    def inject(self, k: int, s: SampleIn) -> None:
        """Send sample ``k`` to the sensor nodes (or fail it at once if nothing could answer)."""
        seq = self.boards.sample_seq = (self.boards.sample_seq + 1) & 0xFFFF
        silent = {n for n in self.dep.nodes if self._state[n] != "alive"}
        down = self.faults.nodes_down(k)
        dead = frozenset(down | silent)
        rec = SampleRecord(k, s.index, s.label, seq, time.monotonic(), dead, set(silent - down))
        self.run.records.append(rec)
        self._by_seq[rec.seq] = rec
        self._unsettled.append(rec)
        self._injected = k
        self.inflight[rec.seq] = rec
        if rec.silent and not self.dep.has_path(dead, self.faults.links_cut(k)):
            # Nothing can answer: failed, without sending. It holds its window slot for about one
            # sample's latency, so the run keeps its pace and a board that comes back is used again.
            rec.sent = False
            lat = list(self._latencies)
            rec.hold_until = rec.t_sent + min(self.deadline_s, statistics.median(lat) if lat else 0.5)
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
            self.run.wire[feed.name].add(DATA, len(data), len(payload), len(payload), True)
            rec.delivery[feed.name] = ("data", self._event())
            rec.fed_at.setdefault(sensor, time.monotonic())

    def check_deadlines(self, now: float) -> None:
        for rec in list(self.inflight.values()):
            if rec.hold_until is not None:
                if now >= rec.hold_until:
                    self._finish(rec, "failed", "node_silent")
            elif now - rec.t_sent > self.deadline_s:
                self._finish(rec, "timed_out", reason_of(rec, "deadline"))

    def settle_old(self) -> None:
        """Settle the finished samples that SETTLE_AFTER newer ones were sent after, oldest first (so they
        are checked in the order they were sent)."""
        q = self._unsettled
        while q and q[0].outcome is not None and (self._injected or 0) - q[0].k >= SETTLE_AFTER:
            self._settle_one(q.popleft())

    def settle_all(self) -> None:
        """The run is over (its late frames read): settle every sample still open, in order."""
        while self._unsettled:
            self._settle_one(self._unsettled.popleft())

    def _settle_one(self, rec: SampleRecord) -> None:
        if self._settle is None:
            return   # nobody checks the samples as they go (a bare Router): keep them whole
        if self._by_seq.get(rec.seq) is rec:
            del self._by_seq[rec.seq]   # a frame of it from now on is a stray one
        self.run.records[rec.k] = self._settle(rec)

    def abandon_all(self) -> None:
        """Give up the samples in flight (a second Ctrl-C)."""
        for rec in list(self.inflight.values()):
            self._finish(rec, "failed", "interrupted")

    def _finish(self, rec: SampleRecord, outcome: str, reason: str | None = None) -> None:
        rec.outcome = outcome
        rec.reason = reason
        rec.t_done = time.monotonic()
        self.inflight.pop(rec.seq, None)
        if outcome == "answered":
            self._latencies.append(rec.t_done - rec.t_sent)

    # ------------------------------------------------------------------ BoardListener
    def on_board_event(self, name: str, kind: str, detail: str) -> None:
        self.run.events.append(BoardEvent(time.monotonic() - self.run.t_start, name, kind, self._injected, detail))

    def on_board_lost(self, name: str, why: str) -> None:
        """The board lost what it held: LINK_DOWN in its name for the samples it still owed."""
        node = self.dep.nodes[name]
        for rec in list(self.inflight.values()):
            if name in rec.dead or rec.hold_until is not None:
                continue
            rec.silent.add(name)
            owed: list[str | None] = [l for l in node.links_out if l not in rec.delivery]
            if node.result and rec.outcome is None:
                owed.append(None)
            if not owed:
                continue
            if not self.dep.has_path(set(rec.dead) | {name}, self.faults.links_cut(rec.k)):
                self._finish(rec, "failed", "node_silent")
                continue
            for link in owed:
                if link is not None:
                    self._send_down(rec, self.dep.links[link], P.LinkDownReason.NODE_FAILED, "node_down")

    def on_sample_frame(self, c: Connection, f: P.Frame, body: bytes) -> None:
        name = c.node.name
        if self._state[name] != "alive":
            self.run.stray_frames += 1
            return
        # A DATA frame carries the low byte of its sample number: the samples in flight are the newest
        # few, so the frame's is the number nearest the newest one sent (exact for frames < 128 samples late).
        seq = P.seq_expand(self.boards.sample_seq, f.seq) if f.type == DATA else f.seq
        rec = self._by_seq.get(seq)
        if f.link == P.LINK_NONE:  # the final node: RESULT or LINK_DOWN to the host
            self._on_final(name, f, len(body) + 1, rec)
            return
        link = self._link_by_id.get(f.link)
        if link is None or link.src != name or f.type == RESULT:
            self.run.stray_frames += 1
            return
        tensor = f.payload if f.type == DATA else b""
        self.run.wire[link.name].add(f.type, len(body) + 1, len(f.payload), len(tensor))
        if link.bits != 8 and tensor:
            try:  # a packed tensor is checked as the int8 codes the consumer computes with
                tensor = link.unpack(tensor)
            except PackError:
                pass  # kept as sent: the check reports its size against the reference's
        if rec is None:
            self.run.stray_frames += 1
            return
        ev = self._event()
        self._answered(rec, name, ev)
        if f.type == DATA:
            rec.outputs[link.name] = tensor
        else:
            rec.downs[link.name] = f.payload[0] if f.payload else 0
        self._route(rec, link, f, body, ev)

    # ------------------------------------------------------------------ routing
    def _on_final(self, name: str, f: P.Frame, wire: int, rec: SampleRecord | None) -> None:
        if name != self._final or f.type == DATA:
            self.run.stray_frames += 1   # only the final node talks to the host, with RESULT or LINK_DOWN
            return
        key = f"{name}->host"
        tensor = b""
        cycles = 0
        if f.type == RESULT:
            try:
                cycles, tensor = P.parse_sample_payload(f.payload)
            except P.FrameError as err:
                # Too short for its cycle count: a bad frame from this board (counted as the host's decoder
                # counts the frames it drops), not an answer.
                self.run.host_drops[name][err.status.name] += 1
                return
        self.run.wire[key].add(f.type, wire, len(f.payload), len(tensor))
        if rec is None:
            self.run.stray_frames += 1
            return
        self._answered(rec, name, self._event())
        if f.type == RESULT:
            rec.outputs[key] = tensor
            rec.cycles.setdefault(name, cycles)
            if rec.outcome is None:
                self._finish(rec, "answered")
        else:
            rec.downs[key] = f.payload[0] if f.payload else 0
            if rec.outcome is None:
                self._finish(rec, "failed", reason_of(rec, "no_input"))

    def _route(self, rec: SampleRecord, link: LinkInfo, f: P.Frame, body: bytes, ev: int) -> None:
        """Forward a producer's frame to the consumer, or do what the fault policies say instead."""
        done = rec.delivery.get(link.name)
        if done is not None and done[0] == "node_down":
            return  # the host already answered for this producer
        if link.dst in rec.dead or self._state[link.dst] != "alive":
            rec.delivery[link.name] = ("consumer_dead", ev)
            self._stand_in(rec, link.dst)
            return
        verdict = self.faults.judge(rec.k, link, body)
        if verdict is not None:
            if verdict.action is FrameAction.LINK_DOWN:
                self._send_down(rec, link, verdict.down_reason, verdict.label)
                return
            if verdict.action is FrameAction.ALTER and self._send(link.dst, verdict.data):
                self.run.corrupted_to[link.dst] += 1
            rec.delivery[link.name] = (verdict.label, ev)
            return
        self._send(link.dst, body + b"\x00")
        rec.delivery[link.name] = ("data" if f.type == DATA else "down", ev)
        rec.fed_at.setdefault(link.dst, time.monotonic())
        newest = self._newest_answer.get(link.dst)
        if newest is not None and link.dst not in rec.answers and P.seq_diff(rec.seq, newest) <= -32:
            # The consumer computed 32 newer samples since: it no longer knows this one and drops the input
            # as late. (A sample overtaken by fewer is still open there and takes the input.)
            rec.late.add(link.dst)
            rec.late_links.add(link.name)
            self.run.late_inputs[link.dst] += 1

    def _send(self, dst: str, data: bytes) -> bool:
        c = self._conn.get(dst)
        if c is None or self._state[dst] != "alive":
            return False
        c.send(data)
        self.run.uart_tx[dst] += len(data)
        return True

    def _send_down(self, rec: SampleRecord, link: LinkInfo, reason: int, what: str) -> None:
        """LINK_DOWN on ``link`` in its producer's name (one sequence stream per (src, link))."""
        ev = self._event()
        if link.dst in rec.dead or self._state[link.dst] != "alive":
            rec.delivery[link.name] = ("consumer_dead", ev)
            self._stand_in(rec, link.dst)
            return
        data = P.Frame(P.FrameType.LINK_DOWN, link.src_id, link.dst_id, link.id, rec.seq, bytes([int(reason)])).encode()
        self._send(link.dst, data)
        self.run.wire[link.name].add(LINK_DOWN, len(data), 1, 0, True)
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

    def _answered(self, rec: SampleRecord, name: str, ev: int) -> None:
        if name not in rec.answers:
            rec.answers[name] = ev
            newest = self._newest_answer.get(name)
            if newest is None or P.seq_diff(rec.seq, newest) > 0:
                self._newest_answer[name] = rec.seq

    def _event(self) -> int:
        """Event numbers order what the host did and what the boards answered, within a run."""
        self._event_no += 1
        return self._event_no


class Watchdog:
    """A live board that owes an answer and has sent nothing for ``quiet_s`` gets a PING; if that goes
    unanswered for 1.5 s too, the board is silent (its port may still be open: a hung board)."""

    def __init__(self, boards: Boards, quiet_s: float) -> None:
        self.boards = boards
        self.quiet_s = quiet_s
        self._ping_at: dict[str, float] = {}

    def check(self, now: float, inflight: Iterable[SampleRecord]) -> None:
        boards = self.boards
        for name in boards.dep.nodes:
            if boards.state[name] != "alive":
                self._ping_at.pop(name, None)
                continue
            last = boards.last_rx.get(name, now)
            ping = self._ping_at.get(name)
            if ping is not None:
                if last >= ping:
                    del self._ping_at[name]          # it answered: alive
                elif now - ping > 1.5:
                    del self._ping_at[name]
                    boards.mark_silent(name, f"no frame for {now - last:.1f} s while it owed an answer, "
                                             f"and no PONG")
                continue
            if now - last < self.quiet_s:
                continue
            if any(name in r.fed_at and name not in r.answers and name not in r.late
                   and now - r.fed_at[name] > self.quiet_s for r in inflight):
                self._ping_at[name] = now
                boards.ctl(name, P.FrameType.PING)


class Network:
    """The boards of one deployment and the host that wires them together."""

    def __init__(self, dep: Deployment, *, ports: Mapping[str, str] | None = None, baud: int | None = None,
                 hello_timeout: float = 8.0, boards_dir: Path | None = None,
                 log: Callable[[str], None] | None = None, watchdog_s: float | None = None,
                 coalesce_s: float = 0.001, power: Mapping[str, PowerSwitch] | None = None) -> None:
        self.dep = dep
        launcher = BoardLauncher(dep, ports, boards_dir, power)
        self.boards = Boards(dep, launcher, baud=baud, hello_timeout=hello_timeout, log=log, coalesce_s=coalesce_s)
        quiet_s = watchdog_s if watchdog_s is not None else max(4.0, max(3, dep.max_depth) * dep.board_deadline_ms / 1000 + 1)
        self.watchdog = Watchdog(self.boards, quiet_s)

    def __enter__(self) -> "Network":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> "Network":
        """Attach or launch every board, check its HELLO, RESET it and read its STATS baseline."""
        self.boards.open()
        return self

    def close(self) -> None:
        self.boards.close()

    def run(self, samples: Sequence[SampleIn], cfg: RunConfig, *,
            progress: Callable[[RunRecord], None] | None = None,
            hooks: Mapping[int, Sequence[Hook]] | None = None,
            stop: threading.Event | None = None, abandon: threading.Event | None = None,
            settle: Settle | None = None) -> RunRecord:
        """Stream ``samples`` through the boards under ``cfg``; every sample ends answered, timed out or failed.

        ``hooks[k]``: called before sample k is sent (before the faults' board actions). ``stop``: stop
        sending (the samples in flight still finish); ``abandon``: also give up the samples in flight
        (interrupted). ``settle``: checks each sample once no frame of it can come any more (in the order
        they were sent) and returns what ``run.records`` keeps of it; without it every record is kept whole.
        """
        unknown = (set(cfg.dead) - set(self.dep.nodes)) | (set(cfg.cut_links) - set(self.dep.links))
        if unknown:
            raise ValueError(f"unknown node(s)/link(s) {sorted(unknown)}")
        run = RunRecord(cfg)
        router = Router(self.dep, self.boards, run, build_faults(cfg, self.dep), settle)
        self.boards.listener, self.boards.tally = router, run
        try:
            run.t_start = time.monotonic()   # before the RESET: a board event during it is timed from here
            # RESET every board: a board that got nothing in the last run (dropped, or every input lost) still
            # expands DATA sample numbers around an old reference; a RESET names the newest one (protocol §6).
            self.boards.reset_all()
            run.stats_before = dict(self.boards.request_stats())
            run.stats.begin(run.stats_before)
            run.t_stream = time.monotonic()
            self._stream(router, samples, hooks or {}, progress, stop, abandon)
            run.t_end = time.monotonic()
            # Late frames (outputs nobody waited for) still count for the checks and the wire tally.
            quiet_until = time.monotonic() + 0.3
            end = time.monotonic() + 1.5
            while time.monotonic() < min(quiet_until, end):
                if self.boards.pump(0.05):
                    quiet_until = time.monotonic() + 0.3
            router.settle_all()
            run.stats_after = dict(self.boards.request_stats())
            if progress is not None:
                progress(run)
        finally:
            self.boards.listener, self.boards.tally = None, None
        return run

    def _stream(self, router: Router, samples: Sequence[SampleIn], hooks: Mapping[int, Sequence[Hook]],
                progress: Callable[[RunRecord], None] | None, stop: threading.Event | None,
                abandon: threading.Event | None) -> None:
        """Keep ``window`` samples in flight until all are sent and ended (or stopped / abandoned)."""
        run, window = router.run, router.run.config.window
        next_k = 0
        last_progress = 0.0
        while True:
            stopping = stop is not None and stop.is_set()
            if abandon is not None and abandon.is_set():
                router.abandon_all()
                run.interrupted = True
                return
            while not stopping and next_k < len(samples) and len(router.inflight) < window:
                self._before_sample(router, next_k, hooks)
                stopping = stop is not None and stop.is_set()
                if stopping:
                    break
                router.inject(next_k, samples[next_k])
                next_k += 1
            if (next_k >= len(samples) or stopping) and not router.inflight:
                run.interrupted = next_k < len(samples)
                return
            self.boards.pump(0.02)
            now = time.monotonic()
            router.check_deadlines(now)
            router.settle_old()
            self.watchdog.check(now, router.inflight.values())
            self.boards.probe_silent(now)
            self.boards.poll_stats(now)
            if progress is not None and now - last_progress > 0.1:
                progress(run)
                last_progress = now

    def _before_sample(self, router: Router, k: int, hooks: Mapping[int, Sequence[Hook]]) -> None:
        """The caller's hooks, then the faults' board actions (kill, restart), each followed by a read."""
        for hook in hooks.get(k, ()):
            hook(self)
            self.boards.pump(0)
        for action in router.faults.board_actions(k):
            action(self.boards)
            self.boards.pump(0)
