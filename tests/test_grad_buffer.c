/* test_grad_buffer.c - lc_set_grad_buffer: linear's weight and bias gradients computed
 * straight into a leaf's buffer (which becomes .grad), the same values as without one, and the
 * cases where the buffer must not be used: .grad already set, a leaf used twice, hooked
 * leaves, lc_autograd_grad, create_graph, an op that cannot use it; the argument errors. */
#include "test.h"

#include <math.h>
#include <string.h>

typedef struct net {
  lc_tensor *x, *w, *b;
} net;

static void net_init(int *failures_, net *n) {
  int64_t xs[2] = {4, 5}, ws[2] = {3, 5}, bs[1] = {3};
  lc_manual_seed(7);
  CHECK_OK(lc_randn(2, xs, LC_FLOAT32, &n->x));
  CHECK_OK(lc_randn(2, ws, LC_FLOAT32, &n->w));
  CHECK_OK(lc_randn(1, bs, LC_FLOAT32, &n->b));
  CHECK_OK(lc_set_requires_grad(n->w, true));
  CHECK_OK(lc_set_requires_grad(n->b, true));
}

static void net_free(net *n) {
  lc_release(n->x);
  lc_release(n->w);
  lc_release(n->b);
}

/* loss = sum(linear(x, w, b) * k) */
static lc_tensor *loss(int *failures_, const net *n, double k) {
  lc_tensor *y = NULL, *s = NULL, *l = NULL;
  lc_reduce_opts all = {0};
  CHECK_OK(lc_linear(n->x, n->w, n->b, &y));
  CHECK_OK(lc_binary_scalar(LC_MUL, y, k, false, &s));
  CHECK_OK(lc_reduce(LC_SUM, s, &all, &l));
  lc_release(y);
  lc_release(s);
  return l;
}

static void backward(int *failures_, const net *n, double k) {
  lc_tensor *l = loss(failures_, n, k);
  CHECK_OK(lc_backward(l, NULL, false));
  lc_release(l);
}

static bool same_values(const lc_tensor *a, const lc_tensor *b, double scale) {
  if (!a || !b || lc_numel(a) != lc_numel(b)) return false;
  const float *p = lc_data(a), *q = lc_data(b);
  for (int64_t i = 0; i < lc_numel(a); i++)
    if (fabs(p[i] - scale * q[i]) > 1e-5 * (1 + fabs(p[i]))) return false;
  return true;
}

/* a flat buffer filled with NaN (the GEMM must overwrite all of it) and views of it */
typedef struct bufs {
  lc_tensor *flat, *vw, *vb;
} bufs;

static void bufs_init(int *failures_, bufs *u) {
  int64_t n = 18, ws[2] = {3, 5};
  CHECK_OK(lc_full(1, &n, NAN, LC_FLOAT32, &u->flat));
  lc_tensor *a = NULL;
  CHECK_OK(lc_narrow(u->flat, 0, 0, 15, &a));
  CHECK_OK(lc_view(a, 2, ws, &u->vw));
  lc_release(a);
  CHECK_OK(lc_narrow(u->flat, 0, 15, 3, &u->vb));
}

static void bufs_free(bufs *u) {
  lc_release(u->flat);
  lc_release(u->vw);
  lc_release(u->vb);
}

static lc_tensor *grads_of(int *failures_, const net *n, lc_tensor **gb) {
  lc_tensor *gw = NULL;
  CHECK_OK(lc_clone(lc_grad(n->w), &gw));
  CHECK_OK(lc_clone(lc_grad(n->b), gb));
  CHECK_OK(lc_set_grad(n->w, NULL));
  CHECK_OK(lc_set_grad(n->b, NULL));
  return gw;
}

TEST(grad_buffer_linear_writes_into_it) {
  net n;
  net_init(failures_, &n);
  backward(failures_, &n, 1.0);
  lc_tensor *rb = NULL, *rw = grads_of(failures_, &n, &rb);
  bufs u;
  bufs_init(failures_, &u);
  CHECK_OK(lc_set_grad_buffer(n.w, u.vw));
  CHECK_OK(lc_set_grad_buffer(n.b, u.vb));
  backward(failures_, &n, 1.0);
  CHECK(lc_grad(n.w) == u.vw && lc_grad(n.b) == u.vb); /* .grad is the buffer itself */
  CHECK(same_values(u.vw, rw, 1) && same_values(u.vb, rb, 1));
  /* a second backward accumulates into it, in place */
  backward(failures_, &n, 2.0);
  CHECK(lc_grad(n.w) == u.vw && same_values(u.vw, rw, 3) && same_values(u.vb, rb, 3));
  /* .grad reset: written afresh (no stale values summed) */
  CHECK_OK(lc_set_grad(n.w, NULL));
  CHECK_OK(lc_set_grad(n.b, NULL));
  backward(failures_, &n, -1.0);
  CHECK(lc_grad(n.w) == u.vw && same_values(u.vw, rw, -1) && same_values(u.vb, rb, -1));
  /* removed: a fresh tensor again */
  CHECK_OK(lc_set_grad_buffer(n.w, NULL));
  CHECK_OK(lc_set_grad(n.w, NULL));
  backward(failures_, &n, 1.0);
  CHECK(lc_grad(n.w) != u.vw && same_values(lc_grad(n.w), rw, 1) && same_values(u.vw, rw, -1));
  lc_release(rw);
  lc_release(rb);
  bufs_free(&u);
  net_free(&n);
}

static int post_calls;
static lc_status count_post(void *ud, lc_tensor *leaf) {
  (void)ud;
  (void)leaf;
  post_calls++;
  return LC_OK;
}

TEST(grad_buffer_hooked_leaf_and_two_uses) {
  net n;
  net_init(failures_, &n);
  /* reference: w used by two linears (its gradient sums over both) */
  lc_tensor *l1 = loss(failures_, &n, 1.0), *l2 = loss(failures_, &n, 3.0), *l = NULL;
  CHECK_OK(lc_binary(LC_ADD, l1, l2, &l));
  CHECK_OK(lc_backward(l, NULL, false));
  lc_release(l);
  lc_release(l1);
  lc_release(l2);
  lc_tensor *rb = NULL, *rw = grads_of(failures_, &n, &rb);
  bufs u;
  bufs_init(failures_, &u);
  CHECK_OK(lc_set_grad_buffer(n.w, u.vw));
  CHECK_OK(lc_set_grad_buffer(n.b, u.vb));
  lc_hook_handle *h = NULL;
  CHECK_OK(lc_register_post_accumulate_grad_hook(n.w, count_post, NULL, NULL, &h));
  post_calls = 0;
  l1 = loss(failures_, &n, 1.0);
  l2 = loss(failures_, &n, 3.0);
  CHECK_OK(lc_binary(LC_ADD, l1, l2, &l));
  CHECK_OK(lc_backward(l, NULL, false));
  CHECK(post_calls == 1);
  /* the hooked w: its first gradient went into the buffer, the second was added to a copy */
  CHECK(same_values(lc_grad(n.w), rw, 1));
  /* the unhooked b: first into the buffer, the second added in place */
  CHECK(lc_grad(n.b) == u.vb && same_values(u.vb, rb, 1));
  lc_release(l);
  lc_release(l1);
  lc_release(l2);
  lc_hook_handle_free(h);
  lc_release(rw);
  lc_release(rb);
  bufs_free(&u);
  net_free(&n);
}

TEST(grad_buffer_left_alone_by_autograd_grad_and_create_graph) {
  net n;
  net_init(failures_, &n);
  bufs u;
  bufs_init(failures_, &u);
  CHECK_OK(lc_set_grad_buffer(n.w, u.vw));
  lc_tensor *l = loss(failures_, &n, 1.0), *g[1] = {NULL};
  CHECK_OK(lc_autograd_grad(1, &l, NULL, 1, &n.w, false, false, g));
  CHECK(g[0] && g[0] != u.vw && !lc_grad(n.w) && isnan(((float *)lc_data(u.vw))[0]));
  lc_release(g[0]);
  lc_release(l);
  l = loss(failures_, &n, 1.0);
  CHECK_OK(lc_backward_ex(l, NULL, LC_CREATE_GRAPH | LC_RETAIN_GRAPH));
  CHECK(lc_grad(n.w) && lc_grad(n.w) != u.vw && isnan(((float *)lc_data(u.vw))[0]));
  CHECK_OK(lc_set_grad(n.w, NULL));
  CHECK_OK(lc_set_grad(n.b, NULL));
  lc_release(l);
  /* an op that does not use buffers (mul): the gradient is stored as usual */
  lc_tensor *y = NULL, *s = NULL;
  lc_reduce_opts all = {0};
  CHECK_OK(lc_binary(LC_MUL, n.w, n.w, &y));
  CHECK_OK(lc_reduce(LC_SUM, y, &all, &s));
  CHECK_OK(lc_backward(s, NULL, false));
  CHECK(lc_grad(n.w) != u.vw && same_values(lc_grad(n.w), n.w, 2));
  lc_release(y);
  lc_release(s);
  bufs_free(&u);
  net_free(&n);
}

TEST(grad_buffer_argument_errors) {
  net n;
  net_init(failures_, &n);
  bufs u;
  bufs_init(failures_, &u);
  int64_t s2[2] = {5, 3};
  lc_tensor *wrong = NULL, *dbl = NULL, *tr = NULL, *y = NULL;
  CHECK_OK(lc_zeros(2, s2, LC_FLOAT32, &wrong));
  CHECK_STATUS(lc_set_grad_buffer(n.w, wrong), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "set_grad_buffer: the buffer has shape"));
  CHECK_OK(lc_transpose(wrong, 0, 1, &tr));
  CHECK_STATUS(lc_set_grad_buffer(n.w, tr), LC_EARG); /* {3, 5} but not contiguous */
  CHECK_OK(lc_to_dtype(u.vw, LC_FLOAT64, &dbl));
  CHECK_STATUS(lc_set_grad_buffer(n.w, dbl), LC_EDTYPE);
  CHECK_STATUS(lc_set_grad_buffer(n.w, n.w), LC_EARG);   /* requires grad, shares storage */
  CHECK_STATUS(lc_set_grad_buffer(n.x, u.vw), LC_EGRAD); /* does not require grad */
  CHECK_OK(lc_binary_scalar(LC_MUL, n.w, 2.0, false, &y));
  CHECK_STATUS(lc_set_grad_buffer(y, u.vw), LC_EGRAD); /* not a leaf */
  CHECK_STATUS(lc_set_grad_buffer(NULL, u.vw), LC_EARG);
  CHECK_OK(lc_set_grad_buffer(n.w, NULL)); /* none set: fine */
  lc_release(wrong);
  lc_release(dbl);
  lc_release(tr);
  lc_release(y);
  bufs_free(&u);
  net_free(&n);
}
