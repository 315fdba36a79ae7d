/*
 * resilinet-mcu: the DSP matrix kernel behind the convolutions on int8 weights (the arm_* entry points; generated
 * code's int16 weights: resilinet_nn_mat_mult_kernel_s16w.c): int8 weight rows against offset-corrected int16
 * im2col columns, two output channels x two columns per step, requantized on the way out.
 * Internal support function (the role of CMSIS-NN's arm_nn_mat_mult_kernel_s8_s16), not CMSIS-NN API.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnsupportfunctions.h"

#if RESILINET_HAS_DSP
/* The last, partial group of a weight row: bytes w[0..r-1] (1 <= r <= 3) in the low bytes of a word. When
 * the row is at least 4 long, the word ending at w + r is in bounds and one load does it. */
static inline uint32_t tail_word(const int8_t *w, int32_t r, int32_t k)
{
    if (k >= 4)
    {
        return resilinet_read_u32(w + r - 4) >> (32 - 8 * r);
    }
    uint32_t v = 0;
    for (int32_t i = 0; i < r; i++)
    {
        v |= (uint32_t)(uint8_t)w[i] << (8 * i);
    }
    return v;
}

static inline int8_t requant_fast_act(const resilinet_nn_requant_params *rq, int32_t acc, int32_t m, int32_t e1)
{
    int32_t v = resilinet_nn_requant_fast(acc, m, e1, rq->c);
    if (!rq->full_range)
    {
        v = MAX(v, rq->act_min);
        v = MIN(v, rq->act_max);
    }
    return (int8_t)v;
}

/* Requantize and store one channel's accumulators for one or two columns (any path; declared in
 * arm_nnsupportfunctions.h, shared with resilinet_nn_mat_mult_kernel_s16w.c). */
void resilinet_nn_mat_mult_store(const resilinet_nn_requant_params *rq,
                                 int32_t oc,
                                 int32_t a0,
                                 int32_t a1,
                                 int8_t *out0,
                                 int8_t *out1)
{
    if (rq->fast)
    {
        const int32_t m = rq->mult[oc * rq->q_stride];
        const int32_t e = ~rq->shift[oc * rq->q_stride];
        const int8_t v0 = requant_fast_act(rq, a0, m, e);
        if (out1 != NULL)
        {
            out1[oc] = requant_fast_act(rq, a1, m, e);
        }
        out0[oc] = v0;
    }
    else
    {
        out0[oc] = resilinet_nn_requant_one(rq, a0, oc);
        if (out1 != NULL)
        {
            out1[oc] = resilinet_nn_requant_one(rq, a1, oc);
        }
    }
}

/* The 2x2 inner loop over g groups of four entries (g >= 1): rows w0, w1 against the interleaved column
 * pair p. Per group: two LDR and four SXTB16 widen one word of each row, two LDRD fetch the two columns,
 * eight SMLAD make 16 MACs. It needs 14 registers; GCC spills at that pressure, so on the target it is
 * written out (the C below is the same computation, used by the host DSP emulation). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void mat_mult_2x2_loop(const resilinet_u32a **pp,
                                     const int8_t **pw0,
                                     const int8_t **pw1,
                                     int32_t g,
                                     resilinet_acc_2x2_t *acc)
{
#if !RESILINET_DSP_ASM
    const resilinet_u32a *p = *pp;
    const int8_t *w0 = *pw0, *w1 = *pw1;
    int32_t a00 = acc->a00, a01 = acc->a01, a10 = acc->a10, a11 = acc->a11;
    for (; g > 0; g--)
    {
        const uint32_t wv0 = resilinet_read_u32(w0);
        const uint32_t wv1 = resilinet_read_u32(w1);
        w0 += 4;
        w1 += 4;
        const uint32_t w0a = resilinet_sxtb16(wv0), w0b = resilinet_sxtb16_ror8(wv0);
        const uint32_t w1a = resilinet_sxtb16(wv1), w1b = resilinet_sxtb16_ror8(wv1);
        a00 = resilinet_smlad(p[0], w0a, a00);
        a00 = resilinet_smlad(p[1], w0b, a00);
        a10 = resilinet_smlad(p[0], w1a, a10);
        a10 = resilinet_smlad(p[1], w1b, a10);
        a01 = resilinet_smlad(p[2], w0a, a01);
        a01 = resilinet_smlad(p[3], w0b, a01);
        a11 = resilinet_smlad(p[2], w1a, a11);
        a11 = resilinet_smlad(p[3], w1b, a11);
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
    const resilinet_u32a *p = *pp;
    const int8_t *w0 = *pw0, *w1 = *pw1;
    int32_t a00 = acc->a00, a01 = acc->a01, a10 = acc->a10, a11 = acc->a11;
    uint32_t wa, wb = (uint32_t)g, wc, wd, xa, xb;
#define MAT_MULT_2X2_GROUP_ASM                          \
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
            "10:\n\t" MAT_MULT_2X2_GROUP_ASM
            "11:\n\t" MAT_MULT_2X2_GROUP_ASM
            "12:\n\t" MAT_MULT_2X2_GROUP_ASM
            "13:\n\t" MAT_MULT_2X2_GROUP_ASM
            "ldr    %[wa], %[g]\n\t"
            "subs   %[wa], %[wa], #1\n\t"
            "str    %[wa], %[g]\n\t"
            "bne    10b\n\t"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [p] "+r"(p), [w0] "+r"(w0),
              [w1] "+r"(w1), [g] "+m"(gm), [wa] "=&r"(wa), [wb] "+&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd),
              [xa] "=&r"(xa), [xb] "=&r"(xb)
            :
            : "memory", "cc");
#undef MAT_MULT_2X2_GROUP_ASM
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
static inline void mat_mult_2x2_tail(const resilinet_u32a *p, const int8_t *w0, const int8_t *w1, int32_t r, int32_t k,
                                     resilinet_acc_2x2_t *acc)
{
    const uint32_t wv0 = tail_word(w0, r, k);
    const uint32_t wv1 = tail_word(w1, r, k);
    const uint32_t w0a = resilinet_sxtb16(wv0), w0b = resilinet_sxtb16_ror8(wv0);
    const uint32_t w1a = resilinet_sxtb16(wv1), w1b = resilinet_sxtb16_ror8(wv1);
    acc->a00 = resilinet_smlad(p[0], w0a, acc->a00);
    acc->a00 = resilinet_smlad(p[1], w0b, acc->a00);
    acc->a10 = resilinet_smlad(p[0], w1a, acc->a10);
    acc->a10 = resilinet_smlad(p[1], w1b, acc->a10);
    acc->a01 = resilinet_smlad(p[2], w0a, acc->a01);
    acc->a01 = resilinet_smlad(p[3], w0b, acc->a01);
    acc->a11 = resilinet_smlad(p[2], w1a, acc->a11);
    acc->a11 = resilinet_smlad(p[3], w1b, acc->a11);
}

static const int32_t zero_bias[2] = {0, 0};

/* Two output channels x two columns per step (see mat_mult_2x2_loop). */
static void mat_mult_2x2_s8_s16(const resilinet_u32a *cols,
                                int32_t k,
                                const int8_t *w,
                                int32_t out_c,
                                const resilinet_nn_requant_params *rq,
                                int8_t *out0,
                                int8_t *out1)
{
    const int32_t groups = k >> 2;
    const int32_t r = k & 3;
    int32_t oc = 0;
    if (rq->fast && rq->full_range && rq->q_stride == 1)
    {
        /* The common case, kept tight: pointers walk the rows, channels and outputs. */
        const int32_t *bias = rq->bias != NULL ? rq->bias : zero_bias;
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
            resilinet_acc_2x2_t acc = {bias[0], bias[0], bias[1], bias[1]};
            bias += bstep;
            const resilinet_u32a *p = cols;
            if (oc < 2 * nfull)
            {
                mat_mult_2x2_loop(&p, &w0, &w1, gfull, &acc);
            }
            else
            {
                if (groups > 0)
                {
                    mat_mult_2x2_loop(&p, &w0, &w1, groups, &acc);
                }
                mat_mult_2x2_tail(p, w0, w1, r, k, &acc);
                w1 += 4; /* as if the last group had been read whole */
            }
            w0 = w1 + adj;
            resilinet_nn_store_2x2_fast(&acc, mult, shift, c, out0, out1);
            mult += 2;
            shift += 2;
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
            resilinet_acc_2x2_t acc = {b0, b0, b1, b1};
            const resilinet_u32a *p = cols;
            if (groups > 0)
            {
                mat_mult_2x2_loop(&p, &w0, &w1, groups, &acc);
            }
            if (r)
            {
                mat_mult_2x2_tail(p, w0, w1, r, k, &acc);
            }
            resilinet_nn_mat_mult_store(rq, oc, acc.a00, acc.a01, out0, out1);
            resilinet_nn_mat_mult_store(rq, oc + 1, acc.a10, acc.a11, out0, out1);
        }
    }
    if (oc < out_c)
    {
        const int32_t *bias = rq->bias;
        const int8_t *w0 = w + oc * k;
        int32_t a00 = bias != NULL ? bias[oc] : 0;
        int32_t a01 = a00;
        const resilinet_u32a *p = cols;
        for (int32_t g = groups; g > 0; g--)
        {
            const uint32_t wv0 = resilinet_read_u32(w0);
            w0 += 4;
            const uint32_t w0a = resilinet_sxtb16(wv0), w0b = resilinet_sxtb16_ror8(wv0);
            a00 = resilinet_smlad(p[0], w0a, a00);
            a00 = resilinet_smlad(p[1], w0b, a00);
            a01 = resilinet_smlad(p[2], w0a, a01);
            a01 = resilinet_smlad(p[3], w0b, a01);
            p += 4;
        }
        if (r)
        {
            const uint32_t wv0 = tail_word(w0, r, k);
            const uint32_t w0a = resilinet_sxtb16(wv0), w0b = resilinet_sxtb16_ror8(wv0);
            a00 = resilinet_smlad(p[0], w0a, a00);
            a00 = resilinet_smlad(p[1], w0b, a00);
            a01 = resilinet_smlad(p[2], w0a, a01);
            a01 = resilinet_smlad(p[3], w0b, a01);
        }
        resilinet_nn_mat_mult_store(rq, oc, a00, a01, out0, out1);
    }
}

/* One column, two output channels per step. */
static void mat_mult_2x1_s8_s16(const resilinet_u32a *col,
                                int32_t k,
                                const int8_t *w,
                                int32_t out_c,
                                const resilinet_nn_requant_params *rq,
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
        const resilinet_u32a *p = col;
        for (int32_t g = groups; g > 0; g--)
        {
            const uint32_t wv0 = resilinet_read_u32(w0);
            const uint32_t wv1 = resilinet_read_u32(w1);
            w0 += 4;
            w1 += 4;
            const uint32_t xa = p[0], xb = p[1];
            p += 2;
            a0 = resilinet_smlad(xa, resilinet_sxtb16(wv0), a0);
            a0 = resilinet_smlad(xb, resilinet_sxtb16_ror8(wv0), a0);
            a1 = resilinet_smlad(xa, resilinet_sxtb16(wv1), a1);
            a1 = resilinet_smlad(xb, resilinet_sxtb16_ror8(wv1), a1);
        }
        if (r)
        {
            const uint32_t wv0 = tail_word(w0, r, k);
            const uint32_t wv1 = tail_word(w1, r, k);
            a0 = resilinet_smlad(p[0], resilinet_sxtb16(wv0), a0);
            a0 = resilinet_smlad(p[1], resilinet_sxtb16_ror8(wv0), a0);
            a1 = resilinet_smlad(p[0], resilinet_sxtb16(wv1), a1);
            a1 = resilinet_smlad(p[1], resilinet_sxtb16_ror8(wv1), a1);
        }
        resilinet_nn_mat_mult_store(rq, oc, a0, 0, out0, NULL);
        if (two)
        {
            resilinet_nn_mat_mult_store(rq, oc + 1, a1, 0, out0, NULL);
        }
    }
}

void resilinet_nn_mat_mult_kernel_s8_s16(const resilinet_u32a *cols,
                                         int32_t two,
                                         int32_t k,
                                         const int8_t *w,
                                         int32_t out_c,
                                         const resilinet_nn_requant_params *rq,
                                         int8_t *out0,
                                         int8_t *out1)
{
    if (two)
    {
        mat_mult_2x2_s8_s16(cols, k, w, out_c, rq, out0, out1);
    }
    else
    {
        mat_mult_2x1_s8_s16(cols, k, w, out_c, rq, out0);
    }
}

#endif /* RESILINET_HAS_DSP */

#endif /* RESILINET_USE_CMSIS_NN */
