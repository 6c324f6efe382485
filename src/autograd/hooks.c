/*
 * hooks.c - gradient hooks (lc_register_hook) and a leaf's post-accumulate-grad hooks
 * (lc_register_post_accumulate_grad_hook): a refcounted list shared by whoever runs it (a
 * leaf tensor, or the node producing a non-leaf) and by the handles that can remove entries.
 * A leaf's one list holds both kinds, each entry marked; the gradient hooks' runner skips the
 * post hooks and the other way round. The list never references tensors or nodes, so no cycles.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hook {
  uint64_t id;
  lc_hook_fn fn; /* an lc_grad_hook, or the owner's own callback type (module hooks) */
  void *ud;
  void (*free_ud)(void *);
  bool post; /* an lc_post_accumulate_grad_hook */
} hook;

typedef struct hook_list {
  lc_node_base base; /* must be first */
  int n, cap;
  int n_post; /* entries with post set */
  uint64_t next_id;
  hook *h;
} hook_list;

struct lc_hook_handle {
  hook_list *list; /* owned reference */
  uint64_t id;
};

static void drop_hook(hook *h) {
  if (h->free_ud) h->free_ud(h->ud);
}

static void list_destroy(lc_node_base *b) {
  hook_list *l = (hook_list *)b;
  for (int i = 0; i < l->n; i++)
    drop_hook(&l->h[i]);
  free(l->h);
  free(l);
}

static hook_list *list_new(void) {
  hook_list *l = calloc(1, sizeof *l);
  if (!l) {
    lc_error_oom(sizeof *l);
    return NULL;
  }
  atomic_init(&l->base.refcount, 1);
  l->base.destroy = list_destroy;
  l->next_id = 1;
  return l;
}

static lc_status list_add(lc_node_base **slot, lc_hook_fn fn, void *ud, void (*free_ud)(void *),
                          lc_hook_handle **handle, bool post) {
  if (!*slot) {
    hook_list *l = list_new();
    if (!l) return LC_ENOMEM;
    *slot = &l->base;
  }
  hook_list *l = (hook_list *)*slot;
  lc_hook_handle *hd = malloc(sizeof *hd);
  if (!hd) return lc_error_oom(sizeof *hd);
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 4;
    hook *nh = realloc(l->h, (size_t)cap * sizeof *nh);
    if (!nh) {
      free(hd);
      return lc_error_oom((size_t)cap * sizeof *nh);
    }
    l->h = nh;
    l->cap = cap;
  }
  l->h[l->n++] = (hook){.id = l->next_id, .fn = fn, .ud = ud, .free_ud = free_ud, .post = post};
  l->n_post += post;
  atomic_fetch_add_explicit(&l->base.refcount, 1, memory_order_relaxed);
  hd->list = l;
  hd->id = l->next_id++;
  *handle = hd;
  return LC_OK;
}

lc_status lc_hook_list_add(lc_node_base **slot, lc_hook_fn fn, void *ud, void (*free_ud)(void *),
                           lc_hook_handle **handle) {
  return list_add(slot, fn, ud, free_ud, handle, false);
}

int lc_hook_list_len(const lc_node_base *b) { return b ? ((const hook_list *)b)->n : 0; }

lc_hook_fn lc_hook_list_at(const lc_node_base *b, int i, void **ud, uint64_t *id) {
  const hook_list *l = (const hook_list *)b;
  *ud = l->h[i].ud;
  *id = l->h[i].id;
  return l->h[i].fn;
}

lc_status lc_register_hook(lc_tensor *t, lc_grad_hook fn, void *ud, void (*free_ud)(void *),
                           lc_hook_handle **handle) {
  if (!t || !fn || !handle) return lc_set_error(LC_EARG, "register_hook: NULL argument");
  if (!t->requires_grad)
    return lc_set_error(LC_EGRAD, "register_hook: cannot register a hook on a tensor that "
                                  "doesn't require gradient");
  lc_node_base **slot = t->grad_fn ? lc_ag_hooks_slot(lc_ag_node(t), t->output_nr) : &t->hooks;
  return list_add(slot, (lc_hook_fn)fn, ud, free_ud, handle, false);
}

lc_status lc_register_post_accumulate_grad_hook(lc_tensor *leaf, lc_post_accumulate_grad_hook fn,
                                                void *ud, void (*free_ud)(void *),
                                                lc_hook_handle **handle) {
  if (!leaf || !fn || !handle)
    return lc_set_error(LC_EARG, "register_post_accumulate_grad_hook: NULL argument");
  if (leaf->grad_fn)
    return lc_set_error(LC_EGRAD, "register_post_accumulate_grad_hook: post accumulate grad hooks "
                                  "cannot be registered on non-leaf tensors");
  if (!leaf->requires_grad)
    return lc_set_error(LC_EGRAD, "register_post_accumulate_grad_hook: cannot register a hook on "
                                  "a tensor that doesn't require gradient");
  return list_add(&leaf->hooks, (lc_hook_fn)fn, ud, free_ud, handle, true);
}

bool lc_ag_hooks_any(const lc_node_base *b, bool post) {
  const hook_list *l = (const hook_list *)b;
  return l && (post ? l->n_post > 0 : l->n > l->n_post);
}

void lc_hook_handle_remove(lc_hook_handle *hd) {
  if (!hd || !hd->list) return;
  hook_list *l = hd->list;
  for (int i = 0; i < l->n; i++)
    if (l->h[i].id == hd->id) {
      hook gone = l->h[i];
      memmove(&l->h[i], &l->h[i + 1], (size_t)(l->n - i - 1) * sizeof *l->h);
      l->n--;
      l->n_post -= gone.post;
      drop_hook(&gone);
      break;
    }
  hd->list = NULL;
  lc_node_base_release(&l->base);
}

void lc_hook_handle_free(lc_hook_handle *hd) {
  if (!hd) return;
  if (hd->list) lc_node_base_release(&hd->list->base); /* the hook stays registered */
  free(hd);
}

lc_status lc_ag_run_hooks(lc_node_base *b, lc_tensor **grad, const char *name) {
  hook_list *l = (hook_list *)b;
  if (!l || !*grad) return LC_OK;
  /* a hook may remove hooks (its own too) while the list runs */
  for (int i = 0; i < l->n; i++) {
    hook h = l->h[i];
    if (h.post) continue;
    lc_tensor *rep = NULL;
    lc_status st = ((lc_grad_hook)h.fn)(h.ud, *grad, &rep);
    if (st) {
      lc_release(rep);
      return st;
    }
    if (rep) {
      const lc_tensor *g = *grad;
      if (rep->ndim != g->ndim ||
          (g->ndim && memcmp(rep->shape, g->shape, (size_t)g->ndim * sizeof g->shape[0]))) {
        char a[256], c[256];
        lc_status es =
            lc_set_error(LC_ESHAPE, "%s: a hook returned a gradient of shape %s, expected %s", name,
                         lc_shape_str(rep->ndim, rep->shape, a, sizeof a),
                         lc_shape_str(g->ndim, g->shape, c, sizeof c));
        lc_release(rep);
        return es;
      }
      lc_release(*grad);
      *grad = rep;
    }
    if (i < l->n && l->h[i].id != h.id) i--; /* the hook at i was removed: look at i again */
  }
  return LC_OK;
}

lc_status lc_ag_run_post_hooks(lc_node_base *b, lc_tensor *leaf) {
  hook_list *l = (hook_list *)b;
  if (!l || !l->n_post) return LC_OK;
  for (int i = 0; i < l->n; i++) {
    hook h = l->h[i];
    if (!h.post) continue;
    lc_status st = ((lc_post_accumulate_grad_hook)h.fn)(h.ud, leaf);
    if (st) return st;
    if (i < l->n && l->h[i].id != h.id) i--; /* the hook at i was removed: look at i again */
  }
  return LC_OK;
}
