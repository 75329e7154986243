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
 * The module is three files: this one (the header: decoding, validation,
 * hv_io_nifti_check), nifti_read.c (the voxel data: zlib streaming and the
 * libdeflate fast path) and nifti_write.c (the writer); nifti_internal.h is
 * what they share.
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

const nii_dtype *hv_io_nii_dtype_find(int code)
{
    for (size_t i = 0; i < sizeof nii_dtypes / sizeof nii_dtypes[0]; i++)
        if (nii_dtypes[i].code == code) return &nii_dtypes[i];
    return NULL;
}

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
int hv_io_nii_gz_read_full(gzFile gz, void *buf, size_t len, size_t *got)
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
hv_status hv_io_nii_gz_fail(const char *path, gzFile gz, const char *what)
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
    h->dt = hv_io_nii_dtype_find(datatype);
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
hv_status hv_io_nii_open(const char *path, const hv_nifti_opts *opts, nii_hdr *h,
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
    if (hv_io_nii_gz_read_full(gz, b, 4, &got) != 0) {
        st = hv_io_nii_gz_fail(path, gz, "in the header");
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
    if (hv_io_nii_gz_read_full(gz, b + 4, hsz - 4, &more) != 0) {
        st = hv_io_nii_gz_fail(path, gz, "in the header");
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
uint64_t hv_io_nii_needed(const nii_hdr *h)
{
    return (uint64_t)h->info.vox_offset + h->info.data_bytes;
}

hv_status hv_io_nii_short(const char *path, const nii_hdr *h, uint64_t have, const char *unit)
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
                        path, hv_io_nii_needed(h), h->info.vox_offset, h->info.data_bytes, have, unit);
}

hv_status hv_io_nifti_check(const char *path, const hv_nifti_opts *opts, hv_nifti_info *info)
{
    nii_hdr h;
    gzFile gz = NULL;
    unsigned char *buf = NULL;
    hv_status st = hv_io_nii_open(path, opts, &h, &gz);
    if (st != HV_OK) return st;

    if (!h.info.gzipped) {
        if (h.file_size < hv_io_nii_needed(&h)) st = hv_io_nii_short(path, &h, h.file_size, "bytes");
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
        int rc = hv_io_nii_gz_read_full(gz, buf, NII_CHUNK, &got);
        total += got;
        if (rc != 0) {
            st = hv_io_nii_gz_fail(path, gz, "in the voxel data");
            goto done;
        }
        if (got < NII_CHUNK) break;
    }
    if (total < hv_io_nii_needed(&h)) st = hv_io_nii_short(path, &h, total, "decompressed bytes");

done:
    free(buf);
    gzclose(gz);
    if (st == HV_OK && info) *info = h.info;
    return st;
}
