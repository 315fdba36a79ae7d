/*
 * USART of the STM32L4/F7/H7 (CR1, BRR, ISR, ICR, RDR, TDR): RM0351 (L476)
 * section 40.8, RM0433 (H743) section 48.7.  Used when board_config.h defines
 * BOARD_UART_STM32_USART_V2.  Receive: RXNE interrupt into the ring.
 * Transmit: blocking on TXE.
 */
#include "board.h"

#if defined(BOARD_UART_STM32_USART_V2)

#include "board_internal.h"
#include "cortex_m.h"
#include "uart_ring.h"

#define USART_CR1 REG32(BOARD_UART_BASE + 0x00u)
#define USART_CR2 REG32(BOARD_UART_BASE + 0x04u)
#define USART_CR3 REG32(BOARD_UART_BASE + 0x08u)
#define USART_BRR REG32(BOARD_UART_BASE + 0x0Cu)
#define USART_ISR REG32(BOARD_UART_BASE + 0x1Cu)
#define USART_ICR REG32(BOARD_UART_BASE + 0x20u)
#define USART_RDR REG32(BOARD_UART_BASE + 0x24u)
#define USART_TDR REG32(BOARD_UART_BASE + 0x28u)

#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define ISR_PE (1u << 0)
#define ISR_FE (1u << 1)
#define ISR_NF (1u << 2)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)
#define ICR_ERRORS (ISR_PE | ISR_FE | ISR_NF | ISR_ORE) /* PECF, FECF, NECF, ORECF */

/* Oversampling by 16: BRR = kernel clock / baud, rounded, from the clock in
 * effect (board_clock_init() may have fallen back). */
void board_uart_hw_init(uint32_t clock_hz)
{
    USART_CR1 = 0u;
    USART_CR2 = 0u;
    USART_CR3 = 0u;
    USART_BRR = (clock_hz + BOARD_UART_BAUD / 2u) / BOARD_UART_BAUD;
    USART_ICR = ICR_ERRORS;
    USART_CR1 = CR1_TE | CR1_RE | CR1_RXNEIE | CR1_UE;
    nvic_enable_irq(BOARD_UART_IRQ);
}

void board_uart_hw_write(uint8_t byte)
{
    while ((USART_ISR & ISR_TXE) == 0u) {
    }
    USART_TDR = byte;
}

void board_uart_irq_handler(void)
{
    uint32_t isr = USART_ISR;
    if ((isr & ICR_ERRORS) != 0u) {
        if ((isr & ISR_ORE) != 0u) {
            board_rx.overruns++;
        }
        USART_ICR = isr & ICR_ERRORS;
    }
    while ((USART_ISR & ISR_RXNE) != 0u) {
        if (uart_ring_full(&board_rx)) { /* leave the byte in RDR until there is room */
            uart_rx_pause(&board_rx);
            return;
        }
        uart_ring_push_isr(&board_rx, (uint8_t)USART_RDR);
    }
}

#endif
