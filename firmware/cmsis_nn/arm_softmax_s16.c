/*
 * resilinet-mcu: int16 softmax (TFLM reference SoftmaxInt16, which CMSIS-NN's arm_softmax_s16 matches).
 *
 * Per row: d = x - max is rescaled so that [-65535, 0] spans [-10, 0], looked up in the exp LUT; the sum
 * of the exps is normalised (count leading zeros), its reciprocal looked up in the 1/(1+x) LUT, and each
 * exp scaled by it. Both LUTs (513 entries, the 513th only for the last slope) are computed on the host
 * exactly as TFLM's Prepare() fills them (codegen/ops/int16_elementwise.py). Output scale 1/32768, zp 0.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* Interpolated lookup: the top 9 bits of the (biased) value pick the entry, the low 7 the slope fraction. */
static inline int16_t lut_s16(int16_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7);
    const int32_t offset = value & 0x7f;
    const int32_t base = lut[index];
    const int32_t slope = (int16_t)(lut[index + 1] - lut[index]);
    const int32_t delta = (slope * offset + 64) >> 7;
    return (int16_t)(base + delta);
}

static inline int32_t clz_u32(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return x == 0 ? 32 : __builtin_clz(x);
#else
    int32_t n = 0;
    while (n < 32 && !(x & 0x80000000u))
    {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

arm_cmsis_nn_status arm_softmax_s16(const int16_t *input,
                                    const int32_t num_rows,
                                    const int32_t row_size,
                                    const int32_t mult,
                                    const int32_t shift,
                                    const cmsis_nn_softmax_lut_s16 *softmax_params,
                                    int16_t *output)
{
    if (softmax_params == NULL || softmax_params->exp_lut == NULL || softmax_params->one_by_one_lut == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t r = 0; r < num_rows; r++)
    {
        const int16_t *in = input + r * row_size;
        int16_t *out = output + r * row_size;
        int32_t max = -32768;
        for (int32_t c = 0; c < row_size; c++)
        {
            max = MAX(max, in[c]);
        }
        /* The exps are cached in the output row (as TFLM does) and rescaled in place below. */
        int32_t sum = 0;
        for (int32_t c = 0; c < row_size; c++)
        {
            const int32_t scaled = arm_nn_requantize(in[c] - max, mult, shift) + 32767;
            out[c] = lut_s16((int16_t)CLAMP(scaled, 32767, -32768), softmax_params->exp_lut);
            sum += out[c];
        }
        const int32_t headroom_plus_one = clz_u32((uint32_t)sum);
        const int32_t shifted = (int32_t)((((int64_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        const int32_t sym = shifted - ((1 << 15) + (1 << 16));
        const int32_t recip = lut_s16((int16_t)CLAMP(sym, 32767, -32768), softmax_params->one_by_one_lut);
        const int32_t right_shift = 31 - headroom_plus_one;
        const int64_t round = (int64_t)1 << (right_shift - 1);
        for (int32_t c = 0; c < row_size; c++)
        {
            const int32_t v = (int32_t)(((int64_t)out[c] * recip + round) >> right_shift);
            out[c] = (int16_t)CLAMP(v, 32767, 0);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
