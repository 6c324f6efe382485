/*
 * onnx_host.c - a C program running a model exported from PyTorch as ONNX, with no Lua:
 * lucid.h (which includes lucid_onnx.h) and liblucid only.
 *
 *   onnx_host MODEL.onnx INPUT.pb EXPECTED.pb
 *
 * Loads the model, reads an input and the expected output (serialized TensorProtos, as ONNX's
 * test data stores them), runs it, and prints "onnx_host: OK" when the output equals the
 * expected one (rtol 1e-4, atol 1e-5). tools/run-tests.sh runs it on the small Transformer
 * encoder of spec/fixtures/onnx/.
 */
#include "lucid.h"

#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL.onnx INPUT.pb EXPECTED.pb\n", argv[0]);
    return 2;
  }
  lc_onnx_model *m = NULL;
  lc_tensor *x = NULL, *want = NULL, *y = NULL;
  int rc = 1;
  if (lc_onnx_load(argv[1], NULL, &m) != LC_OK || lc_onnx_read_tensor(argv[2], &x) != LC_OK ||
      lc_onnx_read_tensor(argv[3], &want) != LC_OK) {
    fprintf(stderr, "onnx_host: %s\n", lc_last_error());
    goto done;
  }
  printf("onnx_host: %s: opset %d, input '%s', output '%s'\n", argv[1], lc_onnx_opset(m),
         lc_onnx_input_name(m, 0), lc_onnx_output_name(m, 0));
  const lc_tensor *in[1] = {x};
  if (lc_onnx_run(m, 1, in, 1, &y) != LC_OK) {
    fprintf(stderr, "onnx_host: %s\n", lc_last_error());
    goto done;
  }
  bool close = false;
  if (lc_allclose(y, want, 1e-4, 1e-5, &close) != LC_OK || !close) {
    fprintf(stderr, "onnx_host: the output differs from the expected one\n");
    goto done;
  }
  printf("onnx_host: OK (%lld outputs equal the expected ones)\n", (long long)lc_numel(y));
  rc = 0;
done:
  lc_release(y);
  lc_release(want);
  lc_release(x);
  lc_onnx_free(m);
  return rc;
}
