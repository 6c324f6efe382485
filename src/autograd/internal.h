/*
 * internal.h - helpers shared by the autograd layer's .c files (not part of any API).
 */
#ifndef LUCID_AUTOGRAD_INTERNAL_H
#define LUCID_AUTOGRAD_INTERNAL_H

#include "autograd.h"

/* A fresh contiguous copy of t converted to dtype dt (no history). */
lc_status lc_ag_clone(const lc_tensor *t, lc_dtype dt, lc_tensor **out);

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

static inline bool lc_ag_has_slot(const lc_tensor *t) { return t->grad_fn && t->retains_grad; }

#endif
