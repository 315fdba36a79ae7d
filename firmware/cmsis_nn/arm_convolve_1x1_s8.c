/*
 * resilinet-mcu: int8 1x1 convolutions without padding (TFLM reference_integer_ops::ConvPerChannel semantics):
 * arm_convolve_1x1_s8_fast (stride 1), arm_convolve_1x1_s8 (any stride), the fast one's buffer size, and the
 * DSP kernel behind them that resilinet_convolve_wrapper_s8_s16w shares (resilinet_nn_convolve_1x1_dsp_s8).
 * Each output pixel is a matrix-vector product over the input channels of one input pixel: no im2col.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if RESILINET_HAS_DSP
/* Column words of one input pixel's channels (1x1 kernels). */
static void col_pixel_dsp(const int8_t *x, int32_t in_c, int32_t input_offset, resilinet_u32a *dst, int32_t step)
{
    const int32_t n4 = in_c & ~3;
    dst = resilinet_nn_s8_to_s16_unordered_with_offset(dst, x, n4, resilinet_dup16(input_offset), step);
    if (n4 < in_c)
    {
        int32_t e[4] = {0, 0, 0, 0};
        for (int32_t c = n4; c < in_c; c++)
        {
            e[c - n4] = (int32_t)x[c] + input_offset;
        }
        dst[0] = resilinet_pkhbt16((uint32_t)e[0], (uint32_t)e[2]);
        dst[1] = resilinet_pkhbt16((uint32_t)e[1], (uint32_t)e[3]);
    }
}

/* 1x1 convolution without padding on DSP cores: each input pixel's channels are one column. */
static void convolve_1x1_dsp(const cmsis_nn_context *ctx,
                             const cmsis_nn_conv_params *p,
                             const cmsis_nn_per_channel_quant_params *q,
                             const cmsis_nn_dims *input_dims,
                             const int8_t *input_data,
                             const int8_t *filter_data,
                             const int16_t *filter_w16,
                             const int32_t *bias_data,
                             const cmsis_nn_dims *output_dims,
                             int8_t *output_data)
{
    const resilinet_u32a *const w16 = (const resilinet_u32a *)(const void *)filter_w16;
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t out_w = output_dims->w;
    const int32_t out_hw = output_dims->h * out_w;
    resilinet_u32a *const cols = (resilinet_u32a *)ctx->buf;
    const uint32_t off2 = resilinet_dup16(p->input_offset);
    resilinet_nn_requant_params rq;
    resilinet_nn_requant_init(&rq, bias_data, q->multiplier, q->shift, 1, out_c, p->output_offset, p->activation.min,
                              p->activation.max, in_c, p->input_offset);
    /* Bias and requantization of every channel pair in one table (resilinet_nn_requant_pack). */
    int32_t packed[RESILINET_NN_REQUANT_PACK_WORDS];
    const int32_t use_packed =
        w16 != NULL && resilinet_nn_requant_pack(&rq, out_c, packed, RESILINET_NN_REQUANT_PACK_WORDS);
    /* Four pixels at a time when the scratch holds four columns (codegen plans them for the DSP build). */
    const int32_t k4 = (in_c + 3) & ~3;
    const int32_t x4 = w16 != NULL && (in_c & 3) == 0 && rq.fast && rq.full_range && rq.q_stride == 1 &&
        out_c >= 2 && ctx->size >= 4 * k4 * (int32_t)sizeof(int16_t);
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * input_dims->h * input_dims->w * in_c;
        int8_t *out = output_data + b * out_hw * out_c;
        int32_t pix = 0;
        int32_t oy = 0, ox = 0;
        const int8_t *x[4];
        for (; x4 && pix + 4 <= out_hw; pix += 4)
        {
            for (int32_t i = 0; i < 4; i++)
            {
                x[i] = in + ((oy * p->stride.h) * input_dims->w + ox * p->stride.w) * in_c;
                if (++ox == out_w)
                {
                    ox = 0;
                    oy++;
                }
            }
            (void)resilinet_nn_s8_to_s16_pair_with_offset(cols, x[0], x[1], in_c, off2, 8);
            (void)resilinet_nn_s8_to_s16_pair_with_offset(cols + 2, x[2], x[3], in_c, off2, 8);
            resilinet_nn_mat_mult_kernel_s16w_x4(cols, k4, w16, out_c, &rq, packed, use_packed, out + pix * out_c);
        }
        for (; pix < out_hw; pix += 2)
        {
            const int32_t two = pix + 1 < out_hw;
            for (int32_t i = 0; i < 1 + two; i++)
            {
                x[i] = in + ((oy * p->stride.h) * input_dims->w + ox * p->stride.w) * in_c;
                if (++ox == out_w)
                {
                    ox = 0;
                    oy++;
                }
            }
            if (two && (in_c & 3) == 0)
            {
                (void)resilinet_nn_s8_to_s16_pair_with_offset(cols, x[0], x[1], in_c, off2, 4);
            }
            else
            {
                col_pixel_dsp(x[0], in_c, p->input_offset, cols, two ? 4 : 2);
                if (two)
                {
                    col_pixel_dsp(x[1], in_c, p->input_offset, cols + 2, 4);
                }
            }
            int8_t *const out1 = two ? out + (pix + 1) * out_c : NULL;
            if (use_packed && two)
            {
                resilinet_nn_mat_mult_kernel_s16w_packed(cols, (in_c + 3) & ~3, w16, out_c, &rq, packed,
                                                         out + pix * out_c, out1);
            }
            else if (w16 != NULL)
            {
                resilinet_nn_mat_mult_kernel_s16w(cols, two, (in_c + 3) & ~3, w16, out_c, &rq, out + pix * out_c,
                                                  out1);
            }
            else
            {
                resilinet_nn_mat_mult_kernel_s8_s16(cols, two, in_c, filter_data, out_c, &rq, out + pix * out_c,
                                                    out1);
            }
        }
    }
}

int32_t resilinet_nn_convolve_1x1_dsp_s8(const cmsis_nn_context *ctx,
                                         const cmsis_nn_conv_params *p,
                                         const cmsis_nn_per_channel_quant_params *q,
                                         const cmsis_nn_dims *input_dims,
                                         const int8_t *input_data,
                                         const int8_t *filter_data,
                                         const int16_t *filter_w16,
                                         const int32_t *bias_data,
                                         const cmsis_nn_dims *output_dims,
                                         int8_t *output_data)
{
    if (ctx == NULL || ctx->buf == NULL || ((uintptr_t)ctx->buf & 3u) != 0 ||
        ctx->size < resilinet_nn_conv_1x1_buffer_size_dsp(input_dims))
    {
        return 0;
    }
    convolve_1x1_dsp(ctx, p, q, input_dims, input_data, filter_data, filter_w16, bias_data, output_dims, output_data);
    return 1;
}
#endif /* RESILINET_HAS_DSP */

/* 1x1 kernel without padding: each output pixel is a matrix-vector product over the input channels of
 * one input pixel, so no im2col is needed. */
static arm_cmsis_nn_status convolve_1x1(const cmsis_nn_context *ctx,
                                        const cmsis_nn_conv_params *p,
                                        const cmsis_nn_per_channel_quant_params *q,
                                        const cmsis_nn_dims *input_dims,
                                        const int8_t *input_data,
                                        const cmsis_nn_dims *filter_dims,
                                        const int8_t *filter_data,
                                        const int32_t *bias_data,
                                        const cmsis_nn_dims *output_dims,
                                        int8_t *output_data)
{
    if (filter_dims->h != 1 || filter_dims->w != 1 || p->padding.h != 0 || p->padding.w != 0 ||
        filter_dims->c != input_dims->c)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
#if RESILINET_HAS_DSP
    if (resilinet_nn_convolve_1x1_dsp_s8(ctx, p, q, input_dims, input_data, filter_data, NULL, bias_data, output_dims,
                                         output_data))
    {
        return ARM_CMSIS_NN_SUCCESS;
    }
#else
    (void)ctx;
#endif
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                const int32_t iy = oy * p->stride.h;
                const int32_t ix = ox * p->stride.w;
                const int8_t *x = input_data + ((b * input_dims->h + iy) * input_dims->w + ix) * in_c;
                int8_t *out = output_data + ((b * output_dims->h + oy) * output_dims->w + ox) * out_c;
                int32_t oc = 0;
                for (; oc + 2 <= out_c; oc += 2)
                {
                    int32_t a0;
                    int32_t a1;
                    resilinet_nn_dot_2x_s8(x, filter_data + oc * in_c, filter_data + (oc + 1) * in_c, in_c,
                                           p->input_offset, &a0, &a1);
                    resilinet_nn_conv_finish(bias_data, q, p, oc, a0, out + oc);
                    resilinet_nn_conv_finish(bias_data, q, p, oc + 1, a1, out + oc + 1);
                }
                if (oc < out_c)
                {
                    const int32_t acc = resilinet_nn_dot_s8(x, filter_data + oc * in_c, in_c, p->input_offset);
                    resilinet_nn_conv_finish(bias_data, q, p, oc, acc, out + oc);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_convolve_1x1_s8_fast_get_buffer_size(const cmsis_nn_dims *input_dims)
{
#if RESILINET_HAS_DSP
    return resilinet_nn_conv_1x1_buffer_size_dsp(input_dims);
#else
    (void)input_dims;
    return 0;
#endif
}

arm_cmsis_nn_status arm_convolve_1x1_s8_fast(const cmsis_nn_context *ctx,
                                             const cmsis_nn_conv_params *conv_params,
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
    (void)bias_dims;
    if (conv_params->stride.w != 1 || conv_params->stride.h != 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    return convolve_1x1(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                        output_dims, output_data);
}

arm_cmsis_nn_status arm_convolve_1x1_s8(const cmsis_nn_context *ctx,
                                        const cmsis_nn_conv_params *conv_params,
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
    (void)bias_dims;
    return convolve_1x1(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                        output_dims, output_data);
}

#endif /* RESILINET_USE_CMSIS_NN */
