"""Helpers of the harness tests (tests/test_harness.py, tests/test_harness_options.py): one small build per
test session, shared by both modules, and the QEMUs this test process started."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def quick_build(tmp_path_factory, preset: str, max_train: int, max_test: int, int8_samples: int,
                scheme: str | None = None) -> Path:
    """``host.build`` of ``preset`` (a name or a topology .toml path) trained for one epoch, under ``scheme``
    (None: host.build's default), with a private model cache per test session. Built once per session: every
    test module that asks for the same preset and scheme gets the same directory."""
    name = Path(preset).stem + (f"-{scheme}" if scheme else "")
    out = tmp_path_factory.getbasetemp() / "harness-builds" / f"{name}-{max_train}-{max_test}-{int8_samples}"
    if (out / "manifest.json").exists() and (out / "nodes").is_dir():
        return out
    env = dict(os.environ, RESILINET_CACHE=str(tmp_path_factory.getbasetemp() / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "host.build", "--preset", preset, "--epochs", "1", "--max-train", str(max_train),
           "--max-test", str(max_test), "--int8-samples", str(int8_samples), "--out", str(out), "--quiet"]
    cmd += ["--scheme", scheme] if scheme else []
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


def copy_build(build: Path, dest: Path) -> Path:
    """A copy of ``build`` without its trained model and reports (a test that edits or uploads it)."""
    shutil.copytree(build, dest, ignore=shutil.ignore_patterns("model.keras", "harness", "uploads.json", "qemu"))
    return dest


def qemus() -> set[int]:
    """QEMUs started by this test process (other processes may run their own boards meanwhile)."""
    out = subprocess.run(["pgrep", "-P", str(os.getpid()), "-x", "qemu-system-arm"], capture_output=True,
                         text=True).stdout
    return {int(p) for p in out.split()}


def all_qemus() -> set[int]:
    """Every QEMU running on this machine."""
    out = subprocess.run(["pgrep", "-x", "qemu-system-arm"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}
