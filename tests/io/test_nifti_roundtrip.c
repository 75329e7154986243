/*
 * test_nifti_roundtrip.c: NIfTI write -> read round trips and the reader's
 * rules on hand-made headers.
 *
 *  - every supported on-disk datatype x {.nii, .nii.gz} x {NIfTI-1, NIfTI-2}:
 *    the values come back exactly (including each type's extremes) and the
 *    oblique affine comes back (exactly for NIfTI-2, to float precision for
 *    NIfTI-1); the qform the writer derives gives the same affine;
 *  - scl_slope/scl_inter are applied; slope 0 or NaN means none;
 *  - geometry: sform over qform over pixdim, from headers encoded by the
 *    test itself (nifti_fixture.h) in both byte orders and both versions;
 *  - integer reads reject non-integral or out-of-range voxels; the writer
 *    rejects values that do not fit and leaves no file behind;
 *  - 2-D and 4-D files, complex/RGB datatypes, two-file magic.
 */
#include <dirent.h>
#include <math.h>
#include <stdint.h>

#include "hv/io.h"
#include "hv_test.h"
#include "nifti_fixture.h"

static const char *tmp;
static char pbuf[8][4096];
static int pslot;

static const char *tpath(const char *name)
{
    char *p = pbuf[pslot++ & 7];
    snprintf(p, 4096, "%s/%s", tmp, name);
    return p;
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void oblique_affine(double A[4][4])
{
    /* Rotation of 20 degrees about (1, 2, 2)/3, spacing 0.8 x 1.25 x 2.5, an
     * offset with fractional parts: exercises every matrix entry. */
    double ux = 1 / 3.0, uy = 2 / 3.0, uz = 2 / 3.0, th = 20 * M_PI / 180;
    double c = cos(th), s = sin(th), t = 1 - c;
    double R[3][3] = {{t * ux * ux + c, t * ux * uy - s * uz, t * ux * uz + s * uy},
                      {t * ux * uy + s * uz, t * uy * uy + c, t * uy * uz - s * ux},
                      {t * ux * uz - s * uy, t * uy * uz + s * ux, t * uz * uz + c}};
    double sp[3] = {0.8, 1.25, 2.5}, off[3] = {-100.5, 50.25, 20.125};
    hv_affine_identity(A);
    for (int r = 0; r < 3; r++) {
        for (int k = 0; k < 3; k++) A[r][k] = R[r][k] * sp[k];
        A[r][3] = off[r];
    }
}

static double affine_maxdiff(const double A[4][4], const double B[4][4])
{
    double m = 0;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) m = fmax(m, fabs(A[r][c] - B[r][c]));
    return m;
}

typedef struct rt_case {
    int datatype;
    const char *name;
    hv_dtype vol;         /* dtype of the volume written and read back */
    double lo, hi;        /* extremes written into the first two voxels */
    double step;          /* other values are multiples of step in [lo, hi] */
} rt_case;

static const rt_case rt_cases[] = {
    {2, "UINT8", HV_DTYPE_U8, 0, 255, 1},
    {256, "INT8", HV_DTYPE_I16, -128, 127, 1},
    {4, "INT16", HV_DTYPE_I16, -32768, 32767, 1},
    {512, "UINT16", HV_DTYPE_U16, 0, 65535, 1},
    {8, "INT32", HV_DTYPE_I32, -2147483648.0, 2147483647.0, 1},
    /* The wide types go through float32 volumes: extremes that float holds. */
    {768, "UINT32", HV_DTYPE_F32, 0, 4294967040.0, 256},
    {1024, "INT64", HV_DTYPE_F32, -0x1p62, 0x1p62, 0x1p30},
    {1280, "UINT64", HV_DTYPE_F32, 0, 0x1p63, 0x1p30},
    {16, "FLOAT32", HV_DTYPE_F32, -3.0e38, 3.0e38, 0.125},
    {64, "FLOAT64", HV_DTYPE_F32, -1.0e-30, 1.0e30, 0.125},
};

static void fill_values(hv_volume *v, const rt_case *c, uint64_t seed)
{
    hv_rng rng;
    hv_rng_seed(&rng, seed, 0);
    for (size_t i = 0; i < v->nvox; i++) {
        double x;
        if (i == 0) x = c->lo;
        else if (i == 1) x = c->hi;
        else {
            /* a multiple of step within +-2^20 steps, clamped to the range */
            double k = (double)((int64_t)hv_rng_below(&rng, 1u << 21) - (1 << 20));
            x = fmin(fmax(k * c->step, c->lo), c->hi);
        }
        hv_vol_set(v, i, x);
    }
    if (c->datatype == 16 && v->nvox > 3) ((float *)v->data)[2] = NAN;
}

static void test_roundtrip_all(void)
{
    double A[4][4];
    oblique_affine(A);
    int64_t dim[3] = {5, 4, 3};
    for (size_t ci = 0; ci < sizeof rt_cases / sizeof rt_cases[0]; ci++) {
        const rt_case *c = &rt_cases[ci];
        hv_volume *v = NULL;
        HV_CHECK_OK(hv_vol_create(&v, dim, c->vol, (const double(*)[4])A));
        if (!v) continue;
        fill_values(v, c, ci + 1);
        for (int version = 1; version <= 2; version++) {
            for (int gz = 0; gz <= 1; gz++) {
                char name[128];
                snprintf(name, sizeof name, "rt_%s_v%d.nii%s", c->name, version, gz ? ".gz" : "");
                const char *p = tpath(name);
                hv_nifti_write_opts wo = {.version = version, .datatype = c->datatype,
                                          .descrip = "round trip", .gzip_level = 6};
                HV_CHECK_OK(hv_io_nifti_write(p, v, &wo));
                hv_volume *r = NULL;
                hv_nifti_info info;
                HV_CHECK_OK(hv_io_nifti_read(p, c->vol, NULL, &r, &info));
                if (!r) continue;
                HV_CHECK(info.version == version && info.datatype == c->datatype &&
                             info.gzipped == gz && info.qform_code == 1 && info.sform_code == 1,
                         "%s: header facts v%d dt%d gz%d q%d s%d", name, info.version,
                         info.datatype, info.gzipped, info.qform_code, info.sform_code);
                HV_CHECK(strcmp(info.descrip, "round trip") == 0, "%s: descrip '%s'", name,
                         info.descrip);
                HV_CHECK(r->dim[0] == 5 && r->dim[1] == 4 && r->dim[2] == 3, "%s: dims", name);
                size_t bad = 0;
                for (size_t i = 0; i < v->nvox; i++) {
                    double a = hv_vol_get(v, i), b = hv_vol_get(r, i);
                    if (!(a == b || (isnan(a) && isnan(b)))) bad++;
                }
                HV_CHECK(bad == 0, "%s: %zu of %zu voxels differ", name, bad, v->nvox);
                /* NIfTI-1 stores the sform as float32: |entry| <= 101, so
                 * rounding is below 101 * 2^-24 = 6e-6. NIfTI-2 is exact. */
                double tol = version == 1 ? 1e-5 : 0.0;
                double d = affine_maxdiff((const double(*)[4])A, (const double(*)[4])r->affine);
                HV_CHECK(d <= tol, "%s: affine differs by %g", name, d);
                HV_CHECK_CLOSE(r->spacing[1], 1.25, 1e-6, "spacing j");
                /* The same voxels must check clean. */
                HV_CHECK_OK(hv_io_nifti_check(p, NULL, NULL));
                hv_vol_free(r);
                if (gz) {
                    size_t n = 0;
                    unsigned char *b = fx_slurp(p, &n);
                    HV_CHECK(b && n > 2 && b[0] == 0x1f && b[1] == 0x8b, "%s: not gzip", name);
                    free(b);
                }
            }
        }
        hv_vol_free(v);
    }
}

/* The qform the writer derives must describe the same grid as the sform:
 * clear sform_code in the written file and read again. */
static void test_qform_matches_sform(void)
{
    double A[4][4];
    oblique_affine(A);
    int64_t dim[3] = {4, 3, 2};
    /* Also a left-handed grid (qfac = -1): flip the k axis. */
    for (int hand = 0; hand < 2; hand++) {
        double B[4][4];
        memcpy(B, A, sizeof B);
        if (hand)
            for (int r = 0; r < 3; r++) B[r][2] = -B[r][2];
        hv_volume *v = NULL;
        HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_I16, (const double(*)[4])B));
        if (!v) return;
        for (int version = 1; version <= 2; version++) {
            const char *p = tpath(version == 1 ? "q1.nii" : "q2.nii");
            hv_nifti_write_opts wo = {.version = version};
            HV_CHECK_OK(hv_io_nifti_write(p, v, &wo));
            size_t n = 0;
            unsigned char *b = fx_slurp(p, &n);
            HV_CHECK(b && n >= 400, "read back %s", p);
            if (!b || n < 400) {
                free(b);
                continue;
            }
            if (version == 1) fx_i16(b, 254, 0, 0);
            else fx_i32(b, 348, 0, 0);
            HV_CHECK(fx_write_bytes(p, b, n, 0) == 0, "rewrite");
            free(b);
            hv_volume *r = NULL;
            hv_nifti_info info;
            HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_I16, NULL, &r, &info));
            if (!r) continue;
            HV_CHECK(info.sform_code == 0 && info.qform_code == 1, "codes");
            /* Float32 quaternion in NIfTI-1: ~1e-7 relative on 100 mm. */
            double d = affine_maxdiff((const double(*)[4])B, (const double(*)[4])r->affine);
            HV_CHECK(d <= (version == 1 ? 2e-5 : 1e-9), "v%d hand %d: qform affine off by %g",
                     version, hand, d);
            hv_vol_free(r);
        }
        hv_vol_free(v);
    }
}

/* Geometry priority on hand-made headers, all four encodings. */
static void test_geometry_rules(void)
{
    for (int version = 1; version <= 2; version++) {
        for (int swap = 0; swap <= 1; swap++) {
            int16_t data[24];
            for (int i = 0; i < 24; i++) data[i] = (int16_t)(i * 100 - 1000);
            int16_t disk[24];
            for (int i = 0; i < 24; i++)
                disk[i] = swap ? (int16_t)__builtin_bswap16((uint16_t)data[i]) : data[i];
            fx_hdr h;
            fx_default(&h, version, 4, 16, 4, 3, 2);
            h.swap = swap;
            /* qform: quaternion (0,0,1) = 180 deg about z; qfac -1 flips k. */
            h.qform_code = 1;
            h.quatern[2] = 1.0;
            h.pixdim[0] = -1.0;
            h.pixdim[1] = 2.0, h.pixdim[2] = 3.0, h.pixdim[3] = 4.0;
            h.qoffset[0] = -250.5, h.qoffset[1] = 145.25, h.qoffset[2] = 182.0;
            /* sform: 3 mm RAS with an offset (the example CT's). */
            h.sform_code = 2;
            memset(h.srow, 0, sizeof h.srow);
            h.srow[0][0] = h.srow[1][1] = h.srow[2][2] = 3.0;
            h.srow[0][3] = -177.95625, h.srow[1][3] = 11.3190, h.srow[2][3] = 94.301796;

            char name[64];
            double expect_s[3][4] = {{3, 0, 0, -177.95625}, {0, 3, 0, 11.3190},
                                     {0, 0, 3, 94.301796}};
            double expect_q[3][4] = {{-2, 0, 0, -250.5}, {0, -3, 0, 145.25},
                                     {0, 0, -4, 182.0}};
            double expect_p[3][4] = {{2, 0, 0, 0}, {0, 3, 0, 0}, {0, 0, 4, 0}};
            const char *want_codes[3] = {"RAS", "LPI", "RAS"};
            for (int mode = 0; mode < 3; mode++) {
                if (mode == 1) h.sform_code = 0;
                if (mode == 2) h.qform_code = 0;
                snprintf(name, sizeof name, "geom_v%d_s%d_m%d.nii", version, swap, mode);
                const char *p = tpath(name);
                HV_CHECK(fx_write(p, &h, disk, sizeof disk, 0) == 0, "write %s", name);
                hv_volume *r = NULL;
                hv_nifti_info info;
                HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_F32, NULL, &r, &info));
                if (!r) continue;
                HV_CHECK(info.swapped == swap && info.version == version, "%s: swapped %d", name,
                         info.swapped);
                double(*E)[4] = mode == 0 ? expect_s : mode == 1 ? expect_q : expect_p;
                double d = 0;
                for (int rr = 0; rr < 3; rr++)
                    for (int cc = 0; cc < 4; cc++) d = fmax(d, fabs(E[rr][cc] - r->affine[rr][cc]));
                /* float32 header fields in NIfTI-1: 2^-24 * 250 = 1.5e-5 */
                HV_CHECK(d < 2e-5, "%s: affine off by %g", name, d);
                char codes[4];
                hv_affine_axcodes((const double(*)[4])r->affine, codes);
                HV_CHECK(strcmp(codes, want_codes[mode]) == 0, "%s: axcodes %s, want %s", name,
                         codes, want_codes[mode]);
                size_t bad = 0;
                for (int i = 0; i < 24; i++) bad += ((float *)r->data)[i] != data[i];
                HV_CHECK(bad == 0, "%s: %zu voxels differ", name, bad);
                hv_vol_free(r);
            }
        }
    }
}

/* NIfTI-2, big-endian, int64 data with values beyond 2^53 read as int32 must
 * fail; within int32 they come back exactly. Also uint64 above int64. */
static void test_nifti2_int64(void)
{
    for (int swap = 0; swap <= 1; swap++) {
        int64_t vals[8] = {0, 1, -1, INT32_MIN, INT32_MAX, 123456789, -987654321, 42};
        int64_t disk[8];
        for (int i = 0; i < 8; i++)
            disk[i] = swap ? (int64_t)__builtin_bswap64((uint64_t)vals[i]) : vals[i];
        fx_hdr h;
        fx_default(&h, 2, 1024, 64, 2, 2, 2);
        h.swap = swap;
        const char *p = tpath(swap ? "n2_i64_be.nii.gz" : "n2_i64_le.nii.gz");
        HV_CHECK(fx_write(p, &h, disk, sizeof disk, 1) == 0, "write");
        hv_volume *r = NULL;
        HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_I32, NULL, &r, NULL));
        if (r) {
            size_t bad = 0;
            for (int i = 0; i < 8; i++) bad += ((int32_t *)r->data)[i] != vals[i];
            HV_CHECK(bad == 0, "int64 -> int32: %zu differ", bad);
        }
        hv_vol_free(r);
        /* One value above int32: as int32 it must fail, as float it reads. */
        vals[7] = (int64_t)1 << 40;
        disk[7] = swap ? (int64_t)__builtin_bswap64((uint64_t)vals[7]) : vals[7];
        HV_CHECK(fx_write(p, &h, disk, sizeof disk, 1) == 0, "write");
        r = NULL;
        hv_status st = hv_io_nifti_read(p, HV_DTYPE_I32, NULL, &r, NULL);
        HV_CHECK(st == HV_ERR_FORMAT && r == NULL && strstr(hv_error_detail(), "(1, 1, 1)"),
                 "2^40 as int32: %s %s", hv_status_name(st), hv_error_detail());
        HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_F32, NULL, &r, NULL));
        if (r) HV_CHECK(((float *)r->data)[7] == 0x1p40f, "2^40 as float");
        hv_vol_free(r);
    }
    /* uint64 above INT64_MAX as int32: clean error. */
    uint64_t u[1] = {UINT64_MAX};
    fx_hdr h;
    fx_default(&h, 2, 1280, 64, 1, 1, 1);
    const char *p = tpath("n2_u64.nii");
    HV_CHECK(fx_write(p, &h, u, sizeof u, 0) == 0, "write");
    hv_volume *r = NULL;
    hv_status st = hv_io_nifti_read(p, HV_DTYPE_I32, NULL, &r, NULL);
    HV_CHECK(st == HV_ERR_FORMAT, "uint64 max as int32: %s", hv_status_name(st));
    HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_F32, NULL, &r, NULL));
    if (r) HV_CHECK(((float *)r->data)[0] == 0x1p64f, "uint64 max as float");
    hv_vol_free(r);
}

static void test_scaling(void)
{
    int64_t dim[3] = {10, 10, 10};
    hv_volume *v = NULL;
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_F32, NULL));
    if (!v) return;
    /* -1024 + 0.5 k: exactly representable after INT16 quantisation. */
    for (size_t i = 0; i < v->nvox; i++) ((float *)v->data)[i] = (float)(-1024.0 + 0.5 * (double)i);
    for (int version = 1; version <= 2; version++) {
        const char *p = tpath(version == 1 ? "scl1.nii.gz" : "scl2.nii.gz");
        hv_nifti_write_opts wo = {.version = version, .datatype = 4, .scl_slope = 0.5,
                                  .scl_inter = -1024};
        HV_CHECK_OK(hv_io_nifti_write(p, v, &wo));
        hv_volume *r = NULL;
        hv_nifti_info info;
        HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_F32, NULL, &r, &info));
        if (!r) continue;
        HV_CHECK(info.scl_slope == 0.5 && info.scl_inter == -1024, "scl %g %g", info.scl_slope,
                 info.scl_inter);
        size_t bad = 0;
        for (size_t i = 0; i < v->nvox; i++) bad += ((float *)r->data)[i] != ((float *)v->data)[i];
        HV_CHECK(bad == 0, "scaled round trip: %zu differ", bad);
        hv_vol_free(r);
        /* Odd k gives x.5: not a label. */
        hv_status st = hv_io_nifti_read(p, HV_DTYPE_I16, NULL, &r, NULL);
        HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "not an integer"),
                 "half values as int16: %s %s", hv_status_name(st), hv_error_detail());
    }
    hv_vol_free(v);

    /* Hand-made: slope 2 inter 1 on uint8 read as int16; slope 0 and NaN = none. */
    uint8_t raw[8] = {0, 1, 2, 3, 100, 127, 200, 255};
    double slopes[3] = {2.0, 0.0, NAN};
    for (int s = 0; s < 3; s++) {
        fx_hdr h;
        fx_default(&h, 1, 2, 8, 2, 2, 2);
        h.scl_slope = slopes[s];
        h.scl_inter = 1.0;
        const char *p = tpath("scl_hand.nii");
        HV_CHECK(fx_write(p, &h, raw, sizeof raw, 0) == 0, "write");
        hv_volume *r = NULL;
        HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_I16, NULL, &r, NULL));
        if (!r) continue;
        size_t bad = 0;
        for (int i = 0; i < 8; i++) {
            int want = s == 0 ? 2 * raw[i] + 1 : raw[i];
            bad += ((int16_t *)r->data)[i] != want;
        }
        HV_CHECK(bad == 0, "slope %g: %zu differ", slopes[s], bad);
        hv_vol_free(r);
    }
    /* A valid slope with a NaN intercept is an error. */
    fx_hdr h;
    fx_default(&h, 1, 2, 8, 2, 2, 2);
    h.scl_slope = 1.0;
    h.scl_inter = NAN;
    const char *p = tpath("scl_nan_inter.nii");
    HV_CHECK(fx_write(p, &h, raw, sizeof raw, 0) == 0, "write");
    hv_status st = hv_io_nifti_check(p, NULL, NULL);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "scl_inter"), "NaN inter: %s",
             hv_error_detail());
}

static void test_integer_reads(void)
{
    /* uint16 300 as uint8: out of range, the message names the voxel. */
    uint16_t d16[8] = {0, 1, 2, 3, 4, 5, 300, 7};
    fx_hdr h;
    fx_default(&h, 1, 512, 16, 2, 2, 2);
    const char *p = tpath("u16.nii");
    HV_CHECK(fx_write(p, &h, d16, sizeof d16, 0) == 0, "write");
    hv_volume *r = NULL;
    hv_status st = hv_io_nifti_read(p, HV_DTYPE_U8, NULL, &r, NULL);
    HV_CHECK(st == HV_ERR_FORMAT && r == NULL && strstr(hv_error_detail(), "(0, 1, 1)") &&
                 strstr(hv_error_detail(), "u16.nii"),
             "300 as u8: %s %s", hv_status_name(st), hv_error_detail());
    HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_U16, NULL, &r, NULL));
    hv_vol_free(r);
    /* A float 0/1 mask reads as labels; 0.5 does not. */
    float f[8] = {0, 1, 0, 1, 1, 0, 0, 1};
    fx_default(&h, 1, 16, 32, 2, 2, 2);
    p = tpath("fmask.nii.gz");
    HV_CHECK(fx_write(p, &h, f, sizeof f, 1) == 0, "write");
    r = NULL;
    HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_U8, NULL, &r, NULL));
    if (r) HV_CHECK(((uint8_t *)r->data)[7] == 1 && ((uint8_t *)r->data)[5] == 0, "mask values");
    hv_vol_free(r);
    f[3] = 0.5f;
    HV_CHECK(fx_write(p, &h, f, sizeof f, 1) == 0, "write");
    r = NULL;
    st = hv_io_nifti_read(p, HV_DTYPE_U8, NULL, &r, NULL);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "not an integer"), "0.5: %s",
             hv_error_detail());
    f[3] = NAN;
    HV_CHECK(fx_write(p, &h, f, sizeof f, 1) == 0, "write");
    st = hv_io_nifti_read(p, HV_DTYPE_I32, NULL, &r, NULL);
    HV_CHECK(st == HV_ERR_FORMAT, "NaN as label: %s", hv_status_name(st));
}

static void test_dimensionality_and_types(void)
{
    int16_t d[12] = {0};
    fx_hdr h;
    /* 2-D: a 4x3 slice reads as 4x3x1. */
    fx_default(&h, 1, 4, 16, 4, 3, 1);
    h.dim[0] = 2;
    h.pixdim[3] = 0; /* unused: must not matter */
    const char *p = tpath("two_d.nii");
    HV_CHECK(fx_write(p, &h, d, sizeof d, 0) == 0, "write");
    hv_volume *r = NULL;
    HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_I16, NULL, &r, NULL));
    if (r) HV_CHECK(r->dim[0] == 4 && r->dim[1] == 3 && r->dim[2] == 1, "2-D dims");
    hv_vol_free(r);
    /* 4-D with dim[4] = 2: valid file, but not a volume we read. */
    fx_default(&h, 1, 4, 16, 3, 2, 1);
    h.dim[0] = 4;
    h.dim[4] = 2;
    p = tpath("four_d.nii");
    HV_CHECK(fx_write(p, &h, d, sizeof d, 0) == 0, "write");
    HV_CHECK_OK(hv_io_nifti_check(p, NULL, NULL));
    r = NULL;
    hv_status st = hv_io_nifti_read(p, HV_DTYPE_I16, NULL, &r, NULL);
    HV_CHECK(st == HV_ERR_UNSUPPORTED && strstr(hv_error_detail(), "dim[4] = 2"), "4-D: %s %s",
             hv_status_name(st), hv_error_detail());
    /* 4-D with one volume: fine. */
    h.dim[4] = 1;
    h.dim[1] = 6;
    HV_CHECK(fx_write(p, &h, d, sizeof d, 0) == 0, "write");
    HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_I16, NULL, &r, NULL));
    hv_vol_free(r);
    /* Complex and RGB: unsupported, with the type named. */
    int types[3][2] = {{32, 64}, {128, 24}, {1792, 128}};
    for (int t = 0; t < 3; t++) {
        unsigned char big[64 * 8] = {0};
        fx_default(&h, 1, types[t][0], types[t][1], 2, 2, 2);
        p = tpath("cplx.nii");
        HV_CHECK(fx_write(p, &h, big, (size_t)types[t][1], 0) == 0, "write");
        st = hv_io_nifti_check(p, NULL, NULL);
        HV_CHECK(st == HV_ERR_UNSUPPORTED && strstr(hv_error_detail(), "not supported"),
                 "datatype %d: %s %s", types[t][0], hv_status_name(st), hv_error_detail());
    }
    /* Two-file magic. */
    fx_default(&h, 1, 4, 16, 2, 2, 2);
    unsigned char b[544 + 16] = {0};
    size_t hl = fx_encode(&h, b);
    memcpy(b + 344, "ni1", 4);
    p = tpath("pair.nii");
    HV_CHECK(fx_write_bytes(p, b, hl + 16, 0) == 0, "write");
    st = hv_io_nifti_check(p, NULL, NULL);
    HV_CHECK(st == HV_ERR_UNSUPPORTED, "ni1: %s", hv_status_name(st));
}

static void test_writer_errors(void)
{
    int64_t dim[3] = {3, 2, 2};
    hv_volume *v = NULL;
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_I32, NULL));
    if (!v) return;
    int before = count_dir_entries(tmp);
    ((int32_t *)v->data)[5] = 40000;
    hv_nifti_write_opts wo = {.datatype = 4};
    const char *p = tpath("never.nii.gz");
    hv_status st = hv_io_nifti_write(p, v, &wo);
    HV_CHECK(st == HV_ERR_ARG && strstr(hv_error_detail(), "out of range"), "40000 as int16: %s %s",
             hv_status_name(st), hv_error_detail());
    ((int32_t *)v->data)[5] = -1;
    wo.datatype = 2;
    st = hv_io_nifti_write(p, v, &wo);
    HV_CHECK(st == HV_ERR_ARG, "-1 as uint8: %s", hv_status_name(st));
    wo.datatype = 32;
    st = hv_io_nifti_write(p, v, &wo);
    HV_CHECK(st == HV_ERR_ARG, "complex: %s", hv_status_name(st));
    wo.datatype = 0;
    wo.version = 3;
    st = hv_io_nifti_write(p, v, &wo);
    HV_CHECK(st == HV_ERR_ARG, "version 3: %s", hv_status_name(st));
    st = hv_io_nifti_write(tpath("bad.img"), v, NULL);
    HV_CHECK(st == HV_ERR_ARG, "suffix: %s", hv_status_name(st));
    st = hv_io_nifti_write(tpath("no/such/dir.nii"), v, NULL);
    HV_CHECK(st == HV_ERR_IO, "missing dir: %s", hv_status_name(st));
    HV_CHECK(count_dir_entries(tmp) == before, "failed writes left files (%d -> %d)", before,
             count_dir_entries(tmp));
    hv_vol_free(v);

    hv_volume *f = NULL;
    HV_CHECK_OK(hv_vol_create(&f, dim, HV_DTYPE_F32, NULL));
    if (!f) return;
    ((float *)f->data)[3] = 1.5f;
    wo = (hv_nifti_write_opts){.datatype = 4};
    st = hv_io_nifti_write(p, f, &wo);
    HV_CHECK(st == HV_ERR_ARG && strstr(hv_error_detail(), "not an integer"), "1.5 as int16: %s",
             hv_error_detail());
    ((float *)f->data)[3] = NAN;
    wo.datatype = 8;
    st = hv_io_nifti_write(p, f, &wo);
    HV_CHECK(st == HV_ERR_ARG, "NaN as int32: %s", hv_status_name(st));
    /* NaN is fine in float; overwriting an existing file works. */
    HV_CHECK_OK(hv_io_nifti_write(p, f, NULL));
    ((float *)f->data)[3] = 7.0f;
    HV_CHECK_OK(hv_io_nifti_write(p, f, NULL));
    hv_volume *r = NULL;
    HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_F32, NULL, &r, NULL));
    if (r) HV_CHECK(((float *)r->data)[3] == 7.0f, "overwrite");
    hv_vol_free(r);
    /* Intent label. */
    wo = (hv_nifti_write_opts){.intent_label = 1, .datatype = 2};
    ((float *)f->data)[3] = 7.0f;
    const char *pl = tpath("label.nii");
    HV_CHECK_OK(hv_io_nifti_write(pl, f, &wo));
    size_t n = 0;
    unsigned char *b = fx_slurp(pl, &n);
    HV_CHECK(b && n == 352 + 12, "label file size %zu", n);
    if (b) {
        int16_t ic;
        memcpy(&ic, b + 68, 2);
        HV_CHECK(ic == 1002, "intent_code %d", ic);
    }
    free(b);
    hv_vol_free(f);
}

int main(void)
{
    tmp = hv_test_tmpdir("nifti_roundtrip");
    HV_REQUIRE(tmp != NULL, "tmpdir");
    test_roundtrip_all();
    test_qform_matches_sform();
    test_geometry_rules();
    test_nifti2_int64();
    test_scaling();
    test_integer_reads();
    test_dimensionality_and_types();
    test_writer_errors();
    return hv_test_done();
}
