/*
 * internal.h - helpers shared by the autograd layer's .c files (not part of any API).
 */
#ifndef LUCID_AUTOGRAD_INTERNAL_H
#define LUCID_AUTOGRAD_INTERNAL_H

#include "autograd.h"

#include <string.h>

/* A fresh contiguous copy of t converted to dtype dt (no history). */
lc_status lc_ag_clone(const lc_tensor *t, lc_dtype dt, lc_tensor **out);

/* t's shape and dtype as a node keeps them. */
static inline void lc_ag_fill_meta(lc_meta *m, const lc_tensor *t) {
  m->ndim = t->ndim;
  memcpy(m->shape, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
  m->dtype = t->dtype;
}

/* The node behind a tensor's grad_fn (every grad_fn is an lc_node). */
static inline lc_node *lc_ag_node(const lc_tensor *t) { return (lc_node *)t->grad_fn; }

/* retain_grad: a non-leaf that retains its gradient stores in t->grad a small "slot" tensor
 * (0-dim, never read as data) whose own ->grad field holds the gradient. The node producing t
 * holds a strong reference to the same slot in node->retain_target. So the node never points
 * at t itself (no dangling pointer when t is freed first, no cycle t -> node -> t), and the
 * engine writes into slot->grad, which lc_grad(t) reads. */
/* Whether op's save mask keeps input i (engine.c's record order: inputs by index, then
 * outputs). */
static inline bool lc_ag_saves_input(unsigned save, int i) {
  if ((save & LC_SAVE_ALL_INPUTS) == LC_SAVE_ALL_INPUTS) return true;
  return i < 8 && (save & LC_SAVE_IN(i));
}

/* Per-output state of a node: output k's metadata, retain_grad slot and hooks (a custom
 * function's node has several differentiable outputs; an op's only output 0). */
static inline int lc_ag_n_outputs(const lc_node *nd) { return nd->ext ? nd->ext->n_outputs : 1; }
static inline lc_meta *lc_ag_out_meta(lc_node *nd, int k) {
  return k == 0 ? &nd->out : &nd->ext->out[k];
}
static inline lc_tensor **lc_ag_retain_slot(lc_node *nd, int k) {
  return k == 0 ? &nd->retain_target : &nd->ext->retain[k];
}
static inline lc_node_base **lc_ag_hooks_slot(lc_node *nd, int k) {
  return k == 0 ? &nd->hooks : &nd->ext->hooks[k];
}
/* The name a node's errors and grad_fn carry ("AddBackward", a custom function's name). */
static inline const char *lc_ag_node_name(const lc_node *nd) {
  if (nd->ext) return nd->ext->name;
  return nd->op->grad_fn_name ? nd->op->grad_fn_name : nd->op->name;
}
/* What a custom function's backward is given (lc_function_saved_output reads it). */
struct lc_function_ctx {
  lc_node *node;
  bool create_graph;
};

/* create_graph: an alias of saved tensor s carrying the history of the value it saved (node's
 * output nr), so gradients computed from it differentiate through it. backward.c */
lc_status lc_ag_with_history(const lc_tensor *s, lc_node *node, int nr, lc_tensor **out);

/* Frees a custom node's payload (once). engine.c */
void lc_ag_ext_release_payload(lc_node *nd);
/* Node nd's edges and input metas from its n inputs: each input's history (a reference to its
 * node), or the leaf itself when it requires grad. engine.c */
void lc_ag_set_inputs(lc_node *nd, int n, lc_tensor *const *in);
/* One node allocation (engine.c): edges, metas, saved slots, empty. */
lc_node *lc_ag_node_alloc(const lc_op_def *op, int n, int n_saved, const lc_op_args *args);

/* Whether hook list b (a leaf's, may be NULL) holds post-accumulate-grad hooks (post) or
 * gradient hooks (!post); the post hooks of leaf's list run on leaf. hooks.c */
bool lc_ag_hooks_any(const lc_node_base *b, bool post);
lc_status lc_ag_run_post_hooks(lc_node_base *b, lc_tensor *leaf);

/* Whether shapes (na, a) and (nb, b) are the same. */
static inline bool lc_ag_same_shape(int na, const int64_t *a, int nb, const int64_t *b) {
  return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof a[0]) == 0);
}

static inline bool lc_ag_has_slot(const lc_tensor *t) { return t->grad_fn && t->retains_grad; }

#endif
