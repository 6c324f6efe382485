/* test_tensor_core.c - storage, tensor headers, layout helpers. */
#include "../src/core/core.h"
#include "test.h"

#include <string.h>

#include <stdint.h>

TEST(tensor_new_is_contiguous_and_aligned) {
  lc_tensor *t = NULL;
  int64_t shape[] = {2, 3, 4};
  CHECK_OK(lc_tensor_new(3, shape, LC_FLOAT32, &t));
  if (!t) return;
  CHECK(lc_numel(t) == 24);
  CHECK(lc_is_contiguous(t));
  CHECK(lc_strides(t)[0] == 12 && lc_strides(t)[1] == 4 && lc_strides(t)[2] == 1);
  CHECK(((uintptr_t)lc_data(t) % LC_ALIGN) == 0);
  CHECK(lc_storage_nbytes(t) == 96);
  lc_release(t);
}

TEST(tensor_new_rejects_bad_shapes) {
  lc_tensor *t = NULL;
  int64_t neg[] = {2, -1};
  CHECK_STATUS(lc_tensor_new(2, neg, LC_FLOAT32, &t), LC_EARG); /* lc_check_shape's, as lc_zeros */
  CHECK(t == NULL);
  int64_t huge[] = {INT64_MAX / 2, 4};
  CHECK_STATUS(lc_tensor_new(2, huge, LC_FLOAT32, &t), LC_ENOMEM);
  /* a 0 size does not excuse the others: their strides would overflow int64 */
  int64_t zero_huge[] = {0, INT64_C(1) << 62, INT64_C(1) << 62};
  CHECK_STATUS(lc_tensor_new(3, zero_huge, LC_FLOAT32, &t), LC_ENOMEM);
  CHECK(strstr(lc_last_error(), "{0, 4611686018427387904, 4611686018427387904} is too large"));
  /* the largest accepted: sizes multiplying to 2^59 - 1 */
  int64_t edge[] = {0, (INT64_C(1) << 59) - 1};
  CHECK_OK(lc_tensor_new(2, edge, LC_FLOAT64, &t));
  lc_release(t);
  t = NULL;
  int64_t past[] = {0, INT64_C(1) << 59};
  CHECK_STATUS(lc_tensor_new(2, past, LC_FLOAT64, &t), LC_ENOMEM);
  /* lc_shape_numel never overflows: 0 with a 0 size, -1 past int64 */
  CHECK(lc_shape_numel(3, zero_huge) == 0);
  int64_t over[] = {INT64_C(1) << 62, INT64_C(1) << 62};
  CHECK(lc_shape_numel(2, over) == -1);
  int64_t big[] = {1};
  CHECK_STATUS(lc_tensor_new(LC_MAX_DIMS + 1, big, LC_FLOAT32, &t), LC_ESHAPE);
}

TEST(views_share_storage_and_keep_it_alive) {
  lc_tensor *t = NULL, *v = NULL;
  int64_t shape[] = {4, 5};
  CHECK_OK(lc_tensor_new(2, shape, LC_FLOAT64, &t));
  if (!t) return;
  int64_t vshape[] = {5, 4}, vstrides[] = {1, 5};
  CHECK_OK(lc_tensor_view_of(t, 2, vshape, vstrides, 0, &v));
  CHECK(lc_same_storage(t, v));
  CHECK(!lc_is_contiguous(v));
  lc_release(t);
  ((double *)lc_data(v))[19] = 1.5; /* storage still alive through the view */
  CHECK(((double *)lc_data(v))[19] == 1.5);
  lc_release(v);
}

/* lc_set_: the tensor views the source's memory; a small tensor (one block with its storage)
 * keeps that block until it dies, whatever it was set_ to in between (ASan: no leak, no
 * double free, in every order of release). */
TEST(set_moves_a_tensor_onto_another_memory) {
  int64_t small[] = {3}, big[] = {64, 64};
  lc_tensor *a = NULL, *b = NULL, *buf = NULL, *part = NULL, *old_view = NULL;
  CHECK_OK(lc_tensor_new(1, small, LC_FLOAT32, &a)); /* embedded */
  CHECK_OK(lc_fill_(a, 7));
  CHECK_OK(lc_detach(a, &old_view)); /* keeps the old data */
  int64_t n = 10;
  CHECK_OK(lc_zeros(1, &n, LC_FLOAT32, &buf));
  CHECK_OK(lc_narrow(buf, 0, 4, 3, &part));
  CHECK_OK(lc_set_(a, part));
  CHECK(lc_data(a) == lc_data(part) && lc_same_storage(a, buf) && lc_offset(a) == 4);
  CHECK_OK(lc_fill_(a, 2));
  CHECK(((float *)lc_data(buf))[5] == 2 && ((float *)lc_data(old_view))[1] == 7);
  /* back onto its own block's storage, then off again */
  CHECK_OK(lc_set_(a, old_view));
  CHECK(((float *)lc_data(a))[0] == 7);
  CHECK_OK(lc_set_(a, part));
  lc_release(old_view);
  lc_release(part);
  CHECK(((float *)lc_data(a))[2] == 2);
  lc_release(buf); /* a still holds it */
  CHECK(((float *)lc_data(a))[2] == 2);
  lc_release(a);

  /* a large tensor releases its old storage at once */
  CHECK_OK(lc_tensor_new(2, big, LC_FLOAT64, &b));
  lc_tensor *src = NULL;
  CHECK_OK(lc_ones(2, big, LC_FLOAT64, &src));
  CHECK_OK(lc_set_(b, src));
  lc_release(src);
  CHECK(((double *)lc_data(b))[4095] == 1 && lc_is_contiguous(b));
  CHECK_OK(lc_set_(b, b));
  /* refusals: dtype, shape, a non-leaf, a view, NULL */
  lc_tensor *f32 = NULL, *other = NULL, *v = NULL;
  CHECK_OK(lc_tensor_new(2, big, LC_FLOAT32, &f32));
  CHECK_STATUS(lc_set_(b, f32), LC_EDTYPE);
  CHECK(strstr(lc_last_error(), "set_: the source is float32, the tensor float64"));
  CHECK_OK(lc_tensor_new(1, small, LC_FLOAT64, &other));
  CHECK_STATUS(lc_set_(b, other), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "set_: the source has shape {3}, the tensor {64, 64}"));
  CHECK_OK(lc_narrow(b, 0, 0, 1, &v));
  lc_tensor *row = NULL;
  CHECK_OK(lc_narrow(b, 0, 1, 1, &row));
  CHECK_STATUS(lc_set_(v, row), LC_EARG);
  CHECK(strstr(lc_last_error(), "set_: the tensor is a view"));
  CHECK_STATUS(lc_set_(NULL, b), LC_EARG);
  lc_release(row);
  lc_release(v);
  lc_release(other);
  lc_release(f32);
  lc_release(b);
}

TEST(broadcast_shapes) {
  int64_t a[] = {3, 1, 5}, b[] = {4, 1}, out[LC_MAX_DIMS];
  int n = 0;
  CHECK_OK(lc_broadcast_shapes(3, a, 2, b, &n, out, "test"));
  CHECK(n == 3 && out[0] == 3 && out[1] == 4 && out[2] == 5);
  int64_t c[] = {3}, d[] = {4};
  CHECK_STATUS(lc_broadcast_shapes(1, c, 1, d, &n, out, "test"), LC_ESHAPE);
}

TEST(wrap_dim) {
  int d = -1;
  CHECK_OK(lc_wrap_dim(&d, 3, "test"));
  CHECK(d == 2);
  d = 3;
  CHECK_STATUS(lc_wrap_dim(&d, 3, "test"), LC_EINDEX);
  d = 0;
  CHECK_OK(lc_wrap_dim(&d, 0, "test"));
}

TEST(dtype_names_and_promotion) {
  lc_dtype dt;
  CHECK_OK(lc_dtype_from_name("float64", &dt));
  CHECK(dt == LC_FLOAT64);
  CHECK_STATUS(lc_dtype_from_name("complex", &dt), LC_EDTYPE);
  CHECK(lc_promote(LC_INT64, LC_FLOAT32) == LC_FLOAT32);
  CHECK(lc_promote(LC_BOOL, LC_INT32) == LC_INT32);
}

TEST(large_blocks_are_reused_and_cache_empties) {
  int64_t shape[] = {1 << 20}; /* 4 MiB of float32 */
  lc_tensor *a = NULL, *b = NULL;
  CHECK_OK(lc_tensor_new(1, shape, LC_FLOAT32, &a));
  if (!a) return;
  void *first = lc_data(a);
  int64_t in_use = lc_bytes_in_use();
  lc_release(a);
  CHECK(lc_bytes_in_use() == in_use - (int64_t)(4 << 20)); /* cached blocks are not in use */
  CHECK_OK(lc_tensor_new(1, shape, LC_FLOAT32, &b));
  if (!b) return;
  CHECK(lc_data(b) == first); /* the freed block came back */
  ((float *)lc_data(b))[(1 << 20) - 1] = 1.0f;
  lc_release(b);
  lc_empty_cache();
  /* many distinct large sizes never grow the cache past its bounds (ASan checks the frees) */
  for (int i = 1; i <= 40; i++) {
    int64_t s2[] = {(int64_t)i << 18};
    lc_tensor *t = NULL;
    CHECK_OK(lc_tensor_new(1, s2, LC_FLOAT32, &t));
    lc_release(t);
  }
  lc_empty_cache();
}

TEST(memory_limit_refuses_before_allocating) {
  int64_t base = lc_bytes_in_use();
  CHECK_STATUS(lc_set_memory_limit(-1), LC_EARG);
  CHECK_OK(lc_set_memory_limit(base + 4096));
  lc_tensor *t = NULL;
  int64_t big[] = {1 << 20};
  CHECK_STATUS(lc_tensor_new(1, big, LC_FLOAT32, &t), LC_ENOMEM);
  CHECK(t == NULL);
  CHECK(strstr(lc_last_error(), "allocating 4194304 bytes would pass the memory limit"));
  CHECK(lc_bytes_in_use() == base); /* the refused bytes were not kept counted */
  int64_t small[] = {16};
  CHECK_OK(lc_tensor_new(1, small, LC_FLOAT32, &t)); /* within the limit */
  lc_release(t);
  t = NULL;
  CHECK_OK(lc_set_memory_limit(0)); /* no limit: the same allocation works */
  CHECK_OK(lc_tensor_new(1, big, LC_FLOAT32, &t));
  lc_release(t);
  CHECK(lc_memory_limit() == 0 && !lc_memory_limit_locked());
}
