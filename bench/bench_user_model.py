"""Section ``user_model``: a Keras model nobody wrote for this product split over emulated boards (issue 14).

``examples/user_model/mobilenet_cifar.py`` writes Keras Applications' MobileNet (alpha 0.25, 32x32x1, trained
a few epochs on grey CIFAR-10 as its user would) and the topology file assigning its layers to iot / edge /
fog / cloud; ``host.build --model`` fine-tunes it with failout and deploys it; ``host.harness`` streams test
samples with nothing failed and with each failable node dropped, comparing every tensor byte for byte.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from bench_common import PY, has_firmware, load_manifest, log, rel, run_cmd, tail

EXAMPLE = Path("examples/user_model/mobilenet_cifar.py")
#: The example's settings: what the report quotes (and what a reader re-runs).
PRETRAIN_EPOCHS, FINE_TUNE_EPOCHS, TRAIN_IMAGES, TEST_IMAGES, INT8_SAMPLES = 10, 2, 20000, 1000, 200
DROPS: tuple[str | None, ...] = (None, "fog", "edge")


def _harness(build: Path, out: Path, logs: Path, drop: str | None, samples: int, timeout: float) -> dict[str, Any]:
    tag = f"user-model-{drop or 'none'}"
    js = out / f"{tag}.json"
    js.unlink(missing_ok=True)
    cmd = [PY, "-m", "host.harness", "--build", build, "--samples", str(samples), "--json", js,
           "--out", out / tag, "--quiet"] + (["--drop", drop] if drop else [])
    rc, wall = run_cmd(cmd, logs / f"harness-{tag}.log", timeout)
    if not js.exists():
        raise RuntimeError(f"host.harness exit {rc}, no JSON: {tail(logs / f'harness-{tag}.log')}")
    (run,) = json.loads(js.read_text())["runs"]
    return {"drop": drop, "exit": rc, "wall_s": round(wall, 1), "samples": run["samples"],
            "bit_exact": run["bit_exact"], "mismatches": len(run["mismatches"]), "accuracy": run["accuracy"],
            "mux": {n: v.get("mux") for n, v in run["nodes"].items() if v.get("mux")}}


def section_user_model(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    logs, work = args.work / "logs", args.work / "user_model"
    files, build = work / "files", work / "build"
    log(f"user model: {EXAMPLE} (MobileNet alpha 0.25, {PRETRAIN_EPOCHS} epochs on grey CIFAR-10)")
    rc, wall_example = run_cmd([PY, EXAMPLE, "--out", files, "--train-epochs", str(PRETRAIN_EPOCHS), "--train",
                                str(TRAIN_IMAGES), "--test", str(TEST_IMAGES)], logs / "user-model-example.log", 3600)
    if rc != 0:
        raise RuntimeError(f"{EXAMPLE} failed (exit {rc}): {tail(logs / 'user-model-example.log')}")
    if build.exists():
        shutil.rmtree(build)
    cmd = [PY, "-m", "host.build", "--model", files / "mobilenet.keras", "--preset", files / "mobilenet_split.toml",
           "--epochs", str(FINE_TUNE_EPOCHS), "--int8-samples", str(INT8_SAMPLES), "--out", build, "--quiet"]
    log("user model: host.build --model (fine-tune with failout, int8 nodes, firmware)")
    rc, wall_build = run_cmd(cmd, logs / "user-model-build.log", 3600)
    if rc != 0 or not has_firmware(build):
        raise RuntimeError(f"host.build --model failed (exit {rc}): {tail(logs / 'user-model-build.log')}")
    m = load_manifest(build)
    nodes = {}
    for name, n in m.nodes.items():
        model, fw = n.require_model(), n.require_firmware()
        nodes[name] = {"layers": len(m.topology["nodes"][[x["name"] for x in m.topology["nodes"]].index(name)]
                                     ["layers"][0]["layers"]),
                       "macs": model.macs, "weight_bytes": model.weight_bytes, "arena_bytes": model.arena_bytes,
                       "flash_bytes": fw.flash_bytes, "ram_bytes": fw.ram_bytes,
                       "board_flash_bytes": fw.board_flash_bytes, "board_ram_bytes": fw.board_ram_bytes}
    links = {k: {"shape": l.shape, "bytes": l.bytes, "skip": l.skip} for k, l in (m.links or {}).items()}
    st = m.stages.nodes
    runs = []
    for drop in DROPS:
        log(f"user model: harness, {'--drop ' + drop if drop else 'nothing failed'} ({args.harness_samples} samples)")
        runs.append(_harness(build, work / "harness", logs, drop, args.harness_samples, args.harness_timeout))
    return {"build": rel(build), "command": " ".join(map(str, cmd[1:])), "example_wall_s": round(wall_example, 1),
            "build_wall_s": round(wall_build, 1), "pretrain_epochs": PRETRAIN_EPOCHS,
            "fine_tune_epochs": FINE_TUNE_EPOCHS, "train_images": TRAIN_IMAGES, "test_images": TEST_IMAGES,
            "board": m.board, "nodes": nodes, "links": links,
            "float_accuracy": st.float_accuracy if st else None, "int8_accuracy": st.int8_accuracy if st else None,
            "int8_eval_samples": st.int8_eval_samples if st else None, "runs": runs}
