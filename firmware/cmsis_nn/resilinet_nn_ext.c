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

/* sigmoid(i / 24) in unsigned Q0.16, i = 0..255: the table TFLM's int16 Logistic and Tanh interpolate in
 * (the same values as CMSIS-NN's sigmoid_table_uint16; data, checked bit-exact against tflite_micro). */
static const uint16_t ext_sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535};

/* sigmoid of x (in 1/(3 * 2^12) units, TFLM's scaling): interpolation at Q9, result rounded to Q15. */
static int16_t ext_sigmoid_s16(int32_t x)
{
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t uh = ax >> 9;
    uint32_t result;
    if (uh >= 255)
    {
        result = 0x7FFFu << 10;
    }
    else
    {
        const uint32_t ua = ext_sigmoid_table[uh];
        const uint32_t ub = ext_sigmoid_table[uh + 1];
        result = (ua << 9) + (ax & 0x1ffu) * (ub - ua);
    }
    result = x >= 0 ? result + (1u << 9) : (1u << 25) - result + (1u << 9) - 1u;
    return (int16_t)(result >> 10);
}

/* tanh(x) = 2 sigmoid(2x) - 1: the same table read at Q8 (twice the argument), result in Q15. */
static int16_t ext_tanh_s16(int32_t x)
{
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t uh = ax >> 8;
    int32_t result;
    if (uh >= 255)
    {
        result = (int32_t)(0xFFFFu << 8);
    }
    else
    {
        const uint32_t ua = ext_sigmoid_table[uh];
        const uint32_t ub = ext_sigmoid_table[uh + 1];
        result = (int32_t)((ua << 8) + (ax & 0xffu) * (ub - ua));
    }
    result = x >= 0 ? result - (1 << 23) + (1 << 7) : -result + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(result >> 8);
}

arm_cmsis_nn_status resilinet_activation_s16(const int16_t *input,
                                             int16_t *output,
                                             const int32_t size,
                                             const int32_t multiplier,
                                             const int32_t left_shift,
                                             const resilinet_activation_s16_type type)
{
    if (input == NULL || output == NULL || left_shift < 0 || left_shift > 31)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    /* The power-of-two scale case multiplies by 3 << left_shift and shifts by 0 (TFLM). */
    const int32_t mult = multiplier == 0 ? 3 << left_shift : multiplier;
    const int32_t shift = multiplier == 0 ? 0 : left_shift;
    const int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
    for (int32_t i = 0; i < size; i++)
    {
        const int32_t x = (input[i] * mult + round) >> shift;
        output[i] = type == RESILINET_TANH ? ext_tanh_s16(x) : ext_sigmoid_s16(x);
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* One loop for the three type pairs: the element types are the only difference. */
#define EXT_REQUANTIZE_LOOP(OUT_T)                                                                             \
    if (input == NULL || output == NULL)                                                                       \
    {                                                                                                          \
        return ARM_CMSIS_NN_ARG_ERROR;                                                                         \
    }                                                                                                          \
    for (int32_t i = 0; i < size; i++)                                                                         \
    {                                                                                                          \
        const int32_t v = ext_requantize((int32_t)input[i] + input_offset, multiplier, shift) + output_offset; \
        output[i] = (OUT_T)ext_clamp(v, act_min, act_max);                                                     \
    }                                                                                                          \
    return ARM_CMSIS_NN_SUCCESS

arm_cmsis_nn_status resilinet_requantize_s16(const int16_t *input,
                                             int16_t *output,
                                             const int32_t size,
                                             const int32_t input_offset,
                                             const int32_t multiplier,
                                             const int32_t shift,
                                             const int32_t output_offset,
                                             const int32_t act_min,
                                             const int32_t act_max)
{
    EXT_REQUANTIZE_LOOP(int16_t);
}

arm_cmsis_nn_status resilinet_requantize_s8_s16(const int8_t *input,
                                                int16_t *output,
                                                const int32_t size,
                                                const int32_t input_offset,
                                                const int32_t multiplier,
                                                const int32_t shift,
                                                const int32_t output_offset,
                                                const int32_t act_min,
                                                const int32_t act_max)
{
    EXT_REQUANTIZE_LOOP(int16_t);
}

arm_cmsis_nn_status resilinet_requantize_s16_s8(const int16_t *input,
                                                int8_t *output,
                                                const int32_t size,
                                                const int32_t input_offset,
                                                const int32_t multiplier,
                                                const int32_t shift,
                                                const int32_t output_offset,
                                                const int32_t act_min,
                                                const int32_t act_max)
{
    EXT_REQUANTIZE_LOOP(int8_t);
}
