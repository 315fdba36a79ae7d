/*
 * resilinet-mcu: the row-buffer depthwise convolution behind arm_depthwise_conv_wrapper_s8 (internal support
 * function, not CMSIS-NN API; see arm_nnsupportfunctions.h).
 *
 * Why rows: in NHWC a depthwise tap reads one byte per channel, so SIMD over channels gives one MAC per
 * SMLABB/SMLATT and every window re-widens its inputs. Here the input is widened once, per channel, into int16
 * rows (x + input_offset, zero rows and columns for the padding), a band of rows at a time (the whole padded
 * input when it fits DW_BAND_BYTES; rows at a fixed stride, so one pointer walks a window); an output row then
 * reads int16 pairs of one channel along x, which SMLAD multiplies by pairs of the channel's weights (two MACs
 * per instruction), and each input row is widened once per channel (and band) however many windows and output
 * channels (channel multiplier) read it. Two output pixels are computed per step so that the weights of a
 * kernel row are loaded once for both; 3x3 kernels at stride 1 and 2 take an assembly row loop that also
 * shares the input words between the two pixels.
 *
 * Requantization: on DSP cores, when resilinet_nn_requant_init() finds the fast path exact, the widened weights
 * and the bias are doubled so that the accumulator already holds 2 * acc (the operand SMMULR needs), leaving
 * six instructions per output. Otherwise (and on the plain-C path) resilinet_nn_requantize_clamp().
 *
 * Four channels are widened together when C % 4 == 0 (any channel multiplier: each plane then feeds its
 * channel's multiplier output channels).
 *
 * This file: the geometry, the scratch sizes, the packing of the weights and the driver over bands and channel
 * groups; the steps are in resilinet_nn_depthwise_widen_s8.c, resilinet_nn_depthwise_out_rows_s8.c and
 * resilinet_nn_depthwise_3x3_asm_s8.c (resilinet_nn_depthwise_rows.h).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "resilinet_nn_depthwise_rows.h"

/* Whether the kernel runs on the transposed tensors (columns as band rows): 3x3 outputs taller than wide, e.g.
 * DS-CNN's 25 x 5, whose rows of 5 outputs (two pairs and one alone, ~10 instructions of row overhead) become
 * rows of 25 (2.74 -> 2.18 instructions/MAC with the other changes). codegen/ops/depthwise.py (rows_transposed)
 * packs the weights of those transposed at generate time: keep the two rules the same. */
static int32_t dw_transposed(int32_t kh, int32_t kw, int32_t out_h, int32_t out_w)
{
    return kh == 3 && kw == 3 && out_h > out_w;
}

#define DW_SWAP(a, b)          \
    do                         \
    {                          \
        const int32_t t_ = a;  \
        a = b;                 \
        b = t_;                \
    } while (0)

/* Columns as rows: every height and width swapped, the steps of dw_geom taken down the columns. */
static void dw_transpose(dw_geom *g)
{
    DW_SWAP(g->kh, g->kw);
    DW_SWAP(g->sh, g->sw);
    DW_SWAP(g->ph, g->pw);
    DW_SWAP(g->in_h, g->in_w);
    DW_SWAP(g->out_h, g->out_w);
    DW_SWAP(g->ipx, g->irow);
    DW_SWAP(g->opx, g->orow);
    DW_SWAP(g->fpx, g->frow);
    g->kwp = (g->kw + 1) / 2;
}
#undef DW_SWAP

/* dw_geom's widening words (the planes start word-aligned and rows hold an even count of entries, so a row's
 * first input column is word-aligned when pw is even). */
static void dw_widen_words(dw_geom *g)
{
    const int32_t w = g->in_w, aligned = (g->pw & 1) == 0;
    if (w < (aligned ? 4 : 8))
    {
        g->w_loop = w & 1 ? DW_WIDEN_PAIRS_ODD : DW_WIDEN_PAIRS;
        g->wq_bytes = w / 2 * 2 * g->ipx;
    }
    else
    {
        g->w_loop = aligned ? DW_WIDEN_QUADS_ALIGNED : DW_WIDEN_QUADS;
        g->wq_bytes = w / 4 * 4 * g->ipx;
    }
    g->w_rem = w % 4;
    g->w_gap = (g->rw - w) * (int32_t)sizeof(int16_t);
    g->w_sgap = g->irow - w * g->ipx;
}

/* The geometry, or 0 when this path does not apply (dilation, very tall or wide kernels, bad shapes). */
static int32_t dw_geom_init(dw_geom *g,
                            const cmsis_nn_dw_conv_params *p,
                            const cmsis_nn_dims *input_dims,
                            const cmsis_nn_dims *filter_dims,
                            const cmsis_nn_dims *output_dims)
{
    g->kh = filter_dims->h;
    g->kw = filter_dims->w;
    g->kwp = (filter_dims->w + 1) / 2;
    g->sh = p->stride.h;
    g->sw = p->stride.w;
    g->ph = p->padding.h;
    g->pw = p->padding.w;
    g->in_h = input_dims->h;
    g->in_w = input_dims->w;
    g->in_c = input_dims->c;
    g->out_h = output_dims->h;
    g->out_w = output_dims->w;
    g->out_c = output_dims->c;
    g->mult = p->ch_mult;
    g->ipx = g->in_c;
    g->irow = g->in_w * g->in_c;
    g->opx = g->out_c;
    g->orow = g->out_w * g->out_c;
    g->fpx = g->out_c;
    g->frow = g->kw * g->out_c;
    if (dw_transposed(g->kh, g->kw, g->out_h, g->out_w))
    {
        dw_transpose(g);
    }
    /* The last column any path reads (from the padded row's start): the input's own last column; the 3x3 pair
     * loops read words up to column 2 * n2 * sw + 1 for n2 = ceil(out_w / 2) (an odd row's last output counted
     * as a pair); a lone or generic output reads its kernel row as pairs up to (out_w - 1) * sw + 2 * kwp - 1.
     * Rows hold exactly that many entries rounded up to even (rows start word-aligned for the word loads), so
     * no slack: the band takes as few bytes as the reads allow. */
    const int32_t last_col = MAX(MAX(g->pw + g->in_w - 1, 2 * ((g->out_w + 1) / 2) * g->sw + 1),
                                 (g->out_w - 1) * g->sw + 2 * g->kwp - 1);
    g->rw = (last_col + 2) & ~1;
    dw_widen_words(g);
    g->group = g->in_c % 4 == 0 ? 4 : 1;
    const int32_t all_rows = (g->out_h - 1) * g->sh + g->kh;
    g->band_rows = MAX(g->kh, MIN(all_rows, DW_BAND_BYTES / (g->group * g->rw * (int32_t)sizeof(int16_t))));
    return p->dilation.h == 1 && p->dilation.w == 1 && g->kh >= 1 && g->kh <= DW_ROWS_MAX_KH && g->kw >= 1 &&
           g->kw <= DW_ROWS_MAX_KW && g->sh >= 1 && g->sw >= 1 && g->mult >= 1 && g->in_c * g->mult == g->out_c &&
           filter_dims->c == g->out_c && g->pw >= 0 && g->ph >= 0 && g->out_w >= 1 && g->out_h >= 1;
}

/* Scratch: the band of rows of each widened channel, 4 bytes of slack to align the start and, unless the
 * weights come prepacked, the packed weights and requantization words of one channel group. */
static int32_t dw_geom_bytes(const dw_geom *g, int32_t prepacked)
{
    const int32_t rows = g->group * g->band_rows * g->rw * (int32_t)sizeof(int16_t);
    const int32_t wk = g->group * g->mult * (g->kh * g->kwp + DW_WK_EXTRA) * (int32_t)sizeof(uint32_t);
    return 4 + rows + (prepacked ? 0 : wk);
}

int32_t resilinet_nn_depthwise_rows_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const cmsis_nn_dims *output_dims)
{
    dw_geom g;
    if (!dw_geom_init(&g, dw_conv_params, input_dims, filter_dims, output_dims))
    {
        return -1;
    }
    return dw_geom_bytes(&g, 0);
}

int32_t resilinet_nn_depthwise_rows_s8_packed_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                             const cmsis_nn_dims *input_dims,
                                                             const cmsis_nn_dims *filter_dims,
                                                             const cmsis_nn_dims *output_dims)
{
    dw_geom g;
    if (!dw_geom_init(&g, dw_conv_params, input_dims, filter_dims, output_dims))
    {
        return -1;
    }
    return dw_geom_bytes(&g, 1);
}

/* Weights of output channel oc into wk (see the row loops for the layouts), times scale. */
static void dw_pack_weights(const dw_geom *g, const int8_t *filter, int32_t oc, int32_t scale, uint32_t *wk)
{
    for (int32_t ky = 0; ky < g->kh; ky++)
    {
        const int8_t *f = filter + ky * g->frow + oc;
        if (g->kh == 3 && g->kw == 3) /* every 3x3 path, DSP or not, reads this layout */
        {
            const int32_t w0 = f[0] * scale, w1 = f[g->fpx] * scale, w2 = f[2 * g->fpx] * scale;
            wk[2 * ky] = (uint32_t)(uint16_t)w0 | ((uint32_t)(uint16_t)w1 << 16);
            wk[2 * ky + 1] = (uint32_t)(uint16_t)w1 | ((uint32_t)(uint16_t)w2 << 16);
            continue;
        }
        for (int32_t t = 0; t < g->kwp; t++)
        {
            const int32_t w0 = f[2 * t * g->fpx] * scale;
            const int32_t w1 = 2 * t + 1 < g->kw ? f[(2 * t + 1) * g->fpx] * scale : 0;
            wk[ky * g->kwp + t] = (uint32_t)(uint16_t)w0 | ((uint32_t)(uint16_t)w1 << 16);
        }
    }
}

/* The row-loop words of the 3x3 assembly (dw_out): an odd row's last output moves x and o on like a pair. */
static void dw_pack_geometry(const dw_geom *g, dw_out *q)
{
    const int32_t n2 = (g->out_w + 1) / 2;
    q->pairs_bytes = (g->out_w / 2) * 2 * g->opx;
    q->x_step = (g->sh * g->rw - n2 * 2 * g->sw) * (int32_t)sizeof(int16_t);
    q->o_step = g->orow - n2 * 2 * g->opx;
}

/* The requantization words of output channel oc (DW_WK_EXTRA). */
static void dw_pack_quant(const int32_t *bias, const cmsis_nn_per_channel_quant_params *qp, const dw_out *q,
                          int32_t oc, int32_t scale, uint32_t *qk)
{
    qk[0] = (uint32_t)((bias != NULL ? bias[oc] : 0) * scale);
    qk[1] = (uint32_t)qp->multiplier[oc];
    qk[2] = (uint32_t)(q->mode == DW_SLOW ? qp->shift[oc] : ~qp->shift[oc]);
    int32_t k = 0;
    if (q->mode != DW_SLOW)
    {
        (void)dw_rounding_word(q->out_offset, ~qp->shift[oc], &k);
    }
    qk[3] = (uint32_t)k;
}

/* ------------------------------------------------------------------------------------------------- driver */

/* Rows of one band: input rows yb .. yb + n - 1 of the group's channels into their planes (zero rows outside
 * the input). */
static void dw_fill_band(const dw_geom *g, const int8_t *in_b, int32_t c, int32_t yb, int32_t n, int16_t *planes,
                         int32_t plane_entries, int32_t off, int32_t one_band)
{
    const int32_t lo = MAX(0, -yb), hi = MAX(lo, MIN(n, g->in_h - yb)); /* rows inside the input: [lo, hi) */
    if (hi > lo)
    {
        resilinet_dw_widen(g, in_b + (yb + lo) * g->irow + c, planes + lo * g->rw + g->pw, plane_entries,
                           hi - lo, off);
    }
    if (one_band)
    {
        return; /* the padding rows are the same rows every time, still zero from the start */
    }
    for (int32_t r = 0; r < n; r++)
    {
        if (r >= lo && r < hi)
        {
            continue;
        }
        for (int32_t j = 0; j < g->group; j++)
        {
            memset(planes + j * plane_entries + r * g->rw, 0, (size_t)g->rw * sizeof(int16_t));
        }
    }
}

/* The entries of the band that no widening writes: the padding columns of every row and, when one band holds
 * every row (the padding rows are then never rewritten), the rows above and below the input. Only those (zeroing
 * the whole band cost ~0.08 instructions/MAC at 48x48x8 stride 2), unless the padding is a large part of a row. */
static void dw_zero_pads(const dw_geom *g, int16_t *planes, int32_t one_band)
{
    const int32_t rw = g->rw, right = g->pw + g->in_w;
    if ((rw - g->in_w) * 4 > rw)
    {
        /* Padding over a quarter of each row (narrow inputs): one memset of the band (word stores) is fewer. */
        memset(planes, 0, (size_t)(g->group * g->band_rows * rw) * sizeof(int16_t));
        return;
    }
    /* The rows the widening writes: every band row, or with one band those inside the input (the rest whole). */
    const int32_t lo = one_band ? MIN(g->ph, g->band_rows) : 0;
    const int32_t hi = one_band ? MIN(g->band_rows, g->ph + g->in_h) : g->band_rows;
    for (int32_t j = 0; j < g->group; j++)
    {
        int16_t *plane = planes + j * g->band_rows * rw;
        if (lo > 0)
        {
            memset(plane, 0, (size_t)(lo * rw) * sizeof(int16_t));
        }
        if (hi < g->band_rows)
        {
            memset(plane + hi * rw, 0, (size_t)((g->band_rows - hi) * rw) * sizeof(int16_t));
        }
        for (int32_t x = 0; x < rw; x++)
        {
            if (x == g->pw)
            {
                x = right; /* past the input's columns (widened later) */
                if (x >= rw)
                {
                    break;
                }
            }
            /* Down the column: strided stores, where a loop along each row would become a memset call per row. */
            int16_t *e = plane + lo * rw + x;
            for (int32_t r = lo; r < hi; r++, e += rw)
            {
                *e = 0;
            }
        }
    }
}

/* Weights of one call: prepacked (packed: every output channel's words, in order) or packed here per channel
 * group into wk_scratch from the int8 filter and the quantization arrays. */
typedef struct
{
    const uint32_t *packed;
    const int8_t *filter;
    const int32_t *bias;
    const cmsis_nn_per_channel_quant_params *quant;
    uint32_t *wk_scratch;
    int32_t scale;
} dw_weights;

/* Prepacked weights and one band holding every row (small spatial extents, many channels): per channel group only
 * the widening of its rows inside the input and its output rows, the rest hoisted (the general loop of dw_drive
 * spent ~100 instructions per group: 0.3 instructions/MAC on 3x3x256). */
static void dw_drive_one_band(const dw_geom *g, int32_t path, const dw_out *q, const uint32_t *wk, int16_t *planes,
                              int32_t plane_entries, int32_t input_offset, const int8_t *in_b, int8_t *out_b)
{
    const int32_t lo = MIN(g->ph, g->band_rows), hi = MIN(g->band_rows, g->ph + g->in_h);
    const int32_t wk_step = g->group * g->mult * DW_WK_WORDS(g), o_step = g->group * g->mult;
    int16_t *dst = planes + lo * g->rw + g->pw;
    const int8_t *src = in_b + (lo - g->ph) * g->irow;
#if RESILINET_HAS_DSP && RESILINET_DSP_ASM
    /* The assembly rows directly when resilinet_dw_out_group would take them (its checks once per call). */
    const int32_t asm_rows = q->mode == DW_FAST && (path == DW_PATH_3X3_S1 || path == DW_PATH_3X3_S2) &&
                             g->out_w >= 2;
#endif
    for (int32_t c = 0; c < g->in_c; c += g->group, src += g->group, out_b += o_step, wk += wk_step)
    {
        if (hi > lo)
        {
            resilinet_dw_widen(g, src, dst, plane_entries, hi - lo, input_offset);
        }
#if RESILINET_HAS_DSP && RESILINET_DSP_ASM
        if (asm_rows)
        {
            resilinet_dw_rows_3x3_asm(g, planes, plane_entries, g->out_h, wk, q, out_b);
            continue;
        }
#endif
        resilinet_dw_out_group(g, path, planes, plane_entries, g->out_h, wk, q, out_b);
    }
}

/* The bands and channel groups of a call whose geometry, output mode and weights are set; buf: the scratch. */
static void dw_drive(const dw_geom *g, const dw_out *q, const dw_weights *wt, int8_t *buf, int32_t n_batch,
                     int32_t input_offset, const int8_t *input_data, int8_t *output_data)
{
    const int32_t path = resilinet_dw_path(g);
    buf += (4 - ((uintptr_t)buf & 3u)) & 3u;
    const int32_t plane_entries = g->band_rows * g->rw;
    int16_t *planes = (int16_t *)(void *)buf;
    const int32_t wk_words = DW_WK_WORDS(g);
    const int32_t n_oc = g->group * g->mult; /* output channels per channel group */
    const int32_t band_out = (g->band_rows - g->kh) / g->sh + 1;
    dw_zero_pads(g, planes, band_out >= g->out_h);
    for (int32_t b = 0; b < n_batch; b++)
    {
        const int8_t *in_b = input_data + b * g->in_h * g->in_w * g->in_c;
        int8_t *out_b = output_data + b * g->out_h * g->out_w * g->out_c;
        if (wt->packed != NULL && band_out >= g->out_h)
        {
            dw_drive_one_band(g, path, q, wt->packed, planes, plane_entries, input_offset, in_b, out_b);
            continue;
        }
        for (int32_t c = 0; c < g->in_c; c += g->group)
        {
            const uint32_t *wk = wt->packed != NULL ? wt->packed + c * g->mult * wk_words : wt->wk_scratch;
            for (int32_t j = 0; j < n_oc && wt->packed == NULL; j++)
            {
                const int32_t oc = c * g->mult + j;
                dw_pack_weights(g, wt->filter, oc, wt->scale, wt->wk_scratch + j * wk_words);
                dw_pack_quant(wt->bias, wt->quant, q, oc, wt->scale, wt->wk_scratch + j * wk_words + g->kh * g->kwp);
            }
            for (int32_t ob = 0; ob < g->out_h; ob += band_out)
            {
                const int32_t nb = MIN(band_out, g->out_h - ob);
                dw_fill_band(g, in_b, c, ob * g->sh - g->ph, (nb - 1) * g->sh + g->kh, planes, plane_entries,
                             input_offset, band_out >= g->out_h);
                resilinet_dw_out_group(g, path, planes, plane_entries, nb, wk, q,
                                       out_b + ob * g->orow + c * g->mult);
            }
        }
    }
}

arm_cmsis_nn_status resilinet_nn_depthwise_rows_s8(const cmsis_nn_context *ctx,
                                                   const cmsis_nn_dw_conv_params *p,
                                                   const cmsis_nn_per_channel_quant_params *quant_params,
                                                   const cmsis_nn_dims *input_dims,
                                                   const int8_t *input_data,
                                                   const cmsis_nn_dims *filter_dims,
                                                   const int8_t *filter_data,
                                                   const int32_t *bias_data,
                                                   const cmsis_nn_dims *output_dims,
                                                   int8_t *output_data)
{
    dw_geom g;
    if (!dw_geom_init(&g, p, input_dims, filter_dims, output_dims) || ctx == NULL || ctx->buf == NULL ||
        ctx->size < dw_geom_bytes(&g, 0))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    dw_out q = {p->output_offset, p->activation.min, p->activation.max, 1 + 2 * p->output_offset, DW_SLOW, 0, 0, 0};
    dw_pack_geometry(&g, &q);
#if RESILINET_HAS_DSP
    resilinet_nn_requant_params rq;
    resilinet_nn_requant_init(&rq, bias_data, quant_params->multiplier, quant_params->shift, 1, g.out_c,
                              p->output_offset, p->activation.min, p->activation.max, g.kh * g.kw, p->input_offset);
    if (rq.fast)
    {
        /* DW_FAST (the assembly) only when every channel's rounding word fits. */
        int32_t fits = rq.full_range, k;
        for (int32_t oc = 0; oc < g.out_c && fits; oc++)
        {
            fits = dw_rounding_word(p->output_offset, ~quant_params->shift[oc], &k);
        }
        q.mode = fits ? DW_FAST : DW_FAST_CLAMP;
    }
#endif
    /* The channel group's packed words after the rows (dw_geom_bytes). */
    int8_t *buf = (int8_t *)ctx->buf;
    uint32_t *wk = (uint32_t *)(void *)(buf + ((4 - ((uintptr_t)buf & 3u)) & 3u) +
                                        g.group * g.band_rows * g.rw * (int32_t)sizeof(int16_t));
    const dw_weights wt = {NULL, filter_data, bias_data, quant_params, wk, q.mode == DW_SLOW ? 1 : 2};
    dw_drive(&g, &q, &wt, buf, input_dims->n, p->input_offset, input_data, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status resilinet_nn_depthwise_rows_s8_packed(const cmsis_nn_context *ctx,
                                                         const cmsis_nn_dw_conv_params *p,
                                                         const cmsis_nn_dims *input_dims,
                                                         const int8_t *input_data,
                                                         const cmsis_nn_dims *filter_dims,
                                                         const int32_t *packed,
                                                         const cmsis_nn_dims *output_dims,
                                                         int8_t *output_data)
{
    dw_geom g;
    if (!dw_geom_init(&g, p, input_dims, filter_dims, output_dims) || ctx == NULL || ctx->buf == NULL ||
        ctx->size < dw_geom_bytes(&g, 1) || packed == NULL || (packed[0] != 0 && packed[0] != 1))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    /* packed[0]: 1 when codegen found the fast requantization exact and every rounding word within range for
     * every channel (its weights and biases are then doubled, its shifts stored as ~shift), 0 otherwise. */
    dw_out q = {p->output_offset, p->activation.min, p->activation.max, 1 + 2 * p->output_offset, DW_SLOW, 0, 0, 0};
    dw_pack_geometry(&g, &q);
    if (packed[0] == 1)
    {
        q.mode = p->activation.min <= -128 && p->activation.max >= 127 ? DW_FAST : DW_FAST_CLAMP;
    }
    const dw_weights wt = {(const uint32_t *)(const void *)(packed + 1), NULL, NULL, NULL, NULL, 1};
    dw_drive(&g, &q, &wt, (int8_t *)ctx->buf, input_dims->n, p->input_offset, input_data, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

#endif /* RESILINET_USE_CMSIS_NN */
