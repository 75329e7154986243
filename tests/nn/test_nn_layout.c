/*
 * test_nn_layout.c: the CPU backend's blocked-layout chains against the
 * reference backend, forward and backward, on random data.
 *
 * The "cpu" backend keeps a convolution's output in oneDNN's blocked layout
 * (nChw8c on AVX2; on AVX-512 nChw16c in training, NHWC = nChw{C}c in
 * inference, where oneDNN's brgemm convolutions pick it) when the next
 * convolution reads it
 * through activations and batch norms only (backend_cpu.c, link_producer):
 * the activations then run on the blocked buffer as a flat array, batch norm
 * walks it by channel blocks (ref_ops.c), and the gradients flow blocked.
 * The "ref" backend runs every node on the plain reference kernels, which
 * test_nn_ops.c checks against PyTorch and finite differences; here the two
 * backends must agree on
 *   - the generator's pattern: conv -> ELU -> conv (dilated, strided) -> ELU ...
 *   - the PatchGAN's pattern: conv -> LeakyReLU -> conv -> BN -> LeakyReLU ...
 *   - a chain tensor with a second reader and one that is a graph output
 *     (both must stay plain: the other reader is a plain kernel),
 * in training graphs (output, loss, gradient of the input and of every
 * parameter, BN running statistics) and in inference graphs (output).
 * hv_nn_tensor_get / _get_grad on a blocked intermediate must return plain
 * NCHW (compared with the reference's tensor).
 * The test also checks that the cpu backend did block the chains (t->blk,
 * an engine-internal field), so that it cannot pass by the fast path
 * silently switching itself off, and in inference that a forward runs no
 * reorder between two convolutions (hv__nn_cpu_reorders, at most the graph
 * input's and output's), also on a 24/40-channel chain, which only NHWC or
 * nChw8c can keep.
 *
 * Bound: relative L2 error 1e-9 in squared terms (nmse); measured ~1e-13 on
 * outputs and ~1e-12 on gradients (oneDNN and the reference loops sum in
 * different orders: float rounding only).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/nn.h"
#include "hv_test.h"

#include "../../src/nn/nn_backend.h"

#define NMSE_TOL 1e-9
#define MAXP 32

typedef struct net {
    hv_nn_graph *g;
    hv_nn_params *ps;
    hv_nn_backend *be;
    hv_nn_tensor *x, *out, *loss, *r, *probe[8], *extra[2];
    int nprobe, nextra;
    hv_nn_param *p[MAXP];
    int np;
} net;

static hv_nn_tensor *param(net *n, const char *what, int ndim, const int64_t *shape, int trainable,
                           hv_rng *r, float scale, float offset)
{
    char name[32];
    snprintf(name, sizeof name, "%s%d", what, n->np);
    hv_nn_param *p = NULL;
    if (hv_nn_params_add(n->ps, name, ndim, shape, trainable, &p) != HV_OK || n->np == MAXP) return NULL;
    float *d = hv_nn_param_data(p);
    int64_t cnt = 1;
    for (int i = 0; i < ndim; i++) cnt *= shape[i];
    for (int64_t i = 0; i < cnt; i++) d[i] = offset + scale * (float)hv_rng_normal(r);
    n->p[n->np++] = p;
    return hv_nn_param_tensor(n->g, p);
}

static hv_nn_tensor *conv(net *n, hv_nn_tensor *x, int64_t cin, int64_t cout, int64_t k, int s, int pad,
                          int dil, int bias, hv_rng *r)
{
    const int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    float sc = (float)(1.0 / sqrt((double)(cin * k * k)));
    hv_nn_tensor *w = param(n, "w", 4, ws, 1, r, sc, 0.0f);
    hv_nn_tensor *b = bias ? param(n, "b", 1, bs, 1, r, 0.1f, 0.0f) : NULL;
    return hv_nn_conv2d(n->g, x, w, b, s, pad, dil);
}

static hv_nn_tensor *bn(net *n, hv_nn_tensor *x, int64_t c, hv_rng *r)
{
    const int64_t cs[1] = {c};
    hv_nn_tensor *ga = param(n, "g", 1, cs, 1, r, 0.2f, 1.0f);
    hv_nn_tensor *be = param(n, "be", 1, cs, 1, r, 0.1f, 0.0f);
    hv_nn_tensor *rm = param(n, "rm", 1, cs, 0, r, 0.1f, 0.0f);
    hv_nn_tensor *rv = param(n, "rv", 1, cs, 0, r, 0.1f, 1.0f);
    return hv_nn_batch_norm(n->g, x, ga, be, rm, rv, 0.1f, 1e-5f);
}

enum { NET_GEN, NET_PATCHGAN, NET_BRANCH, NET_WIDE, NET_CONCAT, NET_MIX };
static const char *const net_names[] = {"generator chain", "patchgan chain", "branch/output",
                                        "24/40-channel chain", "concat/upsample/readers",
                                        "concat with the graph input"};

/* The cpu backend's precision for the nets build() makes (bf16 checks). */
static hv_nn_precision cpu_prec = HV_NN_FP32;
/* Reorders of one fp32 inference forward, per net (check_inference). */
static uint64_t fp32_reorders[NET_MIX + 1];

/* Set by the generator chain's inference check: oneDNN's inference
 * convolutions keep NHWC here (AVX-512), which the concat/upsample regions
 * need (on AVX2 they pick nChw8c and those regions stay plain). */
static int nhwc_machine;

/* Builds net `kind` with parameters from seed 7 (the same on both backends). */
static int build(net *n, int kind, int use_cpu, unsigned flags)
{
    hv_rng r;
    hv_rng_seed(&r, 7, (uint64_t)kind);
    memset(n, 0, sizeof *n);
    HV_CHECK_OK(use_cpu ? hv_nn_backend_create_cpu(&n->be) : hv_nn_backend_create_ref(&n->be));
    if (use_cpu && n->be) HV_CHECK_OK(hv_nn_backend_set_precision(n->be, cpu_prec));
    HV_CHECK_OK(hv_nn_graph_create(&n->g));
    HV_CHECK_OK(hv_nn_params_create(&n->ps));
    if (!n->be || !n->g || !n->ps) return 0;
    hv_nn_graph *g = n->g;
    hv_nn_tensor *y;
    if (kind == NET_GEN) {
        const int64_t xs[4] = {2, 3, 24, 20};
        n->x = hv_nn_input(g, "x", 4, xs);
        /* the dilated convolutions' backward-weights is oneDNN's plain
         * gemm on AVX2, so the tensors around them stay plain there */
        y = hv_nn_elu(g, conv(n, n->x, 3, 16, 5, 1, 2, 1, 1, &r), 1.0f);
        n->probe[n->nprobe++] = y; /* blocked */
        y = hv_nn_elu(g, conv(n, y, 16, 32, 3, 2, 1, 1, 1, &r), 1.0f);
        y = hv_nn_elu(g, conv(n, y, 32, 32, 3, 1, 2, 2, 1, &r), 1.0f);
        y = hv_nn_elu(g, conv(n, y, 32, 16, 3, 1, 4, 4, 1, &r), 1.0f);
        y = hv_nn_sigmoid(g, conv(n, y, 16, 16, 3, 1, 1, 1, 1, &r));
        n->probe[n->nprobe++] = y; /* blocked */
        y = conv(n, y, 16, 2, 3, 1, 1, 1, 1, &r);
    } else if (kind == NET_PATCHGAN) {
        const int64_t xs[4] = {3, 2, 32, 32};
        n->x = hv_nn_input(g, "x", 4, xs);
        y = hv_nn_leaky_relu(g, conv(n, n->x, 2, 16, 4, 2, 1, 1, 1, &r), 0.2f);
        y = bn(n, conv(n, y, 16, 32, 4, 2, 1, 1, 0, &r), 32, &r);
        n->probe[n->nprobe++] = y; /* blocked, BN output */
        y = hv_nn_leaky_relu(g, y, 0.2f);
        y = hv_nn_leaky_relu(g, bn(n, conv(n, y, 32, 64, 4, 2, 1, 1, 0, &r), 64, &r), 0.2f);
        y = hv_nn_leaky_relu(g, bn(n, conv(n, y, 64, 64, 4, 1, 1, 1, 0, &r), 64, &r), 0.2f);
        y = conv(n, y, 64, 1, 4, 1, 1, 1, 1, &r);
    } else if (kind == NET_WIDE) {
        /* channel counts that are not a multiple of 16: NHWC (B = C) or
         * nChw8c, never nChw16c (which would pad them) */
        const int64_t xs[4] = {2, 4, 20, 18};
        n->x = hv_nn_input(g, "x", 4, xs);
        y = hv_nn_elu(g, conv(n, n->x, 4, 24, 3, 1, 1, 1, 1, &r), 1.0f);
        n->probe[n->nprobe++] = y;
        y = hv_nn_elu(g, conv(n, y, 24, 40, 3, 2, 1, 1, 1, &r), 1.0f);
        n->probe[n->nprobe++] = y;
        y = hv_nn_elu(g, conv(n, y, 40, 24, 3, 1, 2, 2, 1, &r), 1.0f);
        n->probe[n->nprobe++] = y;
        y = conv(n, y, 24, 3, 3, 1, 1, 1, 1, &r);
    } else if (kind == NET_CONCAT) {
        /* the generator's other patterns (fine stage, spec 5.4): a conv
         * output also read by a global average pool (the height head) and
         * one also read by a concat; a concat of two conv outputs, its x2
         * upsampling into a conv, and a concat of a conv output with the
         * plain graph input read by two convs */
        const int64_t xs[4] = {2, 4, 16, 12};
        n->x = hv_nn_input(g, "x", 4, xs);
        hv_nn_tensor *a = hv_nn_elu(g, conv(n, n->x, 4, 16, 3, 2, 1, 1, 1, &r), 1.0f);
        hv_nn_tensor *gp = hv_nn_gap(g, a);
        hv_nn_tensor *b = hv_nn_elu(g, conv(n, a, 16, 16, 3, 1, 1, 1, 1, &r), 1.0f);
        hv_nn_tensor *c = hv_nn_elu(g, conv(n, b, 16, 8, 3, 1, 2, 2, 1, &r), 1.0f);
        hv_nn_tensor *bc[2] = {b, c};
        hv_nn_tensor *d = hv_nn_concat(g, 2, bc);
        hv_nn_tensor *u = hv_nn_upsample(g, d, 2);
        hv_nn_tensor *e = hv_nn_elu(g, conv(n, u, 24, 16, 3, 1, 1, 1, 1, &r), 1.0f);
        hv_nn_tensor *ex[2] = {e, n->x};
        hv_nn_tensor *cat = hv_nn_concat(g, 2, ex);
        y = conv(n, cat, 20, 2, 3, 1, 1, 1, 1, &r);
        hv_nn_tensor *z = conv(n, cat, 20, 3, 3, 1, 1, 1, 1, &r);
        hv_nn_set_output(gp);
        hv_nn_set_output(z);
        n->extra[n->nextra++] = gp;
        n->extra[n->nextra++] = z;
        hv_nn_tensor *pr[7] = {a, b, c, d, u, e, cat};
        for (int i = 0; i < 7; i++) n->probe[n->nprobe++] = pr[i];
    } else if (kind == NET_MIX) {
        /* a concat of a conv output with the plain graph input (which a
         * bf16 region converts while gathering), read by two convs; a
         * concat of those, its x2 upsampling, and an output head of 2
         * channels (fp32 in bf16 graphs: HV_NN_BF16_MIN_COUT) */
        const int64_t xs[4] = {2, 4, 16, 12};
        n->x = hv_nn_input(g, "x", 4, xs);
        hv_nn_tensor *a = hv_nn_elu(g, conv(n, n->x, 4, 16, 3, 1, 1, 1, 1, &r), 1.0f);
        hv_nn_tensor *ax[2] = {a, n->x};
        hv_nn_tensor *k = hv_nn_concat(g, 2, ax);
        hv_nn_tensor *b = hv_nn_elu(g, conv(n, k, 20, 16, 3, 1, 1, 1, 1, &r), 1.0f);
        hv_nn_tensor *b2 = hv_nn_elu(g, conv(n, k, 20, 8, 3, 1, 2, 2, 1, &r), 1.0f);
        hv_nn_tensor *bb[2] = {b, b2};
        hv_nn_tensor *cc = hv_nn_concat(g, 2, bb);
        hv_nn_tensor *u = hv_nn_upsample(g, cc, 2);
        hv_nn_tensor *e = hv_nn_elu(g, conv(n, u, 24, 16, 3, 1, 1, 1, 1, &r), 1.0f);
        y = conv(n, e, 16, 2, 3, 1, 1, 1, 1, &r);
        hv_nn_tensor *pr[7] = {a, k, b, b2, cc, u, e};
        for (int i = 0; i < 7; i++) n->probe[n->nprobe++] = pr[i];
    } else {
        /* a: read by a conv and by an add (plain kernel); b: a graph output */
        const int64_t xs[4] = {2, 8, 16, 16};
        n->x = hv_nn_input(g, "x", 4, xs);
        hv_nn_tensor *a = hv_nn_elu(g, conv(n, n->x, 8, 16, 3, 1, 1, 1, 1, &r), 1.0f);
        hv_nn_tensor *b = hv_nn_elu(g, conv(n, a, 16, 16, 3, 1, 1, 1, 1, &r), 1.0f);
        hv_nn_set_output(b);
        n->probe[n->nprobe++] = a;
        n->probe[n->nprobe++] = b;
        y = hv_nn_add(g, conv(n, b, 16, 16, 3, 1, 1, 1, 1, &r), a);
        y = conv(n, y, 16, 1, 3, 1, 1, 1, 1, &r);
    }
    if (flags & HV_NN_PLAN_TRAIN) hv_nn_set_requires_grad(n->x);
    int64_t os[HV_NN_MAX_DIMS];
    int ond = hv_nn_tensor_shape(y, os);
    n->r = hv_nn_input(g, "R", ond, os);
    n->out = y;
    n->loss = hv_nn_sum(g, hv_nn_mul(g, y, n->r));
    hv_nn_set_output(y);
    HV_CHECK_OK(hv_nn_graph_status(g));
    if (hv_nn_graph_status(g) != HV_OK) return 0;
    HV_CHECK_OK(hv_nn_graph_plan(g, n->be, flags));
    if (hv_nn_graph_status(g) != HV_OK) return 0;
    /* inputs from seed 11 */
    hv_rng_seed(&r, 11, (uint64_t)kind);
    size_t nx = (size_t)hv_nn_tensor_numel(n->x), nr = (size_t)hv_nn_tensor_numel(n->r);
    float *buf = malloc((nx > nr ? nx : nr) * sizeof(float));
    if (!buf) return 0;
    for (size_t i = 0; i < nx; i++) buf[i] = (float)hv_rng_normal(&r);
    HV_CHECK_OK(hv_nn_tensor_set(n->x, buf, nx));
    for (size_t i = 0; i < nr; i++) buf[i] = (float)hv_rng_normal(&r);
    HV_CHECK_OK(hv_nn_tensor_set(n->r, buf, nr));
    free(buf);
    return 1;
}

static void free_net(net *n)
{
    hv_nn_graph_free(n->g);
    hv_nn_params_free(n->ps);
    hv_nn_backend_free(n->be);
}

static double nmse(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

/* Compares tensor t of the two nets (data or gradient). */
static void cmp_tensor(const char *what, const hv_nn_tensor *tc, const hv_nn_tensor *tr, int grad,
                       const char *ctx)
{
    size_t cnt = (size_t)hv_nn_tensor_numel(tr);
    float *a = malloc(cnt * sizeof(float)), *b = malloc(cnt * sizeof(float));
    if (!a || !b) {
        HV_CHECK(0, "out of memory");
        free(a);
        free(b);
        return;
    }
    if (grad) {
        HV_CHECK_OK(hv_nn_tensor_get_grad(tc, a, cnt));
        HV_CHECK_OK(hv_nn_tensor_get_grad(tr, b, cnt));
    } else {
        HV_CHECK_OK(hv_nn_tensor_get(tc, a, cnt));
        HV_CHECK_OK(hv_nn_tensor_get(tr, b, cnt));
    }
    double e = nmse(a, b, cnt);
    printf("  %s: %s %-22s nmse %.2e\n", ctx, grad ? "grad" : "data", what, e);
    HV_CHECK(e < NMSE_TOL, "%s: %s of %s differs between cpu and ref (nmse %.3g)", ctx,
             grad ? "gradient" : "value", what, e);
    free(a);
    free(b);
}

static void cmp_params(net *c, net *r, int grads, const char *ctx)
{
    for (int i = 0; i < r->np; i++) {
        size_t cnt = (size_t)hv_nn_param_numel(r->p[i]);
        const float *a = grads ? hv_nn_param_grad(c->p[i]) : hv_nn_param_data(c->p[i]);
        const float *b = grads ? hv_nn_param_grad(r->p[i]) : hv_nn_param_data(r->p[i]);
        if (!a || !b) continue; /* buffers have no gradient */
        double e = nmse(a, b, cnt);
        HV_CHECK(e < NMSE_TOL, "%s: parameter %s %s differs between cpu and ref (nmse %.3g)", ctx,
                 hv_nn_param_name(r->p[i]), grads ? "gradient" : "value", e);
    }
}

static void check_training(int kind)
{
    net c, r;
    char ctx[64];
    snprintf(ctx, sizeof ctx, "training, %s", net_names[kind]);
    if (!build(&c, kind, 1, HV_NN_PLAN_TRAIN) || !build(&r, kind, 0, HV_NN_PLAN_TRAIN)) goto done;
    int blocked = 0;
    for (int i = 0; i < c.nprobe; i++) blocked += c.probe[i]->blk > 0;
    if (kind == NET_BRANCH) {
        HV_CHECK(c.probe[0]->blk == 0, "%s: a tensor with a plain second reader was blocked", ctx);
        HV_CHECK(c.probe[1]->blk == 0, "%s: a graph output was blocked", ctx);
    } else if (kind == NET_CONCAT) {
        /* concat, upsample and second readers keep NHWC in inference only */
        HV_CHECK(blocked == 0, "%s: %d tensors around a concat/upsample blocked in training", ctx,
                 blocked);
    } else {
        HV_CHECK(blocked == c.nprobe, "%s: the cpu backend blocked %d of %d chain tensors", ctx,
                 blocked, c.nprobe);
    }
    for (int it = 0; it < 2; it++) { /* twice: gradients must be reset, state reused */
        hv_nn_params_zero_grad(c.ps);
        hv_nn_params_zero_grad(r.ps);
        uint64_t a0 = hv_nn_alloc_count();
        HV_CHECK_OK(hv_nn_graph_forward(c.g));
        HV_CHECK_OK(hv_nn_graph_backward(c.g, c.loss));
        HV_CHECK(hv_nn_alloc_count() == a0, "%s: forward/backward allocated", ctx);
        HV_CHECK_OK(hv_nn_graph_forward(r.g));
        HV_CHECK_OK(hv_nn_graph_backward(r.g, r.loss));
    }
    cmp_tensor("output", c.out, r.out, 0, ctx);
    cmp_tensor("loss", c.loss, r.loss, 0, ctx);
    cmp_tensor("input", c.x, r.x, 1, ctx);
    for (int i = 0; i < c.nprobe; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "chain tensor %d", i);
        cmp_tensor(nm, c.probe[i], r.probe[i], 0, ctx);
        cmp_tensor(nm, c.probe[i], r.probe[i], 1, ctx);
    }
    cmp_params(&c, &r, 1, ctx);
    cmp_params(&c, &r, 0, ctx); /* BN running statistics */
done:
    free_net(&c);
    free_net(&r);
}

/* Inference: the activations fused into the convolutions, oneDNN's
 * inference kernels choose the layouts (NHWC from its brgemm convolutions
 * on AVX-512, nChw8c on AVX2). The generator chain must be kept in that
 * layout from its first convolution to its last: a second forward (weights
 * already reordered into their cache) runs at most two reorders, the
 * graph input's into the first convolution and the last convolution's
 * output back to plain, none between two convolutions. (The chain's
 * intermediates are not compared here: an inference graph reuses their
 * buffers once read; the output is what depends on them.) */
static void check_inference(int kind)
{
    net c, r;
    char ctx[64];
    snprintf(ctx, sizeof ctx, "inference, %s", net_names[kind]);
    if (!build(&c, kind, 1, 0) || !build(&r, kind, 0, 0)) goto done;
    HV_CHECK_OK(hv_nn_graph_forward(c.g));
    HV_CHECK_OK(hv_nn_graph_forward(r.g));
    const uint64_t r0 = hv__nn_cpu_reorders();
    HV_CHECK_OK(hv_nn_graph_forward(c.g)); /* again: cached weights, same buffers */
    const uint64_t nre = hv__nn_cpu_reorders() - r0;
    fp32_reorders[kind] = nre;
    cmp_tensor("output", c.out, r.out, 0, ctx);
    cmp_tensor("loss", c.loss, r.loss, 0, ctx);
    for (int i = 0; i < c.nextra; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "output %d", i + 1);
        cmp_tensor(nm, c.extra[i], r.extra[i], 0, ctx);
    }
    if (kind == NET_GEN) {
        nhwc_machine = 1;
        for (int i = 0; i < c.nprobe; i++)
            nhwc_machine &= c.probe[i]->blk == c.probe[i]->shape[1];
    }
    if ((kind == NET_CONCAT || kind == NET_MIX) && !nhwc_machine) {
        printf("  %s: oneDNN does not keep NHWC on this CPU, layout checks skipped\n", ctx);
    } else if (kind == NET_MIX) {
        for (int i = 0; i < c.nprobe; i++)
            HV_CHECK(c.probe[i]->blk == c.probe[i]->shape[1], "%s: tensor %d was not kept in NHWC "
                     "(block %d)", ctx, i, c.probe[i]->blk);
        printf("  %s: %llu reorders in one forward\n", ctx, (unsigned long long)nre);
        HV_CHECK(nre <= 2, "%s: %llu reorders in one forward, at most 2 expected (graph input, "
                 "output)", ctx, (unsigned long long)nre);
    } else if (kind == NET_CONCAT) {
        /* every tensor between the first convolution and the last two is
         * NHWC; one forward converts only the graph input (into the first
         * convolution) and the two last convolutions' outputs */
        static const char *const pn[7] = {"conv (+gap reader)", "conv (+concat reader)", "conv",
                                          "concat", "upsample", "conv", "concat (2 conv readers)"};
        for (int i = 0; i < c.nprobe; i++) {
            const hv_nn_tensor *t = c.probe[i];
            printf("  %s: %-24s layout %s\n", ctx, pn[i],
                   t->blk == t->shape[1] ? "NHWC" : t->blk ? "nChw{B}c" : "plain");
            HV_CHECK(t->blk == t->shape[1], "%s: %s was not kept in NHWC (block %d)", ctx, pn[i],
                     t->blk);
        }
        printf("  %s: %llu reorders in one forward\n", ctx, (unsigned long long)nre);
        HV_CHECK(nre <= 3, "%s: %llu reorders in one forward, at most 3 expected (graph input, "
                 "two outputs): a reorder at a concat, upsample or second reader", ctx,
                 (unsigned long long)nre);
    } else if (kind == NET_GEN || kind == NET_WIDE) {
        for (int i = 0; i < c.nprobe; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "chain tensor %d", i);
            HV_CHECK(c.probe[i]->blk > 0, "%s: %s was not kept in oneDNN's layout", ctx, nm);
            printf("  %s: %s layout %s (block %d)\n", ctx, nm,
                   !c.probe[i]->blk                           ? "plain"
                   : c.probe[i]->blk == c.probe[i]->shape[1] ? "NHWC"
                                                             : "nChw{B}c",
                   c.probe[i]->blk);
        }
        /* AVX2 (no NHWC): oneDNN 2.6 runs the generator chain's dilation-4
         * convolution forward as plain im2col + gemm (x64:gemm:jit), so the
         * pair of reorders around it is its choice, not a broken chain */
        const uint64_t allowed = kind == NET_GEN && !nhwc_machine ? 4 : 2;
        printf("  %s: %llu reorders in one forward\n", ctx, (unsigned long long)nre);
        HV_CHECK(nre <= allowed, "%s: %llu reorders in one forward, at most %llu expected (graph "
                 "input, output%s): a reorder between two convolutions", ctx,
                 (unsigned long long)nre, (unsigned long long)allowed,
                 allowed > 2 ? ", the plain dilated convolution's input and output" : "");
    } else if (kind == NET_BRANCH) {
        HV_CHECK(c.probe[0]->blk == 0, "%s: a tensor with a plain second reader was blocked", ctx);
        HV_CHECK(c.probe[1]->blk == 0, "%s: a graph output was blocked", ctx);
    }
done:
    free_net(&c);
    free_net(&r);
}

static float *get_all(const hv_nn_tensor *t)
{
    const size_t cnt = (size_t)hv_nn_tensor_numel(t);
    float *b = malloc(cnt * sizeof(float));
    if (b && hv_nn_tensor_get(t, b, cnt) != HV_OK) {
        free(b);
        return NULL;
    }
    return b;
}

/* bf16 inference (avx512_bf16/AMX only) of net `kind`, whose longest path
 * holds `layers` bf16 convolutions. The bf16 NHWC regions must leave every
 * output bit for bit as the bf16 path without them
 * (hv__nn_cpu_set_bf16_regions(0)): each reader of a region tensor rounds
 * it to bf16 anyway. Against the reference (fp32), bf16's error: relative
 * rms below layers sqrt(3) u and above u/16 (test_nn_bf16.c's bound for a
 * chain; concat and upsampling only copy). Layout: NET_MIX keeps every tensor NHWC
 * (the last conv's output fp32 for the fp32 head) with no more reorders
 * than its fp32 forward; NET_CONCAT the same except the tensor the gap
 * reads, which stays plain fp32 (the gap sums unrounded values), so two
 * reorders more than fp32: out of its conv, into the conv that also reads
 * it (the path without regions had them too). */
static void check_bf16(int kind, int layers)
{
    net c, o, r;
    char ctx[80];
    float *vc = NULL, *vo = NULL, *vr = NULL;
    memset(&c, 0, sizeof c);
    memset(&o, 0, sizeof o);
    memset(&r, 0, sizeof r);
    snprintf(ctx, sizeof ctx, "bf16 inference, %s", net_names[kind]);
    hv_nn_backend *be = NULL;
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    const hv_status pst = be ? hv_nn_backend_set_precision(be, HV_NN_BF16) : HV_ERR_NOMEM;
    hv_nn_backend_free(be);
    if (pst != HV_OK) {
        printf("  %s: skipped (%s)\n", ctx, hv_error_detail());
        return;
    }
    cpu_prec = HV_NN_BF16;
    hv__nn_cpu_set_bf16_regions(0);
    const int oko = build(&o, kind, 1, 0);
    hv__nn_cpu_set_bf16_regions(1);
    const int okc = build(&c, kind, 1, 0);
    cpu_prec = HV_NN_FP32;
    if (!oko || !okc || !build(&r, kind, 0, 0)) goto done;
    HV_CHECK_OK(hv_nn_graph_forward(r.g));
    HV_CHECK_OK(hv_nn_graph_forward(o.g));
    HV_CHECK_OK(hv_nn_graph_forward(c.g));
    uint64_t r0 = hv__nn_cpu_reorders();
    HV_CHECK_OK(hv_nn_graph_forward(o.g));
    const uint64_t nre_off = hv__nn_cpu_reorders() - r0;
    r0 = hv__nn_cpu_reorders();
    HV_CHECK_OK(hv_nn_graph_forward(c.g));
    const uint64_t nre = hv__nn_cpu_reorders() - r0;
    const double bound = layers * sqrt(3.0) / 256.0;
    for (int i = -1; i < c.nextra; i++) {
        const hv_nn_tensor *tc = i < 0 ? c.out : c.extra[i], *to = i < 0 ? o.out : o.extra[i];
        const hv_nn_tensor *tr = i < 0 ? r.out : r.extra[i];
        const size_t cnt = (size_t)hv_nn_tensor_numel(tc);
        vc = get_all(tc);
        vo = get_all(to);
        vr = get_all(tr);
        HV_CHECK(vc && vo && vr, "%s: reading output %d failed: %s", ctx, i + 1, hv_error_detail());
        if (!vc || !vo || !vr) goto done;
        size_t diff = 0;
        for (size_t k = 0; k < cnt; k++) diff += memcmp(&vc[k], &vo[k], sizeof(float)) != 0;
        const double e = sqrt(nmse(vc, vr, cnt));
        printf("  %s: output %d: %zu of %zu values differ from the path without regions; "
               "relative rms error against the reference %.2e (bound %.2e)\n", ctx, i + 1, diff,
               cnt, e, bound);
        HV_CHECK(diff == 0, "%s: output %d: %zu of %zu values differ from the bf16 path without "
                 "NHWC regions (must be bit-identical)", ctx, i + 1, diff, cnt);
        HV_CHECK(e < bound, "%s: output %d: relative rms error %.3g beyond %.3g", ctx, i + 1, e,
                 bound);
        if (i < 0) HV_CHECK(e > 1.0 / 256 / 16, "%s: error %.3g is fp32's, not bf16's", ctx, e);
        free(vc);
        free(vo);
        free(vr);
        vc = vo = vr = NULL;
    }
    printf("  %s: %llu reorders in one forward (%llu without the regions, %llu in fp32)\n", ctx,
           (unsigned long long)nre, (unsigned long long)nre_off,
           (unsigned long long)fp32_reorders[kind]);
    if (!nhwc_machine) {
        printf("  %s: oneDNN does not keep NHWC on this CPU, layout checks skipped\n", ctx);
        goto done;
    }
    for (int i = 0; i < c.nprobe; i++) {
        const hv_nn_tensor *t = c.probe[i];
        /* expected: 0 plain, 1 NHWC fp32, 2 NHWC bf16 */
        int want = 2;
        if (kind == NET_MIX && i == 6) want = 1;                /* read by the fp32 head */
        if (kind == NET_CONCAT && i == 0) want = 0;             /* read by the gap */
        if (kind == NET_CONCAT && (i == 5 || i == 6)) want = 1; /* the fp32 heads' region */
        const int got = t->blk == t->shape[1] ? 1 + (t->blk_bf16 != 0) : t->blk ? -1 : 0;
        static const char *const lay[3] = {"plain", "NHWC fp32", "NHWC bf16"};
        printf("  %s: tensor %d layout %s\n", ctx, i, got < 0 ? "nChw{B}c" : lay[got]);
        HV_CHECK(got == want, "%s: tensor %d is %s, %s expected", ctx, i,
                 got < 0 ? "nChw{B}c" : lay[got], lay[want]);
    }
    const uint64_t most = fp32_reorders[kind] + 2 * (kind == NET_CONCAT);
    HV_CHECK(nre <= most, "%s: %llu reorders in one forward, at most %llu expected", ctx,
             (unsigned long long)nre, (unsigned long long)most);
    HV_CHECK(nre < nre_off, "%s: %llu reorders with the regions, not fewer than %llu without",
             ctx, (unsigned long long)nre, (unsigned long long)nre_off);
done:
    free(vc);
    free(vo);
    free(vr);
    if (c.g || c.be) free_net(&c);
    if (o.g || o.be) free_net(&o);
    if (r.g || r.be) free_net(&r);
}

int main(void)
{
    for (int k = NET_GEN; k <= NET_BRANCH; k++) {
        check_training(k);
        check_inference(k);
    }
    check_inference(NET_WIDE); /* training: nChw16c on AVX-512, no chain */
    check_training(NET_CONCAT);
    check_inference(NET_CONCAT);
    check_inference(NET_MIX);
    check_bf16(NET_MIX, 3);
    check_bf16(NET_CONCAT, 4);
    return hv_test_done();
}
