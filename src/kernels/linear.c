/* linear.c - the linear family's ops: the fused linear op y = x W^T + b, as nn.Linear and
 * F.linear run it, and bilinear (F.bilinear, nn.Bilinear) at the end of the file.
 *
 * Linear is one op rather than transpose + matmul + add: forward is one GEMM into a result
 * pre-filled with the bias rows; backward computes grad_W = g^T x straight into W's {out, in}
 * layout and grad_x = g W, both contiguous, so no transposed gradient is copied when it is
 * accumulated into W.grad, and grad_b is a column sum of g. Inputs: x {..., in}, W {out, in} and
 * optionally b {out}; all of one float dtype. Leading dims of x are flattened into the GEMM's rows.
 */
#include "linear.h"
#include "gemm.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <stdio.h>
#include <string.h>

static const char *linear_shape_error(const lc_tensor *x, const lc_tensor *w,
                                      const lc_tensor *b, char *buf, size_t len) {
  char sx[128], sw[128];
  lc_shape_str(x->ndim, x->shape, sx, sizeof sx);
  lc_shape_str(w->ndim, w->shape, sw, sizeof sw);
  if (w->ndim != 2)
    snprintf(buf, len, "linear: weight must be 2-D {out_features, in_features}, got shape %s", sw);
  else if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
    snprintf(buf, len,
             "linear: input shape %s does not match weight shape %s (expected the input's last "
             "dimension to be %lld)",
             sx, sw, (long long)w->shape[1]);
  else if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
    char sb[128];
    lc_shape_str(b->ndim, b->shape, sb, sizeof sb);
    snprintf(buf, len, "linear: bias must have shape {%lld}, got %s", (long long)w->shape[0], sb);
  } else
    return NULL;
  return buf;
}

lc_status lc_k_linear_check(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b) {
  char msg[512];
  if (linear_shape_error(x, w, b, msg, sizeof msg)) return lc_set_error(LC_ESHAPE, "%s", msg);
  lc_dtype dt = x->dtype;
  if (!(is_float(dt) || lc_dtype_is_half(dt)) || w->dtype != dt || (b && b->dtype != dt))
    return lc_set_error(LC_EDTYPE,
                        "linear: expected input, weight and bias of one float dtype, got %s, %s "
                        "and %s",
                        lc_dtype_name(x->dtype), lc_dtype_name(w->dtype),
                        b ? lc_dtype_name(b->dtype) : "no bias");
  return LC_OK;
}

static lc_status linear_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)args;
  if (n != 2 && n != 3) return lc_set_error(LC_EARG, "linear: expected 2 or 3 inputs, got %d", n);
  const lc_tensor *b = n == 3 ? in[2] : NULL;
  lc_status st = lc_k_linear_check(in[0], in[1], b);
  if (st) return st;
  lc_tensor *x = NULL, *w = NULL, *y = NULL;
  if ((st = lc_k_dense(in[0], &x)) || (st = lc_k_dense(in[1], &w))) goto done;
  int64_t shape[LC_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  int64_t k = w->shape[1], nout = w->shape[0];
  shape[x->ndim - 1] = nout;
  if ((st = lc_empty(x->ndim, shape, x->dtype, &y))) goto done;
  int64_t m = k ? lc_numel(x) / k : lc_numel(y) / (nout ? nout : 1);
  if (m > 0 && nout > 0) {
    lc_tensor *bd = NULL;
    if (b && (st = lc_k_dense(b, &bd))) goto done;
    if (bd) /* y's rows start as the bias, then the GEMM adds x W^T */
      lk_gemm_bias(x->dtype, false, true, m, nout, k, lc_data(x), k, lc_data(w), k, lc_data(bd),
                   lc_data(y), nout);
    else
      lk_gemm(x->dtype, false, true, m, nout, k, 1.0, lc_data(x), k, lc_data(w), k, 0.0, lc_data(y),
              nout);
    lc_release(bd);
  }
done:
  lc_release(x);
  lc_release(w);
  if (st) {
    lc_release(y);
    return st;
  }
  out[0] = y;
  return LC_OK;
}

/* Column sums of g {m, nout} into o {nout}. */
#define DEF_COLUMN_SUMS(T, S)                                                                      \
  static void column_sums_##S(const T *restrict gp, int64_t m, int64_t nout, T *restrict o) {      \
    memset(o, 0, sizeof(T) * (size_t)nout);                                                        \
    for (int64_t i = 0; i < m; i++)                                                                \
      for (int64_t j = 0; j < nout; j++)                                                           \
        o[j] += gp[i * nout + j];                                                                  \
  }
DEF_COLUMN_SUMS(float, f32)
DEF_COLUMN_SUMS(double, f64)

static void column_sums(const lc_tensor *g, int64_t m, int64_t nout, lc_tensor *gb) {
  if (g->dtype == LC_FLOAT32)
    column_sums_f32(lc_data(g), m, nout, lc_data(gb));
  else
    column_sums_f64(lc_data(g), m, nout, lc_data(gb));
}

/* create_graph: x (..., k), W (n, k): grad_x = g W, grad_W = g2^T x2 with the leading dims
 * flattened (g2: m x n, x2: m x k), grad_b = g summed to (n). */
static lc_status linear_backward_graph(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                       lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *w = lc_gb_saved(&b, 1);
  if (b.st) return lc_gb_end(&b, grad_in);
  const int64_t n = w->shape[0], k = w->shape[1];
  if (ctx->needs_grad[0]) lc_gb_grad(&b, 0, lc_gb_matmul(&b, grad_out, w), grad_in);
  if (ctx->needs_grad[1]) {
    int64_t gs[2] = {n ? lc_numel(grad_out) / n : 0, n}, xs[2] = {gs[0], k};
    lc_tensor *g2 = lc_gb_reshape(&b, grad_out, 2, gs), *x2 = lc_gb_reshape(&b, x, 2, xs);
    lc_gb_grad(&b, 1, lc_gb_matmul(&b, lc_gb_mT(&b, g2), x2), grad_in);
  }
  if (ctx->n_inputs == 3 && ctx->needs_grad[2]) lc_gb_grad(&b, 2, grad_out, grad_in);
  return lc_gb_end(&b, grad_in);
}

static lc_status linear_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                 lc_tensor **grad_in) {
  for (int i = 0; i < ctx->n_inputs; i++) grad_in[i] = NULL;
  lc_tensor *xs = NULL, *ws = NULL, *x = NULL, *w = NULL, *g = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &xs);
  if (!st) st = lc_ctx_saved(ctx, 1, &ws);
  if (st) return st;
  if ((st = lc_k_dense(xs, &x)) || (st = lc_k_dense(ws, &w)) || (st = lc_k_dense(grad_out, &g))) goto fail;
  int64_t k = w->shape[1], nout = w->shape[0];
  int64_t m = nout ? lc_numel(g) / nout : 0;
  if (ctx->needs_grad[0]) { /* grad_x = g W: {m, k} */
    if ((st = lc_zeros(x->ndim, x->shape, x->dtype, &grad_in[0]))) goto fail;
    if (m > 0 && k > 0 && nout > 0)
      lk_gemm(x->dtype, false, false, m, k, nout, 1.0, lc_data(g), nout, lc_data(w), k, 0.0,
              lc_data(grad_in[0]), k);
  }
  bool full = m > 0 && k > 0 && nout > 0; /* the GEMM writes every element (beta 0) */
  if (ctx->needs_grad[1]) { /* grad_W = g^T x: {nout, k}, into the leaf's buffer if it has one */
    lc_tensor *dest = ctx->grad_dest ? ctx->grad_dest[1] : NULL;
    if (dest) {
      grad_in[1] = lc_retain(dest);
      if (!full) memset(lc_data(dest), 0, (size_t)lc_numel(dest) * lc_dtype_size(dest->dtype));
    } else if ((st = (full ? lc_empty : lc_zeros)(2, w->shape, w->dtype, &grad_in[1]))) {
      goto fail;
    }
    if (full)
      lk_gemm(x->dtype, true, false, nout, k, m, 1.0, lc_data(g), nout, lc_data(x), k, 0.0,
              lc_data(grad_in[1]), k);
  }
  if (ctx->n_inputs == 3 && ctx->needs_grad[2]) {
    lc_tensor *dest = ctx->grad_dest ? ctx->grad_dest[2] : NULL;
    if (dest)
      grad_in[2] = lc_retain(dest);
    else if ((st = lc_empty(1, &nout, g->dtype, &grad_in[2])))
      goto fail;
    column_sums(g, m, nout, grad_in[2]);
  }
  lc_release(x);
  lc_release(w);
  lc_release(g);
  return LC_OK;
fail:
  drop_grads(ctx, grad_in);
  lc_release(x);
  lc_release(w);
  lc_release(g);
  return st;
}

const lc_op_def lc_op_linear = {.name = "linear",
                                .grad_fn_name = "LinearBackward",
                                .n_inputs = -1,
                                .n_outputs = 1,
                                .save = LC_SAVE_IN(0) | LC_SAVE_IN(1),
                                .forward = linear_forward,
                                .backward = linear_backward,
                                .backward_graph = linear_backward_graph};

/* ------------------------------------------------------------------ bilinear */

/* With W seen as the matrix {O*I, J}: U = x2 W^T is {B, O*I}, U[b, o, i] = sum_j W[o,i,j]
 * x2[b,j], so y[b, o] = sum_i U[b, o, i] x1[b, i] (+ bias). Backward, with V[b, o, i] =
 * g[b, o] x1[b, i]: dx1[b, i] = sum_o g[b, o] U[b, o, i], dx2 = V W, dW = V^T x2, db = sum_b g.
 * Rows go in chunks so the {rows, O*I} scratch stays small. */
typedef struct bl_dims {
  int64_t nb, ni, nj, no; /* batch rows, in1, in2, out */
} bl_dims;

#define BL_SCRATCH ((int64_t)1 << 18) /* elements of U / V per chunk */

static void gemm(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *a,
                 int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  lk_gemm(dt, ta, tb, M, N, K, 1.0, a, lda, b, ldb, beta, c, ldc);
}

/* U (rows x O*I) = x2[r0 .. r0+rows) W^T; zeros when J = 0 (BLAS needs K >= 1). */
static void bl_u(lc_dtype dt, const bl_dims *d, int64_t r0, int64_t rows, const char *x2,
                 const char *w, char *u) {
  size_t es = lc_dtype_size(dt);
  if (d->nj == 0) {
    memset(u, 0, (size_t)(rows * d->no * d->ni) * es);
    return;
  }
  gemm(dt, false, true, rows, d->no * d->ni, d->nj, x2 + (size_t)(r0 * d->nj) * es, d->nj, w, d->nj,
       0, u, d->no * d->ni);
}

#define BL_LOOPS(T, S)                                                                             \
  /* y[r, o] = bias[o] + sum_i U[r, o, i] x1[r, i] */                                              \
  static void bl_out_##S(const bl_dims *d, int64_t rows, const T *restrict u,                      \
                         const T *restrict x1, const T *restrict bias, T *restrict y) {            \
    for (int64_t r = 0; r < rows; r++)                                                             \
      for (int64_t o = 0; o < d->no; o++) {                                                        \
        const T *restrict ur = u + (r * d->no + o) * d->ni;                                        \
        const T *restrict xr = x1 + r * d->ni;                                                     \
        T s = bias ? bias[o] : (T)0;                                                               \
        for (int64_t i = 0; i < d->ni; i++)                                                        \
          s += ur[i] * xr[i];                                                                      \
        y[r * d->no + o] = s;                                                                      \
      }                                                                                            \
  }                                                                                                \
  /* dx1[r, i] = sum_o g[r, o] U[r, o, i] */                                                       \
  static void bl_dx1_##S(const bl_dims *d, int64_t rows, const T *restrict u, const T *restrict g, \
                         T *restrict dx1) {                                                        \
    for (int64_t r = 0; r < rows; r++) {                                                           \
      T *restrict dr = dx1 + r * d->ni;                                                            \
      for (int64_t i = 0; i < d->ni; i++)                                                          \
        dr[i] = 0;                                                                                 \
      for (int64_t o = 0; o < d->no; o++) {                                                        \
        const T go = g[r * d->no + o];                                                             \
        const T *restrict ur = u + (r * d->no + o) * d->ni;                                        \
        for (int64_t i = 0; i < d->ni; i++)                                                        \
          dr[i] += go * ur[i];                                                                     \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  /* V[r, o, i] = g[r, o] x1[r, i] */                                                              \
  static void bl_v_##S(const bl_dims *d, int64_t rows, const T *restrict g, const T *restrict x1,  \
                       T *restrict v) {                                                            \
    for (int64_t r = 0; r < rows; r++)                                                             \
      for (int64_t o = 0; o < d->no; o++) {                                                        \
        const T go = g[r * d->no + o];                                                             \
        T *restrict vr = v + (r * d->no + o) * d->ni;                                              \
        const T *restrict xr = x1 + r * d->ni;                                                     \
        for (int64_t i = 0; i < d->ni; i++)                                                        \
          vr[i] = go * xr[i];                                                                      \
      }                                                                                            \
  }                                                                                                \
  static void bl_db_##S(const bl_dims *d, int64_t rows, const T *restrict g, T *restrict db) {     \
    for (int64_t r = 0; r < rows; r++)                                                             \
      for (int64_t o = 0; o < d->no; o++)                                                          \
        db[o] += g[r * d->no + o];                                                                 \
  }

BL_LOOPS(float, f32)
BL_LOOPS(double, f64)

static int64_t bl_chunk(const bl_dims *d) {
  int64_t oi = d->no * d->ni;
  int64_t ch = oi > 0 ? BL_SCRATCH / oi : d->nb;
  if (ch < 1) ch = 1;
  return ch < d->nb ? ch : (d->nb > 0 ? d->nb : 1);
}

static lc_status bl_check(const char *fn, int n, lc_tensor *const *in, bl_dims *d) {
  if (n != 3 && n != 4)
    return lc_set_error(LC_EARG, "%s: expected 3 or 4 inputs (x1, x2, weight[, bias]), got %d", fn,
                        n);
  const lc_tensor *x1 = in[0], *x2 = in[1], *w = in[2], *b = n == 4 ? in[3] : NULL;
  static const char *const names[] = {"input1", "input2", "weight", "bias"};
  for (int k = 0; k < n; k++) {
    lc_status st = need_float_dtype(fn, names[k], in[k]->dtype);
    if (st) return st;
    if (in[k]->dtype != x1->dtype)
      return lc_set_error(LC_EDTYPE, "%s: expected %s of dtype %s (as input1), got %s", fn,
                          names[k], lc_dtype_name(x1->dtype), lc_dtype_name(in[k]->dtype));
  }
  char s1[256], s2[256];
  if (w->ndim != 3)
    return lc_set_error(LC_ESHAPE, "%s: weight must be 3-D {out, in1, in2}, got shape %s", fn,
                        lc_shape_str(w->ndim, w->shape, s1, sizeof s1));
  if (x1->ndim < 1 || x1->shape[x1->ndim - 1] != w->shape[1])
    return lc_set_error(LC_ESHAPE,
                        "%s: expected input1 with %lld features (last dimension) to match "
                        "weight {%lld, %lld, %lld}, got shape %s",
                        fn, (long long)w->shape[1], (long long)w->shape[0], (long long)w->shape[1],
                        (long long)w->shape[2], lc_shape_str(x1->ndim, x1->shape, s1, sizeof s1));
  if (x2->ndim < 1 || x2->shape[x2->ndim - 1] != w->shape[2])
    return lc_set_error(LC_ESHAPE,
                        "%s: expected input2 with %lld features (last dimension) to match "
                        "weight {%lld, %lld, %lld}, got shape %s",
                        fn, (long long)w->shape[2], (long long)w->shape[0], (long long)w->shape[1],
                        (long long)w->shape[2], lc_shape_str(x2->ndim, x2->shape, s1, sizeof s1));
  bool lead = x1->ndim == x2->ndim;
  for (int k = 0; lead && k < x1->ndim - 1; k++)
    lead = x1->shape[k] == x2->shape[k];
  if (!lead)
    return lc_set_error(LC_ESHAPE,
                        "%s: input1 and input2 must have the same leading dims, got shapes %s "
                        "and %s",
                        fn, lc_shape_str(x1->ndim, x1->shape, s1, sizeof s1),
                        lc_shape_str(x2->ndim, x2->shape, s2, sizeof s2));
  if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
    return lc_set_error(LC_ESHAPE, "%s: bias must have shape {%lld}, got %s", fn,
                        (long long)w->shape[0], lc_shape_str(b->ndim, b->shape, s1, sizeof s1));
  d->no = w->shape[0];
  d->ni = w->shape[1];
  d->nj = w->shape[2];
  d->nb = 1;
  for (int k = 0; k < x1->ndim - 1; k++)
    d->nb *= x1->shape[k];
  return LC_OK;
}

static lc_status bl_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  bl_dims d;
  lc_status st = bl_check(op->name, n, in, &d);
  if (st) return st;
  const lc_tensor *x1 = in[0];
  const lc_dtype dt = x1->dtype;
  const size_t es = lc_dtype_size(dt);
  int64_t shape[LC_MAX_DIMS];
  memcpy(shape, x1->shape, (size_t)x1->ndim * sizeof *shape);
  shape[x1->ndim - 1] = d.no;
  lc_tensor *hold[4] = {NULL}, *y = NULL;
  const lc_tensor *c[4] = {NULL};
  char *u = NULL;
  for (int k = 0; k < n && !st; k++)
    st = dense(in[k], dt, &hold[k], &c[k]);
  if (!st) st = lc_tensor_new(x1->ndim, shape, dt, &y);
  const int64_t ch = bl_chunk(&d);
  if (!st && d.nb > 0 && d.no > 0) {
    u = lc_aligned_alloc((size_t)(ch * d.no * d.ni) * es + LC_ALIGN);
    if (!u) st = lc_error_oom((size_t)(ch * d.no * d.ni) * es);
  }
  if (!st && d.nb > 0 && d.no > 0) {
    const char *px1 = lc_data(c[0]), *px2 = lc_data(c[1]), *pw = lc_data(c[2]);
    const char *pb = n == 4 ? lc_data(c[3]) : NULL;
    char *py = lc_data(y);
    for (int64_t r0 = 0; r0 < d.nb; r0 += ch) {
      int64_t rows = d.nb - r0 < ch ? d.nb - r0 : ch;
      bl_u(dt, &d, r0, rows, px2, pw, u);
      if (dt == LC_FLOAT32)
        bl_out_f32(&d, rows, (const float *)u, (const float *)px1 + r0 * d.ni, (const float *)pb,
                   (float *)py + r0 * d.no);
      else
        bl_out_f64(&d, rows, (const double *)u, (const double *)px1 + r0 * d.ni, (const double *)pb,
                   (double *)py + r0 * d.no);
    }
  }
  lc_aligned_free(u);
  for (int k = 0; k < n; k++)
    lc_release(hold[k]);
  if (st) {
    lc_release(y);
    return st;
  }
  *out = y;
  return LC_OK;
}

static lc_status bl_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  const int n = ctx->n_inputs;
  bool any = false;
  for (int k = 0; k < n; k++)
    any = any || ctx->needs_grad[k];
  if (!any) return LC_OK;
  if (!same_shape(g, ctx->out->ndim, ctx->out->shape)) return grad_shape_error(ctx, g);
  lc_tensor *in[4] = {NULL};
  lc_status st = LC_OK;
  for (int k = 0; k < n && !st; k++)
    st = lc_ctx_saved(ctx, k, &in[k]);
  if (st) return st;
  bl_dims d;
  if ((st = bl_check(ctx->op->grad_fn_name, n, in, &d))) return st;
  const lc_dtype dt = in[0]->dtype;
  const size_t es = lc_dtype_size(dt);
  lc_tensor *hold[5] = {NULL}, *gr[4] = {NULL};
  const lc_tensor *c[5] = {NULL};
  char *buf = NULL;
  for (int k = 0; k < 3 && !st; k++)
    st = dense(in[k], dt, &hold[k], &c[k]);
  if (!st) st = dense(g, dt, &hold[4], &c[4]);
  for (int k = 0; k < n && !st; k++)
    if (ctx->needs_grad[k]) st = lc_zeros(in[k]->ndim, in[k]->shape, dt, &gr[k]);
  const int64_t ch = bl_chunk(&d);
  if (!st && d.nb > 0 && d.no * d.ni > 0) {
    buf = lc_aligned_alloc((size_t)(ch * d.no * d.ni) * es + LC_ALIGN);
    if (!buf) st = lc_error_oom((size_t)(ch * d.no * d.ni) * es);
  }
  if (!st && d.nb > 0) {
    const char *px1 = lc_data(c[0]), *px2 = lc_data(c[1]), *pw = lc_data(c[2]);
    const char *pg = lc_data(c[4]);
    const bool f32 = dt == LC_FLOAT32;
    for (int64_t r0 = 0; r0 < d.nb; r0 += ch) {
      int64_t rows = d.nb - r0 < ch ? d.nb - r0 : ch;
      const char *gch = pg + (size_t)(r0 * d.no) * es, *x1ch = px1 + (size_t)(r0 * d.ni) * es;
      if (gr[0] && buf) { /* dx1 from U (the buffer is then reused for V) */
        bl_u(dt, &d, r0, rows, px2, pw, buf);
        char *dx1 = (char *)lc_data(gr[0]) + (size_t)(r0 * d.ni) * es;
        if (f32)
          bl_dx1_f32(&d, rows, (const float *)buf, (const float *)gch, (float *)dx1);
        else
          bl_dx1_f64(&d, rows, (const double *)buf, (const double *)gch, (double *)dx1);
      }
      if ((gr[1] || gr[2]) && buf && d.nj > 0) {
        if (f32)
          bl_v_f32(&d, rows, (const float *)gch, (const float *)x1ch, (float *)buf);
        else
          bl_v_f64(&d, rows, (const double *)gch, (const double *)x1ch, (double *)buf);
        if (gr[1])
          gemm(dt, false, false, rows, d.nj, d.no * d.ni, buf, d.no * d.ni, pw, d.nj, 0,
               (char *)lc_data(gr[1]) + (size_t)(r0 * d.nj) * es, d.nj);
        if (gr[2])
          gemm(dt, true, false, d.no * d.ni, d.nj, rows, buf, d.no * d.ni,
               px2 + (size_t)(r0 * d.nj) * es, d.nj, 1.0, lc_data(gr[2]), d.nj);
      }
      if (n == 4 && gr[3]) {
        if (f32)
          bl_db_f32(&d, rows, (const float *)gch, (float *)lc_data(gr[3]));
        else
          bl_db_f64(&d, rows, (const double *)gch, (double *)lc_data(gr[3]));
      }
    }
  }
  lc_aligned_free(buf);
  for (int k = 0; k < 5; k++)
    lc_release(hold[k]);
  if (st) {
    for (int k = 0; k < n; k++)
      lc_release(gr[k]);
    return st;
  }
  for (int k = 0; k < n; k++)
    if (ctx->needs_grad[k]) grad_in[k] = gr[k];
  return LC_OK;
}

/* The same gradients as recorded matmuls (create_graph), rows flattened to N: with
 * T[n] = (g W)[n] viewed {I, J}, dx1 = T x2, dx2 = x1 T, dW = g^T (x1 outer x2), db = sum g. */
static lc_status bl_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x1 = lc_gb_saved(&b, 0), *x2 = lc_gb_saved(&b, 1), *w = lc_gb_saved(&b, 2);
  if (b.st) return lc_gb_end(&b, grad_in);
  const int64_t ni = w->shape[1], nj = w->shape[2], no = w->shape[0];
  const int64_t nr = ni > 0 ? x1->numel / ni : 0;
  int64_t sNO[2] = {nr, no}, sOIJ[2] = {no, ni * nj}, sNIJ[3] = {nr, ni, nj}, sNI1[3] = {nr, ni, 1},
          sN1J[3] = {nr, 1, nj}, sNIJf[2] = {nr, ni * nj};
  lc_tensor *g2 = lc_gb_reshape(&b, g, 2, sNO);
  lc_tensor *a1 = lc_gb_reshape(&b, x1, 3, sNI1), *a2 = lc_gb_reshape(&b, x2, 3, sN1J);
  if (ctx->needs_grad[0] || ctx->needs_grad[1]) {
    lc_tensor *t = lc_gb_reshape(&b, lc_gb_matmul(&b, g2, lc_gb_reshape(&b, w, 2, sOIJ)), 3, sNIJ);
    if (ctx->needs_grad[0]) {
      lc_tensor *d1 = lc_gb_matmul(&b, t, lc_gb_mT(&b, a2)); /* {N, I, 1} */
      lc_gb_grad(&b, 0, lc_gb_reshape(&b, d1, ctx->in[0].ndim, ctx->in[0].shape), grad_in);
    }
    if (ctx->needs_grad[1]) {
      lc_tensor *d2 = lc_gb_matmul(&b, lc_gb_mT(&b, a1), t); /* {N, 1, J} */
      lc_gb_grad(&b, 1, lc_gb_reshape(&b, d2, ctx->in[1].ndim, ctx->in[1].shape), grad_in);
    }
  }
  if (ctx->needs_grad[2]) {
    lc_tensor *outer = lc_gb_reshape(&b, lc_gb_bin(&b, LC_MUL, a1, a2), 2, sNIJf);
    lc_tensor *dw = lc_gb_matmul(&b, lc_gb_mT(&b, g2), outer);
    lc_gb_grad(&b, 2, lc_gb_reshape(&b, dw, 3, w->shape), grad_in);
  }
  if (ctx->n_inputs == 4 && ctx->needs_grad[3]) {
    bool red[2] = {true, false};
    lc_gb_grad(&b, 3, lc_gb_reshape(&b, lc_gb_sum_keep(&b, g2, red), 1, &no), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_bilinear = {.name = "bilinear",
                                  .grad_fn_name = "BilinearBackward",
                                  .n_inputs = -1,
                                  .n_outputs = 1,
                                  .save = LC_SAVE_ALL_INPUTS,
                                  .forward = bl_forward,
                                  .backward = bl_backward,
                                  .backward_graph = bl_backward_graph};
