/*
 * gather.c: after the last case, grade the cohort (rank 0 alone).
 *
 * Grader choice (grader.method = auto): when the split has train, val and
 * test rows, the reference's SVM protocol (measure issue, spec section 10):
 * 5-fold stratified cross-validation over train+test scored on val, plus a
 * final grader trained on train+test that predicts every vertebra and is
 * scored on val. Otherwise the Genant rule on the measured RHLV, scored
 * against whatever known grades there are. When the SVM protocol cannot run
 * (too few rows of a class for the folds, typically a tiny cohort) the rule
 * grades instead and /grader/@note says why, rather than failing the run.
 *
 * Rows enter the SVM in the split file's order (the reference's fold
 * construction depends on it), never in the order ranks happened to finish,
 * so grading is identical for any number of ranks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

typedef struct {
    const char *id;
    int label;
    size_t idx;
} vkey;

static int cmp_vkey(const void *a, const void *b)
{
    const vkey *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return (x->label > y->label) - (x->label < y->label);
}

static double max3(const double *r)
{
    double m = NAN;
    for (int g = 1; g < HV_REG_COUNT; g++)
        if (!isnan(r[g]) && (isnan(m) || r[g] > m)) m = r[g];
    return m;
}

static hv_status grade_rule(hv_run_vrow *v, size_t n, hv_grader_result *g)
{
    int *yt = malloc((n ? n : 1) * sizeof *yt), *yp = malloc((n ? n : 1) * sizeof *yp);
    if (!yt || !yp) {
        free(yt);
        free(yp);
        return hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        v[i].grade_pred = v[i].grade_rule;
        if (v[i].known_grade >= 0 && v[i].grade_rule >= 0) {
            yt[k] = v[i].known_grade;
            yp[k] = v[i].grade_rule;
            k++;
        }
    }
    hv_status st = HV_OK;
    snprintf(g->method, sizeof g->method, "rule");
    if (k > 0) {
        st = hv_metrics_classify(yt, yp, k, &g->m);
        g->have_metrics = st == HV_OK;
        snprintf(g->evaluated_on, sizeof g->evaluated_on, "all");
    }
    free(yt);
    free(yp);
    return st;
}

static hv_status grade_svm(hv_run_vrow *v, size_t n, const hv_run_crow *cases,
                           const hv_gather_opts *o, hv_grader_result *g)
{
    hv_status st = HV_OK;
    vkey *keys = malloc((n ? n : 1) * sizeof *keys);
    hv_svm_row *rows = malloc((o->split->n ? o->split->n : 1) * sizeof *rows);
    hv_svm_cv *cv = NULL;
    hv_svm_grader *gr = NULL;
    int *yt = NULL, *yp = NULL;
    if (!keys || !rows) {
        st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) keys[i] = (vkey){cases[v[i].case_index].id, v[i].label, i};
    qsort(keys, n, sizeof *keys, cmp_vkey);
    size_t nr = 0, skipped = 0;
    for (size_t s = 0; s < o->split->n; s++) {
        const hv_split_entry *e = &o->split->items[s];
        vkey want = {e->case_id, e->label, 0};
        vkey *hit = n ? bsearch(&want, keys, n, sizeof *keys, cmp_vkey) : NULL;
        const hv_run_vrow *vr = hit ? &v[hit->idx] : NULL;
        if (!vr || isnan(vr->rhlv[HV_REG_ANT]) || isnan(vr->rhlv[HV_REG_MID]) ||
            isnan(vr->rhlv[HV_REG_POST])) {
            skipped++;
            continue;
        }
        hv_svm_row *r = &rows[nr++];
        memset(r, 0, sizeof *r);
        snprintf(r->case_id, sizeof r->case_id, "%s", e->case_id);
        r->label = e->label;
        r->grade = e->grade;
        r->set = e->set;
        r->x[0] = vr->rhlv[HV_REG_ANT];
        r->x[1] = vr->rhlv[HV_REG_MID];
        r->x[2] = vr->rhlv[HV_REG_POST];
    }
    if (skipped)
        hv_log_info("gather: %zu split entries have no measured vertebra with finite RHLV "
                    "(failed cases, unlabelled levels); the SVM uses %zu rows", skipped, nr);
    st = hv_svm_cross_validate(rows, nr, o->folds, o->seed, &cv);
    if (st != HV_OK) goto done;
    st = hv_svm_train(rows, nr, (1u << HV_SPLIT_TRAIN) | (1u << HV_SPLIT_TEST), o->seed, &gr);
    if (st != HV_OK) goto done;

    snprintf(g->method, sizeof g->method, "svm");
    g->n_folds = cv->n_folds > 16 ? 16 : cv->n_folds;
    for (int f = 0; f < g->n_folds; f++) {
        g->fold_metrics[f][0] = cv->folds[f].m.macro_f1;
        g->fold_metrics[f][1] = cv->folds[f].m.macro_precision;
        g->fold_metrics[f][2] = cv->folds[f].m.macro_recall;
        g->fold_metrics[f][3] = cv->folds[f].m.accuracy;
    }
    memcpy(g->mean, cv->mean, sizeof g->mean);
    memcpy(g->var, cv->var, sizeof g->var);
    for (size_t i = 0; i < n; i++) {
        double x[3] = {v[i].rhlv[HV_REG_ANT], v[i].rhlv[HV_REG_MID], v[i].rhlv[HV_REG_POST]};
        v[i].grade_pred = hv_svm_predict(gr, x);
    }
    yt = malloc((nr ? nr : 1) * sizeof *yt);
    yp = malloc((nr ? nr : 1) * sizeof *yp);
    if (!yt || !yp) {
        st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < nr; i++) {
        if (rows[i].set != HV_SPLIT_VAL) continue;
        yt[k] = rows[i].grade;
        yp[k] = hv_svm_predict(gr, rows[i].x);
        k++;
    }
    if (k > 0) {
        st = hv_metrics_classify(yt, yp, k, &g->m);
        if (st != HV_OK) goto done;
        g->have_metrics = 1;
        snprintf(g->evaluated_on, sizeof g->evaluated_on, "val");
    }
    if (o->out_dir) {
        char *p = hv_strfmt("%s/svm_model.txt", o->out_dir);
        if (!p) {
            st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
            goto done;
        }
        st = hv_svm_save(gr, p);
        free(p);
    }
done:
    free(keys);
    free(rows);
    free(yt);
    free(yp);
    hv_svm_cv_free(cv);
    hv_svm_grader_free(gr);
    return st;
}

static int split_has_all_sets(const hv_split *s)
{
    int have[HV_SPLIT_COUNT] = {0};
    for (size_t i = 0; s && i < s->n; i++)
        if ((int)s->items[i].set >= 0 && s->items[i].set < HV_SPLIT_COUNT) have[s->items[i].set] = 1;
    return have[HV_SPLIT_TRAIN] && have[HV_SPLIT_VAL] && have[HV_SPLIT_TEST];
}

/* The confusion matrix figure of a grader's metrics. */
static hv_status plot_confusion(const char *path, const hv_class_metrics *m, const char *title)
{
    const int k = m->n_classes;
    long count[16 * 16];
    char names[16][16];
    const char *np[16];
    for (int r = 0; r < k; r++) {
        snprintf(names[r], sizeof names[r], "%d", m->classes[r]);
        np[r] = names[r];
        for (int c = 0; c < k; c++) count[r * k + c] = m->confusion[r][c];
    }
    char cap[96];
    snprintf(cap, sizeof cap, "macro-F1 %.3f   accuracy %.3f", m->macro_f1, m->accuracy);
    hv_io_confusion cf = {.title = title, .caption = cap, .k = k, .names = np, .count = count};
    return hv_io_plot_confusion(path, &cf);
}

hv_status hv_gather_run(hv_store *s, const hv_gather_opts *o, hv_grader_result *g)
{
    memset(g, 0, sizeof *g);
    hv_run_vrow *v = NULL;
    hv_run_crow *cases = NULL;
    double *pct = NULL;
    int *grd = NULL;
    char *p = NULL;
    size_t n = 0;
    hv_status st = hv_store_read_vertebrae(s, &v, &n);
    if (st != HV_OK) goto done;
    size_t nc = (size_t)hv_store_n_cases(s);
    cases = malloc((nc ? nc : 1) * sizeof *cases);
    if (!cases) {
        st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cases, NULL)) != HV_OK) goto done;

    int want_svm = !strcmp(o->method, "svm") ||
                   (!strcmp(o->method, "auto") && split_has_all_sets(o->split));
    if (want_svm && !split_has_all_sets(o->split)) {
        snprintf(g->note, sizeof g->note,
                 "grader.method = svm needs a split with train, val and test; graded by the "
                 "Genant rule");
        want_svm = 0;
    }
    if (want_svm) {
        st = grade_svm(v, n, cases, o, g);
        if (st != HV_OK) {
            hv_log_warn("gather: the SVM protocol could not run (%s); grading with the Genant rule",
                        hv_error_detail());
            snprintf(g->note, sizeof g->note, "SVM protocol not possible: %.200s; Genant rule used",
                     hv_error_detail());
            char keep[256];
            snprintf(keep, sizeof keep, "%s", g->note);
            memset(g, 0, sizeof *g);
            snprintf(g->note, sizeof g->note, "%s", keep);
            want_svm = 0;
        }
    }
    if (!want_svm) {
        st = grade_rule(v, n, g);
        if (st != HV_OK) goto done;
    }
    if ((st = hv_store_set_pred(s, v, n)) != HV_OK) goto done;
    if ((st = hv_store_write_grader(s, g)) != HV_OK) goto done;

    if (o->out_dir) {
        if (g->have_metrics) {
            long total = 0;
            for (int a = 0; a < g->m.n_classes; a++)
                for (int b = 0; b < g->m.n_classes; b++) total += g->m.confusion[a][b];
            char title[96];
            snprintf(title, sizeof title, "%s on %s (n = %ld)",
                     !strcmp(g->method, "svm") ? "SVM grader" : "Genant rule",
                     !strcmp(g->evaluated_on, "val") ? "val" : "known grades", total);
            p = hv_strfmt("%s/confusion.png", o->out_dir);
            if (!p) {
                st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
                goto done;
            }
            if ((st = plot_confusion(p, &g->m, title)) != HV_OK) goto done;
            free(p);
            p = NULL;
        }
        pct = malloc((n ? n : 1) * sizeof *pct);
        grd = malloc((n ? n : 1) * sizeof *grd);
        if (!pct || !grd) {
            st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
            goto done;
        }
        int any_known = 0;
        for (size_t i = 0; i < n; i++) any_known |= v[i].known_grade >= 0;
        for (size_t i = 0; i < n; i++) {
            pct[i] = 100.0 * max3(v[i].rhlv);
            grd[i] = any_known ? v[i].known_grade : v[i].grade_pred;
        }
        p = hv_strfmt("%s/rhlv_by_grade.png", o->out_dir);
        if (!p) {
            st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
            goto done;
        }
        static const char *const grades[4] = {"grade 0", "grade 1", "grade 2", "grade 3"};
        static const double edges[3] = {20, 25, 40};
        static const char *const edge_names[3] = {"20 %", "25 %", "40 %"};
        char cap[96];
        snprintf(cap, sizeof cap, "%zu vertebrae; dashed: Genant band edges; bar: group mean", n);
        hv_io_groups gr = {.title = any_known ? "Max RHLV by known grade" : "Max RHLV by predicted grade",
                           .ylabel = "max RHLV %", .caption = cap, .n = n, .v = pct, .group = grd,
                           .n_groups = 4, .group_names = grades, .ylo = -10, .yhi = 60,
                           .n_marks = 3, .marks = edges, .mark_names = edge_names};
        st = hv_io_plot_groups(p, &gr);
    }
done:
    free(p);
    free(pct);
    free(grd);
    free(v);
    free(cases);
    return st;
}
