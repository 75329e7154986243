/*
 * test_store_schema.c: schema v2's per-stage seconds by name, written and
 * read back, and schema v1 still read.
 *
 *  - A store made with three stages named alpha, beta, gamma (not the
 *    runner's, so nothing can pass by assuming them) and three cases (two
 *    done, one failed, with chosen seconds): /cases/seconds, its shape and
 *    values and /cases/stage_names are read back with plain HDF5 calls, not
 *    our reader; /cases/table has no seconds member any more. Then our
 *    reader, describe (means over the done cases, by hand), export
 *    (s_<name> columns) and validate.
 *  - Damaged copies the validator must reject: a negative and an infinite
 *    second, a seconds table of the wrong shape, a stage named twice, no
 *    stage names.
 *  - Bad stage lists are refused at creation (no file made).
 *  - The v1 fixture (fixtures/README.md) reads through the API under the v1
 *    names with exactly h5dump's values, validates, and refuses writes.
 *  - Schema v4 (test_v4): the attention columns always in the vertebra
 *    table; v3 stores with and without them still read (NaN / -1 without),
 *    a v4 store without them is invalid, version 5 is refused.
 */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <math.h>
#include <sys/stat.h>

#include "hv/store.h"
#include "hv_test.h"
#include "store/store_check.h"

static const char *const stages[] = {"alpha", "beta", "gamma"};
/* seconds per case (rows) and stage (columns); case c1 failed in beta */
static const double secs[3][3] = {{0.5, 1.25, 2.0}, {0.125, 0, 0}, {1.5, 0.25, 3.0}};


static char *slurp(const char *path)
{
    char *t = NULL;
    if (hv_file_read_all(path, "file", 1 << 20, &t, NULL) != HV_OK) return NULL;
    return t;
}

/* A done case with two valid vertebrae (T12, L1), or a failed one. */
static void make_result(hv_case_result *r, const char *id, int done, const double *sec)
{
    memset(r, 0, sizeof *r);
    snprintf(r->c.id, sizeof r->c.id, "%s", id);
    r->c.rank = 0;
    r->c.attempt = 1;
    for (int k = 0; k < 3; k++) r->seconds[k] = sec[k];
    r->seconds[3] = 99; /* past the store's stages: must not be written anywhere */
    if (!done) {
        r->state = HV_CASE_FAILED;
        snprintf(r->c.error, sizeof r->c.error, "beta: no such thing");
        r->c.error_code = HV_ERR_NOT_FOUND;
        return;
    }
    r->state = HV_CASE_DONE;
    r->c.n_vert = 2;
    for (int i = 0; i < 2; i++) {
        hv_run_vrow *v = &r->v[i];
        v->label = 19 + i;
        snprintf(v->level, sizeof v->level, "%s", hv_label_name(19 + i));
        v->known_grade = -1;
        v->split_set = -1;
        v->grade_rule = 0;
        v->grade_pred = -1;
        v->volume_ml = 30;
        v->mean_hu = 200;
        for (int g = 0; g < HV_REG_COUNT; g++) {
            v->h_syn[g] = 25;
            v->h_ori[g] = 24 - g * 0.5;
            v->rhlv[g] = (v->h_syn[g] - v->h_ori[g]) / v->h_syn[g];
        }
    }
}

static void write_store(const char *path)
{
    hv_run_crow rows[3];
    memset(rows, 0, sizeof rows);
    const char *ids[3] = {"c0", "c1", "c2"};
    for (int i = 0; i < 3; i++) {
        snprintf(rows[i].id, sizeof rows[i].id, "%s", ids[i]);
        rows[i].rank = -1;
    }
    hv_store_create_info ci = {3, 0, "[test]\n", 1, 1, "2025-01-01T00:00:00Z", "in", 3, stages,
                               0, 0, 0};
    hv_store *s = NULL;
    HV_REQUIRE_V(hv_store_create(path, &ci, rows, &s) == HV_OK, "create: %s", hv_error_detail());
    hv_case_result r;
    for (int i = 0; i < 3; i++) {
        make_result(&r, ids[i], i != 1, secs[i]);
        HV_CHECK_OK(hv_store_put_case(s, i, &r));
    }
    HV_CHECK_OK(hv_store_close(s));
}

/* Read the file with plain HDF5 calls, not the store's reader. */
static void check_file_by_hand(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    HV_REQUIRE_V(f >= 0, "open %s", path);
    int64_t ver = 0;
    hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT64, &ver);
    H5Aclose(a);
    HV_CHECK(ver == 4, "/@schema_version = %lld", (long long)ver);

    hid_t d = H5Dopen2(f, "cases/seconds", H5P_DEFAULT);
    HV_REQUIRE_V(d >= 0, "no /cases/seconds");
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    HV_CHECK(H5Tequal(t, H5T_IEEE_F64LE) > 0, "/cases/seconds is float64 LE");
    HV_CHECK(H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2 &&
                 dims[0] == 3 && dims[1] == 3,
             "/cases/seconds is 3 x 3 (%llu x %llu)", (unsigned long long)dims[0],
             (unsigned long long)dims[1]);
    double got[3][3];
    HV_CHECK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0, "read seconds");
    HV_CHECK(!memcmp(got, secs, sizeof got), "/cases/seconds holds the values written, case x stage");
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);

    d = H5Dopen2(f, "cases/stage_names", H5P_DEFAULT);
    HV_REQUIRE_V(d >= 0, "no /cases/stage_names");
    t = H5Dget_type(d);
    char names[3][32];
    HV_CHECK(H5Tget_class(t) == H5T_STRING && H5Tget_size(t) == 32, "stage names: strings of 32 bytes");
    HV_CHECK(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) >= 0, "read names");
    HV_CHECK(!strcmp(names[0], "alpha") && !strcmp(names[1], "beta") && !strcmp(names[2], "gamma"),
             "stage names %s, %s, %s", names[0], names[1], names[2]);
    H5Tclose(t);
    H5Dclose(d);

    d = H5Dopen2(f, "cases/table", H5P_DEFAULT);
    t = H5Dget_type(d);
    HV_CHECK(H5Tget_member_index(t, "seconds") < 0 && H5Tget_member_index(t, "cost") >= 0,
             "/cases/table has no seconds member in v2");
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_v2(const char *tmp)
{
    char path[4200], exp[4200], p[4300];
    snprintf(path, sizeof path, "%s/v2.h5", tmp);
    write_store(path);
    check_file_by_hand(path);

    hv_store *s = NULL;
    HV_REQUIRE_V(hv_store_open_serial(path, 0, &s) == HV_OK, "open: %s", hv_error_detail());
    HV_CHECK(hv_store_version(s) == 4, "version %d", hv_store_version(s));
    int n = 0;
    const char *const *names = NULL;
    hv_store_stage_names(s, &n, &names);
    HV_CHECK(n == 3 && !strcmp(names[0], "alpha") && !strcmp(names[2], "gamma"), "stage names (%d)", n);
    double got[9];
    HV_CHECK_OK(hv_store_read_seconds(s, got));
    HV_CHECK(!memcmp(got, secs, sizeof got), "hv_store_read_seconds");
    HV_CHECK_OK(hv_store_close(s));

    char *rep = NULL;
    HV_CHECK(hv_store_validate(path, &rep) == HV_OK, "valid: %s\n%s", hv_error_detail(), rep ? rep : "");
    free(rep);
    char *text = NULL;
    HV_CHECK_OK(hv_store_describe(path, &text));
    /* over the done cases c0 and c2: (0.5+1.5)/2, (1.25+0.25)/2, (2+3)/2 */
    HV_CHECK(text && strstr(text, "healthivert-store v4") &&
                 strstr(text, "seconds/case:   alpha 1.000 beta 0.750 gamma 2.500\n"),
             "describe:\n%s", text ? text : "");
    free(text);

    snprintf(exp, sizeof exp, "%s/export", tmp);
    HV_CHECK_OK(hv_store_export_csv(path, exp));
    snprintf(p, sizeof p, "%s/cases.csv", exp);
    char *csv = slurp(p);
    HV_CHECK(csv && !strncmp(csv, "case,status,n_vert,rank,attempt,error_code,error,ct_path,mask_path,"
                                  "s_alpha,s_beta,s_gamma\n", 82),
             "cases.csv header:\n%s", csv ? csv : "");
    HV_CHECK(csv && strstr(csv, "\nc0,done,2,0,1,,,,,0.500000,1.250000,2.000000\n") &&
                 strstr(csv, "\nc1,failed,0,0,1,not found,beta: no such thing,,,0.125000,0.000000,0.000000\n") &&
                 strstr(csv, "\nc2,done,2,0,1,,,,,1.500000,0.250000,3.000000\n"),
             "cases.csv rows:\n%s", csv ? csv : "");
    free(csv);

    /* damaged copies */
    char bad[4300];
    struct {
        const char *what, *needle;
    } cases[] = {
        {"negative", "case c0: seconds[beta] = -1"},
        {"infinite", "case c2: seconds[gamma] = inf"},
        {"shape", "/cases/seconds is not 3 x 3"},
        {"twice", "stage 'alpha' named twice"},
        {"no names", "no /cases/stage_names"},
    };
    for (int k = 0; k < 5; k++) {
        snprintf(bad, sizeof bad, "%s/bad-%d.h5", tmp, k);
        hv_test_copy_file(path, bad);
        hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
        if (k <= 1) {
            hid_t d = H5Dopen2(f, "cases/seconds", H5P_DEFAULT), fs = H5Dget_space(d);
            hsize_t at[2] = {k == 0 ? 0 : 2, k == 0 ? 1 : 2}, one[2] = {1, 1};
            hid_t ms = H5Screate_simple(2, one, NULL);
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, at, NULL, one, NULL);
            double v = k == 0 ? -1.0 : INFINITY;
            H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, &v);
            H5Sclose(ms);
            H5Sclose(fs);
            H5Dclose(d);
        } else if (k == 2) {
            H5Ldelete(f, "cases/seconds", H5P_DEFAULT);
            hsize_t dims[2] = {3, 2};
            hid_t sp = H5Screate_simple(2, dims, NULL);
            hid_t d = H5Dcreate2(f, "cases/seconds", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                                 H5P_DEFAULT);
            double z[6] = {0};
            H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
            H5Dclose(d);
            H5Sclose(sp);
        } else if (k == 3) {
            hid_t d = H5Dopen2(f, "cases/stage_names", H5P_DEFAULT), t = H5Dget_type(d);
            char nm[3][32] = {"alpha", "alpha", "gamma"};
            H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, nm);
            H5Tclose(t);
            H5Dclose(d);
        } else {
            H5Ldelete(f, "cases/stage_names", H5P_DEFAULT);
        }
        H5Fclose(f);
        expect_invalid(bad, cases[k].needle);
    }
}

static void test_bad_lists(const char *tmp)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/never.h5", tmp);
    hv_run_crow row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "c0");
    static const char *const twice[] = {"a", "b", "a"}, *const space[] = {"load images"},
                             *const empty[] = {""},
                             *const longname[] = {"abcdefghijklmnopqrstuvwxyz_01234"}; /* 32 */
    static const char *const many[17] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8",
                                         "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16"};
    struct {
        int n;
        const char *const *names;
        const char *needle;
    } bad[] = {{0, stages, "0 stages"},     {17, many, "17 stages"},     {3, twice, "named twice"},
               {1, space, "'load images'"}, {1, empty, "has no name"},   {1, longname, "longer than 31"},
               {2, NULL, "no names"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        hv_store_create_info ci = {1, 0, "", 1, 1, "", "", bad[k].n, bad[k].names, 0, 0, 0};
        hv_store *s = NULL;
        hv_status st = hv_store_create(path, &ci, &row, &s);
        HV_CHECK(st == HV_ERR_ARG && !s && strstr(hv_error_detail(), bad[k].needle),
                 "bad stage list %zu refused (%s): %s", k, bad[k].needle, hv_error_detail());
        hv_store_close(s);
    }
    struct stat sb;
    HV_CHECK(stat(path, &sb) != 0, "no file made for a bad stage list");
    /* the largest list allowed works */
    hv_store_create_info ci = {1, 0, "", 1, 1, "", "", 16, many, 0, 0, 0};
    hv_store *s = NULL;
    HV_CHECK_OK(hv_store_create(path, &ci, &row, &s));
    hv_store_close(s);
}

static void test_v1(const char *tmp)
{
    char fix[4200], path[4300];
    snprintf(fix, sizeof fix, "%s/store/fixtures/store_v1.h5", HV_TEST_SOURCE_DIR);
    snprintf(path, sizeof path, "%s/v1-copy.h5", tmp);
    HV_REQUIRE_V(hv_test_copy_file(fix, path) == 0, "copy %s", fix);
    /* h5dump -m '%.17g' -d /cases/table store_v1.h5 (fixtures/README.md) */
    static const double want[4][6] = {
        {0.048917526999503025, 0.20535130099960952, 0.0078361230007431004, 8.7370008259313181e-06,
         1.9999970390927047e-07, 0.0047709169994050171},
        {0.066242944001714932, 0.17757755200000247, 0.01044389299931936, 4.4489988795248792e-06,
         1.6000012692529708e-07, 0.00064938800096570048},
        {0.050272046000827686, 0.19193789900054981, 0.0084784179998678155, 6.5530002757441252e-06,
         1.4999932318460196e-07, 0.0098551999999472173},
        {0.071545577000506455, 0.21878990999903181, 0.01047199599997839, 7.5950010796077549e-06,
         1.5999830793589354e-07, 0.01169017000029271}};
    hv_store *s = NULL;
    HV_REQUIRE_V(hv_store_open_serial(path, 1, &s) == HV_OK, "open v1: %s", hv_error_detail());
    HV_CHECK(hv_store_version(s) == 1 && hv_store_n_cases(s) == 4, "v1, 4 cases");
    int n = 0;
    const char *const *names = NULL;
    hv_store_stage_names(s, &n, &names);
    const char *v1[] = {"load", "measure", "synthesis", "grade", "images", "journal"};
    int same = n == 6;
    for (int k = 0; same && k < 6; k++) same = !strcmp(names[k], v1[k]);
    HV_CHECK(same, "the v1 stage names (%d)", n);
    double got[4][6];
    HV_CHECK_OK(hv_store_read_seconds(s, &got[0][0]));
    HV_CHECK(!memcmp(got, want, sizeof got), "v1 seconds equal h5dump's, bit for bit");
    hv_run_crow rows[4];
    uint8_t stt[4];
    HV_CHECK_OK(hv_store_read_cases(s, rows, stt));
    HV_CHECK(!strcmp(rows[3].id, "ph0003") && rows[3].n_vert == 6 && stt[3] == HV_CASE_DONE,
             "v1 case rows read (%s, %d vertebrae)", rows[3].id, rows[3].n_vert);
    hv_case_result r;
    memset(&r, 0, sizeof r);
    r.state = HV_CASE_FAILED;
    HV_CHECK(hv_store_put_case(s, 0, &r) == HV_ERR_UNSUPPORTED, "a v1 store is not written into");
    HV_CHECK_OK(hv_store_close(s));
    char *rep = NULL;
    HV_CHECK(hv_store_validate(path, &rep) == HV_OK, "v1 fixture valid: %s\n%s", hv_error_detail(),
             rep ? rep : "");
    free(rep);
}

/* No MPI_Init: a store is created and read serially, with no communicator
 * (the sanitizer build runs this test with leak detection on, which Open
 * MPI's own allocations would fail). */
/* Set /@schema_version of the file at path to ver (plain HDF5). */
static void set_version(const char *path, int64_t ver)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = f >= 0 ? H5Aopen(f, "schema_version", H5P_DEFAULT) : -1;
    HV_CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &ver) >= 0, "set version %lld of %s",
             (long long)ver, path);
    if (a >= 0) H5Aclose(a);
    if (f >= 0) H5Fclose(f);
}

/* Replace /vertebrae/table by a copy without the attention columns (the
 * members before p_fracture, the row cut there): the table of a v3 store
 * written before them. Plain HDF5, from the file's own type. */
static void strip_attention(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, "vertebrae/table", H5P_DEFAULT) : -1;
    HV_REQUIRE_V(d >= 0, "open %s /vertebrae/table", path);
    hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
    int ip = H5Tget_member_index(ft, "p_fracture");
    HV_REQUIRE_V(ip >= 0, "the v4 table has p_fracture");
    size_t cut = H5Tget_member_offset(ft, (unsigned)ip);
    hid_t rt = H5Tcreate(H5T_COMPOUND, cut);
    for (int m = 0; m < H5Tget_nmembers(ft); m++) {
        if (H5Tget_member_offset(ft, (unsigned)m) >= cut) continue;
        char *name = H5Tget_member_name(ft, (unsigned)m);
        hid_t mt = H5Tget_member_type(ft, (unsigned)m);
        H5Tinsert(rt, name, H5Tget_member_offset(ft, (unsigned)m), mt);
        H5Tclose(mt);
        H5free_memory(name);
    }
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    char *buf = calloc(n ? n : 1, cut);
    HV_REQUIRE_V(buf && H5Dread(d, rt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, "read rows");
    H5Dclose(d);
    HV_CHECK(H5Ldelete(f, "vertebrae/table", H5P_DEFAULT) >= 0, "unlink the table");
    d = H5Dcreate2(f, "vertebrae/table", rt, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    HV_CHECK(d >= 0 && H5Dwrite(d, rt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0,
             "write the cut table");
    free(buf);
    if (d >= 0) H5Dclose(d);
    H5Tclose(rt);
    H5Tclose(ft);
    H5Sclose(sp);
    H5Fclose(f);
}

/* Schema v4: the vertebra table always has the attention columns. A v4
 * store holds the values written; relabelled v3 it still reads (and the
 * columns as written: a v3 store of the build that added them); with the
 * columns cut away it is a valid v3 store whose columns read NaN / -1 and
 * an invalid v4 one; version 5 is refused. */
static void test_v4(const char *tmp)
{
    char path[4200], cp[4300];
    snprintf(path, sizeof path, "%s/v4.h5", tmp);
    hv_run_crow row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "c0");
    row.rank = -1;
    hv_store_create_info ci = {1, 0, "[test]\n", 1, 1, "2025-01-01T00:00:00Z", "in", 3, stages,
                               0, 0, 0};
    hv_store *s = NULL;
    HV_REQUIRE_V(hv_store_create(path, &ci, &row, &s) == HV_OK, "create: %s", hv_error_detail());
    hv_case_result r;
    make_result(&r, "c0", 1, secs[0]);
    r.v[0].p_fracture = 0.25;
    r.v[0].cam_mass_body = 0.5;
    r.v[0].cam_max_slice = 31;
    hv_run_vrow_attn_none(&r.v[1]);
    HV_CHECK_OK(hv_store_put_case(s, 0, &r));
    HV_CHECK_OK(hv_store_close(s));

    /* by hand: version 4 and the four members in the file's row type */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t ver = 0;
    hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT64, &ver);
    H5Aclose(a);
    hid_t d = H5Dopen2(f, "vertebrae/table", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    HV_CHECK(ver == 4 && H5Tget_member_index(t, "p_fracture") >= 0 &&
                 H5Tget_member_index(t, "cam_mass_body") >= 0 &&
                 H5Tget_member_index(t, "cam_max_slice") >= 0 &&
                 H5Tget_member_index(t, "pad2_") >= 0,
             "v4 (%lld) with the attention members", (long long)ver);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);

    /* the same file as v3 (the columns there): read as written */
    snprintf(cp, sizeof cp, "%s/v3-attn.h5", tmp);
    HV_REQUIRE_V(hv_test_copy_file(path, cp) == 0, "copy");
    set_version(cp, 3);
    char *rep = NULL;
    HV_CHECK(hv_store_validate(cp, &rep) == HV_OK, "v3 with the columns valid: %s\n%s",
             hv_error_detail(), rep ? rep : "");
    free(rep);
    HV_REQUIRE_V(hv_store_open_serial(cp, 1, &s) == HV_OK, "open v3: %s", hv_error_detail());
    hv_run_vrow *vr = NULL;
    size_t nv = 0;
    HV_CHECK(hv_store_version(s) == 3, "version %d", hv_store_version(s));
    HV_CHECK_OK(hv_store_read_vertebrae(s, &vr, &nv));
    HV_CHECK(nv == 2 && vr[0].p_fracture == 0.25 && vr[0].cam_mass_body == 0.5 &&
                 vr[0].cam_max_slice == 31 && isnan(vr[1].p_fracture) && vr[1].cam_max_slice == -1,
             "v3 with the columns reads them");
    free(vr);
    HV_CHECK(hv_store_put_case(s, 0, &r) == HV_ERR_UNSUPPORTED, "a v3 store is not written into");
    hv_error_clear();
    HV_CHECK_OK(hv_store_close(s));

    /* without the columns: a valid v3 store reading NaN / -1, an invalid v4 */
    snprintf(cp, sizeof cp, "%s/v4-noattn.h5", tmp);
    HV_REQUIRE_V(hv_test_copy_file(path, cp) == 0, "copy");
    strip_attention(cp);
    expect_invalid(cp, "with the attention columns");
    set_version(cp, 3);
    rep = NULL;
    HV_CHECK(hv_store_validate(cp, &rep) == HV_OK, "v3 without the columns valid: %s\n%s",
             hv_error_detail(), rep ? rep : "");
    free(rep);
    HV_REQUIRE_V(hv_store_open_serial(cp, 0, &s) == HV_OK, "open: %s", hv_error_detail());
    HV_CHECK_OK(hv_store_read_vertebrae(s, &vr, &nv));
    HV_CHECK(nv == 2 && isnan(vr[0].p_fracture) && isnan(vr[0].cam_mass_body) &&
                 vr[0].cam_max_slice == -1 && vr[0].h_ori[1] == 23.5,
             "v3 without the columns: NaN, NaN, -1 (and the rest as written)");
    free(vr);
    HV_CHECK_OK(hv_store_close(s));

    /* a version this build does not know */
    snprintf(cp, sizeof cp, "%s/v5.h5", tmp);
    HV_REQUIRE_V(hv_test_copy_file(path, cp) == 0, "copy");
    set_version(cp, 5);
    s = NULL;
    HV_CHECK(hv_store_open_serial(cp, 0, &s) == HV_ERR_FORMAT && !s &&
                 strstr(hv_error_detail(), "schema version 5"),
             "v5 refused: %s", hv_error_detail());
    hv_error_clear();
    hv_case_result_clear(&r);
}

int main(void)
{
    const char *tmp0 = hv_test_tmpdir("store_schema");
    HV_REQUIRE(tmp0 != NULL, "tmpdir");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", tmp0);
    test_v2(tmp);
    test_v4(tmp);
    test_bad_lists(tmp);
    test_v1(tmp);
    return hv_test_done();
}
