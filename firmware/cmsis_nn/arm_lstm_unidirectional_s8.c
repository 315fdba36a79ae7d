/*
 * resilinet-mcu: integer LSTM (TFLite UNIDIRECTIONAL_SEQUENCE_LSTM): the CMSIS-NN API arm_lstm_unidirectional_s8
 * (int8 activations) and arm_lstm_unidirectional_s16 (16x8: int16 activations, int64 gate bias), with
 * cmsis_nn_lstm_params / cmsis_nn_lstm_context. Both keep int16 gates and an int16 cell state.
 *
 * Arithmetic of TFLM's reference kernel (lstm_eval.h, "int8 activations, int16 cell state"), step by step:
 *   gate   = act(sat16(sat16(rq(W_x . x + b_eff_x)) + sat16(rq(W_h . h + b_eff_h))))   act: sigmoid or tanh
 *   cell   = sat16(rq(forget * cell)) ; cell = sat16(cell + sat16(rq(input * cell_gate))) ; clip
 *   hidden = clamp8(rq(tanh(cell) * output) + output_offset)
 * rq is TFLite's MultiplyByQuantizedMultiplier; b_eff folds the input / hidden zero points into the bias
 * (CMSIS-NN's "effective bias"), which leaves every int32 accumulator unchanged. Sigmoid and tanh are
 * TFLM's int16 table interpolation (reference_integer_ops::Logistic / Tanh).
 *
 * State: as in CMSIS-NN v8 (cmsis_nn_lstm_context.hidden_state), a non-NULL hidden_state makes the call
 * streaming: it starts from hidden_state / cell_state and leaves the last step's values there, which is
 * what TFLM's variable tensors do between invocations. With hidden_state == NULL the call starts from a
 * zero state (the stateless behaviour of the CMSIS-NN revision TFLM pins).
 */
#ifndef RESILINET_USE_CMSIS_NN

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* sigmoid(i / 24) in Q0.16 for i = 0..255, clamped to 65535: the interpolation table of TFLM's int16
 * Logistic and Tanh (tanh(x) = 2 sigmoid(2x) - 1). These values are data of the reference arithmetic;
 * the rounding of a few entries cannot be re-derived from a formula, so they are listed. */
static const uint16_t lstm_sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535};

static inline int16_t lstm_sat16(const int32_t v)
{
    return (int16_t)CLAMP(v, NN_Q15_MAX, NN_Q15_MIN);
}

/* In-place int16 sigmoid / tanh with CMSIS-NN's left_shift convention: the input is scaled by 3 * 2^left_shift
 * (TFLM's power-of-two case, input_multiplier == 0) or, for a negative left_shift, by 3 and a rounding
 * right shift of -left_shift (TFLM's Tanh of a cell state finer than Q3.12). */
static void lstm_activation_s16(int16_t *data, const int32_t size, const int32_t left_shift,
                                const arm_nn_activation_type type)
{
    const int32_t mult = left_shift < 0 ? 3 : 3 * (1 << left_shift);
    const int32_t shift = left_shift < 0 ? -left_shift : 0;
    const int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
    for (int32_t i = 0; i < size; i++)
    {
        const int32_t x = ((int32_t)data[i] * mult + round) >> shift;
        const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
        if (type == ARM_SIGMOID)
        {
            /* Q0.16 table at steps of 2^9 input units; result in Q0.15. */
            const uint32_t uh = ax >> 9;
            uint32_t r;
            if (uh >= 255u)
            {
                r = 0x7FFFu << 10;
            }
            else
            {
                const uint32_t ua = lstm_sigmoid_table[uh];
                const uint32_t ub = lstm_sigmoid_table[uh + 1u];
                r = (ua << 9) + (ax & 0x1FFu) * (ub - ua);
            }
            r = x >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
            data[i] = (int16_t)(r >> 10);
        }
        else
        {
            /* tanh(x) = 2 sigmoid(2x) - 1: the same table at steps of 2^8. */
            const uint32_t uh = ax >> 8;
            int32_t r;
            if (uh >= 255u)
            {
                r = (int32_t)(0xFFFFu << 8);
            }
            else
            {
                const uint32_t ua = lstm_sigmoid_table[uh];
                const uint32_t ub = lstm_sigmoid_table[uh + 1u];
                r = (int32_t)((ua << 8) + (ax & 0xFFu) * (ub - ua));
            }
            r = x >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
            data[i] = (int16_t)(r >> 8);
        }
    }
}

/* acc[r] = W[r] . x for the `count` (<= 4) consecutive rows of n int8 weights at w. Four rows share the
 * input unpacking on DSP cores (resilinet_nn_dot_4x_s8); int32 sums are exact in any order. */
static void lstm_dot_rows_s8(const int8_t *x, const int8_t *w, const int32_t n, const int32_t count, int32_t *acc)
{
#if RESILINET_HAS_DSP
    if (count == 4 && n >= 4)
    {
        const int32_t g = n >> 2;
        acc[0] = acc[1] = acc[2] = acc[3] = 0;
        resilinet_nn_dot_4x_s8(x, w, n, g, 0u, acc);
        for (int32_t k = g * 4; k < n; k++)
        {
            for (int32_t r = 0; r < 4; r++)
            {
                acc[r] += (int32_t)w[r * n + k] * x[k];
            }
        }
        return;
    }
#endif
    for (int32_t r = 0; r < count; r++)
    {
        acc[r] = resilinet_nn_dot_s8(x, w + r * n, n, 0);
    }
}

/* One gate for `batches` rows: out[b][i] = act(FC_x(x_b) + FC_h(h_b)) in Q3.12 -> Q0.15. A NULL hidden_in is
 * the zero state (its FC term is then 0, as TFLM's is on a hidden state at its zero point). int8: int32
 * sums with the zero points folded into the effective biases. int16 (16x8): int64 sums, the int64 gate bias
 * on the input term, TFLM's 64-bit requantization; zero points are 0. */
static void lstm_gate(const void *x,
                      const void *hidden_in,
                      const cmsis_nn_lstm_gate *gate,
                      const cmsis_nn_lstm_params *params,
                      const int32_t batches,
                      int16_t *out,
                      const int32_t s16)
{
    const int8_t *wx = (const int8_t *)gate->input_weights;
    const int8_t *wh = (const int8_t *)gate->hidden_weights;
    const int32_t n_in = params->input_size;
    const int32_t n_h = params->hidden_size;
    int32_t acc_x[4] = {0, 0, 0, 0};
    int32_t acc_hh[4] = {0, 0, 0, 0};
    for (int32_t b = 0; b < batches; b++)
    {
        for (int32_t i = 0; i < n_h; i++)
        {
            int32_t vx;
            int32_t vh = 0;
            if (s16)
            {
                const int16_t *xb = (const int16_t *)x + b * n_in;
                int64_t acc = ((const int64_t *)gate->bias)[i];
                for (int32_t k = 0; k < n_in; k++)
                {
                    acc += (int64_t)wx[i * n_in + k] * xb[k];
                }
                vx = resilinet_nn_requantize_s64(acc, gate->input_multiplier, gate->input_shift);
                if (hidden_in != NULL)
                {
                    const int16_t *hb = (const int16_t *)hidden_in + b * n_h;
                    int64_t acc_h = 0;
                    for (int32_t k = 0; k < n_h; k++)
                    {
                        acc_h += (int64_t)wh[i * n_h + k] * hb[k];
                    }
                    vh = resilinet_nn_requantize_s64(acc_h, gate->hidden_multiplier, gate->hidden_shift);
                }
            }
            else
            {
                /* Rows come in blocks of four: the block's sums are computed at its first row. */
                if ((i & 3) == 0)
                {
                    const int32_t count = MIN(4, n_h - i);
                    lstm_dot_rows_s8((const int8_t *)x + b * n_in, wx + i * n_in, n_in, count, acc_x);
                    if (hidden_in != NULL)
                    {
                        lstm_dot_rows_s8((const int8_t *)hidden_in + b * n_h, wh + i * n_h, n_h, count, acc_hh);
                    }
                }
                vx = arm_nn_requantize(acc_x[i & 3] + ((const int32_t *)gate->input_effective_bias)[i],
                                       gate->input_multiplier, gate->input_shift);
                if (hidden_in != NULL)
                {
                    vh = arm_nn_requantize(acc_hh[i & 3] + ((const int32_t *)gate->hidden_effective_bias)[i],
                                           gate->hidden_multiplier, gate->hidden_shift);
                }
            }
            /* Each FC output is clamped to int16 before the two are added (TFLM: two FCs, then a saturating add). */
            out[b * n_h + i] = lstm_sat16(lstm_sat16(vx) + lstm_sat16(vh));
        }
    }
    lstm_activation_s16(out, batches * n_h, 0, gate->activation_type);
}

/* One time step for `batches` rows laid out contiguously (data_in, hidden_in, hidden_out: int8, or int16 when
 * s16; cell: int16). */
static void lstm_step(const void *data_in,
                      const void *hidden_in,
                      void *hidden_out,
                      int16_t *cell,
                      const cmsis_nn_lstm_params *params,
                      const cmsis_nn_lstm_context *buffers,
                      const int32_t batches,
                      const int32_t s16)
{
    int16_t *t1 = (int16_t *)buffers->temp1;
    int16_t *t2 = (int16_t *)buffers->temp2;
    const int32_t n = batches * params->hidden_size;
    lstm_gate(data_in, hidden_in, &params->forget_gate, params, batches, t1, s16);
    for (int32_t i = 0; i < n; i++)
    {
        cell[i] = lstm_sat16(
            arm_nn_requantize((int32_t)t1[i] * cell[i], params->forget_to_cell_multiplier, params->forget_to_cell_shift));
    }
    lstm_gate(data_in, hidden_in, &params->input_gate, params, batches, t1, s16);
    lstm_gate(data_in, hidden_in, &params->cell_gate, params, batches, t2, s16);
    for (int32_t i = 0; i < n; i++)
    {
        const int32_t update = lstm_sat16(
            arm_nn_requantize((int32_t)t1[i] * t2[i], params->input_to_cell_multiplier, params->input_to_cell_shift));
        int32_t c = lstm_sat16(cell[i] + update);
        if (params->cell_clip > 0) /* TFLM clips only when the model sets cell_clip */
        {
            c = CLAMP(c, params->cell_clip, -params->cell_clip);
        }
        cell[i] = (int16_t)c;
    }
    lstm_gate(data_in, hidden_in, &params->output_gate, params, batches, t1, s16);
    for (int32_t i = 0; i < n; i++)
    {
        t2[i] = cell[i];
    }
    /* The gates' tanh runs on Q3.12 (left shift 0), the hidden tanh on the cell state's own scale. */
    lstm_activation_s16(t2, n, params->cell_scale_power + 12, ARM_TANH);
    for (int32_t i = 0; i < n; i++)
    {
        const int32_t h =
            arm_nn_requantize((int32_t)t2[i] * t1[i], params->output_multiplier, params->output_shift) +
            params->output_offset;
        if (s16)
        {
            ((int16_t *)hidden_out)[i] = lstm_sat16(h);
        }
        else
        {
            ((int8_t *)hidden_out)[i] = (int8_t)CLAMP(h, NN_Q7_MAX, NN_Q7_MIN);
        }
    }
}

/* Both APIs: `esize` bytes per activation (1: s8, 2: s16). */
static arm_cmsis_nn_status lstm_unidirectional(const void *input,
                                               void *output,
                                               const cmsis_nn_lstm_params *params,
                                               cmsis_nn_lstm_context *buffers,
                                               const int32_t esize)
{
    const int32_t n_h = params->hidden_size;
    const int32_t s16 = esize == 2;
    const int8_t *in = (const int8_t *)input; /* byte pointers: offsets below are in elements * esize */
    int8_t *out = (int8_t *)output;
    int8_t *state = (int8_t *)buffers->hidden_state;
    int16_t *cell = (int16_t *)buffers->cell_state;
    if (state == NULL)
    {
        memset(cell, 0, (size_t)params->batch_size * (size_t)n_h * sizeof(int16_t));
    }
    if (params->time_major)
    {
        /* [time, batch, size]: every batch advances one step per iteration, as in TFLM. */
        const int8_t *hidden_in = state;
        for (int32_t t = 0; t < params->time_steps; t++)
        {
            int8_t *hidden_out = out + t * params->batch_size * n_h * esize;
            lstm_step(in + t * params->batch_size * params->input_size * esize, hidden_in, hidden_out, cell, params,
                      buffers, params->batch_size, s16);
            hidden_in = hidden_out;
        }
        if (state != NULL && params->time_steps > 0)
        {
            memcpy(state, hidden_in, (size_t)(params->batch_size * n_h * esize));
        }
        return ARM_CMSIS_NN_SUCCESS;
    }
    /* [batch, time, size]: one batch at a time over all its time steps. */
    for (int32_t b = 0; b < params->batch_size; b++)
    {
        const int8_t *hidden_in = state != NULL ? state + b * n_h * esize : NULL;
        for (int32_t t = 0; t < params->time_steps; t++)
        {
            const int32_t row = b * params->time_steps + t;
            int8_t *hidden_out = out + row * n_h * esize;
            lstm_step(in + row * params->input_size * esize, hidden_in, hidden_out, cell + b * n_h, params, buffers,
                      1, s16);
            hidden_in = hidden_out;
        }
        if (state != NULL && params->time_steps > 0)
        {
            memcpy(state + b * n_h * esize, hidden_in, (size_t)(n_h * esize));
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_lstm_unidirectional_s8(const int8_t *input,
                                               int8_t *output,
                                               const cmsis_nn_lstm_params *params,
                                               cmsis_nn_lstm_context *buffers)
{
    return lstm_unidirectional(input, output, params, buffers, 1);
}

arm_cmsis_nn_status arm_lstm_unidirectional_s16(const int16_t *input,
                                                int16_t *output,
                                                const cmsis_nn_lstm_params *params,
                                                cmsis_nn_lstm_context *buffers)
{
    return lstm_unidirectional(input, output, params, buffers, 2);
}

#endif /* RESILINET_USE_CMSIS_NN */
