/*
 * resilinet-mcu: 16x8 fully connected (int16 activations, int8 weights, int64 bias), TFLM's reference
 * arithmetic (reference_integer_ops::FullyConnected[PerChannel] for int16): exact 64-bit sums, bias,
 * MultiplyByQuantizedMultiplier for int64, clamp. The weights are symmetric (filter_offset 0) and the
 * int16 zero points 0, so no offsets are applied. No scratch buffer.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* multipliers/shifts: one pair (per tensor, step 0) or one per output channel (step 1). */
static arm_cmsis_nn_status fc_s16(const cmsis_nn_fc_params *fc_params,
                                  const int32_t *multipliers,
                                  const int32_t *shifts,
                                  int32_t step,
                                  const cmsis_nn_dims *input_dims,
                                  const int16_t *input,
                                  const cmsis_nn_dims *filter_dims,
                                  const int8_t *kernel,
                                  const int64_t *bias,
                                  const cmsis_nn_dims *output_dims,
                                  int16_t *output)
{
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        for (int32_t c = 0; c < out_c; c++)
        {
            int64_t acc = resilinet_nn_dot_s8_s16_wide(kernel + c * depth, input + b * depth, depth);
            if (bias != NULL)
            {
                acc += bias[c];
            }
            int32_t r = resilinet_nn_requantize_s64(acc, multipliers[c * step], shifts[c * step]);
            r = MAX(r, fc_params->activation.min);
            r = MIN(r, fc_params->activation.max);
            output[b * out_c + c] = (int16_t)r;
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_fully_connected_s16(const cmsis_nn_context *ctx,
                                            const cmsis_nn_fc_params *fc_params,
                                            const cmsis_nn_per_tensor_quant_params *quant_params,
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
    return fc_s16(fc_params, &quant_params->multiplier, &quant_params->shift, 0, input_dims, input_data,
                  filter_dims, filter_data, bias_data, output_dims, output_data);
}

arm_cmsis_nn_status arm_fully_connected_per_channel_s16(const cmsis_nn_context *ctx,
                                                        const cmsis_nn_fc_params *fc_params,
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
    return fc_s16(fc_params, quant_params->multiplier, quant_params->shift, 1, input_dims, input_data,
                  filter_dims, filter_data, bias_data, output_dims, output_data);
}

arm_cmsis_nn_status arm_fully_connected_wrapper_s16(const cmsis_nn_context *ctx,
                                                    const cmsis_nn_fc_params *fc_params,
                                                    const cmsis_nn_quant_params *quant_params,
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
    return fc_s16(fc_params, quant_params->multiplier, quant_params->shift, quant_params->is_per_channel ? 1 : 0,
                  input_dims, input_data, filter_dims, filter_data, bias_data, output_dims, output_data);
}

int32_t arm_fully_connected_s16_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}

#endif /* RESILINET_USE_CMSIS_NN */
