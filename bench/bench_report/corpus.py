"""## 1b. Op corpus: the models of tests/op_corpus/ (recurrent, 16x8, transpose conv, float I/O, shape ops) on
the emulated Cortex-M4 — instructions per inference and memory, each model bit-exact with tflite_micro."""
from __future__ import annotations

from typing import Any

from .formatting import err_of, n0, table


def md_corpus(R: dict[str, Any]) -> str:
    """One row per corpus model; failures listed under the table."""
    C = R.get("corpus")
    out = ["## 1b. Op corpus: recurrent, 16x8, transpose-conv and float-I/O models\n\n"]
    if err_of(C):
        return out[0] + f"Not measured: {err_of(C)}\n\n"
    out.append(
        "The models of `tests/op_corpus/` (built with TensorFlow's converter by the test suite, same seeds), "
        f"generated with `codegen` and run on QEMU mps2-an386 ({C.get('samples', '?')} samples, every output "
        "compared with tflite_micro first; `make test` checks every tensor on host, host-dsp and qemu). "
        "Instructions = executed instructions per inference (median, `-icount`); arena includes the state "
        "kept between invocations (LSTM/SVDF).\n\n")
    rows = []
    for name, m in sorted(C.get("models", {}).items()):
        rows.append([f"`{name}`", "/".join(sorted(set(m["io"]))), n0(m["macs"]), n0(m["instructions"]),
                     n0(m["arena_bytes"]), n0(m["state_bytes"]), n0(m["weight_bytes"]), ", ".join(m["ops"])])
    out.append(table(["model", "I/O", "MACs", "instructions", "arena B", "of it state B", "weights B", "ops"],
                     rows, right={2, 3, 4, 5, 6}))
    for name, e in sorted(C.get("errors", {}).items()):
        out.append(f"- `{name}`: not measured — {e}\n")
    out.append("\n")
    return "".join(out)
