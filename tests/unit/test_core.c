/*
 * test_core.c: status/error detail, RNG streams, affine maths, exact
 * reorientation and resampling, per-label statistics (src/core).
 */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv/core.h"
#include "hv_test.h"

static void test_errors(void)
{
    hv_error_clear();
    HV_CHECK(!strcmp(hv_error_detail(), ""), "detail starts empty");
    hv_status st = hv_error_set(HV_ERR_FORMAT, "bad %s", "thing");
    HV_CHECK(st == HV_ERR_FORMAT, "set returns the status");
    hv_error_wrap(st, "file.nii");
    HV_CHECK(!strcmp(hv_error_detail(), "file.nii: bad thing"), "wrap prepends: '%s'", hv_error_detail());
    for (int s = 0; s < HV_STATUS_COUNT; s++)
        HV_CHECK(strcmp(hv_status_name((hv_status)s), "unknown status") != 0, "status %d has a name", s);
    HV_CHECK(!strcmp(hv_status_name((hv_status)999), "unknown status"), "out of range");
}

static void test_rng(void)
{
    hv_rng a, b, c;
    hv_rng_seed(&a, 42, 0);
    hv_rng_seed(&b, 42, 0);
    hv_rng_seed(&c, 42, 1);
    int same = 1, diff = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = hv_rng_u64(&a), y = hv_rng_u64(&b), z = hv_rng_u64(&c);
        same &= x == y;
        diff += x != z;
    }
    HV_CHECK(same, "same seed and stream repeat");
    HV_CHECK(diff > 990, "another stream differs (%d/1000)", diff);
    /* Moments of N(0,1) over 200k draws: mean within 5 sigma/sqrt(n) = 0.011. */
    double s = 0, s2 = 0, u = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = hv_rng_normal(&a);
        s += x;
        s2 += x * x;
        u += hv_rng_uniform(&b);
    }
    HV_CHECK_CLOSE(s / n, 0.0, 0.011, "normal mean");
    HV_CHECK_CLOSE(s2 / n, 1.0, 0.02, "normal variance");
    HV_CHECK_CLOSE(u / n, 0.5, 0.0035, "uniform mean");
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) hist[hv_rng_below(&c, 7)]++;
    for (int i = 0; i < 7; i++) HV_CHECK(hist[i] > 9500 && hist[i] < 10500, "below(7) bin %d = %d", i, hist[i]);
}

static void test_affine(void)
{
    double A[4][4] = {{0, 0, -2, 10}, {-1.5, 0, 0, 20}, {0, 3, 0, -5}, {0, 0, 0, 1}};
    double inv[4][4], I[4][4];
    /* voxel volume: |det| = 2 * 1.5 * 3 = 9 mm^3 for this permuted, flipped
     * grid; a 30 degree rotation of 1 x 1 x 2 mm voxels keeps 2 mm^3; a shear
     * (column 1 gets 0.5 of x) does not change the volume either */
    const double cs = cos(M_PI / 6), sn = sin(M_PI / 6);
    const double R[4][4] = {{cs, -sn, 0, 0}, {sn, cs, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}};
    const double S[4][4] = {{1, 0.5, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
    HV_CHECK_CLOSE(hv_affine_voxel_mm3((const double(*)[4])A), 9.0, 1e-12, "voxel volume, permuted grid");
    HV_CHECK_CLOSE(hv_affine_voxel_mm3(R), 2.0, 1e-12, "voxel volume, rotated grid");
    HV_CHECK_CLOSE(hv_affine_voxel_mm3(S), 1.0, 1e-12, "voxel volume, sheared grid");
    HV_CHECK_OK(hv_affine_invert(A, inv));
    hv_affine_mul(A, inv, I);
    double err = 0;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) err = fmax(err, fabs(I[r][c] - (r == c)));
    HV_CHECK(err < 1e-12, "A * inv(A) = I (err %g)", err);
    char codes[4];
    hv_affine_axcodes(A, codes);
    /* axis0 -> -z (I), axis1 -> +y... column 0 = (0,-1.5,0): P; col1 = (0,0,3): S; col2 = (-2,0,0): L */
    HV_CHECK(!strcmp(codes, "PSL"), "axcodes %s", codes);
    HV_CHECK(hv_affine_obliquity_deg(A) < 1e-9, "not oblique");
    double Z[4][4] = {{0}};
    HV_CHECK(hv_affine_invert(Z, inv) == HV_ERR_NUMERIC, "singular detected");
    double p[3] = {1, 2, 3}, w[3];
    hv_affine_apply(A, p, w);
    HV_CHECK(w[0] == 4 && w[1] == 18.5 && w[2] == 1, "apply (%g %g %g)", w[0], w[1], w[2]);
    double ob[4][4];
    hv_affine_identity(ob);
    double t = 10 * M_PI / 180;
    ob[1][1] = cos(t);
    ob[1][2] = -sin(t);
    ob[2][1] = sin(t);
    ob[2][2] = cos(t);
    HV_CHECK_CLOSE(hv_affine_obliquity_deg(ob), 10.0, 1e-9, "obliquity of a 10 degree rotation");
}

static void test_reorient(void)
{
    /* A PSL grid with distinct values; reoriented to RAS every voxel must keep
     * its world position and value. */
    double A[4][4] = {{0, 0, -2, 10}, {-1.5, 0, 0, 20}, {0, 3, 0, -5}, {0, 0, 0, 1}};
    int64_t dim[3] = {4, 5, 6};
    hv_volume *v = NULL, *r = NULL;
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_I32, A));
    for (size_t i = 0; i < v->nvox; i++) ((int32_t *)v->data)[i] = (int32_t)i;
    HV_CHECK_OK(hv_vol_reorient_canonical(v, &r));
    if (!r) {
        hv_vol_free(v);
        return;
    }
    char codes[4];
    hv_affine_axcodes(r->affine, codes);
    HV_CHECK(!strcmp(codes, "RAS"), "canonical codes %s", codes);
    HV_CHECK(r->dim[0] == 6 && r->dim[1] == 4 && r->dim[2] == 5, "dims permuted %lld %lld %lld",
             (long long)r->dim[0], (long long)r->dim[1], (long long)r->dim[2]);
    double inv[4][4];
    hv_affine_invert(v->affine, inv);
    int bad = 0;
    for (int64_t k = 0; k < r->dim[2]; k++)
        for (int64_t j = 0; j < r->dim[1]; j++)
            for (int64_t i = 0; i < r->dim[0]; i++) {
                double p[3] = {(double)i, (double)j, (double)k}, w[3], q[3];
                hv_affine_apply(r->affine, p, w);
                hv_affine_apply(inv, w, q);
                int64_t a = llround(q[0]), b = llround(q[1]), c = llround(q[2]);
                if (a < 0 || b < 0 || c < 0 || a >= 4 || b >= 5 || c >= 6 ||
                    ((int32_t *)r->data)[hv_vol_idx(r, i, j, k)] != ((int32_t *)v->data)[hv_vol_idx(v, a, b, c)])
                    bad++;
            }
    HV_CHECK(bad == 0, "%d voxels moved in world space", bad);
    HV_CHECK(r->spacing[0] == 2 && r->spacing[1] == 1.5 && r->spacing[2] == 3, "spacing follows");
    hv_volume *r2 = NULL;
    HV_CHECK_OK(hv_vol_reorient_canonical(r, &r2));
    HV_CHECK(r2 && !memcmp(r2->data, r->data, r->nvox * 4), "canonical is idempotent");
    hv_vol_free(r2);
    hv_vol_free(r);
    hv_vol_free(v);
}

static void test_resample(void)
{
    /* A linear field f = 2x - y + 0.5z (world mm) is reproduced exactly by
     * trilinear interpolation at any interior point. */
    double A[4][4] = {{1.5, 0, 0, -3}, {0, 1, 0, 2}, {0, 0, 2.5, 1}, {0, 0, 0, 1}};
    int64_t dim[3] = {20, 24, 12};
    hv_volume *v = NULL, *o = NULL, *n = NULL;
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_F32, A));
    float *d = v->data;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) {
                double p[3] = {(double)i, (double)j, (double)k}, w[3];
                hv_affine_apply(A, p, w);
                d[hv_vol_idx(v, i, j, k)] = (float)(2 * w[0] - w[1] + 0.5 * w[2]);
            }
    double sp[3] = {1, 1, 1};
    HV_CHECK_OK(hv_vol_resample_spacing(v, sp, HV_INTERP_LINEAR, -999, &o));
    if (o) {
        HV_CHECK(o->dim[0] == 29 && o->dim[1] == 24 && o->dim[2] == 28, "resampled dims %lld %lld %lld",
                 (long long)o->dim[0], (long long)o->dim[1], (long long)o->dim[2]);
        double err = 0;
        int fills = 0;
        for (int64_t k = 0; k < o->dim[2]; k++)
            for (int64_t j = 0; j < o->dim[1]; j++)
                for (int64_t i = 0; i < o->dim[0]; i++) {
                    double p[3] = {(double)i, (double)j, (double)k}, w[3];
                    hv_affine_apply(o->affine, p, w);
                    float x = ((float *)o->data)[hv_vol_idx(o, i, j, k)];
                    if (x == -999) fills++;
                    else err = fmax(err, fabs(x - (2 * w[0] - w[1] + 0.5 * w[2])));
                }
        HV_CHECK(fills == 0, "no fill inside the extent (%d)", fills);
        HV_CHECK(err < 1e-3, "trilinear reproduces a linear field (err %g)", err);
    }
    /* Nearest on labels keeps label values only. */
    hv_volume *lab = NULL;
    HV_CHECK_OK(hv_vol_create(&lab, dim, HV_DTYPE_U8, A));
    for (size_t i = 0; i < lab->nvox; i++) ((uint8_t *)lab->data)[i] = (uint8_t)(i % 3 == 0 ? 20 : 0);
    double sp2[3] = {0.7, 0.7, 0.7};
    HV_CHECK_OK(hv_vol_resample_spacing(lab, sp2, HV_INTERP_NEAREST, 0, &n));
    if (n) {
        int other = 0;
        for (size_t i = 0; i < n->nvox; i++) {
            uint8_t x = ((uint8_t *)n->data)[i];
            other += x != 0 && x != 20;
        }
        HV_CHECK(other == 0, "nearest creates no new labels (%d)", other);
    }
    /* Outside -> fill. */
    hv_volume *far = NULL;
    double F[4][4];
    memcpy(F, A, sizeof F);
    F[0][3] = 1000;
    int64_t d1[3] = {2, 2, 2};
    HV_CHECK_OK(hv_vol_resample(v, F, d1, HV_INTERP_LINEAR, -7, &far));
    HV_CHECK(far && ((float *)far->data)[0] == -7, "outside gets fill");
    hv_volume *bad = NULL;
    double sp3[3] = {0, 1, 1};
    HV_CHECK(hv_vol_resample_spacing(v, sp3, HV_INTERP_LINEAR, 0, &bad) == HV_ERR_ARG, "zero spacing rejected");
    hv_vol_free(far);
    hv_vol_free(n);
    hv_vol_free(lab);
    hv_vol_free(o);
    hv_vol_free(v);
}

static void test_volume(void)
{
    hv_volume *v = NULL;
    int64_t huge[3] = {INT64_MAX / 2, 4, 4};
    HV_CHECK(hv_vol_create(&v, huge, HV_DTYPE_F32, NULL) == HV_ERR_LIMIT, "overflowing size rejected");
    int64_t zero[3] = {0, 4, 4};
    HV_CHECK(hv_vol_create(&v, zero, HV_DTYPE_F32, NULL) == HV_ERR_ARG, "zero dim rejected");
    int64_t dim[3] = {3, 3, 3};
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_F32, NULL));
    float *d = v->data;
    d[0] = NAN;
    d[1] = -5.6f;
    d[2] = 300.4f;
    double lo, hi;
    size_t nf;
    hv_vol_range(v, &lo, &hi, &nf);
    HV_CHECK(nf == 1 && lo == (double)-5.6f && hi == (double)300.4f, "range %g %g nf %zu", lo, hi, nf);
    hv_volume *u = NULL;
    HV_CHECK_OK(hv_vol_convert(v, HV_DTYPE_U8, &u));
    HV_CHECK(u && ((uint8_t *)u->data)[0] == 0 && ((uint8_t *)u->data)[1] == 0 && ((uint8_t *)u->data)[2] == 255,
             "convert saturates and maps NaN to 0");
    hv_vol_free(u);
    hv_vol_free(v);
    HV_CHECK(!strcmp(hv_label_name(19), "T12") && !strcmp(hv_label_name(20), "L1") &&
                 !strcmp(hv_label_name(28), "T13") && hv_label_name(26) == NULL,
             "label names");
    HV_CHECK(hv_label_from_name("l5") == 24 && hv_label_from_name("T1") == 8 && hv_label_from_name("X9") == 0,
             "label from name");
    /* craniocaudal order: T12 (19) < T13 (28) < L1 (20) < L6 (25); C1 first;
     * sacrum (26), 27, 29 and 0 are not vertebrae */
    HV_CHECK(hv_label_order(1) == 1 && hv_label_order(19) < hv_label_order(28) &&
                 hv_label_order(28) < hv_label_order(20) && hv_label_order(25) == 25,
             "label order puts T13 between T12 and L1");
    HV_CHECK(hv_label_order(26) < 0 && hv_label_order(27) < 0 && hv_label_order(29) < 0 &&
                 hv_label_order(0) < 0 && hv_label_order(-3) < 0,
             "non-vertebra labels have no order");
}

/* hv_label_stats_collect on a 5 x 4 x 3 grid (2 x 1 x 3 mm, origin (10, 20,
 * 30)) whose expected numbers are worked out by hand below, for each integer
 * dtype; then a random grid against a plain loop written here. */
static void test_label_stats(void)
{
    int64_t dim[3] = {5, 4, 3};
    double A[4][4] = {{2, 0, 0, 10}, {0, 1, 0, 20}, {0, 0, 3, 30}, {0, 0, 0, 1}};
    hv_volume *v = NULL;
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_I16, (const double(*)[4])A));
    HV_REQUIRE_V(v != NULL, "volume");
    int16_t *d = v->data;
#define AT(i, j, k) d[(i) + 5 * ((j) + 4 * (k))]
    AT(2, 2, 1) = 1;                                   /* C1: one interior voxel */
    AT(1, 1, 1) = 28; AT(3, 2, 1) = 28;                /* T13: interior          */
    AT(2, 1, 2) = 19; AT(3, 2, 2) = 19;                /* T12: on the top face   */
    AT(0, 0, 0) = 20; AT(4, 3, 2) = 20; AT(1, 2, 0) = 20; /* L1: two corners    */
    AT(2, 3, 1) = 26; AT(3, 3, 0) = 27; AT(0, 3, 0) = 29; /* not vertebrae      */
    AT(4, 0, 1) = 300; AT(4, 0, 0) = -1;
#undef AT
    static const struct {
        int label;
        size_t count;
        double sum[3];
        int64_t lo[3], hi[3];
        double world[3]; /* (10 + 2 mean_i, 20 + mean_j, 30 + 3 mean_k) */
        int border;
    } want[] = {
        /* C1: (2,2,1) -> (14, 22, 33) */
        {1, 1, {2, 2, 1}, {2, 2, 1}, {2, 2, 1}, {14, 22, 33}, 0},
        /* T13: (1,1,1)+(3,2,1): sums (4,3,2), mean (2, 1.5, 1) -> (14, 21.5, 33) */
        {28, 2, {4, 3, 2}, {1, 1, 1}, {3, 2, 1}, {14, 21.5, 33}, 0},
        /* T12: (2,1,2)+(3,2,2): sums (5,3,4), mean (2.5, 1.5, 2) -> (15, 21.5, 36);
         * only k = 2 = nz - 1 touches a face */
        {19, 2, {5, 3, 4}, {2, 1, 2}, {3, 2, 2}, {15, 21.5, 36}, 1},
        /* L1: (0,0,0)+(4,3,2)+(1,2,0): sums (5,5,2), mean (5/3, 5/3, 2/3)
         * -> (10 + 10/3, 20 + 5/3, 32) */
        {20, 3, {5, 5, 2}, {0, 0, 0}, {4, 3, 2}, {10 + 10.0 / 3, 20 + 5.0 / 3, 32}, 1},
    };
    /* signed types keep -1 (ignored: 26, 27, 29, 300, -1); unsigned ones turn
     * it into 0 (and U8 turns 300 into 255, still ignored) */
    static const struct { hv_dtype dt; size_t ignored; } types[] = {
        {HV_DTYPE_I16, 5}, {HV_DTYPE_U8, 4}, {HV_DTYPE_U16, 4}, {HV_DTYPE_I32, 5}};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        hv_volume *c = NULL;
        HV_CHECK_OK(hv_vol_convert(v, types[t].dt, &c));
        if (!c) continue;
        const char *dn = hv_dtype_name(types[t].dt);
        hv_label_stats st[HV_LABEL_MAX + 1];
        size_t ignored = 99;
        HV_CHECK_OK(hv_label_stats_collect(c, st, &ignored));
        HV_CHECK(ignored == types[t].ignored, "%s: %zu ignored voxels, want %zu", dn, ignored,
                 types[t].ignored);
        size_t total = 0;
        for (int l = 0; l <= HV_LABEL_MAX; l++) total += st[l].count;
        HV_CHECK(total == 8, "%s: %zu labelled voxels counted, want 8", dn, total);
        for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
            const hv_label_stats *s = &st[want[w].label];
            int l = want[w].label;
            HV_CHECK(s->count == want[w].count, "%s: label %d count %zu, want %zu", dn, l,
                     s->count, want[w].count);
            for (int a = 0; a < 3; a++)
                HV_CHECK(s->sum[a] == want[w].sum[a] && s->lo[a] == want[w].lo[a] &&
                             s->hi[a] == want[w].hi[a],
                         "%s: label %d axis %d: sum %g lo %lld hi %lld, want %g %lld %lld", dn, l,
                         a, s->sum[a], (long long)s->lo[a], (long long)s->hi[a], want[w].sum[a],
                         (long long)want[w].lo[a], (long long)want[w].hi[a]);
            double c3[3];
            hv_label_stats_centroid(s, (const double(*)[4])c->affine, c3);
            for (int a = 0; a < 3; a++)
                HV_CHECK_CLOSE(c3[a], want[w].world[a], 1e-12, "world centroid");
            HV_CHECK(hv_label_stats_on_border(s, c->dim) == want[w].border,
                     "%s: label %d on the border: %d, want %d", dn, l,
                     hv_label_stats_on_border(s, c->dim), want[w].border);
        }
        /* absent and non-vertebra labels: empty, box lo > hi, not on the border */
        static const int empty[] = {0, 18, 26, 27};
        for (size_t e = 0; e < sizeof empty / sizeof empty[0]; e++) {
            const hv_label_stats *s = &st[empty[e]];
            HV_CHECK(s->count == 0 && s->sum[0] == 0 && s->lo[0] == INT64_MAX && s->hi[2] == -1 &&
                         !hv_label_stats_on_border(s, c->dim),
                     "%s: label %d is empty (count %zu)", dn, empty[e], s->count);
        }
        hv_vol_free(c);
    }
    /* F32 is not a label map */
    hv_volume *f = NULL;
    HV_CHECK_OK(hv_vol_convert(v, HV_DTYPE_F32, &f));
    if (f) {
        hv_label_stats st[HV_LABEL_MAX + 1];
        HV_CHECK(hv_label_stats_collect(f, st, NULL) == HV_ERR_ARG &&
                     strstr(hv_error_detail(), "labels must be an integer type"),
                 "F32 refused: %s", hv_error_detail());
        hv_vol_free(f);
    }
    hv_vol_free(v);

    /* a random 37 x 23 x 19 grid (rows split over threads) against a plain loop */
    int64_t rd[3] = {37, 23, 19};
    hv_volume *r = NULL;
    HV_CHECK_OK(hv_vol_create(&r, rd, HV_DTYPE_I32, NULL));
    HV_REQUIRE_V(r != NULL, "random volume");
    hv_rng rng;
    hv_rng_seed(&rng, 11, 0);
    int32_t *rv = r->data;
    for (size_t n = 0; n < r->nvox; n++)
        rv[n] = hv_rng_below(&rng, 4) ? 0 : (int32_t)hv_rng_below(&rng, 34) - 2; /* -2 .. 31 */
    hv_label_stats ref[HV_LABEL_MAX + 1], got[HV_LABEL_MAX + 1];
    size_t ref_ign = 0, got_ign = 0;
    for (int l = 0; l <= HV_LABEL_MAX; l++) {
        memset(&ref[l], 0, sizeof ref[l]);
        for (int a = 0; a < 3; a++) ref[l].lo[a] = INT64_MAX, ref[l].hi[a] = -1;
    }
    for (int64_t k = 0; k < rd[2]; k++)
        for (int64_t j = 0; j < rd[1]; j++)
            for (int64_t i = 0; i < rd[0]; i++) {
                int32_t l = rv[hv_vol_idx(r, i, j, k)];
                if (l == 0) continue;
                if (l < 0 || l > 28 || l == 26 || l == 27) { ref_ign++; continue; }
                int64_t p[3] = {i, j, k};
                ref[l].count++;
                for (int a = 0; a < 3; a++) {
                    ref[l].sum[a] += (double)p[a];
                    if (p[a] < ref[l].lo[a]) ref[l].lo[a] = p[a];
                    if (p[a] > ref[l].hi[a]) ref[l].hi[a] = p[a];
                }
            }
    HV_CHECK_OK(hv_label_stats_collect(r, got, &got_ign));
    HV_CHECK(got_ign == ref_ign, "random: %zu ignored, want %zu", got_ign, ref_ign);
    int same = 1;
    for (int l = 0; l <= HV_LABEL_MAX; l++)
        same &= got[l].count == ref[l].count && !memcmp(got[l].sum, ref[l].sum, sizeof ref[l].sum) &&
                !memcmp(got[l].lo, ref[l].lo, sizeof ref[l].lo) &&
                !memcmp(got[l].hi, ref[l].hi, sizeof ref[l].hi);
    HV_CHECK(same, "random grid: the same numbers as a plain loop");
    hv_vol_free(r);
}

/* hv_file_check_regular / hv_file_read_all: every kind of non-file is named,
 * a FIFO does not block, the size cap holds and the content comes back whole. */
static void test_files(void)
{
    char dir[] = "/tmp/hv_test_files_XXXXXX";
    HV_REQUIRE_V(mkdtemp(dir) != NULL, "mkdtemp");
    char reg[256], fifo[256], missing[256], under[256];
    snprintf(reg, sizeof reg, "%s/a.json", dir);
    snprintf(fifo, sizeof fifo, "%s/pipe", dir);
    snprintf(missing, sizeof missing, "%s/nope.json", dir);
    snprintf(under, sizeof under, "%s/a.json/x", dir);
    FILE *f = fopen(reg, "wb");
    HV_REQUIRE_V(f != NULL, "create %s", reg);
    fputs("{\"a\": 1}\n", f);
    fclose(f);
    HV_REQUIRE_V(mkfifo(fifo, 0600) == 0, "mkfifo");

    HV_CHECK_OK(hv_file_check_regular(reg, "--x"));
    hv_status st = hv_file_check_regular(dir, "--centroids");
    HV_CHECK(st == HV_ERR_IO && strstr(hv_error_detail(), "--centroids: ") &&
                 strstr(hv_error_detail(), dir) && strstr(hv_error_detail(), "is a directory"),
             "directory named: '%s'", hv_error_detail());
    st = hv_file_check_regular(fifo, NULL);
    HV_CHECK(st == HV_ERR_IO && strstr(hv_error_detail(), "is a FIFO") &&
                 !strncmp(hv_error_detail(), fifo, strlen(fifo)),
             "FIFO named: '%s'", hv_error_detail());
    st = hv_file_check_regular(missing, "CT");
    HV_CHECK(st == HV_ERR_IO && strstr(hv_error_detail(), "does not exist"),
             "missing named: '%s'", hv_error_detail());
    st = hv_file_check_regular(under, "CT");
    HV_CHECK(st == HV_ERR_IO && strstr(hv_error_detail(), "not a directory"),
             "file used as a folder: '%s'", hv_error_detail());
    HV_CHECK(hv_file_check_regular("", "mask") == HV_ERR_ARG, "empty path");
    HV_CHECK(hv_file_check_regular(NULL, "mask") == HV_ERR_ARG, "NULL path");

    char *buf = (char *)1;
    size_t n = 99;
    HV_CHECK_OK(hv_file_read_all(reg, "x", 1 << 20, &buf, &n));
    HV_CHECK(buf && n == 9 && !strcmp(buf, "{\"a\": 1}\n"), "content and length (%zu)", n);
    free(buf);
    buf = (char *)1;
    /* A FIFO with no writer: reading it would block forever. */
    st = hv_file_read_all(fifo, "--centroids", 1 << 20, &buf, &n);
    HV_CHECK(st == HV_ERR_IO && buf == NULL && strstr(hv_error_detail(), "is a FIFO"),
             "FIFO read refused: '%s'", hv_error_detail());
    st = hv_file_read_all(dir, "--centroids", 1 << 20, &buf, &n);
    HV_CHECK(st == HV_ERR_IO && strstr(hv_error_detail(), "is a directory"), "dir read: '%s'",
             hv_error_detail());
    st = hv_file_read_all(reg, "x", 8, &buf, &n);
    HV_CHECK(st == HV_ERR_LIMIT && buf == NULL && strstr(hv_error_detail(), "9 bytes") &&
                 strstr(hv_error_detail(), "limit of 8"),
             "size cap: '%s'", hv_error_detail());
    HV_CHECK_OK(hv_file_read_all(reg, "x", 9, &buf, NULL));
    free(buf);
    unlink(reg);
    unlink(fifo);
    rmdir(dir);
}

/* hv_file_name_check: ids become file names, so only one plain component. */
static void test_names(void)
{
    HV_CHECK_OK(hv_file_name_check("sub-verse004_series1", "--id"));
    HV_CHECK_OK(hv_file_name_check("a..b", "--id"));
    HV_CHECK_OK(hv_file_name_check("...", "--id"));
    struct { const char *name, *needle; } bad[] = {
        {"../../escape", "'../../escape' is not a plain file name (it contains '/')"},
        {"a/b", "contains '/'"},
        {"/abs", "contains '/'"},
        {"..", "'.' and '..' name folders"},
        {".", "'.' and '..' name folders"},
        {"a\nb", "'a\\x0ab' is not a plain file name (it contains a control character (0x0a) at byte 1)"},
        {"tab\t", "control character (0x09)"},
        {"del\x7f", "control character (0x7f)"},
        {"", "--id is empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hv_status st = hv_file_name_check(bad[i].name, "--id");
        HV_CHECK(st == HV_ERR_ARG && strstr(hv_error_detail(), bad[i].needle),
                 "bad name %zu: %s: '%s' lacks '%s'", i, hv_status_name(st), hv_error_detail(),
                 bad[i].needle);
    }
    char longname[HV_FILE_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname);
    longname[HV_FILE_NAME_MAX] = '\0';
    HV_CHECK_OK(hv_file_name_check(longname, "--id"));
    longname[HV_FILE_NAME_MAX] = 'x';
    longname[HV_FILE_NAME_MAX + 1] = '\0';
    HV_CHECK(hv_file_name_check(longname, "--id") == HV_ERR_ARG &&
                 strstr(hv_error_detail(), "129 bytes long (at most 128)"),
             "too long: %s", hv_error_detail());
    HV_CHECK(hv_file_name_check(NULL, NULL) == HV_ERR_ARG, "NULL name");
}

/* hv_vol_check_same_grid: the check `run` and `measure --ct` share. */
static void test_same_grid(void)
{
    int64_t dim[3] = {4, 5, 6}, dim2[3] = {4, 5, 7};
    hv_volume *a = NULL, *b = NULL, *c = NULL;
    HV_REQUIRE_V(hv_vol_create(&a, dim, HV_DTYPE_I16, NULL) == HV_OK, "a");
    HV_REQUIRE_V(hv_vol_create(&b, dim, HV_DTYPE_F32, NULL) == HV_OK, "b");
    HV_REQUIRE_V(hv_vol_create(&c, dim2, HV_DTYPE_F32, NULL) == HV_OK, "c");
    HV_CHECK_OK(hv_vol_check_same_grid(b, a, "CT", "mask"));
    b->affine[0][3] = 5e-4; /* half a micrometre: the same grid */
    HV_CHECK_OK(hv_vol_check_same_grid(b, a, "CT", "mask"));
    b->affine[0][3] = 50;   /* shifted 50 mm */
    hv_status st = hv_vol_check_same_grid(b, a, "CT", "mask");
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "CT and mask affines differ (row 0, column 3: 50 vs 0)"),
             "shifted: %s", hv_error_detail());
    b->affine[0][3] = 0;
    b->affine[1][1] = 0.5;  /* half the spacing */
    st = hv_vol_check_same_grid(b, a, "CT", "mask");
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "(row 1, column 1: 0.5 vs 1)"),
             "half spacing: %s", hv_error_detail());
    b->affine[1][1] = NAN;  /* never "equal" */
    HV_CHECK(hv_vol_check_same_grid(b, a, "CT", "mask") == HV_ERR_FORMAT, "NaN affine");
    st = hv_vol_check_same_grid(c, a, "CT", "mask");
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "CT and mask grids differ (4x5x7 vs 4x5x6)"),
             "dims: %s", hv_error_detail());
    hv_vol_free(a);
    hv_vol_free(b);
    hv_vol_free(c);
}

/* Files in dir whose name contains ".tmp" (leftover temporaries). */
static int count_tmp(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '\\.tmp' || true", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

/* hv_atomic_open/commit/abort and hv_file_write_atomic: the old file or the
 * whole new one, never part of one, and never a temporary left behind. */
static void test_atomic(void)
{
    char dir[] = "/tmp/hv_test_atomic_XXXXXX";
    HV_REQUIRE_V(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], bad[256];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    snprintf(bad, sizeof bad, "%s/no-such-folder/out.txt", dir);
    char *back = NULL;
    size_t len = 0;

    HV_CHECK_OK(hv_file_write_atomic(path, "first\n", 6, 1));
    HV_CHECK(hv_file_read_all(path, NULL, 100, &back, &len) == HV_OK && len == 6 &&
                 !memcmp(back, "first\n", 6), "whole-buffer write reads back");
    free(back);

    hv_atomic_file *a;
    FILE *f;
    HV_REQUIRE_V(hv_atomic_open(path, &a, &f) == HV_OK, "atomic open");
    fprintf(f, "second %d\n", 2);
    HV_CHECK(hv_file_read_all(path, NULL, 100, &back, &len) == HV_OK && len == 6,
             "before commit the old content is in place");
    free(back);
    HV_CHECK(count_tmp(dir) == 1, "one temporary while writing");
    HV_CHECK_OK(hv_atomic_commit(a, 0));
    HV_CHECK(hv_file_read_all(path, NULL, 100, &back, &len) == HV_OK && len == 9 &&
                 !memcmp(back, "second 2\n", 9), "after commit the new content");
    free(back);

    HV_REQUIRE_V(hv_atomic_open(path, &a, &f) == HV_OK, "atomic open");
    fprintf(f, "never");
    hv_atomic_abort(a);
    HV_CHECK(hv_file_read_all(path, NULL, 100, &back, &len) == HV_OK && len == 9,
             "abort keeps the old content");
    free(back);

    /* a write that fails (file size limit: EFBIG, as a full disk would fail):
     * the reason is named, the old file stays whole */
    struct rlimit old_lim, lim;
    getrlimit(RLIMIT_FSIZE, &old_lim);
    lim = old_lim;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    HV_REQUIRE_V(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    static char big[65536];
    memset(big, 'x', sizeof big);
    hv_status st = hv_file_write_atomic(path, big, sizeof big, 0);
    /* and through the stdio API: 200 bytes sit in stdio's buffer until the
     * commit flushes them, so it is the commit that fails */
    hv_status st2 = HV_ERR_INTERNAL;
    char detail2[512] = "";
    lim.rlim_cur = 100;
    setrlimit(RLIMIT_FSIZE, &lim);
    if (hv_atomic_open(path, &a, &f) == HV_OK) {
        fwrite(big, 1, 200, f);
        st2 = hv_atomic_commit(a, 0);
        snprintf(detail2, sizeof detail2, "%s", hv_error_detail());
    }
    setrlimit(RLIMIT_FSIZE, &old_lim);
    HV_CHECK(st2 == HV_ERR_IO && strstr(detail2, "too large"),
             "a commit whose flush fails names the reason: %s", detail2);
    HV_CHECK(st == HV_ERR_IO && strstr(hv_error_detail(), "out.txt") &&
                 strstr(hv_error_detail(), "too large"),
             "a failed write names the file and the reason: %s", hv_error_detail());
    hv_error_clear();
    HV_CHECK(hv_file_read_all(path, NULL, 100, &back, &len) == HV_OK && len == 9,
             "after the failed write the old content is whole");
    free(back);

    st = hv_file_write_atomic(bad, "x", 1, 0);
    HV_CHECK(st == HV_ERR_IO && strstr(hv_error_detail(), "no-such-folder"),
             "a missing folder is named: %s", hv_error_detail());
    hv_error_clear();
    HV_CHECK(count_tmp(dir) == 0, "no temporary file is left behind");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    HV_CHECK(system(cmd) == 0, "cleanup");
}

/* Temporary names of atomic writes: a name that exists already (left by a
 * killed process whose pid came back, or taken by a writer with the same
 * pid on another host) is skipped, not fatal and not overwritten; and
 * processes writing the same file at once (the shards of a job array write
 * the same files) each leave a whole file and no temporary behind. */
static void test_atomic_tmp_names(void)
{
    char dir[] = "/tmp/hv_test_atomic_tmp_XXXXXX";
    HV_REQUIRE_V(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], name[64], stale[320];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    snprintf(name, sizeof name, "out.txt.tmp%ld.", (long)getpid());

    /* which counter value the next temporary gets: open one and look */
    hv_atomic_file *a;
    FILE *f;
    HV_REQUIRE_V(hv_atomic_open(path, &a, &f) == HV_OK, "atomic open");
    unsigned k = 0;
    int found = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, name, strlen(name)))
            found = sscanf(e->d_name + strlen(name), "%u", &k) == 1;
    if (d) closedir(d);
    hv_atomic_abort(a);
    HV_REQUIRE_V(found, "the temporary is named %s<n>", name);

    /* the next three names are taken by someone else's files */
    for (unsigned i = 1; i <= 3; i++) {
        snprintf(stale, sizeof stale, "%s/%s%u", dir, name, k + i);
        FILE *s = fopen(stale, "w");
        HV_REQUIRE_V(s && fputs("stale\n", s) >= 0 && fclose(s) == 0, "create %s", stale);
    }
    HV_CHECK_OK(hv_file_write_atomic(path, "new\n", 4, 1));
    char *back = NULL;
    size_t len = 0;
    HV_CHECK(hv_file_read_all(path, NULL, 100, &back, &len) == HV_OK && len == 4 &&
                 !memcmp(back, "new\n", 4), "written past three taken temporary names");
    free(back);
    for (unsigned i = 1; i <= 3; i++) {
        snprintf(stale, sizeof stale, "%s/%s%u", dir, name, k + i);
        HV_CHECK(hv_file_read_all(stale, NULL, 100, &back, &len) == HV_OK && len == 6,
                 "the file under a taken name is left alone: %s", stale);
        free(back);
        unlink(stale);
    }

    /* four processes write the same file 50 times each, at once */
    pid_t kids[4];
    for (int c = 0; c < 4; c++) {
        kids[c] = fork();
        if (kids[c] == 0) {
            char text[64];
            int bad = 0;
            for (int i = 0; i < 50; i++) {
                snprintf(text, sizeof text, "writer %d, round %02d, whole line\n", c, i);
                if (hv_file_write_atomic(path, text, strlen(text), 0) != HV_OK) bad = 1;
            }
            _exit(bad);
        }
    }
    int all_ok = 1;
    for (int c = 0; c < 4; c++) {
        int ws = 0;
        if (kids[c] < 0 || waitpid(kids[c], &ws, 0) != kids[c] || !WIFEXITED(ws) ||
            WEXITSTATUS(ws) != 0)
            all_ok = 0;
    }
    HV_CHECK(all_ok, "concurrent writers: every write succeeded");
    int wc = -1, wr = -1;
    HV_CHECK(hv_file_read_all(path, NULL, 100, &back, &len) == HV_OK && back &&
                 sscanf(back, "writer %d, round %d, whole line\n", &wc, &wr) == 2 &&
                 len == strlen("writer 0, round 00, whole line\n"),
             "concurrent writers: the file is one writer's whole text (%s)", back ? back : "?");
    free(back);
    HV_CHECK(count_tmp(dir) == 0, "concurrent writers: no temporary left behind");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    HV_CHECK(system(cmd) == 0, "cleanup");
}

int main(void)
{
    test_errors();
    test_rng();
    test_affine();
    test_reorient();
    test_resample();
    test_volume();
    test_label_stats();
    test_files();
    test_names();
    test_same_grid();
    test_atomic();
    test_atomic_tmp_names();
    return hv_test_done();
}
