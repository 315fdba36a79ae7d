/*
 * USART of the STM32F2/F4 (SR, DR, BRR, CR1): RM0390 (F446) section 25.6,
 * RM0090 (F405) section 30.6.  Used when board_config.h defines
 * BOARD_UART_STM32_USART_V1.  Receive: RXNE interrupt into the ring.
 * Transmit: blocking on TXE.
 *
 * BOARD_UART_QEMU (QEMU's model of this USART, hw/char/stm32f2xx_usart.c):
 * the model transmits synchronously, so TXE is always set, and every read of
 * SR wakes QEMU's main loop (qemu_chr_fe_accept_input(): an eventfd write and
 * a switch between the emulator's threads on the host).  Polling TXE before
 * each byte sent cost one such wake-up per byte; on that model the driver
 * writes DR without polling (bench/uart_throughput.py).
 */
#include "board.h"

#if defined(BOARD_UART_STM32_USART_V1)

#include "board_internal.h"
#include "cortex_m.h"
#include "uart_ring.h"

#define USART_SR REG32(BOARD_UART_BASE + 0x00u)
#define USART_DR REG32(BOARD_UART_BASE + 0x04u)
#define USART_BRR REG32(BOARD_UART_BASE + 0x08u)
#define USART_CR1 REG32(BOARD_UART_BASE + 0x0Cu)
#define USART_CR2 REG32(BOARD_UART_BASE + 0x10u)
#define USART_CR3 REG32(BOARD_UART_BASE + 0x14u)

#define SR_PE (1u << 0)
#define SR_FE (1u << 1)
#define SR_NF (1u << 2)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_UE (1u << 13)

/* Oversampling by 16: BRR = fPCLK / baud, rounded (mantissa.fraction in one),
 * from the clock in effect (board_clock_init() may have fallen back). */
void board_uart_hw_init(uint32_t clock_hz)
{
    USART_CR1 = 0u;
    USART_CR2 = 0u; /* 1 stop bit */
    USART_CR3 = 0u; /* no flow control, no DMA */
    USART_BRR = (clock_hz + BOARD_UART_BAUD / 2u) / BOARD_UART_BAUD;
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE; /* 8N1 */
    (void)USART_SR;
    (void)USART_DR; /* drop a stale byte and error flags */
    nvic_enable_irq(BOARD_UART_IRQ);
}

void board_uart_hw_write(uint8_t byte)
{
#if !defined(BOARD_UART_QEMU)
    while ((USART_SR & SR_TXE) == 0u) {
    }
#endif
    USART_DR = byte;
}

void board_uart_irq_handler(void)
{
    /* Reading SR then DR clears RXNE and the error flags (ORE, NF, FE, PE).
     * The loop also catches a byte that a DR read handed over at once (QEMU
     * with a mux chardev), for which QEMU 7.2 leaves the interrupt low. */
    uint32_t sr = USART_SR;
    while ((sr & (SR_RXNE | SR_ORE | SR_FE | SR_NF | SR_PE)) != 0u) {
        if (uart_ring_full(&board_rx)) { /* leave the byte in DR until there is room */
            uart_rx_pause(&board_rx);
            return;
        }
        uint8_t byte = (uint8_t)USART_DR;
        if ((sr & SR_ORE) != 0u) {
            board_rx.overruns++;
        }
        if ((sr & SR_RXNE) != 0u) {
            uart_ring_push_isr(&board_rx, byte);
        }
        sr = USART_SR;
    }
}

#endif
