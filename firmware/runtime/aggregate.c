/* Aggregation of a sample's incoming links into model inputs (see aggregate.h and node_runtime.h). */
#include "aggregate.h"

#include <string.h>

/* The guards of a STANDBY input taken together: DATA if any guard's DATA came,
 * DOWN if all are down, else WAITING. */
static uint8_t standby_guard(const node_input_t *in, const uint8_t *state)
{
    uint8_t all_down = 1u;
    for (size_t j = 0; j + 1u < in->n_links; j++) {
        uint8_t st = state[in->links[j]];
        if (st == NODE_LINK_DATA) {
            return NODE_LINK_DATA;
        }
        all_down &= (uint8_t)(st == NODE_LINK_DOWN);
    }
    return all_down ? NODE_LINK_DOWN : NODE_LINK_WAITING;
}

int node_input_resolved(const node_input_t *in, const uint8_t *state)
{
    if (in->kind == NODE_INPUT_STANDBY) {
        uint8_t guard = standby_guard(in, state);
        return guard == NODE_LINK_DATA ||
               (guard == NODE_LINK_DOWN && state[in->links[in->n_links - 1u]] != NODE_LINK_WAITING);
    }
    if (in->kind == NODE_INPUT_AVERAGE) { /* every replica counts: wait for all of them */
        for (size_t j = 0; j < in->n_links; j++) {
            if (state[in->links[j]] == NODE_LINK_WAITING) {
                return 0;
            }
        }
        return 1;
    }
    for (size_t j = 0; j < in->n_links; j++) {
        uint8_t st = state[in->links[j]];
        if (st == NODE_LINK_DATA) {
            return 1;
        }
        if (st == NODE_LINK_WAITING) {
            return 0;
        }
        /* DOWN: a mux goes on to its next link */
    }
    return 1; /* all down */
}

uint32_t node_input_timeouts(const node_input_t *in, const uint8_t *state)
{
    uint32_t waited = 0u;
    if (in->kind == NODE_INPUT_STANDBY) {
        return state[in->links[in->n_links - 1u]] == NODE_LINK_WAITING && standby_guard(in, state) != NODE_LINK_DATA;
    }
    for (size_t j = 0; j < in->n_links; j++) {
        uint8_t st = state[in->links[j]];
        if (st == NODE_LINK_DATA && in->kind != NODE_INPUT_AVERAGE) {
            break;
        }
        waited += st == NODE_LINK_WAITING;
    }
    return waited;
}

/* The mean of the replicas of an AVERAGE input whose DATA came, written over
 * the first replica's buffer (the slot owns it; it is read before it is
 * written, element by element); NULL if none came.  All replicas share one
 * zero point and scale, so the mean of the codes is the code of the mean:
 * sum / count rounded half away from zero, as host/ml/split.py computes. */
static const int8_t *average_replicas(const node_t *n, node_slot_t *slot, const node_input_t *inp)
{
    const int8_t *src[NODE_MUX_MAX];
    int32_t count = 0;
    for (size_t j = 0; j < inp->n_links; j++) {
        uint8_t li = inp->links[j];
        if (slot->state[li] == NODE_LINK_DATA) {
            src[count++] = slot->buf + n->link_offset[li];
        }
    }
    if (count <= 1) {
        return count == 1 ? src[0] : NULL;
    }
    int8_t *dst = slot->buf + n->link_offset[inp->links[0]];
    for (size_t i = 0; i < inp->bytes; i++) {
        int32_t sum = 0;
        for (int32_t j = 0; j < count; j++) {
            sum += src[j][i];
        }
        int32_t mag = ((sum < 0 ? -sum : sum) + count / 2) / count;
        dst[i] = (int8_t)(sum < 0 ? -mag : mag);
    }
    return dst;
}

const int8_t *node_input_tensor(const node_t *n, node_slot_t *slot, const node_input_t *in)
{
    /* the link whose buffer feeds (or, zero-filled, stands for) this input */
    uint8_t fill = in->kind == NODE_INPUT_STANDBY ? in->links[in->n_links - 1u] : in->links[0];
    const int8_t *got = NULL;
    if (in->kind == NODE_INPUT_STANDBY) {
        if (standby_guard(in, slot->state) != NODE_LINK_DATA && slot->state[fill] == NODE_LINK_DATA) {
            got = slot->buf + n->link_offset[fill];
        }
    } else if (in->kind == NODE_INPUT_AVERAGE) {
        got = average_replicas(n, slot, in);
    } else {
        for (size_t j = 0; j < in->n_links; j++) {
            uint8_t li = in->links[j];
            if (slot->state[li] == NODE_LINK_DATA) {
                got = slot->buf + n->link_offset[li];
                break;
            }
        }
    }
    if (got == NULL) { /* missing: the real value 0 (a node with no data at all sends nothing: the caller) */
        int8_t *buf = slot->buf + n->link_offset[fill];
        memset(buf, (uint8_t)n->cfg->links_in[fill].zero_point, in->bytes);
        got = buf;
    }
    return got;
}
