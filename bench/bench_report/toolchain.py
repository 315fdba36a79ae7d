"""## 5. Host toolchain: wall time of each host.build stage and of ``codegen generate``."""
from __future__ import annotations

import statistics
from typing import Any

from .formatting import err_of, f2, table


def md_toolchain(R: dict[str, Any]) -> str:
    """The build-stage table (medians over the runs) and the codegen line."""
    T = R.get("toolchain")
    out = ["## 5. Host toolchain\n\n"]
    if err_of(T):
        return out[0] + f"Not measured: {err_of(T)}\n\n"
    st = T.get("build_stages", {})
    if st:
        out.append(
            f"`python -m host.build --preset fashion --scheme resilinet` with the trained model cached, "
            f"{T.get('build_runs')} runs, each into a fresh directory (the firmware stage takes the objects it "
            f"compiled before from the shared object cache, codegen/objcache.py: see below for a cold one). "
            f"`int8 evaluate` = the nodes stage minus partition/quantize/generate (the int8 split network "
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
                rows.append(["process wall − int8 evaluate", f2(statistics.median(d)), ", ".join(f2(x) for x in d)])
        out.append(table(["stage", "median s", "runs s"], rows))
    else:
        out.append(f"Build stages not measured: {T.get('errors', {}).get('build_stages')}\n")
    out.append(_md_object_cache(T))
    g = T.get("codegen_generate_resnet8")
    if g:
        out.append(f"\n`python -m codegen generate ic_resnet8_int8.tflite -o DIR`, {g['runs']} runs: median "
                   f"**{f2(g['median_wall_s'])} s** wall per run (process start included; runs "
                   f"{', '.join(f2(x) for x in g['walls_s'])}), of which {f2(g['median_reported_s'])} s reading, "
                   f"lowering, planning and rendering (as `generate` reports it).\n")
    elif T.get("errors", {}).get("codegen"):
        out.append(f"\ncodegen generate not measured: {T['errors']['codegen']}\n")
    return "".join(out) + "\n"


def _md_object_cache(T: dict[str, Any]) -> str:
    """The firmware stage of build/bench-fashion with an empty and a warm object cache, and the identity check."""
    oc = T.get("object_cache")
    if not oc:
        return f"\nObject cache not measured: {T.get('errors', {}).get('object_cache', 'not run')}\n"
    cold, warm, again = oc["cold"], oc["warm"], oc["rebuilt_same_dir"]
    same = "all identical" if not oc["files_differing"] else f"DIFFERING: {', '.join(oc['files_differing'])}"
    return (f"\nShared object cache (codegen/objcache.py): the firmware stage of `build/bench-fashion` "
            f"({oc['nodes']} nodes) with an empty cache took {f2(cold['wall_s'])} s wall, "
            f"{f2(cold['compiler_cpu_s'])} s "
            f"compiler CPU (nodes already share the kernels); into another directory from the warm cache "
            f"{f2(warm['wall_s'])} s, {f2(warm['compiler_cpu_s'])} s (only the sources that include a node's own "
            f"header or are its model are compiled). The first directory rebuilt afresh from the warm cache "
            f"({f2(again['wall_s'])} s): {oc['files_compared']} files node.elf/.bin/.map compared with the cold "
            f"build's, {same}.\n")
