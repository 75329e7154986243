/*
 * test_store_crop3d.c: the 3-D grader's box (grader.method = senet3d):
 * hv_spine_crop_box on crops made here, and the 64^3 box through the
 * journal into /vertebrae/crop3d and back (hv_store_vol_encode,
 * H5Dwrite_chunk, hv_store_read_vol), the validator's shape check.
 *
 * Expected values are worked out by hand from the crop's formula, never
 * from our own output:
 *  - a tiny 6 x 10 x 9 crop, box side 4: the box starts at crop voxel
 *    (6/2 - 2, 10/2 - 2, 9/2 - 2) = (1, 3, 2); crop voxel (i, j, k) holds
 *    i + 10 j + 100 k + 0.75 (over 255 where k >= 3: 255), so box voxel
 *    (a, b, c) = min(255, trunc(1 + a + 10 (3 + b) + 100 (2 + c))) ...;
 *    negative values and NaN give 0; the affine moves by the start;
 *  - a box of side 8 on the 6-wide axis: columns before the crop are 0;
 *  - the full-size crop (64 x 256 x 256), CT (i + 3 j + 5 k) mod 256 + 0.5:
 *    the stored box's voxel (a, b, c) is (a + 3 (96 + b) + 5 (96 + c)) mod
 *    256.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/spine.h"
#include "hv/store.h"
#include "hv_test.h"
#include "store/store_check.h"

static const char *const stages[2] = {"alpha", "store"};

static hv_spine_crop *make_crop(const int64_t dim[3], float (*fn)(int64_t, int64_t, int64_t))
{
    hv_spine_crop *cr = calloc(1, sizeof *cr);
    if (!cr) return NULL;
    double A[4][4] = {{2, 0, 0, 10}, {0, 1, 0, 20}, {0, 0, 0.5, 30}, {0, 0, 0, 1}};
    if (hv_vol_create(&cr->ct, dim, HV_DTYPE_F32, A) != HV_OK) {
        free(cr);
        return NULL;
    }
    float *f = cr->ct->data;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) f[hv_vol_idx(cr->ct, i, j, k)] = fn(i, j, k);
    cr->label = 20;
    return cr;
}

static float tiny(int64_t i, int64_t j, int64_t k)
{
    if (i == 2 && j == 4 && k == 3) return -40.0f; /* box (1, 1, 1): 0 */
    if (i == 3 && j == 4 && k == 2) return NAN;    /* box (2, 1, 0): 0 */
    return (float)(i + 10 * j + 100 * k) + 0.75f;
}

static float full(int64_t i, int64_t j, int64_t k)
{
    return (float)((i + 3 * j + 5 * k) % 256) + 0.5f;
}

static void test_tiny(void)
{
    const int64_t dim[3] = {6, 10, 9};
    hv_spine_crop *cr = make_crop(dim, tiny);
    HV_REQUIRE_V(cr != NULL, "crop");
    hv_volume *b = NULL;
    HV_REQUIRE_V(hv_spine_crop_box(cr, 4, &b) == HV_OK, "box: %s", hv_error_detail());
    HV_CHECK(b->dtype == HV_DTYPE_U8 && b->dim[0] == 4 && b->dim[1] == 4 && b->dim[2] == 4,
             "box 4^3 U8");
    const uint8_t *u = b->data;
    size_t bad = 0;
    for (int c = 0; c < 4; c++)
        for (int bb = 0; bb < 4; bb++)
            for (int a = 0; a < 4; a++) {
                long v = (1 + a) + 10 * (3 + bb) + 100 * (2 + c); /* + 0.75, truncated */
                long want = v > 255 ? 255 : v;
                if ((a == 1 && bb == 1 && c == 1) || (a == 2 && bb == 1 && c == 0)) want = 0;
                if (u[(c * 4 + bb) * 4 + a] != want) {
                    if (bad < 5)
                        printf("# box (%d,%d,%d) = %d, want %ld\n", a, bb, c,
                               u[(c * 4 + bb) * 4 + a], want);
                    bad++;
                }
            }
    HV_CHECK(bad == 0, "tiny box: %zu wrong voxels", bad);
    /* spot values by hand: (0,0,0) = crop (1,3,2) = 1 + 30 + 200 = 231; (3,0,0) = crop
     * (4,3,2) = 234; (0,1,0) = crop (1,4,2) = 241; (0,0,1) = crop (1,3,3): 331 -> 255 */
    HV_CHECK(u[0] == 231 && u[3] == 234 && u[4] == 241 && u[16] == 255,
             "spot values %d %d %d %d (want 231 234 241 255)", u[0], u[3], u[4], u[16]);
    /* affine: the crop's, its origin at crop voxel (1, 3, 2): (10 + 2, 20 + 3, 30 + 1) */
    HV_CHECK(b->affine[0][3] == 12 && b->affine[1][3] == 23 && b->affine[2][3] == 31 &&
                 b->affine[0][0] == 2 && b->affine[2][2] == 0.5,
             "box affine origin (%g, %g, %g)", b->affine[0][3], b->affine[1][3], b->affine[2][3]);
    hv_vol_free(b);
    /* side 8 along the 6-wide i axis: start 3 - 4 = -1: box column 0 and 7 lie
     * outside the crop (0); column 1 is crop column 0 */
    HV_REQUIRE_V(hv_spine_crop_box(cr, 8, &b) == HV_OK, "box 8: %s", hv_error_detail());
    u = b->data;
    /* box (a, b, c) = crop (a - 1, b + 1, c + 0): (1, 0, 0) = 0 + 10 + 0 = 10 */
    HV_CHECK(u[0] == 0 && u[7] == 0 && u[1] == 10 && u[6] == 15,
             "side 8: %d %d %d %d (want 0 0 10 15)", u[0], u[7], u[1], u[6]);
    hv_vol_free(b);
    HV_CHECK(hv_spine_crop_box(cr, 0, &b) == HV_ERR_ARG && !b, "side 0 refused");
    HV_CHECK(hv_spine_crop_box(NULL, 4, &b) == HV_ERR_ARG && !b, "no crop refused");
    hv_spine_crop_free(cr);
}

typedef struct {
    hv_store *s;
    uint8_t *z;
    size_t zl;
    int n;
} replay_ctx;

static hv_status on_record(void *user, const hv_case_result *r)
{
    replay_ctx *c = user;
    c->n++;
    HV_CHECK(r->vol_z[HV_STORE_VOL_CROP3D] && r->vol_z_len[HV_STORE_VOL_CROP3D][0] == 0 &&
                 r->vol_z_len[HV_STORE_VOL_CROP3D][1] == c->zl &&
                 !memcmp(r->vol_z[HV_STORE_VOL_CROP3D], c->z, c->zl),
             "crop3d: the chunk comes back from the journal byte for byte");
    return hv_store_put_case(c->s, 0, r);
}

static void test_store(void)
{
    char dir[4200], store[4300], jdir[4300];
    snprintf(dir, sizeof dir, "%s", hv_test_tmpdir("store_crop3d"));
    snprintf(store, sizeof store, "%s/s.h5", dir);
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    HV_REQUIRE_V(hv_mkdir_p(jdir) == HV_OK, "mkdir");

    const int64_t dim[3] = {64, 256, 256};
    hv_spine_crop *cr = make_crop(dim, full);
    HV_REQUIRE_V(cr != NULL, "crop");
    hv_volume *b = NULL;
    HV_REQUIRE_V(hv_spine_crop_box(cr, HV_RUN_BOX, &b) == HV_OK, "box: %s", hv_error_detail());
    hv_spine_crop_free(cr);
    replay_ctx rc = {NULL, NULL, 0, 0};
    HV_REQUIRE_V(hv_store_vol_encode(HV_STORE_VOL_CROP3D, b, &rc.z, &rc.zl) == HV_OK, "encode: %s",
               hv_error_detail());
    {
        /* the crop layout is not a box */
        hv_volume *big = NULL;
        uint8_t *z2 = NULL;
        size_t l2 = 0;
        HV_REQUIRE_V(hv_vol_create(&big, dim, HV_DTYPE_U8, NULL) == HV_OK, "vol");
        HV_CHECK(hv_store_vol_encode(HV_STORE_VOL_CROP3D, big, &z2, &l2) == HV_ERR_ARG && !z2 &&
                     strstr(hv_error_detail(), "U8 64 x 64 x 64 expected"),
                 "a crop-sized volume refused as a box: %s", hv_error_detail());
        hv_vol_free(big);
    }
    hv_vol_free(b);

    /* one case, vertebra 0 without a crop (length 0), vertebra 1 with the box */
    hv_case_result r;
    store_test_case(&r, 2, 20);
    r.vol_z[HV_STORE_VOL_CROP3D] = malloc(rc.zl);
    HV_REQUIRE_V(r.vol_z[HV_STORE_VOL_CROP3D] != NULL, "alloc");
    memcpy(r.vol_z[HV_STORE_VOL_CROP3D], rc.z, rc.zl);
    r.vol_z_len[HV_STORE_VOL_CROP3D][0] = 0;
    r.vol_z_len[HV_STORE_VOL_CROP3D][1] = (uint32_t)rc.zl;
    HV_REQUIRE_V(store_test_journal(jdir, 2, stages, &r), "journal");
    hv_case_result_clear(&r);

    rc.s = store_test_create(store, 2, stages, 0, 0, 1);
    HV_REQUIRE_V(rc.s != NULL, "create: %s", hv_error_detail());
    HV_CHECK(hv_store_has_vol(rc.s, HV_STORE_VOL_CROP3D) &&
                 !hv_store_has_vol(rc.s, HV_STORE_VOL_SYNTH_LABEL) && !hv_store_has_cam(rc.s),
             "crop3d only");
    long nrec = 0, ntorn = 0;
    HV_CHECK_OK(hv_journal_replay(jdir, 2, stages, on_record, &rc, &nrec, &ntorn));
    HV_CHECK(rc.n == 1 && nrec == 1, "one record replayed");
    HV_CHECK_OK(hv_store_close(rc.s));

    char *rep = NULL;
    HV_CHECK(hv_store_validate(store, &rep) == HV_OK, "validates:\n%s", rep ? rep : "");
    free(rep);

    hv_store *s = NULL;
    HV_REQUIRE_V(hv_store_open_serial(store, 0, &s) == HV_OK, "open: %s", hv_error_detail());
    HV_CHECK(hv_store_vol_bytes(HV_STORE_VOL_CROP3D) == HV_RUN_BOX_BYTES,
             "crop3d slot: %zu bytes", hv_store_vol_bytes(HV_STORE_VOL_CROP3D));
    uint8_t *vol = malloc(HV_RUN_BOX_BYTES);
    HV_REQUIRE_V(vol != NULL, "alloc");
    int present = -1;
    HV_CHECK_OK(hv_store_read_vol(s, HV_STORE_VOL_CROP3D, 0, vol, &present));
    size_t nz = store_test_nonzero(vol, HV_RUN_BOX_BYTES);
    HV_CHECK(present == 0 && nz == 0, "slot 0 (no crop): present %d, %zu non-zero", present, nz);
    HV_CHECK_OK(hv_store_read_vol(s, HV_STORE_VOL_CROP3D, 1, vol, &present));
    size_t bad = 0;
    for (int c = 0; c < HV_RUN_BOX; c++)
        for (int bb = 0; bb < HV_RUN_BOX; bb++)
            for (int a = 0; a < HV_RUN_BOX; a++) {
                int want = (a + 3 * (96 + bb) + 5 * (96 + c)) % 256;
                bad += vol[((size_t)c * HV_RUN_BOX + bb) * HV_RUN_BOX + a] != want;
            }
    HV_CHECK(present == 1 && bad == 0, "slot 1: present %d, %zu wrong voxels", present, bad);
    HV_CHECK_OK(hv_store_close(s));

    /* plain HDF5: [slots][64 rows][64 AP][64 LR] */
    hid_t f = H5Fopen(store, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, "vertebrae/crop3d", H5P_DEFAULT) : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dd[4] = {0};
    if (sp >= 0) H5Sget_simple_extent_dims(sp, dd, NULL);
    HV_CHECK(dd[0] == HV_RUN_MAX_VERT && dd[1] == 64 && dd[2] == 64 && dd[3] == 64,
             "crop3d dims %llu x %llu x %llu x %llu", (unsigned long long)dd[0],
             (unsigned long long)dd[1], (unsigned long long)dd[2], (unsigned long long)dd[3]);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    free(vol);
    free(rc.z);
}

int main(void)
{
    test_tiny();
    test_store();
    return hv_test_done();
}
