"""Static memory planning: every activation and scratch buffer gets a fixed offset in one arena.

* Reshape-like ops alias their input (same bytes, no code). Elementwise kernels that read each element
  before writing it (ADD, MUL, requantize) may write over an input that dies at that op.
* Window kernels with a "may overlap" rule (``Kernel.overlap``: convolution, pooling) may start their output
  a few bytes below an input that dies at that op, TinyEngine-style: the rule (codegen/ops/overlap.py) gives
  the least distance at which the kernel's loop order never overwrites an input byte before its last read.
  The pair becomes one block of ``max(out, distance + in)`` bytes (a group of tensors at fixed offsets).
* Model inputs and outputs are not in the arena: the kernels read ``in[k]`` and write ``out[k]``
  (the caller's buffers) directly, so no copies are needed at either end.
* Scratch is planned like a tensor that lives for one op only, inside the same arena.
* State (LSTM/SVDF variable tensors, ``Step.state``) is planned like a tensor live at every step, so no other
  buffer ever takes its bytes and it survives from one invocation to the next.
* Offsets come from first-fit placement (TFLM's GreedyMemoryPlanner idea) tried under several
  orderings; the best is kept. The lower bound is the largest sum of block sizes live at any one op, where
  a block is a tensor, a scratch buffer, or a group of tensors the plan lets share bytes (aliases, in-place
  and overlapping outputs, counted at its full extent): no placement of these blocks can use less. Without
  overlaps it is the classic bound (sum of live tensors); with them it is lower by the bytes they save.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from .graph import Graph
from .ops import KERNELS
from .ops.data_movement import COPY
from .step import Step


@dataclass
class Buffer:
    """A block of the arena: one or more tensors sharing storage, or one op's scratch."""

    name: str
    size: int
    first: int  # first step (index into the step list) it must hold data
    last: int  # last step reading it
    tensors: list[int] = field(default_factory=list)
    scratch_of: int | None = None  # step index, for scratch buffers
    offset: int = -1
    is_state: bool = False  # a variable tensor: live at every step and between invocations
    #: tensor -> its bytes' offset from the buffer's start (non-zero where an output overlaps its input)
    tensor_offsets: dict[int, int] = field(default_factory=dict)

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last

    def overlaps_in_space(self, other: "Buffer") -> bool:
        return self.offset < other.offset + other.size and other.offset < self.offset + self.size


@dataclass(frozen=True)
class Location:
    """Where a tensor's bytes are: ``arena`` (offset), ``input``/``output`` (position), ``const`` (tensor)."""

    kind: str
    index: int


@dataclass(frozen=True)
class Overlap:
    """A step whose output shares bytes with the input that dies there: the input starts ``distance`` bytes
    after the output (0: exactly in place, elementwise)."""

    step: int
    output: int
    input: int
    distance: int


@dataclass
class MemoryPlan:
    arena_size: int
    lower_bound: int
    alignment: int
    buffers: list[Buffer]
    locations: dict[int, Location]
    #: step index -> (arena offset, bytes) of its scratch
    scratch: dict[int, tuple[int, int]]
    #: (output position, tensor) pairs that must be copied to ``out[k]`` after the last op
    output_copies: list[tuple[int, int]]
    #: placement strategy that won
    strategy: str = ""
    #: variable tensor -> (arena offset, bytes): state kept between invocations
    state: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: in-place steps (output over a dying input), in step order
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def state_bytes(self) -> int:
        return sum(size for _, size in self.state.values())

    @property
    def scratch_bytes(self) -> int:
        return max((size for _, size in self.scratch.values()), default=0)

    def live_at(self, step: int) -> list[Buffer]:
        return [b for b in self.buffers if b.first <= step <= b.last]

    def validate(self) -> None:
        """Raise AssertionError if two buffers live at the same time share bytes, or one leaves the arena."""
        for b in self.buffers:
            if b.offset < 0 or b.offset + b.size > self.arena_size:
                raise AssertionError(f"{b.name} [{b.offset}, {b.offset + b.size}) outside arena {self.arena_size}")
            if b.offset % self.alignment:
                raise AssertionError(f"{b.name} at {b.offset} is not {self.alignment}-byte aligned")
        for i, a in enumerate(self.buffers):
            for b in self.buffers[i + 1:]:
                if a.overlaps_in_time(b) and a.overlaps_in_space(b):
                    raise AssertionError(f"{a.name} and {b.name} are live together and overlap")


class _Groups:
    """Union-find over tensor indices; a group is one storage block. Each tensor sits at a byte offset in its
    group's block (``offset``): 0 for aliases and elementwise in-place ops, the overlap distance for a window
    kernel whose output starts below its input (ops/overlap.py)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.rel: dict[int, int] = {}  # offset of a tensor relative to its parent

    def find(self, t: int) -> int:
        self.parent.setdefault(t, t)
        self.rel.setdefault(t, 0)
        path = []
        while self.parent[t] != t:
            path.append(t)
            t = self.parent[t]
        for p in reversed(path):  # compress: each now points at the root, its offset summed along the way
            if self.parent[p] != t:
                self.rel[p] += self.rel[self.parent[p]]
                self.parent[p] = t
        return t

    def offset(self, t: int) -> int:
        """Byte offset of ``t`` relative to its group's root."""
        self.find(t)
        return self.rel[t]

    def union(self, keep: int, other: int, delta: int = 0) -> None:
        """Merge ``other``'s group into ``keep``'s, with ``other`` at ``offset(keep) + delta``."""
        rk, ro = self.find(keep), self.find(other)
        if rk == ro:
            return
        self.rel[ro] = self.offset(keep) + delta - self.offset(other)
        self.parent[ro] = rk


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def _first_fit(buffers: list[Buffer], alignment: int) -> int:
    placed: list[Buffer] = []
    for b in buffers:
        busy = sorted((p.offset, p.offset + p.size) for p in placed if p.overlaps_in_time(b))
        offset = 0
        for start, end in busy:
            if offset + b.size <= start:
                break
            offset = max(offset, _align(end, alignment))
        b.offset = offset
        placed.append(b)
    return max((b.offset + b.size for b in buffers), default=0)


_ORDERINGS: dict[str, Callable[[Buffer], tuple]] = {
    "size": lambda b: (-b.size, b.first),
    "size-lifetime": lambda b: (-b.size, -(b.last - b.first), b.first),
    "area": lambda b: (-b.size * (b.last - b.first + 1), b.first),
    "lifetime": lambda b: (-(b.last - b.first), -b.size),
    "first-use": lambda b: (b.first, -b.size),
}


_RANDOM_TRIES = 200


def lower_bound(buffers: list[Buffer], num_steps: int) -> int:
    """Largest total size of buffers live at the same step."""
    return max((sum(b.size for b in buffers if b.first <= s <= b.last) for s in range(num_steps)), default=0)


@dataclass
class _Liveness:
    """Which step writes and which steps read each tensor."""

    producer: dict[int, int]
    readers: dict[int, list[int]]

    @classmethod
    def of(cls, steps: list[Step]) -> "_Liveness":
        producer: dict[int, int] = {}
        readers: dict[int, list[int]] = {}
        for i, step in enumerate(steps):
            for t in step.outputs:
                producer[t] = i
            for t in step.inputs:
                readers.setdefault(t, []).append(i)
            if step.alias_of is not None:
                readers.setdefault(step.alias_of, []).append(i)
        return cls(producer, readers)

    def last_use(self, groups: _Groups, root: int) -> int:
        """Last step touching any tensor of the storage group ``root``."""
        members = [t for t in list(groups.parent) if groups.find(t) == root]
        return max((s for t in members for s in self.readers.get(t, []) + [self.producer.get(t, -1)]), default=-1)


def plan_memory(graph: Graph, steps: list[Step], alignment: int = 4, inplace: bool = True,
                overlap: bool = True) -> MemoryPlan:
    """Assign storage to every tensor the steps touch. May turn an alias step into a copy (see below).

    With ``inplace``, elementwise outputs take a dying input's bytes and window kernels with a "may overlap"
    rule start their output just below their dying input. Merging a pair into one block keeps the block for
    the pair's whole lifetime, which can cost more than it saves; so the plan is made with and without the
    window overlaps and the smaller arena is kept, the overlapped one on a tie (``overlap=False``: only
    without)."""
    plan = _plan(graph, steps, alignment, inplace, overlap=False)
    if inplace and overlap:
        overlapped = _plan(graph, steps, alignment, inplace, overlap=True)
        if overlapped.arena_size <= plan.arena_size:
            plan = overlapped
    plan.validate()
    return plan


def _plan(graph: Graph, steps: list[Step], alignment: int, inplace: bool, overlap: bool) -> MemoryPlan:
    groups = _Groups()
    # External storage a group is pinned to: ("input", k), ("output", k) or ("const", tensor).
    pinned: dict[int, tuple[str, int]] = {}
    output_copies = _pin_external(graph, steps, groups, pinned)
    _alias_reshapes(steps, groups, pinned)
    live = _Liveness.of(steps)
    overlaps = _share_inplace(graph, steps, groups, pinned, live, overlap, alignment) if inplace else []
    roots = _storage_groups(graph, steps, groups)
    root_buffer = _tensor_buffers(graph, roots, pinned, live, groups)
    buffers = list(root_buffer.values()) + _state_buffers(graph, steps)
    for i, step in enumerate(steps):
        if step.scratch_bytes > 0:
            buffers.append(Buffer(name=f"scratch of op {step.op_index}", size=step.scratch_bytes, first=i, last=i,
                                  scratch_of=i))
    bound = lower_bound(buffers, len(steps))
    arena_size, strategy = _place(buffers, alignment, bound)
    locations = _locations(roots, pinned, root_buffer)
    scratch = {b.scratch_of: (b.offset, b.size) for b in buffers if b.scratch_of is not None}
    state = {b.tensors[0]: (b.offset, b.size) for b in buffers if b.is_state}
    locations.update({t: Location("arena", offset) for t, (offset, _) in state.items()})
    return MemoryPlan(arena_size=arena_size, lower_bound=bound, alignment=alignment,
                      buffers=buffers, locations=locations, scratch=scratch, output_copies=output_copies,
                      strategy=strategy, state=state, overlaps=overlaps)


def _state_buffers(graph: Graph, steps: list[Step]) -> list[Buffer]:
    """One whole-run buffer per variable tensor the steps keep (several steps may share one)."""
    state = dict.fromkeys(t for s in steps for t in s.state)
    return [Buffer(name=f"state '{graph.tensors[t].name}'", size=graph.tensors[t].nbytes, first=0,
                   last=max(len(steps) - 1, 0), tensors=[t], is_state=True) for t in state]


def _pin(groups: _Groups, pinned: dict[int, tuple[str, int]], t: int, where: tuple[str, int]) -> bool:
    """Pin ``t``'s group to external storage; False if it is already pinned elsewhere."""
    root = groups.find(t)
    if root in pinned and pinned[root] != where:
        return False
    pinned[root] = where
    return True


def _pin_external(graph: Graph, steps: list[Step], groups: _Groups,
                  pinned: dict[int, tuple[str, int]]) -> list[tuple[int, int]]:
    """Pin model inputs, constants read as data and model outputs; returns the outputs that need a copy."""
    output_copies: list[tuple[int, int]] = []
    for k, t in enumerate(graph.inputs):
        _pin(groups, pinned, t, ("input", k))
    for step in steps:
        for t in step.const_inputs:
            _pin(groups, pinned, t, ("const", t))
    for k, t in enumerate(graph.outputs):
        # An output that is also an input, a constant or another output gets its own copy at the end.
        if not _pin(groups, pinned, t, ("output", k)):
            output_copies.append((k, t))
    return output_copies


def _alias_reshapes(steps: list[Step], groups: _Groups, pinned: dict[int, tuple[str, int]]) -> None:
    # Reshapes alias unless that would tie two different external buffers together (e.g. a model input
    # reshaped straight into a model output): then the step stays a real copy.
    for step in steps:
        if step.alias_of is None:
            continue
        rx, ry = groups.find(step.alias_of), groups.find(step.outputs[0])
        px, py = pinned.get(rx), pinned.get(ry)
        if px is not None and py is not None and px != py:
            step.kernel = COPY.name
            step.alias_of = None
            continue
        groups.union(step.alias_of, step.outputs[0])  # same bytes: the output at the input's offset
        if px is None and py is not None:
            pinned[groups.find(rx)] = py


def _share_inplace(graph: Graph, steps: list[Step], groups: _Groups, pinned: dict[int, tuple[str, int]],
                   live: _Liveness, overlap: bool, alignment: int) -> list[Overlap]:
    """Let an output take the bytes of an input that dies at the same step: elementwise kernels at the
    input's own offset (``Step.inplace``), window kernels with a "may overlap" rule (``Kernel.overlap``)
    starting that many bytes (aligned up) below the input."""
    shared: list[Overlap] = []
    for i, step in enumerate(steps):
        for out, inp, delta in _inplace_candidates(graph, step, overlap):
            ro, ri = groups.find(out), groups.find(inp)
            if ro == ri or ro in pinned or ri in pinned:
                continue
            if live.last_use(groups, ri) != i or live.producer.get(out) != i:
                continue
            delta = _align(delta, alignment)
            groups.union(inp, out, -delta)
            shared.append(Overlap(i, out, inp, delta))
            break  # one output, one donor
    return shared


def _inplace_candidates(graph: Graph, step: Step, overlap: bool) -> list[tuple[int, int, int]]:
    """(output, input, bytes the input starts after the output) pairs ``step``'s kernel allows."""
    pairs = [(out, inp, 0) for out, inp in step.inplace if graph.tensors[out].nbytes == graph.tensors[inp].nbytes]
    rule = KERNELS[step.kernel].overlap if step.kernel in KERNELS else None
    if overlap and rule is not None and step.inputs and step.outputs:
        delta = rule(step.params)
        if delta is not None:
            pairs.append((step.outputs[0], step.inputs[0], delta))
    return pairs


def _storage_groups(graph: Graph, steps: list[Step], groups: _Groups) -> dict[int, list[int]]:
    """Group root -> the tensors sharing its storage, for every tensor the module touches."""
    used = {t for s in steps for t in s.inputs + s.outputs + s.const_inputs}
    used |= {s.alias_of for s in steps if s.alias_of is not None}
    used |= set(graph.inputs) | set(graph.outputs)
    roots: dict[int, list[int]] = {}
    for t in used:
        groups.find(t)
    for t in list(groups.parent):
        roots.setdefault(groups.find(t), []).append(t)
    return roots


def _tensor_buffers(graph: Graph, roots: dict[int, list[int]], pinned: dict[int, tuple[str, int]],
                    live: _Liveness, groups: _Groups) -> dict[int, Buffer]:
    """One arena buffer per group that is not external storage and is live at some step: it spans its
    tensors at their offsets in the group (one tensor, or a chain of outputs overlapping their inputs)."""
    root_buffer: dict[int, Buffer] = {}
    for root, tensors in sorted(roots.items()):
        if root in pinned:
            continue
        times = ([live.producer[t] for t in tensors if t in live.producer]
                 + [s for t in tensors for s in live.readers.get(t, [])])
        if not times:
            continue
        base = min(groups.offset(t) for t in tensors)
        offsets = {t: groups.offset(t) - base for t in sorted(tensors)}
        root_buffer[root] = Buffer(name=graph.tensors[min(tensors)].name,
                                   size=max(offsets[t] + graph.tensors[t].nbytes for t in tensors),
                                   first=min(times), last=max(times), tensors=sorted(tensors),
                                   tensor_offsets=offsets)
    return root_buffer


def _place(buffers: list[Buffer], alignment: int, bound: int) -> tuple[int, str]:
    """Give every buffer its offset; returns (arena size, name of the ordering that won)."""
    best: tuple[int, str, list[int]] | None = None
    for name, key in _ORDERINGS.items():
        size = _first_fit(sorted(buffers, key=key), alignment)
        if best is None or size < best[0]:
            best = (size, name, [b.offset for b in buffers])
    # First fit is order-sensitive; when no fixed ordering reaches the bound, try seeded random
    # perturbations of the size ordering (deterministic, cheap for the tens of buffers of MCU models).
    rng = random.Random(0)
    tries = 0
    while best is not None and best[0] > _align(bound, alignment) and tries < _RANDOM_TRIES:
        tries += 1
        noisy = sorted(buffers, key=lambda b: (-b.size * rng.uniform(0.5, 1.5), rng.random()))
        size = _first_fit(noisy, alignment)
        if size < best[0]:
            best = (size, f"random-{tries}", [b.offset for b in buffers])
    assert best is not None or not buffers
    arena_size, strategy, offsets = best if best is not None else (0, "none", [])
    for b, off in zip(buffers, offsets):
        b.offset = off
    return arena_size, strategy


def _locations(roots: dict[int, list[int]], pinned: dict[int, tuple[str, int]],
               root_buffer: dict[int, Buffer]) -> dict[int, Location]:
    """Where each tensor lives: its pinned external buffer or its place in its group's arena block."""
    locations: dict[int, Location] = {}
    for root, tensors in roots.items():
        if root in pinned:
            kind, index = pinned[root]
            for t in tensors:
                locations[t] = Location(kind, index)
        elif root in root_buffer:
            block = root_buffer[root]
            for t in tensors:
                locations[t] = Location("arena", block.offset + block.tensor_offsets[t])
    return locations
