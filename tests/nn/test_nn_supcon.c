/*
 * test_nn_supcon.c: hand-computed values of the ops of supervised
 * contrastive learning (l2_normalize and the SupCon loss of Khosla et al.,
 * NeurIPS 2020) and of the weighted cross entropy of the classification
 * that follows, the shape errors of their builders and the refusal of bad
 * labels and weights at forward.
 *
 * Their op contract (gradients vs finite differences, the cpu backend and
 * the fake devices vs the reference kernels, backward adding into
 * gradients) and their comparison with PyTorch are in test_nn_ops.c with
 * every other op. Here: tiny inputs whose outputs and gradients follow from
 * closed forms worked out by hand (written out at each case), on the
 * reference and the cpu backends, bound 1e-5 relative.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/nn.h"
#include "hv_test.h"
#include "nn_hand.h"

/* ------------------------------------------------------- L2 normalisation */

/* x (3, 2), eps 0.5, loss sum(y * r):
 *  row 0 = (3, 4): norm 5 > eps, y = (0.6, 0.8); r = (1, 0):
 *    dx = (r - x (x . r) / 25) / 5 = ((1, 0) - (3, 4) 3/25) / 5 = (16, -12) / 125.
 *  row 1 = (0.12, 0.16): norm 0.2 < eps, y = x / 0.5 = (0.24, 0.32);
 *    r = (1, 1): dx = r / eps = (2, 2).
 *  row 2 = (0, 0): y = (0, 0); r = (0, 1): dx = (0, 2). */
static void test_l2_normalize_hand(void)
{
    const float xv[6] = {3, 4, 0.12f, 0.16f, 0, 0};
    const float rv[6] = {1, 0, 1, 1, 0, 1};
    const double want_y[6] = {0.6, 0.8, 0.24, 0.32, 0, 0};
    const double want_dx[6] = {16.0 / 125, -12.0 / 125, 2, 2, 0, 2};
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *x = hv_nn_input(g, "x", 2, S(3, 2));
        hv_nn_set_requires_grad(x);
        hv_nn_tensor *y = hv_nn_l2_normalize(g, x, 0.5f);
        hv_nn_tensor *r = hv_nn_input(g, "r", 2, S(3, 2));
        hv_nn_tensor *loss = hv_nn_sum(g, hv_nn_mul(g, y, r));
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        if (hv_nn_graph_status(g) == HV_OK) {
            float got[6];
            HV_CHECK_OK(hv_nn_tensor_set(x, xv, 6));
            HV_CHECK_OK(hv_nn_tensor_set(r, rv, 6));
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(y, got, 6));
            check_all("l2_normalize", backends[bk].name, got, want_y, 6);
            HV_CHECK_OK(hv_nn_tensor_get_grad(x, got, 6));
            check_all("l2_normalize dx", backends[bk].name, got, want_dx, 6);
        }
        hv_nn_graph_free(g);
        hv_nn_backend_free(be);
    }
}

/* ----------------------------------------------------------------- SupCon */

/* Three items z0 = (1, 0), z1 = (0, 1), z2 = (1, 0), labels 0, 0, 1,
 * temperature t: s_01 = 0, s_02 = 1/t, s_12 = 0 (s_ij = z_i . z_j / t).
 *   anchor 0 (positive 1): L0 = log(e^0 + e^(1/t)) - 0 = log(1 + E), E = e^(1/t)
 *   anchor 1 (positive 0): L1 = log(e^0 + e^0) - 0 = log 2
 *   anchor 2: alone in class 1, adds 0 and counts in the mean:
 *   L = (log(1 + E) + log 2) / 3.
 * Gradient, differentiating 3L = log(e^s01 + e^s02) - s01 + log(e^s10 +
 * e^s12) - s10 directly (ds_ij/dz_i = z_j / t), with p = E / (1 + E):
 *   dz0 = ((1 - p) z1 + p z2 - z1 + z1/2 - z1) / (3t) = (p, 1 - p - 3/2) / (3t)
 *   dz1 = (z0/2 + z2/2 - z0 + (1 - p) z0 - z0) / (3t)  = (-p, 0) / (3t)
 *   dz2 = (p z0 + z1/2) / (3t)                         = (p, 1/2) / (3t). */
static void supcon_case(double t)
{
    const float zv[6] = {1, 0, 0, 1, 1, 0};
    const float lv[3] = {0, 0, 1};
    const double e = exp(1.0 / t), p = e / (1.0 + e), f = 1.0 / (3.0 * t);
    const double want_loss = (log(1.0 + e) + log(2.0)) / 3.0;
    const double want_dz[6] = {p * f, (1.0 - p - 1.5) * f, -p * f, 0, p * f, 0.5 * f};
    char what[64];
    snprintf(what, sizeof what, "supcon t = %g", t);
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *z = hv_nn_input(g, "z", 2, S(3, 2));
        hv_nn_set_requires_grad(z);
        hv_nn_tensor *lab = hv_nn_input(g, "labels", 1, S(3));
        hv_nn_tensor *loss = hv_nn_supcon(g, z, lab, (float)t);
        hv_nn_set_output(loss);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        if (hv_nn_graph_status(g) == HV_OK) {
            float got[6];
            HV_CHECK_OK(hv_nn_tensor_set(z, zv, 6));
            HV_CHECK_OK(hv_nn_tensor_set(lab, lv, 3));
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(loss, got, 1));
            check_all(what, backends[bk].name, got, &want_loss, 1);
            char dw[96];
            snprintf(dw, sizeof dw, "%s dz", what);
            HV_CHECK_OK(hv_nn_tensor_get_grad(z, got, 6));
            check_all(dw, backends[bk].name, got, want_dz, 6);

            /* a label that is not a class value: refused at forward, named */
            const float bad[3] = {0, NAN, 1};
            HV_CHECK_OK(hv_nn_tensor_set(lab, bad, 3));
            hv_error_clear();
            const hv_status st = hv_nn_graph_forward(g);
            const char *msg = hv_error_detail();
            HV_CHECK(st == HV_ERR_ARG && msg && strstr(msg, "label 1 of 3"),
                     "%s on %s: NaN label gave status %d, message \"%s\"", what,
                     backends[bk].name, (int)st, msg ? msg : "(none)");
        }
        hv_nn_graph_free(g);
        hv_nn_backend_free(be);
    }
}

static void test_supcon_hand(void)
{
    supcon_case(1.0);
    supcon_case(0.5);
}

/* ---------------------------------------------------------- cross entropy */

/* logits (2, 2), labels 0, 1, class weights (1, 3):
 *   item 0: z = (0, ln 3), softmax (1/4, 3/4), -log p_0 = ln 4, weight 1
 *   item 1: z = (0, 0), softmax (1/2, 1/2), -log p_1 = ln 2, weight 3
 *   loss = (1 ln 4 + 3 ln 2) / (1 + 3) = 5 ln 2 / 4
 *   dz_i = w_yi (softmax_i - onehot(y_i)) / 4:
 *     dz_0 = (1/4 - 1, 3/4) / 4 = (-3/16, 3/16), dz_1 = 3 (1/2, -1/2) / 4. */
static void expect_forward_refused(hv_nn_graph *g, const char *what, const char *needle)
{
    hv_error_clear();
    const hv_status st = hv_nn_graph_forward(g);
    const char *msg = hv_error_detail();
    HV_CHECK(st == HV_ERR_ARG && msg && strstr(msg, needle),
             "%s: status %d, message \"%s\" (wanted \"%s\")", what, (int)st,
             msg ? msg : "(none)", needle);
}

static void test_cross_entropy_hand(void)
{
    const float zv[4] = {0, (float)log(3.0), 0, 0};
    const float lv[2] = {0, 1}, wv[2] = {1, 3};
    const double want_loss = 5.0 * log(2.0) / 4.0;
    const double want_dz[4] = {-3.0 / 16, 3.0 / 16, 3.0 / 8, -3.0 / 8};
    for (int bk = 0; bk < N_BACKENDS; bk++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        HV_CHECK_OK(backends[bk].create(&be));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *z = hv_nn_input(g, "z", 2, S(2, 2));
        hv_nn_set_requires_grad(z);
        hv_nn_tensor *lab = hv_nn_input(g, "labels", 1, S(2));
        hv_nn_tensor *w = hv_nn_input(g, "w", 1, S(2));
        hv_nn_tensor *loss = hv_nn_cross_entropy(g, z, lab, w);
        hv_nn_set_output(loss);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        if (hv_nn_graph_status(g) == HV_OK) {
            float got[4];
            HV_CHECK_OK(hv_nn_tensor_set(z, zv, 4));
            HV_CHECK_OK(hv_nn_tensor_set(lab, lv, 2));
            HV_CHECK_OK(hv_nn_tensor_set(w, wv, 2));
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get(loss, got, 1));
            check_all("cross_entropy", backends[bk].name, got, &want_loss, 1);
            HV_CHECK_OK(hv_nn_tensor_get_grad(z, got, 4));
            check_all("cross_entropy dz", backends[bk].name, got, want_dz, 4);

            const float out_of_range[2] = {0, 2}, fraction[2] = {0.5f, 1};
            const float negative[2] = {1, -1}, zero[2] = {0, 0};
            HV_CHECK_OK(hv_nn_tensor_set(lab, out_of_range, 2));
            expect_forward_refused(g, "cross_entropy label 2 of 2 classes", "label 1 of 2 is 2");
            HV_CHECK_OK(hv_nn_tensor_set(lab, fraction, 2));
            expect_forward_refused(g, "cross_entropy label 0.5", "label 0 of 2 is 0.5");
            HV_CHECK_OK(hv_nn_tensor_set(lab, lv, 2));
            HV_CHECK_OK(hv_nn_tensor_set(w, negative, 2));
            expect_forward_refused(g, "cross_entropy weight -1", "weight of class 1 is -1");
            HV_CHECK_OK(hv_nn_tensor_set(w, zero, 2));
            expect_forward_refused(g, "cross_entropy weights 0", "sum to 0");
        }
        hv_nn_graph_free(g);
        hv_nn_backend_free(be);
    }
}

/* --------------------------------------------------------- shape errors */

static hv_nn_tensor *bad_l2_rank(hv_nn_graph *g) { return hv_nn_l2_normalize(g, in_(g, 4, S(2, 3, 1, 1)), 1e-12f); }
static hv_nn_tensor *bad_l2_eps(hv_nn_graph *g) { return hv_nn_l2_normalize(g, in_(g, 2, S(2, 3)), 0.0f); }
static hv_nn_tensor *bad_sc_rank(hv_nn_graph *g)
{
    return hv_nn_supcon(g, in_(g, 3, S(4, 3, 2)), in_(g, 1, S(4)), 0.07f);
}
static hv_nn_tensor *bad_sc_one(hv_nn_graph *g)
{
    return hv_nn_supcon(g, in_(g, 2, S(1, 3)), in_(g, 1, S(1)), 0.07f);
}
static hv_nn_tensor *bad_sc_labels(hv_nn_graph *g)
{
    return hv_nn_supcon(g, in_(g, 2, S(4, 3)), in_(g, 1, S(5)), 0.07f);
}
static hv_nn_tensor *bad_sc_temp(hv_nn_graph *g)
{
    return hv_nn_supcon(g, in_(g, 2, S(4, 3)), in_(g, 1, S(4)), 0.0f);
}

static hv_nn_tensor *bad_ce_labels(hv_nn_graph *g)
{
    return hv_nn_cross_entropy(g, in_(g, 2, S(3, 4)), in_(g, 1, S(2)), NULL);
}
static hv_nn_tensor *bad_ce_weights(hv_nn_graph *g)
{
    return hv_nn_cross_entropy(g, in_(g, 2, S(3, 4)), in_(g, 1, S(3)), in_(g, 1, S(3)));
}

static void test_shape_errors(void)
{
    expect_refused("cross_entropy labels of another N", bad_ce_labels, (const char *const[]){"(2)", "(3, 4)"}, 2);
    expect_refused("cross_entropy weights of another C", bad_ce_weights, (const char *const[]){"weights (3)", "(3, 4)"}, 2);
    expect_refused("l2_normalize on a 4-D x", bad_l2_rank, (const char *const[]){"(2, 3, 1, 1)", "N, K"}, 2);
    expect_refused("l2_normalize eps 0", bad_l2_eps, (const char *const[]){"eps 0"}, 1);
    expect_refused("supcon on a 3-D z", bad_sc_rank, (const char *const[]){"(4, 3, 2)"}, 1);
    expect_refused("supcon on one item", bad_sc_one, (const char *const[]){"(1, 3)", "N >= 2"}, 2);
    expect_refused("supcon labels of another N", bad_sc_labels, (const char *const[]){"(5)", "(4, 3)"}, 2);
    expect_refused("supcon temperature 0", bad_sc_temp, (const char *const[]){"temperature 0"}, 1);
}

int main(void)
{
    test_l2_normalize_hand();
    test_supcon_hand();
    test_cross_entropy_hand();
    test_shape_errors();
    return hv_test_done();
}
