"""Each board's STATS counters over a run, summed across reboots.

A board's STATS counters (docs/protocol.md) count from its boot; a RESET leaves them alone (it only clears
``cycles_max``). A board that reboots in the middle of a run (``--kill`` and back, a watchdog, a new upload)
starts again from zero, so "STATS at the end minus STATS at the start" would cover only what came after the
reboot, or wrap around. :class:`StatsLedger` keeps the run's counters as **segments**, one per boot: a
segment ends when the board reboots (a boot HELLO, or counters that ran backwards), at the last STATS heard
before it; the run's totals are the sum of the segments. To keep what is lost at a reboot small, the host asks
every live board for STATS every couple of seconds during a run, and a board it is about to kill right before.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Mapping

from host.net import protocol as P

#: The runtime's own counters (STATS 17..23): what the report lists per board when they are not 0.
RUNTIME_FIELDS = ("samples_down", "late_inputs", "evictions", "unknown_links", "bad_tensors", "invoke_errors",
                  "tx_errors")
STATS_FIELDS = ("rx_frames", "tx_frames", "rx_crc", "rx_truncated", "rx_length", "rx_duplicate", "rx_stale",
                "rx_overrun", "input_timeouts", "samples", *RUNTIME_FIELDS)
#: Seconds between the STATS requests to every live board during a run.
STATS_POLL_S = 2.0


def stats_delta(before: P.Stats | None, after: P.Stats | None) -> dict[str, int] | None:
    """STATS counters from ``before`` to ``after`` of one boot (they wrap at 32 bits)."""
    if before is None or after is None:
        return None
    return {f: (getattr(after, f) - getattr(before, f)) % (1 << 32) for f in STATS_FIELDS}


def went_back(last: P.Stats, now: P.Stats) -> bool:
    """Counters that ran backwards: the board started counting again from zero (it rebooted)."""
    return now.rx_frames < last.rx_frames or now.tx_frames < last.tx_frames or now.samples < last.samples


class StatsLedger:
    """A run's STATS per board, one segment per boot (see the module's docstring)."""

    def __init__(self) -> None:
        self.first: dict[str, P.Stats] = {}   # node -> STATS at the start of its open segment
        self.last: dict[str, P.Stats] = {}    # node -> the latest STATS of its open segment
        self.closed: dict[str, list[tuple[P.Stats, P.Stats]]] = defaultdict(list)
        self.reboots: Counter = Counter()     # node -> reboots seen during the run

    def begin(self, stats: Mapping[str, P.Stats]) -> None:
        """The run's baseline (the STATS read before its first sample)."""
        for name, st in stats.items():
            self.first[name] = self.last[name] = st

    def seen(self, name: str, st: P.Stats) -> None:
        """A STATS frame from ``name``."""
        last = self.last.get(name)
        if last is None:
            self.first[name] = st     # first heard of in this run: its counts start here
        elif went_back(last, st):
            self.rebooted(name)       # a reboot whose boot HELLO the host did not see
        self.last[name] = st

    def rebooted(self, name: str) -> None:
        """``name`` rebooted: its open segment ends at the last STATS heard, the next one counts from zero."""
        if name in self.last:
            self.closed[name].append((self.first[name], self.last[name]))
        self.first[name] = self.last[name] = P.Stats()
        self.reboots[name] += 1

    def segments(self, name: str) -> list[tuple[P.Stats, P.Stats]]:
        if name not in self.last:
            return []
        return [*self.closed[name], (self.first[name], self.last[name])]

    def delta(self, name: str) -> dict[str, int] | None:
        """The run's counters of ``name``: the sum over its segments (None: no STATS heard)."""
        segs = self.segments(name)
        if not segs:
            return None
        total = dict.fromkeys(STATS_FIELDS, 0)
        for before, after in segs:
            for f, v in (stats_delta(before, after) or {}).items():
                total[f] += v
        return total

    def cycles(self, name: str) -> dict[str, Any] | None:
        """Mean compute cycles per sample over the run (every segment), and the longest (None: no samples)."""
        segs = self.segments(name)
        samples = sum((a.samples - b.samples) % (1 << 32) for b, a in segs)
        if not samples:
            return None
        total = sum((a.cycles - b.cycles) % (1 << 64) for b, a in segs)
        return {"mean": total / samples, "max": max(a.cycles_max for _, a in segs), "samples": samples,
                "source": "STATS"}
