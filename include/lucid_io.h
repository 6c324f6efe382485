/*
 * lucid_io.h - checkpoints (safetensors) and dataset files (IDX) for C hosts.
 *
 * Same conventions as lucid.h: lc_status results with a message in lc_last_error(), outputs
 * through the last argument (owned by the caller), arguments borrowed. Every error message
 * names the file (or the label given for an in-memory buffer) and the fault.
 */
#ifndef LUCID_IO_H
#define LUCID_IO_H

#include "lucid_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- safetensors
 *
 * Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
 * N bytes of JSON {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b,
 * e]}, ...} padded with spaces to a multiple of 8, then the tensors' bytes (C order, little
 * endian), contiguous, offsets relative to the end of the header.
 */

/* A loaded file. Tensors keep the order in which the header lists them. */
typedef struct lc_safetensors {
  int64_t count;
  char **names;             /* count NUL-terminated names */
  lc_tensor **tensors;      /* count owned references (released by lc_safetensors_free) */
  const char **file_dtypes; /* count dtype names as stored ("F32", "BF16", ...); static strings */
  int64_t meta_count;
  char **meta_keys; /* the "__metadata__" entries, in header order */
  char **meta_values;
} lc_safetensors;

/* Writes `count` tensors (any layout; names unique, valid UTF-8, not "__metadata__") and
 * `meta_count` string pairs to `path`, laid out as the reference implementation does: tensors
 * sorted by dtype alignment (largest first) then name, header padded with spaces to 8 bytes.
 * Crash-safe: the bytes go to a temporary file in the same directory, which is fsync'ed and then
 * renamed over `path`, so `path` holds either the old or the complete new file. All arguments
 * are validated before any file is created. Metadata may be NULL when meta_count is 0. */
lc_status lc_safetensors_save(const char *path, int64_t count, const char *const *names,
                              lc_tensor *const *tensors, int64_t meta_count,
                              const char *const *meta_keys, const char *const *meta_values);

/* Reads a whole file. dtypes: F32, F64, I32, I64, BOOL, F16 and BF16 load as themselves (F16 as
 * LC_FLOAT16, BF16 as LC_BFLOAT16, bit for bit; convert with lc_to_dtype for float32); U8, I8,
 * I16, U16 as int32; U32 as int64. Others (U64, F8_*) are LC_EDTYPE. A
 * malformed file (bad header length, malformed JSON, unknown dtype, offsets past the end,
 * overlapping or leaving gaps, a shape whose byte size overflows or disagrees with its offsets)
 * is LC_EFORMAT; a missing or unreadable file LC_EIO. *out: free with lc_safetensors_free. */
lc_status lc_safetensors_load(const char *path, lc_safetensors **out);
/* The same from `len` bytes at `data` (the whole file's contents); `label` names it in
 * messages. The buffer is only read during the call. */
lc_status lc_safetensors_load_buffer(const void *data, size_t len, const char *label,
                                     lc_safetensors **out);
void lc_safetensors_free(lc_safetensors *f); /* NULL-safe */
/* Borrowed tensor named `name`, or NULL. */
lc_tensor *lc_safetensors_get(const lc_safetensors *f, const char *name);
/* Borrowed metadata value for `key`, or NULL. */
const char *lc_safetensors_meta(const lc_safetensors *f, const char *key);

/* ---------------------------------------------------------------- IDX (MNIST-style files)
 *
 * Magic 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 sizes, then the big-endian data.
 * Types: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64. gzip-compressed files are
 * recognised by their content (1f 8b), whatever their name.
 */

/* Reads `path` into a new contiguous tensor of dtype `dt`, each value multiplied by `scale`
 * (pass 1.0 to keep values; scale != 1 needs a float dtype). expect_ndim: the number of dims the
 * caller needs, or -1 for any. Integer types convert to any dtype; f32/f64 data needs a float
 * dtype (LC_EDTYPE otherwise). Errors: missing file (LC_EIO), bad magic / unknown type / wrong
 * ndims / size overflow / short or truncated data / bytes after the data (LC_EFORMAT). */
lc_status lc_idx_load(const char *path, int expect_ndim, lc_dtype dt, double scale,
                      lc_tensor **out);

/* ---------------------------------------------------------------- file access policy
 *
 * Every reader and writer above (lc_safetensors_load, lc_safetensors_save, lc_idx_load, and
 * lucid.load, lucid.save, lucid.data's readers through them) asks the policy before it opens a
 * path; a refused path is LC_EIO "fn: the host's file policy does not allow reading 'path'".
 * The policy is process-wide. A host sets it before running scripts it does not trust and
 * locks it (lc_lock_file_policy): later changes fail with LC_ESTATE, from C or from Lua. */
typedef enum lc_file_access { LC_FILE_READ, LC_FILE_WRITE } lc_file_access;
/* true: the path may be opened for access. Called under the policy's lock, from any thread:
 * it must not call the policy functions below (that would deadlock). */
typedef bool (*lc_file_policy_fn)(void *ctx, const char *path, lc_file_access access);
/* The host's own callback; NULL allows everything (the default). */
lc_status lc_set_file_policy(lc_file_policy_fn fn, void *ctx);
/* The built-in policy: reading is allowed below the directories read_roots (nread of them;
 * nread < 0: anywhere), writing below write_roots likewise. Roots must exist; they and every
 * path asked about are compared in canonical form (realpath), so "..", symbolic links and
 * relative paths cannot leave a root. Both counts < 0 removes the policy. */
lc_status lc_set_file_roots(const char *const *read_roots, int nread,
                            const char *const *write_roots, int nwrite);
void lc_lock_file_policy(void);
bool lc_file_policy_locked(void);
/* LC_OK when the policy allows fn to open path for access (the readers' and writers' check). */
lc_status lc_file_check(const char *fn, const char *path, lc_file_access access);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_IO_H */
