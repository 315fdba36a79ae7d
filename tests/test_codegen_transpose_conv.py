"""TRANSPOSE_CONV beyond the op corpus's bit-exactness (tests/op_corpus/transpose_conv.py): the planner's scratch
formula is the C library's own ``arm_transpose_conv_s8_get_buffer_size`` / ``_get_reverse_conv_buffer_size`` for
every branch (rolling buffer, reverse convolution above 16 input channels, strides above 2), and the kernel
refuses a buffer smaller than that instead of overrunning it. One small C program, no model: fast."""
from __future__ import annotations

import subprocess
from pathlib import Path

from codegen.ops.transpose_conv import transpose_conv_s8_buffer_size, transpose_conv_s8_reverse_buffer_size
from codegen.scratch import Dims
from codegen.verify import kernels_dir

#: (input NHWC, filter KH x KW, C_out, stride h x w): both wrapper branches, kernels smaller than the stride.
SHAPES = [
    ((1, 4, 4, 8), (3, 3), 8, (2, 2)),
    ((1, 5, 6, 3), (2, 2), 6, (1, 1)),
    ((1, 10, 6, 20), (2, 2), 7, (3, 3)),     # C_in > 16 but stride 3: no reverse convolution
    ((1, 10, 6, 20), (3, 3), 4, (2, 2)),     # reverse convolution: conv im2col buffer and reversed filter
    ((1, 3, 9, 17), (5, 1), 2, (1, 2)),
    ((2, 3, 3, 32), (1, 1), 3, (2, 1)),      # 1x1 kernel, the reverse convolution's buffer is the smaller one
]

_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arm_nnfunctions.h"

int main(int argc, char **argv)
{
    int32_t a[9];
    for (int i = 0; i < 9; i++) a[i] = atoi(argv[i + 1]);
    (void)argc;
    const cmsis_nn_dims in = {a[0], a[1], a[2], a[3]};
    const cmsis_nn_dims filter = {a[6], a[4], a[5], a[3]};
    const cmsis_nn_dims out = {a[0], (a[1] - 1) * a[7] + a[4], (a[2] - 1) * a[8] + a[5], a[6]};
    const cmsis_nn_transpose_conv_params p = {0, 0, {a[8], a[7]}, {0, 0}, {0, 0}, {1, 1}, {-128, 127}};
    const int32_t size = arm_transpose_conv_s8_get_buffer_size(&p, &in, &filter, &out);
    const int32_t reverse = arm_transpose_conv_s8_get_reverse_conv_buffer_size(&p, &in, &filter);

    /* The kernel with one byte less than it asked for, and with no buffer: refused, output untouched. */
    int8_t *input = calloc((size_t)(in.n * in.h * in.w * in.c), 1);
    int8_t *weights = calloc((size_t)(filter.n * filter.h * filter.w * filter.c), 1);
    int32_t *mult = calloc((size_t)out.c, sizeof(int32_t));
    int32_t *shift = calloc((size_t)out.c, sizeof(int32_t));
    const size_t out_bytes = (size_t)(out.n * out.h * out.w * out.c);
    int8_t *output = malloc(out_bytes);
    void *buf = malloc((size_t)size);
    const cmsis_nn_per_channel_quant_params q = {mult, shift};
    const cmsis_nn_context small = {buf, size - 1};
    const cmsis_nn_context none = {NULL, 0};
    const cmsis_nn_context whole = {buf, size};
    memset(output, 0x5a, out_bytes);
    const int short_rc = arm_transpose_conv_wrapper_s8(&small, &none, &p, &q, &in, input, &filter, weights,
                                                       &filter, NULL, &out, output);
    const int null_rc = arm_transpose_conv_wrapper_s8(&none, &none, &p, &q, &in, input, &filter, weights,
                                                      &filter, NULL, &out, output);
    int untouched = 1;
    for (size_t i = 0; i < out_bytes; i++) untouched &= output[i] == 0x5a;
    const int ok_rc = arm_transpose_conv_wrapper_s8(&whole, &none, &p, &q, &in, input, &filter, weights,
                                                    &filter, NULL, &out, output);
    printf("%ld %ld %d %d %d %d\n", (long)size, (long)reverse, short_rc, null_rc, untouched, ok_rc);
    return 0;
}
"""


def _build(tmp_path: Path) -> Path:
    src = tmp_path / "tconv_sizes.c"
    src.write_text(_PROGRAM)
    exe = tmp_path / "tconv_sizes"
    kernels = sorted(str(p) for p in kernels_dir().glob("*.c"))
    subprocess.run(["gcc", "-O1", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(kernels_dir()), str(src),
                    *kernels, "-o", str(exe)], check=True)
    return exe


def test_scratch_formula_is_the_c_librarys_and_the_kernel_keeps_to_it(tmp_path: Path) -> None:
    exe = _build(tmp_path)
    for (n, h, w, c), (kh, kw), cout, (sh, sw) in SHAPES:
        args = [n, h, w, c, kh, kw, cout, sh, sw]
        out = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, check=True).stdout.split()
        size, reverse, short_rc, null_rc, untouched, ok_rc = map(int, out)
        in_dims, f_dims = Dims(n, h, w, c), Dims(cout, kh, kw, c)
        o_dims = Dims(n, (h - 1) * sh + kh, (w - 1) * sw + kw, cout)
        assert size == transpose_conv_s8_buffer_size((sh, sw), in_dims, f_dims, o_dims, "c"), args
        assert size == transpose_conv_s8_buffer_size((sh, sw), in_dims, f_dims, o_dims, "dsp"), args
        assert reverse == transpose_conv_s8_reverse_buffer_size((sh, sw), in_dims, f_dims), args
        assert (reverse > 0) == (c > 16 and sh <= 2 and sw <= 2), args
        # ARM_CMSIS_NN_ARG_ERROR (-1) for a short or missing buffer, nothing written; success with the full one.
        assert (short_rc, null_rc, untouched, ok_rc) == (-1, -1, 1, 0), args
