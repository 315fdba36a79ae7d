"""A harness run's options as one typed record, checked against the deployment before any board is opened.

:class:`RunPlan` is what ``python -m host.harness`` (:mod:`host.net.harness`) makes of its argv, and what
:func:`host.net.harness.run_harness` makes of its keyword arguments. Parsing a node name or a ``--kill`` /
``--port`` spec (:func:`kill_spec`, :func:`port_spec`) and checking an option (:meth:`RunPlan.check`) happen
here and nowhere else, so an invalid run stops before the first board is touched.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from host.net.records import KillSpec, RunConfig
from host.net.reference import Deployment

DEFAULT_SAMPLES = 200
#: --window: DATA frames carry one byte of the sample number and nodes remember their last 32 samples.
WINDOW_MAX = 32


def kill_spec(text: str) -> KillSpec:
    """``NODE@K`` or ``NODE@K:M`` (an argparse type)."""
    try:
        node, at = text.split("@")
        a, _, b = at.partition(":")
        return KillSpec(node, int(a), int(b) if b else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--kill expects NODE@K or NODE@K:M, got {text!r}") from None


def port_spec(text: str) -> tuple[str, str]:
    """``NODE=URL`` (an argparse type)."""
    node, sep, url = text.partition("=")
    if not sep or not url:
        raise argparse.ArgumentTypeError(f"--port expects NODE=URL, got {text!r}")
    return node, url


def as_kill_spec(k: KillSpec | tuple[str, int, int | None]) -> KillSpec:
    return k if isinstance(k, KillSpec) else KillSpec(*k)


def default_build(root: Path = Path("build")) -> Path:
    """The newest complete build under ``build/`` (one with firmware), else ``build/demo``."""
    found = []
    for mf in root.glob("*/manifest.json"):
        try:
            if "sensor_links" in json.loads(mf.read_text()):
                found.append(mf)
        except (OSError, ValueError):
            continue
    if not found:
        return root / "demo"
    return max(found, key=lambda p: p.stat().st_mtime).parent


def pick_samples(n_test: int, samples: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded subset of ``samples`` test samples (None or too many: all), in order."""
    if samples is None or samples >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(seed).choice(n_test, size=samples, replace=False))


def check_window(window: int) -> None:
    """Raises ValueError unless 1 <= ``window`` <= 32 (needs no deployment: the CLI checks it first)."""
    if not 1 <= window <= WINDOW_MAX:
        raise ValueError(f"--window must be 1..{WINDOW_MAX} (DATA frames carry one byte of the sample number; "
                         f"nodes remember their last {WINDOW_MAX} samples)")


@dataclass(frozen=True)
class RunPlan:
    """Every option of a harness run (one run, or one per failure configuration with ``sweep``)."""

    build: Path
    ports: Mapping[str, str] = field(default_factory=dict)   # --port NODE=URL
    dead: frozenset[str] = frozenset()                       # --drop
    cut_links: frozenset[str] = frozenset()                  # --drop-link
    loss: float = 0.0
    corrupt: float = 0.0
    deadline_ms: float | None = None     # None: board deadline x non-sensor nodes + 2 s
    samples: int | None = DEFAULT_SAMPLES   # None: the whole test set
    seed: int = 0
    sweep: bool = False
    window: int = 3
    baud: int = 115200
    out: Path | None = None
    json_path: Path | None = None
    kills: tuple[KillSpec, ...] = ()
    hello_timeout: float = 8.0

    @classmethod
    def from_args(cls, args: argparse.Namespace, build: Path) -> "RunPlan":
        """The plan of ``python -m host.harness``'s parsed arguments (``build`` resolved by the caller)."""
        return cls(build=build, ports=dict(args.port), dead=frozenset(args.drop), cut_links=frozenset(args.drop_link),
                   loss=args.loss, corrupt=args.corrupt, deadline_ms=args.deadline, samples=args.samples or None,
                   seed=args.seed, sweep=args.sweep, window=args.window, baud=args.baud, out=args.out,
                   json_path=args.json, kills=tuple(args.kill), hello_timeout=args.hello_timeout)

    def check(self, dep: Deployment) -> None:
        """Every option that needs the deployment; raises ValueError naming the option. (The ports are
        checked when the boards are looked for: :class:`host.net.launch.BoardLauncher`.)"""
        bad = sorted(set(self.dead) - set(dep.nodes))
        if bad:
            raise ValueError(f"--drop {bad}: no such node; nodes are {list(dep.nodes)}")
        bad = sorted(set(self.cut_links) - set(dep.links))
        if bad:
            raise ValueError(f"--drop-link {bad}: no such link; links are {list(dep.links)}")
        for p, name in ((self.loss, "--loss"), (self.corrupt, "--corrupt")):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability, got {p}")

    def host_deadline_ms(self, dep: Deployment) -> float:
        """How long the host waits for a sample before it counts as timed out."""
        if self.deadline_ms is not None:
            return self.deadline_ms
        return dep.board_deadline_ms * sum(n.role != "sensor" for n in dep.nodes.values()) + 2000

    def run_configs(self, dep: Deployment) -> list[RunConfig]:
        """The runs: this plan's failures, or with ``sweep`` every failure configuration of the failable
        nodes (with the plan's cut links, loss and corruption). Kills happen in the first run only."""
        deads: Iterable[frozenset[str]] = [frozenset(dep.failed_in(c)) for c in dep.configurations()] \
            if self.sweep else [self.dead]
        deadline_s = self.host_deadline_ms(dep) / 1000
        configs = []
        for i, dead in enumerate(deads):
            label = dep.config_label(dead)
            if self.cut_links:
                label += " + cut " + ", ".join(sorted(self.cut_links))
            if self.loss:
                label += f" + loss {self.loss:g}"
            if self.corrupt:
                label += f" + corrupt {self.corrupt:g}"
            configs.append(RunConfig(dead, self.cut_links, self.loss, self.corrupt, deadline_s, self.window,
                                     self.seed, label, self.kills if i == 0 else ()))
        return configs
