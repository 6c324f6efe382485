/* nn_attention.c - Lua binding of the attention family (include/lucid_attention.h):
 * nn.functional.scaled_dot_product_attention (core._F). Argument errors read
 * "lucid.nn.functional.scaled_dot_product_attention: argument N (name): expected ..., got ...",
 * dims in them 1-based. */
#include "binding.h"
#include "nn_binding.h"
#include "nn_family.h"

#include "../kernels/attention.h"

#include "lucid_attention.h"

#include <math.h>
#include <string.h>

static const char *const P[] = {"query",     "key",       "value", "attn_mask",
                                "dropout_p", "is_causal", "scale"};

/* F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p = 0, is_causal =
 * false, scale = 1 / sqrt(E)), positional or by name in a trailing options table. */
static int f_sdpa(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  lb_args(L, fn, P, 7);
  lc_tensor *t[3];
  for (int i = 0; i < 3; i++)
    t[i] = lb_tensor_arg(L, fn, i + 1, P[i]);
  lc_tensor *mask = lua_isnil(L, 4) ? NULL : lb_tensor_arg(L, fn, 4, "attn_mask");
  lc_sdpa_opts o = {0};
  o.dropout_p = lb_opt_num_arg(L, fn, 5, "dropout_p", 0.0);
  o.is_causal = lb_opt_bool_arg(L, fn, 6, "is_causal", false);
  if (!lua_isnil(L, 7)) {
    o.has_scale = true;
    o.scale = lb_num_arg(L, fn, 7, "scale");
    if (!isfinite(o.scale))
      lb_argerror(L, fn, 7, "scale", "expected a finite number, got %g", o.scale);
  }
  int arg = -1;
  if (lc_sdpa_validate(t[0], t[1], t[2], mask, o.dropout_p, o.is_causal, &arg) != LC_OK &&
      arg >= 0) {
    /* the core's "scaled_dot_product_attention: <name>: <detail>", dims shown 1-based */
    const char *text = lb_core_text();
    size_t nl = strlen(P[arg]);
    if (strncmp(text, P[arg], nl) == 0 && text[nl] == ':') text += nl + 2;
    lb_argerror(L, fn, arg + 1, P[arg], "%s", text);
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_scaled_dot_product_attention(t[0], t[1], t[2], mask, &o, out));
  return 1;
}

const lb_reg lb_attention_regs[] = {{"scaled_dot_product_attention", f_sdpa, 0, LB_FUNC},
                                    {NULL, NULL, 0, 0}};
