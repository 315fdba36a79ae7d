"""Section ``memory``: where the bytes go.

Per node of a build: the firmware image's sections (``arm-none-eabi-size -A``) and its GNU ld link map (which
object put what where: weights, kernels, module code, runtime, libc). Per MLPerf Tiny model: the generated
module's arena against the planner's lower bound and against TFLM's arena (reference figures).
"""
from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path
from typing import Any

from bench_common import Node, MLPERF, TFLM_ARENA_MIN, TFLM_ARENA_TOTAL, resilinet_builds, log, rel
from bench_compute import snapshot_kernels

_OBJ_HASH = re.compile(r"-[0-9a-f]{8}\.o$")


def _origin(path: str, module: str) -> str:
    """Which part of the firmware an input object belongs to, from its file name in the link map."""
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
    """Bytes per section of an ELF (``arm-none-eabi-size -A``)."""
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    secs = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            secs[parts[0]] = int(parts[1])
    return secs


def node_memory(build: Path, node: str, entry: Node) -> dict[str, Any]:
    """Flash and RAM of one node's firmware image, by origin, beside the figures its manifest entry states."""
    fw, nd = entry.require_firmware(), entry.require_model()
    elf = build / fw.elf
    secs = elf_sections(elf)
    mp = parse_map(elf.with_suffix(".map"), nd.module)
    flash = secs.get(".text", 0) + secs.get(".data", 0)
    text = mp.get(".text", {})
    code = {k: v for k, v in text.items() if k not in ("module weights+tables",)}
    ram_bss = secs.get(".bss", 0) + secs.get(".data", 0)
    arena = nd.arena_bytes
    return {
        "board": fw.board, "elf": rel(elf), "sections": secs,
        "flash_bytes": flash, "flash_manifest": fw.flash_bytes, "board_flash_bytes": fw.board_flash_bytes,
        "weights_bytes": nd.weight_bytes, "quant_param_bytes": nd.quant_param_bytes,
        "module_rodata_from_map": text.get("module weights+tables"),
        "code_by_origin": code, "code_bytes": flash - text.get("module weights+tables",
                                                                 nd.weight_bytes + nd.quant_param_bytes),
        "ram_bytes": ram_bss + secs.get(".stack", 0), "ram_manifest": fw.ram_bytes,
        "board_ram_bytes": fw.board_ram_bytes,
        "arena_bytes": arena, "arena_lower_bound": nd.arena_lower_bound, "scratch_bytes": nd.scratch_bytes,
        "io_link_buffers_bytes": ram_bss - arena,
        "ram_by_origin": mp.get(".bss", {}), "stack_reserved_bytes": secs.get(".stack", 0),
        "model_io_bytes": sum(i.bytes for i in nd.inputs) + sum(o.bytes for o in nd.outputs),
    }


def mlperf_memory(model: Path, work: Path, kernels: Path) -> dict[str, Any]:
    """The generated module of one MLPerf model, cross-compiled alone: its arena against the bound and TFLM."""
    from codegen.emit import build_module, write_module
    from codegen.footprint import CORTEX_M4_FLAGS, section_sizes, symbol_size

    mod = build_module(model)
    info = write_module(mod, work)
    # The same steps planned without window overlaps (in-place elementwise only): what the overlap saves.
    from codegen.planner import plan_memory
    classic = plan_memory(mod.graph, mod.steps, overlap=False)
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
        "arena_without_overlap": classic.arena_size, "lower_bound_without_overlap": classic.lower_bound,
        "overlapping_ops": len([o for o in mod.plan.overlaps if o.distance > 0]),
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
    """Every node of the ResiliNet builds, then the MLPerf modules."""
    from host.paths import shared_models_dir

    res: dict[str, Any] = {"nodes": {}, "mlperf": {}, "errors": {}}
    for preset, d, man in resilinet_builds(R):
        res["nodes"][preset] = {}
        for node, nd in man.nodes.items():
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

