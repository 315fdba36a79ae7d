"""PlatformIO without its registry: the repository's core dir (``.pio-core``) and running ``pio`` offline.

:func:`prepare` (``python -m host.deploy.pio_project prepare``, run by ``scripts/setup.sh``) fills the core
dir with what PlatformIO would otherwise download: ``tool-scons`` made from the venv's SCons (with the
``.piopm`` that names owner ``platformio``; without it the core asks the registry), a toolchain package
whose ``bin/`` links to the system's ``arm-none-eabi-*``, and telemetry/upgrade checks off. Every
generated ``platformio.ini`` sets ``core_dir`` to it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

from codegen import toolchain as tc
from host.paths import REPO_ROOT

CORE_DIR = REPO_ROOT / ".pio-core"
#: Dev-platforms of this repository linked into the core dir by :func:`prepare` (PlatformIO would link them
#: on first use, printing its "Installing" lines before the first line of ours).
LINKED_PLATFORMS = (REPO_ROOT / "platformio" / "platform-resilinet-guard",)
#: The toolchain package over the system's arm-none-eabi-* (inside the core dir, linked by platform_packages).
TOOLCHAIN_PACKAGE = "toolchain-gccarmnoneeabi"
#: Environment variables for running ``pio`` offline against a core dir (tests, CLI).
OFFLINE_ENV = {"PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No", "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "3650"}


class PlatformIOError(RuntimeError):
    pass


def offline_env(core_dir: str | Path | None = None) -> dict[str, str]:
    """``os.environ`` plus what running ``pio`` offline against ``core_dir`` needs."""
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    env["PLATFORMIO_CORE_DIR"] = str(Path(core_dir or CORE_DIR).resolve())
    return env


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
    linked = [p.name for p in LINKED_PLATFORMS if _link_platform(core / "platforms", p)]
    if linked:
        done.append(f"linked {', '.join(linked)}")
    removed = _remove_stale_links(core)
    if removed:
        done.append(f"removed stale links {removed}")
    if done:
        log(f"platformio: prepared {core}: " + "; ".join(done))
    return core


def write_json_if_changed(path: Path, data: Any) -> bool:
    """Write ``data`` as sorted, indented JSON unless the file already holds exactly that (keeps mtimes)."""
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def _scons_package_version(version: str) -> str:
    """SCons ``4.11.1`` -> PlatformIO's tool-scons version ``4.41101.0``."""
    major, minor, patch = (int(x) for x in re.findall(r"\d+", version)[:3])
    return f"{major}.{major}{minor:02d}{patch:02d}.0"


def _gcc_package_version(gcc: str) -> str:
    """GCC ``12.2.1`` -> ``1.120201.0`` (PlatformIO's numbering of toolchain-gccarmnoneeabi)."""
    major, minor, patch = (int(x) for x in (re.findall(r"\d+", gcc) + ["0", "0"])[:3])
    return f"1.{major}{minor:02d}{patch:02d}.0"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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
        '"""SCons launcher of the offline tool-scons package (made by host/deploy/pio_core.py from the scons wheel)."""\n'
        "import os\nimport sys\n\n"
        f"sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), {local.name!r}))\n"
        "import SCons.Script  # noqa: E402\n\n"
        "SCons.Script.main()\n")
    write_json_if_changed(pkg / "package.json", {
        "name": "tool-scons", "version": version,
        "description": f"SCons {SCons.__version__} (copied from the scons wheel by host/deploy/pio_core.py)",
        "homepage": "https://scons.org", "license": "MIT"})
    (pkg / ".piopm").write_text(json.dumps(meta))
    write_json_if_changed(pkg / "resilinet.json", stamp)
    return True


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
    changed |= write_json_if_changed(pkg / "package.json", {
        "name": TOOLCHAIN_PACKAGE, "version": _gcc_package_version(dump),
        "description": f"GNU Arm Embedded {dump} of the system ({bindir}), linked by host/deploy/pio_core.py",
        "keywords": ["toolchain", "build tools", "compiler", "assembler", "linker"], "license": "GPL-2.0-or-later"})
    return changed


def _prepare_settings(core: Path) -> bool:
    """Telemetry off and no upgrade checks (both go to the internet) in the core dir's appstate.json, and
    the running PlatformIO recorded as seen (else its first ``pio`` prints a welcome banner first)."""
    from platformio import __version__

    path = core / "appstate.json"
    state = _read_json(path) or {}
    settings = state.setdefault("settings", {})
    want = {"enable_telemetry": False, "check_platformio_interval": 3650}
    if all(settings.get(k) == v for k, v in want.items()) and "last_version" in state:
        return False
    settings.update(want)
    state.setdefault("last_version", __version__)
    path.write_text(json.dumps(state))
    return True


def _link_platform(platforms: Path, source: Path) -> bool:
    """``platforms/<name>.pio-link`` -> ``source``, as ``platform = symlink://<source>`` would install it."""
    platforms.mkdir(parents=True, exist_ok=True)
    link = platforms / f"{source.name}.pio-link"
    data = {"cwd": str(REPO_ROOT.resolve()), "spec": {"owner": None, "id": None, "name": source.name,
                                                      "requirements": None,
                                                      "uri": f"symlink://{source.resolve().as_posix()}"}}
    current = _read_json(link) or {}
    if (current.get("spec") or {}).get("uri") == data["spec"]["uri"]:
        return False
    link.write_text(json.dumps(data))
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
