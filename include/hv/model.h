/*
 * hv/model.h: the HealthiVert networks, built on the engine of hv/nn.h. The
 * engine (src/nn) knows ops, graphs and optimisers only; what a network looks
 * like, and the reference's PyTorch state_dict names of its parameters, live
 * here (src/model).
 *
 * The module holds three networks:
 *
 *  - the generator (spec 5.1-5.3): coarse stage with the adjacent-vertebra
 *    segmentation head, fine stage with contextual attention, both SHRM
 *    height heads (hv_model_generator_*);
 *  - the pix2pix PatchGAN discriminator (spec 5.4; hv_model_patchgan_*);
 *  - AOT-GAN's generator, a comparison method of issue 15
 *    (hv_model_aotgan_*);
 *  - the fracture classifier whose Grad-CAM++ map guides the generator
 *    (spec 7; hv_model_classifier_*, hv_model_cam_*).
 *
 * Each network is two calls: *_params creates its parameters, under the
 * reference's state_dict names, in a parameter set (so a converted .pth
 * file loads by name, see docs/nn.md), and *_build records its forward on a
 * graph from those parameters. The same parameter set may serve any number
 * of graphs (an inference graph and a training graph, several batch sizes).
 * Plan, run and train the graph with hv/nn.h.
 *
 * Ownership: nothing here allocates anything the caller frees. Parameters
 * are added to the caller's hv_nn_params (owned by the set, freed with
 * hv_nn_params_free). Tensors recorded by *_build (the inputs and outputs in
 * hv_model_generator_io, the logits of hv_model_patchgan_build) belong to the
 * graph and live until hv_nn_graph_free; the graph borrows the parameter set,
 * which must outlive it. The rng, prefix and other arguments are borrowed for
 * the duration of the call.
 */
#ifndef HV_MODEL_H
#define HV_MODEL_H

#include <stdint.h>

#include "hv/core.h"
#include "hv/nn.h"
#include "hv/spine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------- the reference generator (5.1-5.3) */

/* Create the generator's parameters in ps with the reference's PyTorch
 * state_dict names ("coarse_generator.conv1.conv.weight_orig", ...; see
 * docs/nn.md), initialised as PyTorch does by default (seeded). The trainable
 * count at cnum 16 is 986,888. */
hv_status hv_model_generator_params(hv_nn_params *ps, int cnum, hv_rng *rng);

/* hv_nn_sn_power_iteration on every spectral-normalised convolution of the
 * generator in ps (as `iters` training steps would). */
hv_status hv_model_generator_sn_warmup(hv_nn_params *ps, int iters);

typedef struct hv_model_generator_io {
    /* inputs, N,1,H,W each (H, W multiples of 32) */
    hv_nn_tensor *x;      /* masked CT in [-1, 1]                     */
    hv_nn_tensor *mask;   /* 1 in the band to synthesise              */
    hv_nn_tensor *cam;    /* Grad-CAM++ map; the net uses 1 - cam      */
    hv_nn_tensor *ratio;  /* slice_ratio, constant plane per item      */
    /* outputs */
    hv_nn_tensor *coarse_seg; /* sigmoid, N,1,H,W                      */
    hv_nn_tensor *x_stage1;   /* coarse CT, clamped to [-1, 1]         */
    hv_nn_tensor *p1;         /* SHRM head 1, sigmoid, N,1             */
    hv_nn_tensor *fine_seg;
    hv_nn_tensor *x_stage2;
    hv_nn_tensor *p2;
} hv_model_generator_io;

/* Record the generator on g (inputs created here, outputs marked). */
hv_status hv_model_generator_build(hv_nn_graph *g, hv_nn_params *ps, int cnum, int64_t n,
                                   int64_t h, int64_t w, hv_model_generator_io *io);

/* ------------------------------------ the reference PatchGAN discriminator (5.4) */

/* Parameters of one PatchGAN (n_layers 3, ndf 64, batch norm) with the
 * reference's state_dict names behind `prefix` (e.g. "" or "D1."):
 * "<prefix>model.0.weight", "model.3.running_mean", ...; initialised as the
 * reference (N(0, 0.02) convolutions, BN weight N(1, 0.02), biases 0).
 * in_ch is 1 in the reference. 2,763,585 trainable parameters. */
hv_status hv_model_patchgan_params(hv_nn_params *ps, const char *prefix, int in_ch,
                                   hv_rng *rng);
/* The same at width ndf (conv widths ndf, 2 ndf, 4 ndf, 8 ndf, 1; the
 * reference's is 64, which hv_model_patchgan_params uses). Same names. */
hv_status hv_model_patchgan_params_ndf(hv_nn_params *ps, const char *prefix, int in_ch,
                                       int ndf, hv_rng *rng);
/* Record the discriminator on x (N, in_ch, H, W); returns the logits
 * (N, 1, H/8 - 2, W/8 - 2), NULL on error (graph status or a missing
 * parameter, whose detail is in the error buffer). */
hv_nn_tensor *hv_model_patchgan_build(hv_nn_graph *g, hv_nn_params *ps, const char *prefix,
                                      hv_nn_tensor *x);


/* ------------------------------------------------ AOT-GAN's generator (issue 15) */

/* AOT-GAN's inpainting generator (Zeng et al., "Aggregated Contextual
 * Transformations for High-Resolution Image Inpainting", IEEE TVCG 2022;
 * researchmm/AOT-GAN-for-Inpainting, src/model/aotgan.py InpaintGenerator)
 * at width `width` (64 there; the blocks run at 4 width) with `n_blocks` AOT
 * blocks (8 there), for images of img_ch channels (3 there) plus the mask.
 * Parameter names are its state_dict keys ("encoder.1.weight",
 * "middle.0.block00.1.weight", "middle.0.fuse.1.bias",
 * "middle.0.gate.1.weight", "decoder.0.conv.weight", "decoder.4.bias", ...),
 * so its checkpoints convert by copy; initialised as its init_weights:
 * convolution weights N(0, 0.02), biases 0. */
hv_status hv_model_aotgan_params(hv_nn_params *ps, int img_ch, int width, int n_blocks,
                                 hv_rng *rng);
/* Record the generator whose parameters are in ps (the number of blocks and
 * the widths are read from them) on x (N, img_ch, H, W) and mask (N, 1, H,
 * W): tanh of the decoder of the blocks of the encoder of concat(x, mask).
 * Each block has four branches, one per dilation rate in `rates` (1, 2, 4, 8
 * there; four, since each branch has a quarter of the block's channels and
 * the fuse convolution takes them all). The caller prepares x as AOT-GAN's
 * trainer does (image * (1 - mask) + mask). H and W are multiples of 4 and
 * H/4, W/4 exceed the largest rate (its reflection padding). Returns (N,
 * img_ch, H, W), NULL on error (the graph's status, or a missing or
 * misshapen parameter, whose detail is in the error buffer). */
hv_nn_tensor *hv_model_aotgan_build(hv_nn_graph *g, hv_nn_params *ps, const int rates[4],
                                    hv_nn_tensor *x, hv_nn_tensor *mask);

/* =================================================================== training
 *
 * The declarations below are the contract between three parts built side by
 * side (issue 11): the training set (prepare writes it, train reads it and
 * draws samples: src/model/trainset.c, sample.c), the GAN's training step
 * (src/model/gan.c, losses.c) and the `train` command (src/cli, src/mpi).
 * Nothing here knows MPI: a data-parallel caller hands the model a reducer
 * that sums buffers over its ranks (hv_model_reduce_fn).
 */

/* ---------------------------------------------------- the training set file
 *
 * One serial HDF5 file per cohort (docs/model.md has the schema), written by
 * `healthivert prepare` (rank 0 merges the ranks' per-case parts, so the file
 * does not depend on the rank count); items sorted by (case id, label):
 *   /ct, /labels, [/cam]  u8 (N, 256 rows K, 256 cols J, 64 slices I), one
 *                          chunk per vertebra, deflate; the crop layout of
 *                          hv_spine_crop (i = LR fastest); CT = the windowed
 *                          crop truncated to u8 (spec 3.4), labels de-pedicled
 *   /label i32 (N), /grade i8 (N, -1 unknown), /split u8 (N, hv_model_split),
 *   /case  fixed strings (N), /case_grades i8 (N, 32): grade of every label
 *          0..31 of that item's case (-1: absent or unknown)
 *   attributes on /: format "healthivert-train", version 1, dims, band_rows. */

typedef enum hv_model_split {
    HV_MODEL_SPLIT_TRAIN = 0,
    HV_MODEL_SPLIT_VAL = 1,
    HV_MODEL_SPLIT_TEST = 2,
    HV_MODEL_SPLIT_NONE = 3   /* a case no split names */
} hv_model_split;

typedef struct hv_model_trainset hv_model_trainset; /* opaque: tables, cached volumes */

typedef struct hv_model_train_item {
    const char *case_id;        /* borrowed from the set                       */
    int label;
    int grade;                  /* -1 unknown                                  */
    hv_model_split split;
    const int8_t *case_grades;  /* borrowed: 32 entries, -1 absent/unknown     */
    const hv_volume *ct;        /* borrowed: U8 crop, dims (64, 256, 256)      */
    const hv_volume *labels;    /* borrowed: U8 de-pedicled labels, same dims  */
    const hv_volume *cam;       /* borrowed: U8 CAM * 255, or NULL (none)      */
} hv_model_train_item;

/* Read the items of the splits in split_mask (bit 1 << hv_model_split) into
 * memory. A file of another format or version, or with dims other than the
 * crop dims, is HV_ERR_FORMAT naming what differs; a selection with no item
 * is HV_ERR_EMPTY. *out is owned by the caller (hv_model_trainset_free). */
hv_status hv_model_trainset_open(const char *path, unsigned split_mask,
                                 hv_model_trainset **out);
void hv_model_trainset_free(hv_model_trainset *ts);
size_t hv_model_trainset_size(const hv_model_trainset *ts);
/* The same selection with its tables only: every item's volumes (ct,
 * labels, cam) are NULL until hv_model_trainset_hold or _load reads them;
 * indices are those hv_model_trainset_open gives. *out is owned by the
 * caller. The file stays open (read-only) until hv_model_trainset_free.
 *
 * The item cache. The volumes read are kept ("resident") up to a byte budget
 * (hv_model_trainset_set_budget; 0, the default of both openers, is no
 * limit). An item is "held" from the hold (or load) that names it until the
 * next hold, or its release: held items are never evicted. Before each read,
 * least recently used (last named by a hold or load) resident items that
 * are not held are freed until the read fits the budget; held items alone
 * may exceed it (a batch always fits). The bytes are the file's whatever
 * the budget: an item read again is the same. */
hv_status hv_model_trainset_open_meta(const char *path, unsigned split_mask,
                                      hv_model_trainset **out);
/* Make items idx[0..n) resident and held for the caller's current use (a
 * step): the holds of earlier calls end, the missing items are read (the
 * budget made room for first), repeated indices are fine. Views of the held
 * items from hv_model_trainset_item stay valid until the next hold, load,
 * release of the item or free; views of other items may be invalidated by
 * any hold or load. HV_ERR_ARG for an index outside [0, size); an item that
 * fails to read (HV_ERR_HDF5, HV_ERR_NOMEM) is left not resident. */
hv_status hv_model_trainset_hold(hv_model_trainset *ts, const size_t *idx, size_t n);
/* The same for items sel[order[k]], k < n: a step's share of an epoch's
 * order (order) into the items the training uses (sel); both borrowed. */
hv_status hv_model_trainset_hold_order(hv_model_trainset *ts, const size_t *sel,
                                       const size_t *order, size_t n);
/* The same, adding idx[0..n) to the items held instead of replacing them
 * (they stay held until released or the next hold). */
hv_status hv_model_trainset_load(hv_model_trainset *ts, const size_t *idx, size_t n);
/* Free item i's volumes and end its hold; its views from
 * hv_model_trainset_item become invalid and later ones are NULL (a hold or
 * load reads it again). */
void hv_model_trainset_release(hv_model_trainset *ts, size_t i);
/* The cache's byte budget (0: no limit); a lower one than the bytes resident
 * evicts at the next hold or load. */
void hv_model_trainset_set_budget(hv_model_trainset *ts, size_t bytes);
/* Bytes of one item's volumes (dims product x 3 with a CAM, x 2 without). */
size_t hv_model_trainset_item_bytes(const hv_model_trainset *ts);
/* What the cache did since the set was opened. */
typedef struct hv_model_trainset_cache_stats {
    uint64_t loads;             /* items read from the file                    */
    uint64_t evictions;         /* items freed to fit the budget               */
    size_t resident;            /* bytes resident now                          */
    size_t peak;                /* the most bytes resident at once             */
    double read_s;              /* seconds spent reading items (wall clock)    */
} hv_model_trainset_cache_stats;
void hv_model_trainset_cache_get(const hv_model_trainset *ts, hv_model_trainset_cache_stats *out);
/* Item i (0 <= i < size), borrowed views valid as said above (until
 * hv_model_trainset_free when nothing is ever evicted or released); NULL
 * volumes when not resident. */
hv_status hv_model_trainset_item(const hv_model_trainset *ts, size_t i,
                                 hv_model_train_item *out);

/* Writing (healthivert prepare; src/model/trainset.c). A "part" is a file of
 * the same schema holding one case's items, with the attribute part_case =
 * the case id; hv_model_trainset_merge joins parts (or whole files) into one.
 *
 * A vertebra that gives no item (no crop: cut by the field of view, no
 * body) is recorded as skipped with its reason: /skipped_case (strings),
 * /skipped_label i32, /skipped_reason (strings), present when there is one. */
typedef struct hv_model_train_skip {
    const char *case_id;        /* borrowed                                    */
    int label;
    const char *reason;         /* borrowed                                    */
} hv_model_train_skip;

/* Write n items (in any order; written sorted by case id, label; a
 * (case, label) twice is HV_ERR_ARG) and the skipped vertebrae into a new
 * file at path, atomically (path.tmp<pid> renamed over path once complete
 * and fsync'd; a failure leaves path as it was). Every volume must be U8
 * with the first item's dims; cams all present or all NULL. part_case (may
 * be NULL) marks the file as that case's part. band_rows is recorded. */
hv_status hv_model_trainset_write(const char *path, const hv_model_train_item *items, size_t n,
                                  const hv_model_train_skip *skipped, size_t n_skip,
                                  const char *part_case, int64_t band_rows);
/* HV_OK when path is a readable part of case_id written by this version
 * (format, version and the part_case attribute checked, every dataset
 * present with consistent lengths); else the reason (HV_ERR_NOT_FOUND when
 * there is no file, HV_ERR_FORMAT otherwise). */
hv_status hv_model_trainset_part_check(const char *path, const char *case_id);
/* Merge files (parts) into one training file at out_path (atomic as above):
 * items sorted by (case id, label) whatever the order of `paths`, skipped
 * vertebrae likewise; the same (case, label) in two inputs, inputs of other
 * dims or band_rows, or a mix of files with and without CAM are refused
 * naming the files. Items are streamed one at a time (memory: one item).
 * *n_items and *n_skipped (each may be NULL) receive the merged counts. */
hv_status hv_model_trainset_merge(const char *const *paths, size_t n, const char *out_path,
                                  size_t *n_items, size_t *n_skipped);
/* The windowed crop (F32 in [0, 255], hv_spine_crop.ct) as the file keeps
 * it: truncated to U8 like the reference's uint8 cast (spec 3.4; NaN and
 * values below 0 become 0, above 255 become 255). *out owned by the caller. */
hv_status hv_model_trainset_ct_u8(const hv_volume *ct, hv_volume **out);
/* Number of skipped vertebrae recorded in the set's file, and record i
 * (borrowed strings, valid until hv_model_trainset_free). */
size_t hv_model_trainset_n_skipped(const hv_model_trainset *ts);
hv_status hv_model_trainset_skipped(const hv_model_trainset *ts, size_t i,
                                    hv_model_train_skip *out);

/* ------------------------------------------------------------- a batch
 *
 * One training or validation batch as the GAN takes it, n items of rows x
 * cols (256 x 256) sagittal (or coronal canvas) slices, item-major, every array owned by
 * whoever filled the batch (hv_model_batch_alloc). Frames (spec 3.3):
 * "shifted" = the target rows cut out and the neighbours pushed apart to a
 * band of band_rows rows; "original" = the slice as cropped. */
typedef struct hv_model_batch {
    int64_t n, rows, cols;
    float *x;          /* masked shifted CT in [-1, 1]; the band is -1          */
    float *mask;       /* band mask, 1 in the band rows over all columns        */
                       /* (coronal: over the pasted strip's columns only)       */
    float *cam;        /* shifted CAM in [0, 1]; zeros when there is none       */
                       /* (the network's HGAM input is 1 - cam, spec 5.6)       */
    float *ratio;      /* n slice ratios (spec 3.2)                             */
    float *real;       /* the original CT slice in [-1, 1] (A)                  */
    float *real_mask;  /* target vertebra 0/1, original frame (A_mask)          */
    float *normal;     /* healthy vertebrae 0/1, shifted frame, band 0          */
    int64_t *x1, *x2;  /* n each: target rows [x1, x2), original frame          */
    int64_t *band_lo;  /* n: first band row (band = [band_lo, band_lo + band_rows)) */
    float *height;     /* n: true target height h in rows (x2 - x1)             */
    int64_t band_rows; /* 40                                                    */
} hv_model_batch;

/* Allocate every array of a batch of n items (zeroed); free with
 * hv_model_batch_free (the struct itself is the caller's). */
hv_status hv_model_batch_alloc(hv_model_batch *b, int64_t n, int64_t rows, int64_t cols,
                               int64_t band_rows);
void hv_model_batch_free(hv_model_batch *b);

typedef struct hv_model_sample_opts {
    int healthy_max_grade;  /* 1: grade <= 1 counts as healthy (reference)      */
    int64_t band_rows;      /* 40                                               */
    int plane;              /* hv_spine_plane: HV_SPINE_SAGITTAL (default) or   */
                            /* HV_SPINE_CORONAL (spec 4: the crop[:, j, :]     */
                            /* slice pasted into the canvas columns            */
                            /* [(cols - 64) / 2, +64); the band mask only      */
                            /* inside that strip, 40 rows x 64 cols)           */
} hv_model_sample_opts;
void hv_model_sample_opts_default(hv_model_sample_opts *o);

/* Fill entry `slot` of b from item `it` (spec 3.2-3.4): the seeded slice draw
 * of hv_spine_slice_draw with rng, the band, the shifted CT, CAM and healthy
 * mask, the targets. The same (item, rng state) gives the same sample
 * whatever the caller's rank. HV_ERR_NOT_FOUND when no slice qualifies. */
hv_status hv_model_sample_draw(const hv_model_train_item *it, const hv_model_sample_opts *o,
                               hv_rng *rng, hv_model_batch *b, int64_t slot);
/* The same for a fixed slice z (validation uses the centre of the range). */
hv_status hv_model_sample_at(const hv_model_train_item *it, const hv_model_sample_opts *o,
                             int64_t z, hv_model_batch *b, int64_t slot);

/* ------------------------------------------------ the GAN's training step */

/* Sum n floats in place over every participant of a data-parallel job (an
 * MPI_Allreduce with MPI_SUM in src/mpi). Called with identical n, in the
 * same order, on every rank. NULL reducer: one process. Returns 0 on
 * success; non-zero stops the step with HV_ERR_IO. The engine's type
 * (hv/nn.h), so the same function also synchronises batch norm. */
typedef hv_nn_reduce_fn hv_model_reduce_fn;

typedef struct hv_model_gan_opts {
    int cnum;                   /* generator width, 16 in the reference          */
    int ndf;                    /* discriminator width, 64 in the reference      */
    int64_t batch_local;        /* items this process runs per step              */
    int64_t batch_global;       /* items of one global batch (all ranks)          */
    int64_t rows, cols;         /* 256 x 256                                     */
    int64_t band_rows;          /* 40                                            */
    int64_t local_cols;         /* D3 window width, 70                           */
    double lambda_l1;           /* 200                                           */
    double lambda_dice_fine;    /* 15                                            */
    double lambda_dice_coarse;  /* 10                                            */
    double lambda_edge;         /* 800                                           */
    double lambda_height;       /* 40                                            */
    double lambda_gan;          /* 1/6 (the sum of the three terms divided by 6) */
    int d2_soft;                /* 1: D2 sees the sigmoid segmentation (gradient) */
                                /* 0: the binarised one, as the reference        */
    double lr, beta1, beta2;    /* 2e-4, 0.5, 0.999 (G and each D alike)        */
    int generator;              /* hv_model_generator_kind: HEALTHIVERT (default) */
                                /* or AOTGAN (issue 15: cnum is then AOT-GAN's   */
                                /* width, 64 there; its loss terms are L1, the   */
                                /* fine Dice and the adversarial ones only)      */
    int aot_blocks;             /* AOTGAN: AOT blocks (8 there; rates 1, 2, 4, 8) */
} hv_model_gan_opts;
/* The generator a GAN trains (hv_model_gan_opts.generator). AOTGAN is AOT-GAN's
 * InpaintGenerator (hv_model_aotgan_*) with img_ch 2: channel 0 the CT, channel 1
 * the label; input image * (1 - mask) + mask of the shifted CT and of the target's
 * label in [-1, 1] (empty outside the band, so -1 there and +1 in the band);
 * output tanh, CT in [-1, 1], label probability (y + 1) / 2; no height head: its
 * composite is the one of height h (d = 0). CAM and slice ratio are not inputs. */
typedef enum hv_model_generator_kind {
    HV_MODEL_GEN_HEALTHIVERT = 0,
    HV_MODEL_GEN_AOTGAN = 1
} hv_model_generator_kind;
/* "healthivert" | "aotgan" (NULL for another value). */
const char *hv_model_generator_kind_name(int kind);
/* AOT-GAN's dilation rates (1, 2, 4, 8), used by training and synthesis. */
extern const int hv_model_aotgan_rates[4];
void hv_model_gan_opts_default(hv_model_gan_opts *o);

/* Every term of one step, each already weighted as it enters the total
 * (means over the global batch when a reducer sums the ranks). */
typedef struct hv_model_gan_losses {
    double g_total, g_gan, g_l1, g_dice_fine, g_dice_coarse, g_edge, g_height;
    double d1, d2, d3;
} hv_model_gan_losses;

typedef struct hv_model_gan hv_model_gan; /* opaque: G, D1-D3, graphs, Adams */

/* Networks initialised from rng as the reference does; graphs planned on be
 * (borrowed, must outlive the model). *out owned (hv_model_gan_free). */
hv_status hv_model_gan_create(const hv_model_gan_opts *o, hv_nn_backend *be, hv_rng *rng,
                              hv_model_gan **out);
void hv_model_gan_free(hv_model_gan *m);
/* Reducer for gradients and batch-norm statistics (ctx borrowed). */
void hv_model_gan_set_reducer(hv_model_gan *m, hv_model_reduce_fn fn, void *ctx);
void hv_model_gan_set_lr(hv_model_gan *m, double lr);
/* The reference's "linear" policy (spec 6): lr factor for epoch e. */
double hv_model_lr_linear(int64_t epoch, int64_t n_epochs, int64_t n_epochs_decay);

/* One iteration (spec 6): G forward, D1, D2, D3 updates, then G's. b has
 * batch_local items. A non-finite loss term stops before any weight changes:
 * HV_ERR_NUMERIC naming the term, weights untouched. */
hv_status hv_model_gan_step(hv_model_gan *m, const hv_model_batch *b,
                            hv_model_gan_losses *out);

/* Inference-mode forward of G on b (batch_local items) for validation and
 * pictures: the fine composite (spec 5.5) in [-1, 1] (n*rows*cols, may be
 * NULL), the fine segmentation (may be NULL) and the restored heights in rows
 * H2 = p2 * band_rows (n, may be NULL). Caller-allocated outputs. AOTGAN: the
 * composite of height h (d = 0), the label probability (y + 1) / 2, and the
 * heights h = x2 - x1 it was given. */
hv_status hv_model_gan_infer(hv_model_gan *m, const hv_model_batch *b, float *composite,
                             float *fine_seg, float *heights);

/* The four networks' parameter sets (borrowed), for checkpoints and tests. */
hv_nn_params *hv_model_gan_params(hv_model_gan *m, int which /* 0 G, 1-3 D1-D3 */);

/* Checkpoint: weights and Adam state of all four networks in one HDF5 file
 * (groups /G, /D1, /D2, /D3), plus the caller's metadata strings; atomic
 * (tmp + rename; a failed write leaves the old file). /meta gan_arch names
 * the generator kind ("healthivert-gan-1", "healthivert-aotgan-1"; AOTGAN
 * also gan_aot_blocks). Load refuses a file of another architecture (both
 * named), width or block count (HV_ERR_FORMAT naming the first mismatch). */
hv_status hv_model_gan_save(const hv_model_gan *m, const char *path,
                            const char *const *meta_kv, size_t n_meta);
hv_status hv_model_gan_load(hv_model_gan *m, const char *path);
/* Only the generator, from a model file (/params: hv_model_synth_export,
 * scripts/pth_to_hv.py; or /G/params of a checkpoint), into m's G (the
 * discriminators and Adam states untouched): to validate a finished model
 * on a training file's val items (`healthivert train --validate-model`).
 * Refused with HV_ERR_FORMAT naming the parameter and both shapes when the
 * file's width is not m's; plane_out (may be NULL) gets the file's /meta
 * plane ("sagittal" when absent). Built in synth.c. */
hv_status hv_model_gan_load_generator(hv_model_gan *m, const char *path, char *plane_out,
                                      size_t plane_cap);


/* ============================================================ synthesis
 *
 * The contract of issue 12 (spec 8): the pseudo-healthy vertebra of one crop
 * from trained generators, iterative and neighbours first, batched across
 * slices, sagittal and (optionally) coronal with the two fused. Built in
 * src/model/synth.c; the pipeline's `gan` synthesis method
 * (src/pipeline/stages.c) and `healthivert measure --synth gan` call it.
 *
 * A model file is an hv_nn checkpoint holding one generator under the
 * reference's state_dict names: at /params (what hv_model_synth_export and
 * scripts/pth_to_hv.py write) or in group /G of a training checkpoint
 * (hv_model_gan_save). The width (cnum) is read from the weights' shapes and
 * checked against every parameter; /meta "plane" (sagittal | coronal;
 * absent = sagittal) says which slices it was trained on.
 */

typedef struct hv_model_synth_opts {
    int64_t batch;            /* slices per generator call (8); 1 = the      */
                              /* reference's slice-by-slice loop             */
    int64_t band_rows;        /* 40 (must match the training)                */
    int64_t neighbour_min_px; /* 200: a neighbour is synthesised first only  */
                              /* when it has more pixels in the ORIGINAL     */
                              /* slice (spec 8 step 1-2)                     */
    int64_t clean_min_px;     /* 50: components smaller than this are        */
                              /* removed before a run (spec 8 "one run")     */
    int neighbours;           /* 1: neighbours first (spec 8); 0: target only */
    double seg_threshold;     /* 0.5 (spec 8): label t where fine_seg > this; */
                              /* where both planes wrote, their mean         */
                              /* probability > this. In (0, 1)               */
    int generator;            /* hv_model_generator_kind the files must hold  */
                              /* (HEALTHIVERT; AOTGAN for synthesis.method =  */
                              /* aotgan): the other kind is refused at open,  */
                              /* both named. AOTGAN runs the same steps with  */
                              /* p1 = p2 = 0 (the composite of height h),     */
                              /* fine_seg = (y + 1) / 2 of its label channel, */
                              /* no CAM                                       */
} hv_model_synth_opts;
void hv_model_synth_opts_default(hv_model_synth_opts *o);

typedef struct hv_model_synth hv_model_synth; /* opaque: weights + graphs */

/* Open the sagittal model (required) and the coronal one (NULL: sagittal
 * only). A missing or unreadable file is HV_ERR_NOT_FOUND / HV_ERR_IO naming
 * it; a file of another architecture or width, or whose /meta plane is not
 * the one it is given as, is HV_ERR_FORMAT naming the parameter and both
 * shapes. Graphs are planned on be (borrowed, must outlive the model) for
 * batch slices of 256 x 256. *out owned (hv_model_synth_free). Not
 * thread-safe: one hv_model_synth per thread. */
hv_status hv_model_synth_open(const char *sagittal_path, const char *coronal_path,
                              const hv_model_synth_opts *o, hv_nn_backend *be,
                              hv_model_synth **out);
void hv_model_synth_free(hv_model_synth *s);
/* The generator width of the loaded models (AOTGAN: its width); whether a
 * coronal one is there; the generator kind (hv_model_generator_kind) and
 * AOT-GAN's block count (0 for HEALTHIVERT). */
int hv_model_synth_cnum(const hv_model_synth *s);
int hv_model_synth_generator(const hv_model_synth *s);
int hv_model_synth_aot_blocks(const hv_model_synth *s);
int hv_model_synth_has_coronal(const hv_model_synth *s);

/* Write the generator of training checkpoint ckpt_path (group /G) as a model
 * file at out_path (/params float32, /meta: plane, cnum, generator
 * (healthivert | aotgan; aotgan also aot_blocks), the step and source file),
 * atomically. plane: "sagittal" | "coronal". The kind is read from the
 * parameters (AOT-GAN's encoder.1.weight or our first convolution). */
hv_status hv_model_synth_export(const char *ckpt_path, const char *plane,
                                const char *out_path);

/* The result for one crop, in the crop's layout and dims (hv_spine_crop). */
typedef struct hv_model_synth_result {
    hv_volume *ct;            /* owned: F32 [0, 255]: the fused pseudo-healthy */
                              /* CT on synthesised voxels, the input crop's CT */
                              /* elsewhere                                     */
    hv_volume *labels;        /* owned: U8: the input crop's labels with the   */
                              /* target replaced by its pseudo-healthy shape   */
                              /* (and the neighbours shifted as the composite  */
                              /* shifts them) on synthesised slices; the input */
                              /* labels elsewhere                              */
    hv_volume *prob;          /* owned: F32 [0, 1] fused target probability;   */
                              /* 0 where not synthesised                       */
    uint8_t *synthesised;     /* owned: dims[0] (LR index i) flags: 1 when the */
                              /* sagittal target step wrote slice i           */
    int64_t *band_row;        /* owned: dims[0] entries: on a slice i the     */
                              /* sagittal target step wrote, the first image  */
                              /* row (0 = cranial, hv_spine_slice_extract) of */
                              /* the band_rows-row window centred on the      */
                              /* target that holds every row the generator    */
                              /* can write at any restored height: x1 -       */
                              /* floor((band_rows - (x2 - x1)) / 2) of the    */
                              /* step's hv_spine_band, clipped into the       */
                              /* image; -1 on other slices                    */
    int64_t n_sagittal;       /* sagittal slices synthesised (target step)     */
    int64_t n_coronal;        /* coronal slices synthesised (target step)      */
    int64_t n_neighbour_runs; /* neighbour steps run, all slices and planes    */
    int too_tall;             /* the target was taller than the band on some   */
                              /* slice (x1, x2 clamped as spec 8; a warning)   */
    int nonfinite;            /* a generator output was NaN/Inf: the result is */
                              /* unusable; the caller falls back and records it */
    double height_rows;       /* mean restored height H2 over target slices    */
} hv_model_synth_result;

/* Synthesise the target of `crop` (crop->label) as spec 8: for each plane,
 * the central 80 % of the target's extent along that plane's slicing axis
 * (hv_spine_slice_range_get), each step batched over those slices: upper
 * neighbour, lower neighbour (fed the upper step's output), target (fed the
 * lower step's output); composite by p2 (spec 5.5); CT re-cast to u8
 * between steps as the reference does. cam: the crop's Grad-CAM++ volume
 * (F32 in [0, 1], crop dims; NULL: zeros, i.e. an all-ones HGAM input).
 * A crop whose target has no slice to synthesise is HV_ERR_EMPTY. On
 * success *out is filled (free with hv_model_synth_result_free); a
 * non-finite generator output is not an error: out->nonfinite = 1. */
hv_status hv_model_synth_vertebra(hv_model_synth *s, const hv_spine_crop *crop,
                                  const hv_volume *cam, hv_model_synth_result *out);
void hv_model_synth_result_free(hv_model_synth_result *r);

/* Test and log hook: called once per generator run with the step (0 upper
 * neighbour, 1 lower neighbour, 2 target), the plane (hv_spine_plane), the
 * label synthesised and the slice indices of that batch. NULL: none. */
typedef void (*hv_model_synth_trace_fn)(void *ctx, int step, int plane, int label,
                                        const int64_t *slices, int64_t n);
void hv_model_synth_set_trace(hv_model_synth *s, hv_model_synth_trace_fn fn, void *ctx);


/* ====================================== 3-D SE-ResNet with SupCon pre-training
 *
 * The direct grader of issue 15 (src/model/senet3d.c, senet3d_train.c;
 * docs/model.md "3-D SupCon-SENet"): a 3-D SE-ResNet over a vertebra's
 * crop, N,1,D,H,W, pre-trained with the supervised contrastive loss of
 * Khosla et al. (NeurIPS 2020) through a projection head, then trained to
 * the 4 Genant grades with a weighted cross entropy on its classifier head.
 *
 * Layout (basic SE blocks, SE-ResNet-18 style at blocks {2, 2, 2, 2}):
 *   layer0: conv1 3x3x3/1 pad 1 (w channels, no bias), bn1, ReLU,
 *           max-pool 3x3x3/2 pad 1
 *   layer1..4: blocks[l] SE basic blocks of planes w, 2w, 4w, 8w (stride 2
 *           on the first block of layers 2..4): conv1 3x3x3/stride BN ReLU,
 *           conv2 3x3x3 BN, se_layer (gap, Linear(C, max(1, C/16)), ReLU,
 *           Linear, sigmoid, x * s; Hu et al., reduction 16), + shortcut
 *           (1x1x1/stride conv + BN where the shape changes, identity
 *           else), ReLU
 *   global average pool -> feature (N, 8w)
 *   head: head.0 Linear(8w, 8w), ReLU, head.2 Linear(8w, proj_dim), L2
 *           normalisation -> proj (SupContrast's "mlp" head; dropped after
 *           pre-training)
 *   last_linear: Linear(8w, 4) -> logits
 * Names follow the 2-D classifier's: "layer0.conv1.weight", "layer0.bn1.*",
 * "layer1.0.conv1.conv.weight", "layer1.0.conv1.adn.N.running_var",
 * "layer1.0.se_layer.fc.0.weight", "layer2.0.project.conv.weight",
 * "head.0.weight", "last_linear.bias", ... */

#define HV_MODEL_SENET3D_GRADES 4

typedef struct hv_model_senet3d_config {
    int width;     /* stem channels = layer1's planes (1..1024)               */
    int blocks[4]; /* SE basic blocks per layer (1..16 each)                   */
    int proj_dim;  /* projection head's output (1..4096; 128 in SupContrast)   */
} hv_model_senet3d_config;

/* Create the network's parameters in ps (names above), initialised as the
 * 2-D classifier (convolutions Kaiming normal fan_in, BN weight 1 bias 0,
 * running mean 0 var 1, linear weights PyTorch's default, biases 0), seeded
 * by rng. A bad configuration is HV_ERR_ARG naming the field. */
hv_status hv_model_senet3d_params(hv_nn_params *ps, const hv_model_senet3d_config *cfg,
                                  hv_rng *rng);

typedef struct hv_model_senet3d_io {
    hv_nn_tensor *x;      /* input N,1,D,H,W (D, H, W multiples of 16, >= 16) */
    hv_nn_tensor *feat;   /* encoder output N, 8w (after the global pool)      */
    hv_nn_tensor *proj;   /* N, proj_dim, L2-normalised rows                   */
    hv_nn_tensor *logits; /* N, 4 grade scores                                 */
} hv_model_senet3d_io;

/* Record the network on g for n crops of d x h x w (input created here);
 * the three results are marked as outputs. Tensors are owned by g. */
hv_status hv_model_senet3d_build(hv_nn_graph *g, hv_nn_params *ps,
                                 const hv_model_senet3d_config *cfg, int64_t n, int64_t d,
                                 int64_t h, int64_t w, hv_model_senet3d_io *io);

/* Training (src/model/senet3d_train.c): SupCon pre-training steps (loss
 * supcon(proj, grades, temperature)), then classification steps (weighted
 * cross entropy of the logits; every weight, the encoder's included, is
 * trained: fine-tuning, not the paper's frozen-encoder linear probe), each
 * with its own Adam (betas 0.9, 0.999, eps 1e-8) over the whole set; a
 * head a phase does not reach gets zero gradients and so no update. */
typedef struct hv_model_senet3d_train_opts {
    double lr_supcon;    /* Adam's learning rate in pre-training (> 0)         */
    double lr_cls;       /* and in classification (> 0)                        */
    double temperature;  /* SupCon's (> 0; 0.07 in the paper's code)           */
    float class_weights[HV_MODEL_SENET3D_GRADES]; /* cross entropy's (>= 0)    */
} hv_model_senet3d_train_opts;

typedef struct hv_model_senet3d_trainer hv_model_senet3d_trainer; /* opaque */

/* Plan the three graphs (SupCon and classification training, inference)
 * for batches of n crops of d x h x w on be. ps (a set made by
 * hv_model_senet3d_params with cfg) and be are borrowed and must outlive
 * the trainer. n >= 2 (SupCon contrasts items of one batch). */
hv_status hv_model_senet3d_trainer_create(hv_nn_params *ps, const hv_model_senet3d_config *cfg,
                                          hv_nn_backend *be, int64_t n, int64_t d, int64_t h,
                                          int64_t w, const hv_model_senet3d_train_opts *o,
                                          hv_model_senet3d_trainer **out);
void hv_model_senet3d_trainer_free(hv_model_senet3d_trainer *t);
/* One step on x (n*d*h*w floats) with grades (n floats, 0..3). *loss (may
 * be NULL) gets the loss before the update. A non-finite voxel is
 * HV_ERR_ARG naming it (nothing run); a bad grade is HV_ERR_ARG and a
 * non-finite loss HV_ERR_NUMERIC, both before backward, with the running BN
 * statistics the forward moved put back: the model is unchanged. */
hv_status hv_model_senet3d_supcon_step(hv_model_senet3d_trainer *t, const float *x,
                                       const float *grades, double *loss);
hv_status hv_model_senet3d_cls_step(hv_model_senet3d_trainer *t, const float *x,
                                    const float *grades, double *loss);
/* Inference (running statistics) of n crops: logits (n*4 floats) and, when
 * proj is not NULL, the projections (n*proj_dim floats). */
hv_status hv_model_senet3d_predict(hv_model_senet3d_trainer *t, const float *x, float *logits,
                                   float *proj);

/* Model files (src/model/senet3d_io.c): the network a run's gather trains
 * last (grader.method = senet3d, on train+test) saved as
 * <output.dir>/senet3d_model.h5, and read back by `healthivert measure
 * --grader senet3d:MODEL`. An hv_nn_checkpoint file: /params/<name> (the
 * names above), no optimiser state, and on /meta the strings kind
 * "senet3d", senet3d_format (HV_MODEL_SENET3D_FORMAT), width, blocks
 * ("b1,b2,b3,b4"), proj_dim, box, shrink, batch, rows and seed. Format 2
 * (a run's gather writes it with hv_model_senet3d_save_cv) adds the fold
 * results a re-grade reuses: /cv/fold_pred and the caller's /meta keys.
 * Readers of the network need nothing of format 2 and read format 1 too. */
#define HV_MODEL_SENET3D_FORMAT 2

typedef struct hv_model_senet3d_info {
    hv_model_senet3d_config cfg;
    int box;       /* the stored box's side (the run's 64)                   */
    int shrink;    /* box voxels averaged per input voxel along each axis    */
                   /* (1, 2 or 4; the input side is box / shrink)            */
    int batch;     /* the inference batch the gather used (>= 2)             */
    long rows;     /* train+test rows the network was trained on             */
    unsigned seed; /* grader.seed                                            */
} hv_model_senet3d_info;

/* A box (box^3 bytes, the windowed CT 0..255) averaged over shrink^3 voxels
 * into out ((box / shrink)^3 floats in [0, 1]); box a multiple of shrink.
 * The gather and `measure` both feed the network through it. */
void hv_model_senet3d_shrink_box(const uint8_t *u, int box, int shrink, float *out);

/* Save ps (a set made by hv_model_senet3d_params with info->cfg) with info
 * to path (atomic: "<path>.tmp" then renamed). */
hv_status hv_model_senet3d_save(const char *path, const hv_nn_params *ps,
                                const hv_model_senet3d_info *info);

/* The fold results of the protocol that trained the network (a run's
 * gather), for a re-grade without training: the fold networks' val
 * predictions and more /meta (key, value) strings (what the results depend
 * on; keys other than the ones above). Everything borrowed. */
typedef struct hv_model_senet3d_cv {
    int n_folds;             /* >= 1                                       */
    size_t n_val;            /* val rows                                   */
    const int *pred;         /* n_folds x n_val grades 0..3, fold-major    */
    const char *const *kv;   /* 2 x n_kv strings: key, value, key, ...     */
    size_t n_kv;
} hv_model_senet3d_cv;

/* hv_model_senet3d_save with the fold results cv (NULL: none) as
 * /cv/fold_pred (int8, n_folds x n_val), cv->kv on /meta and /meta
 * content_digest (FNV-1a below over every parameter's name, size and
 * floats, then the predictions, 16 hex digits); atomic as
 * well ("<path>.part" holds the checkpoint meanwhile, then is removed). A
 * grade outside 0..3 is HV_ERR_ARG, nothing written. */
hv_status hv_model_senet3d_save_cv(const char *path, const hv_nn_params *ps,
                                   const hv_model_senet3d_info *info,
                                   const hv_model_senet3d_cv *cv);
/* For a re-grade: the parameters of path into ps (a set made by
 * hv_model_senet3d_params with the file's settings) and its fold
 * predictions into pred (n_folds x n_val ints, the caller's), both checked
 * against /meta content_digest. HV_ERR_FORMAT naming why when the file does
 * not open as HDF5, has no /cv/fold_pred (format 1), holds another shape, a
 * grade outside 0..3, parameters of other names or shapes, or values that
 * do not match the digest (a damaged file); ps and pred are then undefined.
 * The gather's /meta keys are read with hv_nn_checkpoint_meta. */
hv_status hv_model_senet3d_load_cv(const char *path, hv_nn_params *ps, int n_folds,
                                   size_t n_val, int *pred);
/* FNV-1a, 64 bits (Fowler, Noll, Vo) of n bytes, continuing from h (start
 * with HV_MODEL_SENET3D_FNV_OFFSET): the file's content digest and the
 * gather's rows digest. */
#define HV_MODEL_SENET3D_FNV_OFFSET 14695981039346656037ull
uint64_t hv_model_senet3d_fnv1a(uint64_t h, const void *p, size_t n);

/* A saved network ready to grade boxes, on the CPU backend. */
typedef struct hv_model_senet3d_grader hv_model_senet3d_grader; /* opaque */

/* Open path. Refused (*out NULL): a missing or unreadable file
 * (HV_ERR_NOT_FOUND, HV_ERR_IO); a file that is not HDF5 (truncated, or an
 * svm_model.txt, named as such); a model file of another kind (the GAN's,
 * the classifier's), naming its kind and "senet3d"; a senet3d_format newer
 * than this build's; bad settings or parameters of another shape
 * (HV_ERR_FORMAT). *out owned by the caller (hv_model_senet3d_grader_free). */
hv_status hv_model_senet3d_grader_open(const char *path, hv_model_senet3d_grader **out);
void hv_model_senet3d_grader_free(hv_model_senet3d_grader *g);
/* The file's settings (owned by g). */
const hv_model_senet3d_info *hv_model_senet3d_grader_info(const hv_model_senet3d_grader *g);
/* Grade n boxes (boxes[i]: info->box^3 bytes, borrowed) into grades (n
 * ints, 0..3), info->batch boxes a forward pass (a short last batch padded
 * with its first box, as the gather predicts). */
hv_status hv_model_senet3d_grade(hv_model_senet3d_grader *g, const uint8_t *const *boxes,
                                 size_t n, int *grades);

/* ================================================ classifier and Grad-CAM++
 *
 * The contract of issue 13 (spec 5.6 and 7), built side by side by three
 * parts: the network and Grad-CAM++ (src/model/classifier.c, gradcam.c),
 * its training (`healthivert train-classifier`: src/model/cls_train.c,
 * src/mpi/cls_train_run.c) and the pipeline's `attention` stage with
 * `healthivert attention` (src/pipeline/attention.c, src/cli).
 *
 * The network is MONAI's SEResNet50 with spatial_dims 2, in_channels 1,
 * num_classes 2 (what the reference loaded): a 7x7/2 stem (conv, BN, ReLU)
 * and a 3x3/2 max-pool in ceil mode; four layers of SE-ResNet bottlenecks
 * (3, 4, 6, 3 blocks; stride 1, 2, 2, 2 on the block's first 1x1
 * convolution, as MONAI's SEResNetBottleneck; SE reduction 16; a 1x1
 * convolution + BN shortcut where the shape changes); global average pool;
 * one linear layer. Parameter names are MONAI's state_dict names
 * (docs/model.md lists them): "layer0.conv1.weight", "layer0.bn1.weight",
 * "layer1.0.conv1.conv.weight", "layer1.0.conv1.adn.N.running_mean",
 * "layer1.0.se_layer.fc.0.weight", "layer1.0.project.conv.weight",
 * "layer1.0.project.adn.N.weight", "last_linear.weight", ... (the shortcut
 * is MONAI SEBlock's `project`, a Convolution: MONAI's own loader renames
 * Cadene's "downsample.0"/"downsample.1" to these names)
 * width = the stem's channels and the first layer's planes (64 in MONAI;
 * every layer scales with it: planes w, 2w, 4w, 8w, outputs 4x that); the
 * SE bottleneck keeps max(1, channels / 16) channels.
 *
 * Input: one sagittal slice of the crop's CT (spec 7: the straightened,
 * UNMASKED crop; the u8 value / 255, no normalisation), N,1,256,256.
 * Classes: 0 no fracture, 1 fracture (grade >= the configured threshold).
 */

#define HV_MODEL_CLS_WIDTH_FULL 64  /* MONAI's SEResNet50                     */
#define HV_MODEL_CAM_FIRST 17       /* spec 7: the middle 30 LR slices         */
#define HV_MODEL_CAM_COUNT 30       /* (17..46 of 64) get a map, zeros elsewhere */

/* Create the classifier's parameters in ps under MONAI's names, initialised
 * as MONAI's SENet does (convolutions Kaiming normal, BN weight 1 bias 0,
 * linear bias 0; the linear weights PyTorch's default), seeded by rng.
 * width >= 1; at width 64 the trainable count is MONAI SEResNet50's with
 * in_channels 1 and 2 classes. */
hv_status hv_model_classifier_params(hv_nn_params *ps, int width, hv_rng *rng);
/* The width of the classifier whose parameters are in ps (read from
 * layer0.conv1.weight, every other shape checked against it): > 0, or 0 with
 * HV_ERR_FORMAT in the error buffer naming the parameter and both shapes. */
int hv_model_classifier_width(const hv_nn_params *ps);

typedef struct hv_model_classifier_io {
    hv_nn_tensor *x;       /* input N,1,H,W in [0, 1] (H, W multiples of 32)    */
    hv_nn_tensor *logits;  /* N,2 raw class scores (marked as an output)        */
    hv_nn_tensor *target;  /* the Grad-CAM++ target layer: layer4's last block's */
                           /* first 1x1 convolution's output before its BN/ReLU */
                           /* ("layer4.2.conv1.conv"), N, 8w, H/32, W/32; marked */
                           /* as an output                                       */
} hv_model_classifier_io;

/* Record the classifier on g for a batch of n slices of h x w (input
 * created here). Plan with HV_NN_PLAN_TRAIN to train it, with
 * HV_NN_PLAN_GRAD for Grad-CAM++ (running BN statistics, gradients of
 * io->target available after hv_nn_graph_backward). */
hv_status hv_model_classifier_build(hv_nn_graph *g, hv_nn_params *ps, int width, int64_t n,
                                    int64_t h, int64_t w, hv_model_classifier_io *io);

/* Grad-CAM++ of one item exactly as spec 7: A = the target activations
 * (k maps of h x w), grad = dS/dA for S = the raw class-1 logit `score`;
 * alpha = g^2 / (2 g^2 + (sum_xy A) g^3 + 1e-7) (0 where the denominator is
 * 0), w_k = sum_xy alpha * ReLU(exp(S) g), cam = ReLU(sum_k w_k A_k), then
 * cam = (cam - min) / max as the reference writes it (all zeros when max is
 * 0). Accumulated in double. cam: h*w floats, caller-allocated. */
void hv_model_gradcampp(const float *act, const float *grad, int64_t k, int64_t h, int64_t w,
                        double score, float *cam);
/* Bilinear resize of a h x w map to H x W with half-pixel centres
 * (PyTorch's interpolate align_corners=False, cv2.resize INTER_LINEAR);
 * out: H*W floats, caller-allocated. */
void hv_model_cam_resize(const float *in, int64_t h, int64_t w, float *out, int64_t H,
                         int64_t W);

/* A classifier model file is an hv_nn checkpoint with the weights at
 * /params (running statistics included) and /meta kind = "classifier",
 * width, threshold (the grade from which an item counts as a fracture),
 * the training step and source; or a classifier training checkpoint
 * (cls_train.c: group /C). */
typedef struct hv_model_cam hv_model_cam; /* opaque: weights + a planned graph */

/* Write ps (a classifier of `width`, checked) as a classifier model file at
 * path: /params, /meta kind "classifier", width, threshold, source (may be
 * NULL: ""). Atomic (written to "<path>.tmp", then renamed). */
hv_status hv_model_classifier_save_file(const hv_nn_params *ps, int width, int threshold,
                                        const char *source, const char *path);
/* The same with n_extra more /meta (key, value) pairs from extra_kv (2 *
 * n_extra strings, borrowed; at most 16 pairs, none of the four keys above:
 * HV_ERR_ARG), e.g. the training's step and its stop marker
 * (src/mpi/cls_train_run.c). */
hv_status hv_model_classifier_save_file_meta(const hv_nn_params *ps, int width, int threshold,
                                             const char *source, const char *const *extra_kv,
                                             size_t n_extra, const char *path);

/* Open the classifier at path and plan its Grad-CAM++ graph for `batch`
 * slices of 256 x 256 on be (borrowed, must outlive it). A missing file is
 * HV_ERR_NOT_FOUND, a file that is not a classifier (kind, a parameter's
 * shape) HV_ERR_FORMAT naming what differs. *out owned
 * (hv_model_cam_free). Not thread-safe: one per thread. */
hv_status hv_model_cam_open(const char *path, int64_t batch, hv_nn_backend *be,
                            hv_model_cam **out);
void hv_model_cam_free(hv_model_cam *c);
int hv_model_cam_width(const hv_model_cam *c);

typedef struct hv_model_cam_result {
    hv_volume *cam;        /* owned: F32 in [0, 1], the crop's dims and affine:  */
                           /* the resized map of every slice i in [FIRST,       */
                           /* FIRST + COUNT) (spec 7), 0 on every other slice   */
    double p_fracture;     /* mean over those slices of softmax(logits)[1]      */
    double p_slice[HV_MODEL_CAM_COUNT]; /* the same per slice                   */
    int nonfinite;         /* a logit or gradient was NaN/Inf: cam is all zero  */
                           /* and the caller records it (not an error)          */
} hv_model_cam_result;

/* The Grad-CAM++ volume of `crop` (its CT: F32 [0, 255], truncated to u8 and
 * divided by 255 as spec 7), batched over the 30 slices. Fills *out (free
 * with hv_model_cam_result_free). A crop of other dims than (64, 256, 256)
 * is HV_ERR_ARG. */
hv_status hv_model_cam_crop(hv_model_cam *c, const hv_spine_crop *crop,
                            hv_model_cam_result *out);
void hv_model_cam_result_free(hv_model_cam_result *r);

#ifdef __cplusplus
}
#endif
#endif /* HV_MODEL_H */
