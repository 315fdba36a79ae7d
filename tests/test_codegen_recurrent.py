"""State that persists between invocations (issue 18): LSTM hidden/cell state and SVDF activation history live in
the arena between <name>_invoke() calls, as TFLM's variable tensors do between Invoke() calls, and
<name>_reset() restores them like MicroInterpreter::Reset().

The corpus test (test_op_corpus.py) already runs its samples in a row; here a sequence with a repeated input and
a reset in the middle is compared with the same sequence on the tflite_micro interpreter, and the outputs must
show that the state is carried (same input, different output) and that reset restores the first output.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen import generate_module
from codegen.emit import build_module
from codegen.verify import HostTarget, kernels_dir

from op_corpus import build_model, corpus_builders

pytestmark = [pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning"),
              pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")]

_STRICT = ("-O2", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror")

#: Reads `count` samples (all inputs' bytes) from stdin, invokes on each in order and calls <name>_reset()
#: before sample `reset_at`; writes every output.
_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "{name}.h"
static int8_t in0[{NAME}_INPUT_0_BYTES];
static int8_t out0[{NAME}_OUTPUT_0_BYTES];
int main(int argc, char **argv)
{{
    const int8_t *const in[] = {{in0}};
    int8_t *const out[] = {{out0}};
    const long reset_at = argc > 1 ? atol(argv[1]) : -1;
    for (long i = 0; fread(in0, 1, sizeof in0, stdin) == sizeof in0; i++)
    {{
        if (i == reset_at)
        {{
            {name}_reset();
        }}
        if ({name}_invoke(in, out) != 0)
        {{
            return 2;
        }}
        fwrite(out0, 1, sizeof out0, stdout);
    }}
    return 0;
}}
"""


@pytest.fixture(scope="module")
def recurrent_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("tensorflow")
    builders = corpus_builders()
    out = tmp_path_factory.getbasetemp() / "op_corpus"
    return {name: build_model(name, out, builders) for name in ("lstm_sequence", "svdf_stream")}


def _run_module(model: Path, inputs: list[np.ndarray], reset_at: int, work: Path) -> list[np.ndarray]:
    info = generate_module(model, work / "module", name="rnn")
    (work / "driver.c").write_text(_DRIVER.format(name="rnn", NAME="RNN"))
    host = HostTarget(cflags=_STRICT)
    exe = work / "rnn"
    subprocess.run(["gcc", *_STRICT, "-I", str(kernels_dir()), "-I", str(info.c_path.parent), str(info.c_path),
                    str(work / "driver.c"), *map(str, host.kernel_objects()), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe), str(reset_at)], input=b"".join(x.tobytes() for x in inputs),
                          capture_output=True, check=True)
    n = info.outputs[0].nbytes
    return [np.frombuffer(proc.stdout[i * n:(i + 1) * n], dtype=np.int8) for i in range(len(inputs))]


def _run_tflm(model: Path, inputs: list[np.ndarray], reset_at: int) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime as tflm

    interpreter = tflm.Interpreter.from_file(str(model), arena_size=4 << 20)
    outs = []
    for i, x in enumerate(inputs):
        if i == reset_at:
            interpreter.reset()
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outs.append(np.array(interpreter.get_output(0), dtype=np.int8).reshape(-1))
    return outs


@pytest.mark.parametrize("name", ["lstm_sequence", "svdf_stream"])
def test_state_persists_between_invocations_and_reset_restores_it(name: str, recurrent_models: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    model = recurrent_models[name]
    shape = build_module(model).inputs[0].shape
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, size=shape, dtype=np.int8)
    others = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(5)]
    # a, a, b..f, then reset and a again: 8 invocations, the reset before the 8th.
    inputs = [a, a, *others, a]
    ours = _run_module(model, inputs, reset_at=7, work=tmp_path)
    ref = _run_tflm(model, inputs, reset_at=7)
    for i, (got, want) in enumerate(zip(ours, ref)):
        assert np.array_equal(got, want), f"invocation {i}: {got} != TFLM {want}"
    assert not np.array_equal(ours[0], ours[1]), "the same input gave the same output: no state was carried"
    assert np.array_equal(ours[7], ours[0]), "after reset the first input must give the first output again"


def test_state_is_planned_apart_and_reported(recurrent_models: dict[str, Path]) -> None:
    """Every variable tensor gets arena bytes of its own for the whole run, reset to TFLM's initial value."""
    module = build_module(recurrent_models["lstm_sequence"], name="rnn")
    graph, plan = module.graph, module.plan
    (lstm,) = [s for s in module.steps if s.kernel == "lstm"]
    hidden, cell = (graph.tensors[t] for t in lstm.state)
    assert (hidden.dtype, cell.dtype) == ("int8", "int16")
    assert {t: size for t, (_, size) in plan.state.items()} == {hidden.index: hidden.nbytes, cell.index: cell.nbytes}
    state_buffers = [b for b in plan.buffers if b.is_state]
    assert all(b.first == 0 and b.last == len(module.steps) - 1 for b in state_buffers)
    for b in state_buffers:  # nothing else ever uses a state buffer's bytes
        assert not any(o is not b and o.overlaps_in_space(b) for o in plan.buffers)
    assert plan.state_bytes == hidden.nbytes + cell.nbytes and plan.arena_size >= plan.lower_bound
    assert f"#define RNN_STATE_BYTES {plan.state_bytes}" in module.h_source
    assert "void rnn_reset(void);" in module.h_source
    zp = hidden.quant.zero_point
    assert f"memset(rnn_arena + {plan.state[hidden.index][0]}, {zp}, {hidden.nbytes});" in module.c_source
    assert f"memset(rnn_arena + {plan.state[cell.index][0]}, 0, {cell.nbytes});" in module.c_source


def test_stateless_model_has_a_noop_reset(tmp_path: Path) -> None:
    from codegen_models import TinyModel

    m = TinyModel()
    x = m.tensor("x", [1, 4], scale=0.1, zero_point=0)
    y = m.tensor("y", [1, 4], scale=0.1, zero_point=0)
    m.op(m.schema.BuiltinOperator.RELU, [x], [y])
    module = build_module(m.save(tmp_path / "relu.tflite", [x], [y]), name="plain")
    assert module.plan.state_bytes == 0 and "#define PLAIN_STATE_BYTES 0" in module.h_source
    assert "void plain_reset(void)" in module.c_source and "memset" not in module.c_source



def test_lstm_variants_tflm_runs_differently_are_refused_by_name(tmp_path: Path) -> None:
    """A peephole LSTM stops `codegen report` with one error line naming the op and the variant."""
    import sys

    from op_corpus.recurrent import lstm_16x8

    model = tmp_path / "peephole.tflite"
    model.write_bytes(lstm_16x8(peephole=True))
    proc = subprocess.run([sys.executable, "-m", "codegen", "report", str(model)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "UNIDIRECTIONAL_SEQUENCE_LSTM" in line and "peephole LSTM" in line
