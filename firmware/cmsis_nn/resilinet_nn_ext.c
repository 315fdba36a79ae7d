/*
 * resilinet-mcu: MEAN and requantize kernels with TFLM's exact arithmetic (see resilinet_nn_ext.h).
 *
 * Deliberately self-contained (own fixed-point helpers, no float) so that it also builds next to Arm's
 * CMSIS-NN, whose internal helper names and signatures vary between releases.
 */
#include "resilinet_nn_ext.h"

#include <stddef.h>

static int32_t ext_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
    {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t ext_divide_by_power_of_two(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier; rounding mode must match the CMSIS-NN/TFLM build. */
static int32_t ext_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
#ifdef CMSIS_NN_USE_SINGLE_ROUNDING
    const int64_t total_shift = 31 - shift;
    const int64_t prod = (int64_t)x * multiplier;
    int32_t result = (int32_t)(prod >> (total_shift - 1));
    return (result + 1) >> 1;
#else
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return ext_divide_by_power_of_two(ext_doubling_high_mult((int32_t)((uint32_t)x << left), multiplier), right);
#endif
}

static int32_t ext_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

arm_cmsis_nn_status resilinet_mean_s8(const int8_t *input,
                                      const int32_t outer,
                                      const int32_t reduce,
                                      const int32_t inner,
                                      const resilinet_mean_params *params,
                                      int8_t *output)
{
    if (input == NULL || output == NULL || params == NULL || reduce <= 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t o = 0; o < outer; o++)
    {
        const int8_t *in = input + o * reduce * inner;
        int8_t *out = output + o * inner;
        for (int32_t i = 0; i < inner; i++)
        {
            int32_t sum = 0;
            for (int32_t r = 0; r < reduce; r++)
            {
                sum += in[r * inner + i];
            }
            /* The reference subtracts the zero points in 64 bits and narrows the result to 32. */
            const int32_t shifted = (int32_t)((int64_t)sum - (int64_t)params->input_zero_point * reduce);
            const int32_t v = ext_clamp(ext_requantize(shifted, params->multiplier, params->shift) +
                                            params->output_zero_point,
                                        INT8_MIN, INT8_MAX);
            out[i] = (int8_t)v;
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status resilinet_requantize_s8(const int8_t *input,
                                            int8_t *output,
                                            const int32_t size,
                                            const int32_t input_offset,
                                            const int32_t multiplier,
                                            const int32_t shift,
                                            const int32_t output_offset,
                                            const int32_t act_min,
                                            const int32_t act_max)
{
    if (input == NULL || output == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t i = 0; i < size; i++)
    {
        const int32_t v = ext_requantize((int32_t)input[i] + input_offset, multiplier, shift) + output_offset;
        output[i] = (int8_t)ext_clamp(v, act_min, act_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
