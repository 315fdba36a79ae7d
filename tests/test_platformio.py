"""PlatformIO offline: the platformio.ini written for a build (host/deploy/pio_ini.py), ``pio run`` of every
emulated node with the repository's dev-platform and the board manifests generated into the build,
``pio run -t upload`` (re)starting an emulated board, and the real-board environments (official ststm32 +
Arm's CMSIS-NN: checked on paper, they need internet).

One synthetic build of four nodes (two on qemu_f405, two on qemu_an386; tests/firmware_testmodel and, when
the shared models exist, a generated module of the MLPerf autoencoder, which pulls in the CMSIS-NN
kernels) is compiled once by host.deploy.firmware and once by ``pio run``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.deploy import pio_boards, pio_core, pio_ini
from host.deploy.pio_ini import IniNode
from host.deploy.pio_upload import stop_build
from host.deploy.uploads import UploadedBoard, read_uploads
from host.net import protocol as p
from host.deploy.firmware import (Input, LinkIn, LinkOut, NodeConfig, Output, build_node, toolchain_available,
                                 write_node_config)
from codegen.emulator import open_uart, pidfile_running, qemu_available
from host.paths import shared_models_dir

from firmware_support import MUX, PLAIN, STANDBY, TESTMODEL_DIR

REPO = Path(__file__).resolve().parents[1]
PIO = Path(sys.executable).parent / "pio"

needs_pio = pytest.mark.skipif(not PIO.exists() or not toolchain_available(),
                               reason="needs PlatformIO in the venv and arm-none-eabi-gcc")
needs_qemu = pytest.mark.skipif(not qemu_available(), reason="needs qemu-system-arm")


def pio(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(PIO), *args], cwd=cwd, env=pio_core.offline_env(), capture_output=True, text=True,
                          timeout=timeout)


def _autoencoder_node(nodes_dir: Path) -> tuple[NodeConfig, Path] | None:
    models = shared_models_dir()
    path = models / "mlperf_tiny" / "ad_autoencoder_int8.tflite" if models else None
    if path is None or not path.is_file():
        return None
    from codegen import generate_module

    info = generate_module(path, nodes_dir / "ae", name="node_ae")
    (i,), (o,) = info.inputs, info.outputs
    cfg = NodeConfig(name="ae", node_id=9, invoke="node_ae_invoke", model_header="node_ae.h",
                     links_in=[LinkIn(1, 0, i.nbytes, i.zero_point)], inputs=[Input([1])],
                     outputs=[Output(o.nbytes, o.zero_point)], links_out=[LinkOut(output=0, dst=0, type="result")],
                     model_hash=hashlib.sha256(path.read_bytes()).digest()[:8])
    return cfg, info.c_path


def _ini_nodes(manifest: dict) -> list[IniNode]:
    return [IniNode(name, n["role"], n["firmware"]["board"], n["firmware"]["node_id"], n["firmware"]["config_header"],
                    n["firmware"]["elf"], n["c"]) for name, n in manifest["nodes"].items()]


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """A build directory shaped like host.build's: nodes/<n>/{module, fw/node_config.h, fw/<board>/node.elf}
    and a manifest.json of this test's own (what the ini recorded per node); plus its platformio.ini
    (outside the repository: in the build directory)."""
    if not PIO.exists() or not toolchain_available():
        pytest.skip("needs PlatformIO and arm-none-eabi-gcc")
    pio_core.prepare()
    out = tmp_path_factory.mktemp("pio") / "build"
    nodes_dir = out / "nodes"
    configs: list[tuple[NodeConfig, Path, str]] = []
    for cfg, board in ((PLAIN, "qemu_f405"), (MUX, "qemu_an386"), (STANDBY, "qemu_f405")):
        d = nodes_dir / cfg.name
        d.mkdir(parents=True)
        for f in ("testmodel.c", "testmodel.h"):
            shutil.copy(TESTMODEL_DIR / f, d / f)
        configs.append((cfg, d / "testmodel.c", board))
    ae = _autoencoder_node(nodes_dir)
    if ae is None:  # no shared models: a fourth test-model node
        d = nodes_dir / "plain2"
        shutil.copytree(nodes_dir / "plain", d)
        ae = (dataclasses.replace(PLAIN, name="plain2", node_id=3), d / "testmodel.c")
    configs.append((*ae, "qemu_an386"))
    manifest: dict = {"preset": "piotest", "nodes": {}}
    for cfg, source, board in configs:
        header = write_node_config(cfg, nodes_dir / cfg.name / "fw" / "node_config.h")
        img = build_node(board, header, [source], nodes_dir / cfg.name / "fw" / board, node_name=cfg.name)
        manifest["nodes"][cfg.name] = {
            "role": "test", "board": board, "c": str(source.relative_to(out)),
            "firmware": {"node_id": cfg.node_id, "board": board, "config_header": str(header.relative_to(out)),
                         "elf": str(img.elf.relative_to(out))}}
    ini = pio_ini.write_ini("piotest", _ini_nodes(manifest), out)
    assert ini.path == out / "platformio.ini"  # a build outside the repository keeps its own ini
    for name, env in ini.envs.items():
        manifest["nodes"][name]["platformio"] = {"env": env.env}
        manifest["nodes"][name]["emulator"] = dataclasses.asdict(env.emulator)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    yield out
    stop_build(out)


def test_prepare_is_idempotent() -> None:
    core = pio_core.prepare()
    messages: list[str] = []
    pio_core.prepare(log=messages.append)
    assert messages == []  # nothing left to do
    meta = json.loads((core / "packages" / "tool-scons" / ".piopm").read_text())
    assert meta["spec"]["owner"] == "platformio" and meta["name"] == "tool-scons"
    from platformio.dependencies import get_core_dependencies
    import semantic_version

    assert semantic_version.SimpleSpec(get_core_dependencies()["tool-scons"]).match(
        semantic_version.Version(meta["version"]))
    gcc = core / "local" / pio_core.TOOLCHAIN_PACKAGE / "bin" / "arm-none-eabi-gcc"
    assert gcc.is_symlink() and os.access(gcc, os.X_OK)
    state = json.loads((core / "appstate.json").read_text())
    assert state["settings"]["enable_telemetry"] is False
    assert REPO / ".pio-core" == core  # inside the repository (git-ignored)


def test_board_jsons_are_generated_into_the_build(build: Path) -> None:
    """The emulated boards' PlatformIO manifests come from boards/<name>/board.toml at build time: written
    into <build>/pio/boards, found through the ini's boards_dir; none is committed with the dev-platform."""
    boards = pio_boards.emulated_boards()
    assert {b.name for b in boards} == {"qemu_f405", "qemu_an386"}
    assert not (pio_ini.PLATFORM_DIR / "boards").exists()
    assert f"boards_dir = {build.resolve()}/pio/boards" in (build / "platformio.ini").read_text()
    for b in boards:
        path = build / "pio" / "boards" / f"{b.name}.json"
        board = json.loads(path.read_text())
        assert board == pio_boards.board_json(b)
        assert board["upload"]["maximum_size"] == b.flash_bytes and board["build"]["qemu_machine"] == b.qemu.machine
    # that PlatformIO finds them there: test_pio_run_builds_every_node_like_host_build


def test_ini_and_manifest(build: Path) -> None:
    manifest = json.loads((build / "manifest.json").read_text())
    text = (build / "platformio.ini").read_text()
    ports = set()
    for name, node in manifest["nodes"].items():
        env = node["platformio"]["env"]
        assert env == f"piotest_{name}" and f"[env:{env}]" in text
        emu = node["emulator"]
        assert emu["url"] == f"socket://127.0.0.1:{emu['port']}"
        assert emu["port"] == pio_ini.emulator_port(build, node["firmware"]["node_id"])
        assert emu["pidfile"] == f"pio/qemu/{env}.pid"
        ports.add(emu["port"])
    assert len(ports) == len(manifest["nodes"])
    assert f"platform = symlink://{pio_ini.PLATFORM_DIR}" in text and f"src_dir = {build.resolve()}/pio/src" in text
    assert (build / "pio" / "src" / "firmware" / "runtime" / "node_main.c").is_file()
    assert "+<nodes/plain/testmodel.c>" in text
    # PlatformIO reads it (offline)
    res = pio("project", "config", "--json-output", cwd=build, timeout=60)
    assert res.returncode == 0, res.stderr
    envs = {section for section, _ in json.loads(res.stdout)}
    assert {f"env:{n['platformio']['env']}" for n in manifest["nodes"].values()} <= envs


def test_ini_for_real_boards(build: Path, tmp_path: Path) -> None:
    """Nucleo nodes: official ststm32 platform, no framework, our startup/linker script, Arm's CMSIS-NN
    pinned through lib_deps with -DRESILINET_USE_CMSIS_NN and its Include ahead of firmware/cmsis_nn.
    Until ststm32 is in the core dir the environments use the guard platform (pio run stops with one line);
    a gate file, read through a path that exists only with <core>/platforms/ststm32, switches them.
    (Building them needs the registry and GitHub; here only what PlatformIO reads is checked.)"""
    manifest = json.loads((build / "manifest.json").read_text())
    for node in manifest["nodes"].values():
        node["firmware"]["board"] = "nucleo_f446re"
    core = tmp_path / "core"
    ini = pio_ini.render_platformio_ini(manifest["preset"], _ini_nodes(manifest), build, core_dir=core)
    text, envs = ini.text, ini.envs
    assert all(e.emulator is None and e.platform == "ststm32" for e in envs.values())
    section = text.split("[env:piotest_ae]")[-1] if "[env:piotest_ae]" in text else None
    assert f"platform = symlink://{pio_ini.GUARD_PLATFORM_DIR}" in text and "board = nucleo_f446re" in text
    assert "custom_resilinet_stop = env piotest_plain (node plain) runs on a real ST Nucleo-F446RE" in text
    assert "pio pkg install -g -p platformio/ststm32" in text and "python -m host.build --board qemu" in text
    assert not any(line.startswith("framework") for line in text.splitlines())  # bare metal
    assert "upload_protocol = stlink" in text and f"symlink://{pio_ini.PLATFORM_DIR}" not in text
    assert f"board_build.ldscript = {REPO / 'firmware/bsp/sections.ld'}" in text
    assert f"extra_scripts = pre:{REPO / 'platformio/resilinet_env.py'}" in text
    assert list(ini.gates) == ["pio/ststm32.ini"]
    assert ini.gates["pio/ststm32.ini"].count("platform = ststm32") == len(envs)
    if section is not None:  # a node with a generated module: Arm's CMSIS-NN
        assert f"lib_deps = CMSIS-NN={pio_ini.CMSIS_NN_URL}" in section and pio_ini.CMSIS_NN_RELEASE in pio_ini.CMSIS_NN_URL
        assert "-DRESILINET_USE_CMSIS_NN" in section and "lib_ignore = CMSIS-NN" in section
        flags = [line.strip() for line in section.splitlines() if line.strip().startswith("-I")]
        arm = flags.index("-I${platformio.libdeps_dir}/piotest_ae/CMSIS-NN/Include")
        ours = flags.index(f"-I{REPO / 'firmware/cmsis_nn'}")
        assert arm < ours
    project = tmp_path / "project"
    (project / "pio").mkdir(parents=True)
    (project / "platformio.ini").write_text(
        pio_ini.render_platformio_ini(manifest["preset"], _ini_nodes(manifest), project, core_dir=core,
                                      work_dir=build).text)
    (project / "pio" / "ststm32.ini").write_text(ini.gates["pio/ststm32.ini"])

    def platforms() -> dict[str, str]:
        res = pio("project", "config", "--json-output", cwd=project, timeout=60)
        assert res.returncode == 0, res.stderr
        return {s: dict(opts).get("platform") for s, opts in json.loads(res.stdout) if s.startswith("env:")}
    assert set(platforms().values()) == {f"symlink://{pio_ini.GUARD_PLATFORM_DIR}"}  # ststm32 missing: guarded
    (core / "platforms" / "ststm32").mkdir(parents=True)                          # as pio pkg install leaves it
    assert set(platforms().values()) == {"ststm32"}


def _symbols(elf: Path) -> list[tuple[str, ...]]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    return sorted(tuple(line.split()[1:]) for line in out.splitlines() if len(line.split()) == 4)


@needs_pio
def test_pio_run_builds_every_node_like_host_build(build: Path, record_property) -> None:
    t0 = time.monotonic()
    res = pio("run", cwd=build)
    seconds = time.monotonic() - t0
    record_property("pio_run_seconds", round(seconds, 1))
    print(f"\npio run ({len(json.loads((build / 'manifest.json').read_text())['nodes'])} envs): {seconds:.1f} s")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "HTTPClientError" not in res.stdout + res.stderr
    manifest = json.loads((build / "manifest.json").read_text())
    for name, node in manifest["nodes"].items():
        pio_elf = build / node["emulator"]["elf"]
        assert pio_elf.is_file() and pio_elf.with_suffix(".bin").is_file()
        # same sources and flags as host.deploy.firmware: the same functions and objects, byte sizes
        # included (only the link order, hence some padding, differs)
        assert _symbols(pio_elf) == _symbols(build / node["firmware"]["elf"]), name


def _hello(url: str, timeout: float = 10.0) -> tuple[p.Frame, float]:
    t0 = time.monotonic()
    port = open_uart(url, timeout=timeout, read_timeout=0.1)
    try:
        decoder = p.FrameDecoder()
        while time.monotonic() - t0 < timeout:
            for frame in decoder.feed(port.read(64)):
                if frame.type == p.FrameType.HELLO:
                    return frame, time.monotonic() - t0
    finally:
        port.close()
    raise AssertionError(f"no HELLO on {url} within {timeout} s")


@needs_pio
@needs_qemu
def test_upload_starts_restarts_and_stops(build: Path, record_property) -> None:
    manifest = json.loads((build / "manifest.json").read_text())
    node = manifest["nodes"]["plain"]  # qemu_f405: the STM32 USART model
    env, emu = node["platformio"]["env"], node["emulator"]
    pidfile = build / emu["pidfile"]
    pio("run", "-e", env, cwd=build)  # build first: time the upload alone
    try:
        t0 = time.monotonic()
        res = pio("run", "-e", env, "-t", "upload", cwd=build, timeout=120)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        hello, _ = _hello(emu["url"])
        upload_to_hello = time.monotonic() - t0
        record_property("upload_to_hello_seconds", round(upload_to_hello, 2))
        print(f"\npio run -t upload -> HELLO: {upload_to_hello:.2f} s")
        assert hello.src == node["firmware"]["node_id"] and pidfile_running(pidfile)
        first = int(pidfile.read_text())
        # recorded for the harness, with the fast UART path it uses for its own boards
        recorded = read_uploads(build)
        assert recorded == {"plain": UploadedBoard("plain", env, "qemu_f405", emu["url"], emu["port"],
                                                   pidfile.resolve(), rx_buffer=True)}

        res = pio("run", "-e", env, "-t", "upload", cwd=build, timeout=120)  # again: a clean restart
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert not Path(f"/proc/{first}").exists() or b"qemu" not in Path(f"/proc/{first}/cmdline").read_bytes()
        second = int(pidfile.read_text())
        assert second != first and pidfile_running(pidfile)
        hello, _ = _hello(emu["url"])  # the restarted board boots again
        assert hello.src == node["firmware"]["node_id"]
        assert list(read_uploads(build)) == ["plain"]  # one entry per node, replaced

        stop = subprocess.run([sys.executable, "-m", "codegen.emulator", "stop", "--pidfile", str(pidfile)], cwd=REPO,
                              capture_output=True, text=True, timeout=30)
        assert stop.returncode == 0, stop.stderr
        assert not pidfile_running(pidfile) and not pidfile.exists()
        assert not Path(f"/proc/{second}").exists() or b"qemu" not in Path(f"/proc/{second}/cmdline").read_bytes()
    finally:
        stop_build(build)
    assert read_uploads(build) == {}  # stop_build forgets what it stopped


@needs_pio
@needs_qemu
def test_upload_on_a_busy_port_picks_a_free_one_and_records_it(build: Path) -> None:
    """Another program holds the planned port: the board starts elsewhere, and uploads.json says where."""
    manifest = json.loads((build / "manifest.json").read_text())
    node = manifest["nodes"]["mux"]
    env, emu = node["platformio"]["env"], node["emulator"]
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", emu["port"]))
    holder.listen()
    try:
        res = pio("run", "-e", env, "-t", "upload", cwd=build, timeout=240)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert f"(port {emu['port']} was busy)" in res.stdout
        board = read_uploads(build)["mux"]
        assert board.port != emu["port"] and board.url == f"socket://127.0.0.1:{board.port}" and board.rx_buffer
        hello, _ = _hello(board.url)
        assert hello.src == node["firmware"]["node_id"]
    finally:
        holder.close()
        stop_build(build)
