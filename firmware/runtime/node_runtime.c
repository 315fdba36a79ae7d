/* The node runtime (see node_runtime.h and docs/protocol.md). */
#include "node_runtime.h"

#include <string.h>

#include "aggregate.h"
#include "link_pack.h"

/* ---- Configuration ------------------------------------------------------------ */

size_t node_slot_bytes(const node_config_t *cfg)
{
    size_t total = 0;
    for (size_t i = 0; i < cfg->n_links_in; i++) {
        total += NODE_ALIGN(cfg->links_in[i].bytes);
    }
    return total;
}

size_t node_output_bytes(const node_config_t *cfg)
{
    size_t total = 0;
    for (size_t i = 0; i < cfg->n_outputs; i++) {
        total += NODE_ALIGN(cfg->outputs[i].bytes);
    }
    return total;
}

node_status_t node_check_config(const node_config_t *cfg)
{
    uint8_t uses[NODE_MAX_LINKS_IN];

    if (cfg == NULL) {
        return NODE_ERR_ARG;
    }
    if (cfg->node_id < 1u || cfg->node_id > LINK_NODE_MAX || cfg->invoke == NULL ||
        cfg->n_links_in < 1u || cfg->n_links_in > NODE_MAX_LINKS_IN ||
        cfg->n_inputs < 1u || cfg->n_inputs > NODE_MAX_INPUTS ||
        cfg->n_outputs > NODE_MAX_OUTPUTS || cfg->n_links_out > NODE_MAX_LINKS_OUT ||
        cfg->n_slots < 1u || cfg->n_slots > NODE_MAX_SLOTS || cfg->links_in == NULL ||
        cfg->inputs == NULL || (cfg->n_outputs > 0u && cfg->outputs == NULL) ||
        (cfg->n_links_out > 0u && cfg->links_out == NULL)) {
        return NODE_ERR_CONFIG;
    }
    memset(uses, 0, sizeof uses);
    for (size_t i = 0; i < cfg->n_links_in; i++) {
        const node_link_in_t *l = &cfg->links_in[i];
        if (l->src > LINK_NODE_MAX || l->link > LINK_DATA_LINK_MAX || l->bytes == 0u ||
            !link_pack_bits_ok(l->bits) || link_packed_bytes(l->bytes, l->bits) > LINK_MAX_PAYLOAD) {
            return NODE_ERR_CONFIG;
        }
        for (size_t j = 0; j < i; j++) { /* a DATA frame names only its link: ids must be unique */
            if (cfg->links_in[j].link == l->link) {
                return NODE_ERR_CONFIG;
            }
        }
    }
    for (size_t k = 0; k < cfg->n_inputs; k++) {
        const node_input_t *in = &cfg->inputs[k];
        size_t want = in->kind == NODE_INPUT_LINK || in->kind == NODE_INPUT_AVERAGE ? 1u : 2u;
        size_t most = in->kind == NODE_INPUT_LINK ? 1u : NODE_MUX_MAX;
        if (in->kind > NODE_INPUT_AVERAGE || in->n_links < want || in->n_links > most) {
            return NODE_ERR_CONFIG;
        }
        if (in->kind == NODE_INPUT_STANDBY) { /* the guards are only looked at, not read */
            uint8_t li = in->links[in->n_links - 1u];
            for (size_t j = 0; j < in->n_links; j++) {
                if (in->links[j] >= cfg->n_links_in) {
                    return NODE_ERR_CONFIG;
                }
            }
            if (cfg->links_in[li].bytes != in->bytes) {
                return NODE_ERR_CONFIG;
            }
            uses[li]++;
            continue;
        }
        for (size_t j = 0; j < in->n_links; j++) {
            uint8_t li = in->links[j];
            if (li >= cfg->n_links_in || cfg->links_in[li].bytes != in->bytes ||
                cfg->links_in[li].zero_point != cfg->links_in[in->links[0]].zero_point) {
                return NODE_ERR_CONFIG;
            }
            uses[li]++;
        }
    }
    for (size_t i = 0; i < cfg->n_links_in; i++) {
        if (uses[i] != 1u) {
            return NODE_ERR_CONFIG;
        }
    }
    for (size_t o = 0; o < cfg->n_outputs; o++) {
        if (cfg->outputs[o].bytes == 0u || cfg->outputs[o].bytes > LINK_MAX_PAYLOAD - LINK_CYCLES_LEN) {
            return NODE_ERR_CONFIG;
        }
    }
    for (size_t j = 0; j < cfg->n_links_out; j++) {
        const node_link_out_t *lo = &cfg->links_out[j];
        if ((lo->type != LINK_TYPE_DATA && lo->type != LINK_TYPE_RESULT) ||
            lo->output >= cfg->n_outputs || lo->dst > LINK_NODE_MAX ||
            (lo->type == LINK_TYPE_DATA && lo->link > LINK_DATA_LINK_MAX) || !link_pack_bits_ok(lo->bits)) {
            return NODE_ERR_CONFIG;
        }
        for (size_t k = 0; k < j; k++) { /* one output is packed once: its DATA links share bits and lo */
            const node_link_out_t *other = &cfg->links_out[k];
            if (other->output == lo->output && other->type == LINK_TYPE_DATA && lo->type == LINK_TYPE_DATA &&
                (other->bits % 8u != lo->bits % 8u || (lo->bits % 8u != 0u && other->lo != lo->lo))) {
                return NODE_ERR_CONFIG;
            }
        }
    }
    return NODE_OK;
}

/* ---- Sending ------------------------------------------------------------------ */

static void send_frame(node_t *n, uint8_t type, uint16_t dst, uint8_t link, uint16_t seq,
                       const link_chunk_t *chunks, size_t n_chunks)
{
    link_header_t hdr;
    hdr.type = type;
    hdr.src = n->cfg != NULL && n->cfg->node_id <= LINK_NODE_MAX ? n->cfg->node_id : 1u;
    hdr.dst = dst;
    hdr.link = link;
    hdr.seq = seq;
    if (link_encode_stream(&hdr, chunks, n_chunks, n->plat.put, n->plat.put_ctx) == LINK_OK) {
        n->counters.tx_frames++;
    } else {
        n->counters.tx_errors++;
    }
}

static size_t put_decimal(uint8_t *buf, size_t pos, size_t cap, uint32_t v)
{
    char tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (k > 0u && pos < cap) {
        buf[pos++] = (uint8_t)tmp[--k];
    }
    return pos;
}

/* ERROR to the host: code, text, then the given numbers in decimal. */
static void send_error(node_t *n, uint16_t seq, uint16_t code, const char *text,
                       const uint32_t *values, size_t n_values)
{
    uint8_t payload[72];
    size_t len = 2;
    payload[0] = (uint8_t)(code & 0xFFu);
    payload[1] = (uint8_t)(code >> 8);
    while (*text != '\0' && len < 40u) {
        payload[len++] = (uint8_t)*text++;
    }
    for (size_t i = 0; i < n_values; i++) {
        payload[len++] = ' ';
        len = put_decimal(payload, len, sizeof payload, values[i]);
    }
    link_chunk_t chunk = {payload, len};
    send_frame(n, LINK_TYPE_ERROR, LINK_NODE_HOST, LINK_NONE, seq, &chunk, 1u);
}

static void send_hello(node_t *n, uint16_t dst, uint16_t seq)
{
    link_hello_t h;
    uint8_t payload[LINK_HELLO_LEN];
    memset(&h, 0, sizeof h);
    if (n->cfg != NULL) {
        memcpy(h.model_hash, n->cfg->model_hash, LINK_MODEL_HASH_LEN);
        h.arena_bytes = n->cfg->arena_bytes;
    }
    h.fw_major = NODE_FW_VERSION_MAJOR;
    h.fw_minor = NODE_FW_VERSION_MINOR;
    h.fw_patch = NODE_FW_VERSION_PATCH;
    h.flash_bytes = n->plat.flash_bytes;
    h.cpu_hz = n->plat.cpu_hz;
    h.cycle_counter = n->plat.cycle_counter;
    link_hello_pack(&h, payload);
    link_chunk_t chunk = {payload, sizeof payload};
    send_frame(n, LINK_TYPE_HELLO, dst, LINK_NONE, seq, &chunk, 1u);
}

void node_get_stats(const node_t *n, link_stats_t *s)
{
    memset(s, 0, sizeof *s);
    link_stats_from_counters(s, &n->dec.counters);
    s->value[LINK_STAT_TX_FRAMES] = n->counters.tx_frames;
    s->value[LINK_STAT_RX_OVERRUN] = n->plat.rx_overruns != NULL ? n->plat.rx_overruns() : 0u;
    s->value[LINK_STAT_INPUT_TIMEOUTS] = n->counters.input_timeouts;
    s->value[LINK_STAT_SAMPLES] = n->counters.samples;
    s->value[LINK_STAT_CYCLES_LO] = (uint32_t)(n->counters.cycles_total & 0xFFFFFFFFu);
    s->value[LINK_STAT_CYCLES_HI] = (uint32_t)(n->counters.cycles_total >> 32);
    s->value[LINK_STAT_CYCLES_MAX] = n->counters.cycles_max;
    s->value[LINK_STAT_SAMPLES_DOWN] = n->counters.samples_down;
    s->value[LINK_STAT_LATE_INPUTS] = n->counters.late_inputs;
    s->value[LINK_STAT_EVICTIONS] = n->counters.evictions;
    s->value[LINK_STAT_UNKNOWN_LINKS] = n->counters.unknown_links;
    s->value[LINK_STAT_BAD_TENSORS] = n->counters.bad_tensors;
    s->value[LINK_STAT_INVOKE_ERRORS] = n->counters.invoke_errors;
    s->value[LINK_STAT_TX_ERRORS] = n->counters.tx_errors;
}

static void send_stats(node_t *n, uint16_t dst, uint16_t seq)
{
    link_stats_t s;
    uint8_t payload[LINK_STATS_LEN];
    node_get_stats(n, &s);
    link_stats_pack(&s, payload);
    link_chunk_t chunk = {payload, sizeof payload};
    send_frame(n, LINK_TYPE_STATS, dst, LINK_NONE, seq, &chunk, 1u);
}

/* ---- Samples -------------------------------------------------------------------- */

static void clear_samples(node_t *n)
{
    for (size_t s = 0; s < NODE_MAX_SLOTS; s++) {
        n->slots[s].active = 0u;
    }
    n->done_valid = 0u;
}

/* Remember that sample `seq` is done. */
static void mark_done(node_t *n, uint16_t seq)
{
    if (!n->done_valid) {
        n->newest_done = seq;
        n->done_mask = 1u;
        n->done_valid = 1u;
        return;
    }
    int32_t d = link_seq_diff(seq, n->newest_done);
    if (d > 0) {
        n->done_mask = d >= 32 ? 1u : (n->done_mask << (uint32_t)d) | 1u;
        n->newest_done = seq;
    } else if (d > -32) {
        n->done_mask |= 1u << (uint32_t)(-d);
    }
}

static int slot_ready(const node_t *n, const node_slot_t *slot)
{
    const node_config_t *cfg = n->cfg;
    for (size_t k = 0; k < cfg->n_inputs; k++) {
        if (!node_input_resolved(&cfg->inputs[k], slot->state)) {
            return 0;
        }
    }
    return 1;
}

static void send_link_down(node_t *n, uint16_t seq, uint8_t reason)
{
    const node_config_t *cfg = n->cfg;
    link_chunk_t chunk = {&reason, 1u};
    for (size_t j = 0; j < cfg->n_links_out; j++) {
        const node_link_out_t *lo = &cfg->links_out[j];
        send_frame(n, LINK_TYPE_LINK_DOWN, lo->dst, lo->link, seq, &chunk, 1u);
    }
}

/* Compute sample `slot` with what it has (waiting links count as missing) and
 * send the outputs, or LINK_DOWN if it has no usable input.  Frees the slot.
 * `expired`: given up waiting (deadline or eviction), not ready by itself. */
static void complete_sample(node_t *n, node_slot_t *slot, int expired)
{
    const node_config_t *cfg = n->cfg;
    const int8_t *in[NODE_MAX_INPUTS];
    int any_data = 0;
    uint16_t seq = slot->seq;

    for (size_t i = 0; i < cfg->n_links_in; i++) {
        any_data |= slot->state[i] == NODE_LINK_DATA;
    }
    for (size_t k = 0; k < cfg->n_inputs && expired; k++) {
        n->counters.input_timeouts += node_input_timeouts(&cfg->inputs[k], slot->state);
    }

    if (cfg->reset != NULL) {
        /* A new sample is a new sequence (the host reference resets its interpreter too). Before the count
         * starts, so that a stateless node's count is exactly its inputs and invoke(). */
        cfg->reset();
    }
    if (n->plat.cycles_start != NULL) {
        n->plat.cycles_start();
    }
    for (size_t k = 0; k < cfg->n_inputs; k++) {
        in[k] = node_input_tensor(n, slot, &cfg->inputs[k]);
    }
    int32_t rc = 0;
    if (any_data) {
        rc = cfg->invoke(in, n->out);
    }
    uint32_t cycles = n->plat.cycles_stop != NULL ? n->plat.cycles_stop() : 0u;

    /* The slot's inputs are no longer needed: free it before sending, so
     * that the sending (which may take long on a slow UART) sees a free slot. */
    slot->active = 0u;
    mark_done(n, seq);

    if (!any_data) {
        n->counters.samples_down++;
        send_link_down(n, seq, LINK_DOWN_UPSTREAM);
        return;
    }
    if (rc != 0) {
        uint32_t v[2] = {seq, (uint32_t)rc};
        n->counters.invoke_errors++;
        send_error(n, seq, NODE_ERROR_INVOKE, "invoke failed: seq, code", v, 2u);
        send_link_down(n, seq, LINK_DOWN_UNSPECIFIED);
        return;
    }
    n->counters.samples++;
    n->counters.last_cycles = cycles;
    n->counters.cycles_total += cycles;
    n->counters.cycles_max = cycles > n->counters.cycles_max ? cycles : n->counters.cycles_max;

    /* RESULT carries the final node's cycles per sample; a DATA frame is the tensor
     * alone (2 header bytes), the other nodes' cycles travel in STATS. */
    uint8_t cyc[LINK_CYCLES_LEN];
    uint32_t packed = 0u; /* outputs already packed in place (bit per output) */
    link_cycles_pack(cycles, cyc);
    for (size_t j = 0; j < cfg->n_links_out; j++) {
        const node_link_out_t *lo = &cfg->links_out[j];
        size_t len = cfg->outputs[lo->output].bytes;
        if (lo->type == LINK_TYPE_DATA && lo->bits % 8u != 0u) {
            /* Low-bit link: clamp and pack the output in place, once (its DATA links share bits). */
            if (!((packed >> lo->output) & 1u)) {
                link_pack(n->out[lo->output], (uint8_t *)n->out[lo->output], len, lo->bits, lo->lo);
                packed |= 1u << lo->output;
            }
            len = link_packed_bytes(len, lo->bits);
        }
        link_chunk_t chunks[2] = {{cyc, sizeof cyc}, {(const uint8_t *)n->out[lo->output], len}};
        if (lo->type == LINK_TYPE_DATA) {
            send_frame(n, lo->type, lo->dst, lo->link, seq, &chunks[1], 1u);
        } else {
            send_frame(n, lo->type, lo->dst, lo->link, seq, chunks, 2u);
        }
    }
}

/* 1 if sample `seq` is done (or was given up), or too old to tell.  Done samples
 * are remembered one by one for the last 32, so a sample overtaken by newer ones
 * (its input was lost and it waited for the deadline upstream) is still computed. */
static int sample_done(const node_t *n, uint16_t seq)
{
    if (!n->done_valid) {
        return 0;
    }
    int32_t d = link_seq_diff(seq, n->newest_done);
    return d <= 0 && (d <= -32 || ((n->done_mask >> (uint32_t)(-d)) & 1u));
}

/* The slot of sample `seq`: existing, free, or freed by computing the oldest
 * sample early.  NULL if the sample is late (already computed, or older than
 * every sample in flight when all slots are busy). */
static node_slot_t *slot_for(node_t *n, uint16_t seq, uint32_t now)
{
    node_slot_t *free_slot = NULL;
    node_slot_t *oldest = NULL;

    for (size_t s = 0; s < n->cfg->n_slots; s++) {
        node_slot_t *slot = &n->slots[s];
        if (slot->active) {
            if (slot->seq == seq) {
                return slot;
            }
            if (oldest == NULL || link_seq_diff(slot->seq, oldest->seq) < 0) {
                oldest = slot;
            }
        } else if (free_slot == NULL) {
            free_slot = slot;
        }
    }
    if (sample_done(n, seq)) {
        return NULL; /* that sample is done (or was given up), or too old to tell */
    }
    if (free_slot == NULL) {
        if (link_seq_diff(seq, oldest->seq) < 0) {
            return NULL; /* older than all in flight: do not evict newer work */
        }
        n->counters.evictions++;
        complete_sample(n, oldest, 1);
        free_slot = oldest;
    }
    free_slot->active = 1u;
    free_slot->seq = seq;
    free_slot->first_tick = now;
    memset(free_slot->state, NODE_LINK_WAITING, sizeof free_slot->state);
    return free_slot;
}

/* 1 if sample `seq` still takes an input on link `li`: it is gathering and that
 * link has not come, or it is neither gathering nor done. */
static int sample_open(const node_t *n, uint16_t seq, size_t li)
{
    for (size_t s = 0; s < n->cfg->n_slots; s++) {
        const node_slot_t *slot = &n->slots[s];
        if (slot->active && slot->seq == seq) {
            return slot->state[li] == NODE_LINK_WAITING;
        }
    }
    return !sample_done(n, seq);
}

static void on_sample_frame(node_t *n, const link_frame_t *f, uint32_t now)
{
    const node_config_t *cfg = n->cfg;
    const int data = f->hdr.type == LINK_TYPE_DATA;
    size_t li;

    /* A DATA frame names its link only (ids are unique among a node's inputs);
     * a LINK_DOWN names its producer too. */
    for (li = 0; li < cfg->n_links_in; li++) {
        if (cfg->links_in[li].link == f->hdr.link && (data || cfg->links_in[li].src == f->hdr.src)) {
            break;
        }
    }
    uint16_t seq = data ? link_seq_expand(n->seq_ref, (uint8_t)f->hdr.seq) : f->hdr.seq;
    if (li == cfg->n_links_in) {
        uint32_t v[2] = {f->hdr.link, f->hdr.src};
        n->counters.unknown_links++;
        send_error(n, seq, NODE_ERROR_UNKNOWN_LINK, "unknown link, src", v, 2u);
        return;
    }
    const size_t wire = link_packed_bytes(cfg->links_in[li].bytes, cfg->links_in[li].bits);
    if (data && f->len != wire) {
        uint32_t v[3] = {f->hdr.link, f->len, (uint32_t)wire};
        n->counters.bad_tensors++;
        send_error(n, seq, NODE_ERROR_TENSOR_SIZE, "tensor size: link, got, want", v, 3u);
        return;
    }

    /* Duplicate/stale filter per (src, link); its verdict replaces the
     * decoder's "good frame" count, so each frame has exactly one outcome. */
    link_status_t verdict = link_seq_filter_check(&n->filters[li], seq);
    if (verdict == LINK_ERR_STALE && sample_open(n, seq, li)) {
        /* Overtaken, not stale: the producer computed a newer sample first (this one
         * waited for its deadline upstream) and this sample still needs the input. */
        verdict = LINK_OK;
    }
    if (verdict != LINK_OK) {
        n->dec.counters.count[LINK_FRAME_READY]--;
        link_count(&n->dec.counters, verdict);
        return;
    }
    if (link_seq_diff(seq, n->seq_ref) > 0) {
        n->seq_ref = seq;
    }

    node_slot_t *slot = slot_for(n, seq, now);
    if (slot == NULL) {
        n->counters.late_inputs++;
        return;
    }
    if (data) {
        /* a packed tensor is unpacked into the int8 codes the model reads (lo + c) */
        link_unpack(f->payload, slot->buf + n->link_offset[li], cfg->links_in[li].bytes, cfg->links_in[li].bits,
                    cfg->links_in[li].lo);
        slot->state[li] = NODE_LINK_DATA;
    } else {
        slot->state[li] = NODE_LINK_DOWN;
    }
    if (slot_ready(n, slot)) {
        complete_sample(n, slot, 0);
    }
}

void node_poll(node_t *n, uint32_t now)
{
    if (n == NULL || !n->config_ok || n->cfg->deadline_ticks == 0u) {
        return;
    }
    for (;;) { /* expired samples, oldest first */
        node_slot_t *due = NULL;
        for (size_t s = 0; s < n->cfg->n_slots; s++) {
            node_slot_t *slot = &n->slots[s];
            if (slot->active && now - slot->first_tick >= n->cfg->deadline_ticks &&
                (due == NULL || link_seq_diff(slot->seq, due->seq) < 0)) {
                due = slot;
            }
        }
        if (due == NULL) {
            return;
        }
        complete_sample(n, due, 1);
    }
}

int node_waiting(const node_t *n)
{
    if (n == NULL || !n->config_ok || n->cfg->deadline_ticks == 0u) {
        return 0;
    }
    for (size_t s = 0; s < n->cfg->n_slots; s++) {
        if (n->slots[s].active) {
            return 1;
        }
    }
    return 0;
}

/* ---- Frames ---------------------------------------------------------------------- */

static void reset_filters_of(node_t *n, uint16_t src)
{
    if (!n->config_ok) {
        return;
    }
    for (size_t i = 0; i < n->cfg->n_links_in; i++) {
        if (n->cfg->links_in[i].src == src) {
            link_seq_filter_init(&n->filters[i]);
        }
    }
}

static void on_frame(node_t *n, const link_frame_t *f, uint32_t now)
{
    const link_header_t *h = &f->hdr;

    switch (h->type) {
    case LINK_TYPE_HELLO:
        reset_filters_of(n, h->src); /* the source (re)started */
        if (f->len == 0u) {
            send_hello(n, h->src, h->seq);
        }
        break;
    case LINK_TYPE_STATS:
        if (f->len == 0u) {
            send_stats(n, h->src, h->seq);
        }
        break;
    case LINK_TYPE_PING: {
        link_chunk_t chunk = {f->payload, f->len};
        send_frame(n, LINK_TYPE_PONG, h->src, LINK_NONE, h->seq, &chunk, 1u);
        break;
    }
    case LINK_TYPE_RESET:
        if (n->config_ok) {
            for (size_t i = 0; i < n->cfg->n_links_in; i++) {
                link_seq_filter_init(&n->filters[i]);
            }
        }
        clear_samples(n);
        if (n->config_ok && n->cfg->reset != NULL) {
            n->cfg->reset(); /* a fresh start leaves no state of an earlier run behind */
        }
        n->seq_ref = h->seq; /* the host numbers the samples that follow from here */
        n->counters.cycles_max = 0u;
        send_hello(n, h->src, h->seq);
        break;
    case LINK_TYPE_DATA:
    case LINK_TYPE_LINK_DOWN:
        if (n->config_ok) {
            on_sample_frame(n, f, now);
        } else {
            send_error(n, h->seq, NODE_ERROR_CONFIG, "node config rejected", NULL, 0u);
        }
        break;
    default: /* PONG, RESULT, ERROR: nothing for a node to do */
        break;
    }
}

void node_rx_byte(node_t *n, uint8_t byte, uint32_t now)
{
    link_frame_t frame;
    if (link_decoder_push(&n->dec, byte, &frame) == LINK_FRAME_READY) {
        on_frame(n, &frame, now);
    }
}

void node_announce(node_t *n)
{
    if (!n->config_ok) {
        send_error(n, 0u, NODE_ERROR_CONFIG, "node config rejected", NULL, 0u);
    }
    send_hello(n, LINK_NODE_HOST, 0u);
}

node_status_t node_init(node_t *n, const node_config_t *cfg, const node_platform_t *plat,
                        uint8_t *frame_buf, size_t frame_cap, int8_t *slot_mem,
                        size_t slot_mem_bytes, int8_t *out_mem, size_t out_mem_bytes)
{
    if (n == NULL || cfg == NULL || plat == NULL || plat->put == NULL || frame_buf == NULL) {
        return NODE_ERR_ARG;
    }
    memset(n, 0, sizeof *n);
    n->cfg = cfg;
    n->plat = *plat;
    node_status_t st = node_check_config(cfg);
    uint8_t local = cfg->node_id >= 1u && cfg->node_id <= LINK_NODE_MAX ? cfg->node_id : 1u;
    if (link_decoder_init(&n->dec, frame_buf, frame_cap, local) != LINK_OK) {
        return NODE_ERR_MEMORY;
    }
    if (st != NODE_OK) {
        return st;
    }
    size_t slot_bytes = node_slot_bytes(cfg);
    size_t largest = 0;
    for (size_t i = 0; i < cfg->n_links_in; i++) {
        largest = cfg->links_in[i].bytes > largest ? cfg->links_in[i].bytes : largest;
    }
    if (slot_mem == NULL || out_mem == NULL || slot_mem_bytes < cfg->n_slots * slot_bytes ||
        out_mem_bytes < node_output_bytes(cfg) || ((uintptr_t)slot_mem & 3u) != 0u ||
        ((uintptr_t)out_mem & 3u) != 0u ||
        frame_cap < LINK_HEADER_LEN + LINK_CRC_LEN + largest) {
        return NODE_ERR_MEMORY;
    }
    size_t off = 0;
    for (size_t i = 0; i < cfg->n_links_in; i++) {
        n->link_offset[i] = (uint32_t)off;
        off += NODE_ALIGN(cfg->links_in[i].bytes);
        link_seq_filter_init(&n->filters[i]);
    }
    for (size_t s = 0; s < cfg->n_slots; s++) {
        n->slots[s].buf = slot_mem + s * slot_bytes;
    }
    off = 0;
    for (size_t o = 0; o < cfg->n_outputs; o++) {
        n->out[o] = out_mem + off;
        off += NODE_ALIGN(cfg->outputs[o].bytes);
    }
    clear_samples(n);
    n->config_ok = 1u;
    return NODE_OK;
}
