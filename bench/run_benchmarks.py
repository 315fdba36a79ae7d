#!/usr/bin/env python3
"""``make bench``: measure compute, memory, links, resilience and the host toolchain; write BENCHMARKS.md/.json.

    .venv/bin/python bench/run_benchmarks.py [--quick] [--only SECTION ...] [--skip SECTION ...]
                                              [--build-runs N] [--harness-samples N] [--all-schemes]
                                              [--render-only]

Sections (each one fails on its own: the report then says "not measured" and why):

* ``builds``     -- ``host.build --preset fashion --scheme resilinet`` N times (fresh directory each run, cached
                    model; the last run is ``build/bench-fashion`` with the int8 evaluation on the whole test set)
                    and once ``--preset har`` into ``build/bench-har``. Feeds every other section.
* ``compute``    -- executed instructions per inference on QEMU mps2-an386 (Cortex-M4 + DSP) with
                    ``bench/kernel_instructions.py`` (exact: -icount + CMSDK timer), for the three MLPerf Tiny
                    models and every node of the two builds; DSP kernels and the same kernels' plain-C path
                    (``-U__ARM_FEATURE_DSP``: ``resilinet_dsp.h`` then sets ``RNN_HAS_DSP 0``); cross-check with
                    ``python -m codegen verify --target qemu``.
* ``memory``     -- per node: the ELF's sections and its link map (weights, code by origin, arena, buffers,
                    stack); per MLPerf model: the generated module's arena vs its lower bound and vs TFLM's.
* ``links``      -- bytes per inference per link, wire overhead (host.net.protocol framing), end-to-end latency on
                    the emulated boards (``host.harness``) and projected for real UARTs.
* ``resilience`` -- the paper's table: float (build/experiments), int8 host (build manifests), boards
                    (``host.harness --sweep``), next to the path-probability cap.
* ``toolchain``  -- wall time of each host.build stage (median over the runs), ``codegen generate`` on ResNet-8.

Timings are medians of repeated runs; comparisons are ratios measured in the same run. Not part of make test.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import inspect
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

PY = sys.executable
SECTIONS = ("builds", "compute", "memory", "links", "resilience", "toolchain")
PRESETS = ("fashion", "har")
SCHEMES = ("vanilla", "dfg", "resilinet", "resilinet_plus")
SETTINGS = ("No failure", "Normal", "Poor", "Hazardous")
MLPERF = ("ic_resnet8_int8", "kws_dscnn_int8", "ad_autoencoder_int8")
KERNELS = REPO / "firmware" / "cmsis_nn"

# ---- reference figures (docs: /work/shared/docs/toolchain-facts.md and cmsis-nn.md) ------------------------
#: TFLM + CMSIS-NN on QEMU mps2-an386, instructions per inference, counted the same way (toolchain-facts.md).
TFLM_INSTRUCTIONS = {"ic_resnet8_int8": 29_863_986, "kws_dscnn_int8": 7_700_571, "ad_autoencoder_int8": 583_398}
#: TFLM reference kernels (no CMSIS-NN), same measurement.
TFLM_REF_INSTRUCTIONS = {"ic_resnet8_int8": 824_062_446, "kws_dscnn_int8": 198_639_077,
                         "ad_autoencoder_int8": 1_952_816}
#: TFLM arena: smallest that works (toolchain-facts.md) and the total quoted in issue 7.
TFLM_ARENA_MIN = {"ic_resnet8_int8": 55_000, "kws_dscnn_int8": 22_824, "ad_autoencoder_int8": 3_012}
TFLM_ARENA_TOTAL = {"ic_resnet8_int8": 55_984, "kws_dscnn_int8": 24_272, "ad_autoencoder_int8": 3_984}
#: One SMLAD = two 16x16 MACs per cycle on a Cortex-M4: the bound is 0.5 cycles per MAC.
BOUND_PER_MAC = 0.5
BAUDS = (115_200, 921_600)
BITS_PER_BYTE = 10  # start + 8 data + stop


# ================================================================================================ helpers
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run_cmd(cmd: list[str], log_path: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int, float]:
    """Run ``cmd`` (output to ``log_path``); return (exit code, wall seconds)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    e = dict(os.environ)
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    e.update(env or {})
    t0 = time.perf_counter()
    with open(log_path, "w") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        try:
            p = subprocess.run(list(map(str, cmd)), cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=e,
                               timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n[bench] timed out after {timeout} s\n")
            rc = -9
    return rc, time.perf_counter() - t0


def tail(path: Path, n: int = 6) -> str:
    try:
        return " | ".join(l.strip() for l in path.read_text(errors="replace").splitlines()[-n:] if l.strip())
    except OSError:
        return ""


def first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0].strip() if text else None
    except (OSError, subprocess.SubprocessError):
        return None


def rel(p: Path | str) -> str:
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)


# ================================================================================================ machine
def machine_info() -> dict[str, Any]:
    import importlib.metadata as md

    def ver(*names: str) -> str | None:
        for n in names:
            try:
                return f"{n} {md.version(n)}"
            except md.PackageNotFoundError:
                continue
        return None

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True,
                               text=True).stdout.strip().splitlines()
    except OSError:
        dirty = []
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu_model": cpu, "platform": platform.platform(),
        "load_average_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "tensorflow": ver("tensorflow-cpu", "tensorflow"), "tflite_micro": ver("tflite-micro"),
        "ai_edge_litert": ver("ai-edge-litert"), "numpy": ver("numpy"),
        "arm_gcc": first_line(["arm-none-eabi-gcc", "--version"]), "host_gcc": first_line(["gcc", "--version"]),
        "qemu": first_line(["qemu-system-arm", "--version"]),
        "git_commit": git, "git_uncommitted_paths": len(dirty),
    }


# ================================================================================================ builds
def _build_timings(manifest: dict[str, Any], wall: float) -> dict[str, float | None]:
    t = manifest.get("timings_s", {})
    nodes = manifest.get("stages", {}).get("nodes", {})
    nt = nodes.get("timings_s", {})
    fw = manifest.get("stages", {}).get("firmware", {})
    out: dict[str, float | None] = {
        "data": t.get("data"), "train (cached)": t.get("train"), "evaluate": t.get("evaluate"),
        "partition": nt.get("partition"), "quantize": nt.get("quantize"), "generate": nt.get("generate"),
    }
    if nodes.get("seconds") is not None and all(v is not None for v in nt.values()):
        out["int8 evaluate"] = round(nodes["seconds"] - sum(nt.values()), 2)
    out["firmware"] = fw.get("seconds")
    out["process wall"] = round(wall, 2)
    return out


def run_build(preset: str, scheme: str, out: Path, logs: Path, int8_samples: int | None, tag: str,
              timeout: float = 1800) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)  # a fresh directory: the firmware stage compiles everything (no stale objects)
    cmd = [PY, "-m", "host.build", "--preset", preset, "--scheme", scheme, "--out", out, "--quiet"]
    if int8_samples is not None:
        cmd += ["--int8-samples", str(int8_samples)]
    rc, wall = run_cmd(cmd, logs / f"build-{tag}.log", timeout)
    man = out / "manifest.json"
    if rc != 0 or not man.exists() or "firmware" not in json.loads(man.read_text()).get("stages", {}):
        # the firmware sources are edited by others while we run: a half-saved file fails a build; retry once
        log(f"  build failed (exit {rc}): {tail(logs / f'build-{tag}.log', 3)}; retrying in 60 s")
        time.sleep(60)
        shutil.rmtree(out, ignore_errors=True)
        rc, wall = run_cmd(cmd, logs / f"build-{tag}-retry.log", timeout)
        tag = f"{tag}-retry"
    if rc != 0 or not man.exists():
        raise RuntimeError(f"host.build {preset}/{scheme} failed (exit {rc}): {tail(logs / f'build-{tag}.log')}")
    manifest = json.loads(man.read_text())
    return {"dir": rel(out), "preset": preset, "scheme": scheme, "cached_model": manifest["stages"]["train"]["cached"],
            "int8_eval_samples": manifest.get("stages", {}).get("nodes", {}).get("int8_eval_samples"),
            "timings_s": _build_timings(manifest, wall)}


def section_builds(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    logs = args.work / "logs"
    res: dict[str, Any] = {"fashion_timing_runs": [], "dirs": {}}
    n = args.build_runs
    for k in range(n):
        last = k == n - 1
        out = REPO / "build" / "bench-fashion" if last else args.work / f"fashion-timing-{k + 1}"
        # Only the last run evaluates the int8 split on the whole test set (its accuracy is reported); the
        # earlier ones evaluate a few samples (that stage is timed per sample, not in the stage medians).
        samples = args.int8_samples if last else 200
        log(f"build fashion/resilinet run {k + 1}/{n} -> {rel(out)} (int8 samples: {samples or 'all'})")
        r = run_build("fashion", "resilinet", out, logs, samples, f"fashion-resilinet-{k + 1}")
        res["fashion_timing_runs"].append(r)
        log(f"  wall {r['timings_s']['process wall']} s; stages {r['timings_s']}")
    res["dirs"]["fashion/resilinet"] = rel(REPO / "build" / "bench-fashion")
    schemes = SCHEMES if args.all_schemes else ("resilinet",)
    for preset in PRESETS:
        for scheme in schemes:
            if preset == "fashion" and scheme == "resilinet":
                continue
            suffix = "" if scheme == "resilinet" else f"-{scheme}"
            out = REPO / "build" / f"bench-{preset}{suffix}"
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


def build_dirs(R: dict[str, Any]) -> dict[str, Path]:
    """The build directories of this run, or those a previous run left (for --only)."""
    dirs = {k: REPO / v for k, v in R.get("builds", {}).get("dirs", {}).items()}
    for preset in PRESETS:
        for scheme in SCHEMES:
            suffix = "" if scheme == "resilinet" else f"-{scheme}"
            p = REPO / "build" / f"bench-{preset}{suffix}"
            if f"{preset}/{scheme}" not in dirs and (p / "manifest.json").exists():
                dirs[f"{preset}/{scheme}"] = p
    return {k: v for k, v in dirs.items() if (v / "manifest.json").exists()}


def load_manifest(d: Path) -> dict[str, Any]:
    return json.loads((d / "manifest.json").read_text())


# ================================================================================================ compute
def _ki():
    import kernel_instructions as ki  # bench/kernel_instructions.py (another agent's tool; reused, not copied)
    return ki


def measure_instructions(model: Path, work: Path, plain_c: bool, kernels: Path = KERNELS) -> dict[str, Any]:
    """kernel_instructions.measure with the DSP path, or with the same kernels' portable C path."""
    ki = _ki()
    params = inspect.signature(ki.measure).parameters
    extra = ("-U__ARM_FEATURE_DSP",) if plain_c else ()
    for name in ("extra_flags", "cflags", "extra_cflags"):
        if name in params:
            return ki.measure(model, kernels, work, check=True, **{name: extra})
    saved = ki.CORTEX_M4_FLAGS
    try:
        ki.CORTEX_M4_FLAGS = tuple(saved) + extra
        return ki.measure(model, kernels, work, check=True)
    finally:
        ki.CORTEX_M4_FLAGS = saved


def per_category(result: dict[str, Any]) -> dict[str, dict[str, int]]:
    cats: dict[str, dict[str, int]] = {}
    for op in result["ops"]:
        if op["instructions"] <= 3 and op["macs"] == 0:
            continue  # aliases: no code
        c = cats.setdefault(op["category"], {"ops": 0, "macs": 0, "instructions": 0, "elements": 0})
        c["ops"] += 1
        c["macs"] += op["macs"]
        c["instructions"] += op["instructions"]
        c["elements"] += op.get("elements", 0)
    return cats


def _measure_pair(model: Path, work: Path, label: str, kernels: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    dsp = measure_instructions(model, work / "dsp", plain_c=False, kernels=kernels)
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
    import hashlib

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
                r = _measure_pair(path, work / m, m, kernels)
                r["tflm_cmsis_nn_instructions"] = TFLM_INSTRUCTIONS[m]
                r["ours_over_tflm"] = r["instructions_dsp"] / TFLM_INSTRUCTIONS[m]
                r["tflm_reference_kernels_instructions"] = TFLM_REF_INSTRUCTIONS[m]
                if not args.quick:
                    r["verify_qemu"] = qemu_verify_crosscheck(path, logs)
                res["mlperf"][m] = r
            except Exception as e:  # noqa: BLE001
                res["errors"][m] = f"{type(e).__name__}: {e}"
                log(f"  FAILED: {e}")
    for key, d in build_dirs(R).items():
        preset, scheme = key.split("/")
        if scheme != "resilinet":
            continue
        man = load_manifest(d)
        res["nodes"][preset] = {}
        for node, nd in man["nodes"].items():
            tfl = d / nd["tflite"]
            log(f"compute {preset}/{node}")
            try:
                res["nodes"][preset][node] = _measure_pair(tfl, work / f"{preset}-{node}", f"{preset}/{node}", kernels)
            except Exception as e:  # noqa: BLE001
                res["errors"][f"{preset}/{node}"] = f"{type(e).__name__}: {e}"
                log(f"  FAILED: {e}")
    return res


# ================================================================================================ memory
_OBJ_HASH = re.compile(r"-[0-9a-f]{8}\.o$")


def _origin(path: str, module: str) -> str:
    base = Path(path.split("(")[0]).name
    if ".a" in base and "(" in path:
        return "libc/libgcc"
    stem = _OBJ_HASH.sub("", base).removesuffix(".o")
    if stem == module:
        return "module"
    if stem.startswith(("arm_", "rnn_", "resilinet_nn")):
        return "kernels"
    if stem.startswith("node_"):
        return "runtime"
    if stem.startswith("link_"):
        return "link protocol"
    if stem.startswith(("board", "startup", "uart_", "clock_")):
        return "board support"
    return "other"


def parse_map(map_path: Path, module: str) -> dict[str, dict[str, int]]:
    """Bytes per (output section, origin[/kind]) from a GNU ld map: which object put what where."""
    text = map_path.read_text(errors="replace").splitlines()
    try:
        start = next(i for i, l in enumerate(text) if l.startswith("Linker script and memory map"))
    except StopIteration:
        return {}
    out: dict[str, dict[str, int]] = {}
    cur = None
    pending = None
    in_sec = re.compile(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    cont = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    out_sec = re.compile(r"^(\.\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)")

    def add(section: str, size: int, origin_file: str) -> None:
        if cur not in (".text", ".data", ".bss"):
            return
        origin = _origin(origin_file, module)
        kind = "data" if section.startswith((".rodata", ".data", ".bss", "COMMON")) else "code"
        if origin == "module" and cur == ".text":
            origin = "module weights+tables" if kind == "data" else "module code"
        out.setdefault(cur, {})
        out[cur][origin] = out[cur].get(origin, 0) + size

    for line in text[start + 1:]:
        if not line.strip():
            continue
        m = out_sec.match(line)
        if m or re.match(r"^\.\S+\s*$", line):
            cur = line.split()[0]
            pending = None
            continue
        if line.startswith(" *fill*"):
            parts = line.split()
            if len(parts) >= 3 and cur in (".text", ".data", ".bss"):
                out.setdefault(cur, {})
                out[cur]["alignment"] = out[cur].get("alignment", 0) + int(parts[2], 16)
            continue
        m = in_sec.match(line)
        if m and not m.group(4).startswith("0x"):
            add(m.group(1), int(m.group(3), 16), m.group(4))
            pending = None
            continue
        if pending is not None:
            m = cont.match(line)
            if m and "=" not in m.group(3):
                add(pending, int(m.group(2), 16), m.group(3))
            pending = None
            continue
        m = re.match(r"^ (\.\S+|COMMON)\s*$", line)
        if m:
            pending = m.group(1)
    return out


def elf_sections(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    secs = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            secs[parts[0]] = int(parts[1])
    return secs


def node_memory(build: Path, node: str, nd: dict[str, Any]) -> dict[str, Any]:
    fw = nd.get("firmware") or {}
    elf = build / fw["elf"]
    secs = elf_sections(elf)
    mp = parse_map(elf.with_suffix(".map"), nd.get("module", f"node_{node}"))
    flash = secs.get(".text", 0) + secs.get(".data", 0)
    text = mp.get(".text", {})
    code = {k: v for k, v in text.items() if k not in ("module weights+tables",)}
    ram_bss = secs.get(".bss", 0) + secs.get(".data", 0)
    arena = nd["arena_bytes"]
    return {
        "board": fw.get("board"), "elf": rel(elf), "sections": secs,
        "flash_bytes": flash, "flash_manifest": fw.get("flash_bytes"), "board_flash_bytes": fw.get("board_flash_bytes"),
        "weights_bytes": nd["weight_bytes"], "quant_param_bytes": nd["quant_param_bytes"],
        "module_rodata_from_map": text.get("module weights+tables"),
        "code_by_origin": code, "code_bytes": flash - text.get("module weights+tables",
                                                                 nd["weight_bytes"] + nd["quant_param_bytes"]),
        "ram_bytes": ram_bss + secs.get(".stack", 0), "ram_manifest": fw.get("ram_bytes"),
        "board_ram_bytes": fw.get("board_ram_bytes"),
        "arena_bytes": arena, "arena_lower_bound": nd.get("arena_lower_bound"), "scratch_bytes": nd.get("scratch_bytes"),
        "io_link_buffers_bytes": ram_bss - arena,
        "ram_by_origin": mp.get(".bss", {}), "stack_reserved_bytes": secs.get(".stack", 0),
        "model_io_bytes": sum(i["bytes"] for i in nd["inputs"]) + sum(o["bytes"] for o in nd["outputs"]),
    }


def mlperf_memory(model: Path, work: Path, kernels: Path) -> dict[str, Any]:
    from codegen.emit import build_module, write_module
    from codegen.footprint import CORTEX_M4_FLAGS, section_sizes, symbol_size

    mod = build_module(model)
    info = write_module(mod, work)
    obj = work / f"{info.name}.o"
    subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-O2", "-std=c99", "-I", str(kernels), "-I", str(work),
                    "-c", str(info.c_path), "-o", str(obj)], check=True, capture_output=True, text=True)
    sizes = section_sizes(obj)
    io = sum(i.nbytes for i in info.inputs) + sum(o.nbytes for o in info.outputs)
    name = model.stem
    arena = info.arena_bytes
    return {
        "macs": info.macs, "arena_bytes": arena, "arena_lower_bound": info.arena_lower_bound,
        "arena_over_lower_bound": arena / info.arena_lower_bound - 1 if info.arena_lower_bound else None,
        "scratch_bytes": info.scratch_bytes, "io_bytes": io, "arena_plus_io_bytes": arena + io,
        "arena_symbol_bytes": symbol_size(obj, f"{info.name}_arena"),
        "weights_bytes": info.weight_bytes, "quant_param_bytes": info.quant_param_bytes,
        "module_text": sizes.text, "module_rodata": sizes.rodata, "module_bss": sizes.bss,
        "tflm_arena_min": TFLM_ARENA_MIN[name], "tflm_arena_total": TFLM_ARENA_TOTAL[name],
        "arena_over_tflm_min": arena / TFLM_ARENA_MIN[name], "arena_over_tflm_total": arena / TFLM_ARENA_TOTAL[name],
        "arena_io_over_tflm_min": (arena + io) / TFLM_ARENA_MIN[name],
        "arena_io_over_tflm_total": (arena + io) / TFLM_ARENA_TOTAL[name],
    }


def section_memory(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    from host.paths import shared_models_dir

    res: dict[str, Any] = {"nodes": {}, "mlperf": {}, "errors": {}}
    for key, d in build_dirs(R).items():
        preset, scheme = key.split("/")
        if scheme != "resilinet":
            continue
        man = load_manifest(d)
        res["nodes"][preset] = {}
        for node, nd in man["nodes"].items():
            try:
                res["nodes"][preset][node] = node_memory(d, node, nd)
            except Exception as e:  # noqa: BLE001
                res["errors"][f"{preset}/{node}"] = f"{type(e).__name__}: {e}"
    root = shared_models_dir()
    for m in MLPERF:
        path = (root / "mlperf_tiny" / f"{m}.tflite") if root else None
        if path is None or not path.exists():
            res["errors"][m] = "model not found in the shared models directory"
            continue
        log(f"memory {m}")
        try:
            res["mlperf"][m] = mlperf_memory(path, args.work / "memory" / m, Path(snapshot_kernels(args, R)["dir"]))
        except Exception as e:  # noqa: BLE001
            res["errors"][m] = f"{type(e).__name__}: {e}"
    return res


# ================================================================================================ links
def frame_sizes(tensor_bytes: int, result: bool = False) -> dict[str, int]:
    """Bytes of one frame carrying ``tensor_bytes``: worst case (every byte non-zero) and all-zero tensor.

    A DATA frame carries the tensor alone (2-byte header); the final node's RESULT a 4-byte cycle count
    and the tensor (7-byte header)."""
    from host.net import protocol as P

    if result:
        payload = P.CYCLES_LEN + tensor_bytes
        worst = P.encoded_len_max(payload, P.FrameType.RESULT)
        frame = P.Frame(P.FrameType.RESULT, 1, 0, P.LINK_NONE, 1, P.build_sample_payload(1, bytes(tensor_bytes)))
    else:
        payload = tensor_bytes
        worst = P.encoded_len_max(payload)
        frame = P.Frame(P.FrameType.DATA, 1, 2, 1, 1, bytes(tensor_bytes))
    zeros = len(P.encode_frame(frame))
    return {"tensor": tensor_bytes, "payload": payload, "frame_worst": worst, "frame_zeros": zeros}


def deployment_graph(man: dict[str, Any]) -> dict[str, Any]:
    """Frames of one sample with nothing failed: who sends what to whom, and what each node waits for."""
    nodes = man["nodes"]
    frames = []  # (name, src, dst, tensor bytes)
    waits: dict[str, set[str]] = {n: set() for n in nodes}
    for n, nd in nodes.items():
        if nd["role"] == "sensor":
            b = sum(i["bytes"] for i in nd["inputs"])
            frames.append((f"host->{n}", "host", n, b))
            waits[n].add(f"host->{n}")
        for i in nd["inputs"]:
            if i.get("primary"):
                waits[n].add(i["primary"])
    for n, nd in nodes.items():
        for o in nd["outputs"]:
            for l in o.get("links", []):
                frames.append((l, n, man["links"][l]["dst"], man["links"][l]["bytes"]))
            if o.get("result"):
                frames.append((f"{n}->host", n, "host", o["bytes"]))
    return {"frames": frames, "waits": waits}


def simulate_latency(graph: dict[str, Any], compute_s: dict[str, float], baud: int, star: bool) -> dict[str, Any]:
    """One sample through the deployment, nothing failed, nothing else in flight.

    Star (as deployed with the host router): a frame crosses the producer's UART to the host, then the host
    forwards it on the consumer's UART once it has received all of it (store and forward, FIFO per consumer
    line). Direct: one wire per link, no host hop. A node sends its frames one after the other (one UART TX at
    a time) after computing, and computes once every primary input has arrived. Frames are the worst-case
    encoded size (protocol.encoded_len_max)."""
    import heapq

    byte_s = BITS_PER_BYTE / baud
    frames = graph["frames"]
    size = {f[0]: frame_sizes(f[3], f[2] == "host")["frame_worst"] for f in frames}
    by_src: dict[str, list[tuple]] = {}
    for f in frames:
        by_src.setdefault(f[1], []).append(f)
    need = {n: set(w) for n, w in graph["waits"].items()}
    rx_free: dict[str, float] = {}
    started: set[str] = set()
    events: list[tuple[float, int, str, tuple]] = []
    seq = [0]
    wire_s = {"total": 0.0}
    arrivals: dict[str, float] = {}

    def push(t: float, kind: str, f: tuple) -> None:
        seq[0] += 1
        heapq.heappush(events, (t, seq[0], kind, f))

    def send_all(node: str, t: float) -> None:
        for f in by_src.get(node, []):
            d = size[f[0]] * byte_s
            t += d
            push(t, "at_host" if star and f[1] != "host" and f[2] != "host" else "arrive", f)

    # the host feeds the sensors in parallel (one UART each)
    for f in by_src.get("host", []):
        push(size[f[0]] * byte_s, "arrive", f)
    done_at: dict[str, float] = {}
    result_at = None
    while events:
        t, _, kind, f = heapq.heappop(events)
        name, src, dst, _b = f
        if kind == "at_host":
            start = max(t, rx_free.get(dst, 0.0))
            end = start + size[name] * byte_s
            rx_free[dst] = end
            push(end, "arrive", f)
            continue
        arrivals[name] = t
        if dst == "host":
            result_at = t
            continue
        need[dst].discard(name)
        if not need[dst] and dst not in started:
            started.add(dst)
            done_at[dst] = t + compute_s.get(dst, 0.0)
            send_all(dst, done_at[dst])
    total_compute = sum(compute_s.values())
    return {"latency_s": result_at, "compute_s_sum": total_compute, "node_done_s": done_at, "arrivals_s": arrivals}


def throughput_bound(graph: dict[str, Any], compute_s: dict[str, float], baud: int, star: bool) -> dict[str, Any]:
    """Samples/s when pipelined: limited by the busiest UART line or the slowest node."""
    byte_s = BITS_PER_BYTE / baud
    tx: dict[str, float] = {}
    rx: dict[str, float] = {}
    for name, src, dst, b in graph["frames"]:
        d = frame_sizes(b, dst == "host")["frame_worst"] * byte_s
        if src != "host":
            tx[src] = tx.get(src, 0.0) + d
        if dst != "host" and (star or src == "host"):
            rx[dst] = rx.get(dst, 0.0) + d
    busiest = max([(v, f"{k} TX") for k, v in tx.items()] + [(v, f"{k} RX") for k, v in rx.items()]
                  + [(v, f"{k} compute") for k, v in compute_s.items()])
    return {"samples_per_s": 1.0 / busiest[0] if busiest[0] else None, "bottleneck": busiest[1],
            "bottleneck_s": busiest[0]}


def run_harness(build: Path, out: Path, logs: Path, tag: str, samples: int, sweep: bool, window: int | None,
                timeout: float) -> dict[str, Any]:
    js = out / f"{tag}.json"
    if js.exists():
        js.unlink()
    cmd = [PY, "-m", "host.harness", "--build", build, "--samples", str(samples), "--json", js,
           "--out", out / tag, "--quiet"]
    if sweep:
        cmd.append("--sweep")
    if window is not None:
        cmd += ["--window", str(window)]
    rc, wall = run_cmd(cmd, logs / f"harness-{tag}.log", timeout)
    if not js.exists():
        raise RuntimeError(f"host.harness exit {rc}, no JSON written: {tail(logs / f'harness-{tag}.log')}")
    d = json.loads(js.read_text())
    d["_bench"] = {"exit": rc, "wall_s": round(wall, 1), "command": " ".join(map(str, cmd[1:]))}
    return d


def _harness_dir(args: argparse.Namespace) -> Path:
    return args.work / "harness"


def harness_runs(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """Sweep every board build once (shared by the links and resilience sections)."""
    if "harness" in R:
        return R["harness"]
    res: dict[str, Any] = {"sweeps": {}, "latency": {}, "errors": {}}
    logs = args.work / "logs"
    for key, d in build_dirs(R).items():
        preset, scheme = key.split("/")
        if not (d / "manifest.json").exists() or "firmware" not in load_manifest(d).get("stages", {}):
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


def _none_failed_run(h: dict[str, Any]) -> dict[str, Any] | None:
    runs = h.get("runs", [])
    for r in runs:
        bits = r.get("config", {}).get("bits")
        if bits and set(bits) == {"1"}:
            return r
    return runs[-1] if len(runs) == 1 else None


def section_links(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    from boards import load_board

    H = harness_runs(args, R)
    real = load_board("nucleo_f446re")
    res: dict[str, Any] = {"assumptions": {
        "projection_board": real.name, "clock_hz": real.clock_hz, "bits_per_byte": BITS_PER_BYTE,
        "cycles_per_instruction": 1.0,
        "frame_size": "worst case (every byte non-zero), host.net.protocol.encoded_len_max"}, "presets": {}, "errors": {}}
    comp = R.get("compute", {}).get("nodes", {})
    for key, d in build_dirs(R).items():
        preset, scheme = key.split("/")
        if scheme != "resilinet":
            continue
        man = load_manifest(d)
        g = deployment_graph(man)
        links = []
        measured_wire = {}
        h = H.get("sweeps", {}).get(key)
        run = _none_failed_run(h) if h else None
        if run:
            measured_wire = run.get("wire", {})
        for name, src, dst, b in g["frames"]:
            fs = frame_sizes(b, dst == "host")
            w = measured_wire.get(name, {})
            links.append({"link": name, "src": src, "dst": dst, **fs,
                          "overhead_vs_payload": fs["frame_worst"] / fs["payload"] - 1,
                          "overhead_vs_tensor": fs["frame_worst"] / fs["tensor"] - 1 if b else None,
                          "measured_wire_bytes_per_sample": w.get("wire_bytes_per_sample"),
                          "measured_overhead_pct_of_tensor": w.get("overhead_pct_of_tensor"),
                          **{f"ms_at_{bd}": fs["frame_worst"] * BITS_PER_BYTE / bd * 1e3 for bd in BAUDS}})
        per_node = comp.get(preset, {})
        compute_s = {n: per_node[n]["instructions_dsp"] / real.clock_hz for n in man["nodes"] if n in per_node}
        missing = [n for n in man["nodes"] if n not in per_node]
        proj = {}
        for bd in BAUDS:
            for star in (True, False):
                lat = simulate_latency(g, compute_s, bd, star)
                thr = throughput_bound(g, compute_s, bd, star)
                proj[f"{bd} {'star' if star else 'direct'}"] = {
                    "baud": bd, "topology": "star via host router" if star else "direct link wires",
                    "latency_ms": lat["latency_s"] * 1e3 if lat["latency_s"] is not None else None,
                    "compute_ms": lat["compute_s_sum"] * 1e3,
                    "throughput_samples_per_s": thr["samples_per_s"], "bottleneck": thr["bottleneck"]}
        emu: dict[str, Any] = {}
        lat_run = H.get("latency", {}).get(preset)
        if lat_run:
            r = _none_failed_run(lat_run) or (lat_run.get("runs") or [None])[0]
            if r:
                emu["window1"] = {"latency_ms": r.get("latency_ms"), "samples": r.get("samples", {}).get("answered"),
                                  "throughput": r.get("throughput")}
        if run:
            emu["window3_sweep"] = {"latency_ms": run.get("latency_ms"), "throughput": run.get("throughput"),
                                    "samples": run.get("samples", {}).get("answered")}
        tensor_total = sum(b for name, src, dst, b in g["frames"] if src != "host" and dst != "host")
        res["presets"][preset] = {
            "links": links, "compute_ms": {n: s * 1e3 for n, s in compute_s.items()},
            "compute_missing": missing, "projection": proj, "emulated": emu,
            "inter_node_tensor_bytes_per_inference": tensor_total,
            "wire_bytes_per_inference_worst": sum(l["frame_worst"] for l in links),
            "harness_error": H.get("errors", {}).get(key),
        }
    return res


# ================================================================================================ resilience
def _cap(accs: list[float | None], has_path: list[bool], ppath: float, g: float) -> float | None:
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


def section_resilience(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    H = harness_runs(args, R) if "boards" in args.resilience_sources else {"sweeps": {}, "errors": {}}
    res: dict[str, Any] = {"presets": {}, "errors": {}}
    exp_dir = REPO / "build" / "experiments"
    presets = list(PRESETS) + ["health"]
    dirs = build_dirs(R)
    for preset in presets:
        p: dict[str, Any] = {"float": {}, "int8_host": {}, "boards": {}, "notes": []}
        f = exp_dir / f"average_accuracy_{preset}.json"
        if f.exists():
            e = json.loads(f.read_text())
            p["float_source"] = rel(f)
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
        for scheme in SCHEMES:
            d = dirs.get(f"{preset}/{scheme}")
            if d is None:
                continue
            man = load_manifest(d)
            ev = json.loads((d / "evaluation.json").read_text())
            st = man.get("stages", {}).get("nodes", {})
            acc8 = st.get("int8_accuracy")
            accf = st.get("float_accuracy")
            if accf:
                g = ev["random_guess"]
                fa = [a if a is not None else g for a in accf]
                p.setdefault("float_same_samples", {})[scheme] = {
                    "average": {s: sum(pr * a for pr, a in zip(ev["config_probability"][s], fa))
                                / sum(ev["config_probability"][s]) for s in ev["config_probability"]},
                    "cap": {s: _cap(accf, ev["has_path"], ev["path_probability"][s], g) for s in ev["config_probability"]},
                    "se": _avg_se(accf, ev["has_path"], ev["config_probability"], st.get("int8_eval_samples")),
                    "samples": st.get("int8_eval_samples"), "per_config": accf}
            if acc8:
                g = ev["random_guess"]
                accs = [a if a is not None else g for a in acc8]
                avg = {s: sum(pr * a for pr, a in zip(ev["config_probability"][s], accs))
                       / sum(ev["config_probability"][s]) for s in ev["config_probability"]}
                cap = {s: _cap(acc8, ev["has_path"], ev["path_probability"][s], g) for s in avg}
                p["int8_host"][scheme] = {"average": avg, "cap": cap, "per_config": acc8,
                                          "se": _avg_se(acc8, ev["has_path"], ev["config_probability"],
                                                        st.get("int8_eval_samples")),
                                          "samples": st.get("int8_eval_samples"), "build": rel(d),
                                          "float_same_build": ev["average"], "float_cap_same_build": ev["cap"]}
            h = H.get("sweeps", {}).get(f"{preset}/{scheme}")
            if h and h.get("sweep"):
                g = ev["random_guess"]
                per_cfg = {}
                for r in h.get("runs", []):
                    per_cfg[r["config"]["bits"]] = r.get("accuracy", {}).get("boards")
                configs_bits = ["".join(map(str, c)) for c in ev["configs"]]
                accs = [per_cfg.get(b) for b in configs_bits]
                cap = {s: _cap(accs, ev["has_path"], ev["path_probability"][s], g) for s in ev["path_probability"]}
                bit = [r.get("bit_exact", {}) for r in h.get("runs", [])]
                p["boards"][scheme] = {
                    "average": {s: v.get("boards") for s, v in h["sweep"].items()},
                    "int8_host_same_samples": {s: v.get("int8_host") for s, v in h["sweep"].items()},
                    "complete": all(v.get("complete", True) for v in h["sweep"].values()),
                    "cap": cap, "per_config": dict(zip(configs_bits, accs)), "samples": h.get("samples"),
                    "se": _avg_se(accs, ev["has_path"], ev["config_probability"], h.get("samples")),
                    "bit_exact": {"compared": sum(b.get("compared", 0) for b in bit),
                                  "identical": sum(b.get("identical", 0) for b in bit)},
                    "wall_s": h.get("_bench", {}).get("wall_s"), "build": rel(d)}
            elif f"{preset}/{scheme}" in H.get("errors", {}):
                p["notes"].append(f"boards {scheme}: {H['errors'][f'{preset}/{scheme}']}")
        res["presets"][preset] = p
    return res


# ================================================================================================ toolchain
def section_toolchain(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
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


# ================================================================================================ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="one build run, int8 evaluation on 1000 samples, 40 harness samples, 3 codegen runs")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=None,
                    help="run only these sections (others keep their values from the existing BENCHMARKS.json)")
    ap.add_argument("--skip", nargs="+", choices=SECTIONS, default=[])
    ap.add_argument("--build-runs", type=int, default=None, help="host.build runs for the stage medians (default 3)")
    ap.add_argument("--int8-samples", type=int, default=None,
                    help="int8 evaluation samples of the reported builds (default: whole test set)")
    ap.add_argument("--harness-samples", type=int, default=None, help="test samples per configuration (default 200)")
    ap.add_argument("--latency-samples", type=int, default=None, help="samples of the one-at-a-time run (default 20)")
    ap.add_argument("--generate-runs", type=int, default=None, help="codegen generate runs (default 5)")
    ap.add_argument("--all-schemes", action="store_true",
                    help="also build and sweep vanilla, dfg and resilinet_plus (int8 host and boards columns)")
    ap.add_argument("--no-boards", action="store_true", help="do not run the emulated boards (host.harness)")
    ap.add_argument("--harness-timeout", type=float, default=1200.0)
    ap.add_argument("--work", type=Path, default=REPO / "build" / "bench", help="scratch directory (logs, runs)")
    ap.add_argument("--json", type=Path, default=REPO / "BENCHMARKS.json")
    ap.add_argument("--md", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--render-only", action="store_true", help="only rewrite the Markdown from the JSON")
    args = ap.parse_args(argv)

    from bench_report import compute_targets, render_markdown

    if args.render_only:
        R = json.loads(args.json.read_text())
        R["targets"] = compute_targets(R)
        args.md.write_text(render_markdown(R))
        log(f"wrote {rel(args.md)}")
        return 0
    q = args.quick
    args.build_runs = args.build_runs or (1 if q else 3)
    args.int8_samples = args.int8_samples if args.int8_samples is not None else (1000 if q else None)
    args.int8_samples_other = args.int8_samples if args.int8_samples is not None else 2000
    args.harness_samples = args.harness_samples or (40 if q else 200)
    args.latency_samples = args.latency_samples or (8 if q else 20)
    args.generate_runs = args.generate_runs or (3 if q else 5)
    args.resilience_sources = ("float", "int8") if args.no_boards else ("float", "int8", "boards")
    args.work.mkdir(parents=True, exist_ok=True)

    sections = [s for s in (args.only or SECTIONS) if s not in args.skip]
    R: dict[str, Any] = {}
    if args.only and args.json.exists():
        R = json.loads(args.json.read_text())  # sections not run keep their previous values
        if {"links", "resilience"} & set(sections):
            R.pop("harness", None)
        if {"compute", "memory"} & set(sections):
            R.pop("kernels", None)
    R["machine"] = machine_info()
    R["run"] = {"command": "bench/run_benchmarks.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "quick": q, "sections": sections, "build_runs": args.build_runs,
                "harness_samples": args.harness_samples, "latency_samples": args.latency_samples,
                "generate_runs": args.generate_runs, "int8_samples": args.int8_samples or "whole test set",
                "all_schemes": args.all_schemes, "boards": not args.no_boards,
                "niceness": os.nice(0)}
    t_start = time.perf_counter()
    funcs: dict[str, Callable[[argparse.Namespace, dict[str, Any]], dict[str, Any]]] = {
        "builds": section_builds, "compute": section_compute, "memory": section_memory,
        "links": section_links, "resilience": section_resilience, "toolchain": section_toolchain}
    if args.no_boards and {"links", "resilience"} & set(sections):
        R["harness"] = {"sweeps": {}, "latency": {}, "errors": {"all": "not run (--no-boards)"}}
    for s in sections:
        log(f"== {s}")
        t0 = time.perf_counter()
        try:
            R[s] = funcs[s](args, R)
        except Exception as e:  # noqa: BLE001 -- a failed section is reported as not measured
            R[s] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            log(f"section {s} FAILED: {e}")
        R[s]["section_wall_s"] = round(time.perf_counter() - t0, 1)
        args.json.write_text(json.dumps(R, indent=1, default=str))
    R["run"]["wall_s"] = round(time.perf_counter() - t_start, 1)
    R["machine"]["load_average_end"] = list(os.getloadavg())
    # harness raw reports are big: keep the summaries the report uses, point at the files for the rest
    if "harness" in R:
        for kind in ("sweeps", "latency"):
            for k, h in R["harness"].get(kind, {}).items():
                for r in h.get("runs", []):
                    r.pop("per_sample", None)
                    r.pop("mismatches", None)
                    r.pop("events", None)
    R["targets"] = compute_targets(R)
    args.json.write_text(json.dumps(R, indent=1, default=str))
    args.md.write_text(render_markdown(R))
    log(f"wrote {rel(args.json)} and {rel(args.md)} in {R['run']['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
