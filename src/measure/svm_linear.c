/*
 * svm_linear.c: the SVM grader's linear C-SVC through liblinear, for
 * training sets too large for libsvm (docs/measure.md, "SVM solvers").
 *
 * libsvm (scikit-learn's SVC, the reference) solves a 4-class problem one
 * versus one: six binary C-SVCs, one per pair of grades, each on the rows of
 * its two grades, and the class with most votes wins (ties: the lower
 * grade). liblinear's own multi-class schemes are one-versus-rest and
 * Crammer-Singer, which draw different boundaries and would change the
 * predictions of rows between two grades. So this file keeps libsvm's
 * decision rule and only swaps the binary solver: for each pair it trains
 * liblinear's dual coordinate descent for the L2-regularised hinge loss
 * (L2R_L1LOSS_SVC_DUAL, the same objective as libsvm's C-SVC) with the same
 * C = 1 and the same per-class weights (balanced over the whole training
 * part, as scikit-learn computes them before libsvm splits the pairs), on
 * the same scaled features, and the votes are counted as libsvm does.
 *
 * What cannot be the same: liblinear has no unregularised intercept; the
 * intercept is the weight of an extra constant feature (HV_SVM_LINEAR_BIAS)
 * and enters the regulariser as (b / B)^2 / 2. With B = 10 on standardised
 * features that term is small but not zero, and the solvers stop at
 * different tolerances, so a row very close to a pair's boundary can fall
 * on the other side. tests/measure/test_measure_svm_linear.c lists the rows
 * where that happens on the committed tables.
 *
 * The cost is linear in the rows per pass (each row is in three of the six
 * pairs), against libsvm's roughly quadratic-to-cubic growth.
 * liblinear shuffles with rand(); srand(seed) before each pair makes every
 * model a function of its rows alone.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <linear.h>

#include "svm_internal.h"

static void linear_quiet(const char *s) { (void)s; }

hv_status hv_svm_linear_train(const hv_svm_row *rows, const size_t *ord, size_t n,
                              const long count[HV_SVM_NCLS], const double wt[HV_SVM_NCLS],
                              const double mean[3], const double scale[3], unsigned seed,
                              hv_svm_grader *g)
{
    hv_status st = HV_OK;
    struct feature_node *nodes = NULL;
    struct feature_node **xp = NULL;
    double *y = NULL;
    if (n > (size_t)0x7fffffff)
        return hv_error_set(HV_ERR_ARG, "svm (liblinear): %zu rows exceed liblinear's int count", n);
    nodes = malloc(n * 5 * sizeof *nodes);
    xp = malloc(n * sizeof *xp);
    y = malloc(n * sizeof *y);
    if (!nodes || !xp || !y) {
        st = hv_error_set(HV_ERR_NOMEM, "svm (liblinear): %zu rows", n);
        goto done;
    }
    /* scaled rows, in ord's (grade-sorted) order, with the bias feature */
    for (size_t i = 0; i < n; i++) {
        const hv_svm_row *r = &rows[ord[i]];
        struct feature_node *x = &nodes[5 * i];
        for (int f = 0; f < 3; f++) {
            x[f].index = f + 1;
            x[f].value = (r->x[f] - mean[f]) / scale[f];
        }
        x[3].index = 4;
        x[3].value = HV_SVM_LINEAR_BIAS;
        x[4].index = -1;
        x[4].value = 0;
    }
    size_t first[HV_SVM_NCLS + 1];
    first[0] = 0;
    for (int c = 0; c < HV_SVM_NCLS; c++) first[c + 1] = first[c] + (size_t)count[c];
    g->n_cls = 0;
    for (int c = 0; c < HV_SVM_NCLS; c++)
        if (count[c]) g->cls[g->n_cls++] = c;
    g->n_pairs = 0;
    set_print_string_function(linear_quiet);
    for (int a = 0; a < g->n_cls; a++)
        for (int b = a + 1; b < g->n_cls; b++) {
            int ca = g->cls[a], cb = g->cls[b];
            size_t m = 0;
            /* libsvm's pair problem: the first class's rows, then the second's */
            for (size_t i = first[ca]; i < first[ca + 1]; i++, m++) {
                xp[m] = &nodes[5 * i];
                y[m] = +1;
            }
            for (size_t i = first[cb]; i < first[cb + 1]; i++, m++) {
                xp[m] = &nodes[5 * i];
                y[m] = -1;
            }
            int wl[2] = {+1, -1};
            double ww[2] = {wt[ca], wt[cb]};
            struct problem prob = {.l = (int)m, .n = 4, .y = y, .x = xp, .bias = HV_SVM_LINEAR_BIAS};
            struct parameter par;
            memset(&par, 0, sizeof par);
            par.solver_type = L2R_L1LOSS_SVC_DUAL;
            par.eps = HV_SVM_LINEAR_EPS;
            par.C = 1.0;
            par.nr_weight = 2;
            par.weight_label = wl;
            par.weight = ww;
            par.p = 0.1;
            par.init_sol = NULL;
            const char *err = check_parameter(&prob, &par);
            if (err) {
                st = hv_error_set(HV_ERR_ARG, "svm (liblinear): %s", err);
                goto done;
            }
            srand(seed);
            struct model *md = train(&prob, &par);
            if (!md) {
                st = hv_error_set(HV_ERR_INTERNAL, "svm (liblinear): training grades %d/%d failed",
                                  ca, cb);
                goto done;
            }
            /* liblinear puts +1 first for a -1/+1 problem; honour whatever
             * it chose: the decision is for md->label[0] */
            double sgn = md->label[0] == +1 ? 1.0 : -1.0;
            int k = g->n_pairs++;
            g->pa[k] = a;
            g->pb[k] = b;
            for (int f = 0; f < 3; f++) g->w[k][f] = sgn * md->w[f];
            g->b[k] = sgn * md->w[3] * HV_SVM_LINEAR_BIAS;
            free_and_destroy_model(&md);
        }
    g->solver = HV_SVM_LIBLINEAR;
done:
    free(nodes);
    free(xp);
    free(y);
    return st;
}

int hv_svm_linear_vote(const hv_svm_grader *g, const double xs[3], double *dec)
{
    int vote[HV_SVM_NCLS] = {0};
    for (int k = 0; k < g->n_pairs; k++) {
        double d = g->w[k][0] * xs[0] + g->w[k][1] * xs[1] + g->w[k][2] * xs[2] + g->b[k];
        if (dec) dec[k] = d;
        vote[d > 0 ? g->pa[k] : g->pb[k]]++;
    }
    int best = 0;
    for (int c = 1; c < g->n_cls; c++)
        if (vote[c] > vote[best]) best = c;
    return g->n_cls ? g->cls[best] : -1;
}

hv_status hv_svm_linear_write(const hv_svm_grader *g, FILE *f, const char *path)
{
    fprintf(f, "hv-svm-linear 1\n# liblinear one-vs-one (L2R_L1LOSS_SVC_DUAL, C 1, bias %g, eps %g);\n"
               "# pair A B w0 w1 w2 b: w . x_scaled + b > 0 votes for grade A\nclasses %d",
            HV_SVM_LINEAR_BIAS, HV_SVM_LINEAR_EPS, g->n_cls);
    for (int c = 0; c < g->n_cls; c++) fprintf(f, " %d", g->cls[c]);
    fprintf(f, "\n");
    for (int k = 0; k < g->n_pairs; k++)
        fprintf(f, "pair %d %d %.17g %.17g %.17g %.17g\n", g->cls[g->pa[k]], g->cls[g->pb[k]],
                g->w[k][0], g->w[k][1], g->w[k][2], g->b[k]);
    if (ferror(f)) return hv_error_set(HV_ERR_IO, "svm save: %s: write failed", path);
    return HV_OK;
}

hv_status hv_svm_linear_read(hv_svm_grader *g, FILE *f, const char *path)
{
    char line[512];
    int ver = 0;
    if (!fgets(line, sizeof line, f) || sscanf(line, "hv-svm-linear %d", &ver) != 1 || ver != 1)
        return hv_error_set(HV_ERR_FORMAT, "svm load: %s is not an hv-svm-linear 1 file", path);
    int have_cls = 0;
    g->n_pairs = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!strncmp(line, "classes ", 8)) {
            int c[HV_SVM_NCLS + 1], k = 0;
            k = sscanf(line, "classes %d %d %d %d %d", &c[HV_SVM_NCLS], &c[0], &c[1], &c[2], &c[3]);
            int nc = c[HV_SVM_NCLS];
            if (k < 1 || nc < 2 || nc > HV_SVM_NCLS || k != nc + 1)
                return hv_error_set(HV_ERR_FORMAT, "svm load: %s: bad classes line", path);
            for (int q = 0; q < nc; q++)
                if (c[q] < 0 || c[q] >= HV_SVM_NCLS || (q && c[q] <= c[q - 1]))
                    return hv_error_set(HV_ERR_FORMAT, "svm load: %s: classes must be increasing "
                                        "grades 0..3", path);
            g->n_cls = nc;
            memcpy(g->cls, c, (size_t)nc * sizeof(int));
            have_cls = 1;
            continue;
        }
        int A, B;
        double w0, w1, w2, b;
        if (!have_cls || sscanf(line, "pair %d %d %lf %lf %lf %lf", &A, &B, &w0, &w1, &w2, &b) != 6)
            return hv_error_set(HV_ERR_FORMAT, "svm load: %s: unexpected line '%.40s'", path, line);
        int k = g->n_pairs;
        /* pairs must come in libsvm's order over the classes */
        int want_a = 0, want_b = 1, q = 0;
        for (int a = 0; a < g->n_cls; a++)
            for (int bb = a + 1; bb < g->n_cls; bb++, q++)
                if (q == k) want_a = a, want_b = bb;
        if (k >= g->n_cls * (g->n_cls - 1) / 2 || A != g->cls[want_a] || B != g->cls[want_b] ||
            !isfinite(w0) || !isfinite(w1) || !isfinite(w2) || !isfinite(b))
            return hv_error_set(HV_ERR_FORMAT, "svm load: %s: pair %d %d out of order or not finite",
                                path, A, B);
        g->pa[k] = want_a;
        g->pb[k] = want_b;
        g->w[k][0] = w0;
        g->w[k][1] = w1;
        g->w[k][2] = w2;
        g->b[k] = b;
        g->n_pairs++;
    }
    if (!have_cls || g->n_pairs != g->n_cls * (g->n_cls - 1) / 2)
        return hv_error_set(HV_ERR_FORMAT, "svm load: %s: %d pairs for %d classes", path,
                            g->n_pairs, g->n_cls);
    g->solver = HV_SVM_LIBLINEAR;
    return HV_OK;
}
