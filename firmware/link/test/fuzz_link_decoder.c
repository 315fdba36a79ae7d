/* Fuzz driver for the link frame decoder (host only; build with
 * -fsanitize=address,undefined -fno-sanitize-recover=all).
 *
 *   fuzz_link_decoder SEED ITERATIONS
 *
 * Each iteration builds a frame (valid, or with a bad version/type/length
 * field, or oversize; long-header frames and short-form DATA frames), mutates
 * it (bit flips, truncation, insertion, deletion, stray delimiters, splices,
 * random bytes), and feeds it byte by byte to a
 * decoder whose buffer is malloc'ed to its exact capacity, so that any access
 * outside it is caught by ASan.  Then "0x00 + a clean frame" is fed, which the
 * decoder must return intact whatever came before (resynchronisation).
 *
 * Checked for every frame the decoder returns, against the unstuffed length
 * the decoder had stored when the delimiter came: for a long-header frame, the
 * payload lies right after the header, the length field equals the received
 * length and is within limits, version and type are legal (DATA is not), and
 * the destination is acceptable; for a short-form DATA frame (first byte
 * 0x80 | link), the payload lies right after its 2-byte header, its length is
 * the received one (1 .. cap - 10), src/dst are LINK_NODE_IMPLIED and link and
 * seq are the bytes sent.  Both: the CRC is correct by an independent
 * bit-wise CRC.  Any violation aborts.  A summary of outcomes is printed on
 * success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../link_protocol.h"

#define INPUT_MAX (3u * LINK_RAW_MAX + 4096u)

static uint64_t rng_state;

static uint64_t rng(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t below(size_t n) /* uniform enough in [0, n) for n > 0 */
{
    return (size_t)(rng() % n);
}

static uint16_t ref_crc16(const uint8_t *p, size_t n) /* bit-wise reference */
{
    uint16_t crc = 0xFFFF;
    size_t i;
    int b;
    for (i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (b = 0; b < 8; b++) {
            crc = (crc & 0x8000u) ? (uint16_t)(((unsigned)crc << 1) ^ 0x1021u) : (uint16_t)((unsigned)crc << 1);
        }
    }
    return crc;
}

static void die(const char *what, uint64_t iter)
{
    fprintf(stderr, "fuzz FAILURE at iteration %llu: %s\n", (unsigned long long)iter, what);
    abort();
}

static size_t payload_len(void)
{
    size_t r = below(100);
    if (r < 70) return below(65);
    if (r < 90) return 65 + below(536);
    return 601 + below(LINK_MAX_PAYLOAD - 600);
}

/* Append the CRC to the unstuffed header + payload in raw, COBS, 0x00. */
static size_t finish_raw(uint8_t *raw, size_t n, uint8_t *out, size_t cap)
{
    size_t out_n = 0;
    uint16_t crc = ref_crc16(raw, n);
    raw[n] = (uint8_t)(crc >> 8);
    raw[n + 1] = (uint8_t)crc;
    if (link_cobs_encode(raw, n + LINK_CRC_LEN, out, cap - 1, &out_n) != LINK_OK) {
        die("encode_raw", 0);
    }
    out[out_n] = 0;
    return out_n + 1;
}

static uint8_t raw_frame[LINK_RAW_MAX + 256];

/* Encode long-header fields and payload with any values (CRC correct), COBS, 0x00. */
static size_t encode_raw(uint8_t version, uint8_t type, uint8_t src, uint8_t dst, uint8_t link,
                         uint16_t seq, uint16_t len_field, const uint8_t *payload, size_t n,
                         uint8_t *out, size_t cap)
{
    uint8_t *raw = raw_frame;
    raw[0] = (uint8_t)(((unsigned)version << 4) | (type & 0x0Fu));
    raw[1] = src;
    raw[2] = dst;
    raw[3] = link;
    raw[4] = (uint8_t)seq;
    raw[5] = (uint8_t)(seq >> 8);
    raw[6] = (uint8_t)len_field;
    raw[7] = (uint8_t)(len_field >> 8);
    memcpy(raw + LINK_HEADER_LEN, payload, n);
    return finish_raw(raw, LINK_HEADER_LEN + n, out, cap);
}

/* Encode a short-form DATA frame with any tensor length (0 and oversize too). */
static size_t encode_data_raw(uint8_t link, uint8_t seq8, const uint8_t *payload, size_t n,
                              uint8_t *out, size_t cap)
{
    uint8_t *raw = raw_frame;
    raw[0] = (uint8_t)(LINK_DATA_FLAG | (link & LINK_DATA_LINK_MAX));
    raw[1] = seq8;
    memcpy(raw + LINK_DATA_HEADER_LEN, payload, n);
    return finish_raw(raw, LINK_DATA_HEADER_LEN + n, out, cap);
}

/* A legal type of a long-header frame: any known type but DATA. */
static uint8_t long_type(void)
{
    uint8_t t = (uint8_t)(1 + below(LINK_TYPE_ERROR - 1));
    return t >= LINK_TYPE_DATA ? (uint8_t)(t + 1) : t;
}

/* Legal fields for link_encode; DATA (its short form) one time in three. */
static void random_header(link_header_t *h)
{
    h->type = below(3) == 0 ? (uint8_t)LINK_TYPE_DATA : long_type();
    h->src = (uint16_t)below(LINK_NODE_MAX + 1);
    h->dst = (uint16_t)below(LINK_NODE_BROADCAST + 1);
    h->link = (uint8_t)rng();
    if (h->type == LINK_TYPE_DATA) {
        h->link &= LINK_DATA_LINK_MAX;
    }
    h->seq = (uint16_t)rng();
}

typedef struct {
    size_t n;       /* encoded bytes, delimiter included */
    int valid;      /* built by link_encode: legal in every field */
    int data;       /* short-form DATA: accepted by every node */
    uint16_t dst;
    size_t payload; /* payload bytes */
} made_t;

/* A frame to mutate: mostly valid, sometimes with an illegal field. */
static made_t make_frame(uint8_t *out, size_t cap)
{
    static uint8_t payload[LINK_MAX_PAYLOAD + 64];
    link_header_t h;
    made_t m;
    size_t kind = below(24), i;
    int zeros = below(4) == 0; /* zero-rich payloads exercise short COBS blocks */

    random_header(&h);
    if (kind < 4) {
        h.type = long_type(); /* the long-header field errors */
    }
    m.n = 0;
    m.valid = kind >= 6;
    m.data = kind == 4 || kind == 5 || (m.valid && h.type == LINK_TYPE_DATA);
    m.dst = h.dst;
    m.payload = (kind == 3 || kind == 4) ? LINK_MAX_PAYLOAD + 1 + below(64)
                : kind == 5             ? 0
                                        : payload_len();
    if (m.valid && m.data && m.payload == 0) {
        m.payload = 1; /* a DATA frame carries at least one tensor byte */
    }
    for (i = 0; i < m.payload; i++) {
        payload[i] = zeros && below(3) == 0 ? 0 : (uint8_t)rng();
    }
    switch (kind) {
    case 0: /* any version; 8..15 make the first byte a DATA frame's */
        m.n = encode_raw((uint8_t)below(16), h.type, (uint8_t)h.src, (uint8_t)h.dst, h.link, h.seq, (uint16_t)m.payload, payload, m.payload, out, cap);
        break;
    case 1: /* any type, DATA in a long header included */
        m.n = encode_raw(LINK_VERSION, (uint8_t)below(16), (uint8_t)h.src, (uint8_t)h.dst, h.link, h.seq, (uint16_t)m.payload, payload, m.payload, out, cap);
        break;
    case 2:
        m.n = encode_raw(LINK_VERSION, h.type, (uint8_t)h.src, (uint8_t)h.dst, h.link, h.seq, (uint16_t)rng(), payload, m.payload, out, cap);
        break;
    case 3: /* oversize */
        m.n = encode_raw(LINK_VERSION, h.type, (uint8_t)h.src, (uint8_t)h.dst, h.link, h.seq, (uint16_t)m.payload, payload, m.payload, out, cap);
        break;
    case 4: /* oversize DATA */
    case 5: /* DATA without a tensor: truncated */
        m.n = encode_data_raw(h.link, (uint8_t)h.seq, payload, m.payload, out, cap);
        break;
    default:
        if (link_encode(&h, payload, m.payload, out, cap, &m.n) != LINK_OK) {
            die("link_encode refused a valid frame", 0);
        }
        break;
    }
    return m;
}

static size_t mutate(uint8_t *buf, size_t n, size_t cap)
{
    size_t op = below(9), pos, k, i;
    uint8_t other[LINK_ENCODED_MAX(LINK_MAX_PAYLOAD) + 256];
    switch (op) {
    case 0: /* bit flips */
        for (k = 1 + below(4); k > 0 && n > 0; k--) {
            buf[below(n)] ^= (uint8_t)(1u << below(8));
        }
        return n;
    case 1: /* random byte values */
        for (k = 1 + below(4); k > 0 && n > 0; k--) {
            buf[below(n)] = (uint8_t)rng();
        }
        return n;
    case 2: /* truncation */
        return n > 0 ? below(n) : 0;
    case 3: /* deletion of a run */
        if (n < 2) return n;
        pos = below(n);
        k = 1 + below(n - pos);
        memmove(buf + pos, buf + pos + k, n - pos - k);
        return n - k;
    case 4: /* insertion of random bytes */
        k = 1 + below(16);
        if (n + k > cap) return n;
        pos = below(n + 1);
        memmove(buf + pos + k, buf + pos, n - pos);
        for (i = 0; i < k; i++) buf[pos + i] = (uint8_t)rng();
        return n + k;
    case 5: /* stray delimiter */
        if (n > 0) buf[below(n)] = 0;
        return n;
    case 6: /* splice in (part of) another frame */
        k = below(make_frame(other, sizeof other).n + 1);
        if (n + k > cap) return n;
        pos = below(n + 1);
        memmove(buf + pos + k, buf + pos, n - pos);
        memcpy(buf + pos, other, k);
        return n + k;
    case 7: /* pure noise, no delimiter until the end */
        n = below(cap < 6000 ? cap : 6000);
        for (i = 0; i < n; i++) buf[i] = (uint8_t)(1 + below(255));
        return n;
    default: /* drop the delimiter: merges with what follows */
        return n > 0 && buf[n - 1] == 0 ? n - 1 : n;
    }
}

static uint64_t outcome_count[LINK_STATUS_COUNT];
static uint64_t mutants_with_frames; /* e.g. a splice inserted a whole frame */
static uint64_t clean_frames;
static uint64_t data_frames; /* short-form DATA frames returned */

static int dest_ok(uint16_t local, uint16_t dst)
{
    return local == LINK_NODE_ANY || dst == local || dst == LINK_NODE_BROADCAST;
}

/* `stored`: the unstuffed bytes the decoder held when the delimiter came. */
static void check_frame(const link_decoder_t *dec, const link_frame_t *f, size_t stored, uint64_t iter)
{
    const uint8_t *b = dec->buf;
    if (stored < 1 || stored > dec->cap) die("stored length beyond the buffer", iter);
    if (b[0] & LINK_DATA_FLAG) {
        if (f->hdr.type != LINK_TYPE_DATA) die("short form returned as another type", iter);
        if (f->payload != b + LINK_DATA_HEADER_LEN) die("DATA payload outside the buffer", iter);
        if (stored < LINK_DATA_HEADER_LEN + 1u + LINK_CRC_LEN ||
            (size_t)f->len != stored - (LINK_DATA_HEADER_LEN + LINK_CRC_LEN)) {
            die("DATA length differs from the received one", iter);
        }
        if (f->len < 1 || (size_t)f->len > dec->cap - (LINK_HEADER_LEN + LINK_CRC_LEN)) {
            die("DATA length beyond limits", iter);
        }
        if (f->hdr.src != LINK_NODE_IMPLIED || f->hdr.dst != LINK_NODE_IMPLIED) {
            die("DATA src/dst not LINK_NODE_IMPLIED", iter);
        }
        if (f->hdr.link > LINK_DATA_LINK_MAX || f->hdr.link != (b[0] & LINK_DATA_LINK_MAX) ||
            f->hdr.seq != b[1]) {
            die("DATA link/seq differ from the bytes sent", iter);
        }
        data_frames++;
    } else {
        size_t raw_n = LINK_HEADER_LEN + (size_t)f->len + LINK_CRC_LEN;
        if (f->payload != b + LINK_HEADER_LEN) die("payload outside the buffer", iter);
        if (raw_n != stored) die("length differs from the received one", iter);
        if (f->len > LINK_MAX_PAYLOAD || raw_n > dec->cap) die("length beyond limits", iter);
        if ((size_t)(b[6] | (b[7] << 8)) != f->len) die("length field differs", iter);
        if ((b[0] >> 4) != LINK_VERSION || !link_type_is_known(f->hdr.type) ||
            f->hdr.type == LINK_TYPE_DATA || f->hdr.type != (b[0] & 0x0Fu)) {
            die("bad version/type", iter);
        }
        if (f->hdr.src != b[1] || f->hdr.dst != b[2] || f->hdr.link != b[3] ||
            f->hdr.seq != (uint16_t)(b[4] | (b[5] << 8))) {
            die("header fields differ from the bytes sent", iter);
        }
        if (!dest_ok(dec->local_node, f->hdr.dst)) die("wrong destination accepted", iter);
    }
    if (ref_crc16(b, stored) != 0) die("frame with a bad CRC accepted", iter);
}

int main(int argc, char **argv)
{
    static uint8_t input[INPUT_MAX], original[INPUT_MAX], clean[LINK_ENCODED_MAX(LINK_MAX_PAYLOAD)];
    uint64_t iters, it, bytes = 0;
    size_t i;

    if (argc != 3) {
        fprintf(stderr, "usage: %s SEED ITERATIONS\n", argv[0]);
        return 2;
    }
    rng_state = strtoull(argv[1], NULL, 0);
    iters = strtoull(argv[2], NULL, 0);

    for (it = 0; it < iters; it++) {
        size_t cap = below(4) == 0 ? LINK_HEADER_LEN + LINK_CRC_LEN + below(LINK_RAW_MAX) : LINK_RAW_MAX;
        uint16_t local = below(3) == 0 ? (uint16_t)below(256) : LINK_NODE_ANY;
        uint8_t *buf;
        made_t made = make_frame(input, sizeof input);
        size_t n = made.n, clean_n, orig_n = made.n, k;
        int mutated = below(10) != 0;
        link_decoder_t dec;
        link_frame_t frame;
        link_header_t ch;
        link_status_t st = LINK_NEED_MORE;

        if (cap > LINK_RAW_MAX) cap = LINK_RAW_MAX;
        buf = (uint8_t *)malloc(cap);
        if (buf == NULL || link_decoder_init(&dec, buf, cap, local) != LINK_OK) die("init", it);
        memcpy(original, input, n);
        if (mutated) {
            for (k = 1 + below(3); k > 0; k--) n = mutate(input, n, sizeof input);
        }
        for (i = 0; i < n; i++) {
            size_t stored = dec.len;
            st = link_decoder_push(&dec, input[i], &frame);
            if (st >= LINK_STATUS_COUNT) die("status out of range", it);
            outcome_count[st]++;
            if (st == LINK_FRAME_READY) {
                check_frame(&dec, &frame, stored, it);
                if (n != orig_n || memcmp(input, original, n) != 0) mutants_with_frames++;
            }
        }
        bytes += n;
        /* An untouched legal frame that fits the buffer must come through. */
        /* (Both forms share the payload limit cap - 10; DATA ignores local.) */
        if (!mutated && made.valid && LINK_HEADER_LEN + made.payload + LINK_CRC_LEN <= cap &&
            (made.data || dest_ok(local, made.dst)) && st != LINK_FRAME_READY) {
            die("a valid frame was dropped", it);
        }

        /* Whatever came before, a delimiter and a clean frame must come through. */
        random_header(&ch);
        ch.dst = local == LINK_NODE_ANY ? ch.dst : local;
        if (ch.type == LINK_TYPE_DATA && cap == LINK_HEADER_LEN + LINK_CRC_LEN) {
            ch.type = long_type(); /* no room for a tensor byte */
        }
        {
            uint8_t payload[64];
            size_t room = cap - (LINK_HEADER_LEN + LINK_CRC_LEN); /* payload limit, both forms */
            size_t pn = below(room < 64 ? room + 1 : 64), stored = 0;
            int data = ch.type == LINK_TYPE_DATA;
            if (data && pn == 0) pn = 1;
            for (i = 0; i < pn; i++) payload[i] = (uint8_t)rng();
            if (link_encode(&ch, payload, pn, clean, sizeof clean, &clean_n) != LINK_OK) die("encode clean", it);
            (void)link_decoder_push(&dec, 0, &frame);
            for (i = 0; i < clean_n; i++) {
                stored = dec.len;
                st = link_decoder_push(&dec, clean[i], &frame);
                if ((st == LINK_NEED_MORE) != (i + 1 < clean_n)) die("clean frame: early outcome", it);
            }
            bytes += clean_n + 1;
            if (st != LINK_FRAME_READY) die(link_status_name(st), it);
            check_frame(&dec, &frame, stored, it);
            if (frame.len != pn || memcmp(frame.payload, payload, pn) != 0 || frame.hdr.type != ch.type ||
                frame.hdr.link != ch.link ||
                frame.hdr.seq != (data ? (uint16_t)(ch.seq & 0xFFu) : ch.seq) ||
                frame.hdr.src != (data ? LINK_NODE_IMPLIED : ch.src) ||
                frame.hdr.dst != (data ? LINK_NODE_IMPLIED : ch.dst)) {
                die("clean frame altered", it);
            }
            clean_frames++;
        }
        free(buf);
    }

    printf("iterations=%llu bytes=%llu", (unsigned long long)iters, (unsigned long long)bytes);
    for (i = LINK_FRAME_READY; i <= LINK_ERR_DEST; i++) {
        printf(" %s=%llu", link_status_name((link_status_t)i), (unsigned long long)outcome_count[i]);
    }
    printf(" data_frames=%llu mutants_with_frames=%llu resynced_clean_frames=%llu\n",
           (unsigned long long)data_frames, (unsigned long long)mutants_with_frames,
           (unsigned long long)clean_frames);
    return 0;
}
