/*
 * resilinet-mcu: concatenation, pad and reshape (pure data movement, no arithmetic).
 *
 * Concatenation uses CMSIS-NN's [w][z][y][x] view (x innermost): the _x variant concatenates along the
 * innermost axis (NHWC channels), _w along the outermost.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

void arm_concatenation_s8_x(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_x,
                            const uint32_t offset_x)
{
    const uint32_t rows = (uint32_t)input_y * input_z * input_w;
    output += offset_x;
    for (uint32_t i = 0; i < rows; i++)
    {
        arm_memcpy_s8(output, input, input_x);
        input += input_x;
        output += output_x;
    }
}

void arm_concatenation_s8_y(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_y,
                            const uint32_t offset_y)
{
    const uint32_t blocks = (uint32_t)input_z * input_w;
    const uint32_t block = (uint32_t)input_x * input_y;
    const uint32_t out_stride = (uint32_t)input_x * output_y;
    output += offset_y * input_x;
    for (uint32_t i = 0; i < blocks; i++)
    {
        arm_memcpy_s8(output, input, block);
        input += block;
        output += out_stride;
    }
}

void arm_concatenation_s8_z(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_z,
                            const uint32_t offset_z)
{
    const uint32_t plane = (uint32_t)input_x * input_y;
    const uint32_t block = plane * input_z;
    const uint32_t out_stride = plane * output_z;
    output += offset_z * plane;
    for (uint32_t i = 0; i < input_w; i++)
    {
        arm_memcpy_s8(output, input, block);
        input += block;
        output += out_stride;
    }
}

void arm_concatenation_s8_w(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint32_t offset_w)
{
    const uint32_t volume = (uint32_t)input_x * input_y * input_z;
    arm_memcpy_s8(output + offset_w * volume, input, volume * input_w);
}

arm_cmsis_nn_status arm_pad_s8(const int8_t *input,
                               int8_t *output,
                               const int8_t pad_value,
                               const cmsis_nn_dims *input_size,
                               const cmsis_nn_dims *pre_pad,
                               const cmsis_nn_dims *post_pad)
{
    const int32_t out_h = pre_pad->h + input_size->h + post_pad->h;
    const int32_t out_w = pre_pad->w + input_size->w + post_pad->w;
    const int32_t out_c = pre_pad->c + input_size->c + post_pad->c;
    const int32_t batch_block = out_h * out_w * out_c;
    const int32_t row_block = out_w * out_c;

    arm_memset_s8(output, pad_value, (uint32_t)(batch_block * pre_pad->n));
    output += batch_block * pre_pad->n;
    for (int32_t b = 0; b < input_size->n; b++)
    {
        arm_memset_s8(output, pad_value, (uint32_t)(row_block * pre_pad->h));
        output += row_block * pre_pad->h;
        for (int32_t y = 0; y < input_size->h; y++)
        {
            arm_memset_s8(output, pad_value, (uint32_t)(out_c * pre_pad->w));
            output += out_c * pre_pad->w;
            for (int32_t x = 0; x < input_size->w; x++)
            {
                arm_memset_s8(output, pad_value, (uint32_t)pre_pad->c);
                output += pre_pad->c;
                arm_memcpy_s8(output, input, (uint32_t)input_size->c);
                output += input_size->c;
                input += input_size->c;
                arm_memset_s8(output, pad_value, (uint32_t)post_pad->c);
                output += post_pad->c;
            }
            arm_memset_s8(output, pad_value, (uint32_t)(out_c * post_pad->w));
            output += out_c * post_pad->w;
        }
        arm_memset_s8(output, pad_value, (uint32_t)(row_block * post_pad->h));
        output += row_block * post_pad->h;
    }
    arm_memset_s8(output, pad_value, (uint32_t)(batch_block * post_pad->n));
    return ARM_CMSIS_NN_SUCCESS;
}

void arm_reshape_s8(const int8_t *input, int8_t *output, const uint32_t total_size)
{
    /* memmove: a reshape may be asked to copy within one buffer. */
    memmove(output, input, total_size);
}

#endif /* RESILINET_USE_CMSIS_NN */
