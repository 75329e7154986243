/*
 * test_store_cam_export.c: `export` of the attention maps (/vertebrae/cam):
 * the NIfTI volume of every vertebra with a map, and its pictures, against
 * values worked out here from bytes written into a store by hand (through
 * the store's API, no attention stage, no classifier).
 *
 * One case, three vertebrae (T12, L1, L2), QC pictures (sagittal CT 100
 * everywhere; coronal CT 30 and empty labels, so taking the wrong view or
 * channel changes every colour):
 *  - T12: map byte 204 on LR slice 32 at crop rows k >= 128, 51 below, 0 at
 *    AP j >= 192; byte 255 on LR slice 40 at k >= 128 and j >= 192, its
 *    maximum (cam_max_slice 40 in the table);
 *  - L1: byte 255 on LR slice 32 at k >= 128 (cam_max_slice 32);
 *  - L2: no map (its slot stays empty): no files.
 * Picture rows and columns follow the documented layouts: the store's crop
 * layout has k caudal first and j anterior increasing (docs/hdf5-schema.md);
 * a sagittal picture has row 0 cranial and column 0 anterior (hv/spine.h),
 * so crop (j, k) is picture column 255 - j, row 255 - k.
 * Colours by hand: JET(x) = clamp(1.5 - |4x - c|) for c = 3, 2, 1, blended
 * 0.6 grey + 0.4 x 255 x JET (grey 100): byte 204 (x = 0.8, JET (1, 0.3,
 * 0)) -> (162, 91, 60); byte 51 (x = 0.2, JET (0, 0.3, 1)) -> (60, 91, 162);
 * byte 0 (JET (0, 0, 0.5)) -> (60, 60, 111); byte 255 (JET (0.5, 0, 0)) ->
 * (111, 60, 60). The map alone is 255 x JET: byte 255 -> (127.5, 0, 0),
 * byte 0 -> (0, 0, 127.5) (127 or 128 accepted: a tie in rounding).
 *  - with the QC pictures: T12_cam.png is slice 40 alone (the store holds no
 *    CT of slice 40), T12_cam_qc.png slice 32 over the QC CT; L1_cam.png is
 *    slice 32 over the CT (its maximum is on the stored slice) and
 *    L1_cam_qc.png the same picture;
 *  - the NIfTI volumes: 64 x 256 x 256, every voxel byte / 255;
 *  - a store without QC pictures: the NIfTI volumes and the maps alone
 *    (L1's slice 32 in JET without CT), no _cam_qc.png; T12's row there
 *    says cam_max_slice -1, and the picture is still slice 40 (the map's
 *    own maximum);
 *  - maps only (no HV_STORE_EXPORT_QC): volumes, no pictures; a store
 *    without /vertebrae/cam: no cam folder.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
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

/* the hand-chosen byte of vertebra v's map at crop voxel (i, j, k) */
static int cam_byte(int v, int i, int j, int k)
{
    if (v == 0) {
        if (i == 32) return j >= 192 ? 0 : k >= 128 ? 204 : 51;
        if (i == 40) return j >= 192 && k >= 128 ? 255 : 0;
        return 0;
    }
    if (v == 1) return i == 32 && k >= 128 ? 255 : 0;
    return 0;
}

/* vertebra v's map as F32 whose stored byte (x 255 truncated) is cam_byte */
static hv_volume *make_map(int v)
{
    const int64_t dim[3] = {HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K};
    hv_volume *m = NULL;
    if (hv_vol_create(&m, dim, HV_DTYPE_F32, NULL) != HV_OK) return NULL;
    float *f = m->data;
    for (int k = 0; k < HV_RUN_CAM_K; k++)
        for (int j = 0; j < HV_RUN_CAM_J; j++)
            for (int i = 0; i < HV_RUN_CAM_I; i++) {
                int b = cam_byte(v, i, j, k);
                f[hv_vol_idx(m, i, j, k)] = b == 255 ? 1.0f : b ? ((float)b + 0.5f) / 255.0f : 0;
            }
    return m;
}

/* The case: three vertebrae, maps on the first two; QC pictures with qc. */
static void make_result(hv_case_result *r, int qc, int t12_max)
{
    store_test_case(r, 3, 19); /* rank 0, grade_rule 0 */
    r->v[0].p_fracture = 0.5, r->v[0].cam_mass_body = 0.25, r->v[0].cam_max_slice = t12_max;
    r->v[1].p_fracture = 0.5, r->v[1].cam_mass_body = 0.25, r->v[1].cam_max_slice = 32;
    uint8_t *z[2] = {NULL, NULL};
    size_t zl[2] = {0, 0};
    for (int v = 0; v < 2; v++) {
        hv_volume *m = make_map(v);
        HV_REQUIRE_V(m && hv_store_cam_encode(m, &z[v], &zl[v]) == HV_OK, "encode %d", v);
        hv_vol_free(m);
    }
    r->vol_z[HV_STORE_VOL_CAM] = malloc(zl[0] + zl[1]);
    HV_REQUIRE_V(r->vol_z[HV_STORE_VOL_CAM] != NULL, "alloc");
    memcpy(r->vol_z[HV_STORE_VOL_CAM], z[0], zl[0]);
    memcpy(r->vol_z[HV_STORE_VOL_CAM] + zl[0], z[1], zl[1]);
    r->vol_z_len[HV_STORE_VOL_CAM][0] = (uint32_t)zl[0];
    r->vol_z_len[HV_STORE_VOL_CAM][1] = (uint32_t)zl[1];
    r->vol_z_len[HV_STORE_VOL_CAM][2] = 0;
    free(z[0]);
    free(z[1]);
    if (!qc) return;
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    r->qc = calloc(3, HV_RUN_QC_BYTES);
    HV_REQUIRE_V(r->qc != NULL, "alloc");
    for (int v = 0; v < 3; v++) {
        uint8_t *slot = r->qc + (size_t)v * HV_RUN_QC_BYTES;
        memset(slot + ((size_t)HV_QC_SAG * HV_QC_CHANNELS + HV_QC_CT) * plane, 100, plane);
        memset(slot + ((size_t)HV_QC_COR * HV_QC_CHANNELS + HV_QC_CT) * plane, 30, plane);
    }
}

static void make_store(const char *path, int qc, int cam, int t12_max)
{
    hv_run_crow row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "c0");
    row.rank = -1;
    hv_store_create_info ci = {1, qc ? 1 : 0, "[test]\n", 1, 1, "2025-01-01T00:00:00Z", "in", 2,
                               stages, cam, 0, 0};
    hv_store *s = NULL;
    HV_REQUIRE_V(hv_store_create(path, &ci, &row, &s) == HV_OK, "create: %s", hv_error_detail());
    hv_case_result r;
    make_result(&r, qc, t12_max);
    r.seconds[0] = r.seconds[1] = 1;
    HV_CHECK_OK(hv_store_put_case(s, 0, &r));
    hv_case_result_clear(&r);
    HV_CHECK_OK(hv_store_close(s));
}

typedef struct {
    int r, g, b;
} rgb3;

/* 127.5 rounds to either neighbour */
static int near(int got, int want) { return want < 0 ? got == 127 || got == 128 : got == want; }
#define HALF (-1)

/* The picture at `path` is 256 x 256 and every pixel (row y, column x) has
 * the colour want(y, x). */
static void check_png(const char *path, rgb3 (*want)(int y, int x))
{
    int w = 0, h = 0;
    uint8_t *px = hv_test_read_png(path, &w, &h, NULL);
    HV_CHECK(px && w == 256 && h == 256, "%s: a 256 x 256 picture (%d x %d)", path, w, h);
    if (!px) return;
    long bad = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = px + 3 * ((size_t)y * 256 + (size_t)x);
            rgb3 c = want(y, x);
            if (!near(p[0], c.r) || !near(p[1], c.g) || !near(p[2], c.b)) {
                if (!bad) printf("# %s (row %d, column %d): %d %d %d, want %d %d %d\n", path, y, x,
                                 p[0], p[1], p[2], c.r, c.g, c.b);
                bad++;
            }
        }
    HV_CHECK(bad == 0, "%s: %ld pixels of another colour", path, bad);
    free(px);
}

/* crop k >= 128 is picture row < 128; crop j >= 192 is picture column < 64 */
static rgb3 t12_qc(int y, int x)
{
    if (x < 64) return (rgb3){60, 60, 111};
    return y < 128 ? (rgb3){162, 91, 60} : (rgb3){60, 91, 162};
}
static rgb3 t12_max_alone(int y, int x)
{
    return y < 128 && x < 64 ? (rgb3){HALF, 0, 0} : (rgb3){0, 0, HALF};
}
static rgb3 l1_over(int y, int x)
{
    (void)x;
    return y < 128 ? (rgb3){111, 60, 60} : (rgb3){60, 60, 111};
}
static rgb3 l1_alone(int y, int x)
{
    (void)x;
    return y < 128 ? (rgb3){HALF, 0, 0} : (rgb3){0, 0, HALF};
}

/* The volume at path: 64 x 256 x 256 floats, voxel (i, j, k) byte / 255 of
 * vertebra v's map. */
static void check_nifti(const char *path, int v)
{
    hv_volume *vol = NULL;
    HV_CHECK(hv_io_nifti_read(path, HV_DTYPE_F32, NULL, &vol, NULL) == HV_OK, "read %s: %s", path,
             hv_error_detail());
    if (!vol) return;
    HV_CHECK(vol->dim[0] == 64 && vol->dim[1] == 256 && vol->dim[2] == 256, "%s: dims %lld %lld %lld",
             path, (long long)vol->dim[0], (long long)vol->dim[1], (long long)vol->dim[2]);
    long bad = 0;
    if (vol->dim[0] == 64 && vol->dim[1] == 256 && vol->dim[2] == 256) {
        const float *f = vol->data;
        for (int k = 0; k < 256; k++)
            for (int j = 0; j < 256; j++)
                for (int i = 0; i < 64; i++) {
                    double want = cam_byte(v, i, j, k) / 255.0;
                    bad += fabs(f[i + 64 * (j + 256 * (size_t)k)] - want) > 1e-6;
                }
    }
    HV_CHECK(bad == 0, "%s: %ld voxels differ from byte / 255", path, bad);
    hv_vol_free(vol);
}

int main(void)
{
    char dir[4200], store[4300], out[4300], p[4400];
    snprintf(dir, sizeof dir, "%s", hv_test_tmpdir("store_cam_export"));
    long n_png = -1, n_cam = -1;

    /* with QC pictures */
    snprintf(store, sizeof store, "%s/qc.h5", dir);
    make_store(store, 1, 1, 40);
    char *rep = NULL;
    HV_CHECK(hv_store_validate(store, &rep) == HV_OK, "valid: %s\n%s", hv_error_detail(),
             rep ? rep : "");
    free(rep);
    snprintf(out, sizeof out, "%s/exp-qc", dir);
    HV_CHECK_OK(hv_store_export(store, out, HV_STORE_EXPORT_QC | HV_STORE_EXPORT_CAM, &n_png,
                                &n_cam, NULL));
    HV_CHECK(n_png == 6 && n_cam == 2, "6 QC pictures (%ld), 2 maps (%ld)", n_png, n_cam);
    snprintf(p, sizeof p, "%s/cam/c0_T12_cam.nii.gz", out);
    check_nifti(p, 0);
    snprintf(p, sizeof p, "%s/cam/c0_L1_cam.nii.gz", out);
    check_nifti(p, 1);
    snprintf(p, sizeof p, "%s/cam/c0_T12_cam.png", out);
    check_png(p, t12_max_alone);
    snprintf(p, sizeof p, "%s/cam/c0_T12_cam_qc.png", out);
    check_png(p, t12_qc);
    snprintf(p, sizeof p, "%s/cam/c0_L1_cam.png", out);
    check_png(p, l1_over);
    snprintf(p, sizeof p, "%s/cam/c0_L1_cam_qc.png", out);
    check_png(p, l1_over);
    const char *none[] = {"c0_L2_cam.nii.gz", "c0_L2_cam.png", "c0_L2_cam_qc.png"};
    for (int q = 0; q < 3; q++) {
        snprintf(p, sizeof p, "%s/cam/%s", out, none[q]);
        HV_CHECK(hv_test_absent(p), "L2 has no map: no %s", none[q]);
    }

    /* without QC pictures: the maps alone; T12's row without its slice */
    snprintf(store, sizeof store, "%s/noqc.h5", dir);
    make_store(store, 0, 1, -1);
    snprintf(out, sizeof out, "%s/exp-noqc", dir);
    HV_CHECK_OK(hv_store_export_csv(store, out));
    snprintf(p, sizeof p, "%s/cam/c0_T12_cam.nii.gz", out);
    check_nifti(p, 0);
    snprintf(p, sizeof p, "%s/cam/c0_T12_cam.png", out);
    check_png(p, t12_max_alone);
    snprintf(p, sizeof p, "%s/cam/c0_L1_cam.png", out);
    check_png(p, l1_alone);
    snprintf(p, sizeof p, "%s/cam/c0_L1_cam_qc.png", out);
    HV_CHECK(hv_test_absent(p), "no QC picture: no _cam_qc.png");

    /* maps only: volumes, no pictures */
    snprintf(out, sizeof out, "%s/exp-maps", dir);
    HV_CHECK_OK(hv_store_export(store, out, HV_STORE_EXPORT_CAM, &n_png, &n_cam, NULL));
    snprintf(p, sizeof p, "%s/cam/c0_L1_cam.nii.gz", out);
    HV_CHECK(n_cam == 2 && n_png == 0 && !hv_test_absent(p), "maps only: 2 volumes (%ld)", n_cam);
    snprintf(p, sizeof p, "%s/cam/c0_L1_cam.png", out);
    HV_CHECK(hv_test_absent(p), "maps only: no pictures");

    /* a store without maps: no cam folder */
    snprintf(store, sizeof store, "%s/nocam.h5", dir);
    make_store(store, 1, 0, 40);
    snprintf(out, sizeof out, "%s/exp-nocam", dir);
    HV_CHECK_OK(hv_store_export(store, out, HV_STORE_EXPORT_QC | HV_STORE_EXPORT_CAM, &n_png,
                                &n_cam, NULL));
    snprintf(p, sizeof p, "%s/cam", out);
    HV_CHECK(n_cam == 0 && n_png == 6 && hv_test_absent(p), "no maps: no cam folder (%ld)", n_cam);
    return hv_test_done();
}
