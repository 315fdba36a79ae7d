/*
 * resilinet-mcu: int8 depthwise convolutions (TFLM reference_integer_ops::DepthwiseConvPerChannel).
 *
 * Output channel oc = ic * ch_mult + m reads input channel ic; filter layout [1, KH, KW, C_OUT].
 * Positions outside the input are skipped (zero-point padding). None of these kernels needs scratch.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

static inline int8_t rnn_dw_finish(const int32_t *bias,
                                   const cmsis_nn_per_channel_quant_params *q,
                                   const cmsis_nn_dw_conv_params *p,
                                   int32_t oc,
                                   int32_t acc)
{
    if (bias != NULL)
    {
        acc += bias[oc];
    }
    return rnn_requantize_clamp(acc, q->multiplier[oc], q->shift[oc], p->output_offset, p->activation.min,
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
                        out[oc] = rnn_dw_finish(bias_data, quant_params, p, oc, acc);
                    }
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* Channel multiplier 1. On DSP cores four channels are processed together and two kernel positions are
 * paired per SMLAD: lanes [p_c, q_c] of inputs times lanes [wp_c, wq_c] of weights. */
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
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t c_n = input_dims->c;
    if (p->ch_mult != 1 || output_dims->c != c_n || p->dilation.w != 1 || p->dilation.h != 1)
    {
        return arm_depthwise_conv_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                     filter_data, bias_dims, bias_data, output_dims, output_data);
    }
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * in_h * in_w * c_n;
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
                int8_t *out = output_data + ((b * output_dims->h + oy) * output_dims->w + ox) * c_n;
                int32_t c = 0;
#if RNN_HAS_DSP
                const uint32_t off2 = rnn_dup16(p->input_offset);
                for (; c + 4 <= c_n; c += 4)
                {
                    int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
                    /* Walk the valid window positions, consuming them two at a time. */
                    int32_t have_pending = 0;
                    uint32_t pi02 = 0, pi13 = 0, pw02 = 0, pw13 = 0;
                    for (int32_t ky = ky_start; ky < ky_end; ky++)
                    {
                        for (int32_t kx = kx_start; kx < kx_end; kx++)
                        {
                            const uint32_t iv = rnn_read_u32(in + ((y0 + ky) * in_w + (x0 + kx)) * c_n + c);
                            const uint32_t wv = rnn_read_u32(filter_data + (ky * kw + kx) * c_n + c);
                            const uint32_t i02 = rnn_sxtab16(off2, iv);
                            const uint32_t i13 = rnn_sxtab16(off2, rnn_ror(iv, 8));
                            const uint32_t w02 = rnn_sxtb16(wv);
                            const uint32_t w13 = rnn_sxtb16(rnn_ror(wv, 8));
                            if (!have_pending)
                            {
                                pi02 = i02;
                                pi13 = i13;
                                pw02 = w02;
                                pw13 = w13;
                                have_pending = 1;
                                continue;
                            }
                            acc0 = rnn_smlad(rnn_pkhbt16(pi02, i02), rnn_pkhbt16(pw02, w02), acc0);
                            acc2 = rnn_smlad(rnn_pkhtb16(i02, pi02), rnn_pkhtb16(w02, pw02), acc2);
                            acc1 = rnn_smlad(rnn_pkhbt16(pi13, i13), rnn_pkhbt16(pw13, w13), acc1);
                            acc3 = rnn_smlad(rnn_pkhtb16(i13, pi13), rnn_pkhtb16(w13, pw13), acc3);
                            have_pending = 0;
                        }
                    }
                    if (have_pending)
                    {
                        acc0 = rnn_smlabb(pi02, pw02, acc0);
                        acc2 = rnn_smlatt(pi02, pw02, acc2);
                        acc1 = rnn_smlabb(pi13, pw13, acc1);
                        acc3 = rnn_smlatt(pi13, pw13, acc3);
                    }
                    out[c] = rnn_dw_finish(bias_data, quant_params, p, c, acc0);
                    out[c + 1] = rnn_dw_finish(bias_data, quant_params, p, c + 1, acc1);
                    out[c + 2] = rnn_dw_finish(bias_data, quant_params, p, c + 2, acc2);
                    out[c + 3] = rnn_dw_finish(bias_data, quant_params, p, c + 3, acc3);
                }
#endif
                for (; c < c_n; c++)
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
                    out[c] = rnn_dw_finish(bias_data, quant_params, p, c, acc);
                }
            }
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
#if defined(ARM_MATH_DSP) || RNN_HAS_DSP
    return input_dims->c * filter_dims->w * filter_dims->h * (int32_t)sizeof(int16_t);
#else
    (void)input_dims;
    (void)filter_dims;
    return 0;
#endif
}

static int32_t rnn_dw_uses_opt(const cmsis_nn_dw_conv_params *p,
                               const cmsis_nn_dims *input_dims,
                               const cmsis_nn_dims *output_dims)
{
    return input_dims->c == output_dims->c && input_dims->n == 1 && p->dilation.w == 1 && p->dilation.h == 1;
}

static int32_t rnn_dw_is_3x3(const cmsis_nn_dw_conv_params *p, const cmsis_nn_dims *filter_dims)
{
    return filter_dims->w == 3 && filter_dims->h == 3 && p->padding.h <= 1 && p->padding.w <= 1;
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims)
{
    if (!rnn_dw_uses_opt(dw_conv_params, input_dims, output_dims) || rnn_dw_is_3x3(dw_conv_params, filter_dims))
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
    if (!rnn_dw_uses_opt(dw_conv_params, input_dims, output_dims))
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
#if defined(ARM_MATH_DSP) || RNN_HAS_DSP
    return arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(dw_conv_params, input_dims, filter_dims, output_dims);
#else
    (void)dw_conv_params;
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
#endif
}

#endif /* RESILINET_USE_CMSIS_NN */
