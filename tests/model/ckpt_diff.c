/*
 * ckpt_diff.c: compare the float datasets of two HDF5 checkpoints
 * (`healthivert train`'s checkpoint.h5), for the rank-count and resume tests
 * (tests/train/test_train_*.sh).
 *
 *   hv_ckpt_diff A.h5 B.h5 TOL
 *
 * Every dataset of A (walked recursively, any layout: weights, Adam moments,
 * batch-norm statistics, spectral-norm vectors) must exist in B with the
 * same shape; the worst difference |a - b| / max(1, |a|) over all values must
 * be <= TOL (0: bitwise equal values). Prints the number of datasets and
 * values compared, the worst difference and where. Exit 0 within TOL, 1
 * otherwise or when A has no dataset (nothing compared is a failure, not a
 * pass). Attributes (metadata: config text, ranks) are not compared. Reads
 * with the plain HDF5 API so it shares no code with the writer.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hid_t b;
    long n_sets, n_vals, n_bad_shape;
    double worst;
    char worst_at[512];
    long long worst_idx;
} walk_ctx;

static int read_all(hid_t f, const char *name, float **out, hsize_t *n, int *rank, hsize_t dims[8])
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    *rank = H5Sget_simple_extent_ndims(s);
    if (*rank < 0 || *rank > 8) {
        H5Sclose(s);
        H5Dclose(d);
        return -1;
    }
    H5Sget_simple_extent_dims(s, dims, NULL);
    *n = 1;
    for (int i = 0; i < *rank; i++) *n *= dims[i];
    *out = malloc((size_t)(*n ? *n : 1) * sizeof(float));
    int rc = *out ? 0 : -1;
    if (!rc && *n && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) rc = -1;
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

static herr_t visit(hid_t a, const char *name, const H5O_info_t *info, void *op)
{
    walk_ctx *c = op;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(a, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(t);
    H5Tclose(t);
    H5Dclose(d);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) return 0; /* strings: not numbers */
    float *x = NULL, *y = NULL;
    hsize_t nx = 0, ny = 0, dx[8], dy[8];
    int rx = 0, ry = 0;
    if (read_all(a, name, &x, &nx, &rx, dx) || read_all(c->b, name, &y, &ny, &ry, dy) || rx != ry ||
        nx != ny || memcmp(dx, dy, (size_t)rx * sizeof *dx)) {
        printf("dataset %s: missing in B or another shape\n", name);
        c->n_bad_shape++;
        free(x);
        free(y);
        return 0;
    }
    c->n_sets++;
    for (hsize_t i = 0; i < nx; i++) {
        double dd = fabs((double)x[i] - (double)y[i]) / fmax(1.0, fabs((double)x[i]));
        if (x[i] != x[i] || y[i] != y[i]) dd = INFINITY; /* NaN anywhere is a difference */
        if (dd > c->worst || (c->n_vals == 0 && i == 0 && dd >= c->worst)) {
            c->worst = dd;
            snprintf(c->worst_at, sizeof c->worst_at, "%s", name);
            c->worst_idx = (long long)i;
        }
    }
    c->n_vals += (long)nx;
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: hv_ckpt_diff A.h5 B.h5 TOL\n");
        return 2;
    }
    double tol = atof(argv[3]);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t a = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t b = H5Fopen(argv[2], H5F_ACC_RDONLY, H5P_DEFAULT);
    if (a < 0 || b < 0) {
        printf("cannot open %s\n", a < 0 ? argv[1] : argv[2]);
        return 1;
    }
    walk_ctx c;
    memset(&c, 0, sizeof c);
    c.b = b;
    H5Ovisit(a, H5_INDEX_NAME, H5_ITER_NATIVE, visit, &c);
    H5Fclose(a);
    H5Fclose(b);
    printf("%ld datasets, %ld values compared; worst relative difference %.3g (%s[%lld]); "
           "tolerance %g\n",
           c.n_sets, c.n_vals, c.worst, c.worst_at, c.worst_idx, tol);
    if (c.n_sets == 0 || c.n_bad_shape > 0) return 1;
    return c.worst <= tol ? 0 : 1;
}
