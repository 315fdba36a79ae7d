/*
 * Host-side stress of firmware/runtime/node_runtime.c (built with the host gcc under
 * AddressSanitizer and UBSan by tests/test_firmware.py):
 *
 *   firmware_host_harness SEED ITERATIONS
 *
 * A node with a mux input (links 1 from node 1, 3 from node 4), a plain input (link 2
 * from the host) and two outputs is fed a seeded random mix of well-formed frames
 * (DATA/LINK_DOWN with right and wrong sizes, links and sources, sequence numbers that
 * go forward, repeat, fall back and jump; PING, HELLO, STATS, RESET, frames for other
 * nodes), line noise, and time steps that expire deadlines.  Everything the node sends
 * must decode as a good frame, no send may fail, and the model must only ever see
 * inputs that came in a DATA frame or are the zero-point fill.  Prints a summary line
 * "frames_in=.. frames_out=.. samples=.. down=.. timeouts=.. evictions=.. late=..".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link_protocol.h"
#include "node_runtime.h"

#define N 16
#define FAIL(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr), exit(1))

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static uint32_t below(uint32_t n) { return rnd() % n; }

/* Every tensor a DATA frame carries starts with its marker byte (0x40 | link) and
 * is otherwise random; the model checks that each input is either such a tensor of
 * one of its links or the zero-point fill. */
static int32_t model_calls;
static int32_t check_input(const int8_t *t, const uint8_t *links, size_t n_links, int8_t zp)
{
    int fill = 1;
    for (size_t i = 0; i < N; i++) {
        fill &= t[i] == zp;
    }
    if (fill) {
        return 0;
    }
    for (size_t j = 0; j < n_links; j++) {
        if ((uint8_t)t[0] == (0x40u | links[j])) {
            return 0;
        }
    }
    return 1;
}

static int32_t model(const int8_t *const in[], int8_t *const out[])
{
    static const uint8_t mux_links[2] = {1, 3}, plain_links[1] = {2};
    model_calls++;
    if (check_input(in[0], mux_links, 2, -3) || check_input(in[1], plain_links, 1, 5)) {
        FAIL("model got an input that never arrived");
    }
    /* a mux whose links all failed is zero-filled like a plain input (host.ml.split.run_split) */
    for (size_t i = 0; i < N; i++) {
        out[0][i] = (int8_t)(in[0][i] ^ in[1][i]);
        out[1][i] = in[1][N - 1 - i];
    }
    return (in[1][1] == 0x7F && in[1][2] == 0x7F) ? 9 : 0; /* rare model error */
}

static const node_link_in_t links_in[3] = {{1, 1, N, -3, 8, -128}, {3, 4, N, -3, 8, -128}, {2, 0, N, 5, 8, -128}};
static const node_input_t inputs[2] = {{NODE_INPUT_MUX, 2, {0, 1}, N}, {NODE_INPUT_LINK, 1, {2}, N}};
static const node_output_t outputs[2] = {{N, 0}, {N, 0}};
static const node_link_out_t links_out[3] = {
    {LINK_TYPE_RESULT, LINK_NONE, 0, 0, 8, -128}, {LINK_TYPE_DATA, 7, 6, 1, 8, -128},
    {LINK_TYPE_DATA, 8, 3, 0, 8, -128}};
static const node_config_t config = {
    .node_id = 5, .n_links_in = 3, .n_inputs = 2, .n_outputs = 2, .n_links_out = 3, .n_slots = 3,
    .deadline_ticks = 30, .arena_bytes = 0, .model_hash = {1, 2, 3, 4, 5, 6, 7, 8},
    .links_in = links_in, .inputs = inputs, .outputs = outputs, .links_out = links_out,
    .invoke = model};

/* The node's transmit side: a host decoder checks every frame it sends. */
static link_decoder_t out_dec;
static uint8_t out_buf[LINK_RAW_MAX];
static uint32_t frames_out;
static int sink(void *ctx, uint8_t byte)
{
    link_frame_t f;
    (void)ctx;
    link_status_t st = link_decoder_push(&out_dec, byte, &f);
    if (st == LINK_FRAME_READY) {
        frames_out++;
        if (f.hdr.src != (f.hdr.type == LINK_TYPE_DATA ? LINK_NODE_IMPLIED : 5u)) {
            FAIL("frame from src %u", f.hdr.src);
        }
    } else if (st != LINK_NEED_MORE) {
        FAIL("node sent a bad frame: %s", link_status_name(st));
    }
    return 0;
}

static node_t node;
static int8_t slots[3 * 3 * N];
static int8_t outs[2 * N];
static uint8_t frame_buf[LINK_RAW_MAX];
static uint32_t now;

static void feed(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        node_rx_byte(&node, b[i], now);
    }
}

static void send(uint8_t type, uint8_t src, uint8_t dst, uint8_t link, uint16_t seq, const uint8_t *payload,
                 size_t len)
{
    uint8_t wire[LINK_ENCODED_MAX(LINK_MAX_PAYLOAD)];
    size_t wl;
    link_header_t h = {type, src, dst, link, seq};
    if (link_encode(&h, payload, len, wire, sizeof wire, &wl) != LINK_OK) {
        FAIL("harness encode");
    }
    feed(wire, wl);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        FAIL("usage: %s SEED ITERATIONS", argv[0]);
    }
    rng_state = strtoull(argv[1], NULL, 0);
    long iterations = strtol(argv[2], NULL, 0);
    node_platform_t plat = {sink, NULL, NULL, NULL, NULL, 1000, 2000, LINK_COUNTER_UNKNOWN};
    link_decoder_init(&out_dec, out_buf, sizeof out_buf, LINK_NODE_ANY);
    if (node_init(&node, &config, &plat, frame_buf, sizeof frame_buf, slots, sizeof slots, outs, sizeof outs) !=
        NODE_OK) {
        FAIL("node_init");
    }
    node_announce(&node);

    static const uint8_t srcs[3] = {1, 4, 0}, ids[3] = {1, 3, 2};
    uint16_t base = (uint16_t)rnd();
    uint32_t frames_in = 0;
    for (long it = 0; it < iterations; it++) {
        uint32_t r = below(100);
        uint8_t payload[LINK_MAX_PAYLOAD];
        if (r < 70) { /* a sample frame: mostly right, sometimes wrong */
            uint32_t k = below(3);
            uint8_t src = srcs[k], link = ids[k];
            if (below(20) == 0) {
                src = (uint8_t)below(15);
            }
            if (below(20) == 0) {
                link = (uint8_t)below(256);
            }
            uint16_t seq = (uint16_t)(base + below(6));
            if (below(50) == 0) {
                seq = (uint16_t)rnd(); /* jump or restart */
            }
            if (below(4) == 0) {
                base = (uint16_t)(base + 1u);
            }
            if (below(3) == 0) {
                payload[0] = (uint8_t)below(4);
                send(LINK_TYPE_LINK_DOWN, src, 5, link, seq, payload, below(10) ? 1 : 0);
            } else { /* DATA: 2-byte header (link 0..127, low byte of seq), the tensor alone */
                size_t len = N;
                if (below(30) == 0) {
                    len = 1 + below(60);
                }
                for (size_t i = 0; i < len; i++) {
                    payload[i] = (uint8_t)rnd();
                }
                link &= 0x7Fu;
                payload[0] = (uint8_t)(0x40u | link);
                send(LINK_TYPE_DATA, src, 5, link, seq, payload, len);
            }
            frames_in++;
        } else if (r < 80) { /* control frames */
            static const uint8_t types[] = {LINK_TYPE_PING, LINK_TYPE_HELLO, LINK_TYPE_STATS, LINK_TYPE_RESET,
                                            LINK_TYPE_PONG, LINK_TYPE_RESULT, LINK_TYPE_ERROR};
            uint8_t type = types[below(sizeof types)];
            size_t len = below(4) == 0 ? below(LINK_MAX_PAYLOAD + 1) : below(8);
            for (size_t i = 0; i < len; i++) {
                payload[i] = (uint8_t)rnd();
            }
            if (type == LINK_TYPE_RESET && below(5) != 0) {
                type = LINK_TYPE_PING;
            }
            /* a RESET names the newest sample (mostly the real one, sometimes any) */
            uint16_t cseq = type == LINK_TYPE_RESET && below(4) ? base : (uint16_t)rnd();
            send(type, (uint8_t)below(15), below(4) ? 5 : 15, LINK_NONE, cseq, payload, len);
            frames_in++;
        } else if (r < 88) { /* noise */
            size_t len = below(300);
            for (size_t i = 0; i < len; i++) {
                payload[i] = (uint8_t)(below(8) == 0 ? 0 : rnd());
            }
            feed(payload, len);
        } else { /* time passes */
            now += below(40);
            node_poll(&node, now);
        }
    }
    now += 1000;
    node_poll(&node, now);
    if (node_waiting(&node)) {
        FAIL("samples left after every deadline passed");
    }
    const node_counters_t *c = &node.counters;
    if (c->tx_errors != 0) {
        FAIL("tx errors: %u", c->tx_errors);
    }
    if ((int32_t)(c->samples + c->invoke_errors) != model_calls) {
        FAIL("samples %u + invoke errors %u != model calls %d", c->samples, c->invoke_errors, model_calls);
    }
    printf("frames_in=%u frames_out=%u samples=%u down=%u timeouts=%u evictions=%u late=%u unknown=%u "
           "bad_tensors=%u invoke_errors=%u\n",
           frames_in, frames_out, c->samples, c->samples_down, c->input_timeouts, c->evictions, c->late_inputs,
           c->unknown_links, c->bad_tensors, c->invoke_errors);
    return 0;
}
