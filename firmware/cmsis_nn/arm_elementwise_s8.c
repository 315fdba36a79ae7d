/*
 * resilinet-mcu: int8 elementwise add and multiply (TFLM reference_integer_ops::Add / Mul arithmetic).
 *
 * Each output element depends only on the input elements at the same index and is written after they
 * are read, so the output may alias either input (the generated code uses that for in-place ops).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if RESILINET_HAS_DSP
/* Input rescaling of the add with left shift L (9 <= L <= 20) and a right shift e = -shift >= 0:
 *   HM((x + o) << L, m) = floor(((x + o) * m + 2^(30-L)) / 2^(31-L))
 *                       = (x + o) * mh + floor(((x + o) * ml + 2^(30-L)) / 2^(31-L))
 * with m = mh * 2^(31-L) + ml, so the 64-bit product splits into two 32-bit multiply-accumulates
 * (x * mh + k1, x * ml + k2; |x + o| <= 384 keeps both in range), then RoundingDivideByPOT(., e), e >= 0. */
typedef struct
{
    int32_t mh, k1, ml, k2, e1;
} add_in_t;

static int32_t add_in_init(add_in_t *a, int32_t offset, int32_t mult, int32_t shift, int32_t left_shift)
{
    const int32_t low = 31 - left_shift;
    a->mh = mult >> low;
    a->ml = mult & ((1 << low) - 1);
    a->k1 = offset * a->mh;
    a->k2 = offset * a->ml + (1 << (low - 1));
    a->e1 = -shift - 1;
    return mult >= 0 && shift <= 0 && shift >= -31 && offset >= -256 && offset <= 256;
}

/* shift0: the input's shift is 0 (no division; TFLM's recipe gives that to the input of larger scale). */
static inline int32_t add_in(const add_in_t *a, int32_t x, int32_t low, const int32_t shift0)
{
    const int32_t hm = x * a->mh + a->k1 + ((x * a->ml + a->k2) >> low);
    if (shift0)
    {
        return hm;
    }
    const int32_t t = (hm + (hm >> 31)) >> a->e1;
    return (t + 1) >> 1;
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void add_loop(const int8_t *x1,
                            const int8_t *x2,
                            const add_in_t *in1,
                            const add_in_t *in2,
                            const int32_t shift0_1,
                            const int32_t shift0_2,
                            int32_t low,
                            int32_t out_mult,
                            int32_t e_out,
                            int32_t c,
                            int32_t act_min,
                            int32_t act_max,
                            int8_t *out,
                            int32_t n)
{
    const int32_t full = act_min <= -128 && act_max >= 127;
    for (int32_t i = 0; i < n; i++)
    {
        const int32_t a = add_in(in1, x1[i], low, shift0_1);
        const int32_t b = add_in(in2, x2[i], low, shift0_2);
        int32_t v = resilinet_nn_requant_fast(a + b, out_mult, e_out, c);
        if (!full)
        {
            v = MAX(v, act_min);
            v = MIN(v, act_max);
        }
        out[i] = (int8_t)v;
    }
}

/* Long vectors: each input's rescaling depends only on its int8 value, so it is tabulated once per call (256
 * entries per input, 2 KB of stack, doubled so that their sum is SMMULR's 2 * acc); per element then two loads
 * of inputs, two table loads, the add and the output requantization (~12 instructions instead of ~34). */
#define ADD_TABLE_MIN 512

static void add_table(int32_t *t, const add_in_t *a, int32_t low, int32_t shift0)
{
    /* Indexed by the input's byte as unsigned (one LDRB + one LDR with LSL #2 per lookup). */
    for (int32_t u = 0; u < 256; u++)
    {
        const int32_t x = u < 128 ? u : u - 256;
        t[u] = 2 * (shift0 ? add_in(a, x, low, 1) : add_in(a, x, low, 0));
    }
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void add_table_loop(const int8_t *x1,
                                  const int8_t *x2,
                                  const int32_t *t1,
                                  const int32_t *t2,
                                  int32_t out_mult,
                                  int32_t e_out,
                                  int32_t c,
                                  int32_t act_min,
                                  int32_t act_max,
                                  const int32_t full,
                                  int8_t *out,
                                  int32_t n)
{
    const uint8_t *u1 = (const uint8_t *)x1;
    const uint8_t *u2 = (const uint8_t *)x2;
#if defined(__GNUC__)
    /* Keep the stack table's address in a register (GCC otherwise recomputes it from SP every element). */
    __asm__("" : "+r"(t1));
#endif
    for (int32_t i = 0; i < n; i++)
    {
        const int32_t hm = resilinet_smmulr(t1[u1[i]] + t2[u2[i]], out_mult);
        int32_t v = resilinet_ssat8_asr1(((hm + (hm >> 31)) >> e_out) + c);
        if (!full)
        {
            v = MAX(v, act_min);
            v = MIN(v, act_max);
        }
        out[i] = (int8_t)v;
    }
}

/* Kept out of line: the loop then has the registers to itself. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void add_tabulated(const int8_t *x1,
                          const int8_t *x2,
                          const add_in_t *in1,
                          const add_in_t *in2,
                          int32_t z1,
                          int32_t z2,
                          int32_t low,
                          int32_t out_mult,
                          int32_t e_out,
                          int32_t c,
                          int32_t act_min,
                          int32_t act_max,
                          int8_t *out,
                          int32_t n)
{
    int32_t t1[256], t2[256];
    add_table(t1, in1, low, z1);
    add_table(t2, in2, low, z2);
    if (act_min <= -128 && act_max >= 127)
    {
        add_table_loop(x1, x2, t1, t2, out_mult, e_out, c, -128, 127, 1, out, n);
    }
    else
    {
        add_table_loop(x1, x2, t1, t2, out_mult, e_out, c, act_min, act_max, 0, out, n);
    }
}
#endif

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
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
#if RESILINET_HAS_DSP
    if (left_shift >= 9 && left_shift <= 20)
    {
        add_in_t in1, in2;
        const int32_t ok1 = add_in_init(&in1, input_1_offset, input_1_mult, input_1_shift, left_shift);
        const int32_t ok2 = add_in_init(&in2, input_2_offset, input_2_mult, input_2_shift, left_shift);
        /* |a|, |b| <= 384 * 2^20, so |a + b| < 2^30 and resilinet_nn_requant_fast applies to the output step. */
        if (ok1 && ok2 && out_mult >= 0 && out_shift <= -1 && out_shift >= -31 && out_offset >= -128 &&
            out_offset <= 127)
        {
            const int32_t low = 31 - left_shift;
            const int32_t e_out = ~out_shift;
            const int32_t c = 1 + 2 * out_offset;
            const int32_t z1 = input_1_shift == 0, z2 = input_2_shift == 0;
            if (block_size >= ADD_TABLE_MIN)
            {
                add_tabulated(input_1_vect, input_2_vect, &in1, &in2, z1, z2, low, out_mult, e_out, c,
                              out_activation_min, out_activation_max, output, block_size);
            }
            else if (!z1 && z2)
            {
                add_loop(input_1_vect, input_2_vect, &in1, &in2, 0, 1, low, out_mult, e_out, c, out_activation_min,
                         out_activation_max, output, block_size);
            }
            else if (z1 && !z2)
            {
                add_loop(input_1_vect, input_2_vect, &in1, &in2, 1, 0, low, out_mult, e_out, c, out_activation_min,
                         out_activation_max, output, block_size);
            }
            else if (!z1 && !z2)
            {
                add_loop(input_1_vect, input_2_vect, &in1, &in2, 0, 0, low, out_mult, e_out, c, out_activation_min,
                         out_activation_max, output, block_size);
            }
            else
            {
                add_loop(input_1_vect, input_2_vect, &in1, &in2, 1, 1, low, out_mult, e_out, c, out_activation_min,
                         out_activation_max, output, block_size);
            }
            return ARM_CMSIS_NN_SUCCESS;
        }
    }
#endif
    for (int32_t i = 0; i < block_size; i++)
    {
        /* Rescale both inputs to a common scale with 20 extra bits of headroom, add, rescale. */
        const int32_t a = arm_nn_requantize(((int32_t)input_1_vect[i] + input_1_offset) * (1 << left_shift),
                                            input_1_mult, input_1_shift);
        const int32_t b = arm_nn_requantize(((int32_t)input_2_vect[i] + input_2_offset) * (1 << left_shift),
                                            input_2_mult, input_2_shift);
        int32_t sum = arm_nn_requantize(a + b, out_mult, out_shift) + out_offset;
        sum = MAX(sum, out_activation_min);
        sum = MIN(sum, out_activation_max);
        output[i] = (int8_t)sum;
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_2_offset,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
#if RESILINET_HAS_DSP
    /* |prod| <= 256 * 256 < 2^30: the fast requantization is exact when the shift is a right shift. */
    if (out_mult >= 0 && out_shift <= -1 && out_shift >= -31 && out_offset >= -128 && out_offset <= 127 &&
        input_1_offset >= -255 && input_1_offset <= 255 && input_2_offset >= -255 && input_2_offset <= 255)
    {
        const int32_t e_out = ~out_shift;
        const int32_t c = 1 + 2 * out_offset;
        for (int32_t i = 0; i < block_size; i++)
        {
            const int32_t prod =
                ((int32_t)input_1_vect[i] + input_1_offset) * ((int32_t)input_2_vect[i] + input_2_offset);
            int32_t v = resilinet_nn_requant_fast(prod, out_mult, e_out, c);
            v = MAX(v, out_activation_min);
            v = MIN(v, out_activation_max);
            output[i] = (int8_t)v;
        }
        return ARM_CMSIS_NN_SUCCESS;
    }
#endif
    for (int32_t i = 0; i < block_size; i++)
    {
        const int32_t prod = ((int32_t)input_1_vect[i] + input_1_offset) * ((int32_t)input_2_vect[i] + input_2_offset);
        int32_t v = arm_nn_requantize(prod, out_mult, out_shift) + out_offset;
        v = MAX(v, out_activation_min);
        v = MIN(v, out_activation_max);
        output[i] = (int8_t)v;
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
