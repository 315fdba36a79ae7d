"""A bare-metal semihosting image for QEMU's mps2-an386 (Cortex-M4): startup code and linker script.

Used where a generated module runs alone on the emulated core and reports over semihosting -- the DSP
smoke test (tests/codegen_qemu_smoke.py) and the instruction counts of bench/kernel_instructions.py --
without the node runtime or a board's UART. ``main()`` returning 0 ends QEMU with status 0, else 1.
"""

STARTUP_C = r"""
#include <stdint.h>
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);
static int semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
void sh_puts(const char *s) { semihost(0x04 /* SYS_WRITE0 */, (void *)s); }
static void sh_exit(int ok)
{
    /* SYS_EXIT: ApplicationExit ends QEMU with status 0, RunTimeErrorUnknown with 1. */
    semihost(0x18, (void *)(ok ? 0x20026 : 0x20024));
    for (;;) {}
}
void Reset_Handler(void)
{
    uint32_t *s = &_sidata, *d = &_sdata;
    while (d < &_edata) *d++ = *s++;
    for (d = &_sbss; d < &_ebss;) *d++ = 0;
    *(volatile uint32_t *)0xE000ED88 |= (0xFu << 20); /* CPACR: enable the FPU */
    __asm__ volatile("dsb\n isb");
    sh_exit(main() == 0);
}
void Fault_Handler(void) { sh_puts("fault\n"); sh_exit(0); }
__attribute__((section(".vectors"), used)) const void *const vectors[16] = {
    &_estack, (const void *)Reset_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler,
    (const void *)Fault_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler};
"""

LINKER_LD = """
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 4M }
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) } > FLASH
  _sidata = LOADADDR(.data);
  .data : { _sdata = .; *(.data*) _edata = .; } > RAM AT > FLASH
  .bss (NOLOAD) : { _sbss = .; *(.bss*) *(COMMON) _ebss = .; } > RAM
}
"""
