/*
 * resilinet-mcu: int8 fully connected layers (TFLM reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel). Weights [C_OUT, depth] row-major, symmetric (filter_offset ignored, as in
 * CMSIS-NN: TFLM guarantees int8 weight zero points of 0).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if RESILINET_HAS_DSP
/* The depth % 4 tail of four rows. */
static inline void fc_tail4(const int8_t *x, const int8_t *w, int32_t depth, int32_t input_offset, int32_t *acc)
{
    for (int32_t j = depth & ~3; j < depth; j++)
    {
        const int32_t xj = (int32_t)x[j] + input_offset;
        for (int32_t r = 0; r < 4; r++)
        {
            acc[r] += (int32_t)w[r * depth + j] * xj;
        }
    }
}

/* n4 blocks of four rows on the fast requantization path (depth >= 4). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void fc_rows4_fast(const int8_t *x,
                          const int8_t *w,
                          int32_t depth,
                          uint32_t off2,
                          int32_t n4,
                          const int32_t *bias,
                          const int32_t *mult,
                          const int32_t *shift,
                          int32_t qstride,
                          int32_t c,
                          int8_t *out)
{
    const int32_t groups = depth >> 2;
    const int32_t input_offset = (int32_t)(int16_t)(off2 & 0xFFFFu);
    for (; n4 > 0; n4--)
    {
        int32_t acc[4];
        for (int32_t r = 0; r < 4; r++)
        {
            acc[r] = bias != NULL ? bias[r] : 0;
        }
        resilinet_nn_dot_4x_s8(x, w, depth, groups, off2, acc);
        if (depth & 3)
        {
            fc_tail4(x, w, depth, input_offset, acc);
        }
        for (int32_t r = 0; r < 4; r++)
        {
            out[r] = (int8_t)resilinet_nn_requant_fast(acc[r], mult[r * qstride], ~shift[r * qstride], c);
        }
        w += 4 * depth;
        bias = bias != NULL ? bias + 4 : NULL;
        mult += 4 * qstride;
        shift += 4 * qstride;
        out += 4;
    }
}
#endif

/* Shared body; mult/shift point at one value (per-tensor, stride 0) or one per output row (stride 1). */
static void fc_s8(const cmsis_nn_fc_params *p,
                  const int32_t *mult,
                  const int32_t *shift,
                  int32_t qstride,
                  const cmsis_nn_dims *input_dims,
                  const int8_t *input_data,
                  const cmsis_nn_dims *filter_dims,
                  const int8_t *filter_data,
                  const int32_t *bias_data,
                  const cmsis_nn_dims *output_dims,
                  int8_t *output_data)
{
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
#if RESILINET_HAS_DSP
    resilinet_nn_requant_params rq;
    resilinet_nn_requant_init(&rq, bias_data, mult, shift, qstride, out_c, p->output_offset, p->activation.min,
                              p->activation.max, depth, p->input_offset);
    const uint32_t off2 = resilinet_dup16(p->input_offset);
    const int32_t groups = depth >> 2;
#endif
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *x = input_data + b * depth;
        int8_t *out = output_data + b * out_c;
        int32_t oc = 0;
#if RESILINET_HAS_DSP
        /* Four rows at a time (resilinet_nn_dot_4x_s8), the depth % 4 tail in plain C. */
        if (groups > 0 && rq.fast && rq.full_range && out_c >= 4)
        {
            fc_rows4_fast(x, filter_data, depth, off2, out_c >> 2, bias_data, mult, shift, qstride, rq.c, out);
            oc = out_c & ~3;
        }
        for (; groups > 0 && oc + 4 <= out_c; oc += 4)
        {
            int32_t acc[4];
            const int8_t *w = filter_data + oc * depth;
            for (int32_t r = 0; r < 4; r++)
            {
                acc[r] = bias_data != NULL ? bias_data[oc + r] : 0;
            }
            resilinet_nn_dot_4x_s8(x, w, depth, groups, off2, acc);
            fc_tail4(x, w, depth, p->input_offset, acc);
            for (int32_t r = 0; r < 4; r++)
            {
                out[oc + r] = resilinet_nn_requant_one(&rq, acc[r], oc + r);
            }
        }
#endif
        for (; oc + 2 <= out_c; oc += 2)
        {
            int32_t a0;
            int32_t a1;
            resilinet_nn_dot_2x_s8(x, filter_data + oc * depth, filter_data + (oc + 1) * depth, depth, p->input_offset,
                                   &a0, &a1);
            if (bias_data != NULL)
            {
                a0 += bias_data[oc];
                a1 += bias_data[oc + 1];
            }
            out[oc] = resilinet_nn_requantize_clamp(a0, mult[oc * qstride], shift[oc * qstride], p->output_offset,
                                                    p->activation.min, p->activation.max);
            out[oc + 1] = resilinet_nn_requantize_clamp(a1, mult[(oc + 1) * qstride], shift[(oc + 1) * qstride],
                                                        p->output_offset, p->activation.min, p->activation.max);
        }
        if (oc < out_c)
        {
            int32_t acc = resilinet_nn_dot_s8(x, filter_data + oc * depth, depth, p->input_offset);
            if (bias_data != NULL)
            {
                acc += bias_data[oc];
            }
            out[oc] = resilinet_nn_requantize_clamp(acc, mult[oc * qstride], shift[oc * qstride], p->output_offset,
                                                    p->activation.min, p->activation.max);
        }
    }
}

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
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
    fc_s8(fc_params, &quant_params->multiplier, &quant_params->shift, 0, input_dims, input_data, filter_dims,
          filter_data, bias_data, output_dims, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_fully_connected_per_channel_s8(const cmsis_nn_context *ctx,
                                                       const cmsis_nn_fc_params *fc_params,
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
    fc_s8(fc_params, quant_params->multiplier, quant_params->shift, 1, input_dims, input_data, filter_dims,
          filter_data, bias_data, output_dims, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_fully_connected_s8_get_buffer_size_dsp(const cmsis_nn_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}

/* On MVE CMSIS-NN wants C_OUT precomputed kernel sums in the buffer; we only report the size. */
int32_t arm_fully_connected_s8_get_buffer_size_mve(const cmsis_nn_dims *filter_dims)
{
    return filter_dims->c * (int32_t)sizeof(int32_t);
}

int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
    return arm_fully_connected_s8_get_buffer_size_dsp(filter_dims);
}

int32_t arm_fully_connected_per_channel_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
    return arm_fully_connected_s8_get_buffer_size(filter_dims);
}

#endif /* RESILINET_USE_CMSIS_NN */
