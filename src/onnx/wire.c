/*
 * wire.c - a pre-pass over the protobuf bytes, before protobuf-c unpacks them: protobuf-c
 * recurses once per nested message and has no depth limit, so a file nesting graphs in
 * attributes in nodes in graphs (or types in sequence types) a million times deep would
 * overflow the stack. This walks only the message fields that can nest (everything else is
 * skipped by its length), bounds the depth, counts the nodes, and rejects malformed framing.
 */
#include "onnx_internal.h"

#include "wire.h"

typedef enum msg_kind {
  M_OTHER, /* not walked */
  M_MODEL,
  M_GRAPH,
  M_NODE,
  M_ATTRIBUTE,
  M_FUNCTION,
  M_TRAINING,
  M_VALUE_INFO,
  M_TYPE,
  M_TYPE_ELEM, /* TypeProto.Sequence / Optional (field 1) and Map (field 2): hold a TypeProto */
} msg_kind;

/* The kind of the message in field `field` of a message of kind k (M_OTHER: not walked). */
static msg_kind child_kind(msg_kind k, uint32_t field) {
  switch (k) {
  case M_MODEL:
    return field == 7 ? M_GRAPH : field == 25 ? M_FUNCTION : field == 20 ? M_TRAINING : M_OTHER;
  case M_TRAINING: return field == 1 || field == 2 ? M_GRAPH : M_OTHER;
  case M_GRAPH: return field == 1 ? M_NODE : (field >= 11 && field <= 13) ? M_VALUE_INFO : M_OTHER;
  case M_NODE: return field == 5 ? M_ATTRIBUTE : M_OTHER;
  case M_FUNCTION: return field == 7 ? M_NODE : field == 11 ? M_ATTRIBUTE : M_OTHER;
  case M_ATTRIBUTE:
    return field == 6 || field == 11 ? M_GRAPH : field == 14 || field == 15 ? M_TYPE : M_OTHER;
  case M_VALUE_INFO: return field == 2 ? M_TYPE : M_OTHER;
  case M_TYPE: return field == 4 || field == 5 || field == 9 ? M_TYPE_ELEM : M_OTHER;
  case M_TYPE_ELEM: return field == 1 || field == 2 ? M_TYPE : M_OTHER;
  default: return M_OTHER;
  }
}

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return false;
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

static lc_status walk(const uint8_t *p, const uint8_t *end, msg_kind k, int depth,
                      ox_wire_limits *lim) {
  if (depth > lim->max_nesting)
    return lc_set_error(LC_EFORMAT, "onnx: messages nested more than %d deep (a recursion bomb?)",
                        lim->max_nesting);
  while (p < end) {
    uint64_t key, len;
    if (!read_varint(&p, end, &key))
      return lc_set_error(LC_EFORMAT, "onnx: truncated or malformed protobuf");
    uint32_t field = (uint32_t)(key >> 3), wt = (uint32_t)(key & 7);
    switch (wt) {
    case 0:
      if (!read_varint(&p, end, &len))
        return lc_set_error(LC_EFORMAT, "onnx: truncated or malformed protobuf");
      break;
    case 1:
      if (end - p < 8) return lc_set_error(LC_EFORMAT, "onnx: truncated or malformed protobuf");
      p += 8;
      break;
    case 5:
      if (end - p < 4) return lc_set_error(LC_EFORMAT, "onnx: truncated or malformed protobuf");
      p += 4;
      break;
    case 2: {
      if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p))
        return lc_set_error(LC_EFORMAT, "onnx: truncated or malformed protobuf");
      msg_kind ck = child_kind(k, field);
      if (ck == M_NODE && ++lim->nodes > lim->max_nodes)
        return lc_set_error(LC_EFORMAT, "onnx: more than %lld nodes", (long long)lim->max_nodes);
      if (ck != M_OTHER) {
        lc_status st = walk(p, p + len, ck, depth + 1, lim);
        if (st) return st;
      }
      p += len;
      break;
    }
    default: return lc_set_error(LC_EFORMAT, "onnx: malformed protobuf (wire type %u)", wt);
    }
  }
  return LC_OK;
}

lc_status ox_wire_check(const void *data, size_t size, ox_wire_limits *lim) {
  lim->nodes = 0;
  return walk(data, (const uint8_t *)data + size, M_MODEL, 0, lim);
}
