/*
 * resilinet-mcu: int8 depthwise convolutions (TFLM reference_integer_ops::DepthwiseConvPerChannel).
 *
 * Output channel oc = ic * ch_mult + m reads input channel ic; filter layout [1, KH, KW, C_OUT].
 * Positions outside the input are skipped (zero-point padding). This file: the reference kernel (any channel
 * multiplier and dilation), the wrapper, the buffer sizes and the entry point on weights packed by codegen; the
 * channel-multiplier-1 kernels are in arm_depthwise_conv_s8_opt.c, the row-buffer kernel the wrapper prefers in
 * resilinet_nn_depthwise_rows_s8.c.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

static inline int8_t dw_finish(const int32_t *bias,
                               const cmsis_nn_per_channel_quant_params *q,
                               const cmsis_nn_dw_conv_params *p,
                               int32_t oc,
                               int32_t acc)
{
    if (bias != NULL)
    {
        acc += bias[oc];
    }
    return resilinet_nn_requantize_clamp(acc, q->multiplier[oc], q->shift[oc], p->output_offset, p->activation.min,
                                         p->activation.max);
}

arm_cmsis_nn_status arm_depthwise_conv_s8(const cmsis_nn_context *ctx,
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
    (void)ctx;
    (void)bias_dims;
    const cmsis_nn_dw_conv_params *p = dw_conv_params;
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    if (in_c * p->ch_mult != out_c || filter_dims->c != out_c)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t y0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                const int32_t x0 = ox * p->stride.w - p->padding.w;
                int8_t *out = output_data + ((b * output_dims->h + oy) * output_dims->w + ox) * out_c;
                for (int32_t ic = 0; ic < in_c; ic++)
                {
                    for (int32_t m = 0; m < p->ch_mult; m++)
                    {
                        const int32_t oc = ic * p->ch_mult + m;
                        int32_t acc = 0;
                        for (int32_t ky = 0; ky < filter_dims->h; ky++)
                        {
                            const int32_t iy = y0 + ky * p->dilation.h;
                            if (iy < 0 || iy >= in_h)
                            {
                                continue;
                            }
                            for (int32_t kx = 0; kx < filter_dims->w; kx++)
                            {
                                const int32_t ix = x0 + kx * p->dilation.w;
                                if (ix < 0 || ix >= in_w)
                                {
                                    continue;
                                }
                                const int32_t x = (int32_t)in[(iy * in_w + ix) * in_c + ic] + p->input_offset;
                                acc += x * (int32_t)filter_data[(ky * filter_dims->w + kx) * out_c + oc];
                            }
                        }
                        out[oc] = dw_finish(bias_data, quant_params, p, oc, acc);
                    }
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context *ctx,
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
    /* The row-buffer kernel (resilinet_nn_depthwise_rows_s8.c) whenever the caller gave it its scratch; the
     * kernels below need none, so a module sized for Arm's numbers still runs, on them. */
    const int32_t rows = resilinet_nn_depthwise_rows_s8_get_buffer_size(dw_conv_params, input_dims, filter_dims,
                                                                        output_dims);
    if (rows >= 0 && ctx != NULL && ctx->buf != NULL && ctx->size >= rows)
    {
        return resilinet_nn_depthwise_rows_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                              filter_data, bias_data, output_dims, output_data);
    }
    (void)bias_dims;
    if (dw_conv_params->ch_mult == 1 && dw_conv_params->dilation.w == 1 && dw_conv_params->dilation.h == 1)
    {
        return arm_depthwise_conv_s8_opt(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                         filter_data, bias_dims, bias_data, output_dims, output_data);
    }
    return arm_depthwise_conv_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                 bias_dims, bias_data, output_dims, output_data);
}

/* Buffer sizes as CMSIS-NN defines them (our kernels need none, but a caller sizing for Arm's library
 * must get Arm's numbers). */
int32_t arm_depthwise_conv_s8_opt_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
#if defined(ARM_MATH_DSP) || RESILINET_HAS_DSP
    return input_dims->c * filter_dims->w * filter_dims->h * (int32_t)sizeof(int16_t);
#else
    (void)input_dims;
    (void)filter_dims;
    return 0;
#endif
}

static int32_t dw_uses_opt(const cmsis_nn_dw_conv_params *p,
                           const cmsis_nn_dims *input_dims,
                           const cmsis_nn_dims *output_dims)
{
    return input_dims->c == output_dims->c && input_dims->n == 1 && p->dilation.w == 1 && p->dilation.h == 1;
}

static int32_t dw_is_3x3(const cmsis_nn_dw_conv_params *p, const cmsis_nn_dims *filter_dims)
{
    return filter_dims->w == 3 && filter_dims->h == 3 && p->padding.h <= 1 && p->padding.w <= 1;
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims)
{
    if (!dw_uses_opt(dw_conv_params, input_dims, output_dims) || dw_is_3x3(dw_conv_params, filter_dims))
    {
        return 0;
    }
    return input_dims->c * filter_dims->w * filter_dims->h * (int32_t)sizeof(int16_t);
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_mve(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims)
{
    if (!dw_uses_opt(dw_conv_params, input_dims, output_dims))
    {
        return 0;
    }
    /* 4 * CH_IN_BLOCK_MVE (124) int8 columns of the kernel window. */
    return 4 * 124 * filter_dims->w * filter_dims->h;
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims)
{
    /* Our wrapper runs the row-buffer kernel when it gets this much (more than Arm asks for, like the 1x1
     * convolutions: see the README); both backends use it. */
    const int32_t rows = resilinet_nn_depthwise_rows_s8_get_buffer_size(dw_conv_params, input_dims, filter_dims,
                                                                        output_dims);
    if (rows >= 0)
    {
        return rows;
    }
#if defined(ARM_MATH_DSP) || RESILINET_HAS_DSP
    return arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(dw_conv_params, input_dims, filter_dims, output_dims);
#else
    (void)dw_conv_params;
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
#endif
}

/* The op family's entry point for weights packed at generate time (layout: arm_nnfunctions.h); the kernel is
 * the row-buffer one of resilinet_nn_depthwise_rows_s8.c. */
int32_t resilinet_depthwise_conv_s8_packed_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                           const cmsis_nn_dims *input_dims,
                                                           const cmsis_nn_dims *filter_dims,
                                                           const cmsis_nn_dims *output_dims)
{
    return resilinet_nn_depthwise_rows_s8_packed_get_buffer_size(dw_conv_params, input_dims, filter_dims, output_dims);
}

arm_cmsis_nn_status resilinet_depthwise_conv_s8_packed(const cmsis_nn_context *ctx,
                                                       const cmsis_nn_dw_conv_params *dw_conv_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const int8_t *input_data,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const int32_t *packed,
                                                       const cmsis_nn_dims *output_dims,
                                                       int8_t *output_data)
{
    return resilinet_nn_depthwise_rows_s8_packed(ctx, dw_conv_params, input_dims, input_data, filter_dims, packed,
                                                 output_dims, output_data);
}

#endif /* RESILINET_USE_CMSIS_NN */
