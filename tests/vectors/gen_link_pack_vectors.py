"""Generates link_pack_vectors.json: known answers of packed link tensors (docs/protocol.md, "Packed tensors").

A plain bit-by-bit implementation of the rule, independent of host/net/link_pack.py and
firmware/runtime/link_pack.c, which tests/test_link_codes.py checks against these vectors:
c = clamp(q - lo, 0, 2^bits - 1); value i in byte i // (8 // bits) at bit (i % (8 // bits)) * bits; unpacked
q = lo + c. Run it to rewrite the file: python tests/vectors/gen_link_pack_vectors.py
"""
from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("link_pack_vectors.json")


def pack(values: list[int], bits: int, lo: int) -> tuple[bytes, list[int]]:
    if bits == 8:
        return bytes(v & 0xFF for v in values), list(values)
    top = (1 << bits) - 1
    codes = [min(max(v - lo, 0), top) for v in values]
    out = bytearray((len(values) * bits + 7) // 8)
    for i, c in enumerate(codes):
        for b in range(bits):  # one bit at a time: the rule as written, not a shortcut
            if (c >> b) & 1:
                pos = i * bits + b
                out[pos // 8] |= 1 << (pos % 8)
    return bytes(out), [lo + c for c in codes]


def render() -> str:
    rng = random.Random(20261207)
    cases = [
        ("4bit_codes_and_clamp", 4, -128, [-128, -127, -113, -120, 5]),
        ("2bit_codes_and_clamp", 2, -128, [-128, -127, -126, -125, -124, 127, -128]),
        ("2bit_one_value", 2, -128, [-126]),
        ("4bit_other_lo", 4, -3, [-10, -3, 0, 12, 13, 40, 7, -4]),
        ("8bit_is_plain_int8", 8, -128, [-128, -1, 0, 1, 127]),
        ("4bit_random", 4, -128, [rng.randint(-128, 127) if i % 5 == 0 else rng.randint(-128, -113) for i in range(37)]),
        ("2bit_random", 2, -128, [rng.randint(-128, -125) for _ in range(53)]),
    ]
    out = []
    for name, bits, lo, values in cases:
        packed, unpacked = pack(values, bits, lo)
        out.append({"name": name, "bits": bits, "lo": lo, "values": values, "packed_hex": packed.hex(),
                    "unpacked": unpacked})
    return json.dumps({"link_pack": out}, indent=1) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
