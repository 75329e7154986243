/*
 * test_model_aotgan.c: AOT-GAN's generator (src/model/aotgan.c).
 *
 *  - parameter names and counts: the state_dict keys of the PyTorch module
 *    in tests/model/fixtures/aotgan_w4.bin (made by
 *    scripts/make_aotgan_fixture.py) are exactly our parameters, with the
 *    same shapes; trainable counts by hand: width 4, one image channel, 2
 *    blocks: encoder 396 + 520 + 2064, per block 4 x 580 + 2320 + 2320 =
 *    6960, decoder 1160 + 292 + 37, total 18,389; at the paper's width 64,
 *    3 image channels and 8 blocks: encoder 12,608 + 131,200 + 524,544,
 *    per block 4 x 147,520 + 2 x 590,080 = 1,770,240, decoder 295,040 +
 *    73,792 + 1,731, total 15,200,835.
 *  - PyTorch equivalence on the fixture (2 x 1 x 36 x 40, rates 1, 2, 4,
 *    8): the output, and the gradients of sum(out * R) with respect to x,
 *    the first encoder weight and the last gate weight, on the ref and cpu
 *    backends, relative L2 error <= 1e-4.
 *  - refusals: H not a multiple of 4, a rate whose reflection padding does
 *    not fit H/4 (the engine names the shapes), a missing parameter.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"
#include "hv_test.h"
#include "nn/nn_fixture.h"

static const int RATES[4] = {1, 2, 4, 8};

/* relative L2 error (NaN-safe: infinite) */
static double rel_l2(const float *a, const float *b, int64_t n) { return fx_rel_l2(a, b, n, NULL); }

static void test_counts(void)
{
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 1, 0);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_model_aotgan_params(ps, 1, 4, 2, &rng));
    HV_CHECK(hv_nn_params_numel(ps, 1) == 18389, "width 4: %lld trainable, expected 18389",
             (long long)hv_nn_params_numel(ps, 1));
    hv_nn_params_free(ps);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_model_aotgan_params(ps, 3, 64, 8, &rng));
    HV_CHECK(hv_nn_params_numel(ps, 1) == 15200835, "width 64: %lld trainable, expected 15200835",
             (long long)hv_nn_params_numel(ps, 1));
    hv_nn_params_free(ps);
    HV_CHECK(hv_model_aotgan_params(NULL, 1, 4, 2, &rng) == HV_ERR_ARG, "NULL set accepted");
}

typedef hv_status (*create_fn)(hv_nn_backend **out);

static void run_torch(const fx_file *fx, const char *bname, create_fn create)
{
    hv_nn_params *ps = NULL;
    hv_nn_graph *g = NULL;
    hv_nn_backend *be = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 2, 0);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_model_aotgan_params(ps, 1, 4, 2, &rng));
    /* every parameter is in the fixture with our shape, and every fixture
     * tensor that is not an input or expected value is one of ours */
    int n_state = 0;
    for (int i = 0; i < fx->n; i++) {
        const fx_tensor *t = &fx->t[i];
        if (!strcmp(t->name, "x") || !strcmp(t->name, "mask") || !strcmp(t->name, "out") ||
            !strcmp(t->name, "R") || !strncmp(t->name, "g.", 2))
            continue;
        n_state++;
        hv_nn_param *p = hv_nn_params_find(ps, t->name);
        if (!HV_CHECK(p != NULL, "state_dict key %s is not a parameter of ours", t->name)) continue;
        int64_t sh[HV_NN_MAX_DIMS];
        int nd = hv_nn_param_shape(p, sh);
        int same = nd == t->ndim;
        for (int d = 0; same && d < nd; d++) same = sh[d] == t->shape[d];
        if (HV_CHECK(same, "%s: shape differs from PyTorch's", t->name))
            HV_CHECK_OK(hv_nn_param_set(p, t->data, (size_t)t->n));
    }
    HV_CHECK(n_state == (int)hv_nn_params_size(ps), "fixture has %d state tensors, we have %zu",
             n_state, hv_nn_params_size(ps));

    const fx_tensor *fxx = fx_find(fx, "x"), *fm = fx_find(fx, "mask"), *fy = fx_find(fx, "out");
    const fx_tensor *fr = fx_find(fx, "R"), *fgx = fx_find(fx, "g.x");
    if (!HV_CHECK(fxx && fm && fy && fr && fgx, "fixture lacks x, mask, out, R or g.x")) goto done;
    HV_CHECK_OK(create(&be));
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, fxx->shape);
    hv_nn_tensor *m = hv_nn_input(g, "mask", 4, fm->shape);
    hv_nn_tensor *r = hv_nn_input(g, "R", 4, fr->shape);
    hv_nn_set_requires_grad(x);
    hv_nn_tensor *y = hv_model_aotgan_build(g, ps, RATES, x, m);
    HV_CHECK(y != NULL, "build: %s", hv_error_detail());
    hv_nn_tensor *loss = hv_nn_sum(g, hv_nn_mul(g, y, r));
    hv_nn_set_output(y);
    if (!y || hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN) != HV_OK) {
        HV_CHECK(0, "%s: plan: %s", bname, hv_error_detail());
        goto done;
    }
    HV_CHECK(hv_nn_tensor_numel(y) == fy->n, "%s: output size %lld != %lld", bname,
             (long long)hv_nn_tensor_numel(y), (long long)fy->n);
    if (hv_nn_tensor_numel(y) != fy->n) goto done;
    HV_CHECK_OK(hv_nn_tensor_set(x, fxx->data, (size_t)fxx->n));
    HV_CHECK_OK(hv_nn_tensor_set(m, fm->data, (size_t)fm->n));
    HV_CHECK_OK(hv_nn_tensor_set(r, fr->data, (size_t)fr->n));
    HV_CHECK_OK(hv_nn_graph_forward(g));
    HV_CHECK_OK(hv_nn_graph_backward(g, loss));
    float *buf = malloc((size_t)fxx->n * sizeof(float) + (size_t)fy->n * sizeof(float) + 65536);
    if (!HV_CHECK(buf != NULL, "out of memory")) goto done;
    HV_CHECK_OK(hv_nn_tensor_get(y, buf, (size_t)fy->n));
    double e = rel_l2(buf, fy->data, fy->n);
    /* measured 1.5e-7 (ref and cpu); gradients <= 1.2e-5 (docs/model.md) */
    HV_CHECK(e <= 1e-4, "%s: output vs PyTorch, relative L2 error %.3g > 1e-4", bname, e);
    HV_CHECK_OK(hv_nn_tensor_get_grad(x, buf, (size_t)fxx->n));
    double ex = rel_l2(buf, fgx->data, fgx->n);
    HV_CHECK(ex <= 1e-4, "%s: d/dx vs PyTorch, relative L2 error %.3g > 1e-4", bname, ex);
    double ep = 0;
    static const char *const pnames[2] = {"encoder.1.weight", "middle.1.gate.1.weight"};
    for (int k = 0; k < 2; k++) {
        char nm[96];
        snprintf(nm, sizeof nm, "g.%s", pnames[k]);
        const fx_tensor *fg = fx_find(fx, nm);
        hv_nn_param *p = hv_nn_params_find(ps, pnames[k]);
        if (!HV_CHECK(fg && p && hv_nn_param_numel(p) == fg->n && fg->n <= 16384,
                      "fixture lacks %s", nm))
            continue;
        HV_CHECK_OK(hv_nn_param_get_grad(p, buf, (size_t)fg->n));
        double ek = rel_l2(buf, fg->data, fg->n);
        HV_CHECK(ek <= 1e-4, "%s: d/d %s vs PyTorch, relative L2 error %.3g > 1e-4", bname,
                 pnames[k], ek);
        ep = fmax(ep, ek);
    }
    printf("# %s: out %.2e, d/dx %.2e, d/dparams %.2e (relative L2 vs PyTorch)\n", bname, e, ex, ep);
    free(buf);
done:
    hv_nn_graph_free(g);
    hv_nn_backend_free(be);
    hv_nn_params_free(ps);
}

static void test_refusals(void)
{
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 3, 0);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_model_aotgan_params(ps, 1, 4, 1, &rng));
    struct {
        const char *what;
        int64_t h, w;
        int rates[4];
        const char *needle;
    } cases[] = {
        {"H not a multiple of 4", 34, 40, {1, 2, 4, 8}, "multiples of 4"},
        /* 32 / 4 = 8: reflection by 8 needs more than 8 rows */
        {"rate 8 on an 8-row feature map", 32, 40, {1, 2, 4, 8}, "reflect_pad"},
        {"rate 0", 36, 40, {1, 2, 0, 8}, "rate 2 is 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hv_nn_graph *g = NULL;
        HV_CHECK_OK(hv_nn_graph_create(&g));
        hv_error_clear();
        hv_nn_tensor *x = hv_nn_input(g, "x", 4, (int64_t[]){1, 1, cases[i].h, cases[i].w});
        hv_nn_tensor *m = hv_nn_input(g, "m", 4, (int64_t[]){1, 1, cases[i].h, cases[i].w});
        hv_nn_tensor *y = hv_model_aotgan_build(g, ps, cases[i].rates, x, m);
        const char *msg = hv_error_detail();
        HV_CHECK(y == NULL, "%s: not refused", cases[i].what);
        HV_CHECK(msg && strstr(msg, cases[i].needle), "%s: message \"%s\" lacks \"%s\"",
                 cases[i].what, msg ? msg : "(none)", cases[i].needle);
        hv_nn_graph_free(g);
    }
    hv_nn_params_free(ps);
    /* a parameter set of another network */
    HV_CHECK_OK(hv_nn_params_create(&ps));
    hv_nn_graph *g = NULL;
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_error_clear();
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, (int64_t[]){1, 1, 36, 40});
    hv_nn_tensor *m = hv_nn_input(g, "m", 4, (int64_t[]){1, 1, 36, 40});
    HV_CHECK(hv_model_aotgan_build(g, ps, RATES, x, m) == NULL, "empty parameter set accepted");
    HV_CHECK(strstr(hv_error_detail(), "no parameter encoder.1.weight") != NULL,
             "missing parameter: message \"%s\"", hv_error_detail());
    hv_nn_graph_free(g);
    hv_nn_params_free(ps);
}

int main(void)
{
    char path[4096];
    test_counts();
    snprintf(path, sizeof path, "%s/model/fixtures/aotgan_w4.bin", HV_TEST_SOURCE_DIR);
    fx_file fx;
    if (HV_CHECK(fx_read(path, &fx) == 0, "cannot read the PyTorch fixture %s", path)) {
        run_torch(&fx, "ref", hv_nn_backend_create_ref);
        run_torch(&fx, "cpu", hv_nn_backend_create_cpu);
        fx_free(&fx);
    }
    test_refusals();
    return hv_test_done();
}
