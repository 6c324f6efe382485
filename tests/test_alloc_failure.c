/* Allocation-failure injection (issue 12, item 3): for every N along a training step of a
 * small CNN (forward, loss, backward, an Adam step) and a checkpoint save and load, the Nth
 * allocation of the core fails. Each run must return a status (never crash), free what it took
 * (LeakSanitizer checks it under `make check-asan`) and leave the runtime usable: the same step
 * succeeds right after. */
#include "lucid.h"
#include "lucid_conv.h"
#include "lucid_io.h"
#include "lucid_loss.h"
#include "lucid_nn.h"
#include "lucid_optim.h"
#include "test.h"

#include <stdio.h>
#include <unistd.h>

/* conv 1->4 (3x3) -> relu -> max pool 2 -> flatten -> linear 36 -> 10, on 2 images 8x8 */
static lc_status make_model(lc_module **out) {
  lc_module *m[5] = {NULL};
  lc_conv_opts co;
  lc_conv_opts_init(&co);
  lc_pool_opts po;
  lc_pool_opts_init(&po, 2, 2);
  int64_t k[2] = {3, 3};
  lc_status st = lc_nn_conv2d(1, 4, k, &co, true, &m[0]);
  if (!st) st = lc_nn_relu(&m[1]);
  if (!st) st = lc_nn_max_pool2d(&po, false, &m[2]);
  if (!st) st = lc_nn_flatten(1, -1, &m[3]);
  if (!st) st = lc_nn_linear(36, 10, true, &m[4]);
  if (!st) st = lc_nn_sequential(5, m, NULL, out);
  for (int i = 0; i < 5; i++)
    lc_module_release(m[i]);
  return st;
}

typedef struct world {
  lc_module *model;
  lc_optimizer *opt;
  lc_tensor *x, *y;
  char path[64];
} world;

/* One training step and a checkpoint round trip; every failure is a status. */
static lc_status step(world *w) {
  lc_tensor *pred = NULL, *loss = NULL;
  lc_named_tensors sd = {0};
  lc_safetensors *f = NULL;
  lc_status st = lc_module_forward(w->model, w->x, &pred);
  if (!st) st = lc_cross_entropy(pred, w->y, NULL, &loss);
  if (!st) st = lc_optimizer_zero_grad(w->opt, true);
  if (!st) st = lc_backward(loss, NULL, false);
  if (!st) st = lc_optimizer_step(w->opt);
  if (!st) st = lc_module_state_dict(w->model, &sd);
  if (!st)
    st = lc_safetensors_save(w->path, sd.n, (const char *const *)sd.names, sd.tensors, 0, NULL,
                             NULL);
  if (!st) st = lc_safetensors_load(w->path, &f);
  if (!st && f->count != sd.n) st = lc_set_error(LC_EFORMAT, "checkpoint lost tensors");
  lc_safetensors_free(f);
  lc_named_tensors_free(&sd);
  lc_release(loss);
  lc_release(pred);
  return st;
}

TEST(alloc_failure_every_allocation_of_a_training_step) {
  world w = {0};
  snprintf(w.path, sizeof w.path, "/tmp/lucid-allocfail-%d.safetensors", (int)getpid());
  lc_manual_seed(3);
  CHECK_OK(make_model(&w.model));
  lc_optim_options opts;
  lc_optim_default_options(LC_OPTIM_ADAM, &opts);
  CHECK_OK(lc_optimizer_new_for_module(LC_OPTIM_ADAM, w.model, &opts, &w.opt));
  int64_t xs[] = {2, 1, 8, 8}, ys[] = {2};
  CHECK_OK(lc_randn(4, xs, LC_FLOAT32, &w.x));
  CHECK_OK(lc_zeros(1, ys, LC_INT64, &w.y));
  if (!w.model || !w.opt || !w.x || !w.y) return;
  CHECK_OK(step(&w)); /* warm: the optimizer's state exists from here on */
  lc_debug_track_allocations(true);
  int64_t before = lc_debug_allocations();
  CHECK_OK(step(&w));
  int64_t k = lc_debug_allocations() - before;
  CHECK(k > 20); /* the step allocates: the hooks see it */
  int64_t failed = 0;
  for (int64_t n = 1; n <= k; n++) {
    lc_debug_fail_allocation(n);
    lc_status st = step(&w);
    lc_debug_fail_allocation(0);
    if (st != LC_OK) {
      failed++;
      CHECK(lc_last_error()[0] != 0); /* a message, always */
    }
    lc_status again = step(&w); /* the runtime is usable afterwards */
    if (again != LC_OK) {
      CHECK_OK(again);
      printf("  (after failing allocation %lld of %lld)\n", (long long)n, (long long)k);
      break;
    }
  }
  printf("  %lld allocations per step, %lld failures reported\n", (long long)k, (long long)failed);
  lc_debug_track_allocations(false);
  CHECK(failed > k / 2); /* most allocations are not optional: their failure is reported */
  lc_optimizer_free(w.opt);
  lc_module_release(w.model);
  lc_release(w.x);
  lc_release(w.y);
  unlink(w.path);
}
