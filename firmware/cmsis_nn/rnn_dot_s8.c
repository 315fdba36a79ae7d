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

#endif /* RESILINET_USE_CMSIS_NN */
