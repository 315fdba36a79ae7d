/*
 * resilinet-mcu: our own implementation of the CMSIS-NN int8 API subset.
 *
 * Type definitions with the same names, members and member order as CMSIS-NN's
 * arm_nn_types.h, so that code written against this header also compiles (and
 * behaves identically) against Arm's library.
 */
#ifndef ARM_NN_TYPES_H
#define ARM_NN_TYPES_H

#ifdef RESILINET_USE_CMSIS_NN
#error "RESILINET_USE_CMSIS_NN is set but firmware/cmsis_nn is ahead of CMSIS-NN/Include on the include path"
#endif

#include <stdint.h>

typedef enum
{
    ARM_CMSIS_NN_SUCCESS = 0,
    ARM_CMSIS_NN_ARG_ERROR = -1,
    ARM_CMSIS_NN_NO_IMPL_ERROR = -2,
    ARM_CMSIS_NN_FAILURE = -3,
} arm_cmsis_nn_status;

typedef struct
{
    int32_t w;
    int32_t h;
} cmsis_nn_tile;

/* Scratch memory handed to a kernel; sized with the matching *_get_buffer_size(). */
typedef struct
{
    void *buf;
    int32_t size;
} cmsis_nn_context;

/* NHWC; for filters n is the number of output channels (or the accumulation depth for FC). */
typedef struct
{
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} cmsis_nn_dims;

typedef struct
{
    int32_t *multiplier;
    int32_t *shift;
} cmsis_nn_per_channel_quant_params;

typedef struct
{
    int32_t multiplier;
    int32_t shift;
} cmsis_nn_per_tensor_quant_params;

typedef struct
{
    int32_t *multiplier;
    int32_t *shift;
    int32_t is_per_channel;
} cmsis_nn_quant_params;

typedef struct
{
    int32_t min;
    int32_t max;
} cmsis_nn_activation;

typedef struct
{
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* +output zero point */
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_conv_params;

typedef struct
{
    int32_t input_offset;
    int32_t output_offset;
    int32_t ch_mult; /* ch_mult * in_ch == out_ch */
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_dw_conv_params;

typedef struct
{
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_activation activation;
} cmsis_nn_pool_params;

typedef struct
{
    int32_t input_offset;
    int32_t filter_offset; /* must be 0: int8 weights are symmetric */
    int32_t output_offset;
    cmsis_nn_activation activation;
} cmsis_nn_fc_params;

#endif /* ARM_NN_TYPES_H */
