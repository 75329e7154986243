/*
 * measure_internal.h: helpers shared by the files of src/measure (not API).
 *
 * hv_mgrid is a compact uint8 copy of a label map with its affine and the
 * inverse, so the ray marcher reads one byte per corner whatever the mask's
 * dtype was on disk.
 */
#ifndef HV_MEASURE_INTERNAL_H
#define HV_MEASURE_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "hv/measure.h"

typedef struct hv_mgrid {
    uint8_t *lab;          /* owned; VerSe labels 1..28, 0 elsewhere */
    int64_t dim[3];
    double A[4][4], inv[4][4];
    double min_spacing, max_spacing;
} hv_mgrid;

hv_status hv_measure_grid_make(const hv_volume *mask, hv_mgrid *g);
void hv_measure_grid_free(hv_mgrid *g);

/* Robust pooling of ray heights: median, then mean of the values within
 * max(1.5 mm, 10 %) of it; NaN when no finite value. n <= 64 used. */
double hv_measure_pool(const double *h, int n);

#endif /* HV_MEASURE_INTERNAL_H */
