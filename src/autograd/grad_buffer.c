/*
 * grad_buffer.c - a leaf's gradient buffer (lc_set_grad_buffer): memory the engine offers to
 * the op computing the leaf's first gradient of a backward (backward.c: offer_buffers), so
 * that gradient is written where its consumer wants it (DistributedDataParallel's bucket)
 * instead of into a fresh tensor that is then copied there.
 */
#include "internal.h"

#include <stdio.h>

lc_status lc_set_grad_buffer(lc_tensor *leaf, lc_tensor *buf) {
  if (!leaf) return lc_set_error(LC_EARG, "set_grad_buffer: leaf is NULL");
  if (leaf->grad_fn)
    return lc_set_error(LC_EGRAD, "set_grad_buffer: the tensor is not a leaf (it has a history)");
  if (!leaf->requires_grad)
    return lc_set_error(LC_EGRAD, "set_grad_buffer: the tensor does not require grad");
  if (buf) {
    lc_status st = lc_check_like("set_grad_buffer", "buffer", buf, leaf);
    if (st) return st;
    if (!buf->contiguous)
      return lc_set_error(LC_EARG, "set_grad_buffer: the buffer must be contiguous");
    if (buf->grad_fn || buf->requires_grad)
      return lc_set_error(LC_EARG, "set_grad_buffer: the buffer must not require grad");
    if (lc_same_storage(buf, leaf))
      return lc_set_error(LC_EARG, "set_grad_buffer: the buffer shares the tensor's storage");
  }
  lc_release(leaf->grad_buffer);
  leaf->grad_buffer = lc_retain(buf);
  return LC_OK;
}
