"""Preset ``har_lstm`` (issue 18): a split network whose fog node runs an LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM), on
emulated boards, bit-exact with tflite_micro -- with no failure and with a failable node dropped.

Every HAR window is a sample of its own: the fog's board resets the LSTM state before each sample and the host
reference resets its interpreter, so the two agree sample after sample; a reference that carried the state
over would not (checked below, so the agreement is not vacuous). One small build per session (1 epoch, 600
windows), each harness run boots and stops its own boards."""
from __future__ import annotations

import json

import numpy as np
import pytest

from harness_support import qemus, quick_build
from host.ml.topology import TopologyError, parse_topology


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return quick_build(tmp_path_factory, "har_lstm", 600, 60, 30)


@pytest.fixture(autouse=True)
def _no_leftover_boards():
    before = qemus()
    yield
    from codegen.emulator import stop_all
    stop_all()
    assert qemus() <= before, "a test left QEMU running"


def _run(build, **kw) -> dict:
    from host.net.harness import run_harness
    res = run_harness(build, samples=kw.pop("samples", 12), progress=False, write=False, **kw)
    (s,) = res.report["runs"]
    return s


def _assert_bit_exact(s: dict, answered: int) -> None:
    assert s["samples"]["answered"] == answered and s["mismatches"] == []
    assert s["bit_exact"]["compared"] > 0 and s["bit_exact"]["identical"] == s["bit_exact"]["compared"]
    assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"]


def test_lstm_layer_needs_units():
    raw = {"name": "t", "nodes": [{"name": "s", "role": "sensor", "layers": [{"type": "lstm"}]},
                                  {"name": "c", "role": "cloud", "layers": []}],
           "links": [{"from": "s", "to": "c"}]}
    with pytest.raises(TopologyError, match=r"layers\[0\]\.units must be an integer"):
        parse_topology(raw)
    raw["nodes"][0]["layers"] = [{"type": "lstm", "units": 0}]
    with pytest.raises(TopologyError, match=r"lstm\) needs units >= 1"):
        parse_topology(raw)
    raw["nodes"][0]["layers"] = [{"type": "lstm", "units": 8}]
    assert parse_topology(raw).node("s").layers[0]["units"] == 8


def test_fog_is_one_fused_lstm_with_state_reset_before_each_sample(build):
    """The fog's int8 model has one UNIDIRECTIONAL_SEQUENCE_LSTM whose hidden state shares the output link's
    int8 parameters (the link's scale was patched into both), its module keeps state and its board image
    resets it; the stateless nodes get no reset."""
    from ai_edge_litert import schema_py_generated as schema

    m = json.loads((build / "manifest.json").read_text())
    nodes = m["nodes"]
    assert nodes["fog"]["state_bytes"] > 0
    assert all(n["state_bytes"] == 0 for k, n in nodes.items() if k != "fog")
    model = schema.ModelT.InitFromPackedBuf((build / "nodes" / "fog" / "fog.tflite").read_bytes(), 0)
    sg = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    lstm = [op for op in sg.operators
            if codes[op.opcodeIndex] == schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM]
    assert len(lstm) == 1 and not any(codes[op.opcodeIndex] == schema.BuiltinOperator.WHILE for op in sg.operators)
    hidden = sg.tensors[lstm[0].inputs[18]]
    link = m["links"]["fog->cloud"]
    assert hidden.isVariable
    assert np.float32(hidden.quantization.scale[0]) == np.float32(link["scale"])
    assert hidden.quantization.zeroPoint[0] == link["zero_point"]
    configs = {n: (build / "nodes" / n / "fw" / "node_config.h").read_text() for n in nodes}
    assert ".reset = node_fog_reset," in configs["fog"]
    assert all(".reset" not in text for n, text in configs.items() if n != "fog")


def test_no_failure_on_boards_bit_exact(build, monkeypatch):
    s = _run(build)
    _assert_bit_exact(s, 12)
    assert s["nodes"]["fog"]["identical"] == 12

    # Not vacuous: a host reference that keeps the LSTM state from one sample to the next disagrees with the
    # fog's board from the second sample on (the board starts every sample afresh).
    from tflite_micro.python.tflite_micro import runtime
    monkeypatch.setattr(runtime.Interpreter, "reset", lambda self: None)
    s = _run(build, samples=4)
    assert s["nodes"]["fog"]["identical"] == 1 and s["nodes"]["edge"]["identical"] == 4


@pytest.mark.parametrize("dead,mux_node", [("fog", "cloud"), ("edge", "fog")])
def test_failable_node_dropped_on_boards_bit_exact(build, dead, mux_node):
    """Fog dropped: the cloud takes the edge's skip. Edge dropped: the LSTM runs on the sensors' skips."""
    s = _run(build, dead=[dead])
    _assert_bit_exact(s, 12)
    assert s["nodes"][dead]["not_fed"] == 12
    assert s["nodes"][mux_node]["mux"] == {"fallback": 12} and s["nodes"][mux_node]["identical"] == 12
