/*
 * resilinet-mcu: the few Armv7E-M DSP (SIMD32) operations our kernels use, behind one set of names.
 *
 * - On a core with the DSP extension (__ARM_FEATURE_DSP, e.g. Cortex-M4/M7/M33) they map to the ACLE
 *   intrinsics from <arm_acle.h>, i.e. single SXTB16 / SXTAB16 / SMLAD / SMLABB / SMLATT instructions
 *   (SMMULR, SSAT with a shifted operand and the ROR #8 operand of SXTB16/SXTAB16, which ACLE lacks,
 *   through one-instruction asm statements).
 * - With -DRESILINET_EMULATE_DSP (host builds for testing) they are plain C with the exact instruction
 *   semantics, so the SIMD code path of every kernel can be checked bit-exact on the host.
 * - Otherwise RESILINET_HAS_DSP is 0 and the kernels take their portable C path.
 *
 * Both paths must produce identical bytes: they only regroup exact int32 sums.
 */
#ifndef RESILINET_DSP_H
#define RESILINET_DSP_H

#include <stdint.h>
#include <string.h>

#include "arm_nn_math_types.h"

#if defined(RESILINET_EMULATE_DSP)

#define RESILINET_HAS_DSP 1

/* Lane helpers: a 32-bit word holding two signed 16-bit lanes (lo = bits 0..15, hi = bits 16..31). */
static inline int32_t resilinet_lo16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x & 0xFFFFu); }
static inline int32_t resilinet_hi16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x >> 16); }
static inline uint32_t resilinet_pack16(int32_t lo, int32_t hi)
{
    return ((uint32_t)(uint16_t)lo) | ((uint32_t)(uint16_t)hi << 16);
}

/* SXTB16: sign-extend bytes 0 and 2 into the two halfword lanes. */
static inline uint32_t resilinet_sxtb16(uint32_t x)
{
    return resilinet_pack16((int8_t)(x & 0xFFu), (int8_t)((x >> 16) & 0xFFu));
}

/* SXTAB16: lane-wise a + sign-extended bytes 0 and 2 of x, each lane wrapping at 16 bits. */
static inline uint32_t resilinet_sxtab16(uint32_t a, uint32_t x)
{
    return resilinet_pack16(resilinet_lo16(a) + (int8_t)(x & 0xFFu), resilinet_hi16(a) + (int8_t)((x >> 16) & 0xFFu));
}

/* SMLAD: acc + lo*lo + hi*hi, wrapping at 32 bits (the Q flag is not modelled: nothing reads it). */
static inline int32_t resilinet_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    const uint32_t sum = (uint32_t)acc + (uint32_t)(resilinet_lo16(a) * resilinet_lo16(b)) +
                         (uint32_t)(resilinet_hi16(a) * resilinet_hi16(b));
    return (int32_t)sum;
}

/* SMLABB / SMLATT: one 16x16 product of the bottom (top) lanes added to acc. */
static inline int32_t resilinet_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(resilinet_lo16(a) * resilinet_lo16(b)));
}
static inline int32_t resilinet_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(resilinet_hi16(a) * resilinet_hi16(b)));
}
/* SMLABT / SMLATB: bottom lane of a times top lane of b (top of a times bottom of b), added to acc. */
static inline int32_t resilinet_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(resilinet_lo16(a) * resilinet_hi16(b)));
}
static inline int32_t resilinet_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(resilinet_hi16(a) * resilinet_lo16(b)));
}

/* SMMULR: high word of a*b rounded, (a*b + 2^31) >> 32. */
static inline int32_t resilinet_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
}

/* SXTB16 of x rotated right by 8: bytes 1 and 3. */
static inline uint32_t resilinet_sxtb16_ror8(uint32_t x) { return resilinet_sxtb16((x >> 8) | (x << 24)); }
static inline uint32_t resilinet_sxtab16_ror8(uint32_t a, uint32_t x)
{
    return resilinet_sxtab16(a, (x >> 8) | (x << 24));
}

/* SSAT #8 of x >> 1 (arithmetic): clamp floor(x / 2) to [-128, 127]. */
static inline int32_t resilinet_ssat8_asr1(int32_t x)
{
    const int32_t v = x >> 1;
    return v < -128 ? -128 : (v > 127 ? 127 : v);
}

#elif defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#include <arm_acle.h>

#define RESILINET_HAS_DSP 1

#define resilinet_sxtb16(x) ((uint32_t)__sxtb16((int32_t)(x)))
#define resilinet_sxtab16(a, x) ((uint32_t)__sxtab16((int32_t)(a), (int32_t)(x)))
#define resilinet_smlad(a, b, acc) __smlad((int32_t)(a), (int32_t)(b), (acc))
#define resilinet_smlabb(a, b, acc) __smlabb((int32_t)(a), (int32_t)(b), (acc))
#define resilinet_smlatt(a, b, acc) __smlatt((int32_t)(a), (int32_t)(b), (acc))
#define resilinet_smlabt(a, b, acc) __smlabt((int32_t)(a), (int32_t)(b), (acc))
#define resilinet_smlatb(a, b, acc) __smlatb((int32_t)(a), (int32_t)(b), (acc))

/* SMMULR: high word of a*b rounded, (a*b + 2^31) >> 32 (GCC does not form it from C). */
static inline int32_t resilinet_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* SXTB16 with its operand rotated right by 8 (bytes 1 and 3) in one instruction: GCC does not fold a
 * rotate into the __sxtb16 builtin. */
static inline uint32_t resilinet_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t resilinet_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* SSAT #8 of x >> 1 (arithmetic): clamp floor(x / 2) to [-128, 127] in one instruction. */
static inline int32_t resilinet_ssat8_asr1(int32_t x)
{
    int32_t r;
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(r) : "r"(x));
    return r;
}

#else

#define RESILINET_HAS_DSP 0

#endif

/* Hand-scheduled inner loops (multi-instruction asm blocks using up to 13 registers) on real DSP targets
 * when optimizing; -O0 builds (which cannot free that many registers), the host emulation and
 * -DRESILINET_DSP_NO_ASM use the same computation written in C. */
#if RESILINET_HAS_DSP && !defined(RESILINET_EMULATE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__) && \
    !defined(RESILINET_DSP_NO_ASM)
#define RESILINET_DSP_ASM 1
#else
#define RESILINET_DSP_ASM 0
#endif

#if RESILINET_HAS_DSP
/* Rotate right (GCC 12 does not fold it into SXTB16's rotated operand; see resilinet_sxtb16_ror8). */
static inline uint32_t resilinet_ror(uint32_t x, uint32_t n) { return (x >> n) | (x << (32u - n)); }

/* PKHBT a, b, LSL #16 : lo lane of a, lo lane of b in the top. */
static inline uint32_t resilinet_pkhbt16(uint32_t a, uint32_t b) { return (a & 0x0000FFFFu) | (b << 16); }

/* PKHTB a, b, ASR #16 : hi lane of a on top, hi lane of b at the bottom. */
static inline uint32_t resilinet_pkhtb16(uint32_t a, uint32_t b) { return (a & 0xFFFF0000u) | (b >> 16); }

/* Lane-wise max / min of four int8 lanes: SSUB8 (sets the GE flag of each lane where a >= b) then SEL. One asm
 * statement, so nothing can come between the two and the GE flags. */
#if defined(RESILINET_EMULATE_DSP)
static inline uint32_t resilinet_s8x4_pick(uint32_t a, uint32_t b, int32_t want_max)
{
    uint32_t r = 0;
    for (int32_t i = 0; i < 32; i += 8)
    {
        const int32_t x = (int32_t)(int8_t)(uint8_t)(a >> i), y = (int32_t)(int8_t)(uint8_t)(b >> i);
        r |= (uint32_t)(uint8_t)(want_max ? (x >= y ? x : y) : (x >= y ? y : x)) << i;
    }
    return r;
}
static inline uint32_t resilinet_max_s8x4(uint32_t a, uint32_t b) { return resilinet_s8x4_pick(a, b, 1); }
static inline uint32_t resilinet_min_s8x4(uint32_t a, uint32_t b) { return resilinet_s8x4_pick(a, b, 0); }
#else
static inline uint32_t resilinet_max_s8x4(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}
static inline uint32_t resilinet_min_s8x4(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}
#endif

/* A 32-bit word that may alias any other type (int16 im2col entries written one by one, read as pairs).
 * Accesses through it must be 4-byte aligned; GCC may merge two of them into LDRD / STRD. */
typedef uint32_t __attribute__((may_alias)) resilinet_u32a;

/* Unaligned-safe loads; memcpy compiles to a single LDR on Cortex-M3 and up. */
static inline uint32_t resilinet_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Input-offset pair for SXTAB16: the offset in both halfword lanes. */
static inline uint32_t resilinet_dup16(int32_t v) { return ((uint32_t)(uint16_t)v) | ((uint32_t)(uint16_t)v << 16); }
#endif

#endif /* RESILINET_DSP_H */
