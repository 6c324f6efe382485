/*
 * lucid_core.h - the public C API of lucid's core: tensors, ops, autograd.
 *
 * No Lua here. C programs include "lucid.h", which includes this header and the rest of the C
 * API (modules, layers, losses, optimizers, checkpoints).
 *
 * Conventions (they hold for every function below unless it says otherwise):
 *   - Every dimension and index is 0-based. Negative dims count from the end (-1 is the last).
 *   - Functions that can fail return an lc_status. LC_OK is 0. On failure a message describing
 *     the fault is available from lc_last_error() (thread-local, valid until the next failing
 *     call on the same thread). Nothing in the core exits, aborts or longjmps.
 *   - Functions producing a tensor write it to their last argument `lc_tensor **out` and only on
 *     success. The caller owns that reference and must lc_release() it. On failure *out is left
 *     untouched.
 *   - Tensor arguments are borrowed: the callee takes its own reference if it keeps one.
 *   - Tensors are refcounted (lc_retain / lc_release). Views share a refcounted storage. Both
 *     counts are atomic, so tensors may be passed between threads; mutating one tensor from two
 *     threads at once is the caller's race.
 *   - Ops record an autograd graph when grad mode is on (per thread, on by default) and an input
 *     requires grad.
 */
#ifndef LUCID_CORE_API_H
#define LUCID_CORE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUCID_VERSION "0.1.0"
#define LC_MAX_DIMS 16

/* ---------------------------------------------------------------- dtypes and status */

typedef enum lc_dtype {
  LC_FLOAT32 = 0, /* default */
  LC_FLOAT64,
  LC_INT32,
  LC_INT64,
  LC_BOOL,     /* stored as one byte, 0 or 1 */
  LC_FLOAT16,  /* IEEE half (torch.float16 / torch.half), computed in float32 */
  LC_BFLOAT16, /* brain float (torch.bfloat16), computed in float32 */
  LC_DTYPE_COUNT
} lc_dtype;

typedef enum lc_status {
  LC_OK = 0,
  LC_EARG,    /* a bad argument value (e.g. negative size, unknown option) */
  LC_ESHAPE,  /* shapes that do not fit together */
  LC_EDTYPE,  /* a dtype the op does not take */
  LC_EINDEX,  /* an index or dim out of range */
  LC_ENOMEM,  /* allocation failed */
  LC_EGRAD,   /* autograd misuse (freed graph, modified saved tensor, missing seed, ...) */
  LC_EIO,     /* file could not be read or written */
  LC_EFORMAT, /* malformed file contents */
  LC_ESTATE   /* an object used in the wrong state */
} lc_status;

const char *lc_dtype_name(lc_dtype dt);                 /* "float32", ... */
lc_status lc_dtype_from_name(const char *name, lc_dtype *out);
size_t lc_dtype_size(lc_dtype dt);                      /* bytes per element */
bool lc_dtype_is_float(lc_dtype dt);                    /* float16/bfloat16 included */
bool lc_dtype_is_half(lc_dtype dt);                     /* float16 or bfloat16 */
const char *lc_status_name(lc_status st);               /* "LC_ESHAPE", ... */

/* The message of the last failure on this thread ("" if none), dims and indices 0-based. */
const char *lc_last_error(void);
lc_status lc_last_status(void);

/* Positions in messages and printed forms. Every dim, index or position a message (or a
 * module's printed form) shows is written between two LC_POS_MARK bytes by the core, e.g.
 * lc_set_error(st, "dim " LC_POS_D " out of range", d): lc_last_error() and the printed forms
 * of the C API show them 0-based, without the marks. A binding whose users count from 1 renders
 * the marked text with lc_render_positions(text, 1, ...): a marked value v >= 0 becomes v + 1,
 * a negative one (a dim counted from the end: the same in both bases) stays. This is the one
 * way 0-based numbers reach 1-based users (src/lua/args.c's lb_core_error uses it). */
#define LC_POS_MARK "\x1f"
#define LC_POS_D LC_POS_MARK "%d" LC_POS_MARK       /* an int position */
#define LC_POS_I LC_POS_MARK "%lld" LC_POS_MARK     /* a long long position (cast int64_t) */
/* A long long position that is never counted from the end: shown + base even when negative
 * (a module path's "-1" is a 1-based "0"). */
#define LC_POS_ABS LC_POS_MARK "+%lld" LC_POS_MARK
/* The last failure's message with its position marks (for lc_render_positions). */
const char *lc_last_error_marked(void);
/* Writes text with every marked position shown in base (0 or 1) and the marks removed into
 * buf (cap bytes, always terminated when cap > 0); returns buf. buf may be text itself (the
 * result is never longer). */
char *lc_render_positions(const char *text, int base, char *buf, size_t cap);
/* The dim and index rules every op applies, with their messages (marked, so a binding shows
 * them in its users' base): a dim in [-ndim, ndim) (a 0-dim tensor takes 0 and -1, as in
 * PyTorch), an index into a dim of `size` in [-size, size); a negative one counts from the
 * end. Each wraps its value to [0, n) or sets LC_EINDEX "<what>: dim/index ... out of range
 * ... (expected ...)". */
lc_status lc_wrap_dim(int *dim, int ndim, const char *what);
lc_status lc_wrap_dim64(int64_t dim, int ndim, const char *what, int *out); /* any int64 dim */
lc_status lc_wrap_index(int64_t *index, int64_t size, int dim, const char *what);
/* Sets the thread's last error (printf-style) and returns st; used by layers above the core. */
lc_status lc_set_error(lc_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------- tensors */

typedef struct lc_tensor lc_tensor;

lc_tensor *lc_retain(lc_tensor *t);   /* returns t; NULL-safe */
void lc_release(lc_tensor *t);        /* NULL-safe */

int lc_ndim(const lc_tensor *t);
const int64_t *lc_shape(const lc_tensor *t);   /* ndim entries; borrowed */
const int64_t *lc_strides(const lc_tensor *t); /* in elements; borrowed */
int64_t lc_offset(const lc_tensor *t);         /* in elements, into the storage */
int64_t lc_numel(const lc_tensor *t);
lc_dtype lc_dtype_of(const lc_tensor *t);
bool lc_is_contiguous(const lc_tensor *t);
/* Address of element (0, ..., 0). Writing through it bypasses autograd's version counter:
 * call lc_bump_version() afterwards if the tensor may have been saved for backward. */
void *lc_data(const lc_tensor *t);
/* Every value of the int64 or int32 index tensor idx lies in [0, size) (no wrapping, as in
 * PyTorch's gather/scatter/index_select); else LC_EINDEX naming the first bad one by its
 * position: "<what>: index[i, j] = v out of range for dim d of size n (expected 0..n-1)". */
lc_status lc_check_indices(const lc_tensor *idx, int64_t size, int dim, const char *what);
/* "[i, j]": element `flat` (row-major) of a tensor of that shape, each coordinate marked
 * (LC_POS_I: shown 0-based by lc_last_error, 1-based by the Lua binding); "" for a 0-dim
 * tensor. For messages naming an element of an index or target tensor. */
void lc_marked_position(int nd, const int64_t *shape, int64_t flat, char *buf, size_t cap);
size_t lc_storage_nbytes(const lc_tensor *t);
bool lc_same_storage(const lc_tensor *a, const lc_tensor *b);
void lc_bump_version(lc_tensor *t);
uint64_t lc_version(const lc_tensor *t);

/* Testing error paths, process-wide: while tracking is on, lc_debug_allocations counts the core's
 * allocations and lc_debug_fail_allocation(n) makes the nth one from now fail, once (n >= 1;
 * 0: none). Off by default, so the allocation path pays one relaxed load. */
void lc_debug_track_allocations(bool on);
void lc_debug_fail_allocation(int64_t n);
int64_t lc_debug_allocations(void);

/* Bytes currently held by all live storages (process-wide, atomic). */
int64_t lc_bytes_in_use(void);
/* A host's cap on those bytes, process-wide (storages are shared by every lua_State and
 * thread): an allocation that would pass it fails with LC_ENOMEM and a message giving the
 * sizes, before any memory is touched. 0 (the default) is no limit. lc_lock_memory_limit makes
 * the current limit final: later lc_set_memory_limit calls fail with LC_ESTATE (a host locks
 * it before running scripts it does not trust). */
lc_status lc_set_memory_limit(int64_t bytes);
void lc_lock_memory_limit(void);
int64_t lc_memory_limit(void);
bool lc_memory_limit_locked(void);
/* lucid keeps a few freed large blocks (at most 16 blocks, 256 MiB) for reuse, so large
 * temporaries do not pay fresh page faults each time; this returns them to the system, with
 * the idle convolution workspaces (lucid_conv.h). */
void lc_empty_cache(void);

/* ---------------------------------------------------------------- creation */

lc_status lc_empty(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out);
lc_status lc_zeros(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out);
lc_status lc_ones(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out);
lc_status lc_full(int ndim, const int64_t *shape, double value, lc_dtype dt, lc_tensor **out);
/* Copies numel elements of dtype dt from data (C order). */
lc_status lc_from_data(int ndim, const int64_t *shape, lc_dtype dt, const void *data,
                       lc_tensor **out);
/* Wraps a caller-owned buffer without copying. `data` must stay valid until `release(ctx, data)`
 * is called, which happens when the last tensor using it is released (release may be NULL). */
lc_status lc_from_buffer(int ndim, const int64_t *shape, lc_dtype dt, void *data,
                         void (*release)(void *ctx, void *data), void *ctx, lc_tensor **out);
/* A 0-dim tensor holding `value`. */
lc_status lc_scalar(double value, lc_dtype dt, lc_tensor **out);
/* [start, end) by step, like torch.arange. */
lc_status lc_arange(double start, double end, double step, lc_dtype dt, lc_tensor **out);
lc_status lc_linspace(double start, double end, int64_t steps, lc_dtype dt, lc_tensor **out);
lc_status lc_eye(int64_t n, int64_t m, lc_dtype dt, lc_tensor **out);
lc_status lc_empty_like(const lc_tensor *t, lc_tensor **out);
lc_status lc_zeros_like(const lc_tensor *t, lc_tensor **out);
lc_status lc_ones_like(const lc_tensor *t, lc_tensor **out);
lc_status lc_full_like(const lc_tensor *t, double value, lc_tensor **out);

/* Random numbers: one generator per OS thread (lc_manual_seed seeds the calling thread's; a new
 * thread starts at PyTorch's default seed). Each call takes the next block of a counter-based
 * stream, so results depend only on the seed and the thread's sequence of calls, never on the
 * thread count. */
void lc_manual_seed(uint64_t seed);
uint64_t lc_initial_seed(void);
lc_status lc_rand(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out);  /* U[0,1) */
lc_status lc_randn(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out); /* N(0,1) */
/* integers uniformly in [low, high) */
lc_status lc_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, lc_dtype dt,
                     lc_tensor **out);
/* In place: fills t with U[low, high) / N(mean, std). Float dtypes only. */
lc_status lc_uniform_(lc_tensor *t, double low, double high);
lc_status lc_normal_(lc_tensor *t, double mean, double std);
/* A random permutation of 0..n-1 (int64). */
lc_status lc_randperm(int64_t n, lc_tensor **out);

/* ---------------------------------------------------------------- views (share storage) */

/* view: needs strides compatible with the new shape; one entry may be -1. */
lc_status lc_view(const lc_tensor *t, int ndim, const int64_t *shape, lc_tensor **out);
/* reshape: a view when possible, else a contiguous copy. */
lc_status lc_reshape(const lc_tensor *t, int ndim, const int64_t *shape, lc_tensor **out);
lc_status lc_permute(const lc_tensor *t, const int *dims, lc_tensor **out); /* ndim entries */
lc_status lc_transpose(const lc_tensor *t, int dim0, int dim1, lc_tensor **out);
lc_status lc_t(const lc_tensor *t, lc_tensor **out); /* ndim <= 2 */
lc_status lc_narrow(const lc_tensor *t, int dim, int64_t start, int64_t length, lc_tensor **out);
/* Elements start, start+step, ... < end along dim (step >= 1; start/end already clamped). */
lc_status lc_slice(const lc_tensor *t, int dim, int64_t start, int64_t end, int64_t step,
                   lc_tensor **out);
lc_status lc_select(const lc_tensor *t, int dim, int64_t index, lc_tensor **out);
lc_status lc_squeeze(const lc_tensor *t, lc_tensor **out); /* all size-1 dims */
lc_status lc_squeeze_dim(const lc_tensor *t, int dim, lc_tensor **out);
lc_status lc_unsqueeze(const lc_tensor *t, int dim, lc_tensor **out);
lc_status lc_expand(const lc_tensor *t, int ndim, const int64_t *shape, lc_tensor **out);
lc_status lc_flatten(const lc_tensor *t, int start_dim, int end_dim, lc_tensor **out);
/* Splits dim into sizes (1..LC_MAX_DIMS entries, each >= 0, one of them may be -1 to be
 * inferred; their product must equal the dim's size). A view, as reshape makes it (splitting
 * one dim never needs a copy). */
lc_status lc_unflatten(const lc_tensor *x, int dim, int nsizes, const int64_t *sizes,
                       lc_tensor **out);
/* Returns t itself (a new reference) when already contiguous. */
lc_status lc_contiguous(const lc_tensor *t, lc_tensor **out);
/* Shares data with t but has no autograd history and does not require grad. */
lc_status lc_detach(const lc_tensor *t, lc_tensor **out);
/* t's data becomes src's (PyTorch's t.data = src): t views src's memory from then on, with
 * src's strides; t keeps its identity, gradient and hooks. Same dtype and shape; t a leaf or
 * a tensor without history, not a view. Views taken of t before keep the old data. */
lc_status lc_set_(lc_tensor *t, const lc_tensor *src);

/* ---------------------------------------------------------------- copies and conversion */

lc_status lc_clone(const lc_tensor *t, lc_tensor **out);
lc_status lc_to_dtype(const lc_tensor *t, lc_dtype dt, lc_tensor **out); /* t itself if same */
lc_status lc_copy_(lc_tensor *dst, const lc_tensor *src); /* src broadcasts to dst; casts */
lc_status lc_fill_(lc_tensor *t, double value);
lc_status lc_zero_(lc_tensor *t);
/* Value of a one-element tensor. */
lc_status lc_item(const lc_tensor *t, double *out);
lc_status lc_item_int64(const lc_tensor *t, int64_t *out);
/* Reads element at a 0-based multi-index (ndim entries). */
lc_status lc_get(const lc_tensor *t, const int64_t *index, double *out);
/* Copies all elements, in C order, converted to dt, into buf (numel * size of dt bytes). */
lc_status lc_copy_to_buffer(const lc_tensor *t, lc_dtype dt, void *buf);
/* True when shapes are equal and all elements compare equal. */
lc_status lc_equal(const lc_tensor *a, const lc_tensor *b, bool *out);
lc_status lc_allclose(const lc_tensor *a, const lc_tensor *b, double rtol, double atol,
                      bool *out);
/* lc_allclose with PyTorch's equal_nan (two NaNs count as close); lc_isclose's rule, reduced. */
lc_status lc_allclose_ex(const lc_tensor *a, const lc_tensor *b, double rtol, double atol,
                         bool equal_nan, bool *out);

/* Text as lucid prints it: "tensor([[0.1235, 1.], [2., 3.]])", 4 significant digits, the dtype
 * appended when not float32, large tensors summarised with "...". *out is malloc'ed: free it
 * with lc_free(). */
lc_status lc_to_string(const lc_tensor *t, char **out);
void lc_free(void *p);

/* ---------------------------------------------------------------- elementwise */

/* The unary ops, one row each: the one list that generates the op codes LC_<CODE> below, the
 * ops (src/kernels/elementwise.c), their loops (src/kernels/elementwise_loops.c, which holds each
 * row's expressions: EW_F_<CODE>, EW_I_<CODE>, EW_G_<CODE>) and the Lua functions and methods
 * t:<name>() and t:<name>_() (src/lua/ops.c).
 * X(CODE, name, GradFn, DTYPES, SAVES, COST)
 *   GradFn  grad_fn name, or NULL: not differentiable
 *   DTYPES  FLOAT: float math (integer and bool inputs compute in float32);
 *           ROUND: float loops, identity on integers and bool;
 *           SIGNED: any number type, bool refused (LC_EDTYPE);
 *           MAGN: any number type, identity on bool;
 *           LOGIC: any dtype, result bool
 *   SAVES   what the gradient reads besides the output gradient: IN (the input), OUT (the
 *           result) or NONE; ZERO: the gradient is zero (or there is none)
 *   COST    relative work per element (1: an add; 16: a transcendental), for the thread split */
#define LC_UNARY_LIST(X)                                                                           \
  X(NEG, neg, "NegBackward", SIGNED, NONE, 1)                                                      \
  X(ABS, abs, "AbsBackward", MAGN, IN, 1)                                                          \
  X(SIGN, sign, "SignBackward", MAGN, ZERO, 1)                                                     \
  X(EXP, exp, "ExpBackward", FLOAT, OUT, 16)                                                       \
  X(LOG, log, "LogBackward", FLOAT, IN, 16)                                                        \
  X(LOG1P, log1p, "Log1PBackward", FLOAT, IN, 16)                                                  \
  X(SQRT, sqrt, "SqrtBackward", FLOAT, OUT, 2)                                                     \
  X(RSQRT, rsqrt, "RsqrtBackward", FLOAT, OUT, 2)                                                  \
  X(SIN, sin, "SinBackward", FLOAT, IN, 16)                                                        \
  X(COS, cos, "CosBackward", FLOAT, IN, 16)                                                        \
  X(TANH, tanh, "TanhBackward", FLOAT, OUT, 16)                                                    \
  X(SIGMOID, sigmoid, "SigmoidBackward", FLOAT, OUT, 16)                                           \
  X(RELU, relu, "ReluBackward", MAGN, OUT, 1)                                                      \
  X(FLOOR, floor, "FloorBackward", ROUND, ZERO, 1)                                                 \
  X(CEIL, ceil, "CeilBackward", ROUND, ZERO, 1)                                                    \
  X(ROUND, round, "RoundBackward", ROUND, ZERO, 1)                                                 \
  X(LOGICAL_NOT, logical_not, NULL, LOGIC, ZERO, 1)                                                \
  X(ERF, erf, "ErfBackward", FLOAT, IN, 16)

#define LC_UNARY_ENUM_(CODE, NAME, GradFn, DTYPES, SAVES, COST) LC_##CODE,
typedef enum lc_unary_op { LC_UNARY_LIST(LC_UNARY_ENUM_) LC_UNARY_COUNT } lc_unary_op;
#undef LC_UNARY_ENUM_

/* The binary ops, one row each, as LC_UNARY_LIST: codes LC_<CODE>, the tensor-tensor and
 * tensor-number ops, their loops (EW_F_/EW_I_/EW_B_<CODE> in src/kernels/elementwise_loops.c:
 * float, integer and bool expressions in x, y), and the Lua rows t:<name>(o), lucid.<name>(t, o)
 * and, for INPLACE rows, t:<name>_(o). A differentiable row also has its case in
 * binary_backward / scalar_backward (src/kernels/elementwise.c).
 * X(CODE, name, GradFn, LOOPS, RESULT, SAVES, SAVES_SCALAR, INPLACE, COST)
 *   LOOPS   FLT: float loops only (integers compute in float32); INT: float and integer loops
 *           (bool refused); ALL: float, integer and bool loops
 *   RESULT  PROMOTE: the promoted dtype; FLOAT: promoted, integers to float32; BOOL: bool
 *   SAVES   what the tensor-tensor gradient reads: AB (both inputs) or NONE; SAVES_SCALAR the
 *           same for tensor-number: A (the tensor) or NONE
 *   INPLACE 1: bound as the method t:<name>_(o) too
 *   COST    relative work per element (1: an add) */
#define LC_BINARY_LIST(X)                                                                          \
  X(ADD, add, "AddBackward", ALL, PROMOTE, NONE, NONE, 1, 1)                                       \
  X(SUB, sub, "SubBackward", INT, PROMOTE, NONE, NONE, 1, 1)                                       \
  X(MUL, mul, "MulBackward", ALL, PROMOTE, AB, NONE, 1, 1)                                         \
  X(DIV, div, "DivBackward", FLT, FLOAT, AB, A, 1, 2)                                              \
  X(POW, pow, "PowBackward", ALL, PROMOTE, AB, A, 1, 16)                                           \
  X(MAXIMUM, maximum, "MaximumBackward", ALL, PROMOTE, AB, A, 0, 1)                                \
  X(MINIMUM, minimum, "MinimumBackward", ALL, PROMOTE, AB, A, 0, 1)                                \
  X(EQ, eq, NULL, ALL, BOOL, NONE, NONE, 0, 1)                                                     \
  X(NE, ne, NULL, ALL, BOOL, NONE, NONE, 0, 1)                                                     \
  X(LT, lt, NULL, ALL, BOOL, NONE, NONE, 0, 1)                                                     \
  X(LE, le, NULL, ALL, BOOL, NONE, NONE, 0, 1)                                                     \
  X(GT, gt, NULL, ALL, BOOL, NONE, NONE, 0, 1)                                                     \
  X(GE, ge, NULL, ALL, BOOL, NONE, NONE, 0, 1)                                                     \
  X(LOGICAL_AND, logical_and, NULL, ALL, BOOL, NONE, NONE, 0, 1)                                   \
  X(LOGICAL_OR, logical_or, NULL, ALL, BOOL, NONE, NONE, 0, 1)                                     \
  X(LOGICAL_XOR, logical_xor, NULL, ALL, BOOL, NONE, NONE, 0, 1)

#define LC_BINARY_ENUM_(CODE, NAME, GradFn, LOOPS, RESULT, SAVES, SAVES_SCALAR, INPLACE, COST)     \
  LC_##CODE,
typedef enum lc_binary_op { LC_BINARY_LIST(LC_BINARY_ENUM_) LC_BINARY_COUNT } lc_binary_op;
#undef LC_BINARY_ENUM_

/* Result dtype: floats for LC_DIV and for float math (exp, log, sqrt, ... of integers give
 * float32); otherwise the promoted dtype (bool < int32 < int64 < float32 < float64). */
lc_status lc_unary(lc_unary_op op, const lc_tensor *x, lc_tensor **out);
/* NumPy broadcasting. */
lc_status lc_binary(lc_binary_op op, const lc_tensor *a, const lc_tensor *b, lc_tensor **out);
/* a OP s and (reverse) s OP a. A scalar never widens the tensor's dtype beyond what its kind
 * needs: float32 + 2.5 stays float32, int64 + 2.5 gives float32, int32 + 2 stays int32. */
lc_status lc_binary_scalar(lc_binary_op op, const lc_tensor *a, double s, bool reverse,
                           lc_tensor **out);
/* In place: a = a OP b (b broadcasts to a's shape; the result is cast to a's dtype, which must
 * be able to hold it: int += float is LC_EDTYPE). */
lc_status lc_binary_(lc_binary_op op, lc_tensor *a, const lc_tensor *b);
lc_status lc_binary_scalar_(lc_binary_op op, lc_tensor *a, double s);
lc_status lc_unary_(lc_unary_op op, lc_tensor *x);
/* clamp(x, lo, hi); a bound is ignored when its has_ flag is false. */
lc_status lc_clamp(const lc_tensor *x, bool has_lo, double lo, bool has_hi, double hi,
                   lc_tensor **out);
lc_status lc_clamp_(lc_tensor *x, bool has_lo, double lo, bool has_hi, double hi);
/* cond ? a : b, all three broadcast; cond must be bool. */
lc_status lc_where(const lc_tensor *cond, const lc_tensor *a, const lc_tensor *b,
                   lc_tensor **out);

/* ---------------------------------------------------------------- reductions */

/* The reductions, one row each: the one list that generates the op codes LC_<CODE> below, the
 * ops and their dtype rules (src/kernels/reduce.c, which holds each row's kernel: its cases in
 * racc_init, racc_merge, the block kernels blk_*, racc_store and rback_*), the options
 * lc_reduce passes on (src/ops/reduce.c) and the Lua rows t:<name>(...) and
 * lucid.<name>(t, ...) (src/lua/ops.c).
 * X(CODE, name, GradFn, DTYPES, SAVES, ARGS)
 *   GradFn  grad_fn name, or NULL: not differentiable
 *   DTYPES  WIDEN: any dtype, integer and bool inputs give int64;
 *           SAME: any dtype, the result has the input's;
 *           FLOAT: float32 or float64 only (LC_EDTYPE otherwise, as in PyTorch);
 *           BOOL: any dtype, the result is bool
 *   SAVES   what the gradient reads: NONE, IN (the input) or IN_OUT (the input and the result)
 *   ARGS    its arguments after the tensor: DIMS (dim, keepdim; no dim: every dim); DIMS_REQ
 *           the same, the dim required in Lua (PyTorch's signature; C's opts may still leave
 *           it out); CORRECTION (dim, keepdim, correction, unbiased: opts.correction);
 *           P (p, dim, keepdim: opts.p) */
#define LC_REDUCE_LIST(X)                                                                          \
  X(SUM, sum, "SumBackward", WIDEN, NONE, DIMS)                                                    \
  X(MEAN, mean, "MeanBackward", FLOAT, NONE, DIMS)                                                 \
  X(PROD, prod, "ProdBackward", WIDEN, IN_OUT, DIMS)                                               \
  X(AMAX, amax, "AmaxBackward", SAME, IN_OUT, DIMS)                                                \
  X(AMIN, amin, "AminBackward", SAME, IN_OUT, DIMS)                                                \
  X(VAR, var, "VarBackward", FLOAT, IN, CORRECTION)                                                \
  X(STD, std, "StdBackward", FLOAT, IN_OUT, CORRECTION)                                            \
  X(NORM, norm, "NormBackward", FLOAT, IN_OUT, P)                                                  \
  X(LOGSUMEXP, logsumexp, "LogsumexpBackward", FLOAT, IN_OUT, DIMS_REQ)                            \
  X(ALL, all, NULL, BOOL, NONE, DIMS)                                                              \
  X(ANY, any, NULL, BOOL, NONE, DIMS)

#define LC_REDUCE_ENUM_(CODE, NAME, GradFn, DTYPES, SAVES, ARGS) LC_##CODE,
typedef enum lc_reduce_op { LC_REDUCE_LIST(LC_REDUCE_ENUM_) LC_REDUCE_COUNT } lc_reduce_op;
#undef LC_REDUCE_ENUM_

typedef struct lc_reduce_opts {
  int ndims;             /* 0 = reduce over all dims */
  int dims[LC_MAX_DIMS]; /* 0-based, negative allowed, no repeats */
  bool keepdim;
  int64_t correction;    /* var/std: divide by N - correction (1 = unbiased, PyTorch's default) */
  double p;              /* norm: order (2 for the default, INFINITY for max-abs) */
} lc_reduce_opts;

/* Result dtypes by the DTYPES column: sum and prod of bool/int give int64, all and any bool;
 * mean/var/std/norm/logsumexp of integers is an LC_EDTYPE error, as in PyTorch. */
lc_status lc_reduce(lc_reduce_op op, const lc_tensor *x, const lc_reduce_opts *opts,
                    lc_tensor **out);
/* Values and 0-based int64 indices of the max/min along dim (first occurrence wins). */
lc_status lc_max_dim(const lc_tensor *x, int dim, bool keepdim, lc_tensor **values,
                     lc_tensor **indices);
lc_status lc_min_dim(const lc_tensor *x, int dim, bool keepdim, lc_tensor **values,
                     lc_tensor **indices);
/* 0-based int64 index into the flattened tensor (all dims) or along dim. */
lc_status lc_argmax(const lc_tensor *x, bool all, int dim, bool keepdim, lc_tensor **out);
lc_status lc_argmin(const lc_tensor *x, bool all, int dim, bool keepdim, lc_tensor **out);

/* ---------------------------------------------------------------- linear algebra (BLAS) */

/* torch.matmul semantics: 1-D x 1-D dot, 2-D mm, 1-D promoted and removed, batched with
 * broadcast batch dims. Float dtypes only. */
lc_status lc_matmul(const lc_tensor *a, const lc_tensor *b, lc_tensor **out);
lc_status lc_mm(const lc_tensor *a, const lc_tensor *b, lc_tensor **out);  /* 2-D only */
lc_status lc_bmm(const lc_tensor *a, const lc_tensor *b, lc_tensor **out); /* 3-D only */
lc_status lc_dot(const lc_tensor *a, const lc_tensor *b, lc_tensor **out); /* 1-D only */
lc_status lc_outer(const lc_tensor *a, const lc_tensor *b, lc_tensor **out);
/* y = x W^T + b (torch.nn.functional.linear): x {..., in}, weight {out, in}, bias {out} or
 * NULL; one float dtype. One fused op (its backward writes W's gradient in W's layout). */
lc_status lc_linear(const lc_tensor *x, const lc_tensor *weight, const lc_tensor *bias,
                    lc_tensor **out);
/* y[..., o] = sum_ij x1[..., i] weight[o, i, j] x2[..., j] + bias[o]
 * (torch.nn.functional.bilinear): x1 {..., in1}, x2 {..., in2} with the same leading dims, weight
 * {out, in1, in2}, bias {out} or NULL; all of one float dtype. out: {..., out}. One fused op (GEMMs
 * forward and backward); it has no module kind (kinds take one input): the Lua binding builds
 * nn.Bilinear on it. */
lc_status lc_bilinear(const lc_tensor *x1, const lc_tensor *x2, const lc_tensor *weight,
                      const lc_tensor *bias, lc_tensor **out);

/* ---------------------------------------------------------------- joining and indexing */

lc_status lc_cat(int n, lc_tensor *const *ts, int dim, lc_tensor **out);
lc_status lc_stack(int n, lc_tensor *const *ts, int dim, lc_tensor **out);
/* Splits into pieces of `size` along dim (the last may be smaller); *outs is malloc'ed,
 * holding *n owned tensors: release each, then lc_free(*outs). */
lc_status lc_split(const lc_tensor *t, int64_t size, int dim, int *n, lc_tensor ***outs);
lc_status lc_split_sizes(const lc_tensor *t, int nsizes, const int64_t *sizes, int dim, int *n,
                         lc_tensor ***outs);
lc_status lc_chunk(const lc_tensor *t, int chunks, int dim, int *n, lc_tensor ***outs);

/* index: 1-D int64 or int32 tensor of 0-based positions. */
lc_status lc_index_select(const lc_tensor *t, int dim, const lc_tensor *index, lc_tensor **out);
/* index: same ndim as t, int64/int32, 0-based. */
lc_status lc_gather(const lc_tensor *t, int dim, const lc_tensor *index, lc_tensor **out);
/* out-of-place scatter: a copy of t with out[index[i][j]][j] = src[i][j] (dim 0) etc. */
lc_status lc_scatter(const lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *src,
                     lc_tensor **out);
lc_status lc_scatter_(lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *src);
/* out-of-place scatter with accumulation (used by gather's backward). */
lc_status lc_scatter_add(const lc_tensor *t, int dim, const lc_tensor *index,
                         const lc_tensor *src, lc_tensor **out);
/* mask: bool, broadcasts to t. */
lc_status lc_masked_fill(const lc_tensor *t, const lc_tensor *mask, double value,
                         lc_tensor **out);
lc_status lc_masked_fill_(lc_tensor *t, const lc_tensor *mask, double value);
lc_status lc_masked_select(const lc_tensor *t, const lc_tensor *mask, lc_tensor **out);
/* {count, ndim} int64 of 0-based positions of non-zero elements, in C order. */
lc_status lc_nonzero(const lc_tensor *t, lc_tensor **out);

/* ---------------------------------------------------------------- rearranging
 * tril, triu, flip, roll, rot90, repeat_interleave: PyTorch 1.13's semantics, every dtype,
 * any layout (non-contiguous and expanded inputs are read through their strides); each result
 * is a new contiguous tensor. Gradients (float dtypes) are the same ops on the gradient, and
 * differentiate to any order (LC_CREATE_GRAPH). */

/* The lower (tril) or upper (triu) triangle of the last two dims (batched over the others; at
 * least 2 dims): elements with j - i > diagonal (tril) or j - i < diagonal (triu) become 0.
 * diagonal 0 is the main diagonal, > 0 above it, < 0 below; any int64. */
lc_status lc_tril(const lc_tensor *t, int64_t diagonal, lc_tensor **out);
lc_status lc_triu(const lc_tensor *t, int64_t diagonal, lc_tensor **out);
lc_status lc_tril_(lc_tensor *t, int64_t diagonal);
lc_status lc_triu_(lc_tensor *t, int64_t diagonal);
/* Reverses the order along each of dims[0..ndims-1] (negative from the end; a repeat is
 * LC_EARG; ndims 0 is a copy). */
lc_status lc_flip(const lc_tensor *t, int ndims, const int *dims, lc_tensor **out);
/* Shifts elements along dims by shifts (element i goes to (i + shift) mod size), one shift per
 * dim (nshifts == ndims; a dim may repeat, the shifts add up). ndims 0: one shift of the
 * flattened tensor, reshaped back. Any int64 shift, negative too. */
lc_status lc_roll(const lc_tensor *t, int nshifts, const int64_t *shifts, int ndims,
                  const int *dims, lc_tensor **out);
/* Rotates by 90 degrees k times (any int64, modulo 4) in the plane of dims[0], dims[1], from
 * dims[1] towards dims[0]: k = 1 is flip(dims[1]) then transpose. dims NULL with ndims 0: the
 * default (0, 1). Needs exactly 2 distinct dims of a tensor with at least 2. */
lc_status lc_rot90(const lc_tensor *t, int64_t k, int ndims, const int *dims, lc_tensor **out);
/* Repeats element j along dim repeats[j] times (one value: every element). repeats: an int64
 * or int32 tensor, 0-dim or 1-D with one value or t's size along dim; none negative. Without
 * a dim (has_dim false) t is flattened first and the result is 1-D, as in PyTorch. */
lc_status lc_repeat_interleave(const lc_tensor *t, const lc_tensor *repeats, bool has_dim, int dim,
                               lc_tensor **out);
lc_status lc_repeat_interleave_int(const lc_tensor *t, int64_t repeats, bool has_dim, int dim,
                                   lc_tensor **out);

/* ---------------------------------------------------------------- cumulative ops (scan) */
/* PyTorch 1.13's torch.cumsum / cumprod / logcumsumexp / diff. dim is 0-based, negative from
 * the end; a 0-dim tensor takes dim 0 or -1 (and is its own scan). Any layout (strided,
 * expanded) is accepted; the result is a new contiguous tensor of t's shape.
 *
 * lc_cumsum, lc_cumprod: dtype NULL gives int64 for an integer or bool t and t's dtype for a
 * float one; a non-NULL dtype (float32, float64, int32 or int64; bool is LC_EDTYPE) converts t
 * to it before scanning (torch's dtype= argument). Integer results wrap on overflow.
 * Differentiable for float results: cumsum's gradient is the reversed cumsum of the incoming
 * one; cumprod's is exact when t holds zeros (the positions after a column's first zero get
 * 0, the first zero the product of the others); both arrive in t's dtype. All three
 * differentiate to any order (LC_CREATE_GRAPH; cumprod's with zeros in O(n^2) memory). */
lc_status lc_cumsum(const lc_tensor *t, int dim, const lc_dtype *dtype, lc_tensor **out);
lc_status lc_cumprod(const lc_tensor *t, int dim, const lc_dtype *dtype, lc_tensor **out);
/* log(cumsum(exp(t))) computed stably (t float32 or float64, else LC_EDTYPE); a NaN
 * propagates, -inf entries add nothing. The gradient is PyTorch's stable formula (so, as
 * there, NaN at a -inf input whose running value is still -inf). */
lc_status lc_logcumsumexp(const lc_tensor *t, int dim, lc_tensor **out);
/* The n-th forward difference along dim: out[i] = t[i + 1] - t[i], n times (logical_xor for
 * bool). prepend / append (NULL for none) are concatenated before / after t along dim first
 * (same ndim as t, same sizes except along dim; dtypes promote as in lc_cat). t needs at least
 * one dim. n larger than the dim's size gives size 0 along dim; n == 0 is a copy of t (prepend
 * and append ignored); n < 0 returns t itself (or the concatenation), as torch.diff does. A
 * composition of lc_cat, lc_narrow and lc_binary, differentiable through them (SubBackward). */
lc_status lc_diff(const lc_tensor *t, int64_t n, int dim, const lc_tensor *prepend,
                  const lc_tensor *append, lc_tensor **out);

/* ---------------------------------------------------------------- sorting and selection
 * PyTorch 1.13's sort, argsort, topk, kthvalue, median and mode (src/ops/sort.c). Indices are
 * 0-based int64 positions along dim. NaN orders above every number (last ascending, first
 * descending); equal values keep their order (every sort is stable, whatever `stable` says;
 * topk, kthvalue and median return the positions a stable sort puts at their ranks), mode
 * returns the last occurrence of its value.
 * bool tensors take sort, argsort and mode only. A 0-dim tensor is a row of one element (dim
 * 0 or -1). The values are differentiable: the gradient goes to the selected positions. */
lc_status lc_sort(const lc_tensor *x, int dim, bool descending, bool stable, lc_tensor **values,
                  lc_tensor **indices);
lc_status lc_argsort(const lc_tensor *x, int dim, bool descending, bool stable, lc_tensor **out);
/* The k largest (largest) or smallest values along dim, best first (sorted or not: always in
 * order); 0 <= k <= size of dim. */
lc_status lc_topk(const lc_tensor *x, int64_t k, int dim, bool largest, bool sorted,
                  lc_tensor **values, lc_tensor **indices);
/* The k-th smallest value along dim: k counts from 1 as in PyTorch (1 = the smallest), in C
 * too, since it is a rank, not a position; 1 <= k <= size of dim. */
lc_status lc_kthvalue(const lc_tensor *x, int64_t k, int dim, bool keepdim, lc_tensor **values,
                      lc_tensor **indices);
/* The lower median of all elements (0-dim; NaN when there is a NaN, NaN for an empty float
 * tensor, an error for an empty integer one). Its gradient is spread evenly over the elements
 * equal to it, as PyTorch's. */
lc_status lc_median(const lc_tensor *x, lc_tensor **out);
/* The lower median along dim (a NaN in a row: the first NaN). */
lc_status lc_median_dim(const lc_tensor *x, int dim, bool keepdim, lc_tensor **values,
                        lc_tensor **indices);
/* The most frequent value along dim (the smallest of equally frequent ones; NaNs count as one
 * value) and its last position. */
lc_status lc_mode(const lc_tensor *x, int dim, bool keepdim, lc_tensor **values,
                  lc_tensor **indices);

/* ================================================================ misc ops (src/ops/misc_ops.c)
 * meshgrid, unique, unique_consecutive, searchsorted, bucketize, clamp with tensor bounds,
 * nan_to_num, isclose, lerp, cdist, cosine_similarity, pairwise_distance. Indices and positions
 * are 0-based here (the Lua binding shows them 1-based). */

/* n 0-dim or 1-D tensors of one dtype -> n views (expanded, stride 0) of shape (len_0, ...,
 * len_{n-1}); xy swaps the first two dims of the result (Cartesian indexing). outs has n slots. */
lc_status lc_meshgrid(int n, lc_tensor *const *ts, bool xy, lc_tensor **outs);
/* The distinct values of x (has_dim false: flattened, 1-D result) or distinct slices along dim,
 * in ascending (lexicographic) order; sorted = false gives the same sorted result. inverse (x's
 * shape, or x.shape[dim]) and counts (int64) are optional (NULL: not computed). NaNs are
 * each distinct. No gradient. */
lc_status lc_unique(const lc_tensor *x, bool sorted, bool has_dim, int dim, lc_tensor **values,
                    lc_tensor **inverse, lc_tensor **counts);
/* Like lc_unique over runs of consecutive equal values (or slices), keeping the input order. */
lc_status lc_unique_consecutive(const lc_tensor *x, bool has_dim, int dim, lc_tensor **values,
                                lc_tensor **inverse, lc_tensor **counts);
/* For each of values, the 0-based insertion index i in [0, n] into the sorted last dim of seq
 * (seq 1-D, or seq's leading dims equal values' leading dims): left (right = false) the first i
 * with seq[i] >= v, right the first with seq[i] > v. sorter (optional, int64, seq's shape, 0-based)
 * gives seq's sorted order. int64 result, or int32 with out_int32. seq and values: one dtype. */
lc_status lc_searchsorted(const lc_tensor *seq, const lc_tensor *values, bool right, bool out_int32,
                          const lc_tensor *sorter, lc_tensor **out);
/* lc_searchsorted(boundaries, x, right, ...) with 1-D boundaries. */
lc_status lc_bucketize(const lc_tensor *x, const lc_tensor *boundaries, bool right, bool out_int32,
                       lc_tensor **out);
/* clamp with tensor bounds (lo and/or hi, NULL for none; broadcast with x): minimum(maximum(x,
 * lo), hi), the dtype promoted over all three. Differentiable in x, lo and hi (PyTorch's rule: lo
 * gets the gradient where x < lo < hi, hi where x > hi or hi < lo, x where lo <= x <= hi). */
lc_status lc_clamp_tensor(const lc_tensor *x, const lc_tensor *lo, const lc_tensor *hi,
                          lc_tensor **out);
lc_status lc_clamp_tensor_(lc_tensor *x, const lc_tensor *lo, const lc_tensor *hi);
/* NaN, +inf and -inf replaced (NULL: 0, the dtype's largest and lowest finite value); integer
 * and bool tensors are copied. Gradient: passed through where x is finite, 0 elsewhere. */
lc_status lc_nan_to_num(const lc_tensor *x, const double *nan, const double *posinf,
                        const double *neginf, lc_tensor **out);
lc_status lc_nan_to_num_(lc_tensor *x, const double *nan, const double *posinf,
                         const double *neginf);
/* Elementwise closeness (lc_allclose's rule) of a and b (one dtype, broadcast) -> bool. */
lc_status lc_isclose(const lc_tensor *a, const lc_tensor *b, double rtol, double atol,
                     bool equal_nan, lc_tensor **out);
/* start + weight * (end - start); float start, end (and weight) of one dtype, broadcast.
 * Differentiable in all three. */
lc_status lc_lerp(const lc_tensor *start, const lc_tensor *end, const lc_tensor *weight,
                  lc_tensor **out);
lc_status lc_lerp_scalar(const lc_tensor *start, const lc_tensor *end, double weight,
                         lc_tensor **out);
lc_status lc_lerp_(lc_tensor *start, const lc_tensor *end, const lc_tensor *weight);
lc_status lc_lerp_scalar_(lc_tensor *start, const lc_tensor *end, double weight);
/* p-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M) -> (..., P, R), batch
 * dims broadcast; p >= 0 (INFINITY allowed). p = 2 with P > 25 or R > 25 goes through a matrix
 * product (PyTorch's use_mm_for_euclid_dist_if_necessary). Differentiable. */
lc_status lc_cdist(const lc_tensor *x1, const lc_tensor *x2, double p, lc_tensor **out);
/* sum(x1 * x2, dim) / sqrt(max(sum(x1^2, dim) * sum(x2^2, dim), eps^2)), x1 and x2 broadcast. */
lc_status lc_cosine_similarity(const lc_tensor *x1, const lc_tensor *x2, int dim, double eps,
                               lc_tensor **out);
/* norm(x1 - x2 + eps, p) over the last dim (of the broadcast shape). */
lc_status lc_pairwise_distance(const lc_tensor *x1, const lc_tensor *x2, double p, double eps,
                               bool keepdim, lc_tensor **out);
/* ================================================================ end of misc ops */

/* ---------------------------------------------------------------- advanced indexing
 * (src/kernels/advindex.c, src/ops/advindex.c, src/ops/einsum.c) */

typedef enum lc_sr_reduce {
  LC_SR_SUM,
  LC_SR_PROD,
  LC_SR_MEAN, /* integers: floor division */
  LC_SR_AMAX, /* NaN propagates */
  LC_SR_AMIN,
  LC_SR_COUNT
} lc_sr_reduce;
/* "sum", "prod", "mean", "amax", "amin" -> the code (LC_EARG otherwise). */
lc_status lc_sr_reduce_from_name(const char *name, lc_sr_reduce *out);
/* scatter_reduce: a copy of t where each src value at position p (over index's shape) is folded
 * into the element at p with coordinate dim replaced by index[p]. include_self: t's own value
 * takes part (else an element receiving values starts from the reduction's identity, and mean
 * divides by the number of values received). src has t's dtype; index as for scatter.
 * Gradients as PyTorch 1.13 (amax/amin: shared evenly among the tied elements; prod: exact
 * with at most one zero per element). */
lc_status lc_scatter_reduce(const lc_tensor *t, int dim, const lc_tensor *index,
                            const lc_tensor *src, lc_sr_reduce reduce, bool include_self,
                            lc_tensor **out);
lc_status lc_scatter_reduce_(lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *src,
                             lc_sr_reduce reduce, bool include_self);
/* index_add: t with alpha * source[..., k, ...] added along dim at index[k] (index 1-D or 0-dim
 * with source's size along dim; source shaped like t elsewhere). Duplicates accumulate. */
lc_status lc_index_add(const lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *source,
                       double alpha, lc_tensor **out);
lc_status lc_index_add_(lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *source,
                        double alpha);
/* index_copy: t with the slices at index along dim replaced by source's (duplicates: one of
 * them wins, as in PyTorch). */
lc_status lc_index_copy(const lc_tensor *t, int dim, const lc_tensor *index,
                        const lc_tensor *source, lc_tensor **out);
lc_status lc_index_copy_(lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *source);
/* index_put: t[indices[0], ..., indices[n-1]] = values (accumulate: +=, duplicates summed).
 * The n index tensors (int64/int32, or bool masks: a mask over k dims stands for the k index
 * tensors of its nonzero positions) index t's leading dims and broadcast together to a shape B;
 * values broadcast to B followed by t's remaining dims. */
lc_status lc_index_put(const lc_tensor *t, int n, const lc_tensor *const *indices,
                       const lc_tensor *values, bool accumulate, lc_tensor **out);
lc_status lc_index_put_(lc_tensor *t, int n, const lc_tensor *const *indices,
                        const lc_tensor *values, bool accumulate);
/* take_along_dim: gather after broadcasting t and indices against each other except along
 * dim; has_dim false: over the flattened t (indices flattened too). */
lc_status lc_take_along_dim(const lc_tensor *t, const lc_tensor *indices, bool has_dim, int dim,
                            lc_tensor **out);
/* one_hot: int64 of shape t's + {num_classes} (num_classes < 0: max(t) + 1), a 1 at t's
 * value (0-based classes here). t is int64/int32 with values in 0..num_classes-1. */
lc_status lc_one_hot(const lc_tensor *t, int64_t num_classes, lc_tensor **out);
/* einsum: PyTorch's equation language (implicit or explicit '->', '...', repeated subscripts
 * as diagonals, summed subscripts), n operands contracted left to right in pairs, each pair as
 * one batched matmul. Built from recorded ops, so it is differentiable to any order. */
lc_status lc_einsum(const char *equation, int n, const lc_tensor *const *operands, lc_tensor **out);

/* ---------------------------------------------------------------- autograd */

/* Per-thread grad mode. lc_set_grad_enabled returns the previous mode. */
bool lc_is_grad_enabled(void);
bool lc_set_grad_enabled(bool enabled);

/* Only leaves can have requires_grad changed; integer and bool tensors cannot require grad. */
lc_status lc_set_requires_grad(lc_tensor *t, bool requires_grad);
bool lc_requires_grad(const lc_tensor *t);
bool lc_is_leaf(const lc_tensor *t);
/* "AddBackward", ..., or NULL for leaves and tensors outside any graph. */
const char *lc_grad_fn_name(const lc_tensor *t);
/* The accumulated gradient (borrowed) or NULL. */
lc_tensor *lc_grad(const lc_tensor *t);
/* Replaces the gradient (g may be NULL to clear; shape must match). */
lc_status lc_set_grad(lc_tensor *t, lc_tensor *g);
/* Makes a non-leaf keep its .grad during backward (a no-op on a leaf that requires grad; an
 * LC_EGRAD error on a tensor that does not require grad, as in PyTorch). */
lc_status lc_retain_grad(lc_tensor *t);
bool lc_retains_grad(const lc_tensor *t);

/* Backpropagates from t. grad may be NULL only when t has one element (seed 1).
 * Unless retain_graph, the graph's saved tensors are freed and a second backward through it is
 * an LC_EGRAD error. */
lc_status lc_backward(lc_tensor *t, const lc_tensor *grad, bool retain_graph);
/* Gradients of sum(outputs[i] * grad_outputs[i]) w.r.t. inputs, without touching .grad.
 * grad_outputs may be NULL, and so may any of its entries (each such output must then have one
 * element: its seed is 1); grads[i] receives an owned
 * tensor, or NULL when inputs[i] is not reachable and allow_unused is set. */
lc_status lc_autograd_grad(int n_outputs, lc_tensor *const *outputs,
                           lc_tensor *const *grad_outputs, int n_inputs,
                           lc_tensor *const *inputs, bool retain_graph, bool allow_unused,
                           lc_tensor **grads);

/* Flags of the _ex forms. LC_CREATE_GRAPH records the backward pass itself, so the gradients
 * it produces (.grad, or grads[]) have a history and can be differentiated again (gradient
 * penalties, Hessian-vector products); pass LC_RETAIN_GRAPH with it unless the forward graph
 * is not needed again (PyTorch's default retain_graph = create_graph). With lc_backward_ex, a
 * leaf's .grad then references the graph that references the leaf: clear it (lc_set_grad(t,
 * NULL)) when done, or prefer lc_autograd_grad_ex, which leaves .grad alone. An op without a
 * differentiable backward on the way is an LC_EGRAD error naming it. */
enum { LC_RETAIN_GRAPH = 1u << 0, LC_CREATE_GRAPH = 1u << 1, LC_ALLOW_UNUSED = 1u << 2 };
lc_status lc_backward_ex(lc_tensor *t, const lc_tensor *grad, unsigned flags);
lc_status lc_autograd_grad_ex(int n_outputs, lc_tensor *const *outputs,
                              lc_tensor *const *grad_outputs, int n_inputs,
                              lc_tensor *const *inputs, unsigned flags, lc_tensor **grads);

/* Gradient hooks (PyTorch's Tensor.register_hook): fn(ud, grad, &replace) runs each time a
 * gradient for t is computed, before it is accumulated into .grad or flows on into t's
 * history; setting *replace (an owned tensor of grad's shape) replaces the gradient, leaving it
 * NULL keeps it. Hooks run in registration order; a failing hook stops the backward with its
 * status. free_ud (may be NULL) releases ud when the hook is removed or t's graph dies. The
 * handle removes the hook (idempotent) and must be freed with lc_hook_handle_free. */
typedef lc_status (*lc_grad_hook)(void *ud, const lc_tensor *grad, lc_tensor **replace);
typedef struct lc_hook_handle lc_hook_handle;
lc_status lc_register_hook(lc_tensor *t, lc_grad_hook fn, void *ud, void (*free_ud)(void *),
                           lc_hook_handle **handle);
void lc_hook_handle_remove(lc_hook_handle *h);
void lc_hook_handle_free(lc_hook_handle *h);

/* Post-accumulate-grad hooks (PyTorch 2.1's Tensor.register_post_accumulate_grad_hook): on a
 * leaf that requires grad (else LC_EGRAD; NULL arguments LC_EARG), fn(ud, leaf) runs in a
 * backward (lc_backward*, not lc_autograd_grad) right after the leaf's gradient of the pass
 * has been summed over every edge and accumulated into its .grad (lc_grad(leaf) holds the sum
 * with earlier backwards'). Gradient hooks fire as soon as a leaf is complete, not at the end
 * of the pass: after the last node (in execution order) with an edge to the leaf ran, so a
 * leaf used early in the forward completes after the ones used late (what overlapping
 * DistributedDataParallel's all_reduce with the rest of backward relies on). Hooks run in
 * registration order, after the leaf's gradient hooks; a failing one stops the backward with
 * its status. Removal, ud and the handle as for lc_register_hook. */
typedef lc_status (*lc_post_accumulate_grad_hook)(void *ud, lc_tensor *leaf);
lc_status lc_register_post_accumulate_grad_hook(lc_tensor *leaf, lc_post_accumulate_grad_hook fn,
                                                void *ud, void (*free_ud)(void *),
                                                lc_hook_handle **handle);

/* A gradient buffer for leaf (a tensor that requires grad): when a backward (lc_backward*, not
 * lc_autograd_grad, not create_graph) delivers the leaf's first gradient while its .grad is
 * unset, an op that can (linear's weight and bias) computes that gradient straight into buf,
 * which then becomes .grad, saving the allocation and the copy of a fresh tensor; any other op's
 * gradient is stored as usual. buf must be contiguous, of leaf's shape and dtype (LC_ESHAPE,
 * LC_EDTYPE, LC_EARG otherwise; LC_EGRAD when leaf does not require grad or has a history); the
 * leaf keeps a reference to it; buf NULL removes it. .grad then aliases buf, as PyTorch's
 * DistributedDataParallel(gradient_as_bucket_view=True) makes gradients views of its
 * communication buckets (lucid's DDP uses this). */
lc_status lc_set_grad_buffer(lc_tensor *leaf, lc_tensor *buf);

/* A callback at the end of the backward running on this thread (PyTorch's
 * Variable._execution_engine.queue_callback): valid only while lc_backward* or
 * lc_autograd_grad* runs on this thread (from a hook or a custom function's backward), else
 * LC_EGRAD; the innermost one when backwards nest. Callbacks run in queue order after the
 * pass's last node and last leaf hook, before that backward returns; one may queue another,
 * which then runs too. A failing callback stops the rest and the backward returns its status;
 * a pass that fails runs none. free_ud (may be NULL) releases ud in every case, once: after
 * the callback ran or was dropped, or at once when this call fails. */
typedef lc_status (*lc_autograd_callback)(void *ud);
lc_status lc_autograd_queue_callback(lc_autograd_callback fn, void *ud, void (*free_ud)(void *));

/* Custom autograd functions (PyTorch's torch.autograd.Function, used by
 * lucid.autograd.Function): the caller computes the outputs itself (without recording), then
 * lc_function_record joins them to the graph as the outputs of one node named name (copied;
 * its grad_fn name and the prefix of its errors) whose backward is def->backward. def must
 * outlive the node (a static definition). The node's edges are the inputs' histories at the
 * time of the call; output k gets the node as grad_fn (output number k) unless
 * differentiable[k] is false (NULL: all are) or it is not a float tensor. An output that is
 * one of the inputs (an input modified in place: PyTorch's mark_dirty) has its history
 * rebased onto the node; that input must not be a leaf that requires grad, nor a view of a
 * tensor with history. Nothing is recorded (LC_OK, payload freed at once) when grad mode is
 * off or no input requires grad. The node owns payload: def->free(payload) runs when the
 * graph dies or when a backward without LC_RETAIN_GRAPH has used it (a second backward is
 * then an error). Other outputs must be tensors without history, distinct from one another. */
typedef struct lc_function_ctx lc_function_ctx;
typedef struct lc_function_def {
  /* grad_out[k]: the gradient of output k (zeros when none reached it); writes an owned tensor
   * of input i's shape, or NULL for none, into grad_in[i] for each i with needs_grad[i]. Runs
   * with grad mode on under LC_CREATE_GRAPH, so a backward made of lucid ops is differentiable
   * again. */
  lc_status (*backward)(const lc_function_ctx *ctx, void *payload, int n_out,
                        lc_tensor *const *grad_out, int n_in, const bool *needs_grad,
                        lc_tensor **grad_in);
  void (*free)(void *payload); /* may be NULL */
} lc_function_def;
lc_status lc_function_record(const lc_function_def *def, const char *name, void *payload, int n_in,
                             lc_tensor *const *inputs, int n_out, lc_tensor *const *outputs,
                             const bool *differentiable);
/* Inside def->backward: saved, an alias of output k taken at forward time, given output k's
 * history (this node) when the backward is being recorded, so a saved output differentiates
 * again; otherwise saved itself (a new reference either way). */
lc_status lc_function_saved_output(const lc_function_ctx *ctx, int k, const lc_tensor *saved,
                                   lc_tensor **out);
/* Inside def->backward: whether this backward is being recorded (LC_CREATE_GRAPH). */
bool lc_function_create_graph(const lc_function_ctx *ctx);

/* ---------------------------------------------------------------- half precision
 * LC_FLOAT16 and LC_BFLOAT16 (float16, bfloat16) store 2 bytes per element and compute in
 * float32: every op but the views, clone and cast converts its half inputs to float32, runs the
 * float32 kernel and converts float results back to the half dtype (lc_op_run). Conversions
 * from float32 round to nearest even (overflow to inf, NaN to the quiet NaN 0x7e00 with its
 * sign in float16 and to 0xffff in bfloat16, float16 subnormals kept), bit for bit as PyTorch
 * 1.13; float64 and integers convert through float32, as PyTorch does. Half tensors do not
 * take requires_grad (LC_EGRAD). */
uint16_t lc_float_to_half(float f);
float lc_half_to_float(uint16_t h);
uint16_t lc_float_to_bfloat16(float f);
float lc_bfloat16_to_float(uint16_t h);
/* n elements, contiguous; dt is LC_FLOAT16 or LC_BFLOAT16. */
void lc_half_from_float(lc_dtype dt, uint16_t *dst, const float *src, int64_t n);
void lc_half_to_float_n(lc_dtype dt, float *dst, const uint16_t *src, int64_t n);

/* ---------------------------------------------------------------- threads */

/* One policy for the whole runtime: lucid's own parallel loops and OpenBLAS share this count.
 * Defaults to env LUCID_NUM_THREADS, else the number of cores. Small tensors always stay on the
 * calling thread. */
lc_status lc_set_num_threads(int n);
int lc_get_num_threads(void);

/* ================================================================ linear algebra (lucid.linalg)
 * PyTorch 1.13's torch.linalg on float32/float64 batches of matrices (..., m, n), through
 * OpenBLAS's LAPACK (computed in float64, returned in the input's dtype). Numerical failures
 * (a singular matrix for inv/solve, a matrix that is not positive-definite for cholesky) are
 * LC_EARG errors naming the function and which matrix of the batch failed (counted from 1).
 * Gradients follow PyTorch's formulas; docs/linalg.md lists them. */
lc_status lc_linalg_inv(const lc_tensor *A, lc_tensor **out);
/* A X = B; B is (..., n, k) or a vector (1-D, or A's shape without its last dim); batch dims
 * broadcast. */
lc_status lc_linalg_solve(const lc_tensor *A, const lc_tensor *B, lc_tensor **out);
lc_status lc_linalg_det(const lc_tensor *A, lc_tensor **out);
/* sign is 0 and logabsdet -inf for a singular matrix */
lc_status lc_linalg_slogdet(const lc_tensor *A, lc_tensor **sign, lc_tensor **logabsdet);
/* lower L with A = L L^T (reads A's lower triangle); upper: L^T */
lc_status lc_linalg_cholesky(const lc_tensor *A, bool upper, lc_tensor **out);
typedef enum lc_linalg_qr_mode { LC_QR_REDUCED, LC_QR_COMPLETE, LC_QR_R } lc_linalg_qr_mode;
/* mode r: Q is empty (..., m, 0) */
lc_status lc_linalg_qr(const lc_tensor *A, lc_linalg_qr_mode mode, lc_tensor **Q, lc_tensor **R);
/* ascending eigenvalues L and orthonormal eigenvectors V (columns) of a symmetric A, read from
 * its lower (upper = false) or upper triangle */
lc_status lc_linalg_eigh(const lc_tensor *A, bool upper, lc_tensor **L, lc_tensor **V);
lc_status lc_linalg_eigvalsh(const lc_tensor *A, bool upper, lc_tensor **L);
/* A = U diag(S) Vh, S descending; full_matrices: U (m x m), Vh (n x n) */
lc_status lc_linalg_svd(const lc_tensor *A, bool full_matrices, lc_tensor **U, lc_tensor **S,
                        lc_tensor **Vh);
lc_status lc_linalg_svdvals(const lc_tensor *A, lc_tensor **S);
/* least squares (gelsd): the solution only; rcond < 0: eps * max(m, n). Differentiable in A
 * and B with PyTorch's gradient (that of pinv(A) @ B, well defined for full-rank A). */
lc_status lc_linalg_lstsq(const lc_tensor *A, const lc_tensor *B, double rcond, lc_tensor **out);
/* PyTorch's full result: also the squared residuals (*, k) (m > n and every matrix full-rank,
 * else an empty tensor), the rank (int64, *) and the singular values (*, min(m, n)) of A. */
lc_status lc_linalg_lstsq_ex(const lc_tensor *A, const lc_tensor *B, double rcond,
                             lc_tensor **solution, lc_tensor **residuals, lc_tensor **rank,
                             lc_tensor **singular_values);
/* atol / rtol < 0: not given (PyTorch's defaults) */
lc_status lc_linalg_pinv(const lc_tensor *A, double atol, double rtol, bool hermitian,
                         lc_tensor **out);
lc_status lc_linalg_matrix_rank(const lc_tensor *A, double atol, double rtol, bool hermitian,
                                lc_tensor **out); /* int64 */
lc_status lc_linalg_matrix_power(const lc_tensor *A, int64_t n, lc_tensor **out);
/* ord: any p, INFINITY, -INFINITY, 0; ndims = 0: over all elements */
lc_status lc_linalg_vector_norm(const lc_tensor *x, double ord, int ndims, const int *dims,
                                bool keepdim, lc_tensor **out);
typedef enum lc_linalg_norm_kind { LC_NORM_ORD, LC_NORM_FRO, LC_NORM_NUC } lc_linalg_norm_kind;
/* kind LC_NORM_ORD: ord in {inf, -inf, 1, -1, 2, -2}; dims d0, d1 (0-based, negative allowed) */
lc_status lc_linalg_matrix_norm(const lc_tensor *A, lc_linalg_norm_kind kind, double ord, int d0,
                                int d1, bool keepdim, lc_tensor **out);
/* torch.linalg.norm: a matrix norm for a string ord, 2 dims, or ord with no dims on 2-D input;
 * else a vector norm (ord 2 by default, over all elements when ndims = 0) */
lc_status lc_linalg_norm(const lc_tensor *x, bool has_ord, lc_linalg_norm_kind kind, double ord,
                         int ndims, const int *dims, bool keepdim, lc_tensor **out);
/* cross product along dim (size 3), shapes broadcast */
lc_status lc_linalg_cross(const lc_tensor *a, const lc_tensor *b, int dim, lc_tensor **out);
/* ================================================================ end of linear algebra */

#ifdef __cplusplus
}
#endif
#endif /* LUCID_CORE_API_H */
