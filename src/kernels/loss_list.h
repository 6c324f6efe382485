/*
 * loss_list.h - the pointwise losses, one row each. Layer 2 (kernels).
 *
 * This list is the one place a pointwise loss (input and target of one shape, a loss per
 * element, then the reduction) is declared. It generates the op codes LC_PW_<CODE> and the op
 * definitions (src/kernels/loss.c), the public C entry points lc_<name> (src/ops/loss.c) and
 * the Lua rows: nn.functional.<name> (src/lua/nn_loss.c) and the class nn.<Module>
 * (lua/lucid/nn/loss.lua, from the rows the binding hands over). Adding a pointwise loss touches
 * three files: a row here, its per-element loss and derivatives in src/kernels/loss.c (the
 * cases of pw_value and pw_grad) and its prototype in include/lucid_loss.h.
 *
 * X(CODE, name, Module, GradFn, WEIGHTS, PARAM, BATCHMEAN)
 *   CODE       suffix of the op code LC_PW_<CODE>
 *   name       the C function lc_<name>, the op's name (its messages) and nn.functional.<name>
 *   Module     the loss class nn.<Module> (PyTorch's class name)
 *   GradFn     grad_fn name of its result
 *   WEIGHTS    the optional weight tensors it takes (each NULL / nil or broadcasting to input):
 *              NONE; W: weight; W_PW: weight and pos_weight
 *   PARAM      its one scalar parameter (args.f[0]) or NOPARAM:
 *              NUM(name, default, RULE): a double, RULE ANY, POSITIVE (> 0, finite) or
 *                NONNEG (>= 0, finite), checked by lc_<name> for every caller;
 *              FLAG(name, default): a bool (f[0] = 1 or 0)
 *   BATCHMEAN  1: takes LC_REDUCTION_BATCHMEAN ("batchmean") too
 * The parameters come in a fixed order, PyTorch's for these rows: in C (input, target,
 * [weight,] [pos_weight,] reduction, [param,] out); in Lua and the class constructor
 * ([weight,] reduction, [pos_weight,] [param]) after input and target. A loss whose PyTorch
 * signature orders them otherwise, or has more parameters, needs a column more.
 */
#ifndef LUCID_KERNELS_LOSS_LIST_H
#define LUCID_KERNELS_LOSS_LIST_H

#define LC_PW_LOSS_LIST(X)                                                                         \
  X(MSE, mse_loss, "MSELoss", "MseLossBackward", NONE, NOPARAM, 0)                                 \
  X(L1, l1_loss, "L1Loss", "L1LossBackward", NONE, NOPARAM, 0)                                     \
  X(HUBER, huber_loss, "HuberLoss", "HuberLossBackward", NONE, NUM(delta, 1.0, POSITIVE), 0)       \
  X(SMOOTH_L1, smooth_l1_loss, "SmoothL1Loss", "SmoothL1LossBackward", NONE,                       \
    NUM(beta, 1.0, NONNEG), 0)                                                                     \
  X(BCE, binary_cross_entropy, "BCELoss", "BinaryCrossEntropyBackward", W, NOPARAM, 0)             \
  X(BCE_LOGITS, binary_cross_entropy_with_logits, "BCEWithLogitsLoss",                             \
    "BinaryCrossEntropyWithLogitsBackward", W_PW, NOPARAM, 0)                                      \
  X(KL_DIV, kl_div, "KLDivLoss", "KlDivBackward", NONE, FLAG(log_target, 0), 1)

/* Column accessors: LC_PW_W_<field>(W) for WEIGHTS, LC_PW_P_<field>(P) for PARAM (the paste
 * joins the prefix to P's first token, selecting the accessor, as activation_list.h does). */
#define LC_PW_W_WEIGHT(W) LC_PW_W_WEIGHT_##W
#define LC_PW_W_WEIGHT_NONE 0
#define LC_PW_W_WEIGHT_W 1
#define LC_PW_W_WEIGHT_W_PW 1
#define LC_PW_W_POS_WEIGHT(W) LC_PW_W_POS_WEIGHT_##W
#define LC_PW_W_POS_WEIGHT_NONE 0
#define LC_PW_W_POS_WEIGHT_W 0
#define LC_PW_W_POS_WEIGHT_W_PW 1
#define LC_PW_P_NAME(P) LC_PW_P_NAME_##P
#define LC_PW_P_NAME_NOPARAM NULL
#define LC_PW_P_NAME_NUM(n, d, r) #n
#define LC_PW_P_NAME_FLAG(n, d) #n
#define LC_PW_P_DEFAULT(P) LC_PW_P_DEFAULT_##P
#define LC_PW_P_DEFAULT_NOPARAM 0
#define LC_PW_P_DEFAULT_NUM(n, d, r) (d)
#define LC_PW_P_DEFAULT_FLAG(n, d) (d)
#define LC_PW_P_FLAG(P) LC_PW_P_FLAG_##P
#define LC_PW_P_FLAG_NOPARAM 0
#define LC_PW_P_FLAG_NUM(n, d, r) 0
#define LC_PW_P_FLAG_FLAG(n, d) 1
#define LC_PW_P_RULE(P) LC_PW_P_RULE_##P
#define LC_PW_P_RULE_NOPARAM LC_PW_RULE_ANY
#define LC_PW_P_RULE_NUM(n, d, r) LC_PW_RULE_##r
#define LC_PW_P_RULE_FLAG(n, d) LC_PW_RULE_ANY

#endif /* LUCID_KERNELS_LOSS_LIST_H */
