/*
 * resilinet-mcu: the four-column DSP matrix kernel on the int16 weights codegen widened
 * (resilinet_nn_mat_mult_kernel_s16w_x4; weight layout: resilinet_nn_mat_mult_kernel_s16w in
 * arm_nnsupportfunctions.h). The convolutions take it for four output pixels at a time when their scratch holds
 * four columns and the packed fast requantization holds (resilinet_nn_requant_pack). Not CMSIS-NN API.
 *
 * Why four columns: with two (resilinet_nn_mat_mult_kernel_s16w_packed) every loaded word feeds two SMLADs, so the
 * Cortex-M4 spends as many cycles loading as multiplying (19 cycles per 16 MACs). Two channels x four columns
 * load 6 words per 8 SMLADs, in bursts of single LDRs (back-to-back loads pipeline: N take N + 1 cycles, where an
 * LDRD takes 3 and never pipelines): 32 cycles per 32 MACs; and the per channel-pair work (bias, requantization
 * set-up, loop entry) is shared by eight outputs instead of four.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnsupportfunctions.h"

#if RESILINET_HAS_DSP

/* Every channel pair of the packed table (pairs <= table size) against four interleaved columns (g >= 1 groups;
 * column j's two words of group n at cols[8n + j], [8n + 4 + j]); pixel j's outputs at out + j * stride. */
static void w16_x4_pairs(const resilinet_u32a *cols,
                         int32_t g,
                         const resilinet_u32a *w,
                         int32_t pairs,
                         const int32_t *table,
                         int32_t c,
                         int8_t *out,
                         int32_t stride)
{
#if !RESILINET_DSP_ASM
    for (int32_t i = 0; i < pairs; i++, table += 6, out += 2)
    {
        int32_t a[2][4];
        for (int32_t j = 0; j < 4; j++)
        {
            a[0][j] = table[0];
            a[1][j] = table[1];
        }
        const resilinet_u32a *p = cols;
        for (int32_t n = g; n > 0; n--)
        {
            for (int32_t j = 0; j < 4; j++)
            {
                a[0][j] = resilinet_smlad(p[j], w[0], a[0][j]);
                a[0][j] = resilinet_smlad(p[j + 4], w[1], a[0][j]);
                a[1][j] = resilinet_smlad(p[j], w[2], a[1][j]);
                a[1][j] = resilinet_smlad(p[j + 4], w[3], a[1][j]);
            }
            p += 8;
            w += 4;
        }
        for (int32_t j = 0; j < 4; j++)
        {
            out[j * stride] = (int8_t)resilinet_nn_requant_fast(a[0][j], table[2], table[4], c);
            out[j * stride + 1] = (int8_t)resilinet_nn_requant_fast(a[1][j], table[3], table[5], c);
        }
    }
#else
    /* Groups after the first: a loop of eight, entered part-way (TBH: the eight groups are too long for TBB's byte
     * offsets; index 8 = none left); it ends when the column pointer reaches the columns' end (no register is left
     * for a counter). */
    const int32_t rest = g - 1;
    int8_t *o = out;
    /* The asm copies this onto its stack: [sp] out of pixels 0..3, c, cols, table, end of the weights, end of the
     * columns, TBH index; then w. */
    uintptr_t frame[11] = {(uintptr_t)o, (uintptr_t)(o + stride), (uintptr_t)(o + 2 * stride),
                           (uintptr_t)(o + 3 * stride), (uintptr_t)c, (uintptr_t)cols, (uintptr_t)table,
                           (uintptr_t)(w + 4 * g * pairs), (uintptr_t)(cols + 8 * g),
                           (uintptr_t)(rest > 0 ? (-rest) & 7 : 8), (uintptr_t)w};
    register uintptr_t *f __asm__("r0") = frame;
    /* One group: per half (entries e0,e2 then e1,e3) the two channels' weight words and columns 0, 1 in one
     * burst of four loads, four SMLADs, columns 2, 3 (one LDRD: as many cycles as two LDR), four SMLADs. */
#define W16_X4_HALF_ASM(W0, W1, X0, X1, X23) \
    "ldr    r2, [r1, #" W0 "]\n\t"              \
    "ldr    r3, [r1, #" W1 "]\n\t"              \
    "ldr    r4, [r0, #" X0 "]\n\t"              \
    "ldr    r5, [r0, #" X1 "]\n\t"              \
    "smlad  r6, r4, r2, r6\n\t"                 \
    "smlad  r7, r5, r2, r7\n\t"                 \
    "smlad  r10, r4, r3, r10\n\t"               \
    "smlad  r11, r5, r3, r11\n\t"               \
    "ldrd   r4, r5, [r0, #" X23 "]\n\t"         \
    "smlad  r8, r4, r2, r8\n\t"                 \
    "smlad  r9, r5, r2, r9\n\t"                 \
    "smlad  r12, r4, r3, r12\n\t"               \
    "smlad  lr, r5, r3, lr\n\t"
#define W16_X4_GROUP_ASM                        \
    "ldr    r2, [r1], #16\n\t"                  \
    "ldr    r3, [r1, #-8]\n\t"                  \
    "ldr    r4, [r0], #32\n\t"                  \
    "ldr    r5, [r0, #-28]\n\t"                 \
    "smlad  r6, r4, r2, r6\n\t"                 \
    "smlad  r7, r5, r2, r7\n\t"                 \
    "smlad  r10, r4, r3, r10\n\t"               \
    "smlad  r11, r5, r3, r11\n\t"               \
    "ldrd   r4, r5, [r0, #-24]\n\t"             \
    "smlad  r8, r4, r2, r8\n\t"                 \
    "smlad  r9, r5, r2, r9\n\t"                 \
    "smlad  r12, r4, r3, r12\n\t"               \
    "smlad  lr, r5, r3, lr\n\t"                 \
    W16_X4_HALF_ASM("-12", "-4", "-16", "-12", "-8")
#define W16_X4_REQUANT_ASM(A)                   \
    "lsl    " A ", " A ", #1\n\t"               \
    "smmulr " A ", " A ", r3\n\t"               \
    "add    " A ", " A ", " A ", asr #31\n\t"   \
    "asr    " A ", " A ", r4\n\t"               \
    "add    " A ", " A ", r5\n\t"               \
    "ssat   " A ", #8, " A ", asr #1\n\t"
    /* Registers: r0 columns, r1 weights, r2-r5 the loaded words, r6-r9 channel 0 of pixels 0..3, r10-r12 and lr
     * channel 1. r7 (the frame pointer in some builds) is saved and restored here, not clobbered. */
    __asm__ volatile(
        "push   {r7}\n\t"
        "ldmia  r0, {r1, r2, r3, r4, r5, r6, r8, r9, r10, r11, r12}\n\t"
        "push   {r1, r2, r3, r4, r5, r6, r8, r9, r10, r11}\n\t"
        "mov    r1, r12\n\t"
        "mov    r2, r8\n\t"
        "1:\n\t"
        "ldmia  r2!, {r8, r12}\n\t"
        "ldr    r0, [sp, #20]\n\t"
        "str    r2, [sp, #24]\n\t"
        /* first group: the bias pair (r8, r12) is the accumulators' start */
        "ldr    r2, [r1], #16\n\t"
        "ldr    r3, [r1, #-8]\n\t"
        "ldr    r4, [r0], #32\n\t"
        "ldr    r5, [r0, #-28]\n\t"
        "smlad  r6, r4, r2, r8\n\t"
        "smlad  r7, r5, r2, r8\n\t"
        "smlad  r10, r4, r3, r12\n\t"
        "smlad  r11, r5, r3, r12\n\t"
        "ldrd   r4, r5, [r0, #-24]\n\t"
        "smlad  r9, r5, r2, r8\n\t"
        "smlad  r8, r4, r2, r8\n\t"
        "smlad  lr, r5, r3, r12\n\t"
        "smlad  r12, r4, r3, r12\n\t"
        W16_X4_HALF_ASM("-12", "-4", "-16", "-12", "-8")
        "ldr    r2, [sp, #36]\n\t"
        "tbh    [pc, r2, lsl #1]\n\t"
        "0:\n\t"
        ".hword (10f - 0b) / 2, (11f - 0b) / 2, (12f - 0b) / 2, (13f - 0b) / 2, (14f - 0b) / 2\n\t"
        ".hword (15f - 0b) / 2, (16f - 0b) / 2, (17f - 0b) / 2, (18f - 0b) / 2\n\t"
        ".balign 2\n\t"
        "10:\n\t" W16_X4_GROUP_ASM
        "11:\n\t" W16_X4_GROUP_ASM
        "12:\n\t" W16_X4_GROUP_ASM
        "13:\n\t" W16_X4_GROUP_ASM
        "14:\n\t" W16_X4_GROUP_ASM
        "15:\n\t" W16_X4_GROUP_ASM
        "16:\n\t" W16_X4_GROUP_ASM
        "17:\n\t" W16_X4_GROUP_ASM
        "ldr    r2, [sp, #32]\n\t"
        "cmp    r0, r2\n\t"
        "bne    10b\n\t"
        "18:\n\t"
        /* requantize: channel 0 (mult, ~shift at table words 2, 4), then channel 1 (3, 5) */
        "ldr    r2, [sp, #24]\n\t"
        "ldr    r5, [sp, #16]\n\t"
        "ldr    r3, [r2]\n\t"
        "ldr    r4, [r2, #8]\n\t"
        W16_X4_REQUANT_ASM("r6") W16_X4_REQUANT_ASM("r7") W16_X4_REQUANT_ASM("r8") W16_X4_REQUANT_ASM("r9")
        "ldr    r3, [r2, #4]\n\t"
        "ldr    r4, [r2, #12]\n\t"
        "adds   r2, r2, #16\n\t"
        W16_X4_REQUANT_ASM("r10") W16_X4_REQUANT_ASM("r11") W16_X4_REQUANT_ASM("r12") W16_X4_REQUANT_ASM("lr")
        /* the eight stores back to back (pipelined), each pixel's pointer two bytes on */
        "ldmia  sp, {r0, r3, r4, r5}\n\t"
        "strb   r6, [r0], #1\n\t"
        "strb   r10, [r0], #1\n\t"
        "strb   r7, [r3], #1\n\t"
        "strb   r11, [r3], #1\n\t"
        "strb   r8, [r4], #1\n\t"
        "strb   r12, [r4], #1\n\t"
        "strb   r9, [r5], #1\n\t"
        "strb   lr, [r5], #1\n\t"
        "stmia  sp, {r0, r3, r4, r5}\n\t"
        "ldr    r3, [sp, #28]\n\t"
        "cmp    r1, r3\n\t"
        "bne    1b\n\t"
        "add    sp, sp, #40\n\t"
        "pop    {r7}\n\t"
        : "+r"(f)
        :
        : "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
#undef W16_X4_HALF_ASM
#undef W16_X4_GROUP_ASM
#undef W16_X4_REQUANT_ASM
#endif
}

void resilinet_nn_mat_mult_kernel_s16w_x4(const resilinet_u32a *cols,
                                          int32_t k4,
                                          const resilinet_u32a *w,
                                          int32_t out_c,
                                          const resilinet_nn_requant_params *rq,
                                          int32_t *table,
                                          int32_t packed,
                                          int8_t *out)
{
    const int32_t g = k4 >> 2;
    const int32_t pairs = out_c >> 1;
    const int32_t chunk = RESILINET_NN_REQUANT_PACK_WORDS / 6;
    if (packed)
    {
        w16_x4_pairs(cols, g, w, pairs, table, rq->c, out, out_c);
    }
    else
    {
        /* More pairs than the table holds: pack and run them a table at a time. */
        resilinet_nn_requant_params part = *rq;
        for (int32_t i = 0; i < pairs; i += chunk)
        {
            const int32_t n = MIN(chunk, pairs - i);
            part.bias = rq->bias != NULL ? rq->bias + 2 * i : NULL;
            part.mult = rq->mult + 2 * i;
            part.shift = rq->shift + 2 * i;
            (void)resilinet_nn_requant_pack(&part, 2 * n, table, RESILINET_NN_REQUANT_PACK_WORDS);
            w16_x4_pairs(cols, g, w + i * k4, n, table, rq->c, out + 2 * i, out_c);
        }
    }
    if (out_c & 1)
    {
        /* The last channel of an odd count: two words per group. */
        const int32_t oc = out_c - 1;
        for (int32_t j = 0; j < 4; j++)
        {
            const resilinet_u32a *wl = w + pairs * k4;
            const resilinet_u32a *p = cols + j;
            int32_t a = rq->bias != NULL ? rq->bias[oc] : 0;
            for (int32_t n = g; n > 0; n--)
            {
                a = resilinet_smlad(p[0], wl[0], a);
                a = resilinet_smlad(p[4], wl[1], a);
                p += 8;
                wl += 2;
            }
            resilinet_nn_mat_mult_store(rq, oc, a, 0, out + j * out_c, NULL);
        }
    }
}

#endif /* RESILINET_HAS_DSP */

#endif /* RESILINET_USE_CMSIS_NN */
