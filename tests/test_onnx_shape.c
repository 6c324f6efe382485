/* test_onnx_shape.c - the ONNX shape family's opset variants the node tests do not reach
 * (attributes that became inputs, older defaults) and its error paths, over one-node models
 * written by a small protobuf encoder. */
#include "lucid_onnx.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- protobuf writing */

typedef struct pbuf {
  uint8_t *p;
  size_t n, cap;
} pbuf;

static void pb_raw(pbuf *b, const void *data, size_t len) {
  if (b->n + len > b->cap) {
    size_t cap = (b->cap ? b->cap * 2 : 256) + len;
    uint8_t *p = realloc(b->p, cap);
    if (!p) abort();
    b->p = p;
    b->cap = cap;
  }
  if (len) memcpy(b->p + b->n, data, len);
  b->n += len;
}

static void pb_varint(pbuf *b, uint64_t v) {
  uint8_t tmp[10];
  int k = 0;
  do {
    tmp[k] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) tmp[k] |= 0x80;
    k++;
  } while (v);
  pb_raw(b, tmp, (size_t)k);
}

static void pb_int(pbuf *b, int field, int64_t v) {
  pb_varint(b, (uint64_t)field << 3);
  pb_varint(b, (uint64_t)v);
}

static void pb_bytes(pbuf *b, int field, const void *data, size_t len) {
  pb_varint(b, (uint64_t)field << 3 | 2);
  pb_varint(b, len);
  pb_raw(b, data, len);
}

static void pb_str(pbuf *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

/* Appends sub as a length-delimited field and frees it. */
static void pb_msg(pbuf *b, int field, pbuf *sub) {
  pb_bytes(b, field, sub->p, sub->n);
  free(sub->p);
  *sub = (pbuf){0};
}

/* ---------------------------------------------------------------- one-node models */

typedef struct attr {
  const char *name;
  int type; /* AttributeProto.AttributeType: 1 FLOAT, 2 INT, 3 STRING, 7 INTS */
  int64_t i;
  float f;
  const char *s;
  int n;
  const int64_t *ints;
} attr;

static int onnx_type(lc_dtype dt) {
  switch (dt) {
  case LC_FLOAT32: return 1;
  case LC_INT32: return 6;
  case LC_INT64: return 7;
  case LC_BOOL: return 9;
  case LC_FLOAT64: return 11;
  default: return 0;
  }
}

static void value_info(pbuf *g, int field, const char *name, const lc_tensor *t) {
  pbuf vi = {0}, tp = {0}, tt = {0};
  pb_str(&vi, 1, name);
  if (t)
    pb_int(&tt, 1, onnx_type(lc_dtype_of(t)));
  else
    pb_int(&tt, 1, 1);
  pb_msg(&tp, 1, &tt);
  pb_msg(&vi, 2, &tp);
  pb_msg(g, field, &vi);
}

/* Runs op (opset) on ins (NULL: an omitted optional input) into n_out outputs. */
static lc_status run_op(const char *op, int opset, int n_in, lc_tensor *const *ins, int n_attr,
                        const attr *attrs, int n_out, lc_tensor **outs) {
  pbuf model = {0}, graph = {0}, node = {0}, ops = {0};
  char name[16];
  for (int i = 0; i < n_in; i++) {
    snprintf(name, sizeof name, "in%d", i);
    pb_str(&node, 1, ins[i] ? name : "");
  }
  for (int j = 0; j < n_out; j++) {
    snprintf(name, sizeof name, "out%d", j);
    pb_str(&node, 2, name);
  }
  pb_str(&node, 4, op);
  for (int k = 0; k < n_attr; k++) {
    pbuf a = {0};
    pb_str(&a, 1, attrs[k].name);
    if (attrs[k].type == 1) {
      pb_varint(&a, 2 << 3 | 5);
      pb_raw(&a, &attrs[k].f, 4);
    }
    if (attrs[k].type == 2) pb_int(&a, 3, attrs[k].i);
    if (attrs[k].type == 3) pb_str(&a, 4, attrs[k].s);
    for (int m = 0; attrs[k].type == 7 && m < attrs[k].n; m++)
      pb_int(&a, 8, attrs[k].ints[m]);
    pb_int(&a, 20, attrs[k].type);
    pb_msg(&node, 5, &a);
  }
  pb_msg(&graph, 1, &node);
  pb_str(&graph, 2, "g");
  for (int i = 0; i < n_in; i++) {
    snprintf(name, sizeof name, "in%d", i);
    if (ins[i]) value_info(&graph, 11, name, ins[i]);
  }
  for (int j = 0; j < n_out; j++) {
    snprintf(name, sizeof name, "out%d", j);
    value_info(&graph, 12, name, NULL);
  }
  pb_int(&model, 1, 8);
  pb_str(&ops, 1, "");
  pb_int(&ops, 2, opset);
  pb_msg(&model, 8, &ops);
  pb_msg(&model, 7, &graph);
  lc_onnx_model *m = NULL;
  lc_status st = lc_onnx_load_buffer(model.p, model.n, NULL, &m);
  free(model.p);
  if (st) return st;
  lc_tensor *given[8];
  int k = 0;
  for (int i = 0; i < n_in; i++)
    if (ins[i]) given[k++] = ins[i];
  st = lc_onnx_run(m, k, (const lc_tensor *const *)given, n_out, outs);
  lc_onnx_free(m);
  return st;
}

static lc_tensor *vals(int nd, const int64_t *shape, lc_dtype dt, const double *v) {
  lc_tensor *a = NULL, *r = NULL;
  int64_t n = 1;
  for (int i = 0; i < nd; i++)
    n *= shape[i];
  if (lc_from_data(1, &n, LC_FLOAT64, v, &a)) return NULL;
  lc_tensor *b = NULL;
  if (!lc_to_dtype(a, dt, &b)) lc_reshape(b, nd, shape, &r);
  lc_release(a);
  lc_release(b);
  return r;
}

static lc_tensor *ints1(int n, const int64_t *v) {
  int64_t s[1] = {n};
  lc_tensor *t = NULL;
  lc_from_data(1, s, LC_INT64, v, &t);
  return t;
}

/* t has that shape and those values. */
static bool is(const lc_tensor *t, int nd, const int64_t *shape, const double *want) {
  if (!t || lc_ndim(t) != nd) return false;
  int64_t n = 1;
  for (int i = 0; i < nd; i++) {
    if (lc_shape(t)[i] != shape[i]) return false;
    n *= shape[i];
  }
  double *got = test_values(t);
  bool ok = got != NULL;
  for (int64_t i = 0; ok && i < n; i++)
    ok = fabs(got[i] - want[i]) <= 1e-6;
  free(got);
  return ok;
}

static void release_n(int n, lc_tensor **ts) {
  for (int i = 0; i < n; i++)
    lc_release(ts[i]);
}

/* ---------------------------------------------------------------- attribute forms */

TEST(onnx_shape_squeeze_unsqueeze_attr_axes) {
  int64_t s[] = {1, 2, 1}, axes[] = {0}, uaxes[] = {-1, 0};
  double v[] = {1, 2};
  lc_tensor *x = vals(3, s, LC_FLOAT32, v), *y = NULL, *z = NULL, *w = NULL;
  attr a[] = {{"axes", 7, 0, 0, NULL, 1, axes}}, ua[] = {{"axes", 7, 0, 0, NULL, 2, uaxes}};
  CHECK_OK(run_op("Squeeze", 11, 1, &x, 1, a, 1, &y));
  CHECK(is(y, 2, (int64_t[]){2, 1}, v));
  CHECK_OK(run_op("Squeeze", 11, 1, &x, 0, NULL, 1, &z)); /* no axes: every size-1 dim */
  CHECK(is(z, 1, (int64_t[]){2}, v));
  CHECK_OK(run_op("Unsqueeze", 11, 1, &x, 1, ua, 1, &w));
  CHECK(is(w, 5, (int64_t[]){1, 1, 2, 1, 1}, v));
  release_n(4, (lc_tensor *[]){x, y, z, w});
}

TEST(onnx_shape_split_attr_and_equal) {
  int64_t s[] = {2, 3}, split[] = {1, 2};
  double v[] = {0, 1, 2, 3, 4, 5};
  lc_tensor *x = vals(2, s, LC_FLOAT32, v), *o[2] = {NULL, NULL}, *e[3] = {NULL, NULL, NULL};
  attr a[] = {{"axis", 2, 1, 0, NULL, 0, NULL}, {"split", 7, 0, 0, NULL, 2, split}};
  CHECK_OK(run_op("Split", 11, 1, &x, 2, a, 2, o));
  CHECK(is(o[0], 2, (int64_t[]){2, 1}, (double[]){0, 3}));
  CHECK(is(o[1], 2, (int64_t[]){2, 2}, (double[]){1, 2, 4, 5}));
  CHECK_OK(run_op("Split", 13, 1, &x, 1, a, 3, e)); /* equal parts of the 3 columns */
  CHECK(is(e[2], 2, (int64_t[]){2, 1}, (double[]){2, 5}));
  lc_tensor *bad[2] = {NULL, NULL}, *in[2] = {x, ints1(2, (int64_t[]){1, 1})};
  CHECK_STATUS(run_op("Split", 13, 2, in, 1, a, 2, bad), LC_ESHAPE); /* 1 + 1 != 3 */
  CHECK(bad[0] == NULL && bad[1] == NULL);
  lc_release(in[1]);
  release_n(1, &x);
  release_n(2, o);
  release_n(3, e);
}

TEST(onnx_shape_slice_attrs_and_negative_steps) {
  int64_t s[] = {2, 3}, st[] = {1}, en[] = {100}, ax[] = {-1};
  double v[] = {0, 1, 2, 3, 4, 5};
  lc_tensor *x = vals(2, s, LC_FLOAT32, v), *y = NULL, *z = NULL;
  attr a[] = {{"starts", 7, 0, 0, NULL, 1, st},
              {"ends", 7, 0, 0, NULL, 1, en},
              {"axes", 7, 0, 0, NULL, 1, ax}};
  CHECK_OK(run_op("Slice", 9, 1, &x, 3, a, 1, &y));
  CHECK(is(y, 2, (int64_t[]){2, 2}, (double[]){1, 2, 4, 5}));
  lc_tensor *in[5] = {x, ints1(1, (int64_t[]){-1}), ints1(1, (int64_t[]){INT64_MIN}),
                      ints1(1, (int64_t[]){1}), ints1(1, (int64_t[]){-2})};
  CHECK_OK(run_op("Slice", 13, 5, in, 0, NULL, 1, &z));
  CHECK(is(z, 2, (int64_t[]){2, 2}, (double[]){2, 0, 5, 3}));
  lc_tensor *zero = ints1(1, (int64_t[]){0}), *w = NULL;
  lc_tensor *in0[5] = {x, in[1], in[2], in[3], zero};
  CHECK_STATUS(run_op("Slice", 13, 5, in0, 0, NULL, 1, &w), LC_EARG);
  release_n(5, in);
  release_n(4, (lc_tensor *[]){y, z, zero, w});
}

TEST(onnx_shape_pad_attr_and_modes) {
  int64_t s[] = {1, 2}, pads[] = {1, 0, 0, 1};
  lc_tensor *x = vals(2, s, LC_FLOAT32, (double[]){1, 2}), *y = NULL, *z = NULL, *w = NULL;
  attr a[] = {{"pads", 7, 0, 0, NULL, 4, pads}, {"value", 1, 0, 9.0f, NULL, 0, NULL}};
  CHECK_OK(run_op("Pad", 10, 1, &x, 2, a, 1, &y));
  CHECK(is(y, 2, (int64_t[]){2, 3}, (double[]){9, 9, 9, 1, 2, 9}));
  int64_t s3[] = {1, 3};
  lc_tensor *r = vals(2, s3, LC_FLOAT32, (double[]){1, 2, 3});
  lc_tensor *in[2] = {r, ints1(4, (int64_t[]){0, 2, 0, 2})};
  attr refl[] = {{"mode", 3, 0, 0, "reflect", 0, NULL}}, bad[] = {{"mode", 3, 0, 0, "x", 0, NULL}};
  CHECK_OK(run_op("Pad", 11, 2, in, 1, refl, 1, &z));
  CHECK(is(z, 2, (int64_t[]){1, 7}, (double[]){3, 2, 1, 2, 3, 2, 1}));
  CHECK_STATUS(run_op("Pad", 11, 2, in, 1, bad, 1, &w), LC_EARG);
  CHECK(strstr(lc_last_error(), "not supported") != NULL);
  release_n(2, in);
  release_n(5, (lc_tensor *[]){x, y, z, w, NULL});
}

TEST(onnx_shape_topk_argmax_older_opsets) {
  int64_t s[] = {3};
  lc_tensor *x = vals(1, s, LC_FLOAT32, (double[]){1, 5, 5}), *o[2] = {NULL, NULL};
  lc_tensor *a1 = NULL, *a2 = NULL;
  attr k[] = {{"k", 2, 2, 0, NULL, 0, NULL}};
  CHECK_OK(run_op("TopK", 9, 1, &x, 1, k, 2, o));
  CHECK(is(o[0], 1, (int64_t[]){2}, (double[]){5, 5}));
  CHECK(is(o[1], 1, (int64_t[]){2}, (double[]){1, 2}));
  attr keep0[] = {{"keepdims", 2, 0, 0, NULL, 0, NULL},
                  {"select_last_index", 2, 1, 0, NULL, 0, NULL}};
  CHECK_OK(run_op("ArgMax", 11, 1, &x, 1, keep0, 1, &a1)); /* first index */
  CHECK(is(a1, 0, NULL, (double[]){1}));
  CHECK_OK(run_op("ArgMax", 12, 1, &x, 2, keep0, 1, &a2)); /* last index */
  CHECK(is(a2, 0, NULL, (double[]){2}));
  release_n(5, (lc_tensor *[]){x, o[0], o[1], a1, a2});
}

TEST(onnx_shape_depth_to_space_scatter_old) {
  int64_t s[] = {1, 4, 1, 1}, sd[] = {2, 2};
  lc_tensor *x = vals(4, s, LC_FLOAT32, (double[]){0, 1, 2, 3}), *y = NULL, *z = NULL;
  attr b[] = {{"blocksize", 2, 2, 0, NULL, 0, NULL}};
  CHECK_OK(run_op("DepthToSpace", 9, 1, &x, 1, b, 1, &y));
  CHECK(is(y, 4, (int64_t[]){1, 1, 2, 2}, (double[]){0, 1, 2, 3}));
  lc_tensor *in[3] = {vals(2, sd, LC_FLOAT32, (double[]){1, 2, 3, 4}),
                      vals(2, sd, LC_INT64, (double[]){1, -2, 0, 0}),
                      vals(2, sd, LC_FLOAT32, (double[]){7, 8, 9, 9})};
  attr ax[] = {{"axis", 2, 1, 0, NULL, 0, NULL}};
  CHECK_OK(run_op("Scatter", 9, 3, in, 1, ax, 1, &z));
  CHECK(is(z, 2, sd, (double[]){8, 7, 9, 4}));
  release_n(3, in);
  release_n(3, (lc_tensor *[]){x, y, z});
}

TEST(onnx_shape_unique_unsorted) {
  int64_t s[] = {6};
  lc_tensor *x = vals(1, s, LC_FLOAT32, (double[]){2, 1, 1, 3, 4, 3}), *o[4] = {0};
  attr a[] = {{"sorted", 2, 0, 0, NULL, 0, NULL}};
  CHECK_OK(run_op("Unique", 11, 1, &x, 1, a, 4, o));
  CHECK(is(o[0], 1, (int64_t[]){4}, (double[]){2, 1, 3, 4}));
  CHECK(is(o[1], 1, (int64_t[]){4}, (double[]){0, 1, 3, 4}));
  CHECK(is(o[2], 1, (int64_t[]){6}, (double[]){0, 1, 1, 2, 3, 2}));
  CHECK(is(o[3], 1, (int64_t[]){4}, (double[]){1, 2, 2, 1}));
  release_n(1, &x);
  release_n(4, o);
}

/* ---------------------------------------------------------------- errors, not crashes */

TEST(onnx_shape_index_errors) {
  int64_t s[] = {2, 3};
  double v[] = {0, 1, 2, 3, 4, 5};
  lc_tensor *x = vals(2, s, LC_FLOAT32, v), *y = NULL;
  lc_tensor *g[2] = {x, ints1(1, (int64_t[]){-3})};
  CHECK_STATUS(run_op("Gather", 13, 2, g, 0, NULL, 1, &y), LC_EINDEX);
  CHECK(y == NULL);
  lc_tensor *nd[2] = {x, ints1(2, (int64_t[]){0, 3})};
  CHECK_STATUS(run_op("GatherND", 13, 2, nd, 0, NULL, 1, &y), LC_EINDEX);
  lc_tensor *sq[2] = {x, ints1(1, (int64_t[]){1})};
  CHECK_STATUS(run_op("Squeeze", 13, 2, sq, 0, NULL, 1, &y), LC_ESHAPE);
  lc_tensor *rs[2] = {x, ints1(3, (int64_t[]){1, 1, 1})};
  attr ax[] = {{"batch_axis", 2, 0, 0, NULL, 0, NULL}, {"time_axis", 2, 1, 0, NULL, 0, NULL}};
  CHECK_STATUS(run_op("ReverseSequence", 10, 2, rs, 2, ax, 1, &y), LC_ESHAPE);
  lc_tensor *oh[3] = {ints1(1, (int64_t[]){0}), ints1(1, (int64_t[]){0}),
                      ints1(2, (int64_t[]){0, 1})};
  CHECK_STATUS(run_op("OneHot", 11, 3, oh, 0, NULL, 1, &y), LC_EARG);
  CHECK(y == NULL);
  release_n(1, &x);
  release_n(1, g + 1);
  release_n(1, nd + 1);
  release_n(1, sq + 1);
  release_n(1, rs + 1);
  release_n(3, oh);
}

TEST(onnx_shape_range_shape_edges) {
  lc_tensor *in[3] = {NULL, NULL, NULL}, *y = NULL, *z = NULL, *w = NULL;
  CHECK_OK(lc_scalar(0, LC_INT64, &in[0]));
  CHECK_OK(lc_scalar(-7, LC_INT64, &in[1]));
  CHECK_OK(lc_scalar(-3, LC_INT64, &in[2]));
  CHECK_OK(run_op("Range", 11, 3, in, 0, NULL, 1, &y));
  CHECK(is(y, 1, (int64_t[]){3}, (double[]){0, -3, -6}));
  lc_tensor *s0 = NULL;
  CHECK_OK(lc_scalar(1, LC_FLOAT32, &s0));
  CHECK_OK(run_op("Shape", 15, 1, &s0, 0, NULL, 1, &z)); /* a 0-dim input: no dims */
  CHECK(is(z, 1, (int64_t[]){0}, NULL));
  attr se[] = {{"start", 2, -5, 0, NULL, 0, NULL}, {"end", 2, 1, 0, NULL, 0, NULL}};
  lc_tensor *x = vals(2, (int64_t[]){2, 3}, LC_FLOAT32, (double[]){0, 0, 0, 0, 0, 0});
  CHECK_OK(run_op("Shape", 15, 1, &x, 2, se, 1, &w)); /* start clamped to 0 */
  CHECK(is(w, 1, (int64_t[]){1}, (double[]){2}));
  release_n(3, in);
  release_n(5, (lc_tensor *[]){y, z, w, s0, x});
}

/* Every allocation of the core failing in turn: each run returns a status (never crashes,
 * LeakSanitizer checks the error paths free what they took), and the op then succeeds. */
typedef struct alloc_case {
  const char *op;
  int opset, n_in, n_attr, n_out;
  attr attrs[2];
} alloc_case;

TEST(onnx_shape_allocation_failures) {
  /* storages past the core's small-block pool (128 bytes), so they are real allocations */
  double xv[8 * 16], lv[8];
  for (int i = 0; i < 8 * 16; i++)
    xv[i] = (i * 7) % 11;
  for (int i = 0; i < 8; i++)
    lv[i] = i * 2;
  lc_tensor *x = vals(2, (int64_t[]){8, 16}, LC_FLOAT32, xv);
  lc_tensor *i2 = vals(2, (int64_t[]){1, 2}, LC_INT64, (double[]){1, -1});
  lc_tensor *p = ints1(4, (int64_t[]){1, 2, 0, 1}), *k = ints1(1, (int64_t[]){2});
  lc_tensor *ax = NULL, *lens = vals(1, (int64_t[]){8}, LC_INT64, lv), *u = NULL;
  lc_tensor *cond = vals(1, (int64_t[]){3}, LC_BOOL, (double[]){1, 0, 1});
  lc_tensor *depth = ints1(1, (int64_t[]){64});
  /* more inputs: slice bounds, shapes, a 4-D tensor, element indices */
  lc_tensor *st0 = ints1(1, (int64_t[]){-1}), *en0 = ints1(1, (int64_t[]){INT64_MIN});
  lc_tensor *ax1 = ints1(1, (int64_t[]){1}), *stp = ints1(1, (int64_t[]){-2});
  lc_tensor *shp = ints1(3, (int64_t[]){4, 8, 16}), *x4 = NULL, *ie = NULL, *r0 = NULL, *r1 = NULL;
  lc_tensor *r2 = NULL, *big = ints1(2, (int64_t[]){16, 16});
  CHECK_OK(lc_reshape(x, 4, (int64_t[]){1, 8, 4, 4}, &x4));
  CHECK_OK(lc_zeros(2, (int64_t[]){8, 16}, LC_INT64, &ie));
  CHECK_OK(lc_scalar(0, LC_INT32, &r0));
  CHECK_OK(lc_scalar(200, LC_INT32, &r1));
  CHECK_OK(lc_scalar(1, LC_INT32, &r2));
  CHECK_OK(lc_scalar(1, LC_INT64, &ax));
  CHECK_OK(lc_zeros(1, (int64_t[]){1}, LC_FLOAT32, &u));
  struct {
    alloc_case c;
    lc_tensor *in[5];
  } cases[] = {
      {{"Pad", 13, 2, 1, 1, {{"mode", 3, 0, 0, "reflect", 0, NULL}}}, {x, p}},
      {{"Gather", 13, 2, 1, 1, {{"axis", 2, 1, 0, NULL, 0, NULL}}}, {x, i2}},
      {{"GatherND", 13, 2, 0, 1, {{0}}}, {x, i2}},
      {{"ScatterND", 16, 3, 1, 1, {{"reduction", 3, 0, 0, "add", 0, NULL}}}, {x, i2, u}},
      {{"Unique", 11, 1, 1, 4, {{"sorted", 2, 0, 0, NULL, 0, NULL}}}, {x}},
      {{"TopK", 11, 2, 0, 2, {{0}}}, {x, k}},
      {{"CumSum",
        14,
        2,
        2,
        1,
        {{"reverse", 2, 1, 0, NULL, 0, NULL}, {"exclusive", 2, 1, 0, NULL, 0, NULL}}},
       {x, ax}},
      {{"Tile", 13, 2, 0, 1, {{0}}}, {x, ints1(2, (int64_t[]){2, 2})}},
      {{"ReverseSequence",
        10,
        2,
        2,
        1,
        {{"batch_axis", 2, 0, 0, NULL, 0, NULL}, {"time_axis", 2, 1, 0, NULL, 0, NULL}}},
       {x, lens}},
      {{"Compress", 11, 2, 1, 1, {{"axis", 2, 1, 0, NULL, 0, NULL}}}, {x, cond}},
      {{"OneHot", 11, 3, 0, 1, {{0}}}, {i2, depth, ints1(2, (int64_t[]){0, 1})}},
      {{"ArgMin", 13, 1, 1, 1, {{"select_last_index", 2, 1, 0, NULL, 0, NULL}}}, {x}},
      {{"Slice", 13, 5, 0, 1, {{0}}}, {x, st0, en0, ax1, stp}},
      {{"Split", 13, 1, 1, 2, {{"axis", 2, 1, 0, NULL, 0, NULL}}}, {x}},
      {{"Concat", 13, 2, 1, 1, {{"axis", 2, 0, 0, NULL, 0, NULL}}}, {x, x}},
      {{"Expand", 13, 2, 0, 1, {{0}}}, {x, shp}},
      {{"ConstantOfShape", 9, 1, 0, 1, {{0}}}, {big}},
      {{"Range", 11, 3, 0, 1, {{0}}}, {r0, r1, r2}},
      {{"EyeLike", 9, 1, 0, 1, {{0}}}, {x}},
      {{"Trilu", 14, 1, 0, 1, {{0}}}, {x}},
      {{"DepthToSpace",
        13,
        1,
        2,
        1,
        {{"blocksize", 2, 2, 0, NULL, 0, NULL}, {"mode", 3, 0, 0, "CRD", 0, NULL}}},
       {x4}},
      {{"SpaceToDepth", 13, 1, 1, 1, {{"blocksize", 2, 2, 0, NULL, 0, NULL}}}, {x4}},
      {{"GatherElements", 13, 2, 0, 1, {{0}}}, {x, ie}},
      {{"ScatterElements", 16, 3, 1, 1, {{"reduction", 3, 0, 0, "mul", 0, NULL}}}, {x, ie, x}},
      {{"NonZero", 13, 1, 0, 1, {{0}}}, {x}},
      {{"Transpose", 13, 1, 0, 1, {{0}}}, {x}},
  };
  int nc = (int)(sizeof cases / sizeof cases[0]), exercised = 0;
  for (int ci = 0; ci < nc; ci++) {
    const alloc_case *c = &cases[ci].c;
    lc_tensor *out[4] = {NULL};
    bool ok = false;
    int64_t n = 1;
    for (; n < 2000 && !ok; n++) {
      lc_empty_cache(); /* blocks cached by earlier tests would hide allocations */
      lc_debug_track_allocations(true);
      lc_debug_fail_allocation(n);
      lc_status st =
          run_op(c->op, c->opset, c->n_in, cases[ci].in, c->n_attr, c->attrs, c->n_out, out);
      lc_debug_fail_allocation(0);
      lc_debug_track_allocations(false);
      ok = st == LC_OK;
      if (!ok) CHECK(out[0] == NULL);
      release_n(4, out);
      for (int j = 0; j < 4; j++)
        out[j] = NULL;
    }
    if (!ok) printf("  %s never succeeded\n", c->op);
    CHECK(ok);
    exercised += n > 2; /* some runs failed before one succeeded */
    /* the inputs made in the table */
    if (strcmp(c->op, "Tile") == 0) lc_release(cases[ci].in[1]);
    if (strcmp(c->op, "OneHot") == 0) lc_release(cases[ci].in[2]);
  }
  /* views, tiny results and (after other tests) reused blocks need no new allocation */
  CHECK(exercised >= nc - 6);
  release_n(9, (lc_tensor *[]){x, i2, p, k, ax, lens, u, cond, depth});
  release_n(12, (lc_tensor *[]){st0, en0, ax1, stp, shp, x4, ie, r0, r1, r2, big, NULL});
}
