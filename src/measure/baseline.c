/*
 * baseline.c: the pseudo-healthy estimate that needs no trained model.
 *
 * A vertebra's healthy heights are predicted from its nearest undeformed
 * neighbours above and below (the two nearest on each side, 1/distance
 * weighted within a side), column by column (anterior from anterior,
 * middle from middle, posterior from posterior, and every point of the height
 * map from the same relative AP/LR position of the neighbour's map), each
 * scaled by the ratio of level size priors (a typical L2 is taller than a
 * typical L1), and interpolated linearly in level distance. Patient size and
 * the individual variation of the neighbours come from the neighbours
 * themselves; the priors only carry the level-to-level trend, so their
 * absolute values barely matter.
 *
 * Which vertebrae may serve as references is decided by iterating: pass 0
 * uses every measurable vertebra; after each pass a vertebra whose predicted
 * loss exceeds `deform_thresh`, or whose own shape (anterior/posterior or
 * middle/edge ratio against the prior's) is off by 8 points more than that,
 * is marked deformed
 * and is no longer a reference. Three passes settle adjacent fractures.
 * With no reference at all, heights come from the level prior scaled by the
 * ratio of the observed body depth to the prior depth (compression does not
 * shorten the AP depth), flagged no_reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"
#include "measure_internal.h"

/* Typical healthy anterior, middle, posterior vertebral body height and AP
 * depth (mm) by level, T1..L5, a rounded summary of adult morphometry series
 * (thoracic bodies are slightly wedge-shaped, lower lumbar ones the other way;
 * the endplates are a little concave, so the middle is lower than the edges). */
static const double prior_tab[][4] = {
    /*        ant   mid   post  depth */
    /* T1  */ {14.0, 13.2, 14.6, 15.5},
    /* T2  */ {15.0, 14.2, 15.8, 16.5},
    /* T3  */ {15.5, 14.7, 16.5, 17.5},
    /* T4  */ {16.0, 15.2, 17.0, 18.5},
    /* T5  */ {16.5, 15.7, 17.6, 19.5},
    /* T6  */ {17.0, 16.2, 18.2, 21.0},
    /* T7  */ {17.6, 16.8, 18.8, 22.5},
    /* T8  */ {18.2, 17.4, 19.4, 24.0},
    /* T9  */ {18.8, 18.0, 20.0, 25.5},
    /* T10 */ {19.8, 19.0, 21.0, 27.0},
    /* T11 */ {21.0, 20.2, 22.2, 28.5},
    /* T12 */ {22.5, 21.6, 23.6, 30.0},
    /* L1  */ {24.5, 23.5, 26.0, 32.0},
    /* L2  */ {25.5, 24.5, 26.8, 33.5},
    /* L3  */ {26.3, 25.2, 26.8, 35.0},
    /* L4  */ {27.0, 25.5, 26.0, 35.5},
    /* L5  */ {27.6, 25.5, 24.5, 35.5},
    /* L6  */ {27.6, 25.5, 24.0, 35.5},
};

hv_status hv_measure_level_prior(int label, double hamp[3], double *depth_mm)
{
    int row;
    if (label >= HV_LABEL_T1 && label <= 25) row = label - HV_LABEL_T1;
    else if (label == 28) row = 19 - HV_LABEL_T1; /* T13: like T12 */
    else return hv_error_set(HV_ERR_NOT_FOUND, "measure: no size prior for label %d", label);
    if (hamp)
        for (int r = 0; r < 3; r++) hamp[r] = prior_tab[row][r];
    if (depth_mm) *depth_mm = prior_tab[row][3];
    return HV_OK;
}

/* Prior height of region r (HV_REG_*) of a label; the "all" region is the mean. */
static double prior_h(int label, int r)
{
    double h[3] = {NAN, NAN, NAN};
    if (hv_measure_level_prior(label, h, NULL) != HV_OK) return NAN;
    if (r == HV_REG_ALL) return (h[0] + h[1] + h[2]) / 3.0;
    return h[r - 1];
}

/* Prior height at a relative AP position fa (0 = front, 1 = back), linear
 * through the centres of the thirds, flat beyond them. */
static double prior_at(int label, double fa)
{
    double h[3] = {NAN, NAN, NAN};
    if (hv_measure_level_prior(label, h, NULL) != HV_OK) return NAN;
    if (fa <= 1.0 / 6.0) return h[0];
    if (fa >= 5.0 / 6.0) return h[2];
    if (fa <= 0.5) return h[0] + (h[1] - h[0]) * (fa - 1.0 / 6.0) * 3.0;
    return h[1] + (h[2] - h[1]) * (fa - 0.5) * 3.0;
}

/* Bilinear lookup of a height map at relative position (fa, fl), ignoring
 * NaN corners (renormalised weights); NaN when every corner is NaN. */
static double map_at(const hv_vert_measure *v, double fa, double fl)
{
    const hv_height_map *m = &v->ori_map;
    if (!m->h || fa < 0 || fa > 1 || fl < 0 || fl > 1) return NAN;
    double front = m->a0 + 0.5 * m->step, llo = m->l0 - 0.5 * m->step;
    double a = front - fa * v->depth_mm, l = llo + fl * v->width_mm;
    double x = (m->a0 - a) / m->step, y = (l - m->l0) / m->step;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > m->na - 1) x = m->na - 1;
    if (y > m->nl - 1) y = m->nl - 1;
    int x0 = (int)floor(x), y0 = (int)floor(y);
    double wx = x - x0, wy = y - y0, acc = 0, wsum = 0;
    for (int c = 0; c < 4; c++) {
        int xi = x0 + (c & 1), yi = y0 + (c >> 1);
        if (xi >= m->na || yi >= m->nl) continue;
        double w = ((c & 1) ? wx : 1 - wx) * ((c >> 1) ? wy : 1 - wy);
        double h = m->h[xi + m->na * yi];
        if (w <= 0 || !isfinite(h)) continue;
        acc += w * h;
        wsum += w;
    }
    return wsum > 0 ? acc / wsum : NAN;
}

static int usable(const hv_vert_measure *v)
{
    if (v->flags & (HV_MEAS_SMALL | HV_MEAS_TRUNCATED | HV_MEAS_EMPTY_REGION)) return 0;
    for (int r = 0; r < HV_REG_COUNT; r++)
        if (!isfinite(v->h_ori[r])) return 0;
    return isfinite(prior_h(v->label, HV_REG_ALL));
}

/* Shape deformity of a vertebra on its own: how far its anterior/posterior
 * and middle/edge ratios fall below the level prior's, as a fraction. */
static double shape_loss(const hv_vert_measure *v)
{
    double p[3];
    if (hv_measure_level_prior(v->label, p, NULL) != HV_OK) return 0;
    double ha = v->h_ori[HV_REG_ANT], hm = v->h_ori[HV_REG_MID], hp = v->h_ori[HV_REG_POST];
    double wedge = 1.0 - (ha / hp) / (p[0] / p[2]);
    double back = 1.0 - (hp / ha) / (p[2] / p[0]);
    double conc = 1.0 - (hm / fmax(ha, hp)) / (p[1] / fmax(p[0], p[2]));
    return fmax(wedge, fmax(back, conc));
}

/* The references of one vertebra: up to `per_side` (at most REF_PER_SIDE)
 * nearest undeformed vertebrae on each side, weighted 1/distance within a
 * side, the two sides interpolated linearly by the nearest distances;
 * weights sum to 1 (n = 0: none). Averaging two per side halves the
 * neighbours' own size variation in the prediction. */
#define REF_PER_SIDE 4
typedef struct refs {
    int n, n_up, n_dn;
    int idx[2 * REF_PER_SIDE];
    double w[2 * REF_PER_SIDE];
} refs;

static refs find_refs(const hv_spine_measure *m, size_t i, const int *is_ref, int max_dist,
                      int per_side)
{
    refs r;
    memset(&r, 0, sizeof r);
    double rank = hv_label_order(m->v[i].label);
    int sel[2][REF_PER_SIDE];
    double dist[2][REF_PER_SIDE];
    int ns[2] = {0, 0};
    if (per_side < 1) per_side = 1;
    if (per_side > REF_PER_SIDE) per_side = REF_PER_SIDE;
    for (int pass = 0; pass < 2 && ns[0] == 0 && ns[1] == 0; pass++) {
        /* insertion into the per-side lists, nearest first */
        for (size_t j = 0; j < m->n; j++) {
            if (j == i || !is_ref[j]) continue;
            double d = hv_label_order(m->v[j].label) - rank;
            if (pass == 0 && fabs(d) > max_dist) continue;
            int side = d < 0 ? 0 : 1;
            double ad = fabs(d);
            int k = ns[side] < per_side ? ns[side]++ : per_side;
            if (k == per_side) {
                if (ad >= dist[side][per_side - 1]) continue;
                k = per_side - 1;
            }
            while (k > 0 && dist[side][k - 1] > ad) {
                dist[side][k] = dist[side][k - 1];
                sel[side][k] = sel[side][k - 1];
                k--;
            }
            dist[side][k] = ad;
            sel[side][k] = (int)j;
        }
    }
    double side_w[2] = {0, 0};
    if (ns[0] && ns[1]) {
        side_w[0] = dist[1][0] / (dist[0][0] + dist[1][0]);
        side_w[1] = dist[0][0] / (dist[0][0] + dist[1][0]);
    } else if (ns[0]) {
        side_w[0] = 1;
    } else if (ns[1]) {
        side_w[1] = 1;
    }
    for (int side = 0; side < 2; side++) {
        double wsum = 0;
        for (int k = 0; k < ns[side]; k++) wsum += 1.0 / dist[side][k];
        for (int k = 0; k < ns[side]; k++) {
            r.idx[r.n] = sel[side][k];
            r.w[r.n] = side_w[side] * (1.0 / dist[side][k]) / wsum;
            r.n++;
        }
    }
    r.n_up = ns[0];
    r.n_dn = ns[1];
    return r;
}

/* Fill h_syn of vertebra i from the references (or the prior). */
static void predict(hv_spine_measure *m, size_t i, const int *is_ref, const hv_measure_opts *o,
                    double size_scale)
{
    hv_vert_measure *v = &m->v[i];
    v->flags &= ~(HV_MEAS_ONE_SIDED | HV_MEAS_NO_REFERENCE | HV_MEAS_NO_SYNTH);
    refs r = find_refs(m, i, is_ref, o->max_ref_distance, o->refs_per_side);
    for (int reg = 0; reg < HV_REG_COUNT; reg++) {
        double ph = prior_h(v->label, reg);
        if (r.n == 0) {
            v->h_syn[reg] = ph * size_scale;
            continue;
        }
        double acc = 0;
        for (int k = 0; k < r.n; k++)
            acc += r.w[k] * m->v[r.idx[k]].h_ori[reg] * ph / prior_h(m->v[r.idx[k]].label, reg);
        v->h_syn[reg] = acc;
    }
    if (r.n == 0) {
        v->flags |= isfinite(size_scale) ? HV_MEAS_NO_REFERENCE : HV_MEAS_NO_SYNTH;
    } else if (r.n_up == 0 || r.n_dn == 0) {
        v->flags |= HV_MEAS_ONE_SIDED;
    }
    if (!isfinite(prior_h(v->label, HV_REG_ALL))) v->flags |= HV_MEAS_NO_SYNTH;
    for (int reg = 0; reg < HV_REG_COUNT; reg++)
        v->rhlv[reg] = hv_measure_rhlv(v->h_syn[reg], v->h_ori[reg]);

    /* pseudo-healthy height map on the vertebra's own grid */
    hv_height_map *sm = &v->syn_map;
    const hv_height_map *om = &v->ori_map;
    if (!om->h || !sm->h) return;
    double front = om->a0 + 0.5 * om->step, llo = om->l0 - 0.5 * om->step;
    for (int il = 0; il < om->nl; il++)
        for (int ia = 0; ia < om->na; ia++) {
            double a = om->a0 - ia * om->step, l = om->l0 + il * om->step;
            double fa = (front - a) / v->depth_mm, fl = (l - llo) / v->width_mm;
            double acc = 0, wsum = 0;
            for (int q = 0; q < r.n; q++) {
                const hv_vert_measure *n = &m->v[r.idx[q]];
                double h = map_at(n, fa, fl);
                if (!isfinite(h) || r.w[q] <= 0) continue;
                acc += r.w[q] * h * prior_at(v->label, fa) / prior_at(n->label, fa);
                wsum += r.w[q];
            }
            sm->h[ia + om->na * il] = wsum > 0 ? (float)(acc / wsum) : NAN;
        }
}

hv_status hv_measure_baseline(hv_spine_measure *m, const hv_measure_opts *opts)
{
    hv_measure_opts o;
    int *is_ref = NULL, *can = NULL;
    hv_status st = HV_OK;
    if (!m) return hv_error_set(HV_ERR_ARG, "baseline: no measurements");
    if (opts) o = *opts;
    else hv_measure_opts_default(&o);
    if (m->n == 0) return hv_error_set(HV_ERR_EMPTY, "baseline: no vertebra");
    is_ref = calloc(m->n, sizeof *is_ref);
    can = calloc(m->n, sizeof *can);
    if (!is_ref || !can) {
        st = hv_error_set(HV_ERR_NOMEM, "baseline: %zu vertebrae", m->n);
        goto done;
    }
    for (size_t i = 0; i < m->n; i++) {
        hv_vert_measure *v = &m->v[i];
        can[i] = usable(v);
        is_ref[i] = can[i];
        v->flags &= ~HV_MEAS_DEFORMED;
        free(v->syn_map.h);
        memset(&v->syn_map, 0, sizeof v->syn_map);
        if (v->ori_map.h) {
            v->syn_map = v->ori_map;
            v->syn_map.mid = NULL;
            v->syn_map.h = malloc(sizeof(float) * (size_t)v->ori_map.na * (size_t)v->ori_map.nl);
            if (!v->syn_map.h) {
                st = hv_error_set(HV_ERR_NOMEM, "baseline: map");
                goto done;
            }
        }
    }
    /* patient size from the AP depth (not shortened by compression) */
    double scales[64];
    int ns = 0;
    for (size_t i = 0; i < m->n && ns < 64; i++) {
        double pd, ph[3];
        if (m->v[i].flags & (HV_MEAS_SMALL | HV_MEAS_TRUNCATED)) continue;
        if (!isfinite(m->v[i].depth_mm)) continue;
        if (hv_measure_level_prior(m->v[i].label, ph, &pd) != HV_OK) continue;
        scales[ns++] = m->v[i].depth_mm / pd;
    }
    double size_scale = NAN;
    if (ns) {
        for (int a = 1; a < ns; a++)
            for (int b = a; b > 0 && scales[b - 1] > scales[b]; b--) {
                double t = scales[b]; scales[b] = scales[b - 1]; scales[b - 1] = t;
            }
        size_scale = (ns & 1) ? scales[ns / 2] : 0.5 * (scales[ns / 2 - 1] + scales[ns / 2]);
    }
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < m->n; i++) predict(m, i, is_ref, &o, size_scale);
        for (size_t i = 0; i < m->n; i++) {
            if (!can[i]) continue;
            const hv_vert_measure *v = &m->v[i];
            double worst = -INFINITY;
            for (int reg = HV_REG_ANT; reg <= HV_REG_POST; reg++)
                if (isfinite(v->rhlv[reg]) && v->rhlv[reg] > worst) worst = v->rhlv[reg];
            /* the shape test is looser: healthy bodies vary more in their
             * own proportions than neighbours do in size */
            int deformed = worst > o.deform_thresh || shape_loss(v) > o.deform_thresh + 0.08;
            is_ref[i] = !deformed;
        }
    }
    for (size_t i = 0; i < m->n; i++)
        if (can[i] && !is_ref[i]) m->v[i].flags |= HV_MEAS_DEFORMED;
done:
    free(is_ref);
    free(can);
    return st;
}
