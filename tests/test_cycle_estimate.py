"""The cycle-estimate plugin (codegen/qemu_plugin/cortex_m4_cycles.c via codegen.cycles) on QEMU mps2-an386.

Hand-written Thumb-2 sequences with known Cortex-M4 TRM timings (docs/cycle-estimate.md), each run between two
marker calls; the plugin's exact cycle counts are asserted. Plus: on a model, the plugin's instruction count
equals the count QEMU's ``-icount`` gives for the same stretch of code.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from boards import load_board
from codegen.cycles import (CycleEstimateError, CycleWindow, FlashSetting, config_for, plugin_args, read_windows,
                            run_semihosted, symbol_addresses)
from codegen.emit import build_module, write_module
from codegen.footprint import CORTEX_M4_FLAGS
from codegen.semihost import LINKER_LD, STARTUP_C
from codegen.verify import kernels_dir, random_samples
from host.paths import shared_models_dir

#: name -> (instructions, expected cycles at 0 wait states). Registers at entry: r1, r3, r5, r7 = four words in
#: RAM (holding 0), r10 = a 16-byte-aligned table of words in flash, r9 = 0, r2 = 3.
SEQUENCES: dict[str, tuple[list[str], int]] = {
    "empty": ([], 0),
    # TRM 3.3.2: neighbouring single loads pipeline: N loads take N + 1 cycles ...
    "ldr x4 pipelined": (["ldr r0, [r1]", "ldr r2, [r3]", "ldr r4, [r5]", "ldr r6, [r7]"], 5),
    # ... but 2 cycles each when something else separates them (+ 1 per ADD).
    "ldr x4 separated": (["ldr r0, [r1]", "add r8, #1", "ldr r2, [r3]", "add r8, #1",
                          "ldr r4, [r5]", "add r8, #1", "ldr r6, [r7]", "add r8, #1"], 12),
    # ... and not when the second one's address is the first one's result.
    "ldr dependent": (["ldr r0, [r1]", "ldr r2, [r1, r0]"], 4),
    # Nothing pipelines after a store with a register offset; after one with an immediate offset it does.
    "str reg, ldr": (["str r0, [r1, r9]", "ldr r2, [r3]"], 4),
    "str imm, ldr": (["str r0, [r1, #0]", "ldr r2, [r3]"], 3),
    # An address the previous instruction computed: + 1 (no forwarding path); an unrelated result: no stall.
    "add, ldr [result]": (["adds r1, #0", "ldr r0, [r1]"], 4),
    "add, ldr [other]": (["adds r2, #1", "ldr r0, [r1]"], 3),
    "add.w, ldm [result]": (["add.w r1, r1, #0", "ldmia r1, {r4-r7}"], 7),
    "ldm 4 regs": (["ldmia r1, {r4-r7}"], 5),          # 1 + N
    "ldm.w 4 regs": (["ldmia.w r1, {r4-r7}"], 5),
    "push, pop 4": (["push {r4-r7}", "pop {r4-r7}"], 10),
    "ldrd": (["ldrd r4, r6, [r1]"], 3),                # 1 + N, N = 2
    # 4 iterations: MOVS 1, SUBS 4 x 1, BNE taken 3 x (1 + P = 3), not taken 1.
    "loop x4": (["movs r0, #4", "1: subs r0, r0, #1", "bne 1b"], 15),
    "sdiv": (["sdiv r0, r2, r2"], 12),                 # 2..12 in the TRM: the worst case, see the doc
    "udiv": (["udiv r0, r2, r2"], 12),
    "smlad x4": (["smlad r0, r2, r2, r0"] * 4, 4),     # DSP MAC: 1 each
    "mul, mla, umull, smlal": (["mul r0, r2, r2", "mla r0, r2, r2, r0", "umull r0, r4, r2, r2",
                                "smlal r0, r4, r2, r2"], 4),
    "it block": (["cmp r0, r0", "ite eq", "addeq r0, #1", "addne r0, #2"], 4),
    "vfp": (["vldr s0, [r1]", "vadd.f32 s1, s0, s0", "vmla.f32 s1, s0, s0", "vdiv.f32 s2, s1, s0",
             "vpush {s0-s3}", "vpop {s0-s3}"], 2 + 1 + 3 + 14 + 5 + 5),
    # Five constant loads from flash (16-byte lines 0 and 1 of the table): 2 + 4 x 1 cycles, 5 flash reads,
    # 2 misses of the ART data-cache model.
    "flash ldr x5": (["ldr r0, [r10]", "ldr r2, [r10, #4]", "ldr r4, [r10, #8]", "ldr r6, [r10, #12]",
                      "ldr r0, [r10, #16]"], 6),
}
#: The marker calls around every sequence: the first instruction counted is ``cyc_begin``'s BX LR (1 + P), the
#: last the BL to ``cyc_end`` (1 + P).
OVERHEAD_INSNS, OVERHEAD_CYCLES = 2, 6


def _asm() -> str:
    lines = [".syntax unified", ".thumb", ".text", ".thumb_func", "cyc_begin:", "bx lr", ".thumb_func", "cyc_end:",
             "bx lr", ".global run_sequences", ".thumb_func", "run_sequences:", "push {r4-r11, lr}"]
    for k, (body, _) in enumerate(SEQUENCES.values()):
        lines += ["ldr r1, =ram_words", "ldr r3, =ram_words+4", "ldr r5, =ram_words+8", "ldr r7, =ram_words+12",
                  "ldr r10, =flash_words", "mov r9, #0", "mov r2, #3", "movs r0, #0", "bl cyc_begin", *body,
                  "bl cyc_end", f"b seq_{k}_done", ".ltorg", f"seq_{k}_done:"]
    lines += ["pop {r4-r11, pc}", ".ltorg", ".section .rodata", ".align 4", "flash_words: .word 1,2,3,4,5,6,7,8",
              ".bss", ".align 4", "ram_words: .space 64"]
    return "\n".join(lines) + "\n"


def _link(work: Path, sources: list[Path], extra: tuple[str, ...] = ()) -> Path:
    (work / "startup.c").write_text(STARTUP_C)
    (work / "link.ld").write_text(LINKER_LD)
    elf = work / "image.elf"
    res = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-O2", "-fno-ipa-icf", *extra, "-nostartfiles",
                          "--specs=nano.specs", "--specs=nosys.specs", "-T", str(work / "link.ld"),
                          str(work / "startup.c"), *map(str, sources), "-o", str(elf)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return elf


@pytest.fixture(scope="module")
def windows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CycleWindow]:
    work = tmp_path_factory.mktemp("cycles")
    (work / "seq.S").write_text(_asm())
    (work / "main.c").write_text("void run_sequences(void);\nint main(void) { run_sequences(); return 0; }\n")
    elf = _link(work, [work / "main.c", work / "seq.S"])
    found = run_semihosted(elf, "cyc_begin", "cyc_end", work)
    assert len(found) == len(SEQUENCES)
    return dict(zip(SEQUENCES, found))


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_sequence_cycles(windows: dict[str, CycleWindow], name: str) -> None:
    body, want = SEQUENCES[name]
    w = windows[name]
    assert w.instructions - OVERHEAD_INSNS == len([b for b in body if b.split(":")[-1].strip()]) + (
        3 * 2 if name == "loop x4" else 0)  # the loop runs SUBS/BNE 4 times, not once
    assert w.cycles - OVERHEAD_CYCLES == want


def test_breakdown_and_flash_wait_states(windows: dict[str, CycleWindow]) -> None:
    loop = windows["loop x4"]
    assert loop.taken - 2 == 3 and loop.cost_of("branch").count - 2 == 4
    assert windows["ldr x4 pipelined"].pipelined == 3 and windows["ldr x4 separated"].pipelined == 0
    assert windows["add, ldr [result]"].agu_stalls == 1 and windows["add, ldr [other]"].agu_stalls == 0
    assert windows["sdiv"].cost_of("div").cycles == 12 and windows["smlad x4"].cost_of("dsp").count == 4
    flash = windows["flash ldr x5"]
    assert (flash.flash_reads, flash.flash_misses) == (5, 2)
    assert flash.cycles_at(FlashSetting("5 WS", 5)) == flash.cycles + 25
    assert flash.cycles_at(FlashSetting("5 WS + ART", 5, art=True)) == flash.cycles + 10
    # RAM loads pay no wait states.
    ram = windows["ldr x4 pipelined"]
    assert ram.flash_reads == 0 and ram.cycles_at(FlashSetting("5 WS", 5)) == ram.cycles


_MARKS_C = r"""
#include <stdint.h>
#include <string.h>
void sh_puts(const char *s);
/* Two markers of identical shape: the timer read is their second instruction, so the interval between the two
 * reads is exactly as long as the plugin's window from mark_a to mark_b. */
__attribute__((naked, noinline)) uint32_t mark_a(void)
{
    __asm volatile("ldr r0, =0x40000004\n ldr r0, [r0]\n bx lr\n .ltorg\n");
}
__attribute__((naked, noinline)) uint32_t mark_b(void)
{
    __asm volatile("ldr r1, =0x40000004\n ldr r0, [r1]\n bx lr\n .ltorg\n");
}
"""


def test_instruction_count_equals_icount(tmp_path: Path) -> None:
    """AD autoencoder: instructions in the plugin's window == QEMU -icount (shift 7, exact) over the same code."""
    root = shared_models_dir()
    assert root is not None, "the shared models directory (../shared/models) is missing"
    model = root / "mlperf_tiny" / "ad_autoencoder_int8.tflite"
    info = write_module(build_module(model, name="ad"), tmp_path)
    x = random_samples(info, 1, 0)[0][0].reshape(-1)
    main = _MARKS_C + f"""
#include "ad.h"
static const int8_t in0[{x.size}] = {{{",".join(map(str, x.tolist()))}}};
static int8_t out0[{info.outputs[0].nbytes}];
static void put(uint32_t v)
{{
    char b[16]; int i = 15; b[i] = 0;
    do {{ b[--i] = (char)('0' + v % 10u); v /= 10u; }} while (v);
    sh_puts(b + i); sh_puts("\\n");
}}
int main(void)
{{
    const int8_t *const in[] = {{in0}};
    int8_t *const out[] = {{out0}};
    volatile uint32_t *t = (volatile uint32_t *)0x40000000u;
    t[0] = 0u; t[2] = 0xFFFFFFFFu; t[1] = 0xFFFFFFFFu; t[0] = 1u;
    const uint32_t a = mark_a();
    const int32_t rc = ad_invoke(in, out);
    const uint32_t b = mark_b();
    sh_puts("TICKS "); put(a - b);
    return rc;
}}
"""
    (tmp_path / "main.c").write_text(main)
    kdir = kernels_dir()
    elf = _link(tmp_path, [tmp_path / "main.c", info.c_path, *sorted(kdir.glob("*.c"))],
                ("-std=gnu11", f"-I{kdir}", f"-I{tmp_path}"))
    # Both counters in one run: -icount shift=7 (128 ns per instruction; the 25 MHz timer: 3.2 ticks each).
    out = tmp_path / "ad.cycles"
    cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-icount", "shift=7",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
           *plugin_args(config_for(elf, "mark_a", "mark_b", load_board("qemu_an386")), out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    text = run.stdout + run.stderr  # semihosting output
    ticks = int(next(line.split()[1] for line in text.splitlines() if line.startswith("TICKS")))
    icount_insns = round(ticks * 40 / 128)
    (window,) = read_windows(out)
    assert window.instructions == icount_insns
    assert icount_insns > 264_192 // 2  # the model ran inside the window: at least its MACs / 2 (2 per SMLAD)
    assert window.cycles > window.instructions


def test_missing_marker_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    elf = _link(tmp_path, [tmp_path / "main.c"])
    with pytest.raises(CycleEstimateError, match="no symbol nowhere"):
        symbol_addresses(elf, ["main", "nowhere"])


def test_verify_qemu_reports_estimated_cycles() -> None:
    """``codegen verify --target qemu`` prints the estimate; its window matches the SysTick instruction count."""
    import re
    import sys

    root = shared_models_dir()
    assert root is not None, "the shared models directory (../shared/models) is missing"
    model = root / "mlperf_tiny" / "ad_autoencoder_int8.tflite"
    proc = subprocess.run([sys.executable, "-m", "codegen", "verify", str(model), "--target", "qemu", "--samples", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    insns = int(re.search(r"([\d,]+) instructions per inference", proc.stdout).group(1).replace(",", ""))
    m = re.search(r"estimated cycles \(Cortex-M4 TRM, 0 wait states\): ([\d,]+); F446RE 5 WS: ([\d,]+); "
                  r"F446RE 5 WS \+ ART: ([\d,]+)", proc.stdout)
    assert m, proc.stdout
    c0, c5, c5_art = (int(g.replace(",", "")) for g in m.groups())
    # Loads cost 2, taken branches 3: above one cycle per instruction; wait states only add, the ART model less.
    assert insns < c0 < c5_art < c5
