/*
 * arm_transpose_s8: TRANSPOSE of an int8 tensor of rank 1..4 (CMSIS-NN v7 API, TFLM's cmsis_nn TRANSPOSE).
 *
 * Walks the output in order and reads the input at the permuted strides, so each output byte is written
 * once; the innermost loop is a strided gather. Pure data movement: the result is the same whatever the
 * loop order, so it is byte-identical to TFLM's reference transpose.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"

arm_cmsis_nn_status arm_transpose_s8(const int8_t *input,
                                     int8_t *const output,
                                     const cmsis_nn_dims *const input_dims,
                                     const cmsis_nn_dims *const output_dims,
                                     const cmsis_nn_transpose_params *const transpose_params)
{
    (void)output_dims; /* implied by the input shape and the permutation */
    const int32_t rank = transpose_params->num_dims;
    if (rank < 1 || rank > 4)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    /* The shape fills the dims from n on (CMSIS-NN's convention for ranks below 4). */
    const int32_t in_shape[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    int32_t in_stride[4];
    int32_t stride = 1;
    for (int32_t k = rank - 1; k >= 0; k--)
    {
        in_stride[k] = stride;
        stride *= in_shape[k];
    }
    /* Output axis k (padded in front to four axes of size 1) runs over input axis perm[k]. */
    int32_t count[4] = {1, 1, 1, 1};
    int32_t step[4] = {0, 0, 0, 0};
    for (int32_t k = 0; k < rank; k++)
    {
        const uint32_t axis = transpose_params->permutations[k];
        if (axis >= (uint32_t)rank)
        {
            return ARM_CMSIS_NN_ARG_ERROR;
        }
        count[4 - rank + k] = in_shape[axis];
        step[4 - rank + k] = in_stride[axis];
    }
    int8_t *out = output;
    for (int32_t a = 0; a < count[0]; a++)
    {
        for (int32_t b = 0; b < count[1]; b++)
        {
            for (int32_t c = 0; c < count[2]; c++)
            {
                const int8_t *src = input + a * step[0] + b * step[1] + c * step[2];
                for (int32_t d = 0; d < count[3]; d++)
                {
                    *out++ = src[d * step[3]];
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
