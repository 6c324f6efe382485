/*
 * dropout.h - dropout's argument rule, shared by the entry point (src/ops/dropout.c) and the
 * module kind (src/nn/dropout.c). Layer 4 (ops); private.
 */
#ifndef LUCID_OPS_DROPOUT_H
#define LUCID_OPS_DROPOUT_H

#include "lucid_core.h"

/* Dropout's rule, p in [0, 1] (NaN refused), shared by lc_dropout and nn.Dropout. */
lc_status lc_dropout_check_p(const char *fn, double p);

#endif /* LUCID_OPS_DROPOUT_H */
