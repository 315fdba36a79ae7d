/*
 * resilinet-mcu: feature macros and limits, named as in CMSIS-NN's arm_nn_math_types.h.
 */
#ifndef ARM_NN_MATH_TYPES_H
#define ARM_NN_MATH_TYPES_H

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Same feature-flag translation as CMSIS: the compiler tells us whether the core has the DSP extension. */
#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#ifndef ARM_MATH_DSP
#define ARM_MATH_DSP 1
#endif
#endif

#define NN_Q31_MAX ((int32_t)(0x7FFFFFFFL))
#define NN_Q15_MAX ((int16_t)(0x7FFF))
#define NN_Q7_MAX ((int8_t)(0x7F))
#define NN_Q31_MIN ((int32_t)(0x80000000L))
#define NN_Q15_MIN ((int16_t)(0x8000))
#define NN_Q7_MIN ((int8_t)(0x80))

#endif /* ARM_NN_MATH_TYPES_H */
