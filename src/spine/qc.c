/*
 * qc.c: the quality-control views of a vertebra crop. One function picks
 * the two slices every QC picture shows (the runner's stored pictures and
 * `straighten --png` alike): the mid-sagittal slice through the crop's LR
 * centre, and the coronal slice through the target body's AP centre (the
 * crop centres the body vertically, not antero-posteriorly). The picture
 * itself is grey CT with every label's contour, the target's in red, drawn
 * and written by the one drawing module (src/io/draw.c).
 */
#include "spine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"

void hv_spine_qc_slices(const hv_spine_crop *cr, int64_t *sag_i, int64_t *cor_j)
{
    const hv_volume *lab = cr->labels;
    int64_t jc = lab->dim[1] / 2;
    double sj = 0, n = 0;
    const uint8_t *l = lab->data;
    const size_t nx = (size_t)lab->dim[0], ny = (size_t)lab->dim[1], nz = (size_t)lab->dim[2];
    const uint8_t want = (uint8_t)cr->label;
    /* Per image line, the voxels equal to the target counted 8 at a time
     * (this runs on every crop of every case with QC pictures: a byte loop
     * was half of the pictures stage). x = word ^ want-in-every-byte has a
     * zero byte exactly where a voxel matches; ((x & 7f..) + 7f..) | x sets
     * the high bit of every non-zero byte, so the bytes whose high bit stays
     * clear after | 7f.. are exactly the zero ones. */
    const uint64_t ones = 0x0101010101010101ull, low7 = 0x7f7f7f7f7f7f7f7full;
    const uint64_t pat = ones * want;
    for (size_t k = 0; k < nz; k++)
        for (size_t j = 0; j < ny; j++) {
            const uint8_t *row = l + (k * ny + j) * nx;
            size_t c = 0, i = 0;
            for (; i + 8 <= nx; i += 8) {
                uint64_t w;
                memcpy(&w, row + i, 8);
                uint64_t x = w ^ pat;
                uint64_t y = ~(((x & low7) + low7) | x | low7);
                c += (size_t)__builtin_popcountll(y);
            }
            for (; i < nx; i++) c += row[i] == want;
            sj += (double)j * (double)c;
            n += (double)c;
        }
    if (n > 0) jc = (int64_t)lround(sj / n);
    *sag_i = cr->ct->dim[0] / 2;
    *cor_j = jc;
}

uint8_t hv_spine_qc_grey(float v)
{
    return (uint8_t)(v <= 0 ? 0 : (v >= 255 ? 255 : lrintf(v)));
}

hv_status hv_spine_qc_png(const char *path, const hv_spine_crop *cr)
{
    hv_status st = HV_OK;
    float *buf = NULL;
    uint8_t *grey = NULL, *lab = NULL, *img = NULL;
    if (!path || !cr || !cr->ct || !cr->labels) return hv_error_set(HV_ERR_ARG, "qc: missing input");
    int64_t dims[2][2], idx[2];
    hv_spine_qc_slices(cr, &idx[0], &idx[1]);
    hv_spine_slice_dims(cr->ct, HV_SPINE_SAGITTAL, &dims[0][0], &dims[0][1]);
    hv_spine_slice_dims(cr->ct, HV_SPINE_CORONAL, &dims[1][0], &dims[1][1]);
    const int64_t gap = 4, W = dims[0][1] + gap + dims[1][1];
    const int64_t H = dims[0][0] > dims[1][0] ? dims[0][0] : dims[1][0];
    const int64_t most = dims[0][0] * dims[0][1] > dims[1][0] * dims[1][1] ? dims[0][0] * dims[0][1]
                                                                           : dims[1][0] * dims[1][1];
    if (W > 65535 || H > 65535 || most < 1) return hv_error_set(HV_ERR_LIMIT, "qc: crop too large");
    buf = malloc((size_t)most * sizeof *buf);
    grey = malloc((size_t)most);
    lab = malloc((size_t)most);
    img = calloc((size_t)(W * H * 3), 1);
    if (!buf || !grey || !lab || !img) {
        st = hv_error_set(HV_ERR_NOMEM, "qc picture");
        goto done;
    }
    for (int v = 0; v < 2; v++) {
        hv_spine_plane pl = v == 0 ? HV_SPINE_SAGITTAL : HV_SPINE_CORONAL;
        const int64_t rows = dims[v][0], cols = dims[v][1], np = rows * cols;
        if ((st = hv_spine_slice_extract(cr->ct, pl, idx[v], buf)) != HV_OK) goto done;
        for (int64_t q = 0; q < np; q++) grey[q] = hv_spine_qc_grey(buf[q]);
        if ((st = hv_spine_slice_extract(cr->labels, pl, idx[v], buf)) != HV_OK) goto done;
        for (int64_t q = 0; q < np; q++) {
            long l = lrintf(buf[q]);
            lab[q] = (uint8_t)(l < 0 ? 0 : l > 255 ? 255 : l);
        }
        hv_io_paint_contours(img + (v == 0 ? 0 : (size_t)(dims[0][1] + gap) * 3), (int)(W * 3),
                             grey, lab, (int)cols, (int)rows, cr->label);
    }
    st = hv_io_png_write(path, (int)W, (int)H, 3, img);
done:
    free(buf);
    free(grey);
    free(lab);
    free(img);
    return st;
}
