"""BENCHMARKS.md from the results dict of bench/run_benchmarks.py (also: the targets, met or not).

One module per part of the file, in its order: ``overview`` (header), ``targets``, ``compute``, ``memory``,
``links``, ``resilience``, ``camera``, ``toolchain``, ``overview`` (not measured, method); ``formatting`` is what they share.
"""
from __future__ import annotations

from typing import Any

from .camera import md_camera
from .compute import md_compute
from .corpus import md_corpus
from .links import md_links
from .memory import md_memory
from .overview import md_header, md_method, md_not_measured
from .resilience import md_resilience
from .soak import md_soak
from .stress import md_stress
from .targets import compute_targets, md_targets
from .toolchain import md_toolchain
from .user_model import md_user_model
from .distribute import md_distribute

__all__ = ["compute_targets", "render_markdown"]


def render_markdown(R: dict[str, Any]) -> str:
    """The whole of BENCHMARKS.md; the targets are computed here if the results do not carry them."""
    T = R.get("targets") or compute_targets(R)
    return "".join([md_header(R), md_targets(T), md_compute(R), md_corpus(R), md_stress(R), md_memory(R), md_links(R), md_resilience(R), md_camera(R), md_user_model(R), md_distribute(R), md_soak(R),
                    md_toolchain(R), md_not_measured(R, T), md_method(R)])
