/*
 * resilinet-mcu: the body of resilinet_fully_connected_s8_paired (arm_fully_connected_s8.c): arm_fully_connected_s8 /
 * _per_channel_s8 on int8 weights that codegen re-ordered at generate time (codegen/ops/fully_connected.py:
 * paired_fc_weights_s8). Internal support function, not CMSIS-NN (Arm's API has no such layout); same results, no
 * scratch, one byte of flash per weight (plus zero padding).
 *
 * Layout: rows padded to a multiple of 4 (zero rows), each row to k4 = align4(depth) (zero entries). Per block of
 * four rows r0..r3 and group of four inputs j0..j3, four words (16 bytes):
 *   [r0 j0 + 128, r1 j0, r0 j2 + 128, r1 j2]  [r0 j1 + 128, r1 j1, r0 j3 + 128, r1 j3]  (rows r0, r1)
 *   the same for rows r2, r3.
 * Read as two int16 lanes, a word holds L = 256 * w(r1, j) + (w(r0, j) + 128) for j = (j0, j2) or (j1, j3): the
 * lanes that SXTAB16 of an input word (and of it rotated by 8) produce. So for inputs x' = x + offset:
 *   S = sum_j x'_j * L_j = acc(r0) + 128 * sum_j x'_j + 256 * acc(r1)     (one SMLAD per 4 MACs, mod 2^32)
 *   U = sum_j x'_j * w(r1, j) = acc(r1)                                     (SXTB16 ROR 8 of the word + SMLAD)
 * and acc(r0) = S - 256 U - 128 sum x' exactly (the true value fits in int32; the wrap of S cancels). Three
 * instructions per four MACs instead of four (two SXTB16 + two SMLAD) on plain int8 weights.
 *
 * DSP path: the inputs are widened once per call onto the stack (x' as [x0|x2] [x1|x3] words, depth up to
 * FCP_STAGE), then per block and group: LDRD inputs, 2 x (LDRD weights, 2 SMLAD, 2 SXTB16, 2 SMLAD) =
 * 15 instructions for 16 MACs. Plain C: the same sums, S from the 16-bit lanes, U from the high bytes.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>
#include <string.h>

/* Bytes per block of four rows and group of four inputs. */
#define FCP_GROUP_BYTES 16

/* The int16 lane at q: 256 * q[1] + (uint8)q[0], one LDRSH on little-endian targets. */
static inline int32_t fcp_lane(const int8_t *q)
{
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    int16_t v;
    memcpy(&v, q, sizeof(v));
    return v;
#else
    return (int32_t)(uint8_t)q[0] + 256 * (int32_t)q[1];
#endif
}

/* One pair's share of a group: the four inputs (x' values, 0 past the depth) against its 8 bytes at q. */
#define FCP_PAIR_C(S, U, q)                                                                                     \
    do                                                                                                          \
    {                                                                                                           \
        S += (uint32_t)(x0 * fcp_lane(q) + x2 * fcp_lane((q) + 2) + x1 * fcp_lane((q) + 4) +                    \
                        x3 * fcp_lane((q) + 6));                                                                \
        U += x0 * (q)[1] + x2 * (q)[3] + x1 * (q)[5] + x3 * (q)[7];                                             \
    } while (0)

/* Plain C: s[p] += sum x' * L and u[p] += sum x' * w(r1) for the block's two row pairs p, over every group (the
 * last one partial: missing inputs count 0). Sums in uint32_t: S wraps by design. */
static void fcp_block_c(const int8_t *x, int32_t depth, int32_t offset, const int8_t *w, uint32_t *s, int32_t *u)
{
    uint32_t s0 = s[0], s1 = s[1];
    int32_t u0 = u[0], u1 = u[1];
    const int8_t *const end = x + (depth & ~3);
    for (; x != end; x += 4, w += FCP_GROUP_BYTES)
    {
        const int32_t x0 = x[0] + offset, x1 = x[1] + offset, x2 = x[2] + offset, x3 = x[3] + offset;
        FCP_PAIR_C(s0, u0, w);
        FCP_PAIR_C(s1, u1, w + 8);
    }
    if (depth & 3)
    {
        const int32_t n = depth & 3;
        const int32_t x0 = x[0] + offset, x1 = n > 1 ? x[1] + offset : 0, x2 = n > 2 ? x[2] + offset : 0, x3 = 0;
        FCP_PAIR_C(s0, u0, w);
        FCP_PAIR_C(s1, u1, w + 8);
    }
    s[0] = s0;
    s[1] = s1;
    u[0] = u0;
    u[1] = u1;
}
#undef FCP_PAIR_C

/* Row r (0..3) of a block: acc(r0) = S - 256 U (the bias and the 128 * sum x' term are in S and U), acc(r1) = U. */
static inline int32_t fcp_acc(const uint32_t *s, const int32_t *u, int32_t r)
{
    return (r & 1) ? u[r >> 1] : (int32_t)(s[r >> 1] - ((uint32_t)u[r >> 1] << 8));
}

#if defined(__GNUC__)
#define FCP_INLINE static inline __attribute__((always_inline))
#else
#define FCP_INLINE static inline
#endif

/* U starts at bias(r1), S at bias(r0) + 256 * bias(r1) (so that S - 256 U gives bias(r0) + acc(r0)) less the
 * 128 * sum x' it will gain. */
FCP_INLINE void fcp_init(const int32_t *bias, int32_t left, uint32_t c128, uint32_t *s, int32_t *u)
{
    for (int32_t p = 0; p < 2; p++)
    {
        const int32_t b0 = bias != NULL && 2 * p < left ? bias[2 * p] : 0;
        const int32_t b1 = bias != NULL && 2 * p + 1 < left ? bias[2 * p + 1] : 0;
        s[p] = (uint32_t)b0 + ((uint32_t)b1 << 8) - c128;
        u[p] = b1;
    }
}

#if RESILINET_HAS_DSP
/* The inputs widened once per call: per group [x0'|x2'] [x1'|x3'] (missing inputs 0, not the offset). */
#define FCP_STAGE 768

/* Writes the staged words and returns 128 * sum x' (mod 2^32). */
static uint32_t fcp_stage(const int8_t *x, int32_t depth, uint32_t off2, int32_t offset, uint32_t *xs)
{
    int32_t sum = 0;
    int32_t j = 0;
    for (; j + 4 <= depth; j += 4, xs += 2)
    {
        const uint32_t v = resilinet_read_u32(x + j);
        xs[0] = resilinet_sxtab16(off2, v);
        xs[1] = resilinet_sxtab16_ror8(off2, v);
        sum = resilinet_smlad(xs[0], 0x00010001u, sum);
        sum = resilinet_smlad(xs[1], 0x00010001u, sum);
    }
    if (j < depth)
    {
        const int32_t n = depth - j;
        const int32_t x0 = (int32_t)x[j] + offset;
        const int32_t x1 = n > 1 ? (int32_t)x[j + 1] + offset : 0;
        const int32_t x2 = n > 2 ? (int32_t)x[j + 2] + offset : 0;
        xs[0] = ((uint32_t)(uint16_t)x0) | ((uint32_t)(uint16_t)x2 << 16);
        xs[1] = (uint32_t)(uint16_t)x1;
        sum += x0 + x1 + x2;
    }
    return (uint32_t)sum << 7;
}

/* s[p] += SMLAD(x', word) and u[p] += SMLAD(x', SXTB16(word, ROR 8)) over g >= 1 groups. */
FCP_INLINE void fcp_block_dsp(const resilinet_u32a *xs, int32_t g, const resilinet_u32a *w, uint32_t *s, int32_t *u)
{
    int32_t s0 = (int32_t)s[0], s1 = (int32_t)s[1], u0 = u[0], u1 = u[1];
#if !RESILINET_DSP_ASM
    for (; g > 0; g--, xs += 2, w += 4)
    {
        s0 = resilinet_smlad(xs[0], w[0], s0);
        s0 = resilinet_smlad(xs[1], w[1], s0);
        u0 = resilinet_smlad(xs[0], resilinet_sxtb16_ror8(w[0]), u0);
        u0 = resilinet_smlad(xs[1], resilinet_sxtb16_ror8(w[1]), u0);
        s1 = resilinet_smlad(xs[0], w[2], s1);
        s1 = resilinet_smlad(xs[1], w[3], s1);
        u1 = resilinet_smlad(xs[0], resilinet_sxtb16_ror8(w[2]), u1);
        u1 = resilinet_smlad(xs[1], resilinet_sxtb16_ror8(w[3]), u1);
    }
#else
    uint32_t xa, xb, wa, wb;
#define FCP_GROUP_ASM                              \
    "ldrd    %[xa], %[xb], [%[xs]], #8\n\t"       \
    "ldrd    %[wa], %[wb], [%[w]], #16\n\t"       \
    "smlad   %[s0], %[xa], %[wa], %[s0]\n\t"      \
    "smlad   %[s0], %[xb], %[wb], %[s0]\n\t"      \
    "sxtb16  %[wa], %[wa], ror #8\n\t"            \
    "sxtb16  %[wb], %[wb], ror #8\n\t"            \
    "smlad   %[u0], %[xa], %[wa], %[u0]\n\t"      \
    "smlad   %[u0], %[xb], %[wb], %[u0]\n\t"      \
    "ldrd    %[wa], %[wb], [%[w], #-8]\n\t"       \
    "smlad   %[s1], %[xa], %[wa], %[s1]\n\t"      \
    "smlad   %[s1], %[xb], %[wb], %[s1]\n\t"      \
    "sxtb16  %[wa], %[wa], ror #8\n\t"            \
    "sxtb16  %[wb], %[wb], ror #8\n\t"            \
    "smlad   %[u1], %[xa], %[wa], %[u1]\n\t"      \
    "smlad   %[u1], %[xb], %[wb], %[u1]\n\t"
    /* Four groups per iteration, entered part-way (TBB on -g % 4). */
    int32_t gm = (g + 3) >> 2;
    __asm__("rsb     %[wa], %[g], #0\n\t"
            "and     %[wa], %[wa], #3\n\t"
            "tbb     [pc, %[wa]]\n\t"
            "0:\n\t"
            ".byte   (10f - 0b) / 2, (11f - 0b) / 2, (12f - 0b) / 2, (13f - 0b) / 2\n\t"
            "10:\n\t" FCP_GROUP_ASM
            "11:\n\t" FCP_GROUP_ASM
            "12:\n\t" FCP_GROUP_ASM
            "13:\n\t" FCP_GROUP_ASM
            "subs    %[gm], %[gm], #1\n\t"
            "bne     10b\n\t"
            : [s0] "+r"(s0), [u0] "+r"(u0), [s1] "+r"(s1), [u1] "+r"(u1), [xs] "+r"(xs), [w] "+r"(w),
              [gm] "+r"(gm), [xa] "=&r"(xa), [xb] "=&r"(xb), [wa] "=&r"(wa), [wb] "=&r"(wb)
            : [g] "r"(g)
            : "memory", "cc");
#undef FCP_GROUP_ASM
#endif
    s[0] = (uint32_t)s0;
    s[1] = (uint32_t)s1;
    u[0] = u0;
    u[1] = u1;
}

/* Full blocks on the fast requantization path; clamp (a constant where it is inlined) applies the activation
 * range, which the SSAT alone covers when it is the full int8 range. */
FCP_INLINE void fcp_rows_fast(const resilinet_u32a *xs,
                              int32_t groups,
                              uint32_t c128,
                              const int8_t *w,
                              int32_t blocks,
                              const int32_t *bias,
                              const int32_t *mult,
                              const int32_t *shift,
                              int32_t qs,
                              const resilinet_nn_requant_params *rq,
                              int32_t clamp,
                              int8_t *out)
{
    const int32_t c = rq->c, lo = rq->act_min, hi = rq->act_max;
    for (; blocks > 0; blocks--)
    {
        uint32_t s[2];
        int32_t u[2];
        fcp_init(bias, 4, c128, s, u);
        bias = bias != NULL ? bias + 4 : NULL;
        fcp_block_dsp(xs, groups, (const resilinet_u32a *)(const void *)w, s, u);
        w += FCP_GROUP_BYTES * groups;
        for (int32_t r = 0; r < 4; r++)
        {
            int32_t v = resilinet_nn_requant_fast(fcp_acc(s, u, r), *mult, ~*shift, c);
            if (clamp)
            {
                v = MIN(MAX(v, lo), hi);
            }
            out[r] = (int8_t)v;
            mult += qs;
            shift += qs;
        }
        out += 4;
    }
}
#endif /* RESILINET_HAS_DSP */

#if RESILINET_DSP_ASM
/* The whole per-tensor fast path in one assembly function: per block of four rows the bias words, the groups (8 per
 * iteration, entered part-way by TBB), and the requantization of the four sums. Per group LDRD inputs, LDM of the
 * four weight words, 12 multiplies/extends: 14 instructions for 16 MACs. Per output QADD (2 acc), SMMLAR with the
 * rounding word K = c << e1 (c = 1 + 2 * output_offset), ADD of the sign, ASR, SSAT (resilinet_nn_requant_fast with
 * the offset folded into K: the sign of acc stands in for that of the product, which differs only when the product
 * rounds to 0, where both give the same byte).
 * The fast requantization is exact for -2^30 <= acc < 2^30. Rather than bounding every accumulator from the biases up
 * front (resilinet_nn_requant_init, 5 instructions per row), the QADD that doubles acc saturates, and sets the Q flag
 * (cleared just before: the SMLADs' wrap of S and the SSATs set it too), exactly when one is outside that range; the
 * function then returns 1 and the caller redoes the layer on the general path (from the staged inputs, so an output
 * overlapping the input would not matter). Naked: every register (r0 = the arguments) is the loop's. */
typedef struct
{
    const uint32_t *xs;     /* 0: staged inputs */
    const uint32_t *xs_end; /* 4 */
    const int8_t *w;        /* 8: weights (paired layout) */
    const int32_t *bias;    /* 12: advanced by the loop */
    int8_t *out;            /* 16 */
    int8_t *out_end;        /* 20: out + 4 * blocks */
    uint32_t c128;          /* 24: 128 * sum x' */
    int32_t entry;          /* 28: (-groups) & 7, the TBB index of the first iteration */
    int32_t mult;           /* 32 */
    int32_t e1;             /* 36: ~shift */
    int32_t k;              /* 40: c << e1 */
} fcp_asm_args;
/* The asm addresses the fields by these offsets. */
typedef char fcp_asm_args_layout[offsetof(fcp_asm_args, k) == 40 && sizeof(void *) == 4 ? 1 : -1];

#define FCP_ASM_GROUP                            \
    "ldrd    r5, r6, [r11], #8\n\t"              \
    "ldmia   r12!, {r7, r8, r9, r10}\n\t"        \
    "smlad   r1, r5, r7, r1\n\t"                 \
    "smlad   r1, r6, r8, r1\n\t"                 \
    "sxtb16  r7, r7, ror #8\n\t"                 \
    "sxtb16  r8, r8, ror #8\n\t"                 \
    "smlad   r2, r5, r7, r2\n\t"                 \
    "smlad   r2, r6, r8, r2\n\t"                 \
    "smlad   r3, r5, r9, r3\n\t"                 \
    "smlad   r3, r6, r10, r3\n\t"                \
    "sxtb16  r9, r9, ror #8\n\t"                 \
    "sxtb16  r10, r10, ror #8\n\t"               \
    "smlad   r4, r5, r9, r4\n\t"                 \
    "smlad   r4, r6, r10, r4\n\t"
#define FCP_ASM_REQUANT(R)                       \
    "smmlar  r8, " R ", r5, r7\n\t"              \
    "add     " R ", r8, " R ", asr #31\n\t"      \
    "asr     " R ", " R ", r6\n\t"               \
    "ssat    " R ", #8, " R ", asr #1\n\t"

__attribute__((naked, noinline)) static int32_t fcp_rows_asm(fcp_asm_args *a)
{
    (void)a;
    __asm__ volatile("push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
                     "ldr     r12, [r0, #8]\n\t"
                     "ldr     lr, [r0, #16]\n\t"
                     "1:\n\t"
                     /* S = bias(r0) + 256 bias(r1) - 128 sum x', U = bias(r1), for both pairs */
                     "ldr     r5, [r0, #12]\n\t"
                     "ldrd    r1, r2, [r5], #8\n\t"
                     "ldrd    r3, r4, [r5], #8\n\t"
                     "str     r5, [r0, #12]\n\t"
                     "ldr     r6, [r0, #24]\n\t"
                     "add     r1, r1, r2, lsl #8\n\t"
                     "add     r3, r3, r4, lsl #8\n\t"
                     "sub     r1, r1, r6\n\t"
                     "sub     r3, r3, r6\n\t"
                     "ldr     r11, [r0, #0]\n\t"
                     "ldr     r5, [r0, #28]\n\t"
                     "tbb     [pc, r5]\n\t"
                     "0:\n\t"
                     ".byte   (10f - 0b) / 2, (11f - 0b) / 2, (12f - 0b) / 2, (13f - 0b) / 2\n\t"
                     ".byte   (14f - 0b) / 2, (15f - 0b) / 2, (16f - 0b) / 2, (17f - 0b) / 2\n\t"
                     "10:\n\t" FCP_ASM_GROUP "11:\n\t" FCP_ASM_GROUP "12:\n\t" FCP_ASM_GROUP
                     "13:\n\t" FCP_ASM_GROUP "14:\n\t" FCP_ASM_GROUP "15:\n\t" FCP_ASM_GROUP
                     "16:\n\t" FCP_ASM_GROUP "17:\n\t" FCP_ASM_GROUP
                     "ldr     r5, [r0, #4]\n\t"
                     "cmp     r11, r5\n\t"
                     "bne     10b\n\t"
                     /* acc(r0) = S - 256 U; requantize and store the four rows */
                     "sub     r1, r1, r2, lsl #8\n\t"
                     "sub     r3, r3, r4, lsl #8\n\t"
                     "ldrd    r5, r6, [r0, #32]\n\t"
                     "ldr     r7, [r0, #40]\n\t"
                     /* 2 acc; SMLAD sets Q on the wrap of S and SSAT on a clamp: clear it around the QADDs */
                     "movs    r8, #0\n\t"
                     "msr     APSR_nzcvq, r8\n\t"
                     "qadd    r1, r1, r1\n\t"
                     "qadd    r2, r2, r2\n\t"
                     "qadd    r3, r3, r3\n\t"
                     "qadd    r4, r4, r4\n\t"
                     "mrs     r8, APSR\n\t"
                     "tst     r8, #0x08000000\n\t"
                     "bne     2f\n\t"
                     FCP_ASM_REQUANT("r1") FCP_ASM_REQUANT("r2") FCP_ASM_REQUANT("r3") FCP_ASM_REQUANT("r4")
                     "strb    r1, [lr], #1\n\t"
                     "strb    r2, [lr], #1\n\t"
                     "strb    r3, [lr], #1\n\t"
                     "strb    r4, [lr], #1\n\t"
                     "ldr     r5, [r0, #20]\n\t"
                     "cmp     lr, r5\n\t"
                     "bne     1b\n\t"
                     "movs    r0, #0\n\t"
                     "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
                     "2:\n\t"
                     "movs    r0, #1\n\t"
                     "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#undef FCP_ASM_GROUP
#undef FCP_ASM_REQUANT

/* The asm's conditions: per-tensor requantization with a right shift (e1 >= 0) and no activation clamp, a bias, K in
 * range (|K| + |hm| + 1 < 2^31 with |hm| <= 2^30). Runs it over every row and returns out_c, or 0 (not taken, or an
 * accumulator out of the fast range: nothing it wrote is kept). */
static int32_t fcp_try_asm(const uint32_t *xs,
                           int32_t groups,
                           uint32_t c128,
                           const int8_t *w,
                           int32_t out_c,
                           const int32_t *bias,
                           const cmsis_nn_fc_params *p,
                           int32_t mult,
                           int32_t shift,
                           int8_t *out)
{
    if (bias == NULL || shift > -1 || shift < -31 || mult < 0 || p->activation.min > -128 ||
        p->activation.max < 127 || p->output_offset < -128 || p->output_offset > 127)
    {
        return 0;
    }
    const int32_t e1 = ~shift;
    const int64_t k = (int64_t)(1 + 2 * p->output_offset) * ((int64_t)1 << e1);
    if (k >= ((int64_t)1 << 30) - 2 || k <= -((int64_t)1 << 30) + 2)
    {
        return 0;
    }
    const int32_t full = out_c & ~3;
    fcp_asm_args a;
    a.xs = xs;
    a.xs_end = xs + 2 * groups;
    a.w = w;
    a.bias = bias;
    a.out = out;
    a.out_end = out + full;
    a.c128 = c128;
    a.entry = (-groups) & 7;
    a.mult = mult;
    a.e1 = e1;
    a.k = (int32_t)k;
    if (full > 0 && fcp_rows_asm(&a))
    {
        return 0;
    }
    if (full < out_c)
    {
        /* The last rows as one more block (the layout pads it with zero rows) on local bias and output words. */
        int32_t b4[4] = {0, 0, 0, 0};
        int8_t o4[4];
        memcpy(b4, bias + full, (size_t)(out_c - full) * sizeof(int32_t));
        a.w = w + full * 4 * groups;
        a.bias = b4;
        a.out = o4;
        a.out_end = o4 + 4;
        if (fcp_rows_asm(&a))
        {
            return 0;
        }
        memcpy(out + full, o4, (size_t)(out_c - full));
    }
    return out_c;
}
#endif /* RESILINET_DSP_ASM */

void resilinet_nn_fully_connected_paired_s8(const cmsis_nn_fc_params *p,
                                            const int32_t *mult,
                                            const int32_t *shift,
                                            int32_t per_channel,
                                            int32_t batches,
                                            int32_t depth,
                                            const int8_t *input_data,
                                            const int8_t *filter_data,
                                            const int32_t *bias_data,
                                            int32_t out_c,
                                            int8_t *output_data)
{
    const int32_t groups = (depth + 3) >> 2;
    const int32_t qs = per_channel ? 1 : 0;
#if RESILINET_HAS_DSP
    /* Set up on first need: the asm path checks its range on the accumulators themselves. */
    resilinet_nn_requant_params rq;
    int32_t rq_ready = 0;
    const uint32_t off2 = resilinet_dup16(p->input_offset);
    /* LDRD needs word-aligned weights; the stack holds FCP_STAGE inputs. */
    const int32_t dsp = ((uintptr_t)filter_data & 3u) == 0 && depth <= FCP_STAGE && groups > 0;
    uint32_t xs[FCP_STAGE / 2];
#endif
    for (int32_t b = 0; b < batches; b++)
    {
        const int8_t *x = input_data + b * depth;
        int8_t *out = output_data + b * out_c;
        const int8_t *w = filter_data;
        int32_t oc = 0;
        uint32_t c128 = 0;
#if RESILINET_HAS_DSP
        if (dsp)
        {
            c128 = fcp_stage(x, depth, off2, p->input_offset, xs);
#if RESILINET_DSP_ASM
            if (qs == 0)
            {
                oc = fcp_try_asm(xs, groups, c128, w, out_c, bias_data, p, *mult, *shift, out);
                w += oc * 4 * groups;
            }
#endif
        }
        if (oc < out_c && !rq_ready)
        {
            resilinet_nn_requant_init(&rq, bias_data, mult, shift, qs, out_c, p->output_offset, p->activation.min,
                                      p->activation.max, depth, p->input_offset);
            rq_ready = 1;
        }
        if (rq_ready && rq.fast && dsp && oc == 0)
        {
            const resilinet_u32a *xw = (const resilinet_u32a *)xs;
            if (rq.full_range)
            {
                fcp_rows_fast(xw, groups, c128, w, out_c >> 2, bias_data, mult, shift, qs, &rq, 0, out);
            }
            else
            {
                fcp_rows_fast(xw, groups, c128, w, out_c >> 2, bias_data, mult, shift, qs, &rq, 1, out);
            }
            oc = out_c & ~3;
            w += oc * 4 * groups;
        }
        if (!dsp)
#endif
        {
            /* The plain C sums start S without the 128 * sum x' term: add it here. */
            for (int32_t j = 0; j < depth; j++)
            {
                c128 += (uint32_t)((int32_t)x[j] + p->input_offset) << 7;
            }
        }
        for (; oc < out_c; oc += 4, w += FCP_GROUP_BYTES * groups)
        {
            uint32_t s[2];
            int32_t u[2];
            fcp_init(bias_data != NULL ? bias_data + oc : NULL, out_c - oc, c128, s, u);
#if RESILINET_HAS_DSP
            if (dsp)
            {
                fcp_block_dsp((const resilinet_u32a *)xs, groups, (const resilinet_u32a *)(const void *)w, s, u);
            }
            else
#endif
            {
                fcp_block_c(x, depth, p->input_offset, w, s, u);
            }
            for (int32_t r = 0; r < 4 && oc + r < out_c; r++)
            {
#if RESILINET_HAS_DSP
                out[oc + r] = resilinet_nn_requant_one(&rq, fcp_acc(s, u, r), oc + r);
#else
                out[oc + r] = resilinet_nn_requantize_clamp(fcp_acc(s, u, r), mult[(oc + r) * qs],
                                                            shift[(oc + r) * qs], p->output_offset,
                                                            p->activation.min, p->activation.max);
#endif
            }
        }
    }
}

#endif /* RESILINET_USE_CMSIS_NN */
