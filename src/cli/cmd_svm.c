/*
 * cmd_svm.c: `healthivert svm`, the reference's SVM grading protocol on an
 * RHLV table (spec section 10), and the model that `measure --grader svm:`
 * applies.
 *
 * The table is what `healthivert measure --csv` writes (one or many cases
 * appended); the split file gives each vertebra's grade and set. Rows are
 * joined in the split's order (the reference's order, which its folds depend
 * on). The report lists each fold's confusion matrix and macro scores and
 * their mean and population variance, as the reference's text file does;
 * the model trained on all train+test rows is saved for later grading.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/core.h"
#include "hv/io.h"
#include "hv/measure.h"

static void svm_usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert svm --table RHLV.csv --split SPLIT.json [--out DIR]\n"
            "                       [--folds N] [--seed N] [--solver libsvm|liblinear]\n"
            "\n"
            "Run the reference's SVM grading protocol on per-vertebra RHLVs:\n"
            "  - features: anterior (Pre), middle and posterior RHLV; labels: Genant\n"
            "    grades 0-3 from the split file;\n"
            "  - standardised with mean and (population) std of the train+test rows;\n"
            "  - linear C-SVC (C = 1) with balanced class weights (libsvm, or with\n"
            "    --solver liblinear one-vs-one over liblinear's dual solver: linear in\n"
            "    the rows, for large tables; docs/measure.md \"SVM solvers\");\n"
            "  - stratified 5-fold split of the train+test rows without shuffling,\n"
            "    rows in the split file's order; each fold's model is scored on the\n"
            "    val rows: confusion matrix, macro F1/precision/recall, accuracy and\n"
            "    linearly weighted kappa, then mean and variance over the folds.\n"
            "Then one model is trained on all train+test rows and saved as\n"
            "DIR/svm.model (+ DIR/svm.model.scaler) for `measure --grader svm:MODEL`.\n"
            "\n"
            "options:\n"
            "  --table FILE   CSV with columns case,label,rhlv_ant,rhlv_mid,rhlv_post\n"
            "                 (what `healthivert measure --csv` writes)\n"
            "  --split FILE   {\"test\"|\"train\"|\"val\": {\"<case>_<label>\": grade}}\n"
            "  --out DIR      write svm.model, svm.model.scaler, svm_report.txt and\n"
            "                 svm_folds.csv there (default: current directory)\n"
            "  --folds N      number of folds (default 5)\n"
            "  --seed N       seed given to srand() before the solver (default 1)\n"
            "  --solver S     libsvm (default: the reference's solver) or liblinear\n"
            "                 (`run` chooses by grader.solver / grader.liblinear_above)\n"
            "  -h, --help     this text\n"
            "\n"
            "Split entries missing from the table, or with a non-finite RHLV, are\n"
            "skipped and counted. Exit status: 0 on success, 1 on failure, 2 on a bad\n"
            "command line.\n");
}

static void report(FILE *f, const hv_svm_cv *cv, size_t n_rows, size_t n_skipped)
{
    fprintf(f, "SVM grading (reference protocol): %zu rows (%zu train+test, %zu val), %zu skipped\n",
            n_rows, cv->n_pool, cv->n_val, n_skipped);
    fprintf(f, "solver: %s\n", hv_svm_solver_name(cv->solver));
    fprintf(f, "scaler mean %.6f %.6f %.6f, scale %.6f %.6f %.6f\n", cv->scaler_mean[0],
            cv->scaler_mean[1], cv->scaler_mean[2], cv->scaler_scale[0], cv->scaler_scale[1],
            cv->scaler_scale[2]);
    for (int k = 0; k < cv->n_folds; k++) {
        const hv_class_metrics *m = &cv->folds[k].m;
        fprintf(f, "\nFold %d\nConfusion Matrix (rows: true grade, columns: predicted; grades", k + 1);
        for (int c = 0; c < m->n_classes; c++) fprintf(f, " %d", m->classes[c]);
        fprintf(f, "):\n");
        for (int a = 0; a < m->n_classes; a++) {
            fprintf(f, "  [");
            for (int b = 0; b < m->n_classes; b++) fprintf(f, "%s%4ld", b ? " " : "", m->confusion[a][b]);
            fprintf(f, "]\n");
        }
        fprintf(f, "F1 Score (macro): %.4f\nPrecision (macro): %.4f\nRecall (macro): %.4f\n"
                   "Accuracy: %.4f\nKappa (linear): %.4f\n",
                m->macro_f1, m->macro_precision, m->macro_recall, m->accuracy, m->kappa_linear);
    }
    static const char *names[4] = {"F1 Score", "Precision", "Recall", "Accuracy"};
    fprintf(f, "\n%-10s %8s %10s\n", "metric", "mean", "variance");
    for (int q = 0; q < 4; q++) fprintf(f, "%-10s %8.4f %10.6f\n", names[q], cv->mean[q], cv->var[q]);
}

int hv_cmd_svm(int argc, char **argv)
{
    const char *table = NULL, *split_path = NULL, *out = ".";
    int folds = 5;
    unsigned seed = 1;
    hv_svm_solver solver = HV_SVM_LIBSVM;
    int rc = HV_EXIT_FAIL;
    hv_status st = HV_OK;
    hv_split *split = NULL;
    hv_svm_row *rows = NULL;
    size_t n = 0, skipped = 0;
    hv_svm_cv *cv = NULL;
    hv_svm_grader *g = NULL;
    char *p = NULL;
    FILE *f = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            svm_usage(stdout);
            return HV_EXIT_OK;
        } else if (has && !strcmp(a, "--table")) table = argv[++i];
        else if (has && !strcmp(a, "--split")) split_path = argv[++i];
        else if (has && !strcmp(a, "--out")) out = argv[++i];
        else if (has && !strcmp(a, "--solver")) {
            const char *v = argv[++i];
            if (!strcmp(v, "libsvm")) solver = HV_SVM_LIBSVM;
            else if (!strcmp(v, "liblinear")) solver = HV_SVM_LIBLINEAR;
            else {
                fprintf(stderr, "healthivert svm: bad value '%s' for --solver (libsvm or liblinear)\n",
                        v);
                return HV_EXIT_USAGE;
            }
        }
        else if (has && (!strcmp(a, "--folds") || !strcmp(a, "--seed"))) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || (!strcmp(a, "--folds") && (v < 2 || v > 64))) {
                fprintf(stderr, "healthivert svm: bad value for %s (folds 2..64, seed >= 0)\n", a);
                return HV_EXIT_USAGE;
            }
            if (!strcmp(a, "--folds")) folds = (int)v;
            else seed = (unsigned)v;
        } else {
            fprintf(stderr, "healthivert svm: unknown or incomplete option '%s' (see --help)\n", a);
            return HV_EXIT_USAGE;
        }
    }
    if (!table || !split_path) {
        fprintf(stderr, "healthivert svm: --table and --split are required (see --help)\n");
        return HV_EXIT_USAGE;
    }
    if ((st = hv_file_check_regular(table, "--table")) != HV_OK ||
        (st = hv_file_check_regular(split_path, "--split")) != HV_OK)
        goto fail;
    st = hv_io_split_read(split_path, &split);
    if (st != HV_OK) goto fail;
    st = hv_svm_rows_from_table(table, split, &rows, &n, &skipped);
    if (st != HV_OK) goto fail;
    if (skipped)
        hv_log_warn("svm: %zu of %zu split entries have no finite RHLV in %s and are skipped",
                    skipped, split->n, table);
    st = hv_svm_cross_validate_solver(rows, n, folds, seed, solver, &cv);
    if (st != HV_OK) goto fail;
    report(stdout, cv, n, skipped);
    st = hv_mkdir_p(out);
    if (st != HV_OK) goto fail;
    p = hv_strfmt("%s/svm_report.txt", out);
    if (!p || !(f = fopen(p, "w"))) {
        st = hv_error_set(HV_ERR_IO, "cannot write %s", p ? p : "report");
        goto fail;
    }
    report(f, cv, n, skipped);
    fclose(f);
    f = NULL;
    free(p);
    p = hv_strfmt("%s/svm_folds.csv", out);
    if (!p || !(f = fopen(p, "w"))) {
        st = hv_error_set(HV_ERR_IO, "cannot write %s", p ? p : "folds");
        goto fail;
    }
    fprintf(f, "case,label,set,grade,fold");
    for (int k = 0; k < folds; k++) fprintf(f, ",pred_fold%d", k + 1);
    fprintf(f, "\n");
    size_t ip = 0, iv = 0;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s,%d,%s,%d,", rows[i].case_id, rows[i].label, hv_split_set_name(rows[i].set),
                rows[i].grade);
        if (rows[i].set == HV_SPLIT_VAL) {
            fprintf(f, "val");
            for (int k = 0; k < folds; k++) fprintf(f, ",%d", cv->folds[k].pred[iv]);
            iv++;
        } else {
            fprintf(f, "%d", cv->fold[ip++] + 1);
            for (int k = 0; k < folds; k++) fprintf(f, ",");
        }
        fprintf(f, "\n");
    }
    fclose(f);
    f = NULL;
    free(p);
    st = hv_svm_train_solver(rows, n, (1u << HV_SPLIT_TRAIN) | (1u << HV_SPLIT_TEST), seed, solver,
                             &g);
    if (st != HV_OK) goto fail;
    p = hv_strfmt("%s/svm.model", out);
    if (!p) {
        st = hv_error_set(HV_ERR_NOMEM, "path");
        goto fail;
    }
    st = hv_svm_save(g, p);
    if (st != HV_OK) goto fail;
    printf("\nmodel (trained on all train+test rows, %s) saved to %s (+ .scaler)\n",
           hv_svm_solver_name(solver), p);
    rc = HV_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "healthivert svm: %s: %s\n", hv_status_name(st), hv_error_detail());
    rc = HV_EXIT_FAIL;
done:
    if (f) fclose(f);
    free(p);
    hv_svm_grader_free(g);
    hv_svm_cv_free(cv);
    free(rows);
    hv_io_split_free(split);
    return rc;
}
