/*
 * lucid_onnx.h - running ONNX models (as torch.onnx.export writes them) on lucid's kernels.
 *
 * A model is parsed with protobuf-c over the ONNX project's schema (third_party/onnx), checked
 * (opsets 1 to 17 of the default domain, every node's op known, no cycles, every value
 * defined before it is used), then prepared once: nodes whose inputs are all constant are
 * folded, shapes are inferred (shapes that cannot fit are an LC_ESHAPE error at load, a Shape
 * of a known shape folds), Conv + BatchNormalization are folded into one Conv, MatMul + Add and
 * Gemm become one linear op, and each value is released right after its last use so its
 * memory is reused.
 * lc_onnx_run then executes the prepared graph with lucid's ops (no Lua involved).
 *
 * Conventions as in lucid_core.h: lc_status results with lc_last_error(), 0-based positions,
 * outputs owned by the caller, arguments borrowed. Messages name the node ("node 'conv1'
 * (Conv, opset 13): ..."). A hostile file gets an LC_EFORMAT error, never a crash: its size,
 * nesting depth, tensor sizes and graph size are bounded (lc_onnx_opts).
 */
#ifndef LUCID_ONNX_H
#define LUCID_ONNX_H

#include "lucid_core.h"
#include "lucid_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lc_onnx_model lc_onnx_model;

typedef struct lc_onnx_opts {
  /* Float initializers become parameters: leaf tensors that require grad, listed by
   * lc_onnx_parameter, so the model can be fine-tuned. Folding that would hide them is off. */
  bool trainable;
  /* Skip the fusions (Conv + BatchNormalization, MatMul + Add, Gemm as linear); constant
   * folding still runs. For checking the fusions against the plain graph. */
  bool no_fusion;
  /* Where external data files are looked up; NULL: the model file's directory (for
   * lc_onnx_load_buffer: the current directory). */
  const char *external_data_dir;
  /* Limits against hostile files; 0 takes the default. */
  int64_t max_file_bytes; /* the model file and each external data file: 4 GiB */
  int64_t max_nodes;      /* nodes in the graph: 1,000,000 */
  int max_nesting;        /* protobuf message nesting: 64 */
} lc_onnx_opts;

/* Reads, checks and prepares the model at path (opts may be NULL for the defaults). */
lc_status lc_onnx_load(const char *path, const lc_onnx_opts *opts, lc_onnx_model **out);
/* The same from bytes in memory (copied as needed; data may be freed afterwards). */
lc_status lc_onnx_load_buffer(const void *data, size_t size, const lc_onnx_opts *opts,
                              lc_onnx_model **out);
void lc_onnx_free(lc_onnx_model *m); /* NULL-safe */

/* The graph's inputs (initializers excluded) and outputs, in graph order. */
int lc_onnx_num_inputs(const lc_onnx_model *m);
int lc_onnx_num_outputs(const lc_onnx_model *m);
const char *lc_onnx_input_name(const lc_onnx_model *m, int i);  /* NULL when out of range */
const char *lc_onnx_output_name(const lc_onnx_model *m, int i); /* NULL when out of range */
/* What the model declares for input i: its dtype and shape, a dynamic dimension (a symbolic
 * name such as "batch", or none) as -1. dims has room for LC_MAX_DIMS entries. */
lc_status lc_onnx_input_info(const lc_onnx_model *m, int i, lc_dtype *dtype, int *ndim,
                             int64_t *dims);
/* The opset of the default domain the model was written for. */
int lc_onnx_opset(const lc_onnx_model *m);
/* Nodes in the file, and nodes a run executes after folding and fusion. */
int lc_onnx_num_nodes(const lc_onnx_model *m, bool prepared);

/* Runs the model: inputs[i] for graph input i (n_inputs == lc_onnx_num_inputs; dtype and rank
 * as declared, fixed dimensions equal), outputs[j] receives owned tensors (n_outputs ==
 * lc_onnx_num_outputs). With trainable parameters and grad mode on, outputs carry autograd
 * history. Several threads may run one model at once. */
lc_status lc_onnx_run(lc_onnx_model *m, int n_inputs, const lc_tensor *const *inputs, int n_outputs,
                      lc_tensor **outputs);

/* The initializers (trainable or not), by their ONNX names; the tensor is borrowed (the model
 * owns it). Folded or fused initializers are not listed. */
int64_t lc_onnx_num_parameters(const lc_onnx_model *m);
lc_status lc_onnx_parameter(const lc_onnx_model *m, int64_t i, const char **name,
                            lc_tensor **tensor);

/* ---------------------------------------------------------------- export */

typedef struct lc_onnx_export_opts {
  bool static_batch; /* false (default): the first dim of the input and output is "batch" */
} lc_onnx_export_opts;

/* Writes m, a model of lucid's built-in modules (Sequential containers of Linear, Conv1d/2d,
 * ConvTranspose2d, pools, BatchNorm1d/2d, LayerNorm, Embedding, Flatten, Dropout (as Identity)
 * and the activations), to path as an ONNX model (opset 13; 14 with Hardswish, 17 with
 * LayerNorm), running example through it to learn the shapes. The input is named "input",
 * the output "output"; initializers carry the modules' paths ("0.weight"). Exported for
 * inference (m runs in eval mode meanwhile; its mode is restored). A module it cannot write
 * is an LC_EARG error naming its path and type. The file is written whole or not at all. */
lc_status lc_onnx_export(lc_module *m, const lc_tensor *example, const char *path,
                         const lc_onnx_export_opts *opts);

/* One serialized TensorProto (the .pb files of ONNX's tests) read as a tensor. */
lc_status lc_onnx_read_tensor(const char *path, lc_tensor **out);
lc_status lc_onnx_parse_tensor(const void *data, size_t size, lc_tensor **out);

#ifdef __cplusplus
}
#endif

#endif /* LUCID_ONNX_H */
