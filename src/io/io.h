/*
 * io.h - private to src/io: what the checkpoint (safetensors.c) and dataset (idx.c) readers and
 * writers build on. Public API: include/lucid_io.h.
 *
 * Layer 5 of 8 (core -> kernels -> autograd -> ops -> io -> nn -> lua -> cli). io sits above
 * ops but calls none of their recording entry points: it creates tensors with the core
 * (lc_tensor_new) and copies them with the non-recording kernels of src/kernels/op.h
 * (lc_k_dense, lc_k_copy_as), so saving or loading never creates a graph node, never bumps a
 * version counter and gives every loaded tensor requires_grad = false, whatever the grad mode.
 */
#ifndef LUCID_IO_PRIVATE_H
#define LUCID_IO_PRIVATE_H

#include "lucid_io.h"

#include "../kernels/op.h"

#endif /* LUCID_IO_PRIVATE_H */
