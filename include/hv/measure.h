/*
 * hv/measure.h: vertebral heights, RHLV, height-loss maps, the baseline
 * pseudo-healthy estimate, graders (Genant rule, libsvm / liblinear SVM) and metrics.
 *
 * Two ways to measure heights:
 *
 *  - robust (hv_measure_spine): our own method (docs/measure.md). It works on
 *    a label map in any orientation and spacing directly in world mm: per
 *    vertebra a local frame (spine axis from the neighbours' centroids,
 *    anterior from the anatomical A direction projected perpendicular to it),
 *    the body separated from the posterior elements at the spinal canal, and
 *    heights by ray marching along the local axis through a trilinear
 *    (partial-volume) indicator with sub-voxel endpoints. Anterior, middle and
 *    posterior are the centres of the AP thirds (1/6, 1/2, 5/6 of the depth),
 *    pooled over several parasagittal rays with outlier rejection. A region
 *    that cannot be measured gives NaN and a flag, never a silent zero.
 *
 *  - reference (hv_measure_rhlv_reference): exactly the reference's column
 *    counting on a straightened crop (spec section 9), for comparison with the
 *    published pipeline.
 *
 * Ownership: objects returned through `out` belong to the caller and are
 * freed with the matching *_free (each accepts NULL). Input pointers are
 * borrowed for the duration of the call.
 */
#ifndef HV_MEASURE_H
#define HV_MEASURE_H

#include <stdint.h>

#include "hv/core.h"
#include "hv/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Regions of a vertebral body, in this order everywhere (arrays of 4). */
enum {
    HV_REG_ALL = 0,
    HV_REG_ANT = 1,
    HV_REG_MID = 2,
    HV_REG_POST = 3,
    HV_REG_COUNT = 4
};

/* Per-vertebra flags (bit set). */
#define HV_MEAS_TRUNCATED    0x001u /* touches the border of the field of view      */
#define HV_MEAS_SMALL        0x002u /* too few voxels to measure: heights are NaN   */
#define HV_MEAS_EMPTY_REGION 0x004u /* at least one region had no valid ray (NaN)   */
#define HV_MEAS_AXIS_PCA     0x008u /* no labelled neighbour: axis from PCA of body */
#define HV_MEAS_ONE_NEIGHBOUR 0x010u /* axis from one neighbour only                */
#define HV_MEAS_DEFORMED     0x020u /* judged deformed: not used as a reference     */
#define HV_MEAS_ONE_SIDED    0x040u /* baseline used references on one side only    */
#define HV_MEAS_NO_REFERENCE 0x080u /* no healthy vertebra: size prior x depth only */
#define HV_MEAS_NO_SYNTH     0x100u /* no synthesized heights (RHLV is NaN)         */
#define HV_MEAS_SYNTH_FALLBACK 0x200u /* the configured synthesis (the GAN) failed   */
                                      /* on this vertebra or gave non-finite values: */
                                      /* its pseudo-healthy values are the fallback's */
                                      /* (baseline), or NaN with no_synth when the   */
                                      /* fallback is none; the log says why          */

/* Comma-free text of the flags ("truncated|deformed"), "" for none, into
 * buf (always NUL-terminated). Returns buf. */
char *hv_measure_flags_str(unsigned flags, char *buf, size_t cap);

typedef struct hv_measure_opts {
    double min_volume_ml;   /* smaller labels are flagged SMALL (default 3 ml)        */
    int n_lateral_rays;     /* parasagittal rays per region (default 5, odd)          */
    double lateral_frac;    /* rays span +-lateral_frac x body width (default 0.12)   */
    double map_step_mm;     /* grid step of the height maps (default 1 mm)            */
    double deform_thresh;   /* baseline: RHLV above this marks a reference deformed (0.12) */
    int max_ref_distance;   /* baseline: search at most this many levels away (3)     */
    int refs_per_side;      /* baseline: nearest references used per side (2, max 4)  */
    const hv_centroids *centroids; /* optional, borrowed: voxel centroids in the mask's grid
                                      used for the spine axis instead of the mask's own */
    int totalseg_compat;    /* 1: measure like TotalSegmentator's spine report, to compare
                               like with like: points at 15/50/85 % of the AP chord and,
                               instead of pooling, the one parasagittal plane (central
                               50 % of the width, ~5 mm steps) with the largest spread */
} hv_measure_opts;

void hv_measure_opts_default(hv_measure_opts *o);

/* A height map over the body's axial footprint: na x nl rays on a grid of
 * `step` mm; element [ia + na*il] is the height (mm) at AP position
 * a = a0 - ia*step (from anterior to posterior, a measured from the body
 * centroid along `ant`) and lateral position l = l0 + il*step. NaN where the
 * ray misses the body. */
typedef struct hv_height_map {
    int na, nl;
    double step, a0, l0;
    float *h;               /* owned; na*nl */
    float *mid;             /* owned; na*nl: centre of the ray's run, mm along the
                               axis from the body centroid (original map only;
                               NULL in the pseudo-healthy map) */
} hv_height_map;

typedef struct hv_vert_measure {
    int label;              /* VerSe label                                       */
    unsigned flags;         /* HV_MEAS_*                                         */
    size_t n_voxels;        /* voxels of the label                               */
    size_t n_body_voxels;   /* voxels kept as vertebral body                     */
    double volume_ml;       /* body volume                                       */
    double centroid[3];     /* world mm, body centroid                           */
    double axis[3];         /* unit local spine axis, towards superior           */
    double ant[3];          /* unit, perpendicular to axis, towards anterior     */
    double lat[3];          /* axis x ant                                        */
    double depth_mm;        /* AP depth of the body at mid height                */
    double width_mm;        /* LR width of the body at mid height                */
    double front_mm;        /* anterior surface, mm along ant from the centroid  */
    double h_ori[HV_REG_COUNT]; /* measured heights (mm); NaN if not measurable  */
    double h_syn[HV_REG_COUNT]; /* pseudo-healthy heights (mm); NaN if none      */
    double rhlv[HV_REG_COUNT];  /* (h_syn - h_ori) / h_syn; NaN if unknown       */
    int grade;              /* Genant grade from a grader; -1 when not graded    */
    double mean_hu;         /* mean CT value in the body; NaN without CT         */
    hv_height_map ori_map;  /* measured height map (h NULL if not measured)      */
    hv_height_map syn_map;  /* pseudo-healthy map on the same grid (or h NULL)   */
} hv_vert_measure;

typedef struct hv_spine_measure {
    size_t n;
    hv_vert_measure *v;     /* owned; sorted by level, cranial first             */
} hv_spine_measure;

/* Measure every labelled vertebra of `mask` (any integer dtype, VerSe labels
 * 1..28; other values are ignored) with the robust method. `ct` (may be NULL)
 * must be on the same grid; it only fills mean_hu. `o` may be NULL. A mask
 * with no label is HV_ERR_EMPTY. */
hv_status hv_measure_spine(const hv_volume *mask, const hv_volume *ct,
                           const hv_measure_opts *o, hv_spine_measure **out);
void hv_measure_spine_free(hv_spine_measure *m);

/* Baseline pseudo-healthy estimate (no trained model): each vertebra's
 * healthy heights from its nearest undeformed neighbours above and below,
 * scaled by level-dependent size priors, iterated so that deformed vertebrae
 * are not used as references. Fills h_syn, syn_map, rhlv and flags. Never
 * reads ground truth. `o` may be NULL. */
hv_status hv_measure_baseline(hv_spine_measure *m, const hv_measure_opts *o);

/* Level size prior: typical healthy anterior, middle, posterior height and AP
 * depth (mm) of a level; HV_ERR_NOT_FOUND for labels without a prior. */
hv_status hv_measure_level_prior(int label, double hamp[3], double *depth_mm);

/* Pseudo-healthy label map of one vertebra (after hv_measure_baseline): a
 * copy of `mask` (same grid and dtype) in which every column of the body of
 * `label` is stretched or shrunk along the local axis to its pseudo-healthy
 * height, moving the endplate on the side of the larger gap to the
 * neighbouring vertebra (the collapsed one), about the column centre when a
 * neighbour is not in view. Only voxels that are background or the vertebra
 * itself change; neighbours and posterior elements are kept. Columns without
 * a height are left as they were. HV_ERR_NOT_FOUND when the label was not
 * measured, HV_ERR_EMPTY when it has no maps. */
hv_status hv_measure_synth_mask(const hv_volume *mask, const hv_spine_measure *m, int label,
                                hv_volume **out);

/* Heights of vertebra v (measured by hv_measure_spine, so it has a frame and
 * an ori_map) on another label map `mask` of any grid, typically its
 * pseudo-healthy shape: the same rays as the original's measurement (v's
 * centroid, axis, anterior and lateral directions, regions at 1/6, 1/2, 5/6
 * of its depth, the same parasagittal offsets, the ori_map grid), so that
 * h_syn and h_ori differ only by the shape, not by where the rays go. The
 * mask is read without a canal cut: it should hold the body (a de-pedicled
 * label, or rays that stay in the body's AP range, as v's regions do).
 * Fills v->h_syn, v->rhlv and v->syn_map (replacing any). keep (may be NULL):
 * a ray whose base point p (world mm, in the plane through the body centroid
 * perpendicular to the axis) gets keep(ctx, p) == 0 is not cast (NaN in the
 * map, left out of the pooled heights). HV_ERR_EMPTY when v has no frame;
 * the mask's errors (float dtype, singular affine) as hv_measure_spine. */
hv_status hv_measure_heights_frame(const hv_volume *mask, const hv_measure_opts *o,
                                   int (*keep)(void *ctx, const double p[3]), void *ctx,
                                   hv_vert_measure *v);

/* RHLV from heights: (syn - ori) / syn; NaN when either is NaN or syn <= 0. */
double hv_measure_rhlv(double h_syn, double h_ori);

/* ------------------------------------------------------ reference (sec 9) */

/* Result of the reference's RHLV computation for one vertebra. */
typedef struct hv_rhlv_ref {
    double h_syn[HV_REG_COUNT];
    double h_ori[HV_REG_COUNT];
    double rhlv[HV_REG_COUNT];
    double relative_height_label; /* min(ori ant,mid,post) / (max + 1e-6)       */
    int n_slices_used;            /* slices where both masks were non-empty      */
    long n_cols[2][HV_REG_COUNT]; /* kept columns, [0] syn, [1] ori              */
} hv_rhlv_ref;

/* The reference's column counting (spec section 9) on binary crops. Both
 * arrays have dims dim[0] rows (craniocaudal), dim[1] columns (AP, anterior
 * = small index), dim[2] slices (LR); element (r, c, s) is at
 * r + dim[0] * (c + dim[1] * s), i.e. the layout of an hv_volume whose i, j, k
 * are rows, columns, slices. Nonzero = the target vertebra. `threshold` is
 * the column-height fraction T (the reference's main uses 0.7). An empty
 * original mask is HV_ERR_EMPTY. */
hv_status hv_measure_rhlv_reference(const uint8_t *ori, const uint8_t *syn,
                                    const int64_t dim[3], double threshold,
                                    hv_rhlv_ref *out);

/* The same on label crops (any dtype; voxels equal to `label` are the target),
 * with axes i, j, k = rows, columns, slices. */
hv_status hv_measure_rhlv_reference_vol(const hv_volume *ori, const hv_volume *syn,
                                        int label, double threshold, hv_rhlv_ref *out);

/* The reference's RHLV on a whole case, from our own stages: the case is
 * straightened once (src/spine), each measured vertebra's baseline
 * pseudo-healthy mask (hv_measure_synth_mask; run hv_measure_baseline first)
 * and the original mask go through the same map, are de-pedicled and cropped
 * around the target, and hv_measure_rhlv_reference counts columns. Replaces
 * h_ori, h_syn and rhlv of every vertebra in `m` by the reference values (mm
 * = voxels at the 1 mm straightened step); a vertebra that cannot be cropped
 * gets NaN and HV_MEAS_NO_SYNTH. `ct` may be NULL (the mask stands in for
 * the spine stage, which only needs labels here). */
hv_status hv_measure_reference_case(const hv_volume *mask, const hv_volume *ct,
                                    hv_spine_measure *m, double threshold);

/* ---------------------------------------------------------------- graders */

/* Genant rule on a relative height loss (fraction): < 0.20 -> 0,
 * [0.20, 0.25) -> 1, [0.25, 0.40) -> 2, >= 0.40 -> 3; -1 for NaN. */
int hv_measure_genant(double loss);
/* Grade a vertebra by the largest of its anterior, middle, posterior RHLV
 * (NaN regions ignored; -1 when all are NaN). */
int hv_measure_genant_vert(const hv_vert_measure *v);

/* --------------------------------------------------- classification metrics */

/* Metrics over integer class labels, as scikit-learn computes them: the
 * classes are the sorted union of those in y_true and y_pred; precision of a
 * class never predicted and recall of a class never true count as 0
 * (zero_division default). */
typedef struct hv_class_metrics {
    int n_classes;          /* union of classes                                  */
    int classes[16];        /* sorted class values                               */
    long confusion[16][16]; /* [true][pred] over `classes`                       */
    double macro_precision, macro_recall, macro_f1, accuracy;
    double kappa_linear;    /* linearly weighted Cohen's kappa (NaN if undefined) */
} hv_class_metrics;

/* Classes must be in 0..15; n >= 1. */
hv_status hv_metrics_classify(const int *y_true, const int *y_pred, size_t n,
                              hv_class_metrics *out);

/* ------------------------------------------------------ generation metrics */

/* PSNR = 10 log10(data_range^2 / MSE) over n values (as skimage's
 * peak_signal_noise_ratio); +inf when the images are equal. */
double hv_metrics_psnr(const double *ref, const double *img, size_t n, double data_range);

/* Mean SSIM of two 2-D images (h rows x w columns, row-major) exactly as
 * scikit-image's structural_similarity with its defaults: 7x7 uniform window,
 * K1 0.01, K2 0.03, sample covariance (N/(N-1)), the given data_range, mean
 * over the image cropped by 3 pixels on each side. Images smaller than 7x7
 * are HV_ERR_ARG. */
hv_status hv_metrics_ssim(const double *x, const double *y, int h, int w,
                          double data_range, double *out);

/* Mean SSIM of two 2-D images (h rows x w columns, row-major) as Wang et al.
 * 2004 define it and scikit-image computes it with gaussian_weights=True,
 * sigma=1.5, use_sample_covariance=False: local means, variances and
 * covariance under an 11x11 Gaussian window (sigma 1.5, weights normalised
 * to sum 1), population covariance, K1 0.01, K2 0.03, the given data_range;
 * the mean over the image minus a 5-pixel border (the pixels whose window
 * lies inside the image). Images smaller than 11x11 are HV_ERR_ARG. */
hv_status hv_metrics_ssim_gaussian(const double *x, const double *y, int h, int w,
                                   double data_range, double *out);

/* Overlap of two binary volumes of n voxels (nonzero = inside). Dice and IoU
 * are 1 when both are empty; rvd = ||A| - |B|| / |A| (A = reference; NaN when
 * A is empty). */
typedef struct hv_overlap {
    double dice, iou, rvd;
    size_t n_a, n_b, n_both;
} hv_overlap;
void hv_metrics_overlap(const uint8_t *a, const uint8_t *b, size_t n, hv_overlap *out);

/* -------------------------------------------------------------- SVM (sec 10) */

/* One row of the SVM protocol. */
typedef struct hv_svm_row {
    char case_id[64];
    int label;
    int grade;              /* 0..3                                             */
    hv_split_set set;
    double x[3];            /* Pre, Mid, Post RHLV                               */
} hv_svm_row;

/* StratifiedKFold(n_splits, shuffle=False) of scikit-learn: fold[i] receives
 * the test fold (0..n_splits-1) of sample i. HV_ERR_ARG when n_splits < 2, when
 * n_splits > n, or when every class has fewer than n_splits members (as
 * scikit-learn refuses); a class smaller than n_splits only warns. */
hv_status hv_svm_stratified_folds(const int *y, size_t n, int n_splits, int *fold);

typedef struct hv_svm_fold_result {
    hv_class_metrics m;     /* on the validation rows                            */
    int *pred;              /* owned; predictions for the val rows in order      */
} hv_svm_fold_result;

/* Which solver trains the linear C-SVC (docs/measure.md, "SVM solvers"):
 *  - HV_SVM_LIBSVM: libsvm's SMO, as scikit-learn's SVC (the reference);
 *  - HV_SVM_LIBLINEAR: one-vs-one over liblinear's binary dual coordinate
 *    descent (L2-regularised hinge loss, solver L2R_L1LOSS_SVC_DUAL), same C,
 *    balanced class weights, scaler and vote rule as libsvm; the intercept is
 *    an extra feature of value HV_SVM_LINEAR_BIAS and so is (lightly)
 *    regularised, where libsvm's is not. Linear in the rows, for large
 *    training sets. */
typedef enum hv_svm_solver { HV_SVM_LIBSVM = 0, HV_SVM_LIBLINEAR = 1 } hv_svm_solver;
#define HV_SVM_LINEAR_BIAS 10.0
#define HV_SVM_LINEAR_EPS 0.1
/* "libsvm" / "liblinear". */
const char *hv_svm_solver_name(hv_svm_solver s);

typedef struct hv_svm_cv {
    int n_folds;
    size_t n_pool, n_val;   /* train+test rows, val rows                         */
    int *fold;              /* owned; n_pool test-fold ids                       */
    hv_svm_fold_result *folds; /* owned; n_folds                                 */
    double mean[4], var[4]; /* macro F1, P, R, accuracy: mean, population variance */
    double scaler_mean[3], scaler_scale[3];
    hv_svm_solver solver;   /* the solver every fold uses                        */
    unsigned seed;
    size_t *pool, *val;     /* owned; row indices of the pool and the val rows   */
    int *ytrue;             /* owned; n_val true grades of the val rows          */
} hv_svm_cv;

/* The reference's protocol (spec section 10): rows in the reference order
 * (the split file's order); StandardScaler fitted on train+test rows; 5-fold
 * stratified (no shuffle) over train+test; each fold trains a linear C-SVC
 * (C = 1, balanced class weights) on its training part and is scored on the
 * val rows. Deterministic: srand(seed) is called before every libsvm call.
 * Empty train+test or val is HV_ERR_EMPTY; grades outside 0..3 HV_ERR_ARG. */
hv_status hv_svm_cross_validate(const hv_svm_row *rows, size_t n, int n_folds,
                                unsigned seed, hv_svm_cv **out);
/* The same with a chosen solver. */
hv_status hv_svm_cross_validate_solver(const hv_svm_row *rows, size_t n, int n_folds,
                                       unsigned seed, hv_svm_solver solver, hv_svm_cv **out);
void hv_svm_cv_free(hv_svm_cv *cv);

/* The protocol in parts, so that folds can be trained in different places
 * (the MPI gather gives each rank some folds):
 *  - hv_svm_cv_begin: checks the rows, computes folds and scaler, allocates
 *    the fold results (pred NULL); no training. Errors as above.
 *  - hv_svm_cv_fold: trains fold f (0 <= f < n_folds) on the same rows and
 *    fills cv->folds[f] (pred and metrics). Each fold is deterministic on
 *    its own (srand(seed) before the solver), so where it runs does not
 *    matter.
 *  - hv_svm_cv_finish: once every folds[f].pred is set (by hv_svm_cv_fold or
 *    copied in, n_val values of malloc'd memory the cv takes over),
 *    recomputes each fold's metrics from its predictions and the mean and
 *    variance. HV_ERR_ARG when a fold has no predictions.
 * `rows`/`n` must be the same in every call. */
hv_status hv_svm_cv_begin(const hv_svm_row *rows, size_t n, int n_folds, unsigned seed,
                          hv_svm_solver solver, hv_svm_cv **out);
hv_status hv_svm_cv_fold(hv_svm_cv *cv, const hv_svm_row *rows, size_t n, int f);
hv_status hv_svm_cv_finish(hv_svm_cv *cv);

/* A trained grader: scaler + libsvm model, or scaler + liblinear's
 * one-vs-one linear functions. */
typedef struct hv_svm_grader hv_svm_grader;

/* Train on the rows whose set is in `sets_mask` (bit (1 << HV_SPLIT_*)),
 * scaler fitted on the same rows; libsvm. */
hv_status hv_svm_train(const hv_svm_row *rows, size_t n, unsigned sets_mask,
                       unsigned seed, hv_svm_grader **out);
/* The same with a chosen solver. */
hv_status hv_svm_train_solver(const hv_svm_row *rows, size_t n, unsigned sets_mask,
                              unsigned seed, hv_svm_solver solver, hv_svm_grader **out);
hv_svm_solver hv_svm_grader_solver(const hv_svm_grader *g);
/* Save as `path` (libsvm: libsvm's model text; liblinear: an
 * "hv-svm-linear 1" text of the one-vs-one functions) and `path`.scaler (our
 * text file). hv_svm_load reads either. */
hv_status hv_svm_save(const hv_svm_grader *g, const char *path);
hv_status hv_svm_load(const char *path, hv_svm_grader **out);
/* Predict the grade of one (Pre, Mid, Post) RHLV triple; NaN inputs give -1. */
int hv_svm_predict(const hv_svm_grader *g, const double x[3]);
/* The one-vs-one decision values of one triple, in libsvm's pair order
 * ((0,1), (0,2), ..., (k-2,k-1) over the classes the grader was trained on,
 * sorted); a value > 0 votes for the pair's first class. Returns the number
 * of pairs written to dec (at most 6), 0 for NaN input or no grader. */
int hv_svm_decision(const hv_svm_grader *g, const double x[3], double dec[6]);
void hv_svm_grader_free(hv_svm_grader *g);

/* Read an RHLV table (the CSV `healthivert measure` writes: needs the columns
 * case, label, rhlv_ant, rhlv_mid, rhlv_post) and join it with a split: rows
 * come in the split's order; split entries missing from the table, or whose
 * RHLV is not finite, are skipped and counted in *n_skipped (may be NULL). */
hv_status hv_svm_rows_from_table(const char *csv_path, const hv_split *split,
                                 hv_svm_row **rows, size_t *n, size_t *n_skipped);

/* --------------------------------------------------------------- output */

/* Write the per-vertebra CSV (header included) for one case; append=1 adds
 * rows without a header to an existing file. */
hv_status hv_measure_write_csv(const char *path, const char *case_id,
                               const hv_spine_measure *m, int append);

/* Height-loss heatmap PNG of one vertebra (AP x LR, relative loss in %, with
 * a colour bar and A/P marked) and the anterior-to-posterior loss curve PNG.
 * HV_ERR_EMPTY when the vertebra has no maps. */
hv_status hv_measure_write_loss_map_png(const char *path, const hv_vert_measure *v);
hv_status hv_measure_write_loss_curve_png(const char *path, const hv_vert_measure *v);
/* The loss map as CSV: a_mm,l_mm,h_ori_mm,h_syn_mm,loss_pct per grid point. */
hv_status hv_measure_write_loss_map_csv(const char *path, const hv_vert_measure *v);

#ifdef __cplusplus
}
#endif
#endif /* HV_MEASURE_H */
