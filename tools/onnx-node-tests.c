/*
 * onnx-node-tests.c - runs ONNX's backend node tests (Debian's libonnx-testdata) through
 * lc_onnx_load / lc_onnx_run and prints pass / fail / unsupported per op, then
 * "N passed, N failed" (`make test-onnx`; `make test` sums it).
 *
 * usage: onnx-node-tests [-v] [-k SUBSTRING] [-x SKIPLIST] [DIR]
 *   DIR       the node tests (default /usr/share/libonnx-testdata/data/node): each test is a
 *             directory with model.onnx and test_data_set_N/{input,output}_K.pb
 *   -k S      only tests whose name contains S
 *   -x FILE   tests expected not to pass, one "name  reason" per line: reported as skipped
 *   -v        print every test's result
 *
 * A test passes when every output has the expected shape and values (rtol 1e-3, atol 1e-7,
 * NaN equal to NaN: ONNX's backend defaults). It is unsupported when lucid says so (an op,
 * type or attribute it does not run; the message is printed with -v), and fails otherwise,
 * including a crash or a timeout: each test runs in a child process.
 */
#include "lucid.h"
#include "lucid_onnx.h"
#include "onnx.pb-c.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef enum { R_PASS, R_FAIL, R_UNSUP, R_SKIP } result;

typedef struct op_count {
  char op[64];
  int n[4];
} op_count;

static op_count counts[512];
static int n_counts;

static op_count *count_for(const char *op) {
  for (int i = 0; i < n_counts; i++)
    if (strcmp(counts[i].op, op) == 0) return &counts[i];
  if (n_counts == 512) return &counts[511];
  op_count *c = &counts[n_counts++];
  snprintf(c->op, sizeof c->op, "%s", op);
  return c;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return buf;
}

static void squash(const char *in, char *out, size_t cap) {
  size_t k = 0;
  for (; *in && k + 1 < cap; in++)
    if (*in != '_') out[k++] = (char)tolower((unsigned char)*in);
  out[k] = '\0';
}

/* The op a test is about: the node whose op_type (lowercased, without underscores) starts the
 * test's name; else the first node's. */
static void test_op(const char *dir, const char *name, char *op, size_t cap) {
  snprintf(op, cap, "?");
  char path[4096];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  size_t size;
  char *buf = read_all(path, &size);
  if (!buf) return;
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, (const uint8_t *)buf);
  free(buf);
  if (!m) return;
  if (m->graph && m->graph->n_node) {
    char tn[256], on[256];
    squash(name + (strncmp(name, "test_", 5) == 0 ? 5 : 0), tn, sizeof tn);
    size_t best = 0;
    snprintf(op, cap, "%s", m->graph->node[0]->op_type);
    for (size_t i = 0; i < m->graph->n_node; i++) {
      squash(m->graph->node[i]->op_type, on, sizeof on);
      size_t l = strlen(on);
      if (l > best && strncmp(tn, on, l) == 0) {
        best = l;
        snprintf(op, cap, "%s", m->graph->node[i]->op_type);
      }
    }
  }
  onnx__model_proto__free_unpacked(m, NULL);
}

static bool unsupported_message(const char *msg) { return strstr(msg, "not supported") != NULL; }

/* Compares got with want; writes a reason on mismatch. */
static bool same(const lc_tensor *got, const lc_tensor *want, char *why, size_t cap) {
  if (lc_ndim(got) != lc_ndim(want)) {
    snprintf(why, cap, "rank %d, expected %d", lc_ndim(got), lc_ndim(want));
    return false;
  }
  for (int i = 0; i < lc_ndim(got); i++)
    if (lc_shape(got)[i] != lc_shape(want)[i]) {
      snprintf(why, cap, "dim %d is %lld, expected %lld", i, (long long)lc_shape(got)[i],
               (long long)lc_shape(want)[i]);
      return false;
    }
  bool gf = lc_dtype_is_float(lc_dtype_of(got)), wf = lc_dtype_is_float(lc_dtype_of(want));
  if (gf != wf || (lc_dtype_of(want) == LC_BOOL) != (lc_dtype_of(got) == LC_BOOL)) {
    snprintf(why, cap, "dtype %s, expected %s", lc_dtype_name(lc_dtype_of(got)),
             lc_dtype_name(lc_dtype_of(want)));
    return false;
  }
  int64_t n = lc_numel(got);
  double *g = malloc((size_t)(n ? n : 1) * sizeof(double));
  double *w = malloc((size_t)(n ? n : 1) * sizeof(double));
  bool ok =
      g && w && !lc_copy_to_buffer(got, LC_FLOAT64, g) && !lc_copy_to_buffer(want, LC_FLOAT64, w);
  if (!ok) snprintf(why, cap, "could not read values: %s", lc_last_error());
  for (int64_t i = 0; ok && i < n; i++) {
    double a = g[i], b = w[i];
    if (a != a && b != b) continue;
    if (a == b) continue;
    if (!(fabs(a - b) <= 1e-7 + 1e-3 * fabs(b))) {
      snprintf(why, cap, "element %lld is %.9g, expected %.9g", (long long)i, a, b);
      ok = false;
    }
  }
  free(g);
  free(w);
  return ok;
}

/* One test, in the child: writes "P", "U message" or "F message" to fd. Frees everything on
 * every path, so the sanitized build's leak check (at the child's exit) sees only lucid's. */
static void run_test(const char *dir, int fd) {
  char path[4096], msg[2048];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  lc_onnx_model *m = NULL;
  if (lc_onnx_load(path, NULL, &m)) {
    const char *e = lc_last_error();
    dprintf(fd, "%c load: %s", unsupported_message(e) ? 'U' : 'F', e);
    return;
  }
  int ni = lc_onnx_num_inputs(m), no = lc_onnx_num_outputs(m);
  lc_tensor **in = calloc((size_t)ni + 1, sizeof *in), **out = calloc((size_t)no + 1, sizeof *out);
  lc_tensor *want = NULL;
  int sets = 0;
  bool failed = false;
  for (int s = 0; !failed; s++) {
    char sd[4096];
    snprintf(sd, sizeof sd, "%s/test_data_set_%d", dir, s);
    if (access(sd, F_OK) != 0) break;
    sets++;
    for (int i = 0; i < ni && !failed; i++) {
      snprintf(path, sizeof path, "%s/input_%d.pb", sd, i);
      if (lc_onnx_read_tensor(path, &in[i])) {
        const char *e = lc_last_error();
        dprintf(fd, "%c input %d: %s", unsupported_message(e) ? 'U' : 'F', i, e);
        failed = true;
      }
    }
    if (!failed && lc_onnx_run(m, ni, (const lc_tensor *const *)in, no, out)) {
      const char *e = lc_last_error();
      dprintf(fd, "%c run: %s", unsupported_message(e) ? 'U' : 'F', e);
      failed = true;
    }
    for (int j = 0; j < no && !failed; j++) {
      snprintf(path, sizeof path, "%s/output_%d.pb", sd, j);
      if (lc_onnx_read_tensor(path, &want)) {
        const char *e = lc_last_error();
        dprintf(fd, "%c output %d: %s", unsupported_message(e) ? 'U' : 'F', j, e);
        failed = true;
      } else if (!same(out[j], want, msg, sizeof msg)) {
        dprintf(fd, "F output %d (%s) of set %d: %s", j, lc_onnx_output_name(m, j), s, msg);
        failed = true;
      }
      lc_release(want);
      want = NULL;
    }
    for (int j = 0; j < no; j++) {
      lc_release(out[j]);
      out[j] = NULL;
    }
    for (int i = 0; i < ni; i++) {
      lc_release(in[i]);
      in[i] = NULL;
    }
  }
  free(in);
  free(out);
  lc_onnx_free(m);
  if (failed) return;
  if (!sets)
    dprintf(fd, "F no test_data_set_0");
  else
    dprintf(fd, "P");
}

/* The skip list: "name reason...". */
static char *skip_reason(char **names, char **reasons, int n, const char *test) {
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], test) == 0) return reasons[i];
  return NULL;
}

int main(int argc, char **argv) {
  const char *root = "/usr/share/libonnx-testdata/data/node", *filter = NULL, *skipfile = NULL;
  bool verbose = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-v") == 0)
      verbose = true;
    else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc)
      filter = argv[++i];
    else if (strcmp(argv[i], "-x") == 0 && i + 1 < argc)
      skipfile = argv[++i];
    else
      root = argv[i];
  }
  char *sk_names[2048], *sk_reasons[2048];
  int n_skip = 0;
  if (skipfile) {
    FILE *f = fopen(skipfile, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f) && n_skip < 2048) {
      if (line[0] == '#' || line[0] == '\n') continue;
      line[strcspn(line, "\n")] = '\0';
      char *sp = strpbrk(line, " \t");
      char *reason = sp ? sp + strspn(sp, " \t") : (char *)"";
      if (sp) *sp = '\0';
      sk_names[n_skip] = strdup(line);
      sk_reasons[n_skip++] = strdup(reason);
    }
    if (f) fclose(f);
  }
  DIR *d = opendir(root);
  if (!d) {
    printf("onnx node tests: %s is absent (Debian's libonnx-testdata)\n0 passed, 0 failed\n", root);
    return 0;
  }
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "test_", 5) != 0) continue;
    if (filter && !strstr(e->d_name, filter)) continue;
    if (n == cap) names = realloc(names, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  int total[4] = {0, 0, 0, 0};
  for (int t = 0; t < n; t++) {
    char dir[4096], op[64];
    snprintf(dir, sizeof dir, "%s/%s", root, names[t]);
    test_op(dir, names[t], op, sizeof op);
    int pfd[2];
    char res[4096] = "";
    if (pipe(pfd) != 0) return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      close(pfd[0]);
      alarm(120);
      run_test(dir, pfd[1]);
      close(pfd[1]);
      for (int i = 0; i < n; i++)
        free(names[i]);
      free(names);
      for (int i = 0; i < n_skip; i++) {
        free(sk_names[i]);
        free(sk_reasons[i]);
      }
      exit(0); /* not _exit: a sanitized build checks for leaks here */
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t k;
    while (got + 1 < sizeof res && (k = read(pfd[0], res + got, sizeof res - 1 - got)) > 0)
      got += (size_t)k;
    res[got] = '\0';
    close(pfd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    result r;
    const char *why = res + (got > 2 ? 2 : got);
    char crash[128];
    if (WIFSIGNALED(status)) {
      snprintf(crash, sizeof crash, "crashed (signal %d%s)", WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? ": timeout" : "");
      why = crash;
      r = R_FAIL;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      snprintf(crash, sizeof crash, "child exited %d (sanitizer report?)", WEXITSTATUS(status));
      why = crash;
      r = R_FAIL;
    } else {
      r = res[0] == 'P' ? R_PASS : res[0] == 'U' ? R_UNSUP : R_FAIL;
    }
    char *reason = skip_reason(sk_names, sk_reasons, n_skip, names[t]);
    if (reason && r != R_PASS) {
      r = R_SKIP;
      why = reason;
    }
    count_for(op)->n[r]++;
    total[r]++;
    if (r == R_FAIL || verbose) {
      static const char *tag[] = {"ok", "FAIL", "unsupported", "skip"};
      printf("%s %s [%s]%s%s\n", tag[r], names[t], op, r == R_PASS ? "" : ": ",
             r == R_PASS ? "" : why);
    }
  }
  printf("\n%-28s %6s %6s %12s %6s\n", "op", "pass", "fail", "unsupported", "skip");
  for (int i = 0; i < n_counts; i++)
    printf("%-28s %6d %6d %12d %6d\n", counts[i].op, counts[i].n[R_PASS], counts[i].n[R_FAIL],
           counts[i].n[R_UNSUP], counts[i].n[R_SKIP]);
  printf("onnx node tests: %d tests, %d passed, %d failed, %d unsupported, %d skipped (listed)\n",
         n, total[R_PASS], total[R_FAIL], total[R_UNSUP], total[R_SKIP]);
  printf("%d passed, %d failed\n", total[R_PASS], total[R_FAIL]);
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
  for (int i = 0; i < n_skip; i++) {
    free(sk_names[i]);
    free(sk_reasons[i]);
  }
  return total[R_FAIL] ? 1 : 0;
}
