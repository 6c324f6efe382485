/* wire.h - the protobuf pre-pass (wire.c). */
#ifndef LUCID_ONNX_WIRE_H
#define LUCID_ONNX_WIRE_H

#include "lucid_core.h"

typedef struct ox_wire_limits {
  int max_nesting;
  int64_t max_nodes;
  int64_t nodes; /* out: nodes seen (all graphs) */
} ox_wire_limits;

/* LC_EFORMAT when the bytes are not well-framed protobuf, nest deeper than max_nesting or hold
 * more than max_nodes nodes. */
lc_status ox_wire_check(const void *data, size_t size, ox_wire_limits *lim);

#endif
