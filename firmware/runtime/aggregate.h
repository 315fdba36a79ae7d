/*
 * Aggregation of a sample's incoming links into the node's model inputs: the
 * part of the node runtime (node_runtime.c) that applies each input's kind
 * (node_input_kind_t: plain link with zero-point fill, pointer mux, standby
 * skip guarded by the node's normal links, average of replicas).  Internal to
 * the runtime; the configuration types are in node_runtime.h.
 */
#ifndef RESILINET_NODE_AGGREGATE_H
#define RESILINET_NODE_AGGREGATE_H

#include <stdint.h>

#include "node_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when input `in` is settled (DATA or fill) whatever else arrives; `state`: node_link_state_t per link. */
int node_input_resolved(const node_input_t *in, const uint8_t *state);

/* Links of `in` still awaited when its sample is given up (deadline or eviction): for a plain input its
 * one link, for a mux the links before the first that came, for a standby its skip unless a guard came. */
uint32_t node_input_timeouts(const node_input_t *in, const uint8_t *state);

/* The tensor model input `in` gets from `slot`: a link's buffer, the mean of replicas (written over the
 * first replica's buffer), or that buffer filled with the zero point (the real value 0) when nothing
 * usable came.  Never NULL. */
const int8_t *node_input_tensor(const node_t *n, node_slot_t *slot, const node_input_t *in);

#ifdef __cplusplus
}
#endif

#endif /* RESILINET_NODE_AGGREGATE_H */
