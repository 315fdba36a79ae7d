/*
 * resilinet-mcu: the DSP matrix kernel of the convolutions on int16 weights that codegen widened at generate time
 * (resilinet_nn_mat_mult_kernel_s16w; layout in arm_nnsupportfunctions.h): per group of four entries the weight
 * words are in the columns' lane order already, so the inner loop is loads and SMLADs only (no SXTB16). Plus its
 * packed fast path (resilinet_nn_requant_pack, resilinet_nn_mat_mult_kernel_s16w_packed), which the convolutions
 * take when the fast requantization holds for every channel. Internal support functions, not CMSIS-NN API.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnsupportfunctions.h"

#if RESILINET_HAS_DSP
static const int32_t zero_bias[2] = {0, 0};

/* The 2x2 inner loop over g groups: per group 4 LDRD + 8 SMLAD for 16 MACs. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void w16_2x2_loop(const resilinet_u32a **pp, const resilinet_u32a **pw, int32_t g, resilinet_acc_2x2_t *acc)
{
    const resilinet_u32a *p = *pp;
    const resilinet_u32a *w = *pw;
    int32_t a00 = acc->a00, a01 = acc->a01, a10 = acc->a10, a11 = acc->a11;
#if !RESILINET_DSP_ASM
    for (; g > 0; g--)
    {
        a00 = resilinet_smlad(p[0], w[0], a00);
        a00 = resilinet_smlad(p[1], w[1], a00);
        a10 = resilinet_smlad(p[0], w[2], a10);
        a10 = resilinet_smlad(p[1], w[3], a10);
        a01 = resilinet_smlad(p[2], w[0], a01);
        a01 = resilinet_smlad(p[3], w[1], a01);
        a11 = resilinet_smlad(p[2], w[2], a11);
        a11 = resilinet_smlad(p[3], w[3], a11);
        p += 4;
        w += 4;
    }
#else
    uint32_t wa, wb = (uint32_t)g, wc, wd, xa, xb;
#define W16_2X2_GROUP_ASM                              \
    "ldrd   %[xa], %[xb], [%[p]], #16\n\t"     \
    "ldrd   %[wa], %[wb], [%[w]], #16\n\t"     \
    "smlad  %[a00], %[xa], %[wa], %[a00]\n\t"  \
    "smlad  %[a00], %[xb], %[wb], %[a00]\n\t"  \
    "ldrd   %[wc], %[wd], [%[w], #-8]\n\t"     \
    "smlad  %[a10], %[xa], %[wc], %[a10]\n\t"  \
    "smlad  %[a10], %[xb], %[wd], %[a10]\n\t"  \
    "ldrd   %[xa], %[xb], [%[p], #-8]\n\t"     \
    "smlad  %[a01], %[xa], %[wa], %[a01]\n\t"  \
    "smlad  %[a01], %[xb], %[wb], %[a01]\n\t"  \
    "smlad  %[a11], %[xa], %[wc], %[a11]\n\t"  \
    "smlad  %[a11], %[xb], %[wd], %[a11]\n\t"
    /* 13 registers, as mat_mult_2x2_loop: four groups per iteration, entered part-way (TBB on -g % 4). */
    int32_t gm = (g + 3) >> 2;
    __asm__("rsb    %[wa], %[wb], #0\n\t"
            "and    %[wa], %[wa], #3\n\t"
            "tbb    [pc, %[wa]]\n\t"
            "0:\n\t"
            ".byte  (10f - 0b) / 2, (11f - 0b) / 2, (12f - 0b) / 2, (13f - 0b) / 2\n\t"
            "10:\n\t" W16_2X2_GROUP_ASM
            "11:\n\t" W16_2X2_GROUP_ASM
            "12:\n\t" W16_2X2_GROUP_ASM
            "13:\n\t" W16_2X2_GROUP_ASM
            "subs   %[gm], %[gm], #1\n\t"
            "bne    10b\n\t"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [p] "+r"(p), [w] "+r"(w),
              [gm] "+r"(gm), [wa] "=&r"(wa), [wb] "+&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd), [xa] "=&r"(xa),
              [xb] "=&r"(xb)
            :
            : "memory", "cc");
#undef W16_2X2_GROUP_ASM
#endif
    *pp = p;
    *pw = w;
    acc->a00 = a00;
    acc->a01 = a01;
    acc->a10 = a10;
    acc->a11 = a11;
}

/* Two columns (interleaved) or one, every channel pair, then the odd last channel. */
static void w16_2x2(const resilinet_u32a *cols,
                    int32_t k4,
                    const resilinet_u32a *w,
                    int32_t out_c,
                    const resilinet_nn_requant_params *rq,
                    int8_t *out0,
                    int8_t *out1)
{
    const int32_t groups = k4 >> 2;
    int32_t oc = 0;
    if (rq->fast && rq->full_range && rq->q_stride == 1)
    {
        const int32_t *bias = rq->bias != NULL ? rq->bias : zero_bias;
        const int32_t bstep = rq->bias != NULL ? 2 : 0;
        const int32_t *mult = rq->mult;
        const int32_t *shift = rq->shift;
        const int32_t c = rq->c;
        for (; oc + 2 <= out_c; oc += 2)
        {
            resilinet_acc_2x2_t acc = {bias[0], bias[0], bias[1], bias[1]};
            bias += bstep;
            const resilinet_u32a *p = cols;
            w16_2x2_loop(&p, &w, groups, &acc);
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
            const int32_t b0 = bias != NULL ? bias[oc] : 0;
            const int32_t b1 = bias != NULL ? bias[oc + 1] : 0;
            resilinet_acc_2x2_t acc = {b0, b0, b1, b1};
            const resilinet_u32a *p = cols;
            w16_2x2_loop(&p, &w, groups, &acc);
            resilinet_nn_mat_mult_store(rq, oc, acc.a00, acc.a01, out0, out1);
            resilinet_nn_mat_mult_store(rq, oc + 1, acc.a10, acc.a11, out0, out1);
        }
    }
    if (oc < out_c)
    {
        /* The last channel of an odd count: two words per group. */
        int32_t a00 = rq->bias != NULL ? rq->bias[oc] : 0;
        int32_t a01 = a00;
        const resilinet_u32a *p = cols;
        for (int32_t g = groups; g > 0; g--)
        {
            a00 = resilinet_smlad(p[0], w[0], a00);
            a00 = resilinet_smlad(p[1], w[1], a00);
            a01 = resilinet_smlad(p[2], w[0], a01);
            a01 = resilinet_smlad(p[3], w[1], a01);
            p += 4;
            w += 2;
        }
        resilinet_nn_mat_mult_store(rq, oc, a00, a01, out0, out1);
    }
}

/* One column (two words per group), two channels per step. */
static void w16_2x1(const resilinet_u32a *col,
                    int32_t k4,
                    const resilinet_u32a *w,
                    int32_t out_c,
                    const resilinet_nn_requant_params *rq,
                    int8_t *out0)
{
    const int32_t groups = k4 >> 2;
    const int32_t *bias = rq->bias;
    for (int32_t oc = 0; oc < out_c; oc += 2)
    {
        const int32_t two = oc + 1 < out_c;
        int32_t a0 = bias != NULL ? bias[oc] : 0;
        int32_t a1 = (bias != NULL && two) ? bias[oc + 1] : 0;
        const resilinet_u32a *p = col;
        if (two)
        {
            for (int32_t g = groups; g > 0; g--)
            {
                const uint32_t xa = p[0], xb = p[1];
                a0 = resilinet_smlad(xa, w[0], a0);
                a0 = resilinet_smlad(xb, w[1], a0);
                a1 = resilinet_smlad(xa, w[2], a1);
                a1 = resilinet_smlad(xb, w[3], a1);
                p += 2;
                w += 4;
            }
            resilinet_nn_mat_mult_store(rq, oc + 1, a1, 0, out0, NULL);
        }
        else
        {
            for (int32_t g = groups; g > 0; g--)
            {
                a0 = resilinet_smlad(p[0], w[0], a0);
                a0 = resilinet_smlad(p[1], w[1], a0);
                p += 2;
                w += 2;
            }
        }
        resilinet_nn_mat_mult_store(rq, oc, a0, 0, out0, NULL);
    }
}

void resilinet_nn_mat_mult_kernel_s16w(const resilinet_u32a *cols,
                                       int32_t two,
                                       int32_t k4,
                                       const resilinet_u32a *w,
                                       int32_t out_c,
                                       const resilinet_nn_requant_params *rq,
                                       int8_t *out0,
                                       int8_t *out1)
{
    if (two)
    {
        w16_2x2(cols, k4, w, out_c, rq, out0, out1);
    }
    else
    {
        w16_2x1(cols, k4, w, out_c, rq, out0);
    }
}


/* ------------------------------------------------------------------------------------------------------
 * Packed fast path. Per channel pair the loop needs its bias, multipliers and shifts: read from three arrays
 * through pointers that the 13-register inner loop forces out to the stack, they cost ~20 instructions per
 * pair, which with few input channels (a 1x1 convolution of 8 channels: 32 MACs per pair and pixel pair) is as
 * much as the MACs. So each call of a convolution first packs them, once, into one table on its stack:
 * per pair [bias0, bias1, mult0, mult1, ~shift0, ~shift1]; the kernel walks it with one pointer (two LDM per
 * pair). The inner loop reads both columns of a group with one LDM (4 words) and each channel's two weight words
 * with one LDRD: 11 instructions per group for 16 MACs (4 LDRD + 8 SMLAD = 12 before); the first group adds
 * the bias as the SMLADs' accumulator input, and the requantization is resilinet_nn_requant_fast written out.
 * ------------------------------------------------------------------------------------------------------ */
int32_t resilinet_nn_requant_pack(const resilinet_nn_requant_params *rq, int32_t out_c, int32_t *table, int32_t words)
{
    const int32_t pairs = out_c >> 1;
    if (!rq->fast || !rq->full_range || rq->q_stride != 1 || pairs < 1 || 6 * pairs > words)
    {
        return 0;
    }
    for (int32_t i = 0; i < pairs; i++)
    {
        int32_t *t = table + 6 * i;
        t[0] = rq->bias != NULL ? rq->bias[2 * i] : 0;
        t[1] = rq->bias != NULL ? rq->bias[2 * i + 1] : 0;
        t[2] = rq->mult[2 * i];
        t[3] = rq->mult[2 * i + 1];
        t[4] = ~rq->shift[2 * i];
        t[5] = ~rq->shift[2 * i + 1];
    }
    return 1;
}

/* Every channel pair of the packed table against the interleaved column pair (g >= 1 groups). */
static void w16_2x2_packed(const resilinet_u32a *cols,
                           int32_t g,
                           const resilinet_u32a *w,
                           int32_t pairs,
                           const int32_t *table,
                           int32_t c,
                           int8_t *out0,
                           int8_t *out1)
{
#if !RESILINET_DSP_ASM
    for (int32_t i = 0; i < pairs; i++, table += 6)
    {
        int32_t a00 = table[0], a01 = table[0], a10 = table[1], a11 = table[1];
        const resilinet_u32a *p = cols;
        for (int32_t n = g; n > 0; n--)
        {
            a00 = resilinet_smlad(p[0], w[0], a00);
            a00 = resilinet_smlad(p[1], w[1], a00);
            a01 = resilinet_smlad(p[2], w[0], a01);
            a01 = resilinet_smlad(p[3], w[1], a01);
            a10 = resilinet_smlad(p[0], w[2], a10);
            a10 = resilinet_smlad(p[1], w[3], a10);
            a11 = resilinet_smlad(p[2], w[2], a11);
            a11 = resilinet_smlad(p[3], w[3], a11);
            p += 4;
            w += 4;
        }
        out0[0] = (int8_t)resilinet_nn_requant_fast(a00, table[2], table[4], c);
        out0[1] = (int8_t)resilinet_nn_requant_fast(a10, table[3], table[5], c);
        out1[0] = (int8_t)resilinet_nn_requant_fast(a01, table[2], table[4], c);
        out1[1] = (int8_t)resilinet_nn_requant_fast(a11, table[3], table[5], c);
        out0 += 2;
        out1 += 2;
    }
#else
    /* Groups after the first: a loop of eight (one taken branch per 8 groups), entered part-way (TBB; index 8 =
     * none left). */
    const int32_t rest = g - 1;
    /* Frame the asm copies onto its own stack (all 13 registers it may use are busy in the inner loop):
     * [sp] c, out0, out1, cols, table, end of the weights, loop count, TBB index; then w. */
    uintptr_t frame[9] = {(uintptr_t)c, (uintptr_t)out0, (uintptr_t)out1, (uintptr_t)cols, (uintptr_t)table,
                          (uintptr_t)(w + 4 * g * pairs), (uintptr_t)((rest + 7) >> 3),
                          (uintptr_t)(rest > 0 ? (-rest) & 7 : 8), (uintptr_t)w};
    register uintptr_t *f __asm__("r0") = frame;
#define W16_PACKED_GROUP_ASM                  \
    "ldmia  r0!, {r3, r4, r5, r6}\n\t"        \
    "ldrd   r8, r9, [r1], #8\n\t"             \
    "smlad  r10, r3, r8, r10\n\t"             \
    "smlad  r11, r5, r8, r11\n\t"             \
    "smlad  r10, r4, r9, r10\n\t"             \
    "smlad  r11, r6, r9, r11\n\t"             \
    "ldrd   r8, r9, [r1], #8\n\t"             \
    "smlad  r12, r3, r8, r12\n\t"             \
    "smlad  lr, r5, r8, lr\n\t"               \
    "smlad  r12, r4, r9, r12\n\t"             \
    "smlad  lr, r6, r9, lr\n\t"
#define W16_PACKED_REQUANT_ASM(A, M, E)       \
    "lsl    " A ", " A ", #1\n\t"             \
    "smmulr " A ", " A ", " M "\n\t"          \
    "add    " A ", " A ", " A ", asr #31\n\t" \
    "asr    " A ", " A ", " E "\n\t"          \
    "add    " A ", " A ", r0\n\t"             \
    "ssat   " A ", #8, " A ", asr #1\n\t"
    /* Registers: r0 column pointer, r1 weights, r2 loop count / table, r3-r6 the group's column words (LDM
     * order), r8-r9 weight words, r10 a00, r11 a01 (column 1), r12 a10 (channel 1), lr a11; r7 (frame pointer
     * in some builds) is not touched. */
    __asm__ volatile(
        "ldmia  r0, {r1, r2, r3, r4, r5, r6, r8, r9, r10}\n\t"
        "push   {r1, r2, r3, r4, r5, r6, r8, r9}\n\t"
        "mov    r1, r10\n\t"
        "ldr    r2, [sp, #16]\n\t"
        "1:\n\t"
        "ldr    r0, [sp, #12]\n\t"
        "ldmia  r2!, {r10, r12}\n\t"
        "str    r2, [sp, #16]\n\t"
        /* first group: the bias pair is the accumulators' start */
        "ldmia  r0!, {r3, r4, r5, r6}\n\t"
        "ldrd   r8, r9, [r1], #8\n\t"
        "smlad  r11, r5, r8, r10\n\t"
        "smlad  r10, r3, r8, r10\n\t"
        "smlad  r10, r4, r9, r10\n\t"
        "smlad  r11, r6, r9, r11\n\t"
        "ldrd   r8, r9, [r1], #8\n\t"
        "smlad  lr, r5, r8, r12\n\t"
        "smlad  r12, r3, r8, r12\n\t"
        "smlad  r12, r4, r9, r12\n\t"
        "smlad  lr, r6, r9, lr\n\t"
        "ldrd   r2, r3, [sp, #24]\n\t"
        "tbb    [pc, r3]\n\t"
        "0:\n\t"
        ".byte  (10f - 0b) / 2, (11f - 0b) / 2, (12f - 0b) / 2, (13f - 0b) / 2, (14f - 0b) / 2\n\t"
        ".byte  (15f - 0b) / 2, (16f - 0b) / 2, (17f - 0b) / 2, (18f - 0b) / 2, 0\n\t"
        "10:\n\t" W16_PACKED_GROUP_ASM
        "11:\n\t" W16_PACKED_GROUP_ASM
        "12:\n\t" W16_PACKED_GROUP_ASM
        "13:\n\t" W16_PACKED_GROUP_ASM
        "14:\n\t" W16_PACKED_GROUP_ASM
        "15:\n\t" W16_PACKED_GROUP_ASM
        "16:\n\t" W16_PACKED_GROUP_ASM
        "17:\n\t" W16_PACKED_GROUP_ASM
        "subs   r2, r2, #1\n\t"
        "bne    10b\n\t"
        "18:\n\t"
        "ldr    r2, [sp, #16]\n\t"
        "ldmia  r2!, {r3, r4, r5, r6}\n\t"
        "ldmia  sp, {r0, r8, r9}\n\t"
        W16_PACKED_REQUANT_ASM("r10", "r3", "r5")
        W16_PACKED_REQUANT_ASM("r12", "r4", "r6")
        W16_PACKED_REQUANT_ASM("r11", "r3", "r5")
        W16_PACKED_REQUANT_ASM("lr", "r4", "r6")
        /* the four stores back to back (pipelined) */
        "strb   r10, [r8], #1\n\t"
        "strb   r12, [r8], #1\n\t"
        "strb   r11, [r9], #1\n\t"
        "strb   lr, [r9], #1\n\t"
        "strd   r8, r9, [sp, #4]\n\t"
        "ldr    r3, [sp, #20]\n\t"
        "cmp    r1, r3\n\t"
        "bne    1b\n\t"
        "add    sp, sp, #32\n\t"
        : "+r"(f)
        :
        : "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
#undef W16_PACKED_GROUP_ASM
#undef W16_PACKED_REQUANT_ASM
#endif
}

void resilinet_nn_mat_mult_kernel_s16w_packed(const resilinet_u32a *cols,
                                              int32_t k4,
                                              const resilinet_u32a *w,
                                              int32_t out_c,
                                              const resilinet_nn_requant_params *rq,
                                              const int32_t *table,
                                              int8_t *out0,
                                              int8_t *out1)
{
    const int32_t pairs = out_c >> 1;
    w16_2x2_packed(cols, k4 >> 2, w, pairs, table, rq->c, out0, out1);
    if (out_c & 1)
    {
        /* The last channel of an odd count: two words per group. */
        const int32_t oc = out_c - 1;
        const resilinet_u32a *wl = w + pairs * k4; /* k4 words per pair */
        int32_t a00 = rq->bias != NULL ? rq->bias[oc] : 0;
        int32_t a01 = a00;
        const resilinet_u32a *p = cols;
        for (int32_t g = k4 >> 2; g > 0; g--)
        {
            a00 = resilinet_smlad(p[0], wl[0], a00);
            a00 = resilinet_smlad(p[1], wl[1], a00);
            a01 = resilinet_smlad(p[2], wl[0], a01);
            a01 = resilinet_smlad(p[3], wl[1], a01);
            p += 4;
            wl += 2;
        }
        resilinet_nn_mat_mult_store(rq, oc, a00, a01, out0, out1);
    }
}

#endif /* RESILINET_HAS_DSP */

#endif /* RESILINET_USE_CMSIS_NN */
