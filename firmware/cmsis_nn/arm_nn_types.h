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

#include <stdbool.h>
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

/* TRANSPOSE: output axis k is input axis permutations[k] (num_dims 1..4). */
typedef struct
{
    int32_t num_dims;
    const uint32_t *permutations;
} cmsis_nn_transpose_params;

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

/* TRANSPOSE_CONV (CMSIS-NN v7+). padding_offsets and dilation are carried for API compatibility: TFLM's
 * reference kernel uses neither (dilation is always 1), so our kernel ignores them too. */
typedef struct
{
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* +output zero point */
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_tile padding_offsets;
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_transpose_conv_params;

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

/* ---- recurrent ops (LSTM, SVDF): CMSIS-NN's structs, member for member. */

/* Non-linearity of an LSTM gate (and of CMSIS-NN's int16 activation). */
typedef enum
{
    ARM_SIGMOID = 0,
    ARM_TANH = 1,
} arm_nn_activation_type;

/* One LSTM gate: int8 weights against the input and the hidden state, each with its own requantization to
 * the Q3.12 gate input; the effective biases fold the zero points in (bias - zp_x * sum(W_x), -zp_h * sum(W_h)). */
typedef struct
{
    int32_t input_multiplier;
    int32_t input_shift;
    const void *input_weights;
    const void *input_effective_bias;
    int32_t hidden_multiplier;
    int32_t hidden_shift;
    const void *hidden_weights;
    const void *hidden_effective_bias;
    const void *bias; /* the plain gate bias (int16 LSTM only; NULL for int8) */
    arm_nn_activation_type activation_type;
} cmsis_nn_lstm_gate;

typedef struct
{
    int32_t time_major; /* 0: input [batch, time, size]; else [time, batch, size] */
    int32_t batch_size;
    int32_t time_steps;
    int32_t input_size;
    int32_t hidden_size;
    int32_t input_offset;
    int32_t forget_to_cell_multiplier;
    int32_t forget_to_cell_shift;
    int32_t input_to_cell_multiplier;
    int32_t input_to_cell_shift;
    int32_t cell_clip;        /* quantized |cell| bound; 0: no clipping */
    int32_t cell_scale_power; /* cell state scale = 2^cell_scale_power */
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t output_offset;
    cmsis_nn_lstm_gate forget_gate;
    cmsis_nn_lstm_gate input_gate;
    cmsis_nn_lstm_gate cell_gate;
    cmsis_nn_lstm_gate output_gate;
} cmsis_nn_lstm_params;

/* temp1 / temp2: batch * hidden int16 each. cell_state: batch * hidden int16. hidden_state (CMSIS-NN v8):
 * NULL = start from a zero state; else batch * hidden int8 carried from call to call with cell_state. */
typedef struct
{
    void *temp1;
    void *temp2;
    void *cell_state;
    void *hidden_state;
} cmsis_nn_lstm_context;

/* SVDF: input_offset / output_offset are the input's and output's zero points (not their negatives); the
 * activation state's zero point is 0. input_activation clamps the state, output_activation the output. */
typedef struct
{
    int32_t rank;
    int32_t input_offset;
    int32_t output_offset;
    cmsis_nn_activation input_activation;
    cmsis_nn_activation output_activation;
} cmsis_nn_svdf_params;

/* Bias of the 16x8 convolution (CMSIS-NN v7+): int64 (the converter's default) or int32 values. */
typedef struct
{
    const void *data;
    const bool is_int32_bias;
} cmsis_nn_bias_data;

/* arm_softmax_s16: the two 513-entry LUTs TFLM's Prepare() fills (exp on [-10, 0], 1/(1+x) on [0, 1]). */
typedef struct
{
    const int16_t *exp_lut;
    const int16_t *one_by_one_lut;
} cmsis_nn_softmax_lut_s16;

#endif /* ARM_NN_TYPES_H */
