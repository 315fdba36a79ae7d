/*
 * resilinet-mcu: 16x8 elementwise add and multiply (TFLM reference ADD / MUL for int16).
 *
 * ADD: both inputs shifted left by left_shift (15 for int16) and rescaled to a common scale with
 * MultiplyByQuantizedMultiplierSmallerThanOneExp, summed, rescaled to the output and clamped.
 * MUL: (x1 + o1) * (x2 + o2) requantized, plus the output offset, clamped. The offsets are kept for the
 * API (the 16x8 scheme has zero points 0). Each output element is written after its inputs are read,
 * so the output may alias either input.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_elementwise_add_s16(const int16_t *input_1_vect,
                                            const int16_t *input_2_vect,
                                            const int32_t input_1_offset,
                                            const int32_t input_1_mult,
                                            const int32_t input_1_shift,
                                            const int32_t input_2_offset,
                                            const int32_t input_2_mult,
                                            const int32_t input_2_shift,
                                            const int32_t left_shift,
                                            int16_t *output,
                                            const int32_t out_offset,
                                            const int32_t out_mult,
                                            const int32_t out_shift,
                                            const int32_t out_activation_min,
                                            const int32_t out_activation_max,
                                            const int32_t block_size)
{
    for (int32_t i = 0; i < block_size; i++)
    {
        /* (x + o) * 2^15 stays within int32 for |x + o| <= 65535. */
        const int32_t a = (int32_t)((uint32_t)(input_1_vect[i] + input_1_offset) << left_shift);
        const int32_t b = (int32_t)((uint32_t)(input_2_vect[i] + input_2_offset) << left_shift);
        const int32_t sum = arm_nn_requantize(a, input_1_mult, input_1_shift) +
            arm_nn_requantize(b, input_2_mult, input_2_shift);
        int32_t r = arm_nn_requantize(sum, out_mult, out_shift) + out_offset;
        r = MAX(r, out_activation_min);
        r = MIN(r, out_activation_max);
        output[i] = (int16_t)r;
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_elementwise_mul_s16(const int16_t *input_1_vect,
                                            const int16_t *input_2_vect,
                                            const int32_t input_1_offset,
                                            const int32_t input_2_offset,
                                            int16_t *output,
                                            const int32_t out_offset,
                                            const int32_t out_mult,
                                            const int32_t out_shift,
                                            const int32_t out_activation_min,
                                            const int32_t out_activation_max,
                                            const int32_t block_size)
{
    for (int32_t i = 0; i < block_size; i++)
    {
        /* |(x1 + o1) * (x2 + o2)| <= 2^30 for int16 values with zero offsets: no overflow. */
        const int32_t prod = (input_1_vect[i] + input_1_offset) * (input_2_vect[i] + input_2_offset);
        int32_t r = arm_nn_requantize(prod, out_mult, out_shift) + out_offset;
        r = MAX(r, out_activation_min);
        r = MIN(r, out_activation_max);
        output[i] = (int16_t)r;
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
