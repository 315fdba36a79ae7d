#!/usr/bin/env python3
"""Executed instructions per inference (and per op) of generated modules on QEMU's Cortex-M4 (mps2-an386).

    .venv/bin/python bench/kernel_instructions.py [MODEL.tflite ...] [--kernels DIR] [--json OUT]
                                                  [--compare BEFORE.json | --baseline GIT_REV]
                                                  [--no-check] [--per-op] [--work-dir DIR]

Without models it measures the three MLPerf Tiny models in ``<shared>/models/mlperf_tiny``. ``--baseline REV``
also measures the kernels of a git revision (``git archive REV firmware/cmsis_nn``) and prints both, e.g.
``--baseline HEAD`` for the effect of uncommitted kernel changes; ``--compare`` reads an earlier ``--json``.

Method (exact, not sampled):

* The model's module is generated with ``codegen`` twice: once as is (the total) and once with a timer read
  inserted before every op and before ``return 0`` of ``<name>_invoke`` (per op). Both are linked into one
  bare-metal image (own startup, semihosting output, ``-O2`` and the Cortex-M4 flags of the firmware) with
  the kernels of ``--kernels`` (default ``firmware/cmsis_nn``).
* QEMU runs it with ``-icount shift=7``: every instruction advances the virtual clock by exactly 2^7 = 128 ns.
  CMSDK APB timer 0 (0x40000000, 32-bit down counter clocked by the 25 MHz system clock, 40 ns per tick, read
  through the virtual clock) therefore advances by 3.2 ticks per instruction, so an interval of ``d`` ticks is
  ``round(d * 40 / 128)`` instructions with no ambiguity (the rounding error is at most 1/3.2 < 1/2). This is
  checked at start-up against a loop of known length (``calibration``): the tool refuses to report if the
  conversion is not exact. (With ``shift=0`` the same timer ticks once per 40 instructions, too coarse per op.)
  Counts are instructions executed, not cycles (QEMU models no pipeline, flash wait states or caches).
* The total is the un-instrumented ``invoke`` (from the LDR of the timer before the call to the one after it:
  the call, the null checks and every kernel). Per op: from the timer read before the op to the one after it
  (the op's buffer-size check, the call and the kernel; +2..3 instructions of the timer read itself).
  ``other`` = total - sum of ops (slightly negative: the per-op figures include the timer reads).
* The outputs of the un-instrumented run are compared with the ``tflite_micro`` interpreter (``--no-check``
  skips it): a fast kernel that computes the wrong bytes is not measured.
* ``cycles=True`` (``--cycles``): the same QEMU run also loads the cycle-estimate plugin (codegen/cycles.py,
  docs/cycle-estimate.md) with its window from ``bench_window_begin`` (called just before the first timer read
  of the total) to ``bench_window_end`` (just after the second): the total's instructions + a few (the marker
  call and the two timer reads), and their estimated Cortex-M4 cycles. Per op: a third copy of the module,
  ``<name>_cyc``, calls ``bench_window_begin`` before every op (the plugin then starts a new window, a lap), so
  each op's estimate includes the marker call (2 instructions, 6 cycles, and any register moves it causes).
* Inputs: one uniform random int8 sample (seed 0). The kernels have no data-dependent loops (except the
  softmax's exp, a few instructions), so another input changes the count by at most a few instructions.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from codegen.emit import build_module, write_module  # noqa: E402
from codegen.ops.context import LoweringOptions  # noqa: E402
from codegen.footprint import CORTEX_M4_FLAGS  # noqa: E402
from codegen.semihost import LINKER_LD, STARTUP_C  # noqa: E402
from codegen.verify import random_samples, tflm_reference  # noqa: E402

#: TFLM + CMSIS-NN on the same emulated board (docs/toolchain-facts.md), instructions per inference.
REFERENCE = {"ic_resnet8_int8": 29_863_986, "kws_dscnn_int8": 7_700_571, "ad_autoencoder_int8": 583_398}

ICOUNT_SHIFT = 7
NS_PER_TICK = 40  # 25 MHz system clock of mps2-an386
TIMER = 0x40000000  # CMSDK APB timer 0: CTRL +0, VALUE +4, RELOAD +8

_TIMER_C = f"""
#define BENCH_TIMER_VALUE (*(volatile uint32_t *)0x{TIMER + 4:08X}u)
static void bench_timer_start(void)
{{
    *(volatile uint32_t *)0x{TIMER:08X}u = 0u;
    *(volatile uint32_t *)0x{TIMER + 8:08X}u = 0xFFFFFFFFu;
    BENCH_TIMER_VALUE = 0xFFFFFFFFu;
    *(volatile uint32_t *)0x{TIMER:08X}u = 1u; /* enable, no interrupt */
}}
"""

#: Calibration loops: (iterations) -> 3 * n + 1 instructions between the two timer reads.
_CAL_LOOPS = (1, 2, 3, 7, 10, 13, 100, 1001)


def _c_array(name: str, values: object) -> str:
    flat = np.asarray(values, dtype=np.int8).reshape(-1)
    return f"static const int8_t {name}[{max(flat.size, 1)}] = {{{','.join(map(str, flat.tolist()))}}};"


#: BENCH_MARK of the cycle-estimate copy: a call of the plugin's lap marker (one window per op).
_LAP_HEADER = "#include <stdint.h>\nvoid bench_window_begin(void);\n#define BENCH_MARK(k) bench_window_begin()\n"


def _instrument(c_source: str, name: str, header: str | None = None) -> tuple[str, list[int]]:
    """Insert a timer read (or ``header``'s BENCH_MARK) before every op of ``<name>_invoke`` and before its
    final ``return 0;``.

    Returns the new source and the op index each mark precedes (the last mark precedes the return)."""
    ops: list[int] = []

    def mark(m: re.Match[str]) -> str:
        ops.append(int(m.group(2)))
        return f"{m.group(1)}BENCH_MARK({len(ops) - 1});\n{m.group(1)}/* op #{m.group(2)} "

    start = c_source.index(f"int32_t {name}_invoke(")
    body = re.sub(r"^( {4})/\* op #(\d+) ", mark, c_source[start:], flags=re.M)
    end = body.rindex("    return 0;\n}")
    body = body[:end] + f"    BENCH_MARK({len(ops)});\n" + body[end:]
    header = header or ("#include <stdint.h>\nextern volatile uint32_t bench_marks[];\n"
                        f"#define BENCH_MARK(k) (bench_marks[k] = *(volatile uint32_t *)0x{TIMER + 4:08X}u)\n")
    return header + c_source[:start] + body, ops


def _category(step) -> str:
    """Op type for the summary table (conv split by the kernel CMSIS-NN dispatches to)."""
    k, s = step.kernel, step.summary
    if k == "conv":
        if s.startswith("1x1 conv s1x1"):
            return "conv 1x1 (stride 1)"
        if s.startswith("1x1 conv"):
            return "conv 1x1 (strided)"
        return "conv (im2col)"
    return {"dwconv": "depthwise", "fc": "fully connected"}.get(k, k)


def _elements(step, graph) -> int:
    return int(sum(np.prod(graph.tensors[t].shape) for t in step.outputs)) if step.outputs else 0


def _ticks_to_insns(ticks: int) -> int:
    return int(round(ticks * NS_PER_TICK / (1 << ICOUNT_SHIFT)))


#: C helpers of the benchmark's main.c: print "<a> <v>" through semihosting; a loop of known length (calibration).
_MAIN_HELPERS_C = [
    "static void put_u(uint32_t a, uint32_t v)",
    "{",
    "    char b[40]; int i = 39; b[i] = 0; b[--i] = '\\n';",
    "    do { b[--i] = (char)('0' + v % 10u); v /= 10u; } while (v);",
    "    b[--i] = ' ';",
    "    do { b[--i] = (char)('0' + a % 10u); a /= 10u; } while (a);",
    "    b[--i] = ' ';",
    "    sh_puts(b + i);",
    "}",
    "/* The cycle-estimate plugin's window markers (codegen/cycles.py): outside the timed stretch. */",
    "__attribute__((noinline)) void bench_window_begin(void) { __asm__ volatile(\"\"); }",
    "__attribute__((noinline)) void bench_window_end(void) { __asm__ volatile(\"\" ::: \"memory\"); }",
    "__attribute__((noinline)) static uint32_t cal_loop(uint32_t n)",
    "{",
    "    const uint32_t t0 = BENCH_TIMER_VALUE;",
    '    __asm__ volatile("1: subs %0, %0, #1\\n nop\\n bne 1b" : "+r"(n));',
    "    return t0 - BENCH_TIMER_VALUE;",
    "}",
]


def _generate(model: Path, name: str, gen: Path, cycles: bool = False, options: LoweringOptions = LoweringOptions()):
    """Write the module twice into ``gen``: as is (the total) and with a timer mark around every op (and with
    ``cycles`` a third time, ``<name>_cyc``, with a call of the cycle estimate's lap marker before every op).

    Returns the plain module, its ``write_module`` info and the op index each mark precedes."""
    module = build_module(model, name=name, options=options)
    info = write_module(module, gen)
    inst = build_module(model, name=name + "_ops", options=options)
    ops_info = write_module(inst, gen)
    inst_src, marks = _instrument(ops_info.c_path.read_text(), inst.name)
    ops_info.c_path.write_text(inst_src)
    if cycles:
        cyc_info = write_module(build_module(model, name=name + "_cyc", options=options), gen)
        cyc_src, _ = _instrument(cyc_info.c_path.read_text(), name + "_cyc", _LAP_HEADER)
        cyc_info.c_path.write_text(cyc_src)
    return module, info, marks


def _main_c(name: str, info, xs: list, want: list | None, n_marks: int, cycles: bool = False) -> str:
    """main.c: calibrate the timer, time the plain ``invoke`` (and check its outputs), then the marked one (and
    with ``cycles`` the lap-marked one, for the cycle estimate per op)."""
    lines = ["#include <stdint.h>", "#include <string.h>", f'#include "{name}.h"', f'#include "{name}_ops.h"',
             *([f'#include "{name}_cyc.h"'] if cycles else []),
             "void sh_puts(const char *s);", _TIMER_C,
             f"volatile uint32_t bench_marks[{n_marks + 1}];"]
    lines += [_c_array(f"in_{k}", x) for k, x in enumerate(xs)]
    if want is not None:
        lines += [_c_array(f"want_{k}", y) for k, y in enumerate(want)]
    biggest = max(o.nbytes for o in info.outputs)
    lines.append(f"static int8_t out_buf[{len(info.outputs)}][{biggest}];")
    ins = ", ".join(f"in_{k}" for k in range(len(info.inputs)))
    outs = ", ".join(f"out_buf[{k}]" for k in range(len(info.outputs)))
    lines += _MAIN_HELPERS_C
    lines += [
        "int main(void)",
        "{",
        f"    const int8_t *const in[] = {{{ins}}};",
        f"    int8_t *const out[] = {{{outs}}};",
        "    bench_timer_start();",
    ]
    for n in _CAL_LOOPS:
        lines.append(f'    sh_puts("C"); put_u({n}u, cal_loop({n}u));')
    lines += [
        "    bench_window_begin();",
        "    uint32_t t0 = BENCH_TIMER_VALUE;",
        f"    int32_t rc = {name}_invoke(in, out);",
        "    uint32_t t1 = BENCH_TIMER_VALUE;",
        "    bench_window_end();",
        '    sh_puts("T"); put_u((uint32_t)rc, t0 - t1);',
    ]
    if want is not None:
        for k, o in enumerate(info.outputs):
            lines.append(f'    if (memcmp(out[{k}], want_{k}, {o.nbytes}) != 0) sh_puts("MISMATCH\\n");')
    lines += [
        f"    rc = {name}_ops_invoke(in, out);",
        '    sh_puts("R"); put_u((uint32_t)rc, 0u);',
        f"    for (uint32_t k = 0; k < {n_marks}u; k++) {{ sh_puts(\"M\"); put_u(k, bench_marks[k] - bench_marks[k + 1]); }}",
        *([f"    {name}_cyc_invoke(in, out);", "    bench_window_end();"] if cycles else []),
        '    sh_puts("END\\n");',
        "    return 0;",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _link(work: Path, gen: Path, kernels: Path, extra_flags: tuple[str, ...]) -> Path:
    """Compile main.c, the startup, the generated modules and the kernels into one bare-metal ELF."""
    (work / "startup.c").write_text(STARTUP_C)
    (work / "link.ld").write_text(LINKER_LD)
    elf = work / "bench.elf"
    cmd = ["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, *extra_flags, "-O2", "-std=c99", "-I", str(kernels),
           "-I", str(gen), "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-T", str(work / "link.ld"),
           str(work / "startup.c"), str(work / "main.c"), *map(str, sorted(gen.glob("*.c"))),
           *map(str, sorted(kernels.glob("*.c"))), "-o", str(elf)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError(build.stderr)
    return elf


def _run_qemu(elf: Path, plugin: list[str] = ()) -> str:
    """Run the image on mps2-an386 with ``-icount`` (and ``plugin``: -plugin arguments); its semihosting output."""
    run = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                          "-icount", f"shift={ICOUNT_SHIFT}", "-semihosting-config", "enable=on,target=native",
                          "-kernel", str(elf), *plugin], capture_output=True, text=True, timeout=1800)
    text = run.stdout + run.stderr
    if run.returncode != 0 or "END" not in text:
        raise RuntimeError(f"QEMU failed ({run.returncode}):\n{text}")
    return text


def _parse_output(text: str, name: str) -> tuple[int, dict[int, int]]:
    """Timer ticks of the whole ``invoke`` and of each mark; refuses a failed calibration or a failed invoke."""
    total_ticks = None
    per_mark: dict[int, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "C":
            n, ticks = int(parts[1]), int(parts[2])
            if _ticks_to_insns(ticks) != 3 * n + 1:
                raise RuntimeError(f"timer calibration failed: {n} loop iterations took {ticks} ticks")
        elif parts[0] == "T":
            if int(parts[1]) != 0:
                raise RuntimeError(f"{name}_invoke returned {parts[1]}")
            total_ticks = int(parts[2])
        elif parts[0] == "R" and int(parts[1]) != 0:
            raise RuntimeError(f"{name}_ops_invoke returned {parts[1]}")
        elif parts[0] == "M":
            per_mark[int(parts[1])] = int(parts[2])
    assert total_ticks is not None
    return total_ticks, per_mark


def _cycle_plugin(elf: Path, out: Path) -> list[str]:
    """-plugin arguments of the cycle estimate around the total (flash = the image's FLASH region at 0)."""
    from boards import load_board
    from codegen.cycles import config_for, plugin_args

    out.unlink(missing_ok=True)
    return plugin_args(config_for(elf, "bench_window_begin", "bench_window_end", load_board("qemu_an386")), out)


def _cycles_records(out: Path, n_ops: int) -> tuple[dict, list[dict]]:
    """The plugin's windows as plain data (JSON): the total's, and one per op of the lap-marked copy."""
    from dataclasses import asdict

    from codegen.cycles import read_windows

    windows = read_windows(out)
    if len(windows) != n_ops + 2:  # the total, one per op, the tail (return and the end marker)
        raise RuntimeError(f"cycle estimate: expected {n_ops + 2} windows in {out}, found {len(windows)}")
    return asdict(windows[0]), [asdict(w) for w in windows[1:-1]]


def measure(model: Path, kernels: Path, work: Path, check: bool = True, seed: int = 0,
            extra_flags: tuple[str, ...] = (), cycles: bool = False,
            options: LoweringOptions = LoweringOptions()) -> dict:
    """Build, run and return ``{"model", "macs", "total", "ops": [...], "check"}`` for one model.

    ``cycles``: also ``"cycles"``, the estimate of :mod:`codegen.cycles` (a dict of its ``CycleWindow``).

    ``extra_flags`` go to GCC after the Cortex-M4 flags (``-U__ARM_FEATURE_DSP``: the kernels' plain-C path).
    ``options``: codegen's lowering choices (e.g. ``wide_fc_weights``, ``--wide-fc``)."""
    work.mkdir(parents=True, exist_ok=True)
    gen = work / "gen"
    gen.mkdir(exist_ok=True)
    name = re.sub(r"[^0-9A-Za-z_]", "_", model.stem)
    module, info, marks = _generate(model, name, gen, cycles, options)
    data = random_samples(info, 1, seed)
    want = tflm_reference(model, info, data) if check else None
    (work / "main.c").write_text(_main_c(name, info, data[0], None if want is None else want[0], len(marks), cycles))
    elf = _link(work, gen, kernels, extra_flags)
    text = _run_qemu(elf, _cycle_plugin(elf, work / "cycles.txt") if cycles else [])
    total_ticks, per_mark = _parse_output(text, name)
    steps = {s.op_index: s for s in module.steps}
    ops = []
    for k, op_index in enumerate(marks):
        s = steps[op_index]
        ops.append({"index": op_index, "type": s.op_type, "category": _category(s),
                    "summary": s.summary, "macs": int(s.macs), "elements": _elements(s, module.graph),
                    "instructions": _ticks_to_insns(per_mark[k])})
    result = {"model": model.stem, "macs": int(module.macs), "total": _ticks_to_insns(total_ticks), "ops": ops,
              "check": None if want is None else ("MISMATCH" not in text)}
    if cycles:
        result["cycles"], per_op = _cycles_records(work / "cycles.txt", len(marks))
        for op, w in zip(ops, per_op):
            op["cycles"], op["cycles_flash_reads"], op["cycles_flash_misses"] = (w["cycles"], w["flash_reads"],
                                                                                w["flash_misses"])
    return result


def _per_category(result: dict) -> "OrderedDict[str, dict]":
    cats: OrderedDict[str, dict] = OrderedDict()
    for op in result["ops"]:
        if op["instructions"] <= 3 and op["macs"] == 0:
            continue  # aliases (no code)
        c = cats.setdefault(op["category"], {"ops": 0, "macs": 0, "elements": 0, "instructions": 0})
        c["ops"] += 1
        c["macs"] += op["macs"]
        c["elements"] += op["elements"]
        c["instructions"] += op["instructions"]
    return cats


def _fmt_ratio(num: int, den: int) -> str:
    return f"{num / den:.2f}" if den else "-"


def print_report(result: dict, before: dict | None = None, per_op: bool = False) -> None:
    name, total, macs = result["model"], result["total"], result["macs"]
    ref = REFERENCE.get(name)
    print(f"\n== {name}: {total:,} instructions per inference, {macs:,} MACs, "
          f"{_fmt_ratio(total, macs)} instructions/MAC" + (f"; TFLM+CMSIS-NN {ref:,} ({_fmt_ratio(ref, macs)}/MAC, "
                                                              f"ours x{total / ref:.2f})" if ref else "")
          + ("" if result["check"] is None else ("; outputs == tflite_micro" if result["check"] else
                                                  "; OUTPUTS DIFFER FROM tflite_micro")))
    if before is not None:
        print(f"   before: {before['total']:,} ({_fmt_ratio(before['total'], macs)}/MAC) -> "
              f"{100.0 * (total - before['total']) / before['total']:+.1f} %")
    if "cycles" in result:
        c = result["cycles"]
        print(f"   estimated cycles (Cortex-M4 TRM, 0 wait states): {c['cycles']:,} over {c['instructions']:,} "
              f"instructions; {c['flash_reads']:,} flash reads ({c['flash_misses']:,} miss the ART model)")
    cats = _per_category(result)
    bcats = _per_category(before) if before is not None else {}
    head = f"   {'op type':<22} {'ops':>3} {'MACs':>11} {'instructions':>13} {'share':>6} {'ins/MAC':>8} {'ins/elem':>8}"
    if before is not None:
        head += f" {'before':>12} {'ins/MAC':>8}"
    print(head)
    other = total - sum(c["instructions"] for c in cats.values())
    for cat, c in cats.items():
        line = (f"   {cat:<22} {c['ops']:>3} {c['macs']:>11,} {c['instructions']:>13,} "
                f"{100.0 * c['instructions'] / total:>5.1f}% {_fmt_ratio(c['instructions'], c['macs']):>8} "
                f"{_fmt_ratio(c['instructions'], c['elements']):>8}")
        if before is not None and cat in bcats:
            b = bcats[cat]
            line += f" {b['instructions']:>12,} {_fmt_ratio(b['instructions'], b['macs']):>8}"
        print(line)
    print(f"   {'other (invoke, marks)':<22} {'':>3} {'':>11} {other:>13,} {100.0 * other / total:>5.1f}%")
    if per_op:
        print(f"   {'#':>3} {'op':<18} {'summary':<48} {'MACs':>10} {'instructions':>12} {'ins/MAC':>8}")
        for op in result["ops"]:
            print(f"   {op['index']:>3} {op['type']:<18} {op['summary'][:48]:<48} {op['macs']:>10,} "
                  f"{op['instructions']:>12,} {_fmt_ratio(op['instructions'], op['macs']):>8}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--kernels", type=Path, default=REPO / "firmware" / "cmsis_nn",
                    help="CMSIS-NN implementation to link (default firmware/cmsis_nn)")
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--compare", type=Path, default=None, help="a previous --json to show before/after")
    ap.add_argument("--baseline", default=None, metavar="GIT_REV",
                    help="also measure firmware/cmsis_nn as of this git revision and show before/after")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with tflite_micro")
    ap.add_argument("--per-op", action="store_true", help="also list every op")
    ap.add_argument("--wide-fc", action="store_true", help="codegen --wide-fc: int16 fully connected weights")
    ap.add_argument("--cycles", action="store_true", help="also estimate Cortex-M4 cycles (codegen/cycles.py)")
    args = ap.parse_args(argv)

    models = args.models
    if not models:
        from host.paths import shared_models_dir

        root = shared_models_dir()
        if root is None:
            ap.error("no models given and the shared models directory was not found")
        models = [root / "mlperf_tiny" / f"{m}.tflite" for m in REFERENCE]
    before = json.loads(args.compare.read_text()) if args.compare else {}
    results = {}
    with tempfile.TemporaryDirectory(prefix="kernel-insns-") as tmp:
        work = args.work_dir or Path(tmp)
        if args.baseline:
            base = Path(tmp) / "baseline"
            base.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, "firmware/cmsis_nn"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            for model in models:
                r = measure(model, base / "firmware" / "cmsis_nn", work / "baseline" / model.stem, check=False)
                before[r["model"]] = r
        for model in models:
            r = measure(model, args.kernels.resolve(), work / model.stem, check=not args.no_check, cycles=args.cycles,
                        options=LoweringOptions(wide_fc_weights=args.wide_fc))
            results[r["model"]] = r
            print_report(r, before.get(r["model"]), per_op=args.per_op)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    bad = [m for m, r in results.items() if r["check"] is False]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
