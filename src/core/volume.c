/*
 * volume.c: the hv_volume type: creation, copies, dtype conversion and
 * generic element access.
 *
 * Volumes are a plain struct with one contiguous buffer so kernels can work
 * on raw pointers; the generic get/set helpers exist for code that is not
 * hot (tests, I/O conversion, reports). Sizes are checked for overflow before
 * anything is allocated, because dims often come from untrusted headers.
 */
#include "hv/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t hv_dtype_size(hv_dtype dt)
{
    switch (dt) {
    case HV_DTYPE_U8: return 1;
    case HV_DTYPE_I16:
    case HV_DTYPE_U16: return 2;
    case HV_DTYPE_I32:
    case HV_DTYPE_F32: return 4;
    }
    return 0;
}

const char *hv_dtype_name(hv_dtype dt)
{
    switch (dt) {
    case HV_DTYPE_U8: return "uint8";
    case HV_DTYPE_I16: return "int16";
    case HV_DTYPE_U16: return "uint16";
    case HV_DTYPE_I32: return "int32";
    case HV_DTYPE_F32: return "float32";
    }
    return "invalid";
}

void hv_vol_update_spacing(hv_volume *v)
{
    for (int c = 0; c < 3; c++)
        v->spacing[c] = sqrt(v->affine[0][c] * v->affine[0][c] + v->affine[1][c] * v->affine[1][c] +
                             v->affine[2][c] * v->affine[2][c]);
}

hv_status hv_vol_create(hv_volume **out, const int64_t dim[3], hv_dtype dtype,
                        const double affine[4][4])
{
    *out = NULL;
    size_t es = hv_dtype_size(dtype);
    if (!es) return hv_error_set(HV_ERR_ARG, "invalid volume dtype %d", (int)dtype);
    size_t n = 1;
    for (int c = 0; c < 3; c++) {
        if (dim[c] < 1)
            return hv_error_set(HV_ERR_ARG, "volume dimension %d is %lld (must be >= 1)", c,
                                (long long)dim[c]);
        if (n > SIZE_MAX / (size_t)dim[c] / es)
            return hv_error_set(HV_ERR_LIMIT, "volume %lldx%lldx%lld is too large",
                                (long long)dim[0], (long long)dim[1], (long long)dim[2]);
        n *= (size_t)dim[c];
    }
    double A[4][4];
    if (affine) {
        memcpy(A, affine, sizeof A);
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                if (!isfinite(A[r][c]))
                    return hv_error_set(HV_ERR_NUMERIC, "volume affine has a non-finite entry");
        double inv[4][4];
        if (hv_affine_invert(A, inv) != HV_OK)
            return hv_error_set(HV_ERR_NUMERIC, "volume affine is singular");
    } else {
        hv_affine_identity(A);
    }
    hv_volume *v = calloc(1, sizeof *v);
    if (!v) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    v->data = calloc(n, es);
    if (!v->data) {
        free(v);
        return hv_error_set(HV_ERR_NOMEM, "cannot allocate %zu bytes for a %lldx%lldx%lld volume",
                            n * es, (long long)dim[0], (long long)dim[1], (long long)dim[2]);
    }
    memcpy(v->dim, dim, sizeof v->dim);
    memcpy(v->affine, A, sizeof A);
    v->dtype = dtype;
    v->nvox = n;
    hv_vol_update_spacing(v);
    *out = v;
    return HV_OK;
}

void hv_vol_free(hv_volume *v)
{
    if (!v) return;
    free(v->data);
    free(v);
}

hv_status hv_vol_clone(const hv_volume *v, hv_volume **out)
{
    hv_status st = hv_vol_create(out, v->dim, v->dtype, (const double(*)[4])v->affine);
    if (st != HV_OK) return st;
    memcpy((*out)->data, v->data, v->nvox * hv_dtype_size(v->dtype));
    return HV_OK;
}

double hv_vol_get(const hv_volume *v, size_t idx)
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

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

void hv_vol_set(hv_volume *v, size_t idx, double x)
{
    if (v->dtype != HV_DTYPE_F32) x = isnan(x) ? 0.0 : nearbyint(x);
    switch (v->dtype) {
    case HV_DTYPE_U8: ((uint8_t *)v->data)[idx] = (uint8_t)clampd(x, 0, 255); break;
    case HV_DTYPE_I16: ((int16_t *)v->data)[idx] = (int16_t)clampd(x, -32768, 32767); break;
    case HV_DTYPE_U16: ((uint16_t *)v->data)[idx] = (uint16_t)clampd(x, 0, 65535); break;
    case HV_DTYPE_I32:
        ((int32_t *)v->data)[idx] = (int32_t)clampd(x, -2147483648.0, 2147483647.0);
        break;
    case HV_DTYPE_F32: ((float *)v->data)[idx] = (float)x; break;
    }
}

hv_status hv_vol_convert(const hv_volume *v, hv_dtype dtype, hv_volume **out)
{
    if (dtype == v->dtype) return hv_vol_clone(v, out);
    hv_status st = hv_vol_create(out, v->dim, dtype, (const double(*)[4])v->affine);
    if (st != HV_OK) return st;
    hv_volume *o = *out;
    for (size_t i = 0; i < v->nvox; i++) hv_vol_set(o, i, hv_vol_get(v, i));
    return HV_OK;
}

void hv_vol_range(const hv_volume *v, double *min, double *max, size_t *n_nonfinite)
{
    double lo = INFINITY, hi = -INFINITY;
    size_t bad = 0;
    for (size_t i = 0; i < v->nvox; i++) {
        double x = hv_vol_get(v, i);
        if (!isfinite(x)) {
            bad++;
            continue;
        }
        if (x < lo) lo = x;
        if (x > hi) hi = x;
    }
    if (lo > hi) lo = hi = NAN;
    if (min) *min = lo;
    if (max) *max = hi;
    if (n_nonfinite) *n_nonfinite = bad;
}

hv_status hv_vol_check_same_grid(const hv_volume *a, const hv_volume *b, const char *name_a,
                                 const char *name_b)
{
    if (!name_a) name_a = "first volume";
    if (!name_b) name_b = "second volume";
    if (!a || !b) return hv_error_set(HV_ERR_ARG, "grid check: no %s", !a ? name_a : name_b);
    for (int d = 0; d < 3; d++)
        if (a->dim[d] != b->dim[d])
            return hv_error_set(HV_ERR_FORMAT,
                                "%s and %s grids differ (%lldx%lldx%lld vs %lldx%lldx%lld)",
                                name_a, name_b, (long long)a->dim[0], (long long)a->dim[1],
                                (long long)a->dim[2], (long long)b->dim[0], (long long)b->dim[1],
                                (long long)b->dim[2]);
    /* Same tolerance the runner always used: 1e-3 relative (1 um at 1 mm). */
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            if (!(fabs(a->affine[r][c] - b->affine[r][c]) <= 1e-3 * (1.0 + fabs(a->affine[r][c]))))
                return hv_error_set(HV_ERR_FORMAT,
                                    "%s and %s affines differ (row %d, column %d: %g vs %g): "
                                    "the %s must be on the %s's voxel grid (same dimensions, "
                                    "spacing, orientation and origin)",
                                    name_a, name_b, r, c, a->affine[r][c], b->affine[r][c],
                                    name_a, name_b);
    return HV_OK;
}
