/*
 * repro_quality.c: the synthesis-quality table of `healthivert reproduce` on
 * a dataset without fracture grades (reproduce.table = quality; CTSpine1K,
 * VerSe 2020): how close each method's synthesized vertebra is to the real
 * one on healthy levels, where the real vertebra is what a pseudo-healthy
 * synthesis should give back. The measures are the seed's generation
 * evaluation (spec 11, its sagittal script).
 *
 * Read from a finished run's store, after the run (the synthesis stage is
 * not touched): per synthesized vertebra (synthesis.crops = full) four u8
 * crops in the crop layout (64 LR x 256 AP x 256 rows): the synthesized CT
 * and label crops (/vertebrae/synth_ct, synth_label) and the original crop
 * they replace (/vertebrae/orig_ct: the gan's input crop's CT, the crops'
 * 0..255 truncated as synth_ct; /vertebrae/orig_label: the target's
 * de-pedicled body). Per vertebra (hv_repro_quality_vertebra):
 *  - 3-D, the target (the voxels holding the vertebra's label) of the
 *    original crop A against the synthesized one B: Dice 2|A&B|/(|A|+|B|),
 *    IoU |A&B|/|A|B|, relative volume difference ||A|-|B||/|A| (0 where the
 *    denominator is, as the seed);
 *  - 2-D, on the central 80 % of the original target's LR extent: with the
 *    target on LR slices i0..i0+n-1, m = floor(4n/5) slices from
 *    i0 + floor((n - m)/2) (the seed's int(n*4/5) and //; e.g. a target on
 *    slices 12..51, n = 40: slices 16..47), those whose original target has
 *    more than 400 pixels. On each: PSNR and SSIM (hv_metrics_psnr,
 *    hv_metrics_ssim: scikit-image's defaults) of the "patch" (the rows the
 *    original target spans on that slice, all AP columns; data range = max
 *    - min of the original patch) and of the "global" whole 256 x 256 slice
 *    (data range of the original slice). The slice is taken as stored (rows
 *    k, columns j): the QC grid's picture is the same pixels flipped, which
 *    neither measure depends on. PSNR of identical images is +inf; it is
 *    capped at HV_REPRO_PSNR_CAP dB so a mean stays a number. Where the
 *    seed's library would give no number (an original without data range;
 *    SSIM on fewer than 7 rows, where scikit-image raises) the slice's
 *    value is NaN; each measure is averaged over its non-NaN slices (0 when
 *    none, as the seed);
 *  - a vertebra whose patch PSNR or SSIM is 0 or NaN is dropped (spec 11),
 *    i.e. one with no qualifying slice; so is one whose original crop holds
 *    no target. Dropped vertebrae are counted as not scored, with the
 *    reason in the row's note.
 * Healthy levels: known grade 0 when the store has any known grade (spec 11:
 * grade 0 only), else every level (a dataset without grades). A method
 * without synthesized images (the baseline: neighbour heights, no CT) is
 * "not applicable". A store with synthesized crops but without the
 * original ones (made by a build before journal layout 7) is refused, with
 * what to re-run: the table is never computed on less than spec 11's slices.
 * Numbers: mean and population variance over the scored vertebrae; each
 * method's per-vertebra values go to <method>/quality_vertebrae.csv.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/measure.h"
#include "hv/pipeline.h"
#include "hv/reproduce.h"
#include "run_internal.h"

static const char *const qnames[HV_REPRO_NQ] = {"patch_psnr", "patch_ssim", "global_psnr",
                                                "global_ssim", "dice", "iou", "rvd"};

const char *hv_repro_quality_name(int q)
{
    return q >= 0 && q < HV_REPRO_NQ ? qnames[q] : NULL;
}

/* PSNR and SSIM of h x w values (row-major) of the original a and the
 * synthesized b, data range from a; NaN where the seed's library would give
 * no number. Adds each non-NaN value to sum[0..1] and n[0..1]. */
static hv_status score_2d(const double *a, const double *b, int h, int w, double *sum, int *n)
{
    const size_t np = (size_t)h * (size_t)w;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t q = 0; q < np; q++) {
        if (a[q] < lo) lo = a[q];
        if (a[q] > hi) hi = a[q];
    }
    if (!(hi > lo)) return HV_OK; /* no data range: both NaN */
    double psnr = hv_metrics_psnr(a, b, np, hi - lo);
    if (psnr > HV_REPRO_PSNR_CAP) psnr = HV_REPRO_PSNR_CAP;
    if (!isnan(psnr)) {
        sum[0] += psnr;
        n[0]++;
    }
    if (h >= 7 && w >= 7) {
        double ssim = NAN;
        hv_status st = hv_metrics_ssim(a, b, h, w, hi - lo, &ssim);
        if (st != HV_OK) return st;
        if (!isnan(ssim)) {
            sum[1] += ssim;
            n[1]++;
        }
    }
    return HV_OK;
}

hv_status hv_repro_quality_vertebra(const uint8_t *orig_ct, const uint8_t *orig_lab,
                                    const uint8_t *syn_ct, const uint8_t *syn_lab, int label,
                                    const int64_t dim[3], hv_repro_qvert *out)
{
    for (int q = 0; q < HV_REPRO_NQ; q++) out->q[q] = NAN;
    out->lr_first = out->lr_last = -1;
    out->n_slices = 0;
    if (!orig_ct || !orig_lab || !syn_ct || !syn_lab || !dim || dim[0] < 1 || dim[1] < 1 ||
        dim[2] < 1 || dim[0] > 4096 || dim[1] > 4096 || dim[2] > 4096)
        return hv_error_set(HV_ERR_ARG, "quality: bad crops");
    const int I = (int)dim[0], J = (int)dim[1], K = (int)dim[2];
    const size_t nvox = (size_t)I * J * K, plane = (size_t)J * K;
    /* 3-D overlap of the targets, and the original target's LR extent */
    size_t na = 0, nb = 0, nab = 0;
    int i0 = -1, i1 = -1;
    for (size_t v = 0; v < nvox; v++) {
        const int a = orig_lab[v] == label, b = syn_lab[v] == label;
        na += (size_t)a;
        nb += (size_t)b;
        nab += (size_t)(a && b);
        if (a) {
            const int i = (int)(v % (size_t)I);
            if (i0 < 0 || i < i0) i0 = i;
            if (i > i1) i1 = i;
        }
    }
    out->q[HV_REPRO_Q_DICE] = na + nb ? 2.0 * (double)nab / (double)(na + nb) : 0.0;
    out->q[HV_REPRO_Q_IOU] = na + nb - nab ? (double)nab / (double)(na + nb - nab) : 0.0;
    out->q[HV_REPRO_Q_RVD] =
        na ? fabs((double)na - (double)nb) / (double)na : 0.0;
    if (i0 < 0) return hv_error_set(HV_ERR_EMPTY, "the original crop holds no target");
    const int n = i1 - i0 + 1, m = n * 4 / 5;
    out->lr_first = i0 + (n - m) / 2;
    out->lr_last = out->lr_first + m - 1;
    double *a = malloc(plane * sizeof *a), *b = malloc(plane * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return hv_error_set(HV_ERR_NOMEM, "out of memory");
    }
    double sum[4] = {0, 0, 0, 0};
    int cnt[4] = {0, 0, 0, 0};
    hv_status st = HV_OK;
    for (int i = out->lr_first; i <= out->lr_last && st == HV_OK; i++) {
        /* slice i as stored: row k, column j */
        size_t px = 0;
        int k1 = -1, k2 = -1;
        for (int k = 0; k < K; k++)
            for (int j = 0; j < J; j++) {
                const size_t v = ((size_t)k * J + j) * I + i;
                if (orig_lab[v] == label) {
                    px++;
                    if (k1 < 0) k1 = k;
                    k2 = k;
                }
            }
        if (px <= HV_REPRO_MIN_PIXELS) continue;
        out->n_slices++;
        for (int k = 0; k < K; k++)
            for (int j = 0; j < J; j++) {
                const size_t v = ((size_t)k * J + j) * I + i;
                a[(size_t)k * J + j] = orig_ct[v];
                b[(size_t)k * J + j] = syn_ct[v];
            }
        st = score_2d(a + (size_t)k1 * J, b + (size_t)k1 * J, k2 - k1 + 1, J, &sum[0], &cnt[0]);
        if (st == HV_OK) st = score_2d(a, b, K, J, &sum[2], &cnt[2]);
    }
    free(a);
    free(b);
    if (st != HV_OK) return st;
    for (int q = 0; q < 4; q++) out->q[q] = cnt[q] ? sum[q] / cnt[q] : 0.0;
    const double pp = out->q[HV_REPRO_Q_PATCH_PSNR], ps = out->q[HV_REPRO_Q_PATCH_SSIM];
    if (out->n_slices == 0)
        return hv_error_set(HV_ERR_EMPTY, "no LR slice in the central 80 %% of the target "
                            "has more than %d target pixels", HV_REPRO_MIN_PIXELS);
    if (pp == 0 || isnan(pp) || ps == 0 || isnan(ps))
        return hv_error_set(HV_ERR_EMPTY, "patch PSNR or SSIM of 0 or NaN (dropped as spec 11)");
    return HV_OK;
}

static void add_note(hv_repro_qrow *row, const char *what)
{
    size_t l = strlen(row->note);
    if (strstr(row->note, what)) return;
    snprintf(row->note + l, sizeof row->note - l, "%s%s", l ? "; " : "", what);
}

hv_status hv_repro_quality_read(const char *store_path, const char *csv_path, hv_repro_qrow *row)
{
    hv_store *s = NULL;
    hv_run_vrow *v = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL, *buf = NULL;
    double *val = NULL;
    hv_atomic_file *af = NULL;
    FILE *f = NULL;
    size_t nv = 0;
    row->applicable = 0;
    row->n_vertebrae = row->n_healthy = row->n_scored = row->n_unscored = 0;
    for (int k = 0; k < HV_REPRO_NQ; k++) row->mean[k] = row->var[k] = NAN;
    row->note[0] = 0;
    hv_status st = hv_store_open_serial(store_path, 0, &s);
    if (st == HV_OK) st = hv_store_read_vertebrae(s, &v, &nv);
    if (st != HV_OK) goto done;
    row->n_vertebrae = (long)nv;
    row->graded = 0;
    for (size_t i = 0; i < nv; i++) row->graded |= v[i].known_grade >= 0;
    for (size_t i = 0; i < nv; i++) row->n_healthy += row->graded ? v[i].known_grade == 0 : 1;
    if (!hv_store_has_vol(s, HV_STORE_VOL_SYNTH_CT)) {
        snprintf(row->note, sizeof row->note, "no synthesized CT in its store "
                 "(/vertebrae/synth_ct: synthesis.crops = full with a method that synthesizes "
                 "an image)");
        goto done;
    }
    if (!hv_store_has_vol(s, HV_STORE_VOL_SYNTH_LABEL) ||
        !hv_store_has_vol(s, HV_STORE_VOL_ORIG_CT) ||
        !hv_store_has_vol(s, HV_STORE_VOL_ORIG_LABEL)) {
        st = hv_error_set(HV_ERR_UNSUPPORTED,
                          "%s has synthesized crops but not the original crops they are scored "
                          "against (/vertebrae/orig_ct and orig_label): it was made by an older "
                          "build (journal layout 6 or earlier); run this method again with this "
                          "build (the same reproduce command re-runs its cases: their journals "
                          "are of the older layout) or with run.fresh = 1",
                          store_path);
        goto done;
    }
    row->applicable = 1;
    const long nc = hv_store_n_cases(s);
    const int64_t dim[3] = {HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K};
    static const int want[4] = {HV_STORE_VOL_ORIG_CT, HV_STORE_VOL_ORIG_LABEL,
                                HV_STORE_VOL_SYNTH_CT, HV_STORE_VOL_SYNTH_LABEL};
    cr = calloc((size_t)(nc > 0 ? nc : 1), sizeof *cr);
    stt = calloc((size_t)(nc > 0 ? nc : 1), 1);
    buf = malloc(4 * HV_RUN_CAM_BYTES);
    val = malloc((nv ? nv : 1) * HV_REPRO_NQ * sizeof *val);
    if (!cr || !stt || !buf || !val) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cr, stt)) != HV_OK) goto done;
    if ((st = hv_atomic_open(csv_path, &af, &f)) != HV_OK) goto done;
    fprintf(f, "case,level,label,known_grade,slices");
    for (int q = 0; q < HV_REPRO_NQ; q++) fprintf(f, ",%s", qnames[q]);
    fputc('\n', f);
    int k = 0;
    for (size_t i = 0; i < nv; i++) {
        k = i > 0 && v[i].case_index == v[i - 1].case_index ? k + 1 : 0;
        if (row->graded && v[i].known_grade != 0) continue;
        const long slot = (long)v[i].case_index * HV_RUN_MAX_VERT + k;
        if (v[i].flags & HV_MEAS_SYNTH_FALLBACK) {
            row->n_unscored++;
            add_note(row, "healthy levels without a synthesized crop (synth_fallback) are not scored");
            continue;
        }
        int have_all = 1;
        for (int w = 0; w < 4; w++) {
            int have = 0;
            if ((st = hv_store_read_vol(s, want[w], slot, buf + (size_t)w * HV_RUN_CAM_BYTES,
                                        &have)) != HV_OK)
                goto done;
            have_all &= have;
        }
        if (!have_all) {
            row->n_unscored++;
            add_note(row, "healthy levels missing a synthesized or an original crop are not scored");
            continue;
        }
        hv_repro_qvert qv;
        hv_status vs = hv_repro_quality_vertebra(buf, buf + HV_RUN_CAM_BYTES,
                                                 buf + 2 * HV_RUN_CAM_BYTES,
                                                 buf + 3 * HV_RUN_CAM_BYTES, v[i].label, dim, &qv);
        if (vs == HV_ERR_EMPTY) {
            char why[300];
            snprintf(why, sizeof why, "not scored: %s", hv_error_detail());
            hv_error_clear();
            row->n_unscored++;
            add_note(row, why);
            continue;
        }
        if ((st = vs) != HV_OK) goto done;
        memcpy(val + HV_REPRO_NQ * row->n_scored, qv.q, sizeof qv.q);
        row->n_scored++;
        const char *id = v[i].case_index >= 0 && v[i].case_index < nc ? cr[v[i].case_index].id : "?";
        fprintf(f, "%s,%.8s,%d,%d,%d", id, v[i].level, v[i].label, v[i].known_grade, qv.n_slices);
        for (int q = 0; q < HV_REPRO_NQ; q++) fprintf(f, ",%.17g", qv.q[q]);
        fputc('\n', f);
    }
    for (int q = 0; q < HV_REPRO_NQ && row->n_scored > 0; q++) {
        double sum = 0, ss = 0;
        for (long j = 0; j < row->n_scored; j++) sum += val[HV_REPRO_NQ * j + q];
        const double mean = sum / (double)row->n_scored;
        for (long j = 0; j < row->n_scored; j++)
            ss += (val[HV_REPRO_NQ * j + q] - mean) * (val[HV_REPRO_NQ * j + q] - mean);
        row->mean[q] = mean;
        row->var[q] = ss / (double)row->n_scored;
    }
    st = hv_atomic_commit(af, 1);
    af = NULL;
done:
    if (af) hv_atomic_abort(af);
    free(val);
    free(buf);
    free(stt);
    free(cr);
    free(v);
    if (s) hv_store_close(s);
    return st;
}

/* ------------------------------------------------------------- the table */


static const char *status_of(const hv_repro_qrow *r)
{
    return !r->ok ? "failed" : r->applicable ? "ok" : "n/a";
}

static hv_status write_csv(const char *path, const hv_repro_qrow *rows, int n)
{
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    fprintf(f, "method,status,healthy_levels,vertebrae,healthy,scored,unscored");
    for (int q = 0; q < HV_REPRO_NQ; q++) fprintf(f, ",%s_mean,%s_var", qnames[q], qnames[q]);
    fprintf(f, ",cases,cases_failed,note\n");
    for (int i = 0; i < n; i++) {
        const hv_repro_qrow *r = &rows[i];
        fprintf(f, "%s,%s", r->method, status_of(r));
        if (!r->ok) {
            for (int c = 0; c < 5 + 2 * HV_REPRO_NQ; c++) fputc(',', f);
            fprintf(f, ",%ld,%ld", r->n_cases, r->n_failed_cases);
            hv__repro_csv_str(f, r->reason);
            fputc('\n', f);
            continue;
        }
        fprintf(f, ",%s,%ld,%ld,%ld,%ld", r->graded ? "grade0" : "all", r->n_vertebrae,
                r->n_healthy, r->n_scored, r->n_unscored);
        for (int q = 0; q < HV_REPRO_NQ; q++) {
            hv__repro_csv_num(f, r->applicable ? r->mean[q] : NAN);
            hv__repro_csv_num(f, r->applicable ? r->var[q] : NAN);
        }
        fprintf(f, ",%ld,%ld", r->n_cases, r->n_failed_cases);
        hv__repro_csv_str(f, r->note);
        fputc('\n', f);
    }
    return hv_atomic_commit(a, 1);
}

static hv_status write_md(const char *path, const hv_repro_qrow *rows, int n, const char *note)
{
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    fprintf(f, "# Synthesis quality (healthivert reproduce, no grades)\n\n"
               "Data: %s. The synthesized vertebra against the real one on healthy levels "
               "(known grade 0; every level when the data has no grades), as the seed's "
               "generation evaluation (spec 11): on the LR slices of the central 80 %% of the "
               "original target's LR extent that hold more than %d target pixels, PSNR (dB, "
               "capped at %g) and SSIM of the patch (the rows of the original target, all "
               "columns, data range of the original patch) and of the whole slice (global), "
               "averaged per vertebra; Dice, IoU and relative volume difference (RVD) of the "
               "3-D target label. Mean ± population variance over the scored vertebrae.\n\n"
               "| method | patch PSNR | patch SSIM | global PSNR | global SSIM | Dice | IoU | "
               "RVD | scored / healthy |\n|---|---|---|---|---|---|---|---|---|\n",
            note, HV_REPRO_MIN_PIXELS, HV_REPRO_PSNR_CAP);
    for (int i = 0; i < n; i++) {
        const hv_repro_qrow *r = &rows[i];
        if (!r->ok) {
            fprintf(f, "| %s | failed (below) | | | | | | | |\n", r->method);
        } else if (!r->applicable) {
            fprintf(f, "| %s | not applicable | – | – | – | – | – | – | – |\n", r->method);
        } else {
            fprintf(f, "| %s |", r->method);
            for (int q = 0; q < HV_REPRO_NQ; q++) {
                if (isfinite(r->mean[q])) fprintf(f, " %.3f ± %.4f |", r->mean[q], r->var[q]);
                else fputs(" – |", f);
            }
            fprintf(f, " %ld / %ld |\n", r->n_scored, r->n_healthy);
        }
    }
    for (int i = 0; i < n; i++) {
        const hv_repro_qrow *r = &rows[i];
        if (!r->ok) fprintf(f, "\n%s failed: %s\n", r->method, r->reason);
        else if (!r->applicable) fprintf(f, "\n%s: not applicable: %s\n", r->method, r->note);
        else if (r->note[0]) fprintf(f, "\n%s: %s\n", r->method, r->note);
        if (r->ok && r->n_failed_cases > 0)
            fprintf(f, "\n%s: %ld of %ld cases failed (their vertebrae are not scored).\n",
                    r->method, r->n_failed_cases, r->n_cases);
    }
    return hv_atomic_commit(a, 1);
}

static hv_status write_png(const char *path, const hv_repro_qrow *rows, int n)
{
    /* the measures on 0..1: patch SSIM, global SSIM, Dice, IoU */
    static const int qs[4] = {HV_REPRO_Q_PATCH_SSIM, HV_REPRO_Q_GLOBAL_SSIM, HV_REPRO_Q_DICE,
                              HV_REPRO_Q_IOU};
    double val[16 * 4], spr[16 * 4];
    const char *names[16], *notes[16];
    int ng = n < 16 ? n : 16;
    for (int i = 0; i < ng; i++) {
        const hv_repro_qrow *r = &rows[i];
        int has = r->ok && r->applicable;
        names[i] = r->method;
        notes[i] = !r->ok ? "failed" : !r->applicable ? "n/a" : NULL;
        for (int k = 0; k < 4; k++) {
            val[4 * i + k] = has ? r->mean[qs[k]] : NAN;
            spr[4 * i + k] = has ? sqrt(r->var[qs[k]]) : NAN;
        }
    }
    static const char *const series[4] = {"patch SSIM", "global SSIM", "Dice", "IoU"};
    hv_io_bars b = {.title = "Synthesis quality on healthy levels",
                    .ylabel = "score",
                    .caption = "bar: mean over vertebrae; whisker: +- sqrt(population variance); "
                               "PSNR and RVD in table.md",
                    .n_groups = ng, .n_series = 4, .group_names = names, .group_notes = notes,
                    .series_names = series, .value = val, .spread = spr, .ylo = 0, .yhi = 1};
    return hv_io_plot_bars(path, &b);
}

hv_status hv_repro_write_quality(const char *dir, const hv_repro_qrow *rows, int n,
                                 const char *dataset_note)
{
    if (!dir || !rows || n < 1) return hv_error_set(HV_ERR_ARG, "reproduce table: no rows");
    char *p = hv_strfmt("%s/table.csv", dir);
    hv_status st = p ? write_csv(p, rows, n) : hv_error_set(HV_ERR_NOMEM, "reproduce table");
    free(p);
    if (st != HV_OK) return st;
    p = hv_strfmt("%s/table.md", dir);
    st = p ? write_md(p, rows, n, dataset_note ? dataset_note : "")
           : hv_error_set(HV_ERR_NOMEM, "reproduce table");
    free(p);
    if (st != HV_OK) return st;
    p = hv_strfmt("%s/table.png", dir);
    st = p ? write_png(p, rows, n) : hv_error_set(HV_ERR_NOMEM, "reproduce table");
    free(p);
    return st;
}
