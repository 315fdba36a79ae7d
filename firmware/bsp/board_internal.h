/* Functions each board provides to board_common.c (not part of the board API). */
#ifndef RESILINET_BOARD_INTERNAL_H
#define RESILINET_BOARD_INTERNAL_H

#include <stdint.h>

/* Generated from boards/<board>/board.toml by codegen/toolchain.py (on the include
 * path of every build): BOARD_UART_BAUD and, for a board with a clock tree,
 * BOARD_CLOCK_TREE, BOARD_CLOCK_<FAMILY> and the factors clock_<family>.c programs. */
#include "board_clock.h"

/* The clocks in effect after board_clock_init(): SysTick's reload and the UART's
 * divisor are computed from these at run time, so that an image whose clock tree
 * did not come up (an emulator without a clock model) still keeps time and talks
 * at BOARD_UART_BAUD, and HELLO reports the clock it really runs at. */
typedef struct {
    uint32_t cpu_hz;  /* core clock: SysTick and DWT count it */
    uint32_t uart_hz; /* kernel clock of the node UART */
} board_clocks_t;

/* clock_<family>.c (boards with a [clock] tree) or clock_pins_stm32.c (fixed clock):
 * set the system clock; every ready flag is polled a bounded number of times. */
board_clocks_t board_clock_init(void);
/* clock_pins_stm32.c: clocks of the UART and GPIO blocks, and the UART pins
 * (before the UART is touched). */
void board_clock_pins_init(void);
/* The selected UART driver (uart_*.c): registers (divisor from `clock_hz`, the
 * UART's kernel clock now), RX interrupt, NVIC. */
void board_uart_hw_init(uint32_t clock_hz);
void board_uart_hw_write(uint8_t byte);
void board_uart_irq_handler(void);

#endif
