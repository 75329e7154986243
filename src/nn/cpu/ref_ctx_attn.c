/*
 * ref_ctx_attn.c: the contextual attention layer of DeepFill v1 (the
 * variant of spec 5.3), forward and backward, as one fused kernel.
 *
 * Per batch item, with r = rate, k = ksize, Hs = H/r, L = P = Hs*Ws:
 *   fs, bs   = nearest downsampling of f, b by r (index i*r);
 *   colF     = im2col(fs; k, stride 1, pad k/2)   C*k*k x P
 *   colB     = im2col(bs; same)                   C*k*k x L (patch l = column l)
 *   s[p][l]  = colF[:,p] . colB[:,l] / max(|colB[:,l]|, 1e-4)  (position-major)
 *   fuse     : s <- D_T(D(s)), D = sum over the diagonal (l+d, p+d), |d| <= fuse_k/2,
 *              on the flattened (row-major) indices, D_T the same in the
 *              transposed (column-major) ordering of both indices;
 *   mm[l]    = 1 iff this item's mask (downsampled to Hs x Ws) is zero in the
 *              k x k window of patch l;
 *   att      = mm * softmax_l(scale * mm * s)     (masked logits are 0, not -inf,
 *              exactly as the reference)
 *   out      = col2im(colRaw x att) / r^2, colRaw = im2col(b; 2r, stride r, pad r/2),
 *              i.e. the transposed convolution pasting the raw 2r x 2r patches.
 * The two big contractions are GEMMs through ex->gemm (OpenBLAS in the CPU
 * backend). Fused rather than composed from generic ops because the composed
 * version needs five extra ops (unfold, fold, batched matmul, row norm, the
 * diagonal fuse) and their L x P intermediates, for one user.
 *
 * The reference takes mm from batch item 0 for every item (spec 12, a
 * defect); here each item uses its own mask. With identical masks the two
 * agree.
 */
#include <math.h>
#include <string.h>

#include "../nn_backend.h"

hv_nn_ca_dims hv__nn_ca_dims(const hv_nn_tensor *t)
{
    const hv_nn_tensor *f = t->src[0], *m = t->src[2];
    hv_nn_ca_dims d;
    d.n = f->shape[0];
    d.c = f->shape[1];
    d.h = f->shape[2];
    d.w = f->shape[3];
    d.k = t->ip[0];
    d.r = t->ip[1];
    d.fk = t->ip[2];
    d.q = t->ip[3];
    d.hs = d.h / d.r;
    d.ws = d.w / d.r;
    d.l = d.hs * d.ws;
    d.c9 = d.c * d.k * d.k;
    d.ckk = d.c * 4 * d.r * d.r;
    d.msz = m->shape[2] * m->shape[3];
    d.scale = t->fp[0];
    return d;
}

size_t hv__nn_ca_aux_size(const hv_nn_tensor *t)
{
    hv_nn_ca_dims d = hv__nn_ca_dims(t);
    return (size_t)(d.n * (d.l * d.l + 2 * d.l));
}

size_t hv__nn_ca_work_size(const hv_nn_tensor *t)
{
    hv_nn_ca_dims d = hv__nn_ca_dims(t);
    /* backward: 4 C9 x L, 3 Ckk x L, 3 L x L, 4 C x L; forward needs less */
    return (size_t)(4 * d.c9 * d.l + 3 * d.ckk * d.l + 3 * d.l * d.l + 4 * d.c * d.l);
}

/* im2col for C x H x W, square kernel kk, stride s, pad p, positions ho x wo */
static void im2col_sq(const float *img, int64_t c, int64_t h, int64_t w, int64_t kk, int64_t s,
                      int64_t p, int64_t ho, int64_t wo, float *col)
{
    const int64_t rows = c * kk * kk, hw = ho * wo;
#pragma omp parallel for schedule(static) if (rows * hw > 32768)
    for (int64_t rr = 0; rr < rows; rr++) {
        int64_t kx = rr % kk, ky = (rr / kk) % kk, ch = rr / (kk * kk);
        for (int64_t oy = 0; oy < ho; oy++)
            for (int64_t ox = 0; ox < wo; ox++) {
                int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                col[rr * hw + oy * wo + ox] = (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                                  ? img[(ch * h + iy) * w + ix]
                                                  : 0.0f;
            }
    }
}

static void col2im_sq(const float *col, int64_t c, int64_t h, int64_t w, int64_t kk, int64_t s,
                      int64_t p, int64_t ho, int64_t wo, float alpha, float *img)
{
    const int64_t hw = ho * wo;
#pragma omp parallel for schedule(static) if (c * kk * kk * hw > 32768)
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t ky = 0; ky < kk; ky++)
            for (int64_t kx = 0; kx < kk; kx++) {
                const float *src = col + ((ch * kk + ky) * kk + kx) * hw;
                for (int64_t oy = 0; oy < ho; oy++)
                    for (int64_t ox = 0; ox < wo; ox++) {
                        int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                            img[(ch * h + iy) * w + ix] += alpha * src[oy * wo + ox];
                    }
            }
}

static void down(const float *x, int64_t c, int64_t h, int64_t w, int64_t r, float *y)
{
    const int64_t hs = h / r, ws = w / r;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < hs; i++)
            for (int64_t j = 0; j < ws; j++)
                y[(ch * hs + i) * ws + j] = x[(ch * h + i * r) * w + j * r];
}

static void down_adj(const float *y, int64_t c, int64_t h, int64_t w, int64_t r, float *x)
{
    const int64_t hs = h / r, ws = w / r;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < hs; i++)
            for (int64_t j = 0; j < ws; j++)
                x[(ch * h + i * r) * w + j * r] += y[(ch * hs + i) * ws + j];
}

/* Row-major order: out[a][b] = sum over |k| <= fk/2 of in[a+k][b+k] (zero
 * outside), on L x L arrays; row a of out is a sum of shifted rows of in. */
static void diag_rows(const hv_nn_ca_dims *d, const float *in, float *out)
{
    const int64_t l = d->l, half = d->fk / 2;
#pragma omp parallel for schedule(static)
    for (int64_t a = 0; a < l; a++) {
        float *o = out + a * l;
        for (int64_t b = 0; b < l; b++) o[b] = 0.0f;
        for (int64_t k = -half; k <= half; k++) {
            if (a + k < 0 || a + k >= l) continue;
            const float *src = in + (a + k) * l;
            int64_t b0 = k < 0 ? -k : 0, b1 = k > 0 ? l - k : l;
            for (int64_t b = b0; b < b1; b++) o[b] += src[b + k];
        }
    }
}

/* Row-major index of the element k places after x in the transposed
 * (column-major over Hs x Ws) ordering, -1 outside the L elements. Within a
 * column that is k image rows down (x + k Ws); past a column's end it wraps
 * into the next one. */
static int64_t tr_step(const hv_nn_ca_dims *d, int64_t x, int64_t k)
{
    const int64_t t = (x % d->ws) * d->hs + x / d->ws + k;
    return t < 0 || t >= d->l ? -1 : (t % d->hs) * d->ws + t / d->hs;
}

/* out = D(in) (transposed = 0) or D_T(in) = P D P^T (in), where P reorders
 * both indices into the transposed ordering: out[a][b] = sum over |k| <=
 * fk/2 of in[tr_step(a, k)][tr_step(b, k)]. Done as shifted rows, without
 * permuting the L x L arrays: for one k, row a reads the single row
 * tr_step(a, k), and its columns b at one shift (k Ws) except for the |k|
 * image rows that wrap to the neighbouring column. The terms are added in
 * the same order (k ascending) as D on the permuted arrays would, so the
 * result is the same to the bit. */
/* Row a of D_T(in) into o (L floats). */
static void diag_tr_row(const hv_nn_ca_dims *d, const float *in, int64_t a, float *o)
{
    const int64_t l = d->l, half = d->fk / 2, ws = d->ws, hs = d->hs;
    for (int64_t b = 0; b < l; b++) o[b] = 0.0f;
    for (int64_t k = -half; k <= half; k++) {
        const int64_t r = tr_step(d, a, k);
        if (r < 0) continue;
        const float *src = in + r * l;
        /* image rows y with 0 <= y + k < hs: one shift (none if |k| >= hs) */
        int64_t y0 = k < 0 ? -k : 0, y1 = k > 0 ? hs - k : hs;
        if (y1 < y0) y1 = y0;
        const int64_t sh = k * ws;
        for (int64_t b = y0 * ws; b < y1 * ws; b++) o[b] += src[b + sh];
        /* the wrapping rows */
        for (int64_t y = 0; y < hs; y++) {
            if (y >= y0 && y < y1) continue;
            for (int64_t c = 0; c < ws; c++) {
                const int64_t b = y * ws + c, n = tr_step(d, b, k);
                if (n >= 0) o[b] += src[n];
            }
        }
    }
}

/* out = D(in) (transposed = 0) or D_T(in) = P D P^T (in), where P reorders
 * both indices into the transposed ordering: out[a][b] = sum over |k| <=
 * fk/2 of in[tr_step(a, k)][tr_step(b, k)]. Done as shifted rows, without
 * permuting the L x L arrays: for one k, row a reads the single row
 * tr_step(a, k), and its columns b at one shift (k Ws) except for the |k|
 * image rows that wrap to the neighbouring column. The terms are added in
 * the same order (k ascending) as D on the permuted arrays would, so the
 * result is the same to the bit. */
static void diag_sum(const hv_nn_ca_dims *d, const float *in, float *out, int transposed)
{
    const int64_t l = d->l;
    if (!transposed) {
        diag_rows(d, in, out);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t a = 0; a < l; a++) diag_tr_row(d, in, a, out + a * l);
}

static void valid_patches(const hv_nn_ca_dims *d, const float *mask, float *mm)
{
    const int64_t hm = d->hs * d->q, wm = d->ws * d->q, half = d->k / 2;
    for (int64_t ly = 0; ly < d->hs; ly++)
        for (int64_t lx = 0; lx < d->ws; lx++) {
            double s = 0;
            for (int64_t ky = -half; ky <= half; ky++)
                for (int64_t kx = -half; kx <= half; kx++) {
                    int64_t y = ly + ky, x = lx + kx;
                    if (y < 0 || y >= d->hs || x < 0 || x >= d->ws) continue;
                    s += mask[(y * d->q) * wm + x * d->q];
                }
            (void)hm;
            mm[ly * d->ws + lx] = s == 0.0 ? 1.0f : 0.0f;
        }
}

/* C = op(A) op(B): in bf16 where the backend offers it for this call
 * (ex->gemm_bf16, inference on a bf16 backend), else in fp32 */
static void ca_gemm(const hv_nn_exec *ex, int ta, int tb, int64_t m, int64_t n, int64_t k,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                    int64_t ldc)
{
    if (ex->gemm_bf16 &&
        ex->gemm_bf16(ex->gemm_bf16_ctx, ta, tb, m, n, k, a, lda, b, ldb, c, ldc) == 0)
        return;
    ex->gemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

/* expf(x) rounds to +0 for every x below log(2^-150) = -103.97... */
#define EXP_ZERO (-104.0f)

/* Softmax over l of row p (masked logits are 0, masked outputs 0). */
static void softmax_row(const hv_nn_ca_dims *d, const float *sp, const float *mm, float *ap)
{
    const int64_t l = d->l;
    float mx = -INFINITY;
    for (int64_t j = 0; j < l; j++) {
        ap[j] = d->scale * sp[j] * mm[j];
        if (ap[j] > mx) mx = ap[j];
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < l; j++) {
        /* below EXP_ZERO expf is +0 anyway, but through glibc's slow
         * underflow path; most of a row is there at softmax scale 10 */
        const float x = ap[j] - mx;
        ap[j] = x < EXP_ZERO ? 0.0f : expf(x);
        sum += ap[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < l; j++) ap[j] *= inv * mm[j];
}

hv_status hv__nn_ca_forward(hv_nn_tensor *t, const hv_nn_exec *ex)
{
    const hv_nn_ca_dims d = hv__nn_ca_dims(t);
    const hv_nn_tensor *f = t->src[0], *b = t->src[1], *m = t->src[2];
    const int64_t l = d.l, img = d.c * d.h * d.w, pr = d.r / 2;
    float *w = ex->work;
    float *colF = w, *colB = colF + d.c9 * l, *colR = colB + d.c9 * l, *s = colR + d.ckk * l;
    float *s1 = s + l * l, *colO = s1 + l * l, *fs = colO + d.ckk * l;
    float *bs = fs + d.c * l;
    for (int64_t i = 0; i < d.n; i++) {
        /* att is stored position-major: att[p * L + l] */
        float *att = t->aux + i * (l * l + 2 * l), *nrm = att + l * l, *mm = nrm + l;
        const float *fi = f->data + i * img, *bi = b->data + i * img;
        down(fi, d.c, d.h, d.w, d.r, fs);
        down(bi, d.c, d.h, d.w, d.r, bs);
        im2col_sq(fs, d.c, d.hs, d.ws, d.k, 1, d.k / 2, d.hs, d.ws, colF);
        im2col_sq(bs, d.c, d.hs, d.ws, d.k, 1, d.k / 2, d.hs, d.ws, colB);
        for (int64_t j = 0; j < l; j++) nrm[j] = 0.0f;
        for (int64_t r = 0; r < d.c9; r++)
            for (int64_t j = 0; j < l; j++) nrm[j] += colB[r * l + j] * colB[r * l + j];
        for (int64_t j = 0; j < l; j++) nrm[j] = fmaxf(sqrtf(nrm[j]), 1e-4f);
        /* s[p][l] = colF[:,p] . (colB[:,l] / nrm[l]): the patches are
         * normalised before the GEMM (C9 x L divisions instead of L x L) */
#pragma omp parallel for schedule(static) if (d.c9 * l > 32768)
        for (int64_t r = 0; r < d.c9; r++)
            for (int64_t j = 0; j < l; j++) colB[r * l + j] /= nrm[j];
        ca_gemm(ex, 1, 0, l, l, d.c9, colF, l, colB, l, s, l);
        valid_patches(&d, m->data + i * m->shape[2] * m->shape[3], mm);
        if (d.fk) {
            /* the diagonal fuse is symmetric in its two indices: s1 = D(s),
             * then row p of D_T(s1), softmaxed into att while in cache */
            diag_rows(&d, s, s1);
#pragma omp parallel for schedule(static)
            for (int64_t p = 0; p < l; p++) {
                diag_tr_row(&d, s1, p, att + p * l);
                softmax_row(&d, att + p * l, mm, att + p * l);
            }
        } else {
#pragma omp parallel for schedule(static)
            for (int64_t p = 0; p < l; p++) softmax_row(&d, s + p * l, mm, att + p * l);
        }
        /* paste: colO = colRaw x att^T, out = col2im(colO) / r^2 */
        im2col_sq(bi, d.c, d.h, d.w, 2 * d.r, d.r, pr, d.hs, d.ws, colR);
        ca_gemm(ex, 0, 1, d.ckk, l, l, colR, l, att, l, colO, l);
        float *yi = t->data + i * img;
        memset(yi, 0, (size_t)img * sizeof(float));
        col2im_sq(colO, d.c, d.h, d.w, 2 * d.r, d.r, pr, d.hs, d.ws, 1.0f / (float)(d.r * d.r), yi);
    }
    return HV_OK;
}

hv_status hv__nn_ca_backward(hv_nn_tensor *t, const hv_nn_exec *ex)
{
    const hv_nn_ca_dims d = hv__nn_ca_dims(t);
    hv_nn_tensor *f = t->src[0], *b = t->src[1];
    const int64_t l = d.l, img = d.c * d.h * d.w, pr = d.r / 2;
    float *w = ex->work;
    float *colF = w, *colB = colF + d.c9 * l, *dcolF = colB + d.c9 * l, *dWn = dcolF + d.c9 * l;
    float *colR = dWn + d.c9 * l, *dcolO = colR + d.ckk * l, *dcolR = dcolO + d.ckk * l;
    float *datt = dcolR + d.ckk * l, *ds = datt + l * l, *tmp = ds + l * l;
    float *fs = tmp + l * l, *bs = fs + d.c * l, *dfs = bs + d.c * l, *dbs = dfs + d.c * l;
    for (int64_t i = 0; i < d.n; i++) {
        const float *att = t->aux + i * (l * l + 2 * l), *nrm = att + l * l, *mm = nrm + l;
        const float *fi = f->data + i * img, *bi = b->data + i * img;
        const float *dy = t->grad + i * img;
        /* paste backward: dcolO = im2col(dy) / r^2 */
        im2col_sq(dy, d.c, d.h, d.w, 2 * d.r, d.r, pr, d.hs, d.ws, dcolO);
        const float inv_r2 = 1.0f / (float)(d.r * d.r);
        for (int64_t k = 0; k < d.ckk * l; k++) dcolO[k] *= inv_r2;
        im2col_sq(bi, d.c, d.h, d.w, 2 * d.r, d.r, pr, d.hs, d.ws, colR);
        /* datt[p][l] = dcolO[:,p] . colR[:,l] */
        ex->gemm(1, 0, l, l, d.ckk, 1.0f, dcolO, l, colR, l, 0.0f, datt, l);
        if (b->grad) {
            ex->gemm(0, 0, d.ckk, l, l, 1.0f, dcolO, l, att, l, 0.0f, dcolR, l);
            col2im_sq(dcolR, d.c, d.h, d.w, 2 * d.r, d.r, pr, d.hs, d.ws, 1.0f,
                      b->grad + i * img);
        }
        /* softmax backward (masked entries have zero gradient) */
#pragma omp parallel for schedule(static)
        for (int64_t p = 0; p < l; p++) {
            const float *ap = att + p * l, *gp = datt + p * l;
            float *dp = ds + p * l;
            double dot = 0;
            for (int64_t j = 0; j < l; j++) dot += (double)ap[j] * gp[j] * mm[j];
            const float fdot = (float)dot;
            for (int64_t j = 0; j < l; j++) dp[j] = mm[j] * d.scale * ap[j] * (gp[j] * mm[j] - fdot);
        }
        if (d.fk) { /* adjoint of D_T(D(.)) is D(D_T(.)) */
            diag_sum(&d, ds, tmp, 1);
            diag_sum(&d, tmp, ds, 0);
        }
        /* scores backward */
        down(fi, d.c, d.h, d.w, d.r, fs);
        down(bi, d.c, d.h, d.w, d.r, bs);
        im2col_sq(fs, d.c, d.hs, d.ws, d.k, 1, d.k / 2, d.hs, d.ws, colF);
        im2col_sq(bs, d.c, d.hs, d.ws, d.k, 1, d.k / 2, d.hs, d.ws, colB);
        /* Wn = colB / nrm (column-wise), kept in dWn until dWn is computed */
        for (int64_t r = 0; r < d.c9; r++)
            for (int64_t j = 0; j < l; j++) dWn[r * l + j] = colB[r * l + j] / nrm[j];
        if (f->grad) {
            /* dcolF[:,p] = Wn ds[p][:]^T */
            ex->gemm(0, 1, d.c9, l, l, 1.0f, dWn, l, ds, l, 0.0f, dcolF, l);
            memset(dfs, 0, (size_t)(d.c * l) * sizeof(float));
            col2im_sq(dcolF, d.c, d.hs, d.ws, d.k, 1, d.k / 2, d.hs, d.ws, 1.0f, dfs);
            down_adj(dfs, d.c, d.h, d.w, d.r, f->grad + i * img);
        }
        if (b->grad) {
            /* d Wn (C9 x L) = colF (C9 x P) ds (P x L); into dcolF as scratch */
            ex->gemm(0, 0, d.c9, l, l, 1.0f, colF, l, ds, l, 0.0f, dcolF, l);
            for (int64_t j = 0; j < l; j++) {
                double raw = 0, dot = 0;
                for (int64_t r = 0; r < d.c9; r++) {
                    raw += (double)colB[r * l + j] * colB[r * l + j];
                    dot += (double)dWn[r * l + j] * dcolF[r * l + j];
                }
                const int clipped = !(sqrt(raw) > 1e-4);
                for (int64_t r = 0; r < d.c9; r++) {
                    float gwn = dcolF[r * l + j];
                    dcolF[r * l + j] = clipped ? gwn / nrm[j]
                                               : (float)((gwn - dWn[r * l + j] * dot) / nrm[j]);
                }
            }
            memset(dbs, 0, (size_t)(d.c * l) * sizeof(float));
            col2im_sq(dcolF, d.c, d.hs, d.ws, d.k, 1, d.k / 2, d.hs, d.ws, 1.0f, dbs);
            down_adj(dbs, d.c, d.h, d.w, d.r, b->grad + i * img);
        }
    }
    return HV_OK;
}
