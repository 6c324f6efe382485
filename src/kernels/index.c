/*
 * index.c - indexing ops: index_select, gather, scatter, scatter_add, masked_fill,
 * masked_select, nonzero, with their backward functions.
 *
 * index_select, gather, scatter and scatter_add share one engine (gs_run): it walks the index
 * tensor's positions with dim `dim` held out of the iteration and, for each position p,
 * reads or writes `self` at p with coordinate `dim` replaced by index[p]. Positions that differ
 * outside `dim` never touch the same element of `self`, so rows of that walk can run on
 * different threads, even for scatter. index_select is gather with an index broadcast (stride
 * 0) over every dim but `dim`.
 */
#include "grad_graph.h"
#include "kernel_util.h"

#include <string.h>

/* ---------------------------------------------------------------- layouts */

/* A tensor's shape/strides, with a 0-dim tensor seen as 1-D of size 1 (so "dim 0" exists). */
typedef struct lay {
  int nd;
  int64_t shape[LC_MAX_DIMS];
  int64_t strides[LC_MAX_DIMS];
} lay;

static void lay_of(const lc_tensor *t, lay *l) {
  if (t->ndim == 0) {
    l->nd = 1;
    l->shape[0] = 1;
    l->strides[0] = 1;
    return;
  }
  l->nd = t->ndim;
  memcpy(l->shape, t->shape, (size_t)t->ndim * sizeof(int64_t));
  memcpy(l->strides, t->strides, (size_t)t->ndim * sizeof(int64_t));
}

/* ---------------------------------------------------------------- gather/scatter engine */

typedef enum gs_mode { GS_GATHER, GS_SCATTER, GS_SCATTER_ADD } gs_mode;

typedef struct gs_ctx {
  lc_iter it;               /* operands: 0 index, 1 self, 2 other; dim `dim` squashed to size 1 */
  int64_t n;                /* index size along dim */
  int64_t istr, sstr, ostr; /* strides along dim */
  const char *idx;
  lc_dtype idt;
  char *self, *other;
  lc_dtype dt;
  gs_mode mode;
  bool k_inner; /* loop along dim innermost (else along the iterator's inner dim) */
  bool split_k; /* threads split the dim loop rather than the rows (gather only) */
} gs_ctx;

/* One position: x = index value, S = self element at x along dim, O = other element. */
#define GS_ELEM(T, BODY, oi, os, oo)                                                               \
  do {                                                                                             \
    int64_t x = load_index(c->idx, c->idt, (oi));                                                  \
    T *S = self_ + (os) + x * c->sstr;                                                             \
    T *O = other_ + (oo);                                                                          \
    BODY;                                                                                          \
  } while (0)

/* The loop order puts the smaller stride of `other` innermost, so the side that is walked
 * in order (gather's output, scatter's src) is read or written along memory. */
#define GS_LOOP(T, BODY)                                                                           \
  do {                                                                                             \
    T *self_ = (T *)c->self;                                                                       \
    T *other_ = (T *)c->other;                                                                     \
    const int64_t r0 = c->split_k ? 0 : begin, r1 = c->split_k ? c->it.outer : end;                \
    const int64_t k0 = c->split_k ? begin : 0, k1 = c->split_k ? end : c->n;                       \
    const int64_t is0 = c->it.inner_stride[0], is1 = c->it.inner_stride[1],                        \
                  is2 = c->it.inner_stride[2], m = c->it.inner;                                    \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      lc_iter_row(&c->it, r, offs);                                                                \
      if (c->k_inner) {                                                                            \
        for (int64_t j = 0; j < m; j++)                                                            \
          for (int64_t k = k0; k < k1; k++)                                                        \
            GS_ELEM(T, BODY, offs[0] + j * is0 + k * c->istr, offs[1] + j * is1,                   \
                    offs[2] + j * is2 + k * c->ostr);                                              \
      } else {                                                                                     \
        for (int64_t k = k0; k < k1; k++)                                                          \
          for (int64_t j = 0; j < m; j++)                                                          \
            GS_ELEM(T, BODY, offs[0] + j * is0 + k * c->istr, offs[1] + j * is1,                   \
                    offs[2] + j * is2 + k * c->ostr);                                              \
      }                                                                                            \
    }                                                                                              \
  } while (0)

static void gs_rows(void *ctx, int64_t begin, int64_t end) {
  const gs_ctx *c = ctx;
  int64_t offs[LC_ITER_MAX_OPS];
  if (c->mode == GS_GATHER || c->mode == GS_SCATTER) {
    /* pure moves: by element size */
    bool g = c->mode == GS_GATHER;
    switch (lc_dtype_size(c->dt)) {
    case 8: GS_LOOP(uint64_t, if (g) *O = *S; else *S = *O); break;
    case 4: GS_LOOP(uint32_t, if (g) *O = *S; else *S = *O); break;
    default: GS_LOOP(uint8_t, if (g) *O = *S; else *S = *O); break;
    }
    return;
  }
  switch (c->dt) {
  case LC_FLOAT32: GS_LOOP(float, *S += *O); break;
  case LC_FLOAT64: GS_LOOP(double, *S += *O); break;
  case LC_INT32: GS_LOOP(int32_t, *S += *O); break;
  case LC_INT64: GS_LOOP(int64_t, *S += *O); break;
  default: GS_LOOP(uint8_t, *S = (uint8_t)(*S | *O)); break; /* bool: logical or */
  }
}

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

/* Runs the engine over index positions (nd, ishape). Strides are per operand over that space
 * (other and index may be broadcast with stride 0). Indices must already be range-checked. */
static void gs_run(gs_mode mode, int nd, const int64_t *ishape, int dim, const lc_tensor *index,
                   const int64_t *istrides, char *self, const int64_t *sstrides, char *other,
                   const int64_t *ostrides, lc_dtype dt) {
  if (lc_shape_numel(nd, ishape) == 0) return;
  gs_ctx c;
  int64_t shape[LC_MAX_DIMS], strides[3][LC_MAX_DIMS];
  memcpy(shape, ishape, (size_t)nd * sizeof *shape);
  shape[dim] = 1;
  memcpy(strides[0], istrides, (size_t)nd * sizeof(int64_t));
  memcpy(strides[1], sstrides, (size_t)nd * sizeof(int64_t));
  memcpy(strides[2], ostrides, (size_t)nd * sizeof(int64_t));
  lc_iter_init(&c.it, 3, nd, shape, (const int64_t(*)[LC_MAX_DIMS])strides);
  c.n = ishape[dim];
  c.istr = istrides[dim];
  c.sstr = sstrides[dim];
  c.ostr = ostrides[dim];
  c.idx = lc_data(index);
  c.idt = index->dtype;
  c.self = self;
  c.other = other;
  c.dt = dt;
  c.mode = mode;
  c.k_inner = c.it.inner == 1 || iabs64(c.ostr) <= iabs64(c.it.inner_stride[2]);
  /* Rows differ outside dim, so they never write the same element of self: threads may split
   * them even for scatter. Splitting along dim is only safe for gather (distinct outputs); it
   * is used when there are too few rows to share out (e.g. an embedding lookup). */
  c.split_k = mode == GS_GATHER && c.it.outer < 8 && c.n > c.it.outer;
  if (c.split_k)
    lc_parallel_for(c.n, c.it.outer * c.it.inner, gs_rows, &c);
  else
    lc_parallel_for(c.it.outer, c.it.inner * c.n, gs_rows, &c);
}

/* ---------------------------------------------------------------- index_select */

/* index (1-D or 0-dim) as a layout over `shape` that varies along dim only. */
static void expanded_index(const lc_tensor *index, int nd, int dim, int64_t *strides) {
  for (int d = 0; d < nd; d++)
    strides[d] = 0;
  strides[dim] = index->ndim ? index->strides[0] : 0;
}

static lc_status index_select_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                      const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *t = in[0], *index = in[1];
  lc_status st = need_index("index_select", "index", index);
  if (st) return st;
  if (index->ndim > 1)
    return lc_set_error(LC_ESHAPE, "index_select: index must be 1-D, got %d dims", index->ndim);
  int dim = (int)args->i[0];
  st = lc_wrap_dim(&dim, t->ndim, "index_select");
  if (st) return st;
  lay tl;
  lay_of(t, &tl);
  int64_t nidx = index->numel;
  if (t->ndim == 0 && nidx != 1)
    return lc_set_error(LC_ESHAPE,
                        "index_select: a 0-dim tensor takes an index of one element, got %lld",
                        (long long)nidx);
  st = lc_check_indices(index, tl.shape[dim], dim, "index_select");
  if (st) return st;
  int64_t oshape[LC_MAX_DIMS];
  memcpy(oshape, tl.shape, (size_t)tl.nd * sizeof *oshape);
  oshape[dim] = nidx;
  lc_tensor *r = NULL;
  st = lc_tensor_new(t->ndim, oshape, t->dtype, &r);
  if (st) return st;
  lay rl;
  lay_of(r, &rl);
  int64_t istr[LC_MAX_DIMS];
  expanded_index(index, tl.nd, dim, istr);
  gs_run(GS_GATHER, tl.nd, oshape, dim, index, istr, lc_data(t), tl.strides, lc_data(r), rl.strides,
         t->dtype);
  *out = r;
  return LC_OK;
}

/* ---------------------------------------------------------------- graph backwards
 * create_graph forms of the index ops' gradients: the adjoints are themselves index ops
 * (gather <-> scatter_add), so each differentiates to any order. */

static lc_tensor *gb_dim_op(lc_gb *b, const lc_op_def *op, int dim, int n, lc_tensor *const *in) {
  lc_op_args a = {.i = {dim}, .ni = 1};
  return lc_gb_op(b, op, n, in, &a);
}

static int ctx_dim(const lc_op_ctx *ctx) {
  int dim = (int)ctx->args->i[0];
  lc_wrap_dim(&dim, ctx->in[0].ndim, ctx->op->name);
  return dim;
}

static lc_status gather_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *index = lc_gb_saved(&b, 0);
  if (!b.st) lc_gb_grad(&b, 0, lc_gb_put_back(&b, &ctx->in[0], ctx_dim(ctx), g, index), grad_in);
  return lc_gb_end(&b, grad_in);
}

/* scatter / scatter_add: self gets g (scatter: zero where overwritten), src gets g gathered */
static lc_status scatter_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                        lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *index = lc_gb_saved(&b, 0);
  int dim = b.st ? 0 : ctx_dim(ctx);
  if (ctx->needs_grad[0]) {
    lc_tensor *r = (lc_tensor *)g;
    if (ctx->op == &lc_op_scatter && !b.st) {
      lc_meta im;
      im.ndim = index->ndim;
      memcpy(im.shape, index->shape, sizeof im.shape);
      lc_tensor *in[3] = {(lc_tensor *)g, index, lc_gb_zeros(&b, &im, g->dtype)};
      r = gb_dim_op(&b, &lc_op_scatter, dim, 3, in);
    }
    lc_gb_grad(&b, 0, r, grad_in);
  }
  if (ctx->needs_grad[2]) {
    lc_tensor *in[2] = {(lc_tensor *)g, index};
    lc_gb_grad(&b, 2, gb_dim_op(&b, &lc_op_gather, dim, 2, in), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

/* index_select: g scatter-added back, with the 1-D index expanded to g's shape along dim */
static lc_status index_select_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                             lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *index = lc_gb_saved(&b, 0);
  if (!b.st && g->ndim > 0) {
    int dim = ctx_dim(ctx);
    int64_t sh[LC_MAX_DIMS];
    for (int d = 0; d < g->ndim; d++)
      sh[d] = d == dim ? g->shape[d] : 1;
    lc_tensor *ix = lc_gb_expand(&b, lc_gb_reshape(&b, index, g->ndim, sh), g->ndim, g->shape);
    lc_gb_grad(&b, 0, lc_gb_put_back(&b, &ctx->in[0], dim, g, ix), grad_in);
  } else if (!b.st) {
    lc_gb_grad(&b, 0, g, grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

static lc_status masked_fill_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                            lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *mask = lc_gb_saved(&b, 0);
  lc_gb_grad(&b, 0, lc_gb_mask(&b, lc_gb_un(&b, LC_LOGICAL_NOT, mask), g), grad_in);
  return lc_gb_end(&b, grad_in);
}

static lc_status index_select_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *index = NULL, *z = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &index);
  if (st) return st;
  st = lc_zeros(ctx->in[0].ndim, ctx->in[0].shape, g->dtype, &z);
  if (st) return st;
  int dim = (int)ctx->args->i[0];
  lc_wrap_dim(&dim, ctx->in[0].ndim, "IndexSelectBackward");
  lay zl, gl;
  lay_of(z, &zl);
  lay_of(g, &gl);
  int64_t istr[LC_MAX_DIMS];
  expanded_index(index, gl.nd, dim, istr);
  /* index_add: z[..., index[k], ...] += g[..., k, ...] */
  gs_run(GS_SCATTER_ADD, gl.nd, gl.shape, dim, index, istr, lc_data(z), zl.strides, lc_data(g),
         gl.strides, g->dtype);
  grad_in[0] = z;
  return LC_OK;
}

const lc_op_def lc_op_index_select = {
    .name = "index_select",
    .grad_fn_name = "IndexSelectBackward",
    .n_inputs = 2,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = index_select_forward,
    .backward = index_select_backward,
    .backward_graph = index_select_backward_graph,
};

/* ---------------------------------------------------------------- gather */

/* Checks shared by gather and scatter: index dtype, ndim and sizes, and index values. `src`
 * may be NULL (gather). */
static lc_status check_gs(const char *fn, const lc_tensor *t, int *dim, const lc_tensor *index,
                          const lc_tensor *src) {
  lc_status st = need_index(fn, "index", index);
  if (st) return st;
  st = lc_wrap_dim(dim, t->ndim, fn);
  if (st) return st;
  if (index->ndim != t->ndim)
    return lc_set_error(LC_ESHAPE, "%s: index must have as many dims as the input (%d), got %d", fn,
                        t->ndim, index->ndim);
  if (src && src->ndim != t->ndim)
    return lc_set_error(LC_ESHAPE, "%s: src must have as many dims as the input (%d), got %d", fn,
                        t->ndim, src->ndim);
  for (int d = 0; d < t->ndim; d++) {
    if (d != *dim && index->shape[d] > t->shape[d])
      return lc_set_error(LC_ESHAPE,
                          "%s: index size %lld at dim %d exceeds the input's size %lld there", fn,
                          (long long)index->shape[d], d, (long long)t->shape[d]);
    if (src && index->shape[d] > src->shape[d])
      return lc_set_error(LC_ESHAPE, "%s: index size %lld at dim %d exceeds src's size %lld there",
                          fn, (long long)index->shape[d], d, (long long)src->shape[d]);
  }
  lay tl;
  lay_of(t, &tl);
  return lc_check_indices(index, tl.shape[*dim], *dim, fn);
}

static lc_status gather_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *t = in[0], *index = in[1];
  int dim = (int)args->i[0];
  lc_status st = check_gs("gather", t, &dim, index, NULL);
  if (st) return st;
  lc_tensor *r = NULL;
  st = lc_tensor_new(index->ndim, index->shape, t->dtype, &r);
  if (st) return st;
  lay tl, il, rl;
  lay_of(t, &tl);
  lay_of(index, &il);
  lay_of(r, &rl);
  gs_run(GS_GATHER, il.nd, il.shape, dim, index, il.strides, lc_data(t), tl.strides, lc_data(r),
         rl.strides, t->dtype);
  *out = r;
  return LC_OK;
}

/* zeros(shape) with g scatter-added at index along dim: the adjoint of gather. */
static lc_status scatter_add_into_zeros(int nd, const int64_t *shape, int dim,
                                        const lc_tensor *index, const lc_tensor *g,
                                        lc_tensor **out) {
  lc_tensor *z = NULL;
  lc_status st = lc_zeros(nd, shape, g->dtype, &z);
  if (st) return st;
  lay zl, il, gl;
  lay_of(z, &zl);
  lay_of(index, &il);
  lay_of(g, &gl);
  gs_run(GS_SCATTER_ADD, il.nd, il.shape, dim, index, il.strides, lc_data(z), zl.strides,
         lc_data(g), gl.strides, g->dtype);
  *out = z;
  return LC_OK;
}

static lc_status gather_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *index = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &index);
  if (st) return st;
  int dim = (int)ctx->args->i[0];
  lc_wrap_dim(&dim, ctx->in[0].ndim, "GatherBackward");
  return scatter_add_into_zeros(ctx->in[0].ndim, ctx->in[0].shape, dim, index, g, &grad_in[0]);
}

const lc_op_def lc_op_gather = {
    .name = "gather",
    .grad_fn_name = "GatherBackward",
    .n_inputs = 2,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = gather_forward,
    .backward = gather_backward,
    .backward_graph = gather_backward_graph,
};

/* ---------------------------------------------------------------- scatter, scatter_add */

static lc_status scatter_common(const char *fn, gs_mode mode, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *t = in[0], *index = in[1], *src = in[2];
  int dim = (int)args->i[0];
  lc_status st = check_gs(fn, t, &dim, index, src);
  if (st) return st;
  lc_tensor *r = NULL, *s = NULL;
  st = lc_k_copy_as(t, t->dtype, &r);
  if (st) return st;
  if (src->dtype != t->dtype) {
    /* src is converted to the destination's dtype, as writing into t would. */
    st = lc_k_copy_as(src, t->dtype, &s);
    if (st) {
      lc_release(r);
      return st;
    }
  } else {
    s = lc_retain((lc_tensor *)src);
  }
  lay rl, il, sl;
  lay_of(r, &rl);
  lay_of(index, &il);
  lay_of(s, &sl);
  gs_run(mode, il.nd, il.shape, dim, index, il.strides, lc_data(r), rl.strides, lc_data(s),
         sl.strides, t->dtype);
  lc_release(s);
  *out = r;
  return LC_OK;
}

static lc_status scatter_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                 const lc_op_args *args, lc_tensor **out) {
  return scatter_common("scatter", GS_SCATTER, in, args, out);
}

static lc_status scatter_add_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                     const lc_op_args *args, lc_tensor **out) {
  return scatter_common("scatter_add", GS_SCATTER_ADD, in, args, out);
}

/* grad of src for scatter/scatter_add: gather(g, dim, index), padded with zeros up to src's
 * shape when index is smaller than src (the positions of src that were never read). */
static lc_status scatter_src_grad(const lc_op_ctx *ctx, int dim, const lc_tensor *index,
                                  const lc_tensor *g, lc_tensor **out) {
  lc_tensor *gi[2] = {(lc_tensor *)g, (lc_tensor *)index}, *r = NULL;
  lc_op_args a = {.i = {dim}, .ni = 1};
  lc_status st = gather_forward(&lc_op_gather, 2, gi, &a, &r);
  if (st) return st;
  const lc_meta *sm = &ctx->in[2];
  if (same_shape(r, sm->ndim, sm->shape)) {
    *out = r;
    return LC_OK;
  }
  lc_tensor *z = NULL, *part = NULL;
  st = lc_zeros(sm->ndim, sm->shape, r->dtype, &z);
  if (!st) st = lc_tensor_view_of(z, r->ndim, r->shape, z->strides, z->offset, &part);
  if (!st) st = lc_k_copy(part, r);
  lc_release(part);
  lc_release(r);
  if (st) {
    lc_release(z);
    return st;
  }
  *out = z;
  return LC_OK;
}

static lc_status scatter_backward_common(const lc_op_ctx *ctx, const lc_tensor *g,
                                         lc_tensor **grad_in, bool add) {
  lc_tensor *index = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &index);
  if (st) return st;
  int dim = (int)ctx->args->i[0];
  lc_wrap_dim(&dim, ctx->in[0].ndim, add ? "ScatterAddBackward" : "ScatterBackward");
  lc_tensor *gs = NULL;
  if (ctx->needs_grad[0]) {
    if (add) {
      gs = lc_retain((lc_tensor *)g);
    } else {
      /* g with the overwritten positions zeroed: scatter a broadcast zero into a copy. */
      st = lc_k_copy_as(g, g->dtype, &gs);
      if (st) return st;
      static const uint64_t zero = 0; /* all-zero bytes are 0 in every dtype */
      int64_t zstr[LC_MAX_DIMS] = {0};
      lay gl, il;
      lay_of(gs, &gl);
      lay_of(index, &il);
      gs_run(GS_SCATTER, il.nd, il.shape, dim, index, il.strides, lc_data(gs), gl.strides,
             (char *)&zero, zstr, gs->dtype);
    }
  }
  if (ctx->needs_grad[2]) {
    st = scatter_src_grad(ctx, dim, index, g, &grad_in[2]);
    if (st) {
      lc_release(gs);
      return st;
    }
  }
  if (ctx->needs_grad[0]) grad_in[0] = gs;
  return LC_OK;
}

static lc_status scatter_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  return scatter_backward_common(ctx, g, grad_in, false);
}

static lc_status scatter_add_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                      lc_tensor **grad_in) {
  return scatter_backward_common(ctx, g, grad_in, true);
}

const lc_op_def lc_op_scatter = {
    .name = "scatter",
    .grad_fn_name = "ScatterBackward",
    .n_inputs = 3,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = scatter_forward,
    .backward = scatter_backward,
    .backward_graph = scatter_backward_graph,
};

const lc_op_def lc_op_scatter_add = {
    .name = "scatter_add",
    .grad_fn_name = "ScatterAddBackward",
    .n_inputs = 3,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = scatter_add_forward,
    .backward = scatter_add_backward,
    .backward_graph = scatter_backward_graph,
};

/* ---------------------------------------------------------------- masks */

static lc_status check_mask(const char *fn, const lc_tensor *mask) {
  if (mask->dtype != LC_BOOL)
    return lc_set_error(LC_EDTYPE, "%s: mask must be a bool tensor, got %s", fn,
                        lc_dtype_name(mask->dtype));
  return LC_OK;
}

typedef struct mf_ctx {
  lc_iter it; /* 0 out, 1 x, 2 mask */
  char *out;
  const char *x;
  const uint8_t *mask;
  lc_dtype dt;
  double value;
} mf_ctx;

#define MF_LOOP(T, V)                                                                              \
  do {                                                                                             \
    const T v_ = (V);                                                                              \
    const int64_t n_ = c->it.inner, s0 = c->it.inner_stride[0], s1 = c->it.inner_stride[1],        \
                  s2 = c->it.inner_stride[2];                                                      \
    for (int64_t r = begin; r < end; r++) {                                                        \
      lc_iter_row(&c->it, r, offs);                                                                \
      T *restrict o_ = (T *)c->out + offs[0];                                                      \
      const T *x_ = (const T *)c->x + offs[1];                                                     \
      const uint8_t *m_ = c->mask + offs[2];                                                       \
      for (int64_t j = 0; j < n_; j++)                                                             \
        o_[j * s0] = m_[j * s2] ? v_ : x_[j * s1];                                                 \
    }                                                                                              \
  } while (0)

static void mf_rows(void *ctx, int64_t begin, int64_t end) {
  const mf_ctx *c = ctx;
  int64_t offs[LC_ITER_MAX_OPS];
  switch (c->dt) {
  case LC_FLOAT32: MF_LOOP(float, (float)c->value); break;
  case LC_FLOAT64: MF_LOOP(double, c->value); break;
  case LC_INT32: MF_LOOP(int32_t, (int32_t)c->value); break;
  case LC_INT64: MF_LOOP(int64_t, (int64_t)c->value); break;
  default: MF_LOOP(uint8_t, (uint8_t)(c->value != 0)); break;
  }
}

/* out = mask ? value : x; mask (already checked) broadcasts to x's shape. */
static lc_status masked_fill_raw(const lc_tensor *x, const lc_tensor *mask, double value,
                                 lc_tensor **out) {
  lc_tensor *r = NULL;
  lc_status st = lc_tensor_new(x->ndim, x->shape, x->dtype, &r);
  if (st) return st;
  mf_ctx c;
  int64_t strides[3][LC_MAX_DIMS];
  memcpy(strides[0], r->strides, sizeof r->strides);
  memcpy(strides[1], x->strides, sizeof x->strides);
  lc_broadcast_strides(mask, x->ndim, x->shape, strides[2]);
  lc_iter_init(&c.it, 3, x->ndim, x->shape, (const int64_t(*)[LC_MAX_DIMS])strides);
  c.out = lc_data(r);
  c.x = lc_data(x);
  c.mask = lc_data(mask);
  c.dt = x->dtype;
  c.value = value;
  lc_parallel_for(c.it.outer, c.it.inner, mf_rows, &c);
  *out = r;
  return LC_OK;
}

static lc_status masked_fill_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                     const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *t = in[0], *mask = in[1];
  lc_status st = check_mask("masked_fill", mask);
  if (st) return st;
  int nb;
  int64_t bshape[LC_MAX_DIMS];
  st = lc_broadcast_shapes(t->ndim, t->shape, mask->ndim, mask->shape, &nb, bshape, "masked_fill");
  if (st) return st;
  if (!same_shape(t, nb, bshape)) {
    char a[256], b[256];
    return lc_set_error(LC_ESHAPE,
                        "masked_fill: mask of shape %s does not broadcast to the tensor's shape %s",
                        lc_shape_str(mask->ndim, mask->shape, a, sizeof a),
                        lc_shape_str(t->ndim, t->shape, b, sizeof b));
  }
  double v = args->f[0];
  if (!is_float(t->dtype) && t->dtype != LC_BOOL &&
      (!(v == v) || v >= 9.2233720368547758e18 || v < -9.2233720368547758e18 ||
       (t->dtype == LC_INT32 && (v >= 2147483648.0 || v < -2147483648.0))))
    return lc_set_error(LC_EARG, "masked_fill: value %g does not fit dtype %s", v,
                        lc_dtype_name(t->dtype));
  return masked_fill_raw(t, mask, v, out);
}

static lc_status masked_fill_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                      lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *mask = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &mask);
  if (st) return st;
  return masked_fill_raw(g, mask, 0.0, &grad_in[0]);
}

const lc_op_def lc_op_masked_fill = {
    .name = "masked_fill",
    .grad_fn_name = "MaskedFillBackward",
    .n_inputs = 2,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = masked_fill_forward,
    .backward = masked_fill_backward,
    .backward_graph = masked_fill_backward_graph,
};

/* C-order walk over (nd, shape) keeping element offsets for two operands. masked_select and
 * nonzero produce results in C order, so they walk with this rather than lc_iter. */
typedef struct corder {
  int nd;
  int64_t shape[LC_MAX_DIMS], idx[LC_MAX_DIMS], st[2][LC_MAX_DIMS], off[2];
} corder;

static void corder_init(corder *c, int nd, const int64_t *shape, const int64_t *s0,
                        const int64_t *s1) {
  memset(c, 0, sizeof *c);
  c->nd = nd;
  for (int d = 0; d < nd; d++) {
    c->shape[d] = shape[d];
    c->st[0][d] = s0[d];
    c->st[1][d] = s1 ? s1[d] : 0;
  }
}

static inline void corder_next(corder *c) {
  for (int d = c->nd - 1; d >= 0; d--) {
    if (++c->idx[d] < c->shape[d]) {
      c->off[0] += c->st[0][d];
      c->off[1] += c->st[1][d];
      return;
    }
    c->off[0] -= (c->shape[d] - 1) * c->st[0][d];
    c->off[1] -= (c->shape[d] - 1) * c->st[1][d];
    c->idx[d] = 0;
  }
}

static void move_elem(char *dst, int64_t di, const char *src, int64_t si, size_t es) {
  switch (es) {
  case 8: ((uint64_t *)dst)[di] = ((const uint64_t *)src)[si]; break;
  case 4: ((uint32_t *)dst)[di] = ((const uint32_t *)src)[si]; break;
  default: ((uint8_t *)dst)[di] = ((const uint8_t *)src)[si]; break;
  }
}

/* The broadcast shape of t and mask, and both operands' strides over it. */
static lc_status ms_layout(const lc_tensor *t, const lc_tensor *mask, int *nb, int64_t *bshape,
                           int64_t *tstr, int64_t *mstr) {
  lc_status st =
      lc_broadcast_shapes(t->ndim, t->shape, mask->ndim, mask->shape, nb, bshape, "masked_select");
  if (st) return st;
  lc_broadcast_strides(t, *nb, bshape, tstr);
  lc_broadcast_strides(mask, *nb, bshape, mstr);
  return LC_OK;
}

static lc_status masked_select_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                       const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *t = in[0], *mask = in[1];
  lc_status st = check_mask("masked_select", mask);
  if (st) return st;
  int nb;
  int64_t bshape[LC_MAX_DIMS], tstr[LC_MAX_DIMS], mstr[LC_MAX_DIMS];
  st = ms_layout(t, mask, &nb, bshape, tstr, mstr);
  if (st) return st;
  int64_t total = lc_shape_numel(nb, bshape), count = 0;
  const uint8_t *m = lc_data(mask);
  corder c;
  corder_init(&c, nb, bshape, mstr, NULL);
  for (int64_t k = 0; k < total; k++, corder_next(&c))
    count += m[c.off[0]] != 0;
  lc_tensor *r = NULL;
  st = lc_tensor_new(1, &count, t->dtype, &r);
  if (st) return st;
  char *dst = lc_data(r);
  const char *src = lc_data(t);
  size_t es = lc_dtype_size(t->dtype);
  int64_t w = 0;
  corder_init(&c, nb, bshape, mstr, tstr);
  for (int64_t k = 0; k < total; k++, corder_next(&c))
    if (m[c.off[0]]) move_elem(dst, w++, src, c.off[1], es);
  *out = r;
  return LC_OK;
}

static lc_status masked_select_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                        lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *mask = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &mask);
  if (st) return st;
  int nb;
  int64_t bshape[LC_MAX_DIMS], mstr[LC_MAX_DIMS];
  st = lc_broadcast_shapes(ctx->in[0].ndim, ctx->in[0].shape, mask->ndim, mask->shape, &nb, bshape,
                           "MaskedSelectBackward");
  if (st) return st;
  lc_broadcast_strides(mask, nb, bshape, mstr);
  lc_tensor *z = NULL;
  st = lc_zeros(nb, bshape, g->dtype, &z);
  if (st) return st;
  /* masked scatter: the k-th selected position receives g[k] */
  int64_t total = z->numel, gk = 0, gs = g->ndim ? g->strides[0] : 0;
  const uint8_t *m = lc_data(mask);
  const char *gsrc = lc_data(g);
  char *zd = lc_data(z);
  size_t es = lc_dtype_size(g->dtype);
  corder c;
  corder_init(&c, nb, bshape, mstr, z->strides);
  for (int64_t k = 0; k < total; k++, corder_next(&c))
    if (m[c.off[0]]) move_elem(zd, c.off[1], gsrc, (gk++) * gs, es);
  /* t was broadcast against the mask: sum the gradient back to t's shape */
  st = lc_k_sum_to(z, ctx->in[0].ndim, ctx->in[0].shape, &grad_in[0]);
  lc_release(z);
  return st;
}

/* The same masked scatter as recorded ops: g put back at the mask's flat true positions
 * (nonzero of the broadcast mask), reshaped, summed back to t's shape. */
static lc_status masked_select_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                              lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *mask = lc_gb_saved(&b, 0);
  int nb = 0;
  int64_t bshape[LC_MAX_DIMS], total = 1;
  if (mask)
    b.st = lc_broadcast_shapes(ctx->in[0].ndim, ctx->in[0].shape, mask->ndim, mask->shape, &nb,
                               bshape, "MaskedSelectBackward");
  for (int d = 0; d < nb; d++)
    total *= bshape[d];
  lc_tensor *flat = lc_gb_reshape(&b, lc_gb_expand(&b, mask, nb, bshape), 1, &total);
  lc_tensor *nz = flat ? lc_gb_op(&b, &lc_op_nonzero, 1, &flat, NULL) : NULL;
  int64_t k = g->numel;
  lc_tensor *idx = lc_gb_reshape(&b, nz, 1, &k);
  lc_meta m = {.ndim = 1, .shape = {total}, .dtype = g->dtype};
  lc_tensor *z = lc_gb_put_back(&b, &m, 0, g, idx);
  lc_gb_grad(&b, 0, lc_gb_reshape(&b, z, nb, bshape), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_masked_select = {
    .name = "masked_select",
    .grad_fn_name = "MaskedSelectBackward",
    .n_inputs = 2,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = masked_select_forward,
    .backward = masked_select_backward,
    .backward_graph = masked_select_backward_graph,
};

/* ---------------------------------------------------------------- nonzero */

static lc_status nonzero_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                 const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *t = in[0];
  const char *p = lc_data(t);
  int64_t count = 0, total = t->numel;
  corder c;
  corder_init(&c, t->ndim, t->shape, t->strides, NULL);
  for (int64_t k = 0; k < total; k++, corder_next(&c))
    count += lc_load_f64(p, t->dtype, c.off[0]) != 0;
  int64_t oshape[2] = {count, t->ndim};
  lc_tensor *r = NULL;
  lc_status st = lc_tensor_new(2, oshape, LC_INT64, &r);
  if (st) return st;
  int64_t *o = lc_data(r);
  corder_init(&c, t->ndim, t->shape, t->strides, NULL);
  for (int64_t k = 0; k < total; k++, corder_next(&c)) {
    if (lc_load_f64(p, t->dtype, c.off[0]) != 0) {
      for (int d = 0; d < t->ndim; d++)
        *o++ = c.idx[d];
    }
  }
  *out = r;
  return LC_OK;
}

const lc_op_def lc_op_nonzero = {
    .name = "nonzero",
    .grad_fn_name = NULL,
    .n_inputs = 1,
    .n_outputs = 1,
    .forward = nonzero_forward,
    .backward = NULL,
};
