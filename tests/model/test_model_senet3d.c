/*
 * test_model_senet3d.c: the 3-D SE-ResNet of the SupCon direct grader
 * (src/model/senet3d.c, issue 15) against PyTorch.
 *
 * Fixture tests/model/fixtures/senet3d_w4.bin, made by
 * scripts/make_senet3d_fixture.py (python3-torch 1.13; the network written
 * in plain torch from its description, under our parameter names): width
 * 4, blocks (2, 1, 1, 1) (an identity block and projection shortcuts),
 * projection 8, seeded random weights and running statistics, an input of
 * 4 x 1 x 16 x 16 x 32 (not a cube: a swapped axis shows), labels and
 * class weights. The weights reach the network BY NAME ("w.<name>").
 *
 * Checks, on the reference and the CPU (oneDNN) backends:
 *  - the trainable parameter count is 59030, printed by the script for its
 *    torch module; every parameter has a fixture tensor of its size and the
 *    fixture has no other weights;
 *  - eval mode (plan 0): feature, projection and logits, relative L2 error
 *    <= 1e-4;
 *  - training mode: projection and logits with batch statistics, the loss
 *    supcon(proj, t = 0.07) + weighted cross_entropy(logits), the stem's
 *    running mean after the forward (<= 1e-4), and the gradients of six
 *    parameters from the stem to both heads (<= 1e-3);
 *  - refusals: a bad configuration and an input side that is not a
 *    multiple of 16, with messages naming them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"
#include "hv_test.h"
#include "nn/nn_fixture.h"

#define TRAINABLE 59030LL /* scripts/make_senet3d_fixture.py's torch module */

static const hv_model_senet3d_config CFG = {4, {2, 1, 1, 1}, 8};

static int ok_(hv_status st, const char *what)
{
    return HV_CHECK(st == HV_OK, "%s -> %s: %s", what, hv_status_name(st), hv_error_detail());
}
#define OK(expr) ok_((expr), #expr)

static void cmp_param(hv_nn_param *p, int grad, const fx_file *fx, const char *name, double tol,
                      const char *ctx)
{
    const fx_tensor *f = fx_find(fx, name);
    HV_REQUIRE_V(f && p && f->n == hv_nn_param_numel(p), "%s: fixture %s or parameter missing",
                 ctx, name);
    float *y = malloc((size_t)f->n * sizeof(float));
    HV_REQUIRE_V(y != NULL, "out of memory");
    hv_status st = grad ? hv_nn_param_get_grad(p, y, (size_t)f->n)
                        : hv_nn_param_get(p, y, (size_t)f->n);
    if (OK(st)) {
        double mx, e = fx_rel_l2(y, f->data, f->n, &mx);
        HV_CHECK(e <= tol, "%s %s: relative L2 error %.3g (max abs %.3g) > %.1g", ctx, name, e,
                 mx, tol);
        printf("# %s %s: %.2e\n", ctx, name, e);
    }
    free(y);
}

static hv_nn_params *load_params(const fx_file *fx)
{
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 7, 0);
    if (!OK(hv_nn_params_create(&ps)) || !OK(hv_model_senet3d_params(ps, &CFG, &rng))) {
        hv_nn_params_free(ps);
        return NULL;
    }
    if (!fx_load_params(ps, fx, "our network")) {
        hv_nn_params_free(ps);
        return NULL;
    }
    return ps;
}

static int set_from(hv_nn_tensor *t, const fx_file *fx, const char *name)
{
    const fx_tensor *f = fx_find(fx, name);
    if (!HV_CHECK(f && f->n == hv_nn_tensor_numel(t), "fixture %s", name)) return 0;
    return OK(hv_nn_tensor_set(t, f->data, (size_t)f->n));
}

static void check_backend(const fx_file *fx, int cpu)
{
    static const char *const grads[] = {"layer0.conv1.weight", "layer1.1.se_layer.fc.0.weight",
                                        "layer2.0.project.conv.weight", "layer4.0.conv2.adn.N.weight",
                                        "head.2.weight", "last_linear.weight"};
    const char *bn = cpu ? "cpu" : "ref";
    char ctx[64];
    hv_nn_backend *be = NULL;
    hv_nn_graph *g = NULL;
    hv_nn_params *ps = load_params(fx);
    HV_REQUIRE_V(ps != NULL, "parameters");
    if (!OK(cpu ? hv_nn_backend_create_cpu(&be) : hv_nn_backend_create_ref(&be))) goto done;
    hv_model_senet3d_io io;

    /* eval */
    snprintf(ctx, sizeof ctx, "%s eval", bn);
    if (!OK(hv_nn_graph_create(&g))) goto done;
    if (!OK(hv_model_senet3d_build(g, ps, &CFG, 4, 16, 16, 32, &io))) goto done;
    if (!OK(hv_nn_graph_plan(g, be, 0))) goto done;
    if (!set_from(io.x, fx, "x") || !OK(hv_nn_graph_forward(g))) goto done;
    fx_cmp(io.feat, 0, fx, "eval.feat", 1e-4, ctx);
    fx_cmp(io.proj, 0, fx, "eval.proj", 1e-4, ctx);
    fx_cmp(io.logits, 0, fx, "eval.logits", 1e-4, ctx);
    hv_nn_graph_free(g);
    g = NULL;

    /* training */
    snprintf(ctx, sizeof ctx, "%s train", bn);
    if (!OK(hv_nn_graph_create(&g))) goto done;
    if (!OK(hv_model_senet3d_build(g, ps, &CFG, 4, 16, 16, 32, &io))) goto done;
    hv_nn_tensor *lab = hv_nn_input(g, "labels", 1, (int64_t[]){4});
    hv_nn_tensor *cw = hv_nn_input(g, "class_w", 1, (int64_t[]){4});
    hv_nn_tensor *loss = hv_nn_add(g, hv_nn_supcon(g, io.proj, lab, 0.07f),
                                   hv_nn_cross_entropy(g, io.logits, lab, cw));
    if (!OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN))) goto done;
    if (!set_from(io.x, fx, "x") || !set_from(lab, fx, "labels") || !set_from(cw, fx, "class_w"))
        goto done;
    hv_nn_params_zero_grad(ps);
    if (!OK(hv_nn_graph_forward(g)) || !OK(hv_nn_graph_backward(g, loss))) goto done;
    fx_cmp(io.proj, 0, fx, "train.proj", 1e-4, ctx);
    fx_cmp(io.logits, 0, fx, "train.logits", 1e-4, ctx);
    fx_cmp(loss, 0, fx, "train.loss", 1e-4, ctx);
    cmp_param(hv_nn_params_find(ps, "layer0.bn1.running_mean"), 0, fx, "train.rm.layer0.bn1", 1e-4,
              ctx);
    for (size_t i = 0; i < sizeof grads / sizeof grads[0]; i++) {
        char nm[160];
        snprintf(nm, sizeof nm, "train.g.%s", grads[i]);
        cmp_param(hv_nn_params_find(ps, grads[i]), 1, fx, nm, 1e-3, ctx);
    }
done:
    hv_nn_graph_free(g);
    hv_nn_backend_free(be);
    hv_nn_params_free(ps);
}

static void test_count(void)
{
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 1, 0);
    HV_REQUIRE_V(OK(hv_nn_params_create(&ps)), "params");
    if (OK(hv_model_senet3d_params(ps, &CFG, &rng)))
        HV_CHECK(hv_nn_params_numel(ps, 1) == TRAINABLE, "trainable count %lld, torch's %lld",
                 (long long)hv_nn_params_numel(ps, 1), TRAINABLE);
    hv_nn_params_free(ps);
}

static void test_refusals(void)
{
    hv_nn_params *ps = NULL;
    hv_nn_graph *g = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 1, 0);
    HV_REQUIRE_V(OK(hv_nn_params_create(&ps)) && OK(hv_nn_graph_create(&g)), "setup");
    hv_model_senet3d_config bad = CFG;
    bad.blocks[2] = 0;
    hv_status st = hv_model_senet3d_params(ps, &bad, &rng);
    const char *msg = hv_error_detail();
    HV_CHECK(st == HV_ERR_ARG && msg && strstr(msg, "blocks[2] = 0"), "blocks 0: %d \"%s\"",
             (int)st, msg ? msg : "");
    if (OK(hv_model_senet3d_params(ps, &CFG, &rng))) {
        hv_model_senet3d_io io;
        st = hv_model_senet3d_build(g, ps, &CFG, 2, 16, 24, 32, &io);
        msg = hv_error_detail();
        HV_CHECK(st == HV_ERR_ARG && msg && strstr(msg, "2 x 1 x 16 x 24 x 32") &&
                 strstr(msg, "multiples of 16"), "24 voxels: %d \"%s\"", (int)st, msg ? msg : "");
    }
    hv_nn_graph_free(g);
    hv_nn_params_free(ps);
}

int main(void)
{
    char path[1024];
    fx_file fx;
    snprintf(path, sizeof path, "%s/model/fixtures/senet3d_w4.bin", HV_TEST_SOURCE_DIR);
    HV_REQUIRE(fx_read(path, &fx) == 0, "cannot read %s", path);
    test_count();
    check_backend(&fx, 0);
    check_backend(&fx, 1);
    test_refusals();
    fx_free(&fx);
    return hv_test_done();
}
