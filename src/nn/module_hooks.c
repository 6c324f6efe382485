/*
 * module_hooks.c - forward pre-hooks, forward hooks and full backward hooks of modules
 * (lc_module_register_*_hook), and the forward that runs them (lc_nn_hooked_forward).
 *
 * The lists are the autograd layer's hook lists (lc_hook_list_add), so handles work as for
 * tensor hooks. A full backward hook needs the gradient of the module's output and of its
 * input together: as PyTorch's BackwardHook does, the input and the output are passed through
 * identity custom functions (lc_function_record). The output's node sees grad_output first and
 * stores it; the input's node then sees grad_input and runs the hooks with both.
 */
#include "nn.h"

#include "../autograd/autograd.h"

#include <stdlib.h>
#include <string.h>

enum { PRE, FWD, BWD };

static lc_status add(lc_module *m, int which, lc_hook_fn fn, void *ud, void (*free_ud)(void *),
                     lc_hook_handle **handle) {
  if (!m || !fn || !handle) return lc_set_error(LC_EARG, "register_hook: NULL argument");
  return lc_hook_list_add(&m->hooks[which], fn, ud, free_ud, handle);
}

lc_status lc_module_register_forward_pre_hook(lc_module *m, lc_forward_pre_hook fn, void *ud,
                                              void (*free_ud)(void *), lc_hook_handle **handle) {
  return add(m, PRE, (lc_hook_fn)fn, ud, free_ud, handle);
}

lc_status lc_module_register_forward_hook(lc_module *m, lc_forward_hook fn, void *ud,
                                          void (*free_ud)(void *), lc_hook_handle **handle) {
  return add(m, FWD, (lc_hook_fn)fn, ud, free_ud, handle);
}

lc_status lc_module_register_full_backward_hook(lc_module *m, lc_backward_hook fn, void *ud,
                                                void (*free_ud)(void *), lc_hook_handle **handle) {
  return add(m, BWD, (lc_hook_fn)fn, ud, free_ud, handle);
}

bool lc_module_has_hooks(const lc_module *m) {
  for (int k = 0; k < 3; k++)
    if (lc_hook_list_len(m->hooks[k])) return true;
  return false;
}

/* Replaces *t (owned) by rep (owned) when rep is set. */
static void take(lc_tensor **t, lc_tensor *rep) {
  if (!rep) return;
  lc_release(*t);
  *t = rep;
}

/* ---------------------------------------------------------------- backward hooks */

/* Shared by the two identity nodes of one call. */
typedef struct bw_state {
  atomic_int refcount;
  lc_module *m;        /* owned */
  lc_tensor *grad_out; /* owned, set by the output's node */
  bool input_wrapped;  /* the input's node will run the hooks */
} bw_state;

static void state_release(bw_state *s) {
  if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1) return;
  lc_module_release(s->m);
  lc_release(s->grad_out);
  free(s);
}

typedef struct bw_payload {
  bw_state *s;
  bool is_output;
} bw_payload;

static void payload_free(void *p) {
  bw_payload *b = p;
  state_release(b->s);
  free(b);
}

/* The hooks on (grad_input, grad_output); *grad_in (may be NULL) takes replacements. */
static lc_status run_bwd_hooks(bw_state *s, lc_tensor **grad_in) {
  lc_node_base *list = s->m->hooks[BWD];
  for (int i = 0; i < lc_hook_list_len(list); i++) {
    void *ud;
    uint64_t id, id2;
    lc_backward_hook fn = (lc_backward_hook)lc_hook_list_at(list, i, &ud, &id);
    lc_tensor *rep = NULL;
    lc_status st = fn(ud, s->m, *grad_in, s->grad_out, &rep);
    if (st) {
      lc_release(rep);
      return st;
    }
    if (rep) {
      if (!*grad_in) {
        lc_release(rep);
        return lc_set_error(LC_EGRAD, "a backward hook returned a gradient for an input that "
                                      "does not require grad");
      }
      const lc_tensor *g = *grad_in;
      if (rep->ndim != g->ndim ||
          (g->ndim && memcmp(rep->shape, g->shape, (size_t)g->ndim * sizeof g->shape[0]))) {
        char a[256], b[256];
        lc_status es =
            lc_set_error(LC_ESHAPE, "a backward hook returned a gradient of shape %s, expected %s",
                         lc_shape_str(rep->ndim, rep->shape, a, sizeof a),
                         lc_shape_str(g->ndim, g->shape, b, sizeof b));
        lc_release(rep);
        return es;
      }
      take(grad_in, rep);
    }
    if (i < lc_hook_list_len(list)) {
      lc_hook_list_at(list, i, &ud, &id2);
      if (id2 != id) i--; /* the hook at i removed itself: look at i again */
    }
  }
  return LC_OK;
}

static lc_status identity_backward(const lc_function_ctx *ctx, void *p, int n_out,
                                   lc_tensor *const *g, int n_in, const bool *needs,
                                   lc_tensor **gin) {
  (void)ctx;
  (void)n_out;
  (void)n_in;
  (void)needs;
  bw_payload *b = p;
  bw_state *s = b->s;
  lc_tensor *grad = lc_retain(g[0]);
  lc_status st = LC_OK;
  if (b->is_output) {
    lc_release(s->grad_out);
    s->grad_out = lc_retain(g[0]);
    if (!s->input_wrapped) {
      lc_tensor *none = NULL;
      st = run_bwd_hooks(s, &none);
    }
  } else {
    st = run_bwd_hooks(s, &grad);
  }
  if (st) {
    lc_release(grad);
    return st;
  }
  gin[0] = grad;
  return LC_OK;
}

static const lc_function_def identity_def = {identity_backward, payload_free};

/* *t (owned) replaced by an alias of it whose history is an identity node of s. */
static lc_status wrap(bw_state *s, bool is_output, lc_tensor **t) {
  bw_payload *b = malloc(sizeof *b);
  if (!b) return lc_error_oom(sizeof *b);
  lc_tensor *alias = NULL;
  lc_status st = lc_detach(*t, &alias);
  if (st) {
    free(b);
    return st;
  }
  atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
  b->s = s;
  b->is_output = is_output;
  st = lc_function_record(&identity_def, "BackwardHookFunctionBackward", b, 1, t, 1, &alias, NULL);
  if (st) {
    lc_release(alias);
    return st;
  }
  take(t, alias);
  return LC_OK;
}

/* ---------------------------------------------------------------- the hooked forward */

lc_status lc_nn_hooked_forward(lc_module *m, bool relu, const lc_tensor *x, lc_tensor **out) {
  lc_tensor *in = lc_retain((lc_tensor *)x), *y = NULL;
  lc_status st = LC_OK;
  lc_node_base *pre = m->hooks[PRE], *fwd = m->hooks[FWD];
  for (int i = 0; i < lc_hook_list_len(pre) && !st; i++) {
    void *ud;
    uint64_t id, id2;
    lc_forward_pre_hook fn = (lc_forward_pre_hook)lc_hook_list_at(pre, i, &ud, &id);
    lc_tensor *rep = NULL;
    st = fn(ud, m, in, &rep);
    take(&in, rep);
    if (!st && i < lc_hook_list_len(pre)) {
      lc_hook_list_at(pre, i, &ud, &id2);
      if (id2 != id) i--;
    }
  }
  bw_state *s = NULL;
  lc_tensor *run_in = NULL;
  if (!st && lc_hook_list_len(m->hooks[BWD]) && lc_is_grad_enabled()) {
    if (!(s = calloc(1, sizeof *s))) st = lc_error_oom(sizeof *s);
    if (s) {
      atomic_init(&s->refcount, 1);
      s->m = lc_module_retain(m);
      s->input_wrapped = lc_requires_grad(in);
    }
  }
  if (!st) {
    run_in = lc_retain(in);
    if (s && s->input_wrapped) st = wrap(s, false, &run_in);
  }
  if (!st) st = relu ? m->kind->forward_relu(m, run_in, &y) : m->kind->forward(m, run_in, &y);
  for (int i = 0; i < lc_hook_list_len(fwd) && !st; i++) {
    void *ud;
    uint64_t id, id2;
    lc_forward_hook fn = (lc_forward_hook)lc_hook_list_at(fwd, i, &ud, &id);
    lc_tensor *rep = NULL;
    st = fn(ud, m, in, y, &rep);
    take(&y, rep);
    if (!st && i < lc_hook_list_len(fwd)) {
      lc_hook_list_at(fwd, i, &ud, &id2);
      if (id2 != id) i--;
    }
  }
  if (!st && s && lc_requires_grad(y)) st = wrap(s, true, &y);
  if (s) state_release(s);
  lc_release(run_in);
  lc_release(in);
  if (st) {
    lc_release(y);
    return st;
  }
  *out = y;
  return LC_OK;
}
