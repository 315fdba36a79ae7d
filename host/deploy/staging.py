"""A build directory is written whole or not at all.

``python -m host.build`` writes every stage into a staging directory beside the target (same file system:
``<parent>/.<name>.tmp-<pid>-<random>``) and renames it into place once the build is complete. A build
that fails (or is interrupted) leaves the previous build, if any, untouched, and no partial directory.

Paths written into the build: the manifest's are relative; ``platformio.ini`` is rendered for the final
location (:mod:`host.deploy.pio_ini`); the firmware is compiled with ``-ffile-prefix-map=<staging>=<final>``
(:mod:`host.deploy.firmware_stage`); and before the rename, :meth:`StagedBuild.commit` rewrites the staging
path to the final one in the text files compilers leave (``node.map``, ``.d`` dependency files, compile
stamps). An existing build directory is replaced only if it is one (it holds ``manifest.json``) or empty;
the emulated boards it still runs (pid files under ``pio/qemu`` and ``harness/boards``) are stopped first,
since their images and pid files go with it.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from host.deploy.manifest import MANIFEST_NAME
from host.paths import REPO_ROOT

#: Files whose text may name the staging directory (compiler maps, dependency files, stamps, reports).
TEXT_SUFFIXES = {".json", ".map", ".d", ".md", ".ini", ".h", ".c", ".txt", ".ld", ".csv"}
#: Where a build keeps the pid files of emulated boards it started (pio run -t upload; the harness).
PIDFILE_DIRS = ("pio/qemu", "harness/boards")


class StagingError(OSError):
    """The build directory cannot be written or replaced (the message names it and what to do)."""


def check_out_dir(out: Path) -> Path:
    """The final location of a build asked for as ``--out out`` (raises StagingError before any work when
    it is a file, the repository, or a directory that is not a build)."""
    final = Path(out).absolute()
    final = final.parent.resolve() / final.name
    repo = REPO_ROOT.resolve()
    if repo.is_relative_to(final) or final == Path.cwd().resolve():
        raise StagingError(f"--out {out} is the repository, a parent of it or the current directory, which a build "
                           f"would replace: give a build directory, e.g. --out build/mybuild")
    if final.exists() and not final.is_dir():
        raise StagingError(f"--out {out} is a file, not a build directory: choose another --out")
    if final.is_dir() and not (final / MANIFEST_NAME).exists() and any(final.iterdir()):
        raise StagingError(f"--out {out} exists and is not a host.build output (no {MANIFEST_NAME}), so it is not "
                           f"replaced: choose another --out or empty it")
    return final


@dataclass
class StagedBuild:
    """A build being written: ``work`` (the staging directory) becomes ``final`` on :meth:`commit`."""

    final: Path
    work: Path
    created: list[Path] = field(default_factory=list)   # parents of ``final`` made for this build
    committed: bool = False

    def relocate(self) -> int:
        """Rewrite the staging path to the final one in the build's text files; returns how many changed."""
        old, new = str(self.work).encode(), str(self.final).encode()
        changed = 0
        for path in self.work.rglob("*"):
            if path.suffix not in TEXT_SUFFIXES or path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if old in data:
                path.write_bytes(data.replace(old, new))
                changed += 1
        return changed

    def commit(self, log: Callable[[str], None] = print) -> None:
        """Rename the staging directory into place (replacing the previous build, its boards stopped)."""
        self.relocate()
        old = None
        if self.final.is_dir():
            stopped = stop_boards(self.final)
            if stopped:
                log(f"  stopped the previous build's emulated boards ({', '.join(stopped)}): their images are replaced")
            old = self.final.parent / f".{self.final.name}.old-{os.getpid()}-{secrets.token_hex(3)}"
            os.rename(self.final, old)
        try:
            os.rename(self.work, self.final)
        except OSError as err:
            if old is not None:
                os.rename(old, self.final)
            raise StagingError(f"cannot rename {self.work} to {self.final} ({err.strerror})") from None
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """Remove the staging directory (and the parents made for it, when still empty)."""
        shutil.rmtree(self.work, ignore_errors=True)
        for parent in self.created:
            with contextlib.suppress(OSError):
                parent.rmdir()


def start(out: Path) -> StagedBuild:
    """A fresh staging directory beside ``out`` (:func:`check_out_dir` first); removes the staging
    directories of builds that died."""
    final = check_out_dir(out)
    created = [p for p in reversed(final.parents) if not p.exists()]
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(final)
        work = final.parent / f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}"
        work.mkdir()
    except OSError as err:
        for parent in reversed(created):
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise StagingError(f"cannot write beside {final} ({err.strerror}): choose another --out") from None
    return StagedBuild(final, work, list(reversed(created)))


@contextlib.contextmanager
def staged(out: Path) -> Iterator[StagedBuild]:
    """``with staged(out) as build: ...; build.commit()`` — anything not committed is removed."""
    build = start(out)
    try:
        yield build
    finally:
        if not build.committed:
            build.discard()


def remove_stale(final: Path) -> list[Path]:
    """Staging and replaced directories of ``final`` whose process is gone (a killed build)."""
    removed = []
    for path in final.parent.glob(f".{final.name}.*-*-*"):
        kind, _, rest = path.name[len(final.name) + 2:].partition("-")
        pid = rest.split("-")[0]
        if kind in ("tmp", "old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def stop_boards(build: Path) -> list[str]:
    """Stop the emulated boards whose pid files are in ``build`` (pio run -t upload, harness --start-boards)."""
    from codegen.emulator import stop_pidfile

    stopped = []
    for sub in PIDFILE_DIRS:
        for pidfile in sorted((build / sub).glob("*.pid")):
            if stop_pidfile(pidfile):
                stopped.append(pidfile.stem)
    return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
