/*
 * fuzz_idx.c - libFuzzer harness for the IDX reader (lc_idx_load), plain and gzip-compressed:
 * each input is written to a memory file and read back with every dtype and dims expectation
 * the first input byte selects. Never a crash, a sanitizer report or a leak. `make fuzz`.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lucid_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const lc_dtype dts[] = {LC_FLOAT32, LC_FLOAT64, LC_INT32, LC_INT64, LC_BOOL};
  lc_dtype dt = dts[data[0] % 5];
  int ndim = (int)(data[0] / 5 % 6) - 1; /* -1 (any) .. 4 */
  int fd = memfd_create("idx", 0);
  if (fd < 0) return 0;
  if (write(fd, data + 1, size - 1) == (ssize_t)(size - 1)) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    lc_tensor *t = NULL;
    double scale = lc_dtype_is_float(dt) ? 0.5 : 1.0;
    if (lc_idx_load(path, ndim, dt, scale, &t) == LC_OK)
      lc_release(t);
    else if (!lc_last_error()[0])
      __builtin_trap();
  }
  close(fd);
  return 0;
}
