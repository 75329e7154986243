/*
 * cmd_export.c: `healthivert export STORE --csv DIR`: the store's tables as
 * CSV (cases.csv, vertebrae.csv, grader_metrics.csv, grader_folds.csv), one
 * tidy row per case and per vertebra, numbers printed round-trip exact, and
 * the QC pictures of the store (if any) as PNGs under DIR/qc/.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "hv/run.h"

int hv_cmd_export(int argc, char **argv)
{
    const char *path = NULL, *dir = NULL;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            printf("usage: healthivert export STORE.h5 --csv DIR\n"
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
                   "Numbers are printed with 17 significant digits (exact); NaN is 'nan'.\n");
            return HV_EXIT_OK;
        }
        if (!strcmp(argv[a], "--csv") && a + 1 < argc) dir = argv[++a];
        else if (!path && argv[a][0] != '-') path = argv[a];
        else {
            fprintf(stderr, "healthivert export: unexpected argument '%s'\n", argv[a]);
            return HV_EXIT_USAGE;
        }
    }
    if (!path || !dir) {
        fprintf(stderr, "usage: healthivert export STORE.h5 --csv DIR\n");
        return HV_EXIT_USAGE;
    }
    if (hv_store_export_csv(path, dir) != HV_OK) {
        fprintf(stderr, "healthivert export: %s\n", hv_error_detail());
        return HV_EXIT_FAIL;
    }
    printf("exported %s to %s/\n", path, dir);
    return HV_EXIT_OK;
}
