/*
 * System clock of the STM32L4 from the generated board_clock.h
 * (boards/<board>/board.toml [clock]): PLL (R output = SYSCLK), voltage range,
 * flash wait states, AHB/APB prescalers.  Registers: RM0351 (L476), chapters PWR
 * (PWR_CR1.VOS, PWR_SR2.VOSF), RCC and embedded flash (FLASH_ACR).
 *
 * Every ready flag is polled at most BOARD_CLOCK_READY_LOOPS times.  If one never
 * comes, the core goes back to the MSI it started on with every prescaler at /1,
 * and board_clock_init() reports that clock instead of the tree's.
 */
#include "board.h"
#include "board_internal.h"

#if defined(BOARD_CLOCK_STM32L4)

#include "clock_stm32.h"
#include "cortex_m.h"

#define RCC_CR REG32(0x40021000u)
#define RCC_CFGR REG32(0x40021008u)
#define RCC_PLLCFGR REG32(0x4002100Cu)
#define RCC_APB1ENR1 REG32(0x40021058u)
#define PWR_CR1 REG32(0x40007000u)
#define PWR_SR2 REG32(0x40007014u)
#define FLASH_ACR REG32(0x40022000u)

#define CR_MSIRDY (1u << 1)
#define CR_HSION (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define PLLCFGR_REN (1u << 24) /* only the R output (SYSCLK) is enabled */
#define CFGR_SW_MASK 0x3u
#define CFGR_SW_PLL 0x3u
#define CFGR_SWS_MASK (0x3u << 2)
#define CFGR_SWS_PLL (0x3u << 2)
#define CFGR_PRESCALERS ((0xFu << 4) | (0x7u << 8) | (0x7u << 11)) /* HPRE, PPRE1, PPRE2 */
#define APB1ENR1_PWREN (1u << 28)
#define PWR_CR1_VOS_MASK (0x3u << 9)
#define PWR_SR2_VOSF (1u << 10)
#define ACR_LATENCY_MASK 0x7u
#define ACR_CACHES ((1u << 8) | (1u << 9) | (1u << 10)) /* PRFTEN, ICEN, DCEN */

/* PWR_CR1.VOS: range 1 = 0b01, range 2 = 0b10 */
#define VOS_BITS (BOARD_CLOCK_VOLTAGE_SCALE << 9)

#if defined(BOARD_CLOCK_SOURCE_HSE)
#define PLL_SOURCE 3u
#elif defined(BOARD_CLOCK_SOURCE_HSI)
#define PLL_SOURCE 2u
#else
#define PLL_SOURCE 1u /* MSI */
#endif

static board_clocks_t fall_back(void)
{
    /* SW = MSI and every prescaler /1: the reset clock tree (extra wait states are allowed). */
    RCC_CFGR = 0u;
    (void)clock_wait(&RCC_CFGR, CFGR_SWS_MASK, 0u);
    board_clocks_t c = {BOARD_CLOCK_RESET_HZ, BOARD_CLOCK_RESET_HZ};
    return c;
}

/* The oscillator that feeds the PLL, running. */
static int source_on(void)
{
#if defined(BOARD_CLOCK_SOURCE_HSE)
    RCC_CR |= BOARD_CLOCK_HSE_BYPASS ? CR_HSEBYP : 0u; /* before HSEON */
    RCC_CR |= CR_HSEON;
    return clock_wait(&RCC_CR, CR_HSERDY, CR_HSERDY);
#elif defined(BOARD_CLOCK_SOURCE_HSI)
    RCC_CR |= CR_HSION;
    return clock_wait(&RCC_CR, CR_HSIRDY, CR_HSIRDY);
#else
    return clock_wait(&RCC_CR, CR_MSIRDY, CR_MSIRDY);
#endif
}

board_clocks_t board_clock_init(void)
{
    RCC_APB1ENR1 |= APB1ENR1_PWREN;
    (void)RCC_APB1ENR1;
    PWR_CR1 = (PWR_CR1 & ~PWR_CR1_VOS_MASK) | VOS_BITS;
    if (!clock_wait(&PWR_SR2, PWR_SR2_VOSF, 0u) || !source_on()) {
        return fall_back();
    }
    RCC_CR &= ~CR_PLLON;
    if (!clock_wait(&RCC_CR, CR_PLLRDY, 0u)) { /* PLLCFGR may change only with the PLL stopped */
        return fall_back();
    }
    RCC_PLLCFGR = PLL_SOURCE | ((BOARD_CLOCK_PLL_M - 1u) << 4) | (BOARD_CLOCK_PLL_N << 8) |
                  ((BOARD_CLOCK_PLL_P == 17u ? 1u : 0u) << 17) | ((BOARD_CLOCK_PLL_Q / 2u - 1u) << 21) |
                  ((BOARD_CLOCK_PLL_R / 2u - 1u) << 25) | PLLCFGR_REN;
    RCC_CR |= CR_PLLON;
    if (!clock_wait(&RCC_CR, CR_PLLRDY, CR_PLLRDY)) {
        return fall_back();
    }
    /* Wait states before the faster clock; the read-back makes sure they hold. */
    FLASH_ACR = BOARD_CLOCK_FLASH_WS | ACR_CACHES;
    if (!clock_wait(&FLASH_ACR, ACR_LATENCY_MASK, BOARD_CLOCK_FLASH_WS)) {
        return fall_back();
    }
    RCC_CFGR = (RCC_CFGR & ~CFGR_PRESCALERS) | (BOARD_CLOCK_HPRE << 4) | (BOARD_CLOCK_PPRE1 << 8) |
               (BOARD_CLOCK_PPRE2 << 11);
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL;
    if (!clock_wait(&RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL)) {
        return fall_back();
    }
    board_clocks_t c = {BOARD_CLOCK_CPU_HZ, BOARD_CLOCK_UART_HZ};
    return c;
}

#endif
