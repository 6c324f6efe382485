/*
 * elementwise.h - private interface of lucid's elementwise kernels (src/kernels/elementwise*.c)
 * shared with the public entry points in src/ops/elementwise.c.
 *
 * lc_ew() is the one driver: it broadcasts its operands (tensors or scalars), converts them to
 * the compute dtype, allocates the output and runs a per-dtype loop (contiguous fast paths with
 * restrict pointers, stride-0 scalar paths, lc_iter for the rest), split over threads with
 * lc_parallel_for when the tensor is big.
 */
#ifndef LUCID_KERNELS_ELEMENTWISE_H
#define LUCID_KERNELS_ELEMENTWISE_H

#include "op.h"

#define LC_EW_UNARY_ENUM_(CODE, NAME, GradFn, DTYPES, SAVES, COST) LC_EW_##CODE,
#define LC_EW_BINARY_ENUM_(CODE, NAME, GradFn, LOOPS, RESULT, SAVES, SAVES_SCALAR, INPLACE,    \
                           COST)                                                                   \
  LC_EW_##CODE,
#define LC_EW_UNARY_GRAD_ENUM_(CODE, NAME, GradFn, DTYPES, SAVES, COST) LC_EW_##CODE##_G,

/* Loop kernels. Unary kernels take 1 operand, binary 2, ternary 3 (lc_ew_nargs). */
typedef enum lc_ew_kernel {
  /* the unary ops of LC_UNARY_LIST (lucid_core.h): LC_EW_<CODE>, out dtype = compute dtype
   * (LOGIC rows: bool) */
  LC_UNARY_LIST(LC_EW_UNARY_ENUM_)
  LC_EW_COPY,
  LC_EW_CLAMP, /* params f[0] = lo, f[1] = hi (missing bounds: +-inf) */
  /* the binary ops of LC_BINARY_LIST: LC_EW_<CODE>, out dtype = compute dtype (BOOL rows:
   * bool) */
  LC_BINARY_LIST(LC_EW_BINARY_ENUM_)
  /* backward helpers, float dtypes only. The unary ops' gradients LC_EW_<CODE>_G: (g, s) ->
   * grad where the row saves s (IN or OUT), g -> grad where it saves NONE. */
  LC_UNARY_LIST(LC_EW_UNARY_GRAD_ENUM_)
  LC_EW_CLAMP_B,   /* lo <= x <= hi ? g : 0 (params as LC_EW_CLAMP) */
  /* ternary */
  LC_EW_WHERE,  /* (cond: bool, a, b) -> cond ? a : b; any dtype */
  LC_EW_DIV_B,  /* (g, a, b) -> -g a / b^2 */
  LC_EW_POW_BA, /* (g, a, b) -> b == 0 ? 0 : g b a^(b-1) */
  LC_EW_POW_BB, /* (g, a, b) -> (a == 0 && b >= 0) ? 0 : g a^b log(a) */
  LC_EW_MAX_B,  /* (g, a, b) -> a == b ? g/2 : (a > b ? g : 0) */
  LC_EW_MIN_B,  /* (g, a, b) -> a == b ? g/2 : (a < b ? g : 0) */
  LC_EW_KERNEL_COUNT
} lc_ew_kernel;

/* How many operands kernel k takes (0 for an invalid k). */
int lc_ew_nargs(lc_ew_kernel k);

/* One operand: a tensor (t != NULL) or a scalar s (t == NULL, 0-dim, broadcast). */
typedef struct lc_ew_arg {
  const lc_tensor *t;
  double s;
} lc_ew_arg;

/* Runs kernel k over the broadcast of args (converted to cdt; LC_EW_WHERE's condition stays
 * bool) into a new contiguous tensor of dtype rdt. f: kernel parameters (clamp bounds) or NULL.
 * `what` names the op in error messages. */
lc_status lc_ew(const char *what, lc_ew_kernel k, lc_dtype cdt, lc_dtype rdt, const double *f,
                int nargs, const lc_ew_arg *args, lc_tensor **out);

/* Result dtypes (see lucid_core.h). *cdt: dtype the computation runs in; *rdt: result dtype.
 * Fail with LC_EDTYPE (message naming `what`) for combinations the op does not take. */
lc_status lc_ew_unary_dtype(lc_unary_op op, lc_dtype x, lc_dtype *cdt, lc_dtype *rdt);
lc_status lc_ew_binary_dtype(lc_binary_op op, lc_dtype a, lc_dtype b, lc_dtype *cdt, lc_dtype *rdt);
/* a OP s / s OP a with a Lua number s: the number never widens a float tensor. */
lc_status lc_ew_scalar_dtype(lc_binary_op op, lc_dtype a, double s, lc_dtype *cdt, lc_dtype *rdt);
/* clamp: bounds are numbers (only those present count). */
lc_dtype lc_ew_clamp_dtype(lc_dtype x, bool has_lo, double lo, bool has_hi, double hi);
/* PyTorch's can_cast for in-place results: float -> int/bool and int -> bool are refused. */
bool lc_ew_can_cast(lc_dtype from, lc_dtype to);

/* copy_(dst, src) as a recordable op: inputs {dst, src}; out = src broadcast to dst's shape and
 * cast to dst's dtype. Gradient: none to dst (overwritten), sum_to(g) cast back to src. Used by
 * lc_copy_ / lc_fill_ through lc_apply_inplace when autograd is involved. */
extern const lc_op_def lc_op_copy;

#endif /* LUCID_KERNELS_ELEMENTWISE_H */
