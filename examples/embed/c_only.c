/*
 * c_only.c - lucid from C alone (lucid.h + lucid_nn.h, no Lua): fits a small MLP to a noiseless
 * regression problem with plain SGD, checking every status. The update is lucid_optim.h's SGD
 * when that header is there (lc_optimizer_step), else written out by hand (sgd_step below:
 * what any custom update rule looks like in C).
 *
 *   y = 0.5 x0 - 2 x1 + x0 x1     for 64 points (x0, x1) in [-1, 1)^2
 *   model = Sequential(Linear(2, 16), ReLU(), Linear(16, 1)), loss = mean((model(x) - y)^2)
 *
 * Prints the loss as it decreases and, last, one line the test suite checks:
 *   c_only: OK loss <first> -> <last> in <steps> steps
 * Exits non-zero (after printing the reason and lc_last_error()) on any failure.
 *
 * Build against a source tree:   cc -Iinclude c_only.c build/liblucid.a $(pkg-config --libs
 *                                openblas) -lz -lm -lpthread
 * against an installation:       cc c_only.c $(pkg-config --cflags --libs lucid)
 */
#include <stdio.h>
#include <string.h>

#include "lucid.h"
#include "lucid_nn.h"
#if defined(__has_include)
#if __has_include("lucid_optim.h")
#include "lucid_optim.h"
#define HAVE_OPTIM 1
#endif
#endif

#define N_POINTS 64
#define STEPS 300
#define LR 0.1

/* Every lucid call returns an lc_status; on failure lc_last_error() (thread-local) says why.
 * TRY jumps to the function's cleanup label, which releases whatever was taken. */
#define TRY(call)                                                                          \
  do {                                                                                     \
    lc_status st_ = (call);                                                                \
    if (st_ != LC_OK) {                                                                    \
      fprintf(stderr, "c_only: %s failed: %s: %s\n", #call, lc_status_name(st_),           \
              lc_last_error());                                                            \
      goto done;                                                                           \
    }                                                                                      \
  } while (0)

/* mean((pred - y)^2) as a 0-dim tensor recorded for autograd (*loss owned by the caller). */
static lc_status mse(const lc_tensor *pred, const lc_tensor *y, lc_tensor **loss) {
  lc_tensor *diff = NULL, *sq = NULL;
  lc_status st = lc_binary(LC_SUB, pred, y, &diff);
  if (st == LC_OK) st = lc_binary(LC_MUL, diff, diff, &sq);
  lc_reduce_opts all = {0}; /* ndims = 0: every element */
  if (st == LC_OK) st = lc_reduce(LC_MEAN, sq, &all, loss);
  lc_release(sq);
  lc_release(diff);
  return st;
}

#ifndef HAVE_OPTIM
/* p -= lr * p.grad for every parameter, with grad mode off (an in-place write to a leaf that
 * requires grad is refused while grad mode is on, as in PyTorch). */
static lc_status sgd_step(const lc_named_tensors *params, double lr) {
  lc_status st = LC_OK;
  bool prev = lc_set_grad_enabled(false);
  for (int64_t i = 0; i < params->n && st == LC_OK; i++) {
    lc_tensor *p = params->tensors[i];
    lc_tensor *g = lc_grad(p); /* borrowed */
    lc_tensor *step = NULL;
    if (g == NULL) {
      st = lc_set_error(LC_EGRAD, "sgd_step: parameter %s has no gradient", params->names[i]);
      break;
    }
    st = lc_binary_scalar(LC_MUL, g, lr, false, &step);
    if (st == LC_OK) st = lc_binary_(LC_SUB, p, step);
    lc_release(step);
  }
  lc_set_grad_enabled(prev);
  return st;
}
#endif

int main(void) {
  int rc = 1;
  float xs[N_POINTS][2], ys[N_POINTS][1];
  lc_tensor *x = NULL, *y = NULL, *pred = NULL, *loss = NULL, *bad = NULL;
  lc_module *layers[3] = {NULL, NULL, NULL}, *model = NULL;
  lc_named_tensors params = {0};
#ifdef HAVE_OPTIM
  lc_optimizer *opt = NULL;
#endif
  char *text = NULL;
  double first = 0, last = 0;

  /* The data: a small LCG, so the program owns its inputs (lucid's generator is used for the
   * weights, seeded below). */
  uint32_t s = 12345;
  for (int i = 0; i < N_POINTS; i++) {
    for (int j = 0; j < 2; j++) {
      s = s * 1664525u + 1013904223u;
      xs[i][j] = (float)((s >> 8) * (2.0 / 16777216.0) - 1.0);
    }
    ys[i][0] = 0.5f * xs[i][0] - 2.0f * xs[i][1] + xs[i][0] * xs[i][1];
  }
  const int64_t x_shape[2] = {N_POINTS, 2}, y_shape[2] = {N_POINTS, 1};
  TRY(lc_from_data(2, x_shape, LC_FLOAT32, xs, &x)); /* copies xs */
  TRY(lc_from_data(2, y_shape, LC_FLOAT32, ys, &y));

  lc_manual_seed(7); /* Linear's initialisation draws from lucid's (process-wide) generator */
  TRY(lc_nn_linear(2, 16, true, &layers[0]));
  TRY(lc_nn_relu(&layers[1]));
  TRY(lc_nn_linear(16, 1, true, &layers[2]));
  const char *names[3] = {"fc1", "act", "fc2"};
  TRY(lc_nn_sequential(3, layers, names, &model)); /* retains each layer... */
  for (int i = 0; i < 3; i++) {                    /* ...so ours can go */
    lc_module_release(layers[i]);
    layers[i] = NULL;
  }
  TRY(lc_module_to_string(model, &text));
  printf("%s\n", text);
  lc_free(text);
  text = NULL;
  TRY(lc_module_named_parameters(model, true, &params)); /* owned references */
  printf("%lld parameters in %lld tensors\n", (long long)lc_module_num_parameters(model),
         (long long)params.n);

#ifdef HAVE_OPTIM
  lc_optim_options opts;
  lc_optim_default_options(LC_OPTIM_SGD, &opts);
  opts.lr = LR; /* plain SGD: no momentum, no weight decay */
  TRY(lc_optimizer_new_for_module(LC_OPTIM_SGD, model, &opts, &opt));
  printf("update: lc_optimizer_step (lucid_optim.h SGD, lr %g)\n", LR);
#else
  printf("update: sgd_step (by hand, lr %g)\n", LR);
#endif

  /* A wrong input is an ordinary status, with the module path in the message. */
  const int64_t bad_shape[2] = {1, 3};
  TRY(lc_zeros(2, bad_shape, LC_FLOAT32, &bad));
  lc_status st = lc_module_forward(model, bad, &pred);
  if (st != LC_ESHAPE || pred != NULL || strstr(lc_last_error(), "fc1") == NULL) {
    fprintf(stderr, "c_only: expected an LC_ESHAPE error naming fc1, got %s: %s\n",
            lc_status_name(st), lc_last_error());
    goto done;
  }
  printf("bad input rejected: %s\n", lc_last_error());

  for (int step = 0; step < STEPS; step++) {
    TRY(lc_module_forward(model, x, &pred));
    TRY(mse(pred, y, &loss));
    TRY(lc_module_zero_grad(model, true)); /* drop last step's .grad */
    TRY(lc_backward(loss, NULL, false));   /* frees the graph */
    for (int64_t i = 0; i < params.n; i++) {
      if (lc_grad(params.tensors[i]) == NULL) { /* lc_grad: borrowed */
        fprintf(stderr, "c_only: no gradient for %s after backward\n", params.names[i]);
        goto done;
      }
    }
#ifdef HAVE_OPTIM
    TRY(lc_optimizer_step(opt));
#else
    TRY(sgd_step(&params, LR));
#endif
    double value;
    TRY(lc_item(loss, &value));
    if (step == 0) first = value;
    last = value;
    if (step % 50 == 0 || step == STEPS - 1) printf("step %3d  loss %.6f\n", step, value);
    lc_release(loss);
    loss = NULL;
    lc_release(pred);
    pred = NULL;
  }
  /* The fit must have made real progress: a tenth of the initial loss at most. */
  if (!(last < 0.1 * first)) {
    fprintf(stderr, "c_only: loss did not decrease enough: %g -> %g\n", first, last);
    goto done;
  }
  printf("c_only: OK loss %.6f -> %.6f in %d steps\n", first, last, STEPS);
  rc = 0;
done:
#ifdef HAVE_OPTIM
  lc_optimizer_free(opt);
#endif
  lc_free(text);
  lc_named_tensors_free(&params);
  for (int i = 0; i < 3; i++) lc_module_release(layers[i]); /* NULL-safe */
  lc_module_release(model);
  lc_release(bad);
  lc_release(loss);
  lc_release(pred);
  lc_release(y);
  lc_release(x);
  return rc;
}
