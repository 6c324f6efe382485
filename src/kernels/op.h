/*
 * op.h - what an op is: its definition (lc_op_def: name, inputs, outputs, what backward needs,
 * forward and backward side by side), the arguments it is called with and what backward sees.
 *
 * Layer 2 of 8 (kernels: above core, below autograd; docs/CONTRIBUTING.md). There is no single
 * table file: each family defines its ops in its kernel file (elementwise.c, reduce.c, ...),
 * families with many ops generate them from one list (LC_UNARY_LIST, LC_BINARY_LIST and
 * LC_REDUCE_LIST in lucid_core.h; the activations from activation_list.h, the pointwise losses
 * from loss_list.h), and the ops are declared at the end of this header or in the family's
 * private header (activation.h, conv.h, loss.h, ...). Kernels never record graphs: the
 * autograd layer (src/autograd) calls op->forward, and, when gradients are needed, stores a
 * node that later calls op->backward. Backward functions compute gradients with plain kernel
 * calls (lc_op_run and the lc_k_* helpers below), never recording.
 *
 * Ownership: forward writes owned tensors into out[0..n_outputs-1]; backward writes owned
 * tensors (or NULL for "no gradient") into grad_in[i] for each i with ctx->needs_grad[i].
 */
#ifndef LUCID_KERNELS_OP_H
#define LUCID_KERNELS_OP_H

#include "../core/core.h"

#define LC_OP_MAX_OUTPUTS 2

/* The non-tensor arguments of one op call (copied into the graph node). */
typedef struct lc_op_args {
  int64_t i[LC_MAX_DIMS]; /* dims, a shape, a permutation, sizes, ... (op-specific) */
  int ni;
  double f[2];            /* scalars: clamp bounds, fill value, exponent, ... */
  int flags;              /* LC_ARG_* */
  lc_dtype dtype;
} lc_op_args;

enum {
  LC_ARG_KEEPDIM = 1 << 0,
  LC_ARG_HAS_LO = 1 << 1,
  LC_ARG_HAS_HI = 1 << 2,
  LC_ARG_REVERSE = 1 << 3, /* scalar on the left: s OP x */
  LC_ARG_ALL = 1 << 4,     /* reduce over all dims */
};

/* Shape and dtype of an op input, kept by the graph so backward can reduce or reshape
 * gradients without keeping the input alive. */
typedef struct lc_meta {
  int ndim;
  int64_t shape[LC_MAX_DIMS];
  lc_dtype dtype;
} lc_meta;

struct lc_op_def;

/* What backward sees. saved[] holds what forward's op asked to save, in the order of the
 * save mask: inputs by index first, then outputs. Use lc_ctx_saved() to fetch them: it checks
 * the version counter and fails with LC_EGRAD if the tensor was modified in place. */
typedef lc_status (*lc_run_fn)(const struct lc_op_def *op, int n, lc_tensor *const *in,
                               const struct lc_op_args *args, lc_tensor **out);

typedef struct lc_op_ctx {
  const struct lc_op_def *op;
  const lc_op_args *args;
  int n_inputs;
  const lc_meta *in;        /* n_inputs entries */
  const lc_meta *out;       /* the differentiable output (out[0]) */
  const bool *needs_grad;   /* n_inputs entries */
  int n_saved;
  lc_tensor *const *saved;
  const uint64_t *saved_version;
  /* How a backward runs the ops it is made of: lc_op_run normally; under create_graph, the
   * recorder (lc_apply), so the gradient it returns has a history. Only backward_graph
   * functions (and the lc_gb_* builder) use it; a fused backward calls its kernels directly. */
  lc_run_fn run;
  bool create_graph;
  /* NULL, or n_inputs entries: a non-NULL grad_dest[i] is a contiguous tensor of input i's
   * shape and dtype (a leaf's gradient buffer, lc_set_grad_buffer) that backward may fill
   * with input i's gradient, returning a new reference to it in grad_in[i]; an op that
   * ignores it returns a fresh tensor as usual. */
  lc_tensor *const *grad_dest;
} lc_op_ctx;

typedef lc_status (*lc_forward_fn)(const struct lc_op_def *op, int n, lc_tensor *const *in,
                                   const lc_op_args *args, lc_tensor **out);
typedef lc_status (*lc_backward_fn)(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                    lc_tensor **grad_in);

/* save masks */
#define LC_SAVE_IN(i) (1u << (i))        /* input i (i < 8) */
#define LC_SAVE_OUT(k) (1u << (8 + (k))) /* output k */
#define LC_SAVE_ALL_INPUTS 0xffu         /* every input (variadic ops too) */

typedef struct lc_op_def {
  const char *name;         /* "add" */
  const char *grad_fn_name; /* "AddBackward"; NULL: never differentiable */
  int n_inputs;             /* -1: variadic (cat, stack) */
  int n_outputs;            /* 1 or 2; only out[0] is differentiable */
  int code;                 /* op-family code (an lc_unary_op, lc_binary_op, ...) */
  bool is_view;             /* out[0] shares storage with in[0] */
  unsigned save;            /* what backward needs */
  lc_forward_fn forward;    /* shape rule, checks and computation */
  lc_backward_fn backward;  /* NULL: not differentiable */
  /* The backward used under create_graph (higher-order gradients): made only of ops run
   * through ctx->run (the lc_gb_* builder of grad_graph.h), so the gradients it returns are
   * differentiable. It may be backward itself when backward is already such a composition.
   * NULL on a differentiable op: create_graph through it is an LC_EGRAD error naming it. */
  lc_backward_fn backward_graph;
} lc_op_def;

/* Fetch saved tensor k (borrowed). Fails if it was modified in place since forward. */
lc_status lc_ctx_saved(const lc_op_ctx *ctx, int k, lc_tensor **t);

/* Runs op's forward without recording (for kernels and backward functions). */
lc_status lc_op_run(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *args,
                    lc_tensor **out);

/* t's values as a contiguous tensor of dtype dt: t itself (a new reference) when it already
 * is one, else a new contiguous copy (converted). */
lc_status lc_k_dense_as(const lc_tensor *t, lc_dtype dt, lc_tensor **out);
/* lc_k_dense_as in t's own dtype. */
lc_status lc_k_dense(const lc_tensor *t, lc_tensor **out);
/* Always a new contiguous copy of t converted to dt. */
lc_status lc_k_copy_as(const lc_tensor *t, lc_dtype dt, lc_tensor **out);

/* Sums grad over broadcast dims so it has shape (ndim, shape): the adjoint of broadcasting.
 * Returns a new reference (grad itself, retained, when shapes already match). */
lc_status lc_k_sum_to(const lc_tensor *grad, int ndim, const int64_t *shape, lc_tensor **out);

/* ---- the ops ----
 * Each is defined in its domain's kernel file. Families with one def per code are arrays
 * indexed by the family's enum, which its list generates: lc_unary_op, lc_binary_op and
 * lc_reduce_op in include/lucid_core.h here; lc_act_code and lc_pw_kind in the private
 * headers activation.h and loss.h. */
extern const lc_op_def lc_op_unary[LC_UNARY_COUNT];   /* elementwise.c */
extern const lc_op_def lc_op_binary[LC_BINARY_COUNT]; /* elementwise.c */
extern const lc_op_def lc_op_binary_scalar[LC_BINARY_COUNT]; /* elementwise.c, f[0] = s */
extern const lc_op_def lc_op_clamp;                   /* elementwise.c */
extern const lc_op_def lc_op_where;                   /* elementwise.c */
extern const lc_op_def lc_op_cast;                    /* elementwise.c, args.dtype */
extern const lc_op_def lc_op_clone;                   /* elementwise.c (also contiguous) */
extern const lc_op_def lc_op_reduce[LC_REDUCE_COUNT]; /* reduce.c, one per LC_REDUCE_LIST row */
/* The ARGS column of LC_REDUCE_LIST per op: the options a reduction takes (reduce.c). */
enum { LC_RA_DIMS, LC_RA_DIMS_REQ, LC_RA_CORRECTION, LC_RA_P };
extern const unsigned char lc_reduce_args[LC_REDUCE_COUNT];
extern const lc_op_def lc_op_max_dim, lc_op_min_dim;  /* reduce.c: out[1] = indices */
extern const lc_op_def lc_op_argmax, lc_op_argmin;    /* reduce.c */
extern const lc_op_def lc_op_matmul;                  /* linalg.c */
extern const lc_op_def lc_op_view;      /* shape.c: args.i = shape (view, reshape, squeeze,
                                           unsqueeze, flatten: all "a new shape") */
extern const lc_op_def lc_op_permute;   /* shape.c: args.i = perm */
extern const lc_op_def lc_op_expand;    /* shape.c: args.i = shape */
extern const lc_op_def lc_op_slice;     /* shape.c: i = {dim, start, end, step} */
extern const lc_op_def lc_op_select;    /* shape.c: i = {dim, index} */
extern const lc_op_def lc_op_cat;       /* join.c: i[0] = dim, variadic */
extern const lc_op_def lc_op_index_select; /* index.c: i[0] = dim */
extern const lc_op_def lc_op_gather;       /* index.c */
extern const lc_op_def lc_op_scatter;      /* index.c */
extern const lc_op_def lc_op_scatter_add;  /* index.c */
extern const lc_op_def lc_op_masked_fill;  /* index.c: f[0] = value */
extern const lc_op_def lc_op_masked_select; /* index.c */
extern const lc_op_def lc_op_nonzero;       /* index.c */
extern const lc_op_def lc_op_scatter_reduce; /* advindex.c: i = {dim, lc_sr_reduce, include_self} */
/* shape.c: in[1] = geometry {ndim, offset, shape..., strides...} (int64) of a view of a
 * contiguous tensor shaped like in[0]: as_strided copies that view out; as_strided_scatter(base,
 * src, geom) writes src into it (autograd through in-place writes into views) */
extern const lc_op_def lc_op_as_strided, lc_op_as_strided_scatter;
extern const lc_op_def
    lc_op_sum_to; /* sum_to.c: args.i = the target shape (lc_k_sum_to as an op) */
/* rearrange.c: elements moved, never computed on */
extern const lc_op_def lc_op_tril, lc_op_triu; /* i[0] = diagonal */
extern const lc_op_def lc_op_flip;             /* i[0..ni-1] = dims */
extern const lc_op_def lc_op_roll;  /* i[d] = shift along dim d; LC_ARG_ALL: i[0], flattened */
extern const lc_op_def lc_op_rot90; /* i = {k, dim0, dim1} */
extern const lc_op_def lc_op_repeat_interleave; /* in[1] = repeats; i[0] = dim or LC_ARG_ALL */
/* its adjoint, the segment sum: in = {g, repeats}, i[1] = the repeated dim's size */
extern const lc_op_def lc_op_repeat_interleave_backward;

/* shape.c: strides that view t as `shape`, or false when its layout forbids it. */
bool lc_shape_view_strides(const lc_tensor *t, int ndim, const int64_t *shape, int64_t *strides);

extern const lc_op_def lc_op_cumsum;        /* scan.c: i = {dim, has_dtype}, dtype */
extern const lc_op_def lc_op_cumprod;       /* scan.c: i = {dim, has_dtype}, dtype */
extern const lc_op_def lc_op_logcumsumexp;  /* scan.c: i[0] = dim */
/* sort.c: i[0] = dim, i[1] = k, i[2] = descending / largest, i[3] = sorted; out[1] = indices */
extern const lc_op_def lc_op_sort, lc_op_argsort, lc_op_topk;
extern const lc_op_def lc_op_kthvalue, lc_op_median_dim, lc_op_mode; /* LC_ARG_KEEPDIM */
extern const lc_op_def lc_op_median; /* sort.c: over all elements, one output */

#endif /* LUCID_KERNELS_OP_H */
