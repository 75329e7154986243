/*
 * hv/run.h: the cohort runner: configuration, the MPI batch run, and the
 * run's HDF5 store (schema v1, docs/hdf5-schema.md).
 *
 * A run is described by an INI file (configs/example.ini documents every
 * key) plus `section.key=value` overrides. hv_run_execute is called by every
 * rank of an MPI communicator (a single process without mpirun is a valid
 * run): rank 0 builds the manifest and broadcasts it; cases are handed out
 * largest first through an MPI RMA fetch-and-add counter; every finished case
 * is appended to a per-rank checksummed journal (fsync'd) and then written
 * into the shared HDF5 file with independent MPI-IO writes, its status last.
 * The journals are the truth for resuming: every start rebuilds the store
 * from them, so a run killed at any moment (even SIGKILL) resumes losing at
 * most the cases that were in flight. After the last case rank 0 trains and
 * evaluates the grader and writes the output folder.
 *
 * The per-case work itself lives in plain C functions of the other modules
 * (io, measure, phantom); only this module knows MPI.
 *
 * Ownership: objects returned through `out` belong to the caller and are
 * freed with the matching *_free (each accepts NULL); strings returned as
 * `char **` are freed with free().
 */
#ifndef HV_RUN_H
#define HV_RUN_H

#include <mpi.h>

#include "hv/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Store schema version written to and required from /@schema_version. */
#define HV_STORE_SCHEMA_VERSION 1

/* ----------------------------------------------------------- configuration */

typedef struct hv_run_config hv_run_config;

/* One documented configuration key (for --help and configs/example.ini). */
typedef struct hv_run_key {
    const char *section;
    const char *key;
    const char *def;     /* default value as text ("" = empty)               */
    const char *help;
} hv_run_key;

/* The table of every key, in canonical order; *n receives its length. */
const hv_run_key *hv_run_config_keys(size_t *n);

/* A configuration holding every key at its default. */
hv_status hv_run_config_new(hv_run_config **out);
/* Read an INI file over the defaults. Unknown sections or keys are
 * HV_ERR_FORMAT (a typo must not be silently ignored). */
hv_status hv_run_config_load(const char *path, hv_run_config **out);
/* Apply one "section.key=value" override. */
hv_status hv_run_config_set(hv_run_config *c, const char *assignment);
/* Current value (never NULL for a known key; NULL for an unknown one). The
 * string belongs to the config. */
const char *hv_run_config_get(const hv_run_config *c, const char *section,
                              const char *key);
/* The effective configuration as canonical INI text (every key, fixed
 * order); free() it. NULL on allocation failure. */
char *hv_run_config_text(const hv_run_config *c);
void hv_run_config_free(hv_run_config *c);

/* ---------------------------------------------------------------- the run */

/* What a run did, filled on every rank (values are global). */
typedef struct hv_run_summary {
    long n_cases;          /* cases in the manifest                           */
    long n_done;           /* cases with status done at the end               */
    long n_failed;         /* cases with status failed                        */
    long n_pending;        /* cases not finished (interrupted run)            */
    long n_resumed;        /* cases already finished by an earlier attempt    */
    long n_vertebrae;      /* vertebra rows of done cases                     */
    int interrupted;       /* stopped by hv_run_request_stop: resumable       */
    int attempt;           /* 1 for a fresh run, +1 per resume                */
    double seconds;        /* wall time of this attempt                       */
    char grader[16];       /* "svm", "rule" or "" (not graded)                */
    int have_metrics;      /* grader metrics below are valid                  */
    double macro_f1, accuracy, kappa;
    char store_path[1024];
    char out_dir[1024];
} hv_run_summary;

/* Run (or resume) the cohort described by `c`. Collective over `comm`; every
 * rank must call it with the same configuration. Returns HV_OK when the run
 * went through to the end (cases may have failed: see the summary),
 * HV_ERR_INTERRUPTED when a stop was requested (the store is closed cleanly
 * and re-running resumes), another status for a fatal error. */
hv_status hv_run_execute(const hv_run_config *c, MPI_Comm comm, hv_run_summary *out);

/* Ask the run to stop taking cases (finish the ones in flight, flush, close).
 * Async-signal-safe: call it from a SIGTERM/SIGUSR1 handler. */
void hv_run_request_stop(void);
/* Nonzero once a stop was requested. */
int hv_run_stop_requested(void);

/* ------------------------------------------------------------------ store */

/* Summary of a store as human-readable text (schema version, provenance,
 * counts, failures with reasons, grader results). free() the text. */
hv_status hv_store_describe(const char *path, char **text);
/* Check a store against schema v1 (docs/hdf5-schema.md): every object,
 * type, shape, value range and cross-reference. HV_OK when valid; otherwise
 * HV_ERR_FORMAT, and *report (may be NULL) lists every problem found. */
hv_status hv_store_validate(const char *path, char **report);
/* Write cases.csv, vertebrae.csv and (when graded) grader_metrics.csv and
 * grader_folds.csv into `dir` (created). */
hv_status hv_store_export_csv(const char *path, const char *dir);

#ifdef __cplusplus
}
#endif
#endif /* HV_RUN_H */
