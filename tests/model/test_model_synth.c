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
 * height head, batch-vs-loop equality, NaN, and the synthesis on a device
 * backend (the fake device of tests/nn/fake_device.h) against the host.
 */
#include "hv_test.h"

#include "hv/model.h"
#include "hv/nn.h"
#include "../nn/fake_device.h"
#include "synth_crop.h"

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

/* ------------------------------------------------------------ crops
 *
 * (make_crop and std_crop: synth_crop.h) */

/* A narrow crop for the neighbour rule: every box over LR [28, 31), so
 * every step runs on sagittal slices 28, 29 (L 3, M int(2.4) = 2, first
 * 28 + (3 - 2) / 2 = 28); 3 x 15 x 30 = 450 px per box and slice. */
static hv_spine_crop *narrow_crop(int extra, int up, int t, int lo)
{
    const box b[] = {
        {extra, 28, 31, 110, 125, 180, 210},
        {up, 28, 31, 110, 125, 145, 175},
        {t, 28, 31, 110, 125, 110, 140},
        {lo, 28, 31, 110, 125, 75, 105},
    };
    return make_crop(t, b, 4);
}

typedef struct trace_rec {
    int n, calls, bad_batch;
    int64_t batch;
    int step[4096], plane[4096], label[4096];
    int64_t z[4096];
} trace_rec;

static void trace_fn(void *ctx, int step, int plane, int label, const int64_t *slices, int64_t n)
{
    trace_rec *t = ctx;
    t->calls++;
    if (n < 1 || n > t->batch) t->bad_batch = 1;
    for (int64_t q = 0; q < n && t->n < 4096; q++) {
        t->step[t->n] = step;
        t->plane[t->n] = plane;
        t->label[t->n] = label;
        t->z[t->n] = slices[q];
        t->n++;
    }
}

/* Append the expected entries step/plane/label for slices z0..z1. */
static void expect(trace_rec *e, int step, int plane, int label, int64_t z0, int64_t z1)
{
    for (int64_t z = z0; z <= z1 && e->n < 4096; z++) {
        e->step[e->n] = step;
        e->plane[e->n] = plane;
        e->label[e->n] = label;
        e->z[e->n] = z;
        e->n++;
    }
}

static void check_trace(const trace_rec *got, const trace_rec *want, const char *what)
{
    int same = got->n == want->n && !got->bad_batch;
    int first = -1;
    for (int q = 0; same && q < got->n; q++)
        if (got->step[q] != want->step[q] || got->plane[q] != want->plane[q] ||
            got->label[q] != want->label[q] || got->z[q] != want->z[q])
            same = 0, first = q;
    HV_CHECK(same, "%s: trace of %d slice runs (%d calls, batch ok %d), expected %d; first "
             "difference at entry %d: got step %d plane %d label %d z %lld", what, got->n,
             got->calls, !got->bad_batch, want->n, first, first >= 0 ? got->step[first] : -1,
             first >= 0 ? got->plane[first] : -1, first >= 0 ? got->label[first] : -1,
             first >= 0 ? (long long)got->z[first] : -1LL);
}

static hv_model_synth *open_synth_thr(hv_nn_backend *be, const char *sag, double thr)
{
    hv_model_synth_opts o;
    hv_model_synth_opts_default(&o);
    o.neighbours = 0;
    o.seg_threshold = thr;
    hv_model_synth *s = NULL;
    hv_status st = hv_model_synth_open(sag, NULL, &o, be, &s);
    HV_CHECK(st == HV_OK, "open %s at threshold %g: %s", sag, thr, hv_error_detail());
    return s;
}

/* Spec 8's step order and slice lists (hand computed at std_crop), both
 * planes, batch 8. */
static void test_steps(hv_nn_backend *be, const char *sag, const char *cor)
{
    hv_model_synth *s = open_synth(be, sag, cor, 8, 1, HV_MODEL_GEN_HEALTHIVERT);
    HV_REQUIRE_V(s, "synth");
    trace_rec *got = calloc(1, sizeof *got), *want = calloc(1, sizeof *want);
    got->batch = 8;
    hv_model_synth_set_trace(s, trace_fn, got);
    hv_spine_crop *cr = std_crop(19, 20, 21, 22);
    hv_model_synth_result r;
    HV_CHECK_OK(hv_model_synth_vertebra(s, cr, NULL, &r));
    expect(want, 0, HV_SPINE_SAGITTAL, 20, 31, 35);
    expect(want, 1, HV_SPINE_SAGITTAL, 22, 27, 33);
    expect(want, 2, HV_SPINE_SAGITTAL, 21, 27, 35);
    expect(want, 0, HV_SPINE_CORONAL, 20, 111, 122);
    expect(want, 1, HV_SPINE_CORONAL, 22, 111, 122);
    expect(want, 2, HV_SPINE_CORONAL, 21, 111, 122);
    check_trace(got, want, "L2 between L1 and L3, both planes");
    /* batches of 8: sagittal 5, 7, 9 runs = 1 + 1 + 2 calls; coronal 3 x 2 */
    HV_CHECK(got->calls == 4 + 6, "%d generator calls, expected 10", got->calls);
    HV_CHECK(r.n_sagittal == 9 && r.n_coronal == 12 && r.n_neighbour_runs == 5 + 7 + 12 + 12,
             "counts %lld %lld %lld", (long long)r.n_sagittal, (long long)r.n_coronal,
             (long long)r.n_neighbour_runs);
    HV_CHECK(!r.too_tall && !r.nonfinite, "flags %d %d", r.too_tall, r.nonfinite);
    int flags_ok = r.synthesised != NULL;
    for (int i = 0; flags_ok && i < 64; i++) flags_ok = r.synthesised[i] == (i >= 27 && i <= 35);
    HV_CHECK(flags_ok, "synthesised flags are LR slices 27..35");
    HV_CHECK(r.height_rows > 0 && r.height_rows <= 40, "height %g", r.height_rows);
    /* voxels no plane wrote are the input's: LR slice 10 at AP 50 (neither) */
    int same = r.ct && r.labels && r.prob;
    for (int64_t k = 0; same && k < 256; k++) {
        size_t q = hv_vol_idx(cr->ct, 10, 50, k);
        same = ((float *)r.ct->data)[q] == ((float *)cr->ct->data)[q] &&
               ((uint8_t *)r.labels->data)[q] == ((uint8_t *)cr->labels->data)[q] &&
               ((float *)r.prob->data)[q] == 0.0f;
    }
    HV_CHECK(same, "voxels outside both planes' slices keep the input");
    hv_model_synth_result_free(&r);
    hv_spine_crop_free(cr);
    hv_model_synth_free(s);

    /* the neighbour rule, sagittal only, batch 2 */
    s = open_synth(be, sag, NULL, 2, 1, HV_MODEL_GEN_HEALTHIVERT);
    HV_REQUIRE_V(s, "synth");
    hv_model_synth_set_trace(s, trace_fn, got);
    struct {
        int extra, up, t, lo;
        int want_up, want_lo; /* labels expected to run, 0 none */
        const char *what;
    } cases[] = {
        {6, 7, 8, 9, 0, 9, "T1: the cervical C7 above is not synthesised"},
        {0, 19, 21, 22, 0, 22, "L2 with T12 above and no L1: a gap, no upper step"},
        {0, 0, 21, 22, 0, 22, "L2 without anything above"},
        {19, 28, 20, 21, 28, 21, "L1 under T13: T13 is its upper neighbour"},
        {22, 23, 24, 25, 23, 25, "L5 above L6: L6 is its lower neighbour"},
        {19, 20, 21, 0, 20, 0, "L2 without L3"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memset(got, 0, sizeof *got);
        memset(want, 0, sizeof *want);
        got->batch = 2;
        cr = narrow_crop(cases[c].extra, cases[c].up, cases[c].t, cases[c].lo);
        HV_CHECK_OK(hv_model_synth_vertebra(s, cr, NULL, &r));
        if (cases[c].want_up) expect(want, 0, HV_SPINE_SAGITTAL, cases[c].want_up, 28, 29);
        if (cases[c].want_lo) expect(want, 1, HV_SPINE_SAGITTAL, cases[c].want_lo, 28, 29);
        expect(want, 2, HV_SPINE_SAGITTAL, cases[c].t, 28, 29);
        check_trace(got, want, cases[c].what);
        int64_t nn = (cases[c].want_up ? 2 : 0) + (cases[c].want_lo ? 2 : 0);
        HV_CHECK(r.n_neighbour_runs == nn && r.n_sagittal == 2 && r.n_coronal == 0,
                 "%s: %lld neighbour runs (expected %lld), %lld sagittal", cases[c].what,
                 (long long)r.n_neighbour_runs, (long long)nn, (long long)r.n_sagittal);
        hv_model_synth_result_free(&r);
        hv_spine_crop_free(cr);
    }

    /* a target of 50 rows is taller than the band: clamped, flagged */
    {
        const box b[] = {{20, 28, 31, 110, 125, 155, 185},
                         {21, 28, 31, 110, 125, 100, 150},
                         {22, 28, 31, 110, 125, 65, 95}};
        cr = make_crop(21, b, 3);
        memset(got, 0, sizeof *got);
        got->batch = 2;
        HV_CHECK_OK(hv_model_synth_vertebra(s, cr, NULL, &r));
        HV_CHECK(r.too_tall == 1 && r.n_sagittal == 2, "too tall: flag %d, %lld slices",
                 r.too_tall, (long long)r.n_sagittal);
        hv_model_synth_result_free(&r);
        hv_spine_crop_free(cr);
    }
    /* no target slice: the label is absent, or only in 25-pixel pieces */
    {
        cr = narrow_crop(19, 20, 0, 22);
        cr->label = 21;
        hv_status st = hv_model_synth_vertebra(s, cr, NULL, &r);
        HV_CHECK(st == HV_ERR_EMPTY && !r.ct, "absent target: %s: %s", hv_status_name(st),
                 hv_error_detail());
        hv_spine_crop_free(cr);
        const box b[] = {{20, 28, 31, 110, 125, 145, 175},
                         {21, 28, 31, 110, 115, 120, 125},
                         {21, 28, 31, 120, 125, 130, 135},
                         {22, 28, 31, 110, 125, 75, 105}};
        cr = make_crop(21, b, 4);
        memset(got, 0, sizeof *got);
        got->batch = 2;
        st = hv_model_synth_vertebra(s, cr, NULL, &r);
        HV_CHECK(st == HV_ERR_EMPTY && !r.ct, "25-pixel pieces: %s: %s", hv_status_name(st),
                 hv_error_detail());
        hv_spine_crop_free(cr);
    }
    free(got);
    free(want);
    hv_model_synth_free(s);
}

/* A CAM volume (F32 in [0, 1]) with a deterministic texture. */
static hv_volume *make_cam(const hv_volume *like)
{
    hv_volume *c = NULL;
    if (hv_vol_create(&c, like->dim, HV_DTYPE_F32, NULL) != HV_OK) return NULL;
    float *v = c->data;
    for (int64_t k = 0; k < like->dim[2]; k++)
        for (int64_t j = 0; j < like->dim[1]; j++)
            for (int64_t i = 0; i < like->dim[0]; i++)
                v[hv_vol_idx(c, i, j, k)] = (float)((i * 7 + j * 3 + k * 5) % 97) / 97.0f;
    return c;
}

/* Batch 8 (partial last batches padded) and batch 1 (the reference's loop)
 * give the same volumes, both planes, neighbours on, with a CAM. */
static void test_batch_vs_loop(hv_nn_backend *be, const char *sag, const char *cor)
{
    hv_spine_crop *cr = std_crop(19, 20, 21, 22);
    hv_volume *cam = cr ? make_cam(cr->ct) : NULL;
    HV_REQUIRE_V(cr && cam, "crop");
    hv_model_synth_result r[2];
    double d[3];
    if (synth_batch_vs_loop(be, sag, cor, HV_MODEL_GEN_HEALTHIVERT, cr, cam, r, d)) {
        printf("# batch 8 vs 1: max |dCT| %.3g, |dprob| %.3g, |dlabel| %.3g\n", d[0], d[1], d[2]);
        HV_CHECK(r[0].height_rows == r[1].height_rows && r[0].n_neighbour_runs == r[1].n_neighbour_runs &&
                     r[0].n_coronal == r[1].n_coronal,
                 "height %g vs %g", r[0].height_rows, r[1].height_rows);
        /* the CAM reached the network: a crop without it differs (narrow
         * crop, target step only: 2 slices) */
        hv_model_synth *s = open_synth(be, sag, NULL, 2, 0, HV_MODEL_GEN_HEALTHIVERT);
        hv_spine_crop *nc = narrow_crop(19, 20, 21, 22);
        hv_model_synth_result a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        if (s && nc) {
            HV_CHECK_OK(hv_model_synth_vertebra(s, nc, cam, &a));
            HV_CHECK_OK(hv_model_synth_vertebra(s, nc, NULL, &b));
        }
        hv_spine_crop_free(nc);
        HV_CHECK(a.ct && b.ct && max_abs_diff(a.ct, b.ct) > 1e-3, "the CAM changes the output");
        hv_model_synth_result_free(&a);
        hv_model_synth_result_free(&b);
        hv_model_synth_free(s);
    }
    hv_model_synth_result_free(&r[0]);
    hv_model_synth_result_free(&r[1]);
    hv_vol_free(cam);
    hv_spine_crop_free(cr);
}

/* compute.device = cuda without a GPU: the synthesis (both planes,
 * neighbours on, with a CAM, batch 2 on the narrow crop) with its generators
 * bound to the fake device, whose memory faults when host code touches it,
 * equals the reference backend exactly (the same reference kernels in the
 * same order: tolerance 0), every op on the device and every op staged. */
static void test_device(const char *sag, const char *cor)
{
    hv_nn_backend *ref = NULL;
    HV_CHECK_OK(hv_nn_backend_create_ref(&ref));
    hv_spine_crop *cr = narrow_crop(19, 20, 21, 22);
    hv_volume *cam = cr ? make_cam(cr->ct) : NULL;
    HV_REQUIRE_V(ref && cr && cam, "reference backend and crop");
    hv_model_synth_result h;
    memset(&h, 0, sizeof h);
    hv_model_synth *s = open_synth(ref, sag, cor, 2, 1, HV_MODEL_GEN_HEALTHIVERT);
    if (s) HV_CHECK_OK(hv_model_synth_vertebra(s, cr, cam, &h));
    hv_model_synth_free(s);
    for (int v = 0; v < 2 && h.ct; v++) {
        hv_nn_backend *dev = NULL;
        HV_CHECK_OK(fake_device_create(&dev, NULL, v == 0 ? -1 : 0));
        hv_model_synth_result d;
        memset(&d, 0, sizeof d);
        s = dev ? open_synth(dev, sag, cor, 2, 1, HV_MODEL_GEN_HEALTHIVERT) : NULL;
        if (s) HV_CHECK_OK(hv_model_synth_vertebra(s, cr, cam, &d));
        hv_model_synth_free(s);
        if (d.ct) {
            double dct = max_abs_diff(h.ct, d.ct), dp = max_abs_diff(h.prob, d.prob),
                   dl = max_abs_diff(h.labels, d.labels);
            printf("# synthesis on the fake device (%s, %llu device kernels): max |host - device| "
                   "CT %g, prob %g, labels %g\n", v == 0 ? "every op" : "every op staged",
                   (unsigned long long)fake_device_state(dev)->n_kernels, dct, dp, dl);
            HV_CHECK(dct == 0 && dp == 0 && dl == 0 && h.height_rows == d.height_rows &&
                         h.n_neighbour_runs == d.n_neighbour_runs && h.n_coronal == d.n_coronal,
                     "device vs host: CT %g, prob %g, labels %g, height %g vs %g", dct, dp, dl,
                     h.height_rows, d.height_rows);
        } else {
            HV_CHECK(0, "no synthesis on the fake device");
        }
        hv_model_synth_result_free(&d);
        hv_nn_backend_free(dev);
    }
    hv_model_synth_result_free(&h);
    hv_vol_free(cam);
    hv_spine_crop_free(cr);
    hv_nn_backend_free(ref);
}

/* The composite's geometry (and the result's band_row) with a saturated height head: the bias of
 * fine_generator.fc_height set to +50 makes p2 = 1, so Hp = 40. The
 * target (image rows [116, 146): x1 116, x2 146, h 30) gives d = 10,
 * x_up = 116 - 5 = 111, x_lo = 151: output rows r < 111 are the input's
 * rows r + 5, rows r >= 151 the input's rows r - 5 (CT truncated to u8 as
 * the generator's input is, labels with their ids), rows [111, 151) hold
 * only 0 or the target. Sagittal, target step only (neighbours off). */
static void test_geometry(hv_nn_backend *be)
{
    hv_nn_params *ps = tiny_params(8);
    HV_REQUIRE_V(ps, "params");
    hv_nn_param *hb = hv_nn_params_find(ps, "fine_generator.fc_height.bias");
    HV_REQUIRE_V(hb, "fc_height.bias");
    hv_nn_param_data(hb)[0] = 50.0f;
    const char *path = tmp_path("p2one.h5");
    HV_CHECK_OK(save_model(path, ps, "sagittal"));
    hv_nn_params_free(ps);
    hv_model_synth *s = open_synth(be, path, NULL, 8, 0, HV_MODEL_GEN_HEALTHIVERT);
    hv_spine_crop *cr = std_crop(19, 20, 21, 22);
    HV_REQUIRE_V(s && cr, "synth, crop");
    hv_model_synth_result r;
    HV_CHECK_OK(hv_model_synth_vertebra(s, cr, NULL, &r));
    HV_REQUIRE_V(r.ct, "result");
    HV_CHECK(r.height_rows == 40.0, "height %g (p2 = 1: 40 rows)", r.height_rows);
    const float *ct = r.ct->data, *pr = r.prob->data, *ict = cr->ct->data;
    const uint8_t *lb = r.labels->data, *il = cr->labels->data;
    long bad_ct = 0, bad_lab = 0, bad_band = 0, bad_out = 0;
    for (int64_t i = 0; i < 64; i++)
        for (int64_t j = 0; j < 256; j++)
            for (int64_t k = 0; k < 256; k++) {
                const size_t q = hv_vol_idx(r.ct, i, j, k);
                if (i < 27 || i > 35) { /* not synthesised: the input, untouched */
                    bad_out += ct[q] != ict[q] || lb[q] != il[q] || pr[q] != 0.0f;
                    continue;
                }
                const int64_t row = 255 - k;
                if (row >= 111 && row < 151) {
                    bad_band += !(lb[q] == 0 || lb[q] == 21) || !(pr[q] >= 0 && pr[q] <= 1) ||
                                !(ct[q] >= 0 && ct[q] <= 255);
                    continue;
                }
                const int64_t ks = row < 111 ? k - 5 : k + 5; /* the input voxel moved here */
                const size_t qs = hv_vol_idx(r.ct, i, j, ks);
                bad_ct += ct[q] != floorf(ict[qs]);
                bad_lab += lb[q] != il[qs] || pr[q] != 0.0f;
            }
    HV_CHECK(bad_ct == 0 && bad_lab == 0, "rows outside [111, 151): %ld CT, %ld label/prob voxels "
             "are not the input moved by 5 rows", bad_ct, bad_lab);
    HV_CHECK(bad_band == 0, "%ld generator-row voxels out of range", bad_band);
    HV_CHECK(bad_out == 0, "%ld voxels of unsynthesised slices changed", bad_out);
    /* band_row: the 40-row window that holds the generator rows at any
     * height, x1 - floor((40 - h) / 2) = 116 - 5 = 111 on the synthesised
     * slices (here equal to the generator rows [111, 151), p2 being 1), -1
     * on the others */
    int win_ok = r.band_row != NULL;
    for (int64_t i = 0; win_ok && i < 64; i++)
        win_ok = r.band_row[i] == ((i >= 27 && i <= 35) ? 111 : -1);
    HV_CHECK(win_ok, "band_row is 111 on LR slices 27..35, -1 elsewhere");
    /* the upper neighbour (L1, rows [81, 111)) is now at rows [76, 106), the
     * lower (L3, rows [151, 181)) at [156, 186): its first row is row 156 */
    HV_CHECK(lb[hv_vol_idx(r.ct, 33, 115, 255 - 76)] == 20 && lb[hv_vol_idx(r.ct, 33, 115, 255 - 75)] == 0 &&
                 lb[hv_vol_idx(r.ct, 33, 115, 255 - 156)] == 22 &&
                 lb[hv_vol_idx(r.ct, 33, 115, 255 - 155)] == 0,
             "neighbours moved apart by 5 rows each");
    hv_model_synth_result_free(&r);
    hv_spine_crop_free(cr);
    hv_model_synth_free(s);
}

/* test_fusion's saturated pair: both models fc_height bias +50 (p2 = 1);
 * the sagittal one allconv17 / allconv18 bias +50 (CT 255, fine_seg 1),
 * the coronal one -50 (CT 0, fine_seg ~1e-22); random weights from seed,
 * seed + 1. Written to path[0] (sagittal) and path[1] (coronal). */
static int saturated_models(const char *const path[2], uint64_t seed)
{
    const char *plane[2] = {"sagittal", "coronal"};
    for (int p = 0; p < 2; p++) {
        hv_nn_params *ps = tiny_params(seed + (uint64_t)p);
        if (!HV_CHECK(ps, "params")) return 0;
        const char *nm[3] = {"fine_generator.fc_height.bias", "fine_generator.allconv17.conv.bias",
                             "fine_generator.allconv18.conv.bias"};
        for (int k = 0; k < 3; k++) {
            hv_nn_param *b = hv_nn_params_find(ps, nm[k]);
            if (!HV_CHECK(b, "%s", nm[k])) {
                hv_nn_params_free(ps);
                return 0;
            }
            hv_nn_param_data(b)[0] = (k == 0 || p == 0) ? 50.0f : -50.0f;
        }
        HV_CHECK_OK(save_model(path[p], ps, plane[p]));
        hv_nn_params_free(ps);
    }
    return 1;
}

/* Fusion of the planes on saturated heads. Both models: fc_height bias +50
 * (p2 = 1: generator rows [111, 151) as in test_geometry, in both planes
 * since the coronal slices show the same rows). Sagittal: allconv17 bias
 * +50 (x_stage2 clamps to 1: CT 255), allconv18 bias +50 (fine_seg 1);
 * coronal: both -50 (CT 0, fine_seg ~1e-22). On the generator rows:
 *   sagittal only (LR 27..35, AP outside 111..122): CT 255, prob 1, label 21;
 *   coronal only (AP 111..122, LR outside 27..35):  CT 0, prob ~0, label 0;
 *   both: CT (255 + 0) / 2 = 127.5, prob (1 + 0) / 2 = 0.5, which is not
 *   > 0.5, so not the target: the sagittal label is the target, the coronal
 *   one 0 -> 0.
 * Off the generator rows every written voxel is the input moved by 5 rows. */
static void test_fusion(hv_nn_backend *be)
{
    const char *path[2] = {tmp_path("fuse_sag.h5"), tmp_path("fuse_cor.h5")};
    if (!saturated_models(path, 30)) return;
    hv_model_synth *s = open_synth(be, path[0], path[1], 8, 0, HV_MODEL_GEN_HEALTHIVERT);
    hv_spine_crop *cr = std_crop(19, 20, 21, 22);
    HV_REQUIRE_V(s && cr, "synth, crop");
    hv_model_synth_result r;
    HV_CHECK_OK(hv_model_synth_vertebra(s, cr, NULL, &r));
    HV_REQUIRE_V(r.ct, "result");
    HV_CHECK(r.n_sagittal == 9 && r.n_coronal == 12, "%lld %lld", (long long)r.n_sagittal,
             (long long)r.n_coronal);
    const float *ct = r.ct->data, *pr = r.prob->data, *ict = cr->ct->data;
    const uint8_t *lb = r.labels->data, *il = cr->labels->data;
    long bad[5] = {0, 0, 0, 0, 0};
    for (int64_t i = 0; i < 64; i++)
        for (int64_t j = 0; j < 256; j++)
            for (int64_t k = 0; k < 256; k++) {
                const size_t q = hv_vol_idx(r.ct, i, j, k);
                const int sag = i >= 27 && i <= 35, cor = j >= 111 && j <= 122;
                const int64_t row = 255 - k;
                if (!sag && !cor) {
                    bad[4] += ct[q] != ict[q] || lb[q] != il[q] || pr[q] != 0.0f;
                } else if (row < 111 || row >= 151) {
                    const size_t qs = hv_vol_idx(r.ct, i, j, row < 111 ? k - 5 : k + 5);
                    bad[3] += ct[q] != floorf(ict[qs]) || lb[q] != il[qs] || pr[q] != 0.0f;
                } else if (sag && cor) {
                    bad[0] += ct[q] != 127.5f || pr[q] != 0.5f || lb[q] != 0;
                } else if (sag) {
                    bad[1] += ct[q] != 255.0f || pr[q] != 1.0f || lb[q] != 21;
                } else {
                    bad[2] += ct[q] != 0.0f || !(pr[q] < 1e-6f) || lb[q] != 0;
                }
            }
    HV_CHECK(bad[0] == 0 && bad[1] == 0 && bad[2] == 0,
             "generator rows: %ld fused, %ld sagittal-only, %ld coronal-only voxels wrong", bad[0],
             bad[1], bad[2]);
    HV_CHECK(bad[3] == 0, "%ld written voxels off the generator rows are not the input moved", bad[3]);
    HV_CHECK(bad[4] == 0, "%ld voxels neither plane wrote changed", bad[4]);
    hv_model_synth_result_free(&r);
    hv_spine_crop_free(cr);
    hv_model_synth_free(s);
}

/* The segmentation threshold (opts.seg_threshold).
 * 1. By hand, on test_fusion's saturated models (sagittal fine_seg 1,
 *    coronal ~1e-22, fused mean exactly 0.5): at threshold 0.49 the fused
 *    voxels of the generator rows become the target (0.5 > 0.49), where at
 *    0.5 they are 0; sagittal-only voxels stay 21 and coronal-only ones 0.
 * 2. On a random cnum-2 model (sagittal only, target only, so the
 *    probabilities do not depend on the threshold): at a threshold T below
 *    0.5 every synthesised voxel is the target exactly where its stored
 *    probability exceeds T, the probabilities equal the 0.5 run's, and the
 *    target grows by the voxels whose probability lies in (T, 0.5], which
 *    must exist (else the case proves nothing).
 * 3. A threshold outside (0, 1) is refused at open. */
static void test_seg_threshold(hv_nn_backend *be)
{
    const char *path[2] = {tmp_path("thr_sag.h5"), tmp_path("thr_cor.h5")};
    if (!saturated_models(path, 40)) return;
    hv_spine_crop *cr = std_crop(19, 20, 21, 22);
    HV_REQUIRE_V(cr, "crop");
    const double thr[2] = {0.5, 0.49};
    const int want_fused[2] = {0, 21};
    for (int t = 0; t < 2; t++) {
        hv_model_synth_opts o;
        hv_model_synth_opts_default(&o);
        o.neighbours = 0; /* as test_fusion */
        o.seg_threshold = thr[t];
        hv_model_synth *s = NULL;
        HV_CHECK(hv_model_synth_open(path[0], path[1], &o, be, &s) == HV_OK, "open: %s",
                 hv_error_detail());
        HV_REQUIRE_V(s, "synth");
        hv_model_synth_result r;
        HV_CHECK_OK(hv_model_synth_vertebra(s, cr, NULL, &r));
        HV_REQUIRE_V(r.labels, "result");
        const uint8_t *lb = r.labels->data;
        long bad[3] = {0, 0, 0};
        for (int64_t i = 0; i < 64; i++)
            for (int64_t j = 0; j < 256; j++)
                for (int64_t k = 255 - 150; k <= 255 - 111; k++) {
                    const int sag = i >= 27 && i <= 35, cor = j >= 111 && j <= 122;
                    const uint8_t l = lb[hv_vol_idx(r.labels, i, j, k)];
                    if (sag && cor) bad[2] += l != want_fused[t];
                    else if (sag) bad[0] += l != 21;
                    else if (cor) bad[1] += l != 0;
                }
        HV_CHECK(bad[0] == 0 && bad[1] == 0 && bad[2] == 0,
                 "threshold %g: %ld sagittal-only (want 21), %ld coronal-only (want 0), %ld fused "
                 "(want %d) labels wrong", thr[t], bad[0], bad[1], bad[2], want_fused[t]);
        hv_model_synth_result_free(&r);
        hv_model_synth_free(s);
    }

    /* 2: a random model */
    hv_nn_params *ps = tiny_params(44);
    HV_REQUIRE_V(ps, "params");
    const char *rnd = tmp_path("thr_rnd.h5");
    HV_CHECK_OK(save_model(rnd, ps, "sagittal"));
    hv_nn_params_free(ps);
    hv_model_synth_result r[2];
    memset(r, 0, sizeof r);
    const double T = 0.45;
    for (int t = 0; t < 2; t++) {
        hv_model_synth *s = open_synth_thr(be, rnd, t ? T : 0.5);
        HV_REQUIRE_V(s, "synth");
        HV_CHECK_OK(hv_model_synth_vertebra(s, cr, NULL, &r[t]));
        hv_model_synth_free(s);
        HV_REQUIRE_V(r[t].labels, "result");
    }
    long wrong = 0, grown = 0, between = 0, pdiff = 0, synth = 0;
    const float *p0 = r[0].prob->data, *p1 = r[1].prob->data;
    const uint8_t *l0 = r[0].labels->data, *l1 = r[1].labels->data;
    for (int64_t i = 0; i < 64; i++) {
        if (!r[1].synthesised[i]) continue;
        for (int64_t j = 0; j < 256; j++)
            for (int64_t k = 0; k < 256; k++) {
                const size_t q = hv_vol_idx(r[1].labels, i, j, k);
                synth++;
                wrong += (l1[q] == 21) != (p1[q] > (float)T);
                pdiff += p0[q] != p1[q];
                grown += (l1[q] == 21) - (l0[q] == 21);
                between += p1[q] > (float)T && p1[q] <= 0.5f;
            }
    }
    HV_CHECK(synth > 0 && between > 0, "%ld synthesised voxels, %ld with a probability in "
             "(%g, 0.5]", synth, between, T);
    HV_CHECK(wrong == 0, "threshold %g: %ld synthesised voxels whose label disagrees with "
             "probability > %g", T, wrong, T);
    HV_CHECK(pdiff == 0, "%ld probabilities depend on the threshold", pdiff);
    HV_CHECK(grown == between, "the target grew by %ld voxels, %ld have a probability in "
             "(%g, 0.5]", grown, between, T);
    hv_model_synth_result_free(&r[0]);
    hv_model_synth_result_free(&r[1]);

    /* 3 */
    const double refused[4] = {0.0, 1.0, -0.1, NAN};
    for (int t = 0; t < 4; t++) {
        hv_model_synth_opts o;
        hv_model_synth_opts_default(&o);
        o.seg_threshold = refused[t];
        hv_model_synth *s = NULL;
        hv_status st = hv_model_synth_open(path[0], NULL, &o, be, &s);
        HV_CHECK(st == HV_ERR_ARG && !s && strstr(hv_error_detail(), "threshold"),
                 "threshold %g refused (status %d: %s)", refused[t], (int)st, hv_error_detail());
        hv_error_clear();
        hv_model_synth_free(s);
    }
    hv_spine_crop_free(cr);
}

/* NaN in a weight: the result is flagged, not an error. */
static void test_nan(hv_nn_backend *be)
{
    hv_nn_params *ps = tiny_params(9);
    HV_REQUIRE_V(ps, "params");
    hv_nn_param *w = hv_nn_params_find(ps, "fine_generator.allconv16.conv.weight_orig");
    HV_REQUIRE_V(w, "weight");
    hv_nn_param_data(w)[3] = NAN;
    const char *path = tmp_path("nan.h5");
    HV_CHECK_OK(save_model(path, ps, "sagittal"));
    hv_nn_params_free(ps);
    hv_model_synth *s = open_synth(be, path, NULL, 4, 1, HV_MODEL_GEN_HEALTHIVERT);
    hv_spine_crop *cr = narrow_crop(19, 20, 21, 22);
    HV_REQUIRE_V(s && cr, "synth, crop");
    hv_model_synth_result r;
    hv_status st = hv_model_synth_vertebra(s, cr, NULL, &r);
    HV_CHECK(st == HV_OK && r.nonfinite == 1 && r.ct && r.labels && r.prob,
             "NaN weight: %s (%s), nonfinite %d", hv_status_name(st), hv_error_detail(), r.nonfinite);
    size_t nf = 0;
    if (r.ct) hv_vol_range(r.ct, &(double){0}, &(double){0}, &nf);
    HV_CHECK(nf == 0, "%zu non-finite CT voxels were written", nf);
    hv_model_synth_result_free(&r);
    hv_spine_crop_free(cr);
    hv_model_synth_free(s);
}

/* Export ties inference to training's forward: a training checkpoint
 * (hv_model_gan_save, cnum 2, ndf 4) exported and opened gives, slice by
 * slice, what hv_model_gan_infer gives on the batch that the training
 * sampler (hv_model_sample_at) builds from the same crop, CAM included. */
static void test_export_infer(hv_nn_backend *be)
{
    hv_model_gan_opts go;
    hv_model_gan_opts_default(&go);
    go.cnum = 2;
    go.ndf = 4;
    hv_rng rng;
    hv_rng_seed(&rng, 21, 0);
    hv_model_gan *m = NULL;
    HV_CHECK_OK(hv_model_gan_create(&go, be, &rng, &m));
    HV_REQUIRE_V(m, "gan");
    HV_CHECK_OK(hv_model_generator_sn_warmup(hv_model_gan_params(m, 0), 2));
    const char *ck = tmp_path("ei_ckpt.h5"), *mf = tmp_path("ei_model.h5");
    HV_CHECK_OK(hv_model_gan_save(m, ck, NULL, 0));
    HV_CHECK_OK(hv_model_synth_export(ck, "sagittal", mf));
    hv_model_synth *s = open_synth(be, mf, NULL, 4, 0, HV_MODEL_GEN_HEALTHIVERT);
    hv_spine_crop *cr = std_crop(19, 20, 21, 22);
    hv_volume *cam = cr ? make_cam(cr->ct) : NULL, *ct8 = NULL, *cam8 = NULL;
    HV_REQUIRE_V(s && cr && cam, "synth, crop");
    hv_model_synth_result r;
    HV_CHECK_OK(hv_model_synth_vertebra(s, cr, cam, &r));
    HV_REQUIRE_V(r.ct, "result");
    /* the training item: u8 CT (spec 3.4), u8 CAM = CAM * 255 truncated */
    HV_CHECK_OK(hv_model_trainset_ct_u8(cr->ct, &ct8));
    HV_CHECK_OK(hv_vol_create(&cam8, cam->dim, HV_DTYPE_U8, NULL));
    HV_REQUIRE_V(ct8 && cam8, "u8 volumes");
    for (size_t q = 0; q < cam->nvox; q++)
        ((uint8_t *)cam8->data)[q] = (uint8_t)floorf(((float *)cam->data)[q] * 255.0f);
    hv_model_train_item it = {.case_id = "synth", .label = 21, .grade = 0,
                              .split = HV_MODEL_SPLIT_TRAIN, .ct = ct8, .labels = cr->labels,
                              .cam = cam8};
    hv_model_sample_opts so;
    hv_model_sample_opts_default(&so);
    hv_model_batch b;
    HV_CHECK_OK(hv_model_batch_alloc(&b, 1, 256, 256, 40));
    float *comp = malloc(65536 * sizeof(float)), *got = malloc(65536 * sizeof(float));
    double worst = 0, hsum = 0;
    for (int64_t z = 27; z <= 35 && comp && got; z++) {
        float h = 0;
        HV_CHECK_OK(hv_model_sample_at(&it, &so, z, &b, 0));
        HV_CHECK_OK(hv_model_gan_infer(m, &b, comp, NULL, &h));
        HV_CHECK_OK(hv_spine_slice_extract(r.ct, HV_SPINE_SAGITTAL, z, got));
        hsum += h;
        for (size_t k = 0; k < 65536; k++) {
            double d = fabs(((double)comp[k] + 1.0) * 127.5 - got[k]);
            if (!(d <= worst)) worst = d;
        }
    }
    printf("# export round trip: max |CT synth - CT gan_infer| %.3g (0..255)\n", worst);
    HV_CHECK(worst <= 2e-3, "synthesis vs hv_model_gan_infer: %.3g", worst);
    HV_CHECK_CLOSE(r.height_rows, hsum / 9.0, 1e-4, "mean restored height");
    HV_CHECK(r.n_sagittal == 9, "%lld slices", (long long)r.n_sagittal);
    free(comp);
    free(got);
    hv_model_batch_free(&b);
    hv_vol_free(ct8);
    hv_vol_free(cam8);
    hv_vol_free(cam);
    hv_model_synth_result_free(&r);
    hv_spine_crop_free(cr);
    hv_model_synth_free(s);
    hv_model_gan_free(m);
}

/* Parts (argv[1]), one CTest entry each so that each fits its timeout
 * under sanitizers: files, steps, batch, geometry (with fusion and NaN),
 * export, device; no argument runs them all. */
int main(int argc, char **argv)
{
    const char *part = argc > 1 ? argv[1] : "all";
    const int all = !strcmp(part, "all");
    char name[64];
    snprintf(name, sizeof name, "model_synth_%s", part);
    const char *dir = hv_test_tmpdir(name);
    HV_REQUIRE(dir, "scratch folder");
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    hv_nn_backend *be = NULL;
    HV_CHECK_OK(hv_nn_backend_create_cpu(&be));
    HV_REQUIRE(be, "backend");
    if (all || !strcmp(part, "files")) {
        test_open(be);
        test_export_file(be);
    }
    if (all || !strcmp(part, "steps") || !strcmp(part, "batch") || !strcmp(part, "device")) {
        hv_nn_params *ps = tiny_params(5);
        HV_REQUIRE(ps, "params");
        const char *sag = tmp_path("run_sag.h5"), *cor = tmp_path("run_cor.h5");
        HV_CHECK_OK(save_model(sag, ps, "sagittal"));
        HV_CHECK_OK(save_model(cor, ps, "coronal"));
        hv_nn_params_free(ps);
        if (all || !strcmp(part, "steps")) test_steps(be, sag, cor);
        if (all || !strcmp(part, "batch")) test_batch_vs_loop(be, sag, cor);
        if (all || !strcmp(part, "device")) test_device(sag, cor);
    }
    if (all || !strcmp(part, "geometry")) {
        test_geometry(be);
        test_fusion(be);
        test_seg_threshold(be);
        test_nan(be);
    }
    if (all || !strcmp(part, "export")) test_export_infer(be);
    hv_nn_backend_free(be);
    return hv_test_done();
}
