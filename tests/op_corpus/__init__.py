"""The op corpus (issue 18): small Keras models converted here with TensorFlow's converter, one family module
per op family, each checked bit-exact on every tensor by tests/test_op_corpus.py on host, host-dsp and qemu.

A family module ``tests/op_corpus/<family>.py`` defines::

    MODELS: dict[str, Callable[[], bytes]]   # model name -> deterministic builder returning .tflite bytes

Builders make a tiny Keras model and convert it with :func:`convert_keras` (or write a flatbuffer). Model
names are unique across families. :func:`build_model` runs a builder once per test session (into a cache
directory) after seeding Keras, NumPy and Python from the model name, so a builder that forgets a seed is
still deterministic.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

Builder = Callable[[], bytes]


def family_names() -> list[str]:
    """The family modules present in this package (others drop theirs in as they are written)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def corpus_builders() -> dict[str, Builder]:
    """Every model of every family: name -> builder. A name defined twice is an error, not a silent override."""
    builders: dict[str, Builder] = {}
    for family in family_names():
        module = importlib.import_module(f"{__name__}.{family}")
        for name, build in module.MODELS.items():
            if name in builders:
                raise ValueError(f"op corpus model '{name}' is defined twice (family '{family}' and another)")
            builders[name] = build
    return builders


def build_model(name: str, cache_dir: Path, builders: dict[str, Builder] | None = None) -> Path:
    """``cache_dir/<name>.tflite``, converted on first use (written atomically, then reused)."""
    path = cache_dir / f"{name}.tflite"
    if path.is_file():
        return path
    build = (builders if builders is not None else corpus_builders())[name]
    import keras

    # Every model gets its own fixed seed (from its name, not its position in the corpus): adding a model
    # never changes another one.
    keras.utils.set_random_seed(zlib.crc32(name.encode()) & 0x7FFF_FFFF)
    data = build()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def representative_data(model: Any, samples: int, seed: int, scale: float) -> Callable[[], Iterator[dict]]:
    """A converter's representative dataset: ``samples`` seeded normal(0, scale) inputs, as dicts keyed by
    input name (the converter may reorder inputs; a list would be fed in its order)."""
    names = [t.name for t in model.inputs]
    shapes = [tuple(t.shape[1:]) for t in model.inputs]

    def generate() -> Iterator[dict]:
        rng = np.random.default_rng(seed)
        for _ in range(samples):
            yield {n: rng.normal(0.0, scale, size=(1, *s)).astype(np.float32) for n, s in zip(names, shapes)}

    return generate


def convert_keras(model: Any, io: str = "int8", activations: str = "int8", samples: int = 32, seed: int = 0,
                  scale: float = 1.0) -> bytes:
    """Quantize ``model`` with TensorFlow's converter.

    ``io``: "int8" (inference_input/output_type int8), "int16" (16x8 models only) or "float" (the converter's
    default: the model keeps float I/O and starts with QUANTIZE, ends with DEQUANTIZE).
    ``activations``: "int8" (TFLITE_BUILTINS_INT8) or "int16" (the 16x8 scheme:
    EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8).
    """
    import tensorflow as tf

    if io not in ("int8", "int16", "float") or activations not in ("int8", "int16"):
        raise ValueError(f"convert_keras: io={io!r}, activations={activations!r}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_data(model, samples, seed, scale)
    converter.target_spec.supported_ops = (
        [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8] if activations == "int16"
        else [tf.lite.OpsSet.TFLITE_BUILTINS_INT8])
    if io != "float":
        io_type = tf.int16 if io == "int16" else tf.int8
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    return converter.convert()


__all__ = ["Builder", "build_model", "convert_keras", "corpus_builders", "family_names", "representative_data"]
