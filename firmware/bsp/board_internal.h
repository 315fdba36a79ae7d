/* Functions each board provides to board_common.c (not part of the board API). */
#ifndef RESILINET_BOARD_INTERNAL_H
#define RESILINET_BOARD_INTERNAL_H

#include <stdint.h>

/* board_init.c of the board: clocks and UART pins (before the UART is touched). */
void board_clock_pins_init(void);
/* The selected UART driver (uart_*.c): registers, RX interrupt, NVIC. */
void board_uart_hw_init(void);
void board_uart_hw_write(uint8_t byte);
void board_uart_irq_handler(void);

#endif
