/* test_pool.c - small tensors in one block, the per-thread free lists, and views that outlive
 * the small tensor they came from. ASan runs these too (pooled blocks are poisoned there). */
#include "../src/core/core.h"
#include "test.h"

#include <pthread.h>
#include <stdint.h>

TEST(small_tensor_is_one_aligned_block) {
  int64_t shape[] = {4, 4}; /* 64 bytes: embedded */
  lc_tensor *t = NULL;
  CHECK_OK(lc_tensor_new(2, shape, LC_FLOAT32, &t));
  if (!t) return;
  CHECK(t->storage->block == (void *)t);
  CHECK(((uintptr_t)lc_data(t) % LC_ALIGN) == 0);
  CHECK(lc_is_contiguous(t) && lc_numel(t) == 16);
  int64_t big[] = {LC_SMALL_BYTES / 4 + 1}; /* one element past the limit: separate blocks */
  lc_tensor *u = NULL;
  CHECK_OK(lc_tensor_new(1, big, LC_FLOAT32, &u));
  if (u) CHECK(u->storage->block == NULL);
  lc_release(u);
  lc_release(t);
}

TEST(released_small_blocks_are_reused_on_the_same_thread) {
  int64_t shape[] = {3};
  lc_tensor *a = NULL, *b = NULL;
  CHECK_OK(lc_tensor_new(1, shape, LC_FLOAT64, &a));
  if (!a) return;
  void *first = a;
  int64_t in_use = lc_bytes_in_use();
  lc_release(a);
  CHECK(lc_bytes_in_use() == in_use - 24);
  CHECK_OK(lc_tensor_new(1, shape, LC_FLOAT64, &b));
  CHECK((void *)b == first); /* last in, first out */
  if (b) {
    CHECK(b->refcount == 1 && b->grad == NULL && b->grad_fn == NULL && !b->requires_grad);
    CHECK(lc_version(b) == 0);
  }
  lc_release(b);
}

TEST(view_outlives_small_base) {
  int64_t shape[] = {2, 3};
  lc_tensor *base = NULL, *v = NULL;
  CHECK_OK(lc_zeros(2, shape, LC_FLOAT32, &base));
  if (!base) return;
  ((float *)lc_data(base))[5] = 7.0f;
  CHECK_OK(lc_transpose(base, 0, 1, &v));
  lc_release(base); /* the header's block stays: the storage (held by v) owns it */
  /* churn the pools so a wrongly recycled block would be overwritten */
  for (int i = 0; i < 64; i++) {
    lc_tensor *tmp = NULL;
    CHECK_OK(lc_ones(2, shape, LC_FLOAT32, &tmp));
    lc_release(tmp);
  }
  double x = 0;
  int64_t idx[] = {2, 1};
  CHECK_OK(lc_get(v, idx, &x));
  CHECK(x == 7.0);
  lc_release(v);
}

static void *make_small(void *arg) {
  lc_tensor **out = arg;
  int64_t shape[] = {8};
  for (int i = 0; i < 500; i++) { /* fills and drains this thread's lists */
    lc_tensor *t = NULL;
    if (lc_ones(1, shape, LC_FLOAT32, &t) == LC_OK) lc_release(t);
  }
  lc_ones(1, shape, LC_FLOAT32, out);
  return NULL;
}

TEST(small_tensor_made_on_one_thread_released_on_another) {
  lc_tensor *t = NULL;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, make_small, &t) == 0);
  pthread_join(th, NULL); /* the thread's lists were freed at its exit */
  CHECK(t != NULL);
  if (!t) return;
  double x = 0;
  CHECK(lc_item(t, &x) == LC_ESHAPE); /* 8 elements: item refuses */
  int64_t idx[] = {7};
  CHECK_OK(lc_get(t, idx, &x));
  CHECK(x == 1.0);
  lc_release(t); /* goes to this thread's list */
}
