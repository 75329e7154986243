/*
 * ref_ops.c: the plain reference kernel of every op, forward and backward.
 *
 * These are the ground truth the test suite holds every backend to, and the
 * host fallback for every op a backend does not take. They are written for
 * obvious correctness first: direct loops, accumulation in double where a sum
 * runs over a whole tensor, and OpenMP only over independent outer loops.
 * Convolutions are im2col + GEMM; the GEMM is the backend's (plain loops in
 * the reference backend, OpenBLAS in the CPU backend) so a convolution that
 * falls back here is still usable. Backward kernels ADD into input gradients.
 *
 * One file of ~1,100 lines on purpose: every kernel is a short pair of plain
 * loops (forward, backward) and a reader checking one against its formula,
 * or the CUDA port against it, wants them side by side with the shared
 * index helpers; contextual attention, the one large kernel, has its own
 * file (ref_ctx_attn.c), and so have the 3-D convolution and pooling
 * (ref_ops3d.c) and AOT-GAN's padding, upsampling and norm (ref_ops_aot.c).
 */
#include <math.h>
#include <string.h>

#include "../nn_backend.h"

#define PAR_MIN 32768 /* elements below which a loop runs on one thread */

/* ------------------------------------------------------------------ GEMM */

void hv__nn_gemm_ref(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc)
{
#pragma omp parallel for schedule(static) if (m * n * k > PAR_MIN)
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f)
            for (int64_t j = 0; j < n; j++) ci[j] = 0.0f;
        else if (beta != 1.0f)
            for (int64_t j = 0; j < n; j++) ci[j] *= beta;
        if (!tb) {
            for (int64_t p = 0; p < k; p++) {
                float aip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
                if (aip == 0.0f) continue;
                const float *bp = b + p * ldb;
                for (int64_t j = 0; j < n; j++) ci[j] += aip * bp[j];
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                const float *bj = b + j * ldb;
                float s = 0.0f;
                if (!ta)
                    for (int64_t p = 0; p < k; p++) s += a[i * lda + p] * bj[p];
                else
                    for (int64_t p = 0; p < k; p++) s += a[p * lda + i] * bj[p];
                ci[j] += alpha * s;
            }
        }
    }
}

/* ---------------------------------------------------------- im2col/col2im */

typedef struct geom {
    int64_t c, h, w;    /* image */
    int64_t kh, kw;
    int64_t s, p, d;
    int64_t ho, wo;     /* positions */
} geom;

static void im2col(const geom *g, const float *img, float *col)
{
    const int64_t rows = g->c * g->kh * g->kw, hw = g->ho * g->wo;
#pragma omp parallel for schedule(static) if (rows * hw > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t kx = r % g->kw, ky = (r / g->kw) % g->kh, c = r / (g->kw * g->kh);
        float *dst = col + r * hw;
        const float *src = img + c * g->h * g->w;
        for (int64_t oy = 0; oy < g->ho; oy++) {
            int64_t iy = oy * g->s - g->p + ky * g->d;
            if (iy < 0 || iy >= g->h) {
                memset(dst + oy * g->wo, 0, (size_t)g->wo * sizeof(float));
                continue;
            }
            for (int64_t ox = 0; ox < g->wo; ox++) {
                int64_t ix = ox * g->s - g->p + kx * g->d;
                dst[oy * g->wo + ox] = (ix >= 0 && ix < g->w) ? src[iy * g->w + ix] : 0.0f;
            }
        }
    }
}

/* img += col2im(col); parallel over channels (rows of one channel only
 * touch that channel). */
static void col2im_add(const geom *g, const float *col, float *img)
{
    const int64_t hw = g->ho * g->wo;
#pragma omp parallel for schedule(static) if (g->c * g->kh * g->kw * hw > PAR_MIN)
    for (int64_t c = 0; c < g->c; c++) {
        float *dst = img + c * g->h * g->w;
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++) {
                const float *src = col + ((c * g->kh + ky) * g->kw + kx) * hw;
                for (int64_t oy = 0; oy < g->ho; oy++) {
                    int64_t iy = oy * g->s - g->p + ky * g->d;
                    if (iy < 0 || iy >= g->h) continue;
                    for (int64_t ox = 0; ox < g->wo; ox++) {
                        int64_t ix = ox * g->s - g->p + kx * g->d;
                        if (ix >= 0 && ix < g->w) dst[iy * g->w + ix] += src[oy * g->wo + ox];
                    }
                }
            }
    }
}

static geom conv_geom(const hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0], *w = n->src[1];
    geom g = {x->shape[1], x->shape[2], x->shape[3], w->shape[2], w->shape[3],
              n->ip[0],    n->ip[1],    n->ip[2],    n->shape[2], n->shape[3]};
    return g;
}

/* Transposed convolution = the adjoint of a convolution from y (the image)
 * to x (the positions). */
static geom deconv_geom(const hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0], *w = n->src[1];
    geom g = {w->shape[1], n->shape[2], n->shape[3], w->shape[2], w->shape[3],
              n->ip[0],    n->ip[1],    1,           x->shape[2], x->shape[3]};
    return g;
}

static void add_bias(float *y, const float *b, int64_t n, int64_t c, int64_t hw)
{
#pragma omp parallel for collapse(2) schedule(static) if (n * c * hw > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < c; k++) {
            float *p = y + (i * c + k) * hw;
            for (int64_t j = 0; j < hw; j++) p[j] += b[k];
        }
}

static void bias_grad(const float *dy, float *db, int64_t n, int64_t c, int64_t hw)
{
    for (int64_t k = 0; k < c; k++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            const float *p = dy + (i * c + k) * hw;
            for (int64_t j = 0; j < hw; j++) s += p[j];
        }
        db[k] += (float)s;
    }
}

static void conv_fwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    const hv_nn_tensor *x = n->src[0], *w = n->src[1];
    geom g = conv_geom(n);
    const int64_t o = w->shape[0], ckk = g.c * g.kh * g.kw, hw = g.ho * g.wo;
    float *col = ex->work;
    for (int64_t i = 0; i < x->shape[0]; i++) {
        im2col(&g, x->data + i * g.c * g.h * g.w, col);
        ex->gemm(0, 0, o, hw, ckk, 1.0f, w->data, ckk, col, hw, 0.0f, n->data + i * o * hw, hw);
    }
    if (n->nsrc > 2) add_bias(n->data, n->src[2]->data, x->shape[0], o, hw);
    if (n->ip[4]) hv__nn_apply_act(n->data, n->numel, n->ip[4], n->fp[2]);
}

void hv__nn_apply_act(float *y, int64_t cnt, int op, float a)
{
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
    for (int64_t i = 0; i < cnt; i++) {
        float x = y[i];
        if (op == HV_NN_OP_ELU)
            y[i] = x > 0 ? x : a * expm1f(x);
        else if (op == HV_NN_OP_RELU || op == HV_NN_OP_LEAKY_RELU)
            y[i] = x > 0 ? x : a * x;
        else
            y[i] = 1.0f / (1.0f + expf(-x));
    }
}

static void conv_bwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    hv_nn_tensor *x = n->src[0], *w = n->src[1];
    geom g = conv_geom(n);
    const int64_t o = w->shape[0], ckk = g.c * g.kh * g.kw, hw = g.ho * g.wo;
    float *col = ex->work, *dcol = ex->work + ckk * hw;
    for (int64_t i = 0; i < x->shape[0]; i++) {
        const float *dy = n->grad + i * o * hw;
        if (x->grad) {
            ex->gemm(1, 0, ckk, hw, o, 1.0f, w->data, ckk, dy, hw, 0.0f, dcol, hw);
            col2im_add(&g, dcol, x->grad + i * g.c * g.h * g.w);
        }
        if (w->grad) {
            im2col(&g, x->data + i * g.c * g.h * g.w, col);
            ex->gemm(0, 1, o, ckk, hw, 1.0f, dy, hw, col, hw, 1.0f, w->grad, ckk);
        }
    }
    if (n->nsrc > 2 && n->src[2]->grad) bias_grad(n->grad, n->src[2]->grad, x->shape[0], o, hw);
}

static void deconv_fwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    const hv_nn_tensor *x = n->src[0], *w = n->src[1];
    geom g = deconv_geom(n);
    const int64_t cin = w->shape[0], ckk = g.c * g.kh * g.kw, hw = g.ho * g.wo;
    const int64_t ohw = g.h * g.w;
    float *col = ex->work;
    memset(n->data, 0, (size_t)n->numel * sizeof(float));
    for (int64_t i = 0; i < x->shape[0]; i++) {
        ex->gemm(1, 0, ckk, hw, cin, 1.0f, w->data, ckk, x->data + i * cin * hw, hw, 0.0f, col, hw);
        col2im_add(&g, col, n->data + i * g.c * ohw);
    }
    if (n->nsrc > 2) add_bias(n->data, n->src[2]->data, x->shape[0], g.c, ohw);
}

static void deconv_bwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    hv_nn_tensor *x = n->src[0], *w = n->src[1];
    geom g = deconv_geom(n);
    const int64_t cin = w->shape[0], ckk = g.c * g.kh * g.kw, hw = g.ho * g.wo;
    const int64_t ohw = g.h * g.w;
    float *col = ex->work;
    for (int64_t i = 0; i < x->shape[0]; i++) {
        im2col(&g, n->grad + i * g.c * ohw, col);
        if (x->grad)
            ex->gemm(0, 0, cin, hw, ckk, 1.0f, w->data, ckk, col, hw, 1.0f,
                     x->grad + i * cin * hw, hw);
        if (w->grad)
            ex->gemm(0, 1, cin, ckk, hw, 1.0f, x->data + i * cin * hw, hw, col, hw, 1.0f,
                     w->grad, ckk);
    }
    if (n->nsrc > 2 && n->src[2]->grad) bias_grad(n->grad, n->src[2]->grad, x->shape[0], g.c, ohw);
}

/* --------------------------------------------------------- spectral norm */

/* PyTorch's normalize(): x / max(||x||, eps). */
static void sn_normalise(float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    double d = fmax(sqrt(s), 1e-12);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] / d);
}

static void sn_fwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    const hv_nn_tensor *w = n->src[0];
    float *u = n->src[1]->data, *v = n->src[2]->data;
    const int64_t h = w->shape[0], wd = w->numel / h;
    const float *W = w->data;
    if (ex->training) {
        /* one power iteration, updating the persistent vectors */
        for (int64_t j = 0; j < wd; j++) {
            double s = 0;
            for (int64_t i = 0; i < h; i++) s += (double)W[i * wd + j] * u[i];
            v[j] = (float)s;
        }
        sn_normalise(v, wd);
        for (int64_t i = 0; i < h; i++) {
            double s = 0;
            for (int64_t j = 0; j < wd; j++) s += (double)W[i * wd + j] * v[j];
            u[i] = (float)s;
        }
        sn_normalise(u, h);
        n->src[1]->param->version++;
        n->src[2]->param->version++;
    }
    double sigma = 0;
    for (int64_t i = 0; i < h; i++) {
        double s = 0;
        for (int64_t j = 0; j < wd; j++) s += (double)W[i * wd + j] * v[j];
        sigma += u[i] * s;
    }
    n->aux[0] = (float)sigma;
    const float inv = (float)(1.0 / sigma);
    for (int64_t k = 0; k < w->numel; k++) n->data[k] = W[k] * inv;
}

static void sn_bwd(hv_nn_tensor *n)
{
    hv_nn_tensor *w = n->src[0];
    if (!w->grad) return;
    const float *u = n->src[1]->data, *v = n->src[2]->data;
    const int64_t h = w->shape[0], wd = w->numel / h;
    const double sigma = n->aux[0];
    /* out = W / sigma, sigma = u^T W v with u, v constant:
     * dW = G / sigma - (sum(G .* W) / sigma^2) u v^T */
    double gw = 0;
    for (int64_t k = 0; k < w->numel; k++) gw += (double)n->grad[k] * w->data[k];
    const double c = gw / (sigma * sigma);
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < wd; j++)
            w->grad[i * wd + j] += (float)(n->grad[i * wd + j] / sigma - c * u[i] * v[j]);
}

/* ------------------------------------------------------------- eltwise */

static void eltwise_fwd(hv_nn_tensor *n)
{
    const float *x = n->src[0]->data;
    float *y = n->data;
    const float a = n->fp[0], b = n->fp[1];
    const int64_t cnt = n->numel;
    switch (n->op) {
    case HV_NN_OP_ELU:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = x[i] > 0 ? x[i] : a * expm1f(x[i]);
        break;
    case HV_NN_OP_RELU:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case HV_NN_OP_LEAKY_RELU:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = x[i] > 0 ? x[i] : a * x[i];
        break;
    case HV_NN_OP_SIGMOID:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case HV_NN_OP_TANH:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = tanhf(x[i]);
        break;
    case HV_NN_OP_CLAMP:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = x[i] < a ? a : (x[i] > b ? b : x[i]);
        break;
    case HV_NN_OP_SCALE:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = a * x[i] + b;
        break;
    default:
        break;
    }
}

static void eltwise_bwd(hv_nn_tensor *n)
{
    hv_nn_tensor *xs = n->src[0];
    if (!xs->grad) return;
    const float *x = xs->data, *y = n->data, *dy = n->grad;
    float *dx = xs->grad;
    const float a = n->fp[0], b = n->fp[1];
    const int64_t cnt = n->numel;
    switch (n->op) {
    case HV_NN_OP_ELU:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) dx[i] += x[i] > 0 ? dy[i] : dy[i] * (y[i] + a);
        break;
    case HV_NN_OP_RELU:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) dx[i] += x[i] > 0 ? dy[i] : 0.0f;
        break;
    case HV_NN_OP_LEAKY_RELU:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) dx[i] += x[i] > 0 ? dy[i] : a * dy[i];
        break;
    case HV_NN_OP_SIGMOID:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
        break;
    case HV_NN_OP_TANH:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
        break;
    case HV_NN_OP_CLAMP:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) dx[i] += (x[i] >= a && x[i] <= b) ? dy[i] : 0.0f;
        break;
    case HV_NN_OP_SCALE:
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) dx[i] += a * dy[i];
        break;
    default:
        break;
    }
}

static void binary_fwd(hv_nn_tensor *n)
{
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    float *y = n->data;
    const int64_t cnt = n->numel;
    if (n->op == HV_NN_OP_ADD) {
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = a[i] + b[i];
    } else if (n->op == HV_NN_OP_SUB) {
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = a[i] - b[i];
    } else {
#pragma omp parallel for schedule(static) if (cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = a[i] * b[i];
    }
}

static void binary_bwd(hv_nn_tensor *n)
{
    hv_nn_tensor *as = n->src[0], *bs = n->src[1];
    const float *dy = n->grad;
    const int64_t cnt = n->numel;
    for (int64_t i = 0; i < cnt; i++) {
        if (n->op == HV_NN_OP_MUL) {
            if (as->grad) as->grad[i] += dy[i] * bs->data[i];
            if (bs->grad) bs->grad[i] += dy[i] * as->data[i];
        } else {
            if (as->grad) as->grad[i] += dy[i];
            if (bs->grad) bs->grad[i] += n->op == HV_NN_OP_SUB ? -dy[i] : dy[i];
        }
    }
}

/* ------------------------------------------------------------- resampling */

static void resample(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    const int64_t nc = n->shape[0] * n->shape[1], ho = n->shape[2], wo = n->shape[3];
    const int64_t hi = x->shape[2], wi = x->shape[3], f = n->ip[0];
    const int up = n->op == HV_NN_OP_UPSAMPLE;
    if (backward && !x->grad) return;
    /* parallel over planes: every output and input element of a plane p
     * belongs to p only, so the backward accumulation has no race */
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t p = 0; p < nc; p++) {
        const int64_t xo = p * hi * wi, yo = p * ho * wo;
        if (up) {
            for (int64_t i = 0; i < hi; i++)
                for (int64_t r = 0; r < f; r++) {
                    float *yr = (backward ? n->grad : n->data) + yo + (i * f + r) * wo;
                    float *xr = (backward ? x->grad : x->data) + xo + i * wi;
                    for (int64_t j = 0; j < wi; j++)
                        for (int64_t c = 0; c < f; c++) {
                            if (backward)
                                xr[j] += yr[j * f + c];
                            else
                                yr[j * f + c] = xr[j];
                        }
                }
        } else {
            for (int64_t i = 0; i < ho; i++) {
                float *yr = (backward ? n->grad : n->data) + yo + i * wo;
                float *xr = (backward ? x->grad : x->data) + xo + i * f * wi;
                for (int64_t j = 0; j < wo; j++) {
                    if (backward)
                        xr[j * f] += yr[j];
                    else
                        yr[j] = xr[j * f];
                }
            }
        }
    }
}

/* ------------------------------------------------------- concat/pad/slice */

static void concat(hv_nn_tensor *n, int backward)
{
    int64_t inner = 1;
    for (int d = 2; d < n->ndim; d++) inner *= n->shape[d];
    const int64_t outer = n->shape[0], ctot = n->shape[1];
    int64_t c0 = 0;
    for (int s = 0; s < n->nsrc; s++) {
        hv_nn_tensor *x = n->src[s];
        const int64_t cs = x->shape[1];
        if (!backward || x->grad)
            for (int64_t o = 0; o < outer; o++) {
                float *yp = (backward ? n->grad : n->data) + (o * ctot + c0) * inner;
                if (backward) {
                    float *dx = x->grad + o * cs * inner;
                    for (int64_t k = 0; k < cs * inner; k++) dx[k] += yp[k];
                } else {
                    memcpy(yp, x->data + o * cs * inner, (size_t)(cs * inner) * sizeof(float));
                }
            }
        c0 += cs;
    }
}

static void pad(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    const int64_t nc = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    const int64_t ho = n->shape[2], wo = n->shape[3], t = n->ip[0], l = n->ip[2];
    if (backward && !x->grad) return;
    if (!backward) memset(n->data, 0, (size_t)n->numel * sizeof(float));
    for (int64_t p = 0; p < nc; p++)
        for (int64_t i = 0; i < h; i++) {
            int64_t yo = p * ho * wo + (i + t) * wo + l, xo = p * h * w + i * w;
            if (backward)
                for (int64_t j = 0; j < w; j++) x->grad[xo + j] += n->grad[yo + j];
            else
                memcpy(n->data + yo, x->data + xo, (size_t)w * sizeof(float));
        }
}

static void slice(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    const int dim = n->ip[0];
    const int64_t start = n->ip[1], len = n->ip[2];
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < dim; d++) outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
    const int64_t xd = x->shape[dim];
    if (backward && !x->grad) return;
    for (int64_t o = 0; o < outer; o++) {
        int64_t xo = (o * xd + start) * inner, yo = o * len * inner;
        if (backward)
            for (int64_t k = 0; k < len * inner; k++) x->grad[xo + k] += n->grad[yo + k];
        else
            memcpy(n->data + yo, x->data + xo, (size_t)(len * inner) * sizeof(float));
    }
}

/* ------------------------------------------------------------ batch norm */

/* Training statistics go through ex->work (c + 1 floats forward, 2c
 * backward) so that a synchronised graph (ex->reduce set) can sum them over
 * its participants between the passes: forward sums the per-channel sums and
 * the item count, then the per-channel centred sums of squares (two passes,
 * as the unsynchronised kernel, to avoid the cancellation of sum(x^2) -
 * m mu^2); backward sums dy and dy * xhat. Without a reducer the same
 * arithmetic runs with no call, so one participant with a summing reducer
 * gives bit for bit what no reducer gives. aux = mean, 1/std (c each) and
 * the global item count (1).
 *
 * Layouts: plain NCHW or NCDHW (hw is then D*H*W), or the backend's
 * blocked nChw{B}c (x->blk, 4-D only, see
 * nn_backend.h). Both are walked as groups of B channels (B = 1 for plain):
 * channel k = g*B + b of item i, pixel j sits at ((i*G + g)*hw + j)*B + b,
 * which for B = 1 is the plain (i*c + k)*hw + j. Each channel's sums still
 * run over i then j, so the plain results are those of the one-channel loop
 * and the blocked ones equal them bit for bit. */
#define BN_MAXB 16
static hv_status bn_fwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    const hv_nn_tensor *x = n->src[0];
    const float *gam = n->src[1]->data, *bet = n->src[2]->data;
    float *rm = n->src[3]->data, *rv = n->src[4]->data;
    /* hw: every spatial position, H*W (NCHW) or D*H*W (NCDHW) */
    const int64_t nb = x->shape[0], c = x->shape[1], hw = x->numel / (nb * c);
    const int64_t B = x->blk > 0 ? x->blk : 1, G = c / B;
    const double mom = n->fp[0], eps = n->fp[1];
    double m = (double)nb * hw;
    float *mean = n->aux, *istd = n->aux + c, *red = ex->work;
    const int sync = ex->training && ex->reduce;
    if (B > BN_MAXB || c % B || n->blk != x->blk)
        return hv_error_set(HV_ERR_INTERNAL, "batch norm: unsupported layout (block %d)", x->blk);
    if (ex->training) {
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
        for (int64_t g = 0; g < G; g++) {
            double s[BN_MAXB] = {0};
            for (int64_t i = 0; i < nb; i++) {
                const float *p = x->data + (i * G + g) * hw * B;
                for (int64_t j = 0; j < hw; j++)
                    for (int64_t b = 0; b < B; b++) s[b] += p[j * B + b];
            }
            for (int64_t b = 0; b < B; b++) red[g * B + b] = (float)s[b];
        }
        red[c] = (float)m;
        if (sync && ex->reduce(ex->reduce_ctx, red, (size_t)c + 1) != 0)
            return hv_error_set(HV_ERR_IO, "batch norm: the reducer failed (sums)");
        m = red[c];
        for (int64_t k = 0; k < c; k++) mean[k] = (float)(red[k] / m);
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
        for (int64_t g = 0; g < G; g++) {
            double s2[BN_MAXB] = {0}, mu[BN_MAXB];
            for (int64_t b = 0; b < B; b++) mu[b] = mean[g * B + b];
            for (int64_t i = 0; i < nb; i++) {
                const float *p = x->data + (i * G + g) * hw * B;
                for (int64_t j = 0; j < hw; j++)
                    for (int64_t b = 0; b < B; b++)
                        s2[b] += (p[j * B + b] - mu[b]) * (p[j * B + b] - mu[b]);
            }
            for (int64_t b = 0; b < B; b++) red[g * B + b] = (float)s2[b];
        }
        if (sync && ex->reduce(ex->reduce_ctx, red, (size_t)c) != 0)
            return hv_error_set(HV_ERR_IO, "batch norm: the reducer failed (squares)");
        for (int64_t k = 0; k < c; k++) {
            double var = red[k] / m;
            rm[k] = (float)((1 - mom) * rm[k] + mom * mean[k]);
            rv[k] = (float)((1 - mom) * rv[k] + mom * (m > 1 ? red[k] / (m - 1) : var));
            istd[k] = (float)(1.0 / sqrt(var + eps));
        }
        n->src[3]->param->version++;
        n->src[4]->param->version++;
    } else {
        for (int64_t k = 0; k < c; k++) {
            mean[k] = rm[k];
            istd[k] = (float)(1.0 / sqrt((double)rv[k] + eps));
        }
    }
    n->aux[2 * c] = (float)m;
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            const float *p = x->data + (i * G + g) * hw * B;
            float *q = n->data + (i * G + g) * hw * B;
            const float *ga = gam + g * B, *be = bet + g * B, *mu = mean + g * B, *is = istd + g * B;
            for (int64_t j = 0; j < hw; j++)
                for (int64_t b = 0; b < B; b++)
                    q[j * B + b] = ga[b] * (p[j * B + b] - mu[b]) * is[b] + be[b];
        }
    return HV_OK;
}

static hv_status bn_bwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    hv_nn_tensor *x = n->src[0], *gs = n->src[1], *bs = n->src[2];
    const int64_t nb = x->shape[0], c = x->shape[1], hw = x->numel / (nb * c);
    const int64_t B = x->blk > 0 ? x->blk : 1, G = c / B;
    const double m = n->aux[2 * c];
    const float *mean = n->aux, *istd = n->aux + c;
    float *red = ex->work; /* sums of dy (c), then of dy * xhat (c) */
    if (B > BN_MAXB || c % B || n->blk != x->blk)
        return hv_error_set(HV_ERR_INTERNAL, "batch norm: unsupported layout (block %d)", x->blk);
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t g = 0; g < G; g++) {
        double sdy[BN_MAXB] = {0}, sdyx[BN_MAXB] = {0};
        const float *mu = mean + g * B, *is = istd + g * B;
        for (int64_t i = 0; i < nb; i++) {
            const float *p = x->data + (i * G + g) * hw * B, *d = n->grad + (i * G + g) * hw * B;
            for (int64_t j = 0; j < hw; j++)
                for (int64_t b = 0; b < B; b++) {
                    sdy[b] += d[j * B + b];
                    sdyx[b] += d[j * B + b] * (p[j * B + b] - mu[b]) * is[b];
                }
        }
        for (int64_t b = 0; b < B; b++) {
            const int64_t k = g * B + b;
            /* the parameter gradients are this participant's part */
            if (gs->grad) gs->grad[k] += (float)sdyx[b];
            if (bs->grad) bs->grad[k] += (float)sdy[b];
            red[k] = (float)sdy[b];
            red[c + k] = (float)sdyx[b];
        }
    }
    if (!x->grad) return HV_OK;
    if (ex->training && ex->reduce && ex->reduce(ex->reduce_ctx, red, 2 * (size_t)c) != 0)
        return hv_error_set(HV_ERR_IO, "batch norm: the reducer failed (gradient sums)");
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t g = 0; g < G; g++) {
        double gi[BN_MAXB], sdy[BN_MAXB], sdyx[BN_MAXB];
        const float *mu = mean + g * B, *is = istd + g * B;
        for (int64_t b = 0; b < B; b++) {
            const int64_t k = g * B + b;
            gi[b] = gs->data[k] * istd[k];
            sdy[b] = red[k];
            sdyx[b] = red[c + k];
        }
        for (int64_t i = 0; i < nb; i++) {
            const float *p = x->data + (i * G + g) * hw * B, *d = n->grad + (i * G + g) * hw * B;
            float *dx = x->grad + (i * G + g) * hw * B;
            for (int64_t j = 0; j < hw; j++)
                for (int64_t b = 0; b < B; b++) {
                    const int64_t e = j * B + b;
                    if (ex->training) {
                        double xh = (p[e] - mu[b]) * is[b];
                        dx[e] += (float)(gi[b] * (d[e] - sdy[b] / m - xh * sdyx[b] / m));
                    } else {
                        dx[e] += (float)(gi[b] * d[e]);
                    }
                }
        }
    }
    return HV_OK;
}

/* ------------------------------------------------------- gap/linear/softmax */

static void gap(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    /* hw: H*W or D*H*W (the output is N, C, 1, 1 or N, C, 1, 1, 1) */
    const int64_t nc = n->numel, hw = x->numel / nc;
    if (backward && !x->grad) return;
    for (int64_t p = 0; p < nc; p++) {
        if (backward) {
            float g = n->grad[p] / (float)hw;
            for (int64_t j = 0; j < hw; j++) x->grad[p * hw + j] += g;
        } else {
            double s = 0;
            for (int64_t j = 0; j < hw; j++) s += x->data[p * hw + j];
            n->data[p] = (float)(s / (double)hw);
        }
    }
}

static void linear_fwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    const hv_nn_tensor *x = n->src[0], *w = n->src[1];
    const int64_t nb = n->shape[0], mo = n->shape[1], k = w->shape[1];
    ex->gemm(0, 1, nb, mo, k, 1.0f, x->data, k, w->data, k, 0.0f, n->data, mo);
    if (n->nsrc > 2)
        for (int64_t i = 0; i < nb; i++)
            for (int64_t j = 0; j < mo; j++) n->data[i * mo + j] += n->src[2]->data[j];
}

static void linear_bwd(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    hv_nn_tensor *x = n->src[0], *w = n->src[1];
    const int64_t nb = n->shape[0], mo = n->shape[1], k = w->shape[1];
    if (x->grad) ex->gemm(0, 0, nb, k, mo, 1.0f, n->grad, mo, w->data, k, 1.0f, x->grad, k);
    if (w->grad) ex->gemm(1, 0, mo, k, nb, 1.0f, n->grad, mo, x->data, k, 1.0f, w->grad, k);
    if (n->nsrc > 2 && n->src[2]->grad)
        for (int64_t i = 0; i < nb; i++)
            for (int64_t j = 0; j < mo; j++) n->src[2]->grad[j] += n->grad[i * mo + j];
}

static void softmax(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    const int64_t outer = n->shape[0], c = n->shape[1], inner = n->numel / (outer * c);
    if (backward && !x->grad) return;
#pragma omp parallel for collapse(2) schedule(static) if (n->numel > PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            const int64_t base = o * c * inner + q;
            if (backward) {
                double s = 0;
                for (int64_t k = 0; k < c; k++)
                    s += (double)n->grad[base + k * inner] * n->data[base + k * inner];
                for (int64_t k = 0; k < c; k++) {
                    int64_t i = base + k * inner;
                    x->grad[i] += n->data[i] * (float)(n->grad[i] - s);
                }
            } else {
                float mx = x->data[base];
                for (int64_t k = 1; k < c; k++)
                    if (x->data[base + k * inner] > mx) mx = x->data[base + k * inner];
                double s = 0;
                for (int64_t k = 0; k < c; k++) {
                    float e = expf(x->data[base + k * inner] - mx);
                    n->data[base + k * inner] = e;
                    s += e;
                }
                const float inv = (float)(1.0 / s);
                for (int64_t k = 0; k < c; k++) n->data[base + k * inner] *= inv;
            }
        }
}

/* ------------------------------------------------------ reductions, losses */

static void reduce_fwd(hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0], *t = n->nsrc > 1 ? n->src[1] : NULL;
    const int64_t cnt = x->numel;
    const float *a = x->data, *b = t ? t->data : NULL;
    double s = 0;
    switch (n->op) {
    case HV_NN_OP_SUM:
    case HV_NN_OP_MEAN:
        for (int64_t i = 0; i < cnt; i++) s += a[i];
        break;
    case HV_NN_OP_BCE_LOGITS:
        for (int64_t i = 0; i < cnt; i++)
            s += fmax(a[i], 0.0) - (double)a[i] * b[i] + log1p(exp(-fabs((double)a[i])));
        break;
    case HV_NN_OP_L1:
        for (int64_t i = 0; i < cnt; i++) s += fabs((double)a[i] - b[i]);
        break;
    case HV_NN_OP_MSE:
        for (int64_t i = 0; i < cnt; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        break;
    case HV_NN_OP_DICE: {
        const int64_t nb = x->shape[0], per = cnt / nb;
        for (int64_t i = 0; i < nb; i++) {
            double in = 0, sp = 0, st = 0;
            for (int64_t k = i * per; k < (i + 1) * per; k++) {
                in += (double)a[k] * b[k];
                sp += a[k];
                st += b[k];
            }
            s += (2 * in + 1e-5) / (sp + st + 1e-5);
        }
        n->data[0] = (float)(s / (double)nb);
        return;
    }
    default:
        break;
    }
    n->data[0] = (float)(n->op == HV_NN_OP_SUM ? s : s / (double)cnt);
}

static void reduce_bwd(hv_nn_tensor *n)
{
    hv_nn_tensor *x = n->src[0], *t = n->nsrc > 1 ? n->src[1] : NULL;
    const int64_t cnt = x->numel;
    const float *a = x->data, *b = t ? t->data : NULL;
    float *da = x->grad, *db = t ? t->grad : NULL;
    const double g = n->grad[0], gm = g / (double)cnt;
    switch (n->op) {
    case HV_NN_OP_SUM:
    case HV_NN_OP_MEAN: {
        const float d = (float)(n->op == HV_NN_OP_SUM ? g : gm);
        if (da)
            for (int64_t i = 0; i < cnt; i++) da[i] += d;
        break;
    }
    case HV_NN_OP_BCE_LOGITS:
        for (int64_t i = 0; i < cnt; i++) {
            if (da) da[i] += (float)(gm * (1.0 / (1.0 + exp(-(double)a[i])) - b[i]));
            if (db) db[i] += (float)(-gm * a[i]);
        }
        break;
    case HV_NN_OP_L1:
        for (int64_t i = 0; i < cnt; i++) {
            double sg = a[i] > b[i] ? 1.0 : (a[i] < b[i] ? -1.0 : 0.0);
            if (da) da[i] += (float)(gm * sg);
            if (db) db[i] -= (float)(gm * sg);
        }
        break;
    case HV_NN_OP_MSE:
        for (int64_t i = 0; i < cnt; i++) {
            double d = 2.0 * ((double)a[i] - b[i]) * gm;
            if (da) da[i] += (float)d;
            if (db) db[i] -= (float)d;
        }
        break;
    case HV_NN_OP_DICE: {
        const int64_t nb = x->shape[0], per = cnt / nb;
        for (int64_t i = 0; i < nb; i++) {
            double in = 0, sp = 0, st = 0;
            for (int64_t k = i * per; k < (i + 1) * per; k++) {
                in += (double)a[k] * b[k];
                sp += a[k];
                st += b[k];
            }
            const double den = sp + st + 1e-5, num = 2 * in + 1e-5, gi = g / (double)nb;
            for (int64_t k = i * per; k < (i + 1) * per; k++) {
                if (da) da[k] += (float)(gi * (2.0 * b[k] * den - num) / (den * den));
                if (db) db[k] += (float)(gi * (2.0 * a[k] * den - num) / (den * den));
            }
        }
        break;
    }
    default:
        break;
    }
}

/* ---------------------------------------------------------------- Sobel */

static const float sobel_gx[3][3] = {{-1, 0, 1}, {-2, 0, 2}, {-1, 0, 1}};
static const float sobel_gy[3][3] = {{1, 2, 1}, {0, 0, 0}, {-1, -2, -1}};

static int64_t clampi(int64_t v, int64_t hi) { return v < 0 ? 0 : (v > hi ? hi : v); }

static void sobel(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    const int64_t nb = x->shape[0], h = x->shape[2], w = x->shape[3];
    if (backward && !x->grad) return;
    for (int64_t b = 0; b < nb; b++) {
        const float *img = x->data + b * h * w;
        for (int64_t i = 0; i < h; i++)
            for (int64_t j = 0; j < w; j++) {
                float gx = 0, gy = 0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        float v = img[clampi(i + ky - 1, h - 1) * w + clampi(j + kx - 1, w - 1)];
                        gx += sobel_gx[ky][kx] * v;
                        gy += sobel_gy[ky][kx] * v;
                    }
                float mag = sqrtf(gx * gx + gy * gy);
                int64_t o = b * h * w + i * w + j;
                if (!backward) {
                    n->data[o] = mag < 1.0f ? mag : 1.0f;
                    continue;
                }
                /* clipped or zero magnitude: no gradient */
                if (!(mag > 0.0f && mag < 1.0f)) continue;
                float dgx = n->grad[o] * gx / mag, dgy = n->grad[o] * gy / mag;
                float *dimg = x->grad + b * h * w;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        dimg[clampi(i + ky - 1, h - 1) * w + clampi(j + kx - 1, w - 1)] +=
                            dgx * sobel_gx[ky][kx] + dgy * sobel_gy[ky][kx];
            }
    }
}

/* ------------------------------------------------------ pooling, SE scale */

/* aux holds the flat in-plane index of each output's maximum (exact in
 * float up to 2^24 elements per plane). */
static void maxpool(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    const int64_t nc = n->shape[0] * n->shape[1], ho = n->shape[2], wo = n->shape[3];
    const int64_t h = x->shape[2], w = x->shape[3], k = n->ip[0], st = n->ip[1], p = n->ip[2];
    if (backward && !x->grad) return;
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t q = 0; q < nc; q++) {
        const float *xp = x->data + q * h * w;
        for (int64_t i = 0; i < ho; i++)
            for (int64_t j = 0; j < wo; j++) {
                const int64_t o = q * ho * wo + i * wo + j;
                if (backward) {
                    x->grad[q * h * w + (int64_t)n->aux[o]] += n->grad[o];
                    continue;
                }
                float best = -INFINITY;
                int64_t arg = -1;
                for (int64_t ky = 0; ky < k; ky++) {
                    int64_t y = i * st - p + ky;
                    if (y < 0 || y >= h) continue;
                    for (int64_t kx = 0; kx < k; kx++) {
                        int64_t xx = j * st - p + kx;
                        if (xx < 0 || xx >= w) continue;
                        if (arg < 0 || xp[y * w + xx] > best) {
                            best = xp[y * w + xx];
                            arg = y * w + xx;
                        }
                    }
                }
                n->data[o] = best;
                n->aux[o] = (float)arg;
            }
    }
}

static void channel_mul(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0], *sc = n->src[1];
    /* hw: H*W or D*H*W */
    const int64_t nc = n->shape[0] * n->shape[1], hw = n->numel / nc;
    for (int64_t q = 0; q < nc; q++) {
        const float *xp = x->data + q * hw;
        if (!backward) {
            float *yp = n->data + q * hw;
            for (int64_t j = 0; j < hw; j++) yp[j] = xp[j] * sc->data[q];
            continue;
        }
        const float *dy = n->grad + q * hw;
        if (x->grad)
            for (int64_t j = 0; j < hw; j++) x->grad[q * hw + j] += dy[j] * sc->data[q];
        if (sc->grad) {
            double acc = 0;
            for (int64_t j = 0; j < hw; j++) acc += (double)dy[j] * xp[j];
            sc->grad[q] += (float)acc;
        }
    }
}

/* ------------------------------------------------------------- dispatch */

size_t hv__nn_ref_aux_size(const hv_nn_tensor *n, int training)
{
    (void)training;
    switch (n->op) {
    case HV_NN_OP_SPECTRAL_NORM: return 1;
    case HV_NN_OP_BATCH_NORM: return 2 * (size_t)n->shape[1] + 1;
    case HV_NN_OP_CTX_ATTN: return hv__nn_ca_aux_size(n);
    case HV_NN_OP_MAXPOOL:
    case HV_NN_OP_MAXPOOL3D: return (size_t)n->numel;
    default: return 0;
    }
}

size_t hv__nn_ref_work_size(const hv_nn_tensor *n, int training)
{
    if (n->op == HV_NN_OP_CONV2D) {
        geom g = conv_geom(n);
        return (size_t)(g.c * g.kh * g.kw * g.ho * g.wo) * (training ? 2 : 1);
    }
    if (n->op == HV_NN_OP_DECONV2D) {
        geom g = deconv_geom(n);
        return (size_t)(g.c * g.kh * g.kw * g.ho * g.wo);
    }
    if (n->op == HV_NN_OP_CTX_ATTN) return hv__nn_ca_work_size(n);
    if (n->op == HV_NN_OP_BATCH_NORM) return 2 * (size_t)n->shape[1] + 1;
    return 0;
}

hv_status hv__nn_ref_forward(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    /* concat, upsample, gap on the CPU backend's NHWC (ref_ops_layout.c) */
    if (hv__nn_layout_kernel(n)) return hv__nn_layout_forward(n);
    switch (n->op) {
    case HV_NN_OP_INPUT:
    case HV_NN_OP_PARAM: break;
    case HV_NN_OP_CONV2D: conv_fwd(n, ex); break;
    case HV_NN_OP_DECONV2D: deconv_fwd(n, ex); break;
    case HV_NN_OP_SPECTRAL_NORM: sn_fwd(n, ex); break;
    case HV_NN_OP_ELU:
    case HV_NN_OP_RELU:
    case HV_NN_OP_LEAKY_RELU:
    case HV_NN_OP_SIGMOID:
    case HV_NN_OP_TANH:
    case HV_NN_OP_CLAMP:
    case HV_NN_OP_SCALE: eltwise_fwd(n); break;
    case HV_NN_OP_UPSAMPLE:
    case HV_NN_OP_DOWNSAMPLE: resample(n, 0); break;
    case HV_NN_OP_CONCAT: concat(n, 0); break;
    case HV_NN_OP_PAD: pad(n, 0); break;
    case HV_NN_OP_SLICE: slice(n, 0); break;
    case HV_NN_OP_BATCH_NORM: return bn_fwd(n, ex);
    case HV_NN_OP_GAP: gap(n, 0); break;
    case HV_NN_OP_LINEAR: linear_fwd(n, ex); break;
    case HV_NN_OP_SOFTMAX: softmax(n, 0); break;
    case HV_NN_OP_ADD:
    case HV_NN_OP_SUB:
    case HV_NN_OP_MUL: binary_fwd(n); break;
    case HV_NN_OP_SUM:
    case HV_NN_OP_MEAN:
    case HV_NN_OP_BCE_LOGITS:
    case HV_NN_OP_L1:
    case HV_NN_OP_MSE:
    case HV_NN_OP_DICE: reduce_fwd(n); break;
    case HV_NN_OP_SOBEL: sobel(n, 0); break;
    case HV_NN_OP_CTX_ATTN: return hv__nn_ca_forward(n, ex);
    case HV_NN_OP_RESHAPE:
        memcpy(n->data, n->src[0]->data, (size_t)n->numel * sizeof(float));
        break;
    case HV_NN_OP_MAXPOOL: maxpool(n, 0); break;
    case HV_NN_OP_CHANNEL_MUL: channel_mul(n, 0); break;
    case HV_NN_OP_CONV3D: hv__nn_conv3d_forward(n); break;
    case HV_NN_OP_MAXPOOL3D: hv__nn_maxpool3d_forward(n); break;
    case HV_NN_OP_REFLECT_PAD: hv__nn_reflect_pad_forward(n); break;
    case HV_NN_OP_UPSAMPLE_BILINEAR: hv__nn_upsample_bilinear_forward(n); break;
    case HV_NN_OP_AOT_NORM: hv__nn_aot_norm_forward(n); break;
    case HV_NN_OP_L2_NORMALIZE: hv__nn_l2_normalize_forward(n); break;
    case HV_NN_OP_SUPCON: return hv__nn_supcon_forward(n);
    case HV_NN_OP_CROSS_ENTROPY: return hv__nn_cross_entropy_forward(n);
    default:
        return hv_error_set(HV_ERR_INTERNAL, "nn ref: unknown op %d", (int)n->op);
    }
    return HV_OK;
}

hv_status hv__nn_ref_backward(hv_nn_tensor *n, const hv_nn_exec *ex)
{
    if (hv__nn_layout_kernel(n))
        return hv_error_set(HV_ERR_INTERNAL, "nn backward: %s holds an inference-only layout "
                            "(block %d)", n->name, n->blk ? n->blk : n->src[0]->blk);
    switch (n->op) {
    case HV_NN_OP_INPUT:
    case HV_NN_OP_PARAM: break;
    case HV_NN_OP_CONV2D: conv_bwd(n, ex); break;
    case HV_NN_OP_DECONV2D: deconv_bwd(n, ex); break;
    case HV_NN_OP_SPECTRAL_NORM: sn_bwd(n); break;
    case HV_NN_OP_ELU:
    case HV_NN_OP_RELU:
    case HV_NN_OP_LEAKY_RELU:
    case HV_NN_OP_SIGMOID:
    case HV_NN_OP_TANH:
    case HV_NN_OP_CLAMP:
    case HV_NN_OP_SCALE: eltwise_bwd(n); break;
    case HV_NN_OP_UPSAMPLE:
    case HV_NN_OP_DOWNSAMPLE: resample(n, 1); break;
    case HV_NN_OP_CONCAT: concat(n, 1); break;
    case HV_NN_OP_PAD: pad(n, 1); break;
    case HV_NN_OP_SLICE: slice(n, 1); break;
    case HV_NN_OP_BATCH_NORM: return bn_bwd(n, ex);
    case HV_NN_OP_GAP: gap(n, 1); break;
    case HV_NN_OP_LINEAR: linear_bwd(n, ex); break;
    case HV_NN_OP_SOFTMAX: softmax(n, 1); break;
    case HV_NN_OP_ADD:
    case HV_NN_OP_SUB:
    case HV_NN_OP_MUL: binary_bwd(n); break;
    case HV_NN_OP_SUM:
    case HV_NN_OP_MEAN:
    case HV_NN_OP_BCE_LOGITS:
    case HV_NN_OP_L1:
    case HV_NN_OP_MSE:
    case HV_NN_OP_DICE: reduce_bwd(n); break;
    case HV_NN_OP_SOBEL: sobel(n, 1); break;
    case HV_NN_OP_CTX_ATTN: return hv__nn_ca_backward(n, ex);
    case HV_NN_OP_RESHAPE:
        if (n->src[0]->grad)
            for (int64_t i = 0; i < n->numel; i++) n->src[0]->grad[i] += n->grad[i];
        break;
    case HV_NN_OP_MAXPOOL: maxpool(n, 1); break;
    case HV_NN_OP_CHANNEL_MUL: channel_mul(n, 1); break;
    case HV_NN_OP_CONV3D: hv__nn_conv3d_backward(n); break;
    case HV_NN_OP_MAXPOOL3D: hv__nn_maxpool3d_backward(n); break;
    case HV_NN_OP_REFLECT_PAD: hv__nn_reflect_pad_backward(n); break;
    case HV_NN_OP_UPSAMPLE_BILINEAR: hv__nn_upsample_bilinear_backward(n); break;
    case HV_NN_OP_AOT_NORM: hv__nn_aot_norm_backward(n); break;
    case HV_NN_OP_L2_NORMALIZE: hv__nn_l2_normalize_backward(n); break;
    case HV_NN_OP_SUPCON: hv__nn_supcon_backward(n); break;
    case HV_NN_OP_CROSS_ENTROPY: hv__nn_cross_entropy_backward(n); break;
    default:
        return hv_error_set(HV_ERR_INTERNAL, "nn ref: unknown op %d", (int)n->op);
    }
    return HV_OK;
}
