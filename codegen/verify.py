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

from .emit import TEMPLATES_DIR, IoSpec, ModuleInfo, activation_tensors, generate_module
from .toolchain import cache_root

#: One sample = one int8 array per model input (signature order); outputs likewise.
Sample = list[np.ndarray]


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
        payload = b"".join(np.ascontiguousarray(x, dtype=np.int8).tobytes() for sample in samples for x in sample)
        proc = subprocess.run(self.argv, input=payload, capture_output=True, timeout=self.timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.argv[0]} exited with {proc.returncode}: {proc.stderr.decode(errors='replace')}")
        per_sample = sum(o.nbytes for o in self.outputs)
        if len(proc.stdout) != per_sample * len(samples):
            raise RuntimeError(f"expected {per_sample * len(samples)} output bytes, got {len(proc.stdout)}")
        data = np.frombuffer(proc.stdout, dtype=np.int8)
        results: list[Sample] = []
        pos = 0
        for _ in samples:
            outs = []
            for o in self.outputs:
                outs.append(data[pos:pos + o.nbytes].reshape(o.shape))
                pos += o.nbytes
            results.append(outs)
        return results


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
        return np.array(value, dtype=np.int8).reshape(spec.shape)

    results: list[Sample] = []
    for sample in samples:
        for spec, x in zip(module.inputs, sample):
            interpreter.set_input(np.asarray(x, dtype=np.int8).reshape(spec.shape), spec.subgraph_position)
        interpreter.invoke()
        results.append([fetch(spec) for spec in module.outputs])
    return results


def random_samples(module: ModuleInfo, count: int, seed: int) -> list[Sample]:
    """Uniform int8 inputs over the full range (exercises saturation and every requantization path)."""
    rng = np.random.default_rng(seed)
    return [[rng.integers(-128, 128, size=spec.shape, dtype=np.int8) for spec in module.inputs] for _ in range(count)]


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
        if arr.dtype != np.int8:
            raise ValueError(f"{path}: input '{spec.name}' must be int8 (quantized), got {arr.dtype}")
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
    max_abs_diff: int


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
        g = np.stack([s[k] for s in got]).astype(np.int32)
        w = np.stack([s[k] for s in want]).astype(np.int32)
        diff = g != w
        results.append(OutputComparison(
            name=spec.name, total_bytes=int(diff.size), mismatched_bytes=int(diff.sum()),
            mismatched_samples=int(diff.reshape(len(got), -1).any(axis=1).sum()),
            max_abs_diff=int(np.abs(g - w).max()) if diff.any() else 0))
    return results


def verify_model(model_path: str | Path, samples: int = 50, seed: int = 0, inputs: str | Path | None = None,
                 target: str | Target = "host", work_dir: str | Path | None = None,
                 name: str | None = None, all_tensors: bool = False) -> VerifyResult:
    """Generate, build and run ``model_path`` on ``target``; compare every output byte with TFLM.

    ``all_tensors`` also exposes every intermediate activation as an extra output and compares it with
    the interpreter's copy (layer-by-layer), which catches errors a saturated softmax would hide.
    """
    tgt = TARGETS[target]() if isinstance(target, str) else target
    probes = activation_tensors(model_path) if all_tensors else []
    with tempfile.TemporaryDirectory(prefix="codegen-verify-") as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        module = generate_module(model_path, root / "module", name=name, probe_tensors=probes)
        data = load_samples(inputs, module) if inputs is not None else random_samples(module, samples, seed)
        runner = tgt.build(module, root / "build")
        got = runner.run(data)
        want = tflm_reference(model_path, module, data)
        return VerifyResult(model=Path(model_path), target=tgt.name, samples=len(data), module=module,
                            outputs=compare(module, got, want))
