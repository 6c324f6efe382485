/*
 * c_api.c - lucid_distributed.h from a C host without Lua, run under mpirun by
 * spec/distributed_spec.lua (built by mk/distributed.mk as build/bin/lucid-dist-c-test):
 * every collective blocking and non-blocking, the error statuses, stats and finalize. Prints
 * "c api ok" on rank 0 when every check held; exits 1 naming the first that did not.
 */
#include "lucid.h"
#include "lucid_distributed.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int rank, world;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "rank %d: %s:%d: check failed: %s (last error: %s)\n", rank, __FILE__,       \
              __LINE__, #cond, lc_last_error());                                                   \
      lc_dist_abort(1, "c_api check failed");                                                      \
    }                                                                                              \
  } while (0)

static lc_tensor *vec(int64_t n, float v) {
  lc_tensor *t = NULL;
  CHECK(lc_full(1, &n, v, LC_FLOAT32, &t) == LC_OK);
  return t;
}

static float at(const lc_tensor *t, int64_t i) { return ((const float *)lc_data(t))[i]; }

int main(void) {
  CHECK(lc_dist_world_size() == 1 && !lc_dist_is_initialized());
  CHECK(lc_dist_all_reduce(NULL, LC_DIST_SUM, NULL) == LC_ESTATE);      /* before init */
  CHECK(lc_dist_set_comm_priority(LC_DIST_PRIORITY_IDLE) == LC_ESTATE); /* before init */
  lc_dist_opts bad = {.timeout = 60, .comm_priority = (lc_dist_priority)7};
  CHECK(lc_dist_init(&bad) == LC_EARG);
  lc_dist_opts o = {.timeout = 60, .comm_priority = LC_DIST_PRIORITY_IDLE};
  CHECK(lc_dist_init(&o) == LC_OK);
  CHECK(lc_dist_init(&o) == LC_ESTATE);
  CHECK(lc_dist_comm_priority() == LC_DIST_PRIORITY_IDLE);
  CHECK(lc_dist_set_comm_priority((lc_dist_priority)-1) == LC_EARG);
  CHECK(lc_dist_set_comm_priority(LC_DIST_PRIORITY_NORMAL) == LC_OK);
  CHECK(lc_dist_comm_priority() == LC_DIST_PRIORITY_NORMAL);
  CHECK(lc_dist_set_comm_priority(LC_DIST_PRIORITY_AUTO) == LC_OK);
  CHECK(lc_dist_comm_priority() != LC_DIST_PRIORITY_AUTO);
  rank = lc_dist_rank();
  world = lc_dist_world_size();
  float sum = (float)(world * (world - 1) / 2);

  /* blocking all_reduce of each op */
  lc_tensor *t = vec(5, (float)rank);
  CHECK(lc_dist_all_reduce(t, LC_DIST_SUM, NULL) == LC_OK);
  CHECK(at(t, 4) == sum);
  lc_release(t);
  t = vec(3, (float)rank);
  CHECK(lc_dist_all_reduce(t, LC_DIST_MAX, NULL) == LC_OK && at(t, 0) == (float)(world - 1));
  CHECK(lc_dist_all_reduce(t, LC_DIST_AVG, NULL) == LC_OK && at(t, 2) == (float)(world - 1));
  lc_release(t);

  /* non-blocking: the handle keeps the tensor alive after the caller's release */
  t = vec(1 << 16, 1.0f);
  lc_dist_work *w = NULL;
  CHECK(lc_dist_all_reduce(t, LC_DIST_SUM, &w) == LC_OK && w);
  lc_tensor *keep = lc_retain(t);
  lc_release(t);
  CHECK(lc_dist_wait(w) == LC_OK && lc_dist_is_completed(w));
  CHECK(lc_dist_wait(w) == LC_OK); /* again: the same status */
  CHECK(at(keep, 12345) == (float)world);
  lc_dist_work_free(w);
  lc_release(keep);

  /* broadcast, all_gather, reduce_scatter, barrier */
  t = vec(2, (float)rank);
  CHECK(lc_dist_broadcast(t, world - 1, NULL) == LC_OK && at(t, 1) == (float)(world - 1));
  CHECK(lc_dist_broadcast(t, world, NULL) == LC_EINDEX);
  lc_tensor *all = vec(2 * world, -1);
  CHECK(lc_dist_all_gather(all, t, NULL) == LC_OK && at(all, 2 * world - 1) == (float)(world - 1));
  lc_release(t);
  t = vec(1, (float)rank);
  CHECK(lc_dist_all_gather(all, t, NULL) == LC_ESHAPE); /* out must be world x 1 */
  CHECK(strstr(lc_last_error(), "world_size"));
  lc_tensor *one = vec(2, 0);
  CHECK(lc_dist_reduce_scatter(one, all, LC_DIST_SUM, NULL) == LC_OK);
  CHECK(at(one, 0) == (float)(world * (world - 1)));
  CHECK(lc_dist_reduce_scatter(one, one, LC_DIST_SUM, NULL) != LC_OK);
  CHECK(lc_dist_barrier(NULL) == LC_OK);
  lc_release(t);
  lc_release(all);
  lc_release(one);

  /* dtype rules */
  int64_t n = 2;
  lc_tensor *ints = NULL;
  CHECK(lc_full(1, &n, 3, LC_INT64, &ints) == LC_OK);
  CHECK(lc_dist_all_reduce(ints, LC_DIST_SUM, NULL) == LC_OK &&
        ((int64_t *)lc_data(ints))[1] == 3 * world);
  CHECK(lc_dist_all_reduce(ints, LC_DIST_AVG, NULL) == LC_EDTYPE);
  lc_release(ints);

  /* shared buffers: all_reduce through shared memory on one machine, bit-identical on every
   * rank; argument errors; a size mismatch refused on every rank, the runtime still usable */
  lc_tensor *sh = NULL;
  CHECK(lc_dist_zeros_shared(-1, LC_FLOAT32, &sh) == LC_EARG && !sh);
  CHECK(lc_dist_zeros_shared(4, (lc_dtype)99, &sh) == LC_EDTYPE);
  CHECK(lc_dist_zeros_shared(4, LC_FLOAT32, NULL) == LC_EARG);
  CHECK(lc_dist_zeros_shared(1000 + rank, LC_FLOAT32, &sh) == LC_ESHAPE && !sh);
  CHECK(strstr(lc_last_error(), "different sizes"));
  CHECK(lc_dist_zeros_shared(1001, LC_FLOAT64, &sh) == LC_OK);
  CHECK(lc_numel(sh) == 1001 && lc_dtype_of(sh) == LC_FLOAT64 && lc_is_contiguous(sh));
  CHECK(lc_dist_is_shared(sh) == (world > 1) && (uintptr_t)lc_data(sh) % 64 == 0);
  double *d = lc_data(sh);
  for (int i = 0; i < 1001; i++) {
    CHECK(d[i] == 0);
    d[i] = rank + i * 0.25;
  }
  lc_dist_stats s0, s;
  lc_dist_get_stats(&s0);
  CHECK(lc_dist_all_reduce(sh, LC_DIST_AVG, NULL) == LC_OK);
  lc_dist_get_stats(&s);
  CHECK(s.shared_ops == s0.shared_ops + (world > 1));
  for (int i = 0; i < 1001; i++)
    CHECK(fabs(d[i] - ((world - 1) / 2.0 + i * 0.25)) < 1e-12);
  /* a broadcast of a shared tensor, from the last rank: copied from its memory */
  if (rank == world - 1)
    for (int i = 0; i < 1001; i++)
      d[i] = -i;
  lc_dist_get_stats(&s0);
  CHECK(lc_dist_broadcast(sh, world - 1, NULL) == LC_OK);
  lc_dist_get_stats(&s);
  CHECK(s.shared_ops == s0.shared_ops + (world > 1));
  for (int i = 0; i < 1001; i++)
    CHECK(d[i] == -i);
  for (int i = 0; i < 1001; i++)
    d[i] = rank + i * 0.25;
  lc_tensor *plain = vec(3, 1.0f); /* not shared: through MPI */
  CHECK(!lc_dist_is_shared(plain) && !lc_dist_is_shared(NULL));
  CHECK(lc_dist_all_reduce(plain, LC_DIST_SUM, NULL) == LC_OK && at(plain, 2) == (float)world);
  lc_release(plain);
  /* a view of the last rank's copy of sh: its values (each rank wrote its own before the
   * all_reduce above, and none writes it again) */
  lc_tensor *peer = NULL;
  if (world > 1) {
    CHECK(lc_dist_shared_view(sh, world - 1, &peer) == LC_OK);
    CHECK(peer && lc_numel(peer) == 1001 && ((double *)lc_data(peer))[4] == world - 1 + 1.0);
    lc_release(peer);
  }
  CHECK(lc_dist_shared_view(sh, world, &peer) == LC_EINDEX && !peer);
  CHECK(lc_dist_shared_view(sh, 0, NULL) == LC_EARG);

  lc_dist_get_stats(&s);
  CHECK(s.ops >= 9 && s.bytes > 0);
  CHECK(lc_dist_finalize() == LC_OK);
  /* the shared memory outlives finalize: released with its tensor */
  d[1000] += 1;
  CHECK(fabs(d[1000] - (rank + 251)) < 1e-12);
  lc_release(sh);
  CHECK(lc_dist_zeros_shared(4, LC_FLOAT32, &sh) == LC_ESTATE);
  CHECK(lc_dist_barrier(NULL) == LC_ESTATE);
  if (rank == 0) printf("c api ok (%d ranks)\n", world);
  return 0;
}
