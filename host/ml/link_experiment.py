"""``python -m host.experiments links --preset P``: accuracy against bytes per inference (issue 19).

A sweep over link budgets and both means of meeting them: low-bit link codes (every link at 8, 4, 2 bits) and
learned bottlenecks (the links whose receiver they alone feed narrowed to 1/2 or 1/4 of their channels), and
both together. Each variant is the preset's topology file with ``bits`` / ``bottleneck`` added to its
``[[links]]`` (written under ``<out>/links/``), trained like every experiment cell (:class:`Runner`, stored and
resumable) and evaluated under every failure configuration. The report: the average accuracy per
reliability setting and the bytes between nodes per inference, with nothing failed (packed codes), and a
plot of Hazardous accuracy against bytes with the Pareto front (fewest bytes for the accuracy).
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from host.ml.link_bits import packed_bytes, resolve_bits
from host.ml.topology import Topology, load_topology
from host.report_files import md_table, pct, write_report

#: (label, bits for every link, bottleneck fraction for the links that may have one)
VARIANTS = (("int8", 8, None), ("4-bit", 4, None), ("2-bit", 2, None), ("bottleneck 1/2", 8, 2),
            ("bottleneck 1/4", 8, 4), ("4-bit + bottleneck 1/2", 4, 2), ("2-bit + bottleneck 1/2", 2, 2))


def bottleneck_links(topo: Topology) -> list[str]:
    """Links that may carry a bottleneck: the only link into their receiver (schemes._widen's rule)."""
    return [l.name for l in topo.links if len(topo.incoming(l.dst)) == 1]


def variant_text(text: str, codes: dict[str, dict[str, int]]) -> str:
    """The topology file ``text`` with ``key = value`` lines added to the named ``[[links]]`` entries."""
    for name, keys in codes.items():
        src, dst = name.split("->")
        pat = re.compile(rf'(\[\[links\]\]\s*\nfrom = "{re.escape(src)}"\s*\nto = "{re.escape(dst)}"\s*\n)')
        if not pat.search(text):
            raise ValueError(f"link {name}: no `[[links]] from = ... to = ...` entry to add {keys} to")
        text = pat.sub(lambda m: m.group(1) + "".join(f"{k} = {v}\n" for k, v in keys.items()), text, count=1)
    return text


def link_elements(topo: Topology, ds: Any, scheme: str) -> dict[str, tuple[int, int]]:
    """Per link (the scheme's), its elements and channels as the sender computes it (int8 build, untrained)."""
    from host.ml.split import node_models, plan_partition
    from host.ml.train import TrainConfig, build_for

    model = build_for(topo, ds, TrainConfig.from_topology(topo, scheme=scheme))
    plans = plan_partition(topo, scheme, feature_groups=ds.feature_groups)
    node_models(model, topo, scheme, plans, input_shape=tuple(ds.x_train.shape[1:]), num_classes=ds.num_classes)
    return {link: (math.prod(o.shape), int(o.shape[-1])) for p in plans.values() for o in p.outputs for link in o.links}


def variants(topo: Topology, text: str, elements: dict[str, tuple[int, int]]) -> dict[str, tuple[str, int]]:
    """label -> (topology text, bytes between nodes per inference, nothing failed)."""
    narrowable = set(bottleneck_links(topo))
    out = {}
    for label, bits, frac in VARIANTS:
        codes: dict[str, dict[str, int]] = {}
        total = 0
        for name, (n, channels) in elements.items():
            keys: dict[str, int] = {"bits": bits} if bits < 8 else {}
            if frac and name in narrowable and channels >= frac:
                keys["bottleneck"] = channels // frac
                n = n // channels * (channels // frac)
            total += packed_bytes(n, resolve_bits(name, bits, None, n))
            if keys:
                codes[name] = keys
        if frac and not any("bottleneck" in k for k in codes.values()):
            continue  # no link of this topology can carry a bottleneck
        out[label] = (variant_text(text, codes), total)
    return out


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (fewer or equal bytes and higher or equal accuracy)."""
    return [i for i, (b, a) in enumerate(points)
            if not any((b2 <= b and a2 >= a) and (b2, a2) != (b, a) for b2, a2 in points)]


def link_sweep(topo: Topology, ds: Any, base: Any, *, runner: Any) -> dict[str, Any]:
    """Train and evaluate every variant; write ``links_<preset>.md/.json/.png``."""
    from host.ml.experiments import Runner

    text = Path(topo.source).read_text()
    elements = link_elements(topo, ds, base.scheme)
    work = Path(runner.out) / "links"
    work.mkdir(parents=True, exist_ok=True)
    settings = list(topo.reliability)
    results: dict[str, Any] = {}
    for label, (body, total) in variants(topo, text, elements).items():
        path = work / f"{topo.name}_{re.sub(r'[^a-z0-9]+', '_', label.lower()).strip('_')}.toml"
        path.write_text(body)
        load_topology(path)  # a variant the topology reader refuses is an error here, not in a worker
        r = Runner(replace(runner.data, preset=str(path)), runner.out, runs=runner.runs, jobs=runner.jobs,
                   use_cache=runner.use_cache, progress=runner.progress)
        evals = r.cells({label: base})[label]
        mean = {st: sum(e.average[st] for e in evals) / len(evals) for st in settings}
        results[label] = {"bytes_per_inference": total, "average": mean, "topology": str(path)}
    labels = list(results)
    front = [labels[i] for i in pareto([(results[k]["bytes_per_inference"], results[k]["average"]["Hazardous"])
                                        for k in labels])] if "Hazardous" in settings else labels
    rows = [[k, f"{results[k]['bytes_per_inference']:,}"] + [pct(results[k]["average"][st]) for st in settings]
            + ["yes" if k in front else ""] for k in labels]
    md = (f"# Link budgets — {topo.name}\n\nBytes between nodes per inference (nothing failed, packed codes) and "
          f"the average accuracy per reliability setting (%, float, {len(ds.y_test):,} test samples), "
          f"{runner.runs} run(s) per variant, {base.epochs} epochs on {len(ds.y_train):,} training samples, seed "
          f"{base.seed}. Bits apply to every link; a bottleneck narrows only the links that alone feed their "
          f"receiver ({', '.join(bottleneck_links(topo)) or 'none'}). Pareto: no variant has fewer bytes and a "
          f"higher Hazardous accuracy. One run per variant at a reduced budget: differences of a few tenths are "
          f"within the spread between seeds.\n\n"
          + md_table(["variant", "bytes"] + settings + ["Pareto"], rows) + "\n")
    data = {"experiment": "links", "preset": topo.name, "settings": settings, "variants": results,
            "pareto": front, "train": {"epochs": base.epochs, "scheme": base.scheme, "seed": base.seed,
                                        "train_samples": len(ds.y_train), "test_samples": len(ds.y_test)}}

    def plot(ax):
        for i, k in enumerate(labels):
            x, y = results[k]["bytes_per_inference"], 100 * results[k]["average"].get("Hazardous", 0.0)
            ax.scatter([x], [y], color="tab:red" if k in front else "tab:gray")
            # labels alternate above and below their point: variants with close byte counts stay readable
            ax.annotate(k, (x, y), fontsize=7, xytext=(3, 4 if i % 2 else -10), textcoords="offset points")
        pts = sorted((results[k]["bytes_per_inference"], 100 * results[k]["average"].get("Hazardous", 0.0))
                     for k in front)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color="tab:red", linewidth=1)
        ax.set_xlabel("bytes between nodes per inference")
        ax.set_ylabel("Hazardous average accuracy (%)")
        ax.set_title(f"{topo.name}: accuracy vs bytes on the wire (Pareto front in red)")
    write_report(runner.out, f"links_{topo.name}", md, data, plot)
    return data
