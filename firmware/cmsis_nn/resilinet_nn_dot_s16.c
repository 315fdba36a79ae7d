/*
 * resilinet-mcu: the inner product of the 16x8 kernels (int8 weights against int16 activations, both
 * contiguous), exact in 64 bits. Internal support function, not CMSIS-NN API: see arm_nnsupportfunctions.h.
 *
 * Partial sums of at most 256 products (|w x| <= 2^22, so |sum| <= 2^30) are exact in 32 bits and are
 * widened once per block. On DSP cores four products per iteration: SXTB16 widens weight bytes 0,2 and
 * (rotated) 1,3 to 16-bit lanes, PKHBT / PKHTB pair the activations the same way, two SMLADs accumulate.
 * Integer sums are exact, so the portable loop (other order) returns the same value.
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnsupportfunctions.h"

int64_t resilinet_nn_dot_s8_s16_wide(const int8_t *w, const int16_t *x, int32_t n)
{
    int64_t acc = 0;
    while (n > 0)
    {
        const int32_t block = n < 256 ? n : 256;
        int32_t part = 0;
        int32_t i = 0;
#if RESILINET_HAS_DSP
        for (; i + 4 <= block; i += 4)
        {
            const uint32_t wv = resilinet_read_u32(w + i);
            const uint32_t xa = resilinet_read_u32(x + i);     /* x0 | x1 << 16 */
            const uint32_t xb = resilinet_read_u32(x + i + 2); /* x2 | x3 << 16 */
            part = resilinet_smlad(resilinet_sxtb16(wv), resilinet_pkhbt16(xa, xb), part);        /* w0 x0 + w2 x2 */
            part = resilinet_smlad(resilinet_sxtb16_ror8(wv), resilinet_pkhtb16(xb, xa), part);   /* w1 x1 + w3 x3 */
        }
#endif
        for (; i < block; i++)
        {
            part += (int32_t)w[i] * (int32_t)x[i];
        }
        acc += part;
        w += block;
        x += block;
        n -= block;
    }
    return acc;
}

#endif /* RESILINET_USE_CMSIS_NN */
