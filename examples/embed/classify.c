/*
 * classify.c - a C program that runs a model defined in Lua on data it reads itself.
 *
 *   1. reads the images and labels in C (lucid_io.h: lc_idx_load, pixels scaled to [0, 1]),
 *   2. opens its own lua_State with lucid in it (luaL_openlibs + lucid_preload),
 *   3. runs MODEL.lua, which returns a function building the model (examples/fashion_model.lua
 *      is the CNN of examples/fashion_mnist.lua), and calls it,
 *   4. loads the checkpoint's "model" entry into it in Lua (lucid.load, model:load_state_dict;
 *      a bare state dict is accepted too) and switches it to eval mode,
 *   5. feeds it batches of images from C (lucid_push_tensor, lua_pcall the model, the logits
 *      read back with lucid_to_tensor) with grad mode off, and takes the argmax in C,
 *   6. prints the first 10 predictions with their class names next to the true labels and, last:
 *        classify: OK <N> images, accuracy <pct>%
 *
 * usage: embed-classify [MODEL.lua [CHECKPOINT [IMAGES_IDX [LABELS_IDX [N]]]]]
 *   defaults: examples/fashion_model.lua, build/fashion_mnist.safetensors (what `make demo`
 *   writes), the Fashion-MNIST test set under /usr/share/datasets/fashion-mnist, N = 1000.
 *
 * Any failure (a missing or malformed file, a checkpoint that does not fit the model, images of
 * the wrong shape) prints one message naming the file and exits 1. Every lucid status is
 * checked; every Lua call runs under lua_pcall (the p_* functions run in protected mode); C-owned
 * references are released after the protected call returns, whatever happened in it.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lucid_lua.h"

#define DATASET "/usr/share/datasets/fashion-mnist"
#define BATCH 100 /* images per forward call */
#define SHOW 10   /* predictions printed */

static const char *const CLASS_NAMES[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                            "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                            "Bag",         "Ankle boot"};

static void class_name(int64_t c, int64_t n_classes, char *buf, size_t size) {
  if (n_classes == 10 && c >= 0 && c < 10)
    snprintf(buf, size, "%s", CLASS_NAMES[c]);
  else
    snprintf(buf, size, "class %lld", (long long)c);
}

/* ---------------------------------------------------------------- protected Lua code */

/* Protected: model = dofile(MODEL.lua)(). Stack: 1 the model file's path. Returns the model. */
static int p_build_model(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (luaL_loadfile(L, path) != LUA_OK) return lua_error(L); /* the message names the file */
  lua_call(L, 0, 1);
  if (lua_type(L, -1) != LUA_TFUNCTION)
    return luaL_error(L, "returned a %s, expected a function building the model",
                      luaL_typename(L, -1));
  lua_call(L, 0, 1);
  if (lua_isnoneornil(L, -1))
    return luaL_error(L, "its builder returned nothing, expected a module");
  return 1;
}

/* Protected: loads the checkpoint into the model and puts it in eval mode. Stack: 1 model,
 * 2 the checkpoint's path. Returns the checkpoint's epoch and accuracy (nil when absent). */
static int p_load_checkpoint(lua_State *L) {
  luaL_checkstring(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lucid.serialize");
  lua_call(L, 1, 1); /* 3: lucid.serialize (lucid.load is its load) */
  lua_getfield(L, 3, "load");
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1); /* 4: ckpt; raises "lucid.load: <file>: <fault>" */
  /* fashion_mnist.lua saves {model = sd, optim = ..., epoch = e, accuracy = a}: lucid.load
   * rebuilds that table, ckpt.model being a state dict. A file holding a state dict alone
   * (lucid.save(path, model:state_dict()), or PyTorch's safetensors) is accepted as well. */
  lua_getfield(L, 3, "is_state_dict");
  lua_pushvalue(L, 4);
  lua_call(L, 1, 1);
  if (lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    lua_pushvalue(L, 4); /* 5: sd = ckpt */
  } else {
    lua_pop(L, 1);
    if (!lua_istable(L, 4)) return luaL_error(L, "expected a table, got a %s", luaL_typename(L, 4));
    lua_getfield(L, 4, "model"); /* 5: sd = ckpt.model */
    if (lua_isnil(L, 5))
      return luaL_error(L, "holds neither a \"model\" entry nor a state dict at the top level");
  }
  lua_getfield(L, 1, "load_state_dict"); /* strict: a missing or misshapen weight raises */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 5);
  lua_call(L, 2, 0);
  lua_getfield(L, 1, "eval"); /* BatchNorm uses its running statistics from now on */
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  if (lua_rawequal(L, 4, 5)) { /* a bare state dict: no epoch or accuracy */
    lua_pushnil(L);
    lua_pushnil(L);
  } else {
    lua_getfield(L, 4, "epoch");
    lua_getfield(L, 4, "accuracy");
  }
  return 2;
}

/* Protected: returns model(x). Stack: 1 model, 2 light userdata (lc_tensor *x, borrowed:
 * pushing it gives the userdata a reference of its own). */
static int p_forward(lua_State *L) {
  lc_tensor *x = lua_touserdata(L, 2);
  lua_pushvalue(L, 1); /* a module is callable: __call runs forward */
  lucid_push_tensor(L, x);
  lua_call(L, 1, 1);
  return 1;
}

/* lua_pcall of the function and nargs arguments on top of the stack; on error prints
 * "classify: <what>: <message>" and pops the message. */
static int pcall_msg(lua_State *L, int nargs, int nresults, const char *what) {
  int st = lua_pcall(L, nargs, nresults, 0);
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "classify: %s: %s\n", what, msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return st;
}

/* ---------------------------------------------------------------- helpers */

static double now_seconds(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reports a failed lucid call about `file` and returns 1 (the exit code). */
static int lucid_failed(const char *file, const char *what) {
  fprintf(stderr, "classify: %s: %s: %s: %s\n", file, what, lc_status_name(lc_last_status()),
          lc_last_error());
  return 1;
}

int main(int argc, char **argv) {
  const char *model_path = argc > 1 ? argv[1] : "examples/fashion_model.lua";
  const char *ckpt_path = argc > 2 ? argv[2] : "build/fashion_mnist.safetensors";
  const char *images_path = argc > 3 ? argv[3] : DATASET "/t10k-images-idx3-ubyte.gz";
  const char *labels_path = argc > 4 ? argv[4] : DATASET "/t10k-labels-idx1-ubyte.gz";
  int64_t n = 1000;
  if (argc > 6 || (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
    fprintf(stderr, "usage: embed-classify [MODEL.lua [CHECKPOINT [IMAGES_IDX [LABELS_IDX "
                    "[N]]]]]\n");
    return argc > 6 ? 1 : 0;
  }
  if (argc > 5) {
    char *end = NULL;
    long long v = strtoll(argv[5], &end, 10);
    if (end == argv[5] || *end != '\0' || v < 1) {
      fprintf(stderr, "classify: N: expected a positive integer, got '%s'\n", argv[5]);
      return 1;
    }
    n = (int64_t)v;
  }

  int rc = 1;
  lc_tensor *images = NULL, *labels = NULL, *first = NULL, *x = NULL, *xb = NULL;
  int64_t *truth = NULL;
  float *logits = NULL;
  lua_State *L = NULL;
  bool prev_grad = true, grad_set = false;

  /* 1. The data, read by the host: {M, H, W} pixels scaled to [0, 1] and {M} labels. */
  if (lc_idx_load(images_path, 3, LC_FLOAT32, 1.0 / 255.0, &images) != LC_OK) {
    fprintf(stderr, "classify: images: %s\n", lc_last_error()); /* names the file */
    goto done;
  }
  if (lc_idx_load(labels_path, 1, LC_INT64, 1.0, &labels) != LC_OK) {
    fprintf(stderr, "classify: labels: %s\n", lc_last_error());
    goto done;
  }
  const int64_t m = lc_shape(images)[0], h = lc_shape(images)[1], w = lc_shape(images)[2];
  if (lc_shape(labels)[0] != m) {
    fprintf(stderr, "classify: %s holds %lld labels but %s holds %lld images\n", labels_path,
            (long long)lc_shape(labels)[0], images_path, (long long)m);
    goto done;
  }
  if (n > m) {
    fprintf(stderr, "classify: N = %lld but %s holds %lld images\n", (long long)n, images_path,
            (long long)m);
    goto done;
  }
  /* The first n images as {n, 1, H, W}: views of the loaded tensor (no copy). */
  const int64_t x_shape[4] = {n, 1, h, w};
  if (lc_narrow(images, 0, 0, n, &first) != LC_OK || lc_view(first, 4, x_shape, &x) != LC_OK) {
    rc = lucid_failed(images_path, "taking the first N images");
    goto done;
  }
  truth = malloc((size_t)m * sizeof *truth);
  if (truth == NULL) {
    fprintf(stderr, "classify: out of memory\n");
    goto done;
  }
  if (lc_copy_to_buffer(labels, LC_INT64, truth) != LC_OK) {
    rc = lucid_failed(labels_path, "reading the labels");
    goto done;
  }
  printf("images %s: %lld x %lld x %lld (using the first %lld), labels %s\n", images_path,
         (long long)m, (long long)h, (long long)w, (long long)n, labels_path);

  /* 2. Lua with lucid: `require "lucid"` finds the copy compiled into the program. */
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "classify: cannot create a Lua state\n");
    goto done;
  }
  luaL_openlibs(L);
  lucid_preload(L);

  /* 3. model = dofile(MODEL.lua)(): stack index 1 from here on */
  char what[1200];
  snprintf(what, sizeof what, "building the model of %s", model_path);
  lua_pushcfunction(L, p_build_model);
  lua_pushstring(L, model_path);
  if (pcall_msg(L, 1, 1, what) != LUA_OK) goto done;

  /* 4. the checkpoint */
  snprintf(what, sizeof what, "loading the checkpoint %s into the model of %s", ckpt_path,
           model_path);
  lua_pushcfunction(L, p_load_checkpoint);
  lua_pushvalue(L, 1);
  lua_pushstring(L, ckpt_path);
  if (pcall_msg(L, 2, 2, what) != LUA_OK) goto done;
  printf("model %s, checkpoint %s", model_path, ckpt_path);
  if (lua_isnumber(L, -2) && lua_isnumber(L, -1))
    printf(" (epoch %lld, test accuracy %.2f%% when saved)", (long long)lua_tointeger(L, -2),
           100.0 * lua_tonumber(L, -1));
  printf("\n");
  lua_pop(L, 2);

  /* 5. inference: grad mode is per thread, so turning it off here covers the Lua forward */
  prev_grad = lc_set_grad_enabled(false);
  grad_set = true;
  int64_t n_classes = 0, correct = 0;
  const double t0 = now_seconds();
  for (int64_t start = 0; start < n; start += BATCH) {
    const int64_t b = n - start < BATCH ? n - start : BATCH;
    if (lc_narrow(x, 0, start, b, &xb) != LC_OK) {
      rc = lucid_failed(images_path, "taking a batch");
      goto done;
    }
    snprintf(what, sizeof what, "running the model of %s on images %lld..%lld of %s",
             model_path, (long long)start, (long long)(start + b - 1), images_path);
    lua_pushcfunction(L, p_forward);
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, xb);
    int st = pcall_msg(L, 2, 1, what);
    lc_release(xb); /* ours; the userdata held its own reference */
    xb = NULL;
    if (st != LUA_OK) goto done;

    lc_tensor *out = lucid_to_tensor(L, -1); /* BORROWED from the userdata; never raises */
    if (out == NULL || lc_ndim(out) != 2 || lc_shape(out)[0] != b || lc_shape(out)[1] < 1 ||
        (n_classes != 0 && lc_shape(out)[1] != n_classes)) {
      fprintf(stderr, "classify: the model of %s returned %s, expected {%lld, classes} logits\n",
              model_path, out == NULL ? "no tensor" : "a tensor of another shape", (long long)b);
      goto done;
    }
    if (n_classes == 0) {
      n_classes = lc_shape(out)[1];
      logits = malloc((size_t)(BATCH * n_classes) * sizeof *logits);
      if (logits == NULL) {
        fprintf(stderr, "classify: out of memory\n");
        goto done;
      }
    }
    if (lc_copy_to_buffer(out, LC_FLOAT32, logits) != LC_OK) {
      rc = lucid_failed(model_path, "reading the logits");
      goto done;
    }
    lua_pop(L, 1); /* the logits userdata: collected by Lua later */

    for (int64_t i = 0; i < b; i++) {
      const float *row = logits + i * n_classes;
      int64_t best = 0;
      for (int64_t c = 1; c < n_classes; c++)
        if (row[c] > row[best]) best = c;
      const int64_t k = start + i;
      if (best == truth[k]) correct++;
      if (k < SHOW) {
        if (k == 0) printf("  image  prediction     p      true label\n");
        double z = 0; /* softmax probability of the predicted class */
        for (int64_t c = 0; c < n_classes; c++) z += exp((double)(row[c] - row[best]));
        char pn[32], tn[32];
        class_name(best, n_classes, pn, sizeof pn);
        class_name(truth[k], n_classes, tn, sizeof tn);
        printf("  %5lld  %-12s  %5.3f  %-12s%s\n", (long long)k, pn, 1.0 / z, tn,
               best == truth[k] ? "" : "  (wrong)");
      }
    }
  }
  const double secs = now_seconds() - t0;
  printf("%lld images in %.3f s (%.0f images/s, batches of %d)\n", (long long)n, secs,
         (double)n / (secs > 0 ? secs : 1e-9), BATCH);
  printf("classify: OK %lld images, accuracy %.2f%%\n", (long long)n,
         100.0 * (double)correct / (double)n);
  rc = 0;

done:
  if (grad_set) lc_set_grad_enabled(prev_grad);
  lc_release(xb); /* NULL-safe */
  lc_release(x);
  lc_release(first);
  lc_release(labels);
  lc_release(images);
  if (L) lua_close(L); /* collects the model and every userdata */
  free(logits);
  free(truth);
  return rc;
}
