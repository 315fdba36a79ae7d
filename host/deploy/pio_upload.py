"""``upload`` of an emulated board: (re)start its image in a detached QEMU; and stop a build's boards."""
from __future__ import annotations

from pathlib import Path

from host.deploy.pio_core import PlatformIOError


def upload(board: str, elf: str | Path, port: int, pidfile: str | Path) -> str:
    """(Re)start ``elf`` on emulated ``board`` in a detached QEMU, UART on ``port``; returns its URL.

    A QEMU still running from the same pid file is stopped first, so uploading again restarts the
    board. The guest waits (``wait=on``) until the host connects, so its boot HELLO is not lost.
    """
    # codegen.emulator is imported here, not at the top: the SCons hooks import this module in every
    # ``pio run``, and only ``upload`` needs the emulator driver.
    from codegen.emulator import EmulatedBoard, LaunchError, stop_pidfile

    pidfile = Path(pidfile).resolve()
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    stop_pidfile(pidfile)
    b = EmulatedBoard(board, elf, int(port), workdir=pidfile.parent, die_with_parent=False, name=pidfile.stem)
    b.pidfile = pidfile
    try:
        b.start()
    except LaunchError as err:
        raise PlatformIOError(f"{err} (port {port}; another program may hold it)") from err
    b.detach()  # it outlives this process; stopped through its pid file
    return f"socket://127.0.0.1:{port}"


def stop_build(build_dir: str | Path) -> list[str]:
    """Stop every emulated board started by ``pio run -t upload`` for the build in ``build_dir``."""
    from codegen.emulator import stop_pidfile

    stopped = []
    for pidfile in sorted((Path(build_dir) / "pio" / "qemu").glob("*.pid")):
        if stop_pidfile(pidfile):
            stopped.append(pidfile.stem)
    return stopped
