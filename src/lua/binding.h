/*
 * binding.h - private to src/lua: the tensor userdata, argument checking, error helpers.
 *
 * Layer 7 of 8 (lua, the binding): above the whole C API (lucid.h), below the interpreter.
 *
 * Every C function the module registers is a closure with the upvalues below, so type checks
 * compare metatables against an upvalue (no registry lookup) and errors know the function's
 * Lua name. Arguments use Lua's 1-based positions, dims and indices; args.c converts them to
 * the core's 0-based values and is the only place doing so.
 *
 * Error-path discipline: a Lua error longjmps, so C temporaries are never held in C locals
 * across a call that may raise. Tensors being built live in "slots" (tensor userdata pushed
 * before the core call, initially empty), which the collector frees if an error unwinds.
 */
#ifndef LUCID_LUA_BINDING_H
#define LUCID_LUA_BINDING_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lucid.h"
#include "lucid_lua.h"

#define LB_TENSOR_MT "lucid.Tensor"
#define LB_LIST_MT "lucid.TensorList" /* temporary holder of a C array of tensors */

/* Upvalues of every registered function. */
#define LB_UV_MT lua_upvalueindex(1)      /* the lucid.Tensor metatable */
#define LB_UV_STATE lua_upvalueindex(2)   /* lb_state userdata */
#define LB_UV_METHODS lua_upvalueindex(3) /* the methods table */
#define LB_UV_OP lua_upvalueindex(4)      /* an integer: op code for op families */
#define LB_UV_NAME lua_upvalueindex(5)    /* the function's name, e.g. "sum" */
#define LB_NUPVALUES 5

/* The userdata: exactly one reference, or NULL once closed (or while being built). tag is
 * &lb_tensor_tag: lb_ud recognises a tensor by its size and tag, which is cheaper than
 * fetching and comparing its metatable on every operand of every op. */
typedef struct lb_tensor {
  lc_tensor *t;
  const void *tag;
} lb_tensor;
extern const char lb_tensor_tag;

/* Per lua_State bookkeeping (a userdata in the registry and in every closure). */
typedef struct lb_state {
  int64_t next_gc; /* run a full collection when lc_bytes_in_use() passes this */
} lb_state;

struct lucid_embedded_lua {
  const char *module;
  const char *source;
  size_t len;
};
extern const struct lucid_embedded_lua lucid_embedded_lua[];

#define LB_GC_MIN_STEP ((int64_t)4 << 20) /* 4 MiB */

/* ---- tensor.c ---- */
/* The function name of the running closure (upvalue 5), e.g. "sum". */
#define LB_FN(L) lua_tostring((L), LB_UV_NAME)
#define LB_OP(L) ((int)lua_tointeger((L), LB_UV_OP))
/* Userdata at idx if it is a lucid tensor (fast: metatable vs upvalue), else NULL. */
lb_tensor *lb_ud(lua_State *L, int idx);
/* Pushes an empty tensor userdata and returns its slot; fill it with a core call. */
lc_tensor **lb_slot(lua_State *L);
/* Pushes a userdata holding a NEW reference to t (retains). */
void lb_push(lua_State *L, lc_tensor *t);
/* The state from the registry (NULL before luaopen_lucid_core); for the host API. */
lb_state *lb_state_of(lua_State *L);
/* Lua callbacks held by the core (src/lua/autograd.c): a registry reference, freed through
 * lb_luaref_free (a free_ud for the hook APIs); a removable-handle userdata pushed with its slot
 * returned; the lua_State of the backward started from Lua on this thread (NULL outside). */
typedef struct lb_luaref {
  lua_State *main; /* for the unref when the core drops it */
  int ref;
} lb_luaref;
lb_luaref *lb_luaref_new(lua_State *L, int idx); /* NULL when out of memory */
void lb_luaref_free(void *ref);
lc_hook_handle **lb_hook_handle_new(lua_State *L);
lua_State *lb_backward_state(void);

/* Counts tensor bytes for the collector; called by lb_slot. */
void lb_gc_check(lua_State *L, lb_state *st);
/* Pushes a new empty holder for a C array of tensors (released on collection). */
typedef struct lb_list {
  lc_tensor **ts; /* owned references (NULL entries allowed) */
  int n;
  bool free_array; /* ts was malloc'ed by the core: lc_free it */
} lb_list;
/* n > 0: the array is allocated here (n NULL entries); n == 0: the caller sets ts/n from a
 * core call (free_array = true). */
lb_list *lb_list_new(lua_State *L, int n);
/* Moves the list's tensors into a new Lua sequence pushed on the stack (NULL -> nil). */
void lb_list_to_table(lua_State *L, lb_list *l);
/* Registers metamethods; used by module.c with the upvalues on the stack. */
extern const luaL_Reg lb_tensor_meta[];
extern const luaL_Reg lb_tensor_methods[];
/* [] indexing shared by __index and __newindex: pushes a slot holding the selected view of t
 * for key at kidx. Returns false (pushing nothing) when the key is a mask/index tensor. */
bool lb_index_view(lua_State *L, const char *fn, lc_tensor *t, int kidx);

/* ---- args.c ---- */
/* Errors; never return. fn is the bare name ("sum"): messages read "lucid.sum: ...". */
int lb_error(lua_State *L, const char *fn, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int lb_argerror(lua_State *L, const char *fn, int pos, const char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Raises msg ("fn: ...") as lb_error does: "lucid." before it (unless it starts so) and the
 * position of the user's call (the first caller outside lucid's own Lua files) before that. */
int lb_raise_message(lua_State *L, const char *msg);
/* The text of a message lb_raise_message raised ("file:12: lucid.fn: ..." -> "fn: ..."); any
 * other message as it is. */
const char *lb_message_text(const char *msg);
/* raise(msg) (lua_CFunction, nn_core): lb_raise_message for lucid.args.fail. */
int lb_raise(lua_State *L);
/* The core's last message with its marked positions (LC_POS_D / LC_POS_I) shown 1-based: the
 * one place the binding turns the core's 0-based numbers into Lua's. Every binding file raises
 * core errors through it (lb_core_error does). Valid until the next call. */
const char *lb_last_error(void);
/* lb_last_error() without its leading C name ("lc_optim_check_options: ", "Embedding: "), for
 * a message raised under the binding's own function and argument. */
const char *lb_core_text(void);
/* "lucid.fn: <lb_last_error()>", without the core's leading name when it repeats ours: fn
 * ("autograd_grad: " under "autograd.grad"), fn's last name ("Linear: " under "nn.Linear",
 * "pop: " under "Sequential:pop"), or fn as the type before a module path
 * ("Sequential.fc2 (Linear): ..." under "Sequential": "fc2 (Linear): ..."). */
int lb_core_error(lua_State *L, const char *fn);
/* Like lb_core_error for a failed binary op of a and b (re-words broadcast errors 1-based). */
int lb_binary_error(lua_State *L, const char *fn, const lc_tensor *a, const lc_tensor *b);
/* Protects the metatable at the top of the stack: getmetatable on its objects returns its
 * __name ("lucid.Tensor") instead of the table, and setmetatable on them is refused, so a
 * script can neither reach the metamethods nor swap them under other scripts. */
void lb_seal_metatable(lua_State *L);
/* A type name for messages: "number", "string", "tensor", ... */
const char *lb_typename(lua_State *L, int idx);

/* Normalises a call's arguments: afterwards parameter i (1-based, names[i-1]) is at stack
 * index i for i = 1..n and the top is n. A trailing plain table (no metatable) holding a
 * string key, or an empty one standing beyond n, is an options table whose keys are parameter
 * names; an unknown key, a parameter given twice or too many arguments are errors. One parser
 * serves this, lb_args_untabled and Lua's lucid.args.collect (lb_collect_args). */
void lb_args(lua_State *L, const char *fn, const char *const *names, int n);
bool lb_is_options(lua_State *L, int idx);
/* lb_args for functions none of whose parameters takes a table (activations, losses, init,
 * their module constructors): a trailing empty table is an empty options table, F.relu6(x, {})
 * or nn.ReLU6({}). (lb_args cannot: for lucid.zeros({}) or t:view({}) an empty table is a
 * value.) A lone options table gives every argument by name in both: F.relu6{input = x}. */
void lb_args_untabled(lua_State *L, const char *fn, const char *const *names, int n);
/* collect_args(fname, params, extra, untabled, ...) (lua_CFunction, nn_core): the same parser
 * for lucid.args.collect; returns a table name -> value (extra: names accepted by name only). */
int lb_collect_args(lua_State *L);

/* Typed argument readers (pos is a stack index after lb_args = the parameter's position). */
lc_tensor *lb_tensor_arg(lua_State *L, const char *fn, int pos, const char *name);
lc_tensor *lb_opt_tensor_arg(lua_State *L, const char *fn, int pos, const char *name);
int64_t lb_int_arg(lua_State *L, const char *fn, int pos, const char *name);
int64_t lb_opt_int_arg(lua_State *L, const char *fn, int pos, const char *name, int64_t def);
double lb_num_arg(lua_State *L, const char *fn, int pos, const char *name);
double lb_opt_num_arg(lua_State *L, const char *fn, int pos, const char *name, double def);
bool lb_opt_bool_arg(lua_State *L, const char *fn, int pos, const char *name, bool def);
lc_dtype lb_dtype_arg(lua_State *L, const char *fn, int pos, const char *name);
/* Scalar operand: a number or a boolean (1/0). Returns false if neither. */
bool lb_scalar(lua_State *L, int idx, double *out);

/* A 1-based dim (1..ndim or -ndim..-1) -> 0-based. ndim 0 accepts 1 and -1 (-> 0). */
int lb_dim_arg(lua_State *L, const char *fn, int pos, const char *name, int ndim);
int lb_opt_dim_arg(lua_State *L, const char *fn, int pos, const char *name, int ndim, int def0);
/* A dim value d (already read) -> 0-based, checked against ndim. */
int lb_dim_value(lua_State *L, const char *fn, int pos, const char *name, int64_t d, int ndim);
/* A 1-based dim at pos given before any tensor is known (a module option: nn.Softmax(2)) ->
 * the 0-based (or negative, from the end) dim C takes; the tensor's range is checked by C at
 * forward time. */
int lb_dim_option(lua_State *L, const char *fn, int pos, const char *name);
/* The same for a row or position option (Embedding's padding_idx): 1-based or negative from the
 * end -> 0-based or negative; 0 is an error. The range is C's rule. */
int64_t lb_position_option(lua_State *L, const char *fn, int pos, const char *name);
/* Module paths between Lua (positional children 1-based: "1", "layers.3.bias") and C (0-based,
 * PyTorch's names): each pushes the converted path and returns it (valid while on the stack). */
const char *lb_path_in(lua_State *L, const lc_module *m, const char *path);
const char *lb_path_out(lua_State *L, const lc_module *m, const char *path);
/* shift_positions(name, delta) (lua_CFunction, nn_core): name with every all-digit segment
 * shifted by delta, the blind PyTorch <-> Lua renaming of a bare state dict (no module to walk);
 * nil when a segment would fall below 0. */
int lb_shift_positions(lua_State *L);
/* The 1-based position at stack index pos in a container of n children (negative from the end;
 * allow_end: n + 1, appending, too) -> 0-based; out of range raises "fn: index ...". */
int64_t lb_module_position(lua_State *L, const char *fn, int pos, int64_t n, bool allow_end);
/* The rule behind it, for any n things (lb_module_position: "modules"): an integer index at pos
 * in 1..n (allow_end: 1..n + 1) or -n..-1 -> 0-based; 0 is "1-based" error, n == 0 the
 * message empty ("the container is empty"). */
int64_t lb_position(lua_State *L, const char *fn, int pos, int64_t n, bool allow_end,
                    const char *things, const char *empty);
/* position(fname, i, n [, things, empty]) (lua_CFunction, nn_core): lb_position for Lua code
 * (lucid.data's datasets): the 1-based index i normalised (negative from the end). */
int lb_position_lua(lua_State *L);
/* The 1-based inclusive range i..j at stack indices pos, pos + 1 (negative from the end; j nil:
 * -1, the last) of a container of n children -> the 0-based half-open [start, end). */
void lb_module_range(lua_State *L, const char *fn, int pos, int64_t n, int64_t *start,
                     int64_t *end);
/* A number or a table of dims (nil -> 0 dims), converted to 0-based; repeats are C's rule. Returns
 * the count. */
int lb_dims_arg(lua_State *L, const char *fn, int pos, const char *name, int ndim, int *dims);
/* A 1-based index into a dim of `size` (1..size or -size..-1) -> 0-based. */
int64_t lb_index_value(lua_State *L, const char *fn, int pos, const char *name, int64_t v,
                       int64_t size, int dim0);
/* A shape as varargs of integers from `first` or as one table at `first`. -1 allowed when
 * allow_neg1. Returns the stack index just after the shape. */
int lb_shape_args(lua_State *L, const char *fn, int first, bool allow_neg1, int *ndim,
                  int64_t *shape);
/* A table of integer sizes at pos as C values, for C to check their rules (count, signs, -1):
 * at most LC_MAX_DIMS + 1 entries are read into sizes (room for that many), one more than any
 * rule allows, so C reports too many. Returns the count. */
int lb_sizes_arg(lua_State *L, const char *fn, int pos, const char *name, int64_t *sizes);
/* A shape given as one table (or a single number) at pos. */
void lb_shape_table(lua_State *L, const char *fn, int pos, const char *name, bool allow_neg1,
                    int *ndim, int64_t *shape);

/* Creation options {dtype =, requires_grad =} at idx (nil/none allowed); idx must be the last
 * argument. extra: NULL-terminated extra key names the caller reads itself. */
typedef struct lb_copts {
  lc_dtype dtype;
  bool has_dtype;
  bool requires_grad;
} lb_copts;
void lb_creation_opts(lua_State *L, const char *fn, int idx, lb_copts *o);
/* Applies requires_grad to the tensor in slot (raises on failure). */
void lb_apply_copts(lua_State *L, const char *fn, lc_tensor *t, const lb_copts *o);

/* The conversion of a tensor of 1-based values (int64/int32 idx) into a 0-based int64 copy:
 * a value < 1 has no 0-based image and is this conversion's error ("<what>[i, j] = 0 is
 * invalid: <kind> are 1-based (expected 1..size)"), unless it equals *keep (ignore_index),
 * which shifts with the others. The range above is the core's rule, checked by the caller's
 * op. Pushes a slot holding the copy and returns it. */
lc_tensor **lb_one_based_tensor(lua_State *L, const char *fn, int pos, const char *name,
                                const lc_tensor *idx, int64_t size, const char *what,
                                const char *kind, const int64_t *keep);
/* lb_one_based_tensor for an index tensor along dim0 of size `size`, the range checked by C's
 * lc_check_indices (release *slot and set it to NULL once the core call is done). */
lc_tensor **lb_index_tensor(lua_State *L, const char *fn, int pos, const char *name,
                           const lc_tensor *idx, int64_t size, int dim0);
/* Replaces the index tensor in slot by itself + 1 (0-based -> 1-based). */
void lb_one_based(lua_State *L, const char *fn, lc_tensor **slot);

/* ---- registration (module.c) ---- */
typedef struct lb_reg {
  const char *name;
  lua_CFunction fn;
  int op;
  int where; /* LB_METHOD | LB_FUNC */
} lb_reg;
enum { LB_METHOD = 1, LB_FUNC = 2, LB_BOTH = 3 };
extern const lb_reg lb_ops_regs[];      /* ops.c */
extern const lb_reg lb_create_regs[];   /* create.c */
extern const lb_reg lb_autograd_regs[]; /* autograd.c */
extern const lb_reg lb_rearrange_regs[]; /* ops_rearrange.c: tril, flip, roll, ... */
extern const lb_reg lb_scan_regs[];      /* ops_scan.c: cumsum, cumprod, logcumsumexp, diff */
extern const lb_reg lb_half_regs[];      /* ops_half.c: half, bfloat16 */
extern const lb_reg lb_linalg_regs[];    /* linalg.c: the lucid.linalg table */
extern const lb_reg lb_sort_regs[];      /* ops_sort.c: sort, topk, median, ... */
extern const lb_reg lb_misc_regs[];      /* ops_misc.c: meshgrid, unique, searchsorted, lerp, ... */
extern const lb_reg lb_advindex_regs[]; /* ops_advindex.c: einsum, scatter_reduce, index_put, ... */
/* Tensor functions of the nn families: LB_FUNC entries go into the table core._F (what
 * the Lua files under lua/lucid/nn/ build nn.functional from), LB_METHOD entries become tensor
 * methods. */
extern const lb_reg lb_activation_regs[]; /* nn_activation.c */
extern const lb_reg lb_dropout_regs[];    /* nn_dropout.c */
extern const lb_reg lb_embedding_regs[];  /* nn_embedding.c */
extern const lb_reg lb_loss_regs[];       /* nn_loss.c */
extern const lb_reg lb_conv_regs[];       /* nn_conv.c */
extern const lb_reg lb_norm_regs[];       /* nn_norm.c */
extern const lb_reg lb_optim_regs[];      /* optim.c */
extern const lb_reg lb_linear_regs[];     /* nn_linear.c */
extern const lb_reg lb_interpolate_regs[]; /* nn_interpolate.c */
extern const lb_reg lb_attention_regs[];   /* nn_attention.c */
extern const lb_reg lb_rnn_regs[];        /* nn_rnn.c: core._rnn, core._rnn_cell */
extern const lb_reg lb_onnx_regs[];       /* onnx.c: core._onnx (lucid.onnx) */
extern const lb_reg lb_io_regs[];         /* io.c: LB_FUNC entries go into core._io */

#endif /* LUCID_LUA_BINDING_H */
