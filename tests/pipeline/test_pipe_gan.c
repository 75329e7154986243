/*
 * test_pipe_gan.c: the `gan` and `mask` synthesis methods of the pipeline
 * (src/pipeline/synth_gan.c).
 *
 * Expected values come from the phantom's analytic truth: a phantom case is
 * rendered twice from one seed, once with its fractures and once with
 * fracture_rate 0 (the fracture draws have their own random stream, so the
 * anatomy is the same and only the fractured bodies differ: the healthy
 * render is the perfect pseudo-healthy vertebra). Then
 *  - mask: the healthy render as a scanner-grid pseudo-healthy mask gives
 *    the phantom's healthy heights (healthy_mm) as h_syn, within 1 mm at 2 mm
 *    voxels (the RHLV's other half, h_ori, is the robust measurement's own,
 *    tested in tests/measure);
 *  - gan geometry (hv_pipe_gan_measure): the healthy render straightened
 *    through the case's own map and cropped like the target is what a
 *    perfect generator would return; pasted back, unstraightened and measured
 *    it must give the same truth (robust mode), and the reference mode's
 *    column counts must equal hv_measure_rhlv_reference on the two crops
 *    laid out by hand here;
 *  - gan end to end with a tiny random generator (argv[1] makes it): every
 *    vertebra is either synthesized (finite heights, the original's map
 *    grid, h_ori untouched) or flagged synth_fallback; crops kept per
 *    setting; the NIfTI files in the reference's layout with the crop's world
 *    positions; a NaN generator makes every vertebra fall back (baseline
 *    values, or NaN with no_synth).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/pipeline/pipeline_internal.h"
#include "hv/io.h"
#include "hv/model.h"
#include "hv/phantom.h"
#include "hv/pipeline.h"
#include "hv_test.h"

static char g_dir[900];
static const char *g_make_model;

static hv_phantom_opts phantom_opts(double fracture_rate)
{
    hv_phantom_opts po;
    hv_phantom_opts_default(&po);
    po.first_label = 18; /* T11 .. L2: 4 vertebrae, 2 mm as tests/mpi's cohort */
    po.last_label = 21;
    po.spacing[0] = po.spacing[1] = po.spacing[2] = 2.0;
    po.fracture_rate = fracture_rate;
    po.seed = 5;
    po.scoliosis_rate = 0;
    return po;
}

static int make_model(const char *path, const char *extra)
{
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "'%s' '%s' %s", g_make_model, path, extra ? extra : "");
    return system(cmd);
}

/* One case's pipeline run into s (crops and grades wanted). */
static hv_status run_case(const hv_case *cs, const hv_pipe_opts *o, hv_pipe_state *s)
{
    hv_pipe_plan p;
    hv_status st = hv_pipe_plan_make(hv_pipe_default(), o, HV_PIPE_GRADES | HV_PIPE_CROPS, &p);
    if (st != HV_OK) return st;
    hv_pipe_state_init(s, cs);
    return hv_pipe_run(&p, s);
}

static const hv_phantom_vert *truth_of(const hv_phantom_case *pc, int label)
{
    for (int k = 0; k < pc->n_vert; k++)
        if (pc->vert[k].label == label) return &pc->vert[k];
    return NULL;
}

/* What a perfect generator returns for crop cr: the healthy render's
 * straightened, de-pedicled labels in cr's window. */
static hv_volume *healthy_crop(const hv_pipe_state *s, const hv_volume *healthy,
                               const hv_spine_crop *cr)
{
    hv_volume *st = NULL, *out = NULL;
    if (hv_spine_straighten(s->spine->map, healthy, HV_INTERP_NEAREST, 0, &st) != HV_OK) return NULL;
    hv_volume *u8 = NULL;
    if (hv_vol_convert(st, HV_DTYPE_U8, &u8) != HV_OK || hv_spine_depedicle(s->spine->map, u8, NULL) != HV_OK ||
        hv_vol_clone(cr->labels, &out) != HV_OK) {
        hv_vol_free(st);
        hv_vol_free(u8);
        return NULL;
    }
    const int64_t *d = out->dim;
    for (int64_t k = 0; k < d[2]; k++)
        for (int64_t j = 0; j < d[1]; j++)
            for (int64_t i = 0; i < d[0]; i++) {
                int64_t a = i + cr->offset[0], b = j + cr->offset[1], c = k + cr->offset[2];
                double v = 0;
                if (a >= 0 && b >= 0 && c >= 0 && a < u8->dim[0] && b < u8->dim[1] && c < u8->dim[2])
                    v = hv_vol_get(u8, hv_vol_idx(u8, a, b, c));
                hv_vol_set(out, hv_vol_idx(out, i, j, k), v);
            }
    hv_vol_free(st);
    hv_vol_free(u8);
    return out;
}

/* The reference's layout of a crop, by hand: (r, c, s) = (rows from
 * cranial, AP from anterior, LR), 1 where the crop holds label. */
static uint8_t *ref_layout(const hv_volume *v, int label)
{
    const int64_t S = v->dim[0], C = v->dim[1], R = v->dim[2];
    uint8_t *o = malloc((size_t)(S * C * R));
    if (!o) return NULL;
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++)
                o[r + R * (c + C * s)] =
                    lrint(hv_vol_get(v, hv_vol_idx(v, s, C - 1 - c, R - 1 - r))) == label;
    return o;
}

/* ----------------------------------------- truth: mask and gan geometry */

static void check_truth(const hv_case *cs, const hv_phantom_case *pc, const char *healthy_path)
{
    hv_volume *healthy = NULL;
    HV_REQUIRE_V(hv_io_nifti_read(healthy_path, HV_DTYPE_I16, NULL, &healthy, NULL) == HV_OK,
                 "healthy mask: %s", hv_error_detail());
    hv_pipe_opts o;
    hv_pipe_state s, sm;
    hv_pipe_opts_default(&o);
    o.synth_mask = healthy;
    o.synth = "mask";
    HV_REQUIRE_V(run_case(cs, &o, &sm) == HV_OK, "mask run: %s", hv_error_detail());
    o.synth = "baseline";
    o.synth_mask = NULL;
    HV_REQUIRE_V(run_case(cs, &o, &s) == HV_OK, "baseline run: %s", hv_error_detail());
    HV_REQUIRE_V(s.m->n == sm.m->n, "same vertebrae");
    int n_checked = 0, n_fractured = 0;
    for (size_t i = 0; i < s.m->n; i++) {
        hv_vert_measure *v = &s.m->v[i];
        const hv_vert_measure *vm = &sm.m->v[i];
        const hv_phantom_vert *t = truth_of(pc, v->label);
        const hv_spine_crop *cr = hv_pipe_crop_find(&s, v->label);
        if (!t || t->truncated || (v->flags & HV_MEAS_TRUNCATED) || !cr || !v->ori_map.h) continue;
        n_checked++;
        n_fractured += t->grade > 0;
        /* mask: the healthy render measured with the original's rays gives
         * the healthy heights within 1 mm (2 mm voxels; seen: 0.8 mm at
         * most), and RHLV is (h_syn - h_ori) / h_syn of those */
        for (int r = HV_REG_ANT; r <= HV_REG_POST; r++) {
            HV_CHECK(fabs(vm->h_syn[r] - t->healthy_mm[r - 1]) < 1.0,
                     "mask: label %d region %d h_syn %.3f, healthy truth %.3f", v->label, r,
                     vm->h_syn[r], t->healthy_mm[r - 1]);
            HV_CHECK(fabs(vm->rhlv[r] - (vm->h_syn[r] - vm->h_ori[r]) / vm->h_syn[r]) < 1e-12,
                     "mask: label %d region %d rhlv from the heights", v->label, r);
            HV_CHECK(vm->h_ori[r] == v->h_ori[r], "mask: h_ori untouched (label %d)", v->label);
        }
        /* gan geometry: the perfect generator's crop, synthesized on the
         * central 80 % of the target's LR extent as the generator would be */
        hv_volume *syn = healthy_crop(&s, healthy, cr);
        HV_REQUIRE_V(syn, "healthy crop: %s", hv_error_detail());
        hv_spine_slice_range rg;
        HV_REQUIRE_V(hv_spine_slice_range_get(cr->labels, v->label, HV_SPINE_SAGITTAL, &rg) == HV_OK,
                     "slice range");
        uint8_t *done = calloc((size_t)cr->labels->dim[0], 1);
        HV_REQUIRE_V(done, "oom");
        for (int64_t z = rg.first; z < rg.first + rg.count; z++) done[z] = 1;
        char why[512];
        hv_vert_measure keep_ori;
        memcpy(keep_ori.h_ori, v->h_ori, sizeof v->h_ori);
        HV_CHECK_OK(hv_pipe_gan_measure(&o, &s, cr, syn, done, v, why, sizeof why));
        HV_CHECK(why[0] == 0, "gan geometry label %d usable: %s", v->label, why);
        for (int r = HV_REG_ANT; r <= HV_REG_POST; r++)
            fprintf(stderr, "# label %d region %d: h_syn gan %.3f, mask %.3f, truth %.3f\n", v->label,
                    r, v->h_syn[r], vm->h_syn[r], t->healthy_mm[r - 1]);
        /* the round trip (straighten, crop, paste, unstraighten) moves the
         * healthy shape by at most the nearest-neighbour resampling: the
         * same rays on it give the mask's heights within 0.2 mm (seen: equal to
         * 1e-3 mm at 2 mm voxels), and the
         * healthy truth within 1 mm */
        for (int r = HV_REG_ANT; r <= HV_REG_POST; r++) {
            HV_CHECK(fabs(v->h_syn[r] - vm->h_syn[r]) < 0.2 &&
                         fabs(v->h_syn[r] - t->healthy_mm[r - 1]) < 1.0,
                     "gan geometry: label %d region %d h_syn %.3f, mask %.3f, healthy truth %.3f",
                     v->label, r, v->h_syn[r], vm->h_syn[r], t->healthy_mm[r - 1]);
            HV_CHECK(v->h_ori[r] == keep_ori.h_ori[r], "robust mode keeps h_ori (label %d)", v->label);
        }
        HV_CHECK(v->syn_map.h && v->syn_map.na == v->ori_map.na && v->syn_map.nl == v->ori_map.nl,
                 "syn_map on the original's grid (label %d)", v->label);
        /* reference mode: the column counts of the two crops, laid out by hand */
        o.rhlv_reference = 1;
        HV_CHECK_OK(hv_pipe_gan_measure(&o, &s, cr, syn, done, v, why, sizeof why));
        o.rhlv_reference = 0;
        uint8_t *a = ref_layout(cr->labels, v->label), *b = ref_layout(syn, v->label);
        HV_REQUIRE_V(a && b, "oom");
        const int64_t rdim[3] = {cr->labels->dim[2], cr->labels->dim[1], cr->labels->dim[0]};
        hv_rhlv_ref rr;
        HV_CHECK_OK(hv_measure_rhlv_reference(a, b, rdim, 0.7, &rr));
        for (int r = 0; r < HV_REG_COUNT; r++)
            HV_CHECK(v->rhlv[r] == rr.rhlv[r] && v->h_ori[r] == rr.h_ori[r] &&
                         v->h_syn[r] == rr.h_syn[r],
                     "reference mode label %d region %d: %.5f vs %.5f", v->label, r, v->rhlv[r],
                     rr.rhlv[r]);
        free(a);
        free(b);
        free(done);
        hv_vol_free(syn);
    }
    HV_CHECK(n_checked >= 3 && n_fractured >= 1, "%d vertebrae checked against the truth, %d fractured",
             n_checked, n_fractured);
    hv_pipe_state_clear(&s);
    hv_pipe_state_clear(&sm);
    hv_vol_free(healthy);
}

/* ----------------------------------------------------- gan end to end */

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void check_gan(const hv_case *cs)
{
    char model[1200], nanm[1200], nifti[1200];
    snprintf(model, sizeof model, "%s/tiny.h5", g_dir);
    snprintf(nanm, sizeof nanm, "%s/nan.h5", g_dir);
    snprintf(nifti, sizeof nifti, "%s/nifti", g_dir);
    HV_REQUIRE_V(make_model(model, "--seed 3 --seg-bias 8") == 0, "tiny model");
    HV_REQUIRE_V(make_model(nanm, "--seed 3 --nan") == 0, "NaN model");
    hv_nn_backend *be = NULL;
    hv_model_synth *gan = NULL, *gnan = NULL;
    hv_model_synth_opts so;
    hv_model_synth_opts_default(&so);
    so.neighbours = 0; /* the target step only: a third of the generator's work (the step
                          order is tests/model's; what is checked here does not need it) */
    HV_REQUIRE_V(hv_nn_backend_create_cpu(&be) == HV_OK, "backend");
    HV_REQUIRE_V(hv_model_synth_open(model, NULL, &so, be, &gan) == HV_OK, "open: %s", hv_error_detail());
    HV_REQUIRE_V(hv_model_synth_open(nanm, NULL, &so, be, &gnan) == HV_OK, "open NaN: %s",
                 hv_error_detail());

    hv_pipe_opts o;
    hv_pipe_plan p;
    hv_pipe_opts_default(&o);
    o.synth = "gan";
    HV_CHECK(hv_pipe_plan_make(hv_pipe_default(), &o, HV_PIPE_GRADES, &p) == HV_ERR_ARG &&
                 strstr(hv_error_detail(), "needs a model"),
             "gan without a model refused by the plan: %s", hv_error_detail());
    /* gan needs the crops: the plan switches straighten and crop on */
    o.synth_model = gan;
    HV_CHECK_OK(hv_pipe_plan_make(hv_pipe_default(), &o, HV_PIPE_GRADES, &p));
    HV_CHECK((p.required & (HV_PIPE_CROPS | HV_PIPE_SPINE)) == (HV_PIPE_CROPS | HV_PIPE_SPINE),
             "gan: crops and spine required (0x%x)", p.required);

    hv_pipe_state sb, sg, sn;
    o.synth = "baseline";
    o.synth_model = NULL;
    HV_REQUIRE_V(run_case(cs, &o, &sb) == HV_OK, "baseline: %s", hv_error_detail());
    o.synth = "gan";
    o.synth_model = gan;
    o.synth_crops = 2;
    o.synth_nifti_dir = nifti;
    HV_REQUIRE_V(run_case(cs, &o, &sg) == HV_OK, "gan: %s", hv_error_detail());
    HV_REQUIRE_V(sg.m->n == sb.m->n && sg.n_syn == sg.m->n && sg.syn_labels && sg.syn_ct,
                 "gan: %zu vertebrae, %zu crops kept", sg.m->n, sg.n_syn);
    int n_syn = 0;
    for (size_t i = 0; i < sg.m->n; i++) {
        const hv_vert_measure *v = &sg.m->v[i], *b = &sb.m->v[i];
        for (int r = 0; r < HV_REG_COUNT; r++)
            HV_CHECK(v->h_ori[r] == b->h_ori[r] || (isnan(v->h_ori[r]) && isnan(b->h_ori[r])),
                     "gan keeps h_ori (label %d region %d)", v->label, r);
        if (v->flags & HV_MEAS_SYNTH_FALLBACK) {
            HV_CHECK(!sg.syn_labels[i] && !sg.syn_ct[i], "fallback label %d: no crop kept", v->label);
            for (int r = 0; r < HV_REG_COUNT; r++)
                HV_CHECK(v->rhlv[r] == b->rhlv[r] || (isnan(v->rhlv[r]) && isnan(b->rhlv[r])),
                         "fallback label %d: the baseline's RHLV", v->label);
            continue;
        }
        n_syn++;
        for (int r = HV_REG_ANT; r <= HV_REG_POST; r++)
            HV_CHECK(isfinite(v->h_syn[r]) && isfinite(v->rhlv[r]),
                     "synthesized label %d region %d: h_syn %g rhlv %g", v->label, r, v->h_syn[r],
                     v->rhlv[r]);
        const hv_spine_crop *cr = hv_pipe_crop_find(&sg, v->label);
        const hv_volume *sl = sg.syn_labels[i], *sc = sg.syn_ct[i];
        HV_REQUIRE_V(cr && sl && sc, "label %d: crop and synthesized crops", v->label);
        HV_CHECK(sl->dtype == HV_DTYPE_U8 && sc->dtype == HV_DTYPE_U8 &&
                     !memcmp(sl->dim, cr->labels->dim, sizeof sl->dim) &&
                     !memcmp(sc->dim, cr->labels->dim, sizeof sc->dim),
                 "label %d: U8 crops of the crop's dims", v->label);
        /* the NIfTI files: reference layout, world positions kept, zeros
         * off the synthesized slices, the synthesized labels on them */
        char pl[1400], pc[1400];
        snprintf(pl, sizeof pl, "%s/label_fake/%s_%d.nii.gz", nifti, cs->id, v->label);
        snprintf(pc, sizeof pc, "%s/CT_fake/%s_%d.nii.gz", nifti, cs->id, v->label);
        HV_CHECK(file_exists(pc), "%s written", pc);
        hv_volume *f = NULL;
        hv_nifti_info info;
        if (hv_io_nifti_read(pl, HV_DTYPE_F32, NULL, &f, &info) != HV_OK) {
            HV_CHECK(0, "%s readable: %s", pl, hv_error_detail());
            continue;
        }
        const int64_t S = sl->dim[0], C = sl->dim[1], R = sl->dim[2];
        HV_CHECK(f->dim[0] == R && f->dim[1] == C && f->dim[2] == S, "label_fake dims %lld %lld %lld",
                 (long long)f->dim[0], (long long)f->dim[1], (long long)f->dim[2]);
        HV_CHECK(info.datatype == 64, "label_fake is float64 on disk (datatype %d)", info.datatype);
        const int64_t pts[3][3] = {{0, 0, 0}, {R - 1, 17, S - 1}, {100, 130, 30}};
        for (int q = 0; q < 3; q++) {
            double a[3] = {(double)pts[q][0], (double)pts[q][1], (double)pts[q][2]};
            double b2[3] = {(double)pts[q][2], (double)(C - 1 - pts[q][1]), (double)(R - 1 - pts[q][0])};
            double wa[3], wb[3];
            hv_affine_apply((const double(*)[4])f->affine, a, wa);
            hv_affine_apply((const double(*)[4])cr->labels->affine, b2, wb);
            HV_CHECK(fabs(wa[0] - wb[0]) + fabs(wa[1] - wb[1]) + fabs(wa[2] - wb[2]) < 1e-3,
                     "label_fake voxel (%lld %lld %lld) at the crop's world position",
                     (long long)pts[q][0], (long long)pts[q][1], (long long)pts[q][2]);
        }
        int64_t n_same = 0, n_zero = 0, n_bad = 0;
        for (int64_t s2 = 0; s2 < S; s2++) {
            int zero = 1, same = 1;
            for (int64_t c = 0; c < C; c++)
                for (int64_t r = 0; r < R; r++) {
                    double fv = hv_vol_get(f, hv_vol_idx(f, r, c, s2));
                    double cv = hv_vol_get(sl, hv_vol_idx(sl, s2, C - 1 - c, R - 1 - r));
                    zero &= fv == 0;
                    same &= fv == cv;
                }
            if (same && !zero) n_same++;
            else if (zero) n_zero++;
            else n_bad++;
        }
        HV_CHECK(n_bad == 0 && n_same > 5 && n_zero > 5,
                 "label_fake slices: %lld synthesized, %lld zero, %lld neither", (long long)n_same,
                 (long long)n_zero, (long long)n_bad);
        hv_vol_free(f);
    }
    HV_CHECK(n_syn >= 1, "%d vertebrae synthesized by the tiny model", n_syn);

    /* a NaN generator: every vertebra falls back, flagged */
    o.synth_model = gnan;
    o.synth_crops = 1;
    o.synth_nifti_dir = NULL;
    HV_REQUIRE_V(run_case(cs, &o, &sn) == HV_OK, "NaN gan: %s", hv_error_detail());
    for (size_t i = 0; i < sn.m->n; i++) {
        const hv_vert_measure *v = &sn.m->v[i], *b = &sb.m->v[i];
        HV_CHECK(v->flags & HV_MEAS_SYNTH_FALLBACK, "NaN model: label %d flagged", v->label);
        HV_CHECK(sn.syn_labels && !sn.syn_labels[i], "NaN model: no crop kept");
        for (int r = 0; r < HV_REG_COUNT; r++)
            HV_CHECK((v->h_syn[r] == b->h_syn[r] && v->rhlv[r] == b->rhlv[r]) ||
                         (isnan(v->rhlv[r]) && isnan(b->rhlv[r])),
                     "NaN model, fallback baseline: label %d region %d %g vs %g", v->label, r,
                     v->rhlv[r], b->rhlv[r]);
    }
    hv_pipe_state_clear(&sn);
    o.synth_fallback = 0;
    HV_REQUIRE_V(run_case(cs, &o, &sn) == HV_OK, "NaN gan, no fallback: %s", hv_error_detail());
    for (size_t i = 0; i < sn.m->n; i++) {
        const hv_vert_measure *v = &sn.m->v[i];
        HV_CHECK((v->flags & HV_MEAS_SYNTH_FALLBACK) && (v->flags & HV_MEAS_NO_SYNTH) &&
                     isnan(v->rhlv[HV_REG_ANT]) && isnan(v->h_syn[HV_REG_MID]) && !v->syn_map.h,
                 "NaN model, fallback none: label %d NaN and flagged (0x%x)", v->label, v->flags);
    }
    hv_pipe_state_clear(&sn);
    hv_pipe_state_clear(&sg);
    hv_pipe_state_clear(&sb);
    hv_model_synth_free(gan);
    hv_model_synth_free(gnan);
    hv_nn_backend_free(be);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_pipe_gan HV_MAKE_GAN_MODEL\n");
        return 2;
    }
    g_make_model = argv[1];
    snprintf(g_dir, sizeof g_dir, "%s/tmp-pipe-gan", HV_TEST_BINARY_DIR);
    char cmd[2000], dir_f[1000], dir_h[1000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    HV_REQUIRE(system(cmd) == 0, "scratch folder");
    snprintf(dir_f, sizeof dir_f, "%s/fractured", g_dir);
    snprintf(dir_h, sizeof dir_h, "%s/healthy", g_dir);
    hv_phantom_opts pf = phantom_opts(1.0), ph = phantom_opts(0.0);
    HV_REQUIRE(hv_phantom_cohort_write(&pf, dir_f, 1, NULL, NULL) == HV_OK, "phantom: %s",
               hv_error_detail());
    HV_REQUIRE(hv_phantom_cohort_write(&ph, dir_h, 1, NULL, NULL) == HV_OK, "healthy phantom: %s",
               hv_error_detail());
    hv_phantom_case *pc = NULL;
    HV_REQUIRE(hv_phantom_case_make(&pf, 0, &pc) == HV_OK, "phantom model");
    char ct[1200], msk[1200], hm[1200];
    snprintf(ct, sizeof ct, "%s/raw/%s/%s.nii.gz", dir_f, pc->id, pc->id);
    snprintf(msk, sizeof msk, "%s/raw/%s/%s_msk.nii.gz", dir_f, pc->id, pc->id);
    snprintf(hm, sizeof hm, "%s/raw/%s/%s_msk.nii.gz", dir_h, pc->id, pc->id);
    hv_case cs = {pc->id, ct, msk, NULL, HV_OK, NULL};
    check_truth(&cs, pc, hm);
    check_gan(&cs);
    hv_phantom_case_free(pc);
    return hv_test_done();
}
