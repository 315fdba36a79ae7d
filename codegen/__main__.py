"""Command line: ``python -m codegen {generate,verify,report} MODEL.tflite ...``.

Exit status: 0 on success, 1 when ``verify`` finds differing bytes, 2 on any error. Errors are one
``error: ...`` line on stderr (file, problem, what to do), never a traceback: ``--traceback`` shows one for
errors that are not about the input (bugs), to report them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .emit import generate_module
from .ops.context import LoweringOptions
from .errors import CodegenError
from .report import format_report, report_model
from .verify import TARGETS, verify_model


def _generate(args: argparse.Namespace) -> int:
    info = generate_module(args.model, args.output, name=args.name, options=_options(args))
    print(f"wrote {info.c_path} and {info.h_path}")
    print(f"  {len(info.ops)} ops, {info.macs:,} MACs, weights {info.weight_bytes:,} B, "
          f"arena {info.arena_bytes:,} B (lower bound {info.arena_lower_bound:,} B), "
          f"generated in {info.generate_seconds:.2f} s")
    kernels = "firmware/cmsis_nn/*.c" + ("" if not info.uses_ext_kernels else " (incl. resilinet_nn_ext.c)")
    print(f"  build with: -I firmware/cmsis_nn {info.c_path.name} {kernels}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    result = verify_model(args.model, samples=args.samples, seed=args.seed, inputs=args.inputs, target=args.target,
                          work_dir=args.work_dir, all_tensors=args.all_tensors, options=_options(args))
    print(f"{result.model.name}: {result.samples} samples on target '{result.target}'")
    for o in result.outputs:
        status = "OK" if o.mismatched_bytes == 0 else "MISMATCH"
        print(f"  {status:8s} {o.name}: {o.mismatched_bytes} of {o.total_bytes} bytes differ"
              + (f" in {o.mismatched_samples} samples, max |diff| {o.max_abs_diff}" if o.mismatched_bytes else ""))
    print("bit-exact with tflite_micro" if result.ok else f"{result.mismatched_bytes} mismatching bytes")
    return 0 if result.ok else 1


def _options(args: argparse.Namespace) -> LoweringOptions:
    return LoweringOptions(wide_fc_weights=args.wide_fc)


def _report(args: argparse.Namespace) -> int:
    print(format_report(report_model(args.model)))
    return 0


_MODEL_HELP = "full-integer int8 .tflite model (TFLite schema 3)"
_WIDE_FC_HELP = ("fully connected weights as int16 for our kernels: twice the flash of those weights, and slower "
                 "than the default int8 paired-rows layout (kept for comparison)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m codegen", description="int8 .tflite -> C module calling CMSIS-NN (bit-exact with TFLM)",
        epilog="The model is checked first: a missing, truncated, corrupt or non-TFLite file, an unsupported "
               "op or an invalid option stops with one 'error: ...' line naming the file, the problem and the "
               "fix. Exit status: 0 ok, 1 verify found differing bytes, 2 error.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{generate,verify,report}")
    # Every subcommand takes the model and --traceback (options given before the subcommand are not seen).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("model", type=Path, metavar="MODEL", help=_MODEL_HELP)
    common.add_argument("--traceback", action="store_true",
                        help="show the Python traceback of an unexpected failure (for bug reports)")

    g = sub.add_parser("generate", parents=[common], help="write N.c and N.h",
                       description="Write N.c and N.h for MODEL (N: --name, else the model's file name).")
    g.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    g.add_argument("--name", help="C prefix and file name (default: model file stem, sanitized)")
    g.add_argument("--wide-fc", action="store_true", help=_WIDE_FC_HELP)
    g.set_defaults(func=_generate)

    v = sub.add_parser("verify", parents=[common], help="build, run and compare every output byte with tflite_micro",
                       description="Generate, build and run MODEL on TARGET and compare every output byte with "
                                   "tflite_micro. Exit status 1 if any byte differs.")
    v.add_argument("--samples", type=int, default=50, help="random samples when --inputs is not given")
    v.add_argument("--seed", type=int, default=0, help="seed of the random samples")
    v.add_argument("--inputs", type=Path, help=".npy (single input, [N, *shape] of the input's type: int8, int16 or "
                   "float32) or .npz (arrays by input name)")
    v.add_argument("--target", choices=sorted(TARGETS), default="host",
                   help="where the generated C runs (host: portable C on this machine; host-dsp: the SIMD "
                        "kernels emulated on the host; qemu*: an emulated Cortex-M board)")
    v.add_argument("--all-tensors", action="store_true", help="also compare every intermediate activation")
    v.add_argument("--work-dir", type=Path, help="keep generated sources and binaries here")
    v.add_argument("--wide-fc", action="store_true", help=_WIDE_FC_HELP)
    v.set_defaults(func=_verify)

    r = sub.add_parser("report", parents=[common], help="ops, MACs, weights, arena and scratch budget",
                       description="Print MODEL's op table and its memory budget (nothing is written).")
    r.set_defaults(func=_report)
    return parser


def _error(message: str, one_line: bool = True) -> int:
    # Input errors are one line whatever the message holds (tensor names may contain newlines): scripts
    # grep for "error:". Toolchain failures keep their lines: the compiler's output is the useful part.
    print("error: " + (" ".join(message.split()) if one_line else message.strip()), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CodegenError as exc:  # bad model file, unsupported op: the message says what to do
        if args.traceback and exc.__cause__ is not None:  # a wrapped failure inside a lowering
            raise
        message = str(exc)
        # Op errors name the op, not the file: say which file (messages naming it already start with it).
        return _error(message if message.startswith(str(args.model)) else f"{args.model}: {message}")
    except OSError as exc:  # an --inputs file or the output directory
        return _error(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
    except Exception as exc:  # noqa: BLE001 - the CLI's promise is one error line, not a traceback
        if args.traceback:
            raise
        return _error(f"{args.model}: {exc} ({type(exc).__name__}; re-run with --traceback to see where)",
                      one_line=False)


if __name__ == "__main__":
    sys.exit(main())
