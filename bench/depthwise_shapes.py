#!/usr/bin/env python3
"""Instructions per MAC of the depthwise kernel, shape by shape, on QEMU's Cortex-M4 (DSP path and plain C).

    .venv/bin/python bench/depthwise_shapes.py [--only NAME ...] [--json OUT] [--kernels DIR]

Each shape is a one-op int8 model (a seeded Keras DepthwiseConv2D with bias and fused ReLU, converted with a
seeded representative set, cached in ``build/bench-models/depthwise/``) measured with
``kernel_instructions.measure`` (exact instruction counts, outputs checked against tflite_micro) twice: with the
DSP path and with ``-U__ARM_FEATURE_DSP`` (the portable C path of the same kernels). The shapes: the audio
first layer (1 input channel, channel multiplier 8, 10x8 kernel), multiplier 2, DS-CNN's 3x3 on 25x5x64, and the
MobileNet v1 3x3 layers at stride 1 and 2 with 8..256 channels (the VWW model's spatial sizes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for _p in (str(REPO), str(REPO / "bench")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

MODEL_DIR = REPO / "build" / "bench-models" / "depthwise"
#: Bump when the models change (the cache is keyed on it).
BUILDER_VERSION = 1


@dataclass(frozen=True)
class DwShape:
    """One depthwise layer: input H x W x C, kernel KH x KW, channel multiplier, stride, padding."""
    name: str
    h: int
    w: int
    c: int
    kh: int
    kw: int
    mult: int = 1
    stride: int = 1
    padding: str = "same"


SHAPES: tuple[DwShape, ...] = (
    DwShape("audio 10x8 x8 (1 ch)", 49, 10, 1, 10, 8, mult=8, stride=2),
    DwShape("3x3 x2 s1 16ch", 12, 12, 16, 3, 3, mult=2),
    DwShape("kws 3x3 s1 64ch", 25, 5, 64, 3, 3),
    *(DwShape(f"mobilenet 3x3 s1 {c}ch", s, s, c, 3, 3) for c, s in
      ((8, 48), (16, 48), (32, 24), (64, 12), (128, 6), (256, 3))),
    *(DwShape(f"mobilenet 3x3 s2 {c}ch", s, s, c, 3, 3, stride=2) for c, s in
      ((8, 48), (16, 48), (32, 24), (64, 12), (128, 6), (256, 6))),
)


def _slug(s: DwShape) -> str:
    return (f"dw_{s.h}x{s.w}x{s.c}_k{s.kh}x{s.kw}_m{s.mult}_s{s.stride}_{s.padding}")


def build_shape_model(shape: DwShape, out_dir: Path = MODEL_DIR, seed: int = 0) -> Path:
    """The one-op int8 model of ``shape`` (cached; same bytes on every run)."""
    out = out_dir / f"{_slug(shape)}.tflite"
    key = out.with_suffix(".key")
    want = f"depthwise shape builder v{BUILDER_VERSION} seed {seed} {asdict(shape)}\n"
    if out.is_file() and key.is_file() and key.read_text() == want:
        return out
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from vww_model import convert_int8  # one int8 conversion for the bench's own models

    keras.utils.set_random_seed(seed)
    x = keras.Input((shape.h, shape.w, shape.c), batch_size=1)
    layer = keras.layers.DepthwiseConv2D((shape.kh, shape.kw), strides=shape.stride, padding=shape.padding,
                                         depth_multiplier=shape.mult, activation="relu",
                                         bias_initializer=keras.initializers.RandomNormal(0.0, 0.2, seed=seed))
    model = keras.Model(x, layer(x))
    rng = np.random.default_rng(seed + 1)
    samples = rng.uniform(-1.0, 1.0, (8, shape.h, shape.w, shape.c)).astype(np.float32)
    data = convert_int8(model, samples)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    key.write_text(want)
    return out


def measure_shape(shape: DwShape, kernels: Path, work: Path) -> dict[str, Any]:
    """Instructions of the depthwise op (DSP and plain C), its MACs, and whether both matched tflite_micro."""
    import kernel_instructions

    model = build_shape_model(shape)
    row: dict[str, Any] = {"name": shape.name, "shape": asdict(shape)}
    for label, extra in (("dsp", ()), ("plain_c", ("-U__ARM_FEATURE_DSP",))):
        r = kernel_instructions.measure(model, kernels, work / f"{_slug(shape)}-{label}", check=True,
                                        extra_flags=extra)
        op = next(o for o in r["ops"] if o["category"] == "depthwise")
        row["macs"] = op["macs"]
        row[f"{label}_instructions"] = op["instructions"]
        row[f"{label}_ins_per_mac"] = op["instructions"] / op["macs"]
        row[f"{label}_bit_exact"] = r["check"]
    return row


def measure_all(kernels: Path, work: Path, only: list[str] | None = None) -> list[dict[str, Any]]:
    return [measure_shape(s, kernels, work) for s in SHAPES if not only or any(o in s.name for o in only)]


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'shape':<26} {'MACs':>9} {'DSP ins/MAC':>11} {'plain C ins/MAC':>15} {'bit-exact':>9}")
    for r in rows:
        ok = r["dsp_bit_exact"] and r["plain_c_bit_exact"]
        print(f"{r['name']:<26} {r['macs']:>9,} {r['dsp_ins_per_mac']:>11.2f} {r['plain_c_ins_per_mac']:>15.2f} "
              f"{'yes' if ok else 'NO':>9}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="substrings of shape names to measure")
    ap.add_argument("--kernels", type=Path, default=REPO / "firmware" / "cmsis_nn")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dw-shapes-") as tmp:
        rows = measure_all(args.kernels.resolve(), Path(tmp), args.only)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["dsp_bit_exact"] and r["plain_c_bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
