/*
 * nn.h - private layout of lucid's modules (layer 6 of 8: src/nn, above io, below the binding).
 * Public API: include/lucid_nn.h.
 */
#ifndef LUCID_NN_PRIVATE_H
#define LUCID_NN_PRIVATE_H

#include "lucid_nn.h"

#include "../core/alloc.h" /* malloc & co. through the failure-injection hooks */

#include <stdatomic.h>

/* An ordered list of named entries (tensors or modules, one owned reference each). */
typedef struct lc_entries {
  int64_t n, cap;
  char **names;
  void **items;
} lc_entries;

struct lc_module {
  atomic_long refcount;
  const lc_module_kind *kind;
  char *type_name; /* owned copy, or NULL for kind->name */
  void *state;     /* the kind's; freed by kind->destroy */
  bool training;
  lc_entries params;   /* lc_tensor* */
  lc_entries buffers;  /* lc_tensor* */
  lc_entries children; /* lc_module* */
  /* owned hook lists (src/nn/module_hooks.c), NULL when none: forward pre, forward, backward */
  struct lc_node_base *hooks[3];
};

/* Runs kind forward (fused with a ReLU when relu) with m's hooks around it (module_hooks.c). */
lc_status lc_nn_hooked_forward(lc_module *m, bool relu, const lc_tensor *x, lc_tensor **out);

/* lc_module_forward_child for a child whose kind has forward_relu, fused with the ReLU child
 * that follows it (the container skips that one). */
lc_status lc_nn_forward_child_relu(lc_module *m, int64_t i, const lc_tensor *x, lc_tensor **out);

/* Registers a new float32 parameter of zeros of the given shape (requires grad) under name. */
lc_status lc_nn_add_param(lc_module *m, const char *name, int ndim, const int64_t *shape);
/* Refills every own parameter of m from U(-bound, bound) (zeros when bound is 0) with grad
 * mode off: PyTorch's default init of Linear and the convolutions. */
lc_status lc_nn_uniform_params(lc_module *m, double bound);

/* v as printed reprs show sizes, like PyTorch's tuples: "(3, 4)", "(4,)", "()". Returns buf. */
const char *lc_nn_tuple_str(int n, const int64_t *v, char *buf, size_t cap);

/* malloc'ed copy of s (NULL on OOM, error set). */
char *lc_nn_strdup(const char *s);
/* A growable string for printing. */
typedef struct lc_strbuf {
  char *s;
  size_t len, cap;
  bool oom;
} lc_strbuf;
void lc_sb_add(lc_strbuf *b, const char *s);
void lc_sb_addf(lc_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A module of elementwise activation `code` (an lc_act_code of src/kernels/activation_list.h)
 * with parameters p[0..nparams-1] and the inplace flag (ignored by rows without one): what
 * lc_nn_<name> calls, for the binding that works from the list. Checks p (lc_act_check). */
lc_status lc_nn_act_new(int code, const double *p, bool inplace, lc_module **out);

#endif /* LUCID_NN_PRIVATE_H */
