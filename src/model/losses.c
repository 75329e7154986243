/*
 * src/model/losses.c: the generator side of the HealthiVert-GAN losses
 * (spec 5.5 and 6): the height composite and the loss graph.
 *
 * The composite's rows depend on an integer height read from the network
 * (ceil(p * 40)), so it cannot be a fixed graph op; it is written instead as
 * comp = gen * w + rest with w and rest computed on the host per step
 * (hv__gan_composite). That is exactly the reference's composite, with the
 * gradient reaching the generator rows copied in (w) and none reaching the
 * height through the crop.
 *
 * The loss graph is separate from the generator's graph because w and rest
 * need the generator's heads first: the step runs G, computes the
 * composites, runs this graph, and later hands the gradient of this graph's
 * total with respect to the six generator outputs back to G's graph as
 * seeds (hv_model_gan_step in gan.c). The adversarial terms enter the total
 * as sum(comp2 * seed_comp) + sum(fseg * seed_seg), seeds being the
 * discriminators' input gradients.
 *
 * Where we differ from the reference (docs/model.md): with d2_soft = 1 (the
 * default) the edge loss uses the sigmoid segmentation (differentiable; the
 * reference's thresholded copy passes no gradient; d2_soft = 0 gives the
 * reference's); the L1 normaliser is rows*cols / nnz (the reference
 * writes cols*cols, equal for its square slices); generator rows of a
 * composite that fall outside the image are cut (the reference indexes
 * negative rows from the end there).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan_internal.h"

hv__gan_comp hv__gan_composite(float p, int64_t x1, int64_t x2, int64_t band_rows,
                               int64_t rows, int64_t cols, const float *real, float *w,
                               float *rest)
{
    if (!(p >= 0.0f)) p = 0.0f;
    if (p > 1.0f) p = 1.0f;
    hv__gan_comp c;
    const int64_t h = x2 - x1;
    c.hp = (int64_t)ceilf(p * (float)band_rows);
    if (c.hp < h) c.hp = h;
    c.d = c.hp - h;
    c.x_up = x1 - c.d / 2;
    c.x_lo = c.x_up + c.hp;
    for (int64_t r = 0; r < rows; r++) {
        float *wr = w + r * cols, *rr = rest + r * cols;
        if (r >= c.x_up && r < c.x_lo) {
            for (int64_t j = 0; j < cols; j++) wr[j] = 1.0f, rr[j] = 0.0f;
            continue;
        }
        /* above: original row r + floor(d/2) (< x1); below: x2 + (r - x_lo) (< rows,
         * since x_lo >= x2) */
        int64_t src = r < c.x_up ? r + c.d / 2 : x2 + (r - c.x_lo);
        for (int64_t j = 0; j < cols; j++) {
            wr[j] = 0.0f;
            rr[j] = (src >= 0 && src < rows) ? real[src * cols + j] : 0.0f;
        }
    }
    return c;
}

void hv__gan_loss_free(hv__gan_loss *L)
{
    if (!L) return;
    hv_nn_graph_free(L->g);
    memset(L, 0, sizeof *L);
}

hv_status hv__gan_loss_build(hv__gan_loss *L, const hv_model_gan_opts *o, int64_t n,
                             double ratio, hv_nn_backend *be)
{
    if (!L || !o || !be || n < 1 || !(ratio > 0))
        return hv_error_set(HV_ERR_ARG, "model gan losses: bad arguments");
    memset(L, 0, sizeof *L);
    hv_status st = hv_nn_graph_create(&L->g);
    if (st != HV_OK) return st;
    hv_nn_graph *g = L->g;
    const int64_t img[4] = {n, 1, o->rows, o->cols}, col[2] = {n, 1}, one = 1;
    hv_nn_tensor **gin[4] = {&L->xs1, &L->xs2, &L->cseg, &L->fseg};
    static const char *const gnames[4] = {"x_stage1", "x_stage2", "coarse_seg", "fine_seg"};
    for (int i = 0; i < 4; i++) {
        *gin[i] = hv_nn_input(g, gnames[i], 4, img);
        hv_nn_set_requires_grad(*gin[i]);
    }
    L->p1 = hv_nn_input(g, "p1", 2, col);
    L->p2 = hv_nn_input(g, "p2", 2, col);
    hv_nn_set_requires_grad(L->p1);
    hv_nn_set_requires_grad(L->p2);
    L->w1 = hv_nn_input(g, "w1", 4, img);
    L->rest1 = hv_nn_input(g, "rest1", 4, img);
    L->w2 = hv_nn_input(g, "w2", 4, img);
    L->rest2 = hv_nn_input(g, "rest2", 4, img);
    L->real = hv_nn_input(g, "real", 4, img);
    L->real_mask = hv_nn_input(g, "real_mask", 4, img);
    L->normal = hv_nn_input(g, "normal", 4, img);
    L->inv_h = hv_nn_input(g, "inv_h", 2, col);
    L->ones = hv_nn_input(g, "ones", 2, col);
    L->inv_nnz = hv_nn_input(g, "inv_nnz", 1, &one);
    L->seed_comp = hv_nn_input(g, "seed_comp", 4, img);
    L->seed_seg = hv_nn_input(g, "seed_seg", 4, img);

    /* composites (5.5) */
    L->comp1 = hv_nn_add(g, hv_nn_mul(g, L->xs1, L->w1), L->rest1);
    L->comp2 = hv_nn_add(g, hv_nn_mul(g, L->xs2, L->w2), L->rest2);
    /* L1: 0.5 (|comp2 - A| + |comp1 - A|) lambda_L1 (rows cols / nnz) 2 */
    const double hw = (double)o->rows * (double)o->cols;
    hv_nn_tensor *l1 = hv_nn_add(g, hv_nn_l1(g, L->comp2, L->real), hv_nn_l1(g, L->comp1, L->real));
    l1 = hv_nn_scale(g, l1, (float)(0.5 * o->lambda_l1 * hw * 2.0 * ratio), 0.0f);
    L->l1 = hv_nn_mul(g, l1, L->inv_nnz);
    /* Dice terms: lambda (1 - Dice) */
    const float df = (float)(o->lambda_dice_fine * ratio), dc = (float)(o->lambda_dice_coarse * ratio);
    L->dice_f = hv_nn_scale(g, hv_nn_dice(g, L->fseg, L->real_mask), -df, df);
    L->dice_c = hv_nn_scale(g, hv_nn_dice(g, L->cseg, L->normal), -dc, dc);
    /* EEM on the sigmoid segmentation (differentiable; d2_soft = 1) or, as
     * the reference (d2_soft = 0, the key's documented meaning), on the
     * binarised one, an input without gradient: the term is reported but
     * trains nothing */
    hv_nn_tensor *eseg = L->fseg;
    if (!o->d2_soft) eseg = L->fseg_bin = hv_nn_input(g, "fine_seg_binary", 4, img);
    L->edge = hv_nn_scale(g, hv_nn_mse(g, hv_nn_sobel(g, eseg), hv_nn_sobel(g, L->real_mask)),
                          (float)(o->lambda_edge * ratio), 0.0f);
    /* SHRM: lambda_h (|H1 - h| / h + |H2 - h| / h), H = p band_rows:
     * |p band_rows / h - 1| = l1(p * inv_h, 1) per item, mean over items */
    hv_nn_tensor *h = hv_nn_add(g, hv_nn_l1(g, hv_nn_mul(g, L->p1, L->inv_h), L->ones),
                                hv_nn_l1(g, hv_nn_mul(g, L->p2, L->inv_h), L->ones));
    L->height = hv_nn_scale(g, h, (float)(o->lambda_height * ratio), 0.0f);
    /* adversarial gradients as seeds */
    hv_nn_tensor *adv = hv_nn_add(g, hv_nn_sum(g, hv_nn_mul(g, L->comp2, L->seed_comp)),
                                  hv_nn_sum(g, hv_nn_mul(g, L->fseg, L->seed_seg)));
    hv_nn_tensor *t = hv_nn_add(g, L->l1, L->dice_f);
    t = hv_nn_add(g, t, L->dice_c);
    t = hv_nn_add(g, t, L->edge);
    t = hv_nn_add(g, t, L->height);
    L->total = hv_nn_add(g, t, adv);
    hv_nn_tensor *outs[8] = {L->comp1, L->comp2, L->l1, L->dice_f, L->dice_c, L->edge, L->height, L->total};
    for (int i = 0; i < 8; i++) hv_nn_set_output(outs[i]);
    st = hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN);
    if (st == HV_OK) {
        float *ones = malloc((size_t)n * sizeof *ones);
        if (!ones) {
            st = hv_error_set(HV_ERR_NOMEM, "model gan losses: out of memory");
        } else {
            for (int64_t i = 0; i < n; i++) ones[i] = 1.0f;
            st = hv_nn_tensor_set(L->ones, ones, (size_t)n);
            free(ones);
        }
    }
    if (st != HV_OK) {
        st = hv_error_wrap(st, "model gan losses: building the loss graph");
        hv__gan_loss_free(L);
    }
    return st;
}
