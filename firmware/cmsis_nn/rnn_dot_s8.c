/*
 * resilinet-mcu: the inner products every MAC-heavy kernel reduces to.
 *
 * On DSP cores four int8 pairs are handled per iteration: SXTB16/SXTAB16 widen bytes 0,2 and (after a
 * rotate by 8) bytes 1,3 to 16-bit lanes -- adding the input offset on the way -- and two SMLADs
 * accumulate the four products. The portable loop adds the same products in a different order; int32
 * sums of these bounded terms are exact, so both paths return the same value.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnsupportfunctions.h"

int32_t rnn_dot_s8_offset(const int8_t *x, const int8_t *w, int32_t n, int32_t x_offset)
{
    int32_t acc = 0;
    int32_t i = 0;
#if RNN_HAS_DSP
    const uint32_t off2 = rnn_dup16(x_offset);
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t xv = rnn_read_u32(x + i);
        const uint32_t wv = rnn_read_u32(w + i);
        acc = rnn_smlad(rnn_sxtab16(off2, xv), rnn_sxtb16(wv), acc);
        acc = rnn_smlad(rnn_sxtab16(off2, rnn_ror(xv, 8)), rnn_sxtb16(rnn_ror(wv, 8)), acc);
    }
#endif
    for (; i < n; i++)
    {
        acc += (int32_t)w[i] * ((int32_t)x[i] + x_offset);
    }
    return acc;
}

void rnn_dot2_s8_offset(const int8_t *x,
                        const int8_t *w0,
                        const int8_t *w1,
                        int32_t n,
                        int32_t x_offset,
                        int32_t *acc0,
                        int32_t *acc1)
{
    int32_t a0 = 0;
    int32_t a1 = 0;
    int32_t i = 0;
#if RNN_HAS_DSP
    const uint32_t off2 = rnn_dup16(x_offset);
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t xv = rnn_read_u32(x + i);
        const uint32_t x02 = rnn_sxtab16(off2, xv);
        const uint32_t x13 = rnn_sxtab16(off2, rnn_ror(xv, 8));
        const uint32_t v0 = rnn_read_u32(w0 + i);
        const uint32_t v1 = rnn_read_u32(w1 + i);
        a0 = rnn_smlad(x02, rnn_sxtb16(v0), a0);
        a0 = rnn_smlad(x13, rnn_sxtb16(rnn_ror(v0, 8)), a0);
        a1 = rnn_smlad(x02, rnn_sxtb16(v1), a1);
        a1 = rnn_smlad(x13, rnn_sxtb16(rnn_ror(v1, 8)), a1);
    }
#endif
    for (; i < n; i++)
    {
        const int32_t xi = (int32_t)x[i] + x_offset;
        a0 += (int32_t)w0[i] * xi;
        a1 += (int32_t)w1[i] * xi;
    }
    *acc0 = a0;
    *acc1 = a1;
}

/* The DSP build lays each group of four column entries out as c0,c2,c1,c3 (see rnn_im2col_index), so
 * that the two 32-bit words of a group pair up with SXTB16 of the weights and of the weights rotated
 * by 8 without any repacking. */
int32_t rnn_dot_s16_s8(const int16_t *col, const int8_t *w, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if RNN_HAS_DSP
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t wv = rnn_read_u32(w + i);
        acc = rnn_smlad(rnn_read_u32(col + i), rnn_sxtb16(wv), acc);
        acc = rnn_smlad(rnn_read_u32(col + i + 2), rnn_sxtb16(rnn_ror(wv, 8)), acc);
    }
#endif
    for (; i < n; i++)
    {
        acc += (int32_t)w[i] * (int32_t)col[i];
    }
    return acc;
}

/* Two im2col columns against one weight row: each weight word is loaded and widened once. */
void rnn_dot2_s16_s8(const int16_t *col0,
                     const int16_t *col1,
                     const int8_t *w,
                     int32_t n,
                     int32_t *acc0,
                     int32_t *acc1)
{
    int32_t a0 = 0;
    int32_t a1 = 0;
    int32_t i = 0;
#if RNN_HAS_DSP
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t wv = rnn_read_u32(w + i);
        const uint32_t w02 = rnn_sxtb16(wv);
        const uint32_t w13 = rnn_sxtb16(rnn_ror(wv, 8));
        a0 = rnn_smlad(rnn_read_u32(col0 + i), w02, a0);
        a0 = rnn_smlad(rnn_read_u32(col0 + i + 2), w13, a0);
        a1 = rnn_smlad(rnn_read_u32(col1 + i), w02, a1);
        a1 = rnn_smlad(rnn_read_u32(col1 + i + 2), w13, a1);
    }
#endif
    for (; i < n; i++)
    {
        const int32_t wi = (int32_t)w[i];
        a0 += wi * (int32_t)col0[i];
        a1 += wi * (int32_t)col1[i];
    }
    *acc0 = a0;
    *acc1 = a1;
}

#if RNN_HAS_DSP
static inline int64_t rnn_abs64(int64_t v) { return v < 0 ? -v : v; }

void rnn_rq_init(rnn_rq_t *rq,
                 const int32_t *bias,
                 const int32_t *mult,
                 const int32_t *shift,
                 int32_t q_stride,
                 int32_t n_ch,
                 int32_t out_offset,
                 int32_t act_min,
                 int32_t act_max,
                 int32_t n_terms,
                 int32_t input_offset)
{
    rq->bias = bias;
    rq->mult = mult;
    rq->shift = shift;
    rq->q_stride = q_stride;
    rq->out_offset = out_offset;
    rq->act_min = act_min;
    rq->act_max = act_max;
    rq->full_range = act_min <= -128 && act_max >= 127;
    rq->c = 1 + 2 * out_offset;
    /* |acc| <= |bias| + n_terms * max|x + input_offset| * 128 must stay below 2^30. */
    const int64_t x_max = MAX(rnn_abs64((int64_t)input_offset - 128), rnn_abs64((int64_t)input_offset + 127));
    const int64_t limit = ((int64_t)1 << 30) - (int64_t)n_terms * x_max * 128;
    int32_t fast = out_offset >= -128 && out_offset <= 127 && limit > 1;
    const int32_t n_q = q_stride ? n_ch : 1;
    for (int32_t ch = 0; fast && ch < n_q; ch++)
    {
        fast = shift[ch] <= -1 && shift[ch] >= -31 && mult[ch] >= 0;
    }
    if (fast && bias != NULL)
    {
        /* b ^ (b >> 31) is |b| or |b| - 1; OR-ing them bounds the largest from above (up to one). */
        uint32_t m = 0;
        for (int32_t ch = 0; ch < n_ch; ch++)
        {
            m |= (uint32_t)(bias[ch] ^ (bias[ch] >> 31));
        }
        fast = (int64_t)m + 1 < limit;
    }
    rq->fast = fast;
}

/* The last, partial group of a weight row: bytes w[0..r-1] (1 <= r <= 3) in the low bytes of a word. When
 * the row is at least 4 long, the word ending at w + r is in bounds and one load does it. */
static inline uint32_t rnn_tail_w(const int8_t *w, int32_t r, int32_t k)
{
    if (k >= 4)
    {
        return rnn_read_u32(w + r - 4) >> (32 - 8 * r);
    }
    uint32_t v = 0;
    for (int32_t i = 0; i < r; i++)
    {
        v |= (uint32_t)(uint8_t)w[i] << (8 * i);
    }
    return v;
}

static inline int8_t rnn_rq_fast_act(const rnn_rq_t *rq, int32_t acc, int32_t m, int32_t e1)
{
    int32_t v = rnn_rq_fast(acc, m, e1, rq->c);
    if (!rq->full_range)
    {
        v = MAX(v, rq->act_min);
        v = MIN(v, rq->act_max);
    }
    return (int8_t)v;
}

/* Requantize and store one channel's accumulators for one or two columns (any path). */
static void rnn_mm_store(const rnn_rq_t *rq, int32_t oc, int32_t a0, int32_t a1, int8_t *out0, int8_t *out1)
{
    if (rq->fast)
    {
        const int32_t m = rq->mult[oc * rq->q_stride];
        const int32_t e = ~rq->shift[oc * rq->q_stride];
        const int8_t v0 = rnn_rq_fast_act(rq, a0, m, e);
        if (out1 != NULL)
        {
            out1[oc] = rnn_rq_fast_act(rq, a1, m, e);
        }
        out0[oc] = v0;
    }
    else
    {
        out0[oc] = rnn_rq_one(rq, a0, oc);
        if (out1 != NULL)
        {
            out1[oc] = rnn_rq_one(rq, a1, oc);
        }
    }
}

/* The 2x2 inner loop over g groups of four entries (g >= 1): rows w0, w1 against the interleaved column
 * pair p. Per group: two LDR and four SXTB16 widen one word of each row, two LDRD fetch the two columns,
 * eight SMLAD make 16 MACs. It needs 14 registers; GCC spills at that pressure, so on the target it is
 * written out (the C below is the same computation, used by the host DSP emulation). */
typedef struct
{
    int32_t a00, a01, a10, a11;
} rnn_acc4_t;

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void rnn_mm2_loop(const rnn_u32a **pp, const int8_t **pw0, const int8_t **pw1, int32_t g, rnn_acc4_t *acc)
{
#if !RNN_DSP_ASM
    const rnn_u32a *p = *pp;
    const int8_t *w0 = *pw0, *w1 = *pw1;
    int32_t a00 = acc->a00, a01 = acc->a01, a10 = acc->a10, a11 = acc->a11;
    for (; g > 0; g--)
    {
        const uint32_t wv0 = rnn_read_u32(w0);
        const uint32_t wv1 = rnn_read_u32(w1);
        w0 += 4;
        w1 += 4;
        const uint32_t w0a = rnn_sxtb16(wv0), w0b = rnn_sxtb16_ror8(wv0);
        const uint32_t w1a = rnn_sxtb16(wv1), w1b = rnn_sxtb16_ror8(wv1);
        a00 = rnn_smlad(p[0], w0a, a00);
        a00 = rnn_smlad(p[1], w0b, a00);
        a10 = rnn_smlad(p[0], w1a, a10);
        a10 = rnn_smlad(p[1], w1b, a10);
        a01 = rnn_smlad(p[2], w0a, a01);
        a01 = rnn_smlad(p[3], w0b, a01);
        a11 = rnn_smlad(p[2], w1a, a11);
        a11 = rnn_smlad(p[3], w1b, a11);
        p += 4;
    }
    *pp = p;
    *pw0 = w0;
    *pw1 = w1;
    acc->a00 = a00;
    acc->a01 = a01;
    acc->a10 = a10;
    acc->a11 = a11;
#else
    const rnn_u32a *p = *pp;
    const int8_t *w0 = *pw0, *w1 = *pw1;
    int32_t a00 = acc->a00, a01 = acc->a01, a10 = acc->a10, a11 = acc->a11;
    uint32_t wa, wb = (uint32_t)g, wc, wd, xa, xb;
#define RNN_MM2_GROUP                          \
    "ldr    %[wb], [%[w0]], #4\n\t"            \
    "ldr    %[wd], [%[w1]], #4\n\t"            \
    "sxtb16 %[wa], %[wb]\n\t"                  \
    "sxtb16 %[wb], %[wb], ror #8\n\t"          \
    "sxtb16 %[wc], %[wd]\n\t"                  \
    "sxtb16 %[wd], %[wd], ror #8\n\t"          \
    "ldrd   %[xa], %[xb], [%[p]], #16\n\t"     \
    "smlad  %[a00], %[xa], %[wa], %[a00]\n\t"  \
    "smlad  %[a00], %[xb], %[wb], %[a00]\n\t"  \
    "smlad  %[a10], %[xa], %[wc], %[a10]\n\t"  \
    "smlad  %[a10], %[xb], %[wd], %[a10]\n\t"  \
    "ldrd   %[xa], %[xb], [%[p], #-8]\n\t"     \
    "smlad  %[a01], %[xa], %[wa], %[a01]\n\t"  \
    "smlad  %[a01], %[xb], %[wb], %[a01]\n\t"  \
    "smlad  %[a11], %[xa], %[wc], %[a11]\n\t"  \
    "smlad  %[a11], %[xb], %[wd], %[a11]\n\t"
    /* One statement, 13 registers (so it also builds with a frame pointer): four groups per iteration, the
     * first iteration entered part-way through (TBB on -g % 4, Duff's device), the counter in memory. */
    int32_t gm = (g + 3) >> 2;
    __asm__("ldr    %[wa], %[g]\n\t"
            "lsls   %[wa], %[wa], #2\n\t"
            "subs   %[wa], %[wa], %[wb]\n\t"
            "and    %[wa], %[wa], #3\n\t"
            "tbb    [pc, %[wa]]\n\t"
            "0:\n\t"
            ".byte  (10f - 0b) / 2, (11f - 0b) / 2, (12f - 0b) / 2, (13f - 0b) / 2\n\t"
            "10:\n\t" RNN_MM2_GROUP
            "11:\n\t" RNN_MM2_GROUP
            "12:\n\t" RNN_MM2_GROUP
            "13:\n\t" RNN_MM2_GROUP
            "ldr    %[wa], %[g]\n\t"
            "subs   %[wa], %[wa], #1\n\t"
            "str    %[wa], %[g]\n\t"
            "bne    10b\n\t"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [p] "+r"(p), [w0] "+r"(w0),
              [w1] "+r"(w1), [g] "+m"(gm), [wa] "=&r"(wa), [wb] "+&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd),
              [xa] "=&r"(xa), [xb] "=&r"(xb)
            :
            : "memory", "cc");
#undef RNN_MM2_GROUP
    *pp = p;
    *pw0 = w0;
    *pw1 = w1;
    acc->a00 = a00;
    acc->a01 = a01;
    acc->a10 = a10;
    acc->a11 = a11;
#endif
}

/* The last partial group (r = k % 4 entries) of rows w0, w1 against the column pair at p. */
static inline void rnn_mm2_tail(const rnn_u32a *p, const int8_t *w0, const int8_t *w1, int32_t r, int32_t k,
                                rnn_acc4_t *acc)
{
    const uint32_t wv0 = rnn_tail_w(w0, r, k);
    const uint32_t wv1 = rnn_tail_w(w1, r, k);
    const uint32_t w0a = rnn_sxtb16(wv0), w0b = rnn_sxtb16_ror8(wv0);
    const uint32_t w1a = rnn_sxtb16(wv1), w1b = rnn_sxtb16_ror8(wv1);
    acc->a00 = rnn_smlad(p[0], w0a, acc->a00);
    acc->a00 = rnn_smlad(p[1], w0b, acc->a00);
    acc->a10 = rnn_smlad(p[0], w1a, acc->a10);
    acc->a10 = rnn_smlad(p[1], w1b, acc->a10);
    acc->a01 = rnn_smlad(p[2], w0a, acc->a01);
    acc->a01 = rnn_smlad(p[3], w0b, acc->a01);
    acc->a11 = rnn_smlad(p[2], w1a, acc->a11);
    acc->a11 = rnn_smlad(p[3], w1b, acc->a11);
}

static const int32_t rnn_zero_bias[2] = {0, 0};

/* Two output channels x two columns per step (see rnn_mm2_loop). */
static void rnn_mm2_s16_s8(const rnn_u32a *cols,
                           int32_t k,
                           const int8_t *w,
                           int32_t out_c,
                           const rnn_rq_t *rq,
                           int8_t *out0,
                           int8_t *out1)
{
    const int32_t groups = k >> 2;
    const int32_t r = k & 3;
    int32_t oc = 0;
    if (rq->fast && rq->full_range && rq->q_stride == 1)
    {
        /* The common case, kept tight: pointers walk the rows, channels and outputs. */
        const int32_t *bias = rq->bias != NULL ? rq->bias : rnn_zero_bias;
        const int32_t bstep = rq->bias != NULL ? 2 : 0;
        const int32_t *mult = rq->mult;
        const int32_t *shift = rq->shift;
        const int32_t c = rq->c;
        /* With k % 4 != 0 the last group of a row also reads the first bytes of the next row; the column's
         * padding entries are 0, so they add nothing. That read stays inside the weights when k >= 4 and a row
         * follows the pair (4 - r <= k bytes of it are touched); the last pair otherwise ends exactly. */
        const int32_t gfull = (k + 3) >> 2;
        const int32_t adj = k - 4 * gfull;
        const int32_t npairs = out_c >> 1;
        const int32_t nfull = r == 0 ? npairs : (k < 4 ? 0 : ((out_c & 1) ? npairs : npairs - 1));
        const int8_t *w0 = w;
        for (; oc < 2 * npairs; oc += 2)
        {
            const int8_t *w1 = w0 + k;
            rnn_acc4_t acc = {bias[0], bias[0], bias[1], bias[1]};
            bias += bstep;
            const rnn_u32a *p = cols;
            if (oc < 2 * nfull)
            {
                rnn_mm2_loop(&p, &w0, &w1, gfull, &acc);
            }
            else
            {
                if (groups > 0)
                {
                    rnn_mm2_loop(&p, &w0, &w1, groups, &acc);
                }
                rnn_mm2_tail(p, w0, w1, r, k, &acc);
                w1 += 4; /* as if the last group had been read whole */
            }
            w0 = w1 + adj;
            const int32_t m0 = mult[0], m1 = mult[1];
            const int32_t e0 = ~shift[0], e1 = ~shift[1];
            mult += 2;
            shift += 2;
            out0[0] = (int8_t)rnn_rq_fast(acc.a00, m0, e0, c);
            out0[1] = (int8_t)rnn_rq_fast(acc.a10, m1, e1, c);
            out1[0] = (int8_t)rnn_rq_fast(acc.a01, m0, e0, c);
            out1[1] = (int8_t)rnn_rq_fast(acc.a11, m1, e1, c);
            out0 += 2;
            out1 += 2;
        }
        out0 -= oc;
        out1 -= oc;
    }
    else
    {
        const int32_t *bias = rq->bias;
        for (; oc + 2 <= out_c; oc += 2)
        {
            const int8_t *w0 = w + oc * k;
            const int8_t *w1 = w0 + k;
            const int32_t b0 = bias != NULL ? bias[oc] : 0;
            const int32_t b1 = bias != NULL ? bias[oc + 1] : 0;
            rnn_acc4_t acc = {b0, b0, b1, b1};
            const rnn_u32a *p = cols;
            if (groups > 0)
            {
                rnn_mm2_loop(&p, &w0, &w1, groups, &acc);
            }
            if (r)
            {
                rnn_mm2_tail(p, w0, w1, r, k, &acc);
            }
            rnn_mm_store(rq, oc, acc.a00, acc.a01, out0, out1);
            rnn_mm_store(rq, oc + 1, acc.a10, acc.a11, out0, out1);
        }
    }
    if (oc < out_c)
    {
        const int32_t *bias = rq->bias;
        const int8_t *w0 = w + oc * k;
        int32_t a00 = bias != NULL ? bias[oc] : 0;
        int32_t a01 = a00;
        const rnn_u32a *p = cols;
        for (int32_t g = groups; g > 0; g--)
        {
            const uint32_t wv0 = rnn_read_u32(w0);
            w0 += 4;
            const uint32_t w0a = rnn_sxtb16(wv0), w0b = rnn_sxtb16_ror8(wv0);
            a00 = rnn_smlad(p[0], w0a, a00);
            a00 = rnn_smlad(p[1], w0b, a00);
            a01 = rnn_smlad(p[2], w0a, a01);
            a01 = rnn_smlad(p[3], w0b, a01);
            p += 4;
        }
        if (r)
        {
            const uint32_t wv0 = rnn_tail_w(w0, r, k);
            const uint32_t w0a = rnn_sxtb16(wv0), w0b = rnn_sxtb16_ror8(wv0);
            a00 = rnn_smlad(p[0], w0a, a00);
            a00 = rnn_smlad(p[1], w0b, a00);
            a01 = rnn_smlad(p[2], w0a, a01);
            a01 = rnn_smlad(p[3], w0b, a01);
        }
        rnn_mm_store(rq, oc, a00, a01, out0, out1);
    }
}

/* One column, two output channels per step. */
static void rnn_mm1_s16_s8(const rnn_u32a *col,
                           int32_t k,
                           const int8_t *w,
                           int32_t out_c,
                           const rnn_rq_t *rq,
                           int8_t *out0)
{
    const int32_t groups = k >> 2;
    const int32_t r = k & 3;
    const int32_t *bias = rq->bias;
    for (int32_t oc = 0; oc < out_c; oc += 2)
    {
        const int32_t two = oc + 1 < out_c;
        const int8_t *w0 = w + oc * k;
        const int8_t *w1 = two ? w0 + k : w0;
        int32_t a0 = bias != NULL ? bias[oc] : 0;
        int32_t a1 = (bias != NULL && two) ? bias[oc + 1] : 0;
        const rnn_u32a *p = col;
        for (int32_t g = groups; g > 0; g--)
        {
            const uint32_t wv0 = rnn_read_u32(w0);
            const uint32_t wv1 = rnn_read_u32(w1);
            w0 += 4;
            w1 += 4;
            const uint32_t xa = p[0], xb = p[1];
            p += 2;
            a0 = rnn_smlad(xa, rnn_sxtb16(wv0), a0);
            a0 = rnn_smlad(xb, rnn_sxtb16_ror8(wv0), a0);
            a1 = rnn_smlad(xa, rnn_sxtb16(wv1), a1);
            a1 = rnn_smlad(xb, rnn_sxtb16_ror8(wv1), a1);
        }
        if (r)
        {
            const uint32_t wv0 = rnn_tail_w(w0, r, k);
            const uint32_t wv1 = rnn_tail_w(w1, r, k);
            a0 = rnn_smlad(p[0], rnn_sxtb16(wv0), a0);
            a0 = rnn_smlad(p[1], rnn_sxtb16_ror8(wv0), a0);
            a1 = rnn_smlad(p[0], rnn_sxtb16(wv1), a1);
            a1 = rnn_smlad(p[1], rnn_sxtb16_ror8(wv1), a1);
        }
        rnn_mm_store(rq, oc, a0, 0, out0, NULL);
        if (two)
        {
            rnn_mm_store(rq, oc + 1, a1, 0, out0, NULL);
        }
    }
}

void rnn_mm_s16_s8(const rnn_u32a *cols,
                   int32_t two,
                   int32_t k,
                   const int8_t *w,
                   int32_t out_c,
                   const rnn_rq_t *rq,
                   int8_t *out0,
                   int8_t *out1)
{
    if (two)
    {
        rnn_mm2_s16_s8(cols, k, w, out_c, rq, out0, out1);
    }
    else
    {
        rnn_mm1_s16_s8(cols, k, w, out_c, rq, out0);
    }
}
/* Four weight rows (w, w + d, w + 2d, w + 3d) against one int8 vector x with offset, over g groups of four
 * (g >= 1): per group one LDR and two SXTAB16 widen the inputs, and per row one LDR, two SXTB16 and two
 * SMLAD. Accumulates into acc[0..3]. */
void rnn_dot4_s8_offset(const int8_t *x, const int8_t *w, int32_t d, int32_t g, uint32_t off2, int32_t *acc)
{
#if !RNN_DSP_ASM
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (; g > 0; g--)
    {
        const uint32_t xv = rnn_read_u32(x);
        const uint32_t xa = rnn_sxtab16(off2, xv), xb = rnn_sxtab16_ror8(off2, xv);
        uint32_t v = rnn_read_u32(w);
        a0 = rnn_smlad(xa, rnn_sxtb16(v), a0);
        a0 = rnn_smlad(xb, rnn_sxtb16_ror8(v), a0);
        v = rnn_read_u32(w + d);
        a1 = rnn_smlad(xa, rnn_sxtb16(v), a1);
        a1 = rnn_smlad(xb, rnn_sxtb16_ror8(v), a1);
        v = rnn_read_u32(w + 2 * d);
        a2 = rnn_smlad(xa, rnn_sxtb16(v), a2);
        a2 = rnn_smlad(xb, rnn_sxtb16_ror8(v), a2);
        v = rnn_read_u32(w + 3 * d);
        a3 = rnn_smlad(xa, rnn_sxtb16(v), a3);
        a3 = rnn_smlad(xb, rnn_sxtb16_ror8(v), a3);
        x += 4;
        w += 4;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
#else
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *wa = w;
    const int8_t *wb = w + 2 * d;
    int32_t dd = d;
    uint32_t o2 = off2;
    uint32_t xa, xb, v, t;
#define RNN_DOT4_GROUP                              \
    "ldr    %[xb], [%[x]], #4\n\t"                  \
    "sxtab16 %[xa], %[off2], %[xb]\n\t"             \
    "sxtab16 %[xb], %[off2], %[xb], ror #8\n\t"     \
    "ldr    %[v], [%[wa], %[d]]\n\t"                \
    "sxtb16 %[t], %[v]\n\t"                         \
    "sxtb16 %[v], %[v], ror #8\n\t"                 \
    "smlad  %[a1], %[xa], %[t], %[a1]\n\t"          \
    "smlad  %[a1], %[xb], %[v], %[a1]\n\t"          \
    "ldr    %[v], [%[wa]], #4\n\t"                  \
    "sxtb16 %[t], %[v]\n\t"                         \
    "sxtb16 %[v], %[v], ror #8\n\t"                 \
    "smlad  %[a0], %[xa], %[t], %[a0]\n\t"          \
    "smlad  %[a0], %[xb], %[v], %[a0]\n\t"          \
    "ldr    %[v], [%[wb], %[d]]\n\t"                \
    "sxtb16 %[t], %[v]\n\t"                         \
    "sxtb16 %[v], %[v], ror #8\n\t"                 \
    "smlad  %[a3], %[xa], %[t], %[a3]\n\t"          \
    "smlad  %[a3], %[xb], %[v], %[a3]\n\t"          \
    "ldr    %[v], [%[wb]], #4\n\t"                  \
    "sxtb16 %[t], %[v]\n\t"                         \
    "sxtb16 %[v], %[v], ror #8\n\t"                 \
    "smlad  %[a2], %[xa], %[t], %[a2]\n\t"          \
    "smlad  %[a2], %[xb], %[v], %[a2]\n\t"
    /* 13 registers (the group counter lives in memory): an odd group first, then two per iteration. */
    int32_t gm = g;
    __asm__("ldr    %[t], %[g]\n\t"
            "tst    %[t], #1\n\t"
            "beq    2f\n\t"
            RNN_DOT4_GROUP
            "2:\n\t"
            "ldr    %[t], %[g]\n\t"
            "lsrs   %[t], %[t], #1\n\t"
            "beq    3f\n\t"
            "str    %[t], %[g]\n\t"
            "1:\n\t"
            RNN_DOT4_GROUP RNN_DOT4_GROUP
            "ldr    %[t], %[g]\n\t"
            "subs   %[t], %[t], #1\n\t"
            "str    %[t], %[g]\n\t"
            "bne    1b\n\t"
            "3:\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [wa] "+r"(wa), [wb] "+r"(wb),
              [g] "+m"(gm), [xa] "=&r"(xa), [xb] "=&r"(xb), [v] "=&r"(v), [t] "=&r"(t), [d] "+r"(dd), [off2] "+r"(o2)
            :
            : "memory", "cc");
#undef RNN_DOT4_GROUP
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
#endif
}


#endif /* RNN_HAS_DSP */

#endif /* RESILINET_USE_CMSIS_NN */
