"""The reports ``python -m host.build`` writes beside the manifest: ``evaluation.*``, ``nodes.*`` (md, json, png)
and ``summary.md`` (with the node id table)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from boards import Board
from host.deploy.manifest import Link, Manifest, Node, NodeFit, encode
from host.ml.evaluate import FailureEvaluation
from host.ml.schemes import get_scheme
from host.report_files import grouped_bars, md_table, pct, write_report


def evaluation_report(out: Path, topo_name: str, ev: FailureEvaluation, n_test: int) -> dict[str, Path]:
    """``evaluation.md/.json/.png``: float accuracy per failure configuration and per reliability setting."""
    title = get_scheme(ev.scheme).title
    settings = list(ev.average)
    rows = [[ev.config_label(i), "".join(map(str, c)), "yes" if ev.has_path[i] else "no",
             pct(ev.measured[i]) if ev.measured[i] is not None else f"{pct(ev.random_guess)} (guess)"]
            for i, c in enumerate(ev.configs)]
    avg_rows = [[st, pct(ev.average[st]), f"{ev.path_probability[st]:.4f}", pct(ev.cap[st])] for st in settings]
    md = (f"# {topo_name} — {title}: accuracy under failures\n\n"
          f"Test set: {n_test} samples. Failure order {ev.failure_order} (1 = alive). Without a path from a "
          f"sensor to the cloud the accuracy is the random guess g = {pct(ev.random_guess)} %.\n\n"
          + md_table(["Failed", "bits", "path", "accuracy (%)"], rows)
          + "\n\n## Average accuracy per reliability setting\n\n"
          + md_table(["Setting", "average accuracy (%)", "P(path)", "cap (%)"], avg_rows) + "\n")

    def plot(ax: Any) -> None:
        labels = [ev.config_label(i) for i in range(len(ev.configs))]
        grouped_bars(ax, labels, {title: ev.accuracy}, title=f"{topo_name}: accuracy per failure configuration")
        ax.axhline(100 * ev.random_guess, color="grey", linestyle=":", linewidth=1)
    return write_report(out, "evaluation", md, ev.to_dict(), plot)


def fit_estimates(nodes: Mapping[str, Node], board: Board) -> dict[str, NodeFit]:
    """Model bytes against the board before any firmware is linked (the firmware build checks exactly)."""
    est = {}
    for name, node in nodes.items():
        m = node.require_model()
        flash = m.weight_bytes + m.quant_param_bytes
        ram = m.arena_bytes + sum(i.bytes for i in m.inputs) + sum(o.bytes for o in m.outputs)
        est[name] = NodeFit(model_flash_bytes=flash, model_ram_bytes=ram, board=board.name,
                            board_flash_bytes=board.flash_bytes, board_ram_bytes=board.ram_bytes,
                            fits=flash <= board.flash_bytes and ram <= board.ram_bytes)
    return est


def nodes_report(out: Path, topo_name: str, title: str, nodes: Mapping[str, Node], links: Mapping[str, Link],
                 ev: FailureEvaluation, acc_f: list[float | None], acc8: list[float | None], n: int,
                 fit: Mapping[str, NodeFit]) -> None:
    """``nodes.md/.json/.png``: per node MACs, weights, arena; per link bytes and int8 parameters; float
    vs int8 accuracy per failure configuration."""
    models = {name: d.require_model() for name, d in nodes.items()}
    node_rows = [[name, d.role, m.aggregation, f"{m.macs:,}", f"{m.weight_bytes:,}", f"{m.arena_bytes:,}",
                  f"{fit[name].model_ram_bytes:,} / {fit[name].board_ram_bytes:,}",
                  ", ".join(f"{i.name} {tuple(i.shape)}" for i in m.inputs),
                  ", ".join(f"{o.name} {tuple(o.shape)}" for o in m.outputs)]
                 for (name, d), m in zip(nodes.items(), models.values())]
    link_rows = [[l, "skip" if d.skip else "normal", str(tuple(d.shape)), f"{d.bytes:,}",
                  f"{d.scale:.6g}", d.zero_point] for l, d in links.items()]
    acc_rows = [[ev.config_label(i), "".join(map(str, c)),
                 pct(acc_f[i]) if acc_f[i] is not None else "no path", pct(acc8[i]) if acc8[i] is not None else "no path"]
                for i, c in enumerate(ev.configs)]
    md = (f"# {topo_name} — {title}: per-node int8 models\n\n"
          + md_table(["node", "role", "aggregation", "MACs", "weights B", "arena B", "RAM est. / board B",
                      "inputs", "outputs"], node_rows)
          + "\n\n## Links (one int8 scale/zero point, used by both ends)\n\n"
          + md_table(["link", "kind", "shape", "bytes", "scale", "zero point"], link_rows)
          + f"\n\n## Accuracy per failure configuration, float vs int8 (tflite_micro), {n} test samples\n\n"
          + md_table(["failed", "bits", "float (%)", "int8 (%)"], acc_rows) + "\n")
    data = {"nodes": encode(dict(nodes)), "links": encode(dict(links)), "float_accuracy": acc_f,
            "int8_accuracy": acc8, "samples": n, "configs": ev.configs, "fit": encode(dict(fit))}

    def plot(ax: Any) -> None:
        labels = [ev.config_label(i) for i in range(len(ev.configs))]
        grouped_bars(ax, labels, {"float": acc_f, "int8 (TFLM)": acc8}, title=f"{topo_name}: float vs int8 split")
    write_report(out, "nodes", md, data, plot)


NODE_TABLE_HEADER = ("node", "node<id>", "id", "board", "role")


def node_table(manifest: Manifest) -> list[list[str]]:
    """One row per node: its name, ``node<id>``, the id (manifest ``node_id``; "-" before stage firmware),
    its board and role — every name ``python -m host.harness --drop`` accepts for the node."""
    return [[name, f"node{n.node_id}" if n.node_id is not None else "-",
             str(n.node_id) if n.node_id is not None else "-", n.board, n.role] for name, n in manifest.nodes.items()]


def write_summary(out: Path, manifest: Manifest, title: str, n_test: int) -> Path:
    """``summary.md``: what was built, the node id table, the accuracies and where the files are."""
    ev = manifest.stages.evaluate
    lines = [f"# {manifest.preset} / {title} (partition {manifest.partition}, board {manifest.board}, "
             f"seed {manifest.seed})", "",
             f"Stages done: {', '.join(manifest.stages_done())}. Dataset {manifest.dataset.name}, "
             f"{n_test} test samples.", "",
             "## Nodes", "",
             "A node answers to its name, `node<id>` or the bare id "
             "(`python -m host.harness --drop edge`, `--drop node2`, `--drop 2`).", "",
             md_table(NODE_TABLE_HEADER, node_table(manifest)), "",
             "## Accuracy", "",
             f"Float, no failure: {pct(ev.no_failure_accuracy) if ev.no_failure_accuracy is not None else '-'} %; "
             "average per reliability setting: "
             + ", ".join(f"{k} {pct(v)} %" for k, v in ev.average_accuracy.items())
             + f" ({ev.report}).", ""]
    if manifest.platformio is not None:
        lines += ["## PlatformIO", "", f"`{manifest.platformio.ini}`: environments "
                  + ", ".join(f"`{e}`" for e in manifest.platformio.envs) + ".", ""]
    path = Path(out) / "summary.md"
    path.write_text("\n".join(lines))
    return path
