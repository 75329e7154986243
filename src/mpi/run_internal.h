/*
 * run_internal.h: types shared by the files of src/mpi (not public).
 *
 * The per-case stage interface lives here: a case goes in (paths), the
 * vertebra rows, per-stage seconds and optional images come out. The MPI
 * layer (run.c, queue.c) only decides which case a rank works on and where
 * its result goes; the stage functions know nothing of MPI.
 *
 * Rows are fixed-layout structs used three ways with the same bytes: the
 * in-memory result, the journal record payload, and the HDF5 compound type of
 * the store (store.c builds the compound from offsetof, so memory and file
 * layouts cannot drift apart).
 */
#ifndef HV_RUN_INTERNAL_H
#define HV_RUN_INTERNAL_H

#include <stdint.h>

#include "hv/core.h"
#include "hv/io.h"
#include "hv/measure.h"
#include "hv/run.h"

/* ------------------------------------------------------ configuration */

/* The typed run parameters, filled by hv_run_config_params from the key
 * table in config.c (each key names its field through offsetof). INT, BOOL,
 * CHOICE (index into the key's choices) and LEVEL (VerSe label) are int;
 * DOUBLE double; DOUBLE3 double[3]; PATH and STRING char arrays. */
typedef struct hv_run_params {
    /* [input] */
    int source;                 /* 0 phantom, 1 dataset                      */
    char dataset[900];
    char split[1024];
    int check_headers;
    /* [phantom] */
    int pcases, pseed, first_label, last_label;
    double spacing[3];
    int orientation;            /* hv_phantom_orient order                   */
    double fracture_rate, scoliosis_rate, noise_hu;
    /* [measure] */
    double min_volume_ml;
    int lateral_rays;
    double lateral_frac, map_step_mm, deform_thresh;
    int max_ref_distance, use_centroids;
    /* [synthesis] */
    int synth;                  /* 0 baseline                                */
    /* [grader] */
    int grader;                 /* 0 auto, 1 svm, 2 rule                     */
    int folds, gseed;
    /* [output] */
    char out_dir[900];
    char store[1024];
    int images;                 /* 0 none, 1 qc, 2 full                      */
    /* [run] */
    int threads;
    double progress_interval;
    int retry_failed, fresh;
    int order;                  /* 0 largest, 1 index                        */
    int shard_index, shard_count;
} hv_run_params;

/* Parse every value of `c` into *p and run hv_run_config_check. */
hv_status hv_run_config_params(const hv_run_config *c, hv_run_params *p);
/* "section.key=value\n" for every key that changes results (the journal
 * compatibility text), in table order; NULL on allocation failure. */
char *hv_run_config_results_text(const hv_run_config *c);
/* "key=value\n" for every key of one section (the phantom cohort's
 * options file); NULL on allocation failure. */
char *hv_run_config_section_text(const hv_run_config *c, const char *section);

/* A growable string: text is appended with hv_sbuf_printf; after an
 * allocation failure `oom` is set and later appends do nothing. Start from
 * {0}; hv_sbuf_take hands the text over (NULL after a failure) and resets. */
typedef struct hv_sbuf {
    char *s;
    size_t len, cap;
    int oom;
} hv_sbuf;

void hv_sbuf_printf(hv_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *hv_sbuf_take(hv_sbuf *b);
void hv_sbuf_free(hv_sbuf *b);

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

void hv_case_result_clear(hv_case_result *r);

/* ------------------------------------------------------------ the stages */

/* A synthesis method: fills h_syn, syn_map, rhlv of every vertebra. The
 * baseline is the only one today; the GAN plugs in here. */
typedef struct hv_synth_method {
    const char *name;
    hv_status (*synth)(hv_spine_measure *m, const hv_measure_opts *o, void *ctx);
    void *ctx;
} hv_synth_method;

hv_status hv_synth_method_find(const char *name, hv_synth_method *out);

typedef struct hv_stage_ctx {
    hv_measure_opts mopts;
    int use_centroids;
    hv_synth_method synth;
    int n_img;                        /* 0 none, 1 qc, 3 full               */
    const hv_split *split;            /* borrowed; may be NULL              */
} hv_stage_ctx;

/* Run every stage on one case. Never fails as a whole: a problem becomes
 * r->state = HV_CASE_FAILED with the reason in r->c.error. r->c's id/paths
 * must be set by the caller; r is otherwise overwritten. */
void hv_stage_run_case(const hv_stage_ctx *ctx, const hv_case *cs, int case_index,
                       hv_case_result *r);

/* ------------------------------------------------------------- journals */

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

/* -------------------------------------------------------------- store */

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

/* ------------------------------------------------------------ work queue */

/* A shared counter in an MPI window on rank 0: next position in the order,
 * cases finished and failed; a stop any rank may raise (queue.c). */
typedef struct hv_queue hv_queue;

hv_status hv_queue_create(MPI_Comm comm, hv_queue **out);
/* Next position (0, 1, ...) or -1 once stop was raised. */
hv_status hv_queue_next(hv_queue *q, long *pos);
hv_status hv_queue_raise_stop(hv_queue *q);
hv_status hv_queue_count(hv_queue *q, int failed);
hv_status hv_queue_progress(hv_queue *q, long *done, long *failed);
void hv_queue_free(hv_queue *q);

/* ---------------------------------------------------------------- gather */

typedef struct hv_gather_opts {
    const char *method;               /* "auto" | "svm" | "rule"            */
    int folds;
    unsigned seed;
    const hv_split *split;            /* may be NULL                        */
    const char *out_dir;
} hv_gather_opts;

/* Rank 0 only, on a serially opened store: grade, write /grader and the
 * predicted grades, and the output folder (CSV, PNG, summary.md). */
hv_status hv_gather_run(hv_store *s, const hv_gather_opts *o, hv_grader_result *g);

/* Export (hv_store_export_csv), and with qc_png the QC pictures of a store
 * made with output.images = qc | full as DIR/qc/<case>_<level>_{sag,cor}.png
 * (*n_png, may be NULL, counts them). The run's own output folder gets the
 * tables only: one PNG pair per vertebra is for a person looking, on demand. */
hv_status hv_store_export(const char *path, const char *dir, int qc_png, long *n_png);

/* Test hook: when the environment variable HV_CRASH_AT equals `point`
 * (optionally "point:N" for the N-th time, 1-based, counted per process),
 * the process sends itself SIGKILL. Used by tests/mpi to kill at exact
 * points; a no-op otherwise. */
void hv_run_crashpoint(const char *point);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void hv_utc_now(char buf[32]);

#endif /* HV_RUN_INTERNAL_H */
