/* QEMU netduinoplus2 (STM32F405, Cortex-M4F): the emulated stand-in for a Nucleo-F4.
 * Data: boards/qemu_f405.toml.  USART2 (0x40004400, IRQ 38) is QEMU's serial index 1.
 * Its USART has the registers of the F446RE's; QEMU implements neither RCC nor GPIO,
 * so the F4 clock/pin set-up runs unchecked, exactly as on the real part. */
#ifndef BOARD_CONFIG_H
#define BOARD_CONFIG_H

#define BOARD_NAME "qemu_f405"
#define BOARD_EMULATED 1
#define BOARD_CPU_HZ 168000000u   /* QEMU's SYSCLK for netduinoplus2 (SysTick runs from it) */
#define BOARD_NUM_IRQS 82u        /* STM32F405 vector table */

#define BOARD_UART_STM32_USART_V1 1 /* SR/DR/BRR/CR1 USART of the STM32F2/F4 */
#define BOARD_UART_BASE 0x40004400u /* USART2 */
#define BOARD_UART_IRQ 38u
#define BOARD_UART_PCLK_HZ 42000000u /* APB1 at 168 MHz / 4 (no baud timing in QEMU) */
#define BOARD_UART_QEMU 1           /* QEMU's USART model: transmit without polling TXE (uart_stm32_usart_v1.c) */

#define BOARD_PINS_F4_USART2 1      /* RCC/GPIOA set-up of the F4 (PA2/PA3, AF7) */

#endif
