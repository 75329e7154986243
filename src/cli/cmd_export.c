/*
 * cmd_export.c: `healthivert export STORE --csv DIR`: the store's tables as
 * CSV (cases.csv, vertebrae.csv, grader_metrics.csv, grader_folds.csv), one
 * tidy row per case and per vertebra, numbers printed round-trip exact, the
 * QC pictures of the store (if any) as PNGs under DIR/qc/ and its attention
 * maps (if any) as NIfTI volumes and PNGs under DIR/cam/, and the gan's
 * synthesized crops (if any) as NIfTI volumes under DIR/synth/, with a
 * picture of each synthesized vertebra beside the original.
 *
 * The store is validated first (hv_store_validate, what `inspect` checks):
 * tables exported from a damaged store would carry wrong values with nothing
 * to say so, so a store that fails validation is refused with its problems
 * listed, unless --force (then the problems are printed as a warning and the
 * tables written anyway).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/run.h"
#include "hv/store.h"

int hv_cmd_export(int argc, char **argv)
{
    const char *path = NULL, *dir = NULL;
    int force = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            printf("usage: healthivert export STORE.h5 --csv DIR [--force]\n"
                   "\n"
                   "The store is validated first (as `healthivert inspect` does); a store that\n"
                   "fails validation is refused (exit 1, its problems listed) unless --force.\n"
                   "\n"
                   "Writes the store's tables as CSV into DIR (created):\n"
                   "  cases.csv          one row per case: status, error, rank, seconds per stage\n"
                   "  vertebrae.csv      one row per vertebra of every done case: level, known\n"
                   "                     and predicted grades, flags, heights, RHLV\n"
                   "  grader_metrics.csv grader method, metrics and confusion matrix (if graded)\n"
                   "  grader_folds.csv   per-fold metrics of the SVM protocol (if it ran)\n"
                   "  qc/<case>_<level>_sag.png, _cor.png\n"
                   "                     QC pictures of every vertebra (stores of a run with\n"
                   "                     output.images = qc or full): straightened CT, the\n"
                   "                     vertebra's contour in red; none where the spine stage\n"
                   "                     failed\n"
                   "  cam/<case>_<level>_cam.nii.gz\n"
                   "                     the attention map of every vertebra that has one\n"
                   "                     (stores of a run with attention.store = full):\n"
                   "                     float32 in [0, 1] (the stored byte / 255), 64 LR x\n"
                   "                     256 AP x 256 rows as in the store, identity affine\n"
                   "                     (the store keeps no world position of a crop)\n"
                   "  cam/<case>_<level>_cam.png\n"
                   "                     the map's slice cam_max_slice in the JET colour map:\n"
                   "                     over the CT (alpha 0.4) when that is the QC picture's\n"
                   "                     sagittal slice (LR 32), the only CT the store holds;\n"
                   "                     the map alone otherwise\n"
                   "  cam/<case>_<level>_cam_qc.png\n"
                   "                     the map's LR slice 32 over the QC picture's CT at\n"
                   "                     alpha 0.4 (only for a vertebra with a QC picture)\n"
                   "  synth/<case>_<level>_label.nii.gz, _ct.nii.gz\n"
                   "                     the gan's synthesized label crop (and CT crop) of\n"
                   "                     every vertebra it synthesized (stores of a run with\n"
                   "                     synthesis.crops = masks, or full for the CT too):\n"
                   "                     uint8 as stored, 64 LR x 256 AP x 256 rows, identity\n"
                   "                     affine; none for a vertebra flagged synth_fallback\n"
                   "  synth/<case>_<level>_orig_ct.nii.gz, _orig_label.nii.gz\n"
                   "                     with synthesis.crops = full, the original crops the\n"
                   "                     synthesized ones are scored against (the CT as\n"
                   "                     synth_ct, the target's de-pedicled body label)\n"
                   "  synth/<case>_<level>_qc.png\n"
                   "                     the synthesized vertebra beside the original (only\n"
                   "                     for one with a QC picture): the QC picture's\n"
                   "                     sagittal CT (LR 32) left, that slice of the\n"
                   "                     synthesized CT right (the original again with\n"
                   "                     synthesis.crops = masks), the original label's\n"
                   "                     outline in red, the synthesized label's in cyan\n"
                   "Numbers are printed with 17 significant digits (exact); NaN is 'nan'.\n");
            return HV_EXIT_OK;
        }
        if (!strcmp(argv[a], "--csv") && a + 1 < argc) dir = argv[++a];
        else if (!strcmp(argv[a], "--force")) force = 1;
        else if (!path && argv[a][0] != '-') path = argv[a];
        else {
            fprintf(stderr, "healthivert export: unexpected argument '%s'\n", argv[a]);
            return HV_EXIT_USAGE;
        }
    }
    if (!path || !dir) {
        fprintf(stderr, "usage: healthivert export STORE.h5 --csv DIR [--force]\n");
        return HV_EXIT_USAGE;
    }
    if (hv_file_check_regular(path, "store") != HV_OK) {
        fprintf(stderr, "healthivert export: %s\n", hv_error_detail());
        return HV_EXIT_FAIL;
    }
    char *report = NULL;
    if (hv_store_validate(path, &report) != HV_OK) {
        fprintf(stderr, "healthivert export: %s%s\n%s", force ? "warning: " : "",
                hv_error_detail(), report ? report : "");
        free(report);
        if (!force) {
            fprintf(stderr, "healthivert export: the store fails validation: nothing exported "
                            "(--force exports it anyway)\n");
            return HV_EXIT_FAIL;
        }
    } else {
        free(report);
    }
    long n_png = 0, n_cam = 0, n_synth = 0;
    if (hv_store_export(path, dir,
                        HV_STORE_EXPORT_QC | HV_STORE_EXPORT_CAM | HV_STORE_EXPORT_SYNTH, &n_png,
                        &n_cam, &n_synth) != HV_OK) {
        fprintf(stderr, "healthivert export: %s\n", hv_error_detail());
        return HV_EXIT_FAIL;
    }
    printf("exported %s to %s/ (%ld QC pictures, %ld attention maps, %ld synthesized crops)\n",
           path, dir, n_png, n_cam, n_synth);
    return HV_EXIT_OK;
}
