/*
 * main() of a node image: the board, one node_t, the main loop.
 *
 * node_config.h (emitted per node by the host build, found on the include
 * path) defines `static const node_config_t node_config` and the sizes
 * NODE_CFG_SLOTS, NODE_CFG_SLOT_BYTES, NODE_CFG_OUTPUT_BYTES (and optionally
 * NODE_CFG_FRAME_CAP, the decoder buffer; default LINK_RAW_MAX accepts every
 * legal frame).  See firmware/runtime/node_config_example.h.
 */
#include <stdint.h>

#include "board.h"
#include "link_protocol.h"
#include "node_runtime.h"
#include "node_config.h"

#ifndef NODE_CFG_FRAME_CAP
#define NODE_CFG_FRAME_CAP LINK_RAW_MAX
#endif

/* The node's whole state: the runtime struct and the buffers it works in. */
static struct {
    node_t node;
    int8_t slots[NODE_CFG_SLOTS * NODE_CFG_SLOT_BYTES] __attribute__((aligned(8)));
    int8_t outputs[NODE_CFG_OUTPUT_BYTES] __attribute__((aligned(8)));
    uint8_t frame[NODE_CFG_FRAME_CAP] __attribute__((aligned(4)));
} app;

int main(void)
{
    board_init();
    board_fault_node_id = node_config.node_id;

    node_platform_t platform = {
        .put = board_uart_put,
        .put_ctx = NULL,
        .cycles_start = board_cycles_start,
        .cycles_stop = board_cycles_stop,
        .rx_overruns = board_uart_overruns,
        .flash_bytes = board_flash_bytes(),
        .cpu_hz = board_cpu_hz(),
        /* the host labels the counts by it: true cycles (DWT, or SysTick on silicon) or, under QEMU
         * -icount, SysTick's virtual time = instructions */
        .cycle_counter = board_cycles_from_dwt() ? LINK_COUNTER_DWT : LINK_COUNTER_SYSTICK,
    };
    (void)node_init(&app.node, &node_config, &platform, app.frame, sizeof app.frame, app.slots,
                    sizeof app.slots, app.outputs, sizeof app.outputs);

    board_uart_write_byte(0x00u); /* end any partial frame the host holds */
    node_announce(&app.node);

    for (;;) {
        uint8_t byte;
        while (board_uart_read(&byte)) {
            node_rx_byte(&app.node, byte, board_ticks());
        }
        node_poll(&app.node, board_ticks());
        board_ticks_needed(node_waiting(&app.node)); /* tickless when nothing waits */
        board_idle(); /* wfi until the next byte (or tick) */
    }
}
