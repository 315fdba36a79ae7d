"""The arithmetic of low-bit link codes, without Keras: which bits a link uses, packed sizes, the clamp.

Kept apart from :mod:`host.ml.link_codes` (the Keras layers) so that the topology reader, the quantizer and the
host's frame handling never start TensorFlow (an error about a bad option must come before it starts).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

#: Bits per element a link may use on the wire.
BITS = (8, 4, 2)
#: Part of the trained-model cache key of a network with coded links (host/ml/train.py): bump it when the
#: training of link codes (host/ml/link_codes.LinkCode) changes, so no cached model of the old kind is reused.
#: 3: the range with the least quantization error ("mse") instead of the batches' min/max, tied across the links
#: deployed with one scale (SharedRanges).
LINK_CODE_VERSION = 3
#: The int8 code of c = 0: every coded link's int8 range starts here (qparams for 2^bits levels).
CODE_LO = -128


def link_budget(raw: Mapping[str, Any]) -> dict[str, int | None]:
    """``bits`` / ``max_bytes`` of a ``[[links]]`` entry, checked (ValueError naming the key and the fix)."""
    bits, max_bytes = raw.get("bits"), raw.get("max_bytes")
    if bits is not None and (type(bits) is not int or bits not in BITS):
        raise ValueError(f"bits = {bits!r}: a link carries 8, 4 or 2 bits per element; write one of them")
    if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 1):
        raise ValueError(f"max_bytes = {max_bytes!r}: give the link's byte budget per tensor as a positive "
                         f"integer")
    bottleneck = raw.get("bottleneck")
    if bottleneck is not None and (type(bottleneck) is not int or bottleneck < 1):
        raise ValueError(f"bottleneck = {bottleneck!r}: give the channels the link carries as a positive integer")
    return {"bits": bits, "max_bytes": max_bytes, "bottleneck": bottleneck}


def packed_bytes(elements: int, bits: int) -> int:
    """Bytes of ``elements`` values at ``bits`` each, packed (8 // bits values per byte)."""
    return math.ceil(int(elements) * int(bits) / 8)


def resolve_bits(name: str, bits: int | None, max_bytes: int | None, elements: int) -> int:
    """The bits a link uses (the module's rule); ValueError when ``max_bytes`` cannot be met."""
    if bits is not None:
        if max_bytes is not None and packed_bytes(elements, bits) > max_bytes:
            raise ValueError(f"link {name}: bits = {bits} packs its {elements} elements into "
                             f"{packed_bytes(elements, bits)} B > max_bytes = {max_bytes}: lower bits or "
                             f"raise max_bytes")
        return bits
    if max_bytes is None:
        return 8
    for b in BITS:
        if packed_bytes(elements, b) <= max_bytes:
            return b
    raise ValueError(f"link {name}: max_bytes = {max_bytes} is unreachable: its tensor has {elements} elements, "
                     f"{packed_bytes(elements, 2)} B at 2 bits; raise max_bytes to at least that or make the "
                     f"sender's tensor smaller")


def code_range(bits: int) -> tuple[int, int]:
    """The int8 values a ``bits``-bit code can carry: LO .. LO + 2^bits - 1."""
    return CODE_LO, CODE_LO + (1 << int(bits)) - 1


def clamp_codes(q: np.ndarray, bits: int) -> np.ndarray:
    """What the receiver gets of an int8 link tensor sent with ``bits``-bit codes (identity at 8 bits)."""
    if bits >= 8:
        return q
    lo, hi = code_range(bits)
    return np.clip(q, lo, hi).astype(np.int8)




def range_groups(links: Iterable[Any]) -> dict[str, str]:
    """Per link (``Link``: src, dst, projection, bottleneck), the name of the group whose coded links train
    one shared range: links into one receiver (mux partners, a concatenation's or an average's inputs share
    one int8 scale/zero point when deployed, host/deploy/quantize.link_groups) and links that carry one tensor
    (a sender's plain links). A superset of the deployed groups, so each deployed range is the trained one."""
    links = list(links)
    parent = {l.name: l.name for l in links}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first: dict[tuple[str, str], str] = {}
    for l in links:
        for key in [("to", l.dst)] + ([("from", l.src)] if not (l.projection or l.bottleneck) else []):
            other = first.setdefault(key, l.name)
            parent[find(l.name)] = find(other)
    roots: dict[str, str] = {}
    for l in links:  # a group is named by its first link (deterministic: the topology's order)
        roots.setdefault(find(l.name), l.name)
    return {l.name: roots[find(l.name)] for l in links}
