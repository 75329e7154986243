/*
 * hv/pipeline.h: one case through a table of stages.
 *
 * A case is a state (hv_pipe_state) that stages fill in turn: the volumes,
 * the straightened spine and its exact map, the per-vertebra crops, the
 * measured heights, the pseudo-healthy heights, the grades and the pictures.
 * A stage is one row of a table: {name, what it needs, what it uses when it
 * is there, what it produces, run}. The default table, in the order a case
 * goes through it:
 *
 *   load -> straighten -> crop -> attention -> measure -> synthesize -> grade
 *   -> pictures
 *
 * measure comes before synthesize because every pseudo-healthy estimate is
 * judged against the original heights: the baseline builds its healthy
 * heights from the measured neighbours, and a learned synthesis measures its
 * synthesized vertebra with the same height code. The attention stage
 * (Grad-CAM++ of a fracture classifier, spec 7; src/pipeline/attention.c)
 * sits between crop and measure: it needs the crops, makes one map per crop
 * (HV_PIPE_ATTENTION) and runs only when a classifier is given
 * (attention_model); the synthesize stage uses the maps when they are there
 * (the gan's HGAM input is 1 - CAM, spec 5.6; without them an all-ones one).
 *
 * Which rows run is decided once per run by a plan (hv_pipe_plan_make): the
 * caller says which products it wants, and walking the table backwards every
 * stage that produces something wanted is switched on and adds its needs and
 * uses to the wanted set. A stage nobody asks for costs nothing (it is not
 * called; its seconds are 0). A product the caller wants, or an active stage
 * needs, is required: the stage that makes it fails the case when it fails.
 * A product only *used* (the crops for the QC pictures) is optional: its
 * stage's failure is a warning and the case goes on without it.
 *
 * The runner (`healthivert run`), `healthivert measure` and
 * `healthivert straighten` all run a case through hv_pipe_run, so what the
 * command line shows is what a batch run computes. Timings, logs and the
 * store's per-stage seconds come from the table by name (hv_pipe_timings).
 *
 * Synthesis methods and graders are registered by name in one place
 * (src/pipeline/stages.c): hv_pipe_synth_find, hv_pipe_grader_find.
 *
 * The state is a plain struct, not an opaque handle: stages of other modules
 * (the learned ones) read and write its fields, and an accessor per product
 * would only double this header. Ownership is written at every field.
 */
#ifndef HV_PIPELINE_H
#define HV_PIPELINE_H

#include <stdint.h>

#include "hv/core.h"
#include "hv/io.h"
#include "hv/measure.h"
#include "hv/spine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- products */

/* What a state can hold: one bit per product. */
enum {
    HV_PIPE_VOLUMES = 1u << 0,   /* mask, CT (optional), centroids (optional)   */
    HV_PIPE_SPINE = 1u << 1,     /* straightened case + its map                 */
    HV_PIPE_CROPS = 1u << 2,     /* per-vertebra crops of the straightened case */
    HV_PIPE_ATTENTION = 1u << 3, /* per-crop Grad-CAM++ maps (attention)        */
    HV_PIPE_HEIGHTS = 1u << 4,   /* measured heights and height maps            */
    HV_PIPE_SYNTH = 1u << 5,     /* pseudo-healthy heights, RHLV                */
    HV_PIPE_GRADES = 1u << 6,    /* per-vertebra grade                          */
    HV_PIPE_PICTURES = 1u << 7,  /* height-loss planes and QC slices            */
    HV_PIPE_EXTRA0 = 1u << 16    /* bits from here up: free for stages added by */
                                 /* callers (tests, experiments)                */
};
#define HV_PIPE_ALL_EXTRA 0xffff0000u

/* Most stages in one table (the store keeps one seconds column per stage). */
#define HV_PIPE_MAX_STAGES 15
/* Most measured vertebrae per case: every VerSe label with a level (C1..L6,
 * T13) fits. */
#define HV_PIPE_MAX_VERT 26

/* Pictures (stage `pictures`), per measured vertebra:
 *  - HV_PIPE_IMG x HV_PIPE_IMG float planes of the height-loss map: plane
 *    HV_IMG_LOSS (RHLV), and with pictures = full also HV_IMG_ORI and
 *    HV_IMG_SYN (heights, mm); rows anterior to posterior, NaN off the body;
 *  - QC slices: views x channels x HV_PIPE_QC x HV_PIPE_QC bytes. View 0 is
 *    the mid-sagittal, view 1 the mid-coronal slice of the straightened crop
 *    (row 0 cranial); channel 0 the windowed CT (0..255), channel 1 the target
 *    vertebra's de-pedicled label (255 inside). All zero: no QC picture (the
 *    spine stage failed on that case or vertebra; the log says why). */
#define HV_PIPE_IMG 32
#define HV_PIPE_QC 256
enum { HV_IMG_LOSS = 0, HV_IMG_ORI, HV_IMG_SYN, HV_IMG_COUNT };
enum { HV_QC_SAG = 0, HV_QC_COR, HV_QC_VIEWS };
enum { HV_QC_CT = 0, HV_QC_LABEL, HV_QC_CHANNELS };
#define HV_PIPE_QC_BYTES ((size_t)HV_QC_VIEWS * HV_QC_CHANNELS * HV_PIPE_QC * HV_PIPE_QC)

typedef enum hv_pipe_pictures {
    HV_PIPE_PICTURES_NONE = 0,   /* stage off                                   */
    HV_PIPE_PICTURES_QC,         /* loss plane + QC slices                      */
    HV_PIPE_PICTURES_FULL        /* loss, original and pseudo-healthy planes    */
} hv_pipe_pictures;

/* ------------------------------------------------------------- options */

typedef struct hv_pipe_opts {
    hv_measure_opts measure;     /* centroids: set per case by `load`           */
    hv_spine_opts spine;         /* straightening and crop options              */
    int use_centroids;           /* read the case's centroid file if it has one */
    int same_grid;               /* 1: CT and mask must share one grid (mean_hu */
                                 /* reads the CT at mask voxels); `straighten`  */
                                 /* allows any two grids (0)                    */
    int need_neighbour;          /* 1: a case with one vertebra fails (a healthy */
                                 /* estimate from level priors alone would look */
                                 /* like a result); `measure` flags it instead  */
    const char *synth;           /* synthesis method ("baseline"); borrowed     */
    int rhlv_reference;          /* 1: RHLV by the reference's column counting  */
                                 /* on straightened crops (spec section 9)      */
    const char *grader;          /* "rule" | "svm" | "senet3d"; borrowed        */
    const void *grader_model;    /* borrowed; hv_svm_grader for "svm"           */
    void *synth_model;           /* borrowed; hv_model_synth for "gan", opened  */
                                 /* once per process (not thread-safe: one case */
                                 /* at a time per model); "aotgan" likewise,    */
                                 /* opened with generator AOTGAN; the "gan"     */
                                 /* keys below apply to it too                  */
    int synth_fallback;          /* "gan", a vertebra it fails on: 1 (default)  */
                                 /* the baseline's values, 0 none (NaN); both   */
                                 /* flagged HV_MEAS_SYNTH_FALLBACK              */
    int synth_crops;             /* "gan": keep the synthesized crops in the    */
                                 /* state (syn_labels; 2: syn_ct too); 0 none   */
    const char *synth_nifti_dir; /* "gan": NULL, or a folder that gets          */
                                 /* CT_fake/ and label_fake/<case>_<label>.nii.gz */
                                 /* (the reference's files); borrowed           */
    const hv_volume *synth_mask; /* "mask": a pseudo-healthy label map on the   */
                                 /* case's grid (measure --synth-mask); borrowed */
    int pictures;                /* hv_pipe_pictures                            */
    void *attention_model;       /* borrowed; hv_model_cam (hv/model.h): the    */
                                 /* classifier of the attention stage, opened   */
                                 /* once per process (not thread-safe: one case */
                                 /* at a time per model); NULL: stage off       */
    void *user;                  /* borrowed; for stages added by callers       */
} hv_pipe_opts;

/* Defaults: measure/spine defaults, centroids used, same grid, a neighbour
 * needed, baseline synthesis, robust RHLV, rule grader, no pictures. */
void hv_pipe_opts_default(hv_pipe_opts *o);

/* ------------------------------------------------------------- the state */

/* The attention stage's result for one crop (spec 7). */
typedef struct hv_pipe_attn {
    int label;                   /* the crop's target label (0: no crop)        */
    hv_volume *cam;              /* owned: F32 [0, 1], the crop's dims and      */
                                 /* affine, zeros outside LR slices 17..46;     */
                                 /* NULL when there is no usable map            */
    double p_fracture;           /* mean softmax(logits)[1] over the 30 slices; */
                                 /* NaN without a map                           */
    double mass_in_body;         /* the CAM's mass on the 30 slices inside the  */
                                 /* target's de-pedicled body / its whole mass  */
                                 /* there; NaN without a map or when it is 0    */
    int max_slice;               /* LR index i of the CAM's largest voxel (the  */
                                 /* first in storage order, i fastest); -1      */
                                 /* without a map or when the map is all 0      */
    int nonfinite;               /* the classifier gave NaN/Inf (map dropped)   */
} hv_pipe_attn;

typedef struct hv_pipe_state {
    /* set by hv_pipe_state_init */
    const hv_case *cs;           /* borrowed: id, paths, status                 */
    /* products; each owned by the state, NULL until its stage ran */
    hv_volume *mask;             /* load: labels, I16                           */
    hv_volume *ct;               /* load: HU, F32; NULL when the case has none  */
    hv_centroids *ctd;           /* load: VerSe centroids or NULL               */
    hv_spine_case *spine;        /* straighten                                  */
    hv_spine_crop **crops;       /* crop: n_crops entries, NULL where that      */
    size_t n_crops;              /* vertebra could not be cropped               */
    hv_spine_measure *m;         /* measure; synthesize fills h_syn, rhlv;      */
                                 /* grade fills grade                           */
    int n_img;                   /* pictures: planes per vertebra (1 or 3)      */
    float *img;                  /* pictures: m->n * n_img * IMG * IMG          */
    uint8_t *qc;                 /* pictures: m->n * HV_PIPE_QC_BYTES           */
    hv_volume **syn_labels;      /* synthesize ("gan", synth_crops >= 1): m->n  */
                                 /* entries, the U8 synthesized label crop of   */
                                 /* each vertebra (crop layout, hv_spine_crop), */
                                 /* NULL where it fell back; owned              */
    hv_volume **syn_ct;          /* the same, U8 synthesized CT (synth_crops 2) */
    hv_pipe_attn *attn;          /* attention: n_attn entries, one per crop (in */
    size_t n_attn;               /* the order of crops); owned with their maps  */
    size_t n_syn;                /* entries of syn_labels and syn_ct            */
    void *extra;                 /* owned by the stage that set it; freed with  */
    void (*extra_free)(void *);  /* extra_free by hv_pipe_state_clear           */
    /* bookkeeping */
    unsigned have;               /* HV_PIPE_* products present                  */
    double seconds[HV_PIPE_MAX_STAGES]; /* per table row; 0 = did not run       */
    int failed_stage;            /* row that failed the case, -1 none           */
    /* set by the caller after hv_pipe_state_init (kept by _clear) */
    struct hv_pipe_loader *loader; /* borrowed; NULL: `load` reads the files    */
                                 /* itself; else it takes them from the loader  */
                                 /* (read ahead, hv_pipe_loader_prefetch)       */
} hv_pipe_state;

/* Start a state for case `cs` (borrowed; must outlive the state). */
void hv_pipe_state_init(hv_pipe_state *s, const hv_case *cs);
/* Free every product; the state can be initialised again. */
void hv_pipe_state_clear(hv_pipe_state *s);
/* The crop of vertebra `label`, or NULL. */
const hv_spine_crop *hv_pipe_crop_find(const hv_pipe_state *s, int label);
/* The attention result of vertebra `label` (borrowed from the state), or
 * NULL when the stage did not run or the vertebra has no crop. */
const hv_pipe_attn *hv_pipe_attn_find(const hv_pipe_state *s, int label);

/* ------------------------------------------------- attention outputs */

/* The summary numbers of a CAM volume `cam` (F32, crop dims) of crop `cr`:
 * mass_in_body and max_slice as hv_pipe_attn says. HV_ERR_ARG when the dims
 * differ. */
hv_status hv_pipe_attn_summary(const hv_spine_crop *cr, const hv_volume *cam, double *mass_in_body,
                               int *max_slice);
/* The QC overlay of LR slice `slice` (0 <= slice < dim[0]) of crop cr: the
 * CT slice (grey) with the CAM in the JET colour map blended at alpha 0.4
 * (spec 7's figure: 0.6 grey + 0.4 colour). rgb: rows x cols x 3 bytes,
 * caller-allocated, rows x cols = hv_spine_slice_dims (row 0 cranial). */
hv_status hv_pipe_attn_overlay(const hv_spine_crop *cr, const hv_volume *cam, int64_t slice,
                               uint8_t *rgb);
/* The reference's files of one vertebra into dir (created): <case>_<label>
 * _cam.nii.gz (F32, the reference's array layout 256 rows x 256 AP x 64 LR
 * with the crop's world positions, as spec 7 stores it) and <case>_<label>
 * _cam.png (the overlay of `slice`; -1: the slice of the CAM's maximum).
 * a->cam must be set. */
hv_status hv_pipe_attn_write(const char *dir, const char *case_id, const hv_spine_crop *cr,
                             const hv_pipe_attn *a, int64_t slice);

/* ------------------------------------------------------------- the table */

typedef struct hv_pipe_stage {
    const char *name;            /* unique, [a-z_], shown in logs and the store */
    const char *what;            /* one line for docs and `--help`              */
    unsigned needs;              /* products that must be there                 */
    unsigned uses;               /* products used when there                    */
    unsigned produces;
    /* NULL = always on; else whether the options switch the stage on */
    int (*enabled)(const hv_pipe_opts *o);
    /* NULL = none; else more needs of the configured method */
    unsigned (*method_needs)(const hv_pipe_opts *o);
    hv_status (*run)(const hv_pipe_opts *o, hv_pipe_state *s);
} hv_pipe_stage;

typedef struct hv_pipe_table {
    const hv_pipe_stage *stage;  /* borrowed, n rows                            */
    int n;
} hv_pipe_table;

/* The default table (static; never freed). */
const hv_pipe_table *hv_pipe_default(void);

/* --------------------------------------------------------------- a plan */

typedef struct hv_pipe_plan {
    const hv_pipe_table *t;      /* borrowed                                    */
    const hv_pipe_opts *o;       /* borrowed                                    */
    unsigned active;             /* bit i: row i runs                           */
    unsigned required;           /* products whose stage failing fails a case   */
} hv_pipe_plan;

/* Decide which rows run for the products `want` (HV_PIPE_* bits): a wanted
 * product whose only stage the options switch off (pictures = none) is
 * simply not made; the caller sees it missing from s->have. Refuses a table
 * that is too long, has duplicate or bad names, or an active stage whose
 * needs no earlier active stage produces (the message names both), and an
 * unknown synthesis method or grader. `t` and `o` must outlive the plan. */
hv_status hv_pipe_plan_make(const hv_pipe_table *t, const hv_pipe_opts *o, unsigned want,
                            hv_pipe_plan *out);

/* Run the active rows on `s` in table order, timing each into s->seconds.
 * On the failure of a stage making a required product: returns its status,
 * sets s->failed_stage, and leaves the detail as "<stage>: <reason>". The
 * failure of a stage making only optional products is logged as a warning
 * naming the case and the stage, and the case goes on without them. */
hv_status hv_pipe_run(const hv_pipe_plan *p, hv_pipe_state *s);

/* "load 0.12, straighten 0.31, ..." for the active rows into buf (always
 * NUL-terminated). Returns buf. */
char *hv_pipe_timings(const hv_pipe_plan *p, const hv_pipe_state *s, char *buf, size_t cap);

/* ------------------------------------------------------- reading ahead */

/* A loader reads the mask and the CT of the cases it is given on two
 * threads of its own (src/pipeline/loader.c): both files of a case at once,
 * and the next case while the caller computes the current one. Contract:
 *
 *   prefetch(case)  queue the case's reads (returns at once);
 *   take(case)      wait for them and hand over the volumes, or each
 *                   file's read error exactly as hv_io_nifti_read gave it.
 *
 * At most HV_PIPE_LOADER_DEPTH cases are held (queued, being read or read
 * and not yet taken): the one the caller is about to take and one ahead, so
 * with the volumes of the case being computed no more than three cases'
 * volumes are in memory, and usually two. A case is taken once; taking a
 * case drops every case queued before it (their volumes are freed); a case
 * never prefetched is read on take (still both files at once), after every
 * case held is dropped. One thread calls prefetch, take and drop. The case is
 * borrowed from prefetch until it is taken or dropped. What the loader
 * reads is decided by the case alone: nothing when cs->status != HV_OK, the
 * mask when mask_path is set (as I16), the CT when ct_path is set (F32).
 * hv_pipe_loader_free stops the threads: reads not started are dropped,
 * a read in progress is finished and freed (a read cannot be interrupted,
 * so free waits at most one file per thread). */
#define HV_PIPE_LOADER_DEPTH 2

typedef struct hv_pipe_loader hv_pipe_loader;

typedef struct hv_pipe_loader_opts {
    /* the read of one file; NULL: hv_io_nifti_read(path, dtype, NULL, out,
     * NULL). Called on the loader's threads, two at once. For tests. */
    hv_status (*read)(void *user, const char *path, hv_dtype dtype, hv_volume **out);
    void *user;                  /* borrowed; passed to read                    */
} hv_pipe_loader_opts;

/* What take hands over. */
typedef struct hv_pipe_loaded {
    const hv_case *cs;           /* the case taken (borrowed)                   */
    hv_volume *mask, *ct;        /* owned by the caller; NULL: not read or its  */
                                 /* read failed                                 */
    hv_status mask_st, ct_st;    /* each read's status (HV_OK when not read)    */
    char *mask_err, *ct_err;     /* owned; its error detail, NULL when HV_OK    */
    double read_s[2];            /* seconds of the mask's and the CT's read     */
    double load_s;               /* wall seconds from the first read's start to */
                                 /* the last one's end (0: nothing read)        */
    double wait_s;               /* how long take waited for them               */
    double overlap_s;            /* seconds both reads were in flight at once   */
} hv_pipe_loaded;

/* Free what `d` still owns and zero it. */
void hv_pipe_loaded_clear(hv_pipe_loaded *d);

/* Start the threads. `o` may be NULL (read NIfTI files); it is copied. */
hv_status hv_pipe_loader_create(const hv_pipe_loader_opts *o, hv_pipe_loader **out);
/* Queue `cs`'s reads. HV_ERR_LIMIT when HV_PIPE_LOADER_DEPTH cases are
 * held; HV_ERR_ARG when `cs` is held already. */
hv_status hv_pipe_loader_prefetch(hv_pipe_loader *l, const hv_case *cs);
/* Wait for `cs`'s reads (queued now if it was not) and move their results
 * into *out (zeroed first). Fails only when the loader cannot work (out of
 * memory); a failed read is not a failure of take: see out->*_st. */
hv_status hv_pipe_loader_take(hv_pipe_loader *l, const hv_case *cs, hv_pipe_loaded *out);
/* Forget `cs` if it is held (a case the caller will not take); no-op
 * otherwise. Waits for its reads in progress. */
void hv_pipe_loader_drop(hv_pipe_loader *l, const hv_case *cs);
/* The timings of the last take (zeros before the first), without volumes. */
void hv_pipe_loader_last(const hv_pipe_loader *l, hv_pipe_loaded *out);
/* Stop the threads and free everything not taken; NULL is fine. */
void hv_pipe_loader_free(hv_pipe_loader *l);

/* The `load` stage's reads of the mask and then the CT of `cs` (mask_path
 * must be set), through `l` when it is not NULL, else directly: the same
 * volumes and the same error (status and detail) either way; the mask's
 * error first. *mask and *ct (NULL when the case has no CT) are the
 * caller's; either may be set when the other failed. A loader that cannot
 * work is logged and the files are read here. */
hv_status hv_pipe_load_volumes(hv_pipe_loader *l, const hv_case *cs, hv_volume **mask,
                               hv_volume **ct);

/* ---------------------------------------------------------- registries */

/* A synthesis method: fills h_syn, syn_map, rhlv and flags of every
 * vertebra of s->m. `needs`: products it needs beyond the measured heights.
 * own_reference: 1 when the method computes the reference-mode RHLV
 * (rhlv_reference) itself; 0: the stage replaces its heights by
 * hv_measure_reference_case afterwards (the baseline's way). per_case: 1
 * when the method reads an input given for one case (measure --synth-mask),
 * so a batch run cannot offer it (synthesis.method lists the others). */
typedef struct hv_pipe_synth {
    const char *name;
    const char *what;
    unsigned needs;
    int own_reference;
    int per_case;
    hv_status (*run)(const hv_pipe_opts *o, hv_pipe_state *s);
} hv_pipe_synth;

/* A grader: sets v->grade of every vertebra of s->m (-1: not graded). */
typedef struct hv_pipe_grader {
    const char *name;
    const char *what;
    int needs_model;             /* 1: o->grader_model must be set              */
    int (*grade)(const hv_pipe_opts *o, const hv_vert_measure *v);
    unsigned needs;              /* products it needs beyond the heights (the   */
                                 /* grade stage's method needs): senet3d's      */
                                 /* HV_PIPE_CROPS, whose boxes the run keeps    */
} hv_pipe_grader;

/* Lookups by name; NULL with the error detail listing the names there are. */
const hv_pipe_synth *hv_pipe_synth_find(const char *name);
const hv_pipe_grader *hv_pipe_grader_find(const char *name);
/* "baseline" / "rule, svm": the registered names, comma separated, into buf. */
char *hv_pipe_synth_names(char *buf, size_t cap);
char *hv_pipe_grader_names(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* HV_PIPELINE_H */
