"""The build manifest (host/deploy/manifest.py): one writer, one reader, and a reader that refuses a bad
manifest with one error naming the file, the key and what to do."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from host.deploy.manifest import (MANIFEST_VERSION, DatasetInfo, EvaluateStage, FirmwareImage, FirmwareStage, Link,
                                  Manifest, ManifestError, Node, NodeFit, NodeInput, NodeModel, NodeOutput,
                                  NodesStage, PlatformIOSection, PioEnv, Emulator, Stages, Timings, TrainStage,
                                  dumps, read_manifest, to_json, write_manifest)


def _model(name: str, aggregation: str, inputs: list[NodeInput], outputs: list[NodeOutput]) -> NodeModel:
    return NodeModel(aggregation=aggregation, features=None, tflite=f"nodes/{name}/{name}.tflite",
                     c=f"nodes/{name}/node_{name}.c", h=f"nodes/{name}/node_{name}.h", module=f"node_{name}",
                     inputs=inputs, outputs=outputs, model_sha256=("ab" if name == "iot" else "cd") * 32,
                     arena_bytes=288, arena_lower_bound=288, scratch_bytes=0, weight_bytes=2536,
                     quant_param_bytes=320, macs=127008)


def sample_manifest(*, firmware: bool = True) -> Manifest:
    """A two-node build (iot -> cloud) as host.build writes it, through stage firmware by default."""
    iot = Node("sensor", False, _model(
        "iot", "source", [NodeInput("iot_features", 0, 0, None, None, [], [28, 28, 1], 0.0039215689, -128, 784)],
        [NodeOutput("iot_out", 0, 0, ["iot->cloud"], False, [16], 0.0176, -128, 16)]), "qemu_f405")
    cloud = Node("cloud", False, _model(
        "cloud", "single", [NodeInput("iot_to_cloud", 0, 0, "iot->cloud", None, [], [16], 0.0176, -128, 16)],
        [NodeOutput("probs", 0, 0, [], True, [10], 0.00390625, -128, 10)]), "qemu_f405")
    fit = NodeFit(2856, 4208, "qemu_f405", 524288, 131072, True)
    m = Manifest(
        version=MANIFEST_VERSION, preset="tiny", partition="1", scheme="resilinet", board="qemu_f405", seed=0,
        dataset=DatasetInfo("fashion", 54000, 6000, 10000, 10, [28, 28, 1]),
        topology={"name": "tiny", "dataset": {"name": "fashion"}, "failure_order": [],
                  "reliability": {"No failure": {}}},
        nodes={"iot": iot, "cloud": cloud},
        stages=Stages(TrainStage("model.keras", cache_key="8754437a10625548", cached=True, config={"seed": 0},
                                 best_epoch=9, train_seconds=213.0, history={"accuracy": [0.5, 0.6]}),
                      EvaluateStage("evaluation.md", "evaluation.json", "evaluation.png", 0.894, {"No failure": 0.894}),
                      NodesStage("nodes.md", {"partition": 0.42}, 10000, [0.89], [0.894], {"iot": fit, "cloud": fit},
                                 20.4)),
        timings_s=Timings(0.86, 213.65, 2.15),
        links={"iot->cloud": Link("iot", "cloud", False, [16], 16, "iot_out", 0.0176, -128)})
    if firmware:
        for i, (name, node) in enumerate(m.nodes.items(), start=1):
            node.node_id = i
            node.firmware = FirmwareImage(i, "qemu_f405", f"nodes/{name}/fw/node_config.h",
                                          f"nodes/{name}/fw/qemu_f405/node.elf", f"nodes/{name}/fw/qemu_f405/node.bin",
                                          20936, 20532, 524288, 131072, node.require_model().model_sha256[:16])
            node.platformio = PioEnv(f"tiny_{name}")
            node.emulator = Emulator(30288 + i, f"pio/qemu/tiny_{name}.pid", f"socket://127.0.0.1:{30288 + i}",
                                     f"pio/build/tiny_{name}/firmware.elf")
        m.require_links()["iot->cloud"].id = 1
        m.sensor_links = {"iot": 0}
        m.stages.firmware = FirmwareStage(1000, 5.4)
        m.platformio = PlatformIOSection("/tmp/x/platformio.ini", ["tiny_iot", "tiny_cloud"])
    return m


def test_write_then_read_is_the_same_manifest_byte_for_byte(tmp_path: Path) -> None:
    m = sample_manifest()
    path = write_manifest(m, tmp_path)
    assert path == tmp_path / "manifest.json"
    back = read_manifest(tmp_path, stage="firmware")
    assert back == m and dumps(back) == path.read_text()
    data = json.loads(path.read_text())
    # version 1's layout: the version key, a node's int8 model fields inline, absent stages left out
    assert list(data)[:2] == ["manifest_version", "preset"] and data["manifest_version"] == MANIFEST_VERSION
    assert list(data["nodes"]["iot"])[:4] == ["role", "failable", "aggregation", "features"]
    assert list(data["nodes"]["iot"])[-5:] == ["board", "node_id", "firmware", "platformio", "emulator"]
    assert data["links"]["iot->cloud"]["scale"] == 0.0176 and data["links"]["iot->cloud"]["zero_point"] == -128


def test_a_manifest_of_stage_train_reads_and_writes_back(tmp_path: Path) -> None:
    """--stop-after train: nodes with only role, failable and board; no links, no nodes/firmware stage."""
    m = sample_manifest(firmware=False)
    m.nodes = {n: Node(d.role, d.failable, board=d.board) for n, d in m.nodes.items()}
    m.links, m.stages.nodes = None, None
    write_manifest(m, tmp_path)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["nodes"]["iot"] == {"role": "sensor", "failable": False, "board": "qemu_f405"}
    assert "links" not in data and "nodes" not in data["stages"]
    back = read_manifest(tmp_path)
    assert back == m and back.stages_done() == ["train"]
    with pytest.raises(ManifestError, match=r"key 'stages.nodes' missing: the build stopped before stage nodes"):
        read_manifest(tmp_path, stage="nodes")


def _written(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = copy.deepcopy(to_json(sample_manifest()))
    edit(data)
    build = tmp_path / "build" / "demo"
    build.mkdir(parents=True)
    (build / "manifest.json").write_text(json.dumps(data, indent=1))
    return build


def _error(build: Path, stage: str = "firmware") -> str:
    with pytest.raises(ManifestError) as info:
        read_manifest(build, stage=stage)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{build / 'manifest.json'}: "), message       # names the file
    assert "python -m host.build" in message and f"--out {build}" in message  # says what to do
    return message


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split("/")

    def edit(data: dict[str, Any]) -> None:
        for key in parents:
            data = data[key]
        if value is KeyError:
            del data[last]
        else:
            data[last] = value
    return edit


@pytest.mark.parametrize("path, value, key, problem", [
    ("links", KeyError, "links", "missing: the build stopped before stage nodes"),
    ("nodes/iot/firmware/elf", KeyError, "nodes.iot.firmware.elf", "missing"),
    ("stages/evaluate/json", KeyError, "stages.evaluate.json", "missing"),
    ("topology/failure_order", KeyError, "topology.failure_order", "missing"),
    ("nodes/cloud/arena_bytes", "288", "nodes.cloud.arena_bytes", "is a string (\"288\"), expected an integer"),
    ("nodes/cloud/failable", 0, "nodes.cloud.failable", "is an integer (0), expected a boolean"),
    ("links/iot->cloud/scale", "0.1", "links.iot->cloud.scale", "expected a number"),
    ("links/iot->cloud/zero_point", True, "links.iot->cloud.zero_point", "is a boolean (true), expected an integer"),
    ("nodes/iot/inputs", {}, "nodes.iot.inputs", "is an object, expected a list"),
    ("dataset/input_shape", [28, "28"], "dataset.input_shape[1]", "expected an integer"),
    ("stages/nodes/fit/iot", [], "stages.nodes.fit.iot", "is a list, expected an object"),
    ("nodes/iot/model_sha256", "ab" * 31, "nodes.iot.model_sha256", "not a 64-digit hex hash"),
    ("nodes/cloud/firmware/model_hash", "CDCDCDCDCDCDCDCD", "nodes.cloud.firmware.model_hash",
     "not a 16-digit hex hash"),
    ("nodes/cloud/firmware/model_hash", "cdcd", "nodes.cloud.firmware.model_hash", "not a 16-digit hex hash"),
    ("manifest_version", 3, "manifest_version", "is 3; this checkout reads version 1, 2"),
    ("manifest_version", "1", "manifest_version", "is '1'; this checkout reads version 1, 2"),
    ("manifest_version", KeyError, "manifest_version", "missing"),
    ("sensor_links", KeyError, "sensor_links", "missing: the build stopped before stage firmware"),
    ("nodes/iot/firmware", KeyError, "nodes.iot.firmware", "missing: the build stopped before stage firmware"),
])
def test_a_bad_manifest_is_one_error_naming_file_and_key(tmp_path: Path, path: str, value: Any, key: str,
                                                         problem: str) -> None:
    message = _error(_written(tmp_path, _set(path, value)))
    assert f"key '{key}' " in message and problem in message, message


def test_not_json_names_the_file(tmp_path: Path) -> None:
    build = tmp_path / "b"
    build.mkdir()
    (build / "manifest.json").write_text('{"manifest_version": 1, "preset": ')
    message = _error(build)
    assert "is not JSON (" in message and "key" not in message.split(";")[0]


def test_not_an_object_and_no_file(tmp_path: Path) -> None:
    build = tmp_path / "b"
    build.mkdir()
    (build / "manifest.json").write_text("[1, 2]")
    assert "holds a list, expected a JSON object" in _error(build)
    (build / "manifest.json").unlink()
    message = _error(build)
    assert "no such file; build one with python -m host.build" in message


def test_the_harness_reports_a_bad_manifest_with_the_same_message(tmp_path: Path) -> None:
    from host.net.reference import DeploymentError, load_deployment

    build = _written(tmp_path, _set("nodes/iot/firmware/model_hash", "xyz"))
    with pytest.raises(DeploymentError, match=r"manifest.json: key 'nodes.iot.firmware.model_hash' is 'xyz'"):
        load_deployment(build)


# ---- Property-based: whatever a manifest.json holds, the reader answers with a Manifest or one ManifestError ----

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_SAMPLE = to_json(sample_manifest())
_SAMPLE_TEXT = json.dumps(_SAMPLE, indent=1)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path (dict keys and list indices) of a JSON value."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


_ALL_PATHS = _paths(_SAMPLE)
_JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                            | st.text(max_size=8), lambda kids: st.lists(kids, max_size=3)
                            | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=6)


def _mutate(data: Any, path: tuple, action: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    else:
        parent[last] = value
    return data


def _read_or_error(build: Path) -> None:
    try:
        m = read_manifest(build, stage="train")
    except ManifestError as err:
        assert str(err).startswith(f"{build / 'manifest.json'}: "), err
        return
    assert isinstance(m, Manifest)


_FAST = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_FAST
@given(mutations=st.lists(st.tuples(st.sampled_from(_ALL_PATHS), st.sampled_from(["delete", "swap"]), _JSON_VALUES),
                          min_size=1, max_size=4))
def test_mutated_manifests_read_or_fail_naming_the_file(tmp_path_factory, mutations) -> None:
    """Random key deletions and type swaps anywhere in a real manifest."""
    build = tmp_path_factory.mktemp("mut")
    data: Any = _SAMPLE
    for path, action, value in mutations:
        try:
            data = _mutate(data, path, action, value)
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed or replaced the parent
            continue
    (build / "manifest.json").write_text(json.dumps(data))
    _read_or_error(build)


@_FAST
@given(cut=st.integers(0, len(_SAMPLE_TEXT)), junk=st.binary(max_size=40), where=st.integers(0, len(_SAMPLE_TEXT)))
def test_truncated_or_garbled_text_fails_naming_the_file(tmp_path_factory, cut, junk, where) -> None:
    """The JSON text cut anywhere, or with random bytes spliced in (invalid UTF-8 included)."""
    build = tmp_path_factory.mktemp("cut")
    raw = _SAMPLE_TEXT.encode()
    (build / "manifest.json").write_bytes(raw[:cut])
    _read_or_error(build)
    (build / "manifest.json").write_bytes(raw[:where] + junk + raw[where:])
    _read_or_error(build)


@_FAST
@given(blob=st.binary(max_size=200) | _JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_random_bytes_fail_naming_the_file(tmp_path_factory, blob) -> None:
    build = tmp_path_factory.mktemp("rnd")
    (build / "manifest.json").write_bytes(blob)
    _read_or_error(build)
