"""The row-buffer depthwise kernel (firmware/cmsis_nn/resilinet_nn_depthwise_rows_s8.c) and the VWW benchmark model.

* Bit-exact with tflite_micro on every activation, on the portable C path, the emulated DSP path (host-dsp) and
  the real Cortex-M4 (QEMU mps2-an386, where the assembly loops run), over shapes chosen to reach every branch:
  odd output widths (a row's last output alone), inputs too wide for one band of rows, stride 2, channel
  multipliers 2 and 8 (the audio 10x8 shape on one input channel), channels not a multiple of 4, 5x5,
  VALID padding, and MobileNet's stride-2 rows of 12, 6 and 3 outputs (the four-output and rows-of-three
  assembly).
* The planner's scratch formula is the C library's own ``arm_depthwise_conv_wrapper_s8_get_buffer_size``, and
  the wrapper gives the same bytes when it gets less scratch (the older kernels then run).
* bench/vww_model.py builds the MobileNet v1 0.25 VWW model deterministically, and it is bit-exact.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codegen.emit import activation_tensors
from codegen.ops.depthwise import depthwise_rows_buffer_size, depthwise_scratch
from codegen.scratch import Dims
from codegen.verify import HostTarget, kernels_dir
from codegen_support import assert_bit_exact

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import vww_model  # noqa: E402  (bench/, after the path set-up)

# TensorFlow's converter warns about its own defaults while building the test models.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

_STRICT = ("-O2", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror")
TARGETS = {"host": HostTarget(cflags=_STRICT), "host-dsp": HostTarget(emulate_dsp=True, cflags=_STRICT)}


def _convert(model, shape: tuple[int, ...], out: Path, seed: int = 0) -> Path:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    samples = rng.uniform(-1.0, 1.0, (8, *shape)).astype(np.float32)

    def representative():
        for i in range(len(samples)):
            yield [samples[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    out.write_bytes(conv.convert())
    return out


@pytest.fixture(scope="module")
def dw_models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four small models whose depthwise layers cover the kernel's branches (see the module docstring)."""
    import keras
    from keras import layers

    d = tmp_path_factory.mktemp("dw_models")
    keras.utils.set_random_seed(3)
    bias = keras.initializers.RandomNormal(0.0, 0.3, seed=3)
    # 4 channels x 47 columns: rows of 50 entries, 20 rows per band of 8192 bytes, so 22 padded rows take two
    # bands; width 47 is odd.
    x = keras.Input((20, 47, 4), batch_size=1)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer=bias)(x)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6", bias_initializer=bias)(y)
    y = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid", bias_initializer=bias)(y)
    y = layers.DepthwiseConv2D(5, padding="same", activation="relu", bias_initializer=bias)(y)
    y = layers.DepthwiseConv2D(3, strides=2, padding="valid", bias_initializer=bias)(y)
    bands = _convert(keras.Model(x, y), (20, 47, 4), d / "dw_bands.tflite")
    # The audio shape: one input channel, multiplier 8, a 10x8 kernel, stride 2; then 3x3 on 8 channels.
    x = keras.Input((49, 10, 1), batch_size=1)
    y = layers.DepthwiseConv2D((10, 8), strides=2, depth_multiplier=8, padding="same", activation="relu",
                               bias_initializer=bias)(x)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer=bias)(y)
    audio = _convert(keras.Model(x, y), (49, 10, 1), d / "dw_audio.tflite")
    # 6 channels (not a multiple of 4: one channel widened at a time), a 1-pixel-wide output, stride (2, 1).
    x = keras.Input((9, 7, 6), batch_size=1)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer=bias)(x)
    y = layers.DepthwiseConv2D((3, 7), strides=(2, 1), padding="valid", bias_initializer=bias)(y)
    y = layers.DepthwiseConv2D((1, 1), depth_multiplier=3, bias_initializer=bias)(y)
    odd = _convert(keras.Model(x, y), (9, 7, 6), d / "dw_odd.tflite")
    # MobileNet's stride-2 chain on 8 channels: rows of 12 outputs (the four-output assembly), of 6 (four, then
    # a pair), then 3x3 outputs (the rows-of-three assembly) at stride 2 and at stride 1.
    x = keras.Input((24, 24, 8), batch_size=1)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", bias_initializer=bias)(x)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", bias_initializer=bias)(y)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", bias_initializer=bias)(y)
    y = layers.DepthwiseConv2D(3, padding="same", bias_initializer=bias)(y)
    tiles = _convert(keras.Model(x, y), (24, 24, 8), d / "dw_tiles.tflite")
    return [bands, audio, odd, tiles]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_depthwise_shapes_bit_exact_every_layer(dw_models: list[Path], target: str, tmp_path: Path) -> None:
    for k, path in enumerate(dw_models):
        assert_bit_exact(path, TARGETS[target], tmp_path / str(k), 20, seed=5,
                         probe_tensors=tuple(activation_tensors(path)))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_prepacked_weights_exact_requantization_bit_exact(dw_models: list[Path], target: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Prepacked weights where codegen finds the fast requantization inexact (weights not doubled, raw shifts,
    resilinet_nn_requantize_clamp): forced here, the small models' quantization always allows the fast path."""
    from codegen.ops import depthwise

    monkeypatch.setattr(depthwise, "fast_requant_exact", lambda *args: False)
    for k, path in enumerate(dw_models):
        module = assert_bit_exact(path, TARGETS[target], tmp_path / str(k), 4, seed=7)
        assert "packed (exact requantization)" in module.c_path.read_text()


def test_fast_requantization_verdict_matches_the_c_conditions() -> None:
    """fast_requant_exact is resilinet_nn_requant_init's test: right shifts 1..31, non-negative multipliers,
    |accumulator| < 2^30 (bias included), output offset in int8; and the packed kernel's rounding word
    (1 + 2 * output_offset) << (-shift - 1), which its assembly adds with SMMLAR, below 2^30 in magnitude."""
    from codegen.ops.depthwise import fast_requant_exact

    bias, mults = np.array([100, -2000]), [1 << 30, (1 << 31) - 1]
    assert fast_requant_exact(bias, mults, [-7, -8], 128, -5, 9)
    assert not fast_requant_exact(bias, mults, [0, -8], 128, -5, 9)  # no right shift
    assert not fast_requant_exact(bias, mults, [-7, 1], 128, -5, 9)  # a left shift
    assert not fast_requant_exact(bias, mults, [-7, -8], 128, 200, 9)  # output offset outside int8
    big = (1 << 30) - 9 * 255 * 128  # the accumulator limit for 9 terms at input offset 128
    assert fast_requant_exact(np.array([big - 2]), mults[:1], [-7], 128, 0, 9)
    assert not fast_requant_exact(np.array([-big]), mults[:1], [-7], 128, 0, 9)
    # Rounding word: 201 << 22 < 2^30, 201 << 23 is not; at shift -31, +-1 << 30 (offsets 0 and -1) is not.
    assert fast_requant_exact(bias[:1], mults[:1], [-23], 128, 100, 9)
    assert not fast_requant_exact(bias[:1], mults[:1], [-24], 128, 100, 9)
    assert not fast_requant_exact(bias[:1], mults[:1], [-31], 128, 0, 9)
    assert not fast_requant_exact(bias[:1], mults[:1], [-31], 128, -1, 9)


def test_depthwise_shapes_bit_exact_on_cortex_m4(dw_models: list[Path], tmp_path: Path) -> None:
    """The assembly loops only run on a real DSP core: QEMU's Cortex-M4, every activation compared."""
    from codegen_qemu_smoke import build_and_run

    out = build_and_run(dw_models, tmp_path, samples=3)
    assert "MISMATCH" not in out


_SIZES = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arm_nnfunctions.h"

/* argv: n h w c kh kw mult sh sw ph pw oh ow. Prints the wrapper's buffer size, then whether the output with
 * that buffer equals the output without one (the older kernels), on seeded pseudo-random data, then whether the
 * 64 canary bytes right after the output (an arena neighbour) are untouched: no row loop may write past the
 * tensor's last row. */
int main(int argc, char **argv)
{
    int32_t a[13];
    for (int i = 0; i < 13; i++) a[i] = atoi(argv[i + 1]);
    (void)argc;
    const cmsis_nn_dims in = {a[0], a[1], a[2], a[3]};
    const cmsis_nn_dims filter = {1, a[4], a[5], a[3] * a[6]};
    const cmsis_nn_dims out = {a[0], a[11], a[12], a[3] * a[6]};
    const cmsis_nn_dims bias_dims = {1, 1, 1, a[3] * a[6]};
    const cmsis_nn_dw_conv_params p = {5, -3, a[6], {a[8], a[7]}, {a[10], a[9]}, {1, 1}, {-128, 127}};
    const int32_t size = arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in, &filter, &out);
    const size_t n_in = (size_t)(in.n * in.h * in.w * in.c), n_f = (size_t)(filter.h * filter.w * filter.c);
    const size_t n_out = (size_t)(out.n * out.h * out.w * out.c);
    int8_t *input = malloc(n_in), *weights = malloc(n_f), *o1 = malloc(n_out + 64), *o2 = malloc(n_out);
    int32_t *mult = malloc((size_t)out.c * 4), *shift = malloc((size_t)out.c * 4), *bias = malloc((size_t)out.c * 4);
    uint32_t s = 12345u;
    for (size_t i = 0; i < n_in; i++) { s = s * 1103515245u + 12345u; input[i] = (int8_t)(s >> 16); }
    for (size_t i = 0; i < n_f; i++) { s = s * 1103515245u + 12345u; weights[i] = (int8_t)(s >> 16); }
    for (int32_t i = 0; i < out.c; i++)
    {
        s = s * 1103515245u + 12345u;
        mult[i] = 1073741824 + (int32_t)(s >> 3);
        shift[i] = -7 - (int32_t)(s % 3u);
        bias[i] = (int32_t)(s % 2001u) - 1000;
    }
    const cmsis_nn_per_channel_quant_params q = {mult, shift};
    memset(o1 + n_out, 0x5A, 64);
    void *buf = malloc((size_t)(size > 0 ? size : 1));
    const cmsis_nn_context with = {buf, size}, without = {NULL, 0};
    const int rc1 = arm_depthwise_conv_wrapper_s8(&with, &p, &q, &in, input, &filter, weights, &bias_dims, bias, &out, o1);
    const int rc2 = arm_depthwise_conv_wrapper_s8(&without, &p, &q, &in, input, &filter, weights, &bias_dims, bias, &out,
                                                  o2);
    int canary = 1;
    for (size_t i = 0; i < 64; i++) canary &= o1[n_out + i] == 0x5A;
    printf("%ld %d %d %d %d %ld\n", (long)size, rc1, rc2, memcmp(o1, o2, n_out) == 0, canary,
           (long)resilinet_depthwise_conv_s8_packed_get_buffer_size(&p, &in, &filter, &out));
    return 0;
}
"""

#: (n, h, w, c, kh, kw, mult, stride h, w, pad h, w): 3x3 at both strides, bands, audio, dilation-free others.
_SHAPES = [
    (1, 25, 5, 64, 3, 3, 1, 1, 1, 1, 1),
    (1, 48, 48, 8, 3, 3, 1, 1, 1, 1, 1),
    (1, 12, 12, 16, 3, 3, 1, 2, 2, 0, 0),
    (1, 49, 10, 1, 10, 8, 8, 2, 2, 4, 3),
    (2, 7, 9, 6, 3, 3, 2, 1, 1, 1, 1),
    (1, 6, 6, 5, 5, 5, 1, 1, 1, 2, 2),
    (1, 10, 11, 8, 3, 3, 1, 3, 3, 1, 1),      # 3x3 at stride 3: the 3x3 weight layout, one output at a time
    (1, 30, 7, 8, 3, 3, 1, 2, 1, 1, 1),       # taller than wide: run transposed, strides (2, 1) become (1, 2)
    (1, 13, 5, 4, 3, 3, 2, 2, 2, 1, 1),       # transposed at stride 2, multiplier 2, 7 outputs per band row
    (1, 4, 40, 3, 17, 3, 1, 1, 1, 8, 1),      # 17 rows: beyond the row kernel, the older kernels run
]


@pytest.mark.parametrize("flags", [[], ["-DRESILINET_EMULATE_DSP"]], ids=["c", "dsp"])
def test_scratch_formula_is_the_c_librarys_and_less_scratch_gives_the_same_bytes(flags: list[str],
                                                                                 tmp_path: Path) -> None:
    src = tmp_path / "dw_sizes.c"
    src.write_text(_SIZES)
    exe = tmp_path / "dw_sizes"
    subprocess.run(["gcc", "-O1", "-std=c99", "-Wall", "-Wextra", "-Werror", *flags, "-I", str(kernels_dir()),
                    str(src), *sorted(str(p) for p in kernels_dir().glob("*.c")), "-o", str(exe)], check=True)
    for n, h, w, c, kh, kw, mult, sh, sw, ph, pw in _SHAPES:
        oh = (h + 2 * ph - kh) // sh + 1
        ow = (w + 2 * pw - kw) // sw + 1
        run = subprocess.run([str(exe), *map(str, (n, h, w, c, kh, kw, mult, sh, sw, ph, pw, oh, ow))],
                             capture_output=True, text=True, check=True)
        size, rc1, rc2, same, canary, packed_size = map(int, run.stdout.split())
        params = {"padding": (ph, pw), "dilation": (1, 1), "stride": (sh, sw), "ch_mult": mult,
                  "input_dims": Dims(n, h, w, c).__dict__, "filter_dims": Dims(1, kh, kw, c * mult).__dict__,
                  "output_dims": Dims(n, oh, ow, c * mult).__dict__}
        backend = "dsp" if flags else "c"
        assert depthwise_scratch(params, backend) >= size, (n, h, w, c, kh, kw)
        # Generated code with prepacked weights plans the packed entry point's scratch: the rows only.
        rows = depthwise_rows_buffer_size((sh, sw), (ph, pw), (1, 1), mult, Dims(n, h, w, c),
                                          Dims(1, kh, kw, c * mult), Dims(n, oh, ow, c * mult), prepacked=True)
        assert packed_size == (-1 if rows is None else rows), (n, h, w, c, kh, kw)
        if rows is not None:
            assert depthwise_scratch({**params, "packed": True}, backend) >= rows
        if kh <= 16:
            assert depthwise_scratch(params, backend) == size, (n, h, w, c, kh, kw)
        assert (rc1, rc2, same, canary) == (0, 0, 1, 1), (n, h, w, c, kh, kw, mult)


def test_vww_model_is_deterministic_mobilenet_and_bit_exact(tmp_path: Path) -> None:
    """The VWW builder: a MobileNet v1 0.25 at 96x96x3 (13 depthwise layers, 2 classes), cached by its key, and
    bit-exact on every activation (portable C and emulated DSP)."""
    from codegen.tflite_reader import read_tflite

    path = vww_model.build_vww_model(tmp_path / "vww.tflite")
    assert vww_model.build_vww_model(tmp_path / "vww.tflite") == path  # cached: same key, not rebuilt
    graph = read_tflite(path)
    ops = [op.op_type for op in graph.operators]
    assert ops.count("DEPTHWISE_CONV_2D") == 13 and ops.count("CONV_2D") == 15
    assert tuple(graph.tensors[graph.inputs[0]].shape) == (1, 96, 96, 3)
    assert graph.tensors[graph.outputs[0]].shape[-1] == 2
    for target in ("host", "host-dsp"):
        assert_bit_exact(path, TARGETS[target], tmp_path / target, 2, seed=1,
                         probe_tensors=tuple(activation_tensors(path)))
