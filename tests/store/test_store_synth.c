/*
 * test_store_synth.c: synthesis.crops' synthesized crops, and with full the
 * original crops beside them, in the store and the journal
 * (hv_store_crop_encode, the journal record's crop-volume sections,
 * H5Dwrite_chunk into /vertebrae/synth_label, synth_ct, orig_ct and
 * orig_label, hv_store_read_vol), the validator's checks of their shape and
 * type, and `export`'s DIR/synth/<case>_<level>_{label,ct,orig_ct,
 * orig_label}.nii.gz.
 *
 * The crops are made here by formulas and every expected byte is the
 * formula's, not our encoder's output: the label crop holds label 20 + k
 * (the vertebra) in a box and label 19 / 21 beside it, the CT crop
 * (3 i + 5 j + 7 k + 11 v) mod 256; the original CT crop is that + 1 (mod
 * 256), the original label crop the target's box only. Vertebra 1 of the case fell back
 * (synth_fallback, chunk length 0): its slots read as all zero and not
 * present, and export writes no file for it; the validator refuses a crop
 * on a vertebra flagged synth_fallback and a missing one on a vertebra
 * that is not. A masks store (synthesis.crops
 * = masks) has the label dataset only, and ignores CT chunks a record
 * carries.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hv/io.h"
#include "hv/store.h"
#include "hv_test.h"
#include "store/store_check.h"

static const char *const stages[2] = {"alpha", "store"};

/* the label crop of vertebra v: voxel (i, j, k) */
static uint8_t lab(int v, int64_t i, int64_t j, int64_t k)
{
    if (i < 7 || i >= 57 || j < 60 || j >= 200) return 0;
    if (k >= 100 && k < 150 + v) return (uint8_t)(20 + v);
    if (k >= 40 && k < 90) return (uint8_t)(21 + v);
    if (k >= 160 && k < 220) return (uint8_t)(19 + v);
    return 0;
}

static uint8_t ctv(int v, int64_t i, int64_t j, int64_t k)
{
    return (uint8_t)((3 * i + 5 * j + 7 * k + 11 * v) % 256);
}

/* the four kinds of crop: 0 synthesized label, 1 synthesized CT, 2
 * original CT, 3 original label (the target only) */
enum { NQ = 4 };
static const int qvol[NQ] = {HV_STORE_VOL_SYNTH_LABEL, HV_STORE_VOL_SYNTH_CT,
                             HV_STORE_VOL_ORIG_CT, HV_STORE_VOL_ORIG_LABEL};

static uint8_t val(int q, int v, int64_t i, int64_t j, int64_t k)
{
    if (q == 1) return ctv(v, i, j, k);
    if (q == 2) return (uint8_t)((ctv(v, i, j, k) + 1) % 256);
    uint8_t l = lab(v, i, j, k);
    return q == 3 && l != 20 + v ? 0 : l;
}

static size_t vox(int64_t i, int64_t j, int64_t k)
{
    return (size_t)i + (size_t)HV_RUN_CAM_I * ((size_t)j + (size_t)HV_RUN_CAM_J * (size_t)k);
}

static hv_volume *make_crop(int v, int q)
{
    const int64_t dim[3] = {HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K};
    hv_volume *o = NULL;
    if (hv_vol_create(&o, dim, HV_DTYPE_U8, NULL) != HV_OK) return NULL;
    uint8_t *u = o->data;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++)
                u[hv_vol_idx(o, i, j, k)] = val(q, v, i, j, k);
    return o;
}

/* voxels of vol (crop layout, i fastest) that differ from vertebra v's
 * crop of kind q (v < 0: all zero) */
static size_t count_bad(const uint8_t *vol, int v, int q)
{
    size_t bad = 0;
    for (int64_t k = 0; k < HV_RUN_CAM_K; k++)
        for (int64_t j = 0; j < HV_RUN_CAM_J; j++)
            for (int64_t i = 0; i < HV_RUN_CAM_I; i++) {
                uint8_t want = v < 0 ? 0 : val(q, v, i, j, k);
                bad += vol[vox(i, j, k)] != want;
            }
    return bad;
}

/* z[q][v]: the chunk of vertebra v's crop of kind q */
static uint8_t *z[NQ][3];
static size_t zl[NQ][3];

static void make_result(hv_case_result *r)
{
    store_test_case(r, 3, 20);
    r->v[1].flags = HV_MEAS_SYNTH_FALLBACK;
    const int *w2 = qvol;
    for (int w = 0; w < NQ; w++) {
        size_t total = zl[w][0] + zl[w][2];
        r->vol_z[w2[w]] = malloc(total);
        memcpy(r->vol_z[w2[w]], z[w][0], zl[w][0]);
        memcpy(r->vol_z[w2[w]] + zl[w][0], z[w][2], zl[w][2]);
        r->vol_z_len[w2[w]][0] = (uint32_t)zl[w][0];
        r->vol_z_len[w2[w]][1] = 0; /* fell back: no crop */
        r->vol_z_len[w2[w]][2] = (uint32_t)zl[w][2];
    }
}

typedef struct {
    hv_store *s;
    int n;
} replay_ctx;

static hv_status on_record(void *user, const hv_case_result *r)
{
    replay_ctx *c = user;
    c->n++;
    HV_CHECK(!r->vol_z[HV_STORE_VOL_CAM] && r->vol_z[HV_STORE_VOL_SYNTH_LABEL] &&
                 r->vol_z[HV_STORE_VOL_SYNTH_CT] && r->vol_z[HV_STORE_VOL_ORIG_CT] &&
                 r->vol_z[HV_STORE_VOL_ORIG_LABEL],
             "the replayed record has the four crops' chunks and no maps");
    for (int q = 0; q < NQ; q++) {
        const int w = qvol[q];
        HV_CHECK(r->vol_z_len[w][0] == zl[q][0] && r->vol_z_len[w][1] == 0 &&
                     r->vol_z_len[w][2] == zl[q][2] &&
                     !memcmp(r->vol_z[w], z[q][0], zl[q][0]) &&
                     !memcmp(r->vol_z[w] + zl[q][0], z[q][2], zl[q][2]),
                 "%s: the chunks come back from the journal byte for byte", hv_store_vol_name(w));
    }
    return hv_store_put_case(c->s, 0, r);
}

/* the one-case store with synthesis.crops = crops */
static hv_store *create(const char *path, int crops)
{
    return store_test_create(path, 2, stages, 0, crops, 0);
}

/* Replace /vertebrae/<name> of a copy of `store` by a dataset of lr LR
 * slices and type `type` (or remove it: lr 0), and expect the validator to
 * refuse it with `needle`. */
static void damage(const char *store, const char *dir, const char *file, const char *name,
                   hsize_t lr, hid_t type, const char *needle)
{
    char bp[4400], link[64];
    snprintf(bp, sizeof bp, "%s/%s", dir, file);
    snprintf(link, sizeof link, "vertebrae/%s", name);
    HV_REQUIRE_V(hv_test_copy_file(store, bp) == 0, "copy");
    hid_t bf = H5Fopen(bp, H5F_ACC_RDWR, H5P_DEFAULT);
    HV_REQUIRE_V(bf >= 0 && H5Ldelete(bf, link, H5P_DEFAULT) >= 0, "unlink %s", link);
    if (lr) {
        hsize_t bd[4] = {HV_RUN_MAX_VERT, 256, 256, lr};
        hid_t bs = H5Screate_simple(4, bd, NULL);
        hid_t d = H5Dcreate2(bf, link, type, bs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        HV_CHECK(d >= 0, "replace %s", link);
        if (d >= 0) H5Dclose(d);
        H5Sclose(bs);
    }
    H5Fclose(bf);
    expect_invalid(bp, needle);
}

int main(void)
{
    char dir[4200], store[4300], jdir[4300], out[4300], p[4500];
    snprintf(dir, sizeof dir, "%s", hv_test_tmpdir("store_synth"));
    snprintf(store, sizeof store, "%s/s.h5", dir);
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    snprintf(out, sizeof out, "%s/export", dir);
    HV_REQUIRE(hv_mkdir_p(jdir) == HV_OK, "mkdir");

    /* encode: the chunks of vertebrae 0 and 2 (each kind) */
    for (int w = 0; w < NQ; w++)
        for (int v = 0; v < 3; v += 2) {
            hv_volume *c = make_crop(v, w);
            HV_REQUIRE(c != NULL, "crop");
            HV_REQUIRE(hv_store_crop_encode(c, &z[w][v], &zl[w][v]) == HV_OK, "encode: %s",
                       hv_error_detail());
            hv_vol_free(c);
        }
    printf("# a 4 MiB label crop deflates to %zu bytes, a CT crop (a ramp) to %zu\n", zl[0][0],
           zl[1][0]);
    HV_CHECK(zl[0][0] > 0 && zl[0][0] < HV_RUN_CAM_BYTES / 8, "label deflated: %zu bytes",
             zl[0][0]);
    {
        /* another dtype and other dims are refused */
        const int64_t d2[3] = {32, 256, 256}, d3[3] = {64, 256, 256};
        hv_volume *a = NULL, *b = NULL;
        uint8_t *z2 = NULL;
        size_t l2 = 0;
        HV_REQUIRE(hv_vol_create(&a, d2, HV_DTYPE_U8, NULL) == HV_OK &&
                       hv_vol_create(&b, d3, HV_DTYPE_F32, NULL) == HV_OK,
                   "vol");
        HV_CHECK(hv_store_crop_encode(a, &z2, &l2) == HV_ERR_ARG && !z2 && l2 == 0,
                 "other dims refused");
        HV_CHECK(hv_store_crop_encode(b, &z2, &l2) == HV_ERR_ARG && !z2 &&
                     strstr(hv_error_detail(), "U8 64 x 256 x 256 expected"),
                 "F32 refused: %s", hv_error_detail());
        hv_vol_free(a);
        hv_vol_free(b);
    }

    /* journal: append, then replay into a store made with synthesis.crops = full */
    hv_case_result r;
    make_result(&r);
    HV_REQUIRE(store_test_journal(jdir, 2, stages, &r), "journal");
    hv_store *s = create(store, 2);
    HV_REQUIRE(s != NULL, "create: %s", hv_error_detail());
    HV_CHECK(hv_store_has_vol(s, HV_STORE_VOL_SYNTH_LABEL) &&
                 hv_store_has_vol(s, HV_STORE_VOL_SYNTH_CT) &&
                 hv_store_has_vol(s, HV_STORE_VOL_ORIG_CT) &&
                 hv_store_has_vol(s, HV_STORE_VOL_ORIG_LABEL) && !hv_store_has_cam(s) &&
                 !hv_store_has_vol(s, HV_STORE_N_VOL),
             "full: synth_label, synth_ct, orig_ct and orig_label, no cam");
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
    for (int q = 0; q < NQ; q++) {
        const int w = qvol[q];
        for (int v = 0; v < 3; v++) {
            int present = -1;
            HV_CHECK_OK(hv_store_read_vol(s, w, v, vol, &present));
            size_t bad = count_bad(vol, v == 1 ? -1 : v, q);
            HV_CHECK(present == (v != 1) && bad == 0, "%s slot %d: present %d, %zu wrong voxels",
                     hv_store_vol_name(w), v, present, bad);
        }
    }
    int present = -1;
    HV_CHECK(hv_store_read_vol(s, HV_STORE_VOL_CAM, 0, vol, &present) == HV_ERR_UNSUPPORTED &&
                 present == 0,
             "no /vertebrae/cam: unsupported");
    HV_CHECK(hv_store_read_vol(s, HV_STORE_N_VOL, 0, vol, NULL) == HV_ERR_ARG,
             "unknown volume refused");
    HV_CHECK(hv_store_read_vol(s, HV_STORE_VOL_SYNTH_CT, HV_RUN_MAX_VERT, vol, NULL) == HV_ERR_ARG,
             "slot past the cases refused");
    HV_CHECK_OK(hv_store_close(s));

    /* read back with plain HDF5: the filter decodes the chunk of slot 2 */
    {
        hid_t f = H5Fopen(store, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = f >= 0 ? H5Dopen2(f, "vertebrae/synth_ct", H5P_DEFAULT) : -1;
        HV_REQUIRE(d >= 0, "plain HDF5: /vertebrae/synth_ct");
        hid_t fs = H5Dget_space(d);
        hsize_t dims[4] = {0, 0, 0, 0};
        H5Sget_simple_extent_dims(fs, dims, NULL);
        HV_CHECK(dims[0] == HV_RUN_MAX_VERT && dims[1] == 256 && dims[2] == 256 && dims[3] == 64,
                 "dims %llu x %llu x %llu x %llu", (unsigned long long)dims[0],
                 (unsigned long long)dims[1], (unsigned long long)dims[2],
                 (unsigned long long)dims[3]);
        hsize_t start[4] = {2, 0, 0, 0}, cnt[4] = {1, 256, 256, 64};
        hid_t ms = H5Screate_simple(4, cnt, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
        memset(vol, 0, HV_RUN_CAM_BYTES);
        HV_CHECK(H5Dread(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, vol) >= 0, "H5Dread");
        size_t bad = count_bad(vol, 2, 1);
        HV_CHECK(bad == 0, "plain HDF5 read of synth_ct[2]: %zu wrong voxels", bad);
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(d);
        H5Fclose(f);
    }

    /* the validator: valid as written; refused with another type, other
     * dims, and a synth_ct without its synth_label */
    {
        char *rep = NULL;
        HV_CHECK(hv_store_validate(store, &rep) == HV_OK, "valid: %s\n%s", hv_error_detail(),
                 rep ? rep : "");
        free(rep);
        char *text = NULL;
        HV_CHECK(hv_store_describe(store, &text) == HV_OK && text &&
                     strstr(text, "/vertebrae/synth_label, /vertebrae/synth_ct, the original "
                                  "crops /vertebrae/orig_ct, orig_label (synthesis.crops = full"),
                 "inspect names the crops:\n%s", text ? text : "");
        free(text);
        damage(store, dir, "bad-type.h5", "synth_label", 64, H5T_STD_I16LE,
               "/vertebrae/synth_label is not uint8");
        damage(store, dir, "bad-dims.h5", "synth_ct", 32, H5T_STD_U8LE,
               "/vertebrae/synth_ct is not 26 slots per case of 256 x 256 x 64");
        damage(store, dir, "no-label.h5", "synth_label", 0, H5T_STD_U8LE,
               "/vertebrae/synth_ct without /vertebrae/synth_label");
        damage(store, dir, "bad-orig.h5", "orig_label", 32, H5T_STD_U8LE,
               "/vertebrae/orig_label is not 26 slots per case of 256 x 256 x 64");
        damage(store, dir, "no-synth-ct.h5", "synth_ct", 0, H5T_STD_U8LE,
               "/vertebrae/orig_ct without /vertebrae/synth_ct");
    }

    /* export: one NIfTI per crop of a vertebra that has one */
    long n_png = -1, n_cam = -1, n_synth = -1;
    HV_CHECK_OK(hv_store_export(store, out, HV_STORE_EXPORT_SYNTH, &n_png, &n_cam, &n_synth));
    HV_CHECK(n_synth == 8 && n_cam == 0 && n_png == 0, "export: %ld crops (want 8), %ld maps",
             n_synth, n_cam);
    static const char *const suffix[NQ] = {"label", "ct", "orig_ct", "orig_label"};
    for (int v = 0; v < 3; v++)
        for (int ct = 0; ct < NQ; ct++) {
            snprintf(p, sizeof p, "%s/synth/c0_%s_%s.nii.gz", out, hv_label_name(20 + v),
                     suffix[ct]);
            struct stat sb;
            if (v == 1) {
                HV_CHECK(stat(p, &sb) != 0, "no file for the vertebra that fell back: %s", p);
                continue;
            }
            hv_volume *e = NULL;
            hv_nifti_info info;
            if (hv_io_nifti_read(p, HV_DTYPE_U8, NULL, &e, &info) != HV_OK) {
                HV_CHECK(0, "%s readable: %s", p, hv_error_detail());
                continue;
            }
            HV_CHECK(info.datatype == 2 && e->dim[0] == 64 && e->dim[1] == 256 && e->dim[2] == 256,
                     "%s: uint8 64 x 256 x 256 (datatype %d)", p, info.datatype);
            size_t bad = count_bad(e->data, v, ct);
            HV_CHECK(bad == 0, "%s: %zu wrong voxels", p, bad);
            hv_vol_free(e);
        }

    /* synthesis.crops = masks: the label dataset only; a record's CT chunks
     * have nowhere to go and are left out */
    snprintf(store, sizeof store, "%s/masks.h5", dir);
    s = create(store, 1);
    HV_REQUIRE(s != NULL, "create masks: %s", hv_error_detail());
    HV_CHECK(hv_store_has_vol(s, HV_STORE_VOL_SYNTH_LABEL) &&
                 !hv_store_has_vol(s, HV_STORE_VOL_SYNTH_CT) &&
                 !hv_store_has_vol(s, HV_STORE_VOL_ORIG_CT) &&
                 !hv_store_has_vol(s, HV_STORE_VOL_ORIG_LABEL),
             "masks: synth_label only");
    HV_CHECK_OK(hv_store_put_case(s, 0, &r));
    HV_CHECK_OK(hv_store_read_vol(s, HV_STORE_VOL_SYNTH_LABEL, 2, vol, &present));
    HV_CHECK(present == 1 && count_bad(vol, 2, 0) == 0, "masks: the label crop of slot 2");
    HV_CHECK(hv_store_read_vol(s, HV_STORE_VOL_SYNTH_CT, 2, vol, &present) == HV_ERR_UNSUPPORTED,
             "masks: no CT");
    HV_CHECK_OK(hv_store_close(s));
    {
        char *rep = NULL;
        HV_CHECK(hv_store_validate(store, &rep) == HV_OK, "masks store valid: %s\n%s",
                 hv_error_detail(), rep ? rep : "");
        free(rep);
    }
    /* the validator: a crop exactly where the vertebra is not flagged
     * synth_fallback. Vertebra 0 flagged but with its crop, vertebra 2
     * unflagged without one: both refused */
    {
        snprintf(store, sizeof store, "%s/flags.h5", dir);
        s = create(store, 1);
        HV_REQUIRE(s != NULL, "create flags: %s", hv_error_detail());
        hv_case_result r2 = r;
        r2.v[0].flags = HV_MEAS_SYNTH_FALLBACK;
        r2.vol_z_len[HV_STORE_VOL_SYNTH_LABEL][2] = 0;
        HV_CHECK_OK(hv_store_put_case(s, 0, &r2));
        HV_CHECK_OK(hv_store_close(s));
        expect_invalid(store, "case c0 L1: /vertebrae/synth_label holds a crop although the "
                              "vertebra is flagged synth_fallback");
        expect_invalid(store, "case c0 L3: /vertebrae/synth_label holds no crop although the "
                              "vertebra is not flagged synth_fallback");
    }
    /* none: neither dataset */
    snprintf(store, sizeof store, "%s/none.h5", dir);
    s = create(store, 0);
    HV_REQUIRE(s != NULL, "create none");
    HV_CHECK(!hv_store_has_vol(s, HV_STORE_VOL_SYNTH_LABEL) &&
                 !hv_store_has_vol(s, HV_STORE_VOL_SYNTH_CT),
             "none: no crops");
    HV_CHECK_OK(hv_store_close(s));

    hv_case_result_clear(&r);
    free(vol);
    for (int w = 0; w < NQ; w++)
        for (int v = 0; v < 3; v++) free(z[w][v]);
    return hv_test_done();
}
