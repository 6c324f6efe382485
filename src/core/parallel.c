/* parallel.c - lucid's one thread policy.
 *
 * Policy: a single process-wide thread count (an atomic int) governs both lucid's own parallel
 * loops and OpenBLAS, so the two never oversubscribe the machine. It defaults to env
 * LUCID_NUM_THREADS (when a positive integer), else the number of cores (omp_get_num_procs).
 * The initial count is pushed to OpenBLAS lazily, once, on first use (pthread_once) rather than
 * from a constructor, so merely linking lucid has no side effects. lc_set_num_threads(n)
 * updates both at once.
 *
 * lc_parallel_for runs serially when the work (n * cost_per_item) is below LC_PARALLEL_GRAIN,
 * when the count is 1, or when called from inside a parallel region (nested parallelism would
 * oversubscribe). Otherwise it uses at most one thread per LC_PARALLEL_GRAIN units of work, each
 * thread taking one contiguous chunk of [0, n).
 */
#include "core.h"

#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

void openblas_set_num_threads(int num_threads); /* from libopenblas */

static atomic_int num_threads; /* 0 until initialised */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_threads(void) {
  int n = 0;
  const char *env = getenv("LUCID_NUM_THREADS");
  if (env && *env) {
    char *end = NULL;
    long v = strtol(env, &end, 10);
    if (end && *end == '\0' && v >= 1 && v <= INT_MAX) n = (int)v;
  }
  if (n < 1) n = omp_get_num_procs();
  if (n < 1) n = 1;
  /* A lc_set_num_threads() racing with first use wins: only store if still unset. */
  int expected = 0;
  atomic_compare_exchange_strong(&num_threads, &expected, n);
  openblas_set_num_threads(atomic_load(&num_threads));
}

static int threads_now(void) {
  pthread_once(&init_once, init_threads);
  return atomic_load_explicit(&num_threads, memory_order_relaxed);
}

lc_status lc_set_num_threads(int n) {
  if (n < 1)
    return lc_set_error(LC_EARG, "set_num_threads: expected a thread count >= 1, got %d", n);
  pthread_once(&init_once, init_threads);
  atomic_store(&num_threads, n);
  openblas_set_num_threads(n);
  return LC_OK;
}

int lc_get_num_threads(void) { return threads_now(); }

void lc_parallel_for(int64_t n, int64_t cost_per_item, lc_range_fn fn, void *ctx) {
  if (n <= 0) return;
  if (cost_per_item < 1) cost_per_item = 1;
  int64_t work = n > INT64_MAX / cost_per_item ? INT64_MAX : n * cost_per_item;
  int nt = threads_now();
  if (nt <= 1 || work < LC_PARALLEL_GRAIN || omp_in_parallel()) {
    fn(ctx, 0, n);
    return;
  }
  /* No more threads than the work pays for, nor than there are items. */
  int64_t want = work / LC_PARALLEL_GRAIN;
  if (want < nt) nt = (int)(want < 2 ? 2 : want);
  if (n < nt) nt = (int)n;
#pragma omp parallel num_threads(nt)
  {
    int64_t tid = omp_get_thread_num(), got = omp_get_num_threads();
    int64_t chunk = (n + got - 1) / got;
    int64_t b = tid * chunk, e = b + chunk < n ? b + chunk : n;
    if (b < e) fn(ctx, b, e);
  }
}
