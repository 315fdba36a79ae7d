/*
 * resilinet-mcu: the plain C path of resilinet_convolve_wrapper_s8_s16w (arm_convolve_wrapper_s8.c), on the int16
 * weights codegen prepared (layout: resilinet_nn_mat_mult_kernel_s16w in arm_nnsupportfunctions.h), and the
 * DSP build's fallback when the DSP kernels cannot take a call. Not CMSIS-NN API.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnsupportfunctions.h"

/* Lane of entry r (0..3) of a group in the s16w layout: [e0|e2] [e1|e3]. */
static inline int32_t w16_lane(int32_t r)
{
    return r == 1 ? 2 : (r == 2 ? 1 : r);
}

/* int16 column (x + input_offset; 0 for padding) of output pixel (oy, ox) in the weights' lane order (entry k at
 * (k & ~3) + w16_lane(k & 3)), zero-padded to k4. */
static void im2col_lanes_s16(const int8_t *input,
                             const cmsis_nn_dims *input_dims,
                             const cmsis_nn_dims *filter_dims,
                             const cmsis_nn_conv_params *p,
                             int32_t oy,
                             int32_t ox,
                             int32_t k4,
                             int16_t *col)
{
    const int32_t in_c = input_dims->c;
    int32_t k = 0;
    for (int32_t ky = 0; ky < filter_dims->h; ky++)
    {
        const int32_t iy = oy * p->stride.h - p->padding.h + ky * p->dilation.h;
        for (int32_t kx = 0; kx < filter_dims->w; kx++)
        {
            const int32_t ix = ox * p->stride.w - p->padding.w + kx * p->dilation.w;
            const int32_t ok = iy >= 0 && iy < input_dims->h && ix >= 0 && ix < input_dims->w;
            const int8_t *src = input + (iy * input_dims->w + ix) * in_c;
            for (int32_t c = 0; c < in_c; c++, k++)
            {
                col[(k & ~3) + w16_lane(k & 3)] = ok ? (int16_t)((int32_t)src[c] + p->input_offset) : 0;
            }
        }
    }
    for (; k < k4; k++)
    {
        col[(k & ~3) + w16_lane(k & 3)] = 0;
    }
}

/* Two columns (lane order) against every output channel of the s16w weights, requantized into out0 and out1
 * (out1 NULL: col1 is ignored). Each weight is loaded once for both columns. */
static void w16_columns_c(const int16_t *col0,
                          const int16_t *col1,
                          int32_t k4,
                          const int16_t *w,
                          const int32_t *bias,
                          const cmsis_nn_per_channel_quant_params *q,
                          const cmsis_nn_conv_params *p,
                          int32_t out_c,
                          int8_t *out0,
                          int8_t *out1)
{
    const int16_t *c1 = out1 != NULL ? col1 : col0;
    int32_t oc = 0;
    for (; oc + 2 <= out_c; oc += 2)
    {
        int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
        const int16_t *x0 = col0, *x1 = c1;
        for (int32_t g = k4 >> 2; g > 0; g--)
        {
            /* Entries of the group: channel oc at w[0..3], channel oc + 1 at w[4..7] (same lane order); written
             * out, as GCC does not unroll it. */
            int32_t u = x0[0], v = x1[0], w0 = w[0], w1 = w[4];
            a00 += u * w0;
            a01 += v * w0;
            a10 += u * w1;
            a11 += v * w1;
            u = x0[1], v = x1[1], w0 = w[1], w1 = w[5];
            a00 += u * w0;
            a01 += v * w0;
            a10 += u * w1;
            a11 += v * w1;
            u = x0[2], v = x1[2], w0 = w[2], w1 = w[6];
            a00 += u * w0;
            a01 += v * w0;
            a10 += u * w1;
            a11 += v * w1;
            u = x0[3], v = x1[3], w0 = w[3], w1 = w[7];
            a00 += u * w0;
            a01 += v * w0;
            a10 += u * w1;
            a11 += v * w1;
            x0 += 4;
            x1 += 4;
            w += 8;
        }
        resilinet_nn_conv_finish(bias, q, p, oc, a00, out0 + oc);
        resilinet_nn_conv_finish(bias, q, p, oc + 1, a10, out0 + oc + 1);
        if (out1 != NULL)
        {
            resilinet_nn_conv_finish(bias, q, p, oc, a01, out1 + oc);
            resilinet_nn_conv_finish(bias, q, p, oc + 1, a11, out1 + oc + 1);
        }
    }
    if (oc < out_c)
    {
        int32_t a0 = 0, a1 = 0;
        for (int32_t i = 0; i < k4; i++)
        {
            a0 += col0[i] * w[i];
            a1 += c1[i] * w[i];
        }
        resilinet_nn_conv_finish(bias, q, p, oc, a0, out0 + oc);
        if (out1 != NULL)
        {
            resilinet_nn_conv_finish(bias, q, p, oc, a1, out1 + oc);
        }
    }
}

/* 1x1 without a buffer: every product read through the layout (slow; only when no scratch is given). */
static void w16_pixel_direct_c(const int8_t *x,
                               int32_t in_c,
                               const int16_t *w,
                               const int32_t *bias,
                               const cmsis_nn_per_channel_quant_params *q,
                               const cmsis_nn_conv_params *p,
                               int32_t out_c,
                               int8_t *out)
{
    const int32_t k4 = (in_c + 3) & ~3;
    for (int32_t oc = 0; oc < out_c; oc++)
    {
        const int32_t width = (oc | 1) < out_c ? 8 : 4;
        const int16_t *row = w + (oc >> 1) * 2 * k4 + (oc & 1) * 4;
        int32_t acc = 0;
        for (int32_t c = 0; c < in_c; c++)
        {
            acc += ((int32_t)x[c] + p->input_offset) * row[(c >> 2) * width + w16_lane(c & 3)];
        }
        resilinet_nn_conv_finish(bias, q, p, oc, acc, out + oc);
    }
}

void resilinet_nn_convolve_s8_s16w_c(const cmsis_nn_context *ctx,
                                     int32_t has_col,
                                     const cmsis_nn_conv_params *p,
                                     const cmsis_nn_per_channel_quant_params *q,
                                     const cmsis_nn_dims *input_dims,
                                     const int8_t *input_data,
                                     const cmsis_nn_dims *filter_dims,
                                     const int16_t *filter_data,
                                     const int32_t *bias_data,
                                     const cmsis_nn_dims *output_dims,
                                     int8_t *output_data)
{
    const int32_t k4 = (filter_dims->h * filter_dims->w * input_dims->c + 3) & ~3;
    /* Output pixels in raster order, two at a time when there are columns for them. */
    const int32_t out_c = output_dims->c;
    const int32_t out_w = output_dims->w;
    const int32_t out_hw = output_dims->h * out_w;
    const int32_t in_size = input_dims->h * input_dims->w * input_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * in_size;
        int8_t *out = output_data + b * out_hw * out_c;
        for (int32_t pix = 0; pix < out_hw;)
        {
            const int32_t oy = pix / out_w, ox = pix % out_w;
            if (has_col)
            {
                int16_t *const col0 = (int16_t *)ctx->buf;
                int16_t *const col1 = col0 + k4;
                const int32_t two = pix + 1 < out_hw;
                im2col_lanes_s16(in, input_dims, filter_dims, p, oy, ox, k4, col0);
                if (two)
                {
                    im2col_lanes_s16(in, input_dims, filter_dims, p, (pix + 1) / out_w, (pix + 1) % out_w, k4, col1);
                }
                w16_columns_c(col0, col1, k4, filter_data, bias_data, q, p, out_c, out + pix * out_c,
                              two ? out + (pix + 1) * out_c : NULL);
                pix += 1 + two;
            }
            else
            {
                const int8_t *x = in + (oy * p->stride.h * input_dims->w + ox * p->stride.w) * input_dims->c;
                w16_pixel_direct_c(x, input_dims->c, filter_data, bias_data, q, p, out_c, out + pix * out_c);
                pix++;
            }
        }
    }
}

#endif /* RESILINET_USE_CMSIS_NN */
