/*
 * alloc.h - every allocation below the Lua binding goes through these hooks: the macros below
 * redirect malloc, calloc, realloc and strdup in each file that includes this header (core.h
 * does, and the nn layer's nn.h), so that a test can make the Nth allocation fail
 * (lc_debug_fail_allocation, lucid_core.h) and check that each error path returns a status,
 * frees what it took and leaves the runtime usable. Layer 1 (core); private.
 */
#ifndef LUCID_CORE_ALLOC_H
#define LUCID_CORE_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void *lc_hooked_malloc(size_t n);
void *lc_hooked_calloc(size_t count, size_t size);
void *lc_hooked_realloc(void *p, size_t n);
char *lc_hooked_strdup(const char *s);

#ifndef LC_ALLOC_UNHOOKED
#define malloc(n) lc_hooked_malloc(n)
#define calloc(c, s) lc_hooked_calloc(c, s)
#define realloc(p, n) lc_hooked_realloc(p, n)
#define strdup(s) lc_hooked_strdup(s)
#endif

#endif /* LUCID_CORE_ALLOC_H */
