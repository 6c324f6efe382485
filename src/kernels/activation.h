/*
 * activation.h - private interface of the activation family's kernels (src/kernels/activation.c)
 * shared with the layers above: entry points (layer 4, src/ops/activation.c), module kinds
 * (src/nn/activation.c) and the binding (src/lua/nn_activation.c). Layer 2 of 8 (kernels).
 *
 * Every op here is one fused forward kernel with a one-pass backward next to it, for float32 and
 * float64. Outputs are fresh contiguous tensors.
 */
#ifndef LUCID_KERNELS_ACTIVATION_H
#define LUCID_KERNELS_ACTIVATION_H

#include "activation_list.h"
#include "op.h"

/* Elementwise activations (activation_list.h): op code LC_ACT_<CODE>, parameters in args.f in
 * row order (a CHOICE parameter as its 0-based position). */
#define LC_ACT_ENUM(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1) LC_ACT_##CODE,
typedef enum lc_act_code { LC_ACTIVATION_LIST(LC_ACT_ENUM) LC_ACT_COUNT } lc_act_code;
#undef LC_ACT_ENUM

/* Each saves its input. */
extern const lc_op_def lc_op_act[LC_ACT_COUNT];

/* What the layers above generate from: one descriptor per row of the list. */
typedef struct lc_act_param {
  const char *name;    /* NULL: no parameter */
  double def;          /* the default (a CHOICE's: 0, its first choice) */
  bool as_float;       /* printed with ".0" when integral */
  const char *choices; /* a CHOICE's choices, "a|b"; NULL for a number */
} lc_act_param;
typedef struct lc_act_desc {
  const char *name;   /* "leaky_relu" */
  const char *module; /* "LeakyReLU" */
  bool inplace;       /* takes PyTorch's inplace flag */
  int nparams;
  lc_act_param params[2];
} lc_act_desc;
extern const lc_act_desc lc_act_descs[LC_ACT_COUNT];

/* The parameter rules of activation `code` (p: its nparams values), the one copy the op and
 * the module constructors share; messages start with fn. */
lc_status lc_act_check(int code, const char *fn, const double *p);

/* i[0] = dim (0-based, already wrapped; 0 for a 0-dim input). Save their output. */
extern const lc_op_def lc_op_softmax, lc_op_log_softmax;

#endif /* LUCID_KERNELS_ACTIVATION_H */
