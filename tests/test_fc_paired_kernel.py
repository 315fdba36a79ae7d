"""The paired-rows int8 fully connected layout (issue 17): resilinet_fully_connected_s8_paired on the weights codegen
re-ordered (codegen/ops/fully_connected.py: paired_fc_weights_s8) gives the same bytes as arm_fully_connected_s8 /
_per_channel_s8 on the plain int8 weights, on the plain C path, the DSP path emulated in C, and the real Cortex-M4
(QEMU mps2-an386: the assembly block loop only exists there). Shapes cover every entry of the asm's 8-group loop
(1..17 groups), depths not a multiple of 4, row counts not a multiple of 4, several batches, per-channel and clamped
requantization, the slow requantization (shift >= 0), accumulators past the fast one's range (2^30: the asm hands
the layer back), no bias, misaligned weights and a depth over the stack staging limit (768).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from codegen.footprint import CORTEX_M4_FLAGS
from codegen.ops.fully_connected import paired_fc_weights_s8
from codegen.semihost import LINKER_LD, STARTUP_C
from codegen.verify import kernels_dir

KERNEL_FILES = ("arm_fully_connected_s8.c", "resilinet_nn_fully_connected_paired_s8.c", "resilinet_nn_requant_init.c",
                "resilinet_nn_dot_s8.c")
SEED = 1733
CASES = 40


def test_layout_pairs_rows_in_lanes() -> None:
    # 5 rows of 6 entries -> 8 rows (zero rows) of 8 entries (zero entries); per block and group, rows (0, 1) then
    # (2, 3), each as words [e0|e2] [e1|e3] with lanes (w(r0) + 128, w(r1)).
    fc = np.arange(1, 31, dtype=np.int8).reshape(5, 6)
    got = paired_fc_weights_s8(fc).astype(np.int16).reshape(-1, 4)
    got = (got & 0xFF).tolist()  # bytes as unsigned, the r0 bytes then read w + 128
    assert len(got) == 2 * 2 * 4  # 2 blocks x 2 groups x 4 words
    assert got[0] == [1 + 128, 7, 3 + 128, 9]  # block 0, group 0, rows 0/1, entries 0 and 2
    assert got[1] == [2 + 128, 8, 4 + 128, 10]  # entries 1 and 3
    assert got[2] == [13 + 128, 19, 15 + 128, 21]  # rows 2/3
    assert got[4] == [5 + 128, 11, 128, 0]  # group 1: entry 4, then the padding entry 6 (w = 0 -> 128)
    assert got[8] == [25 + 128, 0, 27 + 128, 0]  # block 1: row 4 and a zero row
    assert got[10] == [128, 0, 128, 0]  # rows 6/7: zero rows
    # Every int8 weight round-trips: r0 bytes - 128, r1 bytes as signed.
    w = np.random.default_rng(0).integers(-128, 128, (4, 4), dtype=np.int8)
    b = paired_fc_weights_s8(w).reshape(4, 4)  # one block, one group: 4 words
    lo, hi = b[:, [0, 2]].astype(np.uint8).astype(np.int32) - 128, b[:, [1, 3]].astype(np.int32)
    assert lo[0].tolist() == [w[0, 0], w[0, 2]] and lo[1].tolist() == [w[0, 1], w[0, 3]]
    assert hi[3].tolist() == [w[3, 1], w[3, 3]] and lo[2].tolist() == [w[2, 0], w[2, 2]]


def _c_array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = values.reshape(-1).tolist() or [0]
    return f"static const {ctype} {name}[{len(flat)}] __attribute__((aligned(4))) = {{{','.join(map(str, flat))}}};"


def _case(rng: np.random.Generator, i: int) -> str:
    groups = 1 + i % 17
    depth = 4 * groups - (int(rng.integers(0, 4)) if i % 3 else 0)
    if i == CASES - 1:
        depth = 801  # over the staging limit: the plain C loop on DSP builds
    cout = (4, 8, 12, 5, 7, 16, 3)[i % 7]
    batches = 1 + (i % 5 == 4)
    per_channel = i % 4 == 1
    nq = cout if per_channel else 1
    act = (int(rng.integers(-128, 0)), int(rng.integers(0, 128))) if i % 6 == 5 else (-128, 127)
    shift = rng.integers(-12, 0 if i % 9 else 2, nq)  # some with shift >= 0: the reference requantization
    weights = rng.integers(-128, 128, (cout, depth), dtype=np.int8)
    # Large biases now and then: accumulators past 2^30, where the fast requantization does not hold (the asm path
    # then hands the layer back to the general one).
    bias = rng.integers(-(3 << 29), 3 << 29, cout) if i % 11 == 10 else rng.integers(-30000, 30000, cout)
    bias_arg = f"(0 ? b{i} : NULL)" if i % 8 == 7 else f"b{i}"  # no bias (the array still used: -Werror)
    return "\n".join([
        _c_array("int8_t", f"x{i}", rng.integers(-128, 128, batches * depth, dtype=np.int8)),
        _c_array("int8_t", f"w{i}", weights), _c_array("int8_t", f"v{i}", paired_fc_weights_s8(weights)),
        _c_array("int32_t", f"b{i}", bias),
        _c_array("int32_t", f"m{i}", rng.integers(1 << 30, (1 << 31) - 1, nq)), _c_array("int32_t", f"s{i}", shift),
        f"static int case{i}(void) {{",
        f"  const cmsis_nn_fc_params p = {{{int(rng.integers(-128, 129))}, 0, {int(rng.integers(-128, 128))}, "
        f"{{{act[0]}, {act[1]}}}}};",
        f"  const cmsis_nn_dims in = {{{batches}, 1, 1, {depth}}}, f = {{{depth}, 1, 1, {cout}}}, "
        f"b = {{1, 1, 1, {cout}}}, o = {{{batches}, 1, 1, {cout}}};",
        f"  return run(&p, &in, x{i}, &f, w{i}, v{i}, sizeof(v{i}), &b, {bias_arg}, m{i}, s{i}, {int(per_channel)}, "
        f"&o, {int(i % 10 == 3)});",
        "}",
    ])


_HARNESS = r"""
#include <string.h>
#include "arm_nnfunctions.h"

static uint32_t moved[4096];
static int8_t out_a[2048], out_b[2048];

static int run(const cmsis_nn_fc_params *p, const cmsis_nn_dims *in, const int8_t *x, const cmsis_nn_dims *f,
               const int8_t *w, const int8_t *v, size_t v_bytes, const cmsis_nn_dims *b, const int32_t *bias,
               const int32_t *mult, const int32_t *shift, int per_channel, const cmsis_nn_dims *o, int misalign)
{
    const cmsis_nn_context ctx = {NULL, 0};
    const int32_t n = o->n * o->c;
    memset(out_a, 0x55, sizeof(out_a));
    memset(out_b, 0x2a, sizeof(out_b));
    if (per_channel)
    {
        const cmsis_nn_per_channel_quant_params q = {(int32_t *)mult, (int32_t *)shift};
        if (arm_fully_connected_per_channel_s8(&ctx, p, &q, in, x, f, w, b, bias, o, out_a) != ARM_CMSIS_NN_SUCCESS)
            return 2;
    }
    else
    {
        const cmsis_nn_per_tensor_quant_params q = {mult[0], shift[0]};
        if (arm_fully_connected_s8(&ctx, p, &q, in, x, f, w, b, bias, o, out_a) != ARM_CMSIS_NN_SUCCESS) return 2;
    }
    const int8_t *vv = v;
    if (misalign)
    {   /* 1-byte aligned: the DSP path's LDRD cannot read it */
        memcpy((int8_t *)moved + 1, v, v_bytes);
        vv = (const int8_t *)moved + 1;
    }
    if (resilinet_fully_connected_s8_paired(&ctx, p, mult, shift, per_channel, in, x, f, vv, b, bias, o, out_b)
        != ARM_CMSIS_NN_SUCCESS) return 3;
    return memcmp(out_a, out_b, (size_t)n) != 0 || out_b[n] != 0x2a;
}
"""


def _source(tmp_path: Path, report: str) -> Path:
    rng = np.random.default_rng(SEED)
    main = ["int main(void) {", "  int bad = 0;"]
    main += [f"  if (case{i}()) {{ {report.format(i=i)} bad++; }}" for i in range(CASES)]
    main += ["  return bad;", "}"]
    src = tmp_path / "fc_paired.c"
    src.write_text(_HARNESS + "\n".join(_case(rng, i) for i in range(CASES)) + "\n" + "\n".join(main) + "\n")
    return src


def test_paired_matches_the_int8_kernel_on_plain_c_and_emulated_dsp(tmp_path: Path) -> None:
    src = _source(tmp_path, 'printf("case {i}: MISMATCH\\n");')
    src.write_text("#include <stdio.h>\n" + src.read_text())
    kernels = [str(kernels_dir() / f) for f in KERNEL_FILES]
    for extra in ([], ["-DRESILINET_EMULATE_DSP"]):
        exe = tmp_path / ("fc_dsp" if extra else "fc_c")
        subprocess.run(["gcc", "-O1", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", *extra,
                        "-I", str(kernels_dir()), str(src), *kernels, "-o", str(exe)], check=True)
        run = subprocess.run([str(exe)], capture_output=True, text=True)
        assert run.returncode == 0 and "MISMATCH" not in run.stdout, f"{extra or 'plain C'}:\n{run.stdout}"


def test_paired_matches_the_int8_kernel_on_cortex_m4(tmp_path: Path) -> None:
    """The asm block loop (built only for the target) against arm_fully_connected_s8, on QEMU mps2-an386."""
    src = _source(tmp_path, 'sh_puts("case {i}: MISMATCH\\n");')
    src.write_text("void sh_puts(const char *s);\n" + src.read_text())
    (tmp_path / "startup.c").write_text(STARTUP_C)
    (tmp_path / "link.ld").write_text(LINKER_LD)
    elf = tmp_path / "fc_paired.elf"
    subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
                    "-I", str(kernels_dir()), "-nostartfiles", "--specs=nano.specs",
                    "--specs=nosys.specs", "-T", str(tmp_path / "link.ld"), str(tmp_path / "startup.c"), str(src),
                    *[str(kernels_dir() / f) for f in KERNEL_FILES], "-o", str(elf)], check=True)
    run = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                          "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "MISMATCH" not in out and "fault" not in out, out
