/* main.c - runs every registered C test; prints "C tests: N passed, N failed" last. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TESTS 1024
static struct {
  const char *name;
  test_fn fn;
} tests[MAX_TESTS];
static int n_tests;

void test_register(const char *name, test_fn fn) {
  if (n_tests < MAX_TESTS) {
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
  }
}

double *test_values(const lc_tensor *t) {
  int64_t n = lc_numel(t);
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  if (v && lc_copy_to_buffer(t, LC_FLOAT64, v) != LC_OK) {
    free(v);
    return NULL;
  }
  return v;
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  for (int i = 0; i < n_tests; i++) {
    if (argc > 1 && !strstr(tests[i].name, argv[1])) continue;
    int failures = 0;
    tests[i].fn(&failures);
    if (failures) {
      printf("FAIL %s\n", tests[i].name);
      failed++;
    } else {
      passed++;
    }
  }
  printf("C tests: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
