/*
 * resilinet-mcu link protocol: framing of the messages that boards and the host
 * exchange over UARTs.  The specification is docs/protocol.md; host/net/protocol.py
 * implements the same wire format and both are checked against
 * tests/vectors/protocol_vectors.json.
 *
 * Frame on the wire:  COBS( header[8] | payload[len] | crc16_be[2] )  0x00
 * DATA (link tensors): COBS( 0x80|link | seq&0xFF | tensor | crc16_be[2] )  0x00
 * A DATA frame's source and destination are its link's ends and its length is
 * the frame's, so it carries 2 header bytes instead of 8 (docs/protocol.md §1).
 *
 * Freestanding C99: no heap, no stdio, only <stdint.h>, <stddef.h> and
 * <string.h>.  Every function works on caller-owned structs; nothing is static
 * or global except constant tables, so any number of links can be served
 * (one decoder per UART) and the code is reentrant.
 */
#ifndef LINK_PROTOCOL_H
#define LINK_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Wire constants ----------------------------------------------------- */

#define LINK_VERSION 3u          /* header version nibble this code speaks */
#define LINK_HEADER_LEN 8u       /* ver/type, src, dst, link, seq[2], len[2] */
#define LINK_DATA_HEADER_LEN 2u  /* DATA: 0x80 | link, seq & 0xFF */
#define LINK_DATA_FLAG 0x80u     /* first byte of a DATA frame (a version nibble is < 8) */
#define LINK_DATA_LINK_MAX 0x7Fu /* DATA frames serve links 0..127 */
#define LINK_CRC_LEN 2u          /* CRC-16/CCITT-FALSE, big-endian */
#define LINK_MAX_PAYLOAD 2048u   /* largest payload a conforming node must accept */
#define LINK_CYCLES_LEN 4u       /* u32 cycle count that opens a RESULT payload */

/* Decoded (unstuffed) size of the largest frame: size of a decoder buffer. */
#define LINK_RAW_MAX (LINK_HEADER_LEN + LINK_MAX_PAYLOAD + LINK_CRC_LEN)

/* Upper bound of the encoded size of a frame with `payload_len` payload bytes,
 * delimiter included: raw + ceil(raw / 254) COBS code bytes + 1. */
#define LINK_ENCODED_MAX(payload_len)                                         \
    ((LINK_HEADER_LEN + (payload_len) + LINK_CRC_LEN) +                       \
     ((LINK_HEADER_LEN + (payload_len) + LINK_CRC_LEN) + 253u) / 254u + 1u)

#define LINK_NODE_HOST 0u        /* the PC that routes frames between boards */
#define LINK_NODE_MAX 254u       /* boards are nodes 1..254 (one byte each, v3) */
#define LINK_NODE_BROADCAST 255u /* destination only: every node */
/* Not wire values (a node id byte uses all 256): decoder settings and decoded
 * fields are uint16_t so that these stay distinct from every id on the wire. */
#define LINK_NODE_ANY 0x100u     /* decoder setting: accept every destination (router) */
#define LINK_NODE_IMPLIED 0x101u /* src/dst of a decoded DATA frame: the link's ends */
#define LINK_NONE 0xFFu          /* link id of frames that belong to no link */

/* Duplicate/stale filter: a sequence number 1..LINK_SEQ_STALE_WINDOW behind
 * the last accepted one is stale; further behind is taken as a restart of the
 * sender's numbering (see docs/protocol.md, "Sequence numbers"). */
#define LINK_SEQ_STALE_WINDOW 256u

/* Frame types (4 bits).  0 and 10..15 are reserved and rejected. */
typedef enum {
    LINK_TYPE_HELLO = 1,     /* node identity; empty = request */
    LINK_TYPE_STATS = 2,     /* u32 counters; empty = request */
    LINK_TYPE_DATA = 3,      /* int8 link tensor of sample `seq`; sent only in the 2-byte-header form */
    LINK_TYPE_LINK_DOWN = 4, /* the tensor of sample `seq` on `link` will not come */
    LINK_TYPE_RESULT = 5,    /* u32 cycles + final output (class scores) */
    LINK_TYPE_PING = 6,      /* opaque payload, answered by PONG */
    LINK_TYPE_PONG = 7,      /* echoes the PING's seq and payload */
    LINK_TYPE_RESET = 8,     /* drop in-flight samples and sequence state */
    LINK_TYPE_ERROR = 9      /* u16 error code + optional ASCII text */
} link_type_t;

/* Status codes.  The values are part of the specification: they index
 * link_counters_t and are mirrored by LinkStatus in host/net/protocol.py. */
typedef enum {
    LINK_OK = 0,
    LINK_NEED_MORE = 1,       /* decoder: byte consumed, no frame yet */
    LINK_FRAME_READY = 2,     /* decoder: a valid frame is in *frame */
    /* Reasons for which a received frame is dropped (each one is counted). */
    LINK_ERR_TRUNCATED = 3,   /* ended inside a COBS block, or shorter than header + CRC */
    LINK_ERR_OVERSIZE = 4,    /* longer than the decoder buffer */
    LINK_ERR_CRC = 5,
    LINK_ERR_VERSION = 6,
    LINK_ERR_TYPE = 7,        /* reserved frame type */
    LINK_ERR_LENGTH = 8,      /* header length differs from the received payload */
    LINK_ERR_DEST = 9,        /* addressed to another node */
    LINK_ERR_DUPLICATE = 10,  /* sequence filter: same seq again */
    LINK_ERR_STALE = 11,      /* sequence filter: older than the last accepted */
    /* Caller errors (never produced by received bytes). */
    LINK_ERR_ARG = 12,        /* NULL pointer or field out of range */
    LINK_ERR_NO_SPACE = 13,   /* output buffer too small, or the sink refused a byte */
    LINK_STATUS_COUNT = 14
} link_status_t;

/* Why a LINK_DOWN was sent (its 1-byte payload). */
typedef enum {
    LINK_DOWN_UNSPECIFIED = 0,
    LINK_DOWN_TIMEOUT = 1,   /* the router gave up waiting for the producer */
    LINK_DOWN_UPSTREAM = 2,  /* the producer's own inputs were down */
    LINK_DOWN_NODE_FAILED = 3 /* the producer is known to be dead or resetting */
} link_down_reason_t;

/* ---- Frames --------------------------------------------------------------- */

typedef struct {
    uint8_t type;  /* link_type_t */
    uint16_t src;  /* 0..254; DATA: not sent (LINK_NODE_IMPLIED when decoded) */
    uint16_t dst;  /* 0..255 (255 = broadcast); DATA: not sent (LINK_NODE_IMPLIED when decoded) */
    uint8_t link;  /* link id, LINK_NONE when the frame is not about a link; DATA: 0..127 */
    uint16_t seq;  /* sample sequence number, modulo 2^16; DATA: only the low byte is sent
                    * and a decoded DATA frame holds that byte (see link_seq_expand) */
} link_header_t;

typedef struct {
    link_header_t hdr;
    const uint8_t *payload; /* points into the decoder buffer: valid until the next push */
    uint16_t len;
} link_frame_t;

/* A piece of payload: the encoder gathers pieces so that e.g. the cycle count
 * and the tensor of a DATA frame need not be copied into one buffer. */
typedef struct {
    const uint8_t *data;
    size_t len;
} link_chunk_t;

#define LINK_MAX_CHUNKS 4u

/* Byte sink of the streaming encoder (e.g. a UART TX ring).
 * Return 0 to continue, nonzero to abort the frame. */
typedef int (*link_put_fn)(void *ctx, uint8_t byte);

/* A ready-made sink that appends to a buffer: link_buffer_put(&buffer, byte). */
typedef struct {
    uint8_t *data;
    size_t cap;
    size_t len;
} link_buffer_t;

int link_buffer_put(void *ctx, uint8_t byte);

/* One counter per link_status_t: count[LINK_FRAME_READY] are good frames,
 * count[LINK_ERR_*] are drops by reason. */
typedef struct {
    uint32_t count[LINK_STATUS_COUNT];
} link_counters_t;

/* ---- CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0,
 *      check("123456789") = 0x29B1 ------------------------------------------- */

#define LINK_CRC16_INIT 0xFFFFu
uint16_t link_crc16_update(uint16_t crc, const uint8_t *data, size_t len);
uint16_t link_crc16_byte(uint16_t crc, uint8_t byte);

/* ---- COBS (Cheshire & Baker; a 254-byte run is not followed by a 0x01) ----- */

/* Encode the concatenation of `chunks` into `put`, without delimiter. */
link_status_t link_cobs_encode_chunks(const link_chunk_t *chunks, size_t n_chunks,
                                      link_put_fn put, void *ctx);
/* Encode `in` into `out`, without delimiter. */
link_status_t link_cobs_encode(const uint8_t *in, size_t len, uint8_t *out,
                               size_t out_cap, size_t *out_len);
/* Decode one frame body `in` (no 0x00 inside, no delimiter).  Returns
 * LINK_ERR_TRUNCATED if it ends inside a block, LINK_ERR_ARG if it holds 0x00. */
link_status_t link_cobs_decode(const uint8_t *in, size_t len, uint8_t *out,
                               size_t out_cap, size_t *out_len);

/* Incremental COBS decoder, fed with the non-zero bytes of one frame. */
typedef struct {
    uint8_t code; /* code byte of the current block, 0 before the first */
    uint8_t left; /* data bytes still to come in the current block */
} link_cobs_decoder_t;

void link_cobs_decoder_init(link_cobs_decoder_t *cd);
/* Feed one byte (must not be 0x00).  Returns 1 and sets *out when a decoded
 * byte results, else 0 (at most one byte comes out per byte in). */
int link_cobs_decoder_step(link_cobs_decoder_t *cd, uint8_t in, uint8_t *out);
/* 1 if the bytes fed so far end on a block boundary (a complete body). */
int link_cobs_decoder_complete(const link_cobs_decoder_t *cd);

/* ---- Frame encoder -------------------------------------------------------- */

/* Encode a frame into `out` (delimiter included).  `out_cap` of
 * LINK_ENCODED_MAX(len) always suffices. */
link_status_t link_encode(const link_header_t *hdr, const uint8_t *payload, size_t len,
                          uint8_t *out, size_t out_cap, size_t *out_len);

/* Encode a frame whose payload is the concatenation of up to LINK_MAX_CHUNKS
 * chunks, byte by byte into `put` (delimiter included).  Needs no frame buffer:
 * the payload is read twice (CRC pass, then stuffing pass). */
link_status_t link_encode_stream(const link_header_t *hdr, const link_chunk_t *chunks,
                                 size_t n_chunks, link_put_fn put, void *ctx);

/* ---- Frame decoder -------------------------------------------------------- */

typedef struct {
    uint8_t *buf;            /* caller's storage for one unstuffed frame */
    size_t cap;              /* LINK_RAW_MAX accepts every legal frame */
    size_t len;              /* unstuffed bytes of the current frame so far */
    link_cobs_decoder_t cobs;
    uint16_t crc;            /* running CRC; 0 after a correct trailing CRC */
    uint8_t overflow;        /* frame outgrew buf: skip to the next delimiter */
    uint16_t local_node;     /* our node id, or LINK_NODE_ANY */
    link_counters_t counters;
} link_decoder_t;

/* `cap` must be at least LINK_HEADER_LEN + LINK_CRC_LEN; frames with more
 * than cap - 10 payload bytes (DATA frames included) are dropped as
 * LINK_ERR_OVERSIZE (a cap above
 * LINK_RAW_MAX is used as LINK_RAW_MAX).  Frames for
 * other nodes are dropped (LINK_ERR_DEST) unless local_node is LINK_NODE_ANY;
 * broadcast frames are always accepted. */
link_status_t link_decoder_init(link_decoder_t *dec, uint8_t *buf, size_t cap,
                                uint16_t local_node);

/* Feed one received byte (dec and frame must be valid pointers).  Returns
 * LINK_NEED_MORE, LINK_FRAME_READY (frame filled in), or the LINK_ERR_* reason
 * a frame was dropped; the outcome is also counted in dec->counters.  Takes
 * constant time per byte, the delimiter included (the CRC is kept running), so
 * it may run in a UART interrupt.  Never reads or writes outside dec->buf. */
link_status_t link_decoder_push(link_decoder_t *dec, uint8_t byte, link_frame_t *frame);

/* Forget the partial frame (e.g. after a UART overrun); counters are kept. */
void link_decoder_resync(link_decoder_t *dec);

/* ---- Sequence filter: one per (source, link) a receiver listens to -------- */

typedef struct {
    uint16_t last; /* last accepted sequence number */
    uint8_t valid; /* 0 until the first frame is accepted */
} link_seq_filter_t;

void link_seq_filter_init(link_seq_filter_t *f);
/* LINK_OK (seq accepted and remembered), LINK_ERR_DUPLICATE or LINK_ERR_STALE. */
link_status_t link_seq_filter_check(link_seq_filter_t *f, uint16_t seq);
/* a - b as a signed distance in [-32768, 32767] (serial-number arithmetic). */
int32_t link_seq_diff(uint16_t a, uint16_t b);
/* The sequence number nearest `ref` whose low byte is `seq8` (a DATA frame's
 * seq); `ref` is one the receiver knows to be close (its newest sample, or the
 * RESET's seq).  Exact while fewer than 128 samples separate them; a distance
 * of exactly 128 resolves to the older number. */
uint16_t link_seq_expand(uint16_t ref, uint8_t seq8);

/* Add one outcome to counters (e.g. the result of link_seq_filter_check). */
void link_count(link_counters_t *c, link_status_t status);
const char *link_status_name(link_status_t status);
int link_type_is_known(uint8_t type);

/* ---- Payload helpers (all multi-byte fields little-endian) ---------------- */

/* RESULT payload: u32 cycles, then the int8 tensor (a DATA payload is the tensor alone). */
void link_cycles_pack(uint32_t cycles, uint8_t out[LINK_CYCLES_LEN]);
link_status_t link_sample_unpack(const uint8_t *payload, size_t len, uint32_t *cycles,
                                 const uint8_t **tensor, size_t *tensor_len);

#define LINK_MODEL_HASH_LEN 8u
#define LINK_HELLO_LEN 28u
/* Which counter a node's cycle counts (RESULT, STATS) come from: the host needs
 * it to say what they are (true cycles on silicon; under QEMU -icount SysTick
 * counts virtual time, i.e. instructions).  0 in a HELLO of an older version
 * (24 bytes) that did not say. */
typedef enum {
    LINK_COUNTER_UNKNOWN = 0,
    LINK_COUNTER_SYSTICK = 1, /* SysTick on the core clock, its phase restarted per inference */
    LINK_COUNTER_DWT = 2      /* DWT->CYCCNT */
} link_counter_t;

typedef struct {
    uint8_t model_hash[LINK_MODEL_HASH_LEN]; /* first 8 bytes of the model's SHA-256 */
    uint8_t fw_major;
    uint8_t fw_minor;
    uint16_t fw_patch;
    uint32_t flash_bytes;  /* flash used by the firmware image */
    uint32_t arena_bytes;  /* tensor arena size */
    uint32_t cpu_hz;       /* core clock, to turn cycles into seconds */
    uint8_t cycle_counter; /* link_counter_t; 3 reserved (zero) bytes follow on the wire */
} link_hello_t;

void link_hello_pack(const link_hello_t *h, uint8_t out[LINK_HELLO_LEN]);
link_status_t link_hello_unpack(const uint8_t *payload, size_t len, link_hello_t *h);

/* STATS payload: u32 counters in this order (a receiver ignores extra ones). */
typedef enum {
    LINK_STAT_RX_FRAMES = 0,   /* good frames received */
    LINK_STAT_TX_FRAMES = 1,
    LINK_STAT_RX_TRUNCATED = 2, /* 2..10: drops, in link_status_t order */
    LINK_STAT_RX_OVERSIZE = 3,
    LINK_STAT_RX_CRC = 4,
    LINK_STAT_RX_VERSION = 5,
    LINK_STAT_RX_TYPE = 6,
    LINK_STAT_RX_LENGTH = 7,
    LINK_STAT_RX_DEST = 8,
    LINK_STAT_RX_DUPLICATE = 9,
    LINK_STAT_RX_STALE = 10,
    LINK_STAT_RX_OVERRUN = 11,  /* UART bytes lost before the decoder saw them */
    LINK_STAT_INPUT_TIMEOUTS = 12, /* waits for an input tensor that timed out */
    LINK_STAT_SAMPLES = 13,     /* inferences completed */
    LINK_STAT_CYCLES_LO = 14,   /* cycles spent in inferences since boot: u64, low word */
    LINK_STAT_CYCLES_HI = 15,   /*   ... high word */
    LINK_STAT_CYCLES_MAX = 16,  /* the longest inference since boot or RESET */
    /* 17..23: the rest of the runtime's counters (node_counters_t), since boot */
    LINK_STAT_SAMPLES_DOWN = 17,  /* samples without usable input: LINK_DOWN sent instead */
    LINK_STAT_LATE_INPUTS = 18,   /* inputs of a sample that was already computed */
    LINK_STAT_EVICTIONS = 19,     /* samples computed early for want of a free slot */
    LINK_STAT_UNKNOWN_LINKS = 20, /* DATA/LINK_DOWN on a link the node does not consume */
    LINK_STAT_BAD_TENSORS = 21,   /* DATA whose tensor size is not the link's */
    LINK_STAT_INVOKE_ERRORS = 22, /* model invocations that failed */
    LINK_STAT_TX_ERRORS = 23,     /* frames the UART sink refused */
    LINK_STAT_COUNT = 24
} link_stat_t;

#define LINK_STATS_LEN (4u * LINK_STAT_COUNT)
typedef struct {
    uint32_t value[LINK_STAT_COUNT];
} link_stats_t;

void link_stats_pack(const link_stats_t *s, uint8_t out[LINK_STATS_LEN]);
link_status_t link_stats_unpack(const uint8_t *payload, size_t len, link_stats_t *s);
/* Copy the receive counters of a decoder into the matching STATS fields. */
void link_stats_from_counters(link_stats_t *s, const link_counters_t *c);

#ifdef __cplusplus
}
#endif

#endif /* LINK_PROTOCOL_H */
