"""``upload`` of an emulated board: (re)start its image in a detached QEMU; and stop a build's boards.

Boards are started as the harness starts its own (``rx_buffer``: a QEMU mux chardev with a receive buffer
in front of the UART, ~5x the sample rate of a plain socket; a client doubles every 0x00 it sends) and
recorded in ``<build>/pio/uploads.json`` (:mod:`host.deploy.uploads`), where ``python -m host.harness``
finds them.
"""
from __future__ import annotations

import socket
from pathlib import Path

from host.deploy.pio_core import PlatformIOError
from host.deploy.uploads import UploadedBoard, forget_uploads, record_upload


def port_free(port: int) -> bool:
    """True if QEMU could listen on 127.0.0.1:``port`` now (bound as QEMU binds: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", int(port)))
        except OSError:
            return False
    return True


def upload(board: str, elf: str | Path, port: int, pidfile: str | Path, *, node: str | None = None,
           env: str | None = None, build_dir: str | Path | None = None) -> UploadedBoard:
    """(Re)start ``elf`` on emulated ``board`` in a detached QEMU, UART on ``port`` (or, when another program
    holds that port, on a free one); returns the started board, recorded in ``build_dir``'s uploads.json.

    A QEMU still running from the same pid file is stopped first, so uploading again restarts the
    board. The guest waits (``wait=on``) until the host connects, so its boot HELLO is not lost.
    """
    # codegen.emulator is imported here, not at the top: the SCons hooks import this module in every
    # ``pio run``, and only ``upload`` needs the emulator driver.
    from codegen.emulator import EmulatedBoard, LaunchError, stop_pidfile

    pidfile = Path(pidfile).resolve()
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    stop_pidfile(pidfile)
    b = None
    for fixed in ([int(port)] if port_free(port) else []) + [None]:  # None: a free port (retried by start)
        b = EmulatedBoard(board, elf, fixed, workdir=pidfile.parent, die_with_parent=False, name=pidfile.stem,
                          rx_buffer=True)
        b.pidfile = pidfile
        try:
            b.start()
            break
        except LaunchError as err:
            if fixed is None or "in use" not in str(err):  # taken between the check and QEMU's bind: retry
                raise PlatformIOError(f"{board} in QEMU for {pidfile.stem}: {err}") from err
    assert b is not None and b.port is not None
    started = UploadedBoard(node=node or pidfile.stem, env=env or pidfile.stem, board=b.board.name, url=b.url,
                            port=b.port, pidfile=pidfile, rx_buffer=True)
    b.detach()  # it outlives this process; stopped through its pid file
    if build_dir is not None:
        record_upload(Path(build_dir), started)
    return started


def stop_build(build_dir: str | Path) -> list[str]:
    """Stop every emulated board started by ``pio run -t upload`` for the build in ``build_dir`` (and forget
    them in its uploads.json)."""
    from codegen.emulator import stop_pidfile

    stopped = []
    for pidfile in sorted((Path(build_dir) / "pio" / "qemu").glob("*.pid")):
        if stop_pidfile(pidfile):
            stopped.append(pidfile.stem)
    forget_uploads(build_dir)
    return stopped
