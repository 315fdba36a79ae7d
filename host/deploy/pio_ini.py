"""A build's ``platformio.ini``: one environment per node, built exactly as :mod:`host.deploy.firmware` builds.

``python -m host.build`` ends by calling :func:`write_platformio_ini`, which writes ``<build>/platformio.ini``
with one environment per node (named ``<preset>_<node>``, e.g. ``fashion_iot``) and records each node's
environment (and an emulated board's port and pid file) in the manifest. Every path in it is absolute and
names the build's final location (the build is written in a staging directory and renamed into place:
``work_dir`` is where the files are while it is written), so the same file serves ``pio run -d <build>`` and
the repository's committed root ``platformio.ini``, which reads the latest build's through
``extra_configs = build/current/platformio.ini`` (:mod:`host.deploy.pio_root`).

One way to build: an environment compiles exactly the sources and flags of :mod:`host.deploy.firmware`
(``image_sources``, ``cpu_flags``, ``COMMON_CFLAGS``, the include order of ``build_node``), written
here as ``build_src_filter`` and ``build_flags``; the link step is added by
:func:`host.deploy.pio_scons.configure_env`, which both kinds of environment call:

* emulated boards use the dev-platform kept in this repository, ``platformio/platform-resilinet-qemu``
  (``platform = symlink://...``), with the board manifests generated into ``<build>/pio/boards``
  (``boards_dir``) from ``boards/<board>/board.toml``; ``upload`` starts the board in QEMU and records it
  in ``<build>/pio/uploads.json`` (:mod:`host.deploy.uploads`);
* real Nucleo boards use the official ``platform = ststm32`` without a framework and Arm's CMSIS-NN
  (``lib_deps`` pinned to :data:`CMSIS_NN_RELEASE`; these need the registry and GitHub). Until ststm32 is
  installed in the core dir their environments use ``platformio/platform-resilinet-guard``, which stops
  ``pio run`` at once with one line saying what is missing and how to get it (instead of PlatformIO
  trying the registry for a minute); ``<build>/pio/<platform>.ini``, read through an ``extra_configs`` path
  that exists only when ``<core_dir>/platforms/<platform>`` does, switches them to the real platform.
"""
from __future__ import annotations

import os
import re
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from boards import Board, load_board
from codegen import toolchain as tc
from host.deploy import firmware as fb
from host.deploy.manifest import Emulator, Manifest, PioEnv, PlatformIOSection
from host.deploy.pio_boards import write_board_jsons
from host.deploy.pio_core import CORE_DIR, TOOLCHAIN_PACKAGE, PlatformIOError
from host.paths import REPO_ROOT

PLATFORMIO_DIR = REPO_ROOT / "platformio"
PLATFORM_DIR = PLATFORMIO_DIR / "platform-resilinet-qemu"
#: The dev-platform of environments that cannot run yet: pio run stops with their custom_resilinet_stop.
GUARD_PLATFORM_DIR = PLATFORMIO_DIR / "platform-resilinet-guard"
REAL_BOARD_SCRIPT = PLATFORMIO_DIR / "resilinet_env.py"
#: Where ``pio device monitor`` finds our filter (``monitor_dir``), and its name.
MONITOR_DIR, MONITOR_FILTER = REPO_ROOT / "monitor", "resilinet"
#: Arm's CMSIS-NN release the real-board environments build against (s8 API as firmware/cmsis_nn).
CMSIS_NN_RELEASE = "7.0.0"
CMSIS_NN_URL = f"https://github.com/ARM-software/CMSIS-NN/archive/refs/tags/v{CMSIS_NN_RELEASE}.zip"
INI_NAME = "platformio.ini"
#: Ports of emulated boards: 20000 + 16 * (hash of the build directory mod 790) + node id (below Linux's
#: ephemeral range 32768-60999, so outgoing connections never hold them).
PORT_BASE, PORT_SLOTS = 20000, 790


# ---- What one node image is made of (host.deploy.firmware's recipe) -------------------------


@dataclass(frozen=True)
class NodeBuildSpec:
    """Sources and compile flags of one node image, exactly as :func:`host.deploy.firmware.build_node`."""

    board: Board
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    cflags: tuple[str, ...]          # cpu flags + COMMON_CFLAGS (no -I/-D)
    defines: tuple[str, ...] = ()    # -D... (Arm CMSIS-NN switch)

    def build_flags(self) -> list[str]:
        return [*self.cflags, *self.defines, *(f"-I{d}" for d in self.include_dirs)]


def node_build_spec(board: str | Board, config_header: Path, model_sources: Sequence[Path],
                    arm_cmsis_nn_include: str | None = None) -> NodeBuildSpec:
    """The compile side of ``build_node(board, config_header, model_sources, ...)``.

    ``build_node`` copies ``node_config.h`` into its output's ``include/``; here the header's own
    directory takes that first place on the include path. ``arm_cmsis_nn_include``: Arm's
    ``CMSIS-NN/Include``, put ahead of ``firmware/cmsis_nn`` with ``-DRESILINET_USE_CMSIS_NN``
    (our ``arm_*.c`` then compile to nothing; firmware/cmsis_nn/README.md).
    """
    b = board if isinstance(board, Board) else load_board(board)
    model_sources = [Path(s).resolve() for s in model_sources]
    sources = fb.image_sources(b, model_sources)
    includes = [Path(config_header).resolve().parent, tc.RUNTIME_DIR, *tc.board_include_dirs(b)]
    includes += sorted({s.parent for s in model_sources})
    defines: list[str] = []
    if any(s.parent == tc.CMSIS_NN_DIR for s in sources):
        if arm_cmsis_nn_include:
            includes.append(Path(arm_cmsis_nn_include))
            defines.append("-DRESILINET_USE_CMSIS_NN")
        includes.append(tc.CMSIS_NN_DIR)
    return NodeBuildSpec(b, tuple(sources), tuple(includes), (*tc.cpu_flags(b), *tc.COMMON_CFLAGS), tuple(defines))


# ---- Paths -------------------------------------------------------------------------------------


def env_name(preset: str, node: str) -> str:
    """``fashion`` + ``iot`` -> ``fashion_iot`` (letters, digits and ``_`` only)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", f"{preset}_{node}")


def emulator_port(build_dir: Path, node_id: int) -> int:
    """The TCP port of node ``node_id``'s UART for the build in ``build_dir`` (stable across rebuilds)."""
    slot = zlib.crc32(str(Path(build_dir).resolve()).encode()) % PORT_SLOTS
    return PORT_BASE + 16 * slot + int(node_id)


def relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it, else absolute (POSIX separators)."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def source_view(build_dir: Path) -> Path:
    """The ini's ``src_dir``: ``<build>/pio/src`` (next to ``build_dir`` = ``<build>/pio/build``) with two
    links, ``firmware`` -> the repository's firmware/ and ``nodes`` -> ``../../nodes``, the build's nodes/
    (PlatformIO compiles sources under one ``src_dir``; the view keeps object paths inside the build)."""
    return Path(build_dir).resolve() / "pio" / "src"


def boards_dir(build_dir: Path) -> Path:
    """The ini's ``boards_dir``: the emulated boards' manifests, generated from the board table."""
    return Path(build_dir).resolve() / "pio" / "boards"


def make_source_view(build_dir: Path) -> Path:
    view = source_view(build_dir)
    view.mkdir(parents=True, exist_ok=True)
    for name, target in (("firmware", str(tc.FIRMWARE_DIR.resolve())), ("nodes", os.path.join("..", "..", "nodes"))):
        link = view / name
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        link.symlink_to(target)
    return view


def view_path(source: Path, build_dir: Path) -> str:
    """``source`` as seen in :func:`source_view` (repository firmware or the build's nodes/)."""
    source = Path(source).resolve()
    for prefix, root in (("firmware", tc.FIRMWARE_DIR.resolve()), ("nodes", Path(build_dir).resolve() / "nodes")):
        if source.is_relative_to(root):
            return f"{prefix}/{source.relative_to(root).as_posix()}"
    raise PlatformIOError(f"{source} is neither under {tc.FIRMWARE_DIR} nor under the build's nodes/")


def platform_package(spec: str) -> str:
    """The package (and core-dir folder) name of a ``platform =`` spec: ``platformio/ststm32@^17`` -> ``ststm32``."""
    return re.split(r"[@\s]", spec.strip().split("/")[-1])[0]


def gate_path(core_dir: Path, platform: str, target: Path) -> str:
    """An ``extra_configs`` path that names ``target`` and exists only while ``<core_dir>/platforms/<platform>``
    does: the kernel resolves ``<platform>/..`` only through an existing directory."""
    start = Path(core_dir) / "platforms" / platform
    return f"{start.as_posix()}/{os.path.relpath(target, start)}"


# ---- platformio.ini ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IniNode:
    """What the ini needs of one node (paths relative to the build directory)."""

    name: str
    role: str
    board: str
    node_id: int
    config_header: str
    elf: str                 # host.build's own image, named in a comment
    model_c: str             # the node's generated C module


@dataclass(frozen=True)
class IniEnv:
    """What the ini gives one node: its environment and, on an emulated board, where upload starts it."""

    env: str
    emulator: Emulator | None = None
    platform: str | None = None      # a real board's PlatformIO platform (guarded until it is installed)


@dataclass(frozen=True)
class IniFile:
    path: Path
    envs: dict[str, IniEnv]  # node -> environment


@dataclass(frozen=True)
class RenderedIni:
    """The text of ``<build>/platformio.ini``, per node its environment, and the gate files (path relative
    to the build directory -> text) that switch real-board environments to their platform."""

    text: str
    envs: dict[str, IniEnv]
    gates: dict[str, str] = field(default_factory=dict)


def ini_nodes(manifest: Manifest) -> list[IniNode]:
    """The nodes of a build that went through stage firmware."""
    out = []
    for name, node in manifest.nodes.items():
        fw = node.firmware
        if fw is None:
            raise PlatformIOError(f"node {name!r} has no firmware section: run host.build through stage 3")
        out.append(IniNode(name, node.role, fw.board, fw.node_id, fw.config_header, fw.elf, node.require_model().c))
    return out


def _ini_list(key: str, items: Sequence[str]) -> list[str]:
    return [f"{key} ="] + [f"    {i}" for i in items]


def _emulated_env(node: IniNode, env: str, board: Board, build_dir: Path,
                  core_dir: Path) -> tuple[list[str], list[str], IniEnv]:
    """The lines before and after the shared sources and flags, and where upload starts the board."""
    port = emulator_port(build_dir, node.node_id)
    pidfile = build_dir / "pio" / "qemu" / f"{env}.pid"
    emu = Emulator(port=port, pidfile=relative(pidfile, build_dir), url=f"socket://127.0.0.1:{port}",
                   elf=relative(build_dir / "pio" / "build" / env / "firmware.elf", build_dir))
    head = [f"platform = symlink://{PLATFORM_DIR.resolve().as_posix()}",
            f"platform_packages = platformio/{TOOLCHAIN_PACKAGE} @ symlink://"
            f"{(core_dir / 'local' / TOOLCHAIN_PACKAGE).as_posix()}",
            f"board = {board.name}",
            "lib_ldf_mode = off"]
    tail = ["upload_protocol = qemu", f"custom_emulator_port = {port}",
            f"custom_emulator_pidfile = {pidfile.as_posix()}", f"monitor_port = {emu.url}",
            f"custom_resilinet_node = {node.name}", f"custom_resilinet_build = {build_dir.as_posix()}"]
    return head, tail, IniEnv(env, emu)


def real_board_stop(env: str, node: str, board: Board, platform: str, core_dir: Path, cmsis_nn: bool) -> str:
    """What a real board's environment says while its platform is not installed (one line, no ``;``/``#``)."""
    needs = f"PlatformIO's {platform} platform with its toolchain ({TOOLCHAIN_PACKAGE})"
    if cmsis_nn:
        needs += f" and Arm's CMSIS-NN {CMSIS_NN_RELEASE} (lib_deps, from GitHub)"
    return (f"env {env} (node {node}) runs on a real {board.title}: it needs {needs}, and {platform} is not "
            f"installed in {core_dir.as_posix()}. These come from the PlatformIO registry once: with internet run "
            f"pio pkg install -g -p platformio/{platform} in the repository, then pio run -t upload"
            f"{' (it fetches CMSIS-NN)' if cmsis_nn else ''}. Offline, build for emulated boards instead: "
            f"python -m host.build --board qemu")


def _real_env(node: IniNode, env: str, board: Board, spec: NodeBuildSpec, core_dir: Path) -> tuple[list[str], IniEnv]:
    pio = board.platformio
    if not pio:
        raise PlatformIOError(f"board {board.name!r} has neither a [qemu] nor a [platformio] table")
    platform = platform_package(pio.platform)
    lines = [f"; {pio.platform} until it is installed: {GUARD_PLATFORM_DIR.name} stops pio run with the line below",
             f"platform = symlink://{GUARD_PLATFORM_DIR.resolve().as_posix()}",
             f"custom_resilinet_stop = {real_board_stop(env, node.name, board, platform, core_dir, bool(spec.defines))}",
             f"board = {pio.board}",
             "; no framework: bare metal with firmware/bsp (startup, UART, linker script)",
             f"board_build.ldscript = {tc.SECTIONS_LD.as_posix()}"]
    if spec.defines:
        lines += [f"; Arm's CMSIS-NN {CMSIS_NN_RELEASE}: fetched by lib_deps, compiled by resilinet_env.py from its",
                  "; Source/*/*.c (lib_ignore keeps PlatformIO's library finder from building the whole archive)",
                  f"lib_deps = CMSIS-NN={CMSIS_NN_URL}",
                  "lib_ignore = CMSIS-NN",
                  f"custom_cmsis_nn_dir = {cmsis_nn_dir(env)}"]
    return lines + [
        f"extra_scripts = pre:{REAL_BOARD_SCRIPT.resolve().as_posix()}",
        "upload_protocol = stlink",
        "; several Nucleos on one host: pick this node's ST-LINK, e.g. upload_flags = -c \"hla_serial <serial>\"",
        "; and monitor_port = /dev/serial/by-id/usb-STMicroelectronics_STM32_STLink_<serial>-if02",
        "debug_tool = stlink"], IniEnv(env, platform=pio.platform)


def cmsis_nn_dir(env: str) -> str:
    """Where lib_deps puts Arm's CMSIS-NN for ``env`` (PlatformIO expands it to an absolute path)."""
    return f"${{platformio.libdeps_dir}}/{env}/CMSIS-NN"


def monitor_lines(board: Board) -> list[str]:
    """``pio device monitor``: the board's baud (its firmware's, board.toml ``uart.baud``) and the filter that
    shows the node's frames as lines (monitor/filter_resilinet.py; latin-1 hands it every byte unchanged)."""
    return [f"; pio device monitor: {board.uart.baud} baud, frames as lines (filter {MONITOR_FILTER}: keys h = HELLO, "
            f"s = STATS)",
            f"monitor_speed = {board.uart.baud}", f"monitor_filters = {MONITOR_FILTER}", "monitor_encoding = latin-1"]


def _env_section(node: IniNode, preset: str, build_dir: Path, work_dir: Path,
                 core_dir: Path) -> tuple[list[str], IniEnv]:
    """One ``[env:...]``: board-specific lines around the sources and flags every environment has."""
    board = load_board(node.board)
    env = env_name(preset, node.name)
    header, sources = work_dir / node.config_header, [work_dir / node.model_c]
    if board.emulated:
        spec = node_build_spec(board, header, sources)
        head, tail, info = _emulated_env(node, env, board, build_dir, core_dir)
    else:
        spec = node_build_spec(board, header, sources, arm_cmsis_nn_include=f"{cmsis_nn_dir(env)}/Include")
        (head, info), tail = _real_env(node, env, board, spec, core_dir), []

    def final(d: Path) -> str:  # a directory of the build as it will be, or anything else as is
        p = Path(d)
        if str(d).startswith("$"):
            return str(d)
        return (build_dir / p.resolve().relative_to(work_dir)).as_posix() if p.resolve().is_relative_to(work_dir) \
            else p.resolve().as_posix()

    shared = [f"custom_resilinet_board = {board.name}", f"custom_resilinet_repo = {REPO_ROOT.resolve().as_posix()}"]
    shared += monitor_lines(board)
    shared += _ini_list("build_src_filter", [f"+<{view_path(s, work_dir)}>" for s in spec.sources])
    shared += _ini_list("build_flags", [*spec.cflags, *spec.defines] + [f"-I{final(d)}" for d in spec.include_dirs])
    title = [f"[env:{env}]",
             f"; node {node.name!r} (node {node.node_id}, {node.role}) on {board.title}; "
             f"host.build's own image: {(build_dir / node.elf).as_posix()}"]
    return title + head + shared + tail, info


def render_platformio_ini(preset: str, nodes: Sequence[IniNode], build_dir: Path, core_dir: Path | None = None,
                          work_dir: Path | None = None) -> RenderedIni:
    """The ini of the build that will be in ``build_dir`` (its files are in ``work_dir`` now, default the same)."""
    build_dir = Path(build_dir).resolve()
    work_dir = Path(work_dir).resolve() if work_dir is not None else build_dir
    core_dir = Path(core_dir or CORE_DIR).resolve()
    envs: dict[str, IniEnv] = {}
    sections: list[list[str]] = []
    for node in nodes:
        lines, envs[node.name] = _env_section(node, preset, build_dir, work_dir, core_dir)
        sections.append(lines)
    gates: dict[str, str] = {}
    for info in envs.values():
        if info.platform:
            name = f"pio/{platform_package(info.platform)}.ini"
            gates[name] = gates.get(name, f"; {platform_package(info.platform)} is installed in {core_dir}: the "
                                          f"real platform for its environments (generated, do not edit)\n")
            gates[name] += f"\n[env:{info.env}]\nplatform = {info.platform}\n"
    where = build_dir.as_posix()
    header = [
        f"; PlatformIO project of the build in {where}: one environment per node. Generated by",
        "; host/deploy/pio_ini.py (python -m host.build and python -m host.deploy.pio_project ini rewrite it). Do not edit.",
        "; In the repository, the root platformio.ini reads the latest build's through build/current; elsewhere, pio run -d DIR.",
        "; pio run [-e <env>]              build the node images",
        "; pio run [-e <env>] -t upload    emulated board: (re)start it in QEMU, recorded in pio/uploads.json",
        ";                                 real board: flash it through its ST-LINK",
        "; pio device monitor -e <env>     the node's frames, one line each (keys: h = HELLO, s = STATS; platformio/README.md)",
        f"; python -m host.deploy.pio_project stop {where}   stop the build's emulated boards",
        "; Offline: .pio-core is prepared by scripts/setup.sh (python -m host.deploy.pio_project prepare).",
        "",
        "[platformio]",
        f"core_dir = {core_dir.as_posix()}",
        f"build_dir = {(build_dir / 'pio' / 'build').as_posix()}",  # PlatformIO empties it when the ini changes
        f"src_dir = {source_view(build_dir).as_posix()}",
        f"boards_dir = {boards_dir(build_dir).as_posix()}",
        f"monitor_dir = {MONITOR_DIR.resolve().as_posix()}",
        "default_envs = " + ", ".join(e.env for e in envs.values()),
    ]
    if gates:
        header += ["; a real platform's environments switch to it once it is installed (a path through its folder)"]
        header += _ini_list("extra_configs", [gate_path(core_dir, Path(g).stem, build_dir / g) for g in gates])
    text = "\n".join(header + [""] + ["\n".join(s) + "\n" for s in sections])
    return RenderedIni(text, envs, gates)


def write_ini(preset: str, nodes: Sequence[IniNode], build_dir: str | Path, core_dir: str | Path | None = None, *,
              work_dir: str | Path | None = None) -> IniFile:
    """Write ``<build_dir>/platformio.ini`` (one env per node), its gate files, its source view and its
    emulated boards' manifests. While the build is being written, ``work_dir`` holds its files and receives
    these; the text names ``build_dir``, where the build will be."""
    build_dir = Path(build_dir).resolve()
    work = Path(work_dir).resolve() if work_dir is not None else build_dir
    ini = render_platformio_ini(preset, nodes, build_dir, Path(core_dir) if core_dir else None, work)
    make_source_view(work)
    write_board_jsons(boards_dir(work), [load_board(n.board) for n in nodes])
    for name, text in ini.gates.items():
        _write_if_changed(work / name, text)
    _write_if_changed(work / INI_NAME, ini.text)  # an unchanged ini keeps PlatformIO's build dir
    return IniFile(build_dir / INI_NAME, ini.envs)


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_platformio_ini(manifest: Manifest, build_dir: str | Path, core_dir: str | Path | None = None, *,
                         work_dir: str | Path | None = None) -> Path:
    """:func:`write_ini` for a build that went through stage firmware, recorded in ``manifest`` (the caller
    writes manifest.json): per node its :class:`PioEnv` and, on emulated boards, its :class:`Emulator`;
    the ini (relative to the build) and the env names in ``manifest.platformio``."""
    ini = write_ini(manifest.preset or Path(build_dir).name, ini_nodes(manifest), build_dir, core_dir,
                    work_dir=work_dir)
    for name, info in ini.envs.items():
        node = manifest.nodes[name]
        node.platformio = PioEnv(info.env)
        if info.emulator is not None:
            node.emulator = info.emulator
    manifest.platformio = PlatformIOSection(ini=INI_NAME, envs=[i.env for i in ini.envs.values()])
    return ini.path
