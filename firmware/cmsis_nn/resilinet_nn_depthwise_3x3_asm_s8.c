/*
 * resilinet-mcu: the 3x3 row loops of the row-buffer depthwise convolution in assembly (stride 1 and 2, fast
 * full-range requantization; internal, see resilinet_nn_depthwise_rows.h). The C loops of
 * resilinet_nn_depthwise_out_rows_s8.c compute the same values (they serve the other modes, the emulated DSP
 * build and widths below 2).
 *
 * Per kernel row the weight words P = [w0 | w1], Q = [w1 | w2]; two outputs x0, x1 (= x0 + stride) from the
 * words A = [r0 | r1], B = [r2 | r3] (and C = [r4 | r5] at stride 2):
 *   stride 1: out0 += SMLAD(A, P) + SMLABT(B, Q); out1 += SMLATB(A, P) + SMLAD(B, Q)
 *   stride 2: out0 += SMLAD(A, P) + SMLABT(B, Q); out1 += SMLAD(B, P) + SMLABT(C, Q)
 * The accumulators start at the (doubled) bias and hold 2 * acc, the operand SMMLAR needs (the fast
 * requantization with the rounding word K, resilinet_nn_depthwise_rows.h: 5 instructions per output).
 * Two special cases of MobileNet's shapes: stride 2 with rows of 4k or 4k + 2 outputs takes four outputs per
 * step (dw_rows_s2_quads: 36 MACs in 62 instructions, two pairs take 72; 48x48x8 stride 2: 2.90 -> 2.65
 * instructions/MAC), and rows of three outputs (3x3 outputs) a loop without row loops (dw_rows_3x3_w3_asm:
 * 3x3x256 stride 1: 3.39 -> 2.88, 6x6x128 stride 2: 4.23 -> 3.72).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "resilinet_nn_depthwise_rows.h"

#if RESILINET_HAS_DSP && RESILINET_DSP_ASM

/* 14 registers: LR holds the channel's doubled bias (the first multiplies of a pair accumulate onto it), x0, x1, x2
 * walk the window's three kernel rows (post-indexed loads: no address arithmetic per pair); the weights and
 * requantization words are re-read per pair (LDRD), and after each row the pointers and o move on by x_step
 * and o_step bytes (dw_pack_geometry); those, the pairs' output bytes and o's end are memory operands
 * (stack slots: no register left). Per pair at stride 1: 3 x (LDRD inputs + LDRD weights + 4 multiplies) + 12
 * requantization (LDRD, LDR of K, 2 x 5) + 3 = 33 instructions for 18 MACs. An odd row ends with one output
 * alone (DW_SINGLE: 3 x (LDRD + LDRD + 2 multiplies) + 8). */

/* Start of a row: the end of its pairs. */
#define DW_ROW_HEAD                       \
    "2:\n\t"                              \
    "ldr    %[oend], %[nb]\n\t"           \
    "add    %[oend], %[oend], %[o]\n\t"   \
    "1:\n\t"

/* The pair's requantization and stores, then the pair loop's end. */
#define DW_PAIR_TAIL                                 \
    "ldrd   %[P], %[Q], [%[wk], #28]\n\t"            \
    "ldr    %[A], [%[wk], #36]\n\t"                  \
    "smmlar %[B], %[a1], %[P], %[A]\n\t"             \
    "smmlar %[A], %[a0], %[P], %[A]\n\t"             \
    "add    %[a0], %[A], %[a0], asr #31\n\t"         \
    "add    %[a1], %[B], %[a1], asr #31\n\t"         \
    "asr    %[a0], %[a0], %[Q]\n\t"                  \
    "asr    %[a1], %[a1], %[Q]\n\t"                  \
    "ssat   %[a0], #8, %[a0], asr #1\n\t"            \
    "ssat   %[a1], #8, %[a1], asr #1\n\t"            \
    "strb   %[a1], [%[o], %[cn]]\n\t"                \
    "strb   %[a0], [%[o]]\n\t"                       \
    "add    %[o], %[o], %[cn], lsl #1\n\t"           \
    "cmp    %[o], %[oend]\n\t"                       \
    "bne    1b\n\t"

/* One kernel row of the single output of an odd row (ACC: what the first multiply adds to); the row pointer
 * moves on as after a pair (XINC bytes). */
#define DW_SINGLE_ROW(X, XINC, WOFF, ACC)                  \
    "ldrd   %[A], %[B], [%[" X "]], #" XINC "\n\t"         \
    "ldrd   %[P], %[Q], [%[wk], #" WOFF "]\n\t"            \
    "smlad  %[a0], %[A], %[P], " ACC "\n\t"                \
    "smlabt %[a0], %[B], %[Q], %[a0]\n\t"

/* The last output of an odd row (the same words at either stride), stored at o. */
#define DW_SINGLE_CORE(XINC)                                                    \
    DW_SINGLE_ROW("x0", XINC, "0", "%[bias]")                                   \
    DW_SINGLE_ROW("x1", XINC, "8", "%[a0]")                                     \
    DW_SINGLE_ROW("x2", XINC, "16", "%[a0]")                                    \
    "ldrd   %[P], %[Q], [%[wk], #28]\n\t"                                       \
    "ldr    %[A], [%[wk], #36]\n\t"                                             \
    "smmlar %[A], %[a0], %[P], %[A]\n\t"                                        \
    "add    %[a0], %[A], %[a0], asr #31\n\t"                                    \
    "asr    %[a0], %[a0], %[Q]\n\t"                                             \
    "ssat   %[a0], #8, %[a0], asr #1\n\t"                                       \
    "strb   %[a0], [%[o]]\n\t"
/* The same, then o moves on as after a pair. */
#define DW_SINGLE(XINC) DW_SINGLE_CORE(XINC) "add    %[o], %[o], %[cn], lsl #1\n\t"

/* End of a row: on to the next row's start. */
#define DW_ROW_TAIL                       \
    "ldrd   %[A], %[B], %[st]\n\t"        \
    "add    %[x0], %[x0], %[A]\n\t"       \
    "add    %[x1], %[x1], %[A]\n\t"       \
    "add    %[x2], %[x2], %[A]\n\t"       \
    "add    %[o], %[o], %[B]\n\t"         \
    "ldr    %[A], %[olast]\n\t"           \
    "cmp    %[o], %[A]\n\t"               \
    "bne    2b\n\t"

#define DW_S1_ROW(X, WOFF, ACC0, ACC1)               \
    "ldrd   %[A], %[B], [%[" X "]], #4\n\t"          \
    "ldrd   %[P], %[Q], [%[wk], #" WOFF "]\n\t"      \
    "smlad  %[a0], %[A], %[P], " ACC0 "\n\t"         \
    "smlatb %[a1], %[A], %[P], " ACC1 "\n\t"         \
    "smlabt %[a0], %[B], %[Q], %[a0]\n\t"            \
    "smlad  %[a1], %[B], %[Q], %[a1]\n\t"
#define DW_S1_PAIR                                                              \
    DW_S1_ROW("x0", "0", "%[bias]", "%[bias]")                                  \
    DW_S1_ROW("x1", "8", "%[a0]", "%[a1]")                                      \
    DW_S1_ROW("x2", "16", "%[a0]", "%[a1]")

/* Stride 2: the third word of a row is the one after the LDRD's pair (its pointer already moved on by 8). */
#define DW_S2_ROW(X, WOFF, ACC0, ACC1)               \
    "ldrd   %[A], %[B], [%[" X "]], #8\n\t"          \
    "ldrd   %[P], %[Q], [%[wk], #" WOFF "]\n\t"      \
    "smlad  %[a0], %[A], %[P], " ACC0 "\n\t"         \
    "smlabt %[a0], %[B], %[Q], %[a0]\n\t"            \
    "smlad  %[a1], %[B], %[P], " ACC1 "\n\t"         \
    "ldr    %[A], [%[" X "]]\n\t"                    \
    "smlabt %[a1], %[A], %[Q], %[a1]\n\t"
#define DW_S2_PAIR                                                              \
    DW_S2_ROW("x0", "0", "%[bias]", "%[bias]")                                  \
    DW_S2_ROW("x1", "8", "%[a0]", "%[a1]")                                      \
    DW_S2_ROW("x2", "16", "%[a0]", "%[a1]")

/* Rows of three outputs (out_w == 3: the 3x3 outputs of MobileNet's last layers): no loop over a row's pairs and
 * no row loop (a row is the pair, the odd output and the three pointers on by xs, and o then stands at the next
 * row's first output when rows are 3 * cn bytes apart); the group's channels loop in the assembly too. */
#define DW_W3_PAIR_RQ                                \
    "ldrd   %[P], %[Q], [%[wk], #28]\n\t"            \
    "ldr    %[A], [%[wk], #36]\n\t"                  \
    "smmlar %[B], %[a1], %[P], %[A]\n\t"             \
    "smmlar %[A], %[a0], %[P], %[A]\n\t"             \
    "add    %[a0], %[A], %[a0], asr #31\n\t"         \
    "add    %[a1], %[B], %[a1], asr #31\n\t"         \
    "asr    %[a0], %[a0], %[Q]\n\t"                  \
    "asr    %[a1], %[a1], %[Q]\n\t"                  \
    "ssat   %[a0], #8, %[a0], asr #1\n\t"            \
    "ssat   %[a1], #8, %[a1], asr #1\n\t"            \
    "strb   %[a1], [%[o], %[cn]]\n\t"                \
    "strb   %[a0], [%[o]]\n\t"                       \
    "add    %[o], %[o], %[cn], lsl #1\n\t"
#define DW_W3_ROW(PAIR, XINC) PAIR DW_W3_PAIR_RQ DW_SINGLE_CORE(XINC) "add    %[o], %[o], %[cn]\n\t"
#define DW_W3_NEXT_ROW                               \
    "add    %[x0], %[x0], %[xs]\n\t"                 \
    "add    %[x1], %[x1], %[xs]\n\t"                 \
    "add    %[x2], %[x2], %[xs]\n\t"
/* After the third row: on to the next channel's plane, output and words (steps: the pointers' and o's moves). */
#define DW_W3_CHANNELS(PAIR, XINC)                                                                              \
    "1:\n\t"                                                                                                   \
    "ldr    %[bias], [%[wk], #24]\n\t"                                                                          \
    DW_W3_ROW(PAIR, XINC) DW_W3_NEXT_ROW DW_W3_ROW(PAIR, XINC) DW_W3_NEXT_ROW DW_W3_ROW(PAIR, XINC)             \
    "ldrd   %[A], %[B], %[st]\n\t"                                                                              \
    "add    %[x0], %[x0], %[A]\n\t"                                                                             \
    "add    %[x1], %[x1], %[A]\n\t"                                                                             \
    "add    %[x2], %[x2], %[A]\n\t"                                                                             \
    "add    %[o], %[o], %[B]\n\t"                                                                               \
    "add    %[wk], %[wk], #40\n\t"                                                                              \
    "ldr    %[A], %[wend]\n\t"                                                                                  \
    "cmp    %[wk], %[A]\n\t"                                                                                    \
    "bne    1b\n\t"
#define DW_W3_ASM(CODE)                                                                                         \
    __asm__ volatile(CODE                                                                                       \
                     : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [o] "+r"(o), [wk] "+r"(wk), [bias] "=&r"(bias), \
                       [A] "=&r"(A), [B] "=&r"(B), [P] "=&r"(P), [Q] "=&r"(Q), [a0] "=&r"(a0), [a1] "=&r"(a1)      \
                     : [cn] "r"(cn), [xs] "r"(xs), [st] "m"(steps), [wend] "m"(wend)                              \
                     : "cc", "memory")

/* Three rows of three outputs of every channel of the group (channel multiplier 1, DW_WK_WORDS = 10: the 40 of
 * DW_W3_CHANNELS). Per channel 1 + 3 x (pair 34 + odd output 20) + 6 + 9 instructions (the general loops: ~240). */
static void dw_rows_3x3_w3_asm(const dw_geom *g, const int16_t *planes, int32_t plane_entries, const uint32_t *wk,
                               const dw_out *q, int8_t *o)
{
    const int16_t *x0 = planes, *x1 = planes + g->rw, *x2 = planes + 2 * g->rw;
    const int32_t cn = g->opx, xs = q->x_step;
    /* After the third row the pointers stand 2 rows and 4 * sw entries on from the plane's first row, o 3 rows on. */
    const int32_t steps[2] = {(plane_entries - 2 * g->sh * g->rw - 4 * g->sw) * (int32_t)sizeof(int16_t),
                              1 - 3 * g->orow};
    const uint32_t *const wend = wk + g->group * DW_WK_WORDS(g);
    register int32_t bias __asm__("lr"); /* the 14th register */
    uint32_t A, B, P, Q;
    int32_t a0, a1;
    if (g->sw == 1)
    {
        DW_W3_ASM(DW_W3_CHANNELS(DW_S1_PAIR, "4"));
    }
    else
    {
        DW_W3_ASM(DW_W3_CHANNELS(DW_S2_PAIR, "8"));
    }
}

/* Stride 2, four outputs per step (rows of out_w % 4 == 0 outputs): per kernel row the words [r0|r1] .. [r8|r9]
 * (LDRD, LDRD, LDR) and the weight words once for the four, and the requantization words once: 3 x 12 + 26 =
 * 62 instructions for 36 MACs (two pairs: 72). The registers: the output channel stride is an immediate (one
 * copy of the loop per stride, DW_S2Q_CN) and the row's end a stack slot. */
#define DW_S2Q_ROW(X, WOFF, F0, F1, F2, F3)                   \
    "ldrd   %[A], %[B], [%[" X "]], #16\n\t"         \
    "ldrd   %[P], %[Q], [%[wk], #" WOFF "]\n\t"      \
    "smlad  %[a0], %[A], %[P], " F0 "\n\t"           \
    "smlabt %[a0], %[B], %[Q], %[a0]\n\t"            \
    "smlad  %[a1], %[B], %[P], " F1 "\n\t"           \
    "ldrd   %[A], %[B], [%[" X "], #-8]\n\t"         \
    "smlabt %[a1], %[A], %[Q], %[a1]\n\t"            \
    "smlad  %[a2], %[A], %[P], " F2 "\n\t"           \
    "smlabt %[a2], %[B], %[Q], %[a2]\n\t"            \
    "smlad  %[a3], %[B], %[P], " F3 "\n\t"           \
    "ldr    %[A], [%[" X "]]\n\t"                    \
    "smlabt %[a3], %[A], %[Q], %[a3]\n\t"
#define DW_S2Q_RQ(AI)                                \
    "smmlar %[B], %[" AI "], %[P], %[A]\n\t"         \
    "add    %[" AI "], %[B], %[" AI "], asr #31\n\t" \
    "asr    %[" AI "], %[" AI "], %[Q]\n\t"          \
    "ssat   %[" AI "], #8, %[" AI "], asr #1\n\t"
/* The first row's multiplies add to the bias, the others to a0 .. a3. */
#define DW_S2Q_ROWS                                                                                             \
    DW_S2Q_ROW("x0", "0", "%[bias]", "%[bias]", "%[bias]", "%[bias]")                                           \
    DW_S2Q_ROW("x1", "8", "%[a0]", "%[a1]", "%[a2]", "%[a3]")                                                   \
    DW_S2Q_ROW("x2", "16", "%[a0]", "%[a1]", "%[a2]", "%[a3]")
#define DW_S2Q_CODE(CN1, CN2, CN3, CN4, REM)                                                                      \
    "2:\n\t"                                                                                                   \
    "ldr    %[A], %[nb]\n\t"                                                                                    \
    "add    %[A], %[A], %[o]\n\t"                                                                               \
    "str    %[A], %[oend]\n\t"                                                                                  \
    "1:\n\t"                                                                                                   \
    DW_S2Q_ROWS                                                                                                 \
    "ldrd   %[P], %[Q], [%[wk], #28]\n\t"                                                                       \
    "ldr    %[A], [%[wk], #36]\n\t"                                                                             \
    DW_S2Q_RQ("a0") DW_S2Q_RQ("a1") DW_S2Q_RQ("a2") DW_S2Q_RQ("a3")                                            \
    "strb   %[a0], [%[o]]\n\t"                                                                                  \
    "strb   %[a1], [%[o], #" CN1 "]\n\t"                                                                        \
    "strb   %[a2], [%[o], #" CN2 "]\n\t"                                                                        \
    "strb   %[a3], [%[o], #" CN3 "]\n\t"                                                                        \
    "add    %[o], %[o], #" CN4 "\n\t"                                                                           \
    "ldr    %[A], %[oend]\n\t"                                                                                  \
    "cmp    %[o], %[A]\n\t"                                                                                     \
    "bne    1b\n\t"                                                                                             \
    REM DW_ROW_TAIL
/* A row's last two outputs when out_w % 4 == 2 (the stride-2 pair of DW_S2_PAIR, the channel stride CN1;
 * tested per row rather than a second copy of the loop: code size). */
#define DW_S2Q_PAIR(CN1, CN2)                        \
    "ldr    %[A], %[rem]\n\t"                        \
    "cmp    %[A], #0\n\t"                            \
    "beq    3f\n\t"                                  \
    DW_S2_PAIR                                       \
    "ldrd   %[P], %[Q], [%[wk], #28]\n\t"            \
    "ldr    %[A], [%[wk], #36]\n\t"                  \
    DW_S2Q_RQ("a0") DW_S2Q_RQ("a1")                  \
    "strb   %[a0], [%[o]]\n\t"                       \
    "strb   %[a1], [%[o], #" CN1 "]\n\t"             \
    "add    %[o], %[o], #" CN2 "\n\t"                 \
    "3:\n\t"
#define DW_S2Q_ASM(CODE)                                                                                        \
    __asm__ volatile(CODE                                                                                       \
                     : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [o] "+r"(o), [A] "=&r"(A), [B] "=&r"(B),      \
                       [P] "=&r"(P), [Q] "=&r"(Q), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2),             \
                       [a3] "=&r"(a3), [oend] "=m"(oend)                                                         \
                     : [wk] "r"(wk), [bias] "r"(bias), [nb] "m"(n_bytes), [st] "m"(steps), [olast] "m"(o_last), \
                       [rem] "m"(rem)                                                                           \
                     : "cc", "memory")
#define DW_S2Q_CN(CN1, CN2, CN3, CN4, REM)                                                                        \
    for (int32_t j = 0; j < n_oc; j++)                                                                          \
    {                                                                                                           \
        const int16_t *x0 = planes + (mult == 1 ? j : j / mult) * plane_entries;                                \
        const int16_t *x1 = x0 + rw, *x2 = x0 + 2 * rw;                                                         \
        const uint32_t *wk = wk0 + j * wk_words;                                                                \
        register int32_t bias __asm__("lr") = (int32_t)wk[6]; /* the 14th register */                           \
        int8_t *o = o0 + j;                                                                                     \
        const int8_t *const o_last = o + rows_bytes;                                                            \
        int8_t *oend;                                                                                           \
        uint32_t A, B, P, Q;                                                                                    \
        int32_t a0, a1, a2, a3;                                                                                 \
        DW_S2Q_ASM(DW_S2Q_CODE(CN1, CN2, CN3, CN4, REM));                                                       \
    }

/* The four-output stride-2 loop for the output channel strides it has a copy for (MobileNet's stride-2 layers
 * with rows of a multiple of 4 outputs); 0 when none. */
static int32_t dw_rows_s2_quads(const dw_geom *g, const int16_t *planes, int32_t plane_entries, int32_t nb,
                                const uint32_t *wk0, const dw_out *q, int8_t *o0)
{
    const int32_t n_bytes = g->out_w / 4 * 4 * g->opx, rem = g->out_w % 4; /* the quads' output bytes */
    const int32_t steps[2] = {q->x_step, q->o_step};
    const int32_t rw = g->rw, mult = g->mult;
    const int32_t n_oc = g->group * mult, wk_words = DW_WK_WORDS(g), rows_bytes = nb * g->orow;
    if (g->out_w < 4 || (g->out_w & 1))
    {
        return 0;
    }
#define DW_S2Q_CASE(CN1, CN2, CN3, CN4)                  \
    DW_S2Q_CN(CN1, CN2, CN3, CN4, DW_S2Q_PAIR(CN1, CN2)) \
    return 1
    switch (g->opx)
    {
    case 8:
        DW_S2Q_CASE("8", "16", "24", "32");
    case 16:
        DW_S2Q_CASE("16", "32", "48", "64");
    case 32:
        DW_S2Q_CASE("32", "64", "96", "128");
    case 64:
        DW_S2Q_CASE("64", "128", "192", "256");
    default:
        return 0;
    }
#undef DW_S2Q_CASE
}

#define DW_ROWS_ASM(CODE)                                                                                       \
    __asm__ volatile(CODE                                                                                       \
                     : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [o] "+r"(o), [A] "=&r"(A), [B] "=&r"(B),      \
                       [P] "=&r"(P), [Q] "=&r"(Q), [a0] "=&r"(a0), [a1] "=&r"(a1), [oend] "=&r"(oend)            \
                     : [wk] "r"(wk), [cn] "r"(cn), [bias] "r"(bias), [nb] "m"(n_bytes), [st] "m"(steps),         \
                       [olast] "m"(o_last)                                                                      \
                     : "cc", "memory")

/* One channel's rows: x0 = its plane's band row of the first window's top (x1, x2 the next two band rows), wk =
 * its words, o = its first output, nb rows (o then ends at o_last); the other words from q (dw_pack_geometry). */
#define DW_CHANNEL_ROWS(CODE)                                                                                   \
    for (int32_t j = 0; j < n_oc; j++)                                                                          \
    {                                                                                                           \
        const int16_t *x0 = planes + (mult == 1 ? j : j / mult) * plane_entries;                                \
        const int16_t *x1 = x0 + rw, *x2 = x0 + 2 * rw;                                                         \
        const uint32_t *wk = wk0 + j * wk_words;                                                                \
        register int32_t bias __asm__("lr") = (int32_t)wk[6]; /* the 14th register */                           \
        int8_t *o = o0 + j;                                                                                     \
        const int8_t *const o_last = o + rows_bytes;                                                            \
        int8_t *oend;                                                                                           \
        uint32_t A, B, P, Q;                                                                                    \
        int32_t a0, a1;                                                                                         \
        DW_ROWS_ASM(CODE);                                                                                      \
    }

void resilinet_dw_rows_3x3_asm(const dw_geom *g, const int16_t *planes, int32_t plane_entries, int32_t nb,
                               const uint32_t *wk0, const dw_out *q, int8_t *o0)
{
    /* The loop over the group's output channels is here, around each variant's asm, so that a channel costs a
     * few instructions besides its rows (small outputs with many channels). */
    const int32_t n_bytes = q->pairs_bytes;
    const int32_t steps[2] = {q->x_step, q->o_step}; /* one LDRD at the end of a row */
    const int32_t rw = g->rw, cn = g->opx, mult = g->mult;
    const int32_t n_oc = g->group * mult, wk_words = DW_WK_WORDS(g), rows_bytes = nb * g->orow;
    if (g->out_w == 3 && nb == 3 && mult == 1 && g->orow == 3 * cn)
    {
        dw_rows_3x3_w3_asm(g, planes, plane_entries, wk0, q, o0);
        return;
    }
    if (g->sw == 1 && !(g->out_w & 1))
    {
        DW_CHANNEL_ROWS(DW_ROW_HEAD DW_S1_PAIR DW_PAIR_TAIL DW_ROW_TAIL)
    }
    else if (g->sw == 1)
    {
        DW_CHANNEL_ROWS(DW_ROW_HEAD DW_S1_PAIR DW_PAIR_TAIL DW_SINGLE("4") DW_ROW_TAIL)
    }
    else if (!(g->out_w & 1))
    {
        if (dw_rows_s2_quads(g, planes, plane_entries, nb, wk0, q, o0))
        {
            return;
        }
        DW_CHANNEL_ROWS(DW_ROW_HEAD DW_S2_PAIR DW_PAIR_TAIL DW_ROW_TAIL)
    }
    else
    {
        DW_CHANNEL_ROWS(DW_ROW_HEAD DW_S2_PAIR DW_PAIR_TAIL DW_SINGLE("8") DW_ROW_TAIL)
    }
}

#else
typedef int resilinet_dw_rows_3x3_asm_unused; /* ISO C wants a declaration in every translation unit */
#endif /* RESILINET_HAS_DSP && RESILINET_DSP_ASM */

#endif /* RESILINET_USE_CMSIS_NN */
