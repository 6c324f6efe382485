/*
 * optim.c - the optimizers of include/lucid_optim.h: groups, state, checks, stepping.
 *
 * The update loops themselves live in optim_kernels.c (one fused loop per kind and dtype);
 * this file prepares their operands (a contiguous gradient of the parameter's dtype, the state
 * buffers) and runs them through lc_parallel_for.
 */
#include "optim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- kinds and options */

static const char *const kind_names[LC_OPTIM_KIND_COUNT] = {"SGD", "Adam", "AdamW", "RMSprop",
                                                            "Adagrad"};
/* Buffer names by kind, in slot order (see optim_internal.h). */
static const char *const buf_names[LC_OPTIM_KIND_COUNT][LC_OPTIM_MAX_BUFS] = {
    {"momentum_buffer", NULL, NULL},
    {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    {"square_avg", "momentum_buffer", "grad_avg"},
    {"sum", NULL, NULL},
};

static bool valid_kind(lc_optim_kind k) { return (unsigned)k < LC_OPTIM_KIND_COUNT; }

const char *lc_optim_kind_name(lc_optim_kind kind) {
  return valid_kind(kind) ? kind_names[kind] : NULL;
}

lc_status lc_optim_kind_from_name(const char *name, lc_optim_kind *out) {
  for (int k = 0; name && k < LC_OPTIM_KIND_COUNT; k++)
    if (strcmp(name, kind_names[k]) == 0) {
      *out = (lc_optim_kind)k;
      return LC_OK;
    }
  return lc_set_error(LC_EARG,
                      "lc_optim_kind_from_name: unknown optimizer \"%s\", expected one of SGD, "
                      "Adam, AdamW, RMSprop, Adagrad",
                      name ? name : "(null)");
}

void lc_optim_default_options(lc_optim_kind kind, lc_optim_options *out) {
  memset(out, 0, sizeof *out);
  switch (kind) {
  case LC_OPTIM_SGD: out->lr = NAN; break; /* required, as in torch.optim.SGD */
  case LC_OPTIM_ADAM:
  case LC_OPTIM_ADAMW:
    out->lr = 1e-3;
    out->beta1 = 0.9;
    out->beta2 = 0.999;
    out->eps = 1e-8;
    out->weight_decay = kind == LC_OPTIM_ADAMW ? 1e-2 : 0;
    break;
  case LC_OPTIM_RMSPROP:
    out->lr = 1e-2;
    out->alpha = 0.99;
    out->eps = 1e-8;
    break;
  case LC_OPTIM_ADAGRAD:
    out->lr = 1e-2;
    out->eps = 1e-10;
    break;
  default: break;
  }
}

bool lc_optim_has_step(lc_optim_kind kind) { return valid_kind(kind) && kind != LC_OPTIM_SGD; }

int lc_optim_num_state_buffers(lc_optim_kind kind) {
  if (!valid_kind(kind)) return 0;
  int n = 0;
  while (n < LC_OPTIM_MAX_BUFS && buf_names[kind][n])
    n++;
  return n;
}

const char *lc_optim_state_name(lc_optim_kind kind, int k) {
  return k >= 0 && k < lc_optim_num_state_buffers(kind) ? buf_names[kind][k] : NULL;
}

static int buf_index(lc_optim_kind kind, const char *name) {
  for (int k = 0; name && k < lc_optim_num_state_buffers(kind); k++)
    if (strcmp(buf_names[kind][k], name) == 0) return k;
  return -1;
}

/* A non-negative number (NaN fails too). */
static lc_status check_nonneg(const char *fn, const char *what, double v) {
  if (v >= 0) return LC_OK;
  return lc_set_error(LC_EARG, "%s: invalid %s: expected a number >= 0, got %g", fn, what, v);
}

static lc_status check_options(const char *fn, lc_optim_kind kind, const lc_optim_options *o) {
  if (!valid_kind(kind))
    return lc_set_error(LC_EARG, "%s: invalid optimizer kind %d", fn, (int)kind);
  if (!o) return lc_set_error(LC_EARG, "%s: options must not be NULL", fn);
  lc_status st;
  if ((st = check_nonneg(fn, "lr", o->lr))) return st;
  if ((st = check_nonneg(fn, "weight_decay", o->weight_decay))) return st;
  if (kind != LC_OPTIM_SGD && (st = check_nonneg(fn, "eps", o->eps))) return st;
  switch (kind) {
  case LC_OPTIM_SGD:
    if ((st = check_nonneg(fn, "momentum", o->momentum))) return st;
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
      return lc_set_error(LC_EARG,
                          "%s: nesterov momentum requires a momentum > 0 and zero dampening, got "
                          "momentum %g and dampening %g",
                          fn, o->momentum, o->dampening);
    break;
  case LC_OPTIM_ADAM:
  case LC_OPTIM_ADAMW:
    if (!(o->beta1 >= 0 && o->beta1 < 1))
      return lc_set_error(LC_EARG,
                          "%s: invalid beta1 (betas, first value): expected 0 <= beta1 "
                          "< 1, got %g",
                          fn, o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
      return lc_set_error(LC_EARG,
                          "%s: invalid beta2 (betas, second value): expected 0 <= "
                          "beta2 < 1, got %g",
                          fn, o->beta2);
    break;
  case LC_OPTIM_RMSPROP:
    if ((st = check_nonneg(fn, "momentum", o->momentum))) return st;
    if ((st = check_nonneg(fn, "alpha", o->alpha))) return st;
    break;
  case LC_OPTIM_ADAGRAD:
    if ((st = check_nonneg(fn, "lr_decay", o->lr_decay))) return st;
    if ((st = check_nonneg(fn, "initial_accumulator_value", o->initial_accumulator_value)))
      return st;
    break;
  default: break;
  }
  return LC_OK;
}

lc_status lc_optim_check_options(lc_optim_kind kind, const lc_optim_options *opts) {
  return check_options("lc_optim_check_options", kind, opts);
}

/* ---------------------------------------------------------------- lifetime and groups */

static void clear_slot(lc_optim_param *s) {
  for (int k = 0; k < LC_OPTIM_MAX_BUFS; k++) {
    lc_release(s->buf[k]);
    s->buf[k] = NULL;
  }
  s->has_state = false;
  s->step = 0;
}

void lc_optimizer_free(lc_optimizer *o) {
  if (!o) return;
  for (int64_t i = 0; i < o->n; i++) {
    clear_slot(&o->p[i]);
    lc_release(o->p[i].param);
  }
  free(o->p);
  free(o->groups);
  free(o);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (lc_tensor *const *)a, y = (uintptr_t) * (lc_tensor *const *)b;
  return x < y ? -1 : x > y;
}

/* Checks params[0..n) as a new group of o: tensors fit to optimize, none twice, none already
 * in o. */
static lc_status check_params(const char *fn, const lc_optimizer *o, int64_t n,
                              lc_tensor *const *params) {
  if (n < 0)
    return lc_set_error(LC_EARG, "%s: expected n >= 0 parameters, got %lld", fn, (long long)n);
  if (n > 0 && !params) return lc_set_error(LC_EARG, "%s: params must not be NULL", fn);
  for (int64_t i = 0; i < n; i++) {
    const lc_tensor *t = params[i];
    if (!t) return lc_set_error(LC_EARG, "%s: parameter %lld is NULL", fn, (long long)i);
    if (!lc_dtype_is_float(lc_dtype_of(t)))
      return lc_set_error(LC_EDTYPE,
                          "%s: parameter %lld: expected a float32 or float64 tensor, got %s", fn,
                          (long long)i, lc_dtype_name(lc_dtype_of(t)));
    if (!lc_requires_grad(t))
      return lc_set_error(LC_EARG, "%s: parameter %lld does not require grad", fn, (long long)i);
    if (!lc_is_leaf(t))
      return lc_set_error(LC_EARG,
                          "%s: parameter %lld is not a leaf tensor (can't optimize a non-leaf "
                          "tensor; detach() it and set requires_grad)",
                          fn, (long long)i);
  }
  /* duplicates: sort the new pointers together with the existing ones */
  int64_t total = o->n + n;
  if (total < 2) return LC_OK;
  lc_tensor **all = malloc((size_t)total * sizeof *all);
  if (!all) return lc_error_oom((size_t)total * sizeof *all);
  for (int64_t i = 0; i < o->n; i++)
    all[i] = o->p[i].param;
  for (int64_t i = 0; i < n; i++)
    all[o->n + i] = params[i];
  qsort(all, (size_t)total, sizeof *all, cmp_ptr);
  lc_tensor *dup = NULL;
  for (int64_t i = 1; i < total && !dup; i++)
    if (all[i] == all[i - 1]) dup = all[i];
  free(all);
  if (!dup) return LC_OK;
  int64_t first = -1, second = -1;
  for (int64_t i = 0; i < n; i++)
    if (params[i] == dup) {
      if (first < 0)
        first = i;
      else if (second < 0)
        second = i;
    }
  if (second >= 0)
    return lc_set_error(LC_EARG, "%s: parameters %lld and %lld are the same tensor", fn,
                        (long long)first, (long long)second);
  return lc_set_error(LC_EARG,
                      "%s: parameter %lld already belongs to another parameter group (some "
                      "parameters appear in more than one group)",
                      fn, (long long)first);
}

static lc_status make_buf(const lc_tensor *p, double fill, lc_tensor **out);

static lc_status add_group(const char *fn, lc_optimizer *o, int64_t n, lc_tensor *const *params,
                           const lc_optim_options *opts) {
  lc_status st = check_options(fn, o->kind, opts);
  if (!st) st = check_params(fn, o, n, params);
  if (st) return st;
  if (o->ng == o->gcap) {
    int64_t cap = o->gcap ? 2 * o->gcap : 4;
    lc_optim_group *g = realloc(o->groups, (size_t)cap * sizeof *g);
    if (!g) return lc_error_oom((size_t)cap * sizeof *g);
    o->groups = g;
    o->gcap = cap;
  }
  if (o->n + n > o->cap) {
    int64_t cap = o->cap ? o->cap : 8;
    while (cap < o->n + n)
      cap *= 2;
    lc_optim_param *p = realloc(o->p, (size_t)cap * sizeof *p);
    if (!p) return lc_error_oom((size_t)cap * sizeof *p);
    o->p = p;
    o->cap = cap;
  }
  lc_optim_param *slots = o->p + o->n;
  if (n > 0) memset(slots, 0, (size_t)n * sizeof *slots);
  /* Adagrad's state exists from the start (torch.optim.Adagrad.__init__). */
  if (o->kind == LC_OPTIM_ADAGRAD)
    for (int64_t i = 0; i < n; i++) {
      st = make_buf(params[i], opts->initial_accumulator_value, &slots[i].buf[0]);
      if (st) {
        for (int64_t j = 0; j < i; j++)
          clear_slot(&slots[j]);
        return st;
      }
      slots[i].has_state = true;
    }
  for (int64_t i = 0; i < n; i++) {
    slots[i].param = lc_retain(params[i]);
    slots[i].group = o->ng;
  }
  o->groups[o->ng].first = o->n;
  o->groups[o->ng].count = n;
  o->groups[o->ng].opts = *opts;
  o->ng++;
  o->n += n;
  return LC_OK;
}

lc_status lc_optimizer_new(lc_optim_kind kind, int64_t n, lc_tensor *const *params,
                           const lc_optim_options *opts, lc_optimizer **out) {
  if (!valid_kind(kind))
    return lc_set_error(LC_EARG, "lc_optimizer_new: invalid optimizer kind %d", (int)kind);
  lc_optimizer *o = calloc(1, sizeof *o);
  if (!o) return lc_error_oom(sizeof *o);
  o->kind = kind;
  lc_status st = add_group("lc_optimizer_new", o, n, params, opts);
  if (st) {
    lc_optimizer_free(o);
    return st;
  }
  *out = o;
  return LC_OK;
}

lc_status lc_optimizer_new_for_module(lc_optim_kind kind, const lc_module *m,
                                      const lc_optim_options *opts, lc_optimizer **out) {
  if (!m) return lc_set_error(LC_EARG, "lc_optimizer_new_for_module: module must not be NULL");
  lc_named_tensors l;
  lc_status st = lc_module_named_parameters(m, true, &l);
  if (st) return st;
  st = lc_optimizer_new(kind, l.n, l.tensors, opts, out);
  lc_named_tensors_free(&l);
  return st;
}

lc_status lc_optimizer_add_param_group(lc_optimizer *o, int64_t n, lc_tensor *const *params,
                                       const lc_optim_options *opts) {
  return add_group("lc_optimizer_add_param_group", o, n, params, opts);
}

lc_optim_kind lc_optimizer_kind(const lc_optimizer *o) { return o->kind; }
int64_t lc_optimizer_num_groups(const lc_optimizer *o) { return o->ng; }
int64_t lc_optimizer_num_params(const lc_optimizer *o) { return o->n; }

static lc_status check_group(const char *fn, const lc_optimizer *o, int64_t g) {
  if (g >= 0 && g < o->ng) return LC_OK;
  return lc_set_error(LC_EINDEX, "%s: group %lld out of range, expected 0..%lld", fn, (long long)g,
                      (long long)o->ng - 1);
}

static lc_status check_param_index(const char *fn, const lc_optimizer *o, int64_t i) {
  if (i >= 0 && i < o->n) return LC_OK;
  return lc_set_error(LC_EINDEX, "%s: parameter %lld out of range, expected 0..%lld", fn,
                      (long long)i, (long long)o->n - 1);
}

lc_status lc_optimizer_group_range(const lc_optimizer *o, int64_t g, int64_t *first,
                                   int64_t *count) {
  lc_status st = check_group("lc_optimizer_group_range", o, g);
  if (st) return st;
  *first = o->groups[g].first;
  *count = o->groups[g].count;
  return LC_OK;
}

lc_tensor *lc_optimizer_param(const lc_optimizer *o, int64_t i) {
  return i >= 0 && i < o->n ? o->p[i].param : NULL;
}

lc_status lc_optimizer_get_options(const lc_optimizer *o, int64_t g, lc_optim_options *out) {
  lc_status st = check_group("lc_optimizer_get_options", o, g);
  if (st) return st;
  *out = o->groups[g].opts;
  return LC_OK;
}

lc_status lc_optimizer_set_options(lc_optimizer *o, int64_t g, const lc_optim_options *opts) {
  lc_status st = check_group("lc_optimizer_set_options", o, g);
  if (!st) st = check_options("lc_optimizer_set_options", o->kind, opts);
  if (st) return st;
  o->groups[g].opts = *opts;
  return LC_OK;
}

lc_status lc_optimizer_get_lr(const lc_optimizer *o, int64_t g, double *out) {
  lc_status st = check_group("lc_optimizer_get_lr", o, g);
  if (st) return st;
  *out = o->groups[g].opts.lr;
  return LC_OK;
}

lc_status lc_optimizer_set_lr(lc_optimizer *o, int64_t g, double lr) {
  lc_status st = check_group("lc_optimizer_set_lr", o, g);
  if (!st) st = check_nonneg("lc_optimizer_set_lr", "lr", lr);
  if (st) return st;
  o->groups[g].opts.lr = lr;
  return LC_OK;
}

/* ---------------------------------------------------------------- state */

/* A contiguous buffer shaped and typed like p, filled with `fill`. */
static lc_status make_buf(const lc_tensor *p, double fill, lc_tensor **out) {
  return fill == 0 ? lc_zeros(lc_ndim(p), lc_shape(p), lc_dtype_of(p), out)
                   : lc_full(lc_ndim(p), lc_shape(p), fill, lc_dtype_of(p), out);
}

bool lc_optimizer_has_state(const lc_optimizer *o, int64_t i) {
  return i >= 0 && i < o->n && o->p[i].has_state;
}

lc_status lc_optimizer_get_step(const lc_optimizer *o, int64_t i, int64_t *out) {
  lc_status st = check_param_index("lc_optimizer_get_step", o, i);
  if (st) return st;
  *out = o->p[i].step;
  return LC_OK;
}

lc_status lc_optimizer_set_step(lc_optimizer *o, int64_t i, int64_t step) {
  lc_status st = check_param_index("lc_optimizer_set_step", o, i);
  if (st) return st;
  if (step < 0)
    return lc_set_error(LC_EARG, "lc_optimizer_set_step: expected a step count >= 0, got %lld",
                        (long long)step);
  o->p[i].step = step;
  o->p[i].has_state = true;
  return LC_OK;
}

static lc_status state_name(const char *fn, const lc_optimizer *o, const char *name, int *k) {
  *k = buf_index(o->kind, name);
  if (*k >= 0) return LC_OK;
  char names[160] = "";
  for (int j = 0; j < lc_optim_num_state_buffers(o->kind); j++) {
    if (j) strcat(names, ", ");
    strcat(names, buf_names[o->kind][j]);
  }
  return lc_set_error(LC_EARG, "%s: %s has no state buffer \"%s\", expected one of: %s", fn,
                      kind_names[o->kind], name ? name : "(null)", names);
}

lc_status lc_optimizer_get_state(const lc_optimizer *o, int64_t i, const char *name,
                                 lc_tensor **out) {
  int k;
  lc_status st = check_param_index("lc_optimizer_get_state", o, i);
  if (!st) st = state_name("lc_optimizer_get_state", o, name, &k);
  if (st) return st;
  *out = lc_retain(o->p[i].buf[k]);
  return LC_OK;
}

lc_status lc_optimizer_set_state(lc_optimizer *o, int64_t i, const char *name,
                                 const lc_tensor *value) {
  const char *fn = "lc_optimizer_set_state";
  int k;
  lc_status st = check_param_index(fn, o, i);
  if (!st) st = state_name(fn, o, name, &k);
  if (st) return st;
  lc_optim_param *s = &o->p[i];
  if (!value) {
    lc_release(s->buf[k]);
    s->buf[k] = NULL;
    return LC_OK;
  }
  const lc_tensor *p = s->param;
  bool same = lc_ndim(value) == lc_ndim(p);
  for (int d = 0; same && d < lc_ndim(p); d++)
    same = lc_shape(value)[d] == lc_shape(p)[d];
  if (!same) {
    char a[256], b[256];
    return lc_set_error(LC_ESHAPE, "%s: state \"%s\" of parameter %lld: expected shape %s, got %s",
                        fn, name, (long long)i, lc_shape_str(lc_ndim(p), lc_shape(p), a, sizeof a),
                        lc_shape_str(lc_ndim(value), lc_shape(value), b, sizeof b));
  }
  lc_tensor *buf = s->buf[k];
  if (!buf) {
    st = lc_empty(lc_ndim(p), lc_shape(p), lc_dtype_of(p), &buf);
    if (st) return st;
  }
  st = lc_k_copy(buf, value); /* raw copy: casts, no autograd */
  if (st) {
    if (buf != s->buf[k]) lc_release(buf);
    return st;
  }
  lc_bump_version(buf);
  s->buf[k] = buf;
  s->has_state = true;
  return LC_OK;
}

lc_status lc_optimizer_clear_state(lc_optimizer *o, int64_t i) {
  lc_status st = check_param_index("lc_optimizer_clear_state", o, i);
  if (st) return st;
  clear_slot(&o->p[i]);
  return LC_OK;
}

/* ---------------------------------------------------------------- stepping */

/* Makes sure buffer k of s exists (filled with `fill`); *fresh tells whether it was made. */
static lc_status need_buf(lc_optim_param *s, int k, double fill, bool *fresh) {
  if (fresh) *fresh = false;
  if (s->buf[k]) return LC_OK;
  lc_status st = make_buf(s->param, fill, &s->buf[k]);
  if (!st && fresh) *fresh = true;
  return st;
}

/* Runs one kind's update on parameter s (which has a gradient). */
static lc_status step_param(lc_optimizer *o, lc_optim_param *s) {
  const lc_optim_options *opt = &o->groups[s->group].opts;
  lc_tensor *p = s->param, *grad = lc_grad(p);
  lc_optim_kctx c;
  memset(&c, 0, sizeof c);
  c.kind = o->kind;
  c.opts = opt;
  lc_status st = LC_OK;

  /* state: create what this step needs (the first step creates the kind's state) */
  bool sgd_fresh = false;
  switch (o->kind) {
  case LC_OPTIM_SGD:
    /* the buffer starts as a copy of the first step's direction: the kernel writes it whole */
    if (opt->momentum != 0 && !s->buf[0]) {
      st = lc_empty(lc_ndim(p), lc_shape(p), lc_dtype_of(p), &s->buf[0]);
      sgd_fresh = true;
    }
    break;
  case LC_OPTIM_ADAM:
  case LC_OPTIM_ADAMW:
    st = need_buf(s, 0, 0, NULL);
    if (!st) st = need_buf(s, 1, 0, NULL);
    if (!st && opt->amsgrad) st = need_buf(s, 2, 0, NULL);
    break;
  case LC_OPTIM_RMSPROP:
    st = need_buf(s, 0, 0, NULL);
    if (!st && opt->momentum > 0) st = need_buf(s, 1, 0, NULL);
    if (!st && opt->centered) st = need_buf(s, 2, 0, NULL);
    break;
  case LC_OPTIM_ADAGRAD: st = need_buf(s, 0, opt->initial_accumulator_value, NULL); break;
  default: break;
  }
  if (st) return st;
  s->has_state = true;
  c.init = sgd_fresh;

  /* operands: the gradient contiguous and of p's dtype; p itself when contiguous, else a
   * contiguous copy written back afterwards. */
  lc_tensor *g = NULL, *work = NULL;
  st = lc_contiguous(grad, &g);
  if (!st && lc_dtype_of(g) != lc_dtype_of(p)) {
    lc_tensor *cast = NULL;
    st = lc_to_dtype(g, lc_dtype_of(p), &cast);
    lc_release(g);
    g = cast;
  }
  if (!st) {
    if (lc_is_contiguous(p))
      work = lc_retain(p);
    else
      st = lc_clone(p, &work);
  }
  if (st) {
    lc_release(g);
    lc_release(work);
    return st;
  }

  /* step counts and the scalars PyTorch computes in Python (double precision) */
  if (lc_optim_has_step(o->kind)) s->step++;
  double step = (double)s->step;
  if (o->kind == LC_OPTIM_ADAM || o->kind == LC_OPTIM_ADAMW) {
    double bc1 = 1 - pow(opt->beta1, step), bc2 = 1 - pow(opt->beta2, step);
    c.step_size = opt->lr / bc1;
    c.bc2_sqrt = sqrt(bc2);
  } else if (o->kind == LC_OPTIM_ADAGRAD) {
    c.clr = opt->lr / (1 + (step - 1) * opt->lr_decay);
  }
  c.p = lc_data(work);
  c.g = lc_data(g);
  for (int k = 0; k < LC_OPTIM_MAX_BUFS; k++)
    c.b[k] = s->buf[k] ? lc_data(s->buf[k]) : NULL;
  c.dtype = lc_dtype_of(p);
  lc_optim_run(&c, lc_numel(p));

  if (work != p) st = lc_k_copy(p, work);
  lc_release(work);
  lc_release(g);
  lc_bump_version(p);
  for (int k = 0; k < LC_OPTIM_MAX_BUFS; k++)
    if (s->buf[k]) lc_bump_version(s->buf[k]);
  return st;
}

lc_status lc_optimizer_step(lc_optimizer *o) {
  if (!o) return lc_set_error(LC_EARG, "lc_optimizer_step: optimizer must not be NULL");
  /* grad mode off: the helpers used for odd layouts (contiguous, cast, clone) record nothing */
  bool prev = lc_set_grad_enabled(false);
  lc_status st = LC_OK;
  for (int64_t i = 0; i < o->n && !st; i++)
    if (lc_grad(o->p[i].param)) st = step_param(o, &o->p[i]);
  lc_set_grad_enabled(prev);
  return st;
}

lc_status lc_optimizer_zero_grad(lc_optimizer *o, bool set_to_none) {
  if (!o) return lc_set_error(LC_EARG, "lc_optimizer_zero_grad: optimizer must not be NULL");
  lc_status st = LC_OK;
  bool prev = lc_set_grad_enabled(false);
  for (int64_t i = 0; i < o->n && !st; i++) {
    lc_tensor *g = lc_grad(o->p[i].param);
    if (!g) continue;
    st = set_to_none ? lc_set_grad(o->p[i].param, NULL) : lc_zero_(g);
  }
  lc_set_grad_enabled(prev);
  return st;
}
