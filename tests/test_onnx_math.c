/* test_onnx_math.c - the math family's ONNX ops on the cases ONNX's node tests leave out:
 * integer Div and Mod at 0 and at the int64 limits, Cast wrapping to the narrow integer types,
 * BitShift past the width, Hardmax ties, Softmax's opset-11 coercion to 2-D, Clip's opset-7
 * attributes, and malformed nodes (an omitted required input, a slope that does not broadcast)
 * that must be errors, never crashes. Each model is one node, written here as protobuf bytes
 * (a few field writers: no generated code needed) and loaded with lc_onnx_load_buffer. */
#include "test.h"

#include "lucid_onnx.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- a tiny protobuf writer */

typedef struct pb {
  uint8_t b[2048];
  size_t n;
} pb;

static void pb_varint(pb *p, uint64_t v) {
  while (v >= 0x80 && p->n < sizeof p->b) {
    p->b[p->n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  if (p->n < sizeof p->b) p->b[p->n++] = (uint8_t)v;
}

static void pb_bytes(pb *p, int field, const void *data, size_t len) {
  pb_varint(p, (uint64_t)field << 3 | 2);
  pb_varint(p, len);
  if (p->n + len <= sizeof p->b) {
    memcpy(p->b + p->n, data, len);
    p->n += len;
  }
}

static void pb_str(pb *p, int field, const char *s) { pb_bytes(p, field, s, strlen(s)); }
static void pb_msg(pb *p, int field, const pb *m) { pb_bytes(p, field, m->b, m->n); }

static void pb_int(pb *p, int field, uint64_t v) {
  pb_varint(p, (uint64_t)field << 3);
  pb_varint(p, v);
}

static void pb_float(pb *p, int field, float f) {
  pb_varint(p, (uint64_t)field << 3 | 5);
  if (p->n + 4 <= sizeof p->b) {
    memcpy(p->b + p->n, &f, 4);
    p->n += 4;
  }
}

/* ONNX's TensorProto.DataType codes used here */
enum { T_FLOAT = 1, T_UINT8 = 2, T_INT8 = 3, T_INT32 = 6, T_INT64 = 7, T_BOOL = 9 };

/* ValueInfoProto: name, tensor type elem_type with a shape of nd dims. */
static void value_info(pb *graph, int field, const char *name, int elem, int nd,
                       const int64_t *dims) {
  pb shape = {0}, tensor = {0}, type = {0}, vi = {0};
  for (int i = 0; i < nd; i++) {
    pb dim = {0};
    pb_int(&dim, 1, (uint64_t)dims[i]);
    pb_msg(&shape, 1, &dim);
  }
  pb_int(&tensor, 1, (uint64_t)elem);
  if (nd >= 0) pb_msg(&tensor, 2, &shape); /* nd < 0: no shape declared */
  pb_msg(&type, 1, &tensor);
  pb_str(&vi, 1, name);
  pb_msg(&vi, 2, &type);
  pb_msg(graph, field, &vi);
}

/* One attribute: an int (is_float false) or a float, or a string when s is non-NULL. */
typedef struct attr {
  const char *name;
  bool is_float;
  double v;
  const char *s;
} attr;

typedef struct io {
  const char *name; /* "" in a node's input list: omitted */
  int elem;
  int nd;
  int64_t dims[4];
} io;

/* A model of one node `op` at `opset`: graph inputs ins (those with a name), node inputs
 * node_in (n_node_in names), output y of type out_elem. */
static lc_onnx_model *one_node(const char *op, int opset, int n_in, const io *ins, int n_node_in,
                               const char *const *node_in, int out_elem, int n_attr,
                               const attr *attrs) {
  pb node = {0}, graph = {0}, model = {0}, opset_id = {0};
  for (int i = 0; i < n_node_in; i++)
    pb_str(&node, 1, node_in[i]);
  pb_str(&node, 2, "y");
  pb_str(&node, 3, "n");
  pb_str(&node, 4, op);
  for (int i = 0; i < n_attr; i++) {
    pb a = {0};
    pb_str(&a, 1, attrs[i].name);
    if (attrs[i].s) {
      pb_str(&a, 4, attrs[i].s);
      pb_int(&a, 20, 3);
    } else if (attrs[i].is_float) {
      pb_float(&a, 2, (float)attrs[i].v);
      pb_int(&a, 20, 1);
    } else {
      pb_int(&a, 3, (uint64_t)(int64_t)attrs[i].v);
      pb_int(&a, 20, 2);
    }
    pb_msg(&node, 5, &a);
  }
  pb_msg(&graph, 1, &node);
  pb_str(&graph, 2, "g");
  for (int i = 0; i < n_in; i++)
    value_info(&graph, 11, ins[i].name, ins[i].elem, ins[i].nd, ins[i].dims);
  value_info(&graph, 12, "y", out_elem, -1, NULL);
  pb_int(&model, 1, 8); /* ir_version */
  pb_int(&opset_id, 2, (uint64_t)opset);
  pb_msg(&model, 8, &opset_id);
  pb_msg(&model, 7, &graph);
  lc_onnx_model *m = NULL;
  if (lc_onnx_load_buffer(model.b, model.n, NULL, &m)) return NULL;
  return m;
}

/* Runs m on the given inputs; the output (owned) or NULL with the error kept. */
static lc_tensor *run1(lc_onnx_model *m, int n, lc_tensor *const *in) {
  lc_tensor *y = NULL;
  if (!m || lc_onnx_run(m, n, (const lc_tensor *const *)in, 1, &y)) return NULL;
  return y;
}

static bool values_are(const lc_tensor *t, int64_t n, const double *want) {
  if (!t || lc_numel(t) != n) return false;
  double *v = test_values(t);
  bool ok = v != NULL;
  for (int64_t i = 0; ok && i < n; i++)
    ok = v[i] == want[i] || (v[i] != v[i] && want[i] != want[i]);
  free(v);
  return ok;
}

static lc_tensor *vec(lc_dtype dt, int64_t n, const void *data) {
  lc_tensor *t = NULL;
  int64_t shape[1] = {n};
  lc_from_data(1, shape, dt, data, &t);
  return t;
}

/* A binary op over two 1-D inputs of n elements. */
static lc_tensor *binary_op(const char *op, int opset, int elem, lc_tensor *a, lc_tensor *b,
                            int n_attr, const attr *attrs) {
  int64_t n = lc_numel(a);
  io ins[2] = {{"a", elem, 1, {n}}, {"b", elem, 1, {n}}};
  const char *names[2] = {"a", "b"};
  lc_onnx_model *m = one_node(op, opset, 2, ins, 2, names, elem, n_attr, attrs);
  lc_tensor *in[2] = {a, b};
  lc_tensor *y = run1(m, 2, in);
  lc_onnx_free(m);
  return y;
}

/* ---------------------------------------------------------------- tests */

TEST(onnx_math_integer_div_exact) {
  int32_t a[6] = {16777217, -7, 7, 5, 9, -9};
  int32_t b[6] = {1, 2, -2, 0, 3, 4};
  double want[6] = {16777217, -3, -3, 0, 3, -2}; /* truncated; x / 0 is 0 */
  lc_tensor *ta = vec(LC_INT32, 6, a), *tb = vec(LC_INT32, 6, b);
  lc_tensor *y = binary_op("Div", 14, T_INT32, ta, tb, 0, NULL);
  CHECK(y && lc_dtype_of(y) == LC_INT32);
  CHECK(values_are(y, 6, want));
  lc_release(y);
  lc_release(ta);
  lc_release(tb);
}

TEST(onnx_math_mod_signs_and_zero) {
  int64_t a[5] = {-7, 7, 5, INT64_MIN, -4};
  int64_t b[5] = {3, -3, 0, -1, 2};
  double py[5] = {2, -2, 0, 0, 0}; /* fmod 0: the divisor's sign */
  double c[5] = {-1, 1, 0, 0, 0};  /* fmod 1: the dividend's sign */
  lc_tensor *ta = vec(LC_INT64, 5, a), *tb = vec(LC_INT64, 5, b);
  lc_tensor *y = binary_op("Mod", 13, T_INT64, ta, tb, 0, NULL);
  CHECK(values_are(y, 5, py));
  lc_release(y);
  attr f = {"fmod", false, 1, NULL};
  y = binary_op("Mod", 13, T_INT64, ta, tb, 1, &f);
  CHECK(values_are(y, 5, c));
  lc_release(y);
  lc_release(ta);
  lc_release(tb);
  float fa[2] = {-5.5f, 5.5f}, fb[2] = {2, -2};
  double fw[2] = {-1.5, 1.5};
  ta = vec(LC_FLOAT32, 2, fa);
  tb = vec(LC_FLOAT32, 2, fb);
  y = binary_op("Mod", 13, T_FLOAT, ta, tb, 1, &f);
  CHECK(values_are(y, 2, fw));
  lc_release(y);
  lc_release(ta);
  lc_release(tb);
}

TEST(onnx_math_bitshift_past_the_width) {
  int32_t a[3] = {1, 3, 255}, b[3] = {70, 1, 4};
  double left[3] = {0, 6, 4080}, right[3] = {0, 1, 15};
  lc_tensor *ta = vec(LC_INT32, 3, a), *tb = vec(LC_INT32, 3, b);
  attr l = {"direction", false, 0, "LEFT"}, r = {"direction", false, 0, "RIGHT"};
  lc_tensor *y = binary_op("BitShift", 11, T_UINT8, ta, tb, 1, &l);
  CHECK(values_are(y, 3, left));
  lc_release(y);
  y = binary_op("BitShift", 11, T_UINT8, ta, tb, 1, &r);
  CHECK(values_are(y, 3, right));
  lc_release(y);
  attr bad = {"direction", false, 0, "UP"};
  y = binary_op("BitShift", 11, T_UINT8, ta, tb, 1, &bad);
  CHECK(y == NULL && strstr(lc_last_error(), "not supported"));
  lc_release(ta);
  lc_release(tb);
}

/* Cast to int8 / uint8 wraps as a C cast does (lucid holds them as int32). */
TEST(onnx_math_cast_wraps_narrow_types) {
  float x[4] = {300.7f, -129.2f, 127.9f, -1.5f};
  lc_tensor *t = vec(LC_FLOAT32, 4, x);
  io in = {"x", T_FLOAT, 1, {4}};
  const char *names[1] = {"x"};
  attr to8 = {"to", false, T_INT8, NULL}, tou8 = {"to", false, T_UINT8, NULL};
  lc_onnx_model *m = one_node("Cast", 13, 1, &in, 1, names, T_INT8, 1, &to8);
  lc_tensor *y = run1(m, 1, &t);
  double w8[4] = {44, 127, 127, -1};
  CHECK(y && lc_dtype_of(y) == LC_INT32 && values_are(y, 4, w8));
  lc_release(y);
  lc_onnx_free(m);
  m = one_node("Cast", 13, 1, &in, 1, names, T_UINT8, 1, &tou8);
  y = run1(m, 1, &t);
  double wu8[4] = {44, 127, 127, 255};
  CHECK(values_are(y, 4, wu8));
  lc_release(y);
  lc_onnx_free(m);
  attr tostr = {"to", false, 8, NULL}; /* STRING */
  m = one_node("Cast", 13, 1, &in, 1, names, 8, 1, &tostr);
  y = run1(m, 1, &t);
  CHECK(y == NULL && strstr(lc_last_error(), "not supported"));
  lc_onnx_free(m);
  lc_release(t);
}

/* Softmax before opset 13 runs over the input flattened to 2-D at axis; from 13 along axis. */
TEST(onnx_math_softmax_opset_semantics) {
  float x[4] = {0, 1, 2, 3};
  int64_t shape[2] = {2, 2};
  lc_tensor *t = NULL;
  CHECK_OK(lc_from_data(2, shape, LC_FLOAT32, x, &t));
  io in = {"x", T_FLOAT, 2, {2, 2}};
  const char *names[1] = {"x"};
  attr ax0 = {"axis", false, 0, NULL};
  lc_onnx_model *m11 = one_node("Softmax", 11, 1, &in, 1, names, T_FLOAT, 1, &ax0);
  lc_onnx_model *m13 = one_node("Softmax", 13, 1, &in, 1, names, T_FLOAT, 1, &ax0);
  lc_tensor *y11 = run1(m11, 1, &t), *y13 = run1(m13, 1, &t);
  CHECK(y11 && y13);
  if (y11 && y13) {
    double *a = test_values(y11), *b = test_values(y13);
    double s = exp(0) + exp(1) + exp(2) + exp(3);
    CHECK_NEAR(a[3], exp(3) / s, 1e-6);                 /* one row of 4 */
    CHECK_NEAR(b[3], exp(3) / (exp(1) + exp(3)), 1e-6); /* along dim 0 */
    free(a);
    free(b);
  }
  lc_release(y11);
  lc_release(y13);
  lc_onnx_free(m11);
  lc_onnx_free(m13);
  attr ax5 = {"axis", false, 5, NULL};
  lc_onnx_model *bad = one_node("LogSoftmax", 13, 1, &in, 1, names, T_FLOAT, 1, &ax5);
  CHECK(bad && run1(bad, 1, &t) == NULL && lc_last_status() == LC_EINDEX);
  lc_onnx_free(bad);
  lc_release(t);
}

TEST(onnx_math_hardmax_first_of_ties) {
  float x[6] = {3, 1, 3, 2, 5, 5};
  int64_t shape[2] = {2, 3};
  lc_tensor *t = NULL;
  CHECK_OK(lc_from_data(2, shape, LC_FLOAT32, x, &t));
  io in = {"x", T_FLOAT, 2, {2, 3}};
  const char *names[1] = {"x"};
  lc_onnx_model *m = one_node("Hardmax", 13, 1, &in, 1, names, T_FLOAT, 0, NULL);
  lc_tensor *y = run1(m, 1, &t);
  double want[6] = {1, 0, 0, 0, 1, 0};
  CHECK(values_are(y, 6, want));
  lc_release(y);
  lc_onnx_free(m);
  lc_release(t);
}

/* Clip: min/max attributes before opset 11, optional inputs after (either may be omitted). */
TEST(onnx_math_clip_bounds_by_opset) {
  float x[3] = {-5, 0.5f, 5};
  lc_tensor *t = vec(LC_FLOAT32, 3, x);
  io in = {"x", T_FLOAT, 1, {3}};
  const char *names[1] = {"x"};
  attr mm[2] = {{"min", true, -1, NULL}, {"max", true, 1, NULL}};
  lc_onnx_model *m = one_node("Clip", 7, 1, &in, 1, names, T_FLOAT, 2, mm);
  lc_tensor *y = run1(m, 1, &t);
  double want[3] = {-1, 0.5, 1};
  CHECK(values_are(y, 3, want));
  lc_release(y);
  lc_onnx_free(m);
  float hi = 0;
  lc_tensor *th = NULL;
  CHECK_OK(lc_from_data(0, NULL, LC_FLOAT32, &hi, &th));
  io ins[2] = {{"x", T_FLOAT, 1, {3}}, {"hi", T_FLOAT, 0, {0}}};
  const char *names3[3] = {"x", "", "hi"};
  m = one_node("Clip", 13, 2, ins, 3, names3, T_FLOAT, 0, NULL);
  lc_tensor *in2[2] = {t, th};
  y = run1(m, 2, in2);
  double want2[3] = {-5, 0, 0};
  CHECK(values_are(y, 3, want2));
  lc_release(y);
  lc_onnx_free(m);
  lc_release(th);
  lc_release(t);
}

/* Malformed nodes are errors: an omitted required input, a slope that does not broadcast. */
TEST(onnx_math_malformed_nodes_are_errors) {
  float x[3] = {-1, 0, 1};
  uint8_t cond[3] = {1, 0, 1};
  lc_tensor *t = vec(LC_FLOAT32, 3, x), *tc = vec(LC_BOOL, 3, cond);
  io ins[2] = {{"c", T_BOOL, 1, {3}}, {"x", T_FLOAT, 1, {3}}};
  const char *where_in[3] = {"c", "", "x"};
  lc_onnx_model *m = one_node("Where", 16, 2, ins, 3, where_in, T_FLOAT, 0, NULL);
  lc_tensor *in[2] = {tc, t};
  (void)in; /* refused when loading: the node names the omitted input */
  CHECK(m == NULL && strstr(lc_last_error(), "a required input is omitted"));
  lc_onnx_free(m);
  const char *const unary[] = {"Abs",    "Tan",  "Softmax", "Hardmax", "Selu",
                               "Shrink", "Cast", "IsNaN",   "Not",     "Clip"};
  for (size_t k = 0; k < sizeof unary / sizeof unary[0]; k++) {
    const char *omitted[1] = {""};
    attr to = {"to", false, T_FLOAT, NULL};
    m = one_node(unary[k], 13, 1, &ins[1], 1, omitted, T_FLOAT, 1, &to);
    lc_tensor *y = m ? run1(m, 1, &t) : NULL;
    CHECK(y == NULL); /* at load (folded) or at run: an error either way */
    lc_release(y);
    lc_onnx_free(m);
  }
  float s[2] = {1, 2};
  lc_tensor *ts = vec(LC_FLOAT32, 2, s);
  io pins[2] = {{"x", T_FLOAT, 1, {3}}, {"s", T_FLOAT, 1, {2}}};
  const char *pnames[2] = {"x", "s"};
  m = one_node("PRelu", 16, 2, pins, 2, pnames, T_FLOAT, 0, NULL);
  lc_tensor *pin[2] = {t, ts};
  (void)pin; /* refused at load by shape inference: (3) and (2) do not broadcast */
  CHECK(m == NULL && strstr(lc_last_error(), "shapes that do not broadcast: (3) and (2)"));
  lc_onnx_free(m);
  lc_release(ts);
  lc_release(t);
  lc_release(tc);
}
