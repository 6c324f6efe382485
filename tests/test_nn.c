/* test_nn.c - the module system: built-in layers, containers, the protocol, error paths. */
#include "family_test.h"
#include "lucid_nn.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* Copies vals into parameter t (no grad recorded). */
static lc_status set_values(lc_tensor *t, const float *vals) {
  lc_tensor *src;
  lc_status st = lc_from_data(lc_ndim(t), lc_shape(t), LC_FLOAT32, vals, &src);
  if (st) return st;
  bool prev = lc_set_grad_enabled(false);
  st = lc_copy_(t, src);
  lc_set_grad_enabled(prev);
  lc_release(src);
  return st;
}

static lc_tensor *param(lc_module *m, const char *name) {
  int64_t i = lc_module_find_parameter(m, name);
  return i >= 0 ? lc_module_own_parameter(m, i) : NULL;
}

static double at2(const lc_tensor *t, int64_t i, int64_t j) {
  double v = NAN;
  int64_t idx[2] = {i, j};
  lc_get(t, idx, &v);
  return v;
}

static double at1(const lc_tensor *t, int64_t i) {
  double v = NAN;
  lc_get(t, &i, &v);
  return v;
}

TEST(nn_linear_init) {
  lc_module *lin = NULL;
  CHECK_OK(lc_nn_linear(4, 3, true, &lin));
  if (!lin) return;
  CHECK(strcmp(lc_module_type_name(lin), "Linear") == 0);
  lc_tensor *w = param(lin, "weight"), *b = param(lin, "bias");
  CHECK(w && b);
  if (!w || !b) return;
  CHECK(lc_ndim(w) == 2 && lc_shape(w)[0] == 3 && lc_shape(w)[1] == 4);
  CHECK(lc_ndim(b) == 1 && lc_shape(b)[0] == 3);
  CHECK(lc_requires_grad(w) && lc_is_leaf(w) && lc_requires_grad(b));
  /* U(-1/sqrt(4), 1/sqrt(4)) and not all equal */
  bool in_range = true, distinct = false;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) {
      double v = at2(w, i, j);
      in_range = in_range && v >= -0.5 && v <= 0.5;
      distinct = distinct || v != at2(w, 0, 0);
    }
  for (int i = 0; i < 3; i++)
    in_range = in_range && fabs(at1(b, i)) <= 0.5;
  CHECK(in_range);
  CHECK(distinct);
  lc_attr a;
  CHECK(lc_module_attr(lin, "in_features", &a) && a.type == LC_ATTR_INT && a.i == 4);
  CHECK(lc_module_attr(lin, "out_features", &a) && a.i == 3);
  CHECK(!lc_module_attr(lin, "nope", &a));
  CHECK(lc_module_num_parameters(lin) == 15);
  lc_module_release(lin);

  CHECK_OK(lc_nn_linear(4, 3, false, &lin));
  CHECK(lc_module_find_parameter(lin, "bias") < 0);
  CHECK(lc_module_num_parameters(lin) == 12);
  lc_module_release(lin);
  CHECK_STATUS(lc_nn_linear(-1, 3, true, &lin), LC_EARG);
}

/* y = relu(x W1^T + b1) W2^T + b2 on a 1x2 input, with grads checked against a hand-written
 * evaluation of the same formulas. */
TEST(nn_sequential_forward_backward) {
  lc_module *l1 = NULL, *act = NULL, *l2 = NULL, *seq = NULL;
  CHECK_OK(lc_nn_linear(2, 2, true, &l1));
  CHECK_OK(lc_nn_relu(&act));
  CHECK_OK(lc_nn_linear(2, 1, true, &l2));
  lc_module *mods[3] = {l1, act, l2};
  CHECK_OK(lc_nn_sequential(3, mods, NULL, &seq));
  lc_module_release(l1);
  lc_module_release(act);
  lc_module_release(l2);
  if (!seq) return;
  const float w1[4] = {0.5f, -1.0f, 2.0f, 0.25f}, b1[2] = {0.1f, -0.2f};
  const float w2[2] = {1.5f, -0.5f}, b2[1] = {0.3f};
  const float xv[2] = {1.0f, 2.0f};
  CHECK_OK(set_values(param(l1, "weight"), w1));
  CHECK_OK(set_values(param(l1, "bias"), b1));
  CHECK_OK(set_values(param(l2, "weight"), w2));
  CHECK_OK(set_values(param(l2, "bias"), b2));
  int64_t xs[2] = {1, 2};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_from_data(2, xs, LC_FLOAT32, xv, &x));
  CHECK_OK(lc_set_requires_grad(x, true));
  CHECK_OK(lc_module_forward(seq, x, &y));
  if (!y) {
    lc_release(x);
    lc_module_release(seq);
    return;
  }
  double h[2], mask[2], out = b2[0];
  for (int i = 0; i < 2; i++) {
    double pre = w1[i * 2] * xv[0] + w1[i * 2 + 1] * xv[1] + b1[i];
    mask[i] = pre > 0;
    h[i] = pre > 0 ? pre : 0;
    out += w2[i] * h[i];
  }
  CHECK(lc_ndim(y) == 2 && lc_shape(y)[0] == 1 && lc_shape(y)[1] == 1);
  CHECK_NEAR(at2(y, 0, 0), out, 1e-5);
  CHECK_OK(lc_backward(y, NULL, false));
  lc_tensor *gw1 = lc_grad(param(l1, "weight")), *gb1 = lc_grad(param(l1, "bias"));
  lc_tensor *gw2 = lc_grad(param(l2, "weight")), *gb2 = lc_grad(param(l2, "bias"));
  lc_tensor *gx = lc_grad(x);
  CHECK(gw1 && gb1 && gw2 && gb2 && gx);
  if (gw1 && gb1 && gw2 && gb2 && gx) {
    CHECK_NEAR(at1(gb2, 0), 1.0, 1e-6);
    for (int i = 0; i < 2; i++) {
      CHECK_NEAR(at2(gw2, 0, i), h[i], 1e-5);
      CHECK_NEAR(at1(gb1, i), w2[i] * mask[i], 1e-5);
      for (int j = 0; j < 2; j++)
        CHECK_NEAR(at2(gw1, i, j), w2[i] * mask[i] * xv[j], 1e-5);
      double gxi = 0;
      for (int k = 0; k < 2; k++)
        gxi += w2[k] * mask[k] * w1[k * 2 + i];
      CHECK_NEAR(at2(gx, 0, i), gxi, 1e-5);
    }
  }
  /* zero_grad: set_to_none clears, else zeroes */
  CHECK_OK(lc_module_zero_grad(seq, false));
  CHECK(lc_grad(param(l1, "weight")) && at2(lc_grad(param(l1, "weight")), 0, 0) == 0);
  CHECK_OK(lc_module_zero_grad(seq, true));
  CHECK(lc_grad(param(l1, "weight")) == NULL);
  lc_release(y);
  lc_release(x);
  lc_module_release(seq);
}

static lc_module *seq3(int in, int mid, int out, const char *const *names) {
  lc_module *a = NULL, *b = NULL, *c = NULL, *s = NULL;
  if (lc_nn_linear(in, mid, true, &a) || lc_nn_tanh(&b) || lc_nn_linear(mid, out, true, &c)) {
    lc_module_release(a);
    lc_module_release(b);
    return NULL;
  }
  lc_module *mods[3] = {a, b, c};
  lc_nn_sequential(3, mods, names, &s);
  lc_module_release(a);
  lc_module_release(b);
  lc_module_release(c);
  return s;
}

TEST(nn_names_and_queries) {
  lc_module *s = seq3(5, 3, 1, NULL);
  CHECK(s != NULL);
  if (!s) return;
  lc_named_tensors p;
  CHECK_OK(lc_module_named_parameters(s, true, &p));
  const char *want[4] = {"0.weight", "0.bias", "2.weight", "2.bias"};
  CHECK(p.n == 4);
  for (int i = 0; i < 4 && i < p.n; i++)
    CHECK(strcmp(p.names[i], want[i]) == 0);
  lc_named_tensors_free(&p);
  CHECK(lc_module_num_parameters(s) == 5 * 3 + 3 + 3 + 1);
  lc_named_modules mods;
  CHECK_OK(lc_module_named_modules(s, &mods));
  CHECK(mods.n == 4 && strcmp(mods.names[0], "") == 0 && strcmp(mods.names[3], "2") == 0);
  lc_named_modules_free(&mods);
  CHECK_OK(lc_module_named_children(s, &mods));
  CHECK(mods.n == 3 && strcmp(mods.names[1], "1") == 0);
  lc_named_modules_free(&mods);
  /* non-recursive: a container has no own parameters */
  CHECK_OK(lc_module_named_parameters(s, false, &p));
  CHECK(p.n == 0);
  lc_named_tensors_free(&p);

  /* nested names */
  lc_module *outer = NULL, *lin = NULL;
  CHECK_OK(lc_nn_linear(1, 1, true, &lin));
  lc_module *mods2[2] = {s, lin};
  const char *names2[2] = {"layer_sequence", "output_layer"};
  CHECK_OK(lc_nn_sequential(2, mods2, names2, &outer));
  CHECK_OK(lc_module_named_parameters(outer, true, &p));
  CHECK(p.n == 6 && strcmp(p.names[1], "layer_sequence.0.bias") == 0 &&
        strcmp(p.names[5], "output_layer.bias") == 0);
  lc_named_tensors_free(&p);
  CHECK_OK(lc_module_named_modules(outer, &mods));
  CHECK(mods.n == 6 && strcmp(mods.names[2], "layer_sequence.0") == 0);
  lc_named_modules_free(&mods);

  /* train / eval reach every descendant */
  CHECK(lc_module_is_training(outer) && lc_module_is_training(lin));
  lc_module_train(outer, false);
  CHECK(!lc_module_is_training(outer) && !lc_module_is_training(lc_module_child(s, 0)));
  lc_module_train(outer, true);
  CHECK(lc_module_is_training(lc_module_child(s, 2)));
  lc_module_release(lin);
  lc_module_release(s);
  lc_module_release(outer);
}

static lc_status count_fn(lc_module *m, void *ctx) {
  int *n = ctx;
  (*n)++;
  return strcmp(lc_module_type_name(m), "Tanh") == 0 && n[1] ? LC_EARG : LC_OK;
}

TEST(nn_apply_and_reset) {
  lc_module *s = seq3(3, 2, 1, NULL);
  if (!s) return;
  int n[2] = {0, 0};
  CHECK_OK(lc_module_apply(s, count_fn, n));
  CHECK(n[0] == 4);
  n[0] = 0;
  n[1] = 1; /* fail at Tanh: the second module visited */
  CHECK_STATUS(lc_module_apply(s, count_fn, n), LC_EARG);
  CHECK(n[0] == 2);
  lc_tensor *w = param(lc_module_child(s, 0), "weight");
  const float zeros[6] = {0};
  CHECK_OK(set_values(w, zeros));
  CHECK_OK(lc_module_reset_parameters(s));
  bool changed = false;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      changed = changed || at2(w, i, j) != 0;
  CHECK(changed);
  lc_module_release(s);
}

TEST(nn_forward_error_paths) {
  const char *names[3] = {"fc1", "activation", "fc2"};
  lc_module *s = seq3(4, 3, 1, names);
  if (!s) return;
  /* fc2 expects 3 features: feed a module graph where fc1 outputs 4 by replacing fc1 */
  lc_module *fc1 = NULL;
  CHECK_OK(lc_nn_linear(4, 4, true, &fc1));
  CHECK_OK(lc_module_replace(s, 0, fc1));
  CHECK(strcmp(lc_module_child_name(s, 0), "fc1") == 0);
  int64_t xs[2] = {1, 4};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_ones(2, xs, LC_FLOAT32, &x));
  CHECK_STATUS(lc_module_forward(s, x, &y), LC_ESHAPE);
  CHECK(strcmp(lc_last_error(), "Sequential.fc2 (Linear): expected input with 3 features (last "
                                "dimension), got 4: input shape {1, 4}") == 0);
  /* a leaf called directly */
  CHECK_STATUS(lc_module_forward(lc_module_child(s, 2), x, &y), LC_ESHAPE);
  CHECK(strcmp(lc_last_error(), "Linear: expected input with 3 features (last dimension), got "
                                "4: input shape {1, 4}") == 0);
  /* nested containers compose the path */
  lc_module *outer = NULL;
  const char *on[1] = {"block"};
  CHECK_OK(lc_nn_sequential(1, &s, on, &outer));
  CHECK_STATUS(lc_module_forward(outer, x, &y), LC_ESHAPE);
  CHECK(strncmp(lc_last_error(), "Sequential.block.fc2 (Linear): expected input with 3", 52) == 0);
  /* ModuleDict is not callable, directly or inside a Sequential */
  lc_module *md = NULL, *wrap = NULL;
  const char *mdn[1] = {"f"};
  CHECK_OK(lc_nn_module_dict(1, &fc1, mdn, &md));
  CHECK_STATUS(lc_module_forward(md, x, &y), LC_ESTATE);
  CHECK(strcmp(lc_last_error(),
               "ModuleDict: not callable: index it by name and call the modules it holds") == 0);
  CHECK_OK(lc_nn_sequential(1, &md, NULL, &wrap));
  CHECK_STATUS(lc_module_forward(wrap, x, &y), LC_ESTATE);
  CHECK(strcmp(lc_last_error(), "Sequential.0 (ModuleDict): not callable: index it by name and "
                                "call the modules it holds") == 0);
  lc_module_release(wrap);
  lc_module_release(md);
  lc_release(x);
  lc_module_release(fc1);
  lc_module_release(s);
  lc_module_release(outer);
}

TEST(nn_stateless_layers_and_lists) {
  lc_module *fl = NULL, *id = NULL, *sg = NULL, *ml = NULL, *empty = NULL;
  CHECK_OK(lc_nn_flatten(1, -1, &fl));
  CHECK_OK(lc_nn_identity(&id));
  CHECK_OK(lc_nn_sigmoid(&sg));
  lc_module *mods[3] = {fl, id, sg};
  CHECK_OK(lc_nn_module_list(3, mods, &ml));
  CHECK_OK(lc_nn_sequential(0, NULL, NULL, &empty));
  int64_t xs[3] = {2, 3, 4};
  lc_tensor *x = NULL, *y = NULL, *z = NULL;
  CHECK_OK(lc_zeros(3, xs, LC_FLOAT32, &x));
  CHECK_OK(lc_module_forward(ml, x, &y));
  if (y) {
    CHECK(lc_ndim(y) == 2 && lc_shape(y)[0] == 2 && lc_shape(y)[1] == 12);
    CHECK_NEAR(at2(y, 1, 11), 0.5, 1e-7); /* sigmoid(0) */
  }
  CHECK_OK(lc_module_forward(empty, x, &z));
  CHECK(z == x);
  lc_attr a;
  CHECK(lc_module_attr(fl, "start_dim", &a) && a.type == LC_ATTR_DIM && a.i == 1);
  char *s = NULL;
  CHECK_OK(lc_module_to_string(ml, &s));
  /* C prints dims 0-based (as PyTorch); the based form is what Lua shows */
  if (s)
    CHECK(strcmp(s, "ModuleList(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): Identity()\n"
                    "  (2): Sigmoid()\n)") == 0);
  lc_free(s);
  s = NULL;
  CHECK_OK(lc_module_to_string_based(ml, 1, &s));
  if (s)
    CHECK(strcmp(s, "ModuleList(\n  (1): Flatten(start_dim=2, end_dim=-1)\n  (2): Identity()\n"
                    "  (3): Sigmoid()\n)") == 0);
  lc_free(s);
  CHECK_OK(lc_module_to_string(empty, &s));
  if (s) CHECK(strcmp(s, "Sequential()") == 0);
  lc_free(s);
  lc_release(x);
  lc_release(y);
  lc_release(z);
  lc_module_release(fl);
  lc_module_release(id);
  lc_module_release(sg);
  lc_module_release(ml);
  lc_module_release(empty);
}

/* Unflatten: its printed form, attribute and the constructor's rules on its sizes. */
TEST(nn_unflatten_repr_attrs_and_constructor_errors) {
  lc_module *m = NULL;
  int64_t sizes[2] = {2, 5};
  CHECK(lc_nn_unflatten(1, 2, sizes, &m) == LC_OK &&
        repr_is(m, "Unflatten(dim=1, unflattened_size=(2, 5))"));
  CHECK_OK(lc_nn_unflatten(-1, 2, sizes, &m));
  lc_attr a;
  CHECK(lc_module_attr(m, "dim", &a) && a.type == LC_ATTR_DIM && a.i == -1);
  lc_module_release(m);
  m = NULL;
  int64_t bad[3] = {-1, 2, -1};
  CHECK_STATUS(lc_nn_unflatten(1, 3, bad, &m), LC_EARG);
  CHECK_STATUS(lc_nn_unflatten(1, 0, bad, &m), LC_EARG);
  CHECK(msg_has("Unflatten: unflattened_size must hold 1..16 sizes, got 0"));
  CHECK(m == NULL);
}

TEST(nn_unflatten_forward) {
  int64_t sh[2] = {3, 12};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_zeros(2, sh, LC_FLOAT32, &x));
  lc_module *u = NULL;
  int64_t sizes[2] = {4, -1};
  CHECK_OK(lc_nn_unflatten(1, 2, sizes, &u));
  CHECK_OK(lc_module_forward(u, x, &y));
  CHECK(y && lc_ndim(y) == 3 && lc_shape(y)[1] == 4 && lc_shape(y)[2] == 3);
  lc_release(y);
  lc_module_release(u);
  int64_t s2[2] = {5, 2};
  CHECK_OK(lc_nn_unflatten(-1, 2, s2, &u));
  y = NULL;
  CHECK_STATUS(lc_module_forward(u, x, &y), LC_ESHAPE);
  CHECK(msg_has("unflattened_size {5, 2} does not fit dim 1 of size 12: input shape {3, 12}"));
  lc_module_release(u);
  CHECK_OK(lc_nn_unflatten(2, 2, s2, &u));
  CHECK_STATUS(lc_module_forward(u, x, &y), LC_EINDEX);
  CHECK(msg_has("Unflatten: dim 2 out of range")); /* the op's rule (lc_wrap_dim), 0-based in C */
  CHECK(y == NULL);
  lc_module_release(u);
  lc_release(x);
}

TEST(nn_to_string) {
  const char *names[3] = {"fc1", "activation", "fc2"};
  lc_module *s = seq3(5, 3, 1, names);
  if (!s) return;
  char *str = NULL;
  CHECK_OK(lc_module_to_string(s, &str));
  if (str)
    CHECK(strcmp(str, "Sequential(\n"
                      "  (fc1): Linear(in_features=5, out_features=3, bias=true)\n"
                      "  (activation): Tanh()\n"
                      "  (fc2): Linear(in_features=3, out_features=1, bias=true)\n"
                      ")") == 0);
  lc_free(str);
  lc_module *outer = NULL;
  CHECK_OK(lc_nn_sequential(1, &s, NULL, &outer));
  CHECK_OK(lc_module_to_string(outer, &str));
  if (str)
    CHECK(strcmp(str, "Sequential(\n"
                      "  (0): Sequential(\n"
                      "    (fc1): Linear(in_features=5, out_features=3, bias=true)\n"
                      "    (activation): Tanh()\n"
                      "    (fc2): Linear(in_features=3, out_features=1, bias=true)\n"
                      "  )\n"
                      ")") == 0);
  lc_free(str);
  lc_module_release(outer);
  lc_module_release(s);
}

static bool names_are(const lc_module *m, int n, const char *const *want) {
  if (lc_module_num_children(m) != n) return false;
  for (int i = 0; i < n; i++)
    if (strcmp(lc_module_child_name(m, i), want[i]) != 0) return false;
  return true;
}

TEST(nn_container_mutation) {
  lc_module *s = NULL, *r1 = NULL, *r2 = NULL, *r3 = NULL, *popped = NULL;
  CHECK_OK(lc_nn_sequential(0, NULL, NULL, &s));
  CHECK_OK(lc_nn_relu(&r1));
  CHECK_OK(lc_nn_relu(&r2));
  CHECK_OK(lc_nn_tanh(&r3));
  if (!s || !r1 || !r2 || !r3) return;
  CHECK_OK(lc_module_add_module(s, NULL, r1));
  CHECK_OK(lc_module_add_module(s, "act", r2));
  CHECK_OK(lc_module_add_module(s, NULL, r3));
  CHECK(names_are(s, 3, (const char *[]){"0", "act", "2"}));
  CHECK_OK(lc_module_insert(s, 0, NULL, r3));
  CHECK(names_are(s, 4, (const char *[]){"0", "1", "act", "3"}));
  CHECK(lc_module_child(s, 0) == r3 && lc_module_child(s, 1) == r1);
  CHECK_OK(lc_module_pop(s, 1, &popped));
  CHECK(popped == r1);
  lc_module_release(popped);
  CHECK(names_are(s, 3, (const char *[]){"0", "act", "2"}));
  CHECK_OK(lc_module_insert(s, 1, "1", r1)); /* a digit name equal to its position */
  CHECK(names_are(s, 4, (const char *[]){"0", "1", "act", "3"}));
  /* errors */
  CHECK_STATUS(lc_module_add_module(s, "act", r1), LC_EARG);
  CHECK(strstr(lc_last_error(), "already has a child named \"act\"") != NULL);
  CHECK_STATUS(lc_module_add_module(s, "", r1), LC_EARG);
  CHECK_STATUS(lc_module_add_module(s, "a.b", r1), LC_EARG);
  CHECK(strstr(lc_last_error(), "must not contain \".\"") != NULL);
  CHECK_STATUS(lc_module_add_module(s, "9", r1), LC_EARG);
  CHECK(strcmp(lc_last_error(),
               "insert: a name made of digits is a position: \"9\" given for position 4") == 0);
  CHECK_STATUS(lc_module_add_module(s, "x", s), LC_EARG);
  CHECK(strstr(lc_last_error(), "cycle") != NULL);
  CHECK_STATUS(lc_module_insert(s, 9, NULL, r1), LC_EINDEX);
  CHECK_STATUS(lc_module_pop(s, 4, NULL), LC_EINDEX);
  CHECK_STATUS(lc_module_replace(s, -1, r1), LC_EINDEX);
  CHECK(names_are(s, 4, (const char *[]){"0", "1", "act", "3"}));
  /* a container inside a child can not receive its ancestor */
  lc_module *outer = NULL;
  CHECK_OK(lc_nn_sequential(1, &s, NULL, &outer));
  CHECK_STATUS(lc_module_add_module(s, "up", outer), LC_EARG);
  CHECK_STATUS(lc_module_replace(s, 0, outer), LC_EARG);
  /* slice shares the modules */
  lc_module *sl = NULL;
  CHECK_OK(lc_module_slice(s, 1, 3, &sl));
  CHECK(sl && names_are(sl, 2, (const char *[]){"0", "act"}));
  if (sl) CHECK(lc_module_child(sl, 0) == r1 && lc_module_kind_of(sl) == &lc_kind_sequential);
  CHECK_STATUS(lc_module_slice(s, 2, 5, &sl), LC_EINDEX);
  lc_module_release(sl);
  /* set_child replaces by name, remove by name */
  CHECK_OK(lc_module_set_child(s, "act", r3));
  CHECK(lc_module_child(s, 2) == r3);
  CHECK_OK(lc_module_remove(s, "act"));
  CHECK(names_are(s, 3, (const char *[]){"0", "1", "2"}));
  CHECK_STATUS(lc_module_remove(s, "act"), LC_EINDEX);
  lc_module_release(outer);
  lc_module_release(s);
  lc_module_release(r1);
  lc_module_release(r2);
  lc_module_release(r3);
}

/* Positional names: 0-based in C (PyTorch's), rebased for 1-based bindings by walking the tree. */
TEST(nn_rebase_path) {
  lc_module *inner = NULL, *lin = NULL, *outer = NULL, *relu = NULL, *dict = NULL;
  CHECK_OK(lc_nn_relu(&relu));
  CHECK_OK(lc_nn_linear(2, 2, true, &lin));
  lc_module *kids[2];
  kids[0] = relu;
  kids[1] = lin;
  CHECK_OK(lc_nn_sequential(2, kids, NULL, &inner));
  CHECK_OK(lc_nn_module_dict(0, NULL, NULL, &dict));
  if (!inner || !dict) return;
  CHECK_OK(lc_module_add_module(dict, "7", inner)); /* a digit name in a dict is a plain name */
  CHECK_OK(lc_nn_sequential(1, &dict, NULL, &outer));
  if (!outer) return;
  lc_named_tensors sd = {0};
  CHECK_OK(lc_module_state_dict(outer, &sd));
  CHECK(sd.n == 2 && strcmp(sd.names[0], "0.7.1.weight") == 0);
  const char *cases[][3] = {
      /* C path, 1-based path, why */
      {"0.7.1.weight", "1.7.2.weight", "positions shift, the dict's name does not"},
      {"0.7.5.bias", "1.7.6.bias", "a missing position still shifts; below it, copied"},
      {"0.x.3", "1.x.3", "below a missing child everything is copied"},
      {"-1.weight", "0.weight", "1-based 0 has the C image -1"},
      {"", "", "the empty path"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char *up = NULL, *down = NULL;
    CHECK_OK(lc_module_rebase_path(outer, cases[k][0], 0, 1, &up));
    CHECK_OK(lc_module_rebase_path(outer, cases[k][1], 1, 0, &down));
    if (up) CHECK(strcmp(up, cases[k][1]) == 0);
    if (down) CHECK(strcmp(down, cases[k][0]) == 0);
    lc_free(up);
    lc_free(down);
  }
  char *leading = NULL;
  CHECK_OK(lc_module_rebase_path(outer, "01.weight", 1, 0, &leading)); /* not canonical */
  if (leading) CHECK(strcmp(leading, "01.weight") == 0);
  lc_free(leading);
  CHECK_STATUS(lc_module_rebase_path(outer, NULL, 0, 1, &leading), LC_EARG);
  /* messages mark positional segments: a 1-based binding shows them 1-based */
  lc_named_tensors bad = {0};
  CHECK_OK(lc_module_state_dict(outer, &bad));
  if (bad.n == 2) {
    free(bad.names[1]);
    bad.names[1] = strdup("0.7.3.bias"); /* unexpected; 0.7.1.bias missing */
    CHECK_STATUS(lc_module_load_state_dict(outer, &bad, true, NULL, NULL), LC_EARG);
    CHECK(strcmp(lc_last_error(), "load_state_dict: missing keys: \"0.7.1.bias\"; unexpected "
                                  "keys: \"0.7.3.bias\"") == 0);
    char shown[256];
    lc_render_positions(lc_last_error_marked(), 1, shown, sizeof shown);
    CHECK(strcmp(shown, "load_state_dict: missing keys: \"1.7.2.bias\"; unexpected keys: "
                        "\"1.7.4.bias\"") == 0);
  }
  lc_named_tensors_free(&bad);
  lc_named_tensors_free(&sd);
  lc_module_release(outer);
  lc_module_release(dict);
  lc_module_release(inner);
  lc_module_release(lin);
  lc_module_release(relu);
}

TEST(nn_parameters_buffers_shared) {
  lc_module *a = NULL, *b = NULL, *s = NULL;
  CHECK_OK(lc_nn_linear(2, 2, false, &a));
  CHECK_OK(lc_nn_linear(2, 2, false, &b));
  if (!a || !b) return;
  /* tie b's weight to a's */
  CHECK_OK(lc_module_register_parameter(b, "weight", param(a, "weight")));
  lc_module *mods[2] = {a, b};
  CHECK_OK(lc_nn_sequential(2, mods, NULL, &s));
  lc_named_tensors p, sd;
  CHECK_OK(lc_module_named_parameters(s, true, &p));
  CHECK(p.n == 1 && strcmp(p.names[0], "0.weight") == 0);
  lc_named_tensors_free(&p);
  CHECK(lc_module_num_parameters(s) == 4);
  CHECK_OK(lc_module_state_dict(s, &sd));
  CHECK(sd.n == 2 && strcmp(sd.names[1], "1.weight") == 0);
  if (sd.n == 2)
    CHECK(!lc_requires_grad(sd.tensors[0]) && lc_same_storage(sd.tensors[0], param(a, "weight")));
  lc_named_tensors_free(&sd);
  /* the same module twice: modules() lists it once */
  lc_module *twice = NULL;
  lc_module *mods2[2] = {a, a};
  CHECK_OK(lc_nn_sequential(2, mods2, NULL, &twice));
  lc_named_modules nm;
  CHECK_OK(lc_module_named_modules(twice, &nm));
  CHECK(nm.n == 2);
  lc_named_modules_free(&nm);
  lc_module_release(twice);

  /* parameter and buffer rules */
  int64_t sh[1] = {2};
  lc_tensor *plain = NULL, *nonleaf = NULL, *g = NULL;
  CHECK_OK(lc_zeros(1, sh, LC_FLOAT32, &plain));
  CHECK_STATUS(lc_module_register_parameter(a, "p", plain), LC_EARG);
  CHECK(strstr(lc_last_error(), "must be a leaf tensor that requires grad") != NULL);
  CHECK_OK(lc_zeros(1, sh, LC_FLOAT32, &g));
  CHECK_OK(lc_set_requires_grad(g, true));
  CHECK_OK(lc_unary(LC_NEG, g, &nonleaf));
  CHECK_STATUS(lc_module_register_parameter(a, "p", nonleaf), LC_EARG);
  CHECK_OK(lc_module_register_buffer(a, "running", plain));
  CHECK_STATUS(lc_module_register_parameter(a, "running", g), LC_EARG);
  CHECK_STATUS(lc_module_register_buffer(a, "", plain), LC_EARG);
  CHECK_OK(lc_module_named_buffers(s, true, &p));
  CHECK(p.n == 1 && strcmp(p.names[0], "0.running") == 0);
  lc_named_tensors_free(&p);
  CHECK_OK(lc_module_state_dict(s, &sd));
  CHECK(sd.n == 3 && strcmp(sd.names[1], "0.running") == 0);
  lc_named_tensors_free(&sd);
  CHECK_OK(lc_module_remove(a, "running"));
  CHECK(lc_module_find_buffer(a, "running") < 0);
  lc_release(plain);
  lc_release(nonleaf);
  lc_release(g);
  lc_module_release(s);
  lc_module_release(a);
  lc_module_release(b);
}

TEST(nn_load_state_dict) {
  const char *names[3] = {"fc1", "activation", "fc2"};
  lc_module *src = seq3(3, 2, 1, names), *dst = seq3(3, 2, 1, names);
  if (!src || !dst) return;
  lc_named_tensors sd, miss, unexp;
  CHECK_OK(lc_module_state_dict(src, &sd));
  CHECK(sd.n == 4);
  CHECK_OK(lc_module_load_state_dict(dst, &sd, true, &miss, &unexp));
  CHECK(miss.n == 0 && unexp.n == 0);
  lc_named_tensors_free(&miss);
  lc_named_tensors_free(&unexp);
  bool eq = false;
  lc_tensor *w = param(lc_module_child(dst, 0), "weight");
  CHECK_OK(lc_equal(w, param(lc_module_child(src, 0), "weight"), &eq));
  CHECK(eq);
  CHECK(lc_requires_grad(w) && lc_is_leaf(w));

  /* rename a key: strict fails listing both, and copies nothing */
  char *old = sd.names[3];
  sd.names[3] = malloc(16);
  strcpy(sd.names[3], "fc3.bias");
  CHECK_STATUS(lc_module_load_state_dict(dst, &sd, true, NULL, NULL), LC_EARG);
  CHECK(strcmp(lc_last_error(),
               "load_state_dict: missing keys: \"fc2.bias\"; unexpected keys: \"fc3.bias\"") == 0);
  CHECK_OK(lc_module_load_state_dict(dst, &sd, false, &miss, &unexp));
  CHECK(miss.n == 1 && strcmp(miss.names[0], "fc2.bias") == 0);
  CHECK(unexp.n == 1 && strcmp(unexp.names[0], "fc3.bias") == 0);
  lc_named_tensors_free(&miss);
  lc_named_tensors_free(&unexp);
  free(sd.names[3]);
  sd.names[3] = old;

  /* a shape mismatch names the key */
  lc_module *other = seq3(4, 2, 1, names);
  CHECK_STATUS(lc_module_load_state_dict(other, &sd, true, NULL, NULL), LC_ESHAPE);
  CHECK(strcmp(lc_last_error(), "load_state_dict: size mismatch for \"fc1.weight\": expected "
                                "shape {2, 4}, got {2, 3}") == 0);
  lc_module_release(other);
  lc_named_tensors_free(&sd);
  lc_module_release(src);
  lc_module_release(dst);
}

/* A kind defined outside src/nn, as the Lua binding defines its own. */
static int destroyed;
static lc_status twice_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  (void)m;
  if (lc_ndim(x) == 0) return lc_set_error(LC_ESHAPE, "custom failure");
  return lc_binary_scalar(LC_MUL, x, 2.0, false, out);
}
static void twice_destroy(lc_module *m) {
  destroyed += *(int *)lc_module_state(m);
  free(lc_module_state(m));
}
static const lc_module_kind twice_kind = {
    .name = "Twice", .forward = twice_forward, .destroy = twice_destroy};

TEST(nn_custom_kind) {
  int *state = malloc(sizeof *state);
  *state = 1;
  destroyed = 0;
  lc_module *m = NULL, *s = NULL;
  CHECK_OK(lc_module_new(&twice_kind, state, "Doubler", &m));
  if (!m) return;
  CHECK(strcmp(lc_module_type_name(m), "Doubler") == 0);
  CHECK_OK(lc_nn_sequential(1, &m, (const char *[]){"dbl"}, &s));
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_scalar(3.0, LC_FLOAT32, &x));
  CHECK_STATUS(lc_module_forward(s, x, &y), LC_ESHAPE);
  CHECK(strcmp(lc_last_error(), "Sequential.dbl (Doubler): custom failure") == 0);
  lc_release(x);
  int64_t sh[1] = {2};
  CHECK_OK(lc_ones(1, sh, LC_FLOAT32, &x));
  CHECK_OK(lc_module_forward(s, x, &y));
  if (y) CHECK_NEAR(at1(y, 1), 2.0, 0);
  lc_release(x);
  lc_release(y);
  lc_module_release(m);
  CHECK(destroyed == 0);
  lc_module_release(s);
  CHECK(destroyed == 1);
}

TEST(nn_to_dtype) {
  lc_module *a = NULL, *b = NULL, *seq = NULL;
  CHECK_OK(lc_nn_linear(3, 2, true, &a));
  CHECK_OK(lc_nn_linear(3, 2, false, &b));
  if (!a || !b) return;
  CHECK_OK(lc_module_register_parameter(b, "weight", param(a, "weight"))); /* tied */
  lc_module *mods[2] = {a, b};
  CHECK_OK(lc_nn_sequential(2, mods, NULL, &seq));
  double w00 = at2(param(a, "weight"), 0, 0);
  CHECK_OK(lc_module_to_dtype(seq, LC_FLOAT64));
  CHECK(lc_dtype_of(param(a, "weight")) == LC_FLOAT64);
  CHECK(lc_dtype_of(param(a, "bias")) == LC_FLOAT64);
  CHECK(param(a, "weight") == param(b, "weight"));
  CHECK(lc_requires_grad(param(a, "weight")) && lc_is_leaf(param(a, "weight")));
  CHECK_NEAR(at2(param(a, "weight"), 0, 0), w00, 1e-7);
  CHECK_STATUS(lc_module_to_dtype(seq, LC_INT32), LC_EDTYPE);
  CHECK(lc_dtype_of(param(a, "weight")) == LC_FLOAT64);
  lc_module_release(seq);
  lc_module_release(a);
  lc_module_release(b);
}
