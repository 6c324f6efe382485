/* alloc.c - the core's allocation hooks (core.h): the real allocators, and a countdown that
 * makes one chosen allocation fail, for the allocation-failure tests. */
#define LC_ALLOC_UNHOOKED
#include "core.h"

static atomic_bool tracking;     /* a test is counting or failing allocations */
static atomic_llong fail_at;     /* allocations left until the failing one; 0: off */
static atomic_llong allocations; /* made while tracking */

void lc_debug_track_allocations(bool on) { atomic_store(&tracking, on); }
void lc_debug_fail_allocation(int64_t n) { atomic_store(&fail_at, n > 0 ? n : 0); }
int64_t lc_debug_allocations(void) { return atomic_load(&allocations); }

/* true when this allocation is the one to fail. Untracked (every run but the tests), one
 * relaxed load: no shared counter written on the allocation path. */
static bool failing(void) {
  if (!atomic_load_explicit(&tracking, memory_order_relaxed)) return false;
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  if (atomic_load_explicit(&fail_at, memory_order_relaxed) == 0) return false;
  return atomic_fetch_sub(&fail_at, 1) == 1;
}

void *lc_hooked_malloc(size_t n) { return failing() ? NULL : malloc(n); }
void *lc_hooked_calloc(size_t count, size_t size) { return failing() ? NULL : calloc(count, size); }
void *lc_hooked_realloc(void *p, size_t n) { return failing() ? NULL : realloc(p, n); }
char *lc_hooked_strdup(const char *s) { return failing() ? NULL : strdup(s); }
