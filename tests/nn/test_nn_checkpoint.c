/*
 * test_nn_checkpoint.c: HDF5 checkpoint round trip. A cnum 4 generator (from
 * src/model, as a realistic set with trainable weights and buffers) and
 * an Adam optimiser that has taken steps are saved with metadata, loaded
 * into a differently initialised set and an optimiser whose step count and
 * every hyper-parameter (lr, beta1, beta2, eps) differ from the saved one's
 * (checked before loading, so that the restore is really tested), and must
 * come back bit-identical (parameters, buffers, moments, step,
 * hyper-parameters), give the same forward output, and keep training
 * identically. Strict loading must refuse a file that lacks a tensor or has
 * another shape.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"
#include "hv_test.h"
/* the optimiser's hyper-parameters have no public getter */
#include "../../src/nn/nn_backend.h"

static void make(hv_nn_params **ps, hv_nn_adam **a, uint64_t seed, const double hp[4])
{
    hv_rng r;
    hv_rng_seed(&r, seed, 0);
    HV_CHECK_OK(hv_nn_params_create(ps));
    HV_CHECK_OK(hv_model_generator_params(*ps, 4, &r));
    HV_CHECK_OK(hv_nn_adam_create(*ps, hp[0], hp[1], hp[2], hp[3], a));
}

/* fill gradients with a deterministic pattern and take a step */
static void step(hv_nn_params *ps, hv_nn_adam *a, int k)
{
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i);
        float *g = hv_nn_param_grad(p);
        for (int64_t j = 0; g && j < hv_nn_param_numel(p); j++) g[j] = sinf((float)(j + 7 * i + k));
    }
    HV_CHECK_OK(hv_nn_adam_step(a));
}

static int same(hv_nn_params *a, hv_nn_params *b)
{
    if (hv_nn_params_size(a) != hv_nn_params_size(b)) return 0;
    for (size_t i = 0; i < hv_nn_params_size(a); i++) {
        hv_nn_param *p = hv_nn_params_at(a, i), *q = hv_nn_params_find(b, hv_nn_param_name(p));
        if (!q || memcmp(hv_nn_param_data(p), hv_nn_param_data(q),
                         (size_t)hv_nn_param_numel(p) * sizeof(float)))
            return 0;
    }
    return 1;
}

int main(void)
{
    const char *dir = hv_test_tmpdir("nn_checkpoint");
    HV_REQUIRE(dir != NULL, "no scratch folder");
    char path[4200];
    snprintf(path, sizeof path, "%s/g.h5", dir);
    hv_nn_params *ps = NULL, *qs = NULL;
    hv_nn_adam *a = NULL, *b = NULL;
    /* saved: the reference's Adam, lr then lowered as a schedule would;
     * loaded into: other values for all four and another step count */
    static const double hp_a[4] = {2e-4, 0.5, 0.999, 1e-8}, hp_b[4] = {1e-3, 0.9, 0.99, 1e-6};
    static const char *const hp_name[4] = {"lr", "beta1", "beta2", "eps"};
    make(&ps, &a, 1, hp_a);
    make(&qs, &b, 2, hp_b);
    HV_REQUIRE(ps && qs && a && b, "setup failed");
    step(ps, a, 0);
    hv_nn_adam_set_lr(a, 1.5e-4);
    step(ps, a, 1);
    step(qs, b, 5);
    HV_CHECK(!same(ps, qs), "different seeds must differ before loading");
    double ha[4], hb[4];
    int64_t sa = 0, sb = 0;
    hv__nn_adam_hyper(a, ha, &sa, 0);
    hv__nn_adam_hyper(b, hb, &sb, 0);
    HV_CHECK(ha[0] == 1.5e-4 && sa == 2 && sb == 1, "optimisers before saving: lr %g, steps %lld, %lld", ha[0],
             (long long)sa, (long long)sb);
    for (int k = 0; k < 4; k++)
        HV_CHECK(ha[k] != hb[k], "%s is the same in the saved and the fresh optimiser: its restore is not tested",
                 hp_name[k]);
    const char *meta[4] = {"model", "healthivert-generator", "cnum", "4"};
    HV_CHECK_OK(hv_nn_checkpoint_save(path, ps, a, meta, 2));
    HV_CHECK_OK(hv_nn_checkpoint_load(path, qs, b, 1));
    HV_CHECK(same(ps, qs), "parameters differ after the round trip");
    HV_CHECK(hv_nn_adam_steps(b) == 2, "adam step count %lld", (long long)hv_nn_adam_steps(b));
    hv__nn_adam_hyper(b, hb, &sb, 0);
    for (int k = 0; k < 4; k++)
        HV_CHECK(hb[k] == ha[k], "adam %s after loading: %.17g, saved %.17g", hp_name[k], hb[k], ha[k]);
    /* the next step is identical only if the moments came back */
    step(ps, a, 2);
    step(qs, b, 2);
    HV_CHECK(same(ps, qs), "training diverges after loading (optimiser state lost)");
    char buf[64];
    HV_CHECK_OK(hv_nn_checkpoint_meta(path, "model", buf, sizeof buf));
    HV_CHECK(strcmp(buf, "healthivert-generator") == 0, "meta model = '%s'", buf);
    HV_CHECK(hv_nn_checkpoint_meta(path, "absent", buf, sizeof buf) == HV_ERR_NOT_FOUND, "absent key");

    /* the same forward output from the loaded weights */
    float y[2][64 * 64];
    for (int k = 0; k < 2; k++) {
        hv_nn_backend *be = NULL;
        hv_nn_graph *g = NULL;
        hv_model_generator_io io;
        HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
        HV_CHECK_OK(hv_nn_graph_create(&g));
        HV_CHECK_OK(hv_model_generator_build(g, k ? qs : ps, 4, 1, 64, 64, &io));
        HV_CHECK_OK(hv_nn_graph_plan(g, be, 0));
        float in[64 * 64];
        for (int i = 0; i < 64 * 64; i++) in[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        HV_CHECK_OK(hv_nn_tensor_set(io.x, in, 64 * 64));
        HV_CHECK_OK(hv_nn_tensor_set(io.cam, in, 64 * 64));
        HV_CHECK_OK(hv_nn_graph_forward(g));
        HV_CHECK_OK(hv_nn_tensor_get(io.x_stage2, y[k], 64 * 64));
        hv_nn_graph_free(g);
        hv_nn_backend_free(be);
    }
    HV_CHECK(memcmp(y[0], y[1], sizeof y[0]) == 0, "forward differs after loading");

    /* strict loading refuses missing tensors and other shapes */
    hv_nn_params *bad = NULL;
    HV_CHECK_OK(hv_nn_params_create(&bad));
    const int64_t s3 = 3, s5 = 5;
    HV_CHECK_OK(hv_nn_params_add(bad, "not.in.file", 1, &s3, 1, NULL));
    HV_CHECK(hv_nn_checkpoint_load(path, bad, NULL, 1) == HV_ERR_FORMAT, "missing tensor accepted");
    HV_CHECK_OK(hv_nn_checkpoint_load(path, bad, NULL, 0));
    hv_nn_params_free(bad);
    HV_CHECK_OK(hv_nn_params_create(&bad));
    HV_CHECK_OK(hv_nn_params_add(bad, "coarse_generator.conv1.conv.bias", 1, &s5, 1, NULL));
    HV_CHECK(hv_nn_checkpoint_load(path, bad, NULL, 1) == HV_ERR_FORMAT, "shape mismatch accepted");
    hv_nn_params_free(bad);
    HV_CHECK(hv_nn_checkpoint_load("/nonexistent/x.h5", qs, NULL, 1) == HV_ERR_IO, "missing file");

    hv_nn_adam_free(a);
    hv_nn_adam_free(b);
    hv_nn_params_free(ps);
    hv_nn_params_free(qs);
    return hv_test_done();
}
