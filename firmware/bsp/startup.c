/*
 * Startup for every Cortex-M board: vector table, reset handler (FPU on, .data
 * copied from flash, .bss zeroed), default handlers.  The table's size and the
 * UART's interrupt line come from board_config.h; the memory symbols come from
 * firmware/bsp/sections.ld.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "cortex_m.h"

extern uint32_t __stack_top[];
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);
void board_uart_irq_handler(void);

/* Core exceptions that an application may override. */
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*vector_t)(void);

#define VECTOR_COUNT (16u + BOARD_NUM_IRQS)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
__attribute__((section(".isr_vector"), used)) const vector_t vector_table[VECTOR_COUNT] = {
    [0] = (vector_t)(uintptr_t)__stack_top,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    [11] = SVC_Handler,
    [12] = DebugMon_Handler,
    [14] = PendSV_Handler,
    [15] = SysTick_Handler,
    [16 ... VECTOR_COUNT - 1u] = Default_Handler,
    [16 + BOARD_UART_IRQ] = board_uart_irq_handler,
};
#pragma GCC diagnostic pop

void Reset_Handler(void)
{
    /* FPU first: with -mfloat-abi=hard any later code may use it. */
#if defined(__ARM_FP)
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11: full access */
    cpu_dsb();
    cpu_isb();
#endif
    SCB_VTOR = (uint32_t)(uintptr_t)vector_table;

    uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end;) {
        *dst++ = 0u;
    }
    cpu_dsb();
    cpu_isb();

    (void)main();
    board_fatal(board_fault_node_id, 0xFA00u, "main returned", 0u);
}

/* An interrupt or exception nobody expected: report which (IPSR) and stop. */
void Default_Handler(void)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    board_fatal(board_fault_node_id, 0xFA01u, "unexpected exception", ipsr & 0x1FFu);
}

/* Fault: report the faulting PC from the stacked frame and stop. */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile(
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "b hardfault_report\n");
}

__attribute__((used, noreturn)) void hardfault_report(const uint32_t *frame)
{
    board_fatal(board_fault_node_id, 0xFA02u, "hard fault at pc", frame[6]);
    for (;;) {
    }
}
