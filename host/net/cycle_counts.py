"""What a node's cycle counts are, and what time they stand for.

A node times each inference with the counter its HELLO names (:class:`host.net.protocol.CycleCounter`) and
reports raw counts (per sample in RESULT, summed in STATS). What a count *means* depends on where the image runs:

* **DWT->CYCCNT** (real boards; enabled at start-up, ``firmware/bsp/board_common.c``): true core cycles;
  ms = cycles / core clock is the board's own time.
* **SysTick on silicon** (a core whose DWT does not count): SysTick runs on the core clock, so these are core
  cycles too, to the cycle.
* **SysTick under QEMU** (every emulated board: :mod:`codegen.emulator` runs QEMU with ``-icount shift=0``):
  SysTick counts *virtual* time, which advances 1 ns per executed instruction, so counts × 1e9 / clock
  (:func:`codegen.emulator.instructions_per_count`) = **instructions executed**. They are not cycles (a
  Cortex-M4 spends at least one cycle per instruction: loads take 2, taken branches refill the pipeline, flash
  adds wait states), and the emulator's milliseconds are not silicon time. The only honest time is a bound:
  instructions / clock ≤ the silicon time at that clock (CPI ≥ 1).

A cycle *estimate* for emulated runs (a per-kernel cycle model: the kernels issue) does not exist yet;
:func:`compute_figures` takes it (``estimate``), reports it as :attr:`ComputeFigures.cycle_estimate` and then
derives the milliseconds from it.

Whether a board is emulated comes from its ``boards/<name>/board.toml`` (``kind``), which counter it used from
its HELLO; an older firmware's 24-byte HELLO does not say (``UNKNOWN``): emulated images have always used
SysTick, real ones DWT (or SysTick), both core cycles.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from codegen.emulator import instructions_per_count
from host.net.protocol import CycleCounter

#: How the reports name each kind of figure.
LABEL_INSTRUCTIONS = "instructions (QEMU -icount)"
LABEL_DWT = "cycles (DWT)"
LABEL_SYSTICK = "cycles (SysTick)"
LABEL_CORE = "cycles (core clock)"   # a real board whose HELLO did not say which counter


@dataclass(frozen=True)
class CountMeaning:
    """What one node's raw counts are: ``unit`` per count (``per_count`` of them), and whether the unit is
    silicon cycles (then ms = units / clock is the board's real time)."""

    unit: str            # "cycles" | "instructions"
    label: str           # LABEL_*
    counter: str         # the counter the board used: "DWT", "SysTick" or "unknown"
    per_count: float     # units per raw count
    silicon_cycles: bool


def counter_name(counter: CycleCounter) -> str:
    """How the reports name a HELLO's counter."""
    return {CycleCounter.DWT: "DWT", CycleCounter.SYSTICK: "SysTick"}.get(counter, "unknown")


def count_meaning(counter: CycleCounter, emulated: bool, cpu_hz: int) -> CountMeaning:
    """The meaning of a board's counts, from its HELLO's counter and clock and its board's ``kind``."""
    name = counter_name(counter)
    if counter is CycleCounter.DWT:
        return CountMeaning("cycles", LABEL_DWT, name, 1.0, True)
    if emulated:  # SysTick (emulated images never use DWT: QEMU does not count it) under -icount
        return CountMeaning("instructions", LABEL_INSTRUCTIONS, "SysTick", instructions_per_count(cpu_hz), False)
    if counter is CycleCounter.SYSTICK:
        return CountMeaning("cycles", LABEL_SYSTICK, name, 1.0, True)
    return CountMeaning("cycles", LABEL_CORE, name, 1.0, True)


@dataclass(frozen=True)
class ComputeFigures:
    """One node's compute per sample over a run, in the unit its counts stand for, and the time that honestly
    follows from it."""

    unit: str                    # "cycles" | "instructions"
    label: str                   # e.g. "instructions (QEMU -icount)", "cycles (DWT)"
    counter: str                 # "DWT" | "SysTick" | "unknown"
    mean: float
    max: float
    samples: int | None          # inferences counted (STATS), None when per sample from RESULTs
    source: str                  # "RESULT" (per sample, the final node) | "STATS" (the run's mean)
    counts_mean: float           # the raw counts as the board reported them
    per_count: float             # units per raw count
    cpu_hz: int
    ms_mean: float | None        # silicon time per sample: from true cycles or the cycle estimate, else None
    ms_basis: str                # how ms_mean (or ms_lower_bound) was derived, for the report
    ms_lower_bound: float | None  # emulated: instructions / clock, the least the silicon can take (CPI >= 1)
    cycle_estimate: float | None = None  # emulated: cycles per sample from a cycle model (not available yet)
    p50: float | None = None
    p95: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compute_figures(counts: dict[str, Any] | None, meaning: CountMeaning, cpu_hz: int,
                    estimate: float | None = None) -> ComputeFigures | None:
    """``counts`` (a node's raw counts: ``mean``, ``max``, optional ``p50``/``p95``/``samples``, ``source``) in
    the unit ``meaning`` gives them, with milliseconds only where they are silicon time. ``estimate``: cycles
    per sample from a cycle model of the node's kernels, for emulated boards (the kernels issue; nothing
    passes one yet) -- then the milliseconds come from it."""
    if not counts:
        return None
    k = meaning.per_count
    mean = counts["mean"] * k
    mhz = f"{cpu_hz / 1e6:g} MHz"
    if meaning.silicon_cycles:
        ms, basis, bound = mean / cpu_hz * 1e3, f"{meaning.label} at {mhz}", None
    elif estimate is not None:
        ms, basis, bound = estimate / cpu_hz * 1e3, f"cycle estimate at {mhz}", mean / cpu_hz * 1e3
    else:
        ms, basis, bound = None, f"lower bound: instructions at 1 cycle each, {mhz} (QEMU time is virtual)", \
            mean / cpu_hz * 1e3
    scaled = {q: counts[q] * k if counts.get(q) is not None else None for q in ("p50", "p95")}
    return ComputeFigures(unit=meaning.unit, label=meaning.label, counter=meaning.counter, mean=mean,
                          max=counts["max"] * k, samples=counts.get("samples"), source=counts["source"],
                          counts_mean=counts["mean"], per_count=k, cpu_hz=cpu_hz, ms_mean=ms, ms_basis=basis,
                          ms_lower_bound=bound, cycle_estimate=estimate, **scaled)
