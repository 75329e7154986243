/*
 * nifti_fixture.h: hand-made NIfTI files for the io tests.
 *
 * The tests must not trust the writer under test to make their inputs, so
 * this header encodes NIfTI-1 and NIfTI-2 headers itself, field by field at
 * the byte offsets the two standards give (not through nifticlib's structs),
 * in either byte order, and writes them with data as .nii or .nii.gz. Any
 * field may be set to a value a valid writer would never produce.
 */
#ifndef HV_TEST_NIFTI_FIXTURE_H
#define HV_TEST_NIFTI_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

typedef struct fx_hdr {
    int version;          /* 1 or 2                                   */
    int swap;             /* write in the opposite byte order         */
    int datatype, bitpix;
    int64_t dim[8];
    double pixdim[8];
    double vox_offset;    /* float in NIfTI-1, int64 in NIfTI-2       */
    double scl_slope, scl_inter;
    int qform_code, sform_code;
    double quatern[3], qoffset[3];
    double srow[3][4];
    int xyzt_units;
    const char *descrip;
} fx_hdr;

/* A 3-D header nx*ny*nz of `datatype` (bits `bitpix`), identity sform. */
static inline void fx_default(fx_hdr *h, int version, int datatype, int bitpix, int64_t nx,
                              int64_t ny, int64_t nz)
{
    memset(h, 0, sizeof *h);
    h->version = version;
    h->datatype = datatype;
    h->bitpix = bitpix;
    int64_t d[8] = {3, nx, ny, nz, 1, 1, 1, 1};
    memcpy(h->dim, d, sizeof d);
    for (int i = 0; i < 8; i++) h->pixdim[i] = 1.0;
    h->vox_offset = version == 1 ? 352 : 544;
    h->scl_slope = 1.0;
    h->sform_code = 1;
    for (int r = 0; r < 3; r++) h->srow[r][r] = 1.0;
    h->xyzt_units = 2;
}

static inline void fx_put(unsigned char *b, size_t off, const void *v, size_t n, int swap)
{
    const unsigned char *s = v;
    for (size_t i = 0; i < n; i++) b[off + i] = swap ? s[n - 1 - i] : s[i];
}
static inline void fx_i16(unsigned char *b, size_t off, int64_t v, int swap)
{
    int16_t x = (int16_t)v;
    fx_put(b, off, &x, 2, swap);
}
static inline void fx_i32(unsigned char *b, size_t off, int64_t v, int swap)
{
    int32_t x = (int32_t)v;
    fx_put(b, off, &x, 4, swap);
}
static inline void fx_i64(unsigned char *b, size_t off, int64_t v, int swap)
{
    fx_put(b, off, &v, 8, swap);
}
static inline void fx_f32(unsigned char *b, size_t off, double v, int swap)
{
    float x = (float)v;
    fx_put(b, off, &x, 4, swap);
}
static inline void fx_f64(unsigned char *b, size_t off, double v, int swap)
{
    fx_put(b, off, &v, 8, swap);
}

/* Encode `h` into `b` (at least 544 bytes): header plus the 4-byte empty
 * extension flag. Returns 352 or 544. */
static inline size_t fx_encode(const fx_hdr *h, unsigned char *b)
{
    int s = h->swap;
    memset(b, 0, 544);
    if (h->version == 1) {
        fx_i32(b, 0, 348, s);
        for (int i = 0; i < 8; i++) {
            fx_i16(b, 40 + 2 * (size_t)i, h->dim[i], s);
            fx_f32(b, 76 + 4 * (size_t)i, h->pixdim[i], s);
        }
        fx_i16(b, 70, h->datatype, s);
        fx_i16(b, 72, h->bitpix, s);
        fx_f32(b, 108, h->vox_offset, s);
        fx_f32(b, 112, h->scl_slope, s);
        fx_f32(b, 116, h->scl_inter, s);
        b[123] = (unsigned char)h->xyzt_units;
        if (h->descrip) strncpy((char *)b + 148, h->descrip, 79);
        fx_i16(b, 252, h->qform_code, s);
        fx_i16(b, 254, h->sform_code, s);
        for (int i = 0; i < 3; i++) {
            fx_f32(b, 256 + 4 * (size_t)i, h->quatern[i], s);
            fx_f32(b, 268 + 4 * (size_t)i, h->qoffset[i], s);
        }
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++)
                fx_f32(b, 280 + 16 * (size_t)r + 4 * (size_t)c, h->srow[r][c], s);
        memcpy(b + 344, "n+1", 4);
        return 352;
    }
    fx_i32(b, 0, 540, s);
    memcpy(b + 4, "n+2\0\r\n\032\n", 8);
    fx_i16(b, 12, h->datatype, s);
    fx_i16(b, 14, h->bitpix, s);
    for (int i = 0; i < 8; i++) {
        fx_i64(b, 16 + 8 * (size_t)i, h->dim[i], s);
        fx_f64(b, 104 + 8 * (size_t)i, h->pixdim[i], s);
    }
    fx_i64(b, 168, (int64_t)h->vox_offset, s);
    fx_f64(b, 176, h->scl_slope, s);
    fx_f64(b, 184, h->scl_inter, s);
    if (h->descrip) strncpy((char *)b + 240, h->descrip, 79);
    fx_i32(b, 344, h->qform_code, s);
    fx_i32(b, 348, h->sform_code, s);
    for (int i = 0; i < 3; i++) {
        fx_f64(b, 352 + 8 * (size_t)i, h->quatern[i], s);
        fx_f64(b, 376 + 8 * (size_t)i, h->qoffset[i], s);
    }
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            fx_f64(b, 400 + 32 * (size_t)r + 8 * (size_t)c, h->srow[r][c], s);
    fx_i32(b, 500, h->xyzt_units, s);
    return 544;
}

/* Write raw bytes to `path`, gzip-compressed when `gz`. 0 on success. */
static inline int fx_write_bytes(const char *path, const void *bytes, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb6");
        if (!f) return -1;
        int ok = n == 0 || gzwrite(f, bytes, (unsigned)n) == (int)n;
        return (gzclose(f) == Z_OK && ok) ? 0 : -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(bytes, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Header `h` followed by `data` (already in the header's byte order). */
static inline int fx_write(const char *path, const fx_hdr *h, const void *data, size_t n,
                           int gz)
{
    unsigned char *b = malloc(544 + n);
    if (!b) return -1;
    size_t hl = fx_encode(h, b);
    if (n) memcpy(b + hl, data, n);
    int rc = fx_write_bytes(path, b, hl + n, gz);
    free(b);
    return rc;
}

/* Whole file into memory (malloc'd); NULL on failure. */
static inline unsigned char *fx_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            unsigned char *nb = realloc(b, cap);
            if (!nb) break;
            b = nb;
        }
        size_t r = fread(b + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    *n = len;
    return b;
}

#endif
