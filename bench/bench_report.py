"""BENCHMARKS.md from the results dict of bench/run_benchmarks.py (also: the targets, met or not)."""
from __future__ import annotations

from typing import Any

SETTINGS = ("No failure", "Normal", "Poor", "Hazardous")
SCHEMES = ("vanilla", "dfg", "resilinet", "resilinet_plus")
SCHEME_TITLE = {"vanilla": "Vanilla", "dfg": "deepFogGuard", "resilinet": "ResiliNet", "resilinet_plus": "ResiliNet+"}
MLPERF = ("ic_resnet8_int8", "kws_dscnn_int8", "ad_autoencoder_int8")
MLPERF_TITLE = {"ic_resnet8_int8": "ResNet-8 (IC)", "kws_dscnn_int8": "DS-CNN (KWS)",
                "ad_autoencoder_int8": "FC autoencoder (AD)"}
CONV_CATEGORIES = ("conv (im2col)", "conv 1x1 (stride 1)", "conv 1x1 (strided)")
#: MLPerf Tiny closed division, NUCLEO-L4R5ZI (Cortex-M4 @ 120 MHz), ms per inference (docs/cmsis-nn.md §2a).
PUBLISHED_MS = {
    "TFLM 2.3.1 + CMSIS-NN (v0.5 reference)": {"KWS": 181.9, "IC": 704.2, "AD": 10.05},
    "microTVM + CMSIS-NN (v1.0)": {"KWS": 99.8, "IC": 389.6, "AD": 8.60},
    "Plumerai (v1.1)": {"KWS": 47.8, "IC": 167.8, "AD": 4.05},
    "X-CUBE-AI 9.0 (v1.2)": {"KWS": 43.2, "IC": 165.1, "AD": 5.26},
}
MLPERF_TASK = {"ic_resnet8_int8": "IC", "kws_dscnn_int8": "KWS", "ad_autoencoder_int8": "AD"}
CONV_TARGET = 2.0
RESNET_TARGET = 25_000_000
ARENA_TFLM_TARGET = 0.8
ARENA_LB_TARGET = 0.05
CAP_TARGET = 0.95


# ------------------------------------------------------------------------------------------------ format
def n0(x: Any) -> str:
    return "—" if x is None else f"{x:,.0f}"


def f2(x: Any, nd: int = 2) -> str:
    return "—" if x is None else f"{x:,.{nd}f}"


def pct(x: Any, nd: int = 2) -> str:
    return "—" if x is None else f"{100 * x:.{nd}f}"


def table(header: list[str], rows: list[list[Any]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(1, len(header)))
    sep = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def err_of(sec: dict[str, Any] | None) -> str | None:
    if sec is None:
        return "section not run"
    return sec.get("error")


# ------------------------------------------------------------------------------------------------ targets
def compute_targets(R: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    comp = R.get("compute") or {}
    ml = comp.get("mlperf", {})
    # 1. convolutions <= 2.0 instructions/MAC with DSP
    rows = []
    for m in MLPERF:
        for cat, c in ml.get(m, {}).get("categories", {}).items():
            if cat in CONV_CATEGORIES and c["macs"]:
                rows.append((f"{MLPERF_TITLE[m]} {cat}", c["instructions"] / c["macs"], c["macs"], c["instructions"]))
    node_rows = []
    for preset, nodes in comp.get("nodes", {}).items():
        for node, r in nodes.items():
            for cat, c in r.get("categories", {}).items():
                if cat in CONV_CATEGORIES and c["macs"]:
                    node_rows.append((f"{preset}/{node} {cat}", c["instructions"] / c["macs"], c["macs"],
                                      c["instructions"]))
    if rows:
        agg = sum(r[3] for r in rows) / sum(r[2] for r in rows)
        worst = max(rows, key=lambda r: r[1])
        over = [r for r in rows + node_rows if r[1] > CONV_TARGET]
        over_macs = sum(r[2] for r in over) / sum(r[2] for r in rows + node_rows)
        fig = (f"all CONV_2D of the MLPerf models: {agg:.2f} instructions/MAC; per conv kind and model "
               f"{min(r[1] for r in rows):.2f}–{worst[1]:.2f} (worst: {worst[0]})")
        if node_rows:
            wn = max(node_rows, key=lambda r: r[1])
            nagg = sum(r[3] for r in node_rows) / sum(r[2] for r in node_rows)
            fig += f"; fashion/har nodes: {nagg:.2f} overall, worst {wn[1]:.2f} ({wn[0]})"
        met = not over
        note = "" if met else (f"{len(over)} conv kind(s) above 2.0 ({', '.join(f'{r[0]} {r[1]:.2f}' for r in over)}), "
                               f"{100 * over_macs:.1f} % of all measured conv MACs; depthwise convolutions are listed under "
                               f"Compute, not here")
        out.append({"target": "Convolutions ≤ 2.0 instructions/MAC on the M4 with DSP (every CONV_2D kind "
                              "in every measured model and node)", "measured": fig, "met": met, "note": note,
                    "aggregate": agg})
    else:
        out.append({"target": "Convolutions ≤ 2.0 instructions/MAC", "measured": None, "met": None,
                    "note": "not measured: " + (comp.get("error") or str(comp.get("errors")))})
    # 2. ResNet-8 <= 25 M instructions
    r8 = ml.get("ic_resnet8_int8")
    if r8:
        out.append({"target": "ResNet-8 ≤ 25 M instructions per inference",
                    "measured": f"{r8['instructions_dsp']:,} instructions ({r8['ins_per_mac']:.2f}/MAC; TFLM + "
                                f"CMSIS-NN {r8['tflm_cmsis_nn_instructions']:,}, ours ×{r8['ours_over_tflm']:.2f})",
                    "met": r8["instructions_dsp"] <= RESNET_TARGET, "note": ""})
    else:
        out.append({"target": "ResNet-8 ≤ 25 M instructions per inference", "measured": None, "met": None,
                    "note": "not measured"})
    # 3. arena <= 0.8 x TFLM and within 5 % of the lower bound
    mem = (R.get("memory") or {}).get("mlperf", {})
    for m in MLPERF:
        r = mem.get(m)
        if not r:
            out.append({"target": f"{MLPERF_TITLE[m]} arena ≤ 0.8 × TFLM and ≤ 5 % above its lower bound",
                        "measured": None, "met": None, "note": "not measured"})
            continue
        ok_tflm = r["arena_over_tflm_min"] <= ARENA_TFLM_TARGET
        ok_lb = r["arena_over_lower_bound"] <= ARENA_LB_TARGET
        io_ok = r["arena_io_over_tflm_min"] <= ARENA_TFLM_TARGET
        out.append({"target": f"{MLPERF_TITLE[m]} arena ≤ 0.8 × TFLM and ≤ 5 % above its lower bound",
                    "measured": f"{r['arena_bytes']:,} B = {r['arena_over_tflm_min']:.3f} × TFLM's smallest working "
                                f"arena ({r['tflm_arena_min']:,} B), {r['arena_over_tflm_total']:.3f} × its total "
                                f"({r['tflm_arena_total']:,} B); lower bound {r['arena_lower_bound']:,} B "
                                f"({100 * r['arena_over_lower_bound']:+.1f} %)",
                    "met": ok_tflm and ok_lb,
                    "note": (f"TFLM's arena also holds the model input/output ({r['io_bytes']:,} B), ours does not: "
                             f"arena + I/O = {r['arena_plus_io_bytes']:,} B = {r['arena_io_over_tflm_min']:.3f} × "
                             f"TFLM ({'still' if io_ok else 'then not'} ≤ 0.8)")})
    # 4. Hazardous on boards >= 95 % of the cap
    res = (R.get("resilience") or {}).get("presets", {})
    for preset in ("fashion", "har"):
        b = res.get(preset, {}).get("boards", {}).get("resilinet")
        i8 = res.get(preset, {}).get("int8_host", {}).get("resilinet")
        fl = res.get(preset, {}).get("float", {}).get("resilinet")
        tgt = f"{preset}: ResiliNet on-board Hazardous average ≥ 95 % of the path-probability cap"
        if not b or b["average"].get("Hazardous") is None:
            why = "; ".join(res.get(preset, {}).get("notes", [])) or "harness sweep not available"
            fig = None
            if i8 and i8["cap"].get("Hazardous"):
                fig = (f"int8 host instead: {pct(i8['average']['Hazardous'])} % vs cap {pct(i8['cap']['Hazardous'])} "
                       f"% = {i8['average']['Hazardous'] / i8['cap']['Hazardous']:.3f}")
            out.append({"target": tgt, "measured": fig, "met": None, "note": "boards not measured: " + why})
            continue
        hz, cap = b["average"]["Hazardous"], b["cap"].get("Hazardous")
        fcap = fl["cap"]["Hazardous"] if fl and fl.get("cap") else None
        ratio = hz / cap if cap else None
        fig = (f"{pct(hz)} % on {b['samples']} samples/configuration vs cap {pct(cap)} % (P(path) × best board "
               f"configuration + (1 − P(path)) × g) = {ratio:.3f}" if ratio else f"{pct(hz)} %")
        note = ""
        if fcap:
            note = f"vs the float model's cap {pct(fcap)} %: {hz / fcap:.3f}"
        out.append({"target": tgt, "measured": fig, "met": (ratio >= CAP_TARGET) if ratio else None, "note": note,
                    "ratio": ratio, "ratio_float_cap": hz / fcap if fcap else None})
    return out


# ------------------------------------------------------------------------------------------------ sections
def md_header(R: dict[str, Any]) -> str:
    m, run = R.get("machine", {}), R.get("run", {})
    la = m.get("load_average_start")
    le = m.get("load_average_end")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run_benchmarks.py`; `--quick` for a short run, `--render-only` to "
        "rewrite this file from `BENCHMARKS.json`). Benchmarks are not part of `make test`. Instruction counts "
        "are exact and deterministic (QEMU, see Method); wall times are medians of repeated runs; every "
        "comparison is a ratio of two figures measured in the same run unless marked *published* or *reference*.",
        "",
        f"* Date: {m.get('date_utc')}; run wall time {f2(run.get('wall_s'), 0)} s; command `{run.get('command')}`"
        f"{' (quick)' if run.get('quick') else ''}",
        f"* Machine: {m.get('nproc')} CPUs, {m.get('cpu_model')}; {m.get('platform')}; load average "
        f"{', '.join(f'{x:.1f}' for x in la) if la else '—'} at start"
        f"{', ' + ', '.join(f'{x:.1f}' for x in le) + ' at end' if le else ''} (shared machine: other jobs ran "
        f"during the run, wall times are noisy; instruction counts are not affected)",
        f"* Versions: Python {m.get('python')}; {m.get('tensorflow')}; {m.get('tflite_micro')}; "
        f"{m.get('ai_edge_litert')}; {m.get('numpy')}; `{m.get('arm_gcc')}`; host `{m.get('host_gcc')}`; "
        f"`{m.get('qemu')}`",
        "* Section wall times: " + ", ".join(f"{k} {R[k]['section_wall_s']:.0f} s" for k in
                                             ("builds", "compute", "memory", "links", "resilience", "toolchain")
                                             if isinstance(R.get(k), dict) and "section_wall_s" in R[k])
        + " (the emulated boards run inside links)",
        f"* Repository: commit {m.get('git_commit')} with {m.get('git_uncommitted_paths')} uncommitted paths "
        f"(work in progress is measured as it was on disk)"
        + (f"; kernels measured: {R['kernels']['source']}, sources sha256 {R['kernels']['sha256']}"
           if R.get("kernels") else ""),
        "",
        "",
    ]
    return "\n".join(lines)


def md_targets(T: list[dict[str, Any]]) -> str:
    rows = []
    for t in T:
        met = {True: "**met**", False: "**not met**", None: "not measured"}[t["met"]]
        rows.append([t["target"], t["measured"] or "—", met, t.get("note") or ""])
    return "## Targets\n\n" + table(["target", "measured", "verdict", "notes"], rows, right=set()) + "\n"


def md_compute(R: dict[str, Any]) -> str:
    c = R.get("compute")
    out = ["## 1. Compute: instructions per inference on the emulated Cortex-M4\n\n"]
    if err_of(c):
        return out[0] + f"\nNot measured: {err_of(c)}\n\n"
    ml = c.get("mlperf", {})
    rows = []
    for m in MLPERF:
        r = ml.get(m)
        if not r:
            rows.append([MLPERF_TITLE[m], "not measured: " + str(c.get("errors", {}).get(m, "")), *[""] * 9])
            continue
        vq = r.get("verify_qemu") or {}
        rows.append([MLPERF_TITLE[m], n0(r["macs"]), n0(r["instructions_dsp"]), f2(r["ins_per_mac"]),
                     f"{r['x_bound']:.1f}×", n0(r["instructions_plain_c"]), f"{r['plain_over_dsp']:.2f}×",
                     n0(r["tflm_cmsis_nn_instructions"]), f"{r['ours_over_tflm']:.2f}",
                     n0(vq.get("instructions")),
                     "yes" if r["bit_exact_dsp"] and r["bit_exact_plain_c"] else "NO"])
    out.append(
        "Our generated module + our CMSIS-NN-API kernels, GCC `-O2 -mcpu=cortex-m4 -mfloat-abi=hard`, one inference "
        "on QEMU `mps2-an386` (Cortex-M4 with DSP), counted by `bench/kernel_instructions.py`. *DSP* = the kernels' "
        "SIMD path (SMLAD/SXTB16, selected by `__ARM_FEATURE_DSP` in `firmware/cmsis_nn/resilinet_dsp.h`); "
        "*plain C* = the same kernels and module compiled with `-U__ARM_FEATURE_DSP` (→ `RNN_HAS_DSP 0`, the "
        "portable path; GCC may still pick single DSP instructions on its own). Bound = 0.5 cycles/MAC (one SMLAD "
        "= 2 MACs per cycle); \"× bound\" = (instructions/MAC) / 0.5. TFLM + CMSIS-NN: *reference* figures "
        "measured the same way (docs/toolchain-facts.md). `verify --target qemu`: independent count through the "
        "board image (SysTick under `-icount`, ±40, includes the timer calls). Outputs of both builds compared "
        "byte for byte with `tflite_micro`.\n\n")
    out.append(table(["model", "MACs", "instructions (DSP)", "instr/MAC", "× bound", "plain C", "plain C / DSP",
                      "TFLM + CMSIS-NN", "ours / TFLM", "verify --target qemu", "bit-exact"], rows))
    # published
    rows = []
    pub, task = PUBLISHED_MS, MLPERF_TASK
    for m in MLPERF:
        r = ml.get(m)
        if not r:
            continue
        row = [MLPERF_TITLE[m], f"{r['macs'] / 2e6:.2f}", f"{r['instructions_dsp'] / 1e6:.2f}",
               f"{r['instructions_dsp'] / 120e3:.1f}"]
        for k, v in pub.items():
            ms = v[task[m]]
            cyc = ms * 120e3
            row.append(f"{cyc / 1e6:.1f} M ({ms} ms; {cyc / r['macs']:.2f}/MAC)")
        rows.append(row)
    out.append(
        "\n**Published MLPerf Tiny latencies** (*published*, closed division, NUCLEO-L4R5ZI Cortex-M4 @ 120 MHz, "
        "docs/cmsis-nn.md §2a) converted to cycles at that clock (ms × 120,000), beside our instruction count. "
        "Instructions are a lower bound on cycles (a real M4 spends ≥ 1 cycle per instruction: 2 per load, "
        "branch refills, flash wait states), so \"ours at 120 MHz\" assumes 1 cycle per instruction and is optimistic.\n\n")
    out.append(table(["model", "bound: MACs/2 (M cycles)", "ours (M instructions)", "ours ms @120 MHz if CPI = 1",
                      *pub.keys()], rows))
    # nodes
    for preset, nodes in c.get("nodes", {}).items():
        rows = []
        tot = {"macs": 0, "dsp": 0, "plain": 0}
        for node, r in nodes.items():
            rows.append([node, n0(r["macs"]), n0(r["instructions_dsp"]), f2(r["ins_per_mac"]),
                         f"{r['x_bound']:.1f}×" if r["x_bound"] else "—", n0(r["instructions_plain_c"]),
                         f"{r['plain_over_dsp']:.2f}×", f"{r['instructions_dsp'] / 180:.0f}",
                         "yes" if r["bit_exact_dsp"] and r["bit_exact_plain_c"] else "NO"])
            tot["macs"] += r["macs"]
            tot["dsp"] += r["instructions_dsp"]
            tot["plain"] += r["instructions_plain_c"]
        if tot["dsp"]:
            rows.append(["**all nodes**", n0(tot["macs"]), n0(tot["dsp"]), f2(tot["dsp"] / tot["macs"]),
                         f"{tot['dsp'] / tot['macs'] / 0.5:.1f}×", n0(tot["plain"]),
                         f"{tot['plain'] / tot['dsp']:.2f}×", f"{tot['dsp'] / 180:.0f}", ""])
        out.append(f"\n**{preset} ResiliNet build, per node** (`build/bench-{preset}`; each node's int8 `.tflite` "
                   "through the same tool; µs at the Nucleo-F446RE's 180 MHz assuming 1 cycle per instruction)\n\n")
        out.append(table(["node", "MACs", "instructions (DSP)", "instr/MAC", "× bound", "plain C", "plain C / DSP",
                          "µs @180 MHz", "bit-exact"], rows))
    errs = {k: v for k, v in c.get("errors", {}).items()}
    if errs:
        out.append("\nNot measured: " + "; ".join(f"{k}: {v}" for k, v in errs.items()) + "\n")
    # where the time goes
    out.append("\n### Where the time goes (per op type, DSP build)\n\n"
               "Excess = instructions − 0.5 × MACs (what separates the op from the SMLAD bound); ops without MACs "
               "are all excess. Per-op counts include the op's buffer-size check and call (+2–3 instructions of the "
               "timer read).\n\n")
    rows = []
    def elements_by_category(results: list[dict[str, Any]]) -> dict[str, int]:
        e: dict[str, int] = {}
        for res in results:
            for op in res.get("ops_dsp", []):
                e[op["category"]] = e.get(op["category"], 0) + op.get("elements", 0)
        return e

    groups: list[tuple[str, dict[str, Any]]] = [(MLPERF_TITLE[m], {**ml[m], "elements_by_category":
                                                                   elements_by_category([ml[m]])})
                                                for m in MLPERF if m in ml]
    for preset, nodes in c.get("nodes", {}).items():
        agg: dict[str, Any] = {"instructions_dsp": 0, "categories": {}}
        for r in nodes.values():
            agg["instructions_dsp"] += r["instructions_dsp"]
            for cat, v in r["categories"].items():
                a = agg["categories"].setdefault(cat, {"ops": 0, "macs": 0, "instructions": 0,
                                                       "plain_c_instructions": 0, "excess_over_bound": 0.0})
                for k in ("ops", "macs", "instructions", "excess_over_bound"):
                    a[k] += v[k]
                a["plain_c_instructions"] += v.get("plain_c_instructions") or 0
        agg["elements_by_category"] = elements_by_category(list(nodes.values()))
        groups.append((f"{preset} (all nodes)", agg))
    for title, r in groups:
        total = r["instructions_dsp"]
        excess_total = sum(max(v["excess_over_bound"], 0) for v in r["categories"].values())
        for cat, v in sorted(r["categories"].items(), key=lambda kv: -kv[1]["instructions"]):
            rows.append([title, cat, v["ops"], n0(v["macs"]), n0(v["instructions"]),
                         pct(v["instructions"] / total, 1) if total else "—",
                         f2(v["instructions"] / v["macs"]) if v["macs"] else "—",
                         f2(v["plain_c_instructions"] / v["macs"]) if v["macs"] and v.get("plain_c_instructions") else "—",
                         f"{v['plain_c_instructions'] / v['instructions']:.2f}×" if v.get("plain_c_instructions") else "—",
                         pct(max(v["excess_over_bound"], 0) / excess_total, 1) if excess_total else "—"])
            title = ""
    out.append(table(["model", "op type", "ops", "MACs", "instructions", "share %", "instr/MAC", "plain C instr/MAC",
                      "plain C / DSP", "share of excess %"], rows, right=set(range(2, 10))))
    bullets = []
    for title, r in groups:
        cats = r["categories"]
        ex = {k: max(v["excess_over_bound"], 0) for k, v in cats.items()}
        tot = sum(ex.values())
        if not tot:
            continue
        top = sorted(ex, key=lambda k: -ex[k])[:3]
        elems = r.get("elements_by_category") or {}
        parts = []
        for k in top:
            v = cats[k]
            how = (f"{v['instructions'] / v['macs']:.2f} instr/MAC" if v["macs"] else
                   (f"{v['instructions'] / (v.get('elements') or elems[k]):.0f} instr/output element"
                    if v.get("elements") or elems.get(k) else "no MACs"))
            parts.append(f"{k} {100 * ex[k] / tot:.0f} % ({how})")
        bound = 0.5 * sum(v["macs"] for v in cats.values())
        bullets.append(f"* **{title}**: {r['instructions_dsp']:,} instructions = {r['instructions_dsp'] / bound:.1f}× "
                       f"the SMLAD bound; the excess goes to " + ", ".join(parts) + ".")
    out.append("\n" + "\n".join(bullets) + "\n")
    return "".join(out) + "\n"


def md_memory(R: dict[str, Any]) -> str:
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
            rows.append([MLPERF_TITLE[m], "not measured: " + str(mm.get("errors", {}).get(m, "")), *[""] * 11])
            continue
        rows.append([MLPERF_TITLE[m], n0(r["arena_bytes"]), n0(r["arena_lower_bound"]),
                     f"{100 * r['arena_over_lower_bound']:+.1f}", n0(r["scratch_bytes"]), n0(r["io_bytes"]),
                     n0(r["tflm_arena_min"]), n0(r["tflm_arena_total"]), f"{r['arena_over_tflm_min']:.3f}",
                     f"{r['arena_over_tflm_total']:.3f}", f"{r['arena_io_over_tflm_min']:.3f}",
                     n0(r["module_rodata"]), n0(r["module_text"])])
    out.append(
        "**MLPerf Tiny models: arena vs its lower bound and vs TFLM** (lower bound = the largest sum of buffers "
        "live at one op, from the planner; TFLM: *reference* figures from docs/toolchain-facts.md — the smallest "
        "arena with which TFLM + CMSIS-NN runs the model, and the total quoted in issue 7). TFLM's arena also "
        "holds the model's input and output tensors; ours leaves them to the caller, so the \"+ I/O\" ratio is the "
        "like-for-like one. Module flash from a cross-compile of the module alone (`codegen.footprint`).\n\n")
    out.append(table(["model", "arena B", "lower bound B", "arena vs bound %", "scratch B", "model I/O B",
                      "TFLM smallest B", "TFLM total B", "arena / TFLM smallest", "arena / TFLM total",
                      "(arena + I/O) / TFLM smallest", "module const data B", "module code B"], rows))
    return "".join(out) + "\n"


def md_links(R: dict[str, Any]) -> str:
    L = R.get("links")
    out = ["## 3. Links\n\n"]
    if err_of(L):
        return out[0] + f"Not measured: {err_of(L)}\n\n"
    a = L.get("assumptions", {})
    out.append(
        "Bytes per inference per link with nothing failed: the int8 tensor, the DATA payload (the tensor alone) "
        "and the frame on the wire (`host.net.protocol`: 2-byte DATA header, CRC-16, COBS, delimiter; worst case = "
        "every byte non-zero, `encoded_len_max`; the final node's RESULT (`->host`) has the 7-byte header and its "
        "payload a 4-byte cycle count + the scores). Overhead = frame / payload − 1. *Measured* = bytes per sample "
        "the harness counted on the emulated UARTs (none-failed run).\n\n")
    for preset, p in L.get("presets", {}).items():
        rows = []
        for l in p["links"]:
            rows.append([l["link"], n0(l["tensor"]), n0(l["payload"]), n0(l["frame_worst"]),
                         pct(l["overhead_vs_payload"]), pct(l["overhead_vs_tensor"]) if l["overhead_vs_tensor"] is not None else "—",
                         f2(l["measured_wire_bytes_per_sample"], 1), f2(l["ms_at_115200"]), f2(l["ms_at_921600"], 3)])
        out.append(f"**{preset}** — {n0(p['inter_node_tensor_bytes_per_inference'])} B of tensors between nodes "
                   f"per inference, {n0(p['wire_bytes_per_inference_worst'])} B of frames including sensor input "
                   f"and result\n\n")
        out.append(table(["link", "tensor B", "payload B", "frame B", "overhead vs payload %",
                          "overhead vs tensor %", "measured wire B/sample", "ms/hop @115200", "ms/hop @921600"], rows))
        out.append("\n")
    out.append(
        f"**End-to-end latency per sample.** *Emulated*: `host.harness` on QEMU boards (netduinoplus2, one QEMU "
        f"per node) with the host as the router (star: every link crosses two UARTs); QEMU's UARTs run at "
        f"≈ 13–23 KB/s of host time, not at a baud rate, and the emulated CPUs run at host speed, so these are "
        f"not board timings. *Projected*: real UARTs at 115200 and 921600 baud ({a.get('bits_per_byte')} bits per "
        f"byte) on the {a.get('projection_board')} at {a.get('clock_hz', 0) / 1e6:.0f} MHz; compute per node = "
        f"measured instructions / clock, i.e. **1 cycle per instruction (a lower bound)**; frames at their worst-"
        f"case size; a node computes once all its primary inputs arrived and sends its frames one after the "
        f"other; *star* = through the host router (store and forward, one RX line per consumer), *direct* = one "
        f"wire per link. The on-board runtime's own work (input gathering, COBS/CRC) and the host's are not "
        f"counted. Throughput = 1 / the busiest UART line or node when samples are pipelined.\n\n")
    rows = []
    for preset, p in L.get("presets", {}).items():
        e = p.get("emulated", {})
        w1 = (e.get("window1") or {}).get("latency_ms") or {}
        w3 = (e.get("window3_sweep") or {}).get("latency_ms") or {}
        comp_ms = sum(p["compute_ms"].values()) if p["compute_ms"] else None
        proj = p["projection"]
        row = [preset, f2(w1.get("p50"), 0) if w1 else "not measured",
               f"{f2(w3.get('p50'), 0)} / {f2((e.get('window3_sweep') or {}).get('throughput', {}).get('answered_per_s'))}"
               if w3 else "not measured", f2(comp_ms, 3)]
        for k in ("115200 star", "115200 direct", "921600 star", "921600 direct"):
            v = proj.get(k, {})
            row.append(f"{f2(v.get('latency_ms'), 1)} ms / {f2(v.get('throughput_samples_per_s'), 1)} per s "
                       f"({v.get('bottleneck')})")
        rows.append(row)
        if p.get("compute_missing"):
            out.append(f"({preset}: no instruction count for {', '.join(p['compute_missing'])}: counted as 0)\n")
        if p.get("harness_error"):
            out.append(f"({preset}: emulated boards not measured: {p['harness_error']})\n")
    out.append(table(["preset", "emulated p50 ms, one sample at a time", "emulated p50 ms / samples/s, 3 in flight",
                      "compute ms, all nodes (180 MHz, CPI 1)", "115200 star: latency / throughput",
                      "115200 direct", "921600 star", "921600 direct"], rows))
    return "".join(out) + "\n"


def md_resilience(R: dict[str, Any]) -> str:
    S = R.get("resilience")
    out = ["## 4. Resilience: the paper's table (average accuracy %, per reliability setting)\n\n"]
    if err_of(S):
        return out[0] + f"Not measured: {err_of(S)}\n\n"
    out.append(
        "*Float*: `build/experiments/average_accuracy_<preset>.json` (`host.experiments average`, whole test set, "
        "mean over its training runs). *Float, this build*: the model that was deployed (`build/bench-<preset>`), "
        "in float, on the same test samples as the int8 row (manifest `stages.nodes.float_accuracy`). *int8 host*: the build's int8 split network on `tflite_micro` "
        "(manifest `stages.nodes.int8_accuracy` per failure configuration, averaged with the topology's "
        "reliabilities; no path = random guess g). *Boards*: `host.harness --sweep` on emulated boards (every "
        "failure configuration on a seeded subset of the test set, then the same averages). *Cap* = P(path) × "
        "best configuration's accuracy + (1 − P(path)) × g, computed for each column from its own measurements. "
        "int8 and boards columns exist only for the schemes that were built (`--all-schemes` builds all four).\n\n")
    for preset, p in S.get("presets", {}).items():
        ds = p.get("dataset")
        synth = " — **synthetic stand-in data** (MHEALTH is not on this machine)" if preset == "health" else ""
        out.append(f"### {preset} (dataset `{ds}`{synth})\n\n")
        rows = []
        for sch in SCHEMES:
            f = p["float"].get(sch)
            i8 = p["int8_host"].get(sch)
            b = p["boards"].get(sch)
            fs = (p.get("float_same_samples") or {}).get(sch)
            if not (f or i8 or b):
                continue
            for kind, d, key in (("float", f, "mean"), ("float, this build", fs, "average"),
                                 ("int8 host", i8, "average"), ("boards", b, "average")):
                if d is None:
                    continue
                vals = d[key]
                cap = d.get("cap") or {}
                hz, chz = vals.get("Hazardous"), cap.get("Hazardous")
                spread = d.get("std") or d.get("se") or {}
                cells = [pct(vals.get(s)) + (f" ± {pct(spread[s])}" if spread.get(s) else "") for s in SETTINGS]
                extra = ""
                if kind == "int8 host":
                    extra = f"{d.get('samples')} test samples; ± = binomial standard error"
                elif kind == "float, this build":
                    extra = f"the deployed model in float on the int8 row's {d.get('samples')} samples"
                elif kind == "boards":
                    be = d.get("bit_exact", {})
                    extra = (f"{(d.get('samples'))} test samples per configuration; ± = binomial standard error; "
                             f"bit-exact {be.get('identical')}/{be.get('compared')} node answers"
                             + ("" if d.get("complete", True) else "; incomplete"))
                elif kind == "float":
                    extra = f"{p.get('float_runs')} training run(s)" + ("; ± = std over runs" if d.get("std") and
                                                                         any(d["std"].values()) else "")
                rows.append([SCHEME_TITLE[sch], kind, *cells, f"{pct(chz)} ({hz / chz:.3f})" if hz and chz else "—",
                             extra])
        pp = p.get("path_probability") or {}
        pn = p.get("path_probability_no_skips") or {}
        if pp:
            rows.append(["P(path), all skips", "", *[pct(pp.get(s)) for s in SETTINGS], "", ""])
        if pn:
            rows.append(["P(path), no skips", "", *[pct(pn.get(s)) for s in SETTINGS], "", ""])
        out.append(table(["scheme", "measured on", *SETTINGS, "Hazardous cap (avg/cap)", "notes"], rows,
                         right={2, 3, 4, 5, 6}))
        missing = [SCHEME_TITLE[x] for x in SCHEMES if x in p["float"] and x not in p["int8_host"]]
        if missing:
            why = ("the real MHEALTH data is not on this machine (the float rows are on synthetic stand-in data)"
                   if preset == "health" else "only ResiliNet is built by default; `--all-schemes` builds the others")
            out.append(f"\nint8 host and boards not measured for {', '.join(missing)}: {why}.\n")
        for n in p.get("notes", []):
            out.append(f"\n* {n}")
        out.append("\n")
    return "".join(out)


def md_toolchain(R: dict[str, Any]) -> str:
    T = R.get("toolchain")
    out = ["## 5. Host toolchain\n\n"]
    if err_of(T):
        return out[0] + f"Not measured: {err_of(T)}\n\n"
    st = T.get("build_stages", {})
    if st:
        out.append(
            f"`python -m host.build --preset fashion --scheme resilinet` with the trained model cached, "
            f"{T.get('build_runs')} runs, each into a fresh directory (so the firmware stage compiles every "
            f"object). `int8 evaluate` = the nodes stage minus partition/quantize/generate (the int8 split network "
            f"on `tflite_micro` under every failure configuration); only the last run evaluates the whole test set "
            f"(its accuracy is the one reported), the others a few samples, so that row gives each run's time per "
            f"1000 samples instead of a median. `process wall` includes Python and TensorFlow start-up; "
            f"`process wall − int8 evaluate` is the like-for-like total.\n\n")
        n8 = [r.get("int8_eval_samples") for r in (R.get("builds") or {}).get("fashion_timing_runs", [])]
        rows = []
        for s, v in st.items():
            runs = ", ".join(f2(x) for x in v["runs_s"])
            if s == "int8 evaluate" and len(n8) == len(v["runs_s"]):
                rows.append([f"{s} (samples per run: {', '.join(map(str, n8))})", "—",
                             ", ".join(f"{f2(x)} ({f2(x / n * 1000)} per 1000)" for x, n in zip(v["runs_s"], n8)
                                       if x is not None and n)])
                continue
            rows.append([s, f2(v["median_s"]), runs])
        if "process wall" in st and "int8 evaluate" in st:
            d = [w - e for w, e in zip(st["process wall"]["runs_s"], st["int8 evaluate"]["runs_s"])
                 if w is not None and e is not None]
            if d:
                import statistics
                rows.append(["process wall − int8 evaluate", f2(statistics.median(d)), ", ".join(f2(x) for x in d)])
        out.append(table(["stage", "median s", "runs s"], rows))
    else:
        out.append(f"Build stages not measured: {T.get('errors', {}).get('build_stages')}\n")
    g = T.get("codegen_generate_resnet8")
    if g:
        out.append(f"\n`python -m codegen generate ic_resnet8_int8.tflite -o DIR`, {g['runs']} runs: median "
                   f"**{f2(g['median_wall_s'])} s** wall per run (process start included; runs "
                   f"{', '.join(f2(x) for x in g['walls_s'])}), of which {f2(g['median_reported_s'])} s reading, "
                   f"lowering, planning and rendering (as `generate` reports it).\n")
    elif T.get("errors", {}).get("codegen"):
        out.append(f"\ncodegen generate not measured: {T['errors']['codegen']}\n")
    return "".join(out) + "\n"


def md_not_measured(R: dict[str, Any], T: list[dict[str, Any]]) -> str:
    items = []
    for s in ("builds", "compute", "memory", "links", "resilience", "toolchain"):
        sec = R.get(s)
        if sec is None:
            items.append(f"section `{s}` was not run")
        elif sec.get("error"):
            items.append(f"section `{s}`: {sec['error']}")
        else:
            for k, v in (sec.get("errors") or {}).items():
                items.append(f"{s} / {k}: {v}")
    for k, v in ((R.get("harness") or {}).get("errors") or {}).items():
        items.append(f"emulated boards / {k}: {v}")
    res = (R.get("resilience") or {}).get("presets", {})
    for preset, p in res.items():
        missing = [SCHEME_TITLE[x] for x in SCHEMES if x in p.get("float", {}) and x not in p.get("int8_host", {})]
        if missing:
            items.append(f"{preset}: int8 host and boards columns for {', '.join(missing)} — "
                         + ("real MHEALTH data absent (float rows are on synthetic stand-in data)"
                            if preset == "health" else "not built by default (`--all-schemes`)"))
    items += [
        "cycles: QEMU counts instructions, not cycles (no pipeline, wait states or caches); DWT->CYCCNT is not "
        "emulated. Real-board cycles need a board.",
        "stack: only its reserved size is reported, not its peak use.",
        "energy: not measured.",
        "latency on real UARTs and boards: projected only (section 3); the emulated latencies are host-time "
        "figures, and the per-node cycle counts the harness reports (SysTick of QEMU netduinoplus2 without "
        "`-icount`) follow host time, so they are not used.",
        "VWW (MobileNetV1) MLPerf model: not in /work/shared/models/mlperf_tiny.",
    ]
    return "## Not measured\n\n" + "\n".join(f"* {i}" for i in items) + "\n\n"


def md_method(R: dict[str, Any]) -> str:
    return (
        "## Method\n\n"
        "* **Instructions** (`bench/kernel_instructions.py`): the module is linked bare-metal with the kernels "
        "(`-O2`, Cortex-M4 hard-float) and run on QEMU `mps2-an386` with `-icount shift=7`; the CMSDK timer read "
        "around `invoke` and around every op converts exactly to instructions (checked against calibration "
        "loops at start-up). Deterministic: the same binary gives the same count on every run, so one run is "
        "the median. Inputs: one seeded random int8 sample; the outputs must equal `tflite_micro`'s.\n"
        "* **Wall times** are medians over the runs stated; the machine is shared (see load average), so treat "
        "them as indicative.\n"
        "* **Boards**: `host.harness --sweep` starts one QEMU `netduinoplus2` per node (the Nucleo-F446RE "
        "stand-in), feeds a seeded subset of the test set, injects the failure configurations and compares every "
        "DATA tensor and RESULT byte for byte with the host int8 reference.\n"
        "* Raw numbers (per op, per link, per run) are in `BENCHMARKS.json`; logs and harness reports of the "
        "run are under `build/bench/`.\n")


def render_markdown(R: dict[str, Any]) -> str:
    T = R.get("targets") or compute_targets(R)
    return "".join([md_header(R), md_targets(T), md_compute(R), md_memory(R), md_links(R), md_resilience(R),
                    md_toolchain(R), md_not_measured(R, T), md_method(R)])
