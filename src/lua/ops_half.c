/*
 * ops_half.c - the half precision tensor methods (lucid_core.h, "half precision"):
 * t:half() (float16) and t:bfloat16(), the shorthands of t:to("float16") / t:to("bfloat16"),
 * as torch.Tensor.half and .bfloat16; t:element_size(); lucid.half_bits(t), the raw bit patterns.
 */
#include "binding.h"

static int f_half_cast(lua_State *L) { /* op = the dtype */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input"};
  lb_args(L, fn, P, 1);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  lc_tensor **out = lb_slot(L);
  if (lc_to_dtype(t, (lc_dtype)LB_OP(L), out) != LC_OK) lb_core_error(L, fn);
  return 1;
}

/* t:element_size(): bytes per element (2 for float16 / bfloat16), as torch.Tensor.element_size */
static int f_element_size(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input"};
  lb_args(L, fn, P, 1);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  lua_pushinteger(L, (lua_Integer)lc_dtype_size(lc_dtype_of(t)));
  return 1;
}

/* lucid.half_bits(t): the bit patterns of a float16 / bfloat16 tensor as an int32 tensor of its
 * shape, 0 to 65535 (torch's t.view(torch.int16), read as unsigned). */
static int f_half_bits(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input"};
  lb_args(L, fn, P, 1);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  lc_dtype dt = lc_dtype_of(t);
  if (!lc_dtype_is_half(dt))
    lb_argerror(L, fn, 1, "input", "expected a float16 or bfloat16 tensor, got %s",
                lc_dtype_name(dt));
  int64_t n = lc_numel(t);
  int32_t *wide = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * 6, 0);
  uint16_t *raw = (uint16_t *)(wide + (n > 0 ? n : 1));
  if (n > 0 && lc_copy_to_buffer(t, dt, raw) != LC_OK) lb_core_error(L, fn);
  for (int64_t i = 0; i < n; i++)
    wide[i] = raw[i];
  lc_tensor **out = lb_slot(L);
  if (lc_from_data(lc_ndim(t), lc_shape(t), LC_INT32, wide, out) != LC_OK) lb_core_error(L, fn);
  return 1;
}

const lb_reg lb_half_regs[] = {{"half", f_half_cast, LC_FLOAT16, LB_METHOD},
                               {"bfloat16", f_half_cast, LC_BFLOAT16, LB_METHOD},
                               {"element_size", f_element_size, 0, LB_METHOD},
                               {"half_bits", f_half_bits, 0, LB_FUNC},
                               {NULL, NULL, 0, 0}};
