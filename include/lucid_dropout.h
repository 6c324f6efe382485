/*
 * lucid_dropout.h - dropout: the tensor function (with autograd) and the Dropout module kind.
 *
 * Conventions are lucid.h's: every fallible function returns an lc_status with a message in
 * lc_last_error(), a produced tensor is written to the last argument and owned by the caller,
 * arguments are borrowed. Inputs are float32 or float64 (other dtypes are an LC_EDTYPE error);
 * the result is a new contiguous tensor of the same dtype, one fused kernel whose backward is
 * one more pass.
 */
#ifndef LUCID_DROPOUT_H
#define LUCID_DROPOUT_H

#include "lucid_core.h"
#include "lucid_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Training: zeroes each element with probability p and scales the others by 1 / (1 - p)
 * ("inverted" dropout), p = 1 giving zeros. The mask comes from lucid's random generator
 * (lc_manual_seed makes it reproducible; one draw serves two elements in C order, so the mask
 * does not depend on the thread count). Not training: *out is x itself (a new reference), as
 * PyTorch returns its input. p outside [0, 1] is LC_EARG. */
lc_status lc_dropout(const lc_tensor *x, double p, bool training, lc_tensor **out);

/* ---------------------------------------------------------------- module kind */

/* Applies lc_dropout with the module's training flag (lc_module_train / eval). Prints
 * "Dropout(p=0.5, inplace=false)" (inplace always; it is remembered but lucid computes out of
 * place). Attributes (lc_module_attr): p (FLOAT), inplace (BOOL). */
extern const lc_module_kind lc_kind_dropout;
lc_status lc_nn_dropout(double p, bool inplace, lc_module **out);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_DROPOUT_H */
