/*
 * safetensors.c - reading and writing .safetensors checkpoints (include/lucid_io.h).
 *
 * The reader trusts nothing: the header length, the JSON (parsed here by a small parser that
 * knows only what the format needs), every dtype, shape and offset are checked before a byte of
 * tensor data is read, so a damaged or hostile file gives LC_EFORMAT, never an out-of-bounds
 * access. The writer follows the reference implementation's layout byte for byte (sort order,
 * compact JSON, space padding) and replaces the target atomically (temp file, fsync, rename).
 */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000ull /* the reference's limit */

/* ---------------------------------------------------------------- dtypes */

typedef enum { CV_SAME, CV_U8, CV_I8, CV_I16, CV_U16, CV_U32, CV_NONE } cv_kind;

typedef struct st_dtype {
  const char *name;
  int rank;    /* position in the reference's Dtype enum (sort key when writing) */
  size_t size; /* bytes per element in the file */
  lc_dtype dt; /* what lucid loads it as */
  cv_kind cv;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"BOOL", 0, 1, LC_BOOL, CV_SAME},       {"U8", 1, 1, LC_INT32, CV_U8},
    {"I8", 2, 1, LC_INT32, CV_I8},          {"F8_E5M2", 3, 1, LC_FLOAT32, CV_NONE},
    {"F8_E4M3", 4, 1, LC_FLOAT32, CV_NONE}, {"I16", 5, 2, LC_INT32, CV_I16},
    {"U16", 6, 2, LC_INT32, CV_U16},        {"F16", 7, 2, LC_FLOAT16, CV_SAME},
    {"BF16", 8, 2, LC_BFLOAT16, CV_SAME},   {"I32", 9, 4, LC_INT32, CV_SAME},
    {"U32", 10, 4, LC_INT64, CV_U32},       {"F32", 11, 4, LC_FLOAT32, CV_SAME},
    {"F64", 12, 8, LC_FLOAT64, CV_SAME},    {"I64", 13, 8, LC_INT64, CV_SAME},
    {"U64", 14, 8, LC_INT64, CV_NONE},
};
#define ST_NDTYPES (sizeof st_dtypes / sizeof *st_dtypes)

static const st_dtype *st_dtype_by_name(const char *s) {
  for (size_t i = 0; i < ST_NDTYPES; i++)
    if (strcmp(st_dtypes[i].name, s) == 0) return &st_dtypes[i];
  return NULL;
}

static const st_dtype *st_dtype_of(lc_dtype dt) {
  static const char *names[LC_DTYPE_COUNT] = {"F32", "F64", "I32", "I64", "BOOL", "F16", "BF16"};
  return st_dtype_by_name(names[dt]);
}

static bool little_endian_host(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* ---------------------------------------------------------------- UTF-8 */

static bool utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else
      return false;
    if (n - i < len) return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    /* overlong forms, surrogates, > U+10FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

/* ---------------------------------------------------------------- the JSON header parser */

typedef struct st_entry {
  char *name;
  const st_dtype *dtype;
  int ndim;
  int64_t shape[LC_MAX_DIMS];
  uint64_t begin, end;
  int64_t numel;
} st_entry;

typedef struct jp {
  const char *p, *end;
  const char *fn, *label; /* for messages */
  const char *start;
} jp;

#define JP_MAX_DEPTH 64

static lc_status jp_fail(jp *j, const char *what) {
  return lc_set_error(LC_EFORMAT, "%s: %s: malformed header JSON at byte %lld: %s", j->fn, j->label,
                      (long long)(j->p - j->start), what);
}

static void jp_ws(jp *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static bool jp_peek(jp *j, char c) {
  jp_ws(j);
  return j->p < j->end && *j->p == c;
}

static lc_status jp_expect(jp *j, char c) {
  jp_ws(j);
  if (j->p >= j->end) {
    char m[48];
    snprintf(m, sizeof m, "expected '%c', got the end of the header", c);
    return jp_fail(j, m);
  }
  if (*j->p != c) {
    char m[64];
    unsigned char g = (unsigned char)*j->p;
    if (g >= 0x20 && g < 0x7f)
      snprintf(m, sizeof m, "expected '%c', got '%c'", c, g);
    else
      snprintf(m, sizeof m, "expected '%c', got byte 0x%02x", c, g);
    return jp_fail(j, m);
  }
  j->p++;
  return LC_OK;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

static lc_status jp_hex4(jp *j, uint32_t *out) {
  if (j->end - j->p < 4) return jp_fail(j, "truncated \\u escape");
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval(j->p[k]);
    if (h < 0) return jp_fail(j, "bad hex digit in \\u escape");
    v = v * 16 + (uint32_t)h;
  }
  j->p += 4;
  *out = v;
  return LC_OK;
}

/* Parses a string; *out is malloc'ed (NUL-terminated; an embedded \u0000 is refused). */
static lc_status jp_string(jp *j, char **out) {
  lc_status st = jp_expect(j, '"');
  if (st) return st;
  /* the decoded string is never longer than the encoded one */
  const char *q = j->p;
  while (q < j->end && *q != '"')
    q += (*q == '\\' && q + 1 < j->end) ? 2 : 1;
  if (q >= j->end) return jp_fail(j, "unterminated string");
  char *s = malloc((size_t)(q - j->p) + 1);
  if (!s) return lc_error_oom((size_t)(q - j->p) + 1);
  size_t n = 0;
  while (*j->p != '"') {
    unsigned char c = (unsigned char)*j->p;
    if (c < 0x20) {
      free(s);
      return jp_fail(j, "control character inside a string");
    }
    if (c != '\\') {
      s[n++] = (char)c;
      j->p++;
      continue;
    }
    j->p++; /* the scan above guarantees a character follows */
    char e = *j->p++;
    switch (e) {
    case '"': s[n++] = '"'; break;
    case '\\': s[n++] = '\\'; break;
    case '/': s[n++] = '/'; break;
    case 'b': s[n++] = '\b'; break;
    case 'f': s[n++] = '\f'; break;
    case 'n': s[n++] = '\n'; break;
    case 'r': s[n++] = '\r'; break;
    case 't': s[n++] = '\t'; break;
    case 'u': {
      uint32_t cp;
      if ((st = jp_hex4(j, &cp))) {
        free(s);
        return st;
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') {
          free(s);
          return jp_fail(j, "unpaired surrogate in \\u escape");
        }
        j->p += 2;
        if ((st = jp_hex4(j, &lo))) {
          free(s);
          return st;
        }
        if (lo < 0xDC00 || lo > 0xDFFF) {
          free(s);
          return jp_fail(j, "unpaired surrogate in \\u escape");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        free(s);
        return jp_fail(j, "unpaired surrogate in \\u escape");
      } else if (cp == 0) {
        free(s);
        return jp_fail(j, "\\u0000 inside a string");
      }
      /* \uXXXX takes 6 input bytes and at most 3 output bytes; a pair 12 -> 4 */
      n += put_utf8(s + n, cp);
      break;
    }
    default: free(s); return jp_fail(j, "unknown escape in a string");
    }
  }
  j->p++;
  s[n] = '\0';
  *out = s;
  return LC_OK;
}

/* A non-negative integer (shapes and offsets). */
static lc_status jp_uint(jp *j, uint64_t *out) {
  jp_ws(j);
  if (j->p >= j->end || *j->p < '0' || *j->p > '9')
    return jp_fail(j, "expected a non-negative integer");
  uint64_t v = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    uint64_t d = (uint64_t)(*j->p - '0');
    if (v > (UINT64_MAX - d) / 10) return jp_fail(j, "integer too large");
    v = v * 10 + d;
    j->p++;
  }
  if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
    return jp_fail(j, "expected an integer, got a fraction or exponent");
  *out = v;
  return LC_OK;
}

/* Skips any JSON value (unknown fields of a tensor entry are ignored, as the reference does). */
static lc_status jp_skip(jp *j, int depth) {
  if (depth > JP_MAX_DEPTH) return jp_fail(j, "nesting too deep");
  jp_ws(j);
  if (j->p >= j->end) return jp_fail(j, "expected a value, got the end of the header");
  char c = *j->p;
  lc_status st;
  if (c == '"') {
    char *s;
    if ((st = jp_string(j, &s))) return st;
    free(s);
    return LC_OK;
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    j->p++;
    if (jp_peek(j, close)) {
      j->p++;
      return LC_OK;
    }
    for (;;) {
      if (c == '{') {
        char *k;
        if ((st = jp_string(j, &k))) return st;
        free(k);
        if ((st = jp_expect(j, ':'))) return st;
      }
      if ((st = jp_skip(j, depth + 1))) return st;
      if (jp_peek(j, ',')) {
        j->p++;
        continue;
      }
      return jp_expect(j, close);
    }
  }
  static const char *const words[] = {"true", "false", "null"};
  for (int k = 0; k < 3; k++) {
    size_t len = strlen(words[k]);
    if ((size_t)(j->end - j->p) >= len && memcmp(j->p, words[k], len) == 0) {
      j->p += len;
      return LC_OK;
    }
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    j->p++;
    while (j->p < j->end && strchr("0123456789.eE+-", *j->p) && *j->p)
      j->p++;
    return LC_OK;
  }
  return jp_fail(j, "expected a value");
}

static lc_status jp_tensor(jp *j, st_entry *e) {
  lc_status st = jp_expect(j, '{');
  if (st) return st;
  bool have_dtype = false, have_shape = false, have_offsets = false;
  if (jp_peek(j, '}')) {
    j->p++;
  } else {
    for (;;) {
      char *k;
      if ((st = jp_string(j, &k))) return st;
      if ((st = jp_expect(j, ':'))) {
        free(k);
        return st;
      }
      if (strcmp(k, "dtype") == 0) {
        free(k);
        if (have_dtype) return jp_fail(j, "\"dtype\" given twice");
        char *d;
        if ((st = jp_string(j, &d))) return st;
        e->dtype = st_dtype_by_name(d);
        if (!e->dtype) {
          st = lc_set_error(LC_EFORMAT, "%s: %s: tensor '%s' has unknown dtype \"%.40s\"", j->fn,
                            j->label, e->name, d);
          free(d);
          return st;
        }
        free(d);
        have_dtype = true;
      } else if (strcmp(k, "shape") == 0) {
        free(k);
        if (have_shape) return jp_fail(j, "\"shape\" given twice");
        if ((st = jp_expect(j, '['))) return st;
        e->ndim = 0;
        if (jp_peek(j, ']')) {
          j->p++;
        } else {
          for (;;) {
            uint64_t v;
            if ((st = jp_uint(j, &v))) return st;
            if (e->ndim == LC_MAX_DIMS)
              return lc_set_error(LC_EFORMAT, "%s: %s: tensor '%s' has more than %d dims", j->fn,
                                  j->label, e->name, LC_MAX_DIMS);
            if (v > (uint64_t)INT64_MAX)
              return lc_set_error(LC_EFORMAT, "%s: %s: tensor '%s': dim size %llu too large", j->fn,
                                  j->label, e->name, (unsigned long long)v);
            e->shape[e->ndim++] = (int64_t)v;
            if (jp_peek(j, ',')) {
              j->p++;
              continue;
            }
            if ((st = jp_expect(j, ']'))) return st;
            break;
          }
        }
        have_shape = true;
      } else if (strcmp(k, "data_offsets") == 0) {
        free(k);
        if (have_offsets) return jp_fail(j, "\"data_offsets\" given twice");
        if ((st = jp_expect(j, '['))) return st;
        if ((st = jp_uint(j, &e->begin))) return st;
        if ((st = jp_expect(j, ','))) return st;
        if ((st = jp_uint(j, &e->end))) return st;
        if ((st = jp_expect(j, ']'))) return st;
        have_offsets = true;
      } else {
        free(k);
        if ((st = jp_skip(j, 1))) return st;
      }
      if (jp_peek(j, ',')) {
        j->p++;
        continue;
      }
      if ((st = jp_expect(j, '}'))) return st;
      break;
    }
  }
  if (!have_dtype || !have_shape || !have_offsets)
    return lc_set_error(LC_EFORMAT, "%s: %s: tensor '%s' lacks \"%s\"", j->fn, j->label, e->name,
                        !have_dtype   ? "dtype"
                        : !have_shape ? "shape"
                                      : "data_offsets");
  return LC_OK;
}

/* A growable array of pointers / entries. */
typedef struct parsed {
  st_entry *e;
  int64_t n, cap;
  char **mk, **mv;
  int64_t nm, mcap;
  bool have_meta;
} parsed;

static void parsed_free(parsed *p) {
  for (int64_t i = 0; i < p->n; i++)
    free(p->e[i].name);
  for (int64_t i = 0; i < p->nm; i++) {
    free(p->mk[i]);
    free(p->mv[i]);
  }
  free(p->e);
  free(p->mk);
  free(p->mv);
}

static lc_status jp_metadata(jp *j, parsed *p) {
  lc_status st;
  jp_ws(j);
  if ((size_t)(j->end - j->p) >= 4 && memcmp(j->p, "null", 4) == 0) {
    j->p += 4;
    return LC_OK;
  }
  if ((st = jp_expect(j, '{'))) return st;
  if (jp_peek(j, '}')) {
    j->p++;
    return LC_OK;
  }
  for (;;) {
    if (p->nm == p->mcap) {
      int64_t cap = p->mcap ? p->mcap * 2 : 8;
      char **k = realloc(p->mk, (size_t)cap * sizeof *k);
      if (!k) return lc_error_oom((size_t)cap * sizeof *k);
      p->mk = k;
      char **v = realloc(p->mv, (size_t)cap * sizeof *v);
      if (!v) return lc_error_oom((size_t)cap * sizeof *v);
      p->mv = v;
      p->mcap = cap;
    }
    char *k, *v;
    if ((st = jp_string(j, &k))) return st;
    if ((st = jp_expect(j, ':'))) {
      free(k);
      return st;
    }
    jp_ws(j);
    if (j->p < j->end && *j->p != '"') {
      free(k);
      return jp_fail(j, "__metadata__ values must be strings");
    }
    if ((st = jp_string(j, &v))) {
      free(k);
      return st;
    }
    for (int64_t i = 0; i < p->nm; i++) {
      if (strcmp(p->mk[i], k) == 0) {
        st = lc_set_error(LC_EFORMAT, "%s: %s: __metadata__ key \"%.60s\" given twice", j->fn,
                          j->label, k);
        free(k);
        free(v);
        return st;
      }
    }
    p->mk[p->nm] = k;
    p->mv[p->nm] = v;
    p->nm++;
    if (jp_peek(j, ',')) {
      j->p++;
      continue;
    }
    return jp_expect(j, '}');
  }
}

static lc_status jp_header(jp *j, parsed *p) {
  lc_status st = jp_expect(j, '{');
  if (st) return st;
  if (jp_peek(j, '}')) {
    j->p++;
  } else {
    for (;;) {
      char *k;
      if ((st = jp_string(j, &k))) return st;
      if ((st = jp_expect(j, ':'))) {
        free(k);
        return st;
      }
      if (strcmp(k, "__metadata__") == 0) {
        free(k);
        if (p->have_meta) return jp_fail(j, "__metadata__ given twice");
        p->have_meta = true;
        if ((st = jp_metadata(j, p))) return st;
      } else {
        if (p->n == p->cap) {
          int64_t cap = p->cap ? p->cap * 2 : 16;
          st_entry *e = realloc(p->e, (size_t)cap * sizeof *e);
          if (!e) {
            free(k);
            return lc_error_oom((size_t)cap * sizeof *e);
          }
          p->e = e;
          p->cap = cap;
        }
        st_entry *e = &p->e[p->n++];
        memset(e, 0, sizeof *e);
        e->name = k;
        if ((st = jp_tensor(j, e))) return st;
      }
      if (jp_peek(j, ',')) {
        j->p++;
        continue;
      }
      if ((st = jp_expect(j, '}'))) return st;
      break;
    }
  }
  jp_ws(j);
  if (j->p != j->end) return jp_fail(j, "unexpected bytes after the header object");
  return LC_OK;
}

/* ---------------------------------------------------------------- validation */

static int cmp_name_idx(const void *a, const void *b, void *ctx) {
  char **names = ctx;
  return strcmp(names[*(const int64_t *)a], names[*(const int64_t *)b]);
}

/* qsort_r is a GNU extension; _GNU_SOURCE is set by the build. */
static int cmp_entry_ptr_offsets(const void *a, const void *b) {
  const st_entry *x = *(st_entry *const *)a, *y = *(st_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

static void shape_text(const st_entry *e, char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "{");
  for (int d = 0; d < e->ndim && k < cap; d++)
    k += (size_t)snprintf(buf + k, cap - k, d ? ", %lld" : "%lld", (long long)e->shape[d]);
  if (k < cap) snprintf(buf + k, cap - k, "}");
}

/* Checks every entry against the data section of `data_len` bytes; fills numel. *order gets
 * the entries sorted by offset (malloc'ed). */
static lc_status validate(const char *fn, const char *label, parsed *p, uint64_t data_len,
                          st_entry ***order) {
  *order = NULL;
  if (p->n == 0) {
    if (data_len != 0)
      return lc_set_error(LC_EFORMAT, "%s: %s: %llu bytes of data but no tensors", fn, label,
                          (unsigned long long)data_len);
    return LC_OK;
  }
  /* duplicate names */
  int64_t *idx = malloc((size_t)p->n * sizeof *idx);
  char **names = malloc((size_t)p->n * sizeof *names);
  st_entry **ord = malloc((size_t)p->n * sizeof *ord);
  if (!idx || !names || !ord) {
    free(idx);
    free(names);
    free(ord);
    return lc_error_oom((size_t)p->n * sizeof *idx);
  }
  for (int64_t i = 0; i < p->n; i++) {
    idx[i] = i;
    names[i] = p->e[i].name;
    ord[i] = &p->e[i];
  }
  qsort_r(idx, (size_t)p->n, sizeof *idx, cmp_name_idx, names);
  lc_status st = LC_OK;
  for (int64_t i = 1; i < p->n && !st; i++)
    if (strcmp(names[idx[i]], names[idx[i - 1]]) == 0)
      st = lc_set_error(LC_EFORMAT, "%s: %s: tensor '%s' appears twice in the header", fn, label,
                        names[idx[i]]);
  free(idx);
  free(names);
  for (int64_t i = 0; i < p->n && !st; i++) {
    st_entry *e = &p->e[i];
    char sh[200];
    uint64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
      if (__builtin_mul_overflow(numel, (uint64_t)e->shape[d], &numel) ||
          numel > (uint64_t)INT64_MAX) {
        shape_text(e, sh, sizeof sh);
        st = lc_set_error(LC_EFORMAT, "%s: %s: tensor '%s': shape %s overflows", fn, label, e->name,
                          sh);
        break;
      }
    }
    if (st) break;
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)e->dtype->size, &nbytes)) {
      shape_text(e, sh, sizeof sh);
      st = lc_set_error(LC_EFORMAT, "%s: %s: tensor '%s': byte size of shape %s of %s overflows",
                        fn, label, e->name, sh, e->dtype->name);
      break;
    }
    if (e->end < e->begin) {
      st = lc_set_error(LC_EFORMAT,
                        "%s: %s: tensor '%s': data_offsets [%llu, %llu] end before they begin", fn,
                        label, e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
      break;
    }
    if (e->end > data_len) {
      st = lc_set_error(LC_EFORMAT,
                        "%s: %s: tensor '%s': data_offsets [%llu, %llu] run past the end of the "
                        "data (%llu bytes; file truncated?)",
                        fn, label, e->name, (unsigned long long)e->begin,
                        (unsigned long long)e->end, (unsigned long long)data_len);
      break;
    }
    if (e->end - e->begin != nbytes) {
      shape_text(e, sh, sizeof sh);
      st = lc_set_error(LC_EFORMAT,
                        "%s: %s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape "
                        "%s of %s needs %llu",
                        fn, label, e->name, (unsigned long long)e->begin,
                        (unsigned long long)e->end, (unsigned long long)(e->end - e->begin), sh,
                        e->dtype->name, (unsigned long long)nbytes);
      break;
    }
    e->numel = (int64_t)numel;
  }
  if (!st) {
    /* contiguous from 0 to data_len, no overlap, no gap (as the reference requires) */
    qsort(ord, (size_t)p->n, sizeof *ord, cmp_entry_ptr_offsets);
    uint64_t at = 0;
    for (int64_t i = 0; i < p->n && !st; i++) {
      if (ord[i]->begin < at)
        st = lc_set_error(LC_EFORMAT,
                          "%s: %s: tensor '%s': data_offsets [%llu, %llu] overlap the "
                          "previous tensor, which ends at %llu",
                          fn, label, ord[i]->name, (unsigned long long)ord[i]->begin,
                          (unsigned long long)ord[i]->end, (unsigned long long)at);
      else if (ord[i]->begin > at)
        st = lc_set_error(LC_EFORMAT,
                          "%s: %s: tensor '%s': data_offsets [%llu, %llu] leave a gap "
                          "after byte %llu",
                          fn, label, ord[i]->name, (unsigned long long)ord[i]->begin,
                          (unsigned long long)ord[i]->end, (unsigned long long)at);
      at = ord[i]->end;
    }
    if (!st && at != data_len)
      st = lc_set_error(LC_EFORMAT,
                        "%s: %s: the data section holds %llu bytes but the tensors "
                        "cover %llu",
                        fn, label, (unsigned long long)data_len, (unsigned long long)at);
    if (!st) {
      for (int64_t i = 0; i < p->n && !st; i++)
        if (p->e[i].dtype->cv == CV_NONE)
          st = lc_set_error(LC_EDTYPE, "%s: %s: tensor '%s' has dtype %s, which lucid cannot load",
                            fn, label, p->e[i].name, p->e[i].dtype->name);
    }
  }
  if (st) {
    free(ord);
    return st;
  }
  *order = ord;
  return LC_OK;
}

/* ---------------------------------------------------------------- reading */

/* Where the bytes come from: a FILE (read sequentially) or a memory buffer. */
typedef struct src {
  FILE *f;
  const unsigned char *buf;
  uint64_t len; /* total bytes */
  uint64_t pos;
  const char *fn, *label;
} src;

static lc_status src_read(src *s, void *dst, size_t n) {
  if (n == 0) return LC_OK;
  if (s->len - s->pos < n)
    return lc_set_error(LC_EFORMAT, "%s: %s: file truncated at byte %llu", s->fn, s->label,
                        (unsigned long long)s->len);
  if (s->buf) {
    memcpy(dst, s->buf + s->pos, n);
  } else if (fread(dst, 1, n, s->f) != n) {
    if (ferror(s->f))
      return lc_set_error(LC_EIO, "%s: %s: read error: %s", s->fn, s->label, strerror(errno));
    return lc_set_error(LC_EFORMAT, "%s: %s: file ended early (shrank while being read?)", s->fn,
                        s->label);
  }
  s->pos += n;
  return LC_OK;
}

static void convert(cv_kind cv, const unsigned char *in, void *outp, int64_t n) {
  switch (cv) {
  case CV_U8:
    for (int64_t i = 0; i < n; i++)
      ((int32_t *)outp)[i] = in[i];
    break;
  case CV_I8:
    for (int64_t i = 0; i < n; i++)
      ((int32_t *)outp)[i] = (int8_t)in[i];
    break;
  case CV_I16:
    for (int64_t i = 0; i < n; i++)
      ((int32_t *)outp)[i] = (int16_t)(uint16_t)(in[2 * i] | (in[2 * i + 1] << 8));
    break;
  case CV_U16:
    for (int64_t i = 0; i < n; i++)
      ((int32_t *)outp)[i] = (uint16_t)(in[2 * i] | (in[2 * i + 1] << 8));
    break;
  case CV_U32:
    for (int64_t i = 0; i < n; i++)
      ((int64_t *)outp)[i] =
          (int64_t)((uint32_t)in[4 * i] | ((uint32_t)in[4 * i + 1] << 8) |
                    ((uint32_t)in[4 * i + 2] << 16) | ((uint32_t)in[4 * i + 3] << 24));
    break;
  default: break;
  }
}

void lc_safetensors_free(lc_safetensors *f) {
  if (!f) return;
  for (int64_t i = 0; i < f->count; i++) {
    if (f->names) free(f->names[i]);
    if (f->tensors) lc_release(f->tensors[i]);
  }
  for (int64_t i = 0; i < f->meta_count; i++) {
    free(f->meta_keys[i]);
    free(f->meta_values[i]);
  }
  free(f->names);
  free(f->tensors);
  free(f->file_dtypes);
  free(f->meta_keys);
  free(f->meta_values);
  free(f);
}

static lc_status load_from(src *s, lc_safetensors **out) {
  const char *fn = s->fn, *label = s->label;
  if (!little_endian_host())
    return lc_set_error(LC_EIO, "%s: big-endian hosts are not supported", fn);
  if (s->len < 8)
    return lc_set_error(LC_EFORMAT,
                        "%s: %s: %llu bytes, too short for a safetensors file "
                        "(needs at least the 8-byte header length)",
                        fn, label, (unsigned long long)s->len);
  unsigned char lenb[8];
  lc_status st = src_read(s, lenb, 8);
  if (st) return st;
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--)
    hlen = (hlen << 8) | lenb[k];
  if (hlen > ST_MAX_HEADER)
    return lc_set_error(LC_EFORMAT,
                        "%s: %s: header length %llu is larger than the %llu-byte "
                        "limit (not a safetensors file?)",
                        fn, label, (unsigned long long)hlen, ST_MAX_HEADER);
  if (hlen < 2)
    return lc_set_error(LC_EFORMAT, "%s: %s: header length %llu is too small for a JSON object", fn,
                        label, (unsigned long long)hlen);
  if (hlen > s->len - 8)
    return lc_set_error(LC_EFORMAT,
                        "%s: %s: header length %llu runs past the end of the file "
                        "(%llu bytes)",
                        fn, label, (unsigned long long)hlen, (unsigned long long)s->len);
  char *h = malloc((size_t)hlen);
  if (!h) return lc_error_oom((size_t)hlen);
  if ((st = src_read(s, h, (size_t)hlen))) {
    free(h);
    return st;
  }
  if (!utf8_valid((const unsigned char *)h, (size_t)hlen)) {
    free(h);
    return lc_set_error(LC_EFORMAT, "%s: %s: header is not valid UTF-8", fn, label);
  }
  jp j = {h, h + hlen, fn, label, h};
  parsed p = {0};
  st = jp_header(&j, &p);
  free(h);
  st_entry **ord = NULL;
  if (!st) st = validate(fn, label, &p, s->len - 8 - hlen, &ord);
  if (st) {
    parsed_free(&p);
    return st;
  }
  lc_safetensors *f = calloc(1, sizeof *f);
  if (!f) {
    free(ord);
    parsed_free(&p);
    return lc_error_oom(sizeof *f);
  }
  size_t n = (size_t)p.n;
  f->names = calloc(n ? n : 1, sizeof *f->names);
  f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
  f->file_dtypes = calloc(n ? n : 1, sizeof *f->file_dtypes);
  if (!f->names || !f->tensors || !f->file_dtypes) {
    free(ord);
    parsed_free(&p);
    lc_safetensors_free(f);
    return lc_error_oom(n * sizeof(void *));
  }
  f->count = p.n;
  /* move names; keep header order */
  for (int64_t i = 0; i < p.n; i++) {
    f->names[i] = p.e[i].name;
    p.e[i].name = NULL;
    f->file_dtypes[i] = p.e[i].dtype->name;
  }
  f->meta_keys = p.mk;
  f->meta_values = p.mv;
  f->meta_count = p.nm;
  p.mk = p.mv = NULL;
  p.nm = 0;
  /* read the data in file order (sequential reads); the output keeps header order */
  unsigned char *tmp = NULL;
  size_t tmp_cap = 0;
  for (int64_t k = 0; k < p.n && !st; k++) {
    st_entry *e = ord[k];
    int64_t i = e - p.e;
    lc_tensor *t = NULL;
    if ((st = lc_tensor_new(e->ndim, e->shape, e->dtype->dt, &t))) break;
    f->tensors[i] = t;
    size_t nbytes = (size_t)(e->end - e->begin);
    if (e->dtype->cv == CV_SAME) {
      st = src_read(s, lc_data(t), nbytes);
    } else {
      if (nbytes > tmp_cap) {
        unsigned char *b = realloc(tmp, nbytes);
        if (!b) {
          st = lc_error_oom(nbytes);
          break;
        }
        tmp = b;
        tmp_cap = nbytes;
      }
      if (!(st = src_read(s, tmp, nbytes))) convert(e->dtype->cv, tmp, lc_data(t), e->numel);
    }
    if (!st && e->dtype->dt == LC_BOOL) {
      /* lucid's bools are exactly 0 or 1; normalise whatever byte the file holds */
      unsigned char *b = lc_data(t);
      for (size_t q = 0; q < nbytes; q++)
        b[q] = b[q] != 0;
    }
  }
  free(tmp);
  free(ord);
  parsed_free(&p);
  if (st) {
    lc_safetensors_free(f);
    return st;
  }
  *out = f;
  return LC_OK;
}

lc_status lc_safetensors_load(const char *path, lc_safetensors **out) {
  const char *fn = "lc_safetensors_load";
  if (!path || !out) return lc_set_error(LC_EARG, "%s: path and out must not be NULL", fn);
  lc_status pst = lc_file_check(fn, path, LC_FILE_READ);
  if (pst) return pst;
  FILE *fp = fopen(path, "rb");
  if (!fp) return lc_set_error(LC_EIO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(fp), &sb) != 0) {
    lc_status st = lc_set_error(LC_EIO, "%s: cannot stat '%s': %s", fn, path, strerror(errno));
    fclose(fp);
    return st;
  }
  if (!S_ISREG(sb.st_mode)) {
    fclose(fp);
    return lc_set_error(LC_EIO, "%s: '%s' is not a regular file%s", fn, path,
                        S_ISDIR(sb.st_mode) ? " (a directory)" : "");
  }
  src s = {fp, NULL, (uint64_t)sb.st_size, 0, fn, path};
  lc_status st = load_from(&s, out);
  fclose(fp);
  return st;
}

lc_status lc_safetensors_load_buffer(const void *data, size_t len, const char *label,
                                     lc_safetensors **out) {
  const char *fn = "lc_safetensors_load_buffer";
  if ((!data && len) || !out) return lc_set_error(LC_EARG, "%s: data and out must not be NULL", fn);
  static const unsigned char empty[1] = {0};
  src s = {NULL, data ? data : empty, len, 0, fn, label ? label : "<buffer>"};
  return load_from(&s, out);
}

lc_tensor *lc_safetensors_get(const lc_safetensors *f, const char *name) {
  if (!f || !name) return NULL;
  for (int64_t i = 0; i < f->count; i++)
    if (strcmp(f->names[i], name) == 0) return f->tensors[i];
  return NULL;
}

const char *lc_safetensors_meta(const lc_safetensors *f, const char *key) {
  if (!f || !key) return NULL;
  for (int64_t i = 0; i < f->meta_count; i++)
    if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
  return NULL;
}

/* ---------------------------------------------------------------- writing */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = true;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string as serde_json writes it: ", \ and control characters escaped, the rest raw. */
static void sb_json_string(sbuf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char e[8];
    switch (*c) {
    case '"': sb_put(b, "\\\"", 2); break;
    case '\\': sb_put(b, "\\\\", 2); break;
    case '\b': sb_put(b, "\\b", 2); break;
    case '\f': sb_put(b, "\\f", 2); break;
    case '\n': sb_put(b, "\\n", 2); break;
    case '\r': sb_put(b, "\\r", 2); break;
    case '\t': sb_put(b, "\\t", 2); break;
    default:
      if (*c < 0x20) {
        snprintf(e, sizeof e, "\\u%04x", *c);
        sb_put(b, e, 6);
      } else {
        sb_put(b, (const char *)c, 1);
      }
    }
  }
  sb_put(b, "\"", 1);
}

typedef struct wentry {
  const char *name;
  const lc_tensor *t;
  const st_dtype *dt;
} wentry;

static int cmp_wentry(const void *a, const void *b) {
  const wentry *x = a, *y = b;
  if (x->dt->rank != y->dt->rank) return y->dt->rank - x->dt->rank; /* larger alignment first */
  return strcmp(x->name, y->name);
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static lc_status check_strings(const char *fn, const char *what, int64_t n, const char *const *s) {
  for (int64_t i = 0; i < n; i++) {
    if (!s[i]) return lc_set_error(LC_EARG, "%s: %s %lld is NULL", fn, what, (long long)i);
    if (!utf8_valid((const unsigned char *)s[i], strlen(s[i])))
      return lc_set_error(LC_EARG, "%s: %s %lld is not valid UTF-8", fn, what, (long long)i);
  }
  if (n < 2) return LC_OK;
  const char **sorted = malloc((size_t)n * sizeof *sorted);
  if (!sorted) return lc_error_oom((size_t)n * sizeof *sorted);
  memcpy(sorted, s, (size_t)n * sizeof *sorted);
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
  lc_status st = LC_OK;
  for (int64_t i = 1; i < n && !st; i++)
    if (strcmp(sorted[i], sorted[i - 1]) == 0)
      st = lc_set_error(LC_EARG, "%s: %s \"%s\" given twice", fn, what, sorted[i]);
  free(sorted);
  return st;
}

static lc_status write_all(FILE *fp, const void *p, size_t n, const char *fn, const char *path) {
  if (n && fwrite(p, 1, n, fp) != n)
    return lc_set_error(LC_EIO, "%s: writing '%s' failed: %s", fn, path, strerror(errno));
  return LC_OK;
}

/* Builds the header bytes (padded) for the sorted entries. */
static lc_status build_header(const char *fn, int64_t count, const wentry *w, int64_t meta_count,
                              const char *const *mk, const char *const *mv, sbuf *b) {
  sb_str(b, "{");
  bool first = true;
  if (meta_count > 0) {
    sb_str(b, "\"__metadata__\":{");
    for (int64_t i = 0; i < meta_count; i++) {
      if (i) sb_str(b, ",");
      sb_json_string(b, mk[i]);
      sb_str(b, ":");
      sb_json_string(b, mv[i]);
    }
    sb_str(b, "}");
    first = false;
  }
  uint64_t off = 0;
  for (int64_t i = 0; i < count; i++) {
    char num[64];
    if (!first) sb_str(b, ",");
    first = false;
    sb_json_string(b, w[i].name);
    sb_str(b, ":{\"dtype\":\"");
    sb_str(b, w[i].dt->name);
    sb_str(b, "\",\"shape\":[");
    int nd = lc_ndim(w[i].t);
    const int64_t *shape = lc_shape(w[i].t);
    for (int d = 0; d < nd; d++) {
      snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)shape[d]);
      sb_str(b, num);
    }
    uint64_t nbytes = (uint64_t)lc_numel(w[i].t) * w[i].dt->size;
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
             (unsigned long long)(off + nbytes));
    sb_str(b, num);
    off += nbytes;
  }
  sb_str(b, "}");
  while (!b->oom && b->n % 8)
    sb_str(b, " ");
  if (b->oom) return lc_error_oom(b->cap * 2);
  (void)fn;
  return LC_OK;
}

/* A writer holds an exclusive flock on its temporary file ("<path>.tmp.XXXXXX") from creation
 * to the rename; the kernel drops it when the writer dies, kill -9 included. A save first
 * reclaims the temporaries of its target whose writer is gone: those it can lock. A file
 * younger than TMP_GRACE_S seconds is left alone: between mkstemp and flock, and between
 * fclose and rename, a live writer's file is briefly unlocked. So a crash leaves at most the
 * temporaries of the saves killed in the last TMP_GRACE_S seconds, and a live writer's file is
 * never deleted. Best effort: failures leave files, they never fail the save. */
#define TMP_GRACE_S 2

static void reclaim_stale_temps(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t dlen = slash ? (size_t)(slash - path) : 0, blen = strlen(base);
  char dir[4096];
  if (dlen >= sizeof dir) return;
  if (slash) {
    memcpy(dir, path, dlen);
    dir[dlen] = 0;
    if (dlen == 0) strcpy(dir, "/");
  } else {
    strcpy(dir, ".");
  }
  DIR *d = opendir(dir);
  if (!d) return;
  time_t now = time(NULL);
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *n = e->d_name;
    if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0 ||
        strlen(n + blen + 5) != 6)
      continue;
    char full[8192];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, n) >= sizeof full) continue;
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime >= TMP_GRACE_S &&
        flock(fd, LOCK_EX | LOCK_NB) == 0)
      (void)unlink(full); /* its writer is gone: nobody holds its lock */
    close(fd);
  }
  closedir(d);
}

static void fsync_dir_of(const char *path) {
  /* Makes the rename itself durable; failures only weaken durability, so they are ignored. */
  size_t n = strlen(path);
  char *dir = malloc(n + 2);
  if (!dir) return;
  memcpy(dir, path, n + 1);
  char *slash = strrchr(dir, '/');
  if (!slash)
    strcpy(dir, ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

lc_status lc_safetensors_save(const char *path, int64_t count, const char *const *names,
                              lc_tensor *const *tensors, int64_t meta_count,
                              const char *const *meta_keys, const char *const *meta_values) {
  const char *fn = "lc_safetensors_save";
  if (!little_endian_host())
    return lc_set_error(LC_EIO, "%s: big-endian hosts are not supported", fn);
  if (!path || !*path) return lc_set_error(LC_EARG, "%s: path must be a non-empty string", fn);
  lc_status pst = lc_file_check(fn, path, LC_FILE_WRITE); /* its temporaries share its dir */
  if (pst) return pst;
  if (count < 0 || meta_count < 0)
    return lc_set_error(LC_EARG,
                        "%s: counts must be >= 0, got %lld tensors and %lld metadata "
                        "entries",
                        fn, (long long)count, (long long)meta_count);
  if (count > 0 && (!names || !tensors))
    return lc_set_error(LC_EARG, "%s: names and tensors must not be NULL", fn);
  if (meta_count > 0 && (!meta_keys || !meta_values))
    return lc_set_error(LC_EARG, "%s: meta_keys and meta_values must not be NULL", fn);
  lc_status st;
  if ((st = check_strings(fn, "tensor name", count, names))) return st;
  if ((st = check_strings(fn, "metadata key", meta_count, meta_keys))) return st;
  for (int64_t i = 0; i < meta_count; i++) {
    if (!meta_values[i])
      return lc_set_error(LC_EARG, "%s: metadata value %lld is NULL", fn, (long long)i);
    if (!utf8_valid((const unsigned char *)meta_values[i], strlen(meta_values[i])))
      return lc_set_error(LC_EARG, "%s: metadata value for \"%s\" is not valid UTF-8", fn,
                          meta_keys[i]);
  }
  wentry *w = malloc((size_t)(count ? count : 1) * sizeof *w);
  if (!w) return lc_error_oom((size_t)count * sizeof *w);
  for (int64_t i = 0; i < count; i++) {
    if (!tensors[i]) {
      free(w);
      return lc_set_error(LC_EARG, "%s: tensor %lld ('%s') is NULL", fn, (long long)i, names[i]);
    }
    if (strcmp(names[i], "__metadata__") == 0) {
      free(w);
      return lc_set_error(LC_EARG, "%s: \"__metadata__\" is reserved and cannot name a tensor", fn);
    }
    w[i].name = names[i];
    w[i].t = tensors[i];
    w[i].dt = st_dtype_of(lc_dtype_of(tensors[i]));
  }
  qsort(w, (size_t)count, sizeof *w, cmp_wentry);
  sbuf hb = {0};
  if ((st = build_header(fn, count, w, meta_count, meta_keys, meta_values, &hb))) {
    free(hb.p);
    free(w);
    return st;
  }

  /* temp file in the same directory, so rename() is atomic */
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) {
    free(hb.p);
    free(w);
    return lc_error_oom(plen + 16);
  }
  snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
  reclaim_stale_temps(path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    st = lc_set_error(LC_EIO, "%s: cannot create a temporary file next to '%s': %s", fn, path,
                      strerror(errno));
    free(tmp);
    free(hb.p);
    free(w);
    return st;
  }
  /* mkstemp makes 0600; a checkpoint should read like any other file (keep the old mode when
   * replacing one) */
  (void)flock(fd, LOCK_EX); /* ours while we live (reclaim_stale_temps) */
  struct stat old;
  (void)fchmod(fd, stat(path, &old) == 0 ? (old.st_mode & 07777) : 0644);
  FILE *fp = fdopen(fd, "wb");
  if (!fp) {
    st = lc_set_error(LC_EIO, "%s: cannot open the temporary file '%s': %s", fn, tmp,
                      strerror(errno));
    close(fd);
    unlink(tmp);
    free(tmp);
    free(hb.p);
    free(w);
    return st;
  }
  unsigned char lenb[8];
  uint64_t hn = hb.n;
  for (int k = 0; k < 8; k++)
    lenb[k] = (unsigned char)(hn >> (8 * k));
  st = write_all(fp, lenb, 8, fn, tmp);
  if (!st) st = write_all(fp, hb.p, hb.n, fn, tmp);
  for (int64_t i = 0; i < count && !st; i++) {
    /* lc_k_dense, not lc_contiguous: a strided tensor that requires grad must not get a
     * CloneBackward node just because it is being written out */
    lc_tensor *c = NULL;
    if ((st = lc_k_dense(w[i].t, &c))) break;
    st = write_all(fp, lc_data(c), (size_t)lc_numel(c) * w[i].dt->size, fn, tmp);
    lc_release(c);
  }
  if (!st && fflush(fp) != 0)
    st = lc_set_error(LC_EIO, "%s: writing '%s' failed: %s", fn, tmp, strerror(errno));
  if (!st && fsync(fileno(fp)) != 0)
    st = lc_set_error(LC_EIO, "%s: fsync of '%s' failed: %s", fn, tmp, strerror(errno));
  if (fclose(fp) != 0 && !st)
    st = lc_set_error(LC_EIO, "%s: closing '%s' failed: %s", fn, tmp, strerror(errno));
  if (!st && rename(tmp, path) != 0)
    st = lc_set_error(LC_EIO, "%s: cannot rename '%s' to '%s': %s", fn, tmp, path, strerror(errno));
  if (st)
    unlink(tmp);
  else
    fsync_dir_of(path);
  free(tmp);
  free(hb.p);
  free(w);
  return st;
}
