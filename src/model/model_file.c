/*
 * model_file.c: the HDF5 helpers of model_file.h (shape probing and shape
 * strings for the model-file readers' messages). One copy, so the
 * generator's and the classifier's refusals read alike.
 */
#include <stdio.h>

#include "model_file.h"

void hv__model_shape_str(char *buf, size_t len, int nd, const int64_t *sh)
{
    size_t off = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < nd && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? ", " : "", (long long)sh[i]);
    if (off < len) snprintf(buf + off, len - off, "]");
}

int hv__model_probe_shape(hid_t loc, const char *name, int *nd, int64_t sh[HV_NN_MAX_DIMS])
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return 0;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t sp = H5Dget_space(ds);
    int n = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1, rc = -1;
    if (n >= 0 && n <= HV_NN_MAX_DIMS) {
        hsize_t d[HV_NN_MAX_DIMS];
        H5Sget_simple_extent_dims(sp, d, NULL);
        for (int i = 0; i < n; i++) sh[i] = (int64_t)d[i];
        *nd = n;
        rc = 1;
    }
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}
