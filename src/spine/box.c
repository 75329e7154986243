/*
 * box.c: the fixed-size 3-D box of a vertebra's straightened crop that the
 * 3-D grader reads (grader.method = senet3d; the store's /vertebrae/crop3d,
 * docs/hdf5-schema.md).
 *
 * Why a box and not the whole crop: the crop (64 LR x 256 AP x 256 rows at
 * the straightened spacing, 1 mm by default) holds the target and its
 * neighbours' bodies and much padding; the grader only needs the target's
 * body, which sits on the crop's centre row and in its cross-section's
 * centre (hv_spine_crop_make). 64^3 voxels (64 mm at 1 mm) hold a lumbar
 * body (about 45-50 mm wide, 35 mm deep, 25-30 mm tall) with its endplates
 * and the discs, and keep a 3-D network's input small (4.2 % of the crop's
 * voxels).
 */
#include <math.h>
#include <string.h>

#include "hv/spine.h"

hv_status hv_spine_crop_box(const hv_spine_crop *cr, int side, hv_volume **out)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "crop box: no output");
    *out = NULL;
    if (!cr || !cr->ct) return hv_error_set(HV_ERR_ARG, "crop box: no crop");
    if (side < 1 || side > 1024)
        return hv_error_set(HV_ERR_ARG, "crop box: side %d (1..1024)", side);
    const hv_volume *ct = cr->ct;
    if (ct->dtype != HV_DTYPE_F32)
        return hv_error_set(HV_ERR_ARG, "crop box: the crop's CT is not F32");
    int64_t start[3], dims[3] = {side, side, side};
    for (int d = 0; d < 3; d++) start[d] = ct->dim[d] / 2 - side / 2;
    double aff[4][4];
    memcpy(aff, ct->affine, sizeof aff);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) aff[r][3] += ct->affine[r][c] * (double)start[c];
    hv_volume *b = NULL;
    hv_status st = hv_vol_create(&b, dims, HV_DTYPE_U8, aff);
    if (st != HV_OK) return hv_error_wrap(st, "crop box");
    const float *src = ct->data;
    uint8_t *dst = b->data;
    for (int64_t c = 0; c < side; c++) {
        int64_t k = start[2] + c;
        if (k < 0 || k >= ct->dim[2]) continue;
        for (int64_t bb = 0; bb < side; bb++) {
            int64_t j = start[1] + bb;
            if (j < 0 || j >= ct->dim[1]) continue;
            for (int64_t a = 0; a < side; a++) {
                int64_t i = start[0] + a;
                if (i < 0 || i >= ct->dim[0]) continue;
                float v = src[(k * ct->dim[1] + j) * ct->dim[0] + i];
                dst[(c * side + bb) * side + a] = !(v > 0) ? 0 : v >= 255 ? 255 : (uint8_t)v;
            }
        }
    }
    *out = b;
    return HV_OK;
}
