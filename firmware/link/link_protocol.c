/* Frame encoder, byte-wise frame decoder, sequence filter and payload helpers
 * of the link protocol (docs/protocol.md). */
#include "link_protocol.h"

#include <string.h>

#define MIN_FRAME (LINK_HEADER_LEN + LINK_CRC_LEN)
/* A DATA frame carries at least one tensor byte. */
#define MIN_DATA_FRAME (LINK_DATA_HEADER_LEN + 1u + LINK_CRC_LEN)

/* ---- Little-endian field access ------------------------------------------ */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* ---- Names and counters ---------------------------------------------------- */

int link_type_is_known(uint8_t type)
{
    return type >= LINK_TYPE_HELLO && type <= LINK_TYPE_ERROR;
}

const char *link_status_name(link_status_t status)
{
    /* Lower-case names are also the outcome names in the test vectors. */
    static const char *const names[LINK_STATUS_COUNT] = {
        "ok",     "need_more", "frame_ready", "truncated", "oversize",
        "crc",    "version",   "type",        "length",    "dest",
        "duplicate", "stale",  "arg",         "no_space",
    };
    if ((unsigned)status >= LINK_STATUS_COUNT) {
        return "unknown";
    }
    return names[status];
}

void link_count(link_counters_t *c, link_status_t status)
{
    if (c != NULL && (unsigned)status < LINK_STATUS_COUNT) {
        c->count[status]++;
    }
}

/* ---- Encoder ---------------------------------------------------------------- */

/* Writes the header of a frame with `len` payload bytes; returns its length
 * (LINK_DATA_HEADER_LEN for DATA, else LINK_HEADER_LEN), or 0 if a field is
 * illegal.  DATA goes out in its short form: src and dst are not sent and
 * only the low byte of seq is. */
static size_t pack_header(const link_header_t *hdr, size_t len, uint8_t out[LINK_HEADER_LEN])
{
    if (len > LINK_MAX_PAYLOAD) {
        return 0;
    }
    if (hdr->type == LINK_TYPE_DATA) {
        if (hdr->link > LINK_DATA_LINK_MAX || len == 0) {
            return 0;
        }
        out[0] = (uint8_t)(LINK_DATA_FLAG | hdr->link);
        out[1] = (uint8_t)(hdr->seq & 0xFFu);
        return LINK_DATA_HEADER_LEN;
    }
    if (!link_type_is_known(hdr->type) || hdr->src > LINK_NODE_MAX ||
        hdr->dst > LINK_NODE_BROADCAST) {
        return 0;
    }
    out[0] = (uint8_t)((LINK_VERSION << 4) | hdr->type);
    out[1] = (uint8_t)hdr->src;
    out[2] = (uint8_t)hdr->dst;
    out[3] = hdr->link;
    put_u16(&out[4], hdr->seq);
    put_u16(&out[6], (uint16_t)len);
    return LINK_HEADER_LEN;
}

link_status_t link_encode_stream(const link_header_t *hdr, const link_chunk_t *chunks,
                                 size_t n_chunks, link_put_fn put, void *ctx)
{
    /* Frame = header, payload chunks, CRC: gathered, never copied together. */
    link_chunk_t parts[LINK_MAX_CHUNKS + 2u];
    uint8_t header[LINK_HEADER_LEN];
    uint8_t crc_be[LINK_CRC_LEN];
    uint16_t crc;
    size_t len = 0;
    size_t header_len;
    size_t i;
    link_status_t st;

    if (hdr == NULL || put == NULL || n_chunks > LINK_MAX_CHUNKS ||
        (chunks == NULL && n_chunks != 0)) {
        return LINK_ERR_ARG;
    }
    for (i = 0; i < n_chunks; i++) {
        if (chunks[i].data == NULL && chunks[i].len != 0) {
            return LINK_ERR_ARG;
        }
        if (chunks[i].len > LINK_MAX_PAYLOAD - len) {
            return LINK_ERR_ARG;
        }
        len += chunks[i].len;
    }
    header_len = pack_header(hdr, len, header);
    if (header_len == 0) {
        return LINK_ERR_ARG;
    }

    crc = link_crc16_update(LINK_CRC16_INIT, header, header_len);
    for (i = 0; i < n_chunks; i++) {
        crc = link_crc16_update(crc, chunks[i].data, chunks[i].len);
    }
    /* Big-endian, as the CRC is computed MSB first: the CRC over the whole
     * unstuffed frame is then 0, which lets the decoder check on the fly. */
    crc_be[0] = (uint8_t)(crc >> 8);
    crc_be[1] = (uint8_t)(crc & 0xFFu);

    parts[0].data = header;
    parts[0].len = header_len;
    for (i = 0; i < n_chunks; i++) {
        parts[1 + i] = chunks[i];
    }
    parts[1 + n_chunks].data = crc_be;
    parts[1 + n_chunks].len = sizeof crc_be;

    st = link_cobs_encode_chunks(parts, n_chunks + 2u, put, ctx);
    if (st != LINK_OK) {
        return st;
    }
    return put(ctx, 0x00) == 0 ? LINK_OK : LINK_ERR_NO_SPACE;
}

link_status_t link_encode(const link_header_t *hdr, const uint8_t *payload, size_t len,
                          uint8_t *out, size_t out_cap, size_t *out_len)
{
    link_chunk_t chunk;
    link_buffer_t sink;
    link_status_t st;

    if (out == NULL || out_len == NULL) {
        return LINK_ERR_ARG;
    }
    chunk.data = payload;
    chunk.len = len;
    sink.data = out;
    sink.cap = out_cap;
    sink.len = 0;
    st = link_encode_stream(hdr, &chunk, 1, link_buffer_put, &sink);
    *out_len = (st == LINK_OK) ? sink.len : 0;
    return st;
}

/* ---- Decoder ---------------------------------------------------------------- */

static void start_frame(link_decoder_t *dec)
{
    dec->len = 0;
    dec->crc = LINK_CRC16_INIT;
    dec->overflow = 0;
    link_cobs_decoder_init(&dec->cobs);
}

link_status_t link_decoder_init(link_decoder_t *dec, uint8_t *buf, size_t cap,
                                uint16_t local_node)
{
    if (dec == NULL || buf == NULL || cap < MIN_FRAME) {
        return LINK_ERR_ARG;
    }
    memset(dec, 0, sizeof *dec);
    dec->buf = buf;
    /* A bigger buffer must not widen the protocol: payloads stay <= LINK_MAX_PAYLOAD. */
    dec->cap = cap < LINK_RAW_MAX ? cap : LINK_RAW_MAX;
    dec->local_node = local_node;
    start_frame(dec);
    return LINK_OK;
}

void link_decoder_resync(link_decoder_t *dec)
{
    start_frame(dec);
}

/* Checks, in a fixed order shared with host/net/protocol.py, a complete body. */
static link_status_t finish_frame(const link_decoder_t *dec, link_frame_t *frame)
{
    const uint8_t *b = dec->buf;
    /* A DATA frame opens with 0x80 | link; a long header's version nibble is < 8. */
    int data = dec->len >= 1u && (b[0] & LINK_DATA_FLAG) != 0;
    uint8_t version, type, src, dst;
    uint16_t len;

    /* Both forms share the payload limit cap - 10 (cap >= MIN_FRAME, so no wrap). */
    if (dec->overflow ||
        (data && dec->len > dec->cap - (LINK_HEADER_LEN - LINK_DATA_HEADER_LEN))) {
        return LINK_ERR_OVERSIZE;
    }
    if (!link_cobs_decoder_complete(&dec->cobs) ||
        dec->len < (data ? MIN_DATA_FRAME : MIN_FRAME)) {
        return LINK_ERR_TRUNCATED;
    }
    if (dec->crc != 0) {
        return LINK_ERR_CRC;
    }
    if (data) {
        /* Short form: no version, length or destination to check. */
        frame->hdr.type = LINK_TYPE_DATA;
        frame->hdr.src = LINK_NODE_IMPLIED;
        frame->hdr.dst = LINK_NODE_IMPLIED;
        frame->hdr.link = (uint8_t)(b[0] & LINK_DATA_LINK_MAX);
        frame->hdr.seq = b[1]; /* the low byte as sent: see link_seq_expand */
        frame->payload = &b[LINK_DATA_HEADER_LEN];
        frame->len = (uint16_t)(dec->len - (LINK_DATA_HEADER_LEN + LINK_CRC_LEN));
        return LINK_FRAME_READY;
    }
    /* The CRC holds, so the header can be trusted as sent. */
    version = (uint8_t)(b[0] >> 4);
    type = (uint8_t)(b[0] & 0x0Fu);
    src = b[1];
    dst = b[2];
    len = get_u16(&b[6]);
    if (version != LINK_VERSION) {
        return LINK_ERR_VERSION;
    }
    if (!link_type_is_known(type) || type == LINK_TYPE_DATA) {
        return LINK_ERR_TYPE; /* DATA is only valid in its short form */
    }
    if ((size_t)len != dec->len - MIN_FRAME) {
        return LINK_ERR_LENGTH;
    }
    if (dec->local_node != LINK_NODE_ANY && dst != dec->local_node &&
        dst != LINK_NODE_BROADCAST) {
        return LINK_ERR_DEST;
    }
    frame->hdr.type = type;
    frame->hdr.src = src;
    frame->hdr.dst = dst;
    frame->hdr.link = b[3];
    frame->hdr.seq = get_u16(&b[4]);
    frame->payload = &b[LINK_HEADER_LEN];
    frame->len = len;
    return LINK_FRAME_READY;
}

link_status_t link_decoder_push(link_decoder_t *dec, uint8_t byte, link_frame_t *frame)
{
    link_status_t st;
    uint8_t out;

    if (byte != 0x00) {
        if (!dec->overflow && link_cobs_decoder_step(&dec->cobs, byte, &out)) {
            if (dec->len >= dec->cap) {
                dec->overflow = 1; /* drop the rest of this frame, keep no state */
            } else {
                dec->buf[dec->len++] = out;
                dec->crc = link_crc16_byte(dec->crc, out);
            }
        }
        return LINK_NEED_MORE;
    }

    /* Delimiter.  An empty body (0x00 0x00) is idle fill, not an error. */
    if (dec->cobs.code == 0 && !dec->overflow) {
        return LINK_NEED_MORE;
    }
    st = finish_frame(dec, frame);
    start_frame(dec); /* buf is only overwritten by the next non-zero byte */
    link_count(&dec->counters, st);
    return st;
}

/* ---- Sequence filter ----------------------------------------------------- */

int32_t link_seq_diff(uint16_t a, uint16_t b)
{
    uint16_t d = (uint16_t)(a - b);
    return d < 0x8000u ? (int32_t)d : (int32_t)d - 0x10000;
}

uint16_t link_seq_expand(uint16_t ref, uint8_t seq8)
{
    /* Distance from ref to the nearest number with this low byte, in -128..127. */
    uint8_t d = (uint8_t)(seq8 - (ref & 0xFFu));
    return (uint16_t)(d < 0x80u ? ref + d : ref + d - 0x100u);
}

void link_seq_filter_init(link_seq_filter_t *f)
{
    f->last = 0;
    f->valid = 0;
}

link_status_t link_seq_filter_check(link_seq_filter_t *f, uint16_t seq)
{
    int32_t d;

    if (f->valid) {
        d = link_seq_diff(seq, f->last);
        if (d == 0) {
            return LINK_ERR_DUPLICATE;
        }
        if (d < 0 && d >= -(int32_t)LINK_SEQ_STALE_WINDOW) {
            return LINK_ERR_STALE;
        }
        /* d > 0: newer.  d far below the window: the sender restarted its
         * numbering (e.g. host restart), so follow it instead of dropping
         * up to 32768 samples. */
    }
    f->last = seq;
    f->valid = 1;
    return LINK_OK;
}

/* ---- Payload helpers ------------------------------------------------------ */

void link_cycles_pack(uint32_t cycles, uint8_t out[LINK_CYCLES_LEN])
{
    put_u32(out, cycles);
}

link_status_t link_sample_unpack(const uint8_t *payload, size_t len, uint32_t *cycles,
                                 const uint8_t **tensor, size_t *tensor_len)
{
    if (payload == NULL || cycles == NULL || tensor == NULL || tensor_len == NULL) {
        return LINK_ERR_ARG;
    }
    if (len < LINK_CYCLES_LEN) {
        return LINK_ERR_LENGTH;
    }
    *cycles = get_u32(payload);
    *tensor = payload + LINK_CYCLES_LEN;
    *tensor_len = len - LINK_CYCLES_LEN;
    return LINK_OK;
}

void link_hello_pack(const link_hello_t *h, uint8_t out[LINK_HELLO_LEN])
{
    memcpy(out, h->model_hash, LINK_MODEL_HASH_LEN);
    out[8] = h->fw_major;
    out[9] = h->fw_minor;
    put_u16(&out[10], h->fw_patch);
    put_u32(&out[12], h->flash_bytes);
    put_u32(&out[16], h->arena_bytes);
    put_u32(&out[20], h->cpu_hz);
    out[24] = h->cycle_counter;
    out[25] = out[26] = out[27] = 0u; /* reserved */
}

link_status_t link_hello_unpack(const uint8_t *payload, size_t len, link_hello_t *h)
{
    if (payload == NULL || h == NULL) {
        return LINK_ERR_ARG;
    }
    if (len < LINK_HELLO_LEN) { /* longer is fine: fields added by later versions */
        return LINK_ERR_LENGTH;
    }
    memcpy(h->model_hash, payload, LINK_MODEL_HASH_LEN);
    h->fw_major = payload[8];
    h->fw_minor = payload[9];
    h->fw_patch = get_u16(&payload[10]);
    h->flash_bytes = get_u32(&payload[12]);
    h->arena_bytes = get_u32(&payload[16]);
    h->cpu_hz = get_u32(&payload[20]);
    h->cycle_counter = payload[24];
    return LINK_OK;
}

void link_stats_pack(const link_stats_t *s, uint8_t out[LINK_STATS_LEN])
{
    size_t i;
    for (i = 0; i < LINK_STAT_COUNT; i++) {
        put_u32(&out[4u * i], s->value[i]);
    }
}

link_status_t link_stats_unpack(const uint8_t *payload, size_t len, link_stats_t *s)
{
    size_t i;

    if (payload == NULL || s == NULL) {
        return LINK_ERR_ARG;
    }
    if (len < LINK_STATS_LEN || len % 4u != 0) {
        return LINK_ERR_LENGTH;
    }
    for (i = 0; i < LINK_STAT_COUNT; i++) {
        s->value[i] = get_u32(&payload[4u * i]);
    }
    return LINK_OK;
}

void link_stats_from_counters(link_stats_t *s, const link_counters_t *c)
{
    size_t i;

    s->value[LINK_STAT_RX_FRAMES] = c->count[LINK_FRAME_READY];
    /* STATS fields 2..10 follow the drop reasons LINK_ERR_TRUNCATED..STALE. */
    for (i = LINK_ERR_TRUNCATED; i <= LINK_ERR_STALE; i++) {
        s->value[LINK_STAT_RX_TRUNCATED + (i - LINK_ERR_TRUNCATED)] = c->count[i];
    }
}
