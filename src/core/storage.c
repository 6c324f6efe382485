/* storage.c - refcounted, 64-byte aligned buffers shared by a tensor and its views. */
#include "core.h"

#include <stdint.h>
#include <stdlib.h>

static atomic_llong bytes_in_use;

int64_t lc_bytes_in_use(void) { return atomic_load(&bytes_in_use); }

void *lc_aligned_alloc(size_t nbytes) {
  /* aligned_alloc wants a multiple of the alignment; never ask for 0 bytes. */
  size_t rounded = (nbytes + LC_ALIGN - 1) / LC_ALIGN * LC_ALIGN;
  if (rounded < nbytes) return NULL; /* overflow */
  return aligned_alloc(LC_ALIGN, rounded ? rounded : LC_ALIGN);
}

void lc_aligned_free(void *p) { free(p); }

/* An owned storage is ONE plain malloc: the header, then the data at the first LC_ALIGN
 * boundary after it. Creating a small tensor then costs one allocation for the storage instead
 * of two, and malloc is cheaper than aligned_alloc for small sizes. free(s) releases both. */
static char *inline_data(const lc_storage *s) {
  uintptr_t p = (uintptr_t)s + sizeof *s;
  return (char *)((p + LC_ALIGN - 1) & ~(uintptr_t)(LC_ALIGN - 1));
}

static bool data_is_inline(const lc_storage *s) { return (char *)s->data == inline_data(s); }

lc_storage *lc_storage_new(size_t nbytes) {
  const size_t extra = sizeof(lc_storage) + LC_ALIGN - 1;
  lc_storage *s = nbytes <= SIZE_MAX - extra ? malloc(extra + nbytes) : NULL;
  if (!s) {
    lc_error_oom(nbytes);
    return NULL;
  }
  atomic_init(&s->refcount, 1);
  atomic_init(&s->version, 0);
  s->data = inline_data(s);
  s->nbytes = nbytes;
  s->owned = true;
  s->release = NULL;
  s->release_ctx = NULL;
  atomic_fetch_add_explicit(&bytes_in_use, (long long)nbytes, memory_order_relaxed);
  return s;
}

lc_storage *lc_storage_wrap(void *data, size_t nbytes, void (*release)(void *, void *),
                            void *ctx) {
  lc_storage *s = malloc(sizeof *s);
  if (!s) {
    lc_error_oom(sizeof *s);
    return NULL;
  }
  atomic_init(&s->refcount, 1);
  atomic_init(&s->version, 0);
  s->data = data;
  s->nbytes = nbytes;
  s->owned = false;
  s->release = release;
  s->release_ctx = ctx;
  return s;
}

void lc_storage_retain(lc_storage *s) {
  if (s) atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
}

void lc_storage_release(lc_storage *s) {
  if (!s || atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1) return;
  if (s->owned) {
    atomic_fetch_sub_explicit(&bytes_in_use, (long long)s->nbytes, memory_order_relaxed);
    if (data_is_inline(s)) {
      free(s); /* header and data were one allocation */
      return;
    }
    lc_aligned_free(s->data);
  } else if (s->release) {
    s->release(s->release_ctx, s->data);
  }
  free(s);
}
