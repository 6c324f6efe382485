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
  /* end of OX_OPS_NN */
