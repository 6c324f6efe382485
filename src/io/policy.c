/*
 * policy.c - the host's file access policy (include/lucid_io.h): every reader and writer of
 * src/io asks lc_file_check before it opens a path. A host installs its own callback
 * (lc_set_file_policy) or the built-in one that allows directory trees (lc_set_file_roots), and
 * can lock the choice (lc_lock_file_policy) before it runs scripts it does not trust.
 */
#include "io.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t policy_lock = PTHREAD_MUTEX_INITIALIZER;
static lc_file_policy_fn policy_fn; /* NULL: everything is allowed */
static void *policy_ctx;
static bool policy_locked;

/* ---------------------------------------------------------------- the built-in root policy */

typedef struct roots {
  int n[2];      /* per lc_file_access; -1: unrestricted */
  char **dir[2]; /* canonical directories */
} roots;

static roots the_roots;

static void roots_free(roots *r) {
  for (int a = 0; a < 2; a++) {
    for (int k = 0; k < r->n[a]; k++)
      free(r->dir[a][k]);
    free(r->dir[a]);
    r->dir[a] = NULL;
    r->n[a] = -1;
  }
}

/* The canonical form of path: realpath of the file when it exists, else realpath of its
 * directory plus its name (a file about to be written). false when neither resolves. */
static bool canonical(const char *path, char *out) {
  if (realpath(path, out)) return true;
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX];
  const char *name = slash ? slash + 1 : path;
  if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return false;
  if (slash) {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return false;
    memcpy(dir, path, n);
    dir[n] = 0;
    if (n == 0) strcpy(dir, "/");
  } else {
    strcpy(dir, ".");
  }
  char cdir[PATH_MAX];
  if (!realpath(dir, cdir)) return false;
  return (size_t)snprintf(out, PATH_MAX, "%s/%s", strcmp(cdir, "/") ? cdir : "", name) < PATH_MAX;
}

static bool under(const char *path, const char *root) {
  size_t n = strlen(root);
  if (n == 1 && root[0] == '/') return true;
  return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == 0);
}

static bool roots_allow(void *ctx, const char *path, lc_file_access access) {
  const roots *r = ctx;
  if (r->n[access] < 0) return true;
  char c[PATH_MAX];
  if (!canonical(path, c)) return false;
  for (int k = 0; k < r->n[access]; k++)
    if (under(c, r->dir[access][k])) return true;
  return false;
}

lc_status lc_set_file_roots(const char *const *read_roots, int nread,
                            const char *const *write_roots, int nwrite) {
  const char *const *lists[2] = {read_roots, write_roots};
  int counts[2] = {nread, nwrite};
  roots r = {.n = {-1, -1}};
  for (int a = 0; a < 2; a++) {
    if (counts[a] < 0) continue;
    if (counts[a] > 0 && !lists[a]) return lc_set_error(LC_EARG, "set_file_roots: a list is NULL");
    r.dir[a] = calloc((size_t)(counts[a] > 0 ? counts[a] : 1), sizeof *r.dir[a]);
    if (!r.dir[a]) {
      roots_free(&r);
      return lc_error_oom((size_t)counts[a] * sizeof(char *));
    }
    r.n[a] = 0;
    for (int k = 0; k < counts[a]; k++) {
      char c[PATH_MAX];
      if (!lists[a][k] || !realpath(lists[a][k], c)) {
        lc_status st = lc_set_error(LC_EARG,
                                    "set_file_roots: %s root " LC_POS_D " '%s' is not an "
                                    "existing directory",
                                    a ? "write" : "read", k, lists[a][k] ? lists[a][k] : "(null)");
        roots_free(&r);
        return st;
      }
      if (!(r.dir[a][k] = strdup(c))) {
        roots_free(&r);
        return lc_error_oom(strlen(c) + 1);
      }
      r.n[a]++;
    }
  }
  pthread_mutex_lock(&policy_lock);
  if (policy_locked) {
    pthread_mutex_unlock(&policy_lock);
    roots_free(&r);
    return lc_set_error(LC_ESTATE, "set_file_roots: the file policy is locked");
  }
  roots_free(&the_roots);
  the_roots = r;
  bool none = r.n[0] < 0 && r.n[1] < 0;
  policy_fn = none ? NULL : roots_allow;
  policy_ctx = none ? NULL : &the_roots;
  pthread_mutex_unlock(&policy_lock);
  return LC_OK;
}

/* ---------------------------------------------------------------- the policy */

lc_status lc_set_file_policy(lc_file_policy_fn fn, void *ctx) {
  pthread_mutex_lock(&policy_lock);
  if (policy_locked) {
    pthread_mutex_unlock(&policy_lock);
    return lc_set_error(LC_ESTATE, "set_file_policy: the file policy is locked");
  }
  policy_fn = fn;
  policy_ctx = fn ? ctx : NULL;
  pthread_mutex_unlock(&policy_lock);
  return LC_OK;
}

void lc_lock_file_policy(void) {
  pthread_mutex_lock(&policy_lock);
  policy_locked = true;
  pthread_mutex_unlock(&policy_lock);
}

bool lc_file_policy_locked(void) {
  pthread_mutex_lock(&policy_lock);
  bool l = policy_locked;
  pthread_mutex_unlock(&policy_lock);
  return l;
}

lc_status lc_file_check(const char *fn, const char *path, lc_file_access access) {
  /* the callback runs under the lock: a policy cannot change while a file is being judged */
  pthread_mutex_lock(&policy_lock);
  bool ok = !policy_fn || policy_fn(policy_ctx, path, access);
  pthread_mutex_unlock(&policy_lock);
  if (ok) return LC_OK;
  return lc_set_error(LC_EIO, "%s: the host's file policy does not allow %s '%s'", fn,
                      access == LC_FILE_WRITE ? "writing" : "reading", path);
}
