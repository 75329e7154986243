/*
 * test_nifti_malformed.c: a corpus of broken NIfTI files, made at run time
 * from one valid file, each of which must give its own clear error.
 *
 *  - truncation at several offsets (in the header, in the data; .nii and
 *    .nii.gz, including a gzip stream cut inside its trailer);
 *  - wrong sizeof_hdr, dim[0] 0 and 8, zero/negative/huge dims, a dims
 *    product that overflows 64 bits (NIfTI-1 and -2), vox_offset past the
 *    end or NaN, NaN/negative pixdim, bitpix/datatype mismatch, NaN sform,
 *    bad magic, corrupted gzip data;
 *  - every error's message names the file; hv_io_nifti_check and
 *    hv_io_nifti_read agree on the status;
 *  - the byte limit: a valid file above opts.max_bytes and headers claiming
 *    gigabytes are refused with HV_ERR_LIMIT / HV_ERR_FORMAT while the address
 *    space is capped at 1 GiB (RLIMIT_AS; skipped under AddressSanitizer,
 *    which reserves terabytes of shadow memory), so an attempt to allocate
 *    what the header claims would surface as HV_ERR_NOMEM and fail the test;
 *  - a seeded random-mutation run over the header bytes of a valid file
 *    (plain and gzip): never a crash, only HV_OK or a clean error.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>

#include "hv/io.h"
#include "hv_test.h"
#include "nifti_fixture.h"

#if defined(__SANITIZE_ADDRESS__)
#define HV_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HV_TEST_ASAN 1
#endif
#endif

#define NX 8
#define NY 7
#define NZ 6

static const char *tmp;
static char pbuf[8][4096];
static int pslot;

static const char *tpath(const char *name)
{
    char *p = pbuf[pslot++ & 7];
    snprintf(p, 4096, "%s/%s", tmp, name);
    return p;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Check `path` with both entry points: same status `want`, message naming
 * the file and containing `needle` (may be NULL). */
static void expect(const char *path, hv_status want, const char *needle, const char *what)
{
    hv_nifti_info info;
    hv_status st = hv_io_nifti_check(path, NULL, &info);
    char detail[1024];
    snprintf(detail, sizeof detail, "%s", hv_error_detail());
    HV_CHECK(st == want, "%s: check -> %s, want %s (%s)", what, hv_status_name(st),
             hv_status_name(want), detail);
    hv_volume *v = NULL;
    hv_status st2 = hv_io_nifti_read(path, HV_DTYPE_F32, NULL, &v, NULL);
    HV_CHECK(st2 == want && (v != NULL) == (want == HV_OK), "%s: read -> %s, want %s (%s)", what,
             hv_status_name(st2), hv_status_name(want), hv_error_detail());
    hv_vol_free(v);
    if (want == HV_OK) return;
    HV_CHECK(strstr(detail, base_name(path)) != NULL, "%s: message lacks the file name: %s",
             what, detail);
    if (needle)
        HV_CHECK(strstr(detail, needle) != NULL, "%s: message '%s' lacks '%s'", what, detail,
                 needle);
    HV_CHECK(strstr(hv_error_detail(), base_name(path)) != NULL,
             "%s: read message lacks the file name: %s", what, hv_error_detail());
}

/* The valid base file: NIfTI-`version` int16 NX x NY x NZ with random data
 * (so the gzip stream is mostly literal data, not the header). */
static unsigned char *make_base(int version, size_t *n)
{
    fx_hdr h;
    fx_default(&h, version, 4, 16, NX, NY, NZ);
    h.pixdim[1] = 0.5, h.pixdim[2] = 0.5, h.pixdim[3] = 2.0;
    h.srow[0][0] = 0.5, h.srow[1][1] = 0.5, h.srow[2][2] = 2.0;
    int16_t data[NX * NY * NZ];
    hv_rng rng;
    hv_rng_seed(&rng, 1234, (uint64_t)version);
    for (int i = 0; i < NX * NY * NZ; i++) data[i] = (int16_t)(hv_rng_below(&rng, 4096) - 1024);
    unsigned char *b = malloc(544 + sizeof data);
    if (!b) return NULL;
    size_t hl = fx_encode(&h, b);
    memcpy(b + hl, data, sizeof data);
    *n = hl + sizeof data;
    return b;
}

/* Write `b` (n bytes) under `name` as .nii and .nii.gz and expect `want`. */
static void expect_both(const char *name, const unsigned char *b, size_t n, hv_status want,
                        const char *needle)
{
    for (int gz = 0; gz <= 1; gz++) {
        char fname[256];
        snprintf(fname, sizeof fname, "%s.nii%s", name, gz ? ".gz" : "");
        const char *p = tpath(fname);
        HV_CHECK(fx_write_bytes(p, b, n, gz) == 0, "write %s", p);
        expect(p, want, needle, fname);
    }
}

static void test_corpus(int version)
{
    size_t n = 0;
    unsigned char *base = make_base(version, &n);
    HV_CHECK(base != NULL, "base");
    if (!base) return;
    unsigned char *b = malloc(n);
    if (!b) {
        free(base);
        return;
    }
    int v1 = version == 1;
    size_t hsz = v1 ? 348 : 540, voff = v1 ? 352 : 544;
    char name[128];
#define NAME(s) (snprintf(name, sizeof name, "v%d_%s", version, s), name)
#define RESET() memcpy(b, base, n)

    RESET();
    expect_both(NAME("valid"), b, n, HV_OK, NULL);
    {
        /* valid: the data must read back */
        hv_volume *v = NULL;
        HV_CHECK_OK(hv_io_nifti_read(tpath(v1 ? "v1_valid.nii.gz" : "v2_valid.nii.gz"),
                                     HV_DTYPE_I16, NULL, &v, NULL));
        if (v) HV_CHECK(memcmp(v->data, base + voff, n - voff) == 0, "valid data");
        hv_vol_free(v);
    }

    /* Truncation: empty, inside the header, at the extension, inside the
     * data, one byte short. */
    size_t cuts[5] = {0, 100, hsz + 2, voff + (n - voff) / 2, n - 1};
    const char *cut_needle[5] = {"empty", "inside the header", "truncated", "truncated",
                                 "truncated"};
    for (int c = 0; c < 5; c++) {
        char s[64];
        snprintf(s, sizeof s, "trunc%zu", cuts[c]);
        expect_both(NAME(s), base, cuts[c], HV_ERR_FORMAT, cut_needle[c]);
    }
    /* The same cut applied to the compressed file: inside the gzip header,
     * the middle, inside the 8-byte trailer (all data present, CRC missing). */
    {
        const char *p = tpath("gzsrc.nii.gz");
        HV_CHECK(fx_write_bytes(p, base, n, 1) == 0, "write");
        size_t gn = 0;
        unsigned char *g = fx_slurp(p, &gn);
        HV_CHECK(g && gn > 100, "gz size %zu", gn);
        if (g && gn > 100) {
            size_t gcuts[4] = {6, gn / 2, gn - 4, gn - 1};
            for (int c = 0; c < 4; c++) {
                char s[64];
                snprintf(s, sizeof s, "v%d_gzcut%zu.nii.gz", version, gcuts[c]);
                const char *q = tpath(s);
                HV_CHECK(fx_write_bytes(q, g, gcuts[c], 0) == 0, "write");
                expect(q, HV_ERR_FORMAT, "gzip stream is truncated", s);
            }
            /* Corrupt the compressed data: flip bytes at 3/4 of the stream
             * (inside the voxel data, before the trailer). */
            for (int k = 0; k < 3; k++) {
                unsigned char *c2 = malloc(gn);
                if (!c2) break;
                memcpy(c2, g, gn);
                size_t at = gn * 3 / 4 + (size_t)k * 7;
                c2[at] ^= 0x5a;
                c2[at + 1] ^= 0xff;
                char s[64];
                snprintf(s, sizeof s, "v%d_gzcorrupt%d.nii.gz", version, k);
                const char *q = tpath(s);
                HV_CHECK(fx_write_bytes(q, c2, gn, 0) == 0, "write");
                expect(q, HV_ERR_FORMAT, "gzip stream is corrupt", s);
                free(c2);
            }
            /* A wrong CRC alone (last 8 bytes are CRC32 + length). */
            unsigned char *c3 = malloc(gn);
            if (c3) {
                memcpy(c3, g, gn);
                c3[gn - 8] ^= 0x01;
                char s[64];
                snprintf(s, sizeof s, "v%d_gzcrc.nii.gz", version);
                const char *q = tpath(s);
                HV_CHECK(fx_write_bytes(q, c3, gn, 0) == 0, "write");
                expect(q, HV_ERR_FORMAT, "gzip stream is corrupt", s);
                free(c3);
            }
        }
        free(g);
    }

    /* Field corruptions. */
    RESET();
    fx_i32(b, 0, 349, 0);
    expect_both(NAME("sizeof_hdr"), b, n, HV_ERR_FORMAT, "sizeof_hdr = 349");
    RESET();
    if (v1) memcpy(b + 344, "n+7", 4);
    else memcpy(b + 4, "n+7", 4);
    expect_both(NAME("magic"), b, n, HV_ERR_FORMAT, "magic");

    size_t dim_off = v1 ? 40 : 16, dim_w = v1 ? 2 : 8;
#define SET_DIM(i, val)                                                                         \
    do {                                                                                        \
        if (v1) fx_i16(b, dim_off + (size_t)(i) * dim_w, (val), 0);                            \
        else fx_i64(b, dim_off + (size_t)(i) * dim_w, (val), 0);                               \
    } while (0)
    RESET();
    SET_DIM(0, 0);
    expect_both(NAME("dim0_0"), b, n, HV_ERR_FORMAT, "dim[0] = 0");
    RESET();
    SET_DIM(0, 8);
    expect_both(NAME("dim0_8"), b, n, HV_ERR_FORMAT, "dim[0] = 8");
    RESET();
    SET_DIM(0, v1 ? -1 : 200);
    expect_both(NAME("dim0_bad"), b, n, HV_ERR_FORMAT, "dim[0]");
    RESET();
    SET_DIM(2, 0);
    expect_both(NAME("dim_zero"), b, n, HV_ERR_FORMAT, "dim[2] = 0");
    RESET();
    SET_DIM(3, -5);
    expect_both(NAME("dim_neg"), b, n, HV_ERR_FORMAT, "dim[3] = -5: dimensions must be >= 1");
    /* Huge but representable: 32767^3 int16 = 70 TB; NIfTI-2: 2^40 x 2^10. */
    RESET();
    if (v1) {
        SET_DIM(1, 32767);
        SET_DIM(2, 32767);
        SET_DIM(3, 32767);
    } else {
        SET_DIM(1, (int64_t)1 << 40);
        SET_DIM(2, 1024);
    }
    expect_both(NAME("dims_huge"), b, n, HV_ERR_LIMIT, "above the limit");
    /* Overflow: NIfTI-1 7-D of 32767 (2^105); NIfTI-2 2^32 x 2^32. */
    RESET();
    if (v1) {
        SET_DIM(0, 7);
        for (int i = 1; i <= 7; i++) SET_DIM(i, 32767);
    } else {
        SET_DIM(1, (int64_t)1 << 32);
        SET_DIM(2, (int64_t)1 << 32);
    }
    expect_both(NAME("dims_overflow"), b, n, HV_ERR_FORMAT, "overflows 64 bits");
    /* Bytes (not voxels) overflow: 2^62 voxels of 8 bytes. */
    if (!v1) {
        RESET();
        SET_DIM(1, (int64_t)1 << 31);
        SET_DIM(2, (int64_t)1 << 31);
        SET_DIM(3, 1);
        fx_i16(b, 12, 64, 0);
        fx_i16(b, 14, 64, 0);
        expect_both(NAME("bytes_overflow"), b, n, HV_ERR_FORMAT, "overflows 64 bits");
    }

    /* vox_offset past the end, NaN, inside the header. */
    RESET();
    if (v1) fx_f32(b, 108, 100000, 0);
    else fx_i64(b, 168, 100000, 0);
    expect_both(NAME("voxoff_past"), b, n, HV_ERR_FORMAT, "past the end");
    RESET();
    if (v1) fx_f32(b, 108, NAN, 0);
    else fx_i64(b, 168, INT64_MAX, 0);
    expect_both(NAME("voxoff_nan"), b, n, HV_ERR_FORMAT, "vox_offset");
    RESET();
    if (v1) fx_f32(b, 108, 100, 0);
    else fx_i64(b, 168, 100, 0);
    expect_both(NAME("voxoff_low"), b, n, HV_ERR_FORMAT, "inside the");
    RESET();
    if (v1) fx_f32(b, 108, -1e30, 0); /* (int64_t)-1e30 would be undefined */
    else fx_i64(b, 168, INT64_MIN, 0);
    expect_both(NAME("voxoff_neg"), b, n, HV_ERR_FORMAT, "vox_offset");

    /* pixdim. */
    RESET();
    if (v1) fx_f32(b, 76 + 8, NAN, 0);
    else fx_f64(b, 104 + 16, NAN, 0);
    expect_both(NAME("pixdim_nan"), b, n, HV_ERR_FORMAT, "pixdim[2] = nan");
    RESET();
    if (v1) fx_f32(b, 76 + 12, -2, 0);
    else fx_f64(b, 104 + 24, 0, 0);
    expect_both(NAME("pixdim_neg"), b, n, HV_ERR_FORMAT, "pixdim[3]");

    /* bitpix / datatype. */
    RESET();
    fx_i16(b, v1 ? 72 : 14, 8, 0);
    expect_both(NAME("bitpix"), b, n, HV_ERR_FORMAT, "bitpix = 8");
    RESET();
    fx_i16(b, v1 ? 70 : 12, 3, 0);
    expect_both(NAME("datatype"), b, n, HV_ERR_FORMAT, "datatype 3");
    RESET();
    fx_i16(b, v1 ? 70 : 12, 32, 0);
    fx_i16(b, v1 ? 72 : 14, 64, 0);
    expect_both(NAME("complex"), b, n, HV_ERR_UNSUPPORTED, "COMPLEX64");

    /* A NaN in the sform (used: sform_code 1). */
    RESET();
    if (v1) fx_f32(b, 280 + 16 + 12, NAN, 0);
    else fx_f64(b, 400 + 32 + 24, INFINITY, 0);
    expect_both(NAME("sform_nan"), b, n, HV_ERR_FORMAT, "srow_y[3]");
    /* A singular sform. */
    RESET();
    for (int c = 0; c < 3; c++) {
        if (v1) fx_f32(b, 280 + 32 + 4 * (size_t)c, 0, 0);
        else fx_f64(b, 400 + 64 + 8 * (size_t)c, 0, 0);
    }
    expect_both(NAME("sform_singular"), b, n, HV_ERR_FORMAT, "singular");
    /* issue 9: absurd voxel spacings are "out of range", with the value and
     * the allowed range (before: "the pixdim matrix is singular"). No
     * sform/qform: pixdim is the geometry. */
    RESET();
    if (v1) fx_i16(b, 254, 0, 0); /* sform_code 0 (qform_code is 0 already) */
    else fx_i32(b, 348, 0, 0);
    if (v1) fx_f32(b, 76 + 4, 1e30, 0);
    else fx_f64(b, 104 + 8, 1e30, 0);
    expect_both(NAME("pixdim_huge"), b, n, HV_ERR_FORMAT,
                "pixdim[1] = 1e+30: voxel spacing out of range (allowed 0.001 to 1000 mm)");
    RESET();
    if (!v1) fx_i32(b, 348, 0, 0);
    else fx_i16(b, 254, 0, 0);
    if (v1) fx_f32(b, 76 + 12, 1e-7, 0);
    else fx_f64(b, 104 + 24, 1e-7, 0);
    expect_both(NAME("pixdim_tiny"), b, n, HV_ERR_FORMAT,
                "pixdim[3] = 1e-07: voxel spacing out of range");
    /* qform geometry: the spacing comes from pixdim too */
    RESET();
    if (v1) fx_i16(b, 254, 0, 0), fx_i16(b, 252, 1, 0), fx_f32(b, 76 + 8, 1e30, 0);
    else fx_i32(b, 348, 0, 0), fx_i32(b, 344, 1, 0), fx_f64(b, 104 + 16, 1e30, 0);
    expect_both(NAME("qform_huge"), b, n, HV_ERR_FORMAT,
                "pixdim[2] = 1e+30: voxel spacing out of range (allowed 0.001 to 1000 mm) "
                "(used by the qform)");
    /* sform geometry: a column of the sform 1e30 long */
    RESET();
    if (v1) fx_f32(b, 280 + 16 + 4, 1e30, 0);
    else fx_f64(b, 400 + 32 + 8, 1e30, 0);
    expect_both(NAME("sform_huge"), b, n, HV_ERR_FORMAT,
                "the sform gives a voxel spacing of 1e+30 mm along axis 1");
    /* Not NIfTI at all. */
    const char *txt = "this is a text file, not an image\n";
    expect_both(NAME("text"), (const unsigned char *)txt, strlen(txt), HV_ERR_FORMAT,
                "sizeof_hdr");
#undef SET_DIM
#undef NAME
#undef RESET
    free(b);
    free(base);
}

/* Byte limit: a valid small file over a tiny limit; a header that claims a
 * lot over a moderate limit; claims under the default limit that the file
 * cannot back (must fail on length, not by trying to allocate). */
static void test_limits(void)
{
    size_t n = 0;
    unsigned char *base = make_base(1, &n);
    if (!base) return;
    const char *p = tpath("limit.nii.gz");
    HV_CHECK(fx_write_bytes(p, base, n, 1) == 0, "write");
    hv_nifti_opts small = {.max_bytes = 600}; /* data are 8*7*6*2 = 672 bytes */
    hv_status st = hv_io_nifti_check(p, &small, NULL);
    HV_CHECK(st == HV_ERR_LIMIT && strstr(hv_error_detail(), "672 bytes"), "small limit: %s %s",
             hv_status_name(st), hv_error_detail());
    hv_volume *v = NULL;
    st = hv_io_nifti_read(p, HV_DTYPE_F32, &small, &v, NULL);
    HV_CHECK(st == HV_ERR_LIMIT && !v, "small limit read: %s", hv_status_name(st));
    hv_nifti_opts exact = {.max_bytes = 672};
    HV_CHECK_OK(hv_io_nifti_check(p, &exact, NULL));

    /* 512^3 int16 = 256 MiB claimed: LIMIT under a 64 MiB limit. */
    fx_hdr h;
    fx_default(&h, 1, 4, 16, 512, 512, 512);
    unsigned char data[64] = {0};
    for (int gz = 0; gz <= 1; gz++) {
        p = tpath(gz ? "claim512.nii.gz" : "claim512.nii");
        HV_CHECK(fx_write(p, &h, data, sizeof data, gz) == 0, "write");
        hv_nifti_opts mid = {.max_bytes = 64u << 20};
        st = hv_io_nifti_read(p, HV_DTYPE_F32, &mid, &v, NULL);
        HV_CHECK(st == HV_ERR_LIMIT, "claim 256 MiB, limit 64: %s", hv_status_name(st));
        /* Default limit (4 GiB): allowed size, but the file cannot hold it. */
        st = hv_io_nifti_read(p, HV_DTYPE_F32, NULL, &v, NULL);
        HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "truncated"),
                 "claim 256 MiB in a tiny file: %s %s", hv_status_name(st), hv_error_detail());
    }
    /* 2048 x 2048 x 400 int16 = 3.1 GiB claimed (under 4 GiB), tiny gzip: the
     * reader must refuse before allocating 12.5 GiB of float32. */
    fx_default(&h, 2, 4, 16, 2048, 2048, 400);
    p = tpath("claim3g.nii.gz");
    HV_CHECK(fx_write(p, &h, data, sizeof data, 1) == 0, "write");
    st = hv_io_nifti_read(p, HV_DTYPE_F32, NULL, &v, NULL);
    HV_CHECK(st == HV_ERR_FORMAT, "claim 3 GiB in gzip: %s %s", hv_status_name(st),
             hv_error_detail());
    st = hv_io_nifti_check(p, NULL, NULL);
    HV_CHECK(st == HV_ERR_FORMAT, "check claim 3 GiB: %s", hv_status_name(st));

    /* The reader's pre-allocation bound (deflate's 1032:1 maximum ratio) must
     * not refuse a real, extremely compressible file: 16 MiB of zeros, zlib
     * at level 9, compresses about 1030:1. (Written through zlib's streaming
     * writer: libdeflate's whole-buffer writer reaches only ~985:1 on zeros,
     * which would not test the bound's edge.) */
    int64_t zd[3] = {64, 64, 4096};
    hv_volume *z = NULL;
    HV_CHECK_OK(hv_vol_create(&z, zd, HV_DTYPE_U8, NULL));
    if (z) {
        p = tpath("zeros.nii.gz");
        hv_nifti_write_opts wo = {.gzip_level = 9};
        setenv("HV_NIFTI_FAST_MAX_BYTES", "0", 1);
        HV_CHECK_OK(hv_io_nifti_write(p, z, &wo));
        unsetenv("HV_NIFTI_FAST_MAX_BYTES");
        hv_vol_free(z);
        z = NULL;
        struct stat sb;
        HV_CHECK(stat(p, &sb) == 0 && (double)(16 << 20) / (double)sb.st_size > 1000,
                 "zeros compress %.0f:1", (double)(16 << 20) / (double)sb.st_size);
        HV_CHECK_OK(hv_io_nifti_read(p, HV_DTYPE_U8, NULL, &z, NULL));
        HV_CHECK_OK(hv_io_nifti_check(p, NULL, NULL));
        hv_vol_free(z);
    }
    free(base);
}

/* Seeded header mutations: plain and gzip. Any outcome but a crash, an
 * allocation failure or an unknown status is a failure. */
static void test_mutations(int iterations)
{
    static const uint32_t specials[] = {0u,          1u,          0xffffffffu, 0x7fffffffu,
                                        0x80000000u, 0x7fc00000u, 0x7f800000u, 0xff800000u,
                                        0x00007fffu, 0x00008000u, 348u,        540u,
                                        /* float32 -1e30, 1e30, -2^63, 2^62, -0 */
                                        0xf149f2cau, 0x7149f2cau, 0xdf000000u, 0x5e800000u,
                                        0x80000000u};
    hv_rng rng;
    hv_rng_seed(&rng, 20260611u, 0);
    size_t counts[HV_STATUS_COUNT] = {0};
    int bad_status = 0, no_name = 0;
    for (int version = 1; version <= 2; version++) {
        size_t n = 0;
        unsigned char *base = make_base(version, &n);
        unsigned char *b = base ? malloc(n) : NULL;
        if (!b) {
            free(base);
            HV_CHECK(0, "alloc");
            return;
        }
        size_t hsz = version == 1 ? 352 : 544;
        for (int it = 0; it < iterations; it++) {
            memcpy(b, base, n);
            int kind = (int)hv_rng_below(&rng, 3);
            int nmut = 1 + (int)hv_rng_below(&rng, 4);
            for (int m = 0; m < nmut; m++) {
                size_t at = (size_t)hv_rng_below(&rng, hsz);
                if (kind == 0) {
                    b[at] = (unsigned char)hv_rng_below(&rng, 256);
                } else if (kind == 1) {
                    b[at] ^= (unsigned char)(1u << hv_rng_below(&rng, 8));
                } else {
                    uint32_t s = specials[hv_rng_below(&rng, sizeof specials / sizeof *specials)];
                    at &= ~(size_t)3;
                    if (at + 4 <= hsz) memcpy(b + at, &s, 4);
                }
            }
            int gz = (int)hv_rng_below(&rng, 2);
            const char *p = tpath(gz ? "mut.nii.gz" : "mut.nii");
            if (fx_write_bytes(p, b, n, gz) != 0) {
                HV_CHECK(0, "write %s", p);
                break;
            }
            hv_nifti_info info;
            hv_status s1 = hv_io_nifti_check(p, NULL, &info);
            hv_volume *v = NULL;
            hv_status s2 = hv_io_nifti_read(p, it & 1 ? HV_DTYPE_I32 : HV_DTYPE_F32, NULL, &v,
                                            NULL);
            hv_status ss[2] = {s1, s2};
            for (int k = 0; k < 2; k++) {
                hv_status s = ss[k];
                if ((unsigned)s < HV_STATUS_COUNT) counts[s]++;
                if (s != HV_OK && s != HV_ERR_FORMAT && s != HV_ERR_LIMIT &&
                    s != HV_ERR_UNSUPPORTED) {
                    if (bad_status++ < 5)
                        HV_CHECK(0, "mutation %d (v%d gz%d): status %s: %s", it, version, gz,
                                 hv_status_name(s), hv_error_detail());
                }
            }
            if (s2 != HV_OK && !strstr(hv_error_detail(), base_name(p)) && no_name++ < 5)
                HV_CHECK(0, "mutation %d: message without file name: %s", it, hv_error_detail());
            if (s2 == HV_OK) {
                /* A volume that reads must be consistent with its header. */
                HV_CHECK(v && v->nvox * (size_t)(info.bitpix / 8) == info.data_bytes && s1 == HV_OK,
                         "mutation %d: read ok but check %s, nvox %zu vs %llu bytes", it,
                         hv_status_name(s1), v ? v->nvox : 0, (unsigned long long)info.data_bytes);
            }
            hv_vol_free(v);
        }
        free(b);
        free(base);
    }
    HV_CHECK(bad_status == 0, "%d mutations gave an unexpected status", bad_status);
    HV_CHECK(no_name == 0, "%d error messages lacked the file name", no_name);
    /* The run must have exercised both outcomes. */
    HV_CHECK(counts[HV_OK] > 0 && counts[HV_ERR_FORMAT] > 0, "outcomes ok %zu format %zu",
             counts[HV_OK], counts[HV_ERR_FORMAT]);
    printf("# mutations: %zu ok, %zu format, %zu limit, %zu unsupported (check + read)\n",
           counts[HV_OK], counts[HV_ERR_FORMAT], counts[HV_ERR_LIMIT],
           counts[HV_ERR_UNSUPPORTED]);
}

int main(int argc, char **argv)
{
    int iterations = argc > 1 ? atoi(argv[1]) : 2000;
    tmp = hv_test_tmpdir("nifti_malformed");
    hv_log_set_level(HV_LOG_ERROR); /* mutated xyzt_units warn; keep the log short */
    HV_REQUIRE(tmp != NULL, "tmpdir");
#ifndef HV_TEST_ASAN
    /* Cap the address space: an allocation sized by a hostile header fails
     * (HV_ERR_NOMEM) instead of quietly succeeding on an overcommitting
     * kernel. The test itself needs well under 100 MiB. */
    struct rlimit rl = {.rlim_cur = 1ull << 30, .rlim_max = 1ull << 30};
    struct rlimit old;
    if (getrlimit(RLIMIT_AS, &old) == 0 && (old.rlim_max == RLIM_INFINITY ||
                                            old.rlim_max >= rl.rlim_max)) {
        HV_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");
        printf("# RLIMIT_AS = 1 GiB\n");
    }
#else
    printf("# AddressSanitizer build: RLIMIT_AS not set\n");
#endif
    /* issue 9: a directory or FIFO given as a NIfTI path is named as such
     * and never opened for reading (a FIFO would block gzopen). */
    {
        const char *d = tpath("adir.nii.gz"), *f = tpath("pipe.nii.gz");
        HV_CHECK(mkdir(d, 0700) == 0 || errno == EEXIST, "mkdir %s", d);
        HV_CHECK(mkfifo(f, 0600) == 0 || errno == EEXIST, "mkfifo %s", f);
        expect(d, HV_ERR_IO, "is a directory, not a regular file", "directory");
        expect(f, HV_ERR_IO, "is a FIFO (named pipe), not a regular file", "FIFO");
        expect(tpath("nothere.nii"), HV_ERR_IO, "does not exist", "missing");
    }
    double t0 = hv_time_now();
    test_corpus(1);
    test_corpus(2);
    test_limits();
    double t1 = hv_time_now();
    test_mutations(iterations);
    double t2 = hv_time_now();
    printf("# corpus %.2f s, %d mutations x 2 versions %.2f s\n", t1 - t0, iterations, t2 - t1);
    return hv_test_done();
}
