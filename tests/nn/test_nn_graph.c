/*
 * test_nn_graph.c: graph building, planning and training behaviour of the NN
 * engine: sticky build errors, lifetime-planned memory, allocation-free
 * execution, folded constants, Adam against a hand computation, and two toy
 * tasks that must be learnt (an MLP classifying points inside a circle, and a
 * small conv net with batch norm learning a fixed 3x3 filter), each with a
 * loss bound measured on this machine (margins beside the bounds); frozen
 * parameters (hv_nn_graph_set_frozen) and a backward stopped at a tensor
 * (hv_nn_graph_backward_to) against hand computations; two training graphs
 * in one arena (hv_nn_graphs_share) each giving its hand values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/nn.h"
#include "hv_test.h"

static void test_sticky_errors(void)
{
    hv_nn_graph *g = NULL;
    HV_CHECK_OK(hv_nn_graph_create(&g));
    const int64_t xs[4] = {1, 3, 8, 8}, ws[4] = {4, 2, 3, 3};
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, xs);
    hv_nn_tensor *w = hv_nn_input(g, "w", 4, ws);
    hv_nn_tensor *y = hv_nn_conv2d(g, x, w, NULL, 1, 1, 1); /* 3 vs 2 channels */
    HV_CHECK(y == NULL, "conv2d with mismatched channels must fail");
    HV_CHECK(hv_nn_graph_status(g) == HV_ERR_ARG, "status %s", hv_status_name(hv_nn_graph_status(g)));
    HV_CHECK(hv_nn_elu(g, x, 1.0f) == NULL, "ops after an error return NULL");
    hv_nn_backend *be = NULL;
    HV_CHECK_OK(hv_nn_backend_create_ref(&be));
    HV_CHECK(hv_nn_graph_plan(g, be, 0) == HV_ERR_ARG, "plan of a failed graph fails");
    hv_nn_graph_free(g);
    hv_nn_backend_free(be);
}

/* A chain of 12 activations on a 1M-element tensor: an inference plan keeps
 * only the input, the output and two live intermediates. */
static void test_memory_plan(void)
{
    hv_nn_graph *g = NULL, *gt = NULL;
    hv_nn_backend *be = NULL;
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    const int64_t xs[4] = {1, 4, 512, 512};
    const size_t bytes = 4u * 512u * 512u * sizeof(float);
    for (int pass = 0; pass < 2; pass++) {
        hv_nn_graph **gp = pass ? &gt : &g;
        HV_CHECK_OK(hv_nn_graph_create(gp));
        hv_nn_tensor *x = hv_nn_input(*gp, "x", 4, xs);
        if (pass) hv_nn_set_requires_grad(x);
        hv_nn_tensor *y = x;
        for (int i = 0; i < 12; i++) y = i % 2 ? hv_nn_elu(*gp, y, 1.0f) : hv_nn_scale(*gp, y, 0.9f, 0.1f);
        hv_nn_set_output(y);
        HV_CHECK_OK(hv_nn_graph_plan(*gp, be, pass ? HV_NN_PLAN_TRAIN : 0));
    }
    size_t bi = hv_nn_graph_bytes(g), bt = hv_nn_graph_bytes(gt);
    printf("# plan: inference %.1f MiB, training %.1f MiB, one tensor %.1f MiB\n", bi / 1048576.0,
           bt / 1048576.0, bytes / 1048576.0);
    HV_CHECK(bi <= 4 * bytes + 65536, "inference plan holds %zu bytes (> 4 tensors)", bi);
    HV_CHECK(bt >= 24 * bytes, "training plan keeps activations and gradients (%zu bytes)", bt);
    hv_nn_graph_free(g);
    hv_nn_graph_free(gt);
    hv_nn_backend_free(be);
}

/* spectral norm folded in an inference graph: recomputed after touch */
static void test_folding_and_no_alloc(void)
{
    hv_nn_params *ps = NULL;
    hv_nn_graph *g = NULL;
    hv_nn_backend *be = NULL;
    hv_rng r;
    hv_rng_seed(&r, 5, 0);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    hv_nn_param *w, *b, *u, *v;
    const int64_t ws[4] = {8, 2, 3, 3}, bs = 8, vs = 18, xs[4] = {2, 2, 16, 16};
    HV_CHECK_OK(hv_nn_params_add(ps, "w", 4, ws, 1, &w));
    HV_CHECK_OK(hv_nn_params_add(ps, "b", 1, &bs, 1, &b));
    HV_CHECK_OK(hv_nn_params_add(ps, "u", 1, &bs, 0, &u));
    HV_CHECK_OK(hv_nn_params_add(ps, "v", 1, &vs, 0, &v));
    hv_nn_init_torch_default(w, b, &r);
    hv_nn_init_sn_vectors(u, v, &r);
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, xs);
    hv_nn_tensor *wn = hv_nn_spectral_norm(g, hv_nn_param_tensor(g, w), hv_nn_param_tensor(g, u),
                                           hv_nn_param_tensor(g, v));
    hv_nn_tensor *y = hv_nn_elu(g, hv_nn_conv2d(g, x, wn, hv_nn_param_tensor(g, b), 1, 1, 1), 1.0f);
    hv_nn_set_output(wn);
    hv_nn_set_output(y);
    HV_CHECK_OK(hv_nn_graph_plan(g, be, 0));
    float xin[2 * 2 * 256], y1[2 * 8 * 256], y2[2 * 8 * 256], wn1[144];
    for (size_t i = 0; i < sizeof xin / sizeof xin[0]; i++) xin[i] = (float)hv_rng_normal(&r);
    HV_CHECK_OK(hv_nn_tensor_set(x, xin, sizeof xin / sizeof xin[0]));
    HV_CHECK_OK(hv_nn_graph_forward(g));
    uint64_t a0 = hv_nn_alloc_count();
    HV_CHECK_OK(hv_nn_graph_forward(g));
    HV_CHECK(hv_nn_alloc_count() == a0, "inference forward allocated %llu times",
             (unsigned long long)(hv_nn_alloc_count() - a0));
    HV_CHECK_OK(hv_nn_tensor_get(y, y1, sizeof y1 / sizeof y1[0]));
    HV_CHECK_OK(hv_nn_tensor_get(wn, wn1, 144));
    /* sigma = u^T W v: doubling W leaves W/sigma unchanged, so use 1 + W */
    float *wd = hv_nn_param_data(w);
    for (int i = 0; i < 144; i++) wd[i] += 1.0f;
    hv_nn_params_touch(ps);
    HV_CHECK_OK(hv_nn_graph_forward(g));
    HV_CHECK_OK(hv_nn_tensor_get(y, y2, sizeof y2 / sizeof y2[0]));
    double d = 0;
    for (size_t i = 0; i < sizeof y1 / sizeof y1[0]; i++) d += fabs(y1[i] - y2[i]);
    HV_CHECK(d > 1.0, "folded spectral norm not recomputed after a parameter change (%g)", d);
    /* the folded weight equals W / (u^T W v) */
    float wn2[144];
    HV_CHECK_OK(hv_nn_tensor_get(wn, wn2, 144));
    double sigma = 0;
    for (int i = 0; i < 8; i++) {
        double s = 0;
        for (int j = 0; j < 18; j++) s += wd[i * 18 + j] * hv_nn_param_data(v)[j];
        sigma += hv_nn_param_data(u)[i] * s;
    }
    HV_CHECK_CLOSE(wn2[7], wd[7] / sigma, 1e-5, "W / sigma");
    hv_nn_graph_free(g);
    hv_nn_params_free(ps);
    hv_nn_backend_free(be);
}

static void test_adam(void)
{
    hv_nn_params *ps = NULL;
    hv_nn_adam *a = NULL;
    hv_nn_param *p;
    const int64_t one = 1;
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_nn_params_add(ps, "p", 1, &one, 1, &p));
    hv_nn_init_const(p, 1.0);
    HV_CHECK_OK(hv_nn_adam_create(ps, 0.1, 0.5, 0.999, 1e-8, &a));
    /* torch.optim.Adam by hand: g = 0.5, 2.0 */
    double m = 0, v = 0, w = 1.0;
    const double gs[2] = {0.5, 2.0};
    for (int t = 1; t <= 2; t++) {
        hv_nn_param_grad(p)[0] = (float)gs[t - 1];
        HV_CHECK_OK(hv_nn_adam_step(a));
        m = 0.5 * m + 0.5 * gs[t - 1];
        v = 0.999 * v + 0.001 * gs[t - 1] * gs[t - 1];
        double mh = m / (1 - pow(0.5, t)), vh = v / (1 - pow(0.999, t));
        w -= 0.1 * mh / (sqrt(vh) + 1e-8);
        HV_CHECK_CLOSE(hv_nn_param_data(p)[0], w, 1e-5, "adam step (float32 state)");
    }
    hv_nn_adam_free(a);
    hv_nn_params_free(ps);
}

/* MLP 2 -> 16 -> 1 on 256 points, inside/outside a circle of radius 0.6. */
static void test_toy_mlp(void)
{
    hv_nn_params *ps = NULL;
    hv_nn_graph *g = NULL;
    hv_nn_backend *be = NULL;
    hv_nn_adam *adam = NULL;
    hv_rng r;
    hv_rng_seed(&r, 77, 0);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    hv_nn_param *w1, *b1, *w2, *b2;
    const int64_t s1[2] = {16, 2}, s2[2] = {1, 16}, n16 = 16, n1 = 1;
    HV_CHECK_OK(hv_nn_params_add(ps, "w1", 2, s1, 1, &w1));
    HV_CHECK_OK(hv_nn_params_add(ps, "b1", 1, &n16, 1, &b1));
    HV_CHECK_OK(hv_nn_params_add(ps, "w2", 2, s2, 1, &w2));
    HV_CHECK_OK(hv_nn_params_add(ps, "b2", 1, &n1, 1, &b2));
    hv_nn_init_torch_default(w1, b1, &r);
    hv_nn_init_torch_default(w2, b2, &r);
    HV_CHECK_OK(hv_nn_graph_create(&g));
    const int64_t xs[2] = {256, 2}, ys[2] = {256, 1};
    hv_nn_tensor *x = hv_nn_input(g, "x", 2, xs), *t = hv_nn_input(g, "t", 2, ys);
    hv_nn_tensor *h = hv_nn_relu(g, hv_nn_linear(g, x, hv_nn_param_tensor(g, w1), hv_nn_param_tensor(g, b1)));
    hv_nn_tensor *o = hv_nn_linear(g, h, hv_nn_param_tensor(g, w2), hv_nn_param_tensor(g, b2));
    hv_nn_tensor *loss = hv_nn_bce_logits(g, o, t);
    HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
    float xd[512], td[256];
    for (int i = 0; i < 256; i++) {
        xd[2 * i] = (float)hv_rng_range(&r, -1, 1);
        xd[2 * i + 1] = (float)hv_rng_range(&r, -1, 1);
        td[i] = xd[2 * i] * xd[2 * i] + xd[2 * i + 1] * xd[2 * i + 1] < 0.36f ? 1.0f : 0.0f;
    }
    HV_CHECK_OK(hv_nn_tensor_set(x, xd, 512));
    HV_CHECK_OK(hv_nn_tensor_set(t, td, 256));
    HV_CHECK_OK(hv_nn_adam_create(ps, 2e-2, 0.5, 0.999, 1e-8, &adam));
    float l0 = 0, l = 0;
    for (int it = 0; it < 600; it++) {
        hv_nn_params_zero_grad(ps);
        HV_CHECK_OK(hv_nn_graph_forward(g));
        HV_CHECK_OK(hv_nn_graph_backward(g, loss));
        HV_CHECK_OK(hv_nn_adam_step(adam));
        hv_nn_tensor_get(loss, &l, 1);
        if (it == 0) l0 = l;
    }
    printf("# toy MLP: BCE %.4f -> %.4f after 600 Adam steps\n", l0, l);
    /* measured 0.83 -> 0.024; bound 0.15 (6x) */
    HV_CHECK(l < 0.15f, "toy MLP did not learn: BCE %.4f", l);
    hv_nn_adam_free(adam);
    hv_nn_graph_free(g);
    hv_nn_params_free(ps);
    hv_nn_backend_free(be);
}

/* conv(1->4) -> BN -> LeakyReLU -> conv(4->1), learning a fixed 3x3 filter
 * applied to random images (MSE); exercises oneDNN convolution backward. */
static void test_toy_conv(void)
{
    hv_nn_params *ps = NULL;
    hv_nn_graph *g = NULL, *gf = NULL;
    hv_nn_backend *be = NULL;
    hv_nn_adam *adam = NULL;
    hv_rng r;
    hv_rng_seed(&r, 78, 0);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    hv_nn_param *w1, *b1, *gm, *bt, *rm, *rv, *w2, *b2, *wf;
    const int64_t s1[4] = {4, 1, 3, 3}, s2[4] = {1, 4, 3, 3}, n4 = 4, n1 = 1;
    HV_CHECK_OK(hv_nn_params_add(ps, "w1", 4, s1, 1, &w1));
    HV_CHECK_OK(hv_nn_params_add(ps, "b1", 1, &n4, 1, &b1));
    HV_CHECK_OK(hv_nn_params_add(ps, "bn.weight", 1, &n4, 1, &gm));
    HV_CHECK_OK(hv_nn_params_add(ps, "bn.bias", 1, &n4, 1, &bt));
    HV_CHECK_OK(hv_nn_params_add(ps, "bn.running_mean", 1, &n4, 0, &rm));
    HV_CHECK_OK(hv_nn_params_add(ps, "bn.running_var", 1, &n4, 0, &rv));
    HV_CHECK_OK(hv_nn_params_add(ps, "w2", 4, s2, 1, &w2));
    HV_CHECK_OK(hv_nn_params_add(ps, "b2", 1, &n1, 1, &b2));
    HV_CHECK_OK(hv_nn_params_add(ps, "filter", 4, (const int64_t[]){1, 1, 3, 3}, 0, &wf));
    hv_nn_init_normal(w1, &r, 0, 0.02 * 10);
    hv_nn_init_const(b1, 0);
    hv_nn_init_normal(gm, &r, 1, 0.02);
    hv_nn_init_const(bt, 0);
    hv_nn_init_const(rv, 1);
    hv_nn_init_normal(w2, &r, 0, 0.2);
    hv_nn_init_const(b2, 0);
    const float filt[9] = {0.1f, 0.2f, 0.1f, 0.0f, 0.5f, -0.3f, -0.1f, 0.0f, 0.2f};
    memcpy(hv_nn_param_data(wf), filt, sizeof filt);
    hv_nn_params_touch(ps);
    const int64_t xs[4] = {8, 1, 16, 16};
    /* target graph (inference) and model graph (training) */
    HV_CHECK_OK(hv_nn_graph_create(&gf));
    hv_nn_tensor *xf = hv_nn_input(gf, "x", 4, xs);
    hv_nn_tensor *yf = hv_nn_conv2d(gf, xf, hv_nn_param_tensor(gf, wf), NULL, 1, 1, 1);
    hv_nn_set_output(yf);
    HV_CHECK_OK(hv_nn_graph_plan(gf, be, 0));
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, xs), *t = hv_nn_input(g, "t", 4, xs);
    hv_nn_tensor *h = hv_nn_conv2d(g, x, hv_nn_param_tensor(g, w1), hv_nn_param_tensor(g, b1), 1, 1, 1);
    h = hv_nn_batch_norm(g, h, hv_nn_param_tensor(g, gm), hv_nn_param_tensor(g, bt),
                         hv_nn_param_tensor(g, rm), hv_nn_param_tensor(g, rv), 0.1f, 1e-5f);
    h = hv_nn_leaky_relu(g, h, 0.2f);
    hv_nn_tensor *o = hv_nn_conv2d(g, h, hv_nn_param_tensor(g, w2), hv_nn_param_tensor(g, b2), 1, 1, 1);
    hv_nn_tensor *loss = hv_nn_mse(g, o, t);
    HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
    HV_CHECK_OK(hv_nn_adam_create(ps, 1e-2, 0.5, 0.999, 1e-8, &adam));
    float *xd = malloc(8 * 256 * sizeof(float)), *td = malloc(8 * 256 * sizeof(float));
    float l0 = 0, l = 0;
    for (int it = 0; it < 400; it++) {
        for (int i = 0; i < 8 * 256; i++) xd[i] = (float)hv_rng_normal(&r);
        HV_CHECK_OK(hv_nn_tensor_set(xf, xd, 8 * 256));
        HV_CHECK_OK(hv_nn_graph_forward(gf));
        HV_CHECK_OK(hv_nn_tensor_get(yf, td, 8 * 256));
        HV_CHECK_OK(hv_nn_tensor_set(x, xd, 8 * 256));
        HV_CHECK_OK(hv_nn_tensor_set(t, td, 8 * 256));
        hv_nn_params_zero_grad(ps);
        HV_CHECK_OK(hv_nn_graph_forward(g));
        HV_CHECK_OK(hv_nn_graph_backward(g, loss));
        HV_CHECK_OK(hv_nn_adam_step(adam));
        hv_nn_tensor_get(loss, &l, 1);
        if (it == 0) l0 = l;
    }
    printf("# toy conv: MSE %.4f -> %.5f after 400 Adam steps\n", l0, l);
    /* measured 0.78 -> 0.0042; bound 0.02 (5x), and 25x below the start */
    HV_CHECK(l < 0.02f && l < l0 / 25, "toy conv net did not learn: MSE %.5f (start %.4f)", l, l0);
    free(xd);
    free(td);
    hv_nn_adam_free(adam);
    hv_nn_graph_free(g);
    hv_nn_graph_free(gf);
    hv_nn_params_free(ps);
    hv_nn_backend_free(be);
}

/* The 1x1 convolution of test_frozen and test_backward_to: parameters w = 2
 * and b = 0.5 on backend bi (0 ref, 1 cpu), a new graph with inputs x and
 * r (1 x 1 x 2 x 2, x with its gradient); conv1x1_loss adds the loss
 * sum(conv1x1(in) * r); conv1x1_feed plans the graph for training and sets
 * x = C1_X, r = C1_R. */
static const float C1_X[4] = {1, -2, 3, 0.5f}, C1_R[4] = {0.25f, 1, -1, 2};

typedef struct {
    hv_nn_params *ps;
    hv_nn_backend *be;
    hv_nn_graph *g;
    hv_nn_param *w, *b;
    hv_nn_tensor *x, *r;
} conv1x1_case;

static void conv1x1_open(conv1x1_case *c, int bi)
{
    const int64_t ws[4] = {1, 1, 1, 1}, one = 1, xs[4] = {1, 1, 2, 2};
    memset(c, 0, sizeof *c);
    HV_CHECK_OK(hv_nn_params_create(&c->ps));
    HV_CHECK_OK(bi ? hv_nn_backend_create_cpu(&c->be) : hv_nn_backend_create_ref(&c->be));
    HV_CHECK_OK(hv_nn_params_add(c->ps, "w", 4, ws, 1, &c->w));
    HV_CHECK_OK(hv_nn_params_add(c->ps, "b", 1, &one, 1, &c->b));
    hv_nn_param_data(c->w)[0] = 2.0f;
    hv_nn_param_data(c->b)[0] = 0.5f;
    HV_CHECK_OK(hv_nn_graph_create(&c->g));
    c->x = hv_nn_input(c->g, "x", 4, xs);
    c->r = hv_nn_input(c->g, "r", 4, xs);
    hv_nn_set_requires_grad(c->x);
}

/* loss = sum(conv1x1(in; w, b) * r) on c's graph. */
static hv_nn_tensor *conv1x1_loss(conv1x1_case *c, hv_nn_tensor *in)
{
    hv_nn_tensor *y = hv_nn_conv2d(c->g, in, hv_nn_param_tensor(c->g, c->w),
                                   hv_nn_param_tensor(c->g, c->b), 1, 0, 1);
    return hv_nn_sum(c->g, hv_nn_mul(c->g, y, c->r));
}

static void conv1x1_feed(conv1x1_case *c)
{
    HV_CHECK_OK(hv_nn_graph_plan(c->g, c->be, HV_NN_PLAN_TRAIN));
    HV_CHECK_OK(hv_nn_tensor_set(c->x, C1_X, 4));
    HV_CHECK_OK(hv_nn_tensor_set(c->r, C1_R, 4));
}

static void conv1x1_close(conv1x1_case *c)
{
    hv_nn_graph_free(c->g);
    hv_nn_backend_free(c->be);
    hv_nn_params_free(c->ps);
}

/* loss = sum(conv1x1(x; w = 2, b = 0.5) * R): by hand dL/dx = w R = 2 R,
 * dL/dw = sum(x R), dL/db = sum(R). Frozen, the parameters' gradients keep
 * their sentinels (7, -3) and dx is still 2 R; unfrozen again, they
 * accumulate onto the sentinels. Both backends (the cpu one runs oneDNN). */
static void test_frozen(void)
{
    for (int bi = 0; bi < 2; bi++) {
        conv1x1_case c;
        conv1x1_open(&c, bi);
        hv_nn_tensor *loss = conv1x1_loss(&c, c.x);
        conv1x1_feed(&c);
        hv_nn_param_grad(c.w)[0] = 7.0f;
        hv_nn_param_grad(c.b)[0] = -3.0f;
        float dx[4];
        hv_nn_graph_set_frozen(c.g, 1);
        HV_CHECK_OK(hv_nn_graph_forward(c.g));
        HV_CHECK_OK(hv_nn_graph_backward(c.g, loss));
        HV_CHECK_OK(hv_nn_tensor_get_grad(c.x, dx, 4));
        for (int i = 0; i < 4; i++) HV_CHECK_CLOSE(dx[i], 2.0f * C1_R[i], 1e-6, "frozen: dx = w R");
        HV_CHECK(hv_nn_param_grad(c.w)[0] == 7.0f && hv_nn_param_grad(c.b)[0] == -3.0f,
                 "frozen backward changed parameter gradients (%g, %g)",
                 hv_nn_param_grad(c.w)[0], hv_nn_param_grad(c.b)[0]);
        hv_nn_graph_set_frozen(c.g, 0);
        HV_CHECK_OK(hv_nn_graph_backward(c.g, loss));
        /* sum(x R) = 0.25 - 2 - 3 + 1 = -3.75; sum(R) = 2.25 */
        HV_CHECK_CLOSE(hv_nn_param_grad(c.w)[0], 7.0f - 3.75f, 1e-6, "unfrozen: dw accumulates");
        HV_CHECK_CLOSE(hv_nn_param_grad(c.b)[0], -3.0f + 2.25f, 1e-6, "unfrozen: db accumulates");
        HV_CHECK_OK(hv_nn_tensor_get_grad(c.x, dx, 4));
        for (int i = 0; i < 4; i++) HV_CHECK_CLOSE(dx[i], 2.0f * C1_R[i], 1e-6, "unfrozen: dx = w R");
        conv1x1_close(&c);
    }
}

/* hv_nn_graph_backward_to: x -> a = 3x -> y = conv1x1(a; w = 2, b) ->
 * loss = sum(y R). By hand: dL/da = 2R, dL/dx = 6R, dL/dw = sum(a R) =
 * 3 sum(x R) = -11.25. Stopped at a: a's gradient complete, x's left 0, w's
 * (used after a) still accumulated; a stop recorded after the loss refused. */
static void test_backward_to(void)
{
    for (int bi = 0; bi < 2; bi++) {
        conv1x1_case c;
        conv1x1_open(&c, bi);
        hv_nn_tensor *a = hv_nn_scale(c.g, c.x, 3.0f, 0.0f);
        hv_nn_tensor *loss = conv1x1_loss(&c, a);
        conv1x1_feed(&c);
        HV_CHECK_OK(hv_nn_graph_forward(c.g));
        float da[4], dx[4];
        hv_nn_params_zero_grad(c.ps);
        HV_CHECK_OK(hv_nn_graph_backward_to(c.g, loss, a));
        HV_CHECK_OK(hv_nn_tensor_get_grad(a, da, 4));
        HV_CHECK_OK(hv_nn_tensor_get_grad(c.x, dx, 4));
        for (int i = 0; i < 4; i++) {
            HV_CHECK_CLOSE(da[i], 2.0f * C1_R[i], 1e-6, "stopped at a: da = w R");
            HV_CHECK(dx[i] == 0.0f, "stopped at a: dx[%d] = %g, not left 0", i, dx[i]);
        }
        HV_CHECK_CLOSE(hv_nn_param_grad(c.w)[0], -11.25f, 1e-5, "stopped at a: dw = sum(a R)");
        hv_nn_params_zero_grad(c.ps);
        HV_CHECK_OK(hv_nn_graph_backward(c.g, loss));
        HV_CHECK_OK(hv_nn_tensor_get_grad(c.x, dx, 4));
        for (int i = 0; i < 4; i++) HV_CHECK_CLOSE(dx[i], 6.0f * C1_R[i], 1e-6, "full: dx = 3 w R");
        HV_CHECK(hv_nn_graph_backward_to(c.g, a, loss) == HV_ERR_ARG,
                 "a stop recorded after the loss is refused");
        hv_error_clear();
        conv1x1_close(&c);
    }
}

/* Gradients that several readers add into, and ones a single reader writes
 * (the cpu backend writes those directly): x feeds three 1x1 convolutions
 * and a LeakyReLU(0.1); h = leaky(x) feeds one convolution, e = conv(x) one
 * LeakyReLU. loss = sum((conv(x; 2) + conv(x; 3) + conv(h; -1) +
 * leaky(conv(x; 4))) * R). By hand, with l'(x) = 1 for x > 0 else 0.1:
 * dL/dx = 2R + 3R - R l'(x) + 4 R l'(x) = 5R + 3R l'(x). Both backends,
 * two backward passes (the second must not add onto the first). */
static void test_grad_accumulation(void)
{
    for (int bi = 0; bi < 2; bi++) {
        hv_nn_params *ps = NULL;
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        hv_nn_param *w[4];
        const float wv[4] = {2, 3, -1, 4};
        const int64_t ws[4] = {1, 1, 1, 1}, xs[4] = {1, 1, 2, 2};
        HV_CHECK_OK(hv_nn_params_create(&ps));
        HV_CHECK_OK(bi ? hv_nn_backend_create_cpu(&be) : hv_nn_backend_create_ref(&be));
        for (int k = 0; k < 4; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "w%d", k);
            HV_CHECK_OK(hv_nn_params_add(ps, nm, 4, ws, 1, &w[k]));
            hv_nn_param_data(w[k])[0] = wv[k];
        }
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_nn_tensor *x = hv_nn_input(g, "x", 4, xs), *r = hv_nn_input(g, "r", 4, xs);
        hv_nn_set_requires_grad(x);
        hv_nn_tensor *wt[4];
        for (int k = 0; k < 4; k++) wt[k] = hv_nn_param_tensor(g, w[k]);
        hv_nn_tensor *a = hv_nn_conv2d(g, x, wt[0], NULL, 1, 0, 1);
        hv_nn_tensor *b = hv_nn_conv2d(g, x, wt[1], NULL, 1, 0, 1);
        hv_nn_tensor *c = hv_nn_conv2d(g, hv_nn_leaky_relu(g, x, 0.1f), wt[2], NULL, 1, 0, 1);
        hv_nn_tensor *d = hv_nn_leaky_relu(g, hv_nn_conv2d(g, x, wt[3], NULL, 1, 0, 1), 0.1f);
        hv_nn_tensor *y = hv_nn_add(g, hv_nn_add(g, a, b), hv_nn_add(g, c, d));
        hv_nn_tensor *loss = hv_nn_sum(g, hv_nn_mul(g, y, r));
        HV_CHECK_OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN));
        const float xv[4] = {1, -2, 3, -0.5f}, rv[4] = {0.25f, 1, -1, 2};
        HV_CHECK_OK(hv_nn_tensor_set(x, xv, 4));
        HV_CHECK_OK(hv_nn_tensor_set(r, rv, 4));
        for (int pass = 0; pass < 2; pass++) {
            float dx[4];
            HV_CHECK_OK(hv_nn_graph_forward(g));
            HV_CHECK_OK(hv_nn_graph_backward(g, loss));
            HV_CHECK_OK(hv_nn_tensor_get_grad(x, dx, 4));
            for (int i = 0; i < 4; i++) {
                float lp = xv[i] > 0 ? 1.0f : 0.1f;
                float want = 5.0f * rv[i] + 3.0f * rv[i] * lp;
                HV_CHECK(fabsf(dx[i] - want) <= 1e-6f, "%s backend, pass %d: dx[%d] = %g, by hand %g",
                         bi ? "cpu" : "ref", pass, i, dx[i], want);
            }
        }
        hv_nn_graph_free(g);
        hv_nn_backend_free(be);
        hv_nn_params_free(ps);
    }
}

/* hv_nn_graphs_share: graph A = test_frozen's loss on 2 x 2 (sum((2x + 0.5)
 * R) = -6.375 by hand, dL/dx = 2R) joins, in a second call, the memory of
 * graph B, the same convolution on a 4 x 4 input of ones with r = 0.5 (loss
 * 16 * 2.5 * 0.5 = 20, dL/dx = 1): A, then B, then A again each give their
 * hand values when fed before running; B's run overwrote A's input (the
 * memory is really one); an inference graph, a graph named twice and a
 * graph larger than the group's are refused. Both backends. */
static void test_shared_arena(void)
{
    for (int bi = 0; bi < 2; bi++) {
        conv1x1_case c;
        conv1x1_open(&c, bi);
        hv_nn_tensor *la = conv1x1_loss(&c, c.x);
        conv1x1_feed(&c);
        hv_nn_graph *gb = NULL, *gi = NULL;
        const int64_t bs[4] = {1, 1, 4, 4};
        HV_CHECK_OK(hv_nn_graph_create(&gb));
        hv_nn_tensor *xb = hv_nn_input(gb, "xb", 4, bs), *rb = hv_nn_input(gb, "rb", 4, bs);
        hv_nn_set_requires_grad(xb);
        hv_nn_tensor *yb = hv_nn_conv2d(gb, xb, hv_nn_param_tensor(gb, c.w),
                                        hv_nn_param_tensor(gb, c.b), 1, 0, 1);
        hv_nn_tensor *lb = hv_nn_sum(gb, hv_nn_mul(gb, yb, rb));
        HV_CHECK_OK(hv_nn_graph_plan(gb, c.be, HV_NN_PLAN_TRAIN));
        HV_CHECK_OK(hv_nn_graph_create(&gi));
        hv_nn_tensor *xi = hv_nn_input(gi, "xi", 4, bs);
        hv_nn_set_output(hv_nn_scale(gi, xi, 2.0f, 0.0f));
        HV_CHECK_OK(hv_nn_graph_plan(gi, c.be, 0));
        hv_nn_graph *bad1[2] = {gb, gi}, *bad2[2] = {gb, gb}, *bad3[2] = {c.g, gb},
                    *ok[2] = {gb, c.g};
        HV_CHECK(hv_nn_graphs_share(bad1, 2) == HV_ERR_ARG, "an inference graph is refused");
        HV_CHECK(hv_nn_graphs_share(bad2, 2) == HV_ERR_ARG, "a graph named twice is refused");
        HV_CHECK(hv_nn_graphs_share(bad3, 2) == HV_ERR_ARG &&
                     strstr(hv_error_detail(), "largest first"),
                 "a larger graph cannot join a smaller one's memory: %s", hv_error_detail());
        hv_error_clear();
        /* B alone becomes a group, A joins it in a second call */
        HV_CHECK_OK(hv_nn_graphs_share(ok, 1));
        HV_CHECK_OK(hv_nn_graphs_share(ok, 2));
        HV_CHECK(hv_nn_graphs_share(ok + 1, 1) == HV_OK, "A leads nothing new: no-op join");
        float ones[16], halves[16], d[16], l;
        for (int i = 0; i < 16; i++) ones[i] = 1.0f, halves[i] = 0.5f;
        for (int pass = 0; pass < 3; pass++) {
            if (pass == 1) {
                HV_CHECK_OK(hv_nn_tensor_set(xb, ones, 16));
                HV_CHECK_OK(hv_nn_tensor_set(rb, halves, 16));
                HV_CHECK_OK(hv_nn_graph_forward(gb));
                HV_CHECK_OK(hv_nn_graph_backward(gb, lb));
                HV_CHECK_OK(hv_nn_tensor_get(lb, &l, 1));
                HV_CHECK_CLOSE(l, 20.0f, 1e-5, "shared: B's loss");
                HV_CHECK_OK(hv_nn_tensor_get_grad(xb, d, 16));
                for (int i = 0; i < 16; i++) HV_CHECK_CLOSE(d[i], 1.0f, 1e-6, "shared: B's dx");
                HV_CHECK_OK(hv_nn_tensor_get(c.x, d, 4));
                HV_CHECK(memcmp(d, C1_X, sizeof C1_X) != 0,
                         "B's run left A's input as it was: the arena is not shared");
                continue;
            }
            HV_CHECK_OK(hv_nn_tensor_set(c.x, C1_X, 4));
            HV_CHECK_OK(hv_nn_tensor_set(c.r, C1_R, 4));
            HV_CHECK_OK(hv_nn_graph_forward(c.g));
            HV_CHECK_OK(hv_nn_graph_backward(c.g, la));
            HV_CHECK_OK(hv_nn_tensor_get(la, &l, 1));
            HV_CHECK_CLOSE(l, -6.375f, 1e-5, "shared: A's loss");
            HV_CHECK_OK(hv_nn_tensor_get_grad(c.x, d, 4));
            for (int i = 0; i < 4; i++)
                HV_CHECK_CLOSE(d[i], 2.0f * C1_R[i], 1e-6, "shared: A's dx = w R");
        }
        hv_nn_graph_free(gi);
        hv_nn_graph_free(gb);
        conv1x1_close(&c);
    }
}

int main(void)
{
    test_sticky_errors();
    test_memory_plan();
    test_folding_and_no_alloc();
    test_adam();
    test_toy_mlp();
    test_toy_conv();
    test_frozen();
    test_backward_to();
    test_grad_accumulation();
    test_shared_arena();
    return hv_test_done();
}
