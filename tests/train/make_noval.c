/*
 * make_noval.c: a training file with an empty val split, for the bad-input
 * test: copies IN to OUT (byte for byte) and rewrites OUT's /split dataset
 * (u8, hv_model_split) with every val item moved to the test split. Plain
 * HDF5 calls: it does not go through the code under test.
 *
 *   hv_make_noval IN.h5 OUT.h5
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hv_make_noval IN.h5 OUT.h5\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) {
        fprintf(stderr, "cannot open %s\n", in ? argv[2] : argv[1]);
        return 1;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) return 1;
    fclose(in);
    if (fclose(out)) return 1;
    hid_t f = H5Fopen(argv[2], H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f < 0 ? -1 : H5Dopen2(f, "/split", H5P_DEFAULT);
    if (d < 0) {
        fprintf(stderr, "%s: no /split dataset\n", argv[2]);
        return 1;
    }
    hid_t s = H5Dget_space(d);
    hssize_t cnt = H5Sget_simple_extent_npoints(s);
    unsigned char *v = malloc(cnt > 0 ? (size_t)cnt : 1);
    if (!v || H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) return 1;
    long moved = 0, train = 0;
    for (hssize_t i = 0; i < cnt; i++) {
        if (v[i] == 1) v[i] = 2, moved++; /* val -> test */
        train += v[i] == 0;
    }
    if (H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) return 1;
    free(v);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    printf("%s: %lld items, %ld moved from val to test, %ld train\n", argv[2], (long long)cnt,
           moved, train);
    return moved > 0 && train > 0 ? 0 : 1;
}
