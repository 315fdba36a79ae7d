/* ST Nucleo-F446RE (STM32F446RE, Cortex-M4F).  Data: boards/nucleo_f446re.toml.
 * USART2 on PA2 (TX) / PA3 (RX), AF7: the ST-LINK virtual COM port.
 * Clock: the 16 MHz HSI the chip starts on (the PLL is not configured), so
 * APB1 = 16 MHz and cycle counts are at 16 MHz.  Register addresses: RM0390. */
#ifndef BOARD_CONFIG_H
#define BOARD_CONFIG_H

#define BOARD_NAME "nucleo_f446re"
#define BOARD_EMULATED 0
#define BOARD_CPU_HZ 16000000u    /* HSI after reset */
#define BOARD_NUM_IRQS 97u        /* STM32F446 vector table (RM0390 table 38) */

#define BOARD_UART_STM32_USART_V1 1
#define BOARD_UART_BASE 0x40004400u /* USART2 */
#define BOARD_UART_IRQ 38u
#define BOARD_UART_BAUD 115200u
#define BOARD_UART_PCLK_HZ 16000000u /* APB1 = HCLK = HSI */

#define BOARD_PINS_F4_USART2 1

#endif
