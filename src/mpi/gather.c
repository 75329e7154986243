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
 * grades instead and /grader/@note says why, rather than failing the run;
 * an I/O, memory or MPI failure on the way fails the gather instead.
 * grader.method = senet3d (grade_senet3d.c) runs the same protocol with the
 * 3-D SupCon-SENet on the crop boxes, its folds over the same team as the
 * SVM's; asked for by name, it does not fall back to the rule: a run that
 * cannot grade with it fails there.
 *
 * Rows enter the SVM in the split file's order (the reference's fold
 * construction depends on it), never in the order ranks happened to finish,
 * so grading is identical for any number of ranks. The rows as used, with
 * their folds and final predictions, go to grading_rows.csv (grading_rows.c).
 *
 * Solver (grader.solver): libsvm as the reference, or liblinear's one-vs-one
 * (src/measure/svm_linear.c) whose cost grows linearly with the rows; auto
 * takes liblinear above grader.liblinear_above train+test rows
 * (docs/measure.md, "SVM solvers").
 *
 * Folds in parallel: rank 0 builds the rows from the store and broadcasts
 * them (5 doubles a row) with the protocol's settings; every rank computes
 * the same folds and scaler (deterministic), fold f is trained by rank
 * (f + 1) % size, so with two or more ranks rank 0 keeps the fewest folds
 * and trains the final model meanwhile; each other rank sends its folds'
 * val predictions (tag = fold) to rank 0, which computes every metric from
 * the predictions. A fold's model depends only on the rows and the seed
 * (srand(seed) before each solver call), so the results are the same for
 * any rank count. The other ranks wait in hv_gather_team_serve from the end
 * of the work loop; rank 0 releases them when there is no SVM job.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run_internal.h"

/* ------------------------------------------------------------- the team */

#define ROW_DOUBLES 5

int hv__gather_fold_owner(int f, int size) { return size > 1 ? (f + 1) % size : 0; }

/* Wait for a request while sleeping, not spinning (Open MPI busy-polls in
 * blocking calls): a rank that waits must not steal the core of the rank
 * still training. Both ends of the header broadcast use it (a non-blocking
 * collective only matches non-blocking ones). */
static void lazy_wait(MPI_Request *rq)
{
    int done = 0;
    struct timespec ts = {0, 2 * 1000 * 1000};
    for (;;) {
        MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (done) break;
        nanosleep(&ts, NULL);
    }
}

static void bcast_header(long hdr[5], MPI_Comm comm)
{
    MPI_Request rq;
    MPI_Ibcast(hdr, 5, MPI_LONG, 0, comm, &rq);
    lazy_wait(&rq);
}

void hv_gather_team_release(hv_gather_team *t)
{
    if (!t || t->rank != 0 || t->done || t->size < 2) return;
    long hdr[5] = {HV_TEAM_RELEASE, 0, 0, 0, 0};
    bcast_header(hdr, t->comm);
    t->done = 1;
}

hv_status hv__gather_team_start(hv_gather_team *t, const long hdr[5], const hv_svm_row *rows,
                                size_t n)
{
    if (n > (size_t)(0x7fffffff / ROW_DOUBLES))
        return hv_error_set(HV_ERR_ARG, "gather: %zu grader rows exceed one broadcast", n);
    double *buf = malloc((n ? n : 1) * ROW_DOUBLES * sizeof *buf);
    if (!buf) return hv_error_set(HV_ERR_NOMEM, "gather: %zu grader rows", n);
    for (size_t i = 0; i < n; i++) {
        double *b = &buf[ROW_DOUBLES * i];
        b[0] = rows[i].x[0];
        b[1] = rows[i].x[1];
        b[2] = rows[i].x[2];
        b[3] = rows[i].grade;
        b[4] = (double)rows[i].set;
    }
    long h[5];
    memcpy(h, hdr, sizeof h);
    bcast_header(h, t->comm);
    MPI_Bcast(buf, (int)(n * ROW_DOUBLES), MPI_DOUBLE, 0, t->comm);
    free(buf);
    t->done = 1;
    return HV_OK;
}

/* Rank != 0: the rows of a job whose header said n (a collective: received
 * whatever happens). */
static hv_status team_rows(hv_gather_team *t, size_t n, hv_svm_row **out)
{
    hv_status st = HV_OK;
    double *buf = malloc((n ? n : 1) * ROW_DOUBLES * sizeof *buf);
    hv_svm_row *rows = calloc(n ? n : 1, sizeof *rows);
    double dummy = 0;
    MPI_Bcast(buf ? (void *)buf : (void *)&dummy, buf ? (int)(n * ROW_DOUBLES) : 0, MPI_DOUBLE, 0,
              t->comm);
    if (!buf || !rows) st = hv_error_set(HV_ERR_NOMEM, "gather: %zu grader rows", n);
    for (size_t i = 0; st == HV_OK && i < n; i++) {
        const double *b = &buf[ROW_DOUBLES * i];
        snprintf(rows[i].case_id, sizeof rows[i].case_id, "row%zu", i);
        rows[i].x[0] = b[0];
        rows[i].x[1] = b[1];
        rows[i].x[2] = b[2];
        rows[i].grade = (int)b[3];
        rows[i].set = (hv_split_set)(int)b[4];
    }
    free(buf);
    if (st != HV_OK) {
        free(rows);
        rows = NULL;
    }
    *out = rows;
    return st;
}

void hv__gather_team_send(hv_gather_team *t, int f, hv_status fs, const int *pred, size_t nv,
                          int *buf)
{
    /* rank 0 waits for exactly this message: always send it; after a
     * failure one int, the status, is enough */
    int one = (int)fs;
    if (fs == HV_OK) {
        buf[0] = HV_OK;
        memcpy(buf + 1, pred, nv * sizeof(int));
        MPI_Send(buf, (int)(nv + 1), MPI_INT, 0, f, t->comm);
    } else {
        MPI_Send(&one, 1, MPI_INT, 0, f, t->comm);
    }
}

hv_status hv__gather_team_collect(hv_gather_team *t, hv_svm_cv *cv, const char *what)
{
    hv_status st = HV_OK;
    int *buf = malloc((cv->n_val + 1) * sizeof *buf);
    if (!buf) return hv_error_set(HV_ERR_NOMEM, "gather: predictions");
    for (int f = 0; f < cv->n_folds; f++) {
        int from = hv__gather_fold_owner(f, t->size);
        if (from == 0) continue;
        MPI_Request rq;
        MPI_Irecv(buf, (int)(cv->n_val + 1), MPI_INT, from, f, t->comm, &rq);
        lazy_wait(&rq);
        if (buf[0] != HV_OK) {
            if (st == HV_OK)
                st = hv_error_set((hv_status)buf[0], "%s: fold %d failed on rank %d (see its log)",
                                  what, f, from);
            continue;
        }
        free(cv->folds[f].pred);
        cv->folds[f].pred = malloc(cv->n_val * sizeof(int));
        if (!cv->folds[f].pred) {
            if (st == HV_OK) st = hv_error_set(HV_ERR_NOMEM, "gather: predictions");
            continue;
        }
        memcpy(cv->folds[f].pred, buf + 1, cv->n_val * sizeof(int));
    }
    free(buf);
    return st;
}

hv_status hv_gather_team_serve(hv_gather_team *t)
{
    long hdr[5];
    bcast_header(hdr, t->comm);
    if (hdr[0] != HV_TEAM_SVM && hdr[0] != HV_TEAM_SENET3D) return HV_OK;
    size_t n = (size_t)hdr[1];
    int folds = (int)hdr[2];
    hv_svm_row *rows = NULL;
    hv_svm_cv *cv = NULL;
    hv_status st = team_rows(t, n, &rows);
    if (hdr[0] == HV_TEAM_SENET3D) {
        st = hv__senet3d_team_serve(t, hdr, rows, st);
        free(rows);
        return st;
    }
    if (st == HV_OK)
        st = hv_svm_cv_begin(rows, n, folds, (unsigned)hdr[3], (hv_svm_solver)hdr[4], &cv);
    size_t nv = cv ? cv->n_val : 0;
    int *out = malloc((nv + 1) * sizeof *out);
    for (int f = 0; f < folds; f++) {
        if (hv__gather_fold_owner(f, t->size) != t->rank) continue;
        hv_status fs = st;
        if (fs == HV_OK && !out) fs = st = hv_error_set(HV_ERR_NOMEM, "gather: predictions");
        if (fs == HV_OK) {
            double t0 = hv_time_now();
            fs = hv_svm_cv_fold(cv, rows, n, f);
            if (fs == HV_OK)
                hv_log_info("gather: SVM fold %d (%s, %zu rows) trained in %.2f s", f,
                            hv_svm_solver_name(cv->solver), n, hv_time_now() - t0);
            else
                hv_log_error("gather: SVM fold %d: %s", f, hv_error_detail());
            if (st == HV_OK) st = fs;
        }
        hv__gather_team_send(t, f, fs, fs == HV_OK ? cv->folds[f].pred : NULL, nv, out);
    }
    free(out);
    hv_svm_cv_free(cv);
    free(rows);
    return st;
}

int hv__vkey_cmp(const void *a, const void *b)
{
    const hv__vkey *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return (x->label > y->label) - (x->label < y->label);
}

void hv__vkey_sort(hv__vkey *keys, const hv_run_vrow *v, size_t n, const hv_run_crow *cases)
{
    for (size_t i = 0; i < n; i++)
        keys[i] = (hv__vkey){cases[v[i].case_index].id, v[i].label, i};
    qsort(keys, n, sizeof *keys, hv__vkey_cmp);
}

long hv__vkey_split_row(const hv__vkey *keys, size_t n, const hv_run_vrow *v,
                        const hv_split_entry *e)
{
    hv__vkey want = {e->case_id, e->label, 0};
    hv__vkey *hit = n ? bsearch(&want, keys, n, sizeof *keys, hv__vkey_cmp) : NULL;
    const hv_run_vrow *vr = hit ? &v[hit->idx] : NULL;
    if (!vr || isnan(vr->rhlv[HV_REG_ANT]) || isnan(vr->rhlv[HV_REG_MID]) ||
        isnan(vr->rhlv[HV_REG_POST]))
        return -1;
    return (long)hit->idx;
}

void hv__svm_row_of(hv_svm_row *r, const hv_split_entry *e, const hv_run_vrow *vr)
{
    memset(r, 0, sizeof *r);
    snprintf(r->case_id, sizeof r->case_id, "%s", e->case_id);
    r->label = e->label;
    r->grade = e->grade;
    r->set = e->set;
    r->x[0] = vr->rhlv[HV_REG_ANT];
    r->x[1] = vr->rhlv[HV_REG_MID];
    r->x[2] = vr->rhlv[HV_REG_POST];
}

void hv__grader_cv_result(hv_grader_result *g, const hv_svm_cv *cv)
{
    g->n_folds = cv->n_folds > 16 ? 16 : cv->n_folds;
    for (int f = 0; f < g->n_folds; f++) {
        g->fold_metrics[f][0] = cv->folds[f].m.macro_f1;
        g->fold_metrics[f][1] = cv->folds[f].m.macro_precision;
        g->fold_metrics[f][2] = cv->folds[f].m.macro_recall;
        g->fold_metrics[f][3] = cv->folds[f].m.accuracy;
    }
    memcpy(g->mean, cv->mean, sizeof g->mean);
    memcpy(g->var, cv->var, sizeof g->var);
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
    hv__vkey *keys = malloc((n ? n : 1) * sizeof *keys);
    hv_svm_row *rows = malloc((o->split->n ? o->split->n : 1) * sizeof *rows);
    hv_svm_cv *cv = NULL;
    hv_svm_grader *gr = NULL;
    int *yt = NULL, *yp = NULL, *rp = NULL;
    if (!keys || !rows) {
        st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
        goto done;
    }
    hv__vkey_sort(keys, v, n, cases);
    size_t nr = 0, skipped = 0;
    for (size_t s = 0; s < o->split->n; s++) {
        const hv_split_entry *e = &o->split->items[s];
        long i = hv__vkey_split_row(keys, n, v, e);
        if (i < 0) {
            skipped++;
            continue;
        }
        hv__svm_row_of(&rows[nr++], e, &v[i]);
    }
    if (skipped)
        hv_log_info("gather: %zu split entries have no measured vertebra with finite RHLV "
                    "(failed cases, unlabelled levels); the SVM uses %zu rows", skipped, nr);
    size_t npool = 0;
    for (size_t i = 0; i < nr; i++) npool += rows[i].set != HV_SPLIT_VAL;
    hv_svm_solver solver = HV_SVM_LIBSVM;
    if (o->solver && !strcmp(o->solver, "liblinear")) solver = HV_SVM_LIBLINEAR;
    else if (!o->solver || !strcmp(o->solver, "auto"))
        solver = (long)npool > o->liblinear_above ? HV_SVM_LIBLINEAR : HV_SVM_LIBSVM;
    hv_gather_team *team = o->team && o->team->size > 1 ? o->team : NULL;
    double t0 = hv_time_now();
    /* plan on rank 0 first: a protocol that cannot run starts no job */
    st = hv_svm_cv_begin(rows, nr, o->folds, o->seed, solver, &cv);
    if (st != HV_OK) goto done;
    long hdr[5] = {HV_TEAM_SVM, (long)nr, o->folds, (long)o->seed, (long)solver};
    if (team && (st = hv__gather_team_start(team, hdr, rows, nr)) != HV_OK) goto done;
    for (int f = 0; f < o->folds; f++) {
        if (hv__gather_fold_owner(f, team ? team->size : 1) != 0) continue;
        if ((st = hv_svm_cv_fold(cv, rows, nr, f)) != HV_OK) goto collect;
    }
    st = hv_svm_train_solver(rows, nr, (1u << HV_SPLIT_TRAIN) | (1u << HV_SPLIT_TEST), o->seed,
                             solver, &gr);
collect:
    if (team) {
        hv_status cst = hv__gather_team_collect(team, cv, "svm cv");
        if (st == HV_OK) st = cst;
    }
    if (st == HV_OK) st = hv_svm_cv_finish(cv);
    if (st != HV_OK) goto done;
    hv_log_info("gather: SVM protocol (%s, %zu train+test rows, %d folds on %d rank(s)) in %.2f s",
                hv_svm_solver_name(solver), npool, o->folds, team ? team->size : 1,
                hv_time_now() - t0);

    hv_log_info("gather: solver %s (%zu train+test rows; grader.solver = %s, liblinear above %ld)",
                hv_svm_solver_name(solver), npool, o->solver ? o->solver : "auto",
                o->liblinear_above);

    snprintf(g->method, sizeof g->method, "svm");
    snprintf(g->solver, sizeof g->solver, "%s", hv_svm_solver_name(solver));
    hv__grader_cv_result(g, cv);
    for (size_t i = 0; i < n; i++) {
        double x[3] = {v[i].rhlv[HV_REG_ANT], v[i].rhlv[HV_REG_MID], v[i].rhlv[HV_REG_POST]};
        v[i].grade_pred = hv_svm_predict(gr, x);
    }
    yt = malloc((nr ? nr : 1) * sizeof *yt);
    yp = malloc((nr ? nr : 1) * sizeof *yp);
    rp = malloc((nr ? nr : 1) * sizeof *rp);
    if (!yt || !yp || !rp) {
        st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < nr; i++) {
        rp[i] = hv_svm_predict(gr, rows[i].x);
        if (rows[i].set != HV_SPLIT_VAL) continue;
        yt[k] = rows[i].grade;
        yp[k] = rp[i];
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
        if (st == HV_OK) st = hv__gather_rows_csv(o->out_dir, rows, nr, cv, rp);
    }
done:
    free(keys);
    free(rows);
    free(yt);
    free(yp);
    free(rp);
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
    hv_status st = o->out_dir ? hv__gather_rows_remove(o->out_dir) : HV_OK;
    if (st == HV_OK) st = hv_store_read_vertebrae(s, &v, &n);
    if (st != HV_OK) goto done;
    size_t nc = (size_t)hv_store_n_cases(s);
    cases = malloc((nc ? nc : 1) * sizeof *cases);
    if (!cases) {
        st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cases, NULL)) != HV_OK) goto done;

    if (!strcmp(o->method, "senet3d")) {
        /* asked for by name: no fallback to the rule (its numbers would sit
         * in the senet3d row of a comparison) */
        if (!split_has_all_sets(o->split)) {
            st = hv_error_set(HV_ERR_ARG, "grader.method = senet3d needs a split with train, "
                              "val and test (input.split)");
            goto done;
        }
        if ((st = hv_gather_senet3d_run(s, v, n, cases, o, g)) != HV_OK) goto done;
        goto graded;
    }
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
        /* Only "the protocol cannot run on these rows" (too few of a grade
         * for the folds, a single grade, a row out of range: ARG, EMPTY)
         * falls back to the rule. A failure of the machine (a model or table
         * that cannot be written, memory, MPI) fails the gather with its
         * reason: grading by another method because a disk was full would
         * put the rule's numbers where the user asked for the SVM's. */
        if (st != HV_OK && st != HV_ERR_ARG && st != HV_ERR_EMPTY) goto done;
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
graded:
    if ((st = hv_store_set_pred(s, v, n)) != HV_OK) goto done;
    if ((st = hv_store_write_grader(s, g)) != HV_OK) goto done;

    if (o->out_dir) {
        if (g->have_metrics) {
            long total = 0;
            for (int a = 0; a < g->m.n_classes; a++)
                for (int b = 0; b < g->m.n_classes; b++) total += g->m.confusion[a][b];
            char title[96];
            snprintf(title, sizeof title, "%s on %s (n = %ld)",
                     !strcmp(g->method, "svm")       ? "SVM grader"
                     : !strcmp(g->method, "senet3d") ? "3-D SupCon-SENet"
                                                     : "Genant rule",
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
