/*
 * test_model_synth_aot.c: the synthesis of issue 12 with AOT-GAN's generator
 * (issue 15; synthesis.method = aotgan, hv_model_synth_opts.generator =
 * AOTGAN), tiny (width 4, one block, seeded weights) on a hand-built crop:
 *  - export round trip: a training checkpoint of the AOT GAN exported as a
 *    model file synthesizes, on every target slice, exactly the composite
 *    that the training code's own inference (hv_model_gan_infer) gives for
 *    the training sample of that slice: the input preparation (masked CT
 *    and label channels), the composite of height h and the CT scaling are
 *    the same in training and synthesis; the mean height is h;
 *  - batch 8 equals batch 1 (the reference's loop), both planes, neighbours on;
 *  - the kinds: an AOT file is refused by the gan method and ours by aotgan,
 *    both kinds named; likewise --validate-model's loader
 *    (hv_model_gan_load_generator) both ways and on another block count;
 *  - the pipeline registers the method.
 * The crop (vertebrae as boxes at known rows) is test_model_synth.c's
 * standard crop (synth_crop.h).
 */
#include "hv_test.h"

#include "hv/model.h"
#include "hv/nn.h"
#include "hv/pipeline.h"
#include "synth_crop.h"

static void aot_opts(hv_model_gan_opts *o, int blocks)
{
    hv_model_gan_opts_default(o);
    o->generator = HV_MODEL_GEN_AOTGAN;
    o->cnum = 4;
    o->aot_blocks = blocks;
    o->ndf = 4;
}

/* An AOT GAN's checkpoint (seed 21) and its generator exported both ways. */
static hv_model_gan *make_files(hv_nn_backend *be, const char *ck, const char *sag, const char *cor)
{
    hv_model_gan_opts go;
    aot_opts(&go, 1);
    hv_rng rng;
    hv_rng_seed(&rng, 21, 0);
    hv_model_gan *m = NULL;
    HV_CHECK_OK(hv_model_gan_create(&go, be, &rng, &m));
    if (!m) return NULL;
    /* weights of N(0, 0.02) give an almost constant output: larger ones, so
     * that the comparisons below see an input-dependent one */
    hv_nn_params *ps = hv_model_gan_params(m, 0);
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i);
        float *v = hv_nn_param_data(p);
        for (int64_t k = 0; k < hv_nn_param_numel(p); k++)
            v[k] = (float)(0.5 * (hv_rng_uniform(&rng) - 0.5));
    }
    hv_nn_params_touch(ps);
    HV_CHECK_OK(hv_model_gan_save(m, ck, NULL, 0));
    HV_CHECK_OK(hv_model_synth_export(ck, "sagittal", sag));
    if (cor) HV_CHECK_OK(hv_model_synth_export(ck, "coronal", cor));
    return m;
}

static void test_export_infer(hv_nn_backend *be)
{
    const char *ck = tmp_path("aot_ckpt.h5"), *mf = tmp_path("aot_model.h5");
    hv_model_gan *m = make_files(be, ck, mf, NULL);
    HV_REQUIRE_V(m, "gan");
    char buf[64];
    HV_CHECK(hv_nn_checkpoint_meta(mf, "generator", buf, sizeof buf) == HV_OK &&
                 !strcmp(buf, "aotgan"), "exported /meta generator: %s", buf);
    HV_CHECK(hv_nn_checkpoint_meta(mf, "aot_blocks", buf, sizeof buf) == HV_OK && !strcmp(buf, "1"),
             "exported /meta aot_blocks: %s", buf);
    hv_model_synth *s = open_synth(be, mf, NULL, 4, 0, HV_MODEL_GEN_AOTGAN);
    hv_spine_crop *cr = std_crop(19, 20, 21, 22);
    hv_volume *ct8 = NULL;
    HV_REQUIRE_V(s && cr, "synth, crop");
    HV_CHECK(hv_model_synth_generator(s) == HV_MODEL_GEN_AOTGAN && hv_model_synth_cnum(s) == 4 &&
                 hv_model_synth_aot_blocks(s) == 1,
             "kind %d width %d blocks %d", hv_model_synth_generator(s), hv_model_synth_cnum(s),
             hv_model_synth_aot_blocks(s));
    hv_model_synth_result r;
    HV_CHECK_OK(hv_model_synth_vertebra(s, cr, NULL, &r));
    HV_REQUIRE_V(r.ct, "result");
    HV_CHECK_OK(hv_model_trainset_ct_u8(cr->ct, &ct8));
    HV_REQUIRE_V(ct8, "u8 CT");
    hv_model_train_item it = {.case_id = "synth", .label = 21, .grade = 0,
                              .split = HV_MODEL_SPLIT_TRAIN, .ct = ct8, .labels = cr->labels,
                              .cam = NULL};
    hv_model_sample_opts so;
    hv_model_sample_opts_default(&so);
    hv_model_batch b;
    HV_CHECK_OK(hv_model_batch_alloc(&b, 1, 256, 256, 40));
    float *comp = malloc(65536 * sizeof(float)), *got = malloc(65536 * sizeof(float));
    double worst = 0, hsum = 0, spread = 0;
    for (int64_t z = 27; z <= 35 && comp && got; z++) {
        float h = 0;
        HV_CHECK_OK(hv_model_sample_at(&it, &so, z, &b, 0));
        HV_CHECK_OK(hv_model_gan_infer(m, &b, comp, NULL, &h));
        HV_CHECK_OK(hv_spine_slice_extract(r.ct, HV_SPINE_SAGITTAL, z, got));
        hsum += h;
        float lo = 1e9f, hi = -1e9f;
        for (size_t k = 0; k < 65536; k++) {
            double d = fabs(((double)comp[k] + 1.0) * 127.5 - got[k]);
            if (!(d <= worst)) worst = d;
            const int64_t row = (int64_t)(k / 256);
            if (row >= b.x1[0] && row < b.x2[0]) lo = fminf(lo, comp[k]), hi = fmaxf(hi, comp[k]);
        }
        spread = fmax(spread, (double)(hi - lo));
    }
    /* the target is 30 rows (k 110..139) on every slice: h = 30 */
    printf("# aot export round trip: max |CT synth - CT gan_infer| %.3g (0..255); mean height "
           "%.2f; generator rows' value spread %.3f\n", worst, r.height_rows, spread);
    HV_CHECK(worst <= 2e-3, "synthesis vs hv_model_gan_infer: %.3g", worst);
    HV_CHECK(spread > 0.05, "the generator's output is flat (%.3g): the comparison is void", spread);
    HV_CHECK(fabs(hsum / 9.0 - 30.0) < 1e-6 && fabs(r.height_rows - 30.0) < 1e-6,
             "heights %g (infer) %g (synthesis), expected 30", hsum / 9.0, r.height_rows);
    HV_CHECK(r.n_sagittal == 9, "%lld slices", (long long)r.n_sagittal);
    free(comp);
    free(got);
    hv_model_batch_free(&b);
    hv_vol_free(ct8);
    hv_model_synth_result_free(&r);
    hv_spine_crop_free(cr);
    hv_model_synth_free(s);
    hv_model_gan_free(m);
}

static void test_batch_vs_loop(hv_nn_backend *be)
{
    const char *ck = tmp_path("bl_ckpt.h5"), *sag = tmp_path("bl_sag.h5"), *cor = tmp_path("bl_cor.h5");
    hv_model_gan *m = make_files(be, ck, sag, cor);
    hv_model_gan_free(m);
    hv_spine_crop *cr = std_crop(19, 20, 21, 22);
    HV_REQUIRE_V(cr, "crop");
    hv_model_synth_result r[2];
    double d[3];
    if (synth_batch_vs_loop(be, sag, cor, HV_MODEL_GEN_AOTGAN, cr, NULL, r, d)) {
        double d0 = max_abs_diff(r[0].ct, cr->ct);
        printf("# aot batch 8 vs 1: max |dCT| %.3g, |dprob| %.3g, |dlabel| %.3g; %lld neighbour "
               "runs, %lld coronal slices; max change of the CT %.3g\n", d[0], d[1], d[2],
               (long long)r[0].n_neighbour_runs, (long long)r[0].n_coronal, d0);
        HV_CHECK(r[0].n_neighbour_runs == r[1].n_neighbour_runs && r[0].n_neighbour_runs > 0 &&
                     r[0].n_coronal == r[1].n_coronal && r[0].n_coronal > 0,
                 "neighbour runs %lld vs %lld, coronal %lld vs %lld",
                 (long long)r[0].n_neighbour_runs, (long long)r[1].n_neighbour_runs,
                 (long long)r[0].n_coronal, (long long)r[1].n_coronal);
        HV_CHECK(d0 > 1, "the synthesis changed nothing (%.3g)", d0);
    }
    hv_model_synth_result_free(&r[0]);
    hv_model_synth_result_free(&r[1]);
    hv_spine_crop_free(cr);
}

static void test_kinds(hv_nn_backend *be)
{
    const char *ck = tmp_path("k_ckpt.h5"), *aot = tmp_path("k_aot.h5"), *ours = tmp_path("k_ours.h5");
    hv_model_gan *ma = make_files(be, ck, aot, NULL);
    HV_REQUIRE_V(ma, "aot gan");
    /* ours: a cnum-2 generator */
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 3, 0);
    HV_CHECK_OK(hv_nn_params_create(&ps));
    HV_CHECK_OK(hv_model_generator_params(ps, 2, &rng));
    const char *kv[] = {"plane", "sagittal"};
    HV_CHECK_OK(hv_nn_checkpoint_save(ours, ps, NULL, kv, 1));
    hv_nn_params_free(ps);
    for (int dir = 0; dir < 2; dir++) {
        hv_model_synth_opts o;
        hv_model_synth_opts_default(&o);
        o.generator = dir ? HV_MODEL_GEN_AOTGAN : HV_MODEL_GEN_HEALTHIVERT;
        hv_model_synth *s = NULL;
        const char *path = dir ? ours : aot;
        hv_status st = hv_model_synth_open(path, NULL, &o, be, &s);
        const char *msg = hv_error_detail();
        HV_CHECK(st == HV_ERR_FORMAT && !s, "%s opened with generator %d: %s", path, o.generator,
                 hv_status_name(st));
        HV_CHECK(strstr(msg, "healthivert") && strstr(msg, "aotgan") &&
                     strstr(msg, dir ? "synthesis.method = aotgan" : "synthesis.method = gan"),
                 "message names both kinds and the method: %s", msg);
        hv_model_synth_free(s);
    }
    /* --validate-model's loader: an AOT model refuses ours, a file of other
     * blocks; our model refuses the AOT file; the AOT file loads */
    hv_model_gan_opts go;
    hv_model_gan_opts_default(&go);
    go.cnum = 2, go.ndf = 4;
    hv_model_gan *mo = NULL, *m2 = NULL;
    HV_CHECK_OK(hv_model_gan_create(&go, be, &rng, &mo));
    aot_opts(&go, 2);
    HV_CHECK_OK(hv_model_gan_create(&go, be, &rng, &m2));
    HV_REQUIRE_V(mo && m2, "models");
    hv_status st = hv_model_gan_load_generator(mo, aot, NULL, 0);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "holds a aotgan generator") &&
                 strstr(hv_error_detail(), "healthivert"), "ours given an AOT file: %s",
             hv_error_detail());
    st = hv_model_gan_load_generator(ma, ours, NULL, 0);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "holds a healthivert generator") &&
                 strstr(hv_error_detail(), "aotgan"), "AOT given our file: %s", hv_error_detail());
    st = hv_model_gan_load_generator(m2, aot, NULL, 0);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "of 1 blocks") &&
                 strstr(hv_error_detail(), "has 2"), "2 blocks given a 1-block file: %s",
             hv_error_detail());
    char plane[32] = "";
    HV_CHECK_OK(hv_model_gan_load_generator(ma, aot, plane, sizeof plane));
    HV_CHECK(!strcmp(plane, "sagittal"), "plane %s", plane);
    hv_model_gan_free(mo);
    hv_model_gan_free(m2);
    hv_model_gan_free(ma);
    /* the method is registered with the gan's run */
    const hv_pipe_synth *a = hv_pipe_synth_find("aotgan"), *g = hv_pipe_synth_find("gan");
    HV_CHECK(a && g && a->run == g->run && a->needs == g->needs, "synthesis method aotgan");
}

int main(void)
{
    const char *dir = hv_test_tmpdir("model_synth_aot");
    HV_REQUIRE(dir, "scratch folder");
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    hv_nn_backend *be = NULL;
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    HV_REQUIRE(be, "backend");
    test_kinds(be);
    test_export_infer(be);
    test_batch_vs_loop(be);
    hv_nn_backend_free(be);
    return hv_test_done();
}
