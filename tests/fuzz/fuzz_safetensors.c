/*
 * fuzz_safetensors.c - libFuzzer harness for the safetensors reader (lc_safetensors_load_buffer,
 * the same parser lc_safetensors_load runs on a file's bytes). Any input must give LC_OK or an
 * error status with a message: never a crash, a sanitizer report or a leak. `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>

#include "lucid_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lc_safetensors *f = NULL;
  if (lc_safetensors_load_buffer(data, size, "fuzz", &f) == LC_OK) {
    for (int64_t i = 0; i < f->count; i++) /* touch what was loaded */
      (void)lc_numel(f->tensors[i]);
    lc_safetensors_free(f);
  } else if (!lc_last_error()[0]) {
    __builtin_trap(); /* an error without a message */
  }
  return 0;
}
