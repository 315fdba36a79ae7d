"""Section ``links``: bytes per inference on every link, the framing overhead (``host.net.protocol``), the
end-to-end latency measured on the emulated boards, and the latency and throughput projected for real UARTs."""
from __future__ import annotations

import argparse
from typing import Any

from bench_common import Manifest, BAUDS, BITS_PER_BYTE, resilinet_builds
from bench_harness import harness_runs, none_failed_run
from bench_links_compressed import compressed_builds


def frame_sizes(tensor_bytes: int, result: bool = False) -> dict[str, int]:
    """Bytes of one frame carrying ``tensor_bytes``: worst case (every byte non-zero) and all-zero tensor.

    A DATA frame carries the tensor alone (2-byte header); the final node's RESULT a 4-byte cycle count
    and the tensor (8-byte header, protocol version 3)."""
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


def deployment_graph(man: Manifest) -> dict[str, Any]:
    """Frames of one sample with nothing failed: who sends what to whom, and what each node waits for."""
    models = {n: nd.require_model() for n, nd in man.nodes.items()}
    links = man.require_links()
    frames = []  # (name, src, dst, tensor bytes)
    waits: dict[str, set[str]] = {n: set() for n in models}
    for n, model in models.items():
        if man.nodes[n].role == "sensor":
            b = sum(i.bytes for i in model.inputs)
            frames.append((f"host->{n}", "host", n, b))
            waits[n].add(f"host->{n}")
        for i in model.inputs:
            if i.primary:
                waits[n].add(i.primary)
    for n, model in models.items():
        for o in model.outputs:
            for l in o.links:
                frames.append((l, n, links[l].dst, links[l].wire_bytes or links[l].bytes))  # packed if coded
            if o.result:
                frames.append((f"{n}->host", n, "host", o.bytes))
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



def section_links(args: argparse.Namespace, R: dict[str, Any]) -> dict[str, Any]:
    """Per ResiliNet build: each link's frame sizes, the projections at both baud rates, the emulated runs."""
    from boards import load_board

    H = harness_runs(args, R)
    real = load_board("nucleo_f446re")
    res: dict[str, Any] = {"assumptions": {
        "projection_board": real.name, "clock_hz": real.clock_hz, "bits_per_byte": BITS_PER_BYTE,
        "cycles_per_instruction": 1.0,
        "frame_size": "worst case (every byte non-zero), host.net.protocol.encoded_len_max"}, "presets": {}, "errors": {}}
    comp = R.get("compute", {}).get("nodes", {})
    computes: dict[str, dict[str, float]] = {}
    for preset, d, man in resilinet_builds(R):
        g = deployment_graph(man)
        links = []
        measured_wire = {}
        h = H.get("sweeps", {}).get(f"{preset}/resilinet")
        run = none_failed_run(h) if h else None
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
        compute_s = {n: per_node[n]["instructions_dsp"] / real.clock_hz for n in man.nodes if n in per_node}
        missing = [n for n in man.nodes if n not in per_node]
        computes[preset] = compute_s
        proj = project_deployment(g, compute_s)
        emu: dict[str, Any] = {}
        lat_run = H.get("latency", {}).get(preset)
        if lat_run:
            r = none_failed_run(lat_run) or (lat_run.get("runs") or [None])[0]
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
            "harness_error": H.get("errors", {}).get(f"{preset}/resilinet"),
        }
    res["compressed"] = compressed_builds(
        args, R, res["presets"], lambda man, preset: project_deployment(deployment_graph(man), computes[preset]))
    return res


def project_deployment(g: dict[str, Any], compute_s: dict[str, float]) -> dict[str, Any]:
    """Latency and throughput of one deployment graph at every baud rate, star and direct."""
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
    return proj

