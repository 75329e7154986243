/*
 * test_phantom_model.c: the phantom's ground truth is what the voxels show.
 *
 *  - option validation; determinism; independence of the level range and of
 *    the fracture rate;
 *  - ground-truth invariants over many cases: Genant band of every fracture
 *    (with its margins), unfractured shape < 15 %, unit frames, size jitter;
 *  - heights: (a) exact: the model voxelised onto a 0.01 mm line grid laid
 *    along each vertebra's axis through its 1/6, 1/2, 5/6 depth points
 *    reproduces observed_mm to 0.02 mm; (b) on ordinary grids (1 mm and
 *    0.8x0.8x2 mm) the nearest-voxel ray-march agrees within the bound that
 *    voxel quantisation allows, is unbiased, and is within half a voxel on
 *    average;
 *  - noise statistics and thread-count independence; HU plausibility.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "hv_test.h"
#include "hv/core.h"
#include "hv/phantom.h"
#include "ph_util.h"

static void test_options(void)
{
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    HV_CHECK(o.first_label == 8 && o.last_label == 24, "default range T1-L5");
    HV_CHECK(o.spacing[0] == 1.0 && o.spacing[2] == 1.0 && o.orientation == HV_PHANTOM_RAS, "default grid");
    HV_CHECK(fabs(o.fracture_rate - 0.15) < 1e-12 && fabs(o.noise_hu - 20) < 1e-12, "default rates");
    hv_phantom_case *c = NULL;
    hv_phantom_opts b = o;
    b.first_label = 20;
    b.last_label = 19;
    HV_CHECK(hv_phantom_case_make(&b, 0, &c) == HV_ERR_ARG && !c, "reversed range rejected");
    b = o;
    b.last_label = 25;
    HV_CHECK(hv_phantom_case_make(&b, 0, &c) == HV_ERR_ARG, "L6 rejected");
    b = o;
    b.fracture_rate = 1.5;
    HV_CHECK(hv_phantom_case_make(&b, 0, &c) == HV_ERR_ARG, "rate > 1 rejected");
    b = o;
    b.scoliosis_rate = NAN;
    HV_CHECK(hv_phantom_case_make(&b, 0, &c) == HV_ERR_ARG, "NaN rate rejected");
    b = o;
    b.spacing[1] = 0.0;
    HV_CHECK(hv_phantom_case_make(&b, 0, &c) == HV_ERR_ARG, "zero spacing rejected");
    HV_CHECK(hv_phantom_case_make(&o, -1, &c) == HV_ERR_ARG, "negative index rejected");
    HV_CHECK(strcmp(hv_fracture_type_name(HV_FRACTURE_BICONCAVE), "biconcave") == 0, "type names");
}

static int band_of(double loss)
{
    return loss < 0.20 ? 0 : loss < 0.25 ? 1 : loss < 0.40 ? 2 : 3;
}

static void test_invariants(void)
{
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    o.seed = 11;
    o.fracture_rate = 0.6;
    const int N = 80;
    long n_t4l5 = 0, f_t4l5 = 0, n_t13 = 0, f_t13 = 0, per_grade[4] = {0}, per_type[4] = {0};
    double l1_sum = 0, l1_sq = 0, r_sum = 0, r_sq = 0;
    int bad_band = 0, bad_shape = 0, bad_frame = 0, bad_order = 0, bad_sizes = 0;
    for (int i = 0; i < N; i++) {
        hv_phantom_case *c = NULL;
        HV_CHECK_OK(hv_phantom_case_make(&o, i, &c));
        if (!c) return;
        HV_CHECK(c->n_vert == 17 && c->ct == NULL && c->mask == NULL, "17 levels, not rendered");
        for (int v = 0; v < c->n_vert; v++) {
            const hv_phantom_vert *p = &c->vert[v];
            if (p->label != 8 + v) bad_order++;
            if (v > 0 && !(p->center[2] < c->vert[v - 1].center[2])) bad_order++;
            double na = 0, nn = 0, dn = 0;
            for (int a = 0; a < 3; a++) {
                na += p->axis[a] * p->axis[a];
                nn += p->anterior[a] * p->anterior[a];
                dn += p->axis[a] * p->anterior[a];
            }
            if (fabs(na - 1) > 1e-12 || fabs(nn - 1) > 1e-12 || fabs(dn) > 1e-12 || p->axis[2] < 0.7 ||
                p->anterior[1] < 0.7)
                bad_frame++;
            for (int k = 0; k < 3; k++)
                if (!(p->healthy_mm[k] > 11 && p->healthy_mm[k] < 40)) bad_sizes++;
            if (!(p->depth_mm > 12 && p->depth_mm < 45 && p->width_mm > 18 && p->width_mm < 65)) bad_sizes++;
            double worst = 0;
            for (int k = 0; k < 3; k++) worst = fmax(worst, 1.0 - p->observed_mm[k] / p->healthy_mm[k]);
            if (p->grade == 0) {
                int same = 1;
                for (int k = 0; k < 3; k++) same &= p->observed_mm[k] == p->healthy_mm[k];
                double mx = fmax(p->healthy_mm[0], fmax(p->healthy_mm[1], p->healthy_mm[2]));
                double mn = fmin(p->healthy_mm[0], fmin(p->healthy_mm[1], p->healthy_mm[2]));
                if (!same || p->loss != 0 || p->type != HV_FRACTURE_NONE || 1.0 - mn / mx >= 0.15) bad_shape++;
            } else {
                static const double lo[4] = {0, 0.205, 0.255, 0.405}, hi[4] = {0, 0.245, 0.395, 0.55};
                if (fabs(worst - p->loss) > 1e-12 || band_of(p->loss) != p->grade || p->loss < lo[p->grade] - 1e-12 ||
                    p->loss > hi[p->grade] + 1e-12 || p->type == HV_FRACTURE_NONE)
                    bad_band++;
                double la = 1 - p->observed_mm[0] / p->healthy_mm[0], lm = 1 - p->observed_mm[1] / p->healthy_mm[1],
                       lp = 1 - p->observed_mm[2] / p->healthy_mm[2];
                if (p->type == HV_FRACTURE_WEDGE && !(la >= lm && la >= lp && lp <= 0.15 * p->loss + 1e-12))
                    bad_band++;
                if (p->type == HV_FRACTURE_BICONCAVE && !(lm >= la && lm >= lp)) bad_band++;
                if (p->type == HV_FRACTURE_CRUSH && !(fmin(la, fmin(lm, lp)) >= 0.85 * p->loss - 1e-12)) bad_band++;
                per_type[p->type]++;
            }
            per_grade[p->grade]++;
            if (p->label >= 11) {
                n_t4l5++;
                f_t4l5 += p->grade > 0;
            } else {
                n_t13++;
                f_t13 += p->grade > 0;
            }
        }
        double l1 = c->vert[12].healthy_mm[1], r = c->vert[13].healthy_mm[1] / c->vert[12].healthy_mm[1];
        l1_sum += l1;
        l1_sq += l1 * l1;
        r_sum += r;
        r_sq += r * r;
        hv_phantom_case_free(c);
    }
    HV_CHECK(bad_order == 0, "labels top to bottom with decreasing z (%d bad)", bad_order);
    HV_CHECK(bad_frame == 0, "unit, orthogonal, upright frames (%d bad)", bad_frame);
    HV_CHECK(bad_sizes == 0, "adult-plausible sizes (%d bad)", bad_sizes);
    HV_CHECK(bad_band == 0, "fractures strictly inside their Genant band and typed (%d bad)", bad_band);
    HV_CHECK(bad_shape == 0, "unfractured: observed == healthy, natural shape < 15 %% (%d bad)", bad_shape);
    /* 80 cases x 14 levels at rate 0.6: sd of the fraction 0.015; +-0.08 is > 5 sd */
    double fr = (double)f_t4l5 / (double)n_t4l5, fr13 = (double)f_t13 / (double)n_t13;
    HV_CHECK(fabs(fr - 0.6) < 0.08, "T4-L5 fracture fraction %.3f ~ 0.6", fr);
    HV_CHECK(fabs(fr13 - 0.15) < 0.08, "T1-T3 fracture fraction %.3f ~ 0.15", fr13);
    HV_CHECK(per_grade[1] > 0 && per_grade[2] > 0 && per_grade[3] > 0, "all grades drawn (%ld %ld %ld)",
             per_grade[1], per_grade[2], per_grade[3]);
    HV_CHECK(per_type[1] > 0 && per_type[2] > 0 && per_type[3] > 0, "all types drawn");
    /* size variation a level-wise prior cannot know: L1 height varies between
     * patients (size sd 6 %) and the L2/L1 ratio within a patient (jitter
     * 3 % each -> ~4 %); require at least 4 % and 2 %. */
    double l1_mean = l1_sum / N, l1_cv = sqrt(fmax(0, l1_sq / N - l1_mean * l1_mean)) / l1_mean;
    double r_mean = r_sum / N, r_cv = sqrt(fmax(0, r_sq / N - r_mean * r_mean)) / r_mean;
    printf("# L1 mid height %.2f mm, CV %.3f; L2/L1 ratio CV %.3f; T4-L5 fractured %.3f\n", l1_mean, l1_cv, r_cv, fr);
    HV_CHECK(l1_cv > 0.04, "L1 height CV %.3f > 0.04", l1_cv);
    HV_CHECK(r_cv > 0.02, "L2/L1 height ratio CV %.3f > 0.02", r_cv);
}

static void test_determinism(void)
{
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    o.seed = 5;
    o.fracture_rate = 0.5;
    hv_phantom_case *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
    HV_CHECK_OK(hv_phantom_case_make(&o, 3, &a));
    HV_CHECK_OK(hv_phantom_case_make(&o, 3, &b));
    if (!a || !b) return;
    HV_CHECK(strcmp(a->id, "ph0003") == 0, "id %s", a->id);
    HV_CHECK(memcmp(a->vert, b->vert, (size_t)a->n_vert * sizeof *a->vert) == 0, "same seed, same model");
    hv_phantom_opts r = o;
    r.first_label = 18;
    r.last_label = 22;
    HV_CHECK_OK(hv_phantom_case_make(&r, 3, &c));
    if (c) {
        HV_CHECK(c->n_vert == 5 && c->vert[0].label == 18, "range T11-L3");
        HV_CHECK(memcmp(c->vert, a->vert + 10, 5 * sizeof *c->vert) == 0, "a range is a crop of the same spine");
    }
    hv_phantom_opts f = o;
    f.fracture_rate = 0.0;
    HV_CHECK_OK(hv_phantom_case_make(&f, 3, &d));
    if (d) {
        int same = 1, nf = 0;
        for (int v = 0; v < 17; v++) {
            same &= memcmp(d->vert[v].center, a->vert[v].center, sizeof a->vert[v].center) == 0;
            same &= memcmp(d->vert[v].healthy_mm, a->vert[v].healthy_mm, sizeof a->vert[v].healthy_mm) == 0;
            nf += d->vert[v].grade > 0;
        }
        HV_CHECK(same, "the anatomy does not depend on the fracture rate");
        HV_CHECK(nf == 0, "rate 0: no fractures");
    }
    hv_phantom_opts s = o;
    s.seed = 6;
    HV_CHECK_OK(hv_phantom_case_make(&s, 3, &e));
    if (e) HV_CHECK(memcmp(e->vert, a->vert, 17 * sizeof *a->vert) != 0, "another seed, another model");
    hv_phantom_case_free(a);
    hv_phantom_case_free(b);
    hv_phantom_case_free(c);
    hv_phantom_case_free(d);
    hv_phantom_case_free(e);
}

/* (a) The model itself, voxelised at 0.01 mm along each measurement line. */
static void test_heights_exact(void)
{
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    o.seed = 21;
    o.fracture_rate = 0.7;
    o.scoliosis_rate = 0.5;
    o.first_label = 17;
    o.last_label = 23;
    const double step = 0.01;
    double worst = 0;
    int n = 0, nfrac = 0;
    for (int i = 0; i < 6; i++) {
        hv_phantom_case *c = NULL;
        HV_CHECK_OK(hv_phantom_case_make(&o, i, &c));
        if (!c) return;
        for (int v = 0; v < c->n_vert; v++) {
            const hv_phantom_vert *p = &c->vert[v];
            nfrac += p->grade > 0;
            double right[3] = {p->anterior[1] * p->axis[2] - p->anterior[2] * p->axis[1],
                               p->anterior[2] * p->axis[0] - p->anterior[0] * p->axis[2],
                               p->anterior[0] * p->axis[1] - p->anterior[1] * p->axis[0]};
            for (int k = 0; k < 3; k++) {
                double reach = 0.8 * p->healthy_mm[k];
                int64_t dim[3] = {1, 1, (int64_t)ceil(2 * reach / step) + 1};
                double A[4][4];
                hv_affine_identity(A);
                double off = ph_point_offset(p, k);
                for (int r = 0; r < 3; r++) {
                    A[r][0] = right[r];
                    A[r][1] = p->anterior[r];
                    A[r][2] = p->axis[r] * step;
                    A[r][3] = p->center[r] + off * p->anterior[r] - reach * p->axis[r];
                }
                HV_CHECK_OK(hv_phantom_case_render_grid(&o, c, (const double(*)[4])A, dim));
                if (!c->mask) return;
                const uint8_t *m = c->mask->data;
                long best = 0, run = 0;
                for (int64_t s = 0; s < dim[2]; s++) {
                    run = m[s] == p->label ? run + 1 : 0;
                    if (run > best) best = run;
                }
                double err = fabs((double)best * step - p->observed_mm[k]);
                worst = fmax(worst, err);
                n++;
            }
        }
        hv_phantom_case_free(c);
    }
    printf("# exact line check: %d heights (%d fractured vertebrae), worst |error| %.4f mm\n", n, nfrac, worst);
    HV_CHECK(nfrac >= 5, "enough fractures in the sample (%d)", nfrac);
    /* one sample step at each end */
    HV_CHECK(worst <= 2 * step + 1e-9, "model heights reproduce observed_mm within 0.02 mm (worst %.4f)", worst);
}

/* (b) Nearest-voxel ray-march on ordinary grids. */
static void grid_heights(const double spacing[3], const char *what, int ncases)
{
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    o.seed = 33;
    o.fracture_rate = 0.5;
    o.first_label = 18;
    o.last_label = 22;
    memcpy(o.spacing, spacing, sizeof o.spacing);
    double sum = 0, sum_abs = 0, worst_excess = -1e9, worst = 0;
    int n = 0, within_half = 0;
    for (int i = 0; i < ncases; i++) {
        hv_phantom_case *c = NULL;
        HV_CHECK_OK(hv_phantom_case_make(&o, i, &c));
        if (!c) return;
        HV_CHECK_OK(hv_phantom_case_render(&o, c));
        if (!c->mask) return;
        double inv[4][4];
        HV_CHECK_OK(hv_affine_invert((const double(*)[4])c->mask->affine, inv));
        for (int v = 0; v < c->n_vert; v++) {
            const hv_phantom_vert *p = &c->vert[v];
            HV_CHECK(!p->truncated, "%s: %s not truncated", c->id, hv_label_name(p->label));
            /* Each endplate is placed by the mask to within the half-voxel
             * extent e along the axis (nearest-centre rule), so the height to
             * within 2e; plus 0.02 mm of sampling step and 0.15 mm for the
             * endplate's bend within a voxel of the knot (the profile is flat
             * at the knot: a 6 mm step over D/3 = 10 mm bends ~0.1 mm at
             * 0.7 mm from it). */
            double bound = 2 * ph_half_voxel_along(c->mask, p->axis) + 0.17;
            double half = ph_half_voxel_along(c->mask, p->axis);
            for (int k = 0; k < 3; k++) {
                double h = ph_ray_height(c->mask, (const double(*)[4])inv, p, k, 0.02);
                double e = h - p->observed_mm[k];
                sum += e / half;
                sum_abs += fabs(e) / half;
                worst = fmax(worst, fabs(e) / half);
                worst_excess = fmax(worst_excess, fabs(e) - bound);
                within_half += fabs(e) <= half;
                n++;
            }
        }
        hv_phantom_case_free(c);
    }
    double bias = sum / n, mae = sum_abs / n;
    printf("# %s: %d heights; in units of the half-voxel extent along the axis: bias %+.3f, "
           "mean |err| %.3f, worst %.3f; within half a voxel: %.1f %%\n",
           what, n, bias, mae, worst, 100.0 * within_half / n);
    HV_CHECK(worst_excess <= 0, "%s: every height within its quantisation bound (excess %.3f mm)", what,
             worst_excess);
    /* measured (seed 33): bias -0.041 / +0.060, mean |err| 0.55 / 0.61, worst
     * 1.52 / 1.77 half-voxel extents at 1 mm / 0.8x0.8x2 mm; the bounds below
     * leave room for other seeds but fail a 0.3-voxel systematic error */
    HV_CHECK(fabs(bias) < 0.3, "%s: unbiased (%.3f half-voxels)", what, bias);
    HV_CHECK(mae < 1.0, "%s: mean |error| %.3f within half a voxel extent", what, mae);
}

static void test_heights_grid(void)
{
    double iso[3] = {1, 1, 1}, aniso[3] = {0.8, 0.8, 2.0};
    grid_heights(iso, "1 mm", 4);
    grid_heights(aniso, "0.8x0.8x2 mm", 4);
}

static double median(double *x, size_t n)
{
    for (size_t i = 1; i < n; i++) { /* insertion sort: small arrays */
        double t = x[i];
        size_t j = i;
        for (; j > 0 && x[j - 1] > t; j--) x[j] = x[j - 1];
        x[j] = t;
    }
    return n ? x[n / 2] : NAN;
}

static void test_noise_and_hu(void)
{
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    o.seed = 44;
    o.first_label = 19;
    o.last_label = 21;
    o.fracture_rate = 0.0;
    hv_phantom_case *c = NULL;
    HV_CHECK_OK(hv_phantom_case_make(&o, 0, &c));
    if (!c) return;
    hv_phantom_opts q = o;
    q.noise_hu = 0;
    HV_CHECK_OK(hv_phantom_case_render(&q, c));
    hv_volume *clean = c->ct;
    c->ct = NULL;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    HV_CHECK_OK(hv_phantom_case_render(&o, c));
    hv_volume *one = c->ct;
    c->ct = NULL;
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    HV_CHECK_OK(hv_phantom_case_render(&o, c));
    if (!clean || !one || !c->ct) return;
    HV_CHECK(memcmp(one->data, c->ct->data, one->nvox * 2) == 0, "noise independent of the thread count");
    double s = 0, s2 = 0;
    size_t n = 0;
    const int16_t *a = clean->data, *b = c->ct->data;
    for (size_t i = 0; i < clean->nvox; i++) {
        /* whole-HU tissues only (soft tissue, fat, CSF): rounding of the
         * fractional disc values would bias the mean; air saturates */
        if (a[i] <= -200 || a[i] >= 60) continue;
        double d = (double)b[i] - (double)a[i];
        s += d;
        s2 += d * d;
        n++;
    }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    printf("# noise: mean %+.3f HU, sd %.3f HU over %zu voxels\n", mean, sd, n);
    /* n ~ 4e6: the mean's sd is 0.01 HU; integer rounding adds ~1/12 HU^2 */
    HV_CHECK(fabs(mean) < 0.1, "noise mean %.3f ~ 0", mean);
    HV_CHECK(fabs(sd - 20.0) < 0.2, "noise sd %.3f ~ 20 HU", sd);

    /* HU plausibility on the noisy render, regions found from the mask and
     * the ground truth only. */
    const hv_volume *ct = c->ct, *mk = c->mask;
    const int16_t *hu = ct->data;
    const uint8_t *lab = mk->data;
    size_t cap = 200000;
    double *cort = malloc(cap * sizeof *cort), *trab = malloc(cap * sizeof *trab);
    double disc[4096], soft[4096], fat[4096], air[4096];
    size_t nc = 0, nt = 0, nd = 0, ns = 0, nf = 0, na = 0;
    int64_t X = mk->dim[0], Y = mk->dim[1], Z = mk->dim[2];
    double inv[4][4];
    hv_affine_invert((const double(*)[4])mk->affine, inv);
    for (int v = 0; v < c->n_vert; v++) {
        const hv_phantom_vert *p = &c->vert[v];
        /* voxels of the body only: within the body's box in the local frame */
        for (int64_t k = 2; k < Z - 2; k++)
            for (int64_t j = 2; j < Y - 2; j++)
                for (int64_t i = 2; i < X - 2; i++) {
                    size_t id = hv_vol_idx(mk, i, j, k);
                    if (lab[id] != p->label) continue;
                    double w[3], ijk[3] = {(double)i, (double)j, (double)k};
                    hv_affine_apply((const double(*)[4])mk->affine, ijk, w);
                    double d[3] = {w[0] - p->center[0], w[1] - p->center[1], w[2] - p->center[2]};
                    double av = d[0] * p->anterior[0] + d[1] * p->anterior[1] + d[2] * p->anterior[2];
                    if (av < -p->depth_mm / 2 + 3) continue; /* skip the posterior wall region */
                    int interior = 1, edge = 0;
                    for (int dz = -3; dz <= 3 && interior; dz++)
                        for (int dy = -3; dy <= 3 && interior; dy++)
                            for (int dx = -3; dx <= 3; dx++) {
                                int64_t ii = i + dx, jj = j + dy, kk = k + dz;
                                if (ii < 0 || jj < 0 || kk < 0 || ii >= X || jj >= Y || kk >= Z ||
                                    lab[hv_vol_idx(mk, ii, jj, kk)] != p->label) {
                                    interior = 0;
                                    break;
                                }
                            }
                    static const int nb[6][3] = {{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1}, {0, 0, -1}};
                    for (int t = 0; t < 6; t++)
                        if (lab[hv_vol_idx(mk, i + nb[t][0], j + nb[t][1], k + nb[t][2])] != p->label) edge = 1;
                    if (interior && nt < cap) trab[nt++] = hu[id];
                    if (edge && nc < cap) cort[nc++] = hu[id];
                }
        /* soft tissue: 60 mm in front of the body centre */
        for (int t = -3; t <= 3 && ns + 49 < 4096; t++)
            for (int u = -3; u <= 3; u++) {
                double w[3] = {p->center[0] + u, p->center[1] + 60, p->center[2] + t}, g[3];
                hv_affine_apply(inv, w, g);
                soft[ns++] = hu[hv_vol_idx(ct, (int64_t)lround(g[0]), (int64_t)lround(g[1]), (int64_t)lround(g[2]))];
            }
        /* air and fat behind the back: walk forwards from the grid's back edge */
        double w0[3] = {p->center[0], p->center[1], p->center[2]}, g0[3];
        hv_affine_apply(inv, w0, g0);
        int64_t i0 = lround(g0[0]), k0 = lround(g0[2]);
        for (int64_t j = 0; j < 3; j++) air[na++] = hu[hv_vol_idx(ct, i0, j, k0)];
        int64_t skin = -1;
        for (int64_t j = 0; j < Y && skin < 0; j++)
            if (hu[hv_vol_idx(ct, i0, j, k0)] > -500) skin = j;
        for (int64_t j = skin + 1; skin >= 0 && j < skin + 4; j++) fat[nf++] = hu[hv_vol_idx(ct, i0, j, k0)];
    }
    /* discs: midpoints between neighbouring body centres, 3x3x1 around */
    for (int v = 0; v + 1 < c->n_vert; v++) {
        double w[3], g[3];
        for (int e = 0; e < 3; e++) w[e] = 0.5 * (c->vert[v].center[e] + c->vert[v + 1].center[e]);
        hv_affine_apply(inv, w, g);
        for (int dj = -1; dj <= 1; dj++)
            for (int di = -1; di <= 1; di++)
                disc[nd++] = hu[hv_vol_idx(ct, (int64_t)lround(g[0]) + di, (int64_t)lround(g[1]) + dj,
                                           (int64_t)lround(g[2]))];
    }
    double mc = median(cort, nc), mt = median(trab, nt), md = median(disc, nd), ms = median(soft, ns),
           mf = median(fat, nf), ma = median(air, na);
    printf("# median HU: cortical %.0f (%zu) > trabecular %.0f (%zu) > disc %.0f > soft %.0f > fat %.0f > air %.0f\n",
           mc, nc, mt, nt, md, ms, mf, ma);
    HV_CHECK(nc > 100 && nt > 100 && nf > 0, "regions found");
    HV_CHECK(mc > mt && mt > md && md > ms && ms > mf && mf > ma, "HU order cortical > trabecular > disc > soft > fat > air");
    HV_CHECK(mc > 500 && mt > 100 && mt < 350 && ma < -900 && mf < -50 && ms > 0 && ms < 80, "HU ranges");
    free(cort);
    free(trab);
    hv_vol_free(clean);
    hv_vol_free(one);
    hv_phantom_case_free(c);
}

int main(void)
{
    hv_log_set_level(HV_LOG_WARN);
    test_options();
    test_invariants();
    test_determinism();
    test_heights_exact();
    test_heights_grid();
    test_noise_and_hu();
    return hv_test_done();
}
