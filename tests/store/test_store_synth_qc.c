/*
 * test_store_synth_qc.c: `export`'s picture of each synthesized vertebra
 * (DIR/synth/<case>_<level>_qc.png) against pixels worked out here by hand
 * from crops and QC slices made by formulas, written into a store through
 * its API (no pipeline, no generator).
 *
 * One case, three vertebrae, L1 (label 20), L2 (21), L3 (22):
 *  - L1: synthesized; QC picture;
 *  - L2: fell back (flag synth_fallback, no crops); QC picture: no picture;
 *  - L3: synthesized; no QC picture (all-zero slot): no picture.
 * The formulas (crop voxel (i, j, k), LR x AP x rows, i fastest):
 *  - synthesized label crop of vertebra v: the target's label 20 + v in the
 *    box i in [7, 57), j in [60, 200), k in [100, 150 + |i - 32|) (so LR
 *    slice 32 is the only one whose box ends at k = 149), the next label
 *    21 + v at k in [40, 90) and 19 + v at k in [160, 220) over the same
 *    i and j (neighbours: not outlined);
 *  - synthesized CT crop: (3 i + 5 j + 7 k + 11 v) mod 256;
 *  - QC picture: sagittal CT (7 + x + 3 y) mod 251 at picture row y,
 *    column x; sagittal label 255 in rows [120, 155] x columns [60, 190]
 *    (the original, collapsed target), 0 elsewhere; coronal CT 30 and a
 *    coronal label square at rows and columns [10, 20), so a picture from
 *    the wrong view changes pixels.
 * By hand, with the documented layout (docs/hdf5-schema.md, the QC
 * pictures: row 0 cranial, column 0 anterior; the crop's k runs caudal to
 * cranial and j posterior to anterior, so crop (j, k) is column 255 - j,
 * row 255 - k): the synthesized target on LR slice 32 fills rows
 * 255 - 149 = 106 to 255 - 100 = 155 and columns 255 - 199 = 56 to
 * 255 - 60 = 195; its outline is that rectangle's border (rows 106 and
 * 155, columns 56 and 195), in (40, 200, 255); the original's border (rows
 * 120 and 155, columns 60 and 190) in (255, 40, 40), under the synthesized
 * one where they meet (row 155, columns 60 to 190). The synthesized CT at
 * row y, column x is (96 + 5 (255 - x) + 7 (255 - y) + 11 v) mod 256.
 * The picture is 516 x 296: left panel columns 0-255 (the QC CT), black
 * columns 256-259, right panel columns 260-515 (the synthesized CT; with
 * synthesis.crops = masks the QC CT again), then a caption strip of 40
 * rows (rows 256-295: 2 lines of 18 rows, 2 rows of margin above and below
 * them); the legend's swatches are exact: (40, 200, 255) at rows 280-289, columns 4-13, and (255, 40, 40)
 * at rows 280-289, columns 264-273.
 * Also: no picture without HV_STORE_EXPORT_QC, nor from a store without QC
 * pictures (the NIfTI files still come).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hv/io.h"
#include "hv/store.h"
#include "hv_test.h"
#include "hv_test_png.h"
#include "store/store_check.h"

static const char *const stages[2] = {"alpha", "store"};

static int iabs(int a) { return a < 0 ? -a : a; }

static uint8_t lab(int v, int i, int j, int k)
{
    if (i < 7 || i >= 57 || j < 60 || j >= 200) return 0;
    if (k >= 100 && k < 150 + iabs(i - 32)) return (uint8_t)(20 + v);
    if (k >= 40 && k < 90) return (uint8_t)(21 + v);
    if (k >= 160 && k < 220) return (uint8_t)(19 + v);
    return 0;
}

static uint8_t ctv(int v, int i, int j, int k)
{
    return (uint8_t)((3 * i + 5 * j + 7 * k + 11 * v) % 256);
}

static uint8_t qc_grey(int y, int x) { return (uint8_t)((7 + x + 3 * y) % 251); }

static int in_ori(int y, int x) { return y >= 120 && y <= 155 && x >= 60 && x <= 190; }

/* Encode vertebra v's crop (ct: the CT formula, else the label's). */
static void encode(int v, int ct, uint8_t **z, size_t *zl)
{
    const int64_t dim[3] = {HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K};
    hv_volume *o = NULL;
    HV_REQUIRE_V(hv_vol_create(&o, dim, HV_DTYPE_U8, NULL) == HV_OK, "vol");
    uint8_t *u = o->data;
    for (int k = 0; k < HV_RUN_CAM_K; k++)
        for (int j = 0; j < HV_RUN_CAM_J; j++)
            for (int i = 0; i < HV_RUN_CAM_I; i++)
                u[hv_vol_idx(o, i, j, k)] = ct ? ctv(v, i, j, k) : lab(v, i, j, k);
    HV_REQUIRE_V(hv_store_crop_encode(o, z, zl) == HV_OK, "encode: %s", hv_error_detail());
    hv_vol_free(o);
}

/* The store: crops 1 masks, 2 full; qc: with QC pictures. */
static void make_store(const char *path, int crops, int qc)
{
    hv_run_crow row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "c0");
    row.rank = -1;
    hv_store_create_info ci = {1, qc ? 1 : 0, "[test]\n", 1, 1, "2025-01-01T00:00:00Z", "in", 2,
                               stages, 0, crops, 0};
    hv_store *s = NULL;
    HV_REQUIRE_V(hv_store_create(path, &ci, &row, &s) == HV_OK, "create: %s", hv_error_detail());
    hv_case_result r;
    store_test_case(&r, 3, 20);
    r.seconds[0] = r.seconds[1] = 1;
    r.v[1].flags = HV_MEAS_SYNTH_FALLBACK;
    /* a full store's record also carries the original crops (here the
     * synthesized ones again: export does not draw them) */
    const int vw[4] = {HV_STORE_VOL_SYNTH_LABEL, HV_STORE_VOL_SYNTH_CT, HV_STORE_VOL_ORIG_LABEL,
                       HV_STORE_VOL_ORIG_CT};
    for (int q = 0; q < 4; q++) {
        const int ct = q % 2;
        uint8_t *z0 = NULL, *z2 = NULL;
        size_t l0 = 0, l2 = 0;
        encode(0, ct, &z0, &l0);
        encode(2, ct, &z2, &l2);
        uint8_t *cat = malloc(l0 + l2);
        HV_REQUIRE_V(cat != NULL, "alloc");
        memcpy(cat, z0, l0);
        memcpy(cat + l0, z2, l2);
        free(z0);
        free(z2);
        r.vol_z[vw[q]] = cat;
        r.vol_z_len[vw[q]][0] = (uint32_t)l0;
        r.vol_z_len[vw[q]][1] = 0; /* fell back */
        r.vol_z_len[vw[q]][2] = (uint32_t)l2;
    }
    if (qc) {
        const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
        r.qc = calloc(3, HV_RUN_QC_BYTES);
        HV_REQUIRE_V(r.qc != NULL, "alloc");
        for (int v = 0; v < 2; v++) { /* L3's slot stays all zero: no picture */
            uint8_t *slot = r.qc + (size_t)v * HV_RUN_QC_BYTES;
            uint8_t *sct = slot + ((size_t)HV_QC_SAG * HV_QC_CHANNELS + HV_QC_CT) * plane;
            uint8_t *slab = slot + ((size_t)HV_QC_SAG * HV_QC_CHANNELS + HV_QC_LABEL) * plane;
            uint8_t *cct = slot + ((size_t)HV_QC_COR * HV_QC_CHANNELS + HV_QC_CT) * plane;
            uint8_t *clab = slot + ((size_t)HV_QC_COR * HV_QC_CHANNELS + HV_QC_LABEL) * plane;
            memset(cct, 30, plane);
            for (int y = 0; y < HV_RUN_QC; y++)
                for (int x = 0; x < HV_RUN_QC; x++) {
                    size_t q = (size_t)y * HV_RUN_QC + (size_t)x;
                    sct[q] = qc_grey(y, x);
                    slab[q] = in_ori(y, x) ? 255 : 0;
                    clab[q] = y >= 10 && y < 20 && x >= 10 && x < 20 ? 255 : 0;
                }
        }
    }
    HV_CHECK_OK(hv_store_put_case(s, 0, &r));
    hv_case_result_clear(&r);
    HV_CHECK_OK(hv_store_close(s));
    char *rep = NULL;
    HV_CHECK(hv_store_validate(path, &rep) == HV_OK, "%s valid: %s\n%s", path, hv_error_detail(),
             rep ? rep : "");
    free(rep);
}

/* Panel pixel (y, x) by hand: the outlines over grey g. */
static void want_px(int y, int x, int g, uint8_t out[3])
{
    int syn_edge = y >= 106 && y <= 155 && x >= 56 && x <= 195 &&
                   (y == 106 || y == 155 || x == 56 || x == 195);
    int ori_edge = in_ori(y, x) && (y == 120 || y == 155 || x == 60 || x == 190);
    static const uint8_t cyan[3] = {40, 200, 255}, red[3] = {255, 40, 40};
    if (syn_edge) memcpy(out, cyan, 3);
    else if (ori_edge) memcpy(out, red, 3);
    else out[0] = out[1] = out[2] = (uint8_t)g;
}

/* The picture of vertebra v at path; full: the right panel is the
 * synthesized CT (else the QC CT again). */
static void check_picture(const char *path, int v, int full)
{
    int w = 0, h = 0;
    uint8_t *px = hv_test_read_png(path, &w, &h, NULL);
    HV_CHECK(px && w == 516 && h == 296, "%s: a 516 x 296 picture (%d x %d)", path, w, h);
    if (!px || w != 516 || h != 296) {
        free(px);
        return;
    }
    long bad = 0;
    for (int y = 0; y < 256; y++)
        for (int x = 0; x < 516; x++) {
            uint8_t want[3] = {0, 0, 0};
            if (x < 256) {
                want_px(y, x, qc_grey(y, x), want);
            } else if (x >= 260) {
                int c = x - 260;
                int g = full ? (96 + 5 * (255 - c) + 7 * (255 - y) + 11 * v) % 256 : qc_grey(y, c);
                want_px(y, c, g, want);
            }
            const uint8_t *p = px + 3 * ((size_t)y * 516 + (size_t)x);
            if (memcmp(p, want, 3)) {
                if (bad < 3)
                    printf("# %s (row %d, column %d): %d %d %d, want %d %d %d\n", path, y, x, p[0],
                           p[1], p[2], want[0], want[1], want[2]);
                bad++;
            }
        }
    HV_CHECK(bad == 0, "%s: %ld picture pixels differ from the hand-made ones", path, bad);
    /* the legend's swatches, exact; some text on the first caption line */
    long swatch_bad = 0, text_px = 0;
    for (int y = 280; y < 290; y++)
        for (int x = 0; x < 10; x++) {
            const uint8_t *a = px + 3 * ((size_t)y * 516 + 4 + (size_t)x);
            const uint8_t *b = px + 3 * ((size_t)y * 516 + 264 + (size_t)x);
            swatch_bad += a[0] != 40 || a[1] != 200 || a[2] != 255;
            swatch_bad += b[0] != 255 || b[1] != 40 || b[2] != 40;
        }
    for (int y = 256; y < 276; y++)
        for (int x = 0; x < 516; x++) text_px += px[3 * ((size_t)y * 516 + (size_t)x)] > 100;
    HV_CHECK(swatch_bad == 0, "%s: %ld swatch pixels of another colour", path, swatch_bad);
    HV_CHECK(text_px > 50, "%s: the caption's first line has text (%ld light pixels)", path,
             text_px);
    free(px);
}

int main(void)
{
    char dir[4200], store[4300], out[4300], p[4400];
    snprintf(dir, sizeof dir, "%s", hv_test_tmpdir("store_synth_qc"));
    long n_png = -1, n_synth = -1;

    /* synthesis.crops = full, with QC pictures */
    snprintf(store, sizeof store, "%s/full.h5", dir);
    make_store(store, 2, 1);
    snprintf(out, sizeof out, "%s/exp-full", dir);
    HV_CHECK_OK(hv_store_export(store, out, HV_STORE_EXPORT_QC | HV_STORE_EXPORT_SYNTH, &n_png,
                                NULL, &n_synth));
    /* crop files: label, CT, original CT and original label of L1 and L3 */
    HV_CHECK(n_png == 4 && n_synth == 8, "4 QC pictures (%ld), 8 crop files (%ld)", n_png,
             n_synth);
    snprintf(p, sizeof p, "%s/synth/c0_L1_qc.png", out);
    check_picture(p, 0, 1);
    snprintf(p, sizeof p, "%s/synth/c0_L2_qc.png", out);
    HV_CHECK(hv_test_absent(p), "L2 fell back: no picture");
    snprintf(p, sizeof p, "%s/synth/c0_L3_qc.png", out);
    HV_CHECK(hv_test_absent(p), "L3 has no QC picture: no picture");
    snprintf(p, sizeof p, "%s/synth/c0_L3_ct.nii.gz", out);
    HV_CHECK(!hv_test_absent(p), "L3's crops are exported all the same");
    snprintf(p, sizeof p, "%s/synth/c0_L3_orig_label.nii.gz", out);
    HV_CHECK(!hv_test_absent(p), "L3's original label crop too");

    /* crops only: no pictures */
    snprintf(out, sizeof out, "%s/exp-crops", dir);
    HV_CHECK_OK(hv_store_export(store, out, HV_STORE_EXPORT_SYNTH, NULL, NULL, &n_synth));
    snprintf(p, sizeof p, "%s/synth/c0_L1_qc.png", out);
    HV_CHECK(n_synth == 8 && hv_test_absent(p), "without HV_STORE_EXPORT_QC: crops (%ld), no picture",
             n_synth);

    /* synthesis.crops = masks: the QC CT on both sides */
    snprintf(store, sizeof store, "%s/masks.h5", dir);
    make_store(store, 1, 1);
    snprintf(out, sizeof out, "%s/exp-masks", dir);
    HV_CHECK_OK(hv_store_export_csv(store, out));
    snprintf(p, sizeof p, "%s/synth/c0_L1_qc.png", out);
    check_picture(p, 0, 0);

    /* no QC pictures in the store: the crops, no picture */
    snprintf(store, sizeof store, "%s/noqc.h5", dir);
    make_store(store, 2, 0);
    snprintf(out, sizeof out, "%s/exp-noqc", dir);
    HV_CHECK_OK(hv_store_export(store, out, HV_STORE_EXPORT_QC | HV_STORE_EXPORT_SYNTH, &n_png,
                                NULL, &n_synth));
    snprintf(p, sizeof p, "%s/synth/c0_L1_qc.png", out);
    HV_CHECK(n_synth == 8 && n_png == 0 && hv_test_absent(p), "no QC pictures: no picture (%ld crops)",
             n_synth);
    return hv_test_done();
}
