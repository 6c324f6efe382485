/*
 * pad.c - lc_op_pad (torch.nn.functional.pad): constant, reflect, replicate and circular
 * padding, forward and backward side by side.
 *
 * Constant mode fills the output with the value and copies the input into the interior (a view
 * on each side, so negative pads crop and any dtype works). The other modes are gathers (negative
 * pads crop there too, as PyTorch's: reflect and replicate read the input at q - before mirrored
 * or clamped at its edges; circular wraps around the cropped dim): each
 * padded dim has an index map output position -> input position, and every output row (last
 * dim) reads one input row through the maps; backward is the matching scatter-add.
 */
#include "conv.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <stdlib.h>
#include <string.h>

typedef struct padplan {
  int ndim, np; /* np: padded dims (the last np) */
  lc_pad_mode mode;
  int64_t before[LC_MAX_DIMS], after[LC_MAX_DIMS]; /* per dim (0 for unpadded dims) */
  int64_t in_shape[LC_MAX_DIMS], out_shape[LC_MAX_DIMS];
  int64_t *map[LC_MAX_DIMS]; /* non-constant modes: output index -> input index */
} padplan;

static const char *const mode_names[LC_PAD_MODE_COUNT] = {"constant", "reflect", "replicate",
                                                          "circular"};

const char *lc_pad_mode_name(lc_pad_mode mode) {
  return (unsigned)mode < LC_PAD_MODE_COUNT ? mode_names[mode] : "?";
}

lc_status lc_pad_mode_from_name(const char *name, lc_pad_mode *out) {
  if (name && !strcmp(name, "zeros")) {
    *out = LC_PAD_CONSTANT;
    return LC_OK;
  }
  for (int m = 0; name && m < LC_PAD_MODE_COUNT; m++)
    if (!strcmp(name, mode_names[m])) {
      *out = (lc_pad_mode)m;
      return LC_OK;
    }
  return lc_set_error(LC_EARG,
                      "pad: unknown mode '%s' (expected constant, reflect, replicate or circular)",
                      name ? name : "(null)");
}

static void plan_free(padplan *p) {
  for (int d = 0; d < LC_MAX_DIMS; d++) {
    free(p->map[d]);
    p->map[d] = NULL;
  }
}

static lc_status pad_setup(const lc_meta *x, const lc_op_args *a, padplan *p) {
  memset(p, 0, sizeof *p);
  p->mode = (lc_pad_mode)((a->flags >> LC_PAD_MODE_SHIFT) & 0xf);
  const char *mn = lc_pad_mode_name(p->mode);
  char sx[256];
  if ((unsigned)p->mode >= LC_PAD_MODE_COUNT)
    return lc_set_error(LC_EARG, "pad: unknown mode %d", (int)p->mode);
  if (a->ni % 2 != 0)
    return lc_set_error(LC_EARG, "pad: the pad list must have an even length, got %d", a->ni);
  p->ndim = x->ndim;
  p->np = a->ni / 2;
  if (p->np > x->ndim)
    return lc_set_error(LC_EARG,
                        "pad: the pad list has %d entries, more than 2 per dim of a %d-D input",
                        a->ni, x->ndim);
  if (p->mode != LC_PAD_CONSTANT) {
    if (!is_float(x->dtype))
      return lc_set_error(LC_EDTYPE, "pad: %s mode expects a float32 or float64 input, got %s", mn,
                          lc_dtype_name(x->dtype));
    if (p->np > 3 || x->ndim < p->np + 1)
      return lc_set_error(LC_ESHAPE,
                          "pad: %s mode pads the last 1, 2 or 3 dims of an input with at least one "
                          "more dim, got %d pad entries for input shape %s",
                          mn, a->ni, lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
  }
  memcpy(p->in_shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  memcpy(p->out_shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  for (int k = 0; k < p->np; k++) {
    /* dims are named from the end (-1 is the last), which reads the same 0- and 1-based */
    int d = x->ndim - 1 - k, dn = -1 - k;
    int64_t b = a->i[2 * k], e = a->i[2 * k + 1], n = x->shape[d];
    p->before[d] = b, p->after[d] = e;
    int64_t o;
    if (lc_add_overflows(n, b, &o) || lc_add_overflows(o, e, &o))
      return lc_set_error(LC_ESHAPE,
                          "pad: dim %d of size %lld padded by (%lld, %lld) would get a size past "
                          "64 bits: input shape %s",
                          dn, (long long)n, (long long)b, (long long)e,
                          lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
    if (o < 0)
      return lc_set_error(LC_ESHAPE,
                          "pad: dim %d of size %lld padded by (%lld, %lld) would get the negative "
                          "size %lld: input shape %s",
                          dn, (long long)n, (long long)b, (long long)e, (long long)o,
                          lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
    p->out_shape[d] = o;
    if (p->mode == LC_PAD_CONSTANT || o == 0) continue;
    /* negative pads crop, as PyTorch's; circular wraps around the cropped dim */
    int64_t m = p->mode == LC_PAD_CIRCULAR ? n - (b < 0 ? -b : 0) - (e < 0 ? -e : 0) : n;
    if (m < 1)
      return lc_set_error(
          LC_ESHAPE, "pad: %s mode can not pad dim %d: it is empty%s, input shape %s", mn, dn,
          n > 0 ? " after cropping" : "", lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
    if (p->mode == LC_PAD_REFLECT && (b >= n || e >= n))
      return lc_set_error(LC_EARG,
                          "pad: reflect padding must be smaller than the dim it pads, got %lld "
                          "for dim %d of size %lld: input shape %s",
                          (long long)(b >= n ? b : e), dn, (long long)n,
                          lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
    if (p->mode == LC_PAD_CIRCULAR && (b > m || e > m))
      return lc_set_error(LC_EARG,
                          "pad: circular padding must be at most the size of the dim it pads "
                          "(after cropping), got %lld for dim %d of size %lld: input shape %s",
                          (long long)(b > m ? b : e), dn, (long long)m,
                          lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
  }
  if (p->mode == LC_PAD_CONSTANT) return LC_OK;
  for (int k = 0; k < p->np; k++) {
    int d = x->ndim - 1 - k;
    int64_t n = x->shape[d], o = p->out_shape[d];
    p->map[d] = malloc(sizeof(int64_t) * (size_t)(o > 0 ? o : 1));
    if (!p->map[d]) {
      plan_free(p);
      return lc_error_oom(sizeof(int64_t) * (size_t)o);
    }
    int64_t b = p->before[d], e = p->after[d];
    int64_t cl = b < 0 ? -b : 0, bl = b > 0 ? b : 0, m = n - cl - (e < 0 ? -e : 0);
    for (int64_t q = 0; q < o; q++) {
      int64_t i = q - b;
      if (p->mode == LC_PAD_REFLECT)
        i = i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
      else if (p->mode == LC_PAD_REPLICATE)
        i = i < 0 ? 0 : (i >= n ? n - 1 : i);
      else /* circular: the cropped dim [cl, cl + m) repeated */
        i = cl + (((q - bl) % m) + m) % m;
      p->map[d][q] = i;
    }
  }
  return LC_OK;
}

/* The interior of a constant pad: views of src (shape sshape) and dst over the overlap. */
static lc_status interior_views(const padplan *p, const lc_tensor *in_side,
                                const lc_tensor *out_side, lc_tensor **vin, lc_tensor **vout) {
  int64_t shape[LC_MAX_DIMS], oin = in_side->offset, oout = out_side->offset;
  for (int d = 0; d < p->ndim; d++) {
    int64_t b = p->before[d], e = p->after[d];
    int64_t skip_in = b < 0 ? -b : 0, skip_out = b > 0 ? b : 0;
    int64_t len = p->in_shape[d] - skip_in - (e < 0 ? -e : 0);
    if (len < 0) len = 0;
    shape[d] = len;
    oin += skip_in * in_side->strides[d];
    oout += skip_out * out_side->strides[d];
  }
  lc_status st = lc_tensor_view_of(in_side, p->ndim, shape, in_side->strides, oin, vin);
  if (st) return st;
  st = lc_tensor_view_of(out_side, p->ndim, shape, out_side->strides, oout, vout);
  if (st) {
    lc_release(*vin);
    *vin = NULL;
  }
  return st;
}

/* Non-constant modes: per output row (all dims but the last), the input row it reads. */
typedef struct gjob {
  const padplan *p;
  const char *x; /* contiguous input */
  char *y;       /* contiguous output */
  size_t esz;
  int64_t rows, in_last, out_last;
  int64_t in_strides[LC_MAX_DIMS];
  bool backward; /* y is the gradient read, x the gradient accumulated into */
} gjob;

static int64_t src_row_offset(const gjob *j, int64_t row) {
  const padplan *p = j->p;
  int64_t off = 0;
  for (int d = p->ndim - 2; d >= 0; d--) {
    int64_t n = p->out_shape[d], q = row % n;
    row /= n;
    off += (p->map[d] ? p->map[d][q] : q) * j->in_strides[d];
  }
  return off;
}

static void gather_rows(void *ctx, int64_t b, int64_t e) {
  const gjob *j = ctx;
  const int64_t *m = j->p->map[j->p->ndim - 1];
  for (int64_t r = b; r < e; r++) {
    const char *src = j->x + (size_t)src_row_offset(j, r) * j->esz;
    char *dst = j->y + (size_t)(r * j->out_last) * j->esz;
    if (!m) {
      memcpy(dst, src, (size_t)j->out_last * j->esz);
    } else if (j->esz == 4) {
      const uint32_t *s = (const uint32_t *)src;
      uint32_t *restrict o = (uint32_t *)dst;
      for (int64_t k = 0; k < j->out_last; k++)
        o[k] = s[m[k]];
    } else {
      const uint64_t *s = (const uint64_t *)src;
      uint64_t *restrict o = (uint64_t *)dst;
      for (int64_t k = 0; k < j->out_last; k++)
        o[k] = s[m[k]];
    }
  }
}

/* Backward: x (the input gradient, zeroed) += scatter of y (the output gradient). Serial: two
 * output rows may read the same input row. */
#define DEF_SCATTER_ROWS(T, S)                                                                     \
  static void scatter_rows_##S(const gjob *j) {                                                    \
    const int64_t *m = j->p->map[j->p->ndim - 1];                                                  \
    for (int64_t r = 0; r < j->rows; r++) {                                                        \
      T *d = (T *)j->x + src_row_offset(j, r);                                                     \
      const T *s = (const T *)j->y + r * j->out_last;                                              \
      for (int64_t k = 0; k < j->out_last; k++)                                                    \
        d[m ? m[k] : k] += s[k];                                                                   \
    }                                                                                              \
  }
DEF_SCATTER_ROWS(float, f32)
DEF_SCATTER_ROWS(double, f64)

static void scatter_rows(const gjob *j, lc_dtype dt) {
  if (dt == LC_FLOAT32)
    scatter_rows_f32(j);
  else
    scatter_rows_f64(j);
}

static void job_init(gjob *j, const padplan *p, size_t esz) {
  memset(j, 0, sizeof *j);
  j->p = p;
  j->esz = esz;
  lc_contiguous_strides(p->ndim, p->in_shape, j->in_strides);
  j->in_last = p->in_shape[p->ndim - 1];
  j->out_last = p->out_shape[p->ndim - 1];
  j->rows = j->out_last > 0 ? lc_shape_numel(p->ndim, p->out_shape) / j->out_last : 0;
}

static lc_status pad_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                             const lc_op_args *args, lc_tensor **out) {
  if (n != 1 || !in[0]) return lc_set_error(LC_EARG, "pad: expected 1 input tensor");
  const lc_tensor *x = in[0];
  lc_meta m;
  meta_of(x, &m);
  padplan p;
  lc_status st = pad_setup(&m, args, &p);
  if (st) return st;
  lc_tensor *y = NULL, *xc = NULL, *vi = NULL, *vo = NULL;
  if ((st = lc_tensor_new(x->ndim, p.out_shape, x->dtype, &y))) goto done;
  if (p.mode == LC_PAD_CONSTANT) {
    if ((st = lc_k_fill(y, args->f[0]))) goto done;
    if ((st = interior_views(&p, x, y, &vi, &vo))) goto done;
    if (vi->numel > 0) st = lc_k_copy(vo, vi);
  } else if (y->numel > 0) {
    if ((st = lc_k_dense(x, &xc))) goto done;
    gjob j;
    job_init(&j, &p, lc_dtype_size(x->dtype));
    j.x = lc_data(xc), j.y = lc_data(y);
    lc_parallel_for(j.rows, j.out_last + 8, gather_rows, &j);
  }
done:
  plan_free(&p);
  lc_release(xc);
  lc_release(vi);
  lc_release(vo);
  if (st) {
    lc_release(y);
    return st;
  }
  out[0] = y;
  return LC_OK;
}

/* The gradient of pad (args) at an input of meta m: the interior of g (constant), or each
 * output position added back onto the input position it copied (reflect, replicate, circular). */
static lc_status pad_grad(const lc_meta *m, const lc_op_args *args, const lc_tensor *grad_out,
                          lc_tensor **out) {
  padplan p;
  lc_status st = pad_setup(m, args, &p);
  if (st) return st;
  lc_tensor *gx = NULL, *g = NULL, *vi = NULL, *vo = NULL;
  lc_dtype dt = m->dtype;
  if ((st = new_like(m, &gx))) goto done;
  memset(lc_data(gx), 0, (size_t)gx->numel * lc_dtype_size(dt));
  if (p.mode == LC_PAD_CONSTANT) {
    if ((st = interior_views(&p, gx, grad_out, &vo, &vi))) goto done;
    if (vo->numel > 0) st = lc_k_copy(vo, vi);
  } else if (grad_out->numel > 0) {
    if ((st = lc_k_dense_as(grad_out, dt, &g))) goto done;
    gjob j;
    job_init(&j, &p, lc_dtype_size(dt));
    j.x = lc_data(gx), j.y = lc_data(g);
    scatter_rows(&j, dt);
  }
done:
  plan_free(&p);
  lc_release(g);
  lc_release(vi);
  lc_release(vo);
  if (st) {
    lc_release(gx);
    return st;
  }
  *out = gx;
  return LC_OK;
}

static lc_status pad_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                              lc_tensor **grad_in) {
  grad_in[0] = NULL;
  if (!ctx->needs_grad[0]) return LC_OK;
  return pad_grad(&ctx->in[0], ctx->args, grad_out, &grad_in[0]);
}

/* ---- double backward: pad is affine in x, y = P x plus the constant border; its gradient P^T g
 * is lc_gb_linear_grad's, with the value 0 (the linear part P). */
static lc_status pad_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_op_args a = *ctx->args;
  a.f[0] = 0.0;
  lc_gb_grad(&b, 0, lc_gb_linear_grad(&b, g, &a), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_pad = {.name = "pad",
                             .grad_fn_name = "PadBackward",
                             .n_inputs = 1,
                             .n_outputs = 1,
                             .forward = pad_forward,
                             .backward = pad_backward,
                             .backward_graph = pad_backward_graph};
