/*
 * test_nn_aot.c: hand-computed values of AOT-GAN's ops (reflection
 * padding, bilinear upsampling with align_corners, the gate norm, tanh) and
 * the shape errors of their builders.
 *
 * Their op contract (gradients vs finite differences, the cpu backend and
 * the fake devices vs the reference kernels, backward adding into
 * gradients) and their comparison with PyTorch are in test_nn_ops.c with
 * every other op. This file is a second, independent check a reader can
 * follow without PyTorch: tiny inputs whose outputs and gradients follow
 * from closed forms worked out by hand (written out at each case), run on
 * the reference and the cpu backends, bound 1e-5 relative.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/nn.h"
#include "hv_test.h"
#include "nn_hand.h"

/* Runs y = op(x) on every backend with loss = sum(y * r) (r all ones when
 * rv is NULL); compares y and dx with the expected values. */
typedef hv_nn_tensor *(*build1_fn)(hv_nn_graph *g, hv_nn_tensor *x);
static void run1(const char *what, const int64_t *shape, const float *xv, build1_fn build,
                 const float *rv, const double *want_y, int ny, const double *want_dx)
{
    const int64_t nx = shape[0] * shape[1] * shape[2] * shape[3];
    float ones[64];
    for (int i = 0; i < 64; i++) ones[i] = 1.0f;
    if (!HV_CHECK(ny <= 64 && nx <= 64, "%s: case too large", what)) return;
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *x = hv_nn_input(g, "x", 4, shape);
        hv_nn_set_requires_grad(x);
        hv_nn_tensor *y = build(g, x);
        int64_t ys[HV_NN_MAX_DIMS] = {0};
        const int yd = hv_nn_tensor_shape(y, ys);
        hv_nn_tensor *r = hv_nn_input(g, "r", yd, ys);
        hv_nn_tensor *loss = hv_nn_sum(g, hv_nn_mul(g, y, r));
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        if (hv_nn_graph_status(g) == HV_OK && hv_nn_tensor_numel(y) == ny) {
            float got[64];
            HV_CHECK_OK(hv_nn_tensor_set(x, xv, (size_t)nx));
            HV_CHECK_OK(hv_nn_tensor_set(r, rv ? rv : ones, (size_t)ny));
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(y, got, (size_t)ny));
            check_all(what, backends[bk].name, got, want_y, ny);
            char dw[96];
            snprintf(dw, sizeof dw, "%s dx", what);
            HV_CHECK_OK(hv_nn_tensor_get_grad(x, got, (size_t)nx));
            check_all(dw, backends[bk].name, got, want_dx, (int)nx);
        } else {
            HV_CHECK(0, "%s: not planned or output size %lld != %d", what,
                     (long long)hv_nn_tensor_numel(y), ny);
        }
        hv_nn_graph_free(g);
        hv_nn_backend_free(be);
    }
}

/* -------------------------------------------------------- reflection pad */

/* x (1, 1, 2, 3) = [[1, 2, 3], [4, 5, 6]], pads top 1, bottom 1, left 2,
 * right 1 -> (1, 1, 4, 6). ReflectionPad mirrors about the border element
 * without repeating it: output row i reads input row |i - 1| reflected at
 * 1 (rows 1, 0, 1, 0); output column j reads |j - 2| reflected at 2
 * (columns 2, 1, 0, 1, 2, 1). So a row [a, b, c] becomes [c, b, a, b, c, b]:
 *   [6 5 4 5 6 5] [3 2 1 2 3 2] [6 5 4 5 6 5] [3 2 1 2 3 2].
 * d sum(y) / dx counts the reads: each row twice, columns 1, 3, 2 times:
 *   dx = [[2, 6, 4], [2, 6, 4]]. */
static hv_nn_tensor *rpad_1121(hv_nn_graph *g, hv_nn_tensor *x) { return hv_nn_reflect_pad(g, x, 1, 1, 2, 1); }

static void test_reflect_pad_hand(void)
{
    const float xv[6] = {1, 2, 3, 4, 5, 6};
    const double y[24] = {6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2};
    const double dx[6] = {2, 6, 4, 2, 6, 4};
    run1("reflect_pad", S(1, 1, 2, 3), xv, rpad_1121, NULL, y, 24, dx);
}

/* -------------------------------------------------- bilinear upsampling */

/* x (1, 1, 2, 2) = [[0, 1], [2, 3]], i.e. x(r, c) = 2r + c, a linear
 * function, which bilinear interpolation reproduces exactly. Factor 2,
 * align_corners: output index i samples position i (2 - 1) / (4 - 1) = i/3,
 * so y[i][j] = 2 i/3 + j/3 = (2i + j) / 3.
 * d sum(y) / dx: along one axis the four outputs give input 0 the weights
 * 1, 2/3, 1/3, 0 (sum 2) and input 1 the rest (sum 2); in 2-D every input
 * gets 2 * 2 = 4. */
static hv_nn_tensor *upbl2(hv_nn_graph *g, hv_nn_tensor *x) { return hv_nn_upsample_bilinear(g, x, 2); }

/* x (1, 1, 1, 3) = [0, 3, 6], factor 2 -> (1, 1, 2, 6). One input row: both
 * output rows copy it (position 0). Columns: j (3 - 1) / (6 - 1) = 0.4 j,
 * values 3 * 0.4 j = 0, 1.2, 2.4, 3.6, 4.8, 6. Column weights of the inputs:
 * input 0 gets 1 (j 0), 0.6 (j 1), 0.2 (j 2) = 1.8; input 1 gets 0.4, 0.8,
 * 0.8, 0.4 = 2.4; input 2 gets 0.2, 0.6, 1 = 1.8; times the 2 rows. */
static void test_upsample_bilinear_hand(void)
{
    const float xv[4] = {0, 1, 2, 3};
    double y[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) y[i * 4 + j] = (2.0 * i + j) / 3.0;
    const double dx[4] = {4, 4, 4, 4};
    run1("upsample_bilinear 2x2", S(1, 1, 2, 2), xv, upbl2, NULL, y, 16, dx);

    const float xr[3] = {0, 3, 6};
    const double yr[12] = {0, 1.2, 2.4, 3.6, 4.8, 6, 0, 1.2, 2.4, 3.6, 4.8, 6};
    const double dxr[3] = {3.6, 4.8, 3.6};
    run1("upsample_bilinear 1x3", S(1, 1, 1, 3), xr, upbl2, NULL, yr, 12, dxr);
}

/* ---------------------------------------------------------- AOT gate norm */

/* x (1, 2, 1, 4); y = 5 (2 (x - mean) / (std + 1e-9) - 1), std unbiased.
 *  channel 0 = [1, 2, 3, 4]: mean 2.5, d = -1.5, -0.5, 0.5, 1.5, sum d^2 = 5,
 *    std = sqrt(5/3); y = 5 (2 d / sqrt(5/3) - 1).
 *  channel 1 = [0, 0, 0, 6]: mean 1.5, d = -1.5 (x3), 4.5, sum d^2 = 27,
 *    std = sqrt(27/3) = 3; y = 5 (2 d / 3 - 1) = -10, -10, -10, 10.
 * Loss sum(y * r), r = 0 on channel 0 and [1, 0, 0, 0] on channel 1: only
 * y1[0] = 10 d0 / s - 5 counts. Perturbing x1[k] by e moves the mean by
 * e/4 and sum d^2 by 2 e d_k (sum d = 0), so s by e d_k / (3 s):
 *   dy1[0]/dx1[k] = 10 ((delta_0k - 1/4) / s - d0 d_k / (3 s^3))
 *                 = 10 ((delta_0k - 1/4) / 3 + 1.5 d_k / 81)
 *   k = 0: 10 (0.25 - 1/36) = 20/9;  k = 1, 2: 10 (-1/12 - 1/36) = -10/9;
 *   k = 3: 10 (-1/12 + 1/12) = 0.  Channel 0 gets no gradient. */
static hv_nn_tensor *aotn(hv_nn_graph *g, hv_nn_tensor *x) { return hv_nn_aot_norm(g, x); }

static void test_aot_norm_hand(void)
{
    const float xv[8] = {1, 2, 3, 4, 0, 0, 0, 6};
    const float rv[8] = {0, 0, 0, 0, 1, 0, 0, 0};
    const double s0 = sqrt(5.0 / 3.0);
    const double y[8] = {5 * (2 * -1.5 / s0 - 1), 5 * (2 * -0.5 / s0 - 1), 5 * (2 * 0.5 / s0 - 1),
                         5 * (2 * 1.5 / s0 - 1), -10, -10, -10, 10};
    const double dx[8] = {0, 0, 0, 0, 20.0 / 9, -10.0 / 9, -10.0 / 9, 0};
    run1("aot_norm", S(1, 2, 1, 4), xv, aotn, rv, y, 8, dx);
}

/* ------------------------------------------------------------------ tanh */

/* tanh(0) = 0, tanh(ln 2) = (4 - 1) / (4 + 1) = 0.6, tanh(-ln 3) = -(9 - 1)
 * / (9 + 1) = -0.8; derivative 1 - y^2 = 1, 0.64, 0.36. */
static hv_nn_tensor *tanh_(hv_nn_graph *g, hv_nn_tensor *x) { return hv_nn_tanh(g, x); }

static void test_tanh_hand(void)
{
    const float xv[3] = {0.0f, (float)log(2.0), (float)-log(3.0)};
    const double y[3] = {0, 0.6, -0.8};
    const double dx[3] = {1, 0.64, 0.36};
    run1("tanh", S(1, 1, 1, 3), xv, tanh_, NULL, y, 3, dx);
}

/* --------------------------------------------------------- shape errors */

static hv_nn_tensor *bad_rpad_eq(hv_nn_graph *g) /* pad = H: PyTorch refuses it too */
{
    return hv_nn_reflect_pad(g, in_(g, 4, S(1, 1, 3, 4)), 3, 0, 0, 0);
}
static hv_nn_tensor *bad_rpad_w(hv_nn_graph *g)
{
    return hv_nn_reflect_pad(g, in_(g, 4, S(2, 3, 8, 2)), 1, 1, 1, 2);
}
static hv_nn_tensor *bad_rpad_neg(hv_nn_graph *g)
{
    return hv_nn_reflect_pad(g, in_(g, 4, S(1, 1, 5, 5)), 1, -1, 1, 1);
}
static hv_nn_tensor *bad_rpad_rank(hv_nn_graph *g)
{
    return hv_nn_reflect_pad(g, in_(g, 3, S(1, 5, 5)), 1, 1, 1, 1);
}
static hv_nn_tensor *bad_up_factor(hv_nn_graph *g)
{
    return hv_nn_upsample_bilinear(g, in_(g, 4, S(1, 2, 3, 3)), 0);
}
static hv_nn_tensor *bad_up_rank(hv_nn_graph *g)
{
    return hv_nn_upsample_bilinear(g, in_(g, 5, S(1, 2, 3, 3, 3)), 2);
}
static hv_nn_tensor *bad_norm_1x1(hv_nn_graph *g) { return hv_nn_aot_norm(g, in_(g, 4, S(2, 3, 1, 1))); }
static hv_nn_tensor *bad_norm_rank(hv_nn_graph *g) { return hv_nn_aot_norm(g, in_(g, 2, S(2, 3))); }

static void test_shape_errors(void)
{
    expect_refused("reflect_pad top = H", bad_rpad_eq, (const char *const[]){"(1, 1, 3, 4)", "top 3", "H 3"}, 3);
    expect_refused("reflect_pad right = W", bad_rpad_w, (const char *const[]){"(2, 3, 8, 2)", "right 2", "W 2"}, 3);
    expect_refused("reflect_pad negative", bad_rpad_neg, (const char *const[]){"bottom -1", ">= 0"}, 2);
    expect_refused("reflect_pad on a 3-D x", bad_rpad_rank, (const char *const[]){"(1, 5, 5)"}, 1);
    expect_refused("upsample_bilinear factor 0", bad_up_factor, (const char *const[]){"factor 0", "(1, 2, 3, 3)"}, 2);
    expect_refused("upsample_bilinear on a 5-D x", bad_up_rank, (const char *const[]){"(1, 2, 3, 3, 3)"}, 1);
    expect_refused("aot_norm on 1x1 planes", bad_norm_1x1, (const char *const[]){"(2, 3, 1, 1)", "H*W >= 2"}, 2);
    expect_refused("aot_norm on a 2-D x", bad_norm_rank, (const char *const[]){"(2, 3)"}, 1);
}

int main(void)
{
    test_reflect_pad_hand();
    test_upsample_bilinear_hand();
    test_aot_norm_hand();
    test_tanh_hand();
    test_shape_errors();
    return hv_test_done();
}
