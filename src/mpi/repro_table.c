/*
 * repro_table.c: the comparison table of `healthivert reproduce`, as CSV
 * (every number round-trip exact, %.17g, as grader_metrics.csv), Markdown
 * (3 decimals) and a grouped bar figure (hv_io_plot_bars).
 *
 * Columns per method: macro precision, recall and F1 as the mean and the
 * population variance over the SVM protocol's folds (each fold trained on
 * its part of train+test, scored on val: spec 10), the final grader's
 * (trained on all train+test rows) macro P/R/F1 on val and its recall per
 * Genant grade from its confusion matrix (empty for a grade absent from
 * val). A failed method is a row with status "failed" and the reason.
 *
 * Published numbers (spec 13, the seed README's VerSe 2019 table: macro
 * P/R/F1 without variances) are a table of their own in table.md and
 * reference marks in the figure, labelled "published", never a row of
 * ours; table.csv holds our rows only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/reproduce.h"
#include "run_internal.h"

typedef struct published {
    const char *name;
    const char *method; /* our method (reproduce.methods) reproducing it, or NULL */
    double p, r, f1;
} published;

/* spec 13: README, VerSe 2019, 4-grade SVM on RHLVs */
static const published verse19[] = {
    {"HealthiVert-GAN", "gan", 0.727, 0.753, 0.723},
    {"AOT-GAN", "aotgan", 0.710, 0.707, 0.692},
    {"3D SupCon-SENet", "senet3d", 0.710, 0.636, 0.667},
};
#define N_VERSE19 3

static const published *published_for(const char *method, int set)
{
    if (set != HV_REPRO_PUBLISHED_VERSE19) return NULL;
    for (int i = 0; i < N_VERSE19; i++)
        if (verse19[i].method && !strcmp(verse19[i].method, method)) return &verse19[i];
    return NULL;
}

/* Recall of grade `grade` from the confusion matrix; NaN when absent. */
static double grade_recall(const hv_class_metrics *m, int grade)
{
    for (int k = 0; k < m->n_classes; k++) {
        if (m->classes[k] != grade) continue;
        long row = 0;
        for (int c = 0; c < m->n_classes; c++) row += m->confusion[k][c];
        return row > 0 ? (double)m->confusion[k][k] / (double)row : NAN;
    }
    return NAN;
}

void hv__repro_csv_num(FILE *f, double x)
{
    fputc(',', f);
    if (isfinite(x)) fprintf(f, "%.17g", x);
}

void hv__repro_csv_str(FILE *f, const char *s)
{
    fputs(",\"", f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static long val_n(const hv_class_metrics *m)
{
    long t = 0;
    for (int a = 0; a < m->n_classes; a++)
        for (int b = 0; b < m->n_classes; b++) t += m->confusion[a][b];
    return t;
}

static hv_status write_csv(const char *path, const hv_repro_row *rows, int n)
{
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    fprintf(f, "method,status,n_folds,macro_precision_mean,macro_precision_var,"
               "macro_recall_mean,macro_recall_var,macro_f1_mean,macro_f1_var,"
               "val_macro_precision,val_macro_recall,val_macro_f1,val_n,recall_grade0,"
               "recall_grade1,recall_grade2,recall_grade3,cases,cases_failed,vertebrae,"
               "synth_fallbacks,note\n");
    for (int i = 0; i < n; i++) {
        const hv_repro_row *r = &rows[i];
        const hv_grader_result *g = &r->g;
        fprintf(f, "%s,%s", r->method, r->ok ? "ok" : "failed");
        if (!r->ok) {
            fputs(",,,,,,,,,,,,,,,", f); /* n_folds .. recall_grade3 */
            fprintf(f, ",%ld,%ld,,", r->n_cases, r->n_failed_cases);
            hv__repro_csv_str(f, r->reason);
            fputc('\n', f);
            continue;
        }
        fprintf(f, ",%d", g->n_folds);
        /* hv_grader_result's order: F1, P, R, accuracy */
        static const int q[3] = {1, 2, 0};
        for (int k = 0; k < 3; k++) {
            hv__repro_csv_num(f, g->mean[q[k]]);
            hv__repro_csv_num(f, g->var[q[k]]);
        }
        hv__repro_csv_num(f, g->m.macro_precision);
        hv__repro_csv_num(f, g->m.macro_recall);
        hv__repro_csv_num(f, g->m.macro_f1);
        fprintf(f, ",%ld", val_n(&g->m));
        for (int k = 0; k < 4; k++) hv__repro_csv_num(f, grade_recall(&g->m, k));
        fprintf(f, ",%ld,%ld,%ld,%ld", r->n_cases, r->n_failed_cases, r->n_vertebrae,
                r->n_synth_fallback);
        hv__repro_csv_str(f, g->note);
        fputc('\n', f);
    }
    return hv_atomic_commit(a, 1);
}

static void md_pm(FILE *f, double mean, double var)
{
    if (isfinite(mean)) fprintf(f, " %.3f ± %.4f |", mean, var);
    else fputs(" – |", f);
}

static void md_num(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, " %.3f |", x);
    else fputs(" – |", f);
}

static hv_status write_md(const char *path, const hv_repro_row *rows, int n, int pub,
                          const char *note)
{
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    fprintf(f, "# Comparison table (healthivert reproduce)\n\n"
               "Data: %s. Grader: the SVM protocol of the seed's evaluation (linear SVC, "
               "balanced classes, features pre/mid/post RHLV; 5-fold stratified over "
               "train+test, each fold scored on val). Macro P/R/F1: mean ± population "
               "variance over the folds. Val P/R/F1 and recall per grade: the grader "
               "trained on all train+test rows, scored on val.\n\n", note);
    for (int i = 0; i < n; i++)
        if (rows[i].ok && !strcmp(rows[i].g.method, "senet3d")) {
            fprintf(f, "Row %s: graded by the 3-D SupCon-SENet instead of the SVM (trained on "
                       "each vertebra's 64^3 box of its straightened crop; the same rows, folds "
                       "and val scoring; docs/model.md).\n\n", rows[i].method);
        }
    fputs("| method | macro-P | macro-R | macro-F1 | val P | val R | val F1 | recall G0 | "
          "recall G1 | recall G2 | recall G3 | val n |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|\n", f);
    for (int i = 0; i < n; i++) {
        const hv_repro_row *r = &rows[i];
        const hv_grader_result *g = &r->g;
        if (!r->ok) {
            fprintf(f, "| %s | failed (below) | | | | | | | | | | |\n", r->method);
            continue;
        }
        fprintf(f, "| %s |", r->method);
        md_pm(f, g->mean[1], g->var[1]);
        md_pm(f, g->mean[2], g->var[2]);
        md_pm(f, g->mean[0], g->var[0]);
        md_num(f, g->m.macro_precision);
        md_num(f, g->m.macro_recall);
        md_num(f, g->m.macro_f1);
        for (int k = 0; k < 4; k++) md_num(f, grade_recall(&g->m, k));
        fprintf(f, " %ld |\n", val_n(&g->m));
    }
    for (int i = 0; i < n; i++) {
        if (!rows[i].ok) fprintf(f, "\n%s failed: %s\n", rows[i].method, rows[i].reason);
        if (rows[i].ok && rows[i].n_failed_cases > 0)
            fprintf(f, "\n%s: %ld of %ld cases failed (their vertebrae are not graded).\n",
                    rows[i].method, rows[i].n_failed_cases, rows[i].n_cases);
        if (rows[i].ok && rows[i].n_synth_fallback > 0)
            fprintf(f, "\n%s: on %ld of %ld vertebrae the synthesis fell back to the "
                       "baseline's values (synth_fallback).\n",
                    rows[i].method, rows[i].n_synth_fallback, rows[i].n_vertebrae);
        if (rows[i].ok && rows[i].g.note[0])
            fprintf(f, "\n%s: %s\n", rows[i].method, rows[i].g.note);
    }
    if (pub == HV_REPRO_PUBLISHED_VERSE19) {
        fputs("\n## Published (not computed here)\n\n"
              "The seed paper's VerSe 2019 table (its README; 4-grade SVM on RHLVs), as "
              "published, without fold variances. Our rows above are a reproduction on the "
              "configured data, not these numbers.\n\n"
              "| published method | our method | macro-P | macro-R | macro-F1 |\n"
              "|---|---|---|---|---|\n", f);
        for (int i = 0; i < N_VERSE19; i++)
            fprintf(f, "| %s (published) | %s | %.3f | %.3f | %.3f |\n", verse19[i].name,
                    verse19[i].method ? verse19[i].method : "–", verse19[i].p, verse19[i].r,
                    verse19[i].f1);
    }
    return hv_atomic_commit(a, 1);
}

static hv_status write_png(const char *path, const hv_repro_row *rows, int n, int pub)
{
    double val[16 * 3], spr[16 * 3], ref[16 * 3];
    const char *names[16], *notes[16];
    int any_ref = 0;
    for (int i = 0; i < n && i < 16; i++) {
        const hv_repro_row *r = &rows[i];
        const published *p = published_for(r->method, pub);
        names[i] = r->method;
        notes[i] = r->ok ? NULL : "failed";
        static const int q[3] = {1, 2, 0};
        for (int k = 0; k < 3; k++) {
            val[3 * i + k] = r->ok ? r->g.mean[q[k]] : NAN;
            spr[3 * i + k] = r->ok ? sqrt(r->g.var[q[k]]) : NAN;
        }
        ref[3 * i] = p ? p->p : NAN;
        ref[3 * i + 1] = p ? p->r : NAN;
        ref[3 * i + 2] = p ? p->f1 : NAN;
        any_ref |= p != NULL;
    }
    static const char *const series[3] = {"macro-P", "macro-R", "macro-F1"};
    hv_io_bars b = {.title = "Genant grading over the SVM folds",
                    .ylabel = "score",
                    .caption = "bar: mean over the folds; whisker: +- sqrt(population variance)",
                    .ref_name = any_ref ? "published (VerSe 2019)" : NULL,
                    .n_groups = n < 16 ? n : 16, .n_series = 3, .group_names = names,
                    .group_notes = notes, .series_names = series, .value = val, .spread = spr,
                    .ref = any_ref ? ref : NULL, .ylo = 0, .yhi = 1};
    return hv_io_plot_bars(path, &b);
}

hv_status hv_repro_write_table(const char *dir, const hv_repro_row *rows, int n, int pub,
                               const char *dataset_note)
{
    if (!dir || !rows || n < 1) return hv_error_set(HV_ERR_ARG, "reproduce table: no rows");
    char *p = hv_strfmt("%s/table.csv", dir);
    hv_status st = p ? write_csv(p, rows, n) : hv_error_set(HV_ERR_NOMEM, "reproduce table");
    free(p);
    if (st != HV_OK) return st;
    p = hv_strfmt("%s/table.md", dir);
    st = p ? write_md(p, rows, n, pub, dataset_note ? dataset_note : "")
           : hv_error_set(HV_ERR_NOMEM, "reproduce table");
    free(p);
    if (st != HV_OK) return st;
    p = hv_strfmt("%s/table.png", dir);
    st = p ? write_png(p, rows, n, pub) : hv_error_set(HV_ERR_NOMEM, "reproduce table");
    free(p);
    return st;
}
