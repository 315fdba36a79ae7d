"""The emulated boards: ``host.harness`` runs shared by the ``links`` section (latency, bytes on the wire) and the
``resilience`` section (accuracy under every failure configuration). Each build is swept once per bench run."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench_common import PY, build_dirs, has_firmware, log, run_cmd, tail


def run_harness(build: Path, out: Path, logs: Path, tag: str, samples: int, sweep: bool, window: int | None,
                timeout: float, extra: list[str] | None = None) -> dict[str, Any]:
    """One ``host.harness`` run on a build; its JSON report, plus how the bench ran it (``_bench``)."""
    js = out / f"{tag}.json"
    if js.exists():
        js.unlink()
    cmd = [PY, "-m", "host.harness", "--build", build, "--samples", str(samples), "--json", js,
           "--out", out / tag, "--quiet"]
    if sweep:
        cmd.append("--sweep")
    if window is not None:
        cmd += ["--window", str(window)]
    cmd += list(extra or [])
    rc, wall = run_cmd(cmd, logs / f"harness-{tag}.log", timeout)
    if not js.exists():
        raise RuntimeError(f"host.harness exit {rc}, no JSON written: {tail(logs / f'harness-{tag}.log')}")
    d = json.loads(js.read_text())
    d["_bench"] = {"exit": rc, "wall_s": round(wall, 1), "command": " ".join(map(str, cmd[1:]))}
    return d


def _harness_dir(args: argparse.Namespace) -> Path:
    """Where the harness reports of this run go (the report points the reader there for the raw figures)."""
    return args.work / "harness"


def harness_runs(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """Sweep every board build once (shared by the links and resilience sections)."""
    if "harness" in R:
        return R["harness"]
    res: dict[str, Any] = {"sweeps": {}, "latency": {}, "errors": {}}
    logs = args.work / "logs"
    for key, d in build_dirs(R).items():
        preset, scheme = key.split("/")
        if not has_firmware(d):
            res["errors"][key] = "build has no firmware images"
            continue
        tag = f"{preset}-{scheme}"
        log(f"harness --sweep {key} ({args.harness_samples} samples per configuration)")
        try:
            res["sweeps"][key] = run_harness(d, _harness_dir(args), logs, f"sweep-{tag}", args.harness_samples,
                                             True, None, timeout=args.harness_timeout)
            log(f"  done in {res['sweeps'][key]['_bench']['wall_s']} s: {res['sweeps'][key].get('sweep')}")
        except Exception as e:  # noqa: BLE001
            res["errors"][key] = f"{type(e).__name__}: {e}"
            log(f"  FAILED: {e}")
            continue
        if scheme == "resilinet":
            log(f"harness {key}: one sample at a time ({args.latency_samples} samples, nothing failed)")
            try:
                res["latency"][preset] = run_harness(d, _harness_dir(args), logs, f"latency-{tag}",
                                                     args.latency_samples, False, 1, timeout=args.harness_timeout)
            except Exception as e:  # noqa: BLE001
                res["errors"][f"latency {preset}"] = f"{type(e).__name__}: {e}"
    R["harness"] = res
    return res


def none_failed_run(h: dict[str, Any]) -> dict[str, Any] | None:
    """The run of a harness report in which every node was up (a one-run report is that run)."""
    runs = h.get("runs", [])
    for r in runs:
        bits = r.get("config", {}).get("bits")
        if bits and set(bits) == {"1"}:
            return r
    return runs[-1] if len(runs) == 1 else None

