/*
 * resample.c: resampling a volume onto another grid.
 *
 * The output grid is described by its own affine, so one routine serves
 * spacing changes, oblique-to-canonical and the straightening module's
 * needs. The output voxel -> input voxel map is affine, so it is evaluated
 * incrementally along each row. Points outside the input get `fill`, as
 * scipy's map_coordinates(mode="constant") does: a coordinate counts as
 * inside when it lies in [0, dim-1] (with a 1e-6 voxel tolerance).
 */
#include "hv/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HV_EPS 1e-6

static inline double sample_nearest(const hv_volume *in, double x, double y, double z, double fill)
{
    int64_t i = (int64_t)floor(x + 0.5), j = (int64_t)floor(y + 0.5), k = (int64_t)floor(z + 0.5);
    if (x < -HV_EPS || y < -HV_EPS || z < -HV_EPS || x > (double)(in->dim[0] - 1) + HV_EPS ||
        y > (double)(in->dim[1] - 1) + HV_EPS || z > (double)(in->dim[2] - 1) + HV_EPS)
        return fill;
    if (i < 0) i = 0;
    if (j < 0) j = 0;
    if (k < 0) k = 0;
    if (i >= in->dim[0]) i = in->dim[0] - 1;
    if (j >= in->dim[1]) j = in->dim[1] - 1;
    if (k >= in->dim[2]) k = in->dim[2] - 1;
    return hv_vol_get(in, hv_vol_idx(in, i, j, k));
}

static inline double sample_linear(const hv_volume *in, double x, double y, double z, double fill)
{
    const double mx = (double)(in->dim[0] - 1), my = (double)(in->dim[1] - 1),
                 mz = (double)(in->dim[2] - 1);
    if (x < -HV_EPS || y < -HV_EPS || z < -HV_EPS || x > mx + HV_EPS || y > my + HV_EPS ||
        z > mz + HV_EPS)
        return fill;
    x = fmin(fmax(x, 0), mx);
    y = fmin(fmax(y, 0), my);
    z = fmin(fmax(z, 0), mz);
    int64_t i0 = (int64_t)floor(x), j0 = (int64_t)floor(y), k0 = (int64_t)floor(z);
    if (i0 > in->dim[0] - 2) i0 = in->dim[0] > 1 ? in->dim[0] - 2 : 0;
    if (j0 > in->dim[1] - 2) j0 = in->dim[1] > 1 ? in->dim[1] - 2 : 0;
    if (k0 > in->dim[2] - 2) k0 = in->dim[2] > 1 ? in->dim[2] - 2 : 0;
    double fx = x - (double)i0, fy = y - (double)j0, fz = z - (double)k0;
    int64_t i1 = in->dim[0] > 1 ? i0 + 1 : i0, j1 = in->dim[1] > 1 ? j0 + 1 : j0,
            k1 = in->dim[2] > 1 ? k0 + 1 : k0;
    if (in->dtype == HV_DTYPE_F32) {
        const float *d = in->data;
        const size_t s1 = (size_t)in->dim[0], s2 = s1 * (size_t)in->dim[1];
#define AT(i, j, k) ((double)d[(size_t)(i) + s1 * (size_t)(j) + s2 * (size_t)(k)])
        double c00 = AT(i0, j0, k0) * (1 - fx) + AT(i1, j0, k0) * fx;
        double c10 = AT(i0, j1, k0) * (1 - fx) + AT(i1, j1, k0) * fx;
        double c01 = AT(i0, j0, k1) * (1 - fx) + AT(i1, j0, k1) * fx;
        double c11 = AT(i0, j1, k1) * (1 - fx) + AT(i1, j1, k1) * fx;
#undef AT
        double c0 = c00 * (1 - fy) + c10 * fy, c1 = c01 * (1 - fy) + c11 * fy;
        return c0 * (1 - fz) + c1 * fz;
    }
#define AT(i, j, k) hv_vol_get(in, hv_vol_idx(in, (i), (j), (k)))
    double c00 = AT(i0, j0, k0) * (1 - fx) + AT(i1, j0, k0) * fx;
    double c10 = AT(i0, j1, k0) * (1 - fx) + AT(i1, j1, k0) * fx;
    double c01 = AT(i0, j0, k1) * (1 - fx) + AT(i1, j0, k1) * fx;
    double c11 = AT(i0, j1, k1) * (1 - fx) + AT(i1, j1, k1) * fx;
#undef AT
    double c0 = c00 * (1 - fy) + c10 * fy, c1 = c01 * (1 - fy) + c11 * fy;
    return c0 * (1 - fz) + c1 * fz;
}

hv_status hv_vol_resample(const hv_volume *in, const double affine[4][4], const int64_t dim[3],
                          hv_interp interp, double fill, hv_volume **out)
{
    *out = NULL;
    double inv[4][4], M[4][4];
    hv_status st = hv_affine_invert((const double(*)[4])in->affine, inv);
    if (st != HV_OK) return hv_error_wrap(st, "resample: input affine");
    hv_affine_mul((const double(*)[4])inv, affine, M);
    st = hv_vol_create(out, dim, in->dtype, affine);
    if (st != HV_OK) return hv_error_wrap(st, "resample: output grid");
    hv_volume *o = *out;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t k = 0; k < dim[2]; k++) {
        for (int64_t j = 0; j < dim[1]; j++) {
            double p0[3];
            for (int r = 0; r < 3; r++) p0[r] = M[r][1] * (double)j + M[r][2] * (double)k + M[r][3];
            size_t base = hv_vol_idx(o, 0, j, k);
            for (int64_t i = 0; i < dim[0]; i++) {
                double x = p0[0] + M[0][0] * (double)i, y = p0[1] + M[1][0] * (double)i,
                       z = p0[2] + M[2][0] * (double)i;
                double v = interp == HV_INTERP_NEAREST ? sample_nearest(in, x, y, z, fill)
                                                       : sample_linear(in, x, y, z, fill);
                hv_vol_set(o, base + (size_t)i, v);
            }
        }
    }
    return HV_OK;
}

hv_status hv_vol_resample_spacing(const hv_volume *in, const double spacing[3], hv_interp interp,
                                  double fill, hv_volume **out)
{
    double A[4][4];
    int64_t dim[3];
    memcpy(A, in->affine, sizeof A);
    for (int c = 0; c < 3; c++) {
        if (!(spacing[c] > 0) || !isfinite(spacing[c]))
            return hv_error_set(HV_ERR_ARG, "resample: spacing %g is not a positive number",
                                spacing[c]);
        double f = spacing[c] / in->spacing[c];
        for (int r = 0; r < 3; r++) A[r][c] *= f;
        /* Cover the same extent: (dim-1)*old spacing, rounded to the new grid. */
        double ext = (double)(in->dim[c] - 1) * in->spacing[c];
        dim[c] = (int64_t)floor(ext / spacing[c] + 1e-6) + 1;
    }
    return hv_vol_resample(in, (const double(*)[4])A, dim, interp, fill, out);
}

hv_status hv_vol_resample_to_ras(const hv_volume *in, const double spacing[3], hv_interp interp,
                                 double fill, hv_volume **out)
{
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int c = 0; c < 8; c++) {
        double p[3] = {(c & 1) ? (double)(in->dim[0] - 1) : 0, (c & 2) ? (double)(in->dim[1] - 1) : 0,
                       (c & 4) ? (double)(in->dim[2] - 1) : 0};
        double w[3];
        hv_affine_apply((const double(*)[4])in->affine, p, w);
        for (int r = 0; r < 3; r++) {
            lo[r] = fmin(lo[r], w[r]);
            hi[r] = fmax(hi[r], w[r]);
        }
    }
    double A[4][4];
    int64_t dim[3];
    hv_affine_identity(A);
    for (int r = 0; r < 3; r++) {
        if (!(spacing[r] > 0)) return hv_error_set(HV_ERR_ARG, "resample: bad spacing %g", spacing[r]);
        A[r][r] = spacing[r];
        A[r][3] = lo[r];
        dim[r] = (int64_t)floor((hi[r] - lo[r]) / spacing[r] + 1e-6) + 1;
        if (dim[r] > 100000) return hv_error_set(HV_ERR_LIMIT, "resample: output grid too large");
    }
    return hv_vol_resample(in, (const double(*)[4])A, dim, interp, fill, out);
}
