/*
 * grader.c: the grader's results under /grader (written by gather on rank 0,
 * on a serially opened store; read by describe, validate and export).
 *
 * Attributes for the scalars (method, note, macro metrics) so that
 * `h5dump -A` shows them at a glance, datasets for the arrays (classes,
 * confusion matrix, per-fold metrics). Written last in a run, after every
 * case: a store without /grader is simply not graded yet. Rewriting replaces
 * the whole group, so a re-run gather never leaves stale folds behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

hv_status hv_store_write_grader(hv_store *s, const hv_grader_result *g)
{
    hv_status st = HV_OK;
    hid_t grp = -1, d = -1, sp = -1;
    if (H5Lexists(s->file, "grader", H5P_DEFAULT) > 0) H5Ldelete(s->file, "grader", H5P_DEFAULT);
    grp = H5Gcreate2(s->file, "grader", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(grp, "cannot create /grader");
    if ((st = hv_h5_attr_str(grp, "method", g->method)) != HV_OK) goto done;
    if ((st = hv_h5_attr_str(grp, "evaluated_on", g->evaluated_on)) != HV_OK) goto done;
    if ((st = hv_h5_attr_str(grp, "note", g->note)) != HV_OK) goto done;
    if ((st = hv_h5_attr_str(grp, "solver", g->solver)) != HV_OK) goto done;
    if ((st = hv_h5_attr_int(grp, "have_metrics", g->have_metrics)) != HV_OK) goto done;
    if ((st = hv_h5_attr_int(grp, "n_folds", g->n_folds)) != HV_OK) goto done;
    if (g->have_metrics) {
        const hv_class_metrics *m = &g->m;
        if ((st = hv_h5_attr_double(grp, "macro_f1", m->macro_f1)) != HV_OK) goto done;
        if ((st = hv_h5_attr_double(grp, "macro_precision", m->macro_precision)) != HV_OK) goto done;
        if ((st = hv_h5_attr_double(grp, "macro_recall", m->macro_recall)) != HV_OK) goto done;
        if ((st = hv_h5_attr_double(grp, "accuracy", m->accuracy)) != HV_OK) goto done;
        if ((st = hv_h5_attr_double(grp, "kappa_linear", m->kappa_linear)) != HV_OK) goto done;
        hsize_t k = (hsize_t)m->n_classes;
        sp = H5Screate_simple(1, &k, NULL);
        d = H5Dcreate2(grp, "classes", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(d, "cannot create /grader/classes");
        H5CHK(H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->classes), "write");
        H5Dclose(d);
        H5Sclose(sp);
        hsize_t kk[2] = {k, k};
        int64_t conf[16 * 16];
        for (int a = 0; a < m->n_classes; a++)
            for (int b = 0; b < m->n_classes; b++) conf[a * m->n_classes + b] = m->confusion[a][b];
        sp = H5Screate_simple(2, kk, NULL);
        d = H5Dcreate2(grp, "confusion", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(d, "cannot create /grader/confusion");
        H5CHK(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, conf), "write");
        ATTRCHK(hv_h5_attr_str(d, "axes", "[true][predicted] over /grader/classes"));
        H5Dclose(d);
        H5Sclose(sp);
        d = sp = -1;
    }
    if (g->n_folds > 0) {
        hsize_t fd[2] = {(hsize_t)g->n_folds, 4};
        sp = H5Screate_simple(2, fd, NULL);
        d = H5Dcreate2(grp, "folds", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(d, "cannot create /grader/folds");
        H5CHK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, g->fold_metrics),
              "write");
        ATTRCHK(hv_h5_attr_str(d, "columns", "macro_f1,macro_precision,macro_recall,accuracy"));
        H5Dclose(d);
        H5Sclose(sp);
        d = sp = -1;
        hsize_t two[2] = {2, 4};
        double mv[8];
        memcpy(mv, g->mean, sizeof g->mean);
        memcpy(mv + 4, g->var, sizeof g->var);
        sp = H5Screate_simple(2, two, NULL);
        d = H5Dcreate2(grp, "fold_mean_var", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT);
        H5CHK(d, "cannot create /grader/fold_mean_var");
        H5CHK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mv), "write");
    }
done:
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (grp >= 0) H5Gclose(grp);
    return st;
}

hv_status hv_store_read_grader(hv_store *s, hv_grader_result *g, int *present)
{
    memset(g, 0, sizeof *g);
    *present = 0;
    if (H5Lexists(s->file, "grader", H5P_DEFAULT) <= 0) return HV_OK;
    hv_status st = HV_OK;
    hid_t grp = H5Gopen2(s->file, "grader", H5P_DEFAULT), d = -1;
    if (grp < 0) return hv_error_set(HV_ERR_HDF5, "store: cannot open /grader");
    char *t;
    if ((t = hv_h5_read_attr_str(grp, "method"))) snprintf(g->method, sizeof g->method, "%s", t), free(t);
    if ((t = hv_h5_read_attr_str(grp, "evaluated_on")))
        snprintf(g->evaluated_on, sizeof g->evaluated_on, "%s", t), free(t);
    if ((t = hv_h5_read_attr_str(grp, "note"))) snprintf(g->note, sizeof g->note, "%s", t), free(t);
    /* absent in stores written before the attribute: "" */
    if ((t = hv_h5_read_attr_str(grp, "solver")))
        snprintf(g->solver, sizeof g->solver, "%s", t), free(t);
    long v = 0;
    if (hv_h5_read_attr_long(grp, "have_metrics", &v)) g->have_metrics = (int)v;
    if (hv_h5_read_attr_long(grp, "n_folds", &v)) g->n_folds = (int)(v > 16 ? 16 : v);
    if (g->have_metrics) {
        hv_class_metrics *m = &g->m;
        hv_h5_read_attr_double(grp, "macro_f1", &m->macro_f1);
        hv_h5_read_attr_double(grp, "macro_precision", &m->macro_precision);
        hv_h5_read_attr_double(grp, "macro_recall", &m->macro_recall);
        hv_h5_read_attr_double(grp, "accuracy", &m->accuracy);
        hv_h5_read_attr_double(grp, "kappa_linear", &m->kappa_linear);
        d = H5Dopen2(grp, "classes", H5P_DEFAULT);
        H5CHK(d, "store: no /grader/classes");
        hid_t sp = H5Dget_space(d);
        hsize_t k = 0;
        H5Sget_simple_extent_dims(sp, &k, NULL);
        H5Sclose(sp);
        if (k < 1 || k > 16) {
            st = hv_error_set(HV_ERR_FORMAT, "store: /grader/classes has %llu classes",
                              (unsigned long long)k);
            goto done;
        }
        m->n_classes = (int)k;
        H5CHK(H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->classes), "read");
        H5Dclose(d);
        int64_t conf[256];
        d = H5Dopen2(grp, "confusion", H5P_DEFAULT);
        H5CHK(d, "store: no /grader/confusion");
        H5CHK(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, conf), "read");
        for (int a = 0; a < m->n_classes; a++)
            for (int b = 0; b < m->n_classes; b++) m->confusion[a][b] = (long)conf[a * m->n_classes + b];
        H5Dclose(d);
        d = -1;
    }
    if (g->n_folds > 0) {
        d = H5Dopen2(grp, "folds", H5P_DEFAULT);
        H5CHK(d, "store: no /grader/folds");
        H5CHK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, g->fold_metrics), "read");
        H5Dclose(d);
        double mv[8];
        d = H5Dopen2(grp, "fold_mean_var", H5P_DEFAULT);
        H5CHK(d, "store: no /grader/fold_mean_var");
        H5CHK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mv), "read");
        memcpy(g->mean, mv, sizeof g->mean);
        memcpy(g->var, mv + 4, sizeof g->var);
        H5Dclose(d);
        d = -1;
    }
    *present = 1;
done:
    if (d >= 0) H5Dclose(d);
    H5Gclose(grp);
    return st;
}
