/*
 * test_attention.c: the attention stage's own arithmetic (src/pipeline/
 * attention.c), on hand-built crops, values worked out by hand:
 *
 *  - hv_pipe_attn_summary: the map's mass fraction inside the target's body
 *    on the 30 LR slices 17..46, and the slice of its maximum. Four voxels:
 *    1.0 in the body (i 25), 0.5 on background (i 30), 0.25 on a neighbour's
 *    label (i 40), 0.9 outside the 30 slices (i 5, not counted in the mass):
 *    mass = 1 / (1 + 0.5 + 0.25) = 4/7, maximum on slice 25. An all-zero map
 *    has no mass (NaN) and no maximum (-1); other dims are refused.
 *  - hv_pipe_attn_overlay: grey CT 100 everywhere but one voxel of 200,
 *    where the map is 1; the map 0.5 on one more voxel. Blending 0.6 grey +
 *    0.4 JET x 255 with JET(0) = (0, 0, 0.5), JET(0.5) = (0.5, 1, 0.5),
 *    JET(1) = (0.5, 0, 0): (60, 60, 111) everywhere, (171, 120, 120) on the
 *    marked voxel (CT and map taken from the same place), (111, 162, 111) on
 *    the other; counted over the whole slice, so a transposed or flipped map
 *    fails without this test knowing the slice layout.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/pipeline.h"
#include "hv_test.h"

static hv_spine_crop *make_crop(int64_t nj, int64_t nk)
{
    const int64_t dim[3] = {64, nj, nk};
    hv_spine_crop *cr = calloc(1, sizeof *cr);
    if (!cr) return NULL;
    cr->label = 20;
    if (hv_vol_create(&cr->ct, dim, HV_DTYPE_F32, NULL) != HV_OK ||
        hv_vol_create(&cr->labels, dim, HV_DTYPE_U8, NULL) != HV_OK) {
        hv_spine_crop_free(cr);
        return NULL;
    }
    /* the target's body: i 20..29, j 2..5, k 2..5; a neighbour at i 40 */
    for (int64_t k = 2; k <= 5; k++)
        for (int64_t j = 2; j <= 5; j++) {
            for (int64_t i = 20; i <= 29; i++) hv_vol_set(cr->labels, hv_vol_idx(cr->labels, i, j, k), 20);
            hv_vol_set(cr->labels, hv_vol_idx(cr->labels, 40, j, k), 19);
            hv_vol_set(cr->labels, hv_vol_idx(cr->labels, 5, j, k), 20);
        }
    return cr;
}

static void check_summary(void)
{
    hv_spine_crop *cr = make_crop(8, 8);
    HV_REQUIRE_V(cr != NULL, "crop");
    hv_volume *cam = NULL;
    HV_REQUIRE_V(hv_vol_create(&cam, cr->labels->dim, HV_DTYPE_F32, NULL) == HV_OK, "cam");
    double mass = 0;
    int slice = 0;
    HV_CHECK_OK(hv_pipe_attn_summary(cr, cam, &mass, &slice));
    HV_CHECK(isnan(mass) && slice == -1, "all-zero map: NaN, -1 (%g, %d)", mass, slice);
    hv_vol_set(cam, hv_vol_idx(cam, 25, 3, 3), 1.0);  /* body, counted      */
    hv_vol_set(cam, hv_vol_idx(cam, 30, 0, 0), 0.5);  /* background        */
    hv_vol_set(cam, hv_vol_idx(cam, 40, 3, 3), 0.25); /* the neighbour      */
    hv_vol_set(cam, hv_vol_idx(cam, 5, 3, 3), 0.9);   /* body, off slices   */
    HV_CHECK_OK(hv_pipe_attn_summary(cr, cam, &mass, &slice));
    HV_CHECK_CLOSE(mass, 4.0 / 7.0, 1e-12, "mass in the body on the 30 slices");
    HV_CHECK(slice == 25, "slice of the maximum: %d (expected 25)", slice);
    /* the maximum off the 30 slices still names its slice */
    hv_vol_set(cam, hv_vol_idx(cam, 5, 3, 3), 2.0);
    HV_CHECK_OK(hv_pipe_attn_summary(cr, cam, &mass, &slice));
    HV_CHECK(slice == 5, "maximum on slice 5: %d", slice);
    HV_CHECK_CLOSE(mass, 4.0 / 7.0, 1e-12, "slice 5 stays out of the mass");
    hv_vol_free(cam);
    const int64_t d2[3] = {64, 8, 7};
    HV_REQUIRE_V(hv_vol_create(&cam, d2, HV_DTYPE_F32, NULL) == HV_OK, "cam");
    HV_CHECK(hv_pipe_attn_summary(cr, cam, &mass, &slice) == HV_ERR_ARG, "other dims refused");
    hv_vol_free(cam);
    hv_spine_crop_free(cr);
}

static void check_overlay(void)
{
    hv_spine_crop *cr = make_crop(16, 12);
    HV_REQUIRE_V(cr != NULL, "crop");
    hv_volume *cam = NULL;
    HV_REQUIRE_V(hv_vol_create(&cam, cr->ct->dim, HV_DTYPE_F32, NULL) == HV_OK, "cam");
    float *ct = cr->ct->data;
    for (size_t q = 0; q < cr->ct->nvox; q++) ct[q] = 100;
    hv_vol_set(cr->ct, hv_vol_idx(cr->ct, 32, 3, 9), 200);
    hv_vol_set(cam, hv_vol_idx(cam, 32, 3, 9), 1.0);
    hv_vol_set(cam, hv_vol_idx(cam, 32, 11, 1), 0.5);
    hv_vol_set(cam, hv_vol_idx(cam, 31, 5, 5), 1.0); /* another slice: not drawn */
    int64_t rows, cols;
    hv_spine_slice_dims(cr->ct, HV_SPINE_SAGITTAL, &rows, &cols);
    HV_CHECK(rows == 12 && cols == 16, "slice %lld x %lld", (long long)rows, (long long)cols);
    uint8_t *rgb = malloc((size_t)rows * (size_t)cols * 3);
    HV_REQUIRE_V(rgb != NULL, "alloc");
    HV_CHECK_OK(hv_pipe_attn_overlay(cr, cam, 32, rgb));
    int n_bg = 0, n_mark = 0, n_half = 0, n_other = 0;
    for (int64_t p = 0; p < rows * cols; p++) {
        const uint8_t *c = rgb + p * 3;
        if (c[0] == 60 && c[1] == 60 && c[2] == 111) n_bg++;
        else if (c[0] == 171 && c[1] == 120 && c[2] == 120) n_mark++;
        else if (c[0] == 111 && c[1] == 162 && c[2] == 111) n_half++;
        else {
            if (!n_other) printf("# unexpected colour %d %d %d\n", c[0], c[1], c[2]);
            n_other++;
        }
    }
    HV_CHECK(n_mark == 1 && n_half == 1 && n_bg == rows * cols - 2 && n_other == 0,
             "overlay colours: %d marked, %d half, %d background, %d other", n_mark, n_half,
             n_bg, n_other);
    HV_CHECK(hv_pipe_attn_overlay(cr, cam, 64, rgb) == HV_ERR_ARG, "slice 64 refused");
    free(rgb);
    hv_vol_free(cam);
    hv_spine_crop_free(cr);
}

int main(void)
{
    check_summary();
    check_overlay();
    return hv_test_done();
}
