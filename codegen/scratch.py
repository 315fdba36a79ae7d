"""Scratch-buffer vocabulary shared by the ops: backends, dimensions, and the worst case over backends.

Each op module (:mod:`codegen.ops`) holds the Python mirror of its CMSIS-NN ``*_get_buffer_size_dsp`` /
pure-C ``*_get_buffer_size`` function (v6-v8 s8 API) next to its lowering, so an op's scratch formula
lives with the op. The generated module reserves, for every op, the largest size over the selected
backends so the same C file works with our kernels and with Arm's on any Cortex-M with or without the
DSP extension. MVE (Helium) sizes are different and not covered: the generated code checks the linked
library's own ``*_get_buffer_size`` at run time and fails the op (never overruns) if it needs more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

#: Backends the reserved scratch must satisfy.
DEFAULT_BACKENDS: tuple[str, ...] = ("c", "dsp")


@dataclass(frozen=True)
class Dims:
    n: int
    h: int
    w: int
    c: int

    @classmethod
    def of(cls, dims: Mapping[str, int]) -> "Dims":
        """From the ``{"n", "h", "w", "c"}`` dicts the lowering stores in ``Step.params``."""
        return cls(dims["n"], dims["h"], dims["w"], dims["c"])


def align4(x: int) -> int:
    return (x + 3) & ~3


def worst_case(sizes: dict[str, int]) -> int:
    return max(sizes.values()) if sizes else 0
