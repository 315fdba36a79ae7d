"""``python -m host.deploy.pio_project``: PlatformIO for the node images, offline.

``python -m host.build`` ends by writing ``<build>/platformio.ini`` (one environment per node, named
``<preset>_<node>``, e.g. ``fashion_iot``) and, for a build inside the repository, pointing ``build/current``
at it, which the committed root ``platformio.ini`` reads; then, in the repository::

    pio run                          # build every node image (build/<preset>-<scheme>/pio/build/<env>/firmware.elf)
    pio run -e fashion_iot -t upload # emulated board: (re)start it in QEMU (recorded in <build>/pio/uploads.json)
                                     # real board: flash it through its ST-LINK
    pio device monitor -e fashion_iot  # the node's UART (socket://127.0.0.1:PORT when emulated)
    python -m host.deploy.pio_project stop build/fashion-resilinet   # stop every emulated board of the build

The pieces: :mod:`host.deploy.pio_ini` (a build's ini, its gate files and the emulated boards' manifests),
:mod:`host.deploy.pio_root` (the root project and ``build/current``), :mod:`host.deploy.pio_core`
(``prepare``: the offline core dir ``.pio-core``), :mod:`host.deploy.pio_scons` (the SCons hooks the
``platformio/`` scripts call inside ``pio run``), :mod:`host.deploy.pio_upload` (upload/stop of emulated
boards) and :mod:`host.deploy.uploads` (the record of uploaded boards).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from host.deploy.manifest import ManifestError, read_manifest, write_manifest
from host.deploy.pio_core import PlatformIOError, prepare
from host.deploy.pio_ini import write_platformio_ini
from host.deploy.pio_root import point_current
from host.deploy.pio_upload import stop_build, upload


def rewrite_ini(build_dir: Path) -> Path:
    """(Re)write platformio.ini for an existing build and record it in the build's manifest.json."""
    manifest = read_manifest(build_dir, stage="firmware")
    path = write_platformio_ini(manifest, build_dir)
    write_manifest(manifest, build_dir)
    print(f"wrote {path} (envs: {', '.join(manifest.platformio.envs if manifest.platformio else [])})")
    return path


def use_build(build_dir: Path) -> Path:
    """Point the repository's root project (``build/current``) at an existing build."""
    read_manifest(build_dir, stage="firmware")
    link = point_current(build_dir)
    if link is None:
        raise PlatformIOError(f"{build_dir} is outside the repository or has no platformio.ini: pio run -d {build_dir} "
                              f"builds it (python -m host.deploy.pio_project ini {build_dir} rewrites its ini)")
    print(f"{link} -> {build_dir}: pio run in the repository builds it")
    return link


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.deploy.pio_project", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="prepare .pio-core for offline use (idempotent)")
    p.add_argument("--core-dir", type=Path, default=None)
    p = sub.add_parser("ini", help="(re)write BUILD_DIR/platformio.ini for an existing build (updates its manifest.json)")
    p.add_argument("build_dir", type=Path)
    p = sub.add_parser("use", help="make pio run in the repository build BUILD_DIR (points build/current at it)")
    p.add_argument("build_dir", type=Path)
    p = sub.add_parser("upload", help="(re)start an image on an emulated board (what 'pio run -t upload' does)")
    p.add_argument("--board", required=True)
    p.add_argument("--elf", required=True, type=Path)
    p.add_argument("--port", required=True, type=int)
    p.add_argument("--pidfile", required=True, type=Path)
    p = sub.add_parser("stop", help="stop every emulated board uploaded for a build")
    p.add_argument("build_dir", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "prepare":
            prepare(args.core_dir)
        elif args.cmd == "ini":
            rewrite_ini(args.build_dir)
        elif args.cmd == "use":
            use_build(args.build_dir)
        elif args.cmd == "upload":
            print(upload(args.board, args.elf, args.port, args.pidfile).url)
        elif args.cmd == "stop":
            stopped = stop_build(args.build_dir)
            print("stopped " + (", ".join(stopped) if stopped else "nothing"))
    except (PlatformIOError, ManifestError, OSError, KeyError, ValueError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
