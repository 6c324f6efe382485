/*
 * op_list.h - the ONNX op table: one row per op of the default domain lucid runs.
 * X(Name, function, min inputs, max inputs (-1: variadic), max outputs, deterministic)
 * Each function lives in the family file its section names (src/onnx/ops_<family>.c) and
 * handles every opset up to 17 of its op (attributes that became inputs, changed
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
  X(Pow, ox_pow, 2, 2, 1, true)                                                                    \
  X(Mod, ox_mod, 2, 2, 1, true)                                                                    \
  X(BitShift, ox_bitshift, 2, 2, 1, true)                                                          \
  X(Abs, ox_abs, 1, 1, 1, true)                                                                    \
  X(Neg, ox_neg, 1, 1, 1, true)                                                                    \
  X(Sign, ox_sign, 1, 1, 1, true)                                                                  \
  X(Relu, ox_relu, 1, 1, 1, true)                                                                  \
  X(Exp, ox_exp, 1, 1, 1, true)                                                                    \
  X(Log, ox_log, 1, 1, 1, true)                                                                    \
  X(Sqrt, ox_sqrt, 1, 1, 1, true)                                                                  \
  X(Reciprocal, ox_reciprocal, 1, 1, 1, true)                                                      \
  X(Sin, ox_sin, 1, 1, 1, true)                                                                    \
  X(Cos, ox_cos, 1, 1, 1, true)                                                                    \
  X(Tan, ox_tan, 1, 1, 1, true)                                                                    \
  X(Asin, ox_asin, 1, 1, 1, true)                                                                  \
  X(Acos, ox_acos, 1, 1, 1, true)                                                                  \
  X(Atan, ox_atan, 1, 1, 1, true)                                                                  \
  X(Sinh, ox_sinh, 1, 1, 1, true)                                                                  \
  X(Cosh, ox_cosh, 1, 1, 1, true)                                                                  \
  X(Tanh, ox_tanh, 1, 1, 1, true)                                                                  \
  X(Asinh, ox_asinh, 1, 1, 1, true)                                                                \
  X(Acosh, ox_acosh, 1, 1, 1, true)                                                                \
  X(Atanh, ox_atanh, 1, 1, 1, true)                                                                \
  X(Sigmoid, ox_sigmoid, 1, 1, 1, true)                                                            \
  X(Erf, ox_erf, 1, 1, 1, true)                                                                    \
  X(Floor, ox_floor, 1, 1, 1, true)                                                                \
  X(Ceil, ox_ceil, 1, 1, 1, true)                                                                  \
  X(Round, ox_round, 1, 1, 1, true)                                                                \
  X(IsNaN, ox_isnan, 1, 1, 1, true)                                                                \
  X(IsInf, ox_isinf, 1, 1, 1, true)                                                                \
  X(Equal, ox_equal, 2, 2, 1, true)                                                                \
  X(Greater, ox_greater, 2, 2, 1, true)                                                            \
  X(GreaterOrEqual, ox_greater_or_equal, 2, 2, 1, true)                                            \
  X(Less, ox_less, 2, 2, 1, true)                                                                  \
  X(LessOrEqual, ox_less_or_equal, 2, 2, 1, true)                                                  \
  X(And, ox_and, 2, 2, 1, true)                                                                    \
  X(Or, ox_or, 2, 2, 1, true)                                                                      \
  X(Xor, ox_xor, 2, 2, 1, true)                                                                    \
  X(Not, ox_not, 1, 1, 1, true)                                                                    \
  X(Max, ox_max, 1, -1, 1, true)                                                                   \
  X(Min, ox_min, 1, -1, 1, true)                                                                   \
  X(Sum, ox_sum, 1, -1, 1, true)                                                                   \
  X(Mean, ox_mean, 1, -1, 1, true)                                                                 \
  X(Where, ox_where, 3, 3, 1, true)                                                                \
  X(Clip, ox_clip, 1, 3, 1, true)                                                                  \
  X(Cast, ox_cast, 1, 1, 1, true)                                                                  \
  X(CastLike, ox_cast_like, 2, 2, 1, true)                                                         \
  X(LeakyRelu, ox_leaky_relu, 1, 1, 1, true)                                                       \
  X(Elu, ox_elu, 1, 1, 1, true)                                                                    \
  X(Selu, ox_selu, 1, 1, 1, true)                                                                  \
  X(Celu, ox_celu, 1, 1, 1, true)                                                                  \
  X(PRelu, ox_prelu, 2, 2, 1, true)                                                                \
  X(HardSigmoid, ox_hard_sigmoid, 1, 1, 1, true)                                                   \
  X(HardSwish, ox_hard_swish, 1, 1, 1, true)                                                       \
  X(Softplus, ox_softplus, 1, 1, 1, true)                                                          \
  X(Softsign, ox_softsign, 1, 1, 1, true)                                                          \
  X(ThresholdedRelu, ox_thresholded_relu, 1, 1, 1, true)                                           \
  X(Shrink, ox_shrink, 1, 1, 1, true)                                                              \
  X(Softmax, ox_softmax, 1, 1, 1, true)                                                            \
  X(LogSoftmax, ox_log_softmax, 1, 1, 1, true)                                                     \
  X(Hardmax, ox_hardmax, 1, 1, 1, true)                                                            \
  /* end of OX_OPS_MATH */

/* ops_shape.c, ops_index.c: shapes, views, joins, indexing, constants, sorting */
#define OX_OPS_SHAPE(X)                                                                            \
  X(Identity, ox_identity, 1, 1, 1, true)                                                          \
  X(Constant, ox_constant, 0, 0, 1, true)                                                          \
  X(Reshape, ox_reshape, 1, 2, 1, true)                                                            \
  X(Flatten, ox_flatten, 1, 1, 1, true)                                                            \
  X(Shape, ox_shape, 1, 1, 1, true)                                                                \
  X(Size, ox_size, 1, 1, 1, true)                                                                  \
  X(Transpose, ox_transpose, 1, 1, 1, true)                                                        \
  X(Squeeze, ox_squeeze, 1, 2, 1, true)                                                            \
  X(Unsqueeze, ox_unsqueeze, 1, 2, 1, true)                                                        \
  X(Concat, ox_concat, 1, -1, 1, true)                                                             \
  X(Split, ox_split, 1, 2, 256, true)                                                              \
  X(Slice, ox_slice, 1, 5, 1, true)                                                                \
  X(Expand, ox_expand, 2, 2, 1, true)                                                              \
  X(Tile, ox_tile, 2, 2, 1, true)                                                                  \
  X(Pad, ox_pad, 1, 4, 1, true)                                                                    \
  X(ConstantOfShape, ox_constant_of_shape, 1, 1, 1, true)                                          \
  X(Range, ox_range, 3, 3, 1, true)                                                                \
  X(EyeLike, ox_eye_like, 1, 1, 1, true)                                                           \
  X(Trilu, ox_trilu, 1, 2, 1, true)                                                                \
  X(DepthToSpace, ox_depth_to_space, 1, 1, 1, true)                                                \
  X(SpaceToDepth, ox_space_to_depth, 1, 1, 1, true)                                                \
  X(CumSum, ox_cumsum, 2, 2, 1, true)                                                              \
  X(TopK, ox_topk, 1, 2, 2, true)                                                                  \
  X(ArgMax, ox_argmax, 1, 1, 1, true)                                                              \
  X(ArgMin, ox_argmin, 1, 1, 1, true)                                                              \
  X(Gather, ox_gather, 2, 2, 1, true)                                                              \
  X(GatherElements, ox_gather_elements, 2, 2, 1, true)                                             \
  X(GatherND, ox_gather_nd, 2, 2, 1, true)                                                         \
  X(ScatterElements, ox_scatter_elements, 3, 3, 1, true)                                           \
  X(Scatter, ox_scatter, 3, 3, 1, true)                                                            \
  X(ScatterND, ox_scatter_nd, 3, 3, 1, true)                                                       \
  X(NonZero, ox_nonzero, 1, 1, 1, true)                                                            \
  X(OneHot, ox_one_hot, 3, 3, 1, true)                                                             \
  X(Compress, ox_compress, 2, 2, 1, true)                                                          \
  X(Unique, ox_unique, 1, 1, 4, true)                                                              \
  X(ReverseSequence, ox_reverse_sequence, 2, 2, 1, true)                                           \
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
  X(Det, ox_det, 1, 1, 1, true)                                                                    \
  /* end of OX_OPS_NN */
