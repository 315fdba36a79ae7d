/*
 * resilinet-mcu: internal header of the row-buffer depthwise convolution (resilinet_nn_depthwise_rows_s8.c: the
 * geometry, packing and driver; resilinet_nn_depthwise_widen_s8.c: int8 input rows into int16 planes;
 * resilinet_nn_depthwise_out_rows_s8.c: output rows from the planes; resilinet_nn_depthwise_3x3_asm_s8.c: the
 * 3x3 assembly row loops). Not CMSIS-NN API and not for callers outside these files.
 */
#ifndef RESILINET_NN_DEPTHWISE_ROWS_H
#define RESILINET_NN_DEPTHWISE_ROWS_H

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#define DW_ROWS_MAX_KH 16
#define DW_ROWS_MAX_KW 64
#define DW_ROWS_MAX_GROUP 4
/* Bytes of int16 rows the kernel keeps (a band of input rows for each widened channel); wider or taller
 * inputs are done in bands of output rows, re-widening the KH - stride rows two bands share. */
#define DW_BAND_BYTES 8192
/* Words after each output channel's packed weights: bias (doubled on the fast path), multiplier, shift
 * (~shift = e1 on the fast path) and the rounding word K = (1 + 2 * out_offset) << e1 (fast path, else 0). The
 * same layout whether packed here at run time (arm_depthwise_conv_wrapper_s8, into the scratch) or by codegen at
 * generate time (resilinet_depthwise_conv_s8_packed, in flash).
 *
 * Why K: the fast requantization ssat8((((hm + (hm >> 31)) >> e1) + rc) >> 1), hm = SMMULR(2 acc, M), equals
 * ssat8(((SMMLAR(2 acc, M, K) + (acc >> 31)) >> e1) >> 1): SMMLAR adds K exactly (K << 32 is a multiple of
 * 2^32), K is a multiple of 2^e1 so adding it before the shift is adding rc after it, and acc's sign can stand
 * for hm's (they differ only when hm = 0 > acc, where -1 and 0 shift to values that the odd rc and the final
 * halving map to the same output). Two instructions fewer per output, when |K| < 2^30 (|hm| < 2^30 on the fast
 * path, so the sum cannot overflow): dw_rounding_word. */
#define DW_WK_EXTRA 4

typedef struct
{
    int32_t kh, kw, kwp;    /* kernel; kwp = int16 pairs per kernel row (KW rounded up to even, halved) */
    int32_t sh, sw, ph, pw; /* stride, padding (top / left) */
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, mult;
    /* Bytes from an input pixel to the next along a band row and from a band row's first pixel to the next row's;
     * the same for the output; filter entries from a tap to the next along a kernel row and to the next row. The
     * tensors' own rows and columns, or (transposed, dw_geom_init) their columns and rows. */
    int32_t ipx, irow, opx, orow, fpx, frow;
    /* The widening's loop (DW_WIDEN_*, four channels at a time on DSP cores) and its words, once per call: the
     * source bytes of a row's quads (pairs for the pair loops), w % 4, the gaps after a row in the band (bytes)
     * and in the source. */
    int32_t w_loop, wq_bytes, w_rem, w_gap, w_sgap;
    int32_t rw;        /* int16 entries per row: pw zero columns, the input row, zero columns to the right */
    int32_t group;     /* channels widened together */
    int32_t band_rows; /* input rows per band */
} dw_geom;

typedef struct
{
    int32_t out_offset, act_min, act_max;
    int32_t rc;   /* 1 + 2 * out_offset (fast path) */
    int32_t mode; /* DW_SLOW: resilinet_nn_requantize_clamp, DW_FAST_CLAMP: fast + clamp, DW_FAST: full range */
    /* For the 3x3 assembly row loop: output bytes of a row's whole pairs, then the bytes from the end of the
     * row (its pairs and, when the width is odd, the last output) to the next row's start in the input band and
     * in the output. */
    int32_t pairs_bytes, x_step, o_step;
} dw_out;

#define DW_SLOW 0
#define DW_FAST_CLAMP 1
#define DW_FAST 2

#if defined(__GNUC__)
#define DW_INLINE static inline __attribute__((always_inline))
#else
#define DW_INLINE static inline
#endif

/* Requantize acc; qk = the channel's DW_WK_EXTRA words. */
DW_INLINE int8_t dw_rq(int32_t acc, const uint32_t *qk, const dw_out *q, const int32_t mode)
{
    if (mode != DW_SLOW)
    {
        /* acc is 2 * the sum (doubled weights and bias): resilinet_nn_requant_fast without its shift. Weights
         * prepacked for the fast path reach the plain-C build too, hence SMMULR and the SSAT in C there. */
#if RESILINET_HAS_DSP
        const int32_t hm = resilinet_smmulr(acc, (int32_t)qk[1]);
        int32_t v = resilinet_ssat8_asr1(((hm + (hm >> 31)) >> (int32_t)qk[2]) + q->rc);
#else
        const int32_t hm = (int32_t)(((int64_t)acc * (int32_t)qk[1] + ((int64_t)1 << 31)) >> 32);
        int32_t v = (((hm + (hm >> 31)) >> (int32_t)qk[2]) + q->rc) >> 1;
        v = MIN(MAX(v, -128), 127);
#endif
        if (mode == DW_FAST_CLAMP)
        {
            v = MAX(v, q->act_min);
            v = MIN(v, q->act_max);
        }
        return (int8_t)v;
    }
    return resilinet_nn_requantize_clamp(acc, (int32_t)qk[1], (int32_t)qk[2], q->out_offset, q->act_min, q->act_max);
}

/* K of the fast requantization (above) into *k; 0 when |K| >= 2^30 (the assembly then must not run). */
static inline int32_t dw_rounding_word(int32_t out_offset, int32_t e1, int32_t *k)
{
    const int64_t v = (int64_t)(1 + 2 * out_offset) * ((int64_t)1 << e1);
    *k = 0;
    if (e1 < 0 || e1 > 30 || v <= -((int64_t)1 << 30) || v >= ((int64_t)1 << 30))
    {
        return 0;
    }
    *k = (int32_t)v;
    return 1;
}

/* The widening loops: pairs only (rows under 4 pixels, or under 8 whose stores are unaligned: fewer instructions
 * per row), with a last odd pixel; quads with STRD (rows start word-aligned: even pw) or with STR pairs. */
#define DW_WIDEN_PAIRS 0
#define DW_WIDEN_PAIRS_ODD 1
#define DW_WIDEN_QUADS_ALIGNED 2
#define DW_WIDEN_QUADS 3

/* Which output-row loop a geometry takes. */
#define DW_PATH_GENERIC 0
#define DW_PATH_3X3_S1 1
#define DW_PATH_3X3_S2 2
#define DW_PATH_3X3 3 /* 3x3 at other strides: the 3x3 weight layout, one output at a time */

int32_t resilinet_dw_path(const dw_geom *g);

/* n_rows input rows (src: the first row's pixel 0, channel c) of channels c .. c + group - 1 into their planes
 * (dst: channel c's first row, from its first input column on; planes plane_entries apart, rows rw apart),
 * as x + off. */
void resilinet_dw_widen(const dw_geom *g, const int8_t *src, int16_t *dst, int32_t plane_entries, int32_t n_rows,
                        int32_t off);

/* Words of one output channel's packed weights and requantization (dw_pack_weights, dw_pack_quant). */
#define DW_WK_WORDS(g) ((g)->kh * (g)->kwp + DW_WK_EXTRA)

/* nb output rows of the group * mult output channels of one channel group from their planes (planes: the first
 * plane's first band row; planes plane_entries apart), their weights and requantization words wk (DW_WK_WORDS
 * each), first output o (the group's first output channel; rows out_w * out_c bytes apart). */
void resilinet_dw_out_group(const dw_geom *g, int32_t path, const int16_t *planes, int32_t plane_entries, int32_t nb,
                            const uint32_t *wk, const dw_out *q, int8_t *o);

#if RESILINET_HAS_DSP && RESILINET_DSP_ASM
/* 3x3 at stride 1 or 2, fast full-range requantization, out_w >= 2: the same in assembly
 * (resilinet_nn_depthwise_3x3_asm_s8.c). */
void resilinet_dw_rows_3x3_asm(const dw_geom *g, const int16_t *planes, int32_t plane_entries, int32_t nb,
                               const uint32_t *wk, const dw_out *q, int8_t *o);
#endif

#endif /* RESILINET_NN_DEPTHWISE_ROWS_H */
