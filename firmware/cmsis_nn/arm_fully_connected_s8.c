/*
 * resilinet-mcu: int8 fully connected layers (TFLM reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel). Weights [C_OUT, depth] row-major, symmetric (filter_offset ignored, as in
 * CMSIS-NN: TFLM guarantees int8 weight zero points of 0).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if RESILINET_HAS_DSP
/* The depth % 4 tail of four rows. */
static inline void fc_tail4(const int8_t *x, const int8_t *w, int32_t depth, int32_t input_offset, int32_t *acc)
{
    for (int32_t j = depth & ~3; j < depth; j++)
    {
        const int32_t xj = (int32_t)x[j] + input_offset;
        for (int32_t r = 0; r < 4; r++)
        {
            acc[r] += (int32_t)w[r * depth + j] * xj;
        }
    }
}

/* n4 blocks of four rows on the fast requantization path (depth >= 4). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void fc_rows4_fast(const int8_t *x,
                          const int8_t *w,
                          int32_t depth,
                          uint32_t off2,
                          int32_t n4,
                          const int32_t *bias,
                          const int32_t *mult,
                          const int32_t *shift,
                          int32_t qstride,
                          int32_t c,
                          int8_t *out)
{
    const int32_t groups = depth >> 2;
    const int32_t input_offset = (int32_t)(int16_t)(off2 & 0xFFFFu);
    for (; n4 > 0; n4--)
    {
        int32_t acc[4];
        for (int32_t r = 0; r < 4; r++)
        {
            acc[r] = bias != NULL ? bias[r] : 0;
        }
        resilinet_nn_dot_4x_s8(x, w, depth, groups, off2, acc);
        if (depth & 3)
        {
            fc_tail4(x, w, depth, input_offset, acc);
        }
        for (int32_t r = 0; r < 4; r++)
        {
            out[r] = (int8_t)resilinet_nn_requant_fast(acc[r], mult[r * qstride], ~shift[r * qstride], c);
        }
        w += 4 * depth;
        bias = bias != NULL ? bias + 4 : NULL;
        mult += 4 * qstride;
        shift += 4 * qstride;
        out += 4;
    }
}
#endif

/* Shared body; mult/shift point at one value (per-tensor, stride 0) or one per output row (stride 1). */
static void fc_s8(const cmsis_nn_fc_params *p,
                  const int32_t *mult,
                  const int32_t *shift,
                  int32_t qstride,
                  const cmsis_nn_dims *input_dims,
                  const int8_t *input_data,
                  const cmsis_nn_dims *filter_dims,
                  const int8_t *filter_data,
                  const int32_t *bias_data,
                  const cmsis_nn_dims *output_dims,
                  int8_t *output_data)
{
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
#if RESILINET_HAS_DSP
    resilinet_nn_requant_params rq;
    resilinet_nn_requant_init(&rq, bias_data, mult, shift, qstride, out_c, p->output_offset, p->activation.min,
                              p->activation.max, depth, p->input_offset);
    const uint32_t off2 = resilinet_dup16(p->input_offset);
    const int32_t groups = depth >> 2;
#endif
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *x = input_data + b * depth;
        int8_t *out = output_data + b * out_c;
        int32_t oc = 0;
#if RESILINET_HAS_DSP
        /* Four rows at a time (resilinet_nn_dot_4x_s8), the depth % 4 tail in plain C. */
        if (groups > 0 && rq.fast && rq.full_range && out_c >= 4)
        {
            fc_rows4_fast(x, filter_data, depth, off2, out_c >> 2, bias_data, mult, shift, qstride, rq.c, out);
            oc = out_c & ~3;
        }
        for (; groups > 0 && oc + 4 <= out_c; oc += 4)
        {
            int32_t acc[4];
            const int8_t *w = filter_data + oc * depth;
            for (int32_t r = 0; r < 4; r++)
            {
                acc[r] = bias_data != NULL ? bias_data[oc + r] : 0;
            }
            resilinet_nn_dot_4x_s8(x, w, depth, groups, off2, acc);
            fc_tail4(x, w, depth, p->input_offset, acc);
            for (int32_t r = 0; r < 4; r++)
            {
                out[oc + r] = resilinet_nn_requant_one(&rq, acc[r], oc + r);
            }
        }
#endif
        for (; oc + 2 <= out_c; oc += 2)
        {
            int32_t a0;
            int32_t a1;
            resilinet_nn_dot_2x_s8(x, filter_data + oc * depth, filter_data + (oc + 1) * depth, depth, p->input_offset,
                                   &a0, &a1);
            if (bias_data != NULL)
            {
                a0 += bias_data[oc];
                a1 += bias_data[oc + 1];
            }
            out[oc] = resilinet_nn_requantize_clamp(a0, mult[oc * qstride], shift[oc * qstride], p->output_offset,
                                                    p->activation.min, p->activation.max);
            out[oc + 1] = resilinet_nn_requantize_clamp(a1, mult[(oc + 1) * qstride], shift[(oc + 1) * qstride],
                                                        p->output_offset, p->activation.min, p->activation.max);
        }
        if (oc < out_c)
        {
            int32_t acc = resilinet_nn_dot_s8(x, filter_data + oc * depth, depth, p->input_offset);
            if (bias_data != NULL)
            {
                acc += bias_data[oc];
            }
            out[oc] = resilinet_nn_requantize_clamp(acc, mult[oc * qstride], shift[oc * qstride], p->output_offset,
                                                    p->activation.min, p->activation.max);
        }
    }
}

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    (void)ctx;
    (void)bias_dims;
    fc_s8(fc_params, &quant_params->multiplier, &quant_params->shift, 0, input_dims, input_data, filter_dims,
          filter_data, bias_data, output_dims, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_fully_connected_per_channel_s8(const cmsis_nn_context *ctx,
                                                       const cmsis_nn_fc_params *fc_params,
                                                       const cmsis_nn_per_channel_quant_params *quant_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const int8_t *input_data,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const int8_t *filter_data,
                                                       const cmsis_nn_dims *bias_dims,
                                                       const int32_t *bias_data,
                                                       const cmsis_nn_dims *output_dims,
                                                       int8_t *output_data)
{
    (void)ctx;
    (void)bias_dims;
    fc_s8(fc_params, quant_params->multiplier, quant_params->shift, 1, input_dims, input_data, filter_dims,
          filter_data, bias_data, output_dims, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_fully_connected_s8_get_buffer_size_dsp(const cmsis_nn_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}

/* On MVE CMSIS-NN wants C_OUT precomputed kernel sums in the buffer; we only report the size. */
int32_t arm_fully_connected_s8_get_buffer_size_mve(const cmsis_nn_dims *filter_dims)
{
    return filter_dims->c * (int32_t)sizeof(int32_t);
}

int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
    return arm_fully_connected_s8_get_buffer_size_dsp(filter_dims);
}

int32_t arm_fully_connected_per_channel_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
    return arm_fully_connected_s8_get_buffer_size(filter_dims);
}

/* ------------------------------------------------------------------------------------------------------
 * resilinet_fully_connected_s8_s16w: the same layers with the weights widened to int16 by codegen (opt-in, flash
 * x2; codegen/ops/fully_connected.py: widened_fc_weights_s16w). Rows zero-padded to k4 = align4(depth); rows in
 * blocks of four, per group of four entries each row's words [e0|e2] [e1|e3] (the lanes of SXTAB16 of an input
 * word and of the word rotated by 8); the out_c % 4 last rows one at a time (two words per group).
 * DSP inner loop per group and block: LDR + 2 SXTAB16 for the input, 4 x (LDRD + 2 SMLAD): 15 for 16 MACs.
 * ------------------------------------------------------------------------------------------------------ */

/* Plain C: acc[r] += sum_j (x[j] + offset) * w(r, j) for a block of nr (4 or 1) rows; per group the four inputs
 * are read once for all rows, each row's weights in the lane order e0, e2, e1, e3. */
static void fc_w16_block_c(const int8_t *x, int32_t depth, int32_t offset, const int16_t *w, int32_t nr, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *const end = x + (depth & ~3);
    for (; x != end; x += 4, w += 4 * nr)
    {
        const int32_t x0 = (int32_t)x[0] + offset, x1 = (int32_t)x[1] + offset;
        const int32_t x2 = (int32_t)x[2] + offset, x3 = (int32_t)x[3] + offset;
        a0 += x0 * w[0] + x2 * w[1] + x1 * w[2] + x3 * w[3];
        if (nr == 4)
        {
            a1 += x0 * w[4] + x2 * w[5] + x1 * w[6] + x3 * w[7];
            a2 += x0 * w[8] + x2 * w[9] + x1 * w[10] + x3 * w[11];
            a3 += x0 * w[12] + x2 * w[13] + x1 * w[14] + x3 * w[15];
        }
    }
    if (depth & 3)
    {
        /* The last, partial group: missing inputs count as 0 (their weights are 0 too). */
        const int32_t r = depth & 3;
        const int32_t x0 = (int32_t)x[0] + offset;
        const int32_t x1 = r > 1 ? (int32_t)x[1] + offset : 0;
        const int32_t x2 = r > 2 ? (int32_t)x[2] + offset : 0;
        const int32_t x3 = 0;
        a0 += x0 * w[0] + x2 * w[1] + x1 * w[2] + x3 * w[3];
        if (nr == 4)
        {
            a1 += x0 * w[4] + x2 * w[5] + x1 * w[6] + x3 * w[7];
            a2 += x0 * w[8] + x2 * w[9] + x1 * w[10] + x3 * w[11];
            a3 += x0 * w[12] + x2 * w[13] + x1 * w[14] + x3 * w[15];
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#if RESILINET_HAS_DSP
/* The last, partial input group as one word (missing bytes 0: their weights are 0). */
static inline uint32_t fc_tail_word(const int8_t *x, int32_t r)
{
    uint32_t v = 0;
    for (int32_t i = 0; i < r; i++)
    {
        v |= (uint32_t)(uint8_t)x[i] << (8 * i);
    }
    return v;
}

static void fc_w16_block4_dsp(const int8_t *x, int32_t depth, uint32_t off2, const resilinet_u32a *w, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t g = depth >> 2;
#if !RESILINET_DSP_ASM
    for (; g > 0; g--)
    {
        const uint32_t xv = resilinet_read_u32(x);
        x += 4;
        const uint32_t xa = resilinet_sxtab16(off2, xv), xb = resilinet_sxtab16_ror8(off2, xv);
        a0 = resilinet_smlad(xa, w[0], a0);
        a0 = resilinet_smlad(xb, w[1], a0);
        a1 = resilinet_smlad(xa, w[2], a1);
        a1 = resilinet_smlad(xb, w[3], a1);
        a2 = resilinet_smlad(xa, w[4], a2);
        a2 = resilinet_smlad(xb, w[5], a2);
        a3 = resilinet_smlad(xa, w[6], a3);
        a3 = resilinet_smlad(xb, w[7], a3);
        w += 8;
    }
#else
    if (g > 0)
    {
        uint32_t xa, xb, wa, wb;
        uint32_t o2 = off2;
#define FC_W16_GROUP_ASM                            \
    "ldr     %[xb], [%[x]], #4\n\t"                \
    "sxtab16 %[xa], %[o2], %[xb]\n\t"              \
    "sxtab16 %[xb], %[o2], %[xb], ror #8\n\t"      \
    "ldrd    %[wa], %[wb], [%[w]], #32\n\t"        \
    "smlad   %[a0], %[xa], %[wa], %[a0]\n\t"       \
    "smlad   %[a0], %[xb], %[wb], %[a0]\n\t"       \
    "ldrd    %[wa], %[wb], [%[w], #-24]\n\t"       \
    "smlad   %[a1], %[xa], %[wa], %[a1]\n\t"       \
    "smlad   %[a1], %[xb], %[wb], %[a1]\n\t"       \
    "ldrd    %[wa], %[wb], [%[w], #-16]\n\t"       \
    "smlad   %[a2], %[xa], %[wa], %[a2]\n\t"       \
    "smlad   %[a2], %[xb], %[wb], %[a2]\n\t"       \
    "ldrd    %[wa], %[wb], [%[w], #-8]\n\t"        \
    "smlad   %[a3], %[xa], %[wa], %[a3]\n\t"       \
    "smlad   %[a3], %[xb], %[wb], %[a3]\n\t"
        /* 13 registers: an odd group first, then two per iteration. */
        __asm__("tst     %[g], #1\n\t"
                "beq     2f\n\t"
                FC_W16_GROUP_ASM
                "2:\n\t"
                "lsrs    %[g], %[g], #1\n\t"
                "beq     3f\n\t"
                "1:\n\t"
                FC_W16_GROUP_ASM FC_W16_GROUP_ASM
                "subs    %[g], %[g], #1\n\t"
                "bne     1b\n\t"
                "3:\n\t"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [g] "+r"(g),
                  [o2] "+r"(o2), [xa] "=&r"(xa), [xb] "=&r"(xb), [wa] "=&r"(wa), [wb] "=&r"(wb)
                :
                : "memory", "cc");
#undef FC_W16_GROUP_ASM
    }
#endif
    if (depth & 3)
    {
        const uint32_t xv = fc_tail_word(x, depth & 3);
        const uint32_t xa = resilinet_sxtab16(off2, xv), xb = resilinet_sxtab16_ror8(off2, xv);
        a0 = resilinet_smlad(xa, w[0], a0);
        a0 = resilinet_smlad(xb, w[1], a0);
        a1 = resilinet_smlad(xa, w[2], a1);
        a1 = resilinet_smlad(xb, w[3], a1);
        a2 = resilinet_smlad(xa, w[4], a2);
        a2 = resilinet_smlad(xb, w[5], a2);
        a3 = resilinet_smlad(xa, w[6], a3);
        a3 = resilinet_smlad(xb, w[7], a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Inputs widened once per call when the row fits (1.5 KB of stack): the block loop then loads them with LDRD,
 * per group LDRD + 4 x (LDRD + 2 SMLAD) = 13 instructions for 16 MACs. */
#define FC_STAGE 768

/* xs: per group of four inputs the words [x0|x2] [x1|x3] (offset added), g >= 1 groups. */
static void fc_w16_block4_staged(const resilinet_u32a *xs, int32_t g, const resilinet_u32a *w, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if !RESILINET_DSP_ASM
    for (; g > 0; g--)
    {
        const uint32_t xa = xs[0], xb = xs[1];
        xs += 2;
        a0 = resilinet_smlad(xa, w[0], a0);
        a0 = resilinet_smlad(xb, w[1], a0);
        a1 = resilinet_smlad(xa, w[2], a1);
        a1 = resilinet_smlad(xb, w[3], a1);
        a2 = resilinet_smlad(xa, w[4], a2);
        a2 = resilinet_smlad(xb, w[5], a2);
        a3 = resilinet_smlad(xa, w[6], a3);
        a3 = resilinet_smlad(xb, w[7], a3);
        w += 8;
    }
#else
    uint32_t xa, xb, wa, wb;
#define FC_W16_STAGED_ASM                            \
    "ldrd    %[xa], %[xb], [%[xs]], #8\n\t"         \
    "ldrd    %[wa], %[wb], [%[w]], #32\n\t"         \
    "smlad   %[a0], %[xa], %[wa], %[a0]\n\t"        \
    "smlad   %[a0], %[xb], %[wb], %[a0]\n\t"        \
    "ldrd    %[wa], %[wb], [%[w], #-24]\n\t"        \
    "smlad   %[a1], %[xa], %[wa], %[a1]\n\t"        \
    "smlad   %[a1], %[xb], %[wb], %[a1]\n\t"        \
    "ldrd    %[wa], %[wb], [%[w], #-16]\n\t"        \
    "smlad   %[a2], %[xa], %[wa], %[a2]\n\t"        \
    "smlad   %[a2], %[xb], %[wb], %[a2]\n\t"        \
    "ldrd    %[wa], %[wb], [%[w], #-8]\n\t"         \
    "smlad   %[a3], %[xa], %[wa], %[a3]\n\t"        \
    "smlad   %[a3], %[xb], %[wb], %[a3]\n\t"
    /* Four groups per iteration, entered part-way (TBB on -g % 4). */
    int32_t gm = (g + 3) >> 2;
    __asm__("rsb     %[wa], %[g], #0\n\t"
            "and     %[wa], %[wa], #3\n\t"
            "tbb     [pc, %[wa]]\n\t"
            "0:\n\t"
            ".byte   (10f - 0b) / 2, (11f - 0b) / 2, (12f - 0b) / 2, (13f - 0b) / 2\n\t"
            "10:\n\t" FC_W16_STAGED_ASM
            "11:\n\t" FC_W16_STAGED_ASM
            "12:\n\t" FC_W16_STAGED_ASM
            "13:\n\t" FC_W16_STAGED_ASM
            "subs    %[gm], %[gm], #1\n\t"
            "bne     10b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xs] "+r"(xs), [w] "+r"(w),
              [gm] "+r"(gm), [xa] "=&r"(xa), [xb] "=&r"(xb), [wa] "=&r"(wa), [wb] "=&r"(wb)
            : [g] "r"(g)
            : "memory", "cc");
#undef FC_W16_STAGED_ASM
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* n4 blocks of four rows on the fast requantization path without activation clamp (the common case, kept tight). */
static void fc_w16_rows4_fast(const int8_t *x,
                              int32_t depth,
                              uint32_t off2,
                              const resilinet_u32a *w,
                              int32_t n4,
                              const int32_t *bias,
                              const int32_t *mult,
                              const int32_t *shift,
                              int32_t qs,
                              int32_t c,
                              int8_t *out)
{
    const int32_t words = 2 * ((depth + 3) & ~3); /* per block: 4 rows x k4 int16 */
    uint32_t xs[FC_STAGE / 2];
    const int32_t staged = depth <= FC_STAGE;
    if (staged)
    {
        int32_t j = 0;
        for (; j + 4 <= depth; j += 4)
        {
            const uint32_t v = resilinet_read_u32(x + j);
            xs[j >> 1] = resilinet_sxtab16(off2, v);
            xs[(j >> 1) + 1] = resilinet_sxtab16_ror8(off2, v);
        }
        if (j < depth)
        {
            const uint32_t v = fc_tail_word(x + j, depth - j);
            xs[j >> 1] = resilinet_sxtab16(off2, v);
            xs[(j >> 1) + 1] = resilinet_sxtab16_ror8(off2, v);
        }
    }
    for (; n4 > 0; n4--)
    {
        int32_t acc[4] = {0, 0, 0, 0};
        if (bias != NULL)
        {
            acc[0] = bias[0];
            acc[1] = bias[1];
            acc[2] = bias[2];
            acc[3] = bias[3];
            bias += 4;
        }
        if (staged)
        {
            fc_w16_block4_staged((const resilinet_u32a *)xs, (depth + 3) >> 2, w, acc);
        }
        else
        {
            fc_w16_block4_dsp(x, depth, off2, w, acc);
        }
        w += words;
        for (int32_t r = 0; r < 4; r++)
        {
            out[r] = (int8_t)resilinet_nn_requant_fast(acc[r], *mult, ~*shift, c);
            mult += qs;
            shift += qs;
        }
        out += 4;
    }
}
#endif

arm_cmsis_nn_status resilinet_fully_connected_s8_s16w(const cmsis_nn_context *ctx,
                                                      const cmsis_nn_fc_params *fc_params,
                                                      const int32_t *mult,
                                                      const int32_t *shift,
                                                      int32_t per_channel,
                                                      const cmsis_nn_dims *input_dims,
                                                      const int8_t *input_data,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const int16_t *filter_data,
                                                      const cmsis_nn_dims *bias_dims,
                                                      const int32_t *bias_data,
                                                      const cmsis_nn_dims *output_dims,
                                                      int8_t *output_data)
{
    (void)ctx;
    (void)bias_dims;
    const int32_t depth = filter_dims->n;
    const int32_t k4 = (depth + 3) & ~3;
    const int32_t out_c = output_dims->c;
    const int32_t qs = per_channel ? 1 : 0;
    const cmsis_nn_fc_params *p = fc_params;
#if RESILINET_HAS_DSP
    resilinet_nn_requant_params rq;
    resilinet_nn_requant_init(&rq, bias_data, mult, shift, qs, out_c, p->output_offset, p->activation.min,
                              p->activation.max, depth, p->input_offset);
    const uint32_t off2 = resilinet_dup16(p->input_offset);
    const int32_t dsp = ((uintptr_t)filter_data & 3u) == 0;
#endif
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *x = input_data + b * depth;
        int8_t *out = output_data + b * out_c;
        const int16_t *w = filter_data;
        int32_t oc = 0;
#if RESILINET_HAS_DSP
        if (dsp && rq.fast && rq.full_range)
        {
            fc_w16_rows4_fast(x, depth, off2, (const resilinet_u32a *)(const void *)w, out_c >> 2, bias_data, mult,
                              shift, qs, rq.c, out);
            oc = out_c & ~3;
            w += oc * k4;
        }
#endif
        while (oc < out_c)
        {
            const int32_t nr = oc + 4 <= out_c ? 4 : 1;
            int32_t acc[4] = {0, 0, 0, 0};
            for (int32_t r = 0; r < nr && bias_data != NULL; r++)
            {
                acc[r] = bias_data[oc + r];
            }
#if RESILINET_HAS_DSP
            if (dsp && nr == 4)
            {
                fc_w16_block4_dsp(x, depth, off2, (const resilinet_u32a *)(const void *)w, acc);
            }
            else
#endif
            {
                fc_w16_block_c(x, depth, p->input_offset, w, nr, acc);
            }
            for (int32_t r = 0; r < nr; r++, oc++)
            {
#if RESILINET_HAS_DSP
                out[oc] = resilinet_nn_requant_one(&rq, acc[r], oc);
#else
                out[oc] = resilinet_nn_requantize_clamp(acc[r], mult[oc * qs], shift[oc * qs], p->output_offset,
                                                        p->activation.min, p->activation.max);
#endif
            }
            w += nr * k4;
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* resilinet_fully_connected_s8_paired: the int8 weights in pairs of rows (the default layout of our kernels,
 * codegen/ops/fully_connected.py: paired_fc_weights_s8); the body and the layout's arithmetic:
 * resilinet_nn_fully_connected_paired_s8.c. */
arm_cmsis_nn_status resilinet_fully_connected_s8_paired(const cmsis_nn_context *ctx,
                                                        const cmsis_nn_fc_params *fc_params,
                                                        const int32_t *mult,
                                                        const int32_t *shift,
                                                        int32_t per_channel,
                                                        const cmsis_nn_dims *input_dims,
                                                        const int8_t *input_data,
                                                        const cmsis_nn_dims *filter_dims,
                                                        const int8_t *filter_data,
                                                        const cmsis_nn_dims *bias_dims,
                                                        const int32_t *bias_data,
                                                        const cmsis_nn_dims *output_dims,
                                                        int8_t *output_data)
{
    (void)ctx;
    (void)bias_dims;
    resilinet_nn_fully_connected_paired_s8(fc_params, mult, shift, per_channel, input_dims->n, filter_dims->n,
                                           input_data, filter_data, bias_data, output_dims->c, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
