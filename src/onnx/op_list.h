/*
 * op_list.h - the ONNX op table: one row per op of the default domain lucid runs.
 * X(Name, function, min inputs, max inputs (-1: variadic), max outputs, deterministic)
 * Each function lives in the family file its section names (src/onnx/ops_<family>.c) and
 * handles every opset from 7 to 17 of its op (attributes that became inputs, changed
 * defaults); docs/onnx.md lists the rows.
 */
#define OX_OP_LIST(X) OX_OPS_MATH(X) OX_OPS_SHAPE(X) OX_OPS_NN(X)

/* ops_math.c, ops_activation.c: elementwise arithmetic, comparison, logic, casts,
 * activations, softmax */
#define OX_OPS_MATH(X)                                                                             \
  X(Add, ox_add, 2, 2, 1, true)                                                                    \
  X(Sub, ox_sub, 2, 2, 1, true)                                                                    \
  X(Mul, ox_mul, 2, 2, 1, true)                                                                    \
  X(Div, ox_div, 2, 2, 1, true)                                                                    \
  X(Relu, ox_relu, 1, 1, 1, true)                                                                  \
  /* end of OX_OPS_MATH */

/* ops_shape.c, ops_index.c: shapes, views, joins, indexing, constants, sorting */
#define OX_OPS_SHAPE(X)                                                                            \
  X(Identity, ox_identity, 1, 1, 1, true)                                                          \
  X(Constant, ox_constant, 0, 0, 1, true)                                                          \
  X(Reshape, ox_reshape, 1, 2, 1, true)                                                            \
  X(Flatten, ox_flatten, 1, 1, 1, true)                                                            \
  /* end of OX_OPS_SHAPE */

/* ops_nn.c, ops_reduce.c, ops_rnn.c: linear algebra, convolution, pooling, normalization,
 * reductions, resizing, recurrent layers */
#define OX_OPS_NN(X)                                                                               \
  X(MatMul, ox_matmul, 2, 2, 1, true)                                                              \
  X(Gemm, ox_gemm, 2, 3, 1, true)                                                                  \
  X(Conv, ox_conv, 2, 3, 1, true)                                                                  \
  X(ReduceSum, ox_reduce_sum, 1, 2, 1, true)                                                       \
  X(ReduceMean, ox_reduce_mean, 1, 1, 1, true)                                                     \
  X(ReduceMax, ox_reduce_max, 1, 1, 1, true)                                                       \
  X(ReduceMin, ox_reduce_min, 1, 1, 1, true)                                                       \
  X(ReduceProd, ox_reduce_prod, 1, 1, 1, true)                                                     \
  X(ReduceL1, ox_reduce_l1, 1, 1, 1, true)                                                         \
  X(ReduceL2, ox_reduce_l2, 1, 1, 1, true)                                                         \
  X(ReduceLogSum, ox_reduce_log_sum, 1, 1, 1, true)                                                \
  X(ReduceLogSumExp, ox_reduce_log_sum_exp, 1, 1, 1, true)                                         \
  X(ReduceSumSquare, ox_reduce_sum_square, 1, 1, 1, true)                                          \
  X(MaxPool, ox_max_pool, 1, 1, 2, true)                                                           \
  X(AveragePool, ox_average_pool, 1, 1, 1, true)                                                   \
  X(GlobalAveragePool, ox_global_average_pool, 1, 1, 1, true)                                      \
  X(GlobalMaxPool, ox_global_max_pool, 1, 1, 1, true)                                              \
  X(BatchNormalization, ox_batch_norm, 5, 5, 5, true)                                              \
  X(InstanceNormalization, ox_instance_norm, 3, 3, 1, true)                                        \
  X(LayerNormalization, ox_layer_norm, 2, 3, 3, true)                                              \
  X(LRN, ox_lrn, 1, 1, 1, true)                                                                    \
  X(MeanVarianceNormalization, ox_mvn, 1, 1, 1, true)                                              \
  X(Dropout, ox_dropout, 1, 3, 2, false)                                                           \
  X(ConvTranspose, ox_conv_transpose, 2, 3, 1, true)                                               \
  X(Einsum, ox_einsum, 1, -1, 1, true)                                                             \
  X(Resize, ox_resize, 1, 4, 1, true)                                                              \
  X(Upsample, ox_upsample, 1, 2, 1, true)                                                          \
  X(NegativeLogLikelihoodLoss, ox_nll_loss, 2, 3, 1, true)                                         \
  X(SoftmaxCrossEntropyLoss, ox_softmax_cross_entropy, 2, 3, 2, true)                              \
  X(RNN, ox_rnn, 3, 6, 2, true)                                                                    \
  X(GRU, ox_gru, 3, 6, 2, true)                                                                    \
  X(LSTM, ox_lstm, 3, 8, 3, true)                                                                  \
  /* end of OX_OPS_NN */
