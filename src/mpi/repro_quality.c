/*
 * repro_quality.c: the synthesis-quality table of `healthivert reproduce` on
 * a dataset without fracture grades (reproduce.table = quality; CTSpine1K,
 * VerSe 2020): how close each method's synthesized vertebra is to the real
 * one on healthy levels, where the real vertebra is what a pseudo-healthy
 * synthesis should give back.
 *
 * Read from a finished run's store, after the run (the synthesis stage is
 * not touched): the synthesized crops (/vertebrae/synth_ct and synth_label,
 * synthesis.crops = full) and the original vertebra as the store keeps it,
 * the QC picture's mid-sagittal slice (/images/qc: LR slice 32 of the
 * crop, the CT in the crops' 0..255 window and the target's de-pedicled
 * body label; output.images = qc or full). The store holds no other slice
 * of the original crop, so every number is of that one slice: the seed's
 * generation evaluation (spec 11) averages the same measures over the
 * central 80 % of the LR slices of the original crops, which a run does not
 * keep. Per vertebra, on the QC grid (LR slice 32 of the synthesized crops,
 * hv_spine_slice_extract, as `export` draws them side by side):
 *  - PSNR and SSIM (hv_metrics_psnr, hv_metrics_ssim: scikit-image's
 *    defaults) on spec 11's "patch": the rows where the original target
 *    is, all columns; data_range = max - min of the original slice. PSNR of
 *    identical patches is +inf; it is capped at HV_REPRO_PSNR_CAP dB so a
 *    mean stays a number;
 *  - Dice of the target: the original body label against the voxels of the
 *    synthesized label crop holding the vertebra's own label (both
 *    de-pedicled bodies: the crops' labels are).
 * Healthy levels: known grade 0 when the store has any known grade (spec 11:
 * grade 0 only), else every level (a dataset without grades). A method
 * without synthesized images (the baseline: neighbour heights, no CT) is
 * "not applicable". Numbers: mean and population variance over the scored
 * vertebrae; each method's per-vertebra values go to
 * <method>/quality_vertebrae.csv.
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
#include "hv/spine.h"

#define QC_SLICE (HV_RUN_CAM_I / 2)

hv_status hv_repro_quality_slice(const uint8_t *orig_ct, const uint8_t *orig_lab,
                                 const uint8_t *syn_ct, const uint8_t *syn_lab, double out[3])
{
    const int n = HV_RUN_QC;
    const size_t plane = (size_t)n * n;
    out[0] = out[1] = out[2] = NAN;
    int r1 = -1, r2 = -1;
    double lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++) {
            size_t q = (size_t)r * n + c;
            if (orig_lab[q]) {
                if (r1 < 0) r1 = r;
                r2 = r;
            }
            if (orig_ct[q] < lo) lo = orig_ct[q];
            if (orig_ct[q] > hi) hi = orig_ct[q];
        }
    if (r1 < 0) return hv_error_set(HV_ERR_EMPTY, "the original slice holds no target");
    if (!(hi > lo)) return hv_error_set(HV_ERR_EMPTY, "the original slice is uniform (no data range)");
    const int h = r2 - r1 + 1;
    if (h < 7) return hv_error_set(HV_ERR_EMPTY, "the target spans %d rows (SSIM needs 7)", h);
    size_t np = (size_t)h * n;
    double *a = malloc(np * sizeof *a), *b = malloc(np * sizeof *b);
    uint8_t *ma = malloc(plane), *mb = malloc(plane);
    hv_status st = HV_OK;
    if (!a || !b || !ma || !mb) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t q = 0; q < np; q++) {
        a[q] = orig_ct[(size_t)r1 * n + q];
        b[q] = syn_ct[(size_t)r1 * n + q];
    }
    double psnr = hv_metrics_psnr(a, b, np, hi - lo);
    out[0] = psnr > HV_REPRO_PSNR_CAP ? HV_REPRO_PSNR_CAP : psnr;
    if ((st = hv_metrics_ssim(a, b, h, n, hi - lo, &out[1])) != HV_OK) goto done;
    for (size_t q = 0; q < plane; q++) {
        ma[q] = orig_lab[q] != 0;
        mb[q] = syn_lab[q] != 0;
    }
    hv_overlap ov;
    hv_metrics_overlap(ma, mb, plane, &ov);
    out[2] = ov.dice;
done:
    free(a);
    free(b);
    free(ma);
    free(mb);
    return st;
}

/* LR slice QC_SLICE of the u8 crop in `vol` on the QC grid: the bytes, or
 * (label > 0) whether the voxel holds `label`. */
static hv_status crop_slice(const hv_volume *vol, int label, float *m, uint8_t *out)
{
    hv_status st = hv_spine_slice_extract(vol, HV_SPINE_SAGITTAL, QC_SLICE, m);
    if (st != HV_OK) return st;
    for (size_t q = 0; q < (size_t)HV_RUN_QC * HV_RUN_QC; q++)
        out[q] = label > 0 ? (uint8_t)(m[q] == (float)label) : (uint8_t)m[q];
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
    uint8_t *stt = NULL, *qc = NULL, *sl = NULL, *sc = NULL;
    float *m = NULL;
    hv_volume *vl = NULL, *vc = NULL;
    double *val = NULL;
    hv_atomic_file *af = NULL;
    FILE *f = NULL;
    size_t nv = 0;
    row->applicable = 0;
    row->n_vertebrae = row->n_healthy = row->n_scored = row->n_unscored = 0;
    for (int k = 0; k < 3; k++) row->mean[k] = row->var[k] = NAN;
    row->note[0] = 0;
    hv_status st = hv_store_open_serial(store_path, 0, &s);
    if (st == HV_OK) st = hv_store_read_vertebrae(s, &v, &nv);
    if (st != HV_OK) goto done;
    row->n_vertebrae = (long)nv;
    row->graded = 0;
    for (size_t i = 0; i < nv; i++) row->graded |= v[i].known_grade >= 0;
    for (size_t i = 0; i < nv; i++) row->n_healthy += row->graded ? v[i].known_grade == 0 : 1;
    const char *miss = !hv_store_has_vol(s, HV_STORE_VOL_SYNTH_CT)
                           ? "no synthesized CT in its store (/vertebrae/synth_ct: synthesis.crops = "
                             "full with a method that synthesizes an image)"
                       : hv_store_n_img(s) <= 0
                           ? "no original slice in its store (/images/qc: output.images = qc or full)"
                           : NULL;
    if (miss) {
        snprintf(row->note, sizeof row->note, "%s", miss);
        goto done;
    }
    row->applicable = 1;
    const long nc = hv_store_n_cases(s);
    const int64_t dim[3] = {HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K};
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    cr = calloc((size_t)(nc > 0 ? nc : 1), sizeof *cr);
    stt = calloc((size_t)(nc > 0 ? nc : 1), 1);
    qc = malloc(HV_RUN_QC_BYTES);
    sl = malloc(plane);
    sc = malloc(plane);
    m = malloc(plane * sizeof *m);
    val = malloc((nv ? nv : 1) * 3 * sizeof *val);
    if (!cr || !stt || !qc || !sl || !sc || !m || !val) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cr, stt)) != HV_OK) goto done;
    if ((st = hv_vol_create(&vl, dim, HV_DTYPE_U8, NULL)) != HV_OK) goto done;
    if ((st = hv_vol_create(&vc, dim, HV_DTYPE_U8, NULL)) != HV_OK) goto done;
    if ((st = hv_atomic_open(csv_path, &af, &f)) != HV_OK) goto done;
    fprintf(f, "case,level,label,known_grade,psnr,ssim,dice\n");
    int k = 0;
    for (size_t i = 0; i < nv; i++) {
        k = i > 0 && v[i].case_index == v[i - 1].case_index ? k + 1 : 0;
        if (row->graded && v[i].known_grade != 0) continue;
        const long slot = (long)v[i].case_index * HV_RUN_MAX_VERT + k;
        int have_l = 0, have_c = 0, have_q = 0;
        if ((v[i].flags & HV_MEAS_SYNTH_FALLBACK) ||
            (st = hv_store_read_vol(s, HV_STORE_VOL_SYNTH_LABEL, slot, vl->data, &have_l)) != HV_OK ||
            !have_l ||
            (st = hv_store_read_vol(s, HV_STORE_VOL_SYNTH_CT, slot, vc->data, &have_c)) != HV_OK ||
            !have_c) {
            if (st != HV_OK) goto done;
            row->n_unscored++;
            add_note(row, "healthy levels without a synthesized crop (synth_fallback) are not scored");
            continue;
        }
        if ((st = hv_store_read_qc(s, slot, qc, &have_q)) != HV_OK) goto done;
        if (!have_q) {
            row->n_unscored++;
            add_note(row, "healthy levels without a QC picture are not scored");
            continue;
        }
        const uint8_t *oct = qc + (size_t)HV_QC_SAG * HV_QC_CHANNELS * plane + HV_QC_CT * plane;
        const uint8_t *olab = qc + (size_t)HV_QC_SAG * HV_QC_CHANNELS * plane + HV_QC_LABEL * plane;
        if ((st = crop_slice(vc, 0, m, sc)) != HV_OK || (st = crop_slice(vl, v[i].label, m, sl)) != HV_OK)
            goto done;
        double q3[3];
        if (hv_repro_quality_slice(oct, olab, sc, sl, q3) != HV_OK) {
            char why[300];
            snprintf(why, sizeof why, "not scored: %s", hv_error_detail());
            hv_error_clear();
            row->n_unscored++;
            add_note(row, why);
            continue;
        }
        memcpy(val + 3 * row->n_scored, q3, sizeof q3);
        row->n_scored++;
        const char *id = v[i].case_index >= 0 && v[i].case_index < nc ? cr[v[i].case_index].id : "?";
        fprintf(f, "%s,%.8s,%d,%d,%.17g,%.17g,%.17g\n", id, v[i].level, v[i].label,
                v[i].known_grade, q3[0], q3[1], q3[2]);
    }
    for (int q = 0; q < 3 && row->n_scored > 0; q++) {
        double sum = 0, ss = 0;
        for (long j = 0; j < row->n_scored; j++) sum += val[3 * j + q];
        const double mean = sum / (double)row->n_scored;
        for (long j = 0; j < row->n_scored; j++) ss += (val[3 * j + q] - mean) * (val[3 * j + q] - mean);
        row->mean[q] = mean;
        row->var[q] = ss / (double)row->n_scored;
    }
    st = hv_atomic_commit(af, 1);
    af = NULL;
done:
    if (af) hv_atomic_abort(af);
    hv_vol_free(vl);
    hv_vol_free(vc);
    free(val);
    free(m);
    free(sc);
    free(sl);
    free(qc);
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
    fprintf(f, "method,status,healthy_levels,vertebrae,healthy,scored,unscored,psnr_mean,psnr_var,"
               "ssim_mean,ssim_var,dice_mean,dice_var,cases,cases_failed,note\n");
    for (int i = 0; i < n; i++) {
        const hv_repro_qrow *r = &rows[i];
        fprintf(f, "%s,%s", r->method, status_of(r));
        if (!r->ok) {
            fprintf(f, ",,,,,,,,,,,,%ld,%ld", r->n_cases, r->n_failed_cases);
            hv__repro_csv_str(f, r->reason);
            fputc('\n', f);
            continue;
        }
        fprintf(f, ",%s,%ld,%ld,%ld,%ld", r->graded ? "grade0" : "all", r->n_vertebrae,
                r->n_healthy, r->n_scored, r->n_unscored);
        for (int q = 0; q < 3; q++) {
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
               "(known grade 0; every level when the data has no grades), on the one "
               "original slice a run keeps: the QC picture's mid-sagittal slice (LR 32 of "
               "the crop). PSNR (dB, capped at %g) and SSIM on the rows of the original "
               "target, data range of the original slice; Dice of the target's body. "
               "Mean ± population variance over the scored vertebrae.\n\n"
               "| method | PSNR | SSIM | Dice | scored / healthy |\n|---|---|---|---|---|\n",
            note, HV_REPRO_PSNR_CAP);
    for (int i = 0; i < n; i++) {
        const hv_repro_qrow *r = &rows[i];
        if (!r->ok) {
            fprintf(f, "| %s | failed (below) | | | |\n", r->method);
        } else if (!r->applicable) {
            fprintf(f, "| %s | not applicable | – | – | – |\n", r->method);
        } else {
            fprintf(f, "| %s |", r->method);
            for (int q = 0; q < 3; q++) {
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
    double val[16 * 2], spr[16 * 2];
    const char *names[16], *notes[16];
    int ng = n < 16 ? n : 16;
    for (int i = 0; i < ng; i++) {
        const hv_repro_qrow *r = &rows[i];
        int has = r->ok && r->applicable;
        names[i] = r->method;
        notes[i] = !r->ok ? "failed" : !r->applicable ? "n/a" : NULL;
        for (int k = 0; k < 2; k++) {
            val[2 * i + k] = has ? r->mean[1 + k] : NAN;
            spr[2 * i + k] = has ? sqrt(r->var[1 + k]) : NAN;
        }
    }
    static const char *const series[2] = {"SSIM", "Dice"};
    hv_io_bars b = {.title = "Synthesis quality on healthy levels",
                    .ylabel = "score",
                    .caption = "bar: mean over vertebrae; whisker: +- sqrt(population variance); "
                               "PSNR in table.md",
                    .n_groups = ng, .n_series = 2, .group_names = names, .group_notes = notes,
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
