"""Sections ``builds`` and ``toolchain``: host.build runs (which every other section measures) and the wall
time of the host tools (each host.build stage, ``codegen generate`` on ResNet-8)."""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import time
from pathlib import Path
from typing import Any

from bench_common import (Manifest, PRESETS, PY, SCHEMES, bench_build_dir, has_manifest, load_manifest, log,
                          median, rel, run_cmd, tail)


def _build_timings(manifest: Manifest, wall: float) -> dict[str, float | None]:
    """Stage wall times of one build, named as the toolchain table shows them."""
    t = manifest.timings_s
    nodes, fw = manifest.stages.nodes, manifest.stages.firmware
    nt = nodes.timings_s if nodes else {}
    out: dict[str, float | None] = {
        "data": t.data, "train (cached)": t.train, "evaluate": t.evaluate,
        "partition": nt.get("partition"), "quantize": nt.get("quantize"), "generate": nt.get("generate"),
    }
    if nodes is not None and all(v is not None for v in nt.values()):
        out["int8 evaluate"] = round(nodes.seconds - sum(nt.values()), 2)
    out["firmware"] = fw.seconds if fw else None
    out["process wall"] = round(wall, 2)
    return out


def run_build(preset: str, scheme: str, out: Path, logs: Path, int8_samples: int | None, tag: str,
              timeout: float = 1800, epochs: int | None = None) -> dict[str, Any]:
    """One ``host.build`` into a fresh ``out``; its stage timings and where its outputs are (``epochs``: instead
    of the preset's)."""
    if out.exists():
        shutil.rmtree(out)  # a fresh directory: no stale objects (the shared object cache still serves them)
    cmd = [PY, "-m", "host.build", "--preset", preset, "--scheme", scheme, "--out", out, "--quiet"]
    if int8_samples is not None:
        cmd += ["--int8-samples", str(int8_samples)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    rc, wall = run_cmd(cmd, logs / f"build-{tag}.log", timeout)
    if rc != 0 or not has_manifest(out):
        raise RuntimeError(f"host.build {preset}/{scheme} failed (exit {rc}): {tail(logs / f'build-{tag}.log')}")
    manifest = load_manifest(out)
    nodes = manifest.stages.nodes
    return {"dir": rel(out), "preset": preset, "scheme": scheme, "cached_model": manifest.stages.train.cached,
            "int8_eval_samples": nodes.int8_eval_samples if nodes else None,
            "timings_s": _build_timings(manifest, wall)}


def section_builds(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """fashion/resilinet ``--build-runs`` times (the stage medians), then every other preset/scheme once."""
    logs = args.work / "logs"
    res: dict[str, Any] = {"fashion_timing_runs": [], "dirs": {}}
    n = args.build_runs
    for k in range(n):
        last = k == n - 1
        out = bench_build_dir("fashion", "resilinet") if last else args.work / f"fashion-timing-{k + 1}"
        # Only the last run evaluates the int8 split on the whole test set (its accuracy is reported); the
        # earlier ones evaluate a few samples (that stage is timed per sample, not in the stage medians).
        samples = args.int8_samples if last else 200
        log(f"build fashion/resilinet run {k + 1}/{n} -> {rel(out)} (int8 samples: {samples or 'all'})")
        r = run_build("fashion", "resilinet", out, logs, samples, f"fashion-resilinet-{k + 1}")
        res["fashion_timing_runs"].append(r)
        log(f"  wall {r['timings_s']['process wall']} s; stages {r['timings_s']}")
    res["dirs"]["fashion/resilinet"] = rel(bench_build_dir("fashion", "resilinet"))
    schemes = SCHEMES if args.all_schemes else ("resilinet",)
    for preset in PRESETS:
        for scheme in schemes:
            if preset == "fashion" and scheme == "resilinet":
                continue
            out = bench_build_dir(preset, scheme)
            log(f"build {preset}/{scheme} -> {rel(out)}")
            try:
                r = run_build(preset, scheme, out, logs, args.int8_samples if scheme == "resilinet"
                              else args.int8_samples_other, f"{preset}-{scheme}")
                res["dirs"][f"{preset}/{scheme}"] = r["dir"]
                res.setdefault("other_builds", []).append(r)
                log(f"  wall {r['timings_s']['process wall']} s")
            except Exception as e:  # noqa: BLE001 -- one preset failing must not stop the others
                res.setdefault("errors", {})[f"{preset}/{scheme}"] = str(e)
                log(f"  FAILED: {e}")
    return res


# ================================================================================================ toolchain
def section_toolchain(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """Median wall time of each host.build stage (from the builds section) and of ``codegen generate``."""
    from host.paths import shared_models_dir

    res: dict[str, Any] = {"build_stages": {}, "errors": {}}
    runs = R.get("builds", {}).get("fashion_timing_runs", [])
    if runs:
        stages = list(runs[0]["timings_s"])
        res["build_stages"] = {s: {"median_s": median([r["timings_s"].get(s) for r in runs]),
                                   "runs_s": [r["timings_s"].get(s) for r in runs]} for s in stages}
        last = runs[-1]
        n8 = last.get("int8_eval_samples")
        t8 = last["timings_s"].get("int8 evaluate")
        res["int8_evaluate_per_1000_samples_s"] = t8 / n8 * 1000 if t8 and n8 else None
        res["int8_evaluate_full_run"] = {"samples": n8, "seconds": t8}
        res["build_runs"] = len(runs)
    else:
        res["errors"]["build_stages"] = "no host.build runs in this session (section builds skipped or failed)"
    try:
        res["object_cache"] = object_cache_timing(args.work / "object-cache")
    except Exception as e:  # noqa: BLE001 -- the codegen timing below must still run
        res["errors"]["object_cache"] = str(e)
    root = shared_models_dir()
    model = root / "mlperf_tiny" / "ic_resnet8_int8.tflite" if root else None
    if model is None or not model.exists():
        res["errors"]["codegen"] = "ResNet-8 model not found"
        return res
    walls, inproc = [], []
    out = args.work / "codegen-generate"
    for k in range(args.generate_runs):
        if out.exists():
            shutil.rmtree(out)
        rc, wall = run_cmd([PY, "-m", "codegen", "generate", model, "-o", out], args.work / "logs" /
                           f"codegen-generate-{k + 1}.log", 600)
        if rc != 0:
            res["errors"]["codegen"] = f"codegen generate exit {rc}"
            break
        walls.append(wall)
        m = re.search(r"generated in ([\d.]+) s", (args.work / "logs" / f"codegen-generate-{k + 1}.log").read_text())
        if m:
            inproc.append(float(m.group(1)))
    res["codegen_generate_resnet8"] = {"runs": len(walls), "median_wall_s": median(walls), "walls_s": walls,
                                       "median_reported_s": median(inproc), "reported_s": inproc}
    log(f"codegen generate ResNet-8: median {median(walls)} s wall, {median(inproc)} s reported")
    return res



def _firmware_stage(build: Path, dest: Path) -> dict[str, float]:
    """The firmware stage of a copy of ``build`` (its images removed) in ``dest``: wall and compiler CPU."""
    from host.deploy.firmware_stage import build_firmware
    from host.deploy.manifest import read_manifest

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(build, dest, ignore=shutil.ignore_patterns("fw", "pio", "model.keras", "qemu", "harness"))
    manifest = read_manifest(dest, stage="nodes")
    c0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    build_firmware(manifest, dest, log=lambda _: None)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": round(time.monotonic() - t0, 2),
            "compiler_cpu_s": round(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime, 2)}


def object_cache_timing(work: Path) -> dict[str, Any]:
    """The firmware stage of build/bench-fashion with an empty object cache, then warm (another directory), then
    the first directory rebuilt from the warm cache: its images must equal the cold ones byte for byte."""
    build = bench_build_dir("fashion", "resilinet")
    if not has_manifest(build):
        raise RuntimeError(f"{rel(build)} missing (section builds skipped or failed)")
    cache, saved = work / "cache", os.environ.get("RESILINET_CACHE")
    if cache.exists():
        shutil.rmtree(cache)
    os.environ["RESILINET_CACHE"] = str(cache)
    try:
        cold = _firmware_stage(build, work / "cold")
        images = {p: p.read_bytes() for p in sorted((work / "cold" / "nodes").glob("*/fw/*/node.*"))
                  if p.suffix in (".elf", ".bin", ".map")}
        warm = _firmware_stage(build, work / "warm")
        again = _firmware_stage(build, work / "cold")  # the same path afresh, objects from the warm cache
        differ = [rel(p) for p, data in images.items() if not p.exists() or p.read_bytes() != data]
    finally:
        if saved is None:
            os.environ.pop("RESILINET_CACHE", None)
        else:
            os.environ["RESILINET_CACHE"] = saved
    nodes = len({p.parent for p in images})
    log(f"object cache: firmware stage ({nodes} nodes) cold {cold}, warm {warm}; "
        f"{len(images) - len(differ)}/{len(images)} image files identical")
    return {"nodes": nodes, "cold": cold, "warm": warm, "rebuilt_same_dir": again, "files_compared": len(images),
            "files_differing": differ}
