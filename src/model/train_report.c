/*
 * train_report.c: what a training writes about its validations (hv/train.h):
 * <out>/val.csv (one row per validation, the two baselines first), the
 * curves (one PNG per metric through the draw module) and the grid of sample
 * syntheses (input | attention | output | truth).
 *
 * val.csv is rewritten whole and atomically at every validation (it is
 * small): a kill never leaves half a row, and a resume reads it back keeping
 * only the rows up to the checkpoint's step, so the rows a resumed run
 * computes again are not there twice (val_table.c, the reader shared with
 * the classifier's val.csv; only the row's fields are parsed here).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/train.h"
#include "val_table.h"

void hv_train_val_print(FILE *f, const hv_train_val_row *rows, size_t n)
{
    fprintf(f, "%s\n", HV_TRAIN_VAL_HEADER);
    for (size_t i = 0; i < n; i++) {
        const hv_train_val_row *r = &rows[i];
        fprintf(f, "%lld,%lld,%s,%zu,%.6f,%.4f,%.6f,%.6f,%.4f,%.6f,%.2f\n", (long long)r->step,
                (long long)r->epoch, r->method, r->m.n, r->m.band_l1, r->m.psnr, r->m.ssim,
                r->m.dice, r->m.height_err_pct, r->m.dice_best, r->m.seg_threshold);
    }
}

hv_status hv_train_val_write(const char *path, const hv_train_val_row *rows, size_t n)
{
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    hv_train_val_print(f, rows, n);
    return hv_atomic_commit(a, 1);
}

/* One row of val.csv: step, epoch, method, n, five metrics, then
 * dice_best and seg_threshold (absent in a table an older version wrote,
 * whose header val_table.c accepts as a prefix: NaN then); 0 when
 * malformed. */
static int parse_row(const char *l, void *row, int64_t *step)
{
    hv_train_val_row *x = row;
    long long s, e;
    int used = 0;
    if (sscanf(l, "%lld,%lld,%15[^,],%zu,%lf,%lf,%lf,%lf,%lf%n", &s, &e, x->method, &x->m.n,
               &x->m.band_l1, &x->m.psnr, &x->m.ssim, &x->m.dice, &x->m.height_err_pct,
               &used) != 9)
        return 0;
    x->m.dice_best = x->m.seg_threshold = NAN;
    if (l[used] == ',') {
        int more = 0;
        if (sscanf(l + used, ",%lf,%lf%n", &x->m.dice_best, &x->m.seg_threshold, &more) != 2)
            return 0;
        used += more;
    }
    if (l[used] != 0) return 0;
    x->step = s;
    x->epoch = e;
    *step = x->step;
    return 1;
}

hv_status hv_train_val_read(const char *path, int64_t max_step, hv_train_val_row **rows,
                            size_t *n)
{
    void *r = NULL;
    hv_status st = hv__val_table_read(path, HV_TRAIN_VAL_HEADER, "validation table", sizeof **rows,
                                      parse_row, max_step, &r, n);
    *rows = r;
    return st;
}

/* ---------------------------------------------------------------- curves */

static double metric_of(const hv_train_metrics *m, int k)
{
    switch (k) {
    case 0: return m->band_l1;
    case 1: return m->psnr;
    case 2: return m->ssim;
    case 3: return m->dice;
    default: return m->height_err_pct;
    }
}

hv_status hv_train_curves_plot(const char *path, const char *title, const char *ylabel,
                               const hv_io_series *curves, int n_curves,
                               const char *const *flat_names, const double *flat_y, int n_flat)
{
    double xmax = 0;
    for (int c = 0; c < n_curves; c++)
        for (int i = 0; i < curves[c].n; i++)
            if (curves[c].x[i] > xmax) xmax = curves[c].x[i];
    hv_io_series s[16];
    double bx[2] = {0, xmax > 0 ? xmax : 1}, by[8][2];
    int ns = 0;
    for (int c = 0; c < n_curves && ns < 16; c++) s[ns++] = curves[c];
    for (int f = 0; f < n_flat && f < 8 && ns < 16; f++) {
        by[f][0] = by[f][1] = flat_y[f];
        s[ns++] = (hv_io_series){flat_names[f], 2, bx, by[f]};
    }
    hv_io_lines L;
    memset(&L, 0, sizeof L);
    L.title = title;
    L.xlabel = "step";
    L.ylabel = ylabel;
    L.n_series = ns;
    L.series = s;
    return hv_io_plot_lines(path, &L);
}

hv_status hv_train_val_plot(const char *dir, const hv_train_val_row *rows, size_t n)
{
    static const char *const names[] = {"band_l1", "psnr", "ssim", "dice", "height_err_pct"};
    /* short: the plot is 520 pixels wide */
    static const char *const titles[] = {"val: band L1 |output - truth|", "val: band PSNR (dB)",
                                         "val: band SSIM", "val: Dice, fine segmentation",
                                         "val: height error |H2 - h| / h (%)"};
    static const char *const flat[2] = {"copy the input", "untrained (step 0)"};
    double *x = malloc((n ? n : 1) * sizeof *x), *y = malloc((n ? n : 1) * sizeof *y);
    hv_status st = HV_OK;
    if (!x || !y) {
        st = hv_error_set(HV_ERR_NOMEM, "curves: out of memory");
        goto done;
    }
    for (int k = 0; k < 5 && st == HV_OK; k++) {
        int m = 0;
        double base[2] = {NAN, NAN}; /* copy the input, untrained */
        for (size_t i = 0; i < n; i++) {
            double v = metric_of(&rows[i].m, k);
            if (!strcmp(rows[i].method, "copy_input")) {
                base[0] = v;
                continue;
            }
            if (rows[i].step == 0) base[1] = v;
            x[m] = (double)rows[i].step;
            y[m++] = v;
        }
        hv_io_series s = {"network", m, x, y};
        char *path = hv_strfmt("%s/val_%s.png", dir, names[k]);
        if (!path) st = hv_error_set(HV_ERR_NOMEM, "curves: out of memory");
        else st = hv_train_curves_plot(path, titles[k], names[k], &s, 1, flat, base, 2);
        free(path);
    }
done:
    free(x);
    free(y);
    return st;
}

/* ------------------------------------------------------------ sample grid */

static uint8_t to_u8(double v) /* [-1, 1] -> 0..255 */
{
    double t = (v + 1.0) * 127.5;
    if (!(t > 0)) return 0;
    if (t > 255) return 255;
    return (uint8_t)(t + 0.5);
}

hv_status hv_train_val_grid(const char *path, const hv_train_valset *v, const hv_train_valout *o,
                            int k)
{
    const hv_model_batch *a = &v->all;
    if (k > a->n) k = (int)a->n;
    if (k < 1) return hv_error_set(HV_ERR_ARG, "sample grid: no item");
    const int gap = 4, R = (int)a->rows, C = (int)a->cols;
    int W = 4 * C + 3 * gap, H = k * R + (k - 1) * gap;
    uint8_t *px = calloc((size_t)W * (size_t)H, 1);
    if (!px) return hv_error_set(HV_ERR_NOMEM, "sample grid: out of memory");
    memset(px, 255, (size_t)W * (size_t)H); /* white gaps */
    size_t sp = (size_t)R * (size_t)C;
    for (int i = 0; i < k; i++)
        for (int p = 0; p < 4; p++) {
            const float *src = p == 0   ? a->x + (size_t)i * sp
                               : p == 1 ? a->cam + (size_t)i * sp
                               : p == 2 ? o->composite + (size_t)i * sp
                                        : a->real + (size_t)i * sp;
            for (int r = 0; r < R; r++)
                for (int c = 0; c < C; c++) {
                    double val = src[(size_t)r * C + c];
                    if (p == 1) val = val * 2.0 - 1.0; /* CAM in [0, 1] */
                    px[(size_t)(i * (R + gap) + r) * W + (size_t)(p * (C + gap) + c)] = to_u8(val);
                }
        }
    hv_status st = hv_io_png_write(path, W, H, 1, px);
    free(px);
    return st;
}
