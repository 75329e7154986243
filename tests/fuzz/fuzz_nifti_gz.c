/*
 * fuzz_nifti_gz.c: libFuzzer target for the .nii.gz reader (src/io/nifti.c):
 * the libdeflate fast path, its fallback to zlib streaming, and the gzip
 * error handling.
 *
 * Input: a gzip file as is when it starts with the gzip magic (1f 8b), so
 * mutations reach member headers, flags, trailers, extra members and
 * trailing junk; anything else is taken as the decompressed .nii bytes and
 * gzipped here (one member, or two split in the middle when the size is odd:
 * multi-member files are legal gzip), so mutations of the header and voxels
 * reach the converters behind an intact stream, which mutated compressed
 * bytes almost never give.
 *
 * Each file is read four times: as float32 (the int16-in-place conversion
 * path) and as uint8 (the separate raw buffer path), each once with the
 * fast path and once with HV_NIFTI_FAST_MAX_BYTES=0, which forces zlib
 * streaming. nifti.c promises that the fast path changes nothing but speed:
 * the same status, the same message, the same voxels. Any difference aborts.
 */
#include <zlib.h>

#include "fuzz_util.h"
#include "hv/io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_log_set_level(HV_LOG_ERROR);
    return 0;
}

/* Append one gzip member holding `in` to *out (growing it). */
static void gz_member(const uint8_t *in, size_t n, uint8_t **out, size_t *len, size_t *cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        HV_FUZZ_FAIL("deflateInit2");
    size_t need = *len + deflateBound(&zs, (uLong)n) + 64;
    if (need > *cap) {
        *out = realloc(*out, need);
        if (!*out) HV_FUZZ_FAIL("out of memory");
        *cap = need;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = *out + *len;
    zs.avail_out = (uInt)(*cap - *len);
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) HV_FUZZ_FAIL("deflate");
    *len += zs.total_out;
    deflateEnd(&zs);
}

typedef struct {
    hv_status st;
    char msg[1024];
    hv_volume *v;
} outcome;

static void read_once(const char *path, hv_dtype dt, int fast, outcome *o)
{
    if (fast) unsetenv("HV_NIFTI_FAST_MAX_BYTES");
    else setenv("HV_NIFTI_FAST_MAX_BYTES", "0", 1);
    hv_nifti_opts opts = {.max_bytes = 64u << 20};
    o->v = NULL;
    o->st = hv_io_nifti_read(path, dt, &opts, &o->v, NULL);
    snprintf(o->msg, sizeof o->msg, "%s", o->st == HV_OK ? "" : hv_error_detail());
    if ((o->st == HV_OK) != (o->v != NULL)) HV_FUZZ_FAIL("status and volume disagree");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *gz = NULL;
    size_t len = 0, cap = 0;
    const uint8_t *file = data;
    size_t file_n = size;
    if (size < 2 || data[0] != 0x1f || data[1] != 0x8b) {
        if (size & 1) {
            gz_member(data, size / 2, &gz, &len, &cap);
            gz_member(data + size / 2, size - size / 2, &gz, &len, &cap);
        } else {
            gz_member(data, size, &gz, &len, &cap);
        }
        file = gz;
        file_n = len;
    }
    const char *path = hv_fuzz_memfile(0, file, file_n);

    static const hv_dtype as[2] = {HV_DTYPE_F32, HV_DTYPE_U8};
    for (int k = 0; k < 2; k++) {
        outcome f, z;
        read_once(path, as[k], 1, &f);
        read_once(path, as[k], 0, &z);
        if (f.st != z.st)
            HV_FUZZ_FAIL("dtype %d: fast path says %s (%s), zlib streaming %s (%s)", (int)as[k],
                         hv_status_name(f.st), f.msg, hv_status_name(z.st), z.msg);
        if (strcmp(f.msg, z.msg))
            HV_FUZZ_FAIL("dtype %d: messages differ:\n  fast: %s\n  zlib: %s", (int)as[k], f.msg,
                         z.msg);
        if (f.v && (f.v->nvox != z.v->nvox ||
                    memcmp(f.v->data, z.v->data, f.v->nvox * hv_dtype_size(f.v->dtype)) ||
                    memcmp(f.v->affine, z.v->affine, sizeof f.v->affine)))
            HV_FUZZ_FAIL("dtype %d: fast path and zlib streaming read different volumes", (int)as[k]);
        hv_vol_free(f.v);
        hv_vol_free(z.v);
    }
    unsetenv("HV_NIFTI_FAST_MAX_BYTES");
    free(gz);
    return 0;
}
