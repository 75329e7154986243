/*
 * cls_report.c: what `healthivert train-classifier` writes about its
 * validations (hv/train.h): <out>/val.csv and the curves, drawn by
 * hv_train_curves_plot (train_report.c) like the GAN's.
 *
 * val.csv is rewritten whole and atomically at each validation (it is
 * small), and a resume reads it back keeping only the rows up to the
 * checkpoint's step, with the GAN's reader (val_table.c); only the row's
 * fields are parsed here. NaN (a metric of an absent
 * class) is written as "nan" and read back as NaN.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/train.h"
#include "val_table.h"

#define N_VALUES 8 /* auc, sensitivity, specificity, recall g0..g3, loss */

static void values_of(const hv_train_cls_metrics *m, double v[N_VALUES])
{
    v[0] = m->auc;
    v[1] = m->sensitivity;
    v[2] = m->specificity;
    for (int g = 0; g < 4; g++) v[3 + g] = m->recall[g];
    v[7] = m->loss;
}

hv_status hv_train_cls_val_write(const char *path, const hv_train_cls_row *rows, size_t n)
{
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    fprintf(f, "%s\n", HV_TRAIN_CLS_VAL_HEADER);
    for (size_t i = 0; i < n; i++) {
        const hv_train_cls_row *r = &rows[i];
        double v[N_VALUES];
        values_of(&r->m, v);
        fprintf(f, "%lld,%lld,%zu,%zu,%zu", (long long)r->step, (long long)r->epoch, r->m.n,
                r->m.n_pos, r->m.n_neg);
        for (int k = 0; k < N_VALUES; k++) fprintf(f, isnan(v[k]) ? ",nan" : ",%.6f", v[k]);
        fputc('\n', f);
    }
    return hv_atomic_commit(a, 1);
}

/* One row of val.csv: step, epoch, 3 counts, N_VALUES numbers ("nan"
 * allowed); 0 when malformed. */
static int parse_row(const char *l, void *row, int64_t *step)
{
    double f[5 + N_VALUES];
    int nf = 0;
    const char *p = l;
    while (nf < 5 + N_VALUES) {
        char *end;
        f[nf++] = strtod(p, &end);
        if (end == p || (*end != ',' && *end != 0)) break;
        p = end;
        if (*p == 0) break;
        p++;
    }
    if (nf != 5 + N_VALUES || *p != 0) return 0;
    hv_train_cls_row *x = row;
    x->step = (int64_t)f[0];
    x->epoch = (int64_t)f[1];
    x->m.n = (size_t)f[2];
    x->m.n_pos = (size_t)f[3];
    x->m.n_neg = (size_t)f[4];
    x->m.auc = f[5];
    x->m.sensitivity = f[6];
    x->m.specificity = f[7];
    for (int g = 0; g < 4; g++) x->m.recall[g] = f[8 + g];
    x->m.loss = f[12];
    *step = x->step;
    return 1;
}

hv_status hv_train_cls_val_read(const char *path, int64_t max_step, hv_train_cls_row **rows,
                                size_t *n)
{
    void *r = NULL;
    hv_status st = hv__val_table_read(path, HV_TRAIN_CLS_VAL_HEADER, "classifier validation table",
                                      sizeof **rows, parse_row, max_step, &r, n);
    *rows = r;
    return st;
}

hv_status hv_train_cls_val_plot(const char *dir, const hv_train_cls_row *rows, size_t n)
{
    /* picture k draws values [first[k], first[k] + count[k]) */
    static const char *const file[] = {"auc", "sensitivity", "specificity", "recall", "loss"};
    static const char *const title[] = {
        "val: AUC (per vertebra, mean P over 30 slices)", "val: sensitivity at P >= 0.5",
        "val: specificity at P >= 0.5", "val: recall (called fracture) per grade",
        "val: cross entropy per vertebra"};
    static const int first[] = {0, 1, 2, 3, 7}, count[] = {1, 1, 1, 4, 1};
    static const char *const gname[4] = {"grade 0", "grade 1", "grade 2", "grade 3"};
    static const char *const flat[1] = {"untrained (step 0)"};
    double *x = malloc((n ? n : 1) * sizeof *x), *y = malloc((n ? n : 1) * 4 * sizeof *y);
    hv_status st = HV_OK;
    if (!x || !y) {
        st = hv_error_set(HV_ERR_NOMEM, "curves: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) x[i] = (double)rows[i].step;
    for (int k = 0; k < 5 && st == HV_OK; k++) {
        hv_io_series s[4];
        double base = NAN;
        for (int c = 0; c < count[k]; c++) {
            double *yc = y + (size_t)c * (n ? n : 1);
            for (size_t i = 0; i < n; i++) {
                double v[N_VALUES];
                values_of(&rows[i].m, v);
                yc[i] = v[first[k] + c];
                if (count[k] == 1 && rows[i].step == 0) base = yc[i];
            }
            s[c] = (hv_io_series){count[k] == 1 ? "network" : gname[c], (int)n, x, yc};
        }
        char *path = hv_strfmt("%s/val_%s.png", dir, file[k]);
        if (!path) st = hv_error_set(HV_ERR_NOMEM, "curves: out of memory");
        else st = hv_train_curves_plot(path, title[k], file[k], s, count[k], flat, &base,
                                       count[k] == 1 ? 1 : 0);
        free(path);
    }
done:
    free(x);
    free(y);
    return st;
}
