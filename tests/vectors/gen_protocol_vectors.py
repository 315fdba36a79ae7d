"""Generate tests/vectors/protocol_vectors.json, the vectors both link codecs must meet.

    .venv/bin/python tests/vectors/gen_protocol_vectors.py          # rewrite the file
    .venv/bin/python tests/vectors/gen_protocol_vectors.py --check  # exit 1 if stale

The committed JSON is the reference: tests check host/net/protocol.py and the C
codec against it, and that this script still reproduces it, so a change of the
wire format cannot go unnoticed.  The CRC and COBS known answers below are
typed in from their published definitions (CRC catalogue check value, the COBS
examples of Cheshire & Baker / Wikipedia), not computed by the code under test.
Malformed cases are built so that the expected drop reason follows from their
construction; the few "stream" cases whose outcome is not obvious are marked
``"derived": true`` (taken from the Python decoder, then held fixed).
"""
from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from host.net import protocol as p  # noqa: E402

OUT = Path(__file__).with_name("protocol_vectors.json")

CRC_KNOWN = [
    ("check_123456789", b"123456789", 0x29B1),  # CRC-16/CCITT-FALSE catalogue check value
    ("empty", b"", 0xFFFF),  # = init
    ("single_zero", b"\x00", 0xE1F0),
]

COBS_KNOWN = [  # (name, raw hex, encoded hex)
    ("empty", "", "01"),
    ("zero", "00", "0101"),
    ("two_zeros", "0000", "010101"),
    ("zero_inside", "11220033", "0311220233"),
    ("no_zero", "11223344", "0511223344"),
    ("trailing_zeros", "11000000", "0211010101"),
    ("run_254", bytes(range(1, 255)).hex(), "ff" + bytes(range(1, 255)).hex()),
    ("zero_then_run_254", bytes(range(0, 255)).hex(), "01ff" + bytes(range(1, 255)).hex()),
    ("run_255", bytes(range(1, 256)).hex(), "ff" + bytes(range(1, 255)).hex() + "02ff"),
    ("run_254_then_zero", (bytes(range(2, 256)) + b"\x00").hex(), "ff" + bytes(range(2, 256)).hex() + "0101"),
    ("run_253_zero_one", (bytes(range(3, 256)) + b"\x00\x01").hex(), "fe" + bytes(range(3, 256)).hex() + "0201"),
]


def _hex(b: bytes) -> str:
    return b.hex()


def _frame_vector(name: str, frame: p.Frame) -> dict[str, Any]:
    return {
        "name": name,
        "type": frame.type.name,
        "src": frame.src,
        "dst": frame.dst,
        "link": frame.link,
        "seq": frame.seq,
        "payload_hex": _hex(frame.payload),
        "encoded_hex": _hex(frame.encode()),
    }


def _nonzero_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(1, 256) for _ in range(n))


def _raw(version: int, type_: int, src: int, dst: int, link: int, seq: int, payload: bytes, length: int | None = None) -> bytes:
    """Unstuffed header + payload (no CRC), with any field values."""
    n = len(payload) if length is None else length
    return p._pack_header(version, type_, src, dst, link, seq, n) + payload


HELLO = p.Hello(model_hash=bytes.fromhex("0123456789abcdef"), fw_version=(0, 3, 258), flash_bytes=123_456, arena_bytes=65_536, cpu_hz=80_000_000,
                cycle_counter=p.CycleCounter.DWT)
STATS = p.Stats(*(i * 1000 + i for i in range(len(dataclasses.fields(p.Stats)))))


def frames() -> list[dict[str, Any]]:
    rng = random.Random(20240611)
    tensor_16 = bytes([0x80, 0x00, 0x7F, 0xFF, 0x01, 0x00, 0x00, 0x10, 0xF0, 0x00, 0x22, 0x33, 0x00, 0x44, 0x55, 0x66])
    scores = bytes([0x81, 0x90, 0x7F, 0x00, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0, 0x05])
    F, T, I = p.Frame, p.FrameType, p.NODE_IMPLIED
    cases = [
        ("ping_empty", F(T.PING, p.NODE_HOST, 1, p.LINK_NONE, 0x0000)),
        ("ping_hi", F(T.PING, p.NODE_HOST, 1, p.LINK_NONE, 0x0102, b"hi")),
        ("pong_hi", F(T.PONG, 1, p.NODE_HOST, p.LINK_NONE, 0x0102, b"hi")),
        ("hello_request", F(T.HELLO, p.NODE_HOST, 3, p.LINK_NONE, 0)),
        ("hello", F(T.HELLO, 3, p.NODE_HOST, p.LINK_NONE, 0, HELLO.pack())),
        ("stats_request", F(T.STATS, p.NODE_HOST, p.NODE_BROADCAST, p.LINK_NONE, 7)),
        ("stats", F(T.STATS, 2, p.NODE_HOST, p.LINK_NONE, 7, STATS.pack())),
        # DATA: 2-byte header; src/dst are implied by the link (NODE_IMPLIED once decoded), seq is its low byte.
        ("data_small", F(T.DATA, I, I, 0, 1, tensor_16)),
        ("data_seq_255", F(T.DATA, I, I, 0, 0xFF, tensor_16)),
        ("data_from_host", F(T.DATA, I, I, 7, 0x2A, bytes(range(256))[:200])),
        # 250-byte tensor without a single 0x00: the worst case of the overhead budget.
        ("data_250_no_zero", F(T.DATA, I, I, 5, 0x2A, _nonzero_bytes(rng, 250))),
        ("data_250_zeros", F(T.DATA, I, I, 5, 0x2B, bytes(250))),
        ("data_one_byte", F(T.DATA, I, I, 127, 0x00, b"\x00")),
        ("data_2048_max", F(T.DATA, I, I, 126, 0xEF, bytes(rng.randrange(256) for _ in range(2048)))),
        ("link_down", F(T.LINK_DOWN, 1, 2, 4, 0x1234, p.build_link_down(p.LinkDownReason.TIMEOUT))),
        ("result", F(T.RESULT, 3, p.NODE_HOST, p.LINK_NONE, 0x1234, p.build_sample_payload(9_876_543, scores))),
        ("reset_broadcast", F(T.RESET, p.NODE_HOST, p.NODE_BROADCAST, p.LINK_NONE, 0)),
        ("error", F(T.ERROR, 4, p.NODE_HOST, p.LINK_NONE, 0, p.build_error(7, "arena too small"))),
        # Version 3: node ids are whole bytes (15 boards and more; the last board is 254).
        ("link_down_node_15_to_200", F(T.LINK_DOWN, 15, 200, 9, 0x0203, p.build_link_down(p.LinkDownReason.UPSTREAM))),
        ("result_from_node_max", F(T.RESULT, p.NODE_MAX, p.NODE_HOST, p.LINK_NONE, 0xFFFF, p.build_sample_payload(1, scores))),
        ("ping_to_node_max", F(T.PING, p.NODE_HOST, p.NODE_MAX, p.LINK_NONE, 0x0001, b"\x00")),
    ]
    return [_frame_vector(name, frame) for name, frame in cases]


def malformed() -> list[dict[str, Any]]:
    any_node = p.NODE_ANY
    V, R = p.PROTOCOL_VERSION, p.FrameType.RESULT
    good = p.Frame(p.FrameType.DATA, p.NODE_IMPLIED, p.NODE_IMPLIED, 0, 5, bytes([1, 2, 3, 0, 5, 6, 7, 8])).encode()
    result = p.Frame(p.FrameType.RESULT, 1, 2, p.LINK_NONE, 5, p.build_sample_payload(42, bytes([1, 2, 3, 0]))).encode()
    ping = p.Frame(p.FrameType.PING, p.NODE_HOST, 1, p.LINK_NONE, 0x0102, b"hi").encode()
    good_raw = p.cobs_decode(good[:-1])  # header + payload + CRC

    def crc_ok(raw: bytes) -> bytes:
        return p._encode_raw(raw)

    def case(name: str, data: bytes, expect: list[str], local_node: int = any_node, **extra: Any) -> dict[str, Any]:
        return {"name": name, "local_node": local_node, "bytes_hex": _hex(data), "expect": expect, **extra}

    flipped = bytearray(good_raw)
    flipped[5] ^= 0x04  # a payload bit
    crc_flipped = bytearray(good_raw)
    crc_flipped[-1] ^= 0x80
    payload10 = bytes(range(1, 11))
    junk_5000 = bytes((i % 255) + 1 for i in range(5000))
    return [
        case("crc_payload_bit_flip", p.cobs_encode(bytes(flipped)) + b"\x00", ["crc"]),
        case("crc_in_crc_bytes", p.cobs_encode(bytes(crc_flipped)) + b"\x00", ["crc"]),
        # Cut inside the last COBS block (its code byte promises 4 bytes, 2 come).
        case("truncated_mid_block", ping[:-3] + b"\x00", ["truncated"]),
        case("truncated_runt", p.cobs_encode(p.cobs_decode(result[:-1])[:8]) + b"\x00", ["truncated"]),
        case("truncated_data_runt", crc_ok(bytes([p.DATA_FLAG | 3, 9])), ["truncated"]),
        case("data_oversize_2049", crc_ok(bytes([p.DATA_FLAG | 3, 9]) + bytes(2049)), ["oversize"]),
        case("data_over_small_buffer", good, ["oversize"], max_payload=7),
        case("truncated_lone_code", b"\x01\x00", ["truncated"]),
        case("truncated_junk", b"\xab\xcd\x00", ["truncated"]),
        case("oversize_payload_2049", crc_ok(_raw(V, R, 1, 2, 0, 0, bytes(2049))), ["oversize"]),
        case("oversize_no_delimiter_5000", junk_5000 + b"\x00", ["oversize"]),
        case("version_0", crc_ok(_raw(0, p.FrameType.PING, 0, 1, 255, 0, b"")), ["version"]),
        case("version_1", crc_ok(_raw(1, p.FrameType.PING, 0, 1, 255, 0, b"")), ["version"]),
        # A version-2 header (src<<4|dst in one byte, 7 bytes) from an old node.
        case("version_2_old_header", crc_ok(bytes([0x25, 0x10, 0xFF, 5, 0, 1, 0, 0x42])), ["version"]),
        case("version_7", crc_ok(_raw(7, R, 0, 1, 0, 0, payload10)), ["version"]),
        case("type_0", crc_ok(_raw(V, 0, 0, 1, 255, 0, b"")), ["type"]),
        case("type_data_long_header", crc_ok(_raw(V, p.FrameType.DATA, 1, 2, 0, 0, payload10)), ["type"]),
        case("type_10", crc_ok(_raw(V, 10, 0, 1, 255, 0, payload10)), ["type"]),
        case("type_15", crc_ok(_raw(V, 15, 0, 1, 255, 0, b"")), ["type"]),
        case("length_field_short", crc_ok(_raw(V, R, 1, 2, 0, 0, payload10, length=9)), ["length"]),
        case("length_field_long", crc_ok(_raw(V, R, 1, 2, 0, 0, payload10, length=11)), ["length"]),
        case("length_field_over_max", crc_ok(_raw(V, R, 1, 2, 0, 0, payload10, length=4000)), ["length"]),
        case("dest_other_node", p.Frame(p.FrameType.RESULT, 1, 3, 0, 5, payload10).encode(), ["dest"], local_node=2),
        case("dest_own_node", p.Frame(p.FrameType.RESULT, 1, 2, 0, 5, payload10).encode(), ["frame_ready"], local_node=2),
        case("dest_node_18_not_2", p.Frame(p.FrameType.RESULT, 1, 18, 0, 5, payload10).encode(), ["dest"], local_node=2),
        case("dest_own_node_200", p.Frame(p.FrameType.RESULT, 1, 200, 0, 5, payload10).encode(), ["frame_ready"], local_node=200),
        case("dest_data_has_none", good, ["frame_ready"], local_node=2),
        case("dest_broadcast", p.Frame(p.FrameType.RESET, 0, p.NODE_BROADCAST, p.LINK_NONE, 0).encode(), ["frame_ready"], local_node=2),
        case("dest_router_accepts_all", p.Frame(p.FrameType.RESULT, 1, 3, 0, 5, payload10).encode(), ["frame_ready"]),
        case("idle_fill_then_frame", b"\x00\x00\x00" + good, ["frame_ready"]),
        case("back_to_back", good + ping + result + good, ["frame_ready"] * 4),
        case("resync_after_junk", b"\xab\xcd\xef\x00" + good, ["truncated", "frame_ready"]),
        case("oversize_then_frame", junk_5000 + b"\x00" + ping, ["oversize", "frame_ready"]),
        case("lost_delimiter_merges_frames", good[:-1] + ping, _derived(good[:-1] + ping), derived=True),
        case("cobs_code_bit_flip", bytes([good[0] ^ 0x01]) + good[1:], _derived(bytes([good[0] ^ 0x01]) + good[1:]), derived=True),
    ]


def _derived(data: bytes) -> list[str]:
    return [status.name.lower() for status, _ in p.FrameDecoder().feed_outcomes(data)]


def seq_filter() -> list[dict[str, Any]]:
    steps = [
        (1, 0, 10, "ok"),  # first frame of (1, 0)
        (1, 0, 10, "duplicate"),
        (1, 0, 9, "stale"),
        (1, 0, 11, "ok"),
        (2, 0, 11, "ok"),  # other source: own state
        (1, 1, 11, "ok"),  # other link: own state
        (1, 0, 267, "ok"),  # jumps forward are fine (samples lost upstream)
        (1, 0, 11, "stale"),  # exactly SEQ_STALE_WINDOW behind
        (1, 0, 10, "ok"),  # further behind: the sender restarted, follow it
        (1, 0, 11, "ok"),
        (3, 5, 65534, "ok"),
        (3, 5, 65535, "ok"),
        (3, 5, 0, "ok"),  # wraparound
        (3, 5, 65535, "stale"),
        (3, 5, 1, "ok"),
        (3, 5, 1, "duplicate"),
        (4, 0, 0, "ok"),
        (4, 0, 32767, "ok"),  # the largest step that counts as newer
        (4, 0, 32766, "stale"),
        (4, 0, 65535, "ok"),  # 32768 away: taken as behind by more than the window
    ]
    return [{"name": "filter_walk", "steps": [{"src": s, "link": l, "seq": q, "expect": e} for s, l, q, e in steps]}]


def seq_expand() -> list[dict[str, int]]:
    """(ref, seq8) -> the sample number nearest ref with that low byte; ties (128 away) go back."""
    cases = [(0, 0, 0), (0, 5, 5), (0, 127, 127), (0, 128, 65408), (0, 255, 65535), (300, 44, 300),
             (300, 45, 301), (300, 43, 299), (300, 171, 427), (300, 172, 172), (65535, 0, 0), (65535, 2, 2),
             (65535, 127, 65407), (65535, 128, 65408), (5, 250, 65530), (1000, 0xE8, 1000)]
    for ref, seq8, want in cases:
        assert p.seq_expand(ref, seq8) == want, (ref, seq8, p.seq_expand(ref, seq8), want)
    return [{"ref": r, "seq8": s, "expect": e} for r, s, e in cases]


def payloads() -> dict[str, Any]:
    tensor = bytes([0x80, 0x00, 0x7F, 0xFF, 0x01])
    return {
        "hello": {
            "model_hash_hex": _hex(HELLO.model_hash),
            "fw_version": list(HELLO.fw_version),
            "flash_bytes": HELLO.flash_bytes,
            "arena_bytes": HELLO.arena_bytes,
            "cpu_hz": HELLO.cpu_hz,
            "cycle_counter": int(HELLO.cycle_counter),
            "payload_hex": _hex(HELLO.pack()),
        },
        "stats": {"values": list(dataclasses.astuple(STATS)), "payload_hex": _hex(STATS.pack())},
        "sample": {"cycles": 0xDEADBEEF, "tensor_hex": _hex(tensor), "payload_hex": _hex(p.build_sample_payload(0xDEADBEEF, tensor))},
    }


def constants() -> dict[str, int]:
    values = {
        "VERSION": p.PROTOCOL_VERSION,
        "HEADER_LEN": p.HEADER_LEN,
        "DATA_HEADER_LEN": p.DATA_HEADER_LEN,
        "DATA_FLAG": p.DATA_FLAG,
        "DATA_LINK_MAX": p.DATA_LINK_MAX,
        "CRC_LEN": p.CRC_LEN,
        "MAX_PAYLOAD": p.MAX_PAYLOAD,
        "CYCLES_LEN": p.CYCLES_LEN,
        "NODE_HOST": p.NODE_HOST,
        "NODE_MAX": p.NODE_MAX,
        "NODE_BROADCAST": p.NODE_BROADCAST,
        "NODE_ANY": p.NODE_ANY,
        "NODE_IMPLIED": p.NODE_IMPLIED,
        "LINK_NONE": p.LINK_NONE,
        "SEQ_STALE_WINDOW": p.SEQ_STALE_WINDOW,
        "HELLO_LEN": p.Hello.SIZE,
        "STATS_LEN": p.STATS_LEN,
    }
    values.update({f"TYPE_{t.name}": int(t) for t in p.FrameType})
    values.update({f"STATUS_{s.name}": int(s) for s in p.LinkStatus})
    values.update({f"LINK_DOWN_{r.name}": int(r) for r in p.LinkDownReason})
    return values


def build() -> dict[str, Any]:
    return {
        "description": "Link protocol test vectors (docs/protocol.md). Generated by gen_protocol_vectors.py; "
        "encoded_hex includes the trailing 0x00 delimiter; cobs encodings have none; "
        "local_node 256 (NODE_ANY, not a wire value) = accept every destination; max_payload (default 2048) = the decoder buffer's payload limit; "
        "DATA frames: src/dst 257 (NODE_IMPLIED) = implied by the link, seq = the low byte on the wire.",
        "version": p.PROTOCOL_VERSION,
        "constants": constants(),
        "crc16": [{"name": n, "data_hex": _hex(d), "crc": c} for n, d, c in CRC_KNOWN],
        "cobs": [{"name": n, "raw_hex": r, "encoded_hex": e} for n, r, e in COBS_KNOWN],
        "frames": frames(),
        "malformed": malformed(),
        "seq_filter": seq_filter(),
        "seq_expand": seq_expand(),
        "payloads": payloads(),
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
