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

/* 16x8 activations (TFLM reference_integer_ops::Logistic / Tanh for int16): the input is rescaled to
 * 1/(3 * 4096) units (x * multiplier, rounding shift right by left_shift; multiplier 0 means the
 * power-of-two case 3 << left_shift), then interpolated in the 256-entry sigmoid table; tanh uses
 * tanh(x) = 2 * sigmoid(2x) - 1. Output scale 1/32768, zero points 0. output may alias input. */
typedef enum
{
    RESILINET_SIGMOID = 0,
    RESILINET_TANH = 1
} resilinet_activation_s16_type;

arm_cmsis_nn_status resilinet_activation_s16(const int16_t *input,
                                             int16_t *output,
                                             const int32_t size,
                                             const int32_t multiplier,
                                             const int32_t left_shift,
                                             const resilinet_activation_s16_type type);

/* resilinet_requantize_s8's arithmetic between int16 and int8 / int16 tensors (QUANTIZE int8 <-> int16,
 * int16 -> int16, RELU / RELU6 on int16): out = clamp(requantize(x + input_offset) + output_offset). */
arm_cmsis_nn_status resilinet_requantize_s16(const int16_t *input,
                                             int16_t *output,
                                             const int32_t size,
                                             const int32_t input_offset,
                                             const int32_t multiplier,
                                             const int32_t shift,
                                             const int32_t output_offset,
                                             const int32_t act_min,
                                             const int32_t act_max);
arm_cmsis_nn_status resilinet_requantize_s8_s16(const int8_t *input,
                                                int16_t *output,
                                                const int32_t size,
                                                const int32_t input_offset,
                                                const int32_t multiplier,
                                                const int32_t shift,
                                                const int32_t output_offset,
                                                const int32_t act_min,
                                                const int32_t act_max);
arm_cmsis_nn_status resilinet_requantize_s16_s8(const int16_t *input,
                                                int8_t *output,
                                                const int32_t size,
                                                const int32_t input_offset,
                                                const int32_t multiplier,
                                                const int32_t shift,
                                                const int32_t output_offset,
                                                const int32_t act_min,
                                                const int32_t act_max);

/* ---- resilinet_nn_ext_basic.c: LOGISTIC / TANH / HARD_SWISH / LEAKY_RELU, SUB, float I/O, STRIDED_SLICE ---- */

/* out[i] = table[in[i] + 128]. Any int8 -> int8 function of one element: the code generator fills the 256
 * entries with TFLM's reference arithmetic for the op (LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU).
 * output may alias input. */
arm_cmsis_nn_status resilinet_lut_s8(const int8_t *input, int8_t *output, const int32_t size, const int8_t *table);

/* TFLM's int8 SUB (reference SubElementwise), with the parameters of arm_elementwise_add_s8 (TFLM computes
 * them the same way for SUB and ADD): out = clamp(requant(a' - b', out) + out_offset), where
 * a' = requant((a + input_1_offset) << left_shift, input_1), b' likewise. output may alias an input. */
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
                                                 const int32_t block_size);

/* QUANTIZE float32 -> int8 (a model's float input): out = clamp(round(x / scale) + zero_point), round
 * half away from zero, as TFLM's AffineQuantize. input holds size floats, any alignment. */
arm_cmsis_nn_status resilinet_quantize_f32_s8(const void *input,
                                              int8_t *output,
                                              const int32_t size,
                                              const float scale,
                                              const int32_t zero_point);

/* DEQUANTIZE int8 -> float32 (a model's float output): out = scale * (q - zero_point), as TFLM's
 * Dequantize. output receives size floats, any alignment. */
arm_cmsis_nn_status resilinet_dequantize_s8_f32(const int8_t *input,
                                                void *output,
                                                const int32_t size,
                                                const float scale,
                                                const int32_t zero_point);

/* STRIDED_SLICE, as five nested loops computed on the host: output element (i0..i4), in order, is
 * input[base + sum(i_k * step[k])] for i_k < count[k] (steps in elements, possibly negative). */
typedef struct
{
    int32_t base;
    int32_t count[5];
    int32_t step[5];
} resilinet_slice_params;

arm_cmsis_nn_status resilinet_strided_slice_s8(const int8_t *input,
                                               int8_t *output,
                                               const resilinet_slice_params *params);

#ifdef __cplusplus
}
#endif

#endif /* RESILINET_NN_EXT_H */
