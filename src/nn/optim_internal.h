/*
 * optim_internal.h - private to src/nn/optim*.c: the optimizer's layout and its update loops.
 */
#ifndef LUCID_OPTIM_INTERNAL_H
#define LUCID_OPTIM_INTERNAL_H

#include "../core/core.h"
#include "lucid_optim.h"

/* State buffer slots by kind (names in optim.c):
 *   SGD      0 momentum_buffer
 *   Adam(W)  0 exp_avg, 1 exp_avg_sq, 2 max_exp_avg_sq
 *   RMSprop  0 square_avg, 1 momentum_buffer, 2 grad_avg
 *   Adagrad  0 sum */
#define LC_OPTIM_MAX_BUFS 3

typedef struct lc_optim_param {
  lc_tensor *param; /* owned */
  int64_t group;
  bool has_state;
  int64_t step;
  lc_tensor *buf[LC_OPTIM_MAX_BUFS]; /* owned, contiguous, param's shape and dtype; or NULL */
} lc_optim_param;

typedef struct lc_optim_group {
  int64_t first, count; /* flat parameter range */
  lc_optim_options opts;
} lc_optim_group;

struct lc_optimizer {
  lc_optim_kind kind;
  int64_t n, cap; /* parameters */
  lc_optim_param *p;
  int64_t ng, gcap; /* groups */
  lc_optim_group *groups;
};

/* One parameter's update: contiguous operands of one dtype, numel elements each. */
typedef struct lc_optim_kctx {
  lc_optim_kind kind;
  lc_dtype dtype;
  const lc_optim_options *opts;
  void *p;                    /* parameter data (updated) */
  const void *g;              /* gradient */
  void *b[LC_OPTIM_MAX_BUFS]; /* state buffers by slot (NULL when absent) */
  bool init;                  /* SGD: momentum buffer just created: it takes the direction */
  double step_size, bc2_sqrt; /* Adam(W): lr / (1 - beta1^t), sqrt(1 - beta2^t) */
  double clr;                 /* Adagrad: lr / (1 + (t - 1) lr_decay) */
} lc_optim_kctx;

/* Runs the update over numel elements (split over threads when large). */
void lc_optim_run(const lc_optim_kctx *c, int64_t numel);

#endif /* LUCID_OPTIM_INTERNAL_H */
