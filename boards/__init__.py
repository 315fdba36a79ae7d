"""The board table: one folder per board, ``boards/<name>/board.toml`` beside its ``board_config.h``.

This is the bottom layer: data and the one validating reader for it. Nothing here imports ``codegen`` or
``host``; both read boards through :func:`load_board` and typed records, never a raw TOML dict.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clock import ClockError, ClockTree, Pll, clock_tree_from

__all__ = ["ALIASES", "BOARD_DIR", "Board", "BoardError", "ClockError", "ClockTree", "Emulator", "KINDS", "Memory",
           "Pll", "PlatformioBoard", "Uart", "board_names", "load_board"]

BOARD_DIR = Path(__file__).resolve().parent
#: Short names users type.
ALIASES = {"nucleo": "nucleo_f446re", "qemu": "qemu_f405", "f446re": "nucleo_f446re",
           "l476rg": "nucleo_l476rg", "h743zi": "nucleo_h743zi", "an386": "qemu_an386"}
KINDS = ("real", "emulated")


class BoardError(ValueError):
    """A board name that is not in the table, or a board.toml that does not hold what a board needs."""


@dataclass(frozen=True)
class Memory:
    base: int
    size: int


@dataclass(frozen=True)
class Uart:
    name: str
    base: int
    irq: int
    baud: int = 115200
    tx: str | None = None
    rx: str | None = None


@dataclass(frozen=True)
class Emulator:
    """How QEMU runs the board: its machine and the serial index of the node UART."""
    machine: str
    serial_index: int


@dataclass(frozen=True)
class PlatformioBoard:
    """The PlatformIO platform and board id of a real board."""
    platform: str
    board: str


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    kind: str            # "real" | "emulated"
    core: str
    clock_hz: int
    flash: Memory
    ram: Memory
    uart: Uart
    fpu: str | None = None
    features: tuple[str, ...] = ()
    qemu: Emulator | None = None
    platformio: PlatformioBoard | None = None
    #: The clock tree the firmware programs (real boards); None: the chip's (or emulator's) fixed clock.
    clock: ClockTree | None = None

    @property
    def emulated(self) -> bool:
        return self.kind == "emulated"

    @property
    def flash_bytes(self) -> int:
        return self.flash.size

    @property
    def ram_bytes(self) -> int:
        return self.ram.size

    @property
    def directory(self) -> Path:
        """``boards/<name>/``: the board's TOML and its ``board_config.h`` (an include directory)."""
        return BOARD_DIR / self.name


def board_names() -> list[str]:
    return sorted(p.parent.name for p in BOARD_DIR.glob("*/board.toml"))


def load_board(name: str) -> Board:
    """The board called ``name`` (or one of :data:`ALIASES`); :class:`BoardError` names what is wrong."""
    key = ALIASES.get(name, name)
    path = BOARD_DIR / key / "board.toml"
    if not path.is_file():
        raise BoardError(f"unknown board {name!r}; boards: {', '.join(board_names())} "
                         f"(aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())})")
    try:
        raw = tomllib.loads(path.read_text())
        return _board_from(raw, path)
    except tomllib.TOMLDecodeError as err:
        raise BoardError(f"{path}: not valid TOML ({err})") from None
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, BoardError):
            raise
        what = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        raise BoardError(f"{path}: {what}; see the other boards/*/board.toml for the fields a board needs") from None


def _board_from(raw: dict[str, Any], path: Path) -> Board:
    if raw["name"] != path.parent.name:
        raise BoardError(f"{path}: name = {raw['name']!r} but the folder is {path.parent.name!r}")
    if raw["kind"] not in KINDS:
        raise BoardError(f"{path}: kind = {raw['kind']!r}; one of {', '.join(KINDS)}")
    if not (path.parent / "board_config.h").is_file():
        raise BoardError(f"{path.parent}: no board_config.h beside board.toml")
    u = raw["uart"]
    uart = Uart(str(u["name"]), int(u["base"]), int(u["irq"]), int(u.get("baud", 115200)), u.get("tx"), u.get("rx"))
    q, p = raw.get("qemu"), raw.get("platformio")
    clock = _clock_from(raw, path)
    return Board(
        name=raw["name"], title=raw["title"], kind=raw["kind"], core=raw["core"], clock_hz=int(raw["clock_hz"]),
        flash=Memory(int(raw["flash"]["base"]), int(raw["flash"]["size"])),
        ram=Memory(int(raw["ram"]["base"]), int(raw["ram"]["size"])), uart=uart, fpu=raw.get("fpu"),
        features=tuple(raw.get("features", ())),
        qemu=Emulator(str(q["machine"]), int(q["serial_index"])) if q else None,
        platformio=PlatformioBoard(str(p["platform"]), str(p["board"])) if p else None, clock=clock)


def _clock_from(raw: dict[str, Any], path: Path) -> ClockTree | None:
    """The board's ``[clock]`` table, which must give its ``clock_hz`` (real boards only)."""
    if "clock" not in raw:
        return None
    if raw["kind"] == "emulated":
        raise BoardError(f"{path}: an emulated board has no [clock] table (the emulator's clock is fixed)")
    tree = clock_tree_from(raw["clock"])
    if tree.cpu_hz != int(raw["clock_hz"]):
        raise BoardError(f"{path}: clock_hz = {raw['clock_hz']} but the [clock] tree gives {tree.cpu_hz} Hz; "
                         "make them agree")
    return tree
