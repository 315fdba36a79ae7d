"""The targets of the project (issue 7) against this run's figures: met, not met, or not measured."""
from __future__ import annotations

from typing import Any

from bench_common import MLPERF

from .formatting import CONV_CATEGORIES, MLPERF_TITLE, pct, table
from .targets_kernels import kernel_targets

CONV_TARGET = 2.0
RESNET_TARGET = 25_000_000
ARENA_TFLM_TARGET = 0.8
ARENA_LB_TARGET = 0.05
CAP_TARGET = 0.95

Target = dict[str, Any]


def _conv_rows(comp: dict[str, Any]) -> tuple[list[tuple], list[tuple]]:
    """(name, instructions/MAC, MACs, instructions) of every conv kind: the MLPerf models, then the nodes."""
    rows = []
    for m in MLPERF:
        for cat, c in comp.get("mlperf", {}).get(m, {}).get("categories", {}).items():
            if cat in CONV_CATEGORIES and c["macs"]:
                rows.append((f"{MLPERF_TITLE[m]} {cat}", c["instructions"] / c["macs"], c["macs"], c["instructions"]))
    node_rows = []
    for preset, nodes in comp.get("nodes", {}).items():
        for node, r in nodes.items():
            for cat, c in r.get("categories", {}).items():
                if cat in CONV_CATEGORIES and c["macs"]:
                    node_rows.append((f"{preset}/{node} {cat}", c["instructions"] / c["macs"], c["macs"],
                                      c["instructions"]))
    return rows, node_rows


def conv_target(comp: dict[str, Any]) -> Target:
    """1. Convolutions <= 2.0 instructions/MAC with DSP, every kind in every measured model and node."""
    rows, node_rows = _conv_rows(comp)
    if not rows:
        return {"target": "Convolutions ≤ 2.0 instructions/MAC", "measured": None, "met": None,
                "note": "not measured: " + (comp.get("error") or str(comp.get("errors")))}
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
    return {"target": "Convolutions ≤ 2.0 instructions/MAC on the M4 with DSP (every CONV_2D kind "
                      "in every measured model and node)", "measured": fig, "met": met, "note": note,
            "aggregate": agg}


def resnet_target(comp: dict[str, Any]) -> Target:
    """2. ResNet-8 <= 25 M instructions per inference."""
    r8 = comp.get("mlperf", {}).get("ic_resnet8_int8")
    if not r8:
        return {"target": "ResNet-8 ≤ 25 M instructions per inference", "measured": None, "met": None,
                "note": "not measured"}
    return {"target": "ResNet-8 ≤ 25 M instructions per inference",
            "measured": f"{r8['instructions_dsp']:,} instructions ({r8['ins_per_mac']:.2f}/MAC; TFLM + "
                        f"CMSIS-NN {r8['tflm_cmsis_nn_instructions']:,}, ours ×{r8['ours_over_tflm']:.2f})",
            "met": r8["instructions_dsp"] <= RESNET_TARGET, "note": ""}


def arena_target(m: str, r: dict[str, Any] | None) -> Target:
    """3. One MLPerf model's arena <= 0.8 x TFLM's and within 5 % of its lower bound."""
    target = f"{MLPERF_TITLE[m]} arena ≤ 0.8 × TFLM and ≤ 5 % above its lower bound"
    if not r:
        return {"target": target, "measured": None, "met": None, "note": "not measured"}
    ok_tflm = r["arena_over_tflm_min"] <= ARENA_TFLM_TARGET
    ok_lb = r["arena_over_lower_bound"] <= ARENA_LB_TARGET
    io_ok = r["arena_io_over_tflm_min"] <= ARENA_TFLM_TARGET
    return {"target": target,
            "measured": f"{r['arena_bytes']:,} B = {r['arena_over_tflm_min']:.3f} × TFLM's smallest working "
                        f"arena ({r['tflm_arena_min']:,} B), {r['arena_over_tflm_total']:.3f} × its total "
                        f"({r['tflm_arena_total']:,} B); lower bound {r['arena_lower_bound']:,} B "
                        f"({100 * r['arena_over_lower_bound']:+.1f} %)",
            "met": ok_tflm and ok_lb,
            "note": (f"TFLM's arena also holds the model input/output ({r['io_bytes']:,} B), ours does not: "
                     f"arena + I/O = {r['arena_plus_io_bytes']:,} B = {r['arena_io_over_tflm_min']:.3f} × "
                     f"TFLM ({'still' if io_ok else 'then not'} ≤ 0.8)")}


def cap_target(preset: str, p: dict[str, Any]) -> Target:
    """4. ResiliNet's Hazardous average on the boards >= 95 % of the path-probability cap."""
    b = p.get("boards", {}).get("resilinet")
    i8 = p.get("int8_host", {}).get("resilinet")
    fl = p.get("float", {}).get("resilinet")
    tgt = f"{preset}: ResiliNet on-board Hazardous average ≥ 95 % of the path-probability cap"
    if not b or b["average"].get("Hazardous") is None:
        why = "; ".join(p.get("notes", [])) or "harness sweep not available"
        fig = None
        if i8 and i8["cap"].get("Hazardous"):
            fig = (f"int8 host instead: {pct(i8['average']['Hazardous'])} % vs cap {pct(i8['cap']['Hazardous'])} "
                   f"% = {i8['average']['Hazardous'] / i8['cap']['Hazardous']:.3f}")
        return {"target": tgt, "measured": fig, "met": None, "note": "boards not measured: " + why}
    hz, cap = b["average"]["Hazardous"], b["cap"].get("Hazardous")
    fcap = fl["cap"]["Hazardous"] if fl and fl.get("cap") else None
    ratio = hz / cap if cap else None
    fig = (f"{pct(hz)} % on {b['samples']} samples/configuration vs cap {pct(cap)} % (P(path) × best board "
           f"configuration + (1 − P(path)) × g) = {ratio:.3f}" if ratio else f"{pct(hz)} %")
    note = ""
    if fcap:
        note = f"vs the float model's cap {pct(fcap)} %: {hz / fcap:.3f}"
    return {"target": tgt, "measured": fig, "met": (ratio >= CAP_TARGET) if ratio else None, "note": note,
            "ratio": ratio, "ratio_float_cap": hz / fcap if fcap else None}


def compute_targets(R: dict[str, Any]) -> list[Target]:
    """Every target in the order of the report's table."""
    comp = R.get("compute") or {}
    mem = (R.get("memory") or {}).get("mlperf", {})
    res = (R.get("resilience") or {}).get("presets", {})
    return ([conv_target(comp), resnet_target(comp)] + kernel_targets(R)
            + [arena_target(m, mem.get(m)) for m in MLPERF]
            + [cap_target(preset, res.get(preset, {})) for preset in ("fashion", "har")])


def md_targets(T: list[Target]) -> str:
    """## Targets: one row per target with its verdict."""
    rows = []
    for t in T:
        met = {True: "**met**", False: "**not met**", None: "not measured"}[t["met"]]
        rows.append([t["target"], t["measured"] or "—", met, t.get("note") or ""])
    return "## Targets\n\n" + table(["target", "measured", "verdict", "notes"], rows, right=set()) + "\n"
