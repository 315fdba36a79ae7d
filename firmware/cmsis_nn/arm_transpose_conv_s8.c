/*
 * resilinet-mcu: int8 transpose convolution (TFLM reference_integer_ops::TransposeConv semantics).
 *
 * TFLM scatters: every input pixel (iy, ix) adds (in + input_offset) * w[oc][ky][kx] into an int32 copy of
 * the whole output at (iy * stride_h - pad_h + ky, ix * stride_w - pad_w + kx), then each output gets its
 * bias, the per-channel requantization, the output offset and the clamp. We scatter the same products
 * into a rolling buffer of MAX(KH, stride_h) rows of the unpadded ("full") output instead, as Arm's
 * arm_transpose_conv_s8 does (same ctx size): once input row iy is done, full rows below
 * (iy + 1) * stride_h receive nothing more, so they are requantized (cropping the padding) and their
 * buffer rows cleared for reuse. Integer sums of the same terms are exact in any order, so the bytes are
 * TFLM's. Outputs no input reaches (output_padding, kernels smaller than the stride) get the bias alone,
 * as in TFLM.
 *
 * Per input pixel the filter is a matrix of C_out * KH * KW rows of C_in: the pixel is widened once
 * (DSP: to 16-bit pairs with the offset added, the lane order of SXTB16) and each row costs one LDR,
 * two SXTB16 and two SMLAD per four channels, two rows sharing the widened input.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* Arm's wrapper turns the op into a reverse convolution above this many input channels (stride <= 2). */
#define TCONV_REVERSE_MIN_IN_CH 16
/* Input channels widened at a time: the stack copy of one pixel is at most 256 bytes. */
#define TCONV_CHUNK 64

/* The op's shape, and where the rolling buffer's rows are. */
typedef struct
{
    const int8_t *filter; /* [C_out, KH, KW, C_in] */
    int32_t k_h;
    int32_t k_w;
    int32_t in_c;
    int32_t out_c;
    int32_t filter_size; /* KH * KW * C_in: from one output channel's filter to the next */
    int32_t input_offset;
    int32_t full_w;    /* (W_in - 1) * stride_w + MAX(KW, stride_w) */
    int32_t row_elems; /* full_w * C_out int32 per buffer row */
    int32_t rows;      /* MAX(KH, stride_h) buffer rows */
    int32_t *buf;
} tconv_geom;

#if RESILINET_HAS_DSP
/* acc[0] += w0 . x, acc[1] += w1 . x over n channels (x widened: xw pairs for the first n & ~3, xt the rest). */
static inline void tconv_dot2(const resilinet_u32a *xw, const int32_t *xt, int32_t n, const int8_t *w0,
                              const int8_t *w1, int32_t *acc)
{
    const int32_t n4 = n & ~3;
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    for (int32_t c = 0; c < n4; c += 4, xw += 2)
    {
        const uint32_t x02 = xw[0];
        const uint32_t x13 = xw[1];
        const uint32_t v0 = resilinet_read_u32(w0 + c);
        const uint32_t v1 = resilinet_read_u32(w1 + c);
        a0 = resilinet_smlad(x02, resilinet_sxtb16(v0), a0);
        a0 = resilinet_smlad(x13, resilinet_sxtb16_ror8(v0), a0);
        a1 = resilinet_smlad(x02, resilinet_sxtb16(v1), a1);
        a1 = resilinet_smlad(x13, resilinet_sxtb16_ror8(v1), a1);
    }
    for (int32_t c = n4; c < n; c++)
    {
        a0 += (int32_t)w0[c] * xt[c - n4];
        a1 += (int32_t)w1[c] * xt[c - n4];
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* One row of the above. */
static inline int32_t tconv_dot1(const resilinet_u32a *xw, const int32_t *xt, int32_t n, const int8_t *w0, int32_t a0)
{
    const int32_t n4 = n & ~3;
    for (int32_t c = 0; c < n4; c += 4, xw += 2)
    {
        const uint32_t v0 = resilinet_read_u32(w0 + c);
        a0 = resilinet_smlad(xw[0], resilinet_sxtb16(v0), a0);
        a0 = resilinet_smlad(xw[1], resilinet_sxtb16_ror8(v0), a0);
    }
    for (int32_t c = n4; c < n; c++)
    {
        a0 += (int32_t)w0[c] * xt[c - n4];
    }
    return a0;
}
#endif

/* Input channels [c0, c0 + n) of one pixel (n <= TCONV_CHUNK) into full rows y0.. and columns x0..: per
 * output channel (two at a time on DSP builds; their sums are adjacent in the buffer) every tap in the
 * filter's own order, so the weights are read sequentially. */
static void tconv_scatter(const tconv_geom *g, const int8_t *x, int32_t c0, int32_t n, int32_t y0, int32_t x0)
{
    /* Locals, not g->...: the int32 stores into the buffer could alias *g, the compiler would reload. */
    const int32_t k_h = g->k_h;
    const int32_t k_w = g->k_w;
    const int32_t in_c = g->in_c;
    const int32_t out_c = g->out_c;
    const int32_t rows = g->rows;
    const int32_t row_elems = g->row_elems;
    int32_t *const col0 = g->buf + x0 * out_c; /* column x0 of buffer row 0 */
    int32_t oc = 0;
#if RESILINET_HAS_DSP
    resilinet_u32a xw[TCONV_CHUNK / 2];
    int32_t xt[3];
    const int32_t n4 = n & ~3;
    resilinet_nn_s8_to_s16_unordered_with_offset(xw, x + c0, n4, resilinet_dup16(g->input_offset), 2);
    for (int32_t c = n4; c < n; c++)
    {
        xt[c - n4] = (int32_t)x[c0 + c] + g->input_offset;
    }
    for (; oc + 2 <= out_c; oc += 2)
    {
        const int8_t *w0 = g->filter + oc * g->filter_size + c0;
        const int8_t *w1 = w0 + g->filter_size;
        for (int32_t ky = 0; ky < k_h; ky++)
        {
            int32_t *dst = col0 + ((y0 + ky) % rows) * row_elems + oc;
            for (int32_t kx = 0; kx < k_w; kx++, dst += out_c, w0 += in_c, w1 += in_c)
            {
                tconv_dot2(xw, xt, n, w0, w1, dst);
            }
        }
    }
#else
    int32_t xs[TCONV_CHUNK];
    for (int32_t c = 0; c < n; c++)
    {
        xs[c] = (int32_t)x[c0 + c] + g->input_offset;
    }
#endif
    for (; oc < out_c; oc++)
    {
        const int8_t *w0 = g->filter + oc * g->filter_size + c0;
        for (int32_t ky = 0; ky < k_h; ky++)
        {
            int32_t *dst = col0 + ((y0 + ky) % rows) * row_elems + oc;
            for (int32_t kx = 0; kx < k_w; kx++, dst += out_c, w0 += in_c)
            {
#if RESILINET_HAS_DSP
                *dst = tconv_dot1(xw, xt, n, w0, *dst);
#else
                int32_t acc = *dst;
                for (int32_t c = 0; c < n; c++)
                {
                    acc += (int32_t)w0[c] * xs[c];
                }
                *dst = acc;
#endif
            }
        }
    }
}

/* What turns a full row of sums into an output row. */
typedef struct
{
    const cmsis_nn_transpose_conv_params *p;
    const cmsis_nn_per_channel_quant_params *q;
    const int32_t *bias; /* NULL: no bias */
    int32_t out_w;
#if RESILINET_HAS_DSP
    resilinet_nn_requant_params rq;
#endif
} tconv_out;

/* Full row yf: requantized into output row yf - pad_h when that is one, then cleared for reuse. */
static void tconv_emit(const tconv_geom *g, const tconv_out *o, int32_t yf, int32_t out_h, int8_t *out)
{
    int32_t *row = g->buf + (yf % g->rows) * g->row_elems;
    const int32_t oy = yf - o->p->padding.h;
    /* Locals: the int8 stores to dst may alias anything, the compiler would reload every field. */
    const int32_t out_c = g->out_c;
    const int32_t out_w = o->out_w;
    const int32_t pad_w = o->p->padding.w;
    const int32_t full_w = g->full_w;
    const int32_t *bias = o->bias;
#if RESILINET_HAS_DSP
    const resilinet_nn_requant_params rq = o->rq;
#endif
    if (oy >= 0 && oy < out_h)
    {
        int8_t *dst = out + oy * out_w * out_c;
        for (int32_t ox = 0; ox < out_w; ox++)
        {
            const int32_t xf = ox + pad_w;
            /* Columns past the full width (output_padding) receive no product: bias only. */
            const int32_t *acc = xf < full_w ? row + xf * out_c : NULL;
            for (int32_t oc = 0; oc < out_c; oc++)
            {
                const int32_t sum = (acc != NULL ? acc[oc] : 0) + (bias != NULL ? bias[oc] : 0);
#if RESILINET_HAS_DSP
                dst[oc] = resilinet_nn_requant_one(&rq, sum, oc);
#else
                dst[oc] = resilinet_nn_requantize_clamp(sum, o->q->multiplier[oc], o->q->shift[oc],
                                                        o->p->output_offset, o->p->activation.min,
                                                        o->p->activation.max);
#endif
            }
            dst += out_c;
        }
    }
    arm_memset_s8((int8_t *)row, 0, (uint32_t)g->row_elems * sizeof(int32_t));
}

static tconv_out tconv_out_init(const cmsis_nn_transpose_conv_params *p,
                                const cmsis_nn_per_channel_quant_params *q,
                                const int32_t *bias,
                                const tconv_geom *g,
                                int32_t out_w)
{
    tconv_out o;
    o.p = p;
    o.q = q;
    o.bias = bias;
    o.out_w = out_w;
#if RESILINET_HAS_DSP
    /* At most ceil(KH / stride_h) * ceil(KW / stride_w) taps of C_in products reach one output. */
    const int32_t taps = ((g->k_h + p->stride.h - 1) / p->stride.h) * ((g->k_w + p->stride.w - 1) / p->stride.w);
    resilinet_nn_requant_init(&o.rq, bias, q->multiplier, q->shift, 1, g->out_c, p->output_offset,
                              p->activation.min, p->activation.max, taps * g->in_c, p->input_offset);
#else
    (void)g;
#endif
    return o;
}

arm_cmsis_nn_status arm_transpose_conv_s8(const cmsis_nn_context *ctx,
                                          const cmsis_nn_context *output_ctx,
                                          const cmsis_nn_transpose_conv_params *transpose_conv_params,
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
    (void)output_ctx; /* unused, as in Arm's current version */
    (void)bias_dims;
    const cmsis_nn_transpose_conv_params *p = transpose_conv_params;
    tconv_geom g;
    g.filter = filter_data;
    g.k_h = filter_dims->h;
    g.k_w = filter_dims->w;
    g.in_c = input_dims->c;
    g.out_c = output_dims->c;
    g.filter_size = g.k_h * g.k_w * g.in_c;
    g.input_offset = p->input_offset;
    g.full_w = (input_dims->w - 1) * p->stride.w + MAX(g.k_w, p->stride.w);
    g.row_elems = g.full_w * g.out_c;
    g.rows = MAX(g.k_h, p->stride.h);
    g.buf = ctx != NULL ? (int32_t *)ctx->buf : NULL;
    if (p->stride.h < 1 || p->stride.w < 1 || p->padding.h < 0 || p->padding.w < 0 ||
        filter_dims->c != input_dims->c || input_dims->n != output_dims->n || g.buf == NULL ||
        ctx->size < arm_transpose_conv_s8_get_buffer_size(p, input_dims, filter_dims, output_dims))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const tconv_out o = tconv_out_init(p, quant_params, bias_data, &g, output_dims->w);
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t out_h = output_dims->h;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * in_h * in_w * g.in_c;
        int8_t *out = output_data + b * out_h * o.out_w * g.out_c;
        arm_memset_s8((int8_t *)g.buf, 0, (uint32_t)(g.rows * g.row_elems) * sizeof(int32_t));
        int32_t yf = 0; /* next full row to emit */
        for (int32_t iy = 0; iy < in_h; iy++)
        {
            for (int32_t ix = 0; ix < in_w; ix++, in += g.in_c)
            {
                for (int32_t c0 = 0; c0 < g.in_c; c0 += TCONV_CHUNK)
                {
                    tconv_scatter(&g, in, c0, MIN(TCONV_CHUNK, g.in_c - c0), iy * p->stride.h, ix * p->stride.w);
                }
            }
            /* Rows above the next input row's first are complete. */
            for (; yf < (iy + 1) * p->stride.h; yf++)
            {
                tconv_emit(&g, &o, yf, out_h, out);
            }
        }
        /* The last input row's lower taps, then rows no input reaches (bias only). */
        for (; yf < p->padding.h + out_h; yf++)
        {
            tconv_emit(&g, &o, yf, out_h, out);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_transpose_conv_wrapper_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_context *reverse_conv_ctx,
                                                  const cmsis_nn_transpose_conv_params *transpose_conv_params,
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
    /* One implementation for every shape (Arm's reverse convolution for C_in > 16 is a speed choice;
     * reverse_conv_ctx is still sized for it by the caller, so Arm's library can be linked instead). */
    return arm_transpose_conv_s8(ctx, reverse_conv_ctx, transpose_conv_params, quant_params, input_dims,
                                 input_data, filter_dims, filter_data, bias_dims, bias_data, output_dims,
                                 output_data);
}

/* The rolling buffer above (Arm's number for arm_transpose_conv_s8), or, when Arm's wrapper would take the
 * reverse convolution, the larger of that and arm_convolve_s8's buffer for the upscaled input: the
 * planned arena then suits either library. Pure C and DSP builds need the same. */
static int32_t tconv_reverse_conv(const cmsis_nn_transpose_conv_params *p, const cmsis_nn_dims *input_dims)
{
    return p->stride.w <= 2 && p->stride.h <= 2 && input_dims->c > TCONV_REVERSE_MIN_IN_CH;
}

int32_t arm_transpose_conv_s8_get_buffer_size(const cmsis_nn_transpose_conv_params *transpose_conv_params,
                                              const cmsis_nn_dims *input_dims,
                                              const cmsis_nn_dims *filter_dims,
                                              const cmsis_nn_dims *out_dims)
{
    const cmsis_nn_transpose_conv_params *p = transpose_conv_params;
    const int32_t buf_x = ((input_dims->w - 1) * p->stride.w + MAX(filter_dims->w, p->stride.w)) * out_dims->c;
    const int32_t buf_y = MAX(filter_dims->h, p->stride.h);
    const int32_t rolling = buf_x * buf_y * (int32_t)sizeof(int32_t);
    if (tconv_reverse_conv(p, input_dims))
    {
        const cmsis_nn_dims upscaled = {input_dims->n, input_dims->h * p->stride.h, input_dims->w * p->stride.w,
                                        input_dims->c};
        return MAX(rolling, arm_convolve_s8_get_buffer_size(&upscaled, filter_dims));
    }
    return rolling;
}

int32_t arm_transpose_conv_s8_get_buffer_size_dsp(const cmsis_nn_transpose_conv_params *transpose_conv_params,
                                                  const cmsis_nn_dims *input_dims,
                                                  const cmsis_nn_dims *filter_dims,
                                                  const cmsis_nn_dims *out_dims)
{
    return arm_transpose_conv_s8_get_buffer_size(transpose_conv_params, input_dims, filter_dims, out_dims);
}

/* The reversed filter (C_out * KH * KW * C_in bytes) when Arm's wrapper would take the reverse convolution. */
int32_t arm_transpose_conv_s8_get_reverse_conv_buffer_size(const cmsis_nn_transpose_conv_params *transpose_conv_params,
                                                           const cmsis_nn_dims *input_dims,
                                                           const cmsis_nn_dims *filter_dims)
{
    if (tconv_reverse_conv(transpose_conv_params, input_dims))
    {
        return input_dims->c * filter_dims->w * filter_dims->h * filter_dims->n;
    }
    return 0;
}

#endif /* RESILINET_USE_CMSIS_NN */
