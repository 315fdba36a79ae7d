"""host.build stage 1 and the experiment commands, end to end on small data."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")

from host.deploy import cli as build  # noqa: E402
from host.deploy.manifest import ManifestError, dumps, read_manifest  # noqa: E402
from host.ml import experiments  # noqa: E402

TINY = """
name = "tiny"
description = "a small MLP chain for tests: s -> e -> f -> c, skips s->f and e->c"
[dataset]
name = "npz"
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
layers = [{{ type = "dense", units = 16 }}]
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
[[links]]
from = "e"
to = "c"
skip = true
"""


@pytest.fixture(scope="module")
def tiny_topology(tmp_path_factory, health_npz):
    path = tmp_path_factory.mktemp("topo") / "tiny.toml"
    path.write_text(TINY.format(path=health_npz))
    return str(path)


def test_build_stage1_writes_model_report_and_manifest(tmp_path, capsys):
    out = tmp_path / "b"
    args = ["--preset", "fashion", "--scheme", "resilinet", "--board", "nucleo", "--out", str(out),
            "--epochs", "1", "--max-train", "1500", "--max-test", "400", "--quiet"]
    assert build.main(args) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["preset"] == "fashion" and m["scheme"] == "resilinet" and m["board"] == "nucleo_f446re"
    assert m["dataset"]["test"] == 400 and set(m["nodes"]) == {"iot", "edge", "fog", "cloud"}
    assert not m["stages"]["train"]["cached"]
    for f in ("model.keras", "evaluation.md", "evaluation.json", "evaluation.png"):
        assert (out / f).stat().st_size > 0, f
    ev = json.loads((out / "evaluation.json").read_text())
    assert len(ev["configs"]) == 4 and set(ev["average"]) == {"No failure", "Normal", "Poor", "Hazardous"}
    assert "edge failed" in (out / "evaluation.md").read_text()
    # stage 2: one int8 model and one C module per node, links with one int8 scale at both ends
    assert m["nodes"]["fog"]["aggregation"] == "mux" and m["nodes"]["iot"]["aggregation"] == "source"
    for node in ("iot", "edge", "fog", "cloud"):
        for f in (f"{node}.tflite", f"node_{node}.c", f"node_{node}.h"):
            assert (out / "nodes" / node / f).stat().st_size > 0, f
    fog_in = m["nodes"]["fog"]["inputs"][0]
    assert (fog_in["primary"], fog_in["fallback"]) == ("edge->fog", "iot->fog")
    assert m["links"]["edge->fog"]["scale"] == m["links"]["iot->fog"]["scale"] == fog_in["scale"]
    assert m["links"]["iot->edge"]["bytes"] == 14 * 14 * 8
    acc8 = m["stages"]["nodes"]["int8_accuracy"]
    assert acc8[0] is None and all(0.0 <= a <= 1.0 for a in acc8[1:])
    assert all(f["fits"] for f in m["stages"]["nodes"]["fit"].values())
    assert (out / "nodes.md").stat().st_size > 0 and (out / "nodes.png").stat().st_size > 0
    # the typed reader reads what the writer wrote, and writes it back byte for byte
    typed = read_manifest(out, stage="firmware")
    assert dumps(typed) == (out / "manifest.json").read_text()
    assert typed.links["iot->edge"].scale == m["links"]["iot->edge"]["scale"]
    assert typed.nodes["fog"].firmware.board == "nucleo_f446re" and typed.platformio.envs == [
        f"fashion_{n}" for n in ("iot", "edge", "fog", "cloud")]
    # the node id table: printed after the build and written into summary.md, ids as in the manifest
    printed = capsys.readouterr().out
    summary = (out / "summary.md").read_text()
    for name, node in typed.nodes.items():
        row = f"| {name} | node{node.node_id} | {node.node_id} | nucleo_f446re | {node.role} |"
        assert row in summary, summary
        assert any(line.split() == ["│", name, "│", f"node{node.node_id}", "│", str(node.node_id), "│",
                                    "nucleo_f446re", "│", node.role, "│"] for line in printed.splitlines()), printed
    assert [n.node_id for n in typed.nodes.values()] == [1, 2, 3, 4]
    # real boards: the build's own platformio.ini, guarded until ststm32 is installed; nothing else left beside it
    assert typed.platformio.ini == "platformio.ini" and "custom_resilinet_stop" in (out / "platformio.ini").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    # the same command again reuses the cached model and gives the same numbers
    assert build.main(args) == 0
    m2 = json.loads((out / "manifest.json").read_text())
    assert m2["stages"]["train"]["cached"] and m2["stages"]["train"]["cache_key"] == m["stages"]["train"]["cache_key"]
    assert json.loads((out / "evaluation.json").read_text())["accuracy"] == ev["accuracy"]
    # --stop-after train: a manifest of stage 1 only, which the reader knows is not enough for stage 3
    assert build.main([*args[:6], "--out", str(tmp_path / "t"), *args[8:], "--stop-after", "train"]) == 0
    first = read_manifest(tmp_path / "t")
    assert first.stages_done() == ["train"] and first.links is None and first.nodes["fog"].model is None
    with pytest.raises(ManifestError, match="key 'stages.nodes' missing"):
        read_manifest(tmp_path / "t", stage="firmware")


def test_build_rejects_unknown_board_and_scheme(tmp_path, capsys):
    """One line each, exit status 2, nothing written (tests/test_build_errors.py runs the command itself)."""
    assert build.main(["--board", "arduino", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown board 'arduino'") and err.count("\n") == 1
    assert build.main(["--scheme", "magic", "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.startswith("error: --scheme: unknown scheme 'magic'")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_all_experiments_write_markdown_json_and_png(tmp_path, tiny_topology):
    out = tmp_path / "exp"
    for exp, extra in [("average", ["--runs", "2", "--schemes", "vanilla,resilinet"]), ("failout", []),
                       ("weights", []), ("skips", [])]:
        assert experiments.main([exp, "--preset", tiny_topology, "--out", str(out)] + extra) == 0
    names = {"average": "average_accuracy", "failout": "failout_ablation", "weights": "weight_ablation",
             "skips": "skip_sensitivity"}
    for stem in names.values():
        for ext in ("md", "json", "png"):
            assert (out / f"{stem}_tiny.{ext}").stat().st_size > 0, (stem, ext)
    avg = json.loads((out / "average_accuracy_tiny.json").read_text())
    assert len(avg["schemes"]["vanilla"]["runs"]) == 2
    van = avg["schemes"]["vanilla"]["runs"][0]
    p_all = 0.85 * 0.80
    a0 = van["measured"][-1]
    assert van["average"]["Hazardous"] == pytest.approx(p_all * a0 + (1 - p_all) * van["random_guess"], abs=1e-12)
    fo = json.loads((out / "failout_ablation_tiny.json").read_text())
    assert list(fo["table"]) == ["fixed 0.95", "fixed 0.9", "fixed 0.7", "fixed 0.5", "variable"]
    assert fo["table"]["variable"]["No failure"] is None and fo["table"]["variable"]["Hazardous"] is not None
    sk = json.loads((out / "skip_sensitivity_tiny.json").read_text())
    assert list(sk["table"]) == ["no skips", "s->f", "e->c", "s->f, e->c"]
    caps = {k: v["path_probability"]["Hazardous"] for k, v in sk["table"].items()}
    assert caps == pytest.approx({"no skips": 0.68, "s->f": 0.85, "e->c": 0.80, "s->f, e->c": 0.97})
    w = json.loads((out / "weight_ablation_tiny.json").read_text())
    assert len(w["table"]) == 4
