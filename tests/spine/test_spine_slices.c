/*
 * test_spine_slices: 2.5D slice layout, slice ranges, the fixed-height band
 * and shifted input, component cleaning, the seeded draw, the HU window and
 * de-pedicle on hand-made volumes whose answers are known exactly.
 */
#include "hv/spine.h"
#include "hv_test.h"

#include <stdlib.h>

static hv_volume *make_crop(void)
{
    int64_t dim[3] = {64, 256, 256};
    hv_volume *v = NULL;
    if (hv_vol_create(&v, dim, HV_DTYPE_U8, NULL) != HV_OK) return NULL;
    /* target label 21: LR i in [20, 44), AP j in [100, 140), rows k in [110, 136) */
    for (int64_t k = 110; k < 136; k++)
        for (int64_t j = 100; j < 140; j++)
            for (int64_t i = 20; i < 44; i++) ((uint8_t *)v->data)[hv_vol_idx(v, i, j, k)] = 21;
    /* neighbour 20 above (superior = larger k) and 22 below */
    for (int64_t k = 142; k < 168; k++)
        for (int64_t j = 100; j < 140; j++)
            for (int64_t i = 20; i < 44; i++) ((uint8_t *)v->data)[hv_vol_idx(v, i, j, k)] = 20;
    for (int64_t k = 78; k < 104; k++)
        for (int64_t j = 100; j < 140; j++)
            for (int64_t i = 20; i < 44; i++) ((uint8_t *)v->data)[hv_vol_idx(v, i, j, k)] = 22;
    return v;
}

/* Every pixel of both views of a small non-square crop whose voxels all
 * differ, v(i,j,k) = i + 5 j + 35 k (all below 256), in each dtype the extractor reads
 * (F32 and U8 have their own fast path, I16 goes through the generic one).
 * Expected pixels from the layout the header documents: sagittal row r =
 * slice k = K-1-r, column c = j = J-1-c; coronal canvas max(I,J) wide, the
 * I columns pasted at (cols-I)/2 with column x = i = I-1-x, zero elsewhere. */
static void check_every_pixel(hv_dtype dt)
{
    const int64_t I = 5, J = 7, K = 6;
    int64_t dim[3] = {I, J, K};
    hv_volume *v = NULL;
    HV_REQUIRE_V(hv_vol_create(&v, dim, dt, NULL) == HV_OK, "crop");
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < J; j++)
            for (int64_t i = 0; i < I; i++) {
                size_t q = hv_vol_idx(v, i, j, k);
                int val = (int)(i + 5 * j + 35 * k);
                if (dt == HV_DTYPE_F32) ((float *)v->data)[q] = (float)val;
                else if (dt == HV_DTYPE_U8) ((uint8_t *)v->data)[q] = (uint8_t)val;
                else ((int16_t *)v->data)[q] = (int16_t)val;
            }
    float out[7 * 7];
    int bad = 0;
    HV_CHECK_OK(hv_spine_slice_extract(v, HV_SPINE_SAGITTAL, 3, out));
    for (int64_t r = 0; r < K; r++)
        for (int64_t c = 0; c < J; c++)
            bad += out[r * J + c] != (float)(3 + 5 * (J - 1 - c) + 35 * (K - 1 - r));
    HV_CHECK(bad == 0, "dtype %d: sagittal: %d pixel(s) wrong", (int)dt, bad);
    bad = 0;
    HV_CHECK_OK(hv_spine_slice_extract(v, HV_SPINE_CORONAL, 2, out));
    const int64_t cols = J, off = (cols - I) / 2;
    for (int64_t r = 0; r < K; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t x = c - off;
            float want = x >= 0 && x < I ? (float)((I - 1 - x) + 5 * 2 + 35 * (K - 1 - r)) : 0.0f;
            bad += out[r * cols + c] != want;
        }
    HV_CHECK(bad == 0, "dtype %d: coronal: %d pixel(s) wrong", (int)dt, bad);
    hv_vol_free(v);
}

/* The QC slice choice: sagittal through the LR centre, coronal through the
 * mean AP index of the target's voxels (hand-computed), on a crop 13 voxels
 * wide (the word-at-a-time count has a tail there): the target three times
 * at j = 3 in the first word of a line and once at j = 8 in the tail:
 * mean (9 + 8) / 4 = 4.25 -> 4 (3 without the tail, 8 without the words);
 * around it labels 20 and 23, each one bit away from 21. */
static void check_qc_slices(void)
{
    int64_t dim[3] = {13, 9, 4};
    hv_volume *lab = NULL;
    HV_REQUIRE_V(hv_vol_create(&lab, dim, HV_DTYPE_U8, NULL) == HV_OK, "labels");
    uint8_t *l = lab->data;
    for (size_t q = 0; q < lab->nvox; q++) l[q] = (q % 3) ? 20 : 23;
    l[hv_vol_idx(lab, 0, 3, 1)] = 21;
    l[hv_vol_idx(lab, 1, 3, 2)] = 21;
    l[hv_vol_idx(lab, 2, 3, 0)] = 21;
    l[hv_vol_idx(lab, 12, 8, 3)] = 21;
    hv_spine_crop cr = {21, {0, 0, 0}, lab, lab};
    int64_t si = -1, cj = -1;
    hv_spine_qc_slices(&cr, &si, &cj);
    HV_CHECK(si == 6 && cj == 4, "qc slices: sagittal %lld (want 6), coronal %lld (want 4)",
             (long long)si, (long long)cj);
    hv_vol_free(lab);
}

int main(void)
{
    check_qc_slices();
    check_every_pixel(HV_DTYPE_F32);
    check_every_pixel(HV_DTYPE_U8);
    check_every_pixel(HV_DTYPE_I16);

    hv_volume *crop = make_crop();
    HV_REQUIRE(crop != NULL, "crop");
    int64_t rows, cols;
    float *sl = malloc(256 * 256 * sizeof *sl), *out = malloc(256 * 256 * sizeof *out);
    HV_REQUIRE(sl && out, "alloc");

    /* layout: sagittal rows cranial first, anterior at column 0 */
    hv_spine_slice_dims(crop, HV_SPINE_SAGITTAL, &rows, &cols);
    HV_CHECK(rows == 256 && cols == 256, "sagittal dims %lldx%lld", (long long)rows, (long long)cols);
    HV_CHECK_OK(hv_spine_slice_extract(crop, HV_SPINE_SAGITTAL, 30, sl));
    /* voxel (30, j=139, k=135): most anterior, most superior voxel of 21 */
    HV_CHECK(sl[(255 - 135) * 256 + (255 - 139)] == 21.0f, "sagittal corner");
    HV_CHECK(sl[(255 - 136) * 256 + (255 - 139)] == 0.0f, "sagittal above target");
    /* coronal: 64 wide strip at columns 96..159, patient right (large i) on the left */
    hv_spine_slice_dims(crop, HV_SPINE_CORONAL, &rows, &cols);
    HV_CHECK(rows == 256 && cols == 256, "coronal dims");
    HV_CHECK_OK(hv_spine_slice_extract(crop, HV_SPINE_CORONAL, 120, sl));
    HV_CHECK(sl[(255 - 120) * 256 + 96 + (63 - 43)] == 21.0f && sl[(255 - 120) * 256 + 96 + (63 - 44)] == 0.0f,
             "coronal right edge of the target");
    HV_CHECK(hv_spine_slice_extract(crop, HV_SPINE_CORONAL, 256, sl) == HV_ERR_ARG, "coronal index range");

    /* ranges: LR extent [20, 44) -> L = 24, M = int(0.8*24) = 19, first = 20 + 2 */
    hv_spine_slice_range rg;
    HV_CHECK_OK(hv_spine_slice_range_get(crop, 21, HV_SPINE_SAGITTAL, &rg));
    HV_CHECK(rg.extent_lo == 20 && rg.extent_len == 24 && rg.count == 19 && rg.first == 22 &&
             rg.centre == 31.0, "sagittal range %lld %lld %lld %lld %.1f", (long long)rg.extent_lo,
             (long long)rg.extent_len, (long long)rg.first, (long long)rg.count, rg.centre);
    HV_CHECK_CLOSE(hv_spine_slice_ratio(&rg, 22), 9.0 / 24 * 2, 1e-12, "slice ratio");
    HV_CHECK_OK(hv_spine_slice_range_get(crop, 21, HV_SPINE_CORONAL, &rg));
    HV_CHECK(rg.extent_lo == 100 && rg.extent_len == 40 && rg.count == 32 && rg.first == 104,
             "coronal range");
    HV_CHECK(hv_spine_slice_range_get(crop, 7, HV_SPINE_SAGITTAL, &rg) == HV_ERR_EMPTY, "absent label");

    /* band: target rows in the sagittal image: k in [110,136) -> rows [120, 146) */
    HV_CHECK_OK(hv_spine_slice_extract(crop, HV_SPINE_SAGITTAL, 30, sl));
    hv_spine_band b;
    HV_CHECK_OK(hv_spine_band_find(sl, 256, 256, 21, 40, 0, 256, &b));
    HV_CHECK(b.x1 == 120 && b.x2 == 146 && b.height == 26 && !b.too_tall, "band rows %lld %lld",
             (long long)b.x1, (long long)b.x2);
    HV_CHECK(b.lo == 113 && b.hi == 153, "band [%lld, %lld)", (long long)b.lo, (long long)b.hi);
    hv_spine_band_shift(&b, sl, 256, 256, out);
    /* above the band: row r comes from r + (x1 - lo) = r + 7; below: x2 + (r - hi) */
    int ok = 1;
    for (int64_t r = 0; r < 256; r++)
        for (int64_t cc = 0; cc < 256; cc++) {
            float want = r < b.lo ? (r + 7 < 256 ? sl[(r + 7) * 256 + cc] : 0)
                       : r >= b.hi ? (146 + r - 153 < 256 ? sl[(146 + r - 153) * 256 + cc] : 0) : 0;
            ok &= out[r * 256 + cc] == want;
        }
    HV_CHECK(ok, "shifted input");
    /* the target is gone from the shifted slice, both neighbours are kept */
    int n21 = 0, n20 = 0, n22 = 0;
    for (int q = 0; q < 256 * 256; q++) {
        n21 += out[q] == 21.0f;
        n20 += out[q] == 20.0f;
        n22 += out[q] == 22.0f;
    }
    HV_CHECK(n21 == 0 && n20 == 26 * 40 && n22 == 26 * 40, "shift keeps %d/%d/%d px", n20, n21, n22);
    hv_spine_band_mask(&b, 256, 256, out);
    double msum = 0;
    for (int q = 0; q < 256 * 256; q++) msum += out[q];
    HV_CHECK(msum == 40.0 * 256, "band mask area %.0f", msum);
    /* a band at the top border is clamped and still contains the target */
    {
        float *t = calloc(64 * 32, sizeof *t);
        for (int r = 2; r < 20; r++) t[r * 32 + 5] = 3;
        HV_CHECK_OK(hv_spine_band_find(t, 64, 32, 3, 40, 0, 32, &b));
        HV_CHECK(b.lo == 0 && b.hi == 40, "clamped band [%lld, %lld)", (long long)b.lo, (long long)b.hi);
        /* too tall: 50 rows -> a 40-row window around the centre */
        for (int r = 2; r < 52; r++) t[r * 32 + 5] = 3;
        HV_CHECK_OK(hv_spine_band_find(t, 64, 32, 3, 40, 0, 32, &b));
        HV_CHECK(b.too_tall && b.height == 50 && b.x2 - b.x1 == 40 && b.x1 >= 2 && b.x2 <= 52,
                 "too tall: [%lld, %lld)", (long long)b.x1, (long long)b.x2);
        free(t);
    }

    /* cleaning: a 3-px speck disappears, an 8-connected diagonal component stays */
    {
        float t[16 * 16] = {0};
        for (int q = 0; q < 60; q++) t[(q / 10 + 2) * 16 + q % 10 + 2] = 4;  /* 60 px block */
        t[15 * 16 + 15] = t[14 * 16 + 14] = t[13 * 16 + 15] = 4;           /* 3 px, diagonal */
        HV_CHECK(hv_spine_slice_clean(t, 16, 16, 4, 50) == 60 && t[15 * 16 + 15] == 0, "clean");
        t[15 * 16 + 15] = t[14 * 16 + 14] = t[13 * 16 + 15] = 4;
        HV_CHECK(hv_spine_slice_clean(t, 16, 16, 4, 3) == 63, "clean keeps a 3-px 8-connected component");
    }

    /* seeded draw: reproducible, inside the range, triangular (centre more likely than the ends) */
    {
        hv_rng r1, r2;
        hv_rng_seed(&r1, 42, 3);
        hv_rng_seed(&r2, 42, 3);
        int same = 1, inside = 1, hist[64] = {0};
        HV_CHECK_OK(hv_spine_slice_range_get(crop, 21, HV_SPINE_SAGITTAL, &rg));
        for (int q = 0; q < 2000; q++) {
            int64_t z1, z2;
            double a1, a2;
            if (hv_spine_slice_draw(crop, 21, HV_SPINE_SAGITTAL, &rg, 40, &r1, &z1, &a1, NULL) != HV_OK ||
                hv_spine_slice_draw(crop, 21, HV_SPINE_SAGITTAL, &rg, 40, &r2, &z2, &a2, NULL) != HV_OK) {
                same = 0;
                break;
            }
            same &= z1 == z2 && a1 == a2;
            inside &= z1 >= rg.first && z1 < rg.first + rg.count;
            hist[z1]++;
        }
        HV_CHECK(same && inside, "draw: reproducible %d, inside %d", same, inside);
        /* w(centre) = 1, w(end) = 0.5: expect about twice as many; 2000 draws */
        HV_CHECK(hist[31] > 1.4 * hist[22] && hist[31] > 1.4 * hist[40], "draw: not triangular "
                 "(%d at the centre, %d and %d at the ends)", hist[31], hist[22], hist[40]);
        /* a target taller than the band is never accepted: clear error, no crash */
        int64_t z;
        double a;
        hv_status st = hv_spine_slice_draw(crop, 21, HV_SPINE_SAGITTAL, &rg, 20, &r1, &z, &a, NULL);
        HV_CHECK(st == HV_ERR_NOT_FOUND, "draw with a 20-row band: %s", hv_status_name(st));
    }

    /* HU window: -300 -> 0, 800 -> 255, clipped, linear in between */
    {
        int64_t d[3] = {4, 1, 1};
        hv_volume *hu = NULL, *w = NULL;
        HV_CHECK_OK(hv_vol_create(&hu, d, HV_DTYPE_I16, NULL));
        int16_t vals[4] = {-1000, -300, 250, 3000};
        memcpy(hu->data, vals, sizeof vals);
        HV_CHECK_OK(hv_spine_hu_window(hu, -300, 800, &w));
        float *f = w->data;
        HV_CHECK(f[0] == 0 && f[1] == 0 && fabsf(f[2] - 127.5f) < 1e-4f && f[3] == 255, "window %g %g %g %g",
                 f[0], f[1], f[2], f[3]);
        hv_vol_free(hu);
        hv_vol_free(w);
    }

    /* de-pedicle on a straightened-like volume: body, canal gap, arch */
    {
        hv_spine_map m = {0};
        m.n = 40; m.width = 32; m.height = 64; m.step = 1; m.ci = 16; m.cj = 32;
        int64_t d[3] = {32, 64, 40};
        hv_volume *lab = NULL;
        HV_CHECK_OK(hv_vol_create(&lab, d, HV_DTYPE_U8, NULL));
        for (int64_t k = 5; k < 30; k++)
            for (int64_t j = 0; j < 64; j++)
                for (int64_t i = 4; i < 28; i++) {
                    int body = j >= 25 && j < 50, arch = j < 15 && (i < 12 || i > 20 || j < 6);
                    if (body || arch) ((uint8_t *)lab->data)[hv_vol_idx(lab, i, j, k)] = 9;
                }
        HV_CHECK_OK(hv_spine_depedicle(&m, lab, NULL));
        size_t left = 0, arch_left = 0;
        for (size_t q = 0; q < lab->nvox; q++) {
            if (((uint8_t *)lab->data)[q] != 9) continue;
            left++;
            arch_left += (q / 32) % 64 < 15;
        }
        HV_CHECK(left == 25 * 25 * 24 && arch_left == 0, "depedicle left %zu (arch %zu)", left, arch_left);
        hv_vol_free(lab);
    }
    free(sl);
    free(out);
    hv_vol_free(crop);
    return hv_test_done();
}
