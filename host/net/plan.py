"""A harness run's options as one typed record, checked against the deployment before any board is opened.

:class:`RunPlan` is what ``python -m host.harness`` (:mod:`host.net.harness`) makes of its argv, and what
:func:`host.net.harness.run_harness` makes of its keyword arguments. Parsing a ``--kill`` / ``--port`` spec
(:func:`kill_spec`, :func:`port_spec`), naming a node (:func:`resolve_node`: its name, ``node<id>`` or the
bare id, for every option) and checking the options (:meth:`RunPlan.check_options`, then
:meth:`RunPlan.check` against the deployment) happen here and nowhere else, so an invalid run stops with one
message naming the option before the first board is touched.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from host.deploy.manifest import ManifestError, read_manifest
from host.deploy.pio_root import current_build
from host.net.records import KillSpec, RunConfig
from host.net.reference import Deployment

DEFAULT_SAMPLES = 200
#: --window: DATA frames carry one byte of the sample number and nodes remember their last 32 samples.
WINDOW_MAX = 32


def kill_spec(text: str) -> KillSpec:
    """``NODE@K`` or ``NODE@K:M`` (an argparse type; the node is resolved by :meth:`RunPlan.check`)."""
    try:
        node, at = text.split("@")
        a, _, b = at.partition(":")
        if not node:
            raise ValueError(text)
        return KillSpec(node, int(a), int(b) if b else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects NODE@K or NODE@K:M (e.g. edge@40:80: kill edge before sample "
                                         f"40, boot it again before sample 80), got {text!r}") from None


def port_spec(text: str) -> tuple[str, str]:
    """``NODE=URL`` (an argparse type; the node is resolved by :meth:`RunPlan.check`)."""
    node, sep, url = text.partition("=")
    if not sep or not node or not url:
        raise argparse.ArgumentTypeError(f"expects NODE=URL (e.g. edge=/dev/ttyACM0 or edge=socket://host:4000), "
                                         f"got {text!r}")
    return node, url


def resolve_node(dep: Deployment, text: str, option: str) -> str:
    """The node ``text`` names: its name, ``node<id>`` or the bare id (the id it has on the wire, in HELLO and
    in ``node_config.h``). Raises ValueError naming ``option`` and listing the nodes with their ids."""
    t = str(text).strip()
    if t in dep.nodes:
        return t
    digits = t[4:] if t.lower().startswith("node") else t
    if digits.isdigit() and int(digits) in dep.node_by_id:
        return dep.node_by_id[int(digits)]
    raise ValueError(f"{option}: no node {text!r} in this build; nodes are {dep.node_list()} (a node answers to "
                     f"its name, node<id> or the id)")


def resolve_link(dep: Deployment, text: str, option: str = "--drop-link") -> str:
    """The link ``A->B`` names, each end resolved by :func:`resolve_node`; raises ValueError naming ``option``."""
    a, sep, b = str(text).partition("->")
    if not sep:
        raise ValueError(f"{option} {text}: expects A->B (e.g. edge->fog); links are {', '.join(dep.links)}")
    src, dst = resolve_node(dep, a, f"{option} {text}"), resolve_node(dep, b, f"{option} {text}")
    name = f"{src}->{dst}"
    if name not in dep.links:
        raise ValueError(f"{option} {text}: {dep.node_label(src)} -> {dep.node_label(dst)} is not a link of this "
                         f"build; links are {', '.join(dep.links)}")
    return name


def kill_text(k: KillSpec) -> str:
    """``NODE@K[:M]`` as given."""
    return f"{k.node}@{k.at}" + (f":{k.back}" if k.back is not None else "")


def place_names(dep: Deployment, prefix: str | None = None, overrides: Mapping[str, str] | None = None,
                skip: Iterable[str] = ()) -> dict[str, str]:
    """node -> its labgrid place: ``<prefix>-<node>`` (prefix: the build directory's name), or the place
    ``--place NODE=PLACE`` gave it; nodes in ``skip`` (attached with ``--port``) have none. The farm
    (:mod:`host.net.farm`) names its exporter groups and places the same way."""
    prefix = prefix or Path(dep.build).resolve().name
    named: dict[str, str] = {}
    for n, p in (overrides or {}).items():
        name = resolve_node(dep, n, f"--place {n}={p}")
        if name in skip:
            raise ValueError(f"--place {n}={p}: {dep.node_label(name)} is attached with --port; give it one or "
                             f"the other")
        named[name] = p
    return {n: named.get(n, f"{prefix}-{n}") for n in dep.nodes if n not in set(skip)}


def as_kill_spec(k: KillSpec | tuple[str, int, int | None]) -> KillSpec:
    return k if isinstance(k, KillSpec) else KillSpec(*k)


def default_build(root: Path = Path("build")) -> Path:
    """The build the promised commands share: ``build/current`` (the latest ``host.build``, the one ``pio run``
    builds and uploads), else the newest build under ``build/`` that has firmware, else ``build/demo``."""
    current = current_build(root / "current")
    if current is not None:
        return current
    found = []
    for build in root.glob("*/"):
        try:
            read_manifest(build, stage="firmware")
        except ManifestError:
            continue
        found.append(build / "manifest.json")
    if not found:
        return root / "demo"
    return max(found, key=lambda p: p.stat().st_mtime).parent


def pick_samples(n_test: int, samples: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded subset of ``samples`` test samples, in order (None: all). More than the test set
    goes round it again, in order, until ``samples`` were sent: a soak run (bench/soak.py) needs more samples
    than a small test set has, and the boards cannot tell a repeated sample from a new one."""
    if samples is None or samples == n_test:
        return np.arange(n_test)
    if samples > n_test:
        return np.arange(samples) % n_test
    return np.sort(np.random.default_rng(seed).choice(n_test, size=samples, replace=False))


def check_window(window: int) -> None:
    """Raises ValueError unless 1 <= ``window`` <= 32 (needs no deployment: the CLI checks it first)."""
    if not 1 <= window <= WINDOW_MAX:
        raise ValueError(f"--window {window}: must be 1..{WINDOW_MAX} samples in flight (DATA frames carry one "
                         f"byte of the sample number; nodes remember their last {WINDOW_MAX} samples)")


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
    baud: int | None = None   # --baud: every node's; None: each node's board baud (board.toml uart.baud)
    out: Path | None = None
    json_path: Path | None = None
    kills: tuple[KillSpec, ...] = ()
    hello_timeout: float = 8.0
    labgrid: str | None = None                               # --labgrid: the coordinator of a board farm
    places: Mapping[str, str] = field(default_factory=dict)  # --place NODE=PLACE (else <prefix>-<node>)
    place_prefix: str | None = None                          # --place-prefix (default: the build's name)

    @classmethod
    def from_args(cls, args: argparse.Namespace, build: Path) -> "RunPlan":
        """The plan of ``python -m host.harness``'s parsed arguments (``build`` resolved by the caller)."""
        ports: dict[str, str] = {}
        for node, url in args.port:
            if node in ports:
                raise ValueError(f"--port {node}={url}: {node} already has --port {ports[node]}")
            ports[node] = url
        return cls(build=build, ports=ports, dead=frozenset(args.drop), cut_links=frozenset(args.drop_link),
                   loss=args.loss, corrupt=args.corrupt, deadline_ms=args.deadline, samples=args.samples or None,
                   seed=args.seed, sweep=args.sweep, window=args.window, baud=args.baud, out=args.out,
                   json_path=args.json, kills=tuple(args.kill), hello_timeout=args.hello_timeout,
                   labgrid=args.labgrid, places=dict(args.place), place_prefix=args.place_prefix)

    def check_options(self) -> None:
        """Every option that needs no deployment; raises ValueError naming the option and the fix."""
        check_window(self.window)
        if self.deadline_ms is not None and not self.deadline_ms > 0:
            raise ValueError(f"--deadline {self.deadline_ms:g}: must be a positive number of milliseconds (the "
                             f"host's wait for a sample; omit it for board deadline x nodes + 2 s)")
        if self.samples is not None and self.samples < 0:
            raise ValueError(f"--samples {self.samples}: must be a positive number of test samples, or 0 for the "
                             f"whole test set")
        for p, name in ((self.loss, "--loss"), (self.corrupt, "--corrupt")):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} {p:g}: must be a probability, 0..1")
        if self.loss + self.corrupt > 1.0:
            raise ValueError(f"--loss {self.loss:g} --corrupt {self.corrupt:g}: one draw per frame decides both, so "
                             f"together they must be at most 1")
        if (self.places or self.place_prefix) and not self.labgrid:
            raise ValueError("--place / --place-prefix name labgrid places: give the coordinator with --labgrid "
                             "HOST:PORT")
        if not self.hello_timeout > 0:
            raise ValueError(f"--hello-timeout {self.hello_timeout:g}: must be a positive number of seconds")
        if self.baud is not None and not self.baud > 0:
            raise ValueError(f"--baud {self.baud}: must be a positive baud rate (e.g. 115200)")
        for k in self.kills:
            where = f"--kill {kill_text(k)}"
            if k.at < 0:
                raise ValueError(f"{where}: K must be a sample number, 0 or more")
            if k.back is not None and k.back <= k.at:
                raise ValueError(f"{where}: M ({k.back}) must come after K ({k.at}): the board is killed before "
                                 f"sample K and booted again before sample M (omit :M to leave it down)")

    def sample_count(self, dep: Deployment) -> int:
        """How many samples a run of this plan sends (the subset; beyond the test set it goes round again)."""
        return dep.info.dataset.test if self.samples is None else self.samples

    def check(self, dep: Deployment) -> "RunPlan":
        """This plan with every node named as the deployment names it (a node answers to its name,
        ``node<id>`` and the bare id), after checking every option against the deployment; raises ValueError
        naming the option, the node and what to do. Runs before any board is opened or launched (what
        the boards themselves say is checked when they are opened: :class:`host.net.transport.Boards`)."""
        self.check_options()
        dead = frozenset(resolve_node(dep, n, f"--drop {n}") for n in self.dead)
        cut = frozenset(resolve_link(dep, l) for l in self.cut_links)
        ports: dict[str, str] = {}
        for n, url in self.ports.items():
            name = resolve_node(dep, n, f"--port {n}={url}")
            if name in ports:
                raise ValueError(f"--port {n}={url}: {dep.node_label(name)} already has --port {ports[name]}")
            ports[name] = url
        kills = tuple(KillSpec(resolve_node(dep, k.node, f"--kill {kill_text(k)}"), k.at, k.back)
                      for k in self.kills)
        places = place_names(dep, self.place_prefix, self.places, skip=ports) if self.labgrid else {}
        plan = replace(self, dead=dead, cut_links=cut, ports=ports, kills=kills, places=places)
        plan.check_failures(dep)
        plan.check_kills(dep)
        return plan

    def check_failures(self, dep: Deployment) -> None:
        """A run with the final node dropped, or with no path left to it, cannot answer a single sample."""
        if self.sweep:
            return  # every failure configuration is run anyway (a configuration without a path fails fast)
        final = dep.final_node
        drops = " ".join(f"--drop {n}" for n in sorted(self.dead, key=list(dep.nodes).index))
        cuts = " ".join(f"--drop-link {l}" for l in sorted(self.cut_links))
        if final in self.dead:
            raise ValueError(f"--drop {final}: {dep.node_label(final)} is the node that sends the RESULT; with it "
                             f"dropped no sample can be answered (drop another node, or run --sweep for every "
                             f"failure configuration)")
        if not dep.has_path(self.dead, self.cut_links):
            raise ValueError(f"{' '.join(x for x in (drops, cuts) if x)}: no path is left from a sensor to "
                             f"{dep.node_label(final)}, so every sample would fail (keep one path, or run --sweep "
                             f"for every failure configuration)")

    def check_kills(self, dep: Deployment) -> None:
        """``--kill``: a board the harness can restart (emulated, launched by it or started by ``pio run -t
        upload`` / ``--start-boards``), samples within the run, not a node already dropped."""
        from boards import load_board

        n = self.sample_count(dep)
        for k in self.kills:
            where, node = f"--kill {kill_text(k)}", dep.node_label(k.node)
            if k.node in self.ports:
                raise ValueError(f"{where}: {node} is attached with --port {self.ports[k.node]}, a board the "
                                 f"harness did not start and cannot restart; --kill works on emulated boards")
            board = load_board(dep.nodes[k.node].board)
            if board.qemu is None and not self.labgrid:   # a labgrid place's power switch restarts any board
                raise ValueError(f"{where}: {node} runs on {board.name}, a real board the harness cannot restart; "
                                 f"--kill works on emulated boards")
            if k.node in self.dead:
                raise ValueError(f"{where}: {node} is dropped for the whole run (--drop {k.node}); kill another "
                                 f"node or do not drop it")
            for what, sample in (("K", k.at), ("M", k.back)):
                if sample is not None and sample >= n:
                    raise ValueError(f"{where}: {what} = {sample} is beyond the run's {n} samples (0..{n - 1}); "
                                     f"pick a sample below {n} or raise --samples")

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
