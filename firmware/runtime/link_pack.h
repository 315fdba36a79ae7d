/* Packed link tensors (docs/protocol.md, "Packed tensors"): 4- or 2-bit codes on the wire.
 *
 * A link with `bits` = 4 or 2 carries each int8 value q as c = clamp(q - lo, 0, 2^bits - 1), 8 / bits codes
 * per byte, value i in byte i / per at bit (i % per) * bits (the first value in the lowest bits); a last
 * partial byte is padded with zero bits.  The receiver gets q = lo + c.  bits = 8 (or 0, a configuration
 * written before packing existed) is the plain int8 tensor.  host/net/link_pack.py is the host's twin; both
 * are checked against tests/vectors/link_pack_vectors.json. */
#ifndef LINK_PACK_H
#define LINK_PACK_H

#include <stddef.h>
#include <stdint.h>

/* 1 if `bits` is a width a link may use (0, 2, 4, 8; 0 means 8). */
int link_pack_bits_ok(uint8_t bits);

/* Bytes on the wire of `n` values at `bits` each. */
size_t link_packed_bytes(size_t n, uint8_t bits);

/* Packs `n` int8 values into link_packed_bytes(n, bits) bytes at `dst`, clamping each into the code space.
 * `dst` may be `src` itself (packing in place only ever writes behind what it reads). */
void link_pack(const int8_t *src, uint8_t *dst, size_t n, uint8_t bits, int8_t lo);

/* Unpacks link_packed_bytes(n, bits) bytes at `src` into `n` int8 values lo + c at `dst` (not overlapping). */
void link_unpack(const uint8_t *src, int8_t *dst, size_t n, uint8_t bits, int8_t lo);

#endif /* LINK_PACK_H */
