/*
 * ph_util.h: helpers shared by the phantom tests: height measurement on a
 * label volume by ray-marching along a vertebra's axis, and small grid tools.
 *
 * The measurement is deliberately independent of the phantom's code: it
 * only uses the public ground truth (centre, axis, anterior, depth) to place
 * the rays and reads labels from the mask by nearest voxel, like a user's
 * measurement tool would.
 */
#ifndef PH_UTIL_H
#define PH_UTIL_H

#include <math.h>
#include <stdlib.h>

#include "hv/core.h"
#include "hv/phantom.h"

/* Label of the voxel nearest to world point p (0 outside the grid). */
static inline int ph_label_at(const hv_volume *mk, const double inv[4][4], const double p[3])
{
    double q[3];
    hv_affine_apply(inv, p, q);
    int64_t ix[3];
    for (int a = 0; a < 3; a++) {
        ix[a] = (int64_t)floor(q[a] + 0.5);
        if (ix[a] < 0 || ix[a] >= mk->dim[a]) return 0;
    }
    return ((const uint8_t *)mk->data)[hv_vol_idx(mk, ix[0], ix[1], ix[2])];
}

/* Offsets (mm along `anterior`) of the anterior, middle and posterior points. */
static inline double ph_point_offset(const hv_phantom_vert *v, int k)
{
    return k == 0 ? v->depth_mm / 3.0 : k == 1 ? 0.0 : -v->depth_mm / 3.0;
}

/* Height of vertebra v at point k (0 ant, 1 mid, 2 post) measured on the mask:
 * the longest run of v's label along the line through the point parallel to
 * the axis, within +-0.8 healthy heights of the centre, sampled every `step`
 * mm. */
static inline double ph_ray_height(const hv_volume *mk, const double inv[4][4], const hv_phantom_vert *v, int k,
                                   double step)
{
    double off = ph_point_offset(v, k);
    double reach = 0.8 * v->healthy_mm[k];
    long n = (long)ceil(2.0 * reach / step);
    long best = 0, run = 0;
    for (long i = 0; i <= n; i++) {
        double t = -reach + (double)i * step, p[3];
        for (int a = 0; a < 3; a++) p[a] = v->center[a] + off * v->anterior[a] + t * v->axis[a];
        if (ph_label_at(mk, inv, p) == v->label) {
            run++;
            if (run > best) best = run;
        } else {
            run = 0;
        }
    }
    return (double)best * step;
}

/* Half-voxel extent of the grid along unit direction d: sum_i |d . col_i| / 2,
 * i.e. how far a voxel centre can sit from a point along d. */
static inline double ph_half_voxel_along(const hv_volume *vol, const double d[3])
{
    double s = 0.0;
    for (int c = 0; c < 3; c++) {
        double t = 0.0;
        for (int r = 0; r < 3; r++) t += d[r] * vol->affine[r][c];
        s += fabs(t);
    }
    return 0.5 * s;
}

#endif
