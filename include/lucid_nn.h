/*
 * lucid_nn.h - lucid's module system in C: layers, containers and the module protocol.
 *
 * Builds on lucid_core.h only (no Lua). Conventions are lucid.h's: 0-based, every fallible function
 * returns an lc_status with a message in lc_last_error(), outputs are written to the last
 * argument and owned by the caller, arguments are borrowed.
 *
 * A module (lc_module) is refcounted (lc_module_retain / lc_module_release) and holds
 *   - a kind: a const vtable (lc_module_kind) naming it ("Linear") and giving its forward,
 *   - an ordered list of named parameters (leaf tensors that require grad),
 *   - an ordered list of named buffers (tensors saved in the state dict, e.g. running stats),
 *   - an ordered list of named children (modules; a container holds one reference to each),
 *   - a training flag (true on creation).
 * Names are unique within one module across its parameters, buffers and children, non-empty and
 * free of ".", so a dotted path ("fc1.weight", "layer_sequence.1.bias") names one tensor.
 * A module can not contain itself (adding an ancestor as a child is an LC_EARG error), so the
 * tree is acyclic and plain refcounting frees it. The same module or tensor may appear twice
 * (shared layers, tied weights): parameters() and modules() list each object once, at its first
 * path; state_dict() lists every path, as PyTorch does.
 *
 * Children of Sequential and ModuleList are addressed by position too. There a name made only
 * of digits is a position name. The decision (docs/nn.md, "Positional names"):
 *   - in C, positional children are named by their 0-based positions "0", "1", ..., exactly as
 *     PyTorch names them, so C state-dict keys are PyTorch's ("0.weight", "layers.2.bias") and
 *     C printing and messages show "(0): Linear", "Sequential.0 (Linear)";
 *   - a binding whose users count from 1 shows them 1-based ("1", "layers.3.bias"): the Lua
 *     binding converts every path that crosses it with lc_module_rebase_path and renders messages
 *     and printed forms with lc_render_positions (positional segments are marked positions);
 *   - a checkpoint holds the names of whoever wrote it: files written by lucid.save from Lua hold
 *     Lua's 1-based names, as every lucid checkpoint saved so far does, and load unchanged; a C
 *     host that wants to read such a file maps its keys with lc_module_rebase_path(m, key, 1, 0).
 * After insert/remove every digit name is renumbered to its child's new position, so names stay
 * in step with positions; a given digit name must equal its position. Any other name (e.g.
 * "fc1") is kept through mutations.
 *
 * Forward errors name the path from the module the caller called down to the failing one:
 *   "Sequential.fc2 (Linear): expected input with 3 features (last dimension), got 4: input
 *    shape {1, 4}"
 * and a leaf called directly reports "Linear: expected input ...".
 *
 * Modules are not thread-safe: do not mutate one module tree from two threads at once.
 */
#ifndef LUCID_NN_H
#define LUCID_NN_H

#include "lucid_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lc_module lc_module;

/* A value a kind exposes as a read-only attribute ("in_features", "start_dim", ...). */
typedef enum lc_attr_type {
  LC_ATTR_INT, /* a count or size */
  LC_ATTR_DIM, /* a 0-based dimension (negative counts from the end): bindings convert it */
  LC_ATTR_BOOL,
  LC_ATTR_FLOAT
} lc_attr_type;

typedef struct lc_attr {
  lc_attr_type type;
  int64_t i; /* INT, DIM */
  bool b;    /* BOOL */
  double f;  /* FLOAT */
} lc_attr;

enum {
  /* Children are addressed by position and digit names are renumbered (Sequential,
   * ModuleList). */
  LC_KIND_INDEXED = 1 << 0,
  /* Calling forward is an error (ModuleDict). */
  LC_KIND_NOT_CALLABLE = 1 << 1,
  /* A container: forward only chains children (printing shows children only). */
  LC_KIND_CONTAINER = 1 << 2,
};

/* The vtable of a kind of module. Kinds are const statics; new kinds (in C, or bridging another
 * language as the Lua binding does) fill one in and create modules with lc_module_new. */
typedef struct lc_module_kind {
  const char *name; /* "Linear": the default type name */
  unsigned flags;   /* LC_KIND_* */
  /* Computes *out from x (borrowed). Errors: set a message without any path; the caller adds
   * it. May be NULL for LC_KIND_NOT_CALLABLE kinds. */
  lc_status (*forward)(lc_module *m, const lc_tensor *x, lc_tensor **out);
  /* The text between the parentheses when printing ("in_features=4, ..."), malloc'ed into
   * *out, or *out = NULL for none. May be NULL. */
  lc_status (*extra_repr)(const lc_module *m, char **out);
  /* Re-initialises the module's own parameters (not its children's). May be NULL. */
  lc_status (*reset_parameters)(lc_module *m);
  /* Looks up a read-only attribute of the kind's state; false when it has none by that name.
   * May be NULL. */
  bool (*attr)(const lc_module *m, const char *name, lc_attr *out);
  /* Frees the kind's state (lc_module_state) when the module dies. May be NULL. */
  void (*destroy)(lc_module *m);
  /* Optional: forward followed by max(0, .) in one pass. Sequential and ModuleList run a child
   * of such a kind followed by a ReLU child through it (BatchNorm + ReLU: one pass over the
   * activations instead of two, and one tensor fewer kept for backward). May be NULL. */
  lc_status (*forward_relu)(lc_module *m, const lc_tensor *x, lc_tensor **out);
} lc_module_kind;

/* ---------------------------------------------------------------- lifetime and identity */

/* A module of `kind` with `state` (owned by the module from now on, even when this fails:
 * then kind->destroy is called on it) and a type name (copied; NULL means kind->name). */
lc_status lc_module_new(const lc_module_kind *kind, void *state, const char *type_name,
                        lc_module **out);
lc_module *lc_module_retain(lc_module *m); /* returns m; NULL-safe */
void lc_module_release(lc_module *m);      /* NULL-safe */
const lc_module_kind *lc_module_kind_of(const lc_module *m);
const char *lc_module_type_name(const lc_module *m); /* "Linear", or a Lua class name */
void *lc_module_state(const lc_module *m);
bool lc_module_attr(const lc_module *m, const char *name, lc_attr *out);

/* ---------------------------------------------------------------- built-in kinds */

extern const lc_module_kind lc_kind_linear, lc_kind_identity, lc_kind_flatten, lc_kind_unflatten,
    lc_kind_relu, lc_kind_tanh, lc_kind_sigmoid, lc_kind_sequential, lc_kind_module_list,
    lc_kind_module_dict;

/* y = x W^T + b with weight {out, in} and bias {out} (float32), initialised as PyTorch does:
 * U(-1/sqrt(in), 1/sqrt(in)) for both (kaiming_uniform with a = sqrt(5)). Attributes:
 * in_features, out_features (INT); without bias there is no "bias" parameter. Input: any
 * shape whose last dim is in, of the weight's dtype (one fused op: lc_linear). */
lc_status lc_nn_linear(int64_t in_features, int64_t out_features, bool bias, lc_module **out);
lc_status lc_nn_identity(lc_module **out);
/* Flattens dims start_dim..end_dim (0-based, inclusive, negative from the end); PyTorch's
 * defaults are start_dim = 1, end_dim = -1. Attributes start_dim, end_dim (DIM). */
lc_status lc_nn_flatten(int start_dim, int end_dim, lc_module **out);
/* Splits dim (0-based, negative from the end) into sizes at forward (lc_unflatten's rules and
 * messages, the sizes named unflattened_size); sizes are copied and checked here: 1..LC_MAX_DIMS
 * entries, each >= 0 or -1, at most one -1. Prints "Unflatten(dim=1, unflattened_size=(2, 5))";
 * attribute dim (DIM). */
lc_status lc_nn_unflatten(int dim, int nsizes, const int64_t *sizes, lc_module **out);
lc_status lc_nn_relu(lc_module **out);
lc_status lc_nn_tanh(lc_module **out);
lc_status lc_nn_sigmoid(lc_module **out);
/* Containers of n modules (borrowed; each is retained). names may be NULL (all positional)
 * or hold n entries, each a name or NULL (positional). Forward of Sequential and ModuleList
 * applies the children in order (an empty one returns its input); ModuleDict is not callable. */
lc_status lc_nn_sequential(int64_t n, lc_module *const *mods, const char *const *names,
                           lc_module **out);
lc_status lc_nn_module_list(int64_t n, lc_module *const *mods, lc_module **out);
lc_status lc_nn_module_dict(int64_t n, lc_module *const *mods, const char *const *names,
                            lc_module **out);

/* ---------------------------------------------------------------- forward */

/* Runs m on x. Errors carry the path (see the top of this file). */
lc_status lc_module_forward(lc_module *m, const lc_tensor *x, lc_tensor **out);
/* For container kinds: runs child i of m on x; on failure prefixes the child's name (and type,
 * for the innermost failing module) to the message, so paths compose as errors bubble up. */
lc_status lc_module_forward_child(lc_module *m, int64_t i, const lc_tensor *x, lc_tensor **out);

/* Module hooks (PyTorch's register_forward_pre_hook, register_forward_hook and
 * register_full_backward_hook), run by lc_module_forward and by containers running a child:
 * - pre(ud, m, input, &replace) before forward; a replacement (owned) becomes the input;
 * - fwd(ud, m, input, output, &replace) after it; a replacement becomes the output;
 * - bwd(ud, m, grad_input, grad_output, &replace) once the gradient of m's input is known
 *   (grad_input NULL when the input does not require grad); a replacement (grad_input's shape)
 *   flows on instead. The module's output and input are wrapped in identity nodes
 *   ("BackwardHookFunctionBackward") for that, as PyTorch does.
 * Each returns a handle (lc_hook_handle_remove / lc_hook_handle_free, lucid_core.h); free_ud
 * (may be NULL) releases ud when the hook is removed or the module dies. A failing hook stops
 * the forward (or backward) with its status. A hooked child is never fused with the ReLU
 * after it. */
typedef lc_status (*lc_forward_pre_hook)(void *ud, lc_module *m, const lc_tensor *input,
                                         lc_tensor **replace);
typedef lc_status (*lc_forward_hook)(void *ud, lc_module *m, const lc_tensor *input,
                                     const lc_tensor *output, lc_tensor **replace);
typedef lc_status (*lc_backward_hook)(void *ud, lc_module *m, const lc_tensor *grad_input,
                                      const lc_tensor *grad_output, lc_tensor **replace);
lc_status lc_module_register_forward_pre_hook(lc_module *m, lc_forward_pre_hook fn, void *ud,
                                              void (*free_ud)(void *), lc_hook_handle **handle);
lc_status lc_module_register_forward_hook(lc_module *m, lc_forward_hook fn, void *ud,
                                          void (*free_ud)(void *), lc_hook_handle **handle);
lc_status lc_module_register_full_backward_hook(lc_module *m, lc_backward_hook fn, void *ud,
                                                void (*free_ud)(void *), lc_hook_handle **handle);
bool lc_module_has_hooks(const lc_module *m);

/* ---------------------------------------------------------------- own entries */

/* Counts and borrowed entries (0 <= i < count); names are borrowed too. */
int64_t lc_module_num_children(const lc_module *m);
lc_module *lc_module_child(const lc_module *m, int64_t i);
const char *lc_module_child_name(const lc_module *m, int64_t i);
int64_t lc_module_num_own_parameters(const lc_module *m);
lc_tensor *lc_module_own_parameter(const lc_module *m, int64_t i);
const char *lc_module_own_parameter_name(const lc_module *m, int64_t i);
int64_t lc_module_num_own_buffers(const lc_module *m);
lc_tensor *lc_module_own_buffer(const lc_module *m, int64_t i);
const char *lc_module_own_buffer_name(const lc_module *m, int64_t i);
/* Index of the child / parameter / buffer named `name`, or -1. */
int64_t lc_module_find_child(const lc_module *m, const char *name);
int64_t lc_module_find_parameter(const lc_module *m, const char *name);
int64_t lc_module_find_buffer(const lc_module *m, const char *name);

/* Checks a new entry name: non-empty, no ".", not used by a parameter, buffer or child of m
 * (LC_EARG naming the problem). `what` prefixes the message ("add_module"). */
lc_status lc_module_check_name(const lc_module *m, const char *name, const char *what);

/* Registers a parameter: t must be a leaf tensor with requires_grad set (retained). Replaces
 * the parameter of the same name if there is one (its shape may change). */
lc_status lc_module_register_parameter(lc_module *m, const char *name, lc_tensor *t);
/* Registers (or replaces) a buffer; any tensor (retained). */
lc_status lc_module_register_buffer(lc_module *m, const char *name, lc_tensor *t);
/* Appends a child under a new name (NULL: the next position name, for indexed kinds). */
lc_status lc_module_add_module(lc_module *m, const char *name, lc_module *child);
/* Adds a child or replaces the child of the same name in place (keeps its position). */
lc_status lc_module_set_child(lc_module *m, const char *name, lc_module *child);
/* Removes the parameter, buffer or child called name; LC_EINDEX if there is none. */
lc_status lc_module_remove(lc_module *m, const char *name);

/* Position-based edits (any kind; indexed kinds renumber digit names afterwards). */
/* Inserts child before position i (0 <= i <= count) under name (NULL: positional). */
lc_status lc_module_insert(lc_module *m, int64_t i, const char *name, lc_module *child);
/* Replaces child i, keeping its name. */
lc_status lc_module_replace(lc_module *m, int64_t i, lc_module *child);
/* Removes child i; *out (may be NULL) receives it (an owned reference). */
lc_status lc_module_pop(lc_module *m, int64_t i, lc_module **out);
/* A new module of m's kind (Sequential / ModuleList / ModuleDict) holding children
 * [start, end) of m (the same module objects, with their names). */
lc_status lc_module_slice(const lc_module *m, int64_t start, int64_t end, lc_module **out);

/* ---------------------------------------------------------------- the protocol */

/* Ordered, owned lists returned by the recursive queries. Free with the matching _free. */
typedef struct lc_named_tensors {
  int64_t n;
  char **names;
  lc_tensor **tensors; /* owned references */
} lc_named_tensors;
typedef struct lc_named_modules {
  int64_t n;
  char **names;
  lc_module **modules; /* owned references */
} lc_named_modules;
void lc_named_tensors_free(lc_named_tensors *l);
void lc_named_modules_free(lc_named_modules *l);

/* Parameters of m and (when recurse) its descendants, depth first in registration order, each
 * tensor once, named by dotted path ("fc1.weight"). */
lc_status lc_module_named_parameters(const lc_module *m, bool recurse, lc_named_tensors *out);
lc_status lc_module_named_buffers(const lc_module *m, bool recurse, lc_named_tensors *out);
/* Direct children (each once). */
lc_status lc_module_named_children(const lc_module *m, lc_named_modules *out);
/* m itself (name "") and every descendant, pre-order, each module once. */
lc_status lc_module_named_modules(const lc_module *m, lc_named_modules *out);
/* Total elements of the (distinct) parameters. */
int64_t lc_module_num_parameters(const lc_module *m);

/* Sets training = mode on m and all descendants. */
void lc_module_train(lc_module *m, bool mode);
bool lc_module_is_training(const lc_module *m);
/* Clears (set_to_none) or zeroes the .grad of every parameter. */
lc_status lc_module_zero_grad(lc_module *m, bool set_to_none);
/* Calls fn on every descendant and then on m (children first, as PyTorch's apply); stops at
 * the first failure and returns it. */
lc_status lc_module_apply(lc_module *m, lc_status (*fn)(lc_module *mod, void *ctx), void *ctx);
/* Converts every floating parameter and buffer of m and its descendants to dtype (float32 or
 * float64): each is replaced by a new leaf holding the converted values (parameters keep
 * requires_grad; gradients are dropped; integer buffers are kept). Tensors shared between
 * modules stay shared. Build optimizers after converting, as with PyTorch. */
lc_status lc_module_to_dtype(lc_module *m, lc_dtype dtype);
/* Calls kind->reset_parameters on m and all descendants. */
lc_status lc_module_reset_parameters(lc_module *m);

/* Every parameter and buffer under its dotted path, in order (shared tensors under each of
 * their paths). The tensors are detached aliases: they share data with the module's tensors
 * but carry no grad. */
lc_status lc_module_state_dict(const lc_module *m, lc_named_tensors *out);
/* Copies sd's tensors into m's parameters and buffers (values cast to their dtype) with grad
 * mode off. Checks everything before copying anything: a shape mismatch is an LC_ESHAPE error
 * naming the key; with strict, missing or unexpected keys are an LC_EARG error listing them.
 * missing / unexpected (either may be NULL) receive the keys of m absent from sd and the keys
 * of sd m does not have (names only; tensors NULL). */
lc_status lc_module_load_state_dict(lc_module *m, const lc_named_tensors *sd, bool strict,
                                    lc_named_tensors *missing, lc_named_tensors *unexpected);

/* `path` (a dotted path relative to m, with positional segments written in from_base) with every
 * segment that names a position of an indexed container written in to_base (0: C's and
 * PyTorch's names, 1: Lua's): lc_module_rebase_path(seq, "2.weight", 1, 0) is "1.weight". The
 * walk follows the children the path names; segments below a missing child and names that
 * are not positions are copied. *out: malloc'ed, free with lc_free. */
lc_status lc_module_rebase_path(const lc_module *m, const char *path, int from_base, int to_base,
                                char **out);

/* The printed tree, malloc'ed (free with lc_free):
 *   Sequential(
 *     (fc1): Linear(in_features=5, out_features=3, bias=true)
 *     (act): Tanh()
 *   ) */
lc_status lc_module_to_string(const lc_module *m, char **out);
/* The same with the dims and positions the kinds print shown in base (0 or 1; see
 * lc_render_positions): bindings whose users count from 1 pass 1. */
lc_status lc_module_to_string_based(const lc_module *m, int base, char **out);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_NN_H */
