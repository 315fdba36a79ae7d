"""PlatformIO board manifests of the emulated boards, generated from ``boards/<name>/board.toml``.

The board table is the one source of a board's core, clock and memory; PlatformIO needs them as
``<board>.json``. They are written at build time into the build directory (``<build>/pio/boards``) and the
generated ``platformio.ini`` points ``boards_dir`` at them, so nothing derived is committed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from boards import Board, board_names, load_board
from host.deploy.pio_core import write_json_if_changed


def board_json(board: Board) -> dict[str, Any]:
    """PlatformIO's board manifest of an emulated board (``build.qemu_*`` is read by the dev-platform)."""
    q = board.qemu
    if q is None:
        raise ValueError(f"board {board.name!r} has no [qemu] table: not an emulated board")
    return {
        "build": {"cpu": board.core, "f_cpu": f"{board.clock_hz}L", "mcu": board.name,
                  "qemu_machine": q.machine, "qemu_serial_index": q.serial_index},
        "frameworks": [],
        "name": board.title,
        "upload": {"maximum_ram_size": board.ram_bytes, "maximum_size": board.flash_bytes,
                   "protocol": "qemu", "protocols": ["qemu", "custom"]},
        "url": "https://www.qemu.org/docs/master/system/target-arm.html",
        "vendor": "QEMU",
    }


def emulated_boards() -> list[Board]:
    return [b for b in map(load_board, board_names()) if b.emulated]


def write_board_jsons(directory: Path, boards: Iterable[Board]) -> list[Path]:
    """``directory/<board>.json`` for each emulated board of ``boards`` (unchanged files are left alone)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for b in {b.name: b for b in boards if b.emulated}.values():
        path = directory / f"{b.name}.json"
        write_json_if_changed(path, board_json(b))
        out.append(path)
    return out
