/*
 * Board code shared by every Cortex-M board: SysTick time base, cycle counter,
 * the UART receive ring, idle, fatal-error report.  Board specifics come from
 * board_config.h and from the functions of the selected UART driver and of
 * board_init.c:
 *   board_clocks_t board_clock_init(void);  system clock (clock_<family>.c)
 *   void board_clock_pins_init(void);   bus clocks and UART pins (clock_pins_stm32.c)
 *   void board_uart_hw_init(uint32_t);  UART registers + NVIC (uart_*.c)
 *   void board_uart_hw_write(uint8_t);  blocking transmit of one byte (uart_*.c)
 */
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "board_internal.h"
#include "cortex_m.h"
#include "link_protocol.h"
#include "uart_ring.h"

uart_ring_t board_rx;
uint8_t board_fault_node_id = 1u;

/* SysTick ticks since boot; the only other mutable driver state. */
static volatile uint32_t systick_count;
/* Cycle counter state (main loop only). */
static uint8_t cycles_use_dwt;
static uint32_t cycles_start_dwt;
static uint32_t cycles_start_ticks;

/* The clocks board_clock_init() set (the board.toml tree, or the reset clock it
 * fell back to), and SysTick's period at that core clock (cycles per tick). */
static board_clocks_t clocks;
static uint32_t systick_period;

extern const uint8_t __flash_start[], __flash_end[];

void SysTick_Handler(void)
{
    systick_count++;
}

const char *board_name(void) { return BOARD_NAME; }
uint32_t board_cpu_hz(void) { return clocks.cpu_hz; }
uint32_t board_flash_bytes(void) { return (uint32_t)(__flash_end - __flash_start); }
uint32_t board_ticks(void) { return systick_count; }
uint32_t board_uart_overruns(void) { return board_rx.overruns; }
int board_cycles_from_dwt(void) { return cycles_use_dwt; }

/* DWT->CYCCNT if it is there and counts (it reads 0 under QEMU). */
static int dwt_init(void)
{
#if BOARD_EMULATED
    return 0;
#else
    DEMCR |= DEMCR_TRCENA;
#if defined(BOARD_DWT_NEEDS_UNLOCK)
    DWT_LAR = 0xC5ACCE55u;
#endif
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    uint32_t a = DWT_CYCCNT;
    for (volatile int i = 0; i < 16; i++) {
    }
    return DWT_CYCCNT != a;
#endif
}

void board_init(void)
{
    irq_disable();
    clocks = board_clock_init();
    board_clock_pins_init();
    board_rx.head = board_rx.tail = board_rx.overruns = board_rx.paused = 0u;

    SYST_CSR = 0u;
    /* From the clock in effect, so ticks last 1/BOARD_TICK_HZ s after a fallback too
     * (24-bit reload: up to 1.6 GHz at 100 Hz). */
    systick_period = clocks.cpu_hz / BOARD_TICK_HZ;
    SYST_RVR = systick_period - 1u;
    SYST_CVR = 0u;
    SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFu) | (0x80u << 24); /* SysTick below the UART */
    SYST_CSR = SYST_CSR_CLKSOURCE; /* started by board_ticks_needed() / board_cycles_start() */

    cycles_use_dwt = (uint8_t)dwt_init();
    board_uart_hw_init(clocks.uart_hz);
    /* Run the receive handler once: a byte that arrived while the driver set
     * the UART up may have no interrupt pending any more.  nvic_enable_irq()
     * clears the pending bit after the UART was enabled, and QEMU's STM32
     * USART leaves its line low when a read of DR hands over the next byte
     * the mux chardev held: RXNE set, no interrupt, the receiver dead for
     * good (tests/test_uart_setup.py).  The handlers find nothing otherwise. */
    NVIC_ISPR(BOARD_UART_IRQ >> 5) = 1u << (BOARD_UART_IRQ & 31u);
    irq_enable();
}

static uint8_t ticks_wanted;   /* by the application */
static uint8_t ticks_measuring; /* by the SysTick-based cycle counter */

static void tick_interrupt_update(void)
{
    /* Off means stopped, not just silent: QEMU would still run its timer at
     * every wrap of a counting SysTick and wake the emulator. */
    if (ticks_wanted || ticks_measuring) {
        SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
    } else {
        SYST_CSR = SYST_CSR_CLKSOURCE;
    }
}

void board_ticks_needed(int needed)
{
    if ((uint8_t)(needed != 0) != ticks_wanted) {
        ticks_wanted = (uint8_t)(needed != 0);
        tick_interrupt_update();
    }
}

/* ---- Cycle counter ---- */

void board_cycles_start(void)
{
    if (cycles_use_dwt) {
        cycles_start_dwt = DWT_CYCCNT;
        return;
    }
    /* Restart SysTick's phase here: writing CVR clears it and the counter
     * reloads on the next clock edge.  A wrap that is pending now is dropped
     * (the tick count loses < 1 tick). */
    uint32_t pm = irq_save();
    ticks_measuring = 1u;
    tick_interrupt_update(); /* count SysTick wraps during the measurement */
    SYST_CVR = 0u;
    SCB_ICSR = SCB_ICSR_PENDSTCLR;
    cycles_start_ticks = systick_count;
    irq_restore(pm);
}

uint32_t board_cycles_stop(void)
{
    if (cycles_use_dwt) {
        return DWT_CYCCNT - cycles_start_dwt;
    }
    uint32_t ticks, val;
    do { /* a wrap between the two reads runs the ISR and changes systick_count */
        ticks = systick_count;
        val = SYST_CVR;
    } while (ticks != systick_count);
    const uint32_t period = systick_period;
    uint32_t elapsed = (ticks - cycles_start_ticks) * period;
    if (val != 0u) {
        elapsed += period - val;
    }
    ticks_measuring = 0u;
    tick_interrupt_update();
    return elapsed;
}

/* ---- UART ---- */

int board_uart_read(uint8_t *byte)
{
    uint32_t tail = board_rx.tail;
    if (tail == board_rx.head) {
        return 0;
    }
    *byte = board_rx.buf[tail & (BOARD_UART_RX_RING - 1u)];
    __asm volatile("" ::: "memory");
    board_rx.tail = tail + 1u;
    if (board_rx.paused && board_rx.head - board_rx.tail <= BOARD_UART_RX_RING / 2u) {
        /* Unmask, and run the handler once: some UART models (CMSDK) raise
         * their RX interrupt only when a byte arrives, not for one waiting. */
        board_rx.paused = 0u;
        NVIC_ISER(BOARD_UART_IRQ >> 5) = 1u << (BOARD_UART_IRQ & 31u);
        NVIC_ISPR(BOARD_UART_IRQ >> 5) = 1u << (BOARD_UART_IRQ & 31u);
    }
    return 1;
}

void board_uart_write_byte(uint8_t byte)
{
    board_uart_hw_write(byte);
}

void board_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        board_uart_hw_write(data[i]);
    }
}

int board_uart_put(void *ctx, uint8_t byte)
{
    (void)ctx;
    board_uart_hw_write(byte);
    return 0;
}

/* ---- Idle ---- */

void board_idle(void)
{
    /* With interrupts masked, check for work, then wfi: an interrupt that
     * arrives after the check still wakes the wfi (it is pending), and is taken
     * when interrupts are unmasked.  No lost wake-up, no polling. */
    irq_disable();
    if (board_rx.head == board_rx.tail) {
        cpu_dsb();
        cpu_wfi();
    }
    irq_enable();
}

/* ---- Fatal errors ---- */

static void put_decimal(char *buf, size_t *n, size_t cap, uint32_t v)
{
    char tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && k < sizeof tmp);
    while (k > 0u && *n < cap) {
        buf[(*n)++] = tmp[--k];
    }
}

void board_fatal(uint8_t node_id, uint16_t code, const char *text, uint32_t value)
{
    irq_disable();
    uint8_t payload[64];
    size_t n = 2;
    payload[0] = (uint8_t)(code & 0xFFu);
    payload[1] = (uint8_t)(code >> 8);
    while (text != NULL && *text != '\0' && n < sizeof payload - 12u) {
        payload[n++] = (uint8_t)*text++;
    }
    payload[n++] = ' ';
    put_decimal((char *)payload, &n, sizeof payload, value);

    link_header_t hdr = {LINK_TYPE_ERROR, node_id <= LINK_NODE_MAX ? node_id : 1u,
                         LINK_NODE_HOST, LINK_NONE, 0u};
    link_chunk_t chunk = {payload, n};
    board_uart_hw_write(0x00u); /* end whatever partial frame the host holds */
    (void)link_encode_stream(&hdr, &chunk, 1u, board_uart_put, NULL);

    /* Stop for good without burning the host's CPU: every interrupt source
     * off, so that wfi sleeps forever. */
    SYST_CSR = 0u;
    for (uint32_t i = 0; i < (BOARD_NUM_IRQS + 31u) / 32u; i++) {
        NVIC_ICER(i) = 0xFFFFFFFFu;
        NVIC_ICPR(i) = 0xFFFFFFFFu;
    }
    SCB_ICSR = SCB_ICSR_PENDSTCLR;
    for (;;) {
        cpu_wfi();
    }
}
