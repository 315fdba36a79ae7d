/*
 * resilinet-mcu node runtime: one board = one node of a split network.
 *
 * The node receives link frames (docs/protocol.md) from the host, gathers the
 * input tensors of each sample by sequence number, applies the node's
 * aggregation rule (zero-point fill for a missing link, or a mux that takes the
 * first link that arrived in priority order), runs its part of the model, and
 * sends its output tensors as DATA (or RESULT) frames.
 *
 * CMSIS-NN-API style: the configuration is constant data (node_config_t, plain
 * arrays of structs, emitted by the host build as node_config.h), all state is
 * in one node_t that the caller owns, every function takes it explicitly and
 * reports a status; no globals, no heap.  The board is reached only through
 * node_platform_t, so the same code runs on any board and on a PC.
 */
#ifndef RESILINET_NODE_RUNTIME_H
#define RESILINET_NODE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "link_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NODE_FW_VERSION_MAJOR 0u
#define NODE_FW_VERSION_MINOR 1u
#define NODE_FW_VERSION_PATCH 0u

/* Capacity of the fixed-size tables in node_t (override with -D if needed). */
#ifndef NODE_MAX_LINKS_IN
#define NODE_MAX_LINKS_IN 8u  /* incoming links (DATA/LINK_DOWN streams) */
#endif
#ifndef NODE_MAX_LINKS_OUT
#define NODE_MAX_LINKS_OUT 8u /* outgoing DATA links + RESULT */
#endif
#ifndef NODE_MAX_INPUTS
#define NODE_MAX_INPUTS 8u    /* model inputs */
#endif
#ifndef NODE_MAX_OUTPUTS
#define NODE_MAX_OUTPUTS 8u   /* model outputs */
#endif
#ifndef NODE_MAX_SLOTS
#define NODE_MAX_SLOTS 4u     /* samples in flight */
#endif
#define NODE_MUX_MAX 8u       /* links of one mux, standby (guards + skip) or averaged part */

/* Every tensor buffer starts on a 4-byte boundary. */
#define NODE_ALIGN(n) ((((size_t)(n)) + 3u) & ~(size_t)3u)

/* The model of this node: generated C (codegen) or hand-written.
 * in[k] / out[k]: the bytes of model input / output k.  Returns 0 on success. */
typedef int32_t (*node_invoke_fn)(const int8_t *const in[], int8_t *const out[]);

typedef enum {
    NODE_OK = 0,
    NODE_ERR_ARG = -1,    /* NULL pointer */
    NODE_ERR_CONFIG = -2, /* inconsistent node_config_t */
    NODE_ERR_MEMORY = -3  /* a buffer given to node_init() is too small */
} node_status_t;

/* Codes of the ERROR frames the node sends (u16, then ASCII text). */
typedef enum {
    NODE_ERROR_CONFIG = 0x0101,       /* node_config_t rejected: the node computes nothing */
    NODE_ERROR_UNKNOWN_LINK = 0x0102, /* DATA/LINK_DOWN on a (src, link) the node does not take */
    NODE_ERROR_TENSOR_SIZE = 0x0103,  /* DATA whose tensor is not the link's size (ignored) */
    NODE_ERROR_INVOKE = 0x0104        /* the model returned nonzero (LINK_DOWN sent instead) */
    /* 0xFAxx: faults reported by the board layer (firmware/bsp/board.h) */
} node_error_code_t;

/* ---- Configuration (constant data; see node_config.h) ---------------------- */

/* One incoming link: a tensor that another node (or the host) sends. */
typedef struct {
    uint8_t link;       /* link id (the frame's `link`) */
    uint8_t src;        /* producer node id (the frame's `src`; 0 = the host) */
    uint16_t bytes;     /* tensor bytes (DATA payload = 4 + bytes) */
    int8_t zero_point;  /* int8 code of the real value 0: the fill of a missing tensor */
    uint8_t bits;       /* bits per element on the wire: 4 or 2 = packed (link_pack.h); 0 or 8 = int8 */
    int8_t lo;          /* packed links: the int8 value of code 0 */
} node_link_in_t;

typedef enum {
    /* Fed by links[0]; if it is missing (LINK_DOWN or deadline), the buffer is
     * filled with the link's zero point (= real 0). */
    NODE_INPUT_LINK = 0,
    /* ResiliNet mux: the first of links[0..n_links-1] (priority order: the
     * link from below first, then the skip hyperconnections) whose DATA came.
     * All links of one mux share one scale and zero point, so this is a pointer
     * choice.  If none came, the node has no usable input for the sample. */
    NODE_INPUT_MUX = 1,
    /* A skip of a mux node that is not its pointer mux (the second and later
     * skips, e.g. two sensors into the fog; or every skip of a node with several
     * normal links, e.g. the camera preset's f2): links[0..n_links-2] are the
     * guards, the node's normal links (not read here); links[n_links-1] is this
     * input's skip.  While any guard's DATA came the input is the real value 0
     * (the skip's zero point); otherwise it is the skip (or 0 if that is missing
     * too).  The model adds the skips to its merged normal inputs, so the node
     * computes "the normal links if any came, else the sum of the skips". */
    NODE_INPUT_STANDBY = 2,
    /* Distilled students (NoNN's successor): links[0..n_links-1] each carry a
     * replica of one part.  The input is the mean of the replicas whose DATA
     * came (they share one scale and zero point, so the mean of the codes:
     * the integer sum / count, rounded half away from zero), or the zero point
     * if none came.  Computed once every replica came or was given up. */
    NODE_INPUT_AVERAGE = 3
} node_input_kind_t;

/* One model input and where it comes from. */
typedef struct {
    uint8_t kind;                /* node_input_kind_t */
    uint8_t n_links;             /* LINK: 1; MUX, STANDBY: 2..NODE_MUX_MAX; AVERAGE: 1..NODE_MUX_MAX */
    uint8_t links[NODE_MUX_MAX]; /* indices into node_config_t.links_in */
    uint16_t bytes;              /* model input bytes (= the bytes of each of its links) */
} node_input_t;

/* One model output. */
typedef struct {
    uint16_t bytes;
    int8_t zero_point;
} node_output_t;

/* One outgoing frame per sample: DATA on a link, or the RESULT to the host. */
typedef struct {
    uint8_t type;   /* LINK_TYPE_DATA or LINK_TYPE_RESULT */
    uint8_t link;   /* link id; LINK_NONE for a RESULT */
    uint8_t dst;    /* consumer node id (0 = the host) */
    uint8_t output; /* index of the model output it carries */
    uint8_t bits;   /* DATA: bits per element on the wire (4 or 2 = packed, 0 or 8 = int8); every DATA
                       link of one output uses the same bits (the output is packed once, in place) */
    int8_t lo;      /* packed links: the int8 value of code 0 */
} node_link_out_t;

typedef struct {
    uint8_t node_id;          /* 1..254 (LINK_NODE_MAX) */
    uint8_t n_links_in;
    uint8_t n_inputs;
    uint8_t n_outputs;
    uint8_t n_links_out;
    uint8_t n_slots;          /* samples in flight, 1..NODE_MAX_SLOTS */
    uint32_t deadline_ticks;  /* board ticks (BOARD_TICK_HZ) from the first input of a sample
                                 until it is computed with what arrived; 0 = wait for all */
    uint32_t arena_bytes;     /* the model's tensor arena (reported in HELLO) */
    uint8_t model_hash[LINK_MODEL_HASH_LEN]; /* first 8 bytes of SHA-256 of the node's model */
    const node_link_in_t *links_in;   /* [n_links_in] */
    const node_input_t *inputs;       /* [n_inputs], in the model's in[] order */
    const node_output_t *outputs;     /* [n_outputs], in the model's out[] order */
    const node_link_out_t *links_out; /* [n_links_out] */
    node_invoke_fn invoke;
    /* Models with state kept between invocations (LSTM): restores it to its initial value. Each sample is a
     * sequence of its own, so the runtime calls it before every invoke (and on RESET); NULL: stateless. */
    void (*reset)(void);
} node_config_t;

/* Bytes of one slot (every incoming link's tensor, NODE_ALIGN'ed) and of the outputs. */
size_t node_slot_bytes(const node_config_t *cfg);
size_t node_output_bytes(const node_config_t *cfg);
/* NODE_OK, or NODE_ERR_CONFIG if a count, index, size or id is out of range
 * or inconsistent (every incoming link must feed exactly one input). */
node_status_t node_check_config(const node_config_t *cfg);

/* ---- Platform ---------------------------------------------------------------- */

typedef struct {
    link_put_fn put;              /* blocking transmit of one byte; nonzero aborts the frame */
    void *put_ctx;
    void (*cycles_start)(void);   /* cycle counter around inference (may be NULL) */
    uint32_t (*cycles_stop)(void);
    uint32_t (*rx_overruns)(void); /* bytes the UART lost (may be NULL) */
    uint32_t flash_bytes;         /* HELLO */
    uint32_t cpu_hz;              /* HELLO */
    uint8_t cycle_counter;        /* HELLO: link_counter_t of cycles_start/stop */
} node_platform_t;

/* ---- State ------------------------------------------------------------------- */

typedef enum {
    NODE_LINK_WAITING = 0,
    NODE_LINK_DATA = 1,
    NODE_LINK_DOWN = 2
} node_link_state_t;

/* One sample being gathered. */
typedef struct {
    uint8_t active;
    uint16_t seq;
    uint32_t first_tick;              /* when its first input arrived */
    uint8_t state[NODE_MAX_LINKS_IN]; /* node_link_state_t per incoming link */
    int8_t *buf;                      /* node_slot_bytes() bytes: one tensor per link */
} node_slot_t;

/* What the node counts besides the decoder (STATS carries the first three). */
typedef struct {
    uint32_t tx_frames;
    uint32_t input_timeouts;  /* links waited for until the deadline (or an eviction) */
    uint32_t samples;         /* inferences completed */
    uint32_t samples_down;    /* samples without usable input: LINK_DOWN sent */
    uint32_t late_inputs;     /* inputs of a sample that was already computed */
    uint32_t evictions;       /* samples computed early for want of a free slot */
    uint32_t unknown_links;
    uint32_t bad_tensors;
    uint32_t invoke_errors;
    uint32_t tx_errors;
    uint32_t last_cycles;     /* cycles of the last inference */
    uint64_t cycles_total;    /* cycles of all inferences since boot (STATS) */
    uint32_t cycles_max;      /* the longest inference since boot or RESET (STATS) */
} node_counters_t;

typedef struct {
    const node_config_t *cfg;
    node_platform_t plat;
    link_decoder_t dec;
    link_seq_filter_t filters[NODE_MAX_LINKS_IN];
    node_slot_t slots[NODE_MAX_SLOTS];
    uint32_t link_offset[NODE_MAX_LINKS_IN]; /* of each link's tensor in a slot */
    int8_t *out[NODE_MAX_OUTPUTS];
    uint16_t seq_ref;       /* newest sample seen (or the RESET's seq): DATA frames carry only
                             * the low byte of their sample number, expanded around this */
    uint16_t newest_done;   /* newest sample computed (or given up) */
    uint32_t done_mask;     /* bit i: sample newest_done - i is done (an older sample may still come) */
    uint8_t done_valid;
    uint8_t config_ok;      /* 0: node_config_t was rejected; the node only talks */
    node_counters_t counters;
} node_t;

/*
 * Set up `node`.  Buffers (all owned by the caller, alive as long as the node):
 *   frame_buf: the decoder's frame buffer, LINK_RAW_MAX bytes accept every frame;
 *   slot_mem:  cfg->n_slots * node_slot_bytes(cfg) bytes, 4-byte aligned;
 *   out_mem:   node_output_bytes(cfg) bytes, 4-byte aligned.
 * On NODE_ERR_CONFIG / NODE_ERR_MEMORY the node is still usable: it answers
 * HELLO, PING and STATS, and node_announce() reports the error.
 */
node_status_t node_init(node_t *node, const node_config_t *cfg, const node_platform_t *plat,
                        uint8_t *frame_buf, size_t frame_cap, int8_t *slot_mem,
                        size_t slot_mem_bytes, int8_t *out_mem, size_t out_mem_bytes);

/* Send HELLO to the host (after boot), preceded by an ERROR if the node is unusable. */
void node_announce(node_t *node);

/* Feed one received byte.  Complete frames are handled at once (replies and
 * inference run inside this call).  `now` is the board's tick count. */
void node_rx_byte(node_t *node, uint8_t byte, uint32_t now);

/* Complete the samples whose deadline has passed.  Call after the received
 * bytes are drained, at least once per tick. */
void node_poll(node_t *node, uint32_t now);

/* 1 while a sample waits for its deadline (the caller must keep time running). */
int node_waiting(const node_t *node);

/* The STATS counters (as they would be sent now). */
void node_get_stats(const node_t *node, link_stats_t *stats);

#ifdef __cplusplus
}
#endif

#endif /* RESILINET_NODE_RUNTIME_H */
