"""## 1. Compute: instructions per inference, against TFLM, the SMLAD bound and published latencies; where the
instructions go per op type."""
from __future__ import annotations

from typing import Any

from bench_common import MLPERF

from .depthwise import md_depthwise
from .formatting import MLPERF_TASK, MLPERF_TITLE, PUBLISHED_MS, err_of, f2, n0, pct, table

_INTRO = (
    "Our generated module + our CMSIS-NN-API kernels, GCC `-O2 -mcpu=cortex-m4 -mfloat-abi=hard`, one inference "
    "on QEMU `mps2-an386` (Cortex-M4 with DSP), counted by `bench/kernel_instructions.py`. *DSP* = the kernels' "
    "SIMD path (SMLAD/SXTB16, selected by `__ARM_FEATURE_DSP` in `firmware/cmsis_nn/resilinet_dsp.h`); "
    "*plain C* = the same kernels and module compiled with `-U__ARM_FEATURE_DSP` (→ `RESILINET_HAS_DSP 0`, the "
    "portable path; GCC may still pick single DSP instructions on its own). Bound = 0.5 cycles/MAC (one SMLAD "
    "= 2 MACs per cycle); \"× bound\" = (instructions/MAC) / 0.5. TFLM + CMSIS-NN: *reference* figures "
    "measured the same way (docs/toolchain-facts.md). `verify --target qemu`: independent count through the "
    "board image (SysTick under `-icount`, ±40, includes the timer calls). Outputs of both builds compared "
    "byte for byte with `tflite_micro`. *Est. cycles*: the same DSP run through our QEMU plugin "
    "(`codegen/cycles.py`, docs/cycle-estimate.md), Cortex-M4 TRM timings at 0 flash wait states -- an estimate, "
    "not a measurement.\n\n")
_PUBLISHED_INTRO = (
    "\n**Published MLPerf Tiny latencies** (*published*, closed division, NUCLEO-L4R5ZI Cortex-M4 @ 120 MHz, "
    "docs/cmsis-nn.md §2a) converted to cycles at that clock (ms × 120,000), beside our instruction count. "
    "Instructions are a lower bound on cycles (a real M4 spends ≥ 1 cycle per instruction: 2 per load, "
    "branch refills, flash wait states), so \"ours at 120 MHz\" assumes 1 cycle per instruction and is optimistic. "
    "*Est. cycles* (docs/cycle-estimate.md): the TRM-timing estimate at 0 wait states and with the L4R5ZI's 5 "
    "wait states on constant-data reads from flash that miss the ART data-cache model (ART on, as in the "
    "published runs).\n\n")
_WHERE_INTRO = (
    "\n### Where the time goes (per op type, DSP build)\n\n"
    "Excess = instructions − 0.5 × MACs (what separates the op from the SMLAD bound); ops without MACs "
    "are all excess. Per-op counts include the op's buffer-size check and call (+2–3 instructions of the "
    "timer read); per-op estimated cycles (0 wait states) include a marker call (+6 cycles per op).\n\n")


def _cyc(r: dict[str, Any], setting: str | None = None) -> float | None:
    """Estimated cycles of a result (0 wait states, or one flash setting); None when not measured."""
    c = r.get("cycles")
    if not c:
        return None
    return c["cycles_0ws"] if setting is None else c["by_flash_setting"].get(setting)


def _mlperf_table(c: dict[str, Any], ml: dict[str, Any]) -> str:
    """One row per MLPerf model: DSP and plain-C counts, the bound, TFLM, the QEMU cross-check."""
    rows = []
    for m in MLPERF:
        r = ml.get(m)
        if not r:
            rows.append([MLPERF_TITLE[m], "not measured: " + str(c.get("errors", {}).get(m, "")), *[""] * 11])
            continue
        vq = r.get("verify_qemu") or {}
        cyc = _cyc(r)
        rows.append([MLPERF_TITLE[m], n0(r["macs"]), n0(r["instructions_dsp"]), f2(r["ins_per_mac"]), n0(cyc),
                     f2(cyc / r["instructions_dsp"]) if cyc else "—", f"{r['x_bound']:.1f}×",
                     n0(r["instructions_plain_c"]), f"{r['plain_over_dsp']:.2f}×",
                     n0(r["tflm_cmsis_nn_instructions"]), f"{r['ours_over_tflm']:.2f}",
                     n0(vq.get("instructions")),
                     "yes" if r["bit_exact_dsp"] and r["bit_exact_plain_c"] else "NO"])
    return table(["model", "MACs", "instructions (DSP)", "instr/MAC", "est. cycles (0 WS)", "cycles/instr",
                  "× bound", "plain C", "plain C / DSP",
                  "TFLM + CMSIS-NN", "ours / TFLM", "verify --target qemu", "bit-exact"], rows)


def _published_table(ml: dict[str, Any]) -> str:
    """Our counts beside the published MLPerf Tiny latencies, converted to cycles at 120 MHz."""
    rows = []
    pub, task = PUBLISHED_MS, MLPERF_TASK
    for m in MLPERF:
        r = ml.get(m)
        if not r:
            continue
        c0, c5 = _cyc(r), _cyc(r, "L4R5ZI 5 WS + ART")
        row = [MLPERF_TITLE[m], f"{r['macs'] / 2e6:.2f}", f"{r['instructions_dsp'] / 1e6:.2f}",
               f"{r['instructions_dsp'] / 120e3:.1f}", f"{c0 / 1e6:.2f}" if c0 else "—",
               f"{c5 / 1e6:.2f} M ({c5 / 120e3:.1f} ms)" if c5 else "—"]
        for k, v in pub.items():
            ms = v[task[m]]
            cyc = ms * 120e3
            row.append(f"{cyc / 1e6:.1f} M ({ms} ms; {cyc / r['macs']:.2f}/MAC)")
        rows.append(row)
    return table(["model", "bound: MACs/2 (M cycles)", "ours (M instructions)", "ours ms @120 MHz if CPI = 1",
                  "ours est. M cycles (0 WS)", "ours est. L4R5ZI 5 WS + ART", *pub.keys()], rows)


def _node_table(preset: str, nodes: dict[str, Any]) -> str:
    """One build's nodes, and their sum, with the time at the Nucleo-F446RE's clock."""
    rows = []
    tot = {"macs": 0, "dsp": 0, "plain": 0, "cyc": 0, "f446": 0}
    f446 = "F446RE 5 WS + ART"  # boards/nucleo_f446re: 5 wait states at 180 MHz
    for node, r in nodes.items():
        cyc, cf = _cyc(r), _cyc(r, f446)
        tot["cyc"] += cyc or 0
        tot["f446"] += cf or 0
        rows.append([node, n0(r["macs"]), n0(r["instructions_dsp"]), f2(r["ins_per_mac"]), n0(cyc),
                     f"{cf / 180:.0f}" if cf else "—",
                     f"{r['x_bound']:.1f}×" if r["x_bound"] else "—", n0(r["instructions_plain_c"]),
                     f"{r['plain_over_dsp']:.2f}×", f"{r['instructions_dsp'] / 180:.0f}",
                     "yes" if r["bit_exact_dsp"] and r["bit_exact_plain_c"] else "NO"])
        tot["macs"] += r["macs"]
        tot["dsp"] += r["instructions_dsp"]
        tot["plain"] += r["instructions_plain_c"]
    if tot["dsp"]:
        rows.append(["**all nodes**", n0(tot["macs"]), n0(tot["dsp"]), f2(tot["dsp"] / tot["macs"]),
                     n0(tot["cyc"] or None), f"{tot['f446'] / 180:.0f}" if tot["f446"] else "—",
                     f"{tot['dsp'] / tot['macs'] / 0.5:.1f}×", n0(tot["plain"]),
                     f"{tot['plain'] / tot['dsp']:.2f}×", f"{tot['dsp'] / 180:.0f}", ""])
    return (f"\n**{preset} ResiliNet build, per node** (`build/bench-{preset}`; each node's int8 `.tflite` "
            "through the same tool; µs at the Nucleo-F446RE's 180 MHz assuming 1 cycle per instruction, and from the "
            "estimated cycles with its 5 flash wait states and the ART data-cache model)\n\n"
            + table(["node", "MACs", "instructions (DSP)", "instr/MAC", "est. cycles (0 WS)",
                     "µs @180 MHz (est., 5 WS + ART)", "× bound", "plain C", "plain C / DSP",
                     "µs @180 MHz", "bit-exact"], rows))


def _elements_by_category(results: list[dict[str, Any]]) -> dict[str, int]:
    """Output elements per op category (the cost unit of ops without MACs)."""
    e: dict[str, int] = {}
    for res in results:
        for op in res.get("ops_dsp", []):
            e[op["category"]] = e.get(op["category"], 0) + op.get("elements", 0)
    return e


def _category_groups(c: dict[str, Any], ml: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(title, per-category figures) for each MLPerf model and for each build's nodes summed."""
    groups: list[tuple[str, dict[str, Any]]] = [(MLPERF_TITLE[m], {**ml[m], "elements_by_category":
                                                                   _elements_by_category([ml[m]])})
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
                a["cycles"] = a.get("cycles", 0) + (v.get("cycles") or 0)
                a["plain_c_instructions"] += v.get("plain_c_instructions") or 0
        agg["elements_by_category"] = _elements_by_category(list(nodes.values()))
        groups.append((f"{preset} (all nodes)", agg))
    return groups


def _category_table(groups: list[tuple[str, dict[str, Any]]]) -> str:
    """Per group and op type: instructions, their share, per MAC, and the share of the excess over the bound."""
    rows = []
    for title, r in groups:
        total = r["instructions_dsp"]
        excess_total = sum(max(v["excess_over_bound"], 0) for v in r["categories"].values())
        for cat, v in sorted(r["categories"].items(), key=lambda kv: -kv[1]["instructions"]):
            cyc = v.get("cycles") or None
            rows.append([title, cat, v["ops"], n0(v["macs"]), n0(v["instructions"]),
                         pct(v["instructions"] / total, 1) if total else "—",
                         f2(v["instructions"] / v["macs"]) if v["macs"] else "—", n0(cyc),
                         f2(cyc / v["macs"]) if cyc and v["macs"] else "—",
                         f2(cyc / v["instructions"]) if cyc and v["instructions"] else "—",
                         f2(v["plain_c_instructions"] / v["macs"]) if v["macs"] and v.get("plain_c_instructions") else "—",
                         f"{v['plain_c_instructions'] / v['instructions']:.2f}×" if v.get("plain_c_instructions") else "—",
                         pct(max(v["excess_over_bound"], 0) / excess_total, 1) if excess_total else "—"])
            title = ""
    return table(["model", "op type", "ops", "MACs", "instructions", "share %", "instr/MAC", "est. cycles (0 WS)",
                  "cycles/MAC", "cycles/instr", "plain C instr/MAC", "plain C / DSP", "share of excess %"], rows,
                 right=set(range(2, 13)))


def _excess_bullets(groups: list[tuple[str, dict[str, Any]]]) -> str:
    """One line per group: its distance from the bound and the three op types that make most of it."""
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
    return "\n" + "\n".join(bullets) + "\n"


def _wide_fc_note(c: dict[str, Any], ml: dict[str, Any]) -> str:
    """The autoencoder generated with ``--wide-fc`` (int16 FC weights): instructions against the default build."""
    w = c.get("mlperf_wide_fc", {}).get("ad_autoencoder_int8")
    if not w:
        return ""
    base = ml.get("ad_autoencoder_int8", {}).get("instructions_dsp")
    ratio = f" ({w['instructions_dsp'] / base:.2f}x the default build's {base:,})" if base else ""
    checked = "outputs == tflite_micro" if w.get("check") else "OUTPUTS DIFFER from tflite_micro"
    cyc = f", est. cycles (0 WS) {w['cycles_0ws']:,}" if w.get("cycles_0ws") else ""
    return (f"\nFC autoencoder with `python -m codegen ... --wide-fc` (int16 FC weights, "
            f"firmware/cmsis_nn/README.md \"Weight layouts\"): {w['instructions_dsp']:,} instructions per inference on "
            f"the DSP path{ratio}{cyc}, {w['instructions_plain_c']:,} on the plain-C path "
            f"({w['instructions_dsp'] / w['macs']:.2f} instr/MAC; {checked}); weights {w['weight_bytes']:,} B of flash "
            f"instead of {w['weight_bytes_int8']:,} B. Default build: int8 FC weights in the paired-rows layout (the "
            f"table above).\n\n")


def md_compute(R: dict[str, Any]) -> str:
    """The whole compute section (or why it was not measured)."""
    c = R.get("compute")
    out = ["## 1. Compute: instructions per inference on the emulated Cortex-M4\n\n"]
    if err_of(c):
        return out[0] + f"\nNot measured: {err_of(c)}\n\n"
    ml = c.get("mlperf", {})
    out += [_INTRO, _mlperf_table(c, ml), _wide_fc_note(c, ml), _PUBLISHED_INTRO, _published_table(ml)]
    out.append(md_depthwise(c))
    out += [_node_table(preset, nodes) for preset, nodes in c.get("nodes", {}).items()]
    errs = {k: v for k, v in c.get("errors", {}).items()}
    if errs:
        out.append("\nNot measured: " + "; ".join(f"{k}: {v}" for k, v in errs.items()) + "\n")
    groups = _category_groups(c, ml)
    out += [_WHERE_INTRO, _category_table(groups), _excess_bullets(groups)]
    return "".join(out) + "\n"
