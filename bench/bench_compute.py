"""Section ``compute``: executed instructions per inference on QEMU mps2-an386 (Cortex-M4 + DSP).

``bench/kernel_instructions.py`` counts them exactly (-icount + CMSDK timer) for the three MLPerf Tiny models and
every node of the builds, once with the kernels' DSP path and once with their plain-C path; ``codegen verify
--target qemu`` cross-checks the MLPerf totals in a full run. The DSP run also estimates Cortex-M4 cycles
(codegen/cycles.py: our QEMU plugin, docs/cycle-estimate.md) at 0 wait states, with our boards' flash wait
states, and with those of the NUCLEO-L4R5ZI the published MLPerf Tiny figures were measured on.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench_common import (BOUND_PER_MAC, KERNELS, MLPERF, PY, REPO, TFLM_INSTRUCTIONS, TFLM_REF_INSTRUCTIONS,
                          resilinet_builds, log, run_cmd)


def measure_instructions(model: Path, work: Path, plain_c: bool, kernels: Path = KERNELS,
                         cycles: bool = False, wide_fc: bool = False) -> dict[str, Any]:
    """kernel_instructions.measure with the DSP path, or with the same kernels' portable C path (``wide_fc``:
    codegen's ``--wide-fc``, int16 fully connected weights)."""
    import kernel_instructions  # bench/kernel_instructions.py; imported here, it pulls in codegen and numpy
    from codegen.ops.context import LoweringOptions

    extra = ("-U__ARM_FEATURE_DSP",) if plain_c else ()
    return kernel_instructions.measure(model, kernels, work, check=True, extra_flags=extra, cycles=cycles,
                                       options=LoweringOptions(wide_fc_weights=wide_fc))


def cycle_figures(window: dict[str, Any]) -> dict[str, Any]:
    """Estimated cycles of one window (kernel_instructions' ``"cycles"``) at 0 WS and per flash setting."""
    from codegen.cycles import CLASSES, CycleWindow, ClassCost, board_flash_settings, flash_settings_for

    w = CycleWindow(**{**window, "classes": tuple(ClassCost(**c) for c in window["classes"])})
    # The published MLPerf Tiny latencies were measured on a NUCLEO-L4R5ZI at 120 MHz: 5 flash wait states
    # (RM0432, range 1 boost). Not a board of ours, so it is named here, beside the figures it qualifies.
    settings = (*board_flash_settings(), *flash_settings_for("L4R5ZI", 5))
    return {"cycles_0ws": w.cycles, "window_instructions": w.instructions,
            "cycles_per_instruction": w.cycles / w.instructions if w.instructions else None,
            "by_flash_setting": {s.label: w.cycles_at(s) for s in settings},
            "flash_reads": w.flash_reads, "flash_art_misses": w.flash_misses,
            "classes": {c: {"count": w.cost_of(c).count, "cycles": w.cost_of(c).cycles} for c in CLASSES}}


def per_category(result: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Ops, MACs, instructions, output elements (and estimated cycles, when measured) summed per op category."""
    cats: dict[str, dict[str, int]] = {}
    for op in result["ops"]:
        if op["instructions"] <= 3 and op["macs"] == 0:
            continue  # aliases: no code
        c = cats.setdefault(op["category"], {"ops": 0, "macs": 0, "instructions": 0, "elements": 0, "cycles": 0})
        c["ops"] += 1
        c["macs"] += op["macs"]
        c["instructions"] += op["instructions"]
        c["elements"] += op.get("elements", 0)
        c["cycles"] += op.get("cycles", 0)  # 0 WS, with the lap marker's few cycles (kernel_instructions)
    return cats


def measure_pair(model: Path, work: Path, label: str, kernels: Path) -> dict[str, Any]:
    """Both builds of one model (DSP and plain C): totals, ratios, and per category against the SMLAD bound."""
    t0 = time.perf_counter()
    dsp = measure_instructions(model, work / "dsp", plain_c=False, kernels=kernels, cycles=True)
    plain = measure_instructions(model, work / "plain", plain_c=True, kernels=kernels)
    macs = dsp["macs"]
    cd, cp = per_category(dsp), per_category(plain)
    cats = {}
    for cat, c in cd.items():
        p = cp.get(cat, {})
        cats[cat] = {**c, "share": c["instructions"] / dsp["total"] if dsp["total"] else None,
                     "ins_per_mac": c["instructions"] / c["macs"] if c["macs"] else None,
                     "plain_c_instructions": p.get("instructions"),
                     "plain_c_ins_per_mac": p["instructions"] / c["macs"] if c["macs"] and p else None,
                     "excess_over_bound": c["instructions"] - BOUND_PER_MAC * c["macs"]}
    log(f"  {label}: {dsp['total']:,} instructions (DSP), {plain['total']:,} (plain C), {macs:,} MACs, "
        f"outputs == tflite_micro: {dsp['check']} / {plain['check']} ({time.perf_counter() - t0:.1f} s)")
    return {"model": label, "macs": macs, "instructions_dsp": dsp["total"], "instructions_plain_c": plain["total"],
            "ins_per_mac": dsp["total"] / macs if macs else None,
            "plain_c_ins_per_mac": plain["total"] / macs if macs else None,
            "plain_over_dsp": plain["total"] / dsp["total"] if dsp["total"] else None,
            "x_bound": (dsp["total"] / macs) / BOUND_PER_MAC if macs else None,
            "bit_exact_dsp": dsp["check"], "bit_exact_plain_c": plain["check"],
            "cycles": cycle_figures(dsp["cycles"]),
            "categories": cats, "ops_dsp": dsp["ops"], "ops_plain_c": plain["ops"]}


def qemu_verify_crosscheck(model: Path, logs: Path) -> dict[str, Any]:
    """``python -m codegen verify MODEL --target qemu``: instructions per inference (SysTick, +-40)."""
    lp = logs / f"verify-qemu-{model.stem}.log"
    rc, wall = run_cmd([PY, "-m", "codegen", "verify", model, "--target", "qemu", "--samples", "2"], lp, 900)
    text = lp.read_text(errors="replace")
    m = re.search(r"([\d,]+) instructions per inference", text)
    return {"exit": rc, "instructions": int(m.group(1).replace(",", "")) if m else None,
            "bit_exact": "bit-exact with tflite_micro" in text, "wall_s": round(wall, 1)}


def _compile_all(kdir: Path, extra: tuple[str, ...]) -> str | None:
    """Compile every kernel source for the M4 (objects discarded); return the first error, or None."""
    from codegen.footprint import CORTEX_M4_FLAGS

    procs = [(c, subprocess.Popen(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, *extra, "-O2", "-std=c99", "-I", str(kdir),
                                   "-c", str(c), "-o", os.devnull], stderr=subprocess.PIPE, text=True))
             for c in sorted(kdir.glob("*.c"))]
    errs = []
    for c, p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            errs.append(f"{c.name}: {err.strip().splitlines()[-1] if err.strip() else 'failed'}")
    return "; ".join(errs) or None


def snapshot_kernels(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """Copy firmware/cmsis_nn once per run so every measurement uses the same kernels.

    The kernels are edited by others while benchmarks run: a copy that does not compile (a half-saved edit) is
    retried, then the committed version (git HEAD) is measured instead, and the report says so."""
    if "kernels" in R and Path(R["kernels"]["dir"]).is_dir():
        return R["kernels"]
    d = args.work / "kernels"
    err = None
    for attempt in range(4):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for f in KERNELS.iterdir():
            if f.suffix in (".c", ".h"):
                shutil.copy2(f, d / f.name)
        err = _compile_all(d, ()) or _compile_all(d, ("-U__ARM_FEATURE_DSP",))
        if err is None:
            source = "working tree"
            break
        log(f"kernel snapshot does not compile ({err}); retrying in 30 s")
        time.sleep(30)
    else:
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        names = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", "HEAD", "firmware/cmsis_nn/"],
                               capture_output=True, text=True, check=True).stdout.split()
        for n in names:
            if n.endswith((".c", ".h")):
                blob = subprocess.run(["git", "-C", str(REPO), "show", f"HEAD:{n}"], capture_output=True,
                                      check=True).stdout
                (d / Path(n).name).write_bytes(blob)
        source = f"git HEAD (the working tree did not compile: {err})"
    h = hashlib.sha256()
    for f in sorted(d.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    R["kernels"] = {"dir": str(d), "source": source, "sha256": h.hexdigest()[:16]}
    log(f"kernels: {source}, sha256 {R['kernels']['sha256']}")
    return R["kernels"]


def _wide_fc_figures(model: Path, work: Path, kernels: Path) -> dict[str, Any]:
    """Instructions (DSP and plain C) and flash of ``model`` generated with ``--wide-fc``."""
    from codegen.emit import build_module
    from codegen.ops.context import LoweringOptions

    dsp = measure_instructions(model, work / "dsp", plain_c=False, kernels=kernels, cycles=True, wide_fc=True)
    plain = measure_instructions(model, work / "plain", plain_c=True, kernels=kernels, wide_fc=True)
    wide = build_module(model, options=LoweringOptions(wide_fc_weights=True))
    return {"instructions_dsp": dsp["total"], "instructions_plain_c": plain["total"], "macs": dsp["macs"],
            "cycles_0ws": cycle_figures(dsp["cycles"])["cycles_0ws"],
            "check": dsp["check"] and plain["check"], "weight_bytes": wide.weight_bytes,
            "weight_bytes_int8": build_module(model).weight_bytes}


def section_compute(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    from host.paths import shared_models_dir

    work = args.work / "compute"
    logs = args.work / "logs"
    res: dict[str, Any] = {"mlperf": {}, "nodes": {}, "errors": {}}
    kernels = Path(snapshot_kernels(args, R)["dir"])
    root = shared_models_dir()
    if root is None or not (root / "mlperf_tiny").is_dir():
        res["errors"]["mlperf"] = "shared models directory (host.paths.shared_models_dir()) not found"
    else:
        for m in MLPERF:
            path = root / "mlperf_tiny" / f"{m}.tflite"
            log(f"compute {m}")
            try:
                r = measure_pair(path, work / m, m, kernels)
                r["tflm_cmsis_nn_instructions"] = TFLM_INSTRUCTIONS[m]
                r["ours_over_tflm"] = r["instructions_dsp"] / TFLM_INSTRUCTIONS[m]
                r["tflm_reference_kernels_instructions"] = TFLM_REF_INSTRUCTIONS[m]
                if not args.quick:
                    r["verify_qemu"] = qemu_verify_crosscheck(path, logs)
                res["mlperf"][m] = r
            except Exception as e:  # noqa: BLE001
                res["errors"][m] = f"{type(e).__name__}: {e}"
                log(f"  FAILED: {e}")
        # The autoencoder is all FC: also with codegen --wide-fc (int16 FC weights, twice their flash).
        m = "ad_autoencoder_int8"
        log(f"compute {m} --wide-fc")
        try:
            res["mlperf_wide_fc"] = {m: _wide_fc_figures(root / "mlperf_tiny" / f"{m}.tflite", work / f"{m}-wide-fc",
                                                         kernels)}
        except Exception as e:  # noqa: BLE001
            res["errors"][f"{m} --wide-fc"] = f"{type(e).__name__}: {e}"
            log(f"  FAILED: {e}")
    # The VWW-style MobileNet (fourth model) and the per-shape depthwise table: bench_depthwise.py.
    from bench_depthwise import add_depthwise_figures

    add_depthwise_figures(res, work, kernels, measure_pair)
    for preset, d, man in resilinet_builds(R):
        res["nodes"][preset] = {}
        for node, nd in man.nodes.items():
            tfl = d / nd.require_model().tflite
            log(f"compute {preset}/{node}")
            try:
                res["nodes"][preset][node] = measure_pair(tfl, work / f"{preset}-{node}", f"{preset}/{node}", kernels)
            except Exception as e:  # noqa: BLE001
                res["errors"][f"{preset}/{node}"] = f"{type(e).__name__}: {e}"
                log(f"  FAILED: {e}")
    return res

