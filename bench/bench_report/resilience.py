"""## 4. Resilience: the paper's table, average accuracy per reliability setting, per scheme and source."""
from __future__ import annotations

from typing import Any

from bench_common import SCHEMES, SETTINGS

from .formatting import SCHEME_TITLE, err_of, pct, table


def md_resilience(R: dict[str, Any]) -> str:
    """One table per preset: float, float of this build, int8 host and boards rows per scheme."""
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
        if preset == "camera":  # its own section (bench_report/camera.py); an older run's JSON may still hold it here
            continue
        ds = p.get("dataset")
        synth = " — **synthetic stand-in data** (MHEALTH is not on this machine)" if preset == "health" else ""
        out.append(f"### {preset} (dataset `{ds}`{synth})\n\n")
        out.append(preset_table(p))
        missing = [SCHEME_TITLE[x] for x in SCHEMES if x in p["float"] and x not in p["int8_host"]]
        if missing:
            why = ("the real MHEALTH data is not on this machine (the float rows are on synthetic stand-in data)"
                   if preset == "health" else "only ResiliNet is built by default; `--all-schemes` builds the others")
            out.append(f"\nint8 host and boards not measured for {', '.join(missing)}: {why}.\n")
        for n in p.get("notes", []):
            out.append(f"\n* {n}")
        out.append("\n")
    return "".join(out)


def preset_table(p: dict[str, Any]) -> str:
    """One preset's table: float, float of this build, int8 host and boards rows per scheme, each with the
    Hazardous cap, then the path probabilities."""
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
            if d is not None:
                rows.append(_row(p, sch, kind, d, key))
    pp = p.get("path_probability") or {}
    pn = p.get("path_probability_no_skips") or {}
    if pp:
        rows.append(["P(path), all skips", "", *[pct(pp.get(s)) for s in SETTINGS], "", ""])
    if pn:
        rows.append(["P(path), no skips", "", *[pct(pn.get(s)) for s in SETTINGS], "", ""])
    return table(["scheme", "measured on", *SETTINGS, "Hazardous cap (avg/cap)", "notes"], rows,
                 right={2, 3, 4, 5, 6})


def _row(p: dict[str, Any], sch: str, kind: str, d: dict[str, Any], key: str) -> list[Any]:
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
        budget = p.get("float_budget") or {}
        extra = (f"{p.get('float_runs')} training run(s)"
                 + (f" of {budget['epochs']} epoch(s)" if budget.get("epochs") else "")
                 + (f" on {budget['train_samples']:,} training samples" if budget.get("train_samples") else "")
                 + (f" (`{p['float_source']}`)" if p.get("float_source") else "")
                 + ("; ± = std over runs" if d.get("std") and any(d["std"].values()) else ""))
    return [SCHEME_TITLE[sch], kind, *cells, f"{pct(chz)} ({hz / chz:.3f})" if hz and chz else "—", extra]
