/*
 * resilinet-mcu: int8 softmax with TFLM's reference (gemmlowp fixed-point) arithmetic.
 *
 * Per row: diff = x - max(row); entries with diff < diff_min contribute nothing and output -128. The
 * others are scaled to Q5.26 by (mult, shift), exponentiated to Q0.31, summed in Q12.19, and each
 * output is exp * (1 / sum) rescaled to 8 bits with zero point -128.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#define SOFTMAX_ACCUM_BITS 12

static int32_t clz32(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return x == 0 ? 32 : __builtin_clz(x);
#else
    int32_t n = 0;
    if (x == 0)
    {
        return 32;
    }
    while ((x & 0x80000000u) == 0)
    {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

/* exp of the scaled difference, Q0.31. diff <= 0 and diff >= diff_min keep diff << shift within int32. */
static inline int32_t softmax_exp(int32_t diff, int32_t mult, int32_t shift)
{
    const int32_t scaled = arm_nn_doubling_high_mult(diff * (1 << shift), mult);
    return arm_nn_exp_on_negative_values(scaled);
}

void arm_softmax_s8(const int8_t *input,
                    const int32_t num_rows,
                    const int32_t row_size,
                    const int32_t mult,
                    const int32_t shift,
                    const int32_t diff_min,
                    int8_t *output)
{
    for (int32_t row = 0; row < num_rows; row++)
    {
        const int8_t *in = input + row * row_size;
        int8_t *out = output + row * row_size;

        int32_t max = NN_Q7_MIN;
        for (int32_t col = 0; col < row_size; col++)
        {
            max = MAX(max, (int32_t)in[col]);
        }

        int32_t sum = 0;
        for (int32_t col = 0; col < row_size; col++)
        {
            const int32_t diff = (int32_t)in[col] - max;
            if (diff >= diff_min)
            {
                sum += arm_nn_divide_by_power_of_two(softmax_exp(diff, mult, shift), SOFTMAX_ACCUM_BITS);
            }
        }

        /* 1/sum as a Q0.31 reciprocal of the normalized sum plus a power-of-two exponent. */
        const int32_t headroom = clz32((uint32_t)sum);
        const int32_t bits_over_unit = SOFTMAX_ACCUM_BITS - headroom;
        const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum << headroom) - (1u << 31));
        const int32_t shifted_scale = arm_nn_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);

        for (int32_t col = 0; col < row_size; col++)
        {
            const int32_t diff = (int32_t)in[col] - max;
            if (diff >= diff_min)
            {
                const int32_t prob = arm_nn_doubling_high_mult(shifted_scale, softmax_exp(diff, mult, shift));
                int32_t res = arm_nn_divide_by_power_of_two(prob, bits_over_unit + 31 - 8) + NN_Q7_MIN;
                res = MAX(res, (int32_t)NN_Q7_MIN);
                res = MIN(res, (int32_t)NN_Q7_MAX);
                out[col] = (int8_t)res;
            }
            else
            {
                out[col] = NN_Q7_MIN;
            }
        }
    }
}

#endif /* RESILINET_USE_CMSIS_NN */
