"""``python -m host.ml.nonn``: the NoNN / failure-resilient distillation experiment and partition inspection."""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from dataclasses import replace
from pathlib import Path

from host.ml.nonn.experiment import DEFAULT_VARIANTS, VARIANTS, ExperimentConfig


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t.strip())


def _add_common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--dataset", default="cifar10",
                    help="cifar10 | fashion | cifar100 (needs --data-path to the CIFAR-100 python files) | "
                         "any host.ml.datasets name (default: cifar10)")
    ap.add_argument("--data-path", default=None, help="path= option of the dataset loader (e.g. CIFAR-100 files)")
    ap.add_argument("--students", "-S", type=int, default=8, help="number of students / devices S (default: 8)")
    ap.add_argument("--parts", "-M", type=int, default=None,
                    help="parts M of the averaging variants (must divide S; default: S/2)")
    ap.add_argument("--max-train", type=int, default=None, help="subsample the training set (quick runs)")
    ap.add_argument("--max-test", type=int, default=None, help="subsample the test set")
    ap.add_argument("--teacher-epochs", type=int, default=None, help="teacher epochs (default: 15)")
    ap.add_argument("--teacher-widths", default=None,
                    help="teacher group widths, comma-separated; the last is the partitioned filter count F "
                         "(default: 16,32,128)")
    ap.add_argument("--teacher-blocks", type=int, default=None, help="residual blocks per teacher group (default: 1)")
    ap.add_argument("--top-k", type=int, default=None, help="filters per image in the graphs (default: 50*F/256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cache", action="store_true", help="retrain even when a cached model exists")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars (epoch lines still print)")


def _config(args) -> ExperimentConfig:
    cfg = ExperimentConfig(dataset=args.dataset, students=args.students, parts=args.parts,
                           max_train=args.max_train, max_test=args.max_test, seed=args.seed, top_k=args.top_k)
    if args.data_path:
        cfg.dataset_options["path"] = args.data_path
    t = cfg.teacher
    if args.teacher_widths:
        t = replace(t, widths=_ints(args.teacher_widths))
    if args.teacher_blocks:
        t = replace(t, blocks=args.teacher_blocks)
    tt = replace(cfg.teacher_train, seed=args.seed,
                 **({"epochs": args.teacher_epochs} if args.teacher_epochs else {}))
    return replace(cfg, teacher=t, teacher_train=tt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.ml.nonn", description=__doc__ + "\n\n" + (
        "experiment: train (or load cached) teacher, partition its final-layer filters (NoNN's Louvain and the "
        "balanced eigenvector partition), distil S students per variant, evaluate accuracy for k = 0..S failed "
        "students, write nonn_<dataset>_s<S>.md/.json/.png.\n"
        "partition: train or load the teacher and print both partitions (part sizes, unused filters)."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("experiment", help="the whole failure experiment, written as a report")
    _add_common(ex)
    ex.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help=f"comma-separated, of {', '.join(VARIANTS)} (default: {','.join(DEFAULT_VARIANTS)})")
    ex.add_argument("--epochs", type=int, default=None, help="student epochs (default: 10)")
    ex.add_argument("--student-max-train", type=int, default=None,
                    help="train the students on a seeded subset of this many training images (teacher: all)")
    ex.add_argument("--student-width", type=int, default=None, help="student base channels (default: 16)")
    ex.add_argument("--batch-size", type=int, default=None, help="student batch size (default: 128)")
    ex.add_argument("--lr", type=float, default=None, help="student learning rate (Adam, cosine; default: 2e-3)")
    ex.add_argument("--no-augment", action="store_true", help="no crop/flip augmentation for the students")
    ex.add_argument("--train-drop", type=float, default=None,
                    help="drop each student with this probability per training sample (default 0: the papers "
                         "do not say they simulate failures in training)")
    ex.add_argument("--alpha", type=float, default=None, help="KD weight alpha (default 0.9)")
    ex.add_argument("--temperature", type=float, default=None, help="KD temperature T (default 4)")
    ex.add_argument("--beta", type=float, default=None, help="activation-transfer weight beta (default 1e4)")
    ex.add_argument("--max-subsets", type=int, default=100,
                    help="failure subsets per k: all C(S,k) up to this many, else a seeded uniform sample "
                         "(default: 100; 0 = all)")
    ex.add_argument("--out", default="build/nonn", help="report directory (default: build/nonn)")
    pa = sub.add_parser("partition", help="print both partitions of a (cached) teacher")
    _add_common(pa)
    args = ap.parse_args(argv)

    cfg = _config(args)
    if args.command == "partition":
        return _partition(cfg, args)
    st = replace(cfg.student_train, seed=args.seed, augment=not args.no_augment,
                 **{k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size,
                                      "learning_rate": args.lr, "train_drop": args.train_drop,
                                      "alpha": args.alpha, "temperature": args.temperature,
                                      "beta": args.beta}.items() if v is not None})
    student = replace(cfg.student, width=args.student_width) if args.student_width else cfg.student
    cfg = replace(cfg, variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
                  student_train=st, student=student, max_subsets=args.max_subsets or None,
                  student_max_train=args.student_max_train)
    from host.ml.nonn.experiment import run_experiment

    data = run_experiment(cfg, out=Path(args.out), progress=not args.no_progress, use_cache=not args.no_cache)
    print(f"wrote {', '.join(data['paths'].values())}")
    return 0


def _partition(cfg: ExperimentConfig, args) -> int:
    from host.ml.nonn.experiment import load_experiment_data, make_partition
    from host.ml.nonn.training import teacher_outputs, train_teacher

    ds, _ = load_experiment_data(cfg)
    teacher = train_teacher(ds, cfg.teacher, cfg.teacher_train, progress=not args.no_progress,
                            use_cache=not args.no_cache)
    _, acts = teacher_outputs(teacher.model, ds.x_val)
    out = {}
    for kind, m in [("nonn", cfg.students), ("eigen", cfg.students), ("nonn", cfg.averaging_parts),
                    ("eigen", cfg.averaging_parts)]:
        p = make_partition(kind, acts, m, cfg)
        out[f"{kind}_M{m}"] = {"sizes": p.sizes, "unused": len(p.unused),
                               **({"notes": p.info["notes"], "community_sizes": p.info["community_sizes"],
                                   "isolated": p.info["isolated_filters"]} if kind == "nonn" else {})}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
