/*
 * resilinet-mcu: int8 convolutions (TFLM reference_integer_ops::ConvPerChannel semantics).
 *
 * acc = bias[oc] + sum (in + input_offset) * w over the receptive field; padded positions contribute
 * nothing (equivalent to padding with the input zero point); then requantize per channel, add the
 * output offset and clamp.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* Fill one im2col column (offset-corrected int16) for output pixel (oy, ox) of batch b. */
static void rnn_im2col_s8_s16(const int8_t *input,
                              const cmsis_nn_dims *input_dims,
                              const cmsis_nn_dims *filter_dims,
                              const cmsis_nn_conv_params *p,
                              int32_t oy,
                              int32_t ox,
                              int16_t *col)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t n = filter_dims->h * filter_dims->w * in_c;
    const int32_t n4 = n & ~3;
    const int32_t y0 = oy * p->stride.h - p->padding.h;
    const int32_t x0 = ox * p->stride.w - p->padding.w;
    int32_t k = 0;
    for (int32_t ky = 0; ky < filter_dims->h; ky++)
    {
        const int32_t iy = y0 + ky * p->dilation.h;
        for (int32_t kx = 0; kx < filter_dims->w; kx++)
        {
            const int32_t ix = x0 + kx * p->dilation.w;
            if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w)
            {
                for (int32_t c = 0; c < in_c; c++, k++)
                {
                    col[rnn_im2col_index(k, n4)] = 0;
                }
            }
            else
            {
                const int8_t *src = input + (iy * in_w + ix) * in_c;
                for (int32_t c = 0; c < in_c; c++, k++)
                {
                    col[rnn_im2col_index(k, n4)] = (int16_t)((int32_t)src[c] + p->input_offset);
                }
            }
        }
    }
}

static void rnn_conv_finish(const int32_t *bias,
                            const cmsis_nn_per_channel_quant_params *q,
                            const cmsis_nn_conv_params *p,
                            int32_t oc,
                            int32_t acc,
                            int8_t *out)
{
    if (bias != NULL)
    {
        acc += bias[oc];
    }
    *out = rnn_requantize_clamp(
        acc, q->multiplier[oc], q->shift[oc], p->output_offset, p->activation.min, p->activation.max);
}

int32_t arm_convolve_s8_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    const int32_t n = filter_dims->w * filter_dims->h * input_dims->c;
    const int32_t n_aligned = (n + 3) & ~3;
    /* Two im2col columns of int16. */
    return 2 * n_aligned * (int32_t)sizeof(int16_t);
}

arm_cmsis_nn_status arm_convolve_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_conv_params *conv_params,
                                    const cmsis_nn_per_channel_quant_params *quant_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const int8_t *filter_data,
                                    const cmsis_nn_dims *bias_dims,
                                    const int32_t *bias_data,
                                    const cmsis_nn_dims *upscale_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data)
{
    (void)bias_dims;
    if (upscale_dims != NULL && (upscale_dims->h != 1 || upscale_dims->w != 1))
    {
        return ARM_CMSIS_NN_NO_IMPL_ERROR;
    }
    /* Grouped convolution is not part of this subset. */
    if (filter_dims->c != input_dims->c)
    {
        return ARM_CMSIS_NN_NO_IMPL_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL ||
        ctx->size < arm_convolve_s8_get_buffer_size(input_dims, filter_dims))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }

    const int32_t n = filter_dims->h * filter_dims->w * input_dims->c;
    const int32_t n_aligned = (n + 3) & ~3;
    const int32_t out_c = output_dims->c;
    const int32_t out_hw = output_dims->h * output_dims->w;
    int16_t *const col0 = (int16_t *)ctx->buf;
    int16_t *const col1 = col0 + n_aligned;

    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * input_dims->h * input_dims->w * input_dims->c;
        int8_t *out = output_data + b * out_hw * out_c;
        int32_t pix = 0;
        /* Two output pixels at a time: every weight word serves two columns. */
        for (; pix + 2 <= out_hw; pix += 2)
        {
            rnn_im2col_s8_s16(in, input_dims, filter_dims, conv_params, pix / output_dims->w,
                              pix % output_dims->w, col0);
            rnn_im2col_s8_s16(in, input_dims, filter_dims, conv_params, (pix + 1) / output_dims->w,
                              (pix + 1) % output_dims->w, col1);
            for (int32_t oc = 0; oc < out_c; oc++)
            {
                int32_t a0;
                int32_t a1;
                rnn_dot2_s16_s8(col0, col1, filter_data + oc * n, n, &a0, &a1);
                rnn_conv_finish(bias_data, quant_params, conv_params, oc, a0, out + pix * out_c + oc);
                rnn_conv_finish(bias_data, quant_params, conv_params, oc, a1, out + (pix + 1) * out_c + oc);
            }
        }
        if (pix < out_hw)
        {
            rnn_im2col_s8_s16(in, input_dims, filter_dims, conv_params, pix / output_dims->w,
                              pix % output_dims->w, col0);
            for (int32_t oc = 0; oc < out_c; oc++)
            {
                const int32_t acc = rnn_dot_s16_s8(col0, filter_data + oc * n, n);
                rnn_conv_finish(bias_data, quant_params, conv_params, oc, acc, out + pix * out_c + oc);
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* 1x1 kernel without padding: each output pixel is a matrix-vector product over the input channels of
 * one input pixel, so no im2col is needed. */
static arm_cmsis_nn_status rnn_convolve_1x1(const cmsis_nn_conv_params *p,
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
                    rnn_dot2_s8_offset(x, filter_data + oc * in_c, filter_data + (oc + 1) * in_c, in_c,
                                       p->input_offset, &a0, &a1);
                    rnn_conv_finish(bias_data, q, p, oc, a0, out + oc);
                    rnn_conv_finish(bias_data, q, p, oc + 1, a1, out + oc + 1);
                }
                if (oc < out_c)
                {
                    const int32_t acc = rnn_dot_s8_offset(x, filter_data + oc * in_c, in_c, p->input_offset);
                    rnn_conv_finish(bias_data, q, p, oc, acc, out + oc);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_convolve_1x1_s8_fast_get_buffer_size(const cmsis_nn_dims *input_dims)
{
    (void)input_dims;
    return 0;
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
    (void)ctx;
    (void)bias_dims;
    if (conv_params->stride.w != 1 || conv_params->stride.h != 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    return rnn_convolve_1x1(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
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
    (void)ctx;
    (void)bias_dims;
    return rnn_convolve_1x1(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                            output_dims, output_data);
}

/* Same dispatch as CMSIS-NN, so a buffer sized with arm_convolve_wrapper_s8_get_buffer_size() fits
 * whichever kernel runs. (CMSIS-NN's 1xN special case shares the generic kernel's buffer size.) */
static int32_t rnn_conv_is_1x1(const cmsis_nn_conv_params *p, const cmsis_nn_dims *filter_dims)
{
    return p->padding.w == 0 && p->padding.h == 0 && filter_dims->w == 1 && filter_dims->h == 1 &&
        p->dilation.w == 1 && p->dilation.h == 1;
}

arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context *ctx,
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
    if (rnn_conv_is_1x1(conv_params, filter_dims))
    {
        if (conv_params->stride.w == 1 && conv_params->stride.h == 1)
        {
            return arm_convolve_1x1_s8_fast(ctx, conv_params, quant_params, input_dims, input_data, filter_dims,
                                            filter_data, bias_dims, bias_data, output_dims, output_data);
        }
        return arm_convolve_1x1_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims,
                                   filter_data, bias_dims, bias_data, output_dims, output_data);
    }
    return arm_convolve_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                           bias_dims, bias_data, NULL, output_dims, output_data);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims)
{
    (void)output_dims;
    if (rnn_conv_is_1x1(conv_params, filter_dims))
    {
        return 0;
    }
    return arm_convolve_s8_get_buffer_size(input_dims, filter_dims);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims)
{
    /* The pure C and DSP variants of CMSIS-NN size this buffer identically. */
    return arm_convolve_wrapper_s8_get_buffer_size_dsp(conv_params, input_dims, filter_dims, output_dims);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims)
{
    (void)output_dims;
    if (rnn_conv_is_1x1(conv_params, filter_dims))
    {
        return 0;
    }
    if (input_dims->h == 1 && conv_params->dilation.w == 1 && filter_dims->h == 1 &&
        (conv_params->stride.w * input_dims->c) % 4 == 0)
    {
        return 0;
    }
    /* Four int8 im2col columns rounded up to whole 8-lane vectors (CMSIS-NN MVE sizing). */
    const int32_t col = (input_dims->c * filter_dims->w * filter_dims->h + 7) / 8;
    return 4 * col * 8;
}

#endif /* RESILINET_USE_CMSIS_NN */
