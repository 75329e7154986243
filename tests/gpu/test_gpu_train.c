/*
 * test_gpu_train.c: the CUDA backend (hv_gpu_backend_create) on a small
 * convolutional network, against the CPU backend (itself checked against
 * PyTorch by test_nn_ops).
 *
 *   1. Bad requests fail with a clear status, with or without a device:
 *      NULL out and a negative device are HV_ERR_ARG, device 1000 is
 *      HV_ERR_GPU; without a usable device, device 0 is HV_ERR_GPU with a
 *      message naming the backend, and the rest is skipped (exit 77).
 *   2. Training: conv 3x3 (+bias) -> ELU -> conv 3x3 stride 2 -> leaky ReLU
 *      -> conv 3x3 -> sigmoid -> MSE against a target, 20 Adam steps (the
 *      backend's adam_step kernel) from the same seeded start. The loss of
 *      every step on CUDA matches the CPU's: fp32 (HV_CUDA_TF32=0) within
 *      1e-4 relative, TF32 (the default) within 1e-2 relative (TF32 keeps 10
 *      mantissa bits: about 5e-4 relative per product, summed over 72..576
 *      terms and 20 optimiser steps).
 *   3. Inference: the same network planned for inference (activations fused
 *      into the convolutions, applied by the backend's kernel) matches the
 *      reference backend in fp32 within 1e-4 relative L2 error.
 *   4. The training and classifier ops at sizes where the backend's sums
 *      run over several blocks (test_gpu_ops' cases are too small for
 *      that): batch norm over (4, 3, 64, 64) (each channel split over
 *      several blocks), softmax over its channels, sum, MSE, BCE with
 *      logits and Dice over 49152 elements (several partial sums), spectral
 *      norm of a (64, 32, 3, 3) kernel; two training passes (running
 *      statistics and u, v move twice), forward and backward, against the
 *      reference backend: every output, gradient and updated buffer within
 *      1e-6 relative L2 error (both sum in double; what differs is the
 *      order of the double sums and CUDA's expf/exp/log1p). Measured on an
 *      H200: at most 5.8e-8 (beta gradient), 0 for the batch norm output,
 *      running statistics and everything of spectral norm; the backend's
 *      sums are in a fixed order, so these repeat run to run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/gpu.h"
#include "hv/nn.h"
#include "hv_test.h"

#define STEPS 20
#define NB 8

typedef struct net {
    hv_nn_params *ps;
    hv_nn_param *w[3], *b[3];
} net;

static void net_init(net *n)
{
    static const int64_t ws[3][4] = {{8, 2, 3, 3}, {4, 8, 3, 3}, {1, 4, 3, 3}};
    char name[16];
    hv_rng r;
    hv_rng_seed(&r, 7, 0);
    HV_CHECK_OK(hv_nn_params_create(&n->ps));
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "w%d", i);
        HV_CHECK_OK(hv_nn_params_add(n->ps, name, 4, ws[i], 1, &n->w[i]));
        snprintf(name, sizeof name, "b%d", i);
        HV_CHECK_OK(hv_nn_params_add(n->ps, name, 1, ws[i], 1, &n->b[i]));
        hv_nn_init_torch_default(n->w[i], n->b[i], &r);
    }
}

/* the network's output (N, 1, 8, 8) from x (N, 2, 16, 16) */
static hv_nn_tensor *net_build(hv_nn_graph *g, net *n, hv_nn_tensor *x)
{
    hv_nn_tensor *h = hv_nn_conv2d(g, x, hv_nn_param_tensor(g, n->w[0]),
                                   hv_nn_param_tensor(g, n->b[0]), 1, 1, 1);
    h = hv_nn_elu(g, h, 1.0f);
    h = hv_nn_conv2d(g, h, hv_nn_param_tensor(g, n->w[1]), hv_nn_param_tensor(g, n->b[1]), 2, 1, 1);
    h = hv_nn_leaky_relu(g, h, 0.2f);
    h = hv_nn_conv2d(g, h, hv_nn_param_tensor(g, n->w[2]), hv_nn_param_tensor(g, n->b[2]), 1, 1, 1);
    return hv_nn_sigmoid(g, h);
}

static float xs[NB * 2 * 16 * 16], ts[NB * 64];

static void make_data(void)
{
    hv_rng r;
    hv_rng_seed(&r, 11, 0);
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) xs[i] = (float)hv_rng_normal(&r);
    /* target: a disc of radius 2.5 + item/2 around the centre of the 8x8 map */
    for (int b = 0; b < NB; b++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                ts[(b * 8 + y) * 8 + x] =
                    (float)((y - 3.5) * (y - 3.5) + (x - 3.5) * (x - 3.5) <= (2.5 + b / 2.0) * (2.5 + b / 2.0));
}

/* STEPS training steps on backend be; losses[i] before step i's update */
static int train(hv_nn_backend *be, double *losses)
{
    net n = {0};
    hv_nn_graph *g = NULL;
    hv_nn_adam *adam = NULL;
    int ok = 0;
    net_init(&n);
    HV_CHECK_OK(hv_nn_params_bind(n.ps, be));
    HV_CHECK_OK(hv_nn_graph_create(&g));
    const int64_t xsh[4] = {NB, 2, 16, 16}, tsh[4] = {NB, 1, 8, 8};
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, xsh), *t = hv_nn_input(g, "t", 4, tsh);
    hv_nn_tensor *loss = hv_nn_mse(g, net_build(g, &n, x), t);
    hv_nn_set_output(loss);
    HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
    HV_CHECK_OK(hv_nn_adam_create(n.ps, 1e-2, 0.9, 0.999, 1e-8, &adam));
    if (hv_nn_graph_status(g) != HV_OK || !adam) goto done;
    for (int s = 0; s < STEPS; s++) {
        float l = 0;
        HV_CHECK_OK(hv_nn_tensor_set(x, xs, sizeof xs / sizeof xs[0]));
        HV_CHECK_OK(hv_nn_tensor_set(t, ts, sizeof ts / sizeof ts[0]));
        hv_nn_params_zero_grad(n.ps);
        HV_CHECK_OK(hv_nn_graph_forward(g));
        HV_CHECK_OK(hv_nn_graph_backward(g, loss));
        HV_CHECK_OK(hv_nn_tensor_get(loss, &l, 1));
        HV_CHECK_OK(hv_nn_adam_step(adam));
        losses[s] = l;
    }
    ok = 1;
done:
    hv_nn_adam_free(adam);
    hv_nn_graph_free(g);
    hv_nn_params_free(n.ps);
    return ok;
}

static void compare_training(hv_nn_backend *cpu, const char *tf32, double tol)
{
    double lc[STEPS], lg[STEPS], worst = 0;
    hv_nn_backend *gpu = NULL;
    setenv("HV_CUDA_TF32", tf32, 1);
    HV_CHECK_OK(hv_gpu_backend_create(0, &gpu));
    if (!gpu) return;
    HV_CHECK(hv_gpu_backend_tf32(gpu) == (strcmp(tf32, "1") == 0), "tf32 switch %s not taken", tf32);
    if (train(cpu, lc) && train(gpu, lg)) {
        HV_CHECK(lc[STEPS - 1] < 0.8 * lc[0], "cpu: the loss does not fall (%g -> %g): the check "
                 "would compare nothing", lc[0], lc[STEPS - 1]);
        for (int s = 0; s < STEPS; s++) {
            double e = fabs(lg[s] - lc[s]) / fmax(fabs(lc[s]), 1e-12);
            worst = fmax(worst, e);
            HV_CHECK(e <= tol, "HV_CUDA_TF32=%s step %d: loss cuda %.8g vs cpu %.8g (relative %.3g > %.3g)",
                     tf32, s, lg[s], lc[s], e, tol);
        }
        printf("# training, HV_CUDA_TF32=%s: loss %.6g -> %.6g (cpu), worst relative difference "
               "%.3g (bound %.0e)\n", tf32, lc[0], lc[STEPS - 1], worst, tol);
    }
    hv_nn_backend_free(gpu);
}

static void infer(hv_nn_backend *be, float *y)
{
    net n = {0};
    hv_nn_graph *g = NULL;
    net_init(&n);
    HV_CHECK_OK(hv_nn_params_bind(n.ps, be));
    HV_CHECK_OK(hv_nn_graph_create(&g));
    const int64_t xsh[4] = {NB, 2, 16, 16};
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, xsh);
    hv_nn_tensor *out = net_build(g, &n, x);
    hv_nn_set_output(out);
    HV_CHECK_OK(hv_nn_graph_plan(g, be, 0));
    if (hv_nn_graph_status(g) == HV_OK) {
        HV_CHECK_OK(hv_nn_tensor_set(x, xs, sizeof xs / sizeof xs[0]));
        HV_CHECK_OK(hv_nn_graph_forward(g));
        HV_CHECK_OK(hv_nn_tensor_get(out, y, NB * 64));
    }
    hv_nn_graph_free(g);
    hv_nn_params_free(n.ps);
}

/* ---- 4. the training and classifier ops at size */
#define BC 3
#define BNN (4 * BC * 64 * 64)
#define SNH 64
#define SNW (32 * 3 * 3)

typedef struct big {
    float y[BNN], sm[BNN], dx[BNN], loss;
    float dg[BC], db[BC], rm[BC], rv[BC];
    float dw[SNH * SNW], u[SNH], v[SNW];
} big;

static float bx[BNN], bw[BNN], bt[BNN], bt01[BNN], bq[SNH * SNW];

static void big_data(void)
{
    hv_rng r;
    hv_rng_seed(&r, 23, 0);
    for (int i = 0; i < BNN; i++) {
        bx[i] = (float)(2.0 * hv_rng_normal(&r) + (i / (64 * 64)) % BC); /* per-channel offsets */
        bw[i] = (float)hv_rng_normal(&r);
        bt[i] = (float)hv_rng_normal(&r);
        bt01[i] = hv_rng_uniform(&r) < 0.3 ? 1.0f : 0.0f;
    }
    for (int i = 0; i < SNH * SNW; i++) bq[i] = (float)hv_rng_normal(&r);
}

static int big_run(hv_nn_backend *be, big *o)
{
    hv_nn_params *ps = NULL;
    hv_nn_param *gam, *bet, *rm, *rv, *wsn, *u, *v;
    hv_nn_graph *g = NULL;
    hv_rng r;
    int ok = 0;
    const int64_t c = BC, xsh[4] = {4, BC, 64, 64}, wsh[4] = {SNH, 32, 3, 3}, nu = SNH, nv = SNW;
    hv_rng_seed(&r, 29, 0);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_nn_params_add(ps, "gamma", 1, &c, 1, &gam));
    HV_CHECK_OK(hv_nn_params_add(ps, "beta", 1, &c, 1, &bet));
    HV_CHECK_OK(hv_nn_params_add(ps, "rm", 1, &c, 0, &rm));
    HV_CHECK_OK(hv_nn_params_add(ps, "rv", 1, &c, 0, &rv));
    HV_CHECK_OK(hv_nn_params_add(ps, "wsn", 4, wsh, 1, &wsn));
    HV_CHECK_OK(hv_nn_params_add(ps, "u", 1, &nu, 0, &u));
    HV_CHECK_OK(hv_nn_params_add(ps, "v", 1, &nv, 0, &v));
    if (hv_test_fail_ > 0) goto done;
    hv_nn_init_normal(gam, &r, 1.0, 0.2);
    hv_nn_init_normal(bet, &r, 0.0, 0.2);
    hv_nn_init_const(rm, 0.0);
    hv_nn_init_const(rv, 1.0);
    hv_nn_init_normal(wsn, &r, 0.0, 0.1);
    hv_nn_init_normal(u, &r, 0.0, 1.0);
    hv_nn_init_normal(v, &r, 0.0, 1.0);
    HV_CHECK_OK(hv_nn_params_bind(ps, be));
    HV_CHECK_OK(hv_nn_graph_create(&g));
    if (hv_test_fail_ > 0) goto done;
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, xsh), *w = hv_nn_input(g, "w", 4, xsh);
    hv_nn_tensor *t = hv_nn_input(g, "t", 4, xsh), *t01 = hv_nn_input(g, "t01", 4, xsh);
    hv_nn_tensor *q = hv_nn_input(g, "q", 4, wsh);
    hv_nn_set_requires_grad(x);
    hv_nn_tensor *y = hv_nn_batch_norm(g, x, hv_nn_param_tensor(g, gam), hv_nn_param_tensor(g, bet),
                                       hv_nn_param_tensor(g, rm), hv_nn_param_tensor(g, rv), 0.1f,
                                       1e-5f);
    hv_nn_tensor *sm = hv_nn_softmax(g, y);
    hv_nn_tensor *sn = hv_nn_spectral_norm(g, hv_nn_param_tensor(g, wsn), hv_nn_param_tensor(g, u),
                                           hv_nn_param_tensor(g, v));
    hv_nn_tensor *l = hv_nn_add(g, hv_nn_sum(g, hv_nn_mul(g, y, w)), hv_nn_mse(g, y, t));
    l = hv_nn_add(g, l, hv_nn_bce_logits(g, y, t01));
    l = hv_nn_add(g, l, hv_nn_dice(g, hv_nn_sigmoid(g, y), t01));
    l = hv_nn_add(g, l, hv_nn_sum(g, hv_nn_mul(g, sm, w)));
    l = hv_nn_add(g, l, hv_nn_sum(g, hv_nn_mul(g, sn, q)));
    hv_nn_set_output(y);
    hv_nn_set_output(sm);
    hv_nn_set_output(l);
    HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
    if (hv_nn_graph_status(g) != HV_OK || hv_test_fail_ > 0) goto done;
    for (int it = 0; it < 2; it++) {
        hv_nn_params_zero_grad(ps);
        HV_CHECK_OK(hv_nn_tensor_set(x, bx, BNN));
        HV_CHECK_OK(hv_nn_tensor_set(w, bw, BNN));
        HV_CHECK_OK(hv_nn_tensor_set(t, bt, BNN));
        HV_CHECK_OK(hv_nn_tensor_set(t01, bt01, BNN));
        HV_CHECK_OK(hv_nn_tensor_set(q, bq, SNH * SNW));
        HV_CHECK_OK(hv_nn_graph_forward(g));
        HV_CHECK_OK(hv_nn_graph_backward(g, l));
    }
    HV_CHECK_OK(hv_nn_tensor_get(y, o->y, BNN));
    HV_CHECK_OK(hv_nn_tensor_get(sm, o->sm, BNN));
    HV_CHECK_OK(hv_nn_tensor_get(l, &o->loss, 1));
    HV_CHECK_OK(hv_nn_tensor_get_grad(x, o->dx, BNN));
    HV_CHECK_OK(hv_nn_param_get_grad(gam, o->dg, BC));
    HV_CHECK_OK(hv_nn_param_get_grad(bet, o->db, BC));
    HV_CHECK_OK(hv_nn_param_get(rm, o->rm, BC));
    HV_CHECK_OK(hv_nn_param_get(rv, o->rv, BC));
    HV_CHECK_OK(hv_nn_param_get_grad(wsn, o->dw, SNH * SNW));
    HV_CHECK_OK(hv_nn_param_get(u, o->u, SNH));
    HV_CHECK_OK(hv_nn_param_get(v, o->v, SNW));
    ok = hv_test_fail_ == 0;
done:
    hv_nn_graph_free(g);
    hv_nn_params_free(ps);
    return ok;
}

/* relative L2 error of a vs the reference r */
static double rel_l2(const float *a, const float *r, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - r[i]) * ((double)a[i] - r[i]);
        den += (double)r[i] * r[i];
    }
    return sqrt(num / fmax(den, 1e-30));
}

static void compare_big(void)
{
    static big rr, rg;
    hv_nn_backend *ref = NULL, *gpu = NULL;
    setenv("HV_CUDA_TF32", "0", 1);
    HV_CHECK_OK(hv_nn_backend_create_ref(&ref));
    HV_CHECK_OK(hv_gpu_backend_create(0, &gpu));
    big_data();
    if (ref && gpu && big_run(ref, &rr) && big_run(gpu, &rg)) {
        const struct {
            const char *what;
            const float *a, *r;
            size_t n;
        } cmp[] = {
            {"batch norm output", rg.y, rr.y, BNN},   {"softmax output", rg.sm, rr.sm, BNN},
            {"loss", &rg.loss, &rr.loss, 1},          {"input gradient", rg.dx, rr.dx, BNN},
            {"gamma gradient", rg.dg, rr.dg, BC},     {"beta gradient", rg.db, rr.db, BC},
            {"running mean", rg.rm, rr.rm, BC},       {"running variance", rg.rv, rr.rv, BC},
            {"spectral norm weight gradient", rg.dw, rr.dw, SNH * SNW},
            {"spectral norm u", rg.u, rr.u, SNH},     {"spectral norm v", rg.v, rr.v, SNW},
        };
        double worst = 0;
        for (size_t k = 0; k < sizeof cmp / sizeof cmp[0]; k++) {
            const double e = rel_l2(cmp[k].a, cmp[k].r, cmp[k].n);
            worst = fmax(worst, e);
            printf("# ops at size: %s, relative L2 error vs ref %.3g\n", cmp[k].what, e);
            HV_CHECK(isfinite(e) && e <= 1e-6, "ops at size: %s: cuda vs ref relative L2 error "
                     "%.3g > 1e-6", cmp[k].what, e);
        }
        printf("# ops at size: worst %.3g (bound 1e-6)\n", worst);
    }
    hv_nn_backend_free(gpu);
    hv_nn_backend_free(ref);
}

int main(void)
{
    hv_nn_backend *be = NULL, *cpu = NULL;
    /* 1. bad requests */
    HV_CHECK(hv_gpu_backend_create(0, NULL) == HV_ERR_ARG, "NULL out accepted");
    HV_CHECK(hv_gpu_backend_create(-1, &be) == HV_ERR_ARG && !be, "device -1 accepted");
    HV_CHECK(hv_gpu_backend_create(1000, &be) == HV_ERR_GPU && !be, "device 1000 accepted");
    HV_CHECK(strstr(hv_error_detail(), "cuda backend") != NULL, "device 1000: unclear message '%s'",
             hv_error_detail());
    hv_status st = hv_gpu_backend_create(0, &be);
    if (st != HV_OK) {
        HV_CHECK(st == HV_ERR_GPU && !be, "no device: status %s, not gpu", hv_status_name(st));
        HV_CHECK(strstr(hv_error_detail(), "cuda backend") != NULL, "no device: unclear message '%s'",
                 hv_error_detail());
        printf("# %s\n", hv_error_detail());
        if (hv_test_fail_ > 0) return hv_test_done();
        return hv_test_skip("no usable CUDA device: the training comparison needs one");
    }
    hv_nn_backend_free(be);
    make_data();

    /* 2. training vs the CPU backend */
    HV_CHECK_OK(hv_nn_backend_create_cpu(&cpu));
    compare_training(cpu, "0", 1e-4);
    compare_training(cpu, "1", 1e-2);
    hv_nn_backend_free(cpu);

    /* 3. inference with fused activations vs the reference kernels, fp32 */
    static float yr[NB * 64], yg[NB * 64];
    hv_nn_backend *ref = NULL, *gpu = NULL;
    setenv("HV_CUDA_TF32", "0", 1);
    HV_CHECK_OK(hv_nn_backend_create_ref(&ref));
    HV_CHECK_OK(hv_gpu_backend_create(0, &gpu));
    if (ref && gpu) {
        infer(ref, yr);
        infer(gpu, yg);
        double num = 0, den = 0;
        for (int i = 0; i < NB * 64; i++) {
            num += ((double)yg[i] - yr[i]) * ((double)yg[i] - yr[i]);
            den += (double)yr[i] * yr[i];
        }
        double e = sqrt(num / fmax(den, 1e-30));
        printf("# inference (fused activations), fp32: relative L2 error vs ref %.3g (bound 1e-4)\n", e);
        HV_CHECK(den > 0 && e <= 1e-4, "inference: cuda vs ref relative L2 error %.3g > 1e-4", e);
    }
    hv_nn_backend_free(gpu);
    hv_nn_backend_free(ref);

    /* 4. the training and classifier ops at size vs the reference kernels */
    compare_big();
    return hv_test_done();
}
