/*
 * ref_ops_aot.c: reference kernels of the ops AOT-GAN's generator needs
 * besides the common ones (Zeng et al., "Aggregated Contextual
 * Transformations for High-Resolution Image Inpainting", TVCG 2022):
 * reflection padding (before every convolution of the encoder and of the
 * AOT blocks), bilinear upsampling by an integer factor with align_corners
 * (the decoder's UpConv) and the gate's normalisation (my_layer_norm).
 * Tanh, an elementwise op, lives with the other activations in ref_ops.c.
 *
 * A separate file, as ref_ops3d.c: ref_ops.c is at its size limit. The
 * kernels follow its conventions: plain loops, double accumulation where a
 * sum runs over a plane, OpenMP over independent planes only (every element
 * a backward adds into belongs to the plane of the output it reads, so the
 * accumulation has no race), and backward ADDS into input gradients.
 * None allocates (the graph tests count heap allocations in forward and
 * backward).
 */
#include <math.h>

#include "../nn_backend.h"

#define PAR_MIN 32768 /* elements below which a loop runs on one thread */

/* ------------------------------------------------------ reflection padding */

/* Source index of output index o along an axis of size n padded by `before`
 * (ReflectionPad: -1 -> 1, n -> n - 2; pads < n need one reflection). */
static int64_t reflect(int64_t o, int64_t before, int64_t n)
{
    int64_t i = o - before;
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return i;
}

/* ip: top, bottom, left, right */
static void reflect_pad(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    const int64_t nc = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    const int64_t ho = n->shape[2], wo = n->shape[3], t = n->ip[0], l = n->ip[2];
    if (backward && !x->grad) return;
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t p = 0; p < nc; p++) {
        for (int64_t i = 0; i < ho; i++) {
            const int64_t si = reflect(i, t, h);
            const int64_t yo = (p * ho + i) * wo, xo = (p * h + si) * w;
            for (int64_t j = 0; j < wo; j++) {
                const int64_t sj = reflect(j, l, w);
                if (backward)
                    x->grad[xo + sj] += n->grad[yo + j];
                else
                    n->data[yo + j] = x->data[xo + sj];
            }
        }
    }
}

void hv__nn_reflect_pad_forward(hv_nn_tensor *n) { reflect_pad(n, 0); }
void hv__nn_reflect_pad_backward(hv_nn_tensor *n) { reflect_pad(n, 1); }

/* ------------------------------------------------- bilinear upsampling */

/* align_corners: output index o of no samples input position
 * o (ni - 1) / (no - 1) (0 when no == 1); *i0 its floor, *i1 the next index
 * (clamped), *f the fraction, in exact integer arithmetic before the one
 * division. */
static void src_pos(int64_t o, int64_t ni, int64_t no, int64_t *i0, int64_t *i1, double *f)
{
    if (no <= 1) {
        *i0 = *i1 = 0;
        *f = 0;
        return;
    }
    const int64_t num = o * (ni - 1);
    *i0 = num / (no - 1);
    *f = (double)(num % (no - 1)) / (double)(no - 1);
    *i1 = *i0 + 1 < ni ? *i0 + 1 : *i0;
}

static void upsample_bilinear(hv_nn_tensor *n, int backward)
{
    hv_nn_tensor *x = n->src[0];
    const int64_t nc = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    const int64_t ho = n->shape[2], wo = n->shape[3];
    if (backward && !x->grad) return;
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t p = 0; p < nc; p++) {
        const float *xp = x->data + p * h * w;
        float *gp = backward ? x->grad + p * h * w : NULL;
        for (int64_t i = 0; i < ho; i++) {
            int64_t r0, r1;
            double fy;
            src_pos(i, h, ho, &r0, &r1, &fy);
            const int64_t yo = (p * ho + i) * wo;
            for (int64_t j = 0; j < wo; j++) {
                int64_t c0, c1;
                double fx;
                src_pos(j, w, wo, &c0, &c1, &fx);
                const double w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx;
                const double w10 = fy * (1 - fx), w11 = fy * fx;
                if (backward) {
                    const double g = n->grad[yo + j];
                    gp[r0 * w + c0] += (float)(w00 * g);
                    gp[r0 * w + c1] += (float)(w01 * g);
                    gp[r1 * w + c0] += (float)(w10 * g);
                    gp[r1 * w + c1] += (float)(w11 * g);
                } else {
                    n->data[yo + j] = (float)(w00 * xp[r0 * w + c0] + w01 * xp[r0 * w + c1] +
                                              w10 * xp[r1 * w + c0] + w11 * xp[r1 * w + c1]);
                }
            }
        }
    }
}

void hv__nn_upsample_bilinear_forward(hv_nn_tensor *n) { upsample_bilinear(n, 0); }
void hv__nn_upsample_bilinear_backward(hv_nn_tensor *n) { upsample_bilinear(n, 1); }

/* ------------------------------------------------------ AOT gate norm */

/* y = 5 (2 d / (s + 1e-9) - 1) per plane, d = x - mean, s the unbiased
 * standard deviation (AOT-GAN's my_layer_norm). With den = s + 1e-9 and m
 * = H*W, y = 10 d / den - 5 and, as sum d = 0, ds/dx_k = d_k / ((m - 1) s):
 *     dx_k = 10 ((g_k - mean g) / den - d_k sum(g d) / (den^2 (m - 1) s)).
 * The backward recomputes mean and s from x (kept in training graphs). */
#define AOT_EPS 1e-9

static void plane_stats(const float *x, int64_t m, double *mean, double *s)
{
    double sum = 0, ss = 0;
    for (int64_t k = 0; k < m; k++) sum += x[k];
    *mean = sum / (double)m;
    for (int64_t k = 0; k < m; k++) {
        const double d = x[k] - *mean;
        ss += d * d;
    }
    *s = sqrt(ss / (double)(m - 1));
}

void hv__nn_aot_norm_forward(hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0];
    const int64_t nc = n->shape[0] * n->shape[1], m = n->shape[2] * n->shape[3];
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t p = 0; p < nc; p++) {
        const float *xp = x->data + p * m;
        float *yp = n->data + p * m;
        double mean, s;
        plane_stats(xp, m, &mean, &s);
        const double den = s + AOT_EPS;
        for (int64_t k = 0; k < m; k++) yp[k] = (float)(5.0 * (2.0 * (xp[k] - mean) / den - 1.0));
    }
}

void hv__nn_aot_norm_backward(hv_nn_tensor *n)
{
    hv_nn_tensor *x = n->src[0];
    if (!x->grad) return;
    const int64_t nc = n->shape[0] * n->shape[1], m = n->shape[2] * n->shape[3];
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t p = 0; p < nc; p++) {
        const float *xp = x->data + p * m, *gp = n->grad + p * m;
        float *dx = x->grad + p * m;
        double mean, s, gsum = 0, gd = 0;
        plane_stats(xp, m, &mean, &s);
        const double den = s + AOT_EPS;
        for (int64_t k = 0; k < m; k++) {
            gsum += gp[k];
            gd += gp[k] * (xp[k] - mean);
        }
        const double gmean = gsum / (double)m;
        /* a constant plane (s = 0): the std term's derivative is undefined
         * there; it is left out (its d_k are 0 anyway) */
        const double c = s > 0 ? gd / (den * den * (double)(m - 1) * s) : 0.0;
        for (int64_t k = 0; k < m; k++)
            dx[k] += (float)(10.0 * ((gp[k] - gmean) / den - (xp[k] - mean) * c));
    }
}
