/*
 * heights.c: robust vertebral heights on a label map, in world millimetres.
 *
 * Why this way: the reference counts voxels along an array axis of a
 * straightened crop, which ties its numbers to 1 mm voxels, to the
 * straightening and to the crop's axis conventions. Here every vertebra gets
 * its own local frame in world space, so the same anatomy gives the same
 * heights in any orientation and spacing, with no resampling:
 *
 *  1. one pass over the mask collects, per label, the voxel count, world
 *     centroid and bounding box (truncated = touches the field of view edge;
 *     hv_label_stats_collect, shared with the spine module);
 *  2. the local spine axis is the line through the neighbouring vertebrae's
 *     centroids (as TotalSegmentator does), from one neighbour at the ends,
 *     and from a PCA of the body when there is no neighbour;
 *  3. anterior = the world A direction projected perpendicular to the axis;
 *     the body is separated from the posterior elements at the first gap (the
 *     spinal canal) on the mid-sagittal line, going back from the front; when
 *     posterior elements exist, anterior is refined to point from the whole
 *     vertebra's centroid to the body's (this follows axial rotation);
 *  4. heights are ray-marched along the axis through a trilinear indicator of
 *     the label (its 0.5 level is the partial-volume boundary), endpoints
 *     interpolated between samples (sub-voxel); anterior, middle and posterior
 *     are the centres of the AP thirds, each pooled over parasagittal rays
 *     with outlier rejection (median, then mean of the rays close to it);
 *  5. a height map over the body's axial footprint feeds the height-loss map.
 * A region with no valid ray is NaN with a flag, never zero. An option
 * (totalseg_compat) evaluates the same rays at TotalSegmentator's spine-report
 * points and plane choice, only to compare our numbers with its numbers.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"
#include "hv/spine.h"
#include "measure_internal.h"

#define MAXLAB (HV_LABEL_MAX + 1) /* per-label tables, indexed by VerSe label */

void hv_measure_opts_default(hv_measure_opts *o)
{
    memset(o, 0, sizeof *o);
    o->min_volume_ml = 3.0;
    o->n_lateral_rays = 5;
    o->lateral_frac = 0.12;
    o->map_step_mm = 1.0;
    o->deform_thresh = 0.12;
    o->max_ref_distance = 3;
    o->refs_per_side = 2;
    o->centroids = NULL;
}

char *hv_measure_flags_str(unsigned flags, char *buf, size_t cap)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {HV_MEAS_TRUNCATED, "truncated"},     {HV_MEAS_SMALL, "small"},
        {HV_MEAS_EMPTY_REGION, "empty_region"}, {HV_MEAS_AXIS_PCA, "axis_pca"},
        {HV_MEAS_ONE_NEIGHBOUR, "one_neighbour"}, {HV_MEAS_DEFORMED, "deformed"},
        {HV_MEAS_ONE_SIDED, "one_sided"},     {HV_MEAS_NO_REFERENCE, "no_reference"},
        {HV_MEAS_NO_SYNTH, "no_synth"},       {HV_MEAS_SYNTH_FALLBACK, "synth_fallback"},
    };
    if (!buf || cap == 0) return buf;
    buf[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & names[i].bit)) continue;
        int w = snprintf(buf + len, cap - len, "%s%s", len ? "|" : "", names[i].name);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
    }
    return buf;
}

double hv_measure_rhlv(double h_syn, double h_ori)
{
    if (!isfinite(h_syn) || !isfinite(h_ori) || h_syn <= 0.0) return NAN;
    return (h_syn - h_ori) / h_syn;
}

/* ------------------------------------------------------------ geometry */

static double dot3(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static double norm3(const double a[3]) { return sqrt(dot3(a, a)); }

static int normalize3(double a[3])
{
    double n = norm3(a);
    if (!(n > 1e-12)) return 0;
    a[0] /= n; a[1] /= n; a[2] /= n;
    return 1;
}

static void cross3(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

/* v minus its component along unit axis u. */
static void perp3(const double v[3], const double u[3], double out[3])
{
    double d = dot3(v, u);
    for (int i = 0; i < 3; i++) out[i] = v[i] - d * u[i];
}

/* Sampling context for one label. */
typedef struct sampler {
    const hv_mgrid *g;
    int label;
    int cut_on;            /* zero every point with (p - cut_o).cut_n < cut_a */
    double cut_o[3], cut_n[3], cut_a;
} sampler;

static int lab_at(const hv_mgrid *g, int64_t i, int64_t j, int64_t k)
{
    if (i < 0 || j < 0 || k < 0 || i >= g->dim[0] || j >= g->dim[1] || k >= g->dim[2]) return 0;
    return g->lab[(size_t)i + (size_t)g->dim[0] * ((size_t)j + (size_t)g->dim[1] * (size_t)k)];
}

static int cut_out(const sampler *s, const double p[3])
{
    if (!s->cut_on) return 0;
    double d[3] = {p[0] - s->cut_o[0], p[1] - s->cut_o[1], p[2] - s->cut_o[2]};
    return dot3(d, s->cut_n) < s->cut_a;
}

/* Trilinear indicator of the label at world point p (0 outside the grid). */
static double sample_lin(const sampler *s, const double p[3])
{
    if (cut_out(s, p)) return 0.0;
    double v[3];
    hv_affine_apply(s->g->inv, p, v);
    if (!(fabs(v[0]) < 1e9 && fabs(v[1]) < 1e9 && fabs(v[2]) < 1e9)) return 0.0;
    double fl[3], w[3];
    int64_t b[3];
    for (int a = 0; a < 3; a++) {
        fl[a] = floor(v[a]);
        b[a] = (int64_t)fl[a];
        w[a] = v[a] - fl[a];
    }
    double acc = 0.0;
    for (int c = 0; c < 8; c++) {
        int di = c & 1, dj = (c >> 1) & 1, dk = (c >> 2) & 1;
        double wt = (di ? w[0] : 1 - w[0]) * (dj ? w[1] : 1 - w[1]) * (dk ? w[2] : 1 - w[2]);
        if (wt == 0.0) continue;
        if (lab_at(s->g, b[0] + di, b[1] + dj, b[2] + dk) == s->label) acc += wt;
    }
    return acc;
}

/* Nearest-voxel membership at world point p. */
static int sample_near(const sampler *s, const double p[3])
{
    if (cut_out(s, p)) return 0;
    double v[3];
    hv_affine_apply(s->g->inv, p, v);
    if (!(fabs(v[0]) < 1e9 && fabs(v[1]) < 1e9 && fabs(v[2]) < 1e9)) return 0;
    return lab_at(s->g, (int64_t)floor(v[0] + 0.5), (int64_t)floor(v[1] + 0.5),
                  (int64_t)floor(v[2] + 0.5)) == s->label;
}

/* March p0 + t*dir for t in [-tmax, tmax]; find the inside run (indicator >=
 * 0.5) that contains t = 0, else the longest one. Endpoints are interpolated
 * linearly between samples. Returns 1 and sets *lo, *hi when a run exists. */
static int ray_run(const sampler *s, const double p0[3], const double dir[3],
                   double tmax, double step, double *lo, double *hi)
{
    int n = (int)ceil(2.0 * tmax / step) + 1;
    double best_lo = 0, best_hi = 0, best_len = -1;
    int have_zero = 0;
    double prev_t = 0, prev_f = 0;
    int inside = 0;
    double run_lo = 0;
    for (int k = 0; k < n; k++) {
        double t = -tmax + k * step;
        double p[3] = {p0[0] + t * dir[0], p0[1] + t * dir[1], p0[2] + t * dir[2]};
        double f = sample_lin(s, p);
        int in = f >= 0.5;
        if (in && !inside) {
            run_lo = (k == 0) ? t : prev_t + (0.5 - prev_f) / (f - prev_f) * step;
            inside = 1;
        } else if (!in && inside) {
            double run_hi = prev_t + (prev_f - 0.5) / (prev_f - f) * step;
            inside = 0;
            int contains = run_lo <= 0.0 && run_hi >= 0.0;
            if (!have_zero && (contains || run_hi - run_lo > best_len)) {
                best_lo = run_lo; best_hi = run_hi; best_len = run_hi - run_lo;
                have_zero = contains;
            }
        }
        prev_t = t;
        prev_f = f;
    }
    if (inside) {
        double run_hi = prev_t;
        int contains = run_lo <= 0.0 && run_hi >= 0.0;
        if (!have_zero && (contains || run_hi - run_lo > best_len)) {
            best_lo = run_lo; best_hi = run_hi; best_len = run_hi - run_lo;
        }
    }
    if (best_len < 0) return 0;
    *lo = best_lo;
    *hi = best_hi;
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of the values, then the mean of those within max(1.5 mm, 10 %) of it:
 * one bad ray (a notch, a segmentation spur) cannot move the result. */
double hv_measure_pool(const double *h, int n)
{
    double tmp[64];
    int m = 0;
    for (int i = 0; i < n && m < 64; i++)
        if (isfinite(h[i])) tmp[m++] = h[i];
    if (m == 0) return NAN;
    qsort(tmp, (size_t)m, sizeof tmp[0], cmp_double);
    double med = (m & 1) ? tmp[m / 2] : 0.5 * (tmp[m / 2 - 1] + tmp[m / 2]);
    double tol = fmax(1.5, 0.10 * med), sum = 0;
    int k = 0;
    for (int i = 0; i < m; i++)
        if (fabs(tmp[i] - med) <= tol) { sum += tmp[i]; k++; }
    return k ? sum / k : med;
}

hv_status hv_measure_grid_make(const hv_volume *mask, hv_mgrid *g)
{
    memset(g, 0, sizeof *g);
    if (!mask || !mask->data) return hv_error_set(HV_ERR_ARG, "measure: no mask");
    if (mask->dtype == HV_DTYPE_F32)
        return hv_error_set(HV_ERR_ARG, "measure: the mask must have an integer dtype");
    for (int a = 0; a < 3; a++) g->dim[a] = mask->dim[a];
    memcpy(g->A, mask->affine, sizeof g->A);
    hv_status st = hv_affine_invert(mask->affine, g->inv);
    if (st != HV_OK) return hv_error_wrap(st, "measure: mask affine");
    g->lab = malloc(mask->nvox ? mask->nvox : 1);
    if (!g->lab) return hv_error_set(HV_ERR_NOMEM, "measure: %zu voxels", mask->nvox);
    size_t ignored = 0;
    for (size_t i = 0; i < mask->nvox; i++) {
        double v = hv_vol_get(mask, i);
        int l = (int)v;
        if (l >= 1 && l <= 28 && hv_label_order(l) >= 0) {
            g->lab[i] = (uint8_t)l;
        } else {
            g->lab[i] = 0;
            if (v != 0.0) ignored++;
        }
    }
    if (ignored)
        hv_log_warn("measure: %zu voxels with values that are not vertebra labels ignored", ignored);
    g->min_spacing = fmin(mask->spacing[0], fmin(mask->spacing[1], mask->spacing[2]));
    g->max_spacing = fmax(mask->spacing[0], fmax(mask->spacing[1], mask->spacing[2]));
    return HV_OK;
}

void hv_measure_grid_free(hv_mgrid *g)
{
    if (!g) return;
    free(g->lab);
    g->lab = NULL;
}

/* ------------------------------------------------------ body separation */

/* On the mid-sagittal line through `o` (along ant, sampled along axis), find
 * the first gap behind the front of the label: the spinal canal. Returns the
 * cut position along ant (relative to o), or -INFINITY when there is no gap
 * with label behind it (a body-only mask). */
static double find_canal_cut(const sampler *s, const double o[3], const double axis[3],
                             const double ant[3], double gap_min)
{
    const double amax = 70.0, da = 0.5, umax = 35.0;
    double du = fmax(0.25, 0.5 * s->g->min_spacing);
    int na = (int)(2 * amax / da) + 1, nu = (int)(2 * umax / du) + 1;
    unsigned char occ[400];
    if (na > 400) na = 400;
    for (int ia = 0; ia < na; ia++) {
        double a = amax - ia * da; /* front to back */
        occ[ia] = 0;
        for (int iu = 0; iu < nu && !occ[ia]; iu++) {
            double u = -umax + iu * du;
            double p[3];
            for (int c = 0; c < 3; c++) p[c] = o[c] + a * ant[c] + u * axis[c];
            occ[ia] = (unsigned char)sample_near(s, p);
        }
    }
    int ia = 0;
    while (ia < na && !occ[ia]) ia++;       /* front surface */
    while (ia < na && occ[ia]) ia++;        /* through the body */
    int gap_start = ia;
    while (ia < na) {
        int g0 = ia;
        while (ia < na && !occ[ia]) ia++;
        if (ia >= na) return -INFINITY;     /* nothing behind: no posterior elements */
        if ((ia - g0) * da >= gap_min) return amax - gap_start * da;
        /* a short gap (noise): keep scanning behind it */
        while (ia < na && occ[ia]) ia++;
        gap_start = ia;
    }
    return -INFINITY;
}

/* Body voxels' centroid (world) and count, keeping voxels whose position
 * along ant relative to o is >= cut (all voxels when cut = -inf). Optionally
 * the 3x3 scatter matrix for PCA. */
static size_t body_centroid(const hv_mgrid *g, int label, const hv_label_stats *st,
                            const double o[3], const double ant[3], double cut,
                            double c[3], double scatter[3][3])
{
    double sum[3] = {0, 0, 0}, ss[3][3] = {{0}};
    size_t n = 0;
    for (int64_t k = st->lo[2]; k <= st->hi[2]; k++)
        for (int64_t j = st->lo[1]; j <= st->hi[1]; j++)
            for (int64_t i = st->lo[0]; i <= st->hi[0]; i++) {
                if (lab_at(g, i, j, k) != label) continue;
                double v[3] = {(double)i, (double)j, (double)k}, p[3];
                hv_affine_apply(g->A, v, p);
                double d[3] = {p[0] - o[0], p[1] - o[1], p[2] - o[2]};
                if (dot3(d, ant) < cut) continue;
                for (int a = 0; a < 3; a++) {
                    sum[a] += p[a];
                    for (int b = 0; b < 3; b++) ss[a][b] += p[a] * p[b];
                }
                n++;
            }
    if (n == 0) return 0;
    for (int a = 0; a < 3; a++) c[a] = sum[a] / (double)n;
    if (scatter)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) scatter[a][b] = ss[a][b] / (double)n - c[a] * c[b];
    return n;
}

/* Eigenvector of the smallest eigenvalue of a symmetric 3x3 matrix (Jacobi). */
static void smallest_eigvec(double m[3][3], double out[3])
{
    double a[3][3], v[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    memcpy(a, m, sizeof a);
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = fabs(a[0][1]) + fabs(a[0][2]) + fabs(a[1][2]);
        if (off < 1e-14) break;
        for (int p = 0; p < 2; p++)
            for (int q = p + 1; q < 3; q++) {
                if (fabs(a[p][q]) < 1e-300) continue;
                double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < 3; k++) {
                    double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < 3; k++) {
                    double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 3; k++) {
                    double vkp = v[k][p], vkq = v[k][q];
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
    }
    int best = 0;
    for (int i = 1; i < 3; i++)
        if (a[i][i] < a[best][best]) best = i;
    for (int i = 0; i < 3; i++) out[i] = v[i][best];
}

/* ------------------------------------------------------- one vertebra */

typedef struct vert_ctx {
    const hv_mgrid *g;
    const hv_label_stats *st;
    const hv_measure_opts *o;
    double ref_pt[MAXLAB][3]; /* world point per label used for the axis      */
    int ref_ok[MAXLAB];
} vert_ctx;

/* Height of the region at AP position a (mm along ant from the centroid),
 * pooled over the parasagittal rays. */
static double region_height(const sampler *s, const hv_vert_measure *v, double a,
                            const hv_measure_opts *o, double step)
{
    double h[64];
    int n = o->n_lateral_rays < 1 ? 1 : (o->n_lateral_rays > 63 ? 63 : o->n_lateral_rays);
    for (int r = 0; r < n; r++) {
        double f = n == 1 ? 0.0 : -1.0 + 2.0 * r / (n - 1);
        double l = f * o->lateral_frac * v->width_mm;
        double p[3], lo, hi;
        for (int c = 0; c < 3; c++) p[c] = v->centroid[c] + a * v->ant[c] + l * v->lat[c];
        h[r] = ray_run(s, p, v->axis, 40.0, step, &lo, &hi) ? hi - lo : NAN;
    }
    return hv_measure_pool(h, n);
}

/* TotalSegmentator-compatible heights (its spine report): sagittal voxel
 * planes of the grid axis closest to left-right, over the central 50 % of
 * the body's extent (eroded by one voxel) in ~5 mm steps; in each plane,
 * single rays at the given fractions of the AP chord (chord from the body
 * eroded by 3 mm); keep the plane whose three heights are all valid and
 * spread the most (max - min). */
static void max_spread_heights(const sampler *s, hv_vert_measure *v, const hv_label_stats *st,
                               const double frac[4], double step)
{
    const hv_mgrid *g = s->g;
    int k = 0;
    double best_dot = -1;
    for (int q = 0; q < 3; q++) {
        double col[3] = {g->A[0][q], g->A[1][q], g->A[2][q]};
        double d = fabs(dot3(col, v->lat)) / norm3(col);
        if (d > best_dot) { best_dot = d; k = q; }
    }
    double colk[3] = {g->A[0][k], g->A[1][k], g->A[2][k]};
    double sk = norm3(colk);
    double e = fmax(1.0, round(3.0 / g->max_spacing)) * g->max_spacing;
    double front, depth;
    int64_t ev = (int64_t)fmax(1.0, round(3.0 / sk));
    int64_t x0 = st->lo[k] + ev, x1 = st->hi[k] - ev;
    if (x1 < x0) { x0 = st->lo[k]; x1 = st->hi[k]; }
    int64_t margin = (int64_t)llround(0.25 * (double)(x1 - x0 + 1));
    int64_t xs = x0 + margin, xe = x1 - margin, xstep = (int64_t)fmax(1.0, round(5.0 / sk));
    if (xe < xs) { xs = xe = (x0 + x1) / 2; }
    double vc[3], dl = g->inv[k][0] * v->lat[0] + g->inv[k][1] * v->lat[1] + g->inv[k][2] * v->lat[2];
    hv_affine_apply(g->inv, v->centroid, vc);
    if (fabs(dl) < 1e-9) return;
    /* its rays stay in the voxel plane: the axis without its k component */
    double kn[3] = {colk[0] / sk, colk[1] / sk, colk[2] / sk}, ax[3];
    perp3(v->axis, kn, ax);
    if (!normalize3(ax)) memcpy(ax, v->axis, sizeof ax);
    double best = -1;
    for (int64_t x = xs; x <= xe; x += xstep) {
        double l = ((double)x - vc[k]) / dl, h[4], pc[3], clo, chi;
        for (int c = 0; c < 3; c++) pc[c] = v->centroid[c] + l * v->lat[c];
        /* this plane's chord, shrunk by the erosion */
        if (!ray_run(s, pc, v->ant, 60.0, step, &clo, &chi) || chi - clo <= 2 * e) continue;
        front = chi - e;
        depth = chi - clo - 2 * e;
        int ok = 1;
        for (int r = HV_REG_ANT; r <= HV_REG_POST && ok; r++) {
            double a = front - frac[r] * depth, p[3], lo, hi;
            for (int c = 0; c < 3; c++) p[c] = v->centroid[c] + a * v->ant[c] + l * v->lat[c];
            ok = ray_run(s, p, ax, 40.0, step, &lo, &hi);
            h[r] = ok ? hi - lo : NAN;
        }
        if (!ok) continue;
        double mx = fmax(h[1], fmax(h[2], h[3])), mn = fmin(h[1], fmin(h[2], h[3]));
        if (mx - mn > best) {
            best = mx - mn;
            for (int r = HV_REG_ANT; r <= HV_REG_POST; r++) v->h_ori[r] = h[r];
        }
    }
}

static hv_status measure_one(const vert_ctx *cx, int label, hv_vert_measure *v)
{
    const hv_mgrid *g = cx->g;
    const hv_label_stats *st = &cx->st[label];
    const hv_measure_opts *o = cx->o;
    double vox_ml = hv_affine_voxel_mm3((const double(*)[4])g->A) / 1000.0;
    memset(v, 0, sizeof *v);
    v->label = label;
    v->grade = -1;
    v->mean_hu = NAN;
    v->n_voxels = st->count;
    for (int r = 0; r < HV_REG_COUNT; r++) v->h_ori[r] = v->h_syn[r] = v->rhlv[r] = NAN;
    v->depth_mm = v->width_mm = v->front_mm = NAN;
    if (hv_label_stats_on_border(st, g->dim)) v->flags |= HV_MEAS_TRUNCATED;

    double cw[3];
    hv_label_stats_centroid(st, (const double(*)[4])g->A, cw);
    v->volume_ml = (double)st->count * vox_ml;
    memcpy(v->centroid, cw, sizeof cw);
    if (v->volume_ml < o->min_volume_ml) {
        v->flags |= HV_MEAS_SMALL | HV_MEAS_EMPTY_REGION;
        return HV_OK;
    }

    /* spine axis from the neighbours */
    double rank = hv_label_order(label);
    int up = 0, dn = 0;
    double best_up = 1e9, best_dn = 1e9;
    for (int l = 1; l < MAXLAB; l++) {
        if (!cx->ref_ok[l] || l == label) continue;
        double d = hv_label_order(l) - rank;
        if (d < 0 && -d <= 2.0 && -d < best_up) { best_up = -d; up = l; }
        if (d > 0 && d <= 2.0 && d < best_dn) { best_dn = d; dn = l; }
    }
    const double *self_pt = cx->ref_ok[label] ? cx->ref_pt[label] : cw;
    double axis[3] = {0, 0, 1};
    int have_axis = 0;
    if (up && dn) {
        for (int c = 0; c < 3; c++) axis[c] = cx->ref_pt[up][c] - cx->ref_pt[dn][c];
        have_axis = normalize3(axis);
    } else if (up || dn) {
        for (int c = 0; c < 3; c++)
            axis[c] = up ? cx->ref_pt[up][c] - self_pt[c] : self_pt[c] - cx->ref_pt[dn][c];
        have_axis = normalize3(axis);
        if (have_axis) v->flags |= HV_MEAS_ONE_NEIGHBOUR;
    }
    if (!have_axis) {
        axis[0] = 0; axis[1] = 0; axis[2] = 1;
        v->flags |= HV_MEAS_AXIS_PCA;
    }

    sampler s = {.g = g, .label = label};
    double gap_min = fmax(3.0, 1.5 * g->max_spacing);
    double ant[3], cb[3], scatter[3][3];
    double cut = -INFINITY;
    size_t nb = 0;
    for (int pass = 0; pass < 3; pass++) {
        double world_a[3] = {0, 1, 0};
        if (pass == 0) {
            perp3(world_a, axis, ant);
            if (!normalize3(ant)) { /* axis along A: take S projected instead */
                double world_s[3] = {0, 0, 1};
                perp3(world_s, axis, ant);
                normalize3(ant);
            }
        }
        cut = find_canal_cut(&s, cw, axis, ant, gap_min);
        nb = body_centroid(g, label, st, cw, ant, cut, cb, scatter);
        if (nb == 0) {
            cut = -INFINITY;
            nb = body_centroid(g, label, st, cw, ant, cut, cb, scatter);
        }
        if (pass == 0 && (v->flags & HV_MEAS_AXIS_PCA)) {
            double e[3];
            smallest_eigvec(scatter, e);
            if (e[2] < 0) { e[0] = -e[0]; e[1] = -e[1]; e[2] = -e[2]; }
            if (normalize3(e)) memcpy(axis, e, sizeof axis);
            double t[3];
            perp3(ant, axis, t);
            if (normalize3(t)) memcpy(ant, t, sizeof ant);
            continue;
        }
        /* refine anterior from whole-vertebra centroid to body centroid */
        double d[3] = {cb[0] - cw[0], cb[1] - cw[1], cb[2] - cw[2]}, dp[3];
        perp3(d, axis, dp);
        if (!isfinite(cut) || norm3(dp) < 4.0) break;
        normalize3(dp);
        if (dot3(dp, ant) < cos(40.0 * M_PI / 180.0)) break;
        if (dot3(dp, ant) > 0.9999) break;
        memcpy(ant, dp, sizeof ant);
    }
    v->n_body_voxels = nb;
    v->volume_ml = (double)nb * vox_ml;
    memcpy(v->axis, axis, sizeof axis);
    memcpy(v->ant, ant, sizeof ant);
    cross3(axis, ant, v->lat);
    memcpy(v->centroid, cb, sizeof cb);
    if (isfinite(cut)) {
        s.cut_on = 1;
        memcpy(s.cut_o, cw, sizeof cw);
        memcpy(s.cut_n, ant, sizeof ant);
        s.cut_a = cut;
    }

    double step = fmax(0.1, 0.25 * g->min_spacing);
    /* depth and width at mid height: median over three levels along the axis */
    double dep[3], wid[3], fr[3], lo_l[3];
    for (int q = 0; q < 3; q++) {
        double u = (q - 1) * 2.0, p[3], lo, hi;
        for (int c = 0; c < 3; c++) p[c] = cb[c] + u * axis[c];
        dep[q] = wid[q] = fr[q] = lo_l[q] = NAN;
        if (ray_run(&s, p, ant, 60.0, step, &lo, &hi)) { dep[q] = hi - lo; fr[q] = hi; }
        if (ray_run(&s, p, v->lat, 60.0, step, &lo, &hi)) { wid[q] = hi - lo; lo_l[q] = lo; }
    }
    if (!isfinite(dep[1]) || !isfinite(wid[1])) {
        v->flags |= HV_MEAS_EMPTY_REGION;
        return HV_OK;
    }
    /* median of three (NaN-tolerant: fall back to the central one) */
    double dd[3], ww[3];
    int nd = 0, nw = 0;
    for (int q = 0; q < 3; q++) {
        if (isfinite(dep[q])) dd[nd++] = dep[q];
        if (isfinite(wid[q])) ww[nw++] = wid[q];
    }
    qsort(dd, (size_t)nd, sizeof dd[0], cmp_double);
    qsort(ww, (size_t)nw, sizeof ww[0], cmp_double);
    v->depth_mm = dd[nd / 2];
    v->width_mm = ww[nw / 2];
    v->front_mm = fr[1];
    double lat_lo = lo_l[1];

    static const double frac[4] = {0.0, 1.0 / 6.0, 0.5, 5.0 / 6.0};
    static const double frac_ts[4] = {0.0, 0.15, 0.5, 0.85};
    if (o->totalseg_compat) {
        max_spread_heights(&s, v, st, frac_ts, step);
    } else {
        for (int r = HV_REG_ANT; r <= HV_REG_POST; r++) {
            double a = v->front_mm - frac[r] * v->depth_mm;
            v->h_ori[r] = region_height(&s, v, a, o, step);
        }
    }
    for (int r = HV_REG_ANT; r <= HV_REG_POST; r++)
        if (!isfinite(v->h_ori[r])) v->flags |= HV_MEAS_EMPTY_REGION;
    double sum = 0;
    int nall = 0;
    for (int q = 1; q <= 9; q++) {
        double h = region_height(&s, v, v->front_mm - 0.1 * q * v->depth_mm, o, step);
        if (isfinite(h)) { sum += h; nall++; }
    }
    if (nall >= 5) v->h_ori[HV_REG_ALL] = sum / nall;
    else v->flags |= HV_MEAS_EMPTY_REGION;

    /* height map over the axial footprint */
    double ms = o->map_step_mm > 0 ? o->map_step_mm : 1.0;
    hv_height_map *m = &v->ori_map;
    m->step = ms;
    m->na = (int)ceil(v->depth_mm / ms);
    m->nl = (int)ceil(v->width_mm / ms);
    if (m->na < 1) m->na = 1;
    if (m->nl < 1) m->nl = 1;
    m->a0 = v->front_mm - 0.5 * ms;
    m->l0 = lat_lo + 0.5 * ms;
    m->h = malloc(sizeof(float) * (size_t)m->na * (size_t)m->nl);
    m->mid = malloc(sizeof(float) * (size_t)m->na * (size_t)m->nl);
    if (!m->h || !m->mid) return hv_error_set(HV_ERR_NOMEM, "measure: height map");
    double mstep = fmax(0.1, 0.5 * g->min_spacing);
    for (int il = 0; il < m->nl; il++)
        for (int ia = 0; ia < m->na; ia++) {
            double a = m->a0 - ia * ms, l = m->l0 + il * ms, p[3], lo, hi;
            for (int c = 0; c < 3; c++) p[c] = cb[c] + a * ant[c] + l * v->lat[c];
            int hit = ray_run(&s, p, axis, 40.0, mstep, &lo, &hi);
            m->h[ia + m->na * il] = hit ? (float)(hi - lo) : NAN;
            m->mid[ia + m->na * il] = hit ? (float)(0.5 * (lo + hi)) : NAN;
        }
    return HV_OK;
}

static int cmp_vert(const void *a, const void *b)
{
    double x = hv_label_order(((const hv_vert_measure *)a)->label);
    double y = hv_label_order(((const hv_vert_measure *)b)->label);
    return (x > y) - (x < y);
}

hv_status hv_measure_spine(const hv_volume *mask, const hv_volume *ct,
                           const hv_measure_opts *opts, hv_spine_measure **out)
{
    hv_status st = HV_OK;
    hv_mgrid g;
    hv_label_stats stats[MAXLAB];
    vert_ctx *cx = NULL;
    hv_spine_measure *m = NULL;
    hv_measure_opts o;
    if (!out) return hv_error_set(HV_ERR_ARG, "measure: no output");
    *out = NULL;
    if (opts) o = *opts;
    else hv_measure_opts_default(&o);
    if (ct && (st = hv_vol_check_same_grid(ct, mask, "CT", "mask")) != HV_OK)
        return hv_error_wrap(st, "measure");
    st = hv_measure_grid_make(mask, &g);
    if (st != HV_OK) return st;
    cx = calloc(1, sizeof *cx);
    m = calloc(1, sizeof *m);
    if (!cx || !m) {
        st = hv_error_set(HV_ERR_NOMEM, "measure: context");
        goto done;
    }
    /* from the mask itself: the same labels as g (grid_make keeps exactly
     * the vertebra labels, and has warned about the others) */
    st = hv_label_stats_collect(mask, stats, NULL);
    if (st != HV_OK) {
        hv_error_wrap(st, "measure");
        goto done;
    }
    cx->g = &g;
    cx->st = stats;
    cx->o = &o;
    double vox_ml = hv_affine_voxel_mm3((const double(*)[4])g.A) / 1000.0;
    int labels[MAXLAB], nl = 0;
    for (int l = 1; l < MAXLAB; l++) {
        if (!stats[l].count) continue;
        labels[nl++] = l;
        if ((double)stats[l].count * vox_ml >= o.min_volume_ml) {
            hv_label_stats_centroid(&stats[l], (const double(*)[4])g.A, cx->ref_pt[l]);
            cx->ref_ok[l] = 1;
        }
    }
    if (nl == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "measure: the mask holds no vertebra label");
        goto done;
    }
    if (o.centroids) {
        /* Through the spine module's reader, the one place file centroids
         * are mapped (direction) and vetted: one outside the volume or far
         * from its label's voxels is ignored there with a warning, and the
         * label keeps its own centre (ref_pt above). */
        hv_spine_verts *vs = NULL;
        st = hv_spine_centroids_from_json(o.centroids, mask, NULL, &vs);
        if (st != HV_OK) {
            hv_error_wrap(st, "measure: centroid file");
            goto done;
        }
        const unsigned unused = HV_SPINE_FLAG_OUTSIDE | HV_SPINE_FLAG_CTD_FAR | HV_SPINE_FLAG_NO_MASK;
        for (size_t i = 0; i < vs->n; i++) {
            const hv_spine_vert *sv = &vs->v[i];
            if (sv->label < 1 || sv->label >= MAXLAB || !stats[sv->label].count ||
                (sv->flags & unused))
                continue;
            memcpy(cx->ref_pt[sv->label], sv->centroid, sizeof sv->centroid);
            cx->ref_ok[sv->label] = 1;
        }
        hv_spine_verts_free(vs);
    }
    m->v = calloc((size_t)nl, sizeof *m->v);
    if (!m->v) {
        st = hv_error_set(HV_ERR_NOMEM, "measure: %d vertebrae", nl);
        goto done;
    }
    m->n = (size_t)nl;
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < nl; i++) {
        if (measure_one(cx, labels[i], &m->v[i]) != HV_OK) {
#pragma omp atomic write
            failed = 1;
        }
    }
    if (failed) {
        st = hv_error_set(HV_ERR_NOMEM, "measure: out of memory measuring vertebrae");
        goto done;
    }
    if (ct) {
        for (int i = 0; i < nl; i++) {
            hv_vert_measure *v = &m->v[i];
            if (v->flags & HV_MEAS_SMALL) continue;
            double sum = 0;
            size_t n = 0;
            const hv_label_stats *s = &stats[v->label];
            for (int64_t k = s->lo[2]; k <= s->hi[2]; k++)
                for (int64_t j = s->lo[1]; j <= s->hi[1]; j++)
                    for (int64_t ii = s->lo[0]; ii <= s->hi[0]; ii++) {
                        if (lab_at(&g, ii, j, k) != v->label) continue;
                        double vv[3] = {(double)ii, (double)j, (double)k}, p[3];
                        hv_affine_apply(g.A, vv, p);
                        double d[3] = {p[0] - v->centroid[0], p[1] - v->centroid[1],
                                       p[2] - v->centroid[2]};
                        if (isfinite(v->front_mm) && dot3(d, v->ant) < v->front_mm - v->depth_mm)
                            continue;
                        sum += hv_vol_get(ct, hv_vol_idx(ct, ii, j, k));
                        n++;
                    }
            v->mean_hu = n ? sum / (double)n : NAN;
        }
    }
    qsort(m->v, m->n, sizeof m->v[0], cmp_vert);
    *out = m;
    m = NULL;
done:
    hv_measure_spine_free(m);
    free(cx);
    hv_measure_grid_free(&g);
    return st;
}

void hv_measure_spine_free(hv_spine_measure *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].ori_map.h);
        free(m->v[i].ori_map.mid);
        free(m->v[i].syn_map.h);
    }
    free(m->v);
    free(m);
}

/* ------------------------------------------- heights in a measured frame */

/* The pseudo-healthy vertebra is measured with the rays of the original's
 * measurement (measure_one above): the frame (centroid, axis, anterior,
 * lateral), the regions' AP positions, the parasagittal offsets and the map
 * grid are all v's, only the label map differs. Re-running measure_one on
 * the synthesized mask would give it a frame of its own (its centroid moves
 * with the restored endplate, its axis with the neighbours' shift), and the
 * ratio (h_syn - h_ori) / h_syn would then mix a change of shape with a
 * change of where the rays go. */
/* region_height with a filter: rays whose base point keep() refuses are
 * left out of the pool. */
static double frame_region(const sampler *s, const hv_vert_measure *v, double a,
                           const hv_measure_opts *o, double step,
                           int (*keep)(void *ctx, const double p[3]), void *ctx)
{
    double h[64];
    int n = o->n_lateral_rays < 1 ? 1 : (o->n_lateral_rays > 63 ? 63 : o->n_lateral_rays);
    for (int r = 0; r < n; r++) {
        double f = n == 1 ? 0.0 : -1.0 + 2.0 * r / (n - 1);
        double l = f * o->lateral_frac * v->width_mm;
        double p[3], lo, hi;
        for (int c = 0; c < 3; c++) p[c] = v->centroid[c] + a * v->ant[c] + l * v->lat[c];
        h[r] = (!keep || keep(ctx, p)) && ray_run(s, p, v->axis, 40.0, step, &lo, &hi) ? hi - lo
                                                                                      : NAN;
    }
    return hv_measure_pool(h, n);
}

hv_status hv_measure_heights_frame(const hv_volume *mask, const hv_measure_opts *opts,
                                   int (*keep)(void *ctx, const double p[3]), void *ctx,
                                   hv_vert_measure *v)
{
    hv_measure_opts o;
    hv_mgrid g;
    hv_status st;
    if (!mask || !v) return hv_error_set(HV_ERR_ARG, "heights in a frame: NULL argument");
    if (opts) o = *opts;
    else hv_measure_opts_default(&o);
    const hv_height_map *om = &v->ori_map;
    if (!om->h || om->na < 1 || om->nl < 1 || !isfinite(v->front_mm) || !isfinite(v->depth_mm))
        return hv_error_set(HV_ERR_EMPTY, "label %d has no measured frame (no height map)",
                            v->label);
    if ((st = hv_measure_grid_make(mask, &g)) != HV_OK) return st;
    sampler s = {.g = &g, .label = v->label};
    const double step = fmax(0.1, 0.25 * g.min_spacing), mstep = fmax(0.1, 0.5 * g.min_spacing);
    static const double frac[4] = {0.0, 1.0 / 6.0, 0.5, 5.0 / 6.0};
    for (int r = HV_REG_ANT; r <= HV_REG_POST; r++)
        v->h_syn[r] = frame_region(&s, v, v->front_mm - frac[r] * v->depth_mm, &o, step, keep, ctx);
    double sum = 0;
    int nall = 0;
    for (int q = 1; q <= 9; q++) {
        double h = frame_region(&s, v, v->front_mm - 0.1 * q * v->depth_mm, &o, step, keep, ctx);
        if (isfinite(h)) {
            sum += h;
            nall++;
        }
    }
    v->h_syn[HV_REG_ALL] = nall >= 5 ? sum / nall : NAN;
    for (int r = 0; r < HV_REG_COUNT; r++) v->rhlv[r] = hv_measure_rhlv(v->h_syn[r], v->h_ori[r]);

    free(v->syn_map.h);
    v->syn_map = *om;
    v->syn_map.mid = NULL;
    v->syn_map.h = malloc(sizeof(float) * (size_t)om->na * (size_t)om->nl);
    if (!v->syn_map.h) {
        hv_measure_grid_free(&g);
        return hv_error_set(HV_ERR_NOMEM, "heights in a frame: height map");
    }
    for (int il = 0; il < om->nl; il++)
        for (int ia = 0; ia < om->na; ia++) {
            double a = om->a0 - ia * om->step, l = om->l0 + il * om->step, p[3], lo, hi;
            for (int c = 0; c < 3; c++) p[c] = v->centroid[c] + a * v->ant[c] + l * v->lat[c];
            int hit = (!keep || keep(ctx, p)) && ray_run(&s, p, v->axis, 40.0, mstep, &lo, &hi);
            v->syn_map.h[ia + om->na * il] = hit ? (float)(hi - lo) : NAN;
        }
    hv_measure_grid_free(&g);
    return HV_OK;
}
