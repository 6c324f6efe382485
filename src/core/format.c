/* format.c - lc_to_string: tensors printed the way PyTorch users expect.
 *
 *   tensor([[0.1235, 1.], [2., 3.]])            one line when the whole text fits 80 columns
 *   tensor([[ 1.5000,  2.],                     else one innermost row per line, indented
 *           [ 3.,  4.]])                        under its bracket, columns right-aligned
 *
 * Floats get 4 significant digits (an integral float prints as "1."), scientific notation when
 * |x| >= 1e8 or 0 < |x| < 1e-4. Tensors with more than 1000 elements are summarised: the first
 * and last 3 entries of every longer dim with "..." between. Autograd info is the binding's. */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_WIDTH 80
#define SUMMARY_THRESHOLD 1000 /* summarise when numel is larger */
#define EDGE_ITEMS 3
#define PREFIX_LEN 7 /* strlen("tensor(") */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  bool oom;
} sbuf;

static void sb_grow(sbuf *b, size_t extra) {
  if (b->oom || b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 128;
  while (cap < b->len + extra + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return;
  }
  b->p = p;
  b->cap = cap;
}

static void sb_putn(sbuf *b, const char *s, size_t n) {
  sb_grow(b, n);
  if (b->oom) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_spaces(sbuf *b, int n) {
  for (int i = 0; i < n; i++)
    sb_putn(b, " ", 1);
}

/* ------------------------------------------------------------------ one element */

static void fmt_float(char *buf, size_t cap, double x) {
  double ax = fabs(x);
  if (isnan(x)) {
    snprintf(buf, cap, "nan");
  } else if (isinf(x)) {
    snprintf(buf, cap, x > 0 ? "inf" : "-inf");
  } else if (ax >= 99999999.5 || (ax > 0 && ax < 1e-4)) { /* >= 1e8 once rounded */
    snprintf(buf, cap, "%.3e", x);
  } else if (x == floor(x) || ax >= 1e4) {
    snprintf(buf, cap, "%.0f.", x); /* keeps the "-0." of negative zero */
  } else {
    snprintf(buf, cap, "%.4g", x);
    if (strchr(buf, 'e')) {
      snprintf(buf, cap, "%.0f.", x); /* 9999.95 rounds to 1e+04 under %.4g */
    } else if (!strchr(buf, '.')) {
      size_t n = strlen(buf); /* 1234.4 -> "1234.": still visibly a float */
      if (n + 1 < cap) {
        buf[n] = '.';
        buf[n + 1] = '\0';
      }
    }
  }
}

static void fmt_elem(char *buf, size_t cap, const void *data, lc_dtype dt, int64_t off) {
  switch (dt) {
  case LC_FLOAT32:
  case LC_FLOAT64:
  case LC_FLOAT16:
  case LC_BFLOAT16: fmt_float(buf, cap, lc_load_f64(data, dt, off)); break;
  case LC_BOOL: snprintf(buf, cap, "%s", lc_load_i64(data, dt, off) ? "true" : "false"); break;
  default: snprintf(buf, cap, "%lld", (long long)lc_load_i64(data, dt, off)); break;
  }
}

/* ------------------------------------------------------------------ layout */

typedef struct fmt_ctx {
  const lc_tensor *t;
  const void *data;
  bool summarise;
  bool multiline;
  int width; /* widest element, for right alignment in the multi-line layout */
  sbuf *out;
} fmt_ctx;

/* Number of entries shown along dim (including one "..." entry when summarised). */
static int64_t shown(const fmt_ctx *c, int dim) {
  int64_t n = c->t->shape[dim];
  return c->summarise && n > 2 * EDGE_ITEMS ? 2 * EDGE_ITEMS + 1 : n;
}

/* Index along dim of shown entry k, or -1 for the "..." entry. */
static int64_t shown_index(const fmt_ctx *c, int dim, int64_t k) {
  int64_t n = c->t->shape[dim];
  if (!(c->summarise && n > 2 * EDGE_ITEMS)) return k;
  if (k < EDGE_ITEMS) return k;
  if (k == EDGE_ITEMS) return -1;
  return n - (2 * EDGE_ITEMS + 1 - k);
}

static void measure(fmt_ctx *c, int dim, int64_t off) {
  for (int64_t k = 0; k < shown(c, dim); k++) {
    int64_t i = shown_index(c, dim, k);
    if (i < 0) continue;
    int64_t o = off + i * c->t->strides[dim];
    if (dim == c->t->ndim - 1) {
      char buf[64];
      fmt_elem(buf, sizeof buf, c->data, c->t->dtype, o);
      int w = (int)strlen(buf);
      if (w > c->width) c->width = w;
    } else {
      measure(c, dim + 1, o);
    }
  }
}

static void put_padded(fmt_ctx *c, const char *s) {
  if (c->multiline) sb_spaces(c->out, c->width - (int)strlen(s));
  sb_puts(c->out, s);
}

static void emit(fmt_ctx *c, int dim, int64_t off) {
  const lc_tensor *t = c->t;
  sbuf *b = c->out;
  int indent = PREFIX_LEN + dim; /* column of this dim's "[" */
  int64_t n = shown(c, dim);
  sb_puts(b, "[");
  if (dim == t->ndim - 1) {
    /* Innermost row; in the multi-line layout long rows wrap like PyTorch's. */
    int64_t per_line = c->multiline ? (LINE_WIDTH - indent) / (c->width + 2) : n;
    if (per_line < 1) per_line = 1;
    for (int64_t k = 0; k < n; k++) {
      if (k) {
        if (k % per_line == 0) {
          sb_puts(b, ",\n");
          sb_spaces(b, indent + 1);
        } else {
          sb_puts(b, ", ");
        }
      }
      int64_t i = shown_index(c, dim, k);
      if (i < 0) {
        put_padded(c, "...");
      } else {
        char buf[64];
        fmt_elem(buf, sizeof buf, c->data, t->dtype, off + i * t->strides[dim]);
        put_padded(c, buf);
      }
    }
  } else {
    for (int64_t k = 0; k < n; k++) {
      if (k) {
        if (c->multiline) {
          sb_puts(b, ",");
          for (int j = 0; j < t->ndim - 1 - dim; j++)
            sb_puts(b, "\n");
          sb_spaces(b, indent + 1);
        } else {
          sb_puts(b, ", ");
        }
      }
      int64_t i = shown_index(c, dim, k);
      if (i < 0)
        sb_puts(b, "...");
      else
        emit(c, dim + 1, off + i * t->strides[dim]);
    }
  }
  sb_puts(b, "]");
}

static void put_suffix(sbuf *b, const lc_tensor *t) {
  if (t->dtype != LC_FLOAT32) {
    sb_puts(b, ", dtype=");
    sb_puts(b, lc_dtype_name(t->dtype));
  }
  sb_puts(b, ")");
}

lc_status lc_to_string(const lc_tensor *t, char **out) {
  if (!t) return lc_set_error(LC_EARG, "to_string: tensor is NULL");
  if (!out) return lc_set_error(LC_EARG, "to_string: out is NULL");
  sbuf b = {0};
  sb_puts(&b, "tensor(");
  if (t->ndim == 0) {
    char buf[64];
    fmt_elem(buf, sizeof buf, lc_data(t), t->dtype, 0);
    sb_puts(&b, buf);
    put_suffix(&b, t);
  } else if (t->numel == 0) {
    sb_puts(&b, "[]");
    if (t->ndim != 1) {
      char shape[LC_MAX_DIMS * 24 + 4];
      sb_puts(&b, ", size=");
      sb_puts(&b, lc_shape_str(t->ndim, t->shape, shape, sizeof shape));
    }
    put_suffix(&b, t);
  } else {
    fmt_ctx c = {.t = t, .data = lc_data(t), .summarise = t->numel > SUMMARY_THRESHOLD, .out = &b};
    emit(&c, 0, 0);
    put_suffix(&b, t);
    if (!b.oom && b.len > LINE_WIDTH) {
      b.len = PREFIX_LEN; /* keep "tensor(" and redo the body in the multi-line layout */
      b.p[b.len] = '\0';
      c.multiline = true;
      measure(&c, 0, 0);
      emit(&c, 0, 0);
      put_suffix(&b, t);
    }
  }
  if (b.oom) {
    free(b.p);
    return lc_error_oom(b.cap * 2);
  }
  *out = b.p;
  return LC_OK;
}

void lc_free(void *p) { free(p); }
