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
static void im2col_s8_s16(const int8_t *input,
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
                    col[resilinet_nn_im2col_index(k, n4)] = 0;
                }
            }
            else
            {
                const int8_t *src = input + (iy * in_w + ix) * in_c;
                for (int32_t c = 0; c < in_c; c++, k++)
                {
                    col[resilinet_nn_im2col_index(k, n4)] = (int16_t)((int32_t)src[c] + p->input_offset);
                }
            }
        }
    }
}

static void conv_finish(const int32_t *bias,
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
    *out = resilinet_nn_requantize_clamp(
        acc, q->multiplier[oc], q->shift[oc], p->output_offset, p->activation.min, p->activation.max);
}

/* Our DSP 1x1 kernels take two int16 columns of the input channels (CMSIS-NN's need none); without this
 * buffer they still run, on the slower path that widens the inputs for every output channel pair. */
static int32_t conv_1x1_buffer_size_dsp(const cmsis_nn_dims *input_dims)
{
    return 2 * ((input_dims->c + 3) & ~3) * (int32_t)sizeof(int16_t);
}

#if RESILINET_HAS_DSP
/* Geometry of one convolution, copied into locals once (stores through the may-alias column pointer would
 * otherwise force the compiler to reload every field of the parameter structs). */
typedef struct
{
    int32_t in_h, in_w, in_c, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    int32_t input_offset;
    uint32_t off2;
    int32_t k;
} conv_geom_t;

#define IM2COL_STAGE 256

static int32_t conv_geom(conv_geom_t *g,
                         const cmsis_nn_dims *input_dims,
                         const cmsis_nn_dims *filter_dims,
                         const cmsis_nn_conv_params *p)
{
    g->in_h = input_dims->h;
    g->in_w = input_dims->w;
    g->in_c = input_dims->c;
    g->kh = filter_dims->h;
    g->kw = filter_dims->w;
    g->stride_h = p->stride.h;
    g->stride_w = p->stride.w;
    g->pad_h = p->padding.h;
    g->pad_w = p->padding.w;
    g->dil_h = p->dilation.h;
    g->dil_w = p->dilation.w;
    g->input_offset = p->input_offset;
    g->off2 = resilinet_dup16(p->input_offset);
    g->k = g->kh * g->kw * g->in_c;
    /* Channel counts that are not a multiple of 4 go through an int8 staging copy of the column on the
     * stack, padded with the input zero point (-input_offset), which must be an int8 value. */
    return (g->in_c & 3) == 0 ||
        (g->k <= IM2COL_STAGE - 4 && g->input_offset >= -127 && g->input_offset <= 128);
}

static inline resilinet_u32a *col_zero(resilinet_u32a *dst, int32_t groups, int32_t step)
{
    for (; groups > 0; groups--)
    {
        dst[0] = 0;
        dst[1] = 0;
        dst += step;
    }
    return dst;
}

/* Column words (layout: resilinet_nn_mat_mult_kernel_s8_s16) for output pixel (oy, ox); step = 4 for one column of an
 * interleaved pair, 2 for a single column. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void im2col_body(const int8_t *input,
                               const conv_geom_t *geom,
                               int32_t oy,
                               int32_t ox,
                               resilinet_u32a *dst,
                               const int32_t step)
{
    const conv_geom_t g = *geom;
    const int32_t y0 = oy * g.stride_h - g.pad_h;
    const int32_t x0 = ox * g.stride_w - g.pad_w;
    const int32_t row_in = g.in_w * g.in_c;
    /* The window's columns are all inside the input: each kernel row is one contiguous run of input
     * (when not dilated horizontally). */
    const int32_t x_inside = x0 >= 0 && x0 + (g.kw - 1) * g.dil_w < g.in_w;
    if ((g.in_c & 3) == 0)
    {
        const int32_t cg = g.in_c >> 2;
        for (int32_t ky = 0; ky < g.kh; ky++)
        {
            const int32_t iy = y0 + ky * g.dil_h;
            if (iy < 0 || iy >= g.in_h)
            {
                dst = col_zero(dst, cg * g.kw, step);
                continue;
            }
            const int8_t *src = input + iy * row_in + x0 * g.in_c;
            if (x_inside && g.dil_w == 1)
            {
                dst = resilinet_nn_s8_to_s16_unordered_with_offset(dst, src, g.kw * g.in_c, g.off2, step);
                continue;
            }
            for (int32_t kx = 0; kx < g.kw; kx++)
            {
                const int32_t ix = x0 + kx * g.dil_w;
                if (ix >= 0 && ix < g.in_w)
                {
                    dst = resilinet_nn_s8_to_s16_unordered_with_offset(dst, src + kx * g.dil_w * g.in_c, g.in_c, g.off2,
                                                                       step);
                }
                else
                {
                    dst = col_zero(dst, cg, step);
                }
            }
        }
        return;
    }
    /* Other channel counts: copy the column as int8 (padding with the zero point), then widen. */
    int8_t stage[IM2COL_STAGE];
    const int8_t pad = (int8_t)(-g.input_offset);
    int8_t *q = stage;
    const int32_t run = g.kw * g.in_c;
    for (int32_t ky = 0; ky < g.kh; ky++)
    {
        const int32_t iy = y0 + ky * g.dil_h;
        if (iy < 0 || iy >= g.in_h)
        {
            memset(q, pad, (size_t)run);
            q += run;
            continue;
        }
        const int8_t *src = input + iy * row_in + x0 * g.in_c;
        if (x_inside && g.dil_w == 1)
        {
            int32_t i = 0;
            for (; i + 4 <= run; i += 4)
            {
                const uint32_t v = resilinet_read_u32(src + i);
                memcpy(q + i, &v, sizeof(v));
            }
            for (; i < run; i++)
            {
                q[i] = src[i];
            }
            q += run;
            continue;
        }
        for (int32_t kx = 0; kx < g.kw; kx++)
        {
            const int32_t ix = x0 + kx * g.dil_w;
            const int32_t ok = ix >= 0 && ix < g.in_w;
            const int8_t *s = src + kx * g.dil_w * g.in_c;
            for (int32_t c = 0; c < g.in_c; c++)
            {
                q[c] = ok ? s[c] : pad;
            }
            q += g.in_c;
        }
    }
    for (int32_t i = g.k; i < ((g.k + 3) & ~3); i++)
    {
        stage[i] = pad;
    }
    resilinet_nn_s8_to_s16_unordered_with_offset(dst, stage, (g.k + 3) & ~3, g.off2, step);
}

static void im2col_dsp(const int8_t *input, const conv_geom_t *geom, int32_t oy, int32_t ox, resilinet_u32a *dst,
                       int32_t step)
{
    if (step == 4)
    {
        im2col_body(input, geom, oy, ox, dst, 4);
    }
    else
    {
        im2col_body(input, geom, oy, ox, dst, 2);
    }
}

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

static int32_t buf_ok(const cmsis_nn_context *ctx, int32_t need)
{
    return ctx != NULL && ctx->buf != NULL && ((uintptr_t)ctx->buf & 3u) == 0 && ctx->size >= need;
}

/* Generic convolution on DSP cores: im2col of two output pixels (interleaved int16 columns), then every
 * output channel pair against both (resilinet_nn_mat_mult_kernel_s8_s16). */
static void convolve_dsp(const cmsis_nn_context *ctx,
                         const cmsis_nn_conv_params *p,
                         const cmsis_nn_per_channel_quant_params *q,
                         const cmsis_nn_dims *input_dims,
                         const int8_t *input_data,
                         const cmsis_nn_dims *filter_dims,
                         const int8_t *filter_data,
                         const int16_t *filter_w16,
                         const int32_t *bias_data,
                         const cmsis_nn_dims *output_dims,
                         int8_t *output_data)
{
    const int32_t n = filter_dims->h * filter_dims->w * input_dims->c;
    const resilinet_u32a *const w16 = (const resilinet_u32a *)(const void *)filter_w16;
    const int32_t out_c = output_dims->c;
    const int32_t out_w = output_dims->w;
    const int32_t out_hw = output_dims->h * out_w;
    resilinet_u32a *const cols = (resilinet_u32a *)ctx->buf;
    conv_geom_t geom;
    (void)conv_geom(&geom, input_dims, filter_dims, p);
    resilinet_nn_requant_params rq;
    resilinet_nn_requant_init(&rq, bias_data, q->multiplier, q->shift, 1, out_c, p->output_offset, p->activation.min,
                              p->activation.max, n, p->input_offset);
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * input_dims->h * input_dims->w * input_dims->c;
        int8_t *out = output_data + b * out_hw * out_c;
        int32_t oy = 0, ox = 0;
        int32_t pix = 0;
        for (; pix + 2 <= out_hw; pix += 2)
        {
            im2col_dsp(in, &geom, oy, ox, cols, 4);
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            im2col_dsp(in, &geom, oy, ox, cols + 2, 4);
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            if (w16 != NULL)
            {
                resilinet_nn_mat_mult_kernel_s16w(cols, 1, (n + 3) & ~3, w16, out_c, &rq, out + pix * out_c,
                                                  out + (pix + 1) * out_c);
            }
            else
            {
                resilinet_nn_mat_mult_kernel_s8_s16(cols, 1, n, filter_data, out_c, &rq, out + pix * out_c,
                                                    out + (pix + 1) * out_c);
            }
        }
        if (pix < out_hw)
        {
            im2col_dsp(in, &geom, oy, ox, cols, 2);
            if (w16 != NULL)
            {
                resilinet_nn_mat_mult_kernel_s16w(cols, 0, (n + 3) & ~3, w16, out_c, &rq, out + pix * out_c, NULL);
            }
            else
            {
                resilinet_nn_mat_mult_kernel_s8_s16(cols, 0, n, filter_data, out_c, &rq, out + pix * out_c, NULL);
            }
        }
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
    resilinet_nn_requant_params rq;
    resilinet_nn_requant_init(&rq, bias_data, q->multiplier, q->shift, 1, out_c, p->output_offset, p->activation.min,
                              p->activation.max, in_c, p->input_offset);
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * input_dims->h * input_dims->w * in_c;
        int8_t *out = output_data + b * out_hw * out_c;
        int32_t pix = 0;
        int32_t oy = 0, ox = 0;
        const int8_t *x[2];
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
            col_pixel_dsp(x[0], in_c, p->input_offset, cols, two ? 4 : 2);
            if (two)
            {
                col_pixel_dsp(x[1], in_c, p->input_offset, cols + 2, 4);
            }
            int8_t *const out1 = two ? out + (pix + 1) * out_c : NULL;
            if (w16 != NULL)
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
#endif /* RESILINET_HAS_DSP */

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

#if RESILINET_HAS_DSP
    conv_geom_t geom;
    if (((uintptr_t)ctx->buf & 3u) == 0 && conv_geom(&geom, input_dims, filter_dims, conv_params))
    {
        convolve_dsp(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, NULL,
                     bias_data, output_dims, output_data);
        return ARM_CMSIS_NN_SUCCESS;
    }
#endif
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
            im2col_s8_s16(in, input_dims, filter_dims, conv_params, pix / output_dims->w,
                          pix % output_dims->w, col0);
            im2col_s8_s16(in, input_dims, filter_dims, conv_params, (pix + 1) / output_dims->w,
                          (pix + 1) % output_dims->w, col1);
            for (int32_t oc = 0; oc < out_c; oc++)
            {
                int32_t a0;
                int32_t a1;
                resilinet_nn_dot_2x_s8_s16(col0, col1, filter_data + oc * n, n, &a0, &a1);
                conv_finish(bias_data, quant_params, conv_params, oc, a0, out + pix * out_c + oc);
                conv_finish(bias_data, quant_params, conv_params, oc, a1, out + (pix + 1) * out_c + oc);
            }
        }
        if (pix < out_hw)
        {
            im2col_s8_s16(in, input_dims, filter_dims, conv_params, pix / output_dims->w,
                          pix % output_dims->w, col0);
            for (int32_t oc = 0; oc < out_c; oc++)
            {
                const int32_t acc = resilinet_nn_dot_s8_s16(col0, filter_data + oc * n, n);
                conv_finish(bias_data, quant_params, conv_params, oc, acc, out + pix * out_c + oc);
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

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
    if (buf_ok(ctx, conv_1x1_buffer_size_dsp(input_dims)))
    {
        convolve_1x1_dsp(ctx, p, q, input_dims, input_data, filter_data, NULL, bias_data, output_dims, output_data);
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
                    conv_finish(bias_data, q, p, oc, a0, out + oc);
                    conv_finish(bias_data, q, p, oc + 1, a1, out + oc + 1);
                }
                if (oc < out_c)
                {
                    const int32_t acc = resilinet_nn_dot_s8(x, filter_data + oc * in_c, in_c, p->input_offset);
                    conv_finish(bias_data, q, p, oc, acc, out + oc);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_convolve_1x1_s8_fast_get_buffer_size(const cmsis_nn_dims *input_dims)
{
#if RESILINET_HAS_DSP
    return conv_1x1_buffer_size_dsp(input_dims);
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
        return conv_1x1_buffer_size_dsp(input_dims);
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
        conv_finish(bias, q, p, oc, a00, out0 + oc);
        conv_finish(bias, q, p, oc + 1, a10, out0 + oc + 1);
        if (out1 != NULL)
        {
            conv_finish(bias, q, p, oc, a01, out1 + oc);
            conv_finish(bias, q, p, oc + 1, a11, out1 + oc + 1);
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
        conv_finish(bias, q, p, oc, a0, out0 + oc);
        if (out1 != NULL)
        {
            conv_finish(bias, q, p, oc, a1, out1 + oc);
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
        conv_finish(bias, q, p, oc, acc, out + oc);
    }
}

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
        if (is_1x1 && buf_ok(ctx, conv_1x1_buffer_size_dsp(input_dims)))
        {
            convolve_1x1_dsp(ctx, p, q, input_dims, input_data, NULL, filter_data, bias_data, output_dims,
                             output_data);
            return ARM_CMSIS_NN_SUCCESS;
        }
        conv_geom_t geom;
        if (!is_1x1 && ((uintptr_t)ctx->buf & 3u) == 0 && conv_geom(&geom, input_dims, filter_dims, p))
        {
            convolve_dsp(ctx, p, q, input_dims, input_data, filter_dims, NULL, filter_data, bias_data, output_dims,
                         output_data);
            return ARM_CMSIS_NN_SUCCESS;
        }
    }
#endif
    /* Plain C (and the DSP build's fallbacks): output pixels in raster order, two at a time when there are
     * columns for them. */
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
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
