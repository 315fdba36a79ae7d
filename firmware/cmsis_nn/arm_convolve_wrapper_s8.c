/*
 * resilinet-mcu: the int8 convolution wrappers. arm_convolve_wrapper_s8 picks arm_convolve_1x1_s8_fast,
 * arm_convolve_1x1_s8 or arm_convolve_s8 like CMSIS-NN does; its buffer sizes (per backend); and, not CMSIS-NN
 * API, resilinet_convolve_wrapper_s8_s16w, the same convolutions on weights codegen widened to int16 (the
 * kernels: arm_convolve_s8.c, arm_convolve_1x1_s8.c, resilinet_nn_convolve_s8_s16w.c).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* Same dispatch as CMSIS-NN, so a buffer sized with arm_convolve_wrapper_s8_get_buffer_size() fits
 * whichever kernel runs. (CMSIS-NN's 1xN special case shares the generic kernel's buffer size.) */
static int32_t conv_is_1x1(const cmsis_nn_conv_params *p, const cmsis_nn_dims *filter_dims)
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
    if (conv_is_1x1(conv_params, filter_dims))
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
    if (conv_is_1x1(conv_params, filter_dims))
    {
        return resilinet_nn_conv_1x1_buffer_size_dsp(input_dims);
    }
    return arm_convolve_s8_get_buffer_size(input_dims, filter_dims);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims)
{
#if RESILINET_HAS_DSP
    return arm_convolve_wrapper_s8_get_buffer_size_dsp(conv_params, input_dims, filter_dims, output_dims);
#else
    /* Pure C: 1x1 kernels need no buffer (as in CMSIS-NN); the others two int16 im2col columns. */
    (void)output_dims;
    if (conv_is_1x1(conv_params, filter_dims))
    {
        return 0;
    }
    return arm_convolve_s8_get_buffer_size(input_dims, filter_dims);
#endif
}

int32_t arm_convolve_wrapper_s8_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims)
{
    (void)output_dims;
    if (conv_is_1x1(conv_params, filter_dims))
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

/* ------------------------------------------------------------------------------------------------------
 * resilinet_convolve_wrapper_s8_s16w: the same convolutions with the weights widened to int16 by codegen at
 * generate time (layout: resilinet_nn_mat_mult_kernel_s16w in arm_nnsupportfunctions.h). Not CMSIS-NN API:
 * generated modules call it unless built with -DRESILINET_USE_CMSIS_NN (then arm_convolve_wrapper_s8 on the
 * int8 weights). Scratch: arm_convolve_wrapper_s8_get_buffer_size's number.
 * ------------------------------------------------------------------------------------------------------ */

arm_cmsis_nn_status resilinet_convolve_wrapper_s8_s16w(const cmsis_nn_context *ctx,
                                                       const cmsis_nn_conv_params *p,
                                                       const cmsis_nn_per_channel_quant_params *q,
                                                       const cmsis_nn_dims *input_dims,
                                                       const int8_t *input_data,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const int16_t *filter_data,
                                                       const cmsis_nn_dims *bias_dims,
                                                       const int32_t *bias_data,
                                                       const cmsis_nn_dims *output_dims,
                                                       int8_t *output_data)
{
    (void)bias_dims;
    if (filter_dims->c != input_dims->c)
    {
        return ARM_CMSIS_NN_NO_IMPL_ERROR;
    }
    const int32_t is_1x1 = conv_is_1x1(p, filter_dims);
    const int32_t k4 = (filter_dims->h * filter_dims->w * input_dims->c + 3) & ~3;
    /* Two int16 columns (a 1x1 call may come with less: it then reads the input directly). */
    const int32_t has_col = ctx != NULL && ctx->buf != NULL && ((uintptr_t)ctx->buf & 1u) == 0 &&
        ctx->size >= 2 * k4 * (int32_t)sizeof(int16_t);
    if (!is_1x1 && (!has_col || ctx->size < arm_convolve_s8_get_buffer_size(input_dims, filter_dims)))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
#if RESILINET_HAS_DSP
    if (((uintptr_t)filter_data & 3u) == 0)
    {
        if (is_1x1 && resilinet_nn_convolve_1x1_dsp_s8(ctx, p, q, input_dims, input_data, NULL, filter_data, bias_data,
                                                       output_dims, output_data))
        {
            return ARM_CMSIS_NN_SUCCESS;
        }
        if (!is_1x1 && resilinet_nn_convolve_im2col_dsp_s8(ctx, p, q, input_dims, input_data, filter_dims, NULL,
                                                           filter_data, bias_data, output_dims, output_data))
        {
            return ARM_CMSIS_NN_SUCCESS;
        }
    }
#endif
    /* Plain C (and the DSP build's fallbacks). */
    resilinet_nn_convolve_s8_s16w_c(ctx, has_col, p, q, input_dims, input_data, filter_dims, filter_data, bias_data,
                                    output_dims, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
