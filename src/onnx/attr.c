/* attr.c - reading a node's attributes by name, with defaults. */
#include "onnx_internal.h"

#include <string.h>

const Onnx__AttributeProto *ox_attr(const ox_node *n, const char *name) {
  const Onnx__NodeProto *p = n->proto;
  for (size_t i = 0; i < p->n_attribute; i++)
    if (p->attribute[i]->name && strcmp(p->attribute[i]->name, name) == 0) return p->attribute[i];
  return NULL;
}

int64_t ox_attr_int(const ox_node *n, const char *name, int64_t def) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a && a->has_i ? a->i : def;
}

double ox_attr_float(const ox_node *n, const char *name, double def) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a && a->has_f ? (double)a->f : def;
}

const char *ox_attr_string(const ox_node *n, const char *name, const char *def, char *buf,
                           size_t cap) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a || !a->has_s || cap == 0) return def;
  size_t len = a->s.len < cap - 1 ? a->s.len : cap - 1;
  if (len) memcpy(buf, a->s.data, len);
  buf[len] = '\0';
  return buf;
}

int64_t ox_attr_ints(const ox_node *n, const char *name, const int64_t **vals) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a || (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS && a->n_ints == 0)) {
    *vals = NULL;
    return -1;
  }
  *vals = a->ints;
  return (int64_t)a->n_ints;
}

int64_t ox_attr_floats(const ox_node *n, const char *name, const float **vals) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a || (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS && a->n_floats == 0)) {
    *vals = NULL;
    return -1;
  }
  *vals = a->floats;
  return (int64_t)a->n_floats;
}
