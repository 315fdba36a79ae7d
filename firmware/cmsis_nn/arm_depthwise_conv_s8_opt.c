/*
 * resilinet-mcu: int8 depthwise convolution, channel multiplier 1 (arm_depthwise_conv_s8_opt,
 * arm_depthwise_conv_3x3_s8; TFLM reference_integer_ops::DepthwiseConvPerChannel arithmetic). These run when the
 * caller gives arm_depthwise_conv_wrapper_s8 less scratch than the row-buffer kernel asks for (a module sized
 * for Arm's library); they need none.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* Channel multiplier 1, channels [c_begin, c_end) one at a time over every output pixel. */
static void dw_channels(const cmsis_nn_dw_conv_params *p,
                        const cmsis_nn_per_channel_quant_params *quant_params,
                        const cmsis_nn_dims *input_dims,
                        const int8_t *in,
                        const cmsis_nn_dims *filter_dims,
                        const int8_t *filter_data,
                        const int32_t *bias_data,
                        const cmsis_nn_dims *output_dims,
                        int8_t *out_b,
                        int32_t c_begin,
                        int32_t c_end)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t c_n = input_dims->c;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    for (int32_t oy = 0; oy < output_dims->h; oy++)
    {
        const int32_t y0 = oy * p->stride.h - p->padding.h;
        const int32_t ky_start = MAX(0, -y0);
        const int32_t ky_end = MIN(kh, in_h - y0);
        for (int32_t ox = 0; ox < output_dims->w; ox++)
        {
            const int32_t x0 = ox * p->stride.w - p->padding.w;
            const int32_t kx_start = MAX(0, -x0);
            const int32_t kx_end = MIN(kw, in_w - x0);
            int8_t *out = out_b + (oy * output_dims->w + ox) * c_n;
            for (int32_t c = c_begin; c < c_end; c++)
            {
                int32_t acc = 0;
                for (int32_t ky = ky_start; ky < ky_end; ky++)
                {
                    for (int32_t kx = kx_start; kx < kx_end; kx++)
                    {
                        const int32_t x = (int32_t)in[((y0 + ky) * in_w + (x0 + kx)) * c_n + c] + p->input_offset;
                        acc += x * (int32_t)filter_data[(ky * kw + kx) * c_n + c];
                    }
                }
                acc += bias_data != NULL ? bias_data[c] : 0;
                out[c] = resilinet_nn_requantize_clamp(acc, quant_params->multiplier[c], quant_params->shift[c],
                                                       p->output_offset, p->activation.min, p->activation.max);
            }
        }
    }
}

#if RESILINET_HAS_DSP
#define DW_MAX_TAPS 25

/* n >= 1 consecutive taps of one kernel row, four channels: q = first input (channel c), cn = bytes from
 * one pixel to the next, wp = the taps' widened weight words. */
static inline void dw_taps(const int8_t *q,
                           int32_t cn,
                           const uint32_t *wp,
                           int32_t n,
                           uint32_t off2,
                           int32_t *pa0,
                           int32_t *pa1,
                           int32_t *pa2,
                           int32_t *pa3)
{
    int32_t a0 = *pa0, a1 = *pa1, a2 = *pa2, a3 = *pa3;
#if !RESILINET_DSP_ASM
    for (; n > 0; n--)
    {
        const uint32_t v = resilinet_read_u32(q);
        const uint32_t lo = resilinet_sxtab16(off2, v);
        const uint32_t hi = resilinet_sxtab16_ror8(off2, v);
        a0 = resilinet_smlabb(lo, wp[0], a0);
        a2 = resilinet_smlatt(lo, wp[0], a2);
        a1 = resilinet_smlabb(hi, wp[1], a1);
        a3 = resilinet_smlatt(hi, wp[1], a3);
        q += cn;
        wp += 2;
    }
#else
    if (n > 3)
    {
        /* Wider kernels: three taps at a time. */
        for (; n > 3; n -= 3)
        {
            dw_taps(q, cn, wp, 3, off2, &a0, &a1, &a2, &a3);
            q += 3 * cn;
            wp += 6;
        }
    }
    uint32_t lo, v, wl, wh;
#define DW_TAP1(WOFF)                           \
    "ldr    %[v], [%[q]]\n\t"                       \
    "add    %[q], %[q], %[cn]\n\t"                  \
    "sxtab16 %[lo], %[off2], %[v]\n\t"              \
    "sxtab16 %[v], %[off2], %[v], ror #8\n\t"       \
    "ldrd   %[wl], %[wh], [%[wp], #" WOFF "]\n\t"   \
    "smlabb %[a0], %[lo], %[wl], %[a0]\n\t"         \
    "smlatt %[a2], %[lo], %[wl], %[a2]\n\t"         \
    "smlabb %[a1], %[v], %[wh], %[a1]\n\t"          \
    "smlatt %[a3], %[v], %[wh], %[a3]\n\t"
#define DW_TAPS_ASM(CODE)                                                                                     \
    __asm__(CODE                                                                                                  \
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [q] "+r"(q), [lo] "=&r"(lo), [v] "=&r"(v), \
              [wl] "=&r"(wl), [wh] "=&r"(wh)                                                                      \
            : [cn] "r"(cn), [wp] "r"(wp), [off2] "r"(off2)                                                        \
            : "memory")
    if (n == 3)
    {
        DW_TAPS_ASM(DW_TAP1("0") DW_TAP1("8") DW_TAP1("16"));
    }
    else if (n == 2)
    {
        DW_TAPS_ASM(DW_TAP1("0") DW_TAP1("8"));
    }
    else
    {
        DW_TAPS_ASM(DW_TAP1("0"));
    }
#undef DW_TAPS_ASM
#undef DW_TAP1
#endif
    *pa0 = a0;
    *pa1 = a1;
    *pa2 = a2;
    *pa3 = a3;
}

/* One output pixel of a 3x3 window fully inside the input, four channels: q = the window's top-left input
 * (channel c), cn = bytes from one pixel to the next, skip = bytes from the third pixel of a row to the
 * first of the next; wx = the 18 widened weight words. Per tap one LDR, two SXTAB16, one LDRD of the
 * weights and four SMLABB/SMLATT. */
static inline void dw3x3_px(const int8_t *q,
                            int32_t cn,
                            int32_t skip,
                            const uint32_t *wx,
                            uint32_t off2,
                            int32_t *pa0,
                            int32_t *pa1,
                            int32_t *pa2,
                            int32_t *pa3)
{
    int32_t a0 = *pa0, a1 = *pa1, a2 = *pa2, a3 = *pa3;
#if !RESILINET_DSP_ASM
    for (int32_t ky = 0; ky < 3; ky++)
    {
        for (int32_t kx = 0; kx < 3; kx++)
        {
            const uint32_t v = resilinet_read_u32(q + kx * cn);
            const uint32_t lo = resilinet_sxtab16(off2, v);
            const uint32_t hi = resilinet_sxtab16_ror8(off2, v);
            const uint32_t wl = wx[2 * (3 * ky + kx)], wh = wx[2 * (3 * ky + kx) + 1];
            a0 = resilinet_smlabb(lo, wl, a0);
            a2 = resilinet_smlatt(lo, wl, a2);
            a1 = resilinet_smlabb(hi, wh, a1);
            a3 = resilinet_smlatt(hi, wh, a3);
        }
        q += 2 * cn + skip;
    }
#else
    uint32_t lo, v, wl, wh;
#define DW_TAP(LOAD, WOFF)                      \
    LOAD                                            \
    "sxtab16 %[lo], %[off2], %[v]\n\t"              \
    "sxtab16 %[v], %[off2], %[v], ror #8\n\t"       \
    "ldrd   %[wl], %[wh], [%[wx], #" WOFF "]\n\t"   \
    "smlabb %[a0], %[lo], %[wl], %[a0]\n\t"         \
    "smlatt %[a2], %[lo], %[wl], %[a2]\n\t"         \
    "smlabb %[a1], %[v], %[wh], %[a1]\n\t"          \
    "smlatt %[a3], %[v], %[wh], %[a3]\n\t"
#define DW_ROW(W0, W1, W2)                                  \
    DW_TAP("ldr    %[v], [%[q]]\n\t", W0)                   \
    DW_TAP("ldr    %[v], [%[q], %[cn]]\n\t", W1)            \
    DW_TAP("add    %[q], %[q], %[cn], lsl #1\n\t"           \
           "ldr    %[v], [%[q]]\n\t", W2)                   \
    "add    %[q], %[q], %[skip]\n\t"
    __asm__(DW_ROW("0", "8", "16") DW_ROW("24", "32", "40") DW_ROW("48", "56", "64")
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [q] "+r"(q), [lo] "=&r"(lo), [v] "=&r"(v),
              [wl] "=&r"(wl), [wh] "=&r"(wh)
            : [cn] "r"(cn), [skip] "r"(skip), [wx] "r"(wx), [off2] "r"(off2)
            : "memory");
#undef DW_ROW
#undef DW_TAP
#endif
    *pa0 = a0;
    *pa1 = a1;
    *pa2 = a2;
    *pa3 = a3;
}

/* Requantize the four accumulators of channels c..c+3 and store them at o[0..3]. */
static inline void dw_store4(const resilinet_nn_requant_params *rq,
                             const int32_t *me,
                             int32_t fast,
                             int32_t c,
                             int32_t a0,
                             int32_t a1,
                             int32_t a2,
                             int32_t a3,
                             int8_t *o)
{
    if (fast)
    {
        const int32_t rc = rq->c;
#if !RESILINET_DSP_ASM
        o[0] = (int8_t)resilinet_nn_requant_fast(a0, me[0], me[4], rc);
        o[1] = (int8_t)resilinet_nn_requant_fast(a1, me[1], me[5], rc);
        o[2] = (int8_t)resilinet_nn_requant_fast(a2, me[2], me[6], rc);
        o[3] = (int8_t)resilinet_nn_requant_fast(a3, me[3], me[7], rc);
#else
        /* resilinet_nn_requant_fast on all four, the multipliers and shift counts fetched in pairs. */
        uint32_t ma, mb, ea, eb;
#define DW_RQ(A, M, E, OFF)                         \
    "lsl    %[" A "], %[" A "], #1\n\t"                \
    "smmulr %[" A "], %[" A "], %[" M "]\n\t"          \
    "add    %[" A "], %[" A "], %[" A "], asr #31\n\t" \
    "asr    %[" A "], %[" A "], %[" E "]\n\t"          \
    "add    %[" A "], %[" A "], %[rc]\n\t"             \
    "ssat   %[" A "], #8, %[" A "], asr #1\n\t"        \
    "strb   %[" A "], [%[o], #" OFF "]\n\t"
        __asm__ volatile("ldrd   %[ma], %[mb], [%[me]]\n\t"
                "ldrd   %[ea], %[eb], [%[me], #16]\n\t"
                DW_RQ("a0", "ma", "ea", "0") DW_RQ("a1", "mb", "eb", "1")
                "ldrd   %[ma], %[mb], [%[me], #8]\n\t"
                "ldrd   %[ea], %[eb], [%[me], #24]\n\t"
                DW_RQ("a2", "ma", "ea", "2") DW_RQ("a3", "mb", "eb", "3")
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [ma] "=&r"(ma), [mb] "=&r"(mb),
                  [ea] "=&r"(ea), [eb] "=&r"(eb)
                : [me] "r"(me), [rc] "r"(rc), [o] "r"(o)
                : "memory");
#undef DW_RQ
#endif
    }
    else
    {
        o[0] = resilinet_nn_requant_one(rq, a0, c);
        o[1] = resilinet_nn_requant_one(rq, a1, c + 1);
        o[2] = resilinet_nn_requant_one(rq, a2, c + 2);
        o[3] = resilinet_nn_requant_one(rq, a3, c + 3);
    }
}

/* Channel multiplier 1 on DSP cores, four channels at a time: the group's weights are widened once into
 * two words per tap ([w0 | w2 << 16], [w1 | w3 << 16]); per tap one LDR and two SXTAB16 widen the four
 * inputs (adding the offset) and four SMLABB/SMLATT accumulate. Requantization constants of the group are
 * loaded once for all pixels; 3x3 windows inside the input run straight-line (dw3x3_px), clipped
 * windows row by row (dw_taps). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void dw_group_dsp(const resilinet_nn_requant_params *rq,
                         const cmsis_nn_dw_conv_params *p,
                         const cmsis_nn_dims *input_dims,
                         const int8_t *in,
                         const cmsis_nn_dims *filter_dims,
                         const int8_t *filter_data,
                         const cmsis_nn_dims *output_dims,
                         int8_t *out,
                         int32_t c)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t c_n = input_dims->c;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t sh = p->stride.h, sw = p->stride.w, ph = p->padding.h, pw = p->padding.w;
    const uint32_t off2 = resilinet_dup16(p->input_offset);
    uint32_t wx[2 * DW_MAX_TAPS];
    for (int32_t t = 0; t < kh * kw; t++)
    {
        const uint32_t v = resilinet_read_u32(filter_data + t * c_n + c);
        wx[2 * t] = resilinet_sxtb16(v);
        wx[2 * t + 1] = resilinet_sxtb16_ror8(v);
    }
    int32_t bias[4], me[8];
    for (int32_t j = 0; j < 4; j++)
    {
        bias[j] = rq->bias != NULL ? rq->bias[c + j] : 0;
        me[j] = rq->mult[c + j];
        me[4 + j] = ~rq->shift[c + j];
    }
    const int32_t fast = rq->fast && rq->full_range;
    const int32_t row_step = in_w * c_n;
    /* Output columns whose window is horizontally inside the input: [ox_lo, ox_hi). */
    const int32_t ox_lo = MIN(out_w, (pw + sw - 1) / sw);
    const int32_t ox_hi = MAX(ox_lo, MIN(out_w, in_w - kw + pw >= 0 ? (in_w - kw + pw) / sw + 1 : 0));
    const int32_t full3x3 = kh == 3 && kw == 3;
    int8_t *o = out + c;
    for (int32_t oy = 0; oy < out_h; oy++)
    {
        const int32_t y0 = oy * sh - ph;
        const int32_t row_inside = full3x3 && y0 >= 0 && y0 + 3 <= in_h;
        for (int32_t ox = 0; ox < out_w; ox++)
        {
            if (row_inside && ox == ox_lo && ox_lo < ox_hi)
            {
                /* Interior run of the row: whole 3x3 windows. */
                const int8_t *q = in + (y0 * in_w + ox * sw - pw) * c_n + c;
                for (; ox < ox_hi; ox++)
                {
                    int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
                    dw3x3_px(q, c_n, row_step - 2 * c_n, wx, off2, &a0, &a1, &a2, &a3);
                    dw_store4(rq, me, fast, c, a0, a1, a2, a3, o);
                    q += sw * c_n;
                    o += c_n;
                }
                ox--;
                continue;
            }
            const int32_t x0 = ox * sw - pw;
            const int32_t ky_start = MAX(0, -y0);
            const int32_t ky_end = MIN(kh, in_h - y0);
            const int32_t kx_start = MAX(0, -x0);
            const int32_t kx_end = MIN(kw, in_w - x0);
            int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
            if (kx_end > kx_start)
            {
                const int8_t *row = in + ((y0 + ky_start) * in_w + x0 + kx_start) * c_n + c;
                const uint32_t *wrow = wx + 2 * (ky_start * kw + kx_start);
                for (int32_t ky = ky_start; ky < ky_end; ky++)
                {
                    dw_taps(row, c_n, wrow, kx_end - kx_start, off2, &a0, &a1, &a2, &a3);
                    row += row_step;
                    wrow += 2 * kw;
                }
            }
            dw_store4(rq, me, fast, c, a0, a1, a2, a3, o);
            o += c_n;
        }
    }
}
#endif

/* Channel multiplier 1, no dilation. */
arm_cmsis_nn_status arm_depthwise_conv_s8_opt(const cmsis_nn_context *ctx,
                                              const cmsis_nn_dw_conv_params *dw_conv_params,
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
    const cmsis_nn_dw_conv_params *p = dw_conv_params;
    const int32_t c_n = input_dims->c;
    if (p->ch_mult != 1 || output_dims->c != c_n || p->dilation.w != 1 || p->dilation.h != 1)
    {
        return arm_depthwise_conv_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                     filter_data, bias_dims, bias_data, output_dims, output_data);
    }
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * input_dims->h * input_dims->w * c_n;
        int8_t *out = output_data + b * output_dims->h * output_dims->w * c_n;
        int32_t c = 0;
#if RESILINET_HAS_DSP
        if (filter_dims->h * filter_dims->w <= DW_MAX_TAPS)
        {
            resilinet_nn_requant_params rq;
            resilinet_nn_requant_init(&rq, bias_data, quant_params->multiplier, quant_params->shift, 1, c_n,
                                      p->output_offset, p->activation.min, p->activation.max,
                                      filter_dims->h * filter_dims->w, p->input_offset);
            for (; c + 4 <= c_n; c += 4)
            {
                dw_group_dsp(&rq, p, input_dims, in, filter_dims, filter_data, output_dims, out, c);
            }
        }
#endif
        if (c < c_n)
        {
            dw_channels(p, quant_params, input_dims, in, filter_dims, filter_data, bias_data, output_dims, out, c,
                        c_n);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_depthwise_conv_3x3_s8(const cmsis_nn_context *ctx,
                                              const cmsis_nn_dw_conv_params *dw_conv_params,
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
    if (filter_dims->w != 3 || filter_dims->h != 3 || dw_conv_params->padding.w > 1 ||
        dw_conv_params->padding.h > 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    return arm_depthwise_conv_s8_opt(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                     filter_data, bias_dims, bias_data, output_dims, output_data);
}

#endif /* RESILINET_USE_CMSIS_NN */
