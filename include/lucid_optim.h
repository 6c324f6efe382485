/*
 * lucid_optim.h - optimizers in C: SGD, Adam, AdamW, RMSprop, Adagrad.
 *
 * Builds on lucid.h and lucid_nn.h (no Lua). Conventions are lucid.h's: 0-based, every
 * fallible function returns an lc_status with a message in lc_last_error(), outputs are
 * written to the last argument and owned by the caller, arguments are borrowed.
 *
 * An optimizer (lc_optimizer) holds
 *   - a kind (lc_optim_kind),
 *   - parameter groups: each an ordered list of parameters (float32/float64 leaf tensors that
 *     require grad, one reference each) with its own options (lc_optim_options),
 *   - per-parameter state: a step count and the kind's buffers (see lc_optim_state_name).
 * Parameters are numbered 0, 1, ... across all groups in order (group 0's first, then group
 * 1's, ...), as in PyTorch's state_dict; that flat index addresses per-parameter state. A
 * tensor may belong to one group only, once.
 *
 * lc_optimizer_step() updates every parameter that has a .grad (parameters without a grad are
 * skipped, their state untouched) with exactly the formulas of PyTorch 1.13's torch.optim
 * (single-tensor code path), in one fused loop per parameter computed in the parameter's
 * dtype, with grad mode off. Each updated parameter's version counter is bumped, so a graph
 * that saved it reports the in-place change at backward. State is created on a parameter's
 * first step (Adagrad's when the parameter is added, as in PyTorch):
 *   SGD      "momentum_buffer" (only when momentum != 0; set to the first step's gradient)
 *   Adam(W)  "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (only with amsgrad); step count
 *   RMSprop  "square_avg", "momentum_buffer" (momentum > 0), "grad_avg" (centered); step
 *   Adagrad  "sum" (filled with initial_accumulator_value); step count
 * A buffer that an option needs but is missing (amsgrad switched on later, state loaded from
 * another configuration) is created with zeros when needed.
 *
 * Not thread-safe: do not use one optimizer from two threads at once.
 */
#ifndef LUCID_OPTIM_H
#define LUCID_OPTIM_H

#include "lucid_core.h"
#include "lucid_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lc_optim_kind {
  LC_OPTIM_SGD = 0,
  LC_OPTIM_ADAM,
  LC_OPTIM_ADAMW,
  LC_OPTIM_RMSPROP,
  LC_OPTIM_ADAGRAD,
  LC_OPTIM_KIND_COUNT
} lc_optim_kind;

/* The options of one parameter group: the union of every kind's options; each kind reads
 * only its own (listed per field) and ignores the rest. */
typedef struct lc_optim_options {
  double lr;           /* all; >= 0 (SGD has no default: NAN until set) */
  double weight_decay; /* all; >= 0 (AdamW: decoupled decay, param *= 1 - lr * weight_decay) */
  bool maximize;       /* all: ascend instead of descend */
  double momentum;     /* SGD, RMSprop; >= 0 */
  double dampening;    /* SGD */
  bool nesterov;       /* SGD: needs momentum > 0 and dampening == 0 */
  double beta1, beta2; /* Adam, AdamW: betas, each in [0, 1) */
  double eps;          /* Adam, AdamW, RMSprop, Adagrad; >= 0 */
  bool amsgrad;        /* Adam, AdamW */
  double alpha;        /* RMSprop: smoothing constant; >= 0 */
  bool centered;       /* RMSprop */
  double lr_decay;     /* Adagrad; >= 0 */
  double initial_accumulator_value; /* Adagrad; >= 0 */
} lc_optim_options;

/* ---------------------------------------------------------------- kind descriptors
 *
 * What each kind takes and keeps, as data: the one source for the Lua binding's constructors
 * (their positional order, defaults and option types) and its state names, for
 * lc_optim_default_options, and for the value rules (lr >= 0, betas in [0, 1), ...) that
 * lc_optim_check_options applies. */

typedef enum lc_optim_hparam_type {
  LC_OPTIM_NUMBER = 0, /* a double */
  LC_OPTIM_BOOL,       /* a bool (0 / 1 through lc_optim_get/set_hparam) */
  LC_OPTIM_PAIR        /* two doubles (betas: beta1, beta2) */
} lc_optim_hparam_type;

/* The value rule of a hyper-parameter, applied by lc_optim_check_options with its message
 * (for a pair, to each value; NaN fails both rules). */
typedef enum lc_optim_rule {
  LC_OPTIM_ANY = 0, /* no rule */
  LC_OPTIM_NONNEG,  /* >= 0: "invalid eps: expected a number >= 0, got -1" */
  LC_OPTIM_UNIT     /* in [0, 1): "invalid beta1 (betas, first value): expected 0 <= beta1 < 1,
                     * got 1" */
} lc_optim_rule;

/* One hyper-parameter of a kind. */
typedef struct lc_optim_hparam {
  const char *name; /* PyTorch's: "lr", "betas", "maximize", ... */
  lc_optim_hparam_type type;
  bool keyword_only; /* by name only (PyTorch's keyword-only `maximize`) */
  bool required;     /* no default: must be given (SGD's lr; def is NAN) */
  double def[2];     /* the default (PyTorch 1.13's); def[1]: a pair's second value */
  size_t offset[2];  /* offsetof the value(s) in lc_optim_options */
  lc_optim_rule rule;
  const char *part[2]; /* a pair's values as messages name them ("beta1", "beta2"); else NULL */
} lc_optim_hparam;

/* One kind: hparams in PyTorch's constructor order (the positional ones first, then the
 * keyword-only ones), with their value rules, and its per-parameter state. The one rule that
 * ties two options together, SGD's nesterov (momentum > 0 and dampening == 0), is
 * lc_optim_check_options' own. */
typedef struct lc_optim_kind_desc {
  const char *name; /* "SGD", ... */
  int num_hparams;
  const lc_optim_hparam *hparams;
  bool has_step; /* keeps a per-parameter step count */
  int num_state; /* state buffers, by slot */
  const char *const *state_names;
} lc_optim_kind_desc;

/* The descriptor of kind (static storage), or NULL for an invalid kind. Kinds are
 * 0 .. LC_OPTIM_KIND_COUNT - 1. */
const lc_optim_kind_desc *lc_optim_kind_info(lc_optim_kind kind);
/* Hyper-parameter k (0 .. num_hparams - 1) of kind read from / written into o: v[0] (a bool
 * as 0 or 1), v[1] too for LC_OPTIM_PAIR (get sets it to 0 otherwise; set ignores it). */
lc_status lc_optim_get_hparam(lc_optim_kind kind, const lc_optim_options *o, int k, double v[2]);
lc_status lc_optim_set_hparam(lc_optim_kind kind, lc_optim_options *o, int k, const double v[2]);

/* A rule as text: ">= 0", "in [0, 1)"; NULL for LC_OPTIM_ANY (or an invalid rule). */
const char *lc_optim_rule_text(lc_optim_rule rule);

/* "SGD", "Adam", "AdamW", "RMSprop", "Adagrad" (NULL for an invalid kind). */
const char *lc_optim_kind_name(lc_optim_kind kind);
lc_status lc_optim_kind_from_name(const char *name, lc_optim_kind *out);
/* The descriptor's defaults for kind (PyTorch 1.13's; SGD: lr = NAN, which
 * lc_optim_check_options rejects: torch.optim.SGD requires lr). Adam: lr 1e-3, betas
 * (0.9, 0.999), eps 1e-8; AdamW the same with weight_decay 1e-2; RMSprop: lr 1e-2, alpha 0.99,
 * eps 1e-8; Adagrad: lr 1e-2, eps 1e-10; everything else 0 / false. */
void lc_optim_default_options(lc_optim_kind kind, lc_optim_options *out);
/* Checks the options kind reads by the descriptor's rules, in its order, then the nesterov rule
 * (LC_EARG naming the option, expected and got): the one place the value rules are applied.
 * The message starts "lc_optim_check_options: ". */
lc_status lc_optim_check_options(lc_optim_kind kind, const lc_optim_options *opts);
/* Checks that t can be optimized: a float32 or float64 leaf tensor that requires grad
 * (LC_EDTYPE / LC_EARG otherwise). The message names t as entry `index` (0-based, a marked
 * position, LC_POS_I) of the list `what` (NULL: "params"), e.g. "params[2] does not require
 * grad (...)"; index < 0 names it `what` alone. */
lc_status lc_optim_check_param(const lc_tensor *t, const char *what, int64_t index);
/* Whether kind keeps a per-parameter step count (all but SGD). */
bool lc_optim_has_step(lc_optim_kind kind);
/* The names of kind's state buffers, k = 0 .. lc_optim_num_state_buffers(kind) - 1 (NULL
 * beyond); the same as the descriptor's state_names. */
int lc_optim_num_state_buffers(lc_optim_kind kind);
const char *lc_optim_state_name(lc_optim_kind kind, int k);

/* ---------------------------------------------------------------- lifetime and groups */

typedef struct lc_optimizer lc_optimizer;

/* An optimizer of kind with one group holding params[0..n-1] (borrowed; each is retained;
 * n may be 0) and options opts (copied; checked). Each parameter must be a float32 or float64
 * leaf tensor that requires grad, and appear once. */
lc_status lc_optimizer_new(lc_optim_kind kind, int64_t n, lc_tensor *const *params,
                           const lc_optim_options *opts, lc_optimizer **out);
/* The same over the parameters of module m (and its descendants), in
 * lc_module_named_parameters order. */
lc_status lc_optimizer_new_for_module(lc_optim_kind kind, const lc_module *m,
                                      const lc_optim_options *opts, lc_optimizer **out);
void lc_optimizer_free(lc_optimizer *o); /* NULL-safe; releases the parameters and state */
/* Appends a group (same checks; a parameter already in another group is an LC_EARG error).
 * Nothing changes on failure. */
lc_status lc_optimizer_add_param_group(lc_optimizer *o, int64_t n, lc_tensor *const *params,
                                       const lc_optim_options *opts);
/* The rule "each tensor once per optimizer", as data for callers that number parameters their
 * own way: *index receives the smallest i such that params[i] repeats an earlier entry
 * (*earlier = that entry's position, *group = -1) or is already in group *group of o
 * (*earlier = -1); *index = -1 when there is none. o may be NULL (a first group). Fails only
 * for lack of memory. */
lc_status lc_optimizer_find_duplicate(const lc_optimizer *o, int64_t n, lc_tensor *const *params,
                                      int64_t *index, int64_t *earlier, int64_t *group);
/* The same rule with its message (LC_EARG; LC_OK when there is none), positions 0-based and
 * marked: "params[0] and params[2] are the same tensor", "params[1] is already in
 * param_groups[0] (some parameters appear in more than one group)", the list named `what`
 * (NULL: "params"). lc_optimizer_new / add_param_group raise it as "<function>: params[...]". */
lc_status lc_optimizer_check_duplicates(const lc_optimizer *o, int64_t n, lc_tensor *const *params,
                                        const char *what);

lc_optim_kind lc_optimizer_kind(const lc_optimizer *o);
int64_t lc_optimizer_num_groups(const lc_optimizer *o);
int64_t lc_optimizer_num_params(const lc_optimizer *o); /* over all groups */
/* Group g holds the flat parameters [*first, *first + *count). */
lc_status lc_optimizer_group_range(const lc_optimizer *o, int64_t g, int64_t *first,
                                   int64_t *count);
/* Flat parameter i (borrowed) or NULL when i is out of range. */
lc_tensor *lc_optimizer_param(const lc_optimizer *o, int64_t i);
/* Options of group g: read, and replace (checked; nothing changes on failure). */
lc_status lc_optimizer_get_options(const lc_optimizer *o, int64_t g, lc_optim_options *out);
lc_status lc_optimizer_set_options(lc_optimizer *o, int64_t g, const lc_optim_options *opts);
/* Shorthands for the learning rate of group g (what a scheduler changes). */
lc_status lc_optimizer_get_lr(const lc_optimizer *o, int64_t g, double *out);
lc_status lc_optimizer_set_lr(lc_optimizer *o, int64_t g, double lr);

/* ---------------------------------------------------------------- stepping */

/* One update of every parameter that has a gradient (see the top of this file). On failure
 * (out of memory) parameters before the failing one are already updated. */
lc_status lc_optimizer_step(lc_optimizer *o);
/* Clears (set_to_none, PyTorch 2's and lucid's Lua default) or zeroes every parameter's .grad. */
lc_status lc_optimizer_zero_grad(lc_optimizer *o, bool set_to_none);

/* ---------------------------------------------------------------- state (checkpoints) */

/* Whether flat parameter i has state (it has taken a step, or state was set). */
bool lc_optimizer_has_state(const lc_optimizer *o, int64_t i);
/* Step count of parameter i (0 without state). */
lc_status lc_optimizer_get_step(const lc_optimizer *o, int64_t i, int64_t *out);
/* Sets the step count (>= 0); gives parameter i state if it had none. */
lc_status lc_optimizer_set_step(lc_optimizer *o, int64_t i, int64_t step);
/* *out receives a new reference to parameter i's buffer `name` (the live tensor: writing
 * into it changes the optimizer's state), or NULL when it has none. An unknown name for the
 * kind is an LC_EARG error. */
lc_status lc_optimizer_get_state(const lc_optimizer *o, int64_t i, const char *name,
                                 lc_tensor **out);
/* Copies value (any dtype, cast to the parameter's; its shape must equal the parameter's)
 * into parameter i's buffer `name`, creating it, and gives the parameter state. value NULL
 * removes the buffer. */
lc_status lc_optimizer_set_state(lc_optimizer *o, int64_t i, const char *name,
                                 const lc_tensor *value);
/* Check, changing nothing, what lc_optimizer_set_state / lc_optimizer_set_step check: that
 * `name` is one of the kind's state buffers and value (unless NULL) has parameter i's shape
 * (LC_EARG / LC_ESHAPE); that the kind keeps a step count and step >= 0 (LC_EARG). `what`
 * names parameter i's state in the message, for callers that number parameters their own
 * way: "state[2]" gives "state[2].exp_avg has shape {3}, but the parameter has shape {2}";
 * NULL names parameter i (0-based). */
lc_status lc_optimizer_check_state(const lc_optimizer *o, int64_t i, const char *name,
                                   const lc_tensor *value, const char *what);
lc_status lc_optimizer_check_step(const lc_optimizer *o, int64_t i, int64_t step, const char *what);
/* Drops all of parameter i's state (buffers, step count); the next step starts afresh. */
lc_status lc_optimizer_clear_state(lc_optimizer *o, int64_t i);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_OPTIM_H */
