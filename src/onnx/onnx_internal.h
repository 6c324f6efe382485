/*
 * onnx_internal.h - the ONNX runtime's pieces: the prepared graph, the op table's row type and
 * the helpers op implementations share. Above the C API (lucid.h): ops here are built from
 * lucid's public ops, as a C host would.
 */
#ifndef LUCID_ONNX_INTERNAL_H
#define LUCID_ONNX_INTERNAL_H

#include "lucid.h"
#include "lucid_onnx.h"
#include "onnx.pb-c.h"

#include <stdint.h>

/* Opsets 1 to 6 load too; their one semantic lucid does not run, the legacy `broadcast = 1`
 * attribute of the elementwise ops and Gemm, is refused per node (load.c). */
#define OX_MIN_OPSET 1
#define OX_MAX_OPSET 17

typedef struct ox_node ox_node;

/* What an op implementation sees: the node, its opset, its inputs (NULL for an omitted
 * optional one) and its output slots (to fill with owned tensors; an output the graph does
 * not use may be left NULL). */
typedef struct ox_ctx {
  const ox_node *node;
  int opset;
  int n_in;
  lc_tensor *const *in;
  int n_out;
  lc_tensor **out;
} ox_ctx;

typedef lc_status (*ox_run_fn)(ox_ctx *c);

/* One row of the op table (src/onnx/op_list.h). */
typedef struct ox_op {
  const char *name;
  ox_run_fn run;
  int min_inputs, max_inputs; /* max -1: variadic */
  int max_outputs;
  bool deterministic; /* false: never folded (random ops) */
} ox_op;

/* Every op function of the table. */
#include "op_list.h"
#define OX_DECLARE_(Name, fn, mini, maxi, maxo, det) lc_status fn(ox_ctx *c);
OX_OP_LIST(OX_DECLARE_)
#undef OX_DECLARE_

const ox_op *ox_find_op(const char *op_type);
/* Every row, for listing (NULL-terminated by count). */
int ox_op_count(void);
const ox_op *ox_op_at(int i);

/* A fused node's extra state (set by the fusion pass, read by the op). */
typedef enum ox_fusion {
  OX_FUSE_NONE = 0,
  OX_FUSE_LINEAR,  /* MatMul [+ Add] or Gemm: lc_linear(in[0], fused_weight, fused_bias) */
  OX_FUSE_WEIGHTS, /* the op itself with inputs (in[0], fused_weight, fused_bias): Conv + BN */
  OX_FUSE_GELU,    /* x / sqrt 2 -> Erf -> + 1 -> * x -> * 0.5 (PyTorch's GELU): lc_gelu(in[0]) */
  OX_FUSE_LAYER_NORM, /* PyTorch's layer_norm over the last dim as exported before opset 17:
                       * lc_layer_norm(in[0], fused_weight, fused_bias, fused_eps) */
} ox_fusion;

struct ox_node {
  const Onnx__NodeProto *proto; /* attributes, names */
  const ox_op *op;
  int n_in, n_out;
  int *in;  /* value ids; -1: omitted optional input */
  int *out; /* value ids; -1: omitted optional output */
  ox_fusion fusion;
  lc_tensor *fused_weight, *fused_bias; /* owned (bias may be NULL) */
  double fused_eps;                     /* OX_FUSE_LAYER_NORM's epsilon */
  bool relu_after;                      /* apply Relu to the result (fused Conv/linear + Relu) */
  bool clip_after;                      /* clamp the result to [clip_lo, clip_hi] (+ Clip) */
  double clip_lo, clip_hi;
  bool dead; /* removed by folding or fusion */
};

/* A value (an edge of the graph): a graph input, an initializer, a constant or a node's output. */
typedef struct ox_value {
  const char *name;
  lc_tensor *constant; /* owned; set for initializers and folded values */
  bool is_input, is_output, is_param;
  int producer; /* node index, -1 for inputs and constants */
  int last_use; /* the last node (in run order) reading it; -1: none */
  int n_uses;
} ox_value;

struct lc_onnx_model {
  Onnx__ModelProto *proto;
  ProtobufCAllocator *alloc; /* owns the parsed message's memory */
  int opset;
  int n_values;
  ox_value *values;
  int n_nodes;
  ox_node *nodes; /* in run (topological) order */
  int n_inputs, n_outputs;
  int *inputs, *outputs; /* value ids */
  /* declared input types */
  lc_dtype *input_dtype;
  int *input_ndim; /* -1: rank not declared */
  int64_t (*input_dims)[LC_MAX_DIMS];
  int64_t n_params;
  int *params; /* value ids of the initializers still in use */
  char *dir;   /* external data directory */
  lc_onnx_opts opts;
};

/* ---------------------------------------------------------------- attributes (attr.c) */

const Onnx__AttributeProto *ox_attr(const ox_node *n, const char *name);
int64_t ox_attr_int(const ox_node *n, const char *name, int64_t def);
double ox_attr_float(const ox_node *n, const char *name, double def);
/* The string attribute (not NUL-terminated in the file: copied into buf, cap bytes), or def. */
const char *ox_attr_string(const ox_node *n, const char *name, const char *def, char *buf,
                           size_t cap);
/* The ints attribute: its count (-1 when absent) and values (borrowed). */
int64_t ox_attr_ints(const ox_node *n, const char *name, const int64_t **vals);
int64_t ox_attr_floats(const ox_node *n, const char *name, const float **vals);

/* ---------------------------------------------------------------- tensors (tensor.c) */

/* A TensorProto as a new tensor; dir: where external data lives (NULL: no external data). */
lc_status ox_tensor_from_proto(const Onnx__TensorProto *tp, const char *dir, int64_t max_bytes,
                               lc_tensor **out);
/* ONNX data type code -> lucid dtype (LC_EDTYPE naming the type when lucid has none). */
lc_status ox_dtype_from_onnx(int32_t onnx_type, lc_dtype *out);
int32_t ox_dtype_to_onnx(lc_dtype dt);
const char *ox_onnx_type_name(int32_t onnx_type);

/* ---------------------------------------------------------------- helpers for ops (util.c) */

/* The int64 values of a 1-D (or 0-dim) integer tensor input into vals (up to cap), count in *n. */
lc_status ox_read_ints(const lc_tensor *t, const char *what, int64_t *vals, int cap, int *n);
/* Wraps an ONNX axis (negative from the end) into [0, rank). */
lc_status ox_axis(int64_t axis, int rank, const char *what, int *out);
/* out = f(x, p) elementwise in x's dtype: float32 directly, every other number dtype through
 * float64 (converted back at the end); bool is refused. For ops lucid has no kernel for. */
typedef double (*ox_scalar_fn)(double x, const double *p);
lc_status ox_map_scalar(const ox_ctx *c, const lc_tensor *x, ox_scalar_fn f, const double *p,
                        lc_tensor **out);
/* An owned int64 1-D tensor from values. */
lc_status ox_int_tensor(int n, const int64_t *vals, lc_tensor **out);
/* Sets the failing node's error (prefixing "node 'name' (Op, opset N): ") and returns st. */
lc_status ox_node_error(const ox_ctx *c, lc_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The node's name for messages: its name, else "#<index> <first output>". */
const char *ox_node_label(const ox_node *n);

/* ---------------------------------------------------------------- graph (graph.c, run.c) */

lc_status ox_run_node(const lc_onnx_model *m, const ox_node *n, lc_tensor *const *in,
                      lc_tensor **out);

#endif /* LUCID_ONNX_INTERNAL_H */
