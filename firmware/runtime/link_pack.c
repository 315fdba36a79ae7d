/* Packing and unpacking of low-bit link tensors (see link_pack.h). */
#include "link_pack.h"

int link_pack_bits_ok(uint8_t bits)
{
    return bits == 0u || bits == 2u || bits == 4u || bits == 8u;
}

size_t link_packed_bytes(size_t n, uint8_t bits)
{
    if (bits == 0u || bits >= 8u) {
        return n;
    }
    return (n * bits + 7u) / 8u;
}

void link_pack(const int8_t *src, uint8_t *dst, size_t n, uint8_t bits, int8_t lo)
{
    if (bits == 0u || bits >= 8u) {
        for (size_t i = 0; i < n && (const void *)src != (void *)dst; i++) {
            dst[i] = (uint8_t)src[i];
        }
        return;
    }
    const int32_t top = (int32_t)(1u << bits) - 1;
    const size_t per = 8u / bits;
    uint8_t acc = 0u;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = (int32_t)src[i] - (int32_t)lo;
        c = c < 0 ? 0 : (c > top ? top : c);
        acc |= (uint8_t)((uint32_t)c << (k * bits));
        if (++k == per) {
            /* byte i / per is written after value i was read: in place is safe */
            dst[i / per] = acc;
            acc = 0u;
            k = 0;
        }
    }
    if (k != 0u) {
        dst[n / per] = acc;
    }
}

void link_unpack(const uint8_t *src, int8_t *dst, size_t n, uint8_t bits, int8_t lo)
{
    if (bits == 0u || bits >= 8u) {
        for (size_t i = 0; i < n; i++) {
            dst[i] = (int8_t)src[i];
        }
        return;
    }
    const uint32_t mask = (1u << bits) - 1u;
    const size_t per = 8u / bits;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = ((uint32_t)src[i / per] >> ((i % per) * bits)) & mask;
        dst[i] = (int8_t)((int32_t)lo + (int32_t)c);
    }
}
