"""Packed link tensors on the wire: the host's one implementation (firmware/runtime/link_pack.c is the boards').

A link with ``bits`` = 4 or 2 (host/ml/link_codes.py) carries each int8 value ``q`` as the code
``c = clamp(q - lo, 0, 2^bits - 1)``, ``8 // bits`` codes per byte, the first value in the lowest bits
(value i in byte ``i // per``, at bit ``(i % per) * bits``); a last partial byte is padded with zero bits.
Unpacking gives ``q = lo + c``. ``bits`` = 8 is the plain int8 tensor. Length and bit width come from the
build (manifest), never from the frame: the DATA payload is exactly :func:`packed_len` bytes.
"""
from __future__ import annotations

import numpy as np

from host.ml.link_bits import BITS, packed_bytes


class PackError(ValueError):
    """A packed tensor whose length does not match what the build says the link carries."""


def packed_len(elements: int, bits: int) -> int:
    """Bytes on the wire of a tensor of ``elements`` int8 values sent with ``bits``-bit codes."""
    _check_bits(bits)
    return packed_bytes(elements, bits)


def pack(values: np.ndarray | bytes, bits: int, lo: int) -> bytes:
    """int8 values -> the packed payload (clamped into the code space, as the sending board does)."""
    _check_bits(bits)
    q = np.frombuffer(values, np.int8) if isinstance(values, (bytes, bytearray)) else \
        np.ascontiguousarray(values, np.int8).reshape(-1)
    if bits == 8:
        return q.tobytes()
    per = 8 // bits
    codes = np.clip(q.astype(np.int16) - int(lo), 0, (1 << bits) - 1).astype(np.uint8)
    codes = np.concatenate([codes, np.zeros((-len(codes)) % per, np.uint8)]).reshape(-1, per)
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    return np.bitwise_or.reduce(codes << shifts, axis=1).astype(np.uint8).tobytes()


def unpack(payload: bytes, elements: int, bits: int, lo: int) -> np.ndarray:
    """The packed payload -> ``elements`` int8 values ``lo + c`` (PackError if its length is not the build's)."""
    want = packed_len(elements, bits)
    if len(payload) != want:
        raise PackError(f"packed tensor of {len(payload)} B, the link carries {elements} values at {bits} bits "
                        f"= {want} B")
    raw = np.frombuffer(payload, np.uint8)
    if bits == 8:
        return raw.view(np.int8).copy()
    per = 8 // bits
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    codes = ((raw[:, None] >> shifts) & ((1 << bits) - 1)).reshape(-1)[:elements]
    return (codes.astype(np.int16) + int(lo)).astype(np.int8)


def _check_bits(bits: int) -> None:
    if bits not in BITS:
        raise PackError(f"bits = {bits}: links carry 8, 4 or 2 bits per element")
