/*
 * shape_infer.c - static shape inference at load: each value's shape as far as the graph
 * fixes it (a rank and dims, -1 where a dim is dynamic, rank -1 where unknown), propagated
 * from the declared inputs and the constants through the ops PyTorch's exports are made of.
 * It serves two ends: shapes that cannot fit (operands that do not broadcast, a MatMul's
 * inner dims, a Conv's channels) are an error when the model loads, naming the node, rather
 * than at its first run; and a Shape node whose input shape is fully known becomes a constant,
 * so constant folding can then remove the reshaping chains behind it. Ops without a rule here
 * leave their outputs unknown (they are still checked when they run).
 */
#include "onnx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shp {
  int rank; /* -1: unknown */
  int64_t d[LC_MAX_DIMS];
} shp;

static const shp UNKNOWN = {-1, {0}};

static bool in_set(const char *op, const char *const *set) {
  for (; *set; set++)
    if (strcmp(op, *set) == 0) return true;
  return false;
}

/* Ops whose first output has their first input's shape. */
static const char *const SAME_AS_INPUT[] = {"Relu",
                                            "Sigmoid",
                                            "Tanh",
                                            "Exp",
                                            "Log",
                                            "Sqrt",
                                            "Neg",
                                            "Abs",
                                            "Erf",
                                            "Floor",
                                            "Ceil",
                                            "Round",
                                            "Reciprocal",
                                            "Sign",
                                            "Sin",
                                            "Cos",
                                            "Tan",
                                            "Asin",
                                            "Acos",
                                            "Atan",
                                            "Sinh",
                                            "Cosh",
                                            "Asinh",
                                            "Acosh",
                                            "Atanh",
                                            "IsNaN",
                                            "IsInf",
                                            "Not",
                                            "LeakyRelu",
                                            "Elu",
                                            "Selu",
                                            "Celu",
                                            "HardSigmoid",
                                            "HardSwish",
                                            "Softplus",
                                            "Softsign",
                                            "ThresholdedRelu",
                                            "Shrink",
                                            "Softmax",
                                            "LogSoftmax",
                                            "Hardmax",
                                            "Clip",
                                            "Cast",
                                            "CastLike",
                                            "Identity",
                                            "Dropout",
                                            "BatchNormalization",
                                            "InstanceNormalization",
                                            "LayerNormalization",
                                            "LRN",
                                            "MeanVarianceNormalization",
                                            "CumSum",
                                            "Trilu",
                                            NULL};

/* Elementwise ops broadcasting all their inputs (NumPy's rule). */
static const char *const BROADCAST[] = {"Add",
                                        "Sub",
                                        "Mul",
                                        "Div",
                                        "Pow",
                                        "Mod",
                                        "And",
                                        "Or",
                                        "Xor",
                                        "Equal",
                                        "Greater",
                                        "Less",
                                        "GreaterOrEqual",
                                        "LessOrEqual",
                                        "Where",
                                        "Max",
                                        "Min",
                                        "Sum",
                                        "Mean",
                                        "PRelu",
                                        "BitShift",
                                        NULL};

static void show(const shp *s, char *buf, size_t cap) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, cap - k, "(");
  for (int i = 0; i < s->rank && k < cap; i++) {
    if (s->d[i] < 0)
      k += (size_t)snprintf(buf + k, cap - k, "%s?", i ? ", " : "");
    else
      k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)s->d[i]);
  }
  if (k < cap) snprintf(buf + k, cap - k, ")");
}

static lc_status shape_error(const ox_node *n, int opset, const char *what, const shp *a,
                             const shp *b) {
  char sa[160], sb[160];
  show(a, sa, sizeof sa);
  show(b, sb, sizeof sb);
  return lc_set_error(LC_ESHAPE, "onnx: node '%s' (%s, opset %d): %s: %s and %s", ox_node_label(n),
                      n->proto->op_type, opset, what, sa, sb);
}

/* NumPy broadcasting of a and b into *out; false when two known dims differ (neither 1). */
static bool broadcast(const shp *a, const shp *b, shp *out) {
  if (a->rank < 0 || b->rank < 0) {
    *out = UNKNOWN;
    return true;
  }
  int r = a->rank > b->rank ? a->rank : b->rank;
  out->rank = r;
  for (int i = 0; i < r; i++) {
    int ia = i - (r - a->rank), ib = i - (r - b->rank);
    int64_t x = ia >= 0 ? a->d[ia] : 1, y = ib >= 0 ? b->d[ib] : 1;
    if (x == 1)
      out->d[i] = y;
    else if (y == 1)
      out->d[i] = x;
    else if (x < 0 || y < 0)
      out->d[i] = x < 0 ? y : x; /* the known one, or unknown */
    else if (x != y)
      return false;
    else
      out->d[i] = x;
  }
  return true;
}

static shp of_tensor(const lc_tensor *t) {
  shp s;
  s.rank = lc_ndim(t);
  for (int i = 0; i < s.rank; i++)
    s.d[i] = lc_shape(t)[i];
  return s;
}

/* A constant integer input's values (up to LC_MAX_DIMS): count, or -1. */
static int const_ints(const lc_onnx_model *m, const ox_node *n, int j, int64_t *vals) {
  if (j >= n->n_in || n->in[j] < 0) return -1;
  const lc_tensor *t = m->values[n->in[j]].constant;
  if (!t) return -1;
  lc_dtype dt = lc_dtype_of(t);
  if ((dt != LC_INT64 && dt != LC_INT32) || lc_ndim(t) > 1 || lc_numel(t) > LC_MAX_DIMS) return -1;
  if (lc_copy_to_buffer(t, LC_INT64, vals)) return -1;
  return (int)lc_numel(t);
}

/* Output spatial size of a conv or pool dim (-1 when the input is unknown). */
static int64_t spatial_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
                           bool ceil_mode) {
  if (in < 0) return -1;
  int64_t span = in + pb + pe - d * (k - 1) - 1;
  if (span < 0) return 0;
  return (ceil_mode ? (span + s - 1) / s : span / s) + 1;
}

/* Conv / MaxPool / AveragePool: spatial dims from the attributes (unknown with auto_pad SAME). */
static void pool_like(const ox_node *n, const shp *x, const int64_t *kernel, int64_t out_ch,
                      shp *out) {
  int sd = x->rank - 2;
  out->rank = x->rank;
  out->d[0] = x->d[0];
  out->d[1] = out_ch;
  const int64_t *st = NULL, *dl = NULL, *pd = NULL;
  int64_t ns = ox_attr_ints(n, "strides", &st), nd = ox_attr_ints(n, "dilations", &dl),
          np = ox_attr_ints(n, "pads", &pd);
  char buf[16];
  const char *ap = ox_attr_string(n, "auto_pad", "NOTSET", buf, sizeof buf);
  bool valid = strcmp(ap, "VALID") == 0, notset = strcmp(ap, "NOTSET") == 0;
  bool ceil_mode = ox_attr_int(n, "ceil_mode", 0) != 0;
  for (int i = 0; i < sd; i++) {
    int64_t s = ns == sd ? st[i] : 1, d = nd == sd ? dl[i] : 1;
    int64_t pb = np == 2 * sd && notset ? pd[i] : 0, pe = np == 2 * sd && notset ? pd[i + sd] : 0;
    if ((!notset && !valid) || s < 1 || d < 1 || kernel[i] < 1)
      out->d[2 + i] = -1;
    else
      out->d[2 + i] = spatial_out(x->d[2 + i], kernel[i], s, d, pb, pe, ceil_mode);
  }
}

/* The first output's shape of node n from its inputs' (in), or an error for shapes that
 * cannot fit. */
static lc_status infer_node(const lc_onnx_model *m, const ox_node *n, const shp *in, shp *out) {
  const char *op = n->proto->op_type;
  int opset = m->opset;
  *out = UNKNOWN;
  if (n->n_in == 0) return LC_OK;
  const shp *x = &in[0];
  if (in_set(op, SAME_AS_INPUT)) {
    *out = *x;
    return LC_OK;
  }
  if (in_set(op, BROADCAST)) {
    shp acc = in[0];
    for (int j = 1; j < n->n_in; j++) {
      if (n->in[j] < 0) continue;
      shp next;
      if (!broadcast(&acc, &in[j], &next))
        return shape_error(n, opset, "shapes that do not broadcast", &acc, &in[j]);
      acc = next;
    }
    *out = acc;
    return LC_OK;
  }
  if (strcmp(op, "MatMul") == 0 && n->n_in == 2) {
    const shp *a = &in[0], *b = &in[1];
    if (a->rank < 2 || b->rank < 2) return LC_OK;
    int64_t ka = a->d[a->rank - 1], kb = b->d[b->rank - 2];
    if (ka >= 0 && kb >= 0 && ka != kb) return shape_error(n, opset, "inner dims differ", a, b);
    shp ba = *a, bb = *b, bo;
    ba.rank -= 2;
    bb.rank -= 2;
    if (!broadcast(&ba, &bb, &bo))
      return shape_error(n, opset, "batch dims that do not broadcast", a, b);
    *out = bo;
    out->d[out->rank++] = a->d[a->rank - 2];
    out->d[out->rank++] = b->d[b->rank - 1];
    return LC_OK;
  }
  if (strcmp(op, "Gemm") == 0 && n->n_in >= 2) {
    const shp *a = &in[0], *b = &in[1];
    if (a->rank != 2 || b->rank != 2) return LC_OK;
    bool ta = ox_attr_int(n, "transA", 0) != 0, tb = ox_attr_int(n, "transB", 0) != 0;
    int64_t M = a->d[ta ? 1 : 0], K = a->d[ta ? 0 : 1], K2 = b->d[tb ? 1 : 0], N = b->d[tb ? 0 : 1];
    if (K >= 0 && K2 >= 0 && K != K2) return shape_error(n, opset, "inner dims differ", a, b);
    out->rank = 2;
    out->d[0] = M;
    out->d[1] = N;
    return LC_OK;
  }
  if (strcmp(op, "Conv") == 0 && n->n_in >= 2) {
    const shp *w = &in[1];
    if (x->rank < 3 || w->rank != x->rank) return LC_OK;
    int64_t g = ox_attr_int(n, "group", 1);
    if (x->d[1] >= 0 && w->d[1] >= 0 && g >= 1 && x->d[1] != w->d[1] * g)
      return shape_error(n, opset, "input channels differ from the weight's times group", x, w);
    int64_t k[LC_MAX_DIMS];
    for (int i = 0; i < x->rank - 2; i++)
      k[i] = w->d[2 + i];
    pool_like(n, x, k, w->d[0], out);
    return LC_OK;
  }
  if ((strcmp(op, "MaxPool") == 0 || strcmp(op, "AveragePool") == 0) && x->rank >= 3) {
    const int64_t *ks;
    if (ox_attr_ints(n, "kernel_shape", &ks) != x->rank - 2) return LC_OK;
    pool_like(n, x, ks, x->d[1], out);
    return LC_OK;
  }
  if ((strcmp(op, "GlobalAveragePool") == 0 || strcmp(op, "GlobalMaxPool") == 0) && x->rank >= 2) {
    *out = *x;
    for (int i = 2; i < x->rank; i++)
      out->d[i] = 1;
    return LC_OK;
  }
  if (strcmp(op, "Flatten") == 0 && x->rank >= 0) {
    int64_t axis = ox_attr_int(n, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank) return LC_OK;
    int64_t a = 1, b = 1;
    for (int i = 0; i < x->rank; i++) {
      int64_t *p = i < axis ? &a : &b;
      *p = (*p < 0 || x->d[i] < 0) ? -1 : *p * x->d[i];
    }
    out->rank = 2;
    out->d[0] = a;
    out->d[1] = b;
    return LC_OK;
  }
  if (strcmp(op, "Transpose") == 0 && x->rank >= 0) {
    const int64_t *perm;
    int64_t np = ox_attr_ints(n, "perm", &perm);
    out->rank = x->rank;
    for (int i = 0; i < x->rank; i++) {
      int64_t p = np == x->rank ? perm[i] : x->rank - 1 - i;
      if (p < 0 || p >= x->rank) return LC_OK; /* the op itself reports it */
      out->d[i] = x->d[p];
    }
    return LC_OK;
  }
  if (strcmp(op, "Shape") == 0 && x->rank >= 0) {
    int64_t r = x->rank, s = ox_attr_int(n, "start", 0), e = ox_attr_int(n, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    out->rank = 1;
    out->d[0] = e > s ? e - s : 0;
    return LC_OK;
  }
  if (strcmp(op, "Reshape") == 0) {
    int64_t sh[LC_MAX_DIMS];
    int k = const_ints(m, n, 1, sh);
    if (k < 0) return LC_OK;
    bool allowzero = ox_attr_int(n, "allowzero", 0) != 0;
    out->rank = k;
    int infer = -1;
    int64_t known = 1, total = 1;
    for (int i = 0; i < x->rank; i++)
      total = (total < 0 || x->d[i] < 0) ? -1 : total * x->d[i];
    if (x->rank < 0) total = -1;
    for (int i = 0; i < k; i++) {
      int64_t v = sh[i];
      if (v == 0 && !allowzero) v = x->rank > i ? x->d[i] : -1;
      if (sh[i] == -1) infer = i;
      out->d[i] = v;
      if (sh[i] != -1) known = (known < 0 || v < 0) ? -1 : known * v;
    }
    if (infer >= 0)
      out->d[infer] = total >= 0 && known > 0 && total % known == 0 ? total / known : -1;
    return LC_OK;
  }
  if ((strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Squeeze") == 0) && x->rank >= 0) {
    int64_t axes[LC_MAX_DIMS];
    int k;
    if (opset >= 13)
      k = const_ints(m, n, 1, axes);
    else {
      const int64_t *a;
      int64_t na = ox_attr_ints(n, "axes", &a);
      k = na < 0 || na > LC_MAX_DIMS ? -1 : (int)na;
      for (int i = 0; i < k; i++)
        axes[i] = a[i];
    }
    bool unsq = op[0] == 'U';
    if (k < 0) return LC_OK;
    int r = unsq ? x->rank + k : x->rank;
    if (r > LC_MAX_DIMS) return LC_OK;
    bool mark[LC_MAX_DIMS] = {false};
    for (int i = 0; i < k; i++) {
      int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
      if (a < 0 || a >= r) return LC_OK;
      mark[a] = true;
    }
    out->rank = 0;
    for (int i = 0, src = 0; i < r; i++) {
      if (unsq)
        out->d[out->rank++] = mark[i] ? 1 : x->d[src++];
      else if (!mark[i])
        out->d[out->rank++] = x->d[i];
    }
    return LC_OK;
  }
  if (strcmp(op, "Concat") == 0 && x->rank >= 1) {
    int64_t axis = ox_attr_int(n, "axis", 0);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return LC_OK;
    *out = *x;
    for (int j = 1; j < n->n_in; j++) {
      if (n->in[j] < 0) continue;
      if (in[j].rank != x->rank) return in[j].rank < 0 ? (*out = UNKNOWN, LC_OK) : LC_OK;
      for (int i = 0; i < x->rank; i++) {
        int64_t a = out->d[i], b = in[j].d[i];
        if (i == axis)
          out->d[i] = a < 0 || b < 0 ? -1 : a + b;
        else if (a >= 0 && b >= 0 && a != b)
          return shape_error(n, opset, "inputs differ outside the concatenation axis", out, &in[j]);
        else if (a < 0)
          out->d[i] = b;
      }
    }
    return LC_OK;
  }
  if (strcmp(op, "Gather") == 0 && n->n_in == 2 && x->rank >= 1 && in[1].rank >= 0) {
    int64_t axis = ox_attr_int(n, "axis", 0);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank || x->rank - 1 + in[1].rank > LC_MAX_DIMS) return LC_OK;
    out->rank = 0;
    for (int i = 0; i < axis; i++)
      out->d[out->rank++] = x->d[i];
    for (int i = 0; i < in[1].rank; i++)
      out->d[out->rank++] = in[1].d[i];
    for (int i = (int)axis + 1; i < x->rank; i++)
      out->d[out->rank++] = x->d[i];
    return LC_OK;
  }
  return LC_OK;
}

/* Shapes of every value; then Shape nodes over fully known shapes become constants. Returns
 * in *folded how many did. */
lc_status ox_infer_shapes(lc_onnx_model *m, int *folded) {
  *folded = 0;
  shp *s = calloc((size_t)m->n_values + 1, sizeof *s);
  if (!s) return lc_set_error(LC_ENOMEM, "onnx: out of memory");
  for (int v = 0; v < m->n_values; v++)
    s[v] = m->values[v].constant ? of_tensor(m->values[v].constant) : UNKNOWN;
  for (int i = 0; i < m->n_inputs; i++) {
    shp *t = &s[m->inputs[i]];
    t->rank = m->input_ndim[i];
    for (int k = 0; k < t->rank; k++)
      t->d[k] = m->input_dims[i][k];
  }
  lc_status st = LC_OK;
  shp ins[64];
  for (int i = 0; i < m->n_nodes && !st; i++) {
    ox_node *n = &m->nodes[i];
    if (n->dead || n->n_in > 64 || n->n_out < 1 || n->out[0] < 0) continue;
    for (int j = 0; j < n->n_in; j++)
      ins[j] = n->in[j] >= 0 ? s[n->in[j]] : UNKNOWN;
    shp o;
    if ((st = infer_node(m, n, ins, &o))) break;
    s[n->out[0]] = o;
    /* a Shape of a fully known shape: a constant (the folding pass removes its readers) */
    if (strcmp(n->proto->op_type, "Shape") == 0 && ins[0].rank >= 0) {
      bool known = true;
      for (int k = 0; k < ins[0].rank; k++)
        known = known && ins[0].d[k] >= 0;
      if (!known || m->values[n->out[0]].constant) continue;
      int64_t r = ins[0].rank, a = ox_attr_int(n, "start", 0), e = ox_attr_int(n, "end", r);
      if (a < 0) a += r;
      if (e < 0) e += r;
      a = a < 0 ? 0 : a > r ? r : a;
      e = e < 0 ? 0 : e > r ? r : e;
      if (e < a) e = a;
      if ((st = ox_int_tensor((int)(e - a), ins[0].d + a, &m->values[n->out[0]].constant))) break;
      n->dead = true;
      (*folded)++;
    }
  }
  free(s);
  return st;
}
