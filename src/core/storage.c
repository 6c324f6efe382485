/* storage.c - refcounted, 64-byte aligned buffers shared by a tensor and its views. */
#include "core.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static atomic_llong bytes_in_use;

int64_t lc_bytes_in_use(void) { return atomic_load(&bytes_in_use); }

/* The host's cap on bytes_in_use (0: none), and whether it can still be changed. */
static atomic_llong memory_limit;
static atomic_bool limit_locked;

lc_status lc_set_memory_limit(int64_t bytes) {
  if (bytes < 0)
    return lc_set_error(LC_EARG, "set_memory_limit: expected bytes >= 0 (0: no limit), got %lld",
                        (long long)bytes);
  if (atomic_load(&limit_locked))
    return lc_set_error(LC_ESTATE, "set_memory_limit: the memory limit is locked (%lld bytes)",
                        (long long)atomic_load(&memory_limit));
  atomic_store(&memory_limit, bytes);
  return LC_OK;
}

void lc_lock_memory_limit(void) { atomic_store(&limit_locked, true); }
int64_t lc_memory_limit(void) { return atomic_load(&memory_limit); }
bool lc_memory_limit_locked(void) { return atomic_load(&limit_locked); }

/* Counts nbytes as in use before they are allocated; past the limit, takes them back and fails
 * (nothing is allocated, so nothing is touched). */
static bool reserve(size_t nbytes) {
  long long n = (long long)nbytes;
  long long limit = atomic_load_explicit(&memory_limit, memory_order_relaxed);
  if (limit == 0) { /* no limit: the count alone, as before limits existed */
    atomic_fetch_add_explicit(&bytes_in_use, n, memory_order_relaxed);
    return true;
  }
  long long now = atomic_fetch_add_explicit(&bytes_in_use, n, memory_order_relaxed) + n;
  if (now <= limit) return true;
  atomic_fetch_sub_explicit(&bytes_in_use, n, memory_order_relaxed);
  lc_set_error(LC_ENOMEM,
               "out of memory: allocating %zu bytes would pass the memory limit of %lld bytes "
               "(%lld in use)",
               nbytes, limit, now - n);
  return false;
}

static void unreserve(size_t nbytes) {
  atomic_fetch_sub_explicit(&bytes_in_use, (long long)nbytes, memory_order_relaxed);
}

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

/* A small cache of freed large blocks. glibc serves big requests with fresh mmaps and returns
 * them on free, so without it every large temporary (a 10M-element add's output) pays a page
 * fault per 4 KiB, several times the cost of the arithmetic. Blocks of at least CACHE_MIN_BYTES
 * are rounded up to CACHE_GRANULE and kept, up to CACHE_MAX_BLOCKS blocks and CACHE_MAX_BYTES in
 * all, for reuse by a request of the same rounded size. lc_empty_cache() returns them.
 * CACHE_MIN_BYTES is glibc's mmap threshold (128 KiB): below it malloc keeps freed memory
 * itself; from it up every block would be a fresh mmap (a 100,000-element op measured 108 us
 * with a 1 MiB threshold here, 8 us with this one). */
#define CACHE_MIN_BYTES ((size_t)128 << 10)
#define CACHE_GRANULE ((size_t)1 << 16)
#define CACHE_MAX_BLOCKS 64
#define CACHE_MAX_BYTES ((size_t)256 << 20)

static struct {
  pthread_mutex_t lock;
  size_t sizes[CACHE_MAX_BLOCKS];
  void *blocks[CACHE_MAX_BLOCKS];
  int n;
  size_t bytes;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *cache_take(size_t size) {
  void *block = NULL;
  pthread_mutex_lock(&cache.lock);
  for (int i = 0; i < cache.n; i++) {
    if (cache.sizes[i] == size) {
      block = cache.blocks[i];
      cache.bytes -= size;
      cache.n--;
      cache.blocks[i] = cache.blocks[cache.n];
      cache.sizes[i] = cache.sizes[cache.n];
      break;
    }
  }
  pthread_mutex_unlock(&cache.lock);
  return block;
}

/* Keeps block if there is room, evicting the oldest entries; else frees it. */
static void cache_put(void *block, size_t size) {
  void *evicted[CACHE_MAX_BLOCKS];
  int n_evicted = 0;
  bool kept = false;
  pthread_mutex_lock(&cache.lock);
  if (size <= CACHE_MAX_BYTES) {
    while (cache.n > 0 && (cache.n == CACHE_MAX_BLOCKS || cache.bytes + size > CACHE_MAX_BYTES)) {
      evicted[n_evicted++] = cache.blocks[0];
      cache.bytes -= cache.sizes[0];
      cache.n--;
      cache.blocks[0] = cache.blocks[cache.n];
      cache.sizes[0] = cache.sizes[cache.n];
    }
    cache.blocks[cache.n] = block;
    cache.sizes[cache.n] = size;
    cache.n++;
    cache.bytes += size;
    kept = true;
  }
  pthread_mutex_unlock(&cache.lock);
  for (int i = 0; i < n_evicted; i++) free(evicted[i]);
  if (!kept) free(block);
}

/* Release functions of caches kept by layers above the core (the conv workspaces): they
 * register here, so lc_empty_cache frees everything without the core knowing them. */
#define CACHE_HOOKS 8
static void (*cache_hooks[CACHE_HOOKS])(void);
static atomic_int n_cache_hooks;

lc_status lc_on_empty_cache(void (*release)(void)) {
  pthread_mutex_lock(&cache.lock);
  int n = atomic_load(&n_cache_hooks);
  lc_status st = LC_OK;
  bool known = false;
  for (int i = 0; i < n; i++) known |= cache_hooks[i] == release;
  if (!known && n == CACHE_HOOKS)
    st = lc_set_error(LC_ENOMEM, "on_empty_cache: at most %d hooks", CACHE_HOOKS);
  else if (!known) {
    cache_hooks[n] = release;
    atomic_store(&n_cache_hooks, n + 1);
  }
  pthread_mutex_unlock(&cache.lock);
  return st;
}

void lc_empty_cache(void) {
  int nh = atomic_load(&n_cache_hooks);
  for (int i = 0; i < nh; i++) cache_hooks[i]();
  pthread_mutex_lock(&cache.lock);
  int n = cache.n;
  void *blocks[CACHE_MAX_BLOCKS];
  for (int i = 0; i < n; i++) blocks[i] = cache.blocks[i];
  cache.n = 0;
  cache.bytes = 0;
  pthread_mutex_unlock(&cache.lock);
  for (int i = 0; i < n; i++) free(blocks[i]);
}

/* ------------------------------------------------------------------ small-block pools */

/* Under ASan a pooled block is poisoned, so a use after lc_release is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#define LC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LC_ASAN 1
#endif
#endif
#ifdef LC_ASAN
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define POOL_CAP 256 /* blocks per list and thread: bounds what a thread keeps (~45 KiB) */
#define SMALL_BLOCK (sizeof(lc_tensor) + sizeof(lc_storage) + LC_ALIGN - 1 + LC_SMALL_BYTES)

typedef struct pool {
  int n;
  void *blocks[POOL_CAP];
} pool;

/* The lists are thread-local (no locking). A thread that has pooled a block registers a key
 * whose destructor frees its lists when it exits; the main thread's lists stay reachable
 * from its TLS until the process ends (so LeakSanitizer does not report them). */
static _Thread_local pool pools[LC_POOL_COUNT];
static _Thread_local int pool_state; /* 0: not registered, 1: registered, 2: no pooling */
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static bool pool_key_ok;

static size_t pool_block_size(int cls) {
  return cls == LC_POOL_TENSOR ? sizeof(lc_tensor) : SMALL_BLOCK;
}

static void pool_drain(void *unused) {
  (void)unused;
  pool_state = 2; /* blocks released later by other TLS destructors are freed directly */
  for (int c = 0; c < LC_POOL_COUNT; c++) {
    for (int i = 0; i < pools[c].n; i++) {
      POOL_UNPOISON(pools[c].blocks[i], pool_block_size(c));
      free(pools[c].blocks[i]);
    }
    pools[c].n = 0;
  }
}

static void pool_key_init(void) { pool_key_ok = pthread_key_create(&pool_key, pool_drain) == 0; }

void *lc_pool_get(int cls) {
  pool *pl = &pools[cls];
  if (pl->n == 0) return NULL;
  void *p = pl->blocks[--pl->n];
  POOL_UNPOISON(p, pool_block_size(cls));
  return p;
}

void lc_pool_put(int cls, void *p) {
  if (pool_state != 1) {
    if (pool_state == 0) {
      pthread_once(&pool_once, pool_key_init);
      pool_state = pool_key_ok && pthread_setspecific(pool_key, (void *)1) == 0 ? 1 : 2;
    }
    if (pool_state != 1) {
      free(p);
      return;
    }
  }
  pool *pl = &pools[cls];
  if (pl->n == POOL_CAP) {
    free(p);
    return;
  }
  POOL_POISON(p, pool_block_size(cls));
  pl->blocks[pl->n++] = p;
}

/* The malloc size of an owned storage holding nbytes (0 on overflow). */
static size_t block_size(size_t nbytes) {
  const size_t extra = sizeof(lc_storage) + LC_ALIGN - 1;
  if (nbytes > SIZE_MAX - extra - CACHE_GRANULE) return 0;
  size_t size = extra + nbytes;
  if (size >= CACHE_MIN_BYTES) size = (size + CACHE_GRANULE - 1) / CACHE_GRANULE * CACHE_GRANULE;
  return size;
}

/* An owned storage whose data follows its header in the same allocation. */
static void init_owned(lc_storage *s, size_t nbytes, void *block) {
  atomic_init(&s->refcount, 1);
  atomic_init(&s->version, 0);
  s->data = inline_data(s);
  s->nbytes = nbytes;
  s->owned = true;
  s->release = NULL;
  s->release_ctx = NULL;
  s->block = block; /* its bytes were counted by reserve() */
}

lc_storage *lc_storage_new(size_t nbytes) {
  size_t size = block_size(nbytes);
  if (!reserve(nbytes)) return NULL;
  lc_storage *s = NULL;
  if (size >= CACHE_MIN_BYTES) s = cache_take(size);
  if (!s && size) s = malloc(size);
  if (!s) {
    unreserve(nbytes);
    lc_error_oom(nbytes);
    return NULL;
  }
  init_owned(s, nbytes, NULL);
  return s;
}

void *lc_storage_new_embedded(size_t nbytes, lc_storage **out) {
  if (nbytes > LC_SMALL_BYTES) {
    lc_set_error(LC_EARG, "storage_new_embedded: %zu bytes, expected at most %d", nbytes,
                 LC_SMALL_BYTES);
    return NULL;
  }
  if (!reserve(nbytes)) return NULL;
  char *block = lc_pool_get(LC_POOL_SMALL);
  if (!block) block = malloc(SMALL_BLOCK);
  if (!block) {
    unreserve(nbytes);
    lc_error_oom(SMALL_BLOCK);
    return NULL;
  }
  lc_storage *s = (lc_storage *)(block + sizeof(lc_tensor));
  _Static_assert(sizeof(lc_tensor) % _Alignof(lc_storage) == 0, "storage follows the header");
  init_owned(s, nbytes, block);
  *out = s;
  return block;
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
  s->block = NULL;
  return s;
}

void lc_storage_retain(lc_storage *s) {
  if (s) atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
}

void lc_storage_release(lc_storage *s) {
  if (!s || atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1) return;
  if (s->owned) {
    atomic_fetch_sub_explicit(&bytes_in_use, (long long)s->nbytes, memory_order_relaxed);
    if (s->block) {
      /* the tensor header in the block was released before (it held a reference) */
      lc_pool_put(LC_POOL_SMALL, s->block);
      return;
    }
    if (data_is_inline(s)) {
      /* header and data were one allocation */
      size_t size = block_size(s->nbytes);
      if (size >= CACHE_MIN_BYTES)
        cache_put(s, size);
      else
        free(s);
      return;
    }
    lc_aligned_free(s->data);
  } else if (s->release) {
    s->release(s->release_ctx, s->data);
  }
  free(s);
}
