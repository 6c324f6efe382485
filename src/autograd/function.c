/*
 * function.c - custom autograd functions (lc_function_record): outputs computed by the caller
 * join the graph as the outputs of one node whose backward is the caller's. This is what
 * lucid.autograd.Function stands on; the node is an ordinary lc_node with an extension
 * (lc_node_ext) holding the definition, the payload and the per-output state.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* The op a custom node carries: never run, only named (lc_ag_node_name uses the function's
 * own name). */
static const lc_op_def custom_op = {.name = "custom_function", .n_inputs = -1, .n_outputs = 1};

static int input_position(int n_in, lc_tensor *const *inputs, const lc_tensor *t) {
  for (int i = 0; i < n_in; i++)
    if (inputs[i] == t) return i;
  return -1;
}

/* The checks, before anything is changed: outputs distinct, fresh or a writable input. */
static lc_status check_outputs(const char *name, int n_in, lc_tensor *const *inputs, int n_out,
                               lc_tensor *const *outputs) {
  for (int k = 0; k < n_out; k++) {
    const lc_tensor *t = outputs[k];
    if (!t) return lc_set_error(LC_EARG, "%s: output " LC_POS_D " is NULL", name, k);
    for (int j = 0; j < k; j++)
      if (outputs[j] == t)
        return lc_set_error(
            LC_EARG, "%s: outputs " LC_POS_D " and " LC_POS_D " are the same tensor", name, j, k);
    if (input_position(n_in, inputs, t) >= 0) {
      if (t->requires_grad && !t->grad_fn)
        return lc_set_error(LC_EGRAD,
                            "%s: a leaf tensor that requires grad has been modified in place "
                            "(output " LC_POS_D ")",
                            name, k);
      if (t->view_base && (t->view_base->requires_grad || t->view_base->grad_fn))
        return lc_set_error(LC_EGRAD,
                            "%s: output " LC_POS_D " is a view modified in place; in-place custom "
                            "functions on views are not supported",
                            name, k);
    } else if (t->grad_fn) {
      return lc_set_error(LC_EGRAD,
                          "%s: output " LC_POS_D " already has a history (compute the outputs "
                          "without recording)",
                          name, k);
    }
  }
  return LC_OK;
}

static lc_status node_new(const lc_function_def *def, const char *name, void *payload, int n_in,
                          lc_tensor *const *inputs, int n_out, lc_tensor *const *outputs,
                          lc_node **out) {
  lc_node *nd = lc_ag_node_alloc(&custom_op, n_in, 0, NULL);
  if (!nd) return LC_ENOMEM;
  size_t sz = sizeof(lc_node_ext) +
              (size_t)n_out * (sizeof(lc_meta) + sizeof(lc_tensor *) + sizeof(lc_node_base *));
  lc_node_ext *x = calloc(1, sz);
  size_t len = strlen(name) + 1;
  char *nm = x ? malloc(len) : NULL;
  if (nm) memcpy(nm, name, len);
  if (!nm) {
    free(x);
    lc_node_base_release(&nd->base);
    return lc_error_oom(sz);
  }
  char *p = (char *)(x + 1);
  x->out = (lc_meta *)p;
  x->retain = (lc_tensor **)(p + (size_t)n_out * sizeof(lc_meta));
  x->hooks = (lc_node_base **)(p + (size_t)n_out * (sizeof(lc_meta) + sizeof(lc_tensor *)));
  x->fn = def;
  x->name = nm;
  x->payload = payload;
  x->n_outputs = n_out;
  nd->ext = x;
  lc_ag_set_inputs(nd, n_in, inputs);
  for (int k = 0; k < n_out; k++)
    lc_ag_fill_meta(&x->out[k], outputs[k]);
  nd->out = x->out[0];
  *out = nd;
  return LC_OK;
}

/* Output k of nd becomes t's history (an input modified in place is rebased: its retain_grad
 * slot follows it). Takes one reference to nd. */
static void attach(lc_node *nd, int k, lc_tensor *t) {
  lc_node *old = lc_ag_node(t);
  if (lc_ag_has_slot(t) && t->grad) {
    lc_tensor **slot = lc_ag_retain_slot(nd, k);
    *slot = lc_retain(t->grad);
    lc_tensor **old_slot = old ? lc_ag_retain_slot(old, t->output_nr) : NULL;
    if (old_slot && *old_slot == t->grad) {
      lc_release(*old_slot);
      *old_slot = NULL;
    }
  }
  atomic_fetch_add_explicit(&nd->base.refcount, 1, memory_order_relaxed);
  t->grad_fn = &nd->base;
  t->output_nr = k;
  t->requires_grad = true;
  lc_node_base_release(old ? &old->base : NULL);
}

lc_status lc_function_record(const lc_function_def *def, const char *name, void *payload, int n_in,
                             lc_tensor *const *inputs, int n_out, lc_tensor *const *outputs,
                             const bool *differentiable) {
  lc_status st = LC_OK;
  if (!def || !name || !def->backward)
    st = lc_set_error(LC_EARG, "function_record: a definition with a backward and a name are "
                               "needed");
  else if (n_in < 0 || (n_in > 0 && !inputs) || n_out < 1 || !outputs)
    st = lc_set_error(LC_EARG, "%s: expected inputs and at least one output, got %d and %d", name,
                      n_in, n_out);
  for (int i = 0; i < n_in && !st; i++)
    if (!inputs[i]) st = lc_set_error(LC_EARG, "%s: input " LC_POS_D " is NULL", name, i);
  if (!st) st = check_outputs(name, n_in, inputs, n_out, outputs);

  bool record = false;
  for (int i = 0; i < n_in && !st; i++)
    record |= inputs[i]->requires_grad;
  record = record && lc_grad_mode();
  bool any_diff = false;
  for (int k = 0; k < n_out && !st; k++)
    any_diff |= (!differentiable || differentiable[k]) && lc_dtype_is_float(outputs[k]->dtype);
  if (st || !record || !any_diff) {
    if (def && def->free && payload) def->free(payload);
    return st;
  }
  /* no half autograd yet (lucid_core.h, half precision) */
  for (int i = 0; i < n_in + n_out && !st; i++) {
    const lc_tensor *t = i < n_in ? inputs[i] : outputs[i - n_in];
    if (lc_dtype_is_half(t->dtype))
      st = lc_set_error(LC_EGRAD, "%s: %s tensors do not support autograd yet", name,
                        lc_dtype_name(t->dtype));
  }
  if (st) {
    if (def->free && payload) def->free(payload);
    return st;
  }

  lc_node *nd = NULL;
  if ((st = node_new(def, name, payload, n_in, inputs, n_out, outputs, &nd))) {
    if (def->free && payload) def->free(payload);
    return st;
  }
  for (int k = 0; k < n_out; k++)
    if ((!differentiable || differentiable[k]) && lc_dtype_is_float(outputs[k]->dtype))
      attach(nd, k, outputs[k]);
  lc_node_base_release(&nd->base); /* the outputs hold it now */
  return LC_OK;
}

lc_status lc_function_saved_output(const lc_function_ctx *ctx, int k, const lc_tensor *saved,
                                   lc_tensor **out) {
  if (!ctx || !saved || !out) return lc_set_error(LC_EARG, "function_saved_output: NULL argument");
  if (k < 0 || k >= lc_ag_n_outputs(ctx->node))
    return lc_set_error(LC_EARG, "function_saved_output: output " LC_POS_D " out of range", k);
  if (ctx->create_graph) return lc_ag_with_history(saved, ctx->node, k, out);
  *out = lc_retain((lc_tensor *)saved);
  return LC_OK;
}

bool lc_function_create_graph(const lc_function_ctx *ctx) { return ctx && ctx->create_graph; }
