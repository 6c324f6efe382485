/* error.c - the thread-local "last error" every failing core call leaves behind. */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_message[512]; /* with position marks */
static _Thread_local char last_plain[512];   /* rendered 0-based, on demand */
static _Thread_local bool plain_stale;
static _Thread_local lc_status last_status = LC_OK;

char *lc_render_positions(const char *text, int base, char *buf, size_t cap) {
  if (!cap) return buf;
  size_t k = 0;
  const char mark = LC_POS_MARK[0];
  for (const char *p = text ? text : ""; *p && k + 1 < cap; p++) {
    if (*p != mark) {
      buf[k++] = *p;
      continue;
    }
    const char *end = strchr(p + 1, mark);
    if (!end) continue; /* a lone mark: drop it */
    char *stop = NULL;
    bool abs = p[1] == '+'; /* LC_POS_ABS: never counted from the end */
    long long v = strtoll(p + 1 + abs, &stop, 10);
    if (stop == end && end > p + 1 + abs) {
      if (v >= 0 || abs) v += base;
      k += (size_t)snprintf(buf + k, cap - k, "%lld", v);
      if (k >= cap) k = cap - 1;
    } else { /* not a number: copy it unmarked */
      size_t n = (size_t)(end - p - 1);
      if (n > cap - 1 - k) n = cap - 1 - k;
      memmove(buf + k, p + 1, n);
      k += n;
    }
    p = end;
  }
  buf[k] = 0;
  return buf;
}

const char *lc_last_error(void) {
  if (plain_stale) {
    lc_render_positions(last_message, 0, last_plain, sizeof last_plain);
    plain_stale = false;
  }
  return last_plain;
}
const char *lc_last_error_marked(void) { return last_message; }
lc_status lc_last_status(void) { return last_status; }

lc_status lc_set_error(lc_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  plain_stale = true;
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
