/*
 * cmd_measure.c: `healthivert measure`, heights, RHLV and a Genant grade for
 * every vertebra of one label map, from the mask alone.
 *
 * It reads the mask in its own orientation and spacing (the robust method
 * works in world millimetres, so nothing is resampled), measures every
 * vertebra, predicts pseudo-healthy heights with the baseline estimator,
 * grades with the Genant rule or a saved SVM, prints a table, and optionally
 * writes the CSV and the height-loss figures. `--rhlv reference` replaces
 * the heights and RHLV by the reference's column counts on straightened 1 mm
 * crops (hv_measure_reference_case), for comparison with published numbers.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/core.h"
#include "hv/io.h"
#include "hv/measure.h"
#include "hv/pipeline.h"

static void measure_usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert measure --mask MASK.nii[.gz] [--ct CT.nii[.gz]]\n"
            "                           [--centroids JSON] [--synth baseline]\n"
            "                           [--rhlv robust|reference] [--grader genant|svm:MODEL]\n"
            "                           [--csv FILE [--append]] [--png DIR] [--case ID]\n"
            "                           [--compat totalseg] [--map-step MM] [--synth-mask DIR]\n"
            "\n"
            "Measure every labelled vertebra (VerSe labels: 8 = T1 ... 24 = L5) of a label\n"
            "map, in any orientation and voxel spacing:\n"
            "  - original heights (mm) along each vertebra's local spine axis at the\n"
            "    anterior, middle and posterior thirds of its body (1/6, 1/2, 5/6 of the\n"
            "    depth), sub-voxel, pooled over parasagittal rays (docs/measure.md);\n"
            "  - pseudo-healthy heights from the nearest undeformed neighbours above and\n"
            "    below, scaled by level size priors (the baseline; no model needed);\n"
            "  - RHLV = (healthy - original) / healthy for all/anterior/middle/posterior;\n"
            "  - a Genant grade: the rule on the largest of anterior/middle/posterior RHLV\n"
            "    (< 20 %% -> 0, 20-25 %% -> 1, 25-40 %% -> 2, >= 40 %% -> 3), or an SVM\n"
            "    saved by `healthivert svm`.\n"
            "A vertebra that cannot be measured is flagged (truncated: cut by the field\n"
            "of view; small: a sliver; empty_region: a region had no valid ray; deformed:\n"
            "not used as a reference; no_reference: healthy heights from the level prior\n"
            "only) and its unknown values are 'nan', never 0. Truncated or unmeasurable\n"
            "vertebrae get grade -1 (not graded).\n"
            "\n"
            "options:\n"
            "  --mask FILE        label map (required); whole vertebrae or bodies only\n"
            "  --ct FILE          CT on the mask's grid (same dimensions and affine,\n"
            "                     checked): adds the mean body value (mean_hu)\n"
            "  --centroids JSON   VerSe centroid file (voxel coordinates of the mask's\n"
            "                     grid) used for the spine axis instead of the mask's own\n"
            "  --synth baseline   pseudo-healthy estimate (only 'baseline' exists so far)\n"
            "  --rhlv robust      heights and RHLV with our method (default); 'reference'\n"
            "                     is the published column counting on straightened,\n"
            "                     de-pedicled 1 mm crops (spec section 9; heights in mm)\n"
            "  --grader genant    Genant rule (default); svm:MODEL applies a model saved\n"
            "                     by `healthivert svm` (MODEL and MODEL.scaler)\n"
            "  --csv FILE         write one row per vertebra (header: case,label,level,\n"
            "                     h_ori_ant_mm,...,rhlv_post,grade, then extras and flags)\n"
            "  --append           append rows to an existing CSV without a header\n"
            "  --png DIR          per vertebra: CASE_LEVEL_loss_map.png (AP x LR heatmap of\n"
            "                     the relative height loss, colour bar, A/P marked),\n"
            "                     CASE_LEVEL_loss_curve.png (loss from anterior to\n"
            "                     posterior) and CASE_LEVEL_loss_map.csv (the map's data)\n"
            "  --case ID          case id for the CSV (default: the mask's file name)\n"
            "  --compat totalseg  measure like TotalSegmentator's spine report (points at\n"
            "                     15/50/85 %% of the AP chord, the sagittal plane with the\n"
            "                     largest spread) to compare with its numbers\n"
            "  --map-step MM      grid step of the height-loss maps (default 1)\n"
            "  --synth-mask DIR   per vertebra: CASE_LEVEL_synth.nii.gz, the mask with that\n"
            "                     vertebra's body stretched to its pseudo-healthy heights\n"
            "  -h, --help         this text\n"
            "\n"
            "Exit status: 0 on success, 1 on failure (message on stderr), 2 on a bad\n"
            "command line.\n");
}

/* "path/to/0007_msk.nii.gz" -> "0007"; "sub-verse004_seg-vert_msk.nii.gz" -> "sub-verse004" */
static void case_from_path(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    static const char *suffix[] = {".nii.gz", ".nii", "_seg-vert_msk", "_msk", "_seg"};
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
            size_t n = strlen(out), s = strlen(suffix[i]);
            if (n > s && strcmp(out + n - s, suffix[i]) == 0) out[n - s] = '\0';
        }
}

static void fmt(char *buf, size_t cap, double v, int prec)
{
    if (isfinite(v)) snprintf(buf, cap, "%.*f", prec, v);
    else snprintf(buf, cap, "nan");
}

int hv_cmd_measure(int argc, char **argv)
{
    const char *mask_path = NULL, *ct_path = NULL, *ctd_path = NULL, *synth = "baseline";
    const char *rhlv_mode = "robust", *grader = "genant", *csv = NULL, *png = NULL, *case_id = NULL;
    const char *compat = NULL, *synth_dir = NULL;
    double map_step = 1.0;
    int append = 0, rc = HV_EXIT_FAIL;
    const hv_volume *mask = NULL;
    const hv_spine_measure *m = NULL;
    hv_pipe_state ps;
    hv_svm_grader *svm = NULL;
    hv_status st;
    hv_pipe_state_init(&ps, NULL);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            measure_usage(stdout);
            return HV_EXIT_OK;
        } else if (!strcmp(a, "--append")) {
            append = 1;
        } else if (has && !strcmp(a, "--mask")) mask_path = argv[++i];
        else if (has && !strcmp(a, "--ct")) ct_path = argv[++i];
        else if (has && !strcmp(a, "--centroids")) ctd_path = argv[++i];
        else if (has && !strcmp(a, "--synth")) synth = argv[++i];
        else if (has && !strcmp(a, "--rhlv")) rhlv_mode = argv[++i];
        else if (has && !strcmp(a, "--grader")) grader = argv[++i];
        else if (has && !strcmp(a, "--csv")) csv = argv[++i];
        else if (has && !strcmp(a, "--png")) png = argv[++i];
        else if (has && !strcmp(a, "--case")) case_id = argv[++i];
        else if (has && !strcmp(a, "--compat")) compat = argv[++i];
        else if (has && !strcmp(a, "--synth-mask")) synth_dir = argv[++i];
        else if (has && !strcmp(a, "--map-step")) {
            char *end;
            map_step = strtod(argv[++i], &end);
            if (*end || !(map_step > 0.05) || map_step > 20) {
                fprintf(stderr, "healthivert measure: --map-step must be a number of mm in (0.05, 20]\n");
                return HV_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "healthivert measure: unknown or incomplete option '%s' (see --help)\n", a);
            return HV_EXIT_USAGE;
        }
    }
    if (!mask_path) {
        fprintf(stderr, "healthivert measure: --mask is required (see --help)\n");
        return HV_EXIT_USAGE;
    }
    if (!hv_pipe_synth_find(synth)) {
        fprintf(stderr, "healthivert measure: --synth: %s\n", hv_error_detail());
        return HV_EXIT_USAGE;
    }
    if (strcmp(rhlv_mode, "robust") != 0 && strcmp(rhlv_mode, "reference") != 0) {
        fprintf(stderr, "healthivert measure: --rhlv must be robust or reference\n");
        return HV_EXIT_USAGE;
    }
    if (compat && strcmp(compat, "totalseg") != 0) {
        fprintf(stderr, "healthivert measure: --compat must be totalseg\n");
        return HV_EXIT_USAGE;
    }
    if (strcmp(grader, "genant") != 0 && strncmp(grader, "svm:", 4) != 0) {
        fprintf(stderr, "healthivert measure: --grader must be genant or svm:MODEL\n");
        return HV_EXIT_USAGE;
    }
    char cid[256];
    if (case_id) snprintf(cid, sizeof cid, "%s", case_id);
    else case_from_path(mask_path, cid, sizeof cid);

    /* Before anything is read or written: the case id names the --png and
     * --synth-mask files (and is a CSV field), and every input must be a
     * regular file (a FIFO would block, a directory mislead). */
    st = hv_file_name_check(cid, case_id ? "--case" : "case id (from the --mask file name; use --case)");
    if (st != HV_OK) goto fail;
    if ((st = hv_file_check_regular(mask_path, "--mask")) != HV_OK ||
        (ct_path && (st = hv_file_check_regular(ct_path, "--ct")) != HV_OK) ||
        (ctd_path && (st = hv_file_check_regular(ctd_path, "--centroids")) != HV_OK))
        goto fail;
    if (!strncmp(grader, "svm:", 4)) {
        st = hv_svm_load(grader + 4, &svm);
        if (st != HV_OK) goto fail;
    }
    /* The pipeline's load -> measure -> synthesize -> grade, as a batch run
     * does it (hv/pipeline.h): int16 labels, the same checks, the same
     * registered synthesis methods and graders. Unlike the runner, a single
     * vertebra is measured (flagged no_reference) rather than refused. */
    hv_case cs = {cid, (char *)ct_path, (char *)mask_path, (char *)ctd_path, HV_OK, NULL};
    hv_pipe_opts po;
    hv_pipe_opts_default(&po);
    po.measure.map_step_mm = map_step;
    po.measure.totalseg_compat = compat != NULL;
    po.need_neighbour = 0;
    po.synth = synth;
    po.rhlv_reference = !strcmp(rhlv_mode, "reference");
    po.grader = svm ? "svm" : "rule";
    po.grader_model = svm;
    hv_pipe_plan plan;
    st = hv_pipe_plan_make(hv_pipe_default(), &po, HV_PIPE_GRADES, &plan);
    if (st != HV_OK) goto fail;
    hv_pipe_state_init(&ps, &cs);
    st = hv_pipe_run(&plan, &ps);
    if (st != HV_OK) goto fail;
    mask = ps.mask;
    m = ps.m;

    printf("case %s: %zu vertebrae (%s heights, baseline pseudo-healthy, %s grader)\n", cid, m->n,
           !strcmp(rhlv_mode, "reference") ? "reference (column-count)"
           : compat                        ? "TotalSegmentator-compatible"
                                           : "robust",
           svm ? "SVM" : "Genant rule");
    printf("%-5s %5s | %6s %6s %6s | %6s %6s %6s | %6s %6s %6s | %5s | %s\n", "level", "label",
           "ori_A", "ori_M", "ori_P", "syn_A", "syn_M", "syn_P", "RHLV_A", "RHLV_M", "RHLV_P",
           "grade", "flags");
    for (size_t i = 0; i < m->n; i++) {
        const hv_vert_measure *v = &m->v[i];
        char b[9][16], fl[160];
        for (int r = 0; r < 3; r++) {
            fmt(b[r], 16, v->h_ori[r + 1], 1);
            fmt(b[3 + r], 16, v->h_syn[r + 1], 1);
            fmt(b[6 + r], 16, 100.0 * v->rhlv[r + 1], 1);
        }
        hv_measure_flags_str(v->flags, fl, sizeof fl);
        const char *lv = hv_label_name(v->label);
        printf("%-5s %5d | %6s %6s %6s | %6s %6s %6s | %5s%% %5s%% %5s%% | %5d | %s\n",
               lv ? lv : "?", v->label, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8],
               v->grade, fl);
    }
    if (csv) {
        st = hv_measure_write_csv(csv, cid, m, append);
        if (st != HV_OK) goto fail;
    }
    if (png) {
        st = hv_mkdir_p(png);
        if (st != HV_OK) goto fail;
        for (size_t i = 0; i < m->n; i++) {
            const hv_vert_measure *v = &m->v[i];
            if (!v->ori_map.h || !v->syn_map.h) continue;
            const char *lv = hv_label_name(v->label);
            char *p1 = hv_strfmt("%s/%s_%s_loss_map.png", png, cid, lv ? lv : "x");
            char *p2 = hv_strfmt("%s/%s_%s_loss_curve.png", png, cid, lv ? lv : "x");
            char *p3 = hv_strfmt("%s/%s_%s_loss_map.csv", png, cid, lv ? lv : "x");
            if (!p1 || !p2 || !p3) st = hv_error_set(HV_ERR_NOMEM, "paths");
            if (st == HV_OK) st = hv_measure_write_loss_map_png(p1, v);
            if (st == HV_OK) st = hv_measure_write_loss_curve_png(p2, v);
            if (st == HV_OK) st = hv_measure_write_loss_map_csv(p3, v);
            free(p1);
            free(p2);
            free(p3);
            if (st != HV_OK) goto fail;
        }
    }
    if (synth_dir) {
        st = hv_mkdir_p(synth_dir);
        if (st != HV_OK) goto fail;
        for (size_t i = 0; i < m->n; i++) {
            const hv_vert_measure *v = &m->v[i];
            if (!v->ori_map.h || !v->syn_map.h) continue;
            hv_volume *syn = NULL;
            st = hv_measure_synth_mask(mask, m, v->label, &syn);
            if (st != HV_OK) goto fail;
            const char *lv = hv_label_name(v->label);
            char *sp = hv_strfmt("%s/%s_%s_synth.nii.gz", synth_dir, cid, lv ? lv : "x");
            hv_nifti_write_opts wo;
            memset(&wo, 0, sizeof wo);
            wo.intent_label = 1;
            wo.descrip = "healthivert baseline pseudo-healthy mask";
            st = sp ? hv_io_nifti_write(sp, syn, &wo) : hv_error_set(HV_ERR_NOMEM, "path");
            free(sp);
            hv_vol_free(syn);
            if (st != HV_OK) goto fail;
        }
    }
    rc = HV_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "healthivert measure: %s: %s\n", hv_status_name(st), hv_error_detail());
    rc = HV_EXIT_FAIL;
done:
    hv_pipe_state_clear(&ps);
    hv_svm_grader_free(svm);
    return rc;
}
