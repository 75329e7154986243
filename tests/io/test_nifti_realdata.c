/*
 * test_nifti_realdata.c: the shared real CT files read with the facts that
 * ../shared/data/README.md states for them.
 *
 *  - totalseg-example/example_ct.nii.gz: NIfTI-1 int32, 122x101x112, 3 mm,
 *    qform_code 0 / sform_code 2 so the sform gives RAS with offset
 *    (-177.956, 11.319, 94.302), HU range -1207..3382;
 *  - totalseg_vertebrae_pp_refined.nii.gz: uint8 with a header extension
 *    (vox_offset 3216), same grid, labels 19..24 with the README's counts;
 *  - the verse004 L2 crop: float64 CT and uint8 labels, qform only, LPS,
 *    100x89x74 at 1 mm, values -214.3..1893.5, sub-region counts;
 *  - each also survives a write/read round trip through our writer
 *    (NIfTI-2, gzip) with identical voxels and geometry.
 */
#include <math.h>

#include "hv/io.h"
#include "hv_test.h"

static void count_labels(const hv_volume *v, uint64_t counts[256])
{
    memset(counts, 0, 256 * sizeof counts[0]);
    for (size_t i = 0; i < v->nvox; i++) counts[((const uint8_t *)v->data)[i]]++;
}

static void rewrite_and_compare(const hv_volume *v, const char *tmp, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    hv_nifti_write_opts wo = {.version = 2, .gzip_level = 1};
    HV_CHECK_OK(hv_io_nifti_write(p, v, &wo));
    hv_volume *r = NULL;
    HV_CHECK_OK(hv_io_nifti_read(p, v->dtype, NULL, &r, NULL));
    if (!r) return;
    HV_CHECK(r->nvox == v->nvox && memcmp(r->data, v->data, v->nvox * hv_dtype_size(v->dtype)) == 0,
             "%s: voxels differ after rewrite", name);
    double d = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) d = fmax(d, fabs(r->affine[a][b] - v->affine[a][b]));
    HV_CHECK(d == 0, "%s: affine differs by %g after rewrite", name, d);
    hv_vol_free(r);
}

int main(void)
{
    const char *ct_rel = "totalseg-example/example_ct.nii.gz";
    const char *pp_rel = "totalseg-example/totalseg_vertebrae_pp_refined.nii.gz";
    const char *im_rel = "verse-sub-verse004-L2-crop/sub-verse004_0000_vertebra_21_im.nii.gz";
    const char *sg_rel = "verse-sub-verse004-L2-crop/sub-verse004_0000_vertebra_21_seg.nii.gz";
    const char *ct = hv_test_data(ct_rel);
    if (!ct) return hv_test_missing_data(ct_rel);
    const char *pp = hv_test_data(pp_rel);
    if (!pp) return hv_test_missing_data(pp_rel);
    const char *im = hv_test_data(im_rel);
    if (!im) return hv_test_missing_data(im_rel);
    const char *sg = hv_test_data(sg_rel);
    if (!sg) return hv_test_missing_data(sg_rel);
    const char *tmp = hv_test_tmpdir("nifti_realdata");
    HV_REQUIRE(tmp != NULL, "tmpdir");

    /* ---- example CT */
    hv_volume *v = NULL;
    hv_nifti_info info;
    hv_status st;
    HV_CHECK_OK(hv_io_nifti_check(ct, NULL, &info));
    st = hv_io_nifti_read(ct, HV_DTYPE_F32, NULL, &v, &info);
    HV_REQUIRE(st == HV_OK, "read %s: %s", ct,
               hv_error_detail());
    HV_CHECK(info.version == 1 && info.gzipped && !info.swapped, "format");
    HV_CHECK(info.datatype == 8 && info.bitpix == 32, "datatype %d", info.datatype);
    HV_CHECK(info.qform_code == 0 && info.sform_code == 2, "codes q%d s%d", info.qform_code,
             info.sform_code);
    HV_CHECK(info.scl_slope == 1 && info.scl_inter == 0, "scl");
    HV_CHECK(v->dim[0] == 122 && v->dim[1] == 101 && v->dim[2] == 112, "dims %lldx%lldx%lld",
             (long long)v->dim[0], (long long)v->dim[1], (long long)v->dim[2]);
    for (int a = 0; a < 3; a++) HV_CHECK_CLOSE(v->spacing[a], 3.0, 1e-6, "ct spacing");
    char codes[4];
    hv_affine_axcodes((const double(*)[4])v->affine, codes);
    HV_CHECK(strcmp(codes, "RAS") == 0, "ct axcodes %s", codes);
    /* README gives the offset to 3 decimals. */
    HV_CHECK_CLOSE(v->affine[0][3], -177.956, 5e-4, "ct offset x");
    HV_CHECK_CLOSE(v->affine[1][3], 11.319, 5e-4, "ct offset y");
    HV_CHECK_CLOSE(v->affine[2][3], 94.302, 5e-4, "ct offset z");
    double mn, mx;
    size_t nonfinite;
    hv_vol_range(v, &mn, &mx, &nonfinite);
    HV_CHECK(mn == -1207 && mx == 3382 && nonfinite == 0, "ct range %g..%g (%zu)", mn, mx,
             nonfinite);
    hv_vol_free(v);
    /* As int32 it reads exactly as well, and round-trips. */
    v = NULL;
    HV_CHECK_OK(hv_io_nifti_read(ct, HV_DTYPE_I32, NULL, &v, NULL));
    if (v) rewrite_and_compare(v, tmp, "ct_v2.nii.gz");
    hv_vol_free(v);

    /* ---- vertebral body labels */
    v = NULL;
    st = hv_io_nifti_read(pp, HV_DTYPE_U8, NULL, &v, &info);
    HV_REQUIRE(st == HV_OK, "read %s: %s", pp,
               hv_error_detail());
    HV_CHECK(info.vox_offset == 3216 && info.datatype == 2, "pp vox_offset %lld dt %d",
             (long long)info.vox_offset, info.datatype);
    HV_CHECK(v->dim[0] == 122 && v->dim[1] == 101 && v->dim[2] == 112, "pp dims");
    uint64_t counts[256];
    count_labels(v, counts);
    const uint64_t want[6] = {1137, 1319, 1349, 1420, 1446, 1260}; /* labels 19..24 */
    for (int l = 19; l <= 24; l++)
        HV_CHECK(counts[l] == want[l - 19], "label %d: %llu voxels, README says %llu", l,
                 (unsigned long long)counts[l], (unsigned long long)want[l - 19]);
    uint64_t other = 0;
    for (int l = 1; l < 256; l++)
        if (l < 19 || l > 24) other += counts[l];
    HV_CHECK(other == 0, "%llu voxels with labels outside 19..24", (unsigned long long)other);
    rewrite_and_compare(v, tmp, "pp_v2.nii.gz");
    hv_vol_free(v);

    /* ---- verse004 crop: qform only, LPS */
    v = NULL;
    st = hv_io_nifti_read(im, HV_DTYPE_F32, NULL, &v, &info);
    HV_REQUIRE(st == HV_OK, "read %s: %s", im,
               hv_error_detail());
    HV_CHECK(info.datatype == 64 && info.qform_code == 1 && info.sform_code == 0,
             "crop dt %d q%d s%d", info.datatype, info.qform_code, info.sform_code);
    HV_CHECK(v->dim[0] == 100 && v->dim[1] == 89 && v->dim[2] == 74, "crop dims");
    hv_affine_axcodes((const double(*)[4])v->affine, codes);
    HV_CHECK(strcmp(codes, "LPS") == 0, "crop axcodes %s", codes);
    HV_CHECK_CLOSE(v->affine[0][3], -250.81, 5e-3, "crop offset x");
    HV_CHECK_CLOSE(v->affine[1][3], 145.07, 5e-3, "crop offset y");
    HV_CHECK_CLOSE(v->affine[2][3], 182.08, 5e-3, "crop offset z");
    for (int a = 0; a < 3; a++) HV_CHECK_CLOSE(v->spacing[a], 1.0, 1e-6, "crop spacing");
    hv_vol_range(v, &mn, &mx, &nonfinite);
    HV_CHECK_CLOSE(mn, -214.3, 0.05, "crop min");
    HV_CHECK_CLOSE(mx, 1893.5, 0.05, "crop max");
    hv_vol_free(v);
    v = NULL;
    st = hv_io_nifti_read(sg, HV_DTYPE_U8, NULL, &v, NULL);
    HV_REQUIRE(st == HV_OK, "read %s: %s", sg,
               hv_error_detail());
    count_labels(v, counts);
    const uint64_t sub[6] = {22553, 11093, 7761, 12343, 7015, 6425}; /* labels 1..6 */
    for (int l = 1; l <= 6; l++)
        HV_CHECK(counts[l] == sub[l - 1], "crop label %d: %llu voxels, README says %llu", l,
                 (unsigned long long)counts[l], (unsigned long long)sub[l - 1]);
    rewrite_and_compare(v, tmp, "seg_v2.nii.gz");
    hv_vol_free(v);
    return hv_test_done();
}
