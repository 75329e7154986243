/*
 * test_store_cam.c: attention.store = full's maps in the store and the
 * journal (hv_store_cam_encode, the journal record, H5Dwrite_chunk into
 * /vertebrae/cam, hv_store_read_cam), and the attention columns of the
 * vertebra table.
 *
 * Expected bytes are worked out here by integer arithmetic, not by our
 * encoder: a map value x / 256 (exact in binary) is stored as the
 * reference's uint8 cast of value x 255, i.e. floor(255 x / 256). The map is
 * zero outside LR slices 17..46 as the attention stage makes it; vertebra 0
 * has a map, vertebra 1 none (length 0: the slot reads as all zero and not
 * present). The chunk is also read with plain HDF5 calls (H5Dread on the
 * dataset, its filter), so the bytes H5Dwrite_chunk put there are what any
 * HDF5 reader decodes. The validator refuses a /vertebrae/cam of other
 * dims or another type.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/store.h"
#include "hv_test.h"
#include "store/store_check.h"

static const char *const stages[2] = {"alpha", "store"};

/* the value of voxel (i, j, k) of the test map, in 1/256 steps (0..255) */
static int cell(int64_t i, int64_t j, int64_t k)
{
    if (i < 17 || i >= 47) return 0;
    return (int)((i * 7 + j * 3 + k * 5) % 256);
}

static hv_volume *make_map(void)
{
    const int64_t dim[3] = {HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K};
    hv_volume *v = NULL;
    if (hv_vol_create(&v, dim, HV_DTYPE_F32, NULL) != HV_OK) return NULL;
    float *f = v->data;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++)
                f[hv_vol_idx(v, i, j, k)] = (float)cell(i, j, k) / 256.0f;
    return v;
}

static void make_result(hv_case_result *r, const uint8_t *z, size_t zlen)
{
    store_test_case(r, 2, 19);
    r->v[0].p_fracture = 0.75;
    r->v[0].cam_mass_body = 0.5;
    r->v[0].cam_max_slice = 30;
    r->vol_z[HV_STORE_VOL_CAM] = malloc(zlen);
    memcpy(r->vol_z[HV_STORE_VOL_CAM], z, zlen);
    r->vol_z_len[HV_STORE_VOL_CAM][0] = (uint32_t)zlen;
    r->vol_z_len[HV_STORE_VOL_CAM][1] = 0;
}

static size_t count_bad(const uint8_t *vol)
{
    size_t bad = 0;
    for (int64_t k = 0; k < HV_RUN_CAM_K; k++)
        for (int64_t j = 0; j < HV_RUN_CAM_J; j++)
            for (int64_t i = 0; i < HV_RUN_CAM_I; i++) {
                size_t q = (size_t)i + (size_t)HV_RUN_CAM_I * ((size_t)j + (size_t)HV_RUN_CAM_J * (size_t)k);
                bad += vol[q] != (uint8_t)(255 * cell(i, j, k) / 256);
            }
    return bad;
}

typedef struct {
    hv_store *s;
    int n;
} replay_ctx;

static hv_status on_record(void *user, const hv_case_result *r)
{
    replay_ctx *c = user;
    c->n++;
    HV_CHECK(r->vol_z[HV_STORE_VOL_CAM] != NULL && r->vol_z_len[HV_STORE_VOL_CAM][1] == 0,
             "the replayed record has the map chunk");
    HV_CHECK(r->v[0].p_fracture == 0.75 && r->v[0].cam_max_slice == 30 &&
                 isnan(r->v[1].p_fracture) && r->v[1].cam_max_slice == -1,
             "the attention columns come back from the journal");
    return hv_store_put_case(c->s, 0, r);
}

int main(void)
{
    char dir[4200], store[4300], jdir[4300];
    snprintf(dir, sizeof dir, "%s", hv_test_tmpdir("store_cam"));
    snprintf(store, sizeof store, "%s/s.h5", dir);
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    HV_REQUIRE(hv_mkdir_p(jdir) == HV_OK, "mkdir");

    /* encode: the bytes of one chunk */
    hv_volume *map = make_map();
    HV_REQUIRE(map != NULL, "map");
    uint8_t *z = NULL;
    size_t zlen = 0;
    HV_REQUIRE(hv_store_cam_encode(map, &z, &zlen) == HV_OK, "encode: %s", hv_error_detail());
    printf("# a 4 MiB test map deflates to %zu bytes\n", zlen);
    HV_CHECK(zlen > 0 && zlen < HV_RUN_CAM_BYTES / 4, "deflated: %zu bytes", zlen);
    /* a map of other dims is refused */
    {
        const int64_t d2[3] = {32, 256, 256};
        hv_volume *w = NULL;
        uint8_t *z2 = NULL;
        size_t l2 = 0;
        HV_REQUIRE(hv_vol_create(&w, d2, HV_DTYPE_F32, NULL) == HV_OK, "vol");
        HV_CHECK(hv_store_cam_encode(w, &z2, &l2) == HV_ERR_ARG && !z2, "other dims refused");
        hv_vol_free(w);
    }

    /* journal: append, then replay into a store created with maps */
    hv_case_result r;
    make_result(&r, z, zlen);
    HV_REQUIRE(store_test_journal(jdir, 2, stages, &r), "journal");
    hv_case_result_clear(&r);

    hv_store *s = store_test_create(store, 2, stages, 1, 0, 0);
    HV_REQUIRE(s != NULL, "create: %s", hv_error_detail());
    HV_CHECK(hv_store_has_cam(s), "the store has /vertebrae/cam");
    replay_ctx rc = {s, 0};
    long nrec = 0, ntorn = 0;
    HV_CHECK_OK(hv_journal_replay(jdir, 2, stages, on_record, &rc, &nrec, &ntorn));
    HV_CHECK(rc.n == 1 && nrec == 1 && ntorn == 0, "one record replayed (%d, %ld, %ld)", rc.n,
             nrec, ntorn);
    HV_CHECK_OK(hv_store_close(s));

    /* read back through the API */
    uint8_t *vol = malloc(HV_RUN_CAM_BYTES);
    HV_REQUIRE(vol != NULL, "alloc");
    s = NULL;
    HV_REQUIRE(hv_store_open_serial(store, 0, &s) == HV_OK, "open: %s", hv_error_detail());
    int present = -1;
    HV_CHECK_OK(hv_store_read_cam(s, 0, vol, &present));
    size_t bad = count_bad(vol);
    HV_CHECK(present == 1 && bad == 0, "slot 0: the map, %zu wrong voxels", bad);
    HV_CHECK_OK(hv_store_read_cam(s, 1, vol, &present));
    size_t nz = store_test_nonzero(vol, HV_RUN_CAM_BYTES);
    HV_CHECK(present == 0 && nz == 0, "slot 1: no map (%zu non-zero)", nz);
    hv_run_vrow *vr = NULL;
    size_t nv = 0;
    HV_CHECK_OK(hv_store_read_vertebrae(s, &vr, &nv));
    HV_CHECK(nv == 2 && vr && vr[0].p_fracture == 0.75 && vr[0].cam_mass_body == 0.5 &&
                 vr[0].cam_max_slice == 30 && isnan(vr[1].p_fracture) &&
                 isnan(vr[1].cam_mass_body) && vr[1].cam_max_slice == -1,
             "the attention columns in /vertebrae/table");
    free(vr);
    HV_CHECK_OK(hv_store_close(s));

    /* read back with plain HDF5: the filter decodes the chunk */
    hid_t f = H5Fopen(store, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, "vertebrae/cam", H5P_DEFAULT) : -1;
    HV_REQUIRE(d >= 0, "plain HDF5: /vertebrae/cam");
    hid_t fs = H5Dget_space(d);
    hsize_t dims[4] = {0, 0, 0, 0};
    H5Sget_simple_extent_dims(fs, dims, NULL);
    HV_CHECK(dims[0] == HV_RUN_MAX_VERT && dims[1] == 256 && dims[2] == 256 && dims[3] == 64,
             "dims %llu x %llu x %llu x %llu", (unsigned long long)dims[0],
             (unsigned long long)dims[1], (unsigned long long)dims[2], (unsigned long long)dims[3]);
    hsize_t start[4] = {0, 0, 0, 0}, cnt[4] = {1, 256, 256, 64};
    hid_t ms = H5Screate_simple(4, cnt, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    memset(vol, 0, HV_RUN_CAM_BYTES);
    HV_CHECK(H5Dread(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, vol) >= 0, "H5Dread");
    bad = count_bad(vol);
    HV_CHECK(bad == 0, "plain HDF5 read: %zu wrong voxels", bad);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);

    /* the validator checks the maps' shape and type: a store whose
     * /vertebrae/cam is replaced by one of 32 LR slices, then by int16 */
    {
        char *rep = NULL;
        HV_CHECK(hv_store_validate(store, &rep) == HV_OK, "valid: %s\n%s", hv_error_detail(),
                 rep ? rep : "");
        free(rep);
        const struct {
            const char *name, *needle;
            hsize_t lr;
            hid_t type;
        } dmg[2] = {{"bad-dims.h5", "/vertebrae/cam is not 26 slots per case of 256 x 256 x 64", 32,
                     H5T_STD_U8LE},
                    {"bad-type.h5", "/vertebrae/cam is not uint8", 64, H5T_STD_I16LE}};
        for (int q = 0; q < 2; q++) {
            char bp[4400];
            snprintf(bp, sizeof bp, "%s/%s", dir, dmg[q].name);
            HV_REQUIRE(hv_test_copy_file(store, bp) == 0, "copy");
            hid_t bf = H5Fopen(bp, H5F_ACC_RDWR, H5P_DEFAULT);
            HV_REQUIRE(bf >= 0 && H5Ldelete(bf, "vertebrae/cam", H5P_DEFAULT) >= 0, "unlink");
            hsize_t bd[4] = {HV_RUN_MAX_VERT, 256, 256, dmg[q].lr};
            hid_t bs = H5Screate_simple(4, bd, NULL);
            hid_t bdset = H5Dcreate2(bf, "vertebrae/cam", dmg[q].type, bs, H5P_DEFAULT,
                                     H5P_DEFAULT, H5P_DEFAULT);
            HV_CHECK(bdset >= 0, "replace /vertebrae/cam");
            if (bdset >= 0) H5Dclose(bdset);
            H5Sclose(bs);
            H5Fclose(bf);
            expect_invalid(bp, dmg[q].needle);
        }
    }

    /* a store without maps: read_cam says so */
    snprintf(store, sizeof store, "%s/nocam.h5", dir);
    s = store_test_create(store, 2, stages, 0, 0, 0);
    HV_REQUIRE(s != NULL, "create");
    HV_CHECK(!hv_store_has_cam(s) && hv_store_read_cam(s, 0, vol, &present) == HV_ERR_UNSUPPORTED,
             "no maps: unsupported");
    HV_CHECK_OK(hv_store_close(s));

    free(vol);
    free(z);
    hv_vol_free(map);
    return hv_test_done();
}
