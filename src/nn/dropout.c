/* dropout.c - the Dropout module kind: lc_dropout (src/ops/dropout.c) with the module's
 * training flag. */
#include "lucid_dropout.h"
#include "kind_helpers.h"
#include "nn.h"

#include "../ops/dropout.h"

static lc_status dropout_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return strip_fn(lc_dropout(x, st_of(m)->a, lc_module_is_training(m), out), "dropout");
}
static lc_status dropout_extra(const lc_module *m, char **out) {
  char b[64];
  return set_repr(out, "p=%s, inplace=%s", num_str(st_of(m)->a, true, b, sizeof b),
                  st_of(m)->inplace ? "true" : "false");
}
static bool dropout_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "p") == 0) {
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = st_of(m)->a};
    return true;
  }
  return inplace_attr(m, name, out);
}
const lc_module_kind lc_kind_dropout = {.name = "Dropout",
                                        .forward = dropout_forward,
                                        .extra_repr = dropout_extra,
                                        .attr = dropout_attr,
                                        .destroy = free_state};
lc_status lc_nn_dropout(double p, bool inplace, lc_module **out) {
  lc_status st = lc_dropout_check_p("Dropout", p);
  if (st) return st;
  return new_kind(&lc_kind_dropout, (act_state){.a = p, .inplace = inplace}, out);
}
