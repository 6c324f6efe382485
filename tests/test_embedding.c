/* test_embedding.c - the embedding family (include/lucid_embedding.h): lookups, the padding
 * row, 1-based indices, gradients against central differences (tests/gradcheck.c), errors and
 * the Embedding module kind.
 * Run alone with: make ctest-one T="tests/test_embedding.c tests/gradcheck.c" */
#include "lucid_embedding.h"

#include "family_test.h"
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

TEST(embedding_values_padding_and_gradient) {
  int64_t wsh[2] = {5, 3}, ish[2] = {2, 3};
  double wv[15];
  for (int i = 0; i < 15; i++) wv[i] = 0.5 * i - 3;
  int64_t idx[6] = {4, 0, 2, 2, 1, 4};
  for (int dti = 0; dti < 2; dti++) {
    lc_tensor *w = from(2, wsh, dti ? LC_FLOAT32 : LC_FLOAT64, wv), *ix = NULL, *y = NULL,
              *s = NULL;
    lc_set_requires_grad(w, true);
    CHECK_OK(lc_from_data(2, ish, LC_INT64, idx, &ix));
    CHECK_OK(lc_embedding(ix, w, 2, &y));
    CHECK(y && lc_ndim(y) == 3 && lc_shape(y)[0] == 2 && lc_shape(y)[1] == 3 &&
          lc_shape(y)[2] == 3);
    double *v = test_values(y);
    for (int k = 0; k < 6; k++)
      for (int d = 0; d < 3; d++) CHECK_NEAR(v[k * 3 + d], wv[idx[k] * 3 + d], 0);
    free(v);
    CHECK_OK(lc_reduce(LC_SUM, y, &(lc_reduce_opts){0}, &s));
    CHECK_OK(lc_backward(s, NULL, false));
    double *g = lc_grad(w) ? test_values(lc_grad(w)) : NULL;
    CHECK(g != NULL);
    /* counts per row: row 2 is padding -> 0; row 4 twice; row 3 never */
    const double cnt[5] = {1, 1, 0, 0, 2};
    for (int r = 0; g && r < 5; r++)
      for (int d = 0; d < 3; d++) CHECK_NEAR(g[r * 3 + d], cnt[r], 0);
    free(g);
    lc_release(w);
    lc_release(ix);
    lc_release(y);
    lc_release(s);
  }
}

TEST(embedding_int32_base1_negative_padding) {
  int64_t wsh[2] = {4, 2}, n = 5;
  double wv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int32_t idx[5] = {1, 4, 4, 2, 3}; /* 1-based */
  lc_tensor *w = from(2, wsh, LC_FLOAT32, wv), *ix = NULL, *y = NULL, *s = NULL;
  lc_set_requires_grad(w, true);
  CHECK_OK(lc_from_data(1, &n, LC_INT32, idx, &ix));
  CHECK_OK(lc_embedding_ex(ix, w, -1, 1, &y)); /* padding: the last row */
  double *v = y ? test_values(y) : NULL;
  for (int k = 0; v && k < 5; k++)
    for (int d = 0; d < 2; d++) CHECK_NEAR(v[k * 2 + d], wv[(idx[k] - 1) * 2 + d], 0);
  free(v);
  CHECK_OK(lc_reduce(LC_SUM, y, &(lc_reduce_opts){0}, &s));
  CHECK_OK(lc_backward(s, NULL, false));
  double *g = test_values(lc_grad(w));
  const double cnt[4] = {1, 1, 1, 0};
  for (int r = 0; r < 4; r++) CHECK_NEAR(g[r * 2], cnt[r], 0);
  free(g);
  lc_release(w);
  lc_release(ix);
  lc_release(y);
  lc_release(s);
}

static lc_status emb_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  lc_tensor *e = NULL;
  lc_status st = lc_embedding(ctx, in[0], LC_NO_PADDING, &e);
  if (st) return st;
  /* a non-linear use so the gradient depends on values */
  st = lc_binary(LC_MUL, e, e, out);
  lc_release(e);
  return st;
}

TEST(embedding_gradcheck_and_errors) {
  int64_t wsh[2] = {4, 3}, n = 6;
  int64_t idx[6] = {0, 3, 1, 3, 2, 0};
  lc_manual_seed(31);
  lc_tensor *w = leaf(2, wsh, 1.0), *ix = NULL, *y = NULL;
  CHECK_OK(lc_from_data(1, &n, LC_INT64, idx, &ix));
  char msg[512];
  int ok = gradcheck(emb_fn, ix, 1, &w, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
  if (!ok) printf("  %s\n", msg);
  CHECK(ok);
  /* errors */
  int64_t bad[3] = {0, 4, 1}, n3 = 3;
  lc_tensor *bx = NULL, *fx = NULL;
  CHECK_OK(lc_from_data(1, &n3, LC_INT64, bad, &bx));
  CHECK_STATUS(lc_embedding(bx, w, LC_NO_PADDING, &y), LC_EINDEX);
  CHECK(msg_has("index 4") && msg_has("[1]") && msg_has("0..3"));
  CHECK_STATUS(lc_embedding_ex(bx, w, LC_NO_PADDING, 1, &y), LC_EINDEX); /* 0 is invalid 1-based */
  CHECK(msg_has("index -1 at position [0]") && msg_has("0..3"));         /* C shows it 0-based */
  {
    char one[256];
    lc_render_positions(lc_last_error_marked(), 1, one, sizeof one);
    CHECK(strstr(one, "index 0 at position [1]") && strstr(one, "1..4"));
  }
  CHECK_OK(lc_zeros(1, &n3, LC_FLOAT32, &fx));
  CHECK_STATUS(lc_embedding(fx, w, LC_NO_PADDING, &y), LC_EDTYPE);
  CHECK_STATUS(lc_embedding(bx, fx, LC_NO_PADDING, &y), LC_ESHAPE);
  CHECK_STATUS(lc_embedding(ix, w, 4, &y), LC_EINDEX);
  CHECK(msg_has("padding_idx 4"));
  CHECK_STATUS(lc_embedding(ix, w, -5, &y), LC_EINDEX);
  CHECK_STATUS(lc_embedding_ex(ix, w, 0, 2, &y), LC_EARG);
  CHECK(y == NULL);
  lc_release(w);
  lc_release(ix);
  lc_release(bx);
  lc_release(fx);
}

/* ---------------------------------------------------------------- module kind */

TEST(module_embedding_repr_and_attrs) {
  lc_module *m = NULL;
  lc_attr a;
  CHECK(lc_nn_embedding(10, 3, LC_NO_PADDING, &m) == LC_OK && repr_is(m, "Embedding(10, 3)"));
  CHECK(lc_nn_embedding(10, 3, 0, &m) == LC_OK && repr_is(m, "Embedding(10, 3, padding_idx=0)"));
  /* the printed padding_idx is a marked position: 0-based in C whatever the index base, 1-based
   * where a binding renders it (lc_module_to_string_based) */
  CHECK(lc_nn_embedding_ex(10, 3, 0, 1, &m) == LC_OK &&
        repr_is(m, "Embedding(10, 3, padding_idx=0)"));
  char *txt = NULL;
  CHECK_OK(lc_nn_embedding_ex(10, 3, 0, 1, &m)); /* repr_is released the one above */
  CHECK_OK(lc_module_to_string_based(m, 1, &txt));
  CHECK(txt && strcmp(txt, "Embedding(10, 3, padding_idx=1)") == 0);
  lc_free(txt);
  lc_module_release(m);
  CHECK_OK(lc_nn_embedding(7, 2, -1, &m));
  CHECK(lc_module_attr(m, "padding_idx", &a) && a.type == LC_ATTR_DIM && a.i == 6);
  CHECK(lc_module_attr(m, "num_embeddings", &a) && a.i == 7);
  CHECK(lc_module_attr(m, "embedding_dim", &a) && a.i == 2);
  lc_module_release(m);
  CHECK_OK(lc_nn_embedding(7, 2, LC_NO_PADDING, &m));
  CHECK(!lc_module_attr(m, "padding_idx", &a));
  lc_module_release(m);
  m = NULL;
  CHECK_STATUS(lc_nn_embedding(-1, 2, LC_NO_PADDING, &m), LC_EARG);
  CHECK_STATUS(lc_nn_embedding(4, 2, 4, &m), LC_EINDEX);
  CHECK(msg_has("padding_idx"));
  CHECK_STATUS(lc_nn_embedding_ex(4, 2, 0, 3, &m), LC_EARG);
  CHECK(m == NULL);
}

TEST(module_embedding_init_forward_and_errors) {
  lc_module *e = NULL;
  lc_manual_seed(61);
  CHECK_OK(lc_nn_embedding_ex(200, 50, 3, 1, &e));
  if (!e) return;
  lc_tensor *w = lc_module_own_parameter(e, lc_module_find_parameter(e, "weight"));
  CHECK(w && lc_ndim(w) == 2 && lc_shape(w)[0] == 200 && lc_shape(w)[1] == 50);
  CHECK(lc_requires_grad(w) && lc_dtype_of(w) == LC_FLOAT32);
  double *v = test_values(w), s = 0, s2 = 0;
  for (int d = 0; d < 50; d++) CHECK(v[3 * 50 + d] == 0);
  for (int64_t i = 0; i < 200 * 50; i++) s += v[i], s2 += v[i] * v[i];
  double mean = s / 10000, var = s2 / 10000 - mean * mean;
  CHECK(fabs(mean) < 0.05 && fabs(var - 1) < 0.1); /* N(0, 1) */
  free(v);
  /* 1-based lookups */
  int64_t idx[3] = {1, 200, 4}, n = 3;
  lc_tensor *ix = NULL, *y = NULL, *r = NULL;
  CHECK_OK(lc_from_data(1, &n, LC_INT64, idx, &ix));
  CHECK_OK(lc_module_forward(e, ix, &y));
  CHECK_OK(lc_select(w, 0, 199, &r));
  double *vy = test_values(y), *vr = test_values(r);
  for (int d = 0; d < 50; d++) CHECK(vy[50 + d] == vr[d]);
  free(vy), free(vr);
  lc_release(y), lc_release(r), lc_release(ix);
  int64_t bad[2] = {5, 201};
  int64_t n2 = 2;
  y = NULL;
  CHECK_OK(lc_from_data(1, &n2, LC_INT64, bad, &ix));
  CHECK_STATUS(lc_module_forward(e, ix, &y), LC_EINDEX);
  /* 0-based in C whatever the base read; rendered 1-based, the values the caller gave */
  CHECK(msg_has("Embedding: index 200 at position [1] out of range for 200 embeddings "
                "(expected 0..199)"));
  char one[256];
  lc_render_positions(lc_last_error_marked(), 1, one, sizeof one);
  CHECK(strstr(one, "Embedding: index 201 at position [2] out of range for 200 embeddings "
                    "(expected 1..200)") != NULL);
  CHECK(y == NULL);
  lc_release(ix);
  /* reset_parameters redraws and re-zeroes the padding row */
  CHECK_OK(lc_module_reset_parameters(e));
  v = test_values(w);
  for (int d = 0; d < 50; d++) CHECK(v[3 * 50 + d] == 0);
  free(v);
  lc_module_release(e);
}
