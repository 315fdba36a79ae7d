"""Section ``distribute``: training on tf.distribute (issue 15) -- one device vs two local workers.

The fashion preset (ResiliNet) at a bench size, trained three ways from the same seed: one device
(``--distribute none``), one MirroredStrategy replica (the CPU), and two local workers under
MultiWorkerMirroredStrategy (``python -m host.ml.launch_workers --workers 2``). Reports wall time, that both
workers end with the same weights digest, the largest weight difference to the one-device model, and each
failure configuration's float test accuracy.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path
from typing import Any

from bench_common import PY, log, rel, run_cmd, tail

MAX_TRAIN, EPOCHS, MAX_TEST = 16384, 2, 2000
KINDS = ("none", "mirrored", "multiworker")


def _max_weight_difference(a: Path, b: Path) -> float:
    import keras
    import numpy as np

    from host.ml import layers  # noqa: F401  (registers the custom layers)
    wa = keras.saving.load_model(a, compile=False).get_weights()
    wb = keras.saving.load_model(b, compile=False).get_weights()
    return max(float(np.abs(x - y).max()) for x, y in zip(wa, wb))


def section_distribute(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    logs, work = args.work / "logs", args.work / "distribute"
    max_train = 4096 if args.quick else MAX_TRAIN
    common = ["-m", "host.build", "--preset", "fashion", "--max-train", str(max_train), "--max-test", str(MAX_TEST),
              "--epochs", str(EPOCHS), "--stop-after", "train", "--quiet", "--no-cache"]
    runs: dict[str, Any] = {}
    for kind in KINDS:
        out = work / kind
        if out.exists():
            shutil.rmtree(out)
        cmd = [PY, *common, "--distribute", kind, "--out", out]
        if kind == "multiworker":
            cmd = [PY, "-m", "host.ml.launch_workers", "--workers", "2", "--", *cmd]
        log(f"distribute: fashion, {max_train} samples x {EPOCHS} epochs, --distribute {kind}")
        rc, wall = run_cmd(cmd, logs / f"distribute-{kind}.log", 3600)
        if rc != 0:
            raise RuntimeError(f"--distribute {kind} failed (exit {rc}): {tail(logs / f'distribute-{kind}.log')}")
        text = (logs / f"distribute-{kind}.log").read_text(errors="replace")
        ev = json.loads((out / "evaluation.json").read_text())
        train = json.loads((out / "manifest.json").read_text())["stages"]["train"]
        runs[kind] = {"wall_s": round(wall, 1), "train_s": train["train_seconds"],
                      "digests": sorted(set(re.findall(r"trained weights digest ([0-9a-f]+)", text))),
                      "configs": ev["configs"], "failure_order": ev["failure_order"], "measured": ev["measured"]}
    for kind in KINDS[1:]:
        runs[kind]["max_weight_diff_vs_none"] = _max_weight_difference(work / kind / "model.keras",
                                                                       work / "none" / "model.keras")
    return {"preset": "fashion", "max_train": max_train, "epochs": EPOCHS, "max_test": MAX_TEST,
            "work": rel(work), "runs": runs}
