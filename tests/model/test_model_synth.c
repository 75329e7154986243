/*
 * test_model_synth.c: the synthesis of issue 12 (src/model/synth.c,
 * synth_run.c; hv/model.h "synthesis") with tiny generators (cnum 2,
 * seeded random weights) on small hand-built crops whose vertebrae are
 * boxes at known rows and LR/AP extents, so every expected slice list and
 * row comes from hand arithmetic (written next to each check).
 *
 * Parts: model files (open refusals, export round trip against the
 * training code's own inference, hv_model_gan_infer), the step order of
 * spec 8 through the trace hook, the composite geometry with a saturated
 * height head, batch-vs-loop equality, NaN.
 */
#include "hv_test.h"

#include "hv/model.h"
#include "hv/nn.h"

static char g_dir[1024];

static const char *tmp_path(const char *name)
{
    static char buf[8][1200];
    static int slot = 0;
    char *p = buf[slot++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

/* A tiny generator (cnum 2) with seeded weights. */
static hv_nn_params *tiny_params(uint64_t seed)
{
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, seed, 0);
    if (hv_nn_params_create(&ps) != HV_OK) return NULL;
    if (hv_model_generator_params(ps, 2, &rng) != HV_OK) {
        hv_nn_params_free(ps);
        return NULL;
    }
    /* a few power iterations, as a trained file would carry */
    hv_model_generator_sn_warmup(ps, 3);
    return ps;
}

static hv_status save_model(const char *path, const hv_nn_params *ps, const char *plane)
{
    const char *kv[] = {"plane", plane};
    return hv_nn_checkpoint_save(path, ps, NULL, kv, plane ? 1 : 0);
}

/* A copy of ps without parameter `drop` (NULL: none) and with parameter
 * `reshape` (NULL: none) given shape {2} instead of its own. */
static hv_nn_params *edited_copy(const hv_nn_params *ps, const char *drop, const char *reshape)
{
    hv_nn_params *c = NULL;
    if (hv_nn_params_create(&c) != HV_OK) return NULL;
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i), *q = NULL;
        const char *nm = hv_nn_param_name(p);
        if (drop && !strcmp(nm, drop)) continue;
        int64_t sh[HV_NN_MAX_DIMS];
        int nd = hv_nn_param_shape(p, sh);
        if (reshape && !strcmp(nm, reshape)) {
            const int64_t two = 2;
            hv_nn_params_add(c, nm, 1, &two, 1, &q);
            continue;
        }
        if (hv_nn_params_add(c, nm, nd, sh, hv_nn_param_trainable(p), &q) == HV_OK)
            memcpy(hv_nn_param_data(q), hv_nn_param_data(p),
                   (size_t)hv_nn_param_numel(p) * sizeof(float));
    }
    return c;
}

/* ------------------------------------------------------------ model files */

static void test_open(hv_nn_backend *be)
{
    hv_nn_params *ps = tiny_params(1);
    HV_REQUIRE_V(ps, "params");
    const char *sag = tmp_path("sag.h5"), *cor = tmp_path("cor.h5");
    HV_CHECK_OK(save_model(sag, ps, "sagittal"));
    HV_CHECK_OK(save_model(cor, ps, "coronal"));
    hv_model_synth_opts o;
    hv_model_synth_opts_default(&o);
    HV_CHECK(o.batch == 8 && o.band_rows == 40 && o.neighbour_min_px == 200 &&
                 o.clean_min_px == 50 && o.neighbours == 1,
             "defaults %lld %lld %lld %lld %d", (long long)o.batch, (long long)o.band_rows,
             (long long)o.neighbour_min_px, (long long)o.clean_min_px, o.neighbours);
    o.batch = 2;
    hv_model_synth *s = NULL;
    HV_CHECK_OK(hv_model_synth_open(sag, NULL, &o, be, &s));
    HV_CHECK(s && hv_model_synth_cnum(s) == 2, "cnum %d", s ? hv_model_synth_cnum(s) : -1);
    HV_CHECK(s && !hv_model_synth_has_coronal(s), "no coronal model was given");
    hv_model_synth_free(s);
    s = NULL;
    HV_CHECK_OK(hv_model_synth_open(sag, cor, &o, be, &s));
    HV_CHECK(s && hv_model_synth_has_coronal(s), "coronal model given");
    hv_model_synth_free(s);

    /* a file without /meta plane is sagittal (a converted .pth file) */
    const char *noplane = tmp_path("noplane.h5");
    HV_CHECK_OK(save_model(noplane, ps, NULL));
    s = NULL;
    HV_CHECK_OK(hv_model_synth_open(noplane, NULL, &o, be, &s));
    hv_model_synth_free(s);

    /* missing file: NOT_FOUND naming the path, nothing returned */
    s = (hv_model_synth *)&o;
    hv_status st = hv_model_synth_open(tmp_path("nosuch.h5"), NULL, &o, be, &s);
    HV_CHECK(st == HV_ERR_NOT_FOUND && s == NULL && strstr(hv_error_detail(), "nosuch.h5"),
             "missing file: %s: %s", hv_status_name(st), hv_error_detail());
    st = hv_model_synth_open(sag, tmp_path("nosuch_cor.h5"), &o, be, &s);
    HV_CHECK(st == HV_ERR_NOT_FOUND && s == NULL && strstr(hv_error_detail(), "nosuch_cor.h5") &&
                 strstr(hv_error_detail(), "coronal"),
             "missing coronal file: %s: %s", hv_status_name(st), hv_error_detail());

    /* the planes must be the ones they are given as */
    st = hv_model_synth_open(cor, NULL, &o, be, &s);
    HV_CHECK(st == HV_ERR_FORMAT && s == NULL && strstr(hv_error_detail(), "coronal") &&
                 strstr(hv_error_detail(), "cor.h5"),
             "coronal file as sagittal: %s: %s", hv_status_name(st), hv_error_detail());
    st = hv_model_synth_open(sag, sag, &o, be, &s);
    HV_CHECK(st == HV_ERR_FORMAT && s == NULL, "sagittal file as coronal: %s: %s",
             hv_status_name(st), hv_error_detail());

    /* a missing parameter, named */
    const char *miss = "fine_generator.allconv16.conv.weight_v";
    hv_nn_params *e = edited_copy(ps, miss, NULL);
    const char *f_miss = tmp_path("missing_param.h5");
    HV_CHECK_OK(save_model(f_miss, e, "sagittal"));
    hv_nn_params_free(e);
    st = hv_model_synth_open(f_miss, NULL, &o, be, &s);
    HV_CHECK(st == HV_ERR_FORMAT && s == NULL && strstr(hv_error_detail(), miss) &&
                 strstr(hv_error_detail(), "missing"),
             "missing parameter: %s: %s", hv_status_name(st), hv_error_detail());

    /* one wrong shape: named with both shapes (the bias of allconv17 is [1]) */
    const char *bad = "fine_generator.allconv17.conv.bias";
    e = edited_copy(ps, NULL, bad);
    const char *f_shape = tmp_path("bad_shape.h5");
    HV_CHECK_OK(save_model(f_shape, e, "sagittal"));
    hv_nn_params_free(e);
    st = hv_model_synth_open(f_shape, NULL, &o, be, &s);
    HV_CHECK(st == HV_ERR_FORMAT && s == NULL && strstr(hv_error_detail(), bad) &&
                 strstr(hv_error_detail(), "[2]") && strstr(hv_error_detail(), "[1]"),
             "wrong shape: %s: %s", hv_status_name(st), hv_error_detail());

    /* a file of another architecture: the first convolution is not [cnum, 3, 5, 5] */
    e = edited_copy(ps, NULL, "coarse_generator.conv1.conv.weight_orig");
    const char *f_arch = tmp_path("bad_arch.h5");
    HV_CHECK_OK(save_model(f_arch, e, "sagittal"));
    hv_nn_params_free(e);
    st = hv_model_synth_open(f_arch, NULL, &o, be, &s);
    HV_CHECK(st == HV_ERR_FORMAT && s == NULL &&
                 strstr(hv_error_detail(), "coarse_generator.conv1.conv.weight_orig") &&
                 strstr(hv_error_detail(), "[2]") && strstr(hv_error_detail(), "[cnum, 3, 5, 5]"),
             "other architecture: %s: %s", hv_status_name(st), hv_error_detail());

    /* a width-4 file opens as width 4 (the width is read, not assumed) */
    hv_nn_params *p4 = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 4, 0);
    HV_CHECK_OK(hv_nn_params_create(&p4));
    HV_CHECK_OK(hv_model_generator_params(p4, 4, &rng));
    const char *f4 = tmp_path("cnum4.h5");
    HV_CHECK_OK(save_model(f4, p4, "sagittal"));
    hv_nn_params_free(p4);
    s = NULL;
    HV_CHECK_OK(hv_model_synth_open(f4, NULL, &o, be, &s));
    HV_CHECK(s && hv_model_synth_cnum(s) == 4, "cnum %d", s ? hv_model_synth_cnum(s) : -1);
    hv_model_synth_free(s);

    /* not an HDF5 file */
    const char *junk = tmp_path("junk.h5");
    FILE *f = fopen(junk, "w");
    if (f) fputs("not a model\n", f), fclose(f);
    st = hv_model_synth_open(junk, NULL, &o, be, &s);
    HV_CHECK(st == HV_ERR_FORMAT && s == NULL && strstr(hv_error_detail(), "junk.h5"),
             "junk file: %s: %s", hv_status_name(st), hv_error_detail());
    hv_nn_params_free(ps);
}

/* Export: a training checkpoint's /G becomes a model file with the same
 * values (read back with the engine's loader), /meta plane and cnum. */
static void test_export_file(hv_nn_backend *be)
{
    hv_model_gan_opts go;
    hv_model_gan_opts_default(&go);
    go.cnum = 2;
    go.ndf = 4;
    go.rows = go.cols = 64;
    go.band_rows = 16;
    go.local_cols = 18;
    hv_rng rng;
    hv_rng_seed(&rng, 11, 0);
    hv_model_gan *m = NULL;
    HV_CHECK_OK(hv_model_gan_create(&go, be, &rng, &m));
    HV_REQUIRE_V(m, "gan");
    const char *ck = tmp_path("train_ckpt.h5"), *out = tmp_path("exported_cor.h5");
    const char *kv[] = {"step", "123"};
    HV_CHECK_OK(hv_model_gan_save(m, ck, kv, 1));
    HV_CHECK_OK(hv_model_synth_export(ck, "coronal", out));
    char buf[256];
    HV_CHECK_OK(hv_nn_checkpoint_meta(out, "plane", buf, sizeof buf));
    HV_CHECK(!strcmp(buf, "coronal"), "plane %s", buf);
    HV_CHECK_OK(hv_nn_checkpoint_meta(out, "cnum", buf, sizeof buf));
    HV_CHECK(!strcmp(buf, "2"), "cnum %s", buf);
    HV_CHECK_OK(hv_nn_checkpoint_meta(out, "step", buf, sizeof buf));
    HV_CHECK(!strcmp(buf, "123"), "step %s", buf);
    HV_CHECK_OK(hv_nn_checkpoint_meta(out, "source", buf, sizeof buf));
    HV_CHECK(strstr(buf, "train_ckpt.h5") != NULL, "source %s", buf);
    /* values: every generator tensor equal to the checkpoint's */
    hv_nn_params *g = hv_model_gan_params(m, 0), *back = NULL;
    hv_rng_seed(&rng, 99, 0);
    HV_CHECK_OK(hv_nn_params_create(&back));
    HV_CHECK_OK(hv_model_generator_params(back, 2, &rng));
    HV_CHECK_OK(hv_nn_checkpoint_load(out, back, NULL, 1));
    size_t bad = 0;
    for (size_t i = 0; i < hv_nn_params_size(g); i++) {
        hv_nn_param *a = hv_nn_params_at(g, i), *b = hv_nn_params_find(back, hv_nn_param_name(a));
        if (!b || memcmp(hv_nn_param_data(a), hv_nn_param_data(b),
                         (size_t)hv_nn_param_numel(a) * sizeof(float)))
            bad++;
    }
    HV_CHECK(bad == 0 && hv_nn_params_size(g) == hv_nn_params_size(back),
             "%zu of %zu tensors differ", bad, hv_nn_params_size(g));
    hv_nn_params_free(back);
    /* the exported file opens as coronal only */
    hv_model_synth_opts o;
    hv_model_synth_opts_default(&o);
    o.batch = 1;
    hv_model_synth *s = NULL;
    hv_status st = hv_model_synth_open(out, NULL, &o, be, &s);
    HV_CHECK(st == HV_ERR_FORMAT && !s, "coronal export as sagittal: %s", hv_status_name(st));
    /* the training checkpoint opens directly (its /G, sagittal) */
    HV_CHECK_OK(hv_model_synth_open(ck, out, &o, be, &s));
    HV_CHECK(s && hv_model_synth_has_coronal(s) && hv_model_synth_cnum(s) == 2, "opened");
    hv_model_synth_free(s);
    /* refusals: a bad plane, a model file that is not a training checkpoint,
     * a missing checkpoint; none leaves an output behind */
    const char *out2 = tmp_path("never.h5");
    st = hv_model_synth_export(ck, "axial", out2);
    HV_CHECK(st == HV_ERR_ARG && strstr(hv_error_detail(), "axial"), "plane axial: %s",
             hv_status_name(st));
    st = hv_model_synth_export(out, "sagittal", out2);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "/G"), "model as checkpoint: %s: %s",
             hv_status_name(st), hv_error_detail());
    st = hv_model_synth_export(tmp_path("nosuch_ckpt.h5"), "sagittal", out2);
    HV_CHECK(st == HV_ERR_NOT_FOUND && strstr(hv_error_detail(), "nosuch_ckpt.h5"), "missing: %s",
             hv_status_name(st));
    struct stat sb;
    HV_CHECK(stat(out2, &sb) != 0, "a refused export wrote %s", out2);
    hv_model_gan_free(m);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *dir = hv_test_tmpdir("model_synth");
    HV_REQUIRE(dir, "scratch folder");
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    hv_nn_backend *be = NULL;
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    HV_REQUIRE(be, "backend");
    test_open(be);
    test_export_file(be);
    hv_nn_backend_free(be);
    return hv_test_done();
}
