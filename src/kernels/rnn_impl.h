/*
 * rnn_impl.h - the body of the fused recurrence's forward and backward for one float type,
 * included by rnn.c once per dtype with RT (element type), S (suffix) and GEMM (cblas_?gemm)
 * defined, and TANH / SIGM its vectorisable tanh and sigmoid. Layer 2 (kernels); private to rnn.c.
 *
 * Layout (all row-major, time-major, B rows per step): xp {RT, B, GH}; ws = Hall {RT+1, B, Ho}
 * (Hall[0] = h0, Hall[s+1] = the state after step s), Call {RT+1, B, H} (LSTM), Gt {RT, B, GH}
 * (activated gates, LSTM / GRU), GHN {RT, B, H} (GRU: W_hn h + b_hn), M {RT, B, H} (LSTM with
 * projection: o * TANH(c) before W_hr).
 */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, S)

static void FN(rnn_fwd)(const rnn_geo *g, const RT *restrict xp, const RT *restrict whh,
                        const RT *restrict bhh, const RT *restrict whr, RT *restrict y,
                        RT *restrict ws, RT *restrict gh) {
  const int64_t Tn = g->T, B = g->B, H = g->H, Ho = g->Ho, GH = g->G * H;
  RT *Hall = ws + g->o_h, *Call = ws + g->o_c, *Gt = ws + g->o_g, *GHN = ws + g->o_n,
     *M = ws + g->o_m;
  for (int64_t s = 0; s < Tn; s++) {
    const RT *hp = Hall + s * B * Ho;
    RT *hn = Hall + (s + 1) * B * Ho;
    /* gh = b_hh + h_{s-1} W_hh^RT */
    for (int64_t b = 0; b < B; b++) {
      if (bhh)
        memcpy(gh + b * GH, bhh, sizeof(RT) * (size_t)GH);
      else
        memset(gh + b * GH, 0, sizeof(RT) * (size_t)GH);
    }
    if (B > 0 && Ho > 0 && GH > 0)
      GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)GH, (int)Ho, (RT)1, hp, (int)Ho,
           whh, (int)Ho, (RT)1, gh, (int)GH);
    for (int64_t b = 0; b < B; b++) {
      int64_t t = rnn_time(g, s, b);
      if (t < 0) {
        /* the projection GEMM reads this row (the workspace is not zeroed) */
        if (g->proj) memset(M + (s * B + b) * H, 0, sizeof(RT) * (size_t)H);
        continue;
      }
      const RT *restrict xr = xp + (t * B + b) * GH;
      const RT *restrict ghr = gh + b * GH;
      if (g->mode == LC_RNN_TANH || g->mode == LC_RNN_RELU) {
        RT *restrict h = hn + b * Ho;
        if (g->mode == LC_RNN_TANH)
          for (int64_t j = 0; j < H; j++)
            h[j] = TANH(xr[j] + ghr[j]);
        else
          for (int64_t j = 0; j < H; j++) {
            RT v = xr[j] + ghr[j];
            h[j] = v > 0 ? v : 0;
          }
      } else if (g->mode == LC_LSTM) {
        RT *restrict gt = Gt + (s * B + b) * GH;
        const RT *restrict cp = Call + (s * B + b) * H;
        RT *restrict c = Call + ((s + 1) * B + b) * H;
        RT *restrict m = g->proj ? M + (s * B + b) * H : hn + b * Ho;
        /* simple loops (one activation each) so every one vectorises */
        for (int64_t j = 0; j < GH; j++)
          gt[j] = xr[j] + ghr[j];
        for (int64_t j = 0; j < 2 * H; j++)
          gt[j] = SIGM(gt[j]);
        for (int64_t j = 2 * H; j < 3 * H; j++)
          gt[j] = TANH(gt[j]);
        for (int64_t j = 3 * H; j < 4 * H; j++)
          gt[j] = SIGM(gt[j]);
        const RT *restrict gi = gt, *restrict gf = gt + H, *restrict gg = gt + 2 * H,
                           *restrict go = gt + 3 * H;
        for (int64_t j = 0; j < H; j++)
          c[j] = gf[j] * cp[j] + gi[j] * gg[j];
        for (int64_t j = 0; j < H; j++)
          m[j] = go[j] * TANH(c[j]);
      } else { /* GRU */
        RT *restrict gt = Gt + (s * B + b) * GH;
        RT *restrict ghn = GHN + (s * B + b) * H;
        const RT *restrict h0 = hp + b * Ho;
        RT *restrict h = hn + b * Ho;
        for (int64_t j = 0; j < 2 * H; j++)
          gt[j] = SIGM(xr[j] + ghr[j]);
        for (int64_t j = 0; j < H; j++)
          ghn[j] = ghr[2 * H + j];
        const RT *restrict gr = gt, *restrict gz = gt + H, *restrict xn = xr + 2 * H;
        RT *restrict gn = gt + 2 * H;
        for (int64_t j = 0; j < H; j++)
          gn[j] = TANH(xn[j] + gr[j] * ghn[j]);
        for (int64_t j = 0; j < H; j++)
          h[j] = ((RT)1 - gz[j]) * gn[j] + gz[j] * h0[j];
      }
    }
    if (g->proj && B > 0 && Ho > 0)
      GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)Ho, (int)H, (RT)1, M + s * B * H,
           (int)H, whr, (int)H, (RT)0, hn, (int)Ho);
    for (int64_t b = 0; b < B; b++) {
      int64_t t = rnn_time(g, s, b);
      if (t < 0) { /* padded: the state carries over */
        memcpy(hn + b * Ho, hp + b * Ho, sizeof(RT) * (size_t)Ho);
        if (g->mode == LC_LSTM)
          memcpy(Call + ((s + 1) * B + b) * H, Call + (s * B + b) * H, sizeof(RT) * (size_t)H);
      } else {
        memcpy(y + (t * B + b) * Ho, hn + b * Ho, sizeof(RT) * (size_t)Ho);
      }
    }
  }
}

/* gy {RT, B, Ho}, dh {B, Ho} (in: dL/dh_n; out: dL/dh0), dc {B, H} (same for c), dx {RT, B, GH}
 * and DG {RT, B, GH} zeroed, DH {RT, B, Ho} zeroed (proj); scratch dhp {B, Ho}, dm {B, H}. */
static void FN(rnn_bwd)(const rnn_geo *g, const RT *restrict whh, const RT *restrict whr,
                        const RT *restrict ws, const RT *restrict gy, RT *dh, RT *restrict dc,
                        RT *restrict dx, RT *restrict DG, RT *restrict DH, RT *dhp,
                        RT *restrict dmbuf) {
  const int64_t Tn = g->T, B = g->B, H = g->H, Ho = g->Ho, GH = g->G * H;
  const RT *Hall = ws + g->o_h, *Call = ws + g->o_c, *Gt = ws + g->o_g, *GHN = ws + g->o_n;
  for (int64_t s = Tn - 1; s >= 0; s--) {
    for (int64_t b = 0; b < B; b++) {
      int64_t t = rnn_time(g, s, b);
      if (t < 0) continue;
      RT *restrict d = dh + b * Ho;
      const RT *restrict gyr = gy + (t * B + b) * Ho;
      for (int64_t j = 0; j < Ho; j++)
        d[j] += gyr[j];
    }
    const RT *dm = dh;
    if (g->proj) {
      RT *dhs = DH + s * B * Ho;
      for (int64_t b = 0; b < B; b++) {
        if (rnn_time(g, s, b) >= 0)
          memcpy(dhs + b * Ho, dh + b * Ho, sizeof(RT) * (size_t)Ho);
        else
          memset(dhs + b * Ho, 0, sizeof(RT) * (size_t)Ho);
      }
      if (B > 0 && H > 0)
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)H, (int)Ho, (RT)1, dhs,
             (int)Ho, whr, (int)H, (RT)0, dmbuf, (int)H);
      dm = dmbuf;
    }
    RT *dgs = DG + s * B * GH;
    for (int64_t b = 0; b < B; b++) {
      int64_t t = rnn_time(g, s, b);
      RT *restrict dp = dhp + b * Ho;
      if (t < 0) {
        memcpy(dp, dh + b * Ho, sizeof(RT) * (size_t)Ho);
        memset(dgs + b * GH, 0, sizeof(RT) * (size_t)GH);
        continue;
      }
      const RT *restrict dmr = dm + b * (g->proj ? H : Ho);
      RT *restrict dgr = dgs + b * GH;
      RT *restrict dxr = dx + (t * B + b) * GH;
      if (g->mode == LC_RNN_TANH || g->mode == LC_RNN_RELU) {
        const RT *restrict h = Hall + ((s + 1) * B + b) * Ho;
        if (g->mode == LC_RNN_TANH)
          for (int64_t j = 0; j < H; j++)
            dgr[j] = dmr[j] * ((RT)1 - h[j] * h[j]);
        else
          for (int64_t j = 0; j < H; j++)
            dgr[j] = h[j] > 0 ? dmr[j] : (RT)0;
        memcpy(dxr, dgr, sizeof(RT) * (size_t)GH);
        memset(dp, 0, sizeof(RT) * (size_t)Ho);
      } else if (g->mode == LC_LSTM) {
        const RT *restrict gt = Gt + (s * B + b) * GH;
        const RT *restrict cp = Call + (s * B + b) * H;
        const RT *restrict c = Call + ((s + 1) * B + b) * H;
        RT *restrict dcr = dc + b * H;
        for (int64_t j = 0; j < H; j++) {
          RT i = gt[j], f = gt[H + j], gg = gt[2 * H + j], o = gt[3 * H + j];
          RT tc = TANH(c[j]);
          RT dO = dmr[j] * tc;
          RT dct = dcr[j] + dmr[j] * o * ((RT)1 - tc * tc);
          dgr[j] = dct * gg * i * ((RT)1 - i);
          dgr[H + j] = dct * cp[j] * f * ((RT)1 - f);
          dgr[2 * H + j] = dct * i * ((RT)1 - gg * gg);
          dgr[3 * H + j] = dO * o * ((RT)1 - o);
          dcr[j] = dct * f;
        }
        memcpy(dxr, dgr, sizeof(RT) * (size_t)GH);
        memset(dp, 0, sizeof(RT) * (size_t)Ho);
      } else { /* GRU */
        const RT *restrict gt = Gt + (s * B + b) * GH;
        const RT *restrict ghn = GHN + (s * B + b) * H;
        const RT *restrict hp = Hall + (s * B + b) * Ho;
        for (int64_t j = 0; j < H; j++) {
          RT r = gt[j], z = gt[H + j], n = gt[2 * H + j], d = dmr[j];
          RT dnp = d * ((RT)1 - z) * ((RT)1 - n * n);
          RT dzp = d * (hp[j] - n) * z * ((RT)1 - z);
          RT drp = dnp * ghn[j] * r * ((RT)1 - r);
          dxr[j] = drp;
          dxr[H + j] = dzp;
          dxr[2 * H + j] = dnp;
          dgr[j] = drp;
          dgr[H + j] = dzp;
          dgr[2 * H + j] = dnp * r;
          dp[j] = d * z;
        }
      }
    }
    /* dh_{s-1} = direct + DG_s W_hh */
    if (B > 0 && Ho > 0 && GH > 0)
      GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)Ho, (int)GH, (RT)1, dgs, (int)GH,
           whh, (int)Ho, (RT)1, dhp, (int)Ho);
    memcpy(dh, dhp, sizeof(RT) * (size_t)(B * Ho));
  }
}

#undef FN
#undef CAT
#undef CAT_
