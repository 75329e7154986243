/*
 * hv/reproduce.h: `healthivert reproduce`, the seed paper's comparison
 * table from one command (docs/reproduce.md).
 *
 * A reproduce configuration is a run configuration (hv/run.h) plus a
 * [reproduce] section: methods (registered synthesis methods, the choices of
 * synthesis.method), output (the folder of the table; each method's run goes
 * to <output>/<method>/) and published (which published numbers to print
 * beside ours). For each method the run is executed (or resumed: the run's
 * own journals) with synthesis.method set, graded by the gather step's SVM
 * protocol (spec section 10), and its grader result read back from its store;
 * then rank 0 writes <output>/table.csv, table.md and table.png.
 *
 * Ownership: hv_repro objects belong to the caller (hv_repro_free accepts
 * NULL); every string argument is borrowed.
 */
#ifndef HV_REPRODUCE_H
#define HV_REPRODUCE_H

#include <mpi.h>

#include "hv/core.h"
#include "hv/run.h"
#include "hv/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hv_repro hv_repro;

/* The keys of the [reproduce] section (for --keys); *n their count. */
const hv_run_key *hv_repro_config_keys(size_t *n);

/* Read CONFIG.ini: the [reproduce] section over its table, every other
 * section as a run configuration (same strictness and PATH:LINE messages). */
hv_status hv_repro_load(const char *path, hv_repro **out);
/* One --set: reproduce.* into the [reproduce] keys, anything else into the
 * run configuration every method starts from. synthesis.method and
 * output.dir are the command's to set (HV_ERR_ARG). */
hv_status hv_repro_set(hv_repro *r, const char *assignment);
/* Everything that can be checked before a run starts: methods (known,
 * not repeated, at least one), output set, grader.method not rule,
 * output.store empty, and each method's run configuration
 * (hv_run_config_check: e.g. gan without synthesis.model). HV_ERR_ARG naming
 * the key; for an unknown method the message lists the known ones. */
hv_status hv_repro_check(hv_repro *r);
/* The output folder (reproduce.output): made (mkdir -p) and checked to be
 * writable (HV_ERR_IO naming it and why). */
hv_status hv_repro_prepare_output(const hv_repro *r);
void hv_repro_free(hv_repro *r);

/* Counts over the methods after hv_repro_execute. */
typedef struct hv_repro_summary {
    int n_methods, n_ok, n_failed; /* failed: the run or its grading failed  */
    int n_partial;                 /* ran, but some cases of it failed        */
    int quality;                   /* 1: the synthesis-quality table          */
    char table_dir[1024];
} hv_repro_summary;

/* Run every method in order, collective over comm (every rank with the same
 * configuration), progress on stderr (rank 0), then rank 0 writes the table.
 * A method whose run fails is recorded as failed with the reason and the
 * others still run. HV_OK when the table was written (see the summary for
 * failed methods); HV_ERR_INTERRUPTED after hv_run_request_stop (re-running
 * resumes; no table written); another status when the table could not be
 * written. */
hv_status hv_repro_execute(hv_repro *r, MPI_Comm comm, hv_repro_summary *out);

/* ------------------------------------------------------------- the table
 * (repro_table.c; no MPI). One row per method. */
typedef struct hv_repro_row {
    char method[32];
    int ok;                /* 1: ran and graded; g is valid                   */
    char reason[512];      /* !ok: why                                        */
    long n_cases, n_failed_cases;
    long n_vertebrae;      /* rows in the method's store                      */
    long n_synth_fallback; /* of them flagged synth_fallback: the gan kept    */
                           /* the baseline's values there                     */
    hv_grader_result g;
} hv_repro_row;

/* The published set to print beside ours: 0 none, 1 VerSe 2019 (spec 13). */
enum { HV_REPRO_PUBLISHED_NONE = 0, HV_REPRO_PUBLISHED_VERSE19 = 1 };

/* Write dir/table.csv, table.md and table.png (each whole or absent). */
hv_status hv_repro_write_table(const char *dir, const hv_repro_row *rows, int n, int published,
                               const char *dataset_note);

/* ---------------------------------------------- synthesis quality
 * (repro_quality.c; no MPI): reproduce.table = quality, for data without
 * grades. One row per method: the synthesized vertebra against the real one
 * on healthy levels, from the synthesized and the original crops the store
 * keeps (synthesis.crops = full), as spec 11 (docs/reproduce.md,
 * "Synthesis quality"). */
#define HV_REPRO_PSNR_CAP 100.0 /* dB: PSNR of identical patches (+inf) */
#define HV_REPRO_MIN_PIXELS 400 /* a scored LR slice has more target pixels */

/* The measures, in the order of hv_repro_qrow's and hv_repro_qvert's q. */
typedef enum hv_repro_q {
    HV_REPRO_Q_PATCH_PSNR = 0,  /* dB, capped at HV_REPRO_PSNR_CAP            */
    HV_REPRO_Q_PATCH_SSIM = 1,
    HV_REPRO_Q_GLOBAL_PSNR = 2, /* dB, capped                                 */
    HV_REPRO_Q_GLOBAL_SSIM = 3,
    HV_REPRO_Q_DICE = 4,        /* 3-D, of the target label                   */
    HV_REPRO_Q_IOU = 5,
    HV_REPRO_Q_RVD = 6,         /* | |A| - |B| | / |A|, A the original target  */
    HV_REPRO_NQ = 7
} hv_repro_q;
/* "patch_psnr", "patch_ssim", "global_psnr", "global_ssim", "dice", "iou",
 * "rvd" (static; the CSV columns' stem); NULL for another value. */
const char *hv_repro_quality_name(int q);

typedef struct hv_repro_qrow {
    char method[32];
    int ok;                /* 1: ran and its store was read                   */
    char reason[512];      /* !ok: why                                        */
    int applicable;        /* 1: the store has synthesized CT crops           */
    int graded;            /* 1: healthy = known grade 0; 0: every level      */
    long n_cases, n_failed_cases;
    long n_vertebrae;      /* rows in the method's store                      */
    long n_healthy;        /* of them healthy levels                          */
    long n_scored;         /* of those scored (hv_repro_quality_vertebra)     */
    long n_unscored;       /* healthy levels not scored (note says why)       */
    double mean[HV_REPRO_NQ], var[HV_REPRO_NQ]; /* mean, population variance  */
    char note[512];        /* why not applicable, or what was not scored      */
} hv_repro_qrow;

/* One vertebra's measures (spec 11). */
typedef struct hv_repro_qvert {
    double q[HV_REPRO_NQ];
    int lr_first, lr_last; /* the central 80 % of the original target's LR   */
                           /* extent (-1 without a target)                    */
    int n_slices;          /* of them, those with > HV_REPRO_MIN_PIXELS       */
                           /* target pixels: the 2-D measures' slices         */
} hv_repro_qvert;

/* One vertebra from its four u8 crops (borrowed, dim[0] LR x dim[1] AP x
 * dim[2] rows, i fastest: voxel (i, j, k) at (k dim[1] + j) dim[0] + i, the
 * store's crop layout): the original CT and label crops and the synthesized
 * ones; the target is the voxels holding `label` in each label crop.
 * 3-D: Dice, IoU and RVD of the two targets (Dice and IoU 0 when both are
 * empty, RVD 0 when the original is, as the seed). 2-D: the LR slices
 * i0 + (n - floor(4n/5)) / 2 ... + floor(4n/5) - 1 (the central 80 % of the
 * original target's LR extent i0..i0+n-1, integer division) whose original
 * target has more than HV_REPRO_MIN_PIXELS pixels; on each, PSNR and SSIM
 * (hv_metrics_psnr, hv_metrics_ssim) of the "patch" (the rows k the original
 * target spans on that slice, every AP column; data range = max - min of the
 * original patch) and of the whole slice (data range of the original
 * slice); a PSNR of +inf (equal) counts as HV_REPRO_PSNR_CAP; a measure is
 * NaN on a slice whose original has no data range, and SSIM on fewer than 7
 * rows or columns; the per-vertebra value is the mean of a measure over its
 * non-NaN slices, 0 when it has none. HV_OK: scored. HV_ERR_EMPTY (the
 * error detail says why; out filled as far as computed): not scored, as
 * spec 11 drops it: the original has no target, or the patch PSNR or SSIM
 * is 0 or NaN (no slice qualifies). HV_ERR_ARG for bad dims, HV_ERR_NOMEM. */
hv_status hv_repro_quality_vertebra(const uint8_t *orig_ct, const uint8_t *orig_lab,
                                    const uint8_t *syn_ct, const uint8_t *syn_lab, int label,
                                    const int64_t dim[3], hv_repro_qvert *out);
/* Fill row's counts and numbers (not method, ok, reason, n_cases,
 * n_failed_cases) from a finished run's store, writing the per-vertebra
 * values of the scored vertebrae to csv_path (case, level, label,
 * known_grade, slices, then hv_repro_quality_name's columns; whole or
 * absent). A store without synthesized CT crops gives applicable = 0 and
 * the reason in note (HV_OK); one with them but without the original crops
 * (/vertebrae/orig_ct, orig_label: a store of an older build) is
 * HV_ERR_UNSUPPORTED, the detail saying what to run again. */
hv_status hv_repro_quality_read(const char *store_path, const char *csv_path, hv_repro_qrow *row);
/* Write dir/table.csv, table.md and table.png of the quality rows. */
hv_status hv_repro_write_quality(const char *dir, const hv_repro_qrow *rows, int n,
                                 const char *dataset_note);

#ifdef __cplusplus
}
#endif
#endif /* HV_REPRODUCE_H */
