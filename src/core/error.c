/* error.c - the thread-local "last error" every failing core call leaves behind. */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_message[512];
static _Thread_local lc_status last_status = LC_OK;

const char *lc_last_error(void) { return last_message; }
lc_status lc_last_status(void) { return last_status; }

lc_status lc_set_error(lc_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  last_status = st;
  return st;
}

lc_status lc_error_oom(size_t nbytes) {
  return lc_set_error(LC_ENOMEM, "out of memory: could not allocate %zu bytes", nbytes);
}

const char *lc_status_name(lc_status st) {
  static const char *const names[] = {"LC_OK",     "LC_EARG",  "LC_ESHAPE", "LC_EDTYPE",
                                      "LC_EINDEX", "LC_ENOMEM", "LC_EGRAD", "LC_EIO",
                                      "LC_EFORMAT", "LC_ESTATE"};
  if ((unsigned)st < sizeof names / sizeof names[0]) return names[st];
  return "LC_E?";
}
