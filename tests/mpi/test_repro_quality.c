/*
 * test_repro_quality.c: the per-vertebra measures of reproduce's
 * synthesis-quality table (hv_repro_quality_vertebra, spec 11) on tiny
 * crops made by hand, 16 LR x 30 AP x 40 rows, target label 20, with the
 * expected values worked out from the definitions:
 *  - the original target is a 20-row x 21-column box (420 pixels a slice)
 *    on LR slices 3..12, so n = 10, floor(4n/5) = 8 slices from
 *    3 + (10 - 8) / 2 = 4: slices 4..11 (the central 80 % of the whole
 *    16-slice crop would be 2..13). Slice 7 has 400 target pixels (one
 *    column less: not > 400, skipped), slice 8 has 401 (one column less,
 *    one pixel more: kept): 7 qualifying slices. Slice 5's original CT is uniform (no data
 *    range: its values are NaN and skipped, not averaged);
 *  - the original CT is 20 in AP column 0, 220 in column 29, 21..219
 *    elsewhere, and 250 at one pixel on row 0 (outside the target's rows):
 *    a patch's data range is 200, a slice's 230. The synthesized CT is the
 *    original + 5 on slices 4..11 and + 50 on slices 3, 7 and 12 (which must
 *    not be scored): patch PSNR = 20 log10(200 / 5), global PSNR =
 *    20 log10(230 / 5);
 *  - the synthesized label lacks the target on slice 3 (420 voxels) and has
 *    100 more on slice 13; label 19 and 21 voxels elsewhere do not count:
 *    |A| = 8 * 420 + 400 + 401 = 4161, |B| = 4161 - 420 + 100 = 3841,
 *    |A & B| = 3741: Dice 7482 / 8002, IoU 3741 / 4261, RVD 320 / 4161;
 *  - identical crops: PSNR the cap (+inf otherwise), SSIM 1, Dice and IoU
 *    1, RVD 0;
 *  - no target, a target of one LR slice (floor(4/5) = 0 slices) and one of
 *    400 pixels a slice: not scored (HV_ERR_EMPTY), saying why;
 *  - hv_repro_quality_read: a store without synthesized CT is "not
 *    applicable"; one with synthesized crops but without the original ones
 *    (an older build's: /vertebrae/orig_ct and orig_label removed here) is
 *    refused, saying what to run again, and writes no CSV.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hv/reproduce.h"
#include "hv_test.h"
#include "store/store_check.h"

#define NI 16
#define NJ 30
#define NK 40
#define AT(i, j, k) (((size_t)(k) * NJ + (size_t)(j)) * NI + (size_t)(i))

/* the original target: rows 10..29, AP columns 5..25 on slices 3..12;
 * column 25 missing on slices 7 and 8, one more pixel (row 15, column 26)
 * on 8 */
static void original_label(uint8_t *lab)
{
    memset(lab, 0, (size_t)NI * NJ * NK);
    for (int i = 3; i <= 12; i++)
        for (int k = 10; k <= 29; k++)
            for (int j = 5; j <= (i == 7 || i == 8 ? 24 : 25); j++) lab[AT(i, j, k)] = 20;
    lab[AT(8, 26, 15)] = 20;
    /* a neighbour's voxels: ignored */
    for (int i = 3; i <= 12; i++)
        for (int k = 31; k <= 38; k++)
            for (int j = 5; j <= 25; j++) lab[AT(i, j, k)] = 21;
}

/* A one-case store (no case written) with synthesis.crops = crops. */
static void make_store(const char *path, int crops)
{
    static const char *const stages[2] = {"alpha", "store"};
    hv_store *s = store_test_create(path, 2, stages, 0, crops, 0);
    HV_REQUIRE_V(s != NULL, "create: %s", hv_error_detail());
    HV_CHECK_OK(hv_store_close(s));
}

static void test_read_refusals(void)
{
    char dir[4200], store[4300], csv[4300];
    snprintf(dir, sizeof dir, "%s", hv_test_tmpdir("repro_quality"));
    snprintf(store, sizeof store, "%s/masks.h5", dir);
    snprintf(csv, sizeof csv, "%s/q.csv", dir);
    hv_repro_qrow row;
    memset(&row, 0, sizeof row);
    make_store(store, 1);
    HV_CHECK_OK(hv_repro_quality_read(store, csv, &row));
    HV_CHECK(!row.applicable && strstr(row.note, "no synthesized CT"), "masks: n/a (%s)", row.note);
    snprintf(store, sizeof store, "%s/old.h5", dir);
    make_store(store, 2);
    hid_t f = H5Fopen(store, H5F_ACC_RDWR, H5P_DEFAULT);
    HV_REQUIRE_V(f >= 0 && H5Ldelete(f, "vertebrae/orig_ct", H5P_DEFAULT) >= 0 &&
                     H5Ldelete(f, "vertebrae/orig_label", H5P_DEFAULT) >= 0,
                 "remove the original crops");
    H5Fclose(f);
    memset(&row, 0, sizeof row);
    HV_CHECK(hv_repro_quality_read(store, csv, &row) == HV_ERR_UNSUPPORTED,
             "synthesized crops without the original ones refused");
    HV_CHECK(strstr(hv_error_detail(), "/vertebrae/orig_ct") &&
                 strstr(hv_error_detail(), "run this method again"),
             "says what is missing and what to run: %s", hv_error_detail());
    hv_error_clear();
    struct stat sb;
    HV_CHECK(stat(csv, &sb) != 0, "no quality CSV written");
}

int main(void)
{
    const size_t nv = (size_t)NI * NJ * NK;
    const int64_t dim[3] = {NI, NJ, NK};
    uint8_t *ct = malloc(nv), *lab = malloc(nv), *sct = malloc(nv), *slab = malloc(nv);
    HV_REQUIRE(ct && lab && sct && slab, "out of memory");
    for (int k = 0; k < NK; k++)
        for (int j = 0; j < NJ; j++)
            for (int i = 0; i < NI; i++)
                ct[AT(i, j, k)] = (uint8_t)(j == 0 ? 20 : j == NJ - 1 ? 220
                                                            : 21 + (7 * j + 13 * k + 3 * i) % 199);
    for (int i = 0; i < NI; i++) ct[AT(i, 15, 0)] = 250;
    for (int k = 0; k < NK; k++)
        for (int j = 0; j < NJ; j++) ct[AT(5, j, k)] = 100;
    original_label(lab);
    hv_repro_qvert q;

    /* identical */
    memcpy(sct, ct, nv);
    memcpy(slab, lab, nv);
    HV_CHECK_OK(hv_repro_quality_vertebra(ct, lab, sct, slab, 20, dim, &q));
    HV_CHECK(q.lr_first == 4 && q.lr_last == 11, "central 80 %%: slices %d..%d, want 4..11",
             q.lr_first, q.lr_last);
    HV_CHECK(q.n_slices == 7, "slices with > 400 target pixels: %d, want 7", q.n_slices);
    HV_CHECK(q.q[HV_REPRO_Q_PATCH_PSNR] == HV_REPRO_PSNR_CAP &&
                 q.q[HV_REPRO_Q_GLOBAL_PSNR] == HV_REPRO_PSNR_CAP,
             "identical: PSNR %g and %g, want the cap %g", q.q[HV_REPRO_Q_PATCH_PSNR],
             q.q[HV_REPRO_Q_GLOBAL_PSNR], HV_REPRO_PSNR_CAP);
    HV_CHECK_CLOSE(q.q[HV_REPRO_Q_PATCH_SSIM], 1.0, 1e-12, "identical: patch SSIM");
    HV_CHECK_CLOSE(q.q[HV_REPRO_Q_GLOBAL_SSIM], 1.0, 1e-12, "identical: global SSIM");
    HV_CHECK(q.q[HV_REPRO_Q_DICE] == 1 && q.q[HV_REPRO_Q_IOU] == 1 && q.q[HV_REPRO_Q_RVD] == 0,
             "identical: Dice %g, IoU %g, RVD %g", q.q[HV_REPRO_Q_DICE], q.q[HV_REPRO_Q_IOU],
             q.q[HV_REPRO_Q_RVD]);

    /* a constant offset on the scored slices, another on the others */
    for (int k = 0; k < NK; k++)
        for (int j = 0; j < NJ; j++)
            for (int i = 0; i < NI; i++) {
                const int d = i >= 4 && i <= 11 && i != 7 ? 5 : i == 3 || i == 7 || i == 12 ? 50 : 0;
                sct[AT(i, j, k)] = (uint8_t)(ct[AT(i, j, k)] + d);
            }
    for (int k = 10; k <= 29; k++)
        for (int j = 5; j <= 25; j++) slab[AT(3, j, k)] = 0;
    for (int k = 10; k <= 19; k++)
        for (int j = 5; j <= 14; j++) slab[AT(13, j, k)] = 20;
    for (int k = 0; k <= 5; k++)
        for (int j = 0; j <= 29; j++) slab[AT(6, j, k)] = 19;
    HV_CHECK_OK(hv_repro_quality_vertebra(ct, lab, sct, slab, 20, dim, &q));
    HV_CHECK(q.n_slices == 7, "offset: %d slices", q.n_slices);
    HV_CHECK_CLOSE(q.q[HV_REPRO_Q_PATCH_PSNR], 20.0 * log10(200.0 / 5.0), 1e-9,
                   "offset: patch PSNR, data range of the patch");
    HV_CHECK_CLOSE(q.q[HV_REPRO_Q_GLOBAL_PSNR], 20.0 * log10(230.0 / 5.0), 1e-9,
                   "offset: global PSNR, data range of the slice");
    /* a shift by 5 leaves SSIM's contrast-structure term 1 and the
     * luminance term 1 - 25 / (mu^2 + (mu+5)^2 + C1) >= 1 - 25 / 825 */
    HV_CHECK(q.q[HV_REPRO_Q_PATCH_SSIM] > 1 - 25.0 / 825 && q.q[HV_REPRO_Q_PATCH_SSIM] < 1,
             "offset: patch SSIM %g", q.q[HV_REPRO_Q_PATCH_SSIM]);
    HV_CHECK(q.q[HV_REPRO_Q_GLOBAL_SSIM] > 1 - 25.0 / 825 && q.q[HV_REPRO_Q_GLOBAL_SSIM] < 1,
             "offset: global SSIM %g", q.q[HV_REPRO_Q_GLOBAL_SSIM]);
    HV_CHECK_CLOSE(q.q[HV_REPRO_Q_DICE], 7482.0 / 8002.0, 1e-12, "Dice by counting");
    HV_CHECK_CLOSE(q.q[HV_REPRO_Q_IOU], 3741.0 / 4261.0, 1e-12, "IoU by counting");
    HV_CHECK_CLOSE(q.q[HV_REPRO_Q_RVD], 320.0 / 4161.0, 1e-12, "RVD by counting");

    /* not scored */
    memset(lab, 0, nv);
    HV_CHECK(hv_repro_quality_vertebra(ct, lab, sct, slab, 20, dim, &q) == HV_ERR_EMPTY,
             "no target: not scored");
    HV_CHECK(strstr(hv_error_detail(), "no target") != NULL, "says why: %s", hv_error_detail());
    HV_CHECK(q.q[HV_REPRO_Q_RVD] == 0 && q.lr_first == -1, "no target: RVD 0 (as the seed)");
    hv_error_clear();
    for (int k = 10; k <= 29; k++)
        for (int j = 0; j <= 29; j++) lab[AT(8, j, k)] = 20; /* 600 pixels on one slice */
    HV_CHECK(hv_repro_quality_vertebra(ct, lab, sct, slab, 20, dim, &q) == HV_ERR_EMPTY,
             "a target on one LR slice: not scored");
    HV_CHECK(q.n_slices == 0 && q.lr_last < q.lr_first, "one LR slice: no central slice");
    hv_error_clear();
    memset(lab, 0, nv);
    for (int i = 3; i <= 12; i++)
        for (int k = 10; k <= 29; k++)
            for (int j = 5; j <= 24; j++) lab[AT(i, j, k)] = 20; /* 400 a slice */
    HV_CHECK(hv_repro_quality_vertebra(ct, lab, sct, slab, 20, dim, &q) == HV_ERR_EMPTY,
             "400 pixels a slice: not scored");
    HV_CHECK(strstr(hv_error_detail(), "400") != NULL, "says why: %s", hv_error_detail());
    hv_error_clear();
    HV_CHECK(hv_repro_quality_vertebra(ct, lab, sct, slab, 20, (const int64_t[3]){0, NJ, NK},
                                       &q) == HV_ERR_ARG,
             "bad dims refused");
    hv_error_clear();
    free(ct);
    free(lab);
    free(sct);
    free(slab);
    test_read_refusals();
    return hv_test_done();
}
