"""Section ``resilience``: the paper's table. Average accuracy per reliability setting from the float experiments
(``build/experiments``), the builds' int8 split networks on the host (their manifests) and the emulated boards
(``host.harness --sweep``), each next to its path-probability cap. The camera preset has a section of its own
(bench/bench_camera.py), which uses the column helpers below."""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bench_common import PRESETS, REPO, SCHEMES, build_dirs, load_manifest, rel
from bench_harness import harness_runs


def _cap(accs: list[float | None], has_path: list[bool], ppath: float, g: float) -> float | None:
    """P(path) x the best configuration with a path + (1 - P(path)) x g: what any scheme can reach at most."""
    vals = [a for a, p in zip(accs, has_path) if p and a is not None]
    if not vals:
        return None
    return ppath * max(vals) + (1 - ppath) * g


def _avg_se(accs: list[float | None], has_path: list[bool], probs: dict[str, list[float]], n: int | None
            ) -> dict[str, float | None]:
    """Binomial standard error of each setting's average: sqrt(sum_c P_c^2 a_c (1 - a_c) / n)."""
    if not n:
        return {s: None for s in probs}
    out = {}
    for s, ps in probs.items():
        tot = sum(ps)
        var = sum((p / tot) ** 2 * a * (1 - a) / n for p, a, h in zip(ps, accs, has_path) if h and a is not None)
        out[s] = var ** 0.5
    return out


def float_experiment(p: dict[str, Any], preset: str) -> None:
    """The float columns, from ``host.experiments average`` (or a note saying how to produce them)."""
    # a fresh `host.experiments average` run first, else the committed results (docs/results/paper)
    candidates = [REPO / "build" / "experiments" / f"average_accuracy_{preset}.json",
                  REPO / "docs" / "results" / "paper" / preset / f"average_accuracy_{preset}.json"]
    f = next((c for c in candidates if c.exists()), candidates[0])
    if f.exists():
        e = json.loads(f.read_text())
        p["float_source"] = rel(f)
        train = e.get("train") or {}
        p["float_budget"] = {"epochs": train.get("epochs"), "train_samples": (e.get("samples") or {}).get("train")}
        p["dataset"] = e.get("dataset")
        p["float_runs"] = e.get("runs")
        p["path_probability"] = e.get("path_probability")
        p["path_probability_no_skips"] = e.get("path_probability_no_skips")
        for s, v in e.get("schemes", {}).items():
            caps = [r.get("cap") for r in v.get("runs", []) if r.get("cap")]
            p["float"][s] = {"mean": v["mean"], "std": v.get("std"),
                             "cap": {st: statistics.fmean(c[st] for c in caps) for st in caps[0]} if caps else None}
    else:
        p["notes"].append(f"float: {rel(f)} absent (run `python -m host.experiments average --preset {preset}`)")


def host_columns(p: dict[str, Any], scheme: str, d: Path) -> dict[str, Any]:
    """The build's own float and int8 accuracies per failure configuration, averaged per setting; returns the
    build's evaluation.json (its configurations and probabilities, which the boards column needs too)."""
    man = load_manifest(d)
    ev = json.loads((d / "evaluation.json").read_text())
    st = man.stages.nodes
    acc8 = st.int8_accuracy if st else None
    accf = st.float_accuracy if st else None
    samples = st.int8_eval_samples if st else None
    if accf:
        g = ev["random_guess"]
        fa = [a if a is not None else g for a in accf]
        p.setdefault("float_same_samples", {})[scheme] = {
            "average": {s: sum(pr * a for pr, a in zip(ev["config_probability"][s], fa))
                        / sum(ev["config_probability"][s]) for s in ev["config_probability"]},
            "cap": {s: _cap(accf, ev["has_path"], ev["path_probability"][s], g) for s in ev["config_probability"]},
            "se": _avg_se(accf, ev["has_path"], ev["config_probability"], samples),
            "samples": samples, "per_config": accf}
    if acc8:
        g = ev["random_guess"]
        accs = [a if a is not None else g for a in acc8]
        avg = {s: sum(pr * a for pr, a in zip(ev["config_probability"][s], accs))
               / sum(ev["config_probability"][s]) for s in ev["config_probability"]}
        cap = {s: _cap(acc8, ev["has_path"], ev["path_probability"][s], g) for s in avg}
        p["int8_host"][scheme] = {"average": avg, "cap": cap, "per_config": acc8,
                                  "se": _avg_se(acc8, ev["has_path"], ev["config_probability"],
                                                samples),
                                  "samples": samples, "build": rel(d),
                                  "float_same_build": ev["average"], "float_cap_same_build": ev["cap"]}
    return ev


def boards_column(h: dict[str, Any], ev: dict[str, Any], d: Path) -> dict[str, Any]:
    """One harness sweep averaged like the host columns (per configuration, then per setting)."""
    g = ev["random_guess"]
    per_cfg = {}
    for r in h.get("runs", []):
        per_cfg[r["config"]["bits"]] = r.get("accuracy", {}).get("boards")
    configs_bits = ["".join(map(str, c)) for c in ev["configs"]]
    accs = [per_cfg.get(b) for b in configs_bits]
    cap = {s: _cap(accs, ev["has_path"], ev["path_probability"][s], g) for s in ev["path_probability"]}
    bit = [r.get("bit_exact", {}) for r in h.get("runs", [])]
    return {
        "average": {s: v.get("boards") for s, v in h["sweep"].items()},
        "int8_host_same_samples": {s: v.get("int8_host") for s, v in h["sweep"].items()},
        "complete": all(v.get("complete", True) for v in h["sweep"].values()),
        "cap": cap, "per_config": dict(zip(configs_bits, accs)), "samples": h.get("samples"),
        "se": _avg_se(accs, ev["has_path"], ev["config_probability"], h.get("samples")),
        "bit_exact": {"compared": sum(b.get("compared", 0) for b in bit),
                      "identical": sum(b.get("identical", 0) for b in bit)},
        "wall_s": h.get("_bench", {}).get("wall_s"), "build": rel(d)}


def section_resilience(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """Every preset (and the health stand-in, float only): float, host int8 and boards columns per scheme."""
    H = harness_runs(args, R) if "boards" in args.resilience_sources else {"sweeps": {}, "errors": {}}
    res: dict[str, Any] = {"presets": {}, "errors": {}}
    presets = list(PRESETS) + ["health"]
    dirs = build_dirs(R)
    for preset in presets:
        p: dict[str, Any] = {"float": {}, "int8_host": {}, "boards": {}, "notes": []}
        float_experiment(p, preset)
        for scheme in SCHEMES:
            d = dirs.get(f"{preset}/{scheme}")
            if d is None:
                continue
            ev = host_columns(p, scheme, d)
            h = H.get("sweeps", {}).get(f"{preset}/{scheme}")
            if h and h.get("sweep"):
                p["boards"][scheme] = boards_column(h, ev, d)
            elif f"{preset}/{scheme}" in H.get("errors", {}):
                p["notes"].append(f"boards {scheme}: {H['errors'][f'{preset}/{scheme}']}")
        res["presets"][preset] = p
    return res

