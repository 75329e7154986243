/*
 * test_nn_ops3d.c: hand-computed values of the 3-D ops (conv3d, maxpool3d)
 * and of batch norm, gap and channel_mul on NCDHW tensors, and the shape
 * errors of their builders (with the 2-D maxpool's, which shares the 3-D
 * one's float argmax limit).
 *
 * The op contract of these ops (gradients vs finite differences, the cpu
 * backend's oneDNN conv3d and the fake devices vs the reference kernels,
 * backward adding into gradients) and their comparison with PyTorch are in
 * test_nn_ops.c with every other op. This file is a second independent
 * check, one a reader can follow without PyTorch: tiny inputs whose
 * outputs and gradients follow from closed forms worked out by hand
 * (written out at each case), run on the reference and the cpu backends.
 * Values are small integers or simple fractions, so the bounds are float
 * rounding (1e-5 relative). Also the cpu backend's oneDNN conv3d vs the
 * reference at 16 channels, where oneDNN reorders into its blocked layouts,
 * in training and inference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/nn.h"
#include "hv_test.h"
#include "nn_hand.h"

#define I3(a, b, c) ((const int[]){a, b, c})

/* ------------------------------------------------------------- conv3d */

/* x (1, 1, 3, 3, 3) with x[z, r, q] = 9z + 3r + q; two 2x2x2 filters, stride
 * 1, no padding, output (1, 2, 2, 2, 2), loss = sum(y).
 *  filter 0: all ones, bias 0.5. The window at (z, r, q) sums
 *    9(z+a) + 3(r+b) + (q+e) over a, b, e in {0, 1}: 8 base + 4 (9 + 3 + 1)
 *    with base = 9z + 3r + q, so y0 = 8 base + 52 + 0.5.
 *  filter 1: w[a, b, e] = 1 + 4a + 2b + e (1..8), bias -1. sum w = 36 and
 *    sum w (9a + 3b + e) = 0 + 2 + 9 + 16 + 45 + 60 + 84 + 104 = 320, so
 *    y1 = 36 base + 320 - 1.
 * Gradients of sum(y):
 *  dx[z, r, q] = sum over the windows covering it of the tap's weight. On
 *    one axis index 0 is tap 0 of window 0, index 1 tap 1 of window 0 and
 *    tap 0 of window 1, index 2 tap 1 of window 1: the taps A(0) = {0},
 *    A(1) = {0, 1}, A(2) = {1}, |A| = 1, 2, 1, sum A = 0, 1, 1. Filter 0
 *    gives |A(z)||A(r)||A(q)|; filter 1 gives sum over the taps of
 *    1 + 4a + 2b + e = |A||A||A| + 4 sumA(z)|A(r)||A(q)| + 2 |A(z)| sumA(r)
 *    |A(q)| + |A(z)||A(r)| sumA(q).
 *  dw[f, a, b, e] = sum over the 8 windows of x at the tap: 8 (9a + 3b + e)
 *    + 52 for both filters (dy = 1); db = 8 each.
 * Also hv_nn_graph_flops counts the convolution. */
static void test_conv3d_hand(void)
{
    static const int na[3] = {1, 2, 1}, sa[3] = {0, 1, 1};
    double want_y[16], want_dx[27], want_dw[16], want_db[2] = {8, 8};
    float xv[27], wv[16], bv[2] = {0.5f, -1.0f};
    for (int i = 0; i < 27; i++) xv[i] = (float)i;
    for (int k = 0; k < 8; k++) {
        const int a = k / 4, b = (k / 2) % 2, e = k % 2;
        wv[k] = 1.0f;
        wv[8 + k] = (float)(1 + 4 * a + 2 * b + e);
        want_dw[k] = want_dw[8 + k] = 8.0 * (9 * a + 3 * b + e) + 52;
    }
    for (int z = 0; z < 2; z++)
        for (int r = 0; r < 2; r++)
            for (int q = 0; q < 2; q++) {
                const int base = 9 * z + 3 * r + q, o = (z * 2 + r) * 2 + q;
                want_y[o] = 8.0 * base + 52 + 0.5;
                want_y[8 + o] = 36.0 * base + 320 - 1;
            }
    for (int z = 0; z < 3; z++)
        for (int r = 0; r < 3; r++)
            for (int q = 0; q < 3; q++) {
                const double cnt = na[z] * na[r] * na[q];
                want_dx[(z * 3 + r) * 3 + q] = cnt + cnt + 4.0 * sa[z] * na[r] * na[q] +
                                               2.0 * na[z] * sa[r] * na[q] + 1.0 * na[z] * na[r] * sa[q];
            }
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        hv_nn_params *ps = NULL;
        hv_nn_param *w = NULL, *b = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_params_create(&ps));
        HV_CHECK_OK(hv_nn_params_add(ps, "w", 5, S(2, 1, 2, 2, 2), 1, &w));
        HV_CHECK_OK(hv_nn_params_add(ps, "b", 1, S(2), 1, &b));
        HV_CHECK_OK(hv_nn_param_set(w, wv, 16));
        HV_CHECK_OK(hv_nn_param_set(b, bv, 2));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *x = hv_nn_input(g, "x", 5, S(1, 1, 3, 3, 3));
        hv_nn_set_requires_grad(x);
        hv_nn_tensor *y = hv_nn_conv3d(g, x, hv_nn_param_tensor(g, w), hv_nn_param_tensor(g, b),
                                       I3(1, 1, 1), I3(0, 0, 0), I3(1, 1, 1));
        hv_nn_tensor *loss = hv_nn_sum(g, y);
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        /* 2 flops per multiply-add: 16 outputs of 1 * 2 * 2 * 2 taps each */
        HV_CHECK(hv_nn_graph_flops(g) == 256.0, "conv3d: graph flops %g, expected 256",
                 hv_nn_graph_flops(g));
        if (hv_nn_graph_status(g) == HV_OK) {
            float got[27];
            int64_t sh[HV_NN_MAX_DIMS];
            HV_CHECK(hv_nn_tensor_shape(y, sh) == 5 && sh[0] == 1 && sh[1] == 2 && sh[2] == 2 &&
                         sh[3] == 2 && sh[4] == 2,
                     "conv3d: output shape is not (1, 2, 2, 2, 2)");
            HV_CHECK_OK(hv_nn_tensor_set(x, xv, 27));
            hv_nn_params_zero_grad(ps);
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(y, got, 16));
            check_all("conv3d forward", backends[bk].name, got, want_y, 16);
            HV_CHECK_OK(hv_nn_tensor_get_grad(x, got, 27));
            check_all("conv3d dx", backends[bk].name, got, want_dx, 27);
            HV_CHECK_OK(hv_nn_param_get_grad(w, got, 16));
            check_all("conv3d dw", backends[bk].name, got, want_dw, 16);
            HV_CHECK_OK(hv_nn_param_get_grad(b, got, 2));
            check_all("conv3d db", backends[bk].name, got, want_db, 2);
        }
        hv_nn_graph_free(g);
        hv_nn_params_free(ps);
        hv_nn_backend_free(be);
    }
}

/* Padding and per-axis geometry: the same x, one all-ones 2x2x2 filter, no
 * bias, stride (2, 1, 2), pad (1, 0, 1). Output (1, 1, 2, 2, 2).
 *  D and W (pad 1, stride 2): window 0 spans -1..0, so holds index {0};
 *    window 1 spans 1..2: {1, 2}. Count 1, 2; index sum 0, 3.
 *  H (pad 0, stride 1): window r spans r..r+1: count 2, index sum 2r + 1.
 *  y = sum over the box of 9 z + 3 r + q
 *    = 9 S_D nH nW + 3 nD S_H nW + nD nH S_W.
 *  dx of sum(y): D and W cover each index once (windows do not overlap),
 *    H covers 1, 2, 1 times: dx[z, r, q] = 1, 2, 1 by r. */
static void test_conv3d_pad_hand(void)
{
    static const int nDW[2] = {1, 2}, sDW[2] = {0, 3}, cH[3] = {1, 2, 1};
    double want_y[8], want_dx[27];
    float xv[27], wv[8];
    for (int i = 0; i < 27; i++) xv[i] = (float)i;
    for (int i = 0; i < 8; i++) wv[i] = 1.0f;
    for (int z = 0; z < 2; z++)
        for (int r = 0; r < 2; r++)
            for (int q = 0; q < 2; q++)
                want_y[(z * 2 + r) * 2 + q] = 9.0 * sDW[z] * 2 * nDW[q] + 3.0 * nDW[z] * (2 * r + 1) * nDW[q] +
                                              1.0 * nDW[z] * 2 * sDW[q];
    for (int i = 0; i < 27; i++) want_dx[i] = cH[(i / 3) % 3];
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        hv_nn_params *ps = NULL;
        hv_nn_param *w = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_params_create(&ps));
        HV_CHECK_OK(hv_nn_params_add(ps, "w", 5, S(1, 1, 2, 2, 2), 1, &w));
        HV_CHECK_OK(hv_nn_param_set(w, wv, 8));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *x = hv_nn_input(g, "x", 5, S(1, 1, 3, 3, 3));
        hv_nn_set_requires_grad(x);
        hv_nn_tensor *y = hv_nn_conv3d(g, x, hv_nn_param_tensor(g, w), NULL, I3(2, 1, 2), I3(1, 0, 1),
                                       I3(1, 1, 1));
        hv_nn_tensor *loss = hv_nn_sum(g, y);
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        if (hv_nn_graph_status(g) == HV_OK && hv_nn_tensor_numel(y) == 8) {
            float got[27];
            HV_CHECK_OK(hv_nn_tensor_set(x, xv, 27));
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(y, got, 8));
            check_all("conv3d padded forward", backends[bk].name, got, want_y, 8);
            HV_CHECK_OK(hv_nn_tensor_get_grad(x, got, 27));
            check_all("conv3d padded dx", backends[bk].name, got, want_dx, 27);
        } else {
            HV_CHECK(0, "conv3d padded: not planned or output size %lld != 8",
                     (long long)hv_nn_tensor_numel(y));
        }
        hv_nn_graph_free(g);
        hv_nn_params_free(ps);
        hv_nn_backend_free(be);
    }
}

/* ------------------------------------------------ one-input ops, by hand */

/* Runs op(x) for x given, loss = sum(y), on every backend; compares y and
 * dx with the expected values. build gets the graph and x. */
typedef hv_nn_tensor *(*build1_fn)(hv_nn_graph *g, hv_nn_tensor *x);
static void run1(const char *what, int ndim, const int64_t *shape, const float *xv, build1_fn build,
                 const double *want_y, int ny, const double *want_dx)
{
    int64_t nx = 1;
    for (int d = 0; d < ndim; d++) nx *= shape[d];
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *x = hv_nn_input(g, "x", ndim, shape);
        hv_nn_set_requires_grad(x);
        hv_nn_tensor *y = build(g, x);
        hv_nn_tensor *loss = hv_nn_sum(g, y);
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        if (hv_nn_graph_status(g) == HV_OK && hv_nn_tensor_numel(y) == ny) {
            float got[64];
            HV_CHECK_OK(hv_nn_tensor_set(x, xv, (size_t)nx));
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(y, got, (size_t)ny));
            check_all(what, backends[bk].name, got, want_y, ny);
            if (want_dx) {
                char dw[96];
                snprintf(dw, sizeof dw, "%s dx", what);
                HV_CHECK_OK(hv_nn_tensor_get_grad(x, got, (size_t)nx));
                check_all(dw, backends[bk].name, got, want_dx, (int)nx);
            }
        } else {
            HV_CHECK(0, "%s: not planned or output size %lld != %d", what,
                     (long long)hv_nn_tensor_numel(y), ny);
        }
        hv_nn_graph_free(g);
        hv_nn_backend_free(be);
    }
}

static hv_nn_tensor *mp_k2s2p1(hv_nn_graph *g, hv_nn_tensor *x)
{
    return hv_nn_maxpool3d(g, x, I3(2, 2, 2), I3(2, 2, 2), I3(1, 1, 1));
}
static hv_nn_tensor *mp_k2s1p0(hv_nn_graph *g, hv_nn_tensor *x)
{
    return hv_nn_maxpool3d(g, x, I3(2, 2, 2), I3(1, 1, 1), I3(0, 0, 0));
}
static hv_nn_tensor *mp_aniso(hv_nn_graph *g, hv_nn_tensor *x)
{
    return hv_nn_maxpool3d(g, x, I3(1, 2, 3), I3(1, 1, 1), I3(0, 1, 1));
}

static void test_maxpool3d_hand(void)
{
    float xv[27];
    double want_y[32], want_dx[27];
    /* (a) x[z, r, q] = 9z + 3r + q - 100 < 0, kernel 2, stride 2, pad 1: on
     * each axis window 0 holds index {0} (the other tap is padding), window
     * 1 holds {1, 2}; values grow with the index, so the maximum sits at
     * index m = 0, 2: y = 9 m(z) + 3 m(r) + m(q) - 100. A padding zero
     * would beat every (negative) value if it took part. dx: 1 at the 8
     * maxima (coordinates in {0, 2}), 0 elsewhere. */
    static const int m[2] = {0, 2};
    for (int i = 0; i < 27; i++) {
        const int z = i / 9, r = (i / 3) % 3, q = i % 3;
        xv[i] = (float)(i - 100);
        want_dx[i] = (z != 1 && r != 1 && q != 1) ? 1.0 : 0.0;
    }
    for (int o = 0; o < 8; o++) want_y[o] = 9.0 * m[o / 4] + 3.0 * m[(o / 2) % 2] + m[o % 2] - 100;
    run1("maxpool3d padded", 5, S(1, 1, 3, 3, 3), xv, mp_k2s2p1, want_y, 8, want_dx);

    /* (b) ties: x = -1 everywhere, kernel 2, stride 1, no padding: y = -1,
     * and each window's gradient goes to its first element in D, H, W
     * order, (z, r, q) itself: dx = 1 on {0, 1}^3, 0 elsewhere. */
    for (int i = 0; i < 27; i++) {
        const int z = i / 9, r = (i / 3) % 3, q = i % 3;
        xv[i] = -1.0f;
        want_dx[i] = (z < 2 && r < 2 && q < 2) ? 1.0 : 0.0;
    }
    for (int o = 0; o < 8; o++) want_y[o] = -1;
    run1("maxpool3d ties", 5, S(1, 1, 3, 3, 3), xv, mp_k2s1p0, want_y, 8, want_dx);

    /* (c) per axis: x (1, 1, 2, 3, 4), x = 12 z + 4 r + q (grows with every
     * index), kernel (1, 2, 3), stride 1, pad (0, 1, 1): output (2, 4, 4);
     * window r on H spans r-1..r (max at min(r, 2)), window q on W spans
     * q-1..q+1 (max at min(q+1, 3)): y = 12 z + 4 min(r, 2) + min(q+1, 3). */
    for (int i = 0; i < 24; i++) xv[i] = (float)i;
    for (int z = 0; z < 2; z++)
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++)
                want_y[(z * 4 + r) * 4 + q] = 12.0 * z + 4.0 * (r < 2 ? r : 2) + (q + 1 < 3 ? q + 1 : 3);
    run1("maxpool3d per axis", 5, S(1, 1, 2, 3, 4), xv, mp_aniso, want_y, 32, NULL);
}

static hv_nn_tensor *gap_b(hv_nn_graph *g, hv_nn_tensor *x) { return hv_nn_gap(g, x); }

/* gap and channel_mul on NCDHW: x (1, 2, 2, 1, 2), channel 0 = 1, 2, 3, 6
 * (mean 3), channel 1 = 0, 0, 4, 4 (mean 2). gap: (3, 2), dx = 1/4. */
static void test_gap_chmul_5d_hand(void)
{
    static const float xv[8] = {1, 2, 3, 6, 0, 0, 4, 4};
    static const double want_gap[2] = {3, 2}, want_dgap[8] = {.25, .25, .25, .25, .25, .25, .25, .25};
    run1("gap 5-D", 5, S(1, 2, 2, 1, 2), xv, gap_b, want_gap, 2, want_dgap);
    /* channel_mul: s = (10, -1) (shape N, C): y = 10, 20, 30, 60, 0, 0, -4,
     * -4; d sum(y) / dx = s per channel, d / ds = sum of the channel: 12, 8 */
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *x = hv_nn_input(g, "x", 5, S(1, 2, 2, 1, 2));
        hv_nn_tensor *s = hv_nn_input(g, "s", 2, S(1, 2));
        hv_nn_set_requires_grad(x);
        hv_nn_set_requires_grad(s);
        hv_nn_tensor *y = hv_nn_channel_mul(g, x, s);
        hv_nn_tensor *loss = hv_nn_sum(g, y);
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        if (hv_nn_graph_status(g) == HV_OK) {
            static const float sv[2] = {10, -1};
            static const double want_y[8] = {10, 20, 30, 60, 0, 0, -4, -4};
            static const double want_dx[8] = {10, 10, 10, 10, -1, -1, -1, -1}, want_ds[2] = {12, 8};
            float got[8];
            HV_CHECK_OK(hv_nn_tensor_set(x, xv, 8));
            HV_CHECK_OK(hv_nn_tensor_set(s, sv, 2));
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(y, got, 8));
            check_all("channel_mul 5-D", backends[bk].name, got, want_y, 8);
            HV_CHECK_OK(hv_nn_tensor_get_grad(x, got, 8));
            check_all("channel_mul 5-D dx", backends[bk].name, got, want_dx, 8);
            HV_CHECK_OK(hv_nn_tensor_get_grad(s, got, 2));
            check_all("channel_mul 5-D ds", backends[bk].name, got, want_ds, 2);
        }
        hv_nn_graph_free(g);
        hv_nn_backend_free(be);
    }
}

/* batch norm on NCDHW, training: x (1, 2, 2, 1, 2) as above; gamma (1, 2),
 * beta (0, 0.5), running mean 0, running variance 1, momentum 0.1, eps
 * 1e-5. Channel 0: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5,
 * unbiased 14/3; channel 1: mean 2, variance 4, unbiased 16/3.
 * y0 = (x - 3) / sqrt(3.5 + eps), y1 = 2 (x - 2) / sqrt(4 + eps) + 0.5;
 * running mean 0.1 * mean = (0.3, 0.2), running variance 0.9 + 0.1 *
 * unbiased = (0.9 + 1.4/3, 0.9 + 1.6/3). d sum(y) / d beta = 4 per channel;
 * d / dx = 0 (the normalised values always sum to 0). A kernel that took
 * the statistics over H*W only, or over D only, gets other values. */
static void test_bn_5d_hand(void)
{
    static const float xv[8] = {1, 2, 3, 6, 0, 0, 4, 4};
    static const float gv[2] = {1, 2}, bv[2] = {0, 0.5f}, rmv[2] = {0, 0}, rvv[2] = {1, 1};
    double want_y[8], want_dx[8] = {0}, want_db[2] = {4, 4};
    const double want_rm[2] = {0.3, 0.2}, want_rv[2] = {0.9 + 1.4 / 3, 0.9 + 1.6 / 3};
    for (int i = 0; i < 4; i++) {
        want_y[i] = (xv[i] - 3) / sqrt(3.5 + 1e-5);
        want_y[4 + i] = 2 * (xv[4 + i] - 2) / sqrt(4 + 1e-5) + 0.5;
    }
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        hv_nn_params *ps = NULL;
        hv_nn_param *ga = NULL, *bt = NULL, *rm = NULL, *rv = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_params_create(&ps));
        HV_CHECK_OK(hv_nn_params_add(ps, "gamma", 1, S(2), 1, &ga));
        HV_CHECK_OK(hv_nn_params_add(ps, "beta", 1, S(2), 1, &bt));
        HV_CHECK_OK(hv_nn_params_add(ps, "rm", 1, S(2), 0, &rm));
        HV_CHECK_OK(hv_nn_params_add(ps, "rv", 1, S(2), 0, &rv));
        HV_CHECK_OK(hv_nn_param_set(ga, gv, 2));
        HV_CHECK_OK(hv_nn_param_set(bt, bv, 2));
        HV_CHECK_OK(hv_nn_param_set(rm, rmv, 2));
        HV_CHECK_OK(hv_nn_param_set(rv, rvv, 2));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *x = hv_nn_input(g, "x", 5, S(1, 2, 2, 1, 2));
        hv_nn_set_requires_grad(x);
        hv_nn_tensor *y = hv_nn_batch_norm(g, x, hv_nn_param_tensor(g, ga), hv_nn_param_tensor(g, bt),
                                           hv_nn_param_tensor(g, rm), hv_nn_param_tensor(g, rv), 0.1f,
                                           1e-5f);
        hv_nn_tensor *loss = hv_nn_sum(g, y);
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        if (hv_nn_graph_status(g) == HV_OK) {
            float got[8];
            HV_CHECK_OK(hv_nn_tensor_set(x, xv, 8));
            hv_nn_params_zero_grad(ps);
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(y, got, 8));
            check_all("batch_norm 5-D", backends[bk].name, got, want_y, 8);
            HV_CHECK_OK(hv_nn_param_get(rm, got, 2));
            check_all("batch_norm 5-D running mean", backends[bk].name, got, want_rm, 2);
            HV_CHECK_OK(hv_nn_param_get(rv, got, 2));
            check_all("batch_norm 5-D running variance", backends[bk].name, got, want_rv, 2);
            HV_CHECK_OK(hv_nn_tensor_get_grad(x, got, 8));
            check_all("batch_norm 5-D dx", backends[bk].name, got, want_dx, 8);
            HV_CHECK_OK(hv_nn_param_get_grad(bt, got, 2));
            check_all("batch_norm 5-D dbeta", backends[bk].name, got, want_db, 2);
        }
        hv_nn_graph_free(g);
        hv_nn_params_free(ps);
        hv_nn_backend_free(be);
    }
}

/* ------------------------------------------------ oneDNN vs the reference */

/* conv3d at a size where oneDNN picks its blocked layouts (16 channels in
 * and out, so the cpu backend reorders at the node boundary; the contract
 * cases of test_nn_ops have 2-4 channels): x (2, 16, 6, 5, 7), w (16, 16, 3,
 * 3, 3), bias, stride (1, 2, 1), pad (1, 1, 2), dilation (1, 1, 2), then
 * ReLU. Training: output and the gradients of x, w and b of sum(relu(y) *
 * R); inference (flags 0): the output, then again after the weights
 * changed (the cpu backend caches the reordered weights of an inference
 * graph). The cpu backend's results vs the ref backend's, relative squared
 * error <= 1e-10 (measured below 1e-13). */
typedef struct conv3d_run {
    float *y, *dx, *dw, *db, *y2;
} conv3d_run;

static void conv3d_big(hv_nn_backend *be, unsigned flags, const float *xv, const float *wv,
                       const float *bv, const float *rv, conv3d_run *out)
{
    hv_nn_graph *g = NULL;
    hv_nn_params *ps = NULL;
    hv_nn_param *w = NULL, *b = NULL;
    const int64_t nx = 2 * 16 * 6 * 5 * 7, nw = 16 * 16 * 27;
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_nn_params_add(ps, "w", 5, S(16, 16, 3, 3, 3), 1, &w));
    HV_CHECK_OK(hv_nn_params_add(ps, "b", 1, S(16), 1, &b));
    HV_CHECK_OK(hv_nn_param_set(w, wv, (size_t)nw));
    HV_CHECK_OK(hv_nn_param_set(b, bv, 16));
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_nn_tensor *x = hv_nn_input(g, "x", 5, S(2, 16, 6, 5, 7));
    if (flags) hv_nn_set_requires_grad(x);
    hv_nn_tensor *y = hv_nn_relu(g, hv_nn_conv3d(g, x, hv_nn_param_tensor(g, w), hv_nn_param_tensor(g, b),
                                                 I3(1, 2, 1), I3(1, 1, 2), I3(1, 1, 2)));
    hv_nn_set_output(y);
    const int64_t ny = hv_nn_tensor_numel(y);
    hv_nn_tensor *r = hv_nn_input(g, "R", 5, S(2, 16, 6, 3, 7));
    hv_nn_tensor *loss = hv_nn_sum(g, hv_nn_mul(g, y, r));
    HV_CHECK_OK(hv_nn_graph_plan(g, be, flags));
    HV_CHECK(ny == 2 * 16 * 6 * 3 * 7, "conv3d big: output has %lld elements", (long long)ny);
    if (hv_nn_graph_status(g) != HV_OK || ny != 2 * 16 * 6 * 3 * 7) goto done;
    HV_CHECK_OK(hv_nn_tensor_set(x, xv, (size_t)nx));
    HV_CHECK_OK(hv_nn_tensor_set(r, rv, (size_t)ny));
    hv_nn_params_zero_grad(ps);
    HV_CHECK_OK(hv_nn_graph_forward(g));
    out->y = malloc((size_t)ny * sizeof(float));
    HV_CHECK_OK(hv_nn_tensor_get(y, out->y, (size_t)ny));
    if (flags) {
        HV_CHECK_OK(hv_nn_graph_backward(g, loss));
        out->dx = malloc((size_t)nx * sizeof(float));
        out->dw = malloc((size_t)nw * sizeof(float));
        out->db = malloc(16 * sizeof(float));
        HV_CHECK_OK(hv_nn_tensor_get_grad(x, out->dx, (size_t)nx));
        HV_CHECK_OK(hv_nn_param_get_grad(w, out->dw, (size_t)nw));
        HV_CHECK_OK(hv_nn_param_get_grad(b, out->db, 16));
    } else {
        /* new weights: w * -0.5 */
        float *w2 = malloc((size_t)nw * sizeof(float));
        for (int64_t i = 0; i < nw; i++) w2[i] = -0.5f * wv[i];
        HV_CHECK_OK(hv_nn_param_set(w, w2, (size_t)nw));
        free(w2);
        HV_CHECK_OK(hv_nn_graph_forward(g));
        out->y2 = malloc((size_t)ny * sizeof(float));
        HV_CHECK_OK(hv_nn_tensor_get(y, out->y2, (size_t)ny));
    }
done:
    hv_nn_graph_free(g);
    hv_nn_params_free(ps);
}

static double rel_sq(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

static void test_conv3d_cpu_vs_ref(void)
{
    const int64_t nx = 2 * 16 * 6 * 5 * 7, nw = 16 * 16 * 27, ny = 2 * 16 * 6 * 3 * 7;
    float *xv = malloc((size_t)nx * sizeof(float)), *wv = malloc((size_t)nw * sizeof(float));
    float *rv = malloc((size_t)ny * sizeof(float)), bv[16];
    hv_rng rng;
    hv_rng_seed(&rng, 77, 3);
    for (int64_t i = 0; i < nx; i++) xv[i] = (float)hv_rng_normal(&rng);
    for (int64_t i = 0; i < nw; i++) wv[i] = (float)(0.1 * hv_rng_normal(&rng));
    for (int i = 0; i < 16; i++) bv[i] = (float)(0.1 * hv_rng_normal(&rng));
    for (int64_t i = 0; i < ny; i++) rv[i] = (float)hv_rng_normal(&rng);
    for (int mode = 0; mode < 2; mode++) {
        const unsigned flags = mode ? HV_NN_PLAN_TRAIN : 0;
        conv3d_run res[2] = {{0}};
        for (int bk = 0; bk < 2; bk++) {
            hv_nn_backend *be = NULL;
            HV_CHECK_OK(backends[bk].create(&be));
            if (be) conv3d_big(be, flags, xv, wv, bv, rv, &res[bk]);
            hv_nn_backend_free(be);
        }
        const char *m = mode ? "training" : "inference";
        const struct {
            const char *what;
            float *a, *b;
            int64_t n;
        } cmp[4] = {{"output", res[1].y, res[0].y, ny},
                    {mode ? "dx" : "output after new weights", mode ? res[1].dx : res[1].y2,
                     mode ? res[0].dx : res[0].y2, mode ? nx : ny},
                    {"dw", res[1].dw, res[0].dw, nw},
                    {"db", res[1].db, res[0].db, 16}};
        for (int k = 0; k < (mode ? 4 : 2); k++) {
            HV_CHECK(cmp[k].a && cmp[k].b, "conv3d cpu vs ref, %s: no %s", m, cmp[k].what);
            if (!cmp[k].a || !cmp[k].b) continue;
            const double e = rel_sq(cmp[k].a, cmp[k].b, cmp[k].n);
            printf("# conv3d 16 -> 16 channels, %s, %s: cpu vs ref relative squared error %.2e\n", m,
                   cmp[k].what, e);
            HV_CHECK(e <= 1e-10, "conv3d cpu vs ref, %s: %s relative squared error %.3g > 1e-10", m,
                     cmp[k].what, e);
        }
        for (int bk = 0; bk < 2; bk++) {
            free(res[bk].y);
            free(res[bk].dx);
            free(res[bk].dw);
            free(res[bk].db);
            free(res[bk].y2);
        }
    }
    free(xv);
    free(wv);
    free(rv);
}

/* ---------------------------------------------------------- shape errors */

static hv_nn_tensor *bad_conv_rank(hv_nn_graph *g)
{
    return hv_nn_conv3d(g, in_(g, 4, S(1, 2, 3, 4)), in_(g, 5, S(3, 2, 1, 1, 1)), NULL, I3(1, 1, 1),
                        I3(0, 0, 0), I3(1, 1, 1));
}
static hv_nn_tensor *bad_conv_cin(hv_nn_graph *g)
{
    return hv_nn_conv3d(g, in_(g, 5, S(1, 2, 4, 4, 4)), in_(g, 5, S(3, 5, 3, 3, 3)), NULL, I3(1, 1, 1),
                        I3(0, 0, 0), I3(1, 1, 1));
}
static hv_nn_tensor *bad_conv_bias(hv_nn_graph *g)
{
    return hv_nn_conv3d(g, in_(g, 5, S(1, 2, 4, 4, 4)), in_(g, 5, S(3, 2, 3, 3, 3)), in_(g, 1, S(4)),
                        I3(1, 1, 1), I3(0, 0, 0), I3(1, 1, 1));
}
static hv_nn_tensor *bad_conv_stride(hv_nn_graph *g)
{
    return hv_nn_conv3d(g, in_(g, 5, S(1, 2, 4, 4, 4)), in_(g, 5, S(3, 2, 3, 3, 3)), NULL, I3(1, 0, 1),
                        I3(0, 0, 0), I3(1, 1, 1));
}
static hv_nn_tensor *bad_conv_empty(hv_nn_graph *g)
{
    return hv_nn_conv3d(g, in_(g, 5, S(1, 1, 2, 5, 5)), in_(g, 5, S(1, 1, 3, 3, 3)), NULL, I3(1, 1, 1),
                        I3(0, 0, 0), I3(1, 1, 1));
}
static hv_nn_tensor *bad_pool_rank(hv_nn_graph *g)
{
    return hv_nn_maxpool3d(g, in_(g, 4, S(1, 2, 6, 6)), I3(2, 2, 2), I3(2, 2, 2), I3(0, 0, 0));
}
static hv_nn_tensor *bad_pool_pad(hv_nn_graph *g)
{
    return hv_nn_maxpool3d(g, in_(g, 5, S(1, 2, 6, 6, 6)), I3(2, 2, 2), I3(2, 2, 2), I3(0, 2, 0));
}
static hv_nn_tensor *bad_pool_big(hv_nn_graph *g)
{
    return hv_nn_maxpool3d(g, in_(g, 5, S(1, 1, 257, 256, 256)), I3(2, 2, 2), I3(2, 2, 2), I3(0, 0, 0));
}
/* the 2-D maxpool's checks, beside the 3-D one's */
static hv_nn_tensor *bad_pool2d_big(hv_nn_graph *g)
{
    return hv_nn_maxpool(g, in_(g, 4, S(1, 1, 4097, 4096)), 2, 2, 0);
}
static hv_nn_tensor *bad_pool2d_pad(hv_nn_graph *g)
{
    return hv_nn_maxpool(g, in_(g, 4, S(1, 2, 6, 6)), 3, 1, 2);
}
static hv_nn_tensor *bad_bn_rank(hv_nn_graph *g)
{
    hv_nn_tensor *c = in_(g, 1, S(3));
    return hv_nn_batch_norm(g, in_(g, 3, S(2, 3, 4)), c, c, c, c, 0.1f, 1e-5f);
}
static hv_nn_tensor *bad_bn_channels(hv_nn_graph *g)
{
    /* x has 4 channels, the statistics 3 (shapes are checked before the
     * running statistics' kind) */
    hv_nn_tensor *c = in_(g, 1, S(3));
    return hv_nn_batch_norm(g, in_(g, 5, S(2, 4, 2, 2, 2)), c, c, c, c, 0.1f, 1e-5f);
}
static hv_nn_tensor *bad_gap_rank(hv_nn_graph *g) { return hv_nn_gap(g, in_(g, 3, S(2, 3, 4))); }
static hv_nn_tensor *bad_chmul(hv_nn_graph *g)
{
    return hv_nn_channel_mul(g, in_(g, 5, S(1, 2, 2, 2, 2)), in_(g, 2, S(1, 3)));
}

static void test_shape_errors(void)
{
    expect_refused("conv3d on a 4-D x", bad_conv_rank, (const char *const[]){"(1, 2, 3, 4)"}, 1);
    expect_refused("conv3d Cin mismatch", bad_conv_cin,
                   (const char *const[]){"(1, 2, 4, 4, 4)", "(3, 5, 3, 3, 3)"}, 2);
    expect_refused("conv3d bias", bad_conv_bias, (const char *const[]){"(4)", "Cout = 3"}, 2);
    expect_refused("conv3d stride 0", bad_conv_stride, (const char *const[]){"axis 1", "stride 0"}, 2);
    expect_refused("conv3d empty output", bad_conv_empty,
                   (const char *const[]){"(1, 1, 2, 5, 5)", "(1, 1, 3, 3, 3)", "empty"}, 3);
    expect_refused("maxpool3d on a 4-D x", bad_pool_rank, (const char *const[]){"(1, 2, 6, 6)"}, 1);
    expect_refused("maxpool3d pad > kernel / 2", bad_pool_pad, (const char *const[]){"axis 1", "pad 2"}, 2);
    expect_refused("maxpool3d volume > 2^24", bad_pool_big, (const char *const[]){"(1, 1, 257, 256, 256)"}, 1);
    expect_refused("maxpool plane > 2^24", bad_pool2d_big,
                   (const char *const[]){"(1, 1, 4097, 4096)", "2^24"}, 2);
    expect_refused("maxpool pad > kernel / 2", bad_pool2d_pad,
                   (const char *const[]){"(1, 2, 6, 6)", "kernel 3", "pad 2"}, 3);
    expect_refused("batch_norm on a 3-D x", bad_bn_rank, (const char *const[]){"(2, 3, 4)"}, 1);
    expect_refused("batch_norm channels", bad_bn_channels,
                   (const char *const[]){"(2, 4, 2, 2, 2)", "4 channels"}, 2);
    expect_refused("gap on a 3-D x", bad_gap_rank, (const char *const[]){"(2, 3, 4)"}, 1);
    expect_refused("channel_mul s", bad_chmul, (const char *const[]){"(1, 2, 2, 2, 2)", "(1, 3)"}, 2);
}

int main(void)
{
    test_conv3d_hand();
    test_conv3d_pad_hand();
    test_maxpool3d_hand();
    test_gap_chmul_5d_hand();
    test_bn_5d_hand();
    test_conv3d_cpu_vs_ref();
    test_shape_errors();
    return hv_test_done();
}
