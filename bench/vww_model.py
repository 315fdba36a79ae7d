#!/usr/bin/env python3
"""The VWW benchmark model: MobileNet v1 alpha 0.25 at 96x96x3, 2 classes, full int8 (our own seeded weights).

    .venv/bin/python bench/vww_model.py [--out PATH] [--force]

The MLPerf Tiny visual-wake-words architecture (keras.applications.MobileNet(alpha=0.25, weights=None,
input_shape=(96, 96, 3), classes=2)): 13 depthwise-separable blocks, depthwise 3x3 with 8..256 channels at
strides 1 and 2. Its weights are not the MLPerf ones (those are trained on COCO; we measure kernels, not
accuracy): every weight and batch-norm statistic is drawn from seeded generators, so the int8 model is the same
bytes on every run (checked by the cache key below). Conversion uses a seeded random representative set.

``build_vww_model()`` writes ``build/bench-models/vww_mobilenet_025.tflite`` once and returns its path; later
calls return the cached file when its key (this builder's version + seed) matches.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "build" / "bench-models" / "vww_mobilenet_025.tflite"
#: Bump when the builder changes what it writes (the cache is keyed on it).
BUILDER_VERSION = 1
SEED = 0
INPUT_SHAPE = (96, 96, 3)
CALIBRATION_SAMPLES = 8


def _keras_model(seed: int):
    """MobileNet v1 0.25 with seeded weights and batch-norm statistics far enough from identity to matter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNet(alpha=0.25, weights=None, input_shape=INPUT_SHAPE, classes=2)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            # Untrained BN is the identity; random statistics give every channel its own scale, like a trained
            # model's per-channel quantization.
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.normal(0.0, 0.1, beta.shape).astype(np.float32),
                               rng.normal(0.0, 0.1, mean.shape).astype(np.float32),
                               rng.uniform(0.5, 2.0, var.shape).astype(np.float32)])
    return model


def convert(seed: int = SEED) -> bytes:
    """The int8 flatbuffer (int8 input and output), calibrated on seeded uniform images in [-1, 1]."""
    rng = np.random.default_rng(seed + 1)
    samples = rng.uniform(-1.0, 1.0, (CALIBRATION_SAMPLES, *INPUT_SHAPE)).astype(np.float32)
    return convert_int8(_keras_model(seed), samples)


def convert_int8(model, samples: np.ndarray) -> bytes:
    """A Keras model as a full-int8 TFLite flatbuffer (int8 input and output), calibrated on ``samples``."""
    import tensorflow as tf

    def representative():
        for i in range(len(samples)):
            yield [samples[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    # The converter prints its SavedModel export notices: keep the bench log readable.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return conv.convert()


def _key(seed: int) -> str:
    return f"vww_mobilenet_025 builder v{BUILDER_VERSION} seed {seed}\n"


def build_vww_model(out: Path = DEFAULT_OUT, seed: int = SEED, force: bool = False) -> Path:
    """Write the model to ``out`` unless a copy with the same key is there; return ``out``."""
    key_path = out.with_suffix(".key")
    if not force and out.is_file() and key_path.is_file() and key_path.read_text() == _key(seed):
        return out
    data = convert(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)  # atomic: a concurrent reader never sees half a model
    key_path.write_text(_key(seed))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--force", action="store_true", help="rebuild even when the cached model matches")
    args = ap.parse_args(argv)
    path = build_vww_model(args.out, args.seed, args.force)
    print(f"{path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
