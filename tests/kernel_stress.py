"""Randomized kernel stress models: many random single-op cases in one .tflite, no TensorFlow converter.

One stress model holds ``ops`` independent cases (convolution, depthwise with every channel multiplier,
fully connected, add, mul, average / max pool, softmax), each with its own model input and output, random
shapes and random quantization parameters (per-tensor scales and zero points, per-channel weight scales,
biases, fused activations). Shapes stay small (a few hundred bytes of I/O per case): the emulated board's
UART moves ~17 KB/s, which bounds the cases per second on QEMU. Running ``samples`` random inputs through
it checks ``ops * samples`` cases in one build and one QEMU boot per target (:func:`check_stress_model`:
host C, host-dsp, qemu against the TFLM interpreter through ``codegen.verify``). Some window cases are
wrapped in identity QUANTIZE ops, so their input and output live in the arena and the planner's in-place
overlap (codegen/ops/overlap.py) runs under the random shapes too.

Everything is drawn from ``numpy.random.default_rng(seed)``: a seed names a model. Used by
tests/test_kernel_stress.py (a few thousand cases) and bench/bench_stress.py (>= 100 k cases).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from codegen_models import TinyModel, _schema

#: Op kinds a stress model draws from (equal weights; depthwise twice: it has the most variants).
OP_KINDS: tuple[str, ...] = ("conv", "depthwise", "depthwise", "fc", "add", "mul", "avgpool", "maxpool",
                             "softmax")


@dataclass(frozen=True)
class StressCase:
    """One op of a stress model: its kind, a readable description (shapes, options) and its output's name."""

    index: int
    kind: str
    description: str
    output: str
    chained: bool  # wrapped in identity QUANTIZE ops: input and output in the arena (overlap exercised)


@dataclass
class StressModel:
    path: Path
    seed: int
    cases: list[StressCase] = field(default_factory=list)


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


class _Builder:
    """Appends random cases to a :class:`TinyModel`."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.m = TinyModel()
        self.s = _schema()
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    # ------------------------------------------------------------------ tensors
    def act(self, name: str, shape: list[int], scale: float | None = None, zp: int | None = None) -> int:
        scale = _logu(self.rng, 0.004, 0.5) if scale is None else scale
        zp = int(self.rng.integers(-128, 128)) if zp is None else zp
        return self.m.tensor(name, shape, scale=scale, zero_point=zp)

    def scale_of(self, t: int) -> tuple[float, int]:
        q = self.m.tensors[t].quantization
        return float(q.scale[0]), int(q.zeroPoint[0])

    def weights(self, name: str, shape: list[int], scales: np.ndarray, axis: int) -> int:
        data = self.rng.integers(-127, 128, size=shape, dtype=np.int8)
        t = self.m.tensor(name, shape, data=data)
        q = self.s.QuantizationParametersT()
        q.scale = scales.astype(np.float32)
        q.zeroPoint = np.zeros(len(scales), dtype=np.int64)
        q.quantizedDimension = axis
        self.m.tensors[t].quantization = q
        return t

    def bias(self, name: str, scales: np.ndarray, spread: float) -> int:
        data = np.rint(self.rng.normal(0.0, spread, size=len(scales))).astype(np.int32)
        t = self.m.tensor(name, [len(scales)], dtype="int32", data=data)
        q = self.s.QuantizationParametersT()
        q.scale = scales.astype(np.float32)
        q.zeroPoint = np.zeros(len(scales), dtype=np.int64)
        self.m.tensors[t].quantization = q
        return t

    def fused(self) -> int:
        a = self.s.ActivationFunctionType
        return int(self.rng.choice([a.NONE, a.NONE, a.RELU, a.RELU6]))

    def out_scale(self, s_in: float, s_w: float, k: int) -> float:
        # An accumulation of k products of ~uniform int8 values has a spread of ~sqrt(k) * 5400 integer units;
        # aim it at ~40 output steps, times a random factor (some cases saturate, some use few levels).
        return float(np.sqrt(k) * 5400.0 * s_in * s_w / 40.0 * _logu(self.rng, 0.25, 4.0))

    # ------------------------------------------------------------------ window geometry
    def window(self, hw: tuple[int, int], k: tuple[int, int],
               dil: tuple[int, int]) -> tuple[int, int, int, tuple[int, int]]:
        """(padding, stride_h, stride_w, output hw) with a non-empty output."""
        pad = self.s.Padding
        stride = (int(self.rng.integers(1, 4)), int(self.rng.integers(1, 4)))
        eff = ((k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1)
        padding = int(self.rng.choice([pad.SAME, pad.VALID])) if all(e <= s for e, s in zip(eff, hw)) else pad.SAME
        if padding == pad.SAME:
            out = ((hw[0] + stride[0] - 1) // stride[0], (hw[1] + stride[1] - 1) // stride[1])
        else:
            out = ((hw[0] - eff[0]) // stride[0] + 1, (hw[1] - eff[1]) // stride[1] + 1)
        return padding, stride[0], stride[1], out

    # ------------------------------------------------------------------ cases
    def case(self, index: int, kind: str) -> StressCase:
        chained = kind in ("conv", "depthwise", "avgpool", "maxpool") and bool(self.rng.random() < 0.5)
        make: Callable[[str], tuple[int, int, str]] = getattr(self, f"_{kind}")
        name = f"c{index}_{kind}"
        x, y, desc = make(name)
        if chained:  # identity requantizations around the op: its input and output become arena tensors
            x, y = self._wrap(name, x, y)
        self.inputs.append(x)
        self.outputs.append(y)
        return StressCase(index, kind, desc, self.m.tensors[y].name, chained)

    def _wrap(self, name: str, x: int, y: int) -> tuple[int, int]:
        op = self.s.BuiltinOperator
        tx, ty = self.m.tensors[x], self.m.tensors[y]
        sx, zx = self.scale_of(x)
        sy, zy = self.scale_of(y)
        x0 = self.m.tensor(f"{name}_in", list(tx.shape), scale=sx, zero_point=zx)
        y1 = self.m.tensor(f"{name}_out", list(ty.shape), scale=sy, zero_point=zy)
        self.m.ops.insert(len(self.m.ops) - 1, self._op_record(op.QUANTIZE, [x0], [x]))
        self.m.op(op.QUANTIZE, [y], [y1])
        return x0, y1

    def _op_record(self, builtin: int, inputs: list[int], outputs: list[int]) -> object:
        self.m.op(builtin, inputs, outputs)
        return self.m.ops.pop()

    def _conv(self, name: str) -> tuple[int, int, str]:
        r, s = self.rng, self.s
        h, w, cin, cout = (int(v) for v in (r.integers(1, 10), r.integers(1, 10), r.integers(1, 10), r.integers(1, 10)))
        k = (int(r.integers(1, 6)), int(r.integers(1, 6)))
        dil = (1, 1) if r.random() < 0.8 else (int(r.integers(1, 3)), int(r.integers(1, 3)))
        padding, sh, sw, (oh, ow) = self.window((h, w), k, dil)
        x = self.act(f"{name}_x", [1, h, w, cin])
        sx, _ = self.scale_of(x)
        ws = np.array([_logu(r, 0.001, 0.05) for _ in range(cout)])
        wt = self.weights(f"{name}_w", [cout, k[0], k[1], cin], ws, 0)
        kk = k[0] * k[1] * cin
        b = self.bias(f"{name}_b", sx * ws, np.sqrt(kk) * 2000.0)
        y = self.act(f"{name}_y", [1, oh, ow, cout], scale=self.out_scale(sx, float(ws.mean()), kk))
        o = s.Conv2DOptionsT()
        o.padding, o.strideH, o.strideW = padding, sh, sw
        o.dilationHFactor, o.dilationWFactor = dil
        o.fusedActivationFunction = self.fused()
        self.m.op(s.BuiltinOperator.CONV_2D, [x, wt, b], [y], s.BuiltinOptions.Conv2DOptions, o)
        return x, y, (f"conv {k[0]}x{k[1]} s{sh}x{sw} d{dil[0]}x{dil[1]} pad{padding} "
                      f"[{h},{w},{cin}]->[{oh},{ow},{cout}]")

    def _depthwise(self, name: str) -> tuple[int, int, str]:
        r, s = self.rng, self.s
        if r.random() < 0.05:  # the audio first layer of issue 17: 1 channel, multiplier 8, 10x8 kernel
            h, w, cin, mult, k = int(r.integers(10, 15)), int(r.integers(8, 11)), 1, 8, (10, 8)
        else:
            h, w, cin = (int(v) for v in (r.integers(1, 10), r.integers(1, 10), r.integers(1, 9)))
            mult = int(r.choice([1, 1, 1, 2, 3, 4, 8]))
            k = (int(r.integers(1, 6)), int(r.integers(1, 6)))
        dil = (1, 1) if r.random() < 0.8 else (int(r.integers(1, 3)), int(r.integers(1, 3)))
        padding, sh, sw, (oh, ow) = self.window((h, w), k, dil)
        cout = cin * mult
        x = self.act(f"{name}_x", [1, h, w, cin])
        sx, _ = self.scale_of(x)
        ws = np.array([_logu(r, 0.001, 0.05) for _ in range(cout)])
        wt = self.weights(f"{name}_w", [1, k[0], k[1], cout], ws, 3)
        b = self.bias(f"{name}_b", sx * ws, np.sqrt(k[0] * k[1]) * 2000.0)
        y = self.act(f"{name}_y", [1, oh, ow, cout], scale=self.out_scale(sx, float(ws.mean()), k[0] * k[1]))
        o = s.DepthwiseConv2DOptionsT()
        o.padding, o.strideH, o.strideW, o.depthMultiplier = padding, sh, sw, mult
        o.dilationHFactor, o.dilationWFactor = dil
        o.fusedActivationFunction = self.fused()
        self.m.op(s.BuiltinOperator.DEPTHWISE_CONV_2D, [x, wt, b], [y], s.BuiltinOptions.DepthwiseConv2DOptions, o)
        return x, y, (f"depthwise x{mult} {k[0]}x{k[1]} s{sh}x{sw} d{dil[0]}x{dil[1]} pad{padding} "
                      f"[{h},{w},{cin}]->[{oh},{ow},{cout}]")

    def _fc(self, name: str) -> tuple[int, int, str]:
        r, s = self.rng, self.s
        n, cin, cout = int(r.choice([1, 1, 1, 2, 3])), int(r.integers(1, 65)), int(r.integers(1, 25))
        x = self.act(f"{name}_x", [n, cin])
        sx, _ = self.scale_of(x)
        ws = np.full(1, _logu(r, 0.001, 0.05))  # TFLM's int8 FC: per-tensor weights
        wt = self.weights(f"{name}_w", [cout, cin], ws, 0)
        b = self.bias(f"{name}_b", np.full(cout, sx * ws[0]), np.sqrt(cin) * 2000.0)
        y = self.act(f"{name}_y", [n, cout], scale=self.out_scale(sx, float(ws[0]), cin))
        o = s.FullyConnectedOptionsT()
        o.fusedActivationFunction = self.fused()
        self.m.op(s.BuiltinOperator.FULLY_CONNECTED, [x, wt, b], [y], s.BuiltinOptions.FullyConnectedOptions, o)
        return x, y, f"fc [{n},{cin}]->[{n},{cout}]"

    def _binary_shapes(self) -> tuple[list[int], list[int], list[int]]:
        r = self.rng
        shape = [1] + [int(v) for v in r.integers(1, 7, size=3)]
        other = list(shape)
        if r.random() < 0.4:  # broadcast along some axes
            for axis in range(1, 4):
                if r.random() < 0.5:
                    other[axis] = 1
        return (shape, other, shape) if r.random() < 0.5 else (other, shape, shape)

    def _binary(self, name: str, builtin: int, options_type: int, options: object,
                out_scale: Callable[[float, float], float], sym: str) -> tuple[int, int, str]:
        a_shape, b_shape, y_shape = self._binary_shapes()
        a = self.act(f"{name}_a", a_shape)
        b_scale = self.scale_of(a)[0] * _logu(self.rng, 0.2, 5.0)
        b = self.m.tensor(f"{name}_b", b_shape, scale=b_scale, zero_point=int(self.rng.integers(-128, 128)))
        y = self.act(f"{name}_y", y_shape, scale=out_scale(self.scale_of(a)[0], b_scale))
        self.m.op(builtin, [a, b], [y], options_type, options)
        # Two inputs: the second becomes an extra model input of this case.
        self.inputs.append(b)
        return a, y, f"{a_shape} {sym} {b_shape}"

    def _add(self, name: str) -> tuple[int, int, str]:
        o = self.s.AddOptionsT()
        o.fusedActivationFunction = self.fused()
        return self._binary(name, self.s.BuiltinOperator.ADD, self.s.BuiltinOptions.AddOptions, o,
                            lambda sa, sb: (sa + sb) * _logu(self.rng, 0.3, 2.0), "+")

    def _mul(self, name: str) -> tuple[int, int, str]:
        o = self.s.MulOptionsT()
        o.fusedActivationFunction = self.fused()
        return self._binary(name, self.s.BuiltinOperator.MUL, self.s.BuiltinOptions.MulOptions, o,
                            lambda sa, sb: 128.0 * sa * sb * _logu(self.rng, 0.1, 3.0), "*")

    def _pool(self, name: str, builtin: int, label: str) -> tuple[int, int, str]:
        r, s = self.rng, self.s
        h, w, c = (int(v) for v in (r.integers(1, 10), r.integers(1, 10), r.integers(1, 17)))
        k = (int(r.integers(1, 6)), int(r.integers(1, 6)))
        padding, sh, sw, (oh, ow) = self.window((h, w), k, (1, 1))
        x = self.act(f"{name}_x", [1, h, w, c])
        sx, zx = self.scale_of(x)
        y = self.m.tensor(f"{name}_y", [1, oh, ow, c], scale=sx, zero_point=zx)  # TFLM: same quantization
        o = s.Pool2DOptionsT()
        o.padding, o.strideH, o.strideW, o.filterHeight, o.filterWidth = padding, sh, sw, k[0], k[1]
        o.fusedActivationFunction = self.fused()
        self.m.op(builtin, [x], [y], s.BuiltinOptions.Pool2DOptions, o)
        return x, y, f"{label} {k[0]}x{k[1]} s{sh}x{sw} pad{padding} [{h},{w},{c}]->[{oh},{ow},{c}]"

    def _avgpool(self, name: str) -> tuple[int, int, str]:
        return self._pool(name, self.s.BuiltinOperator.AVERAGE_POOL_2D, "avgpool")

    def _maxpool(self, name: str) -> tuple[int, int, str]:
        return self._pool(name, self.s.BuiltinOperator.MAX_POOL_2D, "maxpool")

    def _softmax(self, name: str) -> tuple[int, int, str]:
        r, s = self.rng, self.s
        n, c = int(r.integers(1, 4)), int(r.integers(1, 33))
        x = self.act(f"{name}_x", [n, c], scale=_logu(r, 0.01, 0.5))
        y = self.m.tensor(f"{name}_y", [n, c], scale=1.0 / 256.0, zero_point=-128)
        o = s.SoftmaxOptionsT()
        o.beta = float(r.choice([1.0, 1.0, _logu(r, 0.25, 4.0)]))
        self.m.op(s.BuiltinOperator.SOFTMAX, [x], [y], s.BuiltinOptions.SoftmaxOptions, o)
        return x, y, f"softmax [{n},{c}] beta={o.beta:.3g}"


def build_stress_model(seed: int, ops: int, out_dir: Path) -> StressModel:
    """``out_dir/stress_<seed>.tflite``: ``ops`` random cases drawn from :data:`OP_KINDS` (seeded)."""
    rng = np.random.default_rng(seed)
    b = _Builder(rng)
    model = StressModel(path=out_dir / f"stress_{seed}.tflite", seed=seed)
    for i in range(ops):
        model.cases.append(b.case(i, str(rng.choice(OP_KINDS))))
    out_dir.mkdir(parents=True, exist_ok=True)
    b.m.save(model.path, b.inputs, b.outputs)
    return model


@dataclass
class StressResult:
    """Cases checked on one target: ``cases`` (op, input sample) pairs, ``failures`` the cases that differ."""

    target: str
    cases: int
    failures: list[str] = field(default_factory=list)
    failed_cases: int = 0
    seconds: float = 0.0


def check_stress_model(model: StressModel, target: str, samples: int, work_dir: Path) -> StressResult:
    """Run ``samples`` random inputs through every case on ``target``; compare each output with TFLM."""
    import time

    from codegen import verify_model

    t0 = time.monotonic()
    result = verify_model(model.path, samples=samples, seed=model.seed, target=target, work_dir=work_dir)
    by_output = {c.output: c for c in model.cases}
    failures = [f"seed {model.seed} case {by_output[o.name].index} ({by_output[o.name].description}"
                f"{', chained' if by_output[o.name].chained else ''}): {o.mismatched_samples}/{samples} samples "
                f"differ, max |diff| {o.max_abs_diff}" for o in result.outputs if o.mismatched_bytes]
    return StressResult(target=target, cases=len(result.outputs) * samples, failures=failures,
                        failed_cases=sum(o.mismatched_samples for o in result.outputs), seconds=time.monotonic() - t0)
