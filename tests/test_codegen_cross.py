"""Cortex-M builds: the generated modules and our CMSIS-NN kernels cross-compile, with the planned arena."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from codegen import generate_module
from codegen.footprint import CORTEX_M4_FLAGS, cross_compile
from codegen.verify import kernels_dir

from codegen_support import MLPERF_MODELS, mlperf_model

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")

#: The public CMSIS-NN functions generated code may call (plus resilinet's extension kernels and libc).
PUBLIC_API = {
    "arm_convolve_wrapper_s8", "arm_convolve_wrapper_s8_get_buffer_size",
    "arm_depthwise_conv_wrapper_s8", "arm_depthwise_conv_wrapper_s8_get_buffer_size",
    "arm_fully_connected_s8", "arm_fully_connected_per_channel_s8", "arm_fully_connected_s8_get_buffer_size",
    "arm_avgpool_s8", "arm_avgpool_s8_get_buffer_size", "arm_max_pool_s8",
    "arm_elementwise_add_s8", "arm_elementwise_mul_s8", "arm_softmax_s8",
    "arm_concatenation_s8_x", "arm_concatenation_s8_y", "arm_concatenation_s8_z", "arm_concatenation_s8_w",
    "arm_pad_s8", "arm_reshape_s8",
    "arm_transpose_conv_wrapper_s8", "arm_transpose_conv_s8_get_buffer_size",
    "arm_transpose_conv_s8_get_reverse_conv_buffer_size",
    "arm_transpose_s8",
}
EXTENSIONS = {"resilinet_mean_s8", "resilinet_requantize_s8", "resilinet_activation_s16", "resilinet_requantize_s16",
              "resilinet_requantize_s8_s16", "resilinet_requantize_s16_s8"}
#: resilinet_nn_ext_basic.c (int8 table lookup, SUB, float I/O, STRIDED_SLICE).
EXTENSIONS_BASIC = {"resilinet_lut_s8", "resilinet_elementwise_sub_s8", "resilinet_quantize_f32_s8",
                    "resilinet_dequantize_s8_f32", "resilinet_strided_slice_s8"}
LIBC = {"memcpy", "memset", "memmove"}
#: Our entry points for weight layouts Arm's API lacks (arm_nnfunctions.h); generated code calls them only
#: without -DRESILINET_USE_CMSIS_NN (with it, the CMSIS-NN call on the model's int8 weights).
LAYOUTS = {"resilinet_convolve_wrapper_s8_s16w", "resilinet_depthwise_conv_s8_packed",
           "resilinet_depthwise_conv_s8_packed_get_buffer_size", "resilinet_fully_connected_s8_paired"}


def _undefined_symbols(obj: Path) -> set[str]:
    out = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("model", MLPERF_MODELS)
def test_mlperf_module_cross_compiles_for_cortex_m4(model: str, tmp_path: Path) -> None:
    info = generate_module(mlperf_model(model), tmp_path / "src")
    fp = cross_compile(info, work_dir=tmp_path / "obj", extra_flags=("-Werror", "-pedantic"))
    assert fp.arena_symbol_bytes == info.arena_bytes
    assert fp.module.bss == info.arena_bytes and fp.module.data == 0
    assert fp.module.rodata >= info.weight_bytes + info.quant_param_bytes
    called = _undefined_symbols(fp.objects[0])
    allowed = PUBLIC_API | EXTENSIONS | LIBC | LAYOUTS
    assert called <= allowed, f"non-API calls: {sorted(called - allowed)}"
    # Against Arm's library the same module calls only CMSIS-NN (and extension) functions, on int8 weights.
    arm_obj = tmp_path / "arm.o"
    subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
                    "-DRESILINET_USE_CMSIS_NN", "-I", str(_fake_arm_include(tmp_path)), "-I", str(kernels_dir()),
                    "-I", str(info.c_path.parent), "-c", str(info.c_path), "-o", str(arm_obj)],
                   check=True)
    arm_called = _undefined_symbols(arm_obj)
    assert arm_called <= PUBLIC_API | EXTENSIONS | LIBC, sorted(arm_called - PUBLIC_API - EXTENSIONS - LIBC)
    total = fp.total
    print(f"\n{model} (cortex-m4 -O2): module .text {fp.module.text} .rodata {fp.module.rodata} "
          f".bss {fp.module.bss}; kernels .text {fp.kernels.text} .rodata {fp.kernels.rodata}; "
          f"flash {total.flash} B, RAM {total.ram} B")


def _fake_arm_include(tmp_path: Path) -> Path:
    """Our public headers without their include-order guard: a stand-in for Arm's CMSIS-NN/Include."""
    fake_include = tmp_path / "CMSIS-NN" / "Include"
    fake_include.mkdir(parents=True, exist_ok=True)
    for header in ("arm_nn_types.h", "arm_nn_math_types.h", "arm_nnfunctions.h"):
        text = (kernels_dir() / header).read_text()
        text = re.sub(r"#ifdef RESILINET_USE_CMSIS_NN\n#error[^\n]*\n#endif\n", "", text)  # stand-in for Arm's
        (fake_include / header).write_text(text)
    return fake_include


def _compile_kernels(tmp_path: Path, flags: list[str]) -> list[Path]:
    objs = []
    for src in sorted(kernels_dir().glob("*.c")):
        obj = tmp_path / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-gcc", *flags, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I",
                        str(kernels_dir()), "-c", str(src), "-o", str(obj)], check=True)
        objs.append(obj)
    return objs


def _disassembly(objs: list[Path]) -> str:
    return "".join(subprocess.run(["arm-none-eabi-objdump", "-d", str(o)], capture_output=True, text=True,
                                  check=True).stdout for o in objs)


def test_kernels_use_simd_on_cortex_m4(tmp_path: Path) -> None:
    asm = _disassembly(_compile_kernels(tmp_path, list(CORTEX_M4_FLAGS)))
    for insn in ("smlad", "sxtb16", "sxtab16"):
        assert re.search(rf"\b{insn}\b", asm), f"no {insn} in the Cortex-M4 build"


def test_kernels_build_without_dsp(tmp_path: Path) -> None:
    asm = _disassembly(_compile_kernels(tmp_path, ["-mcpu=cortex-m0plus", "-mthumb"]))
    assert not re.search(r"\bsmlad\b", asm)


def test_switch_to_arm_cmsis_nn(tmp_path: Path) -> None:
    """With -DRESILINET_USE_CMSIS_NN our arm_* kernels compile to nothing (Arm's library provides them) and the
    extension kernels build against the CMSIS-NN headers found first on the include path."""
    fake_include = _fake_arm_include(tmp_path)
    defined: dict[str, set[str]] = {}
    for src in sorted(kernels_dir().glob("*.c")):
        obj = tmp_path / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-O2", "-std=c99", "-DRESILINET_USE_CMSIS_NN",
                        "-I", str(fake_include), "-I", str(kernels_dir()), "-c", str(src), "-o", str(obj)], check=True)
        out = subprocess.run(["arm-none-eabi-nm", "--defined-only", "-g", str(obj)], capture_output=True, text=True,
                             check=True).stdout
        defined[src.name] = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert defined.pop("resilinet_nn_ext.c") == EXTENSIONS
    assert defined.pop("resilinet_nn_ext_basic.c") == EXTENSIONS_BASIC
    assert all(not syms for syms in defined.values()), defined
    # And with the include order wrong, the build stops with a clear message instead of mixing headers.
    bad = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-DRESILINET_USE_CMSIS_NN", "-I", str(kernels_dir()),
                          "-c", str(kernels_dir() / "resilinet_nn_ext.c"), "-o", str(tmp_path / "x.o")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "include path" in bad.stderr
