/*
 * test_model_pth.c: a PyTorch checkpoint converted by scripts/pth_to_hv.py
 * loads into our generator and gives PyTorch's outputs (issue 17, "loading a
 * PyTorch checkpoint through scripts/pth_to_hv.py").
 *
 * Fixtures, both made by scripts/make_pth_fixture.py (python3-torch 1.13,
 * h5py): tests/model/fixtures/generator_cnum2_pth.h5 is the output of
 * pth_to_hv.py on the torch.save'd state_dict of a seeded cnum 2 generator
 * (wrapped as DataParallel saves it); generator_cnum2_pth_io.bin holds a
 * fixed input (2 items at 32 x 32, each with its own band) and PyTorch's six
 * outputs on it, and no weights. So the weights reach this test only through
 * the converted file and hv_nn_checkpoint_load: a tensor the script drops,
 * renames, reshapes or reorders, or the loader misplaces, changes the
 * outputs (or fails the strict load).
 *
 * Checks:
 *  - strict load (every parameter of our cnum 2 generator present, same
 *    shape) and the file's /meta says which script made it;
 *  - forward on the ref and cpu backends vs PyTorch: relative L2 error per
 *    output at most 1e-4 (the bound of test_model_nets' generator fixture);
 *  - the outputs before the load (our seeded initialisation) are far from
 *    PyTorch's, so the comparison depends on the loaded weights;
 *  - loading into a generator of another width fails strictly with
 *    HV_ERR_FORMAT naming the file and the first tensor whose shape differs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"
#include "hv_test.h"
#include "nn/nn_fixture.h"

/* HV_CHECK_OK as an expression: 1 when expr returned HV_OK */
static int ok_(hv_status st, const char *what)
{
    return HV_CHECK(st == HV_OK, "%s -> %s: %s", what, hv_status_name(st), hv_error_detail());
}
#define OK(expr) ok_((expr), #expr)

static const char *const in_names[4] = {"in.x", "in.mask", "in.cam", "in.ratio"};
static const char *const out_names[6] = {"out.coarse_seg", "out.x_stage1", "out.p1",
                                         "out.fine_seg",   "out.x_stage2", "out.p2"};

/* Forward of the cnum 2 generator in ps on the fixture's inputs; the largest
 * relative L2 error of the six outputs vs PyTorch into *worst (printed per
 * output when verbose). Returns 0 when it ran. */
static int forward_vs_torch(hv_nn_params *ps, int use_cpu, const fx_file *io, int verbose,
                            double *worst)
{
    hv_nn_backend *be = NULL;
    hv_nn_graph *g = NULL;
    hv_model_generator_io gio;
    int rc = -1;
    *worst = 0;
    if (!OK(use_cpu ? hv_nn_backend_create_cpu(&be) : hv_nn_backend_create_ref(&be)))
        goto done;
    if (!OK(hv_nn_graph_create(&g))) goto done;
    if (!OK(hv_model_generator_build(g, ps, 2, 2, 32, 32, &gio))) goto done;
    if (!OK(hv_nn_graph_plan(g, be, 0))) goto done;
    hv_nn_tensor *ins[4] = {gio.x, gio.mask, gio.cam, gio.ratio};
    hv_nn_tensor *outs[6] = {gio.coarse_seg, gio.x_stage1, gio.p1,
                             gio.fine_seg,   gio.x_stage2, gio.p2};
    for (int k = 0; k < 4; k++) {
        const fx_tensor *t = fx_find(io, in_names[k]);
        if (!HV_CHECK(t && t->n == hv_nn_tensor_numel(ins[k]), "fixture lacks %s", in_names[k]))
            goto done;
        if (!OK(hv_nn_tensor_set(ins[k], t->data, (size_t)t->n))) goto done;
    }
    if (!OK(hv_nn_graph_forward(g))) goto done;
    for (int k = 0; k < 6; k++) {
        const fx_tensor *t = fx_find(io, out_names[k]);
        if (!HV_CHECK(t && t->n == hv_nn_tensor_numel(outs[k]), "fixture lacks %s", out_names[k]))
            goto done;
        float *y = malloc((size_t)t->n * sizeof(float));
        if (!HV_CHECK(y != NULL, "out of memory")) goto done;
        HV_CHECK_OK(hv_nn_tensor_get(outs[k], y, (size_t)t->n));
        double mx, e = fx_rel_l2(y, t->data, t->n, &mx);
        if (verbose)
            printf("# %s %-15s rel L2 %.2e, max abs %.2e\n", hv_nn_backend_name(be), out_names[k],
                   e, mx);
        if (e > *worst) *worst = e;
        free(y);
    }
    rc = 0;
done:
    hv_nn_graph_free(g);
    hv_nn_backend_free(be);
    return rc;
}

int main(void)
{
    char h5[4096], iop[4096];
    snprintf(h5, sizeof h5, "%s/model/fixtures/generator_cnum2_pth.h5", HV_TEST_SOURCE_DIR);
    snprintf(iop, sizeof iop, "%s/model/fixtures/generator_cnum2_pth_io.bin", HV_TEST_SOURCE_DIR);
    fx_file io;
    HV_REQUIRE(fx_read(iop, &io) == 0, "cannot read fixture %s", iop);
    hv_nn_params *ps = NULL;
    hv_rng r;
    hv_rng_seed(&r, 5, 0);
    HV_REQUIRE(OK(hv_nn_params_create(&ps)), "params");
    HV_REQUIRE(OK(hv_model_generator_params(ps, 2, &r)), "generator params");

    /* our own initialisation first: far from PyTorch's outputs */
    double before = 0, after = 0;
    if (forward_vs_torch(ps, 0, &io, 0, &before) == 0) {
        printf("# before loading: worst rel L2 %.2e\n", before);
        HV_CHECK(before > 0.05, "outputs before the load already match PyTorch (%.3g): the "
                 "comparison would not depend on the checkpoint", before);
    }

    /* the converted checkpoint, strictly: every tensor present, same shape */
    HV_CHECK_OK(hv_nn_checkpoint_load(h5, ps, NULL, 1));
    char meta[256];
    HV_CHECK_OK(hv_nn_checkpoint_meta(h5, "converted_by", meta, sizeof meta));
    HV_CHECK(strcmp(meta, "scripts/pth_to_hv.py") == 0, "meta converted_by = '%s'", meta);
    HV_CHECK_OK(hv_nn_checkpoint_meta(h5, "source", meta, sizeof meta));
    HV_CHECK(strcmp(meta, "latest_net_G.pth") == 0, "meta source = '%s'", meta);

    for (int cpu = 0; cpu < 2; cpu++) {
        if (forward_vs_torch(ps, cpu, &io, 1, &after) != 0) continue;
        /* the bound of test_model_nets' PyTorch generator fixture */
        HV_CHECK(after <= 1e-4, "%s backend: converted checkpoint vs PyTorch, worst relative "
                 "error %.3g > 1e-4", cpu ? "cpu" : "ref", after);
    }

    /* a checkpoint of another width is refused, naming the file and the tensor */
    hv_nn_params *ps4 = NULL;
    HV_CHECK_OK(hv_nn_params_create(&ps4));
    HV_CHECK_OK(hv_model_generator_params(ps4, 4, &r));
    hv_status st = hv_nn_checkpoint_load(h5, ps4, NULL, 1);
    HV_CHECK(st == HV_ERR_FORMAT, "cnum 4 generator from a cnum 2 file: status %d", (int)st);
    const char *msg = hv_error_detail();
    HV_CHECK(msg && strstr(msg, h5) && strstr(msg, "has another shape") &&
                 strstr(msg, "coarse_generator."),
             "message names the file and the tensor: '%s'", msg ? msg : "(none)");
    hv_nn_params_free(ps4);

    hv_nn_params_free(ps);
    fx_free(&io);
    return hv_test_done();
}
