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

#include "hv/core.h"
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
    int threads;                /* OpenMP threads per rank, 0: leave alone        */
    int fresh;                  /* 1: discard an earlier checkpoint               */
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
 * stream (seed, epoch, item index). perm: n_train scratch entries. A draw
 * that finds no slice is HV_ERR_NOT_FOUND naming the item. */
hv_status hv_train_batch_fill(const hv_model_trainset *ts, const hv_train_plan *p,
                              const hv_model_sample_opts *so, uint64_t seed, int64_t step,
                              int64_t first, int64_t count, size_t *perm, hv_model_batch *b);

/* ------------------------------------------------------------ validation */

/* What one validation measures, means over the val items (spec 6, issue 11):
 * inside the band rows [band_lo, band_lo + band_rows) x the band mask's
 * columns (all of them sagittal, the pasted strip coronal) of the original
 * frame, the mean absolute difference (band_l1, images in [-1, 1]),
 * PSNR and SSIM (data range 2, skimage's SSIM); Dice of the segmentation
 * (> 0.5) against the target mask over the slice; mean |H - h| / h * 100. */
typedef struct hv_train_metrics {
    size_t n;
    double band_l1, psnr, ssim, dice, height_err_pct;
} hv_train_metrics;

/* Every val item at the centre of its slice range (hv_model_sample_at), in
 * one batch of n_val items, filled once. */
typedef struct hv_train_valset {
    hv_model_batch all;         /* n = n_val                                       */
    size_t *item;               /* n_val: index in the training set               */
} hv_train_valset;
hv_status hv_train_valset_make(const hv_model_trainset *ts, const hv_train_plan *p,
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

#define HV_TRAIN_VAL_HEADER "step,epoch,method,n_items,band_l1,psnr,ssim,dice,height_err_pct"
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

#ifdef __cplusplus
}
#endif
#endif /* HV_TRAIN_H */
