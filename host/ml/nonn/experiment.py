"""The experiment: teacher -> filter graph -> partitions -> distilled students -> accuracy vs failed students.

Variants (S students, M = ``parts`` for the averaging variants, default S/2):

==========  =========================================  =====  ==========
name        partition                                  M      aggregator
==========  =========================================  =====  ==========
nonn        NoNN (activation hubs, Louvain, greedy)    S      zero-fill
eigen       balanced eigenvector (co-activation)       S      zero-fill
avg         NoNN                                       S/2    averaging
both        balanced eigenvector                       S/2    averaging
nonn_all    NoNN keeping its dropped group P0          S      zero-fill
==========  =========================================  =====  ==========

(With one student per part, averaging *is* zero-filling, so every variant uses the same aggregator.)
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host.ml.datasets import Dataset, load_dataset
from host.report_files import md_table, pct, write_report
from host.ml.nonn.failures import evaluate_failures, student_vectors
from host.ml.nonn.networks import (StudentConfig, TeacherConfig, aggregator_cost, device_cost, device_model, part_of_student)
from host.ml.nonn.partition import (NONN_PERCENTILE, NONN_RESOLUTION, Partition, activation_graph, balanced_eigen_partition,
                        nonn_partition, partition_quality)
from host.ml.nonn.training import (STUDENT_TRAIN, TEACHER_TRAIN, Trained, TrainSettings, distill, teacher_outputs,
                                   train_teacher)

#: Cortex-M4 budget per student (issue 6): int8 weights and the largest activation pair.
BUDGET_WEIGHT_BYTES = 400 * 1024
BUDGET_ACTIVATION_BYTES = 96 * 1024


@dataclass(frozen=True)
class Variant:
    name: str
    title: str
    partitioner: str   # "nonn" | "eigen" | "nonn_all"
    averaging: bool


VARIANTS: dict[str, Variant] = {
    "nonn": Variant("nonn", "NoNN", "nonn", False),
    "eigen": Variant("eigen", "Eigenvector only", "eigen", False),
    "avg": Variant("avg", "Averaging only", "nonn", True),
    "both": Variant("both", "Averaging + eigenvector", "eigen", True),
    "nonn_all": Variant("nonn_all", "NoNN, all filters", "nonn_all", False),
}
DEFAULT_VARIANTS = ("nonn", "eigen", "avg", "both")


@dataclass
class ExperimentConfig:
    dataset: str = "cifar10"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    students: int = 8
    #: M for the averaging variants (None = S/2)
    parts: int | None = None
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    teacher: TeacherConfig = TeacherConfig()
    teacher_train: TrainSettings = TEACHER_TRAIN
    student: StudentConfig = StudentConfig()
    student_train: TrainSettings = STUDENT_TRAIN
    max_train: int | None = None
    max_test: int | None = None
    #: students only: a seeded subset of the (possibly already subsampled) training split
    student_max_train: int | None = None
    #: failure subsets per k: all C(S, k) up to this many, else a seeded uniform sample
    max_subsets: int | None = 100
    seed: int = 0
    top_k: int | None = None
    percentile: float = NONN_PERCENTILE
    resolution: float = NONN_RESOLUTION
    eigen_rule: str = "coactivation"

    @property
    def averaging_parts(self) -> int:
        return self.parts if self.parts is not None else max(1, self.students // 2)

    def parts_for(self, v: Variant) -> int:
        return self.averaging_parts if v.averaging else self.students


def load_experiment_data(cfg: ExperimentConfig) -> tuple[Dataset, int]:
    """The dataset (subsampled for quick runs) and the full training-set size (for time extrapolation)."""
    opts = dict(cfg.dataset_options)
    name = cfg.dataset
    if name == "cifar100":
        name = "cifar10"
        opts.setdefault("variant", "cifar100")
    ds = load_dataset(name, seed=cfg.seed, **opts)
    full = len(ds.x_train)
    if cfg.max_train or cfg.max_test:
        ds = ds.subset(max_train=cfg.max_train, max_val=cfg.max_train and max(200, cfg.max_train // 10),
                       max_test=cfg.max_test, seed=cfg.seed)
    return ds, full


def make_partition(kind: str, acts: np.ndarray, num_parts: int, cfg: ExperimentConfig) -> Partition:
    if kind == "nonn":
        return nonn_partition(acts, num_parts, top_k=cfg.top_k, percentile=cfg.percentile,
                              resolution=cfg.resolution, seed=cfg.seed)
    if kind == "nonn_all":
        return nonn_partition(acts, num_parts, top_k=cfg.top_k, percentile=cfg.percentile,
                              resolution=cfg.resolution, seed=cfg.seed, drop_largest=False)
    if kind == "eigen":
        return balanced_eigen_partition(acts, num_parts, rule=cfg.eigen_rule, top_k=cfg.top_k)
    raise ValueError(f"unknown partitioner {kind!r}")


def run_experiment(cfg: ExperimentConfig, *, out: Path | str = "build/nonn", ds: Dataset | None = None,
                   progress: bool = True, use_cache: bool = True, log=print) -> dict[str, Any]:
    """Run every step and write ``nonn_<dataset>_s<S>.md/.json/.png`` into ``out``; returns the JSON data.

    ``ds`` replaces loading ``cfg.dataset`` (tests pass small synthetic data).
    """
    unknown = [v for v in cfg.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; variants: {', '.join(VARIANTS)}")
    s = cfg.students
    for v in cfg.variants:
        part_of_student(s, cfg.parts_for(VARIANTS[v]))  # validates M | S early
    timings: dict[str, float] = {}
    t0 = time.time()
    if ds is None:
        ds, full_train = load_experiment_data(cfg)
    else:
        full_train = len(ds.x_train)
    timings["data"] = time.time() - t0
    log(f"data: {ds.name}, train {len(ds.x_train)}, val {len(ds.x_val)}, test {len(ds.x_test)}")

    teacher, teacher_info = _teacher_step(cfg, ds, full_train, progress, use_cache, log)
    t0 = time.time()
    graphs, partitions = _partition_step(cfg, teacher.model, ds)
    timings["partition"] = time.time() - t0
    part_info = _partition_info(graphs, partitions, log)

    sds = ds.subset(max_train=cfg.student_max_train, seed=cfg.seed + 1) if cfg.student_max_train else ds
    results = {v: _variant_step(cfg, v, teacher, sds, ds, partitions, progress, use_cache, log)
               for v in cfg.variants}

    data = {"experiment": "nonn_failures", "dataset": ds.name, "students": s,
            "averaging_parts": cfg.averaging_parts, "config": _config_dict(cfg),
            "samples": {"train": len(ds.x_train), "student_train": len(sds.x_train), "val": len(ds.x_val),
                        "test": len(ds.x_test)},
            "random_guess": ds.random_guess_accuracy() if len(ds.y_test) else None,
            "teacher": teacher_info, "partitions": part_info, "variants": results, "timings_s": timings}
    md = render_markdown(data)
    title = f"nonn_{ds.name}_s{s}"
    paths = write_report(Path(out), title, md, data, lambda ax: plot_curves(ax, data))
    data["paths"] = {k: str(v) for k, v in paths.items()}
    return data


def _teacher_step(cfg: ExperimentConfig, ds: Dataset, full_train: int, progress: bool, use_cache: bool,
                  log) -> tuple[Trained, dict[str, Any]]:
    """Train (or load) the teacher; its accuracy, size and training time, extrapolated to the full train split."""
    teacher = train_teacher(ds, cfg.teacher, cfg.teacher_train, progress=progress, use_cache=use_cache)
    t_logits_test, _ = teacher_outputs(teacher.model, ds.x_test)
    teacher_acc = float(np.mean(np.argmax(t_logits_test, 1) == ds.y_test))
    per_epoch = float(np.mean(teacher.history["seconds"])) if teacher.history.get("seconds") else None
    teacher_info = {
        "config": asdict(cfg.teacher), "train": asdict(cfg.teacher_train), "params": int(teacher.model.count_params()),
        "filters": cfg.teacher.num_filters, "test_accuracy": teacher_acc, "best_epoch": teacher.best_epoch,
        "seconds": teacher.seconds, "seconds_per_epoch": per_epoch, "cached": teacher.cached,
        "train_samples": len(ds.x_train), "full_train_samples": full_train,
        "extrapolated_full_seconds": (per_epoch * cfg.teacher_train.epochs * full_train / len(ds.x_train)
                                      if per_epoch else None),
        "history": teacher.history,
    }
    log(f"teacher: test accuracy {pct(teacher_acc)} %, {teacher_info['params']:,} params, "
        f"{teacher.seconds:.0f} s{' (cached)' if teacher.cached else ''}")
    return teacher, teacher_info


def _partition_step(cfg: ExperimentConfig, teacher_model, ds: Dataset
                    ) -> tuple[dict[str, np.ndarray], dict[tuple[str, int], Partition]]:
    """The filter graphs on the held-out (validation) split, and one partition per (partitioner, M) that the
    variants need (variants sharing both share the partition)."""
    _, acts = teacher_outputs(teacher_model, ds.x_val)
    graphs = {"hub": activation_graph(acts, rule="hub", top_k=cfg.top_k),
              "coactivation": activation_graph(acts, rule="coactivation", top_k=cfg.top_k)}
    partitions: dict[tuple[str, int], Partition] = {}
    for v in cfg.variants:
        var = VARIANTS[v]
        key = (var.partitioner, cfg.parts_for(var))
        if key not in partitions:
            partitions[key] = make_partition(var.partitioner, acts, key[1], cfg)
    return graphs, partitions


def _partition_info(graphs: dict[str, np.ndarray], partitions: dict[tuple[str, int], Partition],
                    log) -> dict[str, Any]:
    """Each partition as saved in the report, with its quality on both filter graphs."""
    part_info = {}
    for (kind, m), p in partitions.items():
        q = {g: partition_quality(w, p) for g, w in graphs.items()}
        part_info[f"{kind}_M{m}"] = {**p.to_dict(), "quality": q}
        log(f"partition {kind} M={m}: sizes {p.sizes}, unused {len(p.unused)}")
    return part_info


def _device_costs(model, s: int, m: int) -> list[dict[str, Any]]:
    """Per student: its int8 cost on a device, its payload, and whether it fits the Cortex-M4 budget."""
    devices = []
    assignment = part_of_student(s, m)
    for i in range(s):
        c = device_cost(device_model(model, i))
        devices.append({"student": i, "part": assignment[i], **c.to_dict(),
                        "payload_int8_bytes": c.output_values, "payload_fp32_bytes": 4 * c.output_values,
                        "fits_m4": c.int8_weight_bytes <= BUDGET_WEIGHT_BYTES
                        and c.max_activation_pair_bytes <= BUDGET_ACTIVATION_BYTES})
    return devices


def _variant_step(cfg: ExperimentConfig, v: str, teacher: Trained, sds: Dataset, ds: Dataset,
                  partitions: dict[tuple[str, int], Partition], progress: bool, use_cache: bool,
                  log) -> dict[str, Any]:
    """Distil one variant's students (on ``sds``) and measure them on the test split under every failure count."""
    s = cfg.students
    var = VARIANTS[v]
    m = cfg.parts_for(var)
    p = partitions[(var.partitioner, m)]
    tr = distill(teacher.model, teacher.key, sds, p, s, cfg.student, cfg.student_train,
                 label=f"{v} (S={s}, M={m})", progress=progress, use_cache=use_cache)
    t0 = time.time()
    vecs = student_vectors(tr.model, ds.x_test)
    curve = evaluate_failures(tr.model, ds.x_test, ds.y_test, max_subsets=cfg.max_subsets, seed=cfg.seed,
                              vectors=vecs)
    eval_s = time.time() - t0
    devices = _device_costs(tr.model, s, m)
    result = {
        "title": var.title, "partition": f"{var.partitioner}_M{m}", "parts": m, "averaging": var.averaging,
        "part_sizes": p.sizes, "curve": [r.to_dict() for r in curve],
        "mean_by_k": [r.mean for r in curve], "std_by_k": [r.std for r in curve],
        "no_failure_accuracy": curve[0].mean, "devices": devices, "aggregator": aggregator_cost(tr.model),
        "train_seconds": tr.seconds, "eval_seconds": eval_s, "best_epoch": tr.best_epoch,
        "history": tr.history, "cached": tr.cached,
    }
    half = curve[s // 2].mean if len(curve) > s // 2 else None
    log(f"{v}: no failure {pct(curve[0].mean)} %, k={s // 2}: {pct(half)} %, train {tr.seconds:.0f} s"
        f"{' (cached)' if tr.cached else ''}")
    return result


def _config_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["variants"] = list(cfg.variants)
    return d


# ----------------------------------------------------------------------------------- report
def plot_curves(ax, data: dict[str, Any]) -> None:
    s = data["students"]
    ks = np.arange(s + 1)
    for v, r in data["variants"].items():
        mean = 100 * np.asarray(r["mean_by_k"])
        lo = 100 * np.asarray([c["min"] for c in r["curve"]])
        hi = 100 * np.asarray([c["max"] for c in r["curve"]])
        line, = ax.plot(ks, mean, marker="o", label=f"{r['title']} (M={r['parts']})")
        ax.fill_between(ks, lo, hi, color=line.get_color(), alpha=0.12)
    ax.axhline(100 * data["teacher"]["test_accuracy"], color="k", linestyle="--", linewidth=1, label="teacher")
    if data.get("random_guess") is not None:
        ax.axhline(100 * data["random_guess"], color="grey", linestyle=":", linewidth=1, label="random guess")
    ax.set_xlabel(f"failed students k (of S = {s})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(ks)
    ax.set_ylim(0, 100)
    ax.set_title(f"{data['dataset']}: accuracy vs failed students (mean over subsets; band = min..max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")


def render_markdown(data: dict[str, Any]) -> str:
    """The experiment's Markdown report (the PNG link is appended by ``write_report``)."""
    s = data["students"]
    lines = [f"# Distributed students under failures — {data['dataset']}, S = {s} students", ""]
    lines += _md_setup(data)
    lines += _md_teacher(data["teacher"])
    lines += _md_partitions(data["partitions"])
    lines += _md_accuracy(data["variants"], s)
    lines += _md_headline(data["variants"], s, data["teacher"])
    lines += _md_devices(data["variants"])
    lines += _md_training(data["variants"])
    lines += _md_inferred()
    return "\n".join(lines) + "\n"


def _md_setup(data: dict[str, Any]) -> list[str]:
    """Splits, students' training and the random-guess accuracy, in one paragraph."""
    cfg = data["config"]
    sm = data["samples"]
    return [
        f"Train {sm['train']} (teacher) / {sm['student_train']} (students) / val {sm['val']} (filter graph and "
        f"model selection) / test {sm['test']} images. "
        f"Averaging variants use M = {data['averaging_parts']} parts (student i learns part i mod M). "
        f"Students: width {cfg['student']['width']}, {cfg['student_train']['epochs']} epochs "
        f"({cfg['student_train']['optimizer']}, lr {cfg['student_train']['learning_rate']}, "
        f"augment {cfg['student_train']['augment']}), loss KD (alpha {cfg['student_train']['alpha']}, "
        f"T {cfg['student_train']['temperature']}) + AT (beta {cfg['student_train']['beta']:g}), "
        f"train-time student drop {cfg['student_train']['train_drop']}. "
        f"Random-guess accuracy {pct(data['random_guess'])} %."]


def _md_teacher(t: dict[str, Any]) -> list[str]:
    """## Teacher: size, accuracy, training time (and extrapolated to the full training split)."""
    ext = t["extrapolated_full_seconds"]
    return ["", "## Teacher", "", md_table(
        ["widths x blocks", "filters F", "params", "epochs", "test acc. (%)", "train time (s)", "s / epoch",
         f"extrapolated to {t['full_train_samples']} images (min)"],
        [[f"{tuple(t['config']['widths'])} x {t['config']['blocks']}", t["filters"], f"{t['params']:,}",
          t["train"]["epochs"], pct(t["test_accuracy"]), f"{t['seconds']:.0f}" + (" (cached)" if t["cached"] else ""),
          f"{t['seconds_per_epoch']:.1f}" if t["seconds_per_epoch"] else "—",
          f"{ext / 60:.1f}" if ext else "—"]])]


def _md_partitions(partitions: dict[str, Any]) -> list[str]:
    """## Partitions: sizes and quality of each, then how NoNN's were found."""
    lines = ["", "## Partitions of the teacher's final-layer filters", ""]
    rows = []
    for key, p in partitions.items():
        q = p["quality"]
        rows.append([key, p["num_filters"] - p["unused"], p["unused"], " ".join(map(str, p["sizes"])),
                     f"{max(p['sizes'])}/{min(p['sizes'])}",
                     f"{100 * q['coactivation']['within_share']:.1f}", f"{q['coactivation']['modularity']:.3f}",
                     f"{100 * q['hub']['within_share']:.1f}"])
    lines.append(md_table(["partition", "filters used", "unused", "part sizes", "max/min",
                           "co-activation kept in parts (%)", "co-act. modularity", "hub weight kept in parts (%)"],
                          rows))
    for key, p in partitions.items():
        if key.startswith("nonn"):
            i = p["info"]
            lines.append(f"\n{key}: top-k {i['top_k']}, threshold {i['threshold']:.4f} (percentile {i['percentile']}), "
                         f"{i['edges_kept']} edges kept, {i['isolated_filters']} isolated filters, Louvain "
                         f"communities (non-trivial) {i['community_sizes']}, groups after the size merge "
                         f"{i['group_sizes']}; " + "; ".join(i["notes"]))
    return lines


def _md_accuracy(res: dict[str, Any], s: int) -> list[str]:
    """## Accuracy against k failed students: one row per k, one column per variant."""
    names = list(res)
    lines = ["", "## Accuracy (%) against the number of failed students", "",
             "Mean ± std over the failed-student subsets (all C(S,k), or a seeded uniform sample), then "
             "[min .. max]; 'lost p' = share of the subsets in which some part lost all of its students.", ""]
    header = ["k", "subsets"] + [f"{res[v]['title']} (M={res[v]['parts']})" for v in names]
    rows = []
    for k in range(s + 1):
        c0 = res[names[0]]["curve"][k]
        n = f"{len(c0['subsets'])}" + (f" of {c0['total_subsets']}" if c0["sampled"] else "")
        cells = []
        for v in names:
            c = res[v]["curve"][k]
            lost = f" lost {c['fraction_with_lost_part']:.2f}" if c["fraction_with_lost_part"] else ""
            cells.append(f"{pct(c['mean'], c['std'])} [{100 * c['min']:.1f} .. {100 * c['max']:.1f}]{lost}")
        rows.append([k, n] + cells)
    lines.append(md_table(header, rows))
    return lines


def _md_headline(res: dict[str, Any], s: int, t: dict[str, Any]) -> list[str]:
    """## Headline: no failure and half the students failed, against the teacher and against NoNN."""
    half = s // 2
    lines = ["", f"## Headline: k = {half} of {s} failed, and no failure", ""]
    base = res.get("nonn", {}).get("mean_by_k", [None] * (s + 1))[half] if "nonn" in res else None
    rows = []
    for v in res:
        r = res[v]
        m = r["mean_by_k"][half]
        rows.append([f"{r['title']} (M={r['parts']})", pct(r["no_failure_accuracy"]),
                     f"{100 * (r['no_failure_accuracy'] - t['test_accuracy']):+.2f}", pct(m),
                     f"{m / base:.2f}x" if base else "—"])
    lines.append(md_table(["variant", "no failure (%)", "vs teacher (pp)", f"k = {half} (%)",
                           "k = S/2 vs NoNN"], rows))
    lines.append(f"\nTeacher: {pct(t['test_accuracy'])} %.")
    return lines


def _value_range(devices: list[dict[str, Any]], key: str) -> str:
    """One device figure over the students: a single value, or min .. max."""
    lo, hi = min(x[key] for x in devices), max(x[key] for x in devices)
    return f"{lo:,}" if lo == hi else f"{lo:,} .. {hi:,}"


def _md_devices(res: dict[str, Any]) -> list[str]:
    """## Per device: each variant's students against the Cortex-M4 budget."""
    lines = ["", "## Per device (int8 estimates, batch 1)", "",
             f"Budget per Cortex-M4 student: weights <= {BUDGET_WEIGHT_BYTES // 1024} KB, largest activation "
             f"pair <= {BUDGET_ACTIVATION_BYTES // 1024} KB. Payload = one value per part filter per image.", ""]
    rows = []
    for v in res:
        r = res[v]
        d = r["devices"]
        rows.append([f"{r['title']} (M={r['parts']})", *(_value_range(d, key) for key in (
                     "params", "int8_weight_bytes", "max_activation_pair_bytes", "macs", "payload_int8_bytes",
                     "payload_fp32_bytes")), sum(x["payload_int8_bytes"] for x in d),
                     "yes" if all(x["fits_m4"] for x in d) else "NO",
                     f"{r['aggregator']['params']:,}"])
    lines.append(md_table(["variant", "params", "int8 weights (B)", "max act. pair (B)", "MACs",
                           "payload int8 (B)", "payload fp32 (B)", "total payload int8 (B)", "fits M4",
                           "aggregator params"], rows))
    return lines


def _md_training(res: dict[str, Any]) -> list[str]:
    """## Training: time, best epoch and validation accuracy of each variant's students."""
    rows = [[f"{res[v]['title']} (M={res[v]['parts']})", f"{res[v]['train_seconds']:.0f}"
             + (" (cached)" if res[v]["cached"] else ""), res[v]["best_epoch"],
             pct(max(res[v]["history"]["val_accuracy"])) if res[v]["history"].get("val_accuracy") else "—",
             f"{res[v]['eval_seconds']:.1f}"] for v in res]
    return ["", "## Training", "",
            md_table(["variant", "train (s)", "best epoch", "best val acc. (%)", "failure eval (s)"], rows)]


def _md_inferred() -> list[str]:
    """What the papers leave open and this reconstruction decided."""
    return ["", "## What is inferred (see docs in host/ml/nonn/__init__.py and /work/shared/docs/nonn.md)", "",
            "- Eigenvector partitioner: co-activation graph over each image's top-k filters, Newman modularity "
            "matrix, recursive median split of the leading eigenvector (reconstruction, not the paper's text).",
            "- Averaging: student i learns part i mod M; the aggregator averages the replicas that arrived and "
            "zero-fills a part only when all its replicas failed; the shared classifier is one dense layer.",
            "- A failed student's slice is zero in NoNN (its code has no failure handling).",
            "- NoNN with more parts than Louvain groups (its framework only ran 2 students): P0 stays dropped and "
            "the largest remaining group is halved (by filter index) until there are M parts; `nonn_all` keeps P0.",
            "- No failures are simulated in training unless `train_drop` > 0 (the papers do not say).",
            "- Teacher, students, epochs and optimisers are sized for this machine, not the papers' WRN-40-4 / "
            "WRN-16-1 at 200 epochs; top-k scales NoNN's 50-of-256 to F."]
