/*
 * fuzz_onnx.c - libFuzzer harness for the ONNX reader and executor (lc_onnx_load_buffer,
 * lc_onnx_run): each input is a model; one that loads is run once on zeros of its declared
 * input shapes (dynamic dims as 1) when they are small. lucid's memory limit (64 MiB) bounds
 * what a hostile graph may allocate. Never a crash, a sanitizer report or a leak. `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lucid_onnx.h"

static void run_once(lc_onnx_model *m) {
  int ni = lc_onnx_num_inputs(m), no = lc_onnx_num_outputs(m);
  if (ni > 8 || no > 8) return;
  lc_tensor *in[8] = {NULL}, *out[8] = {NULL};
  bool ok = true;
  for (int i = 0; i < ni && ok; i++) {
    lc_dtype dt;
    int nd;
    int64_t dims[LC_MAX_DIMS], numel = 1;
    if (lc_onnx_input_info(m, i, &dt, &nd, dims) || nd < 0) {
      ok = false;
      break;
    }
    for (int k = 0; k < nd; k++) {
      if (dims[k] < 0) dims[k] = 1;
      numel *= dims[k];
      if (numel > 4096) ok = false;
    }
    if (ok && lc_zeros(nd, dims, dt, &in[i])) ok = false;
  }
  if (ok && lc_onnx_run(m, ni, (const lc_tensor *const *)in, no, out) == LC_OK)
    for (int j = 0; j < no; j++)
      lc_release(out[j]);
  else if (ok && !lc_last_error()[0])
    __builtin_trap();
  for (int i = 0; i < ni; i++)
    lc_release(in[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int limited;
  if (!limited) {
    lc_set_memory_limit((int64_t)64 << 20);
    limited = 1;
  }
  lc_onnx_opts o = {0};
  o.max_nodes = 256;
  lc_onnx_model *m = NULL;
  if (lc_onnx_load_buffer(data, size, &o, &m) == LC_OK) {
    run_once(m);
    lc_onnx_free(m);
  } else if (!lc_last_error()[0]) {
    __builtin_trap(); /* every failure says why */
  }
  return 0;
}
