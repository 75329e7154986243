/*
 * bench/synthesis/synth_quality.c: image quality of the GAN's synthesized
 * band against the phantom's healthy truth (issue 12, "Evaluation": PSNR,
 * SSIM and Dice), beside "no restoration" (the fractured input itself), on
 * held-out phantom cases. results/synthesis-phantom.md has the numbers.
 *
 *   synth_quality [--sagittal FILE] [--coronal FILE|""] [--cases N]
 *                 [--seed S] [--first T11] [--last L3] [--csv FILE]
 *                 [--work DIR] [--pgm DIR]
 *
 * Cases: as bench/synthesis/synth_eval.sh makes them (seed 77, T11..L3,
 * 1 mm, RAS, fracture rate 0.3, scoliosis rate 0.3, noise 20 HU; 4 cases),
 * written under --work (default $TMPDIR/hv-synth-quality; its folders
 * fractured/ and healthy/ are removed and rewritten, nothing else) twice: as drawn, and with fracture rate 0. The phantom's
 * fracture draws have their own random stream and its noise is a hash of
 * the world position, so the second cohort is the same anatomy and the
 * same noise with every body unbroken: the healthy truth.
 *
 * Per case, the pipeline (hv_pipe_run, the default options a run uses)
 * loads, straightens, crops and measures the fractured case; then for every
 * vertebra the pipeline would synthesize (a crop and measured heights; not
 * cut by the field of view, truth or flags, as synth_eval.sh) the GAN runs
 * through hv_model_synth_vertebra, the library call of the pipeline's `gan`
 * stage (batch 8, neighbours first, no CAM: the run's defaults). The
 * healthy render is straightened through the FRACTURED case's own map
 * (linear CT, nearest labels, de-pedicled, HU window), and cropped at the
 * same offset: the healthy truth in the synthesized crop's own frame (as
 * tests/pipeline/test_pipe_gan.c does for the labels).
 *
 * The band (where the metrics are taken): on every LR slice i that the
 * sagittal target step synthesized (hv_model_synth_result.synthesised), the
 * band_rows (40) image rows from band_row[i]: the window centred on the
 * target that holds every row the generator writes at any restored height
 * (its output rows [x_up, x_lo) lie inside; the window's other rows hold the
 * composite's moved input, neighbours and discs); by the AP columns that lie
 * inside the straightened volume (the crop's zero padding beyond it is the
 * same in all three images and would only dilute the error). The window is
 * fixed before the target step predicts a height, so a GAN that restores
 * too little is not scored on a smaller region; it follows the target's rows
 * as the neighbour steps left them, so the "none" scores move slightly with
 * the model's neighbour steps. With a coronal model the band's voxels hold the fused CT and labels (synth_run.c).
 *
 * Metrics on that band, images as the store keeps them (the u8 cast of
 * hv_model_trainset_ct_u8, for the truth and the input as well) divided by
 * 255, so intensities in [0, 1]:
 *   PSNR  10 log10(1 / MSE), peak 1, MSE over all band pixels of the vertebra
 *         (hv_metrics_psnr; "inf" when equal);
 *   SSIM  hv_metrics_ssim_gaussian per slice (Wang et al.: Gaussian window 11,
 *         sigma 1.5, K1 0.01, K2 0.03, population covariance, data range 1;
 *         the mean over the slice minus a 5-pixel border), averaged over the
 *         band's slices;
 *   Dice  of "label == target" in the synthesized (or input) label crop
 *         against the healthy truth's, over all band voxels of the vertebra
 *         (hv_metrics_overlap).
 * "none" scores the fractured input crop in the same band. The neighbour
 * baseline makes heights, not images: n/a.
 *
 * --pgm DIR writes, per scored vertebra, DIR/<case>_<label>.pgm: the
 * middle synthesized sagittal slice as three 256 x 256 panels, healthy truth
 * | fractured input | GAN (row 0 cranial, anterior on the left), with the
 * band's first and last rows marked by a grey dot in the left margin of each
 * panel: what the numbers are about.
 *
 * Output: one CSV row per vertebra (stdout, or --csv FILE), then a summary
 * per group (fractured = truth grade >= 1, healthy, all): PSNR of the mean
 * MSE over the group's vertebrae, mean SSIM, mean Dice, and on how many
 * vertebrae the GAN beats "none". Exit 0, or 1 with a message on stderr.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/io.h"
#include "hv/measure.h"
#include "hv/model.h"
#include "hv/phantom.h"
#include "hv/pipeline.h"
#include "hv/spine.h"

typedef struct band_score {
    double mse, psnr, ssim, dice;
} band_score;

typedef struct vrow {
    int grade, ok;
    band_score gan, none;
} vrow;

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--sagittal FILE] [--coronal FILE|\"\"] [--cases N] [--seed S] "
            "[--first LEVEL] [--last LEVEL] [--csv FILE] [--work DIR] [--pgm DIR]\n",
            argv0);
}

/* A crop-sized volume of src (a straightened volume) at the crop's offset, 0
 * outside; dtype of src. */
static hv_status crop_like(const hv_volume *src, const hv_spine_crop *cr, hv_volume **out)
{
    hv_volume *o = NULL;
    hv_status st = hv_vol_create(&o, cr->labels->dim, src->dtype, cr->labels->affine);
    if (st != HV_OK) return st;
    const int64_t *d = o->dim;
    for (int64_t k = 0; k < d[2]; k++)
        for (int64_t j = 0; j < d[1]; j++)
            for (int64_t i = 0; i < d[0]; i++) {
                int64_t a = i + cr->offset[0], b = j + cr->offset[1], c = k + cr->offset[2];
                if (a < 0 || b < 0 || c < 0 || a >= src->dim[0] || b >= src->dim[1] || c >= src->dim[2])
                    continue;
                hv_vol_set(o, hv_vol_idx(o, i, j, k), hv_vol_get(src, hv_vol_idx(src, a, b, c)));
            }
    *out = o;
    return HV_OK;
}

/* The band's scores of image `img` (u8 CT crop) and labels `lab` against
 * the truth (tct, tlab), target label t. */
static hv_status score_band(const hv_model_synth_result *r, const hv_spine_crop *cr,
                            const int64_t straight_dim[3], const hv_volume *tct,
                            const hv_volume *tlab, const hv_volume *img, const hv_volume *lab,
                            int t, int64_t band_rows, band_score *out, int64_t *n_slices,
                            int64_t *n_px)
{
    int64_t rows, cols;
    hv_spine_slice_dims(cr->labels, HV_SPINE_SAGITTAL, &rows, &cols);
    const int64_t J = cr->labels->dim[1];
    /* image column c is crop AP index J - 1 - c: keep those inside the
     * straightened volume (a contiguous range) */
    int64_t c0 = -1, c1 = -1;
    for (int64_t c = 0; c < cols && c < J; c++) {
        int64_t sj = J - 1 - c + cr->offset[1];
        if (sj >= 0 && sj < straight_dim[1]) {
            if (c0 < 0) c0 = c;
            c1 = c + 1;
        }
    }
    if (c0 < 0) return hv_error_set(HV_ERR_EMPTY, "the crop has no column inside the straightened volume");
    const int64_t bc = c1 - c0, rc = rows * cols;
    float *sx = malloc((size_t)rc * sizeof *sx), *sy = malloc((size_t)rc * sizeof *sy);
    float *lx = malloc((size_t)rc * sizeof *lx), *ly = malloc((size_t)rc * sizeof *ly);
    double *bx = malloc((size_t)(band_rows * bc) * sizeof *bx);
    double *by = malloc((size_t)(band_rows * bc) * sizeof *by);
    uint8_t *ma = NULL, *mb = NULL;
    size_t nm = 0, cap = 0;
    hv_status st = HV_OK;
    double se = 0, ssim_sum = 0;
    int64_t ns = 0, npx = 0;
    if (!sx || !sy || !lx || !ly || !bx || !by) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < cr->labels->dim[0]; i++) {
        if (!r->synthesised[i] || r->band_row[i] < 0) continue;
        const int64_t r0 = r->band_row[i];
        if (r0 + band_rows > rows) {
            st = hv_error_set(HV_ERR_INTERNAL, "band rows [%lld, +%lld) outside %lld rows",
                              (long long)r0, (long long)band_rows, (long long)rows);
            goto done;
        }
        if ((st = hv_spine_slice_extract(tct, HV_SPINE_SAGITTAL, i, sx)) ||
            (st = hv_spine_slice_extract(img, HV_SPINE_SAGITTAL, i, sy)) ||
            (st = hv_spine_slice_extract(tlab, HV_SPINE_SAGITTAL, i, lx)) ||
            (st = hv_spine_slice_extract(lab, HV_SPINE_SAGITTAL, i, ly)))
            goto done;
        if (cap < nm + (size_t)(band_rows * bc)) {
            cap = 2 * (nm + (size_t)(band_rows * bc));
            uint8_t *na = realloc(ma, cap), *nb = na ? realloc(mb, cap) : NULL;
            if (na) ma = na;
            if (!na || !nb) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                goto done;
            }
            mb = nb;
        }
        for (int64_t y = 0; y < band_rows; y++)
            for (int64_t c = 0; c < bc; c++) {
                const size_t q = (size_t)((r0 + y) * cols + c0 + c), b = (size_t)(y * bc + c);
                bx[b] = sx[q] / 255.0;
                by[b] = sy[q] / 255.0;
                se += (bx[b] - by[b]) * (bx[b] - by[b]);
                ma[nm] = (int)lrintf(lx[q]) == t;
                mb[nm] = (int)lrintf(ly[q]) == t;
                nm++;
            }
        double s = 0;
        if ((st = hv_metrics_ssim_gaussian(bx, by, (int)band_rows, (int)bc, 1.0, &s))) goto done;
        ssim_sum += s;
        ns++;
        npx += band_rows * bc;
    }
    if (ns == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "no synthesized slice");
        goto done;
    }
    out->mse = se / (double)npx;
    out->psnr = out->mse > 0 ? 10.0 * log10(1.0 / out->mse) : INFINITY;
    out->ssim = ssim_sum / (double)ns;
    hv_overlap ov;
    hv_metrics_overlap(ma, mb, nm, &ov);
    out->dice = ov.dice;
    *n_slices = ns;
    *n_px = npx;
done:
    free(sx);
    free(sy);
    free(lx);
    free(ly);
    free(bx);
    free(by);
    free(ma);
    free(mb);
    return st;
}

/* The healthy truth of one case, straightened through the fractured case's
 * map as the spine stage straightens (hv_spine_case_run): CT linear with
 * the CT fill, HU window; labels nearest, U8, de-pedicled. */
static hv_status healthy_straight(const hv_pipe_opts *o, const hv_spine_map *map, const char *dir,
                                  const char *id, hv_volume **ct_win, hv_volume **labels)
{
    char pc[2048], pm[2048];
    snprintf(pc, sizeof pc, "%s/raw/%s/%s.nii.gz", dir, id, id);
    snprintf(pm, sizeof pm, "%s/raw/%s/%s_msk.nii.gz", dir, id, id);
    hv_volume *ct = NULL, *mk = NULL, *sct = NULL, *sl = NULL;
    hv_status st;
    if ((st = hv_io_nifti_read(pc, HV_DTYPE_F32, NULL, &ct, NULL)) ||
        (st = hv_io_nifti_read(pm, HV_DTYPE_I16, NULL, &mk, NULL)) ||
        (st = hv_spine_straighten(map, ct, HV_INTERP_LINEAR, o->spine.straighten.ct_fill, &sct)) ||
        (st = hv_spine_hu_window(sct, o->spine.window_lo, o->spine.window_hi, ct_win)) ||
        (st = hv_spine_straighten(map, mk, HV_INTERP_NEAREST, 0.0, &sl)) ||
        (st = hv_vol_convert(sl, HV_DTYPE_U8, labels)) ||
        (st = hv_spine_depedicle(map, *labels, NULL)))
        hv_error_wrap(st, "healthy truth of %s", id);
    hv_vol_free(ct);
    hv_vol_free(mk);
    hv_vol_free(sct);
    hv_vol_free(sl);
    return st;
}

/* The middle synthesized sagittal slice of truth | input | GAN as a PGM. */
static hv_status write_pgm(const char *path, const hv_model_synth_result *r, const hv_volume *v[3],
                           int64_t band_rows)
{
    int64_t rows, cols, n = 0, mid = -1, seen = 0;
    hv_spine_slice_dims(v[0], HV_SPINE_SAGITTAL, &rows, &cols);
    for (int64_t i = 0; i < v[0]->dim[0]; i++) n += r->synthesised[i] != 0;
    for (int64_t i = 0; i < v[0]->dim[0] && mid < 0; i++)
        if (r->synthesised[i] && seen++ == n / 2) mid = i;
    if (mid < 0) return hv_error_set(HV_ERR_EMPTY, "no synthesized slice");
    float *sl = malloc((size_t)(rows * cols) * sizeof *sl);
    uint8_t *img = malloc((size_t)(rows * cols * 3));
    hv_status st = HV_OK;
    FILE *f = NULL;
    if (!sl || !img) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int p = 0; p < 3; p++) {
        if ((st = hv_spine_slice_extract(v[p], HV_SPINE_SAGITTAL, mid, sl))) goto done;
        for (int64_t y = 0; y < rows; y++)
            for (int64_t c = 0; c < cols; c++) {
                float a = sl[y * cols + c];
                uint8_t b = (uint8_t)(a < 0 ? 0 : a > 255 ? 255 : a);
                if (c < 3 && (y == r->band_row[mid] || y == r->band_row[mid] + band_rows - 1)) b = 128;
                img[y * cols * 3 + p * cols + c] = b;
            }
    }
    if (!(f = fopen(path, "wb")) || fprintf(f, "P5\n%lld %lld\n255\n", (long long)(3 * cols), (long long)rows) < 0 ||
        fwrite(img, 1, (size_t)(rows * cols * 3), f) != (size_t)(rows * cols * 3))
        st = hv_error_set(HV_ERR_IO, "cannot write %s", path);
done:
    if (f && fclose(f) && st == HV_OK) st = hv_error_set(HV_ERR_IO, "cannot write %s", path);
    free(sl);
    free(img);
    return st;
}

static const hv_phantom_vert *truth_of(const hv_phantom_case *pc, int label)
{
    for (int k = 0; k < pc->n_vert; k++)
        if (pc->vert[k].label == label) return &pc->vert[k];
    return NULL;
}

/* v with `digits` decimals, or nan / inf */
static void fmt_num(char *buf, size_t n, double v, int digits)
{
    if (isnan(v)) snprintf(buf, n, "nan");
    else if (isinf(v)) snprintf(buf, n, "inf");
    else snprintf(buf, n, "%.*f", digits, v);
}

static void summary(const vrow *rows, size_t n, int group, const char *name)
{
    double mse[2] = {0, 0}, ssim[2] = {0, 0}, dice[2] = {0, 0};
    int cnt = 0, win_p = 0, win_s = 0, win_d = 0;
    for (size_t k = 0; k < n; k++) {
        const vrow *v = &rows[k];
        if (!v->ok || (group == 1 && v->grade < 1) || (group == 0 && v->grade != 0)) continue;
        cnt++;
        const band_score *b[2] = {&v->gan, &v->none};
        for (int m = 0; m < 2; m++) {
            mse[m] += b[m]->mse;
            ssim[m] += b[m]->ssim;
            dice[m] += b[m]->dice;
        }
        win_p += v->gan.mse < v->none.mse;
        win_s += v->gan.ssim > v->none.ssim;
        win_d += v->gan.dice > v->none.dice;
    }
    if (!cnt) {
        printf("| %s | 0 | - | - | - |\n", name);
        return;
    }
    char p[2][32];
    for (int m = 0; m < 2; m++) fmt_num(p[m], sizeof p[m], 10.0 * log10(cnt / mse[m]), 2);
    printf("| %s | %d | GAN %s / none %s / baseline n/a | GAN %.3f / none %.3f / baseline n/a | "
           "GAN %.3f / none %.3f / baseline n/a | %d / %d / %d of %d |\n",
           name, cnt, p[0], p[1], ssim[0] / cnt, ssim[1] / cnt, dice[0] / cnt, dice[1] / cnt, win_p,
           win_s, win_d, cnt);
}

int main(int argc, char **argv)
{
    const char *sag = "models/phantom-sagittal.h5", *cor = "models/phantom-coronal.h5";
    const char *csv_path = NULL, *pgm_dir = NULL, *first = "T11", *last = "L3";
    char work[1024];
    const char *tmp = getenv("TMPDIR");
    snprintf(work, sizeof work, "%s/hv-synth-quality", tmp && tmp[0] ? tmp : "/tmp");
    int cases = 4;
    long long seed = 77;
    for (int a = 1; a < argc; a++) {
        const char *k = argv[a];
        if (a + 1 >= argc) {
            usage(argv[0]);
            return 2;
        }
        const char *v = argv[++a];
        char *end = NULL;
        if (!strcmp(k, "--sagittal")) sag = v;
        else if (!strcmp(k, "--coronal")) cor = v[0] ? v : NULL;
        else if (!strcmp(k, "--csv")) csv_path = v;
        else if (!strcmp(k, "--pgm")) pgm_dir = v;
        else if (!strcmp(k, "--first")) first = v;
        else if (!strcmp(k, "--last")) last = v;
        else if (!strcmp(k, "--work")) snprintf(work, sizeof work, "%s", v);
        else if (!strcmp(k, "--cases")) {
            cases = (int)strtol(v, &end, 10);
            if (!end || *end || cases < 1 || cases > 1000) {
                fprintf(stderr, "synth_quality: --cases must be an integer in 1..1000, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(k, "--seed")) {
            seed = strtoll(v, &end, 10);
            if (!end || *end || seed < 0) {
                fprintf(stderr, "synth_quality: --seed must be a non-negative integer, not '%s'\n", v);
                return 2;
            }
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    hv_phantom_opts pf;
    hv_phantom_opts_default(&pf);
    pf.seed = (uint64_t)seed;
    pf.first_label = hv_label_from_name(first);
    pf.last_label = hv_label_from_name(last);
    if (!pf.first_label || !pf.last_label) {
        fprintf(stderr, "synth_quality: unknown level '%s'\n", pf.first_label ? last : first);
        return 2;
    }
    pf.spacing[0] = pf.spacing[1] = pf.spacing[2] = 1.0;
    pf.orientation = HV_PHANTOM_RAS;
    pf.fracture_rate = 0.3;
    pf.scoliosis_rate = 0.3;
    pf.noise_hu = 20;
    hv_phantom_opts ph = pf;
    ph.fracture_rate = 0;

    int rc = 1;
    FILE *csv = stdout;
    hv_nn_backend *be = NULL;
    hv_model_synth *gan = NULL;
    hv_manifest *man = NULL;
    vrow *rows = NULL;
    size_t nrows = 0, caprows = 0;
    char dir_f[1100], dir_h[1100], cmd[4096];
    snprintf(dir_f, sizeof dir_f, "%s/fractured", work);
    snprintf(dir_h, sizeof dir_h, "%s/healthy", work);
    hv_model_synth_opts so;
    hv_model_synth_opts_default(&so);
    /* the models first: a missing or wrong file is refused before any work */
    if (hv_nn_backend_create_cpu(&be) || hv_model_synth_open(sag, cor, &so, be, &gan)) {
        fprintf(stderr, "synth_quality: %s\n", hv_error_detail());
        goto done;
    }
    if (csv_path && !(csv = fopen(csv_path, "w"))) {
        fprintf(stderr, "synth_quality: cannot write %s\n", csv_path);
        csv = stdout;
        goto done;
    }
    if (strchr(work, '\'')) {
        fprintf(stderr, "synth_quality: --work must not contain a quote\n");
        goto done;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' && mkdir -p '%s'", dir_f, dir_h, work);
    if (system(cmd) != 0) {
        fprintf(stderr, "synth_quality: cannot make %s\n", work);
        goto done;
    }
    double t0 = hv_time_now();
    if (hv_phantom_cohort_write(&pf, dir_f, cases, NULL, NULL) ||
        hv_phantom_cohort_write(&ph, dir_h, cases, NULL, NULL) ||
        hv_io_dataset_scan(dir_f, NULL, &man)) {
        fprintf(stderr, "synth_quality: phantom cohort: %s\n", hv_error_detail());
        goto done;
    }
    printf("# synth_quality: %d cases, seed %lld, %s..%s, 1 mm, fracture rate 0.3; sagittal %s, "
           "coronal %s (cnum %d); cohorts in %.1f s\n",
           cases, seed, first, last, sag, cor ? cor : "none", hv_model_synth_cnum(gan),
           hv_time_now() - t0);
    fprintf(csv, "case,label,level,grade,slices,band_px,psnr_gan,ssim_gan,dice_gan,psnr_none,"
                 "ssim_none,dice_none,seconds,status\n");
    for (int ci = 0; ci < cases; ci++) {
        hv_phantom_case *pc = NULL;
        hv_pipe_state s;
        hv_pipe_plan plan;
        hv_pipe_opts o;
        hv_volume *hct = NULL, *hlab = NULL;
        int state_live = 0;
        if (hv_phantom_case_make(&pf, ci, &pc)) {
            fprintf(stderr, "synth_quality: phantom case %d: %s\n", ci, hv_error_detail());
            goto done;
        }
        const hv_case *cs = NULL;
        for (size_t q = 0; q < man->n; q++)
            if (!strcmp(man->cases[q].id, pc->id)) cs = &man->cases[q];
        hv_pipe_opts_default(&o);
        if (!cs || hv_pipe_plan_make(hv_pipe_default(), &o, HV_PIPE_HEIGHTS | HV_PIPE_CROPS, &plan)) {
            fprintf(stderr, "synth_quality: case %s: %s\n", pc->id, cs ? hv_error_detail() : "not in the cohort");
            hv_phantom_case_free(pc);
            goto done;
        }
        hv_pipe_state_init(&s, cs);
        state_live = 1;
        if (hv_pipe_run(&plan, &s) ||
            healthy_straight(&o, s.spine->map, dir_h, pc->id, &hct, &hlab)) {
            fprintf(stderr, "synth_quality: case %s: %s\n", pc->id, hv_error_detail());
            goto case_fail;
        }
        for (size_t n = 0; n < s.m->n; n++) {
            const hv_vert_measure *v = &s.m->v[n];
            const hv_phantom_vert *t = truth_of(pc, v->label);
            const hv_spine_crop *cr = hv_pipe_crop_find(&s, v->label);
            const char *lv = hv_label_name(v->label) ? hv_label_name(v->label) : "?";
            if (!t || t->truncated || (v->flags & HV_MEAS_TRUNCATED)) continue;
            if (nrows == caprows) {
                caprows = caprows ? 2 * caprows : 32;
                vrow *nr = realloc(rows, caprows * sizeof *rows);
                if (!nr) {
                    fprintf(stderr, "synth_quality: out of memory\n");
                    goto case_fail;
                }
                rows = nr;
            }
            vrow *row = &rows[nrows++];
            memset(row, 0, sizeof *row);
            row->grade = t->grade;
            const char *status = "ok";
            char why[600] = "";
            int64_t ns = 0, npx = 0;
            double tv = hv_time_now();
            hv_model_synth_result res;
            memset(&res, 0, sizeof res);
            hv_volume *tct = NULL, *tlab = NULL, *tct8 = NULL, *in8 = NULL, *gan8 = NULL;
            if (!cr || !v->ori_map.h) {
                status = "skipped";
                snprintf(why, sizeof why, "%s", !cr ? "no crop" : "no measured heights");
            } else if (hv_model_synth_vertebra(gan, cr, NULL, &res)) {
                status = "failed";
                snprintf(why, sizeof why, "%s", hv_error_detail());
                hv_error_clear();
            } else if (res.nonfinite) {
                status = "failed";
                snprintf(why, sizeof why, "non-finite generator output");
            } else if (crop_like(hct, cr, &tct) || crop_like(hlab, cr, &tlab) ||
                       hv_model_trainset_ct_u8(tct, &tct8) ||
                       hv_model_trainset_ct_u8(cr->ct, &in8) ||
                       hv_model_trainset_ct_u8(res.ct, &gan8) ||
                       score_band(&res, cr, hct->dim, tct8, tlab, gan8, res.labels, v->label,
                                  so.band_rows, &row->gan, &ns, &npx) ||
                       score_band(&res, cr, hct->dim, tct8, tlab, in8, cr->labels, v->label,
                                  so.band_rows, &row->none, &ns, &npx)) {
                status = "failed";
                snprintf(why, sizeof why, "%s", hv_error_detail());
                hv_error_clear();
            } else {
                row->ok = 1;
                char pp[2400];
                const hv_volume *pv[3] = {tct8, in8, gan8};
                snprintf(pp, sizeof pp, "%s/%s_%d.pgm", pgm_dir ? pgm_dir : "", pc->id, v->label);
                if (pgm_dir && write_pgm(pp, &res, pv, so.band_rows)) {
                    fprintf(stderr, "synth_quality: %s\n", hv_error_detail());
                    hv_model_synth_result_free(&res);
                    goto case_fail;
                }
            }
            double sec = hv_time_now() - tv;
            hv_model_synth_result_free(&res);
            hv_vol_free(tct);
            hv_vol_free(tlab);
            hv_vol_free(tct8);
            hv_vol_free(in8);
            hv_vol_free(gan8);
            char f[6][32];
            const double vals[6] = {row->gan.psnr, row->gan.ssim, row->gan.dice,
                                    row->none.psnr, row->none.ssim, row->none.dice};
            for (int q = 0; q < 6; q++)
                if (row->ok) fmt_num(f[q], sizeof f[q], vals[q], q % 3 ? 4 : 3);
                else snprintf(f[q], sizeof f[q], "nan");
            fprintf(csv, "%s,%d,%s,%d,%lld,%lld,%s,%s,%s,%s,%s,%s,%.1f,%s%s%s\n", pc->id, v->label,
                    lv, t->grade, (long long)ns, (long long)npx, f[0], f[1], f[2], f[3], f[4], f[5],
                    sec, status, why[0] ? ": " : "", why);
            fflush(csv);
            if (!row->ok) fprintf(stderr, "synth_quality: %s %s: %s: %s\n", pc->id, lv, status, why);
        }
        hv_vol_free(hct);
        hv_vol_free(hlab);
        hv_pipe_state_clear(&s);
        hv_phantom_case_free(pc);
        continue;
    case_fail:
        hv_vol_free(hct);
        hv_vol_free(hlab);
        if (state_live) hv_pipe_state_clear(&s);
        hv_phantom_case_free(pc);
        goto done;
    }
    printf("\n| vertebrae | n | band PSNR (dB, peak 1) | band SSIM (Gaussian 11, sigma 1.5) | "
           "band Dice (target label) | GAN better than none: PSNR / SSIM / Dice |\n");
    printf("|---|---|---|---|---|---|\n");
    summary(rows, nrows, 1, "fractured (grade >= 1)");
    summary(rows, nrows, 0, "healthy (grade 0)");
    summary(rows, nrows, -1, "all");
    int nfail = 0;
    for (size_t k = 0; k < nrows; k++) nfail += !rows[k].ok;
    printf("\n%zu vertebrae, %d without scores (see the CSV's status); %.0f s in all\n", nrows,
           nfail, hv_time_now() - t0);
    rc = 0;
done:
    if (csv != stdout) fclose(csv);
    free(rows);
    hv_io_manifest_free(man);
    hv_model_synth_free(gan);
    hv_nn_backend_free(be);
    return rc;
}
