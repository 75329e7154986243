/*
 * run_internal.h: types shared by the files of src/mpi (not public).
 *
 * The per-case stage interface lives here: a case goes in (paths), the
 * vertebra rows, per-stage seconds and optional images come out (the row
 * types are the store's, hv/store.h). The MPI layer (run.c, queue.c) only
 * decides which case a rank works on and where its result goes; the stage
 * functions know nothing of MPI.
 */
#ifndef HV_RUN_INTERNAL_H
#define HV_RUN_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "hv/compute.h"
#include "hv/core.h"
#include "hv/io.h"
#include "hv/measure.h"
#include "hv/model.h"
#include "hv/run.h"
#include "hv/pipeline.h"
#include "hv/store.h"

/* ------------------------------------------------------ configuration */

/* The typed run parameters, filled by hv_run_config_params from the key
 * table in config.c (each key names its field through offsetof). INT, BOOL,
 * CHOICE (index into the key's choices) and LEVEL (VerSe label) are int;
 * DOUBLE double; DOUBLE3 double[3]; PATH and STRING char arrays. */
typedef struct hv_run_params {
    /* [input] */
    int source;                 /* 0 phantom, 1 dataset, 2 manifest          */
    char dataset[900];
    char manifest[900];
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
    int synth;                  /* 0 baseline, 1 gan                         */
    char synth_model[1000];
    char synth_model_coronal[1000];
    int synth_batch;
    int synth_neighbours;
    double synth_seg_threshold; /* label where fine_seg > this (0.5, spec 8)  */
    int synth_nifti;            /* 0 off, 1 on                               */
    int synth_fallback;         /* 0 baseline, 1 none                        */
    int synth_crops;            /* 0 none, 1 masks, 2 full                   */
    int synth_precision;        /* hv_nn_precision: 0 fp32, 1 bf16           */
    /* [attention] */
    char attn_model[1000];      /* "" : stage off                            */
    int attn_store;             /* 0 none, 1 summary, 2 full                 */
    int attn_batch;
    /* [grader] */
    int grader;                 /* 0 auto, 1 svm, 2 rule, 3 senet3d          */
    int folds, gseed;
    int solver;                 /* 0 auto, 1 libsvm, 2 liblinear             */
    int liblinear_above;
    int se_width, se_blocks, se_batch, se_supcon_steps, se_cls_steps;
    int se_shrink;              /* index of "1", "2", "4"                    */
    double se_lr_supcon, se_lr_cls, se_temperature;
    int se_retrain;             /* 1: never reuse senet3d_model.h5           */
    /* [output] */
    char out_dir[900];
    char store[1024];
    int images;                 /* 0 none, 1 qc, 2 full                      */
    /* [prepare] */
    int prepare_enabled;
    char prepare_output[1000];
    int prepare_skip_fov;
    /* [run] */
    int threads;
    double progress_interval;
    int retry_failed, fresh;
    int order;                  /* 0 largest, 1 index                        */
    int compute_device;         /* [compute] device: HV_COMPUTE_*            */
    int prefetch;
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

/* ------------------------------------- the trainings' shared keys */

/* The keys of a training's loop that `healthivert train` ([train],
 * train_config.c) and `train-classifier` ([classifier], cls_train_config.c)
 * both have, with the same ranges and meanings: F is the file's FIELD
 * macro (offset and size in its options struct), sec the section, the
 * defaults strings. None changes the weights a training reaches. Two
 * groups, so that each table keeps its keys' order (the --keys list and
 * the canonical text). */
#define HV__TRAIN_INTERVAL_KEYS(sec, F, ckpt_def, val_def, losses_word)                    \
    {sec, "checkpoint_every", ckpt_def,                                                        \
     "steps between checkpoints (one is also written at the end and on SIGTERM/SIGINT/SIGUSR1)", \
     HV_KEY_INT, 1, 100000000, F(checkpoint_every)},                                           \
    {sec, "val_every", val_def,                                                                \
     "steps between validations on the val split (0: none); also at step 0 and at the end",   \
     HV_KEY_INT, 0, 100000000, F(val_every)},                                                  \
    {sec, "log_every", "10", "steps between rows of losses.csv", HV_KEY_INT, 1, 100000000,     \
     F(log_every)},                                                                            \
    {sec, "progress_interval", "10",                                                           \
     "seconds between rank 0's progress lines (step, " losses_word ", ETA); 0: every step",    \
     HV_KEY_DOUBLE, 0, 86400, F(progress_interval)}
/* item_cache_mb, threads, fresh and compute.device (`what` trains there).
 * item_cache_mb's default keeps every item of the phantom configs' files
 * resident (prepare-phantom-gpu.ini's 421 train and val items: 3.3 GiB), so
 * their speed is what it was before the cache. */
#define HV__TRAIN_RUN_KEYS(sec, F, what)                                                        \
    {sec, "item_cache_mb", "4096",                                                             \
     "MiB of training items (8 MiB each, 12 with a CAM) each rank keeps in memory, the least " \
     "recently used dropped first and read again when drawn; a step's own items are kept even " \
     "above it (0: no limit); results do not depend on it; keep ranks per node x this well "   \
     "below the node's memory",                                                                \
     HV_KEY_INT, 0, 16777216, F(item_cache_mb)},                                               \
    {sec, "threads", "0", "OpenMP threads per rank (0: leave OMP_NUM_THREADS alone)",           \
     HV_KEY_INT, 0, 1024, F(threads)},                                                         \
    {sec, "fresh", "0", "1: discard an earlier checkpoint and start over (else resume)",        \
     HV_KEY_BOOL, F(fresh)},                                                                   \
    {"compute", "device", "auto",                                                              \
     "where " what " trains: auto (the CUDA backend when the program was built with CUDA "     \
     "and every rank has a usable GPU, else the CPU), cpu, or cuda (refused before anything is " \
     "written when there is no usable GPU); each rank takes GPU (node-local rank mod GPUs per " \
     "node); docs/nn.md, Placement",                                                           \
     HV_KEY_CHOICE, .choices = hv_compute_choices, F(device)}

/* ------------------------------------------------- compute.device (compute.c) */

/* compute.device is parsed as an index of hv_compute_choices (HV_COMPUTE_*,
 * hv/compute.h) */
#define HV_COMPUTE_ENTRY 128 /* one rank's line of the device list */

/* Where a command's networks run: this rank's choice. */
typedef struct hv_mpi_compute {
    int cuda;        /* 1: CUDA backends on `device`; 0: the CPU backend   */
    int device;      /* this rank's node-local GPU, -1 on the CPU          */
    /* "cpu", or "cuda (rank R HOST gpu D of N; ...)": on rank 0 every
     * rank's entry, on the others their own */
    char desc[2048];
} hv_mpi_compute;

/* Collective over comm, before anything is written: pick the backend for
 * compute.device = `setting` (HV_COMPUTE_*; see compute.c) and log the
 * choice on rank 0. cuda without a build with CUDA or without a usable
 * device on every rank is HV_ERR_ARG on every rank, naming the key. */
hv_status hv_mpi_compute_open(int setting, MPI_Comm comm, hv_mpi_compute *out);
/* A new backend of the choice (*out owned by the caller, freed with
 * hv_nn_backend_free); c NULL: the CPU backend. */
hv_status hv_mpi_compute_backend(const hv_mpi_compute *c, hv_nn_backend **out);

/* ------------------------------------------------------ the gan's model */

/* The generator(s) of synthesis.method = gan, opened once per rank before
 * the run starts (synth_model.c) and lent to every case; plus what the
 * pipeline options take from the [synthesis] keys. All zero (model NULL)
 * for another method. */
typedef struct hv_run_synth {
    hv_nn_backend *be;                /* owned                              */
    hv_model_synth *model;            /* owned                              */
    int fallback;                     /* hv_pipe_opts.synth_fallback        */
    char nifti_dir[1000];             /* "" off, else output.dir            */
    int crops;                        /* synthesis.crops: 0 none, 1 masks,  */
                                      /* 2 full (hv_pipe_opts.synth_crops)  */
    /* provenance: "sagittal: PATH (N bytes, crc32 XXXXXXXX), cnum C;
     * coronal: ..." */
    char provenance[2600];
} hv_run_synth;

/* Open the model(s) of k (no-op for another method). A missing, unreadable
 * or wrong file is an error naming the key and the file. */
hv_status hv_run_synth_open(const hv_run_params *k, const hv_mpi_compute *c, hv_run_synth *out);
void hv_run_synth_close(hv_run_synth *rs);

/* ---------------------------------------------- the attention classifier */

/* The classifier of attention.model, opened once per rank before the run
 * starts (attn_model.c, as the gan's generator) and lent to every case.
 * All zero (model NULL) when attention.model is empty. */
typedef struct hv_run_attn {
    hv_nn_backend *be;                /* owned                              */
    hv_model_cam *model;              /* owned                              */
    int store;                        /* attention.store: 0 none, 1 summary, */
                                      /* 2 full                             */
    /* provenance: "PATH (N bytes, crc32 XXXXXXXX), width W" */
    char provenance[1200];
} hv_run_attn;

/* Open the classifier of k (no-op when attention.model is empty). A missing,
 * unreadable or wrong file (not a classifier: a GAN model, a training set)
 * is an error naming attention.model and the file. */
hv_status hv_run_attn_open(const hv_run_params *k, const hv_mpi_compute *c, hv_run_attn *out);
void hv_run_attn_close(hv_run_attn *ra);
/* Size and CRC-32 of a file, streamed (synth_model.c). */
hv_status hv_run_file_crc(const char *path, long long *size, unsigned long *crc);

/* ------------------------------------------------------------ the stages */

/* A case through the pipeline (hv/pipeline.h) into the store's rows. The
 * plan points at `opts`: a context is initialised in place and not copied. */
typedef struct hv_stage_ctx {
    hv_pipe_opts opts;
    hv_pipe_plan plan;
    const hv_split *split;            /* borrowed; may be NULL              */
    hv_pipe_loader *loader;           /* borrowed; NULL: no reading ahead   */
    const char *synth_provenance;     /* borrowed from the hv_run_synth;    */
                                      /* NULL without a gan model           */
    const char *attn_provenance;      /* borrowed from the hv_run_attn;     */
                                      /* NULL without a classifier          */
    int attn_store;                   /* attention.store (0 without one)    */
    int synth_crops;                  /* synthesis.crops (0 without a gan)  */
    int crop3d;                       /* 1: keep each vertebra's crop box   */
                                      /* (/vertebrae/crop3d): the grader    */
                                      /* needs the crops (senet3d)          */
    /* the names of hv_case_result.seconds: every table row, then "store"
     * (the journal and store writes, timed by the runner) */
    int n_stages;
    const char *names[HV_STORE_MAX_STAGES];
} hv_stage_ctx;

/* Options from the run parameters, the plan for table `t` (borrowed; must
 * outlive the context) and the stage names. HV_ERR_LIMIT when the table and
 * "store" do not fit the store's HV_STORE_MAX_STAGES; the plan's errors. */
hv_status hv_stage_ctx_init(hv_stage_ctx *ctx, const hv_pipe_table *t,
                            const hv_measure_opts *mo, int use_centroids, const char *synth,
                            int pictures, const hv_split *split, const hv_run_synth *rs,
                            const hv_run_attn *ra, const char *grader);

/* Run the planned stages on one case. Never fails as a whole: a problem
 * becomes r->state = HV_CASE_FAILED with "<stage>: <reason>" in r->c.error.
 * r->c's id/paths must be set by the caller; r is otherwise overwritten
 * (r->seconds in the order of ctx->names; the last, "store", is 0). */
void hv_stage_run_case(const hv_stage_ctx *ctx, const hv_case *cs, int case_index,
                       hv_case_result *r);

/* --------------------------------------------------------------- prepare */

/* The training-set stage (prepare.c): its context travels in the pipeline
 * options' `user` pointer. */
typedef struct hv_prepare_ctx {
    char parts[1100];                 /* <output.dir>/prepare               */
    const hv_split *split;            /* borrowed; may be NULL              */
    int skip_fov;                     /* prepare.skip_fov                   */
    int64_t band_rows;                /* recorded in the file (40)          */
} hv_prepare_ctx;

/* The stage's table row (needs crops, makes HV_PIPE_EXTRA0). */
extern const hv_pipe_stage hv_prepare_stage;
/* `t`'s rows plus the prepare row, into rows (HV_PIPE_MAX_STAGES entries,
 * the caller's; must outlive *out). */
hv_status hv_prepare_table(const hv_pipe_table *t, hv_pipe_stage *rows, hv_pipe_table *out);
/* <parts>/<case>.h5 into buf (the case id checked as a plain file name). */
hv_status hv_prepare_part_path(const hv_prepare_ctx *pc, const char *case_id, char *buf,
                               size_t cap);
/* Rank 0 before any case: remove the temporary files killed writers left
 * beside the parts and the training file `train`. */
void hv_prepare_clean(const hv_prepare_ctx *pc, const char *train);
/* Rank 0 after the last case: merge the parts of the cases whose state is
 * HV_CASE_DONE (state[i] for man->cases[i]) into `out`; a done case without
 * a valid part is an error naming it. */
hv_status hv_prepare_merge(const hv_prepare_ctx *pc, const hv_manifest *man,
                           const uint8_t *state, const char *out, size_t *n_items,
                           size_t *n_skipped);

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

/* The ranks that train the SVM protocol's folds with rank 0 (gather.c).
 * Rank 0 either starts one job (its SVM protocol) or releases the team;
 * every other rank calls hv_gather_team_serve once, which returns when the
 * job is done or the team is released. */
typedef struct hv_gather_team {
    MPI_Comm comm;
    int rank, size;
    int done;                         /* rank 0: job started or released    */
} hv_gather_team;

/* Rank != 0: wait for rank 0; train the folds given to this rank (the
 * SVM's, or grader.method = senet3d's networks), send their predictions to
 * rank 0. A failure is reported to rank 0 (which fails the protocol) and
 * returned. */
hv_status hv_gather_team_serve(hv_gather_team *t);
/* Rank 0: tell the team there is no (more) job, unless it had one. */
void hv_gather_team_release(hv_gather_team *t);

/* The team's jobs, for the graders (gather.c runs the team). A job is a
 * header of 5 longs {kind, rows, folds, seed, kind's own} and the rows (5
 * doubles each: RHLV x3, grade, set); a kind may broadcast more after them.
 * Fold f belongs to rank hv__gather_fold_owner(f, size): (f + 1) % size
 * with two or more ranks, so rank 0 keeps the fewest folds and trains the
 * final model meanwhile. */
enum { HV_TEAM_RELEASE = 0, HV_TEAM_SVM = 1, HV_TEAM_SENET3D = 2 };
int hv__gather_fold_owner(int f, int size);
/* Rank 0: broadcast the header and rows (n); t->done set. */
hv_status hv__gather_team_start(hv_gather_team *t, const long hdr[5], const hv_svm_row *rows,
                                size_t n);
/* Rank != 0: fold f's result to rank 0: status fs, then (fs == HV_OK) the
 * nv predictions pred, sent from buf (nv + 1 ints, caller's scratch; may be
 * NULL when fs != HV_OK). Always call it for each owned fold: rank 0 waits. */
void hv__gather_team_send(hv_gather_team *t, int f, hv_status fs, const int *pred, size_t nv,
                          int *buf);
/* Rank 0: every fold another rank owns into cv->folds[f].pred; a failed
 * fold is an error "WHAT: fold f failed on rank r". */
hv_status hv__gather_team_collect(hv_gather_team *t, hv_svm_cv *cv, const char *what);
/* Rank != 0, grade_senet3d.c: the rest of a senet3d job (its settings and
 * boxes), its folds trained and sent; rows as received (NULL when st, the
 * rows' status, failed: the collectives are still joined). */
hv_status hv__senet3d_team_serve(hv_gather_team *t, const long hdr[5], const hv_svm_row *rows,
                                 hv_status st);

/* grading_rows.c: DIR/grading_rows.csv, the n rows the SVM protocol (or
 * senet3d in it) used in its order, with cv's fold of each train/test row
 * (empty for val) and the final grader's prediction pred[i] of row i
 * (docs/measure.md, "Grading rows"); all borrowed. */
hv_status hv__gather_rows_csv(const char *dir, const hv_svm_row *rows, size_t n,
                              const hv_svm_cv *cv, const int *pred);
/* Remove DIR/grading_rows.csv if there (a gather that grades by the rule
 * must not leave an earlier grading's rows). */
hv_status hv__gather_rows_remove(const char *dir);

/* grader.method = senet3d's settings (the grader.senet3d_* keys). */
typedef struct hv_gather_senet3d {
    int width, blocks, batch, supcon_steps, cls_steps;
    int shrink;                       /* 1, 2 or 4: the box's side / input  */
    double lr_supcon, lr_cls, temperature;
    int retrain;                      /* 1: never reuse senet3d_model.h5    */
} hv_gather_senet3d;

typedef struct hv_gather_opts {
    const char *method;               /* "auto" | "svm" | "rule" | "senet3d" */
    int folds;
    unsigned seed;
    const hv_split *split;            /* may be NULL                        */
    const char *out_dir;
    const char *solver;               /* "auto" | "libsvm" | "liblinear"    */
    long liblinear_above;             /* auto: liblinear above this many
                                         train+test rows                    */
    hv_gather_team *team;             /* NULL: rank 0 trains every fold     */
    hv_gather_senet3d se;             /* method senet3d                     */
} hv_gather_opts;

/* Rank 0 only, on a serially opened store: grade, write /grader and the
 * predicted grades, and the output folder (CSV, PNG, summary.md). With a
 * team, the folds are shared out (fold f to rank (f + 1) % size; rank 0
 * trains the final model while the others train their folds). */
hv_status hv_gather_run(hv_store *s, const hv_gather_opts *o, hv_grader_result *g);

/* grader.method = senet3d (grade_senet3d.c), rank 0 with o->team sharing
 * out the folds as for the SVM (their networks' grades do not depend on the
 * rank count): the SVM's
 * protocol (the same rows in split order, folds and val scoring, through
 * hv_svm_cv_begin/finish) with a 3-D SupCon-SENet trained per fold on the
 * boxes of /vertebrae/crop3d, then a final network on train+test that
 * predicts every vertebra with a box (others -1) and is scored on val. v[i]
 * .grade_pred set, g filled (method "senet3d"). With o->out_dir, a
 * senet3d_model.h5 there written by a training of the same settings and
 * rows is reused instead of training (o->se.retrain = 1: never), else the
 * networks are trained and the file written. A store without
 * /vertebrae/crop3d or too few rows for the folds is an error naming why. */
hv_status hv_gather_senet3d_run(hv_store *s, hv_run_vrow *v, size_t n, const hv_run_crow *cases,
                                const hv_gather_opts *o, hv_grader_result *g);

/* ---------------------------------------------------------------- resume */

/* Rank 0's part of resuming (resume.c; no MPI). `dir` is the journal folder
 * (<output.dir>/journal). */

/* The text of one of the run's own small files in *text (free()), or NULL
 * when there is no such file; any other failure to read it is an error. */
hv_status hv_resume_read_text(const char *path, const char *what, char **text);
/* run.fresh: remove the journals, attempt and config.txt from dir. */
void hv_resume_discard(const char *dir);
/* Check dir/config.txt against results_text (hv_run_config_results_text;
 * written when absent; HV_ERR_ARG naming out_dir when it differs) and count
 * this attempt in dir/attempt: *attempt is 1 for the first. */
hv_status hv_resume_attempt(const char *dir, const char *out_dir, const char *results_text,
                            int *attempt);

/* What hv_resume_rebuild needs; every pointer borrowed. */
typedef struct hv_resume_plan {
    const hv_manifest *man;           /* the scanned cases, sorted by id    */
    const char *journal;              /* the journal folder                 */
    const char *store;                /* rebuilt as <store>.tmp, renamed    */
    const hv_stage_ctx *sc;           /* the stage names                    */
    const char *config_text;          /* provenance of the new store ...    */
    const char *input_root;
    int n_img, ranks, attempt;        /* ... with these                     */
    int shard_index, shard_count;     /* case i is shard i % shard_count's  */
    int retry_failed, order_largest;
    int cam;                          /* /vertebrae/cam (attention.store =  */
                                      /* full)                              */
    int synth_crops;                  /* /vertebrae/synth_label (1), and    */
                                      /* synth_ct (2): synthesis.crops      */
    int crop3d;                       /* /vertebrae/crop3d (grader senet3d) */
} hv_resume_plan;

/* Replay the journals into a new store (every case pending but the ones
 * they finished) and list this shard's cases still to run in *order
 * (free(); largest CT + mask first with order_largest, else case order):
 * *n_pending of them, *n_resumed finished by earlier attempts. */
hv_status hv_resume_rebuild(const hv_resume_plan *p, long **order, long *n_pending,
                            long *n_resumed);

/* The end of an attempt, rank 0, on the serially reopened store s: write
 * the images (hv_store_put_images) of the cases this attempt finished,
 * from the records of `attempt` in the journals; ranks wrote those cases
 * through MPI-IO without them (docs/hdf5-schema.md, "How it is written"),
 * and their attention maps (attention.store = full) the same way.
 * *n_cases counts the cases written. No-op for a store without images and
 * maps. */
hv_status hv_resume_images(const char *journal, const hv_stage_ctx *sc, hv_store *s, int attempt,
                           long *n_cases);

/* A case row's id, paths (the tail that fits) and cost (CT + mask bytes). */
void hv_run_case_row(hv_run_crow *r, const hv_case *cs);

/* Test hook: when the environment variable HV_CRASH_AT equals `point`
 * (optionally "point:N" for the N-th time, 1-based, counted per process),
 * the process sends itself SIGKILL. Used by tests/mpi to kill at exact
 * points; a no-op otherwise. */
void hv_run_crashpoint(const char *point);

/* --------------------------------- shared by the trainings (train_common.c) */

/* A barrier that sleeps instead of spinning (ranks waiting for rank 0). */
void hv__train_wait_all(MPI_Comm comm);
/* Every rank's status into one: HV_OK when all are; otherwise the first
 * failing rank's status and message on every rank. */
hv_status hv__train_agree(MPI_Comm comm, int rank, int nranks, hv_status st);
/* hv_nn_reduce_fn over MPI_Allreduce(SUM); ctx: a MPI_Comm * (borrowed). */
int hv__train_mpi_sum(void *ctx, float *buf, size_t n);
/* "1h02m03s", "4m05s", "6s" or "?" into b. */
void hv__train_fmt_dur(char *b, size_t cap, double s);
/* One /meta value of checkpoint path (the error names the key). */
hv_status hv__train_meta_get(const char *path, const char *key, char *buf, size_t cap);
/* What rank 0 finds at path before training: no file (*resume 0), or a
 * checkpoint of this format and version, passing extra (may be NULL; a
 * training's own check, e.g. widths), written under the same
 * results-changing config text (else HV_ERR_ARG naming the keys that
 * differ and the keys `section`.output / .fresh): *resume 1, *step. */
hv_status hv__train_ckpt_check(const char *path, const char *format, const char *version,
                               const char *section,
                               hv_status (*extra)(const char *path, void *ctx), void *ctx,
                               const char *results_text, int *resume, long long *step);
/* Why a checkpoint write may have failed: free space of dir, RLIMIT_FSIZE
 * ("; ..." text, possibly empty) into why. */
void hv__train_write_why(const char *dir, char *why, size_t cap);
/* header, then the lines of an earlier per-step CSV at path whose first
 * field (the step) is <= max, into out (a missing file: header only). */
hv_status hv__train_csv_keep(const char *path, const char *header, int64_t max, hv_sbuf *out);
/* 1 when every value of ps (weights and buffers) is finite; else 0 with
 * "[NET ]name[k] = value" of the first other in bad (net may be NULL). */
int hv__train_params_finite(hv_nn_params *ps, const char *net, char *bad, size_t cap);
/* b's text to path atomically. */
hv_status hv__train_text_write(const char *path, const hv_sbuf *b);

/* The option checks both trainings make before any work, for config
 * section `section` ("train", "classifier"): file set, output not empty,
 * batch >= nranks (the messages name section.key); then threads > 0 sets
 * OpenMP's thread count. */
hv_status hv__train_opts_check(const char *section, const char *file, const char *output,
                               int batch, int nranks, int threads);
/* This rank and the number of ranks of comm; with more than one rank the
 * log lines name the rank (hv_log_set_rank). */
void hv__train_ranks(MPI_Comm comm, int *rank, int *nranks);

/* The training file's item cache (hv/model.h): a budget of mb MiB (0: no
 * limit) on ts, and on rank 0 one line: the items this run reads (n_train
 * of the train split, n_val of the val split, on rank 0), the budget
 * (`section`.item_cache_mb) and how many items fit in it. */
void hv__train_cache_begin(hv_model_trainset *ts, const char *section, int mb, size_t n_train,
                           size_t n_val, int rank);
/* One line per rank: what its cache did (reads, evictions, peak bytes). */
void hv__train_cache_end(const hv_model_trainset *ts);

/* A training's output folder: its files, the config texts, rank 0's lock
 * and what an earlier attempt left there. */
typedef struct hv__train_dir {
    char ckpt[1100], lock[1100], losses[1100]; /* output/checkpoint.h5, train.lock, losses.csv */
    char *cfgtext, *results; /* owned: hv_run_config_text, hv_run_config_results_text */
    int locked;              /* rank 0 holds the lock                                */
    int resume;              /* every rank: a matching checkpoint is there           */
    long long step;          /* every rank: its step                                 */
} hv__train_dir;

/* d's paths under output; nothing held yet (hv__train_dir_release is safe). */
void hv__train_dir_init(hv__train_dir *d, const char *output);
/* The start both trainings make once their options are filled:
 * hv__train_opts_check, then (collective, before the output folder
 * exists, so compute.device = cuda without a GPU leaves nothing)
 * hv_mpi_compute_open(device) into *comp, then hv__train_dir_init(dir,
 * output). Nothing is held on return, whatever the status. */
hv_status hv__train_begin(const char *section, const char *file, const char *output, int batch,
                          int threads, int device, MPI_Comm comm, int nranks,
                          hv_mpi_compute *comp, hv__train_dir *dir);
/* Collective: the config texts on every rank; on rank 0 the folder, its
 * lock, with fresh the earlier checkpoint, val.csv and losses.csv deleted
 * (logged naming section.fresh), and hv__train_ckpt_check(d->ckpt, format,
 * version, section, extra, ctx); then every rank agrees on the status and
 * gets d->resume and d->step from rank 0. */
hv_status hv__train_dir_prepare(hv__train_dir *d, const hv_run_config *cfg, MPI_Comm comm,
                                int rank, int nranks, const char *section, const char *output,
                                int fresh, const char *format, const char *version,
                                hv_status (*extra)(const char *path, void *ctx), void *ctx);
/* Refuses (HV_ERR_ARG, the same on every rank) a checkpoint already past
 * the planned total_steps (<section>.<steps_key> or the epochs lowered
 * since): the loop would not run, no model file would be written and the
 * summary would report steps beyond the end. */
hv_status hv__train_past_end(const hv__train_dir *d, const char *section, const char *steps_key,
                             int64_t total_steps);
/* The lock released (when held) and the texts freed. */
void hv__train_dir_release(hv__train_dir *d);

/* A vertebra's (case id, label) with its row index, for qsort/bsearch by
 * id then label (gather.c, grade_senet3d.c: split entries to store rows). */
typedef struct hv__vkey {
    const char *id;
    int label;
    size_t idx;
} hv__vkey;
int hv__vkey_cmp(const void *a, const void *b);
/* The keys of vertebrae v[0..n) (their case's id, label and index) into
 * keys, sorted for hv__vkey_split_row. */
void hv__vkey_sort(hv__vkey *keys, const hv_run_vrow *v, size_t n, const hv_run_crow *cases);
/* Split entry e's vertebra among the n sorted keys: its index in v, or -1
 * when no vertebra is e's or its RHLV (anterior, middle, posterior) is not
 * all finite. */
long hv__vkey_split_row(const hv__vkey *keys, size_t n, const hv_run_vrow *v,
                        const hv_split_entry *e);
/* The grader row of split entry e: its case, label, grade and set, and the
 * RHLV of its vertebra vr as x[0..2] (the rest 0). */
void hv__svm_row_of(hv_svm_row *r, const hv_split_entry *e, const hv_run_vrow *vr);
/* The cross-validation's results into g: the first 16 folds' macro F1,
 * precision, recall and accuracy, the mean and the variance. */
void hv__grader_cv_result(hv_grader_result *g, const hv_svm_cv *cv);

/* The reproduce tables' CSV cells (repro_table.c, repro_quality.c): a comma,
 * then a round-trip-exact number (empty when not finite) or a quoted string
 * (quotes doubled, newlines as spaces). */
void hv__repro_csv_num(FILE *f, double x);
void hv__repro_csv_str(FILE *f, const char *s);

#endif /* HV_RUN_INTERNAL_H */
