/* Host-side check of the C link codec against the shared test vectors.
 *
 * tests/test_protocol.py turns tests/vectors/protocol_vectors.json into the
 * line format below (so this program needs no JSON parser), builds this file
 * with the host gcc and runs it.  Hex fields use "-" for empty.
 *
 *   K <name> <value>                          constant / enum value
 *   C <name> <data_hex> <crc>                 CRC-16 known answer
 *   B <name> <raw_hex> <encoded_hex>          COBS known answer (no delimiter)
 *   F <name> <type> <src> <dst> <link> <seq> <payload_hex> <encoded_hex>
 *                                             (DATA: src = dst = 257, seq = its low byte,
 *                                             i.e. the frame as the decoder returns it)
 *   M <name> <local_node> <bytes_hex> <outcome>[,<outcome>...] <max_payload>
 *                                             decoder cap = 7 + max_payload + 2; the
 *                                             outcome list is empty if no frame ends
 *   S <name> <src>:<link>:<seq>:<expect> ...  sequence filter walk
 *   E <ref> <seq8> <expect>                   link_seq_expand known answer
 *   H <hash_hex> <major> <minor> <patch> <flash> <arena> <hz> <payload_hex>
 *   T <payload_hex> <value> ...               STATS counters
 *   Y <cycles> <tensor_hex> <payload_hex>     RESULT payload (cycles + tensor)
 *
 * Prints "ok ..." with per-kind counts and exits 0, or prints every failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../link_protocol.h"

#define LINE_MAX_LEN (1u << 16)
#define BIN_MAX (LINE_MAX_LEN / 2u)

static char line[LINE_MAX_LEN];
static uint8_t bin_a[BIN_MAX], bin_b[BIN_MAX], work[BIN_MAX], dec_buf[LINK_RAW_MAX];
static int failures;

static void fail(const char *name, const char *what)
{
    fprintf(stderr, "FAIL %s: %s\n", name, what);
    failures++;
}

static size_t parse_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned v;
    if (hex == NULL || strcmp(hex, "-") == 0) {
        return 0;
    }
    while (hex[0] && hex[1] && n < cap && sscanf(hex, "%2x", &v) == 1) {
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

static const char *tok(void)
{
    const char *t = strtok(NULL, " \n");
    return t ? t : "";
}

static long num(void)
{
    return strtol(tok(), NULL, 0);
}

/* ---- K: constants must agree both ways ----------------------------------- */

typedef struct {
    const char *name;
    long value;
    int seen;
} constant_t;

static constant_t constants[] = {
    {"VERSION", LINK_VERSION, 0},
    {"HEADER_LEN", LINK_HEADER_LEN, 0},
    {"DATA_HEADER_LEN", LINK_DATA_HEADER_LEN, 0},
    {"DATA_FLAG", LINK_DATA_FLAG, 0},
    {"DATA_LINK_MAX", LINK_DATA_LINK_MAX, 0},
    {"CRC_LEN", LINK_CRC_LEN, 0},
    {"MAX_PAYLOAD", LINK_MAX_PAYLOAD, 0},
    {"CYCLES_LEN", LINK_CYCLES_LEN, 0},
    {"NODE_HOST", LINK_NODE_HOST, 0},
    {"NODE_MAX", LINK_NODE_MAX, 0},
    {"NODE_BROADCAST", LINK_NODE_BROADCAST, 0},
    {"NODE_ANY", LINK_NODE_ANY, 0},
    {"NODE_IMPLIED", LINK_NODE_IMPLIED, 0},
    {"LINK_NONE", LINK_NONE, 0},
    {"SEQ_STALE_WINDOW", LINK_SEQ_STALE_WINDOW, 0},
    {"HELLO_LEN", LINK_HELLO_LEN, 0},
    {"STATS_LEN", LINK_STATS_LEN, 0},
    {"TYPE_HELLO", LINK_TYPE_HELLO, 0},
    {"TYPE_STATS", LINK_TYPE_STATS, 0},
    {"TYPE_DATA", LINK_TYPE_DATA, 0},
    {"TYPE_LINK_DOWN", LINK_TYPE_LINK_DOWN, 0},
    {"TYPE_RESULT", LINK_TYPE_RESULT, 0},
    {"TYPE_PING", LINK_TYPE_PING, 0},
    {"TYPE_PONG", LINK_TYPE_PONG, 0},
    {"TYPE_RESET", LINK_TYPE_RESET, 0},
    {"TYPE_ERROR", LINK_TYPE_ERROR, 0},
    {"STATUS_OK", LINK_OK, 0},
    {"STATUS_NEED_MORE", LINK_NEED_MORE, 0},
    {"STATUS_FRAME_READY", LINK_FRAME_READY, 0},
    {"STATUS_TRUNCATED", LINK_ERR_TRUNCATED, 0},
    {"STATUS_OVERSIZE", LINK_ERR_OVERSIZE, 0},
    {"STATUS_CRC", LINK_ERR_CRC, 0},
    {"STATUS_VERSION", LINK_ERR_VERSION, 0},
    {"STATUS_TYPE", LINK_ERR_TYPE, 0},
    {"STATUS_LENGTH", LINK_ERR_LENGTH, 0},
    {"STATUS_DEST", LINK_ERR_DEST, 0},
    {"STATUS_DUPLICATE", LINK_ERR_DUPLICATE, 0},
    {"STATUS_STALE", LINK_ERR_STALE, 0},
    {"STATUS_ARG", LINK_ERR_ARG, 0},
    {"STATUS_NO_SPACE", LINK_ERR_NO_SPACE, 0},
    {"LINK_DOWN_UNSPECIFIED", LINK_DOWN_UNSPECIFIED, 0},
    {"LINK_DOWN_TIMEOUT", LINK_DOWN_TIMEOUT, 0},
    {"LINK_DOWN_UPSTREAM", LINK_DOWN_UPSTREAM, 0},
    {"LINK_DOWN_NODE_FAILED", LINK_DOWN_NODE_FAILED, 0},
};
#define N_CONSTANTS (sizeof constants / sizeof constants[0])

static void check_constant(void)
{
    const char *name = tok();
    long value = num();
    size_t i;
    for (i = 0; i < N_CONSTANTS; i++) {
        if (strcmp(constants[i].name, name) == 0) {
            constants[i].seen = 1;
            if (constants[i].value != value) {
                fail(name, "value differs from link_protocol.h");
            }
            return;
        }
    }
    fail(name, "constant unknown to the C side");
}

/* ---- C, B: CRC and COBS known answers ------------------------------------- */

static void check_crc(void)
{
    char name[128];
    size_t n;
    long want;
    snprintf(name, sizeof name, "crc16/%s", tok());
    n = parse_hex(tok(), bin_a, BIN_MAX);
    want = num();
    if (link_crc16_update(LINK_CRC16_INIT, bin_a, n) != (uint16_t)want) {
        fail(name, "CRC mismatch");
    }
}

static void check_cobs(void)
{
    char name[128];
    size_t raw_n, enc_n, out_n = 0;
    snprintf(name, sizeof name, "cobs/%s", tok());
    raw_n = parse_hex(tok(), bin_a, BIN_MAX);
    enc_n = parse_hex(tok(), bin_b, BIN_MAX);
    if (link_cobs_encode(bin_a, raw_n, work, BIN_MAX, &out_n) != LINK_OK || out_n != enc_n ||
        memcmp(work, bin_b, enc_n) != 0) {
        fail(name, "encode differs");
    }
    if (link_cobs_decode(bin_b, enc_n, work, BIN_MAX, &out_n) != LINK_OK || out_n != raw_n ||
        memcmp(work, bin_a, raw_n) != 0) {
        fail(name, "decode differs");
    }
}

/* ---- F: frames encode byte for byte and decode back ------------------------ */

/* DATA (short form): src, dst and the high byte of seq are not sent; link
 * must be 0..LINK_DATA_LINK_MAX and the tensor 1..LINK_MAX_PAYLOAD bytes.
 * bin_a holds the tensor (len bytes), bin_b the expected encoding. */
static void check_data_encoder(const char *name, const link_header_t *hdr, size_t len, size_t enc_n)
{
    static uint8_t big[LINK_MAX_PAYLOAD + 1u];
    link_header_t h = *hdr;
    link_buffer_t sink;
    size_t out_n = 0;

    h.src = 3;
    h.dst = 12;
    h.seq = (uint16_t)(0xAB00u | (hdr->seq & 0xFFu));
    if (link_encode(&h, bin_a, len, work, BIN_MAX, &out_n) != LINK_OK || out_n != enc_n ||
        memcmp(work, bin_b, enc_n) != 0) {
        fail(name, "DATA encoding depends on src, dst or the high byte of seq");
    }
    h.link = LINK_DATA_LINK_MAX + 1u;
    if (link_encode(&h, bin_a, len, work, BIN_MAX, &out_n) != LINK_ERR_ARG) {
        fail(name, "DATA with link > LINK_DATA_LINK_MAX was not refused");
    }
    h.link = hdr->link;
    sink.data = work;
    sink.cap = BIN_MAX;
    sink.len = 0;
    if (link_encode(&h, bin_a, 0, work, BIN_MAX, &out_n) != LINK_ERR_ARG ||
        link_encode_stream(&h, NULL, 0, link_buffer_put, &sink) != LINK_ERR_ARG || sink.len != 0) {
        fail(name, "empty DATA frame was not refused");
    }
    if (link_encode(&h, big, sizeof big, work, BIN_MAX, &out_n) != LINK_ERR_ARG) {
        fail(name, "DATA with a tensor over LINK_MAX_PAYLOAD was not refused");
    }
}

static void check_frame(void)
{
    char name[128];
    link_header_t hdr;
    link_decoder_t dec;
    link_frame_t frame;
    link_chunk_t chunks[3];
    link_buffer_t sink;
    size_t len, enc_n, out_n = 0, i, header_len;
    int ready = 0;

    snprintf(name, sizeof name, "frame/%s", tok());
    hdr.type = (uint8_t)num();
    hdr.src = (uint16_t)num();
    hdr.dst = (uint16_t)num();
    hdr.link = (uint8_t)num();
    hdr.seq = (uint16_t)num();
    len = parse_hex(tok(), bin_a, BIN_MAX);
    enc_n = parse_hex(tok(), bin_b, BIN_MAX);
    header_len = hdr.type == LINK_TYPE_DATA ? LINK_DATA_HEADER_LEN : LINK_HEADER_LEN;

    if (link_encode(&hdr, bin_a, len, work, LINK_ENCODED_MAX(len), &out_n) != LINK_OK ||
        out_n != enc_n || memcmp(work, bin_b, enc_n) != 0) {
        fail(name, "link_encode differs from the vector");
    }
    if (enc_n > LINK_ENCODED_MAX(len)) {
        fail(name, "longer than LINK_ENCODED_MAX");
    }
    if (link_encode(&hdr, bin_a, len, work, enc_n - 1, &out_n) != LINK_ERR_NO_SPACE) {
        fail(name, "a one-byte-short buffer was not refused");
    }

    /* The streaming encoder with the payload gathered from three pieces. */
    chunks[0].data = bin_a;
    chunks[0].len = len / 3;
    chunks[1].data = bin_a + len / 3;
    chunks[1].len = len / 3;
    chunks[2].data = bin_a + 2 * (len / 3);
    chunks[2].len = len - 2 * (len / 3);
    sink.data = work;
    sink.cap = BIN_MAX;
    sink.len = 0;
    if (link_encode_stream(&hdr, chunks, 3, link_buffer_put, &sink) != LINK_OK ||
        sink.len != enc_n || memcmp(work, bin_b, enc_n) != 0) {
        fail(name, "link_encode_stream differs from the vector");
    }
    if (hdr.type == LINK_TYPE_DATA) {
        check_data_encoder(name, &hdr, len, enc_n);
    }

    link_decoder_init(&dec, dec_buf, sizeof dec_buf, LINK_NODE_ANY);
    for (i = 0; i < enc_n; i++) {
        link_status_t st = link_decoder_push(&dec, bin_b[i], &frame);
        if (st == LINK_FRAME_READY && i == enc_n - 1) {
            ready = 1;
        } else if (st != LINK_NEED_MORE) {
            fail(name, link_status_name(st));
        }
    }
    if (!ready) {
        fail(name, "decoder returned no frame");
    } else if (frame.hdr.type != hdr.type || frame.hdr.src != hdr.src || frame.hdr.dst != hdr.dst ||
               frame.hdr.link != hdr.link || frame.hdr.seq != hdr.seq || frame.len != len ||
               memcmp(frame.payload, bin_a, len) != 0) {
        fail(name, "decoded frame differs");
    }
    if (link_cobs_decode(bin_b, enc_n - 1, work, BIN_MAX, &out_n) != LINK_OK ||
        out_n != header_len + len + LINK_CRC_LEN ||
        link_crc16_update(LINK_CRC16_INIT, work, out_n) != 0) {
        fail(name, "unstuffed frame does not end in its CRC");
    }
}

/* ---- M: malformed input and streams --------------------------------------- */

static void check_stream(void)
{
    char name[160], got[1024] = "";
    link_decoder_t dec;
    link_frame_t frame;
    uint16_t local;
    char none[1] = "", *want, *last;
    long max_payload = (long)LINK_MAX_PAYLOAD;
    size_t n, i, outcomes = 0, cap;
    uint32_t counted = 0;

    snprintf(name, sizeof name, "stream/%s", tok());
    local = (uint16_t)num();
    n = parse_hex(tok(), bin_a, BIN_MAX);
    /* "<outcomes> <max_payload>": the outcome list may be empty (a stream that
     * completes no frame), so split at the last space instead of with strtok,
     * which would merge the two spaces around an empty field. */
    want = strtok(NULL, "\n");
    if (want == NULL) {
        want = none;
    }
    last = strrchr(want, ' ');
    if (last != NULL) {
        *last = '\0';
        max_payload = strtol(last + 1, NULL, 0);
    }
    if (max_payload < 0 || max_payload > (long)LINK_MAX_PAYLOAD) {
        fail(name, "max_payload out of range");
        return;
    }
    cap = LINK_HEADER_LEN + (size_t)max_payload + LINK_CRC_LEN;
    if (link_decoder_init(&dec, dec_buf, cap, local) != LINK_OK) {
        fail(name, "link_decoder_init refused the capacity");
        return;
    }
    for (i = 0; i < n; i++) {
        link_status_t st = link_decoder_push(&dec, bin_a[i], &frame);
        if (st == LINK_NEED_MORE) {
            continue;
        }
        outcomes++;
        if (strlen(got) + 16 < sizeof got) {
            strcat(got, got[0] ? "," : "");
            strcat(got, link_status_name(st));
        }
        if (st == LINK_FRAME_READY) {
            size_t header_len =
                frame.hdr.type == LINK_TYPE_DATA ? LINK_DATA_HEADER_LEN : LINK_HEADER_LEN;
            if (frame.len > (size_t)max_payload || frame.payload != dec_buf + header_len ||
                link_crc16_update(LINK_CRC16_INIT, dec_buf,
                                  header_len + frame.len + LINK_CRC_LEN) != 0) {
                fail(name, "returned a frame with a bad CRC or length");
            }
        }
    }
    for (i = 0; i < LINK_STATUS_COUNT; i++) {
        counted += dec.counters.count[i];
    }
    if (strcmp(got, want) != 0) {
        char msg[1200];
        snprintf(msg, sizeof msg, "outcomes %s, expected %s", got, want);
        fail(name, msg);
    }
    if (counted != outcomes) {
        fail(name, "counters do not add up to the outcomes");
    }
}

/* ---- S: sequence filter walk --------------------------------------------- */

static void check_seq(void)
{
    char name[128];
    struct {
        unsigned src, link;
        link_seq_filter_t f;
    } table[32];
    size_t used = 0, i;
    const char *step;

    snprintf(name, sizeof name, "seq/%s", tok());
    while ((step = strtok(NULL, " \n")) != NULL) {
        unsigned src, link, seq;
        char expect[32];
        link_status_t st;
        if (sscanf(step, "%u:%u:%u:%31s", &src, &link, &seq, expect) != 4) {
            fail(name, "bad step");
            return;
        }
        for (i = 0; i < used && (table[i].src != src || table[i].link != link); i++) {
        }
        if (i == used) {
            if (used == 32) {
                fail(name, "too many (src, link) pairs");
                return;
            }
            table[used].src = src;
            table[used].link = link;
            link_seq_filter_init(&table[used].f);
            used++;
        }
        st = link_seq_filter_check(&table[i].f, (uint16_t)seq);
        if (strcmp(link_status_name(st), expect) != 0) {
            char msg[128];
            snprintf(msg, sizeof msg, "step %s gave %s", step, link_status_name(st));
            fail(name, msg);
        }
    }
}

/* ---- E: sequence number expansion ----------------------------------------- */

static void check_expand(void)
{
    long ref = num(), seq8 = num(), want = num();
    char msg[96];
    uint16_t got = link_seq_expand((uint16_t)ref, (uint8_t)seq8);
    if (got != (uint16_t)want) {
        snprintf(msg, sizeof msg, "ref %ld seq8 %ld gave %u, expected %ld", ref, seq8,
                 (unsigned)got, want);
        fail("expand", msg);
    }
}

/* ---- H, T, Y: payload helpers -------------------------------------------- */

static void check_hello(void)
{
    link_hello_t h, back;
    uint8_t out[LINK_HELLO_LEN];
    size_t n;
    memset(&h, 0, sizeof h);
    parse_hex(tok(), h.model_hash, sizeof h.model_hash);
    h.fw_major = (uint8_t)num();
    h.fw_minor = (uint8_t)num();
    h.fw_patch = (uint16_t)num();
    h.flash_bytes = (uint32_t)num();
    h.arena_bytes = (uint32_t)num();
    h.cpu_hz = (uint32_t)num();
    h.cycle_counter = (uint8_t)num();
    n = parse_hex(tok(), bin_a, BIN_MAX);
    memset(&back, 0, sizeof back);
    link_hello_pack(&h, out);
    if (n != LINK_HELLO_LEN || memcmp(out, bin_a, n) != 0) {
        fail("payload/hello", "pack differs");
    }
    if (link_hello_unpack(bin_a, n, &back) != LINK_OK || memcmp(&back, &h, sizeof h) != 0 ||
        link_hello_unpack(bin_a, n - 1, &back) != LINK_ERR_LENGTH) {
        fail("payload/hello", "unpack differs");
    }
}

static void check_stats(void)
{
    link_stats_t s, back;
    uint8_t out[LINK_STATS_LEN];
    size_t n = parse_hex(tok(), bin_a, BIN_MAX), i;
    for (i = 0; i < LINK_STAT_COUNT; i++) {
        s.value[i] = (uint32_t)num();
    }
    link_stats_pack(&s, out);
    if (n != LINK_STATS_LEN || memcmp(out, bin_a, n) != 0) {
        fail("payload/stats", "pack differs");
    }
    if (link_stats_unpack(bin_a, n, &back) != LINK_OK || memcmp(&back, &s, sizeof s) != 0) {
        fail("payload/stats", "unpack differs");
    }
    /* Counters of a later version are ignored; a short payload is refused. */
    memset(bin_a + n, 0xEE, 4);
    if (n < 4u || link_stats_unpack(bin_a, n + 4u, &back) != LINK_OK || memcmp(&back, &s, sizeof s) != 0 ||
        link_stats_unpack(bin_a, n - 4u, &back) != LINK_ERR_LENGTH) {
        fail("payload/stats", "unpack of a longer or shorter payload");
    }
    /* The decoder's counters land in fields 0 and 2..10, the rest is untouched. */
    {
        link_counters_t c;
        link_stats_t t = s;
        memset(&c, 0, sizeof c);
        for (i = 0; i < LINK_STATUS_COUNT; i++) {
            c.count[i] = (uint32_t)(100u + i);
        }
        link_stats_from_counters(&t, &c);
        if (t.value[LINK_STAT_RX_FRAMES] != c.count[LINK_FRAME_READY] ||
            t.value[LINK_STAT_TX_FRAMES] != s.value[LINK_STAT_TX_FRAMES] ||
            t.value[LINK_STAT_RX_TRUNCATED] != c.count[LINK_ERR_TRUNCATED] ||
            t.value[LINK_STAT_RX_STALE] != c.count[LINK_ERR_STALE]) {
            fail("payload/stats", "link_stats_from_counters");
        }
        for (i = LINK_STAT_RX_OVERRUN; i < LINK_STAT_COUNT; i++) {
            if (t.value[i] != s.value[i]) {
                fail("payload/stats", "link_stats_from_counters wrote a node field");
            }
        }
    }
}

static void check_sample(void)
{
    uint32_t cycles = (uint32_t)strtoul(tok(), NULL, 0), got_cycles = 0;
    size_t tn = parse_hex(tok(), bin_a, BIN_MAX);
    size_t pn = parse_hex(tok(), bin_b, BIN_MAX);
    uint8_t prefix[LINK_CYCLES_LEN];
    const uint8_t *tensor = NULL;
    size_t tensor_len = 0;
    link_cycles_pack(cycles, prefix);
    if (pn != tn + LINK_CYCLES_LEN || memcmp(prefix, bin_b, LINK_CYCLES_LEN) != 0 ||
        memcmp(bin_a, bin_b + LINK_CYCLES_LEN, tn) != 0) {
        fail("payload/sample", "pack differs");
    }
    if (link_sample_unpack(bin_b, pn, &got_cycles, &tensor, &tensor_len) != LINK_OK ||
        got_cycles != cycles || tensor_len != tn || memcmp(tensor, bin_a, tn) != 0) {
        fail("payload/sample", "unpack differs");
    }
}

int main(int argc, char **argv)
{
    FILE *f;
    unsigned counts[128] = {0};
    size_t i;

    if (argc != 2 || (f = fopen(argv[1], "r")) == NULL) {
        fprintf(stderr, "usage: %s VECTORS.txt\n", argv[0]);
        return 2;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        const char *kind = strtok(line, " \n");
        if (kind == NULL || kind[1] != '\0') {
            continue;
        }
        counts[(unsigned char)kind[0] & 127u]++;
        switch (kind[0]) {
        case 'K': check_constant(); break;
        case 'C': check_crc(); break;
        case 'B': check_cobs(); break;
        case 'F': check_frame(); break;
        case 'M': check_stream(); break;
        case 'S': check_seq(); break;
        case 'E': check_expand(); break;
        case 'H': check_hello(); break;
        case 'T': check_stats(); break;
        case 'Y': check_sample(); break;
        default: fail(kind, "unknown line kind"); break;
        }
    }
    fclose(f);
    for (i = 0; i < N_CONSTANTS; i++) {
        if (!constants[i].seen) {
            fail(constants[i].name, "C constant missing from the vectors");
        }
    }
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("ok constants=%u crc=%u cobs=%u frames=%u streams=%u seq=%u expand=%u payloads=%u\n",
           counts['K'], counts['C'], counts['B'], counts['F'], counts['M'], counts['S'],
           counts['E'], counts['H'] + counts['T'] + counts['Y']);
    return 0;
}
