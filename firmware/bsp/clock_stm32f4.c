/*
 * System clock of the STM32F4 from the generated board_clock.h
 * (boards/<board>/board.toml [clock]): PLL, voltage scale, over-drive, flash wait
 * states, AHB/APB prescalers.  Registers and the over-drive sequence: RM0390 (F446),
 * chapters PWR ("Entering Over-drive mode"), RCC and embedded flash (FLASH_ACR).
 *
 * Every ready flag is polled at most BOARD_CLOCK_READY_LOOPS times.  If one never
 * comes (a broken oscillator; QEMU's netduinoplus2, whose RCC reads 0), the core
 * goes back to the HSI it started on with every prescaler at /1, and
 * board_clock_init() reports that clock instead of the tree's.
 */
#include "board.h"
#include "board_internal.h"

#if defined(BOARD_CLOCK_STM32F4)

#include "clock_stm32.h"
#include "cortex_m.h"

#define RCC_CR REG32(0x40023800u)
#define RCC_PLLCFGR REG32(0x40023804u)
#define RCC_CFGR REG32(0x40023808u)
#define RCC_APB1ENR REG32(0x40023840u)
#define PWR_CR REG32(0x40007000u)
#define PWR_CSR REG32(0x40007004u)
#define FLASH_ACR REG32(0x40023C00u)

#define CR_HSIRDY (1u << 1)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define PLLCFGR_SRC_HSE (1u << 22)
#define CFGR_SW_MASK 0x3u
#define CFGR_SW_PLL 0x2u
#define CFGR_SWS_MASK (0x3u << 2)
#define CFGR_SWS_PLL (0x2u << 2)
#define CFGR_PRESCALERS ((0xFu << 4) | (0x7u << 10) | (0x7u << 13)) /* HPRE, PPRE1, PPRE2 */
#define APB1ENR_PWREN (1u << 28)
#define PWR_CR_VOS_MASK (0x3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)
#define ACR_LATENCY_MASK 0xFu
#define ACR_CACHES ((1u << 8) | (1u << 9) | (1u << 10)) /* PRFTEN, ICEN, DCEN */

/* PWR_CR.VOS: scale 1 = 0b11, 2 = 0b10, 3 = 0b01 */
#define VOS_BITS ((4u - BOARD_CLOCK_VOLTAGE_SCALE) << 14)

#if defined(BOARD_CLOCK_SOURCE_HSE)
#define PLL_SOURCE PLLCFGR_SRC_HSE
#else
#define PLL_SOURCE 0u
#endif

static board_clocks_t fall_back(void)
{
    /* SW = HSI and every prescaler /1: the reset clock tree.  The wait states
     * stay as set (more than 16 MHz needs, which is allowed). */
    RCC_CFGR = 0u;
    (void)clock_wait(&RCC_CFGR, CFGR_SWS_MASK, 0u);
    board_clocks_t c = {BOARD_CLOCK_RESET_HZ, BOARD_CLOCK_RESET_HZ};
    return c;
}

/* The oscillator that feeds the PLL, running. */
static int source_on(void)
{
#if defined(BOARD_CLOCK_SOURCE_HSE)
    RCC_CR |= BOARD_CLOCK_HSE_BYPASS ? CR_HSEBYP : 0u; /* before HSEON (RCC_CR: HSEBYP) */
    RCC_CR |= CR_HSEON;
    return clock_wait(&RCC_CR, CR_HSERDY, CR_HSERDY);
#else
    return clock_wait(&RCC_CR, CR_HSIRDY, CR_HSIRDY);
#endif
}

board_clocks_t board_clock_init(void)
{
    RCC_APB1ENR |= APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    PWR_CR = (PWR_CR & ~PWR_CR_VOS_MASK) | VOS_BITS; /* takes effect when the PLL is on */
    if (!source_on()) {
        return fall_back();
    }
    RCC_CR &= ~CR_PLLON;
    RCC_PLLCFGR = BOARD_CLOCK_PLL_M | (BOARD_CLOCK_PLL_N << 6) | ((BOARD_CLOCK_PLL_P / 2u - 1u) << 16) |
                  PLL_SOURCE | (BOARD_CLOCK_PLL_Q << 24) | (BOARD_CLOCK_PLL_R << 28);
    RCC_CR |= CR_PLLON;
    if (!clock_wait(&RCC_CR, CR_PLLRDY, CR_PLLRDY)) {
        return fall_back();
    }
#if BOARD_CLOCK_OVERDRIVE
    /* RM0390 "Entering Over-drive mode": after the PLL is on, before the switch */
    PWR_CR |= PWR_CR_ODEN;
    if (!clock_wait(&PWR_CSR, PWR_CSR_ODRDY, PWR_CSR_ODRDY)) {
        return fall_back();
    }
    PWR_CR |= PWR_CR_ODSWEN;
    if (!clock_wait(&PWR_CSR, PWR_CSR_ODSWRDY, PWR_CSR_ODSWRDY)) {
        return fall_back();
    }
#endif
    /* Wait states before the faster clock; the read-back makes sure they hold. */
    FLASH_ACR = BOARD_CLOCK_FLASH_WS | ACR_CACHES;
    if (!clock_wait(&FLASH_ACR, ACR_LATENCY_MASK, BOARD_CLOCK_FLASH_WS)) {
        return fall_back();
    }
    RCC_CFGR = (RCC_CFGR & ~CFGR_PRESCALERS) | (BOARD_CLOCK_HPRE << 4) | (BOARD_CLOCK_PPRE1 << 10) |
               (BOARD_CLOCK_PPRE2 << 13);
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL;
    if (!clock_wait(&RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL)) {
        return fall_back();
    }
    board_clocks_t c = {BOARD_CLOCK_CPU_HZ, BOARD_CLOCK_UART_HZ};
    return c;
}

#endif
