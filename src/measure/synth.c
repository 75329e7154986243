/*
 * synth.c: a pseudo-healthy label map from the baseline's height maps.
 *
 * The baseline predicts a healthy height for every ray of a vertebra's height
 * map (AP x LR). Drawing it back into the mask only needs, per ray, where the
 * original column sits along the axis (its centre, kept by the measurement)
 * and the two heights: each column is stretched or shrunk to the healthy
 * height. Which endplate moves is decided once per vertebra from the gaps to
 * the neighbours along the axis: the collapsed side has the larger gap (disc
 * plus lost height), so that endplate moves and the intact one stays;
 * symmetric about the old centre when a neighbour is not in view. This is the cheap counterpart of the reference's
 * synthesized label crop: it keeps the grid of the input (any orientation and
 * spacing), leaves neighbours and posterior elements alone (only background
 * and the vertebra's own voxels change), and gives 3-D Dice/IoU/volume
 * comparisons something to compare.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"

hv_status hv_measure_synth_mask(const hv_volume *mask, const hv_spine_measure *m, int label,
                                hv_volume **out)
{
    const hv_vert_measure *v = NULL;
    hv_volume *o = NULL;
    hv_status st;
    double inv[4][4];
    if (!mask || !m || !out) return hv_error_set(HV_ERR_ARG, "synth mask: NULL argument");
    *out = NULL;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].label == label) v = &m->v[i];
    if (!v) return hv_error_set(HV_ERR_NOT_FOUND, "synth mask: label %d was not measured", label);
    const hv_height_map *om = &v->ori_map, *sm = &v->syn_map;
    if (!om->h || !om->mid || !sm->h || sm->na != om->na || sm->nl != om->nl)
        return hv_error_set(HV_ERR_EMPTY, "synth mask: label %d has no height maps", label);
    st = hv_affine_invert(mask->affine, inv);
    if (st != HV_OK) return st;
    st = hv_vol_clone(mask, &o);
    if (st != HV_OK) return st;

    /* One decision per vertebra: which endplate to keep. Along the axis from
     * the top and the bottom of the central columns, the distance to the next
     * other label (the neighbour) is the disc plus, on the collapsed side, the
     * lost height; the side with the smaller gap is intact and kept (+1 keeps
     * the inferior endplate, -1 the superior). 0 keeps each column symmetric
     * (no neighbour seen on one side). */
    int keep = 0;
    {
        double gsum[2] = {0, 0};
        int gn[2] = {0, 0};
        double step = 0.25 * fmin(mask->spacing[0], fmin(mask->spacing[1], mask->spacing[2]));
        for (int il = om->nl / 4; il < om->nl - om->nl / 4; il++)
            for (int ia = om->na / 4; ia < om->na - om->na / 4; ia++) {
                size_t q = (size_t)ia + (size_t)om->na * (size_t)il;
                if (!isfinite(om->mid[q]) || !isfinite(om->h[q])) continue;
                double a = om->a0 - ia * om->step, l = om->l0 + il * om->step;
                for (int side = 0; side < 2; side++) {
                    double sgn = side ? -1.0 : 1.0, u0 = om->mid[q] + sgn * 0.5 * om->h[q];
                    for (double t = 0; t <= 30.0; t += step) {
                        double p[3], vx[3];
                        for (int k = 0; k < 3; k++)
                            p[k] = v->centroid[k] + a * v->ant[k] + l * v->lat[k] +
                                   (u0 + sgn * t) * v->axis[k];
                        hv_affine_apply(inv, p, vx);
                        int64_t ix = (int64_t)floor(vx[0] + 0.5), iy = (int64_t)floor(vx[1] + 0.5),
                                iz = (int64_t)floor(vx[2] + 0.5);
                        if (ix < 0 || iy < 0 || iz < 0 || ix >= mask->dim[0] ||
                            iy >= mask->dim[1] || iz >= mask->dim[2])
                            break;
                        double lab = hv_vol_get(mask, hv_vol_idx(mask, ix, iy, iz));
                        if (lab != 0.0 && lab != (double)label) {
                            gsum[side] += t;
                            gn[side]++;
                            break;
                        }
                    }
                }
            }
        if (gn[0] && gn[1]) keep = gsum[1] / gn[1] <= gsum[0] / gn[0] ? 1 : -1;
    }

    /* extent along the axis needed by the new columns */
    double umax = 0;
    for (int q = 0; q < om->na * om->nl; q++) {
        if (!isfinite(om->mid[q]) || !isfinite(sm->h[q])) continue;
        double e = fabs(om->mid[q]) + 0.5 * fmax(sm->h[q], isfinite(om->h[q]) ? om->h[q] : 0);
        if (e > umax) umax = e;
    }
    umax += 1.0;
    double smax = fmax(mask->spacing[0], fmax(mask->spacing[1], mask->spacing[2]));
    /* voxel bounding box of the footprint x [-umax, umax] */
    double alo = om->a0 - (om->na - 0.5) * om->step, ahi = om->a0 + 0.5 * om->step;
    double llo = om->l0 - 0.5 * om->step, lhi = om->l0 + (om->nl - 0.5) * om->step;
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int c = 0; c < 8; c++) {
        double a = (c & 1) ? ahi : alo, l = (c & 2) ? lhi : llo, u = (c & 4) ? umax : -umax;
        double p[3], vx[3];
        for (int k = 0; k < 3; k++) p[k] = v->centroid[k] + a * v->ant[k] + l * v->lat[k] + u * v->axis[k];
        hv_affine_apply(inv, p, vx);
        for (int k = 0; k < 3; k++) {
            if (vx[k] < lo[k]) lo[k] = vx[k];
            if (vx[k] > hi[k]) hi[k] = vx[k];
        }
    }
    int64_t b0[3], b1[3];
    for (int k = 0; k < 3; k++) {
        b0[k] = (int64_t)floor(lo[k]) - 1;
        b1[k] = (int64_t)ceil(hi[k]) + 1;
        if (b0[k] < 0) b0[k] = 0;
        if (b1[k] > mask->dim[k] - 1) b1[k] = mask->dim[k] - 1;
    }
    for (int64_t k = b0[2]; k <= b1[2]; k++)
        for (int64_t j = b0[1]; j <= b1[1]; j++)
            for (int64_t i = b0[0]; i <= b1[0]; i++) {
                size_t idx = hv_vol_idx(mask, i, j, k);
                double lab = hv_vol_get(mask, idx);
                if (lab != 0.0 && lab != (double)label) continue;
                double vx[3] = {(double)i, (double)j, (double)k}, p[3], d[3];
                hv_affine_apply(mask->affine, vx, p);
                for (int c = 0; c < 3; c++) d[c] = p[c] - v->centroid[c];
                double a = d[0] * v->ant[0] + d[1] * v->ant[1] + d[2] * v->ant[2];
                double l = d[0] * v->lat[0] + d[1] * v->lat[1] + d[2] * v->lat[2];
                double u = d[0] * v->axis[0] + d[1] * v->axis[1] + d[2] * v->axis[2];
                long ia = lround((om->a0 - a) / om->step), il = lround((l - om->l0) / om->step);
                if (ia < 0 || il < 0 || ia >= om->na || il >= om->nl) continue;
                size_t q = (size_t)ia + (size_t)om->na * (size_t)il;
                if (!isfinite(om->mid[q]) || !isfinite(sm->h[q])) continue;
                double ho = isfinite(om->h[q]) ? om->h[q] : 0, hs = sm->h[q];
                double nlo = om->mid[q] - 0.5 * hs, nhi = om->mid[q] + 0.5 * hs;
                if (keep && ho > 0) {
                    double bot = om->mid[q] - 0.5 * ho, top = om->mid[q] + 0.5 * ho;
                    nlo = keep > 0 ? bot : top - hs;
                    nhi = keep > 0 ? bot + hs : top;
                }
                int inside = u >= nlo && u <= nhi;
                if (inside) hv_vol_set(o, idx, (double)label);
                else if (lab == (double)label && isfinite(om->h[q]) &&
                         fabs(u - om->mid[q]) <= 0.5 * om->h[q] + 0.5 * smax)
                    hv_vol_set(o, idx, 0.0); /* the old column, not parts above/below it */
            }
    *out = o;
    return HV_OK;
}
