/*
 * test_measure_phantom.c: robust heights, the baseline pseudo-healthy
 * estimate, RHLV and the Genant rule against the phantom's ground truth.
 *
 * A cohort of phantom cases (T10-L4 to keep it short; every case also draws
 * fractures, scoliosis and size variation) is rendered at 1 mm and on an
 * anisotropic, non-RAS grid. Per vertebra that is not cut by the field of view
 * we compare: the measured (observed) heights, the baseline's healthy heights
 * and the RHLV against the truth, and the rule grade against the truth grade.
 * The baseline never sees the truth tables: it predicts from the neighbours.
 *
 * Usage: test_measure_phantom [N_CASES_PER_GRID [OUT_PREFIX]]. The default
 * (20 + 20 cases) is the CTest `measure` run; the `slow` run uses 100 + 100.
 * With OUT_PREFIX the distribution is written to OUT_PREFIX.md/.csv (the
 * committed results/measure-phantom.* come from that).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"
#include "hv/phantom.h"
#include "hv_test.h"

typedef struct acc {
    double *v;
    size_t n, cap;
} acc;

static void acc_push(acc *a, double x)
{
    if (!isfinite(x)) return;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 256;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v) abort();
    }
    a->v[a->n++] = x;
}

static int cmpd(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double acc_mean(const acc *a)
{
    double s = 0;
    for (size_t i = 0; i < a->n; i++) s += a->v[i];
    return a->n ? s / (double)a->n : NAN;
}

static double acc_p95(acc *a)
{
    if (!a->n) return NAN;
    qsort(a->v, a->n, sizeof *a->v, cmpd);
    size_t k = (size_t)ceil(0.95 * (double)a->n) - 1;
    return a->v[k];
}

enum { E_OBS, E_HEALTHY, E_RHLV, E_RHLV_MAX, E_COUNT };
static const char *ename[E_COUNT] = {"observed height abs error (mm)", "healthy height abs error (%)",
                                     "RHLV abs error (points of %)",
                                     "max-region RHLV abs error (points of %)"};

int main(int argc, char **argv)
{
    int ncase = argc > 1 ? atoi(argv[1]) : 20;
    const char *outp = argc > 2 ? argv[2] : NULL;
    acc err[2][E_COUNT];
    memset(err, 0, sizeof err);
    long conf[2][4][4];
    memset(conf, 0, sizeof conf);
    long nvert[2] = {0, 0}, nflag_frac[2] = {0, 0}, nfrac[2] = {0, 0};
    double t0 = hv_time_now();
    static const char *gname[2] = {"1 mm RAS", "0.8x0.8x2.5 mm LPS"};
    for (int grid = 0; grid < 2; grid++) {
        hv_phantom_opts po;
        hv_phantom_opts_default(&po);
        po.seed = 4242;
        po.first_label = 17; /* T10 */
        po.last_label = 23;  /* L4  */
        po.fracture_rate = 0.2;
        if (grid == 1) {
            po.spacing[0] = 0.8;
            po.spacing[1] = 0.8;
            po.spacing[2] = 2.5;
            po.orientation = HV_PHANTOM_LPS;
        }
        for (int ci = 0; ci < ncase; ci++) {
            hv_phantom_case *pc = NULL;
            hv_spine_measure *m = NULL;
            HV_CHECK_OK(hv_phantom_case_make(&po, ci + 1000 * grid, &pc));
            if (!pc) continue;
            HV_CHECK_OK(hv_phantom_case_render(&po, pc));
            if (!pc->mask) { hv_phantom_case_free(pc); continue; }
            HV_CHECK_OK(hv_measure_spine(pc->mask, NULL, NULL, &m));
            if (m) HV_CHECK_OK(hv_measure_baseline(m, NULL));
            for (int k = 0; m && k < pc->n_vert; k++) {
                const hv_phantom_vert *t = &pc->vert[k];
                const hv_vert_measure *v = NULL;
                for (size_t q = 0; q < m->n; q++)
                    if (m->v[q].label == t->label) v = &m->v[q];
                if (!v) continue;
                if (t->truncated || (v->flags & HV_MEAS_TRUNCATED)) continue;
                nvert[grid]++;
                double worst_t = -1, worst_o = -1;
                for (int r = 0; r < 3; r++) {
                    double tr = (t->healthy_mm[r] - t->observed_mm[r]) / t->healthy_mm[r];
                    acc_push(&err[grid][E_OBS], fabs(v->h_ori[r + 1] - t->observed_mm[r]));
                    acc_push(&err[grid][E_HEALTHY],
                             100.0 * fabs(v->h_syn[r + 1] - t->healthy_mm[r]) / t->healthy_mm[r]);
                    acc_push(&err[grid][E_RHLV], 100.0 * fabs(v->rhlv[r + 1] - tr));
                    if (tr > worst_t) worst_t = tr;
                    if (isfinite(v->rhlv[r + 1]) && v->rhlv[r + 1] > worst_o) worst_o = v->rhlv[r + 1];
                }
                acc_push(&err[grid][E_RHLV_MAX], 100.0 * fabs(worst_o - worst_t));
                int g = hv_measure_genant_vert(v);
                if (g >= 0 && t->grade >= 0 && t->grade <= 3) conf[grid][t->grade][g]++;
                if (t->grade > 0) {
                    nfrac[grid]++;
                    if (v->flags & HV_MEAS_DEFORMED) nflag_frac[grid]++;
                }
            }
            hv_measure_spine_free(m);
            hv_phantom_case_free(pc);
        }
    }
    /* orientation: one case rendered RAS, PIR (the same voxels permuted:
     * the world-space method must give the same heights up to rounding) and
     * oblique (resampled anatomy: within the partial-volume error) */
    {
        hv_phantom_opts po;
        hv_phantom_opts_default(&po);
        po.seed = 4242;
        po.first_label = 18;
        po.last_label = 21;
        double h[3][8][4];
        int nv[3] = {0, 0, 0};
        static const hv_phantom_orient orient[3] = {HV_PHANTOM_RAS, HV_PHANTOM_PIR, HV_PHANTOM_OBLIQUE};
        for (int q = 0; q < 3; q++) {
            hv_phantom_case *pc = NULL;
            hv_spine_measure *m = NULL;
            po.orientation = orient[q];
            HV_CHECK_OK(hv_phantom_case_make(&po, 7, &pc));
            if (pc) HV_CHECK_OK(hv_phantom_case_render(&po, pc));
            if (pc && pc->mask) HV_CHECK_OK(hv_measure_spine(pc->mask, NULL, NULL, &m));
            for (size_t i = 0; m && i < m->n && i < 8; i++) {
                for (int r = 0; r < 4; r++) h[q][i][r] = m->v[i].h_ori[r];
                nv[q]++;
            }
            hv_measure_spine_free(m);
            hv_phantom_case_free(pc);
        }
        HV_CHECK(nv[0] >= 3 && nv[0] == nv[1] && nv[0] == nv[2], "same vertebrae in every orientation");
        double dp = 0, dob = 0;
        for (int i = 0; i < nv[0] && i < nv[1] && i < nv[2]; i++)
            for (int r = 0; r < 4; r++) {
                dp = fmax(dp, fabs(h[1][i][r] - h[0][i][r]));
                dob = fmax(dob, fabs(h[2][i][r] - h[0][i][r]));
            }
        printf("# orientation: max |PIR - RAS| %.2e mm, max |oblique - RAS| %.3f mm\n", dp, dob);
        /* measured: PIR 1.8e-14 mm (the same sample positions), oblique
         * 0.80 mm (the anatomy is re-voxelised); bounds 1e-6 and 1.5 mm */
        HV_CHECK(dp < 1e-6, "PIR heights equal RAS heights (%.3g)", dp);
        HV_CHECK(dob < 1.5, "oblique heights within 1.5 mm of RAS (%.3f)", dob);
    }
    double secs = hv_time_now() - t0;
    FILE *md = NULL, *csv = NULL;
    if (outp) {
        char p[1024];
        snprintf(p, sizeof p, "%s.md", outp);
        md = fopen(p, "w");
        snprintf(p, sizeof p, "%s.csv", outp);
        csv = fopen(p, "w");
        if (csv) fprintf(csv, "grid,metric,n,mean,p95 (confusion rows: grid,row,ours0,ours1,ours2,ours3)\n");
        if (md)
            fprintf(md, "# Phantom cohort: robust heights, baseline pseudo-healthy estimate, RHLV\n\n"
                        "Made by `build/tests/test_measure_phantom %d %s` (seed 4242, T10-L4,\n"
                        "fracture rate 0.2, %d cases per grid, %.1f s on this machine).\n\n"
                        "| grid | metric | n | mean | 95th pct |\n|---|---|---|---|---|\n",
                    ncase, outp, ncase, secs);
    }
    /* Bounds, from the measured distribution of the default run (20 + 20
     * cases; results/measure-phantom.md; the 100 + 100 run in
     * results/measure-phantom-big.md agrees) with about 50 % margin.
     * Measured means / 95th percentiles:
     *   1 mm:          observed 0.25 / 0.62 mm, healthy 3.0 / 7.4 %,
     *                  RHLV 3.1 / 7.4 points, max-region RHLV 3.1 / 7.4
     *   0.8x0.8x2.5:   observed 0.71 / 1.75 mm, healthy 4.2 / 9.6 %,
     *                  RHLV 5.0 / 12.1 points, max-region RHLV 5.4 / 12.8
     * The observed heights are analytic knots seen through partial volume;
     * the healthy estimate carries the phantom's per-vertebra size variation,
     * which no neighbour can know. */
    static const double bound_mean[2][E_COUNT] = {{0.38, 4.5, 4.7, 4.7}, {1.05, 6.2, 7.5, 8.0}};
    static const double bound_p95[2][E_COUNT] = {{0.95, 11.0, 11.0, 11.0}, {2.60, 14.5, 18.0, 19.0}};
    for (int grid = 0; grid < 2; grid++) {
        printf("# %s: %ld vertebrae (%ld fractured, %ld flagged deformed)\n", gname[grid],
               nvert[grid], nfrac[grid], nflag_frac[grid]);
        for (int e = 0; e < E_COUNT; e++) {
            double mean = acc_mean(&err[grid][e]), p95 = acc_p95(&err[grid][e]);
            printf("#   %-40s n %5zu mean %6.3f p95 %6.3f\n", ename[e], err[grid][e].n, mean, p95);
            if (md) fprintf(md, "| %s | %s | %zu | %.3f | %.3f |\n", gname[grid], ename[e],
                            err[grid][e].n, mean, p95);
            if (csv) fprintf(csv, "%s,%s,%zu,%.4f,%.4f\n", gname[grid], ename[e], err[grid][e].n,
                             mean, p95);
            HV_CHECK(mean <= bound_mean[grid][e], "%s %s mean %.3f > %.3f", gname[grid],
                     ename[e], mean, bound_mean[grid][e]);
            HV_CHECK(p95 <= bound_p95[grid][e], "%s %s p95 %.3f > %.3f", gname[grid], ename[e],
                     p95, bound_p95[grid][e]);
        }
        HV_CHECK(nvert[grid] >= 4L * ncase, "%s: only %ld vertebrae measured", gname[grid], nvert[grid]);
    }
    /* grade confusion (both grids) */
    long c[4][4] = {{0}}, correct = 0, tot = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            c[a][b] = conf[0][a][b] + conf[1][a][b];
            tot += c[a][b];
            if (a == b) correct += c[a][b];
        }
    printf("# grade confusion (rows truth 0-3, cols rule on baseline RHLV):\n");
    if (md) fprintf(md, "\nGenant rule on the baseline RHLV vs the phantom's grade (both grids; rows "
                        "= truth, columns = ours):\n\n| truth / ours | 0 | 1 | 2 | 3 |\n|---|---|---|---|---|\n");
    for (int a = 0; a < 4; a++) {
        printf("#   %ld %ld %ld %ld\n", c[a][0], c[a][1], c[a][2], c[a][3]);
        if (md) fprintf(md, "| %d | %ld | %ld | %ld | %ld |\n", a, c[a][0], c[a][1], c[a][2], c[a][3]);
        if (csv) fprintf(csv, "both,confusion_truth_%d,%ld,%ld,%ld,%ld\n", a, c[a][0], c[a][1], c[a][2], c[a][3]);
    }
    double accu = tot ? (double)correct / (double)tot : 0;
    /* normal vs fractured (grade 0 vs >= 1) sensitivity */
    long tp = 0, fn = 0, fp = 0, tn = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            if (a > 0 && b > 0) tp += c[a][b];
            if (a > 0 && b == 0) fn += c[a][b];
            if (a == 0 && b > 0) fp += c[a][b];
            if (a == 0 && b == 0) tn += c[a][b];
        }
    printf("# grade accuracy %.3f; fractured detected %ld/%ld, false alarms %ld/%ld; %.1f s\n", accu,
           tp, tp + fn, fp, fp + tn, secs);
    if (md) fprintf(md, "\nExact grade agreement %.3f; fractured (grade >= 1) detected %ld of %ld; "
                        "normal called fractured %ld of %ld.\n", accu, tp, tp + fn, fp, fp + tn);
    /* bounds: measured accuracy 0.957, fractures detected 45/48 (0.94), no
     * false alarm in 232 normals (big run: 0.929, 246/288 = 0.85, 0/1112;
     * the misses are grade-1 losses of 20-25 % estimated just under 20 %);
     * margins: accuracy 0.88, detection 0.78, false alarms at most 3 %. */
    HV_CHECK(accu >= 0.88, "grade accuracy %.3f", accu);
    /* (a handful of fractures, as in a quick run with few cases, says nothing) */
    HV_CHECK(tp + fn < 20 || (double)tp / (double)(tp + fn) >= 0.78, "sensitivity %ld/%ld", tp, tp + fn);
    HV_CHECK(fp + tn == 0 || (double)fp / (double)(fp + tn) <= 0.03, "false alarms %ld/%ld", fp, fp + tn);
    if (md) fclose(md);
    if (csv) fclose(csv);
    for (int g = 0; g < 2; g++)
        for (int e = 0; e < E_COUNT; e++) free(err[g][e].v);
    return hv_test_done();
}
