/* test_autograd_post_hooks.c - leaf hooks firing as soon as the leaf is complete,
 * lc_register_post_accumulate_grad_hook and lc_autograd_queue_callback (what a
 * DistributedDataParallel overlapping all_reduce with backward needs). */
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static const int64_t S2[1] = {2};

static lc_tensor *leaf(double v) {
  lc_tensor *t = NULL;
  if (lc_full(1, S2, v, LC_FLOAT64, &t) != LC_OK) return NULL;
  if (lc_set_requires_grad(t, true) != LC_OK) {
    lc_release(t);
    return NULL;
  }
  return t;
}

static lc_tensor *mul(lc_tensor *a, lc_tensor *b) {
  lc_tensor *o = NULL;
  return lc_binary(LC_MUL, a, b, &o) == LC_OK ? o : NULL;
}

static lc_tensor *scale(lc_tensor *a, double f) {
  lc_tensor *o = NULL;
  return lc_binary_scalar(LC_MUL, a, f, false, &o) == LC_OK ? o : NULL;
}

static lc_tensor *sum(lc_tensor *a) {
  lc_tensor *o = NULL;
  lc_reduce_opts all = {0};
  return lc_reduce(LC_SUM, a, &all, &o) == LC_OK ? o : NULL;
}

/* element j of t, or NAN when t is NULL */
static double val(const lc_tensor *t, int j) {
  if (!t) return NAN;
  double *v = test_values(t);
  double r = v ? v[j] : NAN;
  free(v);
  return r;
}

/* An event log: each hook or callback appends its tag. */
static char events[64];
static int n_events;
static void log_event(char c) {
  if (n_events < (int)sizeof events - 1) events[n_events++] = c;
  events[n_events] = 0;
}
static void reset_events(void) {
  n_events = 0;
  events[0] = 0;
}

static int n_freed;
static void count_free(void *ud) {
  (void)ud;
  n_freed++;
}

/* The leaves of the chain loss = sum(((a * 2) * b) * c): backward reaches c first, a last. */
typedef struct chain {
  lc_tensor *a, *b, *c, *loss;
} chain;

static chain chain_new(void) {
  chain ch = {leaf(1), leaf(2), leaf(3), NULL};
  lc_tensor *y1 = scale(ch.a, 2), *y2 = mul(y1, ch.b), *y3 = mul(y2, ch.c);
  ch.loss = sum(y3);
  lc_release(y1);
  lc_release(y2);
  lc_release(y3);
  return ch;
}

static void chain_free(chain *ch) {
  lc_release(ch->loss);
  lc_release(ch->a);
  lc_release(ch->b);
  lc_release(ch->c);
}

/* ------------------------------------------------------------------ post hooks: order */

typedef struct post_ud {
  char tag;
  chain *ch;       /* the others' .grad as seen from the hook */
  bool grads[3];   /* .grad of a, b, c set when this hook ran */
  double seen;     /* this leaf's .grad[0] when the hook ran */
  lc_tensor *self; /* the leaf the hook was registered on */
  bool right_leaf; /* the hook was called with it */
} post_ud;

static lc_status record_post(void *ud, lc_tensor *t) {
  post_ud *p = ud;
  log_event(p->tag);
  p->right_leaf = t == p->self;
  p->seen = val(lc_grad(t), 0);
  if (p->ch) {
    p->grads[0] = lc_grad(p->ch->a) != NULL;
    p->grads[1] = lc_grad(p->ch->b) != NULL;
    p->grads[2] = lc_grad(p->ch->c) != NULL;
  }
  return LC_OK;
}

/* A leaf used early in the forward completes after the ones used late; each post hook runs
 * before the pass ends (the leaves completing later have no .grad yet), on its own leaf, with
 * its .grad accumulated. */
TEST(post_hooks_fire_as_leaves_complete) {
  chain ch = chain_new();
  CHECK(ch.loss != NULL);
  if (!ch.loss) return;
  post_ud pa = {'a', &ch, {0}, 0, ch.a, false}, pb = {'b', &ch, {0}, 0, ch.b, false},
          pc = {'c', &ch, {0}, 0, ch.c, false};
  lc_hook_handle *ha = NULL, *hb = NULL, *hc = NULL;
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.a, record_post, &pa, NULL, &ha));
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.b, record_post, &pb, NULL, &hb));
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.c, record_post, &pc, NULL, &hc));
  reset_events();
  CHECK_OK(lc_backward(ch.loss, NULL, true));
  CHECK(strcmp(events, "cba") == 0);
  /* c first: a's and b's gradients are still to come */
  CHECK(pc.grads[2] && !pc.grads[1] && !pc.grads[0]);
  CHECK(pb.grads[2] && pb.grads[1] && !pb.grads[0]);
  CHECK(pa.grads[2] && pa.grads[1] && pa.grads[0]);
  CHECK(pa.right_leaf && pb.right_leaf && pc.right_leaf);
  /* d/da = 2bc = 12, d/db = 2ac = 6, d/dc = 2ab = 4 */
  CHECK_NEAR(pa.seen, 12, 1e-12);
  CHECK_NEAR(pb.seen, 6, 1e-12);
  CHECK_NEAR(pc.seen, 4, 1e-12);
  /* a second backward: the hooks see .grad with the first pass's gradient added */
  reset_events();
  CHECK_OK(lc_backward(ch.loss, NULL, false));
  CHECK(strcmp(events, "cba") == 0);
  CHECK_NEAR(pa.seen, 24, 1e-12);
  CHECK_NEAR(pc.seen, 8, 1e-12);
  lc_hook_handle_free(ha);
  lc_hook_handle_free(hb);
  lc_hook_handle_free(hc);
  chain_free(&ch);
}

/* ------------------------------------------------------------------ gradient hooks: early */

typedef struct pre_ud {
  char tag;
  lc_tensor *other; /* a leaf completing later */
  bool other_set;   /* its .grad was set when this hook ran */
  double seen;
} pre_ud;

static lc_status record_pre(void *ud, const lc_tensor *g, lc_tensor **rep) {
  (void)rep;
  pre_ud *p = ud;
  log_event(p->tag);
  p->seen = val(g, 0);
  if (p->other) p->other_set = lc_grad(p->other) != NULL;
  return LC_OK;
}

/* Gradient hooks (lc_register_hook) on leaves fire as each leaf completes too, in a backward
 * and in lc_autograd_grad, which runs no post hooks. */
TEST(leaf_grad_hooks_fire_as_leaves_complete) {
  chain ch = chain_new();
  CHECK(ch.loss != NULL);
  if (!ch.loss) return;
  pre_ud pa = {'a', NULL, false, 0}, pc = {'c', ch.a, false, 0};
  post_ud post = {'P', NULL, {0}, 0, ch.c, false};
  lc_hook_handle *ha = NULL, *hc = NULL, *hp = NULL;
  CHECK_OK(lc_register_hook(ch.a, record_pre, &pa, NULL, &ha));
  CHECK_OK(lc_register_hook(ch.c, record_pre, &pc, NULL, &hc));
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.c, record_post, &post, NULL, &hp));
  reset_events();
  CHECK_OK(lc_backward(ch.loss, NULL, true));
  CHECK(strcmp(events, "cPa") == 0); /* c's gradient hook, its post hook, then a's */
  CHECK(!pc.other_set);
  CHECK_NEAR(pc.seen, 4, 1e-12);
  CHECK_NEAR(pa.seen, 12, 1e-12);

  /* lc_autograd_grad: gradient hooks in the same order, no post hook, .grad untouched */
  CHECK_OK(lc_set_grad(ch.a, NULL));
  CHECK_OK(lc_set_grad(ch.c, NULL));
  reset_events();
  lc_tensor *in[2] = {ch.a, ch.c}, *grads[2] = {NULL, NULL};
  CHECK_OK(lc_autograd_grad(1, &ch.loss, NULL, 2, in, true, false, grads));
  CHECK(strcmp(events, "ca") == 0);
  CHECK_NEAR(val(grads[0], 0), 12, 1e-12);
  CHECK_NEAR(val(grads[1], 1), 4, 1e-12);
  CHECK(lc_grad(ch.a) == NULL && lc_grad(ch.c) == NULL);
  lc_release(grads[0]);
  lc_release(grads[1]);
  lc_hook_handle_free(ha);
  lc_hook_handle_free(hc);
  lc_hook_handle_free(hp);
  chain_free(&ch);
}

/* A leaf used by two nodes (one early, one late in the forward) completes once, after the
 * last of them, with the sum over both edges; a leaf in between completes before it, although
 * part of the shared leaf's gradient has already arrived. */
TEST(leaf_used_twice_sees_the_full_sum) {
  lc_tensor *x = leaf(2), *w = leaf(5);
  lc_tensor *y = scale(x, 3), *z = mul(y, w), *u = mul(z, x), *loss = sum(u); /* 3x^2 w */
  CHECK(loss != NULL);
  post_ud px = {'x', NULL, {0}, 0, x, false};
  pre_ud gx = {'g', NULL, false, 0}, pw = {'w', x, false, 0};
  lc_hook_handle *h1 = NULL, *h2 = NULL, *h3 = NULL;
  CHECK_OK(lc_register_hook(x, record_pre, &gx, NULL, &h1));
  CHECK_OK(lc_register_post_accumulate_grad_hook(x, record_post, &px, NULL, &h2));
  CHECK_OK(lc_register_hook(w, record_pre, &pw, NULL, &h3));
  reset_events();
  CHECK_OK(lc_backward(loss, NULL, false));
  CHECK(strcmp(events, "wgx") == 0);
  CHECK(!pw.other_set);                  /* x's partial gradient was held back */
  CHECK_NEAR(gx.seen, 6 * 2 * 5, 1e-12); /* d(3x^2 w)/dx = 6xw, once */
  CHECK_NEAR(px.seen, 60, 1e-12);
  CHECK_NEAR(val(lc_grad(x), 1), 60, 1e-12);
  CHECK_NEAR(val(lc_grad(w), 0), 12, 1e-12);
  lc_hook_handle_free(h1);
  lc_hook_handle_free(h2);
  lc_hook_handle_free(h3);
  lc_release(loss);
  lc_release(u);
  lc_release(z);
  lc_release(y);
  lc_release(w);
  lc_release(x);
}

/* ------------------------------------------------------------------ post hooks: rules */

static lc_status failing_post(void *ud, lc_tensor *t) {
  (void)ud, (void)t;
  log_event('F');
  return lc_set_error(LC_EINDEX, "my post hook failed");
}

static lc_status remove_self(void *ud, lc_tensor *t) {
  (void)t;
  log_event('R');
  lc_hook_handle_remove(*(lc_hook_handle **)ud);
  return LC_OK;
}

TEST(post_hook_rules) {
  lc_tensor *plain = NULL, *x = leaf(1), *y = NULL;
  lc_hook_handle *hd = NULL;
  CHECK_OK(lc_full(1, S2, 1.0, LC_FLOAT32, &plain));
  post_ud p = {'p', NULL, {0}, 0, x, false};
  CHECK_STATUS(lc_register_post_accumulate_grad_hook(plain, record_post, &p, NULL, &hd), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "doesn't require gradient") != NULL);
  y = scale(x, 2);
  CHECK_STATUS(lc_register_post_accumulate_grad_hook(y, record_post, &p, NULL, &hd), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "non-leaf") != NULL);
  CHECK_STATUS(lc_register_post_accumulate_grad_hook(x, NULL, &p, NULL, &hd), LC_EARG);
  CHECK_STATUS(lc_register_post_accumulate_grad_hook(NULL, record_post, &p, NULL, &hd), LC_EARG);
  CHECK(hd == NULL);

  /* a failing hook stops the backward with its status and message; the hooks after it do not
   * run; removing it lets the next backward through */
  lc_hook_handle *hf = NULL, *hp = NULL;
  n_freed = 0;
  CHECK_OK(lc_register_post_accumulate_grad_hook(x, failing_post, NULL, count_free, &hf));
  CHECK_OK(lc_register_post_accumulate_grad_hook(x, record_post, &p, count_free, &hp));
  lc_tensor *s = sum(y);
  reset_events();
  CHECK_STATUS(lc_backward(s, NULL, true), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "my post hook failed") != NULL);
  CHECK(strcmp(events, "F") == 0);
  lc_hook_handle_remove(hf);
  CHECK(n_freed == 1);
  CHECK_OK(lc_set_grad(x, NULL));
  reset_events();
  CHECK_OK(lc_backward(s, NULL, true));
  CHECK(strcmp(events, "p") == 0);
  CHECK_NEAR(p.seen, 2, 1e-12);

  /* a hook removing itself runs once; the one after it still runs */
  lc_hook_handle *hr = NULL;
  lc_hook_handle_remove(hp);
  lc_hook_handle_free(hp);
  CHECK(n_freed == 2);
  CHECK_OK(lc_register_post_accumulate_grad_hook(x, remove_self, &hr, NULL, &hr));
  CHECK_OK(lc_register_post_accumulate_grad_hook(x, record_post, &p, NULL, &hp));
  reset_events();
  CHECK_OK(lc_backward(s, NULL, true));
  CHECK_OK(lc_backward(s, NULL, true));
  CHECK(strcmp(events, "Rpp") == 0);

  /* backward of the leaf itself: its post hook runs after .grad is set */
  CHECK_OK(lc_set_grad(x, NULL));
  lc_tensor *seed = NULL;
  CHECK_OK(lc_full(1, S2, 7.0, LC_FLOAT64, &seed));
  reset_events();
  CHECK_OK(lc_backward(x, seed, false));
  CHECK(strcmp(events, "p") == 0);
  CHECK_NEAR(p.seen, 7, 1e-12);
  lc_release(seed);

  /* a hook left registered is released with its leaf */
  lc_hook_handle *hl = NULL;
  CHECK_OK(lc_register_post_accumulate_grad_hook(x, record_post, &p, count_free, &hl));
  lc_hook_handle_free(hl);
  lc_hook_handle_free(hr);
  lc_hook_handle_free(hf);
  lc_hook_handle_free(hp);
  lc_release(s);
  lc_release(y);
  lc_release(plain);
  CHECK(n_freed == 2);
  lc_release(x);
  CHECK(n_freed == 3);
}

/* ------------------------------------------------------------------ queue_callback */

typedef struct cb_ud {
  char tag;
  int requeue;    /* queue another callback (tag + 1) this many times deep */
  lc_status fail; /* returned */
} cb_ud;

static lc_status record_cb(void *ud) {
  cb_ud *c = ud;
  log_event(c->tag);
  if (c->requeue > 0) {
    cb_ud *next = malloc(sizeof *next);
    if (!next) return lc_set_error(LC_ENOMEM, "test: out of memory");
    *next = (cb_ud){(char)(c->tag + 1), c->requeue - 1, LC_OK};
    lc_status st = lc_autograd_queue_callback(record_cb, next, free);
    if (st) return st;
  }
  if (c->fail) return lc_set_error(c->fail, "callback %c failed", c->tag);
  return LC_OK;
}

static void free_counted(void *ud) {
  n_freed++;
  free(ud);
}

/* The post hook that queues callbacks: the first time it runs only (like DDP's "queue once per
 * backward"), from the chain's hook on c (the first leaf to complete). */
typedef struct queuer {
  cb_ud *cbs;
  int n;
  bool queued;
  lc_status st; /* lc_autograd_queue_callback's */
} queuer;

static lc_status queue_from_hook(void *ud, lc_tensor *t) {
  (void)t;
  queuer *q = ud;
  log_event('h');
  if (q->queued) return LC_OK;
  q->queued = true;
  for (int i = 0; i < q->n && !q->st; i++) {
    cb_ud *c = malloc(sizeof *c);
    if (!c) return lc_set_error(LC_ENOMEM, "test: out of memory");
    *c = q->cbs[i];
    q->st = lc_autograd_queue_callback(record_cb, c, free_counted);
  }
  return q->st;
}

TEST(queue_callback_runs_once_at_the_end) {
  chain ch = chain_new();
  CHECK(ch.loss != NULL);
  if (!ch.loss) return;
  cb_ud cbs[2] = {{'1', 0, LC_OK}, {'A', 2, LC_OK}};
  queuer q = {cbs, 2, false, LC_OK};
  post_ud pa = {'a', NULL, {0}, 0, ch.a, false};
  lc_hook_handle *hc = NULL, *ha = NULL;
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.c, queue_from_hook, &q, NULL, &hc));
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.a, record_post, &pa, NULL, &ha));
  reset_events();
  n_freed = 0;
  CHECK_OK(lc_backward(ch.loss, NULL, true));
  /* queued from c's hook, run after a's (the last leaf): in queue order, then the ones they
   * queued (A queues B, B queues C) */
  CHECK(strcmp(events, "ha1ABC") == 0);
  CHECK(n_freed == 2);
  /* a second backward: nothing left queued from the first */
  reset_events();
  CHECK_OK(lc_backward(ch.loss, NULL, true));
  CHECK(strcmp(events, "ha") == 0);
  lc_hook_handle_free(hc);
  lc_hook_handle_remove(ha);
  lc_hook_handle_free(ha);
  chain_free(&ch);
}

/* checks, from the callback, that every leaf of the chain got its .grad */
static chain *complete_chain;
static bool complete_seen;
static lc_status check_complete(void *ud) {
  (void)ud;
  log_event('K');
  complete_seen =
      lc_grad(complete_chain->a) && lc_grad(complete_chain->b) && lc_grad(complete_chain->c);
  return LC_OK;
}
static lc_status queue_check(void *ud, lc_tensor *t) {
  (void)ud, (void)t;
  log_event('q');
  return lc_autograd_queue_callback(check_complete, NULL, count_free);
}

TEST(queue_callback_sees_the_pass_complete) {
  chain ch = chain_new();
  CHECK(ch.loss != NULL);
  if (!ch.loss) return;
  complete_chain = &ch;
  complete_seen = false;
  lc_hook_handle *hc = NULL;
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.c, queue_check, NULL, NULL, &hc));
  reset_events();
  n_freed = 0;
  CHECK_OK(lc_backward(ch.loss, NULL, false));
  CHECK(strcmp(events, "qK") == 0);
  CHECK(complete_seen);
  CHECK(n_freed == 1);
  lc_hook_handle_free(hc);
  chain_free(&ch);
}

TEST(queue_callback_errors) {
  /* outside a backward: an error, and ud is released */
  n_freed = 0;
  CHECK_STATUS(lc_autograd_queue_callback(check_complete, NULL, count_free), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "no backward is running") != NULL);
  CHECK(n_freed == 1);
  CHECK_STATUS(lc_autograd_queue_callback(NULL, NULL, count_free), LC_EARG);
  CHECK(n_freed == 2);

  /* a failing callback: the rest do not run (the one it queued neither), the backward returns
   * its status and message, every ud is released */
  chain ch = chain_new();
  CHECK(ch.loss != NULL);
  if (!ch.loss) return;
  cb_ud cbs[3] = {{'1', 1, LC_EINDEX}, {'X', 0, LC_OK}, {'Y', 0, LC_OK}};
  queuer q = {cbs, 3, false, LC_OK};
  lc_hook_handle *hc = NULL;
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.c, queue_from_hook, &q, NULL, &hc));
  reset_events();
  n_freed = 0;
  CHECK_STATUS(lc_backward(ch.loss, NULL, true), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "callback 1 failed") != NULL);
  CHECK(strcmp(events, "h1") == 0);
  CHECK(n_freed == 3);          /* the queued '2' is freed by free() */
  CHECK(lc_grad(ch.a) != NULL); /* the pass itself completed */

  /* a pass that fails after queueing runs none of its callbacks, and frees them */
  q.queued = false;
  cbs[0].fail = LC_OK;
  lc_hook_handle *hf = NULL;
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.a, failing_post, NULL, NULL, &hf));
  reset_events();
  n_freed = 0;
  CHECK_STATUS(lc_backward(ch.loss, NULL, true), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "my post hook failed") != NULL);
  CHECK(strcmp(events, "hF") == 0);
  CHECK(n_freed == 3);

  /* and after all that, no queue is left behind on this thread */
  n_freed = 0;
  CHECK_STATUS(lc_autograd_queue_callback(check_complete, NULL, count_free), LC_EGRAD);
  CHECK(n_freed == 1);
  lc_hook_handle_free(hf);
  lc_hook_handle_free(hc);
  chain_free(&ch);
}

/* lc_autograd_grad runs queued callbacks too; a backward started inside a hook has its own
 * queue (the inner callback runs before the inner backward returns). */
typedef struct nested {
  lc_tensor *loss2;
  lc_status st;
} nested;
static lc_status log_cb(void *ud) {
  log_event(*(char *)ud);
  return LC_OK;
}
static char TAG_O = 'O', TAG_I = 'I';
static lc_status inner_queue(void *ud, const lc_tensor *g, lc_tensor **rep) {
  (void)ud, (void)g, (void)rep;
  log_event('i');
  return lc_autograd_queue_callback(log_cb, &TAG_I, NULL);
}
static lc_status outer_hook(void *ud, const lc_tensor *g, lc_tensor **rep) {
  (void)g, (void)rep;
  nested *n = ud;
  log_event('o');
  lc_status st = lc_autograd_queue_callback(log_cb, &TAG_O, NULL);
  if (!st) st = lc_backward(n->loss2, NULL, false);
  log_event('r');
  return st;
}

TEST(queue_callback_nested_and_autograd_grad) {
  lc_tensor *x = leaf(1), *w = leaf(2);
  lc_tensor *y = scale(x, 3), *loss = sum(y), *v = scale(w, 2), *loss2 = sum(v);
  nested n = {loss2, LC_OK};
  lc_hook_handle *h1 = NULL, *h2 = NULL;
  CHECK_OK(lc_register_hook(x, outer_hook, &n, NULL, &h1));
  CHECK_OK(lc_register_hook(w, inner_queue, NULL, NULL, &h2));
  reset_events();
  lc_tensor *g = NULL;
  CHECK_OK(lc_autograd_grad(1, &loss, NULL, 1, &x, false, false, &g));
  CHECK(strcmp(events, "oiIrO") == 0);
  CHECK_NEAR(val(g, 0), 3, 1e-12);
  CHECK_NEAR(val(lc_grad(w), 0), 2, 1e-12);
  lc_release(g);
  lc_hook_handle_free(h1);
  lc_hook_handle_free(h2);
  lc_release(loss2);
  lc_release(v);
  lc_release(loss);
  lc_release(y);
  lc_release(w);
  lc_release(x);
}

/* ------------------------------------------------------------------ allocation failures */

static int live_cbs;
static void free_live(void *ud) {
  (void)ud;
  live_cbs--;
}
static lc_status noop_cb(void *ud) {
  (void)ud;
  return LC_OK;
}
static lc_status queue_five(void *ud, lc_tensor *t) {
  (void)ud, (void)t;
  for (int i = 0; i < 5; i++) { /* past the queue's first capacity */
    live_cbs++;
    lc_status st = lc_autograd_queue_callback(noop_cb, NULL, free_live);
    if (st) return st;
  }
  return LC_OK;
}
static lc_status pass_pre(void *ud, const lc_tensor *g, lc_tensor **rep) {
  (void)ud, (void)g, (void)rep;
  return LC_OK;
}

/* Every allocation of a backward with hooked leaves and queued callbacks failing in turn: a
 * status with a message, every callback's ud released (LeakSanitizer checks the rest under
 * check-asan), and the same backward succeeds right after. */
TEST(post_hooks_allocation_failures) {
  chain ch = chain_new();
  CHECK(ch.loss != NULL);
  if (!ch.loss) return;
  lc_hook_handle *hd[4] = {NULL};
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.c, queue_five, NULL, NULL, &hd[0]));
  CHECK_OK(lc_register_post_accumulate_grad_hook(ch.a, queue_five, NULL, NULL, &hd[1]));
  CHECK_OK(lc_register_hook(ch.b, pass_pre, NULL, NULL, &hd[2]));
  CHECK_OK(lc_register_hook(ch.a, pass_pre, NULL, NULL, &hd[3]));
  lc_debug_track_allocations(true);
  int64_t before = lc_debug_allocations();
  CHECK_OK(lc_backward(ch.loss, NULL, true));
  int64_t k = lc_debug_allocations() - before;
  CHECK(k > 5);
  CHECK(live_cbs == 0);
  int64_t failed = 0;
  for (int64_t n = 1; n <= k; n++) {
    lc_debug_fail_allocation(n);
    lc_status st = lc_backward(ch.loss, NULL, true);
    lc_debug_fail_allocation(0);
    if (st) {
      failed++;
      CHECK(lc_last_error()[0] != 0);
    }
    CHECK(live_cbs == 0);
    CHECK_OK(lc_backward(ch.loss, NULL, true));
    CHECK(live_cbs == 0);
  }
  lc_debug_track_allocations(false);
  CHECK(failed > 0);
  for (int i = 0; i < 4; i++)
    lc_hook_handle_free(hd[i]);
  chain_free(&ch);
}
