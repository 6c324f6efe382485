/* nn_activation.c - Lua binding of the activation family (include/lucid_activation.h): the
 * tensor functions behind nn.functional (core._F), the tensor methods t:softmax(dim) and
 * t:log_softmax(dim), and the module constructors of lucid.nn_core.
 *
 * Functions take positional arguments and/or a trailing options table (lb_args); dims and
 * embedding indices are 1-based and converted here. Errors read
 * "lucid.nn.functional.<name>: ..." (methods: "lucid.<name>: ...").
 * Module constructors receive values already validated (and dims made 0-based) by
 * lua/lucid/nn/activation.lua. */
#include "binding.h"
#include "nn_binding.h"

#include "lucid_activation.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "nn.functional.<registered name>" into buf, or the bare name for a method closure. */
static const char *fname(lua_State *L, bool method, char *buf, size_t cap) {
  if (method) return LB_FN(L);
  snprintf(buf, cap, "nn.functional.%s", LB_FN(L));
  return buf;
}

/* Raises the core's message under fn, dropping the core's own "name: " prefix. */
static int core_error(lua_State *L, const char *fn) {
  const char *m = lc_last_error();
  const char *colon = strstr(m, ": ");
  if (colon) {
    bool word = colon > m;
    for (const char *p = m; p < colon; p++)
      if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) word = false;
    if (word) m = colon + 2;
  }
  return lb_error(L, fn, "%s", m);
}

/* The functions keep no C temporaries across calls that may raise: outputs live in slots. */
#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) core_error(L, fn);                                                        \
  } while (0)

static lc_tensor *float_input(lua_State *L, const char *fn, int pos, const char *name) {
  lc_tensor *t = lb_tensor_arg(L, fn, pos, name);
  if (!lc_dtype_is_float(lc_dtype_of(t)))
    lb_argerror(L, fn, pos, name, "expected a float32 or float64 tensor, got %s",
                lc_dtype_name(lc_dtype_of(t)));
  return t;
}

/* inplace = true is refused: lucid computes out of place (and autograd relies on it). */
static void no_inplace(lua_State *L, const char *fn, int pos) {
  if (lb_opt_bool_arg(L, fn, pos, "inplace", false))
    lb_argerror(L, fn, pos, "inplace",
                "in-place activations are not supported (lucid computes out of place): use "
                "inplace = false");
}

/* ---------------------------------------------------------------- elementwise activations */

enum { A_RELU6, A_LEAKY, A_ELU, A_GELU, A_SILU, A_MISH, A_SOFTPLUS, A_HARDTANH };

static int f_act(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  lc_tensor **out = NULL;
  lc_tensor *x = NULL;
  switch (LB_OP(L)) {
  case A_RELU6:
  case A_SILU:
  case A_MISH: {
    static const char *const P[] = {"input", "inplace"};
    lb_args_untabled(L, fn, P, 2);
    x = float_input(L, fn, 1, "input");
    no_inplace(L, fn, 2);
    out = lb_slot(L);
    int op = LB_OP(L);
    CORE(op == A_RELU6 ? lc_relu6(x, out) : op == A_SILU ? lc_silu(x, out) : lc_mish(x, out));
    break;
  }
  case A_LEAKY:
  case A_ELU: {
    bool leaky = LB_OP(L) == A_LEAKY;
    static const char *const PL[] = {"input", "negative_slope", "inplace"};
    static const char *const PE[] = {"input", "alpha", "inplace"};
    lb_args_untabled(L, fn, leaky ? PL : PE, 3);
    x = float_input(L, fn, 1, "input");
    double a = lb_opt_num_arg(L, fn, 2, leaky ? "negative_slope" : "alpha", leaky ? 0.01 : 1.0);
    no_inplace(L, fn, 3);
    out = lb_slot(L);
    CORE(leaky ? lc_leaky_relu(x, a, out) : lc_elu(x, a, out));
    break;
  }
  case A_GELU: {
    static const char *const P[] = {"input", "approximate"};
    lb_args_untabled(L, fn, P, 2);
    x = float_input(L, fn, 1, "input");
    lc_gelu_approx ap = LC_GELU_NONE;
    if (!lua_isnil(L, 2)) {
      const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
      if (s && strcmp(s, "tanh") == 0)
        ap = LC_GELU_TANH;
      else if (!s || strcmp(s, "none") != 0)
        lb_argerror(L, fn, 2, "approximate", "expected \"none\" or \"tanh\", got %s",
                    s ? s : lb_typename(L, 2));
    }
    out = lb_slot(L);
    CORE(lc_gelu(x, ap, out));
    break;
  }
  case A_SOFTPLUS: {
    static const char *const P[] = {"input", "beta", "threshold"};
    lb_args_untabled(L, fn, P, 3);
    x = float_input(L, fn, 1, "input");
    double beta = lb_opt_num_arg(L, fn, 2, "beta", 1.0);
    double th = lb_opt_num_arg(L, fn, 3, "threshold", 20.0);
    if (beta == 0 || beta != beta) lb_argerror(L, fn, 2, "beta", "expected a non-zero number, got %g", beta);
    out = lb_slot(L);
    CORE(lc_softplus(x, beta, th, out));
    break;
  }
  default: { /* hardtanh */
    static const char *const P[] = {"input", "min_val", "max_val", "inplace"};
    lb_args_untabled(L, fn, P, 4);
    x = float_input(L, fn, 1, "input");
    double lo = lb_opt_num_arg(L, fn, 2, "min_val", -1.0);
    double hi = lb_opt_num_arg(L, fn, 3, "max_val", 1.0);
    no_inplace(L, fn, 4);
    if (!(hi >= lo))
      lb_argerror(L, fn, 3, "max_val", "expected max_val >= min_val (%g), got %g", lo, hi);
    out = lb_slot(L);
    CORE(lc_hardtanh(x, lo, hi, out));
    break;
  }
  }
  return 1;
}

/* ---------------------------------------------------------------- softmax */

/* op bit 0: log_softmax; bit 1: the tensor method */
static int f_softmax(lua_State *L) {
  char buf[96];
  const int op = LB_OP(L);
  const char *fn = fname(L, op & 2, buf, sizeof buf);
  static const char *const P[] = {"input", "dim"};
  lb_args_untabled(L, fn, P, 2);
  lc_tensor *x = float_input(L, fn, 1, "input");
  if (lua_isnil(L, 2))
    lb_argerror(L, fn, 2, "dim", "a dim is required (e.g. -1 for the last dim), got nil");
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(x));
  lc_tensor **out = lb_slot(L);
  CORE((op & 1) ? lc_log_softmax(x, d, out) : lc_softmax(x, d, out));
  return 1;
}

/* ---------------------------------------------------------------- dropout */

static int f_dropout(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  static const char *const P[] = {"input", "p", "training", "inplace"};
  lb_args_untabled(L, fn, P, 4);
  lc_tensor *x = float_input(L, fn, 1, "input");
  double p = lb_opt_num_arg(L, fn, 2, "p", 0.5);
  if (!(p >= 0 && p <= 1))
    lb_argerror(L, fn, 2, "p", "dropout probability has to be between 0 and 1, got %g", p);
  bool training = lb_opt_bool_arg(L, fn, 3, "training", true);
  no_inplace(L, fn, 4);
  lc_tensor **out = lb_slot(L);
  CORE(lc_dropout(x, p, training, out));
  return 1;
}

/* ---------------------------------------------------------------- embedding */

static int f_embedding(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  static const char *const P[] = {"input", "weight", "padding_idx"};
  lb_args_untabled(L, fn, P, 3);
  lc_tensor *idx = lb_tensor_arg(L, fn, 1, "input");
  lc_dtype it = lc_dtype_of(idx);
  if (it != LC_INT64 && it != LC_INT32)
    lb_argerror(L, fn, 1, "input", "expected an int64 or int32 tensor of 1-based indices, got %s",
                lc_dtype_name(it));
  lc_tensor *w = float_input(L, fn, 2, "weight");
  if (lc_ndim(w) != 2)
    lb_argerror(L, fn, 2, "weight", "expected a 2-D {num_embeddings, embedding_dim} tensor, got "
                "%d dims", lc_ndim(w));
  int64_t n = lc_shape(w)[0];
  int64_t pad = LC_NO_PADDING;
  if (!lua_isnil(L, 3)) {
    int64_t v = lb_int_arg(L, fn, 3, "padding_idx");
    if (v == 0 || v > n || v < -n)
      lb_argerror(L, fn, 3, "padding_idx",
                  "%lld out of range for %lld embeddings (expected 1..%lld or -%lld..-1)",
                  (long long)v, (long long)n, (long long)n, (long long)n);
    pad = v > 0 ? v - 1 : v + n;
  }
  lc_tensor **out = lb_slot(L);
  /* indices stay 1-based: the kernel reads them with base 1 (no conversion copy) */
  if (lc_embedding_ex(idx, w, pad, 1, out) != LC_OK) {
    if (lc_last_status() == LC_EINDEX) {
      const char *m = strstr(lc_last_error(), ": ");
      lb_argerror(L, fn, 1, "input", "%s", m ? m + 2 : lc_last_error());
    }
    core_error(L, fn);
  }
  return 1;
}

/* ---------------------------------------------------------------- bilinear, linear */

static int f_bilinear(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  static const char *const P[] = {"input1", "input2", "weight", "bias"};
  lb_args_untabled(L, fn, P, 4);
  lc_tensor *x1 = float_input(L, fn, 1, "input1");
  lc_tensor *x2 = float_input(L, fn, 2, "input2");
  lc_tensor *w = float_input(L, fn, 3, "weight");
  lc_tensor *b = lua_isnil(L, 4) ? NULL : float_input(L, fn, 4, "bias");
  lc_tensor **out = lb_slot(L);
  CORE(lc_bilinear(x1, x2, w, b, out));
  return 1;
}

static int f_linear(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  static const char *const P[] = {"input", "weight", "bias"};
  lb_args_untabled(L, fn, P, 3);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  lc_tensor *w = lb_tensor_arg(L, fn, 2, "weight");
  lc_tensor *b = lua_isnil(L, 3) ? NULL : lb_tensor_arg(L, fn, 3, "bias");
  lc_tensor **out = lb_slot(L);
  CORE(lc_linear(x, w, b, out));
  return 1;
}

const lb_reg lb_activation_regs[] = {
    {"relu6", f_act, A_RELU6, LB_FUNC},
    {"leaky_relu", f_act, A_LEAKY, LB_FUNC},
    {"elu", f_act, A_ELU, LB_FUNC},
    {"gelu", f_act, A_GELU, LB_FUNC},
    {"silu", f_act, A_SILU, LB_FUNC},
    {"mish", f_act, A_MISH, LB_FUNC},
    {"softplus", f_act, A_SOFTPLUS, LB_FUNC},
    {"hardtanh", f_act, A_HARDTANH, LB_FUNC},
    {"softmax", f_softmax, 0, LB_FUNC},
    {"log_softmax", f_softmax, 1, LB_FUNC},
    {"softmax", f_softmax, 2, LB_METHOD},
    {"log_softmax", f_softmax, 3, LB_METHOD},
    {"dropout", f_dropout, 0, LB_FUNC},
    {"embedding", f_embedding, 0, LB_FUNC},
    {"bilinear", f_bilinear, 0, LB_FUNC},
    {"linear", f_linear, 0, LB_FUNC},
    {NULL, NULL, 0, 0}};

/* ---------------------------------------------------------------- module constructors */

/* Pushes the module made by the core call (raising under `name` on failure). */
#define MAKE(name, call)                                                                           \
  do {                                                                                             \
    lc_module **slot = nb_new_module_slot(L);                                                      \
    if ((call) != LC_OK) return nb_raise_core(L, name);                                            \
    nb_remember(L);                                                                                \
    return 1;                                                                                      \
  } while (0)

static int c_relu6(lua_State *L) { MAKE("nn.ReLU6", lc_nn_relu6(lua_toboolean(L, 1), slot)); }
static int c_silu(lua_State *L) { MAKE("nn.SiLU", lc_nn_silu(lua_toboolean(L, 1), slot)); }
static int c_mish(lua_State *L) { MAKE("nn.Mish", lc_nn_mish(lua_toboolean(L, 1), slot)); }
static int c_leaky_relu(lua_State *L) {
  double a = luaL_checknumber(L, 1);
  MAKE("nn.LeakyReLU", lc_nn_leaky_relu(a, lua_toboolean(L, 2), slot));
}
static int c_elu(lua_State *L) {
  double a = luaL_checknumber(L, 1);
  MAKE("nn.ELU", lc_nn_elu(a, lua_toboolean(L, 2), slot));
}
/* gelu(tanh): true for the tanh approximation */
static int c_gelu(lua_State *L) {
  MAKE("nn.GELU", lc_nn_gelu(lua_toboolean(L, 1) ? LC_GELU_TANH : LC_GELU_NONE, slot));
}
static int c_softplus(lua_State *L) {
  double b = luaL_checknumber(L, 1), t = luaL_checknumber(L, 2);
  MAKE("nn.Softplus", lc_nn_softplus(b, t, slot));
}
static int c_hardtanh(lua_State *L) {
  double lo = luaL_checknumber(L, 1), hi = luaL_checknumber(L, 2);
  MAKE("nn.Hardtanh", lc_nn_hardtanh(lo, hi, lua_toboolean(L, 3), slot));
}
/* softmax(dim) / log_softmax(dim): 0-based dim (negative from the end) */
static int c_softmax(lua_State *L) {
  int d = (int)luaL_checkinteger(L, 1);
  MAKE("nn.Softmax", lc_nn_softmax(d, slot));
}
static int c_log_softmax(lua_State *L) {
  int d = (int)luaL_checkinteger(L, 1);
  MAKE("nn.LogSoftmax", lc_nn_log_softmax(d, slot));
}
static int c_dropout(lua_State *L) {
  double p = luaL_checknumber(L, 1);
  MAKE("nn.Dropout", lc_nn_dropout(p, lua_toboolean(L, 2), slot));
}
/* embedding(n, d, padding_idx): padding_idx 0-based or nil; forward reads 1-based indices */
static int c_embedding(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), d = luaL_checkinteger(L, 2);
  int64_t pad = lua_isnoneornil(L, 3) ? LC_NO_PADDING : (int64_t)luaL_checkinteger(L, 3);
  MAKE("nn.Embedding", lc_nn_embedding_ex(n, d, pad, 1, slot));
}
/* unflatten(dim, sizes): 0-based dim, sizes a sequence of integers */
static int c_unflatten(lua_State *L) {
  int d = (int)luaL_checkinteger(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  if (n < 1 || n > LC_MAX_DIMS)
    return luaL_error(L, "nn.Unflatten: expected 1..%d sizes, got %d", LC_MAX_DIMS, (int)n);
  int64_t sizes[LC_MAX_DIMS];
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    sizes[i - 1] = (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  MAKE("nn.Unflatten", lc_nn_unflatten(d, (int)n, sizes, slot));
}

const luaL_Reg nb_activation_funcs[] = {
    {"relu6", c_relu6},         {"leaky_relu", c_leaky_relu}, {"elu", c_elu},
    {"gelu", c_gelu},           {"silu", c_silu},             {"mish", c_mish},
    {"softplus", c_softplus},   {"hardtanh", c_hardtanh},     {"softmax", c_softmax},
    {"log_softmax", c_log_softmax}, {"dropout", c_dropout},   {"embedding", c_embedding},
    {"unflatten", c_unflatten}, {NULL, NULL}};
