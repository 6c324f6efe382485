/* test_io.c - safetensors checkpoints and IDX files (include/lucid_io.h), corrupt inputs
 * included. */
#include "lucid_io.h"
#include "lucid_nn.h"
#include "test.h"

#include "../src/autograd/autograd.h" /* node sequence numbers */

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---------------------------------------------------------------- helpers */

/* A fresh directory under /tmp (removed with its files by rm_dir). */
static char *tmp_dir(void) {
  char tmpl[] = "/tmp/lucid-io-test-XXXXXX";
  char *d = mkdtemp(tmpl);
  return d ? strdup(d) : NULL;
}

static void rm_dir(char *dir) {
  if (!dir) return;
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
  free(dir);
}

static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static unsigned char *read_bytes(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

static bool write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return false;
  bool ok = fwrite(p, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

static bool has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

static lc_tensor *tensor_of(int ndim, const int64_t *shape, lc_dtype dt, const void *data) {
  lc_tensor *t = NULL;
  return lc_from_data(ndim, shape, dt, data, &t) == LC_OK ? t : NULL;
}

/* A safetensors file in memory: length, the header padded with spaces to 8 bytes, data. */
static unsigned char *st_file(const char *header, const void *data, size_t dlen, size_t *len) {
  size_t h = strlen(header), hp = (h + 7) / 8 * 8;
  unsigned char *b = malloc(8 + hp + dlen + 1);
  uint64_t n = hp;
  for (int k = 0; k < 8; k++)
    b[k] = (unsigned char)(n >> (8 * k));
  memcpy(b + 8, header, h);
  memset(b + 8 + h, ' ', hp - h);
  if (dlen) memcpy(b + 8 + hp, data, dlen);
  *len = 8 + hp + dlen;
  return b;
}

/* Loads a hand-made file; returns the status and leaves the message in lc_last_error(). */
static lc_status st_try(const char *header, const void *data, size_t dlen) {
  size_t len;
  unsigned char *b = st_file(header, data, dlen, &len);
  lc_safetensors *f = NULL;
  lc_status st = lc_safetensors_load_buffer(b, len, "bad.safetensors", &f);
  lc_safetensors_free(f);
  free(b);
  return st;
}

static bool tensors_equal(const lc_tensor *a, const lc_tensor *b) {
  bool eq = false;
  if (!a || !b || lc_dtype_of(a) != lc_dtype_of(b)) return false;
  return lc_equal(a, b, &eq) == LC_OK && eq;
}

/* ---------------------------------------------------------------- safetensors */

TEST(io_safetensors_roundtrip_all_dtypes) {
  char *dir = tmp_dir();
  CHECK(dir != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/all.safetensors", dir);

  const float f32[6] = {0.5f, -1.25f, 3.0f, 1e-8f, -0.0f, 65504.0f};
  const double f64[4] = {1.0 / 3.0, -2.5e300, 0.0, 7.0};
  const int32_t i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
  const int64_t i64[1] = {INT64_MIN + 5};
  const uint8_t bl[3] = {1, 0, 1};
  int64_t s23[2] = {2, 3}, s4[1] = {4}, s22[2] = {2, 2}, s3[1] = {3}, s03[2] = {0, 3};
  lc_tensor *a = tensor_of(2, s23, LC_FLOAT32, f32);
  lc_tensor *b = tensor_of(1, s4, LC_FLOAT64, f64);
  lc_tensor *c = tensor_of(2, s22, LC_INT32, i32);
  lc_tensor *d = tensor_of(0, NULL, LC_INT64, i64);
  lc_tensor *e = tensor_of(1, s3, LC_BOOL, bl);
  lc_tensor *z = NULL, *at = NULL;
  CHECK_OK(lc_zeros(2, s03, LC_FLOAT32, &z));
  CHECK_OK(lc_transpose(a, 0, 1, &at)); /* non-contiguous: written in its logical order */
  lc_tensor *ts[] = {a, b, c, d, e, z, at};
  const char *names[] = {"w.a", "w.b", "c", "d", "flags", "empty", "a.T"};
  const char *mk[] = {"format", "note"};
  const char *mv[] = {"pt", "quote \" backslash \\ newline \n tab \t ctl \x01 utf8 \xc3\xa9"};
  CHECK_OK(lc_safetensors_save(path, 7, names, ts, 2, mk, mv));
  CHECK(count_files(dir) == 1); /* no temporary left behind */

  lc_safetensors *f = NULL;
  CHECK_OK(lc_safetensors_load(path, &f));
  if (f) {
    CHECK(f->count == 7);
    /* the reference order: dtype I64, F64, F32, I32, BOOL (larger alignment first), then name */
    const char *order[] = {"d", "w.b", "a.T", "empty", "w.a", "c", "flags"};
    for (int i = 0; i < 7 && i < f->count; i++)
      CHECK(strcmp(f->names[i], order[i]) == 0);
    for (int i = 0; i < 7; i++) {
      lc_tensor *got = lc_safetensors_get(f, names[i]);
      CHECK(tensors_equal(got, ts[i]));
      if (got) {
        CHECK(lc_ndim(got) == lc_ndim(ts[i]));
        CHECK(lc_is_contiguous(got));
      }
    }
    CHECK(strcmp(f->file_dtypes[0], "I64") == 0);
    CHECK(f->meta_count == 2);
    CHECK(lc_safetensors_meta(f, "format") && strcmp(lc_safetensors_meta(f, "format"), "pt") == 0);
    CHECK(lc_safetensors_meta(f, "note") && strcmp(lc_safetensors_meta(f, "note"), mv[1]) == 0);
    CHECK(lc_safetensors_meta(f, "missing") == NULL);
    CHECK(lc_safetensors_get(f, "missing") == NULL);
  }
  lc_safetensors_free(f);

  /* data is 8-byte aligned after the header, so every tensor's offset is aligned too */
  size_t len;
  unsigned char *bytes = read_bytes(path, &len);
  CHECK(bytes != NULL);
  if (bytes) {
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
      n = (n << 8) | bytes[k];
    CHECK(n % 8 == 0);
    CHECK(bytes[8] == '{');
    CHECK(bytes[8 + n - 1] == '}' || bytes[8 + n - 1] == ' ');
  }
  free(bytes);
  lc_tensor *all[] = {a, b, c, d, e, z, at};
  for (int i = 0; i < 7; i++)
    lc_release(all[i]);
  rm_dir(dir);
}

/* Saving and loading are not ops: a strided tensor that requires grad is written through a
 * non-recording copy, so no graph node appears between two recorded ops (their sequence numbers
 * are consecutive), the saved tensor's autograd state and version are untouched, and loaded
 * tensors are plain leaves even with grad mode on. */
TEST(io_safetensors_records_nothing) {
  char *dir = tmp_dir();
  CHECK(dir != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/grad.safetensors", dir);
  const float v[6] = {0, 1, 2, 3, 4, 5};
  int64_t s23[2] = {2, 3};
  lc_tensor *x = tensor_of(2, s23, LC_FLOAT32, v), *xt = NULL, *y = NULL;
  CHECK(lc_is_grad_enabled());
  CHECK_OK(lc_set_requires_grad(x, true));
  CHECK_OK(lc_transpose(x, 0, 1, &xt)); /* non-contiguous, with a grad_fn */
  CHECK(xt && !lc_is_contiguous(xt) && xt->grad_fn);
  if (!xt || !xt->grad_fn) {
    lc_release(x);
    rm_dir(dir);
    return;
  }
  uint64_t version = atomic_load(&xt->storage->version);
  const char *nm[] = {"xt"};
  CHECK_OK(lc_safetensors_save(path, 1, nm, &xt, 0, NULL, NULL));
  CHECK_OK(lc_unary(LC_NEG, xt, &y));
  CHECK(y && y->grad_fn && ((lc_node *)y->grad_fn)->seq == ((lc_node *)xt->grad_fn)->seq + 1);
  CHECK(atomic_load(&xt->storage->version) == version);
  CHECK(lc_requires_grad(xt) && lc_grad(x) == NULL);

  lc_safetensors *f = NULL;
  CHECK_OK(lc_safetensors_load(path, &f));
  lc_tensor *got = f ? lc_safetensors_get(f, "xt") : NULL;
  CHECK(got && tensors_equal(got, xt));
  CHECK(got && !lc_requires_grad(got) && lc_is_leaf(got) && !got->grad_fn);
  lc_safetensors_free(f);
  lc_release(y);
  lc_release(xt);
  lc_release(x);
  rm_dir(dir);
}

/* The byte layouts the reference implementation's own tests pin down. */
TEST(io_safetensors_reference_bytes) {
  char *dir = tmp_dir();
  char path[256];
  snprintf(path, sizeof path, "%s/ref.safetensors", dir);
  const float v[6] = {0, 1, 2, 3, 4, 5};
  size_t len;

  int64_t s123[3] = {1, 2, 3};
  lc_tensor *t = tensor_of(3, s123, LC_FLOAT32, v);
  const char *nm[] = {"attn.0"};
  CHECK_OK(lc_safetensors_save(path, 1, nm, &t, 0, NULL, NULL));
  const char *h1 = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
  unsigned char *want = st_file(h1, v, 24, &len);
  size_t glen;
  unsigned char *got = read_bytes(path, &glen);
  CHECK(want[0] == 64); /* the reference's header length for this file: no padding needed */
  CHECK(got && glen == len && memcmp(got, want, len) == 0);
  free(want);
  free(got);
  lc_release(t);

  int64_t s1123[4] = {1, 1, 2, 3};
  t = tensor_of(4, s1123, LC_FLOAT32, v);
  const char *nm2[] = {"attn0"};
  CHECK_OK(lc_safetensors_save(path, 1, nm2, &t, 0, NULL, NULL));
  const char *h2 = "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}";
  want = st_file(h2, v, 24, &len);
  got = read_bytes(path, &glen);
  CHECK(want[0] == 72); /* 7 spaces of padding */
  CHECK(got && glen == len && memcmp(got, want, len) == 0);
  free(want);
  free(got);
  lc_release(t);

  /* no tensors: "{}" and 6 spaces; with metadata, 40 bytes */
  CHECK_OK(lc_safetensors_save(path, 0, NULL, NULL, 0, NULL, NULL));
  got = read_bytes(path, &glen);
  const unsigned char empty[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  CHECK(got && glen == sizeof empty && memcmp(got, empty, glen) == 0);
  free(got);
  const char *mk[] = {"framework"}, *mv[] = {"pt"};
  CHECK_OK(lc_safetensors_save(path, 0, NULL, NULL, 1, mk, mv));
  got = read_bytes(path, &glen);
  CHECK(got && glen == 48 && got[0] == 40 &&
        memcmp(got + 8, "{\"__metadata__\":{\"framework\":\"pt\"}}     ", 40) == 0);
  free(got);
  lc_safetensors *f = NULL;
  CHECK_OK(lc_safetensors_load(path, &f));
  CHECK(f && f->count == 0 && f->meta_count == 1);
  lc_safetensors_free(f);
  rm_dir(dir);
}

TEST(io_safetensors_half_and_small_ints) {
  /* F16 1.0, -2.0, 65504, 2^-24 (subnormal), inf; BF16 1.0, -3.0 */
  const unsigned char data[] = {
      0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c, /* F16 x5: 10 bytes */
      0x80, 0x3f, 0x40, 0xc0,                                     /* BF16 x2: 4 bytes */
      0xff, 0x7f, 0x00, 0x80,                                     /* I16 32767, -32768 */
      0xff, 0x80,                                                 /* U8 255, 128 */
      0xff, 0xfe,                                                 /* I8 -1, -2 */
      0xff, 0xff, 0xff, 0xff,                                     /* U32 4294967295 */
  };
  const char *h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]},"
                  "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[10,14]},"
                  "\"s\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[14,18]},"
                  "\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[18,20]},"
                  "\"i\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[20,22]},"
                  "\"w\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[22,26]}}";
  size_t len;
  unsigned char *b = st_file(h, data, sizeof data, &len);
  lc_safetensors *f = NULL;
  CHECK_OK(lc_safetensors_load_buffer(b, len, "half", &f));
  free(b);
  if (!f) return;
  CHECK(strcmp(f->names[0], "h") == 0 && strcmp(f->file_dtypes[0], "F16") == 0);
  double *v = test_values(f->tensors[0]);
  CHECK(lc_dtype_of(f->tensors[0]) == LC_FLOAT16); /* loaded natively, bit for bit */
  CHECK(lc_dtype_of(lc_safetensors_get(f, "bf")) == LC_BFLOAT16);
  CHECK(v[0] == 1.0 && v[1] == -2.0 && v[2] == 65504.0 && v[3] == ldexp(1.0, -24) && isinf(v[4]) &&
        v[4] > 0);
  free(v);
  v = test_values(lc_safetensors_get(f, "bf"));
  CHECK(v[0] == 1.0 && v[1] == -3.0);
  free(v);
  v = test_values(lc_safetensors_get(f, "s"));
  CHECK(v[0] == 32767 && v[1] == -32768);
  CHECK(lc_dtype_of(lc_safetensors_get(f, "s")) == LC_INT32);
  free(v);
  v = test_values(lc_safetensors_get(f, "u"));
  CHECK(v[0] == 255 && v[1] == 128);
  free(v);
  v = test_values(lc_safetensors_get(f, "i"));
  CHECK(v[0] == -1 && v[1] == -2);
  free(v);
  v = test_values(lc_safetensors_get(f, "w"));
  CHECK(v[0] == 4294967295.0 && lc_dtype_of(lc_safetensors_get(f, "w")) == LC_INT64);
  free(v);
  lc_safetensors_free(f);
}

TEST(io_safetensors_header_forms) {
  /* whitespace, escapes, unknown fields, null metadata, a 0-dim tensor, a non-1 BOOL byte */
  const unsigned char data[] = {7, 0, 0, 0, 2};
  const char *h =
      " {\n \"__metadata__\" : null ,\"n\\u00e9\\\"x\\/\\ud83d\\ude00\" : { \"extra\" : "
      "[1, {\"a\": [true, false, null, -1.5e3]}], \"shape\" : [ ] , \"dtype\":\"I32\","
      " \"data_offsets\" : [0, 4] },\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],"
      "\"data_offsets\":[4,5]}}\t";
  size_t len;
  unsigned char *b = st_file(h, data, sizeof data, &len);
  lc_safetensors *f = NULL;
  CHECK_OK(lc_safetensors_load_buffer(b, len, "forms", &f));
  free(b);
  if (!f) return;
  CHECK(f->count == 2 && f->meta_count == 0);
  CHECK(strcmp(f->names[0], "n\xc3\xa9\"x/\xf0\x9f\x98\x80") == 0);
  int64_t iv = 0;
  CHECK_OK(lc_item_int64(f->tensors[0], &iv));
  CHECK(iv == 7 && lc_ndim(f->tensors[0]) == 0);
  CHECK_OK(lc_item_int64(f->tensors[1], &iv));
  CHECK(iv == 1);
  CHECK(((unsigned char *)lc_data(f->tensors[1]))[0] == 1); /* normalised to 0/1 */
  lc_safetensors_free(f);
}

TEST(io_safetensors_corrupt_headers) {
  const unsigned char d8[8] = {0};
  static const struct {
    const char *header;
    size_t dlen;
    lc_status want;
    const char *part;
  } cases[] = {
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, LC_EFORMAT,
       "expected '}'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}x", 8, LC_EFORMAT,
       "after the header"},
      {"[]", 0, LC_EFORMAT, "expected '{'"},
      {"{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, LC_EFORMAT,
       "unknown dtype \"F33\""},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, LC_EFORMAT,
       "past the end"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, LC_EFORMAT,
       "needs 12"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
       6, LC_EFORMAT, "overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, LC_EFORMAT, "gap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, LC_EFORMAT,
       "holds 8 bytes but the tensors cover 4"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
       LC_EFORMAT, "overflows"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8,
       LC_EFORMAT, "overflows"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8,
       LC_EFORMAT, "too large"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, LC_EFORMAT,
       "non-negative integer"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, LC_EFORMAT,
       "fraction"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, LC_EFORMAT, "lacks \"data_offsets\""},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, LC_EFORMAT,
       "end before"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8, LC_EFORMAT, "appears twice"},
      {"{\"__metadata__\":{\"k\":1}}", 0, LC_EFORMAT, "values must be strings"},
      {"{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, LC_EFORMAT, "given twice"},
      {"{\"a\\q\":{}}", 0, LC_EFORMAT, "unknown escape"},
      {"{\"a\\ud800\":{}}", 0, LC_EFORMAT, "surrogate"},
      {"{\"a\\u0000\":{}}", 0, LC_EFORMAT, "\\u0000"},
      {"{\"a\x01\":{}}", 0, LC_EFORMAT, "control character"},
      {"{\"a", 0, LC_EFORMAT, "unterminated"},
      {"{\"a\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, LC_EDTYPE,
       "cannot load"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"
       "\"data_offsets\":[0,4]}}",
       4, LC_EFORMAT, "more than 16 dims"},
      {"{}", 8, LC_EFORMAT, "no tensors"},
      {"{\"a\xff\":{}}", 0, LC_EFORMAT, "UTF-8"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    lc_status st = st_try(cases[i].header, d8, cases[i].dlen);
    if (st != cases[i].want || !has(lc_last_error(), cases[i].part) ||
        !has(lc_last_error(), "bad.safetensors")) {
      printf("  case %zu: got %s '%s', expected %s containing '%s'\n", i, lc_status_name(st),
             lc_last_error(), lc_status_name(cases[i].want), cases[i].part);
      CHECK(false);
    }
  }
  /* the length word itself */
  lc_safetensors *f = NULL;
  unsigned char b[16] = {0};
  CHECK_STATUS(lc_safetensors_load_buffer(b, 4, "short", &f), LC_EFORMAT);
  CHECK(has(lc_last_error(), "too short"));
  b[0] = 1;
  CHECK_STATUS(lc_safetensors_load_buffer(b, 16, "tiny", &f), LC_EFORMAT);
  CHECK(has(lc_last_error(), "too small"));
  b[0] = 9;
  CHECK_STATUS(lc_safetensors_load_buffer(b, 16, "past", &f), LC_EFORMAT);
  CHECK(has(lc_last_error(), "runs past the end"));
  memset(b, 0xff, 8);
  CHECK_STATUS(lc_safetensors_load_buffer(b, 16, "huge", &f), LC_EFORMAT);
  CHECK(has(lc_last_error(), "limit"));
  CHECK(f == NULL);
  CHECK_STATUS(lc_safetensors_load_buffer(NULL, 0, "null", &f), LC_EFORMAT);
  CHECK_STATUS(lc_safetensors_load_buffer(b, 16, "x", NULL), LC_EARG);
}

TEST(io_safetensors_file_errors) {
  char *dir = tmp_dir();
  char path[256], missing[256];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  snprintf(missing, sizeof missing, "%s/nodir/model.safetensors", dir);
  lc_safetensors *f = NULL;
  CHECK_STATUS(lc_safetensors_load(path, &f), LC_EIO);
  CHECK(has(lc_last_error(), path) && has(lc_last_error(), "No such file"));
  CHECK_STATUS(lc_safetensors_load(dir, &f), LC_EIO);
  CHECK(has(lc_last_error(), "directory"));

  /* a good file, then failed saves that must leave it byte for byte intact */
  const float v[2] = {1, 2};
  int64_t s2[1] = {2};
  lc_tensor *t = tensor_of(1, s2, LC_FLOAT32, v);
  const char *nm[] = {"x"};
  CHECK_OK(lc_safetensors_save(path, 1, nm, &t, 0, NULL, NULL));
  size_t len0, len1;
  unsigned char *before = read_bytes(path, &len0);

  lc_tensor *two[] = {t, t};
  const char *dup[] = {"x", "x"};
  CHECK_STATUS(lc_safetensors_save(path, 2, dup, two, 0, NULL, NULL), LC_EARG);
  CHECK(has(lc_last_error(), "\"x\" given twice"));
  const char *res[] = {"__metadata__"};
  CHECK_STATUS(lc_safetensors_save(path, 1, res, &t, 0, NULL, NULL), LC_EARG);
  CHECK(has(lc_last_error(), "reserved"));
  lc_tensor *nul[] = {NULL};
  CHECK_STATUS(lc_safetensors_save(path, 1, nm, nul, 0, NULL, NULL), LC_EARG);
  const char *bad[] = {"\xff\xfe"};
  CHECK_STATUS(lc_safetensors_save(path, 1, bad, &t, 0, NULL, NULL), LC_EARG);
  CHECK(has(lc_last_error(), "UTF-8"));
  const char *mk[] = {"k", "k"}, *mv[] = {"a", "b"};
  CHECK_STATUS(lc_safetensors_save(path, 1, nm, &t, 2, mk, mv), LC_EARG);
  const char *mv_null[] = {NULL};
  CHECK_STATUS(lc_safetensors_save(path, 1, nm, &t, 1, mk, mv_null), LC_EARG);
  CHECK_STATUS(lc_safetensors_save(path, -1, nm, &t, 0, NULL, NULL), LC_EARG);
  CHECK_STATUS(lc_safetensors_save("", 1, nm, &t, 0, NULL, NULL), LC_EARG);
  CHECK_STATUS(lc_safetensors_save(missing, 1, nm, &t, 0, NULL, NULL), LC_EIO);
  CHECK(has(lc_last_error(), "temporary file") && has(lc_last_error(), missing));

  unsigned char *after = read_bytes(path, &len1);
  CHECK(before && after && len0 == len1 && memcmp(before, after, len0) == 0);
  CHECK(count_files(dir) == 1);
  free(before);
  free(after);

  /* a truncated copy of a good file names the file and the fault */
  unsigned char *good = read_bytes(path, &len0);
  char trunc[256];
  snprintf(trunc, sizeof trunc, "%s/trunc.safetensors", dir);
  CHECK(write_bytes(trunc, good, len0 - 3));
  CHECK_STATUS(lc_safetensors_load(trunc, &f), LC_EFORMAT);
  CHECK(has(lc_last_error(), trunc) && has(lc_last_error(), "past the end"));
  free(good);
  lc_release(t);
  rm_dir(dir);
}

/* xorshift: deterministic mutations */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Mutates bytes of a valid file many ways; every load must either succeed or fail cleanly
 * (run under ASan: no out-of-bounds read, no leak). */
TEST(io_safetensors_fuzz) {
  char *dir = tmp_dir();
  char path[256];
  snprintf(path, sizeof path, "%s/fuzz.safetensors", dir);
  const double v[6] = {1, 2, 3, 4, 5, 6};
  int64_t s23[2] = {2, 3}, s3[1] = {3};
  lc_tensor *a = tensor_of(2, s23, LC_FLOAT64, v), *b = NULL, *c = NULL;
  CHECK_OK(lc_to_dtype(a, LC_FLOAT32, &b));
  CHECK_OK(lc_ones(1, s3, LC_BOOL, &c));
  lc_tensor *ts[] = {a, b, c};
  const char *names[] = {"layer.0.weight", "layer.0.bias", "mask"};
  const char *mk[] = {"format", "lucid"}, *mv[] = {"pt", "{\"x\":[1,2]}"};
  CHECK_OK(lc_safetensors_save(path, 3, names, ts, 2, mk, mv));
  size_t len;
  unsigned char *good = read_bytes(path, &len);
  CHECK(good != NULL);
  if (!good) return;
  unsigned char *buf = malloc(len + 64);
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  int ok = 0, failed = 0;
  static const char specials[] = "{}[]\":,\\u0123456789-.eE \t\n";
  for (int iter = 0; iter < 20000; iter++) {
    memcpy(buf, good, len);
    size_t n = len;
    int kind = (int)(rng_next(&seed) % 5);
    int edits = 1 + (int)(rng_next(&seed) % 4);
    for (int k = 0; k < edits; k++) {
      size_t pos = (size_t)(rng_next(&seed) % n);
      if (kind == 0) { /* flip bits anywhere */
        buf[pos] ^= (unsigned char)(1u << (rng_next(&seed) % 8));
      } else if (kind == 1) { /* a JSON-significant byte in the header */
        size_t hp = 8 + (size_t)(rng_next(&seed) % (n > 8 ? n - 8 : 1));
        if (hp < n) buf[hp] = (unsigned char)specials[rng_next(&seed) % (sizeof specials - 1)];
      } else if (kind == 2) { /* truncate */
        n = pos;
      } else if (kind == 3) { /* the length word */
        buf[rng_next(&seed) % 8] = (unsigned char)rng_next(&seed);
      } else { /* a digit in the header changes (offsets, shapes) */
        size_t hp = 8 + (size_t)(rng_next(&seed) % (n > 8 ? n - 8 : 1));
        if (hp < n && buf[hp] >= '0' && buf[hp] <= '9')
          buf[hp] = (unsigned char)('0' + rng_next(&seed) % 10);
      }
      if (n == 0) break;
    }
    lc_safetensors *f = NULL;
    lc_status st = lc_safetensors_load_buffer(buf, n, "fuzz", &f);
    if (st == LC_OK) {
      ok++;
      /* whatever loaded is self-consistent */
      for (int64_t i = 0; i < f->count; i++)
        CHECK(f->tensors[i] != NULL && f->names[i] != NULL);
      lc_safetensors_free(f);
    } else {
      failed++;
      CHECK(st == LC_EFORMAT || st == LC_EDTYPE);
      CHECK(f == NULL);
    }
    if (iter % 2000 == 0) { /* the file path too */
      CHECK(write_bytes(path, buf, n));
      lc_status st2 = lc_safetensors_load(path, &f);
      CHECK(st2 == st);
      lc_safetensors_free(f);
    }
  }
  CHECK(ok > 100 && failed > 1000);
  free(buf);
  free(good);
  lc_release(a);
  lc_release(b);
  lc_release(c);
  rm_dir(dir);
}

/* ---------------------------------------------------------------- IDX */

/* Writes an IDX file with the given header bytes and data; gz selects compression. */
static bool write_idx(const char *path, unsigned char type, int ndim, const uint32_t *dims,
                      const void *data, size_t dlen, bool gz) {
  unsigned char head[4 + 4 * 16];
  head[0] = head[1] = 0;
  head[2] = type;
  head[3] = (unsigned char)ndim;
  for (int d = 0; d < ndim; d++) {
    head[4 + 4 * d] = (unsigned char)(dims[d] >> 24);
    head[5 + 4 * d] = (unsigned char)(dims[d] >> 16);
    head[6 + 4 * d] = (unsigned char)(dims[d] >> 8);
    head[7 + 4 * d] = (unsigned char)dims[d];
  }
  size_t hl = 4 + 4 * (size_t)ndim;
  if (!gz) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(head, 1, hl, f) == hl && (dlen == 0 || fwrite(data, 1, dlen, f) == dlen);
    return fclose(f) == 0 && ok;
  }
  gzFile g = gzopen(path, "wb");
  if (!g) return false;
  bool ok = gzwrite(g, head, (unsigned)hl) == (int)hl &&
            (dlen == 0 || gzwrite(g, data, (unsigned)dlen) == (int)dlen);
  return gzclose(g) == Z_OK && ok;
}

TEST(io_idx_u8_plain_and_gzip) {
  char *dir = tmp_dir();
  char plain[256], gz[256];
  snprintf(plain, sizeof plain, "%s/images-idx3-ubyte", dir);
  snprintf(gz, sizeof gz, "%s/images-idx3-ubyte.gz", dir);
  enum { N = 5, H = 3, W = 4 };
  unsigned char px[N * H * W];
  for (int i = 0; i < N * H * W; i++)
    px[i] = (unsigned char)(i * 37 % 256);
  uint32_t dims[3] = {N, H, W};
  CHECK(write_idx(plain, 0x08, 3, dims, px, sizeof px, false));
  CHECK(write_idx(gz, 0x08, 3, dims, px, sizeof px, true));
  const char *paths[] = {plain, gz};
  for (int p = 0; p < 2; p++) {
    lc_tensor *t = NULL, *l = NULL;
    CHECK_OK(lc_idx_load(paths[p], 3, LC_FLOAT32, 1.0 / 255.0, &t));
    CHECK_OK(lc_idx_load(paths[p], -1, LC_INT64, 1.0, &l));
    if (!t || !l) continue;
    CHECK(lc_ndim(t) == 3 && lc_shape(t)[0] == N && lc_shape(t)[1] == H && lc_shape(t)[2] == W);
    CHECK(lc_dtype_of(t) == LC_FLOAT32 && lc_dtype_of(l) == LC_INT64);
    double *v = test_values(t), *w = test_values(l);
    for (int i = 0; i < N * H * W; i++) {
      CHECK_NEAR(v[i], (float)px[i] * (float)(1.0 / 255.0), 1e-7);
      CHECK(w[i] == px[i]);
    }
    free(v);
    free(w);
    lc_release(t);
    lc_release(l);
  }
  /* the other output dtypes take the generic path */
  lc_tensor *t = NULL;
  CHECK_OK(lc_idx_load(gz, 3, LC_INT32, 1.0, &t));
  double *v = test_values(t);
  CHECK(v && v[N * H * W - 1] == px[N * H * W - 1]);
  free(v);
  lc_release(t);
  t = NULL;
  CHECK_OK(lc_idx_load(gz, 3, LC_FLOAT64, 2.0, &t));
  v = test_values(t);
  CHECK(v && v[7] == 2.0 * px[7]);
  free(v);
  lc_release(t);
  rm_dir(dir);
}

TEST(io_idx_signed_and_float_types) {
  char *dir = tmp_dir();
  char path[256];
  snprintf(path, sizeof path, "%s/t.idx", dir);
  uint32_t d2[1] = {2};
  lc_tensor *t = NULL;
  double *v;

  const unsigned char i8[2] = {0xff, 0x7f}; /* -1, 127 */
  CHECK(write_idx(path, 0x09, 1, d2, i8, 2, false));
  CHECK_OK(lc_idx_load(path, 1, LC_INT64, 1.0, &t));
  v = test_values(t);
  CHECK(v && v[0] == -1 && v[1] == 127);
  free(v);
  lc_release(t);

  const unsigned char i16[4] = {0xff, 0xfe, 0x01, 0x00}; /* -2, 256 */
  CHECK(write_idx(path, 0x0B, 1, d2, i16, 4, true));
  CHECK_OK(lc_idx_load(path, 1, LC_INT32, 1.0, &t));
  v = test_values(t);
  CHECK(v && v[0] == -2 && v[1] == 256);
  free(v);
  lc_release(t);

  const unsigned char i32[8] = {0x80, 0, 0, 0, 0, 0, 0x01, 0x02}; /* INT32_MIN, 258 */
  CHECK(write_idx(path, 0x0C, 1, d2, i32, 8, false));
  CHECK_OK(lc_idx_load(path, 1, LC_INT64, 1.0, &t));
  v = test_values(t);
  CHECK(v && v[0] == INT32_MIN && v[1] == 258);
  free(v);
  lc_release(t);

  const unsigned char f32[8] = {0x3f, 0x80, 0, 0, 0xc0, 0x49, 0x0f, 0xdb}; /* 1.0, -pi */
  CHECK(write_idx(path, 0x0D, 1, d2, f32, 8, false));
  CHECK_OK(lc_idx_load(path, 1, LC_FLOAT32, 1.0, &t));
  v = test_values(t);
  CHECK(v && v[0] == 1.0 && fabs(v[1] + 3.14159265) < 1e-6);
  free(v);
  lc_release(t);
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EDTYPE);
  CHECK(has(lc_last_error(), "f32 data needs a float dtype"));

  const unsigned char f64[16] = {0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(write_idx(path, 0x0E, 1, d2, f64, 16, true));
  CHECK_OK(lc_idx_load(path, -1, LC_FLOAT64, 0.5, &t));
  v = test_values(t);
  CHECK(v && v[0] == 0.5 && v[1] == -1.0);
  free(v);
  lc_release(t);

  /* a 0-dim file (one element) and an empty one */
  const unsigned char one[1] = {9};
  CHECK(write_idx(path, 0x08, 0, NULL, one, 1, false));
  CHECK_OK(lc_idx_load(path, 0, LC_INT64, 1.0, &t));
  CHECK(t && lc_ndim(t) == 0 && lc_numel(t) == 1);
  lc_release(t);
  uint32_t d0[2] = {0, 28};
  CHECK(write_idx(path, 0x08, 2, d0, NULL, 0, true));
  CHECK_OK(lc_idx_load(path, 2, LC_FLOAT32, 1.0, &t));
  CHECK(t && lc_numel(t) == 0 && lc_shape(t)[1] == 28);
  lc_release(t);
  rm_dir(dir);
}

TEST(io_idx_errors) {
  char *dir = tmp_dir();
  char path[256], missing[256];
  snprintf(path, sizeof path, "%s/labels-idx1-ubyte.gz", dir);
  snprintf(missing, sizeof missing, "%s/absent.gz", dir);
  lc_tensor *t = NULL;

  CHECK_STATUS(lc_idx_load(missing, 1, LC_INT64, 1.0, &t), LC_EIO);
  CHECK(has(lc_last_error(), missing) && has(lc_last_error(), "No such file"));
  CHECK_STATUS(lc_idx_load(dir, 1, LC_INT64, 1.0, &t), LC_EIO);
  CHECK(has(lc_last_error(), "directory"));

  /* bad magic: plain and gzip, including a safetensors-looking file */
  CHECK(write_bytes(path, "\x01\x02\x08\x01\x00\x00\x00\x01x", 9));
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "bad magic 01 02 08 01") && has(lc_last_error(), path));
  uint32_t d3[1] = {3};
  unsigned char lab[3] = {0, 9, 4};
  CHECK(write_idx(path, 0x07, 1, d3, lab, 3, true));
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "bad magic 00 00 07 01"));
  CHECK(write_bytes(path, "", 0));
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "truncated") && has(lc_last_error(), "magic"));

  /* wrong dimension count */
  CHECK(write_idx(path, 0x08, 1, d3, lab, 3, true));
  CHECK_STATUS(lc_idx_load(path, 3, LC_FLOAT32, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "expected 3 dims, the file has 1"));
  CHECK_OK(lc_idx_load(path, 1, LC_INT64, 1.0, &t));
  lc_release(t);
  t = NULL;

  /* short data (plain): the header promises 3 bytes, 2 are there */
  CHECK(write_idx(path, 0x08, 1, d3, lab, 2, false));
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "truncated") && has(lc_last_error(), "3 bytes of data"));
  /* extra data after the elements */
  unsigned char lab4[4] = {1, 2, 3, 4};
  CHECK(write_idx(path, 0x08, 1, d3, lab4, 4, true));
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "unexpected bytes after"));
  /* dims cut short */
  CHECK(write_bytes(path, "\x00\x00\x08\x03\x00\x00\x00\x02\x00", 9));
  CHECK_STATUS(lc_idx_load(path, 3, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "dimension sizes"));
  /* sizes whose product overflows, and too many dims */
  uint32_t huge[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
  CHECK(write_idx(path, 0x0E, 4, huge, NULL, 0, false));
  CHECK_STATUS(lc_idx_load(path, -1, LC_FLOAT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "overflow"));
  CHECK(write_bytes(path, "\x00\x00\x08\x11", 4));
  CHECK_STATUS(lc_idx_load(path, -1, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "17 dims"));
  /* a gzip file promising far more data than it could hold */
  uint32_t big[2] = {60000, 784};
  CHECK(write_idx(path, 0x08, 2, big, lab, 3, true));
  CHECK_STATUS(lc_idx_load(path, 2, LC_FLOAT32, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "truncated"));

  /* truncated and corrupted gzip streams */
  enum { N = 20000 };
  unsigned char *px = malloc(N);
  uint64_t s = 12345;
  for (int i = 0; i < N; i++)
    px[i] = (unsigned char)(rng_next(&s) % 7); /* compressible */
  uint32_t dn[1] = {N};
  CHECK(write_idx(path, 0x08, 1, dn, px, N, true));
  CHECK_OK(lc_idx_load(path, 1, LC_INT64, 1.0, &t));
  lc_release(t);
  t = NULL;
  size_t len;
  unsigned char *z = read_bytes(path, &len);
  CHECK(z && z[0] == 0x1f && z[1] == 0x8b);
  CHECK(write_bytes(path, z, len / 2));
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), "truncated") && has(lc_last_error(), path));
  CHECK(write_bytes(path, z, len - 4)); /* data complete, trailer cut */
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EFORMAT);
  for (size_t i = 20; i < len - 8; i++)
    z[i] ^= 0x5a; /* garbage deflate stream */
  CHECK(write_bytes(path, z, len));
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 1.0, &t), LC_EFORMAT);
  CHECK(has(lc_last_error(), path));
  CHECK(t == NULL);
  free(z);
  free(px);

  /* argument checks */
  CHECK(write_idx(path, 0x08, 1, d3, lab, 3, false));
  CHECK_STATUS(lc_idx_load(path, 1, LC_INT64, 0.5, &t), LC_EARG);
  CHECK_STATUS(lc_idx_load(path, 99, LC_INT64, 1.0, &t), LC_EARG);
  CHECK_STATUS(lc_idx_load(NULL, 1, LC_INT64, 1.0, &t), LC_EARG);
  CHECK_STATUS(lc_idx_load(path, 1, LC_FLOAT32, NAN, &t), LC_EARG);
  CHECK(t == NULL);
  rm_dir(dir);
}

/* A checkpoint written by lucid from Lua before C named positional children 0-based (its keys
 * are "1.weight", "3.bias") loads into a C model once its keys are rebased (include/lucid_nn.h,
 * "Positional names"). */
TEST(io_old_lua_checkpoint_loads_in_c) {
  lc_safetensors *f = NULL;
  CHECK_OK(lc_safetensors_load("spec/fixtures/io/lucid_state_dict.safetensors", &f));
  lc_module *kids[3] = {NULL, NULL, NULL}, *m = NULL;
  CHECK_OK(lc_nn_linear(3, 4, true, &kids[0]));
  CHECK_OK(lc_nn_relu(&kids[1]));
  CHECK_OK(lc_nn_linear(4, 2, true, &kids[2]));
  if (kids[0] && kids[1] && kids[2]) CHECK_OK(lc_nn_sequential(3, kids, NULL, &m));
  if (!f || !m) goto done;
  CHECK(f->count == 4);
  lc_named_tensors sd = {0};
  sd.names = calloc((size_t)f->count, sizeof *sd.names);
  sd.tensors = calloc((size_t)f->count, sizeof *sd.tensors);
  for (int64_t i = 0; sd.names && sd.tensors && i < f->count; i++, sd.n++) {
    CHECK_OK(lc_module_rebase_path(m, f->names[i], 1, 0, &sd.names[i]));
    sd.tensors[i] = lc_retain(f->tensors[i]);
  }
  /* as saved, the keys do not match the C names */
  lc_named_tensors plain = {.n = f->count, .names = f->names, .tensors = f->tensors};
  CHECK_STATUS(lc_module_load_state_dict(m, &plain, true, NULL, NULL), LC_EARG);
  CHECK_OK(lc_module_load_state_dict(m, &sd, true, NULL, NULL));
  bool same = false;
  CHECK_OK(lc_equal(lc_module_own_parameter(lc_module_child(m, 2), 1),
                    lc_safetensors_get(f, "3.bias"), &same));
  CHECK(same);
  int found = 0;
  for (int64_t i = 0; i < sd.n; i++)
    found += strcmp(sd.names[i], "2.bias") == 0 || strcmp(sd.names[i], "0.weight") == 0;
  CHECK(sd.n == 4 && found == 2);
  lc_named_tensors_free(&sd);
done:
  lc_module_release(m);
  for (int i = 0; i < 3; i++)
    lc_module_release(kids[i]);
  lc_safetensors_free(f);
}

/* A host callback: writing refused, reading allowed except one name. */
static int policy_calls;
static bool deny_writes(void *ctx, const char *path, lc_file_access access) {
  policy_calls++;
  return access == LC_FILE_READ && strstr(path, (const char *)ctx) == NULL;
}

TEST(io_file_policy_callback_and_roots) {
  char dir[] = "/tmp/lucid-policy-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[64];
  snprintf(path, sizeof path, "%s/a.safetensors", dir);
  lc_tensor *t = NULL;
  int64_t n = 2;
  CHECK_OK(lc_zeros(1, &n, LC_FLOAT32, &t));
  const char *names[] = {"w"};
  CHECK_OK(lc_safetensors_save(path, 1, names, &t, 0, NULL, NULL));
  CHECK_OK(lc_set_file_policy(deny_writes, "secret"));
  CHECK_STATUS(lc_safetensors_save(path, 1, names, &t, 0, NULL, NULL), LC_EIO);
  CHECK(strstr(lc_last_error(), "the host's file policy does not allow writing"));
  lc_safetensors *f = NULL;
  CHECK_OK(lc_safetensors_load(path, &f)); /* reading is allowed */
  lc_safetensors_free(f);
  CHECK_STATUS(lc_idx_load("/tmp/secret-idx1-ubyte", 1, LC_INT64, 1, &t), LC_EIO);
  CHECK(strstr(lc_last_error(), "lc_idx_load: the host's file policy does not allow reading"));
  CHECK(policy_calls == 3);
  /* the built-in roots: below dir only, canonical ("..") */
  const char *roots[] = {dir};
  CHECK_OK(lc_set_file_roots(roots, 1, roots, 1));
  CHECK_OK(lc_safetensors_save(path, 1, names, &t, 0, NULL, NULL));
  char outside[96];
  snprintf(outside, sizeof outside, "%s/../escape.safetensors", dir);
  CHECK_STATUS(lc_safetensors_save(outside, 1, names, &t, 0, NULL, NULL), LC_EIO);
  const char *missing[] = {"/nonexistent-lucid-root"};
  CHECK_STATUS(lc_set_file_roots(missing, 1, NULL, -1), LC_EARG);
  CHECK_OK(lc_set_file_roots(NULL, -1, NULL, -1)); /* removed: anything again */
  CHECK_OK(lc_safetensors_save(path, 1, names, &t, 0, NULL, NULL));
  CHECK(!lc_file_policy_locked()); /* the lock is tested in a separate process (spec) */
  lc_release(t);
  unlink(path);
  rmdir(dir);
}
