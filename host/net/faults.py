"""Injected failures as policies: one class per kind, all asked the same few questions by the router.

The router (:mod:`host.net.router`) knows no fault by name. It asks a :class:`Faults` (every policy of a run,
built from its :class:`~host.net.records.RunConfig` by :func:`build_faults`):

* ``nodes_down(k)`` / ``links_cut(k)``: which nodes count as failed and which links as cut for sample ``k``
  (the host then sends LINK_DOWN in a failed node's name, and uses both to see whether a path is left);
* ``board_actions(k)``: what to do to the boards before sample ``k`` is sent (kill, restart);
* ``judge(k, link, body)``: what to do with a frame a board sent on ``link`` — ``None`` forwards it
  unchanged, else a :class:`FrameVerdict`: replace it with LINK_DOWN, discard it, or send altered bytes.

Kinds: :class:`DropPolicy` (``--drop``: node dead for the run), :class:`CutPolicy` (``--drop-link``),
:class:`LossPolicy` (``--loss``), :class:`CorruptPolicy` (``--corrupt``), :class:`KillPolicy` (``--kill``:
a real crash of an emulated board, which the router must notice by itself: the policy does not say the
node is down).

``judge`` runs for every routed frame, so it is kept cheap: only the policies that can touch a link's frames
are asked (none: one dict lookup), and the random ones share one lazily drawn number per frame.
"""
from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

from host.net import protocol as P
from host.net.records import KillSpec, RunConfig
from host.net.reference import Deployment, LinkInfo


class FrameAction(enum.Enum):
    LINK_DOWN = "link_down"   # send LINK_DOWN in the producer's name instead (the receiver need not wait)
    DISCARD = "discard"       # send nothing (the receiver's deadline decides)
    ALTER = "alter"           # send ``FrameVerdict.data`` instead of the frame


@dataclass(frozen=True)
class FrameVerdict:
    action: FrameAction
    label: str                # what the record says the host did (SampleRecord.delivery): cut | lost | corrupt
    data: bytes = b""         # ALTER: the bytes to send, delimiter included
    down_reason: int = int(P.LinkDownReason.UNSPECIFIED)   # LINK_DOWN: its reason byte


class BoardControl(Protocol):
    """What a fault may do to the boards themselves (:class:`host.net.transport.Boards` does it)."""

    def kill(self, name: str) -> None: ...

    def restart(self, name: str) -> None: ...


BoardAction = Callable[[BoardControl], None]


class LinkNoise:
    """One seeded random stream per link (the same seed gives the same lost and corrupted frames)."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng: dict[int, random.Random] = {}

    def stream(self, link_id: int) -> random.Random:
        rng = self._rng.get(link_id)
        if rng is None:
            rng = self._rng[link_id] = random.Random(self._seed * 1_000_003 + link_id)
        return rng


class FrameDraw:
    """The random draw of one frame, shared by the random policies: one uniform number per frame decides
    at most one random fault (each policy owns a band of [0, 1)), and it is drawn only if a policy asks, so
    a cut link's frames do not consume the link's stream."""

    __slots__ = ("_noise", "_link_id", "_u")

    def __init__(self, noise: LinkNoise, link_id: int) -> None:
        self._noise = noise
        self._link_id = link_id
        self._u: float | None = None

    def rng(self) -> random.Random:
        return self._noise.stream(self._link_id)

    def u(self) -> float:
        if self._u is None:
            self._u = self.rng().random()
        return self._u


class FaultPolicy(Protocol):
    """One kind of injected failure, as the router sees it (:class:`NoFault` answers "nothing" to all)."""

    def nodes_down(self, k: int) -> frozenset[str]:
        """Nodes that count as failed for sample ``k`` (the host stands in for them with LINK_DOWN)."""
        ...

    def links_cut(self, k: int) -> frozenset[str]:
        """Links that count as cut for sample ``k`` (for the path check; their frames go to ``on_frame``)."""
        ...

    def board_actions(self, k: int) -> Sequence[BoardAction]:
        """What to do to the boards before sample ``k`` is sent."""
        ...

    def frame_links(self) -> frozenset[str]:
        """The links whose frames ``on_frame`` may touch (it is asked about no others)."""
        ...

    def on_frame(self, k: int, link: LinkInfo, body: bytes, draw: FrameDraw) -> FrameVerdict | None:
        """What to do with a frame of sample ``k`` a board sent on ``link`` (``None``: no say)."""
        ...


class NoFault:
    """Base of the policies: a fault that does nothing (each kind overrides what it does)."""

    def nodes_down(self, k: int) -> frozenset[str]:
        return frozenset()

    def links_cut(self, k: int) -> frozenset[str]:
        return frozenset()

    def board_actions(self, k: int) -> Sequence[BoardAction]:
        return ()

    def frame_links(self) -> frozenset[str]:
        return frozenset()

    def on_frame(self, k: int, link: LinkInfo, body: bytes, draw: FrameDraw) -> FrameVerdict | None:
        return None


class DropPolicy(NoFault):
    """``--drop``: the nodes are failed for the whole run (they get nothing; LINK_DOWN goes in their name)."""

    def __init__(self, nodes: Iterable[str]) -> None:
        self.nodes = frozenset(nodes)

    def nodes_down(self, k: int) -> frozenset[str]:
        return self.nodes


class CutPolicy(NoFault):
    """``--drop-link``: every frame on the links becomes LINK_DOWN in the producer's name."""

    VERDICT = FrameVerdict(FrameAction.LINK_DOWN, "cut", down_reason=int(P.LinkDownReason.UNSPECIFIED))

    def __init__(self, links: Iterable[str]) -> None:
        self.links = frozenset(links)

    def links_cut(self, k: int) -> frozenset[str]:
        return self.links

    def frame_links(self) -> frozenset[str]:
        return self.links

    def on_frame(self, k: int, link: LinkInfo, body: bytes, draw: FrameDraw) -> FrameVerdict | None:
        return self.VERDICT


class RandomBandPolicy(NoFault):
    """A random fault on the frames of ``links``: it hits a frame when the frame's shared draw falls in its band
    [start, start + p) (the random policies own disjoint bands, so one draw decides at most one of them)."""

    def __init__(self, p: float, links: Iterable[str], start: float = 0.0) -> None:
        self.lo, self.hi = start, start + p
        self.links = frozenset(links)

    def frame_links(self) -> frozenset[str]:
        return self.links

    def hits(self, draw: FrameDraw) -> bool:
        return self.lo <= draw.u() < self.hi


class LossPolicy(RandomBandPolicy):
    """``--loss P``: a frame is lost, without LINK_DOWN (the receiver's deadline decides)."""

    VERDICT = FrameVerdict(FrameAction.DISCARD, "lost")

    def on_frame(self, k: int, link: LinkInfo, body: bytes, draw: FrameDraw) -> FrameVerdict | None:
        return self.VERDICT if self.hits(draw) else None


class CorruptPolicy(RandomBandPolicy):
    """``--corrupt P``: one bit of the frame (header, payload or CRC) flipped and the frame re-stuffed, so it
    is well framed and the receiver's CRC check drops it."""

    def on_frame(self, k: int, link: LinkInfo, body: bytes, draw: FrameDraw) -> FrameVerdict | None:
        if not self.hits(draw):
            return None
        raw = bytearray(P.cobs_decode(body))
        bit = draw.rng().randrange(len(raw) * 8)
        raw[bit // 8] ^= 1 << (bit % 8)
        return FrameVerdict(FrameAction.ALTER, "corrupt", P.cobs_encode(bytes(raw)) + b"\x00")


class KillPolicy(NoFault):
    """``--kill NODE@K[:M]``: SIGKILL the node's emulated board before sample K, boot it again before M.

    The node is not reported down: the router has to find out (port closed, board silent), as with a real
    crash, and pick the board up again when it answers HELLO."""

    def __init__(self, spec: KillSpec) -> None:
        self.spec = spec

    def board_actions(self, k: int) -> Sequence[BoardAction]:
        node = self.spec.node
        out: list[BoardAction] = []
        if k == self.spec.at:
            out.append(lambda boards: boards.kill(node))
        if k == self.spec.back:
            out.append(lambda boards: boards.restart(node))
        return out


class Faults:
    """The policies of one run, asked together (in order: the first frame verdict wins)."""

    def __init__(self, policies: Sequence[FaultPolicy], seed: int = 0) -> None:
        self.policies = tuple(policies)
        self._noise = LinkNoise(seed)
        judges: dict[str, list[FaultPolicy]] = {}
        for p in self.policies:
            for link in p.frame_links():
                judges.setdefault(link, []).append(p)
        #: link name -> the policies that judge its frames (a link without any is not in the dict)
        self._judges = {link: tuple(ps) for link, ps in judges.items()}

    def nodes_down(self, k: int) -> frozenset[str]:
        return frozenset().union(*(p.nodes_down(k) for p in self.policies))

    def links_cut(self, k: int) -> frozenset[str]:
        return frozenset().union(*(p.links_cut(k) for p in self.policies))

    def board_actions(self, k: int) -> list[BoardAction]:
        return [a for p in self.policies for a in p.board_actions(k)]

    def judge(self, k: int, link: LinkInfo, body: bytes) -> FrameVerdict | None:
        judges = self._judges.get(link.name)
        if judges is None:
            return None
        draw = FrameDraw(self._noise, link.id)
        for p in judges:
            verdict = p.on_frame(k, link, body, draw)
            if verdict is not None:
                return verdict
        return None


def build_faults(cfg: RunConfig, dep: Deployment) -> Faults:
    """The policies of ``cfg``. Loss and corruption apply to the board-to-board links (not to the host's
    feeds nor the RESULT) and split one draw per frame: lost below ``loss``, corrupted up to ``loss +
    corrupt`` (as one stream per link, seeded by ``cfg.seed``)."""
    links = frozenset(dep.links)
    policies: list[FaultPolicy] = []
    if cfg.dead:
        policies.append(DropPolicy(cfg.dead))
    if cfg.cut_links:
        policies.append(CutPolicy(cfg.cut_links))
    if cfg.loss:
        policies.append(LossPolicy(cfg.loss, links))
    if cfg.corrupt:
        policies.append(CorruptPolicy(cfg.corrupt, links, start=cfg.loss))
    policies += [KillPolicy(spec) for spec in cfg.kills]
    return Faults(policies, cfg.seed)
