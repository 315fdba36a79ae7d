/*
 * resilinet-mcu: the output rows of the row-buffer depthwise convolution (internal, see
 * resilinet_nn_depthwise_rows.h): int16 pairs of one channel's rows along x times pairs of its weights (SMLAD,
 * two MACs per instruction), two output pixels per step so that the weights of a kernel row are loaded once for
 * both; 3x3 at stride 1 and 2 with the [w0 | w1] [w1 | w2] weight layout that also shares the input words
 * between the two pixels (the assembly of resilinet_nn_depthwise_3x3_asm_s8.c on the fast full-range path).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "resilinet_nn_depthwise_rows.h"

/* Generic: one output row of one channel; r = the row of the window's top (column -pw on), rw = entries per
 * row, wk = KH x kwp weight pairs [w(2t) | w(2t+1) << 16] (a zero weight ends an odd row), then the
 * requantization words. */
DW_INLINE void dw_row_generic(const dw_geom *g, const int16_t *r, const uint32_t *wk, const dw_out *q, int8_t *o,
                              const int32_t mode, const int32_t kwp, const int32_t sw)
{
    const int32_t cn = g->opx, kh = g->kh, rw = g->rw;
    /* Local copies: the int8 output stores may alias anything, so GCC would reload the words per output. */
    const uint32_t qk[DW_WK_EXTRA] = {wk[kh * kwp], wk[kh * kwp + 1], wk[kh * kwp + 2], wk[kh * kwp + 3]};
    const dw_out ql = *q;
    const int32_t bias = (int32_t)qk[0];
    int32_t ox = 0;
#if !RESILINET_HAS_DSP
    if (kh == 3 && g->kw == 3)
    {
        /* Plain C 3x3: nine multiply-accumulates per output, the weights kept as the six packed words of the 3x3
         * layout (dw_pack_weights: [w0 | w1] [w1 | w2] per kernel row; halves taken by shifts, which a compiler
         * for a core with 16-bit multiplies folds into them), the loop bound in a local (the int8 stores may
         * alias anything). */
        const int32_t p0 = (int32_t)wk[0], q0 = (int32_t)wk[1], p1 = (int32_t)wk[2], q1 = (int32_t)wk[3];
        const int32_t p2 = (int32_t)wk[4], q2 = (int32_t)wk[5], out_w = g->out_w;
        const int16_t *x0 = r, *x1 = r + rw, *x2 = r + 2 * rw;
#define DW_LO(w) ((int32_t)(int16_t)(w))
#define DW_HI(w) ((w) >> 16)
        for (; ox < out_w; ox++, x0 += sw, x1 += sw, x2 += sw, o += cn)
        {
            const int32_t a = bias + x0[0] * DW_LO(p0) + x0[1] * DW_HI(p0) + x0[2] * DW_HI(q0) + x1[0] * DW_LO(p1) +
                              x1[1] * DW_HI(p1) + x1[2] * DW_HI(q1) + x2[0] * DW_LO(p2) + x2[1] * DW_HI(p2) +
                              x2[2] * DW_HI(q2);
            *o = dw_rq(a, qk, &ql, mode);
        }
#undef DW_LO
#undef DW_HI
        return;
    }
#endif
    for (; ox + 2 <= g->out_w; ox += 2)
    {
        int32_t a0 = bias, a1 = bias;
        const uint32_t *w = wk;
        const int16_t *x = r + ox * sw;
        for (int32_t ky = 0; ky < kh; ky++)
        {
#if RESILINET_HAS_DSP
            if (kwp <= 4)
            {
                /* Unrolled (kwp is a constant in the specialised copies; at stride 2 the second output's words
                 * are the first's, one word on). */
#define DW_GENERIC_TAP(T)                                                      \
    if (kwp > T)                                                               \
    {                                                                          \
        const uint32_t wt = w[T];                                              \
        a0 = resilinet_smlad(resilinet_read_u32(x + 2 * T), wt, a0);           \
        a1 = resilinet_smlad(resilinet_read_u32(x + sw + 2 * T), wt, a1);      \
    }
                DW_GENERIC_TAP(0)
                DW_GENERIC_TAP(1)
                DW_GENERIC_TAP(2)
                DW_GENERIC_TAP(3)
#undef DW_GENERIC_TAP
                w += kwp;
                x += rw;
                continue;
            }
#endif
            for (int32_t t = 0; t < kwp; t++)
            {
#if RESILINET_HAS_DSP
                a0 = resilinet_smlad(resilinet_read_u32(x + 2 * t), w[t], a0);
                a1 = resilinet_smlad(resilinet_read_u32(x + sw + 2 * t), w[t], a1);
#else
                const int32_t w0 = (int16_t)(w[t] & 0xFFFFu), w1 = (int16_t)(w[t] >> 16);
                a0 += x[2 * t] * w0 + x[2 * t + 1] * w1;
                a1 += x[sw + 2 * t] * w0 + x[sw + 2 * t + 1] * w1;
#endif
            }
            w += kwp;
            x += rw;
        }
        o[0] = dw_rq(a0, qk, &ql, mode);
        o[cn] = dw_rq(a1, qk, &ql, mode);
        o += 2 * cn;
    }
    if (ox < g->out_w)
    {
        int32_t a0 = bias;
        const uint32_t *w = wk;
        const int16_t *x = r + ox * sw;
        for (int32_t ky = 0; ky < kh; ky++)
        {
#if RESILINET_HAS_DSP
            if (kwp <= 4)
            {
                for (int32_t t = 0; t < 4; t++) /* unrolled: constant bounds */
                {
                    a0 = t < kwp ? resilinet_smlad(resilinet_read_u32(x + 2 * t), w[t], a0) : a0;
                }
                w += kwp;
                x += rw;
                continue;
            }
#endif
            for (int32_t t = 0; t < kwp; t++)
            {
#if RESILINET_HAS_DSP
                a0 = resilinet_smlad(resilinet_read_u32(x + 2 * t), w[t], a0);
#else
                a0 += x[2 * t] * (int16_t)(w[t] & 0xFFFFu) + x[2 * t + 1] * (int16_t)(w[t] >> 16);
#endif
            }
            w += kwp;
            x += rw;
        }
        o[0] = dw_rq(a0, qk, &ql, mode);
    }
}

#if RESILINET_HAS_DSP
/* 3x3, stride 1 or 2, DSP (the words and multiplies of resilinet_nn_depthwise_3x3_asm_s8.c): n2 pairs from x
 * (4-byte aligned; each pair advances 2 * stride entries, so every word load is aligned). Returns x after the
 * pairs. */
DW_INLINE const int16_t *dw_pairs_3x3(const int16_t *x, int32_t rs, const uint32_t *wk, int8_t *o, int32_t cn,
                                      int32_t n2, const dw_out *q, const int32_t mode, const int32_t stride)
{
    const uint32_t *qk = wk + 6;
    const int32_t bias = (int32_t)qk[0];
    const int32_t rw = rs / (int32_t)sizeof(int16_t);
    const uint32_t p0 = wk[0], q0 = wk[1], p1 = wk[2], q1 = wk[3], p2 = wk[4], q2 = wk[5];
    for (int32_t i = 0; i < n2; i++)
    {
        int32_t a0 = bias, a1 = bias;
        const resilinet_u32a *u0 = (const resilinet_u32a *)(const void *)x;
        const resilinet_u32a *u1 = (const resilinet_u32a *)(const void *)(x + rw);
        const resilinet_u32a *u2 = (const resilinet_u32a *)(const void *)(x + 2 * rw);
        if (stride == 1)
        {
            a0 = resilinet_smlad(u0[0], p0, a0);
            a1 = resilinet_smlatb(u0[0], p0, a1);
            a0 = resilinet_smlabt(u0[1], q0, a0);
            a1 = resilinet_smlad(u0[1], q0, a1);
            a0 = resilinet_smlad(u1[0], p1, a0);
            a1 = resilinet_smlatb(u1[0], p1, a1);
            a0 = resilinet_smlabt(u1[1], q1, a0);
            a1 = resilinet_smlad(u1[1], q1, a1);
            a0 = resilinet_smlad(u2[0], p2, a0);
            a1 = resilinet_smlatb(u2[0], p2, a1);
            a0 = resilinet_smlabt(u2[1], q2, a0);
            a1 = resilinet_smlad(u2[1], q2, a1);
        }
        else
        {
            a0 = resilinet_smlad(u0[0], p0, a0);
            a0 = resilinet_smlabt(u0[1], q0, a0);
            a1 = resilinet_smlad(u0[1], p0, a1);
            a1 = resilinet_smlabt(u0[2], q0, a1);
            a0 = resilinet_smlad(u1[0], p1, a0);
            a0 = resilinet_smlabt(u1[1], q1, a0);
            a1 = resilinet_smlad(u1[1], p1, a1);
            a1 = resilinet_smlabt(u1[2], q1, a1);
            a0 = resilinet_smlad(u2[0], p2, a0);
            a0 = resilinet_smlabt(u2[1], q2, a0);
            a1 = resilinet_smlad(u2[1], p2, a1);
            a1 = resilinet_smlabt(u2[2], q2, a1);
        }
        o[0] = dw_rq(a0, qk, q, mode);
        o[cn] = dw_rq(a1, qk, q, mode);
        o += 2 * cn;
        x += 2 * stride;
    }
    return x;
}

/* One output row, 3x3 (see dw_pairs_3x3), then the last output of an odd row alone. */
DW_INLINE void dw_row_3x3(const dw_geom *g, const int16_t *r, const uint32_t *wk, const dw_out *q, int8_t *o,
                          const int32_t mode, const int32_t stride)
{
    const int32_t cn = g->opx, rw = g->rw;
    const int32_t n2 = g->out_w / 2;
    const int16_t *x = dw_pairs_3x3(r, rw * (int32_t)sizeof(int16_t), wk, o, cn, n2, q, mode, stride);
    if (g->out_w & 1)
    {
        const uint32_t *qk = wk + 6;
        int32_t a0 = (int32_t)qk[0];
        for (int32_t ky = 0; ky < 3; ky++)
        {
            a0 = resilinet_smlad(resilinet_read_u32(x), wk[2 * ky], a0);
            a0 = resilinet_smlabt(resilinet_read_u32(x + 2), wk[2 * ky + 1], a0);
            x += rw;
        }
        o[2 * n2 * cn] = dw_rq(a0, qk, q, mode);
    }
}
#endif

int32_t resilinet_dw_path(const dw_geom *g)
{
#if RESILINET_HAS_DSP
    if (g->kh == 3 && g->kw == 3 && g->sw == 1)
    {
        return DW_PATH_3X3_S1;
    }
    if (g->kh == 3 && g->kw == 3 && g->sw == 2)
    {
        return DW_PATH_3X3_S2;
    }
    if (g->kh == 3 && g->kw == 3)
    {
        return DW_PATH_3X3;
    }
#else
    (void)g;
#endif
    return DW_PATH_GENERIC;
}

/* One generic output row. On the fast full-range path kernel widths up to 8 (pairs up to 4) get copies with the
 * pair count constant (the loops unrolled), and stride 2 one where the second output's words are the first's,
 * one word on (the audio shape's 10x8 kernel at stride 2: 2.48 -> 2.23 instructions/MAC); each copy costs a
 * few hundred bytes of code, hence only that mode. */
DW_INLINE void dw_row_generic_any(const dw_geom *g, const int16_t *r, const uint32_t *wk, const dw_out *q, int8_t *o,
                                  const int32_t mode)
{
#if RESILINET_HAS_DSP
#define DW_GENERIC_SW(KWP)                                      \
    if (g->sw == 2)                                             \
        dw_row_generic(g, r, wk, q, o, mode, KWP, 2);           \
    else                                                        \
        dw_row_generic(g, r, wk, q, o, mode, KWP, g->sw);       \
    return
    if (mode == DW_FAST)
    {
        switch (g->kwp)
        {
        case 1:
            DW_GENERIC_SW(1);
        case 2:
            DW_GENERIC_SW(2);
        case 3:
            DW_GENERIC_SW(3);
        case 4:
            DW_GENERIC_SW(4);
        default:
            break;
        }
    }
#undef DW_GENERIC_SW
#endif
    dw_row_generic(g, r, wk, q, o, mode, g->kwp, g->sw);
}

/* nb output rows of one output channel (plane: its band's first row; wk: its words; o: its first output). Each
 * (path, mode) pair its own specialised copy of the loops. Not inlined into the channel loop below: the loops
 * need the registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void dw_out_rows(const dw_geom *g, int32_t path, const int16_t *plane, int32_t nb, const uint32_t *wk,
                        const dw_out *q, int8_t *o)
{
    const int32_t row_step = g->sh * g->rw, out_step = g->orow;
    for (int32_t oy = 0; oy < nb; oy++, plane += row_step, o += out_step)
    {
#if RESILINET_HAS_DSP
        if (q->mode != DW_SLOW && path == DW_PATH_3X3_S1)
        {
            if (q->mode == DW_FAST)
                dw_row_3x3(g, plane, wk, q, o, DW_FAST, 1);
            else
                dw_row_3x3(g, plane, wk, q, o, DW_FAST_CLAMP, 1);
            continue;
        }
        if (q->mode != DW_SLOW && path == DW_PATH_3X3_S2)
        {
            if (q->mode == DW_FAST)
                dw_row_3x3(g, plane, wk, q, o, DW_FAST, 2);
            else
                dw_row_3x3(g, plane, wk, q, o, DW_FAST_CLAMP, 2);
            continue;
        }
        if (path != DW_PATH_GENERIC)
        {
            /* Slow requantization (left shifts, huge biases: rare) or strides over 2, the 3x3 weight layout. */
            for (int32_t ox = 0; ox < g->out_w; ox++)
            {
                int32_t a = (int32_t)wk[6];
                const int16_t *x = plane + ox * g->sw;
                for (int32_t ky = 0; ky < 3; ky++, x += g->rw)
                {
                    a = resilinet_smlad(resilinet_read_u32(x), wk[2 * ky], a);
                    a = resilinet_smlabt(resilinet_read_u32(x + 2), wk[2 * ky + 1], a);
                }
                o[ox * g->opx] = dw_rq(a, wk + 6, q, q->mode);
            }
            continue;
        }
        if (q->mode == DW_FAST)
        {
            dw_row_generic_any(g, plane, wk, q, o, DW_FAST);
            continue;
        }
        if (q->mode == DW_FAST_CLAMP)
        {
            dw_row_generic_any(g, plane, wk, q, o, DW_FAST_CLAMP);
            continue;
        }
#else
        (void)path;
        /* Weights prepacked for the fast path (resilinet_depthwise_conv_s8_packed): each mode its own copy. */
        if (q->mode == DW_FAST)
        {
            dw_row_generic(g, plane, wk, q, o, DW_FAST, g->kwp, g->sw);
            continue;
        }
        if (q->mode == DW_FAST_CLAMP)
        {
            dw_row_generic(g, plane, wk, q, o, DW_FAST_CLAMP, g->kwp, g->sw);
            continue;
        }
#endif
        dw_row_generic(g, plane, wk, q, o, DW_SLOW, g->kwp, g->sw);
    }
}

/* Not inlined into the driver (a function of its own file). */
void resilinet_dw_out_group(const dw_geom *g, int32_t path, const int16_t *planes, int32_t plane_entries, int32_t nb,
                            const uint32_t *wk, const dw_out *q, int8_t *o)
{
    const int32_t n_oc = g->group * g->mult, wk_words = DW_WK_WORDS(g);
#if RESILINET_HAS_DSP && RESILINET_DSP_ASM
    if (q->mode == DW_FAST && (path == DW_PATH_3X3_S1 || path == DW_PATH_3X3_S2) && g->out_w >= 2)
    {
        resilinet_dw_rows_3x3_asm(g, planes, plane_entries, nb, wk, q, o);
        return;
    }
#endif
    for (int32_t j = 0; j < n_oc; j++)
    {
        dw_out_rows(g, path, planes + (j / g->mult) * plane_entries, nb, wk + j * wk_words, q, o + j);
    }
}

#endif /* RESILINET_USE_CMSIS_NN */
