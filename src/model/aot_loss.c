/*
 * src/model/aot_loss.c: the generator-side losses when the GAN trains
 * AOT-GAN's generator (issue 15; hv_model_gan_opts.generator = AOTGAN).
 *
 * Why a graph of its own: ours (losses.c) takes six heads (two CT stages,
 * two segmentations, two heights) that AOT-GAN does not have; feeding it
 * copies and zero weights would count terms that do not exist. AOT-GAN
 * gives one CT and one label channel (tanh) and no height, so its band is
 * composed at the height it was given: the composite of spec 5.5 with d = 0
 * (hv__gan_composite with p = 0, whose height is floored at h). The terms
 * are ours where they apply: the band L1 (the same weight meaning as ours
 * with both composites equal), the fine Dice on the label probability
 * (y + 1) / 2, and the discriminators' gradients as seeds, exactly as in
 * losses.c. AOT-GAN's own perceptual and style losses need ImageNet VGG19
 * weights and are left out; its adversarial loss is replaced by ours (same
 * discriminators as the HealthiVert generator: "trained with the same data,
 * masks and schedule").
 */
#include <string.h>

#include "gan_internal.h"

void hv__aot_loss_free(hv__aot_loss *L)
{
    if (!L) return;
    hv_nn_graph_free(L->g);
    memset(L, 0, sizeof *L);
}

hv_status hv__aot_loss_build(hv__aot_loss *L, const hv_model_gan_opts *o, int64_t n,
                             double ratio, hv_nn_backend *be)
{
    if (!L || !o || !be || n < 1 || !(ratio > 0))
        return hv_error_set(HV_ERR_ARG, "model aotgan losses: bad arguments");
    memset(L, 0, sizeof *L);
    hv_status st = hv_nn_graph_create(&L->g);
    if (st != HV_OK) return st;
    hv_nn_graph *g = L->g;
    const int64_t img[4] = {n, 1, o->rows, o->cols}, one = 1;
    L->ct = hv_nn_input(g, "aot_ct", 4, img);
    L->lab = hv_nn_input(g, "aot_label", 4, img);
    hv_nn_set_requires_grad(L->ct);
    hv_nn_set_requires_grad(L->lab);
    L->w = hv_nn_input(g, "w", 4, img);
    L->rest = hv_nn_input(g, "rest", 4, img);
    L->real = hv_nn_input(g, "real", 4, img);
    L->real_mask = hv_nn_input(g, "real_mask", 4, img);
    L->inv_nnz = hv_nn_input(g, "inv_nnz", 1, &one);
    L->seed_comp = hv_nn_input(g, "seed_comp", 4, img);
    L->seed_seg = hv_nn_input(g, "seed_seg", 4, img);

    L->comp = hv_nn_add(g, hv_nn_mul(g, L->ct, L->w), L->rest);
    L->prob = hv_nn_scale(g, L->lab, 0.5f, 0.5f);
    /* ours: 0.5 (l1(comp2) + l1(comp1)) lambda hw 2 ratio / nnz, comp1 = comp2 */
    const double hw = (double)o->rows * (double)o->cols;
    hv_nn_tensor *l1 = hv_nn_scale(g, hv_nn_l1(g, L->comp, L->real),
                                   (float)(o->lambda_l1 * hw * 2.0 * ratio), 0.0f);
    L->l1 = hv_nn_mul(g, l1, L->inv_nnz);
    const float df = (float)(o->lambda_dice_fine * ratio);
    L->dice = hv_nn_scale(g, hv_nn_dice(g, L->prob, L->real_mask), -df, df);
    hv_nn_tensor *adv = hv_nn_add(g, hv_nn_sum(g, hv_nn_mul(g, L->comp, L->seed_comp)),
                                  hv_nn_sum(g, hv_nn_mul(g, L->prob, L->seed_seg)));
    L->total = hv_nn_add(g, hv_nn_add(g, L->l1, L->dice), adv);
    hv_nn_tensor *outs[5] = {L->comp, L->prob, L->l1, L->dice, L->total};
    for (int i = 0; i < 5; i++) hv_nn_set_output(outs[i]);
    st = hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN);
    if (st != HV_OK) {
        st = hv_error_wrap(st, "model aotgan losses: building the loss graph");
        hv__aot_loss_free(L);
    }
    return st;
}
