/*
 * grad_graph.h - a small builder for backward_graph functions (op.h): gradients written as
 * compositions of ops run through ctx->run, so that under create_graph they are recorded and
 * can be differentiated again.
 *
 * Errors are sticky: once a step fails, later steps return NULL and do nothing, and lc_gb_end
 * returns the first status. Every intermediate is kept by the builder and released by
 * lc_gb_end; lc_gb_grad hands a result to grad_in[i] (a new reference). So a formula reads
 * as one expression per line with no error handling in between:
 *
 *   lc_gb b = LC_GB_INIT(ctx);
 *   lc_tensor *t = lc_gb_bin(&b, LC_MUL, g, lc_gb_un(&b, LC_COS, x));
 *   lc_gb_grad(&b, 0, t, grad_in);
 *   return lc_gb_end(&b, grad_in);
 */
#ifndef LUCID_KERNELS_GRAD_GRAPH_H
#define LUCID_KERNELS_GRAD_GRAPH_H

#include "op.h"

#define LC_GB_KEEP 96 /* svd's backward (lapack.c) takes ~70 steps */

typedef struct lc_gb {
  const lc_op_ctx *ctx;
  lc_status st;
  int n;
  lc_tensor *keep[LC_GB_KEEP];
} lc_gb;

#define LC_GB_INIT(c) ((lc_gb){.ctx = (c)})

/* out[0] of op(in) (kept; other outputs released), or NULL after an error. */
lc_tensor *lc_gb_op(lc_gb *b, const lc_op_def *op, int n, lc_tensor *const *in,
                    const lc_op_args *args);
lc_tensor *lc_gb_un(lc_gb *b, lc_unary_op code, const lc_tensor *x);
lc_tensor *lc_gb_bin(lc_gb *b, lc_binary_op code, const lc_tensor *x, const lc_tensor *y);
/* x OP s, and s OP x */
lc_tensor *lc_gb_sc(lc_gb *b, lc_binary_op code, const lc_tensor *x, double s);
lc_tensor *lc_gb_rsc(lc_gb *b, lc_binary_op code, double s, const lc_tensor *x);
lc_tensor *lc_gb_where(lc_gb *b, const lc_tensor *cond, const lc_tensor *x, const lc_tensor *y);
/* where(cond, x, 0) */
lc_tensor *lc_gb_mask(lc_gb *b, const lc_tensor *cond, const lc_tensor *x);
lc_tensor *lc_gb_cast(lc_gb *b, const lc_tensor *x, lc_dtype dt);
lc_tensor *lc_gb_reshape(lc_gb *b, const lc_tensor *x, int ndim, const int64_t *shape);
lc_tensor *lc_gb_expand(lc_gb *b, const lc_tensor *x, int ndim, const int64_t *shape);
lc_tensor *lc_gb_sum_to(lc_gb *b, const lc_tensor *x, int ndim, const int64_t *shape);
lc_tensor *lc_gb_permute(lc_gb *b, const lc_tensor *x, int ndim, const int64_t *perm);
/* swaps the last two dims (a 1-D tensor is returned as is) */
lc_tensor *lc_gb_mT(lc_gb *b, const lc_tensor *x);
lc_tensor *lc_gb_matmul(lc_gb *b, const lc_tensor *x, const lc_tensor *y);
/* sum over the dims marked in red (ndim = x's), keeping them as size 1 */
lc_tensor *lc_gb_sum_keep(lc_gb *b, const lc_tensor *x, const bool *red);
/* The gradient of picking src's positions `index` along dim out of a tensor shaped m: zeros of
 * that shape with src scatter-added at index (gather's adjoint). src and index may lack dim
 * (a reduction without keepdim): it is given back as size 1 first. */
lc_tensor *lc_gb_put_back(lc_gb *b, const lc_meta *m, int dim, const lc_tensor *src,
                          const lc_tensor *index);
/* A tensor of zeros shaped like input i (no history). */
lc_tensor *lc_gb_zeros(lc_gb *b, const lc_meta *m, lc_dtype dt);
/* Keeps t (owned) in the builder; returns it (NULL, with st set, when t is NULL). */
lc_tensor *lc_gb_keep(lc_gb *b, lc_tensor *t);

/* For an op linear in its single input x (y = L x) whose backward needs no saved tensors (pad,
 * average pooling, interpolation): the gradient L^T g as one op whose own gradient is the op
 * again, so every order runs on the fused kernels. args: the op's, with any constant term
 * removed (pad's value set to 0), as used for both L^T and L. */
lc_tensor *lc_gb_linear_grad(lc_gb *b, const lc_tensor *g, const lc_op_args *args);

/* Hands t to grad_in[i] reduced to input i's shape and cast to its dtype (as a fused backward's
 * finish step). */
void lc_gb_grad(lc_gb *b, int i, const lc_tensor *t, lc_tensor **grad_in);
/* Releases the intermediates; on error also drops what was handed to grad_in (n_inputs slots
 * of ctx). Returns the first error. */
lc_status lc_gb_end(lc_gb *b, lc_tensor **grad_in);

/* The saved tensor k, or NULL after an error (sticky, like the rest). */
lc_tensor *lc_gb_saved(lc_gb *b, int k);

#endif /* LUCID_KERNELS_GRAD_GRAPH_H */
