/*
 * comm.c - lucid's collectives over MPI (include/lucid_distributed.h).
 *
 * One communication thread owns MPI (it calls MPI_Init_thread with MPI_THREAD_FUNNELED and every
 * MPI function after). Callers queue operations; the thread runs them in queue order, which is
 * the order every rank started them in, so collectives match across ranks. It runs each one as
 * a blocking MPI collective (see call() for why not MPI_I*), so the caller's thread keeps
 * computing meanwhile. A blocking call cannot be given a timeout: the waiting caller enforces
 * it instead (lc_dist_wait: no progress for the timeout makes the runtime broken). When the
 * computation fills every core, the thread runs at SCHED_IDLE (lc_dist_set_comm_priority):
 * Open MPI busy-polls while a peer is late, and at normal priority that polling took the core
 * from the computation.
 *
 * Layer: above the core (uses its public tensor API only), beside nn; the only code linked with
 * MPI (liblucid_distributed.a and the Lua module lucid.mpi).
 */
#include "lucid_distributed.h"
#include "shm.h"

#include <dlfcn.h>
#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum {
  W_ALL_REDUCE,
  W_BROADCAST,
  W_ALL_GATHER,
  W_REDUCE_SCATTER,
  W_BARRIER,
  W_ZEROS_SHARED
} wkind;

static const char *const kind_name[] = {"all_reduce",     "broadcast", "all_gather",
                                        "reduce_scatter", "barrier",   "zeros_shared"};

struct lc_dist_work {
  int refs; /* the queue's and the handle's, under G.lock */
  wkind kind;
  lc_dist_op op;
  int root;
  lc_tensor *a, *b; /* retained: the tensor (a), and the output of gather/scatter (b) */
  uint64_t seq;     /* 1, 2, ... in start order: named in timeout messages */
  size_t bytes;     /* zeros_shared: the size asked for */
  void *shm_data;   /* zeros_shared: this rank's segment, or NULL (not shared) */
  shm_region *shm;
  bool done;
  lc_status st;
  char msg[320];
  lc_dist_work *next;
};

enum { S_NONE, S_UP, S_BROKEN, S_FINALIZED };

static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake; /* work queued, or stop */
  pthread_cond_t done; /* some work completed, or init finished */
  pthread_t thread;
  bool stop, init_done;
  lc_status init_st;
  char init_msg[320];
  lc_dist_work *head, *tail;
  int state;
  char broken[320];
  int rank, size, local_rank, local_size;
  double timeout;
  uint64_t seq;
  uint64_t current; /* the operation the thread is in (0: none), for timeout messages */
  wkind current_kind;
  double progress; /* when the thread last finished an operation or went idle */
  lc_dist_stats stats;
  MPI_Comm comm; /* a duplicate of MPI_COMM_WORLD: lucid's traffic apart from the host's */
  lc_dist_priority priority; /* in effect: NORMAL or IDLE */
  bool shared_memory;        /* init's option: shared buffers may be used (shm.c) */
} G = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
    .size = 1,
    .local_size = 1,
    .timeout = 300,
    .priority = LC_DIST_PRIORITY_NORMAL,
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void mpi_message(int rc, char *buf, size_t cap) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
  snprintf(buf, cap, "%s", s);
}

/* ---------------------------------------------------------------- the communication thread */

static MPI_Datatype mpi_type(lc_dtype dt) {
  switch (dt) {
  case LC_FLOAT32: return MPI_FLOAT;
  case LC_FLOAT64: return MPI_DOUBLE;
  case LC_INT32: return MPI_INT32_T;
  case LC_INT64: return MPI_INT64_T;
  case LC_BOOL: return MPI_UINT8_T;
  default: return MPI_UINT16_T; /* float16, bfloat16: moved, never reduced */
  }
}

static MPI_Op mpi_op(lc_dist_op op) {
  switch (op) {
  case LC_DIST_MAX: return MPI_MAX;
  case LC_DIST_MIN: return MPI_MIN;
  default: return MPI_SUM;
  }
}

/* An all_gather whose input is this rank's block of its output (PyTorch's in-place form of
 * all_gather_into_tensor): nothing to copy in. */
static bool gather_in_place(const lc_tensor *out, const lc_tensor *in) {
  size_t block = (size_t)lc_numel(in) * lc_dtype_size(lc_dtype_of(in));
  return lc_same_storage(out, in) && lc_numel(out) == (int64_t)G.size * lc_numel(in) &&
         (char *)lc_data(in) == (char *)lc_data(out) + (size_t)G.rank * block;
}

/* Runs w as a blocking MPI collective. Blocking ones, not MPI_I* polled with MPI_Test: Open
 * MPI's non-blocking collectives (libnbc) move a 7 MB float all_reduce between two processes
 * here in 3.2 ms against 1.2 ms for MPI_Allreduce, and this thread exists so that blocking
 * costs the caller nothing. */
static int call(lc_dist_work *w) {
  if (w->kind == W_BARRIER) return MPI_Barrier(G.comm);
  void *a = lc_data(w->a);
  int n = (int)lc_numel(w->a);
  MPI_Datatype ty = mpi_type(lc_dtype_of(w->a));
  switch (w->kind) {
  case W_ALL_REDUCE: return MPI_Allreduce(MPI_IN_PLACE, a, n, ty, mpi_op(w->op), G.comm);
  case W_BROADCAST: return MPI_Bcast(a, n, ty, w->root, G.comm);
  case W_ALL_GATHER:
    if (gather_in_place(w->b, w->a))
      return MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, lc_data(w->b), n, ty, G.comm);
    return MPI_Allgather(a, n, ty, lc_data(w->b), n, ty, G.comm);
  case W_REDUCE_SCATTER:
    return MPI_Reduce_scatter_block(a, lc_data(w->b), (int)lc_numel(w->b), ty, mpi_op(w->op),
                                    G.comm);
  default: return MPI_ERR_OTHER;
  }
}

/* Runs w through shared memory (shm.c) when it can: an all_reduce (sum, avg) of a float tensor
 * that lies in a shared buffer, a broadcast of any tensor that does, an all_gather into one,
 * and zeros_shared. *used tells whether it did. Every rank decides alike, since every rank
 * passes the same kind of tensor to a collective. */
static int call_shared(lc_dist_work *w, bool *used) {
  *used = false;
  if (w->kind == W_ZEROS_SHARED) {
    *used = true;
    return shm_alloc(w->bytes, &w->shm_data, &w->shm, w->msg, sizeof w->msg);
  }
  lc_dtype dt = w->a ? lc_dtype_of(w->a) : LC_FLOAT32;
  if (w->kind == W_ALL_GATHER) {
    /* the output shared: the input copied into this rank's block first, unless it is it */
    int64_t n = lc_numel(w->b);
    size_t offset = 0, esz = lc_dtype_size(dt);
    shm_region *r = shm_find(lc_data(w->b), (size_t)n * esz, &offset);
    if (!r) return 0;
    *used = true;
    int64_t block = lc_numel(w->a);
    if (!gather_in_place(w->b, w->a))
      memcpy((char *)lc_data(w->b) + (size_t)G.rank * (size_t)block * esz, lc_data(w->a),
             (size_t)block * esz);
    return shm_all_gather(r, offset, block, dt, G.size, w->seq, w->msg, sizeof w->msg);
  }
  bool reduce = w->kind == W_ALL_REDUCE && (w->op == LC_DIST_SUM || w->op == LC_DIST_AVG) &&
                (dt == LC_FLOAT32 || dt == LC_FLOAT64);
  if (!reduce && w->kind != W_BROADCAST) return 0;
  int64_t n = lc_numel(w->a);
  size_t offset = 0;
  shm_region *r = shm_find(lc_data(w->a), (size_t)n * lc_dtype_size(dt), &offset);
  if (!r) return 0;
  *used = true;
  if (!reduce) return shm_broadcast(r, offset, n, dt, w->root, w->seq, w->msg, sizeof w->msg);
  return shm_all_reduce(r, offset, n, dt, w->op, G.size, w->seq, w->msg, sizeof w->msg);
}

static void divide_by_world(lc_tensor *t) {
  int64_t n = lc_numel(t);
  if (lc_dtype_of(t) == LC_FLOAT32) {
    float *p = lc_data(t), s = 1.0f / (float)G.size;
    for (int64_t i = 0; i < n; i++)
      p[i] *= s;
  } else {
    double *p = lc_data(t), s = 1.0 / (double)G.size;
    for (int64_t i = 0; i < n; i++)
      p[i] *= s;
  }
}

/* Runs w on the communication thread; sets w->st and w->msg. */
static void run(lc_dist_work *w) {
  pthread_mutex_lock(&G.lock);
  bool broken = G.state == S_BROKEN;
  if (broken) snprintf(w->msg, sizeof w->msg, "%s", G.broken);
  G.current = w->seq;
  G.current_kind = w->kind;
  pthread_mutex_unlock(&G.lock);
  if (broken) {
    w->st = LC_EIO;
    return;
  }
  double t0 = now_s();
  bool shared = false;
  int rc = call_shared(w, &shared);
  if (!shared) rc = call(w);
  bool keep_up = false; /* a refused request that left every rank in step */
  if (rc == SHM_REFUSED) {
    w->st = w->kind == W_ZEROS_SHARED ? LC_ESHAPE : LC_EIO;
    keep_up = w->kind == W_ZEROS_SHARED;
  } else if (rc != MPI_SUCCESS) {
    char m[MPI_MAX_ERROR_STRING];
    mpi_message(rc, m, sizeof m);
    w->st = LC_EIO;
    snprintf(w->msg, sizeof w->msg, "%s (operation %llu) failed in MPI on rank " LC_POS_D ": %s",
             kind_name[w->kind], (unsigned long long)w->seq, G.rank, m);
  } else if (!shared) {
    if (w->kind == W_ALL_REDUCE && w->op == LC_DIST_AVG) divide_by_world(w->a);
    if (w->kind == W_REDUCE_SCATTER && w->op == LC_DIST_AVG) divide_by_world(w->b);
  }
  pthread_mutex_lock(&G.lock);
  G.current = 0;
  if (w->st && !keep_up) {
    /* the job's state is unknown after a failed collective: nothing more may run */
    if (G.state == S_UP) {
      G.state = S_BROKEN;
      snprintf(G.broken, sizeof G.broken, "%s", w->msg);
    }
  } else if (!w->st && w->kind != W_ZEROS_SHARED) {
    G.stats.ops++;
    if (shared) G.stats.shared_ops++;
    if (w->a) G.stats.bytes += (uint64_t)lc_numel(w->a) * lc_dtype_size(lc_dtype_of(w->a));
    G.stats.busy_seconds += now_s() - t0;
  }
  pthread_mutex_unlock(&G.lock);
}

static void work_unref_locked(lc_dist_work *w) {
  if (--w->refs > 0) return;
  lc_release(w->a);
  lc_release(w->b);
  free(w);
}

static int env_int(const char *const *names, int def) {
  for (; *names; names++) {
    const char *v = getenv(*names);
    if (v && *v) return atoi(v);
  }
  return def;
}

static void init_on_thread(void) {
  int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS) {
    G.init_st = LC_EIO;
    snprintf(G.init_msg, sizeof G.init_msg, "init: MPI_Init_thread failed (error %d)", rc);
    return;
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &G.comm);
  MPI_Comm_set_errhandler(G.comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(G.comm, &G.rank);
  MPI_Comm_size(G.comm, &G.size);
  static const char *const lr[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", NULL};
  static const char *const ls[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", NULL};
  G.local_rank = env_int(lr, -1);
  G.local_size = env_int(ls, -1);
  if (G.local_rank < 0 || G.local_size < 1) {
    MPI_Comm node;
    MPI_Comm_split_type(G.comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &G.local_rank);
    MPI_Comm_size(node, &G.local_size);
    MPI_Comm_free(&node);
  }
  shm_setup(G.comm, G.rank, G.shared_memory);
  G.init_st = LC_OK;
}

static void *comm_main(void *arg) {
  (void)arg;
  init_on_thread();

  pthread_mutex_lock(&G.lock);
  G.init_done = true;
  pthread_cond_broadcast(&G.done);
  bool ok = G.init_st == LC_OK;
  pthread_mutex_unlock(&G.lock);
  if (!ok) return NULL;
  for (;;) {
    pthread_mutex_lock(&G.lock);
    while (!G.head && !G.stop)
      pthread_cond_wait(&G.wake, &G.lock);
    if (!G.head) { /* stop, queue drained */
      pthread_mutex_unlock(&G.lock);
      break;
    }
    lc_dist_work *w = G.head;
    G.head = w->next;
    if (!G.head) G.tail = NULL;
    pthread_mutex_unlock(&G.lock);
    run(w);
    pthread_mutex_lock(&G.lock);
    w->done = true;
    G.progress = now_s();
    work_unref_locked(w);
    pthread_cond_broadcast(&G.done);
    pthread_mutex_unlock(&G.lock);
  }
  /* finalize: MPI ends on the thread that initialized it (the funnel); shared buffers stay
   * mapped until their tensors die */
  shm_teardown();
  MPI_Comm_free(&G.comm);
  MPI_Finalize();
  return NULL;
}

/* ---------------------------------------------------------------- the API */

/* Keeps the code of this library and MPI's mapped and MPI's symbols visible to the plugins
 * Open MPI dlopens: a Lua module is loaded RTLD_LOCAL and may be dlclosed at lua_close while
 * the communication thread still runs (mpi4py promotes libmpi to RTLD_GLOBAL the same way). */
static void pin_libraries(void) {
  Dl_info info;
  if (dladdr((void *)MPI_Init_thread, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL | RTLD_NODELETE);
  if (dladdr((void *)lc_dist_init, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static bool launched_by_mpirun(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                     NULL};
  for (const char *const *v = vars; *v; v++)
    if (getenv(*v)) return true;
  return false;
}

lc_status lc_dist_init(const lc_dist_opts *opts) {
  double timeout = opts && opts->timeout > 0 ? opts->timeout : 300;
  if (opts && !(opts->timeout >= 0))
    return lc_set_error(LC_EARG, "init: timeout must be >= 0 seconds (got %g)", opts->timeout);
  lc_dist_priority prio = opts ? opts->comm_priority : LC_DIST_PRIORITY_AUTO;
  if (prio != LC_DIST_PRIORITY_AUTO && prio != LC_DIST_PRIORITY_NORMAL &&
      prio != LC_DIST_PRIORITY_IDLE)
    return lc_set_error(LC_EARG, "init: unknown comm_priority %d", (int)prio);
  pthread_mutex_lock(&G.lock);
  int state = G.state;
  pthread_mutex_unlock(&G.lock);
  if (state == S_UP || state == S_BROKEN)
    return lc_set_error(LC_ESTATE, "init: already initialized (rank " LC_POS_D " of %d)", G.rank,
                        G.size);
  if (state == S_FINALIZED)
    return lc_set_error(LC_ESTATE, "init: the process already left the job (finalize); MPI "
                                   "cannot be initialized twice in a process");
  if (!launched_by_mpirun())
    return lc_set_error(LC_ESTATE,
                        "init: this process was not launched by mpirun (OMPI_COMM_WORLD_SIZE "
                        "is not set): run it as `mpirun -np 2 lucid script.lua`");
  pin_libraries();
  G.timeout = timeout;
  G.shared_memory = !(opts && opts->no_shared_memory);
  G.init_done = false;
  if (pthread_create(&G.thread, NULL, comm_main, NULL) != 0)
    return lc_set_error(LC_EIO, "init: cannot start the communication thread (%s)",
                        strerror(errno));
  pthread_mutex_lock(&G.lock);
  while (!G.init_done)
    pthread_cond_wait(&G.done, &G.lock);
  lc_status st = G.init_st;
  if (!st) G.state = S_UP;
  pthread_mutex_unlock(&G.lock);
  if (st) {
    pthread_join(G.thread, NULL);
    return lc_set_error(st, "%s", G.init_msg);
  }
  /* a refused reschedule (a container without the right) leaves the default: not fatal */
  (void)lc_dist_set_comm_priority(prio);
  return LC_OK;
}

bool lc_dist_is_initialized(void) {
  pthread_mutex_lock(&G.lock);
  bool up = G.state == S_UP || G.state == S_BROKEN;
  pthread_mutex_unlock(&G.lock);
  return up;
}

int lc_dist_rank(void) { return G.rank; }
int lc_dist_world_size(void) { return G.size; }
int lc_dist_local_rank(void) { return G.local_rank; }
int lc_dist_local_size(void) { return G.local_size; }
double lc_dist_timeout(void) { return G.timeout; }

lc_status lc_dist_set_timeout(double seconds) {
  if (!(seconds > 0) || seconds > 1e9)
    return lc_set_error(LC_EARG, "set_timeout: seconds must be > 0 (got %g)", seconds);
  pthread_mutex_lock(&G.lock);
  G.timeout = seconds;
  pthread_mutex_unlock(&G.lock);
  return LC_OK;
}

lc_status lc_dist_set_comm_priority(lc_dist_priority p) {
  if (p != LC_DIST_PRIORITY_AUTO && p != LC_DIST_PRIORITY_NORMAL && p != LC_DIST_PRIORITY_IDLE)
    return lc_set_error(LC_EARG, "set_comm_priority: unknown priority %d", (int)p);
  if (!lc_dist_is_initialized())
    return lc_set_error(LC_ESTATE, "set_comm_priority: not initialized");
  if (p == LC_DIST_PRIORITY_AUTO) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    bool busy = (long)G.local_size * lc_get_num_threads() >= (cores > 0 ? cores : 1);
    p = busy ? LC_DIST_PRIORITY_IDLE : LC_DIST_PRIORITY_NORMAL;
  }
  struct sched_param sp = {0};
  int rc =
      pthread_setschedparam(G.thread, p == LC_DIST_PRIORITY_IDLE ? SCHED_IDLE : SCHED_OTHER, &sp);
  if (rc != 0)
    return lc_set_error(LC_EIO,
                        "set_comm_priority: cannot reschedule the communication thread "
                        "(%s)",
                        strerror(rc));
  pthread_mutex_lock(&G.lock);
  G.priority = p;
  pthread_mutex_unlock(&G.lock);
  return LC_OK;
}

lc_dist_priority lc_dist_comm_priority(void) {
  pthread_mutex_lock(&G.lock);
  lc_dist_priority p = G.priority;
  pthread_mutex_unlock(&G.lock);
  return p;
}

void lc_dist_get_stats(lc_dist_stats *out) {
  pthread_mutex_lock(&G.lock);
  *out = G.stats;
  pthread_mutex_unlock(&G.lock);
}

static lc_status check_up(const char *fn) {
  pthread_mutex_lock(&G.lock);
  int state = G.state;
  char msg[320];
  snprintf(msg, sizeof msg, "%s", G.broken);
  pthread_mutex_unlock(&G.lock);
  if (state == S_UP) return LC_OK;
  if (state == S_BROKEN) return lc_set_error(LC_EIO, "%s: the job has failed: %s", fn, msg);
  if (state == S_FINALIZED) return lc_set_error(LC_ESTATE, "%s: called after finalize", fn);
  return lc_set_error(LC_ESTATE, "%s: call init first (under mpirun)", fn);
}

static lc_status check_tensor(const char *fn, const char *what, const lc_tensor *t, bool reduce,
                              lc_dist_op op) {
  if (!t) return lc_set_error(LC_EARG, "%s: %s is NULL", fn, what);
  if (!lc_is_contiguous(t))
    return lc_set_error(LC_EARG, "%s: %s must be contiguous (call :contiguous() first)", fn, what);
  if (lc_numel(t) > INT32_MAX)
    return lc_set_error(LC_EARG, "%s: %s has %lld elements; at most %d per call", fn, what,
                        (long long)lc_numel(t), INT32_MAX);
  lc_dtype dt = lc_dtype_of(t);
  if (reduce &&
      (lc_dtype_is_half(dt) || (dt == LC_BOOL && (op == LC_DIST_SUM || op == LC_DIST_AVG))))
    return lc_set_error(LC_EDTYPE, "%s: cannot reduce %s tensors with %s", fn, lc_dtype_name(dt),
                        op == LC_DIST_AVG   ? "avg"
                        : op == LC_DIST_SUM ? "sum"
                                            : "max/min");
  if (reduce && op == LC_DIST_AVG && dt != LC_FLOAT32 && dt != LC_FLOAT64)
    return lc_set_error(LC_EDTYPE, "%s: avg needs a float32 or float64 tensor (got %s)", fn,
                        lc_dtype_name(dt));
  if ((unsigned)op > LC_DIST_MIN) return lc_set_error(LC_EARG, "%s: unknown reduce op %d", fn, op);
  return LC_OK;
}

/* Queues w (one reference for the queue, one for the caller), then waits when work is NULL. */
static lc_status submit(lc_dist_work *w, lc_dist_work **work) {
  pthread_mutex_lock(&G.lock);
  w->seq = ++G.seq;
  w->refs = 2;
  if (G.tail)
    G.tail->next = w;
  else
    G.head = w;
  G.tail = w;
  pthread_cond_signal(&G.wake);
  pthread_mutex_unlock(&G.lock);
  if (work) {
    *work = w;
    return LC_OK;
  }
  lc_status st = lc_dist_wait(w);
  lc_dist_work_free(w);
  return st;
}

static lc_dist_work *new_work(wkind kind, lc_tensor *a, lc_tensor *b) {
  lc_dist_work *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->kind = kind;
  w->a = lc_retain(a);
  w->b = lc_retain(b);
  return w;
}

#define NEW_WORK(w, kind, a, b)                                                                    \
  lc_dist_work *w = new_work(kind, a, b);                                                          \
  if (!w) return lc_set_error(LC_ENOMEM, "%s: out of memory", kind_name[kind])

lc_status lc_dist_all_reduce(lc_tensor *t, lc_dist_op op, lc_dist_work **work) {
  lc_status st = check_up("all_reduce");
  if (!st) st = check_tensor("all_reduce", "tensor", t, true, op);
  if (st) return st;
  lc_bump_version(t);
  NEW_WORK(w, W_ALL_REDUCE, t, NULL);
  w->op = op;
  return submit(w, work);
}

static lc_status check_rank(const char *fn, const char *what, int rank) {
  if (rank < 0 || rank >= G.size)
    return lc_set_error(LC_EINDEX, "%s: %s " LC_POS_D " out of range for %d ranks", fn, what, rank,
                        G.size);
  return LC_OK;
}

lc_status lc_dist_broadcast(lc_tensor *t, int root, lc_dist_work **work) {
  lc_status st = check_up("broadcast");
  if (!st) st = check_tensor("broadcast", "tensor", t, false, LC_DIST_SUM);
  if (!st) st = check_rank("broadcast", "root", root);
  if (st) return st;
  lc_bump_version(t);
  NEW_WORK(w, W_BROADCAST, t, NULL);
  w->root = root;
  return submit(w, work);
}

static lc_status check_pair(const char *fn, const lc_tensor *out, const lc_tensor *in, bool reduce,
                            lc_dist_op op, bool out_is_big) {
  lc_status st = check_up(fn);
  if (!st) st = check_tensor(fn, "input", in, reduce, op);
  if (!st) st = check_tensor(fn, "output", out, false, op);
  if (st) return st;
  if (lc_dtype_of(out) != lc_dtype_of(in))
    return lc_set_error(LC_EDTYPE, "%s: output is %s but input is %s", fn,
                        lc_dtype_name(lc_dtype_of(out)), lc_dtype_name(lc_dtype_of(in)));
  const lc_tensor *big = out_is_big ? out : in, *small = out_is_big ? in : out;
  if (lc_numel(big) != (int64_t)G.size * lc_numel(small))
    return lc_set_error(LC_ESHAPE,
                        "%s: %s must have world_size (%d) x %lld = %lld elements (got %lld)", fn,
                        out_is_big ? "output" : "input", G.size, (long long)lc_numel(small),
                        (long long)G.size * lc_numel(small), (long long)lc_numel(big));
  if (lc_same_storage(out, in) && !(out_is_big && gather_in_place(out, in)))
    return lc_set_error(LC_EARG,
                        out_is_big ? "%s: output and input must not share storage, unless input "
                                     "is this rank's block of output"
                                   : "%s: output and input must not share storage",
                        fn);
  return LC_OK;
}

lc_status lc_dist_all_gather(lc_tensor *out, const lc_tensor *in, lc_dist_work **work) {
  lc_status st = check_pair("all_gather", out, in, false, LC_DIST_SUM, true);
  if (st) return st;
  lc_bump_version(out);
  NEW_WORK(w, W_ALL_GATHER, (lc_tensor *)in, out);
  return submit(w, work);
}

lc_status lc_dist_reduce_scatter(lc_tensor *out, const lc_tensor *in, lc_dist_op op,
                                 lc_dist_work **work) {
  lc_status st = check_pair("reduce_scatter", out, in, true, op, false);
  if (st) return st;
  lc_bump_version(out);
  NEW_WORK(w, W_REDUCE_SCATTER, (lc_tensor *)in, out);
  w->op = op;
  return submit(w, work);
}

lc_status lc_dist_zeros_shared(int64_t numel, lc_dtype dt, lc_tensor **out) {
  if (!out) return lc_set_error(LC_EARG, "zeros_shared: out is NULL");
  *out = NULL;
  lc_status st = check_up("zeros_shared");
  if (st) return st;
  if ((unsigned)dt >= LC_DTYPE_COUNT)
    return lc_set_error(LC_EDTYPE, "zeros_shared: unknown dtype %d", (int)dt);
  if (numel < 0 || numel > INT32_MAX)
    return lc_set_error(LC_EARG, "zeros_shared: numel must be in 0..%d (got %lld)", INT32_MAX,
                        (long long)numel);
  NEW_WORK(w, W_ZEROS_SHARED, NULL, NULL);
  w->bytes = (size_t)numel * lc_dtype_size(dt);
  lc_dist_work *h = NULL;
  (void)submit(w, &h);
  st = lc_dist_wait(h);
  if (!st && !h->shm) st = lc_zeros(1, &numel, dt, out);
  if (!st && h->shm) {
    st = lc_from_buffer(1, &numel, dt, h->shm_data, shm_release, h->shm, out);
    if (st) shm_release(h->shm, h->shm_data);
  }
  lc_dist_work_free(h);
  return st;
}

bool lc_dist_is_shared(const lc_tensor *t) {
  size_t offset;
  return t && lc_numel(t) > 0 &&
         shm_find(lc_data(t), (size_t)lc_numel(t) * lc_dtype_size(lc_dtype_of(t)), &offset);
}

lc_status lc_dist_shared_view(const lc_tensor *t, int rank, lc_tensor **out) {
  if (!out) return lc_set_error(LC_EARG, "shared_view: out is NULL");
  *out = NULL;
  lc_status st = check_up("shared_view");
  if (!st) st = check_tensor("shared_view", "tensor", t, false, LC_DIST_SUM);
  if (!st) st = check_rank("shared_view", "rank", rank);
  if (st) return st;
  size_t offset = 0, bytes = (size_t)lc_numel(t) * lc_dtype_size(lc_dtype_of(t));
  shm_region *r = lc_numel(t) > 0 ? shm_find(lc_data(t), bytes, &offset) : NULL;
  if (!r)
    return lc_set_error(LC_EARG, "shared_view: the tensor is not in shared memory (see "
                                 "zeros_shared)");
  void *p = shm_peer(r, offset, rank);
  if (!p)
    return lc_set_error(LC_EARG, "shared_view: rank " LC_POS_D " is not on this machine", rank);
  st = lc_from_buffer(lc_ndim(t), lc_shape(t), lc_dtype_of(t), p, shm_release, r, out);
  if (st) shm_release(r, p);
  return st;
}

lc_status lc_dist_barrier(lc_dist_work **work) {
  lc_status st = check_up("barrier");
  if (st) return st;
  NEW_WORK(w, W_BARRIER, NULL, NULL);
  return submit(w, work);
}

/* The timeout: the communication thread has not finished an operation for G.timeout seconds
 * while w waits. The job is then broken (see lucid_distributed.h). Called with G.lock held. */
static void time_out_locked(void) {
  if (G.state != S_UP) return;
  uint64_t seq = G.current;
  G.state = S_BROKEN;
  snprintf(G.broken, sizeof G.broken,
           "%s (operation %llu) did not complete within %g s on rank " LC_POS_D
           " of %d: another rank "
           "failed, exited, or did not start the same collective; end the job "
           "(lucid.distributed.abort)",
           seq ? kind_name[G.current_kind] : "a queued collective", (unsigned long long)seq,
           G.timeout, G.rank, G.size);
}

lc_status lc_dist_wait(lc_dist_work *w) {
  if (!w) return lc_set_error(LC_EARG, "wait: work is NULL");
  pthread_mutex_lock(&G.lock);
  /* progress: the thread finished something, or w was queued, within the timeout */
  double since = now_s();
  if (G.progress > since) since = G.progress;
  while (!w->done && G.state != S_BROKEN) {
    double last = G.progress > since ? G.progress : since;
    double deadline = last + G.timeout;
    double left = deadline - now_s();
    if (left <= 0) {
      time_out_locked();
      break;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double secs = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + (left < 1 ? left : 1);
    ts.tv_sec = (time_t)secs;
    ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
    pthread_cond_timedwait(&G.done, &G.lock, &ts);
  }
  lc_status st = w->done ? w->st : LC_EIO;
  char msg[320];
  snprintf(msg, sizeof msg, "%s", w->done ? w->msg : G.broken);
  pthread_mutex_unlock(&G.lock);
  return st ? lc_set_error(st, "%s", msg) : LC_OK;
}

bool lc_dist_is_completed(const lc_dist_work *w) {
  pthread_mutex_lock(&G.lock);
  bool done = w && w->done;
  pthread_mutex_unlock(&G.lock);
  return done;
}

void lc_dist_work_free(lc_dist_work *w) {
  if (!w) return;
  pthread_mutex_lock(&G.lock);
  work_unref_locked(w);
  pthread_mutex_unlock(&G.lock);
}

lc_status lc_dist_finalize(void) {
  lc_status st = check_up("finalize");
  if (st) return st;
  /* every rank reaches this point before any leaves: MPI_Finalize is collective, and a rank
   * that never comes would hang it without a timeout */
  st = lc_dist_barrier(NULL);
  if (st) return st; /* broken: the thread may be stuck in MPI, so it is not joined */
  pthread_mutex_lock(&G.lock);
  G.stop = true;
  pthread_cond_signal(&G.wake);
  pthread_mutex_unlock(&G.lock);
  pthread_join(G.thread, NULL);
  pthread_mutex_lock(&G.lock);
  G.state = S_FINALIZED;
  pthread_mutex_unlock(&G.lock);
  return LC_OK;
}

void lc_dist_abort(int code, const char *msg) {
  if (msg) {
    if (G.size > 1 || lc_dist_is_initialized())
      fprintf(stderr, "lucid.distributed: rank %d of %d: %s\n", G.rank + 1, G.size, msg);
    else
      fprintf(stderr, "lucid.distributed: %s\n", msg);
    fflush(stderr);
  }
  if (lc_dist_is_initialized()) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
  _exit(code ? code : 1);
}
