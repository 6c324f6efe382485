/*
 * ops/loss.c - public loss functions (include/lucid_loss.h): argument checks, the target cast
 * to the input's dtype (recorded, so a target that requires grad still gets its gradient),
 * then lc_apply so autograd records the fused loss op of src/kernels/loss.c. The pointwise
 * losses' entry points are generated from src/kernels/loss_list.h.
 */
#include "loss.h"

#include "../autograd/autograd.h"
#include "../kernels/kernel_util.h" /* the float rule */

#include <string.h>

static const char *const red_names[] = {"mean", "sum", "none", "batchmean"};

const char *lc_reduction_name(lc_reduction r) {
  return (unsigned)r < sizeof red_names / sizeof *red_names ? red_names[r] : "?";
}

lc_status lc_reduction_from_name(const char *name, lc_reduction *out) {
  if (!name || !out) return lc_set_error(LC_EARG, "reduction_from_name: NULL argument");
  for (unsigned i = 0; i < sizeof red_names / sizeof *red_names; i++)
    if (strcmp(name, red_names[i]) == 0) {
      *out = (lc_reduction)i;
      return LC_OK;
    }
  return lc_set_error(
      LC_EARG, "reduction: unknown reduction '%s' (expected mean, sum, none or batchmean)", name);
}

static lc_status check_ptrs(const char *fn, const lc_tensor *input, const lc_tensor *target,
                            void *out) {
  if (!input) return lc_set_error(LC_EARG, "%s: input is NULL", fn);
  if (!target) return lc_set_error(LC_EARG, "%s: target is NULL", fn);
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  return need_float_dtype(fn, "input", lc_dtype_of(input)); /* before target takes its dtype */
}

/* target in input's dtype (a new reference: target itself when it already is). */
static lc_status target_as(const lc_tensor *input, const lc_tensor *target, lc_tensor **out) {
  if (lc_dtype_of(target) == lc_dtype_of(input)) {
    *out = lc_retain((lc_tensor *)target);
    return LC_OK;
  }
  return lc_to_dtype(target, lc_dtype_of(input), out);
}

lc_status lc_pw_loss_check_options(int kind, const char *fn, lc_reduction reduction, double p) {
  if (kind < 0 || kind >= LC_PW_COUNT)
    return lc_set_error(LC_EARG, "loss: no pointwise loss with code %d", kind);
  const lc_pw_desc *d = &lc_pw_descs[kind];
  if (!fn) fn = d->name;
  lc_status st = lc_loss_check_reduction(fn, reduction, d->batchmean);
  if (st) return st;
  if (d->param.name && !lc_pw_rule_ok(d->param.rule, p))
    return lc_set_error(LC_EARG, "%s: %s must be %s, got %g", fn, d->param.name,
                        lc_pw_rule_text(d->param.rule), p);
  return LC_OK;
}

lc_status lc_class_loss_check_options(const char *fn, bool nll, const lc_class_loss_opts *o) {
  lc_status st = lc_loss_check_reduction(fn, o->reduction, false);
  return st ? st : lc_loss_check_label_smoothing(fn, nll, o->label_smoothing);
}

lc_status lc_pw_loss_apply(int kind, const lc_tensor *input, const lc_tensor *target,
                           const lc_tensor *weight, const lc_tensor *pos_weight,
                           lc_reduction reduction, double p, lc_tensor **out) {
  if (kind < 0 || kind >= LC_PW_COUNT)
    return lc_set_error(LC_EARG, "loss: no pointwise loss with code %d", kind);
  const lc_pw_desc *d = &lc_pw_descs[kind];
  const char *fn = d->name;
  lc_status st = lc_pw_loss_check_options(kind, fn, reduction, p);
  if (!st) st = check_ptrs(fn, input, target, out);
  if (st) return st;
  lc_tensor *y = NULL;
  if ((st = target_as(input, target, &y))) return st;
  lc_tensor *in[4] = {(lc_tensor *)input, y};
  int n = 2, flags = 0;
  if (weight) {
    in[n++] = (lc_tensor *)weight;
    flags |= LC_LOSS_HAS_WEIGHT;
  }
  if (pos_weight) {
    in[n++] = (lc_tensor *)pos_weight;
    flags |= LC_LOSS_HAS_POS_WEIGHT;
  }
  lc_op_args a = {.i = {reduction}, .ni = 1, .f = {p}, .flags = flags};
  st = lc_apply(&lc_op_pw_loss[kind], n, in, &a, out);
  lc_release(y);
  return st;
}

/* lc_<name>(input, target, [weight,] [pos_weight,] reduction, [param,] out) for every row of
 * src/kernels/loss_list.h, by its WEIGHTS and PARAM columns. */
#define PW_W_ARGS_NONE
#define PW_W_ARGS_W const lc_tensor *weight,
#define PW_W_ARGS_W_PW const lc_tensor *weight, const lc_tensor *pos_weight,
#define PW_W_VALS_NONE NULL, NULL
#define PW_W_VALS_W weight, NULL
#define PW_W_VALS_W_PW weight, pos_weight
#define PW_P_ARG_NOPARAM
#define PW_P_ARG_NUM(n, d, r) , double n
#define PW_P_ARG_FLAG(n, d) , bool n
#define PW_P_VAL_NOPARAM 0
#define PW_P_VAL_NUM(n, d, r) n
#define PW_P_VAL_FLAG(n, d) (n ? 1.0 : 0.0)
#define PW_ENTRY_(CODE, NAME, Module, GradFn, WEIGHTS, PARAM, BATCHMEAN)                           \
  lc_status lc_##NAME(const lc_tensor *input, const lc_tensor *target,                             \
                      PW_W_ARGS_##WEIGHTS lc_reduction reduction PW_P_ARG_##PARAM,                 \
                      lc_tensor **out) {                                                           \
    return lc_pw_loss_apply(LC_PW_##CODE, input, target, PW_W_VALS_##WEIGHTS, reduction,           \
                            PW_P_VAL_##PARAM, out);                                                \
  }
LC_PW_LOSS_LIST(PW_ENTRY_)
#undef PW_ENTRY_

static lc_status class_loss(const lc_op_def *op, const lc_tensor *input, const lc_tensor *target,
                            const lc_class_loss_opts *opts, lc_tensor **out) {
  const char *fn = op->name;
  lc_status st = check_ptrs(fn, input, target, out);
  static const lc_class_loss_opts defaults;
  if (!opts) opts = &defaults;
  if (st) return st;
  lc_tensor *y = NULL;
  /* a float target (probabilities) follows the input's dtype; class indices stay as given */
  if (lc_dtype_is_float(lc_dtype_of(target)))
    st = target_as(input, target, &y);
  else
    y = lc_retain((lc_tensor *)target);
  if (st) return st;
  lc_tensor *in[3] = {(lc_tensor *)input, y, (lc_tensor *)opts->weight};
  lc_op_args a = {.i = {opts->reduction, opts->ignore_index},
                  .ni = 2,
                  .f = {opts->label_smoothing},
                  .flags = (opts->weight ? LC_LOSS_HAS_WEIGHT : 0) |
                           (opts->has_ignore_index ? LC_LOSS_HAS_IGNORE : 0)};
  lc_tensor *res[2] = {NULL, NULL};
  st = lc_apply(op, opts->weight ? 3 : 2, in, &a, res);
  lc_release(y);
  if (st) return st;
  lc_release(res[1]); /* cross_entropy's log-sum-exp: kept alive by the graph if needed */
  *out = res[0];
  return LC_OK;
}

lc_status lc_cross_entropy(const lc_tensor *input, const lc_tensor *target,
                           const lc_class_loss_opts *opts, lc_tensor **out) {
  return class_loss(&lc_op_cross_entropy, input, target, opts, out);
}

lc_status lc_nll_loss(const lc_tensor *input, const lc_tensor *target,
                      const lc_class_loss_opts *opts, lc_tensor **out) {
  return class_loss(&lc_op_nll_loss, input, target, opts, out);
}
