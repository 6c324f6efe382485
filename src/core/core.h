/*
 * core.h - lucid's internal core: storage, tensor layout, errors, iteration helpers.
 *
 * Layer 1 of 8 (core -> kernels -> autograd -> ops -> io -> nn -> lua -> cli; see
 * docs/CONTRIBUTING.md). Nothing here knows about ops, graphs or Lua. This header includes the
 * public lucid_core.h (the types it shares with the API), never the umbrella lucid.h, so the
 * modules, families and io of the layers above are not even declared in a core file. (The
 * entry points of src/ops are declared in lucid_core.h too; the core calls none of them.)
 * Everything is 0-based.
 */
#ifndef LUCID_CORE_H
#define LUCID_CORE_H

#include "lucid_core.h"

#include "alloc.h" /* malloc & co. through the failure-injection hooks */
#include "half.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LC_ALIGN 64 /* storage alignment in bytes */

/* A refcounted buffer shared by a tensor and its views. */
typedef struct lc_storage {
  atomic_long refcount;
  void *data;
  size_t nbytes;
  /* Bumped by every in-place write; autograd compares it against the value it saw when it
   * saved a tensor. Lives here because all views of one storage see the same writes. */
  atomic_uint_fast64_t version;
  bool owned; /* data was allocated by lucid (lc_aligned_free); else the caller's buffer */
  void (*release)(void *ctx, void *data); /* for a caller's buffer: called with (ctx, data) */
  void *release_ctx;
  /* Non-NULL for a small storage allocated in one block with its tensor's header (see
   * lc_storage_new_embedded): the block, freed when the storage dies. */
  void *block;
} lc_storage;

/* Every autograd node (src/autograd) starts with this header, so the core can drop a
 * reference to a node without knowing its layout. */
typedef struct lc_node_base {
  atomic_long refcount;
  void (*destroy)(struct lc_node_base *self); /* called when refcount reaches 0 */
} lc_node_base;
void lc_node_base_release(lc_node_base *n); /* NULL-safe */

struct lc_tensor {
  atomic_long refcount;
  lc_storage *storage;
  lc_dtype dtype;
  int ndim;
  int64_t offset; /* elements */
  int64_t numel;
  int64_t shape[LC_MAX_DIMS];
  int64_t strides[LC_MAX_DIMS]; /* elements; 0 for expanded dims */
  bool contiguous;              /* cached: C-contiguous */
  /* A small tensor whose lc_set_ moved it off the storage it was allocated in one block with:
   * that storage (owned), which frees the block, this header, when it dies. NULL otherwise. */
  lc_storage *home;

  /* ---- autograd state (owned by src/autograd; the core only frees it) ---- */
  bool requires_grad;
  bool retains_grad;
  lc_tensor *grad;          /* owned reference or NULL */
  lc_node_base *grad_fn;    /* owned reference; NULL for leaves */
  int output_nr;            /* which output of grad_fn this is */
  lc_tensor *view_base;     /* owned: the tensor this is a view of (NULL if not a view) */
  lc_node_base *hooks;      /* owned: a leaf's gradient hooks (src/autograd/hooks.c) or NULL */
  lc_tensor *grad_buffer;   /* owned: where backward may write a leaf's first gradient
                               (lc_set_grad_buffer) or NULL */
  uint64_t view_version;    /* a view: the storage version its history was taken at */
};

/* ---- errors (error.c) ----
 * lc_set_error() from lucid.h records a thread-local message; these are shorthands. */
lc_status lc_error_oom(size_t nbytes);

/* LC_OK when x has t's shape and dtype; else LC_ESHAPE "<fn>: the <what> has shape S, the
 * tensor T" or LC_EDTYPE "<fn>: the <what> is D, the tensor E" (tensor.c). For the setters
 * that put one tensor in another's place: set_, set_grad, set_grad_buffer. */
lc_status lc_check_like(const char *fn, const char *what, const lc_tensor *x, const lc_tensor *t);

/* ---- storage (storage.c) ---- */
void *lc_aligned_alloc(size_t nbytes); /* LC_ALIGN-aligned, NULL on failure */
void lc_aligned_free(void *p);
lc_storage *lc_storage_new(size_t nbytes); /* uninitialised; NULL + error set on failure */
lc_storage *lc_storage_wrap(void *data, size_t nbytes, void (*release)(void *, void *),
                            void *ctx);
void lc_storage_retain(lc_storage *s);
void lc_storage_release(lc_storage *s);
/* A small tensor (data of at most LC_SMALL_BYTES) is ONE allocation: [lc_tensor | lc_storage |
 * data at the next LC_ALIGN boundary]. Returns the (uninitialised) header memory and sets *out
 * to the storage (refcount 1, owned), whose death frees the block; so lc_release must not free
 * a header whose storage has block == the header. NULL + error set on failure. */
#define LC_SMALL_BYTES 128
void *lc_storage_new_embedded(size_t nbytes, lc_storage **out);
/* Bounded per-thread free lists of fixed-size blocks, so creating and dropping small tensors
 * (the Lua `c = a + b` loop) does not always pay malloc/free. LC_POOL_TENSOR blocks are
 * sizeof(lc_tensor) headers; LC_POOL_SMALL blocks are embedded header + storage blocks.
 * lc_pool_get returns NULL when the list is empty (then malloc); lc_pool_put frees the block
 * when the list is full. Blocks may be put on another thread than the one that got them. */
enum { LC_POOL_TENSOR, LC_POOL_SMALL, LC_POOL_COUNT };
void *lc_pool_get(int cls);
void lc_pool_put(int cls, void *p);

/* ---- tensor (tensor.c) ---- */
/* A fresh contiguous tensor with uninitialised data. Validates shape (sizes >= 0, ndim <=
 * LC_MAX_DIMS, no overflow). */
lc_status lc_tensor_new(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out);
/* A tensor header over `s` (retained) with the given layout; used by view ops. */
lc_status lc_tensor_view_of(const lc_tensor *src, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset, lc_tensor **out);
/* Recomputes numel and the contiguous flag after shape/strides were edited. */
void lc_tensor_refresh(lc_tensor *t);
/* The one shape rule: 0..LC_MAX_DIMS dims, sizes >= 0, and the sizes (each at least 1)
 * multiplying within 2^59, so that element and byte counts and contiguous strides of any dtype
 * fit in int64 whatever the sizes. LC_ESHAPE / LC_EARG / LC_ENOMEM naming `what` and the shape. */
lc_status lc_check_shape(const char *what, int ndim, const int64_t *shape);
/* Strides of the dense layout of a checked shape (lc_tensor_new / lc_tensor_view_of's rule). */
void lc_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* The element count: 0 when a size is 0, -1 when a size is negative or the product overflows
 * int64 (never undefined behaviour: callers compare it with a real count, or refuse -1). */
int64_t lc_shape_numel(int ndim, const int64_t *shape);
/* Checked int64 arithmetic, the one set the layers use for sizes, strides, offsets and byte
 * counts: true (and *out unspecified) when a op b overflows. */
static inline bool lc_mul_overflows(int64_t a, int64_t b, int64_t *out) {
  return __builtin_mul_overflow(a, b, out);
}
/* The closeness rule of isclose and allclose (PyTorch's): equal values (equal infinities
 * included) are close; otherwise both finite and |x - y| <= atol + rtol * |y|; two NaNs are
 * close only with equal_nan. */
static inline bool lc_close_f64(double x, double y, double rtol, double atol, bool equal_nan) {
  if (x == y) return true;
  if (x != x || y != y) return equal_nan && x != x && y != y;
  if (x - x != 0 || y - y != 0) return false; /* an infinity against another value */
  double d = x - y, ay = y;
  if (d < 0) d = -d;
  if (ay < 0) ay = -ay;
  return d <= atol + rtol * ay;
}

static inline bool lc_add_overflows(int64_t a, int64_t b, int64_t *out) {
  return __builtin_add_overflow(a, b, out);
}
/* "{2, 3}" into buf. */
const char *lc_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
/* Broadcast shape of a and b into out (returns LC_ESHAPE with a clear message on mismatch). */
lc_status lc_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                              int64_t *out, const char *what);
/* Strides to read `t` as if broadcast to (ndim, shape): 0 on broadcast dims. */
void lc_broadcast_strides(const lc_tensor *t, int ndim, const int64_t *shape,
                          int64_t *strides);

/* ---- dtype helpers (dtype.c) ---- */
lc_dtype lc_promote(lc_dtype a, lc_dtype b);
/* Reads element i (an element offset from data) as double / writes a double. */
double lc_load_f64(const void *data, lc_dtype dt, int64_t i);
void lc_store_f64(void *data, lc_dtype dt, int64_t i, double v);
int64_t lc_load_i64(const void *data, lc_dtype dt, int64_t i);

/* ---- strided iteration ----
 * Visits every element of a (ndim, shape) index space, keeping up to LC_ITER_MAX_OPS element
 * offsets (one per operand, each with its own strides). Dims are coalesced where all operands
 * allow it, and the innermost dim is exposed so kernels can run a tight loop over it. */
#define LC_ITER_MAX_OPS 4
typedef struct lc_iter {
  int nops;
  int ndim;                                  /* after coalescing; innermost is ndim-1 */
  int64_t shape[LC_MAX_DIMS];
  int64_t strides[LC_ITER_MAX_OPS][LC_MAX_DIMS];
  int64_t inner;                             /* shape[ndim-1] (1 for 0-dim) */
  int64_t inner_stride[LC_ITER_MAX_OPS];
  int64_t outer;                             /* product of the other dims */
} lc_iter;
/* strides[k] are operand k's strides over (ndim, shape). */
void lc_iter_init(lc_iter *it, int nops, int ndim, const int64_t *shape,
                  const int64_t (*strides)[LC_MAX_DIMS]);
/* Element offsets (relative to each operand's base) of the start of outer row `row`. */
void lc_iter_row(const lc_iter *it, int64_t row, int64_t *offs);
/* The same, with row's index over the outer dims in idx, for stepping on with lc_iter_next_row. */
void lc_iter_row_at(const lc_iter *it, int64_t row, int64_t *idx, int64_t *offs);
/* Moves idx and offs from one outer row to the next, as an odometer: a loop over many short
 * rows pays no divisions per row (lc_iter_row does one per dim). */
static inline void lc_iter_next_row(const lc_iter *it, int64_t *idx, int64_t *offs) {
  for (int d = it->ndim - 2; d >= 0; d--) {
    for (int k = 0; k < it->nops; k++)
      offs[k] += it->strides[k][d];
    if (++idx[d] < it->shape[d]) return;
    for (int k = 0; k < it->nops; k++)
      offs[k] -= it->shape[d] * it->strides[k][d];
    idx[d] = 0;
  }
}

/* ---- caches (storage.c) ----
 * A layer above the core that keeps its own cache of memory (the conv workspaces) registers its
 * release function once; lc_empty_cache() calls it. At most 8; registering twice is a no-op. */
lc_status lc_on_empty_cache(void (*release)(void));

/* ---- threads (parallel.c) ----
 * lc_parallel_for splits [0, n) into contiguous chunks run on the runtime's threads when
 * n * cost_per_item is large enough to pay for it, else runs fn(0, n) on the caller. */
typedef void (*lc_range_fn)(void *ctx, int64_t begin, int64_t end);
void lc_parallel_for(int64_t n, int64_t cost_per_item, lc_range_fn fn, void *ctx);
/* lc_parallel_for for chunks that call BLAS themselves: when the loop does run on several
 * threads, OpenBLAS is single-threaded for its duration (shared with loops on other host
 * threads; the last one out restores the runtime's count), so the two never oversubscribe the
 * cores. A loop that runs serially leaves BLAS its threads. */
void lc_parallel_for_blas(int64_t n, int64_t cost_per_item, lc_range_fn fn, void *ctx);
/* OpenBLAS single-threaded between begin and end (nesting and other host threads' loops
 * counted as for lc_parallel_for_blas). */
void lc_blas_single_begin(void);
void lc_blas_single_end(void);
#define LC_PARALLEL_GRAIN 32768 /* minimum work units (about elements) worth a second thread */

/* ---- random numbers (random.c) ----
 * Counter-based: lc_rng_reserve() hands out a block of `n` counters; element i of the block is
 * a pure function of (seed, base + i). */
uint64_t lc_rng_reserve(uint64_t n, uint64_t *seed);
uint64_t lc_rng_bits(uint64_t seed, uint64_t counter); /* 64 random bits */
double lc_rng_uniform(uint64_t seed, uint64_t counter); /* [0, 1) */
double lc_rng_normal(uint64_t seed, uint64_t counter);  /* N(0, 1) */

/* ---- raw copy / fill kernels (copy.c) ----
 * Added by the core-rest engineer. These do NOT bump versions and do not touch autograd. */
/* Copies src, broadcast to dst's shape, into dst, converting dtype (float -> int truncates
 * toward zero, anything -> bool is != 0). LC_ESHAPE when src cannot broadcast to exactly dst's
 * shape. Overlapping src/dst (same storage) are handled through a temporary. */
lc_status lc_k_copy(lc_tensor *dst, const lc_tensor *src);
/* Sets every element of t (strided-aware) to v converted to t's dtype. LC_EARG when t is an
 * integer tensor and v is not finite or does not fit the dtype. */
lc_status lc_k_fill(lc_tensor *t, double v);

#endif /* LUCID_CORE_H */
