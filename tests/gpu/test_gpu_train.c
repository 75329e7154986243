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
 *      terms and 20 optimiser steps). MSE runs on host staging copies, so the
 *      staged path is part of the loop.
 *   3. Inference: the same network planned for inference (activations fused
 *      into the convolutions, applied by the backend's kernel) matches the
 *      reference backend in fp32 within 1e-4 relative L2 error.
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
    return hv_test_done();
}
