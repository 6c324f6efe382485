/*
 * lucid_rnn.h - recurrent layers: multi-layer (bidirectional) RNN / LSTM / GRU over a whole
 * sequence, and the single-step cells, with PyTorch 1.13's semantics (torch.nn.RNN, LSTM, GRU,
 * RNNCell, LSTMCell, GRUCell). C hosts use these directly; the Lua modules nn.RNN, ... are built
 * on them (docs/nn/recurrent.md).
 *
 * Conventions are lucid.h's: every fallible function returns an lc_status with a message in
 * lc_last_error(), produced tensors are owned by the caller, arguments are borrowed. Everything
 * is differentiable (autograd records one input-projection GEMM per layer and direction and one
 * fused recurrence op whose backward runs backward-through-time in C); create_graph through the
 * recurrence is an LC_EGRAD error.
 */
#ifndef LUCID_RNN_H
#define LUCID_RNN_H

#include "lucid_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lc_rnn_mode {
  LC_RNN_TANH = 0, /* h' = tanh(W_ih x + b_ih + W_hh h + b_hh) */
  LC_RNN_RELU = 1, /* h' = relu(...) */
  LC_LSTM = 2,     /* gates i f g o (PyTorch's order) */
  LC_GRU = 3,      /* gates r z n (PyTorch's order) */
} lc_rnn_mode;

typedef struct lc_rnn_opts {
  int num_layers; /* >= 1 (0 reads as 1) */
  bool bidirectional;
  bool batch_first; /* input / output {B, T, F} instead of {T, B, F} (states stay {L*D, B, H}) */
  bool bias;        /* weights include b_ih, b_hh */
  double dropout;   /* on the outputs of every layer but the last, when training */
  bool training;
  int64_t proj_size; /* LSTM only: 0 = none, else 0 < proj_size < hidden_size */
  /* int64 {B}: per-sample valid step counts in [1, T], any order (NULL: all T). Padded steps
   * neither update the state nor receive gradient, their outputs are 0; h_n / c_n are each
   * sample's state at its last valid step (the reverse direction starts there). */
  const lc_tensor *lengths;
  const char *name; /* the function name errors start with (NULL: "rnn") */
  /* how errors name the states (NULL: "argument 2 (hx)", "argument 3 (cx)"); the Lua LSTM
   * passes "argument 2 (hx[1])" and "argument 2 (hx[2])" */
  const char *hx_arg, *cx_arg, *lengths_arg;
} lc_rnn_opts;

/* Runs a whole sequence. input {T, B, in} ({B, T, in} with batch_first), or {T, in} unbatched.
 * hx: {L*D, B, Ho} ({L*D, Ho} unbatched) or NULL for zeros; cx: LSTM's {L*D, B, H} or NULL.
 * weights: PyTorch's flat order (its _flat_weights): per layer, per direction (forward, then
 * reverse): w_ih {G*H, in_l}, w_hh {G*H, Ho}, [b_ih {G*H}, b_hh {G*H}] (with bias), [w_hr {P, H}]
 * (LSTM with proj_size P), where G = 1, 4, 3 (RNN, LSTM, GRU), Ho = P or H, in_0 = input
 * features, in_l = D*Ho. The hidden size H is read from w_hh. n_weights must match.
 * Results: out {T, B, D*Ho} (batch_first: {B, T, D*Ho}); h_n {L*D, B, Ho}; c_n (LSTM only,
 * else NULL is written; c_n may be NULL) {L*D, B, H}. All of the input's float dtype. */
lc_status lc_rnn(lc_rnn_mode mode, const lc_tensor *input, const lc_tensor *hx, const lc_tensor *cx,
                 int n_weights, lc_tensor *const *weights, const lc_rnn_opts *opts, lc_tensor **out,
                 lc_tensor **h_n, lc_tensor **c_n);

/* One step: input {B, in} or {in}; hx {B, Ho} / {Ho} or NULL (zeros); cx LSTM's {B, H} or NULL;
 * w_ih {G*H, in}, w_hh {G*H, H}, b_ih, b_hh {G*H} or both NULL. h1 {B, H}; c1 LSTM's {B, H}
 * (else NULL is written; c1 may be NULL). name: errors' prefix (NULL: "rnn_cell"). */
lc_status lc_rnn_cell(lc_rnn_mode mode, const lc_tensor *input, const lc_tensor *hx,
                      const lc_tensor *cx, const lc_tensor *w_ih, const lc_tensor *w_hh,
                      const lc_tensor *b_ih, const lc_tensor *b_hh, const char *name,
                      lc_tensor **h1, lc_tensor **c1);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_RNN_H */
