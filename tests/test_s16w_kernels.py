"""The int16 weight layouts (issue 17): resilinet_convolve_wrapper_s8_s16w and resilinet_fully_connected_s8_s16w
(``--wide-fc``) on the weights codegen widened give the same bytes as arm_convolve_wrapper_s8 /
arm_fully_connected_(per_channel_)s8 on the int8 weights, on the plain C path and the DSP path emulated in C,
for shapes the generated models rarely reach: odd output channels, rows not a multiple of 4, an odd number of
output pixels, strided/dilated/padded windows, the slow per-channel requantization (shift > -1), clamped
activations, 1x1 without scratch and weights that are not word-aligned (the DSP path's LDRD cannot read them).
The real Cortex-M4 path runs in the MLPerf, op corpus and kernel stress tests on QEMU.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from codegen.footprint import CORTEX_M4_FLAGS
from codegen.ops.conv import widened_weights_s16w
from codegen.ops.fully_connected import widened_fc_weights_s16w
from codegen.semihost import LINKER_LD, STARTUP_C
from codegen.verify import kernels_dir

#: The convolution and its support files (compiling only these keeps the test short).
KERNEL_FILES = ("arm_convolve_wrapper_s8.c", "arm_convolve_s8.c", "arm_convolve_1x1_s8.c",
                "resilinet_nn_convolve_s8_s16w.c", "arm_fully_connected_s8.c", "resilinet_nn_mat_mult_kernel_s8_s16.c",
                "resilinet_nn_mat_mult_kernel_s16w.c", "resilinet_nn_mat_mult_kernel_s16w_x4.c",
                "resilinet_nn_requant_init.c", "resilinet_nn_dot_s8.c", "resilinet_nn_fully_connected_paired_s8.c")
SEED = 1717
CASES = 48


def test_layout_pairs_channels_and_orders_lanes_like_the_columns() -> None:
    # 3 output channels, rows of 5 entries -> padded to 8: channel pair (0, 1) group by group, then channel 2.
    w = np.arange(1, 16, dtype=np.int8).reshape(3, 1, 1, 5)
    got = widened_weights_s16w(w).tolist()
    assert got == [1, 3, 2, 4, 6, 8, 7, 9,   # group 0 of channels 0 and 1: lanes e0, e2, e1, e3
                   5, 0, 0, 0, 10, 0, 0, 0,  # group 1: entry 4 then zero padding
                   11, 13, 12, 14, 15, 0, 0, 0]  # channel 2 alone
    assert widened_weights_s16w(np.full((2, 3, 3, 4), -128, dtype=np.int8)).dtype == np.int16
    # FC: rows in blocks of four, group by group; the remaining rows one at a time.
    fc = np.arange(1, 31, dtype=np.int8).reshape(5, 6)
    got = widened_fc_weights_s16w(fc).reshape(-1, 4).tolist()
    assert got[:4] == [[1, 3, 2, 4], [7, 9, 8, 10], [13, 15, 14, 16], [19, 21, 20, 22]]  # group 0, rows 0..3
    assert got[4:8] == [[5, 0, 6, 0], [11, 0, 12, 0], [17, 0, 18, 0], [23, 0, 24, 0]]  # group 1: e4, e5, padding
    assert got[8:] == [[25, 27, 26, 28], [29, 0, 30, 0]]  # row 4 alone


def _c_array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = values.reshape(-1).tolist() or [0]
    return f"static const {ctype} {name}[{len(flat)}] __attribute__((aligned(4))) = {{{','.join(map(str, flat))}}};"


def _case(rng: np.random.Generator, i: int) -> str:
    one = i % 3 == 0  # 1x1 kernels (fast and strided paths)
    kh, kw = (1, 1) if one else (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    cin, cout = int(rng.integers(1, 21)), int(rng.integers(1, 12))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    dh, dw = (1, 1) if one or i % 4 else (2, 1)
    ph, pw = (0, 0) if one else (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
    h, w = int(rng.integers(max(kh, 2), 9)) + dh, int(rng.integers(max(kw, 2), 9)) + dw
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    weights = rng.integers(-128, 128, (cout, kh, kw, cin), dtype=np.int8)
    bias = rng.integers(-5000, 5000, cout)
    mult = rng.integers(1 << 30, (1 << 31) - 1, cout)
    shift = rng.integers(-9, 0 if i % 5 else 2, cout)  # some channels with shift >= 0: the reference requantize
    act = (-128, 127) if i % 2 else (int(rng.integers(-128, 0)), int(rng.integers(0, 128)))
    x = rng.integers(-128, 128, (1, h, w, cin), dtype=np.int8)
    no_ctx = "1" if one and i % 2 else "0"
    misalign = "1" if i % 7 == 3 else "0"
    return "\n".join([
        _c_array("int8_t", f"x{i}", x), _c_array("int8_t", f"w{i}", weights),
        _c_array("int16_t", f"v{i}", widened_weights_s16w(weights)), _c_array("int32_t", f"b{i}", bias),
        _c_array("int32_t", f"m{i}", mult), _c_array("int32_t", f"s{i}", shift),
        f"static int case{i}(void) {{",
        f"  const cmsis_nn_conv_params p = {{{int(rng.integers(-128, 128))}, {int(rng.integers(-128, 128))}, "
        f"{{{sw}, {sh}}}, {{{pw}, {ph}}}, {{{dw}, {dh}}}, {{{act[0]}, {act[1]}}}}};",
        f"  const cmsis_nn_dims in = {{1, {h}, {w}, {cin}}}, f = {{{cout}, {kh}, {kw}, {cin}}}, "
        f"b = {{1, 1, 1, {cout}}}, o = {{1, {oh}, {ow}, {cout}}};",
        f"  return run(&p, &in, x{i}, &f, w{i}, v{i}, sizeof(v{i}), &b, b{i}, m{i}, s{i}, &o, {no_ctx}, {misalign}, "
        f"{1 + i % 2});",
        "}",
    ])


_HARNESS = r"""
#include <stdio.h>
#include <string.h>
#include "arm_nnfunctions.h"

static int32_t buf_a[4096], buf_b[4096], wide[8192];
static int8_t out_a[8192], out_b[8192];

static int run(const cmsis_nn_conv_params *p, const cmsis_nn_dims *in, const int8_t *x, const cmsis_nn_dims *f,
               const int8_t *w, const int16_t *v, size_t v_bytes, const cmsis_nn_dims *b, const int32_t *bias,
               const int32_t *mult, const int32_t *shift, const cmsis_nn_dims *o, int no_ctx, int misalign, int wide_buf)
{
    cmsis_nn_per_channel_quant_params q = {(int32_t *)mult, (int32_t *)shift};
    const int32_t need = arm_convolve_wrapper_s8_get_buffer_size(p, in, f, o);
    /* wide_buf 2: the four columns codegen plans for DSP builds (four pixels at a time), 1: the library's two */
    cmsis_nn_context ca = {buf_a, need}, cb = {buf_b, wide_buf * need};
    const int32_t n = o->h * o->w * o->c;
    memset(out_a, 0x55, sizeof(out_a));
    memset(out_b, 0x2a, sizeof(out_b));
    if (arm_convolve_wrapper_s8(&ca, p, &q, in, x, f, w, b, bias, o, out_a) != ARM_CMSIS_NN_SUCCESS) return 2;
    const int16_t *vv = v;
    if (misalign)
    {   /* 2-byte aligned only */
        memcpy((int16_t *)wide + 1, v, v_bytes);
        vv = (const int16_t *)wide + 1;
    }
    if (resilinet_convolve_wrapper_s8_s16w(no_ctx ? NULL : &cb, p, &q, in, x, f, vv, b, bias, o, out_b)
        != ARM_CMSIS_NN_SUCCESS) return 3;
    return memcmp(out_a, out_b, (size_t)n) != 0 || out_b[n] != 0x2a;
}
"""


def _fc_case(rng: np.random.Generator, i: int) -> str:
    depth, cout, batches = int(rng.integers(1, 70)), int(rng.integers(1, 19)), int(rng.integers(1, 3))
    per_channel = i % 2
    nq = cout if per_channel else 1
    weights = rng.integers(-128, 128, (cout, depth), dtype=np.int8)
    act = (-128, 127) if i % 3 else (int(rng.integers(-128, 0)), int(rng.integers(0, 128)))
    shift = rng.integers(-9, 0 if i % 5 else 2, nq)
    return "\n".join([
        _c_array("int8_t", f"fx{i}", rng.integers(-128, 128, batches * depth, dtype=np.int8)),
        _c_array("int8_t", f"fw{i}", weights), _c_array("int16_t", f"fv{i}", widened_fc_weights_s16w(weights)),
        _c_array("int32_t", f"fb{i}", rng.integers(-5000, 5000, cout)),
        _c_array("int32_t", f"fm{i}", rng.integers(1 << 30, (1 << 31) - 1, nq)), _c_array("int32_t", f"fs{i}", shift),
        f"static int fc_case{i}(void) {{",
        f"  const cmsis_nn_fc_params p = {{{int(rng.integers(-128, 128))}, 0, {int(rng.integers(-128, 128))}, "
        f"{{{act[0]}, {act[1]}}}}};",
        f"  const cmsis_nn_dims in = {{{batches}, 1, 1, {depth}}}, f = {{{depth}, 1, 1, {cout}}}, b = {{1, 1, 1, {cout}}}, "
        f"o = {{{batches}, 1, 1, {cout}}};",
        f"  return run_fc(&p, &in, fx{i}, &f, fw{i}, fv{i}, sizeof(fv{i}), &b, fb{i}, fm{i}, fs{i}, {per_channel}, &o, "
        f"{1 if i % 7 == 3 else 0});",
        "}",
    ])


_FC_HARNESS = r"""
static int run_fc(const cmsis_nn_fc_params *p, const cmsis_nn_dims *in, const int8_t *x, const cmsis_nn_dims *f,
                  const int8_t *w, const int16_t *v, size_t v_bytes, const cmsis_nn_dims *b, const int32_t *bias,
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
    const int16_t *vv = v;
    if (misalign)
    {
        memcpy((int16_t *)wide + 1, v, v_bytes);
        vv = (const int16_t *)wide + 1;
    }
    if (resilinet_fully_connected_s8_s16w(&ctx, p, mult, shift, per_channel, in, x, f, vv, b, bias, o, out_b)
        != ARM_CMSIS_NN_SUCCESS) return 3;
    return memcmp(out_a, out_b, (size_t)n) != 0 || out_b[n] != 0x2a;
}
"""


def _build_and_run(src: Path, tmp_path: Path, extra: list[str]) -> str:
    exe = tmp_path / ("conv_dsp" if extra else "conv_c")
    kernels = [str(kernels_dir() / f) for f in KERNEL_FILES]
    subprocess.run(["gcc", "-O1", "-std=c99", "-Wall", "-Wextra", "-Werror", *extra, "-I", str(kernels_dir()),
                    str(src), *kernels, "-o", str(exe)], check=True)
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def test_s16w_matches_the_int8_kernels_on_plain_c_and_emulated_dsp(tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    cases = [_case(rng, i) for i in range(CASES)] + [_fc_case(rng, i) for i in range(CASES)]
    main = ["int main(void) {", "  int bad = 0;"]
    main += [f'  {{ const int r = case{i}(); if (r) {{ printf("case {i}: %d\\n", r); bad++; }} }}' for i in range(CASES)]
    main += [f'  {{ const int r = fc_case{i}(); if (r) {{ printf("fc case {i}: %d\\n", r); bad++; }} }}'
             for i in range(CASES)]
    main += ['  printf("done %d\\n", bad);', "  return 0;", "}"]
    src = tmp_path / "conv_s16w.c"
    src.write_text(_HARNESS + _FC_HARNESS + "\n".join(cases) + "\n" + "\n".join(main) + "\n")
    for extra in ([], ["-DRESILINET_EMULATE_DSP"]):
        out = _build_and_run(src, tmp_path, extra)
        assert out.strip().endswith("done 0"), f"{extra or 'plain C'}:\n{out}"


def _packed_case(rng: np.random.Generator, i: int) -> str:
    """A convolution that takes the packed DSP path (resilinet_nn_mat_mult_kernel_s16w_packed): no activation clamp,
    every shift <= -1. Its row length runs through 1..12 groups of four (every entry of the asm's loop of eight,
    and none left after the first group), 1x1 (stride 1 and 2) and 3x3 windows, odd channel counts and one over
    the packed table's 128 channels (the unpacked path)."""
    g = 1 + i % 12
    one = i % 3 != 2
    cin = 4 * g - int(rng.integers(0, 4)) if one else max(1, (4 * g) // 9)
    kh = kw = 1 if one else 3
    cout = (1, 2, 3, 5, 8, 13, 130)[i % 7]
    s_ = 1 + (i % 2 if one else 0)
    pad = 0 if one else 1
    h = w = 7 if cout > 64 else 9
    oh = ow = (h + 2 * pad - kh) // s_ + 1
    weights = rng.integers(-128, 128, (cout, kh, kw, cin), dtype=np.int8)
    return "\n".join([
        _c_array("int8_t", f"px{i}", rng.integers(-128, 128, (1, h, w, cin), dtype=np.int8)),
        _c_array("int8_t", f"pw{i}", weights), _c_array("int16_t", f"pv{i}", widened_weights_s16w(weights)),
        _c_array("int32_t", f"pb{i}", rng.integers(-5000, 5000, cout)),
        _c_array("int32_t", f"pm{i}", rng.integers(1 << 30, (1 << 31) - 1, cout)),
        _c_array("int32_t", f"ps{i}", rng.integers(-9, 0, cout)),
        f"static int pcase{i}(void) {{",
        f"  const cmsis_nn_conv_params p = {{{int(rng.integers(-128, 128))}, {int(rng.integers(-128, 128))}, "
        f"{{{s_}, {s_}}}, {{{pad}, {pad}}}, {{1, 1}}, {{-128, 127}}}};",
        f"  const cmsis_nn_dims in = {{1, {h}, {w}, {cin}}}, f = {{{cout}, {kh}, {kw}, {cin}}}, "
        f"b = {{1, 1, 1, {cout}}}, o = {{1, {oh}, {ow}, {cout}}};",
        f"  return run(&p, &in, px{i}, &f, pw{i}, pv{i}, sizeof(pv{i}), &b, pb{i}, pm{i}, ps{i}, &o, 0, 0, "
        f"{1 if i % 5 == 4 else 2});",
        "}",
    ])


def test_packed_path_matches_the_int8_kernels_on_cortex_m4(tmp_path: Path) -> None:
    """The packed path's asm (only built for the target) against the int8 DSP kernels, on QEMU mps2-an386."""
    rng = np.random.default_rng(SEED + 1)
    n = 36
    main = ["void sh_puts(const char *s);", "int main(void) {", "  int bad = 0;"]
    main += [f'  if (pcase{i}()) {{ sh_puts("case {i}: MISMATCH\\n"); bad++; }}' for i in range(n)]
    main += ['  sh_puts(bad ? "failed\\n" : "done 0\\n");', "  return bad;", "}"]
    harness = _HARNESS.replace("#include <stdio.h>\n", "")
    (tmp_path / "main.c").write_text(harness + "\n".join(_packed_case(rng, i) for i in range(n)) + "\n"
                                     + "\n".join(main) + "\n")
    (tmp_path / "startup.c").write_text(STARTUP_C)
    (tmp_path / "link.ld").write_text(LINKER_LD)
    elf = tmp_path / "packed.elf"
    subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
                    "-I", str(kernels_dir()), "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
                    "-T", str(tmp_path / "link.ld"), str(tmp_path / "startup.c"), str(tmp_path / "main.c"),
                    *[str(kernels_dir() / f) for f in KERNEL_FILES], "-o", str(elf)], check=True)
    run = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                          "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert "done 0" in out and "MISMATCH" not in out, out
