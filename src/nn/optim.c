/*
 * optim.c - the optimizers of include/lucid_optim.h: groups, state, checks, stepping.
 *
 * The update loops themselves live in optim_kernels.c (one fused loop per kind and dtype);
 * this file prepares their operands (a contiguous gradient of the parameter's dtype, the state
 * buffers) and runs them through lc_parallel_for.
 */
#include "optim_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- kind descriptors */

/* One hyper-parameter a line (clang-format would break the initializer macros apart). */
/* clang-format off */
#define OFF(f) offsetof(lc_optim_options, f)
/* name, field, default: positional numbers (>= 0, or any value), flags, keyword-only flags,
 * a pair of values in [0, 1) */
#define NUM(n, f, d) {n, LC_OPTIM_NUMBER, false, false, {d, 0}, {OFF(f), 0}, LC_OPTIM_NONNEG, {0}}
#define ANY_NUM(n, f, d) {n, LC_OPTIM_NUMBER, false, false, {d, 0}, {OFF(f), 0}, LC_OPTIM_ANY, {0}}
#define FLAG(n, f) {n, LC_OPTIM_BOOL, false, false, {0, 0}, {OFF(f), 0}, LC_OPTIM_ANY, {0}}
#define KW_FLAG(n, f) {n, LC_OPTIM_BOOL, true, false, {0, 0}, {OFF(f), 0}, LC_OPTIM_ANY, {0}}
#define UNIT_PAIR(n, f1, f2, d1, d2) \
  {n, LC_OPTIM_PAIR, false, false, {d1, d2}, {OFF(f1), OFF(f2)}, LC_OPTIM_UNIT, {#f1, #f2}}
#define COUNT(a) ((int)(sizeof(a) / sizeof(a)[0]))

/* PyTorch 1.13's constructors, in their order (torch/optim/<kind>.py), with the rules its
 * constructors check (SGD's dampening has none). */
static const lc_optim_hparam sgd_hp[] = {
    /* torch.optim's `required` */
    {"lr", LC_OPTIM_NUMBER, false, true, {NAN, 0}, {OFF(lr), 0}, LC_OPTIM_NONNEG, {0}},
    NUM("momentum", momentum, 0),
    ANY_NUM("dampening", dampening, 0),
    NUM("weight_decay", weight_decay, 0),
    FLAG("nesterov", nesterov),
    KW_FLAG("maximize", maximize),
};
static const lc_optim_hparam adam_hp[] = {
    NUM("lr", lr, 1e-3),
    UNIT_PAIR("betas", beta1, beta2, 0.9, 0.999),
    NUM("eps", eps, 1e-8),
    NUM("weight_decay", weight_decay, 0),
    FLAG("amsgrad", amsgrad),
    KW_FLAG("maximize", maximize),
};
static const lc_optim_hparam adamw_hp[] = {
    NUM("lr", lr, 1e-3),
    UNIT_PAIR("betas", beta1, beta2, 0.9, 0.999),
    NUM("eps", eps, 1e-8),
    NUM("weight_decay", weight_decay, 1e-2),
    FLAG("amsgrad", amsgrad),
    KW_FLAG("maximize", maximize),
};
static const lc_optim_hparam rmsprop_hp[] = {
    NUM("lr", lr, 1e-2),
    NUM("alpha", alpha, 0.99),
    NUM("eps", eps, 1e-8),
    NUM("weight_decay", weight_decay, 0),
    NUM("momentum", momentum, 0),
    FLAG("centered", centered),
    KW_FLAG("maximize", maximize),
};
static const lc_optim_hparam adagrad_hp[] = {
    NUM("lr", lr, 1e-2),
    NUM("lr_decay", lr_decay, 0),
    NUM("weight_decay", weight_decay, 0),
    NUM("initial_accumulator_value", initial_accumulator_value, 0),
    NUM("eps", eps, 1e-10),
    KW_FLAG("maximize", maximize),
};
/* clang-format on */

/* State buffers by slot (see optim_internal.h). */
static const char *const sgd_state[] = {"momentum_buffer"};
static const char *const adam_state[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
static const char *const rmsprop_state[] = {"square_avg", "momentum_buffer", "grad_avg"};
static const char *const adagrad_state[] = {"sum"};

static const lc_optim_kind_desc kinds[LC_OPTIM_KIND_COUNT] = {
    [LC_OPTIM_SGD] = {"SGD", COUNT(sgd_hp), sgd_hp, false, COUNT(sgd_state), sgd_state},
    [LC_OPTIM_ADAM] = {"Adam", COUNT(adam_hp), adam_hp, true, COUNT(adam_state), adam_state},
    [LC_OPTIM_ADAMW] = {"AdamW", COUNT(adamw_hp), adamw_hp, true, COUNT(adam_state), adam_state},
    [LC_OPTIM_RMSPROP] = {"RMSprop", COUNT(rmsprop_hp), rmsprop_hp, true, COUNT(rmsprop_state),
                          rmsprop_state},
    [LC_OPTIM_ADAGRAD] = {"Adagrad", COUNT(adagrad_hp), adagrad_hp, true, COUNT(adagrad_state),
                          adagrad_state},
};
_Static_assert(COUNT(adam_state) <= LC_OPTIM_MAX_BUFS && COUNT(rmsprop_state) <= LC_OPTIM_MAX_BUFS,
               "LC_OPTIM_MAX_BUFS is too small");

static bool valid_kind(lc_optim_kind k) { return (unsigned)k < LC_OPTIM_KIND_COUNT; }

const lc_optim_kind_desc *lc_optim_kind_info(lc_optim_kind kind) {
  return valid_kind(kind) ? &kinds[kind] : NULL;
}

static lc_status hparam_of(const char *fn, lc_optim_kind kind, const void *o, int k,
                           const lc_optim_hparam **out) {
  if (!valid_kind(kind))
    return lc_set_error(LC_EARG, "%s: invalid optimizer kind %d", fn, (int)kind);
  if (!o) return lc_set_error(LC_EARG, "%s: options must not be NULL", fn);
  if (k < 0 || k >= kinds[kind].num_hparams)
    return lc_set_error(LC_EINDEX, "%s: hyper-parameter %d out of range for %s, expected 0..%d", fn,
                        k, kinds[kind].name, kinds[kind].num_hparams - 1);
  *out = &kinds[kind].hparams[k];
  return LC_OK;
}

lc_status lc_optim_get_hparam(lc_optim_kind kind, const lc_optim_options *o, int k, double v[2]) {
  const lc_optim_hparam *h = NULL;
  lc_status st = hparam_of("lc_optim_get_hparam", kind, o, k, &h);
  if (st) return st;
  const char *base = (const char *)o;
  v[1] = 0;
  switch (h->type) {
  case LC_OPTIM_BOOL: v[0] = *(const bool *)(base + h->offset[0]) ? 1 : 0; break;
  case LC_OPTIM_PAIR: v[1] = *(const double *)(base + h->offset[1]); /* fall through */
  default: v[0] = *(const double *)(base + h->offset[0]); break;
  }
  return LC_OK;
}

lc_status lc_optim_set_hparam(lc_optim_kind kind, lc_optim_options *o, int k, const double v[2]) {
  const lc_optim_hparam *h = NULL;
  lc_status st = hparam_of("lc_optim_set_hparam", kind, o, k, &h);
  if (st) return st;
  char *base = (char *)o;
  switch (h->type) {
  case LC_OPTIM_BOOL: *(bool *)(base + h->offset[0]) = v[0] != 0; break;
  case LC_OPTIM_PAIR: *(double *)(base + h->offset[1]) = v[1]; /* fall through */
  default: *(double *)(base + h->offset[0]) = v[0]; break;
  }
  return LC_OK;
}

const char *lc_optim_kind_name(lc_optim_kind kind) {
  return valid_kind(kind) ? kinds[kind].name : NULL;
}

lc_status lc_optim_kind_from_name(const char *name, lc_optim_kind *out) {
  char names[128] = "";
  for (int k = 0; k < LC_OPTIM_KIND_COUNT; k++) {
    if (name && strcmp(name, kinds[k].name) == 0) {
      *out = (lc_optim_kind)k;
      return LC_OK;
    }
    if (k) strcat(names, ", ");
    strcat(names, kinds[k].name);
  }
  return lc_set_error(LC_EARG,
                      "lc_optim_kind_from_name: unknown optimizer \"%s\", expected one of %s",
                      name ? name : "(null)", names);
}

void lc_optim_default_options(lc_optim_kind kind, lc_optim_options *out) {
  memset(out, 0, sizeof *out);
  if (!valid_kind(kind)) return;
  for (int k = 0; k < kinds[kind].num_hparams; k++)
    lc_optim_set_hparam(kind, out, k, kinds[kind].hparams[k].def);
}

bool lc_optim_has_step(lc_optim_kind kind) { return valid_kind(kind) && kinds[kind].has_step; }

int lc_optim_num_state_buffers(lc_optim_kind kind) {
  return valid_kind(kind) ? kinds[kind].num_state : 0;
}

const char *lc_optim_state_name(lc_optim_kind kind, int k) {
  return k >= 0 && k < lc_optim_num_state_buffers(kind) ? kinds[kind].state_names[k] : NULL;
}

static int buf_index(lc_optim_kind kind, const char *name) {
  for (int k = 0; name && k < lc_optim_num_state_buffers(kind); k++)
    if (strcmp(kinds[kind].state_names[k], name) == 0) return k;
  return -1;
}

/* A non-negative number (NaN fails too). */
static lc_status check_nonneg(const char *fn, const char *what, double v) {
  if (v >= 0) return LC_OK;
  return lc_set_error(LC_EARG, "%s: invalid %s: expected a number >= 0, got %g", fn, what, v);
}

const char *lc_optim_rule_text(lc_optim_rule rule) {
  switch (rule) {
  case LC_OPTIM_NONNEG: return ">= 0";
  case LC_OPTIM_UNIT: return "in [0, 1)";
  default: return NULL;
  }
}

/* Hyper-parameter h's rule on its value(s) v, with the message users see. */
static lc_status check_rule(const char *fn, const lc_optim_hparam *h, const double v[2]) {
  int n = h->type == LC_OPTIM_PAIR ? 2 : 1;
  for (int j = 0; j < n && h->rule != LC_OPTIM_ANY; j++) {
    if (v[j] >= 0 && (h->rule == LC_OPTIM_NONNEG || v[j] < 1)) continue;
    const char *what = n == 2 ? h->part[j] : h->name;
    char pos[64] = ""; /* which value of a pair */
    if (n == 2) snprintf(pos, sizeof pos, " (%s, %s value)", h->name, j ? "second" : "first");
    if (h->rule == LC_OPTIM_NONNEG)
      return lc_set_error(LC_EARG, "%s: invalid %s%s: expected a number >= 0, got %g", fn, what,
                          pos, v[j]);
    return lc_set_error(LC_EARG, "%s: invalid %s%s: expected 0 <= %s < 1, got %g", fn, what, pos,
                        what, v[j]);
  }
  return LC_OK;
}

/* The descriptor's rules in its order, then the one rule tying two options together. */
static lc_status check_options(const char *fn, lc_optim_kind kind, const lc_optim_options *o) {
  if (!valid_kind(kind))
    return lc_set_error(LC_EARG, "%s: invalid optimizer kind %d", fn, (int)kind);
  if (!o) return lc_set_error(LC_EARG, "%s: options must not be NULL", fn);
  const lc_optim_kind_desc *d = &kinds[kind];
  for (int k = 0; k < d->num_hparams; k++) {
    double v[2];
    lc_optim_get_hparam(kind, o, k, v);
    lc_status st = check_rule(fn, &d->hparams[k], v);
    if (st) return st;
  }
  if (kind == LC_OPTIM_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0))
    return lc_set_error(LC_EARG,
                        "%s: nesterov momentum requires a momentum > 0 and zero dampening, got "
                        "momentum %g and dampening %g",
                        fn, o->momentum, o->dampening);
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

lc_status lc_optim_check_param(const lc_tensor *t, const char *what, int64_t index) {
  char name[192];
  if (!what) what = "params";
  if (index >= 0)
    snprintf(name, sizeof name, "%s[" LC_POS_I "]", what, (long long)index);
  else
    snprintf(name, sizeof name, "%s", what);
  if (!t) return lc_set_error(LC_EARG, "%s is NULL", name);
  if (!lc_dtype_is_float(lc_dtype_of(t)))
    return lc_set_error(LC_EDTYPE, "%s: expected a float32 or float64 tensor, got %s", name,
                        lc_dtype_name(lc_dtype_of(t)));
  if (!lc_requires_grad(t))
    return lc_set_error(
        LC_EARG, "%s does not require grad (set requires_grad = true, or leave it out)", name);
  if (!lc_is_leaf(t))
    return lc_set_error(LC_EARG,
                        "%s is not a leaf tensor: can't optimize a non-leaf tensor (detach() "
                        "it and set requires_grad)",
                        name);
  return LC_OK;
}

/* A tensor and where it is: pos >= 0 a position in the new list, pos < 0 the existing flat
 * parameter pos + n_existing. */
typedef struct dup_entry {
  const lc_tensor *t;
  int64_t pos;
} dup_entry;

static int cmp_entry(const void *a, const void *b) {
  const dup_entry *x = a, *y = b;
  uintptr_t p = (uintptr_t)x->t, q = (uintptr_t)y->t;
  if (p != q) return p < q ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

lc_status lc_optimizer_find_duplicate(const lc_optimizer *o, int64_t n, lc_tensor *const *params,
                                      int64_t *index, int64_t *earlier, int64_t *group) {
  *index = *earlier = *group = -1;
  int64_t have = o ? o->n : 0, total = have + (n > 0 ? n : 0);
  if (total < 2 || n <= 0 || !params) return LC_OK;
  dup_entry *all = malloc((size_t)total * sizeof *all);
  if (!all) return lc_error_oom((size_t)total * sizeof *all);
  for (int64_t i = 0; i < have; i++)
    all[i] = (dup_entry){o->p[i].param, i - have};
  for (int64_t i = 0; i < n; i++)
    all[have + i] = (dup_entry){params[i], i};
  /* sorted by tensor, then position: in a run of one tensor the first entry is the original
   * (an existing parameter sorts first), the second the earliest repetition */
  qsort(all, (size_t)total, sizeof *all, cmp_entry);
  for (int64_t i = 1; i < total; i++)
    if (all[i].t == all[i - 1].t && all[i].pos >= 0 && (i < 2 || all[i - 2].t != all[i].t) &&
        (*index < 0 || all[i].pos < *index)) {
      int64_t first = all[i - 1].pos;
      *index = all[i].pos;
      *earlier = first >= 0 ? first : -1;
      *group = first >= 0 ? -1 : o->p[first + have].group;
    }
  free(all);
  return LC_OK;
}

/* lc_optimizer_check_duplicates' message, after "<fn>: " when fn is set. */
static lc_status duplicates(const char *fn, const lc_optimizer *o, int64_t n,
                            lc_tensor *const *params, const char *what) {
  int64_t dup, earlier, group;
  lc_status st = lc_optimizer_find_duplicate(o, n, params, &dup, &earlier, &group);
  if (st || dup < 0) return st;
  const char *sep = fn ? ": " : "";
  if (!fn) fn = "";
  if (!what) what = "params";
  if (earlier >= 0)
    return lc_set_error(LC_EARG, "%s%s%s[" LC_POS_I "] and %s[" LC_POS_I "] are the same tensor",
                        fn, sep, what, (long long)earlier, what, (long long)dup);
  return lc_set_error(LC_EARG,
                      "%s%s%s[" LC_POS_I "] is already in param_groups[" LC_POS_I
                      "] (some parameters appear in more than one group)",
                      fn, sep, what, (long long)dup, (long long)group);
}

lc_status lc_optimizer_check_duplicates(const lc_optimizer *o, int64_t n, lc_tensor *const *params,
                                        const char *what) {
  return duplicates(NULL, o, n, params, what);
}

/* Checks params[0..n) as a new group of o: tensors fit to optimize, none twice, none already
 * in o. Messages name them "<fn>: params[i]". */
static lc_status check_params(const char *fn, const lc_optimizer *o, int64_t n,
                              lc_tensor *const *params) {
  if (n < 0)
    return lc_set_error(LC_EARG, "%s: expected n >= 0 parameters, got %lld", fn, (long long)n);
  if (n > 0 && !params) return lc_set_error(LC_EARG, "%s: params must not be NULL", fn);
  char what[96];
  snprintf(what, sizeof what, "%s: params", fn);
  for (int64_t i = 0; i < n; i++) {
    lc_status st = lc_optim_check_param(params[i], what, i);
    if (st) return st;
  }
  return duplicates(fn, o, n, params, "params");
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

/* The step-count rule (>= 0), shared by check_step and set_step. */
static lc_status check_step_value(const char *fn, const char *what, int64_t i, int64_t step) {
  if (step >= 0) return LC_OK;
  if (what) return lc_set_error(LC_EARG, "%s.step must be >= 0, got %lld", what, (long long)step);
  return lc_set_error(LC_EARG, "%s: parameter " LC_POS_I ": expected a step count >= 0, got %lld",
                      fn, (long long)i, (long long)step);
}

lc_status lc_optimizer_check_step(const lc_optimizer *o, int64_t i, int64_t step,
                                  const char *what) {
  const char *fn = "lc_optimizer_check_step";
  lc_status st = check_param_index(fn, o, i);
  if (st) return st;
  if (!lc_optim_has_step(o->kind)) {
    if (what)
      return lc_set_error(LC_EARG, "%s.step: %s keeps no step count", what, kinds[o->kind].name);
    return lc_set_error(LC_EARG, "%s: parameter " LC_POS_I ": %s keeps no step count", fn,
                        (long long)i, kinds[o->kind].name);
  }
  return check_step_value(fn, what, i, step);
}

lc_status lc_optimizer_set_step(lc_optimizer *o, int64_t i, int64_t step) {
  const char *fn = "lc_optimizer_set_step";
  lc_status st = check_param_index(fn, o, i);
  if (!st) st = check_step_value(fn, NULL, i, step);
  if (st) return st;
  o->p[i].step = step;
  o->p[i].has_state = true;
  return LC_OK;
}

/* check_state under the name of the calling function fn; *k receives the buffer's slot. */
static lc_status check_state(const char *fn, const lc_optimizer *o, int64_t i, const char *name,
                             const lc_tensor *value, const char *what, int *k) {
  lc_status st = check_param_index(fn, o, i);
  if (st) return st;
  *k = buf_index(o->kind, name);
  if (*k < 0) {
    const lc_optim_kind_desc *d = &kinds[o->kind];
    char names[160] = "";
    for (int j = 0; j < d->num_state; j++) {
      if (j) strcat(names, ", ");
      strcat(names, d->state_names[j]);
    }
    if (what)
      return lc_set_error(LC_EARG, "%s: unknown state entry '%s' for %s (expected one of: %s)",
                          what, name ? name : "(null)", d->name, names);
    return lc_set_error(LC_EARG,
                        "%s: parameter " LC_POS_I ": unknown state entry '%s' for %s (expected "
                        "one of: %s)",
                        fn, (long long)i, name ? name : "(null)", d->name, names);
  }
  if (!value) return LC_OK;
  const lc_tensor *p = o->p[i].param;
  bool same = lc_ndim(value) == lc_ndim(p);
  for (int d = 0; same && d < lc_ndim(p); d++)
    same = lc_shape(value)[d] == lc_shape(p)[d];
  if (same) return LC_OK;
  char a[256], b[256];
  lc_shape_str(lc_ndim(value), lc_shape(value), a, sizeof a);
  lc_shape_str(lc_ndim(p), lc_shape(p), b, sizeof b);
  if (what)
    return lc_set_error(LC_ESHAPE, "%s.%s has shape %s, but the parameter has shape %s", what, name,
                        a, b);
  return lc_set_error(LC_ESHAPE,
                      "%s: parameter " LC_POS_I
                      ": state '%s' has shape %s, but the parameter has shape %s",
                      fn, (long long)i, name, a, b);
}

lc_status lc_optimizer_check_state(const lc_optimizer *o, int64_t i, const char *name,
                                   const lc_tensor *value, const char *what) {
  int k;
  return check_state("lc_optimizer_check_state", o, i, name, value, what, &k);
}

lc_status lc_optimizer_get_state(const lc_optimizer *o, int64_t i, const char *name,
                                 lc_tensor **out) {
  int k;
  lc_status st = check_state("lc_optimizer_get_state", o, i, name, NULL, NULL, &k);
  if (st) return st;
  *out = lc_retain(o->p[i].buf[k]);
  return LC_OK;
}

lc_status lc_optimizer_set_state(lc_optimizer *o, int64_t i, const char *name,
                                 const lc_tensor *value) {
  int k;
  lc_status st = check_state("lc_optimizer_set_state", o, i, name, value, NULL, &k);
  if (st) return st;
  lc_optim_param *s = &o->p[i];
  if (!value) {
    lc_release(s->buf[k]);
    s->buf[k] = NULL;
    return LC_OK;
  }
  const lc_tensor *p = s->param;
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
