"""Run generated modules bare-metal on QEMU's Cortex-M4 (mps2-an386) against TFLM's outputs.

A self-contained smoke check of the DSP (SIMD) kernels on an emulated Armv7E-M core: the expected bytes
(every model output and every intermediate activation, from the tflite_micro interpreter) are compiled
into the image, which compares and reports over semihosting. The project's board support and the
``verify --target qemu`` flow are separate; this only needs arm-none-eabi-gcc and qemu-system-arm.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from codegen import generate_module
from codegen.emit import activation_tensors
from codegen.footprint import CORTEX_M4_FLAGS
from codegen.semihost import LINKER_LD, STARTUP_C
from codegen.verify import kernels_dir, random_samples, tflm_reference

def _c_array(name: str, values: object) -> str:
    import numpy as np

    flat = np.asarray(values, dtype=np.int8).reshape(-1)
    return f"static const int8_t {name}[{max(flat.size, 1)}] = {{{','.join(map(str, flat.tolist()))}}};"


def build_and_run(models: list[Path], work: Path, samples: int = 3, seed: int = 5) -> str:
    """Build one image checking every model (all activations probed); return QEMU's output.

    Raises ``AssertionError`` if the image reports a mismatch or QEMU fails.
    """
    work.mkdir(parents=True, exist_ok=True)
    gen = work / "gen"
    lines = ["#include <stdint.h>", "#include <string.h>", "void sh_puts(const char *s);"]
    runs = []
    for path in models:
        name = path.stem
        info = generate_module(path, gen, name=name, probe_tensors=activation_tensors(path))
        data = random_samples(info, samples, seed)
        want = tflm_reference(path, info, data)
        lines.append(f'#include "{name}.h"')
        for s, (xs, ys) in enumerate(zip(data, want)):
            lines += [_c_array(f"{name}_in{s}_{k}", x) for k, x in enumerate(xs)]
            lines += [_c_array(f"{name}_want{s}_{k}", y) for k, y in enumerate(ys)]
        biggest = max(o.nbytes for o in info.outputs)
        lines.append(f"static int8_t {name}_out[{len(info.outputs)}][{biggest}];")
        body = [f"static int run_{name}(void)", "{", "    int bad = 0;"]
        for s in range(samples):
            ins = ", ".join(f"{name}_in{s}_{k}" for k in range(len(info.inputs)))
            outs = ", ".join(f"{name}_out[{k}]" for k in range(len(info.outputs)))
            body += ["    {", f"        const int8_t *const in[] = {{{ins}}};", f"        int8_t *const out[] = {{{outs}}};",
                     f"        if ({name}_invoke(in, out) != 0) return 1;"]
            body += [f"        bad += memcmp(out[{k}], {name}_want{s}_{k}, {o.nbytes}) != 0;"
                     for k, o in enumerate(info.outputs)]
            body.append("    }")
        body += ["    return bad;", "}"]
        lines += body
        runs.append(name)
    lines += ["int main(void)", "{", "    int bad = 0;"]
    for name in runs:
        lines.append(f'    if (run_{name}()) {{ sh_puts("{name}: MISMATCH\\n"); bad++; }} '
                     f'else {{ sh_puts("{name}: ok\\n"); }}')
    lines += ["    return bad;", "}"]
    (work / "main.c").write_text("\n".join(lines) + "\n")
    (work / "startup.c").write_text(STARTUP_C)
    (work / "link.ld").write_text(LINKER_LD)

    elf = work / "smoke.elf"
    cmd = ["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-O2", "-std=c99", "-I", str(kernels_dir()), "-I", str(gen),
           "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-T", str(work / "link.ld"),
           str(work / "startup.c"), str(work / "main.c"), *map(str, sorted(gen.glob("*.c"))),
           *map(str, sorted(kernels_dir().glob("*.c"))), "-o", str(elf)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                          "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "MISMATCH" not in output and output.count(": ok") == len(runs), output
    return output
