/*
 * grading_rows.c: the rows the grader used (the SVM protocol's, or the
 * 3-D SupCon-SENet's in the same protocol), as <output.dir>/grading_rows.csv.
 *
 * The gather (gather.c) picks the SVM protocol's rows from the split file
 * and the measured vertebrae; nothing else shows which rows those were. This
 * table lists them exactly as the protocol saw them, in its order (the split
 * file's, which the fold construction depends on), with the
 * cross-validation fold that held each train/test row out and the final
 * grader's prediction (senet3d's rows carry the vertebra's RHLV too, though
 * its network sees the 64^3 box, not these features), so a user can audit the grading (docs/measure.md,
 * "Grading rows") and a test can compare them with independent values.
 *
 * Every number comes from rank 0's rows and folds alone, so the file is
 * byte-identical for any rank count. Written atomically (a table appears
 * whole or not at all); a run whose gather does not grade with the SVM
 * removes an earlier run's table, so the folder never shows rows of another
 * grading.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

#define ROWS_NAME "grading_rows.csv"

hv_status hv__gather_rows_remove(const char *dir)
{
    char *p = hv_strfmt("%s/" ROWS_NAME, dir);
    if (!p) return hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
    hv_status st = HV_OK;
    if (remove(p) != 0 && errno != ENOENT)
        st = hv_error_set(HV_ERR_IO, "gather: cannot remove the old %s: %s", p, strerror(errno));
    free(p);
    return st;
}

hv_status hv__gather_rows_csv(const char *dir, const hv_svm_row *rows, size_t n,
                              const hv_svm_cv *cv, const int *pred)
{
    hv_status st = HV_OK;
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    int *fold = malloc((n ? n : 1) * sizeof *fold);
    char *p = hv_strfmt("%s/" ROWS_NAME, dir);
    if (!fold || !p) {
        st = hv_error_set(HV_ERR_NOMEM, "gather: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) fold[i] = -1;
    for (size_t k = 0; k < cv->n_pool; k++) {
        if (cv->pool[k] >= n) {
            st = hv_error_set(HV_ERR_ARG, "gather: pool row %zu of %zu rows", cv->pool[k], n);
            goto done;
        }
        fold[cv->pool[k]] = cv->fold[k];
    }
    if ((st = hv_atomic_open(p, &a, &f)) != HV_OK) goto done;
    fputs("row,case,label,level,split,fold,rhlv_ant,rhlv_mid,rhlv_post,grade,pred\n", f);
    for (size_t i = 0; i < n; i++) {
        const hv_svm_row *r = &rows[i];
        const char *lv = hv_label_name(r->label);
        fprintf(f, "%zu,", i);
        hv_csv_put_str(f, r->case_id);
        fprintf(f, ",%d,%s,%s,", r->label, lv ? lv : "", hv_split_set_name(r->set));
        if (fold[i] >= 0) fprintf(f, "%d", fold[i]);
        for (int k = 0; k < 3; k++) fputc(',', f), hv_csv_put_num(f, r->x[k]);
        fprintf(f, ",%d,%d\n", r->grade, pred[i]);
    }
    st = hv_atomic_commit(a, 0); /* names the file on failure */
    a = NULL;
done:
    if (a) hv_atomic_abort(a);
    free(fold);
    free(p);
    return st;
}
