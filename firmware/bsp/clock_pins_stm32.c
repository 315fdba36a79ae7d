/*
 * UART pins of the STM32 boards (and the bus clocks of their GPIO port and UART),
 * selected by board_config.h; and the clock of boards without a clock tree.
 *
 * The system clock of a board with a [clock] table in its board.toml is set by
 * clock_<family>.c (clock_stm32f4.c, clock_stm32l4.c, clock_stm32h7.c) from the
 * generated board_clock.h.  A board without one (the emulated boards: the
 * emulator's clock is fixed) runs at BOARD_CPU_HZ with its UART at
 * BOARD_UART_PCLK_HZ (board_config.h): the default board_clock_init() below.
 * Boards without any pin macro (the MPS2 image: its UART is always clocked) get
 * the empty pin set-up.
 *
 * Under QEMU (netduinoplus2) RCC and GPIO are unimplemented devices: these
 * writes are accepted and ignored, so the same code runs on the emulated board.
 */
#include <stdint.h>

#include "board.h"
#include "board_internal.h"
#include "cortex_m.h"

/* GPIO port registers (identical on F4, L4, H7) */
#define GPIO_MODER(p) REG32((p) + 0x00u)
#define GPIO_OSPEEDR(p) REG32((p) + 0x08u)
#define GPIO_PUPDR(p) REG32((p) + 0x0Cu)
#define GPIO_AFRL(p) REG32((p) + 0x20u)
#define GPIO_AFRH(p) REG32((p) + 0x24u)

#if !defined(BOARD_CLOCK_TREE)
board_clocks_t board_clock_init(void)
{
    board_clocks_t c = {BOARD_CPU_HZ, BOARD_UART_PCLK_HZ};
    return c;
}
#endif

#if defined(BOARD_PINS_F4_USART2) || defined(BOARD_PINS_L4_USART2) || defined(BOARD_PINS_H7_USART3)
/* Pin `pin` of port `port` to alternate function `af`, high speed; RX gets a pull-up. */
static void gpio_af(uint32_t port, uint32_t pin, uint32_t af, int pull_up)
{
    GPIO_MODER(port) = (GPIO_MODER(port) & ~(3u << (2u * pin))) | (2u << (2u * pin));
    GPIO_OSPEEDR(port) = (GPIO_OSPEEDR(port) & ~(3u << (2u * pin))) | (2u << (2u * pin));
    GPIO_PUPDR(port) = (GPIO_PUPDR(port) & ~(3u << (2u * pin))) | ((pull_up ? 1u : 0u) << (2u * pin));
    if (pin < 8u) {
        GPIO_AFRL(port) = (GPIO_AFRL(port) & ~(0xFu << (4u * pin))) | (af << (4u * pin));
    } else {
        uint32_t k = pin - 8u;
        GPIO_AFRH(port) = (GPIO_AFRH(port) & ~(0xFu << (4u * k))) | (af << (4u * k));
    }
}
#endif

#if defined(BOARD_PINS_F4_USART2)
/* RM0390 (F446) / RM0090 (F405): RCC at 0x40023800, GPIOA at 0x40020000. */
#define RCC_AHB1ENR REG32(0x40023830u)
#define RCC_APB1ENR REG32(0x40023840u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define GPIOA 0x40020000u

void board_clock_pins_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR; /* the enable takes effect before the first access */
    cpu_dsb();
    gpio_af(GPIOA, 2u, 7u, 0); /* PA2 = USART2_TX */
    gpio_af(GPIOA, 3u, 7u, 1); /* PA3 = USART2_RX */
}

#elif defined(BOARD_PINS_L4_USART2)
/* RM0351 (L476): RCC at 0x40021000, GPIOA at 0x48000000; USART2 clocked from PCLK1
 * (RCC_CCIPR.USART2SEL = 00 after reset). */
#define RCC_AHB2ENR REG32(0x4002104Cu)
#define RCC_APB1ENR1 REG32(0x40021058u)
#define RCC_AHB2ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR1_USART2EN (1u << 17)
#define GPIOA 0x48000000u

void board_clock_pins_init(void)
{
    RCC_AHB2ENR |= RCC_AHB2ENR_GPIOAEN;
    RCC_APB1ENR1 |= RCC_APB1ENR1_USART2EN;
    (void)RCC_APB1ENR1;
    cpu_dsb();
    gpio_af(GPIOA, 2u, 7u, 0); /* PA2 = USART2_TX */
    gpio_af(GPIOA, 3u, 7u, 1); /* PA3 = USART2_RX */
}

#elif defined(BOARD_PINS_H7_USART3)
/* RM0433 (H743): RCC at 0x58024400, GPIOD at 0x58020C00; USART3's kernel clock
 * is PCLK1 (RCC_D2CCIP2R.USART234578SEL = 000 after reset). */
#define RCC_AHB4ENR REG32(0x580244E0u)
#define RCC_APB1LENR REG32(0x580244E8u)
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR_USART3EN (1u << 18)
#define GPIOD 0x58020C00u

void board_clock_pins_init(void)
{
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC_APB1LENR;
    cpu_dsb();
    gpio_af(GPIOD, 8u, 7u, 0); /* PD8 = USART3_TX */
    gpio_af(GPIOD, 9u, 7u, 1); /* PD9 = USART3_RX */
}

#else
void board_clock_pins_init(void)
{
}
#endif
