/* attention_impl.h - the typed body of the fused attention kernel (src/kernels/attention.c),
 * included once per float type with T (the element type), SFX (the name suffix), GEMM
 * (cblas_sgemm / cblas_dgemm) and EXPV (a vectorisable exp of one T) defined. Private. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)

/* Row-major C (m x n, ldc) = alpha A B + beta C with A (m x k) or its transpose, B likewise.
 * Empty products only scale C (BLAS refuses leading dims of 0). */
static void FN(mm)(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,
                   int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t r = 0; r < m; r++)
      for (int64_t q = 0; q < n; q++)
        c[r * ldc + q] = beta == 0 ? (T)0 : c[r * ldc + q] * beta;
    return;
  }
  GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m,
       (int)n, (int)k, alpha, a, (int)(lda > 0 ? lda : 1), b, (int)(ldb > 0 ? ldb : 1), beta, c,
       (int)(ldc > 0 ? ldc : 1));
}

/* The scores tile s (br x bc, row stride SD_BC) of rows i0.. and keys j0.. of head bh: scale
 * q k^T, plus the float mask, -inf where the bool mask or causality hides a key. */
static void FN(scores)(const sdpa_job *j, int64_t bh, int64_t i0, int64_t br, int64_t j0,
                       int64_t bc, T *s) {
  const T *q = (const T *)j->q + (bh * j->L + i0) * j->E;
  const T *k = (const T *)j->k + (bh * j->S + j0) * j->E;
  FN(mm)(false, true, br, bc, j->E, (T)j->scale, q, j->E, k, j->E, 0, s, SD_BC);
  const T ninf = -(T)INFINITY;
  if (j->mask) {
    const int64_t mo = sd_mask_offset(j, bh);
    for (int64_t r = 0; r < br; r++) {
      const int64_t ro = mo + (i0 + r) * j->msL + j0 * j->msS;
      T *restrict sr = s + r * SD_BC;
      if (j->mdt == LC_BOOL) {
        const uint8_t *restrict m = (const uint8_t *)j->mask + ro;
        for (int64_t c = 0; c < bc; c++)
          sr[c] = m[c * j->msS] ? sr[c] : ninf;
      } else {
        const T *restrict m = (const T *)j->mask + ro;
        for (int64_t c = 0; c < bc; c++)
          sr[c] += m[c * j->msS];
      }
    }
  }
  if (j->causal) {
    for (int64_t r = 0; r < br; r++) {
      int64_t first = i0 + r + 1 - j0; /* first hidden column of row r */
      for (int64_t c = first < 0 ? 0 : first; c < bc; c++)
        s[r * SD_BC + c] = ninf;
    }
  }
}

/* Multiplies tile p (br x bc) by the dropout keep mask of rows i0.., keys j0.. of head bh, the
 * kept entries scaled by 1 / (1 - p), into out; keep (when not NULL) receives the mask. */
static void FN(drop)(const sdpa_job *j, int64_t bh, int64_t i0, int64_t br, int64_t j0, int64_t bc,
                     const T *p, T *out, uint8_t *keep) {
  const T ks = (T)j->keep_scale;
  for (int64_t r = 0; r < br; r++) {
    uint64_t e0 = (uint64_t)((bh * j->L + i0 + r) * j->S + j0);
    for (int64_t c = 0; c < bc; c++) {
      bool kp = sd_keep(j, e0 + (uint64_t)c);
      out[r * SD_BC + c] = kp ? p[r * SD_BC + c] * ks : (T)0;
      if (keep) keep[r * SD_BC + c] = kp;
    }
  }
}

/* Forward over units [b, e) of (head, query tile): the online softmax over key tiles. */
static void FN(fwd)(void *ctx, int64_t b, int64_t e) {
  sdpa_job *j = ctx;
  const int64_t E = j->E, Ev = j->Ev, S = j->S;
  T *buf = malloc(sizeof(T) * (size_t)(2 * SD_BR * SD_BC + SD_BR * (Ev + 2)));
  if (!buf) {
    atomic_store(&j->failed, 1);
    return;
  }
  T *s = buf, *pd = s + SD_BR * SD_BC, *m = pd + SD_BR * SD_BC, *l = m + SD_BR;
  T *acc = l + SD_BR;
  const T ninf = -(T)INFINITY;
  (void)E;
  for (int64_t u = b; u < e; u++) {
    const int64_t bh = u / j->nqt, i0 = (u % j->nqt) * SD_BR;
    const int64_t br = j->L - i0 < SD_BR ? j->L - i0 : SD_BR;
    const int64_t jend = j->causal ? (i0 + br < S ? i0 + br : S) : S;
    for (int64_t r = 0; r < br; r++) {
      m[r] = ninf;
      l[r] = 0;
    }
    memset(acc, 0, sizeof(T) * (size_t)(br * Ev));
    const T *v = (const T *)j->v + bh * S * Ev;
    for (int64_t j0 = 0; j0 < jend; j0 += SD_BC) {
      const int64_t bc = jend - j0 < SD_BC ? jend - j0 : SD_BC;
      FN(scores)(j, bh, i0, br, j0, bc, s);
      for (int64_t r = 0; r < br; r++) {
        T *restrict sr = s + r * SD_BC;
        T mx = ninf;
        for (int64_t c = 0; c < bc; c++)
          mx = sr[c] > mx ? sr[c] : mx;
        const T mnew = mx > m[r] ? mx : m[r];
        if (mnew == ninf) { /* every key so far hidden: nothing to add */
          for (int64_t c = 0; c < bc; c++)
            sr[c] = 0;
          continue;
        }
        const T alpha = m[r] == ninf ? (T)0 : EXPV(m[r] - mnew);
        T sum = 0;
        for (int64_t c = 0; c < bc; c++) {
          T x = EXPV(sr[c] - mnew);
          sr[c] = x;
          sum += x;
        }
        l[r] = l[r] * alpha + sum;
        m[r] = mnew;
        if (alpha != 1) {
          T *restrict ar = acc + r * Ev;
          for (int64_t c = 0; c < Ev; c++)
            ar[c] *= alpha;
        }
      }
      const T *pv = s;
      if (j->p > 0) {
        FN(drop)(j, bh, i0, br, j0, bc, s, pd, NULL);
        pv = pd;
      }
      FN(mm)(false, false, br, Ev, bc, 1, pv, SD_BC, v + j0 * Ev, Ev, 1, acc, Ev);
    }
    T *o = (T *)j->o + (bh * j->L + i0) * Ev;
    T *lse = (T *)j->lse + bh * j->L + i0;
    for (int64_t r = 0; r < br; r++) {
      const bool live = l[r] > 0;
      const T inv = live ? (T)1 / l[r] : (T)0;
      for (int64_t c = 0; c < Ev; c++)
        o[r * Ev + c] = acc[r * Ev + c] * inv;
      lse[r] = live ? m[r] + (T)log((double)l[r]) : ninf;
    }
  }
  free(buf);
}

/* D_i = rowsum(dO_i * O_i) of rows [b, e) of every head (j->D). */
static void FN(rowdot)(void *ctx, int64_t b, int64_t e) {
  sdpa_job *j = ctx;
  const int64_t Ev = j->Ev;
  const T *o = (const T *)j->o, *g = (const T *)j->g;
  T *D = (T *)j->D;
  for (int64_t r = b; r < e; r++) {
    T acc = 0;
    for (int64_t c = 0; c < Ev; c++)
      acc += g[r * Ev + c] * o[r * Ev + c];
    D[r] = acc;
  }
}

/* Backward scratch: P, the dropped P, dP / dS (tiles of T) and the keep mask (bytes). */
typedef struct FN(bscratch) {
  T *p, *pd, *dp;
  uint8_t *keep;
} FN(bscratch);

static T *FN(balloc)(FN(bscratch) * w) {
  T *buf = malloc(sizeof(T) * (size_t)(3 * SD_BR * SD_BC) + SD_BR * SD_BC);
  if (buf) {
    w->p = buf;
    w->pd = buf + SD_BR * SD_BC;
    w->dp = buf + 2 * SD_BR * SD_BC;
    w->keep = (uint8_t *)(buf + 3 * SD_BR * SD_BC);
  }
  return buf;
}

/* One (query tile i0, key tile j0) block of head bh: P recomputed from the logsumexp, then
 * dV_j += Pd^T dO_i and dS = P * (dP * keep - D) * scale into w->dp (dS's products are the
 * caller's). */
static void FN(bblock)(const sdpa_job *j, FN(bscratch) * w, int64_t bh, int64_t i0, int64_t br,
                       int64_t j0, int64_t bc, bool want_dv) {
  const int64_t Ev = j->Ev, L = j->L, S = j->S;
  const T *v = (const T *)j->v + bh * S * Ev, *g = (const T *)j->g + bh * L * Ev;
  const T *lse = (const T *)j->lse + bh * L, *D = (const T *)j->D + bh * L;
  T *p = w->p, *pd = w->pd, *dp = w->dp;
  const bool drop = j->p > 0;
  const T ks = (T)j->keep_scale, sc = (T)j->scale;
  FN(scores)(j, bh, i0, br, j0, bc, p);
  for (int64_t r = 0; r < br; r++) {
    T *restrict pr = p + r * SD_BC;
    const T ls = lse[i0 + r];
    if (ls == -(T)INFINITY) { /* a fully hidden row: no gradient */
      for (int64_t c = 0; c < bc; c++)
        pr[c] = 0;
      continue;
    }
    for (int64_t c = 0; c < bc; c++)
      pr[c] = EXPV(pr[c] - ls);
  }
  /* dP (of the dropped weights) = dO V^T */
  FN(mm)(false, true, br, bc, Ev, 1, g + i0 * Ev, Ev, v + j0 * Ev, Ev, 0, dp, SD_BC);
  if (drop) FN(drop)(j, bh, i0, br, j0, bc, p, pd, w->keep);
  if (want_dv) {
    T *dv = (T *)j->dv + bh * S * Ev;
    FN(mm)(true, false, bc, Ev, br, 1, drop ? pd : p, SD_BC, g + i0 * Ev, Ev, 1, dv + j0 * Ev, Ev);
  }
  for (int64_t r = 0; r < br; r++) {
    T *restrict dr = dp + r * SD_BC;
    const T *restrict pr = p + r * SD_BC;
    const T di = D[i0 + r];
    if (drop) {
      const uint8_t *restrict kr = w->keep + r * SD_BC;
      for (int64_t c = 0; c < bc; c++)
        dr[c] = pr[c] * ((kr[c] ? dr[c] * ks : (T)0) - di) * sc;
    } else {
      for (int64_t c = 0; c < bc; c++)
        dr[c] = pr[c] * (dr[c] - di) * sc;
    }
  }
}

/* Units [b, e) of (head, key tile): dK_j and dV_j over the query tiles that see key tile j,
 * and, when j->bwd_dq (one unit per head then covers all its key tiles: units = heads), dQ in
 * the same pass. */
static void FN(bwd_kv)(void *ctx, int64_t b, int64_t e) {
  sdpa_job *j = ctx;
  const int64_t E = j->E, S = j->S, L = j->L;
  FN(bscratch) w;
  T *buf = FN(balloc)(&w);
  if (!buf) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (int64_t u = b; u < e; u++) {
    const int64_t bh = j->bwd_dq ? u : u / j->nkt;
    const int64_t jt0 = j->bwd_dq ? 0 : u % j->nkt, jt1 = j->bwd_dq ? j->nkt : jt0 + 1;
    const T *q = (const T *)j->q + bh * L * E, *k = (const T *)j->k + bh * S * E;
    T *dq = (T *)j->dq + bh * L * E, *dk = (T *)j->dk + bh * S * E;
    for (int64_t jt = jt0; jt < jt1; jt++) {
      const int64_t j0 = jt * SD_BC, bc = S - j0 < SD_BC ? S - j0 : SD_BC;
      const int64_t ifirst = j->causal ? (j0 / SD_BR) * SD_BR : 0;
      for (int64_t i0 = ifirst; i0 < L; i0 += SD_BR) {
        const int64_t br = L - i0 < SD_BR ? L - i0 : SD_BR;
        FN(bblock)(j, &w, bh, i0, br, j0, bc, true);
        if (j->bwd_dq)
          FN(mm)(false, false, br, E, bc, 1, w.dp, SD_BC, k + j0 * E, E, 1, dq + i0 * E, E);
        FN(mm)(true, false, bc, E, br, 1, w.dp, SD_BC, q + i0 * E, E, 1, dk + j0 * E, E);
      }
    }
  }
  free(buf);
}

/* Units [b, e) of (head, query tile): dQ_i over the key tiles it sees (the split backward's
 * second pass, when there are fewer heads than threads). */
static void FN(bwd_q)(void *ctx, int64_t b, int64_t e) {
  sdpa_job *j = ctx;
  const int64_t E = j->E, S = j->S, L = j->L;
  FN(bscratch) w;
  T *buf = FN(balloc)(&w);
  if (!buf) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (int64_t u = b; u < e; u++) {
    const int64_t bh = u / j->nqt, i0 = (u % j->nqt) * SD_BR;
    const int64_t br = L - i0 < SD_BR ? L - i0 : SD_BR;
    const int64_t jend = j->causal ? (i0 + br < S ? i0 + br : S) : S;
    const T *k = (const T *)j->k + bh * S * E;
    T *dq = (T *)j->dq + bh * L * E;
    for (int64_t j0 = 0; j0 < jend; j0 += SD_BC) {
      const int64_t bc = jend - j0 < SD_BC ? jend - j0 : SD_BC;
      FN(bblock)(j, &w, bh, i0, br, j0, bc, false);
      FN(mm)(false, false, br, E, bc, 1, w.dp, SD_BC, k + j0 * E, E, 1, dq + i0 * E, E);
    }
  }
  free(buf);
}

#undef FN
#undef CAT
#undef CAT_
