"""PlatformIO for the node images: ``platformio.ini`` per build, and PlatformIO without its registry.

``python -m host.build`` ends by calling :func:`write_platformio_ini`, which writes one environment
per node into ``platformio.ini`` at the repository root (named ``<preset>_<node>``, e.g.
``fashion_iot``); then, in the repository::

    pio run                          # build every node image (build/<preset>-<scheme>/pio/<env>/firmware.elf)
    pio run -e fashion_iot -t upload # emulated board: (re)start it in QEMU, UART on its TCP port
                                     # real board: flash it through its ST-LINK
    pio device monitor -e fashion_iot  # the node's UART (socket://127.0.0.1:PORT when emulated)
    python -m host.deploy.pio_project stop build/fashion-resilinet   # stop every emulated board of the build

One way to build: an environment compiles exactly the sources and flags of
:mod:`host.deploy.firmware` (``image_sources``, ``cpu_flags``, ``COMMON_CFLAGS``, the include order of
``build_node``), written into the ini as ``build_src_filter`` and ``build_flags``; the link step
(``cpu_flags`` + ``LINK_FLAGS``, stack size, ``sections.ld`` with a ``memory.ld`` generated from
``boards/<board>/board.toml``) is added by :func:`configure_env`, which both kinds of environment call:

* emulated boards (``boards/qemu_*.toml``) use the dev-platform kept in this repository,
  ``platformio/platform-resilinet-qemu`` (``platform = symlink://...``; its builder calls
  :func:`configure_env`); ``upload`` (re)starts QEMU with the UART on the port recorded in the
  build manifest (``nodes[<n>]["emulator"]``), pid file under the build directory;
* real Nucleo boards use the official ``platform = ststm32`` without a framework (our startup, linker
  script and UART driver; ``platformio/resilinet_env.py`` calls :func:`configure_env`) and Arm's
  CMSIS-NN (``lib_deps`` pinned to :data:`CMSIS_NN_RELEASE`, ``-DRESILINET_USE_CMSIS_NN``, its
  ``Include`` ahead of ``firmware/cmsis_nn`` as firmware/cmsis_nn/README.md says). These need the
  PlatformIO registry and GitHub (online users).

Offline: the ini sets ``core_dir`` to the repository's ``.pio-core`` (git-ignored), which
:func:`prepare` (``python -m host.deploy.pio_project prepare``, run by ``scripts/setup.sh``) fills with what
PlatformIO would otherwise download: ``tool-scons`` made from the venv's SCons (with the ``.piopm``
that names owner ``platformio``), a toolchain package whose ``bin/`` links to the system's
``arm-none-eabi-*``, and telemetry/upgrade checks off.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from boards import Board, board_names, load_board
from codegen import toolchain as tc
from host.deploy import firmware as fb
from host.paths import REPO_ROOT

PLATFORMIO_DIR = REPO_ROOT / "platformio"
PLATFORM_DIR = PLATFORMIO_DIR / "platform-resilinet-qemu"
REAL_BOARD_SCRIPT = PLATFORMIO_DIR / "resilinet_env.py"
CORE_DIR = REPO_ROOT / ".pio-core"
#: The toolchain package over the system's arm-none-eabi-* (inside the core dir, linked by platform_packages).
TOOLCHAIN_PACKAGE = "toolchain-gccarmnoneeabi"
#: Arm's CMSIS-NN release the real-board environments build against (s8 API as firmware/cmsis_nn).
CMSIS_NN_RELEASE = "7.0.0"
CMSIS_NN_URL = f"https://github.com/ARM-software/CMSIS-NN/archive/refs/tags/v{CMSIS_NN_RELEASE}.zip"
INI_NAME = "platformio.ini"
#: Ports of emulated boards: 20000 + 16 * (hash of the build directory mod 790) + node id (below Linux's
#: ephemeral range 32768-60999, so outgoing connections never hold them).
PORT_BASE, PORT_SLOTS = 20000, 790
#: Environment variables for running ``pio`` offline against a core dir (tests, CLI).
OFFLINE_ENV = {"PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No", "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "3650"}


class PlatformIOError(RuntimeError):
    pass


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


# ---- platformio.ini ---------------------------------------------------------------------------


def env_name(preset: str, node: str) -> str:
    """``fashion`` + ``iot`` -> ``fashion_iot`` (letters, digits and ``_`` only)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", f"{preset}_{node}")


def emulator_port(build_dir: Path, node_id: int) -> int:
    """The TCP port of node ``node_id``'s UART for the build in ``build_dir`` (stable across rebuilds)."""
    slot = zlib.crc32(str(Path(build_dir).resolve()).encode()) % PORT_SLOTS
    return PORT_BASE + 16 * slot + int(node_id)


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it, else absolute (POSIX separators)."""
    path = Path(path).resolve()
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def source_view(build_dir: Path) -> Path:
    """The ini's ``src_dir``: ``<build>/pio/src`` (next to ``build_dir`` = ``<build>/pio/build``) with two links, ``firmware`` -> the repository's
    firmware/ and ``nodes`` -> the build's nodes/ (PlatformIO compiles sources under one ``src_dir``;
    the view keeps object paths inside the build directory wherever the build is)."""
    return Path(build_dir).resolve() / "pio" / "src"


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


def _view_path(source: Path, build_dir: Path) -> str:
    """``source`` as seen in :func:`source_view` (repository firmware or the build's nodes/)."""
    source = Path(source).resolve()
    for prefix, root in (("firmware", tc.FIRMWARE_DIR.resolve()), ("nodes", Path(build_dir).resolve() / "nodes")):
        if source.is_relative_to(root):
            return f"{prefix}/{source.relative_to(root).as_posix()}"
    raise PlatformIOError(f"{source} is neither under {tc.FIRMWARE_DIR} nor under the build's nodes/")


def _ini_list(key: str, items: Sequence[str]) -> list[str]:
    return [f"{key} ="] + [f"    {i}" for i in items]


def render_platformio_ini(manifest: Mapping[str, Any], build_dir: Path, project_dir: Path,
                          core_dir: Path | None = None) -> tuple[str, dict[str, dict[str, Any]]]:
    """The ini text and, per node, what goes into the manifest (env name, emulator port and pid file)."""
    build_dir, project_dir = Path(build_dir).resolve(), Path(project_dir).resolve()
    core_dir = Path(core_dir or CORE_DIR).resolve()
    nodes = manifest["nodes"]
    missing = [n for n, d in nodes.items() if "firmware" not in d]
    if missing:
        raise PlatformIOError(f"nodes {missing} have no firmware section: run host.build through stage 3")
    preset = str(manifest.get("preset") or build_dir.name)
    src_dir = source_view(build_dir)
    pio_build = build_dir / "pio" / "build"  # PlatformIO empties it when the ini changes
    envs: dict[str, dict[str, Any]] = {}
    sections: list[list[str]] = []
    for name, node in nodes.items():
        fw = node["firmware"]
        board = load_board(fw["board"])
        env = env_name(preset, name)
        node_id = int(fw["node_id"])
        header = build_dir / fw["config_header"]
        model_sources = [build_dir / node["c"]]
        lines = [f"[env:{env}]",
                 f"; node {name!r} (node {node_id}, {node.get('role', '?')}) on {board.title}; "
                 f"host.build's own image: {_rel(build_dir / fw['elf'], project_dir)}"]
        info: dict[str, Any] = {"env": env}
        if board.emulated:
            spec = node_build_spec(board, header, model_sources)
            port = emulator_port(build_dir, node_id)
            pidfile = build_dir / "pio" / "qemu" / f"{env}.pid"
            info.update(port=port, pidfile=_rel(pidfile, build_dir), url=f"socket://127.0.0.1:{port}",
                        elf=_rel(pio_build / env / "firmware.elf", build_dir))
            lines += [
                f"platform = symlink://{PLATFORM_DIR.resolve().as_posix()}",
                f"platform_packages = platformio/{TOOLCHAIN_PACKAGE} @ symlink://"
                f"{(core_dir / 'local' / TOOLCHAIN_PACKAGE).as_posix()}",
                f"board = {board.name}",
                "lib_ldf_mode = off",
            ]
        else:
            pio = board.platformio
            if not pio:
                raise PlatformIOError(f"board {board.name!r} has neither a [qemu] nor a [platformio] table")
            cmsis = f".pio/libdeps/{env}/CMSIS-NN"
            spec = node_build_spec(board, header, model_sources, arm_cmsis_nn_include=f"{cmsis}/Include")
            lines += [
                f"platform = {pio.platform}",
                f"board = {pio.board}",
                "; no framework: bare metal with firmware/bsp (startup, UART, linker script)",
                f"board_build.ldscript = {tc.SECTIONS_LD.as_posix()}",
            ]
            if spec.defines:
                lines += [
                    f"; Arm's CMSIS-NN {CMSIS_NN_RELEASE}: fetched by lib_deps, compiled by resilinet_env.py from its",
                    "; Source/*/*.c (lib_ignore keeps PlatformIO's library finder from building the whole archive)",
                    f"lib_deps = CMSIS-NN={CMSIS_NN_URL}",
                    "lib_ignore = CMSIS-NN",
                    f"custom_cmsis_nn_dir = {cmsis}",
                ]
            lines += [
                f"extra_scripts = pre:{REAL_BOARD_SCRIPT.resolve().as_posix()}",
                "upload_protocol = stlink",
                "; several Nucleos on one host: pick this node's ST-LINK, e.g. upload_flags = -c \"hla_serial <serial>\"",
                "; and monitor_port = /dev/serial/by-id/usb-STMicroelectronics_STM32_STLink_<serial>-if02",
                "debug_tool = stlink",
                f"monitor_speed = {board.uart.baud}",
            ]
        lines += [f"custom_resilinet_board = {board.name}", f"custom_resilinet_repo = {REPO_ROOT.resolve().as_posix()}"]
        lines += _ini_list("build_src_filter", [f"+<{_view_path(s, build_dir)}>" for s in spec.sources])
        lines += _ini_list("build_flags", [*spec.cflags, *spec.defines]
                           + [f"-I{_rel(d, project_dir) if not str(d).startswith('.pio') else d}"
                              for d in spec.include_dirs])
        if board.emulated:
            lines += ["upload_protocol = qemu", f"custom_emulator_port = {info['port']}",
                      f"custom_emulator_pidfile = {pidfile.as_posix()}",
                      f"monitor_port = {info['url']}"]
        sections.append(lines)
        envs[name] = info
    header = [
        f"; Generated by host/deploy/pio_project.py for the build in {_rel(build_dir, project_dir)} "
        f"(python -m host.build rewrites it). Do not edit.",
        "; pio run                       build every node image",
        "; pio run -e <env> -t upload    emulated board: (re)start it in QEMU (UART on custom_emulator_port);",
        ";                               real board: flash it through its ST-LINK",
        "; pio device monitor -e <env>   the node's UART",
        f"; python -m host.deploy.pio_project stop {_rel(build_dir, project_dir)}   stop the build's emulated boards",
        "; Offline: .pio-core is prepared by scripts/setup.sh (python -m host.deploy.pio_project prepare).",
        "",
        "[platformio]",
        f"core_dir = {core_dir.as_posix()}",
        f"build_dir = {_rel(pio_build, project_dir)}",
        f"src_dir = {_rel(src_dir, project_dir)}",
        "default_envs = " + ", ".join(e["env"] for e in envs.values()),
    ]
    text = "\n".join(header + [""] + ["\n".join(s) + "\n" for s in sections])
    return text, envs


def default_project_dir(build_dir: str | Path) -> Path:
    """Where a build's platformio.ini goes: the repository root for builds inside the repository (the
    user runs ``pio run`` there), else the build directory itself (``pio run -d BUILD_DIR``)."""
    build_dir = Path(build_dir).resolve()
    return REPO_ROOT.resolve() if build_dir.is_relative_to(REPO_ROOT.resolve()) else build_dir


def write_platformio_ini(manifest: dict[str, Any], build_dir: str | Path, project_dir: str | Path | None = None,
                         core_dir: str | Path | None = None) -> Path:
    """Write ``project_dir/platformio.ini`` for the build in ``build_dir`` (one env per node).

    ``project_dir`` defaults to :func:`default_project_dir` (the repository root for builds inside it).

    Records in ``manifest`` (the caller writes manifest.json) per node ``nodes[n]["platformio"] =
    {"env": ...}`` and, for emulated boards, ``nodes[n]["emulator"] = {"port", "pidfile", "url", "elf"}``
    (paths relative to ``build_dir``), plus ``manifest["platformio"] = {"ini": ..., "envs": [...]}``.
    """
    project_dir = Path(project_dir).resolve() if project_dir is not None else default_project_dir(build_dir)
    text, envs = render_platformio_ini(manifest, Path(build_dir), project_dir, Path(core_dir) if core_dir else None)
    make_source_view(Path(build_dir))
    path = project_dir / INI_NAME
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    for name, info in envs.items():
        manifest["nodes"][name]["platformio"] = {"env": info["env"]}
        if "port" in info:
            manifest["nodes"][name]["emulator"] = {k: info[k] for k in ("port", "pidfile", "url", "elf")}
    manifest["platformio"] = {"ini": str(path), "envs": [i["env"] for i in envs.values()]}
    return path


# ---- SCons side (called from the dev-platform's builder and platformio/resilinet_env.py) ---------


def configure_env(env: Any) -> None:
    """Add host.deploy.firmware's link step to a PlatformIO SCons environment.

    Linker flags (cpu flags, ``LINK_FLAGS``, stack size, map file), ``LDSCRIPT_PATH`` = sections.ld (the
    core passes ``-T`` itself) and ``$BUILD_DIR/memory.ld`` from boards/<board>/board.toml; for real boards
    with Arm's CMSIS-NN, its ``Source/*/*.c``.
    """
    board = load_board(env.GetProjectOption("custom_resilinet_board", "") or env.subst("$BOARD"))
    build_dir = Path(env.subst("$BUILD_DIR"))
    build_dir.mkdir(parents=True, exist_ok=True)
    memory = build_dir / "memory.ld"
    text = tc.memory_ld(board)
    if not memory.exists() or memory.read_text() != text:
        memory.write_text(text)
    env.Replace(LDSCRIPT_PATH=str(tc.SECTIONS_LD))
    env.Prepend(LIBPATH=[str(build_dir)])
    env.Append(LINKFLAGS=[*tc.cpu_flags(board), *tc.LINK_FLAGS, f"-Wl,--defsym=__stack_size={tc.DEFAULT_STACK_BYTES}",
                          f"-Wl,-Map={build_dir / 'firmware.map'}"])
    cmsis = env.GetProjectOption("custom_cmsis_nn_dir", "")
    if cmsis:
        src = Path(env.subst("$PROJECT_DIR")) / cmsis / "Source"
        if not src.is_dir():
            sys.stderr.write(f"Error: Arm's CMSIS-NN not found in {src} (lib_deps installs it; needs internet)\n")
            env.Exit(1)
        env.BuildSources(str(build_dir / "CMSIS-NN"), str(src), "+<*/*.c>")


def scons_upload_action(target: Any, source: Any, env: Any) -> int:
    """SCons action of ``upload`` for emulated boards (returns the exit status)."""
    try:
        url = upload(env.GetProjectOption("custom_resilinet_board"), str(source[0]),
                     int(env.GetProjectOption("custom_emulator_port")), env.GetProjectOption("custom_emulator_pidfile"))
    except PlatformIOError as err:
        sys.stderr.write(f"Error: {err}\n")
        return 1
    print(f"{env['PIOENV']}: running on {url}; stop: python -m codegen.emulator stop --pidfile "
          f"{env.GetProjectOption('custom_emulator_pidfile')}")
    return 0


# ---- Emulated boards: upload = (re)start ------------------------------------------------------


def upload(board: str, elf: str | Path, port: int, pidfile: str | Path) -> str:
    """(Re)start ``elf`` on emulated ``board`` in a detached QEMU, UART on ``port``; returns its URL.

    A QEMU still running from the same pid file is stopped first, so uploading again restarts the
    board. The guest waits (``wait=on``) until the host connects, so its boot HELLO is not lost.
    """
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


# ---- Offline preparation (.pio-core) ----------------------------------------------------------


def _scons_package_version(version: str) -> str:
    """SCons ``4.11.1`` -> PlatformIO's tool-scons version ``4.41101.0``."""
    major, minor, patch = (int(x) for x in re.findall(r"\d+", version)[:3])
    return f"{major}.{major}{minor:02d}{patch:02d}.0"


def _gcc_package_version(gcc: str) -> str:
    """GCC ``12.2.1`` -> ``1.120201.0`` (PlatformIO's numbering of toolchain-gccarmnoneeabi)."""
    major, minor, patch = (int(x) for x in (re.findall(r"\d+", gcc) + ["0", "0"])[:3])
    return f"1.{major}{minor:02d}{patch:02d}.0"


def _write_json_if_changed(path: Path, data: Any) -> bool:
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def _prepare_scons(packages: Path) -> bool:
    """``packages/tool-scons`` from the SCons installed with this Python (the ``scons`` wheel)."""
    import SCons  # the scons wheel of requirements.txt
    from platformio.dependencies import get_core_dependencies
    import semantic_version

    src = Path(SCons.__file__).resolve().parent
    version = _scons_package_version(SCons.__version__)
    want = get_core_dependencies()["tool-scons"]
    if not semantic_version.SimpleSpec(want).match(semantic_version.Version(version)):
        raise PlatformIOError(f"PlatformIO wants tool-scons {want}, but this venv has SCons {SCons.__version__} "
                              f"(= {version}); install the scons version pinned in requirements.txt")
    pkg = packages / "tool-scons"
    local = pkg / f"scons-local-{SCons.__version__}"
    stamp = {"source": str(src), "scons": SCons.__version__, "files": sorted(
        str(p.relative_to(src)) for p in src.rglob("*.py"))}
    meta = {"type": "tool", "name": "tool-scons", "version": version,
            "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None}}
    if (pkg / ".piopm").exists() and (local / "SCons").is_dir() and _read_json(pkg / "resilinet.json") == stamp \
            and _read_json(pkg / ".piopm") == meta:
        return False
    if pkg.exists():
        shutil.rmtree(pkg)
    local.mkdir(parents=True)
    shutil.copytree(src, local / "SCons", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (pkg / "scons.py").write_text(
        '"""SCons launcher of the offline tool-scons package (made by host/deploy/pio_project.py from the scons wheel)."""\n'
        "import os\nimport sys\n\n"
        f"sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), {local.name!r}))\n"
        "import SCons.Script  # noqa: E402\n\n"
        "SCons.Script.main()\n")
    _write_json_if_changed(pkg / "package.json", {
        "name": "tool-scons", "version": version,
        "description": f"SCons {SCons.__version__} (copied from the scons wheel by host/deploy/pio_project.py)",
        "homepage": "https://scons.org", "license": "MIT"})
    (pkg / ".piopm").write_text(json.dumps(meta))
    _write_json_if_changed(pkg / "resilinet.json", stamp)
    return True


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _prepare_toolchain(pkg: Path) -> bool:
    """A toolchain package whose ``bin/`` links to the system's ``arm-none-eabi-*``."""
    gcc = shutil.which(tc.CC)
    if gcc is None:
        raise PlatformIOError(f"{tc.CC} not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    bindir = Path(gcc).resolve().parent
    dump = subprocess.run([gcc, "-dumpversion"], capture_output=True, text=True, check=True).stdout.strip()
    changed = False
    (pkg / "bin").mkdir(parents=True, exist_ok=True)
    tools = {p.name: p for p in sorted(bindir.glob("arm-none-eabi-*")) if os.access(p, os.X_OK)}
    for link in (pkg / "bin").iterdir():
        if link.name not in tools:
            link.unlink()
            changed = True
    for name, target in tools.items():
        link = pkg / "bin" / name
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        changed = True
    changed |= _write_json_if_changed(pkg / "package.json", {
        "name": TOOLCHAIN_PACKAGE, "version": _gcc_package_version(dump),
        "description": f"GNU Arm Embedded {dump} of the system ({bindir}), linked by host/deploy/pio_project.py",
        "keywords": ["toolchain", "build tools", "compiler", "assembler", "linker"], "license": "GPL-2.0-or-later"})
    return changed


def _prepare_settings(core: Path) -> bool:
    """Telemetry off and no upgrade checks (both go to the internet) in the core dir's appstate.json."""
    path = core / "appstate.json"
    state = _read_json(path) or {}
    settings = state.setdefault("settings", {})
    want = {"enable_telemetry": False, "check_platformio_interval": 3650}
    if all(settings.get(k) == v for k, v in want.items()):
        return False
    settings.update(want)
    path.write_text(json.dumps(state))
    return True


def _remove_stale_links(core: Path) -> list[str]:
    """``*.pio-link`` files whose target is gone (e.g. after a failed symlink:// install)."""
    removed = []
    for link in [*core.glob("packages/*.pio-link"), *core.glob("platforms/*.pio-link")]:
        data = _read_json(link) or {}
        uri = (data.get("spec") or {}).get("uri") or ""
        target = uri[len("symlink://"):] if uri.startswith("symlink://") else ""
        if target and not os.path.isabs(target):
            target = os.path.join(data.get("cwd", ""), target)
        if not target or not os.path.isdir(target):
            link.unlink()
            removed.append(link.name)
    return removed


def prepare(core_dir: str | Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Make ``core_dir`` (default ``<repo>/.pio-core``) usable without the PlatformIO registry (idempotent)."""
    core = Path(core_dir or CORE_DIR).resolve()
    (core / "packages").mkdir(parents=True, exist_ok=True)
    done = []
    if _prepare_scons(core / "packages"):
        done.append("tool-scons from the venv's SCons")
    if _prepare_toolchain(core / "local" / TOOLCHAIN_PACKAGE):
        done.append(f"{TOOLCHAIN_PACKAGE} -> system arm-none-eabi-*")
    if _prepare_settings(core):
        done.append("telemetry and upgrade checks off")
    removed = _remove_stale_links(core)
    if removed:
        done.append(f"removed stale links {removed}")
    if done:
        log(f"platformio: prepared {core}: " + "; ".join(done))
    return core


def offline_env(core_dir: str | Path | None = None) -> dict[str, str]:
    """``os.environ`` plus what running ``pio`` offline against ``core_dir`` needs."""
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    env["PLATFORMIO_CORE_DIR"] = str(Path(core_dir or CORE_DIR).resolve())
    return env


# ---- Board JSONs of the dev-platform (static files, generated from boards/*/board.toml) ---------------


def board_json(board: Board) -> dict[str, Any]:
    q = board.qemu
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


def write_board_jsons(platform_dir: Path = PLATFORM_DIR) -> list[Path]:
    out = []
    for b in emulated_boards():
        path = platform_dir / "boards" / f"{b.name}.json"
        _write_json_if_changed(path, board_json(b))
        out.append(path)
    return out


# ---- CLI ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.deploy.pio_project", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="prepare .pio-core for offline use (idempotent)")
    p.add_argument("--core-dir", type=Path, default=None)
    p = sub.add_parser("ini", help="(re)write platformio.ini for an existing build (updates its manifest.json)")
    p.add_argument("build_dir", type=Path)
    p.add_argument("--project-dir", type=Path, default=None,
                   help="where platformio.ini goes (default: the repository root for builds inside it, else BUILD_DIR)")
    p = sub.add_parser("upload", help="(re)start an image on an emulated board (what 'pio run -t upload' does)")
    p.add_argument("--board", required=True)
    p.add_argument("--elf", required=True, type=Path)
    p.add_argument("--port", required=True, type=int)
    p.add_argument("--pidfile", required=True, type=Path)
    p = sub.add_parser("stop", help="stop every emulated board uploaded for a build")
    p.add_argument("build_dir", type=Path)
    sub.add_parser("boards", help="regenerate platformio/platform-resilinet-qemu/boards/*.json from boards/*/board.toml")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "prepare":
            prepare(args.core_dir)
        elif args.cmd == "ini":
            manifest_path = args.build_dir / "manifest.json"
            manifest = json.loads(manifest_path.read_text())
            path = write_platformio_ini(manifest, args.build_dir, args.project_dir)
            manifest_path.write_text(json.dumps(manifest, indent=1))
            print(f"wrote {path} (envs: {', '.join(manifest['platformio']['envs'])})")
        elif args.cmd == "upload":
            print(upload(args.board, args.elf, args.port, args.pidfile))
        elif args.cmd == "stop":
            stopped = stop_build(args.build_dir)
            print("stopped " + (", ".join(stopped) if stopped else "nothing"))
        elif args.cmd == "boards":
            for path in write_board_jsons():
                print(path)
    except (PlatformIOError, OSError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
