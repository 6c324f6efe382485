/*
 * autograd.h - the graph recorder and backward engine.
 *
 * Layer 3 of 8 (autograd: above core and kernels, below ops). Ops run through lc_apply(): it
 * calls op->forward and, when grad mode is on, the op is differentiable and an input requires
 * grad, records a node holding the op, its args, the inputs' shapes, the tensors the op asked
 * to save (data aliases without history, so no reference cycles), and one edge per input.
 * Backward walks nodes in reverse creation order.
 */
#ifndef LUCID_AUTOGRAD_H
#define LUCID_AUTOGRAD_H

#include "../kernels/op.h"

/* Where an input's gradient goes: into another node (its output output_nr), into a leaf's
 * .grad, or nowhere (both NULL). */
typedef struct lc_edge {
  struct lc_node *node; /* owned reference */
  int output_nr;
  lc_tensor *leaf;      /* owned reference to a leaf that requires grad */
} lc_edge;

typedef struct lc_node {
  lc_node_base base;    /* must be first */
  const lc_op_def *op;
  lc_op_args args;
  uint64_t seq;         /* creation order: a node is always newer than its inputs' nodes */
  int n_inputs;
  lc_edge *next;        /* n_inputs entries (allocated with the node) */
  lc_meta *in;          /* n_inputs entries */
  bool *needs_grad;     /* n_inputs entries */
  lc_meta out;
  int n_saved;
  lc_tensor **saved;    /* owned, history-free aliases; NULL after release */
  uint64_t *saved_version;
  bool released;        /* saved tensors freed by a backward without retain_graph */
  /* owned: the "grad slot" of a non-leaf output that called retain_grad. The slot is a small
   * tensor stored in that output's ->grad; backward accumulates into slot->grad, and lc_grad()
   * of a non-leaf reads it there. Shared ownership, so either side may die first, no cycle. */
  lc_tensor *retain_target;
  /* owned: hooks registered on the node's output 0 (a non-leaf's t:register_hook), run on its
   * gradient before the node's backward; NULL when none */
  lc_node_base *hooks;
  /* owned; NULL for an op's node. A custom function's node (lc_function_record) keeps its
   * definition and payload here, and has several differentiable outputs: output 0 uses the
   * fields above (out, retain_target, hooks), outputs 1.. the arrays below. */
  struct lc_node_ext *ext;
} lc_node;

typedef struct lc_node_ext {
  const lc_function_def *fn;
  char *name;    /* owned copy */
  void *payload; /* freed by fn->free on release or destroy */
  int n_outputs;
  lc_meta *out;         /* n_outputs entries; [0] mirrors lc_node.out */
  lc_tensor **retain;   /* n_outputs entries; [0] unused */
  lc_node_base **hooks; /* n_outputs entries; [0] unused */
} lc_node_ext;

/* Runs op and records it when needed. out[0..op->n_outputs-1] receive owned tensors. */
lc_status lc_apply(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *args,
                   lc_tensor **out);
/* In-place form: computes op(in) and writes the result into in[0] (cast to its dtype), bumping
 * its version. With grad recording, in[0] becomes the op's output in the graph (its history is
 * rebased); in-place on a leaf that requires grad, or on a view of a tensor that requires grad,
 * is an LC_EGRAD error. */
lc_status lc_apply_inplace(const lc_op_def *op, int n, lc_tensor *const *in,
                           const lc_op_args *args);

/* The in-place rules, owned here and shared with the writes that bypass lc_apply_inplace (raw
 * fill_ / zero_ / copy_ when no graph is involved): messages start with name ("add_").
 * lc_inplace_check_target: with grad mode on, a leaf that requires grad cannot be written.
 * lc_inplace_check_result: a result of shape (ndim, shape) and dtype dt can be written into
 * self: the same shape, and a dtype of self's kind or a lower one (no float into an integer
 * tensor, no integer into a bool one: PyTorch's can_cast). */
lc_status lc_inplace_check_target(const char *name, const lc_tensor *self);
lc_status lc_inplace_check_result(const char *name, const lc_tensor *self, int ndim,
                                  const int64_t *shape, lc_dtype dt);

/* Runs the hooks of list (a tensor's or a node's, NULL for none) on *grad in registration
 * order; a hook's replacement takes the place of *grad (owned). name prefixes errors. */
lc_status lc_ag_run_hooks(lc_node_base *list, lc_tensor **grad, const char *name);

/* The hook lists behind lc_register_hook, for other owners too (module hooks, src/nn): a
 * refcounted list in *slot (created on first use) of callbacks of the owner's type, removable
 * through the handle. Iterating: lc_hook_list_len and lc_hook_list_at (callback i, its ud and
 * id); a callback may remove entries while the list runs, so after calling entry i, look at i
 * again when its id changed. */
typedef void (*lc_hook_fn)(void);
lc_status lc_hook_list_add(lc_node_base **slot, lc_hook_fn fn, void *ud, void (*free_ud)(void *),
                           lc_hook_handle **handle);
int lc_hook_list_len(const lc_node_base *list);
lc_hook_fn lc_hook_list_at(const lc_node_base *list, int i, void **ud, uint64_t *id);

/* Grad mode: true when recording is on for this thread. */
bool lc_grad_mode(void);

#endif /* LUCID_AUTOGRAD_H */
