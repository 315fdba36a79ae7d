"""Flash and RAM of a generated module when cross-compiled for a Cortex-M core.

Compiles the module and every kernel to object files with ``arm-none-eabi-gcc -c`` (no linking, so no
startup code or libc is counted) and sums their sections: flash = .text + .rodata (+ .data's initial
values), RAM = .bss + .data.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .emit import ModuleInfo
from .verify import kernels_dir

#: Cortex-M4 with FPU, the project's reference core (netduinoplus2 / mps2-an386 in QEMU).
CORTEX_M4_FLAGS: tuple[str, ...] = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")


@dataclass(frozen=True)
class SectionSizes:
    text: int = 0
    rodata: int = 0
    data: int = 0
    bss: int = 0

    @property
    def flash(self) -> int:
        return self.text + self.rodata + self.data

    @property
    def ram(self) -> int:
        return self.bss + self.data

    def __add__(self, other: "SectionSizes") -> "SectionSizes":
        return SectionSizes(self.text + other.text, self.rodata + other.rodata, self.data + other.data,
                            self.bss + other.bss)


@dataclass
class Footprint:
    module: SectionSizes
    kernels: SectionSizes
    #: size of the ``<name>_arena`` symbol in the module object (None if the module has no arena)
    arena_symbol_bytes: int | None
    objects: list[Path] = field(default_factory=list)

    @property
    def total(self) -> SectionSizes:
        return self.module + self.kernels


def section_sizes(obj: Path, tool: str = "arm-none-eabi-size") -> SectionSizes:
    """Sum an object's sections by kind from ``size -A`` (SysV format keeps .rodata apart from .text)."""
    out = subprocess.run([tool, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in out.splitlines():
        m = re.match(r"^\.(text|rodata|data|bss)\S*\s+(\d+)", line.strip())
        if m:
            sizes[m.group(1)] += int(m.group(2))
    return SectionSizes(**sizes)


def symbol_size(obj: Path, symbol: str, tool: str = "arm-none-eabi-nm") -> int | None:
    out = subprocess.run([tool, "-S", str(obj)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == symbol:
            return int(parts[1], 16)
    return None


def cross_compile(module: ModuleInfo, work_dir: Path | None = None, cc: str = "arm-none-eabi-gcc",
                  cpu_flags: tuple[str, ...] = CORTEX_M4_FLAGS, opt: str = "-O2",
                  extra_flags: tuple[str, ...] = ()) -> Footprint:
    """Compile ``module`` and the kernels for a Cortex-M core; return their section sizes."""
    with tempfile.TemporaryDirectory(prefix="codegen-cross-") as tmp:
        out = Path(work_dir) if work_dir is not None else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        flags = [*cpu_flags, opt, "-std=c99", "-Wall", "-Wextra", *extra_flags,
                 "-I", str(kernels_dir()), "-I", str(module.c_path.parent)]
        sources = [module.c_path, *sorted(kernels_dir().glob("*.c"))]
        objects = [out / (s.stem + ".o") for s in sources]
        procs = [subprocess.Popen([cc, *flags, "-c", str(s), "-o", str(o)], stderr=subprocess.PIPE, text=True)
                 for s, o in zip(sources, objects)]
        for s, p in zip(sources, procs):
            _, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"{cc} failed on {s.name}:\n{err}")
        module_sizes = section_sizes(objects[0])
        kernel_sizes = SectionSizes()
        for o in objects[1:]:
            kernel_sizes = kernel_sizes + section_sizes(o)
        return Footprint(module=module_sizes, kernels=kernel_sizes,
                         arena_symbol_bytes=symbol_size(objects[0], f"{module.name}_arena"),
                         objects=objects if work_dir is not None else [])
