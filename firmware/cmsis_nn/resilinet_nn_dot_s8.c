/*
 * resilinet-mcu: the inner products the MAC-heavy kernels reduce to (fully connected rows, the portable
 * convolution paths). Internal support functions, not CMSIS-NN API: see arm_nnsupportfunctions.h.
 *
 * On DSP cores four int8 pairs are handled per iteration: SXTB16/SXTAB16 widen bytes 0,2 and (after a
 * rotate by 8) bytes 1,3 to 16-bit lanes -- adding the input offset on the way -- and two SMLADs
 * accumulate the four products. The portable loop adds the same products in a different order; int32
 * sums of these bounded terms are exact, so both paths return the same value.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnsupportfunctions.h"

int32_t resilinet_nn_dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t x_offset)
{
    int32_t acc = 0;
    int32_t i = 0;
#if RESILINET_HAS_DSP
    const uint32_t off2 = resilinet_dup16(x_offset);
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t xv = resilinet_read_u32(x + i);
        const uint32_t wv = resilinet_read_u32(w + i);
        acc = resilinet_smlad(resilinet_sxtab16(off2, xv), resilinet_sxtb16(wv), acc);
        acc = resilinet_smlad(resilinet_sxtab16(off2, resilinet_ror(xv, 8)), resilinet_sxtb16(resilinet_ror(wv, 8)),
                              acc);
    }
#endif
    for (; i < n; i++)
    {
        acc += (int32_t)w[i] * ((int32_t)x[i] + x_offset);
    }
    return acc;
}

void resilinet_nn_dot_2x_s8(const int8_t *x,
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
#if RESILINET_HAS_DSP
    const uint32_t off2 = resilinet_dup16(x_offset);
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t xv = resilinet_read_u32(x + i);
        const uint32_t x02 = resilinet_sxtab16(off2, xv);
        const uint32_t x13 = resilinet_sxtab16(off2, resilinet_ror(xv, 8));
        const uint32_t v0 = resilinet_read_u32(w0 + i);
        const uint32_t v1 = resilinet_read_u32(w1 + i);
        a0 = resilinet_smlad(x02, resilinet_sxtb16(v0), a0);
        a0 = resilinet_smlad(x13, resilinet_sxtb16(resilinet_ror(v0, 8)), a0);
        a1 = resilinet_smlad(x02, resilinet_sxtb16(v1), a1);
        a1 = resilinet_smlad(x13, resilinet_sxtb16(resilinet_ror(v1, 8)), a1);
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

/* The DSP build lays each group of four column entries out as c0,c2,c1,c3 (see resilinet_nn_im2col_index), so
 * that the two 32-bit words of a group pair up with SXTB16 of the weights and of the weights rotated
 * by 8 without any repacking. */
int32_t resilinet_nn_dot_s8_s16(const int16_t *col, const int8_t *w, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if RESILINET_HAS_DSP
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t wv = resilinet_read_u32(w + i);
        acc = resilinet_smlad(resilinet_read_u32(col + i), resilinet_sxtb16(wv), acc);
        acc = resilinet_smlad(resilinet_read_u32(col + i + 2), resilinet_sxtb16(resilinet_ror(wv, 8)), acc);
    }
#endif
    for (; i < n; i++)
    {
        acc += (int32_t)w[i] * (int32_t)col[i];
    }
    return acc;
}

/* Two im2col columns against one weight row: each weight word is loaded and widened once. */
void resilinet_nn_dot_2x_s8_s16(const int16_t *col0,
                                const int16_t *col1,
                                const int8_t *w,
                                int32_t n,
                                int32_t *acc0,
                                int32_t *acc1)
{
    int32_t a0 = 0;
    int32_t a1 = 0;
    int32_t i = 0;
#if RESILINET_HAS_DSP
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t wv = resilinet_read_u32(w + i);
        const uint32_t w02 = resilinet_sxtb16(wv);
        const uint32_t w13 = resilinet_sxtb16(resilinet_ror(wv, 8));
        a0 = resilinet_smlad(resilinet_read_u32(col0 + i), w02, a0);
        a0 = resilinet_smlad(resilinet_read_u32(col0 + i + 2), w13, a0);
        a1 = resilinet_smlad(resilinet_read_u32(col1 + i), w02, a1);
        a1 = resilinet_smlad(resilinet_read_u32(col1 + i + 2), w13, a1);
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

#if RESILINET_HAS_DSP
/* Four weight rows (w, w + d, w + 2d, w + 3d) against one int8 vector x with offset, over g groups of four
 * (g >= 1): per group one LDR and two SXTAB16 widen the inputs, and per row one LDR, two SXTB16 and two
 * SMLAD. Accumulates into acc[0..3]. */
void resilinet_nn_dot_4x_s8(const int8_t *x, const int8_t *w, int32_t d, int32_t g, uint32_t off2, int32_t *acc)
{
#if !RESILINET_DSP_ASM
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (; g > 0; g--)
    {
        const uint32_t xv = resilinet_read_u32(x);
        const uint32_t xa = resilinet_sxtab16(off2, xv), xb = resilinet_sxtab16_ror8(off2, xv);
        uint32_t v = resilinet_read_u32(w);
        a0 = resilinet_smlad(xa, resilinet_sxtb16(v), a0);
        a0 = resilinet_smlad(xb, resilinet_sxtb16_ror8(v), a0);
        v = resilinet_read_u32(w + d);
        a1 = resilinet_smlad(xa, resilinet_sxtb16(v), a1);
        a1 = resilinet_smlad(xb, resilinet_sxtb16_ror8(v), a1);
        v = resilinet_read_u32(w + 2 * d);
        a2 = resilinet_smlad(xa, resilinet_sxtb16(v), a2);
        a2 = resilinet_smlad(xb, resilinet_sxtb16_ror8(v), a2);
        v = resilinet_read_u32(w + 3 * d);
        a3 = resilinet_smlad(xa, resilinet_sxtb16(v), a3);
        a3 = resilinet_smlad(xb, resilinet_sxtb16_ror8(v), a3);
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
#define DOT_4X_GROUP_ASM                              \
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
            DOT_4X_GROUP_ASM
            "2:\n\t"
            "ldr    %[t], %[g]\n\t"
            "lsrs   %[t], %[t], #1\n\t"
            "beq    3f\n\t"
            "str    %[t], %[g]\n\t"
            "1:\n\t"
            DOT_4X_GROUP_ASM DOT_4X_GROUP_ASM
            "ldr    %[t], %[g]\n\t"
            "subs   %[t], %[t], #1\n\t"
            "str    %[t], %[g]\n\t"
            "bne    1b\n\t"
            "3:\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [wa] "+r"(wa), [wb] "+r"(wb),
              [g] "+m"(gm), [xa] "=&r"(xa), [xb] "=&r"(xb), [v] "=&r"(v), [t] "=&r"(t), [d] "+r"(dd), [off2] "+r"(o2)
            :
            : "memory", "cc");
#undef DOT_4X_GROUP_ASM
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
#endif
}
#endif /* RESILINET_HAS_DSP */

#endif /* RESILINET_USE_CMSIS_NN */
