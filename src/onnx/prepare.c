/*
 * prepare.c - what is done once per model, after parsing: constant folding, the fusions
 * (Conv + BatchNormalization folded into the Conv's weights, MatMul + Add and Gemm as one
 * linear op, a following Relu applied in place), and the memory plan (each value's last
 * reader, so the executor frees it there).
 */
#include "onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_const(const lc_onnx_model *m, int v) { return v >= 0 && m->values[v].constant; }

/* A constant that folding may use: not a trainable parameter. */
static bool foldable_input(const lc_onnx_model *m, int v) {
  return v < 0 || (m->values[v].constant && !m->values[v].is_param);
}

static lc_status fold_constants(lc_onnx_model *m) {
  bool grad = lc_set_grad_enabled(false);
  lc_status st = LC_OK;
  lc_tensor *outs[16];
  for (int i = 0; i < m->n_nodes && !st; i++) {
    ox_node *n = &m->nodes[i];
    if (n->dead || !n->op->deterministic || n->n_out > 16) continue;
    bool all = true;
    for (int j = 0; j < n->n_in && all; j++)
      all = foldable_input(m, n->in[j]);
    if (!all) continue;
    lc_tensor *ins[64];
    if (n->n_in > 64) continue;
    for (int j = 0; j < n->n_in; j++)
      ins[j] = n->in[j] >= 0 ? m->values[n->in[j]].constant : NULL;
    for (int j = 0; j < n->n_out; j++)
      outs[j] = NULL;
    if ((st = ox_run_node(m, n, ins, outs))) break;
    for (int j = 0; j < n->n_out; j++) {
      if (n->out[j] >= 0)
        m->values[n->out[j]].constant = outs[j];
      else
        lc_release(outs[j]);
    }
    n->dead = true;
  }
  lc_set_grad_enabled(grad);
  return st;
}

/* Uses of each value by live nodes. */
static void count_uses(lc_onnx_model *m) {
  for (int v = 0; v < m->n_values; v++) {
    m->values[v].n_uses = 0;
    m->values[v].last_use = -1;
  }
  for (int i = 0; i < m->n_nodes; i++) {
    const ox_node *n = &m->nodes[i];
    if (n->dead) continue;
    for (int j = 0; j < n->n_in; j++)
      if (n->in[j] >= 0) {
        m->values[n->in[j]].n_uses++;
        m->values[n->in[j]].last_use = i;
      }
  }
}

/* The only live reader of value v (a node's first output), or NULL. */
static ox_node *sole_reader(lc_onnx_model *m, int v, const char *op) {
  if (v < 0 || m->values[v].is_output || m->values[v].n_uses != 1) return NULL;
  int r = m->values[v].last_use;
  ox_node *n = &m->nodes[r];
  return !n->dead && strcmp(n->proto->op_type, op) == 0 ? n : NULL;
}

/* Removes node n from the run, its inputs' use counts with it, so the fusion pass keeps the
 * counts current without recounting the graph after each fusion (which made it quadratic).
 * last_use may then point at a dead node; sole_reader refuses those, and ox_prepare recounts
 * once at the end. */
static void kill(lc_onnx_model *m, ox_node *n) {
  n->dead = true;
  for (int j = 0; j < n->n_in; j++)
    if (n->in[j] >= 0) m->values[n->in[j]].n_uses--;
}

/* Makes node n produce what `absorbed` produced (its first output), and removes absorbed. */
static void absorb(lc_onnx_model *m, ox_node *n, ox_node *absorbed) {
  n->out[0] = absorbed->out[0];
  if (n->out[0] >= 0) m->values[n->out[0]].producer = (int)(n - m->nodes);
  kill(m, absorbed);
}

static bool float_tensor(const lc_tensor *t) {
  return t && (lc_dtype_of(t) == LC_FLOAT32 || lc_dtype_of(t) == LC_FLOAT64);
}

/* An owned vector of n values (shape (n) or all-ones before it) from b, or NULL if b is not. */
static lc_status as_bias(const lc_tensor *b, int64_t n, lc_tensor **out) {
  *out = NULL;
  int nd = lc_ndim(b);
  if (lc_numel(b) == 1 && n != 1) {
    int64_t shape[1] = {n};
    lc_tensor *e;
    lc_status st = lc_reshape(b, 0, shape, &e);
    if (st) return st;
    st = lc_expand(e, 1, shape, out);
    lc_release(e);
    if (st) return st;
    lc_tensor *c;
    st = lc_contiguous(*out, &c);
    lc_release(*out);
    *out = st ? NULL : c;
    return st;
  }
  if (nd < 1 || lc_shape(b)[nd - 1] != n || lc_numel(b) != n) return LC_OK;
  int64_t shape[1] = {n};
  return lc_reshape(b, 1, shape, out);
}

/* Conv followed by BatchNormalization (inference form) -> one Conv with scaled weights. */
static lc_status fuse_conv_bn(lc_onnx_model *m, ox_node *c) {
  ox_node *bn = sole_reader(m, c->out[0], "BatchNormalization");
  if (!bn || bn->in[0] != c->out[0] || bn->n_in != 5 || !is_const(m, c->in[1])) return LC_OK;
  for (int j = 1; j < bn->n_out; j++)
    if (bn->out[j] >= 0 && (m->values[bn->out[j]].n_uses || m->values[bn->out[j]].is_output))
      return LC_OK;
  if (ox_attr_int(bn, "training_mode", 0)) return LC_OK;
  for (int j = 1; j < 5; j++)
    if (!is_const(m, bn->in[j])) return LC_OK;
  if (c->n_in == 3 && c->in[2] >= 0 && !is_const(m, c->in[2])) return LC_OK;
  lc_tensor *w = m->values[c->in[1]].constant;
  lc_tensor *scale = m->values[bn->in[1]].constant, *beta = m->values[bn->in[2]].constant;
  lc_tensor *mean = m->values[bn->in[3]].constant, *var = m->values[bn->in[4]].constant;
  if (!float_tensor(w) || lc_ndim(w) < 3) return LC_OK;
  int64_t oc = lc_shape(w)[0];
  lc_tensor *const vecs[4] = {scale, beta, mean, var};
  for (int j = 0; j < 4; j++)
    if (lc_dtype_of(vecs[j]) != lc_dtype_of(w) || lc_ndim(vecs[j]) != 1 ||
        lc_shape(vecs[j])[0] != oc)
      return LC_OK;
  double eps = ox_attr_float(bn, "epsilon", 1e-5);
  lc_tensor *s = NULL, *t1 = NULL, *sv = NULL, *nw = NULL, *nb = NULL, *t2 = NULL;
  int64_t vshape[LC_MAX_DIMS];
  vshape[0] = oc;
  for (int k = 1; k < lc_ndim(w); k++)
    vshape[k] = 1;
  lc_status st = lc_binary_scalar(LC_ADD, var, eps, false, &t1);
  if (!st) st = lc_unary_(LC_RSQRT, t1);
  if (!st) st = lc_binary(LC_MUL, scale, t1, &s); /* s = scale / sqrt(var + eps) */
  if (!st) st = lc_reshape(s, lc_ndim(w), vshape, &sv);
  if (!st) st = lc_binary(LC_MUL, w, sv, &nw);
  lc_release(t1);
  t1 = NULL;
  /* b' = (b - mean) * s + beta */
  if (!st && c->n_in == 3 && c->in[2] >= 0)
    st = lc_binary(LC_SUB, m->values[c->in[2]].constant, mean, &t1);
  else if (!st)
    st = lc_unary(LC_NEG, mean, &t1);
  if (!st) st = lc_binary(LC_MUL, t1, s, &t2);
  if (!st) st = lc_binary(LC_ADD, t2, beta, &nb);
  lc_release(s);
  lc_release(t1);
  lc_release(sv);
  lc_release(t2);
  if (st) {
    lc_release(nw);
    lc_release(nb);
    return st;
  }
  lc_release(c->fused_weight);
  lc_release(c->fused_bias);
  c->fused_weight = nw;
  c->fused_bias = nb;
  c->fusion = OX_FUSE_WEIGHTS;
  c->n_in = 3; /* room for one more was allocated */
  c->in[1] = c->in[2] = -1;
  absorb(m, c, bn);
  return LC_OK;
}

/* MatMul(x, W) [+ Add(., b)] with a constant 2-D W -> linear(x, W^T, b). */
static lc_status fuse_matmul_add(lc_onnx_model *m, ox_node *mm) {
  if (!is_const(m, mm->in[1])) return LC_OK;
  lc_tensor *w = m->values[mm->in[1]].constant;
  if (!float_tensor(w) || lc_ndim(w) != 2) return LC_OK;
  ox_node *add = sole_reader(m, mm->out[0], "Add");
  int64_t n = lc_shape(w)[1];
  lc_tensor *bias = NULL;
  lc_status st;
  if (add) {
    int other = add->in[0] == mm->out[0] ? add->in[1] : add->in[0];
    if (add->in[0] == add->in[1] || !is_const(m, other))
      add = NULL;
    else {
      lc_tensor *b = m->values[other].constant;
      if (lc_dtype_of(b) != lc_dtype_of(w) || lc_ndim(b) > 1)
        add = NULL; /* (1, n) may widen rank */
      else if ((st = as_bias(b, n, &bias)))
        return st;
      if (!bias) add = NULL;
    }
  }
  lc_tensor *wt, *wc;
  if ((st = lc_t(w, &wt))) {
    lc_release(bias);
    return st;
  }
  st = lc_contiguous(wt, &wc);
  lc_release(wt);
  if (st) {
    lc_release(bias);
    return st;
  }
  mm->fusion = OX_FUSE_LINEAR;
  mm->fused_weight = wc;
  mm->fused_bias = bias;
  mm->in[1] = -1;
  if (add) absorb(m, mm, add);
  return LC_OK;
}

/* Gemm(A, B, C) with transA = 0 and a constant B (and C a vector or absent) -> linear. */
static lc_status fuse_gemm(lc_onnx_model *m, ox_node *g) {
  if (ox_attr_int(g, "transA", 0) || !is_const(m, g->in[1])) return LC_OK;
  lc_tensor *b = m->values[g->in[1]].constant;
  if (!float_tensor(b) || lc_ndim(b) != 2) return LC_OK;
  bool tb = ox_attr_int(g, "transB", 0) != 0;
  double alpha = ox_attr_float(g, "alpha", 1.0), beta = ox_attr_float(g, "beta", 1.0);
  int64_t n = lc_shape(b)[tb ? 0 : 1];
  lc_tensor *bias = NULL;
  lc_status st;
  if (g->n_in == 3 && g->in[2] >= 0) {
    if (!is_const(m, g->in[2])) return LC_OK;
    lc_tensor *c = m->values[g->in[2]].constant;
    if (lc_dtype_of(c) != lc_dtype_of(b) || lc_ndim(c) > 2 ||
        (lc_ndim(c) == 2 && lc_shape(c)[0] != 1))
      return LC_OK;
    lc_tensor *v;
    if ((st = as_bias(c, n, &v))) return st;
    if (!v) return LC_OK;
    st = lc_binary_scalar(LC_MUL, v, beta, false, &bias);
    lc_release(v);
    if (st) return st;
  }
  lc_tensor *w = NULL, *wt = NULL;
  if (tb)
    st = lc_binary_scalar(LC_MUL, b, alpha, false, &w);
  else {
    st = lc_t(b, &wt);
    if (!st) st = lc_binary_scalar(LC_MUL, wt, alpha, false, &w);
    lc_release(wt);
  }
  if (st) {
    lc_release(bias);
    return st;
  }
  g->fusion = OX_FUSE_LINEAR;
  g->fused_weight = w;
  g->fused_bias = bias;
  g->in[1] = -1;
  if (g->n_in == 3) g->in[2] = -1;
  return LC_OK;
}

/* Whether value v is a one-element constant equal to want (within 1e-5 relative). */
static bool const_near(const lc_onnx_model *m, int v, double want) {
  double val;
  if (!is_const(m, v) || lc_numel(m->values[v].constant) != 1 ||
      lc_item(m->values[v].constant, &val) != LC_OK)
    return false;
  return fabs(val - want) <= 1e-5 * fabs(want);
}

/* The other input of a two-input node than v (-1 when both are v). */
static int other_input(const ox_node *n, int v) {
  if (n->n_in != 2) return -1;
  return n->in[0] == v ? (n->in[1] == v ? -1 : n->in[1]) : n->in[1] == v ? n->in[0] : -1;
}

/* PyTorch's exact GELU as exported: Div(x, sqrt 2) -> Erf -> Add(., 1) -> Mul(x, .) ->
 * Mul(., 0.5), each result read only by the next: one lc_gelu (one vectorised pass instead of
 * five, the scalar erf among them). */
static lc_status fuse_gelu(lc_onnx_model *m, ox_node *d) {
  int x = d->in[0];
  if (d->n_in != 2 || x < 0 || !const_near(m, d->in[1], M_SQRT2)) return LC_OK;
  ox_node *e = sole_reader(m, d->out[0], "Erf");
  ox_node *a = e ? sole_reader(m, e->out[0], "Add") : NULL;
  if (!a || !const_near(m, other_input(a, e->out[0]), 1.0)) return LC_OK;
  ox_node *m1 = sole_reader(m, a->out[0], "Mul");
  if (!m1 || other_input(m1, a->out[0]) != x) return LC_OK;
  ox_node *m2 = sole_reader(m, m1->out[0], "Mul");
  if (!m2 || !const_near(m, other_input(m2, m1->out[0]), 0.5)) return LC_OK;
  d->fusion = OX_FUSE_GELU;
  d->in[1] = -1;
  kill(m, e);
  kill(m, a);
  kill(m, m1);
  absorb(m, d, m2);
  return LC_OK;
}

/* Whether node n is ReduceMean over the last dim only, keeping it (axes = [-1], keepdims 1). */
static bool mean_over_last(const ox_node *n) {
  const int64_t *axes = NULL;
  return n->n_in == 1 && ox_attr_ints(n, "axes", &axes) == 1 && axes[0] == -1 &&
         ox_attr_int(n, "keepdims", 1) == 1;
}

/* The live readers of value v after node `from` (at most max of them; their count). */
static int readers_after(lc_onnx_model *m, int from, int v, ox_node **out, int max) {
  int found = 0;
  int last = m->values[v].last_use;
  for (int i = from + 1; i <= last && i < m->n_nodes && found < max; i++) {
    ox_node *n = &m->nodes[i];
    if (n->dead) continue;
    for (int j = 0; j < n->n_in; j++)
      if (n->in[j] == v) {
        out[found++] = n;
        break;
      }
  }
  return found;
}

/* A 1-D float constant of more than one element (a LayerNorm weight or bias), or -1. */
static int vector_const(const lc_onnx_model *m, int v) {
  if (!is_const(m, v)) return -1;
  const lc_tensor *t = m->values[v].constant;
  return float_tensor(t) && lc_ndim(t) == 1 && lc_numel(t) > 1 ? v : -1;
}

/* PyTorch's layer_norm over the last dim as exported before opset 17 (LayerNormalization):
 * m = ReduceMean(x), d = Sub(x, m), v = ReduceMean(Pow(d, 2)), s = Sqrt(Add(v, eps)),
 * Div(d, s) [-> Mul(., weight) [-> Add(., bias)]], every intermediate read only inside the
 * pattern: one lc_layer_norm (one pass over the rows instead of nine whole-tensor ops). A
 * weight or bias must be a 1-D constant of more than one element (so that it can only have
 * broadcast along the last dim). */
static lc_status fuse_layer_norm(lc_onnx_model *m, ox_node *r1) {
  int x = r1->in[0];
  if (x < 0 || !mean_over_last(r1)) return LC_OK;
  ox_node *sub = sole_reader(m, r1->out[0], "Sub");
  if (!sub || sub->n_in != 2 || sub->in[0] != x || sub->in[1] != r1->out[0]) return LC_OK;
  int d = sub->out[0];
  if (d < 0 || m->values[d].is_output || m->values[d].n_uses != 2) return LC_OK;
  ox_node *rd[2];
  if (readers_after(m, (int)(sub - m->nodes), d, rd, 2) != 2) return LC_OK;
  ox_node *pw = strcmp(rd[0]->proto->op_type, "Pow") == 0 ? rd[0] : rd[1];
  ox_node *div = pw == rd[0] ? rd[1] : rd[0];
  if (strcmp(pw->proto->op_type, "Pow") != 0 || pw->n_in != 2 || pw->in[0] != d ||
      !const_near(m, pw->in[1], 2.0) || strcmp(div->proto->op_type, "Div") != 0)
    return LC_OK;
  ox_node *r2 = sole_reader(m, pw->out[0], "ReduceMean");
  if (!r2 || !mean_over_last(r2)) return LC_OK;
  ox_node *add = sole_reader(m, r2->out[0], "Add");
  int epsv = add ? other_input(add, r2->out[0]) : -1;
  double eps;
  if (!is_const(m, epsv) || lc_numel(m->values[epsv].constant) != 1 ||
      lc_item(m->values[epsv].constant, &eps) != LC_OK || !(eps >= 0))
    return LC_OK;
  ox_node *sq = sole_reader(m, add->out[0], "Sqrt");
  if (!sq || div->n_in != 2 || div->in[0] != d || div->in[1] != sq->out[0] ||
      sole_reader(m, sq->out[0], "Div") != div)
    return LC_OK;
  ox_node *last = div, *mul = sole_reader(m, div->out[0], "Mul"), *badd = NULL;
  int w = mul ? vector_const(m, other_input(mul, div->out[0])) : -1, b = -1;
  if (w >= 0) {
    last = mul;
    badd = sole_reader(m, mul->out[0], "Add");
    b = badd ? vector_const(m, other_input(badd, mul->out[0])) : -1;
    if (b >= 0 && lc_numel(m->values[b].constant) == lc_numel(m->values[w].constant))
      last = badd;
    else
      b = -1;
  }
  r1->fusion = OX_FUSE_LAYER_NORM;
  r1->fused_eps = eps;
  r1->fused_weight = w >= 0 ? lc_retain(m->values[w].constant) : NULL;
  r1->fused_bias = b >= 0 ? lc_retain(m->values[b].constant) : NULL;
  kill(m, sub);
  kill(m, pw);
  kill(m, r2);
  kill(m, add);
  kill(m, sq);
  if (last != div) kill(m, div);
  if (last == badd) kill(m, mul);
  absorb(m, r1, last);
  return LC_OK;
}

/* A Clip's bounds when they are constants: attributes before opset 11, optional one-element
 * inputs from it (absent: unbounded). */
static bool clip_bounds(const lc_onnx_model *m, const ox_node *clip, double *lo, double *hi) {
  *lo = -INFINITY;
  *hi = INFINITY;
  if (m->opset < 11) {
    *lo = ox_attr_float(clip, "min", -INFINITY);
    *hi = ox_attr_float(clip, "max", INFINITY);
    return true;
  }
  for (int j = 1; j < clip->n_in && j < 3; j++) {
    int v = clip->in[j];
    if (v < 0) continue;
    const lc_tensor *t = m->values[v].constant;
    double val;
    if (!t || lc_numel(t) != 1 || lc_item(t, &val) != LC_OK) return false;
    if (j == 1)
      *lo = val;
    else
      *hi = val;
  }
  return true;
}

static lc_status fuse(lc_onnx_model *m) {
  lc_status st = LC_OK;
  count_uses(m); /* kept current by kill() from here on */
  for (int i = 0; i < m->n_nodes && !st; i++) {
    ox_node *n = &m->nodes[i];
    if (n->dead) continue;
    const char *op = n->proto->op_type;
    if (strcmp(op, "Conv") == 0)
      st = fuse_conv_bn(m, n);
    else if (strcmp(op, "MatMul") == 0)
      st = fuse_matmul_add(m, n);
    else if (strcmp(op, "Gemm") == 0)
      st = fuse_gemm(m, n);
    else if (strcmp(op, "Div") == 0)
      st = fuse_gelu(m, n);
    else if (strcmp(op, "ReduceMean") == 0)
      st = fuse_layer_norm(m, n);
    else
      continue;
    if (st) break;
    /* a Relu or a Clip by constants (ReLU6) reading only this result runs in place on it */
    if (strcmp(op, "Conv") == 0 || n->fusion != OX_FUSE_NONE) {
      ox_node *r = sole_reader(m, n->out[0], "Relu");
      if (r && r->in[0] == n->out[0]) {
        n->relu_after = true;
        absorb(m, n, r);
      } else if ((r = sole_reader(m, n->out[0], "Clip")) && r->in[0] == n->out[0] &&
                 clip_bounds(m, r, &n->clip_lo, &n->clip_hi)) {
        n->clip_after = true;
        absorb(m, n, r);
      }
    }
  }
  return st;
}

lc_status ox_infer_shapes(lc_onnx_model *m, int *folded); /* shape_infer.c */

lc_status ox_prepare(lc_onnx_model *m) {
  lc_status st = fold_constants(m);
  int folded = 0;
  if (!st) st = ox_infer_shapes(m, &folded); /* inconsistent shapes fail here */
  if (!st && folded) st = fold_constants(m); /* what the known Shapes made constant */
  if (!st && !m->opts.no_fusion && !m->opts.trainable) st = fuse(m);
  if (st) return st;
  count_uses(m);
  /* the initializers still read by a live node (or returned) */
  m->params = malloc(((size_t)m->n_values + 1) * sizeof(int));
  if (!m->params) return lc_set_error(LC_ENOMEM, "onnx: out of memory");
  m->n_params = 0;
  for (int v = 0; v < m->n_values; v++) {
    const ox_value *ov = &m->values[v];
    if (ov->constant && ov->producer < 0 && (ov->n_uses || ov->is_output))
      m->params[m->n_params++] = v;
  }
  /* folded values nobody reads any more are dropped */
  for (int v = 0; v < m->n_values; v++) {
    ox_value *ov = &m->values[v];
    if (ov->constant && ov->producer >= 0 && !ov->n_uses && !ov->is_output) {
      lc_release(ov->constant);
      ov->constant = NULL;
    }
  }
  return LC_OK;
}
