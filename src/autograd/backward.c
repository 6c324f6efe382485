/*
 * backward.c - the backward engine (lc_backward, lc_autograd_grad) and the public autograd
 * accessors of lucid.h (requires_grad, grad, retain_grad, detach, ...).
 *
 * Traversal: collect every node reachable from the roots (a hash map node -> record), sort
 * them by seq, newest first, and run them in that order. A node's seq is larger than the seq
 * of every node it points at (it was created after its inputs existed), so when a node runs,
 * every consumer of its output already ran and its pending gradient is complete. Gradients
 * flowing into the same node are summed in its record; gradients reaching leaves go into
 * leaf->grad (lc_backward) or into the caller's result slots (lc_autograd_grad).
 *
 * A leaf with hooks has its gradient summed over every edge first; once sorted, the engine
 * knows the last node (in execution order) with an edge to it, and after that node ran the
 * leaf is complete: its gradient hooks run on the total, it is delivered, then its
 * post-accumulate-grad hooks run (PyTorch's AccumulateGrad, which runs as soon as ready). The
 * callbacks queued during the pass (lc_autograd_queue_callback) run after its last node.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_SECOND_BACKWARD                                                                        \
  "backward: trying to backward through the graph a second time (or directly access saved "        \
  "tensors after they have already been freed); pass retain_graph = true on the first call"

/* ------------------------------------------------------------------ gradient arithmetic */

/* True when nobody else can observe t: we hold its only reference and its storage is not
 * shared with another header. Such a tensor may be updated in place. */
static bool exclusive(const lc_tensor *t) {
  return atomic_load_explicit(&t->refcount, memory_order_acquire) == 1 &&
         atomic_load_explicit(&t->storage->refcount, memory_order_acquire) == 1 && t->contiguous &&
         t->offset == 0;
}

typedef struct add_ctx {
  void *d;
  const void *s;
  lc_dtype dt;
} add_ctx;

static void add_range(void *vctx, int64_t b, int64_t e) {
  add_ctx *c = vctx;
  if (c->dt == LC_FLOAT32) {
    float *restrict d = c->d;
    const float *restrict s = c->s;
    for (int64_t i = b; i < e; i++)
      d[i] += s[i];
  } else {
    double *restrict d = c->d;
    const double *restrict s = c->s;
    for (int64_t i = b; i < e; i++)
      d[i] += s[i];
  }
}

/* dst += src, elementwise; same shape (checked by the callers), src converted to dst's
 * dtype. dst must be a float tensor. */
static lc_status add_into(lc_tensor *dst, const lc_tensor *src) {
  if (!lc_dtype_is_float(dst->dtype))
    return lc_set_error(LC_EDTYPE, "backward: gradients must be floating point, got %s",
                        lc_dtype_name(dst->dtype));
  lc_tensor *s = NULL, *d = NULL;
  lc_status st = LC_OK;
  if (!(src->contiguous && src->dtype == dst->dtype)) {
    st = lc_ag_clone(src, dst->dtype, &s);
    if (st) return st;
    src = s;
  }
  /* A strided destination (e.g. a transposed .grad the user set) is updated through a
   * contiguous copy. */
  lc_tensor *target = dst;
  if (!dst->contiguous) {
    st = lc_ag_clone(dst, dst->dtype, &d);
    if (st) goto out;
    target = d;
  }
  add_ctx c = {lc_data(target), lc_data(src), dst->dtype};
  lc_parallel_for(dst->numel, 1, add_range, &c);
  if (d) st = lc_k_copy(dst, d);
out:
  lc_release(s);
  lc_release(d);
  return st;
}

/* *slot += g (g borrowed), the result in dtype dt. The first contribution is stored as is
 * (retained) when it has dtype dt; later ones are added in place only into a tensor nobody
 * else can see, otherwise into a fresh copy. */
static lc_status acc(lc_tensor **slot, const lc_tensor *g, lc_dtype dt) {
  if (!*slot) {
    if (g->dtype == dt) {
      *slot = lc_retain((lc_tensor *)g);
      return LC_OK;
    }
    return lc_ag_clone(g, dt, slot);
  }
  if (!exclusive(*slot)) {
    lc_tensor *c = NULL;
    lc_status st = lc_ag_clone(*slot, dt, &c);
    if (st) return st;
    lc_release(*slot);
    *slot = c;
  }
  return add_into(*slot, g);
}

/* Accumulation into a tensor's .grad (a leaf's, or a retain_grad slot's): the first gradient
 * is stored (copied unless nobody else can see it, so .grad never aliases e.g. the caller's
 * seed); later ones are added in place, like PyTorch. */
static lc_status acc_grad_field(lc_tensor **field, lc_tensor *g, lc_dtype dt,
                                const lc_tensor *buffer) {
  if (!*field) {
    /* the leaf's gradient buffer, filled by the op (lc_set_grad_buffer), becomes .grad itself */
    if (g == buffer || (g->dtype == dt && exclusive(g))) {
      *field = lc_retain(g);
      return LC_OK;
    }
    return lc_ag_clone(g, dt, field);
  }
  lc_tensor *f = *field;
  /* A .grad with stride-0 (expanded) dims cannot take an in-place add. */
  for (int i = 0; i < f->ndim; i++)
    if (f->strides[i] == 0 && f->shape[i] > 1) {
      lc_tensor *c = NULL;
      lc_status st = lc_ag_clone(f, dt, &c);
      if (st) return st;
      lc_release(f);
      *field = f = c;
      break;
    }
  return add_into(f, g);
}

/* create_graph: *slot += g as recorded ops (g cast to dt first), so the sum keeps the history
 * of both. Never in place: the tensors involved may be part of the graph being built. */
static lc_status acc_graph(lc_tensor **slot, const lc_tensor *g, lc_dtype dt) {
  lc_tensor *src = (lc_tensor *)g, *cast = NULL, *sum = NULL;
  lc_status st = LC_OK;
  if (g->dtype != dt) {
    lc_op_args a = {.dtype = dt};
    if ((st = lc_apply(&lc_op_cast, 1, &src, &a, &cast))) return st;
    src = cast;
  }
  if (!*slot) {
    *slot = cast ? cast : lc_retain(src);
    return LC_OK;
  }
  lc_tensor *in[2] = {*slot, src};
  st = lc_apply(&lc_op_binary[LC_ADD], 2, in, NULL, &sum);
  lc_release(cast);
  if (st) return st;
  lc_release(*slot);
  *slot = sum;
  return LC_OK;
}

static lc_status check_leaf_grad(const lc_tensor *leaf, const lc_tensor *g) {
  if (lc_ag_same_shape(leaf->ndim, leaf->shape, g->ndim, g->shape)) return LC_OK;
  char a[256], b[256];
  return lc_set_error(LC_ESHAPE, "backward: gradient of shape %s does not match leaf of shape %s",
                      lc_shape_str(g->ndim, g->shape, a, sizeof a),
                      lc_shape_str(leaf->ndim, leaf->shape, b, sizeof b));
}

static lc_status accumulate_leaf(lc_tensor *leaf, lc_tensor *g, bool create_graph) {
  lc_status st = check_leaf_grad(leaf, g);
  if (st) return st;
  /* create_graph: .grad is the recorded gradient itself (or the recorded sum with the old one),
   * so it can be differentiated, as PyTorch's */
  if (create_graph) return acc_graph(&leaf->grad, g, leaf->dtype);
  return acc_grad_field(&leaf->grad, g, leaf->dtype, leaf->grad_buffer);
}

/* ------------------------------------------------------------------ graph records */

typedef struct rec {
  lc_node *node;
  lc_tensor *grad;  /* pending gradient of the node's output 0 (owned) */
  lc_tensor **more; /* a custom node's outputs: n_outputs pending gradients ([0] unused) */
  bool needed;      /* lc_autograd_grad: leads to a requested input */
  int32_t fire;     /* the first hooked leaf completing after this node (engine.hk), -1: none */
} rec;

typedef struct graph {
  rec *recs;
  size_t n, cap;
  int32_t *table; /* open addressing: index + 1, 0 = empty */
  size_t tcap;    /* power of two */
} graph;

static size_t hash_ptr(const void *p, size_t tcap) {
  uint64_t h = (uint64_t)(uintptr_t)p;
  h ^= h >> 29;
  h *= 0x9E3779B97F4A7C15ull;
  h ^= h >> 32;
  return (size_t)h & (tcap - 1);
}

static int64_t graph_find(const graph *g, const lc_node *nd) {
  if (!g->tcap) return -1;
  for (size_t h = hash_ptr(nd, g->tcap);; h = (h + 1) & (g->tcap - 1)) {
    int32_t v = g->table[h];
    if (!v) return -1;
    if (g->recs[v - 1].node == nd) return v - 1;
  }
}

static void table_put(graph *g, size_t idx) {
  size_t h = hash_ptr(g->recs[idx].node, g->tcap);
  while (g->table[h])
    h = (h + 1) & (g->tcap - 1);
  g->table[h] = (int32_t)(idx + 1);
}

static lc_status table_rebuild(graph *g, size_t tcap) {
  int32_t *t = calloc(tcap, sizeof *t);
  if (!t) return lc_error_oom(tcap * sizeof *t);
  free(g->table);
  g->table = t;
  g->tcap = tcap;
  for (size_t i = 0; i < g->n; i++)
    table_put(g, i);
  return LC_OK;
}

/* Adds nd (borrowed: the graph stays alive through the roots) unless present. */
static lc_status graph_add(graph *g, lc_node *nd) {
  if (graph_find(g, nd) >= 0) return LC_OK;
  if (g->n >= INT32_MAX - 1) return lc_set_error(LC_ENOMEM, "backward: graph too large");
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 64;
    rec *r = realloc(g->recs, cap * sizeof *r);
    if (!r) return lc_error_oom(cap * sizeof *r);
    g->recs = r;
    g->cap = cap;
  }
  g->recs[g->n].node = nd;
  g->recs[g->n].grad = NULL;
  g->recs[g->n].more = NULL;
  g->recs[g->n].needed = true;
  g->recs[g->n].fire = -1;
  g->n++;
  if (g->n * 2 > g->tcap) return table_rebuild(g, g->tcap ? g->tcap * 2 : 128);
  table_put(g, g->n - 1);
  return LC_OK;
}

/* Breadth-first over the edges, using the record array itself as the work list. */
static lc_status graph_collect(graph *g) {
  for (size_t i = 0; i < g->n; i++) {
    lc_node *nd = g->recs[i].node;
    for (int k = 0; k < nd->n_inputs; k++)
      if (nd->next[k].node) {
        lc_status st = graph_add(g, nd->next[k].node);
        if (st) return st;
      }
  }
  return LC_OK;
}

static int cmp_seq_desc(const void *a, const void *b) {
  uint64_t x = ((const rec *)a)->node->seq, y = ((const rec *)b)->node->seq;
  return x < y ? 1 : x > y ? -1 : 0;
}

static lc_status graph_sort(graph *g) {
  if (g->n == 0) return LC_OK; /* nothing recorded: recs and table may be NULL */
  qsort(g->recs, g->n, sizeof *g->recs, cmp_seq_desc);
  memset(g->table, 0, g->tcap * sizeof *g->table);
  for (size_t i = 0; i < g->n; i++)
    table_put(g, i);
  return LC_OK;
}

/* Releases r's pending gradients. */
static void rec_clear(rec *r) {
  lc_release(r->grad);
  r->grad = NULL;
  if (r->more) {
    for (int k = 1; k < r->node->ext->n_outputs; k++)
      lc_release(r->more[k]);
    free(r->more);
    r->more = NULL;
  }
}

/* Where output nr's pending gradient of r's node accumulates. */
static lc_status rec_slot(rec *r, int nr, lc_tensor ***slot) {
  if (nr == 0) {
    *slot = &r->grad;
    return LC_OK;
  }
  if (!r->more) {
    int n = r->node->ext->n_outputs;
    if (!(r->more = calloc((size_t)n, sizeof *r->more)))
      return lc_error_oom((size_t)n * sizeof *r->more);
  }
  *slot = &r->more[nr];
  return LC_OK;
}

/* The pending gradient of output k (NULL when none arrived). */
static lc_tensor *rec_grad(const rec *r, int k) {
  return k == 0 ? r->grad : r->more ? r->more[k] : NULL;
}

static void graph_free(graph *g) {
  for (size_t i = 0; i < g->n; i++)
    rec_clear(&g->recs[i]);
  free(g->recs);
  free(g->table);
}

static void release_saved(lc_node *nd) {
  for (int k = 0; k < nd->n_saved; k++) {
    lc_release(nd->saved[k]);
    nd->saved[k] = NULL;
  }
  lc_ag_ext_release_payload(nd);
  nd->released = true;
}

/* ------------------------------------------------------------------ the engine */

typedef struct engine {
  graph g;
  bool retain_graph;
  bool create_graph; /* backward runs recorded: every gradient gets a history */
  /* lc_autograd_grad mode when inputs != NULL: gradients are captured, .grad untouched */
  int n_inputs;
  lc_tensor *const *inputs;
  lc_tensor **captures;
  bool *reached;
  /* leaves with hooks: their gradient is summed over every edge first, and the hooks run once
   * on the total after the last node with an edge to the leaf (plan_hooked) */
  struct hooked_leaf *hk;
  int n_hk, cap_hk;
  int32_t *hk_table; /* open addressing over the leaves: index + 1, 0 = empty */
  size_t hk_tcap;    /* power of two */
  /* per-node scratch, grown to the widest node */
  lc_tensor **grad_in;
  bool *needs;
  lc_tensor **dest; /* gradient buffers offered to the node's backward (ctx.grad_dest) */
  int scratch_cap;
} engine;

static int input_index(const engine *e, const lc_tensor *t, int from) {
  for (int j = from; j < e->n_inputs; j++)
    if (e->inputs[j] == t) return j;
  return -1;
}

/* *slot += g, recorded under create_graph */
static lc_status acc_e(const engine *e, lc_tensor **slot, const lc_tensor *g, lc_dtype dt) {
  return e->create_graph ? acc_graph(slot, g, dt) : acc(slot, g, dt);
}

static lc_status capture(engine *e, const lc_tensor *t, lc_tensor *g) {
  for (int j = input_index(e, t, 0); j >= 0; j = input_index(e, t, j + 1)) {
    e->reached[j] = true;
    if (g) {
      lc_status st = acc_e(e, &e->captures[j], g, e->inputs[j]->dtype);
      if (st) return st;
    }
  }
  return LC_OK;
}

/* lc_autograd_grad: mark which nodes lead to a requested input (oldest first, so a node's
 * children are decided before it), and which inputs the graph reaches at all. */
static void mark_needed(engine *e) {
  graph *g = &e->g;
  for (size_t r = g->n; r-- > 0;) {
    lc_node *nd = g->recs[r].node;
    bool need = false;
    for (int j = 0; j < e->n_inputs; j++)
      if (e->inputs[j]->grad_fn == &nd->base) { /* any of its outputs */
        e->reached[j] = true;
        need = true;
      }
    for (int k = 0; k < nd->n_inputs; k++) {
      const lc_edge *ed = &nd->next[k];
      if (ed->node) {
        int64_t c = graph_find(g, ed->node);
        if (c >= 0 && g->recs[c].needed) need = true;
      } else if (ed->leaf) {
        for (int j = input_index(e, ed->leaf, 0); j >= 0; j = input_index(e, ed->leaf, j + 1)) {
          e->reached[j] = true;
          need = true;
        }
      }
    }
    g->recs[r].needed = need;
  }
}

static lc_status grow_scratch(engine *e, int n) {
  if (n <= e->scratch_cap) return LC_OK;
  int cap = n < 8 ? 8 : n;
  lc_tensor **gi = realloc(e->grad_in, (size_t)cap * sizeof *gi);
  if (!gi) return lc_error_oom((size_t)cap * sizeof *gi);
  e->grad_in = gi;
  bool *nb = realloc(e->needs, (size_t)cap * sizeof *nb);
  if (!nb) return lc_error_oom((size_t)cap * sizeof *nb);
  e->needs = nb;
  lc_tensor **d = realloc(e->dest, (size_t)cap * sizeof *d);
  if (!d) return lc_error_oom((size_t)cap * sizeof *d);
  e->dest = d;
  e->scratch_cap = cap;
  return LC_OK;
}

/* ------------------------------------------------------------------ hooked leaves */

typedef struct hooked_leaf {
  lc_tensor *leaf; /* borrowed: the graph's edges hold it */
  lc_tensor *grad; /* owned: the sum of the gradients that reached it so far */
  size_t last;     /* the record of the last node with an edge to it */
  int32_t next;    /* the next leaf completing after the same node, -1: none */
} hooked_leaf;

static int32_t hk_find(const engine *e, const lc_tensor *leaf) {
  if (!e->hk_tcap) return -1;
  for (size_t h = hash_ptr(leaf, e->hk_tcap);; h = (h + 1) & (e->hk_tcap - 1)) {
    int32_t v = e->hk_table[h];
    if (!v) return -1;
    if (e->hk[v - 1].leaf == leaf) return v - 1;
  }
}

static void hk_put(engine *e, int32_t j) {
  size_t h = hash_ptr(e->hk[j].leaf, e->hk_tcap);
  while (e->hk_table[h])
    h = (h + 1) & (e->hk_tcap - 1);
  e->hk_table[h] = j + 1;
}

/* The entry of leaf, added (gradient NULL) unless present. */
static lc_status hk_get(engine *e, lc_tensor *leaf, int32_t *out) {
  if ((*out = hk_find(e, leaf)) >= 0) return LC_OK;
  if (e->n_hk >= INT32_MAX / 4) return lc_set_error(LC_ENOMEM, "backward: too many hooked leaves");
  if (e->n_hk == e->cap_hk) {
    int cap = e->cap_hk ? 2 * e->cap_hk : 16;
    hooked_leaf *a = realloc(e->hk, (size_t)cap * sizeof *a);
    if (!a) return lc_error_oom((size_t)cap * sizeof *a);
    e->hk = a;
    e->cap_hk = cap;
  }
  if ((size_t)(e->n_hk + 1) * 2 > e->hk_tcap) {
    size_t tcap = e->hk_tcap ? 2 * e->hk_tcap : 32;
    int32_t *t = calloc(tcap, sizeof *t);
    if (!t) return lc_error_oom(tcap * sizeof *t);
    free(e->hk_table);
    e->hk_table = t;
    e->hk_tcap = tcap;
    for (int32_t j = 0; j < e->n_hk; j++)
      hk_put(e, j);
  }
  int32_t j = e->n_hk++;
  e->hk[j] = (hooked_leaf){.leaf = leaf, .grad = NULL, .last = 0, .next = -1};
  hk_put(e, j);
  *out = j;
  return LC_OK;
}

/* Whether leaf's gradient is held back until the leaf is complete: it has gradient hooks, or
 * post-accumulate-grad hooks in a backward (lc_autograd_grad: gradient hooks on a requested
 * input only). */
static bool wants_hooks(const engine *e, const lc_tensor *leaf) {
  if (!leaf->hooks) return false;
  if (e->inputs) return lc_ag_hooks_any(leaf->hooks, false) && input_index(e, leaf, 0) >= 0;
  return lc_ag_hooks_any(leaf->hooks, false) || lc_ag_hooks_any(leaf->hooks, true);
}

/* After graph_sort: each hooked leaf's last node in execution order, and per record the list
 * of leaves completing after it (in the order they were first met). One pass over the edges. */
static lc_status plan_hooked(engine *e) {
  graph *g = &e->g;
  for (size_t i = 0; i < g->n; i++) {
    const lc_node *nd = g->recs[i].node;
    for (int k = 0; k < nd->n_inputs; k++) {
      lc_tensor *leaf = nd->next[k].leaf;
      if (nd->next[k].node || !leaf || !wants_hooks(e, leaf)) continue;
      int32_t j;
      lc_status st = hk_get(e, leaf, &j);
      if (st) return st;
      e->hk[j].last = i;
    }
  }
  for (int32_t j = e->n_hk; j-- > 0;) {
    rec *r = &g->recs[e->hk[j].last];
    e->hk[j].next = r->fire;
    r->fire = j;
  }
  return LC_OK;
}

/* Fills e->dest for node nd: input i's leaf gradient buffer (lc_set_grad_buffer) when this
 * gradient would be the leaf's first, in a backward (lc_autograd_grad writes no .grad): .grad
 * unset, nothing held back for it yet, and not already offered to an earlier input of nd (a
 * leaf used twice by one op). Whether any was offered. */
static bool offer_buffers(engine *e, const lc_node *nd) {
  bool any = false;
  for (int i = 0; i < nd->n_inputs; i++) {
    lc_tensor *leaf = nd->next[i].node ? NULL : nd->next[i].leaf;
    lc_tensor *buf = leaf && e->needs[i] && !e->inputs && !leaf->grad ? leaf->grad_buffer : NULL;
    if (buf && leaf->hooks) {
      int32_t j = hk_find(e, leaf);
      if (j >= 0 && e->hk[j].grad) buf = NULL;
    }
    for (int k = 0; buf && k < i; k++)
      if (e->dest[k] == buf) buf = NULL;
    e->dest[i] = buf;
    any |= buf != NULL;
  }
  return any;
}

/* A gradient reaching leaf: held back when the leaf is hooked, else delivered. */
static lc_status leaf_grad(engine *e, lc_tensor *leaf, lc_tensor *g) {
  int32_t j = leaf->hooks ? hk_find(e, leaf) : -1;
  if (j < 0) return e->inputs ? capture(e, leaf, g) : accumulate_leaf(leaf, g, e->create_graph);
  lc_status st = e->inputs ? LC_OK : check_leaf_grad(leaf, g);
  return st ? st : acc_e(e, &e->hk[j].grad, g, leaf->dtype);
}

/* Hooked leaf h is complete (its last node ran): its gradient hooks on the total, then
 * delivered (captured, or accumulated into .grad), then, in a backward, its
 * post-accumulate-grad hooks. No gradient reached it: nothing runs. */
static lc_status complete_leaf(engine *e, hooked_leaf *h) {
  if (!h->grad) return LC_OK;
  lc_tensor *leaf = h->leaf;
  lc_status st = lc_ag_run_hooks(leaf->hooks, &h->grad, e->inputs ? "autograd_grad" : "backward");
  if (!st)
    st = e->inputs ? capture(e, leaf, h->grad) : accumulate_leaf(leaf, h->grad, e->create_graph);
  lc_release(h->grad);
  h->grad = NULL;
  if (!st && !e->inputs) st = lc_ag_run_post_hooks(leaf->hooks, leaf);
  return st;
}

/* ------------------------------------------------------------------ queued callbacks */

typedef struct queued_cb {
  lc_autograd_callback fn;
  void *ud;
  void (*free_ud)(void *);
} queued_cb;

/* The callbacks of one running backward; a backward started inside another (from a hook)
 * pushes its own queue. */
typedef struct cb_queue {
  queued_cb *q;
  int n, cap;
  struct cb_queue *prev;
} cb_queue;

static _Thread_local cb_queue *cb_current;

static void cbq_begin(cb_queue *q) {
  memset(q, 0, sizeof *q);
  q->prev = cb_current;
  cb_current = q;
}

/* End of q's backward, whose pass returned st: on success the callbacks in queue order
 * (including the ones they queue) until one fails; every ud released either way. */
static lc_status cbq_end(cb_queue *q, lc_status st) {
  for (int i = 0; i < q->n; i++) {
    queued_cb c = q->q[i]; /* a callback may queue more: q->q may move */
    if (!st) st = c.fn(c.ud);
    if (c.free_ud) c.free_ud(c.ud);
  }
  cb_current = q->prev;
  free(q->q);
  return st;
}

lc_status lc_autograd_queue_callback(lc_autograd_callback fn, void *ud, void (*free_ud)(void *)) {
  cb_queue *q = cb_current;
  lc_status st = LC_OK;
  if (!fn)
    st = lc_set_error(LC_EARG, "autograd_queue_callback: callback is NULL");
  else if (!q)
    st = lc_set_error(LC_EGRAD, "autograd_queue_callback: no backward is running on this thread "
                                "(queue a callback from a hook or a custom function's backward, "
                                "while the pass runs)");
  else if (q->n == q->cap) {
    if (q->cap >= INT32_MAX / 4) {
      st = lc_set_error(LC_ENOMEM, "autograd_queue_callback: too many callbacks");
    } else {
      int cap = q->cap ? 2 * q->cap : 4;
      queued_cb *a = realloc(q->q, (size_t)cap * sizeof *a);
      if (!a)
        st = lc_error_oom((size_t)cap * sizeof *a);
      else {
        q->q = a;
        q->cap = cap;
      }
    }
  }
  if (st) {
    if (free_ud) free_ud(ud);
    return st;
  }
  q->q[q->n++] = (queued_cb){fn, ud, free_ud};
  return LC_OK;
}

/* Prefixes an error raised inside op->backward with the node's name, unless already there. */
static lc_status prefix_error(lc_status st, const char *name) {
  const char *msg = lc_last_error_marked();
  size_t len = strlen(name);
  if (strncmp(msg, name, len) == 0 && msg[len] == ':') return st;
  char copy[512];
  snprintf(copy, sizeof copy, "%s", msg);
  return lc_set_error(st, "%s: %s", name, copy);
}

/* create_graph: an alias of saved tensor s carrying the history of the value it saved (the
 * node that produced it, output nr), so gradients computed from it differentiate through it. */
lc_status lc_ag_with_history(const lc_tensor *s, lc_node *node, int nr, lc_tensor **out) {
  lc_tensor *t = NULL;
  lc_status st = lc_tensor_view_of(s, s->ndim, s->shape, s->strides, s->offset, &t);
  if (st) return st;
  atomic_fetch_add_explicit(&node->base.refcount, 1, memory_order_relaxed);
  t->grad_fn = &node->base;
  t->output_nr = nr;
  t->requires_grad = true;
  *out = t;
  return LC_OK;
}

/* create_graph: the node's saved tensors with their histories reattached (PyTorch's
 * SavedVariable unpacking): a saved input takes its edge's history (a leaf is handed over as
 * itself), a saved output 0 takes this node as grad_fn. A released slot stays NULL, so
 * lc_ctx_saved reports the second backward. */
static lc_status unpack_saved(lc_node *nd, lc_tensor **out) {
  lc_status st = LC_OK;
  int k = 0;
  for (int i = 0; i < nd->n_inputs && !st; i++) {
    if (!lc_ag_saves_input(nd->op->save, i)) continue;
    const lc_tensor *s = nd->saved[k];
    const lc_edge *ed = &nd->next[i];
    if (!s)
      out[k] = NULL;
    else if (ed->leaf && lc_same_storage(ed->leaf, s) && ed->leaf->offset == s->offset)
      out[k] = lc_retain(ed->leaf);
    else if (ed->node)
      st = lc_ag_with_history(s, ed->node, ed->output_nr, &out[k]);
    else
      out[k] = lc_retain((lc_tensor *)s);
    k++;
  }
  for (int o = 0; o < nd->op->n_outputs && !st; o++) {
    if (!(nd->op->save & LC_SAVE_OUT(o))) continue;
    const lc_tensor *s = nd->saved[k];
    if (!s)
      out[k] = NULL;
    else if (o == 0)
      st = lc_ag_with_history(s, nd, 0, &out[k]);
    else
      out[k] = lc_retain((lc_tensor *)s);
    k++;
  }
  return st;
}

/* Output k's complete gradient g of node nd, before nd's backward: its hooks (which may
 * replace it), then a capture (lc_autograd_grad asked for that tensor) or its retain_grad
 * slot. */
static lc_status output_grad(engine *e, lc_node *nd, int k, lc_tensor **g, const char *name) {
  lc_node_base *hooks = *lc_ag_hooks_slot(nd, k);
  lc_status st = LC_OK;
  if (hooks && (st = lc_ag_run_hooks(hooks, g, name))) return st;
  lc_dtype dt = lc_ag_out_meta(nd, k)->dtype;
  if (e->inputs) {
    for (int j = 0; j < e->n_inputs && !st; j++)
      if (e->inputs[j]->grad_fn == &nd->base && e->inputs[j]->output_nr == k)
        st = acc_e(e, &e->captures[j], *g, e->inputs[j]->dtype);
  } else {
    lc_tensor *slot = *lc_ag_retain_slot(nd, k);
    if (slot)
      st = e->create_graph ? acc_graph(&slot->grad, *g, dt)
                           : acc_grad_field(&slot->grad, *g, dt, NULL);
  }
  return st;
}

/* A custom function's backward: every output's gradient (zeros where none arrived, as
 * PyTorch materializes them) into fn->backward. */
static lc_status run_custom(engine *e, lc_node *nd, rec *r) {
  lc_node_ext *x = nd->ext;
  lc_tensor *small[4] = {NULL}, **gout = small;
  if (x->n_outputs > 4 && !(gout = calloc((size_t)x->n_outputs, sizeof *gout)))
    return lc_error_oom((size_t)x->n_outputs * sizeof *gout);
  lc_status st = LC_OK;
  for (int k = 0; k < x->n_outputs && !st; k++) {
    lc_tensor *g = rec_grad(r, k);
    if (g) {
      gout[k] = lc_retain(g);
      continue;
    }
    const lc_meta *m = &x->out[k];
    st = lc_tensor_new(m->ndim, m->shape, m->dtype, &gout[k]);
    if (!st) st = lc_k_fill(gout[k], 0.0);
  }
  if (!st) {
    lc_function_ctx fctx = {.node = nd, .create_graph = e->create_graph};
    st = x->fn->backward(&fctx, x->payload, x->n_outputs, gout, nd->n_inputs, e->needs, e->grad_in);
  }
  for (int k = 0; k < x->n_outputs; k++)
    lc_release(gout[k]);
  if (gout != small) free(gout);
  return st;
}

/* Runs one node: its backward, then routes each input gradient along its edge. */
static lc_status run_node(engine *e, rec *r) {
  lc_node *nd = r->node;
  bool grad_mode = e->inputs != NULL;
  const char *name = lc_ag_node_name(nd);
  lc_status st = LC_OK;
  bool have = false;
  for (int k = 0; k < lc_ag_n_outputs(nd) && !st; k++) {
    lc_tensor **slot = k == 0 ? &r->grad : r->more ? &r->more[k] : NULL;
    if (slot && *slot) {
      have = true;
      st = output_grad(e, nd, k, slot, name);
    }
  }
  if (st || !have) return st;

  if (nd->released) return lc_set_error(LC_EGRAD, "%s", MSG_SECOND_BACKWARD);
  if ((st = grow_scratch(e, nd->n_inputs))) return st;

  bool any = false;
  for (int i = 0; i < nd->n_inputs; i++) {
    const lc_edge *ed = &nd->next[i];
    bool need = false;
    if (ed->node) {
      int64_t c = graph_find(&e->g, ed->node);
      need = c >= 0 && e->g.recs[c].needed;
    } else if (ed->leaf) {
      need = !grad_mode || input_index(e, ed->leaf, 0) >= 0;
    }
    e->needs[i] = need;
    e->grad_in[i] = NULL;
    any |= need;
  }
  if (!any) return LC_OK;

  lc_tensor *unpacked_small[8] = {NULL}, **unpacked = NULL;
  if (nd->ext) {
    st = run_custom(e, nd, r);
  } else {
    lc_op_ctx ctx = {
        .op = nd->op,
        .args = &nd->args,
        .n_inputs = nd->n_inputs,
        .in = nd->in,
        .out = &nd->out,
        .needs_grad = e->needs,
        .n_saved = nd->n_saved,
        .saved = nd->saved,
        .saved_version = nd->saved_version,
        .run = lc_op_run,
    };
    lc_backward_fn fn = nd->op->backward;
    if (e->create_graph) {
      fn = nd->op->backward_graph;
      if (!fn)
        return lc_set_error(LC_EGRAD,
                            "%s: higher-order gradients (create_graph = true) are not "
                            "implemented for %s yet",
                            name, nd->op->name);
      unpacked = unpacked_small;
      if (nd->n_saved > 8 && !(unpacked = calloc((size_t)nd->n_saved, sizeof *unpacked)))
        return lc_error_oom((size_t)nd->n_saved * sizeof *unpacked);
      if (nd->saved && (st = unpack_saved(nd, unpacked))) goto out;
      ctx.saved = nd->saved ? unpacked : NULL;
      ctx.run = lc_apply;
      ctx.create_graph = true;
    }
    if (!e->create_graph && offer_buffers(e, nd)) ctx.grad_dest = e->dest;
    st = fn(&ctx, r->grad, e->grad_in);
  }
  if (st) {
    st = prefix_error(st, name);
    goto out;
  }

  for (int i = 0; i < nd->n_inputs; i++) {
    lc_tensor *g = e->grad_in[i];
    if (!g || !e->needs[i]) continue;
    const lc_meta *m = &nd->in[i];
    if (!lc_ag_same_shape(g->ndim, g->shape, m->ndim, m->shape)) {
      char a[256], b[256];
      st = lc_set_error(LC_ESHAPE,
                        "%s: backward returned a gradient of shape %s for input %d, "
                        "expected %s",
                        name, lc_shape_str(g->ndim, g->shape, a, sizeof a), i,
                        lc_shape_str(m->ndim, m->shape, b, sizeof b));
      goto out;
    }
    const lc_edge *ed = &nd->next[i];
    if (ed->node) {
      int64_t c = graph_find(&e->g, ed->node);
      lc_tensor **slot = NULL;
      if (c >= 0 && !(st = rec_slot(&e->g.recs[c], ed->output_nr, &slot)))
        st = acc_e(e, slot, g, lc_ag_out_meta(ed->node, ed->output_nr)->dtype);
    } else {
      st = leaf_grad(e, ed->leaf, g);
    }
    if (st) goto out;
  }
out:
  for (int i = 0; i < nd->n_inputs; i++) {
    lc_release(e->grad_in[i]);
    e->grad_in[i] = NULL;
  }
  if (unpacked) {
    for (int k = 0; k < nd->n_saved; k++)
      lc_release(unpacked[k]);
    if (unpacked != unpacked_small) free(unpacked);
  }
  return st;
}

/* Runs every collected node, newest first. */
static lc_status engine_run(engine *e) {
  lc_status st = graph_collect(&e->g);
  if (!st) st = graph_sort(&e->g);
  if (st) return st;
  if (e->inputs) mark_needed(e);
  if ((st = plan_hooked(e))) return st;
  bool prev = lc_set_grad_enabled(e->create_graph);
  for (size_t i = 0; i < e->g.n && !st; i++) {
    rec *r = &e->g.recs[i];
    if (r->needed) {
      st = run_node(e, r);
      rec_clear(r);
      if (!st && !e->retain_graph) release_saved(r->node);
    }
    for (int32_t j = r->fire; j >= 0 && !st; j = e->hk[j].next)
      st = complete_leaf(e, &e->hk[j]);
  }
  lc_set_grad_enabled(prev);
  return st;
}

static void engine_free(engine *e) {
  for (int j = 0; j < e->n_hk; j++)
    lc_release(e->hk[j].grad);
  free(e->hk);
  free(e->hk_table);
  graph_free(&e->g);
  free(e->grad_in);
  free(e->needs);
  free(e->dest);
}

/* The seed for root t: given grad (cast to t's dtype, shape checked) or ones. */
static lc_status make_seed(const char *what, const lc_tensor *t, const lc_tensor *grad,
                           lc_tensor **out) {
  char a[256], b[256];
  if (!grad) {
    if (t->numel != 1)
      return lc_set_error(LC_EGRAD,
                          "%s: a gradient is needed for a tensor with %lld elements (the "
                          "implicit seed 1 exists only for one-element outputs): pass one of "
                          "shape %s",
                          what, (long long)t->numel, lc_shape_str(t->ndim, t->shape, a, sizeof a));
    lc_tensor *s = NULL;
    lc_status st = lc_tensor_new(t->ndim, t->shape, t->dtype, &s);
    if (!st) st = lc_k_fill(s, 1.0);
    if (st) {
      lc_release(s);
      return st;
    }
    *out = s;
    return LC_OK;
  }
  if (!lc_ag_same_shape(grad->ndim, grad->shape, t->ndim, t->shape))
    return lc_set_error(LC_ESHAPE, "%s: gradient has shape %s but the tensor has shape %s", what,
                        lc_shape_str(grad->ndim, grad->shape, a, sizeof a),
                        lc_shape_str(t->ndim, t->shape, b, sizeof b));
  if (grad->dtype == t->dtype) {
    *out = lc_retain((lc_tensor *)grad);
    return LC_OK;
  }
  return lc_ag_clone(grad, t->dtype, out);
}

lc_status lc_backward(lc_tensor *t, const lc_tensor *grad, bool retain_graph) {
  return lc_backward_ex(t, grad, retain_graph ? LC_RETAIN_GRAPH : 0);
}

lc_status lc_backward_ex(lc_tensor *t, const lc_tensor *grad, unsigned flags) {
  const bool create_graph = (flags & LC_CREATE_GRAPH) != 0;
  if (!t) return lc_set_error(LC_EARG, "backward: tensor is NULL");
  if (!t->requires_grad && !t->grad_fn)
    return lc_set_error(LC_EGRAD, "backward: the tensor does not require grad and has no grad_fn "
                                  "(set requires_grad on a leaf it depends on, outside no_grad)");
  lc_tensor *seed = NULL;
  lc_status st = make_seed("backward", t, grad, &seed);
  if (st) return st;
  cb_queue q;
  cbq_begin(&q);
  if (!t->grad_fn) { /* a leaf: complete at once */
    st = lc_ag_run_hooks(t->hooks, &seed, "backward");
    if (!st) st = accumulate_leaf(t, seed, create_graph);
    lc_release(seed);
    if (!st) st = lc_ag_run_post_hooks(t->hooks, t);
    return cbq_end(&q, st);
  }
  engine e;
  memset(&e, 0, sizeof e);
  e.retain_graph = (flags & LC_RETAIN_GRAPH) != 0;
  e.create_graph = create_graph;
  st = graph_add(&e.g, lc_ag_node(t));
  lc_tensor **slot = NULL;
  if (!st) st = rec_slot(&e.g.recs[0], t->output_nr, &slot);
  if (!st) {
    *slot = seed;
    seed = NULL;
    st = engine_run(&e);
  }
  lc_release(seed);
  engine_free(&e);
  return cbq_end(&q, st);
}

lc_status lc_autograd_grad(int n_outputs, lc_tensor *const *outputs, lc_tensor *const *grad_outputs,
                           int n_inputs, lc_tensor *const *inputs, bool retain_graph,
                           bool allow_unused, lc_tensor **grads) {
  unsigned flags = (retain_graph ? LC_RETAIN_GRAPH : 0) | (allow_unused ? LC_ALLOW_UNUSED : 0);
  return lc_autograd_grad_ex(n_outputs, outputs, grad_outputs, n_inputs, inputs, flags, grads);
}

lc_status lc_autograd_grad_ex(int n_outputs, lc_tensor *const *outputs,
                              lc_tensor *const *grad_outputs, int n_inputs,
                              lc_tensor *const *inputs, unsigned flags, lc_tensor **grads) {
  const bool allow_unused = (flags & LC_ALLOW_UNUSED) != 0;
  if (n_outputs < 1 || !outputs)
    return lc_set_error(LC_EARG, "autograd_grad: expected at least one output, got %d", n_outputs);
  if (n_inputs < 1 || !inputs || !grads)
    return lc_set_error(LC_EARG, "autograd_grad: expected at least one input, got %d", n_inputs);
  for (int i = 0; i < n_outputs; i++) {
    if (!outputs[i]) return lc_set_error(LC_EARG, "autograd_grad: output " LC_POS_D " is NULL", i);
    if (!outputs[i]->requires_grad && !outputs[i]->grad_fn)
      return lc_set_error(LC_EGRAD,
                          "autograd_grad: output " LC_POS_D " does not require grad and has no "
                          "grad_fn",
                          i);
  }
  for (int j = 0; j < n_inputs; j++) {
    if (!inputs[j]) return lc_set_error(LC_EARG, "autograd_grad: input " LC_POS_D " is NULL", j);
    if (!inputs[j]->requires_grad)
      return lc_set_error(LC_EGRAD, "autograd_grad: input " LC_POS_D " does not require grad", j);
  }

  engine e;
  memset(&e, 0, sizeof e);
  e.retain_graph = (flags & LC_RETAIN_GRAPH) != 0;
  e.create_graph = (flags & LC_CREATE_GRAPH) != 0;
  e.n_inputs = n_inputs;
  e.inputs = inputs;
  e.captures = calloc((size_t)n_inputs, sizeof *e.captures);
  e.reached = calloc((size_t)n_inputs, sizeof *e.reached);
  lc_status st = LC_OK;
  if (!e.captures || !e.reached) st = lc_error_oom((size_t)n_inputs * sizeof *e.captures);
  cb_queue q;
  cbq_begin(&q);

  for (int i = 0; i < n_outputs && !st; i++) {
    lc_tensor *o = outputs[i], *seed = NULL;
    char what[64];
    snprintf(what, sizeof what, "autograd_grad: output " LC_POS_D, i);
    st = make_seed(what, o, grad_outputs ? grad_outputs[i] : NULL, &seed);
    if (st) break;
    if (o->grad_fn) {
      st = graph_add(&e.g, lc_ag_node(o));
      if (!st) {
        int64_t k = graph_find(&e.g, lc_ag_node(o));
        lc_tensor **slot = NULL;
        st = rec_slot(&e.g.recs[k], o->output_nr, &slot);
        if (!st) st = acc_e(&e, slot, seed, o->dtype);
      }
    } else {
      st = capture(&e, o, seed); /* an output that is itself a requested leaf */
    }
    lc_release(seed);
  }
  if (!st) st = engine_run(&e);
  engine_free(&e);
  st = cbq_end(&q, st);

  for (int j = 0; j < n_inputs && !st; j++) {
    if (e.captures[j]) {
      /* results must not alias a seed or another result the caller can see */
      if (!exclusive(e.captures[j])) {
        lc_tensor *c = NULL;
        if (e.create_graph) { /* a recorded copy, keeping the history */
          bool prev = lc_set_grad_enabled(true);
          st = lc_apply(&lc_op_clone, 1, &e.captures[j], NULL, &c);
          lc_set_grad_enabled(prev);
        } else
          st = lc_ag_clone(e.captures[j], inputs[j]->dtype, &c);
        if (st) break;
        lc_release(e.captures[j]);
        e.captures[j] = c;
      }
    } else if (e.reached[j]) {
      /* in the graph, but no gradient flowed to it: zeros */
      st = lc_tensor_new(inputs[j]->ndim, inputs[j]->shape, inputs[j]->dtype, &e.captures[j]);
      if (!st) st = lc_k_fill(e.captures[j], 0.0);
    } else if (!allow_unused) {
      st = lc_set_error(LC_EGRAD,
                        "autograd_grad: input " LC_POS_D " is not reachable from the outputs "
                        "(pass allow_unused = true to get no gradient for it)",
                        j);
    }
  }
  if (!st)
    for (int j = 0; j < n_inputs; j++) {
      grads[j] = e.captures[j];
      e.captures[j] = NULL;
    }
  if (e.captures)
    for (int j = 0; j < n_inputs; j++)
      lc_release(e.captures[j]);
  free(e.captures);
  free(e.reached);
  return st;
}

/* ------------------------------------------------------------------ public accessors */

lc_status lc_set_requires_grad(lc_tensor *t, bool requires_grad) {
  if (requires_grad && !lc_dtype_is_float(t->dtype))
    return lc_set_error(LC_EDTYPE,
                        "requires_grad: only floating point tensors can require gradients, got %s",
                        lc_dtype_name(t->dtype));
  if (requires_grad && lc_dtype_is_half(t->dtype))
    return lc_set_error(LC_EGRAD, "requires_grad: %s tensors do not support autograd yet",
                        lc_dtype_name(t->dtype));
  if (t->grad_fn) {
    if (!requires_grad)
      return lc_set_error(LC_EGRAD,
                          "requires_grad: you can only change requires_grad flags of leaf "
                          "tensors; use detach() to get a tensor without history");
    return LC_OK;
  }
  t->requires_grad = requires_grad;
  /* A leaf that requires grad forgets the tensor it is a view of: graph edges hold such leaves,
   * and the base's history may come to reference the leaf (base[2:]:add_(leaf)), which would
   * make base -> node -> leaf -> base a reference cycle. It stays a leaf: nothing needs its base
   * (an in-place write into it is refused, and a leaf has no history to regenerate). */
  if (requires_grad && t->view_base) {
    lc_tensor *base = t->view_base;
    t->view_base = NULL;
    lc_release(base);
  }
  return LC_OK;
}

bool lc_requires_grad(const lc_tensor *t) { return t->requires_grad; }

bool lc_is_leaf(const lc_tensor *t) { return t->grad_fn == NULL; }

const char *lc_grad_fn_name(const lc_tensor *t) {
  if (!t->grad_fn) return NULL;
  return lc_ag_node_name(lc_ag_node(t));
}

lc_tensor *lc_grad(const lc_tensor *t) {
  if (lc_ag_has_slot(t)) return t->grad ? t->grad->grad : NULL;
  return t->grad;
}

lc_status lc_set_grad(lc_tensor *t, lc_tensor *g) {
  if (g) {
    lc_status st = lc_check_like("set_grad", "gradient", g, t);
    if (st) return st;
  }
  lc_tensor **field = lc_ag_has_slot(t) && t->grad ? &t->grad->grad : &t->grad;
  lc_retain(g);
  lc_release(*field);
  *field = g;
  return LC_OK;
}

lc_status lc_retain_grad(lc_tensor *t) {
  if (!t->grad_fn && !t->requires_grad)
    return lc_set_error(LC_EGRAD,
                        "retain_grad: can't retain the gradient of a tensor that does not "
                        "require grad");
  if (!t->grad_fn) return LC_OK; /* leaves keep their .grad anyway */
  if (t->retains_grad) return LC_OK;
  lc_tensor *slot = NULL;
  lc_status st = lc_tensor_new(0, NULL, LC_FLOAT32, &slot);
  if (st) return st;
  lc_node *nd = lc_ag_node(t);
  slot->grad = t->grad; /* a gradient set earlier with lc_set_grad moves into the slot */
  t->grad = slot;
  lc_tensor **target = lc_ag_retain_slot(nd, t->output_nr);
  lc_release(*target);
  *target = lc_retain(slot);
  t->retains_grad = true;
  return LC_OK;
}

bool lc_retains_grad(const lc_tensor *t) { return t->retains_grad; }

lc_status lc_detach(const lc_tensor *t, lc_tensor **out) {
  return lc_tensor_view_of(t, t->ndim, t->shape, t->strides, t->offset, out);
}
