"""The Cortex-M cross toolchain driver: compiler flags from a board, cached compiles, links, section sizes.

Both the node images (:mod:`host.deploy.firmware`) and ``codegen verify --target qemu`` build with it, so it
lives here, below ``host``: codegen needs it and must not import the layer above. Board support sources
(startup, UART drivers, ``sections.ld``) are in ``firmware/bsp/``; a board's ``board_config.h`` is in its
folder ``boards/<board>/``; the ``memory.ld`` a link needs and the ``board_clock.h`` (UART baud, clock tree) the
board support includes are generated from ``boards/<board>/board.toml``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from boards import Board, ClockTree
from boards.clock import AHB_CODES, APB_CODES, H7_INPUT_RANGES, H7_VCOS

from . import objcache
from .objcache import file_hash

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO_ROOT / "firmware"
RUNTIME_DIR = FIRMWARE_DIR / "runtime"
LINK_DIR = FIRMWARE_DIR / "link"
BSP_DIR = FIRMWARE_DIR / "bsp"
CMSIS_NN_DIR = FIRMWARE_DIR / "cmsis_nn"
SECTIONS_LD = BSP_DIR / "sections.ld"

CC = "arm-none-eabi-gcc"
SIZE = "arm-none-eabi-size"
OBJCOPY = "arm-none-eabi-objcopy"

DEFAULT_STACK_BYTES = 8192

COMMON_CFLAGS = (
    "-std=gnu11", "-O2", "-g", "-ffunction-sections", "-fdata-sections", "-fno-common",
    "-Wall", "-Wextra", "-Wno-unused-parameter",
)
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments")


class FirmwareBuildError(RuntimeError):
    """The cross compiler failed (the message holds its output)."""


def toolchain_available() -> bool:
    return shutil.which(CC) is not None and shutil.which(SIZE) is not None


def cache_root() -> Path:
    """Where compiled objects are cached: ``$RESILINET_CACHE/codegen`` (default ``<repo>/.cache/codegen``)."""
    root = Path(os.environ.get("RESILINET_CACHE", REPO_ROOT / ".cache"))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only checkout: fall back to the temp dir
        return Path(tempfile.gettempdir()) / "resilinet-codegen-cache"
    return root / "codegen"


# ---- Board → compiler flags, include path, memory map -------------------------------------


def cpu_flags(board: Board) -> list[str]:
    """-mcpu/-mfpu/-mfloat-abi from the board's core and FPU."""
    flags = [f"-mcpu={board.core}", "-mthumb"]
    if board.fpu:
        flags += [f"-mfpu={board.fpu}", "-mfloat-abi=hard"]
    else:
        flags += ["-mfloat-abi=soft"]
    return flags


def memory_ld(board: Board, scale: int = 1) -> str:
    """The MEMORY block of ``board`` (``scale`` > 1 only to measure an image that does not fit)."""
    flash, ram = board.flash, board.ram
    return (f"/* {board.name}: generated from boards/{board.name}/board.toml by codegen/toolchain.py */\n"
            "MEMORY\n{\n"
            f"    FLASH (rx) : ORIGIN = 0x{flash.base:08X}, LENGTH = {flash.size * scale}\n"
            f"    RAM (rwx) : ORIGIN = 0x{ram.base:08X}, LENGTH = {ram.size * scale}\n"
            "}\n")


def board_clock_h(board: Board) -> str:
    """``board_clock.h`` of ``board``: its UART baud and, for a board with a ``[clock]`` tree, the factors that
    ``firmware/bsp/clock_<family>.c`` programs (prescalers as register codes: the tables live in ``boards.clock``)."""
    lines = [f"/* {board.name}: generated from boards/{board.name}/board.toml by codegen/toolchain.py; do not edit */",
             "#ifndef BOARD_CLOCK_H", "#define BOARD_CLOCK_H", "",
             f"#define BOARD_UART_BAUD {board.uart.baud}u"]
    if board.clock is not None:
        lines += _clock_tree_macros(board.clock)
    return "\n".join([*lines, "", "#endif", ""])


def _clock_tree_macros(c: ClockTree) -> list[str]:
    pll = c.pll
    out = ["#define BOARD_CLOCK_TREE 1",
           f"#define BOARD_CLOCK_{c.family.upper()} 1 /* firmware/bsp/clock_{c.family}.c */",
           f"#define BOARD_CLOCK_RESET_HZ {c.reset_hz}u /* {c.reset_source}: before the PLL runs, and the fallback */",
           f"#define BOARD_CLOCK_SOURCE_{c.source} 1",
           f"#define BOARD_CLOCK_SOURCE_HZ {c.source_hz}u",
           f"#define BOARD_CLOCK_HSE_BYPASS {int(c.hse_bypass)}",
           *(f"#define BOARD_CLOCK_PLL_{k.upper()} {getattr(pll, k)}u" for k in ("m", "n", "p", "q", "r")),
           f"#define BOARD_CLOCK_FLASH_WS {c.flash_wait_states}u",
           f"#define BOARD_CLOCK_FLASH_WRITE_DELAY {c.flash_write_delay}u",
           f"#define BOARD_CLOCK_VOLTAGE_SCALE {c.voltage_scale}u",
           f"#define BOARD_CLOCK_OVERDRIVE {int(c.overdrive)}",
           f"#define BOARD_CLOCK_CPRE {AHB_CODES[c.cpu_div]}u /* core /{c.cpu_div} */",
           f"#define BOARD_CLOCK_HPRE {AHB_CODES[c.ahb_div]}u /* AHB /{c.ahb_div} */",
           *(f"#define BOARD_CLOCK_PPRE{i} {APB_CODES[d]}u /* APB{i} /{d} */" for i, d in enumerate(c.apb_divs, 1)),
           f"#define BOARD_CLOCK_CPU_HZ {c.cpu_hz}u",
           f"#define BOARD_CLOCK_UART_HZ {c.uart_hz}u /* APB{c.uart_bus} */"]
    if pll.input_range is not None:
        out += [f"#define BOARD_CLOCK_PLL_RANGE {H7_INPUT_RANGES.index(pll.input_range)}u /* {pll.input_range} MHz */",
                f"#define BOARD_CLOCK_PLL_VCO_MEDIUM {H7_VCOS.index(pll.vco or 'wide')}"]
    return out


def board_generated_dir(board: Board) -> Path:
    """Where ``board_clock.h`` of ``board`` is generated (in the build cache; rewritten when the TOML changes)."""
    return cache_root() / "boards" / board.name


def write_board_headers(board: Board) -> Path:
    """Generate ``board_clock.h`` of ``board`` (atomically: parallel builds read it); returns its directory."""
    out = board_generated_dir(board)
    out.mkdir(parents=True, exist_ok=True)
    path, text = out / "board_clock.h", board_clock_h(board)
    if not path.exists() or path.read_text() != text:
        tmp = out / f".board_clock.h.{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(text)
        os.replace(tmp, path)
    return out


def board_include_dirs(board: Board) -> list[Path]:
    """Include directories of the board support: the link codec, ``firmware/bsp``, ``boards/<board>`` and the
    generated ``board_clock.h`` (written here, so every build that asks for the include path finds it)."""
    return [LINK_DIR, BSP_DIR, board.directory, write_board_headers(board)]


def board_sources(board: Board) -> list[Path]:
    """The C sources of the board support (startup, UART driver, clocks) and the link codec."""
    return sorted(LINK_DIR.glob("*.c")) + sorted(BSP_DIR.glob("*.c")) + sorted(board.directory.glob("*.c"))


# ---- Compile, link, measure --------------------------------------------------------------


def run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)


def section_sizes(elf: Path) -> dict[str, int]:
    """Section name → size in bytes (arm-none-eabi-size -A)."""
    res = run([SIZE, "-A", str(elf)])
    if res.returncode != 0:
        raise FirmwareBuildError(res.stderr)
    out = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def image_usage(sections: Mapping[str, int]) -> tuple[int, int]:
    """(flash, RAM) bytes of an image: load image (.text + .ARM.exidx + .data), .data + .bss + stack."""
    flash = sections.get(".text", 0) + sections.get(".ARM.exidx", 0) + sections.get(".data", 0)
    ram = sections.get(".data", 0) + sections.get(".bss", 0) + sections.get(".stack", 0)
    return flash, ram


def inputs_digest(cmd: Sequence[str], files: Iterable[Path]) -> str:
    """A hash of a command and the files it reads (to skip a link whose inputs did not change)."""
    h = hashlib.sha256("\0".join(cmd).encode())
    for f in sorted(set(files)):
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def read_stamp(path: Path) -> dict:
    """A build stamp (JSON) or ``{}`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def object_cache_dir() -> Path:
    """The shared object cache (``codegen.objcache``): ``<cache_root()>/objects``."""
    return cache_root() / "objects"


@functools.lru_cache(maxsize=None)
def compiler_identity() -> str:
    """The cross compiler's path and version: part of every object cache key (an upgrade invalidates all)."""
    return f"{shutil.which(CC)}\n{run([CC, '--version']).stdout}"


def compile_object(src: Path, obj: Path, cflags: Sequence[str], force: bool,
                   local_dirs: Sequence[Path] = ()) -> tuple[int, str]:
    """Compile one source unless its object is up to date; (returncode, compiler messages).

    Up to date: this object's own stamp matches, else an identical compile in the shared object cache
    (``codegen.objcache``; ``local_dirs`` are the build's own directories, abstracted in the cache key).
    ``force`` compiles regardless (and refreshes the cache entry)."""
    cmd = [CC, *cflags, "-MMD", "-MF", str(obj.with_suffix(".d")), "-c", str(src), "-o", str(obj)]
    stamp = obj.with_suffix(".json")
    prev = read_stamp(stamp)
    if (not force and obj.exists() and prev.get("command") == cmd
            and all(file_hash(Path(f)) == h for f, h in prev.get("deps", {}).items())):
        return 0, prev.get("warnings", "")
    stamp.unlink(missing_ok=True)
    key = objcache.cache_key(cmd, src, local_dirs, compiler_identity())
    maps = objcache.prefix_maps(cmd)
    hit = None if force else objcache.lookup(object_cache_dir(), key, obj, local_dirs, maps)
    if hit is not None:
        obj.with_suffix(".d").write_text(f"{obj}: " + " \\\n ".join(hit.deps) + "\n")
        stamp.write_text(json.dumps({"command": cmd, "warnings": hit.warnings, "deps": hit.deps}, indent=1))
        return 0, hit.warnings
    res = run(cmd)
    if res.returncode != 0:
        return res.returncode, res.stderr
    deps = {str(f): file_hash(Path(f)) for f in _parse_depfile(obj.with_suffix(".d")) or [src]}
    objcache.store(object_cache_dir(), key, obj, deps, res.stderr, local_dirs, maps)
    stamp.write_text(json.dumps({"command": cmd, "warnings": res.stderr, "deps": deps}, indent=1))
    return 0, res.stderr


def _parse_depfile(path: Path) -> list[str]:
    try:
        text = path.read_text().replace("\\\n", " ")
    except OSError:
        return []
    _, _, deps = text.partition(":")
    return [d for d in deps.split() if d]
