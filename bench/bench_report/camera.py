"""## 4a. The camera preset on its emulated boards: resilience table and the sweep's bit-exact accounting."""
from __future__ import annotations

from typing import Any

from .formatting import err_of, n0, pct, table
from .resilience import preset_table


def md_camera(R: dict[str, Any]) -> str:
    S = R.get("camera")
    out = "## 4a. The camera preset on emulated boards (issue 14, spec §3.5)\n\n"
    why = err_of(S)
    if why:
        return out + f"Not measured: {why}.\n\n"
    out += (f"**Stand-in data** (`{S.get('dataset')}`): six synthetic views of CIFAR-10 automobile / horse / truck "
            f"images, not the paper's multi-view set (docs/datasets.md). {S.get('boards_count')} boards (6 cameras, "
            f"4 edges, 4 fogs, cloud), ResiliNet only, trained {S['epochs']} epochs (spec: 50)"
            f"{' — a `--quick` run' if S.get('size') == 'quick' else ''}; int8 host on {S['int8_samples']} test "
            f"samples per failure configuration; boards: `host.harness --sweep`, every failure configuration of "
            f"[{', '.join(S.get('failable', []))}] on {S['sweep_samples']} samples (build `{S['build']}`"
            f"{', reused' if S.get('build_reused') else ''}). Columns as in section 4.\n\n")
    out += preset_table(S)
    sw = S.get("sweep")
    if sw:
        out += (f"\nSweep: {n0(sw['configurations'])} configurations, {n0(sw['samples_sent'])} samples sent, "
                f"{n0(sw['samples_answered'])} answered. The {n0(sw['with_path'])} configurations with a path: "
                f"{n0(sw['with_path_all_answered'])} answered every sample; the "
                f"{n0(sw['configurations'] - sw['with_path'])} without one answered {n0(sw['without_path_answered'])} "
                f"(they count as the random guess). Node outputs identical to the int8 reference: "
                f"**{n0(sw['identical'])} / {n0(sw['compared'])}** ({n0(sw['mismatches'])} mismatches); "
                f"sweep wall time {n0(sw.get('wall_s'))} s.\n\n")
        single = sorted((c for c in sw["configs"] if len(c["dead"]) <= 1), key=lambda c: len(c["dead"]))
        rows = [[", ".join(c["dead"]) or "none", f"{c['answered']} / {c['sent']}",
                 f"{n0(c['identical'])} / {n0(c['compared'])}", pct(c["boards"]), pct(c["int8_host"])] for c in single]
        out += "Nothing failed and every single-node failure:\n\n"
        out += table(["failed", "answered", "node outputs bit-exact", "boards %", "int8 host %"], rows)
    for n in S.get("notes", []):
        out += f"\n* {n}"
    return out + "\n\n"
