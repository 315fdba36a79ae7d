/*
 * resilinet-mcu: 16x8 average and max pooling (TFLM reference_integer_ops::AveragePool / MaxPool for int16).
 *
 * The window is clipped to the input: padded positions are neither summed nor counted; the average
 * rounds half away from zero; the activation clamp follows. Input and output share their quantization.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* Window of output (oy, ox) clipped to the input: rows [*y0, *y1), columns [*x0, *x1). */
static void window(const cmsis_nn_pool_params *p,
                   const cmsis_nn_dims *in,
                   const cmsis_nn_dims *k,
                   int32_t oy,
                   int32_t ox,
                   int32_t *y0,
                   int32_t *y1,
                   int32_t *x0,
                   int32_t *x1)
{
    const int32_t ys = oy * p->stride.h - p->padding.h;
    const int32_t xs = ox * p->stride.w - p->padding.w;
    *y0 = MAX(ys, 0);
    *y1 = MIN(ys + k->h, in->h);
    *x0 = MAX(xs, 0);
    *x1 = MIN(xs + k->w, in->w);
}

arm_cmsis_nn_status arm_avgpool_s16(const cmsis_nn_context *ctx,
                                    const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int16_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int16_t *output_data)
{
    (void)ctx;
    const int32_t ch = input_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int16_t *in = input_data + b * input_dims->h * input_dims->w * ch;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                int32_t y0, y1, x0, x1;
                window(pool_params, input_dims, filter_dims, oy, ox, &y0, &y1, &x0, &x1);
                const int32_t count = (y1 - y0) * (x1 - x0);
                if (count <= 0)
                {
                    return ARM_CMSIS_NN_ARG_ERROR; /* TFLM fails the op too */
                }
                int16_t *out = output_data + ((b * output_dims->h + oy) * output_dims->w + ox) * ch;
                for (int32_t c = 0; c < ch; c++)
                {
                    int32_t sum = 0; /* at most 2^15 * window: exact for windows below 2^16 positions */
                    for (int32_t y = y0; y < y1; y++)
                    {
                        for (int32_t x = x0; x < x1; x++)
                        {
                            sum += in[(y * input_dims->w + x) * ch + c];
                        }
                    }
                    sum = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    sum = MAX(sum, pool_params->activation.min);
                    sum = MIN(sum, pool_params->activation.max);
                    out[c] = (int16_t)sum;
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_avgpool_s16_get_buffer_size(const int output_x, const int ch_src)
{
    (void)output_x;
    (void)ch_src;
    return 0;
}

arm_cmsis_nn_status arm_max_pool_s16(const cmsis_nn_context *ctx,
                                     const cmsis_nn_pool_params *pool_params,
                                     const cmsis_nn_dims *input_dims,
                                     const int16_t *src,
                                     const cmsis_nn_dims *filter_dims,
                                     const cmsis_nn_dims *output_dims,
                                     int16_t *dst)
{
    (void)ctx;
    const int32_t ch = input_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int16_t *in = src + b * input_dims->h * input_dims->w * ch;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                int32_t y0, y1, x0, x1;
                window(pool_params, input_dims, filter_dims, oy, ox, &y0, &y1, &x0, &x1);
                int16_t *out = dst + ((b * output_dims->h + oy) * output_dims->w + ox) * ch;
                for (int32_t c = 0; c < ch; c++)
                {
                    int32_t m = -32768;
                    for (int32_t y = y0; y < y1; y++)
                    {
                        for (int32_t x = x0; x < x1; x++)
                        {
                            m = MAX(m, in[(y * input_dims->w + x) * ch + c]);
                        }
                    }
                    m = MAX(m, pool_params->activation.min);
                    m = MIN(m, pool_params->activation.max);
                    out[c] = (int16_t)m;
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
