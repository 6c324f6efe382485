/* tensor.c - TensorProto <-> lc_tensor: data types, raw and typed payloads, external data. */
#include "onnx_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ox_onnx_type_name(int32_t t) {
  static const char *names[] = {"UNDEFINED",  "FLOAT",   "UINT8",  "INT8",   "UINT16",
                                "INT16",      "INT32",   "INT64",  "STRING", "BOOL",
                                "FLOAT16",    "DOUBLE",  "UINT32", "UINT64", "COMPLEX64",
                                "COMPLEX128", "BFLOAT16"};
  return t >= 0 && t < (int32_t)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

/* 8- and 16-bit integers widen to int32 and uint32 to int64 (lucid has no narrower integer
 * dtypes); every value is kept exactly. */
lc_status ox_dtype_from_onnx(int32_t t, lc_dtype *out) {
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: *out = LC_FLOAT32; return LC_OK;
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: *out = LC_FLOAT64; return LC_OK;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: *out = LC_FLOAT16; return LC_OK;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: *out = LC_BFLOAT16; return LC_OK;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *out = LC_BOOL; return LC_OK;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: *out = LC_INT64; return LC_OK;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: *out = LC_INT64; return LC_OK;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: *out = LC_INT32; return LC_OK;
  default:
    return lc_set_error(LC_EDTYPE, "onnx: tensor type %s (%d) is not supported",
                        ox_onnx_type_name(t), (int)t);
  }
}

int32_t ox_dtype_to_onnx(lc_dtype dt) {
  switch (dt) {
  case LC_FLOAT32: return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  case LC_FLOAT64: return ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
  case LC_FLOAT16: return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
  case LC_BFLOAT16: return ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
  case LC_BOOL: return ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
  case LC_INT64: return ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  case LC_INT32: return ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  default: return ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED;
  }
}

/* Bytes per element as stored in raw_data. */
static size_t onnx_elem_size(int32_t t) {
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return 8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return 2;
  default: return 1;
  }
}

/* Element i of raw little-endian bytes (x86 and ARM Linux hosts are little-endian), widened. */
static void widen_raw(int32_t t, const uint8_t *src, int64_t n, void *dst) {
  int32_t *d32 = dst;
  int64_t *d64 = dst;
  for (int64_t i = 0; i < n; i++) {
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: d32[i] = (int8_t)src[i]; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: d32[i] = src[i]; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: {
      int16_t v;
      memcpy(&v, src + 2 * i, 2);
      d32[i] = v;
      break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: {
      uint16_t v;
      memcpy(&v, src + 2 * i, 2);
      d32[i] = v;
      break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
      uint32_t v;
      memcpy(&v, src + 4 * i, 4);
      d64[i] = v;
      break;
    }
    default: break;
    }
  }
}

static bool is_widened(int32_t t) {
  return t == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 || t == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 ||
         t == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 || t == ONNX__TENSOR_PROTO__DATA_TYPE__UINT16 ||
         t == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32;
}

/* External data: "location" relative to dir (no absolute path, no ".." component), "offset"
 * and "length" in bytes. Reads exactly nbytes into buf. */
static lc_status read_external(const Onnx__TensorProto *tp, const char *dir, size_t nbytes,
                               int64_t max_bytes, void *buf) {
  const char *loc = NULL;
  int64_t offset = 0, length = -1;
  for (size_t i = 0; i < tp->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = tp->external_data[i];
    if (!e->key || !e->value) continue;
    char *end = NULL;
    if (strcmp(e->key, "location") == 0)
      loc = e->value;
    else if (strcmp(e->key, "offset") == 0 || strcmp(e->key, "length") == 0) {
      errno = 0;
      long long v = strtoll(e->value, &end, 10);
      if (errno || !end || *end || v < 0)
        return lc_set_error(LC_EFORMAT,
                            "onnx: tensor '%s': external data %s '%s' is not a byte count",
                            tp->name ? tp->name : "", e->key, e->value);
      if (e->key[0] == 'o')
        offset = v;
      else
        length = v;
    }
  }
  const char *tname = tp->name ? tp->name : "";
  if (!loc || !*loc)
    return lc_set_error(LC_EFORMAT, "onnx: tensor '%s': external data without a location", tname);
  if (!dir)
    return lc_set_error(LC_EARG,
                        "onnx: tensor '%s': external data '%s' needs a directory (load the model "
                        "from a file or set external_data_dir)",
                        tname, loc);
  if (loc[0] == '/' || strstr(loc, "..") == loc || strstr(loc, "/../") || strstr(loc, "\\"))
    return lc_set_error(LC_EFORMAT,
                        "onnx: tensor '%s': external data location '%s' must be a path inside the "
                        "model's directory",
                        tname, loc);
  if (length >= 0 && (uint64_t)length != nbytes)
    return lc_set_error(
        LC_EFORMAT,
        "onnx: tensor '%s': external data length %lld does not match its shape (%zu bytes)", tname,
        (long long)length, nbytes);
  size_t plen = strlen(dir) + strlen(loc) + 2;
  char *path = malloc(plen);
  if (!path) return lc_set_error(LC_ENOMEM, "onnx: out of memory");
  snprintf(path, plen, "%s/%s", dir, loc);
  lc_status pst = lc_file_check("onnx", path, LC_FILE_READ);
  if (pst) {
    free(path);
    return pst;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    lc_status st =
        lc_set_error(LC_EIO, "onnx: tensor '%s': cannot open external data file '%s': %s", tname,
                     path, strerror(errno));
    free(path);
    return st;
  }
  lc_status st = LC_OK;
  long long fsize = -1;
  if (fseeko(f, 0, SEEK_END) == 0) fsize = (long long)ftello(f);
  if (fsize < 0 || fsize > max_bytes || offset > fsize || (uint64_t)(fsize - offset) < nbytes)
    st = lc_set_error(
        LC_EFORMAT,
        "onnx: tensor '%s': external data file '%s' (%lld bytes) has no %zu bytes at offset %lld",
        tname, path, fsize, nbytes, (long long)offset);
  else if (fseeko(f, (off_t)offset, SEEK_SET) != 0 || fread(buf, 1, nbytes, f) != nbytes)
    st = lc_set_error(LC_EIO, "onnx: tensor '%s': reading external data file '%s' failed", tname,
                      path);
  fclose(f);
  free(path);
  return st;
}

lc_status ox_tensor_from_proto(const Onnx__TensorProto *tp, const char *dir, int64_t max_bytes,
                               lc_tensor **out) {
  const char *tname = tp->name ? tp->name : "";
  int32_t ot = tp->has_data_type ? tp->data_type : 0;
  lc_dtype dt;
  lc_status st = ox_dtype_from_onnx(ot, &dt);
  if (st)
    return lc_set_error(st, "onnx: tensor '%s': type %s is not supported", tname,
                        ox_onnx_type_name(ot));
  if (tp->n_dims > LC_MAX_DIMS)
    return lc_set_error(LC_EFORMAT, "onnx: tensor '%s' has %zu dims (at most %d)", tname,
                        tp->n_dims, LC_MAX_DIMS);
  int64_t shape[LC_MAX_DIMS], numel = 1;
  for (size_t i = 0; i < tp->n_dims; i++) {
    shape[i] = tp->dims[i];
    if (shape[i] < 0)
      return lc_set_error(LC_EFORMAT, "onnx: tensor '%s': dim " LC_POS_D " is %lld (expected >= 0)",
                          tname, (int)i, (long long)shape[i]);
    if (shape[i] && numel > max_bytes / shape[i])
      return lc_set_error(LC_EFORMAT, "onnx: tensor '%s' is too large (more than %lld bytes)",
                          tname, (long long)max_bytes);
    numel *= shape[i];
  }
  size_t esz = onnx_elem_size(ot);
  if ((int64_t)esz * numel > max_bytes)
    return lc_set_error(LC_EFORMAT, "onnx: tensor '%s' is too large (more than %lld bytes)", tname,
                        (long long)max_bytes);
  size_t nbytes = (size_t)numel * esz;
  bool external =
      tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  size_t have;
  if (external)
    have = nbytes;
  else if (tp->has_raw_data)
    have = tp->raw_data.len;
  else {
    size_t cnt;
    switch (ot) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: cnt = tp->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: cnt = tp->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: cnt = tp->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: cnt = tp->n_uint64_data; break;
    default: cnt = tp->n_int32_data; break;
    }
    have = cnt * esz;
  }
  if (have != nbytes)
    return lc_set_error(LC_EFORMAT,
                        "onnx: tensor '%s' holds %zu bytes of data, its shape needs %zu", tname,
                        have, nbytes);
  lc_tensor *t;
  if ((st = lc_empty((int)tp->n_dims, shape, dt, &t))) return st;
  void *d = lc_data(t);
  if (numel == 0) {
    *out = t;
    return LC_OK;
  }
  const void *raw = NULL;
  void *scratch = NULL;
  if (external) {
    if (is_widened(ot)) {
      scratch = malloc(nbytes);
      if (!scratch) {
        lc_release(t);
        return lc_set_error(LC_ENOMEM, "onnx: out of memory");
      }
    }
    st = read_external(tp, dir, nbytes, max_bytes, scratch ? scratch : d);
    raw = scratch ? scratch : d;
  } else if (tp->has_raw_data) {
    raw = tp->raw_data.data;
  }
  if (!st && raw) {
    if (is_widened(ot))
      widen_raw(ot, raw, numel, d);
    else if (raw != d)
      memcpy(d, raw, nbytes);
  } else if (!st) {
    switch (ot) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: memcpy(d, tp->float_data, nbytes); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: memcpy(d, tp->double_data, nbytes); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: memcpy(d, tp->int64_data, nbytes); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: memcpy(d, tp->int32_data, nbytes); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
      for (int64_t i = 0; i < numel; i++)
        ((int64_t *)d)[i] = (int64_t)(uint32_t)tp->uint64_data[i];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
      for (int64_t i = 0; i < numel; i++)
        ((uint8_t *)d)[i] = tp->int32_data[i] != 0;
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
      for (int64_t i = 0; i < numel; i++)
        ((uint16_t *)d)[i] = (uint16_t)tp->int32_data[i];
      break;
    default: /* int8/16, uint8/16: one value per int32 entry */
      for (int64_t i = 0; i < numel; i++)
        ((int32_t *)d)[i] = tp->int32_data[i];
      break;
    }
  }
  free(scratch);
  if (st) {
    lc_release(t);
    return st;
  }
  if (dt == LC_BOOL)
    for (int64_t i = 0; i < numel; i++)
      ((uint8_t *)d)[i] = ((uint8_t *)d)[i] != 0;
  *out = t;
  return LC_OK;
}
