/*
 * test_nn_ops.c: the backend op contract (after ggml's test-backend-ops).
 *
 * Every op case is built as a small graph
 *     sentinel_a, leaves..., op(...) -> out, sentinel_b, loss = sum(out * R)
 * and checked three ways:
 *   1. PyTorch (independent expected values): tests/nn/fixtures/nn_ops.bin,
 *      written by scripts/make_nn_ops_fixture.py, holds for every case its
 *      leaf values (inputs and parameters, in build order), R, PyTorch's
 *      output, PyTorch's autograd gradient of every leaf that takes one, and
 *      the buffers a training forward updates (BN running statistics,
 *      spectral-norm u and v). Each case runs from those values on every
 *      backend; output, gradients and buffers must match within a relative
 *      L2 error bound, every expected gradient must be non-zero, and the
 *      fixture must hold exactly the leaves the case builds.
 *   2. every gradient vs central finite differences of the loss, on every
 *      backend, from seeded inputs (relative L2 error over up to 16 sampled
 *      elements per leaf); sentinels before and after the op untouched
 *      (buffer overruns); no heap allocation in forward and backward.
 *   3. every other backend vs the reference backend, forward and backward
 *      (relative squared error): cpu (oneDNN convolution and eltwise
 *      primitives, OpenBLAS inside the reference kernels of deconv2d,
 *      linear and contextual attention; the same reference kernels for the
 *      rest, where the check cannot fail), and the test-only fake device of
 *      fake_device.h twice: running every op itself on device memory
 *      (parameters bound with hv_nn_params_bind, every value through its
 *      copies) and declining every op (every op on host staging copies).
 *      Checks 1 and 2 run on every backend too; they are listed in
 *      `backends` below.
 *   4. on every backend, backward adds into the gradients rather than
 *      writing them: each gradient-taking leaf also feeds a second consumer
 *      whose backward runs first (check_accum; "acc" is its worst NMSE,
 *      bound 1e-8).
 * Inputs are drawn away from the kinks of piecewise ops (ReLU at 0, clamp
 * bounds, |x - t| = 0) by more than the finite-difference step. Buffers that
 * a forward pass updates (spectral-norm vectors, BN running statistics) are
 * restored before every forward so that finite differences see one function.
 *
 * Bounds: measured values are printed for every case ("torch", "fd", and
 * per backend its forward and gradient error vs ref); the bounds below are about 10-100x above what was measured on
 * this machine (see the comment at each bound).
 *
 * One file past 1,000 lines on purpose: the case table, its builders and
 * the runner are one contract with scripts/make_nn_ops_fixture.py (leaf i
 * of a case here is leaf i there), read side by side; the hand-value tests
 * of op families live in their own files (test_nn_ops3d.c, test_nn_aot.c,
 * test_nn_supcon.c).
 *
 * Built a second time as tests/gpu's test_gpu_ops with HV_TEST_CUDA: the
 * registry then also holds "cuda" (hv_gpu_backend_create on device 0, run
 * with HV_CUDA_TF32=0, i.e. plain fp32 convolutions), checked against
 * PyTorch and the reference kernels to 1e-4 relative L2 error (NMSE 1e-8;
 * cuDNN sums in other orders and with other algorithms, Winograd and FFT
 * among them, than the reference loops). Without a usable device that
 * build prints why and exits 77 (skipped).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_device.h"
#include "hv/nn.h"
#include "hv_test.h"
#include "nn_fixture.h"
#ifdef HV_TEST_CUDA
#include "hv/gpu.h"
#endif

/* ------------------------------------------------------- the backends */
/* Every backend available to this build, the reference first (the ground
 * truth of check 3). A new backend (cuda) is appended here, under the build
 * switch that provides it. */
static hv_status create_fake_all(hv_nn_backend **out) { return fake_device_create(out, NULL, -1); }
static hv_status create_fake_none(hv_nn_backend **out) { return fake_device_create(out, NULL, 0); }

#ifdef HV_TEST_CUDA
static hv_status create_cuda(hv_nn_backend **out) { return hv_gpu_backend_create(0, out); }
#endif

typedef struct backend_entry {
    const char *name;
    hv_status (*create)(hv_nn_backend **out);
    /* relative L2 error allowed vs PyTorch and vs ref when above the case's
     * own bounds (0: the case's bounds) */
    double rel_tol;
} backend_entry;

static const backend_entry backends[] = {
    {"ref", hv_nn_backend_create_ref, 0},
    {"cpu", hv_nn_backend_create_cpu, 0},
    /* device memory, every op on its own kernels: parameters bound, copies */
    {"fake_device", create_fake_all, 0},
    /* device memory, every op declined: every op through host staging */
    {"fake_staged", create_fake_none, 0},
#ifdef HV_TEST_CUDA
    /* cuDNN convolutions, the backend's own kernels and cuBLAS GEMMs in
     * fp32 (main sets HV_CUDA_TF32=0), every op of the contract native */
    {"cuda", create_cuda, 1e-4},
#endif
};
#define N_BACKENDS ((int)(sizeof backends / sizeof backends[0]))

enum kind { K_NORMAL, K_SAFE, K_CLAMPSAFE, K_POS01, K_SMALL, K_ZERO, K_MASK, K_VAR, K_UNIT, K_DISTINCT, K_LABELS };

#define MAX_LEAVES 8

typedef struct leaf {
    hv_nn_tensor *t;
    hv_nn_param *p; /* for parameters */
    enum kind kind;
    int rg;
    float *host;
    size_t n;
} leaf;

typedef struct ctx {
    hv_nn_graph *g;
    hv_nn_params *ps;
    leaf lv[MAX_LEAVES];
    int nl;
    int npar;
} ctx;

static hv_nn_tensor *in(ctx *c, int ndim, const int64_t *shape, enum kind k, int rg)
{
    char name[16];
    snprintf(name, sizeof name, "in%d", c->nl);
    hv_nn_tensor *t = hv_nn_input(c->g, name, ndim, shape);
    if (rg) hv_nn_set_requires_grad(t);
    c->lv[c->nl++] = (leaf){.t = t, .kind = k, .rg = rg};
    return t;
}

static hv_nn_tensor *par(ctx *c, int ndim, const int64_t *shape, enum kind k, int trainable)
{
    char name[16];
    snprintf(name, sizeof name, "p%d", c->npar++);
    hv_nn_param *p = NULL;
    if (hv_nn_params_add(c->ps, name, ndim, shape, trainable, &p) != HV_OK) return NULL;
    hv_nn_tensor *t = hv_nn_param_tensor(c->g, p);
    c->lv[c->nl++] = (leaf){.t = t, .p = p, .kind = k, .rg = trainable};
    return t;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})

typedef struct opcase {
    const char *name;
    hv_nn_tensor *(*build)(ctx *c);
    unsigned flags;   /* plan flags */
    double nmse_tol;  /* backend vs reference */
    double fd_tol;    /* gradient vs finite differences */
    float eps;
} opcase;

/* ------------------------------------------------------------- the cases */
/* Leaves are created in separate statements: the order of evaluation of
 * function arguments is unspecified in C, and leaf i here must be leaf i of
 * scripts/make_nn_ops_fixture.py. */

static hv_nn_tensor *b_conv(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(2, 3, 7, 6), K_NORMAL, 1);
    hv_nn_tensor *w = par(c, 4, S(4, 3, 3, 3), K_NORMAL, 1);
    hv_nn_tensor *b = par(c, 1, S(4), K_NORMAL, 1);
    return hv_nn_conv2d(c->g, x, w, b, 1, 1, 1);
}
static hv_nn_tensor *b_conv_s2d2(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(2, 3, 9, 8), K_NORMAL, 1);
    hv_nn_tensor *w = par(c, 4, S(5, 3, 3, 3), K_NORMAL, 1);
    hv_nn_tensor *b = par(c, 1, S(5), K_NORMAL, 1);
    return hv_nn_conv2d(c->g, x, w, b, 2, 2, 2);
}
static hv_nn_tensor *b_conv_k5(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(1, 2, 8, 8), K_NORMAL, 1);
    return hv_nn_conv2d(c->g, x, par(c, 4, S(3, 2, 5, 5), K_NORMAL, 1), NULL, 1, 2, 1);
}
static hv_nn_tensor *b_conv_k4s2(ctx *c) /* PatchGAN geometry */
{
    hv_nn_tensor *x = in(c, 4, S(2, 2, 10, 10), K_NORMAL, 1);
    hv_nn_tensor *w = par(c, 4, S(3, 2, 4, 4), K_NORMAL, 1);
    hv_nn_tensor *b = par(c, 1, S(3), K_NORMAL, 1);
    return hv_nn_conv2d(c->g, x, w, b, 2, 1, 1);
}
static hv_nn_tensor *b_deconv(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(2, 3, 4, 5), K_NORMAL, 1);
    hv_nn_tensor *w = par(c, 4, S(3, 2, 4, 4), K_NORMAL, 1);
    hv_nn_tensor *b = par(c, 1, S(2), K_NORMAL, 1);
    return hv_nn_deconv2d(c->g, x, w, b, 2, 1, 0);
}
static hv_nn_tensor *b_sn(ctx *c)
{
    hv_nn_tensor *w = par(c, 4, S(4, 3, 3, 3), K_NORMAL, 1);
    hv_nn_tensor *u = par(c, 1, S(4), K_UNIT, 0);
    hv_nn_tensor *v = par(c, 1, S(27), K_UNIT, 0);
    return hv_nn_spectral_norm(c->g, w, u, v);
}
static hv_nn_tensor *b_elu(ctx *c) { return hv_nn_elu(c->g, in(c, 4, S(2, 3, 5, 4), K_SAFE, 1), 1.0f); }
static hv_nn_tensor *b_relu(ctx *c) { return hv_nn_relu(c->g, in(c, 4, S(2, 3, 5, 4), K_SAFE, 1)); }
static hv_nn_tensor *b_lrelu(ctx *c) { return hv_nn_leaky_relu(c->g, in(c, 4, S(2, 3, 5, 4), K_SAFE, 1), 0.2f); }
static hv_nn_tensor *b_sigmoid(ctx *c) { return hv_nn_sigmoid(c->g, in(c, 3, S(2, 7, 5), K_NORMAL, 1)); }
static hv_nn_tensor *b_clamp(ctx *c) { return hv_nn_clamp(c->g, in(c, 4, S(2, 3, 5, 4), K_CLAMPSAFE, 1), -1.0f, 1.0f); }
static hv_nn_tensor *b_scale(ctx *c) { return hv_nn_scale(c->g, in(c, 5, S(2, 2, 3, 2, 2), K_NORMAL, 1), -1.5f, 0.25f); }
static hv_nn_tensor *b_up(ctx *c) { return hv_nn_upsample(c->g, in(c, 4, S(2, 3, 3, 4), K_NORMAL, 1), 2); }
static hv_nn_tensor *b_down(ctx *c) { return hv_nn_downsample(c->g, in(c, 4, S(2, 3, 8, 4), K_NORMAL, 1), 4); }
static hv_nn_tensor *b_concat(ctx *c)
{
    hv_nn_tensor *xs[3];
    xs[0] = in(c, 4, S(2, 1, 3, 4), K_NORMAL, 1);
    xs[1] = in(c, 4, S(2, 3, 3, 4), K_NORMAL, 1);
    xs[2] = in(c, 4, S(2, 2, 3, 4), K_NORMAL, 1);
    return hv_nn_concat(c->g, 3, xs);
}
static hv_nn_tensor *b_pad(ctx *c) { return hv_nn_pad(c->g, in(c, 4, S(2, 2, 3, 4), K_NORMAL, 1), 1, 2, 3, 0); }
static hv_nn_tensor *b_slice(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(2, 5, 6, 4), K_NORMAL, 1);
    return hv_nn_slice(c->g, hv_nn_slice(c->g, x, 1, 1, 3), 2, 2, 3);
}
static hv_nn_tensor *b_bn(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(3, 4, 5, 3), K_NORMAL, 1);
    hv_nn_tensor *gamma = par(c, 1, S(4), K_NORMAL, 1);
    hv_nn_tensor *beta = par(c, 1, S(4), K_NORMAL, 1);
    hv_nn_tensor *rm = par(c, 1, S(4), K_NORMAL, 0);
    hv_nn_tensor *rv = par(c, 1, S(4), K_VAR, 0);
    return hv_nn_batch_norm(c->g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
}
static hv_nn_tensor *b_gap(ctx *c) { return hv_nn_gap(c->g, in(c, 4, S(2, 3, 5, 4), K_NORMAL, 1)); }
static hv_nn_tensor *b_linear(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(3, 4, 2, 1), K_NORMAL, 1);
    hv_nn_tensor *w = par(c, 2, S(5, 8), K_NORMAL, 1);
    hv_nn_tensor *b = par(c, 1, S(5), K_NORMAL, 1);
    return hv_nn_linear(c->g, x, w, b);
}
static hv_nn_tensor *b_softmax(ctx *c) { return hv_nn_softmax(c->g, in(c, 4, S(2, 5, 3, 2), K_NORMAL, 1)); }
/* two leaves a, b of the same shape, created in this order */
static void two(ctx *c, int ndim, const int64_t *shape, enum kind ka, enum kind kb, hv_nn_tensor **a,
                hv_nn_tensor **b)
{
    *a = in(c, ndim, shape, ka, 1);
    *b = in(c, ndim, shape, kb, 1);
}
static hv_nn_tensor *b_add(ctx *c)
{
    hv_nn_tensor *a, *b;
    two(c, 3, S(2, 3, 4), K_NORMAL, K_NORMAL, &a, &b);
    return hv_nn_add(c->g, a, b);
}
static hv_nn_tensor *b_sub(ctx *c)
{
    hv_nn_tensor *a, *b;
    two(c, 3, S(2, 3, 4), K_NORMAL, K_NORMAL, &a, &b);
    return hv_nn_sub(c->g, a, b);
}
static hv_nn_tensor *b_mul(ctx *c)
{
    hv_nn_tensor *a, *b;
    two(c, 3, S(2, 3, 4), K_NORMAL, K_NORMAL, &a, &b);
    return hv_nn_mul(c->g, a, b);
}
static hv_nn_tensor *b_sum(ctx *c) { return hv_nn_sum(c->g, in(c, 2, S(3, 7), K_NORMAL, 1)); }
static hv_nn_tensor *b_mean(ctx *c) { return hv_nn_mean(c->g, in(c, 2, S(3, 7), K_NORMAL, 1)); }
static hv_nn_tensor *b_bce(ctx *c)
{
    hv_nn_tensor *x, *t;
    two(c, 4, S(2, 1, 4, 4), K_NORMAL, K_POS01, &x, &t);
    return hv_nn_bce_logits(c->g, x, t);
}
static hv_nn_tensor *b_l1(ctx *c)
{
    hv_nn_tensor *x, *t;
    two(c, 4, S(2, 1, 4, 4), K_SAFE, K_ZERO, &x, &t);
    return hv_nn_l1(c->g, x, t);
}
static hv_nn_tensor *b_mse(ctx *c)
{
    hv_nn_tensor *x, *t;
    two(c, 4, S(2, 1, 4, 4), K_NORMAL, K_NORMAL, &x, &t);
    return hv_nn_mse(c->g, x, t);
}
static hv_nn_tensor *b_dice(ctx *c)
{
    hv_nn_tensor *p, *t;
    two(c, 4, S(3, 1, 4, 4), K_POS01, K_POS01, &p, &t);
    return hv_nn_dice(c->g, p, t);
}
static hv_nn_tensor *b_sobel(ctx *c) { return hv_nn_sobel(c->g, in(c, 4, S(2, 1, 6, 5), K_SMALL, 1)); }
static hv_nn_tensor *b_reshape(ctx *c)
{
    return hv_nn_reshape(c->g, in(c, 4, S(2, 3, 2, 2), K_NORMAL, 1), 2, S(6, 4));
}
static hv_nn_tensor *b_maxpool(ctx *c) /* the ResNet stem's 3x3/2 pad 1 */
{
    return hv_nn_maxpool(c->g, in(c, 4, S(2, 3, 7, 8), K_DISTINCT, 1), 3, 2, 1);
}
static hv_nn_tensor *b_chmul(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(2, 3, 4, 5), K_NORMAL, 1);
    hv_nn_tensor *s = in(c, 4, S(2, 3, 1, 1), K_NORMAL, 1);
    return hv_nn_channel_mul(c->g, x, s);
}
static hv_nn_tensor *b_ca_same(ctx *c) /* f = b, as the generator uses it */
{
    hv_nn_tensor *f = in(c, 4, S(2, 3, 8, 8), K_NORMAL, 1);
    hv_nn_tensor *m = in(c, 4, S(2, 1, 16, 16), K_MASK, 0);
    hv_nn_ctx_attn_opts o = {3, 2, 3, 10.0f};
    return hv_nn_ctx_attn(c->g, f, f, m, &o);
}
static hv_nn_tensor *b_ca_fb(ctx *c) /* f and b distinct, non-square */
{
    hv_nn_tensor *f = in(c, 4, S(2, 2, 8, 12), K_NORMAL, 1);
    hv_nn_tensor *b = in(c, 4, S(2, 2, 8, 12), K_NORMAL, 1);
    hv_nn_tensor *m = in(c, 4, S(2, 1, 8, 12), K_MASK, 0);
    hv_nn_ctx_attn_opts o = {3, 2, 3, 2.0f};
    return hv_nn_ctx_attn(c->g, f, b, m, &o);
}
static hv_nn_tensor *b_ca_nofuse(ctx *c) /* fuse_k 0: no diagonal fusion */
{
    hv_nn_tensor *f = in(c, 4, S(2, 2, 8, 8), K_NORMAL, 1);
    hv_nn_tensor *b = in(c, 4, S(2, 2, 8, 8), K_NORMAL, 1);
    hv_nn_tensor *m = in(c, 4, S(2, 1, 8, 8), K_MASK, 0);
    hv_nn_ctx_attn_opts o = {3, 2, 0, 5.0f};
    return hv_nn_ctx_attn(c->g, f, b, m, &o);
}
/* a gen_conv block: spectral norm -> conv -> ELU, the generator's unit */
static hv_nn_tensor *b_genconv(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(2, 3, 6, 6), K_NORMAL, 1);
    hv_nn_tensor *w0 = par(c, 4, S(4, 3, 3, 3), K_NORMAL, 1);
    hv_nn_tensor *u = par(c, 1, S(4), K_UNIT, 0);
    hv_nn_tensor *v = par(c, 1, S(27), K_UNIT, 0);
    hv_nn_tensor *w = hv_nn_spectral_norm(c->g, w0, u, v);
    hv_nn_tensor *b = par(c, 1, S(4), K_NORMAL, 1);
    return hv_nn_elu(c->g, hv_nn_conv2d(c->g, x, w, b, 1, 2, 2), 1.0f);
}

/* 3-D cases (NCDHW); tests/nn/test_nn_ops3d.c also checks these ops on
 * hand-computed values. */
static const int I3_1[3] = {1, 1, 1}, I3_0[3] = {0, 0, 0}, I3_2[3] = {2, 2, 2}, I3_3[3] = {3, 3, 3};
static hv_nn_tensor *b_conv3d(ctx *c)
{
    hv_nn_tensor *x = in(c, 5, S(2, 3, 5, 4, 6), K_NORMAL, 1);
    hv_nn_tensor *w = par(c, 5, S(4, 3, 3, 3, 3), K_NORMAL, 1);
    hv_nn_tensor *b = par(c, 1, S(4), K_NORMAL, 1);
    return hv_nn_conv3d(c->g, x, w, b, I3_1, I3_1, I3_1);
}
static hv_nn_tensor *b_conv3d_aniso(ctx *c) /* every axis its own geometry */
{
    hv_nn_tensor *x = in(c, 5, S(1, 2, 7, 6, 5), K_NORMAL, 1);
    hv_nn_tensor *w = par(c, 5, S(3, 2, 3, 2, 3), K_NORMAL, 1);
    hv_nn_tensor *b = par(c, 1, S(3), K_NORMAL, 1);
    return hv_nn_conv3d(c->g, x, w, b, (const int[]){2, 1, 2}, (const int[]){1, 0, 2},
                        (const int[]){1, 2, 1});
}
static hv_nn_tensor *b_conv3d_k1s2(ctx *c) /* a ResNet shortcut: 1x1x1, stride 2, no bias */
{
    hv_nn_tensor *x = in(c, 5, S(2, 3, 4, 5, 4), K_NORMAL, 1);
    return hv_nn_conv3d(c->g, x, par(c, 5, S(5, 3, 1, 1, 1), K_NORMAL, 1), NULL, I3_2, I3_0, I3_1);
}
static hv_nn_tensor *b_bn5d(ctx *c)
{
    hv_nn_tensor *x = in(c, 5, S(3, 4, 3, 2, 3), K_NORMAL, 1);
    hv_nn_tensor *gamma = par(c, 1, S(4), K_NORMAL, 1);
    hv_nn_tensor *beta = par(c, 1, S(4), K_NORMAL, 1);
    hv_nn_tensor *rm = par(c, 1, S(4), K_NORMAL, 0);
    hv_nn_tensor *rv = par(c, 1, S(4), K_VAR, 0);
    return hv_nn_batch_norm(c->g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
}
static hv_nn_tensor *b_gap5d(ctx *c) { return hv_nn_gap(c->g, in(c, 5, S(2, 3, 3, 4, 2), K_NORMAL, 1)); }
static hv_nn_tensor *b_chmul5d(ctx *c)
{
    hv_nn_tensor *x = in(c, 5, S(2, 3, 2, 3, 4), K_NORMAL, 1);
    hv_nn_tensor *s = in(c, 5, S(2, 3, 1, 1, 1), K_NORMAL, 1);
    return hv_nn_channel_mul(c->g, x, s);
}
static hv_nn_tensor *b_maxpool3d(ctx *c) /* the ResNet stem's 3/2 pad 1, in 3-D */
{
    return hv_nn_maxpool3d(c->g, in(c, 5, S(2, 2, 5, 6, 7), K_DISTINCT, 1), I3_3, I3_2, I3_1);
}
static hv_nn_tensor *b_maxpool3d_aniso(ctx *c)
{
    return hv_nn_maxpool3d(c->g, in(c, 5, S(1, 2, 3, 5, 6), K_DISTINCT, 1), (const int[]){1, 2, 3},
                           (const int[]){1, 2, 2}, (const int[]){0, 1, 1});
}

/* AOT-GAN's ops; tests/nn/test_nn_aot.c also checks them on hand-computed
 * values. */
static hv_nn_tensor *b_tanh(ctx *c) { return hv_nn_tanh(c->g, in(c, 4, S(2, 3, 5, 4), K_NORMAL, 1)); }
static hv_nn_tensor *b_rpad(ctx *c) /* uneven pads, the largest allowed on the left */
{
    return hv_nn_reflect_pad(c->g, in(c, 4, S(2, 2, 4, 5), K_NORMAL, 1), 1, 2, 4, 3);
}
static hv_nn_tensor *b_rpad_d(ctx *c) /* an AOT block's dilated branch: pad = rate */
{
    return hv_nn_reflect_pad(c->g, in(c, 4, S(1, 3, 6, 7), K_NORMAL, 1), 4, 4, 4, 4);
}
static hv_nn_tensor *b_upbl(ctx *c)
{
    return hv_nn_upsample_bilinear(c->g, in(c, 4, S(2, 3, 3, 4), K_NORMAL, 1), 2);
}
static hv_nn_tensor *b_upbl3(ctx *c)
{
    return hv_nn_upsample_bilinear(c->g, in(c, 4, S(1, 2, 4, 3), K_NORMAL, 1), 3);
}
static hv_nn_tensor *b_aotnorm(ctx *c) { return hv_nn_aot_norm(c->g, in(c, 4, S(2, 3, 4, 5), K_NORMAL, 1)); }
/* the edges a device kernel must get right: every pad at its largest (n - 1,
 * a non-square input), factor 4 on a non-square input, planes of one row */
static hv_nn_tensor *b_rpad_max(ctx *c)
{
    return hv_nn_reflect_pad(c->g, in(c, 4, S(1, 2, 3, 5), K_NORMAL, 1), 2, 2, 4, 4);
}
static hv_nn_tensor *b_upbl4(ctx *c)
{
    return hv_nn_upsample_bilinear(c->g, in(c, 4, S(1, 3, 2, 5), K_NORMAL, 1), 4);
}
static hv_nn_tensor *b_aotnorm_row(ctx *c) { return hv_nn_aot_norm(c->g, in(c, 4, S(2, 3, 1, 7), K_NORMAL, 1)); }
/* an AOT block's gate: reflect pad 1, 3x3 conv, norm, sigmoid. Without the
 * conv's bias: the norm removes each plane's mean, so a bias gets an exactly
 * zero gradient (PyTorch's is rounding noise, no reference to compare with). */
static hv_nn_tensor *b_aotgate(ctx *c)
{
    hv_nn_tensor *x = in(c, 4, S(2, 3, 5, 6), K_NORMAL, 1);
    hv_nn_tensor *w = par(c, 4, S(3, 3, 3, 3), K_NORMAL, 1);
    hv_nn_tensor *y = hv_nn_conv2d(c->g, hv_nn_reflect_pad(c->g, x, 1, 1, 1, 1), w, NULL, 1, 0, 1);
    return hv_nn_sigmoid(c->g, hv_nn_aot_norm(c->g, y));
}

/* Supervised contrastive learning; tests/nn/test_nn_supcon.c also checks
 * them on hand-computed values. Labels i % 4: with 7 items class 3 has one
 * item (an anchor without positives), with 6 items classes 2 and 3. */
static hv_nn_tensor *b_l2n(ctx *c) { return hv_nn_l2_normalize(c->g, in(c, 2, S(5, 6), K_NORMAL, 1), 1e-12f); }
static hv_nn_tensor *b_supcon(ctx *c)
{
    hv_nn_tensor *z = in(c, 2, S(7, 5), K_NORMAL, 1);
    hv_nn_tensor *lab = in(c, 1, S(7), K_LABELS, 0);
    return hv_nn_supcon(c->g, z, lab, 0.5f);
}
static hv_nn_tensor *b_supcon_norm(ctx *c) /* as pre-training uses it: normalised, t = 0.07 */
{
    hv_nn_tensor *x = in(c, 2, S(6, 4), K_NORMAL, 1);
    hv_nn_tensor *lab = in(c, 1, S(6), K_LABELS, 0);
    return hv_nn_supcon(c->g, hv_nn_l2_normalize(c->g, x, 1e-12f), lab, 0.07f);
}
/* the classification that follows: 4 classes, labels i % 4, with and
 * without class weights (no gradient to labels or weights) */
static hv_nn_tensor *b_ce(ctx *c)
{
    hv_nn_tensor *z = in(c, 2, S(6, 4), K_NORMAL, 1);
    hv_nn_tensor *lab = in(c, 1, S(6), K_LABELS, 0);
    hv_nn_tensor *w = in(c, 1, S(4), K_POS01, 0);
    return hv_nn_cross_entropy(c->g, z, lab, w);
}
static hv_nn_tensor *b_ce_nw(ctx *c)
{
    hv_nn_tensor *z = in(c, 2, S(5, 4), K_NORMAL, 1);
    hv_nn_tensor *lab = in(c, 1, S(5), K_LABELS, 0);
    return hv_nn_cross_entropy(c->g, z, lab, NULL);
}

/* Bounds (measured on this machine, 2 cores AVX-512):
 *  - NMSE backend vs ref: cpu <= 3.6e-13 for the oneDNN / OpenBLAS ops
 *    (CA gradient), 0 for relu, leaky_relu and the ops on the reference
 *    kernels; the fake device 0 (the reference kernels on copies); bound
 *    1e-10.
 *  - finite differences: <= 1.7e-3 (contextual attention, float32 scores),
 *    6.5e-4 (Sobel), typically 1e-5..1e-4; bound 1e-2 (6x).
 *  - spectral norm in training mode: the gradient is PyTorch's, which treats
 *    the power-iteration vectors u, v as constants although they are computed
 *    from W in the same forward; finite differences see that dependence
 *    (measured 1e-2 .. 0.18 with random u, v), so training cases first
 *    converge u, v, where the dependence vanishes to first order. */
static const opcase cases[] = {
    {"conv2d", b_conv, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"conv2d_s2_d2", b_conv_s2d2, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"conv2d_k5_nobias", b_conv_k5, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"conv2d_k4_s2", b_conv_k4s2, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"deconv2d", b_deconv, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"spectral_norm_train", b_sn, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"spectral_norm_eval", b_sn, HV_NN_PLAN_GRAD, 1e-10, 1e-2, 1e-3f},
    {"gen_conv_block", b_genconv, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"elu", b_elu, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"relu", b_relu, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"leaky_relu", b_lrelu, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"sigmoid", b_sigmoid, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"clamp", b_clamp, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"scale_5d", b_scale, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"upsample", b_up, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"downsample", b_down, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"concat", b_concat, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"pad", b_pad, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"slice", b_slice, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"batch_norm_train", b_bn, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"batch_norm_eval", b_bn, HV_NN_PLAN_GRAD, 1e-10, 1e-2, 1e-2f},
    {"gap", b_gap, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"linear", b_linear, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"softmax", b_softmax, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"add", b_add, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"sub", b_sub, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"mul", b_mul, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"sum", b_sum, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"mean", b_mean, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"bce_logits", b_bce, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"l1", b_l1, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"mse", b_mse, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"dice", b_dice, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"sobel", b_sobel, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"reshape", b_reshape, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"maxpool", b_maxpool, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"channel_mul", b_chmul, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"ctx_attn_same", b_ca_same, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"ctx_attn_f_b", b_ca_fb, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"ctx_attn_nofuse", b_ca_nofuse, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"conv3d", b_conv3d, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"conv3d_aniso", b_conv3d_aniso, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"conv3d_k1_s2_nobias", b_conv3d_k1s2, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"batch_norm_5d_train", b_bn5d, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"batch_norm_5d_eval", b_bn5d, HV_NN_PLAN_GRAD, 1e-10, 1e-2, 1e-2f},
    {"gap_5d", b_gap5d, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"channel_mul_5d", b_chmul5d, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"maxpool3d", b_maxpool3d, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"maxpool3d_aniso", b_maxpool3d_aniso, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"tanh", b_tanh, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"reflect_pad", b_rpad, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"reflect_pad_4", b_rpad_d, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"upsample_bilinear", b_upbl, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"upsample_bilinear_3", b_upbl3, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"aot_norm", b_aotnorm, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"aot_gate", b_aotgate, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"l2_normalize", b_l2n, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"supcon", b_supcon, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"supcon_normalized", b_supcon_norm, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"cross_entropy", b_ce, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"cross_entropy_noweight", b_ce_nw, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
    {"reflect_pad_max", b_rpad_max, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"upsample_bilinear_4", b_upbl4, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-2f},
    {"aot_norm_row", b_aotnorm_row, HV_NN_PLAN_TRAIN, 1e-10, 1e-2, 1e-3f},
};

/* --------------------------------------------------------------- running */

static void fill(leaf *l, hv_rng *r, int item_masks)
{
    int64_t sh[HV_NN_MAX_DIMS];
    hv_nn_tensor_shape(l->t, sh);
    double ss = 0;
    for (size_t i = 0; i < l->n; i++) {
        double v = hv_rng_normal(r);
        switch (l->kind) {
        case K_SAFE: v = (v >= 0 ? 1 : -1) * (0.1 + fabs(v)); break;
        case K_CLAMPSAFE:
            if (fabs(fabs(v) - 1.0) < 0.05) v += v > 0 ? 0.1 : -0.1;
            break;
        case K_POS01: v = 0.05 + 0.9 * hv_rng_uniform(r); break;
        case K_SMALL: v *= 0.02; break;
        case K_ZERO: v = 0; break;
        case K_VAR: v = 0.5 + hv_rng_uniform(r); break;
        case K_DISTINCT: /* values 0.05 apart: a max never changes under eps */
            v = (double)(((int64_t)i * 7919) % (int64_t)l->n) * 0.05 - 0.025 * (double)l->n;
            break;
        case K_LABELS: v = (double)(i % 4); break; /* class values 0..3 */
        case K_MASK: {
            /* a horizontal band per item, at a different height per item */
            int64_t h = sh[2], w = sh[3], b = (int64_t)i / (h * w), y = ((int64_t)i / w) % h;
            int64_t y0 = (b * h / 3 + h / 4) % h;
            v = (item_masks && y >= y0 && y < y0 + h / 4) ? 1.0 : 0.0;
            break;
        }
        default: break;
        }
        l->host[i] = (float)v;
        ss += v * v;
    }
    if (l->kind == K_UNIT)
        for (size_t i = 0; i < l->n; i++) l->host[i] = (float)(l->host[i] / sqrt(ss));
}

typedef struct result {
    float *out;
    size_t nout;
    float *grad[MAX_LEAVES];
    size_t ng[MAX_LEAVES];
    double fd_err[MAX_LEAVES];
    int ok;
} result;

static double nmse(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

static void set_leaves(ctx *c)
{
    for (int i = 0; i < c->nl; i++) HV_CHECK_OK(hv_nn_tensor_set(c->lv[i].t, c->lv[i].host, c->lv[i].n));
}

static double loss_at(ctx *c, hv_nn_tensor *loss)
{
    set_leaves(c);
    HV_CHECK_OK(hv_nn_graph_forward(c->g));
    float v = 0;
    hv_nn_tensor_get(loss, &v, 1);
    return v;
}

static int run_case(const opcase *oc, const backend_entry *bk, result *res)
{
    ctx c = {0};
    hv_nn_backend *be = NULL;
    float *rw = NULL;
    memset(res, 0, sizeof *res);
    HV_CHECK_OK(bk->create(&be));
    HV_CHECK_OK(hv_nn_graph_create(&c.g));
    HV_CHECK_OK(hv_nn_params_create(&c.ps));
    if (!be || !c.g || !c.ps) goto done;
    const int64_t sshape[1] = {64};
    hv_nn_tensor *sa = hv_nn_input(c.g, "sentinel_a", 1, sshape);
    hv_nn_tensor *out = oc->build(&c);
    int64_t osh[HV_NN_MAX_DIMS];
    int ond = hv_nn_tensor_shape(out, osh);
    hv_nn_tensor *rt = ond ? hv_nn_input(c.g, "R", ond, osh) : NULL;
    hv_nn_tensor *loss = hv_nn_sum(c.g, hv_nn_mul(c.g, out, rt));
    hv_nn_tensor *sb = hv_nn_input(c.g, "sentinel_b", 1, sshape);
    hv_nn_set_output(out);
    HV_CHECK_OK(hv_nn_graph_status(c.g));
    if (hv_nn_graph_status(c.g) != HV_OK) goto done;
    HV_CHECK_OK(hv_nn_params_bind(c.ps, be)); /* nothing to do on host backends */
    HV_CHECK_OK(hv_nn_graph_plan(c.g, be, oc->flags));

    /* inputs from a seed that depends on the case only */
    hv_rng r;
    hv_rng_seed(&r, 1234, (uint64_t)(oc - cases));
    for (int i = 0; i < c.nl; i++) {
        c.lv[i].n = (size_t)hv_nn_tensor_numel(c.lv[i].t);
        c.lv[i].host = malloc(c.lv[i].n * sizeof(float));
        fill(&c.lv[i], &r, 1);
    }
    res->nout = (size_t)hv_nn_tensor_numel(out);
    rw = malloc(res->nout * sizeof(float));
    for (size_t i = 0; i < res->nout; i++) rw[i] = (float)hv_rng_normal(&r);
    HV_CHECK_OK(hv_nn_tensor_set(rt, rw, res->nout));
    float sent[64];
    for (int i = 0; i < 64; i++) sent[i] = 1e30f * (float)(i + 1);
    HV_CHECK_OK(hv_nn_tensor_set(sa, sent, 64));
    HV_CHECK_OK(hv_nn_tensor_set(sb, sent, 64));

    /* training graphs: converge the spectral-norm power iteration first (50
     * forwards), then keep the buffers at that state; at convergence u, v are
     * stationary, so PyTorch's gradient (u, v held constant) is the true one */
    set_leaves(&c);
    if (oc->flags & HV_NN_PLAN_TRAIN) {
        for (int it = 0; it < 50; it++) HV_CHECK_OK(hv_nn_graph_forward(c.g));
        for (int i = 0; i < c.nl; i++)
            if (c.lv[i].p && !c.lv[i].rg) HV_CHECK_OK(hv_nn_param_get(c.lv[i].p, c.lv[i].host, c.lv[i].n));
    }

    /* analytic pass; no allocation inside */
    set_leaves(&c);
    hv_nn_params_zero_grad(c.ps);
    uint64_t a0 = hv_nn_alloc_count();
    HV_CHECK_OK(hv_nn_graph_forward(c.g));
    HV_CHECK_OK(hv_nn_graph_backward(c.g, loss));
    HV_CHECK(hv_nn_alloc_count() == a0, "%s: forward/backward allocated", oc->name);
    res->out = malloc(res->nout * sizeof(float));
    HV_CHECK_OK(hv_nn_tensor_get(out, res->out, res->nout));
    for (int i = 0; i < c.nl; i++) {
        if (!c.lv[i].rg) continue;
        res->grad[i] = malloc(c.lv[i].n * sizeof(float));
        res->ng[i] = c.lv[i].n;
        if (c.lv[i].p)
            HV_CHECK_OK(hv_nn_param_get_grad(c.lv[i].p, res->grad[i], c.lv[i].n));
        else
            HV_CHECK_OK(hv_nn_tensor_get_grad(c.lv[i].t, res->grad[i], c.lv[i].n));
    }

    /* finite differences */
    for (int i = 0; i < c.nl; i++) {
        if (!c.lv[i].rg) continue;
        size_t n = c.lv[i].n, m = n < 16 ? n : 16;
        double num2 = 0, diff2 = 0, ana2 = 0;
        for (size_t s = 0; s < m; s++) {
            size_t k = n <= 16 ? s : (size_t)hv_rng_below(&r, n);
            float x0 = c.lv[i].host[k];
            c.lv[i].host[k] = x0 + oc->eps;
            double lp = loss_at(&c, loss);
            c.lv[i].host[k] = x0 - oc->eps;
            double lm = loss_at(&c, loss);
            c.lv[i].host[k] = x0;
            double num = (lp - lm) / (2.0 * oc->eps), ana = res->grad[i][k];
            num2 += num * num;
            ana2 += ana * ana;
            diff2 += (num - ana) * (num - ana);
        }
        res->fd_err[i] = sqrt(diff2) / fmax(fmax(sqrt(num2), sqrt(ana2)), 1e-3);
    }
    float chk[64];
    hv_nn_tensor_get(sa, chk, 64);
    HV_CHECK(memcmp(chk, sent, sizeof sent) == 0, "%s: sentinel before the op was overwritten", oc->name);
    hv_nn_tensor_get(sb, chk, 64);
    HV_CHECK(memcmp(chk, sent, sizeof sent) == 0, "%s: sentinel after the op was overwritten", oc->name);
    res->ok = 1;
done:
    for (int i = 0; i < c.nl; i++) free(c.lv[i].host);
    free(rw);
    hv_nn_graph_free(c.g);
    hv_nn_params_free(c.ps);
    hv_nn_backend_free(be);
    return res->ok;
}

/* Check 4: backward ADDS into the gradients (the kernel contract). The
 * case is built again with every gradient-taking leaf also feeding a second
 * consumer made after the op, loss' = sum(out * R) + sum_i sum(leaf_i * Q_i):
 * its backward runs before the op's, so when the op's backward runs the
 * leaf's gradient already holds Q_i, and the result must be the gradient of
 * run_case (same inputs, same backend) + Q_i. A kernel that writes its
 * gradient instead of adding loses Q_i; checks 1-3 cannot see that, since
 * there the op is its inputs' only consumer and their gradients start at 0.
 * Q_i is scaled to the RMS of that gradient so that both terms count.
 * Returns the worst NMSE. */
static double check_accum(const opcase *oc, const backend_entry *bk, const result *plain)
{
    ctx c = {0};
    hv_nn_backend *be = NULL;
    float *rw = NULL, *q[MAX_LEAVES] = {0}, *g = NULL, *want = NULL;
    hv_nn_tensor *qt[MAX_LEAVES] = {0};
    double worst = 0;
    HV_CHECK_OK(bk->create(&be));
    HV_CHECK_OK(hv_nn_graph_create(&c.g));
    HV_CHECK_OK(hv_nn_params_create(&c.ps));
    if (!be || !c.g || !c.ps) goto done;
    hv_nn_tensor *out = oc->build(&c);
    int64_t sh[HV_NN_MAX_DIMS];
    int nd = hv_nn_tensor_shape(out, sh);
    hv_nn_tensor *rt = nd ? hv_nn_input(c.g, "R", nd, sh) : NULL;
    hv_nn_tensor *loss = hv_nn_sum(c.g, hv_nn_mul(c.g, out, rt));
    for (int i = 0; i < c.nl; i++) {
        char name[16];
        if (!c.lv[i].rg) continue;
        snprintf(name, sizeof name, "Q%d", i);
        nd = hv_nn_tensor_shape(c.lv[i].t, sh);
        qt[i] = hv_nn_input(c.g, name, nd, sh);
        loss = hv_nn_add(c.g, loss, hv_nn_sum(c.g, hv_nn_mul(c.g, c.lv[i].t, qt[i])));
    }
    hv_nn_set_output(out);
    HV_CHECK_OK(hv_nn_graph_status(c.g));
    if (hv_nn_graph_status(c.g) != HV_OK) goto done;
    HV_CHECK_OK(hv_nn_params_bind(c.ps, be));
    HV_CHECK_OK(hv_nn_graph_plan(c.g, be, oc->flags));

    /* run_case's inputs: the same seed, the same draws in the same order */
    hv_rng r, rq;
    hv_rng_seed(&r, 1234, (uint64_t)(oc - cases));
    hv_rng_seed(&rq, 4321, (uint64_t)(oc - cases));
    for (int i = 0; i < c.nl; i++) {
        c.lv[i].n = (size_t)hv_nn_tensor_numel(c.lv[i].t);
        c.lv[i].host = malloc(c.lv[i].n * sizeof(float));
        fill(&c.lv[i], &r, 1);
    }
    const size_t nout = (size_t)hv_nn_tensor_numel(out);
    rw = malloc(nout * sizeof(float));
    for (size_t i = 0; i < nout; i++) rw[i] = (float)hv_rng_normal(&r);
    HV_CHECK_OK(hv_nn_tensor_set(rt, rw, nout));
    for (int i = 0; i < c.nl; i++) {
        if (!qt[i]) continue;
        const size_t n = c.lv[i].n;
        double ss = 0;
        for (size_t k = 0; k < n; k++) ss += (double)plain->grad[i][k] * plain->grad[i][k];
        const double rms = fmax(sqrt(ss / (double)n), 1e-3);
        q[i] = malloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++) q[i][k] = (float)(rms * hv_rng_normal(&rq));
        HV_CHECK_OK(hv_nn_tensor_set(qt[i], q[i], n));
    }
    set_leaves(&c);
    if (oc->flags & HV_NN_PLAN_TRAIN) { /* as run_case: converged buffers */
        for (int it = 0; it < 50; it++) HV_CHECK_OK(hv_nn_graph_forward(c.g));
        for (int i = 0; i < c.nl; i++)
            if (c.lv[i].p && !c.lv[i].rg) HV_CHECK_OK(hv_nn_param_get(c.lv[i].p, c.lv[i].host, c.lv[i].n));
    }
    set_leaves(&c);
    hv_nn_params_zero_grad(c.ps);
    HV_CHECK_OK(hv_nn_graph_forward(c.g));
    HV_CHECK_OK(hv_nn_graph_backward(c.g, loss));
    for (int i = 0; i < c.nl; i++) {
        if (!qt[i] || !plain->grad[i]) continue;
        const size_t n = c.lv[i].n;
        g = malloc(n * sizeof(float));
        want = malloc(n * sizeof(float));
        if (c.lv[i].p)
            HV_CHECK_OK(hv_nn_param_get_grad(c.lv[i].p, g, n));
        else
            HV_CHECK_OK(hv_nn_tensor_get_grad(c.lv[i].t, g, n));
        for (size_t k = 0; k < n; k++) want[k] = plain->grad[i][k] + q[i][k];
        const double e = nmse(g, want, n);
        HV_CHECK(isfinite(e) && e <= 1e-8, "%s on %s: gradient %d with a second consumer is not the "
                 "gradient + the consumer's (nmse %.3g > 1e-8): does the backward write instead of add?",
                 oc->name, bk->name, i, e);
        worst = fmax(worst, e);
        free(g);
        free(want);
        g = want = NULL;
    }
done:
    for (int i = 0; i < c.nl; i++) free(c.lv[i].host);
    for (int i = 0; i < MAX_LEAVES; i++) free(q[i]);
    free(rw);
    hv_nn_graph_free(c.g);
    hv_nn_params_free(c.ps);
    hv_nn_backend_free(be);
    return worst;
}

static void free_result(result *r)
{
    free(r->out);
    for (int i = 0; i < MAX_LEAVES; i++) free(r->grad[i]);
}

#define TORCH_TOL 2e-5

/* ops that are the output of some case (every op must be) */
static int op_covered[HV_NN_OP_COUNT];

/* Check 1: the case from the fixture's values on one backend vs PyTorch.
 * Returns the largest relative L2 error seen (output, gradients, buffers). */
static double check_torch(const opcase *oc, const backend_entry *bk, const fx_file *fx, double tol)
{
    ctx c = {0};
    hv_nn_backend *be = NULL;
    double worst = 0;
    char nm[192];
    const char *bn = bk->name;
    HV_CHECK_OK(bk->create(&be));
    HV_CHECK_OK(hv_nn_graph_create(&c.g));
    HV_CHECK_OK(hv_nn_params_create(&c.ps));
    if (!be || !c.g || !c.ps) goto done;
    hv_nn_tensor *out = oc->build(&c);
    if (out) op_covered[hv_nn_tensor_op(out)] = 1;
    int64_t osh[HV_NN_MAX_DIMS];
    int ond = hv_nn_tensor_shape(out, osh);
    hv_nn_tensor *rt = ond ? hv_nn_input(c.g, "R", ond, osh) : NULL;
    hv_nn_tensor *loss = hv_nn_sum(c.g, hv_nn_mul(c.g, out, rt));
    hv_nn_set_output(out);
    HV_CHECK_OK(hv_nn_params_bind(c.ps, be));
    HV_CHECK_OK(hv_nn_graph_plan(c.g, be, oc->flags));
    if (hv_nn_graph_status(c.g) != HV_OK) goto done;
    /* the fixture holds exactly the leaves this case builds, in this order */
    snprintf(nm, sizeof nm, "%s.l%d", oc->name, c.nl);
    HV_CHECK(fx_find(fx, nm) == NULL, "%s: the fixture has more leaves than the case (%d)", oc->name, c.nl);
    for (int i = 0; i < c.nl; i++) {
        leaf *l = &c.lv[i];
        l->n = (size_t)hv_nn_tensor_numel(l->t);
        snprintf(nm, sizeof nm, "%s.l%d", oc->name, i);
        const fx_tensor *t = fx_find(fx, nm);
        HV_CHECK(t && t->n == (int64_t)l->n, "%s: fixture lacks %s or its size differs", oc->name, nm);
        if (!t || t->n != (int64_t)l->n) goto done;
        HV_CHECK_OK(hv_nn_tensor_set(l->t, t->data, l->n));
        snprintf(nm, sizeof nm, "%s.g%d", oc->name, i);
        HV_CHECK((fx_find(fx, nm) != NULL) == (l->rg != 0), "%s: leaf %d takes a gradient here%s in PyTorch",
                 oc->name, i, l->rg ? " but not" : " only");
    }
    snprintf(nm, sizeof nm, "%s.R", oc->name);
    const fx_tensor *tr = fx_find(fx, nm);
    snprintf(nm, sizeof nm, "%s.out", oc->name);
    const fx_tensor *ty = fx_find(fx, nm);
    const int64_t nout = hv_nn_tensor_numel(out);
    HV_CHECK(tr && ty && tr->n == nout && ty->n == nout, "%s: fixture lacks R or out", oc->name);
    if (!tr || !ty || tr->n != nout || ty->n != nout) goto done;
    HV_CHECK_OK(hv_nn_tensor_set(rt, tr->data, (size_t)nout));
    hv_nn_params_zero_grad(c.ps);
    HV_CHECK_OK(hv_nn_graph_forward(c.g));
    HV_CHECK_OK(hv_nn_graph_backward(c.g, loss));
    float *y = malloc((size_t)nout * sizeof(float));
    HV_CHECK_OK(hv_nn_tensor_get(out, y, (size_t)nout));
    double e = fx_rel_l2(y, ty->data, nout, NULL);
    HV_CHECK(e <= tol, "%s %s: output vs PyTorch, relative L2 error %.3g > %.3g", bn, oc->name, e, tol);
    worst = fmax(worst, e);
    free(y);
    for (int i = 0; i < c.nl; i++) {
        leaf *l = &c.lv[i];
        if (l->rg) {
            snprintf(nm, sizeof nm, "%s.g%d", oc->name, i);
            const fx_tensor *tg = fx_find(fx, nm);
            if (!tg || tg->n != (int64_t)l->n) continue; /* reported above */
            double gn = 0;
            for (int64_t k = 0; k < tg->n; k++) gn += (double)tg->data[k] * tg->data[k];
            HV_CHECK(gn > 0, "%s: PyTorch's gradient of leaf %d is zero (the check could not fail)", oc->name, i);
            float *g = malloc(l->n * sizeof(float));
            if (l->p)
                HV_CHECK_OK(hv_nn_param_get_grad(l->p, g, l->n));
            else
                HV_CHECK_OK(hv_nn_tensor_get_grad(l->t, g, l->n));
            e = fx_rel_l2(g, tg->data, tg->n, NULL);
            HV_CHECK(e <= tol, "%s %s: gradient of leaf %d vs PyTorch, relative L2 error %.3g > %.3g", bn,
                     oc->name, i, e, tol);
            worst = fmax(worst, e);
            free(g);
        } else if (l->p) {
            /* a buffer: as PyTorch left it after one forward (updated in
             * training mode where the op updates it, unchanged otherwise) */
            snprintf(nm, sizeof nm, "%s.b%d", oc->name, i);
            const fx_tensor *tb = fx_find(fx, nm);
            snprintf(nm, sizeof nm, "%s.l%d", oc->name, i);
            if (!tb) tb = fx_find(fx, nm);
            float *bv = malloc(l->n * sizeof(float));
            HV_CHECK_OK(hv_nn_param_get(l->p, bv, l->n));
            e = fx_rel_l2(bv, tb->data, tb->n, NULL);
            free(bv);
            HV_CHECK(e <= tol, "%s %s: buffer %d after forward vs PyTorch, relative L2 error %.3g > %.3g", bn,
                     oc->name, i, e, tol);
            worst = fmax(worst, e);
        }
    }
done:
    hv_nn_graph_free(c.g);
    hv_nn_params_free(c.ps);
    hv_nn_backend_free(be);
    return worst;
}

/* The per-item mask fix: a batch of two items with different masks equals
 * the two items run one by one (the reference would use item 0's mask for
 * item 1 too), and the masks matter: item 1 with item 0's mask gives another
 * result. */
static void test_ca_batch_independence(void)
{
    hv_nn_backend *be = NULL;
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    const int64_t fs2[4] = {2, 4, 8, 8}, ms2[4] = {2, 1, 32, 32};
    const int64_t fs1[4] = {1, 4, 8, 8}, ms1[4] = {1, 1, 32, 32};
    float f[2 * 4 * 64], m[2 * 32 * 32], y2[2 * 256], y1[2 * 256], yx[256];
    hv_rng r;
    hv_rng_seed(&r, 99, 0);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) f[i] = (float)hv_rng_normal(&r);
    for (int b = 0; b < 2; b++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) m[(b * 32 + y) * 32 + x] = (y >= 4 + 16 * b && y < 12 + 16 * b);
    /* pass 0: the batch; 1, 2: item 0, item 1 alone; 3: item 1 with item 0's mask */
    for (int pass = 0; pass < 4; pass++) {
        hv_nn_graph *g = NULL;
        HV_CHECK_OK(hv_nn_graph_create(&g));
        int one = pass > 0;
        hv_nn_tensor *ft = hv_nn_input(g, "f", 4, one ? fs1 : fs2);
        hv_nn_tensor *mt = hv_nn_input(g, "m", 4, one ? ms1 : ms2);
        hv_nn_tensor *y = hv_nn_ctx_attn(g, ft, ft, mt, NULL);
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(g, be, 0));
        size_t nf = one ? 256 : 512, nm = one ? 1024 : 2048;
        size_t fo = pass == 3 ? 1 : (one ? (size_t)(pass - 1) : 0), mo = pass == 3 ? 0 : fo;
        HV_CHECK_OK(hv_nn_tensor_set(ft, f + fo * 256, nf));
        HV_CHECK_OK(hv_nn_tensor_set(mt, m + mo * 1024, nm));
        HV_CHECK_OK(hv_nn_graph_forward(g));
        HV_CHECK_OK(hv_nn_tensor_get(y, pass == 3 ? yx : one ? y1 + fo * 256 : y2, nf));
        hv_nn_graph_free(g);
    }
    double e = nmse(y2, y1, 512);
    HV_CHECK(e < 1e-12, "ctx_attn: batched result differs from per-item results (nmse %.3g)", e);
    double ex = nmse(yx, y1 + 256, 256); /* measured 1.5; bound 0.05 */
    printf("# ctx_attn: item 1 with item 0's mask vs its own mask: nmse %.3g\n", ex);
    HV_CHECK(ex > 0.05, "ctx_attn: item 1's result does not depend on its mask (nmse %.3g)", ex);
    hv_nn_backend_free(be);
}

int main(void)
{
    char path[4096];
#ifdef HV_TEST_CUDA
    setenv("HV_CUDA_TF32", "0", 1); /* the fp32 contract; TF32 in test_gpu_train */
    hv_nn_backend *probe = NULL;
    if (hv_gpu_backend_create(0, &probe) != HV_OK) {
        printf("# %s\n", hv_error_detail());
        return hv_test_skip("no usable CUDA device: the cuda backend cannot be checked here");
    }
    hv_nn_backend_free(probe);
#endif
    snprintf(path, sizeof path, "%s/nn/fixtures/nn_ops.bin", HV_TEST_SOURCE_DIR);
    fx_file fx;
    HV_CHECK(fx_read(path, &fx) == 0, "cannot read the PyTorch fixture %s", path);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const opcase *oc = &cases[k];
        result res[N_BACKENDS];
        int ok[N_BACKENDS];
        /* PyTorch, measured relative L2 error: <= 2.3e-7 (float32 rounding in
         * another order), 1.9e-6 for contextual attention (scores scaled by
         * 10 before the softmax); bound 2e-5 (10x) */
        double tt = 0, fd = 0;
        char line[512];
        int used = snprintf(line, sizeof line, "# %-20s", oc->name);
        for (int b = 0; b < N_BACKENDS; b++) {
            tt = fmax(tt, check_torch(oc, &backends[b], &fx, fmax(TORCH_TOL, backends[b].rel_tol)));
            ok[b] = run_case(oc, &backends[b], &res[b]);
            HV_CHECK(ok[b], "%s on %s: case did not run", oc->name, backends[b].name);
        }
        for (int b = 0; b < N_BACKENDS && ok[0]; b++) {
            const result *rr = &res[0], *rc = &res[b];
            const double tol = fmax(oc->nmse_tol, backends[b].rel_tol * backends[b].rel_tol);
            double e = 0, eg = 0;
            if (!ok[b]) continue;
            if (b > 0) {
                e = nmse(rc->out, rr->out, rr->nout);
                HV_CHECK(isfinite(e) && e <= tol, "%s: forward nmse %s vs ref %.3g > %.3g",
                         oc->name, backends[b].name, e, tol);
            }
            for (int i = 0; i < MAX_LEAVES; i++) {
                if (!rr->grad[i]) continue;
                HV_CHECK(rc->grad[i] && rc->ng[i] == rr->ng[i], "%s on %s: gradient %d missing", oc->name,
                         backends[b].name, i);
                if (!rc->grad[i] || rc->ng[i] != rr->ng[i]) continue;
                HV_CHECK(rc->fd_err[i] <= oc->fd_tol, "%s: %s gradient %d vs finite differences %.3g > %.3g",
                         oc->name, backends[b].name, i, rc->fd_err[i], oc->fd_tol);
                fd = fmax(fd, rc->fd_err[i]);
                if (b == 0) continue;
                double gi = nmse(rc->grad[i], rr->grad[i], rr->ng[i]);
                HV_CHECK(isfinite(gi) && gi <= tol, "%s: gradient %d nmse %s vs ref %.3g > %.3g",
                         oc->name, i, backends[b].name, gi, tol);
                eg = fmax(eg, gi);
            }
            if (b > 0 && used > 0 && (size_t)used < sizeof line)
                used += snprintf(line + used, sizeof line - (size_t)used, " | %s %.1e %.1e",
                                 backends[b].name, e, eg);
        }
        double acc = 0;
        for (int b = 0; b < N_BACKENDS; b++)
            if (ok[b]) acc = fmax(acc, check_accum(oc, &backends[b], &res[b]));
        printf("%s | torch %.2e fd %.2e acc %.1e\n", line, tt, fd, acc);
        for (int b = 0; b < N_BACKENDS; b++) free_result(&res[b]);
    }
    fx_free(&fx);
    for (int op = HV_NN_OP_CONV2D; op < HV_NN_OP_COUNT; op++)
        HV_CHECK(op_covered[op], "op %s has no case compared with PyTorch", hv_nn_op_name((hv_nn_op)op));
    test_ca_batch_independence();
    return hv_test_done();
}
