/*
 * resilinet-mcu: int8 SVDF with an int8 activation state (TFLite SVDF): the CMSIS-NN API arm_svdf_s8.
 *
 * Arithmetic of TFLM's reference kernel (svdf_common.cc, EvalIntegerSvdfReference<int8_t>), per invocation:
 *   1. the state [batch][filter][memory] moves one step to the left (the oldest column drops out);
 *   2. newest column: state[b][f][memory-1] = clamp8(rq(W_feature[f] . (x_b - zp_in)))  (state zero point 0);
 *   3. per filter, the time convolution sum_j W_time[f][j] * state[b][f][j] (int32, input_ctx);
 *   4. per unit, bias + the sum of its `rank` filters (int32, output_ctx), then clamp8(rq(.) + zp_out).
 * The state is the op's variable tensor: it carries the history from one invocation to the next
 * (streaming). As in CMSIS-NN, svdf_params->input_offset and ->output_offset are the zero points of the
 * input and the output, and the state's zero point is 0 (cmsis_nn_svdf_params has no field for another).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

int32_t arm_svdf_s8_get_buffer_size(const cmsis_nn_dims *weights_feature_dims)
{
    /* Only Arm's MVE build keeps kernel sums in ctx. */
    (void)weights_feature_dims;
    return 0;
}

arm_cmsis_nn_status arm_svdf_s8(const cmsis_nn_context *ctx,
                                const cmsis_nn_context *input_ctx,
                                const cmsis_nn_context *output_ctx,
                                const cmsis_nn_svdf_params *svdf_params,
                                const cmsis_nn_per_tensor_quant_params *input_quant_params,
                                const cmsis_nn_per_tensor_quant_params *output_quant_params,
                                const cmsis_nn_dims *input_dims,
                                const int8_t *input_data,
                                const cmsis_nn_dims *state_dims,
                                int8_t *state_data,
                                const cmsis_nn_dims *weights_feature_dims,
                                const int8_t *weights_feature_data,
                                const cmsis_nn_dims *weights_time_dims,
                                const int8_t *weights_time_data,
                                const cmsis_nn_dims *bias_dims,
                                const int32_t *bias_data,
                                const cmsis_nn_dims *output_dims,
                                int8_t *output_data)
{
    (void)ctx;
    (void)state_dims;
    (void)bias_dims;
    (void)output_dims;
    const int32_t batches = input_dims->n;
    const int32_t n_input = input_dims->h;
    const int32_t n_filter = weights_feature_dims->n;
    const int32_t n_memory = weights_time_dims->h;
    const int32_t rank = svdf_params->rank;
    if (input_ctx->buf == NULL || output_ctx->buf == NULL || rank <= 0 || n_filter % rank != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t n_unit = n_filter / rank;
    int32_t *filter_sums = (int32_t *)input_ctx->buf;
    int32_t *unit_sums = (int32_t *)output_ctx->buf;

    /* 1. Shift the whole history by one element; every newest column is overwritten below. */
    memmove(state_data, state_data + 1, (size_t)(batches * n_filter * n_memory - 1));

    for (int32_t b = 0; b < batches; b++)
    {
        const int8_t *x = input_data + b * n_input;
        int8_t *state = state_data + b * n_filter * n_memory;
        /* 2. Feature projection into the newest column. */
        for (int32_t f = 0; f < n_filter; f++)
        {
            const int32_t acc = resilinet_nn_dot_s8(x, weights_feature_data + f * n_input, n_input,
                                                    -svdf_params->input_offset);
            const int32_t v = arm_nn_requantize(acc, input_quant_params->multiplier, input_quant_params->shift);
            state[f * n_memory + n_memory - 1] =
                (int8_t)CLAMP(v, svdf_params->input_activation.max, svdf_params->input_activation.min);
        }
        /* 3. Time convolution of each filter's history (state zero point 0: no offset). */
        for (int32_t f = 0; f < n_filter; f++)
        {
            filter_sums[b * n_filter + f] =
                resilinet_nn_dot_s8(state + f * n_memory, weights_time_data + f * n_memory, n_memory, 0);
        }
        /* 4. Bias and the rank filters of each unit. */
        for (int32_t u = 0; u < n_unit; u++)
        {
            int32_t sum = bias_data != NULL ? bias_data[u] : 0;
            for (int32_t r = 0; r < rank; r++)
            {
                sum += filter_sums[b * n_filter + u * rank + r];
            }
            unit_sums[b * n_unit + u] = sum;
        }
    }
    for (int32_t i = 0; i < batches * n_unit; i++)
    {
        const int32_t v = arm_nn_requantize(unit_sums[i], output_quant_params->multiplier, output_quant_params->shift) +
            svdf_params->output_offset;
        output_data[i] = (int8_t)CLAMP(v, svdf_params->output_activation.max, svdf_params->output_activation.min);
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
