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

#ifdef __cplusplus
}
#endif
#endif /* HV_REPRODUCE_H */
