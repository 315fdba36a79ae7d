/*
 * resilinet-mcu: int8 average and max pooling (TFLM reference_integer_ops::AveragePool / MaxPool).
 *
 * The window is clipped to the input, so padded positions are neither summed nor counted; the average
 * rounds half away from zero. Input and output share scale and zero point (TFLM enforces it).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

static inline int8_t avg_finish(int32_t sum, int32_t count, const cmsis_nn_pool_params *pool_params)
{
    sum = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
    sum = MAX(sum, pool_params->activation.min);
    sum = MIN(sum, pool_params->activation.max);
    return (int8_t)sum;
}

#if RESILINET_HAS_DSP
/* Window sums of four channels at a time in the 16-bit lanes of two words (SXTAB16 adds bytes 0,2 and,
 * rotated, 1,3): exact while at most 256 int8 values are added (|sum| <= 32768 fits, and lane wrap-around
 * of the partial sums cancels), so longer windows are flushed to int32 every 256 positions. */
static void avg_group4(const int8_t *in,
                       int32_t row_step,
                       int32_t col_step,
                       int32_t rows,
                       int32_t cols,
                       int32_t *sum)
{
    uint32_t lo = 0, hi = 0;
    int32_t n = 0;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int32_t r = 0; r < rows; r++)
    {
        const int8_t *src = in + r * row_step;
        for (int32_t k = 0; k < cols; k++)
        {
            const uint32_t v = resilinet_read_u32(src);
            lo = resilinet_sxtab16(lo, v);
            hi = resilinet_sxtab16_ror8(hi, v);
            src += col_step;
            if (++n == 256)
            {
                s0 += (int16_t)lo;
                s2 += (int16_t)(lo >> 16);
                s1 += (int16_t)hi;
                s3 += (int16_t)(hi >> 16);
                lo = hi = 0;
                n = 0;
            }
        }
    }
    sum[0] = s0 + (int16_t)lo;
    sum[1] = s1 + (int16_t)hi;
    sum[2] = s2 + (int16_t)(lo >> 16);
    sum[3] = s3 + (int16_t)(hi >> 16);
}
#endif

arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx,
                                   const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims,
                                   const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int8_t *output_data)
{
    (void)ctx;
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t ch = input_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * in_h * in_w * ch;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t y0 = oy * pool_params->stride.h - pool_params->padding.h;
            const int32_t ky_start = MAX(0, -y0);
            const int32_t ky_end = MIN(filter_dims->h, in_h - y0);
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                const int32_t x0 = ox * pool_params->stride.w - pool_params->padding.w;
                const int32_t kx_start = MAX(0, -x0);
                const int32_t kx_end = MIN(filter_dims->w, in_w - x0);
                const int32_t count = (ky_end - ky_start) * (kx_end - kx_start);
                if (count <= 0)
                {
                    return ARM_CMSIS_NN_ARG_ERROR;
                }
                int8_t *out = output_data + ((b * output_dims->h + oy) * output_dims->w + ox) * ch;
                int32_t c = 0;
#if RESILINET_HAS_DSP
                const int8_t *win = in + ((y0 + ky_start) * in_w + x0 + kx_start) * ch;
                for (; c + 4 <= ch; c += 4)
                {
                    int32_t sums[4];
                    avg_group4(win + c, in_w * ch, ch, ky_end - ky_start, kx_end - kx_start, sums);
                    for (int32_t j = 0; j < 4; j++)
                    {
                        out[c + j] = avg_finish(sums[j], count, pool_params);
                    }
                }
#endif
                for (; c < ch; c++)
                {
                    int32_t sum = 0;
                    for (int32_t ky = ky_start; ky < ky_end; ky++)
                    {
                        const int8_t *row = in + ((y0 + ky) * in_w + x0) * ch + c;
                        for (int32_t kx = kx_start; kx < kx_end; kx++)
                        {
                            sum += row[kx * ch];
                        }
                    }
                    out[c] = avg_finish(sum, count, pool_params);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* CMSIS-NN's DSP variant accumulates a row of C int32 sums; the pure C and MVE variants need nothing. */
int32_t arm_avgpool_s8_get_buffer_size_dsp(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
    return ch_src * (int32_t)sizeof(int32_t);
}

int32_t arm_avgpool_s8_get_buffer_size_mve(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
    (void)ch_src;
    return 0;
}

int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src)
{
#if defined(ARM_MATH_DSP) || RESILINET_HAS_DSP
    return arm_avgpool_s8_get_buffer_size_dsp(dim_dst_width, ch_src);
#else
    (void)dim_dst_width;
    (void)ch_src;
    return 0;
#endif
}

arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data)
{
    (void)ctx;
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t ch = input_dims->c;
#if RESILINET_HAS_DSP
    /* The activation range in every lane (int8 values, so the byte replication is exact). */
    const uint32_t act_lo = 0x01010101u * (uint8_t)(int8_t)MAX(pool_params->activation.min, -128);
    const uint32_t act_hi = 0x01010101u * (uint8_t)(int8_t)MIN(pool_params->activation.max, 127);
#endif
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * in_h * in_w * ch;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t y0 = oy * pool_params->stride.h - pool_params->padding.h;
            const int32_t ky_start = MAX(0, -y0);
            const int32_t ky_end = MIN(filter_dims->h, in_h - y0);
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                const int32_t x0 = ox * pool_params->stride.w - pool_params->padding.w;
                const int32_t kx_start = MAX(0, -x0);
                const int32_t kx_end = MIN(filter_dims->w, in_w - x0);
                int8_t *out = output_data + ((b * output_dims->h + oy) * output_dims->w + ox) * ch;
                int32_t c = 0;
#if RESILINET_HAS_DSP
                /* Four channels per word: SSUB8 + SEL per window position, then the activation clamp. */
                for (; c + 4 <= ch; c += 4)
                {
                    uint32_t m = 0x80808080u;
                    for (int32_t ky = ky_start; ky < ky_end; ky++)
                    {
                        const int8_t *row = in + ((y0 + ky) * in_w + x0) * ch + c;
                        for (int32_t kx = kx_start; kx < kx_end; kx++)
                        {
                            m = resilinet_max_s8x4(m, resilinet_read_u32(row + kx * ch));
                        }
                    }
                    m = resilinet_max_s8x4(m, act_lo);
                    m = resilinet_min_s8x4(m, act_hi);
                    memcpy(out + c, &m, sizeof(m));
                }
#endif
                for (; c < ch; c++)
                {
                    int32_t m = NN_Q7_MIN;
                    for (int32_t ky = ky_start; ky < ky_end; ky++)
                    {
                        const int8_t *row = in + ((y0 + ky) * in_w + x0) * ch + c;
                        for (int32_t kx = kx_start; kx < kx_end; kx++)
                        {
                            m = MAX(m, (int32_t)row[kx * ch]);
                        }
                    }
                    m = MAX(m, pool_params->activation.min);
                    m = MIN(m, pool_params->activation.max);
                    out[c] = (int8_t)m;
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
