/*
 * System clock of the STM32H7 (single core, LDO supply: H742/H743/H750/H753) from
 * the generated board_clock.h (boards/<board>/board.toml [clock]): supply and VOS,
 * PLL1 (input range, VCO, DIVM/N/P), flash wait states and write delay, the core,
 * AHB and four APB prescalers.  Registers: RM0433, chapters PWR (PWR_CR3, PWR_CSR1,
 * PWR_D3CR), RCC and embedded flash (FLASH_ACR, Table 17 for the wait states).
 *
 * Every ready flag is polled at most BOARD_CLOCK_READY_LOOPS times.  If one never
 * comes (no 8 MHz MCO from the ST-LINK when its solder bridge is open, an emulator),
 * the core goes back to the 64 MHz HSI it started on with every prescaler at /1,
 * and board_clock_init() reports that clock instead of the tree's.
 */
#include "board.h"
#include "board_internal.h"

#if defined(BOARD_CLOCK_STM32H7)

#include "clock_stm32.h"
#include "cortex_m.h"

#define RCC_CR REG32(0x58024400u)
#define RCC_CFGR REG32(0x58024410u)
#define RCC_D1CFGR REG32(0x58024418u)
#define RCC_D2CFGR REG32(0x5802441Cu)
#define RCC_D3CFGR REG32(0x58024420u)
#define RCC_PLLCKSELR REG32(0x58024428u)
#define RCC_PLLCFGR REG32(0x5802442Cu)
#define RCC_PLL1DIVR REG32(0x58024430u)
#define PWR_CSR1 REG32(0x58024804u)
#define PWR_CR3 REG32(0x5802480Cu)
#define PWR_D3CR REG32(0x58024818u)
#define FLASH_ACR REG32(0x52002000u)

#define CR_HSIRDY (1u << 2)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLL1ON (1u << 24)
#define CR_PLL1RDY (1u << 25)
#define CFGR_SW_MASK 0x7u
#define CFGR_SW_PLL1 0x3u
#define CFGR_SWS_MASK (0x7u << 3)
#define CFGR_SWS_PLL1 (0x3u << 3)
#define PLLCFGR_PLL1_MASK 0x0007000Fu /* PLL1FRACEN, PLL1VCOSEL, PLL1RGE, DIVP1EN..DIVR1EN */
#define PLLCFGR_DIVP1EN (1u << 16)     /* only the P output (sys_ck) is enabled */
#define CR3_SUPPLY_MASK 0x7u          /* BYPASS, LDOEN, SCUEN */
#define CR3_LDOEN (1u << 1)
#define CSR1_ACTVOSRDY (1u << 13)
#define D3CR_VOS_MASK (0x3u << 14)
#define D3CR_VOSRDY (1u << 13)
#define ACR_MASK 0x3Fu /* LATENCY, WRHIGHFREQ */

/* PWR_D3CR.VOS: VOS1 = 0b11, VOS2 = 0b10, VOS3 = 0b01 */
#define VOS_BITS ((4u - BOARD_CLOCK_VOLTAGE_SCALE) << 14)
#define ACR_VALUE (BOARD_CLOCK_FLASH_WS | (BOARD_CLOCK_FLASH_WRITE_DELAY << 4))

#if defined(BOARD_CLOCK_SOURCE_HSE)
#define PLL_SOURCE 2u
#else
#define PLL_SOURCE 0u /* HSI */
#endif

static board_clocks_t fall_back(void)
{
    /* SW = HSI and every prescaler /1: the reset clock tree (extra wait states are allowed). */
    RCC_CFGR &= ~CFGR_SW_MASK;
    (void)clock_wait(&RCC_CFGR, CFGR_SWS_MASK, 0u);
    RCC_D1CFGR = 0u;
    RCC_D2CFGR = 0u;
    RCC_D3CFGR = 0u;
    board_clocks_t c = {BOARD_CLOCK_RESET_HZ, BOARD_CLOCK_RESET_HZ};
    return c;
}

/* LDO supply, then the voltage scale the tree needs (RM0433 PWR: the supply
 * configuration is written once after reset, then ACTVOSRDY says it holds). */
static int power_on(void)
{
    PWR_CR3 = (PWR_CR3 & ~CR3_SUPPLY_MASK) | CR3_LDOEN;
    if (!clock_wait(&PWR_CSR1, CSR1_ACTVOSRDY, CSR1_ACTVOSRDY)) {
        return 0;
    }
    PWR_D3CR = (PWR_D3CR & ~D3CR_VOS_MASK) | VOS_BITS;
    return clock_wait(&PWR_D3CR, D3CR_VOSRDY, D3CR_VOSRDY);
}

/* The oscillator that feeds PLL1, running. */
static int source_on(void)
{
#if defined(BOARD_CLOCK_SOURCE_HSE)
    RCC_CR |= BOARD_CLOCK_HSE_BYPASS ? CR_HSEBYP : 0u; /* before HSEON */
    RCC_CR |= CR_HSEON;
    return clock_wait(&RCC_CR, CR_HSERDY, CR_HSERDY);
#else
    return clock_wait(&RCC_CR, CR_HSIRDY, CR_HSIRDY);
#endif
}

board_clocks_t board_clock_init(void)
{
    if (!power_on() || !source_on()) {
        return fall_back();
    }
    RCC_CR &= ~CR_PLL1ON;
    if (!clock_wait(&RCC_CR, CR_PLL1RDY, 0u)) { /* PLL1's registers may change only with it stopped */
        return fall_back();
    }
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~0x3F3u) | PLL_SOURCE | (BOARD_CLOCK_PLL_M << 4);
    RCC_PLLCFGR = (RCC_PLLCFGR & ~PLLCFGR_PLL1_MASK) | ((uint32_t)BOARD_CLOCK_PLL_VCO_MEDIUM << 1) |
                  (BOARD_CLOCK_PLL_RANGE << 2) | PLLCFGR_DIVP1EN;
    RCC_PLL1DIVR = (BOARD_CLOCK_PLL_N - 1u) | ((BOARD_CLOCK_PLL_P - 1u) << 9) | ((BOARD_CLOCK_PLL_Q - 1u) << 16) |
                   ((BOARD_CLOCK_PLL_R - 1u) << 24);
    RCC_CR |= CR_PLL1ON;
    if (!clock_wait(&RCC_CR, CR_PLL1RDY, CR_PLL1RDY)) {
        return fall_back();
    }
    /* Wait states before the faster clock; the read-back makes sure they hold. */
    FLASH_ACR = (FLASH_ACR & ~ACR_MASK) | ACR_VALUE;
    if (!clock_wait(&FLASH_ACR, ACR_MASK, ACR_VALUE)) {
        return fall_back();
    }
    RCC_D1CFGR = BOARD_CLOCK_HPRE | (BOARD_CLOCK_PPRE3 << 4) | (BOARD_CLOCK_CPRE << 8);
    RCC_D2CFGR = (BOARD_CLOCK_PPRE1 << 4) | (BOARD_CLOCK_PPRE2 << 8);
    RCC_D3CFGR = BOARD_CLOCK_PPRE4 << 4;
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL1;
    if (!clock_wait(&RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL1)) {
        return fall_back();
    }
    board_clocks_t c = {BOARD_CLOCK_CPU_HZ, BOARD_CLOCK_UART_HZ};
    return c;
}

#endif
