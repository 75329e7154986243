/*
 * test_train.c: the MPI-free parts of `healthivert train` (hv/train.h) on
 * hand-made inputs with hand-computed answers:
 *  - rank shares: every split of a global batch of 1..13 items over 1..5
 *    ranks covers it exactly once, in order, the first b % R ranks one more;
 *  - the epoch shuffle: a permutation, the same for the same (seed, epoch)
 *    whatever was drawn before, different for another epoch or seed;
 *  - the validation metrics on a 16 x 8 item with an 8-row band: band L1,
 *    PSNR, SSIM (constant images: C1 / (mu_y^2 + C1)), Dice and the height
 *    error, all computed by hand below;
 *  - val.csv: written, read back whole, read back up to a step (resume),
 *    and a malformed row refused with its line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/train.h"
#include "hv_test.h"

static void test_share(void)
{
    int bad = 0;
    for (int64_t b = 1; b <= 13; b++)
        for (int r = 1; r <= 5 && r <= b; r++) {
            int64_t next = 0;
            for (int k = 0; k < r; k++) {
                int64_t f, c;
                hv_train_share(b, r, k, &f, &c);
                int64_t want = b / r + (k < b % r ? 1 : 0);
                if (f != next || c != want) bad++;
                next = f + c;
            }
            if (next != b) bad++;
        }
    HV_CHECK(bad == 0, "%d share(s) wrong", bad);
    int64_t f, c;
    hv_train_share(4, 3, 0, &f, &c);
    HV_CHECK(f == 0 && c == 2, "4 over 3 ranks: rank 0 gets [0, 2), got [%lld, +%lld)",
             (long long)f, (long long)c);
    hv_train_share(4, 3, 2, &f, &c);
    HV_CHECK(f == 3 && c == 1, "4 over 3 ranks: rank 2 gets [3, 4), got [%lld, +%lld)",
             (long long)f, (long long)c);
}

static void test_order(void)
{
    enum { N = 37 };
    size_t a[N], b[N], c[N], d[N];
    hv_train_epoch_order(5, 3, N, a);
    hv_train_epoch_order(5, 4, N, c); /* another epoch in between */
    hv_train_epoch_order(5, 3, N, b);
    hv_train_epoch_order(6, 3, N, d);
    int seen[N] = {0}, perm_ok = 1;
    for (int i = 0; i < N; i++) {
        if (a[i] >= N || seen[a[i]]++) perm_ok = 0;
    }
    HV_CHECK(perm_ok, "epoch order is a permutation of 0..%d", N - 1);
    HV_CHECK(!memcmp(a, b, sizeof a), "same (seed, epoch): same order");
    HV_CHECK(memcmp(a, c, sizeof a) != 0, "another epoch: another order");
    HV_CHECK(memcmp(a, d, sizeof a) != 0, "another seed: another order");
    int moved = 0;
    for (int i = 0; i < N; i++) moved += a[i] != (size_t)i;
    HV_CHECK(moved > N / 2, "the order is shuffled (%d of %d moved)", moved, N);
}

static void test_metrics(void)
{
    /* one item, 16 rows x 8 columns, band rows [4, 12) */
    hv_train_valset v;
    memset(&v, 0, sizeof v);
    HV_CHECK_OK(hv_model_batch_alloc(&v.all, 1, 16, 8, 8));
    hv_train_valout o;
    HV_CHECK_OK(hv_train_valout_alloc(&o, 1, 16, 8));
    if (!v.all.x || !o.composite) return;
    v.all.band_lo[0] = 4;
    v.all.height[0] = 10;
    for (int i = 0; i < 128; i++) {
        int r = i / 8, c = i % 8;
        v.all.real[i] = 0.0f;
        /* 0.5 in the band; outside it any value (not measured) */
        o.composite[i] = (r >= 4 && r < 12) ? 0.5f : 0.9f;
        /* truth mask: rows 5..10, columns 2..5 = 24 px; segmentation: rows
         * 5..10, columns 3..6 = 24 px, overlap rows 5..10 x columns 3..5 = 18 */
        v.all.real_mask[i] = (r >= 5 && r <= 10 && c >= 2 && c <= 5) ? 1.0f : 0.0f;
        o.seg[i] = (r >= 5 && r <= 10 && c >= 3 && c <= 6) ? 0.9f : 0.1f;
    }
    o.height[0] = 12.0f;
    hv_train_metrics m;
    HV_CHECK_OK(hv_train_val_metrics(&v, &o, &m));
    HV_CHECK(m.n == 1, "one item measured (%zu)", m.n);
    HV_CHECK_CLOSE(m.band_l1, 0.5, 1e-9, "band L1 = |0.5 - 0| inside the band only");
    /* PSNR = 10 log10(2^2 / 0.25) */
    HV_CHECK_CLOSE(m.psnr, 10.0 * log10(16.0), 1e-9, "PSNR with data range 2");
    /* SSIM of constants 0 and 0.5: C1 = (0.01 * 2)^2; luminance term
     * C1 / (0.25 + C1), contrast-structure term C2 / C2 = 1 */
    double c1 = 0.0004;
    HV_CHECK_CLOSE(m.ssim, c1 / (0.25 + c1), 1e-9, "SSIM of two constant bands");
    HV_CHECK_CLOSE(m.dice, 2.0 * 18 / 48, 1e-12, "Dice 2*18/(24+24)");
    HV_CHECK_CLOSE(m.height_err_pct, 20.0, 1e-5, "|12 - 10| / 10 = 20 %%");

    /* the copy-the-input baseline: output = input x, seg = band, H = band rows */
    for (int i = 0; i < 128; i++) {
        v.all.x[i] = (i / 8 >= 4 && i / 8 < 12) ? -1.0f : 0.3f;
        v.all.mask[i] = (i / 8 >= 4 && i / 8 < 12) ? 1.0f : 0.0f;
    }
    HV_CHECK_OK(hv_train_val_copy_input(&v, &o));
    HV_CHECK_OK(hv_train_val_metrics(&v, &o, &m));
    HV_CHECK_CLOSE(m.band_l1, 1.0, 1e-9, "copy input: |-1 - 0| in the band");
    HV_CHECK_CLOSE(m.height_err_pct, 0.0 + fabs(8.0 - 10.0) / 10.0 * 100.0, 1e-5,
                   "copy input: the band's 8 rows against h = 10");
    HV_CHECK_CLOSE(m.dice, 2.0 * 24 / (24 + 64), 1e-12, "copy input: the band as segmentation");
    hv_train_valout_free(&o);
    hv_model_batch_free(&v.all);
}

/* dice_best / seg_threshold (the threshold grid 0.05..0.95) by hand on one
 * item, 16 x 8: truth rows 5..10 x columns 2..5 (24 px); segmentation 0.92
 * on rows 5..10 x columns 3..4 (12 px, inside the truth), 0.32 on rows
 * 5..10 of columns 2, 5 (inside) and 6 (outside), 0.12 elsewhere.
 *   t = 0.05, 0.10:     all 128 px,        Dice 2*24/(24+128) = 0.3158
 *   t = 0.15 .. 0.30:   30 px, 24 inside,  Dice 2*24/(24+30)  = 8/9
 *   t = 0.35 .. 0.90:   12 px, all inside, Dice 2*12/(24+12)  = 2/3
 *   t = 0.95:           none,              Dice 0
 * Best 8/9, at 0.15, 0.20, 0.25 and 0.30: the one nearest 0.5 is 0.30;
 * Dice at 0.5 stays 2/3. */
static void test_metrics_threshold(void)
{
    hv_train_valset v;
    memset(&v, 0, sizeof v);
    HV_CHECK_OK(hv_model_batch_alloc(&v.all, 1, 16, 8, 8));
    hv_train_valout o;
    HV_CHECK_OK(hv_train_valout_alloc(&o, 1, 16, 8));
    if (!v.all.x || !o.composite) return;
    v.all.band_lo[0] = 4;
    v.all.height[0] = 10;
    for (int i = 0; i < 128; i++) {
        int r = i / 8, c = i % 8, rows = r >= 5 && r <= 10;
        v.all.real[i] = 0.0f;
        o.composite[i] = 0.0f;
        v.all.real_mask[i] = (rows && c >= 2 && c <= 5) ? 1.0f : 0.0f;
        o.seg[i] = (rows && (c == 3 || c == 4)) ? 0.92f : (rows && (c == 2 || c == 5 || c == 6)) ? 0.32f : 0.12f;
    }
    o.height[0] = 10.0f;
    hv_train_metrics m;
    HV_CHECK_OK(hv_train_val_metrics(&v, &o, &m));
    HV_CHECK_CLOSE(m.dice, 2.0 / 3.0, 1e-12, "Dice at 0.5: the 12 inner px, 2*12/36");
    HV_CHECK_CLOSE(m.dice_best, 8.0 / 9.0, 1e-12, "best Dice 2*24/54");
    HV_CHECK_CLOSE(m.seg_threshold, 0.30, 1e-9, "of 0.15..0.30 (equal Dice) the nearest 0.5");
    hv_train_valout_free(&o);
    hv_model_batch_free(&v.all);
}

static void test_csv(void)
{
    const char *dir = hv_test_tmpdir("train");
    char path[4200];
    snprintf(path, sizeof path, "%s/val.csv", dir);
    hv_train_val_row rows[3];
    memset(rows, 0, sizeof rows);
    const char *meth[3] = {"copy_input", "network", "network"};
    int64_t steps[3] = {0, 0, 20};
    for (int i = 0; i < 3; i++) {
        rows[i].step = steps[i];
        rows[i].epoch = steps[i] / 10;
        snprintf(rows[i].method, sizeof rows[i].method, "%s", meth[i]);
        rows[i].m.n = 7;
        rows[i].m.band_l1 = 0.25 * (i + 1);
        rows[i].m.psnr = 20 + i;
        rows[i].m.ssim = 0.5;
        rows[i].m.dice = 0.75;
        rows[i].m.height_err_pct = 12.5;
        rows[i].m.dice_best = 0.8125;
        rows[i].m.seg_threshold = 0.35;
    }
    HV_CHECK_OK(hv_train_val_write(path, rows, 3));
    hv_train_val_row *r = NULL;
    size_t n = 0;
    HV_CHECK_OK(hv_train_val_read(path, 1000, &r, &n));
    HV_CHECK(n == 3 && r && r[2].step == 20 && !strcmp(r[2].method, "network") &&
                 fabs(r[2].m.band_l1 - 0.75) < 1e-9 && r[2].m.n == 7,
             "round trip of 3 rows (%zu)", n);
    HV_CHECK(n == 3 && fabs(r[2].m.dice_best - 0.8125) < 1e-9 && fabs(r[2].m.seg_threshold - 0.35) < 1e-9,
             "dice_best and seg_threshold read back");
    free(r);
    HV_CHECK_OK(hv_train_val_read(path, 10, &r, &n));
    HV_CHECK(n == 2 && r[1].step == 0, "resume at step 10 keeps the 2 rows of step 0 (%zu)", n);
    free(r);
    FILE *f = fopen(path, "a");
    if (f) {
        fputs("30,3,network,7,0.1,nan-ish,0.5\n", f);
        fclose(f);
    }
    hv_status st = hv_train_val_read(path, 1000, &r, &n);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "val.csv:5: malformed row"),
             "malformed row refused with its line: %s", hv_error_detail());
    /* a table an older version wrote (no dice_best, seg_threshold): read,
     * NaN in the missing columns; another header is still refused */
    snprintf(path, sizeof path, "%s/old.csv", dir);
    f = fopen(path, "w");
    if (f) {
        fputs("step,epoch,method,n_items,band_l1,psnr,ssim,dice,height_err_pct\n"
              "0,0,copy_input,7,0.25,20,0.5,0.75,12.5\n", f);
        fclose(f);
    }
    HV_CHECK_OK(hv_train_val_read(path, 1000, &r, &n));
    HV_CHECK(n == 1 && r && fabs(r[0].m.dice - 0.75) < 1e-9 && isnan(r[0].m.dice_best) &&
                 isnan(r[0].m.seg_threshold),
             "an older val.csv: 1 row, NaN in the new columns (%zu)", n);
    free(r);
    f = fopen(path, "w");
    if (f) {
        fputs("step,epoch,method,n_items,band_l1,psnr,ssim,dic\n0,0,copy_input,7,0.25,20,0.5,0.75\n", f);
        fclose(f);
    }
    st = hv_train_val_read(path, 1000, &r, &n);
    HV_CHECK(st == HV_ERR_FORMAT && strstr(hv_error_detail(), "not a validation table"),
             "a header cut inside a column name refused: %s", hv_error_detail());
    hv_error_clear();
    snprintf(path, sizeof path, "%s/none.csv", dir);
    HV_CHECK_OK(hv_train_val_read(path, 10, &r, &n));
    HV_CHECK(n == 0 && !r, "no file: no rows");
}

int main(void)
{
    test_share();
    test_order();
    test_metrics();
    test_metrics_threshold();
    test_csv();
    return hv_test_done();
}
