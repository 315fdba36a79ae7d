/*
 * Arm CMSDK APB UART (Cortex-M System Design Kit TRM, DDI 0479, section 4.3):
 * DATA, STATE, CTRL, INTSTATUS/INTCLEAR, BAUDDIV.  Used when board_config.h
 * defines BOARD_UART_CMSDK (MPS2 images).  Receive: RX interrupt into the ring.
 * Transmit: blocking on STATE.TXFULL.
 */
#include "board.h"

#if defined(BOARD_UART_CMSDK)

#include "board_internal.h"
#include "cortex_m.h"
#include "uart_ring.h"

#define UART_DATA REG32(BOARD_UART_BASE + 0x00u)
#define UART_STATE REG32(BOARD_UART_BASE + 0x04u)
#define UART_CTRL REG32(BOARD_UART_BASE + 0x08u)
#define UART_INTCLEAR REG32(BOARD_UART_BASE + 0x0Cu)
#define UART_BAUDDIV REG32(BOARD_UART_BASE + 0x10u)

#define STATE_TXFULL (1u << 0)
#define STATE_RXFULL (1u << 1)
#define STATE_RXOVR (1u << 3)
#define CTRL_TXEN (1u << 0)
#define CTRL_RXEN (1u << 1)
#define CTRL_RXINTEN (1u << 3)
#define INT_RX (1u << 1)
#define INT_RXOVR (1u << 3)

/* The MPS2 clock is fixed (BOARD_UART_PCLK_HZ, board_config.h): check it here. */
#if BOARD_UART_PCLK_HZ / BOARD_UART_BAUD < 16
#error "CMSDK UART: BAUDDIV must be at least 16"
#endif

void board_uart_hw_init(uint32_t clock_hz)
{
    UART_CTRL = 0u;
    UART_BAUDDIV = clock_hz / BOARD_UART_BAUD;
    UART_INTCLEAR = 0xFu;
    UART_STATE = STATE_RXOVR; /* write 1 to clear */
    UART_CTRL = CTRL_TXEN | CTRL_RXEN | CTRL_RXINTEN;
    nvic_enable_irq(BOARD_UART_IRQ);
}

void board_uart_hw_write(uint8_t byte)
{
    while ((UART_STATE & STATE_TXFULL) != 0u) {
    }
    UART_DATA = byte;
}

void board_uart_irq_handler(void)
{
    /* Clear first, then drain: a byte that lands after the drain raises the
     * interrupt again instead of waiting unseen. */
    UART_INTCLEAR = INT_RX | INT_RXOVR;
    uint32_t state = UART_STATE;
    if ((state & STATE_RXOVR) != 0u) {
        board_rx.overruns++;
        UART_STATE = STATE_RXOVR;
    }
    while ((UART_STATE & STATE_RXFULL) != 0u) {
        if (uart_ring_full(&board_rx)) { /* leave the byte in DATA until there is room */
            uart_rx_pause(&board_rx);
            return;
        }
        uart_ring_push_isr(&board_rx, (uint8_t)UART_DATA);
    }
}

#endif
