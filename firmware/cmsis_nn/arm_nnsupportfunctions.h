/*
 * resilinet-mcu: fixed-point helpers shared by our kernels.
 *
 * The requantization must reproduce TFLite's MultiplyByQuantizedMultiplier exactly, because the
 * reference we are compared with is the TFLM interpreter: by default "double rounding"
 * (SaturatingRoundingDoublingHighMul followed by RoundingDivideByPOT), or single rounding when
 * CMSIS_NN_USE_SINGLE_ROUNDING is defined (must match TFLITE_SINGLE_ROUNDING of the TFLM build).
 *
 * The softmax helpers reproduce gemmlowp's exp_on_negative_values and
 * one_over_one_plus_x_for_x_in_0_1, which TFLM's reference int8 softmax uses.
 */
#ifndef ARM_NNSUPPORTFUNCTIONS_H
#define ARM_NNSUPPORTFUNCTIONS_H

#include <stdint.h>
#include <string.h>

#include "arm_nn_math_types.h"
#include "arm_nn_types.h"
#include "resilinet_dsp.h"

#ifndef MAX
#define MAX(A, B) ((A) > (B) ? (A) : (B))
#endif
#ifndef MIN
#define MIN(A, B) ((A) < (B) ? (A) : (B))
#endif
#define CLAMP(x, h, l) MAX(MIN((x), (h)), (l))

#define LEFT_SHIFT(_shift) ((_shift) > 0 ? (_shift) : 0)
#define RIGHT_SHIFT(_shift) ((_shift) > 0 ? 0 : -(_shift))

/* Rounded high half of 2*a*b (gemmlowp SaturatingRoundingDoublingHighMul). The only overflow case,
 * INT32_MIN * INT32_MIN, saturates. The division (not a shift) rounds toward zero like the reference. */
static inline int32_t arm_nn_doubling_high_mult(const int32_t a, const int32_t b)
{
    if (a == NN_Q31_MIN && b == NN_Q31_MIN)
    {
        return NN_Q31_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* Same without the saturation test, for multipliers known to be positive (all requantize calls). */
static inline int32_t arm_nn_doubling_high_mult_no_sat(const int32_t a, const int32_t b)
{
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* Arithmetic right shift rounding half away from zero (gemmlowp RoundingDivideByPOT), 0 <= exponent <= 31. */
static inline int32_t arm_nn_divide_by_power_of_two(const int32_t dividend, const int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = dividend & mask;
    const int32_t threshold = (mask >> 1) + (dividend < 0 ? 1 : 0);
    return (dividend >> exponent) + (remainder > threshold ? 1 : 0);
}

/* Saturating multiply by 2^exponent, 0 <= exponent < 31 (gemmlowp SaturatingRoundingMultiplyByPOT, exponent >= 0). */
static inline int32_t arm_nn_mult_by_power_of_two(const int32_t val, const int32_t exponent)
{
    const int32_t limit = (int32_t)((1u << (31 - exponent)) - 1u);
    if (val > limit)
    {
        return NN_Q31_MAX;
    }
    if (val < -limit)
    {
        return NN_Q31_MIN;
    }
    return (int32_t)((uint32_t)val << exponent);
}

/* TFLite MultiplyByQuantizedMultiplier: val * multiplier * 2^(shift - 31), rounded as TFLM does. The
 * left shift is done in unsigned arithmetic so that an (unexpected) overflow wraps instead of being UB. */
static inline int32_t arm_nn_requantize(const int32_t val, const int32_t multiplier, const int32_t shift)
{
#ifdef CMSIS_NN_USE_SINGLE_ROUNDING
    const int64_t total_shift = 31 - shift;
    const int64_t prod = (int64_t)val * multiplier;
    int32_t result = (int32_t)(prod >> (total_shift - 1));
    result = (result + 1) >> 1;
    return result;
#else
    const int32_t shifted = (int32_t)((uint32_t)val << LEFT_SHIFT(shift));
    return arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult_no_sat(shifted, multiplier), RIGHT_SHIFT(shift));
#endif
}

/* exp(x) for x in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8 (gemmlowp). */
static inline int32_t arm_nn_exp_on_interval_between_neg_quarter_and_0(const int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = arm_nn_doubling_high_mult(x, x);
    const int32_t x3 = arm_nn_doubling_high_mult(x2, x);
    const int32_t x4 = arm_nn_doubling_high_mult(x2, x2);
    const int32_t x4_over_4 = arm_nn_divide_by_power_of_two(x4, 2);
    const int32_t poly =
        arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + arm_nn_doubling_high_mult(exp_minus_one_eighth, x + poly);
}

/* exp(x) for x <= 0 given in Q5.26, result in Q0.31 (gemmlowp exp_on_negative_values with 5 integer
 * bits): exp of the fractional quarter by series, then one multiply per set bit of the remainder. */
static inline int32_t arm_nn_exp_on_negative_values(const int32_t val)
{
    static const int32_t exp_of_minus_pow2[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1)   */
        290630308,  /* exp(-2)   */
        39332535,   /* exp(-4)   */
        720401,     /* exp(-8)   */
        242,        /* exp(-16)  */
    };
    const int32_t one_quarter = 1 << 24;
    const int32_t mod_minus_quarter = (val & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = mod_minus_quarter - val;
    /* Rescale Q5.26 -> Q0.31; the value is in [-1/4, 0) so the shift cannot saturate. */
    int32_t result = arm_nn_exp_on_interval_between_neg_quarter_and_0((int32_t)((uint32_t)mod_minus_quarter << 5));
    for (int32_t i = 0; i < 7; i++)
    {
        if (remainder & (1 << (24 + i)))
        {
            result = arm_nn_doubling_high_mult(result, exp_of_minus_pow2[i]);
        }
    }
    return val == 0 ? NN_Q31_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out: three Newton-Raphson steps in Q2.29 (gemmlowp). */
static inline int32_t arm_nn_one_over_one_plus_x_for_x_in_0_1(const int32_t val)
{
    const int64_t sum = (int64_t)val + (int64_t)NN_Q31_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c_48_over_17 = 1515870810;
    const int32_t c_neg_32_over_17 = -1010580540;
    const int32_t one_q2_29 = 1 << 29;
    int32_t x = c_48_over_17 + arm_nn_doubling_high_mult(half_denominator, c_neg_32_over_17);
    for (int32_t i = 0; i < 3; i++)
    {
        const int32_t half_denominator_times_x = arm_nn_doubling_high_mult(half_denominator, x);
        const int32_t one_minus = one_q2_29 - half_denominator_times_x;
        x = x + arm_nn_mult_by_power_of_two(arm_nn_doubling_high_mult(x, one_minus), 2);
    }
    return arm_nn_mult_by_power_of_two(x, 1);
}

static inline void arm_memcpy_s8(int8_t *dst, const int8_t *src, const uint32_t block_size)
{
    memcpy(dst, src, block_size);
}

static inline void arm_memset_s8(int8_t *dst, const int8_t val, const uint32_t block_size)
{
    memset(dst, val, block_size);
}

/* ------------------------------------------------------------------------------------------------------
 * Not CMSIS-NN API: our own support functions, named like CMSIS-NN's (operation, then operand types,
 * weights first: _s8_s16 = int8 weights against int16 columns) under the resilinet_nn_ prefix, so they can
 * never clash with Arm's arm_nn_* helpers, whatever release is linked. The functions are defined in
 * resilinet_nn_*.c; the "Nx" ones produce N accumulators per call.
 * ------------------------------------------------------------------------------------------------------ */

/* Requantize one accumulator and clamp to the activation range. */
static inline int8_t resilinet_nn_requantize_clamp(const int32_t acc,
                                                   const int32_t multiplier,
                                                   const int32_t shift,
                                                   const int32_t out_offset,
                                                   const int32_t act_min,
                                                   const int32_t act_max)
{
    int32_t v = arm_nn_requantize(acc, multiplier, shift) + out_offset;
    v = MAX(v, act_min);
    v = MIN(v, act_max);
    return (int8_t)v;
}

/* Depthwise convolution through per-channel int16 row buffers (resilinet_nn_depthwise_rows_s8.c): any channel
 * multiplier, kernels up to 16 x 64, no dilation. Scratch: resilinet_nn_depthwise_rows_s8_get_buffer_size()
 * bytes in ctx (-1: shape not supported; the call then returns ARM_CMSIS_NN_ARG_ERROR, as with less scratch). */
int32_t resilinet_nn_depthwise_rows_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const cmsis_nn_dims *output_dims);
arm_cmsis_nn_status resilinet_nn_depthwise_rows_s8(const cmsis_nn_context *ctx,
                                                   const cmsis_nn_dw_conv_params *dw_conv_params,
                                                   const cmsis_nn_per_channel_quant_params *quant_params,
                                                   const cmsis_nn_dims *input_dims,
                                                   const int8_t *input_data,
                                                   const cmsis_nn_dims *filter_dims,
                                                   const int8_t *filter_data,
                                                   const int32_t *bias_data,
                                                   const cmsis_nn_dims *output_dims,
                                                   int8_t *output_data);

/* The same kernel on weights packed at generate time: the body of resilinet_depthwise_conv_s8_packed
 * (arm_nnfunctions.h, which documents the layout; defined in arm_depthwise_conv_s8.c with the op family). */
int32_t resilinet_nn_depthwise_rows_s8_packed_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                              const cmsis_nn_dims *input_dims,
                                                              const cmsis_nn_dims *filter_dims,
                                                              const cmsis_nn_dims *output_dims);
arm_cmsis_nn_status resilinet_nn_depthwise_rows_s8_packed(const cmsis_nn_context *ctx,
                                                          const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const int8_t *input_data,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const int32_t *packed,
                                                          const cmsis_nn_dims *output_dims,
                                                          int8_t *output_data);

/* Convolution support shared by the files of the op family (arm_convolve_s8.c: generic im2col path,
 * arm_convolve_1x1_s8.c: 1x1 paths, arm_convolve_wrapper_s8.c: wrappers, resilinet_nn_convolve_s8_s16w.c: the plain
 * C path on int16 weights). */

/* Add the channel's bias (if any) to acc, requantize, clamp and store one output. */
static inline void resilinet_nn_conv_finish(const int32_t *bias,
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
static inline int32_t resilinet_nn_conv_1x1_buffer_size_dsp(const cmsis_nn_dims *input_dims)
{
    return 2 * ((input_dims->c + 3) & ~3) * (int32_t)sizeof(int16_t);
}

/* The DSP kernels of the convolutions, on int8 weights (filter_w16 NULL) or on the int16 layout of
 * resilinet_nn_mat_mult_kernel_s16w (filter_w16 word-aligned; filter_data then unused). Each returns 1 when it
 * computed the outputs, 0 (nothing written) when the call needs the plain C path: the im2col kernel for a
 * ctx->buf that is not word-aligned or a geometry its staging cannot take (ctx->buf must hold
 * arm_convolve_s8_get_buffer_size() bytes), the 1x1 kernel (no padding, any stride) for a ctx smaller than
 * resilinet_nn_conv_1x1_buffer_size_dsp() or not word-aligned. */
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
                                            int8_t *output_data);
int32_t resilinet_nn_convolve_1x1_dsp_s8(const cmsis_nn_context *ctx,
                                         const cmsis_nn_conv_params *p,
                                         const cmsis_nn_per_channel_quant_params *q,
                                         const cmsis_nn_dims *input_dims,
                                         const int8_t *input_data,
                                         const int8_t *filter_data,
                                         const int16_t *filter_w16,
                                         const int32_t *bias_data,
                                         const cmsis_nn_dims *output_dims,
                                         int8_t *output_data);

/* The plain C path of resilinet_convolve_wrapper_s8_s16w (any geometry the wrapper accepts): two output pixels
 * per pass through int16 columns in the weights' lane order when has_col (ctx holds two columns of
 * align4(KH*KW*C_in) int16), otherwise (1x1 only) one pixel at a time straight from the input. */
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
                                     int8_t *output_data);

/* Dot products shared by FC, 1x1 and generic convolution (resilinet_nn_dot_s8.c). */

/* sum_i w[i] * (x[i] + x_offset) over n int8 pairs. */
int32_t resilinet_nn_dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t x_offset);

/* Same for two weight rows against one input vector (shares the input unpacking). */
void resilinet_nn_dot_2x_s8(const int8_t *x,
                            const int8_t *w0,
                            const int8_t *w1,
                            int32_t n,
                            int32_t x_offset,
                            int32_t *acc0,
                            int32_t *acc1);

/* sum_i w[i] * col[i] with col an offset-corrected int16 im2col column (layout: resilinet_nn_im2col_index). */
int32_t resilinet_nn_dot_s8_s16(const int16_t *col, const int8_t *w, int32_t n);

/* sum_i w[i] * x[i] over n contiguous int16 activations, exact in 64 bits (the 16x8 kernels;
 * resilinet_nn_dot_s16.c). */
int64_t resilinet_nn_dot_s8_s16_wide(const int8_t *w, const int16_t *x, int32_t n);

/* The body of resilinet_fully_connected_s8_paired (arm_nnfunctions.h) on its int8 paired-rows weights, batches rows
 * of depth inputs to out_c outputs each (resilinet_nn_fully_connected_paired_s8.c). */
void resilinet_nn_fully_connected_paired_s8(const cmsis_nn_fc_params *p,
                                            const int32_t *mult,
                                            const int32_t *shift,
                                            int32_t per_channel,
                                            int32_t batches,
                                            int32_t depth,
                                            const int8_t *input_data,
                                            const int8_t *filter_data,
                                            const int32_t *bias_data,
                                            int32_t out_c,
                                            int8_t *output_data);

/* Two such columns against one weight row. */
void resilinet_nn_dot_2x_s8_s16(const int16_t *col0,
                                const int16_t *col1,
                                const int8_t *w,
                                int32_t n,
                                int32_t *acc0,
                                int32_t *acc1);

/* Where column entry k lives in an im2col buffer (groups of four are stored c0,c2,c1,c3 on DSP builds,
 * matching the lane order of SXTB16; n4 is the length rounded down to a multiple of 4). */
static inline int32_t resilinet_nn_im2col_index(int32_t k, int32_t n4)
{
#if RESILINET_HAS_DSP
    if (k < n4)
    {
        const int32_t r = k & 3;
        return (k & ~3) + (r == 1 ? 2 : (r == 2 ? 1 : r));
    }
#else
    (void)n4;
#endif
    return k;
}

#if RESILINET_HAS_DSP
/* ------------------------------------------------------------------------------------------------------
 * DSP paths: requantization and the shared matrix kernel.
 *
 * resilinet_nn_requantize_clamp() above is the reference. When a channel's shift is <= -1 (a right shift e >= 1,
 * no left shift) and |acc| < 2^30, the same result follows from a handful of instructions:
 *   SaturatingRoundingDoublingHighMul(acc, m) = floor((acc*m + 2^30) / 2^31) = SMMULR(2*acc, m)  (= hm)
 *   RoundingDivideByPOT(hm, e) = floor((floor((hm + [hm<0]*-1) / 2^(e-1)) + 1) / 2)
 * and adding the output offset inside the last halving, floor((t + 1 + 2*off) / 2), lets the clamp to int8
 * be one SSAT with an ASR #1 operand. (Both identities are exact integer arithmetic; |hm| < 2^30 keeps every
 * intermediate in range.) resilinet_nn_requant_init() checks the conditions once per call; otherwise the kernels fall
 * back to resilinet_nn_requantize_clamp().
 * ------------------------------------------------------------------------------------------------------ */
typedef struct
{
    const int32_t *bias; /* NULL: no bias */
    const int32_t *mult;
    const int32_t *shift;
    int32_t q_stride;    /* 1: per-channel mult/shift, 0: per-tensor */
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t fast;        /* resilinet_nn_requant_fast() is exact for every channel */
    int32_t full_range;  /* act_min == -128 && act_max == 127: the SSAT is the whole clamp */
    int32_t c;           /* 1 + 2 * out_offset */
} resilinet_nn_requant_params;

/* n_terms products per accumulator with inputs x + input_offset (x int8) and int8 weights
 * (resilinet_nn_requant_init.c). */
void resilinet_nn_requant_init(resilinet_nn_requant_params *rq,
                               const int32_t *bias,
                               const int32_t *mult,
                               const int32_t *shift,
                               int32_t q_stride,
                               int32_t n_ch,
                               int32_t out_offset,
                               int32_t act_min,
                               int32_t act_max,
                               int32_t n_terms,
                               int32_t input_offset);

/* Fast requantization of one accumulator (conditions above); e1 = -shift - 1 = ~shift, c = 1 + 2*off.
 * Returns the value clamped to [-128, 127]. */
static inline int32_t resilinet_nn_requant_fast(int32_t acc, int32_t mult, int32_t e1, int32_t c)
{
    const int32_t hm = resilinet_smmulr((int32_t)((uint32_t)acc << 1), mult);
    const int32_t t = (hm + (hm >> 31)) >> e1;
    return resilinet_ssat8_asr1(t + c);
}

/* The accumulators of a 2 channel x 2 pixel block of the matrix kernels: aCP = channel C, pixel P. */
typedef struct
{
    int32_t a00, a01, a10, a11;
} resilinet_acc_2x2_t;

/* A 2x2 block on the fast path: channels 0, 1 (mult[0..1], shift[0..1]) of pixel 0 to out0[0..1], of pixel 1
 * to out1[0..1]. */
static inline void resilinet_nn_store_2x2_fast(const resilinet_acc_2x2_t *acc, const int32_t *mult,
                                               const int32_t *shift, int32_t c, int8_t *out0, int8_t *out1)
{
    const int32_t m0 = mult[0], m1 = mult[1];
    const int32_t e0 = ~shift[0], e1 = ~shift[1];
    out0[0] = (int8_t)resilinet_nn_requant_fast(acc->a00, m0, e0, c);
    out0[1] = (int8_t)resilinet_nn_requant_fast(acc->a10, m1, e1, c);
    out1[0] = (int8_t)resilinet_nn_requant_fast(acc->a01, m0, e0, c);
    out1[1] = (int8_t)resilinet_nn_requant_fast(acc->a11, m1, e1, c);
}

/* Requantize accumulator acc of channel ch through either path, with the activation clamp. */
static inline int8_t resilinet_nn_requant_one(const resilinet_nn_requant_params *rq, int32_t acc, int32_t ch)
{
    const int32_t m = rq->mult[ch * rq->q_stride];
    const int32_t sh = rq->shift[ch * rq->q_stride];
    if (rq->fast)
    {
        int32_t v = resilinet_nn_requant_fast(acc, m, ~sh, rq->c);
        v = MAX(v, rq->act_min);
        v = MIN(v, rq->act_max);
        return (int8_t)v;
    }
    return resilinet_nn_requantize_clamp(acc, m, sh, rq->out_offset, rq->act_min, rq->act_max);
}

/* Offset-corrected int16 columns as the matrix kernel reads them: per group of four entries two words,
 * [e0 | e2 << 16] and [e1 | e3 << 16] (the lane order of SXTB16 of a weight word and of the word rotated
 * by 8). Entries past the column's length k up to the next multiple of 4 are 0. Two columns are
 * interleaved group by group (col0 group g at words 4g, 4g+1, col1 at 4g+2, 4g+3) so that one pointer
 * walks both; a single column uses words 2g, 2g+1. */

/* out0[oc] (and out1[oc] when two) for oc < out_c = requantize(bias[oc] + sum_j w[oc*k + j] * col[j]), the
 * column(s) laid out as above (resilinet_nn_mat_mult_kernel_s8_s16.c). */
void resilinet_nn_mat_mult_kernel_s8_s16(const resilinet_u32a *cols,
                                         int32_t two,
                                         int32_t k,
                                         const int8_t *w,
                                         int32_t out_c,
                                         const resilinet_nn_requant_params *rq,
                                         int8_t *out0,
                                         int8_t *out1);

/* The same with the weights in the layout codegen prepares for resilinet_convolve_wrapper_s8_s16w (int16,
 * k4 = k rounded up to 4, zero-padded): per channel pair and group of four entries, the four words
 * [w0e0|w0e2] [w0e1|w0e3] [w1e0|w1e2] [w1e1|w1e3]; an odd last channel has two words per group. w must be
 * word-aligned (LDRD). */
void resilinet_nn_mat_mult_kernel_s16w(const resilinet_u32a *cols,
                                       int32_t two,
                                       int32_t k4,
                                       const resilinet_u32a *w,
                                       int32_t out_c,
                                       const resilinet_nn_requant_params *rq,
                                       int8_t *out0,
                                       int8_t *out1);

/* The packed fast path of resilinet_nn_mat_mult_kernel_s16w (resilinet_nn_mat_mult_kernel_s16w.c). A convolution
 * packs its bias and requantization once per call: resilinet_nn_requant_pack() writes 6 words per output channel
 * pair into table (words available; 0 = not packed, when the fast requantization without activation clamp does
 * not hold for every channel, or there is no pair, or the table is too small). Then
 * resilinet_nn_mat_mult_kernel_s16w_packed() does what resilinet_nn_mat_mult_kernel_s16w() does for two columns,
 * with the same bytes out. */
#define RESILINET_NN_REQUANT_PACK_WORDS (6 * 64)
int32_t resilinet_nn_requant_pack(const resilinet_nn_requant_params *rq, int32_t out_c, int32_t *table, int32_t words);
void resilinet_nn_mat_mult_kernel_s16w_packed(const resilinet_u32a *cols,
                                              int32_t k4,
                                              const resilinet_u32a *w,
                                              int32_t out_c,
                                              const resilinet_nn_requant_params *rq,
                                              const int32_t *table,
                                              int8_t *out0,
                                              int8_t *out1);

/* The same for four columns (resilinet_nn_mat_mult_kernel_s16w_x4.c): column j's two words of group n at
 * cols[8n + j], cols[8n + 4 + j] (step 8 of the widening helpers below); pixel j's out_c outputs at out + j * out_c. The fast requantization without
 * clamp must hold (resilinet_nn_requant_pack returns 1 for these rq); packed: table holds every pair already,
 * otherwise the kernel packs into it (RESILINET_NN_REQUANT_PACK_WORDS words) a part at a time. */
void resilinet_nn_mat_mult_kernel_s16w_x4(const resilinet_u32a *cols,
                                          int32_t k4,
                                          const resilinet_u32a *w,
                                          int32_t out_c,
                                          const resilinet_nn_requant_params *rq,
                                          int32_t *table,
                                          int32_t packed,
                                          int8_t *out);

/* Requantize (either path, activation clamp) and store channel oc's accumulators: a0 to out0[oc] and, when out1
 * is not NULL, a1 to out1[oc] (resilinet_nn_mat_mult_kernel_s8_s16.c; the matrix kernels' odd channels). */
void resilinet_nn_mat_mult_store(const resilinet_nn_requant_params *rq,
                                 int32_t oc,
                                 int32_t a0,
                                 int32_t a1,
                                 int8_t *out0,
                                 int8_t *out1);

/* acc[r] += sum_{j < 4g} w[r*d + j] * (x[j] + offset) for r = 0..3, off2 = resilinet_dup16(offset), g >= 1
 * (resilinet_nn_dot_s8.c). */
void resilinet_nn_dot_4x_s8(const int8_t *x, const int8_t *w, int32_t d, int32_t g, uint32_t off2, int32_t *acc);

/* Word offset of a column's [e1|e3] word from its [e0|e2] word for a group step of step words: 1, except in a
 * four-column block (step 8, resilinet_nn_mat_mult_kernel_s16w_x4): there a group holds the four columns' [e0|e2]
 * words, then their [e1|e3] words, so that one LDRD loads two columns' words. */
static inline int32_t resilinet_nn_col_hi(int32_t step)
{
    return step == 8 ? 4 : 1;
}

/* Column words of n int8 values (x + offset), n a multiple of 4, src may be unaligned; step = words from
 * one group to the next (2 for a single column, 4 for interleaved pairs, 8 in a four-column block). Returns the
 * next group's slot. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline resilinet_u32a *resilinet_nn_s8_to_s16_unordered_with_offset(resilinet_u32a *dst,
                                                                           const int8_t *src,
                                                                           int32_t n,
                                                                           uint32_t off2,
                                                                           int32_t step)
{
    const int8_t *end = src + n;
    if (n & 4)
    {
        const uint32_t v = resilinet_read_u32(src);
        src += 4;
        dst[0] = resilinet_sxtab16(off2, v);
        dst[resilinet_nn_col_hi(step)] = resilinet_sxtab16_ror8(off2, v);
        dst += step;
    }
    while (src != end)
    {
        const uint32_t v = resilinet_read_u32(src);
        const uint32_t u = resilinet_read_u32(src + 4);
        src += 8;
        dst[0] = resilinet_sxtab16(off2, v);
        dst[resilinet_nn_col_hi(step)] = resilinet_sxtab16_ror8(off2, v);
        dst[step] = resilinet_sxtab16(off2, u);
        dst[step + resilinet_nn_col_hi(step)] = resilinet_sxtab16_ror8(off2, u);
        dst += 2 * step;
    }
    return dst;
}
/* Both columns of an interleaved pair at once: n values (a multiple of 4) of a and of b (int8, unaligned), + offset,
 * into dst as the matrix kernel reads a pair (per group: a's two words, then b's); step = words from one group to
 * the next: 4 for a pair, 8 for two neighbouring columns of a four-column block (b's words one after a's, the
 * [e1|e3] words at resilinet_nn_col_hi(8)). Returns the next group's slot. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline resilinet_u32a *resilinet_nn_s8_to_s16_pair_with_offset(resilinet_u32a *dst,
                                                                      const int8_t *a,
                                                                      const int8_t *b,
                                                                      int32_t n,
                                                                      uint32_t off2,
                                                                      int32_t step)
{
    const int8_t *const end = a + n;
    const int32_t h = resilinet_nn_col_hi(step), c = step == 8 ? 1 : 2; /* [e1|e3] word, column b */
    if (n & 4)
    {
        const uint32_t va = resilinet_read_u32(a), vb = resilinet_read_u32(b);
        dst[0] = resilinet_sxtab16(off2, va);
        dst[h] = resilinet_sxtab16_ror8(off2, va);
        dst[c] = resilinet_sxtab16(off2, vb);
        dst[c + h] = resilinet_sxtab16_ror8(off2, vb);
        a += 4;
        b += 4;
        dst += step;
    }
    while (a != end)
    {
        /* one group's loads, then its words (fewer live registers than loading both groups first) */
        const uint32_t va = resilinet_read_u32(a), vb = resilinet_read_u32(b);
        dst[0] = resilinet_sxtab16(off2, va);
        dst[h] = resilinet_sxtab16_ror8(off2, va);
        dst[c] = resilinet_sxtab16(off2, vb);
        dst[c + h] = resilinet_sxtab16_ror8(off2, vb);
        const uint32_t ua = resilinet_read_u32(a + 4), ub = resilinet_read_u32(b + 4);
        dst[step] = resilinet_sxtab16(off2, ua);
        dst[step + h] = resilinet_sxtab16_ror8(off2, ua);
        dst[step + c] = resilinet_sxtab16(off2, ub);
        dst[step + c + h] = resilinet_sxtab16_ror8(off2, ub);
        a += 8;
        b += 8;
        dst += 2 * step;
    }
    return dst;
}
#endif /* RESILINET_HAS_DSP */

/* TFLite MultiplyByQuantizedMultiplier for a 64-bit accumulator (the 16x8 kernels): the multiplier is
 * rounded to 16 bits and one rounding shift follows, in both TFLM rounding modes. */
static inline int32_t resilinet_nn_requantize_s64(const int64_t val, const int32_t multiplier, const int32_t shift)
{
    const int32_t reduced = multiplier < 0x7FFF0000 ? ((multiplier + (1 << 15)) >> 16) : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    return (int32_t)((val * reduced + ((int64_t)1 << (total_shift - 1))) >> total_shift);
}

#endif /* ARM_NNSUPPORTFUNCTIONS_H */
