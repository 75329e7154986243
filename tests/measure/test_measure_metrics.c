/*
 * test_measure_metrics.c: the Genant rule, classification metrics, PSNR,
 * SSIM and overlap metrics against hand-computed values and against
 * scikit-image / scikit-learn on committed fixtures
 * (tests/measure/fixtures, made by scripts/make_measure_fixtures.py; the
 * Gaussian SSIM's by scripts/make_ssim_fixture.py).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"
#include "hv_test.h"

static void test_genant(void)
{
    HV_CHECK(hv_measure_genant(-0.3) == 0, "negative loss is normal");
    HV_CHECK(hv_measure_genant(0.0) == 0, "0");
    HV_CHECK(hv_measure_genant(0.1999) == 0, "just below 20 %%");
    HV_CHECK(hv_measure_genant(0.20) == 1, "20 %% is grade 1");
    HV_CHECK(hv_measure_genant(0.2499) == 1, "just below 25 %%");
    HV_CHECK(hv_measure_genant(0.25) == 2, "25 %% is grade 2");
    HV_CHECK(hv_measure_genant(0.3999) == 2, "just below 40 %%");
    HV_CHECK(hv_measure_genant(0.40) == 3, "40 %% is grade 3");
    HV_CHECK(hv_measure_genant(0.9) == 3, "90 %%");
    HV_CHECK(hv_measure_genant(NAN) == -1, "NaN is ungraded");
    hv_vert_measure v;
    memset(&v, 0, sizeof v);
    v.rhlv[HV_REG_ALL] = 0.5; /* "all" must not count */
    v.rhlv[HV_REG_ANT] = 0.05;
    v.rhlv[HV_REG_MID] = 0.27;
    v.rhlv[HV_REG_POST] = NAN;
    HV_CHECK(hv_measure_genant_vert(&v) == 2, "max of ant/mid/post, NaN ignored");
    v.rhlv[HV_REG_ANT] = v.rhlv[HV_REG_MID] = NAN;
    HV_CHECK(hv_measure_genant_vert(&v) == -1, "all NaN is ungraded");
}

static void test_classify_hand(void)
{
    /* y_true 0 0 0 1 1 2, y_pred 0 0 1 1 2 2:
     * class 0: tp 2 fp 0 fn 1 -> P 1, R 2/3, F1 0.8
     * class 1: tp 1 fp 1 fn 1 -> P 1/2, R 1/2, F1 1/2
     * class 2: tp 1 fp 1 fn 0 -> P 1/2, R 1, F1 2/3
     * accuracy 4/6. Linear kappa: observed disagreement weight sum 2 (each
     * off by one), expected sum_ij |i-j| r_i c_j / n with rows (3,2,1), cols
     * (2,2,2): (3*2*1 + 3*2*2 + 2*2*1 + 2*2*1 + 1*2*2 + 1*2*1)/6 = 32/6;
     * kappa = 1 - 2/(32/6) = 1 - 12/32 = 0.625. */
    const int yt[6] = {0, 0, 0, 1, 1, 2}, yp[6] = {0, 0, 1, 1, 2, 2};
    hv_class_metrics m;
    HV_CHECK_OK(hv_metrics_classify(yt, yp, 6, &m));
    HV_CHECK(m.n_classes == 3, "3 classes");
    HV_CHECK_CLOSE(m.macro_precision, (1.0 + 0.5 + 0.5) / 3, 1e-12, "macro P");
    HV_CHECK_CLOSE(m.macro_recall, (2.0 / 3 + 0.5 + 1.0) / 3, 1e-12, "macro R");
    HV_CHECK_CLOSE(m.macro_f1, (0.8 + 0.5 + 2.0 / 3) / 3, 1e-12, "macro F1");
    HV_CHECK_CLOSE(m.accuracy, 4.0 / 6, 1e-12, "accuracy");
    HV_CHECK_CLOSE(m.kappa_linear, 0.625, 1e-12, "linear kappa");
    HV_CHECK(m.confusion[0][0] == 2 && m.confusion[0][1] == 1 && m.confusion[1][2] == 1,
             "confusion");
    /* a class only in y_pred joins the union, with recall 0 */
    const int yt2[3] = {0, 0, 1}, yp2[3] = {0, 3, 1};
    HV_CHECK_OK(hv_metrics_classify(yt2, yp2, 3, &m));
    HV_CHECK(m.n_classes == 3 && m.classes[2] == 3, "union of classes");
    HV_CHECK_CLOSE(m.macro_recall, (0.5 + 1.0 + 0.0) / 3, 1e-12, "zero-division recall");
    const int bad[1] = {16};
    HV_CHECK(hv_metrics_classify(bad, bad, 1, &m) == HV_ERR_ARG, "class out of range");
    HV_CHECK(hv_metrics_classify(yt, yp, 0, &m) == HV_ERR_EMPTY, "no samples");
}

static void test_classify_sklearn(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/measure/fixtures/class_metrics.txt", HV_TEST_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    HV_CHECK(f != NULL, "open %s", path);
    if (!f) return;
    char line[8192];
    int yt[64], yp[64], n = 0, n2 = 0;
    double ref[5];
    if (!fgets(line, sizeof line, f)) line[0] = 0; /* comment */
    if (fgets(line, sizeof line, f))
        for (char *p = strtok(line, " \n"); p && n < 64; p = strtok(NULL, " \n")) yt[n++] = atoi(p);
    if (fgets(line, sizeof line, f))
        for (char *p = strtok(line, " \n"); p && n2 < 64; p = strtok(NULL, " \n")) yp[n2++] = atoi(p);
    int got = fscanf(f, "%lf %lf %lf %lf %lf", &ref[0], &ref[1], &ref[2], &ref[3], &ref[4]);
    fclose(f);
    HV_CHECK(n == 40 && n2 == 40 && got == 5, "fixture parsed (%d %d %d)", n, n2, got);
    if (n != 40 || n2 != 40 || got != 5) return;
    hv_class_metrics m;
    HV_CHECK_OK(hv_metrics_classify(yt, yp, (size_t)n, &m));
    HV_CHECK_CLOSE(m.macro_precision, ref[0], 1e-12, "sklearn macro P");
    HV_CHECK_CLOSE(m.macro_recall, ref[1], 1e-12, "sklearn macro R");
    HV_CHECK_CLOSE(m.macro_f1, ref[2], 1e-12, "sklearn macro F1");
    HV_CHECK_CLOSE(m.accuracy, ref[3], 1e-12, "sklearn accuracy");
    HV_CHECK_CLOSE(m.kappa_linear, ref[4], 1e-12, "sklearn linear kappa");
}

typedef hv_status (*ssim_fn)(const double *, const double *, int, int, double, double *);

static void test_ssim_fixtures(const char *file, ssim_fn ssim, int want_pairs)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/measure/fixtures/%s", HV_TEST_SOURCE_DIR, file);
    FILE *f = fopen(path, "r");
    HV_CHECK(f != NULL, "open %s", path);
    if (!f) return;
    char name[32];
    int h, w, npairs = 0;
    double r, ssim_ref, psnr_ref;
    int c;
    while ((c = fgetc(f)) == '#') /* skip comment lines */
        while ((c = fgetc(f)) != '\n' && c != EOF) {}
    if (c != EOF) ungetc(c, f);
    while (fscanf(f, "%31s %d %d %lf %lf %lf", name, &h, &w, &r, &ssim_ref, &psnr_ref) == 6) {
        size_t n = (size_t)h * (size_t)w;
        double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        int ok = x && y;
        for (size_t i = 0; ok && i < n; i++) ok = fscanf(f, "%lf", &x[i]) == 1;
        for (size_t i = 0; ok && i < n; i++) ok = fscanf(f, "%lf", &y[i]) == 1;
        HV_CHECK(ok, "%s: values parsed", name);
        if (ok) {
            double s = NAN;
            HV_CHECK_OK(ssim(x, y, h, w, r, &s));
            char what[128];
            snprintf(what, sizeof what, "SSIM %s %s vs scikit-image", file, name);
            HV_CHECK_CLOSE(s, ssim_ref, 1e-10, what);
            snprintf(what, sizeof what, "PSNR %s vs scikit-image", name);
            HV_CHECK_CLOSE(hv_metrics_psnr(x, y, n, r), psnr_ref, 1e-10, what);
            double self = 0;
            HV_CHECK_OK(ssim(x, x, h, w, r, &self));
            HV_CHECK_CLOSE(self, 1.0, 1e-12, "SSIM of an image with itself");
            HV_CHECK(isinf(hv_metrics_psnr(x, x, n, r)), "PSNR of identical images is inf");
            npairs++;
        }
        free(x);
        free(y);
    }
    fclose(f);
    HV_CHECK(npairs == want_pairs, "%d SSIM fixtures in %s, got %d", want_pairs, file, npairs);
}

/* The Gaussian SSIM by hand, on 11x11 images (one window, so the mean is
 * that window's value), from the definition: weights w(x, y) = g(x) g(y)
 * with g(t) = exp(-t^2 / 4.5) / sum_t exp(-t^2 / 4.5), t = -5..5;
 * C1 = (0.01 R)^2, C2 = (0.03 R)^2. */
static void test_ssim_gaussian_hand(void)
{
    double x[121], y[121], s = NAN;
    const double c1 = 1e-4, c2 = 9e-4; /* R = 1 */
    /* two constant images a, b: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) */
    for (int q = 0; q < 121; q++) x[q] = 0.6, y[q] = 0.2;
    HV_CHECK_OK(hv_metrics_ssim_gaussian(x, y, 11, 11, 1.0, &s));
    HV_CHECK_CLOSE(s, (2 * 0.6 * 0.2 + c1) / (0.36 + 0.04 + c1), 1e-12, "constant images");
    /* an impulse 1 at the centre against zeros: ux = uxx = w0 = g(0)^2,
     * uy = vy = vxy = 0, vx = w0 - w0^2; SSIM = C1 C2 / ((w0^2 + C1)(w0 - w0^2 + C2)) */
    double gs = 0;
    for (int t = -5; t <= 5; t++) gs += exp(-(double)(t * t) / 4.5);
    const double w0 = 1.0 / (gs * gs);
    for (int q = 0; q < 121; q++) x[q] = y[q] = 0;
    x[60] = 1;
    HV_CHECK_OK(hv_metrics_ssim_gaussian(x, y, 11, 11, 1.0, &s));
    HV_CHECK_CLOSE(s, c1 * c2 / ((w0 * w0 + c1) * (w0 - w0 * w0 + c2)), 1e-12, "impulse vs zeros");
    HV_CHECK(s > 0 && s < 0.05, "impulse vs zeros is dissimilar (%g)", s);
    double small[100] = {0};
    HV_CHECK(hv_metrics_ssim_gaussian(small, small, 10, 10, 1.0, &s) == HV_ERR_ARG, "10x10 < window");
    HV_CHECK(hv_metrics_ssim_gaussian(x, x, 11, 11, 0.0, &s) == HV_ERR_ARG, "data_range 0");
}

static void test_psnr_overlap_hand(void)
{
    /* MSE of (0,0,0,0) vs (1,1,1,1) = 1, range 10 -> 10 log10(100) = 20 dB */
    const double a[4] = {0, 0, 0, 0}, b[4] = {1, 1, 1, 1};
    HV_CHECK_CLOSE(hv_metrics_psnr(a, b, 4, 10.0), 20.0, 1e-12, "PSNR hand");
    /* A = {0,1,2,3}, B = {2,3,4}: |A|=4 |B|=3 both 2 union 5 */
    uint8_t A[6] = {1, 1, 1, 1, 0, 0}, B[6] = {0, 0, 1, 1, 1, 0};
    hv_overlap o;
    hv_metrics_overlap(A, B, 6, &o);
    HV_CHECK_CLOSE(o.dice, 4.0 / 7.0, 1e-12, "Dice");
    HV_CHECK_CLOSE(o.iou, 2.0 / 5.0, 1e-12, "IoU");
    HV_CHECK_CLOSE(o.rvd, 1.0 / 4.0, 1e-12, "relative volume difference");
    uint8_t Z[3] = {0, 0, 0};
    hv_metrics_overlap(Z, Z, 3, &o);
    HV_CHECK(o.dice == 1.0 && o.iou == 1.0 && isnan(o.rvd), "both empty");
}

int main(void)
{
    test_genant();
    test_classify_hand();
    test_classify_sklearn();
    test_ssim_fixtures("ssim_fixtures.txt", hv_metrics_ssim, 3);
    {
        double small[36] = {0}, s;
        HV_CHECK(hv_metrics_ssim(small, small, 6, 6, 1.0, &s) == HV_ERR_ARG, "6x6 < window");
    }
    test_ssim_fixtures("ssim_gaussian.txt", hv_metrics_ssim_gaussian, 4);
    test_ssim_gaussian_hand();
    test_psnr_overlap_hand();
    return hv_test_done();
}
