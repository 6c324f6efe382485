/* nn_loss.c - Lua binding of the loss family (include/lucid_loss.h) and of nn.init / nn.utils
 * (include/lucid_init.h): tensor functions registered into core._F, under the names Lua users
 * see in messages ("nn.functional.cross_entropy", "nn.init.xavier_uniform_",
 * "nn.utils.clip_grad_norm_"). lua/lucid/nn/loss.lua, initializers.lua and utils.lua build
 * nn.functional, the loss classes, nn.init and nn.utils from them.
 *
 * Class targets are the one 1-based conversion here: values 1..C (or equal to ignore_index)
 * become a 0-based int64 copy, and the first bad value is reported with its 1-based position.
 * The loss modules are Lua classes (two inputs): nb_loss_funcs only hands the pointwise rows to
 * lua/lucid/nn/loss.lua, which builds their classes. */
#include "binding.h"
#include "lucid_init.h"
#include "lucid_loss.h"
#include "nn_binding.h"

#include "../ops/loss.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                     \
  } while (0)

static const char *const RED_ALL = "mean, sum or none";

static lc_reduction reduction_arg(lua_State *L, const char *fn, int pos, bool batchmean) {
  if (lua_isnoneornil(L, pos)) return LC_REDUCTION_MEAN;
  if (lua_type(L, pos) != LUA_TSTRING)
    lb_argerror(L, fn, pos, "reduction", "expected a string (%s%s), got %s", RED_ALL,
                batchmean ? " or batchmean" : "", lb_typename(L, pos));
  const char *s = lua_tostring(L, pos);
  lc_reduction r;
  if (lc_reduction_from_name(s, &r) != LC_OK || (r == LC_REDUCTION_BATCHMEAN && !batchmean))
    lb_argerror(L, fn, pos, "reduction", "unknown reduction '%s' (expected %s)", s,
                batchmean ? "mean, sum, none or batchmean" : RED_ALL);
  return r;
}

/* An optional tensor: nil or a tensor (anything else is an error). */
static lc_tensor *opt_tensor(lua_State *L, const char *fn, int pos, const char *name) {
  if (lua_isnoneornil(L, pos)) return NULL;
  return lb_tensor_arg(L, fn, pos, name);
}

/* ---------------------------------------------------------------- pointwise losses */

/* The rows of src/kernels/loss_list.h, bound generically from their descriptors:
 * nn.functional.<name>(input, target, [weight,] reduction, [pos_weight,] [param]), positional
 * and/or with a trailing options table. */

/* The Lua parameter names of row d in order; the positions of each (0: the row has none). */
typedef struct pw_sig {
  const char *names[6];
  int n, weight, reduction, pos_weight, param;
} pw_sig;

/* Appends a parameter; returns its (1-based) stack position. */
static int pw_add(pw_sig *g, const char *pname) {
  g->names[g->n++] = pname;
  return g->n;
}

static void pw_signature(const lc_pw_desc *d, pw_sig *g) {
  memset(g, 0, sizeof *g);
  pw_add(g, "input");
  pw_add(g, "target");
  if (d->weight) g->weight = pw_add(g, "weight");
  g->reduction = pw_add(g, "reduction");
  if (d->pos_weight) g->pos_weight = pw_add(g, "pos_weight");
  if (d->param.name) g->param = pw_add(g, d->param.name);
}

/* Row d's options: weight, reduction, pos_weight and its parameter, which sit at stack index
 * first + (their position in pw_sig - 3): 3 in the functional form (after input and target),
 * 1 for the constructor's check. Messages name those stack positions. */
typedef struct pw_opts {
  lc_tensor *weight, *pos_weight;
  lc_reduction reduction;
  double p;
} pw_opts;

static pw_opts read_pw_options(lua_State *L, const char *fn, const lc_pw_desc *d, const pw_sig *g,
                               int first) {
  int k = first - 3;
  pw_opts o = {0};
  o.weight = g->weight ? opt_tensor(L, fn, g->weight + k, "weight") : NULL;
  o.reduction = reduction_arg(L, fn, g->reduction + k, d->batchmean);
  o.pos_weight = g->pos_weight ? opt_tensor(L, fn, g->pos_weight + k, "pos_weight") : NULL;
  if (g->param && d->param.flag)
    o.p = lb_opt_bool_arg(L, fn, g->param + k, d->param.name, d->param.def != 0) ? 1 : 0;
  else if (g->param)
    o.p = lb_opt_num_arg(L, fn, g->param + k, d->param.name, d->param.def); /* C checks its rule */
  return o;
}

static int f_pw(lua_State *L) {
  const char *fn = LB_FN(L);
  const int kind = LB_OP(L);
  const lc_pw_desc *d = &lc_pw_descs[kind];
  pw_sig g;
  pw_signature(d, &g);
  lb_args_untabled(L, fn, g.names, g.n);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input"), *y = lb_tensor_arg(L, fn, 2, "target");
  pw_opts o = read_pw_options(L, fn, d, &g, 3);
  lc_tensor **out = lb_slot(L);
  CORE(lc_pw_loss_apply(kind, x, y, o.weight, o.pos_weight, o.reduction, o.p, out));
  return 1;
}

/* nn_core.pointwise_losses(): the rows, for lua/lucid/nn/loss.lua to build its classes from:
 * {{name = "huber_loss", module = "HuberLoss", params = {"reduction", "delta"}}, ...} in list
 * order (params: the constructor's, after input and target; their rules are
 * check_loss_options'). */
static int c_pw_losses(lua_State *L) {
  lua_createtable(L, LC_PW_COUNT, 0);
  for (int k = 0; k < LC_PW_COUNT; k++) {
    const lc_pw_desc *d = &lc_pw_descs[k];
    pw_sig g;
    pw_signature(d, &g);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, d->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, d->module);
    lua_setfield(L, -2, "module");
    lua_createtable(L, g.n - 2, 0);
    for (int i = 2; i < g.n; i++) {
      lua_pushstring(L, g.names[i]);
      lua_rawseti(L, -2, i - 1);
    }
    lua_setfield(L, -2, "params");
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

/* ---------------------------------------------------------------- class losses */

/* Class indices (int64/int32, 1-based: 1..C, or equal to ignore_index when has_ign) -> a slot
 * (pushed) holding a 0-based int64 copy; the range is the kernel's rule. Any other target
 * (probabilities, a wrong dtype) is returned as is, pushing nothing: C judges it. */
static lc_tensor *class_targets(lua_State *L, const char *fn, int pos, lc_tensor *t,
                                const lc_tensor *x, bool has_ign, int64_t ign) {
  lc_dtype dt = lc_dtype_of(t);
  if (dt != LC_INT64 && dt != LC_INT32) return t;
  int nd = lc_ndim(x); /* the class count, for the conversion's message only */
  int64_t C = nd >= 2 ? lc_shape(x)[1] : nd == 1 ? lc_shape(x)[0] : 0;
  return *lb_one_based_tensor(L, fn, pos, "target", t, C, "target", "class indices",
                              has_ign ? &ign : NULL);
}

/* A class loss's options weight, ignore_index, reduction, label_smoothing (cross_entropy only)
 * at stack indices first.. (3 in the functional form, 1 for the constructor's check); *ign:
 * the 1-based ignore_index as given (o.ignore_index is 0-based). */
static lc_class_loss_opts read_class_options(lua_State *L, const char *fn, bool ce, int first,
                                             int64_t *ign) {
  lc_class_loss_opts o = {0};
  o.weight = opt_tensor(L, fn, first, "weight");
  o.has_ignore_index = !lua_isnoneornil(L, first + 1);
  *ign = o.has_ignore_index ? lb_int_arg(L, fn, first + 1, "ignore_index") : 0;
  if (*ign == INT64_MIN) /* no 0-based image */
    lb_argerror(L, fn, first + 1, "ignore_index", "expected an integer above -2^63, got %lld",
                (long long)*ign);
  o.ignore_index = *ign - 1;
  o.reduction = reduction_arg(L, fn, first + 2, false);
  if (ce) o.label_smoothing = lb_opt_num_arg(L, fn, first + 3, "label_smoothing", 0.0);
  return o;
}

/* cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)
 * nll_loss(input, target, weight, ignore_index, reduction) */
static int f_class(lua_State *L) {
  const char *fn = LB_FN(L);
  bool ce = LB_OP(L) == 0;
  static const char *const P[] = {"input",        "target",    "weight",
                                  "ignore_index", "reduction", "label_smoothing"};
  lb_args_untabled(L, fn, P, ce ? 6 : 5);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input"), *t = lb_tensor_arg(L, fn, 2, "target");
  int64_t ign;
  lc_class_loss_opts o = read_class_options(L, fn, ce, 3, &ign); /* C checks label_smoothing */
  int top = lua_gettop(L);
  lc_tensor *tt = class_targets(L, fn, 2, t, x, o.has_ignore_index, ign);
  lc_tensor **out = lb_slot(L);
  lc_status st = ce ? lc_cross_entropy(x, tt, &o, out) : lc_nll_loss(x, tt, &o, out);
  if (st) lb_core_error(L, fn);
  if (lua_gettop(L) > top + 1) { /* drop the converted targets early */
    lb_tensor *u = lb_ud(L, top + 1);
    lc_release(u->t);
    u->t = NULL;
  }
  return 1;
}

/* ---------------------------------------------------------------- nn.init */

static lc_tensor *init_tensor(lua_State *L, const char *fn, const char *const *P, int n) {
  lb_args_untabled(L, fn, P, n);
  return lb_tensor_arg(L, fn, 1, "tensor");
}

/* Returns the tensor argument itself (the same userdata), as PyTorch's init functions do. */
static int ret_self(lua_State *L) {
  lua_pushvalue(L, 1);
  return 1;
}

static int f_init_uniform(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"tensor", "a", "b"};
  lc_tensor *t = init_tensor(L, fn, P, 3);
  CORE(lc_init_uniform_(t, lb_opt_num_arg(L, fn, 2, "a", 0), lb_opt_num_arg(L, fn, 3, "b", 1)));
  return ret_self(L);
}

static int f_init_normal(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"tensor", "mean", "std"};
  lc_tensor *t = init_tensor(L, fn, P, 3);
  CORE(lc_init_normal_(t, lb_opt_num_arg(L, fn, 2, "mean", 0), lb_opt_num_arg(L, fn, 3, "std", 1)));
  return ret_self(L);
}

static int f_init_constant(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"tensor", "val"};
  lc_tensor *t = init_tensor(L, fn, P, 2);
  double v = 0;
  if (!lb_scalar(L, 2, &v))
    lb_argerror(L, fn, 2, "val", "expected a number, got %s", lb_typename(L, 2));
  CORE(lc_init_constant_(t, v));
  return ret_self(L);
}

/* zeros_ (op 0), ones_ (1), eye_ (2) */
static int f_init_fixed(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"tensor"};
  lc_tensor *t = init_tensor(L, fn, P, 1);
  switch (LB_OP(L)) {
  case 0: CORE(lc_init_zeros_(t)); break;
  case 1: CORE(lc_init_ones_(t)); break;
  default: CORE(lc_init_eye_(t)); break;
  }
  return ret_self(L);
}

/* xavier_uniform_ (op 0), xavier_normal_ (1), orthogonal_ (2): (tensor, gain = 1) */
static int f_init_gain(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"tensor", "gain"};
  lc_tensor *t = init_tensor(L, fn, P, 2);
  double g = lb_opt_num_arg(L, fn, 2, "gain", 1.0);
  switch (LB_OP(L)) {
  case 0: CORE(lc_init_xavier_uniform_(t, g)); break;
  case 1: CORE(lc_init_xavier_normal_(t, g)); break;
  default: CORE(lc_init_orthogonal_(t, g)); break;
  }
  return ret_self(L);
}

static const char *nonlinearity_arg(lua_State *L, const char *fn, int pos, const char *def) {
  if (lua_isnoneornil(L, pos)) return def;
  if (lua_type(L, pos) != LUA_TSTRING)
    lb_argerror(L, fn, pos, "nonlinearity", "expected a string such as \"relu\", got %s",
                lb_typename(L, pos));
  return lua_tostring(L, pos);
}

/* kaiming_uniform_ (op 0), kaiming_normal_ (1): (tensor, a = 0, mode = "fan_in",
 * nonlinearity = "leaky_relu") */
static int f_init_kaiming(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"tensor", "a", "mode", "nonlinearity"};
  lc_tensor *t = init_tensor(L, fn, P, 4);
  double a = lb_opt_num_arg(L, fn, 2, "a", 0.0);
  lc_fan_mode mode = LC_FAN_IN;
  if (!lua_isnoneornil(L, 3)) {
    const char *m = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : NULL;
    if (m && strcmp(m, "fan_in") == 0)
      mode = LC_FAN_IN;
    else if (m && strcmp(m, "fan_out") == 0)
      mode = LC_FAN_OUT;
    else if (m)
      lb_argerror(L, fn, 3, "mode", "mode '%s' not supported, expected 'fan_in' or 'fan_out'", m);
    else
      lb_argerror(L, fn, 3, "mode", "expected 'fan_in' or 'fan_out', got %s", lb_typename(L, 3));
  }
  const char *nl = nonlinearity_arg(L, fn, 4, "leaky_relu");
  CORE(LB_OP(L) == 0 ? lc_init_kaiming_uniform_(t, a, mode, nl)
                     : lc_init_kaiming_normal_(t, a, mode, nl));
  return ret_self(L);
}

/* calculate_gain(nonlinearity, param) -> number */
static int f_calculate_gain(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"nonlinearity", "param"};
  lb_args_untabled(L, fn, P, 2);
  if (lua_isnoneornil(L, 1))
    lb_argerror(L, fn, 1, "nonlinearity", "expected a string such as \"relu\", got nil");
  const char *nl = nonlinearity_arg(L, fn, 1, NULL);
  bool has = !lua_isnoneornil(L, 2);
  if (has && lua_type(L, 2) != LUA_TNUMBER)
    lb_argerror(L, fn, 2, "param", "negative_slope must be a number, got %s", lb_typename(L, 2));
  double g = 0;
  CORE(lc_init_calculate_gain(nl, has, has ? lua_tonumber(L, 2) : 0, &g));
  lua_pushnumber(L, g);
  return 1;
}

/* calculate_fan_in_and_fan_out(tensor) -> fan_in, fan_out */
static int f_calculate_fan(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"tensor"};
  lc_tensor *t = init_tensor(L, fn, P, 1);
  int64_t fi = 0, fo = 0;
  CORE(lc_init_calculate_fan(t, &fi, &fo));
  lua_pushinteger(L, (lua_Integer)fi);
  lua_pushinteger(L, (lua_Integer)fo);
  return 2;
}

/* ---------------------------------------------------------------- nn.utils */

/* A Lua sequence of tensors at pos -> a borrowed C array (kept in a userdata pushed on the
 * stack; the table keeps the tensors alive). */
static lc_tensor **tensor_list(lua_State *L, const char *fn, int pos, const char *name, int *n) {
  if (lua_type(L, pos) != LUA_TTABLE)
    lb_argerror(L, fn, pos, name, "expected a list of tensors, got %s", lb_typename(L, pos));
  lua_Integer len = luaL_len(L, pos);
  if (len > 1 << 30) lb_argerror(L, fn, pos, name, "too many tensors (%lld)", (long long)len);
  lc_tensor **ts = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *ts, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, pos, i);
    lb_tensor *u = lb_ud(L, -1);
    if (!u || !u->t)
      lb_argerror(L, fn, pos, name, "entry %lld is %s, expected a tensor", (long long)i,
                  u ? "a closed tensor" : lb_typename(L, -1));
    ts[i - 1] = u->t;
    lua_pop(L, 1);
  }
  *n = (int)len;
  return ts;
}

/* clip_grad_norm_(parameters, max_norm, norm_type = 2, error_if_nonfinite = false) -> number */
static int f_clip_grad_norm(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"parameters", "max_norm", "norm_type", "error_if_nonfinite"};
  lb_args_untabled(L, fn, P, 4);
  double max_norm = lb_num_arg(L, fn, 2, "max_norm");
  double p = 2;
  if (lua_type(L, 3) == LUA_TSTRING) {
    if (strcmp(lua_tostring(L, 3), "inf") != 0)
      lb_argerror(L, fn, 3, "norm_type", "expected a number or \"inf\", got '%s'",
                  lua_tostring(L, 3));
    p = INFINITY;
  } else {
    p = lb_opt_num_arg(L, fn, 3, "norm_type", 2.0);
  }
  bool err = lb_opt_bool_arg(L, fn, 4, "error_if_nonfinite", false);
  int n = 0;
  lc_tensor **ts = tensor_list(L, fn, 1, "parameters", &n);
  double total = 0;
  CORE(lc_clip_grad_norm_(n, ts, max_norm, p, err, &total));
  lua_pushnumber(L, total);
  return 1;
}

static int f_clip_grad_value(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"parameters", "clip_value"};
  lb_args_untabled(L, fn, P, 2);
  double v = lb_num_arg(L, fn, 2, "clip_value");
  int n = 0;
  lc_tensor **ts = tensor_list(L, fn, 1, "parameters", &n);
  CORE(lc_clip_grad_value_(n, ts, v));
  return 0;
}

static int f_parameters_to_vector(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"parameters"};
  lb_args(L, fn, P, 1); /* its parameter is a table: {} is an empty list, not options */
  int n = 0;
  lc_tensor **ts = tensor_list(L, fn, 1, "parameters", &n);
  if (n == 0) lb_argerror(L, fn, 1, "parameters", "expected at least one tensor, got none");
  for (int i = 1; i < n; i++) /* checked here so the positions are 1-based */
    if (lc_dtype_of(ts[i]) != lc_dtype_of(ts[0]))
      lb_argerror(L, fn, 1, "parameters", "entry %d is %s but entry 1 is %s (one dtype expected)",
                  i + 1, lc_dtype_name(lc_dtype_of(ts[i])), lc_dtype_name(lc_dtype_of(ts[0])));
  lc_tensor **out = lb_slot(L);
  CORE(lc_parameters_to_vector(n, ts, out));
  return 1;
}

static int f_vector_to_parameters(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"vec", "parameters"};
  lb_args(L, fn, P, 2); /* an empty list of parameters is not an options table here */
  lc_tensor *v = lb_tensor_arg(L, fn, 1, "vec");
  int n = 0;
  lc_tensor **ts = tensor_list(L, fn, 2, "parameters", &n);
  CORE(lc_vector_to_parameters(v, n, ts));
  return 0;
}

#define PW_REG_(CODE, NAME, Module, GradFn, WEIGHTS, PARAM, BATCHMEAN)                             \
  {"nn.functional." #NAME, f_pw, LC_PW_##CODE, LB_FUNC},
const lb_reg lb_loss_regs[] = {
    /* every row of src/kernels/loss_list.h */
    LC_PW_LOSS_LIST(PW_REG_)
    {"nn.functional.cross_entropy", f_class, 0, LB_FUNC},
    {"nn.functional.nll_loss", f_class, 1, LB_FUNC},
    {"nn.init.uniform_", f_init_uniform, 0, LB_FUNC},
    {"nn.init.normal_", f_init_normal, 0, LB_FUNC},
    {"nn.init.constant_", f_init_constant, 0, LB_FUNC},
    {"nn.init.zeros_", f_init_fixed, 0, LB_FUNC},
    {"nn.init.ones_", f_init_fixed, 1, LB_FUNC},
    {"nn.init.eye_", f_init_fixed, 2, LB_FUNC},
    {"nn.init.xavier_uniform_", f_init_gain, 0, LB_FUNC},
    {"nn.init.xavier_normal_", f_init_gain, 1, LB_FUNC},
    {"nn.init.orthogonal_", f_init_gain, 2, LB_FUNC},
    {"nn.init.kaiming_uniform_", f_init_kaiming, 0, LB_FUNC},
    {"nn.init.kaiming_normal_", f_init_kaiming, 1, LB_FUNC},
    {"nn.init.calculate_gain", f_calculate_gain, 0, LB_FUNC},
    {"nn.init.calculate_fan_in_and_fan_out", f_calculate_fan, 0, LB_FUNC},
    {"nn.utils.clip_grad_norm_", f_clip_grad_norm, 0, LB_FUNC},
    {"nn.utils.clip_grad_value_", f_clip_grad_value, 0, LB_FUNC},
    {"nn.utils.parameters_to_vector", f_parameters_to_vector, 0, LB_FUNC},
    {"nn.utils.vector_to_parameters", f_vector_to_parameters, 0, LB_FUNC},
    {NULL, NULL, 0, 0}};

/* nn_core.check_loss_options(name, fn, ...): the loss classes' construction-time check, by the
 * functional form's readers and C's rules (one owner): name is a pointwise row's or
 * "cross_entropy" / "nll_loss", ... the constructor's values in its parameter order (a row's
 * params; weight, ignore_index, reduction[, label_smoothing]). Returns them with the defaults
 * filled in (reduction "mean", the row's parameter default, label_smoothing 0), or raises
 * "lucid.<fn>: ..." naming the constructor's argument. */
static int c_check_loss_options(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  char fn[96];
  snprintf(fn, sizeof fn, "%s", luaL_checkstring(L, 2));
  lua_rotate(L, 1, -2);
  lua_pop(L, 2); /* the values now sit at 1.. as the constructor received them */
  bool ce = strcmp(name, "cross_entropy") == 0, nll = strcmp(name, "nll_loss") == 0;
  if (ce || nll) {
    int64_t ign;
    int n = ce ? 4 : 3;
    lua_settop(L, n);
    lc_class_loss_opts o = read_class_options(L, fn, ce, 1, &ign);
    if (lc_class_loss_check_options(fn, nll, &o)) lb_core_error(L, fn);
    lua_pushstring(L, lc_reduction_name(o.reduction));
    lua_replace(L, 3);
    if (ce) {
      lua_pushnumber(L, o.label_smoothing);
      lua_replace(L, 4);
    }
    if (o.has_ignore_index) {
      lua_pushinteger(L, ign);
      lua_replace(L, 2);
    }
    return n;
  }
  int kind = -1;
  for (int k = 0; k < LC_PW_COUNT && kind < 0; k++)
    if (strcmp(lc_pw_descs[k].name, name) == 0) kind = k;
  if (kind < 0) return lb_error(L, "check_loss_options", "no loss named %s", name);
  const lc_pw_desc *d = &lc_pw_descs[kind];
  pw_sig g;
  pw_signature(d, &g);
  int n = g.n - 2;
  lua_settop(L, n);
  pw_opts o = read_pw_options(L, fn, d, &g, 1);
  if (lc_pw_loss_check_options(kind, fn, o.reduction, o.p)) lb_core_error(L, fn);
  lua_pushstring(L, lc_reduction_name(o.reduction));
  lua_replace(L, g.reduction - 2);
  if (g.param) {
    if (d->param.flag)
      lua_pushboolean(L, o.p != 0);
    else
      lua_pushnumber(L, o.p);
    lua_replace(L, g.param - 2);
  }
  return n;
}

const luaL_Reg nb_loss_funcs[] = {
    {"pointwise_losses", c_pw_losses}, {"check_loss_options", c_check_loss_options}, {NULL, NULL}};
