"""Bit-exactness check: run the generated module on a target and compare with the TFLM interpreter.

A :class:`Target` builds an executable from a generated module plus the kernels and runs batches of
samples through it. ``host`` compiles the portable C path with the host gcc; ``host-dsp`` compiles the
Cortex-M DSP (SIMD) path on the host with C models of the intrinsics. An emulated-board target can be
added by subclassing :class:`Target` and registering it in :data:`TARGETS`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import jinja2
import numpy as np

from .ops.context import LoweringOptions
from .emit import TEMPLATES_DIR, IoSpec, ModuleInfo, activation_tensors, generate_module
from .toolchain import cache_root

#: One sample = one array per model input (signature order, each of its IoSpec's dtype); outputs likewise.
Sample = list[np.ndarray]

#: numpy type of each I/O element type a module may take or return.
NP_DTYPES: dict[str, type] = {"int8": np.int8, "int16": np.int16, "float32": np.float32}


def pack_sample(specs: Sequence[IoSpec], sample: Sample) -> bytes:
    """The bytes a driver reads for one sample: each array in its spec's type (little endian), in order."""
    return b"".join(np.ascontiguousarray(x, dtype=np.dtype(NP_DTYPES[spec.dtype]).newbyteorder("<")).tobytes()
                    for spec, x in zip(specs, sample))


def unpack_sample(specs: Sequence[IoSpec], data: bytes) -> Sample:
    """Inverse of :func:`pack_sample` for one sample's worth of ``data``."""
    arrays, pos = [], 0
    for spec in specs:
        dtype = np.dtype(NP_DTYPES[spec.dtype]).newbyteorder("<")
        arrays.append(np.frombuffer(data, dtype=dtype, count=spec.count, offset=pos).astype(dtype.newbyteorder("="))
                      .reshape(spec.shape))
        pos += spec.nbytes
    return arrays


def sample_values(spec: IoSpec, rng: np.random.Generator, narrow: bool = False) -> np.ndarray:
    """Random values for one input: uniform over the whole type (saturating every path), or with ``narrow``
    concentrated around the zero point, where a model's calibrated values are.

    A float input (the model quantizes it itself) is drawn in real units over the int8 grid it is
    quantized to, widened by a quarter on both sides so that the quantizer's clamping is exercised too.
    """
    if spec.dtype == "float32":
        lo, hi = spec.scale * (-128 - spec.zero_point), spec.scale * (127 - spec.zero_point)
        if narrow:
            return rng.normal((lo + hi) / 2, (hi - lo) / 8, size=spec.shape).astype(np.float32)
        return rng.uniform(lo - (hi - lo) / 4, hi + (hi - lo) / 4, size=spec.shape).astype(np.float32)
    info = np.iinfo(NP_DTYPES[spec.dtype])
    if narrow:
        spread = 24.0 * (info.max + 1) / 128  # 24 int8 steps, scaled to the type's range
        return np.clip(np.rint(rng.normal(spec.zero_point, spread, size=spec.shape)), info.min, info.max).astype(
            NP_DTYPES[spec.dtype])
    # (high exclusive, as before int16/float inputs existed: int8 samples for a seed are unchanged)
    return rng.integers(info.min, int(info.max) + 1, size=spec.shape, dtype=NP_DTYPES[spec.dtype])


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def kernels_dir() -> Path:
    """Our CMSIS-NN implementation (``firmware/cmsis_nn``); override with ``$RESILINET_CMSIS_NN_DIR``."""
    return Path(os.environ.get("RESILINET_CMSIS_NN_DIR", repo_root() / "firmware" / "cmsis_nn"))


class Runner(ABC):
    """A built module that can run samples."""

    @abstractmethod
    def run(self, samples: Sequence[Sample]) -> list[Sample]:
        """Run every sample once; return the outputs of each, in module output order."""


class Target(ABC):
    """Where a generated module is compiled and executed."""

    name: str = "?"

    @abstractmethod
    def build(self, module: ModuleInfo, work_dir: Path) -> Runner:
        """Compile ``module`` (and the kernels) in ``work_dir``; return something that runs it."""


def render_driver(module: ModuleInfo) -> str:
    """The stdin/stdout test driver for ``module`` (also usable as a template for board drivers)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return env.get_template("driver_stdio.c.j2").render(name=module.name, NAME=module.name.upper(),
                                                          inputs=module.inputs, outputs=module.outputs)


@dataclass
class HostTarget(Target):
    """Host gcc build. ``emulate_dsp`` compiles the kernels' SIMD path with C intrinsic models."""

    emulate_dsp: bool = False
    cc: str = "gcc"
    cflags: tuple[str, ...] = ("-O2", "-std=c99", "-pedantic", "-Wall", "-Wextra")
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        self.name = "host-dsp" if self.emulate_dsp else "host"

    def _flags(self) -> list[str]:
        return list(self.cflags) + (["-DRESILINET_EMULATE_DSP"] if self.emulate_dsp else [])

    def kernel_objects(self) -> list[Path]:
        """Compile firmware/cmsis_nn once per (sources, flags, compiler) and reuse the objects."""
        kdir = kernels_dir()
        sources = sorted(kdir.glob("*.c"))
        digest = hashlib.sha256()
        for f in sorted(kdir.glob("*.[ch]")):
            digest.update(f.name.encode() + f.read_bytes())
        digest.update(" ".join([self.cc, *self._flags()]).encode())
        digest.update(subprocess.run([self.cc, "--version"], capture_output=True, text=True).stdout.encode())
        out_dir = cache_root() / f"kernels-{self.name}-{digest.hexdigest()[:16]}"
        objects = [out_dir / (src.stem + ".o") for src in sources]
        if all(o.exists() for o in objects):
            return objects
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir))
        try:
            procs = [subprocess.Popen([self.cc, *self._flags(), "-I", str(kdir), "-c", str(src), "-o",
                                       str(tmp / (src.stem + ".o"))], stderr=subprocess.PIPE, text=True)
                     for src in sources]
            for src, proc in zip(sources, procs):
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise RuntimeError(f"compiling {src.name} failed:\n{err}")
            for o in objects:
                os.replace(tmp / o.name, o)  # atomic: concurrent builds never see half-written objects
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return objects

    def build(self, module: ModuleInfo, work_dir: Path) -> Runner:
        work_dir.mkdir(parents=True, exist_ok=True)
        driver = work_dir / f"{module.name}_driver.c"
        driver.write_text(render_driver(module))
        exe = work_dir / f"{module.name}_{self.name.replace('-', '_')}"
        cmd = [self.cc, *self._flags(), "-I", str(kernels_dir()), "-I", str(module.c_path.parent),
               str(module.c_path), str(driver), *map(str, self.kernel_objects()), "-o", str(exe)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"host build failed:\n{' '.join(cmd)}\n{proc.stderr}")
        return _ProcessRunner([str(exe)], module.inputs, module.outputs, self.timeout_s)


class _ProcessRunner(Runner):
    """Streams samples through a driver process: binary inputs on stdin, outputs on stdout."""

    def __init__(self, argv: list[str], inputs: list[IoSpec], outputs: list[IoSpec], timeout_s: float) -> None:
        self.argv = argv
        self.inputs = inputs
        self.outputs = outputs
        self.timeout_s = timeout_s

    def run(self, samples: Sequence[Sample]) -> list[Sample]:
        payload = b"".join(pack_sample(self.inputs, sample) for sample in samples)
        proc = subprocess.run(self.argv, input=payload, capture_output=True, timeout=self.timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.argv[0]} exited with {proc.returncode}: {proc.stderr.decode(errors='replace')}")
        per_sample = sum(o.nbytes for o in self.outputs)
        if len(proc.stdout) != per_sample * len(samples):
            raise RuntimeError(f"expected {per_sample * len(samples)} output bytes, got {len(proc.stdout)}")
        return [unpack_sample(self.outputs, proc.stdout[i * per_sample:(i + 1) * per_sample])
                for i in range(len(samples))]


#: Target factories by name (``--target``).
TARGETS: dict[str, Callable[[], Target]] = {
    "host": lambda: HostTarget(),
    "host-dsp": lambda: HostTarget(emulate_dsp=True),
}


def register_target(name: str, factory: Callable[[], Target]) -> None:
    """Make a target available to :func:`verify_model` and ``verify --target`` (e.g. an emulated board).

    The stdio driver from :func:`render_driver` also runs on a bare-metal board whose C library routes
    stdin/stdout over semihosting or a UART, so a board target mostly needs its own build and runner.
    """
    TARGETS[name] = factory


def tflm_reference(model_path: str | Path, module: ModuleInfo, samples: Sequence[Sample]) -> list[Sample]:
    """Outputs of the TFLM Python interpreter (reference kernels), mapped to the module's I/O order."""
    from tflite_micro.python.tflite_micro import runtime as tflm

    probing = any(spec.subgraph_position < 0 for spec in module.outputs)
    config = tflm.InterpreterConfig.kPreserveAllTensors if probing else tflm.InterpreterConfig.kAllocationRecording
    # TFLM's default arena (10x the model file) is too small for tiny models; memory here is the host's.
    arena = max(10 * Path(model_path).stat().st_size, 4 << 20)
    interpreter = tflm.Interpreter.from_file(str(model_path), arena_size=arena, intrepreter_config=config)

    def fetch(spec: IoSpec) -> np.ndarray:
        if spec.subgraph_position >= 0:
            value = interpreter.get_output(spec.subgraph_position)
        else:  # a probed intermediate tensor
            value = interpreter.GetTensor(spec.tensor, 0)["tensor_data"]
        return np.array(value, dtype=NP_DTYPES[spec.dtype]).reshape(spec.shape)

    results: list[Sample] = []
    for sample in samples:
        for spec, x in zip(module.inputs, sample):
            interpreter.set_input(np.asarray(x, dtype=NP_DTYPES[spec.dtype]).reshape(spec.shape),
                                  spec.subgraph_position)
        interpreter.invoke()
        results.append([fetch(spec) for spec in module.outputs])
    return results


def random_samples(module: ModuleInfo, count: int, seed: int) -> list[Sample]:
    """Uniform inputs over the full range (exercises saturation and every requantization path)."""
    rng = np.random.default_rng(seed)
    return [[sample_values(spec, rng) for spec in module.inputs] for _ in range(count)]


def load_samples(path: str | Path, module: ModuleInfo) -> list[Sample]:
    """Inputs from ``.npy`` (single-input model: shape [N, *input_shape] or one sample) or ``.npz`` (one
    array per input name, each [N, *shape])."""
    path = Path(path)
    if path.suffix == ".npz":
        archive = np.load(path)
        missing = [s.name for s in module.inputs if s.name not in archive]
        if missing:
            raise ValueError(f"{path}: no arrays for inputs {missing} (has {list(archive.keys())})")
        per_input = [np.asarray(archive[s.name]) for s in module.inputs]
    else:
        if len(module.inputs) != 1:
            raise ValueError(f"{path}: a .npy file feeds one input; this model has {len(module.inputs)} (use .npz)")
        per_input = [np.load(path)]
    batches = []
    for spec, arr in zip(module.inputs, per_input):
        if arr.dtype != NP_DTYPES[spec.dtype]:
            raise ValueError(f"{path}: input '{spec.name}' must be {spec.dtype} (what the model takes), got {arr.dtype}")
        size = int(np.prod(spec.shape))
        if arr.size % size:
            raise ValueError(f"{path}: input '{spec.name}' has {arr.size} values, not a multiple of {size}")
        batches.append(arr.reshape(-1, *spec.shape))
    counts = {len(b) for b in batches}
    if len(counts) != 1:
        raise ValueError(f"{path}: inputs have different sample counts {counts}")
    return [[b[i] for b in batches] for i in range(counts.pop())]


@dataclass(frozen=True)
class OutputComparison:
    name: str
    total_bytes: int
    mismatched_bytes: int
    mismatched_samples: int
    #: largest |difference| (an integer for integer outputs)
    max_abs_diff: float


@dataclass
class VerifyResult:
    model: Path
    target: str
    samples: int
    module: ModuleInfo
    outputs: list[OutputComparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.mismatched_bytes == 0 for o in self.outputs)

    @property
    def mismatched_bytes(self) -> int:
        return sum(o.mismatched_bytes for o in self.outputs)


def compare(module: ModuleInfo, got: Sequence[Sample], want: Sequence[Sample]) -> list[OutputComparison]:
    results = []
    for k, spec in enumerate(module.outputs):
        g, w = np.stack([s[k] for s in got]), np.stack([s[k] for s in want])
        # Bit-exact means identical bytes, also for floats (-0.0 differs from 0.0; a NaN equals its own bits).
        diff = (g.view(np.uint8) != w.view(np.uint8)).reshape(len(got), -1)
        delta = np.abs(g.astype(np.float64) - w.astype(np.float64))
        largest = float(delta.max()) if diff.any() else 0.0
        results.append(OutputComparison(
            name=spec.name, total_bytes=int(diff.size), mismatched_bytes=int(diff.sum()),
            mismatched_samples=int(diff.any(axis=1).sum()),
            max_abs_diff=int(largest) if spec.dtype != "float32" else largest))
    return results


def verify_model(model_path: str | Path, samples: int = 50, seed: int = 0, inputs: str | Path | None = None,
                 target: str | Target = "host", work_dir: str | Path | None = None,
                 name: str | None = None, all_tensors: bool = False,
                 options: LoweringOptions = LoweringOptions()) -> VerifyResult:
    """Generate, build and run ``model_path`` on ``target``; compare every output byte with TFLM.

    ``all_tensors`` also exposes every intermediate activation as an extra output and compares it with
    the interpreter's copy (layer-by-layer), which catches errors a saturated softmax would hide.
    """
    tgt = TARGETS[target]() if isinstance(target, str) else target
    probes = activation_tensors(model_path) if all_tensors else []
    with tempfile.TemporaryDirectory(prefix="codegen-verify-") as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        module = generate_module(model_path, root / "module", name=name, probe_tensors=probes, options=options)
        data = load_samples(inputs, module) if inputs is not None else random_samples(module, samples, seed)
        runner = tgt.build(module, root / "build")
        got = runner.run(data)
        want = tflm_reference(model_path, module, data)
        return VerifyResult(model=Path(model_path), target=tgt.name, samples=len(data), module=module,
                            outputs=compare(module, got, want))
