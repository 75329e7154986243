/*
 * make_faults.c: damage a phantom cohort for the fault test (test_faults.sh).
 *
 *   make_faults COHORT_DIR
 *
 * ph0001: CT .nii.gz cut to half its length (a torn download);
 * ph0002: mask deleted; ph0003: mask with every label erased (empty);
 * ph0004: mask keeping one vertebra only (L1). Prints what it did.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/io.h"

static int rewrite_mask(const char *path, int keep_label)
{
    hv_volume *m = NULL;
    if (hv_io_nifti_read(path, HV_DTYPE_U8, NULL, &m, NULL) != HV_OK) {
        fprintf(stderr, "make_faults: %s\n", hv_error_detail());
        return 1;
    }
    unsigned char *d = m->data;
    size_t kept = 0;
    for (size_t i = 0; i < m->nvox; i++) {
        if (d[i] != keep_label) d[i] = 0;
        else kept++;
    }
    hv_nifti_write_opts o = {0};
    o.intent_label = 1;
    hv_status st = hv_io_nifti_write(path, m, &o);
    hv_vol_free(m);
    if (st != HV_OK) {
        fprintf(stderr, "make_faults: %s\n", hv_error_detail());
        return 1;
    }
    printf("%s: kept %zu voxels of label %d\n", path, kept, keep_label);
    return keep_label > 0 && kept == 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_faults COHORT_DIR\n");
        return 2;
    }
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/raw/ph0001/ph0001.nii.gz", argv[1]);
    if (stat(p, &sb) != 0 || truncate(p, sb.st_size / 2) != 0) {
        perror(p);
        return 1;
    }
    printf("%s: cut to %lld bytes\n", p, (long long)(sb.st_size / 2));
    snprintf(p, sizeof p, "%s/raw/ph0002/ph0002_msk.nii.gz", argv[1]);
    if (unlink(p) != 0) {
        perror(p);
        return 1;
    }
    printf("%s: deleted\n", p);
    snprintf(p, sizeof p, "%s/raw/ph0003/ph0003_msk.nii.gz", argv[1]);
    if (rewrite_mask(p, 0)) return 1;
    snprintf(p, sizeof p, "%s/raw/ph0004/ph0004_msk.nii.gz", argv[1]);
    if (rewrite_mask(p, 20)) return 1;
    return 0;
}
