/*
 * idx.c - IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed
 * (include/lucid_io.h).
 *
 * zlib's gzread reads both: a file that does not start with the gzip magic is passed through
 * unchanged. The data is decoded in chunks of a fixed buffer straight into the output tensor,
 * so a 47 MB image file never needs a second full-size copy.
 */
#include "io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_CHUNK (1u << 20) /* bytes decoded per gzread; a multiple of every element size */
/* deflate cannot compress better than about 1032:1, so a gzip file of c bytes expands to at
 * most this many; a header promising more data than that is known to be truncated up front. */
#define GZ_MAX_RATIO 1032u

typedef struct idx_type {
  unsigned char code;
  const char *name;
  size_t size;
  bool is_float;
} idx_type;

static const idx_type idx_types[] = {
    {0x08, "u8", 1, false},  {0x09, "i8", 1, false}, {0x0B, "i16", 2, false},
    {0x0C, "i32", 4, false}, {0x0D, "f32", 4, true}, {0x0E, "f64", 8, true},
};

static const idx_type *idx_type_of(unsigned char code) {
  for (size_t i = 0; i < sizeof idx_types / sizeof *idx_types; i++)
    if (idx_types[i].code == code) return &idx_types[i];
  return NULL;
}

/* The error for a gzread that returned r <= 0 while `need` more bytes of `what` were due. */
static lc_status gz_fail(gzFile g, int r, size_t need, const char *path, const char *what) {
  int errnum = Z_OK;
  const char *msg = gzerror(g, &errnum);
  if (errnum == Z_ERRNO)
    return lc_set_error(LC_EIO, "lc_idx_load: %s: read error: %s", path, strerror(errno));
  if (r == 0 || errnum == Z_BUF_ERROR)
    return lc_set_error(LC_EFORMAT, "lc_idx_load: %s: file truncated: the %s needs %zu more bytes",
                        path, what, need);
  return lc_set_error(LC_EFORMAT, "lc_idx_load: %s: corrupt gzip data in the %s: %s", path, what,
                      msg);
}

/* Reads exactly n bytes; a short read is a truncated file, a zlib failure corrupt data. */
static lc_status gz_exact(gzFile g, void *dst, size_t n, const char *path, const char *what) {
  size_t got = 0;
  while (got < n) {
    unsigned want = (unsigned)((n - got) > IDX_CHUNK ? IDX_CHUNK : (n - got));
    int r = gzread(g, (char *)dst + got, want);
    if (r <= 0) return gz_fail(g, r, n - got, path, what);
    got += (size_t)r;
  }
  return LC_OK;
}

static inline uint32_t be32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Decodes n big-endian elements of type `ty` from `in` into out[0..n) of dtype dt, times scale. */
static void decode(const idx_type *ty, const unsigned char *restrict in, int64_t n, lc_dtype dt,
                   double scale, void *outp) {
  /* the hot cases (MNIST images and labels) get their own loops */
  if (ty->code == 0x08) {
    if (dt == LC_FLOAT32) {
      float *restrict out = outp;
      const float s = (float)scale;
      if (scale == 1.0) {
        for (int64_t i = 0; i < n; i++)
          out[i] = (float)in[i];
      } else {
        for (int64_t i = 0; i < n; i++)
          out[i] = (float)in[i] * s;
      }
      return;
    }
    if (dt == LC_INT64) {
      int64_t *restrict out = outp;
      for (int64_t i = 0; i < n; i++)
        out[i] = in[i];
      return;
    }
  }
  for (int64_t i = 0; i < n; i++) {
    const unsigned char *p = in + (size_t)i * ty->size;
    double v;
    switch (ty->code) {
    case 0x08: v = p[0]; break;
    case 0x09: v = (int8_t)p[0]; break;
    case 0x0B: v = (int16_t)(uint16_t)((p[0] << 8) | p[1]); break;
    case 0x0C: v = (int32_t)be32(p); break;
    case 0x0D: {
      uint32_t b = be32(p);
      float f;
      memcpy(&f, &b, 4);
      v = f;
      break;
    }
    default: {
      uint64_t b = ((uint64_t)be32(p) << 32) | be32(p + 4);
      memcpy(&v, &b, 8);
      break;
    }
    }
    lc_store_f64(outp, dt, i, v * scale);
  }
}

lc_status lc_idx_load(const char *path, int expect_ndim, lc_dtype dt, double scale,
                      lc_tensor **out) {
  if (!path || !out) return lc_set_error(LC_EARG, "lc_idx_load: path and out must not be NULL");
  if ((int)dt < 0 || dt >= LC_DTYPE_COUNT)
    return lc_set_error(LC_EARG, "lc_idx_load: unknown dtype %d", (int)dt);
  if (expect_ndim < -1 || expect_ndim > LC_MAX_DIMS)
    return lc_set_error(LC_EARG, "lc_idx_load: expect_ndim must be -1 or 0..%d, got %d",
                        LC_MAX_DIMS, expect_ndim);
  if (!isfinite(scale) || (scale != 1.0 && !lc_dtype_is_float(dt)))
    return lc_set_error(LC_EARG,
                        "lc_idx_load: scale %g needs a float dtype and a finite value, "
                        "got %s",
                        scale, lc_dtype_name(dt));
  lc_status pst = lc_file_check("lc_idx_load", path, LC_FILE_READ);
  if (pst) return pst;
  struct stat sb;
  if (stat(path, &sb) != 0)
    return lc_set_error(LC_EIO, "lc_idx_load: cannot open '%s': %s", path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return lc_set_error(LC_EIO, "lc_idx_load: '%s' is a directory", path);
  gzFile g = gzopen(path, "rb");
  if (!g)
    return lc_set_error(LC_EIO, "lc_idx_load: cannot open '%s': %s", path,
                        errno ? strerror(errno) : "out of memory");
  gzbuffer(g, 256u << 10);
  lc_status st;
  unsigned char head[4];
  lc_tensor *t = NULL;
  unsigned char *buf = NULL;
  if ((st = gz_exact(g, head, 4, path, "4-byte magic"))) goto done;
  bool gz = !gzdirect(g);
  const idx_type *ty = idx_type_of(head[2]);
  if (head[0] != 0 || head[1] != 0 || !ty) {
    st = lc_set_error(LC_EFORMAT,
                      "lc_idx_load: %s: bad magic %02x %02x %02x %02x, expected 00 00 <type> "
                      "<ndims> with type 08 (u8), 09 (i8), 0b (i16), 0c (i32), 0d (f32) or 0e "
                      "(f64): not an IDX file",
                      path, head[0], head[1], head[2], head[3]);
    goto done;
  }
  int ndim = head[3];
  if (ndim > LC_MAX_DIMS) {
    st = lc_set_error(LC_EFORMAT, "lc_idx_load: %s: %d dims, lucid supports at most %d", path, ndim,
                      LC_MAX_DIMS);
    goto done;
  }
  if (expect_ndim >= 0 && ndim != expect_ndim) {
    st = lc_set_error(LC_EFORMAT, "lc_idx_load: %s: expected %d dims, the file has %d", path,
                      expect_ndim, ndim);
    goto done;
  }
  if (ty->is_float && !lc_dtype_is_float(dt)) {
    st = lc_set_error(LC_EDTYPE, "lc_idx_load: %s: %s data needs a float dtype, got %s", path,
                      ty->name, lc_dtype_name(dt));
    goto done;
  }
  unsigned char dimb[4 * LC_MAX_DIMS];
  if ((st = gz_exact(g, dimb, 4 * (size_t)ndim, path, "dimension sizes"))) goto done;
  int64_t shape[LC_MAX_DIMS];
  uint64_t numel = 1, nbytes;
  char shp[256];
  size_t k = 0;
  for (int d = 0; d < ndim; d++) {
    shape[d] = be32(dimb + 4 * d);
    if (k < sizeof shp)
      k += (size_t)snprintf(shp + k, sizeof shp - k, d ? "x%lld" : "%lld", (long long)shape[d]);
    if (__builtin_mul_overflow(numel, (uint64_t)shape[d], &numel)) numel = UINT64_MAX;
  }
  if (ndim == 0) snprintf(shp, sizeof shp, "a scalar");
  if (numel > (uint64_t)INT64_MAX / 8 ||
      __builtin_mul_overflow(numel, (uint64_t)ty->size, &nbytes) ||
      nbytes > (uint64_t)SIZE_MAX / 2) {
    st = lc_set_error(LC_EFORMAT, "lc_idx_load: %s: sizes %s overflow", path, shp);
    goto done;
  }
  uint64_t head_bytes = 4 + 4 * (uint64_t)ndim;
  uint64_t fsize = (uint64_t)sb.st_size;
  if (!gz && head_bytes + nbytes > fsize) {
    st = lc_set_error(LC_EFORMAT,
                      "lc_idx_load: %s: file truncated: sizes %s of %s need %llu "
                      "bytes of data, the file holds %llu",
                      path, shp, ty->name, (unsigned long long)nbytes,
                      (unsigned long long)(fsize - head_bytes));
    goto done;
  }
  if (gz && nbytes / GZ_MAX_RATIO > fsize) {
    st = lc_set_error(LC_EFORMAT,
                      "lc_idx_load: %s: sizes %s of %s need %llu bytes of data, more "
                      "than %llu compressed bytes can hold (truncated or corrupt file)",
                      path, shp, ty->name, (unsigned long long)nbytes, (unsigned long long)fsize);
    goto done;
  }
  if ((st = lc_tensor_new(ndim, shape, dt, &t))) goto done;
  buf = malloc(IDX_CHUNK);
  if (!buf) {
    st = lc_error_oom(IDX_CHUNK);
    goto done;
  }
  uint64_t done_elems = 0;
  const uint64_t per_chunk = IDX_CHUNK / ty->size;
  char *dst = lc_data(t);
  while (done_elems < numel) {
    uint64_t n = numel - done_elems < per_chunk ? numel - done_elems : per_chunk;
    if ((st = gz_exact(g, buf, (size_t)(n * ty->size), path, "data"))) goto done;
    decode(ty, buf, (int64_t)n, dt, scale, dst + done_elems * lc_dtype_size(dt));
    done_elems += n;
  }
  /* anything after the data means the header does not describe this file */
  int r = gzread(g, buf, 1);
  if (r > 0) {
    st = lc_set_error(LC_EFORMAT, "lc_idx_load: %s: unexpected bytes after the %s data of sizes %s",
                      path, ty->name, shp);
    goto done;
  }
  int errnum = Z_OK;
  (void)gzerror(g, &errnum);
  if (r < 0 || errnum != Z_OK) { /* Z_BUF_ERROR here: the gzip trailer (CRC, size) is cut */
    st = gz_fail(g, r < 0 ? r : 0, 8, path, "gzip trailer");
    goto done;
  }
done:
  free(buf);
  gzclose(g);
  if (st) {
    lc_release(t);
    return st;
  }
  *out = t;
  return LC_OK;
}
