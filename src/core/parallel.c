/* parallel.c - lucid's one thread policy.
 *
 * Policy: a single process-wide thread count (an atomic int) governs both lucid's own parallel
 * loops and OpenBLAS, so the two never oversubscribe the machine. It defaults to env
 * LUCID_NUM_THREADS (when a positive integer), else the number of cores this process may run
 * on. The initial count is pushed to OpenBLAS lazily, once, on first use (pthread_once) rather
 * than from a constructor, so merely linking lucid has no side effects. lc_set_num_threads(n)
 * updates both at once.
 *
 * lc_parallel_for runs serially when the work (n * cost_per_item) is below LC_PARALLEL_GRAIN,
 * when the count is 1, when called from one of the pool's workers (nested parallelism would
 * oversubscribe), or when another host thread is using the pool at that moment (several
 * lua_States in several threads each get serial loops rather than twice the threads).
 * Otherwise it uses at most one thread per LC_PARALLEL_GRAIN units of work, each thread taking
 * one contiguous chunk of [0, n); the caller runs chunk 0.
 *
 * Why not OpenMP: libgomp's idle threads spin for a long time (OMP_WAIT_POLICY, read once when
 * the library loads) and fight OpenBLAS's own threads for the cores: a 784-256-10 MLP step
 * measured 4x slower on 2 cores. Our workers poll briefly, yielding the CPU, then sleep on a
 * condition variable, so OpenBLAS's threads get the cores as soon as a loop is done.
 */
#include "core.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads); /* from libopenblas */

static atomic_int num_threads; /* 0 until initialised */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* OpenBLAS's thread count is process-wide. While lc_parallel_for_blas loops run (on any host
 * thread) it is 1; the last loop to finish, or lc_set_num_threads when none runs, sets it back
 * to the runtime's count. Guarded by blas_lock. */
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_single_loops;

static void blas_single(bool enter) {
  pthread_mutex_lock(&blas_lock);
  if (enter ? blas_single_loops++ == 0 : --blas_single_loops == 0)
    openblas_set_num_threads(enter ? 1 : atomic_load(&num_threads));
  pthread_mutex_unlock(&blas_lock);
}

static int cores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 && n < INT_MAX ? (int)n : 1;
}

static void init_threads(void) {
  int n = 0;
  const char *env = getenv("LUCID_NUM_THREADS");
  if (env && *env) {
    char *end = NULL;
    long v = strtol(env, &end, 10);
    if (end && *end == '\0' && v >= 1 && v <= INT_MAX) n = (int)v;
  }
  if (n < 1) n = cores();
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
  pthread_mutex_lock(&blas_lock);
  atomic_store(&num_threads, n);
  if (blas_single_loops == 0) openblas_set_num_threads(n);
  pthread_mutex_unlock(&blas_lock);
  return LC_OK;
}

int lc_get_num_threads(void) { return threads_now(); }

/* ---------------------------------------------------------------- the pool */

#define POOL_MAX 64    /* workers at most (threads beyond this count run serially) */
#define SPIN_POLLS 256 /* polls (each yielding the CPU) before a worker or caller sleeps */

typedef struct pool_job {
  lc_range_fn fn;
  void *ctx;
  int64_t n, chunk;
  int nworkers; /* workers 1..nworkers take chunks 1..nworkers */
} pool_job;

static struct {
  pthread_mutex_t busy; /* held by the host thread running a job */
  pthread_mutex_t lock; /* guards the fields below and the condition variables */
  pthread_cond_t wake, done;
  int started;             /* workers created so far */
  atomic_uint_fast64_t generation; /* bumped per job; workers wait for a change */
  atomic_int pending;      /* workers still running the current job */
  pool_job job;
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER,
          .lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static _Thread_local bool in_worker;
/* The generation current when worker i was created (it must not take an older job). */
static uint64_t start_generation[POOL_MAX + 1];

static void *worker_main(void *arg) {
  int id = (int)(intptr_t)arg; /* 1-based: chunk id */
  in_worker = true;
  uint64_t seen = start_generation[id];
  for (;;) {
    uint64_t g = atomic_load(&pool.generation);
    for (int i = 0; g == seen && i < SPIN_POLLS; i++) {
      sched_yield();
      g = atomic_load(&pool.generation);
    }
    if (g == seen) {
      pthread_mutex_lock(&pool.lock);
      while ((g = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
      pthread_mutex_unlock(&pool.lock);
    }
    seen = g;
    pool_job job = pool.job; /* published before the generation bump */
    if (id <= job.nworkers) { /* the others only acknowledge */
      int64_t b = (int64_t)id * job.chunk, e = b + job.chunk < job.n ? b + job.chunk : job.n;
      if (b < e) job.fn(job.ctx, b, e);
    }
    if (atomic_fetch_sub(&pool.pending, 1) == 1) {
      pthread_mutex_lock(&pool.lock);
      pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.lock);
    }
  }
  return NULL;
}

/* Makes sure `want` workers exist; returns how many do (fewer if thread creation fails). */
static int ensure_workers(int want) {
  if (want > POOL_MAX) want = POOL_MAX;
  while (pool.started < want) {
    pthread_t th;
    pthread_attr_t attr;
    start_generation[pool.started + 1] = atomic_load(&pool.generation);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, worker_main, (void *)(intptr_t)(pool.started + 1));
    pthread_attr_destroy(&attr);
    if (rc != 0) break;
    pool.started++;
  }
  return pool.started < want ? pool.started : want;
}

static void run(int64_t n, int64_t cost_per_item, lc_range_fn fn, void *ctx, bool blas) {
  if (n <= 0) return;
  if (cost_per_item < 1) cost_per_item = 1;
  int64_t work = n > INT64_MAX / cost_per_item ? INT64_MAX : n * cost_per_item;
  int nt = threads_now();
  if (nt <= 1 || work < LC_PARALLEL_GRAIN || in_worker) {
    fn(ctx, 0, n);
    return;
  }
  /* No more threads than the work pays for, nor than there are items. */
  int64_t want = work / LC_PARALLEL_GRAIN;
  if (want < nt) nt = (int)(want < 2 ? 2 : want);
  if (n < nt) nt = (int)n;
  if (pthread_mutex_trylock(&pool.busy) != 0) { /* another host thread has the pool */
    fn(ctx, 0, n);
    return;
  }
  if (blas) blas_single(true); /* after the serial exits: a serial loop keeps BLAS's threads */
  int nw = ensure_workers(nt - 1);
  int64_t chunk = (n + nw) / (nw + 1);
  pool.job = (pool_job){.fn = fn, .ctx = ctx, .n = n, .chunk = chunk, .nworkers = nw};
  /* every started worker acknowledges the job, so none can miss the next one */
  atomic_store(&pool.pending, pool.started);
  pthread_mutex_lock(&pool.lock);
  atomic_fetch_add(&pool.generation, 1);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);

  fn(ctx, 0, chunk < n ? chunk : n);

  for (int i = 0; atomic_load(&pool.pending) > 0 && i < SPIN_POLLS; i++) sched_yield();
  if (atomic_load(&pool.pending) > 0) {
    pthread_mutex_lock(&pool.lock);
    while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
  }
  pthread_mutex_unlock(&pool.busy);
  if (blas) blas_single(false);
}

void lc_blas_single_begin(void) {
  pthread_once(&init_once, init_threads);
  blas_single(true);
}

void lc_blas_single_end(void) { blas_single(false); }

void lc_parallel_for(int64_t n, int64_t cost_per_item, lc_range_fn fn, void *ctx) {
  run(n, cost_per_item, fn, ctx, false);
}

void lc_parallel_for_blas(int64_t n, int64_t cost_per_item, lc_range_fn fn, void *ctx) {
  run(n, cost_per_item, fn, ctx, true);
}
