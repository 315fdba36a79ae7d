/*
 * resilinet-mcu: int8 fully connected layers (TFLM reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel). Weights [C_OUT, depth] row-major, symmetric (filter_offset ignored, as in
 * CMSIS-NN: TFLM guarantees int8 weight zero points of 0).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* Shared body; mult/shift point at one value (per-tensor, stride 0) or one per output row (stride 1). */
static void rnn_fc(const cmsis_nn_fc_params *p,
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
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *x = input_data + b * depth;
        int8_t *out = output_data + b * out_c;
        int32_t oc = 0;
        for (; oc + 2 <= out_c; oc += 2)
        {
            int32_t a0;
            int32_t a1;
            rnn_dot2_s8_offset(x, filter_data + oc * depth, filter_data + (oc + 1) * depth, depth, p->input_offset,
                               &a0, &a1);
            if (bias_data != NULL)
            {
                a0 += bias_data[oc];
                a1 += bias_data[oc + 1];
            }
            out[oc] = rnn_requantize_clamp(a0, mult[oc * qstride], shift[oc * qstride], p->output_offset,
                                           p->activation.min, p->activation.max);
            out[oc + 1] = rnn_requantize_clamp(a1, mult[(oc + 1) * qstride], shift[(oc + 1) * qstride],
                                               p->output_offset, p->activation.min, p->activation.max);
        }
        if (oc < out_c)
        {
            int32_t acc = rnn_dot_s8_offset(x, filter_data + oc * depth, depth, p->input_offset);
            if (bias_data != NULL)
            {
                acc += bias_data[oc];
            }
            out[oc] = rnn_requantize_clamp(acc, mult[oc * qstride], shift[oc * qstride], p->output_offset,
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
    rnn_fc(fc_params, &quant_params->multiplier, &quant_params->shift, 0, input_dims, input_data, filter_dims,
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
    rnn_fc(fc_params, quant_params->multiplier, quant_params->shift, 1, input_dims, input_data, filter_dims,
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
