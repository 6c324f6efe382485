/*
 * rearrange.c - ops that move elements without computing on them: tril, triu, flip, roll,
 * rot90 and repeat_interleave, with repeat_interleave's adjoint (the segment sum along a dim,
 * repeat_interleave_backward), each op's forward and backward side by side.
 *
 * Every backward here is one op of this family run through ctx->run (tril's is tril, flip's
 * flip, roll's roll by the opposite shifts, rot90's rot90 by -k, repeat_interleave's the
 * segment sum and the segment sum's repeat_interleave), so each backward is also its
 * backward_graph: under create_graph it records, and the gradients differentiate to any order.
 *
 * flip, roll and rot90 are one strided move (mv_run): the output is written in order while
 * the input is read through strides that may be negative (a flipped dim) or permuted (rot90's
 * transpose); roll is a handful of such moves, one per block its shifts cut the tensor into.
 */
#include "kernel_util.h"

#include <string.h>

/* ---------------------------------------------------------------- strided move */

typedef struct mv_ctx {
  lc_iter it; /* operands: 0 dst, 1 src */
  char *dst;
  const char *src;
  size_t es;
} mv_ctx;

#define MV_LOOP(T)                                                                                 \
  do {                                                                                             \
    const int64_t n_ = c->it.inner, ds = c->it.inner_stride[0], ss = c->it.inner_stride[1];        \
    for (int64_t r = begin; r < end; r++) {                                                        \
      lc_iter_row(&c->it, r, offs);                                                                \
      T *restrict d_ = (T *)c->dst + offs[0];                                                      \
      const T *restrict s_ = (const T *)c->src + offs[1];                                          \
      if (ds == 1 && ss == 1) {                                                                    \
        memcpy(d_, s_, (size_t)n_ * sizeof(T));                                                    \
      } else if (ds == 1 && ss == -1) {                                                            \
        for (int64_t j = 0; j < n_; j++)                                                           \
          d_[j] = s_[-j];                                                                          \
      } else if (ds == 1 && ss == 0) {                                                             \
        const T v_ = s_[0];                                                                        \
        for (int64_t j = 0; j < n_; j++)                                                           \
          d_[j] = v_;                                                                              \
      } else {                                                                                     \
        for (int64_t j = 0; j < n_; j++)                                                           \
          d_[j * ds] = s_[j * ss];                                                                 \
      }                                                                                            \
    }                                                                                              \
  } while (0)

static void mv_rows(void *ctx, int64_t begin, int64_t end) {
  const mv_ctx *c = ctx;
  int64_t offs[LC_ITER_MAX_OPS];
  switch (c->es) {
  case 8: MV_LOOP(uint64_t); break;
  case 4: MV_LOOP(uint32_t); break;
  default: MV_LOOP(uint8_t); break;
  }
}

/* dst[i] = src[i] over the index space (nd, shape), each side through its own element strides
 * (any sign) from its base pointer. Rows of the walk run on the pool when large enough. */
static void mv_run(int nd, const int64_t *shape, char *dst, const int64_t *dstr, const char *src,
                   const int64_t *sstr, size_t es) {
  if (lc_shape_numel(nd, shape) == 0) return;
  int64_t strides[2][LC_MAX_DIMS];
  memcpy(strides[0], dstr, (size_t)nd * sizeof(int64_t));
  memcpy(strides[1], sstr, (size_t)nd * sizeof(int64_t));
  mv_ctx c;
  lc_iter_init(&c.it, 2, nd, shape, (const int64_t(*)[LC_MAX_DIMS])strides);
  c.dst = dst;
  c.src = src;
  c.es = es;
  lc_parallel_for(c.it.outer, c.it.inner, mv_rows, &c);
}

/* The input read with the dims in flip[] reversed: its base pointer (element (0, ..., 0) of
 * the reversed view) and strides. The tensor must have elements (the base of an empty dim
 * would lie before the data). */
static const char *reversed_view(const lc_tensor *t, const bool *flip, int64_t *strides) {
  const char *base = lc_data(t);
  int64_t off = 0;
  for (int d = 0; d < t->ndim; d++) {
    strides[d] = t->strides[d];
    if (flip[d] && t->shape[d] > 1) {
      off += (t->shape[d] - 1) * t->strides[d];
      strides[d] = -t->strides[d];
    }
  }
  return base + off * (int64_t)lc_dtype_size(t->dtype);
}

/* A new contiguous tensor of (nd, shape) and t's dtype filled by one strided move from src
 * (read with sstr). */
static lc_status move_new(const lc_tensor *t, int nd, const int64_t *shape, const char *src,
                          const int64_t *sstr, lc_tensor **out) {
  lc_tensor *r = NULL;
  lc_status st = lc_tensor_new(nd, shape, t->dtype, &r);
  if (st) return st;
  if (r->numel) mv_run(nd, shape, lc_data(r), r->strides, src, sstr, lc_dtype_size(t->dtype));
  *out = r;
  return LC_OK;
}

/* The backward of an op whose adjoint is itself with other args: runs ctx->run (recording
 * under create_graph) on the gradient. */
static lc_status self_adjoint(const lc_op_ctx *ctx, const lc_op_def *op, const lc_tensor *g,
                              const lc_op_args *a, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *in[1] = {(lc_tensor *)g};
  return ctx->run(op, 1, in, a, &grad_in[0]);
}

/* ---------------------------------------------------------------- tril, triu */

typedef struct tri_ctx {
  char *p;
  int64_t rows, cols, k;
  size_t es;
  bool lower;
} tri_ctx;

/* Zeroes, in each row r of the contiguous result (row r % rows of its matrix), the part the
 * triangle leaves out. All-zero bytes are 0 in every dtype. */
static void tri_rows(void *ctx, int64_t begin, int64_t end) {
  const tri_ctx *c = ctx;
  const size_t rb = (size_t)c->cols * c->es;
  for (int64_t r = begin; r < end; r++) {
    int64_t i = r % c->rows;
    char *row = c->p + (size_t)r * rb;
    if (c->lower) { /* keep j <= i + k */
      int64_t keep = i + c->k + 1;
      keep = keep < 0 ? 0 : keep > c->cols ? c->cols : keep;
      memset(row + (size_t)keep * c->es, 0, (size_t)(c->cols - keep) * c->es);
    } else { /* keep j >= i + k */
      int64_t drop = i + c->k;
      drop = drop < 0 ? 0 : drop > c->cols ? c->cols : drop;
      memset(row, 0, (size_t)drop * c->es);
    }
  }
}

static lc_status tri_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                             const lc_op_args *args, lc_tensor **out) {
  (void)n;
  const lc_tensor *t = in[0];
  if (t->ndim < 2)
    return lc_set_error(LC_ESHAPE, "%s: expected a tensor with at least 2 dims, got %d", op->name,
                        t->ndim);
  lc_tensor *r = NULL;
  lc_status st = lc_k_copy_as(t, t->dtype, &r);
  if (st) return st;
  tri_ctx c = {.p = lc_data(r),
               .rows = t->shape[t->ndim - 2],
               .cols = t->shape[t->ndim - 1],
               .es = lc_dtype_size(t->dtype),
               .lower = op == &lc_op_tril};
  /* any int64 diagonal: beyond [-rows - 1, cols + 1] it keeps all or nothing, as at the ends */
  int64_t k = args->i[0];
  c.k = k < -c.rows - 1 ? -c.rows - 1 : k > c.cols + 1 ? c.cols + 1 : k;
  if (r->numel) lc_parallel_for(r->numel / c.cols, c.cols, tri_rows, &c);
  *out = r;
  return LC_OK;
}

static lc_status tri_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  return self_adjoint(ctx, ctx->op, g, ctx->args, grad_in);
}

const lc_op_def lc_op_tril = {
    .name = "tril",
    .grad_fn_name = "TrilBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .forward = tri_forward,
    .backward = tri_backward,
    .backward_graph = tri_backward,
};

const lc_op_def lc_op_triu = {
    .name = "triu",
    .grad_fn_name = "TriuBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .forward = tri_forward,
    .backward = tri_backward,
    .backward_graph = tri_backward,
};

/* ---------------------------------------------------------------- flip */

/* args.i[0..ni-1]: the dims (negative from the end); a repeat is an error, as in PyTorch. */
static lc_status flip_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  const lc_tensor *t = in[0];
  bool flip[LC_MAX_DIMS] = {false};
  for (int k = 0; k < args->ni; k++) {
    int d;
    lc_status st = lc_wrap_dim64(args->i[k], t->ndim, "flip", &d);
    if (st) return st;
    if (flip[d])
      return lc_set_error(LC_EARG, "flip: dim " LC_POS_D " appears more than once in dims", d);
    flip[d] = true;
  }
  if (t->ndim == 0 || t->numel == 0)
    return move_new(t, t->ndim, t->shape, lc_data(t), t->strides, out);
  int64_t sstr[LC_MAX_DIMS];
  const char *src = reversed_view(t, flip, sstr);
  return move_new(t, t->ndim, t->shape, src, sstr, out);
}

static lc_status flip_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  return self_adjoint(ctx, &lc_op_flip, g, ctx->args, grad_in);
}

const lc_op_def lc_op_flip = {
    .name = "flip",
    .grad_fn_name = "FlipBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .forward = flip_forward,
    .backward = flip_backward,
    .backward_graph = flip_backward,
};

/* ---------------------------------------------------------------- roll */

static int64_t mod_size(int64_t s, int64_t n) {
  if (n <= 0) return 0;
  int64_t m = s % n;
  return m < 0 ? m + n : m;
}

/* The flattened roll: out (C order) = in (C order) shifted right by s, wrapping around. */
static lc_status roll_flat(const lc_tensor *t, int64_t shift, lc_tensor **out) {
  lc_tensor *hold = NULL, *r = NULL;
  const lc_tensor *d = NULL;
  lc_status st = dense(t, t->dtype, &hold, &d);
  if (st) return st;
  st = lc_tensor_new(t->ndim, t->shape, t->dtype, &r);
  if (st) {
    lc_release(hold);
    return st;
  }
  int64_t nel = t->numel, s = mod_size(shift, nel);
  if (nel) {
    int64_t one = 1, ds = 1;
    size_t es = lc_dtype_size(t->dtype);
    const char *src = lc_data(d);
    char *dst = lc_data(r);
    int64_t a = nel - s;
    mv_run(1, &a, dst + (size_t)s * es, &ds, src, &one, es);        /* out[s..) = in[0..n-s) */
    if (s) mv_run(1, &s, dst, &ds, src + (size_t)a * es, &one, es); /* out[0..s) = in[n-s..) */
  }
  lc_release(hold);
  *out = r;
  return LC_OK;
}

/* args: LC_ARG_ALL with i[0] the shift of the flattened tensor; else ni == ndim and i[d] the
 * shift along dim d (any sign; reduced modulo the dim's size). */
static lc_status roll_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  const lc_tensor *t = in[0];
  if (args->flags & LC_ARG_ALL) return roll_flat(t, args->i[0], out);
  if (args->ni != t->ndim)
    return lc_set_error(LC_EARG, "roll: expected one shift per dim (%d), got %d", t->ndim,
                        args->ni);
  lc_tensor *r = NULL;
  lc_status st = lc_tensor_new(t->ndim, t->shape, t->dtype, &r);
  if (st) return st;
  if (!t->numel) {
    *out = r;
    return LC_OK;
  }
  /* The shifts cut each rolled dim into two blocks, [0, n - s) going to [s, n) and [n - s, n)
   * going to [0, s): one strided move per combination of blocks. */
  int rolled[LC_MAX_DIMS], nr = 0;
  int64_t shift[LC_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) {
    shift[d] = mod_size(args->i[d], t->shape[d]);
    if (shift[d]) rolled[nr++] = d;
  }
  size_t es = lc_dtype_size(t->dtype);
  for (uint32_t mask = 0; mask < (1u << nr); mask++) {
    int64_t bshape[LC_MAX_DIMS], soff = 0, doff = 0;
    memcpy(bshape, t->shape, (size_t)t->ndim * sizeof(int64_t));
    for (int k = 0; k < nr; k++) {
      int d = rolled[k];
      int64_t size = t->shape[d], s = shift[d];
      if (mask & (1u << k)) { /* the tail [n - s, n) to [0, s) */
        bshape[d] = s;
        soff += (size - s) * t->strides[d];
      } else { /* the head [0, n - s) to [s, n) */
        bshape[d] = size - s;
        doff += s * r->strides[d];
      }
    }
    mv_run(t->ndim, bshape, (char *)lc_data(r) + doff * (int64_t)es, r->strides,
           (const char *)lc_data(t) + soff * (int64_t)es, t->strides, es);
  }
  *out = r;
  return LC_OK;
}

static lc_status roll_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_op_args a = *ctx->args;
  if (a.flags & LC_ARG_ALL) {
    int64_t nel = lc_shape_numel(ctx->in[0].ndim, ctx->in[0].shape);
    a.i[0] = mod_size(nel - mod_size(a.i[0], nel), nel);
  } else {
    for (int d = 0; d < a.ni; d++) {
      int64_t size = ctx->in[0].shape[d];
      a.i[d] = mod_size(size - mod_size(a.i[d], size), size);
    }
  }
  return self_adjoint(ctx, &lc_op_roll, g, &a, grad_in);
}

const lc_op_def lc_op_roll = {
    .name = "roll",
    .grad_fn_name = "RollBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .forward = roll_forward,
    .backward = roll_backward,
    .backward_graph = roll_backward,
};

/* ---------------------------------------------------------------- rot90 */

/* args.i = {k, dim0, dim1}: k any int64 (taken modulo 4, so -1 is 3), the dims negative from
 * the end. k = 1 rotates from dim1 towards dim0: flip(dim1) then transpose(dim0, dim1), as
 * PyTorch; k = 2 flips both; k = 3 is flip(dim0) then the transpose. */
static lc_status rot90_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                               const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  const lc_tensor *t = in[0];
  if (args->ni != 3)
    return lc_set_error(LC_EARG, "rot90: expected 2 rotation dims, got %d", args->ni - 1);
  if (t->ndim < 2)
    return lc_set_error(LC_ESHAPE, "rot90: expected a tensor with at least 2 dims, got %d",
                        t->ndim);
  int d0, d1;
  lc_status st = lc_wrap_dim64(args->i[1], t->ndim, "rot90", &d0);
  if (!st) st = lc_wrap_dim64(args->i[2], t->ndim, "rot90", &d1);
  if (st) return st;
  if (d0 == d1)
    return lc_set_error(LC_EARG, "rot90: the rotation dims must differ, got dim " LC_POS_D " twice",
                        d0);
  int k = (int)mod_size(args->i[0], 4);
  int nd = t->ndim;
  int64_t shape[LC_MAX_DIMS], sstr[LC_MAX_DIMS];
  memcpy(shape, t->shape, (size_t)nd * sizeof(int64_t));
  memcpy(sstr, t->strides, (size_t)nd * sizeof(int64_t));
  if (!t->numel || k == 0) {
    if (k % 2) { /* an empty result of the rotated shape */
      shape[d0] = t->shape[d1];
      shape[d1] = t->shape[d0];
    }
    return k % 2 ? lc_tensor_new(nd, shape, t->dtype, out)
                 : move_new(t, nd, shape, lc_data(t), sstr, out);
  }
  bool flip[LC_MAX_DIMS] = {false};
  flip[d0] = k == 2 || k == 3;
  flip[d1] = k == 2 || k == 1;
  const char *src = reversed_view(t, flip, sstr);
  if (k != 2) { /* the transpose: output dim d0 walks input dim d1 and the other way round */
    int64_t s = sstr[d0];
    sstr[d0] = sstr[d1];
    sstr[d1] = s;
    shape[d0] = t->shape[d1];
    shape[d1] = t->shape[d0];
  }
  return move_new(t, nd, shape, src, sstr, out);
}

static lc_status rot90_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_op_args a = *ctx->args;
  a.i[0] = (4 - mod_size(a.i[0], 4)) % 4;
  return self_adjoint(ctx, &lc_op_rot90, g, &a, grad_in);
}

const lc_op_def lc_op_rot90 = {
    .name = "rot90",
    .grad_fn_name = "Rot90Backward",
    .n_inputs = 1,
    .n_outputs = 1,
    .forward = rot90_forward,
    .backward = rot90_backward,
    .backward_graph = rot90_backward,
};

/* ---------------------------------------------------------------- repeat_interleave */

/* The layout both directions share: the tensor seen as {outer, n, inner} around the repeated
 * dim (the flattened tensor: {1, numel, 1}), and the prefix sums of the repeats: element j of
 * that dim becomes positions off[j] .. off[j + 1] - 1 of the result's dim (off[n] = total);
 * with one count for all, off[j] is j * rep (ri_off). */
typedef struct ri_layout {
  int64_t outer, n, inner, total;
  int dim;      /* the repeated dim of the (unflattened) tensor; -1 when flattened */
  int64_t *off; /* n + 1 entries, malloc'ed; NULL when every element repeats rep times */
  int64_t rep;
} ri_layout;

static lc_status negative_repeats(const char *fn, const lc_tensor *reps, int64_t j, int64_t r) {
  if (reps->ndim == 0)
    return lc_set_error(LC_EARG, "%s: repeats must be non-negative, got %lld", fn, (long long)r);
  return lc_set_error(LC_EARG, "%s: repeats must be non-negative, got repeats[" LC_POS_I "] = %lld",
                      fn, (long long)j, (long long)r);
}

/* Checks the repeats (an int64 or int32 tensor, 0-dim or 1-D with one value or one per
 * element of the dim, none negative) and builds the layout of t (the input; for the segment
 * sum, n comes from args->i[1] instead of t). */
static lc_status ri_layout_of(const char *fn, const lc_tensor *t, const lc_tensor *reps,
                              const lc_op_args *args, bool adjoint, ri_layout *l) {
  memset(l, 0, sizeof *l);
  if (reps->dtype != LC_INT64 && reps->dtype != LC_INT32)
    return lc_set_error(LC_EDTYPE, "%s: repeats must be an int64 or int32 tensor, got %s", fn,
                        lc_dtype_name(reps->dtype));
  if (reps->ndim > 1)
    return lc_set_error(LC_ESHAPE, "%s: repeats must be a 0-dim or 1-D tensor, got %d dims", fn,
                        reps->ndim);
  if (args->flags & LC_ARG_ALL) {
    if (adjoint && t->ndim != 1)
      return lc_set_error(LC_ESHAPE, "%s: expected a 1-D gradient, got %d dims", fn, t->ndim);
    l->dim = -1;
    l->outer = l->inner = 1;
    l->n = adjoint ? args->i[1] : t->numel;
  } else {
    if (t->ndim == 0)
      return lc_set_error(LC_ESHAPE,
                          "%s: a 0-dim tensor has no dim to repeat along (leave dim out to "
                          "repeat the flattened tensor)",
                          fn);
    lc_status st = lc_wrap_dim64(args->i[0], t->ndim, fn, &l->dim);
    if (st) return st;
    l->outer = l->inner = 1;
    for (int d = 0; d < l->dim; d++)
      l->outer *= t->shape[d];
    for (int d = l->dim + 1; d < t->ndim; d++)
      l->inner *= t->shape[d];
    l->n = adjoint ? args->i[1] : t->shape[l->dim];
  }
  if (l->n < 0) return lc_set_error(LC_EARG, "%s: negative size %lld", fn, (long long)l->n);
  int64_t nr = reps->numel;
  if (nr != 1 && nr != l->n) {
    if (l->dim < 0)
      return lc_set_error(LC_ESHAPE,
                          "%s: repeats must hold one value or one per element of the flattened "
                          "input (%lld), got %lld",
                          fn, (long long)l->n, (long long)nr);
    return lc_set_error(LC_ESHAPE,
                        "%s: repeats must hold one value or one per element of dim " LC_POS_D
                        " (%lld), got %lld",
                        fn, l->dim, (long long)l->n, (long long)nr);
  }
  const char *rp = lc_data(reps);
  if (nr == 1) { /* one count for every element: offsets by multiplication, no table */
    int64_t r = lc_load_i64(rp, reps->dtype, 0);
    if (r < 0 && l->n > 0) return negative_repeats(fn, reps, 0, r);
    l->rep = r;
    if (lc_mul_overflows(l->n, r, &l->total))
      return lc_set_error(LC_ESHAPE, "%s: the repeated size overflows", fn);
    return LC_OK;
  }
  size_t bytes = ((size_t)l->n + 1) * sizeof(int64_t); /* n < 2^59: no overflow */
  if (!(l->off = malloc(bytes))) return lc_error_oom(bytes);
  int64_t rs = reps->strides[0], acc = 0;
  bool neg = false, over = false;
  l->off[0] = 0;
  if (reps->dtype == LC_INT64) {
    const int64_t *v = (const int64_t *)rp;
    for (int64_t j = 0; j < l->n; j++) {
      neg |= v[j * rs] < 0;
      over |= lc_add_overflows(acc, v[j * rs], &acc);
      l->off[j + 1] = acc;
    }
  } else {
    const int32_t *v = (const int32_t *)rp;
    for (int64_t j = 0; j < l->n; j++) {
      neg |= v[j * rs] < 0;
      over |= lc_add_overflows(acc, v[j * rs], &acc);
      l->off[j + 1] = acc;
    }
  }
  if (neg || over) {
    free(l->off);
    l->off = NULL;
    if (!neg) return lc_set_error(LC_ESHAPE, "%s: the repeated size overflows", fn);
    for (int64_t j = 0;; j++) { /* the first negative one, for the message */
      int64_t r = lc_load_i64(rp, reps->dtype, j * rs);
      if (r < 0) return negative_repeats(fn, reps, j, r);
    }
  }
  l->total = acc;
  return LC_OK;
}

static inline int64_t ri_off(const ri_layout *l, int64_t j) {
  return l->off ? l->off[j] : j * l->rep;
}

typedef struct ri_ctx {
  const ri_layout *l;
  const char *src;
  char *dst;
  size_t es;
} ri_ctx;

/* Items q = (o, j) in [begin, end) are consecutive in the output too (position o * total +
 * off[j] of the dim, and off[n] = total), so d_ just advances: no division per item. */
#define RI_LOOP(T)                                                                                 \
  do {                                                                                             \
    const int64_t n_ = l->n, in_ = l->inner;                                                       \
    int64_t j = begin % n_;                                                                        \
    const T *restrict s_ = (const T *)c->src + begin * in_;                                        \
    T *restrict d_ = (T *)c->dst + ((begin / n_) * l->total + ri_off(l, j)) * in_;                 \
    for (int64_t q = begin; q < end; q++) {                                                        \
      const int64_t cnt = ri_off(l, j + 1) - ri_off(l, j);                                         \
      if (in_ == 1) {                                                                              \
        const T v_ = s_[0];                                                                        \
        for (int64_t r = 0; r < cnt; r++)                                                          \
          d_[r] = v_;                                                                              \
      } else {                                                                                     \
        for (int64_t r = 0; r < cnt; r++)                                                          \
          memcpy(d_ + r * in_, s_, (size_t)in_ * sizeof(T));                                       \
      }                                                                                            \
      s_ += in_;                                                                                   \
      d_ += cnt * in_;                                                                             \
      if (++j == n_) j = 0;                                                                        \
    }                                                                                              \
  } while (0)

static void ri_rows(void *ctx, int64_t begin, int64_t end) {
  const ri_ctx *c = ctx;
  const ri_layout *l = c->l;
  switch (c->es) {
  case 8: RI_LOOP(uint64_t); break;
  case 4: RI_LOOP(uint32_t); break;
  default: RI_LOOP(uint8_t); break;
  }
}

/* The output shape: t's with the repeated dim's size total (flattened: {total}). */
static int ri_shape(const lc_tensor *t, const ri_layout *l, int64_t size, int64_t *shape) {
  if (l->dim < 0) {
    shape[0] = size;
    return 1;
  }
  memcpy(shape, t->shape, (size_t)t->ndim * sizeof(int64_t));
  shape[l->dim] = size;
  return t->ndim;
}

/* args: i[0] = dim, or LC_ARG_ALL (the flattened tensor). in[1]: the repeats. */
static lc_status ri_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  const lc_tensor *t = in[0];
  ri_layout l;
  lc_status st = ri_layout_of("repeat_interleave", t, in[1], args, false, &l);
  if (st) return st;
  int64_t shape[LC_MAX_DIMS];
  int nd = ri_shape(t, &l, l.total, shape);
  lc_tensor *r = NULL, *hold = NULL;
  const lc_tensor *d = NULL;
  st = lc_tensor_new(nd, shape, t->dtype, &r);
  if (!st && r->numel) st = dense(t, t->dtype, &hold, &d);
  if (!st && r->numel) {
    ri_ctx c = {.l = &l, .src = lc_data(d), .dst = lc_data(r), .es = lc_dtype_size(t->dtype)};
    int64_t items = l.outer * l.n;
    lc_parallel_for(items, r->numel / items + 1, ri_rows, &c);
  }
  lc_release(hold);
  free(l.off);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

static lc_status ri_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *reps = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &reps);
  if (st) return st;
  const lc_meta *m = &ctx->in[0];
  lc_op_args a = *ctx->args;
  if (a.flags & LC_ARG_ALL) {
    a.i[1] = lc_shape_numel(m->ndim, m->shape);
  } else {
    int d = (int)a.i[0];
    if ((st = lc_wrap_dim(&d, m->ndim, "RepeatInterleaveBackward"))) return st;
    a.i[1] = m->shape[d];
  }
  lc_tensor *in[2] = {(lc_tensor *)g, reps}, *s = NULL;
  st = ctx->run(&lc_op_repeat_interleave_backward, 2, in, &a, &s);
  if (st) return st;
  if (!(a.flags & LC_ARG_ALL) || same_shape(s, m->ndim, m->shape)) {
    grad_in[0] = s;
    return LC_OK;
  }
  /* the flattened form: the segment sum is 1-D, the input had its own shape */
  lc_op_args v = {.ni = m->ndim};
  memcpy(v.i, m->shape, (size_t)m->ndim * sizeof(int64_t));
  st = ctx->run(&lc_op_view, 1, &s, &v, &grad_in[0]);
  lc_release(s);
  return st;
}

const lc_op_def lc_op_repeat_interleave = {
    .name = "repeat_interleave",
    .grad_fn_name = "RepeatInterleaveBackward",
    .n_inputs = 2,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = ri_forward,
    .backward = ri_backward,
    .backward_graph = ri_backward,
};

/* ---------------------------------------------------------------- the segment sum */

typedef struct ss_ctx {
  const ri_layout *l;
  const char *src;
  char *dst;
} ss_ctx;

/* Item q = (o, j): the sum of the positions element j was repeated to. */
#define SS_LOOP(T, SUF)                                                                            \
  static void ss_rows_##SUF(void *ctx, int64_t begin, int64_t end) {                               \
    const ss_ctx *c = ctx;                                                                         \
    const ri_layout *l = c->l;                                                                     \
    const int64_t n_ = l->n, in_ = l->inner;                                                       \
    int64_t j = begin % n_;                                                                        \
    const T *restrict s_ = (const T *)c->src + ((begin / n_) * l->total + ri_off(l, j)) * in_;     \
    T *restrict d_ = (T *)c->dst + begin * in_;                                                    \
    for (int64_t q = begin; q < end; q++) {                                                        \
      const int64_t cnt = ri_off(l, j + 1) - ri_off(l, j);                                         \
      if (in_ == 1) {                                                                              \
        T acc = 0;                                                                                 \
        for (int64_t r = 0; r < cnt; r++)                                                          \
          acc += s_[r];                                                                            \
        d_[0] = acc;                                                                               \
      } else {                                                                                     \
        for (int64_t x = 0; x < in_; x++)                                                          \
          d_[x] = 0;                                                                               \
        for (int64_t r = 0; r < cnt; r++)                                                          \
          for (int64_t x = 0; x < in_; x++)                                                        \
            d_[x] += s_[r * in_ + x];                                                              \
      }                                                                                            \
      s_ += cnt * in_;                                                                             \
      d_ += in_;                                                                                   \
      if (++j == n_) j = 0;                                                                        \
    }                                                                                              \
  }
SS_LOOP(float, f32)
SS_LOOP(double, f64)

/* in = {g, repeats}; args as repeat_interleave's, with i[1] = the size n of the repeated dim
 * of repeat_interleave's input (the result's size there; flattened: its numel). g's size along
 * the dim must be the repeats' total. */
static lc_status ss_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  const char *fn = "repeat_interleave_backward";
  const lc_tensor *g = in[0];
  lc_status st = need_float_dtype(fn, "gradient", g->dtype);
  if (st) return st;
  ri_layout l;
  if ((st = ri_layout_of(fn, g, in[1], args, true, &l))) return st;
  int64_t have = l.dim < 0 ? g->numel : g->shape[l.dim];
  if (have != l.total) {
    free(l.off);
    return lc_set_error(LC_ESHAPE,
                        "%s: the gradient has %lld positions along the dim, the "
                        "repeats add up to %lld",
                        fn, (long long)have, (long long)l.total);
  }
  int64_t shape[LC_MAX_DIMS];
  int nd = ri_shape(g, &l, l.n, shape);
  lc_tensor *r = NULL, *hold = NULL;
  const lc_tensor *d = NULL;
  st = lc_tensor_new(nd, shape, g->dtype, &r);
  if (!st && r->numel) st = dense(g, g->dtype, &hold, &d);
  if (!st && r->numel) {
    ss_ctx c = {.l = &l, .src = lc_data(d), .dst = lc_data(r)};
    int64_t items = l.outer * l.n;
    lc_parallel_for(items, g->numel / items + 1, g->dtype == LC_FLOAT32 ? ss_rows_f32 : ss_rows_f64,
                    &c);
  }
  lc_release(hold);
  free(l.off);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

static lc_status ss_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *reps = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &reps);
  if (st) return st;
  lc_tensor *in[2] = {(lc_tensor *)g, reps};
  return ctx->run(&lc_op_repeat_interleave, 2, in, ctx->args, &grad_in[0]);
}

const lc_op_def lc_op_repeat_interleave_backward = {
    .name = "repeat_interleave_backward",
    .grad_fn_name = "RepeatInterleaveBackwardBackward",
    .n_inputs = 2,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = ss_forward,
    .backward = ss_backward,
    .backward_graph = ss_backward,
};
