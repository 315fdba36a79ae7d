/*
 * resilinet-mcu: int8 convolution, the generic im2col path (TFLM reference_integer_ops::ConvPerChannel
 * semantics): arm_convolve_s8 and its buffer size, and the DSP kernel behind it that the other entry points
 * share (resilinet_nn_convolve_im2col_dsp_s8; the 1x1 paths: arm_convolve_1x1_s8.c, the wrappers:
 * arm_convolve_wrapper_s8.c).
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

/* GCC turns byte-copy loops into calls of newlib's memcpy/memset, which take several times the instructions of
 * a loop for the 3..40-byte runs of the int8 staging below; an empty asm on the copied value keeps them loops. */
#if defined(__GNUC__)
#define STAGE_OPAQUE(v) __asm__("" : "+r"(v))
#else
#define STAGE_OPAQUE(v) ((void)0)
#endif

/* n int8 values from src to q (either unaligned): whole words, the last one overlapping the one before when n is
 * not a multiple of 4 (same bytes written twice; nothing read or written outside the n), bytes only when n < 4. */
static inline void stage_copy(int8_t *q, const int8_t *src, int32_t n)
{
    if (n < 4)
    {
        for (int32_t i = 0; i < n; i++)
        {
            int32_t v = src[i];
            STAGE_OPAQUE(v);
            q[i] = (int8_t)v;
        }
        return;
    }
    for (int32_t i = 0; i + 4 < n; i += 4)
    {
        uint32_t v = resilinet_read_u32(src + i);
        STAGE_OPAQUE(v);
        memcpy(q + i, &v, sizeof(v));
    }
    uint32_t v = resilinet_read_u32(src + n - 4);
    STAGE_OPAQUE(v);
    memcpy(q + n - 4, &v, sizeof(v));
}

/* Entries k..align4(k) - 1 of a staged column (at most 3) = pad. */
static inline void stage_pad(int8_t *stage, int32_t k, int8_t pad)
{
    const int32_t tail = ((k + 3) & ~3) - k;
    if (tail > 0)
    {
        stage[k] = pad;
    }
    if (tail > 1)
    {
        stage[k + 1] = pad;
    }
    if (tail > 2)
    {
        stage[k + 2] = pad;
    }
}

static inline resilinet_u32a *col_zero(resilinet_u32a *dst, int32_t groups, int32_t step)
{
    for (; groups > 0; groups--)
    {
        dst[0] = 0;
        dst[resilinet_nn_col_hi(step)] = 0;
        dst += step;
    }
    return dst;
}

/* Column words (layout: resilinet_nn_mat_mult_kernel_s8_s16) for output pixel (oy, ox); step = 4 for one column of an
 * interleaved pair, 8 of a four-column block (resilinet_nn_mat_mult_kernel_s16w_x4), 2 for a single column. */
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
            stage_copy(q, src, run);
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
    stage_pad(stage, g.k, pad);
    resilinet_nn_s8_to_s16_unordered_with_offset(dst, stage, (g.k + 3) & ~3, g.off2, step);
}

static void im2col_dsp(const int8_t *input, const conv_geom_t *geom, int32_t oy, int32_t ox, resilinet_u32a *dst,
                       int32_t step)
{
    if (step == 4)
    {
        im2col_body(input, geom, oy, ox, dst, 4);
    }
    else if (step == 8)
    {
        im2col_body(input, geom, oy, ox, dst, 8);
    }
    else
    {
        im2col_body(input, geom, oy, ox, dst, 2);
    }
}

/* im2col_pair_inside for C_in % 4 != 0: the kernel rows of both windows (runs of run bytes at a and b, rows step
 * bytes apart) copied as int8 into two stack columns padded with the zero point to a multiple of 4 (conv_geom: at
 * most IM2COL_STAGE - 4 entries), then widened together. Not inlined: its 512 bytes of stack stay out of the
 * caller's frame while the matrix kernel runs. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void im2col_pair_staged(const int8_t *a,
                               const int8_t *b,
                               const conv_geom_t *g,
                               int32_t run,
                               int32_t step,
                               resilinet_u32a *dst,
                               int32_t gstep)
{
    int8_t sa[IM2COL_STAGE], sb[IM2COL_STAGE];
    int8_t *qa = sa, *qb = sb;
    for (int32_t ky = g->kh; ky > 0; ky--)
    {
        stage_copy(qa, a, run);
        stage_copy(qb, b, run);
        qa += run;
        qb += run;
        a += step;
        b += step;
    }
    stage_pad(sa, g->k, (int8_t)(-g->input_offset));
    stage_pad(sb, g->k, (int8_t)(-g->input_offset));
    /* a constant group step, so that the widening's store offsets are immediates */
    if (gstep == 8)
    {
        (void)resilinet_nn_s8_to_s16_pair_with_offset(dst, sa, sb, (g->k + 3) & ~3, g->off2, 8);
    }
    else
    {
        (void)resilinet_nn_s8_to_s16_pair_with_offset(dst, sa, sb, (g->k + 3) & ~3, g->off2, 4);
    }
}

/* Both columns of a pixel pair (interleaved, as im2col_dsp with step gstep = 4 or 8 writes them) when both windows lie inside
 * the input and there is no horizontal dilation: every kernel row of a window is then one contiguous run, and one
 * loop widens the two columns' runs together (C_in % 4 != 0: through int8 copies, im2col_pair_staged). im2col_dsp
 * costs ~70 instructions of set-up and ~50 per kernel row per column. Returns 0, writing nothing, for any other
 * pair. */
static int32_t im2col_pair_inside(const int8_t *input,
                                  const conv_geom_t *g,
                                  int32_t oy0,
                                  int32_t ox0,
                                  int32_t oy1,
                                  int32_t ox1,
                                  resilinet_u32a *dst,
                                  int32_t gstep)
{
    const int32_t y0 = oy0 * g->stride_h - g->pad_h, x0 = ox0 * g->stride_w - g->pad_w;
    const int32_t y1 = oy1 * g->stride_h - g->pad_h, x1 = ox1 * g->stride_w - g->pad_w;
    const int32_t span_y = (g->kh - 1) * g->dil_h, span_x = g->kw - 1;
    if (g->dil_w != 1 || MIN(MIN(y0, y1), MIN(x0, x1)) < 0 || MAX(y0, y1) + span_y >= g->in_h ||
        MAX(x0, x1) + span_x >= g->in_w)
    {
        return 0;
    }
    const int32_t row_in = g->in_w * g->in_c;
    const int32_t run = g->kw * g->in_c;
    const int32_t step = g->dil_h * row_in;
    const int8_t *a = input + y0 * row_in + x0 * g->in_c;
    const int8_t *b = input + y1 * row_in + x1 * g->in_c;
    if (g->in_c & 3)
    {
        im2col_pair_staged(a, b, g, run, step, dst, gstep);
        return 1;
    }
    for (int32_t ky = g->kh; ky > 0; ky--)
    {
        dst = gstep == 8 ? resilinet_nn_s8_to_s16_pair_with_offset(dst, a, b, run, g->off2, 8)
                         : resilinet_nn_s8_to_s16_pair_with_offset(dst, a, b, run, g->off2, 4);
        a += step;
        b += step;
    }
    return 1;
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
    /* Bias and requantization of every channel pair in one table (resilinet_nn_requant_pack). */
    int32_t packed[RESILINET_NN_REQUANT_PACK_WORDS];
    const int32_t use_packed =
        w16 != NULL && resilinet_nn_requant_pack(&rq, out_c, packed, RESILINET_NN_REQUANT_PACK_WORDS);
    /* Four pixels at a time when the scratch holds four columns (codegen plans them for the DSP build). */
    const int32_t x4 = w16 != NULL && rq.fast && rq.full_range && rq.q_stride == 1 && out_c >= 2 &&
        ctx->size >= 4 * ((n + 3) & ~3) * (int32_t)sizeof(int16_t);
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * input_dims->h * input_dims->w * input_dims->c;
        int8_t *out = output_data + b * out_hw * out_c;
        int32_t oy = 0, ox = 0;
        int32_t pix = 0;
        for (; x4 && pix + 4 <= out_hw; pix += 4)
        {
            int32_t py[4], px[4];
            for (int32_t j = 0; j < 4; j++)
            {
                py[j] = oy;
                px[j] = ox;
                if (++ox == out_w)
                {
                    ox = 0;
                    oy++;
                }
            }
            for (int32_t j = 0; j < 4; j += 2)
            {
                if (!im2col_pair_inside(in, &geom, py[j], px[j], py[j + 1], px[j + 1], cols + j, 8))
                {
                    im2col_dsp(in, &geom, py[j], px[j], cols + j, 8);
                    im2col_dsp(in, &geom, py[j + 1], px[j + 1], cols + j + 1, 8);
                }
            }
            resilinet_nn_mat_mult_kernel_s16w_x4(cols, (n + 3) & ~3, w16, out_c, &rq, packed, use_packed,
                                                 out + pix * out_c);
        }
        for (; pix + 2 <= out_hw; pix += 2)
        {
            const int32_t oy0 = oy, ox0 = ox;
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            if (!im2col_pair_inside(in, &geom, oy0, ox0, oy, ox, cols, 4))
            {
                im2col_dsp(in, &geom, oy0, ox0, cols, 4);
                im2col_dsp(in, &geom, oy, ox, cols + 2, 4);
            }
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            if (use_packed)
            {
                resilinet_nn_mat_mult_kernel_s16w_packed(cols, (n + 3) & ~3, w16, out_c, &rq, packed,
                                                         out + pix * out_c, out + (pix + 1) * out_c);
            }
            else if (w16 != NULL)
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

int32_t resilinet_nn_convolve_im2col_dsp_s8(const cmsis_nn_context *ctx,
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
    conv_geom_t geom;
    if (((uintptr_t)ctx->buf & 3u) != 0 || !conv_geom(&geom, input_dims, filter_dims, p))
    {
        return 0;
    }
    convolve_dsp(ctx, p, q, input_dims, input_data, filter_dims, filter_data, filter_w16, bias_data, output_dims,
                 output_data);
    return 1;
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
    if (resilinet_nn_convolve_im2col_dsp_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims,
                                            filter_data, NULL, bias_data, output_dims, output_data))
    {
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
                resilinet_nn_conv_finish(bias_data, quant_params, conv_params, oc, a0, out + pix * out_c + oc);
                resilinet_nn_conv_finish(bias_data, quant_params, conv_params, oc, a1, out + (pix + 1) * out_c + oc);
            }
        }
        if (pix < out_hw)
        {
            im2col_s8_s16(in, input_dims, filter_dims, conv_params, pix / output_dims->w,
                          pix % output_dims->w, col0);
            for (int32_t oc = 0; oc < out_c; oc++)
            {
                const int32_t acc = resilinet_nn_dot_s8_s16(col0, filter_data + oc * n, n);
                resilinet_nn_conv_finish(bias_data, quant_params, conv_params, oc, acc, out + pix * out_c + oc);
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
