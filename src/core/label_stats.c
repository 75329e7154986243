/*
 * label_stats.c: per vertebra label, the voxel count, the sums of the voxel
 * indices and the bounding box of a label map, in one pass. `measure`
 * (heights: centroids, truncation, the boxes its later loops scan) and the
 * spine module (centroids, the FOV flag) both start from these numbers; each
 * used to have its own loop.
 *
 * Why this way: the maps are whole CT masks (512 x 512 x 600 is 157 M
 * voxels), almost all background, so the cost is the scan itself:
 *  - the dtype is dispatched once per row, not per voxel, and a background
 *    voxel costs one load and one compare;
 *  - whether a value is a vertebra label comes from a 29-entry table built
 *    once from hv_label_order, not from a call per voxel;
 *  - rows are split over OpenMP threads, each filling its own table, merged
 *    in thread order at the end. The sums are sums of integers held in
 *    doubles, exact below 2^53 (far above any volume that fits in memory),
 *    so the merged numbers are the same for any thread count or split;
 *  - the border flag is not accumulated: a label touches a face of the grid
 *    exactly when its bounding box does.
 */
#include "hv/core.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define NLAB (HV_LABEL_MAX + 1)

/* One thread's tables. */
typedef struct part {
    hv_label_stats st[NLAB];
    size_t ignored;
} part;

static void part_init(part *p)
{
    memset(p, 0, sizeof *p);
    for (int l = 0; l < NLAB; l++)
        for (int a = 0; a < 3; a++) {
            p->st[l].lo[a] = INT64_MAX;
            p->st[l].hi[a] = -1;
        }
}

static inline void add_voxel(hv_label_stats *s, int64_t i, int64_t j, int64_t k)
{
    s->count++;
    s->sum[0] += (double)i;
    s->sum[1] += (double)j;
    s->sum[2] += (double)k;
    if (i < s->lo[0]) s->lo[0] = i;
    if (i > s->hi[0]) s->hi[0] = i;
    if (j < s->lo[1]) s->lo[1] = j;
    if (j > s->hi[1]) s->hi[1] = j;
    if (k < s->lo[2]) s->lo[2] = k;
    if (k > s->hi[2]) s->hi[2] = k;
}

/* The loop over one row of element type T (pointer `row_`). */
#define HV_LS_ROW(T)                                                           \
    do {                                                                       \
        const T *r_ = (const T *)row_;                                         \
        for (int64_t i = 0; i < nx; i++) {                                     \
            long l = (long)r_[i];                                              \
            if (l == 0) continue;                                              \
            if (l < 0 || l > HV_LABEL_MAX || !valid[l]) {                      \
                p->ignored++;                                                  \
                continue;                                                      \
            }                                                                  \
            add_voxel(&p->st[l], i, j, k);                                     \
        }                                                                      \
    } while (0)

hv_status hv_label_stats_collect(const hv_volume *mask, hv_label_stats st[HV_LABEL_MAX + 1],
                                 size_t *ignored)
{
    hv_status status = HV_OK;
    part *parts = NULL;
    if (ignored) *ignored = 0;
    if (!mask || !mask->data || !st)
        return hv_error_set(HV_ERR_ARG, "label statistics: no mask or no output");
    const hv_dtype dt = mask->dtype;
    if (dt != HV_DTYPE_U8 && dt != HV_DTYPE_I16 && dt != HV_DTYPE_U16 && dt != HV_DTYPE_I32)
        return hv_error_set(HV_ERR_ARG, "mask has dtype %s; labels must be an integer type",
                            hv_dtype_name(dt));
    unsigned char valid[NLAB];
    for (int l = 0; l < NLAB; l++) valid[l] = l > 0 && hv_label_order(l) >= 0;
    int nthr = 1;
#ifdef _OPENMP
    nthr = omp_get_max_threads();
    if (nthr < 1) nthr = 1;
#endif
    parts = malloc((size_t)nthr * sizeof *parts);
    if (!parts) {
        status = hv_error_set(HV_ERR_NOMEM, "label statistics: %d thread tables", nthr);
        goto done;
    }
    for (int t = 0; t < nthr; t++) part_init(&parts[t]);
    const int64_t nx = mask->dim[0], ny = mask->dim[1], nz = mask->dim[2];
    const size_t esize = hv_dtype_size(dt);
    const unsigned char *data = mask->data;
#pragma omp parallel num_threads(nthr)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        part *p = &parts[tid];
#pragma omp for collapse(2) schedule(static)
        for (int64_t k = 0; k < nz; k++)
            for (int64_t j = 0; j < ny; j++) {
                const void *row_ = data + esize * hv_vol_idx(mask, 0, j, k);
                switch (dt) {
                case HV_DTYPE_U8:  HV_LS_ROW(uint8_t); break;
                case HV_DTYPE_I16: HV_LS_ROW(int16_t); break;
                case HV_DTYPE_U16: HV_LS_ROW(uint16_t); break;
                case HV_DTYPE_I32: HV_LS_ROW(int32_t); break;
                case HV_DTYPE_F32: break; /* refused above */
                }
            }
    }
    /* merge in thread order (the sums are exact, so any order gives the same) */
    size_t n_ignored = 0;
    for (int l = 0; l < NLAB; l++) {
        hv_label_stats *o = &st[l];
        *o = parts[0].st[l];
        for (int t = 1; t < nthr; t++) {
            const hv_label_stats *s = &parts[t].st[l];
            o->count += s->count;
            for (int a = 0; a < 3; a++) {
                o->sum[a] += s->sum[a];
                if (s->lo[a] < o->lo[a]) o->lo[a] = s->lo[a];
                if (s->hi[a] > o->hi[a]) o->hi[a] = s->hi[a];
            }
        }
    }
    for (int t = 0; t < nthr; t++) n_ignored += parts[t].ignored;
    if (ignored) *ignored = n_ignored;
done:
    free(parts);
    return status;
}

void hv_label_stats_centroid(const hv_label_stats *s, const double A[4][4], double out[3])
{
    const double n = (double)s->count;
    const double ijk[3] = {s->sum[0] / n, s->sum[1] / n, s->sum[2] / n};
    hv_affine_apply(A, ijk, out);
}

int hv_label_stats_on_border(const hv_label_stats *s, const int64_t dim[3])
{
    if (s->count == 0) return 0;
    for (int a = 0; a < 3; a++)
        if (s->lo[a] == 0 || s->hi[a] == dim[a] - 1) return 1;
    return 0;
}
