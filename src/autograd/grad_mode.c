/* grad_mode.c - the per-thread switch that turns graph recording on and off. */
#include "autograd.h"

/* On by default for every thread (a _Thread_local initialiser runs per thread). */
static _Thread_local bool grad_enabled = true;

bool lc_is_grad_enabled(void) { return grad_enabled; }

bool lc_set_grad_enabled(bool enabled) {
  bool prev = grad_enabled;
  grad_enabled = enabled;
  return prev;
}

bool lc_grad_mode(void) { return grad_enabled; }
