/*
 * test_nifti_interop.c: our NIfTI files against another reader and writer.
 *
 * nifticlib (the reference C implementation of the format) must read what
 * hv_io_nifti_write produces, NIfTI-1 and -2, plain and gzip, with the same
 * dims, datatype, voxel values, sform (exactly, up to the format's float32)
 * and qform (to quaternion precision). And hv_io_nifti_read must read what
 * nifticlib's own writer produces (NIfTI-1; see below) with the same
 * geometry and scaling. The files here are
 * valid, so handing them to nifticlib is safe; malformed files never are
 * (see test_nifti_malformed.c).
 */
#include <math.h>
#include <nifti2_io.h>

#include "hv/io.h"
#include "hv_test.h"

static double mat_diff(const nifti_dmat44 *m, const double A[4][4])
{
    double d = 0;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) d = fmax(d, fabs(m->m[r][c] - A[r][c]));
    return d;
}

/* A left-handed oblique grid: rotation of 15 degrees about z, spacing
 * 0.7 x 0.9 x 2.5, k flipped, an offset with fractions. */
static void test_affine(double A[4][4])
{
    double c = cos(15 * M_PI / 180), s = sin(15 * M_PI / 180);
    double R[3][3] = {{c, -s, 0}, {s, c, 0}, {0, 0, 1}};
    double sp[3] = {0.7, 0.9, -2.5}, off[3] = {-120.25, 33.5, -7.75};
    hv_affine_identity(A);
    for (int r = 0; r < 3; r++) {
        for (int k = 0; k < 3; k++) A[r][k] = R[r][k] * sp[k];
        A[r][3] = off[r];
    }
}

static void test_nifticlib_reads_ours(void)
{
    const char *tmp = hv_test_tmpdir("nifti_interop");
    if (!tmp) {
        HV_CHECK(0, "tmpdir");
        return;
    }
    double A[4][4];
    test_affine(A);
    int64_t dim[3] = {7, 5, 4};
    hv_volume *v = NULL;
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_I16, (const double(*)[4])A));
    if (!v) return;
    for (size_t i = 0; i < v->nvox; i++) ((int16_t *)v->data)[i] = (int16_t)(i * 37 - 600);
    for (int version = 1; version <= 2; version++) {
        for (int gz = 0; gz <= 1; gz++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/ours_v%d.nii%s", tmp, version, gz ? ".gz" : "");
            hv_nifti_write_opts wo = {.version = version, .descrip = "interop",
                                      .intent_label = 1};
            HV_CHECK_OK(hv_io_nifti_write(p, v, &wo));
            nifti_image *nim = nifti_image_read(p, 1);
            HV_CHECK(nim != NULL, "nifticlib cannot read %s", p);
            if (!nim) continue;
            HV_CHECK(nim->nx == 7 && nim->ny == 5 && nim->nz == 4 && nim->ndim == 3,
                     "%s: nifticlib dims", p);
            HV_CHECK(nim->datatype == NIFTI_TYPE_INT16, "%s: datatype %d", p, nim->datatype);
            /* (nim->nifti_type says NIFTI1_1 even for NIfTI-2 files in 3.0.1;
             * ask the header reader for the version instead.) */
            int nver = 0;
            void *hdr = nifti_read_header(p, &nver, 1);
            HV_CHECK(hdr && nver == version, "%s: nifticlib sees version %d", p, nver);
            free(hdr);
            HV_CHECK(nim->sform_code == 1 && nim->qform_code == 1, "%s: codes", p);
            HV_CHECK(nim->intent_code == NIFTI_INTENT_LABEL, "%s: intent %d", p,
                     nim->intent_code);
            HV_CHECK(strcmp(nim->descrip, "interop") == 0, "%s: descrip", p);
            HV_CHECK(nim->data && memcmp(nim->data, v->data, v->nvox * 2) == 0,
                     "%s: voxel data differ", p);
            /* sform: float32 in NIfTI-1 (|x| <= 121: < 1e-5), exact in -2. */
            double ds = mat_diff(&nim->sto_xyz, (const double(*)[4])A);
            HV_CHECK(ds <= (version == 1 ? 1e-5 : 0), "%s: sform off by %g", p, ds);
            double dq = mat_diff(&nim->qto_xyz, (const double(*)[4])A);
            HV_CHECK(dq <= (version == 1 ? 2e-5 : 1e-9), "%s: qform off by %g", p, dq);
            HV_CHECK(nim->qfac == -1.0, "%s: qfac %g (grid is left-handed)", p, nim->qfac);
            nifti_image_free(nim);
        }
    }
    hv_vol_free(v);
}

static void test_we_read_nifticlib(void)
{
    const char *tmp = hv_test_tmpdir("nifti_interop2");
    if (!tmp) {
        HV_CHECK(0, "tmpdir");
        return;
    }
    double A[4][4];
    test_affine(A);
    /* NIfTI-1 only: nifticlib 3.0.1 cannot write a single-file NIfTI-2
     * (nifti_set_filenames resets nifti_type to NIfTI-1, and with the type
     * forced to NIFTI2_1 the writer treats the file as a .hdr/.img pair and
     * overwrites the header with the data). Our NIfTI-2 reading is covered
     * by nifticlib reading our NIfTI-2 files above and by the hand-encoded
     * headers in test_nifti_roundtrip.c. */
    for (int gz = 0; gz <= 1; gz++) {
        int64_t dims[8] = {3, 6, 4, 3, 1, 1, 1, 1};
        nifti_image *nim = nifti_make_new_nim(dims, NIFTI_TYPE_FLOAT32, 1);
        HV_CHECK(nim != NULL, "nifti_make_new_nim");
        if (!nim) return;
        float *d = nim->data;
        for (int64_t i = 0; i < nim->nvox; i++) d[i] = (float)i * 0.25f - 3.0f;
        nim->sform_code = 1;
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) nim->sto_xyz.m[r][c] = A[r][c];
        nim->qform_code = 0;
        nim->scl_slope = 2.0;
        nim->scl_inter = 10.0;
        char prefix[4096];
        snprintf(prefix, sizeof prefix, "%s/theirs_v1.nii%s", tmp, gz ? ".gz" : "");
        HV_CHECK(nifti_set_filenames(nim, prefix, 0, 1) == 0, "set_filenames");
        nifti_image_write(nim);
        hv_volume *r = NULL;
        hv_nifti_info info;
        HV_CHECK_OK(hv_io_nifti_read(nim->fname, HV_DTYPE_F32, NULL, &r, &info));
        if (r) {
            HV_CHECK(info.version == 1 && info.gzipped == gz, "%s: version %d gz %d",
                     nim->fname, info.version, info.gzipped);
            HV_CHECK(r->dim[0] == 6 && r->dim[1] == 4 && r->dim[2] == 3, "dims");
            size_t bad = 0;
            for (size_t i = 0; i < r->nvox; i++)
                bad += ((float *)r->data)[i] != (float)(d[i] * 2.0 + 10.0);
            HV_CHECK(bad == 0, "%s: %zu voxels differ (scaling applied?)", nim->fname, bad);
            double dd = 0;
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) dd = fmax(dd, fabs(r->affine[a][b] - A[a][b]));
            HV_CHECK(dd <= 1e-5, "%s: affine off by %g", nim->fname, dd);
        }
        hv_vol_free(r);
        nifti_image_free(nim);
    }
}

int main(void)
{
    nifti_set_debug_level(0);
    test_nifticlib_reads_ours();
    test_we_read_nifticlib();
    return hv_test_done();
}
