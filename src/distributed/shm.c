/*
 * shm.c - buffers in memory the processes of one machine share, and the all_reduce that runs
 * through them (shm.h; lc_dist_zeros_shared).
 *
 * Why: between the processes of one machine an MPI all_reduce moves the data through Open
 * MPI's shared-memory transport, copying it into and out of its fragments around the
 * reduction: 2.3-2.9 ms for DistributedDataParallel's 7.46 MB bucket between 2 processes here.
 * When every process's buffer already lives in memory all of them map, each process instead
 * sums its 1/n share of the elements straight from the n buffers and writes the result into
 * all of them: 0.6-0.7 ms, one read of each input and one write of each output.
 *
 * The memory is one POSIX shared-memory object per allocation, created by the group's first
 * member, mapped by all and unlinked at once (nothing is left in /dev/shm, and each process
 * unmaps it when its tensor dies, with no collective call). It is lucid's, not an MPI window,
 * because an MPI window dies at MPI_Finalize while a Lua tensor may outlive it; MPI carries
 * all the coordination: the object's name, the barriers around each reduction and, across
 * machines, the all_reduce of each share between the members of the same index of every
 * group (a hierarchical all_reduce).
 *
 * Layout of a region: a page of per-member slots (what each member's current all_reduce
 * covers, compared before any data is touched), then one page-aligned segment per member.
 */
#include "shm.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define SLOT 64 /* bytes per member slot: one cache line each */
#define SHM_MAX_MEMBERS 256

struct shm_region {
  shm_region *next;
  char *map;
  size_t total;      /* bytes mapped */
  size_t hdr;        /* bytes of the slot page(s) */
  size_t seg;        /* stride between segments */
  size_t bytes;      /* usable bytes of each segment */
  int members, self; /* the group's size and this process's index in it */
  int refs;          /* tensors mapping it (its zeros_shared tensor, peer views), under S.lock */
};

#define SHM_OP_BROADCAST (-1)
#define SHM_OP_GATHER (-2)
typedef struct {
  int64_t offset, numel; /* bytes, elements */
  int32_t dtype, op;     /* op: the reduction, or SHM_OP_BROADCAST, SHM_OP_GATHER */
  uint64_t seq;
  int32_t world_rank, root; /* root: a broadcast's (0-based world rank) */
} slot;

static struct {
  MPI_Comm world, group, cross;
  int world_rank, grank, gsize, ncross;
  int *place;  /* per world rank: its index in its group and its rank in its cross comm */
  int *member; /* per world rank: its index in this process's group, or -1 (another machine) */
  int *counts; /* 2 x ncross: all_gather's counts and displacements across machines */
  bool usable;
  unsigned counter;     /* objects this process created: part of their names */
  pthread_mutex_t lock; /* the region list */
  shm_region *regions;
} S = {.group = MPI_COMM_NULL, .cross = MPI_COMM_NULL, .lock = PTHREAD_MUTEX_INITIALIZER};

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* Around the barriers that order the processes' reads and writes of the shared segments.
 * (MPI_Barrier orders them in practice too: it synchronises through shared-memory atomics.)
 * ThreadSanitizer rejects fences; it sees nothing of another process's accesses anyway. */
static void fence(void) {
#ifndef __SANITIZE_THREAD__
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

void shm_setup(MPI_Comm world, int world_rank, bool enabled) {
  S.world = world;
  S.world_rank = world_rank;
  S.usable = false;
  MPI_Comm node;
  if (MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS)
    return;
  const char *env = getenv("LUCID_DIST_SHM_GROUP");
  int cut = env && *env ? atoi(env) : 0;
  int nrank;
  MPI_Comm_rank(node, &nrank);
  if (cut > 0) {
    MPI_Comm_split(node, nrank / cut, nrank, &S.group);
    MPI_Comm_free(&node);
  } else {
    S.group = node;
  }
  MPI_Comm_set_errhandler(S.group, MPI_ERRORS_RETURN);
  MPI_Comm_rank(S.group, &S.grank);
  MPI_Comm_size(S.group, &S.gsize);
  MPI_Comm_split(world, S.grank, world_rank, &S.cross);
  MPI_Comm_set_errhandler(S.cross, MPI_ERRORS_RETURN);
  MPI_Comm_size(S.cross, &S.ncross);
  /* the same decision on every rank: a group with shared buffers must never meet one that
   * sends its all_reduce through MPI */
  int v[3] = {S.gsize, -S.gsize, enabled}; /* min size, -max size, enabled everywhere */
  if (MPI_Allreduce(MPI_IN_PLACE, v, 3, MPI_INT, MPI_MIN, world) != MPI_SUCCESS) return;
  bool usable = v[2] && v[0] == -v[1] && S.gsize > 1 && S.gsize <= SHM_MAX_MEMBERS;
  /* where every rank sits, for broadcast (every rank takes the same branch: usable is global) */
  if (usable) {
    int world_size, mine[2];
    MPI_Comm_size(world, &world_size);
    MPI_Comm_rank(S.cross, &mine[1]);
    mine[0] = S.grank;
    S.place = malloc(sizeof(int) * 2 * (size_t)world_size);
    S.member = malloc(sizeof(int) * 2 * (size_t)world_size);
    S.counts = malloc(sizeof(int) * 2 * (size_t)S.ncross);
    int ok = S.place && S.member && S.counts; /* else no rank shares: decided by all */
    if (MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, world) != MPI_SUCCESS || !ok) return;
    if (MPI_Allgather(mine, 2, MPI_INT, S.place, 2, MPI_INT, world) != MPI_SUCCESS) return;
    MPI_Group wg, gg;
    MPI_Comm_group(world, &wg);
    MPI_Comm_group(S.group, &gg);
    int *ranks = S.member + world_size;
    for (int w = 0; w < world_size; w++)
      ranks[w] = w;
    MPI_Group_translate_ranks(wg, world_size, ranks, gg, S.member);
    for (int w = 0; w < world_size; w++)
      if (S.member[w] == MPI_UNDEFINED) S.member[w] = -1;
    MPI_Group_free(&wg);
    MPI_Group_free(&gg);
  }
  S.usable = usable;
}

void shm_teardown(void) {
  free(S.place);
  free(S.member);
  free(S.counts);
  S.place = S.member = S.counts = NULL;
  if (S.cross != MPI_COMM_NULL) MPI_Comm_free(&S.cross);
  if (S.group != MPI_COMM_NULL) MPI_Comm_free(&S.group);
  S.usable = false;
}

static char *segment(const shm_region *r, int member) {
  return r->map + r->hdr + (size_t)member * r->seg;
}

static slot *slot_of(const shm_region *r, int member) {
  return (slot *)(void *)(r->map + (size_t)member * SLOT);
}

int shm_alloc(size_t bytes, void **data, shm_region **region, char *msg, size_t cap) {
  *data = NULL;
  *region = NULL;
  /* the same sizes everywhere, shared or not (the error must not depend on the machine); a
   * member that mapped more than the creator allocated would fault past the object's end */
  unsigned long long range[2] = {bytes, ~(unsigned long long)bytes};
  int rc = MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, S.world);
  if (rc != MPI_SUCCESS) return rc;
  if (range[0] != ~range[1]) {
    snprintf(msg, cap,
             "zeros_shared: the ranks asked for different sizes (%llu to %llu bytes; this rank "
             "%llu): every rank must pass the same numel and dtype",
             ~range[1], range[0], (unsigned long long)bytes);
    return SHM_REFUSED;
  }
  if (!S.usable || bytes == 0) return MPI_SUCCESS; /* nothing to share */
  size_t seg = round_up(bytes, PAGE), hdr = round_up((size_t)S.gsize * SLOT, PAGE);
  size_t total = hdr + seg * (size_t)S.gsize;
  int who[3] = {0, (int)getpid(), (int)++S.counter}; /* ok, creator's pid, its counter */
  char name[64];
  int fd = -1;
  if (S.grank == 0) {
    snprintf(name, sizeof name, "/lucid.%d.%d", who[1], who[2]);
    fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    /* fallocate, not ftruncate: a full /dev/shm fails here, not as SIGBUS on a later write */
    if (fd >= 0 && posix_fallocate(fd, 0, (off_t)total) != 0) {
      close(fd);
      shm_unlink(name);
      fd = -1;
    }
    who[0] = fd >= 0;
  }
  rc = MPI_Bcast(who, 3, MPI_INT, 0, S.group);
  if (rc == MPI_SUCCESS && S.grank != 0 && who[0]) {
    snprintf(name, sizeof name, "/lucid.%d.%d", who[1], who[2]);
    fd = shm_open(name, O_RDWR, 0);
  }
  void *map = MAP_FAILED;
  if (fd >= 0) {
    map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
  }
  shm_region *r = map != MAP_FAILED ? calloc(1, sizeof *r) : NULL;
  int ok = r != NULL;
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, S.world);
  if (S.grank == 0 && who[0]) shm_unlink(name); /* every member has opened it, or failed */
  if (rc != MPI_SUCCESS || !ok) {
    if (map != MAP_FAILED) munmap(map, total);
    free(r);
    return rc;
  }
  *r = (shm_region){.map = map,
                    .total = total,
                    .hdr = hdr,
                    .seg = seg,
                    .bytes = bytes,
                    .members = S.gsize,
                    .self = S.grank,
                    .refs = 1};
  pthread_mutex_lock(&S.lock);
  r->next = S.regions;
  S.regions = r;
  pthread_mutex_unlock(&S.lock);
  *data = segment(r, r->self);
  *region = r;
  return MPI_SUCCESS;
}

void shm_release(void *ctx, void *data) {
  (void)data;
  shm_region *r = ctx;
  pthread_mutex_lock(&S.lock);
  bool last = --r->refs == 0;
  if (last)
    for (shm_region **p = &S.regions; *p; p = &(*p)->next)
      if (*p == r) {
        *p = r->next;
        break;
      }
  pthread_mutex_unlock(&S.lock);
  if (!last) return;
  munmap(r->map, r->total);
  free(r);
}

void *shm_peer(shm_region *r, size_t offset, int world_rank) {
  /* S.member exists from setup to teardown, while the runtime is up (the caller checks) */
  int q = S.member ? S.member[world_rank] : -1;
  if (q < 0 || q >= r->members) return NULL;
  pthread_mutex_lock(&S.lock);
  r->refs++;
  pthread_mutex_unlock(&S.lock);
  return segment(r, q) + offset;
}

shm_region *shm_find(const void *p, size_t bytes, size_t *offset) {
  uintptr_t c = (uintptr_t)p;
  shm_region *found = NULL;
  pthread_mutex_lock(&S.lock);
  for (shm_region *r = S.regions; r && !found; r = r->next) {
    uintptr_t own = (uintptr_t)segment(r, r->self);
    if (c >= own && c - own <= r->bytes && bytes <= r->bytes - (c - own)) {
      *offset = c - own;
      found = r;
    }
  }
  pthread_mutex_unlock(&S.lock);
  return found;
}

/* dst[i] = scale * sum over the group's segments, written into every segment; the sum runs in
 * blocks so that it vectorises and each input is read once. */
#define REDUCE_BLOCK 512
#define DEFINE_REDUCE(name, T)                                                                     \
  static void name(char *const *seg, int n, size_t lo, size_t hi, T scale, bool write_all) {       \
    if (n == 2 && write_all) {                                                                     \
      T *a = (T *)(void *)seg[0], *b = (T *)(void *)seg[1];                                        \
      for (size_t i = lo; i < hi; i++) {                                                           \
        T v = (a[i] + b[i]) * scale;                                                               \
        a[i] = v;                                                                                  \
        b[i] = v;                                                                                  \
      }                                                                                            \
      return;                                                                                      \
    }                                                                                              \
    T acc[REDUCE_BLOCK];                                                                           \
    for (size_t at = lo; at < hi; at += REDUCE_BLOCK) {                                            \
      size_t m = hi - at < REDUCE_BLOCK ? hi - at : REDUCE_BLOCK;                                  \
      memcpy(acc, seg[0] + at * sizeof(T), m * sizeof(T));                                         \
      for (int q = 1; q < n; q++) {                                                                \
        const T *s = (const T *)(const void *)seg[q] + at;                                         \
        for (size_t i = 0; i < m; i++)                                                             \
          acc[i] += s[i];                                                                          \
      }                                                                                            \
      for (size_t i = 0; i < m; i++)                                                               \
        acc[i] *= scale;                                                                           \
      for (int q = 0; q < (write_all ? n : 1); q++)                                                \
        memcpy(seg[write_all ? q : n] + at * sizeof(T), acc, m * sizeof(T));                       \
    }                                                                                              \
  }
DEFINE_REDUCE(reduce_f32, float)
DEFINE_REDUCE(reduce_f64, double)

/* Writes src[lo, hi) into every other segment. */
static void spread(char *const *seg, int n, int self, size_t lo, size_t hi, size_t esz) {
  for (int q = 0; q < n; q++)
    if (q != self) memcpy(seg[q] + lo * esz, seg[self] + lo * esz, (hi - lo) * esz);
}

static int group_barrier(void) {
  fence();
  int rc = MPI_Barrier(S.group);
  fence();
  return rc;
}

/* Publishes what this member's call covers, waits for the group, and compares every member's
 * call with its own: SHM_REFUSED (msg set) when they differ, which every member then sees. */
static int agree(shm_region *r, size_t offset, int64_t numel, lc_dtype dt, int op, int root,
                 uint64_t seq, char *msg, size_t cap) {
  const char *what = op == SHM_OP_GATHER ? "all_gather" : op < 0 ? "broadcast" : "all_reduce";
  slot *mine = slot_of(r, r->self);
  *mine = (slot){.offset = (int64_t)offset,
                 .numel = numel,
                 .dtype = (int32_t)dt,
                 .op = (int32_t)op,
                 .seq = seq,
                 .world_rank = S.world_rank,
                 .root = root};
  int rc = group_barrier();
  if (rc != MPI_SUCCESS) return rc;
  for (int q = 0; q < r->members; q++) {
    const slot *o = slot_of(r, q);
    if (o->root != mine->root) {
      snprintf(
          msg, cap,
          "%s (operation %llu): the ranks sharing a buffer named different sources: rank " LC_POS_D
          " named rank " LC_POS_D ", rank " LC_POS_D " named rank " LC_POS_D,
          what, (unsigned long long)seq, mine->world_rank, mine->root, o->world_rank, o->root);
      return SHM_REFUSED;
    }
    if (o->offset != mine->offset || o->numel != mine->numel || o->dtype != mine->dtype ||
        o->op != mine->op) {
      size_t esz = lc_dtype_size(dt);
      snprintf(msg, cap,
               "%s (operation %llu): the ranks sharing a buffer passed different parts "
               "of it: rank " LC_POS_D " %lld %s elements from element " LC_POS_I ", rank " LC_POS_D
               " %lld %s elements from element " LC_POS_I,
               what, (unsigned long long)seq, mine->world_rank, (long long)mine->numel,
               lc_dtype_name(dt), (long long)(mine->offset / (int64_t)esz), o->world_rank,
               (long long)o->numel, lc_dtype_name((lc_dtype)o->dtype),
               (long long)(o->offset / (int64_t)esz));
      return SHM_REFUSED;
    }
  }
  return MPI_SUCCESS;
}

int shm_all_reduce(shm_region *r, size_t offset, int64_t numel, lc_dtype dt, lc_dist_op op,
                   int world_size, uint64_t seq, char *msg, size_t cap) {
  int rc = agree(r, offset, numel, dt, (int)op, 0, seq, msg, cap);
  if (rc != MPI_SUCCESS) return rc;
  size_t esz = lc_dtype_size(dt), n = (size_t)numel;
  /* shares of whole cache lines, the last one shorter */
  size_t share = round_up((n + (size_t)r->members - 1) / (size_t)r->members, 64 / esz);
  size_t lo = share * (size_t)r->self, hi = lo + share;
  if (lo > n) lo = n;
  if (hi > n) hi = n;
  char *seg[SHM_MAX_MEMBERS + 1];
  int members = r->members;
  for (int q = 0; q < members; q++)
    seg[q] = segment(r, q) + offset;
  double scale = op == LC_DIST_AVG ? 1.0 / world_size : 1.0;
  /* one group: reduce, scale and write everywhere in one pass; several: the group's sum first,
   * then every group's sum over MPI, then the scale and the copies */
  bool alone = S.ncross == 1;
  if (!alone) {
    /* the group's sum lands in this member's own segment: the extra slot of seg */
    seg[members] = seg[r->self];
  }
  if (dt == LC_FLOAT32)
    reduce_f32(seg, members, lo, hi, alone ? (float)scale : 1.0f, alone);
  else
    reduce_f64(seg, members, lo, hi, alone ? scale : 1.0, alone);
  if (!alone) {
    MPI_Datatype ty = dt == LC_FLOAT32 ? MPI_FLOAT : MPI_DOUBLE;
    rc = MPI_Allreduce(MPI_IN_PLACE, seg[r->self] + lo * esz, (int)(hi - lo), ty, MPI_SUM, S.cross);
    if (rc != MPI_SUCCESS) return rc;
    if (op == LC_DIST_AVG) {
      if (dt == LC_FLOAT32) {
        float *p = (float *)(void *)seg[r->self], s = (float)scale;
        for (size_t i = lo; i < hi; i++)
          p[i] *= s;
      } else {
        double *p = (double *)(void *)seg[r->self];
        for (size_t i = lo; i < hi; i++)
          p[i] *= scale;
      }
    }
    spread(seg, members, r->self, lo, hi, esz);
  }
  return group_barrier();
}

/* The MPI type that moves elements of esz bytes (as unsigned integers: a count of elements
 * fits an int where a count of bytes may not). */
static MPI_Datatype mover(size_t esz) {
  return esz == 8 ? MPI_UINT64_T : esz == 4 ? MPI_UINT32_T : esz == 2 ? MPI_UINT16_T : MPI_BYTE;
}

int shm_broadcast(shm_region *r, size_t offset, int64_t numel, lc_dtype dt, int root, uint64_t seq,
                  char *msg, size_t cap) {
  int rc = agree(r, offset, numel, dt, SHM_OP_BROADCAST, root, seq, msg, cap);
  if (rc != MPI_SUCCESS) return rc;
  /* the source on this machine: the member with the root's index in its group, which across
   * machines first receives the root's data over MPI from the root */
  int src = S.place[2 * root];
  size_t esz = lc_dtype_size(dt);
  if (S.ncross > 1) {
    if (r->self == src) {
      rc = MPI_Bcast(segment(r, r->self) + offset, (int)numel, mover(esz), S.place[2 * root + 1],
                     S.cross);
      if (rc != MPI_SUCCESS) return rc;
    }
    rc = group_barrier();
    if (rc != MPI_SUCCESS) return rc;
  }
  if (r->self != src)
    memcpy(segment(r, r->self) + offset, segment(r, src) + offset, (size_t)numel * esz);
  return group_barrier();
}

int shm_all_gather(shm_region *r, size_t offset, int64_t block, lc_dtype dt, int world_size,
                   uint64_t seq, char *msg, size_t cap) {
  int rc = agree(r, offset, block, dt, SHM_OP_GATHER, 0, seq, msg, cap);
  if (rc != MPI_SUCCESS) return rc;
  size_t esz = lc_dtype_size(dt), bytes = (size_t)block * esz;
  if (S.ncross > 1) {
    /* across machines: the members of one index gather their blocks over MPI, each block at
     * its world rank's place */
    int *counts = S.counts, *displs = S.counts + S.ncross;
    for (int w = 0; w < world_size; w++)
      if (S.place[2 * w] == r->self) {
        counts[S.place[2 * w + 1]] = (int)block;
        displs[S.place[2 * w + 1]] = w * (int)block;
      }
    rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, segment(r, r->self) + offset, counts,
                        displs, mover(esz), S.cross);
    if (rc != MPI_SUCCESS) return rc;
    rc = group_barrier();
    if (rc != MPI_SUCCESS) return rc;
  }
  /* every other block from the segment of the member of its rank's index */
  for (int w = 0; w < world_size; w++) {
    int q = S.place[2 * w];
    if (q != r->self)
      memcpy(segment(r, r->self) + offset + (size_t)w * bytes,
             segment(r, q) + offset + (size_t)w * bytes, bytes);
  }
  return group_barrier();
}
