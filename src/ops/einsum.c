/*
 * einsum.c - lc_einsum: PyTorch's einsum built from recorded public ops (as_strided for
 * diagonals, reductions, permute, reshape, matmul), so autograd, create_graph included, falls
 * out of those ops. Each operand first takes the diagonals of its repeated subscripts and sums
 * out the subscripts nothing else needs; then the operands are contracted left to right in
 * pairs, each pair permuted and reshaped into one batched matmul {B, M, K} @ {B, K, N}.
 */
#include "../autograd/autograd.h"

#include <string.h>

#define EQ_LABELS (52 + LC_MAX_DIMS) /* A-Z, a-z, then the ellipsis dims */

typedef struct operand {
  lc_tensor *x; /* owned */
  int nl;
  int lab[LC_MAX_DIMS];
} operand;

static int letter_id(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -1;
}

static lc_status eq_error(const char *msg, const char *eq) {
  return lc_set_error(LC_EARG, "einsum: %s in equation \"%s\"", msg, eq);
}

static void op_set(operand *o, lc_tensor *x) {
  lc_release(o->x);
  o->x = x;
}

/* sums out the dims of o whose label is not marked in keep */
static lc_status sum_unneeded(operand *o, const bool *keep) {
  lc_reduce_opts ro = {0};
  int nl = 0, lab[LC_MAX_DIMS];
  for (int d = 0; d < o->nl; d++) {
    if (keep[o->lab[d]])
      lab[nl++] = o->lab[d];
    else
      ro.dims[ro.ndims++] = d;
  }
  if (!ro.ndims) return LC_OK;
  lc_tensor *r = NULL;
  lc_status st = lc_reduce(LC_SUM, o->x, &ro, &r);
  if (st) return st;
  op_set(o, r);
  o->nl = nl;
  memcpy(o->lab, lab, sizeof lab);
  return LC_OK;
}

/* the diagonal of repeated labels (one dim per distinct label, in first-appearance order) */
static lc_status take_diagonals(operand *o, const char *eq) {
  int first[EQ_LABELS];
  for (int k = 0; k < EQ_LABELS; k++)
    first[k] = -1;
  bool rep = false;
  for (int d = 0; d < o->nl; d++) {
    int f = first[o->lab[d]];
    if (f < 0) {
      first[o->lab[d]] = d;
      continue;
    }
    rep = true;
    if (o->x->shape[d] != o->x->shape[f])
      return lc_set_error(LC_ESHAPE,
                          "einsum: subscript %c is repeated in an operand with sizes %lld and "
                          "%lld in equation \"%s\"",
                          o->lab[d] < 26 ? 'A' + o->lab[d] : 'a' + o->lab[d] - 26,
                          (long long)o->x->shape[f], (long long)o->x->shape[d], eq);
  }
  if (!rep) return LC_OK;
  lc_tensor *c = NULL;
  lc_status st = lc_contiguous(o->x, &c);
  if (st) return st;
  op_set(o, c);
  int64_t cs[LC_MAX_DIMS], s = 1;
  for (int d = o->nl - 1; d >= 0; d--) {
    cs[d] = s;
    s *= o->x->shape[d] > 0 ? o->x->shape[d] : 1;
  }
  int nl = 0, lab[LC_MAX_DIMS];
  int64_t size[LC_MAX_DIMS], str[LC_MAX_DIMS];
  for (int d = 0; d < o->nl; d++) {
    int f = first[o->lab[d]];
    if (f == d) {
      lab[nl] = o->lab[d];
      size[nl] = o->x->shape[d];
      str[nl] = cs[d];
      nl++;
    } else {
      for (int j = 0; j < nl; j++)
        if (lab[j] == o->lab[d]) str[j] += cs[d];
    }
  }
  int64_t g[2 + 2 * LC_MAX_DIMS], len = 2 + 2 * nl;
  g[0] = nl;
  g[1] = 0;
  for (int j = 0; j < nl; j++) {
    g[2 + j] = size[j];
    g[2 + nl + j] = str[j];
  }
  lc_tensor *gt = NULL, *r = NULL;
  if ((st = lc_from_data(1, &len, LC_INT64, g, &gt))) return st;
  lc_tensor *in[2] = {o->x, gt};
  st = lc_apply(&lc_op_as_strided, 2, in, NULL, &r);
  lc_release(gt);
  if (st) return st;
  op_set(o, r);
  o->nl = nl;
  memcpy(o->lab, lab, sizeof lab);
  return LC_OK;
}

/* a @ b contracted over the labels neither the output nor later operands need */
static lc_status contract(operand *a, operand *b, const bool *needed, int64_t *lsize,
                          operand *out) {
  int bl[LC_MAX_DIMS], ml[LC_MAX_DIMS], kl[LC_MAX_DIMS], nl_[LC_MAX_DIMS];
  int nb = 0, nm = 0, nk = 0, nn = 0;
  bool inb[EQ_LABELS] = {0};
  for (int d = 0; d < b->nl; d++)
    inb[b->lab[d]] = true;
  bool ina[EQ_LABELS] = {0};
  for (int d = 0; d < a->nl; d++) {
    int l = a->lab[d];
    ina[l] = true;
    if (inb[l]) {
      if (needed[l])
        bl[nb++] = l;
      else
        kl[nk++] = l;
    } else {
      ml[nm++] = l;
    }
  }
  for (int d = 0; d < b->nl; d++)
    if (!ina[b->lab[d]]) nl_[nn++] = b->lab[d];
  if (nb + nm + nn > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "einsum: an intermediate result has more than %d dims",
                        LC_MAX_DIMS);
  int pa[LC_MAX_DIMS], pb[LC_MAX_DIMS], k = 0;
  int64_t B = 1, M = 1, K = 1, N = 1;
#define POS(o, l, p)                                                                               \
  do {                                                                                             \
    for (int d_ = 0; d_ < (o)->nl; d_++)                                                           \
      if ((o)->lab[d_] == (l)) (p) = d_;                                                           \
  } while (0)
  for (int j = 0; j < nb; j++, k++) {
    POS(a, bl[j], pa[k]);
    B *= lsize[bl[j]];
  }
  for (int j = 0; j < nm; j++, k++) {
    POS(a, ml[j], pa[k]);
    M *= lsize[ml[j]];
  }
  for (int j = 0; j < nk; j++, k++) {
    POS(a, kl[j], pa[k]);
    K *= lsize[kl[j]];
  }
  k = 0;
  for (int j = 0; j < nb; j++, k++)
    POS(b, bl[j], pb[k]);
  for (int j = 0; j < nk; j++, k++)
    POS(b, kl[j], pb[k]);
  for (int j = 0; j < nn; j++, k++) {
    POS(b, nl_[j], pb[k]);
    N *= lsize[nl_[j]];
  }
#undef POS
  lc_tensor *ap = NULL, *bp = NULL, *a3 = NULL, *b3 = NULL, *m = NULL, *r = NULL;
  int64_t sa[3] = {B, M, K}, sb[3] = {B, K, N}, so[LC_MAX_DIMS];
  int no = 0;
  for (int j = 0; j < nb; j++)
    so[no] = lsize[bl[j]], out->lab[no++] = bl[j];
  for (int j = 0; j < nm; j++)
    so[no] = lsize[ml[j]], out->lab[no++] = ml[j];
  for (int j = 0; j < nn; j++)
    so[no] = lsize[nl_[j]], out->lab[no++] = nl_[j];
  out->nl = no;
  lc_status st = lc_permute(a->x, pa, &ap);
  if (!st) st = lc_permute(b->x, pb, &bp);
  if (!st) st = lc_reshape(ap, 3, sa, &a3);
  if (!st) st = lc_reshape(bp, 3, sb, &b3);
  if (!st) st = lc_matmul(a3, b3, &m);
  if (!st) st = lc_reshape(m, no, so, &r);
  lc_release(ap);
  lc_release(bp);
  lc_release(a3);
  lc_release(b3);
  lc_release(m);
  if (!st) op_set(out, r);
  return st;
}

lc_status lc_einsum(const char *equation, int n, const lc_tensor *const *operands,
                    lc_tensor **out) {
  if (!equation) return lc_set_error(LC_EARG, "einsum: equation is NULL");
  if (!out) return lc_set_error(LC_EARG, "einsum: out is NULL");
  if (n < 1 || !operands) return lc_set_error(LC_EARG, "einsum: expected at least one operand");
  if (n > 64) return lc_set_error(LC_EARG, "einsum: at most 64 operands, got %d", n);
  for (int i = 0; i < n; i++)
    if (!operands[i]) return lc_set_error(LC_EARG, "einsum: operand %d is NULL", i);
  /* parse: strip spaces */
  char eq[1024];
  size_t L = 0;
  for (const char *p = equation; *p; p++) {
    if (*p == ' ') continue;
    if (L + 1 >= sizeof eq) return lc_set_error(LC_EARG, "einsum: equation too long");
    eq[L++] = *p;
  }
  eq[L] = 0;
  const char *arrow = strstr(eq, "->");
  size_t lhs_len = arrow ? (size_t)(arrow - eq) : L;
  /* per operand: its subscripts, with -1 standing for the ellipsis */
  int sub[64][LC_MAX_DIMS + 1], nsub[64] = {0}, ell[64];
  int op = 0, E = 0;
  bool any_ell = false;
  for (int i = 0; i < 64; i++)
    ell[i] = -1;
  for (size_t k = 0; k <= lhs_len; k++) {
    char c = k < lhs_len ? eq[k] : ',';
    if (c == ',') {
      if (op >= n) return eq_error("more operands in the equation than tensors given", equation);
      int letters = nsub[op] - (ell[op] >= 0);
      int nd = operands[op]->ndim;
      if (ell[op] < 0 && letters != nd) {
        return lc_set_error(LC_ESHAPE,
                            "einsum: operand " LC_POS_D " has %d dims but %d subscripts in "
                            "equation \"%s\"",
                            op, nd, letters, equation);
      }
      if (ell[op] >= 0 && letters > nd)
        return lc_set_error(LC_ESHAPE,
                            "einsum: operand " LC_POS_D " has %d dims, fewer than its %d "
                            "subscripts in equation \"%s\"",
                            op, nd, letters, equation);
      if (ell[op] >= 0 && nd - letters > E) E = nd - letters;
      op++;
      continue;
    }
    if (op >= 64) return eq_error("too many operands", equation);
    if (c == '.') {
      if (k + 2 >= lhs_len + 1 || eq[k + 1] != '.' || eq[k + 2] != '.')
        return eq_error("a '.' that is not part of '...'", equation);
      if (ell[op] >= 0) return eq_error("more than one '...' in an operand", equation);
      ell[op] = nsub[op];
      sub[op][nsub[op]++] = -1;
      any_ell = true;
      k += 2;
      continue;
    }
    int id = letter_id(c);
    if (id < 0) return eq_error("an invalid subscript (letters a-z, A-Z only)", equation);
    if (nsub[op] > LC_MAX_DIMS) return eq_error("too many subscripts", equation);
    sub[op][nsub[op]++] = id;
  }
  if (op != n)
    return lc_set_error(LC_EARG, "einsum: the equation has %d operands but %d tensors were given",
                        op, n);
  /* labels of each operand, ellipsis dims as 52 + j aligned right over E */
  operand ops[64];
  memset(ops, 0, sizeof ops);
  int count[EQ_LABELS] = {0}, occ[EQ_LABELS] = {0};
  int64_t lsize[EQ_LABELS];
  for (int k = 0; k < EQ_LABELS; k++)
    lsize[k] = -1;
  lc_status st = LC_OK;
  for (int i = 0; i < n; i++) {
    const lc_tensor *x = operands[i];
    int letters = nsub[i] - (ell[i] >= 0), e = x->ndim - letters, d = 0;
    for (int j = 0; j < nsub[i]; j++) {
      if (sub[i][j] < 0) {
        for (int t = 0; t < e; t++)
          ops[i].lab[d++] = 52 + E - e + t;
      } else {
        ops[i].lab[d++] = sub[i][j];
      }
    }
    ops[i].nl = d;
    ops[i].x = lc_retain((lc_tensor *)x);
    bool seen[EQ_LABELS] = {0};
    for (int j = 0; j < d; j++) {
      int l = ops[i].lab[j];
      if (!seen[l]) count[l]++;
      occ[l]++;
      seen[l] = true;
    }
    /* repeated subscripts: the diagonal, before sizes are compared across operands */
    if ((st = take_diagonals(&ops[i], equation))) goto done;
    for (int j = 0; j < ops[i].nl; j++) {
      int l = ops[i].lab[j];
      int64_t s = ops[i].x->shape[j];
      if (lsize[l] < 0 || lsize[l] == 1)
        lsize[l] = s;
      else if (s != 1 && s != lsize[l]) {
        st = lc_set_error(LC_ESHAPE,
                          "einsum: operand " LC_POS_D " has size %lld for subscript %c where "
                          "another operand has %lld in equation \"%s\"",
                          i, (long long)s,
                          l < 26   ? 'A' + l
                          : l < 52 ? 'a' + l - 26
                                   : '.',
                          (long long)lsize[l], equation);
        goto done;
      }
    }
  }
  /* output labels */
  int outl[EQ_LABELS], nout = 0;
  bool in_out[EQ_LABELS] = {0};
  if (arrow) {
    const char *p = arrow + 2;
    bool oell = false;
    for (; *p; p++) {
      if (*p == '.') {
        if (p[1] != '.' || p[2] != '.') {
          st = eq_error("a '.' that is not part of '...'", equation);
          goto done;
        }
        if (oell) {
          st = eq_error("more than one '...' in the output", equation);
          goto done;
        }
        oell = true;
        p += 2;
        for (int j = 0; j < E; j++)
          outl[nout++] = 52 + j, in_out[52 + j] = true;
        continue;
      }
      int id = letter_id(*p);
      if (id < 0) {
        st = eq_error("an invalid output subscript", equation);
        goto done;
      }
      if (in_out[id]) {
        st = eq_error("an output subscript appears more than once", equation);
        goto done;
      }
      if (!count[id]) {
        st = eq_error("an output subscript that no operand has", equation);
        goto done;
      }
      outl[nout++] = id;
      in_out[id] = true;
    }
    /* the output omits '...': its dims are summed out, as in PyTorch */
    (void)any_ell;
  } else {
    for (int j = 0; j < E; j++)
      outl[nout++] = 52 + j, in_out[52 + j] = true;
    for (int l = 0; l < 52; l++)
      if (occ[l] == 1) outl[nout++] = l, in_out[l] = true;
  }
  if (nout > LC_MAX_DIMS) {
    st = lc_set_error(LC_ESHAPE, "einsum: the result would have more than %d dims", LC_MAX_DIMS);
    goto done;
  }
  /* drop size-1 dims broadcast against a larger size, take diagonals */
  for (int i = 0; i < n && !st; i++) {
    operand *o = &ops[i];
    bool drop = false;
    int64_t sh[LC_MAX_DIMS];
    int nl = 0, lab[LC_MAX_DIMS];
    for (int d = 0; d < o->nl; d++) {
      if (o->x->shape[d] == 1 && lsize[o->lab[d]] != 1) {
        drop = true;
        continue;
      }
      sh[nl] = o->x->shape[d];
      lab[nl++] = o->lab[d];
    }
    if (drop) {
      lc_tensor *r = NULL;
      if ((st = lc_reshape(o->x, nl, sh, &r))) break;
      op_set(o, r);
      o->nl = nl;
      memcpy(o->lab, lab, sizeof lab);
    }
  }
  if (st) goto done;
  /* contract left to right */
  for (int i = 0; i < n; i++) {
    bool needed[EQ_LABELS];
    memcpy(needed, in_out, sizeof needed);
    for (int j = i + 1; j < n; j++)
      for (int d = 0; d < ops[j].nl; d++)
        needed[ops[j].lab[d]] = true;
    if (i == 0) {
      /* labels needed by operand 0 itself beyond the output: those of operand 1 */
      if ((st = sum_unneeded(&ops[0], needed))) goto done;
      continue;
    }
    bool needed_b[EQ_LABELS];
    memcpy(needed_b, needed, sizeof needed_b);
    for (int d = 0; d < ops[0].nl; d++)
      needed_b[ops[0].lab[d]] = true;
    if ((st = sum_unneeded(&ops[i], needed_b))) goto done;
    operand r = {0};
    st = contract(&ops[0], &ops[i], needed, lsize, &r);
    if (st) {
      lc_release(r.x);
      goto done;
    }
    op_set(&ops[0], r.x);
    ops[0].nl = r.nl;
    memcpy(ops[0].lab, r.lab, sizeof r.lab);
    if ((st = sum_unneeded(&ops[0], needed))) goto done;
  }
  {
    /* to the output order; output labels of size-1 broadcast that were dropped everywhere
     * cannot occur (the size-1 dim is dropped only where another operand is larger) */
    int perm[LC_MAX_DIMS];
    for (int j = 0; j < nout; j++) {
      perm[j] = -1;
      for (int d = 0; d < ops[0].nl; d++)
        if (ops[0].lab[d] == outl[j]) perm[j] = d;
    }
    bool ident = true;
    for (int j = 0; j < nout; j++)
      ident = ident && perm[j] == j;
    if (ident && ops[0].nl == nout) {
      *out = lc_retain(ops[0].x);
    } else if (ops[0].nl == nout) {
      st = lc_permute(ops[0].x, perm, out);
    } else {
      st = lc_set_error(LC_ESTATE, "einsum: internal label mismatch");
    }
  }
done:
  for (int i = 0; i < n; i++)
    lc_release(ops[i].x);
  return st;
}
