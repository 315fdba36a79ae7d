"""The link protocol: the one frame codec of the host (see docs/protocol.md).

Frame on the wire::

    COBS( header[8] | payload[len] | crc16_be[2] )  0x00     control and RESULT/LINK_DOWN frames
    COBS( 0x80|link | seq8 | tensor | crc16_be[2] )  0x00     DATA: the link tensors (2-byte header)

    header: ver<<4|type, src, dst, link, seq (u16 LE), len (u16 LE)   (version 3: one byte per node id)

A DATA frame carries only what the link table cannot tell: the link id, the low
byte of the sample number (the receiver expands it, ``seq_expand``) and the tensor.
Its source and destination are the link's ends, its length is the frame's.

``firmware/link/link_protocol.c`` implements the same format for the boards;
both are checked against ``tests/vectors/protocol_vectors.json``.  Status codes
and frame types have the same numbers on both sides.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Iterable, Iterator

#: Bytes-like input; numpy arrays work too wherever the buffer protocol is used.
Buffer = bytes | bytearray | memoryview

PROTOCOL_VERSION = 3
HEADER_LEN = 8
DATA_HEADER_LEN = 2  # 0x80 | link, seq & 0xFF
DATA_FLAG = 0x80  # first byte of a DATA frame; a header's version nibble is < 8
DATA_LINK_MAX = 0x7F
CRC_LEN = 2
MAX_PAYLOAD = 2048
CYCLES_LEN = 4
RAW_MAX = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
MIN_FRAME = HEADER_LEN + CRC_LEN
MIN_DATA_FRAME = DATA_HEADER_LEN + 1 + CRC_LEN  # a DATA frame carries at least one tensor byte

NODE_HOST = 0
NODE_MAX = 254  # boards are 1..254: a node id is one byte on the wire since version 3
NODE_BROADCAST = 255
# Not wire values: every byte value is an id on the wire, so these lie above 255 to stay distinct.
NODE_ANY = 0x100  # decoder setting: accept every destination (the router)
NODE_IMPLIED = 0x101  # src/dst of a decoded DATA frame: not on the wire, the link's ends
LINK_NONE = 0xFF

SEQ_MODULUS = 1 << 16
SEQ_STALE_WINDOW = 256

CRC16_INIT = 0xFFFF
CRC16_POLY = 0x1021
COBS_MAX_RUN = 254


class FrameType(IntEnum):
    HELLO = 1
    STATS = 2
    DATA = 3
    LINK_DOWN = 4
    RESULT = 5
    PING = 6
    PONG = 7
    RESET = 8
    ERROR = 9


_KNOWN_TYPES = frozenset(int(t) for t in FrameType)


class LinkStatus(IntEnum):
    """Outcomes of the decoder and the sequence filter (same numbers as link_status_t)."""

    OK = 0
    NEED_MORE = 1
    FRAME_READY = 2
    TRUNCATED = 3
    OVERSIZE = 4
    CRC = 5
    VERSION = 6
    TYPE = 7
    LENGTH = 8
    DEST = 9
    DUPLICATE = 10
    STALE = 11
    ARG = 12
    NO_SPACE = 13


#: The reasons for which a received frame is dropped.
DROP_REASONS: tuple[LinkStatus, ...] = tuple(
    s for s in LinkStatus if LinkStatus.TRUNCATED <= s <= LinkStatus.STALE
)


class LinkDownReason(IntEnum):
    UNSPECIFIED = 0
    TIMEOUT = 1  # the router gave up waiting for the producer
    UPSTREAM = 2  # the producer's own inputs were down
    NODE_FAILED = 3  # the producer is known to be dead or resetting


class FrameError(ValueError):
    """A frame that must be dropped; ``status`` says why."""

    def __init__(self, status: LinkStatus, message: str = "") -> None:
        super().__init__(message or status.name.lower())
        self.status = status


# ---- CRC-16/CCITT-FALSE -------------------------------------------------------


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC16_POLY) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16_ccitt(data: Buffer, crc: int = CRC16_INIT) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0."""
    table = _CRC16_TABLE
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


# ---- COBS ---------------------------------------------------------------------


def cobs_encode(data: Buffer) -> bytes:
    """COBS-encode ``data`` (no delimiter); a final 254-byte run gets no 0x01 block."""
    data = bytes(data)
    out = bytearray()
    pos = 0
    n = len(data)
    while True:
        zero = data.find(0, pos, pos + COBS_MAX_RUN)
        end = zero if zero >= 0 else min(n, pos + COBS_MAX_RUN)
        out.append(end - pos + 1)
        out += data[pos:end]
        if zero >= 0:
            pos = zero + 1  # the 0x00 is implied; a final 0x01 block follows even at the end
        elif end == n:
            return bytes(out)
        else:
            pos = end  # full 254-byte block, more data follows


def _cobs_decode_lenient(body: bytes) -> tuple[bytes, bool]:
    """Decode a zero-free body; returns (bytes, complete) where an incomplete
    body (ended inside a block) still yields what was decoded, as the byte-wise C
    decoder would have stored it."""
    out = bytearray()
    pos = 0
    n = len(body)
    while pos < n:
        code = body[pos]
        pos += 1
        block = body[pos : pos + code - 1]
        out += block
        pos += len(block)
        if len(block) < code - 1:
            return bytes(out), False
        if code < 0xFF and pos < n:
            out.append(0)
    return bytes(out), n > 0


def cobs_decode(body: Buffer) -> bytes:
    """Decode one COBS body (no delimiter); raises FrameError(TRUNCATED) if malformed."""
    body = bytes(body)
    if 0 in body:
        raise ValueError("a COBS body cannot contain 0x00")
    data, complete = _cobs_decode_lenient(body)
    if not complete:
        raise FrameError(LinkStatus.TRUNCATED, "COBS body ends inside a block")
    return data


# ---- Frames -------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    type: FrameType
    src: int
    dst: int
    link: int = LINK_NONE
    seq: int = 0
    payload: bytes = b""

    def encode(self) -> bytes:
        return encode_frame(self)


def _pack_header(version: int, type_: int, src: int, dst: int, link: int, seq: int, length: int) -> bytes:
    """Header bytes without any validation (the test vectors need illegal ones)."""
    return struct.pack("<BBBBHH", (version << 4) | type_, src, dst, link, seq, length)


def _encode_raw(raw: bytes) -> bytes:
    """Append the CRC to an unstuffed header+payload, stuff it, add the delimiter."""
    crc = crc16_ccitt(raw)
    return cobs_encode(raw + crc.to_bytes(2, "big")) + b"\x00"


def _encode_data(frame: Frame) -> bytes:
    if not 0 <= frame.link <= DATA_LINK_MAX:
        raise ValueError(f"DATA link {frame.link} outside 0..{DATA_LINK_MAX}")
    if not 0 <= frame.seq < SEQ_MODULUS:
        raise ValueError(f"seq {frame.seq} outside 0..65535")
    payload = bytes(frame.payload)
    if not 1 <= len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"DATA tensor of {len(payload)} bytes outside 1..{MAX_PAYLOAD}")
    return _encode_raw(bytes([DATA_FLAG | frame.link, frame.seq & 0xFF]) + payload)


def encode_frame(frame: Frame) -> bytes:
    """The bytes to send for ``frame``, trailing 0x00 delimiter included.

    DATA frames go out in their 2-byte-header form: ``src`` and ``dst`` are not sent
    and only the low byte of ``seq`` is."""
    if frame.type == FrameType.DATA:
        return _encode_data(frame)
    if frame.type not in _KNOWN_TYPES:
        raise ValueError(f"unknown frame type {frame.type!r}")
    if not 0 <= frame.src <= NODE_MAX:
        raise ValueError(f"src {frame.src} outside 0..{NODE_MAX}")
    if not 0 <= frame.dst <= NODE_BROADCAST:
        raise ValueError(f"dst {frame.dst} outside 0..{NODE_BROADCAST}")
    if not 0 <= frame.link <= 0xFF:
        raise ValueError(f"link {frame.link} outside 0..255")
    if not 0 <= frame.seq < SEQ_MODULUS:
        raise ValueError(f"seq {frame.seq} outside 0..65535")
    payload = bytes(frame.payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    header = _pack_header(PROTOCOL_VERSION, frame.type, frame.src, frame.dst, frame.link, frame.seq, len(payload))
    return _encode_raw(header + payload)


def _check_body(body: bytes, local_node: int, raw_cap: int) -> Frame:
    """Validate one zero-free body in the order the C decoder uses."""
    raw, complete = _cobs_decode_lenient(body)
    data = bool(raw) and raw[0] & DATA_FLAG
    if len(raw) > raw_cap - (HEADER_LEN - DATA_HEADER_LEN if data else 0):
        raise FrameError(LinkStatus.OVERSIZE)  # the same payload limit for both forms
    if not complete or len(raw) < (MIN_DATA_FRAME if data else MIN_FRAME):
        raise FrameError(LinkStatus.TRUNCATED)
    if crc16_ccitt(raw) != 0:  # CRC over data + big-endian CRC leaves 0
        raise FrameError(LinkStatus.CRC)
    if data:
        return Frame(FrameType.DATA, NODE_IMPLIED, NODE_IMPLIED, raw[0] & DATA_LINK_MAX, raw[1],
                     raw[DATA_HEADER_LEN:-CRC_LEN])
    ver_type, src, dst, link, seq, length = struct.unpack_from("<BBBBHH", raw)
    if ver_type >> 4 != PROTOCOL_VERSION:
        raise FrameError(LinkStatus.VERSION, f"version {ver_type >> 4}")
    type_ = ver_type & 0x0F
    if type_ not in _KNOWN_TYPES or type_ == FrameType.DATA:  # DATA exists only in its short form
        raise FrameError(LinkStatus.TYPE, f"type {type_}")
    if length != len(raw) - MIN_FRAME:
        raise FrameError(LinkStatus.LENGTH, f"header says {length}, got {len(raw) - MIN_FRAME}")
    if local_node != NODE_ANY and dst not in (local_node, NODE_BROADCAST):
        raise FrameError(LinkStatus.DEST, f"for node {dst}")
    return Frame(FrameType(type_), src, dst, link, seq, raw[HEADER_LEN:-CRC_LEN])


def decode_frame(encoded: Buffer, local_node: int = NODE_ANY, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Decode one encoded frame (its trailing delimiter is optional); raises FrameError."""
    body = bytes(encoded)
    if body.endswith(b"\x00"):
        body = body[:-1]
    if not body or 0 in body:
        raise ValueError("expected exactly one non-empty frame")
    return _check_body(body, local_node, HEADER_LEN + min(max_payload, MAX_PAYLOAD) + CRC_LEN)


# ---- Sequence numbers ---------------------------------------------------------


def seq_diff(a: int, b: int) -> int:
    """a - b as a signed distance in [-32768, 32767] (serial-number arithmetic)."""
    d = (a - b) % SEQ_MODULUS
    return d - SEQ_MODULUS if d >= SEQ_MODULUS // 2 else d


def seq_expand(ref: int, seq8: int) -> int:
    """The sample number nearest ``ref`` whose low byte is ``seq8`` (a DATA frame's seq).

    ``ref`` is a number the receiver knows to be close: the last sample it accepted
    (or the RESET's seq).  Exact while fewer than 128 samples separate the two."""
    d = (seq8 - ref) & 0xFF
    return (ref + (d - 0x100 if d >= 0x80 else d)) & 0xFFFF


def seq_filter_step(last: int | None, seq: int) -> LinkStatus:
    """Verdict on ``seq`` given the last accepted one (None: nothing accepted yet)."""
    if last is None:
        return LinkStatus.OK
    d = seq_diff(seq, last)
    if d == 0:
        return LinkStatus.DUPLICATE
    if -SEQ_STALE_WINDOW <= d < 0:
        return LinkStatus.STALE
    return LinkStatus.OK  # newer, or so far back that the sender restarted its numbering


#: Frame types that belong to one sample and go through the sequence filter.
SEQUENCED_TYPES = frozenset({FrameType.DATA, FrameType.LINK_DOWN, FrameType.RESULT})


class SeqFilter:
    """Drops duplicate and stale frames, per (source, link)."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, int], int] = {}

    def check(self, src: int, link: int, seq: int) -> LinkStatus:
        """OK (and remember ``seq``), DUPLICATE or STALE."""
        verdict = seq_filter_step(self._last.get((src, link)), seq)
        if verdict is LinkStatus.OK:
            self._last[(src, link)] = seq
        return verdict

    def check_frame(self, frame: Frame) -> LinkStatus:
        """The filter's verdict on a decoded frame.  DATA frames pass: their one-byte seq must first be
        expanded (``seq_expand``) by a receiver that knows the link's source, which then calls ``check``."""
        if frame.type not in SEQUENCED_TYPES or frame.type == FrameType.DATA:
            return LinkStatus.OK
        return self.check(frame.src, frame.link, frame.seq)

    def reset(self, src: int | None = None) -> None:
        """Forget all state, or that of one source (e.g. after its RESET or HELLO)."""
        if src is None:
            self._last.clear()
        else:
            for key in [k for k in self._last if k[0] == src]:
                del self._last[key]


# ---- Stream decoder -----------------------------------------------------------


class FrameDecoder:
    """Turns a received byte stream into frames, counting every drop by reason.

    Feed it whatever the serial port returns; chunk boundaries do not matter.
    With a ``seq_filter``, DATA/LINK_DOWN/RESULT frames also go through it and
    its DUPLICATE/STALE verdicts are counted here too.
    """

    def __init__(self, local_node: int = NODE_ANY, max_payload: int = MAX_PAYLOAD, seq_filter: SeqFilter | None = None) -> None:
        self.local_node = local_node
        self.seq_filter = seq_filter
        self._raw_cap = HEADER_LEN + min(max_payload, MAX_PAYLOAD) + CRC_LEN
        # A body this long decodes to more than raw_cap bytes whatever it holds
        # (decoding removes at most one byte in 255), so stop buffering it.
        self._body_limit = 2 * self._raw_cap + 16
        self._body = bytearray()
        self._overflow = False
        self.counts: dict[LinkStatus, int] = {s: 0 for s in (LinkStatus.FRAME_READY, *DROP_REASONS)}

    @property
    def frames_ok(self) -> int:
        return self.counts[LinkStatus.FRAME_READY]

    @property
    def dropped(self) -> int:
        return sum(self.counts[s] for s in DROP_REASONS)

    def feed(self, data: Buffer) -> list[Frame]:
        """Good frames completed by ``data``."""
        return [f for status, f in self.feed_outcomes(data) if f is not None]

    def feed_outcomes(self, data: Buffer) -> list[tuple[LinkStatus, Frame | None]]:
        """Every frame completed by ``data``: (FRAME_READY, frame) or (reason, None)."""
        data = bytes(data)
        outcomes: list[tuple[LinkStatus, Frame | None]] = []
        start = 0
        while True:
            end = data.find(0, start)
            self._append(data[start:] if end < 0 else data[start:end])
            if end < 0:
                return outcomes
            outcome = self._end_of_frame()
            if outcome is not None:
                self.counts[outcome[0]] += 1
                outcomes.append(outcome)
            start = end + 1

    def resync(self) -> None:
        """Forget the partial frame (e.g. after reopening the port); counts are kept."""
        self._body.clear()
        self._overflow = False

    def _append(self, chunk: bytes) -> None:
        if self._overflow or not chunk:
            return
        self._body += chunk
        if len(self._body) > self._body_limit:
            self._overflow = True
            self._body.clear()

    def _end_of_frame(self) -> tuple[LinkStatus, Frame | None] | None:
        body = bytes(self._body)
        overflow = self._overflow
        self.resync()
        if overflow:
            return LinkStatus.OVERSIZE, None
        if not body:
            return None  # 0x00 0x00 is idle fill
        try:
            frame = _check_body(body, self.local_node, self._raw_cap)
        except FrameError as err:
            return err.status, None
        if self.seq_filter is not None:
            verdict = self.seq_filter.check_frame(frame)
            if verdict is not LinkStatus.OK:
                return verdict, None
        return LinkStatus.FRAME_READY, frame


def iter_frames(chunks: Iterable[bytes], decoder: FrameDecoder | None = None) -> Iterator[Frame]:
    """Good frames from an iterable of received chunks (e.g. serial reads)."""
    decoder = decoder or FrameDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)


# ---- Payloads (all multi-byte fields little-endian) ----------------------------


def build_sample_payload(cycles: int, tensor: Buffer) -> bytes:
    """RESULT payload: u32 compute cycles, then the int8 tensor bytes (a DATA payload is the tensor alone).

    ``tensor`` is anything exposing the buffer protocol: bytes, or an int8
    numpy array (its raw bytes in C order are sent).
    """
    body = memoryview(tensor).tobytes()
    if len(body) + CYCLES_LEN > MAX_PAYLOAD:
        raise ValueError(f"tensor of {len(body)} bytes does not fit a frame")
    return struct.pack("<I", cycles) + body


def parse_sample_payload(payload: bytes) -> tuple[int, bytes]:
    """(cycles, tensor bytes) of a RESULT payload; np.frombuffer(t, np.int8) views it."""
    if len(payload) < CYCLES_LEN:
        raise FrameError(LinkStatus.LENGTH, "sample payload shorter than its cycle count")
    return struct.unpack_from("<I", payload)[0], bytes(payload[CYCLES_LEN:])


class CycleCounter(IntEnum):
    """What a node's cycle counts come from (HELLO byte 24, link_counter_t in C)."""
    UNKNOWN = 0  # a 24-byte HELLO of an older firmware, which did not say
    SYSTICK = 1  # SysTick on the core clock (under QEMU -icount: virtual time, i.e. instructions)
    DWT = 2  # DWT->CYCCNT: true core cycles


@dataclass(frozen=True)
class Hello:
    """HELLO payload (28 bytes; 24 before the cycle counter was added); the node id is the frame's src."""

    model_hash: bytes  # first 8 bytes of the model's SHA-256
    fw_version: tuple[int, int, int]  # (major u8, minor u8, patch u16)
    flash_bytes: int
    arena_bytes: int
    cpu_hz: int
    cycle_counter: CycleCounter = CycleCounter.UNKNOWN  # then 3 reserved zero bytes

    FORMAT = "<8sBBHIIIB3x"
    SIZE = struct.calcsize(FORMAT)
    MIN_SIZE = 24  # an older firmware's HELLO: still accepted, its counter UNKNOWN

    def pack(self) -> bytes:
        if len(self.model_hash) != 8:
            raise ValueError("model_hash must be 8 bytes")
        major, minor, patch = self.fw_version
        return struct.pack(self.FORMAT, self.model_hash, major, minor, patch, self.flash_bytes, self.arena_bytes,
                           self.cpu_hz, self.cycle_counter)

    @classmethod
    def unpack(cls, payload: bytes) -> Hello:
        """Trailing bytes (fields of later versions) are ignored."""
        if len(payload) < cls.MIN_SIZE:
            raise FrameError(LinkStatus.LENGTH, f"HELLO needs {cls.SIZE} bytes, got {len(payload)}")
        model_hash, major, minor, patch, flash, arena, hz = struct.unpack_from("<8sBBHIII", payload)
        counter = payload[24] if len(payload) >= cls.SIZE and payload[24] in iter(CycleCounter) else 0
        return cls(model_hash, (major, minor, patch), flash, arena, hz, CycleCounter(counter))


@dataclass(frozen=True)
class Stats:
    """STATS payload: u32 counters in field order (link_stat_t in C)."""

    rx_frames: int = 0
    tx_frames: int = 0
    rx_truncated: int = 0
    rx_oversize: int = 0
    rx_crc: int = 0
    rx_version: int = 0
    rx_type: int = 0
    rx_length: int = 0
    rx_dest: int = 0
    rx_duplicate: int = 0
    rx_stale: int = 0
    rx_overrun: int = 0
    input_timeouts: int = 0
    samples: int = 0
    cycles_lo: int = 0  # cycles spent in inferences since boot, u64 split in two
    cycles_hi: int = 0
    cycles_max: int = 0  # the longest inference since boot or RESET
    samples_down: int = 0  # 17..23 (the runtime's other counters); an older firmware sends 0..16 only
    late_inputs: int = 0
    evictions: int = 0
    unknown_links: int = 0
    bad_tensors: int = 0
    invoke_errors: int = 0
    tx_errors: int = 0
    MIN_FIELDS = 17  # an older firmware's STATS: still read, the later counters 0

    @property
    def cycles(self) -> int:
        return self.cycles_lo | (self.cycles_hi << 32)

    def pack(self) -> bytes:
        values = [getattr(self, f.name) for f in fields(self)]
        return struct.pack(f"<{len(values)}I", *values)

    @classmethod
    def unpack(cls, payload: bytes) -> Stats:
        """Counters beyond the known ones (later versions) are ignored."""
        n = min(len(fields(cls)), len(payload) // 4)
        if n < cls.MIN_FIELDS or len(payload) % 4:
            raise FrameError(LinkStatus.LENGTH, f"STATS needs {4 * len(fields(cls))} bytes, got {len(payload)}")
        return cls(*struct.unpack_from(f"<{n}I", payload))

    @classmethod
    def from_decoder(cls, decoder: FrameDecoder, **node_counters: int) -> Stats:
        """The receive counters of ``decoder``, plus the other fields given by name."""
        counts = {f"rx_{s.name.lower()}": decoder.counts[s] for s in DROP_REASONS}
        return cls(rx_frames=decoder.frames_ok, **counts, **node_counters)


STATS_LEN = 4 * len(fields(Stats))


def build_link_down(reason: LinkDownReason = LinkDownReason.UNSPECIFIED) -> bytes:
    return bytes([reason])


def parse_link_down(payload: bytes) -> LinkDownReason | int:
    """The reason byte (an int if this version does not know it)."""
    if not payload:
        raise FrameError(LinkStatus.LENGTH, "LINK_DOWN needs its reason byte")
    try:
        return LinkDownReason(payload[0])
    except ValueError:
        return payload[0]


def build_error(code: int, text: str = "") -> bytes:
    return struct.pack("<H", code) + text.encode("ascii", "replace")


def parse_error(payload: bytes) -> tuple[int, str]:
    if len(payload) < 2:
        raise FrameError(LinkStatus.LENGTH, "ERROR needs its 2-byte code")
    return struct.unpack_from("<H", payload)[0], payload[2:].decode("ascii", "replace")


# ---- Wire overhead ---------------------------------------------------------------


def encoded_len_max(payload_len: int, ftype: FrameType = FrameType.DATA) -> int:
    """Exact worst-case bytes on the wire (delimiter included) for this payload size.

    Worst case = every byte that can be non-zero is non-zero, so COBS needs the
    most code bytes.  In the 8-byte header the length field is fixed by the size:
    below 256 bytes its high byte is 0x00, which splits the run for free.
    """
    if ftype == FrameType.DATA:
        raw = bytes([DATA_FLAG | 1, 0x01])
    else:
        raw = _pack_header(PROTOCOL_VERSION, ftype, 1, 1, 1, 0x0101, payload_len)
    return len(cobs_encode(raw + b"\x01" * payload_len + b"\xff\xff")) + 1


def wire_overhead(payload_len: int, ftype: FrameType = FrameType.DATA) -> int:
    """Worst-case bytes on the wire beyond the payload: header, CRC, COBS codes, delimiter."""
    return encoded_len_max(payload_len, ftype) - payload_len
