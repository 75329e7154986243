/*
 * nifti_write.c: hv_io_nifti_write. The writer builds the header bytes itself
 * (native byte order, both sform and qform from the affine, the quaternion
 * through nifticlib's nifti_dmat44_to_quatern), encodes the voxels in 1 MiB
 * chunks into the on-disk datatype (refusing values that do not fit, never
 * saturating), writes to a temporary name in the same folder and renames it
 * over the target. A .nii.gz is compressed whole with libdeflate (one gzip
 * member) up to the fast-path limit, and streamed through zlib above it.
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

/* ------------------------------------------------------------- writing */

static void put_i16(unsigned char *b, size_t off, int16_t v) { memcpy(b + off, &v, sizeof v); }
static void put_i32(unsigned char *b, size_t off, int32_t v) { memcpy(b + off, &v, sizeof v); }
static void put_i64(unsigned char *b, size_t off, int64_t v) { memcpy(b + off, &v, sizeof v); }
static void put_f32(unsigned char *b, size_t off, double v)
{
    float f = (float)v;
    memcpy(b + off, &f, sizeof f);
}
static void put_f64(unsigned char *b, size_t off, double v) { memcpy(b + off, &v, sizeof v); }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Header bytes (plus the 4-byte empty extension flag) for `v`. Returns the
 * byte count (352 or 544). */
static size_t build_header(unsigned char *b, const hv_volume *v, int version, int datatype,
                           int bits, double slope, double inter, const char *descrip,
                           int intent_label)
{
    nifti_dmat44 R;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) R.m[r][c] = v->affine[r][c];
    double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
    nifti_dmat44_to_quatern(R, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);
    double pix[8] = {qfac, dx, dy, dz, 1, 1, 1, 1};
    int64_t dims[8] = {3, v->dim[0], v->dim[1], v->dim[2], 1, 1, 1, 1};
    char desc[80] = {0};
    if (descrip) strncpy(desc, descrip, 79);

    size_t total = version == 1 ? NII1_HDR_SIZE + 4 : NII2_HDR_SIZE + 4;
    memset(b, 0, total);
    if (version == 1) {
        put_i32(b, 0, NII1_HDR_SIZE);
        b[38] = 'r';
        for (int i = 0; i < 8; i++) {
            put_i16(b, 40 + 2 * (size_t)i, (int16_t)dims[i]);
            put_f32(b, 76 + 4 * (size_t)i, pix[i]);
        }
        put_i16(b, 68, (int16_t)(intent_label ? NIFTI_INTENT_LABEL : 0));
        put_i16(b, 70, (int16_t)datatype);
        put_i16(b, 72, (int16_t)bits);
        put_f32(b, 108, NII1_HDR_SIZE + 4);
        put_f32(b, 112, slope);
        put_f32(b, 116, inter);
        b[123] = NIFTI_UNITS_MM;
        memcpy(b + 148, desc, 80);
        put_i16(b, 252, NIFTI_XFORM_SCANNER_ANAT);
        put_i16(b, 254, NIFTI_XFORM_SCANNER_ANAT);
        double q[6] = {qb, qc, qd, qx, qy, qz};
        for (int i = 0; i < 6; i++) put_f32(b, 256 + 4 * (size_t)i, q[i]);
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++)
                put_f32(b, 280 + 16 * (size_t)r + 4 * (size_t)c, v->affine[r][c]);
        memcpy(b + 344, "n+1\0", 4);
    } else {
        put_i32(b, 0, NII2_HDR_SIZE);
        memcpy(b + 4, "n+2\0\r\n\032\n", 8);
        put_i16(b, 12, (int16_t)datatype);
        put_i16(b, 14, (int16_t)bits);
        for (int i = 0; i < 8; i++) {
            put_i64(b, 16 + 8 * (size_t)i, dims[i]);
            put_f64(b, 104 + 8 * (size_t)i, pix[i]);
        }
        put_i64(b, 168, NII2_HDR_SIZE + 4);
        put_f64(b, 176, slope);
        put_f64(b, 184, inter);
        memcpy(b + 240, desc, 80);
        put_i32(b, 344, NIFTI_XFORM_SCANNER_ANAT);
        put_i32(b, 348, NIFTI_XFORM_SCANNER_ANAT);
        double q[6] = {qb, qc, qd, qx, qy, qz};
        for (int i = 0; i < 6; i++) put_f64(b, 352 + 8 * (size_t)i, q[i]);
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++)
                put_f64(b, 400 + 32 * (size_t)r + 8 * (size_t)c, v->affine[r][c]);
        put_i32(b, 500, NIFTI_UNITS_MM);
        put_i32(b, 504, intent_label ? NIFTI_INTENT_LABEL : 0);
    }
    return total;
}

static double vol_value(const hv_volume *v, size_t idx)
{
    switch (v->dtype) {
    case HV_DTYPE_U8: return ((const uint8_t *)v->data)[idx];
    case HV_DTYPE_I16: return ((const int16_t *)v->data)[idx];
    case HV_DTYPE_U16: return ((const uint16_t *)v->data)[idx];
    case HV_DTYPE_I32: return ((const int32_t *)v->data)[idx];
    case HV_DTYPE_F32: return ((const float *)v->data)[idx];
    }
    return 0.0;
}

/* On-disk range of an integer datatype, as doubles: [lo, hi_excl). */
static void disk_int_range(int code, double *lo, double *hi_excl)
{
    switch (code) {
    case 2: *lo = 0; *hi_excl = 0x1p8; break;
    case 256: *lo = -0x1p7; *hi_excl = 0x1p7; break;
    case 4: *lo = -0x1p15; *hi_excl = 0x1p15; break;
    case 512: *lo = 0; *hi_excl = 0x1p16; break;
    case 8: *lo = -0x1p31; *hi_excl = 0x1p31; break;
    case 768: *lo = 0; *hi_excl = 0x1p32; break;
    case 1024: *lo = -0x1p63; *hi_excl = 0x1p63; break;
    case 1280: *lo = 0; *hi_excl = 0x1p64; break;
    default: *lo = 0; *hi_excl = 0; break;
    }
}

/* Encode voxels [start, start+n) of `v` into `out` in datatype `dt`. */
static hv_status encode_chunk(const char *path, const hv_volume *v, const nii_dtype *dt,
                              int scaled, double slope, double inter, size_t start, size_t n,
                              unsigned char *out)
{
    size_t bpv = (size_t)dt->bits / 8;
    double lo = 0, hi = 0;
    if (dt->is_int) disk_int_range(dt->code, &lo, &hi);
    for (size_t t = 0; t < n; t++) {
        size_t idx = start + t;
        double x = vol_value(v, idx);
        if (scaled) x = (x - inter) / slope;
        unsigned char *p = out + t * bpv;
        if (dt->is_int) {
            if (scaled) x = round(x);
            const char *why = NULL;
            if (!isfinite(x)) why = "is not finite";
            else if (x != floor(x)) why = "is not an integer (set scl_slope to quantise)";
            else if (x < lo || x >= hi) why = "is out of range";
            if (why) {
                size_t i = idx % (size_t)v->dim[0];
                size_t j = idx / (size_t)v->dim[0] % (size_t)v->dim[1];
                size_t k = idx / ((size_t)v->dim[0] * (size_t)v->dim[1]);
                return hv_error_set(HV_ERR_ARG,
                                    "%s: voxel (%zu, %zu, %zu): stored value %.17g %s for "
                                    "datatype %s",
                                    path, i, j, k, x, why, dt->name);
            }
            switch (dt->code) {
            case 2: { uint8_t y = (uint8_t)x; memcpy(p, &y, 1); break; }
            case 256: { int8_t y = (int8_t)x; memcpy(p, &y, 1); break; }
            case 4: { int16_t y = (int16_t)x; memcpy(p, &y, 2); break; }
            case 512: { uint16_t y = (uint16_t)x; memcpy(p, &y, 2); break; }
            case 8: { int32_t y = (int32_t)x; memcpy(p, &y, 4); break; }
            case 768: { uint32_t y = (uint32_t)x; memcpy(p, &y, 4); break; }
            case 1024: { int64_t y = (int64_t)x; memcpy(p, &y, 8); break; }
            case 1280: { uint64_t y = (uint64_t)x; memcpy(p, &y, 8); break; }
            }
        } else if (dt->code == NIFTI_TYPE_FLOAT32) {
            if (isfinite(x) && fabs(x) > FLT_MAX) {
                size_t i = idx % (size_t)v->dim[0];
                size_t j = idx / (size_t)v->dim[0] % (size_t)v->dim[1];
                size_t k = idx / ((size_t)v->dim[0] * (size_t)v->dim[1]);
                return hv_error_set(HV_ERR_ARG,
                                    "%s: voxel (%zu, %zu, %zu): stored value %g is out of "
                                    "range for FLOAT32",
                                    path, i, j, k, x);
            }
            float y = (float)x;
            memcpy(p, &y, 4);
        } else {
            memcpy(p, &x, 8);
        }
    }
    return HV_OK;
}

/* .nii.gz written whole with libdeflate (one gzip member): header and
 * encoded voxels into one buffer, compressed in one call, written to fd.
 * libdeflate compresses a whole buffer 2-3x faster than zlib's streaming
 * deflate at the same level, and writing the outputs was most of
 * `straighten`. Used up to NII_FAST_MAX_DEFAULT raw bytes (peak memory: raw
 * + compressed); larger volumes stream through zlib. HV_NIFTI_FAST_MAX_BYTES
 * (tests, benchmarks) lowers that limit for writes too. */
static hv_status gz_write_whole(const char *path, int fd, const unsigned char *hdr, size_t hlen,
                                const hv_volume *v, const nii_dtype *dt, int scaled, double slope,
                                double inter, int level)
{
    hv_status st = HV_OK;
    const size_t bpv = (size_t)dt->bits / 8, raw_n = hlen + v->nvox * bpv;
    unsigned char *raw = malloc(raw_n), *out = NULL;
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
    size_t out_cap = 0, out_n = 0;
    if (!raw || !c) {
        st = hv_error_set(HV_ERR_NOMEM, "%s: out of memory for %zu bytes", path, raw_n);
        goto done;
    }
    memcpy(raw, hdr, hlen);
    const size_t per = NII_CHUNK / bpv;
    for (size_t start = 0; start < v->nvox;) {
        size_t n = v->nvox - start < per ? v->nvox - start : per;
        if ((st = encode_chunk(path, v, dt, scaled, slope, inter, start, n,
                               raw + hlen + start * bpv)) != HV_OK)
            goto done;
        start += n;
    }
    out_cap = libdeflate_gzip_compress_bound(c, raw_n);
    if (!(out = malloc(out_cap))) {
        st = hv_error_set(HV_ERR_NOMEM, "%s: out of memory for %zu bytes", path, out_cap);
        goto done;
    }
    out_n = libdeflate_gzip_compress(c, raw, raw_n, out, out_cap);
    if (!out_n) {
        st = hv_error_set(HV_ERR_INTERNAL, "%s: libdeflate could not compress %zu bytes", path, raw_n);
        goto done;
    }
    for (size_t off = 0; off < out_n;) {
        ssize_t w = write(fd, out + off, out_n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            st = hv_error_set(HV_ERR_IO, "%s: write failed: %s", path,
                              w < 0 ? strerror(errno) : "no progress");
            goto done;
        }
        off += (size_t)w;
    }
done:
    if (c) libdeflate_free_compressor(c);
    free(raw);
    free(out);
    return st;
}

hv_status hv_io_nifti_write(const char *path, const hv_volume *v,
                            const hv_nifti_write_opts *opts)
{
    static atomic_uint tmp_counter;
    hv_nifti_write_opts o = {0};
    if (opts) o = *opts;
    if (!path || !*path) return hv_error_set(HV_ERR_ARG, "NIfTI output path is empty");
    if (!v || !v->data || !hv_dtype_size(v->dtype))
        return hv_error_set(HV_ERR_ARG, "%s: no volume to write", path);
    for (int c = 0; c < 3; c++)
        if (v->dim[c] < 1)
            return hv_error_set(HV_ERR_ARG, "%s: volume dimension %d is %" PRId64, path, c,
                                v->dim[c]);
    int gz = ends_with(path, ".nii.gz");
    if (!gz && !ends_with(path, ".nii"))
        return hv_error_set(HV_ERR_ARG, "%s: the file name must end in .nii or .nii.gz", path);
    int version = o.version ? o.version : 1;
    if (version != 1 && version != 2)
        return hv_error_set(HV_ERR_ARG, "%s: NIfTI version %d (must be 1 or 2)", path,
                            o.version);
    int datatype = o.datatype ? o.datatype : hv_io_nii_default_datatype(v->dtype);
    const nii_dtype *dt = hv_io_nii_dtype_find(datatype);
    if (!dt || !dt->supported)
        return hv_error_set(HV_ERR_ARG, "%s: cannot write datatype %d", path, datatype);
    int level = o.gzip_level ? o.gzip_level : 1;
    if (level < 1 || level > 9)
        return hv_error_set(HV_ERR_ARG, "%s: gzip level %d (must be 1..9)", path, o.gzip_level);
    if (version == 1)
        for (int c = 0; c < 3; c++)
            if (v->dim[c] > INT16_MAX)
                return hv_error_set(HV_ERR_ARG,
                                    "%s: dimension %" PRId64 " does not fit NIfTI-1 (max 32767); "
                                    "write NIfTI-2",
                                    path, v->dim[c]);
    if (!isfinite(o.scl_slope) || !isfinite(o.scl_inter))
        return hv_error_set(HV_ERR_ARG, "%s: scl_slope/scl_inter must be finite", path);
    int scaled = o.scl_slope != 0.0;
    double slope = scaled ? o.scl_slope : 1.0, inter = scaled ? o.scl_inter : 0.0;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            if (!isfinite(v->affine[r][c]))
                return hv_error_set(HV_ERR_ARG, "%s: the volume affine is not finite", path);
    double inv[4][4];
    if (hv_affine_invert((const double(*)[4])v->affine, inv) != HV_OK)
        return hv_error_set(HV_ERR_ARG, "%s: the volume affine is singular", path);
    if (version == 1) {
        /* NIfTI-1 stores these as float32. */
        double m = fmax(fabs(slope), fabs(inter));
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++) m = fmax(m, fabs(v->affine[r][c]));
        if (m > FLT_MAX)
            return hv_error_set(HV_ERR_ARG,
                                "%s: affine or scaling value %g does not fit NIfTI-1's float32 "
                                "fields; write NIfTI-2",
                                path, m);
    }

    unsigned char hdr[NII2_HDR_SIZE + 4];
    size_t hlen = build_header(hdr, v, version, datatype, dt->bits, slope, inter, o.descrip,
                               o.intent_label);

    hv_status st = HV_OK;
    char *tmp = hv_strfmt("%s.tmp%ld.%u", path, (long)getpid(),
                          atomic_fetch_add(&tmp_counter, 1u));
    unsigned char *buf = NULL;
    gzFile gzf = NULL;
    FILE *f = NULL;
    int fd = -1, created = 0;
    if (!tmp) return hv_error_set(HV_ERR_NOMEM, "%s: out of memory", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = hv_error_set(HV_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    created = 1;
    if (gz && (uint64_t)hlen + (uint64_t)v->nvox * (dt->bits / 8) <= hv_io_nii_fast_max_bytes()) {
        st = gz_write_whole(path, fd, hdr, hlen, v, dt, scaled, slope, inter, level);
        int rc = close(fd);
        fd = -1;
        if (st != HV_OK) goto done;
        if (rc != 0) {
            st = hv_error_set(HV_ERR_IO, "%s: write failed when closing: %s", path, strerror(errno));
            goto done;
        }
        goto publish;
    }
    if (gz) {
        char mode[8];
        snprintf(mode, sizeof mode, "wb%d", level);
        gzf = gzdopen(fd, mode);
        if (!gzf) {
            st = hv_error_set(HV_ERR_IO, "%s: cannot start gzip output", path);
            goto done;
        }
        fd = -1;
        gzbuffer(gzf, 256u << 10);
    } else {
        f = fdopen(fd, "wb");
        if (!f) {
            st = hv_error_set(HV_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
            goto done;
        }
        fd = -1;
    }
    buf = malloc(NII_CHUNK);
    if (!buf) {
        st = hv_error_set(HV_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t bpv = (size_t)dt->bits / 8, per = NII_CHUNK / bpv;
    for (size_t start = 0, first = 1; first || start < v->nvox; first = 0) {
        const unsigned char *p;
        size_t len;
        if (first) {
            p = hdr;
            len = hlen;
        } else {
            size_t n = v->nvox - start < per ? v->nvox - start : per;
            st = encode_chunk(path, v, dt, scaled, slope, inter, start, n, buf);
            if (st != HV_OK) goto done;
            start += n;
            p = buf;
            len = n * bpv;
        }
        int ok = gz ? gzwrite(gzf, p, (unsigned)len) == (int)len : fwrite(p, 1, len, f) == len;
        if (!ok) {
            int e = errno;
            st = hv_error_set(HV_ERR_IO, "%s: write failed: %s", path,
                              gz ? gzerror(gzf, &(int){0}) : strerror(e));
            goto done;
        }
    }
    if (gz) {
        int rc = gzclose(gzf);
        gzf = NULL;
        if (rc != Z_OK) {
            st = hv_error_set(HV_ERR_IO, "%s: write failed when closing (zlib error %d: %s)",
                              path, rc, rc == Z_ERRNO ? strerror(errno) : "");
            goto done;
        }
    } else {
        int rc = fclose(f);
        f = NULL;
        if (rc != 0) {
            st = hv_error_set(HV_ERR_IO, "%s: write failed when closing: %s", path,
                              strerror(errno));
            goto done;
        }
    }
publish:
    if (rename(tmp, path) != 0) {
        st = hv_error_set(HV_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
                          strerror(errno));
        goto done;
    }
    created = 0;

done:
    if (gzf) gzclose(gzf);
    if (f) fclose(f);
    if (fd >= 0) close(fd);
    if (created) unlink(tmp);
    free(tmp);
    free(buf);
    return st;
}
