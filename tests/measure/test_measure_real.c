/*
 * test_measure_real.c: robust heights on a real scan against TotalSegmentator.
 *
 * totalseg-example (3 mm voxels) with TotalSegmentator's body-only mask
 * totalseg_vertebrae_pp_refined, the mask its spine report measured. The
 * report's L1-L5 heights and body volumes (spine_report.json, table in
 * shared/data/README.md) are the independent expected values; ours are taken
 * at 1/6, 1/2, 5/6 pooled over parasagittal rays (or, compat mode, the
 * report's own 15/50/85 % points and plane). Bounds per mode below, each
 * from the measured differences with the margin stated. A height 20 % too
 * low (a Genant grade, 4.2-5.7 mm here) fails the per-value bound on 14 of
 * the 15 compat values and 10 of the 15 robust ones (where ours is already
 * 1.2 mm or more above the report, one voxel of slack swallows it: 3 mm
 * voxels cannot do better per value), and fails the per-region mean bound
 * whenever it hits that region on every level.
 * The whole-vertebra VerSe mask of the same scan is also compared with the
 * report, and its almost-empty T11 must be flagged, not measured.
 * Both data files are looked up before any check: a missing one skips (77,
 * SKIP line; a failure under CI=true) before anything could have failed.
 * Every pass requires the known labels (T12 cut by the FOV, L1-L5), so a
 * measurer that finds no vertebra fails instead of looping over nothing.
 */
#include "hv/io.h"
#include "hv/measure.h"
#include "hv_test.h"

/* spine_report.json: ant, mid, post per L1..L5, and the body volume (ml,
 * the pp_refined voxel count x 27 mm^3 as the report computed it) */
static const double ref[5][3] = {
    {21.0, 24.0, 27.0}, {28.5, 24.0, 25.5}, {28.5, 22.5, 24.0},
    {28.5, 22.5, 22.5}, {28.5, 25.5, 22.5},
};
static const double ref_vol[5] = {35.61, 36.42, 38.34, 39.04, 34.02};

/* Bounds on (ours - report) in mm, per mode:
 * compat (the report's points and plane, like with like): measured
 *   -1.15 .. +2.37 mm (L5 anterior); one voxel (3 mm) either way.
 * robust (a different estimator: the mean of the rays near the mid-plane,
 *   not the most extreme plane): measured -0.92 .. +4.61 mm. The report keeps
 *   the plane of LARGEST spread, so its smallest height is biased low and ours
 *   lie above it; the two values where that plane has a notch (L3 middle
 *   +4.49, L4 posterior +4.61) get +5 mm, every other value 3 mm (measured
 *   worst +2.96, L2 middle). Below the report: one voxel (3 mm) everywhere.
 * whole (example_ct_vert_msk_verse: a different TotalSegmentator model drew
 *   the whole vertebrae, and its bodies are larger, 41.6-50.9 ml of whole
 *   vertebra against 34-39 ml of pp_refined body): measured -1.01 .. +5.39 mm
 *   (L5 posterior): at most 3 mm below, at most 6 mm above (0.6 mm over the
 *   worst measured; a looser upper bound, said so, because this mask is not
 *   the one the report measured). */
static double hi_bound(int mode, int k, int r)
{
    if (mode < 0) mode = 1; /* the --centroids run: robust heights, not in the means */
    if (mode == 0) return 3.0;
    if (mode == 2) return 6.0;
    return (k == 2 && r == 1) || (k == 3 && r == 2) ? 5.0 : 3.0;
}

/* Require exactly labels lo..hi, in order. */
static int has_labels(const hv_spine_measure *m, int lo, int hi, const char *what)
{
    int ok = m && m->n == (size_t)(hi - lo + 1);
    for (size_t i = 0; ok && i < m->n; i++) ok = m->v[i].label == lo + (int)i;
    return HV_CHECK(ok, "%s: labels %d..%d expected, got %zu rows", what, lo, hi, m ? m->n : 0);
}

static int find_all(const hv_spine_measure *m, int lo, int hi)
{
    for (int l = lo; l <= hi; l++) {
        size_t i = 0;
        while (i < m->n && m->v[i].label != l) i++;
        if (i == m->n) return 0;
    }
    return 1;
}

/* Per region, the mean over L1-L5 of (ours - report): a systematic error
 * (every anterior height 20 % low) moves it by 4.5-5.7 mm. Measured means
 * (ant, mid, post): compat +0.49 +1.55 +1.11, robust +0.06 +2.53 +1.85,
 * whole +1.61 +2.43 +2.71. Bound: at most half a voxel (1.5 mm, the
 * report's own step) below, and 0.5 mm over the largest measured mean above
 * (+3.0 mm; whole +3.2 mm). */
static double bias_sum[3][3];

static void check_bias(int mode, const char *what)
{
    double hi = mode == 2 ? 3.2 : 3.0;
    for (int r = 0; r < 3; r++) {
        double b = bias_sum[mode][r] / 5.0;
        printf("# %s region %d: mean (ours - spine_report) %+.2f mm\n", what, r + 1, b);
        HV_CHECK(b >= -1.5 && b <= hi, "%s region %d: mean difference to spine_report %+.2f mm "
                 "(allowed -1.5 .. %+.1f)", what, r + 1, b, hi);
    }
}

static double check_vs_report(int mode, const hv_vert_measure *v, const char *what)
{
    int k = v->label - 20;
    double worst = 0;
    for (int r = 0; r < 3; r++) {
        double d = v->h_ori[r + 1] - ref[k][r];
        if (mode >= 0) bias_sum[mode][r] += d;
        HV_CHECK(d >= -3.0 && d <= hi_bound(mode, k, r),
                 "%s L%d region %d: %.2f mm vs spine_report %.2f (allowed %+.1f .. %+.1f)", what,
                 k + 1, r + 1, v->h_ori[r + 1], ref[k][r], -3.0, hi_bound(mode, k, r));
        worst = fmax(worst, fabs(d));
    }
    return worst;
}

int main(void)
{
    const char *rel = "totalseg-example/totalseg_vertebrae_pp_refined.nii.gz";
    const char *rel2 = "totalseg-example/example_ct_vert_msk_verse.nii.gz";
    const char *path = hv_test_data(rel), *path2 = hv_test_data(rel2);
    if (!path) return hv_test_missing_data(rel);
    if (!path2) return hv_test_missing_data(rel2);
    hv_volume *mask = NULL;
    hv_spine_measure *m = NULL;
    HV_CHECK_OK(hv_io_nifti_read(path, HV_DTYPE_U8, NULL, &mask, NULL));
    HV_REQUIRE(mask != NULL, "mask read");
    double body[5][3] = {{0}};
    for (int pass = 0; pass < 2; pass++) {
        hv_measure_opts o;
        hv_measure_opts_default(&o);
        o.totalseg_compat = pass == 0;
        double worst = 0;
        const char *what = pass ? "robust" : "compat";
        m = NULL;
        HV_CHECK_OK(hv_measure_spine(mask, NULL, &o, &m));
        HV_REQUIRE(has_labels(m, 19, 24, what), "T12..L5 measured");
        for (size_t i = 0; i < m->n; i++) {
            const hv_vert_measure *v = &m->v[i];
            printf("# %s %-4s ant %6.2f mid %6.2f post %6.2f all %6.2f depth %5.1f width %5.1f "
                   "vol %5.2f flags %#x\n", what, hv_label_name(v->label), v->h_ori[1],
                   v->h_ori[2], v->h_ori[3], v->h_ori[0], v->depth_mm, v->width_mm, v->volume_ml, v->flags);
            if (v->label == 19) HV_CHECK(v->flags & HV_MEAS_TRUNCATED, "T12 is cut by the FOV");
            if (v->label < 20 || v->label > 24) continue;
            int k = v->label - 20;
            HV_CHECK(!(v->flags & (HV_MEAS_TRUNCATED | HV_MEAS_EMPTY_REGION)), "L%d flags %#x",
                     k + 1, v->flags);
            /* the body volume is a voxel count x 27 mm^3 on both sides: the
             * report rounds to 0.01 ml */
            HV_CHECK_CLOSE(v->volume_ml, ref_vol[k], 0.006, "body volume vs spine_report");
            worst = fmax(worst, check_vs_report(pass, v, what));
            if (pass == 1)
                for (int r = 0; r < 3; r++) body[k][r] = v->h_ori[r + 1];
        }
        printf("# %s: max |ours - spine_report| = %.2f mm\n", what, worst);
        check_bias(pass, what);
        hv_measure_spine_free(m);
    }

    /* centroids given as a VerSe file (voxel coordinates, shared/data README)
     * instead of the mask's own. A consistency check against our own run
     * above, on purpose: the centroids are the same points (to 0.1 voxel), so
     * the axes barely change and so must the heights (0.5 mm); accuracy is
     * the report comparison, made again here. */
    {
        hv_centroid it[5] = {{20, 57.4, 36.8, 97.3}, {21, 57.5, 41.0, 85.9}, {22, 57.8, 43.8, 73.7},
                             {23, 58.0, 44.3, 61.2}, {24, 59.0, 41.4, 49.6}};
        hv_centroids c = {"RAS", 5, it};
        hv_measure_opts o;
        hv_measure_opts_default(&o);
        o.centroids = &c;
        m = NULL;
        HV_CHECK_OK(hv_measure_spine(mask, NULL, &o, &m));
        HV_CHECK(m && find_all(m, 20, 24), "with --centroids: L1..L5 measured");
        for (size_t i = 0; m && i < m->n; i++) {
            const hv_vert_measure *v = &m->v[i];
            if (v->label < 20 || v->label > 24) continue;
            check_vs_report(-1, v, "with --centroids");
            for (int r = 0; r < 3; r++)
                HV_CHECK_CLOSE(v->h_ori[r + 1], body[v->label - 20][r], 0.5, "with --centroids");
        }
        hv_measure_spine_free(m);
    }
    hv_vol_free(mask);

    /* whole vertebrae (VerSe labels) of the same scan */
    mask = NULL;
    m = NULL;
    HV_CHECK_OK(hv_io_nifti_read(path2, HV_DTYPE_U8, NULL, &mask, NULL));
    HV_REQUIRE(mask != NULL, "mask read");
    HV_CHECK_OK(hv_measure_spine(mask, NULL, NULL, &m));
    HV_REQUIRE(has_labels(m, 18, 24, "whole"), "T11..L5 measured");
    double worst = 0;
    for (size_t i = 0; i < m->n; i++) {
        const hv_vert_measure *v = &m->v[i];
        printf("# whole %-4s ant %6.2f mid %6.2f post %6.2f depth %5.1f vol %5.1f/%zu flags %#x\n",
               hv_label_name(v->label), v->h_ori[1], v->h_ori[2], v->h_ori[3], v->depth_mm,
               v->volume_ml, v->n_voxels, v->flags);
        if (v->label == 18) HV_CHECK(v->flags & HV_MEAS_SMALL, "T11 sliver flagged small");
        if (v->label == 18) HV_CHECK(isnan(v->h_ori[HV_REG_MID]), "T11 not measured");
        if (v->label < 20 || v->label > 24) continue;
        int k = v->label - 20;
        HV_CHECK(v->n_body_voxels < v->n_voxels, "L%d posterior elements cut off", k + 1);
        worst = fmax(worst, check_vs_report(2, v, "whole"));
        /* and, a consistency check between two masks of one scan (not an
         * accuracy claim): the de-pedicled whole vertebra gives the body
         * heights of the body-only mask within 4 mm (measured 3.2 mm) */
        for (int r = 0; r < 3; r++) {
            char what[64];
            snprintf(what, sizeof what, "whole L%d region %d vs body mask", k + 1, r + 1);
            HV_CHECK_CLOSE(v->h_ori[r + 1], body[k][r], 4.0, what);
        }
    }
    printf("# whole: max |ours - spine_report| = %.2f mm\n", worst);
    check_bias(2, "whole");
    hv_measure_spine_free(m);
    hv_vol_free(mask);
    return hv_test_done();
}
