/*
 * nifti_read.c: hv_io_nifti_read, the voxel data of a validated header
 * (nifti.c) converted chunk by chunk into the output volume's dtype.
 *
 * Fast path for .nii.gz (libdeflate): zlib's inflate was the floor of reading
 * a CT (about 75 % of preprocessing one case), and libdeflate decompresses
 * whole buffers 2-3x faster. So once the header has been read and validated
 * exactly as above (through zlib, which only inflates its first few hundred
 * KiB for that) and the volume is allocated, hv_io_nifti_read reads the
 * compressed file whole, decompresses it member by member
 * (libdeflate_gzip_decompress_ex; multi-member files are legal gzip) into one
 * buffer of exactly vox_offset + data bytes, and converts from there. Peak
 * memory: compressed file + that raw buffer + the output volume; when the
 * output voxels are wider than the file's (int16 CT read as float32) the raw
 * bytes go to the tail of the volume's own buffer and are converted in place,
 * so the peak is compressed file + output volume. It is used
 * only when that raw buffer is at most NII_FAST_MAX_DEFAULT (1 GiB; the
 * test-only environment variable HV_NIFTI_FAST_MAX_BYTES overrides it, 0
 * meaning never). Anything unexpected -- a libdeflate error, a short or
 * over-long stream, more members after the data, a header-CRC flag (zlib
 * verifies it, libdeflate does not), a failed allocation or read -- is not
 * reported from the fast path: the buffers are freed and the zlib streaming
 * path below runs from the end of the header, so every malformed file gets the
 * status and message it always got (zlib says where and what, libdeflate only
 * "bad data"). One exception: gzread misses a stream cut inside its 8-byte
 * trailer when a read ends exactly at the data's end, so when libdeflate said
 * "bad data" and the streaming path then finds nothing wrong, the read fails
 * as truncated. Like gzread, the fast path ignores trailing bytes after a
 * member that do not start a new gzip member. hv_io_nifti_check stays on
 * zlib's bounded streaming: its point is to validate without allocating the
 * voxel data.
 *
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <libdeflate.h>
#include <nifti2_io.h>

#include "hv/io.h"

#include "nifti_internal.h"

/* ------------------------------------------------------------- reading */

/* The NIfTI datatype that holds an hv_dtype exactly. */
int hv_io_nii_default_datatype(hv_dtype dt)
{
    switch (dt) {
    case HV_DTYPE_U8: return NIFTI_TYPE_UINT8;
    case HV_DTYPE_I16: return NIFTI_TYPE_INT16;
    case HV_DTYPE_U16: return NIFTI_TYPE_UINT16;
    case HV_DTYPE_I32: return NIFTI_TYPE_INT32;
    case HV_DTYPE_F32: return NIFTI_TYPE_FLOAT32;
    }
    return 0;
}


/* Raw voxel `p` of datatype `code` (already in native order) as double. */
static double raw_to_double(const unsigned char *p, int code)
{
    switch (code) {
    case 2: return *(const uint8_t *)p;
    case 256: return *(const int8_t *)p;
    case 4: { int16_t v; memcpy(&v, p, 2); return v; }
    case 512: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 8: { int32_t v; memcpy(&v, p, 4); return v; }
    case 768: { uint32_t v; memcpy(&v, p, 4); return v; }
    case 1024: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case 1280: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    case 16: { float v; memcpy(&v, p, 4); return v; }
    case 64: { double v; memcpy(&v, p, 8); return v; }
    }
    return 0.0;
}

/* Raw integer voxel exactly; *neg_big / *pos_big flag values outside int64
 * (only UINT64 can be above INT64_MAX). */
static int64_t raw_to_i64(const unsigned char *p, int code, int *too_big)
{
    *too_big = 0;
    switch (code) {
    case 2: return *(const uint8_t *)p;
    case 256: return *(const int8_t *)p;
    case 4: { int16_t v; memcpy(&v, p, 2); return v; }
    case 512: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 8: { int32_t v; memcpy(&v, p, 4); return v; }
    case 768: { uint32_t v; memcpy(&v, p, 4); return v; }
    case 1024: { int64_t v; memcpy(&v, p, 8); return v; }
    case 1280: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > (uint64_t)INT64_MAX) {
            *too_big = 1;
            return INT64_MAX;
        }
        return (int64_t)v;
    }
    }
    return 0;
}

static void dtype_range(hv_dtype dt, double *lo, double *hi)
{
    switch (dt) {
    case HV_DTYPE_U8: *lo = 0; *hi = UINT8_MAX; break;
    case HV_DTYPE_I16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case HV_DTYPE_U16: *lo = 0; *hi = UINT16_MAX; break;
    case HV_DTYPE_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case HV_DTYPE_F32: *lo = -INFINITY; *hi = INFINITY; break;
    }
}

static void store_int(hv_volume *v, size_t idx, int64_t x)
{
    switch (v->dtype) {
    case HV_DTYPE_U8: ((uint8_t *)v->data)[idx] = (uint8_t)x; break;
    case HV_DTYPE_I16: ((int16_t *)v->data)[idx] = (int16_t)x; break;
    case HV_DTYPE_U16: ((uint16_t *)v->data)[idx] = (uint16_t)x; break;
    case HV_DTYPE_I32: ((int32_t *)v->data)[idx] = (int32_t)x; break;
    case HV_DTYPE_F32: ((float *)v->data)[idx] = (float)x; break;
    }
}

static hv_status bad_voxel(const char *path, const hv_volume *v, size_t idx, double x,
                           const char *why)
{
    size_t i = idx % (size_t)v->dim[0];
    size_t j = idx / (size_t)v->dim[0] % (size_t)v->dim[1];
    size_t k = idx / ((size_t)v->dim[0] * (size_t)v->dim[1]);
    return hv_error_set(HV_ERR_FORMAT, "%s: voxel (%zu, %zu, %zu) = %.17g %s %s", path, i, j, k,
                        x, why, hv_dtype_name(v->dtype));
}

/* Convert `n` raw voxels (file order) into v->data starting at voxel `start`. */
static hv_status convert_chunk(const char *path, const nii_hdr *h, unsigned char *raw, size_t n,
                               hv_volume *v, size_t start)
{
    int code = h->dt->code;
    size_t bpv = (size_t)h->dt->bits / 8;
    if (h->info.swapped && bpv > 1) {
        for (size_t t = 0; t < n; t++) {
            unsigned char *p = raw + t * bpv;
            for (size_t a = 0, z = bpv - 1; a < z; a++, z--) {
                unsigned char c = p[a];
                p[a] = p[z];
                p[z] = c;
            }
        }
    }
    double slope = h->info.scl_slope, inter = h->info.scl_inter;
    if (v->dtype == HV_DTYPE_F32) {
        float *out = (float *)v->data + start;
        int scaled = h->scaled;
        /* One loop per source type (the switch hoisted out of the voxel loop);
         * out-of-range doubles become +-inf explicitly (a plain cast is UB).
         * Unscaled integers of up to 32 bits cannot leave float's range, so
         * they convert directly without the clamp: the same value as through
         * double (exact in double, then one rounding either way). 64-bit ones
         * keep the double route, whose two roundings we do not change. */
#define HV_NII_TO_F32(T, IS_INT)                                                   \
    if ((IS_INT) && !scaled) {                                                     \
        for (size_t t = 0; t < n; t++) {                                           \
            T y_;                                                                  \
            memcpy(&y_, raw + t * sizeof(T), sizeof(T));                           \
            out[t] = (float)y_;                                                    \
        }                                                                          \
        break;                                                                     \
    }                                                                              \
    for (size_t t = 0; t < n; t++) {                                               \
        T y_;                                                                      \
        memcpy(&y_, raw + t * sizeof(T), sizeof(T));                               \
        double x = scaled ? (double)y_ * slope + inter : (double)y_;               \
        out[t] = x > FLT_MAX ? INFINITY : x < -FLT_MAX ? -INFINITY : (float)x;     \
    }                                                                              \
    break
        switch (code) {
        case 2: HV_NII_TO_F32(uint8_t, 1);
        case 256: HV_NII_TO_F32(int8_t, 1);
        case 4: HV_NII_TO_F32(int16_t, 1);
        case 512: HV_NII_TO_F32(uint16_t, 1);
        case 8: HV_NII_TO_F32(int32_t, 1);
        case 768: HV_NII_TO_F32(uint32_t, 1);
        case 1024: HV_NII_TO_F32(int64_t, 0);
        case 1280: HV_NII_TO_F32(uint64_t, 0);
        case 16: HV_NII_TO_F32(float, 0);
        case 64: HV_NII_TO_F32(double, 0);
        default:
            return hv_error_set(HV_ERR_INTERNAL, "%s: datatype %d has no converter", path, code);
        }
#undef HV_NII_TO_F32
        return HV_OK;
    }
    double lo = 0, hi = 0;
    dtype_range(v->dtype, &lo, &hi);
    if (!h->scaled && hv_io_nii_default_datatype(v->dtype) == code) {
        /* Same type on disk and in memory: a copy. */
        if ((unsigned char *)v->data + start * bpv != raw)
            memcpy((unsigned char *)v->data + start * bpv, raw, n * bpv);
        return HV_OK;
    }
    if (h->dt->is_int && !h->scaled) {
        /* Exact integer path: no rounding through double. */
        for (size_t t = 0; t < n; t++) {
            int too_big;
            int64_t x = raw_to_i64(raw + t * bpv, code, &too_big);
            if (too_big || (double)x < lo || (double)x > hi)
                return bad_voxel(path, v, start + t, raw_to_double(raw + t * bpv, code),
                                 "does not fit");
            store_int(v, start + t, x);
        }
        return HV_OK;
    }
    for (size_t t = 0; t < n; t++) {
        double x = raw_to_double(raw + t * bpv, code);
        if (h->scaled) x = x * slope + inter;
        if (!isfinite(x) || x != floor(x))
            return bad_voxel(path, v, start + t, x, "is not an integer label for");
        if (x < lo || x > hi) return bad_voxel(path, v, start + t, x, "does not fit");
        store_int(v, start + t, (int64_t)x);
    }
    return HV_OK;
}

/* Largest decompressed size (vox_offset + data) read by the libdeflate fast
 * path. HV_NIFTI_FAST_MAX_BYTES is for tests and benchmarks only (to force the
 * streaming path); it is read on every call. */
uint64_t hv_io_nii_fast_max_bytes(void)
{
    const char *e = getenv("HV_NIFTI_FAST_MAX_BYTES");
    if (!e || !*e) return NII_FAST_MAX_DEFAULT;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(e, &end, 10);
    if (errno || *end || e[0] == '-') {
        hv_log_warn("HV_NIFTI_FAST_MAX_BYTES = \"%s\" is not a byte count; using %llu", e,
                    (unsigned long long)NII_FAST_MAX_DEFAULT);
        return NII_FAST_MAX_DEFAULT;
    }
    return (uint64_t)x;
}

/* The whole file into a malloc'd buffer (*n bytes), at most `limit` bytes,
 * through the core helper. Returns NULL (with nothing reported: the caller
 * falls back to zlib streaming) on any failure. */
static unsigned char *slurp_file(const char *path, uint64_t limit, size_t *n)
{
    char *b = NULL;
    size_t len = 0;
    if (hv_file_read_all(path, NULL, limit > SIZE_MAX - 1 ? SIZE_MAX - 1 : (size_t)limit, &b,
                         &len) != HV_OK ||
        len == 0) {
        free(b);
        hv_error_clear();
        return NULL;
    }
    *n = len;
    return (unsigned char *)b;
}

/* Decompress the gzip file `path` with libdeflate into a raw buffer of
 * exactly hv_io_nii_needed(h) bytes and convert its voxel data into `v`. *fallback
 * is set (and HV_OK returned, nothing reported) when the caller must use the
 * zlib streaming path instead; any other status is a real error (a voxel that
 * does not convert), with the same message the streaming path gives. */
static hv_status read_fast(const char *path, const nii_hdr *h, hv_volume *v, int *fallback,
                           int *bad_data)
{
    hv_status st = HV_OK;
    struct libdeflate_decompressor *d = NULL;
    unsigned char *comp = NULL, *raw = NULL;
    size_t comp_n = 0;
    const char *why = NULL;
    uint64_t need = hv_io_nii_needed(h), limit = hv_io_nii_fast_max_bytes();
    *fallback = 1;
    *bad_data = 0;
    if (need > limit || need > SIZE_MAX) {
        why = "larger than the fast-path limit";
        goto done;
    }
    comp = slurp_file(path, limit, &comp_n);
    if (!comp) {
        why = "cannot read the file whole";
        goto done;
    }
    /* Where the decompressed file goes. When the output voxels are at least
     * as wide as the file's and the volume can hold the whole file (int16 CT
     * read as float32), it goes to the end of the volume's own buffer and is
     * converted in place, front to back: voxel t is read before it is
     * written, and its output bytes end at or before the next input voxel
     * (proof in docs/nifti.md). Otherwise it needs its own buffer. */
    size_t bpv = (size_t)h->dt->bits / 8, es = hv_dtype_size(v->dtype);
    size_t out_bytes = v->nvox * es;
    unsigned char *dst;
    if (es >= bpv && out_bytes >= need) {
        dst = (unsigned char *)v->data + (out_bytes - (size_t)need);
    } else {
        raw = malloc((size_t)need);
        dst = raw;
    }
    d = libdeflate_alloc_decompressor();
    if (!dst || !d) {
        why = "out of memory";
        goto done;
    }
    size_t in_pos = 0, out_pos = 0;
    for (;;) {
        /* FLG bit 1 (FHCRC): zlib checks the header CRC, libdeflate skips it. */
        if (comp_n - in_pos < 4 || (comp[in_pos + 3] & 0x02)) {
            why = "a gzip member header for zlib to check (FHCRC, or cut short)";
            goto done;
        }
        size_t in_used = 0, out_got = 0;
        enum libdeflate_result r =
            libdeflate_gzip_decompress_ex(d, comp + in_pos, comp_n - in_pos, dst + out_pos,
                                          (size_t)need - out_pos, &in_used, &out_got);
        if (r != LIBDEFLATE_SUCCESS) {
            why = r == LIBDEFLATE_INSUFFICIENT_SPACE ? "more data than the header describes"
                                                     : "libdeflate reports bad data";
            *bad_data = r != LIBDEFLATE_INSUFFICIENT_SPACE;
            goto done;
        }
        in_pos += in_used;
        out_pos += out_got;
        /* Another member follows only if the gzip magic does (gzread ignores
         * anything else after a member, and so do we). */
        if (comp_n - in_pos < 2 || comp[in_pos] != 0x1f || comp[in_pos + 1] != 0x8b) break;
        if (out_pos == need) {
            why = "gzip members after the voxel data";
            goto done;
        }
    }
    if (out_pos < need) {
        why = "the stream is shorter than the header describes";
        goto done;
    }
    /* The bytes are final: no fallback from here on. */
    *fallback = 0;
    free(comp);
    comp = NULL;
    st = convert_chunk(path, h, dst + h->info.vox_offset, v->nvox, v, 0);

done:
    if (*fallback) hv_log_debug("%s: %s; reading through zlib instead", path, why);
    if (d) libdeflate_free_decompressor(d);
    free(comp);
    free(raw);
    return st;
}

hv_status hv_io_nifti_read(const char *path, hv_dtype dtype, const hv_nifti_opts *opts,
                           hv_volume **out, hv_nifti_info *info)
{
    nii_hdr h;
    gzFile gz = NULL;
    unsigned char *buf = NULL;
    hv_volume *v = NULL;
    if (!out) return hv_error_set(HV_ERR_ARG, "hv_io_nifti_read: out is NULL");
    *out = NULL;
    if (!hv_dtype_size(dtype))
        return hv_error_set(HV_ERR_ARG, "hv_io_nifti_read: invalid dtype %d", (int)dtype);
    hv_status st = hv_io_nii_open(path, opts, &h, &gz);
    if (st != HV_OK) return st;

    for (int i = 4; i <= 7; i++)
        if (h.info.dim[i] != 1) {
            st = hv_error_set(HV_ERR_UNSUPPORTED,
                              "%s: dim[%d] = %" PRId64 ": only 3-D volumes are supported "
                              "(a 4-D+ file must have dim[4..7] = 1)",
                              path, i, h.info.dim[i]);
            goto done;
        }
    /* Length checks that can be made before allocating anything. */
    if (!h.info.gzipped) {
        if (h.file_size < hv_io_nii_needed(&h)) {
            st = hv_io_nii_short(path, &h, h.file_size, "bytes");
            goto done;
        }
    } else if (h.file_size < UINT64_MAX / DEFLATE_MAX_RATIO &&
               hv_io_nii_needed(&h) > h.file_size * DEFLATE_MAX_RATIO + (64u << 10)) {
        st = hv_error_set(HV_ERR_FORMAT,
                          "%s: the file is truncated: a %" PRIu64 "-byte gzip file cannot hold "
                          "the %" PRIu64 " bytes the header describes",
                          path, h.file_size, hv_io_nii_needed(&h));
        goto done;
    }

    if ((h.xyzt_units & 7) == NIFTI_UNITS_METER || (h.xyzt_units & 7) == NIFTI_UNITS_MICRON)
        hv_log_warn("%s: xyzt_units declares %s; coordinates are used as millimetres (as "
                    "nibabel and nifticlib do)",
                    path, (h.xyzt_units & 7) == NIFTI_UNITS_METER ? "metres" : "microns");

    int64_t d3[3] = {h.info.dim[1], h.info.dim[2], h.info.dim[3]};
    st = hv_vol_create(&v, d3, dtype, (const double(*)[4])h.affine);
    if (st != HV_OK) {
        st = hv_error_wrap(st, "%s", path);
        goto done;
    }
    hv_vol_update_spacing(v);
    int bad_data = 0;
    if (h.info.gzipped) {
        int fallback = 0;
        st = read_fast(path, &h, v, &fallback, &bad_data);
        if (st != HV_OK || !fallback) goto done;
    }
    buf = malloc(NII_CHUNK);
    if (!buf) {
        st = hv_error_set(HV_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }

    /* Skip extensions up to vox_offset. */
    uint64_t pos = (uint64_t)h.hdr_size;
    while (pos < (uint64_t)h.info.vox_offset) {
        uint64_t want = (uint64_t)h.info.vox_offset - pos;
        if (want > NII_CHUNK) want = NII_CHUNK;
        size_t got = 0;
        if (hv_io_nii_gz_read_full(gz, buf, (size_t)want, &got) != 0) {
            st = hv_io_nii_gz_fail(path, gz, "before the voxel data");
            goto done;
        }
        pos += got;
        if (got < want) {
            st = hv_io_nii_short(path, &h, pos, h.info.gzipped ? "decompressed bytes" : "bytes");
            goto done;
        }
    }

    /* Voxel data in chunks of whole voxels. */
    size_t bpv = (size_t)h.dt->bits / 8;
    size_t per = NII_CHUNK / bpv;
    size_t done_vox = 0;
    while (done_vox < v->nvox) {
        size_t n = v->nvox - done_vox < per ? v->nvox - done_vox : per;
        size_t got = 0;
        if (hv_io_nii_gz_read_full(gz, buf, n * bpv, &got) != 0) {
            st = hv_io_nii_gz_fail(path, gz, "in the voxel data");
            goto done;
        }
        if (got < n * bpv) {
            st = hv_io_nii_short(path, &h, pos + done_vox * bpv + got,
                           h.info.gzipped ? "decompressed bytes" : "bytes");
            goto done;
        }
        st = convert_chunk(path, &h, buf, n, v, done_vox);
        if (st != HV_OK) goto done;
        done_vox += n;
    }
    /* A gzip stream is only proven intact at its end (CRC and length). */
    if (h.info.gzipped) {
        for (;;) {
            size_t got = 0;
            if (hv_io_nii_gz_read_full(gz, buf, NII_CHUNK, &got) != 0) {
                st = hv_io_nii_gz_fail(path, gz, "after the voxel data");
                goto done;
            }
            if (got < NII_CHUNK) break;
        }
        /* gzread reports a stream cut inside its 8-byte trailer only if
         * inflate is called again after the input ran out; when a read's
         * output ends exactly where the data end, it reports a clean end
         * instead. libdeflate saw the missing trailer: say so. */
        if (bad_data) {
            st = hv_error_set(HV_ERR_FORMAT,
                              "%s: the gzip stream is truncated (the file was cut short)", path);
            goto done;
        }
    }

done:
    free(buf);
    if (gz) gzclose(gz);
    if (st != HV_OK) {
        hv_vol_free(v);
        return st;
    }
    if (info) *info = h.info;
    *out = v;
    return HV_OK;
}
