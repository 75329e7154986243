/*
 * test_sample.c: hv_model_sample_at / hv_model_sample_draw (spec 3.2-3.4).
 *
 * 1. A hand-built tiny crop whose sagittal slices the test defines itself in
 *    image coordinates (row 0 cranial, column 0 anterior: voxel (i, J-1-c,
 *    K-1-r)); every array of a slot is recomputed here from the spec's
 *    formulas (B[r] = CT[r + (x1 - lo)] for r < lo, B[r] = CT[x2 + (r - hi)]
 *    for r >= hi, band -1; v/255 then (v - 0.5)/0.5; the band centred on
 *    (x1 + x2) / 2 with half-open rows; the healthy mask from the case
 *    grades), and compared value for value.
 * 2. Draws: reproducible for a seed, equal to sample_at at the drawn slice,
 *    the triangular slice weights, refusal when the target exceeds the band.
 * 3. A phantom vertebra through straighten + crop: the sample's height
 *    equals the phantom's analytic body height within the voxel rounding.
 * 4. Coronal (spec 4): a tiny crop whose coronal slices the test defines in
 *    canvas coordinates (strip column x = I-1-i pasted at columns
 *    [(J - I) / 2, +I), row r = K-1-k); every array of a slot against the
 *    same formulas, the band mask only inside the strip, the slice range
 *    and ratio along the target's AP extent, draws inside that range.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/phantom.h"
#include "hv/spine.h"
#include "hv_test.h"

/* crop dims: LR I, AP J (= slice columns), rows K (= slice rows) */
enum { I = 6, J = 20, K = 60, BAND = 12 };

static uint8_t ct_at(int i, int r, int c) { return (uint8_t)((r * 7 + c * 13 + i * 3) % 256); }
static uint8_t cam_at(int i, int r, int c) { return (uint8_t)((r * 5 + c * 11 + i) % 256); }

/* labels in slice coordinates: 19 rows [14,22), target 20 rows [24,32) for
 * i in [1,4], 21 rows [34,42), 22 rows [44,50), all columns [4,14); a 3-px
 * speck of 20 at row 52, columns 1..3 (removed by the cleaning). */
static int lab_at(int i, int r, int c)
{
    if (r == 52 && c >= 1 && c <= 3 && i >= 1 && i <= 4) return 20;
    if (c < 4 || c >= 14) return 0;
    if (r >= 14 && r < 22) return 19;
    if (r >= 24 && r < 32 && i >= 1 && i <= 4) return 20;
    if (r >= 34 && r < 42) return 21;
    if (r >= 44 && r < 50) return 22;
    return 0;
}

static hv_volume *make_vol(uint8_t (*fn)(int, int, int), int labels)
{
    hv_volume *v = NULL;
    const int64_t dim[3] = {I, J, K};
    if (hv_vol_create(&v, dim, HV_DTYPE_U8, NULL) != HV_OK) return NULL;
    uint8_t *d = v->data;
    for (int i = 0; i < I; i++)
        for (int r = 0; r < K; r++)
            for (int c = 0; c < J; c++)
                d[hv_vol_idx(v, i, J - 1 - c, K - 1 - r)] =
                    labels ? (uint8_t)lab_at(i, r, c) : fn(i, r, c);
    return v;
}

static float norm(double v) { return (float)((v / 255.0 - 0.5) / 0.5); }

/* Source row of shifted row r (spec 3.3), -1 for the band / outside. */
static int src_row(int r, int x1, int x2, int lo, int hi)
{
    int s = -1;
    if (r < lo) s = r + (x1 - lo);
    else if (r >= hi) s = x2 + (r - hi);
    return s >= 0 && s < K ? s : -1;
}

static void check_slot(const hv_model_batch *b, int64_t slot, int z, int healthy_max,
                       const int8_t *grades, int with_cam, const char *what)
{
    /* the target in slice z: rows [24, 32) (the speck removed) */
    const int x1 = 24, x2 = 32, h = 8;
    const int mid = (x1 + x2) / 2, lo = mid - BAND / 2, hi = lo + BAND;
    HV_CHECK(b->x1[slot] == x1 && b->x2[slot] == x2, "%s: x1 %lld x2 %lld", what,
             (long long)b->x1[slot], (long long)b->x2[slot]);
    HV_CHECK(b->band_lo[slot] == lo, "%s: band_lo %lld, expected %d", what,
             (long long)b->band_lo[slot], lo);
    HV_CHECK_CLOSE(b->height[slot], h, 0, "height");
    /* range: target LR extent [1, 4]: L 4, M int(3.2) = 3, first 1, c = 2 */
    const double L = 4, c = 1 + (3 - 1) / 2.0;
    HV_CHECK_CLOSE(b->ratio[slot], fabs(z - c) / L * 2, 1e-6, "ratio");
    int bad[6] = {0};
    const size_t off = (size_t)slot * K * J;
    for (int r = 0; r < K; r++)
        for (int col = 0; col < J; col++) {
            size_t q = off + (size_t)r * J + (size_t)col;
            int s = src_row(r, x1, x2, lo, hi);
            float ex = s < 0 ? -1.0f : norm(ct_at(z, s, col));
            float er = norm(ct_at(z, r, col));
            float em = (r >= lo && r < hi) ? 1.0f : 0.0f;
            float ec = (s < 0 || !with_cam) ? 0.0f : (float)(cam_at(z, s, col) / 255.0);
            int lr = lab_at(z, r, col);
            float erm = (lr == 20 && r != 52) ? 1.0f : 0.0f;
            int ls = s < 0 ? 0 : lab_at(z, s, col);
            if (ls == 20 && s == 52) ls = 0;
            float en = (ls > 0 && grades[ls] >= 0 && grades[ls] <= healthy_max) ? 1.0f : 0.0f;
            bad[0] += fabsf(b->x[q] - ex) > 1e-6f;
            bad[1] += fabsf(b->real[q] - er) > 1e-6f;
            bad[2] += b->mask[q] != em;
            bad[3] += fabsf(b->cam[q] - ec) > 1e-6f;
            bad[4] += b->real_mask[q] != erm;
            bad[5] += b->normal[q] != en;
        }
    static const char *const names[6] = {"x", "real", "mask", "cam", "real_mask", "normal"};
    for (int k = 0; k < 6; k++)
        HV_CHECK(bad[k] == 0, "%s: %d pixels of %s differ from the spec's formula", what, bad[k],
                 names[k]);
}

static void test_tiny(void)
{
    hv_volume *ct = make_vol(ct_at, 0), *lab = make_vol(NULL, 1), *cam = make_vol(cam_at, 0);
    HV_REQUIRE_V(ct && lab && cam, "volumes");
    int8_t grades[32];
    memset(grades, -1, sizeof grades);
    grades[19] = 0;
    grades[20] = 2;
    grades[21] = 3; /* 22 stays unknown */
    hv_model_train_item it = {"tiny", 20, 2, HV_MODEL_SPLIT_TRAIN, grades, ct, lab, cam};
    hv_model_sample_opts o;
    hv_model_sample_opts_default(&o);
    HV_CHECK(o.healthy_max_grade == 1 && o.band_rows == 40, "defaults %d %lld",
             o.healthy_max_grade, (long long)o.band_rows);
    o.band_rows = BAND;
    hv_model_batch b;
    HV_REQUIRE_V(hv_model_batch_alloc(&b, 3, K, J, BAND) == HV_OK, "alloc");

    /* fixed slices, slot 1 and 2, with and without CAM, two thresholds */
    HV_CHECK_OK(hv_model_sample_at(&it, &o, 3, &b, 1));
    check_slot(&b, 1, 3, 1, grades, 1, "z=3 healthy<=1");
    o.healthy_max_grade = 3;
    HV_CHECK_OK(hv_model_sample_at(&it, &o, 2, &b, 2));
    check_slot(&b, 2, 2, 3, grades, 1, "z=2 healthy<=3");
    o.healthy_max_grade = 1;
    hv_model_train_item nocam = it;
    nocam.cam = NULL;
    HV_CHECK_OK(hv_model_sample_at(&nocam, &o, 1, &b, 0));
    check_slot(&b, 0, 1, 1, grades, 0, "z=1 no CAM");
    /* slot 1 untouched by writes to slots 0 and 2 */
    check_slot(&b, 1, 3, 1, grades, 1, "z=3 after other slots");

    /* a slice without the target; a slot outside the batch; a wrong batch */
    HV_CHECK(hv_model_sample_at(&it, &o, 0, &b, 0) == HV_ERR_EMPTY, "slice 0 has no target");
    HV_CHECK(hv_model_sample_at(&it, &o, 1, &b, 3) == HV_ERR_ARG, "slot 3 of 3");
    hv_model_batch wb;
    HV_REQUIRE_V(hv_model_batch_alloc(&wb, 1, K, J + 1, BAND) == HV_OK, "alloc");
    HV_CHECK(hv_model_sample_at(&it, &o, 1, &wb, 0) == HV_ERR_ARG, "columns differ");
    hv_model_batch_free(&wb);

    /* draws: each equals sample_at at the slice hv_spine_slice_draw picks
     * from the same stream state; the same seed gives the same samples */
    hv_rng r1, r2;
    hv_rng_seed(&r1, 42, 7);
    hv_spine_slice_range rg;
    HV_REQUIRE_V(hv_spine_slice_range_get(lab, 20, HV_SPINE_SAGITTAL, &rg) == HV_OK, "range");
    int n_centre = 0, n_side = 0, n_mismatch = 0;
    const int N = 2000;
    hv_model_batch b2;
    HV_REQUIRE_V(hv_model_batch_alloc(&b2, 1, K, J, BAND) == HV_OK, "alloc");
    for (int d = 0; d < N; d++) {
        r2 = r1;
        int64_t z = -1;
        double ratio;
        if (hv_spine_slice_draw(lab, 20, HV_SPINE_SAGITTAL, &rg, BAND, &r2, &z, &ratio, NULL) !=
            HV_OK) {
            n_mismatch++;
            continue;
        }
        if (hv_model_sample_draw(&it, &o, &r1, &b, 0) != HV_OK ||
            hv_model_sample_at(&it, &o, z, &b2, 0) != HV_OK ||
            memcmp(b.x, b2.x, sizeof(float) * K * J) || memcmp(b.normal, b2.normal, sizeof(float) * K * J) ||
            memcmp(b.cam, b2.cam, sizeof(float) * K * J) || b.ratio[0] != b2.ratio[0] ||
            memcmp(&r1, &r2, sizeof r1))
            n_mismatch++;
        if (z == 2) n_centre++;
        else if (z == 1 || z == 3) n_side++;
    }
    HV_CHECK(n_mismatch == 0, "%d draws differ from sample_at at the drawn slice", n_mismatch);
    /* triangular weights over M = 3 slices {1, 2, 3}, c = 2: 0.5, 1, 0.5 */
    HV_CHECK(n_centre + n_side == N, "draws outside the central range: %d", N - n_centre - n_side);
    HV_CHECK(fabs((double)n_centre / N - 0.5) < 0.04, "centre slice drawn %d of %d (expected 1/2)",
             n_centre, N);
    hv_model_batch_free(&b2);

    /* the target (8 rows) does not fit a 6-row band: no slice qualifies */
    hv_model_batch b6;
    HV_REQUIRE_V(hv_model_batch_alloc(&b6, 1, K, J, 6) == HV_OK, "alloc");
    o.band_rows = 6;
    HV_CHECK(hv_model_sample_draw(&it, &o, &r1, &b6, 0) == HV_ERR_NOT_FOUND, "too tall refused");
    hv_model_batch_free(&b6);
    hv_model_batch_free(&b);
    hv_vol_free(ct);
    hv_vol_free(lab);
    hv_vol_free(cam);
}

/* A phantom vertebra, straightened and cropped: the slot's height (rows of
 * the target in the centre slice, 1 mm rows) is the body's analytic height
 * (the largest of its anterior, middle and posterior heights: the flat
 * endplates of an unfractured phantom body bound all three) within the
 * voxel rounding at either endplate (+- 1 row each) and the straightening's
 * resampling (labels nearest neighbour): 2 rows. */
static void test_phantom(void)
{
    hv_phantom_opts po;
    hv_phantom_opts_default(&po);
    po.first_label = 19; /* T12 */
    po.last_label = 21;  /* L2 */
    po.fracture_rate = 0;
    po.scoliosis_rate = 0;
    po.noise_hu = 0;
    hv_phantom_case *pc = NULL;
    hv_spine_case *sc = NULL;
    hv_spine_crop *cr = NULL;
    hv_volume *ct8 = NULL;
    hv_model_batch b = {0};
    HV_REQUIRE_V(hv_phantom_case_make(&po, 0, &pc) == HV_OK, "phantom %s", hv_error_detail());
    HV_REQUIRE_V(hv_phantom_case_render(&po, pc) == HV_OK, "render %s", hv_error_detail());
    HV_REQUIRE_V(hv_spine_case_run(pc->ct, pc->mask, NULL, NULL, &sc) == HV_OK, "spine %s",
                 hv_error_detail());
    HV_REQUIRE_V(hv_spine_crop_make(sc, 20, &cr) == HV_OK, "crop %s", hv_error_detail());
    HV_REQUIRE_V(hv_model_trainset_ct_u8(cr->ct, &ct8) == HV_OK, "ct u8");
    const hv_phantom_vert *pv = NULL;
    for (int v = 0; v < pc->n_vert; v++)
        if (pc->vert[v].label == 20) pv = &pc->vert[v];
    HV_REQUIRE_V(pv != NULL, "L1 in the phantom");
    int8_t grades[32];
    memset(grades, -1, sizeof grades);
    hv_model_train_item it = {pc->id, 20, 0, HV_MODEL_SPLIT_TRAIN, grades, ct8, cr->labels, NULL};
    hv_model_sample_opts o;
    hv_model_sample_opts_default(&o);
    HV_REQUIRE_V(hv_model_batch_alloc(&b, 1, 256, 256, 40) == HV_OK, "alloc");
    hv_spine_slice_range rg;
    HV_REQUIRE_V(hv_spine_slice_range_get(cr->labels, 20, HV_SPINE_SAGITTAL, &rg) == HV_OK, "range");
    int64_t zc = (int64_t)lround(rg.centre);
    HV_CHECK_OK(hv_model_sample_at(&it, &o, zc, &b, 0));
    double hmax = fmax(pv->healthy_mm[0], fmax(pv->healthy_mm[1], pv->healthy_mm[2]));
    HV_CHECK(fabs(b.height[0] - hmax) <= 2.0, "phantom L1: sample height %.1f rows, analytic "
             "%.2f mm (heights %.2f %.2f %.2f)", b.height[0], hmax, pv->healthy_mm[0],
             pv->healthy_mm[1], pv->healthy_mm[2]);
    printf("phantom L1 centre slice %lld: height %.0f rows, analytic %.2f mm\n", (long long)zc,
           b.height[0], hmax);
    /* the target's rows sit around crop row 128 (its body centre) */
    HV_CHECK(b.x1[0] < 128 && b.x2[0] > 128, "target rows [%lld, %lld) around row 128",
             (long long)b.x1[0], (long long)b.x2[0]);
    hv_model_batch_free(&b);
    hv_vol_free(ct8);
    hv_spine_crop_free(cr);
    hv_spine_case_free(sc);
    hv_phantom_case_free(pc);
}

/* ------------------------------------------------------------ coronal */

/* Coronal test crop: labels by (strip column x = I-1-i, row r, AP index j):
 * 19 rows [10,18), 20 (target) rows [22,32), 21 rows [36,44), every x,
 * j in [4,14) for 19 and 21 and j in [5,15) for the target; CT and CAM
 * by formula. Canvas: the strip at columns [7, 13) of J = 20. */
enum { CBAND = 16, COFF = (J - I) / 2 };
static int clab(int x, int r, int j)
{
    (void)x;
    if (r >= 10 && r < 18 && j >= 4 && j < 14) return 19;
    if (r >= 22 && r < 32 && j >= 5 && j < 15) return 20;
    if (r >= 36 && r < 44 && j >= 4 && j < 14) return 21;
    return 0;
}
static uint8_t cct(int x, int r, int j) { return (uint8_t)(40 + (r * 7 + x * 13 + j * 3) % 200); }
static uint8_t ccam(int x, int r, int j) { return (uint8_t)((r * 5 + x * 11 + j) % 256); }

static hv_volume *make_cvol(int what)
{
    hv_volume *v = NULL;
    const int64_t dim[3] = {I, J, K};
    if (hv_vol_create(&v, dim, HV_DTYPE_U8, NULL) != HV_OK) return NULL;
    uint8_t *d = v->data;
    for (int i = 0; i < I; i++)
        for (int j = 0; j < J; j++)
            for (int k = 0; k < K; k++) {
                int x = I - 1 - i, r = K - 1 - k;
                d[hv_vol_idx(v, i, j, k)] = what == 0   ? cct(x, r, j)
                                            : what == 1 ? (uint8_t)clab(x, r, j)
                                                        : ccam(x, r, j);
            }
    return v;
}

static void check_coronal_slot(const hv_model_batch *b, int64_t slot, int j,
                               const int8_t *grades, const char *what)
{
    /* target rows [22, 32): h 10, centre 27, band [19, 35) of 16 rows */
    const int x1 = 22, x2 = 32, lo = 19, hi = 35;
    HV_CHECK(b->x1[slot] == x1 && b->x2[slot] == x2 && b->band_lo[slot] == lo,
             "%s: x1 %lld x2 %lld lo %lld", what, (long long)b->x1[slot], (long long)b->x2[slot],
             (long long)b->band_lo[slot]);
    HV_CHECK(b->height[slot] == 10, "%s: height %g", what, (double)b->height[slot]);
    /* AP extent of the target [5, 15): L 10, M int(8) = 8, first 5 + 1 = 6,
     * c = 6 + 3.5 = 9.5; ratio |j - 9.5| / 10 * 2 */
    HV_CHECK(fabs(b->ratio[slot] - fabs(j - 9.5) / 10.0 * 2) < 1e-6, "%s: ratio %g", what, (double)b->ratio[slot]);
    int bad[6] = {0};
    const size_t off = (size_t)slot * K * J;
    for (int r = 0; r < K; r++)
        for (int c = 0; c < J; c++) {
            size_t q = off + (size_t)r * J + (size_t)c;
            int x = c - COFF, in = x >= 0 && x < I;
            int s = r < lo ? r + (x1 - lo) : (r >= hi ? x2 + (r - hi) : -1);
            if (s >= K) s = -1;
            float ex = (s < 0 || !in) ? -1.0f : norm(cct(x, s, j));
            float er = in ? norm(cct(x, r, j)) : -1.0f;
            float em = (r >= lo && r < hi && in) ? 1.0f : 0.0f; /* only inside the strip */
            float ec = (s < 0 || !in) ? 0.0f : (float)(ccam(x, s, j) / 255.0);
            float erm = (in && clab(x, r, j) == 20) ? 1.0f : 0.0f;
            int ls = (s < 0 || !in) ? 0 : clab(x, s, j);
            float en = (ls > 0 && grades[ls] >= 0 && grades[ls] <= 1) ? 1.0f : 0.0f;
            bad[0] += fabsf(b->x[q] - ex) > 1e-6f;
            bad[1] += fabsf(b->real[q] - er) > 1e-6f;
            bad[2] += b->mask[q] != em;
            bad[3] += fabsf(b->cam[q] - ec) > 1e-6f;
            bad[4] += b->real_mask[q] != erm;
            bad[5] += b->normal[q] != en;
        }
    static const char *const names[6] = {"x", "real", "mask", "cam", "real_mask", "normal"};
    for (int k = 0; k < 6; k++)
        HV_CHECK(bad[k] == 0, "%s: %d pixels of %s differ from the spec's formula", what, bad[k],
                 names[k]);
}

static void test_coronal(void)
{
    hv_volume *ct = make_cvol(0), *lab = make_cvol(1), *cam = make_cvol(2);
    HV_REQUIRE_V(ct && lab && cam, "volumes");
    int8_t grades[32];
    memset(grades, -1, sizeof grades);
    grades[19] = 0;
    grades[20] = 1;
    grades[21] = 2;
    hv_model_train_item it = {"coronal", 20, 1, HV_MODEL_SPLIT_TRAIN, grades, ct, lab, cam};
    hv_model_sample_opts o;
    hv_model_sample_opts_default(&o);
    HV_CHECK(o.plane == HV_SPINE_SAGITTAL, "default plane %d", o.plane);
    o.plane = HV_SPINE_CORONAL;
    o.band_rows = CBAND;
    hv_model_batch b;
    HV_REQUIRE_V(hv_model_batch_alloc(&b, 2, K, J, CBAND) == HV_OK, "alloc");
    HV_CHECK_OK(hv_model_sample_at(&it, &o, 9, &b, 0));
    check_coronal_slot(&b, 0, 9, grades, "coronal j=9");
    HV_CHECK_OK(hv_model_sample_at(&it, &o, 13, &b, 1));
    check_coronal_slot(&b, 1, 13, grades, "coronal j=13");
    /* j = 4: the target (AP [5, 15)) is absent from that coronal slice */
    HV_CHECK(hv_model_sample_at(&it, &o, 4, &b, 0) == HV_ERR_EMPTY, "coronal j=4 has no target");
    /* draws: inside the central AP range [6, 14), each equal to sample_at */
    hv_rng rng;
    hv_rng_seed(&rng, 5, 1);
    hv_model_batch b2;
    HV_REQUIRE_V(hv_model_batch_alloc(&b2, 1, K, J, CBAND) == HV_OK, "alloc");
    int outside = 0, mism = 0;
    for (int d = 0; d < 200; d++) {
        HV_CHECK_OK(hv_model_sample_draw(&it, &o, &rng, &b, 0));
        int z = -1;
        for (int jj = 6; jj < 14; jj++)
            if (fabs(b.ratio[0] - fabs(jj - 9.5) / 5.0) < 1e-6) z = jj; /* two j per ratio: */
        if (z < 0) {
            outside++;
            continue;
        }
        /* the ratio names j or 19 - j; compare the CT with both */
        int ok = 0;
        for (int k = 0; k < 2 && !ok; k++) {
            int jj = k ? 19 - z : z;
            if (hv_model_sample_at(&it, &o, jj, &b2, 0) == HV_OK &&
                !memcmp(b.x, b2.x, sizeof(float) * K * J) &&
                !memcmp(b.cam, b2.cam, sizeof(float) * K * J))
                ok = 1;
        }
        mism += !ok;
    }
    HV_CHECK(outside == 0 && mism == 0, "coronal draws: %d outside [6, 14), %d unlike sample_at",
             outside, mism);
    /* a plane that is neither */
    o.plane = 7;
    HV_CHECK(hv_model_sample_at(&it, &o, 9, &b, 0) == HV_ERR_ARG, "plane 7 refused");
    hv_model_batch_free(&b2);
    hv_model_batch_free(&b);
    hv_vol_free(ct);
    hv_vol_free(lab);
    hv_vol_free(cam);
}

int main(void)
{
    test_tiny();
    test_phantom();
    test_coronal();
    return hv_test_done();
}
