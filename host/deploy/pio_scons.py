"""The SCons side of the node environments: called from PlatformIO's build, not from host.build.

``platformio/platform-resilinet-qemu/builder/main.py`` (emulated boards) and ``platformio/resilinet_env.py``
(real boards, ``extra_scripts = pre:``) import this module inside ``pio run`` and call
:func:`configure_env`, so both kinds of environment link exactly as :mod:`host.deploy.firmware` does.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from boards import load_board
from codegen import toolchain as tc
from host.deploy.pio_core import PlatformIOError
from host.deploy.pio_upload import upload


def configure_env(env: Any) -> None:
    """Add host.deploy.firmware's link step to a PlatformIO SCons environment.

    Linker flags (cpu flags, ``LINK_FLAGS``, stack size, map file), ``LDSCRIPT_PATH`` = sections.ld (the
    core passes ``-T`` itself), ``$BUILD_DIR/memory.ld`` and the generated ``board_clock.h`` from
    boards/<board>/board.toml; for real boards
    with Arm's CMSIS-NN, its ``Source/*/*.c``.
    """
    board = load_board(env.GetProjectOption("custom_resilinet_board", "") or env.subst("$BOARD"))
    build_dir = Path(env.subst("$BUILD_DIR"))
    build_dir.mkdir(parents=True, exist_ok=True)
    memory = build_dir / "memory.ld"
    text = tc.memory_ld(board)
    if not memory.exists() or memory.read_text() != text:
        memory.write_text(text)
    # board_clock.h: platformio.ini names its folder too, but the cache may have been wiped or moved since
    env.Append(CPPPATH=[str(tc.write_board_headers(board))])
    env.Replace(LDSCRIPT_PATH=str(tc.SECTIONS_LD))
    env.Prepend(LIBPATH=[str(build_dir)])
    env.Append(LINKFLAGS=[*tc.cpu_flags(board), *tc.LINK_FLAGS, f"-Wl,--defsym=__stack_size={tc.DEFAULT_STACK_BYTES}",
                          f"-Wl,-Map={build_dir / 'firmware.map'}"])
    cmsis = env.GetProjectOption("custom_cmsis_nn_dir", "")
    if cmsis:
        src = Path(env.subst("$PROJECT_DIR")) / cmsis / "Source"
        if not src.is_dir():
            sys.stderr.write(f"error: Arm's CMSIS-NN not found in {src}: lib_deps fetches it from GitHub once (with "
                             f"internet: pio pkg install -e {env['PIOENV']})\n")
            env.Exit(1)
        env.BuildSources(str(build_dir / "CMSIS-NN"), str(src), "+<*/*.c>")


def scons_upload_action(target: Any, source: Any, env: Any) -> int:
    """SCons action of ``upload`` for emulated boards (returns the exit status): (re)start the board and record
    it in the build's ``pio/uploads.json`` for the harness."""
    option = env.GetProjectOption
    try:
        board = upload(option("custom_resilinet_board"), str(source[0]), int(option("custom_emulator_port")),
                       option("custom_emulator_pidfile"), node=option("custom_resilinet_node", "") or None,
                       env=env["PIOENV"], build_dir=option("custom_resilinet_build", "") or None)
    except (PlatformIOError, OSError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    moved = "" if board.port == int(option("custom_emulator_port")) else \
        f" (port {option('custom_emulator_port')} was busy)"
    print(f"{env['PIOENV']}: running on {board.url}{moved}, UART behind a receive buffer (a raw client doubles "
          f"0x00 bytes it sends); stop: python -m codegen.emulator stop --pidfile {board.pidfile}")
    return 0
