"""## A user's own Keras model (Keras Applications' MobileNet) split over emulated boards (issue 14)."""
from __future__ import annotations

from typing import Any

from .formatting import err_of, n0, pct, table


def md_user_model(R: dict[str, Any]) -> str:
    S = R.get("user_model")
    out = "\n## A user's own Keras model on the boards: Keras Applications' MobileNet, split over four nodes\n\n"
    why = err_of(S)
    if why:
        return out + f"Not measured: {why}.\n" if why != "section not run" else ""
    out += (f"`keras.applications.MobileNet(input_shape=(32, 32, 1), alpha=0.25, weights=None, classes=10)`, trained "
            f"{S['pretrain_epochs']} epochs on {n0(S['train_images'])} grey CIFAR-10 images by "
            f"`examples/user_model/mobilenet_cifar.py` (as its user would), then `python {S['command']}` "
            f"(fine-tuned {S['fine_tune_epochs']} epochs with failout, ResiliNet, every node on {S['board']}).\n\n")
    rows = [[k, n["layers"], n0(n["macs"]), n0(n["weight_bytes"]), n0(n["arena_bytes"]),
             f"{n0(n['flash_bytes'])} / {n0(n['board_flash_bytes'])}", f"{n0(n['ram_bytes'])} / {n0(n['board_ram_bytes'])}"]
            for k, n in S["nodes"].items()]
    out += table(["node", "Keras layers", "MACs", "weights B", "arena B", "flash B / board", "RAM B / board"], rows)
    out += "\nLinks: " + ", ".join(f"{k} {'x'.join(map(str, l['shape']))} = {n0(l['bytes'])} B{' (skip)' if l['skip'] else ''}"
                                   for k, l in S["links"].items()) + ".\n\n"
    rows = []
    for r in S["runs"]:
        be = r["bit_exact"]
        rows.append([r["drop"] or "none", f"{n0(r['samples']['answered'])} / {n0(r['samples']['sent'])}",
                     f"{n0(be['identical'])} / {n0(be['compared'])}", r["mismatches"], pct(r["accuracy"]["boards"]),
                     pct(r["accuracy"]["int8_host"]), pct(r["accuracy"]["float_build"]),
                     "; ".join(f"{n}: " + ", ".join(f"{c} {k}" for c, k in m.items()) for n, m in r["mux"].items()) or "—"])
    out += table(["dropped", "answered", "tensors bit-exact", "mismatches", "boards %", "int8 host %", "float % (whole test set)",
                  "mux choices"], rows, right={1, 2, 3, 4, 5, 6})
    return out
