/* Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).
 *
 * A body is a sequence of blocks: a code byte c (1..255) followed by c-1
 * non-zero data bytes; a block with c < 255 stands for its data plus one 0x00,
 * except the last block of the body, whose 0x00 is implied by the frame end.
 * A full block (c = 255, 254 data bytes) carries no 0x00, so a body that ends
 * right after one needs no extra 0x01 block (the variant on Wikipedia and in
 * most libraries).  Worst case: ceil(n / 254) code bytes for n >= 1 bytes. */
#include "link_protocol.h"

#define COBS_MAX_RUN 254u

/* Reads the concatenation of a chunk list one byte at a time. */
typedef struct {
    const link_chunk_t *chunks;
    size_t n_chunks;
    size_t idx;
    size_t off;
} chunk_cursor_t;

static int cursor_next(chunk_cursor_t *c, uint8_t *byte)
{
    while (c->idx < c->n_chunks) {
        if (c->off < c->chunks[c->idx].len) {
            *byte = c->chunks[c->idx].data[c->off++];
            return 1;
        }
        c->idx++;
        c->off = 0;
    }
    return 0;
}

int link_buffer_put(void *ctx, uint8_t byte)
{
    link_buffer_t *b = (link_buffer_t *)ctx;
    if (b->len >= b->cap) {
        return 1;
    }
    b->data[b->len++] = byte;
    return 0;
}

link_status_t link_cobs_encode_chunks(const link_chunk_t *chunks, size_t n_chunks,
                                      link_put_fn put, void *ctx)
{
    chunk_cursor_t cur = {0};
    size_t i;

    if (put == NULL || (chunks == NULL && n_chunks != 0)) {
        return LINK_ERR_ARG;
    }
    for (i = 0; i < n_chunks; i++) {
        if (chunks[i].data == NULL && chunks[i].len != 0) {
            return LINK_ERR_ARG;
        }
    }
    cur.chunks = chunks;
    cur.n_chunks = n_chunks;

    for (;;) {
        /* The code byte precedes its block, so look ahead (on a copy of the
         * cursor) for the length of the run of non-zero bytes. */
        chunk_cursor_t ahead = cur;
        size_t run = 0;
        int ended_by_zero = 0;
        int at_end = 0;
        uint8_t b = 0;

        while (run < COBS_MAX_RUN) {
            if (!cursor_next(&ahead, &b)) {
                at_end = 1;
                break;
            }
            if (b == 0) {
                ended_by_zero = 1;
                break;
            }
            run++;
        }

        if (put(ctx, (uint8_t)(run + 1u)) != 0) {
            return LINK_ERR_NO_SPACE;
        }
        while (run-- > 0) {
            (void)cursor_next(&cur, &b);
            if (put(ctx, b) != 0) {
                return LINK_ERR_NO_SPACE;
            }
        }
        if (ended_by_zero) {
            (void)cursor_next(&cur, &b); /* the 0x00 is implied by the block */
            continue;                    /* even at the end: a final 0x01 block follows */
        }
        if (at_end) {
            return LINK_OK;
        }
        /* Full 254-byte block: stop if nothing follows it. */
        ahead = cur;
        if (!cursor_next(&ahead, &b)) {
            return LINK_OK;
        }
    }
}

link_status_t link_cobs_encode(const uint8_t *in, size_t len, uint8_t *out,
                               size_t out_cap, size_t *out_len)
{
    link_chunk_t chunk;
    link_buffer_t sink;
    link_status_t st;

    if ((in == NULL && len != 0) || out == NULL || out_len == NULL) {
        return LINK_ERR_ARG;
    }
    chunk.data = in;
    chunk.len = len;
    sink.data = out;
    sink.cap = out_cap;
    sink.len = 0;
    st = link_cobs_encode_chunks(&chunk, 1, link_buffer_put, &sink);
    *out_len = sink.len;
    return st;
}

void link_cobs_decoder_init(link_cobs_decoder_t *cd)
{
    cd->code = 0;
    cd->left = 0;
}

int link_cobs_decoder_step(link_cobs_decoder_t *cd, uint8_t in, uint8_t *out)
{
    if (cd->left == 0) {
        /* `in` is a code byte.  The previous block's 0x00 is emitted only now,
         * because a block that turns out to be the last one has none. */
        int emit_zero = (cd->code != 0 && cd->code != 0xFFu);
        cd->code = in;
        cd->left = (uint8_t)(in - 1u);
        if (emit_zero) {
            *out = 0;
            return 1;
        }
        return 0;
    }
    cd->left--;
    *out = in;
    return 1;
}

int link_cobs_decoder_complete(const link_cobs_decoder_t *cd)
{
    return cd->code != 0 && cd->left == 0;
}

link_status_t link_cobs_decode(const uint8_t *in, size_t len, uint8_t *out,
                               size_t out_cap, size_t *out_len)
{
    link_cobs_decoder_t cd;
    size_t i;
    size_t n = 0;
    uint8_t b;

    if ((in == NULL && len != 0) || (out == NULL && out_cap != 0) || out_len == NULL) {
        return LINK_ERR_ARG;
    }
    *out_len = 0;
    link_cobs_decoder_init(&cd);
    for (i = 0; i < len; i++) {
        if (in[i] == 0) {
            return LINK_ERR_ARG;
        }
        if (link_cobs_decoder_step(&cd, in[i], &b)) {
            if (n >= out_cap) {
                return LINK_ERR_NO_SPACE;
            }
            out[n++] = b;
        }
    }
    *out_len = n;
    return link_cobs_decoder_complete(&cd) ? LINK_OK : LINK_ERR_TRUNCATED;
}
