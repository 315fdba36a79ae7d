/*
 * The board layer: what the node runtime needs from a board, and nothing more.
 *
 * One implementation per board family lives in firmware/bsp/ (shared
 * code: startup, SysTick, cycle counter, RX ring, UART drivers and clock trees
 * selected by macro) plus boards/<board>/ (board_config.h: addresses, IRQ
 * numbers, pins) and what the build generates from boards/<board>/board.toml
 * (board_clock.h: baud and clock tree; memory.ld: flash and RAM).  No vendor
 * HAL, no heap.  The only mutable globals are the driver's state (the RX ring
 * that the UART interrupt fills and the SysTick count), because an interrupt
 * handler has no other way to reach its data.
 */
#ifndef RESILINET_BOARD_H
#define RESILINET_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "board_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SysTick period: every board ticks at BOARD_TICK_HZ (100 Hz: 1 tick = 10 ms).
 * Each tick wakes the core (and an emulator) from wfi: at 1 kHz an idle QEMU
 * used 7 % of a host core, at 100 Hz < 1 %.  Deadlines are counted in ticks. */
#ifndef BOARD_TICK_HZ
#define BOARD_TICK_HZ 100u
#endif

/* Receive ring (power of two).  It must hold what arrives during the longest
 * inference: 4 KB = 0.36 s at 115200 baud. */
#ifndef BOARD_UART_RX_RING
#define BOARD_UART_RX_RING 4096u
#endif

/* Clocks, pins, UART with interrupt-driven receive, SysTick, cycle counter.
 * Interrupts are enabled on return. */
void board_init(void);

/* Name and core clock of the running image: the clock in effect after
 * board_init() (the board.toml clock tree, or the reset oscillator when the tree
 * did not come up), which turns cycle counts into seconds. */
const char *board_name(void);
uint32_t board_cpu_hz(void);
/* Bytes of flash the image occupies (vector table, code, constants, .data image). */
uint32_t board_flash_bytes(void);

/* ---- UART ---- */

/* Next received byte from the RX ring: 1 and *byte set, or 0 when the ring is empty. */
int board_uart_read(uint8_t *byte);
/* Blocking transmit of one byte / a buffer. */
void board_uart_write_byte(uint8_t byte);
void board_uart_write(const uint8_t *data, size_t len);
/* link_put_fn-compatible sink (ctx unused): blocking, always returns 0. */
int board_uart_put(void *ctx, uint8_t byte);
/* Received bytes lost before software saw them (ring full or UART overrun). */
uint32_t board_uart_overruns(void);

/* ---- Time ---- */

/* SysTick ticks (BOARD_TICK_HZ per second while counting; wraps at 2^32). */
uint32_t board_ticks(void);
/* Tickless idle: SysTick runs only while someone needs time to pass (a sample
 * waits for its deadline, or a cycle count is being taken).  While it is
 * stopped the core sleeps in wfi until a byte arrives (an idle emulated board
 * then costs 0 % of a host core, against ~2 % with a free-running 100 Hz tick)
 * and board_ticks() stands still. */
void board_ticks_needed(int needed);

/* Cycle counter for one measured stretch of work (not reentrant).
 * Real boards: DWT->CYCCNT.  Emulated boards (and a real-board image that finds
 * DWT->CYCCNT not counting, e.g. under QEMU): SysTick, whose phase is restarted
 * by board_cycles_start() so that under `qemu -icount` the count depends only on
 * the instructions executed (identical run to run); this costs the tick count up
 * to one tick per measurement. */
void board_cycles_start(void);
uint32_t board_cycles_stop(void);
/* 1 if the cycle counter is DWT->CYCCNT, 0 if it is SysTick-based. */
int board_cycles_from_dwt(void);

/* Sleep (wfi) until an interrupt, unless received bytes are already waiting. */
void board_idle(void);

/* Report a fatal error on the UART as an ERROR frame from `node_id`, then stop
 * (all interrupts off, wfi forever: an idle emulator costs no CPU). */
__attribute__((noreturn)) void board_fatal(uint8_t node_id, uint16_t code, const char *text,
                                           uint32_t value);

/* Node id that board_fatal() uses for faults (set by the application). */
extern uint8_t board_fault_node_id;

#ifdef __cplusplus
}
#endif

#endif /* RESILINET_BOARD_H */
