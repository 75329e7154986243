/*
 * test_measure_svm.c: the reference's SVM protocol (spec section 10) against
 * scikit-learn on a committed table (tests/measure/fixtures/svm_*, made by
 * scripts/make_measure_fixtures.py): identical StratifiedKFold folds, scaler,
 * per-fold predictions on val and metrics; the whole protocol repeats
 * bit for bit; a trained model saved and loaded predicts the same; bad input
 * (empty split, one grade only, grades outside 0-3, too few rows) fails
 * clearly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/measure.h"
#include "hv_test.h"

/* The last error message says `needle` (an error must name what was wrong). */
static int err_has(const char *needle) { return strstr(hv_error_detail(), needle) != NULL; }


static int read_ints(const char *line, const char *key, int *out, int max)
{
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) != 0) return -1;
    int n = 0;
    const char *p = line + kl;
    char *end;
    for (;;) {
        long v = strtol(p, &end, 10);
        if (end == p || n >= max) break;
        out[n++] = (int)v;
        p = end;
    }
    return n;
}

static void test_folds_hand(void)
{
    /* 10 samples; classes numbered by first appearance: value 1 -> class 0
     * (6 members), value 0 -> class 1 (4). Sorted encoded labels are 0 x6,
     * 1 x4; fold f takes positions f and f+5 of that list, so fold 0 gets two
     * of class 0 and folds 1-4 one of each. Class 0's samples (indices
     * 0,2,3,5,7,8) get folds 0,0,1,2,3,4 in order; class 1's (1,4,6,9) get
     * 1,2,3,4. */
    const int y[10] = {1, 0, 1, 1, 0, 1, 0, 1, 1, 0};
    const int want[10] = {0, 1, 0, 1, 2, 2, 3, 3, 4, 4};
    int fold[10];
    HV_CHECK_OK(hv_svm_stratified_folds(y, 10, 5, fold));
    int same = 1;
    for (int i = 0; i < 10; i++) same &= fold[i] == want[i];
    HV_CHECK(same, "hand-computed folds");
    const int few[4] = {0, 0, 1, 1};
    HV_CHECK(hv_svm_stratified_folds(few, 4, 5, fold) == HV_ERR_ARG && err_has("greater than the number of samples 4"), "n_splits > n samples: %s", hv_error_detail());
    const int tiny[6] = {0, 0, 1, 1, 2, 2};
    HV_CHECK(hv_svm_stratified_folds(tiny, 6, 5, fold) == HV_ERR_ARG && err_has("cannot be greater than the number of members in each class"), "every class < n_splits: %s", hv_error_detail());
    HV_CHECK(hv_svm_stratified_folds(y, 10, 1, fold) == HV_ERR_ARG && err_has("n_splits must be >= 2, got 1"), "n_splits 1: %s", hv_error_detail());
}

int main(void)
{
    test_folds_hand();
    char sp[4096], tp[4096], ep[4096];
    snprintf(sp, sizeof sp, "%s/measure/fixtures/svm_split.json", HV_TEST_SOURCE_DIR);
    snprintf(tp, sizeof tp, "%s/measure/fixtures/svm_table.csv", HV_TEST_SOURCE_DIR);
    snprintf(ep, sizeof ep, "%s/measure/fixtures/svm_expected.txt", HV_TEST_SOURCE_DIR);
    hv_split *split = NULL;
    HV_CHECK_OK(hv_io_split_read(sp, &split));
    HV_REQUIRE(split != NULL, "split read");
    HV_CHECK(split->n == 100, "100 split entries, got %zu", split->n);
    HV_CHECK(split->items[0].set == HV_SPLIT_TEST, "file order: test first");
    hv_svm_row *rows = NULL;
    size_t n = 0, skipped = 99;
    HV_CHECK_OK(hv_svm_rows_from_table(tp, split, &rows, &n, &skipped));
    HV_REQUIRE(rows && n == 100 && skipped == 0, "joined rows %zu skipped %zu", n, skipped);

    /* expected values */
    FILE *f = fopen(ep, "r");
    HV_REQUIRE(f != NULL, "open %s", ep);
    char line[8192];
    int folds[200], nfold = 0, pred[5][64], npred[5] = {0};
    double metr[5][4], mean[4], var[4], smean[3], sscale[3];
    while (fgets(line, sizeof line, f)) {
        int k;
        if (!strncmp(line, "folds ", 6)) nfold = read_ints(line, "folds ", folds, 200);
        else if (sscanf(line, "pred %d", &k) == 1 && k >= 0 && k < 5) {
            char key[16];
            snprintf(key, sizeof key, "pred %d ", k);
            npred[k] = read_ints(line, key, pred[k], 64);
        } else if (sscanf(line, "metrics %d %lf %lf %lf %lf", &k, &metr[0][0], &metr[0][1],
                          &metr[0][2], &metr[0][3]) == 5 && k >= 0 && k < 5) {
            sscanf(line, "metrics %d %lf %lf %lf %lf", &k, &metr[k][0], &metr[k][1], &metr[k][2],
                   &metr[k][3]);
        } else if (!strncmp(line, "mean ", 5)) {
            sscanf(line, "mean %lf %lf %lf %lf", &mean[0], &mean[1], &mean[2], &mean[3]);
        } else if (!strncmp(line, "var ", 4)) {
            sscanf(line, "var %lf %lf %lf %lf", &var[0], &var[1], &var[2], &var[3]);
        } else if (!strncmp(line, "scaler_mean ", 12)) {
            sscanf(line, "scaler_mean %lf %lf %lf", &smean[0], &smean[1], &smean[2]);
        } else if (!strncmp(line, "scaler_scale ", 13)) {
            sscanf(line, "scaler_scale %lf %lf %lf", &sscale[0], &sscale[1], &sscale[2]);
        }
    }
    fclose(f);
    HV_REQUIRE(nfold == 70, "70 pool folds in the fixture, got %d", nfold);

    hv_svm_cv *cv = NULL, *cv2 = NULL;
    HV_CHECK_OK(hv_svm_cross_validate(rows, n, 5, 1u, &cv));
    HV_REQUIRE(cv != NULL, "cv ran");
    HV_CHECK(cv->n_pool == 70 && cv->n_val == 30, "pool %zu val %zu", cv->n_pool, cv->n_val);
    int same = 1;
    for (int i = 0; i < 70; i++) same &= cv->fold[i] == folds[i];
    HV_CHECK(same, "folds identical to scikit-learn's StratifiedKFold");
    for (int q = 0; q < 3; q++) {
        HV_CHECK_CLOSE(cv->scaler_mean[q], smean[q], 1e-14, "scaler mean");
        HV_CHECK_CLOSE(cv->scaler_scale[q], sscale[q], 1e-14, "scaler scale (population std)");
    }
    for (int k = 0; k < 5; k++) {
        HV_CHECK(npred[k] == 30, "fixture fold %d predictions", k);
        int diff = 0;
        for (int i = 0; i < 30 && i < npred[k]; i++) diff += cv->folds[k].pred[i] != pred[k][i];
        HV_CHECK(diff == 0, "fold %d: %d predictions differ from scikit-learn's SVC", k, diff);
        HV_CHECK_CLOSE(cv->folds[k].m.macro_f1, metr[k][0], 1e-12, "fold macro F1");
        HV_CHECK_CLOSE(cv->folds[k].m.macro_precision, metr[k][1], 1e-12, "fold macro P");
        HV_CHECK_CLOSE(cv->folds[k].m.macro_recall, metr[k][2], 1e-12, "fold macro R");
        HV_CHECK_CLOSE(cv->folds[k].m.accuracy, metr[k][3], 1e-12, "fold accuracy");
    }
    for (int q = 0; q < 4; q++) {
        HV_CHECK_CLOSE(cv->mean[q], mean[q], 1e-12, "mean over folds");
        HV_CHECK_CLOSE(cv->var[q], var[q], 1e-12, "population variance over folds");
    }
    /* repeat: bit-identical */
    HV_CHECK_OK(hv_svm_cross_validate(rows, n, 5, 1u, &cv2));
    if (cv2) {
        int ident = 1;
        for (int k = 0; k < 5; k++) {
            ident &= memcmp(&cv->folds[k].m, &cv2->folds[k].m, sizeof cv->folds[k].m) == 0;
            ident &= memcmp(cv->folds[k].pred, cv2->folds[k].pred, 30 * sizeof(int)) == 0;
        }
        ident &= memcmp(cv->mean, cv2->mean, sizeof cv->mean) == 0;
        HV_CHECK(ident, "second run identical");
    }
    hv_svm_cv_free(cv);
    hv_svm_cv_free(cv2);

    /* train on train+test, save, load, predict the same */
    hv_svm_grader *g = NULL, *g2 = NULL;
    HV_CHECK_OK(hv_svm_train(rows, n, (1u << HV_SPLIT_TRAIN) | (1u << HV_SPLIT_TEST), 1u, &g));
    const char *tmp = hv_test_tmpdir("measure_svm");
    char mp[4200];
    snprintf(mp, sizeof mp, "%s/grader.model", tmp ? tmp : ".");
    if (g) HV_CHECK_OK(hv_svm_save(g, mp));
    HV_CHECK_OK(hv_svm_load(mp, &g2));
    if (g && g2) {
        int agree = 0;
        for (size_t i = 0; i < n; i++) agree += hv_svm_predict(g, rows[i].x) == hv_svm_predict(g2, rows[i].x);
        HV_CHECK(agree == (int)n, "loaded model agrees on %d of %zu", agree, n);
        const double nanx[3] = {NAN, 0, 0};
        HV_CHECK(hv_svm_predict(g2, nanx) == -1, "NaN RHLV is not graded");
        int correct = 0;
        for (size_t i = 0; i < n; i++) correct += hv_svm_predict(g2, rows[i].x) == rows[i].grade;
        HV_CHECK(correct >= 70, "whole-split model fits: %d of %zu", correct, n);
    }
    hv_svm_grader_free(g);
    hv_svm_grader_free(g2);
    g = g2 = NULL;
    HV_CHECK(hv_svm_load("/nonexistent/x.model", &g2) != HV_OK && err_has("/nonexistent/x.model: does not exist"), "missing model file: %s", hv_error_detail());
    HV_CHECK(g2 == NULL, "missing model file: no grader returned");

    /* bad input */
    hv_svm_cv *bad = NULL;
    size_t npool = 0;
    for (size_t i = 0; i < n; i++) npool += rows[i].set != HV_SPLIT_VAL;
    HV_CHECK(hv_svm_cross_validate(rows, npool, 5, 1u, &bad) == HV_ERR_EMPTY && err_has("no val rows"), "no val rows: %s", hv_error_detail());
    HV_CHECK(hv_svm_cross_validate(rows, 0, 5, 1u, &bad) == HV_ERR_EMPTY && err_has("no train/test rows"), "empty split: %s", hv_error_detail());
    hv_svm_row *copy = malloc(n * sizeof *copy);
    if (copy) {
        memcpy(copy, rows, n * sizeof *copy);
        copy[3].grade = 4;
        HV_CHECK(hv_svm_cross_validate(copy, n, 5, 1u, &bad) == HV_ERR_ARG && err_has("sub-fx003_11 has grade 4 outside 0..3"), "grade 4 rejected: %s", hv_error_detail());
        copy[3].grade = -1;
        HV_CHECK(hv_svm_train(copy, n, 7u, 1u, &g) == HV_ERR_ARG && err_has("sub-fx003_11 has grade -1 outside 0..3"), "grade -1 rejected: %s", hv_error_detail());
        HV_CHECK(g == NULL, "grade -1: no model returned");
        memcpy(copy, rows, n * sizeof *copy);
        for (size_t i = 0; i < n; i++) copy[i].grade = 0;
        HV_CHECK(hv_svm_cross_validate(copy, n, 5, 1u, &bad) == HV_ERR_ARG && err_has("the training rows hold only one grade"), "one grade only: %s", hv_error_detail());
        free(copy);
    }
    HV_CHECK(bad == NULL, "no result on failure");
    /* an empty split file joins to no rows */
    hv_split empty = {0, NULL};
    hv_svm_row *er = NULL;
    size_t en = 5;
    HV_CHECK_OK(hv_svm_rows_from_table(tp, &empty, &er, &en, NULL));
    HV_CHECK(en == 0, "empty split gives no rows");
    HV_CHECK(hv_svm_cross_validate(er, en, 5, 1u, &bad) == HV_ERR_EMPTY && err_has("no train/test rows"), "empty split -> empty: %s", hv_error_detail());
    free(er);
    free(rows);
    hv_io_split_free(split);
    return hv_test_done();
}
