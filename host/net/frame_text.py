"""Frames as readable lines: what ``pio device monitor -f resilinet`` shows (monitor/filter_resilinet.py).

:class:`FrameLines` takes the bytes a board sends, decodes them with the one frame codec
(:class:`host.net.protocol.FrameDecoder`) and gives one line per frame: HELLO (identity, clock, which cycle
counter), STATS (the counters, and compute per sample in the unit :mod:`host.net.cycle_counts` gives the
counts), ERROR (code and text), and one short line for the sample frames (DATA, LINK_DOWN, RESULT) and the
others. A frame that fails its checks is one line too, with the reason it was dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

from codegen.emulator import escape_mux
from host.net import protocol as P
from host.net.board_stats import RUNTIME_FIELDS
from host.net.cycle_counts import count_meaning, counter_name

T = P.FrameType
#: The STATS drop counters, in the order STATS carries them.
DROP_FIELDS = ("rx_truncated", "rx_oversize", "rx_crc", "rx_version", "rx_type", "rx_length", "rx_dest",
               "rx_duplicate", "rx_stale")


def _who(f: P.Frame) -> str:
    if f.src == P.NODE_IMPLIED:
        return "DATA"      # a DATA frame carries no node ids: its link says who
    who = "host" if f.src == P.NODE_HOST else f"node {f.src}"
    to = "" if f.dst == P.NODE_HOST else (" → all" if f.dst == P.NODE_BROADCAST else f" → node {f.dst}")
    return who + to


def _mhz(hz: int) -> str:
    return f"{hz / 1e6:g} MHz"


class FrameLines:
    """Bytes from one board in, one line per frame out. ``emulated``: the board runs in QEMU (its board.toml
    ``kind``), which decides what its cycle counts are; the counter and clock come from its HELLO."""

    def __init__(self, emulated: bool) -> None:
        self.emulated = emulated
        self.decoder = P.FrameDecoder()
        self.hello: dict[int, P.Hello] = {}   # node id -> its last HELLO (what its counts mean)

    def feed(self, data: bytes) -> list[str]:
        """The lines of every frame that ``data`` completes (chunk boundaries do not matter)."""
        out = []
        for status, frame in self.decoder.feed_outcomes(data):
            out.append(self.line(frame) if frame is not None else f"(frame dropped: {status.name.lower()})")
        return out

    def line(self, f: P.Frame) -> str:
        try:
            return self._line(f)
        except P.FrameError as err:   # a frame whose payload does not parse: say so, keep going
            return f"{_who(f)} {f.type.name} seq {f.seq}: malformed payload ({err})"

    def _line(self, f: P.Frame) -> str:
        head = f"{_who(f)} {f.type.name}"
        if f.type == T.HELLO:
            return f"{head} request" if not f.payload else f"{head}: {self._hello(f.src, P.Hello.unpack(f.payload))}"
        if f.type == T.STATS:
            return f"{head} request" if not f.payload else f"{head}: {self._stats(f.src, P.Stats.unpack(f.payload))}"
        if f.type == T.ERROR:
            code, text = P.parse_error(f.payload)
            return f"{head} {code}: {text}"
        if f.type == T.DATA:
            return f"DATA link {f.link} seq {f.seq} (low byte): {len(f.payload):,} B tensor"
        if f.type == T.RESULT:
            counts, tensor = P.parse_sample_payload(f.payload)
            scores = list(memoryview(tensor).cast("b")) if len(tensor) <= 16 else f"{len(tensor)} B"
            return f"{head} seq {f.seq}: {self._per_sample(f.src, counts)}, output {scores}"
        if f.type == T.LINK_DOWN:
            reason = P.parse_link_down(f.payload)
            return f"{head} link {f.link} seq {f.seq}: {getattr(reason, 'name', reason)}"
        return f"{head} seq {f.seq}" + (f" ({len(f.payload)} B)" if f.payload else "")

    def _hello(self, src: int, h: P.Hello) -> str:
        self.hello[src] = h
        m = count_meaning(h.cycle_counter, self.emulated, h.cpu_hz)
        return (f"model {h.model_hash.hex()}, firmware {'.'.join(map(str, h.fw_version))}, flash {h.flash_bytes:,} B, "
                f"arena {h.arena_bytes:,} B, clock {_mhz(h.cpu_hz)}, cycle counter {counter_name(h.cycle_counter)} "
                f"(counts are {m.label})")

    def _per_sample(self, src: int, counts: float) -> str:
        """Counts in the unit they stand for, once the node's HELLO said its counter and clock."""
        h = self.hello.get(src)
        if h is None or not h.cpu_hz:
            return f"{counts:,.0f} counts (HELLO not seen: unit unknown)"
        m = count_meaning(h.cycle_counter, self.emulated, h.cpu_hz)
        return f"{counts * m.per_count:,.0f} {m.label}"

    def _stats(self, src: int, s: P.Stats) -> str:
        drops = ", ".join(f"{f[3:]} {getattr(s, f)}" for f in DROP_FIELDS if getattr(s, f))
        text = (f"rx {s.rx_frames} frames, tx {s.tx_frames}, drops: {drops or 'none'}, UART overruns {s.rx_overrun}, "
                f"input timeouts {s.input_timeouts}, samples {s.samples}")
        extra = ", ".join(f"{f.replace('_', ' ')} {getattr(s, f)}" for f in RUNTIME_FIELDS if getattr(s, f))
        text += f", {extra}" if extra else ""
        if s.samples:
            text += f", per sample: mean {self._per_sample(src, s.cycles / s.samples)}, max " \
                    f"{self._per_sample(src, s.cycles_max)}"
        return text


@dataclass(frozen=True)
class MonitorLink:
    """What the monitor filter needs to know about the board at the other end of the port."""

    emulated: bool     # its board.toml kind: decides what its cycle counts are
    double_nul: bool   # an uploaded emulated board's UART is behind a QEMU mux: every 0x00 sent is doubled


def monitor_link(board: str | None, build: str | None, node: str | None) -> MonitorLink:
    """From a PlatformIO environment's ``custom_resilinet_board`` / ``_build`` / ``_node`` (None: not one of
    ours, e.g. ``pio device monitor -p URL`` outside a project: a real board, nothing doubled)."""
    from boards import BoardError, load_board
    from host.deploy.uploads import UploadsError, read_uploads

    try:
        emulated = load_board(board).emulated if board else False
    except BoardError:
        emulated = False
    try:
        up = read_uploads(build).get(node or "") if build else None
    except UploadsError:
        up = None
    return MonitorLink(emulated, bool(up and up.rx_buffer))


def request_bytes(kind: str, double_nul: bool = False) -> bytes:
    """An empty HELLO or STATS frame from the host to every node (each node answers the host), as sent."""
    wire = P.Frame(T[kind], P.NODE_HOST, P.NODE_BROADCAST).encode()
    return escape_mux(wire) if double_nul else wire
