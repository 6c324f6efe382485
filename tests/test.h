/* test.h - a tiny C test harness: TEST(name) { CHECK(...); } registers itself; the runner
 * (tests/main.c) runs every test and prints "C tests: N passed, N failed". */
#ifndef LUCID_TEST_H
#define LUCID_TEST_H

#include "lucid.h"

#include <math.h>
#include <stdio.h>

typedef void (*test_fn)(int *failures);
void test_register(const char *name, test_fn fn);

/* All elements of t in C order as doubles (malloc'ed; NULL on failure). */
double *test_values(const lc_tensor *t);

#define TEST(name)                                                                             \
  static void test_##name(int *failures_);                                                    \
  __attribute__((constructor)) static void register_##name(void) {                            \
    test_register(#name, test_##name);                                                        \
  }                                                                                           \
  static void test_##name(int *failures_)

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                         \
      (*failures_)++;                                                                          \
    }                                                                                          \
  } while (0)

/* CHECK that a call returns LC_OK, printing the core's message if not. */
#define CHECK_OK(call)                                                                         \
  do {                                                                                         \
    lc_status st_ = (call);                                                                    \
    if (st_ != LC_OK) {                                                                        \
      printf("  %s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call, lc_status_name(st_),  \
             lc_last_error());                                                                 \
      (*failures_)++;                                                                          \
    }                                                                                          \
  } while (0)

#define CHECK_STATUS(call, want)                                                               \
  do {                                                                                         \
    lc_status st_ = (call);                                                                    \
    if (st_ != (want)) {                                                                       \
      printf("  %s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, #call,         \
             lc_status_name(st_), lc_status_name(want), lc_last_error());                      \
      (*failures_)++;                                                                          \
    }                                                                                          \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                  \
  do {                                                                                         \
    double a_ = (a), b_ = (b);                                                                 \
    if (!(fabs(a_ - b_) <= (tol))) {                                                           \
      printf("  %s:%d: %s = %.9g, expected %.9g (tol %g)\n", __FILE__, __LINE__, #a, a_, b_,   \
             (double)(tol));                                                                   \
      (*failures_)++;                                                                          \
    }                                                                                          \
  } while (0)

#endif
