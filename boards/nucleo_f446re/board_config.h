/* ST Nucleo-F446RE (STM32F446RE, Cortex-M4F).  Data: boards/nucleo_f446re/board.toml.
 * USART2 on PA2 (TX) / PA3 (RX), AF7: the ST-LINK virtual COM port.
 * Clock: the [clock] tree of board.toml (180 MHz, APB1 = 45 MHz), programmed by
 * firmware/bsp/clock_stm32f4.c from the generated board_clock.h (which also holds
 * BOARD_UART_BAUD); the 16 MHz HSI if it does not come up.  Registers: RM0390. */
#ifndef BOARD_CONFIG_H
#define BOARD_CONFIG_H

#define BOARD_NAME "nucleo_f446re"
#define BOARD_EMULATED 0
#define BOARD_NUM_IRQS 97u        /* STM32F446 vector table (RM0390 table 38) */

#define BOARD_UART_STM32_USART_V1 1
#define BOARD_UART_BASE 0x40004400u /* USART2 */
#define BOARD_UART_IRQ 38u

#define BOARD_PINS_F4_USART2 1

#endif
