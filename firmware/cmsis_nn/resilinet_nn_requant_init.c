/*
 * resilinet-mcu: set-up of the DSP fast requantization path (resilinet_nn_requant_fast in
 * arm_nnsupportfunctions.h): decides once per kernel call whether it is exact for every channel.
 * Internal support function, not CMSIS-NN API.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnsupportfunctions.h"

#if RESILINET_HAS_DSP
static inline int64_t abs_s64(int64_t v) { return v < 0 ? -v : v; }

void resilinet_nn_requant_init(resilinet_nn_requant_params *rq,
                               const int32_t *bias,
                               const int32_t *mult,
                               const int32_t *shift,
                               int32_t q_stride,
                               int32_t n_ch,
                               int32_t out_offset,
                               int32_t act_min,
                               int32_t act_max,
                               int32_t n_terms,
                               int32_t input_offset)
{
    rq->bias = bias;
    rq->mult = mult;
    rq->shift = shift;
    rq->q_stride = q_stride;
    rq->out_offset = out_offset;
    rq->act_min = act_min;
    rq->act_max = act_max;
    rq->full_range = act_min <= -128 && act_max >= 127;
    rq->c = 1 + 2 * out_offset;
    /* |acc| <= |bias| + n_terms * max|x + input_offset| * 128 must stay below 2^30. */
    const int64_t x_max = MAX(abs_s64((int64_t)input_offset - 128), abs_s64((int64_t)input_offset + 127));
    const int64_t limit = ((int64_t)1 << 30) - (int64_t)n_terms * x_max * 128;
    int32_t fast = out_offset >= -128 && out_offset <= 127 && limit > 1;
    const int32_t n_q = q_stride ? n_ch : 1;
    for (int32_t ch = 0; fast && ch < n_q; ch++)
    {
        fast = shift[ch] <= -1 && shift[ch] >= -31 && mult[ch] >= 0;
    }
    if (fast && bias != NULL)
    {
        /* b ^ (b >> 31) is |b| or |b| - 1; OR-ing them bounds the largest from above (up to one). */
        uint32_t m = 0;
        for (int32_t ch = 0; ch < n_ch; ch++)
        {
            m |= (uint32_t)(bias[ch] ^ (bias[ch] >> 31));
        }
        fast = (int64_t)m + 1 < limit;
    }
    rq->fast = fast;
}
#endif /* RESILINET_HAS_DSP */

#endif /* RESILINET_USE_CMSIS_NN */
