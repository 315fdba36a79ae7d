"""``<build>/pio/uploads.json``: the emulated boards ``pio run -t upload`` started for a build, for the harness.

One writer, :func:`record_upload` (one entry per node, replaced when the node is uploaded again; written
atomically under a lock, so two ``pio run -e ... -t upload`` at once keep both entries), and one reader,
:func:`read_uploads`, which checks every entry and fails with one :class:`UploadsError` naming the file,
the key and what to do (a missing file is no uploads: ``{}``)::

    {"version": 1,
     "boards": {"iot": {"env": "fashion_iot", "board": "qemu_f405", "url": "socket://127.0.0.1:27473",
                        "port": 27473, "pidfile": "pio/qemu/fashion_iot.pid", "rx_buffer": true}}}

``pidfile`` is relative to the build directory in the file and absolute in :class:`UploadedBoard`. The
port is the one the board really listens on: the build's planned port (``manifest.json``, ``emulator``)
unless that was busy at upload time. ``rx_buffer``: the board's UART sits behind a QEMU mux chardev
(:mod:`codegen.emulator`), so a client must double every 0x00 byte it sends.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from host.deploy.manifest import ManifestError

UPLOADS_NAME = "uploads.json"
UPLOADS_VERSION = 1
#: The fields of one entry and their JSON types (``node`` is the entry's key).
_FIELDS: dict[str, type] = {"env": str, "board": str, "url": str, "port": int, "pidfile": str, "rx_buffer": bool}


class UploadsError(ManifestError):
    """An ``uploads.json`` this checkout cannot read; ``str()`` names the file, the key and what to do."""


@dataclass(frozen=True)
class UploadedBoard:
    """An emulated board that ``pio run -t upload`` started for one node of a build."""

    node: str
    env: str
    board: str
    url: str                 # socket://127.0.0.1:<port>
    port: int
    pidfile: Path            # absolute; python -m codegen.emulator stop --pidfile <it> stops the board
    rx_buffer: bool          # mux chardev in front of the UART: a client doubles every 0x00 it sends


def uploads_path(build_dir: str | Path) -> Path:
    return Path(build_dir) / "pio" / UPLOADS_NAME


def read_uploads(build_dir: str | Path) -> dict[str, UploadedBoard]:
    """Node -> :class:`UploadedBoard` of the build in ``build_dir`` (``{}`` when nothing was uploaded).

    Raises :class:`UploadsError` (not JSON, not version 1, an entry missing a field or with a field of the
    wrong type), naming the file and the key. Whether a recorded board still runs is the caller's question
    (``codegen.emulator.pidfile_running(board.pidfile)``).
    """
    path = uploads_path(build_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise _error(path, None, f"cannot be read ({err})") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise _error(path, None, f"is not JSON ({err})") from None
    return parse_uploads(data, path)


def parse_uploads(data: Any, path: Path) -> dict[str, UploadedBoard]:
    """The boards of a JSON value read from ``path`` (see :func:`read_uploads`)."""
    if not isinstance(data, dict):
        raise _error(path, None, f"holds {type(data).__name__}, expected a JSON object")
    if data.get("version") != UPLOADS_VERSION or type(data.get("version")) is not int:
        raise _error(path, "version", f"is {data.get('version')!r}; this checkout reads version {UPLOADS_VERSION}")
    boards = data.get("boards")
    if not isinstance(boards, dict):
        raise _error(path, "boards", "missing" if boards is None else "is not an object")
    build_dir = path.parent.parent
    out: dict[str, UploadedBoard] = {}
    for node, entry in boards.items():
        if not isinstance(entry, dict):
            raise _error(path, f"boards.{node}", "is not an object")
        for key, tp in _FIELDS.items():
            if key not in entry:
                raise _error(path, f"boards.{node}.{key}", "missing")
            value = entry[key]
            if type(value) is not tp:
                raise _error(path, f"boards.{node}.{key}", f"is {json.dumps(value)[:40]}, expected {tp.__name__}")
        if not 0 < entry["port"] < 65536:
            raise _error(path, f"boards.{node}.port", f"is {entry['port']}, not a TCP port")
        out[node] = UploadedBoard(node=node, env=entry["env"], board=entry["board"], url=entry["url"],
                                  port=entry["port"], pidfile=(build_dir / entry["pidfile"]).absolute(),
                                  rx_buffer=entry["rx_buffer"])
    return out


def record_upload(build_dir: str | Path, board: UploadedBoard) -> None:
    """Record ``board`` in ``<build_dir>/pio/uploads.json`` (replacing the node's previous entry)."""
    path = uploads_path(build_dir)
    with _locked(path):
        boards = _readable_entries(path)
        boards[board.node] = _entry(board, Path(build_dir))
        _write(path, boards)


def forget_uploads(build_dir: str | Path, nodes: list[str] | None = None) -> None:
    """Drop the entries of ``nodes`` (all when None) from the build's uploads.json (their boards were stopped)."""
    path = uploads_path(build_dir)
    if not path.exists():
        return
    with _locked(path):
        boards = _readable_entries(path)
        for node in list(boards) if nodes is None else nodes:
            boards.pop(node, None)
        _write(path, boards)


def _entry(board: UploadedBoard, build_dir: Path) -> dict[str, Any]:
    pidfile = Path(board.pidfile).absolute()
    try:
        rel = pidfile.relative_to(build_dir.absolute()).as_posix()
    except ValueError:
        rel = pidfile.as_posix()
    return {"env": board.env, "board": board.board, "url": board.url, "port": int(board.port), "pidfile": rel,
            "rx_buffer": bool(board.rx_buffer)}


def _readable_entries(path: Path) -> dict[str, Any]:
    """The entries of the file as it is; a corrupt file is started afresh (the writer owns it)."""
    try:
        data = json.loads(path.read_text())
        parse_uploads(data, path)
        return dict(data["boards"])
    except (OSError, ValueError, RecursionError):  # UploadsError is a ValueError
        return {}


def _write(path: Path, boards: dict[str, Any]) -> None:
    text = json.dumps({"version": UPLOADS_VERSION, "boards": dict(sorted(boards.items()))}, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _error(path: Path, key: str | None, problem: str) -> UploadsError:
    return UploadsError(str(path), key, problem,
                        f"delete it and start the boards again with pio run -t upload (or python -m "
                        f"host.deploy.pio_project stop {path.parent.parent})")
