/*
 * resilinet-mcu: the row-buffer depthwise convolution behind arm_depthwise_conv_wrapper_s8 (internal support
 * function, not CMSIS-NN API; see arm_nnsupportfunctions.h).
 *
 * Why rows: in NHWC a depthwise tap reads one byte per channel, so SIMD over channels gives one MAC per
 * SMLABB/SMLATT and every window re-widens its inputs. Here the input is widened once, per channel, into int16
 * rows (x + input_offset, zero rows and columns for the padding), a band of rows at a time (the whole padded
 * input when it fits DW_BAND_BYTES; rows at a fixed stride, so one pointer walks a window); an output row then
 * reads int16 pairs of one channel along x, which SMLAD multiplies by pairs of the channel's weights (two MACs
 * per instruction), and each input row is widened once per channel (and band) however many windows and output
 * channels (channel multiplier) read it. Two output pixels are computed per step so that the weights of a
 * kernel row are loaded once for both; 3x3 kernels at stride 1 and 2 take an assembly row loop that also
 * shares the input words between the two pixels.
 *
 * Requantization: on DSP cores, when resilinet_nn_requant_init() finds the fast path exact, the widened weights
 * and the bias are doubled so that the accumulator already holds 2 * acc (the operand SMMULR needs), leaving
 * six instructions per output. Otherwise (and on the plain-C path) resilinet_nn_requantize_clamp().
 *
 * With four channels widened together (channel multiplier 1, C % 4 == 0) one LDR of four channels per pixel
 * feeds four channels' rows (DSP: SXTAB16 + PKHBT/PKHTB, two pixels per step).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#define DW_ROWS_MAX_KH 16
#define DW_ROWS_MAX_KW 64
#define DW_ROWS_MAX_GROUP 4
/* Bytes of int16 rows the kernel keeps (a band of input rows for each widened channel); wider or taller
 * inputs are done in bands of output rows, re-widening the KH - stride rows two bands share. */
#define DW_BAND_BYTES 8192
/* Words after each output channel's packed weights: bias (doubled on the fast path), multiplier, shift
 * (~shift on the fast path). The same layout whether packed here at run time (arm_depthwise_conv_wrapper_s8,
 * into the scratch) or by codegen at generate time (resilinet_depthwise_conv_s8_packed, in flash). */
#define DW_WK_EXTRA 3

typedef struct
{
    int32_t kh, kw, kwp;    /* kernel; kwp = int16 pairs per kernel row (KW rounded up to even, halved) */
    int32_t sh, sw, ph, pw; /* stride, padding (top / left) */
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, mult;
    int32_t rw;        /* int16 entries per row: pw zero columns, the input row, zero columns to the right */
    int32_t group;     /* channels widened together */
    int32_t band_rows; /* input rows per band */
} dw_geom;

/* The geometry, or 0 when this path does not apply (dilation, very tall or wide kernels, bad shapes). */
static int32_t dw_geom_init(dw_geom *g,
                            const cmsis_nn_dw_conv_params *p,
                            const cmsis_nn_dims *input_dims,
                            const cmsis_nn_dims *filter_dims,
                            const cmsis_nn_dims *output_dims)
{
    g->kh = filter_dims->h;
    g->kw = filter_dims->w;
    g->kwp = (filter_dims->w + 1) / 2;
    g->sh = p->stride.h;
    g->sw = p->stride.w;
    g->ph = p->padding.h;
    g->pw = p->padding.w;
    g->in_h = input_dims->h;
    g->in_w = input_dims->w;
    g->in_c = input_dims->c;
    g->out_h = output_dims->h;
    g->out_w = output_dims->w;
    g->out_c = output_dims->c;
    g->mult = p->ch_mult;
    /* The last column any path reads (from the padded row's start): the input's own last column; the 3x3 pair
     * loops read words up to column 2 * n2 * sw + 1 for n2 = ceil(out_w / 2) pairs (an odd row's spilled pair
     * included); a lone or generic output reads its kernel row as pairs up to (out_w - 1) * sw + 2 * kwp - 1.
     * Rows hold exactly that many entries rounded up to even (rows start word-aligned for the word loads), so
     * no slack: the band takes as few bytes as the reads allow. */
    const int32_t last_col = MAX(MAX(g->pw + g->in_w - 1, 2 * ((g->out_w + 1) / 2) * g->sw + 1),
                                 (g->out_w - 1) * g->sw + 2 * g->kwp - 1);
    g->rw = (last_col + 2) & ~1;
    g->group = (g->mult == 1 && g->in_c % 4 == 0) ? 4 : 1;
    const int32_t all_rows = (g->out_h - 1) * g->sh + g->kh;
    g->band_rows = MAX(g->kh, MIN(all_rows, DW_BAND_BYTES / (g->group * g->rw * (int32_t)sizeof(int16_t))));
    return p->dilation.h == 1 && p->dilation.w == 1 && g->kh >= 1 && g->kh <= DW_ROWS_MAX_KH && g->kw >= 1 &&
           g->kw <= DW_ROWS_MAX_KW && g->sh >= 1 && g->sw >= 1 && g->mult >= 1 && g->in_c * g->mult == g->out_c &&
           filter_dims->c == g->out_c && g->pw >= 0 && g->ph >= 0 && g->out_w >= 1 && g->out_h >= 1;
}

/* Scratch: the band of rows of each widened channel, 4 bytes of slack to align the start and, unless the
 * weights come prepacked, the packed weights and requantization words of one channel group. */
static int32_t dw_geom_bytes(const dw_geom *g, int32_t prepacked)
{
    const int32_t rows = g->group * g->band_rows * g->rw * (int32_t)sizeof(int16_t);
    const int32_t wk = g->group * g->mult * (g->kh * g->kwp + DW_WK_EXTRA) * (int32_t)sizeof(uint32_t);
    return 4 + rows + (prepacked ? 0 : wk);
}

int32_t resilinet_nn_depthwise_rows_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const cmsis_nn_dims *output_dims)
{
    dw_geom g;
    if (!dw_geom_init(&g, dw_conv_params, input_dims, filter_dims, output_dims))
    {
        return -1;
    }
    return dw_geom_bytes(&g, 0);
}

int32_t resilinet_nn_depthwise_rows_s8_packed_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                             const cmsis_nn_dims *input_dims,
                                                             const cmsis_nn_dims *filter_dims,
                                                             const cmsis_nn_dims *output_dims)
{
    dw_geom g;
    if (!dw_geom_init(&g, dw_conv_params, input_dims, filter_dims, output_dims))
    {
        return -1;
    }
    return dw_geom_bytes(&g, 1);
}

typedef struct
{
    int32_t out_offset, act_min, act_max;
    int32_t rc;   /* 1 + 2 * out_offset (fast path) */
    int32_t mode; /* DW_SLOW: resilinet_nn_requantize_clamp, DW_FAST_CLAMP: fast + clamp, DW_FAST: full range */
    /* For the 3x3 assembly row loop: output bytes of a row's pairs (odd rows spill into the next row), then the
     * bytes from the end of those pairs to the next row's start in the input band and in the output. */
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

/* ------------------------------------------------------------------------------------------------ widening */

/* n_rows input rows (src: the first row's pixel 0, channel c) of channels c .. c + group - 1 into their planes
 * (dst: channel c's first row, from its first input column on; planes plane_entries apart, rows rw apart). Not
 * inlined: the driver around it needs the registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void dw_widen(const dw_geom *g, const int8_t *src, int16_t *dst, int32_t plane_entries, int32_t n_rows,
                     int32_t off)
{
    const int32_t cn = g->in_c, w = g->in_w;
    for (int32_t r = 0; r < n_rows; r++, src += w * cn, dst += g->rw)
    {
        int32_t x = 0;
#if RESILINET_HAS_DSP
        if (g->group == 4)
        {
            const int8_t *sp = src;
            const uint32_t off2 = resilinet_dup16(off);
            int16_t *d0 = dst, *d1 = dst + plane_entries, *d2 = dst + 2 * plane_entries, *d3 = dst + 3 * plane_entries;
#if RESILINET_DSP_ASM
            if (w >= 2)
            {
                /* 17 instructions per two pixels x four channels (GCC forms no PKHBT/PKHTB here). */
                const int8_t *end = sp + (w / 2) * 2 * cn;
                uint32_t v0, v1, lo0, lo1, t;
                __asm__ volatile(
                    "1:\n\t"
                    "ldr     %[v1], [%[s], %[cn]]\n\t"
                    "ldr     %[v0], [%[s]]\n\t"
                    "add     %[s], %[s], %[cn], lsl #1\n\t"
                    "sxtab16 %[lo0], %[off2], %[v0]\n\t"
                    "sxtab16 %[lo1], %[off2], %[v1]\n\t"
                    "sxtab16 %[v0], %[off2], %[v0], ror #8\n\t"
                    "sxtab16 %[v1], %[off2], %[v1], ror #8\n\t"
                    "pkhbt   %[t], %[lo0], %[lo1], lsl #16\n\t"
                    "pkhtb   %[lo1], %[lo1], %[lo0], asr #16\n\t"
                    "str     %[t], [%[d0]], #4\n\t"
                    "str     %[lo1], [%[d2]], #4\n\t"
                    "pkhbt   %[t], %[v0], %[v1], lsl #16\n\t"
                    "pkhtb   %[v1], %[v1], %[v0], asr #16\n\t"
                    "str     %[t], [%[d1]], #4\n\t"
                    "str     %[v1], [%[d3]], #4\n\t"
                    "cmp     %[s], %[end]\n\t"
                    "bne     1b\n\t"
                    : [s] "+r"(sp), [d0] "+r"(d0), [d1] "+r"(d1), [d2] "+r"(d2), [d3] "+r"(d3), [v0] "=&r"(v0),
                      [v1] "=&r"(v1), [lo0] "=&r"(lo0), [lo1] "=&r"(lo1), [t] "=&r"(t)
                    : [cn] "r"(cn), [off2] "r"(off2), [end] "r"(end)
                    : "cc", "memory");
                x = (w / 2) * 2;
                d0 -= x;
                d1 -= x;
                d2 -= x;
                d3 -= x;
            }
#endif
            for (; x + 2 <= w; x += 2)
            {
                /* Two pixels x four channels: lanes [c0 c2] and [c1 c3] of each, regrouped per channel. */
                const uint32_t v0 = resilinet_read_u32(sp), v1 = resilinet_read_u32(sp + cn);
                const uint32_t lo0 = resilinet_sxtab16(off2, v0), hi0 = resilinet_sxtab16_ror8(off2, v0);
                const uint32_t lo1 = resilinet_sxtab16(off2, v1), hi1 = resilinet_sxtab16_ror8(off2, v1);
                const uint32_t p0 = resilinet_pkhbt16(lo0, lo1), p2 = resilinet_pkhtb16(lo1, lo0);
                const uint32_t p1 = resilinet_pkhbt16(hi0, hi1), p3 = resilinet_pkhtb16(hi1, hi0);
                memcpy(d0 + x, &p0, 4);
                memcpy(d1 + x, &p1, 4);
                memcpy(d2 + x, &p2, 4);
                memcpy(d3 + x, &p3, 4);
                sp += 2 * cn;
            }
            for (; x < w; x++)
            {
                d0[x] = (int16_t)(sp[0] + off);
                d1[x] = (int16_t)(sp[1] + off);
                d2[x] = (int16_t)(sp[2] + off);
                d3[x] = (int16_t)(sp[3] + off);
                sp += cn;
            }
            continue;
        }
#endif
        for (int32_t j = 0; j < g->group; j++)
        {
            const int8_t *s = src + j;
            int16_t *d = dst + j * plane_entries;
            for (x = 0; x + 2 <= w; x += 2)
            {
                d[x] = (int16_t)(s[0] + off);
                d[x + 1] = (int16_t)(s[cn] + off);
                s += 2 * cn;
            }
            if (x < w)
            {
                d[x] = (int16_t)(s[0] + off);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------- output rows */

/* Generic: one output row of one channel; r = the row of the window's top (column -pw on), rw = entries per
 * row, wk = KH x kwp weight pairs [w(2t) | w(2t+1) << 16] (a zero weight ends an odd row), then the
 * requantization words. */
DW_INLINE void dw_row_generic(const dw_geom *g, const int16_t *r, const uint32_t *wk, const dw_out *q, int8_t *o,
                              const int32_t mode)
{
    const int32_t cn = g->out_c, sw = g->sw, kh = g->kh, kwp = g->kwp, rw = g->rw;
    const uint32_t *qk = wk + kh * kwp;
    const int32_t bias = (int32_t)qk[0];
    int32_t ox = 0;
#if !RESILINET_HAS_DSP
    if (kh == 3 && g->kw == 3)
    {
        /* Plain C 3x3: the nine weights in locals, nine multiply-accumulates per output. */
        /* The 3x3 layout (dw_pack_weights): [w0 | w1] [w1 | w2] per kernel row. */
        const int32_t w00 = (int16_t)(wk[0] & 0xFFFFu), w01 = (int16_t)(wk[0] >> 16), w02 = (int16_t)(wk[1] >> 16);
        const int32_t w10 = (int16_t)(wk[2] & 0xFFFFu), w11 = (int16_t)(wk[2] >> 16), w12 = (int16_t)(wk[3] >> 16);
        const int32_t w20 = (int16_t)(wk[4] & 0xFFFFu), w21 = (int16_t)(wk[4] >> 16), w22 = (int16_t)(wk[5] >> 16);
        const int16_t *x0 = r, *x1 = r + rw, *x2 = r + 2 * rw;
        for (; ox < g->out_w; ox++, x0 += sw, x1 += sw, x2 += sw)
        {
            const int32_t a = bias + x0[0] * w00 + x0[1] * w01 + x0[2] * w02 + x1[0] * w10 + x1[1] * w11 +
                              x1[2] * w12 + x2[0] * w20 + x2[1] * w21 + x2[2] * w22;
            o[ox * cn] = dw_rq(a, qk, q, mode);
        }
        return;
    }
#endif
    for (; ox + 2 <= g->out_w; ox += 2)
    {
        int32_t a0 = bias, a1 = bias;
        const uint32_t *w = wk;
        const int16_t *x = r + ox * sw;
        for (int32_t ky = 0; ky < kh; ky++)
        {
            for (int32_t t = 0; t < kwp; t++)
            {
#if RESILINET_HAS_DSP
                a0 = resilinet_smlad(resilinet_read_u32(x + 2 * t), w[t], a0);
                a1 = resilinet_smlad(resilinet_read_u32(x + sw + 2 * t), w[t], a1);
#else
                const int32_t w0 = (int16_t)(w[t] & 0xFFFFu), w1 = (int16_t)(w[t] >> 16);
                a0 += x[2 * t] * w0 + x[2 * t + 1] * w1;
                a1 += x[sw + 2 * t] * w0 + x[sw + 2 * t + 1] * w1;
#endif
            }
            w += kwp;
            x += rw;
        }
        o[0] = dw_rq(a0, qk, q, mode);
        o[cn] = dw_rq(a1, qk, q, mode);
        o += 2 * cn;
    }
    if (ox < g->out_w)
    {
        int32_t a0 = bias;
        const uint32_t *w = wk;
        const int16_t *x = r + ox * sw;
        for (int32_t ky = 0; ky < kh; ky++)
        {
            for (int32_t t = 0; t < kwp; t++)
            {
                a0 += x[2 * t] * (int16_t)(w[t] & 0xFFFFu) + x[2 * t + 1] * (int16_t)(w[t] >> 16);
            }
            w += kwp;
            x += rw;
        }
        o[0] = dw_rq(a0, qk, q, mode);
    }
}

#if RESILINET_HAS_DSP
/* 3x3, stride 1 or 2, DSP: per kernel row the weight words P = [w0 | w1], Q = [w1 | w2]. Two outputs x0, x1
 * (= x0 + stride) from the words A = [r0 | r1], B = [r2 | r3] (and C = [r4 | r5] at stride 2):
 * stride 1: out0 += SMLAD(A, P) + r2 * w2 (SMLABT B, Q); out1 += r1 * w0 (SMLATB A, P) + SMLAD(B, Q);
 * stride 2: out0 += SMLAD(A, P) + SMLABT(B, Q);             out1 += SMLAD(B, P) + SMLABT(C, Q).
 * n2 pairs from x (4-byte aligned; each pair advances 2 * stride entries, so every word load is aligned).
 * Returns x after the pairs. */
DW_INLINE const int16_t *dw_pairs_3x3(const int16_t *x, int32_t rs, const uint32_t *wk, int8_t *o, int32_t cn,
                                      int32_t n2, const dw_out *q, const int32_t mode, const int32_t stride)
{
    const uint32_t *qk = wk + 6;
    const int32_t bias = (int32_t)qk[0];
    const int32_t rw = rs / (int32_t)sizeof(int16_t);
    const uint32_t p0 = wk[0], q0 = wk[1], p1 = wk[2], q1 = wk[3], p2 = wk[4], q2 = wk[5];
    for (int32_t i = 0; i < n2; i++)
    {
        int32_t a0 = bias, a1 = bias;
        const resilinet_u32a *u0 = (const resilinet_u32a *)(const void *)x;
        const resilinet_u32a *u1 = (const resilinet_u32a *)(const void *)(x + rw);
        const resilinet_u32a *u2 = (const resilinet_u32a *)(const void *)(x + 2 * rw);
        if (stride == 1)
        {
            a0 = resilinet_smlad(u0[0], p0, a0);
            a1 = resilinet_smlatb(u0[0], p0, a1);
            a0 = resilinet_smlabt(u0[1], q0, a0);
            a1 = resilinet_smlad(u0[1], q0, a1);
            a0 = resilinet_smlad(u1[0], p1, a0);
            a1 = resilinet_smlatb(u1[0], p1, a1);
            a0 = resilinet_smlabt(u1[1], q1, a0);
            a1 = resilinet_smlad(u1[1], q1, a1);
            a0 = resilinet_smlad(u2[0], p2, a0);
            a1 = resilinet_smlatb(u2[0], p2, a1);
            a0 = resilinet_smlabt(u2[1], q2, a0);
            a1 = resilinet_smlad(u2[1], q2, a1);
        }
        else
        {
            a0 = resilinet_smlad(u0[0], p0, a0);
            a0 = resilinet_smlabt(u0[1], q0, a0);
            a1 = resilinet_smlad(u0[1], p0, a1);
            a1 = resilinet_smlabt(u0[2], q0, a1);
            a0 = resilinet_smlad(u1[0], p1, a0);
            a0 = resilinet_smlabt(u1[1], q1, a0);
            a1 = resilinet_smlad(u1[1], p1, a1);
            a1 = resilinet_smlabt(u1[2], q1, a1);
            a0 = resilinet_smlad(u2[0], p2, a0);
            a0 = resilinet_smlabt(u2[1], q2, a0);
            a1 = resilinet_smlad(u2[1], p2, a1);
            a1 = resilinet_smlabt(u2[2], q2, a1);
        }
        o[0] = dw_rq(a0, qk, q, mode);
        o[cn] = dw_rq(a1, qk, q, mode);
        o += 2 * cn;
        x += 2 * stride;
    }
    return x;
}

#if RESILINET_DSP_ASM
/* dw_pairs_3x3 with the fast full-range requantization in assembly, over n_rows output rows (13 registers): the
 * weights and requantization words are re-read per pair (LDRD), the kernel rows are rs bytes apart, and after
 * each row's pairs x and o move on by x_step and o_step bytes (dw_pack_geometry); those, the pairs' output bytes
 * and the rounding constant rc are memory operands (stack slots: no register left). Per pair at stride 1:
 * 3 x (LDRD inputs + LDRD weights + 4 multiplies) + 12 requantization + 9 = 39 instructions for 18 MACs. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void dw_rows_3x3_asm(const int16_t *x, int32_t rs, const uint32_t *wk, int8_t *o, int32_t cn, int32_t n_rows,
                            int32_t stride, const dw_out *q, int32_t pairs_bytes)
{
    int32_t rows_left = n_rows;
    const int32_t n_bytes = pairs_bytes, x_step = q->x_step, o_step = q->o_step, rc = q->rc;
    int8_t *oend;
    uint32_t A, B, P, Q;
    int32_t a0, a1;
    const int16_t *t;
    if (stride == 1)
    {
#define DW_S1_ROW(LOAD, WOFF)                       \
    LOAD                                            \
    "ldrd   %[P], %[Q], [%[wk], #" WOFF "]\n\t"     \
    "smlad  %[a0], %[A], %[P], %[a0]\n\t"           \
    "smlatb %[a1], %[A], %[P], %[a1]\n\t"           \
    "smlabt %[a0], %[B], %[Q], %[a0]\n\t"           \
    "smlad  %[a1], %[B], %[Q], %[a1]\n\t"
        __asm__ volatile(
            "2:\n\t"
            "ldr    %[oend], %[nb]\n\t"
            "add    %[oend], %[oend], %[o]\n\t"
            "1:\n\t"
            "ldr    %[a0], [%[wk], #24]\n\t"
            "add    %[t], %[x], %[rs]\n\t"
            "mov    %[a1], %[a0]\n\t"
            DW_S1_ROW("ldrd   %[A], %[B], [%[x]], #4\n\t", "0")
            DW_S1_ROW("ldrd   %[A], %[B], [%[t]]\n\t"
                      "add    %[t], %[t], %[rs]\n\t", "8")
            DW_S1_ROW("ldrd   %[A], %[B], [%[t]]\n\t", "16")
            "ldrd   %[P], %[Q], [%[wk], #28]\n\t"
            "ldr    %[A], %[rc]\n\t"
            "smmulr %[a0], %[a0], %[P]\n\t"
            "smmulr %[a1], %[a1], %[P]\n\t"
            "add    %[a0], %[a0], %[a0], asr #31\n\t"
            "add    %[a1], %[a1], %[a1], asr #31\n\t"
            "asr    %[a0], %[a0], %[Q]\n\t"
            "asr    %[a1], %[a1], %[Q]\n\t"
            "add    %[a0], %[a0], %[A]\n\t"
            "add    %[a1], %[a1], %[A]\n\t"
            "ssat   %[a0], #8, %[a0], asr #1\n\t"
            "ssat   %[a1], #8, %[a1], asr #1\n\t"
            "strb   %[a1], [%[o], %[cn]]\n\t"
            "strb   %[a0], [%[o]]\n\t"
            "add    %[o], %[o], %[cn], lsl #1\n\t"
            "cmp    %[o], %[oend]\n\t"
            "bne    1b\n\t"
            "ldr    %[A], %[xs]\n\t"
            "ldr    %[B], %[os]\n\t"
            "add    %[x], %[x], %[A]\n\t"
            "add    %[o], %[o], %[B]\n\t"
            "ldr    %[A], %[rows]\n\t"
            "subs   %[A], %[A], #1\n\t"
            "str    %[A], %[rows]\n\t"
            "bne    2b\n\t"
            : [x] "+r"(x), [o] "+r"(o), [t] "=&r"(t), [A] "=&r"(A), [B] "=&r"(B), [P] "=&r"(P), [Q] "=&r"(Q),
              [a0] "=&r"(a0), [a1] "=&r"(a1), [oend] "=&r"(oend), [rows] "+m"(rows_left)
            : [rs] "r"(rs), [wk] "r"(wk), [cn] "r"(cn), [nb] "m"(n_bytes), [xs] "m"(x_step), [os] "m"(o_step),
              [rc] "m"(rc)
            : "cc", "memory");
#undef DW_S1_ROW
    }
    else
    {
#define DW_S2_ROW(LOAD, NEXT, WOFF)                 \
    LOAD                                            \
    "ldrd   %[P], %[Q], [%[wk], #" WOFF "]\n\t"     \
    "smlad  %[a0], %[A], %[P], %[a0]\n\t"           \
    "smlabt %[a0], %[B], %[Q], %[a0]\n\t"           \
    "smlad  %[a1], %[B], %[P], %[a1]\n\t"           \
    NEXT                                            \
    "smlabt %[a1], %[A], %[Q], %[a1]\n\t"
        __asm__ volatile(
            "2:\n\t"
            "ldr    %[oend], %[nb]\n\t"
            "add    %[oend], %[oend], %[o]\n\t"
            "1:\n\t"
            "ldr    %[a0], [%[wk], #24]\n\t"
            "add    %[t], %[x], %[rs]\n\t"
            "mov    %[a1], %[a0]\n\t"
            DW_S2_ROW("ldrd   %[A], %[B], [%[x]], #8\n\t", "ldr    %[A], [%[x]]\n\t", "0")
            DW_S2_ROW("ldrd   %[A], %[B], [%[t]]\n\t", "ldr    %[A], [%[t], #8]\n\t"
                      "add    %[t], %[t], %[rs]\n\t", "8")
            DW_S2_ROW("ldrd   %[A], %[B], [%[t]]\n\t", "ldr    %[A], [%[t], #8]\n\t", "16")
            "ldrd   %[P], %[Q], [%[wk], #28]\n\t"
            "ldr    %[A], %[rc]\n\t"
            "smmulr %[a0], %[a0], %[P]\n\t"
            "smmulr %[a1], %[a1], %[P]\n\t"
            "add    %[a0], %[a0], %[a0], asr #31\n\t"
            "add    %[a1], %[a1], %[a1], asr #31\n\t"
            "asr    %[a0], %[a0], %[Q]\n\t"
            "asr    %[a1], %[a1], %[Q]\n\t"
            "add    %[a0], %[a0], %[A]\n\t"
            "add    %[a1], %[a1], %[A]\n\t"
            "ssat   %[a0], #8, %[a0], asr #1\n\t"
            "ssat   %[a1], #8, %[a1], asr #1\n\t"
            "strb   %[a1], [%[o], %[cn]]\n\t"
            "strb   %[a0], [%[o]]\n\t"
            "add    %[o], %[o], %[cn], lsl #1\n\t"
            "cmp    %[o], %[oend]\n\t"
            "bne    1b\n\t"
            "ldr    %[A], %[xs]\n\t"
            "ldr    %[B], %[os]\n\t"
            "add    %[x], %[x], %[A]\n\t"
            "add    %[o], %[o], %[B]\n\t"
            "ldr    %[A], %[rows]\n\t"
            "subs   %[A], %[A], #1\n\t"
            "str    %[A], %[rows]\n\t"
            "bne    2b\n\t"
            : [x] "+r"(x), [o] "+r"(o), [t] "=&r"(t), [A] "=&r"(A), [B] "=&r"(B), [P] "=&r"(P), [Q] "=&r"(Q),
              [a0] "=&r"(a0), [a1] "=&r"(a1), [oend] "=&r"(oend), [rows] "+m"(rows_left)
            : [rs] "r"(rs), [wk] "r"(wk), [cn] "r"(cn), [nb] "m"(n_bytes), [xs] "m"(x_step), [os] "m"(o_step),
              [rc] "m"(rc)
            : "cc", "memory");
#undef DW_S2_ROW
    }
}
#endif

/* One output row, 3x3 (see dw_pairs_3x3), then the last output of an odd row. When the row is not the op's last
 * (spill), an odd row ends with a whole pair instead: its second output lands on the next row's first pixel of
 * this channel, which that row overwrites later (its input words are inside the row buffer's slack). */
DW_INLINE void dw_row_3x3(const dw_geom *g, const int16_t *r, const uint32_t *wk, const dw_out *q, int8_t *o,
                          const int32_t mode, const int32_t stride, int32_t spill)
{
    const int32_t cn = g->out_c, rw = g->rw;
    const int32_t n2 = spill ? (g->out_w + 1) / 2 : g->out_w / 2;
    const int16_t *x = dw_pairs_3x3(r, rw * (int32_t)sizeof(int16_t), wk, o, cn, n2, q, mode, stride);
    if ((g->out_w & 1) && !spill)
    {
        const uint32_t *qk = wk + 6;
        int32_t a0 = (int32_t)qk[0];
        for (int32_t ky = 0; ky < 3; ky++)
        {
            a0 = resilinet_smlad(resilinet_read_u32(x), wk[2 * ky], a0);
            a0 = resilinet_smlabt(resilinet_read_u32(x + 2), wk[2 * ky + 1], a0);
            x += rw;
        }
        o[2 * n2 * cn] = dw_rq(a0, qk, q, mode);
    }
}
#endif

/* Which output-row loop a geometry takes. */
#define DW_PATH_GENERIC 0
#define DW_PATH_3X3_S1 1
#define DW_PATH_3X3_S2 2
#define DW_PATH_3X3 3 /* 3x3 at other strides: the 3x3 weight layout, one output at a time */

static int32_t dw_path(const dw_geom *g)
{
#if RESILINET_HAS_DSP
    if (g->kh == 3 && g->kw == 3 && g->sw == 1)
    {
        return DW_PATH_3X3_S1;
    }
    if (g->kh == 3 && g->kw == 3 && g->sw == 2)
    {
        return DW_PATH_3X3_S2;
    }
    if (g->kh == 3 && g->kw == 3)
    {
        return DW_PATH_3X3;
    }
#else
    (void)g;
#endif
    return DW_PATH_GENERIC;
}

/* nb output rows of one channel from its band (plane: the band's first row), each (path, mode) pair its own
 * specialised copy of the loops. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void dw_out_rows(const dw_geom *g, int32_t path, const int16_t *plane, int32_t nb, int32_t last_band,
                        const uint32_t *wk, const dw_out *q, int8_t *o)
{
    const int32_t row_step = g->sh * g->rw, out_step = g->out_w * g->out_c;
#if RESILINET_DSP_ASM
    if (q->mode == DW_FAST && (path == DW_PATH_3X3_S1 || path == DW_PATH_3X3_S2))
    {
        /* Every row but the op's last in assembly (odd rows spill, see dw_row_3x3); that one too, but with
         * out_w / 2 pairs (the row-loop word set for one row, then restored), its odd last output in C below. */
        const int32_t n_asm = last_band ? nb - 1 : nb;
        if (n_asm > 0)
        {
            dw_rows_3x3_asm(plane, g->rw * (int32_t)sizeof(int16_t), wk, o, g->out_c, n_asm, g->sw, q, q->pairs_bytes);
        }
        plane += n_asm * row_step;
        o += n_asm * out_step;
        nb -= n_asm;
        if (nb == 1 && g->out_w >= 2)
        {
            dw_rows_3x3_asm(plane, g->rw * (int32_t)sizeof(int16_t), wk, o, g->out_c, 1, g->sw, q,
                            (g->out_w / 2) * 2 * g->out_c);
            if ((g->out_w & 1) == 0)
            {
                return;
            }
            /* The odd last output alone. */
            const int16_t *x = plane + (g->out_w - 1) * g->sw;
            int32_t a0 = (int32_t)wk[6];
            for (int32_t ky = 0; ky < 3; ky++, x += g->rw)
            {
                a0 = resilinet_smlad(resilinet_read_u32(x), wk[2 * ky], a0);
                a0 = resilinet_smlabt(resilinet_read_u32(x + 2), wk[2 * ky + 1], a0);
            }
            o[(g->out_w - 1) * g->out_c] = dw_rq(a0, wk + 6, q, DW_FAST);
            return;
        }
    }
#endif
    for (int32_t oy = 0; oy < nb; oy++, plane += row_step, o += out_step)
    {
#if RESILINET_HAS_DSP
        const int32_t spill = !(last_band && oy == nb - 1);
        if (q->mode != DW_SLOW && path == DW_PATH_3X3_S1)
        {
            if (q->mode == DW_FAST)
                dw_row_3x3(g, plane, wk, q, o, DW_FAST, 1, spill);
            else
                dw_row_3x3(g, plane, wk, q, o, DW_FAST_CLAMP, 1, spill);
            continue;
        }
        if (q->mode != DW_SLOW && path == DW_PATH_3X3_S2)
        {
            if (q->mode == DW_FAST)
                dw_row_3x3(g, plane, wk, q, o, DW_FAST, 2, spill);
            else
                dw_row_3x3(g, plane, wk, q, o, DW_FAST_CLAMP, 2, spill);
            continue;
        }
        if (path != DW_PATH_GENERIC)
        {
            /* Slow requantization (left shifts, huge biases: rare) or strides over 2, the 3x3 weight layout. */
            for (int32_t ox = 0; ox < g->out_w; ox++)
            {
                int32_t a = (int32_t)wk[6];
                const int16_t *x = plane + ox * g->sw;
                for (int32_t ky = 0; ky < 3; ky++, x += g->rw)
                {
                    a = resilinet_smlad(resilinet_read_u32(x), wk[2 * ky], a);
                    a = resilinet_smlabt(resilinet_read_u32(x + 2), wk[2 * ky + 1], a);
                }
                o[ox * g->out_c] = dw_rq(a, wk + 6, q, q->mode);
            }
            continue;
        }
        if (q->mode == DW_FAST)
        {
            dw_row_generic(g, plane, wk, q, o, DW_FAST);
            continue;
        }
        if (q->mode == DW_FAST_CLAMP)
        {
            dw_row_generic(g, plane, wk, q, o, DW_FAST_CLAMP);
            continue;
        }
#else
        (void)path;
        (void)last_band;
        if (q->mode != DW_SLOW)
        {
            /* Weights prepacked for the fast path (resilinet_depthwise_conv_s8_packed). */
            dw_row_generic(g, plane, wk, q, o, q->mode);
            continue;
        }
#endif
        dw_row_generic(g, plane, wk, q, o, DW_SLOW);
    }
}

/* Weights of output channel oc into wk (see the row loops for the layouts), times scale. */
static void dw_pack_weights(const dw_geom *g, const int8_t *filter, int32_t oc, int32_t scale, uint32_t *wk)
{
    for (int32_t ky = 0; ky < g->kh; ky++)
    {
        const int8_t *f = filter + ky * g->kw * g->out_c + oc;
        if (g->kh == 3 && g->kw == 3) /* every 3x3 path, DSP or not, reads this layout */
        {
            const int32_t w0 = f[0] * scale, w1 = f[g->out_c] * scale, w2 = f[2 * g->out_c] * scale;
            wk[2 * ky] = (uint32_t)(uint16_t)w0 | ((uint32_t)(uint16_t)w1 << 16);
            wk[2 * ky + 1] = (uint32_t)(uint16_t)w1 | ((uint32_t)(uint16_t)w2 << 16);
            continue;
        }
        for (int32_t t = 0; t < g->kwp; t++)
        {
            const int32_t w0 = f[2 * t * g->out_c] * scale;
            const int32_t w1 = 2 * t + 1 < g->kw ? f[(2 * t + 1) * g->out_c] * scale : 0;
            wk[ky * g->kwp + t] = (uint32_t)(uint16_t)w0 | ((uint32_t)(uint16_t)w1 << 16);
        }
    }
}

/* The row-loop words of the 3x3 assembly (dw_out). */
static void dw_pack_geometry(const dw_geom *g, dw_out *q)
{
    const int32_t n2 = (g->out_w + 1) / 2;
    q->pairs_bytes = n2 * 2 * g->out_c;
    q->x_step = (g->sh * g->rw - n2 * 2 * g->sw) * (int32_t)sizeof(int16_t);
    q->o_step = (g->out_w - n2 * 2) * g->out_c;
}

/* The requantization words of output channel oc (DW_WK_EXTRA). */
static void dw_pack_quant(const int32_t *bias, const cmsis_nn_per_channel_quant_params *qp, const dw_out *q,
                          int32_t oc, int32_t scale, uint32_t *qk)
{
    qk[0] = (uint32_t)((bias != NULL ? bias[oc] : 0) * scale);
    qk[1] = (uint32_t)qp->multiplier[oc];
    qk[2] = (uint32_t)(q->mode == DW_SLOW ? qp->shift[oc] : ~qp->shift[oc]);
}

/* ------------------------------------------------------------------------------------------------- driver */

/* Rows of one band: input rows yb .. yb + n - 1 of the group's channels into their planes (zero rows outside
 * the input). */
static void dw_fill_band(const dw_geom *g, const int8_t *in_b, int32_t c, int32_t yb, int32_t n, int16_t *planes,
                         int32_t plane_entries, int32_t off, int32_t one_band)
{
    const int32_t lo = MAX(0, -yb), hi = MIN(n, g->in_h - yb); /* rows inside the input: [lo, hi) */
    for (int32_t r = 0; r < n; r++)
    {
        if (r == lo && hi > lo)
        {
            dw_widen(g, in_b + (yb + lo) * g->in_w * g->in_c + c, planes + lo * g->rw + g->pw, plane_entries, hi - lo,
                     off);
            r = hi - 1;
            continue;
        }
        /* A padding row; with one band it is the same row every time, still zero from the start. */
        for (int32_t j = 0; j < g->group && !one_band; j++)
        {
            memset(planes + j * plane_entries + r * g->rw, 0, (size_t)g->rw * sizeof(int16_t));
        }
    }
}

/* Weights of one call: prepacked (packed: every output channel's words, in order) or packed here per channel
 * group into wk_scratch from the int8 filter and the quantization arrays. */
typedef struct
{
    const uint32_t *packed;
    const int8_t *filter;
    const int32_t *bias;
    const cmsis_nn_per_channel_quant_params *quant;
    uint32_t *wk_scratch;
    int32_t scale;
} dw_weights;

/* The bands and channel groups of a call whose geometry, output mode and weights are set; buf: the scratch. */
static void dw_drive(const dw_geom *g, const dw_out *q, const dw_weights *wt, int8_t *buf, int32_t n_batch,
                     int32_t input_offset, const int8_t *input_data, int8_t *output_data)
{
    const int32_t path = dw_path(g);
    buf += (4 - ((uintptr_t)buf & 3u)) & 3u;
    const int32_t plane_entries = g->band_rows * g->rw;
    int16_t *planes = (int16_t *)(void *)buf;
    /* The padding columns are never written: zero once. */
    memset(planes, 0, (size_t)(g->group * plane_entries) * sizeof(int16_t));
    const int32_t wk_words = g->kh * g->kwp + DW_WK_EXTRA;
    const int32_t n_oc = g->group * g->mult; /* output channels per channel group */
    const int32_t band_out = (g->band_rows - g->kh) / g->sh + 1;
    for (int32_t b = 0; b < n_batch; b++)
    {
        const int8_t *in_b = input_data + b * g->in_h * g->in_w * g->in_c;
        int8_t *out_b = output_data + b * g->out_h * g->out_w * g->out_c;
        for (int32_t c = 0; c < g->in_c; c += g->group)
        {
            const uint32_t *wk = wt->packed != NULL ? wt->packed + c * g->mult * wk_words : wt->wk_scratch;
            for (int32_t j = 0; j < n_oc && wt->packed == NULL; j++)
            {
                const int32_t oc = c * g->mult + j;
                dw_pack_weights(g, wt->filter, oc, wt->scale, wt->wk_scratch + j * wk_words);
                dw_pack_quant(wt->bias, wt->quant, q, oc, wt->scale, wt->wk_scratch + j * wk_words + g->kh * g->kwp);
            }
            for (int32_t ob = 0; ob < g->out_h; ob += band_out)
            {
                const int32_t nb = MIN(band_out, g->out_h - ob);
                dw_fill_band(g, in_b, c, ob * g->sh - g->ph, (nb - 1) * g->sh + g->kh, planes, plane_entries,
                             input_offset, band_out >= g->out_h);
                for (int32_t j = 0; j < n_oc; j++)
                {
                    dw_out_rows(g, path, planes + (j / g->mult) * plane_entries, nb, ob + nb == g->out_h,
                                wk + j * wk_words, q, out_b + ob * g->out_w * g->out_c + c * g->mult + j);
                }
            }
        }
    }
}

arm_cmsis_nn_status resilinet_nn_depthwise_rows_s8(const cmsis_nn_context *ctx,
                                                   const cmsis_nn_dw_conv_params *p,
                                                   const cmsis_nn_per_channel_quant_params *quant_params,
                                                   const cmsis_nn_dims *input_dims,
                                                   const int8_t *input_data,
                                                   const cmsis_nn_dims *filter_dims,
                                                   const int8_t *filter_data,
                                                   const int32_t *bias_data,
                                                   const cmsis_nn_dims *output_dims,
                                                   int8_t *output_data)
{
    dw_geom g;
    if (!dw_geom_init(&g, p, input_dims, filter_dims, output_dims) || ctx == NULL || ctx->buf == NULL ||
        ctx->size < dw_geom_bytes(&g, 0))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    dw_out q = {p->output_offset, p->activation.min, p->activation.max, 1 + 2 * p->output_offset, DW_SLOW, 0, 0, 0};
    dw_pack_geometry(&g, &q);
#if RESILINET_HAS_DSP
    resilinet_nn_requant_params rq;
    resilinet_nn_requant_init(&rq, bias_data, quant_params->multiplier, quant_params->shift, 1, g.out_c,
                              p->output_offset, p->activation.min, p->activation.max, g.kh * g.kw, p->input_offset);
    if (rq.fast)
    {
        q.mode = rq.full_range ? DW_FAST : DW_FAST_CLAMP;
    }
#endif
    /* The channel group's packed words after the rows (dw_geom_bytes). */
    int8_t *buf = (int8_t *)ctx->buf;
    uint32_t *wk = (uint32_t *)(void *)(buf + ((4 - ((uintptr_t)buf & 3u)) & 3u) +
                                        g.group * g.band_rows * g.rw * (int32_t)sizeof(int16_t));
    const dw_weights wt = {NULL, filter_data, bias_data, quant_params, wk, q.mode == DW_SLOW ? 1 : 2};
    dw_drive(&g, &q, &wt, buf, input_dims->n, p->input_offset, input_data, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status resilinet_nn_depthwise_rows_s8_packed(const cmsis_nn_context *ctx,
                                                         const cmsis_nn_dw_conv_params *p,
                                                         const cmsis_nn_dims *input_dims,
                                                         const int8_t *input_data,
                                                         const cmsis_nn_dims *filter_dims,
                                                         const int32_t *packed,
                                                         const cmsis_nn_dims *output_dims,
                                                         int8_t *output_data)
{
    dw_geom g;
    if (!dw_geom_init(&g, p, input_dims, filter_dims, output_dims) || ctx == NULL || ctx->buf == NULL ||
        ctx->size < dw_geom_bytes(&g, 1) || packed == NULL || (packed[0] != 0 && packed[0] != 1))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    /* packed[0]: 1 when codegen found the fast requantization exact for every channel (its weights and biases
     * are then doubled, its shifts stored as ~shift), 0 otherwise. */
    dw_out q = {p->output_offset, p->activation.min, p->activation.max, 1 + 2 * p->output_offset, DW_SLOW, 0, 0, 0};
    dw_pack_geometry(&g, &q);
    if (packed[0] == 1)
    {
        q.mode = p->activation.min <= -128 && p->activation.max >= 127 ? DW_FAST : DW_FAST_CLAMP;
    }
    const dw_weights wt = {(const uint32_t *)(const void *)(packed + 1), NULL, NULL, NULL, NULL, 1};
    dw_drive(&g, &q, &wt, (int8_t *)ctx->buf, input_dims->n, p->input_offset, input_data, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
