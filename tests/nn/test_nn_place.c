/*
 * test_nn_place.c: buffer placement on a backend whose buffers are not host
 * memory, with the fake device of fake_device.h (separate mappings that
 * fault when host code touches them, copies checked, queued kernels).
 *
 *  - A graph mixing ops the fake device runs (conv2d, sigmoid, add, mean)
 *    with ops it declines (elu, upsample, mul, l1), so that values cross
 *    from device to host and back four times, gives the reference backend's
 *    output and gradients, forward and backward, training and inference
 *    (with the activation fused into the convolution), also when the fake
 *    device declines every op or runs every op; forward and backward
 *    allocate nothing.
 *  - A device backend that lacks copy_in is refused at plan time, naming it.
 *  - Results reach the host only after synchronize.
 *  - Parameters bound to the device (hv_nn_params_bind) with Adam on its
 *    adam_step hook: a short training equals the cpu backend's within
 *    round-off; checkpoints move between device and host unchanged; an
 *    unbound parameter on the device, a bound one on the cpu, and a graph
 *    or Adam whose parameters moved afterwards are refused.
 *  - Adam's step on the device synchronises once (one finite check of all
 *    the gradients, then the updates), its first step is lr g / (|g| + eps)
 *    by hand, and a NaN in the last parameter's gradient changes no
 *    parameter, moment or step count, on the device and on the host.
 * The reference backend is the ground truth (its kernels are checked
 * against PyTorch in test_nn_ops); both run the same kernels, so the
 * results are compared within 1e-6 relative L2 (measured: 0, bit-identical).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_device.h"
#include "hv/nn.h"
#include "hv_test.h"

#define NX (2 * 3 * 8 * 8)
#define NW1 (4 * 3 * 3 * 3)
#define NB1 4
#define NW2 (2 * 4 * 3 * 3)
#define NY (2 * 2 * 8 * 8)

typedef struct run_out {
    float y[NY], loss, gx[NX], gw1[NW1], gb1[NB1], gw2[NW2];
} run_out;

static double rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* x -> conv(w1, b1) -> elu -> upsample x2 -> conv(w2, stride 2) -> sigmoid
 * = y; loss = l1(y, t) + mean(y * y). Returns 0 on success. */
static int run_mixed(hv_nn_backend *be, unsigned flags, run_out *o)
{
    int rc = -1;
    hv_nn_graph *g = NULL;
    float *x = malloc(NX * sizeof(float)), *w1 = malloc(NW1 * sizeof(float)),
          *b1 = malloc(NB1 * sizeof(float)), *w2 = malloc(NW2 * sizeof(float)),
          *tt = malloc(NY * sizeof(float));
    hv_rng r;
    hv_rng_seed(&r, 77, 1);
    for (int i = 0; i < NX; i++) x[i] = (float)hv_rng_normal(&r);
    for (int i = 0; i < NW1; i++) w1[i] = (float)(0.3 * hv_rng_normal(&r));
    for (int i = 0; i < NB1; i++) b1[i] = (float)(0.1 * hv_rng_normal(&r));
    for (int i = 0; i < NW2; i++) w2[i] = (float)(0.3 * hv_rng_normal(&r));
    for (int i = 0; i < NY; i++) tt[i] = (float)hv_rng_uniform(&r);
    HV_CHECK_OK(hv_nn_graph_create(&g));
    const int grads = flags != 0;
    hv_nn_tensor *tx = hv_nn_input(g, "x", 4, (const int64_t[]){2, 3, 8, 8});
    hv_nn_tensor *tw1 = hv_nn_input(g, "w1", 4, (const int64_t[]){4, 3, 3, 3});
    hv_nn_tensor *tb1 = hv_nn_input(g, "b1", 1, (const int64_t[]){4});
    hv_nn_tensor *tw2 = hv_nn_input(g, "w2", 4, (const int64_t[]){2, 4, 3, 3});
    hv_nn_tensor *tt_ = hv_nn_input(g, "t", 4, (const int64_t[]){2, 2, 8, 8});
    if (grads) {
        hv_nn_set_requires_grad(tx);
        hv_nn_set_requires_grad(tw1);
        hv_nn_set_requires_grad(tb1);
        hv_nn_set_requires_grad(tw2);
    }
    hv_nn_tensor *e = hv_nn_elu(g, hv_nn_conv2d(g, tx, tw1, tb1, 1, 1, 1), 1.0f);
    hv_nn_tensor *c2 = hv_nn_conv2d(g, hv_nn_upsample(g, e, 2), tw2, NULL, 2, 1, 1);
    hv_nn_tensor *y = hv_nn_sigmoid(g, c2);
    hv_nn_tensor *loss = hv_nn_add(g, hv_nn_l1(g, y, tt_), hv_nn_mean(g, hv_nn_mul(g, y, y)));
    hv_nn_set_output(y);
    hv_nn_set_output(loss);
    HV_CHECK_OK(hv_nn_graph_plan(g, be, flags));
    if (hv_nn_graph_status(g) != HV_OK) goto done;
    HV_CHECK_OK(hv_nn_tensor_set(tx, x, NX));
    HV_CHECK_OK(hv_nn_tensor_set(tw1, w1, NW1));
    HV_CHECK_OK(hv_nn_tensor_set(tb1, b1, NB1));
    HV_CHECK_OK(hv_nn_tensor_set(tw2, w2, NW2));
    HV_CHECK_OK(hv_nn_tensor_set(tt_, tt, NY));
    /* twice: the second pass must not see anything left by the first */
    for (int pass = 0; pass < 2; pass++) {
        uint64_t a0 = hv_nn_alloc_count();
        HV_CHECK_OK(hv_nn_graph_forward(g));
        if (grads) HV_CHECK_OK(hv_nn_graph_backward(g, loss));
        HV_CHECK(hv_nn_alloc_count() == a0, "%s: forward/backward allocated", hv_nn_backend_name(be));
    }
    HV_CHECK_OK(hv_nn_tensor_get(y, o->y, NY));
    HV_CHECK_OK(hv_nn_tensor_get(loss, &o->loss, 1));
    if (grads) {
        HV_CHECK_OK(hv_nn_tensor_get_grad(tx, o->gx, NX));
        HV_CHECK_OK(hv_nn_tensor_get_grad(tw1, o->gw1, NW1));
        HV_CHECK_OK(hv_nn_tensor_get_grad(tb1, o->gb1, NB1));
        HV_CHECK_OK(hv_nn_tensor_get_grad(tw2, o->gw2, NW2));
    }
    rc = 0;
done:
    hv_nn_graph_free(g);
    free(x);
    free(w1);
    free(b1);
    free(w2);
    free(tt);
    return rc;
}

static void compare(const char *what, const run_out *a, const run_out *ref, int grads)
{
    const double tol = 1e-6;
    double e[6] = {rel_l2(a->y, ref->y, NY), rel_l2(&a->loss, &ref->loss, 1), 0, 0, 0, 0};
    if (grads) {
        e[2] = rel_l2(a->gx, ref->gx, NX);
        e[3] = rel_l2(a->gw1, ref->gw1, NW1);
        e[4] = rel_l2(a->gb1, ref->gb1, NB1);
        e[5] = rel_l2(a->gw2, ref->gw2, NW2);
    }
    static const char *const names[6] = {"y", "loss", "dx", "dw1", "db1", "dw2"};
    for (int i = 0; i < 6; i++)
        HV_CHECK(e[i] <= tol, "%s: %s vs reference, relative L2 %.3g > %.3g", what, names[i], e[i], tol);
    printf("# %-34s y %.1e loss %.1e dx %.1e dw1 %.1e db1 %.1e dw2 %.1e\n", what, e[0], e[1], e[2],
           e[3], e[4], e[5]);
}

static void test_mixed(void)
{
    static const hv_nn_op dev_ops[] = {HV_NN_OP_CONV2D, HV_NN_OP_SIGMOID, HV_NN_OP_ADD, HV_NN_OP_MEAN};
    static const unsigned flags[3] = {HV_NN_PLAN_TRAIN, HV_NN_PLAN_GRAD, 0};
    static const char *const fname[3] = {"train", "grad", "inference"};
    hv_nn_backend *ref = NULL;
    HV_CHECK_OK(hv_nn_backend_create_ref(&ref));
    run_out *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    for (int f = 0; f < 3; f++) {
        HV_CHECK(run_mixed(ref, flags[f], want) == 0, "reference run failed");
        /* mixed, all declined, all on the device */
        for (int v = 0; v < 3; v++) {
            hv_nn_backend *dev = NULL;
            HV_CHECK_OK(fake_device_create(&dev, dev_ops, v == 0 ? 4 : v == 1 ? 0 : -1));
            if (!dev) continue;
            memset(got, 0, sizeof *got);
            char what[64];
            snprintf(what, sizeof what, "%s, %s", fname[f],
                     v == 0 ? "mixed placement" : v == 1 ? "all declined" : "all on the device");
            HV_CHECK(run_mixed(dev, flags[f], got) == 0, "%s: fake device run failed", what);
            compare(what, got, want, flags[f] != 0);
            fake_dev *fd = fake_device_state(dev);
            HV_CHECK(v == 1 || fd->n_kernels > 0, "%s: the device ran no kernel", what);
            HV_CHECK(v == 2 || fd->n_sync > 0, "%s: synchronize was never called", what);
            hv_nn_backend_free(dev);
        }
    }
    free(want);
    free(got);
    hv_nn_backend_free(ref);
}

/* A device backend must provide its copies: planning on one without
 * copy_in is refused with a message naming it. */
static void test_refusals(void)
{
    hv_nn_backend *dev = NULL;
    HV_CHECK_OK(fake_device_create(&dev, NULL, -1));
    if (!dev) return;
    hv_nn_backend_i broken = *dev->iface;
    broken.copy_in = NULL;
    const hv_nn_backend_i *keep = dev->iface;
    dev->iface = &broken;
    hv_nn_graph *g = NULL;
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_nn_tensor *x = hv_nn_input(g, "x", 2, (const int64_t[]){2, 3});
    hv_nn_set_output(hv_nn_relu(g, x));
    hv_status st = hv_nn_graph_plan(g, dev, 0);
    HV_CHECK(st != HV_OK && strstr(hv_error_detail(), "copy_in"),
             "a device backend without copy_in was accepted (%s)", hv_error_detail());
    hv_nn_graph_free(g);
    dev->iface = keep;
    hv_nn_backend_free(dev);
}

/* ---------------------------------------------------- bound parameters */

/* A small network with every kind of parameter: convolution weights and
 * bias, batch-norm affine and running statistics, spectral-norm vectors. */
typedef struct net {
    hv_nn_params *ps;
    hv_nn_param *p[9]; /* w1 b1 gamma beta rmean rvar w2 u v */
} net;

static void net_init(net *n)
{
    static const char *const names[9] = {"w1", "b1", "bn.g", "bn.b", "bn.rm", "bn.rv", "w2", "sn.u", "sn.v"};
    static const int64_t shapes[9][4] = {{3, 2, 3, 3}, {1}, {3}, {3}, {3}, {3}, {1, 3, 3, 3}, {1}, {27}};
    static const int nd[9] = {4, 1, 1, 1, 1, 1, 4, 1, 1}, tr[9] = {1, 1, 1, 1, 0, 0, 1, 0, 0};
    HV_CHECK_OK(hv_nn_params_create(&n->ps));
    for (int i = 0; i < 9; i++) HV_CHECK_OK(hv_nn_params_add(n->ps, names[i], nd[i], shapes[i], tr[i], &n->p[i]));
    hv_rng r;
    hv_rng_seed(&r, 5, 0);
    hv_nn_init_torch_default(n->p[0], NULL, &r);
    hv_nn_init_uniform(n->p[1], &r, -0.2, 0.2);
    hv_nn_init_normal(n->p[2], &r, 1.0, 0.1);
    hv_nn_init_normal(n->p[3], &r, 0.0, 0.1);
    hv_nn_init_const(n->p[4], 0.0);
    hv_nn_init_const(n->p[5], 1.0);
    hv_nn_init_torch_default(n->p[6], NULL, &r);
    hv_nn_init_sn_vectors(n->p[7], n->p[8], &r);
}

/* x -> conv (no bias: a bias before batch norm has a zero gradient, which
 * Adam would turn into steps of random sign) -> batch norm -> relu ->
 * conv(spectral_norm(w2), b1) -> sigmoid; loss = mse(y, t) */
static hv_nn_graph *net_graph(net *n, hv_nn_backend *be, hv_nn_tensor **x, hv_nn_tensor **t,
                              hv_nn_tensor **loss)
{
    hv_nn_graph *g = NULL;
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_nn_tensor *P[9];
    for (int i = 0; i < 9; i++) P[i] = hv_nn_param_tensor(g, n->p[i]);
    *x = hv_nn_input(g, "x", 4, (const int64_t[]){4, 2, 6, 6});
    *t = hv_nn_input(g, "t", 4, (const int64_t[]){4, 1, 6, 6});
    hv_nn_tensor *h = hv_nn_conv2d(g, *x, P[0], NULL, 1, 1, 1);
    h = hv_nn_relu(g, hv_nn_batch_norm(g, h, P[2], P[3], P[4], P[5], 0.1f, 1e-5f));
    hv_nn_tensor *y = hv_nn_sigmoid(g, hv_nn_conv2d(g, h, hv_nn_spectral_norm(g, P[6], P[7], P[8]), P[1], 1, 1, 1));
    *loss = hv_nn_mse(g, y, *t);
    hv_nn_set_output(*loss);
    HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
    return g;
}

#define STEPS 6

/* STEPS Adam steps on the batches of seed 9; losses[STEPS]. */
static void net_train(net *n, hv_nn_backend *be, hv_nn_adam *adam, float *losses)
{
    hv_nn_tensor *x, *t, *loss;
    hv_nn_graph *g = net_graph(n, be, &x, &t, &loss);
    float xb[4 * 2 * 36], tb[4 * 36];
    hv_rng r;
    hv_rng_seed(&r, 9, 0);
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < 4 * 2 * 36; i++) xb[i] = (float)hv_rng_normal(&r);
        for (int i = 0; i < 4 * 36; i++) tb[i] = (float)hv_rng_uniform(&r);
        hv_nn_params_zero_grad(n->ps);
        HV_CHECK_OK(hv_nn_tensor_set(x, xb, 4 * 2 * 36));
        HV_CHECK_OK(hv_nn_tensor_set(t, tb, 4 * 36));
        HV_CHECK_OK(hv_nn_graph_forward(g));
        HV_CHECK_OK(hv_nn_graph_backward(g, loss));
        HV_CHECK_OK(hv_nn_tensor_get(loss, &losses[s], 1));
        HV_CHECK_OK(hv_nn_adam_step(adam));
    }
    hv_nn_graph_free(g);
}

/* Every parameter of a (any placement) vs b: largest relative L2 error. */
static double params_diff(const net *a, const net *b)
{
    double worst = 0;
    float ha[64], hb[64];
    for (int i = 0; i < 9; i++) {
        size_t k = (size_t)hv_nn_param_numel(a->p[i]);
        HV_CHECK_OK(hv_nn_param_get(a->p[i], ha, k));
        HV_CHECK_OK(hv_nn_param_get(b->p[i], hb, k));
        worst = fmax(worst, rel_l2(ha, hb, k));
        if (getenv("NN_PLACE_DEBUG")) printf("# %s %.3g\n", hv_nn_param_name(a->p[i]), rel_l2(ha, hb, k));
    }
    return worst;
}

/* Parameters bound to the fake device (which declines batch norm, spectral
 * norm and sigmoid, so their buffers are updated through host staging),
 * Adam on its adam_step hook: a short training equals the CPU backend's
 * within round-off; a checkpoint saved from the device loads on the host
 * identically, optimiser state included, and both then continue alike. */
static void test_bound_training(void)
{
    static const hv_nn_op dev_ops[] = {HV_NN_OP_CONV2D, HV_NN_OP_RELU, HV_NN_OP_MSE};
    hv_nn_backend *cpu = NULL, *dev = NULL;
    net nc = {0}, nd = {0}, nl = {0};
    hv_nn_adam *ac = NULL, *ad = NULL, *al = NULL;
    float lc[STEPS], ld[STEPS];
    HV_CHECK_OK(hv_nn_backend_create_cpu(&cpu));
    HV_CHECK_OK(fake_device_create(&dev, dev_ops, 3));
    if (!cpu || !dev) return;
    net_init(&nc);
    net_init(&nd);
    HV_CHECK_OK(hv_nn_params_bind(nd.ps, dev));
    HV_CHECK(hv_nn_param_data(nd.p[0]) == NULL, "a device-bound parameter handed out a host pointer");
    HV_CHECK(params_diff(&nd, &nc) == 0, "binding changed the parameter values");

    /* refusals: unbound parameters on the device, bound ones on the cpu */
    hv_nn_graph *g = NULL;
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_nn_set_output(hv_nn_relu(g, hv_nn_param_tensor(g, nc.p[0])));
    HV_CHECK(hv_nn_graph_plan(g, dev, 0) != HV_OK && strstr(hv_error_detail(), "not bound"),
             "an unbound parameter was accepted on the device (%s)", hv_error_detail());
    hv_nn_graph_free(g);
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_nn_set_output(hv_nn_relu(g, hv_nn_param_tensor(g, nd.p[0])));
    HV_CHECK(hv_nn_graph_plan(g, cpu, 0) != HV_OK && strstr(hv_error_detail(), "bound to backend"),
             "a device-bound parameter was accepted on the cpu (%s)", hv_error_detail());
    hv_nn_graph_free(g);

    HV_CHECK_OK(hv_nn_adam_create(nc.ps, 1e-2, 0.5, 0.999, 1e-8, &ac));
    HV_CHECK_OK(hv_nn_adam_create(nd.ps, 1e-2, 0.5, 0.999, 1e-8, &ad));
    if (!ac || !ad) goto done;
    net_train(&nc, cpu, ac, lc);
    net_train(&nd, dev, ad, ld);
    fake_dev *fd = fake_device_state(dev);
    HV_CHECK(fd->n_adam == STEPS * 5, "Adam ran %llu times on the device, not %d",
             (unsigned long long)fd->n_adam, STEPS * 5);
    /* oneDNN convolutions and OpenBLAS vs the reference kernels: round-off
     * only (measured: losses 8e-8, parameters 2.3e-7; bounds 1e-5) */
    double el = 0;
    for (int s = 0; s < STEPS; s++) el = fmax(el, fabs((double)ld[s] - lc[s]) / fabs((double)lc[s]));
    double ep = params_diff(&nd, &nc);
    printf("# bound training, %d steps: losses %.4f -> %.4f; device vs cpu: loss %.2e, parameters %.2e\n",
           STEPS, lc[0], lc[STEPS - 1], el, ep);
    HV_CHECK(el <= 1e-5 && ep <= 1e-5, "device training differs from the cpu's: loss %.3g, parameters %.3g", el, ep);
    HV_CHECK(lc[STEPS - 1] < lc[0], "the training did not lower the loss (%g -> %g)", lc[0], lc[STEPS - 1]);

    /* a checkpoint from the device, loaded on the host */
    char path[4096];
    snprintf(path, sizeof path, "%s/dev.h5", hv_test_tmpdir("nn_place"));
    HV_CHECK_OK(hv_nn_checkpoint_save(path, nd.ps, ad, NULL, 0));
    net_init(&nl);
    HV_CHECK_OK(hv_nn_adam_create(nl.ps, 1e-3, 0.9, 0.9, 1e-6, &al));
    if (!al) goto done;
    HV_CHECK_OK(hv_nn_checkpoint_load(path, nl.ps, al, 1));
    HV_CHECK(params_diff(&nl, &nd) == 0, "the checkpoint loaded on the host differs from the device's parameters");
    HV_CHECK(hv_nn_adam_steps(al) == STEPS, "the optimiser step count was not restored");
    {
        hv_nn_param *pl, *pd;
        float *ml, *vl, *md, *vd, hm[64], hv[64];
        for (size_t i = 0; i < hv__nn_adam_state(al, 0, &pl, &ml, &vl); i++) {
            hv__nn_adam_state(al, i, &pl, &ml, &vl);
            hv__nn_adam_state(ad, i, &pd, &md, &vd);
            HV_CHECK_OK(hv__nn_param_copy_out(pd, hm, md, pd->numel));
            HV_CHECK_OK(hv__nn_param_copy_out(pd, hv, vd, pd->numel));
            HV_CHECK(memcmp(hm, ml, (size_t)pl->numel * sizeof(float)) == 0 &&
                         memcmp(hv, vl, (size_t)pl->numel * sizeof(float)) == 0,
                     "Adam moments of %s differ after the round trip", pl->name);
        }
    }
    /* and back: the host copy saved, loaded onto the device */
    snprintf(path, sizeof path, "%s/host.h5", hv_test_tmpdir("nn_place"));
    hv_nn_init_const(nl.p[0], 0.5); /* changed, so that the load must bring it */
    HV_CHECK_OK(hv_nn_checkpoint_save(path, nl.ps, NULL, NULL, 0));
    HV_CHECK_OK(hv_nn_checkpoint_load(path, nd.ps, NULL, 1));
    HV_CHECK(params_diff(&nd, &nl) == 0, "a host checkpoint loaded on the device differs");

    /* parameters moved after a graph was planned or the optimiser was
     * created: refused */
    hv_nn_tensor *gx, *gt, *gl;
    g = net_graph(&nd, dev, &gx, &gt, &gl);
    HV_CHECK_OK(hv_nn_params_bind(nd.ps, NULL));
    HV_CHECK(hv_nn_graph_forward(g) != HV_OK && strstr(hv_error_detail(), "was moved"),
             "a graph ran on parameters that moved after planning (%s)", hv_error_detail());
    hv_nn_graph_free(g);
    HV_CHECK(hv_nn_param_data(nd.p[0]) != NULL && params_diff(&nd, &nl) == 0,
             "unbinding lost the parameter values");
    HV_CHECK(hv_nn_adam_step(ad) != HV_OK && strstr(hv_error_detail(), "after the optimiser"),
             "Adam stepped parameters that moved away from its moments (%s)", hv_error_detail());
    HV_CHECK(hv_nn_checkpoint_save(path, nd.ps, ad, NULL, 0) != HV_OK && strstr(hv_error_detail(), "moved"),
             "a checkpoint of an optimiser whose parameters moved was written (%s)", hv_error_detail());
done:
    hv_nn_adam_free(ac);
    hv_nn_adam_free(ad);
    hv_nn_adam_free(al);
    hv_nn_params_free(nc.ps);
    hv_nn_params_free(nd.ps);
    hv_nn_params_free(nl.ps);
    hv_nn_backend_free(cpu);
    hv_nn_backend_free(dev);
}

/* One Adam step over gradients set by hand (g_k = (k + 1) / 8, alternating
 * sign), on a fake device (be: bound) or the host (be NULL): by hand, the
 * first step moves each weight by lr g / (|g| + eps) (m = (1 - b1) g, v =
 * (1 - b2) g^2, step lr / (1 - b1), sqrt(v) / sqrt(1 - b2) = |g|), after
 * ONE synchronisation for the whole step on the device; then a NaN in the
 * LAST parameter's gradient changes nothing (weights, moments, step count)
 * and names that parameter. */
static void adam_check(hv_nn_backend *be)
{
    const char *where = be ? "fake device" : "host";
    net n = {0};
    hv_nn_adam *a = NULL;
    net_init(&n);
    if (be) HV_CHECK_OK(hv_nn_params_bind(n.ps, be));
    const double lr = 1e-2, eps = 1e-8;
    HV_CHECK_OK(hv_nn_adam_create(n.ps, lr, 0.5, 0.999, eps, &a));
    if (!a) goto done;
    hv_nn_param *p;
    float *m, *v;
    size_t np = hv__nn_adam_state(a, 0, &p, &m, &v);
    HV_REQUIRE_V(np >= 2 && np <= 9, "%zu parameters under Adam", np);
    float w0[9][64], g[9][64];
    for (size_t i = 0; i < np; i++) {
        hv__nn_adam_state(a, i, &p, &m, &v);
        HV_REQUIRE_V(p->numel <= 64, "parameter %s too big for the test", p->name);
        HV_CHECK_OK(hv_nn_param_get(p, w0[i], (size_t)p->numel));
        for (int64_t k = 0; k < p->numel; k++) g[i][k] = (float)((k % 2 ? -1 : 1) * (k + 1) / 8.0);
        HV_CHECK_OK(hv__nn_param_copy_in(p, p->grad, g[i], p->numel));
    }
    fake_dev *fd = be ? fake_device_state(be) : NULL;
    uint64_t s0 = fd ? fd->n_sync : 0, w0n = fd ? fd->n_check_wait : 0;
    HV_CHECK_OK(hv_nn_adam_step(a));
    if (fd)
        HV_CHECK(fd->n_sync - s0 == 1 && fd->n_check_wait - w0n == 1,
                 "one Adam step of %zu parameters: %llu synchronisations (%llu check waits), not 1",
                 np, (unsigned long long)(fd->n_sync - s0), (unsigned long long)(fd->n_check_wait - w0n));
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        float w1[64];
        hv__nn_adam_state(a, i, &p, &m, &v);
        HV_CHECK_OK(hv_nn_param_get(p, w1, (size_t)p->numel));
        for (int64_t k = 0; k < p->numel; k++) {
            double want = w0[i][k] - lr * g[i][k] / (fabs(g[i][k]) + eps);
            worst = fmax(worst, fabs(w1[k] - want));
        }
    }
    HV_CHECK(worst < 1e-6, "%s: first Adam step %.3g from lr g / (|g| + eps)", where, worst);

    /* a NaN in the last parameter's gradient: nothing changes */
    hv__nn_adam_state(a, np - 1, &p, &m, &v);
    g[np - 1][p->numel - 1] = NAN;
    HV_CHECK_OK(hv__nn_param_copy_in(p, p->grad, g[np - 1], p->numel));
    float before[9][3][64];
    for (size_t i = 0; i < np; i++) {
        hv__nn_adam_state(a, i, &p, &m, &v);
        HV_CHECK_OK(hv_nn_param_get(p, before[i][0], (size_t)p->numel));
        HV_CHECK_OK(hv__nn_param_copy_out(p, before[i][1], m, p->numel));
        HV_CHECK_OK(hv__nn_param_copy_out(p, before[i][2], v, p->numel));
    }
    const char *last = p->name;
    s0 = fd ? fd->n_sync : 0;
    hv_status st = hv_nn_adam_step(a);
    HV_CHECK(st == HV_ERR_NUMERIC && strstr(hv_error_detail(), last),
             "%s: NaN in the last gradient: %s (%s), should name %s", where, hv_status_name(st),
             hv_error_detail(), last);
    if (fd)
        HV_CHECK(fd->n_sync - s0 == 1, "the refused step synchronised %llu times, not 1",
                 (unsigned long long)(fd->n_sync - s0));
    HV_CHECK(hv_nn_adam_steps(a) == 1, "%s: the refused step counted (%lld)", where,
             (long long)hv_nn_adam_steps(a));
    for (size_t i = 0; i < np; i++) {
        float after[3][64];
        hv__nn_adam_state(a, i, &p, &m, &v);
        HV_CHECK_OK(hv_nn_param_get(p, after[0], (size_t)p->numel));
        HV_CHECK_OK(hv__nn_param_copy_out(p, after[1], m, p->numel));
        HV_CHECK_OK(hv__nn_param_copy_out(p, after[2], v, p->numel));
        size_t bytes = (size_t)p->numel * sizeof(float);
        HV_CHECK(!memcmp(after[0], before[i][0], bytes) && !memcmp(after[1], before[i][1], bytes) &&
                     !memcmp(after[2], before[i][2], bytes),
                 "%s: a NaN in %s's gradient changed %s (weights or moments)", where, last, p->name);
    }
done:
    hv_nn_adam_free(a);
    hv_nn_params_free(n.ps);
}

static void test_adam_one_check(void)
{
    hv_nn_backend *dev = NULL;
    HV_CHECK_OK(fake_device_create(&dev, NULL, 0));
    if (dev) adam_check(dev);
    adam_check(NULL);
    hv_nn_backend_free(dev);
}

int main(void)
{
    test_mixed();
    test_refusals();
    test_bound_training();
    test_adam_one_check();
    return hv_test_done();
}
