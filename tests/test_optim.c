/* test_optim.c - the optimizers of include/lucid_optim.h: updates against a plain reference
 * implementation of PyTorch's formulas, groups, options, state (checkpoint round trip), and
 * error paths. (PyTorch's own numbers are checked by spec/optim_spec.lua.) */
#include "lucid_optim.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

/* A leaf requiring grad with values v[i] = f(i) of dtype dt. */
static lc_tensor *param_of(int64_t n, lc_dtype dt, double scale) {
  lc_tensor *t = NULL;
  if (lc_arange(0, (double)n, 1, dt, &t)) return NULL;
  lc_tensor *u = NULL;
  /* sin gives distinct values of both signs */
  if (lc_unary(LC_SIN, t, &u)) {
    lc_release(t);
    return NULL;
  }
  lc_release(t);
  if (lc_binary_scalar_(LC_MUL, u, scale) || lc_set_requires_grad(u, true)) {
    lc_release(u);
    return NULL;
  }
  return u;
}

/* Sets p.grad to cos(k * i + s) (a new tensor each call). */
static lc_status set_grad_values(lc_tensor *p, double s) {
  int64_t n = lc_numel(p);
  double *v = malloc((size_t)n * sizeof *v);
  if (!v) return LC_ENOMEM;
  for (int64_t i = 0; i < n; i++)
    v[i] = cos(0.7 * (double)i + s);
  lc_tensor *g64 = NULL, *g = NULL;
  lc_status st = lc_from_data(lc_ndim(p), lc_shape(p), LC_FLOAT64, v, &g64);
  free(v);
  if (!st) st = lc_to_dtype(g64, lc_dtype_of(p), &g);
  if (!st) st = lc_set_grad(p, g);
  lc_release(g64);
  lc_release(g);
  return st;
}

/* The reference: PyTorch 1.13's single-tensor formulas on one element, in double. */
typedef struct ref_state {
  double b0, b1, b2; /* buffers in slot order */
  bool has_b0;
  int64_t step;
} ref_state;

static double ref_update(lc_optim_kind kind, const lc_optim_options *o, ref_state *s, double p,
                         double g) {
  double d = o->maximize ? -g : g;
  switch (kind) {
  case LC_OPTIM_SGD:
    if (o->weight_decay != 0) d += o->weight_decay * p;
    if (o->momentum != 0) {
      s->b0 = s->has_b0 ? s->b0 * o->momentum + (1 - o->dampening) * d : d;
      s->has_b0 = true;
      d = o->nesterov ? d + o->momentum * s->b0 : s->b0;
    }
    return p - o->lr * d;
  case LC_OPTIM_ADAM:
  case LC_OPTIM_ADAMW: {
    s->step++;
    if (kind == LC_OPTIM_ADAMW)
      p *= 1 - o->lr * o->weight_decay;
    else if (o->weight_decay != 0)
      d += o->weight_decay * p;
    s->b0 = s->b0 * o->beta1 + (1 - o->beta1) * d;
    s->b1 = s->b1 * o->beta2 + (1 - o->beta2) * d * d;
    double bc1 = 1 - pow(o->beta1, (double)s->step), bc2 = 1 - pow(o->beta2, (double)s->step);
    double v = s->b1;
    if (o->amsgrad) {
      s->b2 = fmax(s->b2, s->b1);
      v = s->b2;
    }
    return p - (o->lr / bc1) * s->b0 / (sqrt(v) / sqrt(bc2) + o->eps);
  }
  case LC_OPTIM_RMSPROP: {
    s->step++;
    if (o->weight_decay != 0) d += o->weight_decay * p;
    s->b0 = s->b0 * o->alpha + (1 - o->alpha) * d * d;
    double avg;
    if (o->centered) {
      s->b2 = s->b2 * o->alpha + (1 - o->alpha) * d;
      avg = sqrt(s->b0 - s->b2 * s->b2) + o->eps;
    } else {
      avg = sqrt(s->b0) + o->eps;
    }
    if (o->momentum > 0) {
      s->b1 = s->b1 * o->momentum + d / avg;
      return p - o->lr * s->b1;
    }
    return p - o->lr * d / avg;
  }
  case LC_OPTIM_ADAGRAD: {
    s->step++;
    if (o->weight_decay != 0) d += o->weight_decay * p;
    double clr = o->lr / (1 + (double)(s->step - 1) * o->lr_decay);
    s->b0 += d * d;
    return p - clr * d / (sqrt(s->b0) + o->eps);
  }
  default: return NAN;
  }
}

/* Steps an optimizer of `kind` over one parameter of n elements for `steps` steps and checks
 * every element against the reference (relative tolerance tol). */
static void run_against_reference(int *failures_, lc_optim_kind kind, const lc_optim_options *o,
                                  int64_t n, lc_dtype dt, int steps, double tol) {
  lc_tensor *p = param_of(n, dt, 0.5);
  CHECK(p != NULL);
  if (!p) return;
  double *ref = test_values(p);
  ref_state *rs = calloc((size_t)n, sizeof *rs);
  for (int64_t i = 0; i < n && kind == LC_OPTIM_ADAGRAD; i++)
    rs[i].b0 = o->initial_accumulator_value;
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(kind, 1, &p, o, &opt));
  double worst = 0;
  for (int s = 0; opt && ref && rs && s < steps; s++) {
    CHECK_OK(set_grad_values(p, 0.3 * s));
    double *g = test_values(lc_grad(p));
    CHECK_OK(lc_optimizer_step(opt));
    double *got = test_values(p);
    for (int64_t i = 0; g && got && i < n; i++) {
      ref[i] = ref_update(kind, o, &rs[i], ref[i], g[i]);
      double e = fabs(got[i] - ref[i]) / (1 + fabs(ref[i]));
      if (e > worst) worst = e;
    }
    free(g);
    free(got);
  }
  if (worst > tol)
    printf("  %s over %lld %s elements: relative error %g\n", lc_optim_kind_name(kind),
           (long long)n, lc_dtype_name(dt), worst);
  CHECK(worst <= tol);
  free(ref);
  free(rs);
  lc_optimizer_free(opt);
  lc_release(p);
}

static lc_optim_options opts_of(lc_optim_kind kind, double lr) {
  lc_optim_options o;
  lc_optim_default_options(kind, &o);
  o.lr = lr;
  return o;
}

/* ---------------------------------------------------------------- kinds and options */

TEST(optim_kinds_and_defaults) {
  lc_optim_kind k;
  for (int i = 0; i < LC_OPTIM_KIND_COUNT; i++) {
    CHECK_OK(lc_optim_kind_from_name(lc_optim_kind_name((lc_optim_kind)i), &k));
    CHECK(k == (lc_optim_kind)i);
  }
  CHECK(lc_optim_kind_name(LC_OPTIM_KIND_COUNT) == NULL);
  CHECK_STATUS(lc_optim_kind_from_name("Adamax", &k), LC_EARG);
  CHECK(strstr(lc_last_error(), "Adamax") != NULL);
  CHECK_STATUS(lc_optim_kind_from_name(NULL, &k), LC_EARG);

  lc_optim_options o;
  lc_optim_default_options(LC_OPTIM_SGD, &o);
  CHECK(isnan(o.lr)); /* SGD's lr is required */
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_SGD, &o), LC_EARG);
  lc_optim_default_options(LC_OPTIM_ADAM, &o);
  CHECK(o.lr == 1e-3 && o.beta1 == 0.9 && o.beta2 == 0.999 && o.eps == 1e-8 && o.weight_decay == 0);
  CHECK_OK(lc_optim_check_options(LC_OPTIM_ADAM, &o));
  lc_optim_default_options(LC_OPTIM_ADAMW, &o);
  CHECK(o.weight_decay == 1e-2);
  lc_optim_default_options(LC_OPTIM_RMSPROP, &o);
  CHECK(o.lr == 1e-2 && o.alpha == 0.99 && o.eps == 1e-8);
  lc_optim_default_options(LC_OPTIM_ADAGRAD, &o);
  CHECK(o.lr == 1e-2 && o.eps == 1e-10 && o.initial_accumulator_value == 0);

  CHECK(!lc_optim_has_step(LC_OPTIM_SGD) && lc_optim_has_step(LC_OPTIM_ADAM));
  CHECK(lc_optim_num_state_buffers(LC_OPTIM_SGD) == 1);
  CHECK(lc_optim_num_state_buffers(LC_OPTIM_ADAM) == 3);
  CHECK(lc_optim_num_state_buffers(LC_OPTIM_KIND_COUNT) == 0);
  CHECK(strcmp(lc_optim_state_name(LC_OPTIM_RMSPROP, 2), "grad_avg") == 0);
  CHECK(strcmp(lc_optim_state_name(LC_OPTIM_ADAGRAD, 0), "sum") == 0);
  CHECK(lc_optim_state_name(LC_OPTIM_ADAGRAD, 1) == NULL);
  CHECK(lc_optim_state_name(LC_OPTIM_ADAM, -1) == NULL);
}

/* The descriptors: PyTorch's order and defaults, consistent with the rest of the API. */
TEST(optim_kind_descriptors) {
  CHECK(lc_optim_kind_info(LC_OPTIM_KIND_COUNT) == NULL);
  CHECK(lc_optim_kind_info((lc_optim_kind)-1) == NULL);
  static const char *const order[LC_OPTIM_KIND_COUNT] = {
      "lr momentum dampening weight_decay nesterov maximize",
      "lr betas eps weight_decay amsgrad maximize",
      "lr betas eps weight_decay amsgrad maximize",
      "lr alpha eps weight_decay momentum centered maximize",
      "lr lr_decay weight_decay initial_accumulator_value eps maximize",
  };
  for (int i = 0; i < LC_OPTIM_KIND_COUNT; i++) {
    lc_optim_kind kind = (lc_optim_kind)i;
    const lc_optim_kind_desc *d = lc_optim_kind_info(kind);
    CHECK(d != NULL);
    if (!d) continue;
    CHECK(strcmp(d->name, lc_optim_kind_name(kind)) == 0);
    CHECK(d->has_step == lc_optim_has_step(kind));
    CHECK(d->num_state == lc_optim_num_state_buffers(kind));
    for (int k = 0; k < d->num_state; k++)
      CHECK(strcmp(d->state_names[k], lc_optim_state_name(kind, k)) == 0);
    char names[256] = "";
    lc_optim_options defaults, o;
    lc_optim_default_options(kind, &defaults);
    memset(&o, 0, sizeof o);
    for (int k = 0; k < d->num_hparams; k++) {
      const lc_optim_hparam *h = &d->hparams[k];
      if (k) strcat(names, " ");
      strcat(names, h->name);
      /* only maximize is keyword-only; only SGD's lr is required (its default is NAN) */
      CHECK(h->keyword_only == (strcmp(h->name, "maximize") == 0));
      CHECK(h->required == (kind == LC_OPTIM_SGD && strcmp(h->name, "lr") == 0));
      CHECK(h->required == isnan(h->def[0]));
      CHECK((h->type == LC_OPTIM_PAIR) == (strcmp(h->name, "betas") == 0));
      /* the defaults in lc_optim_options are the descriptor's */
      double v[2] = {-1, -1};
      CHECK_OK(lc_optim_get_hparam(kind, &defaults, k, v));
      CHECK(h->required ? isnan(v[0]) : v[0] == h->def[0]);
      CHECK(v[1] == (h->type == LC_OPTIM_PAIR ? h->def[1] : 0));
      /* set then get round-trips through the field the descriptor names */
      double w[2] = {h->type == LC_OPTIM_BOOL ? 1 : 0.25 + k, 0.5};
      CHECK_OK(lc_optim_set_hparam(kind, &o, k, w));
      CHECK_OK(lc_optim_get_hparam(kind, &o, k, v));
      CHECK(v[0] == w[0] && v[1] == (h->type == LC_OPTIM_PAIR ? 0.5 : 0));
    }
    CHECK(strcmp(names, order[i]) == 0);
    if (strcmp(names, order[i])) printf("  %s: %s\n", d->name, names);
    double v[2];
    CHECK_STATUS(lc_optim_get_hparam(kind, &o, d->num_hparams, v), LC_EINDEX);
    CHECK_STATUS(lc_optim_set_hparam(kind, &o, -1, v), LC_EINDEX);
    CHECK_STATUS(lc_optim_get_hparam(kind, NULL, 0, v), LC_EARG);
  }
  /* the fields the descriptors write are the documented ones */
  lc_optim_options o;
  memset(&o, 0, sizeof o);
  double w[2] = {0.8, 0.9};
  CHECK_OK(lc_optim_set_hparam(LC_OPTIM_ADAM, &o, 1, w)); /* betas */
  CHECK(o.beta1 == 0.8 && o.beta2 == 0.9);
  w[0] = 1;
  CHECK_OK(lc_optim_set_hparam(LC_OPTIM_SGD, &o, 4, w)); /* nesterov */
  CHECK(o.nesterov);
  w[0] = 3;
  CHECK_OK(lc_optim_set_hparam(LC_OPTIM_ADAGRAD, &o, 3, w)); /* initial_accumulator_value */
  CHECK(o.initial_accumulator_value == 3);
  double v[2];
  CHECK_STATUS(lc_optim_get_hparam(LC_OPTIM_KIND_COUNT, &o, 0, v), LC_EARG);
}

TEST(optim_check_param_and_duplicates) {
  lc_tensor *a = param_of(2, LC_FLOAT32, 1), *b = param_of(3, LC_FLOAT64, 1), *c = NULL;
  int64_t shape[1] = {2};
  CHECK_OK(lc_zeros(1, shape, LC_FLOAT32, &c)); /* no grad */
  CHECK_OK(lc_optim_check_param(a, "params", 0));
  CHECK_STATUS(lc_optim_check_param(c, "params", 2), LC_EARG);
  CHECK(strncmp(lc_last_error(), "params[2] does not require grad", 31) == 0);
  /* the index is a marked position: a 1-based binding renders it with lc_render_positions */
  char shown[256];
  lc_render_positions(lc_last_error_marked(), 1, shown, sizeof shown);
  CHECK(strncmp(shown, "params[3] does not require grad", 31) == 0);
  CHECK_STATUS(lc_optim_check_param(c, "groups[1].params", -1), LC_EARG);
  CHECK(strncmp(lc_last_error(), "groups[1].params does not require grad", 38) == 0);
  CHECK_STATUS(lc_optim_check_param(NULL, NULL, 4), LC_EARG);
  CHECK(strcmp(lc_last_error(), "params[4] is NULL") == 0);

  int64_t i, j, g;
  lc_tensor *list[4] = {a, b, b, a};
  CHECK_OK(lc_optimizer_find_duplicate(NULL, 2, list, &i, &j, &g));
  CHECK(i == -1 && j == -1 && g == -1);
  CHECK_OK(lc_optimizer_find_duplicate(NULL, 4, list, &i, &j, &g));
  CHECK(i == 2 && j == 1 && g == -1); /* the earliest repetition: b at 2 repeats 1 */
  lc_optim_options o = opts_of(LC_OPTIM_SGD, 0.1);
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_SGD, 1, &b, &o, &opt));
  if (opt) {
    CHECK_OK(lc_optimizer_add_param_group(opt, 0, NULL, &o));
    lc_tensor *more[3] = {a, a, b};
    CHECK_OK(lc_optimizer_find_duplicate(opt, 3, more, &i, &j, &g));
    CHECK(i == 1 && j == 0 && g == -1);
    lc_tensor *more2[2] = {a, b};
    CHECK_OK(lc_optimizer_find_duplicate(opt, 2, more2, &i, &j, &g));
    CHECK(i == 1 && j == -1 && g == 0); /* b is group 0's */
    CHECK_STATUS(lc_optimizer_add_param_group(opt, 2, more2, &o), LC_EARG);
    CHECK(strcmp(lc_last_error(), "lc_optimizer_add_param_group: params[1] is already in "
                                  "param_groups[0] (some parameters appear in more than one "
                                  "group)") == 0);
    /* the rule with its message, for callers naming the list their own way */
    CHECK_OK(lc_optimizer_check_duplicates(opt, 1, more2, "p"));
    CHECK_STATUS(lc_optimizer_check_duplicates(opt, 3, more, "p"), LC_EARG);
    CHECK(strcmp(lc_last_error(), "p[0] and p[1] are the same tensor") == 0);
    lc_render_positions(lc_last_error_marked(), 1, shown, sizeof shown);
    CHECK(strcmp(shown, "p[1] and p[2] are the same tensor") == 0);
    CHECK_STATUS(lc_optimizer_check_duplicates(opt, 2, more2, NULL), LC_EARG);
    lc_render_positions(lc_last_error_marked(), 1, shown, sizeof shown);
    CHECK(strncmp(shown, "params[2] is already in param_groups[1] (", 41) == 0);

    /* state checks change nothing and name the state as the caller asks */
    lc_tensor *wrong = NULL;
    CHECK_OK(lc_zeros(1, shape, LC_FLOAT32, &wrong));
    CHECK_STATUS(lc_optimizer_check_state(opt, 0, "momentum_buffer", wrong, "state[1]"), LC_ESHAPE);
    CHECK(strcmp(lc_last_error(),
                 "state[1].momentum_buffer has shape {2}, but the parameter has shape {3}") == 0);
    CHECK_STATUS(lc_optimizer_check_state(opt, 0, "momentum_buffer", wrong, NULL), LC_ESHAPE);
    CHECK(strstr(lc_last_error(), "lc_optimizer_check_state: parameter 0: state "
                                  "'momentum_buffer' has shape {2}") != NULL);
    CHECK_STATUS(lc_optimizer_check_state(opt, 0, "exp_avg", NULL, "state[1]"), LC_EARG);
    CHECK(strstr(lc_last_error(), "state[1]: unknown state entry 'exp_avg' for SGD (expected "
                                  "one of: momentum_buffer)") != NULL);
    CHECK_OK(lc_optimizer_check_state(opt, 0, "momentum_buffer", NULL, NULL));
    CHECK_STATUS(lc_optimizer_check_state(opt, 1, "momentum_buffer", NULL, NULL), LC_EINDEX);
    CHECK_STATUS(lc_optimizer_check_step(opt, 0, 3, "state[1]"), LC_EARG);
    CHECK(strcmp(lc_last_error(), "state[1].step: SGD keeps no step count") == 0);
    CHECK(!lc_optimizer_has_state(opt, 0));
    lc_release(wrong);
    lc_optimizer_free(opt);
  }
  opt = NULL;
  o = opts_of(LC_OPTIM_ADAM, 0.1);
  CHECK_OK(lc_optimizer_new(LC_OPTIM_ADAM, 1, &a, &o, &opt));
  if (opt) {
    CHECK_OK(lc_optimizer_check_step(opt, 0, 7, NULL));
    CHECK_STATUS(lc_optimizer_check_step(opt, 0, -1, "state[1]"), LC_EARG);
    CHECK(strcmp(lc_last_error(), "state[1].step must be >= 0, got -1") == 0);
    CHECK_STATUS(lc_optimizer_check_step(opt, 0, -1, NULL), LC_EARG);
    CHECK(strstr(lc_last_error(), "parameter 0: expected a step count >= 0") != NULL);
    CHECK(!lc_optimizer_has_state(opt, 0));
    lc_optimizer_free(opt);
  }
  lc_release(a);
  lc_release(b);
  lc_release(c);
}

TEST(optim_check_options_errors) {
  lc_optim_options o = opts_of(LC_OPTIM_SGD, -0.5);
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_SGD, &o), LC_EARG);
  CHECK(strstr(lc_last_error(), "invalid lr") && strstr(lc_last_error(), "-0.5"));
  o = opts_of(LC_OPTIM_SGD, 0.1);
  o.nesterov = true;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_SGD, &o), LC_EARG);
  CHECK(strstr(lc_last_error(), "nesterov") != NULL);
  o.momentum = 0.9;
  CHECK_OK(lc_optim_check_options(LC_OPTIM_SGD, &o));
  o.dampening = 0.1;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_SGD, &o), LC_EARG);
  o = opts_of(LC_OPTIM_SGD, 0.1);
  o.momentum = -1;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_SGD, &o), LC_EARG);
  CHECK(strstr(lc_last_error(), "momentum") != NULL);
  o = opts_of(LC_OPTIM_ADAM, 0.1);
  o.beta1 = 1.0;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_ADAM, &o), LC_EARG);
  CHECK(strstr(lc_last_error(), "beta1") != NULL);
  o = opts_of(LC_OPTIM_ADAMW, 0.1);
  o.beta2 = NAN;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_ADAMW, &o), LC_EARG);
  CHECK(strstr(lc_last_error(), "beta2") != NULL);
  o = opts_of(LC_OPTIM_ADAM, 0.1);
  o.eps = -1;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_ADAM, &o), LC_EARG);
  o = opts_of(LC_OPTIM_ADAM, 0.1);
  o.weight_decay = -1;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_ADAM, &o), LC_EARG);
  CHECK(strstr(lc_last_error(), "weight_decay") != NULL);
  o = opts_of(LC_OPTIM_RMSPROP, 0.1);
  o.alpha = -0.1;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_RMSPROP, &o), LC_EARG);
  CHECK(strstr(lc_last_error(), "alpha") != NULL);
  o = opts_of(LC_OPTIM_ADAGRAD, 0.1);
  o.lr_decay = -1;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_ADAGRAD, &o), LC_EARG);
  o = opts_of(LC_OPTIM_ADAGRAD, 0.1);
  o.initial_accumulator_value = -1;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_ADAGRAD, &o), LC_EARG);
  CHECK(strstr(lc_last_error(), "initial_accumulator_value") != NULL);
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_KIND_COUNT, &o), LC_EARG);
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_ADAM, NULL), LC_EARG);
  /* options another kind reads are ignored */
  o = opts_of(LC_OPTIM_SGD, 0.1);
  o.beta1 = 7;
  CHECK_OK(lc_optim_check_options(LC_OPTIM_SGD, &o));
}

/* The descriptors' rules are what lc_optim_check_options applies: every hyper-parameter with a
 * rule refuses a value outside it with the message naming it, and one without accepts any. */
TEST(optim_descriptor_rules_are_the_checks) {
  CHECK(strcmp(lc_optim_rule_text(LC_OPTIM_NONNEG), ">= 0") == 0);
  CHECK(strcmp(lc_optim_rule_text(LC_OPTIM_UNIT), "in [0, 1)") == 0);
  CHECK(lc_optim_rule_text(LC_OPTIM_ANY) == NULL);
  int ruled = 0;
  for (int i = 0; i < LC_OPTIM_KIND_COUNT; i++) {
    lc_optim_kind kind = (lc_optim_kind)i;
    const lc_optim_kind_desc *d = lc_optim_kind_info(kind);
    for (int k = 0; d && k < d->num_hparams; k++) {
      const lc_optim_hparam *h = &d->hparams[k];
      CHECK(h->type != LC_OPTIM_BOOL || h->rule == LC_OPTIM_ANY);
      CHECK((h->type == LC_OPTIM_PAIR) == (h->part[0] != NULL && h->part[1] != NULL));
      if (h->type == LC_OPTIM_BOOL) continue;
      for (int j = 0; j < (h->type == LC_OPTIM_PAIR ? 2 : 1); j++) {
        static const double bad_nonneg[] = {-1, NAN}, bad_unit[] = {-0.1, 1, NAN},
                            bad_any[] = {-1, 1e9};
        const double *bad = h->rule == LC_OPTIM_NONNEG ? bad_nonneg
                            : h->rule == LC_OPTIM_UNIT ? bad_unit
                                                       : bad_any;
        int nbad = h->rule == LC_OPTIM_NONNEG ? 2 : h->rule == LC_OPTIM_UNIT ? 3 : 2;
        for (int b = 0; b < nbad; b++) {
          lc_optim_options o = opts_of(kind, 0.1);
          double v[2];
          CHECK_OK(lc_optim_get_hparam(kind, &o, k, v));
          v[j] = bad[b];
          CHECK_OK(lc_optim_set_hparam(kind, &o, k, v));
          if (h->rule == LC_OPTIM_ANY) {
            CHECK_OK(lc_optim_check_options(kind, &o));
            continue;
          }
          CHECK_STATUS(lc_optim_check_options(kind, &o), LC_EARG);
          char want[96];
          snprintf(want, sizeof want, "lc_optim_check_options: invalid %s",
                   h->type == LC_OPTIM_PAIR ? h->part[j] : h->name);
          CHECK(strncmp(lc_last_error(), want, strlen(want)) == 0);
          if (strncmp(lc_last_error(), want, strlen(want)))
            printf("  %s.%s: %s\n", d->name, h->name, lc_last_error());
          ruled++;
        }
        /* the bounds themselves: 0 passes both rules */
        lc_optim_options o = opts_of(kind, 0.1);
        double v[2];
        CHECK_OK(lc_optim_get_hparam(kind, &o, k, v));
        v[j] = 0;
        CHECK_OK(lc_optim_set_hparam(kind, &o, k, v));
        CHECK_OK(lc_optim_check_options(kind, &o));
      }
    }
  }
  CHECK(ruled > 0);
  /* the messages users see */
  lc_optim_options o = opts_of(LC_OPTIM_ADAM, 0.1);
  o.beta2 = 1;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_ADAM, &o), LC_EARG);
  CHECK(strcmp(lc_last_error(), "lc_optim_check_options: invalid beta2 (betas, second value): "
                                "expected 0 <= beta2 < 1, got 1") == 0);
  o = opts_of(LC_OPTIM_RMSPROP, 0.1);
  o.eps = -2;
  CHECK_STATUS(lc_optim_check_options(LC_OPTIM_RMSPROP, &o), LC_EARG);
  CHECK(strcmp(lc_last_error(),
               "lc_optim_check_options: invalid eps: expected a number >= 0, got -2") == 0);
}

/* The descriptors' state names are the buffers the step makes: with every option that makes a
 * buffer on, one step creates each named buffer (and a step count exactly when has_step). */
TEST(optim_descriptor_state_is_what_the_step_makes) {
  for (int i = 0; i < LC_OPTIM_KIND_COUNT; i++) {
    lc_optim_kind kind = (lc_optim_kind)i;
    const lc_optim_kind_desc *d = lc_optim_kind_info(kind);
    lc_optim_options o = opts_of(kind, 0.1);
    o.momentum = 0.9;  /* SGD, RMSprop */
    o.amsgrad = true;  /* Adam, AdamW */
    o.centered = true; /* RMSprop */
    lc_tensor *p = param_of(3, LC_FLOAT32, 1);
    lc_optimizer *opt = NULL;
    CHECK_OK(lc_optimizer_new(kind, 1, &p, &o, &opt));
    CHECK_OK(set_grad_values(p, 0.3));
    if (opt) CHECK_OK(lc_optimizer_step(opt));
    for (int k = 0; opt && k < d->num_state; k++) {
      lc_tensor *b = NULL;
      CHECK_OK(lc_optimizer_get_state(opt, 0, d->state_names[k], &b));
      CHECK(b != NULL);
      if (!b) printf("  %s: no %s after a step\n", d->name, d->state_names[k]);
      lc_release(b);
    }
    int64_t step = -1;
    if (opt) CHECK_OK(lc_optimizer_get_step(opt, 0, &step));
    CHECK(step == (d->has_step ? 1 : 0));
    lc_optimizer_free(opt);
    lc_release(p);
  }
}

/* ---------------------------------------------------------------- updates */

TEST(optim_updates_match_reference) {
  /* each kind with plain and with every option switched on */
  for (int k = 0; k < LC_OPTIM_KIND_COUNT; k++) {
    for (int variant = 0; variant < 3; variant++) {
      lc_optim_options o = opts_of((lc_optim_kind)k, 0.05);
      if (variant >= 1) {
        o.weight_decay = 0.1;
        o.momentum = 0.9;
        o.amsgrad = true;
        o.centered = true;
        o.lr_decay = 0.2;
        o.initial_accumulator_value = 0.3;
        o.beta1 = 0.7;
        o.alpha = 0.8;
        o.dampening = variant == 1 ? 0.3 : 0;
        o.nesterov = variant == 2;
        o.maximize = variant == 2;
      }
      run_against_reference(failures_, (lc_optim_kind)k, &o, 7, LC_FLOAT64, 4, 1e-13);
      run_against_reference(failures_, (lc_optim_kind)k, &o, 7, LC_FLOAT32, 4, 1e-5);
    }
  }
}

TEST(optim_large_parameter_threads) {
  /* large enough for lc_parallel_for to split the loop */
  lc_optim_options o = opts_of(LC_OPTIM_ADAM, 0.01);
  o.amsgrad = true;
  run_against_reference(failures_, LC_OPTIM_ADAM, &o, 200003, LC_FLOAT32, 2, 1e-5);
  o = opts_of(LC_OPTIM_SGD, 0.1);
  o.momentum = 0.9;
  run_against_reference(failures_, LC_OPTIM_SGD, &o, 300001, LC_FLOAT64, 2, 1e-13);
}

TEST(optim_sgd_first_momentum_step_uses_grad) {
  lc_tensor *p = param_of(3, LC_FLOAT32, 1);
  lc_optim_options o = opts_of(LC_OPTIM_SGD, 0.1);
  o.momentum = 0.9;
  o.dampening = 0.5; /* ignored on the first step: the buffer starts as the gradient */
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_SGD, 1, &p, &o, &opt));
  CHECK(!lc_optimizer_has_state(opt, 0));
  CHECK_OK(set_grad_values(p, 0));
  CHECK_OK(lc_optimizer_step(opt));
  CHECK(lc_optimizer_has_state(opt, 0));
  lc_tensor *buf = NULL;
  CHECK_OK(lc_optimizer_get_state(opt, 0, "momentum_buffer", &buf));
  CHECK(buf != NULL);
  bool eq = false;
  if (buf) CHECK_OK(lc_equal(buf, lc_grad(p), &eq));
  CHECK(eq);
  lc_release(buf);
  int64_t step = -1;
  CHECK_OK(lc_optimizer_get_step(opt, 0, &step));
  CHECK(step == 0); /* SGD keeps no step count */
  lc_optimizer_free(opt);
  lc_release(p);
}

TEST(optim_skips_params_without_grad_and_bumps_versions) {
  lc_tensor *ps[2] = {param_of(4, LC_FLOAT32, 1), param_of(3, LC_FLOAT32, 2)};
  lc_optim_options o = opts_of(LC_OPTIM_ADAM, 0.1);
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_ADAM, 2, ps, &o, &opt));
  double *before = test_values(ps[1]);
  uint64_t v0 = lc_version(ps[0]), v1 = lc_version(ps[1]);
  CHECK_OK(set_grad_values(ps[0], 0));
  bool grad_mode = lc_is_grad_enabled();
  CHECK_OK(lc_optimizer_step(opt));
  CHECK(lc_is_grad_enabled() == grad_mode);
  CHECK(lc_version(ps[0]) > v0);
  CHECK(lc_version(ps[1]) == v1);
  CHECK(lc_optimizer_has_state(opt, 0) && !lc_optimizer_has_state(opt, 1));
  double *after = test_values(ps[1]);
  for (int i = 0; before && after && i < 3; i++)
    CHECK(before[i] == after[i]);
  CHECK(lc_requires_grad(ps[0]) && lc_is_leaf(ps[0]) && lc_grad_fn_name(ps[0]) == NULL);
  free(before);
  free(after);
  lc_optimizer_free(opt);
  lc_release(ps[0]);
  lc_release(ps[1]);
}

TEST(optim_step_invalidates_saved_tensor) {
  lc_tensor *p = param_of(3, LC_FLOAT32, 1), *y = NULL, *s = NULL;
  CHECK_OK(lc_binary(LC_MUL, p, p, &y)); /* saves p */
  CHECK_OK(lc_reduce(LC_SUM, y, NULL, &s));
  lc_optim_options o = opts_of(LC_OPTIM_SGD, 0.1);
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_SGD, 1, &p, &o, &opt));
  CHECK_OK(set_grad_values(p, 0));
  CHECK_OK(lc_optimizer_step(opt));
  if (s) CHECK_STATUS(lc_backward(s, NULL, false), LC_EGRAD);
  lc_release(s);
  lc_release(y);
  lc_optimizer_free(opt);
  lc_release(p);
}

TEST(optim_non_contiguous_parameter) {
  double vals[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[2] = {2, 3};
  lc_tensor *base = NULL, *tr = NULL, *p = NULL;
  CHECK_OK(lc_from_data(2, shape, LC_FLOAT64, vals, &base));
  CHECK_OK(lc_transpose(base, 0, 1, &tr));
  CHECK_OK(lc_detach(tr, &p));
  if (!p) return;
  CHECK(!lc_is_contiguous(p));
  CHECK_OK(lc_set_requires_grad(p, true));
  lc_tensor *g = NULL;
  CHECK_OK(lc_ones_like(p, &g));
  CHECK_OK(lc_set_grad(p, g));
  lc_optim_options o = opts_of(LC_OPTIM_SGD, 0.5);
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_SGD, 1, &p, &o, &opt));
  CHECK_OK(lc_optimizer_step(opt));
  /* p[i][j] = base[j][i] - 0.5, and base (sharing storage) changed with it */
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 2; j++) {
      int64_t idx[2] = {i, j};
      double v = NAN;
      CHECK_OK(lc_get(p, idx, &v));
      CHECK_NEAR(v, vals[j * 3 + i] - 0.5, 0);
    }
  int64_t idx[2] = {1, 2};
  double b = NAN;
  CHECK_OK(lc_get(base, idx, &b));
  CHECK_NEAR(b, 5.5, 0);
  lc_optimizer_free(opt);
  lc_release(g);
  lc_release(p);
  lc_release(tr);
  lc_release(base);
}

TEST(optim_zero_grad) {
  lc_tensor *ps[2] = {param_of(4, LC_FLOAT32, 1), param_of(3, LC_FLOAT64, 1)};
  lc_optim_options o = opts_of(LC_OPTIM_SGD, 0.1);
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_SGD, 2, ps, &o, &opt));
  CHECK_OK(set_grad_values(ps[0], 0));
  CHECK_OK(lc_optimizer_zero_grad(opt, false));
  CHECK(lc_grad(ps[0]) != NULL && lc_grad(ps[1]) == NULL);
  double *g = lc_grad(ps[0]) ? test_values(lc_grad(ps[0])) : NULL;
  for (int i = 0; g && i < 4; i++)
    CHECK(g[i] == 0);
  free(g);
  CHECK_OK(lc_optimizer_zero_grad(opt, true));
  CHECK(lc_grad(ps[0]) == NULL);
  CHECK_STATUS(lc_optimizer_zero_grad(NULL, true), LC_EARG);
  CHECK_STATUS(lc_optimizer_step(NULL), LC_EARG);
  lc_optimizer_free(opt);
  lc_release(ps[0]);
  lc_release(ps[1]);
}

/* ---------------------------------------------------------------- groups */

TEST(optim_groups_and_options) {
  lc_tensor *a = param_of(4, LC_FLOAT32, 1), *b = param_of(2, LC_FLOAT32, 1),
            *c = param_of(3, LC_FLOAT32, 1);
  lc_optim_options o = opts_of(LC_OPTIM_SGD, 0.1);
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_SGD, 1, &a, &o, &opt));
  if (!opt) return;
  lc_optim_options o2 = opts_of(LC_OPTIM_SGD, 0.01);
  lc_tensor *bc[2] = {b, c};
  CHECK_OK(lc_optimizer_add_param_group(opt, 2, bc, &o2));
  CHECK(lc_optimizer_kind(opt) == LC_OPTIM_SGD);
  CHECK(lc_optimizer_num_groups(opt) == 2 && lc_optimizer_num_params(opt) == 3);
  int64_t first = -1, count = -1;
  CHECK_OK(lc_optimizer_group_range(opt, 1, &first, &count));
  CHECK(first == 1 && count == 2);
  CHECK_STATUS(lc_optimizer_group_range(opt, 2, &first, &count), LC_EINDEX);
  CHECK(lc_optimizer_param(opt, 2) == c && lc_optimizer_param(opt, 3) == NULL &&
        lc_optimizer_param(opt, -1) == NULL);
  double lr = 0;
  CHECK_OK(lc_optimizer_get_lr(opt, 1, &lr));
  CHECK(lr == 0.01);
  CHECK_OK(lc_optimizer_set_lr(opt, 1, 0.5));
  CHECK_STATUS(lc_optimizer_set_lr(opt, 1, -1), LC_EARG);
  CHECK_STATUS(lc_optimizer_set_lr(opt, 5, 1), LC_EINDEX);
  CHECK_STATUS(lc_optimizer_get_lr(opt, -1, &lr), LC_EINDEX);
  lc_optim_options got;
  CHECK_OK(lc_optimizer_get_options(opt, 1, &got));
  CHECK(got.lr == 0.5);
  got.momentum = 0.9;
  CHECK_OK(lc_optimizer_set_options(opt, 1, &got));
  got.momentum = -2;
  CHECK_STATUS(lc_optimizer_set_options(opt, 1, &got), LC_EARG);
  CHECK_OK(lc_optimizer_get_options(opt, 1, &got));
  CHECK(got.momentum == 0.9); /* unchanged by the failed set */
  CHECK_STATUS(lc_optimizer_get_options(opt, 9, &got), LC_EINDEX);
  CHECK_STATUS(lc_optimizer_set_options(opt, 9, &got), LC_EINDEX);

  /* per-group lr: a steps with 0.1, b with 0.5 (and momentum; first step = plain SGD) */
  double *a0 = test_values(a), *b0 = test_values(b);
  CHECK_OK(set_grad_values(a, 0));
  CHECK_OK(set_grad_values(b, 0));
  CHECK_OK(lc_optimizer_step(opt));
  double *a1 = test_values(a), *b1 = test_values(b), *ga = test_values(lc_grad(a)),
         *gb = test_values(lc_grad(b));
  for (int i = 0; a0 && a1 && ga && i < 4; i++)
    CHECK_NEAR(a1[i], a0[i] - 0.1 * ga[i], 1e-6);
  for (int i = 0; b0 && b1 && gb && i < 2; i++)
    CHECK_NEAR(b1[i], b0[i] - 0.5 * gb[i], 1e-6);
  free(a0), free(b0), free(a1), free(b1), free(ga), free(gb);

  /* a tensor in two groups, twice in one, and bad options: nothing changes */
  CHECK_STATUS(lc_optimizer_add_param_group(opt, 1, &a, &o2), LC_EARG);
  CHECK(strstr(lc_last_error(), "params[0] is already in param_groups[0]") != NULL);
  lc_tensor *d = param_of(2, LC_FLOAT32, 1);
  lc_tensor *dd[2] = {d, d};
  CHECK_STATUS(lc_optimizer_add_param_group(opt, 2, dd, &o2), LC_EARG);
  CHECK(strstr(lc_last_error(), "params[0] and params[1] are the same tensor") != NULL);
  o2.lr = -1;
  CHECK_STATUS(lc_optimizer_add_param_group(opt, 1, &d, &o2), LC_EARG);
  CHECK(lc_optimizer_num_groups(opt) == 2 && lc_optimizer_num_params(opt) == 3);
  /* an empty group is fine */
  o2.lr = 1;
  CHECK_OK(lc_optimizer_add_param_group(opt, 0, NULL, &o2));
  CHECK(lc_optimizer_num_groups(opt) == 3);
  lc_release(d);
  lc_optimizer_free(opt);
  lc_release(a);
  lc_release(b);
  lc_release(c);
}

TEST(optim_new_errors) {
  lc_optim_options o = opts_of(LC_OPTIM_SGD, 0.1);
  lc_optimizer *opt = NULL;
  lc_tensor *nograd = NULL, *ints = NULL, *nonleaf = NULL, *p = param_of(3, LC_FLOAT32, 1);
  int64_t shape[1] = {3};
  CHECK_OK(lc_zeros(1, shape, LC_FLOAT32, &nograd));
  CHECK_OK(lc_zeros(1, shape, LC_INT64, &ints));
  CHECK_OK(lc_binary_scalar(LC_MUL, p, 2, false, &nonleaf));
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_SGD, 1, &nograd, &o, &opt), LC_EARG);
  CHECK(strstr(lc_last_error(), "lc_optimizer_new: params[0] does not require grad") != NULL);
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_SGD, 1, &ints, &o, &opt), LC_EDTYPE);
  CHECK(strstr(lc_last_error(), "int64") != NULL);
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_SGD, 1, &nonleaf, &o, &opt), LC_EARG);
  CHECK(strstr(lc_last_error(), "not a leaf") != NULL);
  lc_tensor *null_param = NULL;
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_SGD, 1, &null_param, &o, &opt), LC_EARG);
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_SGD, 1, NULL, &o, &opt), LC_EARG);
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_SGD, -1, &p, &o, &opt), LC_EARG);
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_KIND_COUNT, 1, &p, &o, &opt), LC_EARG);
  lc_optim_options sgd_default;
  lc_optim_default_options(LC_OPTIM_SGD, &sgd_default);
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_SGD, 1, &p, &sgd_default, &opt), LC_EARG);
  CHECK_STATUS(lc_optimizer_new(LC_OPTIM_SGD, 1, &p, NULL, &opt), LC_EARG);
  CHECK(opt == NULL);
  /* zero parameters is allowed in C */
  CHECK_OK(lc_optimizer_new(LC_OPTIM_ADAM, 0, NULL, &o, &opt));
  CHECK(opt && lc_optimizer_num_params(opt) == 0);
  if (opt) CHECK_OK(lc_optimizer_step(opt));
  lc_optimizer_free(opt);
  lc_optimizer_free(NULL);
  lc_release(nograd);
  lc_release(ints);
  lc_release(nonleaf);
  lc_release(p);
}

TEST(optim_for_module) {
  lc_module *lin = NULL;
  CHECK_OK(lc_nn_linear(3, 2, true, &lin));
  if (!lin) return;
  lc_optim_options o = opts_of(LC_OPTIM_ADAMW, 0.01);
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new_for_module(LC_OPTIM_ADAMW, lin, &o, &opt));
  CHECK(opt && lc_optimizer_num_params(opt) == 2);
  /* train y = sum(W x + b) towards 0 for a while: the loss goes down */
  double first = 0, last = 0;
  int64_t xs[2] = {1, 3};
  float xv[3] = {1, -2, 0.5};
  lc_tensor *x = NULL;
  CHECK_OK(lc_from_data(2, xs, LC_FLOAT32, xv, &x));
  for (int i = 0; opt && x && i < 30; i++) {
    lc_tensor *y = NULL, *sq = NULL, *loss = NULL;
    CHECK_OK(lc_optimizer_zero_grad(opt, true));
    CHECK_OK(lc_module_forward(lin, x, &y));
    CHECK_OK(lc_binary(LC_MUL, y, y, &sq));
    CHECK_OK(lc_reduce(LC_SUM, sq, NULL, &loss));
    CHECK_OK(lc_backward(loss, NULL, false));
    CHECK_OK(lc_optimizer_step(opt));
    double v = 0;
    CHECK_OK(lc_item(loss, &v));
    if (i == 0) first = v;
    last = v;
    lc_release(y), lc_release(sq), lc_release(loss);
  }
  CHECK(last < first * 0.5);
  CHECK_STATUS(lc_optimizer_new_for_module(LC_OPTIM_ADAMW, NULL, &o, &opt), LC_EARG);
  lc_release(x);
  lc_optimizer_free(opt);
  lc_module_release(lin);
}

/* ---------------------------------------------------------------- state */

/* Copies every piece of state of a into b (what a checkpoint does). */
static lc_status copy_state(const lc_optimizer *a, lc_optimizer *b) {
  lc_optim_kind kind = lc_optimizer_kind(a);
  for (int64_t i = 0; i < lc_optimizer_num_params(a); i++) {
    lc_status st = lc_optimizer_clear_state(b, i);
    if (st) return st;
    if (!lc_optimizer_has_state(a, i)) continue;
    int64_t step;
    if ((st = lc_optimizer_get_step(a, i, &step)) || (st = lc_optimizer_set_step(b, i, step)))
      return st;
    for (int k = 0; k < lc_optim_num_state_buffers(kind); k++) {
      lc_tensor *t = NULL;
      const char *name = lc_optim_state_name(kind, k);
      if ((st = lc_optimizer_get_state(a, i, name, &t))) return st;
      if (t) st = lc_optimizer_set_state(b, i, name, t);
      lc_release(t);
      if (st) return st;
    }
  }
  return LC_OK;
}

TEST(optim_state_checkpoint_round_trip) {
  for (int k = 0; k < LC_OPTIM_KIND_COUNT; k++) {
    lc_optim_kind kind = (lc_optim_kind)k;
    lc_optim_options o = opts_of(kind, 0.05);
    o.momentum = 0.9;
    o.amsgrad = true;
    o.centered = true;
    lc_tensor *p = param_of(5, LC_FLOAT32, 1), *q = NULL;
    lc_optimizer *a = NULL, *b = NULL;
    CHECK_OK(lc_optimizer_new(kind, 1, &p, &o, &a));
    for (int s = 0; a && s < 3; s++) {
      CHECK_OK(set_grad_values(p, s));
      CHECK_OK(lc_optimizer_step(a));
    }
    /* a fresh optimizer over a copy of the parameter, state copied in */
    lc_tensor *pd = NULL;
    CHECK_OK(lc_detach(p, &pd));
    if (pd) CHECK_OK(lc_clone(pd, &q));
    lc_release(pd);
    if (q) CHECK_OK(lc_set_requires_grad(q, true));
    if (q) CHECK_OK(lc_optimizer_new(kind, 1, &q, &o, &b));
    if (a && b) CHECK_OK(copy_state(a, b));
    int64_t sa = -1, sb = -2;
    if (a && b) {
      CHECK_OK(lc_optimizer_get_step(a, 0, &sa));
      CHECK_OK(lc_optimizer_get_step(b, 0, &sb));
      CHECK(sa == sb);
      CHECK(sa == (lc_optim_has_step(kind) ? 3 : 0));
    }
    for (int s = 3; a && b && s < 6; s++) {
      CHECK_OK(set_grad_values(p, s));
      CHECK_OK(set_grad_values(q, s));
      CHECK_OK(lc_optimizer_step(a));
      CHECK_OK(lc_optimizer_step(b));
      bool eq = false;
      CHECK_OK(lc_equal(p, q, &eq));
      CHECK(eq);
    }
    lc_optimizer_free(a);
    lc_optimizer_free(b);
    lc_release(p);
    lc_release(q);
  }
}

TEST(optim_state_access_and_errors) {
  lc_tensor *p = param_of(4, LC_FLOAT64, 1);
  lc_optim_options o = opts_of(LC_OPTIM_ADAGRAD, 0.1);
  o.initial_accumulator_value = 0.25;
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_ADAGRAD, 1, &p, &o, &opt));
  if (!opt) return;
  /* Adagrad's state exists from the start */
  CHECK(lc_optimizer_has_state(opt, 0));
  lc_tensor *sum = NULL;
  CHECK_OK(lc_optimizer_get_state(opt, 0, "sum", &sum));
  double *v = sum ? test_values(sum) : NULL;
  for (int i = 0; v && i < 4; i++)
    CHECK(v[i] == 0.25);
  CHECK(sum && lc_dtype_of(sum) == LC_FLOAT64);
  free(v);
  lc_release(sum);

  /* set_state casts and copies; NULL removes; unknown names and shapes are errors */
  int64_t shape[1] = {4};
  lc_tensor *f32 = NULL, *wrong = NULL;
  CHECK_OK(lc_full(1, shape, 2.0, LC_FLOAT32, &f32));
  int64_t wshape[2] = {2, 2};
  CHECK_OK(lc_zeros(2, wshape, LC_FLOAT32, &wrong));
  CHECK_OK(lc_optimizer_set_state(opt, 0, "sum", f32));
  CHECK_OK(lc_fill_(f32, 7)); /* a copy was taken */
  CHECK_OK(lc_optimizer_get_state(opt, 0, "sum", &sum));
  v = sum ? test_values(sum) : NULL;
  CHECK(v && v[0] == 2.0 && lc_dtype_of(sum) == LC_FLOAT64);
  free(v);
  lc_release(sum);
  CHECK_STATUS(lc_optimizer_set_state(opt, 0, "sum", wrong), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "{4}") && strstr(lc_last_error(), "{2, 2}"));
  CHECK_STATUS(lc_optimizer_set_state(opt, 0, "exp_avg", f32), LC_EARG);
  CHECK(strstr(lc_last_error(), "parameter 0: unknown state entry 'exp_avg' for Adagrad") != NULL);
  CHECK_STATUS(lc_optimizer_get_state(opt, 0, "bogus", &sum), LC_EARG);
  CHECK_STATUS(lc_optimizer_get_state(opt, 1, "sum", &sum), LC_EINDEX);
  CHECK_STATUS(lc_optimizer_set_state(opt, -1, "sum", f32), LC_EINDEX);
  CHECK_STATUS(lc_optimizer_set_step(opt, 0, -3), LC_EARG);
  CHECK_STATUS(lc_optimizer_set_step(opt, 2, 1), LC_EINDEX);
  int64_t step;
  CHECK_STATUS(lc_optimizer_get_step(opt, 2, &step), LC_EINDEX);
  CHECK_STATUS(lc_optimizer_clear_state(opt, 9), LC_EINDEX);
  CHECK_OK(lc_optimizer_set_step(opt, 0, 4));
  CHECK_OK(lc_optimizer_get_step(opt, 0, &step));
  CHECK(step == 4);
  CHECK_OK(lc_optimizer_set_state(opt, 0, "sum", NULL));
  CHECK_OK(lc_optimizer_get_state(opt, 0, "sum", &sum));
  CHECK(sum == NULL);
  /* cleared state restarts: the next step recreates the sum from initial_accumulator_value */
  CHECK_OK(lc_optimizer_clear_state(opt, 0));
  CHECK(!lc_optimizer_has_state(opt, 0) && !lc_optimizer_has_state(opt, 5));
  CHECK_OK(set_grad_values(p, 0));
  CHECK_OK(lc_optimizer_step(opt));
  CHECK_OK(lc_optimizer_get_step(opt, 0, &step));
  CHECK(step == 1);
  CHECK_OK(lc_optimizer_get_state(opt, 0, "sum", &sum));
  double *g = test_values(lc_grad(p));
  v = sum ? test_values(sum) : NULL;
  for (int i = 0; v && g && i < 4; i++)
    CHECK_NEAR(v[i], 0.25 + g[i] * g[i], 1e-15);
  free(v);
  free(g);
  lc_release(sum);
  lc_release(f32);
  lc_release(wrong);
  lc_optimizer_free(opt);
  lc_release(p);
}

TEST(optim_buffers_created_when_options_change) {
  /* amsgrad switched on after the first step: max_exp_avg_sq is created then (zeros) */
  lc_tensor *p = param_of(3, LC_FLOAT32, 1);
  lc_optim_options o = opts_of(LC_OPTIM_ADAM, 0.1);
  lc_optimizer *opt = NULL;
  CHECK_OK(lc_optimizer_new(LC_OPTIM_ADAM, 1, &p, &o, &opt));
  if (!opt) return;
  CHECK_OK(set_grad_values(p, 0));
  CHECK_OK(lc_optimizer_step(opt));
  lc_tensor *m = NULL;
  CHECK_OK(lc_optimizer_get_state(opt, 0, "max_exp_avg_sq", &m));
  CHECK(m == NULL);
  o.amsgrad = true;
  CHECK_OK(lc_optimizer_set_options(opt, 0, &o));
  CHECK_OK(lc_optimizer_step(opt));
  CHECK_OK(lc_optimizer_get_state(opt, 0, "max_exp_avg_sq", &m));
  lc_tensor *v = NULL;
  CHECK_OK(lc_optimizer_get_state(opt, 0, "exp_avg_sq", &v));
  bool eq = false;
  if (m && v) CHECK_OK(lc_equal(m, v, &eq));
  CHECK(eq); /* max(0, v) = v */
  lc_release(m);
  lc_release(v);
  lc_optimizer_free(opt);
  lc_release(p);
}
