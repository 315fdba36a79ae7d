"""``pio run`` and ``pio run -t upload`` exactly as typed in the repository: the committed root platformio.ini
(a placeholder environment before any build; the latest build's environments through build/current), the
one-line stop of real-board environments whose platform is not installed (offline), and the record of the
emulated boards an upload started (``<build>/pio/uploads.json``, read by the harness).

Each test runs PlatformIO in a copy of the repository's root project (the committed platformio.ini and a link
to platformio/) with its own build/ directory, against the repository's prepared core dir, offline.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.deploy import pio_core, pio_ini, pio_root
from host.deploy.firmware import build_node, toolchain_available, write_node_config
from host.deploy.manifest import ManifestError
from host.deploy.pio_ini import IniNode
from host.deploy.pio_upload import stop_build
from host.deploy.uploads import UploadedBoard, UploadsError, forget_uploads, read_uploads, record_upload, uploads_path
from codegen.emulator import qemu_available

from firmware_support import PLAIN, TESTMODEL_DIR

REPO = Path(__file__).resolve().parents[1]
PIO = Path(sys.executable).parent / "pio"

needs_pio = pytest.mark.skipif(not PIO.exists(), reason="needs PlatformIO in the venv")


def pio(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(PIO), *args], cwd=cwd, env=pio_core.offline_env(cwd.parent / "core"),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """The repository's root PlatformIO project as a fresh clone has it after scripts/setup.sh: the committed
    ini, a prepared core dir of its own (``<tmp>/core``), no build."""
    if not PIO.exists():
        pytest.skip("needs PlatformIO")
    pio_core.prepare(tmp_path / "core", log=lambda _: None)
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(pio_root.ROOT_INI, root / "platformio.ini")
    (root / "platformio").symlink_to(REPO / "platformio")
    # prepare links the guard platform of the repository; this copy's own path is linked on first use
    # (PlatformIO's two "Installing" lines, which a prepared checkout does not print)
    pio("run", cwd=root, timeout=60)
    return root


def stopped_with_one_line(res: subprocess.CompletedProcess, env: str) -> str:
    """pio failed, and the only thing besides PlatformIO's "Processing <env>" header is one ``error:`` line."""
    assert res.returncode != 0, res.stdout
    assert "HTTPClientError" not in res.stdout + res.stderr and "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    out = [line for line in res.stdout.splitlines() if line.strip()]
    assert out[0].startswith(f"Processing {env} (") and set(out[1]) == {"-"} and len(out) == 2, res.stdout
    return lines[0]


def test_the_committed_root_ini_is_never_written_and_not_ignored() -> None:
    text = pio_root.ROOT_INI.read_text()
    assert "extra_configs = build/current/platformio.ini" in text and "[env:no_build]" in text
    assert "/platformio.ini" not in (REPO / ".gitignore").read_text().split()
    ignored = subprocess.run(["git", "check-ignore", "-q", "platformio.ini"], cwd=REPO)
    assert ignored.returncode == 1  # not ignored: committed


@needs_pio
@pytest.mark.parametrize("args", [["run"], ["run", "-t", "upload"]])
def test_before_any_build_pio_run_says_to_run_host_build(project: Path, args: list[str]) -> None:
    t0 = time.monotonic()
    res = pio(*args, cwd=project)
    line = stopped_with_one_line(res, "no_build")
    assert "run python -m host.build first" in line and "--board qemu" in line, line
    assert time.monotonic() - t0 < 30


def _nodes(build: Path, board: str, names: list[str]) -> list[IniNode]:
    """A build directory's node files as host.build leaves them (the test model; compiled by host.build's
    own firmware builder so the ini names a real image)."""
    out = []
    for i, name in enumerate(names, start=1):
        d = build / "nodes" / name
        d.mkdir(parents=True)
        for f in ("testmodel.c", "testmodel.h"):
            shutil.copy(TESTMODEL_DIR / f, d / f)
        header = write_node_config(PLAIN, d / "fw" / "node_config.h")
        elf = f"nodes/{name}/fw/{board}/node.elf"
        if board.startswith("qemu") and toolchain_available():
            build_node(board, header, [d / "testmodel.c"], d / "fw" / board, node_name=name)
        out.append(IniNode(name, "test", board, i, f"nodes/{name}/fw/node_config.h", elf, f"nodes/{name}/testmodel.c"))
    return out


def _current(project: Path, build: Path) -> None:
    (project / "build").mkdir(exist_ok=True)
    (project / "build" / "current").symlink_to(build)


@needs_pio
def test_real_boards_offline_stop_at_once_naming_what_is_missing(project: Path) -> None:
    """--board nucleo: without ststm32 in the core dir, pio run -t upload stops in a fraction of a second with
    one line (not PlatformIO's registry timeout, a minute, then a bare HTTPClientError)."""
    build = project / "build" / "demo"
    pio_ini.write_ini("demo", _nodes(build, "nucleo_f446re", ["iot", "cloud"]), build)
    _current(project, build)
    res = pio("project", "config", "--json-output", cwd=project, timeout=60)
    sections = dict(json.loads(res.stdout))
    assert dict(sections["platformio"])["default_envs"] == ["demo_iot", "demo_cloud"]  # not no_build
    for args, env in ((["run", "-t", "upload"], "demo_iot"), (["run", "-e", "demo_cloud", "-t", "upload"], "demo_cloud")):
        t0 = time.monotonic()
        line = stopped_with_one_line(pio(*args, cwd=project), env)
        assert time.monotonic() - t0 < 30
        for fragment in (f"env {env}", "ST Nucleo-F446RE", "ststm32 platform", "toolchain-gccarmnoneeabi",
                         "not installed in", "pio pkg install -g -p platformio/ststm32",
                         "python -m host.build --board qemu"):
            assert fragment in line, line


@needs_pio
@pytest.mark.skipif(not toolchain_available() or not qemu_available(), reason="needs arm-none-eabi-gcc and QEMU")
def test_pio_run_upload_in_the_repository_builds_and_starts_the_latest_build(project: Path) -> None:
    """The promised command, typed in the repository: builds the image of build/current and starts it in
    QEMU; the started board is recorded for the harness (its port, pid file, the fast UART path)."""
    build = project / "build" / "demo"
    nodes = _nodes(build, "qemu_f405", ["iot"])
    ini = pio_ini.write_ini("demo", nodes, build)
    _current(project, build)
    try:
        res = pio("run", "-t", "upload", cwd=project)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
        assert (build / "pio" / "build" / "demo_iot" / "firmware.elf").is_file()
        emu = ini.envs["iot"].emulator
        board = read_uploads(build)["iot"]
        assert board == UploadedBoard("iot", "demo_iot", "qemu_f405", emu.url, emu.port,
                                      (build / emu.pidfile).resolve(), rx_buffer=True)
        assert f"demo_iot: running on {emu.url}" in res.stdout
    finally:
        stop_build(build)
    assert read_uploads(build) == {}


def test_point_current_names_the_latest_build_inside_the_repository(tmp_path: Path) -> None:
    area = REPO / "build" / f".pytest-current-{tmp_path.name}"
    try:
        builds = [area / "a", area / "b"]
        for b in builds:
            b.mkdir(parents=True)
            (b / "platformio.ini").write_text("[platformio]\n")
        link = area / "current"
        assert pio_root.current_build(link) is None
        for b in builds:
            assert pio_root.point_current(b, link) == link
            assert pio_root.current_build(link) == b.resolve() and not link.readlink().is_absolute()
        assert sorted(p.name for p in area.iterdir()) == ["a", "b", "current"]  # no temporary link left
        outside = tmp_path / "c"
        outside.mkdir()
        (outside / "platformio.ini").write_text("[platformio]\n")
        assert pio_root.point_current(outside, link) is None and pio_root.current_build(link) == builds[1].resolve()
    finally:
        shutil.rmtree(area, ignore_errors=True)


# ---- uploads.json ---------------------------------------------------------------------------------------------


def _board(build: Path, node: str, port: int) -> UploadedBoard:
    return UploadedBoard(node, f"demo_{node}", "qemu_f405", f"socket://127.0.0.1:{port}", port,
                         build / "pio" / "qemu" / f"demo_{node}.pid", rx_buffer=True)


def test_uploads_record_one_entry_per_node_replaced_on_reupload(tmp_path: Path) -> None:
    build = tmp_path / "b"
    assert read_uploads(build) == {}                                      # nothing uploaded yet
    record_upload(build, _board(build, "iot", 27001))
    record_upload(build, _board(build, "edge", 27002))
    record_upload(build, _board(build, "iot", 33333))                     # restarted on another port
    assert read_uploads(build) == {"edge": _board(build, "edge", 27002), "iot": _board(build, "iot", 33333)}
    data = json.loads(uploads_path(build).read_text())
    assert data["version"] == 1 and data["boards"]["iot"]["pidfile"] == "pio/qemu/demo_iot.pid"  # relative
    forget_uploads(build, ["iot"])
    assert list(read_uploads(build)) == ["edge"]
    assert sorted(p.name for p in (build / "pio").iterdir()) == [".uploads.json.lock", "uploads.json"]


@pytest.mark.parametrize("text, key, problem", [
    ('{"version": 1, "boards": ', None, "is not JSON"),
    ("[]", None, "expected a JSON object"),
    ('{"version": 2, "boards": {}}', "version", "is 2; this checkout reads version 1"),
    ('{"version": 1}', "boards", "missing"),
    ('{"version": 1, "boards": {"iot": 3}}', "boards.iot", "is not an object"),
    ('{"version": 1, "boards": {"iot": {"env": "e", "board": "qemu_f405", "url": "u", "port": "1", '
     '"pidfile": "p", "rx_buffer": true}}}', "boards.iot.port", 'is "1", expected int'),
    ('{"version": 1, "boards": {"iot": {"env": "e", "board": "qemu_f405", "url": "u", "port": 1, '
     '"pidfile": "p"}}}', "boards.iot.rx_buffer", "missing"),
    ('{"version": 1, "boards": {"iot": {"env": "e", "board": "qemu_f405", "url": "u", "port": 70000, '
     '"pidfile": "p", "rx_buffer": true}}}', "boards.iot.port", "not a TCP port"),
])
def test_a_corrupt_uploads_file_is_one_error_naming_it(tmp_path: Path, text: str, key: str | None,
                                                       problem: str) -> None:
    build = tmp_path / "b"
    uploads_path(build).parent.mkdir(parents=True)
    uploads_path(build).write_text(text)
    with pytest.raises(UploadsError) as err:
        read_uploads(build)
    message = str(err.value)
    assert isinstance(err.value, ManifestError) and message.startswith(f"{uploads_path(build)}: ")
    assert (f"key '{key}' " in message if key else "key '" not in message) and problem in message, message
    assert "pio run -t upload" in message
    record_upload(build, _board(build, "iot", 27001))  # the writer starts a corrupt file afresh
    assert list(read_uploads(build)) == ["iot"]
