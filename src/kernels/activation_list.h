/*
 * activation_list.h - the elementwise activations, one row each. Layer 2 (kernels).
 *
 * This list is the one place an elementwise activation is declared. It generates the op codes
 * and op definitions (src/kernels/activation.c), the public C entry points lc_<name> and the
 * module constructors lc_nn_<name> (src/ops/activation.c, src/nn/activation.c), and the Lua
 * rows: nn.functional.<name> and the nn.<Module> class (src/lua/nn_activation.c, read by
 * lua/lucid/nn/activation.lua). Adding an activation touches three files: a row here, its
 * forward and backward loops in src/kernels/activation.c (ACT_FWD_<CODE> / ACT_BWD_<CODE>, and
 * any argument rule in lc_act_check), and its prototypes in include/lucid_activation.h.
 *
 * X(CODE, name, Module, GradFn, cost, INPLACE, NPARAMS, P0, P1)
 *   CODE     suffix of the op code LC_ACT_<CODE>
 *   name     the C function lc_<name>, the module constructor lc_nn_<name> and kind
 *            lc_kind_<name>, the Lua function nn.functional.<name>
 *   Module   the module's type name (PyTorch's class name)
 *   GradFn   grad_fn name of its outputs
 *   cost     relative cost per element (1: a compare; 16: a transcendental), for the thread split
 *   INPLACE  1: the module and the function take PyTorch's `inplace` flag (remembered by the
 *            module and printed when set; lucid computes out of place, so the function refuses
 *            true); 0: no such flag
 *   NPARAMS  0, 1 or 2 parameters P0, P1 (the rest NOPARAM), each one of
 *            NUM(name, default, as_float): a number; as_float prints 1 as "1.0" (PyTorch's
 *              float defaults) rather than "1" (its integer ones)
 *            CHOICE(name, ctype, "a|b"): a string among the choices (the first is the default),
 *              passed to C as its 0-based position in the C type ctype
 * The C entry point takes the parameters in row order, then `inplace` for the module when
 * INPLACE is 1; parameter rules (e.g. Hardtanh's max_val >= min_val) are checked once, by
 * lc_act_check in src/kernels/activation.c, for the function and the module alike.
 */
#ifndef LUCID_KERNELS_ACTIVATION_LIST_H
#define LUCID_KERNELS_ACTIVATION_LIST_H

#define LC_ACTIVATION_LIST(X)                                                                      \
  X(RELU6, relu6, "ReLU6", "HardtanhBackward", 1, 1, 0, NOPARAM, NOPARAM)                          \
  X(LEAKY_RELU, leaky_relu, "LeakyReLU", "LeakyReluBackward", 1, 1, 1,                             \
    NUM(negative_slope, 0.01, 1), NOPARAM)                                                         \
  X(ELU, elu, "ELU", "EluBackward", 16, 1, 1, NUM(alpha, 1.0, 1), NOPARAM)                         \
  X(GELU, gelu, "GELU", "GeluBackward", 16, 0, 1, CHOICE(approximate, lc_gelu_approx, "none|tanh"), \
    NOPARAM)                                                                                       \
  X(SILU, silu, "SiLU", "SiluBackward", 16, 1, 0, NOPARAM, NOPARAM)                                \
  X(MISH, mish, "Mish", "MishBackward", 16, 1, 0, NOPARAM, NOPARAM)                                \
  X(SOFTPLUS, softplus, "Softplus", "SoftplusBackward", 16, 0, 2, NUM(beta, 1, 0),                 \
    NUM(threshold, 20, 0))                                                                         \
  X(HARDTANH, hardtanh, "Hardtanh", "HardtanhBackward", 1, 1, 2, NUM(min_val, -1.0, 1),            \
    NUM(max_val, 1.0, 1))                                                                          \
  X(HARDSWISH, hardswish, "Hardswish", "HardswishBackward", 1, 1, 0, NOPARAM, NOPARAM)

/* Parameter accessors: LC_ACT_P_<field>(P) for a P of the list (NUM(...), CHOICE(...) or
 * NOPARAM). The paste joins the prefix to P's first token, selecting the accessor. */
#define LC_ACT_P_NAME(P) LC_ACT_P_NAME_##P
#define LC_ACT_P_NAME_NUM(n, d, f) #n
#define LC_ACT_P_NAME_CHOICE(n, t, c) #n
#define LC_ACT_P_NAME_NOPARAM NULL
#define LC_ACT_P_DEFAULT(P) LC_ACT_P_DEFAULT_##P
#define LC_ACT_P_DEFAULT_NUM(n, d, f) (d)
#define LC_ACT_P_DEFAULT_CHOICE(n, t, c) 0
#define LC_ACT_P_DEFAULT_NOPARAM 0
#define LC_ACT_P_AS_FLOAT(P) LC_ACT_P_AS_FLOAT_##P
#define LC_ACT_P_AS_FLOAT_NUM(n, d, f) (f)
#define LC_ACT_P_AS_FLOAT_CHOICE(n, t, c) 0
#define LC_ACT_P_AS_FLOAT_NOPARAM 0
#define LC_ACT_P_CHOICES(P) LC_ACT_P_CHOICES_##P
#define LC_ACT_P_CHOICES_NUM(n, d, f) NULL
#define LC_ACT_P_CHOICES_CHOICE(n, t, c) c
#define LC_ACT_P_CHOICES_NOPARAM NULL
#define LC_ACT_P_TYPE(P) LC_ACT_P_TYPE_##P
#define LC_ACT_P_TYPE_NUM(n, d, f) double
#define LC_ACT_P_TYPE_CHOICE(n, t, c) t
#define LC_ACT_P_TYPE_NOPARAM void

#endif /* LUCID_KERNELS_ACTIVATION_LIST_H */
