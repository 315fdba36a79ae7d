"""Shared by the ``make bench`` modules: paths, constants, reference figures, small helpers, the manifest reader.

Every bench module imports this one first: it puts the repository root on ``sys.path`` (for ``host``,
``codegen`` and ``boards``) and ``bench/`` itself (the bench modules import each other by their flat names,
as ``bench/run_benchmarks.py`` has always done with ``bench_report``).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
for _root in (str(REPO), str(BENCH)):  # bench/ ends up first, as the driver always had it
    if _root not in sys.path:
        sys.path.insert(0, _root)

from host.deploy.manifest import Manifest, Node, read_manifest  # noqa: E402  (after the path set-up above)

PY = sys.executable
SECTIONS = ("builds", "compute", "corpus", "stress", "memory", "links", "resilience", "camera", "toolchain", "soak",
            "user_model", "distribute")
#: What `make bench` runs without --only: all but the soak (10,000 samples, ~20 min: `--only soak`).
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "soak")
PRESETS = ("fashion", "har")
SCHEMES = ("vanilla", "dfg", "resilinet", "resilinet_plus")
SETTINGS = ("No failure", "Normal", "Poor", "Hazardous")
MLPERF = ("ic_resnet8_int8", "kws_dscnn_int8", "ad_autoencoder_int8")
KERNELS = REPO / "firmware" / "cmsis_nn"

# ---- reference figures (docs: /work/shared/docs/toolchain-facts.md and cmsis-nn.md) ------------------------
#: TFLM + CMSIS-NN on QEMU mps2-an386, instructions per inference, counted the same way (toolchain-facts.md).
TFLM_INSTRUCTIONS = {"ic_resnet8_int8": 29_863_986, "kws_dscnn_int8": 7_700_571, "ad_autoencoder_int8": 583_398}
#: TFLM reference kernels (no CMSIS-NN), same measurement.
TFLM_REF_INSTRUCTIONS = {"ic_resnet8_int8": 824_062_446, "kws_dscnn_int8": 198_639_077,
                         "ad_autoencoder_int8": 1_952_816}
#: TFLM arena: smallest that works (toolchain-facts.md) and the total quoted in issue 7.
TFLM_ARENA_MIN = {"ic_resnet8_int8": 55_000, "kws_dscnn_int8": 22_824, "ad_autoencoder_int8": 3_012}
TFLM_ARENA_TOTAL = {"ic_resnet8_int8": 55_984, "kws_dscnn_int8": 24_272, "ad_autoencoder_int8": 3_984}
#: One SMLAD = two 16x16 MACs per cycle on a Cortex-M4: the bound is 0.5 cycles per MAC.
BOUND_PER_MAC = 0.5
BAUDS = (115_200, 921_600)
BITS_PER_BYTE = 10  # start + 8 data + stop


# ================================================================================================ helpers
def log(msg: str) -> None:
    """One progress line with the time of day (the run takes minutes; the log shows where it is)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run_cmd(cmd: list[str], log_path: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int, float]:
    """Run ``cmd`` (output to ``log_path``); return (exit code, wall seconds)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    e = dict(os.environ)
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    e.update(env or {})
    t0 = time.perf_counter()
    with open(log_path, "w") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        try:
            p = subprocess.run(list(map(str, cmd)), cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=e,
                               timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n[bench] timed out after {timeout} s\n")
            rc = -9
    return rc, time.perf_counter() - t0


def tail(path: Path, n: int = 6) -> str:
    """The last ``n`` non-empty lines of a log, joined: enough of a failure to put in the report."""
    try:
        return " | ".join(l.strip() for l in path.read_text(errors="replace").splitlines()[-n:] if l.strip())
    except OSError:
        return ""


def first_line(cmd: list[str]) -> str | None:
    """First line of a command's output (tool versions), or None when the tool is missing."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0].strip() if text else None
    except (OSError, subprocess.SubprocessError):
        return None


def rel(p: Path | str) -> str:
    """``p`` relative to the repository when inside it: the report names paths the reader can open."""
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)



# ================================================================================================ machine
def machine_info() -> dict[str, Any]:
    """CPU, load, tool versions and git state: what the wall times of this run depend on."""
    import importlib.metadata as md

    def ver(*names: str) -> str | None:
        for n in names:
            try:
                return f"{n} {md.version(n)}"
            except md.PackageNotFoundError:
                continue
        return None

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date_utc": utc_stamp(),
        "nproc": os.cpu_count(), "cpu_model": cpu, "platform": platform.platform(),
        "load_average_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "tensorflow": ver("tensorflow-cpu", "tensorflow"), "tflite_micro": ver("tflite-micro"),
        "ai_edge_litert": ver("ai-edge-litert"), "numpy": ver("numpy"),
        "arm_gcc": first_line(["arm-none-eabi-gcc", "--version"]), "host_gcc": first_line(["gcc", "--version"]),
        "qemu": first_line(["qemu-system-arm", "--version"]),
        **git_state(),
    }


def utc_stamp() -> str:
    """Now, to the minute, as BENCHMARKS.md writes dates."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def git_state() -> dict[str, Any]:
    """The commit measured and how many paths differed from it (work in progress is measured as it is on disk)."""
    git = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True,
                               text=True).stdout.strip().splitlines()
    except OSError:
        dirty = []
    # the bench's own outputs, rewritten after every section, are not work in progress
    dirty = [l for l in dirty if not l.endswith(("BENCHMARKS.json", "BENCHMARKS.md"))]
    return {"git_commit": git, "git_uncommitted_paths": len(dirty)}


def section_provenance(command: str) -> dict[str, Any]:
    """When, at which commit and by which command a section was measured: with ``--only``, sections of one
    BENCHMARKS.md can come from different runs, and the file must say so."""
    return {"date_utc": utc_stamp(), "command": command,
            **git_state()}


# ================================================================================================ builds on disk
def bench_build_dir(preset: str, scheme: str) -> Path:
    """Where the bench keeps the build of a preset and scheme (``build/bench-fashion``, ``build/bench-har-dfg``)."""
    suffix = "" if scheme == "resilinet" else f"-{scheme}"
    return REPO / "build" / f"bench-{preset}{suffix}"


def build_dirs(R: dict[str, Any]) -> dict[str, Path]:
    """The build directories of this run, or those a previous run left (for --only)."""
    dirs = {k: REPO / v for k, v in R.get("builds", {}).get("dirs", {}).items()}
    for preset in PRESETS:
        for scheme in SCHEMES:
            p = bench_build_dir(preset, scheme)
            if f"{preset}/{scheme}" not in dirs and has_manifest(p):
                dirs[f"{preset}/{scheme}"] = p
    return {k: v for k, v in dirs.items() if has_manifest(v)}


def resilinet_builds(R: dict[str, Any]) -> Iterator[tuple[str, Path, Manifest]]:
    """(preset, build directory, manifest) of every ResiliNet build of this run: the deployments measured
    per node (compute, memory, links)."""
    for key, d in build_dirs(R).items():
        preset, scheme = key.split("/")
        if scheme == "resilinet":
            yield preset, d, load_manifest(d)


# ---- the build manifest: every read of manifest.json goes through load_manifest (has_manifest only checks that
# ---- the file exists), so a typed reader can replace it in one place
def has_manifest(build: Path) -> bool:
    """Whether ``build`` holds a host.build manifest (a build that got at least that far)."""
    return (build / "manifest.json").exists()


def load_manifest(build: Path) -> Manifest:
    """The ``manifest.json`` of a host.build output directory, through the one validating reader."""
    return read_manifest(build)


def has_firmware(build: Path) -> bool:
    """Whether host.build got as far as the firmware stage (what the harness and the memory section need)."""
    return has_manifest(build) and load_manifest(build).stages.firmware is not None
