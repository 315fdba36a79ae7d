/*
 * resilinet-mcu: 16x8 convolution and depthwise convolution (int16 activations, int8 weights, int64 bias;
 * the convolution takes it as CMSIS-NN v7+'s cmsis_nn_bias_data),
 * with TFLM's reference arithmetic (reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel for
 * int16): products summed exactly in 64 bits, bias added, then MultiplyByQuantizedMultiplier for int64
 * (resilinet_nn_requantize_s64). Zero points are 0 in the 16x8 scheme, so the offsets are not used.
 *
 * The convolution gathers each output pixel's window into an int16 column (im2col, in the buffer Arm's
 * arm_convolve_s16_get_buffer_size asks for) and takes one dot product per output channel
 * (resilinet_nn_dot_s8_s16_wide: SMLAD on DSP cores). The depthwise convolution needs no buffer; its
 * get_buffer_size returns 0, so a module planned here fails that op cleanly (instead of overrunning) if
 * linked with a CMSIS-NN build that wants one.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* The taps k in [*k0, *k1) of a window starting at `start` (stride `dil`) that fall inside [0, size):
 * padding is left out of the sums, as in TFLM (zero padding without an offset). */
static void tap_range(int32_t start, int32_t dil, int32_t k_size, int32_t size, int32_t *k0, int32_t *k1)
{
    int32_t lo = 0;
    while (lo < k_size && start + lo * dil < 0)
    {
        lo++;
    }
    int32_t hi = k_size;
    while (hi > lo && start + (hi - 1) * dil >= size)
    {
        hi--;
    }
    *k0 = lo;
    *k1 = hi;
}

/* The window of one output pixel as one contiguous int16 column in filter order (ky, kx, c), zeros where it
 * leaves the input: with zero points 0, a zero contributes nothing, exactly like TFLM skipping the tap. */
static void im2col_s16(const int16_t *in_b,
                       const cmsis_nn_dims *input_dims,
                       const cmsis_nn_dims *filter_dims,
                       const cmsis_nn_conv_params *p,
                       int32_t y0,
                       int32_t x0,
                       int16_t *col)
{
    const int32_t in_c = input_dims->c;
    for (int32_t ky = 0; ky < filter_dims->h; ky++)
    {
        const int32_t iy = y0 + ky * p->dilation.h;
        for (int32_t kx = 0; kx < filter_dims->w; kx++)
        {
            const int32_t ix = x0 + kx * p->dilation.w;
            const int32_t inside = iy >= 0 && iy < input_dims->h && ix >= 0 && ix < input_dims->w;
            const int16_t *src = in_b + (iy * input_dims->w + ix) * in_c;
            /* A loop, not memcpy / memset: a tap is a few channels, less than a library call costs. */
            for (int32_t c = 0; c < in_c; c++)
            {
                col[c] = inside ? src[c] : 0;
            }
            col += in_c;
        }
    }
}

static inline int16_t finish_s16(int64_t acc, int32_t mult, int32_t shift, const cmsis_nn_activation *act)
{
    int32_t r = resilinet_nn_requantize_s64(acc, mult, shift);
    r = MAX(r, act->min);
    r = MIN(r, act->max);
    return (int16_t)r;
}

arm_cmsis_nn_status arm_convolve_s16(const cmsis_nn_context *ctx,
                                     const cmsis_nn_conv_params *conv_params,
                                     const cmsis_nn_per_channel_quant_params *quant_params,
                                     const cmsis_nn_dims *input_dims,
                                     const int16_t *input_data,
                                     const cmsis_nn_dims *filter_dims,
                                     const int8_t *filter_data,
                                     const cmsis_nn_dims *bias_dims,
                                     const cmsis_nn_bias_data *bias_data,
                                     const cmsis_nn_dims *output_dims,
                                     int16_t *output_data)
{
    (void)bias_dims;
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    if (filter_dims->c != in_c)
    {
        return ARM_CMSIS_NN_ARG_ERROR; /* grouped convolution: not part of the s16 API */
    }
    /* TFLM accumulates an int32-bias 16x8 conv in 32 bits and requantizes it differently: not implemented. */
    if (bias_data != NULL && bias_data->data != NULL && bias_data->is_int32_bias)
    {
        return ARM_CMSIS_NN_NO_IMPL_ERROR;
    }
    const int64_t *bias = bias_data != NULL ? (const int64_t *)bias_data->data : NULL;
    const int32_t dil_h = conv_params->dilation.h, dil_w = conv_params->dilation.w;
    /* The im2col column when the caller gave the buffer arm_convolve_s16_get_buffer_size asks for (the
     * first half of it is used); the direct path otherwise. Both give the same exact sums. */
    const int32_t col_len = k_h * k_w * in_c;
    int16_t *col = (ctx != NULL && ctx->buf != NULL && ctx->size >= col_len * (int32_t)sizeof(int16_t))
        ? (int16_t *)ctx->buf : NULL;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int16_t *in_b = input_data + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int32_t y0 = oy * conv_params->stride.h - conv_params->padding.h;
            int32_t ky0, ky1;
            tap_range(y0, dil_h, k_h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                const int32_t x0 = ox * conv_params->stride.w - conv_params->padding.w;
                int32_t kx0, kx1;
                tap_range(x0, dil_w, k_w, in_w, &kx0, &kx1);
                int16_t *out = output_data + ((b * out_h + oy) * out_w + ox) * out_c;
                if (col != NULL)
                {
                    /* One column per pixel, then one dot product of k_h * k_w * in_c per output channel. */
                    im2col_s16(in_b, input_dims, filter_dims, conv_params, y0, x0, col);
                    for (int32_t oc = 0; oc < out_c; oc++)
                    {
                        int64_t acc = resilinet_nn_dot_s8_s16_wide(filter_data + oc * col_len, col, col_len);
                        acc += bias != NULL ? bias[oc] : 0;
                        out[oc] = finish_s16(acc, quant_params->multiplier[oc], quant_params->shift[oc],
                                             &conv_params->activation);
                    }
                    continue;
                }
                /* No buffer: without horizontal dilation the taps of one filter row read one contiguous run of
                 * the input row (and of the filter row), so one dot product per filter row. */
                const int32_t run = dil_w == 1 ? (kx1 - kx0) * in_c : in_c;
                const int32_t runs = dil_w == 1 ? (kx1 > kx0 ? 1 : 0) : kx1 - kx0;
                for (int32_t oc = 0; oc < out_c; oc++)
                {
                    const int8_t *w_oc = filter_data + oc * k_h * k_w * in_c;
                    int64_t acc = 0;
                    for (int32_t ky = ky0; ky < ky1; ky++)
                    {
                        const int16_t *row = in_b + (y0 + ky * dil_h) * in_w * in_c;
                        const int8_t *w_row = w_oc + ky * k_w * in_c;
                        for (int32_t r = 0; r < runs; r++)
                        {
                            const int32_t kx = kx0 + r;
                            acc += resilinet_nn_dot_s8_s16_wide(w_row + kx * in_c, row + (x0 + kx * dil_w) * in_c, run);
                        }
                    }
                    if (bias != NULL)
                    {
                        acc += bias[oc];
                    }
                    out[oc] = finish_s16(acc, quant_params->multiplier[oc], quant_params->shift[oc],
                                         &conv_params->activation);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* CMSIS-NN's size (two int16 columns; we use one), so a module planned here also runs with Arm's kernels. */
int32_t arm_convolve_s16_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    return 2 * input_dims->c * filter_dims->w * filter_dims->h * (int32_t)sizeof(int16_t);
}

arm_cmsis_nn_status arm_convolve_wrapper_s16(const cmsis_nn_context *ctx,
                                             const cmsis_nn_conv_params *conv_params,
                                             const cmsis_nn_per_channel_quant_params *quant_params,
                                             const cmsis_nn_dims *input_dims,
                                             const int16_t *input_data,
                                             const cmsis_nn_dims *filter_dims,
                                             const int8_t *filter_data,
                                             const cmsis_nn_dims *bias_dims,
                                             const cmsis_nn_bias_data *bias_data,
                                             const cmsis_nn_dims *output_dims,
                                             int16_t *output_data)
{
    return arm_convolve_s16(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                            bias_dims, bias_data, output_dims, output_data);
}

int32_t arm_convolve_wrapper_s16_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                 const cmsis_nn_dims *input_dims,
                                                 const cmsis_nn_dims *filter_dims,
                                                 const cmsis_nn_dims *output_dims)
{
    (void)conv_params;
    (void)output_dims;
    return arm_convolve_s16_get_buffer_size(input_dims, filter_dims);
}

/* Output channels per block of the depthwise fast path (its int32 accumulators live on the stack). */
#define DW_BLOCK 16

/* One tap for output channels oc0 .. oc0 + n - 1: acc[j] += w[j] * px[(oc0 + j) / ch_mult]. */
static inline void dw_taps(int32_t *acc, const int8_t *w, const int16_t *px, int32_t oc0, int32_t n, int32_t ch_mult)
{
    if (ch_mult == 1)
    {
        px += oc0;
        for (int32_t j = 0; j < n; j++)
        {
            acc[j] += (int32_t)w[j] * (int32_t)px[j];
        }
        return;
    }
    for (int32_t j = 0; j < n; j++)
    {
        acc[j] += (int32_t)w[j] * (int32_t)px[(oc0 + j) / ch_mult];
    }
}

/* The window of one output pixel, clipped to the input: rows [ky0, ky1) and columns [kx0, kx1) of the filter. */
typedef struct
{
    int32_t y0, x0, ky0, ky1, kx0, kx1;
} dw_window;

/* All output channels of one depthwise output pixel (batch input in_b, output out). */
static void dw_pixel_s16(const dw_window *win,
                         const cmsis_nn_dw_conv_params *p,
                         const cmsis_nn_per_channel_quant_params *quant_params,
                         const cmsis_nn_dims *input_dims,
                         const int16_t *in_b,
                         const cmsis_nn_dims *filter_dims,
                         const int8_t *filter_data,
                         const int64_t *bias_data,
                         int32_t out_c,
                         int16_t *out)
{
    const int32_t in_w = input_dims->w, in_c = input_dims->c, k_w = filter_dims->w;
    /* Up to 256 taps an int32 sum is exact (|sum| <= 2^30); otherwise each filter row's partial sums are
     * flushed to 64 bits every 256 taps. Taps outside, channels inside: contiguous reads (multiplier 1). */
    const int32_t fits = (win->ky1 - win->ky0) * (win->kx1 - win->kx0) <= 256;
    for (int32_t oc0 = 0; oc0 < out_c; oc0 += DW_BLOCK)
    {
        const int32_t n = MIN(DW_BLOCK, out_c - oc0);
        int32_t acc[DW_BLOCK] = {0};
        int64_t wide[DW_BLOCK]; /* only used (and cleared) for windows of more than 256 taps */
        if (!fits)
        {
            memset(wide, 0, sizeof(wide));
        }
        for (int32_t ky = win->ky0; ky < win->ky1; ky++)
        {
            const int32_t iy = win->y0 + ky * p->dilation.h;
            for (int32_t kx = win->kx0; kx < win->kx1; kx++)
            {
                const int32_t ix = win->x0 + kx * p->dilation.w;
                dw_taps(acc, filter_data + (ky * k_w + kx) * out_c + oc0, in_b + (iy * in_w + ix) * in_c, oc0, n,
                        p->ch_mult);
                if (!fits && ((kx - win->kx0) & 255) == 255)
                {
                    for (int32_t j = 0; j < n; j++)
                    {
                        wide[j] += acc[j];
                        acc[j] = 0;
                    }
                }
            }
            if (!fits)
            {
                for (int32_t j = 0; j < n; j++)
                {
                    wide[j] += acc[j];
                    acc[j] = 0;
                }
            }
        }
        for (int32_t j = 0; j < n; j++)
        {
            const int32_t oc = oc0 + j;
            const int64_t sum = (fits ? 0 : wide[j]) + acc[j] + (bias_data != NULL ? bias_data[oc] : 0);
            out[oc] = finish_s16(sum, quant_params->multiplier[oc], quant_params->shift[oc], &p->activation);
        }
    }
}

arm_cmsis_nn_status arm_depthwise_conv_s16(const cmsis_nn_context *ctx,
                                           const cmsis_nn_dw_conv_params *dw_conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int16_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int64_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int16_t *output_data)
{
    (void)ctx;
    (void)bias_dims;
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    if (in_c * dw_conv_params->ch_mult != out_c)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int16_t *in_b = input_data + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            dw_window win;
            win.y0 = oy * dw_conv_params->stride.h - dw_conv_params->padding.h;
            tap_range(win.y0, dw_conv_params->dilation.h, filter_dims->h, in_h, &win.ky0, &win.ky1);
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                win.x0 = ox * dw_conv_params->stride.w - dw_conv_params->padding.w;
                tap_range(win.x0, dw_conv_params->dilation.w, filter_dims->w, in_w, &win.kx0, &win.kx1);
                dw_pixel_s16(&win, dw_conv_params, quant_params, input_dims, in_b, filter_dims, filter_data, bias_data,
                             out_c, output_data + ((b * out_h + oy) * out_w + ox) * out_c);
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_depthwise_conv_wrapper_s16(const cmsis_nn_context *ctx,
                                                   const cmsis_nn_dw_conv_params *dw_conv_params,
                                                   const cmsis_nn_per_channel_quant_params *quant_params,
                                                   const cmsis_nn_dims *input_dims,
                                                   const int16_t *input_data,
                                                   const cmsis_nn_dims *filter_dims,
                                                   const int8_t *filter_data,
                                                   const cmsis_nn_dims *bias_dims,
                                                   const int64_t *bias_data,
                                                   const cmsis_nn_dims *output_dims,
                                                   int16_t *output_data)
{
    return arm_depthwise_conv_s16(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                  filter_data, bias_dims, bias_data, output_dims, output_data);
}

int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const cmsis_nn_dims *output_dims)
{
    (void)dw_conv_params;
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}

#endif /* RESILINET_USE_CMSIS_NN */
