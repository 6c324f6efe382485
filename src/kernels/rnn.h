/*
 * rnn.h - the recurrent family's private kernel header: the fused recurrence op (all T steps of
 * one layer and direction of an RNN / LSTM / GRU in C, with backward-through-time in C) that
 * src/ops/rnn.c records after one input-projection GEMM per layer and direction.
 * Layer 2 (kernels); private.
 */
#ifndef LUCID_KERNELS_RNN_H
#define LUCID_KERNELS_RNN_H

#include "lucid_rnn.h"
#include "op.h"

/* args.i of lc_op_rnn_recurrence */
enum { LC_RNNA_MODE, LC_RNNA_REVERSE, LC_RNNA_BIAS, LC_RNNA_PROJ, LC_RNNA_LENGTHS, LC_RNNA_N };

/* in = {xp {T, B, G*H}, h0 {B, Ho}, c0 {B, H} (LSTM; any tensor otherwise), w_hh {G*H, Ho},
 *       b_hh {G*H} (when args.i[LC_RNNA_BIAS]; any tensor otherwise), w_hr {Ho, H} (LSTM with
 *       proj; any tensor otherwise), lengths {B} int64 (when args.i[LC_RNNA_LENGTHS]; any tensor
 *       otherwise)}
 * xp is the input projection x W_ih^T + b_ih of every step (time-major). G = 1 (RNN), 4 (LSTM,
 * gates i f g o), 3 (GRU, gates r z n). Ho = H, or the projection size. args.i = {mode
 * (lc_rnn_mode), reverse, has_bias, has_proj, has_lengths}.
 * out[0] = 1-D {T*B*Ho (y, time-major) + B*Ho (h_n) [+ B*H (c_n, LSTM)]}; out[1] = the
 * workspace backward reads (states of every step, gate activations). A sample b with length L
 * is processed at steps s < L, at time s (forward) or L-1-s (reverse); its state is carried
 * unchanged through the other steps and its y there is 0. */
extern const lc_op_def lc_op_rnn_recurrence;

#endif /* LUCID_KERNELS_RNN_H */
