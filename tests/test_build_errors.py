"""``python -m host.build`` with bad input: one line ``error: ...``, exit status 2, no traceback, nothing written;
and a build that fails part-way leaves the previous build as it was and no partial directory.

The command-line cases run the command itself (a subprocess, as a user types it). Errors found before
TensorFlow is imported are the only thing on stderr; the others come after TensorFlow's start-up lines.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from host.deploy import staging

REPO = Path(__file__).resolve().parents[1]

TOPOLOGY = """
name = "{name}"
[dataset]
name = "{dataset}"
path = "{path}"
[training]
epochs = 1
batch_size = 256
[reliability]
order = ["f", "e"]
"No failure" = [1.0, 1.0]
Hazardous = [0.85, 0.80]
[[nodes]]
name = "s"
role = "sensor"
layers = [{{ type = "dense", units = 16 }}]
[[nodes]]
name = "e"
role = "edge"
layers = [{{ type = "dense", units = {edge_units} }}]
[[nodes]]
name = "f"
role = "fog"
layers = [{{ type = "dense", units = 16 }}]
[[nodes]]
name = "c"
role = "cloud"
layers = [{{ type = "dense", units = "classes", activation = "softmax" }}]
[[links]]
from = "s"
to = "e"
[[links]]
from = "e"
to = "f"
[[links]]
from = "f"
to = "c"
[[links]]
from = "s"
to = "f"
skip = true
"""


def topology(tmp: Path, npz: str, *, name: str = "tiny", dataset: str = "npz", edge_units: int = 16,
             extra: str = "") -> str:
    path = tmp / f"{name}.toml"
    path.write_text(TOPOLOGY.format(name=name, dataset=dataset, path=npz, edge_units=edge_units) + extra)
    return str(path)


def host_build(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "host.build", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def one_error(res: subprocess.CompletedProcess, *fragments: str, alone: bool = True) -> str:
    """The one ``error:`` line (exit 2, no traceback); ``alone``: nothing else on stderr."""
    assert res.returncode == 2, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    if alone:
        assert res.stderr == errors[0] + "\n", res.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def nothing_written(out: Path) -> None:
    assert not out.exists(), sorted(out.rglob("*"))[:10]
    assert not list(out.parent.glob(f".{out.name}.*")), list(out.parent.iterdir())


@pytest.mark.parametrize("args, fragments", [
    (["--dataset", "nosuch"], ["--dataset: unknown dataset 'nosuch'", "datasets: cifar10, digits, fashion"]),
    (["--preset", "nosuch"], ["no preset 'nosuch'", "presets: camera, cifar_mobilenet"]),
    (["--preset", "cifar_resnet", "--partition", "9"], ["cifar_resnet.toml: no partition '9' (partitions: 1, 2)"]),
    (["--board", "arduino"], ["unknown board 'arduino'", "boards: nucleo_f446re"]),
    (["--dataset-opt", "foo"], ["--dataset-opt expects KEY=VALUE, got 'foo'"]),
    (["--epochs", "x"], ["argument --epochs: invalid int value: 'x'", "--help"]),
    (["--stop-after", "later"], ["argument --stop-after: invalid choice: 'later'"]),
])
def test_bad_names_are_one_line_before_anything_starts(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    out = tmp_path / "out" / "b"
    res = host_build(*args, "--out", str(out), timeout=60)
    one_error(res, *fragments)
    nothing_written(out)
    assert not (tmp_path / "out").exists()  # not even the parent it would have made


def test_a_topology_naming_an_unknown_dataset_or_node(tmp_path: Path, health_npz: str) -> None:
    out = tmp_path / "b"
    one_error(host_build("--preset", topology(tmp_path, health_npz, dataset="mnist"), "--out", str(out)),
              "topology tiny ([dataset] name): unknown dataset 'mnist'")
    broken = topology(tmp_path, health_npz, name="broken", extra='[[links]]\nfrom = "e"\nto = "nowhere"\n')
    line = one_error(host_build("--preset", broken, "--out", str(out)))
    assert "broken.toml" in line and "nowhere" in line
    nothing_written(out)


def test_out_must_be_a_build_directory(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    one_error(host_build("--out", str(afile), timeout=60), f"--out {afile} is a file")
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "keep.txt").write_text("mine")
    one_error(host_build("--out", str(mine), timeout=60), "is not a host.build output (no manifest.json)")
    assert (mine / "keep.txt").read_text() == "mine" and afile.read_text() == "mine"
    one_error(host_build("--out", str(REPO), timeout=60), "is the repository")


def test_unknown_scheme_after_tensorflow_starts(tmp_path: Path) -> None:
    out = tmp_path / "b"
    one_error(host_build("--scheme", "magic", "--out", str(out)),
              "--scheme: unknown scheme 'magic'; schemes: vanilla, dfg, resilinet", alone=False)
    nothing_written(out)


def test_a_network_the_topology_cannot_build_fails_before_training(tmp_path: Path, health_npz: str) -> None:
    """The edge sends 8 values to the fog, the sensor's skip 16: ResiliNet's mux needs equal shapes. Named
    before any training (the same shape error used to surface at the first training step)."""
    out = tmp_path / "b"
    res = host_build("--preset", topology(tmp_path, health_npz, name="skewed", edge_units=8), "--out", str(out))
    one_error(res, "topology skewed (partition 1): skip link s->f delivers 16 to node f, whose input from e->f is 8: "
                   "they must be equal; give s->f a projection that outputs 8", alone=False)
    assert "Epoch" not in res.stdout and "stage 2" not in res.stdout
    nothing_written(out)


def test_missing_dataset_file_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "b"
    res = host_build("--preset", topology(tmp_path, str(tmp_path / "gone.npz")), "--out", str(out))
    one_error(res, "gone.npz", alone=False)
    nothing_written(out)


# ---- In-process: a failure injected part-way ---------------------------------------------------------------


@pytest.fixture()
def tiny_args(tmp_path: Path, health_npz: str) -> list[str]:
    return ["--preset", topology(tmp_path, health_npz), "--max-train", "1500", "--max-test", "200",
            "--int8-samples", "50", "--quiet"]


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_a_build_failing_in_the_firmware_stage_leaves_the_previous_build(tmp_path: Path, tiny_args: list[str],
                                                                         monkeypatch, capsys) -> None:
    """A good build replaces the previous build directory whole; a build that fails in stage firmware (the
    compiler fails on one node) leaves it byte for byte, and no staging directory beside it."""
    pytest.importorskip("tensorflow")
    from host.deploy import cli, firmware_stage
    from host.deploy.firmware import FirmwareBuildError
    from host.deploy.manifest import read_manifest
    from host.deploy.pio_ini import emulator_port

    out = tmp_path / "builds" / "b"
    out.mkdir(parents=True)
    (out / "manifest.json").write_text('{"an": "older build"}')
    (out / "stale.txt").write_text("from the older build")
    assert cli.main([*tiny_args, "--out", str(out)]) == 0
    assert not (out / "stale.txt").exists() and sorted(p.name for p in out.parent.iterdir()) == ["b"]
    m = read_manifest(out, stage="firmware")
    # every path recorded in the build names where it is now, not where it was written
    texts = {name: data for name, data in _tree(out).items() if not name.endswith((".keras", ".png", ".tflite"))}
    assert not [n for n, data in texts.items() if b".b.tmp-" in data], "staging path left in the build"
    ini = (out / "platformio.ini").read_text()
    assert f"src_dir = {out.resolve()}/pio/src" in ini and (out / "pio" / "src" / "nodes" / "s").is_dir()
    assert m.nodes["s"].emulator.port == emulator_port(out, m.nodes["s"].node_id)
    before = _tree(out)
    capsys.readouterr()

    def broken(board, header, sources, out_dir, **kw):
        if kw.get("node_name") == "f":
            raise FirmwareBuildError("building node 'f' for qemu_f405 failed: injected")
        return real(board, header, sources, out_dir, **kw)
    real = firmware_stage.build_node
    monkeypatch.setattr(firmware_stage, "build_node", broken)
    assert cli.main([*tiny_args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == "error: building node 'f' for qemu_f405 failed: injected\n"
    assert _tree(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["b"]
    # and where there was no build, there is none
    assert cli.main([*tiny_args, "--out", str(tmp_path / "fresh" / "c")]) == 2
    assert not (tmp_path / "fresh").exists()


def test_a_corrupt_node_model_is_one_error_naming_the_file(tmp_path: Path, tiny_args: list[str], monkeypatch,
                                                           capsys) -> None:
    """A node's .tflite is read back through codegen's validating reader: a truncated model (here: the
    quantizer's output cut short) is one line naming the file where the build would have put it."""
    pytest.importorskip("tensorflow")
    from host.deploy import cli, int8_nodes

    real = int8_nodes.quantize_nodes

    def truncating(*a, **kw):
        quant, links = real(*a, **kw)
        quant["e"] = dataclasses.replace(quant["e"], tflite=quant["e"].tflite[:100])
        return quant, links
    monkeypatch.setattr(int8_nodes, "quantize_nodes", truncating)
    out = tmp_path / "b"
    assert cli.main([*tiny_args, "--out", str(out), "--stop-after", "nodes"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {out.resolve()}/nodes/e/e.tflite: "), err
    nothing_written(out)


# ---- The staging directory ----------------------------------------------------------------------------------


def test_staging_removes_what_killed_builds_left(tmp_path: Path) -> None:
    final = tmp_path / "b"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".b.tmp-{dead}-abc123").mkdir()
    (tmp_path / f".b.old-{dead}-abc123").mkdir()
    (tmp_path / f".b.tmp-{os.getpid()}-abc123").mkdir()     # a build of a live process: left alone
    (tmp_path / ".other.tmp-1-abc123").mkdir()               # another build's
    with staging.staged(final) as st:
        assert st.work.parent == tmp_path and st.work.name.startswith(f".b.tmp-{os.getpid()}-")
        (st.work / "manifest.json").write_text(json.dumps({"where": str(st.work)}))
        st.commit(log=lambda _: None)
    assert json.loads((final / "manifest.json").read_text()) == {"where": str(final.resolve())}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["b", f".b.tmp-{os.getpid()}-abc123", ".other.tmp-1-abc123"])
