"""Command line: ``python -m codegen {generate,verify,report} MODEL.tflite ...``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .emit import generate_module
from .errors import CodegenError
from .report import format_report, report_model
from .verify import TARGETS, verify_model


def _generate(args: argparse.Namespace) -> int:
    info = generate_module(args.model, args.output, name=args.name)
    print(f"wrote {info.c_path} and {info.h_path}")
    print(f"  {len(info.ops)} ops, {info.macs:,} MACs, weights {info.weight_bytes:,} B, "
          f"arena {info.arena_bytes:,} B (lower bound {info.arena_lower_bound:,} B), "
          f"generated in {info.generate_seconds:.2f} s")
    kernels = "firmware/cmsis_nn/*.c" + ("" if not info.uses_ext_kernels else " (incl. resilinet_nn_ext.c)")
    print(f"  build with: -I firmware/cmsis_nn {info.c_path.name} {kernels}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    result = verify_model(args.model, samples=args.samples, seed=args.seed, inputs=args.inputs, target=args.target,
                          work_dir=args.work_dir, all_tensors=args.all_tensors)
    print(f"{result.model.name}: {result.samples} samples on target '{result.target}'")
    for o in result.outputs:
        status = "OK" if o.mismatched_bytes == 0 else "MISMATCH"
        print(f"  {status:8s} {o.name}: {o.mismatched_bytes} of {o.total_bytes} bytes differ"
              + (f" in {o.mismatched_samples} samples, max |diff| {o.max_abs_diff}" if o.mismatched_bytes else ""))
    print("bit-exact with tflite_micro" if result.ok else f"{result.mismatched_bytes} mismatching bytes")
    return 0 if result.ok else 1


def _report(args: argparse.Namespace) -> int:
    print(format_report(report_model(args.model)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m codegen",
                                     description="int8 .tflite -> C module calling CMSIS-NN (bit-exact with TFLM)")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write N.c and N.h")
    g.add_argument("model", type=Path)
    g.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    g.add_argument("--name", help="C prefix and file name (default: model file stem, sanitized)")
    g.set_defaults(func=_generate)

    v = sub.add_parser("verify", help="build, run and compare every output byte with tflite_micro")
    v.add_argument("model", type=Path)
    v.add_argument("--samples", type=int, default=50, help="random samples when --inputs is not given")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--inputs", type=Path, help=".npy (single input, [N, *shape] int8) or .npz (arrays by input name)")
    v.add_argument("--target", choices=sorted(TARGETS), default="host")
    v.add_argument("--all-tensors", action="store_true", help="also compare every intermediate activation")
    v.add_argument("--work-dir", type=Path, help="keep generated sources and binaries here")
    v.set_defaults(func=_verify)

    r = sub.add_parser("report", help="ops, MACs, weights, arena and scratch budget")
    r.add_argument("model", type=Path)
    r.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CodegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
