"""Estimated Cortex-M4 cycles of code run on QEMU: our TCG plugin (codegen/qemu_plugin/cortex_m4_cycles.c).

QEMU counts instructions, not cycles. The plugin classes every instruction executed between two addresses
(a *window*: from the first instruction of ``begin`` to the first of ``end``, exclusive) and applies the
Cortex-M4 TRM's timings (docs/cycle-estimate.md); this module builds it, runs it and reads its records.

* :func:`build_plugin` compiles the plugin lazily into ``<cache>/qemu-plugin/`` (keyed by a hash of the source
  and the header). ``qemu-plugin.h`` comes from Debian's qemu source package, fetched by scripts/setup.sh.
* :func:`plugin_args` gives the ``-plugin ...`` arguments for a QEMU command line; :func:`read_windows` reads
  the records back as :class:`CycleWindow` s, one per closed window.
* :func:`run_semihosted` runs a bare-metal semihosting image (codegen/semihost.py) on mps2-an386 with the
  plugin: the hand-written sequences of tests/test_cycle_estimate.py and the bench use it.
* Wait states are applied here, not in the plugin: ``cycles(ws) = cycles(0) + ws * flash reads`` (or the
  reads that miss the ART data-cache model), so one run gives every :class:`FlashSetting`.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from boards import Board, board_names, load_board

from .errors import CodegenError
from .toolchain import REPO_ROOT, cache_root

PLUGIN_SOURCE = Path(__file__).resolve().parent / "qemu_plugin" / "cortex_m4_cycles.c"
HEADER_DIR = REPO_ROOT / ".cache" / "qemu-plugin"  # where scripts/setup.sh puts qemu-plugin.h
HOST_CC = "gcc"
NM = "arm-none-eabi-nm"
#: TRM: a pipeline refill P takes 1..3 cycles (target alignment/width, early speculation); we take the middle.
REFILL_CYCLES = 2
#: TRM: SDIV/UDIV take 2..12 cycles (early termination on the operands, which a plugin cannot see): worst case.
DIVIDE_CYCLES = 12
#: The ART accelerator's data cache of the STM32F4 (RM0390: 8 lines of 128 bits), used for every "art" setting.
ART_LINES, ART_LINE_BYTES = 8, 16
#: Instruction classes the plugin reports, in its order.
CLASSES = ("alu", "mul", "dsp", "div", "load", "store", "dual", "multi", "branch", "it_hint", "fpu", "fpu_ls")


class CycleEstimateError(CodegenError):
    """The plugin cannot be built or run; the message is one line saying what to do."""


@dataclass(frozen=True)
class FlashSetting:
    """Wait states on reads of constant data from flash (``art``: only reads that miss the ART data cache)."""

    label: str
    wait_states: int
    art: bool = False


@dataclass(frozen=True)
class ClassCost:
    name: str
    count: int
    cycles: int


@dataclass(frozen=True)
class CycleWindow:
    """What the plugin measured in one window."""

    instructions: int
    cycles: int                 # 0 wait states
    taken: int                  # instructions followed by a non-sequential one (each + P cycles)
    pipelined: int              # loads/stores that pipelined with the previous one (each - 1 cycle)
    agu_stalls: int             # loads/stores whose address the previous instruction computed (each + 1)
    flash_reads: int            # data reads from the flash range
    flash_misses: int           # of those, misses of the ART data-cache model
    classes: tuple[ClassCost, ...]

    def cycles_at(self, setting: FlashSetting) -> int:
        return self.cycles + setting.wait_states * (self.flash_misses if setting.art else self.flash_reads)

    def cost_of(self, name: str) -> ClassCost:
        return next(c for c in self.classes if c.name == name)


@dataclass(frozen=True)
class CycleEstimate:
    """One window with the flash settings it is reported for."""

    window: CycleWindow
    settings: tuple[FlashSetting, ...]

    @property
    def instructions(self) -> int:
        return self.window.instructions

    @property
    def cycles(self) -> int:
        return self.window.cycles

    def by_setting(self) -> list[tuple[FlashSetting, int]]:
        return [(s, self.window.cycles_at(s)) for s in self.settings]

    def summary(self) -> str:
        parts = [f"estimated cycles (Cortex-M4 TRM, 0 wait states): {self.cycles:,}"]
        parts += [f"{s.label}: {c:,}" for s, c in self.by_setting()]
        return "; ".join(parts) + f" ({self.cycles / max(self.instructions, 1):.2f} cycles/instruction)"


@dataclass(frozen=True)
class PluginConfig:
    """Where the window is and which addresses count as flash."""

    begin: int
    end: int
    flash_base: int
    flash_size: int
    refill: int = REFILL_CYCLES
    divide: int = DIVIDE_CYCLES


def board_flash_settings() -> tuple[FlashSetting, ...]:
    """The wait states of our real Cortex-M4 boards (``[clock] flash_wait_states``), without and with ART."""
    out: list[FlashSetting] = []
    for name in board_names():
        b = load_board(name)
        if b.kind == "real" and b.core == "cortex-m4" and b.clock is not None and b.clock.flash_wait_states:
            out += flash_settings_for(short_title(b), b.clock.flash_wait_states)
    return tuple(out)


def flash_settings_for(label: str, wait_states: int) -> list[FlashSetting]:
    return [FlashSetting(f"{label} {wait_states} WS", wait_states),
            FlashSetting(f"{label} {wait_states} WS + ART", wait_states, art=True)]


def short_title(board: Board) -> str:
    """``ST Nucleo-F446RE`` -> ``F446RE``: the chip, which is what the wait states belong to."""
    return board.title.split("-")[-1] if "-" in board.title else board.name


def header_dir() -> Path:
    """The folder holding ``qemu-plugin.h`` ($RESILINET_QEMU_PLUGIN_H, scripts/setup.sh's copy, /usr/include)."""
    env = os.environ.get("RESILINET_QEMU_PLUGIN_H")
    candidates = [Path(env).parent] if env else []
    # scripts/setup.sh's copy sits in the repository's .cache whatever $RESILINET_CACHE says (the tests point
    # that at a throwaway folder): it is installed once, like an apt package, not rebuilt like a cache.
    candidates += [HEADER_DIR, Path("/usr/include/qemu"), Path("/usr/include")]
    for d in candidates:
        if (d / "qemu-plugin.h").is_file():
            return d
    raise CycleEstimateError("qemu-plugin.h not found (it comes from Debian's qemu source package): run "
                             "scripts/setup.sh online, or set RESILINET_QEMU_PLUGIN_H to the header")


def build_plugin() -> Path:
    """The plugin's shared object, compiled once per source/header version into the cache."""
    hdir = header_dir()
    if shutil.which(HOST_CC) is None:
        raise CycleEstimateError(f"{HOST_CC} not found (the cycle-estimate plugin is built with the host "
                                 "compiler): apt-get install --no-install-recommends gcc libc6-dev")
    key = hashlib.sha256(PLUGIN_SOURCE.read_bytes() + (hdir / "qemu-plugin.h").read_bytes()).hexdigest()[:16]
    so = cache_root().parent / "qemu-plugin" / f"cortex_m4_cycles-{key}.so"
    if so.is_file():
        return so
    so.parent.mkdir(parents=True, exist_ok=True)
    tmp = so.with_suffix(f".{os.getpid()}.tmp")
    res = subprocess.run([HOST_CC, "-shared", "-fPIC", "-O2", "-std=gnu99", "-Wall", "-Wextra", "-Werror",
                          f"-I{hdir}", str(PLUGIN_SOURCE), "-o", str(tmp), "-lpthread"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise CycleEstimateError(f"building the cycle-estimate plugin failed: {res.stderr.strip()}")
    tmp.replace(so)  # atomic: parallel builders never load a half-written object
    return so


def plugin_args(config: PluginConfig, out: Path) -> list[str]:
    """``-plugin`` arguments for a QEMU command line; records go to ``out`` (appended)."""
    opts = [f"begin={config.begin:#x}", f"end={config.end:#x}", f"out={out}",
            f"flash={config.flash_base:#x}:{config.flash_base + config.flash_size:#x}",
            f"p={config.refill}", f"div={config.divide}", f"art_lines={ART_LINES}", f"art_line={ART_LINE_BYTES}"]
    if "," in str(out):
        raise CycleEstimateError(f"{out}: a plugin output path must not contain a comma")
    return ["-plugin", ",".join([str(build_plugin()), *opts])]


def symbol_addresses(elf: Path, names: Sequence[str]) -> dict[str, int]:
    """Addresses of the named symbols of an ELF (Thumb bit cleared)."""
    res = subprocess.run([NM, str(elf)], capture_output=True, text=True)
    if res.returncode != 0:
        raise CycleEstimateError(f"{NM} {elf} failed: {res.stderr.strip()}")
    found = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in names:
            found[parts[2]] = int(parts[0], 16) & ~1
    missing = [n for n in names if n not in found]
    if missing:
        raise CycleEstimateError(f"{elf}: no symbol {', '.join(missing)} (the cycle-estimate window's markers)")
    return found


def config_for(elf: Path, begin: str, end: str, board: Board) -> PluginConfig:
    """A window from function ``begin`` to function ``end`` of ``elf``; flash = the board's flash range."""
    addr = symbol_addresses(elf, [begin, end])
    return PluginConfig(addr[begin], addr[end], board.flash.base, board.flash.size)


_RECORD = re.compile(r"(\w+)=(\d+)(?::(\d+))?")


def parse_record(line: str) -> CycleWindow:
    fields = {m.group(1): (int(m.group(2)), m.group(3)) for m in _RECORD.finditer(line)}
    try:
        classes = tuple(ClassCost(n, fields[n][0], int(fields[n][1] or 0)) for n in CLASSES)
        return CycleWindow(fields["insns"][0], fields["cycles"][0], fields["taken"][0], fields["pipelined"][0],
                           fields["agu_stalls"][0], fields["flash_reads"][0], fields["flash_misses"][0], classes)
    except KeyError as err:
        raise CycleEstimateError(f"cycle-estimate plugin record without {err}: {line.strip()!r}") from None


def read_windows(out: Path) -> list[CycleWindow]:
    """The closed windows recorded in ``out``, in order (none when the file does not exist)."""
    if not out.is_file():
        return []
    return [parse_record(line) for line in out.read_text().splitlines() if line.startswith("W ")]


def run_semihosted(elf: Path, begin: str, end: str, work_dir: Path, board_name: str = "qemu_an386",
                   timeout_s: float = 300.0) -> list[CycleWindow]:
    """Run a semihosting image (codegen/semihost.py) to its exit with the plugin; the windows it recorded."""
    board = load_board(board_name)
    if board.qemu is None:
        raise CycleEstimateError(f"board {board.name!r} is not emulated")
    out = Path(work_dir).resolve() / f"{Path(elf).stem}.cycles"
    out.unlink(missing_ok=True)
    cmd = ["qemu-system-arm", "-M", board.qemu.machine, "-nographic", "-monitor", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
           *plugin_args(config_for(Path(elf), begin, end, board), out)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CycleEstimateError(f"{elf}: QEMU did not exit within {timeout_s:.0f} s") from None
    if run.returncode != 0:
        raise CycleEstimateError(f"{elf}: QEMU exited with {run.returncode}: {(run.stdout + run.stderr)[-400:]}")
    return read_windows(out)
