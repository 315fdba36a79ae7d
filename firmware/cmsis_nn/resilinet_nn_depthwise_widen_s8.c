/*
 * resilinet-mcu: the widening step of the row-buffer depthwise convolution (internal, see
 * resilinet_nn_depthwise_rows.h): int8 NHWC input rows into per-channel int16 rows, x + input_offset.
 *
 * With four channels widened together (C % 4 == 0) one LDR of four channels per pixel feeds four channels' rows
 * (DSP: SXTAB16 + PKHBT/PKHTB, two pixels per step).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "resilinet_nn_depthwise_rows.h"

#if RESILINET_HAS_DSP && RESILINET_DSP_ASM
/* Four channels, all n_rows rows in one asm loop (w >= 2; 14 registers, LR among them). Per four pixels 24
 * instructions (28 when the rows start at an odd column: two STR for each STRD, which must be word-aligned): the
 * pixels' words regrouped by PKHBT/PKHTB into [p c0, p c1, p' c0, p' c1] and [p c2, p c3, p' c2, p' c3], whose
 * SXTAB16 and SXTAB16 ROR 8 are the four channels' row words (two pixels at 15 instructions per pixel pair, as
 * the row's last two when w % 4 >= 2; one pixel with LDR, two SXTAB16 and four STRH when w is odd: the flags of
 * LSLS #31 of w % 4 pick them). After a row the source moves on by its gap to the next row's first pixel (0
 * unless transposed: dw_geom) and the destinations by theirs to the next row's first column. */
#define DW_WIDEN_LOAD2(A, B)                           \
    "ldr     %[" B "], [%[s], %[cn]]\n\t"              \
    "ldr     %[" A "], [%[s]]\n\t"                     \
    "add     %[s], %[s], %[cn], lsl #1\n\t"
#define DW_WIDEN_STR2_ALIGNED(A, B, D) "strd    %[" A "], %[" B "], [%[" D "]], #8\n\t"
#define DW_WIDEN_STR2_ANY(A, B, D)                     \
    "str     %[" A "], [%[" D "]], #4\n\t"             \
    "str     %[" B "], [%[" D "]], #4\n\t"
#define DW_WIDEN_QUAD(STR2)                            \
    DW_WIDEN_LOAD2("v0", "v1")                         \
    DW_WIDEN_LOAD2("v2", "v3")                         \
    "pkhbt   %[t], %[v0], %[v1], lsl #16\n\t"          \
    "pkhtb   %[v1], %[v1], %[v0], asr #16\n\t"         \
    "pkhbt   %[v0], %[v2], %[v3], lsl #16\n\t"         \
    "pkhtb   %[v3], %[v3], %[v2], asr #16\n\t"         \
    "sxtab16 %[v2], %[off2], %[t]\n\t"                 \
    "sxtab16 %[lo0], %[off2], %[v0]\n\t"               \
    STR2("v2", "lo0", "d0")                            \
    "sxtab16 %[v2], %[off2], %[t], ror #8\n\t"         \
    "sxtab16 %[lo0], %[off2], %[v0], ror #8\n\t"       \
    STR2("v2", "lo0", "d1")                            \
    "sxtab16 %[v2], %[off2], %[v1]\n\t"                \
    "sxtab16 %[lo0], %[off2], %[v3]\n\t"               \
    STR2("v2", "lo0", "d2")                            \
    "sxtab16 %[v2], %[off2], %[v1], ror #8\n\t"        \
    "sxtab16 %[lo0], %[off2], %[v3], ror #8\n\t"       \
    STR2("v2", "lo0", "d3")
#define DW_WIDEN_PAIR                                  \
    DW_WIDEN_LOAD2("v0", "v1")                         \
    "pkhbt   %[t], %[v0], %[v1], lsl #16\n\t"          \
    "pkhtb   %[v1], %[v1], %[v0], asr #16\n\t"         \
    "sxtab16 %[v0], %[off2], %[t]\n\t"                 \
    "sxtab16 %[t], %[off2], %[t], ror #8\n\t"          \
    "str     %[v0], [%[d0]], #4\n\t"                   \
    "str     %[t], [%[d1]], #4\n\t"                    \
    "sxtab16 %[v0], %[off2], %[v1]\n\t"                \
    "sxtab16 %[v1], %[off2], %[v1], ror #8\n\t"        \
    "str     %[v0], [%[d2]], #4\n\t"                   \
    "str     %[v1], [%[d3]], #4\n\t"
#define DW_WIDEN_ONE                                   \
    "ldr     %[v0], [%[s]]\n\t"                        \
    "add     %[s], %[s], %[cn]\n\t"                    \
    "sxtab16 %[lo0], %[off2], %[v0]\n\t"               \
    "sxtab16 %[v0], %[off2], %[v0], ror #8\n\t"        \
    "strh    %[lo0], [%[d0]], #2\n\t"                  \
    "strh    %[v0], [%[d1]], #2\n\t"                   \
    "lsr     %[lo0], %[lo0], #16\n\t"                  \
    "lsr     %[v0], %[v0], #16\n\t"                    \
    "strh    %[lo0], [%[d2]], #2\n\t"                  \
    "strh    %[v0], [%[d3]], #2\n\t"
#define DW_WIDEN_ROW(STR2)                             \
    "2:\n\t"                                           \
    "ldr     %[end], %[qb]\n\t"                        \
    "add     %[end], %[end], %[s]\n\t"                 \
    "cmp     %[s], %[end]\n\t"                         \
    "beq     3f\n\t"                                   \
    "1:\n\t"                                           \
    DW_WIDEN_QUAD(STR2)                                \
    "cmp     %[s], %[end]\n\t"                         \
    "bne     1b\n\t"                                   \
    "3:\n\t"                                           \
    "ldr     %[t], %[rem]\n\t"                         \
    "lsls    %[t], %[t], #31\n\t"                      \
    "bcc     4f\n\t"                                   \
    DW_WIDEN_PAIR                                      \
    "4:\n\t"                                           \
    "bpl     5f\n\t"                                   \
    DW_WIDEN_ONE                                       \
    "5:\n\t"                                           \
    DW_WIDEN_TAIL
/* Rows under 8 pixels: pairs only (fewer instructions per row). */
#define DW_WIDEN_PAIRS_ROW(ODD)                        \
    "2:\n\t"                                           \
    "ldr     %[end], %[qb]\n\t"                        \
    "add     %[end], %[end], %[s]\n\t"                 \
    "1:\n\t"                                           \
    DW_WIDEN_PAIR                                      \
    "cmp     %[s], %[end]\n\t"                         \
    "bne     1b\n\t"                                   \
    ODD                                                \
    DW_WIDEN_TAIL
#define DW_WIDEN_TAIL                                  \
    "ldr     %[t], %[sgap]\n\t"                        \
    "add     %[s], %[s], %[t]\n\t"                     \
    "ldr     %[t], %[gap]\n\t"                         \
    "add     %[d0], %[d0], %[t]\n\t"                   \
    "add     %[d1], %[d1], %[t]\n\t"                   \
    "add     %[d2], %[d2], %[t]\n\t"                   \
    "add     %[d3], %[d3], %[t]\n\t"                   \
    "ldr     %[t], %[send]\n\t"                        \
    "cmp     %[s], %[t]\n\t"                           \
    "bne     2b\n\t"
#define DW_WIDEN_ASM(CODE)                                                                                     \
    __asm__ volatile(CODE                                                                                      \
                     : [s] "+r"(sp), [d0] "+r"(d0), [d1] "+r"(d1), [d2] "+r"(d2), [d3] "+r"(d3), [v0] "=&r"(v0), \
                       [v1] "=&r"(v1), [v2] "=&r"(v2), [v3] "=&r"(v3), [lo0] "=&r"(lo0), [t] "=&r"(t),          \
                       [end] "=&r"(end)                                                                        \
                     : [cn] "r"(cn), [off2] "r"(off2), [qb] "m"(quad_bytes), [rem] "m"(rem), [gap] "m"(gap),   \
                       [sgap] "m"(src_gap), [send] "m"(src_end)                                                \
                     : "cc", "memory")

static void dw_widen4_rows_asm(const dw_geom *g, const int8_t *src, int16_t *dst, int32_t plane_entries,
                               int32_t n_rows, int32_t off)
{
    const int32_t cn = g->ipx;
    const int32_t quad_bytes = g->wq_bytes, rem = g->w_rem, gap = g->w_gap, src_gap = g->w_sgap; /* dw_geom */
    const uint32_t off2 = resilinet_dup16(off);
    const int8_t *sp = src;
    int16_t *d0 = dst, *d1 = dst + plane_entries, *d2 = dst + 2 * plane_entries, *d3 = dst + 3 * plane_entries;
    const int8_t *const src_end = src + n_rows * g->irow; /* s after the last row (its gap included) */
    uint32_t v0, v1, v2, lo0, t;
    register uint32_t v3 __asm__("lr"); /* the 14th register */
    const int8_t *end;
    switch (g->w_loop)
    {
    case DW_WIDEN_PAIRS:
        DW_WIDEN_ASM(DW_WIDEN_PAIRS_ROW(""));
        break;
    case DW_WIDEN_PAIRS_ODD:
        DW_WIDEN_ASM(DW_WIDEN_PAIRS_ROW(DW_WIDEN_ONE));
        break;
    case DW_WIDEN_QUADS_ALIGNED:
        DW_WIDEN_ASM(DW_WIDEN_ROW(DW_WIDEN_STR2_ALIGNED));
        break;
    default:
        DW_WIDEN_ASM(DW_WIDEN_ROW(DW_WIDEN_STR2_ANY));
        break;
    }
}
#endif

/* Not inlined into the driver (a function of its own file): the driver around it needs the registers. */
void resilinet_dw_widen(const dw_geom *g, const int8_t *src, int16_t *dst, int32_t plane_entries, int32_t n_rows,
                        int32_t off)
{
    const int32_t cn = g->ipx, w = g->in_w;
#if RESILINET_HAS_DSP && RESILINET_DSP_ASM
    if (g->group == 4 && w >= 2 && n_rows > 0)
    {
        dw_widen4_rows_asm(g, src, dst, plane_entries, n_rows, off);
        return;
    }
#endif
    for (int32_t r = 0; r < n_rows; r++, src += g->irow, dst += g->rw)
    {
        int32_t x = 0;
#if RESILINET_HAS_DSP
        if (g->group == 4)
        {
            const int8_t *sp = src;
            const uint32_t off2 = resilinet_dup16(off);
            int16_t *d0 = dst, *d1 = dst + plane_entries, *d2 = dst + 2 * plane_entries, *d3 = dst + 3 * plane_entries;
            for (; x + 2 <= w; x += 2)
            {
                /* Two pixels x four channels: the pixels' words regrouped ([p0 c0, p0 c1, p1 c0, p1 c1] and
                 * [p0 c2, p0 c3, p1 c2, p1 c3]), then widened per channel. */
                const uint32_t v0 = resilinet_read_u32(sp), v1 = resilinet_read_u32(sp + cn);
                const uint32_t u01 = resilinet_pkhbt16(v0, v1), u23 = resilinet_pkhtb16(v1, v0);
                const uint32_t p0 = resilinet_sxtab16(off2, u01), p1 = resilinet_sxtab16_ror8(off2, u01);
                const uint32_t p2 = resilinet_sxtab16(off2, u23), p3 = resilinet_sxtab16_ror8(off2, u23);
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

#endif /* RESILINET_USE_CMSIS_NN */
