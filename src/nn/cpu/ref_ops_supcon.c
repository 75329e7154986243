/*
 * ref_ops_supcon.c: reference kernels of supervised contrastive learning
 * (Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020): the L2
 * normalisation of feature rows and the SupCon loss (the paper's L_out with
 * one view per item, as HobbitLong/SupContrast's losses.py computes it;
 * include/hv/nn.h states the formula), and the weighted softmax cross
 * entropy of the classification that follows the pre-training.
 *
 * Two ops rather than a composition of existing ones: the engine has no
 * square root, division or log-sum-exp op, and a fused loss keeps the
 * N x N similarity matrix out of the arena. N (the batch) and K (the
 * projection width) are small, so the loss runs on one thread and
 * recomputes the similarities in backward (O(N^2 K), no saved state, no
 * workspace); sums run in double. Conventions of ref_ops.c: backward ADDS
 * into input gradients, no allocation in forward or backward.
 *
 * Gradient of the loss (s_ij = z_i . z_j / t, q_ij = softmax over a != i
 * of s_ia, c_ij = q_ij - [j in P(i)] / |P(i)| for an item with positives,
 * 0 otherwise):
 *     dL/dz_i = (1 / (N t)) sum_{j != i} (c_ij + c_ji) z_j.
 */
#include <math.h>

#include "../nn_backend.h"

/* --------------------------------------------------- L2 normalisation */

static double row_norm(const float *x, int64_t k)
{
    double ss = 0;
    for (int64_t j = 0; j < k; j++) ss += (double)x[j] * x[j];
    return sqrt(ss);
}

void hv__nn_l2_normalize_forward(hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0];
    const int64_t rows = n->shape[0], k = n->shape[1];
    const double eps = n->fp[0];
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * k;
        float *yr = n->data + r * k;
        double d = row_norm(xr, k);
        if (d < eps) d = eps;
        for (int64_t j = 0; j < k; j++) yr[j] = (float)(xr[j] / d);
    }
}

void hv__nn_l2_normalize_backward(hv_nn_tensor *n)
{
    hv_nn_tensor *x = n->src[0];
    if (!x->grad) return;
    const int64_t rows = n->shape[0], k = n->shape[1];
    const double eps = n->fp[0];
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * k, *gr = n->grad + r * k;
        float *dx = x->grad + r * k;
        const double d = row_norm(xr, k);
        if (d <= eps) { /* y = x / eps: the clamp's derivative is 0 */
            for (int64_t j = 0; j < k; j++) dx[j] += (float)(gr[j] / eps);
            continue;
        }
        double xg = 0; /* y = x / |x|: dx = (g - x (x . g) / |x|^2) / |x| */
        for (int64_t j = 0; j < k; j++) xg += (double)xr[j] * gr[j];
        const double c = xg / (d * d);
        for (int64_t j = 0; j < k; j++) dx[j] += (float)((gr[j] - xr[j] * c) / d);
    }
}

/* ------------------------------------------------------------- SupCon */

static double dot(const float *a, const float *b, int64_t k)
{
    double s = 0;
    for (int64_t j = 0; j < k; j++) s += (double)a[j] * b[j];
    return s;
}

/* log sum_{a != i} exp(s_ia) and the number of positives of item i */
static double anchor_lse(const float *z, const float *lab, int64_t nn, int64_t k, int64_t i,
                         double inv_t, int64_t *npos, double *pos_sum)
{
    double m = -INFINITY, acc = 0, ps = 0;
    int64_t np = 0;
    for (int64_t a = 0; a < nn; a++) {
        if (a == i) continue;
        const double s = dot(z + i * k, z + a * k, k) * inv_t;
        if (s > m) {
            acc = acc * exp(m - s) + 1.0; /* rescale to the new maximum */
            m = s;
        } else {
            acc += exp(s - m);
        }
        if (lab[a] == lab[i]) {
            np++;
            ps += s;
        }
    }
    *npos = np;
    *pos_sum = ps;
    return m + log(acc);
}

hv_status hv__nn_supcon_forward(hv_nn_tensor *n)
{
    const hv_nn_tensor *zt = n->src[0], *lt = n->src[1];
    const int64_t nn = zt->shape[0], k = zt->shape[1];
    const double inv_t = 1.0 / n->fp[0];
    for (int64_t i = 0; i < nn; i++)
        if (!isfinite(lt->data[i]))
            return hv_error_set(HV_ERR_ARG, "supcon: label %lld of %lld is %g (labels must be "
                                "finite class values)", (long long)i, (long long)nn,
                                (double)lt->data[i]);
    double total = 0;
    for (int64_t i = 0; i < nn; i++) {
        int64_t np;
        double ps;
        const double lse = anchor_lse(zt->data, lt->data, nn, k, i, inv_t, &np, &ps);
        if (np > 0) total += lse - ps / (double)np;
    }
    n->data[0] = (float)(total / (double)nn);
    return HV_OK;
}

void hv__nn_supcon_backward(hv_nn_tensor *n)
{
    hv_nn_tensor *zt = n->src[0];
    const hv_nn_tensor *lt = n->src[1];
    if (!zt->grad) return;
    const int64_t nn = zt->shape[0], k = zt->shape[1];
    const double inv_t = 1.0 / n->fp[0];
    const double gs = (double)n->grad[0] * inv_t / (double)nn;
    const float *z = zt->data, *lab = lt->data;
    for (int64_t i = 0; i < nn; i++) {
        int64_t np;
        double ps;
        const double lse = anchor_lse(z, lab, nn, k, i, inv_t, &np, &ps);
        if (np == 0) continue; /* alone in its class: adds nothing */
        for (int64_t j = 0; j < nn; j++) {
            if (j == i) continue;
            const double s = dot(z + i * k, z + j * k, k) * inv_t;
            double c = exp(s - lse);
            if (lab[j] == lab[i]) c -= 1.0 / (double)np;
            const float f = (float)(gs * c);
            float *gi = zt->grad + i * k, *gj = zt->grad + j * k;
            const float *zi = z + i * k, *zj = z + j * k;
            for (int64_t d = 0; d < k; d++) {
                gi[d] += f * zj[d];
                gj[d] += f * zi[d];
            }
        }
    }
}

/* ------------------------------------------------------ cross entropy */

static double row_lse(const float *z, int64_t c)
{
    double m = -INFINITY, acc = 0;
    for (int64_t k = 0; k < c; k++)
        if (z[k] > m) m = z[k];
    for (int64_t k = 0; k < c; k++) acc += exp(z[k] - m);
    return m + log(acc);
}

static double class_weight(const hv_nn_tensor *n, int64_t y)
{
    return n->nsrc > 2 ? (double)n->src[2]->data[y] : 1.0;
}

hv_status hv__nn_cross_entropy_forward(hv_nn_tensor *n)
{
    const hv_nn_tensor *zt = n->src[0], *lt = n->src[1];
    const int64_t nn = zt->shape[0], c = zt->shape[1];
    for (int64_t i = 0; i < nn; i++) {
        const float y = lt->data[i];
        if (!(y >= 0 && y < (float)c && y == floorf(y)))
            return hv_error_set(HV_ERR_ARG, "cross_entropy: label %lld of %lld is %g (need an "
                                "integer class 0..%lld)", (long long)i, (long long)nn, (double)y,
                                (long long)(c - 1));
    }
    if (n->nsrc > 2)
        for (int64_t k = 0; k < c; k++) {
            const float w = n->src[2]->data[k];
            if (!(w >= 0) || !isfinite(w))
                return hv_error_set(HV_ERR_ARG, "cross_entropy: weight of class %lld is %g (need "
                                    "finite and >= 0)", (long long)k, (double)w);
        }
    double num = 0, den = 0;
    for (int64_t i = 0; i < nn; i++) {
        const int64_t y = (int64_t)lt->data[i];
        const float *z = zt->data + i * c;
        const double w = class_weight(n, y);
        num += w * (row_lse(z, c) - z[y]);
        den += w;
    }
    if (!(den > 0))
        return hv_error_set(HV_ERR_ARG, "cross_entropy: the weights of the batch's %lld labels "
                            "sum to 0", (long long)nn);
    n->data[0] = (float)(num / den);
    return HV_OK;
}

void hv__nn_cross_entropy_backward(hv_nn_tensor *n)
{
    hv_nn_tensor *zt = n->src[0];
    const hv_nn_tensor *lt = n->src[1];
    if (!zt->grad) return;
    const int64_t nn = zt->shape[0], c = zt->shape[1];
    double den = 0;
    for (int64_t i = 0; i < nn; i++) den += class_weight(n, (int64_t)lt->data[i]);
    if (!(den > 0)) return; /* forward refused it */
    const double gs = (double)n->grad[0] / den;
    for (int64_t i = 0; i < nn; i++) {
        const int64_t y = (int64_t)lt->data[i];
        const float *z = zt->data + i * c;
        float *dz = zt->grad + i * c;
        const double lse = row_lse(z, c), f = gs * class_weight(n, y);
        for (int64_t k = 0; k < c; k++)
            dz[k] += (float)(f * (exp(z[k] - lse) - (k == y ? 1.0 : 0.0)));
    }
}
