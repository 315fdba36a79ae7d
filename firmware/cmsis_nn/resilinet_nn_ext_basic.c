/*
 * resilinet-mcu: int8 kernels for ops TFLM runs with its reference kernels and CMSIS-NN does not have:
 * table lookup (LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU), SUB, float32 <-> int8 at the model's edges
 * (QUANTIZE / DEQUANTIZE) and STRIDED_SLICE. Declared in resilinet_nn_ext.h.
 *
 * Self-contained like resilinet_nn_ext.c (own helpers, only the CMSIS-NN types), so it also builds next to
 * Arm's CMSIS-NN. Float arithmetic is IEEE single precision without libm: a float division and a
 * multiplication, each correctly rounded, reproduce TFLM's (see the comments at each use).
 */
#include "resilinet_nn_ext.h"

#include <stddef.h>
#include <string.h>

static int32_t basic_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
    {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t basic_divide_by_power_of_two(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier; rounding mode must match the CMSIS-NN/TFLM build. */
static int32_t basic_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
#ifdef CMSIS_NN_USE_SINGLE_ROUNDING
    const int64_t total_shift = 31 - shift;
    const int64_t prod = (int64_t)x * multiplier;
    const int32_t result = (int32_t)(prod >> (total_shift - 1));
    return (result + 1) >> 1;
#else
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return basic_divide_by_power_of_two(basic_doubling_high_mult((int32_t)((uint32_t)x << left), multiplier), right);
#endif
}

static int8_t basic_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

arm_cmsis_nn_status resilinet_lut_s8(const int8_t *input, int8_t *output, const int32_t size, const int8_t *table)
{
    if (input == NULL || output == NULL || table == NULL || size < 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t i = 0; i < size; i++)
    {
        output[i] = table[(int32_t)input[i] + 128];
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status resilinet_elementwise_sub_s8(const int8_t *input_1_vect,
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
    if (input_1_vect == NULL || input_2_vect == NULL || output == NULL || left_shift < 0 || left_shift > 30)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t i = 0; i < block_size; i++)
    {
        /* TFLM's SubElementwise: both inputs onto a common scale with left_shift bits of headroom, subtract,
         * rescale. Not an ADD with a negated multiplier: the doubling high multiply rounds -0.5 and +0.5
         * differently, so the sign must be applied after rescaling, as here. */
        const int32_t a = basic_requantize(((int32_t)input_1_vect[i] + input_1_offset) * (1 << left_shift),
                                           input_1_mult, input_1_shift);
        const int32_t b = basic_requantize(((int32_t)input_2_vect[i] + input_2_offset) * (1 << left_shift),
                                           input_2_mult, input_2_shift);
        const int32_t diff = basic_requantize(a - b, out_mult, out_shift) + out_offset;
        output[i] = basic_clamp_s8(diff, out_activation_min, out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* std::round of a float (halves away from zero), saturated to +-2^20: enough for any int8 result. Beyond
 * +-2^31 TFLM's static_cast<int32_t> is undefined (x86 yields INT32_MIN, so a huge positive input gives -128
 * there; a Cortex-M's VCVT saturates, as this does). */
static int32_t basic_round_f32(const float q)
{
    if (q != q) /* NaN: what the x86 conversion TFLM relies on gives (INT32_MIN), i.e. the lowest output */
    {
        return INT32_MIN / 2;
    }
    if (q >= 1048576.0f)
    {
        return 1048576;
    }
    if (q <= -1048576.0f)
    {
        return -1048576;
    }
    int32_t t = (int32_t)q;         /* truncates toward zero */
    const float frac = q - (float)t; /* exact: q and t share their integer part */
    if (frac >= 0.5f)
    {
        t++;
    }
    else if (frac <= -0.5f)
    {
        t--;
    }
    return t;
}

arm_cmsis_nn_status resilinet_quantize_f32_s8(const void *input,
                                              int8_t *output,
                                              const int32_t size,
                                              const float scale,
                                              const int32_t zero_point)
{
    if (input == NULL || output == NULL || size < 0 || !(scale > 0.0f))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const unsigned char *src = (const unsigned char *)input;
    for (int32_t i = 0; i < size; i++)
    {
        float x;
        memcpy(&x, src + (size_t)i * sizeof(float), sizeof(float)); /* the caller's buffer may be unaligned */
        /* TFLM's AffineQuantize: round(x / (float)scale) in single precision, + zero point, clamped. */
        const float q = x / scale;
        output[i] = basic_clamp_s8(basic_round_f32(q) + zero_point, -128, 127);
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status resilinet_dequantize_s8_f32(const int8_t *input,
                                                void *output,
                                                const int32_t size,
                                                const float scale,
                                                const int32_t zero_point)
{
    if (input == NULL || output == NULL || size < 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    unsigned char *dst = (unsigned char *)output;
    for (int32_t i = 0; i < size; i++)
    {
        /* TFLM: (float)((double)scale * (q - zp)). The double product of a float and a 9-bit integer is
         * exact, so rounding it to float once equals the correctly rounded float product computed here. */
        const float r = scale * (float)((int32_t)input[i] - zero_point);
        memcpy(dst + (size_t)i * sizeof(float), &r, sizeof(float));
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status resilinet_strided_slice_s8(const int8_t *input,
                                               int8_t *output,
                                               const resilinet_slice_params *params)
{
    if (input == NULL || output == NULL || params == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t *n = params->count;
    const int32_t *d = params->step;
    int8_t *out = output;
    for (int32_t i0 = 0; i0 < n[0]; i0++)
    {
        for (int32_t i1 = 0; i1 < n[1]; i1++)
        {
            for (int32_t i2 = 0; i2 < n[2]; i2++)
            {
                for (int32_t i3 = 0; i3 < n[3]; i3++)
                {
                    const int8_t *src = input + params->base + i0 * d[0] + i1 * d[1] + i2 * d[2] + i3 * d[3];
                    if (d[4] == 1)
                    {
                        memcpy(out, src, (size_t)n[4]); /* a contiguous innermost run */
                        out += n[4];
                        continue;
                    }
                    for (int32_t i4 = 0; i4 < n[4]; i4++)
                    {
                        *out++ = src[i4 * d[4]];
                    }
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
