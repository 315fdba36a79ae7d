"""The board table: every board is a TOML file in ``boards/`` (data, not code)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import REPO_ROOT

BOARD_DIR = REPO_ROOT / "boards"
#: Short names users type.
ALIASES = {"nucleo": "nucleo_f446re", "qemu": "qemu_f405", "f446re": "nucleo_f446re",
           "l476rg": "nucleo_l476rg", "h743zi": "nucleo_h743zi", "an386": "qemu_an386"}


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    kind: str            # "real" | "emulated"
    core: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    raw: dict[str, Any]

    @property
    def emulated(self) -> bool:
        return self.kind == "emulated"


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARD_DIR.glob("*.toml"))


def load_board(name: str) -> Board:
    key = ALIASES.get(name, name)
    path = BOARD_DIR / f"{key}.toml"
    if not path.exists():
        raise ValueError(f"unknown board {name!r}; boards: {', '.join(board_names())} "
                         f"(aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())})")
    raw = tomllib.loads(path.read_text())
    return Board(raw["name"], raw["title"], raw["kind"], raw["core"], int(raw["clock_hz"]),
                 int(raw["flash"]["size"]), int(raw["ram"]["size"]), raw)
