/*
 * Single-producer (UART interrupt) / single-consumer (main loop) byte ring.
 * Indices only grow (wrapping at 2^32); size is a power of two.
 */
#ifndef RESILINET_UART_RING_H
#define RESILINET_UART_RING_H

#include <stdint.h>

#include "board.h"
#include "cortex_m.h"

#if (BOARD_UART_RX_RING & (BOARD_UART_RX_RING - 1u)) != 0u
#error "BOARD_UART_RX_RING must be a power of two"
#endif

typedef struct {
    volatile uint32_t head;     /* written by the ISR */
    volatile uint32_t tail;     /* written by the main loop */
    volatile uint32_t overruns; /* bytes lost: ring full, or the UART's own overrun */
    volatile uint32_t paused;   /* RX interrupt masked because the ring was full */
    uint8_t buf[BOARD_UART_RX_RING];
} uart_ring_t;

/* The driver's receive state (defined in board_common.c). */
extern uart_ring_t board_rx;

/* From the UART interrupt only: 1 if the ring has no room for another byte.
 * The drivers then leave the byte in the UART and call uart_rx_pause(), which
 * masks the UART's interrupt in the NVIC until the main loop has made room
 * (board_uart_read): under QEMU the UART model then holds back further bytes
 * (lossless flow control); on real hardware the UART overruns instead, which
 * the driver counts. */
static inline int uart_ring_full(const uart_ring_t *r)
{
    return r->head - r->tail >= BOARD_UART_RX_RING;
}

static inline void uart_rx_pause(uart_ring_t *r)
{
    NVIC_ICER(BOARD_UART_IRQ >> 5) = 1u << (BOARD_UART_IRQ & 31u);
    r->paused = 1u;
}

/* From the UART interrupt only. */
static inline void uart_ring_push_isr(uart_ring_t *r, uint8_t byte)
{
    uint32_t head = r->head;
    if (head - r->tail >= BOARD_UART_RX_RING) {
        r->overruns++;
        return;
    }
    r->buf[head & (BOARD_UART_RX_RING - 1u)] = byte;
    __asm volatile("" ::: "memory"); /* data before index (single core, in order) */
    r->head = head + 1u;
}

#endif /* RESILINET_UART_RING_H */
