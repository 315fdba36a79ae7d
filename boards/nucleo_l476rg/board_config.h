/* ST Nucleo-L476RG (STM32L476RG, Cortex-M4F).  Data: boards/nucleo_l476rg/board.toml.
 * USART2 on PA2/PA3, AF7 (ST-LINK virtual COM port).  Clock: the [clock] tree of
 * board.toml (80 MHz), programmed by firmware/bsp/clock_stm32l4.c from the
 * generated board_clock.h; the 4 MHz MSI if it does not come up.
 * Register addresses: RM0351.  Compile-checked only. */
#ifndef BOARD_CONFIG_H
#define BOARD_CONFIG_H

#define BOARD_NAME "nucleo_l476rg"
#define BOARD_EMULATED 0
#define BOARD_NUM_IRQS 82u

#define BOARD_UART_STM32_USART_V2 1 /* ISR/RDR/TDR USART of the STM32L4/F7/H7 */
#define BOARD_UART_BASE 0x40004400u /* USART2 */
#define BOARD_UART_IRQ 38u

#define BOARD_PINS_L4_USART2 1

#endif
