/* ST Nucleo-H743ZI (STM32H743ZI, Cortex-M7, double-precision FPU).
 * Data: boards/nucleo_h743zi.toml.  USART3 on PD8 (TX) / PD9 (RX), AF7: the
 * ST-LINK virtual COM port.  Clock: the 64 MHz HSI the chip starts on; USART3's
 * kernel clock is then PCLK1 = 64 MHz.  Register addresses: RM0433.
 * Compile-checked only (caches stay off, power/voltage scaling at reset values). */
#ifndef BOARD_CONFIG_H
#define BOARD_CONFIG_H

#define BOARD_NAME "nucleo_h743zi"
#define BOARD_EMULATED 0
#define BOARD_CPU_HZ 64000000u    /* HSI after reset */
#define BOARD_NUM_IRQS 150u

#define BOARD_UART_STM32_USART_V2 1
#define BOARD_UART_BASE 0x40004800u /* USART3 */
#define BOARD_UART_IRQ 39u
#define BOARD_UART_BAUD 115200u
#define BOARD_UART_PCLK_HZ 64000000u

#define BOARD_PINS_H7_USART3 1
#define BOARD_DWT_NEEDS_UNLOCK 1   /* Cortex-M7 DWT software lock */

#endif
