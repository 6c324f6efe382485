/* module.c - the module object: lifetime, named entries, structural edits, the recursive
 * protocol (parameters, state dict, train/eval, ...), forward with error paths, printing. */
#include "nn.h"

#include "../core/core.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- small helpers */

char *lc_nn_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (!p) {
    lc_set_error(LC_ENOMEM, "out of memory: could not allocate %zu bytes", n);
    return NULL;
  }
  memcpy(p, s, n);
  return p;
}

void lc_sb_add(lc_strbuf *b, const char *s) { lc_sb_addf(b, "%s", s); }

void lc_sb_addf(lc_strbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (need < 0) return;
  if (b->len + (size_t)need + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + (size_t)need + 1)
      cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = true;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)need + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)need;
}

static lc_status oom(void) { return lc_set_error(LC_ENOMEM, "nn: out of memory"); }

/* ---------------------------------------------------------------- entry lists */

static int64_t entries_find(const lc_entries *e, const char *name) {
  for (int64_t i = 0; i < e->n; i++)
    if (strcmp(e->names[i], name) == 0) return i;
  return -1;
}

/* Inserts (name copied, item's reference taken over by the list) at pos. */
static lc_status entries_insert(lc_entries *e, int64_t pos, const char *name, void *item) {
  if (e->n == e->cap) {
    int64_t cap = e->cap ? e->cap * 2 : 4;
    char **names = realloc(e->names, (size_t)cap * sizeof *names);
    if (!names) return oom();
    e->names = names;
    void **items = realloc(e->items, (size_t)cap * sizeof *items);
    if (!items) return oom();
    e->items = items;
    e->cap = cap;
  }
  char *nm = lc_nn_strdup(name);
  if (!nm) return LC_ENOMEM;
  memmove(e->names + pos + 1, e->names + pos, (size_t)(e->n - pos) * sizeof *e->names);
  memmove(e->items + pos + 1, e->items + pos, (size_t)(e->n - pos) * sizeof *e->items);
  e->names[pos] = nm;
  e->items[pos] = item;
  e->n++;
  return LC_OK;
}

/* Removes entry pos; its name is freed, its item returned (the reference passes on). */
static void *entries_remove(lc_entries *e, int64_t pos) {
  void *item = e->items[pos];
  free(e->names[pos]);
  memmove(e->names + pos, e->names + pos + 1, (size_t)(e->n - pos - 1) * sizeof *e->names);
  memmove(e->items + pos, e->items + pos + 1, (size_t)(e->n - pos - 1) * sizeof *e->items);
  e->n--;
  return item;
}

static void entries_free_tensors(lc_entries *e) {
  for (int64_t i = 0; i < e->n; i++) {
    free(e->names[i]);
    lc_release(e->items[i]);
  }
  free(e->names);
  free(e->items);
}

/* ---------------------------------------------------------------- lifetime */

lc_status lc_module_new(const lc_module_kind *kind, void *state, const char *type_name,
                        lc_module **out) {
  lc_module *m = calloc(1, sizeof *m);
  char *tn = NULL;
  if (!m || (type_name && !(tn = lc_nn_strdup(type_name)))) {
    free(m);
    if (kind->destroy) {
      /* destroy() reads the state through a module: hand it a temporary one */
      lc_module tmp = {.kind = kind, .state = state};
      kind->destroy(&tmp);
    }
    return oom();
  }
  atomic_init(&m->refcount, 1);
  m->kind = kind;
  m->type_name = tn;
  m->state = state;
  m->training = true;
  *out = m;
  return LC_OK;
}

lc_module *lc_module_retain(lc_module *m) {
  if (m) atomic_fetch_add_explicit(&m->refcount, 1, memory_order_relaxed);
  return m;
}

void lc_module_release(lc_module *m) {
  if (!m) return;
  if (atomic_fetch_sub_explicit(&m->refcount, 1, memory_order_acq_rel) != 1) return;
  if (m->kind->destroy) m->kind->destroy(m);
  entries_free_tensors(&m->params);
  entries_free_tensors(&m->buffers);
  for (int64_t i = 0; i < m->children.n; i++) {
    free(m->children.names[i]);
    lc_module_release(m->children.items[i]);
  }
  free(m->children.names);
  free(m->children.items);
  free(m->type_name);
  for (int k = 0; k < 3; k++)
    lc_node_base_release(m->hooks[k]);
  free(m);
}

const lc_module_kind *lc_module_kind_of(const lc_module *m) { return m->kind; }
const char *lc_module_type_name(const lc_module *m) {
  return m->type_name ? m->type_name : m->kind->name;
}
void *lc_module_state(const lc_module *m) { return m->state; }
bool lc_module_attr(const lc_module *m, const char *name, lc_attr *out) {
  return m->kind->attr && m->kind->attr(m, name, out);
}

/* ---------------------------------------------------------------- own entries */

int64_t lc_module_num_children(const lc_module *m) { return m->children.n; }
lc_module *lc_module_child(const lc_module *m, int64_t i) { return m->children.items[i]; }
const char *lc_module_child_name(const lc_module *m, int64_t i) { return m->children.names[i]; }
int64_t lc_module_num_own_parameters(const lc_module *m) { return m->params.n; }
lc_tensor *lc_module_own_parameter(const lc_module *m, int64_t i) { return m->params.items[i]; }
const char *lc_module_own_parameter_name(const lc_module *m, int64_t i) {
  return m->params.names[i];
}
int64_t lc_module_num_own_buffers(const lc_module *m) { return m->buffers.n; }
lc_tensor *lc_module_own_buffer(const lc_module *m, int64_t i) { return m->buffers.items[i]; }
const char *lc_module_own_buffer_name(const lc_module *m, int64_t i) { return m->buffers.names[i]; }
int64_t lc_module_find_child(const lc_module *m, const char *name) {
  return entries_find(&m->children, name);
}
int64_t lc_module_find_parameter(const lc_module *m, const char *name) {
  return entries_find(&m->params, name);
}
int64_t lc_module_find_buffer(const lc_module *m, const char *name) {
  return entries_find(&m->buffers, name);
}

static bool is_digit_name(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return false;
  return true;
}

static bool indexed(const lc_module *m) { return m->kind->flags & LC_KIND_INDEXED; }

static lc_status check_syntax(const lc_module *m, const char *name, const char *what) {
  if (!name || !*name) return lc_set_error(LC_EARG, "%s: a name must not be empty", what);
  if (strchr(name, '.'))
    return lc_set_error(LC_EARG, "%s: name \"%s\" must not contain \".\"", what, name);
  (void)m;
  return LC_OK;
}

lc_status lc_module_check_name(const lc_module *m, const char *name, const char *what) {
  lc_status st = check_syntax(m, name, what);
  if (st) return st;
  if (entries_find(&m->children, name) >= 0)
    return lc_set_error(LC_EARG, "%s: %s already has a child named \"%s\"", what,
                        lc_module_type_name(m), name);
  if (entries_find(&m->params, name) >= 0)
    return lc_set_error(LC_EARG, "%s: %s already has a parameter named \"%s\"", what,
                        lc_module_type_name(m), name);
  if (entries_find(&m->buffers, name) >= 0)
    return lc_set_error(LC_EARG, "%s: %s already has a buffer named \"%s\"", what,
                        lc_module_type_name(m), name);
  return LC_OK;
}

/* Digit names of indexed containers are positions (0-based, as PyTorch names them): keep them
 * so after edits. */
static lc_status renumber(lc_module *m) {
  if (!indexed(m)) return LC_OK;
  for (int64_t i = 0; i < m->children.n; i++) {
    if (!is_digit_name(m->children.names[i])) continue;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)i);
    if (strcmp(buf, m->children.names[i]) == 0) continue;
    char *nm = lc_nn_strdup(buf);
    if (!nm) return LC_ENOMEM;
    free(m->children.names[i]);
    m->children.names[i] = nm;
  }
  return LC_OK;
}

/* ---------------------------------------------------------------- positional names in paths */

/* A path segment that names a position of container m: m is indexed, the segment is an integer
 * written the canonical way ("0", "12"; "-1" is the image of a 1-based "0") and not the name of
 * one of m's parameters or buffers. */
static bool position_segment(const lc_module *m, const char *seg, size_t len, long long *v) {
  if (!m || !indexed(m) || !len || len > 18) return false;
  char buf[24];
  memcpy(buf, seg, len);
  buf[len] = 0;
  const char *d = buf[0] == '-' ? buf + 1 : buf;
  if (!*d || (d[0] == '0' && d[1]) || !is_digit_name(d)) return false;
  if (entries_find(&m->params, buf) >= 0 || entries_find(&m->buffers, buf) >= 0) return false;
  *v = strtoll(buf, NULL, 10);
  return *v >= -1;
}

/* Writes `path` (dotted, relative to m, written with positions in base `from`) with every
 * positional segment in base `to`, or, with mark, as a marked 0-based position (LC_POS_ABS) for
 * messages. The walk follows the children the path names; below a missing child the segments
 * are copied. */
static void walk_path(const lc_module *m, const char *path, int from, int to, bool mark,
                      lc_strbuf *sb) {
  for (const char *p = path; p;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    long long v;
    const lc_module *next = NULL;
    if (position_segment(m, p, len, &v)) {
      long long c = v - from; /* 0-based */
      if (mark)
        lc_sb_addf(sb, LC_POS_ABS, c);
      else
        lc_sb_addf(sb, "%lld", c + to);
      if (c >= 0 && c < m->children.n) next = m->children.items[c];
    } else {
      lc_sb_addf(sb, "%.*s", (int)len, p);
      if (m)
        for (int64_t i = 0; i < m->children.n && !next; i++)
          if (strlen(m->children.names[i]) == len && !memcmp(m->children.names[i], p, len))
            next = m->children.items[i];
    }
    m = next;
    p = dot ? dot + 1 : NULL;
    if (p) lc_sb_add(sb, ".");
  }
}

lc_status lc_module_rebase_path(const lc_module *m, const char *path, int from_base, int to_base,
                                char **out) {
  if (!m || !path || !out)
    return lc_set_error(LC_EARG, "module_rebase_path: %s is NULL",
                        !m      ? "m"
                        : !path ? "path"
                                : "out");
  lc_strbuf sb = {0};
  walk_path(m, path, from_base, to_base, false, &sb);
  if (sb.oom || !sb.s) {
    free(sb.s);
    if (!sb.oom) return (*out = lc_nn_strdup("")) ? LC_OK : oom();
    return oom();
  }
  *out = sb.s;
  return LC_OK;
}

/* path (0-based) for a message: positional segments marked, so each binding shows them in its
 * users' base. Writes into buf (cap bytes). */
static const char *marked_path(const lc_module *m, const char *path, char *buf, size_t cap) {
  lc_strbuf sb = {0};
  walk_path(m, path, 0, 0, true, &sb);
  snprintf(buf, cap, "%s", sb.oom || !sb.s ? path : sb.s);
  free(sb.s);
  return buf;
}

/* True when `target` is `root` or one of its descendants. */
static bool contains(const lc_module *root, const lc_module *target) {
  if (root == target) return true;
  for (int64_t i = 0; i < root->children.n; i++)
    if (root->children.items[i] && contains(root->children.items[i], target)) return true;
  return false;
}

static lc_status check_child(const lc_module *m, const lc_module *child, const char *what) {
  if (!child) return lc_set_error(LC_EARG, "%s: child module is NULL", what);
  if (contains(child, m))
    return lc_set_error(LC_EARG, "%s: adding this %s would make %s contain itself (a module cycle)",
                        what, lc_module_type_name(child), lc_module_type_name(m));
  return LC_OK;
}

lc_status lc_module_register_parameter(lc_module *m, const char *name, lc_tensor *t) {
  const char *what = "register_parameter";
  lc_status st = check_syntax(m, name, what);
  if (st) return st;
  if (!t) return lc_set_error(LC_EARG, "%s: parameter \"%s\" is NULL", what, name);
  if (!lc_is_leaf(t) || !lc_requires_grad(t))
    return lc_set_error(LC_EARG,
                        "%s: parameter \"%s\" must be a leaf tensor that requires grad, got %s",
                        what, name,
                        !lc_requires_grad(t) ? "a tensor without requires_grad"
                                             : "a non-leaf tensor (computed by an op)");
  int64_t i = entries_find(&m->params, name);
  if (i >= 0) {
    lc_retain(t);
    lc_release(m->params.items[i]);
    m->params.items[i] = t;
    return LC_OK;
  }
  if ((st = lc_module_check_name(m, name, what))) return st;
  if ((st = entries_insert(&m->params, m->params.n, name, t))) return st;
  lc_retain(t);
  return LC_OK;
}

lc_status lc_module_register_buffer(lc_module *m, const char *name, lc_tensor *t) {
  const char *what = "register_buffer";
  lc_status st = check_syntax(m, name, what);
  if (st) return st;
  if (!t) return lc_set_error(LC_EARG, "%s: buffer \"%s\" is NULL", what, name);
  int64_t i = entries_find(&m->buffers, name);
  if (i >= 0) {
    lc_retain(t);
    lc_release(m->buffers.items[i]);
    m->buffers.items[i] = t;
    return LC_OK;
  }
  if ((st = lc_module_check_name(m, name, what))) return st;
  if ((st = entries_insert(&m->buffers, m->buffers.n, name, t))) return st;
  lc_retain(t);
  return LC_OK;
}

lc_status lc_module_insert(lc_module *m, int64_t i, const char *name, lc_module *child) {
  const char *what = "insert";
  if (i < 0 || i > m->children.n)
    return lc_set_error(LC_EINDEX, "%s: position %lld out of range, expected 0..%lld", what,
                        (long long)i, (long long)m->children.n);
  lc_status st = check_child(m, child, what);
  if (st) return st;
  if (!name) {
    if (!indexed(m))
      return lc_set_error(LC_EARG, "%s: %s children need a name", what, lc_module_type_name(m));
    name = "0"; /* any digit name: renumber() gives it its position */
  } else if (indexed(m) && is_digit_name(name)) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)i);
    if (strcmp(buf, name) != 0)
      return lc_set_error(LC_EARG,
                          "%s: a name made of digits is a position: \"" LC_POS_I "\" given for "
                          "position " LC_POS_I,
                          what, strtoll(name, NULL, 10), (long long)i);
    /* the child now at that position is renumbered below, so no duplicate check */
  } else if ((st = lc_module_check_name(m, name, what))) {
    return st;
  }
  if ((st = entries_insert(&m->children, i, name, child))) return st;
  lc_module_retain(child);
  return renumber(m);
}

lc_status lc_module_add_module(lc_module *m, const char *name, lc_module *child) {
  return lc_module_insert(m, m->children.n, name, child);
}

lc_status lc_module_set_child(lc_module *m, const char *name, lc_module *child) {
  lc_status st = check_syntax(m, name, "set_child");
  if (st) return st;
  int64_t i = entries_find(&m->children, name);
  if (i < 0) return lc_module_insert(m, m->children.n, name, child);
  return lc_module_replace(m, i, child);
}

lc_status lc_module_replace(lc_module *m, int64_t i, lc_module *child) {
  if (i < 0 || i >= m->children.n)
    return lc_set_error(LC_EINDEX, "replace: position %lld out of range, expected 0..%lld",
                        (long long)i, (long long)m->children.n - 1);
  lc_module *old = m->children.items[i];
  if (old == child) return LC_OK;
  /* the old child goes away, so a cycle through it is not possible: check without it */
  m->children.items[i] = NULL;
  lc_status st = LC_OK;
  if (!child)
    st = lc_set_error(LC_EARG, "replace: child module is NULL");
  else if (contains(child, m))
    st = lc_set_error(LC_EARG, "replace: adding this %s would make %s contain itself",
                      lc_module_type_name(child), lc_module_type_name(m));
  if (st) {
    m->children.items[i] = old;
    return st;
  }
  m->children.items[i] = lc_module_retain(child);
  lc_module_release(old);
  return LC_OK;
}

lc_status lc_module_pop(lc_module *m, int64_t i, lc_module **out) {
  if (i < 0 || i >= m->children.n)
    return lc_set_error(LC_EINDEX, "pop: position %lld out of range, expected 0..%lld",
                        (long long)i, (long long)m->children.n - 1);
  lc_module *c = entries_remove(&m->children, i);
  lc_status st = renumber(m);
  if (out)
    *out = c;
  else
    lc_module_release(c);
  return st;
}

lc_status lc_module_remove(lc_module *m, const char *name) {
  int64_t i;
  if ((i = entries_find(&m->children, name)) >= 0) return lc_module_pop(m, i, NULL);
  if ((i = entries_find(&m->params, name)) >= 0) {
    lc_release(entries_remove(&m->params, i));
    return LC_OK;
  }
  if ((i = entries_find(&m->buffers, name)) >= 0) {
    lc_release(entries_remove(&m->buffers, i));
    return LC_OK;
  }
  char nm[256];
  return lc_set_error(LC_EINDEX, "remove: %s has no child, parameter or buffer named \"%s\"",
                      lc_module_type_name(m), marked_path(m, name, nm, sizeof nm));
}

lc_status lc_module_slice(const lc_module *m, int64_t start, int64_t end, lc_module **out) {
  if (!(m->kind->flags & LC_KIND_CONTAINER))
    return lc_set_error(LC_EARG, "slice: expected a container, got %s", lc_module_type_name(m));
  if (start < 0 || end > m->children.n || start > end)
    return lc_set_error(LC_EINDEX,
                        "slice: range [%lld, %lld) out of range, expected within [0, %lld]",
                        (long long)start, (long long)end, (long long)m->children.n);
  lc_module *r;
  lc_status st = lc_module_new(m->kind, NULL, m->type_name, &r);
  if (st) return st;
  for (int64_t i = start; i < end && !st; i++) {
    const char *nm = m->children.names[i];
    /* position names follow the new positions */
    if (indexed(m) && is_digit_name(nm)) nm = NULL;
    st = lc_module_insert(r, r->children.n, nm, m->children.items[i]);
  }
  if (st) {
    lc_module_release(r);
    return st;
  }
  r->training = m->training;
  *out = r;
  return LC_OK;
}

/* ---------------------------------------------------------------- forward and error paths */

/* Set while an error message already starts with a child path ("fc2 (Linear): ..."), so the
 * containers above prepend "name." only. Thread-local: forward errors bubble up one thread. */
static _Thread_local bool path_open;

lc_status lc_module_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  bool saved = path_open;
  path_open = false;
  lc_status st;
  if (!x)
    st = lc_set_error(LC_EARG, "expected an input tensor, got NULL");
  else if ((m->kind->flags & LC_KIND_NOT_CALLABLE) || !m->kind->forward)
    st = lc_set_error(LC_ESTATE, "not callable: index it by name and call the modules it holds");
  else if (m->hooks[0] || m->hooks[1] || m->hooks[2])
    st = lc_nn_hooked_forward(m, false, x, out);
  else
    st = m->kind->forward(m, x, out);
  if (st) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lc_last_error_marked());
    lc_set_error(st, "%s%s%s", lc_module_type_name(m), path_open ? "." : ": ", msg);
  }
  path_open = saved;
  return st;
}

/* Runs child i (fused with a following ReLU when relu is set: its kind has forward_relu),
 * prefixing its name (and type, for the innermost failing module) to a failure's message. */
static lc_status forward_child(lc_module *m, int64_t i, bool relu, const lc_tensor *x,
                               lc_tensor **out) {
  lc_module *c = m->children.items[i];
  lc_status st;
  bool inner = false; /* the failure is c's own (not from deeper down) */
  if ((c->kind->flags & LC_KIND_NOT_CALLABLE) || !c->kind->forward) {
    st = lc_set_error(LC_ESTATE, "not callable: index it by name and call the modules it holds");
    inner = true;
    path_open = false;
  } else {
    path_open = false;
    if (c->hooks[0] || c->hooks[1] || c->hooks[2])
      st = lc_nn_hooked_forward(c, relu, x, out);
    else
      st = relu ? c->kind->forward_relu(c, x, out) : c->kind->forward(c, x, out);
    inner = !path_open;
  }
  if (st) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lc_last_error_marked());
    char nm[256];
    marked_path(m, m->children.names[i], nm, sizeof nm);
    if (inner)
      lc_set_error(st, "%s (%s): %s", nm, lc_module_type_name(c), msg);
    else
      lc_set_error(st, "%s.%s", nm, msg);
    path_open = true;
  }
  return st;
}

lc_status lc_module_forward_child(lc_module *m, int64_t i, const lc_tensor *x, lc_tensor **out) {
  return forward_child(m, i, false, x, out);
}

lc_status lc_nn_forward_child_relu(lc_module *m, int64_t i, const lc_tensor *x, lc_tensor **out) {
  return forward_child(m, i, true, x, out);
}

/* ---------------------------------------------------------------- recursive queries */

typedef struct builder {
  int64_t n, cap;
  char **names;
  void **items;
} builder;

static lc_status builder_push(builder *b, const char *prefix, const char *name, void *item) {
  if (b->n == b->cap) {
    int64_t cap = b->cap ? b->cap * 2 : 8;
    char **names = realloc(b->names, (size_t)cap * sizeof *names);
    if (!names) return oom();
    b->names = names;
    void **items = realloc(b->items, (size_t)cap * sizeof *items);
    if (!items) return oom();
    b->items = items;
    b->cap = cap;
  }
  size_t lp = strlen(prefix), ln = strlen(name);
  char *s = malloc(lp + ln + 1);
  if (!s) return oom();
  memcpy(s, prefix, lp);
  memcpy(s + lp, name, ln + 1);
  b->names[b->n] = s;
  b->items[b->n] = item;
  b->n++;
  return LC_OK;
}

static bool builder_has(const builder *b, const void *item) {
  /* linear: module trees hold tens to hundreds of tensors, and these queries are not per step */
  for (int64_t i = 0; i < b->n; i++)
    if (b->items[i] == item) return true;
  return false;
}

static void builder_free_tensors(builder *b) {
  for (int64_t i = 0; i < b->n; i++) {
    free(b->names[i]);
    lc_release(b->items[i]);
  }
  free(b->names);
  free(b->items);
}

static void builder_free_modules(builder *b) {
  for (int64_t i = 0; i < b->n; i++) {
    free(b->names[i]);
    lc_module_release(b->items[i]);
  }
  free(b->names);
  free(b->items);
}

static char *join(const char *prefix, const char *name) {
  size_t lp = strlen(prefix), ln = strlen(name);
  char *s = malloc(lp + ln + 2);
  if (!s) return NULL;
  memcpy(s, prefix, lp);
  memcpy(s + lp, name, ln);
  s[lp + ln] = '.';
  s[lp + ln + 1] = 0;
  return s;
}

enum { Q_PARAMS = 1, Q_BUFFERS = 2 };

/* Collects tensors (own entries, then children's) under prefix. dedup: each tensor once.
 * detach: detached aliases instead of the tensors themselves. */
static lc_status collect_tensors(const lc_module *m, const char *prefix, int which, bool recurse,
                                 bool dedup, bool detach, builder *b) {
  lc_status st;
  for (int pass = 0; pass < 2; pass++) {
    const lc_entries *e = pass == 0 ? &m->params : &m->buffers;
    if (!(which & (pass == 0 ? Q_PARAMS : Q_BUFFERS))) continue;
    for (int64_t i = 0; i < e->n; i++) {
      lc_tensor *t = e->items[i];
      if (dedup && builder_has(b, t)) continue;
      lc_tensor *item;
      if (detach) {
        if ((st = lc_detach(t, &item))) return st;
      } else
        item = lc_retain(t);
      if ((st = builder_push(b, prefix, e->names[i], item))) {
        lc_release(item);
        return st;
      }
    }
  }
  if (!recurse) return LC_OK;
  for (int64_t i = 0; i < m->children.n; i++) {
    char *p = join(prefix, m->children.names[i]);
    if (!p) return oom();
    st = collect_tensors(m->children.items[i], p, which, true, dedup, detach, b);
    free(p);
    if (st) return st;
  }
  return LC_OK;
}

static void to_tensors(builder *b, lc_named_tensors *out) {
  out->n = b->n;
  out->names = b->names;
  out->tensors = (lc_tensor **)b->items;
}

void lc_named_tensors_free(lc_named_tensors *l) {
  if (!l) return;
  for (int64_t i = 0; i < l->n; i++) {
    free(l->names[i]);
    lc_release(l->tensors[i]);
  }
  free(l->names);
  free(l->tensors);
  l->n = 0;
  l->names = NULL;
  l->tensors = NULL;
}

void lc_named_modules_free(lc_named_modules *l) {
  if (!l) return;
  for (int64_t i = 0; i < l->n; i++) {
    free(l->names[i]);
    lc_module_release(l->modules[i]);
  }
  free(l->names);
  free(l->modules);
  l->n = 0;
  l->names = NULL;
  l->modules = NULL;
}

static lc_status query(const lc_module *m, int which, bool recurse, bool dedup, bool detach,
                       lc_named_tensors *out) {
  builder b = {0};
  lc_status st = collect_tensors(m, "", which, recurse, dedup, detach, &b);
  if (st) {
    builder_free_tensors(&b);
    return st;
  }
  to_tensors(&b, out);
  return LC_OK;
}

lc_status lc_module_named_parameters(const lc_module *m, bool recurse, lc_named_tensors *out) {
  return query(m, Q_PARAMS, recurse, true, false, out);
}
lc_status lc_module_named_buffers(const lc_module *m, bool recurse, lc_named_tensors *out) {
  return query(m, Q_BUFFERS, recurse, true, false, out);
}
lc_status lc_module_state_dict(const lc_module *m, lc_named_tensors *out) {
  return query(m, Q_PARAMS | Q_BUFFERS, true, false, true, out);
}

lc_status lc_module_named_children(const lc_module *m, lc_named_modules *out) {
  builder b = {0};
  for (int64_t i = 0; i < m->children.n; i++) {
    lc_module *c = m->children.items[i];
    if (builder_has(&b, c)) continue;
    lc_status st = builder_push(&b, "", m->children.names[i], c);
    if (st) {
      builder_free_modules(&b);
      return st;
    }
    lc_module_retain(c);
  }
  out->n = b.n;
  out->names = b.names;
  out->modules = (lc_module **)b.items;
  return LC_OK;
}

static lc_status collect_modules(lc_module *m, const char *path, builder *b) {
  if (builder_has(b, m)) return LC_OK;
  lc_status st = builder_push(b, "", path, m);
  if (st) return st;
  lc_module_retain(m);
  for (int64_t i = 0; i < m->children.n; i++) {
    const char *nm = m->children.names[i];
    char *p = malloc(strlen(path) + strlen(nm) + 2);
    if (!p) return oom();
    sprintf(p, "%s%s%s", path, *path ? "." : "", nm);
    st = collect_modules(m->children.items[i], p, b);
    free(p);
    if (st) return st;
  }
  return LC_OK;
}

lc_status lc_module_named_modules(const lc_module *m, lc_named_modules *out) {
  builder b = {0};
  lc_status st = collect_modules((lc_module *)m, "", &b);
  if (st) {
    builder_free_modules(&b);
    return st;
  }
  out->n = b.n;
  out->names = b.names;
  out->modules = (lc_module **)b.items;
  return LC_OK;
}

int64_t lc_module_num_parameters(const lc_module *m) {
  lc_named_tensors l;
  if (lc_module_named_parameters(m, true, &l)) return -1;
  int64_t n = 0;
  for (int64_t i = 0; i < l.n; i++)
    n += lc_numel(l.tensors[i]);
  lc_named_tensors_free(&l);
  return n;
}

void lc_module_train(lc_module *m, bool mode) {
  m->training = mode;
  for (int64_t i = 0; i < m->children.n; i++)
    lc_module_train(m->children.items[i], mode);
}
bool lc_module_is_training(const lc_module *m) { return m->training; }

lc_status lc_module_zero_grad(lc_module *m, bool set_to_none) {
  lc_named_tensors l;
  lc_status st = lc_module_named_parameters(m, true, &l);
  if (st) return st;
  for (int64_t i = 0; i < l.n && !st; i++) {
    lc_tensor *g = lc_grad(l.tensors[i]);
    if (!g) continue;
    if (set_to_none)
      st = lc_set_grad(l.tensors[i], NULL);
    else {
      bool prev = lc_set_grad_enabled(false);
      st = lc_zero_(g);
      lc_set_grad_enabled(prev);
    }
  }
  lc_named_tensors_free(&l);
  return st;
}

lc_status lc_module_apply(lc_module *m, lc_status (*fn)(lc_module *, void *), void *ctx) {
  for (int64_t i = 0; i < m->children.n; i++) {
    lc_status st = lc_module_apply(m->children.items[i], fn, ctx);
    if (st) return st;
  }
  return fn(m, ctx);
}

static lc_status reset_one(lc_module *m, void *ctx) {
  (void)ctx;
  return m->kind->reset_parameters ? m->kind->reset_parameters(m) : LC_OK;
}

lc_status lc_module_reset_parameters(lc_module *m) { return lc_module_apply(m, reset_one, NULL); }

/* ---------------------------------------------------------------- load_state_dict */

static int64_t named_find(const lc_named_tensors *l, const char *name) {
  for (int64_t i = 0; i < l->n; i++)
    if (strcmp(l->names[i], name) == 0) return i;
  return -1;
}

static void list_keys(lc_strbuf *sb, const lc_module *m, const builder *b) {
  char path[512];
  for (int64_t i = 0; i < b->n; i++)
    lc_sb_addf(sb, "%s\"%s\"", i ? ", " : "", marked_path(m, b->names[i], path, sizeof path));
}

lc_status lc_module_load_state_dict(lc_module *m, const lc_named_tensors *sd, bool strict,
                                    lc_named_tensors *missing, lc_named_tensors *unexpected) {
  const char *what = "load_state_dict";
  lc_named_tensors own;
  lc_status st = query(m, Q_PARAMS | Q_BUFFERS, true, false, false, &own);
  if (st) return st;
  builder miss = {0}, unexp = {0};
  for (int64_t i = 0; i < own.n && !st; i++) {
    int64_t k = named_find(sd, own.names[i]);
    if (k < 0) {
      st = builder_push(&miss, "", own.names[i], NULL);
      continue;
    }
    const lc_tensor *src = sd->tensors[k], *dst = own.tensors[i];
    if (!src) {
      char path[512];
      st = lc_set_error(LC_EARG, "%s: value for \"%s\" is NULL", what,
                        marked_path(m, own.names[i], path, sizeof path));
      break;
    }
    bool same = lc_ndim(src) == lc_ndim(dst);
    for (int d = 0; same && d < lc_ndim(src); d++)
      same = lc_shape(src)[d] == lc_shape(dst)[d];
    if (!same) {
      char a[256], bb[256];
      lc_shape_str(lc_ndim(dst), lc_shape(dst), a, sizeof a);
      lc_shape_str(lc_ndim(src), lc_shape(src), bb, sizeof bb);
      char path[512];
      st = lc_set_error(LC_ESHAPE, "%s: size mismatch for \"%s\": expected shape %s, got %s", what,
                        marked_path(m, own.names[i], path, sizeof path), a, bb);
    }
  }
  for (int64_t k = 0; k < sd->n && !st; k++)
    if (named_find(&own, sd->names[k]) < 0) st = builder_push(&unexp, "", sd->names[k], NULL);
  if (!st && strict && (miss.n || unexp.n)) {
    lc_strbuf sb = {0};
    lc_sb_addf(&sb, "%s: ", what);
    if (miss.n) {
      lc_sb_add(&sb, "missing keys: ");
      list_keys(&sb, m, &miss);
    }
    if (unexp.n) {
      lc_sb_add(&sb, miss.n ? "; unexpected keys: " : "unexpected keys: ");
      list_keys(&sb, m, &unexp);
    }
    st = lc_set_error(LC_EARG, "%s", sb.oom ? "load_state_dict: keys do not match" : sb.s);
    free(sb.s);
  }
  if (!st) {
    bool prev = lc_set_grad_enabled(false);
    for (int64_t i = 0; i < own.n && !st; i++) {
      int64_t k = named_find(sd, own.names[i]);
      if (k >= 0 && sd->tensors[k] != own.tensors[i]) st = lc_copy_(own.tensors[i], sd->tensors[k]);
    }
    lc_set_grad_enabled(prev);
  }
  lc_named_tensors_free(&own);
  if (st) {
    builder_free_tensors(&miss);
    builder_free_tensors(&unexp);
    return st;
  }
  if (missing)
    to_tensors(&miss, missing);
  else
    builder_free_tensors(&miss);
  if (unexpected)
    to_tensors(&unexp, unexpected);
  else
    builder_free_tensors(&unexp);
  return LC_OK;
}

/* ---------------------------------------------------------------- printing */

static lc_status repr(const lc_module *m, int indent, lc_strbuf *sb) {
  char *extra = NULL;
  if (m->kind->extra_repr) {
    lc_status st = m->kind->extra_repr(m, &extra);
    if (st) return st;
  }
  lc_sb_addf(sb, "%s(", lc_module_type_name(m));
  if (extra) {
    /* a multi-line extra_repr goes on its own lines, as PyTorch prints it */
    if (m->children.n || strchr(extra, '\n')) {
      lc_sb_add(sb, "\n");
      for (const char *p = extra; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lc_sb_addf(sb, "%*s%.*s\n", indent + 2, "", (int)len, p);
        p += len + (nl ? 1 : 0);
      }
    } else
      lc_sb_add(sb, extra);
    free(extra);
  }
  if (m->children.n) {
    if (!extra) lc_sb_add(sb, "\n");
    for (int64_t i = 0; i < m->children.n; i++) {
      lc_sb_addf(sb, "%*s(", indent + 2, "");
      walk_path(m, m->children.names[i], 0, 0, true, sb);
      lc_sb_add(sb, "): ");
      lc_status st = repr(m->children.items[i], indent + 2, sb);
      if (st) return st;
      lc_sb_add(sb, "\n");
    }
    lc_sb_addf(sb, "%*s)", indent, "");
  } else if (extra && sb->len && sb->s[sb->len - 1] == '\n') {
    lc_sb_addf(sb, "%*s)", indent, "");
  } else
    lc_sb_add(sb, ")");
  return LC_OK;
}

lc_status lc_module_to_string_based(const lc_module *m, int base, char **out) {
  if (!m || !out) return lc_set_error(LC_EARG, "module_to_string: %s is NULL", m ? "out" : "m");
  lc_strbuf sb = {0};
  lc_status st = repr(m, 0, &sb);
  if (!st && sb.oom) st = oom();
  if (st) {
    free(sb.s);
    return st;
  }
  /* the kinds mark the positions they print (LC_POS_D): show them in base, unmarked (the
   * rendered text is never longer than the marked one) */
  lc_render_positions(sb.s, base, sb.s, strlen(sb.s) + 1);
  *out = sb.s;
  return LC_OK;
}

lc_status lc_module_to_string(const lc_module *m, char **out) {
  return lc_module_to_string_based(m, 0, out);
}

/* ---------------------------------------------------------------- to(dtype) */

/* Old tensor -> its converted copy, so a tensor shared by several modules (tied weights)
 * stays shared after the conversion. */
typedef struct convert_map {
  int64_t n, cap;
  lc_tensor **from, **to; /* to[]: owned references */
  lc_dtype dtype;
} convert_map;

static lc_status convert_one(convert_map *map, lc_tensor *t, bool param, lc_tensor **out) {
  for (int64_t i = 0; i < map->n; i++)
    if (map->from[i] == t) {
      *out = map->to[i];
      return LC_OK;
    }
  if (map->n == map->cap) {
    int64_t cap = map->cap ? 2 * map->cap : 16;
    lc_tensor **f = realloc(map->from, (size_t)cap * sizeof *f);
    if (!f) return lc_set_error(LC_ENOMEM, "to: out of memory");
    map->from = f;
    lc_tensor **g = realloc(map->to, (size_t)cap * sizeof *g);
    if (!g) return lc_set_error(LC_ENOMEM, "to: out of memory");
    map->to = g;
    map->cap = cap;
  }
  lc_tensor *c = NULL, *leaf = NULL;
  lc_status st = lc_to_dtype(t, map->dtype, &c);
  if (!st) st = lc_detach(c, &leaf);
  lc_release(c);
  /* half parameters do not require grad (lucid_core.h: half precision is inference only) */
  if (!st && param && !lc_dtype_is_half(map->dtype)) st = lc_set_requires_grad(leaf, true);
  if (st) {
    lc_release(leaf);
    return st;
  }
  map->from[map->n] = t;
  map->to[map->n++] = leaf;
  *out = leaf;
  return LC_OK;
}

static lc_status to_one(lc_module *m, void *ctx) {
  convert_map *map = ctx;
  lc_entries *lists[2] = {&m->params, &m->buffers};
  for (int k = 0; k < 2; k++) {
    lc_entries *e = lists[k];
    for (int64_t i = 0; i < e->n; i++) {
      lc_tensor *t = e->items[i];
      if (!lc_dtype_is_float(lc_dtype_of(t)) || lc_dtype_of(t) == map->dtype) continue;
      lc_tensor *c = NULL;
      lc_status st = convert_one(map, t, k == 0, &c);
      if (st) return st;
      e->items[i] = lc_retain(c);
      lc_release(t);
    }
  }
  return LC_OK;
}

lc_status lc_module_to_dtype(lc_module *m, lc_dtype dtype) {
  if (!lc_dtype_is_float(dtype))
    return lc_set_error(
        LC_EDTYPE, "to: expected a floating dtype (float32, float64, float16 or bfloat16), got %s",
        lc_dtype_name(dtype));
  convert_map map = {.dtype = dtype};
  bool prev = lc_set_grad_enabled(false);
  lc_status st = lc_module_apply(m, to_one, &map);
  lc_set_grad_enabled(prev);
  for (int64_t i = 0; i < map.n; i++) lc_release(map.to[i]);
  free(map.from);
  free(map.to);
  return st;
}
