"""Part of section ``links``: the compressed builds (issue 19, low-bit link codes and learned bottlenecks).

For every preset with ``examples/link_codes/<preset>_compressed.toml``: build it (``build/bench-<preset>-compressed``),
run it on the emulated boards (``host.harness``, nothing failed and with the first failable node dropped: every
answer compared with the int8 reference), and project its latency/throughput at 115200 and 921600 baud (star
and direct) with the same model as the uncompressed build's; accuracy (float and the int8 reference, both on
the whole test set) beside the uncompressed ResiliNet build's.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench_builds import run_build
from bench_common import REPO, bench_build_dir, has_firmware, load_manifest, log, rel
from bench_harness import run_harness

EXAMPLES = REPO / "examples" / "link_codes"


def compressed_topology(preset: str) -> Path | None:
    path = EXAMPLES / f"{preset}_compressed.toml"
    return path if path.exists() else None


def _accuracy(build: Path) -> dict[str, Any]:
    """Float average per reliability setting (evaluation.json), the int8 reference per configuration and its
    average per setting, weighted as the float one (a configuration without a path: the random guess)."""
    ev = json.loads((build / "evaluation.json").read_text())
    nodes = load_manifest(build).stages.nodes
    acc8 = nodes.int8_accuracy if nodes else None
    avg8 = None
    if acc8 and len(acc8) == len(ev["configs"]):
        acc = [ev["random_guess"] if a is None else a for a in acc8]
        avg8 = {st: sum(p * a for p, a in zip(ps, acc)) / sum(ps) for st, ps in ev["config_probability"].items()}
    return {"float_average": ev.get("average"), "int8_eval_samples": nodes.int8_eval_samples if nodes else None,
            "int8_accuracy": acc8, "int8_average": avg8}


def _board_run(build: Path, args: argparse.Namespace, tag: str, drop: str | None) -> dict[str, Any]:
    samples = int(getattr(args, "compressed_samples", 200))
    out = args.work / "harness"
    cmd_extra = ["--drop", drop] if drop else []
    d = run_harness(build, out, args.work / "logs", tag, samples, False, None, 1800, extra=cmd_extra)
    (r,) = d["runs"][:1] or [{}]
    return {"drop": drop, "answered": r.get("samples", {}).get("answered"), "bit_exact": r.get("bit_exact"),
            "mismatches": len(r.get("mismatches", [])), "accuracy_boards": r.get("accuracy", {}).get("boards"),
            "latency_ms": r.get("latency_ms"), "command": d.get("_bench", {}).get("command")}


def compressed_builds(args: argparse.Namespace, R: dict[str, Any], base: dict[str, Any],
                      project: Any) -> dict[str, Any]:
    """Per preset with a compressed topology: bytes, projections, emulated runs and accuracy of both builds.

    ``base``: the section's per-preset results of the uncompressed builds; ``project(manifest, preset)``: the
    section's projection (same compute per node as the uncompressed build: the bottleneck layers add < 1 %)."""
    res: dict[str, Any] = {}
    for preset, p in base.items():
        topo = compressed_topology(preset)
        if topo is None:
            continue
        out = REPO / "build" / f"bench-{preset}-compressed"
        entry: dict[str, Any] = {"topology": rel(topo), "build": rel(out)}
        try:
            if not has_firmware(out) or "builds" in R:  # rebuilt with the bench's other builds
                log(f"build {rel(topo)} -> {rel(out)}")
                # int8 on the samples of the uncompressed build it is compared with (default: the whole test set)
                run_build(str(topo), "resilinet", out, args.work / "logs", getattr(args, "int8_samples", None),
                          f"{preset}-compressed")
            man = load_manifest(out)
            links = man.require_links()
            entry["links"] = {n: {"bits": l.wire_bits, "shape": l.shape, "tensor": l.bytes,
                                  "wire": l.wire_bytes or l.bytes} for n, l in links.items()}
            entry["inter_node_bytes_per_inference"] = sum(v["wire"] for v in entry["links"].values())
            entry["uncompressed_bytes_per_inference"] = p.get("inter_node_tensor_bytes_per_inference")
            entry["projection"] = project(man, preset)
            entry["uncompressed_projection"] = {k: p["projection"][k] for k in p["projection"]}
            entry["accuracy"] = _accuracy(out)
            plain = bench_build_dir(preset, "resilinet")
            entry["uncompressed_accuracy"] = _accuracy(plain) if (plain / "evaluation.json").exists() else None
            first = man.failure_order[0] if man.failure_order else None
            entry["emulated"] = [_board_run(out, args, f"{preset}-compressed", None)]
            if first:
                entry["emulated"].append(_board_run(out, args, f"{preset}-compressed-drop-{first}", first))
        except Exception as e:  # noqa: BLE001 -- one preset failing must not stop the others
            entry["error"] = str(e)
            log(f"  compressed {preset} FAILED: {e}")
        res[preset] = entry
    return res
