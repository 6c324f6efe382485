/*
 * export.c - lc_onnx_export: a model of lucid's built-in modules written as an ONNX file.
 *
 * The module tree is walked with the example input running through it (each leaf's forward
 * gives the next one's input, so shapes are known); containers chain their children, each leaf
 * kind becomes its ONNX node(s), parameters and buffers become initializers named by their
 * module paths ("0.weight", as PyTorch names them). The graph's first dim is the symbolic
 * "batch" unless opts say otherwise. Written with protobuf-c; every string and array below is
 * malloc'ed into one arena freed at the end.
 */
#include "onnx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct arena {
  void **p;
  size_t n, cap;
  bool oom;
} arena;

static void *arena_keep(arena *a, void *p) {
  if (!p) {
    a->oom = true;
    return NULL;
  }
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 256;
    void **np = realloc(a->p, cap * sizeof *np);
    if (!np) {
      free(p);
      a->oom = true;
      return NULL;
    }
    a->p = np;
    a->cap = cap;
  }
  a->p[a->n++] = p;
  return p;
}

static void *arena_alloc(arena *a, size_t size) {
  return arena_keep(a, calloc(1, size ? size : 1));
}

static char *arena_fmt(arena *a, const char *fmt, const char *s1, const char *s2) {
  size_t len = strlen(fmt) + (s1 ? strlen(s1) : 0) + (s2 ? strlen(s2) : 0) + 1;
  char *s = arena_alloc(a, len);
  if (s) snprintf(s, len, fmt, s1 ? s1 : "", s2 ? s2 : "");
  return s;
}

typedef struct exporter {
  arena a;
  Onnx__NodeProto **nodes;
  size_t n_nodes, cap_nodes;
  Onnx__TensorProto **inits;
  size_t n_inits, cap_inits;
  int opset;
  int counter;
  const char *err_path;
} exporter;

static bool grow(arena *a, void ***arr, size_t *n, size_t *cap) {
  if (*n < *cap) return true;
  size_t nc = *cap ? 2 * *cap : 64;
  void **np = realloc(*arr, nc * sizeof *np);
  if (!np) {
    a->oom = true;
    return false;
  }
  *arr = np;
  *cap = nc;
  return true;
}

/* A new value name unique in the graph: "<path>/<op>_<k>". */
static char *fresh(exporter *e, const char *path, const char *op) {
  char buf[64];
  snprintf(buf, sizeof buf, "_%d", e->counter++);
  char *pre = arena_fmt(&e->a, "%s/%s", path[0] ? path : "", op);
  return pre ? arena_fmt(&e->a, "%s%s", pre, buf) : NULL;
}

/* Adds a node with inputs ins (n_in, NULL entries are omitted optional inputs: "") and one
 * output, named out. Returns the node for attributes. */
static Onnx__NodeProto *add_node(exporter *e, const char *op, const char *path, int n_in,
                                 const char *const *ins, const char *out) {
  Onnx__NodeProto *n = arena_alloc(&e->a, sizeof *n);
  if (!n) return NULL;
  onnx__node_proto__init(n);
  n->op_type = (char *)op;
  n->name = arena_fmt(&e->a, "%s/%s", path, op);
  n->input = arena_alloc(&e->a, (size_t)(n_in ? n_in : 1) * sizeof(char *));
  n->output = arena_alloc(&e->a, sizeof(char *));
  if (!n->input || !n->output) return NULL;
  n->n_input = (size_t)n_in;
  for (int i = 0; i < n_in; i++)
    n->input[i] = (char *)(ins[i] ? ins[i] : "");
  n->n_output = 1;
  n->output[0] = (char *)out;
  if (!grow(&e->a, (void ***)&e->nodes, &e->n_nodes, &e->cap_nodes)) return NULL;
  e->nodes[e->n_nodes++] = n;
  return n;
}

static Onnx__AttributeProto *add_attr(exporter *e, Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *a = arena_alloc(&e->a, sizeof *a);
  Onnx__AttributeProto **list = arena_alloc(&e->a, (n->n_attribute + 1) * sizeof *list);
  if (!a || !list) return NULL;
  onnx__attribute_proto__init(a);
  a->name = (char *)name;
  a->has_type = 1;
  a->type = type;
  if (n->n_attribute) memcpy(list, n->attribute, n->n_attribute * sizeof *list);
  list[n->n_attribute++] = a;
  n->attribute = list;
  return a;
}

static void attr_int(exporter *e, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a =
      n ? add_attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) : NULL;
  if (a) {
    a->has_i = 1;
    a->i = v;
  }
}

static void attr_float(exporter *e, Onnx__NodeProto *n, const char *name, double v) {
  Onnx__AttributeProto *a =
      n ? add_attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) : NULL;
  if (a) {
    a->has_f = 1;
    a->f = (float)v;
  }
}

static void attr_ints(exporter *e, Onnx__NodeProto *n, const char *name, int k, const int64_t *v) {
  Onnx__AttributeProto *a =
      n ? add_attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) : NULL;
  int64_t *copy = a ? arena_alloc(&e->a, (size_t)k * sizeof *copy) : NULL;
  if (copy) {
    memcpy(copy, v, (size_t)k * sizeof *copy);
    a->n_ints = (size_t)k;
    a->ints = copy;
  }
}

/* An initializer holding t's values (any layout), named name. */
static lc_status add_init(exporter *e, const char *name, const lc_tensor *t) {
  lc_dtype dt = lc_dtype_of(t);
  int32_t ot = ox_dtype_to_onnx(dt);
  if (ot == ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED)
    return lc_set_error(LC_EDTYPE, "lc_onnx_export: '%s': dtype %s has no ONNX type", name,
                        lc_dtype_name(dt));
  Onnx__TensorProto *tp = arena_alloc(&e->a, sizeof *tp);
  if (!tp) return lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
  onnx__tensor_proto__init(tp);
  tp->name = (char *)name;
  tp->has_data_type = 1;
  tp->data_type = ot;
  int nd = lc_ndim(t);
  tp->dims = arena_alloc(&e->a, (size_t)(nd ? nd : 1) * sizeof(int64_t));
  size_t nbytes = (size_t)lc_numel(t) * lc_dtype_size(dt);
  void *raw = arena_alloc(&e->a, nbytes);
  if (!tp->dims || !raw) return lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
  tp->n_dims = (size_t)nd;
  for (int i = 0; i < nd; i++)
    tp->dims[i] = lc_shape(t)[i];
  lc_status st = lc_copy_to_buffer(t, dt, raw); /* C order, little-endian */
  if (st) return st;
  tp->has_raw_data = 1;
  tp->raw_data.len = nbytes;
  tp->raw_data.data = raw;
  if (!grow(&e->a, (void ***)&e->inits, &e->n_inits, &e->cap_inits))
    return lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
  e->inits[e->n_inits++] = tp;
  return LC_OK;
}

/* An int64 or float constant initializer with a fresh name. */
static const char *const_ints(exporter *e, const char *path, int n, const int64_t *v) {
  char *name = fresh(e, path, "const");
  lc_tensor *t = NULL;
  if (!name || ox_int_tensor(n, v, &t)) return NULL;
  lc_status st = add_init(e, name, t);
  lc_release(t);
  return st ? NULL : name;
}

static const char *const_scalar(exporter *e, const char *path, double v, lc_dtype dt) {
  char *name = fresh(e, path, "const");
  lc_tensor *t = NULL;
  if (!name || lc_scalar(v, dt, &t)) return NULL;
  lc_status st = add_init(e, name, t);
  lc_release(t);
  return st ? NULL : name;
}

/* A parameter or buffer of m by name, as an initializer "<path>.<name>"; NULL (no error) when
 * m has none by that name. */
static lc_status param_init(exporter *e, const lc_module *m, const char *path, const char *name,
                            bool buffer, const char **out) {
  *out = NULL;
  lc_named_tensors l = {0};
  lc_status st =
      buffer ? lc_module_named_buffers(m, false, &l) : lc_module_named_parameters(m, false, &l);
  if (st) return st;
  for (int64_t i = 0; i < l.n && !st; i++)
    if (strcmp(l.names[i], name) == 0) {
      char *full =
          path[0] ? arena_fmt(&e->a, "%s.%s", path, name) : arena_fmt(&e->a, "%s%s", name, "");
      if (!full)
        st = lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
      else if (!(st = add_init(e, full, l.tensors[i])))
        *out = full;
    }
  lc_named_tensors_free(&l);
  return st;
}

static lc_status unsupported(const char *path, const lc_module *m, const char *why) {
  return lc_set_error(LC_EARG, "lc_onnx_export: module '%s' (%s): %s", path[0] ? path : "(root)",
                      lc_module_type_name(m), why);
}

static double attr_f(const lc_module *m, const char *name, double def) {
  lc_attr a;
  return lc_module_attr(m, name, &a) ? (a.type == LC_ATTR_FLOAT ? a.f : (double)a.i) : def;
}

static int64_t attr_i(const lc_module *m, const char *name, int64_t def) {
  lc_attr a;
  return lc_module_attr(m, name, &a) ? (a.type == LC_ATTR_BOOL ? a.b : a.i) : def;
}

#define OOM_IF(c)                                                                                  \
  do {                                                                                             \
    if (c) return lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");                        \
  } while (0)

/* x (value name xn, tensor x) through leaf m at path: writes its nodes, *yn the result's name. */
static lc_status emit_leaf(exporter *e, lc_module *m, const char *path, const char *xn,
                           const lc_tensor *x, const char **yn) {
  const char *type = lc_module_type_name(m);
  const lc_module_kind *kind = lc_module_kind_of(m);
  char *out = fresh(e, path, type);
  OOM_IF(!out);
  *yn = out;
  const char *in1[1] = {xn};
  int nd = lc_ndim(x);
  lc_status st = LC_OK;
  struct {
    const char *type, *op;
  } simple[] = {{"ReLU", "Relu"},          {"Tanh", "Tanh"},
                {"Sigmoid", "Sigmoid"},    {"Identity", "Identity"},
                {"Dropout", "Identity"},   {"Dropout1d", "Identity"},
                {"Dropout2d", "Identity"}, {"AlphaDropout", "Identity"}};
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
    if (strcmp(type, simple[i].type) == 0) {
      OOM_IF(!add_node(e, simple[i].op, path, 1, in1, out));
      return LC_OK;
    }
  if (kind == &lc_kind_leaky_relu) {
    Onnx__NodeProto *n = add_node(e, "LeakyRelu", path, 1, in1, out);
    OOM_IF(!n);
    attr_float(e, n, "alpha", attr_f(m, "negative_slope", 0.01));
    return LC_OK;
  }
  if (kind == &lc_kind_elu) {
    Onnx__NodeProto *n = add_node(e, "Elu", path, 1, in1, out);
    OOM_IF(!n);
    attr_float(e, n, "alpha", attr_f(m, "alpha", 1.0));
    return LC_OK;
  }
  if (kind == &lc_kind_relu6 || kind == &lc_kind_hardtanh) {
    lc_dtype dt = lc_dtype_of(x);
    double lo = kind == &lc_kind_relu6 ? 0 : attr_f(m, "min_val", -1);
    double hi = kind == &lc_kind_relu6 ? 6 : attr_f(m, "max_val", 1);
    const char *ins[3] = {xn, const_scalar(e, path, lo, dt), const_scalar(e, path, hi, dt)};
    OOM_IF(!ins[1] || !ins[2] || !add_node(e, "Clip", path, 3, ins, out));
    return LC_OK;
  }
  if (kind == &lc_kind_hardswish) {
    OOM_IF(!add_node(e, "HardSwish", path, 1, in1, out));
    if (e->opset < 14) e->opset = 14;
    return LC_OK;
  }
  if (kind == &lc_kind_silu) { /* x * sigmoid(x) */
    char *s = fresh(e, path, "sigmoid");
    const char *ins[2] = {xn, s};
    OOM_IF(!s || !add_node(e, "Sigmoid", path, 1, in1, s) ||
           !add_node(e, "Mul", path, 2, ins, out));
    return LC_OK;
  }
  if (kind == &lc_kind_softplus) {
    if (attr_f(m, "beta", 1) != 1 || attr_f(m, "threshold", 20) != 20)
      return unsupported(
          path, m, "Softplus with beta or threshold other than the defaults is not supported");
    OOM_IF(!add_node(e, "Softplus", path, 1, in1, out));
    return LC_OK;
  }
  if (kind == &lc_kind_gelu) { /* erf form: x * 0.5 * (1 + erf(x / sqrt(2))) */
    char *repr = NULL;
    if (kind->extra_repr && kind->extra_repr(m, &repr) == LC_OK && repr && strstr(repr, "tanh")) {
      free(repr);
      return unsupported(path, m, "GELU(approximate='tanh') is not supported");
    }
    free(repr);
    lc_dtype dt = lc_dtype_of(x);
    char *d = fresh(e, path, "div"), *f = fresh(e, path, "erf"), *a = fresh(e, path, "add");
    char *mm = fresh(e, path, "mul");
    const char *c2 = const_scalar(e, path, 1.4142135623730951, dt),
               *c1 = const_scalar(e, path, 1, dt);
    const char *ch = const_scalar(e, path, 0.5, dt);
    OOM_IF(!d || !f || !a || !mm || !c2 || !c1 || !ch);
    const char *i1[2] = {xn, c2}, *i2[1] = {d}, *i3[2] = {f, c1}, *i4[2] = {xn, a},
               *i5[2] = {mm, ch};
    OOM_IF(!add_node(e, "Div", path, 2, i1, d) || !add_node(e, "Erf", path, 1, i2, f) ||
           !add_node(e, "Add", path, 2, i3, a) || !add_node(e, "Mul", path, 2, i4, mm) ||
           !add_node(e, "Mul", path, 2, i5, out));
    return LC_OK;
  }
  if (kind == &lc_kind_softmax || kind == &lc_kind_log_softmax) {
    Onnx__NodeProto *n =
        add_node(e, kind == &lc_kind_softmax ? "Softmax" : "LogSoftmax", path, 1, in1, out);
    OOM_IF(!n);
    attr_int(e, n, "axis", attr_i(m, "dim", -1)); /* opset 13: one axis, as torch's dim */
    return LC_OK;
  }
  if (kind == &lc_kind_linear) {
    const char *w, *b;
    if ((st = param_init(e, m, path, "weight", false, &w))) return st;
    if ((st = param_init(e, m, path, "bias", false, &b))) return st;
    if (nd == 2) {
      const char *ins[3] = {xn, w, b};
      Onnx__NodeProto *n = add_node(e, "Gemm", path, b ? 3 : 2, ins, out);
      OOM_IF(!n);
      attr_int(e, n, "transB", 1);
      return LC_OK;
    }
    char *wt = fresh(e, path, "weight_t"), *mm = b ? fresh(e, path, "matmul") : out;
    const char *i1[1] = {w}, *i2[2] = {xn, wt}, *i3[2] = {mm, b};
    OOM_IF(!wt || !mm);
    Onnx__NodeProto *t = add_node(e, "Transpose", path, 1, i1, wt);
    OOM_IF(!t || !add_node(e, "MatMul", path, 2, i2, mm) ||
           (b && !add_node(e, "Add", path, 2, i3, out)));
    return LC_OK;
  }
  if (kind == &lc_kind_flatten) {
    int64_t s = attr_i(m, "start_dim", 1), en = attr_i(m, "end_dim", -1);
    if (s < 0) s += nd;
    if (en < 0) en += nd;
    if (s == 1 && en == nd - 1) {
      Onnx__NodeProto *n = add_node(e, "Flatten", path, 1, in1, out);
      OOM_IF(!n);
      attr_int(e, n, "axis", 1);
      return LC_OK;
    }
    /* Reshape: 0 copies a dim (the batch stays dynamic), -1 takes the flattened ones */
    int64_t shape[LC_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < nd; i++) {
      if (i < s)
        shape[k++] = 0;
      else if (i == s)
        shape[k++] = -1;
      else if (i > en)
        shape[k++] = lc_shape(x)[i];
    }
    if (nd == 0) shape[k++] = 1;
    const char *ins[2] = {xn, const_ints(e, path, k, shape)};
    OOM_IF(!ins[1] || !add_node(e, "Reshape", path, 2, ins, out));
    return LC_OK;
  }
  int64_t ks[2];
  lc_conv_opts co;
  if (lc_nn_conv_info(m, ks, &co)) {
    int sd = nd - 2;
    if (sd < 1 || sd > 2) return unsupported(path, m, "input must be batched (N, C, ...)");
    bool transposed = strstr(type, "Transpose") != NULL;
    const char *w, *b;
    if ((st = param_init(e, m, path, "weight", false, &w))) return st;
    if ((st = param_init(e, m, path, "bias", false, &b))) return st;
    int64_t pads[4], strides[2], dil[2], kern[2], opad[2];
    for (int i = 0; i < sd; i++) {
      kern[i] = ks[i];
      strides[i] = co.stride[i];
      dil[i] = co.dilation[i];
      opad[i] = co.output_padding[i];
      int64_t p0 = co.padding[i], p1 = co.padding[i];
      if (co.same) { /* PyTorch: the odd element of the total padding goes after */
        int64_t total = co.dilation[i] * (ks[i] - 1);
        p0 = total / 2;
        p1 = total - p0;
      } else if (co.valid) {
        p0 = p1 = 0;
      }
      pads[i] = p0;
      pads[i + sd] = p1;
    }
    const char *cx = xn;
    if (co.padding_mode != LC_PAD_CONSTANT) { /* explicit Pad node, then no conv padding */
      if (co.padding_mode == LC_PAD_CIRCULAR)
        return unsupported(path, m, "padding_mode 'circular' is not supported");
      int64_t pp[2 * (LC_MAX_DIMS)] = {0};
      for (int i = 0; i < sd; i++) {
        pp[2 + i] = pads[i];
        pp[nd + 2 + i] = pads[i + sd];
        pads[i] = pads[i + sd] = 0;
      }
      char *pn = fresh(e, path, "pad");
      const char *pins[2] = {xn, const_ints(e, path, 2 * nd, pp)};
      OOM_IF(!pn || !pins[1]);
      Onnx__NodeProto *pnode = add_node(e, "Pad", path, 2, pins, pn);
      OOM_IF(!pnode);
      Onnx__AttributeProto *a =
          add_attr(e, pnode, "mode", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
      OOM_IF(!a);
      const char *mode = co.padding_mode == LC_PAD_REFLECT ? "reflect" : "edge";
      a->has_s = 1;
      a->s.data = (uint8_t *)mode;
      a->s.len = strlen(mode);
      cx = pn;
    }
    const char *ins[3] = {cx, w, b};
    Onnx__NodeProto *n =
        add_node(e, transposed ? "ConvTranspose" : "Conv", path, b ? 3 : 2, ins, out);
    OOM_IF(!n);
    attr_ints(e, n, "kernel_shape", sd, kern);
    attr_ints(e, n, "strides", sd, strides);
    attr_ints(e, n, "pads", 2 * sd, pads);
    attr_ints(e, n, "dilations", sd, dil);
    attr_int(e, n, "group", co.groups);
    if (transposed) attr_ints(e, n, "output_padding", sd, opad);
    return LC_OK;
  }
  lc_pool_opts po;
  int64_t os[2];
  bool ri;
  if (lc_nn_pool_info(m, &po, os, &ri)) {
    int sd = nd - 2;
    if (sd < 1 || sd > 2) return unsupported(path, m, "input must be batched (N, C, ...)");
    if (ri) return unsupported(path, m, "return_indices is not supported");
    bool is_max = strstr(type, "Max") != NULL;
    int64_t kern[2], strides[2], pads[4], dil[2];
    if (strstr(type, "Adaptive")) {
      bool global = true, even = true;
      for (int i = 0; i < sd; i++) {
        int64_t in = lc_shape(x)[2 + i], o = os[i] < 0 ? in : os[i];
        global = global && o == 1;
        even = even && in % o == 0;
        kern[i] = strides[i] = in / (o ? o : 1);
        pads[i] = pads[i + sd] = 0;
        dil[i] = 1;
      }
      if (global) {
        OOM_IF(!add_node(e, is_max ? "GlobalMaxPool" : "GlobalAveragePool", path, 1, in1, out));
        return LC_OK;
      }
      if (!even)
        return unsupported(
            path, m, "adaptive pooling to a size that does not divide the input is not supported");
    } else {
      for (int i = 0; i < sd; i++) {
        kern[i] = po.kernel_size[i];
        strides[i] = po.stride[i];
        pads[i] = pads[i + sd] = po.padding[i];
        dil[i] = po.dilation[i];
      }
    }
    Onnx__NodeProto *n = add_node(e, is_max ? "MaxPool" : "AveragePool", path, 1, in1, out);
    OOM_IF(!n);
    attr_ints(e, n, "kernel_shape", sd, kern);
    attr_ints(e, n, "strides", sd, strides);
    attr_ints(e, n, "pads", 2 * sd, pads);
    if (po.ceil_mode && !strstr(type, "Adaptive")) attr_int(e, n, "ceil_mode", 1);
    if (is_max) {
      bool dilated = false;
      for (int i = 0; i < sd; i++)
        dilated = dilated || dil[i] != 1;
      if (dilated) attr_ints(e, n, "dilations", sd, dil);
    } else if (!strstr(type, "Adaptive")) {
      attr_int(e, n, "count_include_pad", po.count_include_pad ? 1 : 0);
    }
    return LC_OK;
  }
  if (strcmp(type, "BatchNorm1d") == 0 || strcmp(type, "BatchNorm2d") == 0) {
    if (!attr_i(m, "track_running_stats", 1))
      return unsupported(path, m, "batch norm without running statistics is not supported");
    const char *w, *b, *mean, *var;
    if ((st = param_init(e, m, path, "weight", false, &w)) ||
        (st = param_init(e, m, path, "bias", false, &b)) ||
        (st = param_init(e, m, path, "running_mean", true, &mean)) ||
        (st = param_init(e, m, path, "running_var", true, &var)))
      return st;
    int64_t c = attr_i(m, "num_features", 1);
    lc_tensor *one = NULL, *zero = NULL;
    if (!w || !b) { /* affine = false: weight 1, bias 0 */
      lc_dtype dt = lc_dtype_of(x);
      if ((st = lc_ones(1, &c, dt, &one)) || (st = lc_zeros(1, &c, dt, &zero))) {
        lc_release(one);
        return st;
      }
      char *wn = fresh(e, path, "weight"), *bn = fresh(e, path, "bias");
      if (!wn || !bn) st = lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
      if (!st) st = add_init(e, wn, one);
      if (!st) st = add_init(e, bn, zero);
      lc_release(one);
      lc_release(zero);
      if (st) return st;
      w = wn;
      b = bn;
    }
    const char *ins[5] = {xn, w, b, mean, var};
    Onnx__NodeProto *n = add_node(e, "BatchNormalization", path, 5, ins, out);
    OOM_IF(!n);
    attr_float(e, n, "epsilon", attr_f(m, "eps", 1e-5));
    return LC_OK;
  }
  if (strcmp(type, "LayerNorm") == 0) {
    const char *w, *b;
    if ((st = param_init(e, m, path, "weight", false, &w)) ||
        (st = param_init(e, m, path, "bias", false, &b)))
      return st;
    int64_t k = attr_i(m, "normalized_ndim", 1);
    if (!w) {
      int64_t shape[LC_MAX_DIMS];
      for (int64_t i = 0; i < k; i++)
        shape[i] = lc_shape(x)[nd - k + i];
      lc_tensor *one = NULL;
      char *wn = fresh(e, path, "weight");
      if ((st = lc_ones((int)k, shape, lc_dtype_of(x), &one))) return st;
      st = wn ? add_init(e, wn, one) : lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
      lc_release(one);
      if (st) return st;
      w = wn;
    }
    const char *ins[3] = {xn, w, b};
    Onnx__NodeProto *n = add_node(e, "LayerNormalization", path, b ? 3 : 2, ins, out);
    OOM_IF(!n);
    attr_int(e, n, "axis", -k);
    attr_float(e, n, "epsilon", attr_f(m, "eps", 1e-5));
    if (e->opset < 17) e->opset = 17;
    return LC_OK;
  }
  if (strcmp(type, "Embedding") == 0) {
    const char *w;
    if ((st = param_init(e, m, path, "weight", false, &w))) return st;
    const char *ins[2] = {w, xn};
    OOM_IF(!add_node(e, "Gather", path, 2, ins, out));
    return LC_OK;
  }
  return unsupported(path, m,
                     "this module kind has no ONNX export (built-in layers and Sequential only)");
}

/* x through m (a container or a leaf) at path. *y: the result (owned), *yn its value name. */
static lc_status emit(exporter *e, lc_module *m, const char *path, const char *xn,
                      const lc_tensor *x, const char **yn, lc_tensor **y) {
  const lc_module_kind *kind = lc_module_kind_of(m);
  if (kind == &lc_kind_sequential || kind == &lc_kind_module_list) { /* chains */
    lc_named_modules ch = {0};
    lc_status st = lc_module_named_children(m, &ch);
    if (st) return st;
    lc_tensor *cur = lc_retain((lc_tensor *)x);
    const char *cn = xn;
    for (int64_t i = 0; i < ch.n && !st; i++) {
      char *cp = path[0] ? arena_fmt(&e->a, "%s.%s", path, ch.names[i])
                         : arena_fmt(&e->a, "%s%s", ch.names[i], NULL);
      lc_tensor *next = NULL;
      if (!cp)
        st = lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
      else
        st = emit(e, ch.modules[i], cp, cn, cur, &cn, &next);
      lc_release(cur);
      cur = next;
    }
    lc_named_modules_free(&ch);
    if (st) {
      lc_release(cur);
      return st;
    }
    *yn = cn;
    *y = cur;
    return LC_OK;
  }
  if (kind->flags & (LC_KIND_CONTAINER | LC_KIND_NOT_CALLABLE))
    return unsupported(path, m, "only Sequential containers can be exported");
  lc_status st = emit_leaf(e, m, path, xn, x, yn);
  if (st) return st;
  /* the leaf's own forward: the next module's input, and the output's shape */
  return lc_module_forward(m, x, y);
}

static Onnx__ValueInfoProto *value_info(exporter *e, const char *name, const lc_tensor *t,
                                        bool dynamic_batch) {
  Onnx__ValueInfoProto *vi = arena_alloc(&e->a, sizeof *vi);
  Onnx__TypeProto *tp = arena_alloc(&e->a, sizeof *tp);
  Onnx__TypeProto__Tensor *tt = arena_alloc(&e->a, sizeof *tt);
  Onnx__TensorShapeProto *sh = arena_alloc(&e->a, sizeof *sh);
  int nd = lc_ndim(t);
  Onnx__TensorShapeProto__Dimension **dims =
      arena_alloc(&e->a, (size_t)(nd ? nd : 1) * sizeof *dims);
  if (!vi || !tp || !tt || !sh || !dims) return NULL;
  onnx__value_info_proto__init(vi);
  onnx__type_proto__init(tp);
  onnx__type_proto__tensor__init(tt);
  onnx__tensor_shape_proto__init(sh);
  vi->name = (char *)name;
  vi->type = tp;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  tt->has_elem_type = 1;
  tt->elem_type = ox_dtype_to_onnx(lc_dtype_of(t));
  tt->shape = sh;
  sh->n_dim = (size_t)nd;
  sh->dim = dims;
  for (int i = 0; i < nd; i++) {
    Onnx__TensorShapeProto__Dimension *d = arena_alloc(&e->a, sizeof *d);
    if (!d) return NULL;
    onnx__tensor_shape_proto__dimension__init(d);
    if (i == 0 && dynamic_batch) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = "batch";
    } else {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = lc_shape(t)[i];
    }
    dims[i] = d;
  }
  return vi;
}

lc_status lc_onnx_export(lc_module *m, const lc_tensor *example, const char *path,
                         const lc_onnx_export_opts *opts) {
  if (!m || !example || !path) return lc_set_error(LC_EARG, "lc_onnx_export: NULL argument");
  bool dynamic_batch = !(opts && opts->static_batch) && lc_ndim(example) > 0;
  lc_status st = lc_file_check("lc_onnx_export", path, LC_FILE_WRITE);
  if (st) return st;
  exporter e;
  memset(&e, 0, sizeof e);
  e.opset = 13;
  bool training = lc_module_is_training(m), grad = lc_set_grad_enabled(false);
  lc_module_train(m, false); /* exported as for inference, as torch.onnx.export does */
  const char *yn = NULL;
  lc_tensor *y = NULL;
  st = emit(&e, m, "", "input", example, &yn, &y);
  lc_module_train(m, training);
  lc_set_grad_enabled(grad);
  Onnx__ValueInfoProto *vin = NULL, *vout = NULL;
  if (!st && y && strcmp(yn, "input") == 0) { /* an empty model: one Identity */
    char *o = fresh(&e, "", "Identity");
    const char *ins[1] = {"input"};
    if (!o || !add_node(&e, "Identity", "", 1, ins, o))
      st = lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
    yn = o;
  }
  if (!st) {
    /* the graph's output is renamed "output" */
    for (size_t i = 0; i < e.n_nodes; i++)
      if (strcmp(e.nodes[i]->output[0], yn) == 0) e.nodes[i]->output[0] = "output";
    vin = value_info(&e, "input", example, dynamic_batch);
    vout = value_info(&e, "output", y,
                      dynamic_batch && lc_ndim(y) > 0 && lc_shape(y)[0] == lc_shape(example)[0]);
    if (!vin || !vout || e.a.oom) st = lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
  }
  lc_release(y);
  if (!st) {
    Onnx__GraphProto g;
    Onnx__ModelProto mp;
    Onnx__OperatorSetIdProto ops;
    Onnx__OperatorSetIdProto *opsp[1] = {&ops};
    Onnx__ValueInfoProto *ins[1] = {vin}, *outs[1] = {vout};
    onnx__graph_proto__init(&g);
    onnx__model_proto__init(&mp);
    onnx__operator_set_id_proto__init(&ops);
    ops.domain = "";
    ops.has_version = 1;
    ops.version = e.opset;
    g.name = "lucid";
    g.n_node = e.n_nodes;
    g.node = e.nodes;
    g.n_initializer = e.n_inits;
    g.initializer = e.inits;
    g.n_input = 1;
    g.input = ins;
    g.n_output = 1;
    g.output = outs;
    mp.has_ir_version = 1;
    mp.ir_version = 8;
    mp.producer_name = "lucid";
    mp.producer_version = LUCID_VERSION;
    mp.n_opset_import = 1;
    mp.opset_import = opsp;
    mp.graph = &g;
    size_t n = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
      st = lc_set_error(LC_ENOMEM, "lc_onnx_export: out of memory");
    else {
      onnx__model_proto__pack(&mp, buf);
      /* written next to path, then renamed over it: never a half-written model */
      size_t plen = strlen(path) + 8;
      char *tmp = malloc(plen);
      FILE *f = tmp ? (snprintf(tmp, plen, "%s.tmp", path), fopen(tmp, "wb")) : NULL;
      if (!f)
        st = lc_set_error(LC_EIO, "lc_onnx_export: cannot write '%s'", path);
      else {
        bool ok = fwrite(buf, 1, n, f) == n;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) {
          remove(tmp);
          st = lc_set_error(LC_EIO, "lc_onnx_export: writing '%s' failed", path);
        }
      }
      free(tmp);
      free(buf);
    }
  }
  for (size_t i = 0; i < e.a.n; i++)
    free(e.a.p[i]);
  free(e.a.p);
  free(e.nodes);
  free(e.inits);
  return st;
}
