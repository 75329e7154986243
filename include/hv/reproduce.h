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
 * on healthy levels, on the mid-sagittal slice the store keeps of the
 * original (docs/reproduce.md, "Synthesis quality"). */
#define HV_REPRO_PSNR_CAP 100.0 /* dB: PSNR of identical patches (+inf) */

typedef struct hv_repro_qrow {
    char method[32];
    int ok;                /* 1: ran and its store was read                   */
    char reason[512];      /* !ok: why                                        */
    int applicable;        /* 1: the store has synthesized CT crops and QC    */
    int graded;            /* 1: healthy = known grade 0; 0: every level      */
    long n_cases, n_failed_cases;
    long n_vertebrae;      /* rows in the method's store                      */
    long n_healthy;        /* of them healthy levels                          */
    long n_scored;         /* of those with a synthesized crop and a QC slice */
    long n_unscored;       /* healthy levels not scored (note says why)       */
    double mean[3], var[3];/* PSNR, SSIM, Dice: mean, population variance     */
    char note[512];        /* why not applicable, or what was not scored      */
} hv_repro_qrow;

/* One vertebra on the QC grid (HV_RUN_QC x HV_RUN_QC bytes each, row-major):
 * the original slice's CT and target label (nonzero inside), the
 * synthesized slice's CT and target label (nonzero inside). out: PSNR
 * (capped at HV_REPRO_PSNR_CAP) and SSIM over the rows holding the original
 * target (all columns; data range = max - min of the original slice), Dice
 * of the two labels over the slice. HV_ERR_EMPTY (out NaN) when the
 * original has no target, a uniform CT, or a target under 7 rows. */
hv_status hv_repro_quality_slice(const uint8_t *orig_ct, const uint8_t *orig_lab,
                                 const uint8_t *syn_ct, const uint8_t *syn_lab, double out[3]);
/* Fill row's counts and numbers (not method, ok, reason, n_cases,
 * n_failed_cases) from a finished run's store, writing the per-vertebra
 * values to csv_path (case, level, label, known_grade, psnr, ssim, dice;
 * whole or absent). A store without synthesized CT crops or QC pictures
 * gives applicable = 0 and the reason in note (HV_OK). */
hv_status hv_repro_quality_read(const char *store_path, const char *csv_path, hv_repro_qrow *row);
/* Write dir/table.csv, table.md and table.png of the quality rows. */
hv_status hv_repro_write_quality(const char *dir, const hv_repro_qrow *rows, int n,
                                 const char *dataset_note);

#ifdef __cplusplus
}
#endif
#endif /* HV_REPRODUCE_H */
