/*
 * loss.h - private interface of the loss family's kernels (src/kernels/loss.c) shared with the
 * layers above: the entry points (src/ops/loss.c) and the binding (src/lua/nn_loss.c). Layer 2
 * of 8 (kernels).
 */
#ifndef LUCID_KERNELS_LOSS_H
#define LUCID_KERNELS_LOSS_H

#include "loss_list.h"
#include "lucid_loss.h"
#include "op.h"

#include <math.h>

/* Pointwise losses (loss_list.h): one def per row, indexed by lc_pw_kind (LC_PW_<CODE>).
 * Inputs: input, target (same shape and dtype), then weight if LC_LOSS_HAS_WEIGHT, then
 * pos_weight if LC_LOSS_HAS_POS_WEIGHT (each broadcasting to input). args: i[0] =
 * lc_reduction, f[0] = the row's parameter (delta, beta; a FLAG as 1 or 0), flags LC_LOSS_*. */
#define LC_PW_ENUM_(CODE, NAME, Module, GradFn, WEIGHTS, PARAM, BATCHMEAN) LC_PW_##CODE,
typedef enum lc_pw_kind { LC_PW_LOSS_LIST(LC_PW_ENUM_) LC_PW_COUNT } lc_pw_kind;
#undef LC_PW_ENUM_

enum {
  LC_LOSS_HAS_WEIGHT = 1 << 8,
  LC_LOSS_HAS_POS_WEIGHT = 1 << 9,
  LC_LOSS_HAS_IGNORE = 1 << 11, /* class losses: i[1] = ignore_index (0-based) */
};

extern const lc_op_def lc_op_pw_loss[LC_PW_COUNT];

/* What the layers above generate from: one descriptor per row of the list. */
typedef enum lc_pw_rule { LC_PW_RULE_ANY, LC_PW_RULE_POSITIVE, LC_PW_RULE_NONNEG } lc_pw_rule;
typedef struct lc_pw_param {
  const char *name; /* NULL: no parameter */
  double def;       /* its default (a FLAG's: 0 or 1) */
  bool flag;        /* a bool rather than a number */
  lc_pw_rule rule;
} lc_pw_param;
typedef struct lc_pw_desc {
  const char *name;   /* "huber_loss" */
  const char *module; /* "HuberLoss" */
  bool weight, pos_weight, batchmean;
  lc_pw_param param;
} lc_pw_desc;
extern const lc_pw_desc lc_pw_descs[LC_PW_COUNT];

/* v satisfies the rule: the C entry points' check (POSITIVE and NONNEG want a finite v). */
static inline bool lc_pw_rule_ok(lc_pw_rule rule, double v) {
  switch (rule) {
  case LC_PW_RULE_POSITIVE: return v > 0 && v < INFINITY;
  case LC_PW_RULE_NONNEG: return v >= 0 && v < INFINITY;
  default: return true;
  }
}
/* The rule's words in messages: "a positive number", "a non-negative number"; "" for ANY. */
static inline const char *lc_pw_rule_text(lc_pw_rule rule) {
  switch (rule) {
  case LC_PW_RULE_POSITIVE: return "a positive number";
  case LC_PW_RULE_NONNEG: return "a non-negative number";
  default: return "";
  }
}

/* The option rules the loss kernels apply (one owner; src/ops/loss.c offers them to callers
 * that check options before any tensor exists, the Lua loss classes at construction): a
 * reduction code valid for the loss (batchmean: kl_div only), and label_smoothing in [0, 1]
 * (0 for nll_loss). LC_EARG with "<fn>: ..." otherwise. */
lc_status lc_loss_check_reduction(const char *fn, int64_t r, bool batchmean);
lc_status lc_loss_check_label_smoothing(const char *fn, bool nll, double eps);

/* Class losses. Inputs: input {N, C, d...} or {C}, target (class indices int64/int32, 0-based,
 * or probabilities of input's shape and dtype: cross_entropy only), then weight {C} if
 * LC_LOSS_HAS_WEIGHT. args: i[0] = lc_reduction, i[1] = ignore_index with
 * LC_LOSS_HAS_IGNORE, f[0] = label_smoothing. cross_entropy's out[1] is the float64 log-sum-exp
 * of each sample (saved for backward; callers drop it). */
extern const lc_op_def lc_op_cross_entropy;
extern const lc_op_def lc_op_nll_loss;

#endif /* LUCID_KERNELS_LOSS_H */
