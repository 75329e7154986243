/*
 * spine_check.h: measurements the spine tests make on straightened volumes.
 * Heights are column counts along k (rows are step mm apart), refined by a
 * least-squares plane over a small window of columns so the estimate is not
 * locked to one column's quantisation.
 */
#ifndef HV_TEST_SPINE_CHECK_H
#define HV_TEST_SPINE_CHECK_H

#include "hv/spine.h"

#include <math.h>

static inline double chk_count(const hv_volume *v, int label, int64_t i, int64_t j)
{
    if (i < 0 || j < 0 || i >= v->dim[0] || j >= v->dim[1]) return 0;
    double n = 0;
    for (int64_t k = 0; k < v->dim[2]; k++)
        n += (int)hv_vol_get(v, hv_vol_idx(v, i, j, k)) == label;
    return n;
}

/* Height (voxels) at fractional column (fi, fj): plane fit over +-hwi
 * columns in LR and +-hwj in AP (heights vary along AP, so keep hwj small). */
static inline double chk_height2(const hv_volume *v, int label, double fi, double fj, int hwi, int hwj)
{
    double S[3][3] = {{0}}, b[3] = {0};
    int64_t i0 = (int64_t)lround(fi), j0 = (int64_t)lround(fj);
    for (int64_t i = i0 - hwi; i <= i0 + hwi; i++)
        for (int64_t j = j0 - hwj; j <= j0 + hwj; j++) {
            double c = chk_count(v, label, i, j);
            if (c <= 0) continue;
            double x[3] = {1, (double)i - fi, (double)j - fj};
            for (int a = 0; a < 3; a++) {
                b[a] += x[a] * c;
                for (int q = 0; q < 3; q++) S[a][q] += x[a] * x[q];
            }
        }
    /* solve S x = b (3x3, Cramer) */
    double det = S[0][0] * (S[1][1] * S[2][2] - S[1][2] * S[2][1])
               - S[0][1] * (S[1][0] * S[2][2] - S[1][2] * S[2][0])
               + S[0][2] * (S[1][0] * S[2][1] - S[1][1] * S[2][0]);
    if (fabs(det) < 1e-9) return chk_count(v, label, i0, j0);
    double d0 = b[0] * (S[1][1] * S[2][2] - S[1][2] * S[2][1])
              - S[0][1] * (b[1] * S[2][2] - S[1][2] * b[2])
              + S[0][2] * (b[1] * S[2][1] - S[1][1] * b[2]);
    return d0 / det;
}

static inline double chk_height(const hv_volume *v, int label, double fi, double fj, int hw)
{
    return chk_height2(v, label, fi, fj, hw, hw);
}

/* Carry the straightened labels back onto `mask`'s grid and return, per
 * label present in `mask`, the worst fraction of its voxels that come back
 * with their label. With `bodies` the straightened volume is the de-pedicled
 * one and only the source voxels that lie in front of that label's
 * de-pedicle cut (its most posterior remaining AP index, plus one voxel of
 * margin for the cut plane's own rounding) count: the body's voxels.
 * A label of `mask` that is missing from `straight` altogether scores 0
 * (all of its voxels inside the straightened extent count as lost): before,
 * bodies mode skipped it, so losing a whole vertebra did not lower the
 * score. */
static inline double chk_carry_back(const hv_spine_map *m, const hv_volume *straight,
                                    const hv_volume *mask, int bodies, int *worst_label)
{
    hv_volume *back = NULL;
    double worst = 1.0;
    *worst_label = 0;
    if (hv_spine_unstraighten_labels(m, straight, mask, &back) != HV_OK) return 0.0;
    int64_t minj[256];
    for (int l = 0; l < 256; l++) minj[l] = INT64_MAX;
    for (int64_t k = 0; k < straight->dim[2]; k++)
        for (int64_t j = 0; j < straight->dim[1]; j++)
            for (int64_t i = 0; i < straight->dim[0]; i++) {
                int l = (int)hv_vol_get(straight, hv_vol_idx(straight, i, j, k));
                if (l > 0 && l < 256 && j < minj[l]) minj[l] = j;
            }
    double tot[256] = {0}, ok[256] = {0};
    for (int64_t k = 0; k < mask->dim[2]; k++)
        for (int64_t j = 0; j < mask->dim[1]; j++)
            for (int64_t i = 0; i < mask->dim[0]; i++) {
                size_t n = hv_vol_idx(mask, i, j, k);
                int l = (int)hv_vol_get(mask, n);
                if (l <= 0 || l > 255) continue;
                if (bodies) {
                    double v[3] = {(double)i, (double)j, (double)k}, w[3], ijk[3];
                    hv_affine_apply(mask->affine, v, w);
                    hv_spine_map_from_world(m, w, -1, ijk);
                    if (minj[l] != INT64_MAX && ijk[1] < (double)minj[l] + 1.0) continue;
                    if (fabs(ijk[0] - m->ci) > m->ci - 1 || ijk[2] < 0 || ijk[2] > (double)(m->n - 1)) continue;
                }
                tot[l] += 1;
                ok[l] += (int)hv_vol_get(back, n) == l;
            }
    for (int l = 1; l < 256; l++)
        if (tot[l] > 0 && ok[l] / tot[l] < worst) {
            worst = ok[l] / tot[l];
            *worst_label = l;
        }
    hv_vol_free(back);
    return worst;
}

#endif
