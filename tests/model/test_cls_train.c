/*
 * test_cls_train.c: the MPI-free parts of `healthivert train-classifier`
 * (hv/train.h, "the fracture classifier") against hand-computed answers.
 *
 *  metrics  AUC (Mann-Whitney, a tie 0.5), sensitivity, specificity, recall
 *           per grade and the cross entropy of six hand-made vertebrae (one
 *           of unknown grade, left out) at thresholds 1 and 2; an absent
 *           class gives NaN;
 *  sampler  the balanced epoch list: every item of the larger class exactly
 *           once, as many entries of the smaller class (draws from it only),
 *           the same list for the same (seed, epoch), another for another
 *           epoch; balance none: a permutation of the labelled items;
 *  csv      val.csv written, read back whole and up to a step, NaN kept, a
 *           malformed row refused naming its line;
 *  loss     (needs the network) a width-2 classifier's step on two slices
 *           labelled 1 and 0: the loss equals (softplus(-d0) + softplus(d1))
 *           / 2 of the step's own z1 - z0, computed here in double; a
 *           half batch (batch_local 1 of 2) reports half its item's
 *           softplus (the data-parallel scaling); a NaN input is refused
 *           with HV_ERR_NUMERIC and leaves every parameter and running
 *           statistic bit for bit as it was; ten steps on the same two
 *           slices lower their loss; the checkpoint loads back (same
 *           predictions), is refused by a width-4 model, and opens as a
 *           classifier on the Grad-CAM++ side (hv_model_cam_open).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/train.h"
#include "hv_test.h"

static void test_metrics(void)
{
    const double p[6] = {0.9, 0.4, 0.6, 0.2, 0.6, 0.1};
    const int grade[6] = {2, 1, 0, 0, 3, -1};
    hv_train_cls_metrics m;
    hv_train_cls_metrics_of(p, grade, 6, 1, &m);
    HV_CHECK(m.n == 5 && m.n_pos == 3 && m.n_neg == 2, "counts %zu %zu %zu", m.n, m.n_pos, m.n_neg);
    /* pairs (pos, neg): (.9,.6) 1, (.9,.2) 1, (.4,.6) 0, (.4,.2) 1, (.6,.6) .5, (.6,.2) 1 */
    HV_CHECK_CLOSE(m.auc, 4.5 / 6.0, 1e-12, "AUC, threshold 1");
    HV_CHECK_CLOSE(m.sensitivity, 2.0 / 3.0, 1e-12, "sensitivity (0.9, 0.6 of 0.9, 0.4, 0.6)");
    HV_CHECK_CLOSE(m.specificity, 0.5, 1e-12, "specificity (0.2 of 0.6, 0.2)");
    HV_CHECK_CLOSE(m.recall[0], 0.5, 1e-12, "recall grade 0 (0.6 called of 0.6, 0.2)");
    HV_CHECK_CLOSE(m.recall[1], 0.0, 1e-12, "recall grade 1 (0.4)");
    HV_CHECK_CLOSE(m.recall[2], 1.0, 1e-12, "recall grade 2");
    HV_CHECK_CLOSE(m.recall[3], 1.0, 1e-12, "recall grade 3");
    double ce = -(log(0.9) + log(0.4) + log(0.4) + log(0.8) + log(0.6)) / 5.0;
    HV_CHECK_CLOSE(m.loss, ce, 1e-12, "cross entropy");
    HV_CHECK_CLOSE(m.loss, 0.534382, 1e-6, "cross entropy by hand (2.671911 / 5)");

    hv_train_cls_metrics_of(p, grade, 6, 2, &m);
    /* positives .9 (g2), .6 (g3); negatives .4, .6, .2: 3 + (1 + .5 + 1) of 6 */
    HV_CHECK(m.n_pos == 2 && m.n_neg == 3, "threshold 2 counts %zu %zu", m.n_pos, m.n_neg);
    HV_CHECK_CLOSE(m.auc, 5.5 / 6.0, 1e-12, "AUC, threshold 2");
    HV_CHECK_CLOSE(m.sensitivity, 1.0, 1e-12, "sensitivity, threshold 2");
    HV_CHECK_CLOSE(m.specificity, 2.0 / 3.0, 1e-12, "specificity, threshold 2 (0.4, 0.2 of 3)");
    HV_CHECK_CLOSE(m.recall[0], 0.5, 1e-12, "recall g0 does not depend on the threshold");

    const int healthy[3] = {0, 0, 1};
    hv_train_cls_metrics_of(p, healthy, 3, 2, &m);
    HV_CHECK(isnan(m.auc) && isnan(m.sensitivity) && isnan(m.recall[2]),
             "no positive: AUC %g, sensitivity %g, recall g2 %g are NaN", m.auc, m.sensitivity,
             m.recall[2]);
    HV_CHECK_CLOSE(m.specificity, 1.0 / 3.0, 1e-12, "specificity without a positive (0.4 of 3)");
}

static void test_sampler(void)
{
    enum { N = 10 };
    hv_train_cls_plan p;
    memset(&p, 0, sizeof p);
    size_t train[N];
    uint8_t y[N] = {0, 1, 0, 0, 1, 0, 0, 0, 1, 0}; /* 3 fractures, 7 not */
    for (int i = 0; i < N; i++) train[i] = (size_t)(100 + i);
    p.n_train = N;
    p.train = train;
    p.train_y = y;
    p.n_pos = 3;
    p.n_neg = 7;
    p.balance = HV_TRAIN_CLS_BALANCE_SAMPLE;
    p.epoch_len = 14;
    size_t a[14], b[14], c[14];
    hv_train_cls_epoch_list(&p, 7, 3, a);
    int seen[N] = {0}, pos = 0, neg = 0, bad = 0;
    for (int k = 0; k < 14; k++) {
        if (a[k] >= N) {
            bad++;
            continue;
        }
        seen[a[k]]++;
        if (y[a[k]]) pos++;
        else neg++;
    }
    HV_CHECK(bad == 0, "%d entries outside the train items", bad);
    HV_CHECK(pos == 7 && neg == 7, "balanced: 7 fractures and 7 others, got %d and %d", pos, neg);
    int once = 1;
    for (int i = 0; i < N; i++)
        if (!y[i] && seen[i] != 1) once = 0;
    HV_CHECK(once, "every non-fracture exactly once");
    hv_train_cls_epoch_list(&p, 7, 3, b);
    HV_CHECK(!memcmp(a, b, sizeof a), "same (seed, epoch): same list");
    hv_train_cls_epoch_list(&p, 7, 4, c);
    HV_CHECK(memcmp(a, c, sizeof a) != 0, "another epoch: another list");
    /* over many epochs every fracture is drawn, about equally */
    int cnt[N] = {0};
    for (int e = 0; e < 300; e++) {
        hv_train_cls_epoch_list(&p, 7, e, c);
        for (int k = 0; k < 14; k++) cnt[c[k]]++;
    }
    for (int i = 0; i < N; i++)
        if (y[i])
            HV_CHECK(cnt[i] > 550 && cnt[i] < 850, "fracture %d drawn %d times of 2100 (700 "
                     "expected)", i, cnt[i]);
    /* the classes swapped in size: the fractures are the larger class */
    uint8_t y2[N];
    for (int i = 0; i < N; i++) y2[i] = !y[i];
    p.train_y = y2;
    p.n_pos = 7;
    p.n_neg = 3;
    hv_train_cls_epoch_list(&p, 7, 3, a);
    pos = 0;
    for (int k = 0; k < 14; k++) pos += y2[a[k]];
    HV_CHECK(pos == 7, "7 fractures when they are the larger class, got %d", pos);
    /* none: a permutation of the labelled items */
    p.balance = HV_TRAIN_CLS_BALANCE_NONE;
    p.epoch_len = N;
    hv_train_cls_epoch_list(&p, 7, 3, a);
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < N; k++) seen[a[k] < N ? a[k] : 0]++;
    int perm = 1;
    for (int i = 0; i < N; i++) perm &= seen[i] == 1;
    HV_CHECK(perm, "balance none: a permutation");
}

static void test_csv(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/test_cls_val.csv", HV_TEST_BINARY_DIR);
    hv_train_cls_row rows[3];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 3; i++) {
        rows[i].step = 10 * i;
        rows[i].epoch = i;
        rows[i].m.n = 7;
        rows[i].m.n_pos = 2;
        rows[i].m.n_neg = 5;
        rows[i].m.auc = 0.5 + 0.1 * i;
        rows[i].m.sensitivity = 0.25;
        rows[i].m.specificity = 0.75;
        rows[i].m.recall[0] = 0.125;
        rows[i].m.recall[1] = NAN;
        rows[i].m.recall[2] = 1;
        rows[i].m.recall[3] = 0.5;
        rows[i].m.loss = 0.693147;
    }
    HV_CHECK_OK(hv_train_cls_val_write(path, rows, 3));
    hv_train_cls_row *r = NULL;
    size_t n = 0;
    HV_CHECK_OK(hv_train_cls_val_read(path, 1000, &r, &n));
    HV_CHECK(n == 3, "3 rows back, got %zu", n);
    if (n == 3)
        HV_CHECK(r[2].step == 20 && r[2].m.n_neg == 5 && fabs(r[2].m.auc - 0.7) < 1e-9 &&
                     isnan(r[1].m.recall[1]) && r[0].m.recall[3] == 0.5 &&
                     fabs(r[1].m.loss - 0.693147) < 1e-9,
                 "values back as written");
    free(r);
    HV_CHECK_OK(hv_train_cls_val_read(path, 10, &r, &n));
    HV_CHECK(n == 2, "up to step 10: 2 rows, got %zu", n);
    free(r);
    FILE *f = fopen(path, "a");
    if (f) {
        fputs("30,3,7,2,5,0.5,x,0.5,0.5,0.5,0.5,0.5,0.5\n", f);
        fclose(f);
    }
    hv_status st = hv_train_cls_val_read(path, 1000, &r, &n);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), ":5:"),
             "a malformed row is refused with its line: %s", hv_error_detail());
    remove(path);
}

static double softplus(double v) { return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)); }

static void test_loss(void)
{
    hv_nn_backend *be = NULL;
    HV_REQUIRE_V(hv_nn_backend_create_cpu(&be) == HV_OK, "backend: %s", hv_error_detail());
    hv_rng rng;
    hv_rng_seed(&rng, 5, 0);
    const size_t px = 256 * 256;
    float *x = malloc(2 * px * sizeof *x);
    HV_REQUIRE_V(x != NULL, "out of memory");
    for (size_t q = 0; q < 2 * px; q++) x[q] = (float)hv_rng_uniform(&rng);
    for (size_t q = 0; q < px; q++) /* item 0 brighter in the middle rows */
        if (q / 256 > 96 && q / 256 < 160) x[q] = 0.9f;
    const float y[2] = {1.0f, 0.0f};

    hv_train_cls *m = NULL;
    hv_rng_seed(&rng, 11, 0);
    HV_CHECK_OK(hv_train_cls_create(2, 2, 2, 3, 1e-3, 0.9, 0.999, &rng, be, &m));
    if (m) {
        double loss = 0;
        float d[2] = {0, 0};
        HV_CHECK_OK(hv_train_cls_step(m, x, y, &loss, d));
        double want = (softplus(-(double)d[0]) + softplus((double)d[1])) / 2.0;
        HV_CHECK(fabs(loss - want) <= 1e-5 * fmax(1.0, want),
                 "2-item loss %.7g vs hand (softplus(-d0) + softplus(d1)) / 2 = %.7g (d %g, %g)",
                 loss, want, (double)d[0], (double)d[1]);
        /* softmax CE of (z0, z1) = (0, d) is the same number, written otherwise */
        double ce = (-log(exp((double)d[0]) / (1.0 + exp((double)d[0]))) -
                     log(1.0 / (1.0 + exp((double)d[1])))) / 2.0;
        HV_CHECK(fabs(loss - ce) <= 1e-5 * fmax(1.0, ce), "as softmax CE: %.7g vs %.7g", loss, ce);

        /* a NaN input: refused, nothing changed */
        hv_nn_params *ps = hv_train_cls_params(m);
        size_t tot = (size_t)hv_nn_params_numel(ps, 0);
        float *before = malloc(tot * sizeof *before);
        if (before) {
            size_t off = 0;
            for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
                hv_nn_param *p = hv_nn_params_at(ps, i);
                size_t k = (size_t)hv_nn_param_numel(p);
                memcpy(before + off, hv_nn_param_data(p), k * sizeof(float));
                off += k;
            }
            float keep = x[5];
            x[5] = NAN;
            hv_status st = hv_train_cls_step(m, x, y, &loss, NULL);
            x[5] = keep;
            HV_CHECK(st == HV_ERR_NUMERIC, "NaN input -> HV_ERR_NUMERIC, got %s: %s",
                     hv_status_name(st), hv_error_detail());
            int same = 1;
            off = 0;
            for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
                hv_nn_param *p = hv_nn_params_at(ps, i);
                size_t k = (size_t)hv_nn_param_numel(p);
                if (memcmp(before + off, hv_nn_param_data(p), k * sizeof(float))) {
                    same = 0;
                    HV_CHECK(0, "parameter %s changed by a refused step", hv_nn_param_name(p));
                }
                off += k;
            }
            HV_CHECK(same, "a refused step leaves every parameter and statistic as it was");
            free(before);
        }

        /* ten more steps on the same two slices lower their loss */
        double first = 0, last = 0;
        HV_CHECK_OK(hv_train_cls_step(m, x, y, &first, NULL));
        for (int s = 0; s < 10; s++) HV_CHECK_OK(hv_train_cls_step(m, x, y, &last, NULL));
        HV_CHECK(last < first, "10 steps lower the loss: %.5f -> %.5f", first, last);

        /* predictions: any count, padded to the inference batch of 3 */
        float p4[4], p1[1];
        float *x4 = malloc(4 * px * sizeof *x4);
        if (x4) {
            memcpy(x4, x, 2 * px * sizeof *x4);
            memcpy(x4 + 2 * px, x, 2 * px * sizeof *x4);
            HV_CHECK_OK(hv_train_cls_predict(m, x4, 4, p4));
            HV_CHECK_OK(hv_train_cls_predict(m, x, 1, p1));
            HV_CHECK(fabsf(p4[0] - p4[2]) <= 1e-5f && fabsf(p4[1] - p4[3]) <= 1e-5f &&
                         fabsf(p4[0] - p1[0]) <= 1e-5f,
                     "the same slice predicts the same in any chunk (%g %g %g %g, %g)",
                     (double)p4[0], (double)p4[1], (double)p4[2], (double)p4[3], (double)p1[0]);
            free(x4);
        }

        /* the checkpoint: loads back into a fresh model (same predictions),
         * and the Grad-CAM++ side opens it as a classifier of width 2 */
        char path[512];
        snprintf(path, sizeof path, "%s/test_cls_ckpt.h5", HV_TEST_BINARY_DIR);
        const char *kv[2] = {"note", "test"};
        HV_CHECK_OK(hv_train_cls_save(m, path, kv, 1));
        hv_train_cls *m2 = NULL;
        hv_rng_seed(&rng, 99, 0);
        HV_CHECK_OK(hv_train_cls_create(2, 2, 2, 3, 1e-3, 0.9, 0.999, &rng, be, &m2));
        if (m2) {
            float q1[1] = {0};
            HV_CHECK_OK(hv_train_cls_load(m2, path));
            HV_CHECK_OK(hv_train_cls_predict(m2, x, 1, q1));
            HV_CHECK(fabsf(q1[0] - p1[0]) <= 1e-6f, "loaded model predicts %g, saved one %g",
                     (double)q1[0], (double)p1[0]);
            hv_train_cls_free(m2);
        }
        hv_train_cls *m4 = NULL;
        HV_CHECK_OK(hv_train_cls_create(4, 2, 2, 3, 1e-3, 0.9, 0.999, &rng, be, &m4));
        if (m4) {
            hv_status st = hv_train_cls_load(m4, path);
            HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "width 2"),
                     "a width-4 model refuses the width-2 checkpoint: %s", hv_error_detail());
            hv_train_cls_free(m4);
        }
        hv_model_cam *cam = NULL;
        HV_CHECK_OK(hv_model_cam_open(path, 1, be, &cam));
        if (cam) HV_CHECK(hv_model_cam_width(cam) == 2, "cam width %d", hv_model_cam_width(cam));
        hv_model_cam_free(cam);
        remove(path);
        hv_train_cls_free(m);
    }

    /* half of a global batch of 2: half of the item's own loss */
    m = NULL;
    hv_rng_seed(&rng, 11, 0);
    HV_CHECK_OK(hv_train_cls_create(2, 1, 2, 1, 1e-3, 0.9, 0.999, &rng, be, &m));
    if (m) {
        double loss = 0;
        float d[1] = {0};
        HV_CHECK_OK(hv_train_cls_step(m, x, y, &loss, d));
        double want = softplus(-(double)d[0]) / 2.0;
        HV_CHECK(fabs(loss - want) <= 1e-5 * fmax(1.0, want),
                 "batch_local 1 of 2: loss %.7g vs softplus(-d0) / 2 = %.7g", loss, want);
        hv_train_cls_free(m);
    }
    free(x);
    hv_nn_backend_free(be);
}

int main(int argc, char **argv)
{
    const char *part = argc > 1 ? argv[1] : "all";
    int all = !strcmp(part, "all");
    if (all || !strcmp(part, "metrics")) test_metrics();
    if (all || !strcmp(part, "metrics")) test_sampler();
    if (all || !strcmp(part, "metrics")) test_csv();
    if (all || !strcmp(part, "loss")) test_loss();
    return hv_test_done();
}
