/*
 * engine.c - lc_apply / lc_apply_inplace: run an op and, when gradients are needed, record a
 * graph node for it. The backward pass lives in backward.c.
 *
 * A node is ONE allocation: struct lc_node followed by its arrays (edges, input metas, saved
 * tensors, saved versions, needs_grad), so recording costs one malloc plus one header per
 * saved tensor. Saved tensors are history-free aliases (same storage, no grad_fn), so a node
 * never references its own output: no reference cycles.
 */
#include "internal.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static atomic_uint_fast64_t next_seq = 1;

static void node_destroy(lc_node_base *base);

/* ------------------------------------------------------------------ helpers */

lc_status lc_ag_clone(const lc_tensor *t, lc_dtype dt, lc_tensor **out) {
  lc_tensor *c = NULL;
  lc_status st = lc_tensor_new(t->ndim, t->shape, dt, &c);
  if (st) return st;
  st = lc_k_copy(c, t);
  if (st) {
    lc_release(c);
    return st;
  }
  *out = c;
  return LC_OK;
}

static bool save_input(unsigned save, int i) { return lc_ag_saves_input(save, i); }

/* kind: bool < integer < float. A result can be written into a tensor of the same or a
 * higher kind (float64 into float32 is fine, float into int64 is not), as in PyTorch. */
static int dtype_kind(lc_dtype dt) {
  if (dt == LC_BOOL) return 0;
  return lc_dtype_is_float(dt) ? 2 : 1;
}

/* The intrusive "to destroy" list of node_destroy links dying nodes through their seq field,
 * which nothing needs once the refcount hit zero (so destruction never allocates). */
#define DEAD_NEXT(nd) ((lc_node *)(uintptr_t)(nd)->seq)
#define SET_DEAD_NEXT(nd, nx) ((nd)->seq = (uint64_t)(uintptr_t)(nx))

/* Called when a node's refcount reaches zero. Iterative: releasing a node may drop the last
 * reference to the nodes it points at; those are pushed on a list instead of recursing, so a
 * chain of a million nodes does not overflow the C stack. */
static void node_destroy(lc_node_base *base) {
  lc_node *list = (lc_node *)base;
  SET_DEAD_NEXT(list, NULL);
  while (list) {
    lc_node *nd = list;
    list = DEAD_NEXT(nd);
    for (int i = 0; i < nd->n_inputs; i++) {
      lc_edge *e = &nd->next[i];
      if (e->node) {
        lc_node *child = e->node;
        if (atomic_fetch_sub_explicit(&child->base.refcount, 1, memory_order_acq_rel) == 1) {
          if (child->base.destroy == node_destroy) {
            SET_DEAD_NEXT(child, list);
            list = child;
          } else {
            child->base.destroy(&child->base);
          }
        }
      }
      lc_release(e->leaf);
    }
    if (nd->saved)
      for (int k = 0; k < nd->n_saved; k++)
        lc_release(nd->saved[k]);
    lc_release(nd->retain_target);
    lc_node_base_release(nd->hooks);
    if (nd->ext) {
      lc_ag_ext_release_payload(nd);
      for (int k = 1; k < nd->ext->n_outputs; k++) {
        lc_release(nd->ext->retain[k]);
        lc_node_base_release(nd->ext->hooks[k]);
      }
      free(nd->ext->name);
      free(nd->ext);
    }
    free(nd);
  }
}

/* One allocation for the node and its arrays. Edges and saved slots start empty. */
void lc_ag_set_inputs(lc_node *nd, int n, lc_tensor *const *in) {
  for (int i = 0; i < n; i++) {
    lc_tensor *x = in[i];
    lc_ag_fill_meta(&nd->in[i], x);
    if (x->grad_fn) {
      atomic_fetch_add_explicit(&x->grad_fn->refcount, 1, memory_order_relaxed);
      nd->next[i].node = lc_ag_node(x);
      nd->next[i].output_nr = x->output_nr;
      nd->needs_grad[i] = true;
    } else if (x->requires_grad) {
      nd->next[i].leaf = lc_retain(x);
      nd->needs_grad[i] = true;
    }
  }
}

lc_node *lc_ag_node_alloc(const lc_op_def *op, int n, int n_saved, const lc_op_args *args) {
  size_t sz = sizeof(lc_node);
  size_t off_edges = sz;
  sz += (size_t)n * sizeof(lc_edge);
  size_t off_meta = sz;
  sz += (size_t)n * sizeof(lc_meta);
  size_t off_saved = sz;
  sz += (size_t)n_saved * sizeof(lc_tensor *);
  size_t off_ver = sz;
  sz += (size_t)n_saved * sizeof(uint64_t);
  size_t off_ng = sz;
  sz += (size_t)n * sizeof(bool);
  _Static_assert(sizeof(lc_node) % _Alignof(lc_edge) == 0 && sizeof(lc_edge) % 8 == 0 &&
                     sizeof(lc_meta) % 8 == 0,
                 "node arrays stay 8-byte aligned");
  char *p = malloc(sz);
  if (!p) {
    lc_error_oom(sz);
    return NULL;
  }
  lc_node *nd = (lc_node *)p;
  atomic_init(&nd->base.refcount, 1);
  nd->base.destroy = node_destroy;
  nd->op = op;
  if (args)
    nd->args = *args;
  else
    memset(&nd->args, 0, sizeof nd->args);
  nd->seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed);
  nd->n_inputs = n;
  nd->next = (lc_edge *)(p + off_edges);
  nd->in = (lc_meta *)(p + off_meta);
  nd->needs_grad = (bool *)(p + off_ng);
  nd->n_saved = n_saved;
  nd->saved = n_saved ? (lc_tensor **)(p + off_saved) : NULL;
  nd->saved_version = n_saved ? (uint64_t *)(p + off_ver) : NULL;
  nd->released = false;
  nd->retain_target = NULL;
  nd->hooks = NULL;
  nd->ext = NULL;
  for (int i = 0; i < n; i++) {
    nd->next[i].node = NULL;
    nd->next[i].output_nr = 0;
    nd->next[i].leaf = NULL;
    nd->needs_grad[i] = false;
  }
  for (int k = 0; k < n_saved; k++)
    nd->saved[k] = NULL;
  return nd;
}

void lc_ag_ext_release_payload(lc_node *nd) {
  lc_node_ext *x = nd->ext;
  if (x && x->payload) {
    void *p = x->payload;
    x->payload = NULL;
    if (x->fn->free) x->fn->free(p);
  }
}

/* A history-free alias of t: same storage and layout, no grad_fn, requires_grad false. */
static lc_status alias_of(const lc_tensor *t, lc_tensor **out) {
  return lc_tensor_view_of(t, t->ndim, t->shape, t->strides, t->offset, out);
}

/* Builds the node for op(in) -> out. When inplace_target is set (lc_apply_inplace), saved
 * inputs sharing its storage are saved as copies: the target is about to be overwritten, and
 * backward needs the values forward saw. The node is returned with one reference, not yet
 * attached to any tensor. */
static lc_status record(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *args,
                        lc_tensor *const *out, const lc_tensor *inplace_target,
                        lc_node **node_out) {
  int n_saved = 0;
  for (int i = 0; i < n; i++)
    n_saved += save_input(op->save, i);
  for (int k = 0; k < op->n_outputs; k++)
    n_saved += (op->save & LC_SAVE_OUT(k)) != 0;

  lc_node *nd = lc_ag_node_alloc(op, n, n_saved, args);
  if (!nd) return LC_ENOMEM;
  lc_ag_set_inputs(nd, n, in);
  lc_ag_fill_meta(&nd->out, out[0]);

  lc_status st = LC_OK;
  int k = 0;
  for (int i = 0; i < n && !st; i++) {
    if (!save_input(op->save, i)) continue;
    if (inplace_target && lc_same_storage(in[i], inplace_target))
      st = lc_ag_clone(in[i], in[i]->dtype, &nd->saved[k]);
    else
      st = alias_of(in[i], &nd->saved[k]);
    if (!st) nd->saved_version[k] = lc_version(nd->saved[k]);
    k++;
  }
  for (int o = 0; o < op->n_outputs && !st; o++) {
    if (!(op->save & LC_SAVE_OUT(o))) continue;
    st = alias_of(out[o], &nd->saved[k]);
    if (!st) nd->saved_version[k] = lc_version(nd->saved[k]);
    k++;
  }
  if (st) {
    node_destroy(&nd->base);
    return st;
  }
  *node_out = nd;
  return LC_OK;
}

static bool any_requires_grad(int n, lc_tensor *const *in) {
  for (int i = 0; i < n; i++)
    if (in[i]->requires_grad) return true;
  return false;
}

static lc_status refresh_view(lc_tensor *v);

/* ------------------------------------------------------------------ lc_apply */

lc_status lc_apply(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *args,
                   lc_tensor **out) {
  lc_status st = LC_OK;
  if (lc_grad_mode())
    for (int i = 0; i < n && !st; i++)
      if (in[i]->view_base && lc_version(in[i]) != in[i]->view_version) st = refresh_view(in[i]);
  if (st) return st;
  lc_tensor *res[LC_OP_MAX_OUTPUTS] = {NULL};
  st = lc_op_run(op, n, in, args, res);
  if (st) return st;
  int n_out = op->n_outputs;

  /* A view op's result remembers the tensor that owns the data (the root of a chain of
   * views), so an in-place write into it can rewrite the root's history (inplace_on_view),
   * and the storage version its history was taken at (refresh_view). */
  if (op->is_view && n > 0 && res[0] && !res[0]->view_base)
    res[0]->view_base = lc_retain(in[0]->view_base ? in[0]->view_base : in[0]);
  if (op->is_view && res[0] && res[0]->view_base) res[0]->view_version = lc_version(res[0]);

  if (lc_grad_mode() && op->backward && any_requires_grad(n, in) &&
      lc_dtype_is_float(res[0]->dtype)) {
    for (int i = 0; i < n; i++)
      if (lc_dtype_is_half(in[i]->dtype)) {
        for (int k = 0; k < n_out; k++)
          lc_release(res[k]);
        return lc_set_error(LC_EGRAD, "%s: %s tensors do not support autograd yet", op->name,
                            lc_dtype_name(in[i]->dtype));
      }
    lc_node *nd = NULL;
    st = record(op, n, in, args, res, NULL, &nd);
    if (st) {
      for (int k = 0; k < n_out; k++)
        lc_release(res[k]);
      return st;
    }
    res[0]->requires_grad = true;
    res[0]->grad_fn = &nd->base; /* takes the node's initial reference */
    res[0]->output_nr = 0;
  }
  for (int k = 0; k < n_out; k++)
    out[k] = res[k];
  return LC_OK;
}

/* ------------------------------------------------------------------ lc_apply_inplace */

lc_status lc_inplace_check_target(const char *name, const lc_tensor *self) {
  if (lc_grad_mode() && self->requires_grad && !self->grad_fn)
    return lc_set_error(LC_EGRAD,
                        "%s: a leaf tensor that requires grad is being used in an in-place "
                        "operation",
                        name);
  return LC_OK;
}

lc_status lc_inplace_check_result(const char *name, const lc_tensor *self, int ndim,
                                  const int64_t *shape, lc_dtype dt) {
  if (dtype_kind(dt) > dtype_kind(self->dtype))
    return lc_set_error(LC_EDTYPE, "%s: result type %s can't be cast to the desired output type %s",
                        name, lc_dtype_name(dt), lc_dtype_name(self->dtype));
  if (ndim != self->ndim || memcmp(shape, self->shape, (size_t)ndim * sizeof shape[0])) {
    char b1[256], b2[256];
    return lc_set_error(LC_ESHAPE, "%s: output with shape %s doesn't match the broadcast shape %s",
                        name, lc_shape_str(self->ndim, self->shape, b1, sizeof b1),
                        lc_shape_str(ndim, shape, b2, sizeof b2));
  }
  return LC_OK;
}

#define INPLACE_MAX_INPUTS 8

/* An int64 tensor {ndim, offset, shape..., strides...}: where view v lies in a contiguous
 * tensor shaped like its base (lc_op_as_strided's geometry). */
static lc_status view_geometry(const lc_tensor *v, const lc_tensor *base, lc_tensor **out) {
  int64_t n = 2 + 2 * (int64_t)v->ndim;
  lc_status st = lc_tensor_new(1, &n, LC_INT64, out);
  if (st) return st;
  int64_t *p = lc_data(*out);
  p[0] = v->ndim;
  p[1] = v->offset - base->offset;
  for (int d = 0; d < v->ndim; d++) {
    p[2 + d] = v->shape[d];
    p[2 + v->ndim + d] = v->strides[d];
  }
  return LC_OK;
}

/* Gives t the history of node nd (owned, output 0), carrying a retain_grad slot over. */
static void rebase(lc_tensor *t, lc_node *nd) {
  lc_node *old = lc_ag_node(t);
  if (lc_ag_has_slot(t) && t->grad) {
    nd->retain_target = lc_retain(t->grad); /* retain_grad follows the tensor */
    if (old && old->retain_target == t->grad) {
      lc_release(old->retain_target);
      old->retain_target = NULL;
    }
  }
  t->grad_fn = &nd->base;
  t->output_nr = 0;
  t->requires_grad = true;
  lc_node_base_release(old ? &old->base : NULL);
}

/* A view whose storage was written since its history was taken (an in-place write through
 * another view of the same root) takes its history from the root again: as_strided of the
 * root's current history at the view's geometry, as PyTorch regenerates a view's grad_fn. */
static lc_status refresh_view(lc_tensor *v) {
  lc_tensor *root = v->view_base;
  uint64_t now = lc_version(v);
  if (!root->grad_fn || !root->contiguous || !lc_same_storage(v, root)) {
    v->view_version = now;
    return LC_OK;
  }
  lc_tensor *gm = NULL;
  lc_node *nd = NULL;
  lc_status st = view_geometry(v, root, &gm);
  lc_tensor *vin[2] = {root, gm};
  if (!st) st = record(&lc_op_as_strided, 2, vin, NULL, &v, NULL, &nd);
  lc_release(gm);
  if (st) return st;
  rebase(v, nd);
  v->view_version = now;
  return LC_OK;
}

/* In-place op on a view self of base, with grad recording (PyTorch's CopySlices): the result
 * r = op(self, ...) is computed with its history, written into self's memory, and then
 *   base's history becomes as_strided_scatter(base's old history, r) at self's geometry, and
 *   self's history becomes as_strided(base's new history) at the same geometry,
 * so gradients reach r's inputs through the base and through the view alike. Neither node
 * runs its forward (the memory already holds the values); they are recorded only. */
static lc_status inplace_on_view(const lc_op_def *op, int n, lc_tensor *const *in,
                                 const lc_op_args *args, const char *name) {
  lc_tensor *self = in[0], *base = self->view_base;
  if (base->requires_grad && !base->grad_fn)
    return lc_set_error(LC_EGRAD,
                        "%s_: a view of a leaf tensor that requires grad is being used in an "
                        "in-place operation",
                        name);
  if (!base->contiguous || !lc_same_storage(self, base))
    return lc_set_error(LC_EGRAD,
                        "%s_: in-place modification of a view of a non-contiguous tensor is not "
                        "supported with autograd; use an out-of-place op",
                        name);
  lc_tensor *res[LC_OP_MAX_OUTPUTS] = {NULL}, *r, *gm = NULL;
  lc_node *scatter = NULL, *view = NULL;
  char fn[96];
  snprintf(fn, sizeof fn, "%s_", name);
  /* op runs on a (recorded) copy of self: what it saves must not be the memory written below */
  lc_tensor *cur = NULL, *ops_in[INPLACE_MAX_INPUTS];
  if (n > INPLACE_MAX_INPUTS) return lc_set_error(LC_EARG, "%s_: too many inputs", name);
  lc_status st = lc_apply(&lc_op_clone, 1, &self, NULL, &cur);
  if (st) return st;
  ops_in[0] = cur;
  for (int i = 1; i < n; i++)
    ops_in[i] = in[i];
  st = lc_apply(op, n, ops_in, args, res);
  lc_release(cur);
  if (st) return st;
  for (int k = 1; k < op->n_outputs; k++)
    lc_release(res[k]);
  r = res[0];
  if ((st = lc_inplace_check_result(fn, self, r->ndim, r->shape, r->dtype))) goto done;
  if ((st = view_geometry(self, base, &gm))) goto done;
  /* the nodes are built before any history changes: their edges hold the old ones */
  lc_tensor *sin[3] = {base, r, gm};
  if ((st = record(&lc_op_as_strided_scatter, 3, sin, NULL, &base, NULL, &scatter))) goto done;
  scatter->out.dtype = base->dtype;
  if ((st = lc_k_copy(self, r))) goto done;
  lc_bump_version(self);
  rebase(base, scatter);
  scatter = NULL;
  lc_tensor *vin[2] = {base, gm};
  if ((st = record(&lc_op_as_strided, 2, vin, NULL, &self, NULL, &view))) goto done;
  rebase(self, view);
  self->view_version = lc_version(self);
  view = NULL;
done:
  if (scatter) node_destroy(&scatter->base);
  if (view) node_destroy(&view->base);
  lc_release(gm);
  lc_release(r);
  return st;
}

lc_status lc_apply_inplace(const lc_op_def *op, int n, lc_tensor *const *in,
                           const lc_op_args *args) {
  const char *name = op && op->name ? op->name : "apply_inplace";
  if (n < 1 || !in || !in[0])
    return lc_set_error(LC_EARG, "%s_: an in-place op needs its target as input 0", name);
  lc_tensor *self = in[0];
  /* a leaf that requires grad is never written in place with grad mode on, whatever the op (a
   * non-differentiable one too, as PyTorch) */
  char fn[96];
  snprintf(fn, sizeof fn, "%s_", name);
  lc_status cst = lc_inplace_check_target(fn, self);
  if (cst) return cst;
  bool rec = lc_grad_mode() && op->backward && any_requires_grad(n, in);
  if (rec && self->view_base) return inplace_on_view(op, n, in, args, name);

  lc_tensor *res[LC_OP_MAX_OUTPUTS] = {NULL};
  lc_status st = lc_op_run(op, n, in, args, res);
  if (st) return st;
  int n_out = op->n_outputs;
  lc_tensor *r = res[0];
  lc_node *nd = NULL;
  char b1[96];

  snprintf(b1, sizeof b1, "%s_", name);
  if ((st = lc_inplace_check_result(b1, self, r->ndim, r->shape, r->dtype))) goto done;
  if (rec && lc_dtype_is_float(r->dtype)) {
    for (int i = 0; i < n && !st; i++)
      if (lc_dtype_is_half(in[i]->dtype))
        st = lc_set_error(LC_EGRAD, "%s: %s tensors do not support autograd yet", b1,
                          lc_dtype_name(in[i]->dtype));
    if (st) goto done;
    st = record(op, n, in, args, res, self, &nd);
    if (st) goto done;
    nd->out.dtype = self->dtype; /* the graph's output is self, whatever dtype op computed */
  }
  st = lc_k_copy(self, r);
  if (st) goto done;
  lc_bump_version(self);

  if (nd) { /* self is now the output of the new node, whose edge 0 holds the old history */
    rebase(self, nd);
    nd = NULL;
  }

done:
  if (nd) node_destroy(&nd->base);
  for (int k = 0; k < n_out; k++)
    lc_release(res[k]);
  return st;
}
