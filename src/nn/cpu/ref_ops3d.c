/*
 * ref_ops3d.c: the reference kernels of the 3-D ops (conv3d, maxpool3d),
 * forward and backward, on plain NCDHW tensors.
 *
 * Kept apart from ref_ops.c (already ~1,000 lines) and written as direct
 * loops rather than vol2col + GEMM: these kernels are the ground truth the
 * oneDNN primitives of the cpu backend are tested against, and a direct
 * loop over (output position, kernel tap) is the one a reader can check
 * against the formula at a glance. Sums over a kernel window run in double.
 * OpenMP only over independent outer loops, chosen so that no two threads
 * write the same element: forward over (item, output channel), backward
 * data over (item, input channel), backward weights over (output channel,
 * input channel). Backward kernels ADD into the input gradients (the kernel
 * contract of nn_backend.h).
 *
 * The 2-D ops that also take 5-D tensors (batch norm, gap, channel_mul)
 * stay in ref_ops.c: there a volume is only a longer plane.
 */
#include <math.h>

#include "../nn_backend.h"

#define PAR_MIN 32768 /* work items below which a loop runs on one thread */

/* sizes of a 3-D window op: input x (n, c, d, h, w), output (n, co, od, oh,
 * ow), kernel (kd, kh, kw), stride s[3], pad p[3], dilation dl[3] */
typedef struct g3 {
    int64_t n, c, d, h, w, co, od, oh, ow, kd, kh, kw;
    int64_t s[3], p[3], dl[3];
} g3;

static g3 conv3d_geom(const hv_nn_tensor *t)
{
    const hv_nn_tensor *x = t->src[0], *wt = t->src[1];
    g3 g = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], x->shape[4],
            t->shape[1], t->shape[2], t->shape[3], t->shape[4],
            wt->shape[2], wt->shape[3], wt->shape[4],
            {t->ip[0], t->ip[1], t->ip[2]}, {t->ip[3], t->ip[4], t->ip[5]},
            {t->ip[6], t->ip[7], t->ip[8]}};
    return g;
}

void hv__nn_conv3d_forward(hv_nn_tensor *t)
{
    const hv_nn_tensor *x = t->src[0], *wt = t->src[1];
    const float *bias = t->nsrc > 2 ? t->src[2]->data : NULL;
    const g3 g = conv3d_geom(t);
    const int64_t ksz = g.kd * g.kh * g.kw, vol = g.d * g.h * g.w, ovol = g.od * g.oh * g.ow;
#pragma omp parallel for collapse(2) schedule(static) if (t->numel * g.c * ksz > PAR_MIN)
    for (int64_t i = 0; i < g.n; i++)
        for (int64_t o = 0; o < g.co; o++) {
            float *y = t->data + (i * g.co + o) * ovol;
            for (int64_t z = 0; z < g.od; z++)
                for (int64_t r = 0; r < g.oh; r++)
                    for (int64_t q = 0; q < g.ow; q++) {
                        double s = bias ? bias[o] : 0.0;
                        for (int64_t c = 0; c < g.c; c++) {
                            const float *xc = x->data + (i * g.c + c) * vol;
                            const float *wc = wt->data + (o * g.c + c) * ksz;
                            for (int64_t a = 0; a < g.kd; a++) {
                                const int64_t iz = z * g.s[0] - g.p[0] + a * g.dl[0];
                                if (iz < 0 || iz >= g.d) continue;
                                for (int64_t b = 0; b < g.kh; b++) {
                                    const int64_t iy = r * g.s[1] - g.p[1] + b * g.dl[1];
                                    if (iy < 0 || iy >= g.h) continue;
                                    for (int64_t e = 0; e < g.kw; e++) {
                                        const int64_t ix = q * g.s[2] - g.p[2] + e * g.dl[2];
                                        if (ix < 0 || ix >= g.w) continue;
                                        s += (double)wc[(a * g.kh + b) * g.kw + e] *
                                             xc[(iz * g.h + iy) * g.w + ix];
                                    }
                                }
                            }
                        }
                        y[(z * g.oh + r) * g.ow + q] = (float)s;
                    }
        }
}

void hv__nn_conv3d_backward(hv_nn_tensor *t)
{
    hv_nn_tensor *x = t->src[0], *wt = t->src[1], *bt = t->nsrc > 2 ? t->src[2] : NULL;
    const g3 g = conv3d_geom(t);
    const int64_t ksz = g.kd * g.kh * g.kw, vol = g.d * g.h * g.w, ovol = g.od * g.oh * g.ow;
    const int par = t->numel * g.c * ksz > PAR_MIN;
    if (x->grad) {
        /* dx[i, c, iz, iy, ix] += dy[i, o, z, r, q] w[o, c, a, b, e] over the
         * taps that read it: each (i, c) volume is written by one thread */
#pragma omp parallel for collapse(2) schedule(static) if (par)
        for (int64_t i = 0; i < g.n; i++)
            for (int64_t c = 0; c < g.c; c++) {
                float *dx = x->grad + (i * g.c + c) * vol;
                for (int64_t o = 0; o < g.co; o++) {
                    const float *dy = t->grad + (i * g.co + o) * ovol;
                    const float *wc = wt->data + (o * g.c + c) * ksz;
                    for (int64_t z = 0; z < g.od; z++)
                        for (int64_t r = 0; r < g.oh; r++)
                            for (int64_t q = 0; q < g.ow; q++) {
                                const float gy = dy[(z * g.oh + r) * g.ow + q];
                                for (int64_t a = 0; a < g.kd; a++) {
                                    const int64_t iz = z * g.s[0] - g.p[0] + a * g.dl[0];
                                    if (iz < 0 || iz >= g.d) continue;
                                    for (int64_t b = 0; b < g.kh; b++) {
                                        const int64_t iy = r * g.s[1] - g.p[1] + b * g.dl[1];
                                        if (iy < 0 || iy >= g.h) continue;
                                        for (int64_t e = 0; e < g.kw; e++) {
                                            const int64_t ix = q * g.s[2] - g.p[2] + e * g.dl[2];
                                            if (ix < 0 || ix >= g.w) continue;
                                            dx[(iz * g.h + iy) * g.w + ix] +=
                                                gy * wc[(a * g.kh + b) * g.kw + e];
                                        }
                                    }
                                }
                            }
                }
            }
    }
    if (wt->grad) {
        /* dw[o, c, a, b, e] += sum over items and outputs of dy * x */
#pragma omp parallel for collapse(2) schedule(static) if (par)
        for (int64_t o = 0; o < g.co; o++)
            for (int64_t c = 0; c < g.c; c++)
                for (int64_t a = 0; a < g.kd; a++)
                    for (int64_t b = 0; b < g.kh; b++)
                        for (int64_t e = 0; e < g.kw; e++) {
                            double s = 0;
                            for (int64_t i = 0; i < g.n; i++) {
                                const float *dy = t->grad + (i * g.co + o) * ovol;
                                const float *xc = x->data + (i * g.c + c) * vol;
                                for (int64_t z = 0; z < g.od; z++) {
                                    const int64_t iz = z * g.s[0] - g.p[0] + a * g.dl[0];
                                    if (iz < 0 || iz >= g.d) continue;
                                    for (int64_t r = 0; r < g.oh; r++) {
                                        const int64_t iy = r * g.s[1] - g.p[1] + b * g.dl[1];
                                        if (iy < 0 || iy >= g.h) continue;
                                        for (int64_t q = 0; q < g.ow; q++) {
                                            const int64_t ix = q * g.s[2] - g.p[2] + e * g.dl[2];
                                            if (ix < 0 || ix >= g.w) continue;
                                            s += (double)dy[(z * g.oh + r) * g.ow + q] *
                                                 xc[(iz * g.h + iy) * g.w + ix];
                                        }
                                    }
                                }
                            }
                            wt->grad[(o * g.c + c) * ksz + (a * g.kh + b) * g.kw + e] += (float)s;
                        }
    }
    if (bt && bt->grad)
        for (int64_t o = 0; o < g.co; o++) {
            double s = 0;
            for (int64_t i = 0; i < g.n; i++) {
                const float *dy = t->grad + (i * g.co + o) * ovol;
                for (int64_t j = 0; j < ovol; j++) s += dy[j];
            }
            bt->grad[o] += (float)s;
        }
}

/* ------------------------------------------------------------ max pooling */

/* aux holds the flat in-volume index of each output's maximum (exact in
 * float up to 2^24 elements per volume, which the builder enforces). */
void hv__nn_maxpool3d_forward(hv_nn_tensor *t)
{
    const hv_nn_tensor *x = t->src[0];
    const int64_t nc = t->shape[0] * t->shape[1], od = t->shape[2], oh = t->shape[3],
                  ow = t->shape[4];
    const int64_t d = x->shape[2], h = x->shape[3], w = x->shape[4], vol = d * h * w;
    const int64_t kd = t->ip[0], kh = t->ip[1], kw = t->ip[2];
    const int64_t sd = t->ip[3], sh = t->ip[4], sw = t->ip[5];
    const int64_t pd = t->ip[6], ph = t->ip[7], pw = t->ip[8];
#pragma omp parallel for schedule(static) if (t->numel * kd * kh * kw > PAR_MIN)
    for (int64_t q = 0; q < nc; q++) {
        const float *xp = x->data + q * vol;
        for (int64_t z = 0; z < od; z++)
            for (int64_t r = 0; r < oh; r++)
                for (int64_t c = 0; c < ow; c++) {
                    float best = -INFINITY;
                    int64_t arg = -1;
                    for (int64_t a = 0; a < kd; a++) {
                        const int64_t iz = z * sd - pd + a;
                        if (iz < 0 || iz >= d) continue;
                        for (int64_t b = 0; b < kh; b++) {
                            const int64_t iy = r * sh - ph + b;
                            if (iy < 0 || iy >= h) continue;
                            for (int64_t e = 0; e < kw; e++) {
                                const int64_t ix = c * sw - pw + e;
                                if (ix < 0 || ix >= w) continue;
                                const int64_t k = (iz * h + iy) * w + ix;
                                if (arg < 0 || xp[k] > best) {
                                    best = xp[k];
                                    arg = k;
                                }
                            }
                        }
                    }
                    /* 2 pad <= kernel: every window holds an input element */
                    const int64_t o = q * od * oh * ow + (z * oh + r) * ow + c;
                    t->data[o] = best;
                    t->aux[o] = (float)arg;
                }
    }
}

void hv__nn_maxpool3d_backward(hv_nn_tensor *t)
{
    hv_nn_tensor *x = t->src[0];
    if (!x->grad) return;
    const int64_t nc = t->shape[0] * t->shape[1], per = t->numel / nc;
    const int64_t vol = x->numel / nc;
    /* per (item, channel): outputs of one volume only reach that volume */
#pragma omp parallel for schedule(static) if (t->numel > PAR_MIN)
    for (int64_t q = 0; q < nc; q++)
        for (int64_t j = 0; j < per; j++) {
            const int64_t o = q * per + j;
            x->grad[q * vol + (int64_t)t->aux[o]] += t->grad[o];
        }
}
