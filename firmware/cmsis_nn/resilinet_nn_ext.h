/*
 * resilinet-mcu: int8 kernels that TFLM has and CMSIS-NN does not, with TFLM's exact arithmetic.
 *
 * This file is not CMSIS-NN API: it only depends on the CMSIS-NN *types* (arm_nn_types.h), so it builds
 * unchanged next to Arm's CMSIS-NN (compile resilinet_nn_ext.c with -DRESILINET_USE_CMSIS_NN and the
 * CMSIS-NN include directory first on the include path).
 */
#ifndef RESILINET_NN_EXT_H
#define RESILINET_NN_EXT_H

#include <stdint.h>

/* Angle brackets on purpose: a quoted include would always find the arm_nn_types.h next to this file,
 * even when the build points -I at Arm's CMSIS-NN/Include to use Arm's library. */
#include <arm_nn_types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* TFLM's int8 MEAN (integer QuantizedMeanOrSum): out = requantize(sum - zp_in * count) + zp_out, with the
 * multiplier of s_in / s_out already divided by count on the host. TFLM uses this arithmetic even when
 * input and output share their quantization. */
typedef struct
{
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;
    int32_t shift;
} resilinet_mean_params;

/* Mean over the middle axis of an [outer, reduce, inner] view of the input; output is [outer, inner].
 * Input and output must not overlap. */
arm_cmsis_nn_status resilinet_mean_s8(const int8_t *input,
                                      const int32_t outer,
                                      const int32_t reduce,
                                      const int32_t inner,
                                      const resilinet_mean_params *params,
                                      int8_t *output);

/* out = clamp(requantize(x + input_offset, multiplier, shift) + output_offset, act_min, act_max).
 * Covers QUANTIZE (int8 -> int8), RELU (requantizing) and RELU6 (identity multiplier, clamp only).
 * output may alias input. */
arm_cmsis_nn_status resilinet_requantize_s8(const int8_t *input,
                                            int8_t *output,
                                            const int32_t size,
                                            const int32_t input_offset,
                                            const int32_t multiplier,
                                            const int32_t shift,
                                            const int32_t output_offset,
                                            const int32_t act_min,
                                            const int32_t act_max);

#ifdef __cplusplus
}
#endif

#endif /* RESILINET_NN_EXT_H */
