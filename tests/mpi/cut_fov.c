/*
 * cut_fov.c: cut the top of a case's field of view (test_prepare.sh).
 *
 *   cut_fov FILE.nii.gz ROWS [label]
 *
 * Rewrites FILE keeping voxel slices k < dim[2] - ROWS (the phantom's RAS
 * grids have k increasing superior, so the most cranial vertebra ends up
 * touching the volume border, like a scan cut by its field of view). The
 * affine is unchanged (voxel 0 stays where it was). With `label`, the file
 * is written as a label map (NIFTI_INTENT_LABEL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cut_fov FILE.nii.gz ROWS [label]\n");
        return 2;
    }
    hv_volume *v = NULL, *o = NULL;
    int rows = atoi(argv[2]), rc = 1;
    if (hv_io_nifti_read(argv[1], argc > 3 ? HV_DTYPE_U8 : HV_DTYPE_F32, NULL, &v, NULL) != HV_OK)
        goto fail;
    int64_t dim[3] = {v->dim[0], v->dim[1], v->dim[2] - rows};
    if (rows < 1 || dim[2] < 1) {
        fprintf(stderr, "cut_fov: cannot cut %d of %lld slices\n", rows, (long long)v->dim[2]);
        goto done;
    }
    if (hv_vol_create(&o, dim, v->dtype, v->affine) != HV_OK) goto fail;
    memcpy(o->data, v->data, o->nvox * hv_dtype_size(v->dtype));
    hv_nifti_write_opts wo = {0};
    wo.intent_label = argc > 3;
    if (hv_io_nifti_write(argv[1], o, &wo) != HV_OK) goto fail;
    printf("%s: %lld -> %lld slices\n", argv[1], (long long)v->dim[2], (long long)dim[2]);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "cut_fov: %s\n", hv_error_detail());
done:
    hv_vol_free(v);
    hv_vol_free(o);
    return rc;
}
