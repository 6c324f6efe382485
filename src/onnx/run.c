/*
 * run.c - executing the prepared graph: nodes in order, each value released right after its
 * last reader (so the allocator hands its memory to the next node's outputs), fused nodes
 * through their fused form.
 */
#include "onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The fused linear: y = x W^T + b, computed over x flattened to 2-D for Gemm. */
static lc_status run_fused_linear(const ox_node *n, lc_tensor *const *in, lc_tensor **out) {
  return lc_linear(in[0], n->fused_weight, n->fused_bias, out);
}

/* The fused layer_norm over the last dim (prepare.c: fuse_layer_norm). */
static lc_status run_fused_layer_norm(const ox_node *n, lc_tensor *const *in, lc_tensor **out) {
  int r = lc_ndim(in[0]);
  if (r < 1) return lc_set_error(LC_ESHAPE, "layer norm (fused ReduceMean ... Div): 0-dim input");
  return lc_layer_norm(in[0], 1, lc_shape(in[0]) + r - 1, n->fused_weight, n->fused_bias,
                       n->fused_eps, out);
}

lc_status ox_run_node(const lc_onnx_model *m, const ox_node *n, lc_tensor *const *in,
                      lc_tensor **out) {
  ox_ctx c = {n, m->opset, n->n_in, in, n->n_out, out};
  lc_status st;
  if (n->fusion == OX_FUSE_LINEAR) {
    st = run_fused_linear(n, in, out);
  } else if (n->fusion == OX_FUSE_GELU) {
    st = lc_gelu(in[0], LC_GELU_NONE, out);
  } else if (n->fusion == OX_FUSE_LAYER_NORM) {
    st = run_fused_layer_norm(n, in, out);
  } else if (n->fusion == OX_FUSE_WEIGHTS) { /* the node's own op over its folded weights */
    lc_tensor *local[3] = {in[0], n->fused_weight, n->fused_bias};
    c.in = local;
    c.n_in = 3;
    st = n->op->run(&c);
    c.in = in;
  } else {
    st = n->op->run(&c);
  }
  if (st) {
    /* messages of lucid's own ops get the node prefixed; the op's own already have it */
    const char *msg = lc_last_error_marked();
    if (strncmp(msg, "onnx: node", 10) != 0) {
      char copy[1024];
      strncpy(copy, msg, sizeof copy - 1);
      copy[sizeof copy - 1] = '\0';
      ox_node_error(&c, st, "%s", copy);
    }
    for (int j = 0; j < n->n_out; j++) {
      lc_release(out[j]);
      out[j] = NULL;
    }
    return st;
  }
  if (n->relu_after && out[0]) {
    if (lc_requires_grad(out[0])) {
      lc_tensor *r;
      if ((st = lc_unary(LC_RELU, out[0], &r))) return ox_node_error(&c, st, "%s", lc_last_error());
      lc_release(out[0]);
      out[0] = r;
    } else if ((st = lc_unary_(LC_RELU, out[0]))) {
      return ox_node_error(&c, st, "%s", lc_last_error());
    }
  }
  if (n->clip_after && out[0]) {
    bool lo = isfinite(n->clip_lo), hi = isfinite(n->clip_hi);
    if (lc_requires_grad(out[0])) {
      lc_tensor *r;
      if ((st = lc_clamp(out[0], lo, n->clip_lo, hi, n->clip_hi, &r)))
        return ox_node_error(&c, st, "%s", lc_last_error());
      lc_release(out[0]);
      out[0] = r;
    } else if ((st = lc_clamp_(out[0], lo, n->clip_lo, hi, n->clip_hi))) {
      return ox_node_error(&c, st, "%s", lc_last_error());
    }
  }
  /* a trainable model must not lose its gradient silently: an op computed outside autograd
   * (some ops run direct C loops) with a float result from inputs that require grad is an error */
  if (lc_is_grad_enabled() && n->n_out > 0 && out[0] && lc_dtype_is_float(lc_dtype_of(out[0])) &&
      !lc_requires_grad(out[0])) {
    for (int j = 0; j < c.n_in; j++)
      if (c.in[j] && lc_requires_grad(c.in[j])) {
        for (int k = 0; k < n->n_out; k++) {
          lc_release(out[k]);
          out[k] = NULL;
        }
        return ox_node_error(&c, LC_EGRAD,
                             "this op's gradient is not supported (it runs outside autograd): "
                             "load the model without trainable, or run it under no_grad");
      }
  }
  for (int j = 0; j < n->n_out; j++)
    if (n->out[j] >= 0 && !out[j]) {
      ox_node_error(&c, LC_ESTATE, "output " LC_POS_D " was not produced", j);
      return LC_ESTATE;
    }
  return LC_OK;
}

lc_status lc_onnx_run(lc_onnx_model *m, int n_inputs, const lc_tensor *const *inputs, int n_outputs,
                      lc_tensor **outputs) {
  if (!m) return lc_set_error(LC_EARG, "lc_onnx_run: NULL model");
  if (n_inputs != m->n_inputs)
    return lc_set_error(LC_EARG, "lc_onnx_run: %d inputs given, the model takes %d", n_inputs,
                        m->n_inputs);
  if (n_outputs != m->n_outputs)
    return lc_set_error(LC_EARG, "lc_onnx_run: room for %d outputs given, the model has %d",
                        n_outputs, m->n_outputs);
  for (int i = 0; i < n_inputs; i++) {
    const lc_tensor *t = inputs[i];
    const char *name = m->values[m->inputs[i]].name;
    if (!t) return lc_set_error(LC_EARG, "lc_onnx_run: input " LC_POS_D " ('%s') is NULL", i, name);
    if (m->input_dtype[i] != lc_dtype_of(t))
      return lc_set_error(LC_EDTYPE, "lc_onnx_run: input " LC_POS_D " ('%s'): expected %s, got %s",
                          i, name, lc_dtype_name(m->input_dtype[i]), lc_dtype_name(lc_dtype_of(t)));
    int nd = m->input_ndim[i];
    if (nd >= 0) {
      if (lc_ndim(t) != nd)
        return lc_set_error(LC_ESHAPE,
                            "lc_onnx_run: input " LC_POS_D " ('%s'): expected %d dims, got %d", i,
                            name, nd, lc_ndim(t));
      for (int k = 0; k < nd; k++)
        if (m->input_dims[i][k] >= 0 && m->input_dims[i][k] != lc_shape(t)[k])
          return lc_set_error(LC_ESHAPE,
                              "lc_onnx_run: input " LC_POS_D " ('%s'): dim " LC_POS_D
                              " is %lld, the model expects %lld",
                              i, name, k, (long long)lc_shape(t)[k],
                              (long long)m->input_dims[i][k]);
    }
  }
  lc_tensor **val = calloc((size_t)m->n_values + 1, sizeof *val);
  lc_tensor *ins[64], **in = ins;
  lc_tensor *outs[64], **outp = outs;
  int max_in = 0, max_out = 0;
  for (int i = 0; i < m->n_nodes; i++) {
    if (m->nodes[i].n_in > max_in) max_in = m->nodes[i].n_in;
    if (m->nodes[i].n_out > max_out) max_out = m->nodes[i].n_out;
  }
  if (max_in > 64) in = malloc((size_t)max_in * sizeof *in);
  if (max_out > 64) outp = malloc((size_t)max_out * sizeof *outp);
  lc_status st = LC_OK;
  if (!val || !in || !outp) st = lc_set_error(LC_ENOMEM, "onnx: out of memory");
  /* constants are borrowed from the model, inputs from the caller: neither is released here */
  for (int i = 0; i < n_inputs && !st; i++)
    val[m->inputs[i]] = (lc_tensor *)inputs[i];
  for (int v = 0; v < m->n_values && !st; v++)
    if (m->values[v].constant) val[v] = m->values[v].constant;
  for (int i = 0; i < m->n_nodes && !st; i++) {
    const ox_node *n = &m->nodes[i];
    if (n->dead) continue;
    for (int j = 0; j < n->n_in; j++)
      in[j] = n->in[j] >= 0 ? val[n->in[j]] : NULL;
    for (int j = 0; j < n->n_out; j++)
      outp[j] = NULL;
    st = ox_run_node(m, n, in, outp);
    if (st) break;
    for (int j = 0; j < n->n_out; j++) {
      if (n->out[j] >= 0 && (m->values[n->out[j]].n_uses > 0 || m->values[n->out[j]].is_output))
        val[n->out[j]] = outp[j];
      else
        lc_release(outp[j]); /* an output nobody reads */
    }
    /* values whose last reader this was */
    for (int j = 0; j < n->n_in; j++) {
      int v = n->in[j];
      if (v < 0 || m->values[v].last_use != i) continue;
      const ox_value *ov = &m->values[v];
      if (ov->constant || ov->is_input || ov->is_output) continue;
      lc_release(val[v]);
      val[v] = NULL;
    }
  }
  if (!st)
    for (int j = 0; j < n_outputs; j++)
      outputs[j] = lc_retain(val[m->outputs[j]]);
  /* release what this run produced */
  if (val)
    for (int v = 0; v < m->n_values; v++) {
      const ox_value *ov = &m->values[v];
      if (!val[v] || ov->constant || ov->is_input) continue;
      lc_release(val[v]);
    }
  free(val);
  if (in != ins) free(in);
  if (outp != outs) free(outp);
  return st;
}
