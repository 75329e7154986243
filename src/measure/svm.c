/*
 * svm.c: the reference's SVM grading protocol (spec section 10) on libsvm.
 *
 * The reference uses scikit-learn's SVC, itself a fork of libsvm, so the same
 * solver run on the same problem gives the same model. What has to match is
 * everything around it, rebuilt here:
 *  - rows in the split file's order (the reference's JSON order: test, train,
 *    val), pool = train + test rows, evaluation = val rows;
 *  - StandardScaler fitted on the pool (population std; a zero std scales by 1);
 *  - StratifiedKFold(5, shuffle=False): classes numbered by first appearance,
 *    per-fold class counts by round robin over the sorted encoded labels,
 *    each class's samples given to folds in blocks, in order;
 *  - SVC(kernel="linear", C=1, class_weight="balanced"): per-class weight
 *    n_samples / (n_classes * count) on the fold's training part, passed as
 *    libsvm's weight_label/weight; tol 1e-3, shrinking on, no probability;
 *  - scikit-learn numbers the classes in sorted order before libsvm sees
 *    them; upstream libsvm orders them by first appearance instead, which
 *    changes the one-vs-one pairs and the voting tie-break. Training rows are
 *    therefore stably sorted by grade before svm_train, which makes libsvm's
 *    own grouping identical (sorted classes, original order inside a class).
 * libsvm's rand() is used only for probability estimates and its own
 * cross-validation, which we never call; srand(seed) is still called first so
 * that a future path through rand() stays deterministic. libsvm's training
 * chatter goes to a silent print function (library code never prints).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <svm.h>

#include "hv/measure.h"
#include "svm_internal.h"

#define NCLS HV_SVM_NCLS

const char *hv_svm_solver_name(hv_svm_solver s)
{
    return s == HV_SVM_LIBLINEAR ? "liblinear" : "libsvm";
}

static void svm_quiet(const char *s) { (void)s; }

/* ------------------------------------------------------------- folds */

hv_status hv_svm_stratified_folds(const int *y, size_t n, int n_splits, int *fold)
{
    hv_status st = HV_OK;
    int *enc = NULL, *order = NULL;
    if (!y || !fold) return hv_error_set(HV_ERR_ARG, "folds: NULL argument");
    if (n_splits < 2) return hv_error_set(HV_ERR_ARG, "folds: n_splits must be >= 2, got %d", n_splits);
    if ((size_t)n_splits > n)
        return hv_error_set(HV_ERR_ARG, "folds: n_splits=%d greater than the number of samples %zu",
                            n_splits, n);
    /* classes by first appearance */
    int first_vals[256];
    int nc = 0;
    enc = malloc(n * sizeof *enc);
    order = malloc(n * sizeof *order);
    if (!enc || !order) {
        st = hv_error_set(HV_ERR_NOMEM, "folds: %zu samples", n);
        goto done;
    }
    /* classes sorted by value first (np.unique), then renumbered by the
     * index of their first occurrence */
    int vals[256], nv = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (int c = 0; c < nv; c++)
            if (vals[c] == y[i]) { seen = 1; break; }
        if (!seen) {
            if (nv == 256) {
                st = hv_error_set(HV_ERR_ARG, "folds: more than 256 classes");
                goto done;
            }
            vals[nv++] = y[i];
        }
    }
    nc = nv;
    memcpy(first_vals, vals, sizeof(int) * (size_t)nv); /* already in order of appearance */
    long counts[256] = {0};
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < nc; c++)
            if (first_vals[c] == y[i]) { enc[i] = c; break; }
        counts[enc[i]]++;
    }
    long min_count = counts[0];
    int all_small = 1;
    for (int c = 0; c < nc; c++) {
        if (counts[c] < min_count) min_count = counts[c];
        if (counts[c] >= n_splits) all_small = 0;
    }
    if (all_small) {
        st = hv_error_set(HV_ERR_ARG, "folds: n_splits=%d cannot be greater than the number of "
                          "members in each class", n_splits);
        goto done;
    }
    if (min_count < n_splits)
        hv_log_warn("folds: the least populated class has only %ld members, fewer than n_splits=%d",
                    min_count, n_splits);
    /* y_order = sorted encoded labels; allocation[f][c] = count of class c in y_order[f::n_splits] */
    size_t pos = 0;
    for (int c = 0; c < nc; c++)
        for (long q = 0; q < counts[c]; q++) order[pos++] = c;
    long alloc[64][256];
    if (n_splits > 64) {
        st = hv_error_set(HV_ERR_ARG, "folds: at most 64 splits");
        goto done;
    }
    memset(alloc, 0, sizeof(long) * 256 * (size_t)n_splits);
    for (int f = 0; f < n_splits; f++)
        for (size_t i = (size_t)f; i < n; i += (size_t)n_splits) alloc[f][order[i]]++;
    /* each class's samples, in order, receive fold ids 0,0,..,1,1,.. by allocation */
    for (int c = 0; c < nc; c++) {
        int f = 0;
        long used = 0;
        for (size_t i = 0; i < n; i++) {
            if (enc[i] != c) continue;
            while (f < n_splits && used >= alloc[f][c]) { f++; used = 0; }
            fold[i] = f < n_splits ? f : n_splits - 1;
            used++;
        }
    }
done:
    free(enc);
    free(order);
    return st;
}

/* ----------------------------------------------------------- training */

static void scaler_fit(const hv_svm_row *rows, const size_t *idx, size_t n, double mean[3],
                       double scale[3])
{
    for (int f = 0; f < 3; f++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += rows[idx[i]].x[f];
        mean[f] = s / (double)n;
        double v = 0;
        for (size_t i = 0; i < n; i++) {
            double d = rows[idx[i]].x[f] - mean[f];
            v += d * d;
        }
        double sd = sqrt(v / (double)n);
        scale[f] = sd < 10.0 * 2.220446049250313e-16 ? 1.0 : sd;
    }
}

/* Train on rows idx[0..n) (already scaled features come from mean/scale). */
static hv_status train_model(const hv_svm_row *rows, const size_t *idx, size_t n,
                             const double mean[3], const double scale[3], unsigned seed,
                             hv_svm_solver solver, hv_svm_grader *g)
{
    size_t *ord = NULL;
    hv_status st = HV_OK;
    g->solver = solver;
    ord = malloc((n ? n : 1) * sizeof *ord);
    if (solver == HV_SVM_LIBSVM) {
        g->nodes = malloc(n * 4 * sizeof *g->nodes);
        g->y = malloc(n * sizeof *g->y);
        g->xp = malloc(n * sizeof *g->xp);
    }
    if ((solver == HV_SVM_LIBSVM && (!g->nodes || !g->y || !g->xp)) || !ord) {
        st = hv_error_set(HV_ERR_NOMEM, "svm: %zu rows", n);
        goto done;
    }
    /* stable sort by grade (see the file comment) */
    size_t k = 0;
    long count[NCLS] = {0};
    for (int c = 0; c < NCLS; c++)
        for (size_t i = 0; i < n; i++)
            if (rows[idx[i]].grade == c) { ord[k++] = idx[i]; count[c]++; }
    if (k != n) {
        st = hv_error_set(HV_ERR_ARG, "svm: grades must be 0..3");
        goto done;
    }
    for (size_t i = 0; i < n && solver == HV_SVM_LIBSVM; i++) {
        const hv_svm_row *r = &rows[ord[i]];
        for (int f = 0; f < 3; f++) {
            g->nodes[4 * i + f].index = f + 1;
            g->nodes[4 * i + f].value = (r->x[f] - mean[f]) / scale[f];
        }
        g->nodes[4 * i + 3].index = -1;
        g->nodes[4 * i + 3].value = 0;
        g->xp[i] = &g->nodes[4 * i];
        g->y[i] = (double)r->grade;
    }
    int ncls = 0, wl[NCLS];
    double wt[NCLS];
    for (int c = 0; c < NCLS; c++)
        if (count[c]) ncls++;
    if (ncls < 2) {
        st = hv_error_set(HV_ERR_ARG, "svm: the training rows hold only one grade");
        goto done;
    }
    int nw = 0;
    for (int c = 0; c < NCLS; c++)
        if (count[c]) {
            wl[nw] = c;
            wt[nw] = (double)n / ((double)ncls * (double)count[c]);
            nw++;
        }
    memcpy(g->mean, mean, sizeof g->mean);
    memcpy(g->scale, scale, sizeof g->scale);
    if (solver == HV_SVM_LIBLINEAR) {
        double wall[NCLS] = {0};
        for (int c = 0; c < NCLS; c++)
            if (count[c]) wall[c] = (double)n / ((double)ncls * (double)count[c]);
        st = hv_svm_linear_train(rows, ord, n, count, wall, mean, scale, seed, g);
        goto done;
    }
    struct svm_problem prob = {.l = (int)n, .y = g->y, .x = g->xp};
    struct svm_parameter par;
    memset(&par, 0, sizeof par);
    par.svm_type = C_SVC;
    par.kernel_type = LINEAR;
    par.degree = 3;
    par.gamma = 1.0 / 3.0;
    par.coef0 = 0;
    par.cache_size = 200;
    par.eps = 1e-3;
    par.C = 1.0;
    par.nr_weight = nw;
    par.weight_label = wl;
    par.weight = wt;
    par.nu = 0.5;
    par.p = 0.1;
    par.shrinking = 1;
    par.probability = 0;
    const char *err = svm_check_parameter(&prob, &par);
    if (err) {
        st = hv_error_set(HV_ERR_ARG, "svm: %s", err);
        goto done;
    }
    svm_set_print_string_function(svm_quiet);
    srand(seed);
    g->model = svm_train(&prob, &par);
    /* svm_train copies the weight arrays into model->param; detach them from
     * our stack arrays so a later destroy does not free them. */
    if (g->model) {
        g->model->param.weight_label = NULL;
        g->model->param.weight = NULL;
        g->model->param.nr_weight = 0;
    }
    if (!g->model) st = hv_error_set(HV_ERR_INTERNAL, "svm: training failed");
done:
    free(ord);
    return st;
}

void hv_svm_grader_free(hv_svm_grader *g)
{
    if (!g) return;
    if (g->model) svm_free_and_destroy_model(&g->model);
    free(g->nodes);
    free(g->y);
    free(g->xp);
    free(g);
}

hv_svm_solver hv_svm_grader_solver(const hv_svm_grader *g)
{
    return g ? g->solver : HV_SVM_LIBSVM;
}

/* Scaled triple into nd (libsvm) and xs; 0 when x is not finite. */
static int scale_x(const hv_svm_grader *g, const double x[3], struct svm_node nd[4], double xs[3])
{
    for (int f = 0; f < 3; f++) {
        if (!isfinite(x[f])) return 0;
        xs[f] = (x[f] - g->mean[f]) / g->scale[f];
        nd[f].index = f + 1;
        nd[f].value = xs[f];
    }
    nd[3].index = -1;
    nd[3].value = 0;
    return 1;
}

int hv_svm_predict(const hv_svm_grader *g, const double x[3])
{
    struct svm_node nd[4];
    double xs[3];
    if (!g || (g->solver == HV_SVM_LIBSVM && !g->model) ||
        (g->solver == HV_SVM_LIBLINEAR && !g->n_pairs) || !scale_x(g, x, nd, xs))
        return -1;
    if (g->solver == HV_SVM_LIBLINEAR) return hv_svm_linear_vote(g, xs, NULL);
    return (int)lround(svm_predict(g->model, nd));
}

int hv_svm_decision(const hv_svm_grader *g, const double x[3], double dec[6])
{
    struct svm_node nd[4];
    double xs[3];
    if (!g || !dec || !scale_x(g, x, nd, xs)) return 0;
    if (g->solver == HV_SVM_LIBLINEAR) {
        hv_svm_linear_vote(g, xs, dec);
        return g->n_pairs;
    }
    if (!g->model) return 0;
    int k = svm_get_nr_class(g->model);
    if (k < 2 || k > NCLS) return 0;
    svm_predict_values(g->model, nd, dec);
    return k * (k - 1) / 2;
}

static hv_status check_rows(const hv_svm_row *rows, size_t n)
{
    if (!rows && n) return hv_error_set(HV_ERR_ARG, "svm: NULL rows");
    for (size_t i = 0; i < n; i++) {
        if (rows[i].grade < 0 || rows[i].grade > 3)
            return hv_error_set(HV_ERR_ARG, "grading row %s_%d has grade %d outside 0..3",
                                rows[i].case_id, rows[i].label, rows[i].grade);
        for (int f = 0; f < 3; f++)
            if (!isfinite(rows[i].x[f]))
                return hv_error_set(HV_ERR_ARG, "grading row %s_%d has a non-finite RHLV",
                                    rows[i].case_id, rows[i].label);
    }
    return HV_OK;
}

hv_status hv_svm_train(const hv_svm_row *rows, size_t n, unsigned sets_mask,
                       unsigned seed, hv_svm_grader **out)
{
    return hv_svm_train_solver(rows, n, sets_mask, seed, HV_SVM_LIBSVM, out);
}

hv_status hv_svm_train_solver(const hv_svm_row *rows, size_t n, unsigned sets_mask,
                              unsigned seed, hv_svm_solver solver, hv_svm_grader **out)
{
    hv_status st;
    size_t *idx = NULL, k = 0;
    hv_svm_grader *g = NULL;
    if (!out) return hv_error_set(HV_ERR_ARG, "svm: no output");
    *out = NULL;
    if ((st = check_rows(rows, n)) != HV_OK) return st;
    idx = malloc((n ? n : 1) * sizeof *idx);
    g = calloc(1, sizeof *g);
    if (!idx || !g) {
        st = hv_error_set(HV_ERR_NOMEM, "svm: %zu rows", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (sets_mask & (1u << rows[i].set)) idx[k++] = i;
    if (k == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "svm: no training rows in the chosen sets");
        goto done;
    }
    double mean[3], scale[3];
    scaler_fit(rows, idx, k, mean, scale);
    st = train_model(rows, idx, k, mean, scale, seed, solver, g);
    if (st != HV_OK) goto done;
    *out = g;
    g = NULL;
done:
    hv_svm_grader_free(g);
    free(idx);
    return st;
}

hv_status hv_svm_save(const hv_svm_grader *g, const char *path)
{
    hv_status st = HV_OK;
    char *sp = NULL;
    FILE *f = NULL;
    if (!g || (g->solver == HV_SVM_LIBSVM && !g->model) ||
        (g->solver == HV_SVM_LIBLINEAR && !g->n_pairs) || !path)
        return hv_error_set(HV_ERR_ARG, "svm save: nothing to save");
    if (g->solver == HV_SVM_LIBLINEAR) {
        f = fopen(path, "w");
        if (!f) return hv_error_set(HV_ERR_IO, "svm save: %s: %s", path, strerror(errno));
        st = hv_svm_linear_write(g, f, path);
        if (fclose(f) != 0 && st == HV_OK)
            st = hv_error_set(HV_ERR_IO, "svm save: %s: write failed", path);
        f = NULL;
        if (st != HV_OK) return st;
    } else if (svm_save_model(path, g->model) != 0) {
        return hv_error_set(HV_ERR_IO, "svm save: cannot write %s", path);
    }
    sp = hv_strfmt("%s.scaler", path);
    if (!sp) return hv_error_set(HV_ERR_NOMEM, "svm save");
    f = fopen(sp, "w");
    if (!f) {
        st = hv_error_set(HV_ERR_IO, "svm save: %s: %s", sp, strerror(errno));
        goto done;
    }
    fprintf(f, "hv-svm-scaler 1\nmean %.17g %.17g %.17g\nscale %.17g %.17g %.17g\n", g->mean[0],
            g->mean[1], g->mean[2], g->scale[0], g->scale[1], g->scale[2]);
    if (fclose(f) != 0) st = hv_error_set(HV_ERR_IO, "svm save: %s: write failed", sp);
    f = NULL;
done:
    if (f) fclose(f);
    free(sp);
    return st;
}

hv_status hv_svm_load(const char *path, hv_svm_grader **out)
{
    hv_status st = HV_OK;
    char *sp = NULL;
    FILE *f = NULL;
    hv_svm_grader *g = NULL;
    if (!path || !out) return hv_error_set(HV_ERR_ARG, "svm load: NULL argument");
    *out = NULL;
    g = calloc(1, sizeof *g);
    sp = hv_strfmt("%s.scaler", path);
    if (!g || !sp) {
        st = hv_error_set(HV_ERR_NOMEM, "svm load");
        goto done;
    }
    if ((st = hv_file_check_regular(path, "svm load: model")) != HV_OK ||
        (st = hv_file_check_regular(sp, "svm load: scaler")) != HV_OK)
        goto done;
    f = fopen(sp, "r");
    if (!f) {
        st = hv_error_set(HV_ERR_IO, "svm load: %s: %s", sp, strerror(errno));
        goto done;
    }
    int ver = 0;
    if (fscanf(f, "hv-svm-scaler %d mean %lf %lf %lf scale %lf %lf %lf", &ver, &g->mean[0],
               &g->mean[1], &g->mean[2], &g->scale[0], &g->scale[1], &g->scale[2]) != 7 ||
        ver != 1) {
        st = hv_error_set(HV_ERR_FORMAT, "svm load: %s is not an hv-svm-scaler 1 file", sp);
        goto done;
    }
    for (int q = 0; q < 3; q++)
        if (!isfinite(g->mean[q]) || !(g->scale[q] > 0) || !isfinite(g->scale[q])) {
            st = hv_error_set(HV_ERR_FORMAT, "svm load: %s: bad scaler values", sp);
            goto done;
        }
    FILE *probe = fopen(path, "r");
    if (!probe) {
        st = hv_error_set(HV_ERR_IO, "svm load: %s: %s", path, strerror(errno));
        goto done;
    }
    char head[32] = "";
    if (!fgets(head, sizeof head, probe)) head[0] = '\0';
    if (!strncmp(head, "hv-svm-linear", 13)) {
        rewind(probe);
        st = hv_svm_linear_read(g, probe, path);
        fclose(probe);
        if (st != HV_OK) goto done;
        *out = g;
        g = NULL;
        goto done;
    }
    fclose(probe);
    g->model = svm_load_model(path);
    if (!g->model) {
        st = hv_error_set(HV_ERR_FORMAT, "svm load: %s is not a libsvm model", path);
        goto done;
    }
    if (g->model->param.svm_type != C_SVC || g->model->param.kernel_type != LINEAR) {
        st = hv_error_set(HV_ERR_FORMAT, "svm load: %s is not a linear C-SVC model", path);
        goto done;
    }
    *out = g;
    g = NULL;
done:
    if (f) fclose(f);
    free(sp);
    hv_svm_grader_free(g);
    return st;
}

/* ----------------------------------------------------- cross-validation */

void hv_svm_cv_free(hv_svm_cv *cv)
{
    if (!cv) return;
    if (cv->folds)
        for (int f = 0; f < cv->n_folds; f++) free(cv->folds[f].pred);
    free(cv->folds);
    free(cv->fold);
    free(cv->pool);
    free(cv->val);
    free(cv->ytrue);
    free(cv);
}

hv_status hv_svm_cv_begin(const hv_svm_row *rows, size_t n, int n_folds, unsigned seed,
                          hv_svm_solver solver, hv_svm_cv **out)
{
    hv_status st;
    int *ypool = NULL;
    hv_svm_cv *cv = NULL;
    if (!out) return hv_error_set(HV_ERR_ARG, "svm cv: no output");
    *out = NULL;
    if ((st = check_rows(rows, n)) != HV_OK) return st;
    cv = calloc(1, sizeof *cv);
    ypool = malloc((n ? n : 1) * sizeof *ypool);
    if (!cv || !ypool) {
        st = hv_error_set(HV_ERR_NOMEM, "svm cv: %zu rows", n);
        goto done;
    }
    cv->pool = malloc((n ? n : 1) * sizeof *cv->pool);
    cv->val = malloc((n ? n : 1) * sizeof *cv->val);
    cv->ytrue = malloc((n ? n : 1) * sizeof *cv->ytrue);
    if (!cv->pool || !cv->val || !cv->ytrue) {
        st = hv_error_set(HV_ERR_NOMEM, "svm cv: %zu rows", n);
        goto done;
    }
    size_t np = 0, nv = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].set == HV_SPLIT_VAL) cv->val[nv++] = i;
        else cv->pool[np++] = i;
    }
    if (np == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "svm cv: no train/test rows");
        goto done;
    }
    if (nv == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "svm cv: no val rows");
        goto done;
    }
    cv->n_folds = n_folds;
    cv->n_pool = np;
    cv->n_val = nv;
    cv->solver = solver;
    cv->seed = seed;
    cv->fold = malloc(np * sizeof *cv->fold);
    cv->folds = calloc((size_t)(n_folds > 0 ? n_folds : 1), sizeof *cv->folds);
    if (!cv->fold || !cv->folds) {
        st = hv_error_set(HV_ERR_NOMEM, "svm cv");
        goto done;
    }
    for (size_t i = 0; i < np; i++) ypool[i] = rows[cv->pool[i]].grade;
    for (size_t i = 0; i < nv; i++) cv->ytrue[i] = rows[cv->val[i]].grade;
    st = hv_svm_stratified_folds(ypool, np, n_folds, cv->fold);
    if (st != HV_OK) goto done;
    scaler_fit(rows, cv->pool, np, cv->scaler_mean, cv->scaler_scale);
    *out = cv;
    cv = NULL;
done:
    hv_svm_cv_free(cv);
    free(ypool);
    return st;
}

hv_status hv_svm_cv_fold(hv_svm_cv *cv, const hv_svm_row *rows, size_t n, int f)
{
    hv_status st = HV_OK;
    size_t *tr = NULL;
    if (!cv || !rows || f < 0 || f >= cv->n_folds)
        return hv_error_set(HV_ERR_ARG, "svm cv: fold %d of %d", f, cv ? cv->n_folds : 0);
    if (cv->n_pool + cv->n_val != n)
        return hv_error_set(HV_ERR_ARG, "svm cv: %zu rows, the plan has %zu", n,
                            cv->n_pool + cv->n_val);
    hv_svm_grader g;
    memset(&g, 0, sizeof g);
    hv_svm_fold_result *fr = &cv->folds[f];
    free(fr->pred);
    fr->pred = NULL;
    tr = malloc(cv->n_pool * sizeof *tr);
    if (!tr) {
        st = hv_error_set(HV_ERR_NOMEM, "svm cv");
        goto done;
    }
    size_t nt = 0;
    for (size_t i = 0; i < cv->n_pool; i++)
        if (cv->fold[i] != f) tr[nt++] = cv->pool[i];
    st = train_model(rows, tr, nt, cv->scaler_mean, cv->scaler_scale, cv->seed, cv->solver, &g);
    if (st != HV_OK) {
        hv_error_wrap(st, "svm cv: fold %d", f);
        goto done;
    }
    fr->pred = malloc(cv->n_val * sizeof *fr->pred);
    if (!fr->pred) {
        st = hv_error_set(HV_ERR_NOMEM, "svm cv: predictions");
        goto done;
    }
    for (size_t i = 0; i < cv->n_val; i++) fr->pred[i] = hv_svm_predict(&g, rows[cv->val[i]].x);
    st = hv_metrics_classify(cv->ytrue, fr->pred, cv->n_val, &fr->m);
done:
    if (g.model) svm_free_and_destroy_model(&g.model);
    free(g.nodes);
    free(g.y);
    free(g.xp);
    free(tr);
    return st;
}

hv_status hv_svm_cv_finish(hv_svm_cv *cv)
{
    if (!cv || !cv->folds) return hv_error_set(HV_ERR_ARG, "svm cv: nothing to finish");
    double acc[4][64];
    for (int f = 0; f < cv->n_folds; f++) {
        hv_svm_fold_result *fr = &cv->folds[f];
        if (!fr->pred) return hv_error_set(HV_ERR_ARG, "svm cv: fold %d has no predictions", f);
        hv_status st = hv_metrics_classify(cv->ytrue, fr->pred, cv->n_val, &fr->m);
        if (st != HV_OK) return hv_error_wrap(st, "svm cv: fold %d", f);
        acc[0][f] = fr->m.macro_f1;
        acc[1][f] = fr->m.macro_precision;
        acc[2][f] = fr->m.macro_recall;
        acc[3][f] = fr->m.accuracy;
    }
    int nf = cv->n_folds;
    for (int q = 0; q < 4; q++) {
        double s = 0, v = 0;
        for (int f = 0; f < nf; f++) s += acc[q][f];
        cv->mean[q] = s / nf;
        for (int f = 0; f < nf; f++) v += (acc[q][f] - cv->mean[q]) * (acc[q][f] - cv->mean[q]);
        cv->var[q] = v / nf;
    }
    return HV_OK;
}

hv_status hv_svm_cross_validate(const hv_svm_row *rows, size_t n, int n_folds,
                                unsigned seed, hv_svm_cv **out)
{
    return hv_svm_cross_validate_solver(rows, n, n_folds, seed, HV_SVM_LIBSVM, out);
}

hv_status hv_svm_cross_validate_solver(const hv_svm_row *rows, size_t n, int n_folds,
                                       unsigned seed, hv_svm_solver solver, hv_svm_cv **out)
{
    hv_svm_cv *cv = NULL;
    if (!out) return hv_error_set(HV_ERR_ARG, "svm cv: no output");
    *out = NULL;
    hv_status st = hv_svm_cv_begin(rows, n, n_folds, seed, solver, &cv);
    for (int f = 0; st == HV_OK && f < n_folds; f++) st = hv_svm_cv_fold(cv, rows, n, f);
    if (st == HV_OK) st = hv_svm_cv_finish(cv);
    if (st == HV_OK) {
        *out = cv;
        cv = NULL;
    }
    hv_svm_cv_free(cv);
    return st;
}

/* ------------------------------------------------------------ table I/O */

static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = '\0';
        p = c + 1;
    }
    /* strip the line end from the last field */
    char *e = fields[n - 1] + strlen(fields[n - 1]);
    while (e > fields[n - 1] && (e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
    return n;
}

typedef struct trow {
    char case_id[64];
    int label;
    double x[3];
} trow;

hv_status hv_svm_rows_from_table(const char *csv_path, const hv_split *split,
                                 hv_svm_row **rows_out, size_t *n_out, size_t *n_skipped)
{
    hv_status st = HV_OK;
    FILE *f = NULL;
    trow *t = NULL;
    hv_svm_row *rows = NULL;
    size_t nt = 0, cap = 0, skipped = 0;
    char line[8192];
    if (!csv_path || !split || !rows_out || !n_out)
        return hv_error_set(HV_ERR_ARG, "svm table: NULL argument");
    *rows_out = NULL;
    *n_out = 0;
    if ((st = hv_file_check_regular(csv_path, "svm table")) != HV_OK) return st;
    f = fopen(csv_path, "r");
    if (!f) return hv_error_set(HV_ERR_IO, "svm table: %s: %s", csv_path, strerror(errno));
    if (!fgets(line, sizeof line, f)) {
        st = hv_error_set(HV_ERR_FORMAT, "svm table: %s is empty", csv_path);
        goto done;
    }
    char *fld[128];
    int nf = split_csv(line, fld, 128);
    int ci = -1, li = -1, xi[3] = {-1, -1, -1};
    static const char *xnames[3] = {"rhlv_ant", "rhlv_mid", "rhlv_post"};
    for (int q = 0; q < nf; q++) {
        if (!strcmp(fld[q], "case")) ci = q;
        if (!strcmp(fld[q], "label")) li = q;
        for (int k = 0; k < 3; k++)
            if (!strcmp(fld[q], xnames[k])) xi[k] = q;
    }
    if (ci < 0 || li < 0 || xi[0] < 0 || xi[1] < 0 || xi[2] < 0) {
        st = hv_error_set(HV_ERR_FORMAT,
                          "svm table: %s lacks one of the columns case,label,rhlv_ant,rhlv_mid,rhlv_post",
                          csv_path);
        goto done;
    }
    long lineno = 1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '\n' || line[0] == '\r' || line[0] == '\0') continue;
        int m = split_csv(line, fld, 128);
        int need = ci;
        if (li > need) need = li;
        for (int k = 0; k < 3; k++)
            if (xi[k] > need) need = xi[k];
        if (m <= need) {
            st = hv_error_set(HV_ERR_FORMAT, "svm table: %s:%ld: too few fields", csv_path, lineno);
            goto done;
        }
        if (nt == cap) {
            cap = cap ? 2 * cap : 256;
            trow *nt2 = realloc(t, cap * sizeof *t);
            if (!nt2) {
                st = hv_error_set(HV_ERR_NOMEM, "svm table");
                goto done;
            }
            t = nt2;
        }
        trow *r = &t[nt];
        snprintf(r->case_id, sizeof r->case_id, "%s", fld[ci]);
        char *end;
        r->label = (int)strtol(fld[li], &end, 10);
        if (end == fld[li]) {
            st = hv_error_set(HV_ERR_FORMAT, "svm table: %s:%ld: bad label '%s'", csv_path, lineno,
                              fld[li]);
            goto done;
        }
        for (int k = 0; k < 3; k++) {
            r->x[k] = strtod(fld[xi[k]], &end);
            if (end == fld[xi[k]]) r->x[k] = NAN; /* "nan", "" */
        }
        nt++;
    }
    rows = calloc(split->n ? split->n : 1, sizeof *rows);
    if (!rows) {
        st = hv_error_set(HV_ERR_NOMEM, "svm table");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < split->n; i++) {
        const hv_split_entry *e = &split->items[i];
        const trow *hit = NULL;
        for (size_t j = 0; j < nt && !hit; j++)
            if (t[j].label == e->label && !strcmp(t[j].case_id, e->case_id)) hit = &t[j];
        if (!hit || !isfinite(hit->x[0]) || !isfinite(hit->x[1]) || !isfinite(hit->x[2])) {
            skipped++;
            continue;
        }
        hv_svm_row *r = &rows[k++];
        snprintf(r->case_id, sizeof r->case_id, "%s", e->case_id);
        r->label = e->label;
        r->grade = e->grade;
        r->set = e->set;
        memcpy(r->x, hit->x, sizeof r->x);
    }
    *rows_out = rows;
    *n_out = k;
    rows = NULL;
    if (n_skipped) *n_skipped = skipped;
done:
    if (f) fclose(f);
    free(t);
    free(rows);
    return st;
}
