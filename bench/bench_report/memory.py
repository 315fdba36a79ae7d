"""## 2. Memory: flash and RAM of every node's firmware image by origin; the MLPerf modules' arenas against
their lower bound and TFLM's."""
from __future__ import annotations

from typing import Any

from bench_common import MLPERF

from .formatting import MLPERF_TITLE, err_of, n0, table


def md_memory(R: dict[str, Any]) -> str:
    """Per-node tables of each build, then the MLPerf arena table."""
    mm = R.get("memory")
    out = ["## 2. Memory\n\n"]
    if err_of(mm):
        return out[0] + f"Not measured: {err_of(mm)}\n\n"
    out.append(
        "Per node, from the linked firmware image of the build (`arm-none-eabi-size -A` of `node.elf`; the "
        "link map attributes each input section to its object). Flash = `.text` (code + const data) + `.data` "
        "initialisers. Weights = the module's const arrays (weights, biases, per-channel multipliers/shifts). "
        "RAM = `.data` + `.bss` + the reserved stack. The arena holds every intermediate activation and the "
        "kernels' scratch (scratch column: the largest per-op scratch, inside the arena). Buffers = the rest of "
        "`.bss`/`.data`: the runtime's input/output slots, UART ring, link decoder. The stack is the reserved "
        "size (8 KB, linker script); its peak use is not measured. These images were compiled by `host.build` "
        "from the kernels on disk at build time; the instruction counts of section 1 use a snapshot taken a few "
        "minutes later (sha in the header), so code sizes and counts can differ if the kernels were edited in "
        "between.\n\n")
    for preset, nodes in mm.get("nodes", {}).items():
        rows = []
        for node, r in nodes.items():
            code = r["code_by_origin"]
            rows.append([node, r["board"], n0(r["flash_bytes"]), n0(r["module_rodata_from_map"]
                                                                    or r["weights_bytes"] + r["quant_param_bytes"]),
                         n0(r["weights_bytes"]), n0(code.get("kernels")), n0(code.get("module code")),
                         n0((code.get("runtime") or 0) + (code.get("link protocol") or 0) + (code.get("board support") or 0)),
                         n0(code.get("libc/libgcc")),
                         n0(r["ram_bytes"]), n0(r["arena_bytes"]), n0(r["arena_lower_bound"]), n0(r["scratch_bytes"]),
                         n0(r["io_link_buffers_bytes"]), n0(r["stack_reserved_bytes"]),
                         f"{100 * r['flash_bytes'] / r['board_flash_bytes']:.1f} / "
                         f"{100 * r['ram_bytes'] / r['board_ram_bytes']:.1f}" if r.get("board_flash_bytes") else "—"])
        out.append(f"**{preset}** (`build/bench-{preset}`, board limits of the Nucleo-F446RE stand-in)\n\n")
        out.append(table(["node", "board", "flash B", "weights + quant tables B", "of which weights+bias B",
                          "kernels code B", "module code B", "runtime + link + board code B", "libc B",
                          "RAM B", "arena B", "arena lower bound B", "scratch B (in arena)", "buffers B",
                          "stack B (reserved)", "% of board flash / RAM"], rows, right=set(range(2, 16))))
        out.append("\n")
    rows = []
    for m in MLPERF:
        r = mm.get("mlperf", {}).get(m)
        if not r:
            rows.append([MLPERF_TITLE[m], "not measured: " + str(mm.get("errors", {}).get(m, "")), *[""] * 12])
            continue
        no_overlap = (f"{n0(r['arena_without_overlap'])} / {n0(r['lower_bound_without_overlap'])} "
                      f"({r['overlapping_ops']} ops overlap)" if "arena_without_overlap" in r else "—")
        rows.append([MLPERF_TITLE[m], n0(r["arena_bytes"]), n0(r["arena_lower_bound"]), no_overlap,
                     f"{100 * r['arena_over_lower_bound']:+.1f}", n0(r["scratch_bytes"]), n0(r["io_bytes"]),
                     n0(r["tflm_arena_min"]), n0(r["tflm_arena_total"]), f"{r['arena_over_tflm_min']:.3f}",
                     f"{r['arena_over_tflm_total']:.3f}", f"{r['arena_io_over_tflm_min']:.3f}",
                     n0(r["module_rodata"]), n0(r["module_text"])])
    out.append(
        "**MLPerf Tiny models: arena vs its lower bound and vs TFLM** (lower bound = the largest sum of blocks "
        "live at one op, from the planner, where a convolution / pool output that starts just below its dying "
        "input (in-place overlap, codegen/README.md) counts as one block of their joint extent; the column "
        "without overlap plans the same steps with only elementwise in-place ops, the classic bound; TFLM: "
        "*reference* figures from docs/toolchain-facts.md — the smallest arena with which TFLM + CMSIS-NN runs "
        "the model, and the total quoted in issue 7). TFLM's arena also "
        "holds the model's input and output tensors; ours leaves them to the caller, so the \"+ I/O\" ratio is the "
        "like-for-like one. Module flash from a cross-compile of the module alone (`codegen.footprint`).\n\n")
    out.append(table(["model", "arena B", "lower bound B", "arena / bound without overlap B", "arena vs bound %",
                      "scratch B", "model I/O B",
                      "TFLM smallest B", "TFLM total B", "arena / TFLM smallest", "arena / TFLM total",
                      "(arena + I/O) / TFLM smallest", "module const data B", "module code B"], rows))
    return "".join(out) + "\n"
