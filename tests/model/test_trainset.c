/*
 * test_trainset.c: the training set file (src/model/trainset.c).
 *
 * Hand-made parts of full-size crops (64 x 256 x 256) filled with patterns
 * the test defines, written as two cases' parts, merged in both orders,
 * read back: the items come sorted by (case, label) with every voxel, grade,
 * split, case grade and skipped record as written; the two merges hold the
 * same content. The reader refuses another format, version or dims (the
 * message names what differs) and an empty split selection (HV_ERR_EMPTY);
 * the tables alone, then the volumes of named items (right rows with a split
 * selection), dropped and read again; a part is valid only for its own case; a failed write leaves the old
 * file; the CT's u8 conversion truncates as the reference's uint8 cast.
 * The item cache under a byte budget: the least recently held item is the
 * one evicted (not the first read), held items are never evicted (a hold of
 * more than the budget keeps them all, the held one not read again), an
 * item read again has its own voxels, and the counters say so.
 */
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv_test.h"

enum { NI = 64, NJ = 256, NK = 256 };

static uint8_t pat(int which, int label, size_t q)
{
    return (uint8_t)((q * (size_t)(3 + which) + (size_t)label * 17 + (size_t)which * 5) % 251);
}

static hv_volume *vol(int which, int label)
{
    hv_volume *v = NULL;
    const int64_t dim[3] = {NI, NJ, NK};
    if (hv_vol_create(&v, dim, HV_DTYPE_U8, NULL) != HV_OK) return NULL;
    uint8_t *d = v->data;
    for (size_t q = 0; q < v->nvox; q++) d[q] = pat(which, label, q);
    return v;
}

static int vol_is(const hv_volume *v, int which, int label)
{
    if (!v || v->dtype != HV_DTYPE_U8 || v->dim[0] != NI || v->dim[1] != NJ || v->dim[2] != NK)
        return 0;
    const uint8_t *d = v->data;
    for (size_t q = 0; q < v->nvox; q++)
        if (d[q] != pat(which, label, q)) return 0;
    return 1;
}

static char tmpdir[1024];
static char *path_of(const char *name)
{
    static char buf[64][1400];
    static int k;
    char *p = buf[k++ & 63];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

/* no "*.tmp*" left in the folder */
static int no_tmp_left(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) n++;
    if (d) closedir(d);
    return n == 0;
}

/* rewrite a root attribute of a file (the test's own HDF5 calls) */
static int set_attr(const char *path, const char *key, int is_str, const char *s, int64_t v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return -1;
    H5Adelete(f, key);
    hid_t sp = H5Screate(H5S_SCALAR), t = is_str ? H5Tcopy(H5T_C_S1) : H5Tcopy(H5T_STD_I64LE);
    if (is_str) H5Tset_size(t, strlen(s) + 1);
    hid_t a = H5Acreate2(f, key, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = H5Awrite(a, is_str ? t : H5T_NATIVE_INT64, is_str ? (const void *)s : (const void *)&v);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(f);
    return r < 0 ? -1 : 0;
}

typedef struct {
    const char *c;
    int label, grade;
    hv_model_split split;
} exp_item;

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp-trainset", HV_TEST_BINARY_DIR);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmpdir, tmpdir);
    HV_REQUIRE(system(cmd) == 0, "scratch folder");

    /* u8 conversion of the windowed CT: truncation (spec 3.4) */
    {
        hv_volume *f = NULL, *u = NULL;
        const int64_t d[3] = {6, 1, 1};
        HV_REQUIRE(hv_vol_create(&f, d, HV_DTYPE_F32, NULL) == HV_OK, "vol");
        const float in[6] = {12.9f, -3.0f, 300.0f, NAN, 254.999f, 0.5f};
        const uint8_t want[6] = {12, 0, 255, 0, 254, 0};
        memcpy(f->data, in, sizeof in);
        HV_CHECK_OK(hv_model_trainset_ct_u8(f, &u));
        HV_CHECK(u && !memcmp(u->data, want, 6), "truncated u8 %d %d %d %d %d %d",
                 u ? ((uint8_t *)u->data)[0] : -1, u ? ((uint8_t *)u->data)[1] : -1,
                 u ? ((uint8_t *)u->data)[2] : -1, u ? ((uint8_t *)u->data)[3] : -1,
                 u ? ((uint8_t *)u->data)[4] : -1, u ? ((uint8_t *)u->data)[5] : -1);
        hv_vol_free(f);
        hv_vol_free(u);
    }

    /* two parts: case "cb" (labels 21 then 20, given out of order, train)
     * and case "ca" (label 20, val); one skipped vertebra in each */
    int8_t gb[32], ga[32];
    memset(gb, -1, sizeof gb);
    memset(ga, -1, sizeof ga);
    gb[20] = 0, gb[21] = 3, gb[22] = 1;
    ga[20] = 2, ga[19] = 0;
    hv_volume *v[3][2];
    const int labs[3] = {21, 20, 20};
    for (int k = 0; k < 3; k++) {
        v[k][0] = vol(0, labs[k] + 100 * (k == 2));
        v[k][1] = vol(1, labs[k] + 100 * (k == 2));
        HV_REQUIRE(v[k][0] && v[k][1], "volumes");
    }
    hv_model_train_item pb[2] = {
        {"cb", 21, 3, HV_MODEL_SPLIT_TRAIN, gb, v[0][0], v[0][1], NULL},
        {"cb", 20, 0, HV_MODEL_SPLIT_TRAIN, gb, v[1][0], v[1][1], NULL}};
    hv_model_train_item pa[1] = {{"ca", 20, 2, HV_MODEL_SPLIT_VAL, ga, v[2][0], v[2][1], NULL}};
    hv_model_train_skip sb[1] = {{"cb", 22, "no crop: touches the FOV"}};
    hv_model_train_skip sa[1] = {{"ca", 19, "no body"}};
    HV_CHECK_OK(hv_model_trainset_write(path_of("cb.h5"), pb, 2, sb, 1, "cb", 40));
    HV_CHECK_OK(hv_model_trainset_write(path_of("ca.h5"), pa, 1, sa, 1, "ca", 40));
    HV_CHECK_OK(hv_model_trainset_part_check(path_of("cb.h5"), "cb"));
    HV_CHECK(hv_model_trainset_part_check(path_of("cb.h5"), "ca") == HV_ERR_FORMAT,
             "a part of another case");
    HV_CHECK(hv_model_trainset_part_check(path_of("none.h5"), "ca") == HV_ERR_NOT_FOUND,
             "no part file");
    /* the same (case, label) twice */
    hv_model_train_item dup[2] = {pb[1], pb[1]};
    HV_CHECK(hv_model_trainset_write(path_of("dup.h5"), dup, 2, NULL, 0, NULL, 40) == HV_ERR_ARG,
             "duplicate item refused");

    const char *order1[2] = {path_of("cb.h5"), path_of("ca.h5")};
    const char *order2[2] = {path_of("ca.h5"), path_of("cb.h5")};
    HV_CHECK_OK(hv_model_trainset_merge(order1, 2, path_of("m1.h5"), NULL, NULL));
    HV_CHECK_OK(hv_model_trainset_merge(order2, 2, path_of("m2.h5"), NULL, NULL));
    const char *dupm[2] = {path_of("cb.h5"), path_of("cb.h5")};
    HV_CHECK(hv_model_trainset_merge(dupm, 2, path_of("m3.h5"), NULL, NULL) == HV_ERR_FORMAT,
             "a case in two parts refused");
    HV_CHECK(access(path_of("m3.h5"), F_OK) != 0, "refused merge wrote nothing");

    const exp_item want[3] = {{"ca", 20, 2, HV_MODEL_SPLIT_VAL},
                              {"cb", 20, 0, HV_MODEL_SPLIT_TRAIN},
                              {"cb", 21, 3, HV_MODEL_SPLIT_TRAIN}};
    const int want_vol[3] = {120, 20, 21}; /* the pattern's label key */
    const int8_t *want_g[3] = {ga, gb, gb};
    for (int m = 0; m < 2; m++) {
        hv_model_trainset *ts = NULL;
        const char *mp = path_of(m ? "m2.h5" : "m1.h5");
        HV_CHECK_OK(hv_model_trainset_open(mp, 0xf, &ts));
        HV_REQUIRE(ts && hv_model_trainset_size(ts) == 3, "3 items in %s", mp);
        for (size_t i = 0; i < 3; i++) {
            hv_model_train_item it;
            HV_CHECK_OK(hv_model_trainset_item(ts, i, &it));
            HV_CHECK(!strcmp(it.case_id, want[i].c) && it.label == want[i].label &&
                         it.grade == want[i].grade && it.split == want[i].split,
                     "%s item %zu: %s %d grade %d split %d", mp, i, it.case_id, it.label, it.grade,
                     (int)it.split);
            HV_CHECK(!memcmp(it.case_grades, want_g[i], 32), "%s item %zu: case grades", mp, i);
            HV_CHECK(vol_is(it.ct, 0, want_vol[i]) && vol_is(it.labels, 1, want_vol[i]),
                     "%s item %zu: voxels", mp, i);
            HV_CHECK(it.cam == NULL, "no CAM");
        }
        HV_CHECK(hv_model_trainset_item(ts, 3, &(hv_model_train_item){0}) == HV_ERR_ARG, "item 3");
        HV_REQUIRE(hv_model_trainset_n_skipped(ts) == 2, "2 skipped records");
        hv_model_train_skip s0, s1;
        HV_CHECK_OK(hv_model_trainset_skipped(ts, 0, &s0));
        HV_CHECK_OK(hv_model_trainset_skipped(ts, 1, &s1));
        HV_CHECK(!strcmp(s0.case_id, "ca") && s0.label == 19 && !strcmp(s0.reason, "no body") &&
                     !strcmp(s1.case_id, "cb") && s1.label == 22 &&
                     !strcmp(s1.reason, "no crop: touches the FOV"),
                 "skipped records %s %d '%s', %s %d '%s'", s0.case_id, s0.label, s0.reason,
                 s1.case_id, s1.label, s1.reason);
        hv_model_trainset_free(ts);
    }
    /* split selection: val only, then an empty one */
    {
        hv_model_trainset *ts = NULL;
        HV_CHECK_OK(hv_model_trainset_open(path_of("m1.h5"), 1u << HV_MODEL_SPLIT_VAL, &ts));
        hv_model_train_item it;
        HV_CHECK(ts && hv_model_trainset_size(ts) == 1 &&
                     hv_model_trainset_item(ts, 0, &it) == HV_OK && !strcmp(it.case_id, "ca"),
                 "val selection");
        hv_model_trainset_free(ts);
        ts = NULL;
        HV_CHECK(hv_model_trainset_open(path_of("m1.h5"), 1u << HV_MODEL_SPLIT_TEST, &ts) ==
                     HV_ERR_EMPTY && ts == NULL,
                 "empty test split: %s", hv_error_detail());
        HV_CHECK(strstr(hv_error_detail(), "test") != NULL, "message names the split: %s",
                 hv_error_detail());
    }
    /* tables only, then volumes on demand: the train selection skips the
     * file's first row (ca 20, val), so item i is file row i + 1 */
    {
        hv_model_trainset *ts = NULL;
        HV_CHECK_OK(hv_model_trainset_open_meta(path_of("m1.h5"), 1u << HV_MODEL_SPLIT_TRAIN, &ts));
        HV_REQUIRE(ts && hv_model_trainset_size(ts) == 2, "2 train items");
        hv_model_train_item a, b;
        HV_CHECK_OK(hv_model_trainset_item(ts, 0, &a));
        HV_CHECK(a.label == 20 && !strcmp(a.case_id, "cb") && !a.ct && !a.labels,
                 "tables only: item 0 is cb 20 with no volumes");
        const size_t one = 1, both[2] = {0, 1}, bad = 2;
        HV_CHECK_OK(hv_model_trainset_load(ts, &one, 1));
        HV_CHECK_OK(hv_model_trainset_item(ts, 0, &a));
        HV_CHECK_OK(hv_model_trainset_item(ts, 1, &b));
        HV_CHECK(!a.ct && !a.labels, "item 0 not loaded");
        HV_CHECK(vol_is(b.ct, 0, 21) && vol_is(b.labels, 1, 21), "item 1 loaded: cb 21's voxels");
        hv_model_trainset_release(ts, 1);
        HV_CHECK_OK(hv_model_trainset_item(ts, 1, &b));
        HV_CHECK(!b.ct && !b.labels, "item 1 released");
        HV_CHECK_OK(hv_model_trainset_load(ts, both, 2));
        HV_CHECK_OK(hv_model_trainset_item(ts, 0, &a));
        HV_CHECK_OK(hv_model_trainset_item(ts, 1, &b));
        HV_CHECK(vol_is(a.ct, 0, 20) && vol_is(a.labels, 1, 20) && vol_is(b.ct, 0, 21) &&
                     vol_is(b.labels, 1, 21),
                 "both loaded: cb 20's and cb 21's voxels");
        HV_CHECK(hv_model_trainset_load(ts, &bad, 1) == HV_ERR_ARG, "item 2 of 2 refused");
        hv_error_clear();
        hv_model_trainset_free(ts);
    }
    /* the item cache: m1.h5's 3 items (ca 20, cb 20, cb 21: patterns 120,
     * 20, 21) of 2 volumes each, under a budget of 2 items, then 1 */
    {
        hv_model_trainset *ts = NULL;
        HV_CHECK_OK(hv_model_trainset_open_meta(path_of("m1.h5"), 0xf, &ts));
        HV_REQUIRE(ts && hv_model_trainset_size(ts) == 3, "3 items");
        const size_t ib = hv_model_trainset_item_bytes(ts);
        HV_CHECK(ib == 2u * NI * NJ * NK, "item bytes %zu (ct + labels)", ib);
        hv_model_trainset_cache_stats cs;
        hv_model_train_item it[3];
        const int key[3] = {120, 20, 21};
#define RESIDENT(i) (hv_model_trainset_item(ts, (i), &it[i]) == HV_OK && it[i].ct != NULL)
#define VOXELS(i) (vol_is(it[i].ct, 0, key[i]) && vol_is(it[i].labels, 1, key[i]))
        hv_model_trainset_set_budget(ts, 2 * ib);
        const size_t i0 = 0, i1 = 1, i2 = 2, i21[2] = {2, 1};
        HV_CHECK_OK(hv_model_trainset_hold(ts, &i0, 1));
        HV_CHECK_OK(hv_model_trainset_hold(ts, &i1, 1));
        HV_CHECK_OK(hv_model_trainset_hold(ts, &i0, 1)); /* 0 is now more recent than 1 */
        HV_CHECK_OK(hv_model_trainset_hold(ts, &i2, 1));
        hv_model_trainset_cache_get(ts, &cs);
        HV_CHECK(cs.loads == 3 && cs.evictions == 1 && cs.resident == 2 * ib && cs.peak == 2 * ib,
                 "budget 2: 3 reads, 1 eviction, 2 items resident (%llu, %llu, %zu)",
                 (unsigned long long)cs.loads, (unsigned long long)cs.evictions, cs.resident);
        HV_CHECK(RESIDENT(0) && !RESIDENT(1) && RESIDENT(2),
                 "the least recently held (1) evicted, not the first read (0)");
        HV_CHECK(VOXELS(0) && VOXELS(2), "items 0 and 2: their own voxels");
        /* budget 1: a hold of 2 items keeps both; the held 2 is not read again */
        const void *ct2 = it[2].ct;
        hv_model_trainset_set_budget(ts, ib);
        HV_CHECK_OK(hv_model_trainset_hold(ts, i21, 2));
        hv_model_trainset_cache_get(ts, &cs);
        HV_CHECK(cs.loads == 4 && cs.evictions == 2 && cs.resident == 2 * ib,
                 "budget 1, hold {2, 1}: 1 read, 0 evicted, both resident (%llu, %llu, %zu)",
                 (unsigned long long)cs.loads, (unsigned long long)cs.evictions, cs.resident);
        HV_CHECK(!RESIDENT(0) && RESIDENT(1) && RESIDENT(2) && it[2].ct == ct2,
                 "held item 2 kept in place while 1 was read");
        HV_CHECK(VOXELS(1) && VOXELS(2), "item 1 read again: its own voxels");
        /* the next hold ends those: both go, oldest first, for item 0 */
        HV_CHECK_OK(hv_model_trainset_hold(ts, &i0, 1));
        hv_model_trainset_cache_get(ts, &cs);
        HV_CHECK(cs.loads == 5 && cs.evictions == 4 && cs.resident == ib && cs.peak == 2 * ib,
                 "hold {0}: 2 evicted (%llu, %llu, %zu)", (unsigned long long)cs.loads,
                 (unsigned long long)cs.evictions, cs.resident);
        HV_CHECK(RESIDENT(0) && !RESIDENT(1) && !RESIDENT(2) && VOXELS(0), "only item 0");
        hv_model_trainset_release(ts, 0);
        hv_model_trainset_cache_get(ts, &cs);
        HV_CHECK(cs.resident == 0 && !RESIDENT(0), "released: nothing resident");
        /* no limit: everything stays */
        hv_model_trainset_set_budget(ts, 0);
        for (size_t i = 0; i < 3; i++) HV_CHECK_OK(hv_model_trainset_hold(ts, &i, 1));
        hv_model_trainset_cache_get(ts, &cs);
        HV_CHECK(cs.loads == 8 && cs.evictions == 4 && cs.resident == 3 * ib,
                 "no limit: 3 reads, no eviction (%llu, %llu)", (unsigned long long)cs.loads,
                 (unsigned long long)cs.evictions);
        HV_CHECK(RESIDENT(0) && RESIDENT(1) && RESIDENT(2) && VOXELS(0) && VOXELS(1) && VOXELS(2),
                 "no limit: all 3 with their voxels");
        const size_t bad = 3;
        HV_CHECK(hv_model_trainset_hold(ts, &bad, 1) == HV_ERR_ARG, "hold of item 3 refused");
        hv_error_clear();
#undef RESIDENT
#undef VOXELS
        hv_model_trainset_free(ts);
    }
    /* refusals: format, version, dims (each message names what differs) */
    {
        hv_model_trainset *ts = NULL;
        HV_REQUIRE(hv_test_copy_file(path_of("m1.h5"), path_of("fmt.h5")) == 0, "copy");
        HV_REQUIRE(set_attr(path_of("fmt.h5"), "format", 1, "healthivert-store", 0) == 0, "attr");
        HV_CHECK(hv_model_trainset_open(path_of("fmt.h5"), 0xf, &ts) == HV_ERR_FORMAT &&
                     strstr(hv_error_detail(), "format") &&
                     strstr(hv_error_detail(), "healthivert-store"),
                 "other format: %s", hv_error_detail());
        HV_REQUIRE(hv_test_copy_file(path_of("m1.h5"), path_of("ver.h5")) == 0, "copy");
        HV_REQUIRE(set_attr(path_of("ver.h5"), "version", 0, NULL, 2) == 0, "attr");
        HV_CHECK(hv_model_trainset_open(path_of("ver.h5"), 0xf, &ts) == HV_ERR_FORMAT &&
                     strstr(hv_error_detail(), "version 2"),
                 "other version: %s", hv_error_detail());
        /* a file of small crops written by the writer itself */
        hv_volume *s1 = NULL, *s2 = NULL;
        const int64_t d[3] = {8, 16, 16};
        HV_REQUIRE(hv_vol_create(&s1, d, HV_DTYPE_U8, NULL) == HV_OK &&
                       hv_vol_create(&s2, d, HV_DTYPE_U8, NULL) == HV_OK, "vol");
        hv_model_train_item small = {"cs", 20, 0, HV_MODEL_SPLIT_TRAIN, NULL, s1, s2, NULL};
        HV_CHECK_OK(hv_model_trainset_write(path_of("dims.h5"), &small, 1, NULL, 0, NULL, 40));
        HV_CHECK(hv_model_trainset_open(path_of("dims.h5"), 0xf, &ts) == HV_ERR_FORMAT &&
                     strstr(hv_error_detail(), "8x16x16"),
                 "other dims: %s", hv_error_detail());
        HV_CHECK(hv_model_trainset_open(path_of("none.h5"), 0xf, &ts) == HV_ERR_NOT_FOUND,
                 "no file");
        /* merge refuses parts of other dims too */
        const char *mix[2] = {path_of("ca.h5"), path_of("dims.h5")};
        HV_CHECK(hv_model_trainset_merge(mix, 2, path_of("mix.h5"), NULL, NULL) == HV_ERR_FORMAT,
                 "merge of other dims refused");
        /* a failed write (an item of other dims) leaves the old file */
        hv_model_train_item mixed[2] = {pa[0], small};
        HV_CHECK(hv_model_trainset_write(path_of("ca.h5"), mixed, 2, NULL, 0, "ca", 40) ==
                     HV_ERR_ARG, "mixed dims refused");
        HV_CHECK_OK(hv_model_trainset_part_check(path_of("ca.h5"), "ca"));
        hv_vol_free(s1);
        hv_vol_free(s2);
    }
    HV_CHECK(no_tmp_left(), "no temporary file left in %s", tmpdir);
    /* a part with no item (every vertebra skipped) is valid and merges */
    {
        hv_model_train_skip only[1] = {{"cc", 20, "no crop"}};
        HV_CHECK_OK(hv_model_trainset_write(path_of("cc.h5"), NULL, 0, only, 1, "cc", 40));
        HV_CHECK_OK(hv_model_trainset_part_check(path_of("cc.h5"), "cc"));
        const char *three[3] = {path_of("cc.h5"), path_of("cb.h5"), path_of("ca.h5")};
        HV_CHECK_OK(hv_model_trainset_merge(three, 3, path_of("m4.h5"), NULL, NULL));
        hv_model_trainset *ts = NULL;
        HV_CHECK_OK(hv_model_trainset_open(path_of("m4.h5"), 0xf, &ts));
        HV_CHECK(ts && hv_model_trainset_size(ts) == 3 && hv_model_trainset_n_skipped(ts) == 3,
                 "3 items, 3 skipped");
        hv_model_trainset_free(ts);
    }
    for (int k = 0; k < 3; k++) {
        hv_vol_free(v[k][0]);
        hv_vol_free(v[k][1]);
    }
    return hv_test_done();
}
