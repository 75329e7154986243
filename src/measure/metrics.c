/*
 * metrics.c: the Genant rule and the metrics the reference reports.
 *
 * Classification metrics follow scikit-learn's definitions (the reference
 * computes them with it): macro averages over the sorted union of classes in
 * y_true and y_pred, 0 for an undefined precision/recall (zero_division), F1
 * as 2 tp / (2 tp + fp + fn); linearly weighted Cohen's kappa with weights
 * |i - j| over class positions. SSIM reproduces scikit-image's
 * structural_similarity defaults (uniform 7x7 window, sample covariance,
 * mean over the image minus a 3-pixel border), with exact box sums from a
 * summed-area table so no border mode is involved. The Gaussian SSIM
 * (hv_metrics_ssim_gaussian) is Wang et al. 2004's, as scikit-image computes
 * it with gaussian_weights=True, sigma=1.5, use_sample_covariance=False: an
 * 11-tap kernel exp(-x^2 / (2 sigma^2)), x = -5..5 (scipy's radius
 * int(3.5 sigma + 0.5)), normalised to sum 1, applied separably; the mean is
 * over the image minus a 5-pixel border, which is exactly the set of pixels
 * whose window lies inside the image, so again no border mode is involved
 * (the filter is evaluated only there).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"

int hv_measure_genant(double loss)
{
    if (isnan(loss)) return -1;
    if (loss < 0.20) return 0;
    if (loss < 0.25) return 1;
    if (loss < 0.40) return 2;
    return 3;
}

int hv_measure_genant_vert(const hv_vert_measure *v)
{
    double worst = NAN;
    for (int r = HV_REG_ANT; r <= HV_REG_POST; r++)
        if (isfinite(v->rhlv[r]) && (isnan(worst) || v->rhlv[r] > worst)) worst = v->rhlv[r];
    return hv_measure_genant(worst);
}

hv_status hv_metrics_classify(const int *y_true, const int *y_pred, size_t n,
                              hv_class_metrics *out)
{
    if (!y_true || !y_pred || !out) return hv_error_set(HV_ERR_ARG, "metrics: NULL argument");
    if (n == 0) return hv_error_set(HV_ERR_EMPTY, "metrics: no samples");
    memset(out, 0, sizeof *out);
    int present[16] = {0};
    for (size_t i = 0; i < n; i++) {
        if (y_true[i] < 0 || y_true[i] > 15 || y_pred[i] < 0 || y_pred[i] > 15)
            return hv_error_set(HV_ERR_ARG, "metrics: class %d outside 0..15",
                                (y_true[i] < 0 || y_true[i] > 15) ? y_true[i] : y_pred[i]);
        present[y_true[i]] = present[y_pred[i]] = 1;
    }
    int pos[16];
    for (int c = 0; c < 16; c++) {
        pos[c] = -1;
        if (present[c]) {
            pos[c] = out->n_classes;
            out->classes[out->n_classes++] = c;
        }
    }
    int k = out->n_classes;
    long correct = 0;
    for (size_t i = 0; i < n; i++) {
        out->confusion[pos[y_true[i]]][pos[y_pred[i]]]++;
        if (y_true[i] == y_pred[i]) correct++;
    }
    out->accuracy = (double)correct / (double)n;
    double sp = 0, sr = 0, sf = 0;
    for (int c = 0; c < k; c++) {
        long tp = out->confusion[c][c], col = 0, row = 0;
        for (int q = 0; q < k; q++) {
            col += out->confusion[q][c];
            row += out->confusion[c][q];
        }
        sp += col ? (double)tp / (double)col : 0.0;
        sr += row ? (double)tp / (double)row : 0.0;
        long den = 2 * tp + (col - tp) + (row - tp);
        sf += den ? 2.0 * (double)tp / (double)den : 0.0;
    }
    out->macro_precision = sp / k;
    out->macro_recall = sr / k;
    out->macro_f1 = sf / k;
    /* linearly weighted kappa */
    double rows[16] = {0}, cols[16] = {0}, num = 0, den = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            rows[a] += (double)out->confusion[a][b];
            cols[b] += (double)out->confusion[a][b];
        }
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double w = fabs((double)(a - b));
            num += w * (double)out->confusion[a][b];
            den += w * rows[a] * cols[b] / (double)n;
        }
    out->kappa_linear = den > 0 ? 1.0 - num / den : NAN;
    return HV_OK;
}

double hv_metrics_psnr(const double *ref, const double *img, size_t n, double data_range)
{
    if (!ref || !img || n == 0) return NAN;
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = ref[i] - img[i];
        se += d * d;
    }
    double mse = se / (double)n;
    if (mse == 0.0) return INFINITY;
    return 10.0 * log10(data_range * data_range / mse);
}

/* Summed-area table with a zero first row and column: (h+1) x (w+1). */
static void integral(const double *a, int h, int w, double *t)
{
    for (int x = 0; x <= w; x++) t[x] = 0;
    for (int y = 1; y <= h; y++) {
        double run = 0;
        t[(size_t)y * (w + 1)] = 0;
        for (int x = 1; x <= w; x++) {
            run += a[(size_t)(y - 1) * w + (x - 1)];
            t[(size_t)y * (w + 1) + x] = t[(size_t)(y - 1) * (w + 1) + x] + run;
        }
    }
}

static double box(const double *t, int w, int y0, int x0, int y1, int x1)
{
    /* sum over rows [y0, y1) and columns [x0, x1) */
    size_t W = (size_t)w + 1;
    return t[(size_t)y1 * W + x1] - t[(size_t)y0 * W + x1] - t[(size_t)y1 * W + x0] +
           t[(size_t)y0 * W + x0];
}

hv_status hv_metrics_ssim(const double *x, const double *y, int h, int w,
                          double data_range, double *out)
{
    const int win = 7, pad = 3;
    hv_status st = HV_OK;
    double *buf = NULL, *tab = NULL;
    if (!x || !y || !out) return hv_error_set(HV_ERR_ARG, "ssim: NULL argument");
    if (h < win || w < win)
        return hv_error_set(HV_ERR_ARG, "ssim: image %dx%d smaller than the 7x7 window", h, w);
    if (!(data_range > 0)) return hv_error_set(HV_ERR_ARG, "ssim: data_range must be > 0");
    size_t n = (size_t)h * (size_t)w, nt = (size_t)(h + 1) * (size_t)(w + 1);
    buf = malloc(n * sizeof *buf);
    tab = malloc(5 * nt * sizeof *tab);
    if (!buf || !tab) {
        st = hv_error_set(HV_ERR_NOMEM, "ssim: %dx%d", h, w);
        goto done;
    }
    integral(x, h, w, tab);
    integral(y, h, w, tab + nt);
    for (size_t i = 0; i < n; i++) buf[i] = x[i] * x[i];
    integral(buf, h, w, tab + 2 * nt);
    for (size_t i = 0; i < n; i++) buf[i] = y[i] * y[i];
    integral(buf, h, w, tab + 3 * nt);
    for (size_t i = 0; i < n; i++) buf[i] = x[i] * y[i];
    integral(buf, h, w, tab + 4 * nt);
    const double np = (double)(win * win), cov_norm = np / (np - 1.0);
    const double c1 = (0.01 * data_range) * (0.01 * data_range);
    const double c2 = (0.03 * data_range) * (0.03 * data_range);
    double sum = 0;
    long cnt = 0;
    for (int r = pad; r < h - pad; r++)
        for (int c = pad; c < w - pad; c++) {
            int y0 = r - pad, y1 = r + pad + 1, x0 = c - pad, x1 = c + pad + 1;
            double ux = box(tab, w, y0, x0, y1, x1) / np;
            double uy = box(tab + nt, w, y0, x0, y1, x1) / np;
            double uxx = box(tab + 2 * nt, w, y0, x0, y1, x1) / np;
            double uyy = box(tab + 3 * nt, w, y0, x0, y1, x1) / np;
            double uxy = box(tab + 4 * nt, w, y0, x0, y1, x1) / np;
            double vx = cov_norm * (uxx - ux * ux);
            double vy = cov_norm * (uyy - uy * uy);
            double vxy = cov_norm * (uxy - ux * uy);
            double a1 = 2 * ux * uy + c1, a2 = 2 * vxy + c2;
            double b1 = ux * ux + uy * uy + c1, b2 = vx + vy + c2;
            sum += (a1 * a2) / (b1 * b2);
            cnt++;
        }
    *out = sum / (double)cnt;
done:
    free(buf);
    free(tab);
    return st;
}

hv_status hv_metrics_ssim_gaussian(const double *x, const double *y, int h, int w,
                                   double data_range, double *out)
{
    enum { R = 5, WIN = 2 * R + 1 };
    const double sigma = 1.5;
    hv_status st = HV_OK;
    double *tmp = NULL;
    if (!x || !y || !out) return hv_error_set(HV_ERR_ARG, "ssim: NULL argument");
    if (h < WIN || w < WIN)
        return hv_error_set(HV_ERR_ARG, "ssim: image %dx%d smaller than the 11x11 Gaussian window",
                            h, w);
    if (!(data_range > 0)) return hv_error_set(HV_ERR_ARG, "ssim: data_range must be > 0");
    double g[WIN], gs = 0;
    for (int t = 0; t < WIN; t++) {
        const double d = (double)(t - R);
        g[t] = exp(-0.5 * d * d / (sigma * sigma));
        gs += g[t];
    }
    for (int t = 0; t < WIN; t++) g[t] /= gs;
    /* horizontal pass over every row, at the interior columns only: 5 maps
     * (x, y, xx, yy, xy) of h rows x wi columns */
    const int wi = w - 2 * R, hi = h - 2 * R;
    const size_t plane = (size_t)h * (size_t)wi;
    tmp = malloc(5 * plane * sizeof *tmp);
    if (!tmp) {
        st = hv_error_set(HV_ERR_NOMEM, "ssim: %dx%d", h, w);
        goto done;
    }
    for (int r = 0; r < h; r++)
        for (int c = 0; c < wi; c++) {
            double s[5] = {0, 0, 0, 0, 0};
            for (int t = 0; t < WIN; t++) {
                const size_t q = (size_t)r * (size_t)w + (size_t)(c + t);
                const double a = x[q], b = y[q];
                s[0] += g[t] * a;
                s[1] += g[t] * b;
                s[2] += g[t] * a * a;
                s[3] += g[t] * b * b;
                s[4] += g[t] * a * b;
            }
            for (int m = 0; m < 5; m++) tmp[m * plane + (size_t)r * (size_t)wi + (size_t)c] = s[m];
        }
    const double c1 = (0.01 * data_range) * (0.01 * data_range);
    const double c2 = (0.03 * data_range) * (0.03 * data_range);
    double sum = 0;
    for (int r = 0; r < hi; r++)
        for (int c = 0; c < wi; c++) {
            double u[5] = {0, 0, 0, 0, 0};
            for (int t = 0; t < WIN; t++)
                for (int m = 0; m < 5; m++)
                    u[m] += g[t] * tmp[m * plane + (size_t)(r + t) * (size_t)wi + (size_t)c];
            /* population covariance (cov_norm 1) */
            const double vx = u[2] - u[0] * u[0], vy = u[3] - u[1] * u[1];
            const double vxy = u[4] - u[0] * u[1];
            sum += ((2 * u[0] * u[1] + c1) * (2 * vxy + c2)) /
                   ((u[0] * u[0] + u[1] * u[1] + c1) * (vx + vy + c2));
        }
    *out = sum / ((double)hi * (double)wi);
done:
    free(tmp);
    return st;
}

void hv_metrics_overlap(const uint8_t *a, const uint8_t *b, size_t n, hv_overlap *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        int ia = a[i] != 0, ib = b[i] != 0;
        out->n_a += (size_t)ia;
        out->n_b += (size_t)ib;
        out->n_both += (size_t)(ia && ib);
    }
    size_t uni = out->n_a + out->n_b - out->n_both;
    out->dice = (out->n_a + out->n_b) ? 2.0 * (double)out->n_both / (double)(out->n_a + out->n_b) : 1.0;
    out->iou = uni ? (double)out->n_both / (double)uni : 1.0;
    out->rvd = out->n_a ? fabs((double)out->n_a - (double)out->n_b) / (double)out->n_a : NAN;
}
