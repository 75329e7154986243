/*
 * hv/train.h: the parts of `healthivert train` that need no MPI (src/model,
 * library hv_train): what one global step trains on, how validation is
 * measured, and what the output folder gets (CSV, curves, sample grids,
 * checkpoint metadata). The loop that runs them on MPI ranks, the reducer
 * and the checkpoint/resume policy are in src/mpi/train_run.c (hv/run.h:
 * hv_train_execute).
 *
 * Determinism (spec 6, issue 11): every random choice is a pure function of
 * (seed, epoch, item): the epoch's shuffle is drawn from the hv_rng stream
 * keyed by (seed, epoch), each item's slice from the stream keyed by
 * (seed, epoch, item index in the training file). Nothing depends on the
 * rank count or on what ran before, so a resumed run (from a checkpoint at
 * step S) and a run on another number of ranks draw exactly the same
 * batches; there is no RNG state to carry in a checkpoint beyond the seed
 * and the step.
 *
 * Ownership: structs filled by *_make / *_alloc own their arrays and are
 * released with the matching *_free (the struct itself is the caller's);
 * everything else is borrowed for the duration of the call.
 */
#ifndef HV_TRAIN_H
#define HV_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hv/core.h"
#include "hv/io.h"
#include "hv/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every [train] key of a training config (configs/README.md, `healthivert
 * train --keys`), filled by the key table of src/mpi/train_config.c. */
typedef struct hv_train_opts {
    char file[1024];            /* the training file (healthivert prepare)        */
    char output[900];           /* output folder                                  */
    int seed;
    int batch;                  /* global batch (items per step, all ranks)       */
    double lr, beta1, beta2;
    int n_epochs, n_epochs_decay;
    int max_steps;              /* 0: no limit (epochs decide)                    */
    int cnum, ndf;
    int generator;              /* hv_model_generator_kind (train.generator)      */
    int aot_blocks;             /* AOT-GAN's blocks (train.aot_blocks)            */
    double lambda_l1, lambda_dice_fine, lambda_dice_coarse, lambda_edge;
    double lambda_height, lambda_gan;
    int d2_soft;
    int local_cols;
    int band_rows;
    int healthy_max_grade;
    int plane;                  /* hv_spine_plane (train.plane: sagittal, coronal) */
    int checkpoint_every, val_every, log_every;
    double progress_interval;
    int val_grid;               /* items in each validation's sample grid         */
    int item_cache_mb;          /* MiB of items resident per rank, 0: no limit    */
    int threads;                /* OpenMP threads per rank, 0: leave alone        */
    int fresh;                  /* 1: discard an earlier checkpoint               */
    int device;                 /* compute.device: 0 auto, 1 cpu, 2 cuda          */
} hv_train_opts;

/* The GAN's options from the training options (batch_local given). */
void hv_train_gan_opts(const hv_train_opts *o, int64_t batch_local, hv_model_gan_opts *g);
void hv_train_sample_opts(const hv_train_opts *o, hv_model_sample_opts *s);

/* ------------------------------------------------------------------ plan */

typedef struct hv_train_plan {
    size_t n_train, n_val;      /* healthy items of the train / val split        */
    size_t *train, *val;        /* their indices in the training set (ascending)  */
    int64_t batch_global;
    int64_t steps_per_epoch;    /* floor(n_train / batch): the epoch's remainder  */
                                /* (after the shuffle) is left out, as drop_last  */
    int64_t n_epochs_total;     /* n_epochs + n_epochs_decay                      */
    int64_t total_steps;        /* epochs x steps_per_epoch, capped by max_steps  */
} hv_train_plan;

/* The healthy (0 <= grade <= healthy_max_grade) items of the train and val
 * splits of ts. HV_ERR_EMPTY naming the split and the file when the train
 * split has fewer healthy items than one global batch, or (with val_every >
 * 0) the val split has none. `file` names the set in messages. */
hv_status hv_train_plan_make(const hv_model_trainset *ts, const hv_train_opts *o,
                             const char *file, hv_train_plan *p);
void hv_train_plan_free(hv_train_plan *p);

/* Rank r's fixed share of a global batch of b items over R ranks: items
 * [first, first + count) of it; the first b % R ranks get one more. */
void hv_train_share(int64_t batch_global, int nranks, int rank, int64_t *first, int64_t *count);

/* The epoch's order of n items: a Fisher-Yates shuffle from the stream
 * (seed, epoch). perm has n entries. */
void hv_train_epoch_order(uint64_t seed, int64_t epoch, size_t n, size_t *perm);

/* Fill b (count items) with items [first, first + count) of global step
 * `step`'s batch: the epoch's shuffled train items at positions
 * (step % steps_per_epoch) * batch + first + k, each slice drawn from the
 * stream (seed, epoch, item index). perm: n_train scratch entries. The
 * count items are held in ts's cache for the draws (hv_model_trainset_hold:
 * only they are read; earlier holds end). A draw that finds no slice is
 * HV_ERR_NOT_FOUND naming the item. */
hv_status hv_train_batch_fill(hv_model_trainset *ts, const hv_train_plan *p,
                              const hv_model_sample_opts *so, uint64_t seed, int64_t step,
                              int64_t first, int64_t count, size_t *perm, hv_model_batch *b);

/* ------------------------------------------------------------ validation */

/* What one validation measures, means over the val items (spec 6, issue 11):
 * inside the band rows [band_lo, band_lo + band_rows) x the band mask's
 * columns (all of them sagittal, the pasted strip coronal) of the original
 * frame, the mean absolute difference (band_l1, images in [-1, 1]),
 * PSNR and SSIM (data range 2, skimage's SSIM); Dice of the segmentation
 * (> 0.5) against the target mask over the slice; mean |H - h| / h * 100.
 * dice_best: the highest mean Dice over the thresholds 0.05, 0.10, ...,
 * 0.95 (segmentation > threshold), seg_threshold the threshold that gave
 * it (of equal means, the one nearest 0.5): the value for synthesis's
 * seg_threshold when the network's segmentation is biased (an undertrained
 * one draws bodies too small at 0.5). NaN in rows read from an older val.csv. */
#define HV_TRAIN_SEG_THRESHOLDS 19
typedef struct hv_train_metrics {
    size_t n;
    double band_l1, psnr, ssim, dice, height_err_pct;
    double dice_best, seg_threshold;
} hv_train_metrics;

/* Every val item at the centre of its slice range (hv_model_sample_at), in
 * one batch of n_val items, filled once. The items are held in ts's cache one
 * at a time (earlier holds end), left resident as the budget allows. */
typedef struct hv_train_valset {
    hv_model_batch all;         /* n = n_val                                       */
    size_t *item;               /* n_val: index in the training set               */
} hv_train_valset;
hv_status hv_train_valset_make(hv_model_trainset *ts, const hv_train_plan *p,
                               const hv_model_sample_opts *so, hv_train_valset *v);
void hv_train_valset_free(hv_train_valset *v);

/* Outputs of one pass over the valset: composite, fine segmentation (n_val
 * slices each) and heights (n_val). */
typedef struct hv_train_valout {
    int64_t n, rows, cols;
    float *composite, *seg, *height;
} hv_train_valout;
hv_status hv_train_valout_alloc(hv_train_valout *o, int64_t n, int64_t rows, int64_t cols);
void hv_train_valout_free(hv_train_valout *o);

/* The network's outputs: hv_model_gan_infer over the valset in chunks of
 * batch_local items (the last chunk padded with copies of its last item,
 * whose outputs are dropped). */
hv_status hv_train_val_infer(hv_model_gan *m, int64_t batch_local, const hv_train_valset *v,
                             hv_train_valout *out);
/* The "copy the input" baseline: the output is the masked input itself (the
 * band is -1), the segmentation is the band, the height the band's rows (the
 * only height the input shows). */
hv_status hv_train_val_copy_input(const hv_train_valset *v, hv_train_valout *out);
/* The metrics of outputs against the valset's truth. */
hv_status hv_train_val_metrics(const hv_train_valset *v, const hv_train_valout *o,
                               hv_train_metrics *m);

/* ---------------------------------------------------------------- output */

/* One row of <out>/val.csv. method: "copy_input" (baseline, step 0),
 * "network" (step 0 = the untrained network, the second baseline). */
typedef struct hv_train_val_row {
    int64_t step, epoch;
    char method[16];
    hv_train_metrics m;
} hv_train_val_row;

#define HV_TRAIN_VAL_HEADER                                                                  \
    "step,epoch,method,n_items,band_l1,psnr,ssim,dice,height_err_pct,dice_best,seg_threshold"
/* The header and one line per row (n) to f, as val.csv holds them. */
void hv_train_val_print(FILE *f, const hv_train_val_row *rows, size_t n);
/* Write rows (n) as <path> atomically (header + one line per row). */
hv_status hv_train_val_write(const char *path, const hv_train_val_row *rows, size_t n);
/* Read <path> back (a resume): rows with step <= max_step only (later ones
 * are redone). A missing file gives 0 rows; a malformed one HV_ERR_FORMAT
 * naming the line. *rows: free(). */
hv_status hv_train_val_read(const char *path, int64_t max_step, hv_train_val_row **rows,
                            size_t *n);
/* Curves of every metric over the steps (one PNG per metric,
 * <dir>/val_<metric>.png), the baselines as flat named lines. */
hv_status hv_train_val_plot(const char *dir, const hv_train_val_row *rows, size_t n);
/* A grid of the first k val items: input | attention (CAM) | output | truth,
 * 8-bit grey, into a PNG at path. */
hv_status hv_train_val_grid(const char *path, const hv_train_valset *v, const hv_train_valout *o,
                            int k);

/* ============================================ the fracture classifier
 *
 * `healthivert train-classifier` (issue 13, spec 7): the SE-ResNet of
 * hv_model_classifier_* trained on the training file of `healthivert
 * prepare`, every graded item (not only the healthy ones). Built in
 * src/model/cls_train.c (plan, sampling, the step, validation metrics) and
 * cls_report.c (val.csv, curves); the MPI loop is src/mpi/cls_train_run.c.
 *
 * Label: 1 (fracture) when grade >= threshold, else 0; an item of unknown
 * grade (-1) is skipped and counted. Input: one sagittal slice i of the
 * item's CT crop, the u8 value / 255 (spec 7: unmasked, no normalisation),
 * i drawn uniformly from [HV_MODEL_CAM_FIRST, +HV_MODEL_CAM_COUNT).
 *
 * Determinism as the GAN's: an epoch's list, its order and every draw are
 * pure functions of (seed, epoch, position in the epoch's list) through
 * keyed hv_rng streams, so rank counts and resumes see the same batches.
 *
 * Balanced sampling (balance = sample, the default): an epoch's list holds
 * every item of the larger class once and as many draws WITH replacement
 * from the smaller class (uniform, from the stream (seed, epoch)), then the
 * list is shuffled: each step sees positives and negatives equally often on
 * average, and each epoch holds exactly as many of either. The draw for a
 * list position (slice, flip) is keyed by that position, so a minority item
 * listed twice gets two independent slices. balance = none: every labelled
 * train item once, shuffled.
 *
 * Loss: 2-class cross entropy of the logits (z0, z1). With two classes
 * -log softmax(z)_y = softplus(-(2y - 1)(z1 - z0)) exactly, i.e. the binary
 * cross entropy with logits of d = z1 - z0 against y, which is what the
 * step computes (slice, sub, bce_logits of the engine), scaled by
 * batch_local / batch_global so that the reducer's sum is the global mean.
 *
 * Ownership as above: *_make/_create fill structs or handles that the
 * caller releases with the matching *_free; all else is borrowed.
 */

enum { HV_TRAIN_CLS_BALANCE_NONE = 0, HV_TRAIN_CLS_BALANCE_SAMPLE = 1 };

/* Every [classifier] key (src/mpi/cls_train_config.c, configs/README.md). */
typedef struct hv_train_cls_opts {
    char file[1024];            /* the training file                              */
    char output[900];           /* output folder                                  */
    int seed;
    int width;                  /* hv_model_classifier width (64 = MONAI)         */
    int batch;                  /* global batch (items per step, all ranks)       */
    double lr, beta1, beta2;
    int steps;                  /* 0: epochs decide                               */
    int epochs;
    int threshold;              /* grade >= threshold: fracture                   */
    int balance;                /* HV_TRAIN_CLS_BALANCE_*                         */
    int flip;                   /* 1: mirror the slice's columns with p = 0.5     */
    int checkpoint_every, val_every, log_every;
    double progress_interval;
    int item_cache_mb;          /* MiB of items resident per rank, 0: no limit    */
    int threads;
    int fresh;
    int device;                 /* compute.device: 0 auto, 1 cpu, 2 cuda          */
} hv_train_cls_opts;

typedef struct hv_train_cls_plan {
    size_t n_train;             /* labelled (grade known) train items             */
    size_t *train;              /* their indices in the training set              */
    uint8_t *train_y;           /* their labels (0/1)                             */
    size_t n_pos, n_neg;        /* of the train items                             */
    size_t n_unknown_train, n_unknown_val; /* skipped: grade -1                   */
    size_t n_val;               /* labelled val items                             */
    size_t *val;                /* their indices                                  */
    int *val_grade;             /* their grades                                   */
    int balance;
    int64_t epoch_len;          /* none: n_train; sample: 2 max(n_pos, n_neg)     */
    int64_t batch_global;
    int64_t steps_per_epoch;    /* floor(epoch_len / batch) (drop_last)           */
    int64_t total_steps;        /* steps, or epochs x steps_per_epoch             */
} hv_train_cls_plan;

/* The labelled items of the train and val splits. HV_ERR_EMPTY naming the
 * file when the train split lacks fractures or non-fractures (at the
 * threshold), has fewer labelled items than one global batch (none), or
 * (val_every > 0) the val split has no labelled item. */
hv_status hv_train_cls_plan_make(const hv_model_trainset *ts, const hv_train_cls_opts *o,
                                 const char *file, hv_train_cls_plan *p);
void hv_train_cls_plan_free(hv_train_cls_plan *p);

/* Epoch `epoch`'s list: p->epoch_len indices into p->train, balanced and
 * shuffled as described above (list: caller-allocated). */
void hv_train_cls_epoch_list(const hv_train_cls_plan *p, uint64_t seed, int64_t epoch,
                             size_t *list);

/* Items [first, first + count) of global step `step`'s batch into x
 * (count x 256 x 256, [0, 1]) and y (count labels 0/1): positions
 * (step % steps_per_epoch) * batch + first + k of the epoch's list, each
 * slice (and flip when o->flip) drawn from the stream (seed, epoch,
 * position). list: epoch_len scratch entries. slices (may be NULL): count
 * slice indices drawn, negated when flipped minus one (-i - 1). The count
 * items are held in ts's cache for the draws (hv_model_trainset_hold). */
hv_status hv_train_cls_batch_fill(hv_model_trainset *ts, const hv_train_cls_plan *p,
                                  const hv_train_cls_opts *o, int64_t step, int64_t first,
                                  int64_t count, size_t *list, float *x, float *y,
                                  int *slices);

/* Slice i of an item's CT crop as the classifier's input: the u8 / 255,
 * 256 x 256 (rows x cols of the sagittal plane); flip mirrors the columns. */
hv_status hv_train_cls_slice(const hv_model_train_item *it, int64_t i, int flip, float *out);

/* The model in training: parameters, Adam, a training graph for batch_local
 * slices and an inference graph for val_batch slices, on be (borrowed). */
typedef struct hv_train_cls hv_train_cls;
hv_status hv_train_cls_create(int width, int64_t batch_local, int64_t batch_global,
                              int64_t val_batch, double lr, double beta1, double beta2,
                              hv_rng *rng, hv_nn_backend *be, hv_train_cls **out);
void hv_train_cls_free(hv_train_cls *m);
/* Reducer for the batch norms' statistics and the gradients (ctx borrowed). */
void hv_train_cls_set_reducer(hv_train_cls *m, hv_model_reduce_fn fn, void *ctx);
/* One step on batch_local slices x with labels y: loss (the global batch's
 * mean cross entropy, summed over the reducer; may be NULL), d (may be
 * NULL: batch_local floats) the training-mode z1 - z0 of each local slice.
 * A non-finite loss or (summed) gradient is HV_ERR_NUMERIC before any
 * weight changes, the running statistics put back. */
hv_status hv_train_cls_step(hv_train_cls *m, const float *x, const float *y, double *loss,
                            float *d);
/* Inference (running BN statistics) on n slices (any n; run in chunks of
 * val_batch): d[k] = z1 - z0, so P(fracture) = 1 / (1 + exp(-d)). */
hv_status hv_train_cls_predict(hv_train_cls *m, const float *x, int64_t n, float *d);
hv_nn_params *hv_train_cls_params(hv_train_cls *m);
int hv_train_cls_width(const hv_train_cls *m);
/* Checkpoint (group /C: weights, running statistics, Adam) with the
 * caller's metadata, atomic; load refuses another width. */
hv_status hv_train_cls_save(const hv_train_cls *m, const char *path, const char *const *meta_kv,
                            size_t n_meta);
hv_status hv_train_cls_load(hv_train_cls *m, const char *path);

/* Validation metrics over n vertebrae with p[k] = P(fracture) and grade[k]
 * (0..3; items with grade < 0 are not counted): AUC as the Mann-Whitney
 * statistic (a tie between a positive and a negative counts 0.5; NaN when a
 * class is absent), sensitivity and specificity of p >= 0.5 (NaN for an
 * absent class), recall[g] = the fraction of grade g items with p >= 0.5
 * (NaN when none), loss = the mean of -log p_y (p clamped to [1e-7, 1]). */
typedef struct hv_train_cls_metrics {
    size_t n, n_pos, n_neg;
    size_t n_grade[4];
    double auc, sensitivity, specificity, recall[4], loss;
} hv_train_cls_metrics;
void hv_train_cls_metrics_of(const double *p, const int *grade, size_t n, int threshold,
                             hv_train_cls_metrics *m);
/* Every val item of the plan: p[k] = the mean over its 30 middle slices of
 * P(fracture), batched; then the metrics. p: n_val doubles, may be NULL.
 * Each item is held in ts's cache while read (earlier holds end). */
hv_status hv_train_cls_validate(hv_train_cls *m, hv_model_trainset *ts,
                                const hv_train_cls_plan *p, int threshold, double *prob,
                                hv_train_cls_metrics *out);

/* val.csv of the classifier: one row per validation, written whole and
 * atomically; read back (a resume) keeping rows with step <= max_step. */
typedef struct hv_train_cls_row {
    int64_t step, epoch;
    hv_train_cls_metrics m;
} hv_train_cls_row;
#define HV_TRAIN_CLS_VAL_HEADER                                                               \
    "step,epoch,n_items,n_pos,n_neg,auc,sensitivity,specificity,recall_g0,recall_g1,"         \
    "recall_g2,recall_g3,loss"
hv_status hv_train_cls_val_write(const char *path, const hv_train_cls_row *rows, size_t n);
hv_status hv_train_cls_val_read(const char *path, int64_t max_step, hv_train_cls_row **rows,
                                size_t *n);
/* Curves <dir>/val_auc.png, val_sensitivity.png, val_specificity.png,
 * val_recall.png (one line per grade), val_loss.png; the untrained network
 * (step 0) as a flat line where there is one. */
hv_status hv_train_cls_val_plot(const char *dir, const hv_train_cls_row *rows, size_t n);

/* ------------------------------------------------------ shared pictures */

/* One curve picture at path: the named series (x, y of m points each) and
 * flat lines at the values flat_y (named flat_names, n_flat of them; NaN
 * values are left out) over [0, max x]. Used by both trainings. */
hv_status hv_train_curves_plot(const char *path, const char *title, const char *ylabel,
                               const hv_io_series *curves, int n_curves,
                               const char *const *flat_names, const double *flat_y, int n_flat);

#ifdef __cplusplus
}
#endif
#endif /* HV_TRAIN_H */
