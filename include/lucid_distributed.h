/*
 * lucid_distributed.h - collectives on tensors across processes, over MPI (data-parallel
 * training: docs/distributed.md).
 *
 * This part lives in its own library, liblucid_distributed (build/liblucid_distributed.a), the
 * only one linked with MPI: liblucid and the Lua module lucid.core stay free of it. A C host
 * links liblucid_distributed, liblucid and MPI (`mpicc --showme:link`) and runs under mpirun.
 *
 * Ranks are 0-based here (the Lua binding shows them 1-based). Every collective must be called
 * by every process in the same order with tensors of the same shape and dtype, as in MPI and
 * PyTorch. The tensors must be contiguous; the operation works in place on their data (it
 * bypasses autograd and bumps the tensor's version counter).
 *
 * Communication runs on one thread of its own that owns MPI (MPI_THREAD_FUNNELED), so a
 * non-blocking collective makes progress while the caller computes (DistributedDataParallel
 * overlaps gradient all-reduces with the rest of backward this way). Operations run in the
 * order they were started. An operation that has not completed within the timeout (a rank
 * died, raised an error or calls a different collective) fails with LC_EIO and a message
 * saying so; the runtime is then broken: every later call fails at once with that message,
 * and the host should end the job (lc_dist_abort).
 */
#ifndef LUCID_DISTRIBUTED_H
#define LUCID_DISTRIBUTED_H

#include "lucid_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lc_dist_op {
  LC_DIST_SUM = 0,
  LC_DIST_AVG, /* the sum divided by the world size; float dtypes only */
  LC_DIST_MAX,
  LC_DIST_MIN
} lc_dist_op;

/* How the communication thread is scheduled. When the machine's cores are all computing
 * (processes on this machine x lc_get_num_threads() >= online cores), an MPI collective waiting
 * for a slower rank busy-polls and takes CPU from the computation on its core; at SCHED_IDLE
 * the thread runs only when a core would otherwise idle (the end of backward, where the caller
 * waits), which measured faster here (docs/distributed.md). With a spare core, normal priority
 * lets communication overlap computation. AUTO picks between the two by that rule. */
typedef enum lc_dist_priority {
  LC_DIST_PRIORITY_AUTO = 0,
  LC_DIST_PRIORITY_NORMAL,
  LC_DIST_PRIORITY_IDLE
} lc_dist_priority;

typedef struct lc_dist_opts {
  double timeout; /* seconds an operation may take before the job counts as failed; 0: 300 */
  lc_dist_priority comm_priority;
  bool no_shared_memory; /* true: lc_dist_zeros_shared hands out ordinary tensors */
} lc_dist_opts;

/* Joins the job mpirun started (LC_ESTATE when the process was not launched by mpirun or
 * mpiexec, or when already initialized). opts may be NULL. */
lc_status lc_dist_init(const lc_dist_opts *opts);
bool lc_dist_is_initialized(void);
int lc_dist_rank(void);       /* 0-based; 0 before init */
int lc_dist_world_size(void); /* 1 before init */
int lc_dist_local_rank(void); /* among the processes on this machine */
int lc_dist_local_size(void);
lc_status lc_dist_set_timeout(double seconds);
double lc_dist_timeout(void);
/* Reschedules the communication thread (AUTO: decided again from the current thread count,
 * for a host that changes it after init). The priority in effect is returned by the getter,
 * never AUTO. */
lc_status lc_dist_set_comm_priority(lc_dist_priority p);
lc_dist_priority lc_dist_comm_priority(void);

/* A started operation. With work == NULL a collective blocks until done; otherwise *work
 * receives a handle: lc_dist_wait blocks until the operation is done and returns its status
 * (again on every later call), lc_dist_is_completed polls. The handle keeps the tensors alive;
 * lc_dist_work_free may be called before completion (the operation still runs). */
typedef struct lc_dist_work lc_dist_work;
lc_status lc_dist_wait(lc_dist_work *w);
bool lc_dist_is_completed(const lc_dist_work *w);
void lc_dist_work_free(lc_dist_work *w); /* NULL-safe */

/* t op= the same tensor of every rank. */
lc_status lc_dist_all_reduce(lc_tensor *t, lc_dist_op op, lc_dist_work **work);
/* t = root's t. */
lc_status lc_dist_broadcast(lc_tensor *t, int root, lc_dist_work **work);
/* out = the ranks' `in` stacked in rank order: out has world_size * numel(in) elements (any
 * shape), the dtype of in. */
lc_status lc_dist_all_gather(lc_tensor *out, const lc_tensor *in, lc_dist_work **work);
/* in (world_size * numel(out) elements) is reduced over the ranks and rank r receives block r
 * into out. */
lc_status lc_dist_reduce_scatter(lc_tensor *out, const lc_tensor *in, lc_dist_op op,
                                 lc_dist_work **work);
lc_status lc_dist_barrier(lc_dist_work **work);

/* A 1-D tensor of numel zeros in memory that the processes of this machine share: an
 * all_reduce (sum or avg) of it, or of a contiguous part of it, runs through that memory
 * instead of MPI messages, each process reducing its share straight from every process's
 * buffer (3-4x faster than MPI_Allreduce between 2 processes here; DistributedDataParallel's
 * gradient buckets are such tensors); so does a broadcast of it or of a part (each process
 * copies from the source's buffer). Collective: every rank calls it in the same order with
 * the same numel and dtype (else LC_ESHAPE on every rank, and the runtime stays usable), and
 * an all_reduce or broadcast of a shared tensor needs every rank to pass a shared tensor and
 * the same part of it (a mismatch fails the job). Without a second process on the machine, with
 * unequal numbers of processes per machine, with init's no_shared_memory, or when the memory cannot
 * be had, the tensor is an ordinary one (lc_dist_is_shared tells) and works the same way. The
 * memory stays valid after finalize, until the tensor is released. */
lc_status lc_dist_zeros_shared(int64_t numel, lc_dtype dt, lc_tensor **out);
bool lc_dist_is_shared(const lc_tensor *t);
/* A tensor over the same elements as the shared tensor t (from lc_dist_zeros_shared, or a
 * contiguous part of one), in the memory of `rank` (0-based), which must run on this machine:
 * reads see that rank's values, writes change them. Keeps the memory mapped while it lives.
 * Not collective; the caller orders the ranks' accesses (barriers). */
lc_status lc_dist_shared_view(const lc_tensor *t, int rank, lc_tensor **out);

/* Counters since init, for benchmarks: bytes of tensor data this rank handed to collectives,
 * operations completed (of them, all_reduces and broadcasts run through shared memory), and seconds
 * the communication thread spent inside them. */
typedef struct lc_dist_stats {
  uint64_t bytes;
  uint64_t ops;
  uint64_t shared_ops;
  double busy_seconds;
} lc_dist_stats;
void lc_dist_get_stats(lc_dist_stats *out);

/* Leaves the job: waits for started operations (within the timeout), then MPI_Finalize. A
 * broken runtime (see above) is not finalized: LC_EIO, and the host should lc_dist_abort. */
lc_status lc_dist_finalize(void);
/* Ends the whole job now (MPI_Abort on every rank, exit status code), for a rank that failed:
 * the other ranks stop instead of waiting for it. Prints msg (if not NULL) to stderr first,
 * prefixed with the rank. Does not return. */
void lc_dist_abort(int code, const char *msg);

#ifdef __cplusplus
}
#endif
#endif
