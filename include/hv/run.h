/*
 * hv/run.h: the cohort runner: configuration and the MPI batch run. The
 * run's HDF5 store and journals are hv/store.h.
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

/* ----------------------------------------------------------- configuration */

typedef struct hv_run_config hv_run_config;

/* The type of a configuration key's value. Every value is parsed strictly:
 * the whole text must be one value of the type, within the key's range or
 * among its choices; anything else is an error naming the key, the value and
 * what is allowed (and file:line when it came from a file). */
typedef enum hv_run_key_type {
    HV_KEY_INT = 0,  /* decimal integer in [min, max]                         */
    HV_KEY_DOUBLE,   /* finite decimal number in [min, max] ((min, max] with   */
                     /* min_open)                                             */
    HV_KEY_DOUBLE3,  /* one number (used for all three) or "x,y,z", each in   */
                     /* the range                                             */
    HV_KEY_STRING,   /* free text shorter than the field                      */
    HV_KEY_CHOICE,   /* exactly one of `choices`; parsed as its index         */
    HV_KEY_PATH,     /* a path shorter than the field (may be empty)          */
    HV_KEY_BOOL,     /* exactly 0 or 1                                        */
    HV_KEY_LEVEL     /* a vertebra level name (C1..C7, T1..T13, L1..L6),      */
                     /* parsed as its VerSe label                             */
} hv_run_key_type;

/* One configuration key: the single table (hv_run_config_keys) drives
 * parsing, range checks, `run --keys`, the canonical provenance text and the
 * journal-compatibility text. All strings are static. */
typedef struct hv_run_key {
    const char *section;
    const char *key;
    const char *def;     /* default value as text ("" = empty)               */
    const char *help;
    hv_run_key_type type;
    double min, max;     /* INT, DOUBLE, DOUBLE3: allowed range              */
    int min_open;        /* 1: min itself is not allowed                     */
    const char *const *choices; /* CHOICE: NULL-terminated list             */
    int results;         /* 1: the value changes per-case results (a journal */
                         /* written under another value cannot be resumed); */
                         /* 2: the same, for a key added after journals     */
                         /* existed: it joins the compatibility text only   */
                         /* when not at its default, so that text (and the  */
                         /* resume of an older run) stays as it was         */
    size_t offset, size; /* where the parsed value goes in the runner's      */
                         /* private parameter struct, and its size          */
} hv_run_key;

/* The table of every key, in canonical order; *n receives its length. */
const hv_run_key *hv_run_config_keys(size_t *n);
/* What `k` accepts, in words ("an integer in [1, 10000000]", "one of: ras,
 * lps, pir, oblique"), into buf (always NUL-terminated, truncated to cap). */
void hv_run_key_allowed(const hv_run_key *k, char *buf, size_t cap);

/* A configuration holding every key at its default. */
hv_status hv_run_config_new(hv_run_config **out);
/* Read an INI file over the defaults. `path` must be a regular file
 * (a directory, FIFO or device is refused with what it is). Unknown sections
 * or keys, malformed lines and a key given twice are HV_ERR_FORMAT; a bad
 * value is HV_ERR_ARG; every message starts with "PATH:LINE: ". */
hv_status hv_run_config_load(const char *path, hv_run_config **out);
/* The same from INI text in memory (`len` bytes, NUL bytes are an error);
 * `name` (borrowed, may be NULL) stands for the file in messages. The entry
 * point for fuzzing the parser. */
hv_status hv_run_config_parse(const char *text, size_t len, const char *name,
                              hv_run_config **out);
/* Apply one "section.key=value" override (--set): it replaces a value from
 * the file; the same key twice through this call is HV_ERR_ARG. The value is
 * checked like a file value. */
hv_status hv_run_config_set(hv_run_config *c, const char *assignment);
/* The same parser over another command's key table (`table`, static, n
 * keys; e.g. hv_train_config_keys): new with every key at its default, load
 * from a file. hv_run_config_set, _get, _text and _free work on such a
 * configuration too; hv_run_config_check is for the run's table only. */
hv_status hv_run_config_new_table(const hv_run_key *table, size_t n, hv_run_config **out);
hv_status hv_run_config_load_table(const hv_run_key *table, size_t n, const char *path,
                                   hv_run_config **out);
/* The same from INI text in memory over another table (as
 * hv_run_config_parse). */
hv_status hv_run_config_parse_table(const hv_run_key *table, size_t n, const char *text,
                                    size_t len, const char *name, hv_run_config **out);
/* Parse every value of c into the struct at dst (size bytes) through the
 * offsets of its table (memset to 0 first). HV_ERR_ARG naming a bad value. */
hv_status hv_run_config_fill(const hv_run_config *c, void *dst, size_t size);
/* Check what single values cannot: input.source = dataset needs
 * input.dataset, input.source = manifest needs input.manifest, output.dir is not empty, run.shard_index < run.shard_count.
 * HV_ERR_ARG with the keys named. */
hv_status hv_run_config_check(const hv_run_config *c);
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
    char solver[16];       /* svm: the solver that ran ("libsvm", "liblinear") */
    int have_metrics;      /* grader metrics below are valid                  */
    double macro_f1, accuracy, kappa;
    char store_path[1024];
    char out_dir[1024];
    /* prepare.enabled: the training set file and its counts (empty path and
     * zeros when not written: prepare off, interrupted or sharded) */
    char train_path[1024];
    long n_train_items, n_train_skipped;
} hv_run_summary;

/* Run (or resume) the cohort described by `c`. Collective over `comm`; every
 * rank must call it with the same configuration. Returns HV_OK when the run
 * went through to the end (cases may have failed: see the summary),
 * HV_ERR_INTERRUPTED when a stop was requested (the store is closed cleanly
 * and re-running resumes), another status for a fatal error. */
hv_status hv_run_execute(const hv_run_config *c, MPI_Comm comm, hv_run_summary *out);

/* hv_run_execute with another table of stages (`t`, borrowed; hv/pipeline.h):
 * tests and experiments add a stage this way, and it is timed, logged and
 * stored by its name like the default ones. */
struct hv_pipe_table;
hv_status hv_run_execute_with(const hv_run_config *c, MPI_Comm comm,
                              const struct hv_pipe_table *t, hv_run_summary *out);

/* Ask the run to stop taking cases (finish the ones in flight, flush, close).
 * Async-signal-safe: call it from a SIGTERM/SIGUSR1 handler. */
void hv_run_request_stop(void);
/* Nonzero once a stop was requested. */
int hv_run_stop_requested(void);

/* ------------------------------------------------------------- training */

/* `healthivert train` (src/mpi/train_run.c): data-parallel training of the
 * HealthiVert GAN from a training file (hv/model.h, hv/train.h). Its
 * configuration is a [train] section read with hv_run_config_load_table over
 * this table (docs: configs/README.md, `healthivert train --keys`). */
const hv_run_key *hv_train_config_keys(size_t *n);

/* What a training did (rank 0 has the validation numbers). The metrics are
 * hv_train_metrics' fields: n, band_l1, psnr, ssim, dice, height_err_pct. */
typedef struct hv_train_summary {
    long long step_start, step_end, total_steps, steps_per_epoch;
    long n_train, n_val;
    int resumed, interrupted, have_val;
    double seconds;
    double losses[10];           /* the last step's: g_total, g_gan, g_l1,        */
                                 /* g_dice_fine, g_dice_coarse, g_edge, g_height, */
                                 /* d1, d2, d3                                    */
    double copy_input[6], untrained[6], last[6]; /* n, band_l1, psnr, ssim, dice,  */
                                                 /* height_err_pct                 */
    char out_dir[1024];
} hv_train_summary;

/* Train (or resume) as configured. Collective over comm: every rank calls it
 * with the same configuration. HV_OK when the last step is done,
 * HV_ERR_INTERRUPTED after hv_run_request_stop (a checkpoint was written:
 * re-running resumes), another status for an error (also the same on every
 * rank: a refused input, a non-finite loss (HV_ERR_NUMERIC), a checkpoint
 * that could not be written). */
hv_status hv_train_execute(const hv_run_config *c, MPI_Comm comm, hv_train_summary *out);

/* `healthivert train CONFIG --validate-model FILE` (src/mpi/train_validate.c):
 * one validation of the generator in model file FILE on the val items of
 * the config's train.file, as a training validates (hv/train.h): rows[0]
 * the copy-the-input baseline, rows[1] the model (method "model"); steps
 * and epochs 0. Nothing is written. One process (HV_ERR_ARG under several
 * ranks); a file of another width than train.cnum or another plane than
 * train.plane is refused naming both. rows: caller's, 2 entries. */
struct hv_train_val_row;
hv_status hv_train_validate_model(const hv_run_config *c, MPI_Comm comm, const char *model_path,
                                  struct hv_train_val_row *rows);

/* `healthivert train-classifier` (src/mpi/cls_train_run.c): the fracture
 * classifier (hv/train.h "the fracture classifier"), data parallel like
 * hv_train_execute, with the same checkpoint, resume and stop policy. Its
 * [classifier] keys: */
const hv_run_key *hv_train_cls_config_keys(size_t *n);

typedef struct hv_train_cls_summary {
    long long step_start, step_end, total_steps, steps_per_epoch;
    long n_train, n_pos, n_neg, n_unknown, n_val;
    int resumed, interrupted, have_val;
    double seconds, loss;        /* the last step's mean cross entropy            */
    /* first (untrained, step 0) and last validation: n_items, auc,
     * sensitivity, specificity, recall g0..g3, loss */
    double untrained[9], last[9];
    long long last_val_step;
    char out_dir[1024];
    char model[1100];            /* the exported model (OUTPUT/classifier.h5)     */
} hv_train_cls_summary;

/* Train (or resume) as configured; collective over comm, statuses as
 * hv_train_execute. At the end rank 0 exports OUTPUT/classifier.h5. */
hv_status hv_train_cls_execute(const hv_run_config *c, MPI_Comm comm, hv_train_cls_summary *out);

#ifdef __cplusplus
}
#endif
#endif /* HV_RUN_H */
