/*
 * lucid.h - lucid's whole C API, no Lua: include this one header.
 *
 *   lucid_core.h        tensors, views, ops (linear, bilinear), autograd, threads, random numbers
 *   lucid_nn.h          modules: the module protocol, Linear, Flatten, Unflatten, containers
 *   lucid_activation.h  activations, softmax
 *   lucid_dropout.h     dropout (Dropout)
 *   lucid_embedding.h   embedding lookups (Embedding)
 *   lucid_attention.h   scaled dot-product attention (fused, FlashAttention-2 style)
 *   lucid_loss.h        losses (cross entropy, NLL, MSE, ...)
 *   lucid_init.h        nn.init initialisers and nn.utils (gradient clipping, ...)
 *   lucid_conv.h        padding, convolutions, pooling
 *   lucid_norm.h        batch/layer/group/instance norm
 *   lucid_interpolate.h interpolation (nearest, bilinear; Upsample)
 *   lucid_rnn.h         recurrent layers (RNN, LSTM, GRU and their cells)
 *   lucid_optim.h       optimizers (SGD, Adam, AdamW, RMSprop, Adagrad)
 *   lucid_io.h          checkpoints (safetensors) and IDX dataset files
 *   lucid_onnx.h        ONNX models (torch.onnx.export's files) run on lucid's ops
 *
 * Conventions, for all of them: lucid_core.h's top comment (0-based dims and indices, lc_status
 * results with lc_last_error(), outputs owned by the caller, arguments borrowed). Embedding in
 * Lua: lucid_lua.h.
 */
#ifndef LUCID_H
#define LUCID_H

#include "lucid_core.h"
#include "lucid_nn.h"

#include "lucid_activation.h"
#include "lucid_attention.h"
#include "lucid_conv.h"
#include "lucid_dropout.h"
#include "lucid_embedding.h"
#include "lucid_init.h"
#include "lucid_interpolate.h"
#include "lucid_io.h"
#include "lucid_loss.h"
#include "lucid_norm.h"
#include "lucid_onnx.h"
#include "lucid_optim.h"
#include "lucid_rnn.h"

#endif /* LUCID_H */
