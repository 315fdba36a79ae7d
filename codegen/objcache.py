"""A machine-wide cache of compiled objects, shared by every node build (``codegen.toolchain.compile_object``).

A node image compiles the same CMSIS-NN kernels and board support as every other node of that board; this
cache compiles each of them once. An entry is keyed by a hash of the compile command, the source path and the
working directory, where the node's own directories (``local_dirs``: its output dir, its model's dir) are
replaced by placeholders: the object path and ``-I`` flags of two nodes then give the same key. An entry holds
the object, its SHA-256, the compiler's warnings and the content hash of every file the compile read (from the
``-MMD`` depfile); a file inside a node directory is recorded relative to it.

A lookup re-hashes every dependency (inside a node directory: the CURRENT node's file) and the object; any
difference is a miss. An object that read a file inside a node directory may embed that directory's path
(debug line tables, ``__FILE__``), so it is only reused by a build whose directory is the same path: the
images are then byte-identical with and without the cache. Path remapping flags (``-ffile-prefix-map``: a
staged build names its final directory) are left out of the key: an entry made under other flags is reused
only when none of them can rewrite a path the compile read. Entries are written through a temporary file and
``os.replace``, so parallel builders never read a half-written entry; the object hash catches the rest.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class CachedCompile:
    """What a hit gives the caller: the dependencies (absolute, of this build) and the compiler's warnings."""

    deps: dict[str, str]
    warnings: str


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, ``""`` when it cannot be read (which never matches a recorded hash)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _roots(local_dirs: Sequence[Path]) -> list[tuple[int, str]]:
    """(index, path) of the node directories, longest first: a nested directory is matched before its parent."""
    return sorted(((i, str(Path(d))) for i, d in enumerate(local_dirs)), key=lambda r: -len(r[1]))


#: Flags followed by a path in the same argument (``-I/dir``); a bare path is the case "".
_PATH_FLAGS = ("-I", "-iquote", "-isystem", "-idirafter", "")


def _abstract(arg: str, roots: list[tuple[int, str]]) -> str:
    """``arg`` with a leading node directory replaced by its placeholder. Only a whole path component matches
    (``/tmp/a`` never matches inside ``/tmp/ab`` or ``/x/tmp/a``); any other use of a node directory stays
    literal, which can only cost a miss, never give a wrong hit."""
    for flag in _PATH_FLAGS:
        if arg.startswith(flag):
            path = arg[len(flag):]
            for i, root in roots:
                if path == root or path.startswith(root + os.sep):
                    return f"{flag}<local{i}>{path[len(root):]}"
    return arg


#: Path remapping flags (a staged build names its final directory): they change only the paths recorded for
#: files under OLD, and the compiler does not record them in the object (unlike -O2 or -mcpu in DW_AT_producer).
_PREFIX_MAPS = ("-ffile-prefix-map=", "-fdebug-prefix-map=", "-fmacro-prefix-map=")


def prefix_maps(cmd: Sequence[str]) -> list[str]:
    """The path remapping flags of ``cmd``: left out of the key, checked against the dependencies on lookup."""
    return [a for a in cmd if a.startswith(_PREFIX_MAPS)]


def _maps_matter(maps: Sequence[str], paths: Sequence[str]) -> bool:
    """Whether a remapping flag of ``maps`` can rewrite a path of ``paths`` (or the working directory)."""
    olds = [m.split("=", 2)[1] for m in maps]
    return any(p == old or p.startswith(old.rstrip(os.sep) + os.sep) for old in olds for p in (*paths, os.getcwd()))


def cache_key(cmd: Sequence[str], src: Path, local_dirs: Sequence[Path], compiler: str) -> str:
    """The entry key of a compile: the compiler's identity, command, source and working directory (which debug
    info records), with the node directories abstracted and the path remapping flags left out."""
    roots = _roots(local_dirs)
    args = [a for a in (*cmd, str(src), os.getcwd()) if not a.startswith(_PREFIX_MAPS)]
    parts = [compiler, *(_abstract(a, roots) for a in args)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _split(path: str, roots: list[tuple[int, str]]) -> tuple[int, str]:
    """(node directory index, path relative to it), or (-1, path) for a file outside every node directory."""
    for i, root in roots:
        if path.startswith(root + os.sep):
            return i, path[len(root) + 1:]
    return -1, path


def _entry_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    base = cache_dir / key[:2]
    return base / f"{key}.o", base / f"{key}.json"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def lookup(cache_dir: Path, key: str, obj: Path, local_dirs: Sequence[Path],
           maps: Sequence[str]) -> CachedCompile | None:
    """Copy the cached object of ``key`` to ``obj`` when every dependency still has its recorded content (and
    the entry's and this compile's ``prefix_maps`` differ only where no dependency lies); None (and ``obj``
    untouched) on a miss, a corrupt or a missing entry."""
    entry_obj, entry_json = _entry_paths(cache_dir, key)
    try:
        entry = json.loads(entry_json.read_text())
        deps_in, warnings, obj_hash = entry["deps"], str(entry["warnings"]), str(entry["object"])
        origins = {int(i): str(p) for i, p in entry["origins"].items()}
        entry_maps = [str(m) for m in entry["maps"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    current = [str(Path(d)) for d in local_dirs]
    deps: dict[str, str] = {}
    try:
        for index, rel, digest in deps_in:
            if index >= 0:
                # the object may name the node directory it was compiled in: reuse it only in that same place
                if index >= len(current) or origins.get(index) != current[index]:
                    return None
                path = os.path.join(current[index], rel)
            else:
                path = rel
            if file_hash(Path(path)) != digest:
                return None
            deps[path] = digest
    except (TypeError, ValueError):
        return None
    if entry_maps != list(maps) and _maps_matter([*entry_maps, *maps], list(deps)):
        return None
    try:
        data = entry_obj.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != obj_hash:
        return None
    _atomic_write(obj, data)
    return CachedCompile(deps, warnings)


def store(cache_dir: Path, key: str, obj: Path, deps: dict[str, str], warnings: str,
          local_dirs: Sequence[Path], maps: Sequence[str]) -> None:
    """Record a fresh compile (best effort: a cache that cannot be written only costs a later compile)."""
    roots = _roots(local_dirs)
    recorded, origins = [], {}
    for path, digest in deps.items():
        index, rel = _split(str(Path(path)), roots)
        if index >= 0:
            origins[index] = str(Path(local_dirs[index]))
        recorded.append([index, rel, digest])
    entry_obj, entry_json = _entry_paths(cache_dir, key)
    try:
        data = obj.read_bytes()
        entry_obj.parent.mkdir(parents=True, exist_ok=True)
        # object first, then the record naming its hash: a reader never accepts a mismatched pair
        _atomic_write(entry_obj, data)
        _atomic_write(entry_json, json.dumps({"object": hashlib.sha256(data).hexdigest(), "warnings": warnings,
                                              "origins": origins, "maps": list(maps),
                                              "deps": recorded}, indent=1).encode())
    except OSError:
        return
