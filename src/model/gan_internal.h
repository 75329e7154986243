/*
 * gan_internal.h: the pieces of the GAN's training step that the tests reach
 * directly (src/model/losses.c): the composite of spec 5.5 for one item and
 * the generator-loss graph. Not a public header: the step itself
 * (hv_model_gan_*, hv/model.h) is the contract; these exist separately so
 * that every loss term can be checked by hand on tiny tensors.
 */
#ifndef HV_MODEL_GAN_INTERNAL_H
#define HV_MODEL_GAN_INTERNAL_H

#include "hv/model.h"

/* Geometry of one composite (spec 5.5), rows in the original frame. */
typedef struct hv__gan_comp {
    int64_t hp;         /* restored height: ceil(p * band_rows), at least h */
    int64_t d;          /* hp - h                                           */
    int64_t x_up, x_lo; /* generator rows [x_up, x_lo) (x_up may be < 0 and */
                        /* x_lo > rows: the rows outside the image are cut) */
} hv__gan_comp;

/* Composite of one item as comp = gen * w + rest: w (rows*cols) is 1 on
 * the generator rows, 0 elsewhere; rest (rows*cols) holds the original rows
 * moved up by floor(d/2) above them and the rows from x2 on moved down below
 * them (0 on the generator rows). The height is an integer: no gradient
 * flows to p through the crop. p outside [0, 1] (or NaN) is clamped into
 * it (the NaN is reported by the height loss). real, w, rest borrowed. */
hv__gan_comp hv__gan_composite(float p, int64_t x1, int64_t x2, int64_t band_rows,
                               int64_t rows, int64_t cols, const float *real, float *w,
                               float *rest);

/* The generator's loss graph (spec 6 without the adversarial terms, whose
 * gradients come from the discriminators as seeds). Inputs are N,1,H,W
 * unless said; the six generator outputs carry gradients. Every output
 * scalar is weighted as it enters the total and scaled by ratio = batch_local
 * / batch_global, so that summing the participants gives the global mean. */
typedef struct hv__gan_loss {
    hv_nn_graph *g; /* owned, planned for training on the backend given */
    /* generator outputs (gradients wanted) */
    hv_nn_tensor *xs1, *xs2, *cseg, *fseg, *p1, *p2; /* p1, p2: N,1 */
    /* composites: comp = x_stage * w + rest */
    hv_nn_tensor *w1, *rest1, *w2, *rest2;
    hv_nn_tensor *real, *real_mask, *normal; /* A, A_mask, normal vertebrae */
    hv_nn_tensor *inv_h;   /* N,1: band_rows / h                           */
    hv_nn_tensor *ones;    /* N,1: 1 (set by the builder)                  */
    hv_nn_tensor *inv_nnz; /* 1: 1 / nnz(band mask) over the global batch  */
    hv_nn_tensor *seed_comp, *seed_seg; /* d L_GAN / d comp2, d fseg       */
    hv_nn_tensor *fseg_bin; /* d2_soft = 0 only (else NULL): the binarised   */
                            /* fine_seg (> 0.5) the edge term sees, as the   */
                            /* reference's (no gradient); set by the step    */
    /* outputs */
    hv_nn_tensor *comp1, *comp2;
    hv_nn_tensor *l1, *dice_f, *dice_c, *edge, *height; /* weighted, (1)   */
    hv_nn_tensor *total; /* the five + sum(comp2 seed_comp) + sum(fseg seed_seg) */
} hv__gan_loss;

/* Build and plan (HV_NN_PLAN_TRAIN) the loss graph for n items of
 * o->rows x o->cols with ratio = batch_local / batch_global. On error
 * nothing is left allocated. */
hv_status hv__gan_loss_build(hv__gan_loss *L, const hv_model_gan_opts *o, int64_t n,
                             double ratio, hv_nn_backend *be);
void hv__gan_loss_free(hv__gan_loss *L);

/* AOT-GAN's loss graph (aot_loss.c; generator kind HV_MODEL_GEN_AOTGAN):
 * the CT and label channels of its output (N,1,H,W each, tanh, gradients
 * wanted), the composite comp = ct * w + rest of height h (d = 0), prob =
 * (label + 1) / 2, and the terms, weighted and scaled by ratio as
 * hv__gan_loss's:
 *   l1   = lambda_l1 * 2 * rows * cols * mean|comp - A| / nnz (our L1 with
 *          both composites this one)
 *   dice = lambda_dice_fine * (1 - Dice(prob, A_mask))
 *   total = l1 + dice + sum(comp seed_comp) + sum(prob seed_seg). */
typedef struct hv__aot_loss {
    hv_nn_graph *g; /* owned, planned for training */
    hv_nn_tensor *ct, *lab;                  /* inputs with gradients         */
    hv_nn_tensor *w, *rest, *real, *real_mask, *inv_nnz, *seed_comp, *seed_seg;
    hv_nn_tensor *comp, *prob, *l1, *dice, *total; /* outputs                 */
} hv__aot_loss;
hv_status hv__aot_loss_build(hv__aot_loss *L, const hv_model_gan_opts *o, int64_t n,
                             double ratio, hv_nn_backend *be);
void hv__aot_loss_free(hv__aot_loss *L);

/* The training step's graphs (bench/train profiles them): G's training
 * graph, the loss graph, then D1-D3's fake and real graphs, 8 in all.
 * graphs[i] and names[i] borrowed from m; returns the count (8), or 0 when
 * max < 8. */
int hv__gan_graphs(hv_model_gan *m, hv_nn_graph **graphs, const char **names, int max);

#endif /* HV_MODEL_GAN_INTERNAL_H */
