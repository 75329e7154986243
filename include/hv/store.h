/*
 * hv/store.h: the run's HDF5 store (schema v4, docs/hdf5-schema.md) and the
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
 * its own case slots (hv_store_put_case, status last). The images (QC
 * pictures as PNG bytes, height-loss planes deflated) are compressed, so
 * their size is only known once drawn; HDF5 cannot give them file space
 * from independent MPI-IO writes, so they are written serially by rank 0
 * (hv_store_put_images): when the store is rebuilt from the journals at
 * every start, and at the end of every attempt. The journals
 * (hv_journal_*) are the truth for resuming: every finished case is appended
 * to its rank's journal, fsync'd, before it is written into the store, and
 * every start rebuilds the store from them. Reading a store (describe,
 * validate, export) needs no MPI communicator: those open it serially.
 *
 * Per-stage seconds are kept by stage NAME: the caller names its stages when
 * it creates a store or opens a journal (hv_store_create_info.stage_names,
 * hv_journal_open), hv_case_result.seconds holds one value per name in that
 * order, and the store keeps the names beside the table (/cases/stage_names)
 * so that every reader labels the columns from the file, never by position.
 * Stores of schema v1 (a fixed array of six stages in the case row) are
 * still read: their columns are named load, measure, synthesis, grade,
 * images, journal.
 *
 * Ownership: objects returned through `out` (hv_store, hv_journal) belong to
 * the caller and are released with the matching close (each accepts NULL).
 * Text returned as `char **` is freed with free(). Arrays returned through a
 * `**` pointer (hv_store_read_vertebrae) are freed with free(). Input
 * pointers (paths, rows, results, create info and its strings) are borrowed
 * for the duration of the call; the stage names given to hv_store_create
 * and hv_journal_open are copied. The names hv_store_stage_names hands out
 * belong to the store (valid until hv_store_close). A hv_case_result owns
 * its `img`, `qc`, `qc_png` and `vol_z` buffers: hv_case_result_clear frees
 * them.
 */
#ifndef HV_STORE_H
#define HV_STORE_H

#include <mpi.h>
#include <stdint.h>

#include "hv/core.h"
#include "hv/measure.h"
#include "hv/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Store schema version written to /@schema_version. Readers accept this one,
 * 3, 2 and 1 (describe, validate, export, read); only a store of this
 * version can be written into. v3: images chunked and compressed (QC
 * pictures as PNG bytes per vertebra slot), written serially. v4: the
 * vertebra table always has the attention columns (p_fracture,
 * cam_mass_body, cam_max_slice, pad2_), and /vertebrae/cam,
 * /vertebrae/synth_label and /vertebrae/synth_ct may be there (optional
 * datasets: a v4 store without them is complete); a v3 store may lack the
 * columns and the maps (its rows then read NaN, NaN, -1). */
#define HV_STORE_SCHEMA_VERSION 4

/* Per-stage seconds: at most this many stages, each name shorter than
 * HV_STORE_STAGE_NAME_MAX bytes (with its NUL), made of letters, digits and
 * '_' (names become CSV column names), all different. */
#define HV_STORE_MAX_STAGES 16
#define HV_STORE_STAGE_NAME_MAX 32

/* ------------------------------------------------------------- row types */

/* The per-case products come from the pipeline (hv/pipeline.h), which says
 * their layout: vertebra slots per case (HV_PIPE_MAX_VERT: every VerSe label
 * with a level fits), the per-vertebra height-loss planes (HV_IMG_*, side
 * HV_PIPE_IMG) and QC slices (HV_QC_* views x channels, side HV_PIPE_QC; all
 * zero: no QC picture). The store keeps them in fixed slots of those sizes. */
#define HV_RUN_MAX_VERT HV_PIPE_MAX_VERT
#define HV_RUN_IMG HV_PIPE_IMG
#define HV_RUN_QC HV_PIPE_QC
#define HV_RUN_QC_BYTES HV_PIPE_QC_BYTES

/* The per-vertebra u8 crop volumes a store may keep, each an optional
 * dataset /vertebrae/<name> of one deflated chunk per vertebra slot (the
 * crop layout, HV_RUN_CAM_*): the attention map (attention.store = full),
 * the synthesized label crop (synthesis.crops = masks | full) and the
 * synthesized CT crop (synthesis.crops = full). */
typedef enum hv_store_vol {
    HV_STORE_VOL_CAM = 0,             /* /vertebrae/cam                     */
    HV_STORE_VOL_SYNTH_LABEL = 1,     /* /vertebrae/synth_label             */
    HV_STORE_VOL_SYNTH_CT = 2,        /* /vertebrae/synth_ct                */
    HV_STORE_VOL_CROP3D = 3,          /* /vertebrae/crop3d (grader senet3d) */
    HV_STORE_VOL_ORIG_CT = 4,         /* /vertebrae/orig_ct                 */
    HV_STORE_VOL_ORIG_LABEL = 5,      /* /vertebrae/orig_label              */
    HV_STORE_N_VOL = 6
} hv_store_vol;
/* "cam", "synth_label", "synth_ct", "crop3d", "orig_ct", "orig_label"
 * (static); NULL for another value. */
const char *hv_store_vol_name(int w);
/* The box of /vertebrae/crop3d: HV_RUN_BOX^3 voxels cut from the crop
 * (hv_spine_crop_box), for the 3-D grader (grader.method = senet3d). */
#define HV_RUN_BOX 64
#define HV_RUN_BOX_BYTES ((size_t)HV_RUN_BOX * HV_RUN_BOX * HV_RUN_BOX)
/* Dims (i fastest: i, j, k) and bytes of one slot of volume w; 0 for an
 * unknown w. crop3d: HV_RUN_BOX^3; the others: the crop layout. */
size_t hv_store_vol_bytes(int w);
void hv_store_vol_dims(int w, int64_t dims[3]);

typedef enum hv_case_state {
    HV_CASE_PENDING = 0,
    HV_CASE_DONE = 1,
    HV_CASE_FAILED = 2
} hv_case_state;

/* "pending", "done", "failed", or "invalid" for any other value (static). */
const char *hv_case_state_name(int s);

/* HV_OK when names[0..n) is a valid stage list (1 <= n <=
 * HV_STORE_MAX_STAGES, every name valid, no name twice); HV_ERR_ARG naming
 * the problem otherwise. */
hv_status hv_store_check_stages(int n, const char *const *names);

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
    /* the attention stage (attention.store = summary | full; NaN / -1 when
     * it did not run, when attention.store = none, or no map was made) */
    double p_fracture;     /* classifier's mean P(fracture), 30 slices   */
    double cam_mass_body;  /* CAM mass fraction in the target's body     */
    int32_t cam_max_slice; /* LR slice of the CAM's maximum (0..63)      */
    int32_t pad2_;         /* always 0                                   */
} hv_run_vrow;

/* Fill the attention fields of r with "no value" (NaN, NaN, -1). */
void hv_run_vrow_attn_none(hv_run_vrow *r);

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
} hv_run_crow;

/* The result of one case. */
typedef struct hv_case_result {
    int state;                        /* HV_CASE_DONE or HV_CASE_FAILED     */
    hv_run_crow c;
    hv_run_vrow v[HV_RUN_MAX_VERT];
    /* Seconds per stage, in the order of the stage names the store was
     * created with (the journal opened with); entries past the stage count
     * are ignored on writing and 0 after reading. */
    double seconds[HV_STORE_MAX_STAGES];
    int n_img;                        /* image planes per vertebra (0, 1, 3) */
    float *img;                       /* owned; n_vert*n_img*IMG*IMG or NULL */
    uint8_t *qc;                      /* owned; n_vert*HV_RUN_QC_BYTES or NULL */
    /* The same QC pictures as PNG bytes (hv_store_qc_encode): vertebra k's
     * PNG is qc_png_len[k] bytes at qc_png + the lengths before it, 0 bytes
     * for a slot with no picture (all zero). A result replayed from a
     * journal has these and no `qc`. */
    uint8_t *qc_png;                  /* owned; NULL when there are none   */
    uint32_t qc_png_len[HV_RUN_MAX_VERT];
    /* The per-vertebra crop volumes the store keeps (hv_store_vol: the
     * attention map, the synthesized label and CT crops): vertebra k's
     * volume w as the chunk the store keeps (hv_store_crop_encode: u8, crop
     * layout, zlib-deflated), vol_z_len[w][k] bytes at vol_z[w] + the
     * lengths before it; 0 bytes: no volume. vol_z[w] NULL: none at all. */
    uint8_t *vol_z[HV_STORE_N_VOL];   /* owned                              */
    uint32_t vol_z_len[HV_STORE_N_VOL][HV_RUN_MAX_VERT];
} hv_case_result;

/* Free img, qc, qc_png and vol_z and zero the whole result (a zeroed
 * result is valid). */
void hv_case_result_clear(hv_case_result *r);

/* QC pictures as stored (schema v3): a vertebra's slot of HV_RUN_QC_BYTES
 * (views x channels x QC x QC) is one 8-bit grey PNG of HV_RUN_QC columns
 * and HV_QC_VIEWS*HV_QC_CHANNELS*HV_RUN_QC rows, the slot's bytes in order
 * (hv_io_png_encode_grey: the same pixels give the same bytes). */
#define HV_STORE_QC_PNG_W HV_RUN_QC
#define HV_STORE_QC_PNG_H (HV_QC_VIEWS * HV_QC_CHANNELS * HV_RUN_QC)

/* The attention maps as stored (attention.store = full): /vertebrae/cam is
 * u8 [N*S][256 rows k][256 AP j][64 LR i] (the crop layout, i fastest),
 * one chunk per vertebra slot, deflated; a slot without a map is all 0.
 * hv_store_cam_encode turns a CAM volume (F32 in [0, 1], those dims) into
 * that chunk's bytes (value x 255 truncated, as the reference's uint8 cast;
 * zlib level 6), *z owned by the caller. The synthesized crops
 * (synthesis.crops) are kept the same way, in the same layout:
 * /vertebrae/synth_label and /vertebrae/synth_ct. */
#define HV_RUN_CAM_I 64
#define HV_RUN_CAM_J 256
#define HV_RUN_CAM_K 256
#define HV_RUN_CAM_BYTES ((size_t)HV_RUN_CAM_I * HV_RUN_CAM_J * HV_RUN_CAM_K)
hv_status hv_store_cam_encode(const hv_volume *cam, uint8_t **z, size_t *len);
/* A U8 crop volume (HV_RUN_CAM_I x _J x _K) into the bytes of its store
 * chunk (its voxels as they are; zlib level 6), *z owned by the caller.
 * HV_ERR_ARG for another dtype or other dims. */
hv_status hv_store_crop_encode(const hv_volume *u8, uint8_t **z, size_t *len);
/* The same for volume w's layout (hv_store_vol_dims(w)): crop3d's box, or
 * the crop layout for the others. */
hv_status hv_store_vol_encode(int w, const hv_volume *u8, uint8_t **z, size_t *len);

/* Encode r->qc (r->c.n_vert slots of a done case) into r->qc_png and
 * r->qc_png_len, replacing any there; an all-zero slot gets length 0. No-op
 * when r->qc is NULL. r->qc is left as it is. */
hv_status hv_store_qc_encode(hv_case_result *r);
/* Vertebra k's picture of r (from qc_png, else qc) into slot
 * (HV_RUN_QC_BYTES); all zero when it has none. */
hv_status hv_store_qc_slot(const hv_case_result *r, int k, uint8_t *slot);

/* -------------------------------------------------------------- journals */

/* Append-only per-rank journal of finished cases. Every record is framed
 * (magic, length, CRC-32 of the payload) and fsync'd before the call
 * returns, so after a SIGKILL the journal ends with zero or one torn record,
 * which replay detects and cuts off. */
typedef struct hv_journal hv_journal;

/* Open (create) dir/rank-RRRR.log, or dir/shard-KKKK-rank-RRRR.log when
 * shard >= 0, for appending. A new file starts with a layout record: the
 * layout version, the row sizes and the stage names (names[0..n_stages),
 * borrowed, checked with hv_store_check_stages). An existing file written
 * with another layout or another stage list is moved aside (to
 * <file>.layout-V, with a number added when that exists) and a new one
 * started, with a warning: its cases run again. */
hv_status hv_journal_open(const char *dir, int shard, int rank, int n_stages,
                          const char *const *stage_names, hv_journal **out);
/* Append one case result (r->seconds[0..n_stages) with it), fsync'd. */
hv_status hv_journal_append(hv_journal *j, const hv_case_result *r);
void hv_journal_close(hv_journal *j);

/* Replay every rank-*.log and shard-*.log under dir and call fn for every
 * valid record, file by file in name order (r and its buffers are valid
 * only during the call). Only files written with this build's layout and
 * the stage list names[0..n_stages) are read; any other file is skipped
 * with a warning that names both stage lists (or layouts) and says its
 * cases will run again. Torn tails are truncated away (so later appends
 * stay readable) and counted in *n_torn; *n_records counts the records
 * handed to fn. */
typedef hv_status (*hv_journal_fn)(void *user, const hv_case_result *r);
hv_status hv_journal_replay(const char *dir, int n_stages, const char *const *stage_names,
                            hv_journal_fn fn, void *user, long *n_records, long *n_torn);

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
    int n_stages;                     /* 1..HV_STORE_MAX_STAGES             */
    const char *const *stage_names;   /* borrowed; n_stages names, the      */
                                      /* order of hv_case_result.seconds    */
    int cam;                          /* 1: /vertebrae/cam (attention.store */
                                      /* = full)                            */
    int synth_crops;                  /* synthesis.crops: 0 none, 1 masks   */
                                      /* (/vertebrae/synth_label), 2 full   */
                                      /* (also /vertebrae/synth_ct and the  */
                                      /* original crops, orig_ct and        */
                                      /* orig_label)                        */
    int crop3d;                       /* 1: /vertebrae/crop3d (grader.method */
                                      /* = senet3d)                         */
} hv_store_create_info;

/* Serial (one process): create `path` (schema HV_STORE_SCHEMA_VERSION) with
 * every slot allocated, fill in the case rows (ids, paths) with status
 * pending. A bad stage list is HV_ERR_ARG (hv_store_check_stages). */
hv_status hv_store_create(const char *path, const hv_store_create_info *info,
                          const hv_run_crow *cases, hv_store **out);
/* Write a finished case (rows, per-stage seconds, case row, then status)
 * into its slots; on a store opened serially (create, open_serial) its
 * images too (hv_store_put_images), on one opened through MPI-IO not: those
 * are written later by rank 0 (docs/hdf5-schema.md, "How it is written").
 * HV_ERR_UNSUPPORTED on a store of an older schema. */
hv_status hv_store_put_case(hv_store *s, long case_index, const hv_case_result *r);
/* Serial store only: write the images of done case r (its height-loss
 * planes and QC pictures; r->qc_png, or r->qc encoded here) and its
 * crop volumes (r->vol_z, as chunks without recompressing) into the
 * slots of case_index. No-op on a store without images (n_img = 0) and
 * maps.
 * HV_ERR_UNSUPPORTED on a store opened through MPI-IO or of an older
 * schema. */
hv_status hv_store_put_images(hv_store *s, long case_index, const hv_case_result *r);
/* Read the QC picture of vertebra slot `slot` (case_index * HV_RUN_MAX_VERT
 * + k) into px (HV_RUN_QC_BYTES), decoding the PNG of a v3 store or reading
 * the raw slot of v2/v1. *present (may be NULL) is 0 when the slot holds no
 * picture (px all zero then). HV_ERR_UNSUPPORTED when the store has no QC
 * pictures; HV_ERR_FORMAT for a PNG that does not decode. */
hv_status hv_store_read_qc(hv_store *s, long slot, uint8_t *px, int *present);
/* 1 when the store has /vertebrae/cam (attention.store = full). */
int hv_store_has_cam(const hv_store *s);
/* The map of vertebra slot `slot` into vol (HV_RUN_CAM_BYTES, crop
 * layout); *present 0 when the slot holds none (vol all 0). Serially opened
 * stores only; HV_ERR_UNSUPPORTED when the store has no maps. */
hv_status hv_store_read_cam(hv_store *s, long slot, uint8_t *vol, int *present);
/* The same for any crop volume w (hv_store_vol): 1 when the store has its
 * dataset; its volume of slot `slot` into vol (hv_store_vol_bytes(w):
 * HV_RUN_CAM_BYTES, or HV_RUN_BOX_BYTES for crop3d), *present
 * 0 when the slot holds none (never written: all 0). HV_ERR_UNSUPPORTED
 * when the store lacks the dataset, HV_ERR_ARG for an unknown w. */
int hv_store_has_vol(const hv_store *s, int w);
hv_status hv_store_read_vol(hv_store *s, int w, long slot, uint8_t *vol, int *present);
/* Collective over comm: open for independent raw-data writes through MPI-IO. */
hv_status hv_store_open_mpi(const char *path, MPI_Comm comm, hv_store **out);
/* Serial read/write or read-only open (sec2 driver). */
hv_status hv_store_open_serial(const char *path, int writable, hv_store **out);
/* Close (collective when opened with hv_store_open_mpi). */
hv_status hv_store_close(hv_store *s);
/* Nonzero once closing a store's file failed in this process (a full disk
 * while HDF5 flushed its cache). HDF5 1.10 then keeps the file's ID
 * although it freed the file's object, and its own shutdown (at exit, or
 * in MPI_Finalize) touches that memory: a segfault after the message, or a
 * wait in a collective for a file opened through MPI-IO. The caller must
 * then end the process without shutting HDF5 down, after saying why
 * (healthivert run: MPI_Abort). */
int hv_store_close_failed(void);

long hv_store_n_cases(const hv_store *s);
int hv_store_n_img(const hv_store *s);
/* The schema version of the open file: 1, 2, 3 or HV_STORE_SCHEMA_VERSION. */
int hv_store_version(const hv_store *s);
/* The store's stage names: *n of them in *names, owned by the store (valid
 * until hv_store_close). A v1 store has the six of that schema. */
void hv_store_stage_names(const hv_store *s, int *n, const char *const **names);
/* rows (n_cases, may be NULL) and status (n_cases bytes, may be NULL). */
hv_status hv_store_read_cases(hv_store *s, hv_run_crow *rows, uint8_t *status);
/* Per-case seconds, n_cases x n_stages doubles, row-major (case, stage) in
 * the order of hv_store_stage_names; 0 in the rows of pending cases. */
hv_status hv_store_read_seconds(hv_store *s, double *sec);
/* Read the used vertebra rows of all done cases, in case order. */
hv_status hv_store_read_vertebrae(hv_store *s, hv_run_vrow **rows, size_t *n);
hv_status hv_store_set_pred(hv_store *s, const hv_run_vrow *rows, size_t n);
hv_status hv_store_set_attr_str(hv_store *s, const char *obj, const char *name,
                                const char *value);

/* Grader results as stored under /grader. */
typedef struct hv_grader_result {
    char method[16];                  /* "svm" | "rule" | "senet3d"           */
    char evaluated_on[16];            /* "val" | "all" | ""                   */
    char note[256];                   /* why svm fell back, etc.              */
    char solver[16];                  /* svm: "libsvm" | "liblinear"; rule: "" */
    int have_metrics;
    hv_class_metrics m;
    int n_folds;
    double fold_metrics[16][4];       /* macro F1, P, R, accuracy per fold    */
    double mean[4], var[4];
} hv_grader_result;

hv_status hv_store_write_grader(hv_store *s, const hv_grader_result *g);
hv_status hv_store_read_grader(hv_store *s, hv_grader_result *g, int *present);

/* ------------------------------------------------------ output folder lock */

/* One run at a time per output folder (per shard for sharded runs): the lock
 * is a file at `path` (the runner's <output.dir>/run.lock, or
 * run-shard-KKKK.lock) created with O_CREAT|O_EXCL and holding "host=",
 * "pid=" and "started=" (UTC) lines; docs/hdf5-schema.md, "Output folder
 * lock". Serial: one process (the runner's rank 0) takes and releases it.
 *
 * hv_store_lock_take sets *locked to 1 once the lock is this process's (the
 * caller then owns it and must release it, on failure paths too), and to 0
 * otherwise. A stale lock (holder on this host gone, or a zombie) and an
 * incomplete one older than a minute are taken over with a warning; a
 * holder on its way out (orphaned, or a SIGKILL pending) is waited for up to
 * 30 s. HV_ERR_ARG when a live run holds it, naming host, pid, start time and
 * the lock ("the output folder is in use by another run ..."; for a lock of
 * another host, which cannot be checked, also how to remove it); HV_ERR_IO
 * when the file cannot be created or written (nothing is left behind). The
 * path is borrowed. */
hv_status hv_store_lock_take(const char *path, int *locked);
/* Remove the lock at `path` if it is still this process's (same host and
 * pid); anything else there is left alone. Never fails. */
void hv_store_lock_release(const char *path);

/* -------------------------------------------- describe, validate, export */

/* Summary of a store as human-readable text (schema version, provenance,
 * counts, failures with reasons, grader results). free() the text. */
hv_status hv_store_describe(const char *path, char **text);
/* Check a store against its schema, v4 to v1 (docs/hdf5-schema.md): every object,
 * type, shape, value range and cross-reference. HV_OK when valid; otherwise
 * HV_ERR_FORMAT, and *report (may be NULL) lists every problem found. */
hv_status hv_store_validate(const char *path, char **report);
/* Write cases.csv (one column s_<name> per stage, in the store's order),
 * vertebrae.csv and (when graded) grader_metrics.csv and grader_folds.csv
 * into `dir` (created), and the QC pictures, attention maps and synthesized
 * crops as hv_store_export with HV_STORE_EXPORT_QC | HV_STORE_EXPORT_CAM |
 * HV_STORE_EXPORT_SYNTH. */
hv_status hv_store_export_csv(const char *path, const char *dir);
/* Export the tables (as hv_store_export_csv) and what `what` asks for:
 * HV_STORE_EXPORT_QC: the QC pictures of a store made with output.images =
 * qc | full as DIR/qc/<case>_<level>_{sag,cor}.png (*n_png, may be NULL,
 * counts them); HV_STORE_EXPORT_CAM: the attention maps of a store with
 * /vertebrae/cam as DIR/cam/<case>_<level>_cam.nii.gz (float32 byte / 255,
 * the store's crop layout, identity affine: the store keeps no world
 * position of a crop) for every vertebra with a map (*n_cam, may be NULL,
 * counts them), with HV_STORE_EXPORT_QC also their pictures:
 * <case>_<level>_cam.png, the map's LR slice cam_max_slice in JET, over the
 * CT where the store holds that slice's CT (the QC picture's sagittal
 * slice, LR 32) and alone otherwise, and <case>_<level>_cam_qc.png, LR
 * slice 32 over the QC picture's CT (only where the vertebra has a QC
 * picture); both as `healthivert attention` draws its overlay (alpha 0.4).
 * HV_STORE_EXPORT_SYNTH: the synthesized crops of a store with
 * /vertebrae/synth_label (synthesis.crops) as
 * DIR/synth/<case>_<level>_label.nii.gz and, with /vertebrae/synth_ct,
 * <case>_<level>_ct.nii.gz (uint8, the store's bytes, crop layout, identity
 * affine) for every vertebra whose slot holds one (*n_synth, may be NULL,
 * counts the files), with HV_STORE_EXPORT_QC also
 * DIR/synth/<case>_<level>_qc.png for a vertebra with a synthesized label
 * crop and a QC picture: the QC picture's sagittal CT (LR slice 32) beside
 * that slice of the synthesized CT crop (the QC CT again without
 * /vertebrae/synth_ct), both with the original target's outline (the QC
 * label channel) and the synthesized target's (synth_label), and a legend
 * (not counted in *n_png or *n_synth).
 * The run's own output folder gets the tables only (what = 0): one picture
 * per vertebra is for a person looking, on demand. */
#define HV_STORE_EXPORT_QC 1u
#define HV_STORE_EXPORT_CAM 2u
#define HV_STORE_EXPORT_SYNTH 4u
hv_status hv_store_export(const char *path, const char *dir, unsigned what, long *n_png,
                          long *n_cam, long *n_synth);

#ifdef __cplusplus
}
#endif
#endif /* HV_STORE_H */
