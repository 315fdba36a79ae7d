/*
 * Core registers of the Cortex-M3/M4/M7 that the board layer uses (ARMv7-M
 * Architecture Reference Manual, B3).  A few plain macros instead of CMSIS-Core
 * so that the firmware needs no vendor package.
 */
#ifndef RESILINET_CORTEX_M_H
#define RESILINET_CORTEX_M_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* System control block */
#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_VTOR REG32(0xE000ED08u)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_SCR REG32(0xE000ED10u)
#define SCB_CCR REG32(0xE000ED14u)
#define SCB_SHPR3 REG32(0xE000ED20u)
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_ICSR_PENDSTCLR (1u << 25)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_AIRCR_SYSRESET (0x05FA0004u)

/* SysTick */
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* 1 = processor clock */
#define SYST_CSR_COUNTFLAG (1u << 16)

/* NVIC */
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * (n))
#define NVIC_ISPR(n) REG32(0xE000E200u + 4u * (n))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * (n))

/* Debug: DWT cycle counter */
#define DEMCR REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_LAR REG32(0xE0001FB0u) /* Cortex-M7: software lock */
#define DWT_CTRL_CYCCNTENA (1u << 0)

static inline void nvic_enable_irq(uint32_t irq)
{
    NVIC_ICPR(irq >> 5) = 1u << (irq & 31u);
    NVIC_ISER(irq >> 5) = 1u << (irq & 31u);
}

static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void cpu_wfi(void) { __asm volatile("wfi" ::: "memory"); }
static inline void cpu_dsb(void) { __asm volatile("dsb 0xF" ::: "memory"); }
static inline void cpu_isb(void) { __asm volatile("isb 0xF" ::: "memory"); }

static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask)
{
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

#endif /* RESILINET_CORTEX_M_H */
