/*
 * resilinet-mcu: int8 elementwise add and multiply (TFLM reference_integer_ops::Add / Mul arithmetic).
 *
 * Each output element depends only on the input elements at the same index and is written after they
 * are read, so the output may alias either input (the generated code uses that for in-place ops).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_1_mult,
                                           const int32_t input_1_shift,
                                           const int32_t input_2_offset,
                                           const int32_t input_2_mult,
                                           const int32_t input_2_shift,
                                           const int32_t left_shift,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
    for (int32_t i = 0; i < block_size; i++)
    {
        /* Rescale both inputs to a common scale with 20 extra bits of headroom, add, rescale. */
        const int32_t a = arm_nn_requantize(((int32_t)input_1_vect[i] + input_1_offset) * (1 << left_shift),
                                            input_1_mult, input_1_shift);
        const int32_t b = arm_nn_requantize(((int32_t)input_2_vect[i] + input_2_offset) * (1 << left_shift),
                                            input_2_mult, input_2_shift);
        int32_t sum = arm_nn_requantize(a + b, out_mult, out_shift) + out_offset;
        sum = MAX(sum, out_activation_min);
        sum = MIN(sum, out_activation_max);
        output[i] = (int8_t)sum;
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_2_offset,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
    for (int32_t i = 0; i < block_size; i++)
    {
        const int32_t prod = ((int32_t)input_1_vect[i] + input_1_offset) * ((int32_t)input_2_vect[i] + input_2_offset);
        int32_t v = arm_nn_requantize(prod, out_mult, out_shift) + out_offset;
        v = MAX(v, out_activation_min);
        v = MIN(v, out_activation_max);
        output[i] = (int8_t)v;
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
