"""## Training on tf.distribute: one device, a mirrored replica, two local workers (issue 15)."""
from __future__ import annotations

from typing import Any

from .formatting import err_of, pct, table


def md_distribute(R: dict[str, Any]) -> str:
    S = R.get("distribute")
    out = "\n## Training on tf.distribute: one device vs two local workers (MultiWorkerMirroredStrategy)\n\n"
    why = err_of(S)
    if why:
        return out + f"Not measured: {why}.\n" if why != "section not run" else ""
    runs = S["runs"]
    first = runs["none"]
    labels = ["+".join(n for n, b in zip(first["failure_order"], c) if not b) or "none" for c in first["configs"]]
    out += (f"`python -m host.build --preset fashion --max-train {S['max_train']} --epochs {S['epochs']} "
            f"--max-test {S['max_test']} --stop-after train --distribute KIND` (multiworker through "
            "`python -m host.ml.launch_workers --workers 2`, both workers on this machine's CPU). Same seed, global "
            "batch 128: the runs do the same arithmetic in another summation order (docs/training.md). Adam turns a "
            "rounding difference in a near-zero gradient into a whole ±lr step, so single weights can drift by "
            "~lr x steps; the accuracies are the comparison (BatchNorm's moving averages need a few hundred steps: "
            "with `--quick`'s 64 steps every model is still at chance).\n\n")
    rows = []
    for kind, r in runs.items():
        acc = [pct(a) if a is not None else "guess" for a in r["measured"]]
        diff = r.get("max_weight_diff_vs_none")
        equal = ("yes" if len(r["digests"]) == 1 else "NO") if kind == "multiworker" else "—"
        rows.append([kind, r["wall_s"], r["train_s"], equal, "—" if diff is None else f"{diff:.1e}", *acc])
    out += table(["--distribute", "wall s", "train s", "2 workers' weights equal", "max abs Δw vs none",
                  *[f"{l} failed %" if l != "none" else "none failed %" for l in labels]], rows)
    return out
