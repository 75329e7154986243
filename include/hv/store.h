/*
 * hv/store.h: the run's HDF5 store (schema v1, docs/hdf5-schema.md) and the
 * per-rank journals that make it crash-safe.
 *
 * What a case produces is three fixed-layout row types (hv_run_crow per case,
 * hv_run_vrow per vertebra, gathered with optional images in hv_case_result).
 * The same bytes are used three ways: the in-memory result, the journal
 * record payload and the HDF5 compound types of the store (built from
 * offsetof, so memory and file layouts cannot drift apart).
 *
 * The store is laid out once, serially (hv_store_create), then every rank
 * opens it through MPI-IO (hv_store_open_mpi) and only writes raw data into
 * its own case slots (hv_store_put_case, status last). The journals
 * (hv_journal_*) are the truth for resuming: every finished case is appended
 * to its rank's journal, fsync'd, before it is written into the store, and
 * every start rebuilds the store from them. Reading a store (describe,
 * validate, export) needs no MPI communicator: those open it serially.
 *
 * Ownership: objects returned through `out` (hv_store, hv_journal) belong to
 * the caller and are released with the matching close (each accepts NULL).
 * Text returned as `char **` is freed with free(). Arrays returned through a
 * `**` pointer (hv_store_read_vertebrae) are freed with free(). Input
 * pointers (paths, rows, results, create info and its strings) are borrowed
 * for the duration of the call. A hv_case_result owns its `img` and `qc`
 * buffers: hv_case_result_clear frees them.
 */
#ifndef HV_STORE_H
#define HV_STORE_H

#include <mpi.h>
#include <stdint.h>

#include "hv/core.h"
#include "hv/measure.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Store schema version written to and required from /@schema_version. */
#define HV_STORE_SCHEMA_VERSION 1

/* ------------------------------------------------------------- row types */

/* Vertebra slots per case in the store: every VerSe label that has a level
 * (C1..L6 = 1..25, T13 = 28) fits. */
#define HV_RUN_MAX_VERT 26
/* Side of the per-vertebra images (height-loss map etc.), pixels. */
#define HV_RUN_IMG 32
/* Per-vertebra QC pictures of the spine stage (output.images = qc | full):
 * views x channels x QC x QC bytes. View 0 is the mid-sagittal, view 1 the
 * mid-coronal slice of the straightened crop (hv/spine.h layouts, row 0
 * cranial); channel 0 the windowed CT (0..255), channel 1 the target
 * vertebra's (de-pedicled) label, 255 inside, 0 outside. All zero: no QC
 * picture (the spine stage failed on that case or vertebra; the log says why). */
#define HV_RUN_QC 256
enum { HV_QC_SAG = 0, HV_QC_COR, HV_QC_VIEWS };
enum { HV_QC_CT = 0, HV_QC_LABEL, HV_QC_CHANNELS };
#define HV_RUN_QC_BYTES ((size_t)HV_QC_VIEWS * HV_QC_CHANNELS * HV_RUN_QC * HV_RUN_QC)

typedef enum hv_case_state {
    HV_CASE_PENDING = 0,
    HV_CASE_DONE = 1,
    HV_CASE_FAILED = 2
} hv_case_state;

/* "pending", "done", "failed", or "invalid" for any other value (static). */
const char *hv_case_state_name(int s);

/* Per-case stages whose seconds are recorded. */
enum {
    HV_STAGE_LOAD = 0,     /* read + validate NIfTI, centroids          */
    HV_STAGE_MEASURE,      /* heights on the mask                       */
    HV_STAGE_SYNTH,        /* pseudo-healthy heights (baseline | GAN)   */
    HV_STAGE_GRADE,        /* per-vertebra Genant rule grade            */
    HV_STAGE_IMAGES,       /* optional per-vertebra images, with the    */
                           /* spine stage and its QC pictures           */
    HV_STAGE_STORE,        /* journal + store writes                    */
    HV_STAGE_COUNT
};
extern const char *const hv_stage_names[HV_STAGE_COUNT];

/* Image planes per vertebra slot. */
enum { HV_IMG_LOSS = 0, HV_IMG_ORI, HV_IMG_SYN, HV_IMG_COUNT };

typedef struct hv_run_vrow {
    int32_t case_index;    /* row of /cases                              */
    int32_t label;         /* VerSe label                                */
    char level[8];         /* "T12"                                      */
    int32_t known_grade;   /* Genant grade from the split; -1 unknown    */
    int32_t split_set;     /* 0 train, 1 val, 2 test, -1 not in split    */
    int32_t grade_rule;    /* Genant rule on max(ant,mid,post) RHLV; -1  */
    int32_t grade_pred;    /* grader's prediction (gather); -1 before    */
    uint32_t flags;        /* HV_MEAS_*                                  */
    int32_t pad_;          /* keeps the doubles 8-aligned, always 0      */
    double volume_ml;
    double mean_hu;
    double centroid[3];    /* world mm                                   */
    double h_ori[HV_REG_COUNT];
    double h_syn[HV_REG_COUNT];
    double rhlv[HV_REG_COUNT];
} hv_run_vrow;

typedef struct hv_run_crow {
    char id[64];
    char ct_path[256];
    char mask_path[256];
    char error[256];       /* "" unless failed                           */
    int32_t error_code;    /* hv_status of the failure, 0 otherwise       */
    int32_t rank;          /* rank that ran it; -1 never run              */
    int32_t attempt;       /* run attempt that finished it; 0 never       */
    int32_t n_vert;        /* vertebra rows used in its slots            */
    double cost;           /* estimated cost (input bytes), for ordering */
    double seconds[HV_STAGE_COUNT];
} hv_run_crow;

/* The result of one case. */
typedef struct hv_case_result {
    int state;                        /* HV_CASE_DONE or HV_CASE_FAILED     */
    hv_run_crow c;
    hv_run_vrow v[HV_RUN_MAX_VERT];
    int n_img;                        /* image planes per vertebra (0, 1, 3) */
    float *img;                       /* owned; n_vert*n_img*IMG*IMG or NULL */
    uint8_t *qc;                      /* owned; n_vert*HV_RUN_QC_BYTES or NULL */
} hv_case_result;

/* Free img and qc and zero the whole result (a zeroed result is valid). */
void hv_case_result_clear(hv_case_result *r);

/* -------------------------------------------------------------- journals */

/* Append-only per-rank journal of finished cases. Every record is framed
 * (magic, length, CRC-32 of the payload) and fsync'd before the call
 * returns, so after a SIGKILL the journal ends with zero or one torn record,
 * which replay detects and cuts off. */
typedef struct hv_journal hv_journal;

/* File rank-RRRR.log, or shard-KKKK-rank-RRRR.log when shard >= 0. */
hv_status hv_journal_open(const char *dir, int shard, int rank, hv_journal **out);
hv_status hv_journal_append(hv_journal *j, const hv_case_result *r);
void hv_journal_close(hv_journal *j);

/* Replay every rank-*.log and shard-*.log under dir: for each case id the record of the
 * latest attempt wins. Torn tails are truncated away (so later appends stay
 * readable) and counted in *n_torn. Calls fn for every winning record. */
typedef hv_status (*hv_journal_fn)(void *user, const hv_case_result *r);
hv_status hv_journal_replay(const char *dir, hv_journal_fn fn, void *user,
                            long *n_records, long *n_torn);

/* ----------------------------------------------------------------- store */

typedef struct hv_store hv_store;

typedef struct hv_store_create_info {
    long n_cases;
    int n_img;                        /* image planes per vertebra          */
    const char *config_text;
    int ranks;
    int attempt;
    const char *started_utc;
    const char *input_root;
} hv_store_create_info;

/* Serial (one process): create `path` with every slot allocated, fill in the
 * case rows (ids, paths) with status pending. */
hv_status hv_store_create(const char *path, const hv_store_create_info *info,
                          const hv_run_crow *cases, hv_store **out);
/* Serial: write a finished case (rows, images, then status). */
hv_status hv_store_put_case(hv_store *s, long case_index, const hv_case_result *r);
/* Collective over comm: open for independent raw-data writes through MPI-IO. */
hv_status hv_store_open_mpi(const char *path, MPI_Comm comm, hv_store **out);
/* Serial read/write or read-only open (sec2 driver). */
hv_status hv_store_open_serial(const char *path, int writable, hv_store **out);
/* Close (collective when opened with hv_store_open_mpi). */
hv_status hv_store_close(hv_store *s);

long hv_store_n_cases(const hv_store *s);
int hv_store_n_img(const hv_store *s);
hv_status hv_store_read_cases(hv_store *s, hv_run_crow *rows, uint8_t *status);
/* Read the used vertebra rows of all done cases, in case order. */
hv_status hv_store_read_vertebrae(hv_store *s, hv_run_vrow **rows, size_t *n);
hv_status hv_store_set_pred(hv_store *s, const hv_run_vrow *rows, size_t n);
hv_status hv_store_set_attr_str(hv_store *s, const char *obj, const char *name,
                                const char *value);

/* Grader results as stored under /grader. */
typedef struct hv_grader_result {
    char method[16];                  /* "svm" | "rule"                       */
    char evaluated_on[16];            /* "val" | "all" | ""                   */
    char note[256];                   /* why svm fell back, etc.              */
    int have_metrics;
    hv_class_metrics m;
    int n_folds;
    double fold_metrics[16][4];       /* macro F1, P, R, accuracy per fold    */
    double mean[4], var[4];
} hv_grader_result;

hv_status hv_store_write_grader(hv_store *s, const hv_grader_result *g);
hv_status hv_store_read_grader(hv_store *s, hv_grader_result *g, int *present);

/* -------------------------------------------- describe, validate, export */

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
/* Export (hv_store_export_csv), and with qc_png the QC pictures of a store
 * made with output.images = qc | full as DIR/qc/<case>_<level>_{sag,cor}.png
 * (*n_png, may be NULL, counts them). The run's own output folder gets the
 * tables only: one PNG pair per vertebra is for a person looking, on demand. */
hv_status hv_store_export(const char *path, const char *dir, int qc_png, long *n_png);

#ifdef __cplusplus
}
#endif
#endif /* HV_STORE_H */
