/* test_onnx.c - the ONNX runtime from C (include/lucid_onnx.h): a PyTorch export run and checked
 * against lucid's own ops, fusions against the plain graph, and hostile models (built here
 * with protobuf-c, or as raw bytes): cycles, undefined inputs, absurd and inconsistent shapes,
 * recursion bombs, truncated and random files. Each must give a clear error, never a crash. */
#include "test.h"

#include "lucid_onnx.h"
#include "onnx.pb-c.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FIX "spec/fixtures/onnx/"

/* y = relu(x W1^T + b1) W2^T + b2 from the model's own initializers. */
static lc_tensor *mlp_reference(const lc_onnx_model *m, const lc_tensor *x) {
  lc_tensor *w[4] = {NULL};
  const char *want[4] = {"0.weight", "0.bias", "2.weight", "2.bias"};
  for (int64_t i = 0; i < lc_onnx_num_parameters(m); i++) {
    const char *name;
    lc_tensor *t;
    lc_onnx_parameter(m, i, &name, &t);
    for (int k = 0; k < 4; k++)
      if (strcmp(name, want[k]) == 0) w[k] = t;
  }
  for (int k = 0; k < 4; k++)
    if (!w[k]) return NULL;
  lc_tensor *h = NULL, *y = NULL;
  if (lc_linear(x, w[0], w[1], &h) || lc_unary_(LC_RELU, h) || lc_linear(h, w[2], w[3], &y)) {
    lc_release(h);
    return NULL;
  }
  lc_release(h);
  return y;
}

TEST(onnx_mlp_from_c) {
  lc_onnx_model *m = NULL, *plain = NULL;
  lc_onnx_opts o;
  memset(&o, 0, sizeof o);
  o.no_fusion = true; /* keeps every initializer listed (fused ones are not) */
  CHECK_OK(lc_onnx_load(FIX "mlp.onnx", NULL, &m));
  CHECK_OK(lc_onnx_load(FIX "mlp.onnx", &o, &plain));
  if (!m || !plain) return;
  CHECK(lc_onnx_num_parameters(plain) == 4 && lc_onnx_num_parameters(m) == 0);
  /* Gemm, Relu, Gemm: the Relu runs in place inside the first Gemm */
  CHECK(lc_onnx_num_nodes(m, false) == 3 && lc_onnx_num_nodes(m, true) == 2);
  CHECK(lc_onnx_num_nodes(plain, true) == 3);
  CHECK(lc_onnx_num_inputs(m) == 1 && lc_onnx_num_outputs(m) == 1);
  CHECK(strcmp(lc_onnx_input_name(m, 0), "x") == 0);
  CHECK(strcmp(lc_onnx_output_name(m, 0), "y") == 0);
  CHECK(lc_onnx_input_name(m, 1) == NULL);
  CHECK(lc_onnx_opset(m) == 13);
  lc_dtype dt;
  int nd;
  int64_t dims[LC_MAX_DIMS];
  CHECK_OK(lc_onnx_input_info(m, 0, &dt, &nd, dims));
  CHECK(dt == LC_FLOAT32 && nd == 2 && dims[0] == -1 && dims[1] == 8);
  CHECK_STATUS(lc_onnx_input_info(m, 1, &dt, &nd, dims), LC_EINDEX);
  for (int64_t batch = 1; batch <= 7; batch += 3) { /* the batch dim is dynamic */
    int64_t shape[2] = {batch, 8};
    lc_tensor *x = NULL, *y = NULL, *ref = NULL;
    CHECK_OK(lc_randn(2, shape, LC_FLOAT32, &x));
    const lc_tensor *in[1] = {x};
    CHECK_OK(lc_onnx_run(m, 1, in, 1, &y));
    ref = mlp_reference(plain, x);
    bool close = false;
    CHECK(ref && y && lc_allclose(y, ref, 1e-5, 1e-6, &close) == LC_OK && close);
    lc_release(x);
    lc_release(y);
    lc_release(ref);
  }
  /* bad calls: counts, dtype, rank, fixed dims; the model stays usable */
  int64_t bad_shape[2] = {2, 5};
  lc_tensor *bad = NULL, *y = NULL;
  CHECK_OK(lc_zeros(2, bad_shape, LC_FLOAT32, &bad));
  const lc_tensor *in[1] = {bad};
  CHECK_STATUS(lc_onnx_run(m, 1, in, 1, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "input 0 ('x'): dim 1 is 5, the model expects 8") != NULL);
  CHECK_STATUS(lc_onnx_run(m, 2, in, 1, &y), LC_EARG);
  CHECK_STATUS(lc_onnx_run(m, 1, in, 0, &y), LC_EARG);
  lc_release(bad);
  CHECK_OK(lc_zeros(2, (int64_t[]){2, 8}, LC_FLOAT64, &bad));
  in[0] = bad;
  CHECK_STATUS(lc_onnx_run(m, 1, in, 1, &y), LC_EDTYPE);
  lc_release(bad);
  CHECK(y == NULL);
  lc_onnx_free(m);
  lc_onnx_free(plain);
  lc_onnx_free(NULL);
}

TEST(onnx_external_data_and_limits) {
  lc_onnx_model *m = NULL;
  CHECK_OK(lc_onnx_load(FIX "mlp_external.onnx", NULL, &m));
  lc_onnx_free(m);
  m = NULL;
  /* the same bytes from memory: the external file is looked up where opts say */
  lc_onnx_opts o;
  memset(&o, 0, sizeof o);
  FILE *f = fopen(FIX "mlp_external.onnx", "rb");
  CHECK(f != NULL);
  if (!f) return;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  CHECK_STATUS(lc_onnx_load_buffer(buf, n, NULL, &m), LC_EARG);
  CHECK(strstr(lc_last_error(), "'mlp_external.data' needs a directory") != NULL);
  o.external_data_dir = FIX;
  CHECK_OK(lc_onnx_load_buffer(buf, n, &o, &m));
  lc_onnx_free(m);
  m = NULL;
  o.external_data_dir = NULL;
  o.max_file_bytes = 100;
  CHECK_STATUS(lc_onnx_load(FIX "mlp.onnx", &o, &m), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "the limit is 100") != NULL);
  CHECK_STATUS(lc_onnx_load(FIX "absent.onnx", NULL, &m), LC_EIO);
  CHECK(m == NULL);
}

TEST(onnx_read_tensor) {
  lc_tensor *t = NULL;
  CHECK_OK(lc_onnx_read_tensor(FIX "tensor_f32.pb", &t));
  if (t) {
    double *v = test_values(t);
    CHECK(lc_ndim(t) == 2 && lc_shape(t)[1] == 3 && v && v[5] == 1.25);
    free(v);
    lc_release(t);
  }
  CHECK_OK(lc_onnx_read_tensor(FIX "tensor_u8.pb", &t));
  if (t) {
    CHECK(lc_dtype_of(t) == LC_INT32);
    lc_release(t);
  }
  CHECK_STATUS(lc_onnx_parse_tensor("\x08", 1, &t), LC_EFORMAT);
}

/* ---------------------------------------------------------------- hostile models */

typedef struct builder {
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto opset;
  Onnx__OperatorSetIdProto *opsets[1];
  Onnx__NodeProto nodes[64];
  Onnx__NodeProto *node_ptrs[64];
  char *ins[64][3], *outs[64][1];
  Onnx__ValueInfoProto input, output;
  Onnx__ValueInfoProto *input_ptrs[1], *output_ptrs[1];
  Onnx__TensorProto init;
  Onnx__TensorProto *init_ptrs[1];
} builder;

/* A model "x" -> nodes -> "y" (nodes set by the caller), opset 13. */
static void builder_init(builder *b) {
  memset(b, 0, sizeof *b);
  onnx__model_proto__init(&b->model);
  onnx__graph_proto__init(&b->graph);
  onnx__operator_set_id_proto__init(&b->opset);
  b->opset.domain = "";
  b->opset.has_version = 1;
  b->opset.version = 13;
  b->opsets[0] = &b->opset;
  b->model.n_opset_import = 1;
  b->model.opset_import = b->opsets;
  b->model.has_ir_version = 1;
  b->model.ir_version = 8;
  b->model.graph = &b->graph;
  onnx__value_info_proto__init(&b->input);
  onnx__value_info_proto__init(&b->output);
  b->input.name = "x";
  b->output.name = "y";
  b->input_ptrs[0] = &b->input;
  b->output_ptrs[0] = &b->output;
  b->graph.n_input = 1;
  b->graph.input = b->input_ptrs;
  b->graph.n_output = 1;
  b->graph.output = b->output_ptrs;
  b->graph.node = b->node_ptrs;
}

static void add_node(builder *b, const char *op, const char *in0, const char *in1,
                     const char *out) {
  int i = (int)b->graph.n_node++;
  Onnx__NodeProto *n = &b->nodes[i];
  onnx__node_proto__init(n);
  n->op_type = (char *)op;
  b->ins[i][0] = (char *)in0;
  b->ins[i][1] = (char *)in1;
  n->n_input = in1 ? 2 : 1;
  n->input = b->ins[i];
  b->outs[i][0] = (char *)out;
  n->n_output = 1;
  n->output = b->outs[i];
  b->node_ptrs[i] = n;
}

/* Loads the built model from its packed bytes; returns the status (frees any model). */
static lc_status load_built(builder *b) {
  size_t n = onnx__model_proto__get_packed_size(&b->model);
  uint8_t *buf = malloc(n + 1);
  onnx__model_proto__pack(&b->model, buf);
  lc_onnx_model *m = NULL;
  lc_status st = lc_onnx_load_buffer(buf, n, NULL, &m);
  free(buf);
  lc_onnx_free(m);
  return st;
}

TEST(onnx_hostile_graphs) {
  builder b;
  /* the well-formed baseline */
  builder_init(&b);
  add_node(&b, "Relu", "x", NULL, "y");
  CHECK_OK(load_built(&b));
  /* a cycle: a = Relu(y), y = Relu(a) */
  builder_init(&b);
  add_node(&b, "Relu", "y", NULL, "a");
  add_node(&b, "Add", "a", "x", "y");
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "cycle") != NULL);
  /* an input nobody defines (a missing initializer) */
  builder_init(&b);
  add_node(&b, "Add", "x", "w", "y");
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "input is never defined: w") != NULL);
  /* a value defined twice */
  builder_init(&b);
  add_node(&b, "Relu", "x", NULL, "y");
  add_node(&b, "Relu", "x", NULL, "y");
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "output defined twice: y") != NULL);
  /* an output nobody produces */
  builder_init(&b);
  add_node(&b, "Relu", "x", NULL, "z");
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "graph output 'y' is never defined") != NULL);
  /* an op lucid does not run, named with its node and opset */
  builder_init(&b);
  add_node(&b, "NoSuchOp", "x", NULL, "y");
  CHECK_STATUS(load_built(&b), LC_EARG);
  CHECK(strstr(lc_last_error(), "op NoSuchOp (opset 13) is not supported") != NULL);
  /* the wrong number of inputs */
  builder_init(&b);
  add_node(&b, "Relu", "x", "x", "y");
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "2 inputs (expected 1 to 1)") != NULL);
  /* opsets above 17 */
  builder_init(&b);
  add_node(&b, "Relu", "x", NULL, "y");
  b.opset.version = 18;
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "opset 18 of the default domain is not supported") != NULL);
  /* no graph at all */
  builder_init(&b);
  b.model.graph = NULL;
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
}

TEST(onnx_hostile_initializers) {
  builder b;
  builder_init(&b);
  add_node(&b, "Add", "x", "w", "y");
  onnx__tensor_proto__init(&b.init);
  b.init.name = "w";
  b.init.has_data_type = 1;
  b.init.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  b.init_ptrs[0] = &b.init;
  b.graph.n_initializer = 1;
  b.graph.initializer = b.init_ptrs;
  float vals[3] = {1, 2, 3};
  int64_t dims[2] = {10, 0};
  b.init.n_dims = 1;
  b.init.dims = dims;
  b.init.n_float_data = 3;
  b.init.float_data = vals;
  /* data shorter than its shape */
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "holds 12 bytes of data, its shape needs 40") != NULL);
  /* absurd dims: no allocation is attempted */
  int64_t huge[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
  b.init.dims = huge;
  b.init.n_dims = 2;
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "too large") != NULL);
  int64_t negative[1] = {-4};
  b.init.dims = negative;
  b.init.n_dims = 1;
  CHECK_STATUS(load_built(&b), LC_EFORMAT);
  /* a type lucid has no dtype for */
  dims[0] = 3;
  b.init.dims = dims;
  b.init.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
  CHECK_STATUS(load_built(&b), LC_EDTYPE);
  CHECK(strstr(lc_last_error(), "STRING") != NULL);
  /* external data outside the model's directory */
  b.init.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  b.init.n_float_data = 0;
  b.init.has_data_location = 1;
  b.init.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  Onnx__StringStringEntryProto loc;
  onnx__string_string_entry_proto__init(&loc);
  loc.key = "location";
  loc.value = "../../../etc/passwd";
  Onnx__StringStringEntryProto *locs[1] = {&loc};
  b.init.n_external_data = 1;
  b.init.external_data = locs;
  lc_onnx_opts o;
  memset(&o, 0, sizeof o);
  o.external_data_dir = FIX;
  size_t n = onnx__model_proto__get_packed_size(&b.model);
  uint8_t *buf = malloc(n);
  onnx__model_proto__pack(&b.model, buf);
  lc_onnx_model *m = NULL;
  CHECK_STATUS(lc_onnx_load_buffer(buf, n, &o, &m), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "must be a path inside the model's directory") != NULL);
  free(buf);
  /* inconsistent shapes between two constants: found when folding, naming the node */
  builder_init(&b);
  add_node(&b, "MatMul", "w", "w", "y");
  onnx__tensor_proto__init(&b.init);
  b.init.name = "w";
  b.init.has_data_type = 1;
  b.init.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  float six[6] = {1, 2, 3, 4, 5, 6};
  int64_t d23[2] = {2, 3};
  b.init.n_dims = 2;
  b.init.dims = d23;
  b.init.n_float_data = 6;
  b.init.float_data = six;
  b.init_ptrs[0] = &b.init;
  b.graph.n_initializer = 1;
  b.graph.initializer = b.init_ptrs;
  CHECK(load_built(&b) != LC_OK);
  CHECK(strstr(lc_last_error(), "(MatMul, opset 13)") != NULL);
}

/* Appends a varint. */
static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t k = 0;
  do {
    p[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return k;
}

TEST(onnx_recursion_bomb) {
  /* graph { node { attribute { g: graph { node { ... } } } } }, 3000 levels deep, built from
   * the inside out: each level is a length-delimited field around the previous one */
  enum { DEPTH = 3000 };
  size_t cap = (size_t)DEPTH * 3 * 8 + 64;
  uint8_t *a = malloc(cap), *t = malloc(cap);
  size_t len = 0;
  static const uint8_t fields[3] = {(6 << 3) | 2, (5 << 3) | 2,
                                    (1 << 3) | 2}; /* g, attribute, node */
  for (int level = 0; level < DEPTH; level++)
    for (int f = 0; f < 3; f++) {
      size_t k = 0;
      t[k++] = fields[f];
      k += put_varint(t + k, len);
      memcpy(t + k, a, len);
      len += k;
      memcpy(a, t, len);
    }
  /* the model: graph (field 7) around it */
  size_t k = 0;
  t[k++] = (7 << 3) | 2;
  k += put_varint(t + k, len);
  memcpy(t + k, a, len);
  lc_onnx_model *m = NULL;
  CHECK_STATUS(lc_onnx_load_buffer(t, k + len, NULL, &m), LC_EFORMAT);
  CHECK(strstr(lc_last_error(), "nested more than 64 deep") != NULL);
  if (!strstr(lc_last_error(), "nested")) printf("  got: %s\n", lc_last_error());
  free(a);
  free(t);
}

TEST(onnx_truncated_and_random_bytes) {
  FILE *f = fopen(FIX "cnn.onnx", "rb");
  CHECK(f != NULL);
  if (!f) return;
  static uint8_t buf[16384];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  int loaded = 0;
  for (size_t cut = 0; cut < n; cut += 7) {
    lc_onnx_model *m = NULL;
    if (lc_onnx_load_buffer(buf, cut, NULL, &m) == LC_OK)
      loaded++;
    else
      CHECK(lc_last_error()[0] != '\0');
    lc_onnx_free(m);
  }
  CHECK(loaded == 0);
  /* random bytes, and random flips in a real model */
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (int round = 0; round < 400; round++) {
    static uint8_t r[2048];
    size_t len = (size_t)(round * 5 % 2048);
    for (size_t i = 0; i < len; i++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      r[i] = (uint8_t)(s >> 56);
    }
    lc_onnx_model *m = NULL;
    if (lc_onnx_load_buffer(r, len, NULL, &m) == LC_OK) lc_onnx_free(m);
    static uint8_t flipped[16384];
    memcpy(flipped, buf, n);
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    flipped[(s >> 33) % n] ^= (uint8_t)(1u << (round % 8));
    m = NULL;
    if (lc_onnx_load_buffer(flipped, n, NULL, &m) == LC_OK) lc_onnx_free(m);
  }
}

/* One model run from two threads at once (make check-tsan runs this under ThreadSanitizer). */
typedef struct run_job {
  lc_onnx_model *m;
  lc_tensor *x, *want;
  int bad;
} run_job;

static void *run_many(void *p) {
  run_job *j = p;
  for (int i = 0; i < 50; i++) {
    lc_tensor *y = NULL;
    const lc_tensor *in[1] = {j->x};
    bool close = false;
    if (lc_onnx_run(j->m, 1, in, 1, &y) || lc_allclose(y, j->want, 0, 0, &close) || !close)
      j->bad++;
    lc_release(y);
  }
  return NULL;
}

TEST(onnx_two_threads_one_model) {
  lc_onnx_model *m = NULL;
  CHECK_OK(lc_onnx_load(FIX "mlp.onnx", NULL, &m));
  if (!m) return;
  run_job jobs[2];
  pthread_t th[2];
  for (int k = 0; k < 2; k++) {
    int64_t shape[2] = {3 + k, 8};
    jobs[k] = (run_job){m, NULL, NULL, 0};
    CHECK_OK(lc_randn(2, shape, LC_FLOAT32, &jobs[k].x));
    const lc_tensor *in[1] = {jobs[k].x};
    CHECK_OK(lc_onnx_run(m, 1, in, 1, &jobs[k].want));
  }
  for (int k = 0; k < 2; k++)
    pthread_create(&th[k], NULL, run_many, &jobs[k]);
  for (int k = 0; k < 2; k++)
    pthread_join(th[k], NULL);
  for (int k = 0; k < 2; k++) {
    CHECK(jobs[k].bad == 0);
    lc_release(jobs[k].x);
    lc_release(jobs[k].want);
  }
  lc_onnx_free(m);
}

/* The memory plan: a chain of 40 Adds over a 1 MiB input runs within a few MiB, since each
 * intermediate value is freed after its last reader. */
TEST(onnx_memory_plan_frees_dead_values) {
  static builder b;
  static char names[40][16];
  builder_init(&b);
  const char *prev = "x";
  for (int i = 0; i < 40; i++) {
    snprintf(names[i], sizeof names[i], i == 39 ? "y" : "v%d", i);
    add_node(&b, "Add", prev, prev, names[i]);
    prev = names[i];
  }
  size_t n = onnx__model_proto__get_packed_size(&b.model);
  uint8_t *buf = malloc(n);
  onnx__model_proto__pack(&b.model, buf);
  lc_onnx_model *m = NULL;
  CHECK_OK(lc_onnx_load_buffer(buf, n, NULL, &m));
  free(buf);
  if (!m) return;
  int64_t shape[1] = {1 << 18}; /* 1 MiB of float32 */
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_ones(1, shape, LC_FLOAT32, &x));
  int64_t before = lc_memory_limit();
  lc_empty_cache();
  CHECK_OK(lc_set_memory_limit(lc_bytes_in_use() + ((int64_t)4 << 20))); /* 4 MiB more */
  const lc_tensor *in[1] = {x};
  CHECK_OK(lc_onnx_run(m, 1, in, 1, &y));
  lc_set_memory_limit(before);
  if (y) {
    double v;
    int64_t idx[1] = {7};
    CHECK_OK(lc_get(y, idx, &v));
    CHECK(v == 1099511627776.0); /* 2^40 */
  }
  lc_release(x);
  lc_release(y);
  lc_onnx_free(m);
}

/* Declares the builder's input "x" as float32 with the given dims (-1: dynamic). */
typedef struct typed_input {
  Onnx__TypeProto tp;
  Onnx__TypeProto__Tensor tt;
  Onnx__TensorShapeProto sh;
  Onnx__TensorShapeProto__Dimension dims[4];
  Onnx__TensorShapeProto__Dimension *dim_ptrs[4];
} typed_input;

static void type_input(builder *b, typed_input *ti, int nd, const int64_t *dims) {
  onnx__type_proto__init(&ti->tp);
  onnx__type_proto__tensor__init(&ti->tt);
  onnx__tensor_shape_proto__init(&ti->sh);
  ti->tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  ti->tp.tensor_type = &ti->tt;
  ti->tt.has_elem_type = 1;
  ti->tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  ti->tt.shape = &ti->sh;
  ti->sh.n_dim = (size_t)nd;
  ti->sh.dim = ti->dim_ptrs;
  for (int i = 0; i < nd; i++) {
    onnx__tensor_shape_proto__dimension__init(&ti->dims[i]);
    if (dims[i] >= 0) {
      ti->dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      ti->dims[i].dim_value = dims[i];
    } else {
      ti->dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      ti->dims[i].dim_param = "batch";
    }
    ti->dim_ptrs[i] = &ti->dims[i];
  }
  b->input.type = &ti->tp;
}

/* A float initializer "w" of the given shape (values 1). */
static void add_weight(builder *b, int nd, int64_t *dims, float *vals) {
  onnx__tensor_proto__init(&b->init);
  b->init.name = "w";
  b->init.has_data_type = 1;
  b->init.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  b->init.n_dims = (size_t)nd;
  b->init.dims = dims;
  size_t n = 1;
  for (int i = 0; i < nd; i++)
    n *= (size_t)dims[i];
  for (size_t i = 0; i < n; i++)
    vals[i] = 1;
  b->init.n_float_data = n;
  b->init.float_data = vals;
  b->init_ptrs[0] = &b->init;
  b->graph.n_initializer = 1;
  b->graph.initializer = b->init_ptrs;
}

/* Shape inference at load: shapes that cannot fit are an error naming the node and both
 * shapes, before any run; a dynamic dim defers the check to the run. */
TEST(onnx_shape_inference_at_load) {
  static builder b;
  static typed_input ti;
  static float vals[64];
  int64_t x23[2] = {2, 3}, w45[2] = {4, 5}, w4[1] = {4}, xdyn[2] = {-1, 3};
  builder_init(&b);
  type_input(&b, &ti, 2, x23);
  add_weight(&b, 2, w45, vals);
  add_node(&b, "MatMul", "x", "w", "y");
  CHECK_STATUS(load_built(&b), LC_ESHAPE);
  CHECK(strstr(lc_last_error(),
               "node 'y' (MatMul, opset 13): inner dims differ: (2, 3) and (4, 5)") != NULL);
  builder_init(&b);
  type_input(&b, &ti, 2, x23);
  add_weight(&b, 1, w4, vals);
  add_node(&b, "Add", "x", "w", "y");
  CHECK_STATUS(load_built(&b), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "shapes that do not broadcast: (2, 3) and (4)") != NULL);
  /* chained: the error is found two nodes down */
  builder_init(&b);
  type_input(&b, &ti, 2, x23);
  add_weight(&b, 1, w4, vals);
  add_node(&b, "Relu", "x", NULL, "r");
  add_node(&b, "Transpose", "r", NULL, "t"); /* (3, 2) */
  add_node(&b, "Mul", "t", "w", "y");
  CHECK_STATUS(load_built(&b), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "(3, 2) and (4)") != NULL);
  /* a dynamic batch: MatMul's inner dims are still known (3 vs 4) */
  builder_init(&b);
  type_input(&b, &ti, 2, xdyn);
  add_weight(&b, 2, w45, vals);
  add_node(&b, "MatMul", "x", "w", "y");
  CHECK_STATUS(load_built(&b), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "(?, 3) and (4, 5)") != NULL);
  /* Shape of a static input folds; the graph still computes the right thing */
  builder_init(&b);
  type_input(&b, &ti, 2, x23);
  add_node(&b, "Shape", "x", NULL, "s");
  add_node(&b, "Reshape", "x", "s", "y");
  size_t n = onnx__model_proto__get_packed_size(&b.model);
  uint8_t *buf = malloc(n);
  onnx__model_proto__pack(&b.model, buf);
  lc_onnx_model *m = NULL;
  CHECK_OK(lc_onnx_load_buffer(buf, n, NULL, &m));
  free(buf);
  if (m) {
    lc_tensor *x = NULL, *y = NULL;
    CHECK_OK(lc_ones(2, x23, LC_FLOAT32, &x));
    const lc_tensor *in[1] = {x};
    CHECK_OK(lc_onnx_run(m, 1, in, 1, &y));
    CHECK(y && lc_ndim(y) == 2 && lc_shape(y)[0] == 2 && lc_shape(y)[1] == 3);
    lc_release(x);
    lc_release(y);
    lc_onnx_free(m);
  }
}
