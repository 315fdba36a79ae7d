"""## 3. Links: bytes and frames per link, and the end-to-end latency (emulated and projected)."""
from __future__ import annotations

from typing import Any

from .formatting import err_of, f2, n0, pct, table


def md_links(R: dict[str, Any]) -> str:
    """Per build: one row per link; then one latency row per build."""
    L = R.get("links")
    out = ["## 3. Links\n\n"]
    if err_of(L):
        return out[0] + f"Not measured: {err_of(L)}\n\n"
    a = L.get("assumptions", {})
    out.append(
        "Bytes per inference per link with nothing failed: the int8 tensor, the DATA payload (the tensor alone) "
        "and the frame on the wire (`host.net.protocol`: 2-byte DATA header, CRC-16, COBS, delimiter; worst case = "
        "every byte non-zero, `encoded_len_max`; the final node's RESULT (`->host`) has the 8-byte header and its "
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
    out.append(md_compressed(L.get("compressed") or {}))
    return "".join(out) + "\n"


def _avg(acc: dict[str, Any] | None, setting: str, kind: str = "float_average") -> str:
    v = ((acc or {}).get(kind) or {}).get(setting)
    return pct(v) if v is not None else "–"


def md_compressed(C: dict[str, Any]) -> str:
    """The compressed builds (issue 19): bytes, projections and accuracy beside the uncompressed build's."""
    if not C:
        return ""
    out = ["\n**Compressed links** (`examples/link_codes/<preset>_compressed.toml`: low-bit link codes, learned "
           "bottlenecks; docs/protocol.md \"Packed tensors\"). Same projection model and compute per node as above; "
           "accuracy: float (`evaluation.json`) and int8 reference (tflite_micro), whole test set, averaged with the "
           "setting's configuration probabilities; uncompressed = the ResiliNet build above.\n\n"]
    rows = []
    for preset, c in C.items():
        if c.get("error"):
            out.append(f"({preset}: {c['error']})\n")
            continue
        p, u = c["projection"], c["uncompressed_projection"]
        runs = "; ".join(f"{'drop ' + r['drop'] if r['drop'] else 'none failed'}: {r['answered']} answered, "
                         f"{(r.get('bit_exact') or {}).get('identical')}/{(r.get('bit_exact') or {}).get('compared')} "
                         f"identical" for r in c.get("emulated", []))
        rows.append([preset, f"{n0(c['uncompressed_bytes_per_inference'])} → {n0(c['inter_node_bytes_per_inference'])}",
                     *(f"{f2(u[k]['latency_ms'], 1)} → {f2(p[k]['latency_ms'], 1)} ms / "
                       f"{f2(p[k]['throughput_samples_per_s'], 1)} per s" for k in
                       ("115200 star", "115200 direct", "921600 star", "921600 direct")),
                     *(f"{_avg(c.get('uncompressed_accuracy'), 'Hazardous', k)} → "
                       f"{_avg(c.get('accuracy'), 'Hazardous', k)}" for k in ("float_average", "int8_average")),
                     runs])
    out.append(table(["preset", "B between nodes / inference", "115200 star", "115200 direct", "921600 star",
                      "921600 direct", "Hazardous avg % (float)", "Hazardous avg % (int8)",
                      "emulated boards (bit-exact)"], rows))
    return "".join(out)
