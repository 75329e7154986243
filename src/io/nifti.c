/*
 * nifti.c: validated NIfTI-1/-2 reading and writing (.nii and .nii.gz).
 *
 * Why our own header parser: Debian's nifticlib 3.0.1 trusts the header it
 * reads. Fuzzed files make it calloc(nvox * nbyper) straight from the header
 * dims (a 377-byte file asks for ~18 GB), convert a NaN vox_offset to int
 * (undefined behaviour) and, for NIfTI-2, index dim[8] with an unchecked
 * dim[0]. So no byte of a file reaches nifticlib here. We read the fixed-size
 * header ourselves (zlib's gzopen/gzread read plain and gzip files alike),
 * decode it field by field at the offsets the NIfTI-1/-2 standards give, in
 * either byte order, and validate every field that sizes or places anything:
 * sizeof_hdr, magic, dim[0], dims, datatype/bitpix, the size product against
 * int64 overflow and the caller's byte limit, pixdim, vox_offset, scaling and
 * the qform/sform numbers and the voxel spacings they give (1e-3 to 1e3 mm,
 * named with the offending value), and finally that the file really holds
 * the data. Input paths must be regular files (hv_file_check_regular): a
 * directory or FIFO is named as such and never opened for reading.
 *
 * nifticlib stays the geometry authority: the qform is turned into a matrix by
 * nifti_quatern_to_dmat44 (with its handling of qfac and of non-unit
 * quaternions) and the writer derives the quaternion with
 * nifti_dmat44_to_quatern. Those functions are pure arithmetic. The voxel data
 * are read by us, in bounded chunks, straight into the output volume's dtype,
 * so a read allocates the output volume plus a 1 MiB buffer and nothing else
 * (nifti_image_read would first hold the whole on-disk array). We considered
 * nifti_image_read after validation, but it also re-parses the header with the
 * unfixed code and doubles peak memory; the chunked read is simpler to bound.
 *
 * Geometry rule (as nifticlib and the standard's "method" list): sform when
 * sform_code > 0, else qform when qform_code > 0, else the diagonal of pixdim
 * with the origin at voxel 0 ("method 1"). nibabel's fallback differs (it
 * flips x and centres the grid); files without any transform are rare in CT.
 * World units are taken as millimetres whatever xyzt_units says, as nibabel
 * and nifticlib do; a file that declares metres or microns gets a warning.
 *
 * Gzip streams: hv_io_nifti_check decompresses the whole stream (in a bounded
 * buffer) to prove it holds vox_offset + data bytes and has no corrupt block or
 * CRC error. hv_io_nifti_read does the same checks during its single pass and,
 * before allocating, rejects a header whose data could not fit in the
 * compressed file at deflate's maximum ratio (1032:1), so a tiny file cannot
 * make us allocate gigabytes.
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
 * The writer builds the header bytes itself (native byte order), writes to a
 * temporary name in the same folder and renames it over the target.
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

/* -------------------------------------------------------------- constants */

#define NII1_HDR_SIZE 348
#define NII2_HDR_SIZE 540
#define HV_NII_SPACING_MIN 1e-3         /* voxel spacings accepted (mm): a */
#define HV_NII_SPACING_MAX 1e3          /* micrometre to a metre           */
#define NII_CHUNK (1u << 20)          /* bytes per read/convert/write step   */
#define DEFLATE_MAX_RATIO 1032u       /* 258-byte match in 2 bits            */
#define NII_FAST_MAX_DEFAULT (1ull << 30) /* largest raw buffer, fast path */

typedef struct nii_dtype {
    int code;
    int bits;
    const char *name;
    int supported;                    /* integer or real scalar              */
    int is_int, is_signed;
} nii_dtype;

static const nii_dtype nii_dtypes[] = {
    {1, 1, "BINARY", 0, 0, 0},        {2, 8, "UINT8", 1, 1, 0},
    {4, 16, "INT16", 1, 1, 1},        {8, 32, "INT32", 1, 1, 1},
    {16, 32, "FLOAT32", 1, 0, 1},     {32, 64, "COMPLEX64", 0, 0, 0},
    {64, 64, "FLOAT64", 1, 0, 1},     {128, 24, "RGB24", 0, 0, 0},
    {256, 8, "INT8", 1, 1, 1},        {512, 16, "UINT16", 1, 1, 0},
    {768, 32, "UINT32", 1, 1, 0},     {1024, 64, "INT64", 1, 1, 1},
    {1280, 64, "UINT64", 1, 1, 0},    {1536, 128, "FLOAT128", 0, 0, 0},
    {1792, 128, "COMPLEX128", 0, 0, 0}, {2048, 256, "COMPLEX256", 0, 0, 0},
    {2304, 32, "RGBA32", 0, 0, 0},
};

static const nii_dtype *nii_dtype_find(int code)
{
    for (size_t i = 0; i < sizeof nii_dtypes / sizeof nii_dtypes[0]; i++)
        if (nii_dtypes[i].code == code) return &nii_dtypes[i];
    return NULL;
}

/* Everything the header says that we use, decoded to native types. */
typedef struct nii_hdr {
    hv_nifti_info info;
    const nii_dtype *dt;
    int hdr_size;
    double quatern[3], qoffset[3];
    double srow[3][4];
    int xyzt_units;
    int scaled;                       /* scl_slope is finite and non-zero    */
    double affine[4][4];
    uint64_t file_size;               /* on disk (compressed size for .gz)   */
} nii_hdr;

/* ------------------------------------------------------- byte decoding */

static uint16_t get_u16(const unsigned char *b, size_t off, int swap)
{
    uint16_t v;
    memcpy(&v, b + off, sizeof v);
    return swap ? __builtin_bswap16(v) : v;
}

static uint32_t get_u32(const unsigned char *b, size_t off, int swap)
{
    uint32_t v;
    memcpy(&v, b + off, sizeof v);
    return swap ? __builtin_bswap32(v) : v;
}

static uint64_t get_u64(const unsigned char *b, size_t off, int swap)
{
    uint64_t v;
    memcpy(&v, b + off, sizeof v);
    return swap ? __builtin_bswap64(v) : v;
}

static int16_t get_i16(const unsigned char *b, size_t off, int swap)
{
    uint16_t u = get_u16(b, off, swap);
    int16_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static int32_t get_i32(const unsigned char *b, size_t off, int swap)
{
    uint32_t u = get_u32(b, off, swap);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static int64_t get_i64(const unsigned char *b, size_t off, int swap)
{
    uint64_t u = get_u64(b, off, swap);
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static double get_f32(const unsigned char *b, size_t off, int swap)
{
    uint32_t u = get_u32(b, off, swap);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static double get_f64(const unsigned char *b, size_t off, int swap)
{
    uint64_t u = get_u64(b, off, swap);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* ------------------------------------------------------------ gzip I/O */

/* Read up to `len` bytes; *got receives how many arrived. Returns 0 on a clean
 * end of input, -1 on a stream error (details via gzerror). */
static int gz_read_full(gzFile gz, void *buf, size_t len, size_t *got)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > (1u << 30)) want = 1u << 30;
        int r = gzread(gz, p + *got, (unsigned)want);
        if (r < 0) return -1;
        if (r == 0) {
            int errnum = Z_OK;
            gzerror(gz, &errnum);
            return errnum == Z_OK ? 0 : -1;
        }
        *got += (size_t)r;
    }
    return 0;
}

/* Turn the gzFile's error state into a status and message. `what` says where
 * we were for read errors ("in the header"); for stream errors it is not
 * said, because zlib inflates ahead of what we asked for. */
static hv_status gz_fail(const char *path, gzFile gz, const char *what)
{
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (errnum == Z_ERRNO)
        return hv_error_set(HV_ERR_IO, "%s: read error %s: %s", path, what, strerror(errno));
    if (errnum == Z_BUF_ERROR)
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: the gzip stream is truncated (the file was cut short)", path);
    if (errnum == Z_MEM_ERROR)
        return hv_error_set(HV_ERR_NOMEM, "%s: out of memory while decompressing", path);
    /* zlib prefixes its message with the path; drop that. */
    size_t plen = strlen(path);
    if (msg && strncmp(msg, path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
        msg += plen + 2;
    return hv_error_set(HV_ERR_FORMAT, "%s: the gzip stream is corrupt: %s", path,
                        msg && *msg ? msg : "zlib error");
}

/* --------------------------------------------------------- validation */

static const char *fmt_dims(const nii_hdr *h, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int64_t d = 1; d <= h->info.ndim && d <= 7; d++) {
        int w = snprintf(buf + used, n - used, "%s%" PRId64, d > 1 ? "x" : "", h->info.dim[d]);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
    return buf;
}

/* Decode and validate the header bytes `b` (hdr_size bytes). Checks that need
 * the file's length are done by the caller. */
static hv_status nii_parse(const char *path, const unsigned char *b, int version, int swap,
                           uint64_t max_bytes, nii_hdr *h)
{
    hv_nifti_info *in = &h->info;
    in->version = version;
    in->swapped = swap;
    h->hdr_size = version == 1 ? NII1_HDR_SIZE : NII2_HDR_SIZE;

    /* Magic: single-file NIfTI only ("n+1", "n+2" with its line-ending check). */
    if (version == 1) {
        if (memcmp(b + 344, "ni1\0", 4) == 0)
            return hv_error_set(HV_ERR_UNSUPPORTED,
                                "%s: header magic \"ni1\" is a two-file .hdr/.img pair; "
                                "only single-file .nii is supported",
                                path);
        if (memcmp(b + 344, "n+1\0", 4) != 0)
            return hv_error_set(HV_ERR_FORMAT,
                                "%s: no NIfTI-1 magic \"n+1\" at byte 344 (an ANALYZE 7.5 "
                                "file or a damaged header)",
                                path);
    } else {
        if (memcmp(b + 4, "ni2\0", 4) == 0)
            return hv_error_set(HV_ERR_UNSUPPORTED,
                                "%s: header magic \"ni2\" is a two-file .hdr/.img pair; "
                                "only single-file .nii is supported",
                                path);
        if (memcmp(b + 4, "n+2\0", 4) != 0)
            return hv_error_set(HV_ERR_FORMAT, "%s: no NIfTI-2 magic \"n+2\" at byte 4", path);
        if (memcmp(b + 8, "\r\n\032\n", 4) != 0)
            return hv_error_set(HV_ERR_FORMAT,
                                "%s: the NIfTI-2 magic's line-ending bytes are damaged (was "
                                "the file transferred as text?)",
                                path);
    }

    /* Fields at their standard offsets. */
    int64_t dim[8];
    double pixdim[8];
    double vox_offset;
    int datatype, bitpix;
    if (version == 1) {
        for (int i = 0; i < 8; i++) {
            dim[i] = get_i16(b, 40 + 2 * (size_t)i, swap);
            pixdim[i] = get_f32(b, 76 + 4 * (size_t)i, swap);
        }
        datatype = get_i16(b, 70, swap);
        bitpix = get_i16(b, 72, swap);
        vox_offset = get_f32(b, 108, swap);
        in->scl_slope = get_f32(b, 112, swap);
        in->scl_inter = get_f32(b, 116, swap);
        h->xyzt_units = b[123];
        memcpy(in->descrip, b + 148, 80);
        in->qform_code = get_i16(b, 252, swap);
        in->sform_code = get_i16(b, 254, swap);
        for (int i = 0; i < 3; i++) {
            h->quatern[i] = get_f32(b, 256 + 4 * (size_t)i, swap);
            h->qoffset[i] = get_f32(b, 268 + 4 * (size_t)i, swap);
        }
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++)
                h->srow[r][c] = get_f32(b, 280 + 16 * (size_t)r + 4 * (size_t)c, swap);
    } else {
        for (int i = 0; i < 8; i++) {
            dim[i] = get_i64(b, 16 + 8 * (size_t)i, swap);
            pixdim[i] = get_f64(b, 104 + 8 * (size_t)i, swap);
        }
        datatype = get_i16(b, 12, swap);
        bitpix = get_i16(b, 14, swap);
        vox_offset = (double)get_i64(b, 168, swap);
        in->scl_slope = get_f64(b, 176, swap);
        in->scl_inter = get_f64(b, 184, swap);
        memcpy(in->descrip, b + 240, 80);
        in->qform_code = get_i32(b, 344, swap);
        in->sform_code = get_i32(b, 348, swap);
        for (int i = 0; i < 3; i++) {
            h->quatern[i] = get_f64(b, 352 + 8 * (size_t)i, swap);
            h->qoffset[i] = get_f64(b, 376 + 8 * (size_t)i, swap);
        }
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++)
                h->srow[r][c] = get_f64(b, 400 + 32 * (size_t)r + 8 * (size_t)c, swap);
        h->xyzt_units = get_i32(b, 500, swap);
    }
    in->descrip[80] = '\0';
    /* The NIfTI-2 vox_offset is an int64; re-read it exactly (a double may
     * round large values, which only matters for the message). */
    int64_t vox_offset_i = version == 2 ? get_i64(b, 168, swap) : 0;

    /* dim[0]: the number of dimensions. */
    if (dim[0] < 1 || dim[0] > 7)
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: dim[0] = %" PRId64 ": the number of dimensions must be 1 to 7",
                            path, dim[0]);
    in->ndim = dim[0];
    in->dim[0] = dim[0];
    for (int i = 1; i < 8; i++) in->dim[i] = i <= dim[0] ? dim[i] : 1;
    for (int i = 1; i <= dim[0]; i++)
        if (dim[i] < 1)
            return hv_error_set(HV_ERR_FORMAT,
                                "%s: dim[%d] = %" PRId64 ": dimensions must be >= 1", path, i,
                                dim[i]);

    /* Datatype and bitpix. */
    h->dt = nii_dtype_find(datatype);
    in->datatype = datatype;
    in->bitpix = bitpix;
    if (!h->dt)
        return hv_error_set(HV_ERR_FORMAT, "%s: datatype %d is not a NIfTI datatype code", path,
                            datatype);
    if (!h->dt->supported)
        return hv_error_set(HV_ERR_UNSUPPORTED,
                            "%s: datatype %s (%d) is not supported: healthivert reads real "
                            "and integer scalar images only",
                            path, h->dt->name, datatype);
    if (bitpix != h->dt->bits)
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: bitpix = %d does not match datatype %s (%d bits per voxel)",
                            path, bitpix, h->dt->name, h->dt->bits);

    /* Size: product of the used dims times bytes per voxel, overflow-checked,
     * then against the caller's limit. */
    char dbuf[160];
    uint64_t nvox = 1;
    for (int i = 1; i <= dim[0]; i++) {
        if (__builtin_mul_overflow(nvox, (uint64_t)dim[i], &nvox))
            return hv_error_set(HV_ERR_FORMAT,
                                "%s: dimensions %s: the voxel count overflows 64 bits "
                                "(a corrupt header)",
                                path, fmt_dims(h, dbuf, sizeof dbuf));
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(nvox, (uint64_t)(h->dt->bits / 8), &bytes))
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: dimensions %s of %s: the data size overflows 64 bits "
                            "(a corrupt header)",
                            path, fmt_dims(h, dbuf, sizeof dbuf), h->dt->name);
    in->data_bytes = bytes;
    if (bytes > max_bytes)
        return hv_error_set(HV_ERR_LIMIT,
                            "%s: dimensions %s of %s need %" PRIu64
                            " bytes of voxel data, above the limit of %" PRIu64 " bytes",
                            path, fmt_dims(h, dbuf, sizeof dbuf), h->dt->name, bytes, max_bytes);

    /* pixdim: spatial spacings must be positive; the others finite. */
    for (int i = 0; i < 8; i++) in->pixdim[i] = pixdim[i];
    for (int i = 1; i <= dim[0]; i++) {
        if (!isfinite(pixdim[i]))
            return hv_error_set(HV_ERR_FORMAT, "%s: pixdim[%d] = %g: voxel sizes must be finite",
                                path, i, pixdim[i]);
        if (i <= 3 && pixdim[i] <= 0)
            return hv_error_set(HV_ERR_FORMAT,
                                "%s: pixdim[%d] = %g: voxel sizes must be > 0", path, i,
                                pixdim[i]);
    }
    /* Unused spatial spacings (2-D images) default to 1 mm. */
    for (int i = (int)dim[0] + 1; i <= 3; i++)
        if (!isfinite(in->pixdim[i]) || in->pixdim[i] <= 0) in->pixdim[i] = 1.0;

    /* vox_offset: where the data start; integral, inside int64, past the header. */
    if (!isfinite(vox_offset) || vox_offset != floor(vox_offset) || vox_offset < 0 ||
        vox_offset > 0x1p62)
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: vox_offset = %g is not a valid byte offset", path, vox_offset);
    int64_t off = version == 2 ? vox_offset_i : (int64_t)vox_offset;
    if (off < h->hdr_size)
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: vox_offset = %" PRId64 " points inside the %d-byte header",
                            path, off, h->hdr_size);
    in->vox_offset = off;

    /* Scaling: slope 0 or non-finite means "none" (as nifticlib and nibabel);
     * a valid slope with a broken intercept is an error. */
    h->scaled = isfinite(in->scl_slope) && in->scl_slope != 0.0;
    if (h->scaled && !isfinite(in->scl_inter))
        return hv_error_set(HV_ERR_FORMAT, "%s: scl_inter = %g with scl_slope = %g: the "
                            "intercept must be finite",
                            path, in->scl_inter, in->scl_slope);

    /* Geometry: sform, else qform, else pixdim. */
    double A[4][4] = {{0}};
    A[3][3] = 1.0;
    if (in->sform_code > 0) {
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++) {
                if (!isfinite(h->srow[r][c]))
                    return hv_error_set(HV_ERR_FORMAT,
                                        "%s: srow_%c[%d] = %g: the sform must be finite", path,
                                        "xyz"[r], c, h->srow[r][c]);
                A[r][c] = h->srow[r][c];
            }
    } else if (in->qform_code > 0) {
        for (int i = 0; i < 3; i++) {
            if (!isfinite(h->quatern[i]))
                return hv_error_set(HV_ERR_FORMAT,
                                    "%s: quatern_%c = %g: the qform must be finite", path,
                                    "bcd"[i], h->quatern[i]);
            if (!isfinite(h->qoffset[i]))
                return hv_error_set(HV_ERR_FORMAT,
                                    "%s: qoffset_%c = %g: the qform must be finite", path,
                                    "xyz"[i], h->qoffset[i]);
        }
        nifti_dmat44 Q = nifti_quatern_to_dmat44(
            h->quatern[0], h->quatern[1], h->quatern[2], h->qoffset[0], h->qoffset[1],
            h->qoffset[2], in->pixdim[1], in->pixdim[2], in->pixdim[3],
            pixdim[0] < 0 ? -1.0 : 1.0);
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++) A[r][c] = Q.m[r][c];
    } else {
        for (int i = 0; i < 3; i++) A[i][i] = in->pixdim[i + 1];
    }
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            if (!isfinite(A[r][c]))
                return hv_error_set(HV_ERR_FORMAT, "%s: the %s matrix is not finite", path,
                                    in->sform_code > 0 ? "sform" : "qform");
    /* Voxel spacings (column norms) outside [HV_NII_SPACING_MIN, MAX] mm are
     * not a scan (pixdim 1e30 is a broken header, not a singular matrix):
     * say which value and the allowed range. */
    for (int c = 0; c < 3; c++) {
        double sp = sqrt(A[0][c] * A[0][c] + A[1][c] * A[1][c] + A[2][c] * A[2][c]);
        if (sp >= HV_NII_SPACING_MIN && sp <= HV_NII_SPACING_MAX) continue;
        if (in->sform_code > 0)
            return hv_error_set(HV_ERR_FORMAT,
                                "%s: the sform gives a voxel spacing of %g mm along axis %d "
                                "(srow_x/y/z[%d]): out of range (allowed %g to %g mm)",
                                path, sp, c, c, HV_NII_SPACING_MIN, HV_NII_SPACING_MAX);
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: pixdim[%d] = %g: voxel spacing out of range (allowed %g to "
                            "%g mm)%s",
                            path, c + 1, in->pixdim[c + 1], HV_NII_SPACING_MIN,
                            HV_NII_SPACING_MAX, in->qform_code > 0 ? " (used by the qform)" : "");
    }
    double inv[4][4];
    if (hv_affine_invert((const double(*)[4])A, inv) != HV_OK) {
        hv_error_clear();
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: the %s matrix is singular (its voxel axes do not span 3-D "
                            "space)",
                            path,
                            in->sform_code > 0   ? "sform"
                            : in->qform_code > 0 ? "qform"
                                                 : "pixdim");
    }
    memcpy(h->affine, A, sizeof A);
    return HV_OK;
}

/* Open `path`, read and validate the header. On success the stream is left
 * just after the header (hdr_size bytes). */
static hv_status nii_open(const char *path, const hv_nifti_opts *opts, nii_hdr *h,
                          gzFile *gz_out)
{
    memset(h, 0, sizeof *h);
    *gz_out = NULL;
    if (!path || !*path) return hv_error_set(HV_ERR_ARG, "NIfTI path is empty");
    uint64_t max_bytes = opts && opts->max_bytes ? opts->max_bytes : HV_NIFTI_DEFAULT_MAX_BYTES;

    /* A directory or FIFO is refused by name (gzopen would block on a FIFO). */
    hv_status cst = hv_file_check_regular(path, NULL);
    if (cst != HV_OK) return cst;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return hv_error_set(HV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { /* swapped since the check */
        close(fd);
        return hv_error_set(HV_ERR_IO, "%s: not a regular file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    h->file_size = (uint64_t)sb.st_size;

    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return hv_error_set(HV_ERR_IO, "%s: cannot open: out of memory", path);
    }
    gzbuffer(gz, 256u << 10);

    hv_status st = HV_OK;
    unsigned char b[NII2_HDR_SIZE];
    size_t got = 0;
    if (gz_read_full(gz, b, 4, &got) != 0) {
        st = gz_fail(path, gz, "in the header");
        goto done;
    }
    h->info.gzipped = !gzdirect(gz);
    if (got < 4) {
        st = hv_error_set(HV_ERR_FORMAT, "%s: %s (%zu bytes): not a NIfTI file", path,
                          got > 0 ? "the file is too short"
                          : h->info.gzipped ? "the gzip stream is empty"
                                            : "the file is empty",
                          got);
        goto done;
    }

    /* sizeof_hdr tells the version and the byte order. */
    int version = 0, swap = 0;
    uint32_t sz = get_u32(b, 0, 0);
    if (sz == NII1_HDR_SIZE) version = 1;
    else if (sz == NII2_HDR_SIZE) version = 2;
    else if (__builtin_bswap32(sz) == NII1_HDR_SIZE) version = 1, swap = 1;
    else if (__builtin_bswap32(sz) == NII2_HDR_SIZE) version = 2, swap = 1;
    else {
        st = hv_error_set(HV_ERR_FORMAT,
                          "%s: sizeof_hdr = %" PRId32 ": not a NIfTI-1 (348) or NIfTI-2 (540) "
                          "header%s",
                          path, (int32_t)sz,
                          h->info.gzipped ? ""
                                          : " (not NIfTI, or compressed other than with gzip)");
        goto done;
    }
    size_t hsz = version == 1 ? NII1_HDR_SIZE : NII2_HDR_SIZE;
    size_t more = 0;
    if (gz_read_full(gz, b + 4, hsz - 4, &more) != 0) {
        st = gz_fail(path, gz, "in the header");
        goto done;
    }
    if (more < hsz - 4) {
        st = hv_error_set(HV_ERR_FORMAT,
                          "%s: the file is truncated inside the header (%zu of %zu bytes)", path,
                          more + 4, hsz);
        goto done;
    }
    st = nii_parse(path, b, version, swap, max_bytes, h);

done:
    if (st != HV_OK) {
        gzclose(gz);
        return st;
    }
    *gz_out = gz;
    return HV_OK;
}

/* Bytes the file must hold: vox_offset + data. Both are bounded (2^62 and the
 * byte limit), so the sum cannot overflow. */
static uint64_t nii_needed(const nii_hdr *h)
{
    return (uint64_t)h->info.vox_offset + h->info.data_bytes;
}

static hv_status nii_short(const char *path, const nii_hdr *h, uint64_t have, const char *unit)
{
    if (have <= (uint64_t)h->info.vox_offset)
        return hv_error_set(HV_ERR_FORMAT,
                            "%s: vox_offset = %" PRId64 " points past the end of the data "
                            "(%" PRIu64 " %s): the file is truncated or the header is wrong",
                            path, h->info.vox_offset, have, unit);
    return hv_error_set(HV_ERR_FORMAT,
                        "%s: the file is truncated: the header needs %" PRIu64
                        " bytes (offset %" PRId64 " + %" PRIu64 " bytes of voxel data) but "
                        "there are %" PRIu64 " %s",
                        path, nii_needed(h), h->info.vox_offset, h->info.data_bytes, have, unit);
}

hv_status hv_io_nifti_check(const char *path, const hv_nifti_opts *opts, hv_nifti_info *info)
{
    nii_hdr h;
    gzFile gz = NULL;
    unsigned char *buf = NULL;
    hv_status st = nii_open(path, opts, &h, &gz);
    if (st != HV_OK) return st;

    if (!h.info.gzipped) {
        if (h.file_size < nii_needed(&h)) st = nii_short(path, &h, h.file_size, "bytes");
        goto done;
    }
    /* Stream the rest of the gzip file through a bounded buffer, counting. */
    buf = malloc(NII_CHUNK);
    if (!buf) {
        st = hv_error_set(HV_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    uint64_t total = (uint64_t)h.hdr_size;
    for (;;) {
        size_t got = 0;
        int rc = gz_read_full(gz, buf, NII_CHUNK, &got);
        total += got;
        if (rc != 0) {
            st = gz_fail(path, gz, "in the voxel data");
            goto done;
        }
        if (got < NII_CHUNK) break;
    }
    if (total < nii_needed(&h)) st = nii_short(path, &h, total, "decompressed bytes");

done:
    free(buf);
    gzclose(gz);
    if (st == HV_OK && info) *info = h.info;
    return st;
}

/* ------------------------------------------------------------- reading */

/* The NIfTI datatype that holds an hv_dtype exactly. */
static int default_datatype(hv_dtype dt)
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
    if (!h->scaled && default_datatype(v->dtype) == code) {
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
static uint64_t fast_max_bytes(void)
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
 * exactly nii_needed(h) bytes and convert its voxel data into `v`. *fallback
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
    uint64_t need = nii_needed(h), limit = fast_max_bytes();
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
    hv_status st = nii_open(path, opts, &h, &gz);
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
        if (h.file_size < nii_needed(&h)) {
            st = nii_short(path, &h, h.file_size, "bytes");
            goto done;
        }
    } else if (h.file_size < UINT64_MAX / DEFLATE_MAX_RATIO &&
               nii_needed(&h) > h.file_size * DEFLATE_MAX_RATIO + (64u << 10)) {
        st = hv_error_set(HV_ERR_FORMAT,
                          "%s: the file is truncated: a %" PRIu64 "-byte gzip file cannot hold "
                          "the %" PRIu64 " bytes the header describes",
                          path, h.file_size, nii_needed(&h));
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
        if (gz_read_full(gz, buf, (size_t)want, &got) != 0) {
            st = gz_fail(path, gz, "before the voxel data");
            goto done;
        }
        pos += got;
        if (got < want) {
            st = nii_short(path, &h, pos, h.info.gzipped ? "decompressed bytes" : "bytes");
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
        if (gz_read_full(gz, buf, n * bpv, &got) != 0) {
            st = gz_fail(path, gz, "in the voxel data");
            goto done;
        }
        if (got < n * bpv) {
            st = nii_short(path, &h, pos + done_vox * bpv + got,
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
            if (gz_read_full(gz, buf, NII_CHUNK, &got) != 0) {
                st = gz_fail(path, gz, "after the voxel data");
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
    int datatype = o.datatype ? o.datatype : default_datatype(v->dtype);
    const nii_dtype *dt = nii_dtype_find(datatype);
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
    if (gz && (uint64_t)hlen + (uint64_t)v->nvox * (dt->bits / 8) <= fast_max_bytes()) {
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
