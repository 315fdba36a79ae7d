/* ST Nucleo-H743ZI (STM32H743ZI, Cortex-M7, double-precision FPU).
 * Data: boards/nucleo_h743zi/board.toml.  USART3 on PD8 (TX) / PD9 (RX), AF7: the
 * ST-LINK virtual COM port.  Clock: the [clock] tree of board.toml (400 MHz at
 * VOS1, USART3's kernel clock PCLK1 = 100 MHz), programmed by
 * firmware/bsp/clock_stm32h7.c from the generated board_clock.h; the 64 MHz HSI
 * if it does not come up.  Register addresses: RM0433.  Compile-checked only
 * (caches stay off). */
#ifndef BOARD_CONFIG_H
#define BOARD_CONFIG_H

#define BOARD_NAME "nucleo_h743zi"
#define BOARD_EMULATED 0
#define BOARD_NUM_IRQS 150u

#define BOARD_UART_STM32_USART_V2 1
#define BOARD_UART_BASE 0x40004800u /* USART3 */
#define BOARD_UART_IRQ 39u

#define BOARD_PINS_H7_USART3 1
#define BOARD_DWT_NEEDS_UNLOCK 1   /* Cortex-M7 DWT software lock */

#endif
