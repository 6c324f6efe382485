/*
 * c_only.c - lucid from C alone (lucid.h, no Lua): fits a small MLP to a noiseless regression
 * problem with SGD (momentum 0.9, lucid_optim.h), checking every status, then round-trips a
 * checkpoint through a safetensors file with lucid_io.h:
 *
 *   y = 0.5 x0 - 2 x1 + x0 x1     for 64 points (x0, x1) in [-1, 1)^2
 *   model = Sequential(Linear(2, 16), ReLU(), Linear(16, 1)), loss = mean((model(x) - y)^2)
 *
 *   1. trains for 300 steps;
 *   2. saves the model's state dict ("model.fc1.weight", ...) and the optimizer's state (its
 *      momentum buffers as "optim.<i>.momentum_buffer", its kind, learning rate and any step
 *      counts as metadata) to a temporary file (lc_safetensors_save);
 *   3. builds a fresh model of the same architecture (other random weights: its output differs)
 *      and a fresh optimizer, loads the file into them (lc_safetensors_load,
 *      lc_module_load_state_dict, lc_optimizer_set_state / set_step / set_lr), and checks that
 *      the reloaded model's output is bitwise the trained one's, and that one more training
 *      step of both pairs leaves bitwise equal parameters (the momentum came back too);
 *   4. checks that the file does not load into a model of another architecture (LC_ESHAPE
 *      naming the parameter).
 *
 * Prints the loss as it decreases and, last, one line the test suite checks:
 *   c_only: OK loss <first> -> <last> in <steps> steps; checkpoint: <n> tensors, reloaded
 *   bitwise
 * Exits non-zero (after printing the reason and lc_last_error()) on any failure.
 *
 * Build against a source tree:   cc -Iinclude c_only.c build/liblucid.a $(pkg-config --libs
 *                                openblas) -lz -lm -lpthread
 * against an installation:       cc c_only.c $(pkg-config --cflags --libs lucid)
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkstemp, close */
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lucid.h" /* the whole C API: lucid_core.h, lucid_nn.h, lucid_optim.h, lucid_io.h, ... */

#define N_POINTS 64
#define STEPS 300
#define LR 0.02
#define MOMENTUM 0.9

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

/* Inside the helpers below: keep the first failing status and go to cleanup. */
#define CHECK(call)                                                                        \
  do {                                                                                     \
    st = (call);                                                                           \
    if (st != LC_OK) goto done;                                                            \
  } while (0)

/* A malloc'ed printf (C11 has no asprintf); NULL when out of memory. */
static char *format(const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = len < 0 ? NULL : malloc((size_t)len + 1);
  if (s) vsnprintf(s, (size_t)len + 1, fmt, ap2);
  va_end(ap2);
  return s;
}

/* Sequential(fc1 = Linear(2, hidden), act = ReLU(), fc2 = Linear(hidden, 1)), its weights drawn
 * after lc_manual_seed(seed). */
static lc_status build_model(uint64_t seed, int64_t hidden, lc_module **out) {
  lc_module *layers[3] = {NULL, NULL, NULL};
  const char *names[3] = {"fc1", "act", "fc2"};
  lc_status st;
  *out = NULL;
  lc_manual_seed(seed); /* Linear's initialisation draws from lucid's (per-thread) generator */
  CHECK(lc_nn_linear(2, hidden, true, &layers[0]));
  CHECK(lc_nn_relu(&layers[1]));
  CHECK(lc_nn_linear(hidden, 1, true, &layers[2]));
  CHECK(lc_nn_sequential(3, layers, names, out)); /* retains each layer; ours go below */
done:
  for (int i = 0; i < 3; i++) lc_module_release(layers[i]); /* NULL-safe */
  return st;
}

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

/* One optimisation step; *loss_value receives the loss before the step (may be NULL). */
static lc_status train_step(lc_module *model, lc_optimizer *opt, const lc_tensor *x,
                            const lc_tensor *y, double *loss_value) {
  lc_tensor *pred = NULL, *loss = NULL;
  lc_status st;
  CHECK(lc_module_forward(model, x, &pred));
  CHECK(mse(pred, y, &loss));
  CHECK(lc_optimizer_zero_grad(opt, true)); /* drop last step's .grad */
  CHECK(lc_backward(loss, NULL, false));    /* frees the graph */
  CHECK(lc_optimizer_step(opt));            /* grad mode off inside */
  if (loss_value) CHECK(lc_item(loss, loss_value));
done:
  lc_release(loss);
  lc_release(pred);
  return st;
}

/* model(x) with grad mode off, copied into buf (N_POINTS floats). */
static lc_status predict(lc_module *model, const lc_tensor *x, float *buf) {
  lc_tensor *pred = NULL;
  bool prev = lc_set_grad_enabled(false);
  lc_status st = lc_module_forward(model, x, &pred);
  if (st == LC_OK) st = lc_copy_to_buffer(pred, LC_FLOAT32, buf);
  lc_set_grad_enabled(prev);
  lc_release(pred);
  return st;
}

/* ---------------------------------------------------------------- checkpoints */

/* Writes the model's state dict under "model.<name>", the optimizer's state buffers under
 * "optim.<i>.<buffer>" (i: flat parameter index) and, as metadata, "optim.kind", "optim.lr"
 * (group 0's) and "optim.<i>.step" for kinds that count steps. *count receives the number of
 * tensors written. */
static lc_status save_checkpoint(const char *path, const lc_module *model,
                                 const lc_optimizer *opt, int64_t *count) {
  lc_named_tensors sd = {0};
  char **names = NULL, **keys = NULL, **values = NULL;
  lc_tensor **tensors = NULL;
  int64_t n = 0, owned_from = 0, m = 0;
  lc_status st;
  const lc_optim_kind kind = lc_optimizer_kind(opt);
  const int64_t np = lc_optimizer_num_params(opt);
  const int nb = lc_optim_num_state_buffers(kind);

  CHECK(lc_module_state_dict(model, &sd)); /* detached aliases of the live tensors */
  const int64_t cap = sd.n + np * nb;
  names = calloc((size_t)cap + 1, sizeof *names);
  tensors = calloc((size_t)cap + 1, sizeof *tensors);
  keys = calloc((size_t)np + 2, sizeof *keys);
  values = calloc((size_t)np + 2, sizeof *values);
  if (!names || !tensors || !keys || !values) goto oom;
  for (int64_t i = 0; i < sd.n; i++, n++) {
    if ((names[n] = format("model.%s", sd.names[i])) == NULL) goto oom;
    tensors[n] = sd.tensors[i]; /* borrowed from sd */
  }
  owned_from = n; /* the optimizer's buffers below are references of ours */
  for (int64_t i = 0; i < np; i++) {
    for (int k = 0; k < nb; k++) {
      lc_tensor *buf = NULL;
      CHECK(lc_optimizer_get_state(opt, i, lc_optim_state_name(kind, k), &buf));
      if (buf == NULL) continue; /* no such buffer (yet) */
      tensors[n] = buf;
      names[n] = format("optim.%lld.%s", (long long)i, lc_optim_state_name(kind, k));
      n++;
      if (names[n - 1] == NULL) goto oom;
    }
  }
  keys[m] = format("optim.kind");
  values[m++] = format("%s", lc_optim_kind_name(kind));
  double lr;
  CHECK(lc_optimizer_get_lr(opt, 0, &lr));
  keys[m] = format("optim.lr");
  values[m++] = format("%.17g", lr); /* 17 digits: the double comes back exactly */
  for (int64_t i = 0; i < np && lc_optim_has_step(kind); i++) {
    int64_t step;
    CHECK(lc_optimizer_get_step(opt, i, &step));
    keys[m] = format("optim.%lld.step", (long long)i);
    values[m++] = format("%lld", (long long)step);
  }
  for (int64_t j = 0; j < m; j++)
    if (keys[j] == NULL || values[j] == NULL) goto oom;
  CHECK(lc_safetensors_save(path, n, (const char *const *)names, tensors, m,
                            (const char *const *)keys, (const char *const *)values));
  *count = n;
  goto done;
oom:
  st = lc_set_error(LC_ENOMEM, "save_checkpoint: %s: out of memory", path);
done:
  for (int64_t i = 0; names && i < n; i++) free(names[i]);
  for (int64_t i = owned_from; tensors && i < n; i++) lc_release(tensors[i]);
  for (int64_t j = 0; keys && j < m; j++) {
    free(keys[j]);
    free(values[j]);
  }
  free(names);
  free(tensors);
  free(keys);
  free(values);
  lc_named_tensors_free(&sd);
  return st;
}

/* Loads what save_checkpoint wrote into model (strict: every parameter and buffer must be in the
 * file, with its shape) and opt (same kind; state buffers, step counts, learning rate). Nothing
 * of opt changes when the model does not fit. */
static lc_status load_checkpoint(const char *path, lc_module *model, lc_optimizer *opt) {
  lc_safetensors *f = NULL;
  lc_named_tensors sd = {0}; /* a view of f's model entries: names and tensors borrowed */
  char *name = NULL;
  lc_status st;
  const lc_optim_kind kind = lc_optimizer_kind(opt);

  CHECK(lc_safetensors_load(path, &f));
  const char *saved_kind = lc_safetensors_meta(f, "optim.kind");
  const char *saved_lr = lc_safetensors_meta(f, "optim.lr");
  if (saved_kind == NULL || saved_lr == NULL || strcmp(saved_kind, lc_optim_kind_name(kind)) != 0) {
    st = lc_set_error(LC_EFORMAT,
                      "load_checkpoint: %s: expected metadata optim.kind = \"%s\" and optim.lr, "
                      "got optim.kind = %s",
                      path, lc_optim_kind_name(kind), saved_kind ? saved_kind : "(none)");
    goto done;
  }
  sd.names = calloc((size_t)f->count + 1, sizeof *sd.names);
  sd.tensors = calloc((size_t)f->count + 1, sizeof *sd.tensors);
  if (!sd.names || !sd.tensors) goto oom;
  for (int64_t i = 0; i < f->count; i++) {
    if (strncmp(f->names[i], "model.", 6) != 0) continue;
    sd.names[sd.n] = f->names[i] + 6;
    sd.tensors[sd.n++] = f->tensors[i];
  }
  CHECK(lc_module_load_state_dict(model, &sd, true, NULL, NULL));

  const int64_t np = lc_optimizer_num_params(opt);
  for (int64_t i = 0; i < np; i++) {
    for (int k = 0; k < lc_optim_num_state_buffers(kind); k++) {
      if ((name = format("optim.%lld.%s", (long long)i, lc_optim_state_name(kind, k))) == NULL)
        goto oom;
      const lc_tensor *value = lc_safetensors_get(f, name); /* borrowed; NULL when absent */
      free(name);
      name = NULL;
      if (value) CHECK(lc_optimizer_set_state(opt, i, lc_optim_state_name(kind, k), value));
    }
    if (lc_optim_has_step(kind)) {
      if ((name = format("optim.%lld.step", (long long)i)) == NULL) goto oom;
      const char *step = lc_safetensors_meta(f, name);
      free(name);
      name = NULL;
      if (step) CHECK(lc_optimizer_set_step(opt, i, strtoll(step, NULL, 10)));
    }
  }
  CHECK(lc_optimizer_set_lr(opt, 0, strtod(saved_lr, NULL)));
  goto done;
oom:
  st = lc_set_error(LC_ENOMEM, "load_checkpoint: %s: out of memory", path);
done:
  free(name);
  free(sd.names); /* the view only: the strings and tensors belong to f */
  free(sd.tensors);
  lc_safetensors_free(f);
  return st;
}

/* *same: every parameter and buffer of a and b has the same bytes. */
static lc_status same_state(const lc_module *a, const lc_module *b, bool *same) {
  lc_named_tensors sa = {0}, sb = {0};
  void *ba = NULL, *bb = NULL;
  lc_status st;
  *same = false;
  CHECK(lc_module_state_dict(a, &sa));
  CHECK(lc_module_state_dict(b, &sb));
  if (sa.n != sb.n) goto done;
  for (int64_t i = 0; i < sa.n; i++) {
    const lc_tensor *ta = sa.tensors[i], *tb = sb.tensors[i];
    if (lc_dtype_of(ta) != lc_dtype_of(tb) || lc_numel(ta) != lc_numel(tb)) goto done;
    size_t bytes = (size_t)lc_numel(ta) * lc_dtype_size(lc_dtype_of(ta));
    ba = malloc(bytes + 1);
    bb = malloc(bytes + 1);
    if (!ba || !bb) {
      st = lc_set_error(LC_ENOMEM, "same_state: out of memory");
      goto done;
    }
    CHECK(lc_copy_to_buffer(ta, lc_dtype_of(ta), ba));
    CHECK(lc_copy_to_buffer(tb, lc_dtype_of(tb), bb));
    if (memcmp(ba, bb, bytes) != 0) goto done;
    free(ba);
    free(bb);
    ba = bb = NULL;
  }
  *same = true;
done:
  free(ba);
  free(bb);
  lc_named_tensors_free(&sa);
  lc_named_tensors_free(&sb);
  return st;
}

int main(void) {
  int rc = 1;
  float xs[N_POINTS][2], ys[N_POINTS][1];
  lc_tensor *x = NULL, *y = NULL, *pred = NULL, *bad = NULL;
  lc_module *model = NULL, *fresh = NULL, *other = NULL;
  lc_named_tensors params = {0};
  lc_optimizer *opt = NULL, *fresh_opt = NULL;
  char *text = NULL;
  char path[4096] = "";
  double first = 0, last = 0;
  int64_t n_saved = 0;

  /* The data: a small LCG, so the program owns its inputs (lucid's generator is used for the
   * weights, seeded in build_model). */
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

  TRY(build_model(7, 16, &model));
  TRY(lc_module_to_string(model, &text));
  printf("%s\n", text);
  lc_free(text);
  text = NULL;
  TRY(lc_module_named_parameters(model, true, &params)); /* owned references */
  printf("%lld parameters in %lld tensors\n", (long long)lc_module_num_parameters(model),
         (long long)params.n);

  lc_optim_options opts;
  lc_optim_default_options(LC_OPTIM_SGD, &opts);
  opts.lr = LR; /* SGD has no default learning rate */
  opts.momentum = MOMENTUM;
  TRY(lc_optimizer_new_for_module(LC_OPTIM_SGD, model, &opts, &opt));
  printf("update: lc_optimizer_step (SGD, lr %g, momentum %g)\n", LR, MOMENTUM);

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
    double value;
    TRY(train_step(model, opt, x, y, &value));
    for (int64_t i = 0; i < params.n; i++) {
      if (lc_grad(params.tensors[i]) == NULL) { /* lc_grad: borrowed */
        fprintf(stderr, "c_only: no gradient for %s after backward\n", params.names[i]);
        goto done;
      }
    }
    if (step == 0) first = value;
    last = value;
    if (step % 50 == 0 || step == STEPS - 1) printf("step %3d  loss %.6f\n", step, value);
  }
  /* The fit must have made real progress: a tenth of the initial loss at most. */
  if (!(last < 0.1 * first)) {
    fprintf(stderr, "c_only: loss did not decrease enough: %g -> %g\n", first, last);
    goto done;
  }

  /* ---- checkpoint: save, reload into a fresh model and optimizer, compare bitwise */
  const char *dir = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/c_only-XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(path); /* a unique name; lc_safetensors_save replaces the empty file */
  if (fd < 0) {
    fprintf(stderr, "c_only: cannot create a temporary file %s\n", path);
    path[0] = '\0';
    goto done;
  }
  close(fd);
  TRY(save_checkpoint(path, model, opt, &n_saved));
  printf("checkpoint: %lld tensors saved to %s\n", (long long)n_saved, path);

  float trained[N_POINTS], reloaded[N_POINTS];
  TRY(predict(model, x, trained));
  TRY(build_model(8, 16, &fresh)); /* another seed: other weights */
  TRY(lc_optimizer_new_for_module(LC_OPTIM_SGD, fresh, &opts, &fresh_opt));
  TRY(predict(fresh, x, reloaded));
  if (memcmp(trained, reloaded, sizeof trained) == 0) {
    fprintf(stderr, "c_only: a freshly built model already gives the trained output\n");
    goto done;
  }
  TRY(load_checkpoint(path, fresh, fresh_opt));
  TRY(predict(fresh, x, reloaded));
  if (memcmp(trained, reloaded, sizeof trained) != 0) {
    fprintf(stderr, "c_only: the reloaded model's output differs from the trained model's\n");
    goto done;
  }
  /* The optimizer state came back too: one more step of each pair lands on the same bits (a
   * fresh momentum buffer would start from the gradient alone). */
  for (int64_t i = 0; i < lc_optimizer_num_params(fresh_opt); i++) {
    if (!lc_optimizer_has_state(fresh_opt, i)) {
      fprintf(stderr, "c_only: parameter %lld has no optimizer state after loading\n",
              (long long)i);
      goto done;
    }
  }
  TRY(train_step(model, opt, x, y, NULL));
  TRY(train_step(fresh, fresh_opt, x, y, NULL));
  bool same = false;
  TRY(same_state(model, fresh, &same));
  if (!same) {
    fprintf(stderr, "c_only: after one more step, the reloaded model and optimizer diverge\n");
    goto done;
  }
  printf("reloaded model: bitwise the same output; one more SGD step: bitwise the same "
         "parameters\n");

  /* A checkpoint that does not fit the model is an error naming the parameter. */
  TRY(build_model(9, 8, &other));
  st = load_checkpoint(path, other, fresh_opt);
  if (st != LC_ESHAPE || strstr(lc_last_error(), "fc1.weight") == NULL) {
    fprintf(stderr, "c_only: expected an LC_ESHAPE error naming fc1.weight, got %s: %s\n",
            lc_status_name(st), lc_last_error());
    goto done;
  }
  printf("wrong architecture rejected: %s\n", lc_last_error());

  printf("c_only: OK loss %.6f -> %.6f in %d steps; checkpoint: %lld tensors, reloaded "
         "bitwise\n",
         first, last, STEPS, (long long)n_saved);
  rc = 0;
done:
  if (path[0]) remove(path);
  lc_optimizer_free(fresh_opt); /* NULL-safe, as every release below */
  lc_optimizer_free(opt);
  lc_free(text);
  lc_named_tensors_free(&params);
  lc_module_release(other);
  lc_module_release(fresh);
  lc_module_release(model);
  lc_release(bad);
  lc_release(pred);
  lc_release(y);
  lc_release(x);
  return rc;
}
