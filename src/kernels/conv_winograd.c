/*
 * conv_winograd.c - Winograd F(2x2, 3x3) forward convolution for float32 (conv_winograd.h).
 *
 * The output is cut into 2x2 tiles (TH x TW of them, the last row / column clipped when OH or
 * OW is odd); tile t reads the 4x4 input patch at (2 ti - ph, 2 tj - pw). With
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * each tile's output is A^T [sum_c (G w[o,c] G^T) .* (B^T d[c] B)] A, so the 16 elementwise
 * products become 16 GEMMs M[k] (Cout x T) = U[k] (Cout x Cin) @ V[k] (Cin x T), k the position
 * in the 4x4 transformed tile:
 *   U[k][o][c] = (G w[o,c] G^T)[k]       weight transform, recomputed per call (cheap next to
 *                                        the GEMMs; weights change between calls in training)
 *   V[k][c][t] = (B^T d[c,t] B)[k]       input transform, from a zero-padded copy P of x
 *   y[o, tile t] = A^T M[.][o][t] A + b  output transform
 *
 * Threads (per sample): the input transform is split over input channels (lc_parallel_for),
 * the GEMMs and the output transform over output channels (lc_parallel_for_blas: each chunk
 * runs its 16 GEMMs single-threaded, then transforms its own rows of M; at the first sample it
 * transforms its own rows of U before), so no GEMM runs with OpenBLAS's threads against
 * lucid's pool. Inside another parallel loop both run serially. Every sample's GEMM loop covers
 * all output channels, whatever its split, so U is complete after the first.
 *
 * Workspace (floats): U 16 Cout Cin | V 16 Cin T | M 16 Cout T | P Cin PH PW, with
 * PH = 2 TH + 2 and PW = 2 TW + 2 (every tile's patch lies inside P, no bounds tests).
 */
#include "conv_winograd.h"

#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

#define TB 64 /* tiles per block of a tile row in the transforms (stack buffers) */

static atomic_int wino_mode;

int lc_conv_winograd_set_mode(int mode) { return atomic_exchange(&wino_mode, mode); }
int lc_conv_winograd_mode(void) { return atomic_load_explicit(&wino_mode, memory_order_relaxed); }

typedef struct wjob {
  int64_t Cin, H, W, Cout, ph, pw;
  int64_t OH, OW, TH, TW, T, PH, PW;
  const float *x, *w, *b;
  float *y, *U, *V, *M, *P;
  bool first; /* the first sample: output_range transforms its rows of the weight first */
} wjob;

static void geom_tiles(const lc_wino_geom *g, wjob *j) {
  j->Cin = g->Cin, j->H = g->H, j->W = g->W, j->Cout = g->Cout, j->ph = g->ph, j->pw = g->pw;
  j->OH = g->H + 2 * g->ph - 2;
  j->OW = g->W + 2 * g->pw - 2;
  j->TH = (j->OH + 1) / 2;
  j->TW = (j->OW + 1) / 2;
  j->T = j->TH * j->TW;
  j->PH = 2 * j->TH + 2;
  j->PW = 2 * j->TW + 2;
}

/* a * b + c * d + ... as size_t with overflow checks; 0 on overflow. */
static size_t ws_floats(const wjob *j) {
  int64_t parts[4][3] = {
      {16, j->Cout, j->Cin}, {16, j->Cin, j->T}, {16, j->Cout, j->T}, {j->Cin, j->PH, j->PW}};
  int64_t total = 0;
  for (int i = 0; i < 4; i++) {
    int64_t p = parts[i][0], q;
    for (int k = 1; k < 3; k++) {
      if (lc_mul_overflows(p, parts[i][k], &q)) return 0;
      p = q;
    }
    /* each part starts LC_ALIGN-aligned: rounded up to 16 floats */
    p = (p + 15) / 16 * 16;
    if (lc_add_overflows(total, p, &q)) return 0;
    total = q;
  }
  return (uint64_t)total > SIZE_MAX / sizeof(float) ? 0 : (size_t)total;
}

size_t lc_conv_winograd_ws_bytes(const lc_wino_geom *g) {
  wjob j;
  geom_tiles(g, &j);
  return ws_floats(&j) * sizeof(float);
}

/* ---------------------------------------------------------------- weight transform */

/* U[k][o][c] for o in [ob, oe): per block of input channels, the nine taps gathered into rows
 * first, so each of the 16 results is a contiguous run of U[k][o] (the loops vectorise over c). */
static void weight_range(void *ctx, int64_t ob, int64_t oe) {
  const wjob *j = ctx;
  int64_t OC = j->Cout * j->Cin;
  for (int64_t o = ob; o < oe; o++)
    for (int64_t c0 = 0; c0 < j->Cin; c0 += TB) {
      int64_t nc = j->Cin - c0 < TB ? j->Cin - c0 : TB;
      const float *restrict src = j->w + (o * j->Cin + c0) * 9;
      float g[9][TB], t[4][3][TB];
      for (int64_t q = 0; q < nc; q++)
        for (int i = 0; i < 9; i++)
          g[i][q] = src[q * 9 + i];
      for (int col = 0; col < 3; col++) /* G g: row combinations, per column */
        for (int64_t q = 0; q < nc; q++) {
          float g0 = g[col][q], g1 = g[3 + col][q], g2 = g[6 + col][q];
          t[0][col][q] = g0;
          t[1][col][q] = 0.5f * (g0 + g1 + g2);
          t[2][col][q] = 0.5f * (g0 - g1 + g2);
          t[3][col][q] = g2;
        }
      for (int a = 0; a < 4; a++) { /* (G g) G^T: column combinations */
        float *restrict u0 = j->U + (4 * a) * OC + o * j->Cin + c0;
        float *restrict u1 = u0 + OC, *restrict u2 = u1 + OC, *restrict u3 = u2 + OC;
        for (int64_t q = 0; q < nc; q++) {
          float g0 = t[a][0][q], g1 = t[a][1][q], g2 = t[a][2][q];
          u0[q] = g0;
          u1[q] = 0.5f * (g0 + g1 + g2);
          u2[q] = 0.5f * (g0 - g1 + g2);
          u3[q] = g2;
        }
      }
    }
}

/* ---------------------------------------------------------------- input transform */

/* One sample: P[c] = x[c] zero-padded, then V[k][c][.] for c in [cb, ce). */
static void input_range(void *ctx, int64_t cb, int64_t ce) {
  const wjob *j = ctx;
  int64_t PW = j->PW, CT = j->Cin * j->T;
  for (int64_t c = cb; c < ce; c++) {
    float *p = j->P + c * j->PH * PW;
    const float *xc = j->x + c * j->H * j->W;
    for (int64_t r = 0; r < j->PH; r++) {
      float *row = p + r * PW;
      int64_t ir = r - j->ph;
      if (ir < 0 || ir >= j->H) {
        memset(row, 0, sizeof(float) * (size_t)PW);
        continue;
      }
      /* pw + W <= PW: OW = W + 2 pw - 2 <= 2 TW */
      memset(row, 0, sizeof(float) * (size_t)j->pw);
      memcpy(row + j->pw, xc + ir * j->W, sizeof(float) * (size_t)j->W);
      memset(row + j->pw + j->W, 0, sizeof(float) * (size_t)(PW - j->pw - j->W));
    }
    for (int64_t ti = 0; ti < j->TH; ti++) {
      const float *restrict r0 = p + 2 * ti * PW, *restrict r1 = r0 + PW, *restrict r2 = r1 + PW,
                            *restrict r3 = r2 + PW;
      for (int64_t tj0 = 0; tj0 < j->TW; tj0 += TB) {
        int64_t nb = j->TW - tj0 < TB ? j->TW - tj0 : TB, base = 2 * tj0, ncol = 2 * nb + 2;
        float t[4][2 * TB + 2]; /* B^T d: the row combinations, over the block's columns */
        for (int64_t q = 0; q < ncol; q++) {
          float d0 = r0[base + q], d1 = r1[base + q], d2 = r2[base + q], d3 = r3[base + q];
          t[0][q] = d0 - d2;
          t[1][q] = d1 + d2;
          t[2][q] = d2 - d1;
          t[3][q] = d1 - d3;
        }
        for (int a = 0; a < 4; a++) { /* (B^T d) B: the column combinations */
          const float *restrict ta = t[a];
          float *restrict v0 = j->V + (4 * a) * CT + c * j->T + ti * j->TW + tj0;
          float *restrict v1 = v0 + CT, *restrict v2 = v1 + CT, *restrict v3 = v2 + CT;
          for (int64_t q = 0; q < nb; q++) {
            float d0 = ta[2 * q], d1 = ta[2 * q + 1], d2 = ta[2 * q + 2], d3 = ta[2 * q + 3];
            v0[q] = d0 - d2;
            v1[q] = d1 + d2;
            v2[q] = d2 - d1;
            v3[q] = d1 - d3;
          }
        }
      }
    }
  }
}

/* ---------------------------------------------------------------- GEMMs + output transform */

/* One sample: M[k][o][.] = U[k][o][.] @ V[k] for o in [ob, oe), then y[o] from M. */
static void output_range(void *ctx, int64_t ob, int64_t oe) {
  const wjob *j = ctx;
  int64_t T = j->T, CT = j->Cout * T, rows = oe - ob;
  if (j->first) weight_range(ctx, ob, oe); /* U's rows of this chunk, once per call */
  for (int k = 0; k < 16; k++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)T, (int)j->Cin, 1.0f,
                j->U + k * j->Cout * j->Cin + ob * j->Cin, (int)j->Cin, j->V + k * j->Cin * T,
                (int)T, 0.0f, j->M + k * CT + ob * T, (int)T);
  for (int64_t o = ob; o < oe; o++) {
    float bias = j->b ? j->b[o] : 0.0f;
    float *yo = j->y + o * j->OH * j->OW;
    for (int64_t ti = 0; ti < j->TH; ti++) {
      const float *m = j->M + o * T + ti * j->TW;
      for (int64_t tj0 = 0; tj0 < j->TW; tj0 += TB) {
        int64_t nb = j->TW - tj0 < TB ? j->TW - tj0 : TB;
        const float *restrict mb = m + tj0;
        float out[2][2 * TB];
        for (int64_t q = 0; q < nb; q++) {
          float u[4][2]; /* M A: the column combinations of each row a */
          for (int a = 0; a < 4; a++) {
            float m0 = mb[(4 * a) * CT + q], m1 = mb[(4 * a + 1) * CT + q],
                  m2 = mb[(4 * a + 2) * CT + q], m3 = mb[(4 * a + 3) * CT + q];
            u[a][0] = m0 + m1 + m2;
            u[a][1] = m1 - m2 - m3;
          }
          out[0][2 * q] = u[0][0] + u[1][0] + u[2][0] + bias;
          out[0][2 * q + 1] = u[0][1] + u[1][1] + u[2][1] + bias;
          out[1][2 * q] = u[1][0] - u[2][0] - u[3][0] + bias;
          out[1][2 * q + 1] = u[1][1] - u[2][1] - u[3][1] + bias;
        }
        int64_t c0 = 2 * tj0, n = j->OW - c0 < 2 * nb ? j->OW - c0 : 2 * nb;
        memcpy(yo + 2 * ti * j->OW + c0, out[0], sizeof(float) * (size_t)n);
        if (2 * ti + 1 < j->OH)
          memcpy(yo + (2 * ti + 1) * j->OW + c0, out[1], sizeof(float) * (size_t)n);
      }
    }
  }
}

void lc_conv_winograd_f32(const lc_wino_geom *g, const float *x, const float *w, const float *b,
                          float *y, float *ws) {
  wjob j;
  geom_tiles(g, &j);
  j.w = w, j.b = b;
  size_t off = 0;
  j.U = ws + off, off += (size_t)(16 * j.Cout * j.Cin + 15) / 16 * 16;
  j.V = ws + off, off += (size_t)(16 * j.Cin * j.T + 15) / 16 * 16;
  j.M = ws + off, off += (size_t)(16 * j.Cout * j.T + 15) / 16 * 16;
  j.P = ws + off;
  for (int64_t n = 0; n < g->N; n++) {
    j.first = n == 0;
    j.x = x + n * j.Cin * j.H * j.W;
    j.y = y + n * j.Cout * j.OH * j.OW;
    lc_parallel_for(j.Cin, 2 * j.PH * j.PW + 36 * j.T + 1, input_range, &j);
    lc_parallel_for_blas(j.Cout, 32 * j.Cin * j.T + 40 * j.T + (n == 0) * 60 * j.Cin + 1,
                         output_range, &j);
  }
}
