/*
 * fuzz_nifti.c: libFuzzer target for the NIfTI header parser (src/io/nifti.c).
 *
 * The input is a whole file (NIfTI-1 or -2, either byte order; a gzip file
 * also works, since zlib's gzopen reads both), put in a memfd and given to
 * the public entry points: hv_io_nifti_check, then hv_io_nifti_read as CT
 * (float32, scaling applied) and as a label map (int16: every voxel must be
 * integral and in range). The header parser is static (nii_parse), so there
 * is no from-memory entry point; the file route is also the one a run takes.
 *
 * Invariants beyond "no crash, no sanitizer report, no leak":
 *  - a read that succeeds implies the check succeeds, with the same header
 *    facts (check validates without allocating; it must not be stricter
 *    about headers than the read, or a run would refuse a readable case);
 *  - the volume has the header's dims, a finite affine and spacing.
 * The byte limit is 64 MiB (a file can still claim up to 1032x its size in
 * gzip), so libFuzzer's RSS limit is never the reason a run stops.
 */
#include <math.h>

#include "fuzz_util.h"
#include "hv/io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_log_set_level(HV_LOG_ERROR); /* xyzt_units warnings on every other input */
    return 0;
}

static void check_volume(const hv_volume *v, const hv_nifti_info *info)
{
    for (int a = 0; a < 3; a++) {
        if (v->dim[a] != info->dim[a + 1])
            HV_FUZZ_FAIL("dim[%d] = %lld, header says %lld", a, (long long)v->dim[a],
                         (long long)info->dim[a + 1]);
        if (!isfinite(v->spacing[a]) || !(v->spacing[a] > 0))
            HV_FUZZ_FAIL("spacing[%d] = %g", a, v->spacing[a]);
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            if (!isfinite(v->affine[r][c])) HV_FUZZ_FAIL("affine[%d][%d] not finite", r, c);
    if (v->nvox != (size_t)(v->dim[0] * v->dim[1] * v->dim[2])) HV_FUZZ_FAIL("nvox");
}

/* Field by field: struct padding is not part of the answer. */
static int same_info(const hv_nifti_info *a, const hv_nifti_info *b)
{
    if (a->version != b->version || a->gzipped != b->gzipped || a->datatype != b->datatype ||
        a->bitpix != b->bitpix || a->ndim != b->ndim || a->qform_code != b->qform_code ||
        a->sform_code != b->sform_code || a->vox_offset != b->vox_offset ||
        a->data_bytes != b->data_bytes || a->swapped != b->swapped ||
        memcmp(a->dim, b->dim, sizeof a->dim) || memcmp(a->pixdim, b->pixdim, sizeof a->pixdim) ||
        memcmp(&a->scl_slope, &b->scl_slope, sizeof a->scl_slope) ||
        memcmp(&a->scl_inter, &b->scl_inter, sizeof a->scl_inter))
        return 0;
    return strncmp(a->descrip, b->descrip, sizeof a->descrip) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = hv_fuzz_memfile(0, data, size);
    hv_nifti_opts opts = {.max_bytes = 64u << 20};
    hv_nifti_info ci, ri;
    memset(&ci, 0, sizeof ci);
    hv_status sc = hv_io_nifti_check(path, &opts, &ci);

    static const hv_dtype as[2] = {HV_DTYPE_F32, HV_DTYPE_I16};
    for (int k = 0; k < 2; k++) {
        hv_volume *v = NULL;
        memset(&ri, 0, sizeof ri);
        hv_status sr = hv_io_nifti_read(path, as[k], &opts, &v, &ri);
        if (sr == HV_OK) {
            if (!v) HV_FUZZ_FAIL("read OK without a volume");
            if (sc != HV_OK)
                HV_FUZZ_FAIL("read (as dtype %d) accepts a file that check refuses (%s)", (int)as[k],
                             hv_status_name(sc));
            if (!same_info(&ci, &ri)) HV_FUZZ_FAIL("check and read disagree on the header");
            check_volume(v, &ri);
        } else if (v) {
            HV_FUZZ_FAIL("read failed (%s) but returned a volume", hv_status_name(sr));
        }
        hv_vol_free(v);
    }
    return 0;
}
