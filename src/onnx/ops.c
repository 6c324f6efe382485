/* ops.c - the op table built from op_list.h, looked up by op_type. */
#include "onnx_internal.h"

#include <string.h>

static const ox_op table[] = {
#define OX_ROW_(Name, fn, mini, maxi, maxo, det) {#Name, fn, mini, maxi, maxo, det},
    OX_OP_LIST(OX_ROW_)
#undef OX_ROW_
};

int ox_op_count(void) { return (int)(sizeof table / sizeof table[0]); }

const ox_op *ox_op_at(int i) { return i >= 0 && i < ox_op_count() ? &table[i] : NULL; }

const ox_op *ox_find_op(const char *op_type) {
  if (!op_type) return NULL;
  for (int i = 0; i < ox_op_count(); i++)
    if (strcmp(table[i].name, op_type) == 0) return &table[i];
  return NULL;
}
